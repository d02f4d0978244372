// npm run bench (report): how long `qslab report` takes over a large store — 100,000 and 1,000,000 op records
// (target: ≤ 15 s for 1,000,000), measured in one run so the ratio is a like-for-like scaling figure. The records
// are synthetic but shaped like a paper-tables run (5 suites × 3 nodes × 4 profiles, lognormal step times,
// 1 % failures, QKD key ids) and made by a seeded generator, so every run benchmarks the same store. Phases timed:
// reading the store, analysis (summaries, claims), rendering + writing HTML/Markdown/CSV/SVG. The PDF (headless
// Chromium) is timed separately on the 1,000,000 report when Chromium is installed.
// Table on stdout, JSON under reports/bench/ (report-<timestamp>.json and report-latest.json).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../store/sqlite.js';
import type { OpRecord, RunInfo } from '../model.js';
import { buildReport, writeReport } from '../report/report.js';
import { findChromium, printPdf } from '../report/browser.js';
import { Rng } from '../qkd/rng.js';
import { ROOT, controllerVersion, gitCommit } from '../paths.js';

const SUITES = ['none', 'rsa2048', 'ecdhe-p256-ecdsa', 'mlkem768-mldsa65', 'qkd-mlkem768'];
const NODES = [['esp32-a', 'esp32'], ['esp32-b', 'esp32'], ['rpi4-a', 'rpi4']] as const;
const PROFILES = ['paper-iot-wifi', 'paper-lte', 'paper-5g', 'paper-5g-quantum-sim'];

function fill(path: string, runId: string, n: number): void {
  const store = openStore(path);
  const run: RunInfo = {
    id: runId, campaign: 'bench-report', campaignFile: 'bench', campaignText: `name: bench-report\n# ${n} synthetic op records\n`, rig: 'virtual', rigFile: 'rigs/virtual.yaml',
    rigText: 'name: virtual\n', controllerVersion: controllerVersion(), gitCommit: gitCommit(), seed: 1, virtual: true, virtualParts: ['synthetic op records (bench)'],
    startedAt: '2026-01-01T00:00:00.000Z', status: 'running',
  };
  store.beginRun(run);
  const rng = new Rng(20261127);
  const gauss = () => rng.normal();
  const logn = (median: number, sigma: number) => median * Math.exp(sigma * gauss());
  const cells = SUITES.flatMap((suite, si) => NODES.flatMap(([node, board]) => PROFILES.map((profile, pi) => ({ suite, si, node, board, profile, pi }))));
  for (const c of cells) {
    store.upsertCell({ runId, cellId: `${c.node}/${c.suite}/${c.profile}/256/r0`, node: c.node, board: c.board, buildHash: '0123456789abcdef', firmware: '1.0',
      suite: c.suite, profile: c.profile, aead: 'aes-256-gcm', records: 10, bytes: 256, refresh: 5, repetition: 0, ops: Math.ceil(n / cells.length), status: 'ok', attempts: 1 });
  }
  let batch: OpRecord[] = [];
  let key = 0;
  for (let i = 0; i < n; i++) {
    const c = cells[i % cells.length]!;
    const rtt = [8, 70, 24, 24][c.pi]!;
    const ok = rng.float() > 0.01;
    const kg = logn([0.01, 0.002, 0.13, 0.05, 0.05][c.si]!, 0.2) * 1000;
    const hs = logn(rtt * 2 + [0.2, 5, 1.8, 7.7, 8][c.si]!, 0.15) * 1000;
    const rec = logn(rtt * 10, 0.1) * 1000;
    batch.push({
      runId, cellId: `${c.node}/${c.suite}/${c.profile}/256/r0`, node: c.node, board: c.board, suite: c.suite, profile: c.profile, attempt: 1, index: i, ok,
      ...(ok ? {} : { err: 'E_NET', msg: 'connection reset' }),
      t: { connect: rtt * 500, keygen: kg, hs, rec, total: hs + rec }, hsTx: 1200, hsRx: 3400, recTx: 2600, recRx: 2600, recs: 10,
      heap: 20000 + Math.floor(rng.float() * 5000), stack: 6000, cpu: 20 + 60 * rng.float(), hostUs: hs * 0.3,
      ...(c.suite === 'qkd-mlkem768' ? { keyIds: [`k${key++}`, `k${key++}`] } : {}), ts: 1767225600000 + i,
    });
    if (batch.length === 5000) {
      store.addOps(batch);
      batch = [];
    }
  }
  if (batch.length) store.addOps(batch);
  store.endRun(runId, 'completed', '2026-01-01T01:00:00.000Z');
  store.close();
}

// QSLAB_BENCH_DIR keeps the stores (for profiling) instead of a temp dir removed at the end.
const dir = process.env.QSLAB_BENCH_DIR ?? mkdtempSync(join(tmpdir(), 'qslab-bench-report-'));
mkdirSync(dir, { recursive: true });
// readAnalyzeMs: buildReport alone (store read + analysis + claims); totalMs: writeReport, which does that again and
// renders and writes every file (what `qslab report` costs, PDF apart).
const rows: { records: number; fillMs: number; readAnalyzeMs: number; totalMs: number; pdfMs?: number }[] = [];
try {
  for (const n of [100_000, 1_000_000]) {
    const db = join(dir, `r${n}.db`);
    rmSync(db, { force: true });
    const t0 = performance.now();
    fill(db, `bench-${n}`, n);
    const fillMs = performance.now() - t0;
    const store = openStore(db);
    try {
      const a0 = performance.now();
      buildReport(store, `bench-${n}`);
      const readAnalyzeMs = performance.now() - a0;
      const w0 = performance.now();
      const r = await writeReport(store, `bench-${n}`, join(dir, 'out'), { pdf: 'never' });
      const totalMs = performance.now() - w0;
      const row: (typeof rows)[number] = { records: n, fillMs, readAnalyzeMs, totalMs };
      if (n === 1_000_000 && findChromium()) {
        const p0 = performance.now();
        await printPdf(r.html, join(dir, 'out', 'report.pdf'));
        row.pdfMs = performance.now() - p0;
      }
      rows.push(row);
    } finally {
      store.close();
    }
  }
} finally {
  if (!process.env.QSLAB_BENCH_DIR) rmSync(dir, { recursive: true, force: true });
}
const big = rows.find((r) => r.records === 1_000_000)!;
const small = rows.find((r) => r.records === 100_000)!;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
console.log('qslab report over a synthetic paper-tables store (5 suites × 3 nodes × 4 profiles)');
console.log('records    store fill   read+analyze   report written (read+analyze+render+write)   pdf');
for (const r of rows) console.log(`${String(r.records).padStart(9)}  ${s(r.fillMs).padStart(10)}  ${s(r.readAnalyzeMs).padStart(13)}  ${s(r.totalMs).padStart(12)}${' '.repeat(32)}${r.pdfMs ? s(r.pdfMs) : '–'}`);
console.log(`ratio 1,000,000 / 100,000 records: ${(big.totalMs / small.totalMs).toFixed(2)}× time for 10× records; target ≤ 15 s for 1,000,000: ${big.totalMs <= 15000 ? 'met' : 'MISSED'} (${s(big.totalMs)})`);
const result = { bench: 'report', controller: controllerVersion(), commit: gitCommit(), cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, rows, ratio: big.totalMs / small.totalMs, targetMs: 15000, met: big.totalMs <= 15000 };
const out = join(ROOT, 'reports', 'bench');
mkdirSync(out, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
writeFileSync(join(out, `report-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(join(out, 'report-latest.json'), `${JSON.stringify(result, null, 2)}\n`);
if (!result.met) process.exitCode = 1;
