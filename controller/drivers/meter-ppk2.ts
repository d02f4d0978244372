// Nordic Power Profiler Kit II over its USB CDC serial port. Protocol as Nordic's nRF Connect Power Profiler
// (pc-nrfconnect-ppk, serialDevice.ts) speaks it: single-byte opcodes with arguments; GetMetadata answers text
// "key: value" lines with the per-range calibration, ending in "END"; once AverageStart is sent, the kit streams
// 100 kS/s of 32-bit little-endian words: ADC value bits 0-13, measurement range bits 14-16, a 6-bit counter in
// bits 18-23 (+1 per sample, so a gap or a garbled word shows), logic inputs D0-D7 in bits 24-31.
import { EventEmitter } from 'node:events';
import { SerialPortStream } from '@serialport/stream';
import { NodeLinkBinding } from './serial-binding.js';
import { hostNow, type MeterDriver, type MeterInfo, type SampleBatch } from './meter.js';

export const PPK2_CMD = {
  AverageStart: 0x06, AverageStop: 0x07, DeviceRunningSet: 0x0c, RegulatorSet: 0x0d, SetPowerMode: 0x11,
  SpikeFilteringOn: 0x15, SpikeFilteringOff: 0x16, GetMetadata: 0x19, Reset: 0x20, SetUserGains: 0x25,
} as const;
/** SetPowerMode argument. */
export const PPK2_MODE = { ampere: 1, source: 2 } as const;
export const PPK2_RATE_HZ = 100_000;
export const PPK2_SAMPLE_MS = 1000 / PPK2_RATE_HZ;
/** Volts per (ADC value × 4) count, before the range's shunt resistor. */
export const PPK2_ADC_MULT = 1.8 / 163840;
export const PPK2_RANGES = 5;

/** Per-range calibration (index = measurement range 0..4): shunt R (Ω), gains, offsets, user gain. */
export interface Ppk2Calibration {
  r: number[];
  gs: number[];
  gi: number[];
  o: number[];
  s: number[];
  i: number[];
  ug: number[];
}

/** Nordic's defaults, used for any value the metadata lacks (or gives as 0, as Nordic's `||` does). */
export const PPK2_DEFAULT_CAL: Ppk2Calibration = {
  r: [1031.64, 101.65, 10.15, 0.94, 0.043], gs: [1, 1, 1, 1, 1], gi: [1, 1, 1, 1, 1],
  o: [0, 0, 0, 0, 0], s: [0, 0, 0, 0, 0], i: [0, 0, 0, 0, 0], ug: [1, 1, 1, 1, 1],
};

export interface Ppk2Metadata {
  calibration: Ppk2Calibration;
  /** Every "key: value" line, keys lower-cased (hw, mode, ia, calibrated, r0, ...). */
  fields: Record<string, number>;
}

export function parsePpk2Metadata(text: string): Ppk2Metadata {
  const end = text.indexOf('END');
  if (end < 0) throw new Error('PPK2 metadata without END');
  const fields: Record<string, number> = {};
  for (const line of text.slice(0, end).split(/\r?\n/)) {
    const m = /^\s*([A-Za-z]+\d*)\s*:\s*(\S+)/.exec(line);
    if (m) fields[m[1]!.toLowerCase()] = Number(m[2]!.replace(/^-?nan$/i, 'NaN'));
  }
  const calibration = {} as Ppk2Calibration;
  for (const key of Object.keys(PPK2_DEFAULT_CAL) as (keyof Ppk2Calibration)[]) {
    calibration[key] = PPK2_DEFAULT_CAL[key].map((d, k) => fields[`${key}${k}`] || d);
  }
  return { calibration, fields };
}

export interface Ppk2Word {
  adc: number;
  range: number;
  counter: number;
  logic: number;
}

export function decodePpk2Word(w: number): Ppk2Word {
  return { adc: w & 0x3fff, range: (w >>> 14) & 0x7, counter: (w >>> 18) & 0x3f, logic: (w >>> 24) & 0xff };
}

/**
 * Amperes for one sample, Nordic's getAdcResult without its display spike filter:
 *   x = (4·adc − O) · ADC_MULT / R;  I = UG · (x · (GS·x + GI) + S·Vdd/1000 + I0)
 */
export function ppk2Current(cal: Ppk2Calibration, range: number, adc: number, vddMv: number): number {
  const x = (adc * 4 - cal.o[range]!) * (PPK2_ADC_MULT / cal.r[range]!);
  return cal.ug[range]! * (x * (cal.gs[range]! * x + cal.gi[range]!) + (cal.s[range]! * (vddMv / 1000) + cal.i[range]!));
}

export interface Ppk2Options {
  name?: string;
  path: string;
  /** 'source': the kit powers the node at vddMv (its voltage is then known); 'ampere': in series with a supply. */
  mode?: 'source' | 'ampere';
  /** Source voltage (mV, 800..5000); in ampere mode the supply voltage reported in batch.v. */
  vddMv?: number;
  /** Sample → arrival delay subtracted from timestamps (ms): the kit sends USB full-speed frames (1 ms). */
  latencyMs?: number;
  reopenMs?: number;
  metadataTimeoutMs?: number;
}

/**
 * Timestamps: sample k of the stream is anchor + k · 10 µs; the anchor comes from the first read (its last sample
 * arrived then, minus latencyMs). Lost samples (counter gaps) advance k, so time stays true across them.
 * Re-anchored after a reconnect. The kit's clock and ours are assumed not to drift over a run.
 */
export class Ppk2Driver extends EventEmitter implements MeterDriver {
  readonly name: string;
  readonly info: MeterInfo;
  readonly stats = { samples: 0, badFrames: 0, disconnects: 0, reconnects: 0, lostSamples: 0 };
  metadata?: Ppk2Metadata;
  private port?: SerialPortStream;
  private phase: 'idle' | 'meta' | 'stream' = 'idle';
  private text = '';
  private metaWaiter?: (text: string) => void;
  private rem: Buffer = Buffer.alloc(0);
  private expected: number | null = null;
  private index = 0;
  private anchor?: number;
  private counted = false; // the current anomaly is already counted
  private stopped = true;
  private announceReconnect = false;
  private reopenTimer?: NodeJS.Timeout;
  private readonly o: Required<Ppk2Options>;

  constructor(opts: Ppk2Options) {
    super();
    this.o = { name: 'ppk2', mode: 'source', vddMv: 5000, latencyMs: 1, reopenMs: 200, metadataTimeoutMs: 2000, ...opts };
    this.name = this.o.name;
    // Finest step: range 0, one ADC count (×4) through the default 1031.64 Ω shunt ≈ 43 nA.
    this.info = { kind: 'ppk2', rateHz: PPK2_RATE_HZ, currentResolutionA: (4 * PPK2_ADC_MULT) / 1031.64, voltageResolutionV: 0.001, latencyMs: this.o.latencyMs, digital: true };
  }

  async start(): Promise<void> {
    this.stopped = false;
    try {
      await this.open();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reopenTimer);
    const port = this.port;
    this.port = undefined;
    this.phase = 'idle';
    if (port?.isOpen) {
      // Stop streaming; the node keeps its power (DeviceRunningSet stays on): stopping a meter is not a power cut.
      await new Promise<void>((res) => port.write(Buffer.from([PPK2_CMD.AverageStop]), () => res()));
      await new Promise<void>((res) => port.close(() => res()));
    }
  }

  /** Range-specific resolution (A per ADC count) for the range a current falls in. */
  resolutionFor(range: number): number {
    const cal = this.metadata?.calibration ?? PPK2_DEFAULT_CAL;
    return (4 * PPK2_ADC_MULT) / cal.r[range]!;
  }

  private send(...bytes: number[]): void {
    this.port?.write(Buffer.from(bytes));
  }

  private async open(): Promise<void> {
    const port = new SerialPortStream({ binding: NodeLinkBinding, path: this.o.path, baudRate: 115200, autoOpen: false, hupcl: false });
    await new Promise<void>((res, rej) => port.open((err) => (err ? rej(new Error(`${this.o.path}: ${err.message}`)) : res())));
    if (this.stopped) {
      port.close();
      return;
    }
    this.port = port;
    port.on('data', (b: Buffer) => this.onData(b));
    port.on('close', (err?: Error | null) => this.lost(port, err?.message ?? 'port closed'));
    port.on('error', (err: Error) => this.lost(port, err.message));
    await this.configure();
  }

  /** Quiet the stream, read the calibration, set mode and voltage, power the node, stream. */
  private async configure(): Promise<void> {
    this.phase = 'idle';
    this.send(PPK2_CMD.AverageStop);
    await new Promise((r) => setTimeout(r, 30)); // words already in flight are discarded while idle
    let text = '';
    for (let attempt = 1; ; attempt++) {
      this.text = '';
      this.phase = 'meta';
      const got = new Promise<string>((res) => (this.metaWaiter = res));
      this.send(PPK2_CMD.GetMetadata);
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([got, new Promise<null>((res) => (timer = setTimeout(() => res(null), this.o.metadataTimeoutMs)))]);
      clearTimeout(timer);
      if (r !== null) {
        text = r;
        break;
      }
      if (attempt >= 3 || !this.port) throw new Error(`${this.o.path}: no PPK2 metadata after ${attempt} tries`);
    }
    this.metadata = parsePpk2Metadata(text);
    const mv = Math.min(5000, Math.max(800, Math.round(this.o.vddMv)));
    this.send(PPK2_CMD.SetPowerMode, PPK2_MODE[this.o.mode]);
    this.send(PPK2_CMD.RegulatorSet, mv >> 8, mv & 0xff);
    if (this.o.mode === 'source') this.send(PPK2_CMD.DeviceRunningSet, 1);
    this.rem = Buffer.alloc(0);
    this.expected = null;
    this.index = 0;
    this.anchor = undefined;
    this.phase = 'stream';
    this.send(PPK2_CMD.AverageStart);
  }

  private lost(port: SerialPortStream, reason: string): void {
    if (this.stopped || this.port !== port) return;
    this.port = undefined;
    this.phase = 'idle';
    if (port.isOpen) port.close();
    this.stats.disconnects++;
    this.announceReconnect = true;
    this.emit('disconnect', `${this.o.path}: ${reason}`);
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    this.reopenTimer = setTimeout(() => {
      if (this.stopped) return;
      this.open().catch(() => {
        if (this.port) this.port.close();
        this.port = undefined;
        this.scheduleReopen();
      });
    }, this.o.reopenMs);
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'meta') {
      this.text += chunk.toString('latin1');
      const end = this.text.indexOf('END');
      if (end >= 0) {
        this.phase = 'idle'; // bytes after END are not samples yet: streaming starts with AverageStart
        this.metaWaiter?.(this.text.slice(0, end + 3));
        this.metaWaiter = undefined;
      }
    } else if (this.phase === 'stream') {
      this.onStream(chunk, hostNow());
    }
  }

  private bad(msg: string): void {
    if (this.counted) return;
    this.counted = true;
    this.stats.badFrames++;
    this.emit('warning', `${this.name}: ${msg}`);
  }

  private onStream(chunk: Buffer, arrival: number): void {
    const b = this.rem.length ? Buffer.concat([this.rem, chunk]) : chunk;
    const cap = (b.length >> 2) + 1;
    const idx = new Float64Array(cap);
    const amps = new Float64Array(cap);
    const logic = new Uint8Array(cap);
    const cal = this.metadata!.calibration;
    const vdd = this.o.vddMv;
    let n = 0;
    let pos = 0;
    const valid = (w: number): boolean => ((w >>> 14) & 7) < PPK2_RANGES;
    const counterOf = (w: number): number => (w >>> 18) & 0x3f;
    // k words from p on, each valid and counting up by one
    const run = (p: number, k: number): boolean => {
      if (p + 4 * k > b.length) return false;
      const c0 = counterOf(b.readUInt32LE(p));
      for (let j = 0; j < k; j++) {
        const w = b.readUInt32LE(p + 4 * j);
        if (!valid(w) || counterOf(w) !== ((c0 + j) & 0x3f)) return false;
      }
      return true;
    };
    while (b.length - pos >= 4) {
      const w = b.readUInt32LE(pos);
      if (this.expected === null ? valid(w) : valid(w) && counterOf(w) === this.expected) {
        idx[n] = this.index++;
        amps[n] = ppk2Current(cal, (w >>> 14) & 7, w & 0x3fff, vdd);
        logic[n++] = w >>> 24;
        this.expected = (counterOf(w) + 1) & 0x3f;
        this.counted = false;
        pos += 4;
        continue;
      }
      if (b.length - pos < 16) break; // decide with a few words of context
      const next = b.readUInt32LE(pos + 4);
      if (this.expected !== null && valid(next) && counterOf(next) === ((this.expected + 1) & 0x3f)) {
        this.bad(`garbled word 0x${w.toString(16).padStart(8, '0')} dropped`);
        this.index++; // it held a sample slot
        this.expected = (this.expected + 1) & 0x3f;
        pos += 4;
        continue;
      }
      let shift = -1;
      for (let s = 0; s < 4 && shift < 0; s++) if (run(pos + s, 3)) shift = s;
      if (shift < 0) {
        this.bad('unreadable bytes skipped');
        pos += 1;
        continue;
      }
      if (shift > 0) this.bad(`stream realigned by ${shift} byte(s)`);
      const c = counterOf(b.readUInt32LE(pos + shift));
      const missing = this.expected === null ? 0 : (c - this.expected) & 0x3f;
      if (missing) {
        this.bad(`counter gap: ${missing} sample(s) lost`);
        this.index += missing;
        this.stats.lostSamples += missing;
      }
      this.expected = c;
      pos += shift;
    }
    this.rem = Buffer.from(b.subarray(pos));
    if (n === 0) return;
    this.anchor ??= arrival - this.o.latencyMs - idx[n - 1]! * PPK2_SAMPLE_MS;
    const batch: SampleBatch = { t: new Float64Array(n), v: new Float64Array(n).fill(vdd / 1000), i: amps.slice(0, n), d: logic.slice(0, n) };
    for (let k = 0; k < n; k++) batch.t[k] = this.anchor + idx[k]! * PPK2_SAMPLE_MS;
    this.stats.samples += n;
    if (this.announceReconnect) {
      this.announceReconnect = false;
      this.stats.reconnects++;
      this.emit('reconnect');
    }
    this.emit('samples', batch);
  }
}
