// A Nordic PPK2 on a real pty: answers GetMetadata with its calibration text, honours SetPowerMode,
// RegulatorSet, DeviceRunningSet, AverageStart/Stop, and while running streams 100 kS/s words (format in
// drivers/meter-ppk2.ts) generated from a reading source — the power model of a virtual node. Like the kit it
// picks the measurement range per sample (the lowest range with headroom) and quantizes to its 14-bit ADC; the
// samples for the time elapsed go out in chunks every few ms, so the rate is exact on average. D0-D7 carry
// whatever `digitalAt(t)` says (a node's marker line). Test hooks drop samples, garble a word or slip bytes.
import { hostNow } from '../drivers/meter.js';
import { PPK2_ADC_MULT, PPK2_CMD, PPK2_MODE, PPK2_RANGES, PPK2_SAMPLE_MS, ppk2Current, type Ppk2Calibration } from '../drivers/meter-ppk2.js';
import { PtyEndpoint } from './pty.js';
import type { ReadingSource } from './um34c.js';

/** A plausible factory calibration (shunts near nominal, small gain/offset terms), so the formula is exercised. */
export const EMULATOR_CAL: Ppk2Calibration = {
  r: [1028.3, 101.9, 10.08, 0.951, 0.0447],
  gs: [14, 1.4, 0.14, 0.013, 0.0006],
  gi: [1.012, 0.995, 1.004, 0.991, 1.007],
  o: [48.2, 55.1, 61.7, 41.3, 38.9],
  s: [2.1e-7, -1.3e-6, 4e-6, -2e-5, 1e-4],
  i: [1.5e-7, -2e-6, 3e-6, 1e-5, -2e-4],
  ug: [1, 1, 1, 1, 1],
};

export function ppk2MetadataText(cal: Ppk2Calibration): string {
  const lines = ['Calibrated: 0'];
  for (const key of ['r', 'gs', 'gi', 'o', 's', 'i', 'ug'] as const) cal[key].forEach((v, k) => lines.push(`${key.toUpperCase()}${k}: ${v}`));
  lines.push('HW: 9173', 'mode: 2', 'IA: 56', 'END');
  return `${lines.join('\n')}\n`;
}

/** 14-bit ADC value that the kit would report for `amps` in `range` (inverse of Nordic's formula, rounded). */
export function ppk2Encode(cal: Ppk2Calibration, range: number, amps: number, vddMv: number): number {
  const c = cal.s[range]! * (vddMv / 1000) + cal.i[range]! - amps / cal.ug[range]!;
  const gs = cal.gs[range]!;
  const gi = cal.gi[range]!;
  const x = Math.abs(gs) < 1e-15 ? -c / gi : (-gi + Math.sqrt(Math.max(0, gi * gi - 4 * gs * c))) / (2 * gs);
  const adc4 = (x * cal.r[range]!) / PPK2_ADC_MULT + cal.o[range]!;
  return Math.min(0x3fff, Math.max(0, Math.round(adc4 / 4)));
}

export interface Ppk2EmulatorOptions {
  source: ReadingSource;
  calibration?: Ppk2Calibration;
  link?: string;
  name?: string;
  /** Logic inputs at time t; default: the levels set with setDigital(). */
  digitalAt?: (tMs: number) => number;
  /** How often the elapsed samples are sent (ms). */
  chunkMs?: number;
  /** Time up to which the source knows the signal (e.g. a power model's endMs); samples wait for it. Default now. */
  horizon?: () => number;
  now?: () => number;
}

export class Ppk2Emulator {
  readonly pty: PtyEndpoint;
  readonly cal: Ppk2Calibration;
  readonly state = { mode: 0, vddMv: 3700, dutOn: false, streaming: false, userGainCmds: 0 };
  readonly stats = { samples: 0, commands: 0, rangeUse: [0, 0, 0, 0, 0] };
  private cmd: Buffer = Buffer.alloc(0);
  private timer?: NodeJS.Timeout;
  private t0 = 0;
  private sent = 0; // sample slots since AverageStart (counter = sent mod 64)
  private edges: { t: number; bits: number }[] = [{ t: -Infinity, bits: 0 }];
  private edgeCursor = 0;
  private drop = 0;
  private garble = 0;
  private slip = 0;
  private readonly now: () => number;

  constructor(readonly opts: Ppk2EmulatorOptions) {
    this.cal = opts.calibration ?? EMULATOR_CAL;
    this.now = opts.now ?? hostNow;
    this.pty = new PtyEndpoint({ link: opts.link, name: opts.name ?? 'ppk2' });
    this.pty.on('data', (b: Buffer) => this.onBytes(b));
    this.pty.on('unplug', () => this.halt());
  }

  get path(): string {
    return this.pty.path;
  }

  /** Host time of sample slot 0 of the current stream (ms). */
  get streamStartMs(): number {
    return this.t0;
  }

  start(): Promise<string> {
    return this.pty.start();
  }

  async stop(): Promise<void> {
    this.halt();
    await this.pty.stop();
  }

  /** Pulling the USB cable resets the kit: streaming stops, the node loses power. */
  unplug(): Promise<void> {
    return this.pty.unplug();
  }

  replug(): Promise<string> {
    return this.pty.replug();
  }

  /** Logic levels from time t on (ms; default now). Edges must be set in time order. */
  setDigital(bits: number, t = this.now()): void {
    this.edges.push({ t, bits: bits & 0xff });
  }

  /** Test hooks: lose the next n samples in transit; send one garbled word; lose k bytes of the stream. */
  dropSamples(n: number): void {
    this.drop += n;
  }
  garbleWord(): void {
    this.garble++;
  }
  slipBytes(k: number): void {
    this.slip += k;
  }

  private halt(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.state.streaming = false;
    this.state.dutOn = false;
    this.cmd = Buffer.alloc(0);
  }

  private digitalAt(t: number): number {
    if (this.opts.digitalAt) return this.opts.digitalAt(t);
    while (this.edgeCursor + 1 < this.edges.length && this.edges[this.edgeCursor + 1]!.t <= t) this.edgeCursor++;
    return this.edges[this.edgeCursor]!.bits;
  }

  private onBytes(b: Buffer): void {
    this.cmd = Buffer.concat([this.cmd, b]);
    const argLen: Record<number, number> = { [PPK2_CMD.SetPowerMode]: 1, [PPK2_CMD.RegulatorSet]: 2, [PPK2_CMD.DeviceRunningSet]: 1, [PPK2_CMD.SetUserGains]: 5 };
    while (this.cmd.length) {
      const op = this.cmd[0]!;
      const need = 1 + (argLen[op] ?? 0);
      if (this.cmd.length < need) return;
      const a = this.cmd.subarray(1, need);
      this.cmd = this.cmd.subarray(need);
      this.stats.commands++;
      if (op === PPK2_CMD.GetMetadata) this.pty.write(ppk2MetadataText(this.cal));
      else if (op === PPK2_CMD.SetPowerMode) this.state.mode = a[0]!;
      else if (op === PPK2_CMD.RegulatorSet) this.state.vddMv = (a[0]! << 8) | a[1]!;
      else if (op === PPK2_CMD.DeviceRunningSet) this.state.dutOn = a[0] === 1;
      else if (op === PPK2_CMD.SetUserGains) this.state.userGainCmds++;
      else if (op === PPK2_CMD.AverageStart) this.startStream();
      else if (op === PPK2_CMD.AverageStop) {
        clearInterval(this.timer);
        this.timer = undefined;
        this.state.streaming = false;
      }
      // Reset, spike filtering and the rest: accepted, nothing to emulate
    }
  }

  private startStream(): void {
    if (this.state.streaming) return;
    this.state.streaming = true;
    this.t0 = this.now();
    this.sent = 0;
    this.timer = setInterval(() => this.pump(), this.opts.chunkMs ?? 5);
  }

  private amps(t: number): number {
    // Source mode: no power to the node unless DeviceRunningSet 1; ampere mode: the node has its own supply.
    if (this.state.mode === PPK2_MODE.source && !this.state.dutOn) return 0;
    return Math.max(0, this.opts.source(t).a);
  }

  /** Sends the samples for the time elapsed since the last chunk. */
  private pump(): void {
    const upTo = Math.min(this.now(), this.opts.horizon?.() ?? Infinity);
    const due = Math.floor((upTo - this.t0) / PPK2_SAMPLE_MS);
    const n = due - this.sent;
    if (n <= 0) return;
    const out = Buffer.alloc(4 * n);
    const full = Array.from({ length: PPK2_RANGES }, (_, r) => 0.8 * ppk2Current(this.cal, r, 0x3fff, this.state.vddMv));
    let o = 0;
    for (let k = 0; k < n; k++) {
      const slot = this.sent + k;
      const t = this.t0 + slot * PPK2_SAMPLE_MS;
      if (this.drop > 0) {
        this.drop--; // lost in transit: its counter value never arrives
        continue;
      }
      const a = this.amps(t);
      let range = PPK2_RANGES - 1;
      for (let r = 0; r < PPK2_RANGES - 1; r++) {
        if (a <= full[r]!) {
          range = r;
          break;
        }
      }
      this.stats.rangeUse[range]!++;
      let word = ppk2Encode(this.cal, range, a, this.state.vddMv) | (range << 14) | ((slot & 0x3f) << 18) | (this.digitalAt(t) << 24);
      if (this.garble > 0) {
        this.garble--;
        word = (word | (7 << 14)) ^ (0x15 << 18); // impossible range, wrong counter
      }
      out.writeUInt32LE(word >>> 0, o);
      o += 4;
    }
    this.sent = due;
    this.stats.samples += o / 4;
    let bytes = out.subarray(0, o);
    if (this.slip > 0 && bytes.length > 8) {
      const k = Math.min(this.slip, 3);
      this.slip -= k;
      bytes = Buffer.concat([bytes.subarray(0, 6), bytes.subarray(6 + k)]); // bytes lost mid-word
    }
    this.pty.write(bytes);
  }
}
