// Proves the energy arithmetic: the trapezoid is exact on piecewise-linear power (edges interpolated) and
// converges on a curved one; baseline subtraction recovers a known energy per op; battery drain matches the
// hand calculation; marker pulses become windows; and a burst sized by burstSizeFor for a 10 Hz, 1 mA meter
// meets its target error on synthetic sampling (Monte Carlo, flat and duty-cycled ops), a quarter of it does not,
// and energyPerOp's stated σ covers the observed spread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SampleBatch } from '../drivers/meter.js';
import { Rng } from '../net/relay-rng.js';
import {
  batteryDrainPer100Ops, burstRelErr, burstSizeFor, concatBatches, energyPerOp, integrateEnergy, meanPower, windowsFromMarkers,
  type BurstSizing,
} from '../power/energy.js';

/** Samples of v(t), i(t) at t0 + k·dt (ms). */
function sample(n: number, t0: number, dt: number, v: (t: number) => number, i: (t: number) => number, d?: (t: number) => number): SampleBatch {
  const b: SampleBatch = { t: new Float64Array(n), v: new Float64Array(n), i: new Float64Array(n) };
  if (d) b.d = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    const t = t0 + k * dt;
    b.t[k] = t;
    b.v[k] = v(t);
    b.i[k] = i(t);
    if (d) b.d![k] = d(t);
  }
  return b;
}

const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('trapezoid: exact on linear and piecewise-linear power, edges interpolated; converges on a curve', () => {
  // P = 5 V · (0.1 + 0.2 t/1000) A over [130.5, 870.25] ms, samples every 10 ms: ∫ = 5·(0.1·T + 0.1·(b²−a²)) /1000
  const b = sample(101, 0, 10, () => 5, (t) => 0.1 + (0.2 * t) / 1000);
  const [a, c] = [130.5, 870.25];
  const exact = 5 * (0.1 * (c - a) + (0.2 / 2000) * (c * c - a * a)) / 1000;
  close(integrateEnergy(b, a, c), exact, 1e-12, 'linear');
  // A triangle whose corners fall on samples: 0 → 1 A at 500 ms → 0, at 2 V: area = 2 · 1 · 1 s / 2 = 1 J.
  const tri = sample(1001, 0, 1, () => 2, (t) => 1 - Math.abs(t - 500) / 500);
  close(integrateEnergy(tri, 0, 1000), 1, 1e-12, 'triangle');
  // Split across batches: same answer.
  const parts = [0, 250, 500, 750].map((s) => sample(250, s, 1, () => 2, (t) => 1 - Math.abs(t - 500) / 500));
  parts.push(sample(1, 1000, 1, () => 2, () => 0));
  close(integrateEnergy(concatBatches(parts), 0, 1000), 1, 1e-12, 'concatenated');
  // Curved: P = sin²(πt/1000) W over a second = 0.5 J; trapezoid error ≤ T·h²·max|P''|/12.
  const sine = sample(1001, 0, 1, () => 1, (t) => Math.sin((Math.PI * t) / 1000) ** 2);
  const err = Math.abs(integrateEnergy(sine, 0, 1000) - 0.5);
  assert.ok(err <= (1 * 0.001 ** 2 * 2 * Math.PI ** 2) / 12, `curve error ${err}`);
  assert.throws(() => integrateEnergy(b, -1, 10), RangeError);
});

test('baseline subtraction recovers the energy per op; mean power and spread', () => {
  // 1 kHz samples; 0.2 W baseline; 10 ops of 60 ms at +0.15 W every 100 ms starting at 2000 ms.
  const opJ = 0.15 * 0.06;
  const burst = (t: number): boolean => t >= 2000 && t < 3000 && (t - 2000) % 100 < 60;
  const b = sample(4000, 0, 1, () => 4, (t) => (0.2 + (burst(t) ? 0.15 : 0)) / 4, (t) => (t >= 2000 && t < 3000 ? 1 : 0));
  const base = meanPower(b, 500, 1990);
  close(base.meanW, 0.2, 1e-12, 'baseline');
  assert.ok(base.stdW < 1e-9);
  const [w] = windowsFromMarkers(b, 0);
  assert.deepEqual(w, [2000, 3000]);
  const r = energyPerOp(b, w!, [500, 1990], 10, { rateHz: 1000, currentResolutionA: 1e-6, voltageResolutionV: 1e-3 });
  close(r.perOpJ, opJ, 1e-9, 'energy per op');
  close(r.baselineW, 0.2, 1e-12, 'baseline power');
  assert.ok(r.sigmaPerOpJ > 0 && r.sigmaPerOpJ < 0.01 * opJ, `σ ${r.sigmaPerOpJ}`);
  // A baseline that is not before the burst is refused.
  assert.throws(() => energyPerOp(b, w!, [2000, 2990], 10, { rateHz: 1000, currentResolutionA: 1e-6, voltageResolutionV: 1e-3 }), /baseline/);
});

test('battery drain per 100 ops: hand arithmetic', () => {
  // 1000 mAh at 3.7 V = 3.7 Wh = 13 320 J; 1 J per op through a 90 % converter → 1.111 J from the battery;
  // 100 ops = 111.1 J = 0.834 % of the battery.
  close(batteryDrainPer100Ops(1, { capacityMah: 1000, nominalV: 3.7, regulatorEfficiency: 0.9 }), (100 * 100) / 0.9 / 13320, 1e-12, 'drain');
  close(batteryDrainPer100Ops(0.0333, { capacityMah: 2500, nominalV: 3.7, regulatorEfficiency: 1 }), (100 * 100 * 0.0333) / 33300, 1e-12, 'drain 2');
});

test('marker windows: complete pulses only, per bit', () => {
  // bit 0 high at start (edge unseen), then pulses [30,50) and [70,90); bit 3 one pulse [40,60); bit 0 high at the end.
  const d = (t: number): number => ((t < 10 || (t >= 30 && t < 50) || (t >= 70 && t < 90) || t >= 95) ? 1 : 0) | (t >= 40 && t < 60 ? 8 : 0);
  const b = sample(100, 0, 1, () => 5, () => 0.1, d);
  assert.deepEqual(windowsFromMarkers(b, 0), [[30, 50], [70, 90]]);
  assert.deepEqual(windowsFromMarkers(b, 3), [[40, 60]]);
  assert.deepEqual(windowsFromMarkers(b, 5), []);
  assert.throws(() => windowsFromMarkers(sample(3, 0, 1, () => 5, () => 0.1), 0), /digital/);
});

/**
 * One synthetic run of a 10 Hz, 1 mA, 10 mV meter over a burst: ops of opSeconds ± 10 % jitter (real ops are not
 * metronomes), each busy for the first opPowerW/peakPowerW of it. Returns the relative error of the energy per op.
 */
function simulate(rng: Rng, s: Required<Omit<BurstSizing, 'targetRelErr' | 'opPowerStdW'>> & { noiseA: number }, ops: number): { rel: number; sigmaRel: number } {
  const dtMs = 1000 / s.rateHz;
  const phase = rng.next() * dtMs;
  const start = s.baselineSeconds * 1000 + phase + rng.next() * dtMs;
  const busy: [number, number][] = [];
  let t = start;
  for (let k = 0; k < ops; k++) {
    const len = s.opSeconds * 1000 * (0.9 + 0.2 * rng.next());
    busy.push([t, t + (len * s.opPowerW) / s.peakPowerW]);
    t += len;
  }
  const end = t;
  const stepA = s.peakPowerW / s.volts;
  const n = Math.ceil((end + 2000) / dtMs);
  let j = 0;
  const b = sample(n, phase, dtMs, () => Math.round(s.volts / 0.01) * 0.01, (tm) => {
    while (j < busy.length && busy[j]![1] <= tm) j++;
    const on = j < busy.length && busy[j]![0] <= tm;
    const a = 0.05 + (on ? stepA : 0) + s.noiseA * rng.gaussian();
    return Math.round(a / s.resolutionA) * s.resolutionA;
  });
  const truth = (busy.reduce((acc, [a, c]) => acc + (c - a), 0) / 1000) * s.peakPowerW / ops;
  const r = energyPerOp(b, [start, end], [phase, start], ops, { rateHz: s.rateHz, currentResolutionA: s.resolutionA, voltageResolutionV: 0.01 });
  return { rel: (r.perOpJ - truth) / truth, sigmaRel: r.sigmaPerOpJ / truth };
}

test('burst sizing: a burst of burstSizeFor ops meets the target error on synthetic 10 Hz sampling', (t) => {
  const rng = new Rng(20261126);
  const target = 0.05;
  for (const peak of [0.1, 0.2]) {
    // 250 ms ops at 0.1 W mean; peak 0.2 W = busy half of each op (steps inside the burst).
    const s = { rateHz: 10, resolutionA: 0.001, opSeconds: 0.25, opPowerW: 0.1, peakPowerW: peak, volts: 5, baselineStdW: 0.01, baselineSeconds: 5, noiseA: 0.002 };
    const sizing: BurstSizing = { ...s, targetRelErr: target };
    const ops = burstSizeFor(sizing);
    assert.ok(burstRelErr(ops, sizing) <= target && burstRelErr(ops - 1, sizing) > target, 'smallest such N');
    t.diagnostic(`peak ${peak} W: ${ops} ops`);
    const runs = Array.from({ length: 400 }, () => simulate(rng, s, ops));
    // A burst a quarter as long must miss the target.
    const short = Array.from({ length: 400 }, () => simulate(rng, s, Math.max(1, Math.floor(ops / 4))));
    const rmsShort = Math.sqrt(short.reduce((a, r) => a + r.rel ** 2, 0) / short.length);
    const rms = Math.sqrt(runs.reduce((a, r) => a + r.rel ** 2, 0) / runs.length);
    const meanSigma = runs.reduce((a, r) => a + r.sigmaRel, 0) / runs.length;
    // 400 runs estimate the rms to about ±4 %.
    assert.ok(rms <= 1.1 * target, `peak ${peak}: ${ops} ops → rms error ${(100 * rms).toFixed(2)} % (target ${100 * target} %)`);
    t.diagnostic(`rms ${(100 * rms).toFixed(2)} %, mean σ ${(100 * meanSigma).toFixed(2)} %, quarter burst ${(100 * rmsShort).toFixed(2)} %`);
    assert.ok(rms > target / 4, `the error model is not wildly pessimistic (rms ${(100 * rms).toFixed(2)} %)`);
    // The error energyPerOp states for one run covers the spread over runs; for ops the meter half resolves it
    // is conservative (successive differences count the ops' own steps as noise), within a small factor.
    assert.ok(meanSigma > 0.7 * rms && meanSigma < rms * 4, `energyPerOp's σ ${(100 * meanSigma).toFixed(2)} % vs rms ${(100 * rms).toFixed(2)} %`);
    assert.ok(rmsShort > target, `short burst rms ${(100 * rmsShort).toFixed(2)} %`);
  }
  assert.throws(() => burstSizeFor({ rateHz: 10, resolutionA: 0.001, opSeconds: 0.1, opPowerW: 0.001, targetRelErr: 0.01, baselineStdW: 0.05, baselineSeconds: 1 }), /baseline/);
});
