// Energy from power samples: pure functions, no I/O. Windows come from marker lines (or host clocks), energy is
// the trapezoid ∫V·I dt, an op's energy is the burst minus the idle baseline, divided by the ops in the burst.
// Every result carries its uncertainty, from the meter's resolution, its sample period and the baseline noise.
import type { SampleBatch } from '../drivers/meter.js';

/** One batch from many (in time order), e.g. everything a driver emitted during a run. */
export function concatBatches(batches: SampleBatch[]): SampleBatch {
  const n = batches.reduce((s, b) => s + b.t.length, 0);
  const out: SampleBatch = { t: new Float64Array(n), v: new Float64Array(n), i: new Float64Array(n) };
  const digital = batches.length > 0 && batches.every((b) => b.d);
  if (digital) out.d = new Uint8Array(n);
  let o = 0;
  for (const b of batches) {
    out.t.set(b.t, o);
    out.v.set(b.v, o);
    out.i.set(b.i, o);
    if (digital) out.d!.set(b.d!, o);
    o += b.t.length;
  }
  return out;
}

/** First index with t[k] >= x. */
function lowerBound(t: Float64Array, x: number): number {
  let lo = 0;
  let hi = t.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (t[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const power = (b: SampleBatch, k: number): number => b.v[k]! * b.i[k]!;

/** Power at time x, linearly interpolated between the samples around it. */
function powerAt(b: SampleBatch, x: number): number {
  const k = lowerBound(b.t, x);
  if (k < b.t.length && b.t[k] === x) return power(b, k);
  const t0 = b.t[k - 1]!;
  const t1 = b.t[k]!;
  return power(b, k - 1) + ((power(b, k) - power(b, k - 1)) * (x - t0)) / (t1 - t0);
}

function checkCovered(b: SampleBatch, t0: number, t1: number): void {
  const n = b.t.length;
  if (n < 2 || t0 < b.t[0]! || t1 > b.t[n - 1]! || t1 < t0) {
    throw new RangeError(`window [${t0}, ${t1}] ms is not covered by the samples [${b.t[0]}, ${b.t[n - 1]}]`);
  }
}

/** Trapezoidal ∫ V·I dt over [t0, t1] (ms) in joules; the window edges are interpolated between samples. */
export function integrateEnergy(b: SampleBatch, t0: number, t1: number): number {
  checkCovered(b, t0, t1);
  const k0 = lowerBound(b.t, t0);
  const k1 = lowerBound(b.t, t1); // first sample at or after t1
  let prevT = t0;
  let prevP = powerAt(b, t0);
  let e = 0;
  for (let k = k0; k < k1; k++) {
    const p = power(b, k);
    e += ((prevP + p) / 2) * (b.t[k]! - prevT);
    prevT = b.t[k]!;
    prevP = p;
  }
  e += ((prevP + powerAt(b, t1)) / 2) * (t1 - prevT);
  return e / 1000;
}

/** Time-weighted mean power over [t0, t1], and the spread of the samples in it. */
export function meanPower(b: SampleBatch, t0: number, t1: number): { meanW: number; stdW: number; n: number } {
  const meanW = integrateEnergy(b, t0, t1) / ((t1 - t0) / 1000);
  const k0 = lowerBound(b.t, t0);
  const k1 = lowerBound(b.t, t1);
  const n = k1 - k0;
  let s = 0;
  for (let k = k0; k < k1; k++) s += power(b, k);
  const m = n ? s / n : meanW;
  let ss = 0;
  for (let k = k0; k < k1; k++) ss += (power(b, k) - m) ** 2;
  return { meanW, stdW: n > 1 ? Math.sqrt(ss / (n - 1)) : 0, n };
}

export interface MeterResolution {
  currentResolutionA: number;
  voltageResolutionV: number;
  rateHz: number;
}

export interface OpEnergy {
  ops: number;
  durationS: number;
  burstJ: number;
  baselineW: number;
  /** Burst energy above the baseline (J). */
  netJ: number;
  perOpJ: number;
  /** 1σ of perOpJ (J). */
  sigmaPerOpJ: number;
  /** 1σ contributions to netJ (J): meter resolution, window edges (± half a sample period × step each), noise
   * (baseline mean and the burst's own samples). */
  parts: { resolutionJ: number; edgeJ: number; noiseJ: number };
}

/**
 * Energy per op of a burst of `ops` operations in `window`, with the idle baseline measured in `baseline`
 * (a quiet stretch before the burst, cut to end one sample period before it): (burst − baselineW · duration) ÷ ops.
 * The window is widened by one sample period on each side (where samples exist): a power step right at a window
 * edge is then integrated whole — interpolating at the step would smear part of it outside and bias the energy
 * low — and the baseline is subtracted over the widened duration. Assumes the node is idle just outside.
 */
export function energyPerOp(b: SampleBatch, window: [number, number], baseline: [number, number], ops: number, meter: MeterResolution): OpEnergy {
  const dt = 1 / meter.rateHz;
  const pad = dt * 1000;
  const n0 = b.t.length;
  const t0 = Math.max(window[0] - pad, b.t[0] ?? window[0]);
  const t1 = Math.min(window[1] + pad, b.t[n0 - 1] ?? window[1]);
  const durationS = (t1 - t0) / 1000;
  const burstJ = integrateEnergy(b, t0, t1);
  // The baseline stops a sample period short of the burst: interpolating into the first step would raise it.
  const baseEnd = Math.min(baseline[1], window[0] - pad);
  if (!(baseEnd > baseline[0])) throw new RangeError(`baseline [${baseline[0]}, ${baseline[1]}] must end before the burst at ${window[0]} (by ${pad} ms)`);
  const base = meanPower(b, baseline[0], baseEnd);
  const netJ = burstJ - base.meanW * durationS;

  // Resolution: each sample's power is off by up to half a step in I (× V) and in V (× I); uniform → /√12.
  // Assumes the signal's own noise dithers the quantization (true for the meters and models here).
  const k0 = lowerBound(b.t, window[0]);
  const k1 = lowerBound(b.t, window[1]);
  const n = Math.max(1, k1 - k0);
  const v = b.v[k0] ?? 0;
  const sigmaP = Math.hypot(v * meter.currentResolutionA, (base.meanW / (v || 1)) * meter.voltageResolutionV) / Math.sqrt(12);
  const nb = Math.max(1, base.n);
  const resolutionJ = Math.hypot(sigmaP * dt * Math.sqrt(n), (sigmaP / Math.sqrt(nb)) * durationS);

  // Edges: a step between two samples is integrated with an error uniform within ± dt·step/2. The two edges'
  // errors are not independent: their sum is step·dt·(f − [wrap]) with f = frac(duration / dt), whose σ is
  // step·dt·√(f(1−f)) ≤ step·dt/2 — we take that worst case. Step = the largest distance from the baseline among
  // the samples next to each edge.
  const near = [k0, k0 + 1, k1 - 2, k1 - 1].filter((k) => k >= k0 && k < k1);
  const step = Math.max(0, ...near.map((k) => Math.abs(power(b, k) - base.meanW)));
  const edgeJ = (dt * step) / 2;

  // Noise: the baseline mean is known to std/√n. The burst's own samples carry noise too — at least the
  // baseline's, more when the load varies faster than the meter samples (spikes between samples). That part is
  // estimated from successive differences (√(mean Δp² / 2)), which ignores a shape the meter resolves well and
  // counts steps it half resolves (ops a few samples long) as noise: conservative there, by up to ~3×.
  let d2 = 0;
  for (let k = k0 + 1; k < k1; k++) d2 += (power(b, k) - power(b, k - 1)) ** 2;
  const burstNoise = k1 - k0 > 2 ? Math.sqrt(d2 / (k1 - k0 - 1) / 2) : 0;
  const noiseJ = Math.hypot((base.stdW / Math.sqrt(nb)) * durationS, Math.max(base.stdW, burstNoise) * dt * Math.sqrt(n));
  const sigma = Math.hypot(resolutionJ, edgeJ, noiseJ);
  return { ops, durationS, burstJ, baselineW: base.meanW, netJ, perOpJ: netJ / ops, sigmaPerOpJ: sigma / ops, parts: { resolutionJ, edgeJ, noiseJ } };
}

export interface Battery {
  capacityMah: number;
  nominalV: number;
  /** Fraction of the battery's energy that reaches the node (regulator/converter efficiency, 0..1]. */
  regulatorEfficiency: number;
}

/** Percent of a full battery that 100 ops take, given the energy per op measured at the node's supply. */
export function batteryDrainPer100Ops(perOpJ: number, battery: Battery): number {
  const batteryJ = (battery.capacityMah / 1000) * 3600 * battery.nominalV;
  return (100 * 100 * perOpJ) / battery.regulatorEfficiency / batteryJ;
}

/** [t0, t1] of every complete high pulse on digital channel `bit` (t0 = first high sample, t1 = first low). */
export function windowsFromMarkers(b: SampleBatch, bit: number): Array<[number, number]> {
  if (!b.d) throw new Error('these samples carry no digital inputs (the meter has no marker channel)');
  const out: Array<[number, number]> = [];
  const mask = 1 << bit;
  let rise: number | undefined;
  let prev = b.d.length ? (b.d[0]! & mask) !== 0 : false; // high at the start: its rising edge is not seen
  for (let k = 1; k < b.d.length; k++) {
    const high = (b.d[k]! & mask) !== 0;
    if (high && !prev) rise = b.t[k]!;
    if (!high && prev && rise !== undefined) {
      out.push([rise, b.t[k]!]);
      rise = undefined;
    }
    prev = high;
  }
  return out;
}

export interface BurstSizing {
  rateHz: number;
  /** Meter current step (A). */
  resolutionA: number;
  /** Length of one op (s). */
  opSeconds: number;
  /** Mean power of an op above the baseline (W). */
  opPowerW: number;
  /** Wanted 1σ relative error of the energy per op. */
  targetRelErr: number;
  /** Supply voltage (V); 5 by default (USB). */
  volts?: number;
  /** Power step while an op is active (W); > opPowerW when an op has idle gaps inside. Default opPowerW. */
  peakPowerW?: number;
  /** Spread of the instantaneous power within an op (W), for loads of any shape (e.g. short radio spikes);
   * replaces the on/off estimate from peakPowerW. */
  opPowerStdW?: number;
  /** Spread of the power samples at rest (W; the same noise rides on the burst) and the baseline length (s). */
  baselineStdW?: number;
  baselineSeconds?: number;
}

/** 1σ relative error of the energy per op for a burst of `ops` ops (same error model as energyPerOp). */
export function burstRelErr(ops: number, s: BurstSizing): number {
  const dt = 1 / s.rateHz;
  const T = ops * s.opSeconds + 2 * dt; // energyPerOp widens the window by a sample period each side
  const peak = s.peakPowerW ?? s.opPowerW;
  const duty = Math.min(1, s.opPowerW / peak);
  const sigmaQ = ((s.volts ?? 5) * s.resolutionA) / Math.sqrt(12);
  const edge = (dt * peak) / 2;
  // Steps inside the burst (busy/idle within each op): 2 per op, each off by a uniform ± dt·peak/2 — or, when
  // ops are shorter than a sample period, the sampling variance of a duty-cycled signal. Whichever is smaller.
  // With opPowerStdW: the sampling variance of that spread (a meter sampling at random phases of the ops).
  const inner = s.opPowerStdW !== undefined
    ? s.opPowerStdW * Math.sqrt(ops * s.opSeconds * dt)
    : duty < 1 ? peak * Math.min(dt * Math.sqrt(ops / 6), Math.sqrt(ops * s.opSeconds * dt * duty * (1 - duty))) : 0;
  const resolution = sigmaQ * Math.sqrt(T * dt);
  const nb = Math.max(1, (s.baselineSeconds ?? 1) * s.rateHz);
  const baseline = (Math.hypot(s.baselineStdW ?? 0, sigmaQ) / Math.sqrt(nb)) * T;
  const noise = (s.baselineStdW ?? 0) * Math.sqrt(T * dt);
  return Math.hypot(edge, inner, resolution, baseline, noise) / (ops * s.opSeconds * s.opPowerW);
}

/**
 * Smallest number of ops per burst for which burstRelErr ≤ targetRelErr (slow meters need long bursts).
 * Assumes the op period is not locked to the meter's sample period; a locked period aliases (the samples keep
 * hitting the same phase of each op) and no burst length fixes that — add jitter between ops.
 */
export function burstSizeFor(s: BurstSizing): number {
  const floor = burstRelErr(1e12, s);
  if (floor >= s.targetRelErr) {
    throw new RangeError(`target ${s.targetRelErr} is below what the baseline allows (${floor.toPrecision(2)}): measure a longer or quieter baseline`);
  }
  let hi = 1;
  while (burstRelErr(hi, s) > s.targetRelErr) hi *= 2;
  let lo = Math.max(1, hi >> 1);
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (burstRelErr(mid, s) <= s.targetRelErr) hi = mid;
    else lo = mid + 1;
  }
  return hi;
}
