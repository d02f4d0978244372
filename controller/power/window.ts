// One energy window around one burst of operations on a node (issue 6, DESIGN §5): an idle baseline in the same
// state just before, the burst's bounds from the marker line where wired (a PPK2 digital input or a Firmata pin),
// otherwise from the node's own burst timestamps mapped to host time by a ping fit over the serial link, whose
// error bound is recorded. Energy = trapezoid of V·I over the window minus the baseline, divided by the ops.
import type { NodeLink } from '../drivers/node.js';
import { hostNow } from '../drivers/meter.js';
import type { EnergyWindow } from '../model.js';
import type { MeterSlot, NodePower, PowerBench } from './bench.js';
import { clockSamples, fitClock } from './clock.js';
import { batteryDrainPer100Ops, energyPerOp, windowsFromMarkers, type OpEnergy } from './energy.js';

export interface BurstAnswer {
  /** Operations the burst ran. */
  ops: number;
  /** Burst bounds on the node clock (µs, the `hs` answer's b0_us / b1_us). */
  b0Us?: number;
  b1Us?: number;
}

export interface MeasuredBurst {
  window: Omit<EnergyWindow, 'runId' | 'cellId' | 'suite' | 'profile'>;
  energy: OpEnergy;
  /** What the burst returned (the caller's own result). */
  relErr: number;
  /** How the window was found, for the run record. */
  note: string;
}

/** Baseline length: long enough for ≥ 20 samples of the meter, at least 0.2 s. */
export function baselineSeconds(slot: MeterSlot, configured?: number): number {
  return configured ?? Math.max(0.2, 20 / slot.driver.info.rateHz);
}

/**
 * Runs `burst` between a baseline and the window's end and returns the energy figures. Throws only when the
 * burst itself throws; a window that cannot be measured returns { error }.
 */
export async function measureBurst<T extends BurstAnswer>(
  bench: PowerBench, np: NodePower, link: NodeLink, line: { baud: number; paced: boolean },
  burst: () => Promise<T>, o: { baselineS?: number; signal?: AbortSignal } = {},
): Promise<{ result: T; measured?: MeasuredBurst; error?: string }> {
  const slot = np.meter!;
  const info = slot.driver.info;
  const periodMs = 1000 / info.rateHz;
  // the board must be at rest: on the virtual rig, the model's board may still be working off the last burst
  await bench.drained(slot);
  const bs = baselineSeconds(slot, o.baselineS);
  // (up to a minute before a long extra burst: Ctrl-C must not wait for it)
  await new Promise<void>((r) => {
    const t = setTimeout(done, bs * 1000);
    function done() {
      clearTimeout(t);
      o.signal?.removeEventListener('abort', done);
      r();
    }
    o.signal?.addEventListener('abort', done, { once: true });
  });
  if (o.signal?.aborted) return { result: { ops: 0 } as unknown as T, error: 'interrupted before the burst' };
  const B1 = hostNow();
  // a meter opened just before the first burst may have started streaming during the baseline: start it there
  const first = slot.ring.firstT;
  const B0 = Math.max(B1 - bs * 1000, first < B1 ? first : -Infinity);
  const fitBefore = np.marker.kind === 'none' ? await clockSamples(link, 6, line.baud, line.paced) : [];
  const hsStart = hostNow();
  const result = await burst();
  const hsEnd = hostNow();
  let window: [number, number] | undefined;
  let source: 'marker' | 'clock-fit' = 'marker';
  let clockErrMs: number | undefined;
  let note = '';
  if (np.marker.kind === 'meter') {
    await bench.samplesUpTo(slot, hsEnd + 5 * periodMs);
    const wins = windowsFromMarkers(slot.ring.slice(hsStart - 50, hsEnd + 50), np.marker.channel);
    if (wins.length) window = [wins[0]![0], wins[wins.length - 1]![1]];
    note = `window from ${wins.length} marker pulses on the meter's D${np.marker.channel}`;
  } else if (np.marker.kind === 'firmata') {
    await new Promise((r) => setTimeout(r, 50)); // the board reports inputs on its own loop
    window = np.marker.log.span(hsStart - 50, hsEnd + 50);
    note = 'window from the marker line on the Firmata board';
  } else {
    source = 'clock-fit';
    if (result.b0Us !== undefined && result.b1Us !== undefined) {
      const fit = fitClock([...fitBefore, ...(await clockSamples(link, 6, line.baud, line.paced))]);
      window = [fit.toHostMs(result.b0Us), fit.toHostMs(result.b1Us)];
      clockErrMs = fit.errorMs;
      note = `window from the node's burst timestamps, clock fit over ${fit.samples} pings (±${fit.errorMs.toFixed(2)} ms)`;
    }
  }
  if (!window) return { result, error: `no window for the burst (${note || 'no burst timestamps from the node'})` };
  if (slot.model) {
    // virtual board slower than the host (cpuScale): it is still working when the host's burst ends
    const drainedAt = await bench.drained(slot);
    if (drainedAt > window[1]) {
      note += `; extended by ${(drainedAt - window[1]).toFixed(0)} ms until the modelled board finished (board slower than the host)`;
      window = [window[0], drainedAt];
    }
  }
  if (!(await bench.samplesUpTo(slot, window[1] + 3 * periodMs + info.latencyMs, 5000))) {
    return { result, error: `meter ${slot.rig.name} delivered no samples past the window end (unplugged?)` };
  }
  const batch = slot.ring.slice(B0 - 2 * periodMs, window[1] + 3 * periodMs);
  let e: OpEnergy;
  try {
    e = energyPerOp(batch, window, [B0, B1], Math.max(1, result.ops), info);
  } catch (err) {
    return { result, error: (err as Error).message };
  }
  const w: MeasuredBurst['window'] = {
    node: np.node, board: np.board, meter: slot.rig.name, meterKind: slot.rig.kind, t0: window[0], t1: window[1], b0: B0, b1: B1,
    source, ops: result.ops, samples: countIn(batch.t, window[0], window[1]), grossJ: e.burstJ, baselineW: e.baselineW, netJ: e.netJ,
    perOpJ: e.perOpJ, perOpUncJ: e.sigmaPerOpJ,
  };
  if (clockErrMs !== undefined) w.clockErrMs = clockErrMs;
  if (np.battery) {
    w.drainPct100 = batteryDrainPer100Ops(e.perOpJ, { capacityMah: np.battery.capacity_mah, nominalV: np.battery.nominal_v, regulatorEfficiency: np.battery.regulator_efficiency });
  }
  if (slot.model) w.truthPerOpJ = truthPerOp(slot, batch.t, window, [B0, B1], periodMs, Math.max(1, result.ops));
  return { result, measured: { window: w, energy: e, relErr: Math.abs(e.sigmaPerOpJ / e.perOpJ), note } };
}

/**
 * Operations a burst needs for a wanted relative error, sized from a measured burst's own error budget (N0 ops):
 * the window-edge part stays the same whatever the length, the sampling/resolution/noise parts grow like √N when
 * the baseline grows with the burst (it does: measureBurst is given a baseline as long as the burst). Solves
 * (N·e·target)² = edge² + rest²·N/N0 for N.
 * A burst shorter than 3 sample periods (`rateHz` given) cannot show how much its power varies between samples
 * (energyPerOp then counts only the baseline's noise there); the sizing assumes an on/off load at half duty
 * instead: a spread of the samples as large as the mean net power (burstRelErr's on/off model, duty 0.5).
 */
export function opsForTarget(e: OpEnergy, target: number, rateHz?: number): number {
  const perOp = Math.abs(e.perOpJ);
  if (!(perOp > 0) || e.ops < 1) return e.ops;
  const edge = e.parts.edgeJ;
  let rest2 = e.parts.resolutionJ ** 2 + e.parts.noiseJ ** 2;
  if (rateHz !== undefined && e.durationS - 2 / rateHz < 3 / rateHz) {
    // (σ·dt·√n)² with σ = |net| / duration and n = duration / dt samples
    rest2 = Math.max(rest2, (e.netJ ** 2) / (rateHz * e.durationS));
  }
  const a = (perOp * target) ** 2;
  const b = rest2 / e.ops;
  return Math.ceil((b + Math.sqrt(b * b + 4 * a * edge * edge)) / (2 * a));
}

/** The power model's own answer for the same window, by the same definition energyPerOp uses. */
function truthPerOp(slot: MeterSlot, t: Float64Array, window: [number, number], base: [number, number], periodMs: number, ops: number): number {
  const m = slot.model!;
  const t0 = Math.max(window[0] - periodMs, t[0] ?? window[0]);
  const t1 = Math.min(window[1] + periodMs, t[t.length - 1] ?? window[1]);
  const baseEnd = Math.min(base[1], window[0] - periodMs);
  const baseW = m.groundTruthEnergy(base[0], baseEnd) / ((baseEnd - base[0]) / 1000);
  return (m.groundTruthEnergy(t0, t1) - baseW * ((t1 - t0) / 1000)) / ops;
}

function countIn(t: Float64Array, a: number, b: number): number {
  let n = 0;
  for (const x of t) if (x >= a && x <= b) n++;
  return n;
}
