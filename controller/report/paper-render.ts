// The seed paper's Tables 1-4, headline claims and Figures 2-5 as measured on one run: HTML (inline SVG figures),
// Markdown (figures as SVG files beside it) and one CSV per table. Pure functions of their input: the same store
// gives the same bytes.
import type { EnergyStats } from './report.js';
import type { ClaimResult, OpColumns } from './paper.js';
import { METRIC_DEFINITION } from './paper.js';
import { fmtNum, type Claim, type TableRef } from './claims.js';
import { summarize } from './stats.js';
import { barChart, escapeXml as esc, cdfChart, lineChart, type BarGroup, type LineSeries } from './svg.js';

export interface QkdSweepPoint { protocol: string; distanceKm: number; repeat: number; qber: number; secretKeyRateBps: number; abortReason?: string | null }

export interface PaperFigures {
  /** id → { title, caption, svg } in report order. */
  list: { id: string; title: string; caption: string; svg: string }[];
}

const TABLE_TITLE: Record<number, string> = {
  1: 'Table 1 — Resource utilization on IoT devices',
  2: 'Table 2 — Network performance under encrypted communication',
  3: 'Table 3 — Cryptographic protocol attack resilience',
  4: 'Table 4 — Key generation time comparison',
};

const isTable = (c: Claim): c is Claim & { ref: TableRef } => 'table' in c.ref;

function measuredText(r: ClaimResult): string {
  const m = r.measured;
  if (!m) return '–';
  const c = r.claim;
  if (c.kind === 'count') return `${fmtNum((m.mean ?? m.median) * m.n)} (of n = ${m.n})`;
  const spread = Number.isFinite(m.p5) && Number.isFinite(m.p95) ? ` [${fmtNum(m.p5)} – ${fmtNum(m.p95)}]` : '';
  return `${fmtNum(m.median)}${spread}`;
}

function paperText(c: Claim): string {
  if (c.kind === 'mark') return c.value;
  const unit = c.unit === 'count' ? '' : ` ${c.unit}`;
  return c.kind === 'upper_bound' ? `< ${fmtNum(c.value)}${unit}` : c.kind === 'lower_bound' ? `> ${fmtNum(c.value)}${unit}` : c.kind === 'count' ? `${fmtNum(c.value)}+` : `${fmtNum(c.value)}${unit}`;
}

export interface PaperRow { id: string; where: string; column: string; paper: string; measured: string; n: string; status: string; reason: string }

export function paperRows(results: ClaimResult[], table: number | 'text'): PaperRow[] {
  return results
    .filter((r) => (table === 'text' ? !isTable(r.claim) : isTable(r.claim) && r.claim.ref.table === table))
    .map((r) => {
      const ref = r.claim.ref;
      return {
        id: r.claim.id,
        where: 'table' in ref ? ref.row : ref.quote,
        column: 'table' in ref ? ref.column : (r.claim.measure?.metric ?? ''),
        paper: paperText(r.claim),
        measured: measuredText(r),
        n: r.measured ? String(r.measured.n) : '0',
        status: r.judgement.status,
        reason: r.judgement.reason,
      };
    });
}

const CSV_HEAD = ['claim_id', 'table', 'row_or_quote', 'column', 'paper_value', 'unit', 'kind', 'metric', 'suites', 'board', 'profile', 'n', 'median', 'p5', 'p95', 'mean', 'ci_low', 'ci_high', 'status', 'reason'];
const csvCell = (v: unknown): string => {
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(Math.round(v * 1e6) / 1e6) : '') : v === undefined || v === null ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function paperCsv(results: ClaimResult[], table: number | 'text'): string {
  const rows = results.filter((r) => (table === 'text' ? !isTable(r.claim) : isTable(r.claim) && r.claim.ref.table === table)).map((r) => {
    const c = r.claim;
    const m = r.measured;
    const ref = c.ref;
    return [c.id, 'table' in ref ? ref.table : 'text', 'table' in ref ? ref.row : ref.quote, 'table' in ref ? ref.column : '', c.value, c.kind === 'mark' ? '' : c.unit, c.kind,
      c.measure?.metric, c.measure?.suites.join(' '), c.measure?.board, c.measure?.profile, m?.n ?? 0, m?.median, m?.p5, m?.p95, m?.mean, m?.ciLow, m?.ciHigh,
      r.judgement.status, r.judgement.reason].map(csvCell).join(',');
  });
  return `${CSV_HEAD.join(',')}\n${rows.join('\n')}${rows.length ? '\n' : ''}`;
}

export function statusCounts(results: ClaimResult[]): Record<string, number> {
  const out: Record<string, number> = { reproduced: 0, 'not reproduced': 0, 'not measured': 0 };
  for (const r of results) out[r.judgement.status] = (out[r.judgement.status] ?? 0) + 1;
  return out;
}

const bySuiteOrder = (suites: string[]) => (a: string, b: string) => {
  const ia = suites.indexOf(a), ib = suites.indexOf(b);
  return (ia < 0 ? 1e9 : ia) - (ib < 0 ? 1e9 : ib) || a.localeCompare(b);
};

/** Groups by suite, one bar per series key; whiskers p5–p95 of the pooled values. */
function suiteBars(cols: OpColumns[], pick: (c: OpColumns) => number[], seriesOf: (c: OpColumns) => string, suiteOrder: string[]): BarGroup[] {
  const acc = new Map<string, Map<string, number[]>>();
  for (const c of cols) {
    const v = pick(c);
    if (!v.length) continue;
    if (!acc.has(c.suite)) acc.set(c.suite, new Map());
    const m = acc.get(c.suite)!;
    const k = seriesOf(c);
    if (!m.has(k)) m.set(k, []);
    const arr = m.get(k)!;
    for (const x of v) arr.push(x);
  }
  return [...acc.keys()].sort(bySuiteOrder(suiteOrder)).map((suite) => ({
    label: suite,
    bars: [...acc.get(suite)!.entries()].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })).map(([series, v]) => {
      const s = summarize(v);
      return { series, value: s.median, low: s.p5, high: s.p95, n: s.n };
    }),
  }));
}

export function paperFigures(cols: Map<string, OpColumns>, energy: EnergyStats[], qkd: QkdSweepPoint[], suiteOrder: string[]): PaperFigures {
  const all = [...cols.values()].sort((a, b) => `${a.suite}|${a.board}|${a.profile}`.localeCompare(`${b.suite}|${b.board}|${b.profile}`));
  const list: PaperFigures['list'] = [];
  const spread = 'p5–p95';
  list.push({ id: 'fig2-keygen', title: 'Figure 2 — Key generation time by suite',
    caption: `Median of the node's key generation step per suite and board, whiskers ${spread}; all profiles pooled (${METRIC_DEFINITION.keygen_ms}).`,
    svg: barChart({ id: 'fig2', title: 'Key generation time by suite', yLabel: 'key generation', yUnit: 'ms', groups: suiteBars(all, (c) => c.keygenMs, (c) => c.board, suiteOrder), whiskerLabel: spread, log: true }) });
  list.push({ id: 'fig3-ram', title: 'Figure 3a — Device resource use: RAM',
    caption: `Peak heap + stack per operation as % of the board's RAM, median and ${spread}, by suite and board.`,
    svg: barChart({ id: 'fig3a', title: 'RAM use by suite and board', yLabel: 'RAM', yUnit: '%', groups: suiteBars(all, (c) => c.ramPct, (c) => c.board, suiteOrder), whiskerLabel: spread, log: true }) });
  list.push({ id: 'fig3-cpu', title: 'Figure 3b — Device resource use: CPU',
    caption: `CPU busy % of the node's workload task over each operation, median and ${spread}, by suite and board.`,
    svg: barChart({ id: 'fig3b', title: 'CPU busy by suite and board', yLabel: 'CPU busy', yUnit: '%', groups: suiteBars(all, (c) => c.cpuPct, (c) => c.board, suiteOrder), whiskerLabel: spread }) });
  list.push({ id: 'fig5-throughput', title: 'Figure 5a — Network performance by suite: record throughput',
    caption: `${METRIC_DEFINITION.throughput_kbps}; median and ${spread} per suite and network profile.`,
    svg: barChart({ id: 'fig5a', title: 'Record throughput by suite and profile', yLabel: 'throughput', yUnit: 'kbit/s', groups: suiteBars(all, (c) => c.throughputKbps, (c) => c.profile, suiteOrder), whiskerLabel: spread }) });
  list.push({ id: 'fig5-rtt', title: 'Figure 5b — Network performance by suite: record round trip',
    caption: `${METRIC_DEFINITION.rtt_ms}; median and ${spread} per suite and network profile.`,
    svg: barChart({ id: 'fig5b', title: 'Record round trip by suite and profile', yLabel: 'round trip', yUnit: 'ms', groups: suiteBars(all, (c) => c.rttMs, (c) => c.profile, suiteOrder), whiskerLabel: spread, log: true }) });
  const profiles = [...new Set(all.map((c) => c.profile))].filter((p) => p !== 'loopback').sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  for (const p of profiles) {
    const series = [...new Set(all.filter((c) => c.profile === p).map((c) => c.suite))].sort(bySuiteOrder(suiteOrder)).map((suite) => ({
      label: suite, values: all.filter((c) => c.profile === p && c.suite === suite).flatMap((c) => c.hsMs),
    }));
    list.push({ id: `cdf-${p}`, title: `Handshake time CDF over ${p}`,
      caption: `Empirical CDF of the handshake time of successful operations over the ${p} profile (loss and delay as configured; realized figures in the network section), all nodes.`,
      svg: cdfChart({ id: `cdf-${p}`, title: `Handshake time over ${p}`, xLabel: 'handshake time', xUnit: 'ms', series, log: true }) });
  }
  const eg = new Map<string, BarGroup>();
  for (const e of energy) {
    if (!eg.has(e.suite)) eg.set(e.suite, { label: e.suite, bars: [] });
    eg.get(e.suite)!.bars.push({ series: e.node, value: e.perOpJ * 1e3, low: (e.perOpJ - e.uncJ) * 1e3, high: (e.perOpJ + e.uncJ) * 1e3, n: e.ops });
  }
  list.push({ id: 'energy', title: 'Energy per operation',
    caption: 'Measured energy per handshake (with its record phase) per suite and node, whiskers ± 1σ of the measurement (meter resolution, rate, window edges, baseline noise).',
    svg: barChart({ id: 'energy', title: 'Energy per operation', yLabel: 'energy per op', yUnit: 'mJ', groups: [...eg.values()].sort((a, b) => bySuiteOrder(suiteOrder)(a.label, b.label)), whiskerLabel: '±1σ' }) });
  const rate: LineSeries[] = [];
  const qber: LineSeries[] = [];
  for (const proto of [...new Set(qkd.map((q) => q.protocol))].sort()) {
    const pts = qkd.filter((q) => q.protocol === proto);
    const ds = [...new Set(pts.map((q) => q.distanceKm))].sort((a, b) => a - b);
    const agg = (f: (q: QkdSweepPoint) => number) => ds.map((d) => {
      const s = summarize(pts.filter((q) => q.distanceKm === d).map(f));
      return { x: d, y: s.median, low: s.min, high: s.max };
    });
    rate.push({ label: `${proto} key rate`, points: agg((q) => q.secretKeyRateBps).filter((p) => p.y > 0) });
    qber.push({ label: `${proto} QBER`, points: agg((q) => q.qber * 100) });
  }
  list.push({ id: 'qkd-distance', title: 'QKD secret key rate and QBER against distance',
    caption: qkd.length ? `Emulated quantum link (qkd.sweep of the campaign): median over ${Math.max(...qkd.map((q) => q.repeat)) + 1} seeded repeats per distance, bars min–max. Key rate on the left (log), QBER on the right; a distance where privacy amplification leaves no key has no rate point.`
      : 'Not measured: the campaign has no qkd.sweep block.',
    svg: lineChart({ id: 'qkd', title: 'QKD key rate and QBER vs distance', xLabel: 'fibre distance', xUnit: 'km', yLabel: 'secret key rate', yUnit: 'bit/s', yLog: true, series: rate,
      y2: { label: 'QBER', unit: '%', series: qber }, whiskerLabel: 'min–max' }) });
  return { list };
}

export const PAPER_INTRO = 'The seed paper (fixtures/paper/seed-paper.txt) gives one number per cell with no method, sample size or spread. ' +
  'Each claim below (fixtures/paper-claims.yaml) names what qslab measures for it; "reproduced" means the measured median lies within the stated tolerance of the paper\'s value ' +
  '(bounds: the p95 / p5 lies beyond the bound; counts: the run total). Measured values are median [p5 – p95] over n operations (success rate: [95 % Wilson interval]; ' +
  'battery: over energy windows; loss: over cells).';


function htmlTable(id: string, caption: string, head: string[], rows: string[][], cls?: (r: string[]) => string): string {
  return `<table id="${esc(id)}"><caption>${esc(caption)}</caption><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr${cls ? ` class="${cls(r)}"` : ''}>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('') + '</tbody></table>';
}

const HEAD = ['paper row', 'paper column', 'paper', 'qslab measured', 'n', 'result', 'why'];
const statusClass = (r: string[]) => (r[5] === 'reproduced' ? 'ok' : r[5] === 'not reproduced' ? 'bad' : 'na');
const rowCells = (r: PaperRow) => [r.where, r.column, r.paper, r.measured, r.n, r.status, r.reason];

export function paperHtml(results: ClaimResult[], figs: PaperFigures): string {
  const c = statusCounts(results);
  const out: string[] = ['<h2 id="paper">The seed paper, measured</h2>', `<p>${esc(PAPER_INTRO)}</p>`,
    `<p class="tally">${results.length} claims: <b>${c.reproduced}</b> reproduced, <b>${c['not reproduced']}</b> not reproduced, <b>${c['not measured']}</b> not measured.</p>`];
  for (const t of [1, 2, 3, 4]) out.push(htmlTable(`table${t}`, TABLE_TITLE[t]!, HEAD, paperRows(results, t).map(rowCells), statusClass));
  out.push(htmlTable('headline', 'Headline claims of the text', ['quote', 'metric', 'paper', 'qslab measured', 'n', 'result', 'why'], paperRows(results, 'text').map(rowCells), statusClass));
  out.push('<h3>Figure 4 — Security resilience radar</h3><p>Not measured: the radar plots Table 3\'s ✓/X marks, which are claims about algorithms rather than bench measurements (see the reasons in Table 3).</p>');
  for (const f of figs.list) out.push(`<figure id="${esc(f.id)}"><figcaption><b>${esc(f.title)}.</b> ${esc(f.caption)}</figcaption>${f.svg}</figure>`);
  return out.join('\n');
}

export function paperMarkdown(results: ClaimResult[], figs: PaperFigures, figDir: string): string {
  const c = statusCounts(results);
  const md = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const out: string[] = ['## The seed paper, measured', '', PAPER_INTRO, '',
    `${results.length} claims: **${c.reproduced}** reproduced, **${c['not reproduced']}** not reproduced, **${c['not measured']}** not measured.`, ''];
  const table = (title: string, head: string[], rows: string[][]) => {
    out.push(`### ${title}`, '', `| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(md).join(' | ')} |`), '');
  };
  for (const t of [1, 2, 3, 4]) table(TABLE_TITLE[t]!, HEAD, paperRows(results, t).map(rowCells));
  table('Headline claims of the text', ['quote', 'metric', 'paper', 'qslab measured', 'n', 'result', 'why'], paperRows(results, 'text').map(rowCells));
  out.push('### Figure 4 — Security resilience radar', '', 'Not measured: the radar plots Table 3\'s ✓/X marks (claims about algorithms, not bench measurements).', '');
  for (const f of figs.list) out.push(`### ${f.title}`, '', f.caption, '', `![${f.title}](${figDir}/${f.id}.svg)`, '');
  return out.join('\n');
}
