// Seeded, reproducible randomness for the QKD simulation: xoshiro128** (Blackman & Vigna 2018) seeded through
// splitmix32, plus exact samplers for the count statistics (binomial via Knuth's beta splitting, TAOCP 3.4.1).
// No Math.random anywhere in controller/qkd: the same seed gives the same run, bit for bit.

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | undefined;

  constructor(seed: number) {
    let x = (seed >>> 0) ^ Math.floor(seed / 2 ** 32);
    const sm = (): number => {
      // splitmix32
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = sm(); this.s1 = sm(); this.s2 = sm(); this.s3 = sm();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform 32-bit unsigned integer (xoshiro128**). */
  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  float(): number {
    return ((this.u32() >>> 5) * 67108864 + (this.u32() >>> 6)) / 9007199254740992;
  }

  /** Uniform double in (0, 1]: safe under log(). */
  floatOpen(): number {
    return 1 - this.float();
  }

  /** Uniform integer in [0, n), n ≤ 2^32 (rejection, unbiased). */
  int(n: number): number {
    if (n <= 0x100000000 && n > 0) {
      const lim = 0x100000000 - (0x100000000 % n);
      for (;;) {
        const v = this.u32();
        if (v < lim) return v % n;
      }
    }
    return Math.floor(this.float() * n);
  }

  /** Standard normal (Marsaglia polar method). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    for (;;) {
      const u = 2 * this.float() - 1;
      const v = 2 * this.float() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const m = Math.sqrt((-2 * Math.log(s)) / s);
        this.spare = v * m;
        return u * m;
      }
    }
  }

  /** Gamma(shape, 1), Marsaglia & Tsang (2000), exact rejection sampler. */
  gamma(shape: number): number {
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.floatOpen(), 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.floatOpen();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  beta(a: number, b: number): number {
    const x = this.gamma(a);
    return x / (x + this.gamma(b));
  }

  /**
   * Binomial(n, p), exact in distribution for any n < 2^53: Knuth's beta splitting (the a-th order statistic
   * of n uniforms is Beta(a, n+1-a)) halves n until it is small, then direct Bernoulli trials or geometric
   * waiting times (O(n·p) draws) finish.
   */
  binomial(n: number, p: number): number {
    if (!(n >= 0) || !Number.isFinite(n)) throw new Error(`binomial: bad n ${n}`);
    n = Math.floor(n);
    if (p <= 0 || n === 0) return 0;
    if (p >= 1) return n;
    let k = 0;
    while (n > 64 && n * Math.min(p, 1 - p) > 16) {
      const a = 1 + Math.floor(n / 2);
      const b = n + 1 - a;
      const x = this.beta(a, b);
      if (x >= p) {
        n = a - 1;
        p /= x;
      } else {
        k += a;
        n = b - 1;
        p = (p - x) / (1 - x);
      }
    }
    if (n <= 64) {
      for (let i = 0; i < n; i++) if (this.float() < p) k++;
      return k;
    }
    return k + (p <= 0.5 ? this.geometricCount(n, p) : n - this.geometricCount(n, 1 - p));
  }

  /** Successes in n Bernoulli(p) trials by geometric waiting times (exact; O(n·p) draws). */
  private geometricCount(n: number, p: number): number {
    const lq = Math.log1p(-p);
    let pos = -1;
    let k = 0;
    for (;;) {
      pos += 1 + Math.floor(Math.log(this.floatOpen()) / lq);
      if (pos >= n) return k;
      k++;
    }
  }

  /** Multinomial(n, probs) by sequential conditional binomials. */
  multinomial(n: number, probs: readonly number[]): number[] {
    const out: number[] = [];
    let left = n;
    let mass = 1;
    for (let i = 0; i < probs.length; i++) {
      const p = probs[i]!;
      if (i === probs.length - 1) {
        out.push(left);
        break;
      }
      const c = mass > 0 ? this.binomial(left, Math.min(1, p / mass)) : 0;
      out.push(c);
      left -= c;
      mass -= p;
    }
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
