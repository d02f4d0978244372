// The seed paper's claims measured on one run: for every claim of fixtures/paper-claims.yaml, the run's values of
// its metric (filtered by suite, board and network profile), their spread, and the judgement (reproduced / not
// reproduced / not measured, with the reason). One pass over the operations builds per-(suite, board, profile)
// columns of plain numbers, so a million op records stay cheap.
import type { EnergyWindow, OpRecord } from '../model.js';
import { boardRam } from '../rig/strategy.js';
import { judgeClaim, type Claim, type Judgement, type Measured, type Metric } from './claims.js';
import { meanCI95, summarize } from './stats.js';

/** Per (suite, board, profile): the columns the claims' metrics are made from (ok operations unless said). */
export interface OpColumns {
  suite: string; board: string; profile: string;
  nodes: Set<string>;
  attempted: number;
  ok: number;
  keygenMs: number[];
  hsMs: number[];
  ramPct: number[];
  cpuPct: number[];
  throughputKbps: number[];
  rttMs: number[];
  recordExchanges: number;
  decryptFailures: number;
  keyIds: Map<string, number>;
}

const colKey = (suite: string, board: string, profile: string) => `${suite}\u0000${board}\u0000${profile}`;

export function opColumns(ops: Iterable<OpRecord>): Map<string, OpColumns> {
  const cols = new Map<string, OpColumns>();
  for (const o of ops) {
    const k = colKey(o.suite, o.board, o.profile);
    let c = cols.get(k);
    if (!c) {
      c = { suite: o.suite, board: o.board, profile: o.profile, nodes: new Set(), attempted: 0, ok: 0, keygenMs: [], hsMs: [], ramPct: [], cpuPct: [],
        throughputKbps: [], rttMs: [], recordExchanges: 0, decryptFailures: 0, keyIds: new Map() };
      cols.set(k, c);
    }
    c.nodes.add(o.node);
    c.attempted++;
    if (o.err === 'E_RECORD') c.decryptFailures++;
    for (const id of o.keyIds ?? []) c.keyIds.set(id, (c.keyIds.get(id) ?? 0) + 1);
    if (!o.ok) continue;
    c.ok++;
    const t = o.t;
    if (t.keygen !== undefined) c.keygenMs.push(t.keygen / 1000);
    if (t.hs !== undefined) c.hsMs.push(t.hs / 1000);
    const ram = boardRam(o.board);
    if (ram) c.ramPct.push(((o.heap + o.stack) / ram) * 100);
    c.cpuPct.push(o.cpu);
    if (o.recs > 0 && t.rec !== undefined && t.rec > 0) {
      c.throughputKbps.push(((o.recTx + o.recRx) * 8 * 1000) / t.rec);
      c.rttMs.push(t.rec / o.recs / 1000);
    }
    c.recordExchanges += o.recs;
  }
  return cols;
}

/** What a metric is, in the report's words (how qslab measures the paper's column). */
export const METRIC_DEFINITION: Record<Metric, string> = {
  ram_pct: 'peak heap + stack high-water of the node during the operation, % of the board\'s RAM',
  cpu_pct: 'CPU busy % of the node\'s workload task over the operation',
  enc_latency_ms: 'handshake time on the node (connect to Finished), ms',
  battery_pct_per_100: 'measured energy of 100 operations, % of the rig\'s battery (capacity × nominal V × regulator efficiency)',
  throughput_kbps: 'record phase: plaintext bytes sent + echoed × 8 ÷ record phase time, kbit/s',
  packet_loss_pct: 'realized loss on the impaired link per cell (segments lost ÷ segments, both directions), %',
  rtt_ms: 'record round trip: record phase time ÷ records (encrypt, send, server decrypt + echo, decrypt), ms',
  keygen_ms: 'the node\'s key generation step of the handshake (ephemeral key pair; RSA: the premaster secret), ms',
  success_pct: 'successful handshakes ÷ attempted, % (95 % Wilson interval)',
  record_exchanges: 'record exchanges (record sent and its echo verified) in successful operations',
  key_reuse: 'QKD key ids used by more than one operation',
  decrypt_failures: 'operations that failed with E_RECORD (a record or its echo failed authentication)',
};

/** Wilson score interval for a proportion (95 %). */
export function wilson(k: number, n: number): { low: number; high: number } {
  if (!n) return { low: NaN, high: NaN };
  const z = 1.959963984540054;
  const p = k / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return { low: Math.max(0, c - h), high: Math.min(1, c + h) };
}

function fromValues(values: number[]): Measured | null {
  const s = summarize(values);
  if (!s.n) return null;
  const ci = meanCI95(values);
  return { n: s.n, median: s.median, p5: s.p5, p95: s.p95, mean: s.mean, ...(Number.isFinite(ci.low) ? { ciLow: ci.low, ciHigh: ci.high } : {}) };
}

export interface ClaimResult {
  claim: Claim;
  measured: Measured | null;
  judgement: Judgement;
  /** Which data the value came from (suite, board, nodes, profile, metric definition). */
  source: string;
}

/** Realized loss of one cell's impaired link (from the store's net figures). */
export interface NetCell { cellId: string; suite: string; board: string; profile: string; lossPct: number }

/** A burst whose energy could not be measured (the runner's energy-error event). */
export interface EnergyError { cellId: string; suite: string; board: string; profile: string; detail: string }

export interface PaperInput {
  ops: Iterable<OpRecord>;
  energy: EnergyWindow[];
  net: NetCell[];
  energyErrors?: EnergyError[];
}

export function measureClaims(claims: Claim[], input: PaperInput, cols = opColumns(input.ops)): ClaimResult[] {
  return claims.map((claim) => {
    if (claim.kind === 'mark' || !claim.measure) {
      const reason = claim.not_measured_reason ?? 'qslab has no measurement for this claim';
      return { claim, measured: null, judgement: judgeClaim(claim, null, reason), source: '' };
    }
    const m = claim.measure;
    const match = [...cols.values()].filter((c) => m.suites.includes(c.suite as never) && c.board === m.board && (!m.profile || c.profile === m.profile));
    const where = `${m.suites.join(' + ')} on ${m.board}${m.profile ? ` over ${m.profile}` : ''}`;
    const nodes = [...new Set(match.flatMap((c) => [...c.nodes]))].sort();
    const source = `${where}${nodes.length ? ` (nodes ${nodes.join(', ')})` : ''}: ${METRIC_DEFINITION[m.metric]}`;
    const none = `the run has no ${m.metric === 'success_pct' ? '' : 'successful '}operations of ${where} (run fixtures/campaigns/paper-tables.yaml)`;
    let measured: Measured | null = null;
    let reason = none;
    const cat = (f: (c: OpColumns) => number[]) => match.flatMap(f);
    switch (m.metric) {
      case 'keygen_ms': measured = fromValues(cat((c) => c.keygenMs)); break;
      case 'enc_latency_ms': measured = fromValues(cat((c) => c.hsMs)); break;
      case 'ram_pct': measured = fromValues(cat((c) => c.ramPct)); break;
      case 'cpu_pct': measured = fromValues(cat((c) => c.cpuPct)); break;
      case 'throughput_kbps': measured = fromValues(cat((c) => c.throughputKbps)); break;
      case 'rtt_ms': measured = fromValues(cat((c) => c.rttMs)); break;
      case 'success_pct': {
        const n = match.reduce((a, c) => a + c.attempted, 0);
        const k = match.reduce((a, c) => a + c.ok, 0);
        if (n) {
          const w = wilson(k, n);
          const p = (100 * k) / n;
          measured = { n, median: p, p5: 100 * w.low, p95: 100 * w.high, mean: p, ciLow: 100 * w.low, ciHigh: 100 * w.high };
        }
        break;
      }
      case 'record_exchanges': {
        const n = match.reduce((a, c) => a + c.ok, 0);
        const total = match.reduce((a, c) => a + c.recordExchanges, 0);
        if (n) measured = { n, median: total / n, p5: NaN, p95: NaN, mean: total / n };
        break;
      }
      case 'decrypt_failures': {
        const n = match.reduce((a, c) => a + c.attempted, 0);
        const f = match.reduce((a, c) => a + c.decryptFailures, 0);
        if (n) measured = { n, median: f / n, p5: NaN, p95: NaN, mean: f / n };
        break;
      }
      case 'key_reuse': {
        const ids = new Map<string, number>();
        for (const c of match) for (const [id, k] of c.keyIds) ids.set(id, (ids.get(id) ?? 0) + k);
        const reused = [...ids.values()].filter((k) => k > 1).length;
        if (ids.size) measured = { n: ids.size, median: reused / ids.size, p5: NaN, p95: NaN, mean: reused / ids.size };
        else if (match.length) reason = `the operations of ${where} used no QKD keys`;
        break;
      }
      case 'battery_pct_per_100': {
        const ws = input.energy.filter((w) => m.suites.includes(w.suite as never) && w.board === m.board && (!m.profile || w.profile === m.profile));
        const vals = ws.map((w) => w.drainPct100).filter((v): v is number => v !== undefined && Number.isFinite(v));
        measured = fromValues(vals);
        const errs = (input.energyErrors ?? []).filter((x) => m.suites.includes(x.suite as never) && x.board === m.board && (!m.profile || x.profile === m.profile));
        if (!measured && match.length) {
          reason = ws.length ? `the energy windows of ${where} have no battery drain (no battery: in the rig file)`
            : errs.length ? `the energy of ${where} was not measured: ${errs.map((x) => `${x.cellId}: ${x.detail}`).join('; ')}`
              : `no energy window of ${where}: the node needs a meter in the rig file and the campaign a power: block`;
        }
        break;
      }
      case 'packet_loss_pct': {
        const rows = input.net.filter((r) => m.suites.includes(r.suite as never) && (!m.profile || r.profile === m.profile) && r.board === m.board);
        measured = fromValues(rows.map((r) => r.lossPct));
        if (!measured && match.length) reason = `no realized network figures for ${where}: loss is measured on an impaired link (a profile other than loopback)`;
        break;
      }
    }
    return { claim, measured, judgement: judgeClaim(claim, measured, measured ? undefined : reason), source };
  });
}
