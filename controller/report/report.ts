// Lab report for one run: per suite and node, order statistics of every step the node timed, bytes on the
// wire, heap/stack peaks, CPU busy and success rate, plus where the numbers came from.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CellInfo, EnergyWindow, NetFigures, OpRecord, RunEvent, RunInfo, Store } from '../model.js';
import { summarize, type Summary } from './stats.js';
import { boardRam } from '../rig/strategy.js';
import { SUITES } from '../config/campaign.js';
import { loadClaims } from './claims.js';
import { measureClaims, opColumns, type NetCell } from './paper.js';
import { paperCsv, paperFigures, paperHtml, paperMarkdown, statusCounts, type QkdSweepPoint } from './paper-render.js';
import { findChromium, printPdf } from './browser.js';
import { barChart, escapeXml as esc } from './svg.js';

export const STEP_ORDER = ['connect', 'keygen', 'dh', 'encap', 'decap', 'verify', 'sign', 'kdf', 'fin', 'hs', 'rec', 'total'] as const;
const STEP_LABEL: Record<string, string> = {
  connect: 'TCP connect', keygen: 'key generation', dh: 'key agreement (ECDH/X25519)', encap: 'RSA-OAEP encrypt', decap: 'ML-KEM decapsulation',
  verify: 'server auth (verify)', sign: 'client signature (mutual)',
  kdf: 'key schedule', fin: 'Finished MACs', hs: 'handshake', rec: 'record phase', total: 'total', host: 'server wall (controller)',
};

export interface GroupStats {
  suite: string;
  node: string;
  profile: string;
  board: string;
  build: string;
  ops: number;
  ok: number;
  steps: Record<string, Summary>;
  hsTx: Summary; hsRx: Summary; recTx: Summary; recRx: Summary;
  heapPeak: number; stackPeak: number; ramPct: number;
  cpu: Summary;
  errors: Record<string, number>;
}

/** Per suite and network profile, over all nodes: what a loss/RTT grid plots. */
export interface ProfileStats {
  suite: string;
  profile: string;
  ops: number;
  ok: number;
  hs: Summary;
}

export interface ReportData {
  run: RunInfo;
  cells: CellInfo[];
  groups: GroupStats[];
  byProfile: ProfileStats[];
  /** Jamming schedules: operations by the phase that was active when they started. */
  byPhase: ProfileStats[];
  events: RunEvent[];
  cellsByStatus: Record<string, number>;
  /** Energy per suite and node (nodes with a meter), windows combined by inverse variance. */
  energy: EnergyStats[];
}

export interface EnergyStats {
  suite: string;
  node: string;
  board: string;
  meter: string;
  meterKind: string;
  windows: number;
  ops: number;
  source: string;
  perOpJ: number;
  uncJ: number;
  drainPct100?: number;
  truthPerOpJ?: number;
}

/** Windows of one suite × node combined: weights 1/σ², so a long sized burst outweighs short noisy ones. */
export function combineEnergy(ws: EnergyWindow[]): EnergyStats[] {
  const acc = new Map<string, EnergyWindow[]>();
  for (const w of ws) {
    const k = `${w.suite}\u0000${w.node}`;
    if (!acc.has(k)) acc.set(k, []);
    acc.get(k)!.push(w);
  }
  const out: EnergyStats[] = [];
  for (const list of acc.values()) {
    const wt = list.map((w) => 1 / Math.max(w.perOpUncJ, 1e-15) ** 2);
    const sw = wt.reduce((a, b) => a + b, 0);
    const mean = (f: (w: EnergyWindow) => number) => list.reduce((a, w, k) => a + wt[k]! * f(w), 0) / sw;
    const w0 = list[0]!;
    const e: EnergyStats = {
      suite: w0.suite, node: w0.node, board: w0.board, meter: w0.meter, meterKind: w0.meterKind, windows: list.length,
      ops: list.reduce((a, w) => a + w.ops, 0), source: [...new Set(list.map((w) => w.source))].join(', '),
      perOpJ: mean((w) => w.perOpJ), uncJ: 1 / Math.sqrt(sw),
    };
    // drain is proportional to the energy per op (same battery): scale by the combined figure
    if (list.every((w) => w.drainPct100 !== undefined)) e.drainPct100 = (e.perOpJ * w0.drainPct100!) / w0.perOpJ;
    if (list.every((w) => w.truthPerOpJ !== undefined)) e.truthPerOpJ = mean((w) => w.truthPerOpJ!);
    out.push(e);
  }
  return out.sort((a, b) => a.suite.localeCompare(b.suite) || a.node.localeCompare(b.node));
}

const maxOf = (xs: readonly number[]): number => {
  let m = 0;
  for (const x of xs) if (x > m) m = x;
  return m;
};

/** One pass over the operations: groups, per-profile and per-phase lists (fit for a million records). */
export function analyze(run: RunInfo, cells: CellInfo[], ops: OpRecord[], events: RunEvent[], energy: EnergyWindow[] = []): ReportData {
  const key = (o: { suite: string; node: string; profile: string }) => `${o.suite}\u0000${o.node}\u0000${o.profile}`;
  const byKey = new Map<string, OpRecord[]>();
  const bySuiteProfile = new Map<string, OpRecord[]>();
  for (const op of ops) {
    const k = key(op);
    let l = byKey.get(k);
    if (!l) byKey.set(k, (l = []));
    l.push(op);
    const sp = `${op.suite}\u0000${op.profile}`;
    let m = bySuiteProfile.get(sp);
    if (!m) bySuiteProfile.set(sp, (m = []));
    m.push(op);
  }
  const cellByKey = new Map<string, CellInfo>();
  for (const c of cells) if (!cellByKey.has(key(c))) cellByKey.set(key(c), c);
  const groups: GroupStats[] = [];
  const keys = new Set([...cells.map(key), ...byKey.keys()]);
  for (const k of [...keys].sort()) {
    const [suite, node, profile] = k.split('\u0000') as [string, string, string];
    const list = byKey.get(k) ?? [];
    const good = list.filter((o) => o.ok);
    const cell = cellByKey.get(k);
    const steps: Record<string, Summary> = {};
    // one pass over the ops' timings (their key sets differ per suite): a column per step
    const byStep = new Map<string, number[]>();
    for (const o of good) {
      const t = o.t;
      for (const n in t) {
        let col = byStep.get(n);
        if (!col) byStep.set(n, (col = []));
        col.push(t[n]!);
      }
    }
    for (const s of [...STEP_ORDER, ...[...byStep.keys()].filter((n) => !(STEP_ORDER as readonly string[]).includes(n)).sort()]) {
      const col = byStep.get(s);
      if (col) steps[s] = summarize(col);
    }
    const host = good.map((o) => o.hostUs ?? NaN).filter(Number.isFinite);
    if (host.length) steps.host = summarize(host);
    const errors: Record<string, number> = {};
    for (const o of list) if (!o.ok) errors[o.err ?? 'unknown'] = (errors[o.err ?? 'unknown'] ?? 0) + 1;
    const heapPeak = maxOf(good.map((o) => o.heap));
    const stackPeak = maxOf(good.map((o) => o.stack));
    const board = cell?.board ?? list[0]?.board ?? '';
    groups.push({
      suite, node, profile, board, build: cell?.buildHash ?? '', ops: list.length, ok: good.length, steps,
      hsTx: summarize(good.map((o) => o.hsTx)), hsRx: summarize(good.map((o) => o.hsRx)),
      recTx: summarize(good.map((o) => o.recTx)), recRx: summarize(good.map((o) => o.recRx)),
      heapPeak, stackPeak,
      ramPct: boardRam(board) ? ((heapPeak + stackPeak) / boardRam(board)) * 100 : NaN,
      cpu: summarize(good.map((o) => o.cpu)), errors,
    });
  }
  const cellsByStatus: Record<string, number> = {};
  for (const c of cells) cellsByStatus[c.status] = (cellsByStatus[c.status] ?? 0) + 1;
  const byProfile: ProfileStats[] = [];
  const profiles = [...new Set([...bySuiteProfile.values()].map((l) => l[0]!.profile))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (profiles.length > 1 || (profiles.length === 1 && profiles[0] !== 'loopback')) {
    for (const suite of [...new Set([...bySuiteProfile.values()].map((l) => l[0]!.suite))].sort()) {
      for (const profile of profiles) {
        const list = bySuiteProfile.get(`${suite}\u0000${profile}`);
        if (!list?.length) continue;
        const good = list.filter((o) => o.ok);
        byProfile.push({ suite, profile, ops: list.length, ok: good.length, hs: summarize(good.map((o) => o.t.hs ?? NaN)) });
      }
    }
  }
  const byPhase: ProfileStats[] = [];
  const phaseByCell = new Map<string, RunEvent[]>();
  for (const e of events) {
    if (e.kind !== 'net-phase' || !e.cellId) continue;
    let l = phaseByCell.get(e.cellId);
    if (!l) phaseByCell.set(e.cellId, (l = []));
    l.push(e);
  }
  if (phaseByCell.size) {
    for (const l of phaseByCell.values()) l.sort((a, b) => a.ts - b.ts);
    const acc = new Map<string, { suite: string; profile: string; list: OpRecord[] }>();
    for (const op of ops) {
      const pe = phaseByCell.get(op.cellId);
      if (!pe) continue;
      const start = op.ts - (op.t.total ?? 0) / 1000;
      let phase: string | undefined;
      for (const e of pe) {
        if (e.ts > start) break;
        phase = /^phase \d+: (\S+)/.exec(e.detail)?.[1] ?? phase;
      }
      if (!phase) continue;
      const k = `${op.suite}\u0000${phase}`;
      if (!acc.has(k)) acc.set(k, { suite: op.suite, profile: phase, list: [] });
      acc.get(k)!.list.push(op);
    }
    for (const { suite, profile, list } of [...acc.values()].sort((a, b) => (a.suite + a.profile).localeCompare(b.suite + b.profile))) {
      const good = list.filter((o) => o.ok);
      byPhase.push({ suite, profile, ops: list.length, ok: good.length, hs: summarize(good.map((o) => o.t.hs ?? NaN)) });
    }
  }
  return { run, cells, groups, byProfile, byPhase, events, cellsByStatus, energy: combineEnergy(energy) };
}

const us = (v: number): string => (!Number.isFinite(v) ? '–' : v >= 10000 ? `${(v / 1000).toFixed(1)} ms` : v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(1)} µs`);
const num = (v: number, d = 0): string => (Number.isFinite(v) ? v.toFixed(d) : '–');
const ram = (v: number): string => (!Number.isFinite(v) ? '–' : v >= 0.01 ? v.toFixed(2) : v.toPrecision(2));
const pct = (ok: number, n: number): string => (n ? `${((ok / n) * 100).toFixed(1)} %` : '–');
const stat = (s: Summary, f: (v: number) => string = us): string => (s.n ? `${f(s.median)} [${f(s.p5)} – ${f(s.p95)}]` : '–');

const ENERGY_NOTE = 'Energy per operation = (∫V·I over the burst window − idle baseline power × window length) ÷ operations, from the meter\'s own samples; ' +
  'window edges from the node\'s marker line where wired, else from its burst timestamps mapped to host time by a ping fit over serial. ' +
  'Several windows of a suite and node are combined by inverse variance. Battery drain per 100 operations is a share of the node\'s battery in the rig file (capacity × nominal voltage × regulator efficiency). ' +
  'On the virtual rig the meters are emulators whose readings come from a power model driven by the node process\'s CPU time and bytes written; "power model" is that model\'s own energy for the same windows.';
const joules = (j: number): string => (!Number.isFinite(j) ? '–' : Math.abs(j) >= 1 ? `${j.toFixed(3)} J` : Math.abs(j) >= 1e-3 ? `${(j * 1e3).toFixed(3)} mJ` : `${(j * 1e6).toFixed(1)} µJ`);
function energyRow(e: EnergyStats): string[] {
  return [e.suite, e.node, e.board, `${e.meter} (${e.meterKind})`, `${e.windows} (${e.ops})`, joules(e.perOpJ), joules(e.uncJ),
    e.drainPct100 !== undefined ? `${e.drainPct100.toPrecision(3)} %` : '– (no battery in the rig file)', e.source,
    e.truthPerOpJ !== undefined ? joules(e.truthPerOpJ) : '–',
    e.truthPerOpJ !== undefined ? `${((100 * (e.perOpJ - e.truthPerOpJ)) / e.truthPerOpJ).toFixed(1)} %` : '–'];
}

function envRows(d: ReportData): [string, string][] {
  const r = d.run;
  const builds = [...new Set(d.cells.map((c) => `${c.node}: ${c.firmware || '?'} build ${c.buildHash || '?'}`))].sort();
  return [
    ['run', r.id],
    ['campaign', `${r.campaign} (${r.campaignFile})`],
    ['rig', `${r.rig} (${r.rigFile})`],
    ['virtual or real', r.virtual ? `VIRTUAL — ${r.virtualParts.join('; ')}` : 'real hardware'],
    ['controller', `qslab ${r.controllerVersion}, commit ${r.gitCommit}`],
    ['firmware', builds.join('; ')],
    ...d.events.filter((e) => e.kind === 'setup').map((e): [string, string] => ['setup', e.detail]),
    ['seed', String(r.seed)],
    ['started', r.startedAt],
    ['ended', r.endedAt ?? '–'],
    ['status', r.status],
    ['cells', Object.entries(d.cellsByStatus).map(([k, v]) => `${v} ${k}`).join(', ')],
  ];
}

export function renderMarkdown(d: ReportData, paper = ''): string {
  const out: string[] = [];
  out.push(`# qslab lab report — ${d.run.campaign}`, '');
  if (d.run.virtual) out.push(`> **Virtual rig.** ${d.run.virtualParts.join('; ')}. Timings are those of the POSIX firmware build on the controller host, not of the boards the profiles stand for.`, '');
  out.push('## Environment', '', '| | |', '|---|---|');
  for (const [k, v] of envRows(d)) out.push(`| ${k} | ${v.replace(/\|/g, '\\|')} |`);
  if (paper) out.push('', paper);
  out.push('', '## Summary per suite and node', '', 'Median [p5 – p95] over successful operations; n = operations.', '');
  out.push('| suite | node | profile | board | n | success | handshake | total | heap peak | stack peak | RAM % | CPU busy % | hs bytes tx/rx |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const g of d.groups) {
    out.push(`| ${g.suite} | ${g.node} | ${g.profile} | ${g.board} | ${g.ops} | ${pct(g.ok, g.ops)} | ${stat(g.steps.hs ?? summarize([]))} | ${stat(g.steps.total ?? summarize([]))} | ${num(g.heapPeak)} B | ${num(g.stackPeak)} B | ${ram(g.ramPct)} | ${stat(g.cpu, (v) => num(v, 1))} | ${num(g.hsTx.median)}/${num(g.hsRx.median)} |`);
  }
  if (d.energy.length) {
    out.push('', '## Energy and battery', '', ENERGY_NOTE, '');
    out.push('| suite | node | board | meter | windows (ops) | energy per op | ± 1σ | battery drain per 100 ops | window from | power model (virtual) | deviation |', '|---|---|---|---|---|---|---|---|---|---|---|');
    for (const e of d.energy) out.push(`| ${energyRow(e).join(' | ')} |`);
  }
  if (d.byProfile.length) {
    out.push('', '## By network profile (all nodes)', '', 'Handshake time median [p5 – p95] of successful operations and the success rate, per suite and profile.', '');
    out.push('| suite | profile | n | success | handshake |', '|---|---|---|---|---|');
    for (const p of d.byProfile) out.push(`| ${p.suite} | ${p.profile} | ${p.ops} | ${pct(p.ok, p.ops)} | ${stat(p.hs)} |`);
  }
  if (d.byPhase.length) {
    out.push('', '## Jamming phases', '', 'Operations by the link phase active when they started (phase changes are timestamped in the store).', '');
    out.push('| suite | phase | n | success | handshake |', '|---|---|---|---|---|');
    for (const p of d.byPhase) out.push(`| ${p.suite} | ${p.profile} | ${p.ops} | ${pct(p.ok, p.ops)} | ${stat(p.hs)} |`);
  }
  const net = d.events.filter((e) => e.kind === 'net-realized');
  if (net.length) {
    out.push('', '## Network conditions (configured → realized)', '');
    for (const e of net) out.push(`- ${e.cellId ?? ''}: ${e.detail}`);
  }
  out.push('', '## Step timings (node clock)', '');
  for (const g of d.groups) {
    out.push(`### ${g.suite} on ${g.node}${g.profile !== 'loopback' ? ` over ${g.profile}` : ''} (${g.board}, build ${g.build || '?'})`, '', '| step | n | median | p5 | p95 | min | max |', '|---|---|---|---|---|---|---|');
    for (const [s, v] of Object.entries(g.steps)) out.push(`| ${STEP_LABEL[s] ?? s} | ${v.n} | ${us(v.median)} | ${us(v.p5)} | ${us(v.p95)} | ${us(v.min)} | ${us(v.max)} |`);
    out.push('', `Record phase bytes tx/rx (median): ${num(g.recTx.median)} / ${num(g.recRx.median)}.`);
    if (Object.keys(g.errors).length) out.push(`Failures: ${Object.entries(g.errors).map(([k, v]) => `${k} × ${v}`).join(', ')}.`);
    out.push('');
  }
  const checks = d.events.filter((e) => e.kind.startsWith('check-'));
  if (checks.length) {
    out.push('## Checks', '', '| result | check |', '|---|---|');
    for (const e of checks) out.push(`| ${e.kind === 'check-passed' ? 'passed' : '**FAILED**'} | ${e.detail.replace(/\|/g, '\\|')} |`);
    out.push('');
  }
  const failed = d.cells.filter((c) => c.status !== 'ok');
  if (failed.length) {
    out.push('## Cells not completed', '', '| cell | status | attempts | reason |', '|---|---|---|---|');
    for (const c of failed) out.push(`| ${c.cellId} | ${c.status} | ${c.attempts} | ${(c.error ?? '').replace(/\|/g, '\\|')} |`);
    out.push('');
  }
  const events = d.events.filter((e) => !['setup', 'net-realized', 'net-phase'].includes(e.kind) && !e.kind.startsWith('check-'));
  if (events.length) {
    out.push('## Events', '');
    for (const e of events.slice(0, 200)) out.push(`- ${new Date(e.ts).toISOString()} ${e.kind}${e.node ? ` [${e.node}]` : ''}: ${e.detail}`);
    out.push('');
  }
  out.push('## Campaign file', '', `${d.run.campaignFile}:`, '', '```yaml', d.run.campaignText.trimEnd(), '```', '');
  out.push('## Rig file', '', `${d.run.rigFile}:`, '', '```yaml', d.run.rigText.trimEnd(), '```', '');
  return out.join('\n');
}


/** Median handshake time per group with p5–p95 whiskers (the same chart module as the paper figures). */
function chart(d: ReportData): string {
  const rows = d.groups.filter((g) => g.steps.hs?.n);
  if (!rows.length) return '<p>No successful operations to chart.</p>';
  return barChart({
    id: 'hs-groups', title: 'Handshake time by suite and node', yLabel: 'handshake', yUnit: 'ms', whiskerLabel: 'p5–p95', log: true,
    groups: rows.map((g) => {
      const h = g.steps.hs!;
      return { label: `${g.suite} · ${g.node}${g.profile !== 'loopback' ? ` · ${g.profile}` : ''}`, bars: [{ series: 'handshake', value: h.median / 1000, low: h.p5 / 1000, high: h.p95 / 1000, n: h.n }] };
    }),
  });
}

export function renderHtml(d: ReportData, paper = ''): string {
  const table = (head: string[], rows: string[][]) =>
    `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
  const body: string[] = [];
  body.push(`<h1>qslab lab report — ${esc(d.run.campaign)}</h1>`);
  if (d.run.virtual) body.push(`<p class="virtual"><strong>Virtual rig.</strong> ${esc(d.run.virtualParts.join('; '))}. Timings are those of the POSIX firmware build on the controller host, not of the boards the profiles stand for.</p>`);
  body.push('<h2>Environment</h2>', table(['', ''], envRows(d)));
  if (paper) body.push(paper);
  body.push('<h2>Handshake time (median, p5–p95)</h2>', chart(d));
  body.push('<h2>Summary per suite and node</h2><p>Median [p5 – p95] over successful operations.</p>', table(
    ['suite', 'node', 'profile', 'board', 'n', 'success', 'handshake', 'total', 'heap peak (B)', 'stack peak (B)', 'RAM %', 'CPU busy %', 'hs bytes tx/rx'],
    d.groups.map((g) => [g.suite, g.node, g.profile, g.board, String(g.ops), pct(g.ok, g.ops), stat(g.steps.hs ?? summarize([])), stat(g.steps.total ?? summarize([])),
      num(g.heapPeak), num(g.stackPeak), ram(g.ramPct), stat(g.cpu, (v) => num(v, 1)), `${num(g.hsTx.median)}/${num(g.hsRx.median)}`]),
  ));
  if (d.energy.length) {
    body.push('<h2>Energy and battery</h2>', `<p>${esc(ENERGY_NOTE)}</p>`, table(
      ['suite', 'node', 'board', 'meter', 'windows (ops)', 'energy per op', '± 1σ', 'battery drain per 100 ops', 'window from', 'power model (virtual)', 'deviation'],
      d.energy.map(energyRow)));
  }
  if (d.byProfile.length) {
    body.push('<h2>By network profile (all nodes)</h2>', table(['suite', 'profile', 'n', 'success', 'handshake median [p5 – p95]'],
      d.byProfile.map((p) => [p.suite, p.profile, String(p.ops), pct(p.ok, p.ops), stat(p.hs)])));
  }
  if (d.byPhase.length) {
    body.push('<h2>Jamming phases</h2>', table(['suite', 'phase', 'n', 'success', 'handshake median [p5 – p95]'],
      d.byPhase.map((p) => [p.suite, p.profile, String(p.ops), pct(p.ok, p.ops), stat(p.hs)])));
  }
  const netEvents = d.events.filter((e) => e.kind === 'net-realized');
  if (netEvents.length) body.push('<h2>Network conditions (configured → realized)</h2><ul>', ...netEvents.map((e) => `<li>${esc(`${e.cellId ?? ''}: ${e.detail}`)}</li>`), '</ul>');
  body.push('<h2>Step timings (node clock)</h2>');
  for (const g of d.groups) {
    body.push(`<h3>${esc(`${g.suite} on ${g.node}${g.profile !== 'loopback' ? ` over ${g.profile}` : ''} (${g.board}, build ${g.build || '?'})`)}</h3>`, table(
      ['step', 'n', 'median', 'p5', 'p95', 'min', 'max'],
      Object.entries(g.steps).map(([s, v]) => [STEP_LABEL[s] ?? s, String(v.n), us(v.median), us(v.p5), us(v.p95), us(v.min), us(v.max)]),
    ));
    if (Object.keys(g.errors).length) body.push(`<p>Failures: ${esc(Object.entries(g.errors).map(([k, v]) => `${k} × ${v}`).join(', '))}</p>`);
  }
  const checks = d.events.filter((e) => e.kind.startsWith('check-'));
  if (checks.length) body.push('<h2>Checks</h2>', table(['result', 'check'], checks.map((e) => [e.kind === 'check-passed' ? 'passed' : 'FAILED', e.detail])));
  const failed = d.cells.filter((c) => c.status !== 'ok');
  if (failed.length) body.push('<h2>Cells not completed</h2>', table(['cell', 'status', 'attempts', 'reason'], failed.map((c) => [c.cellId, c.status, String(c.attempts), c.error ?? ''])));
  const events = d.events.filter((e) => !['setup', 'net-realized', 'net-phase'].includes(e.kind) && !e.kind.startsWith('check-'));
  if (events.length) body.push('<h2>Events</h2><ul>', ...events.slice(0, 200).map((e) => `<li>${esc(`${new Date(e.ts).toISOString()} ${e.kind}${e.node ? ` [${e.node}]` : ''}: ${e.detail}`)}</li>`), '</ul>');
  body.push('<h2>Campaign file</h2>', `<p>${esc(d.run.campaignFile)}</p><pre id="campaign-file">${esc(d.run.campaignText)}</pre>`);
  body.push('<h2>Rig file</h2>', `<p>${esc(d.run.rigFile)}</p><pre id="rig-file">${esc(d.run.rigText)}</pre>`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(`qslab report ${d.run.id}`)}</title><style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#111}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}th{background:#eef}
.virtual{background:#fff4d6;border:1px solid #e0b84c;padding:.6em}pre{background:#f6f6f6;padding:1em;overflow:auto}
caption{text-align:left;font-weight:bold;padding:.3em 0}tr.ok td:nth-child(6){background:#dff3e0}tr.bad td:nth-child(6){background:#fbe0e0}tr.na td:nth-child(6){color:#666}
figure{margin:1em 0 2em}figcaption{font-size:13px;margin-bottom:.4em;max-width:900px}svg{max-width:100%;height:auto}
@media print{body{margin:0;max-width:none}figure,table{break-inside:avoid}}
</style></head><body>${body.join('\n')}</body></html>\n`;
}

export interface WrittenReport {
  dir: string;
  markdown: string;
  html: string;
  csv: string;
  /** CSV per paper table (table1..4, headline) and energy.csv when measured. */
  tables: string[];
  /** SVG files of the figures (the Markdown links them). */
  figures: string[];
  /** PDF through headless Chromium; absent with pdfNote saying why. */
  pdf?: string;
  pdfNote?: string;
  claims: Record<string, number>;
}

export interface ReportOptions {
  /** Claims file (default fixtures/paper-claims.yaml). */
  claimsFile?: string;
  /** auto: a PDF when Chromium is installed; never; require: fail without it. */
  pdf?: 'auto' | 'never' | 'require';
}

/** Realized loss of a cell's link, %, both directions: the relay's loss model and, kernel-shaped, nft's drops. */
export function netLossPct(r: NetFigures): number {
  const pk = r.up.packets + r.down.packets;
  const relay = pk ? (r.up.lost + r.down.lost) / pk : NaN;
  if (!r.kernel) return 100 * relay;
  const kp = r.kernel.packetsUp + r.kernel.packetsDown;
  const kernel = kp ? (r.kernel.lossUp * r.kernel.packetsUp + r.kernel.lossDown * r.kernel.packetsDown) / kp : NaN;
  if (!Number.isFinite(relay)) return 100 * kernel;
  return Number.isFinite(kernel) ? 100 * (1 - (1 - relay) * (1 - kernel)) : 100 * relay;
}

/** Everything a report needs from the store, analysed (no file written). */
export function buildReport(store: Store, runId: string, opts: ReportOptions = {}) {
  const run = store.getRun(runId);
  if (!run) throw new Error(`no run "${runId}" in the store`);
  const ops = store.getOps(runId);
  const energyWindows = store.getEnergy(runId);
  const d = analyze(run, store.getCells(runId), ops, store.getEvents(runId), energyWindows);
  const cols = opColumns(ops);
  const boardOf = new Map(d.cells.map((c) => [c.cellId, c.board]));
  const net: NetCell[] = store.getNet(runId).map((r) => ({ cellId: r.cellId, suite: r.suite, profile: r.profile, board: boardOf.get(r.cellId) ?? '', lossPct: netLossPct(r) }))
    .filter((r) => Number.isFinite(r.lossPct));
  const qkd: QkdSweepPoint[] = store.getQkdSweep(runId).map((q) => ({ protocol: q.protocol, distanceKm: q.distanceKm, repeat: q.repeat, qber: q.qber, secretKeyRateBps: q.secretKeyRateBps, abortReason: q.abortReason ?? null }));
  const cellOf = new Map(d.cells.map((c) => [c.cellId, c]));
  const energyErrors = d.events.filter((e) => e.kind === 'energy-error' && e.cellId && cellOf.has(e.cellId)).map((e) => {
    const c = cellOf.get(e.cellId!)!;
    return { cellId: c.cellId, suite: c.suite, board: c.board, profile: c.profile, detail: e.detail };
  });
  const results = measureClaims(loadClaims(opts.claimsFile), { ops, energy: energyWindows, net, energyErrors }, cols);
  const figs = paperFigures(cols, d.energy, qkd, [...SUITES, 'none']);
  return { d, results, figs };
}

export async function writeReport(store: Store, runId: string, outRoot: string, opts: ReportOptions = {}): Promise<WrittenReport> {
  const { d, results, figs } = buildReport(store, runId, opts);
  const run = d.run;
  const dir = join(outRoot, run.id);
  const figDir = join(dir, 'figures');
  mkdirSync(figDir, { recursive: true });
  const markdown = join(dir, 'report.md');
  const html = join(dir, 'report.html');
  const csv = join(dir, 'summary.csv');
  writeFileSync(markdown, renderMarkdown(d, paperMarkdown(results, figs, 'figures')));
  writeFileSync(html, renderHtml(d, paperHtml(results, figs)));
  const figures = figs.list.map((f) => {
    const file = join(figDir, `${f.id}.svg`);
    writeFileSync(file, `<?xml version="1.0" encoding="UTF-8"?>\n${f.svg}\n`);
    return file;
  });
  const tables: string[] = [];
  for (const t of [1, 2, 3, 4, 'text'] as const) {
    const file = join(dir, t === 'text' ? 'headline.csv' : `table${t}.csv`);
    writeFileSync(file, paperCsv(results, t));
    tables.push(file);
  }
  const head = ['suite', 'node', 'profile', 'board', 'n', 'ok', 'hs_median_us', 'hs_p5_us', 'hs_p95_us', 'total_median_us', 'heap_peak_b', 'stack_peak_b', 'cpu_median_pct', 'hs_tx_b', 'hs_rx_b'];
  const rows = d.groups.map((g) => [g.suite, g.node, g.profile, g.board, g.ops, g.ok, g.steps.hs?.median, g.steps.hs?.p5, g.steps.hs?.p95, g.steps.total?.median, g.heapPeak, g.stackPeak, g.cpu.median, g.hsTx.median, g.hsRx.median]
    .map((v) => (typeof v === 'number' ? (Number.isFinite(v) ? String(Math.round(v * 1000) / 1000) : '') : String(v ?? ''))).join(','));
  writeFileSync(csv, `${head.join(',')}\n${rows.join('\n')}\n`);
  if (d.energy.length) {
    const eh = ['suite', 'node', 'board', 'meter', 'meter_kind', 'windows', 'ops', 'energy_per_op_j', 'sigma_j', 'drain_pct_per_100_ops', 'window_source', 'model_per_op_j'];
    const er = d.energy.map((e) => [e.suite, e.node, e.board, e.meter, e.meterKind, e.windows, e.ops, e.perOpJ, e.uncJ, e.drainPct100, e.source, e.truthPerOpJ]
      .map((v) => (typeof v === 'number' ? (Number.isFinite(v) ? v.toPrecision(6) : '') : String(v ?? ''))).join(','));
    writeFileSync(join(dir, 'energy.csv'), `${eh.join(',')}\n${er.join('\n')}\n`);
    tables.push(join(dir, 'energy.csv'));
  }
  const written: WrittenReport = { dir, markdown, html, csv, tables, figures, claims: statusCounts(results) };
  const mode = opts.pdf ?? 'auto';
  if (mode !== 'never') {
    if (!findChromium()) {
      if (mode === 'require') throw new Error('a PDF needs Chromium: apt-get install chromium (or set QSLAB_CHROMIUM)');
      written.pdfNote = 'no PDF: Chromium not found (apt-get install chromium, or set QSLAB_CHROMIUM)';
    } else {
      const pdf = join(dir, 'report.pdf');
      try {
        await printPdf(html, pdf);
        written.pdf = pdf;
      } catch (e) {
        if (mode === 'require') throw e;
        written.pdfNote = `no PDF: ${(e as Error).message}`;
      }
    }
  }
  return written;
}
