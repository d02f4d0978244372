import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../paths.js';
import { loadProfiles } from '../net/profiles.js';
import { ConfigError } from '../config/load.js';
import { DEFAULT_CLAIMS, judgeClaim, loadClaims, parseClaims, type Claim, type Measured } from '../report/claims.js';

const FIXTURE = join(ROOT, DEFAULT_CLAIMS);
// The seed paper, copied into the repository (fixtures/paper/seed-paper.txt, from the project's shared folder).
const PAPER = join(ROOT, 'fixtures', 'paper', 'seed-paper.txt');
const noPaper = existsSync(PAPER) ? false : `${PAPER} is missing (copy ../shared/seed-paper.txt there)`;

interface PaperTable { header: string[]; rows: string[][] }

/** The tab-separated tables of the paper: the lines with tabs after a "Table N: caption" line. */
function paperTables(text: string): Map<number, PaperTable> {
  const lines = text.split(/\r?\n/);
  const out = new Map<number, PaperTable>();
  for (let i = 0; i < lines.length; i++) {
    const m = /^Table (\d+): /.exec(lines[i]!);
    if (!m) continue;
    let j = i + 1;
    while (j < lines.length && !lines[j]!.trim()) j++;
    const block: string[][] = [];
    while (j < lines.length && lines[j]!.includes('\t')) block.push(lines[j++]!.split('\t').map((c) => c.trim()));
    if (block.length) out.set(Number(m[1]), { header: block[0]!, rows: block.slice(1) });
  }
  return out;
}

type Cell = { table: number; row: string; column: string; text: string };
/** Every claim-bearing cell: numbers (Tables 1, 2, 4) and ✓/X marks (Table 3). The first column labels the row. */
function paperCells(tables: Map<number, PaperTable>): Cell[] {
  const cells: Cell[] = [];
  for (const [table, t] of tables) {
    for (const r of t.rows) {
      for (let c = 1; c < t.header.length; c++) {
        const text = r[c] ?? '';
        if (/^-?\d+(\.\d+)?$/.test(text) || text === '✓' || text === 'X') cells.push({ table, row: r[0]!, column: t.header[c]!, text });
      }
    }
  }
  return cells;
}

const claims = loadClaims(FIXTURE);
const byId = (id: string): Claim => {
  const c = claims.find((x) => x.id === id);
  assert.ok(c, `claim ${id} in ${DEFAULT_CLAIMS}`);
  return c;
};
const tableOf = (c: Claim) => ('table' in c.ref ? c.ref.table : 0);

test('the claims fixture loads, from the default path too', () => {
  assert.ok(claims.length > 0);
  assert.equal(loadClaims().length, claims.length);
  assert.equal(new Set(claims.map((c) => c.id)).size, claims.length, 'ids are unique');
});

test('the fixture holds every number and mark of Tables 1-4, with the paper\'s values', { skip: noPaper }, () => {
  const tables = paperTables(readFileSync(PAPER!, 'utf8'));
  assert.deepEqual([...tables.keys()].sort(), [1, 2, 3, 4], 'the paper has Tables 1-4');
  const cells = paperCells(tables);
  const count = (t: number) => cells.filter((c) => c.table === t).length;
  // What the paper has (16, 12, 20 and 8 at the time of writing) against what the fixture has.
  assert.deepEqual([count(1), count(2), count(3), count(4)], [16, 12, 20, 8], 'the paper\'s table cells changed');
  for (const t of [1, 2, 3, 4]) {
    assert.equal(claims.filter((c) => tableOf(c) === t).length, count(t), `Table ${t}: one claim per cell`);
  }
  assert.equal(claims.filter((c) => tableOf(c) === 3).every((c) => c.kind === 'mark'), true, 'Table 3 is all marks');
  assert.equal(claims.filter((c) => c.kind === 'mark').length, count(3));
  for (const cell of cells) {
    const hits = claims.filter((c) => 'table' in c.ref && c.ref.table === cell.table && c.ref.row === cell.row && c.ref.column === cell.column);
    assert.equal(hits.length, 1, `Table ${cell.table} row "${cell.row}" column "${cell.column}": exactly one claim`);
    const c = hits[0]!;
    if (c.kind === 'mark') assert.equal(c.value, cell.text, c.id);
    else assert.equal(c.value, Number(cell.text), `${c.id}: the paper says ${cell.text}`);
  }
  // Table 4: the numeric columns are the claims; "Network Type" picks the profile (checked below).
  const t4 = tables.get(4)!;
  const numericCols = t4.header.filter((_, i) => i > 0 && t4.rows.every((r) => /^\d/.test(r[i] ?? '')));
  assert.equal(t4.rows.length * numericCols.length, count(4));
  for (const row of t4.rows) {
    const mine = claims.filter((c) => tableOf(c) === 4 && 'row' in c.ref && c.ref.row === row[0]);
    assert.deepEqual(mine.map((c) => c.measure?.metric).sort(), ['keygen_ms', 'success_pct'], `Table 4 row ${row[0]}`);
  }
});

test('the 4 headline claims: verbatim quotes from the paper, each with its number', { skip: noPaper }, () => {
  const paper = readFileSync(PAPER!, 'utf8').replace(/\s+/g, ' ');
  const text = claims.filter((c) => 'quote' in c.ref);
  assert.ok(text.every((c) => c.id.startsWith('h.')));
  const quotes = new Set(text.map((c) => ('quote' in c.ref ? c.ref.quote : '')));
  assert.equal(quotes.size, 4, `4 headline claims (distinct quotes): ${[...quotes].join(' | ')}`);
  for (const q of quotes) assert.ok(paper.includes(q), `quote not found verbatim in the paper: "${q}"`);
  for (const c of text) {
    const q = 'quote' in c.ref ? c.ref.quote : '';
    if (typeof c.value === 'number' && c.value !== 0) assert.ok(q.includes(String(c.value)), `${c.id}: the quote carries ${c.value}`);
  }
  assert.deepEqual(text.map((c) => c.id).sort(), ['h.decrypt_failures', 'h.exchanges', 'h.key_reuse', 'h.keygen_ms', 'h.latency_under_30ms', 'h.ram_pct']);
});

test('every Table 4 row maps to a network profile that exists, for that network type', { skip: noPaper }, () => {
  const profiles = loadProfiles();
  const t4 = paperTables(readFileSync(PAPER!, 'utf8')).get(4)!;
  const netCol = t4.header.indexOf('Network Type');
  assert.ok(netCol > 0, 'Table 4 has a "Network Type" column');
  for (const c of claims.filter((x) => tableOf(x) === 4)) {
    const profile = c.measure?.profile;
    assert.ok(profile, `${c.id} names a profile`);
    const p = profiles.get(profile);
    assert.ok(p, `${c.id}: profile ${profile} is in fixtures/network-profiles.yaml`);
    const row = t4.rows.find((r) => 'row' in c.ref && r[0] === c.ref.row)!;
    assert.equal(p.paperNetworkType, row[netCol], `${c.id}: ${profile} is the paper's "${row[netCol]}"`);
  }
  for (const c of claims) if (c.measure?.profile) assert.ok(profiles.has(c.measure.profile), `${c.id}: profile ${c.measure.profile} exists`);
});

test('Table 3 marks are not measured, each with its reason; MITM and replay say what would be needed', () => {
  for (const c of claims.filter((x) => x.kind === 'mark')) {
    assert.equal(c.measure, null);
    const j = judgeClaim(c, { n: 100, median: 1, p5: 1, p95: 1 });
    assert.equal(j.status, 'not measured', c.id);
    assert.equal(j.reason, c.kind === 'mark' ? c.not_measured_reason : '');
  }
  assert.match(judgeClaim(byId('t3.mitm.kyber'), null).reason, /would need an on-path attacker harness/);
  assert.match(judgeClaim(byId('t3.replay.qkd'), null).reason, /fault 'replay'.*would need a harness/s);
});

// ---- judgeClaim ------------------------------------------------------------------------------------------------

const at = (median: number, p5 = median, p95 = median, n = 100, extra: Partial<Measured> = {}): Measured => ({ n, median, p5, p95, ...extra });
const value = (v: number, tolerance: { rel?: number; abs?: number }, unit: '%' | 'ms' = 'ms'): Claim => ({
  id: 't1.x.y', ref: { table: 1, row: 'r', column: 'c' }, kind: 'value', value: v, unit,
  measure: { metric: unit === 'ms' ? 'enc_latency_ms' : 'ram_pct', suites: ['x25519'], board: 'esp32' }, tolerance,
});

test('value claims: the median within value × (1 ± rel), edges included', () => {
  const c = byId('t1.esp32-kyber.enc_latency_ms'); // 22.5 ms ± 25 %: 16.875 – 28.125
  assert.equal(c.kind === 'value' && c.value === 22.5 && c.tolerance.rel === 0.25, true);
  const ok = judgeClaim(c, at(21.8, 20.1, 25.0, 500));
  assert.equal(ok.status, 'reproduced');
  assert.equal(ok.reason, 'measured median 21.8 ms (p5–p95 20.1–25 ms, n=500) is within ±25 % of the paper\'s 22.5 ms');
  assert.equal(judgeClaim(c, at(28.125)).status, 'reproduced', 'upper edge');
  assert.equal(judgeClaim(c, at(16.875)).status, 'reproduced', 'lower edge');
  assert.equal(judgeClaim(c, at(28.13)).status, 'not reproduced', 'just above');
  const low = judgeClaim(c, at(16.87));
  assert.equal(low.status, 'not reproduced', 'just below');
  assert.match(low.reason, /is 25 % below the paper's 22\.5 ms, outside 16\.88–28\.13 ms \(±25 %\)/);
  const ci = judgeClaim(c, at(22, 20, 24, 50, { ciLow: 21.5, ciHigh: 22.4 }));
  assert.match(ci.reason, /CI 21\.5–22\.4, n=50/);

  const battery = byId('t1.esp32-rsa.battery_pct_per_100'); // 8.2 %/100 ops
  const b = judgeClaim(battery, at(3.1, 2.9, 3.4, 30));
  assert.equal(b.status, 'not reproduced');
  assert.match(b.reason, /^measured median 3\.1 %\/100 ops .* is 62 % below the paper's 8\.2 %\/100 ops/);
});

test('value claims with an absolute tolerance or an absolute floor', () => {
  const s = byId('t4.rsa2048.success_pct'); // 93.2 % ± 2 points
  assert.equal(judgeClaim(s, at(95.2)).status, 'reproduced', 'edge');
  assert.equal(judgeClaim(s, at(91.2)).status, 'reproduced', 'edge');
  const r = judgeClaim(s, at(100));
  assert.equal(r.status, 'not reproduced');
  assert.match(r.reason, /6\.8 percentage points above the paper's 93\.2 %, outside 91\.2–95\.2 % \(±2 percentage points\)/);
  assert.equal(judgeClaim(s, at(95.21)).status, 'not reproduced');
  const loss = byId('t2.none.packet_loss_pct'); // 0.2 %, ±25 % but at least ±0.2 points
  assert.equal(judgeClaim(loss, at(0.4)).status, 'reproduced');
  assert.match(judgeClaim(loss, at(0.4)).reason, /within ±0\.2 percentage points \(the floor under ±25 %\)/);
  assert.equal(judgeClaim(loss, at(0.41)).status, 'not reproduced');
  assert.equal(judgeClaim(value(100, { rel: 0.1, abs: 5 }), at(110)).status, 'reproduced', 'rel band wider than the floor');
  assert.equal(judgeClaim(value(100, { rel: 0.1, abs: 5 }), at(110.01)).status, 'not reproduced');
});

test('upper bounds: reproduced only when the p95 is under the bound', () => {
  const c = byId('h.latency_under_30ms');
  const ok = judgeClaim(c, at(21.8, 20.1, 25, 500));
  assert.equal(ok.status, 'reproduced');
  assert.match(ok.reason, /^measured p95 25 ms \(median 21\.8 ms, p5–p95 20\.1–25, n=500\) is under the paper's bound of 30 ms: 95 % of operations meet it, not just the median$/);
  const edge = judgeClaim(c, at(25, 20, 30));
  assert.equal(edge.status, 'reproduced', 'p95 exactly at the bound');
  assert.match(edge.reason, /p95 30 ms .* is at the paper's bound/);
  const tail = judgeClaim(c, at(25, 20, 30.01, 9));
  assert.equal(tail.status, 'not reproduced', 'median under, p95 just over');
  assert.match(tail.reason, /median 25 ms is under the paper's bound of 30 ms, but the p95 30\.01 ms is not .*more than 5 % of operations are above the bound/);
  const over = judgeClaim(c, at(41, 35, 50));
  assert.equal(over.status, 'not reproduced');
  assert.match(over.reason, /median 41 ms \(p5–p95 35–50 ms, n=100\) is 37 % above the paper's bound of 30 ms/);
});

test('lower bounds: reproduced only when the p5 is over the bound', () => {
  const c: Claim = { id: 'h.tp', ref: { section: 's', quote: 'q' }, kind: 'lower_bound', value: 400, unit: 'kbps', measure: { metric: 'throughput_kbps', suites: ['none'], board: 'esp32' }, tolerance: { bound: 400 } };
  assert.equal(judgeClaim(c, at(450, 400, 500)).status, 'reproduced', 'p5 exactly at the bound');
  assert.match(judgeClaim(c, at(450, 401, 500)).reason, /p5 401 kbps .* is over the paper's bound of 400 kbps/);
  assert.match(judgeClaim(c, at(450, 399.9, 500)).reason, /but the p5 399\.9 kbps is not/);
  assert.equal(judgeClaim(c, at(300, 250, 350)).status, 'not reproduced');
});

test('count claims: the total (mean × n) against at_least / at_most', () => {
  const ex = byId('h.exchanges'); // 1000+
  const ok = judgeClaim(ex, at(500, 500, 500, 2, { mean: 500 }));
  assert.equal(ok.status, 'reproduced', 'exactly 1000');
  assert.equal(ok.reason, 'measured 1000 record exchanges in total (mean 500 × n=2), at least the paper\'s 1000+');
  const short = judgeClaim(ex, at(999, 999, 999, 1, { mean: 999 }));
  assert.equal(short.status, 'not reproduced');
  assert.match(short.reason, /999 record exchanges .* 1 short of the paper's 1000\+/);
  const reuse = byId('h.key_reuse');
  assert.equal(judgeClaim(reuse, at(0, 0, 0, 1500, { mean: 0 })).status, 'reproduced');
  const fail = judgeClaim(byId('h.decrypt_failures'), at(0, 0, 0, 1500, { mean: 1 / 1500 }));
  assert.equal(fail.status, 'not reproduced', 'one failure in 1500');
  assert.match(fail.reason, /^measured 1 decryption failure in total .*the paper claims none/);
  const noMean = judgeClaim(reuse, at(0));
  assert.equal(noMean.status, 'not measured');
  assert.match(noMean.reason, /no mean/);
});

test('no measurement: null or n=0 is "not measured" with the given reason', () => {
  const c = byId('t1.esp32-rsa.ram_pct');
  assert.deepEqual(judgeClaim(c, null, 'no esp32 in the rig'), { status: 'not measured', reason: 'no esp32 in the rig' });
  assert.deepEqual(judgeClaim(c, { n: 0, median: NaN, p5: NaN, p95: NaN }, 'all handshakes failed'), { status: 'not measured', reason: 'all handshakes failed' });
  assert.match(judgeClaim(c, null).reason, /no measurement of ram_pct for rsa2048 on esp32/);
  assert.match(judgeClaim(byId('t4.kyber.keygen_ms'), { n: 0, median: NaN, p5: NaN, p95: NaN }).reason, /keygen_ms for mlkem768-mldsa65 on esp32 over paper-5g \(n=0\)/);
  const unmeasurable: Claim = { ...value(1, { rel: 0.25 }), measure: null, not_measured_reason: 'no meter for this' };
  assert.deepEqual(judgeClaim(unmeasurable, at(1)), { status: 'not measured', reason: 'no meter for this' });
});

// ---- a broken claims file ---------------------------------------------------------------------------------------

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e.problems;
  }
  return assert.fail('expected a ConfigError');
}

test('a broken claims file names the file, the line and the path, and the fix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-claims-'));
  try {
    const good = readFileSync(FIXTURE, 'utf8');
    const lines = good.split('\n');
    const i = lines.findIndex((l) => l.trim() === 'value: 41.5');
    assert.ok(i > 0, 'the fixture has t1.esp32-rsa.ram_pct first');
    lines[i] = '    value: "41.5 percent"';
    const file = join(dir, 'claims.yaml');
    writeFileSync(file, lines.join('\n'));
    const p = problemsOf(() => loadClaims(file));
    assert.equal(p.length, 1, p.join('\n'));
    assert.equal(p[0]!.startsWith(`${file}:${i + 1}:12: claims[0].value: `), true, p[0]);
    // (the fix text for a wrong type comes from config/load.ts's fixFor)
    assert.match(p[0]!, /expected number, received string\. Fix: \S/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const one = (body: string) => problemsOf(() => parseClaims('c.yaml', `claims:\n${body}`));
  const base = '  - id: t4.a.b\n    ref: { table: 4, row: r, column: c }\n    value: 10\n';
  assert.match(one(`${base}    kind: valu\n`)[0]!, /^c\.yaml:5:11: claims\[0\]\.kind: .*Fix: use one of: "value", "upper_bound"/);
  const p = one(`${base}    kind: value\n    unit: "%"\n    measure: { metric: keygen_ms, suites: [x25519], board: esp32 }\n    tolerance: {}\n`);
  assert.ok(p.some((s) => /^c\.yaml:6:11: claims\[0\]\.unit: unit "%" does not match metric keygen_ms .*Fix: use unit: "ms"/.test(s)), p.join('\n'));
  assert.ok(p.some((s) => /^c\.yaml:7:14: claims\[0\]\.measure: a Table 4 claim needs the network profile.*Fix: add profile:/.test(s)), p.join('\n'));
  assert.ok(p.some((s) => /^c\.yaml:8:16: claims\[0\]\.tolerance: a value claim needs a tolerance/.test(s)), p.join('\n'));
  const m = one('  - id: t3.a.b\n    ref: { table: 3, row: r, column: c }\n    kind: mark\n    value: "Y"\n    measure: null\n');
  assert.ok(m.some((s) => /claims\[0\]\.value: .*Fix: use one of: "✓", "X"/.test(s)), m.join('\n'));
  assert.ok(m.some((s) => /claims\[0\]\.not_measured_reason: .*Fix: add the required key/.test(s)), m.join('\n'));
  const b = one('  - id: h.a\n    ref: { section: s, quote: q }\n    kind: upper_bound\n    value: 30\n    unit: ms\n    measure: null\n    not_measured_reason: x\n    tolerance: { bound: 3 }\n');
  assert.ok(b.some((s) => /claims\[0\]\.tolerance\.bound: bound 3 differs .*Fix: set bound: 30/.test(s)), b.join('\n'));
});
