// INA219 / INA226 current sensors on a Firmata board's I2C bus (johnny-five has no INA2xx component, so the
// driver talks registers through the board's io: i2cConfig / i2cWrite / i2cRead / i2cReadOnce).
// Register maps, LSBs and the calibration equations are the TI datasheets' (INA219 SBOS448, INA226 SBOS547).
import { EventEmitter } from 'node:events';
import { FirmataBoard, FirmataError, I2C_REPLY, type FirmataFrameError, type FirmataIo } from './firmata.js';
import { hostNow, type MeterDriver, type MeterInfo, type SampleBatch } from './meter.js';

export type InaKind = 'ina219' | 'ina226';

const REG = { CONFIG: 0, SHUNT: 1, BUS: 2, POWER: 3, CURRENT: 4, CAL: 5, MASK: 6, MFR_ID: 0xfe, DIE_ID: 0xff } as const;

/** Datasheet constants: calibration scale, current-register divisor, power LSB ratio, voltage LSBs. */
export const INA = {
  ina219: { calScale: 0.04096, currentDiv: 4096, powerRatio: 20, shuntLsbV: 10e-6, busLsbV: 4e-3, calMax: 0xfffe, lsbBits: 32767 },
  ina226: { calScale: 0.00512, currentDiv: 2048, powerRatio: 25, shuntLsbV: 2.5e-6, busLsbV: 1.25e-3, calMax: 0x7fff, lsbBits: 32768 },
} as const;

// ---- calibration maths (pure) ----------------------------------------------------------------------------------

/** Smallest Current_LSB for a maximum expected current: INA219 step 4 divides by 32767, INA226 eq. 2 by 2^15. */
export function minimumCurrentLsb(kind: InaKind, maxCurrentA: number): number {
  return maxCurrentA / INA[kind].lsbBits;
}

/** Cal = trunc(0.04096 / (Current_LSB × Rshunt)) (INA219), trunc(0.00512 / (Current_LSB × Rshunt)) (INA226). */
export function calibrationValue(kind: InaKind, shuntOhms: number, currentLsbA: number): number {
  const exact = INA[kind].calScale / (currentLsbA * shuntOhms);
  return Math.floor(exact * (1 + 1e-12)); // 0.04096/(0.001·0.002) is 20479.99999… in binary floating point
}

/**
 * INA219 equation 6 (INA226 equation 5 is the same): after comparing the chip with an ammeter,
 * Corrected_Full_Scale_Cal = trunc(Cal × MeasShuntCurrent / INA_Current).
 */
export function correctedCalibration(cal: number, chipCurrentA: number, meterCurrentA: number): number {
  return Math.floor((cal * meterCurrentA) / chipCurrentA);
}

export interface CalibrationPlan {
  calibration: number;
  /** LSB of the current register (A). */
  currentLsbA: number;
  powerLsbW: number;
  /** Largest current the current register holds before the math overflows (A). */
  maxCurrentA: number;
}

/**
 * Calibration from the shunt and the maximum expected current. Without an explicit Current_LSB the driver takes
 * the datasheet minimum, truncates Cal (INA219: bit 0 is void, so even), then uses the LSB that this integer Cal
 * really gives, Current_LSB = scale / (Cal × Rshunt): the register then reads in exact units, with no
 * truncation error left in the conversion.
 */
export function planCalibration(kind: InaKind, shuntOhms: number, maxCurrentA: number, currentLsbA?: number): CalibrationPlan {
  const k = INA[kind];
  if (!(shuntOhms > 0) || !(maxCurrentA > 0)) throw new RangeError(`${kind}: shunt ohms and max current must be positive`);
  const lsb = currentLsbA ?? minimumCurrentLsb(kind, maxCurrentA);
  let cal = calibrationValue(kind, shuntOhms, lsb);
  if (kind === 'ina219') cal &= ~1;
  if (cal < 1 || cal > k.calMax) {
    const fix = cal > k.calMax ? `raise the current LSB to at least ${(k.calScale / (k.calMax * shuntOhms)).toExponential(3)} A` : 'lower the current LSB or use a larger shunt';
    throw new RangeError(`${kind}: calibration ${cal} for ${shuntOhms} Ω and LSB ${lsb} A is outside 1..${k.calMax}; ${fix}`);
  }
  const effective = currentLsbA ?? k.calScale / (cal * shuntOhms);
  if (maxCurrentA / effective > 32767) throw new RangeError(`${kind}: ${maxCurrentA} A overflows the current register with LSB ${effective} A`);
  return { calibration: cal, currentLsbA: effective, powerLsbW: k.powerRatio * effective, maxCurrentA: effective * 32767 };
}

// ---- register decoding (pure) ----------------------------------------------------------------------------------

const int16 = (raw: number): number => ((raw & 0xffff) ^ 0x8000) - 0x8000;

export function decodeShunt(kind: InaKind, raw: number): number {
  return int16(raw) * INA[kind].shuntLsbV;
}

/** INA219: bits 15..3 are the voltage, bit 1 CNVR (conversion ready), bit 0 OVF (math overflow). */
export function decodeBus(kind: InaKind, raw: number): { volts: number; cnvr: boolean; ovf: boolean } {
  if (kind === 'ina226') return { volts: (raw & 0x7fff) * INA.ina226.busLsbV, cnvr: false, ovf: false };
  return { volts: ((raw & 0xffff) >> 3) * INA.ina219.busLsbV, cnvr: !!(raw & 2), ovf: !!(raw & 1) };
}

export function decodeCurrent(raw: number, currentLsbA: number): number {
  return int16(raw) * currentLsbA;
}

export function decodePower(raw: number, powerLsbW: number): number {
  return (raw & 0xffff) * powerLsbW;
}

/** INA226 mask/enable register: bit 3 CVRF (conversion ready), bit 2 OVF. */
export function decodeMask(raw: number): { cvrf: boolean; ovf: boolean } {
  return { cvrf: !!(raw & 8), ovf: !!(raw & 4) };
}

// ---- configuration ---------------------------------------------------------------------------------------------

const INA219_SAMPLES = [1, 2, 4, 8, 16, 32, 64, 128];
const INA219_US = [532, 1060, 2130, 4260, 8510, 17020, 34050, 68100];
const INA226_SAMPLES = [1, 4, 16, 64, 128, 256, 512, 1024];
const INA226_CT_US = [140, 204, 332, 588, 1100, 2116, 4156, 8244];
const INA219_PGA_MV = [40, 80, 160, 320];

export interface InaSetup {
  config: number;
  /** Time between two completed shunt+bus conversions in continuous mode (ms). */
  periodMs: number;
  /** Centre of the shunt (current) averaging window, from the start of a conversion cycle (ms). */
  currentCentreMs: number;
  samples: number;
}

/** INA219: 12-bit ADCs averaging `samples`, shunt range from the PGA, continuous shunt and bus (mode 7). */
export function ina219Config(o: { busRangeV: 16 | 32; shuntRangeMv: number; samples: number }): InaSetup {
  const pg = INA219_PGA_MV.indexOf(o.shuntRangeMv), n = INA219_SAMPLES.indexOf(o.samples);
  if (pg < 0) throw new RangeError(`ina219: shunt range ${o.shuntRangeMv} mV is not one of ${INA219_PGA_MV.join('/')}`);
  if (n < 0) throw new RangeError(`ina219: averaging ${o.samples} is not one of ${INA219_SAMPLES.join('/')}`);
  const adc = 0x8 | n;
  const config = ((o.busRangeV === 32 ? 1 : 0) << 13) | (pg << 11) | (adc << 7) | (adc << 3) | 7;
  // The INA219 converts (and averages) the shunt first, then the bus: the current is centred in the first half.
  const ms = INA219_US[n]! / 1000;
  return { config, periodMs: 2 * ms, currentCentreMs: ms / 2, samples: o.samples };
}

/** INA226: both conversions at `conversionUs`, averaging `samples`, continuous shunt and bus (mode 7). */
export function ina226Config(o: { samples: number; conversionUs: number }): InaSetup {
  const n = INA226_SAMPLES.indexOf(o.samples), ct = INA226_CT_US.indexOf(o.conversionUs);
  if (n < 0) throw new RangeError(`ina226: averaging ${o.samples} is not one of ${INA226_SAMPLES.join('/')}`);
  if (ct < 0) throw new RangeError(`ina226: conversion time ${o.conversionUs} µs is not one of ${INA226_CT_US.join('/')}`);
  const config = 0x4000 | (n << 9) | (ct << 6) | (ct << 3) | 7;
  // The INA226 alternates one shunt and one bus conversion per averaged sample: the shunt samples are centred
  // half a bus conversion before the middle of the cycle.
  const periodMs = (2 * o.conversionUs * o.samples) / 1000;
  return { config, periodMs, currentCentreMs: periodMs / 2 - o.conversionUs / 2000, samples: o.samples };
}

/** Why a 2-byte register reply cannot be used: truncated, or a byte that is not a byte (firmata-io glued END_SYSEX). */
function replyProblem(d: number[]): string | undefined {
  if (d.length !== 2) return `truncated I2C reply (${d.length} of 2 data bytes)`;
  if (d.some((b) => !(b >= 0 && b <= 0xff))) return `malformed I2C reply (byte values ${d.join(', ')})`;
  return undefined;
}

// ---- driver ----------------------------------------------------------------------------------------------------

export interface Ina2xxOptions {
  name: string;
  kind: InaKind;
  /** An open board shared with relays and other sensors, or a port path this driver opens and closes. */
  board: FirmataBoard | string;
  /** 7-bit I2C address (0x40 with A0 = A1 = GND). */
  address?: number;
  shuntOhms: number;
  maxCurrentA: number;
  currentLsbA?: number;
  /** Calibration register value after a system calibration (correctedCalibration); default: computed. */
  calibration?: number;
  /** INA219 bus range (default 16 V: nodes run from 3.3–5 V). */
  busRangeV?: 16 | 32;
  /** Averaging; default the largest whose conversion period fits one Firmata sampling interval. */
  averaging?: number;
  /** INA226 conversion time per shunt/bus conversion (µs, default 1100). */
  conversionUs?: number;
  /** Sets the board's Firmata sampling interval (shared by everything on the board). */
  samplingIntervalMs?: number;
  batchMs?: number;
  /** Config + calibration read back this often; a chip that lost them (brown-out reset) is reprogrammed. */
  checkEveryMs?: number;
}

interface Tick {
  tArr: number; fresh: boolean; ovf: boolean; v?: number; i?: number;
  /** Index in regs of the last reply seen. */
  last: number;
  /** A reply of this interval was bad or missing (already counted when it was detected). */
  bad: boolean;
}

/**
 * Streams (v, i) samples read continuously by the Firmata board each sampling interval: INA219 reads bus (with
 * CNVR/OVF), current, then power (a power read clears CNVR, so CNVR marks a fresh conversion next time); INA226
 * reads mask/enable (CVRF/OVF; the read clears CVRF), bus, current. Stale (not yet reconverted) and overflowed
 * results are dropped and counted.
 *
 * Timestamps: t is the centre of the current's averaging window, t = arrival − latency with
 *   latency = RTT/2 + min(P, interval)/2 + (P − current centre),
 * RTT being the shortest round trip of the I2C register reads at start (host → board → I2C → host), so RTT/2 is
 * the age of a reply at arrival; a conversion completes on average min(P, interval)/2 before the board reads it
 * (continuous conversions, read at an unrelated phase; only fresh results are kept); and the current's window is
 * centred about P/2 before completion on the INA226 (shunt and bus conversions alternate) but 3P/4 on the INA219
 * (all shunt conversions first, then the bus ones), whose bus voltage is therefore centred P/2 after its current.
 *
 * Bad frames (one count, one 'warning' each; the interval's sample is dropped, the next one is used): a reply with
 * fewer data bytes than asked for or a byte out of range (truncated), a reply the board's SysexFramer reports broken
 * (stray status byte / END_SYSEX lost: firmata-io never delivers those), and an interval whose replies are
 * incomplete for no reported reason (a sysex lost whole).
 * Unplug: the board reports 'disconnect' (counted, re-emitted) and reconnects on its own; on its 'reconnect' the chip
 * gets its configuration and calibration again (a chip powered from the board has lost them), they are read back,
 * continuous reads restart on the new io, and 'reconnect' is emitted with the first sample that follows.
 */
export class Ina2xxMeter extends EventEmitter implements MeterDriver {
  readonly name: string;
  readonly stats = { samples: 0, badFrames: 0, disconnects: 0, reconnects: 0, stale: 0, overflows: 0, repairs: 0 };
  plan?: CalibrationPlan;
  setup?: InaSetup;
  rttMs = 0;
  private board?: FirmataBoard;
  private ownBoard = false;
  private readonly address: number;
  private regs: number[] = [];
  private tick?: Tick;
  private pending: { t: number[]; v: number[]; i: number[] } = { t: [], v: [], i: [] };
  private lastT = -Infinity;
  private latencyMs = 0;
  private ticks = 0;
  private timers: NodeJS.Timeout[] = [];
  private running = false;
  /** Continuous reads are registered on the board's current io (false between a disconnect and the resume). */
  private live = false;
  /** A framing error hit this interval's first reply before it began. */
  private lostHead = false;
  private announceReconnect = false;
  private generation = 0;

  constructor(readonly opts: Ina2xxOptions) {
    super();
    this.name = opts.name;
    this.address = opts.address ?? 0x40;
  }

  get info(): MeterInfo {
    const k = INA[this.opts.kind];
    const interval = this.board?.samplingIntervalMs ?? 19;
    const period = this.setup?.periodMs ?? interval;
    const centre = this.setup?.currentCentreMs ?? period / 2;
    return {
      kind: this.opts.kind,
      rateHz: 1000 / Math.max(interval, period),
      currentResolutionA: this.plan?.currentLsbA ?? minimumCurrentLsb(this.opts.kind, this.opts.maxCurrentA),
      voltageResolutionV: k.busLsbV,
      latencyMs: this.rttMs / 2 + Math.min(period, interval) / 2 + (period - centre),
      digital: false,
    };
  }

  private get io(): FirmataIo {
    if (!this.board?.isOpen) throw new FirmataError('E_CLOSED', `${this.name}: Firmata board is not open`);
    return this.board.io;
  }

  private where(): string {
    return `${this.opts.kind} at 0x${this.address.toString(16)} on ${this.board?.name ?? this.opts.board}`;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const o = this.opts;
    if (typeof o.board === 'string') {
      this.board = await FirmataBoard.open({ path: o.board, name: `${o.name} board` });
      this.ownBoard = true;
    } else this.board = o.board;
    try {
      if (o.samplingIntervalMs !== undefined) this.board.samplingIntervalMs = o.samplingIntervalMs;
      this.plan = planCalibration(o.kind, o.shuntOhms, o.maxCurrentA, o.currentLsbA);
      if (o.calibration !== undefined) this.plan = { ...this.plan, calibration: o.kind === 'ina219' ? o.calibration & ~1 : o.calibration };
      this.setup = this.chooseSetup();
      this.io.i2cConfig({ delay: 0 });
      await this.probe();
      this.program();
      await this.verify(true);
    } catch (e) {
      if (this.ownBoard) await this.board.close();
      throw e;
    }
    this.board.once('close', this.onBoardGone);
    this.board.on('disconnect', this.onDisconnect);
    this.board.on('reconnect', this.onReconnect);
    this.board.on('badFrame', this.onBadFrame);
    this.running = true;
    this.latencyMs = this.info.latencyMs;
    this.regs = o.kind === 'ina219' ? [REG.BUS, REG.CURRENT, REG.POWER] : [REG.MASK, REG.BUS, REG.CURRENT];
    this.startReads();
    this.timers.push(setInterval(() => this.flush(), o.batchMs ?? 100));
    this.timers.push(setInterval(() => this.check(), o.checkEveryMs ?? 1000));
  }

  private startReads(): void {
    this.tick = undefined;
    this.ticks = 0;
    this.lostHead = false;
    for (const reg of this.regs) this.io.i2cRead(this.address, reg, 2, (d) => this.onReply(reg, d));
    this.live = true;
  }

  /** The averaging whose conversion period fits one sampling interval (so every read sees a fresh result). */
  private chooseSetup(): InaSetup {
    const o = this.opts;
    const interval = this.board!.samplingIntervalMs;
    if (o.kind === 'ina219') {
      const vmax = o.maxCurrentA * o.shuntOhms * 1000;
      const range = INA219_PGA_MV.find((mv) => mv >= vmax);
      if (range === undefined) throw new RangeError(`${this.name}: ${o.maxCurrentA} A through ${o.shuntOhms} Ω is ${vmax} mV, beyond the INA219's 320 mV; use a smaller shunt`);
      const pick = (s: number) => ina219Config({ busRangeV: o.busRangeV ?? 16, shuntRangeMv: range, samples: s });
      if (o.averaging !== undefined) return pick(o.averaging);
      return pick([...INA219_SAMPLES].reverse().find((s) => pick(s).periodMs <= interval) ?? 1);
    }
    if (o.maxCurrentA * o.shuntOhms > 0.08192) throw new RangeError(`${this.name}: ${o.maxCurrentA} A through ${o.shuntOhms} Ω exceeds the INA226's 81.92 mV shunt range; use a smaller shunt`);
    const ct = o.conversionUs ?? 1100;
    const pick = (s: number) => ina226Config({ samples: s, conversionUs: ct });
    if (o.averaging !== undefined) return pick(o.averaging);
    return pick([...INA226_SAMPLES].reverse().find((s) => pick(s).periodMs <= interval) ?? 1);
  }

  private readOnce(reg: number, timeoutMs = 1000): Promise<{ value: number; rttMs: number }> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new FirmataError('E_TIMEOUT', `${this.where()}: no I2C reply for register 0x${reg.toString(16)}`)), timeoutMs);
      this.io.i2cReadOnce(this.address, reg, 2, (d) => {
        clearTimeout(timer);
        const problem = replyProblem(d);
        if (problem) {
          this.bad(`register 0x${reg.toString(16)}: ${problem}`);
          return reject(new FirmataError('E_PIN', `${this.where()}: register 0x${reg.toString(16)}: ${problem}`));
        }
        resolve({ value: (d[0]! << 8) | d[1]!, rttMs: performance.now() - t0 });
      });
    });
  }

  /** Is a chip there? The firmware reports a missing device as a string ("I2C: Too few bytes received"). */
  private async probe(): Promise<void> {
    const heard: string[] = [];
    const onString = (s: string): void => void heard.push(s);
    this.board!.on('string', onString);
    try {
      const rtts: number[] = [];
      const ids: number[] = [];
      const regs = this.opts.kind === 'ina226' ? [REG.MFR_ID, REG.DIE_ID, REG.CONFIG] : [REG.CONFIG, REG.CONFIG, REG.CONFIG];
      for (const reg of regs) {
        const r = await this.readOnce(reg);
        rtts.push(r.rttMs);
        ids.push(r.value);
      }
      this.rttMs = Math.min(...rtts); // queueing only ever adds: the fastest round trip is the transport's
      if (heard.some((s) => /I2C/i.test(s))) throw new FirmataError('E_PIN', `${this.where()}: no device answers (${heard.join('; ')}); check the wiring and the address pins`);
      if (this.opts.kind === 'ina226' && (ids[0] !== 0x5449 || (ids[1]! & 0xfff0) !== 0x2260)) {
        throw new FirmataError('E_PIN', `${this.where()}: manufacturer/die id 0x${ids[0]!.toString(16)}/0x${ids[1]!.toString(16)} is not an INA226 (0x5449/0x226x)`);
      }
    } finally {
      this.board!.off('string', onString);
    }
  }

  private writeReg(reg: number, value: number): void {
    this.io.i2cWrite(this.address, [reg, (value >> 8) & 0xff, value & 0xff]);
  }

  private program(): void {
    this.writeReg(REG.CONFIG, this.setup!.config);
    this.writeReg(REG.CAL, this.plan!.calibration);
  }

  private checking = false;
  private check(): void {
    if (!this.live || !this.board?.isOpen) return; // unplugged: the resume after the reconnect reprograms
    if (this.checking) return; // a slow bus (or a loaded host) must not stack checks that would repair twice
    this.checking = true;
    this.verify(false)
      .catch((e: Error) => { if (this.running) this.emit('warning', e.message); })
      .finally(() => { this.checking = false; });
  }

  /** Reads configuration and calibration back; at start a mismatch fails, later it is repaired and reported. */
  private async verify(first: boolean): Promise<void> {
    if (!first && !this.running) return;
    const cfg = (await this.readOnce(REG.CONFIG)).value;
    const cal = (await this.readOnce(REG.CAL)).value;
    if (cfg === this.setup!.config && cal === this.plan!.calibration) return;
    const msg = `${this.where()}: config 0x${cfg.toString(16)} / calibration ${cal} read back, expected 0x${this.setup!.config.toString(16)} / ${this.plan!.calibration}`;
    if (first) throw new FirmataError('E_PIN', msg);
    if (!this.running) return;
    this.stats.repairs++;
    this.emit('warning', `${msg}: the chip was reset or reprogrammed; currents since the last check are suspect; reprogrammed`);
    this.program();
  }

  /** One count and (rate-limited) one warning per bad reply or broken interval. */
  private bad(msg: string): void {
    const n = ++this.stats.badFrames;
    if (n <= 20 || n % 100 === 0) this.emit('warning', `${this.where()}: ${msg}; reading dropped (${n} bad so far)`);
  }

  private onReply(reg: number, d: number[]): void {
    if (!this.running || !this.live) return;
    const k = this.regs.indexOf(reg);
    let tk = this.tick;
    if (tk && k <= tk.last) {
      // A new interval began before the previous one completed: a reply went missing without a trace. At start that
      // is expected: the board may sample between the continuous-read requests, which arrive one after the other.
      if (!tk.bad && this.ticks > 0) this.bad(`incomplete interval (${this.regs.length - 1 - tk.last} of ${this.regs.length} replies missing)`);
      this.ticks++;
      tk = this.tick = undefined;
    }
    if (!tk) {
      tk = this.tick = { tArr: hostNow(), fresh: false, ovf: false, last: -1, bad: false };
      if (k > 0) { // the interval's first reply(s) never arrived
        tk.bad = true;
        if (!this.lostHead && this.ticks > 0) this.bad(`incomplete interval (first reply missing)`);
      }
      this.lostHead = false;
    }
    tk.last = k;
    const problem = replyProblem(d);
    if (problem) {
      this.bad(`register 0x${reg.toString(16)}: ${problem}`);
      tk.bad = true;
    } else {
      const raw = (d[0]! << 8) | d[1]!;
      const kind = this.opts.kind;
      if (reg === REG.MASK) Object.assign(tk, { fresh: decodeMask(raw).cvrf, ovf: decodeMask(raw).ovf });
      if (reg === REG.BUS) {
        const b = decodeBus(kind, raw);
        tk.v = b.volts;
        if (kind === 'ina219') Object.assign(tk, { fresh: b.cnvr, ovf: b.ovf });
      }
      if (reg === REG.CURRENT) tk.i = decodeCurrent(raw, this.plan!.currentLsbA);
    }
    if (k === this.regs.length - 1) {
      this.tick = undefined;
      this.ticks++;
      this.complete(tk);
    }
  }

  /** The board's framer dropped a broken sysex: if it was one of this chip's replies, its interval is lost. */
  private readonly onBadFrame = (e: FirmataFrameError): void => {
    if (!this.running || !this.live || e.command !== I2C_REPLY) return;
    if (e.address !== undefined && e.address !== this.address) return;
    const what = e.reason === 'unterminated' ? 'END_SYSEX lost (cut by the next sysex)' : `broken by a stray status byte 0x${e.status.toString(16)}`;
    const reg = e.register === undefined ? '' : ` for register 0x${e.register.toString(16)}`;
    this.bad(`framing error: I2C reply${reg} ${what}`);
    if (e.register !== undefined && !this.regs.includes(e.register)) return; // a one-shot read: its caller times out
    if (this.tick) this.tick.bad = true;
    else this.lostHead = true;
  };

  private complete(tk: Tick): void {
    if (tk.bad) return; // counted when it was detected
    if (tk.v === undefined || tk.i === undefined) return this.bad('interval without voltage or current');
    if (!tk.fresh) return void this.stats.stale++;
    if (tk.ovf) {
      if (this.stats.overflows++ % 100 === 0) this.emit('warning', `${this.where()}: math overflow (OVF): current above ${this.plan!.maxCurrentA.toFixed(3)} A, sample dropped (${this.stats.overflows} so far)`);
      return;
    }
    const t = tk.tArr - this.latencyMs;
    if (t <= this.lastT) return void this.stats.badFrames++;
    this.lastT = t;
    if (this.announceReconnect) {
      this.announceReconnect = false;
      this.stats.reconnects++;
      this.emit('reconnect');
    }
    this.pending.t.push(t);
    this.pending.v.push(tk.v);
    this.pending.i.push(tk.i);
  }

  private flush(): void {
    const p = this.pending;
    if (!p.t.length) return;
    this.pending = { t: [], v: [], i: [] };
    this.stats.samples += p.t.length;
    const batch: SampleBatch = { t: Float64Array.from(p.t), v: Float64Array.from(p.v), i: Float64Array.from(p.i) };
    this.emit('samples', batch);
  }

  private readonly onDisconnect = (reason: string): void => {
    this.generation++;
    this.live = false;
    this.tick = undefined;
    this.flush();
    this.stats.disconnects++;
    this.emit('disconnect', reason);
  };

  /** The board is back (a fresh firmata-io): program the chip again, read it back, restart the continuous reads. */
  private readonly onReconnect = (): void => {
    const gen = ++this.generation;
    void this.resume(gen).catch((e: Error) => {
      if (gen === this.generation && this.running) this.emit('warning', `${this.where()}: after the reconnect: ${e.message}`);
    });
  };

  private async resume(gen: number): Promise<void> {
    if (!this.running || !this.board?.isOpen) return;
    this.io.i2cConfig({ delay: 0 });
    this.program();
    try {
      await this.verify(true);
    } finally {
      // Even when the read-back failed: the periodic check repairs (and reports) what is wrong.
      if (gen === this.generation && this.running && this.board?.isOpen) {
        this.announceReconnect = true;
        this.startReads();
      }
    }
  }

  private readonly onBoardGone = (): void => {
    if (!this.running) return;
    this.running = false;
    this.live = false;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.flush();
  };

  async stop(): Promise<void> {
    if (!this.board) return;
    const wasRunning = this.running && this.live;
    this.running = false;
    this.live = false;
    this.generation++;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.flush();
    // StandardFirmata drops one continuous query per STOP (and the first query of all when none matches): send
    // exactly as many as this meter started, so other sensors' reads on the same board survive.
    if (wasRunning && this.board.isOpen) for (let k = 0; k < this.regs.length; k++) this.io.i2cStop(this.address);
    this.tick = undefined;
    this.board.off('close', this.onBoardGone);
    this.board.off('disconnect', this.onDisconnect);
    this.board.off('reconnect', this.onReconnect);
    this.board.off('badFrame', this.onBadFrame);
    if (this.ownBoard) await this.board.close();
    this.board = undefined;
  }
}
