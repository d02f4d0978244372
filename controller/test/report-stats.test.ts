// Proves the report statistics: quantile/summarize unchanged (compared with the original comparator-sort
// implementation), Student-t quantiles against table values and scipy, the t confidence interval of the mean,
// Mann–Whitney U against scipy, brute-force enumeration (exact case) and a direct evaluation of the
// tie-corrected normal formula (large tied case), the ECDF, and 10^6-sample timings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ecdf, mannWhitneyCounts, mannWhitneyU, meanCI, meanCI95, normalCdf, normalQuantile, normalSf, quantile, studentTCdf, studentTQuantile,
  summarize, type Summary,
} from '../report/stats.js';
import { Rng } from '../net/relay-rng.js';

const rel = (a: number, b: number, tol: number, what: string): void =>
  assert.ok(Math.abs(a - b) <= tol * Math.abs(b), `${what}: ${a} vs ${b} (rel tol ${tol})`);

/** The implementation before this change: filter, comparator sort, reduce. */
function summarizeOriginal(values: readonly number[]): Summary {
  const q = (sorted: readonly number[], p: number): number => {
    if (!sorted.length) return NaN;
    const h = (sorted.length - 1) * p, lo = Math.floor(h), hi = Math.ceil(h);
    return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
  };
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN;
  return { n: s.length, median: q(s, 0.5), p5: q(s, 0.05), p95: q(s, 0.95), min: s.length ? s[0]! : NaN, max: s.length ? s[s.length - 1]! : NaN, mean };
}

test('quantile and summarize: same results as the original implementation', () => {
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([10, 20], 0.05), 10.5);
  assert.ok(Number.isNaN(quantile([], 0.5)));
  assert.deepEqual(summarize([]), summarizeOriginal([]));
  assert.deepEqual(summarize([3, NaN, 1, Infinity, 2, -Infinity]), { n: 3, median: 2, p5: 1.1, p95: 2.9, min: 1, max: 3, mean: 2 });
  const r = new Rng(7);
  for (let k = 0; k < 500; k++) {
    const n = Math.floor(r.next() * 60);
    const v = Array.from({ length: n }, () => {
      const u = r.next();
      if (u < 0.05) return NaN;
      if (u < 0.07) return -Infinity;
      if (u < 0.3) return Math.floor(r.next() * 5); // ties
      return (r.next() - 0.3) * 10 ** Math.floor(r.next() * 8 - 4);
    });
    assert.deepEqual(summarize(v), summarizeOriginal(v), `case ${k}`);
  }
  // Typed arrays are accepted too.
  assert.deepEqual(summarize(new Float64Array([5, 1, 3])), summarizeOriginal([5, 1, 3]));
});

test('Student t quantile: textbook table values and scipy to 1e-9', () => {
  const table: [number, number][] = [[1, 12.706], [2, 4.303], [5, 2.571], [10, 2.228], [30, 2.042], [1000, 1.962]];
  for (const [df, t] of table) assert.equal(studentTQuantile(0.975, df).toFixed(3), t.toFixed(3), `t(0.975, ${df})`);
  const scipy: [number, number, number][] = [
    [0.975, 1, 12.706204736174694], [0.975, 2, 4.302652729749462], [0.975, 5, 2.5705818356363146], [0.975, 10, 2.228138851986274],
    [0.975, 30, 2.0422724563012378], [0.975, 1000, 1.9623390808264083], [0.995, 3, 5.840909309733355], [0.9, 7, 1.4149239276505086],
    [0.999999, 4, 41.5778541501515], [0.05, 15, -1.7530503556925725],
  ];
  for (const [p, df, t] of scipy) rel(studentTQuantile(p, df), t, 1e-9, `t(${p}, ${df})`);
  // Symmetry, round trip through the CDF, large df tends to the normal quantile.
  for (const df of [1, 1.5, 3, 8, 40, 500, 1e5]) {
    for (const p of [1e-8, 0.01, 0.2, 0.5, 0.7, 0.99]) {
      const t = studentTQuantile(p, df);
      // 1 − p is rounded, so the tolerance follows the conditioning |d ln t / d ln p| ≤ ~1/df of a tail quantile.
      assert.ok(Math.abs(t + studentTQuantile(1 - p, df)) <= (1e-9 + 1e-15 / Math.min(p, 1 - p)) * Math.max(1, Math.abs(t)), `symmetry df=${df} p=${p}`);
      assert.ok(Math.abs(studentTCdf(t, df) - p) <= 1e-12 + 1e-9 * p, `round trip df=${df} p=${p}: ${studentTCdf(t, df)}`);
    }
  }
  rel(studentTQuantile(0.975, 1e9), normalQuantile(0.975), 1e-8, 'df → ∞');
  rel(studentTCdf(2.5, 7), 0.9795038907071235, 1e-12, 'cdf(2.5, 7)');
  rel(studentTCdf(-1.3, 3.5), 0.1362977079021851, 1e-12, 'cdf(-1.3, 3.5)');
  assert.ok(Number.isNaN(studentTQuantile(0.5, 0)));
  assert.equal(studentTQuantile(0.5, 4), 0);
});

test('normal distribution helpers: scipy values, far tails keep relative precision', () => {
  rel(normalQuantile(0.975), 1.959963984540054, 1e-14, 'z(0.975)');
  rel(normalQuantile(1e-10), -6.361340902404056, 1e-13, 'z(1e-10)');
  rel(normalSf(5), 2.866515718791933e-7, 1e-12, 'sf(5)');
  rel(normalSf(10), 7.61985302416047e-24, 1e-12, 'sf(10)');
  rel(normalSf(-1), 0.8413447460685429, 1e-14, 'sf(-1)');
  rel(normalCdf(0), 0.5, 1e-15, 'cdf(0)');
});

test('meanCI95: Student t interval (scipy t.interval), NaN skipped, n < 2 gives NaN bounds', () => {
  const a = meanCI95([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(a.n, 10);
  assert.equal(a.mean, 5.5);
  rel(a.sd, 3.0276503540974917, 1e-14, 'sd');
  rel(a.low, 3.334149410331831, 1e-12, 'low');
  rel(a.high, 7.665850589668169, 1e-12, 'high');
  const b = meanCI95([2.1, NaN, 2.9, 3.4, 2.2, Infinity, 2.8]);
  assert.equal(b.n, 5);
  rel(b.mean, 2.68, 1e-14, 'mean');
  rel(b.sd, 0.5357238094391549, 1e-12, 'sd');
  rel(b.low, 2.014811032838828, 1e-12, 'low');
  rel(b.high, 3.345188967161173, 1e-12, 'high');
  const one = meanCI95([4]);
  assert.equal(one.n, 1);
  assert.equal(one.mean, 4);
  assert.ok(Number.isNaN(one.sd) && Number.isNaN(one.low) && Number.isNaN(one.high));
  const none = meanCI95([NaN]);
  assert.equal(none.n, 0);
  assert.ok(Number.isNaN(none.mean));
  const flat = meanCI95([3, 3, 3]);
  assert.deepEqual([flat.sd, flat.low, flat.high], [0, 3, 3]);
  // A 99 % interval is wider; large offsets keep precision (two-pass variance).
  const c99 = meanCI([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99);
  assert.ok(c99.low < a.low && c99.high > a.high);
  const shifted = meanCI95([1e9 + 1, 1e9 + 2, 1e9 + 3, 1e9 + 4, 1e9 + 5, 1e9 + 6, 1e9 + 7, 1e9 + 8, 1e9 + 9, 1e9 + 10]);
  rel(shifted.sd, 3.0276503540974917, 1e-12, 'shifted sd');
});

/** Exact two-sided p by enumerating every assignment of the pooled ranks to sample a (no ties). */
function bruteForceExact(a: number[], b: number[]): { u: number; p: number } {
  const pooled = [...a, ...b].sort((x, y) => x - y);
  const rank = new Map(pooled.map((v, i) => [v, i + 1] as const));
  const n1 = a.length, n2 = b.length, N = n1 + n2;
  const uOf = (ranks: number[]): number => ranks.reduce((s, r) => s + r, 0) - (n1 * (n1 + 1)) / 2;
  const u = uOf(a.map((v) => rank.get(v)!));
  const umin = Math.min(u, n1 * n2 - u);
  let le = 0, total = 0;
  for (let mask = 0; mask < 1 << N; mask++) {
    let bits = 0;
    const ranks: number[] = [];
    for (let i = 0; i < N; i++) if (mask & (1 << i)) { bits++; ranks.push(i + 1); }
    if (bits !== n1) continue;
    total++;
    if (uOf(ranks) <= umin) le++;
  }
  return { u, p: Math.min(1, (2 * le) / total) };
}

test('Mann–Whitney U exact: scipy docs example and brute-force enumeration', () => {
  // scipy.stats.mannwhitneyu documentation example (males vs females): U = 17, exact p = 0.1111…
  const males = [19, 22, 16, 29, 24], females = [20, 11, 17, 12];
  const r = mannWhitneyU(males, females);
  assert.equal(r.method, 'exact');
  assert.equal(r.u, 17);
  assert.equal(r.n1, 5);
  assert.equal(r.n2, 4);
  rel(r.p, 0.1111111111111111, 1e-14, 'exact p');
  assert.equal(r.effect, 0.7); // rank-biserial 2·17/20 − 1
  assert.equal(r.cl, 0.85);
  assert.deepEqual(bruteForceExact(males, females), { u: 17, p: r.p });
  // Same data by the normal approximation (scipy method="asymptotic").
  const n = mannWhitneyU(males, females, { method: 'normal' });
  assert.equal(n.method, 'normal');
  rel(n.p, 0.11134688653314041, 1e-12, 'asymptotic p');
  // scipy exact p for a 7 vs 8 case, checked by enumeration of all C(15, 7) = 6435 splits.
  const a = [1.5, 3.2, 7.7, 2.1, 9.9, 4.4, 5.5], b = [6.1, 8.8, 0.3, 11.1, 12.5, 13.2, 10.4, 14.9];
  const e = mannWhitneyU(a, b);
  assert.equal(e.method, 'exact');
  assert.equal(e.u, 10);
  rel(e.p, 0.04009324009324009, 1e-14, 'exact p 7 vs 8');
  assert.deepEqual(bruteForceExact(a, b), { u: 10, p: e.p });
  assert.ok(e.z < 0 && e.effect < 0, 'a tends to be smaller');
  // Random no-tie cases, both orders of the samples, against enumeration.
  const rng = new Rng(3);
  for (let k = 0; k < 20; k++) {
    const n1 = 1 + Math.floor(rng.next() * 7), n2 = 1 + Math.floor(rng.next() * 7);
    const pool = Array.from({ length: n1 + n2 }, (_, i) => i + rng.next() * 0.5);
    for (let i = pool.length - 1; i > 0; i--) { const j = Math.floor(rng.next() * (i + 1)); [pool[i], pool[j]] = [pool[j]!, pool[i]!]; }
    const x = pool.slice(0, n1), y = pool.slice(n1);
    const bf = bruteForceExact(x, y);
    const got = mannWhitneyU(x, y);
    assert.equal(got.method, 'exact');
    assert.equal(got.u, bf.u, `case ${k} U`);
    rel(got.p, bf.p, 1e-12, `case ${k} p`);
    rel(mannWhitneyU(y, x).p, bf.p, 1e-12, `case ${k} swapped p`);
  }
  // Complete separation at the exact limit 20 vs 20: p = 2 / C(40, 20).
  const lo = Array.from({ length: 20 }, (_, i) => i), hi = Array.from({ length: 20 }, (_, i) => 100 + i);
  const sep = mannWhitneyU(lo, hi);
  assert.equal(sep.method, 'exact');
  assert.equal(sep.u, 0);
  assert.equal(sep.effect, -1);
  rel(sep.p, 2 / 137846528820, 1e-12, 'separation p');
  assert.equal(mannWhitneyU([...lo, 200], hi).method, 'normal', '21 > 20: normal approximation');
});

test('Mann–Whitney distribution counts: Gaussian binomial coefficients', () => {
  const c = mannWhitneyCounts(2, 3); // U over the C(5, 2) = 10 splits
  assert.deepEqual([...c], [1, 1, 2, 2, 2, 1, 1]);
  const big = mannWhitneyCounts(20, 20);
  assert.equal(big.length, 401);
  assert.equal(big.reduce((s, v) => s + v, 0), 137846528820);
  for (let k = 0; k <= 400; k++) assert.equal(big[k], big[400 - k]);
  assert.ok([...big].every((v) => Number.isInteger(v) && v > 0));
});

test('Mann–Whitney U normal approximation with heavy ties: direct formula and scipy', () => {
  const a = Array.from({ length: 3000 }, (_, i) => (i * 7919) % 13);
  const b = Array.from({ length: 2500 }, (_, i) => ((i * 104729 + 3) % 13) + (i % 4 === 0 ? 1 : 0));
  const r = mannWhitneyU(a, b);
  assert.equal(r.method, 'normal');
  assert.equal(r.ties, true);
  // Direct: U by counting pairs, tie term from the multiplicities of the pooled values.
  let u = 0;
  for (const x of a) for (const y of b) u += x > y ? 1 : x === y ? 0.5 : 0;
  const mult = new Map<number, number>();
  for (const v of [...a, ...b]) mult.set(v, (mult.get(v) ?? 0) + 1);
  let tie = 0;
  for (const t of mult.values()) tie += t ** 3 - t;
  const n1 = a.length, n2 = b.length, N = n1 + n2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (N + 1 - tie / (N * (N - 1))));
  const z = (Math.sign(u - (n1 * n2) / 2) * (Math.abs(u - (n1 * n2) / 2) - 0.5)) / sigma;
  assert.equal(r.u, u);
  assert.equal(u, 3610965); // scipy statistic
  rel(r.z, z, 1e-12, 'z');
  rel(r.p, 2 * normalSf(Math.abs(z)), 1e-12, 'p from formula');
  rel(r.p, 0.017404595586014288, 1e-10, 'scipy p');
  rel(r.effect, (2 * u) / (n1 * n2) - 1, 1e-15, 'rank-biserial');
  // Small tied case (scipy asymptotic p) and the auto method falling back to normal because of ties.
  const t = mannWhitneyU([1, 2, 2, 3, 3, 3, 4], [2, 3, 4, 4, 5, 5, 6, 6]);
  assert.equal(t.method, 'normal');
  assert.equal(t.u, 8.5);
  rel(t.p, 0.025144761173357368, 1e-12, 'small tied p');
  assert.throws(() => mannWhitneyU([1, 2], [2, 3], { method: 'exact' }), /ties/);
  // Everything tied: no evidence, p = 1. Empty sample: NaN.
  const same = mannWhitneyU([5, 5, 5], [5, 5]);
  assert.deepEqual([same.u, same.z, same.p, same.effect], [3, 0, 1, 0]);
  const empty = mannWhitneyU([NaN], [1, 2]);
  assert.equal(empty.n1, 0);
  assert.ok(Number.isNaN(empty.p));
});

test('ecdf: one corner per distinct finite value, p = fraction ≤ x', () => {
  assert.deepEqual(ecdf([3, 1, 2, NaN, 2]), [{ x: 1, p: 0.25 }, { x: 2, p: 0.75 }, { x: 3, p: 1 }]);
  assert.deepEqual(ecdf([]), []);
  assert.deepEqual(ecdf([Infinity, NaN]), []);
  assert.deepEqual(ecdf([7]), [{ x: 7, p: 1 }]);
});

test('10^6 samples: summarize, mannWhitneyU, meanCI95 and ecdf are fast', (t) => {
  const rng = new Rng(11);
  const a = Array.from({ length: 1_000_000 }, () => 20 + 5 * rng.gaussian());
  const b = Array.from({ length: 1_000_000 }, () => 20.01 + 5 * rng.gaussian());
  const time = <T>(f: () => T): [T, number] => { const t0 = performance.now(); const v = f(); return [v, performance.now() - t0]; };
  const [s, ts] = time(() => summarize(a));
  const [m, tm] = time(() => mannWhitneyU(a, b));
  const [c, tc] = time(() => meanCI95(a));
  const [e, te] = time(() => ecdf(a));
  t.diagnostic(`1e6: summarize ${ts.toFixed(0)} ms, mannWhitneyU (1e6 vs 1e6) ${tm.toFixed(0)} ms, meanCI95 ${tc.toFixed(0)} ms, ecdf ${te.toFixed(0)} ms`);
  assert.equal(s.n, 1e6);
  rel(s.median, 20, 0.01, 'median');
  assert.equal(m.method, 'normal');
  assert.equal(m.n1 + m.n2, 2e6);
  assert.ok(m.p > 0 && m.p <= 1);
  assert.ok(c.low < c.mean && c.mean < c.high && c.high - c.low < 0.03);
  assert.equal(e[e.length - 1]!.p, 1);
  assert.ok(ts < 1000, `summarize took ${ts} ms`);
  assert.ok(tm < 1000, `mannWhitneyU took ${tm} ms`);
  // Typed-array input works the same.
  assert.deepEqual(summarize(Float64Array.from(a)), s);
});
