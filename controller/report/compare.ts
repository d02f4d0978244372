// Two runs side by side: per figure metric and per (suite, board, profile), the medians of run A and run B, their
// ratio, and a two-sided Mann-Whitney U test on the raw per-operation values (no normality assumed; timings are
// skewed). p-values are Holm-adjusted across all rows of the comparison, so "significant" holds for the family.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../model.js';
import { opColumns, type OpColumns } from './paper.js';
import { fmtNum } from './claims.js';
import { mannWhitneyU, summarize } from './stats.js';
import { barChart, escapeXml as esc } from './svg.js';

export const COMPARE_METRICS: { id: string; label: string; unit: string; pick: (c: OpColumns) => number[] }[] = [
  { id: 'keygen_ms', label: 'key generation (Figure 2)', unit: 'ms', pick: (c) => c.keygenMs },
  { id: 'hs_ms', label: 'handshake time (CDFs)', unit: 'ms', pick: (c) => c.hsMs },
  { id: 'ram_pct', label: 'RAM (Figure 3)', unit: '%', pick: (c) => c.ramPct },
  { id: 'cpu_pct', label: 'CPU busy (Figure 3)', unit: '%', pick: (c) => c.cpuPct },
  { id: 'throughput_kbps', label: 'record throughput (Figure 5)', unit: 'kbit/s', pick: (c) => c.throughputKbps },
  { id: 'rtt_ms', label: 'record round trip (Figure 5)', unit: 'ms', pick: (c) => c.rttMs },
];

export interface CompareRow {
  metric: string; unit: string; suite: string; board: string; profile: string;
  nA: number; nB: number; medianA: number; medianB: number; ratio: number;
  u: number; p: number; pHolm: number; effect: number; method: string; significant: boolean;
}

/** Holm–Bonferroni step-down adjustment (monotone). */
export function holm(ps: number[]): number[] {
  const idx = ps.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(ps.length);
  let running = 0;
  idx.forEach(([p, i], k) => {
    running = Math.max(running, Math.min(1, (ps.length - k) * p));
    out[i] = running;
  });
  return out;
}

export function compareRuns(store: Store, runA: string, runB: string, alpha = 0.05): CompareRow[] {
  const a = opColumns(store.getOps(runA));
  const b = opColumns(store.getOps(runB));
  const rows: Omit<CompareRow, 'pHolm' | 'significant'>[] = [];
  for (const k of [...a.keys()].filter((k) => b.has(k)).sort()) {
    const ca = a.get(k)!;
    const cb = b.get(k)!;
    for (const m of COMPARE_METRICS) {
      const va = m.pick(ca);
      const vb = m.pick(cb);
      if (va.length < 2 || vb.length < 2) continue;
      const sa = summarize(va);
      const sb = summarize(vb);
      const t = mannWhitneyU(va, vb);
      rows.push({ metric: m.id, unit: m.unit, suite: ca.suite, board: ca.board, profile: ca.profile, nA: sa.n, nB: sb.n, medianA: sa.median, medianB: sb.median,
        ratio: sa.median ? sb.median / sa.median : NaN, u: t.u, p: t.p, effect: t.effect, method: t.method });
    }
  }
  const adj = holm(rows.map((r) => r.p));
  return rows.map((r, i) => ({ ...r, pHolm: adj[i]!, significant: adj[i]! < alpha }));
}

const fmtP = (p: number) => (p < 1e-4 ? p.toExponential(1) : p.toFixed(4));

export interface WrittenCompare { dir: string; html: string; markdown: string; csv: string; rows: number; significant: number }

export function writeCompare(store: Store, runA: string, runB: string, outRoot: string): WrittenCompare {
  for (const r of [runA, runB]) if (!store.getRun(r)) throw new Error(`no run "${r}" in the store`);
  const rows = compareRuns(store, runA, runB);
  const dir = join(outRoot, `compare-${runA}-vs-${runB}`);
  mkdirSync(dir, { recursive: true });
  const head = ['metric', 'suite', 'board', 'profile', 'n A', 'n B', 'median A', 'median B', 'B ÷ A', 'U', 'p', 'p (Holm)', 'effect (rank-biserial)', 'significant'];
  const cells = (r: CompareRow) => [r.metric, r.suite, r.board, r.profile, String(r.nA), String(r.nB), `${fmtNum(r.medianA)} ${r.unit}`, `${fmtNum(r.medianB)} ${r.unit}`,
    Number.isFinite(r.ratio) ? r.ratio.toFixed(3) : '–', fmtNum(r.u), fmtP(r.p), fmtP(r.pHolm), r.effect.toFixed(3), r.significant ? 'yes' : 'no'];
  const intro = `Run A ${runA} against run B ${runB}: per metric and per (suite, board, profile) present in both runs, the two-sided Mann-Whitney U test on the per-operation values; ` +
    `p-values Holm-adjusted over the ${rows.length} rows; "significant" at α = 0.05 after adjustment. Effect: rank-biserial correlation (positive: A tends to be larger).`;
  const charts = COMPARE_METRICS.map((m) => {
    const rs = rows.filter((r) => r.metric === m.id);
    if (!rs.length) return '';
    return barChart({ id: `cmp-${m.id}`, title: `${m.label}: A vs B`, yLabel: m.label, yUnit: m.unit, log: m.id !== 'cpu_pct',
      groups: rs.map((r) => ({ label: `${r.suite} · ${r.board} · ${r.profile}${r.significant ? ' *' : ''}`, bars: [{ series: 'A', value: r.medianA, n: r.nA }, { series: 'B', value: r.medianB, n: r.nB }] })) });
  }).filter(Boolean);
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(`qslab comparison ${runA} vs ${runB}`)}</title><style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#eef}
tr.sig td{background:#fff4d6}svg{max-width:100%;height:auto}</style></head><body><h1>${esc(`Comparison: ${runA} vs ${runB}`)}</h1><p>${esc(intro)}</p>
<table id="compare"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr${r.significant ? ' class="sig"' : ''}>${cells(r).map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>
${charts.map((c) => `<figure>${c}</figure>`).join('\n')}</body></html>\n`;
  const md = [`# Comparison: ${runA} vs ${runB}`, '', intro, '', `| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cells(r).join(' | ')} |`), ''].join('\n');
  const csvHead = ['metric', 'unit', 'suite', 'board', 'profile', 'n_a', 'n_b', 'median_a', 'median_b', 'ratio_b_a', 'u', 'p', 'p_holm', 'effect', 'method', 'significant'];
  const csv = `${csvHead.join(',')}\n${rows.map((r) => [r.metric, r.unit, r.suite, r.board, r.profile, r.nA, r.nB, r.medianA, r.medianB, r.ratio, r.u, r.p, r.pHolm, r.effect, r.method, r.significant]
    .map((v) => (typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v))).join(',')).join('\n')}\n`;
  const out = { dir, html: join(dir, 'compare.html'), markdown: join(dir, 'compare.md'), csv: join(dir, 'compare.csv'), rows: rows.length, significant: rows.filter((r) => r.significant).length };
  writeFileSync(out.html, html);
  writeFileSync(out.markdown, md);
  writeFileSync(out.csv, csv);
  return out;
}
