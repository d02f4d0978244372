// QKD link simulation: BB84 with a weak coherent source and vacuum + weak decoy states, and E91 (entangled
// pairs, CHSH test), over a fiber or free-space channel. One call runs the whole pipeline once:
//   transmission & detection (count statistics sampled exactly: multinomial/binomial per intensity class or
//   setting pair) → sifting → parameter estimation on a random sample of the sifted key → abort checks →
//   Cascade on the real bit arrays → SHA-256 verification → Toeplitz privacy amplification → finite-key length.
// Model, defaults and citations: controller/qkd/README.md.
import { createHash } from 'node:crypto';
import { Rng } from './rng.js';
import { bernoulliPattern, getBit, randomBits, setBit, toBytes, words, xorInto, hamming } from './bits.js';
import { cascade } from './cascade.js';
import { toeplitzHash } from './toeplitz.js';
import {
  bb84Class, channelLossDb, decoyBounds, e91Correlation, E91_ALICE, E91_BOB, h2, keyLengthDecoy, keyLengthSinglePhoton,
  nSigmaFor, pnsStrategy, tomamichelMu, gainRatioViolated, cascadeEfficiency, transmittance, type ChannelParams, type DecoyBounds, type DecoyCounts, type SecurityParams,
} from './model.js';

export interface LinkOptions {
  protocol: 'bb84' | 'e91';
  distanceKm: number;
  /** PRNG seed (default 1): same options + seed → same result. */
  seed?: number;
  /** Eavesdropper acting on a fraction of the pulses (pns: BB84 only). */
  eve?: { kind: 'intercept-resend' | 'pns'; fraction: number };
  /** 'fiber' (default) or 'free-space'. */
  channel?: 'fiber' | 'free-space';
  /** Fiber attenuation α, dB/km (default 0.21, GYS). */
  fiberLossDbPerKm?: number;
  /** Free-space link: fixed loss (optics, pointing, turbulence margin; default 3 dB), atmospheric extinction
   *  (default 0.1 dB/km), geometric loss (tx aperture 0.05 m, rx aperture 0.3 m, full divergence 20 µrad). */
  freeSpace?: { fixedLossDb?: number; atmLossDbPerKm?: number; txApertureM?: number; rxApertureM?: number; divergenceRad?: number };
  /** Bob's detection efficiency incl. his optics (default 0.045, GYS). */
  detectorEfficiency?: number;
  /** Dark-count (background) probability per gate Y0 (default 1.7e-6, GYS). */
  darkCountProb?: number;
  /** Misalignment error e_d (default 0.033, GYS). */
  misalignment?: number;
  /** Detector dead time, s (non-paralysable; default 100e-9). */
  deadTimeS?: number;
  /** Pulse (BB84) or pump-pulse (E91) rate, Hz (default 2e6, GYS). */
  sourceRateHz?: number;
  /** BB84 mean photon numbers (default signal 0.48, decoy 0.1, vacuum 0). */
  intensities?: { signal: number; decoy: number; vacuum?: number };
  /** BB84 intensity choice probabilities (default 0.7 / 0.2 / 0.1). */
  intensityProbs?: { signal: number; decoy: number; vacuum: number };
  /** BB84: bound single-photon yield and error with decoy states (default true). false: treat every signal
   *  detection as a single photon (what a system without decoy analysis does; PNS goes unnoticed). */
  decoyAnalysis?: boolean;
  /** E91: pair-emission probability per pump pulse (default 0.1; multi-pair emission neglected). */
  pairProb?: number;
  /** Sifted key-class bits to collect per run (default 1e6): sets the acquisition time. */
  blockBits?: number;
  /** Acquisition time, s (default: the time expected to collect blockBits, capped at maxDurationS). */
  durationS?: number;
  /** Cap on the acquisition time (default 86400 s). */
  maxDurationS?: number;
  /** Fraction of the sifted key disclosed for QBER estimation (default 0.1). */
  sampleFraction?: number;
  /** Abort above this QBER (default 0.11: one-way BB84, Shor & Preskill 2000). */
  qberThreshold?: number;
  /** Error-correction efficiency assumed by keyRateForLink (default: this Cascade's measured f ≈ 1.11 + 1.2·Q)
   *  and by the asymptotic estimate asymptoticRatePerSignalPulse (default 1.22, GYS/LMC). The simulation itself
   *  always uses the bits Cascade actually disclosed. */
  fEC?: number;
  /** Cascade passes (default 4). */
  cascadePasses?: number;
  /** Apply finite-key corrections (default true); false: asymptotic formulas on the same data. */
  finiteKey?: boolean;
  /** Secrecy and correctness parameters (default 1e-10, 1e-15). */
  epsSec?: number;
  epsCor?: number;
}

export interface LinkResult {
  protocol: string;
  distanceKm: number;
  rawBits: number;
  siftedBits: number;
  qber: number;
  qberUpper?: number;
  chshS?: number;
  leakedBits: number;
  f?: number;
  finalBits: number;
  secretKeyRateBps: number;
  abortReason?: string;
  durationS: number;
}

/** LinkResult plus the intermediate figures (for tests, reports and the CLI's --json). */
export interface LinkDetail extends LinkResult {
  lossDb: number;
  transmittance: number;
  pulses: number;
  /** BB84: per intensity class pulses / detections / sifted / sifted errors. */
  classes?: { name: string; intensity: number; pulses: number; detections: number; sifted: number; errors: number }[];
  decoy?: DecoyBounds & { s0: number; s1: number };
  /** BB84: asymptotic decoy key rate per signal pulse from this run's counts, ½{−Q_μ f h(E_μ) + Q1^L(1 − h(e1^U))}, f = fEC. */
  asymptoticRatePerSignalPulse?: number;
  chshSigma?: number;
  sampleBits: number;
  keyBits: number;
  errorsCorrected: number;
  residualErrors: number;
  verified: boolean;
  finalKeySha256?: string;
  timingsMs: { detection: number; estimation: number; cascade: number; verification: number; privacyAmplification: number };
}

interface Resolved {
  protocol: 'bb84' | 'e91';
  distanceKm: number;
  seed: number;
  eve: { kind: 'intercept-resend' | 'pns'; fraction: number } | undefined;
  ch: ChannelParams;
  etaDet: number; y0: number; ed: number; deadTimeS: number; rate: number;
  mu: number; nu: number; vac: number;
  pMu: number; pNu: number; p0: number;
  decoyAnalysis: boolean; pairProb: number;
  blockBits: number; durationS: number | undefined; maxDurationS: number;
  sampleFraction: number; qberThreshold: number; fEC: number; passes: number;
  sec: SecurityParams;
}

function resolve(o: LinkOptions): Resolved {
  const fs = o.freeSpace ?? {};
  const r: Resolved = {
    protocol: o.protocol,
    distanceKm: o.distanceKm,
    seed: o.seed ?? 1,
    eve: o.eve && o.eve.fraction > 0 ? o.eve : undefined,
    ch: {
      channel: o.channel ?? 'fiber',
      fiberLossDbPerKm: o.fiberLossDbPerKm ?? 0.21,
      freeSpace: {
        fixedLossDb: fs.fixedLossDb ?? 3, atmLossDbPerKm: fs.atmLossDbPerKm ?? 0.1,
        txApertureM: fs.txApertureM ?? 0.05, rxApertureM: fs.rxApertureM ?? 0.3, divergenceRad: fs.divergenceRad ?? 20e-6,
      },
    },
    etaDet: o.detectorEfficiency ?? 0.045,
    y0: o.darkCountProb ?? 1.7e-6,
    ed: o.misalignment ?? 0.033,
    deadTimeS: o.deadTimeS ?? 100e-9,
    rate: o.sourceRateHz ?? 2e6,
    mu: o.intensities?.signal ?? 0.48,
    nu: o.intensities?.decoy ?? 0.1,
    vac: o.intensities?.vacuum ?? 0,
    pMu: o.intensityProbs?.signal ?? 0.7,
    pNu: o.intensityProbs?.decoy ?? 0.2,
    p0: o.intensityProbs?.vacuum ?? 0.1,
    decoyAnalysis: o.decoyAnalysis ?? true,
    pairProb: o.pairProb ?? 0.1,
    blockBits: o.blockBits ?? 1_000_000,
    durationS: o.durationS,
    maxDurationS: o.maxDurationS ?? 86400,
    sampleFraction: o.sampleFraction ?? 0.1,
    qberThreshold: o.qberThreshold ?? 0.11,
    fEC: o.fEC ?? 1.22,
    passes: o.cascadePasses ?? 4,
    sec: { epsSec: o.epsSec ?? 1e-10, epsCor: o.epsCor ?? 1e-15, finiteKey: o.finiteKey ?? true },
  };
  const bad = (m: string): never => { throw new RangeError(`qkd: ${m}`); };
  if (r.protocol !== 'bb84' && r.protocol !== 'e91') bad(`unknown protocol ${String(r.protocol)}`);
  if (!(r.distanceKm >= 0) || !Number.isFinite(r.distanceKm)) bad(`distanceKm must be ≥ 0 (got ${r.distanceKm})`);
  if (r.eve && !(r.eve.fraction >= 0 && r.eve.fraction <= 1)) bad(`eve fraction must be in [0, 1] (got ${r.eve.fraction})`);
  if (r.eve && r.eve.kind !== 'intercept-resend' && r.eve.kind !== 'pns') bad(`unknown eve kind ${String(r.eve.kind)}`);
  if (r.eve?.kind === 'pns' && r.protocol !== 'bb84') bad('the PNS attack applies to the weak-coherent BB84 source only');
  if (r.vac !== 0) bad('the vacuum intensity must be 0 (vacuum + weak decoy method)');
  if (!(r.mu > r.nu && r.nu > 0)) bad('intensities: need signal > decoy > 0');
  if (Math.abs(r.pMu + r.pNu + r.p0 - 1) > 1e-9 || r.pMu <= 0 || r.pNu <= 0 || r.p0 <= 0) bad('intensityProbs must be > 0 and sum to 1');
  for (const [k, v] of [['detectorEfficiency', r.etaDet], ['darkCountProb', r.y0], ['misalignment', r.ed], ['pairProb', r.pairProb], ['sampleFraction', r.sampleFraction]] as const) {
    if (!(v >= 0 && v <= 1)) bad(`${k} must be in [0, 1] (got ${v})`);
  }
  if (!(r.sampleFraction > 0 && r.sampleFraction < 1)) bad('sampleFraction must be in (0, 1)');
  if (!(r.rate > 0)) bad('sourceRateHz must be > 0');
  if (!(r.blockBits >= 1000)) bad('blockBits must be ≥ 1000');
  if (r.durationS !== undefined && !(r.durationS > 0)) bad('durationS must be > 0');
  return r;
}

const MAX_KEY_BITS = 1 << 25;

function sha256Tag(w: Uint32Array, n: number): string {
  return createHash('sha256').update(toBytes(w, n)).digest('hex');
}

/** Expected BB84 per-class model at the resolved parameters (dead time included). */
function bb84Expected(r: Resolved) {
  const lossDb = channelLossDb(r.ch, r.distanceKm);
  const etaCh = transmittance(lossDb);
  const eta = etaCh * r.etaDet;
  const pns = r.eve?.kind === 'pns' ? pnsStrategy(r.mu, eta, r.etaDet) : undefined;
  const cls = [r.mu, r.nu, 0].map((l) => bb84Class(l, eta, r.etaDet, r.y0, r.ed, r.eve, pns));
  const probs = [r.pMu, r.pNu, r.p0];
  const clickRate = r.rate * cls.reduce((s, c, i) => s + probs[i]! * c.gain, 0);
  const dead = 1 / (1 + clickRate * r.deadTimeS);
  const gains = cls.map((c) => c.gain * dead);
  const errs = cls.map((c) => c.errGain / c.gain);
  return { lossDb, etaCh, gains, errs, probs };
}

function e91Expected(r: Resolved) {
  const lossDb = channelLossDb(r.ch, r.distanceKm);
  const etaCh = transmittance(lossDb);
  const etaA = r.etaDet;
  const etaB = etaCh * r.etaDet;
  const p = r.pairProb;
  const y0 = r.y0;
  const pA = 1 - (1 - y0) * (1 - p * etaA);
  const pB = 1 - (1 - y0) * (1 - p * etaB);
  const deadA = 1 / (1 + r.rate * pA * r.deadTimeS);
  const deadB = 1 / (1 + r.rate * pB * r.deadTimeS);
  const cc = p * (etaA + (1 - etaA) * y0) * (etaB + (1 - etaB) * y0) + (1 - p) * y0 * y0;
  const v = ((1 - 2 * r.ed) * p * etaA * etaB) / cc;
  const x = r.eve?.kind === 'intercept-resend' ? r.eve.fraction : 0;
  return { lossDb, etaCh, coinc: cc * deadA * deadB, visibility: v, x };
}

function acquisition(r: Resolved, keyBitsPerSecond: number): number {
  if (r.durationS !== undefined) return r.durationS;
  if (!(keyBitsPerSecond > 0)) return r.maxDurationS;
  return Math.min(r.maxDurationS, r.blockBits / keyBitsPerSecond);
}

/** Runs the whole pipeline once. */
export function simulateLink(opts: LinkOptions): LinkResult {
  const d = simulateLinkDetailed(opts);
  const out: LinkResult = {
    protocol: d.protocol, distanceKm: d.distanceKm, rawBits: d.rawBits, siftedBits: d.siftedBits, qber: d.qber,
    leakedBits: d.leakedBits, finalBits: d.finalBits, secretKeyRateBps: d.secretKeyRateBps, durationS: d.durationS,
  };
  if (d.qberUpper !== undefined) out.qberUpper = d.qberUpper;
  if (d.chshS !== undefined) out.chshS = d.chshS;
  if (d.f !== undefined) out.f = d.f;
  if (d.abortReason !== undefined) out.abortReason = d.abortReason;
  return out;
}

export function simulateLinkDetailed(opts: LinkOptions): LinkDetail {
  const r = resolve(opts);
  const rng = new Rng(r.seed);
  const t0 = performance.now();
  const timings = { detection: 0, estimation: 0, cascade: 0, verification: 0, privacyAmplification: 0 };

  // ---- transmission, detection, sifting: counts per class / setting pair, then the key-class bits
  let res: LinkDetail;
  let keyErrRate: number;
  let keyBitsSifted: number;
  let decoyCounts: DecoyCounts | undefined;
  if (r.protocol === 'bb84') {
    const m = bb84Expected(r);
    const T = acquisition(r, r.rate * r.pMu * m.gains[0]! * 0.5);
    const pulses = Math.round(r.rate * T);
    const nCls = rng.multinomial(pulses, m.probs);
    const names = ['signal', 'decoy', 'vacuum'];
    const lam = [r.mu, r.nu, 0];
    const classes = nCls.map((n, i) => {
      const det = rng.binomial(n, m.gains[i]!);
      const sifted = rng.binomial(det, 0.5);
      const errors = i === 0 ? 0 : rng.binomial(sifted, m.errs[i]!); // signal-class errors come from the bits
      return { name: names[i]!, intensity: lam[i]!, pulses: n, detections: det, sifted, errors };
    });
    keyBitsSifted = classes[0]!.sifted;
    keyErrRate = m.errs[0]!;
    decoyCounts = {
      mu: r.mu, nu: r.nu, nMu: classes[0]!.pulses, dMu: classes[0]!.detections, nNu: classes[1]!.pulses, dNu: classes[1]!.detections,
      n0: classes[2]!.pulses, d0: classes[2]!.detections, sNu: classes[1]!.sifted, mNu: classes[1]!.errors,
    };
    res = base(r, m.lossDb, m.etaCh, pulses, T);
    res.classes = classes;
    res.rawBits = classes.reduce((s, c) => s + c.detections, 0);
    res.siftedBits = classes.reduce((s, c) => s + c.sifted, 0);
  } else {
    const m = e91Expected(r);
    const T = acquisition(r, r.rate * 0.25 * m.coinc);
    const pulses = Math.round(r.rate * T);
    const combos = rng.multinomial(pulses, new Array(8).fill(1 / 8));
    let raw = 0;
    let key = 0;
    let sVal = 0;
    let sVar = 0;
    for (let ai = 0; ai < 2; ai++) {
      for (let bi = 0; bi < 4; bi++) {
        const c = rng.binomial(combos[ai * 4 + bi]!, m.coinc);
        raw += c;
        const a = E91_ALICE[ai]!;
        const b = E91_BOB[bi]!;
        if (bi === ai) key += c;
        else if (bi >= 2) {
          const eTrue = e91Correlation(a, b, m.visibility, m.x);
          const same = rng.binomial(c, (1 + eTrue) / 2);
          const e = c > 0 ? (2 * same - c) / c : 0;
          // S = E(0,π/4) − E(0,3π/4) + E(π/2,π/4) + E(π/2,3π/4)
          const sign = ai === 0 && bi === 3 ? -1 : 1;
          sVal += sign * e;
          sVar += c > 0 ? (1 - e * e) / c : 1;
        }
      }
    }
    keyBitsSifted = key;
    keyErrRate = (1 + e91Correlation(0, 0, m.visibility, m.x)) / 2;
    res = base(r, m.lossDb, m.etaCh, pulses, T);
    res.rawBits = raw;
    res.siftedBits = key;
    res.chshS = Math.abs(sVal);
    res.chshSigma = Math.sqrt(sVar);
  }
  if (keyBitsSifted > MAX_KEY_BITS) throw new RangeError(`qkd: ${keyBitsSifted} sifted key bits exceed ${MAX_KEY_BITS}: lower durationS or blockBits`);

  // key-class bits: Alice's random key, Bob's = Alice's ⊕ independent errors at the class error rate
  const ns = keyBitsSifted;
  const alice = randomBits(rng, ns);
  const bob = xorInto(bernoulliPattern(rng, ns, keyErrRate), alice);
  timings.detection = performance.now() - t0;

  // ---- parameter estimation: a uniformly random sample of k sifted bits is disclosed and dropped
  const t1 = performance.now();
  const k = Math.round(ns * r.sampleFraction);
  const n = ns - k;
  const keyA = new Uint32Array(words(n));
  const keyB = new Uint32Array(words(n));
  let sampleErr = 0;
  let sel = 0;
  let out = 0;
  for (let i = 0; i < ns; i++) {
    const a = getBit(alice, i);
    const b = getBit(bob, i);
    if (rng.float() * (ns - i) < k - sel) {
      sel++;
      sampleErr += a ^ b;
    } else {
      if (a) setBit(keyA, out, 1);
      if (b) setBit(keyB, out, 1);
      out++;
    }
  }
  res.sampleBits = k;
  res.keyBits = n;
  res.qber = k > 0 ? sampleErr / k : 0;
  const sec = r.sec;
  const useDecoy = r.protocol === 'bb84' && r.decoyAnalysis;
  res.qberUpper = Math.min(0.5, res.qber + (sec.finiteKey ? tomamichelMu(n, k, sec.epsSec) : 0));
  let bounds: DecoyBounds | undefined;
  if (decoyCounts) {
    bounds = decoyBounds(decoyCounts, nSigmaFor(sec));
    const asym = decoyBounds(decoyCounts, 0);
    const qMu = decoyCounts.dMu / decoyCounts.nMu;
    res.asymptoticRatePerSignalPulse = 0.5 * (-qMu * r.fEC * h2(res.qber) + (asym.y1L > 0 ? r.mu * Math.exp(-r.mu) * asym.y1L * (1 - h2(asym.e1U)) : 0));
    res.decoy = { ...bounds, s0: 0, s1: 0 };
  }
  timings.estimation = performance.now() - t1;

  const finish = (reason?: string): LinkDetail => {
    if (reason) {
      res.abortReason = reason;
      res.finalBits = 0;
      res.secretKeyRateBps = 0;
    } else {
      res.secretKeyRateBps = res.finalBits / res.durationS;
    }
    res.timingsMs = timings;
    return res;
  };

  // ---- abort checks before error correction
  if (n < 1000 || k < 100) return finish(`too few sifted bits (${ns}) in ${fmtS(res.durationS)}: the link is too lossy for this acquisition time`);
  if (res.qber > r.qberThreshold) return finish(`QBER ${(100 * res.qber).toFixed(2)} % above the ${(100 * r.qberThreshold).toFixed(1)} % threshold${r.eve?.kind === 'intercept-resend' ? ' (consistent with intercept-resend)' : ''}`);
  if (r.protocol === 'e91' && !(res.chshS! > 2)) return finish(`CHSH S = ${res.chshS!.toFixed(3)} ≤ 2: no Bell violation, the source cannot be trusted`);
  if (useDecoy && bounds) {
    const expected = r.nu / r.mu;
    if (gainRatioViolated(bounds, r.mu, r.nu, nSigmaFor(sec))) {
      return finish(`decoy-state analysis: decoy/signal gain ratio ${bounds.ratio.toFixed(3)} < ν/μ = ${expected.toFixed(3)} expected from any passive lossy channel (Y1^L = ${bounds.y1L.toExponential(2)}): photon-number-splitting attack suspected`);
    }
    if (!(bounds.y1L > 0)) return finish(`decoy-state analysis: single-photon yield lower bound Y1^L = ${bounds.y1L.toExponential(2)} ≤ 0 (dark counts dominate: link too lossy)`);
  }

  // ---- error correction: Cascade on the real keys
  const t2 = performance.now();
  const cas = cascade(keyA, keyB, n, { qber: Math.max(res.qber, 1e-3), seed: (rng.u32() ^ 0x5ca5ade) >>> 0, passes: r.passes });
  timings.cascade = performance.now() - t2;
  res.leakedBits = cas.leakedBits;
  res.errorsCorrected = cas.flips;
  const eActual = cas.flips / n;
  res.f = eActual > 0 ? cas.leakedBits / (n * h2(eActual)) : undefined;

  // ---- verification: SHA-256 of both corrected keys compared (64-bit tag disclosed; ε_cor ≈ 2^-64)
  const t3 = performance.now();
  res.residualErrors = hamming(keyA, cas.corrected);
  res.verified = sha256Tag(keyA, n).slice(0, 16) === sha256Tag(cas.corrected, n).slice(0, 16);
  timings.verification = performance.now() - t3;
  if (!res.verified) return finish(`verification failed: the keys differ after Cascade (${res.residualErrors} residual errors)`);

  // ---- key length (finite key) and privacy amplification
  let length: number;
  if (useDecoy && bounds) {
    const kl = keyLengthDecoy(n, r.mu, bounds, res.leakedBits, sec);
    res.decoy = { ...bounds, s0: kl.s0, s1: kl.s1 };
    length = kl.length;
  } else {
    length = keyLengthSinglePhoton(n, k, res.qber, res.leakedBits, sec).length;
  }
  if (length <= 0) return finish(`no secret key: key length ≤ 0 after ${sec.finiteKey ? 'finite-key' : 'asymptotic'} bounds (${n} key bits, ${res.leakedBits} leaked${bounds ? `, e1^U = ${(100 * bounds.e1U).toFixed(1)} %` : ''})`);
  const t4 = performance.now();
  const seed = randomBits(rng, n + length - 1);
  const finalKey = toeplitzHash(keyA, n, seed, length);
  timings.privacyAmplification = performance.now() - t4;
  res.finalBits = length;
  res.finalKeySha256 = sha256Tag(finalKey, length);
  return finish();
}

function base(r: Resolved, lossDb: number, etaCh: number, pulses: number, T: number): LinkDetail {
  return {
    protocol: r.protocol, distanceKm: r.distanceKm, rawBits: 0, siftedBits: 0, qber: 0, leakedBits: 0, finalBits: 0,
    secretKeyRateBps: 0, durationS: T, lossDb, transmittance: etaCh, pulses, sampleBits: 0, keyBits: 0,
    errorsCorrected: 0, residualErrors: 0, verified: false,
    timingsMs: { detection: 0, estimation: 0, cascade: 0, verification: 0, privacyAmplification: 0 },
  };
}

function fmtS(s: number): string {
  return s >= 1 ? `${s.toPrecision(3)} s` : `${(s * 1000).toPrecision(3)} ms`;
}

/**
 * Cheap expected key rate (no sampling, no bits): the same model and bounds on expected counts, with the
 * error-correction leakage taken as fEC·n·h(E). For filling key pools.
 */
export function keyRateForLink(opts: LinkOptions): { secretKeyRateBps: number; qber: number; abortReason?: string } {
  const r = resolve(opts);
  const sec = r.sec;
  if (r.protocol === 'bb84') {
    const m = bb84Expected(r);
    const T = acquisition(r, r.rate * r.pMu * m.gains[0]! * 0.5);
    const N = r.rate * T;
    const nc = m.probs.map((p) => p * N);
    const det = nc.map((x, i) => x * m.gains[i]!);
    const qber = m.errs[0]!;
    const ns = det[0]! / 2;
    const k = Math.round(ns * r.sampleFraction);
    const n = ns - k;
    if (n < 1000) return { secretKeyRateBps: 0, qber, abortReason: 'too few sifted bits: the link is too lossy for this acquisition time' };
    if (qber > r.qberThreshold) return { secretKeyRateBps: 0, qber, abortReason: `QBER ${(100 * qber).toFixed(2)} % above the ${(100 * r.qberThreshold).toFixed(1)} % threshold` };
    const leak = (opts.fEC ?? cascadeEfficiency(qber)) * n * h2(qber);
    let length: number;
    if (r.decoyAnalysis) {
      const b = decoyBounds({ mu: r.mu, nu: r.nu, nMu: nc[0]!, dMu: det[0]!, nNu: nc[1]!, dNu: det[1]!, n0: nc[2]!, d0: det[2]!, sNu: det[1]! / 2, mNu: (det[1]! / 2) * m.errs[1]! }, nSigmaFor(sec));
      if (gainRatioViolated(b, r.mu, r.nu, nSigmaFor(sec))) return { secretKeyRateBps: 0, qber, abortReason: 'decoy-state analysis: decoy/signal gain ratio below ν/μ: photon-number-splitting attack suspected' };
      if (!(b.y1L > 0)) return { secretKeyRateBps: 0, qber, abortReason: 'decoy-state analysis: single-photon yield lower bound ≤ 0' };
      length = keyLengthDecoy(n, r.mu, b, leak, sec).length;
    } else {
      length = keyLengthSinglePhoton(n, k, qber, leak, sec).length;
    }
    if (length <= 0) return { secretKeyRateBps: 0, qber, abortReason: 'no secret key: key length ≤ 0' };
    return { secretKeyRateBps: length / T, qber };
  }
  const m = e91Expected(r);
  const T = acquisition(r, r.rate * 0.25 * m.coinc);
  const ns = r.rate * T * 0.25 * m.coinc;
  const qber = (1 + e91Correlation(0, 0, m.visibility, m.x)) / 2;
  const s = 2 * Math.SQRT2 * m.visibility * (1 - m.x / 2);
  const k = Math.round(ns * r.sampleFraction);
  const n = ns - k;
  if (n < 1000) return { secretKeyRateBps: 0, qber, abortReason: 'too few sifted bits: the link is too lossy for this acquisition time' };
  if (qber > r.qberThreshold) return { secretKeyRateBps: 0, qber, abortReason: `QBER ${(100 * qber).toFixed(2)} % above the ${(100 * r.qberThreshold).toFixed(1)} % threshold` };
  if (!(s > 2)) return { secretKeyRateBps: 0, qber, abortReason: `CHSH S = ${s.toFixed(3)} ≤ 2` };
  const length = keyLengthSinglePhoton(n, k, qber, (opts.fEC ?? cascadeEfficiency(qber)) * n * h2(qber), sec).length;
  if (length <= 0) return { secretKeyRateBps: 0, qber, abortReason: 'no secret key: key length ≤ 0' };
  return { secretKeyRateBps: length / T, qber };
}
