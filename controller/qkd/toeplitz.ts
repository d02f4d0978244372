// Privacy amplification by Toeplitz hashing (a 2-universal family: Krawczyk, CRYPTO '94; Carter & Wegman 1979).
//   T is m×n with T[i][j] = s[i − j + n − 1] for a public random seed s of n + m − 1 bits; y = T·x over GF(2):
//     y_i = ⊕_j s[i − j + n − 1]·x_j = (s ∗ x)[i + n − 1] mod 2   (∗ = linear convolution)
// Two exact implementations of the same matrix-vector product:
//   direct: bit-packed rows, y_i = parity(s[i .. i+n) AND reverse(x)), m·n/32 word operations;
//   fft:    the convolution over the integers by a double-precision complex FFT of size 2^⌈log2(n+m−1)⌉
//           (s and x packed as real and imaginary parts of one transform), rounded, mod 2. Sums are ≤ n < 2^26,
//           far inside double precision; every rounding is checked (|v − round(v)| < 1/4) and a bad one throws.
// toeplitzHash picks direct below ~2^30 bit-products, fft above.
import { getBit, setBit, parity32, words } from './bits.js';

export type ToeplitzMethod = 'direct' | 'fft' | 'auto';

/** y = T(seed)·x, x of n bits, seed of n + m − 1 bits, y of m bits. */
export function toeplitzHash(x: Uint32Array, n: number, seed: Uint32Array, m: number, method: ToeplitzMethod = 'auto'): Uint32Array {
  if (m <= 0 || n <= 0) return new Uint32Array(words(Math.max(m, 0)));
  if (seed.length < words(n + m - 1)) throw new Error('toeplitz: seed shorter than n + m − 1 bits');
  const useFft = method === 'fft' || (method === 'auto' && m * n > 2 ** 30);
  return useFft ? toeplitzFft(x, n, seed, m) : toeplitzDirect(x, n, seed, m);
}

export function toeplitzDirect(x: Uint32Array, n: number, seed: Uint32Array, m: number): Uint32Array {
  const nw = words(n);
  // xr[j'] = x[n − 1 − j'], so y_i = ⊕_{j'} s[i + j']·xr[j'] = parity(window of s at i, AND xr)
  const xr = new Uint32Array(nw);
  for (let j = 0; j < n; j++) if (getBit(x, j)) setBit(xr, n - 1 - j, 1);
  // seed padded by one word so the window read never runs past the end
  const s = new Uint32Array(seed.length + 2);
  s.set(seed);
  const y = new Uint32Array(words(m));
  for (let i = 0; i < m; i++) {
    const w0 = i >>> 5;
    const sh = i & 31;
    let acc = 0;
    if (sh === 0) {
      for (let w = 0; w < nw; w++) acc ^= s[w0 + w]! & xr[w]!;
    } else {
      const rs = 32 - sh;
      for (let w = 0; w < nw; w++) acc ^= ((s[w0 + w]! >>> sh) | (s[w0 + w + 1]! << rs)) & xr[w]!;
    }
    if (parity32(acc)) y[i >>> 5]! |= 1 << (i & 31);
  }
  return y;
}

export function toeplitzFft(x: Uint32Array, n: number, seed: Uint32Array, m: number): Uint32Array {
  const L = n + m - 1; // seed length; cyclic convolution of size N ≥ L leaves indices n−1 .. n+m−2 unaliased
  let N = 1;
  while (N < L) N <<= 1;
  const re = new Float64Array(N);
  const im = new Float64Array(N);
  for (let t = 0; t < L; t++) re[t] = getBit(seed, t);
  for (let j = 0; j < n; j++) im[j] = getBit(x, j);
  fft(re, im, false);
  // Z = S + iX  ⇒  S_k = (Z_k + conj Z_{N−k})/2, X_k = (Z_k − conj Z_{N−k})/(2i); P_k = S_k·X_k
  const pr = new Float64Array(N);
  const pi = new Float64Array(N);
  for (let k = 0; k < N; k++) {
    const k2 = (N - k) & (N - 1);
    const zr = re[k]!, zi = im[k]!, cr = re[k2]!, ci = -im[k2]!;
    const sr = (zr + cr) / 2, si = (zi + ci) / 2;
    // (Z − conj Z')/(2i) = ((zi − ci) − i(zr − cr))/2
    const xr = (zi - ci) / 2, xi = -(zr - cr) / 2;
    pr[k] = sr * xr - si * xi;
    pi[k] = sr * xi + si * xr;
  }
  fft(pr, pi, true);
  const y = new Uint32Array(words(m));
  for (let i = 0; i < m; i++) {
    const v = pr[i + n - 1]! / N;
    const r = Math.round(v);
    if (Math.abs(v - r) > 0.25) throw new Error(`toeplitz fft: rounding error ${Math.abs(v - r)} at ${i}`);
    if (r & 1) y[i >>> 5]! |= 1 << (i & 31);
  }
  return y;
}

/** In-place iterative radix-2 complex FFT (inverse: unnormalised, conjugate twiddles). */
function fft(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const N = re.length;
  for (let i = 1, j = 0; i < N; i++) {
    let bit = N >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      let t = re[i]!; re[i] = re[j]!; re[j] = t;
      t = im[i]!; im[i] = im[j]!; im[j] = t;
    }
  }
  const cos = new Float64Array(N >> 1);
  const sin = new Float64Array(N >> 1);
  for (let k = 0; k < N >> 1; k++) {
    cos[k] = Math.cos((2 * Math.PI * k) / N);
    sin[k] = (inverse ? 1 : -1) * Math.sin((2 * Math.PI * k) / N);
  }
  for (let len = 2; len <= N; len <<= 1) {
    const half = len >> 1;
    const step = N / len;
    for (let i = 0; i < N; i += len) {
      for (let k = 0, t = 0; k < half; k++, t += step) {
        const a = i + k, b = a + half;
        const wr = cos[t]!, wi = sin[t]!;
        const xr = re[b]! * wr - im[b]! * wi;
        const xi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - xr; im[b] = im[a]! - xi;
        re[a]! += xr; im[a]! += xi;
      }
    }
  }
}
