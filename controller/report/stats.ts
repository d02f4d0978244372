// Statistics for reports: order statistics, a Student-t confidence interval for the mean, the two-sided
// Mann–Whitney U test and the empirical CDF. Everything is self-contained (no dependencies) and sized for
// 10^6 samples: samples are copied into a Float64Array and sorted natively, never with a comparator.
//
// Non-finite values (NaN, ±Infinity) are ignored everywhere, as `summarize` always did.

// ---------------------------------------------------------------------------------------------------------
// Order statistics
// ---------------------------------------------------------------------------------------------------------

/** Quantile of an ascending array, linear interpolation between order statistics (R type 7). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (!sorted.length) return NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

export interface Summary {
  n: number;
  median: number;
  p5: number;
  p95: number;
  min: number;
  max: number;
  mean: number;
}

/** The finite values of `values`, ascending, in a Float64Array (native numeric sort: ~10x a comparator sort). */
export function sortedFinite(values: ArrayLike<number>): Float64Array {
  const out = new Float64Array(values.length);
  let k = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) out[k++] = v;
  }
  return out.subarray(0, k).sort();
}

export function summarize(values: ArrayLike<number>): Summary {
  const s = sortedFinite(values);
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i]!; // ascending order, as the reduce over the sorted array did
  return {
    n: s.length,
    median: quantile(s, 0.5),
    p5: quantile(s, 0.05),
    p95: quantile(s, 0.95),
    min: s.length ? s[0]! : NaN,
    max: s.length ? s[s.length - 1]! : NaN,
    mean: s.length ? sum / s.length : NaN,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Special functions: log-gamma, regularized incomplete gamma and beta, normal and Student-t distributions
// ---------------------------------------------------------------------------------------------------------

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7; relative error ~1e-15). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

const EPS = 1e-16;
const FPMIN = 1e-300;

/** Regularized lower incomplete gamma P(a, x) and its complement Q(a, x) = 1 − P, each without cancellation. */
function incGamma(a: number, x: number): { p: number; q: number } {
  if (x <= 0) return { p: 0, q: 1 };
  const front = Math.exp(-x + a * Math.log(x) - logGamma(a));
  if (x < a + 1) {
    let ap = a, del = 1 / a, sum = del;
    for (let i = 0; i < 10000; i++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * EPS) break;
    }
    const p = sum * front;
    return { p, q: 1 - p };
  }
  // Continued fraction (modified Lentz).
  let b = x + 1 - a, c = 1 / FPMIN, d = 1 / b, h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = b + an / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  const q = front * h;
  return { p: 1 - q, q };
}

/** erfc(x), relative accuracy ~1e-15 including the far tail (via Q(1/2, x²)). */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const g = incGamma(0.5, x * x);
  return x >= 0 ? g.q : 1 + g.p;
}

/** Upper tail of the standard normal, P(Z > z). */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** Standard normal CDF, P(Z ≤ z). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** Standard normal quantile (Acklam's rational approximation polished by one Halley step; ~1e-15). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : NaN;
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const tail = (q: number): number => {
    const r = Math.sqrt(-2 * Math.log(q));
    return (((((c[0]! * r + c[1]!) * r + c[2]!) * r + c[3]!) * r + c[4]!) * r + c[5]!) / ((((d[0]! * r + d[1]!) * r + d[2]!) * r + d[3]!) * r + 1);
  };
  let x: number;
  if (p < 0.02425) x = tail(p);
  else if (p > 1 - 0.02425) x = -tail(1 - p);
  else {
    const q = p - 0.5, r = q * q;
    x = (((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  }
  // Halley refinement against the accurate CDF (on the tail that keeps relative precision).
  const e = p < 0.5 ? normalCdf(x) - p : -(normalSf(x) - (1 - p));
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaCf(a: number, b: number, x: number): number {
  const qab = a + b, qap = a + 1, qam = a - 1;
  let c = 1, d = 1 - (qab * x) / qap;
  if (Math.abs(d) < FPMIN) d = FPMIN;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 100000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return h;
}

/**
 * Regularized incomplete beta I_x(a, b), with y = 1 − x passed separately so that x close to 1 keeps its
 * precision. Chooses the converging side of the continued fraction.
 */
export function incBeta(a: number, b: number, x: number, y: number = 1 - x): number {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  const lbt = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(y);
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(lbt) * betaCf(a, b, x)) / a;
  return 1 - (Math.exp(lbt) * betaCf(b, a, y)) / b;
}

/** P(|T| > |t|) for Student's t with df degrees of freedom (df > 0, not necessarily an integer). */
function tTwoTail(t: number, df: number): number {
  const t2 = t * t;
  return incBeta(df / 2, 0.5, df / (df + t2), t2 / (df + t2));
}

/** Student-t CDF P(T ≤ t), df > 0. */
export function studentTCdf(t: number, df: number): number {
  if (Number.isNaN(t) || !(df > 0)) return NaN;
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const half = 0.5 * tTwoTail(t, df);
  return t > 0 ? 1 - half : half;
}

/** Student-t density. */
function studentTPdf(t: number, df: number): number {
  const lc = logGamma((df + 1) / 2) - logGamma(df / 2) - 0.5 * Math.log(df * Math.PI);
  return Math.exp(lc - ((df + 1) / 2) * Math.log1p((t * t) / df));
}

/**
 * Student-t quantile: the t with P(T ≤ t) = p, df > 0. Closed forms for df = 1 and 2; otherwise a
 * Cornish–Fisher start refined by safeguarded Newton steps on the incomplete-beta CDF (relative error
 * ~1e-12). For df > 1e4 the four-term Cornish–Fisher expansion alone is already exact to double precision.
 */
export function studentTQuantile(p: number, df: number): number {
  if (Number.isNaN(p) || !(df > 0) || p < 0 || p > 1) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  const sign = p < 0.5 ? -1 : 1;
  const q = p < 0.5 ? p : 1 - p; // upper-tail probability of the positive root
  if (df === 1) return sign / Math.tan(Math.PI * q);
  if (df === 2) return (sign * (1 - 2 * q)) / Math.sqrt(2 * q * (1 - q));
  const z = -normalQuantile(q);
  const z2 = z * z;
  let t = z
    + (z * (z2 + 1)) / (4 * df)
    + (z * (5 * z2 * z2 + 16 * z2 + 3)) / (96 * df * df)
    + (z * (3 * z2 * z2 * z2 + 19 * z2 * z2 + 17 * z2 - 15)) / (384 * df * df * df)
    + (z * (79 * z2 ** 4 + 776 * z2 ** 3 + 1482 * z2 * z2 - 1920 * z2 - 945)) / (92160 * df ** 4);
  if (df > 1e4) return sign * t;
  if (!(t > 0) || !Number.isFinite(t)) t = 1;
  // Solve g(t) = P(T > t) − q = 0 on (0, ∞); g is decreasing. Keep a bracket so Newton can't escape.
  let lo = 0, hi = Infinity;
  for (let i = 0; i < 200; i++) {
    const g = 0.5 * tTwoTail(t, df) - q;
    if (g === 0) break;
    if (g > 0) lo = t; else hi = t;
    let next = t + g / studentTPdf(t, df);
    if (!(next > lo && next < hi)) next = hi === Infinity ? Math.max(2 * t, 1) : 0.5 * (lo + hi);
    if (Math.abs(next - t) <= 1e-14 * t) { t = next; break; }
    t = next;
  }
  return sign * t;
}

// ---------------------------------------------------------------------------------------------------------
// Mean with a Student-t confidence interval
// ---------------------------------------------------------------------------------------------------------

export interface MeanCI {
  /** Finite values used. */
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1 denominator); NaN for n < 2. */
  sd: number;
  /** Interval bounds mean ∓ t(1 − α/2, n − 1)·sd/√n; NaN for n < 2. */
  low: number;
  high: number;
}

/** Mean and two-sided Student-t confidence interval at `level` (e.g. 0.95). Two-pass for accuracy. */
export function meanCI(values: ArrayLike<number>, level: number): MeanCI {
  let n = 0, sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) { n++; sum += v; }
  }
  if (n === 0) return { n, mean: NaN, sd: NaN, low: NaN, high: NaN };
  const mean = sum / n;
  if (n < 2) return { n, mean, sd: NaN, low: NaN, high: NaN };
  let ss = 0, comp = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) { const d = v - mean; ss += d * d; comp += d; }
  }
  const sd = Math.sqrt(Math.max(0, (ss - (comp * comp) / n) / (n - 1)));
  const half = (studentTQuantile(1 - (1 - level) / 2, n - 1) * sd) / Math.sqrt(n);
  return { n, mean, sd, low: mean - half, high: mean + half };
}

/** Mean and 95 % Student-t confidence interval. */
export function meanCI95(values: ArrayLike<number>): MeanCI {
  return meanCI(values, 0.95);
}

// ---------------------------------------------------------------------------------------------------------
// Mann–Whitney U (Wilcoxon rank-sum), two-sided
// ---------------------------------------------------------------------------------------------------------

export interface MannWhitney {
  /** U statistic of sample a: #{(x, y): x > y} + ½·#{x = y} over x ∈ a, y ∈ b (what scipy reports). */
  u: number;
  n1: number;
  n2: number;
  /**
   * Normal-approximation z of U (tie-corrected variance, continuity correction toward the mean); reported
   * for both methods. Positive when a tends to be larger. 0 when every value is tied.
   */
  z: number;
  /** Two-sided p-value. */
  p: number;
  /** Rank-biserial correlation 2·U/(n1·n2) − 1 ∈ [−1, 1]; positive when a tends to be larger. */
  effect: number;
  /** Common-language effect size U/(n1·n2) = P(A > B) + ½·P(A = B). */
  cl: number;
  method: 'exact' | 'normal';
  /** Whether the pooled sample had ties (exact method is then not available). */
  ties: boolean;
}

export interface MannWhitneyOptions {
  /** 'auto' (default): exact when n1, n2 ≤ 20 and there are no ties, else normal. */
  method?: 'auto' | 'exact' | 'normal';
}

/**
 * Counts c[u] of rank arrangements with U = u for sample sizes m and n: the coefficients of the Gaussian
 * binomial [m+n choose m]_q, built as Π_{i=1..m} (1 − q^{n+i}) / (1 − q^i). All intermediate values are
 * integers below 2·C(m+n, m) (exact in doubles up to m + n ≈ 50).
 */
export function mannWhitneyCounts(m: number, n: number): Float64Array {
  const c = new Float64Array(m * n + m + 1);
  c[0] = 1;
  for (let i = 1; i <= m; i++) {
    const top = (i - 1) * n + n + i; // degree after multiplying by (1 − q^{n+i})
    const s = n + i;
    for (let k = top; k >= s; k--) c[k] -= c[k - s]!;
    for (let k = i; k <= top; k++) c[k] += c[k - i]!;
  }
  return c.slice(0, m * n + 1);
}

/**
 * Two-sided Mann–Whitney U test of a vs b (non-finite values ignored). Mid-ranks for ties; the normal
 * approximation uses the tie-corrected variance n1·n2/12·((N+1) − Σ(t³−t)/(N(N−1))) and a continuity
 * correction of ½; the exact p-value is 2·P(U ≤ min(U, n1·n2 − U)) capped at 1, as in scipy.
 * O(N log N) with native sorts of each sample and a merge; no index sort.
 */
export function mannWhitneyU(a: ArrayLike<number>, b: ArrayLike<number>, opts: MannWhitneyOptions = {}): MannWhitney {
  const x = sortedFinite(a);
  const y = sortedFinite(b);
  const n1 = x.length, n2 = y.length, N = n1 + n2;
  if (!n1 || !n2) return { u: NaN, n1, n2, z: NaN, p: NaN, effect: NaN, cl: NaN, method: 'normal', ties: false };
  // Merge walk: per distinct value, the counts from each sample form one tie block with a shared mid-rank.
  let i = 0, j = 0, pos = 0, r1 = 0, tieSum = 0;
  while (i < n1 || j < n2) {
    const v = i < n1 && (j >= n2 || x[i]! <= y[j]!) ? x[i]! : y[j]!;
    let ca = 0, cb = 0;
    while (i < n1 && x[i] === v) { i++; ca++; }
    while (j < n2 && y[j] === v) { j++; cb++; }
    const t = ca + cb;
    r1 += ca * (pos + (t + 1) / 2);
    if (t > 1) tieSum += t * t * t - t;
    pos += t;
  }
  const u = r1 - (n1 * (n1 + 1)) / 2;
  const nn = n1 * n2;
  const mu = nn / 2;
  const varU = (nn / 12) * (N + 1 - tieSum / (N * (N - 1)));
  const dev = u - mu;
  const z = varU > 0 ? (Math.sign(dev) * Math.max(Math.abs(dev) - 0.5, 0)) / Math.sqrt(varU) : 0;
  const ties = tieSum > 0;
  const want = opts.method ?? 'auto';
  if (want === 'exact' && ties) throw new Error('mannWhitneyU: exact method needs samples without ties');
  const exact = want === 'exact' || (want === 'auto' && !ties && n1 <= 20 && n2 <= 20);
  let p: number;
  if (exact) {
    const c = mannWhitneyCounts(Math.min(n1, n2), Math.max(n1, n2));
    const umin = Math.min(u, nn - u);
    let le = 0, total = 0;
    for (let k = 0; k < c.length; k++) { total += c[k]!; if (k <= umin) le += c[k]!; }
    p = Math.min(1, (2 * le) / total);
  } else {
    p = varU > 0 ? Math.min(1, 2 * normalSf(Math.abs(z))) : 1;
  }
  return { u, n1, n2, z, p, effect: (2 * u) / nn - 1, cl: u / nn, method: exact ? 'exact' : 'normal', ties };
}

// ---------------------------------------------------------------------------------------------------------
// Empirical CDF
// ---------------------------------------------------------------------------------------------------------

export interface EcdfPoint {
  /** A distinct finite sample value. */
  x: number;
  /** F(x) = fraction of finite samples ≤ x; the last point has p = 1. */
  p: number;
}

/**
 * Empirical CDF as the corners of a right-continuous step function: one point per distinct finite value,
 * ascending. Draw it as: from (x₀, 0) up to (x₀, p₀), then for each next point across to xᵢ and up to pᵢ.
 */
export function ecdf(values: ArrayLike<number>): EcdfPoint[] {
  const s = sortedFinite(values);
  const n = s.length;
  const out: EcdfPoint[] = [];
  for (let i = 0; i < n; i++) {
    if (i + 1 < n && s[i + 1] === s[i]) continue;
    out.push({ x: s[i]!, p: (i + 1) / n });
  }
  return out;
}
