// An RDTech UM24C/UM25C/UM34C on a real pty: answers each 0xF0 with a 130-byte frame (layout in
// drivers/meter-um34c.ts) built from a reading source — the power model of a virtual node — at the moment the
// request arrives, quantized like the meter (10 mV / 1 mA; UM25C 1 mV / 0.1 mA). The other single-byte commands
// change the display state harmlessly. Test hooks corrupt the next answer to exercise the driver's checks.
import { hostNow } from '../drivers/meter.js';
import { UM_CMD, UM_FRAME_LEN, UM_MODEL_IDS, UM_SCALE, um34cChecksum, type UmFrame, type UmModel } from '../drivers/meter-um34c.js';
import { PtyEndpoint } from './pty.js';

export type ReadingSource = (tMs: number) => { v: number; a: number };

/** What the emulator encodes: a parsed frame minus what the meter derives itself (power, °F, load resistance). */
export type UmFields = Omit<UmFrame, 'model' | 'watts' | 'tempF' | 'resistanceOhm'>;

/** The meter's own encoding of one reading (what its firmware would send). */
export function buildUmFrame(model: UmModel, f: UmFields): Buffer {
  const s = UM_SCALE[model];
  const b = Buffer.alloc(UM_FRAME_LEN);
  const vq = Math.min(0xffff, Math.max(0, Math.round(f.volts / s.v)));
  const iq = Math.min(0xffff, Math.max(0, Math.round(f.amps / s.i)));
  b.writeUInt16BE(UM_MODEL_IDS[model], 0);
  b.writeUInt16BE(vq, 2);
  b.writeUInt16BE(iq, 4);
  b.writeUInt32BE(Math.round(vq * s.v * iq * s.i * 1000), 6); // mW from the quantized values, as the meter shows
  b.writeUInt16BE(Math.round(f.tempC), 10);
  b.writeUInt16BE(Math.round((f.tempC * 9) / 5 + 32), 12);
  b.writeUInt16BE(f.group, 14);
  f.groups.forEach((g, k) => {
    b.writeUInt32BE(Math.floor(g.mAh), 16 + 8 * k);
    b.writeUInt32BE(Math.floor(g.mWh), 20 + 8 * k);
  });
  b.writeUInt16BE(Math.round(f.dPlusV * 100), 96);
  b.writeUInt16BE(Math.round(f.dMinusV * 100), 98);
  b.writeUInt16BE(f.chargeMode, 100);
  b.writeUInt32BE(Math.floor(f.record.mAh), 102);
  b.writeUInt32BE(Math.floor(f.record.mWh), 106);
  b.writeUInt16BE(Math.round(f.record.thresholdA * 100), 110);
  b.writeUInt32BE(Math.floor(f.record.seconds), 112);
  b.writeUInt16BE(f.record.active ? 1 : 0, 116);
  b.writeUInt16BE(f.screenTimeoutMin, 118);
  b.writeUInt16BE(f.backlight, 120);
  const ohm = iq > 0 ? (vq * s.v) / (iq * s.i) : 9999.9;
  b.writeUInt32BE(Math.round(Math.min(ohm, 9999.9) * 10), 122);
  b.writeUInt16BE(f.screen, 126);
  if (model === 'um34c') {
    b[128] = 0x80; // seen in captures; not part of the check
    b[129] = um34cChecksum(b);
  } else {
    b.writeUInt16BE(0xfff1, 128);
  }
  return b;
}

export interface UmEmulatorOptions {
  source: ReadingSource;
  model?: UmModel;
  /** Stable path for the driver (kept across unplug/replug). */
  link?: string;
  name?: string;
  now?: () => number;
  /** The meter's own conversion period (ms); a poll returns the reading of the latest conversion (the driver's
   * stamp then lags the conversion by up to this much). 0 (default): converts when polled. */
  internalPeriodMs?: number;
}

export type UmCorruption = 'header' | 'trailer' | 'truncate';

export class UmEmulator {
  readonly pty: PtyEndpoint;
  readonly model: UmModel;
  readonly stats = { polls: 0, commands: 0, corrupted: 0 };
  readonly state = { group: 0, screen: 0, rotation: 0, backlight: 4, timeoutMin: 1, thresholdA: 0.1 };
  private readonly groups = Array.from({ length: 10 }, () => ({ mAh: 0, mWh: 0 }));
  private readonly record = { mAh: 0, mWh: 0, seconds: 0 };
  private lastPoll?: { t: number; v: number; a: number };
  private corrupt: UmCorruption[] = [];
  private readonly now: () => number;
  private readonly phase = Math.random() * 1000;

  constructor(readonly opts: UmEmulatorOptions) {
    this.model = opts.model ?? 'um34c';
    this.now = opts.now ?? hostNow;
    this.pty = new PtyEndpoint({ link: opts.link, name: opts.name ?? this.model });
    this.pty.on('data', (b: Buffer) => {
      for (const byte of b) this.onCommand(byte);
    });
  }

  get path(): string {
    return this.pty.path;
  }

  start(): Promise<string> {
    return this.pty.start();
  }

  stop(): Promise<void> {
    return this.pty.stop();
  }

  unplug(): Promise<void> {
    return this.pty.unplug();
  }

  replug(): Promise<string> {
    return this.pty.replug();
  }

  /** The next answer(s) go out broken, in this order. */
  corruptNext(...kinds: UmCorruption[]): void {
    this.corrupt.push(...kinds);
  }

  private onCommand(c: number): void {
    if (c === UM_CMD.poll) return this.answer();
    this.stats.commands++;
    const s = this.state;
    if (c === UM_CMD.next) s.screen = (s.screen + 1) % 6;
    else if (c === UM_CMD.prev) s.screen = (s.screen + 5) % 6;
    else if (c === UM_CMD.rotate) s.rotation = (s.rotation + 1) % 4;
    else if (c === UM_CMD.clearGroup) this.groups[s.group] = { mAh: 0, mWh: 0 };
    else if (c >= UM_CMD.group && c <= UM_CMD.group + 9) s.group = c - UM_CMD.group;
    else if (c >= UM_CMD.threshold && c <= 0xce) s.thresholdA = (c - UM_CMD.threshold) / 100;
    else if (c >= UM_CMD.backlight && c <= UM_CMD.backlight + 5) s.backlight = c - UM_CMD.backlight;
    else if (c >= UM_CMD.timeout && c <= UM_CMD.timeout + 9) s.timeoutMin = c - UM_CMD.timeout;
    // anything else: the meter ignores it
  }

  private answer(): void {
    this.stats.polls++;
    // The meter converts on its own clock (~10 Hz) and answers a poll with its latest reading: the sampling
    // instants are a fixed grid, independent of when the host asks (which, on the virtual rig, is the same busy
    // event loop as the load: sampling at poll time would correlate with the load and bias the energy).
    const now = this.now();
    const P = this.opts.internalPeriodMs ?? 0;
    const t = P > 0 ? now - ((now - this.phase) % P) : now;
    const { v, a } = this.opts.source(t);
    // Data groups and the threshold record integrate what the meter measures between polls.
    if (this.lastPoll) {
      const h = (t - this.lastPoll.t) / 3_600_000;
      const g = this.groups[this.state.group]!;
      g.mAh += this.lastPoll.a * 1000 * h;
      g.mWh += this.lastPoll.v * this.lastPoll.a * 1000 * h;
      if (this.lastPoll.a >= this.state.thresholdA) {
        this.record.mAh += this.lastPoll.a * 1000 * h;
        this.record.mWh += this.lastPoll.v * this.lastPoll.a * 1000 * h;
        this.record.seconds += (t - this.lastPoll.t) / 1000;
      }
    }
    this.lastPoll = { t, v, a };
    const frame = buildUmFrame(this.model, {
      volts: v, amps: a, tempC: 25 + 3 * a, group: this.state.group, groups: this.groups,
      dPlusV: 0.02, dMinusV: 0.01, chargeMode: 0,
      record: { ...this.record, thresholdA: this.state.thresholdA, active: a >= this.state.thresholdA },
      screenTimeoutMin: this.state.timeoutMin, backlight: this.state.backlight, screen: this.state.screen,
    });
    const kind = this.corrupt.shift();
    if (kind) this.stats.corrupted++;
    if (kind === 'header') frame.writeUInt16BE(0xdead, 0);
    if (kind === 'trailer') frame[129] = frame[129]! ^ 0x5a;
    this.pty.write(kind === 'truncate' ? frame.subarray(0, 60) : frame);
  }
}
