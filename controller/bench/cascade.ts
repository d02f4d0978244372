// npm run bench (qkd): Cascade on a 10^6-bit block at 3 % QBER — time (target ≤ 1 s), leaked bits, efficiency
// f = leaked / (n·h(e)) (target ≤ 1.2), residual errors (must be 0). Median of 5 runs (fresh keys each);
// table on stdout, JSON under reports/bench/ (cascade-<timestamp>.json and cascade-latest.json).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { Rng } from '../qkd/rng.js';
import { randomBits, bernoulliPattern, xorInto, hamming } from '../qkd/bits.js';
import { cascade, defaultK1 } from '../qkd/cascade.js';
import { h2 } from '../qkd/model.js';
import { ROOT, controllerVersion, gitCommit } from '../paths.js';

const N = 1_000_000;
const Q = 0.03;
const RUNS = 5;

const runs: { ms: number; errors: number; leakedBits: number; f: number; residualErrors: number; searches: number }[] = [];
// warm-up (JIT) on a smaller block, not recorded
{
  const rng = new Rng(99);
  const a = randomBits(rng, 100_000);
  cascade(a, xorInto(bernoulliPattern(rng, 100_000, Q), a), 100_000, { qber: Q, seed: 1 });
}
for (let i = 0; i < RUNS; i++) {
  const rng = new Rng(1000 + i);
  const alice = randomBits(rng, N);
  const bob = xorInto(bernoulliPattern(rng, N, Q), alice);
  const errors = hamming(alice, bob);
  const t0 = process.hrtime.bigint();
  const r = cascade(alice, bob, N, { qber: Q, seed: 2000 + i });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  runs.push({ ms, errors, leakedBits: r.leakedBits, f: r.leakedBits / (N * h2(errors / N)), residualErrors: hamming(alice, r.corrected), searches: r.searches });
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const summary = {
  n: N, qber: Q, passes: 4, k1: defaultK1(Q), runs: RUNS,
  medianMs: med(runs.map((r) => r.ms)), maxMs: Math.max(...runs.map((r) => r.ms)),
  medianLeakedBits: med(runs.map((r) => r.leakedBits)), medianF: med(runs.map((r) => r.f)), maxF: Math.max(...runs.map((r) => r.f)),
  residualErrors: runs.reduce((s, r) => s + r.residualErrors, 0),
  targets: { ms: 1000, f: 1.2, residualErrors: 0 },
};
const ok = summary.medianMs <= 1000 && summary.maxF <= 1.2 && summary.residualErrors === 0;
process.stdout.write(`Cascade, n = 10^6 bits, QBER 3 %, k1 = ${summary.k1}, 4 passes, ${RUNS} runs\n`);
process.stdout.write(` run      ms  errors  leaked      f  residual\n`);
runs.forEach((r, i) => process.stdout.write(`${String(i + 1).padStart(4)}  ${r.ms.toFixed(0).padStart(6)}  ${String(r.errors).padStart(6)}  ${String(r.leakedBits).padStart(6)}  ${r.f.toFixed(4)}  ${String(r.residualErrors).padStart(8)}\n`));
process.stdout.write(`median ${summary.medianMs.toFixed(0)} ms (target ≤ 1000), f ${summary.medianF.toFixed(4)} (max ${summary.maxF.toFixed(4)}, target ≤ 1.2), residual errors ${summary.residualErrors} (target 0): ${ok ? 'OK' : 'MISSED'}\n`);
const result = {
  kind: 'qslab-bench-cascade',
  date: new Date().toISOString(),
  controller: { version: controllerVersion(), commit: gitCommit() },
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  summary,
  ok,
  runs,
};
const dir = join(ROOT, 'reports', 'bench');
mkdirSync(dir, { recursive: true });
const file = join(dir, `cascade-${result.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(join(dir, 'cascade-latest.json'), `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`results: ${file}\n`);
if (!ok) process.exitCode = 1;
