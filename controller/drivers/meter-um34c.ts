// RDTech UM24C / UM25C / UM34C USB meters over their serial link (Bluetooth SPP: /dev/rfcommN, same bytes on a
// wired UART). Protocol (sigrok wiki "RDTech UM series", libsigrok rdtech-um): the host sends 0xF0, the meter
// answers one 130-byte big-endian frame. Bytes 0-1 model id; 2-3 voltage (UM24C/34C 10 mV, UM25C 1 mV); 4-5
// current (1 mA / 0.1 mA); 6-9 power mW; 10-11 °C; 12-13 °F; 14-15 selected data group; 16-95 ten groups of
// (mAh u32, mWh u32); 96-97 D+ and 98-99 D- (10 mV); 100-101 charging mode; 102-105 record mAh; 106-109 record
// mWh; 110-111 record threshold (10 mA); 112-115 record seconds; 116-117 recording; 118-119 screen timeout (min);
// 120-121 backlight; 122-125 resistance (0.1 Ω); 126-127 screen; 128-129 integrity: UM24C/UM25C end marker
// 0xFFF1, UM34C byte 129 = XOR of the bytes at UM34C_CHECKSUM_POSITIONS (byte 128 unchecked).
import { EventEmitter } from 'node:events';
import { SerialPortStream } from '@serialport/stream';
import { NodeLinkBinding } from './serial-binding.js';
import { hostNow, type MeterDriver, type MeterInfo, type SampleBatch } from './meter.js';

export type UmModel = 'um24c' | 'um25c' | 'um34c';
export const UM_MODEL_IDS: Record<UmModel, number> = { um24c: 0x0963, um25c: 0x09c9, um34c: 0x0d4c };
export const UM_FRAME_LEN = 130;
/** Single-byte commands: poll, next/prev screen, rotate, clear group; 0xA0+g group, 0xB0+n record threshold
 * (n × 10 mA), 0xD0+b backlight, 0xE0+m screen timeout. */
export const UM_CMD = { poll: 0xf0, next: 0xf1, rotate: 0xf2, prev: 0xf3, clearGroup: 0xf4, group: 0xa0, threshold: 0xb0, backlight: 0xd0, timeout: 0xe0 } as const;
export const UM34C_CHECKSUM_POSITIONS = [1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57, 59, 63, 67, 69, 73, 79, 83, 89, 97, 99, 109, 111, 113, 119, 121, 127];
/** Live-value resolution per model (V, A); data groups are mAh/mWh on all three. */
export const UM_SCALE: Record<UmModel, { v: number; i: number }> = { um24c: { v: 0.01, i: 0.001 }, um25c: { v: 0.001, i: 0.0001 }, um34c: { v: 0.01, i: 0.001 } };

export interface UmFrame {
  model: UmModel;
  volts: number;
  amps: number;
  watts: number;
  tempC: number;
  tempF: number;
  group: number;
  groups: { mAh: number; mWh: number }[];
  dPlusV: number;
  dMinusV: number;
  chargeMode: number;
  record: { mAh: number; mWh: number; thresholdA: number; seconds: number; active: boolean };
  screenTimeoutMin: number;
  backlight: number;
  resistanceOhm: number;
  screen: number;
}

export function modelOf(id: number): UmModel | undefined {
  return (Object.keys(UM_MODEL_IDS) as UmModel[]).find((m) => UM_MODEL_IDS[m] === id);
}

export function um34cChecksum(frame: Uint8Array): number {
  let x = 0;
  for (const p of UM34C_CHECKSUM_POSITIONS) x ^= frame[p]!;
  return x;
}

/** Why a 130-byte frame is not trustworthy, or undefined when it is. */
export function frameProblem(f: Buffer): string | undefined {
  if (f.length !== UM_FRAME_LEN) return `frame is ${f.length} bytes, not ${UM_FRAME_LEN}`;
  const model = modelOf(f.readUInt16BE(0));
  if (!model) return `unknown model id 0x${f.readUInt16BE(0).toString(16).padStart(4, '0')}`;
  if (model === 'um34c') {
    const sum = um34cChecksum(f);
    return sum === f[129] ? undefined : `UM34C checksum 0x${f[129]!.toString(16)} ≠ 0x${sum.toString(16)}`;
  }
  return f.readUInt16BE(128) === 0xfff1 ? undefined : `end marker 0x${f.readUInt16BE(128).toString(16)} ≠ 0xfff1`;
}

export function parseUmFrame(f: Buffer): UmFrame {
  const problem = frameProblem(f);
  if (problem) throw new Error(problem);
  const model = modelOf(f.readUInt16BE(0))!;
  const s = UM_SCALE[model];
  const groups = Array.from({ length: 10 }, (_, g) => ({ mAh: f.readUInt32BE(16 + 8 * g), mWh: f.readUInt32BE(20 + 8 * g) }));
  return {
    model,
    volts: f.readUInt16BE(2) * s.v,
    amps: f.readUInt16BE(4) * s.i,
    watts: f.readUInt32BE(6) / 1000,
    tempC: f.readUInt16BE(10),
    tempF: f.readUInt16BE(12),
    group: f.readUInt16BE(14),
    groups,
    dPlusV: f.readUInt16BE(96) / 100,
    dMinusV: f.readUInt16BE(98) / 100,
    chargeMode: f.readUInt16BE(100),
    record: { mAh: f.readUInt32BE(102), mWh: f.readUInt32BE(106), thresholdA: f.readUInt16BE(110) / 100, seconds: f.readUInt32BE(112), active: f.readUInt16BE(116) !== 0 },
    screenTimeoutMin: f.readUInt16BE(118),
    backlight: f.readUInt16BE(120),
    resistanceOhm: f.readUInt32BE(122) / 10,
    screen: f.readUInt16BE(126),
  };
}

export interface UmMeterOptions {
  name?: string;
  /** /dev/rfcommN, a USB-serial adapter or a pty; reopened at the same path after a loss. */
  path: string;
  baudRate?: number;
  /** Poll period (ms): 100 → 10 Hz, what the meters sustain. */
  pollMs?: number;
  /** Random ± fraction of pollMs added to each poll period against aliasing (default 0.3; 0 = fixed). */
  pollJitter?: number;
  /** Retry period (ms) for reopening a lost port. */
  reopenMs?: number;
  /** No answer at all within this long (ms): poll again (counted in stats.timeouts). */
  timeoutMs?: number;
  /** An incomplete frame with no new byte for this long (ms) is dropped as truncated. */
  frameGapMs?: number;
}

/**
 * Timestamps: the meter samples between our request and its answer; we stamp the midpoint, i.e. arrival minus
 * half the round trip (info.latencyMs follows the measured half round trip).
 */
export class UmMeterDriver extends EventEmitter implements MeterDriver {
  readonly name: string;
  readonly info: MeterInfo = { kind: 'um34c', rateHz: 10, currentResolutionA: 0.001, voltageResolutionV: 0.01, latencyMs: 0, digital: false };
  readonly stats = { samples: 0, badFrames: 0, disconnects: 0, reconnects: 0, timeouts: 0 };
  model?: UmModel;
  lastFrame?: UmFrame;
  private port?: SerialPortStream;
  private buf: Buffer = Buffer.alloc(0);
  private lastByteAt = 0;
  private sentAt = 0;
  private awaiting = false;
  private bytesSinceRequest = 0;
  private counted = false; // this response already counted as one bad frame
  private pollTimer?: NodeJS.Timeout;
  private reopenTimer?: NodeJS.Timeout;
  private stopped = true;
  private announceReconnect = false;
  private firstFrame?: () => void;
  private readonly o: Required<UmMeterOptions>;

  constructor(opts: UmMeterOptions) {
    super();
    this.o = { name: opts.name ?? 'um34c', baudRate: 9600, pollMs: 100, pollJitter: 0.3, reopenMs: 200, timeoutMs: 500, frameGapMs: 30, ...opts };
    this.name = this.o.name;
  }

  async start(timeoutMs = 3000): Promise<void> {
    this.stopped = false;
    const answered = new Promise<void>((res) => (this.firstFrame = res));
    await this.open();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([answered, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`${this.o.path}: no UM meter frame within ${timeoutMs} ms`)), timeoutMs)))]);
    } catch (e) {
      await this.stop();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.reopenTimer);
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((res) => port.close(() => res()));
  }

  /** Sends a single-byte command (UM_CMD.next, UM_CMD.group + 3, ...). */
  command(byte: number): void {
    this.port?.write(Buffer.from([byte & 0xff]));
  }

  private async open(): Promise<void> {
    // No DTR/RTS games: ptys reject those ioctls and the meter ignores them.
    const port = new SerialPortStream({ binding: NodeLinkBinding, path: this.o.path, baudRate: this.o.baudRate, autoOpen: false, hupcl: false });
    await new Promise<void>((res, rej) => port.open((err) => (err ? rej(new Error(`${this.o.path}: ${err.message}`)) : res())));
    if (this.stopped) {
      port.close();
      return;
    }
    this.port = port;
    this.buf = Buffer.alloc(0);
    this.awaiting = false;
    port.on('data', (b: Buffer) => this.onData(b));
    port.on('close', (err?: Error | null) => this.lost(port, err?.message ?? 'port closed'));
    port.on('error', (err: Error) => this.lost(port, err.message));
    // Dithered poll period: a load whose own period divides the poll period (e.g. a node streaming fixed-size
    // result lines at a fixed baud) would otherwise be sampled at the same phase every time and alias.
    const next = () => {
      this.pollTimer = setTimeout(() => {
        if (this.port !== port || this.stopped) return;
        this.tick();
        next();
      }, this.o.pollMs * (1 + this.o.pollJitter * (2 * Math.random() - 1)));
    };
    next();
    this.tick();
  }

  private lost(port: SerialPortStream, reason: string): void {
    if (this.stopped || this.port !== port) return;
    this.port = undefined;
    clearInterval(this.pollTimer);
    if (port.isOpen) port.close();
    this.stats.disconnects++;
    this.announceReconnect = true;
    this.emit('disconnect', `${this.o.path}: ${reason}`);
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    this.reopenTimer = setTimeout(() => {
      if (this.stopped) return;
      this.open().catch(() => this.scheduleReopen());
    }, this.o.reopenMs);
  }

  private tick(): void {
    const now = hostNow();
    if (this.buf.length > 0 && now - this.lastByteAt < this.o.frameGapMs) return; // an answer is arriving
    if (this.buf.length > 0) {
      this.bad(`truncated frame dropped (${this.buf.length} of ${UM_FRAME_LEN} bytes)`);
      this.buf = Buffer.alloc(0);
    }
    if (this.awaiting && this.bytesSinceRequest === 0) {
      if (now - this.sentAt < this.o.timeoutMs) return;
      this.stats.timeouts++;
    }
    this.awaiting = true;
    this.bytesSinceRequest = 0;
    this.counted = false;
    this.sentAt = hostNow();
    this.port?.write(Buffer.from([UM_CMD.poll]));
  }

  private bad(msg: string): void {
    if (this.counted) return; // one response, one count
    this.counted = true;
    this.stats.badFrames++;
    this.emit('warning', `${this.name}: ${msg}`);
  }

  private isHeader(k: number): boolean {
    const id = this.buf.readUInt16BE(k);
    return this.model ? id === UM_MODEL_IDS[this.model] : modelOf(id) !== undefined;
  }

  private onData(chunk: Buffer): void {
    const arrival = hostNow();
    this.lastByteAt = arrival;
    this.bytesSinceRequest += chunk.length;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 2) {
      // Resync: a frame starts with a model id.
      let k = 0;
      while (k + 1 < this.buf.length && !this.isHeader(k)) k++;
      if (k > 0) {
        this.bad(`${k} bytes without a frame header skipped`);
        this.buf = this.buf.subarray(k);
      }
      if (this.buf.length < UM_FRAME_LEN) break;
      const frame = Buffer.from(this.buf.subarray(0, UM_FRAME_LEN));
      const problem = frameProblem(frame);
      if (problem) {
        this.bad(`bad frame dropped: ${problem}`);
        this.buf = this.buf.subarray(1); // look for the next header inside
        continue;
      }
      this.buf = this.buf.subarray(UM_FRAME_LEN);
      this.accept(parseUmFrame(frame), arrival);
    }
  }

  private accept(f: UmFrame, arrival: number): void {
    if (!this.model) {
      this.model = f.model;
      this.info.kind = f.model === 'um25c' ? 'um25c' : 'um34c';
      this.info.currentResolutionA = UM_SCALE[f.model].i;
      this.info.voltageResolutionV = UM_SCALE[f.model].v;
    }
    const half = this.awaiting ? (arrival - this.sentAt) / 2 : this.info.latencyMs;
    this.awaiting = false;
    this.counted = false;
    this.info.latencyMs = this.stats.samples === 0 ? half : 0.9 * this.info.latencyMs + 0.1 * half;
    this.lastFrame = f;
    this.stats.samples++;
    const batch: SampleBatch = { t: Float64Array.of(arrival - half), v: Float64Array.of(f.volts), i: Float64Array.of(f.amps) };
    this.firstFrame?.();
    this.firstFrame = undefined;
    if (this.announceReconnect) {
      this.announceReconnect = false;
      this.stats.reconnects++;
      this.emit('reconnect');
    }
    this.emit('samples', batch);
  }
}
