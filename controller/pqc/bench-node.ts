// pqm4-style microbenchmark over the protocol: the node runs one operation N times (`bench` command) and streams
// raw per-iteration figures; statistics are computed here from those raw runs.
import { z } from 'zod';
import type { NodeLink } from '../drivers/node.js';
import { summarize, type Summary } from '../report/stats.js';
import { PQC_ALGS, type PqcAlg } from './kat.js';

export const BENCH_OPS: Record<'kem' | 'dsa', readonly string[]> = {
  kem: ['keygen', 'encaps', 'decaps'],
  dsa: ['keygen', 'sign', 'verify'],
};

export function opsOf(alg: PqcAlg): readonly string[] {
  return alg.startsWith('ml-kem') ? BENCH_OPS.kem : BENCH_OPS.dsa;
}

const benchEvent = z.object({
  i: z.number().int().min(0),
  ok: z.boolean(),
  err: z.string().optional(),
  ns: z.number().min(0),
  cycles: z.number().min(0),
  stack: z.number().int().min(0),
  heap: z.number().int().min(0),
  attempts: z.number().int().min(0).optional(),
});

export interface BenchRow {
  alg: PqcAlg;
  op: string;
  n: number;
  failed: number;
  us: Summary;
  cycles: Summary;
  stackMax: number;
  heapMax: number;
  attempts?: { min: number; avg: number; max: number };
  raw: { ns: number[]; cycles: number[] };
}

export async function benchNode(link: NodeLink, alg: PqcAlg, op: string, n: number, msgBytes = 32): Promise<BenchRow> {
  if (!PQC_ALGS.includes(alg)) throw new Error(`unknown algorithm ${alg}`);
  const ns: number[] = [];
  const cycles: number[] = [];
  const stacks: number[] = [];
  const heaps: number[] = [];
  const attempts: number[] = [];
  let failed = 0;
  await link.request('bench', { alg, op, n, msg: msgBytes }, {
    idle: true, timeoutMs: 30000,
    onEvent: (ev) => {
      const p = benchEvent.safeParse(ev);
      if (!p.success || !p.data.ok) {
        failed++;
        return;
      }
      ns.push(p.data.ns);
      cycles.push(p.data.cycles);
      stacks.push(p.data.stack);
      heaps.push(p.data.heap);
      if (p.data.attempts !== undefined) attempts.push(p.data.attempts);
    },
  });
  const row: BenchRow = {
    alg, op, n, failed,
    us: summarize(ns.map((v) => v / 1000)), cycles: summarize(cycles),
    stackMax: Math.max(0, ...stacks), heapMax: Math.max(0, ...heaps), raw: { ns, cycles },
  };
  if (attempts.length) row.attempts = { min: Math.min(...attempts), avg: attempts.reduce((a, b) => a + b, 0) / attempts.length, max: Math.max(...attempts) };
  return row;
}

const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '–');
const k = (v: number) => (Number.isFinite(v) ? (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(0)) : '–');

export function formatBenchTable(rows: BenchRow[]): string {
  const head = ['alg', 'op', 'n', 'cycles min', 'median', 'max', 'µs min', 'median', 'avg', 'max', 'stack B', 'heap B', 'attempts min/avg/max'];
  const body = rows.map((r) => [
    r.alg, r.op, String(r.n - r.failed) + (r.failed ? ` (${r.failed} failed)` : ''),
    k(r.cycles.min), k(r.cycles.median), k(r.cycles.max), f1(r.us.min), f1(r.us.median), f1(r.us.mean), f1(r.us.max),
    String(r.stackMax), String(r.heapMax), r.attempts ? `${r.attempts.min}/${r.attempts.avg.toFixed(2)}/${r.attempts.max}` : '',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i < 2 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join('  ');
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...body.map(line)].join('\n');
}
