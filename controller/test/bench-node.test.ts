// The node's `bench` command on a virtual node: raw per-iteration figures for every ML-KEM / ML-DSA operation,
// stack budgets held (ML-KEM-768 ≤ 16 KB, ML-DSA-65 ≤ 64 KB per operation), arguments validated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeLink, LinkError } from '../drivers/node.js';
import { VirtualNode } from '../virtual/node.js';
import { benchNode, opsOf, formatBenchTable, type BenchRow } from '../pqc/bench-node.js';
import { PQC_ALGS } from '../pqc/kat.js';

test('bench: every ML-KEM / ML-DSA operation on the node, with stack budgets', async () => {
  const vn = new VirtualNode({ name: 'bench-test', board: 'esp32', baud: 115200, pace: false });
  const link = new NodeLink({ name: 'bench-test', path: await vn.start(), baud: 115200 });
  await link.open();
  try {
    await link.connect();
    const rows: BenchRow[] = [];
    for (const alg of PQC_ALGS) for (const op of opsOf(alg)) rows.push(await benchNode(link, alg, op, 12));
    process.stderr.write(`${formatBenchTable(rows)}\n`);
    for (const r of rows) {
      assert.equal(r.failed, 0, `${r.alg} ${r.op} failed`);
      assert.equal(r.us.n, 12);
      assert.ok(r.us.min > 0 && r.us.median >= r.us.min && r.us.max >= r.us.median);
      assert.ok(r.stackMax > 512, `${r.alg} ${r.op}: stack high-water measured (${r.stackMax})`);
      assert.equal(r.heapMax, 0, `${r.alg} ${r.op}: the PQC code allocates no heap`);
      if (process.arch === 'x64' || process.arch === 'arm64') assert.ok(r.cycles.median > 0, 'cycle counter read');
      if (r.alg === 'ml-kem-768') assert.ok(r.stackMax <= 16 * 1024, `ML-KEM-768 ${r.op}: ${r.stackMax} B of stack > 16 KB`);
      if (r.alg === 'ml-dsa-65') assert.ok(r.stackMax <= 64 * 1024, `ML-DSA-65 ${r.op}: ${r.stackMax} B of stack > 64 KB`);
      if (r.op === 'sign') assert.ok(r.attempts && r.attempts.min >= 1 && r.attempts.max >= r.attempts.min);
    }
    // Stack painting measures each operation alone: input preparation (signing, for verify) must not leak in.
    for (const alg of ['ml-dsa-44', 'ml-dsa-65', 'ml-dsa-87']) {
      const sign = rows.find((r) => r.alg === alg && r.op === 'sign')!;
      const verify = rows.find((r) => r.alg === alg && r.op === 'verify')!;
      assert.ok(verify.stackMax < sign.stackMax * 0.8, `${alg}: verify ${verify.stackMax} B vs sign ${sign.stackMax} B`);
    }
    await assert.rejects(link.request('bench', { alg: 'ml-kem-999', op: 'keygen' }), (e: unknown) => e instanceof LinkError && e.code === 'E_ARGS');
    await assert.rejects(link.request('bench', { alg: 'ml-kem-768', op: 'sign' }), (e: unknown) => e instanceof LinkError && e.code === 'E_ARGS');
  } finally {
    await link.close();
    await vn.stop();
  }
});
