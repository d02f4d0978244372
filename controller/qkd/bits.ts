// Bit-packed keys: bit i lives in word i >>> 5 at position i & 31 (LSB first). All QKD bit work is on these.
import type { Rng } from './rng.js';

export function words(nBits: number): number {
  return (nBits + 31) >>> 5;
}

/** Parity of a 32-bit word. */
export function parity32(x: number): number {
  x ^= x >>> 16;
  x ^= x >>> 8;
  x ^= x >>> 4;
  return (0x6996 >>> (x & 0xf)) & 1;
}

export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

export function getBit(w: Uint32Array, i: number): number {
  return (w[i >>> 5]! >>> (i & 31)) & 1;
}

export function flipBit(w: Uint32Array, i: number): void {
  w[i >>> 5]! ^= 1 << (i & 31);
}

export function setBit(w: Uint32Array, i: number, b: number): void {
  if (b) w[i >>> 5]! |= 1 << (i & 31);
  else w[i >>> 5]! &= ~(1 << (i & 31));
}

/** Parity of bits [s, e) (s < e). */
export function rangeParity(w: Uint32Array, s: number, e: number): number {
  const ws = s >>> 5;
  const we = (e - 1) >>> 5;
  const hiMask = (e & 31) === 0 ? 0xffffffff : (1 << (e & 31)) - 1;
  if (ws === we) return parity32((w[ws]! >>> (s & 31)) & (hiMask >>> (s & 31)));
  let x = w[ws]! >>> (s & 31);
  for (let k = ws + 1; k < we; k++) x ^= w[k]!;
  x ^= w[we]! & hiMask;
  return parity32(x);
}

/** Uniform random n-bit key (unused high bits of the last word are zero). */
export function randomBits(rng: Rng, n: number): Uint32Array {
  const w = new Uint32Array(words(n));
  for (let i = 0; i < w.length; i++) w[i] = rng.u32();
  clearTail(w, n);
  return w;
}

export function clearTail(w: Uint32Array, n: number): void {
  if (n & 31) w[w.length - 1]! &= (1 << (n & 31)) - 1;
}

/** Independent Bernoulli(p) error pattern over n bits (geometric waiting times: O(n·p) draws). */
export function bernoulliPattern(rng: Rng, n: number, p: number): Uint32Array {
  const w = new Uint32Array(words(n));
  if (p <= 0) return w;
  if (p >= 0.5) {
    for (let i = 0; i < n; i++) if (rng.float() < p) flipBit(w, i);
    return w;
  }
  const lq = Math.log1p(-p);
  for (let pos = -1; ;) {
    pos += 1 + Math.floor(Math.log(rng.floatOpen()) / lq);
    if (pos >= n) break;
    flipBit(w, pos);
  }
  return w;
}

export function xorInto(dst: Uint32Array, src: Uint32Array): Uint32Array {
  for (let i = 0; i < dst.length; i++) dst[i]! ^= src[i]!;
  return dst;
}

/** Hamming distance between two packed keys of equal length. */
export function hamming(a: Uint32Array, b: Uint32Array): number {
  let c = 0;
  for (let i = 0; i < a.length; i++) c += popcount32((a[i]! ^ b[i]!) >>> 0);
  return c;
}

export function toBytes(w: Uint32Array, nBits: number): Uint8Array {
  const out = new Uint8Array((nBits + 7) >>> 3);
  for (let i = 0; i < out.length; i++) out[i] = (w[i >>> 2]! >>> ((i & 3) * 8)) & 0xff;
  if (nBits & 7) out[out.length - 1]! &= (1 << (nBits & 7)) - 1;
  return out;
}
