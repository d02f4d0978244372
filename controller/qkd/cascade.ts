// Cascade information reconciliation (Brassard & Salvail, EUROCRYPT '93), on real bit-packed keys.
//   pass 1: blocks of k1 bits in the natural order; pass i > 1: a fresh public random permutation, blocks of
//   k_i = 2·k_{i-1}. Alice discloses every block parity; every block whose parities differ is BINARY-searched
//   (Alice discloses the parity of the left half, ⌈log2 k⌉ times) and the error bit flipped on Bob's side.
//   Cascade effect: the flipped bit changes the parity of the block holding it in every earlier pass; each block
//   that turns odd is searched in turn (backtracking) until every pass so far has even blocks only.
// Default k1 = 0.73/Q (Brassard & Salvail's choice, kept by Martinez-Mateo et al., "Demystifying the information
// reconciliation protocol Cascade", QIC 15 (2015)), 4 passes.
// Leakage counts every disclosed parity bit; efficiency f = leaked / (n·h(e)) with e the true error fraction.
// Implementation: Alice's and Bob's keys kept bit-packed once per pass in that pass's order (Uint32Array), the
// permutations and their inverses as Int32Array, block parities as Uint8Array; no per-bit objects.
import { Rng } from './rng.js';
import { flipBit, getBit, rangeParity, setBit, words } from './bits.js';

export interface CascadeOptions {
  /** QBER estimate used to size the first-pass blocks (from parameter estimation). */
  qber: number;
  /** Public seed of the pass permutations (shared by Alice and Bob). */
  seed: number;
  /** Number of passes (default 4). */
  passes?: number;
  /** First-pass block size (default round(0.73 / qber), at least 4). */
  k1?: number;
}

export interface CascadeResult {
  /** Bob's key after reconciliation (a new array; the input is not modified). */
  corrected: Uint32Array;
  /** Parity bits disclosed on the public channel. */
  leakedBits: number;
  /** Bits Bob flipped (= errors found). */
  flips: number;
  blockSizes: number[];
  /** Binary searches run (first-pass odd blocks plus those triggered by the cascade effect). */
  searches: number;
}

export function defaultK1(qber: number): number {
  return Math.max(4, Math.round(0.73 / Math.max(qber, 1e-4)));
}

export function cascade(alice: Uint32Array, bobIn: Uint32Array, n: number, opts: CascadeOptions): CascadeResult {
  const P = opts.passes ?? 4;
  const k1 = Math.min(Math.max(2, opts.k1 ?? defaultK1(opts.qber)), Math.max(2, n));
  const rng = new Rng(opts.seed);
  const bob = bobIn.slice();
  const nw = words(n);
  const ks: number[] = [];
  const perms: (Int32Array | null)[] = []; // permuted position t -> original index (null: identity)
  const invs: (Int32Array | null)[] = []; // original index -> permuted position
  const A: Uint32Array[] = []; // Alice's bits in pass order
  const B: Uint32Array[] = []; // Bob's bits in pass order
  const aPar: Uint8Array[] = [];
  const bPar: Uint8Array[] = [];
  let leaked = 0;
  let flips = 0;
  let searches = 0;
  const stack: number[] = [];

  const flip = (j: number, upto: number): void => {
    flips++;
    for (let q = 0; q <= upto; q++) {
      const t = invs[q] ? invs[q]![j]! : j;
      if (q > 0) flipBit(B[q]!, t);
      const blk = (t / ks[q]!) | 0;
      bPar[q]![blk]! ^= 1;
      if (aPar[q]![blk] !== bPar[q]![blk]) stack.push(blk * P + q);
    }
    flipBit(bob, j); // B[0] is bob itself (identity order)
  };

  for (let i = 0; i < P; i++) {
    const k = i === 0 ? k1 : Math.min(ks[i - 1]! * 2, n);
    ks.push(k);
    if (i === 0) {
      perms.push(null);
      invs.push(null);
      A.push(alice);
      B.push(bob);
    } else {
      const perm = new Int32Array(n);
      for (let t = 0; t < n; t++) perm[t] = t;
      for (let t = n - 1; t > 0; t--) {
        const r = rng.int(t + 1);
        const x = perm[t]!;
        perm[t] = perm[r]!;
        perm[r] = x;
      }
      const inv = new Int32Array(n);
      const a = new Uint32Array(nw);
      const b = new Uint32Array(nw);
      for (let t = 0; t < n; t++) {
        const j = perm[t]!;
        inv[j] = t;
        if (getBit(alice, j)) setBit(a, t, 1);
        if (getBit(bob, j)) setBit(b, t, 1);
      }
      perms.push(perm);
      invs.push(inv);
      A.push(a);
      B.push(b);
    }
    const nb = Math.ceil(n / k);
    const ap = new Uint8Array(nb);
    const bp = new Uint8Array(nb);
    for (let blk = 0; blk < nb; blk++) {
      const s = blk * k;
      const e = Math.min(n, s + k);
      ap[blk] = rangeParity(A[i]!, s, e);
      bp[blk] = rangeParity(B[i]!, s, e);
    }
    aPar.push(ap);
    bPar.push(bp);
    leaked += nb;
    for (let blk = nb - 1; blk >= 0; blk--) if (ap[blk] !== bp[blk]) stack.push(blk * P + i);

    while (stack.length) {
      const code = stack.pop()!;
      const q = code % P;
      const blk = (code - q) / P;
      if (aPar[q]![blk] === bPar[q]![blk]) continue; // already fixed through another block
      searches++;
      const kq = ks[q]!;
      let s = blk * kq;
      let e = Math.min(n, s + kq);
      const a = A[q]!;
      const b = B[q]!;
      while (e - s > 1) {
        const m = (s + e) >>> 1;
        leaked++; // Alice discloses the parity of the left half
        if (rangeParity(a, s, m) !== rangeParity(b, s, m)) e = m;
        else s = m;
      }
      flip(perms[q] ? perms[q]![s]! : s, i);
    }
  }
  return { corrected: bob, leakedBits: leaked, flips, blockSizes: ks, searches };
}
