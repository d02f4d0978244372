// npm run bench (part 2): the firmware's C ML-KEM / ML-DSA (on a virtual node, timed by the node's own clock
// through the `bench` command) against @noble/post-quantum in this process, every operation, one run.
// Medians of per-iteration times; ratio = noble median ÷ C median (how many times faster C is).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { NodeLink } from '../drivers/node.js';
import { VirtualNode } from '../virtual/node.js';
import { benchNode, opsOf } from '../pqc/bench-node.js';
import { PQC_ALGS, type PqcAlg } from '../pqc/kat.js';
import { summarize } from '../report/stats.js';
import { ROOT, controllerVersion, gitCommit } from '../paths.js';
import { cleanup } from '../cleanup.js';

const KEM = { 'ml-kem-512': ml_kem512, 'ml-kem-768': ml_kem768, 'ml-kem-1024': ml_kem1024 } as const;
const DSA = { 'ml-dsa-44': ml_dsa44, 'ml-dsa-65': ml_dsa65, 'ml-dsa-87': ml_dsa87 } as const;

/** Per-iteration µs of a noble operation; inputs are prepared outside the timed call, as on the node. */
function nobleTimes(alg: PqcAlg, op: string, n: number): number[] {
  const times: number[] = [];
  const time = (fn: () => unknown) => {
    const t = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t) / 1000);
  };
  if (alg.startsWith('ml-kem')) {
    const kem = KEM[alg as keyof typeof KEM];
    for (let i = 0; i < n; i++) {
      const seed = randomBytes(64);
      if (op === 'keygen') { time(() => kem.keygen(seed)); continue; }
      const { publicKey, secretKey } = kem.keygen(seed);
      if (op === 'encaps') { time(() => kem.encapsulate(publicKey)); continue; }
      const { cipherText } = kem.encapsulate(publicKey);
      time(() => kem.decapsulate(cipherText, secretKey));
    }
  } else {
    const dsa = DSA[alg as keyof typeof DSA];
    for (let i = 0; i < n; i++) {
      const seed = randomBytes(32);
      const msg = randomBytes(32);
      if (op === 'keygen') { time(() => dsa.keygen(seed)); continue; }
      const { publicKey, secretKey } = dsa.keygen(seed);
      if (op === 'sign') { time(() => dsa.sign(msg, secretKey)); continue; }
      const sig = dsa.sign(msg, secretKey);
      time(() => dsa.verify(sig, msg, publicKey));
    }
  }
  return times;
}

function compilerVersion(): string {
  try {
    return execFileSync('cc', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const N = Number(process.env.QSLAB_BENCH_PQC_N ?? 200);
  const vn = new VirtualNode({ name: 'bench-pqc', board: 'esp32', baud: 115200, pace: false });
  const path = await vn.start();
  const link = new NodeLink({ name: 'bench-pqc', path, baud: 115200 });
  await link.open();
  const hello = await link.connect();
  const rows: Record<string, unknown>[] = [];
  try {
    for (const alg of PQC_ALGS) {
      for (const op of opsOf(alg)) {
        const n = alg.startsWith('ml-dsa') && op !== 'verify' ? Math.max(20, Math.floor(N / 2)) : N;
        process.stderr.write(`bench: ${alg} ${op} × ${n} (C on the node, then noble)\n`);
        const c = await benchNode(link, alg, op, n);
        nobleTimes(alg, op, Math.min(5, n)); // warm the JIT
        const noble = summarize(nobleTimes(alg, op, n));
        rows.push({
          alg, op, n, cMedianUs: c.us.median, cMinUs: c.us.min, cMaxUs: c.us.max, cCyclesMedian: c.cycles.median,
          stackMax: c.stackMax, heapMax: c.heapMax, attempts: c.attempts, failed: c.failed,
          nobleMedianUs: noble.median, cOpsPerS: 1e6 / c.us.median, nobleOpsPerS: 1e6 / noble.median,
          ratio: noble.median / c.us.median,
        });
      }
    }
  } finally {
    await link.close();
    await vn.stop();
  }
  const head = ['alg', 'op', 'C µs (median)', 'C ops/s', 'noble µs', 'noble ops/s', 'C ÷ noble speed', 'C stack B'];
  const body = rows.map((r) => [String(r.alg), String(r.op), (r.cMedianUs as number).toFixed(1), (r.cOpsPerS as number).toFixed(0),
    (r.nobleMedianUs as number).toFixed(1), (r.nobleOpsPerS as number).toFixed(0), `${(r.ratio as number).toFixed(2)}×`, String(r.stackMax)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i < 2 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join('  ');
  process.stdout.write(`\n${[line(head), w.map((x) => '-'.repeat(x)).join('  '), ...body.map(line)].join('\n')}\n`);
  const pick = (alg: string, op: string) => rows.find((r) => r.alg === alg && r.op === op)!;
  const kem768 = (pick('ml-kem-768', 'encaps').nobleMedianUs as number) + (pick('ml-kem-768', 'decaps').nobleMedianUs as number);
  const kem768c = (pick('ml-kem-768', 'encaps').cMedianUs as number) + (pick('ml-kem-768', 'decaps').cMedianUs as number);
  const summary = {
    mlkem768EncapsDecapsRatio: kem768 / kem768c,
    mldsa65VerifyRatio: pick('ml-dsa-65', 'verify').ratio as number,
  };
  process.stdout.write(`\nML-KEM-768 encaps+decaps: C ${summary.mlkem768EncapsDecapsRatio.toFixed(2)}× faster than noble (target ≥ 5)\n`);
  process.stdout.write(`ML-DSA-65 verify: C ${summary.mldsa65VerifyRatio.toFixed(2)}× faster than noble (target ≥ 5)\n`);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'node_modules', '@noble', 'post-quantum', 'package.json'), 'utf8')) as { version: string };
  const result = {
    kind: 'qslab-bench-pqc',
    date: new Date().toISOString(),
    controller: { version: controllerVersion(), commit: gitCommit() },
    firmware: { fw: hello.fw, build: hello.build, compiler: compilerVersion(), flags: readFileSync(join(ROOT, 'firmware', 'build', 'flags.txt'), 'utf8').trim() },
    noble: { package: '@noble/post-quantum', version: pkg.version, node: process.version },
    machine: { cpus: cpus().length, model: cpus()[0]?.model },
    note: 'C timings from the virtual node (POSIX build on this host), node clock, inputs prepared outside the timed region; noble in the controller process',
    summary,
    rows,
  };
  const dir = join(ROOT, 'reports', 'bench');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `pqc-${result.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(dir, 'pqc-latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`results: ${file}\n`);
}

try {
  await main();
} finally {
  await cleanup.run();
}
