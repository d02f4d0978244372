// Physics of the link and the security bounds. Pure functions of parameters and counts: the simulator
// (simulate.ts) feeds them sampled counts, keyRateForLink feeds them expected counts.
// Formulas and citations: controller/qkd/README.md.

/** Binary entropy h(p) in bits (h(0) = h(1) = 0). */
export function h2(p: number): number {
  if (p <= 0 || p >= 1) return 0;
  return -p * Math.log2(p) - (1 - p) * Math.log2(1 - p);
}

export interface ChannelParams {
  channel: 'fiber' | 'free-space';
  fiberLossDbPerKm: number;
  freeSpace: { fixedLossDb: number; atmLossDbPerKm: number; txApertureM: number; rxApertureM: number; divergenceRad: number };
}

/** Channel loss in dB over distanceKm (fiber: α·L; free space: fixed + atmospheric·L + geometric). */
export function channelLossDb(p: ChannelParams, distanceKm: number): number {
  if (p.channel === 'fiber') return p.fiberLossDbPerKm * distanceKm;
  const fs = p.freeSpace;
  const beam = fs.txApertureM + fs.divergenceRad * distanceKm * 1000;
  const geo = Math.min(1, (fs.rxApertureM / beam) ** 2);
  return fs.fixedLossDb + fs.atmLossDbPerKm * distanceKm - 10 * Math.log10(geo);
}

export function transmittance(lossDb: number): number {
  return Math.pow(10, -lossDb / 10);
}

// ---------------------------------------------------------------------------------------------- BB84 source

export interface Bb84ClassModel {
  /** Detection probability per pulse (gain Q_λ), before dead time. */
  gain: number;
  /** Error probability per pulse (E_λ·Q_λ), before dead time. */
  errGain: number;
}

export interface EveModel { kind: 'intercept-resend' | 'pns'; fraction: number }

/**
 * PNS strategy for a Poisson source of mean mu sent through transmittance eta·etaDet: Eve blocks single photons,
 * keeps one photon of every multi-photon pulse and forwards the rest over a lossless line, scaling what she
 * forwards so that Bob's signal gain equals the one he expects from the channel (Brassard, Lütkenhaus, Mor,
 * Sanders, PRL 85, 1330 (2000)). Returns the forwarding probabilities (multi-photon, single-photon).
 */
export function pnsStrategy(mu: number, eta: number, etaDet: number): { fMulti: number; fSingle: number } {
  const target = 1 - Math.exp(-eta * mu);
  const gm = pnsMultiYield(mu, etaDet);
  const gs = mu * Math.exp(-mu) * etaDet;
  if (gm >= target) return { fMulti: target / gm, fSingle: 0 };
  return { fMulti: 1, fSingle: Math.min(1, (target - gm) / gs) };
}

/** Σ_{k≥2} P_λ(k)·[1 − (1 − ηdet)^{k−1}]: Bob's photon-click probability when Eve forwards k−1 photons losslessly. */
export function pnsMultiYield(lambda: number, etaDet: number): number {
  const e = Math.exp(-lambda);
  const pMulti = 1 - e - lambda * e;
  const t = 1 - etaDet;
  // Σ_{k≥1} P(k) t^{k−1} = e^{−λ}(e^{λt} − 1)/t ; minus the k = 1 term λe^{−λ}
  const s = t > 0 ? (e * (Math.exp(lambda * t) - 1)) / t - lambda * e : 0;
  return pMulti - s;
}

/**
 * Gain and error gain of one intensity class.
 *   photon click: P_ph = 1 − e^{−ηλ} (η = η_ch·η_det); click Q = 1 − (1 − Y0)(1 − P_ph);
 *   errors: e_d on photon clicks, 1/2 on dark-only clicks.
 * Intercept-resend (fraction x of pulses): Eve measures in a random basis and resends, keeping Bob's click
 *   statistics; errors on her pulses' photon clicks are 1/4 + e_d/2.
 * PNS (fraction x of pulses): photon clicks from pnsStrategy; states untouched (errors e_d).
 */
export function bb84Class(lambda: number, eta: number, etaDet: number, y0: number, ed: number, eve: EveModel | undefined, pns?: { fMulti: number; fSingle: number }): Bb84ClassModel {
  const honest = 1 - Math.exp(-eta * lambda);
  let pPh = honest;
  let errPh = ed * honest;
  if (eve && eve.fraction > 0) {
    const x = eve.fraction;
    if (eve.kind === 'intercept-resend') {
      errPh = honest * ((1 - x) * ed + x * (0.25 + 0.5 * ed));
    } else {
      const s = pns ?? pnsStrategy(lambda, eta, etaDet);
      const attacked = s.fMulti * pnsMultiYield(lambda, etaDet) + s.fSingle * lambda * Math.exp(-lambda) * etaDet;
      pPh = (1 - x) * honest + x * attacked;
      errPh = ed * pPh;
    }
  }
  const gain = 1 - (1 - y0) * (1 - pPh);
  const errGain = errPh + 0.5 * y0 * (1 - pPh);
  return { gain, errGain };
}

// ------------------------------------------------------------------------------------- decoy-state estimation

export interface DecoyCounts {
  mu: number; nu: number;
  /** pulses sent / detections per class (signal μ, decoy ν, vacuum) */
  nMu: number; dMu: number;
  nNu: number; dNu: number;
  n0: number; d0: number;
  /** sifted detections and errors among them for the decoy class */
  sNu: number; mNu: number;
}

export interface DecoyBounds {
  y0L: number; y0U: number; y1L: number; e1U: number; qMuU: number;
  /** Dark-count-corrected decoy/signal gain ratio r = (Q_ν − Y0)/(Q_μ − Y0) and its relative standard deviation. */
  ratio: number; ratioSigmaRel: number;
}

/**
 * Vacuum + weak decoy estimators (Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005), Eqs. (34), (37)) on counts
 * bounded by nSigma standard deviations (their Sec. V: Q^{L,U} = Q(1 ∓ n_α/√(N·Q))):
 *   Y1^L = μ/(μν − ν²)·(Q_ν^L e^ν − Q_μ^U e^μ ν²/μ² − (μ² − ν²)/μ²·Y0^U)
 *   e1^U = (E_νQ_ν)^U e^ν − Y0^L/2) / (Y1^L·ν)
 */
export function decoyBounds(c: DecoyCounts, nSigma: number): DecoyBounds {
  const up = (x: number) => x + nSigma * Math.sqrt(Math.max(x, 0));
  const lo = (x: number) => Math.max(0, x - nSigma * Math.sqrt(Math.max(x, 0)));
  const { mu, nu } = c;
  const qMuU = up(c.dMu) / c.nMu;
  const qNuL = lo(c.dNu) / c.nNu;
  const qNuU = up(c.dNu) / c.nNu;
  const y0U = c.n0 > 0 ? up(c.d0) / c.n0 : 0;
  const y0L = c.n0 > 0 ? lo(c.d0) / c.n0 : 0;
  const y1L = (mu / (mu * nu - nu * nu)) * (qNuL * Math.exp(nu) - qMuU * Math.exp(mu) * (nu * nu) / (mu * mu) - ((mu * mu - nu * nu) / (mu * mu)) * y0U);
  const eqNuU = c.sNu > 0 ? (up(c.mNu) / c.sNu) * qNuU : 0;
  const e1U = y1L > 0 ? Math.min(0.5, Math.max(0, (eqNuU * Math.exp(nu) - 0.5 * y0L) / (y1L * nu))) : 0.5;
  const qMu = c.dMu / c.nMu;
  const qNu = c.dNu / c.nNu;
  const y0 = c.n0 > 0 ? c.d0 / c.n0 : 0;
  const ratio = qMu - y0 > 0 ? (qNu - y0) / (qMu - y0) : 0;
  const ratioSigmaRel = c.dNu > 0 && c.dMu > 0 ? Math.sqrt(1 / c.dNu + 1 / c.dMu) : 1;
  return { y0L, y0U, y1L, e1U, qMuU, ratio, ratioSigmaRel };
}

/**
 * Gain-ratio consistency check of the decoy analysis: any passive lossy channel (transmittance η, photon-number
 * independent) gives r = (1 − e^{−ην})/(1 − e^{−ημ}) ≥ ν/μ. A PNS attacker who keeps the signal gain while
 * suppressing single photons drives r well below ν/μ, since a weak decoy carries far fewer multi-photon pulses
 * (Hwang, PRL 91, 057901 (2003); Lo, Ma, Chen 2005). Flags r < (ν/μ)(1 − k·σ_rel), k = max(n_α, 3).
 */
export function gainRatioViolated(b: DecoyBounds, mu: number, nu: number, nSigma: number): boolean {
  return b.ratio < (nu / mu) * (1 - Math.max(nSigma, 3) * b.ratioSigmaRel);
}

/**
 * Error-correction efficiency of this Cascade (k1 = 0.73/Q, 4 passes) measured on 2·10^5 – 10^6-bit blocks
 * (controller/test/qkd-sim.test.ts, controller/bench/cascade.ts): f ≈ 1.11 + 1.2·Q for Q ≤ 0.11.
 */
export function cascadeEfficiency(q: number): number {
  return 1.11 + 1.2 * q;
}

// ------------------------------------------------------------------------------------------- finite key

export interface SecurityParams { epsSec: number; epsCor: number; finiteKey: boolean }

/** n_α for the count fluctuations: the Gaussian/Chernoff tail e^{−n_α²/2} = ε_sec. */
export function nSigmaFor(p: SecurityParams): number {
  return p.finiteKey ? Math.sqrt(2 * Math.log(1 / p.epsSec)) : 0;
}

/**
 * Tomamichel, Lim, Gisin, Renner, Nat. Commun. 3, 634 (2012), Eq. (2) (BB84 / entanglement-based, single photons):
 *   ℓ = n·(1 − h(Q + μ)) − leak_EC − log2(2/(ε_sec²·ε_cor)),  μ = √((n + k)/(n·k) · (k + 1)/k · ln(2/ε_sec))
 * (n key bits, k sampled bits, Q the sample's error rate). Asymptotic: μ = 0, no log term.
 */
export function tomamichelMu(n: number, k: number, epsSec: number): number {
  if (n <= 0 || k <= 0) return 0.5;
  return Math.sqrt(((n + k) / (n * k)) * ((k + 1) / k) * Math.log(2 / epsSec));
}

export function keyLengthSinglePhoton(n: number, k: number, qSample: number, leak: number, p: SecurityParams): { length: number; qUpper: number } {
  const mu = p.finiteKey ? tomamichelMu(n, k, p.epsSec) : 0;
  const qUpper = Math.min(0.5, qSample + mu);
  const penalty = p.finiteKey ? Math.log2(2 / (p.epsSec * p.epsSec * p.epsCor)) : 0;
  return { length: Math.floor(n * (1 - h2(qUpper)) - leak - penalty), qUpper };
}

/**
 * Decoy-state BB84 key length (structure of Lim, Curty, Walenta, Xu, Zbinden, PRA 89, 022307 (2014), Eq. (1);
 * simplified: single-photon and vacuum contributions from the Ma et al. estimators above):
 *   ℓ = s0 + s1·(1 − h(e1^U)) − leak_EC − 6·log2(21/ε_sec) − log2(2/ε_cor)
 *   s1 = n·μe^{−μ}·Y1^L / Q_μ^U,  s0 = n·e^{−μ}·Y0^L / Q_μ^U   (n = signal-class key bits)
 */
export function keyLengthDecoy(n: number, mu: number, b: DecoyBounds, leak: number, p: SecurityParams): { length: number; s0: number; s1: number } {
  const s1 = b.y1L > 0 ? (n * mu * Math.exp(-mu) * b.y1L) / b.qMuU : 0;
  const s0 = (n * Math.exp(-mu) * b.y0L) / b.qMuU;
  const penalty = p.finiteKey ? 6 * Math.log2(21 / p.epsSec) + Math.log2(2 / p.epsCor) : 0;
  return { length: Math.floor(s0 + s1 * (1 - h2(b.e1U)) - leak - penalty), s0, s1 };
}

// ------------------------------------------------------------------------------------------------ E91

/** Bloch-sphere measurement angles (x–z plane): Alice {0, π/2}; Bob {0, π/2} (key) and {π/4, 3π/4} (CHSH). */
export const E91_ALICE = [0, Math.PI / 2] as const;
export const E91_BOB = [0, Math.PI / 2, Math.PI / 4, (3 * Math.PI) / 4] as const;

/**
 * Singlet correlation with visibility V and intercept-resend on a fraction x of Bob's photons (Eve measures in
 * Z or X at random and resends): E(a, b) = −V·(1 − x/2)·cos(a − b).
 */
export function e91Correlation(a: number, b: number, v: number, x: number): number {
  return -v * (1 - x / 2) * Math.cos(a - b);
}
