// npm run bench: controller overhead and serial round trips, measured side by side in one run.
//   overhead ratio = per node, wall time of its hs bursts (command sent → response received)
//                    ÷ Σ node-reported handshake time (t.total of each op, node clock)
//   serial no-op round trip = ping → response over the pty, controller clock.
// Results: table on stdout, JSON under reports/bench/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, hostname } from 'node:os';
import { NodeLink } from '../drivers/node.js';
import { VirtualNode } from '../virtual/node.js';
import { HandshakeServer, generateServerKeys, type ServerKeys } from '../handshake/server.js';
import { summarize } from '../report/stats.js';
import { ROOT, controllerVersion, gitCommit } from '../paths.js';
import { cleanup } from '../cleanup.js';

interface Node { vn: VirtualNode; link: NodeLink }

async function startNodes(n: number, pace: boolean, tag: string): Promise<Node[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const vn = new VirtualNode({ name: `bench-${tag}-${i}`, board: 'esp32', baud: 115200, pace });
    const path = await vn.start();
    const link = new NodeLink({ name: vn.opts.name, path, baud: 115200 });
    await link.open();
    await link.connect();
    return { vn, link };
  }));
}

async function stopNodes(nodes: Node[]): Promise<void> {
  await Promise.all(nodes.map(async (n) => { await n.link.close(); await n.vn.stop(); }));
}

interface OverheadResult {
  nodes: number;
  handshakesPerNode: number;
  burst: number;
  pace: boolean;
  perNode: { node: string; wallMs: number; nodeHsMs: number; ratio: number; failed: number }[];
  ratioMax: number;
  ratioMedian: number;
  handshakesPerSecond: number;
  hsMedianUs: number;
}

async function overhead(keys: ServerKeys, nNodes: number, total: number, burst: number, pace: boolean): Promise<OverheadResult> {
  const srv = new HandshakeServer({ keys });
  const { port } = await srv.start();
  const nodes = await startNodes(nNodes, pace, `o${nNodes}${pace ? 'p' : ''}`);
  const pin = srv.pin('x25519');
  const hsTimes: number[] = [];
  const t0 = process.hrtime.bigint();
  try {
    const perNode = await Promise.all(nodes.map(async ({ link, vn }) => {
      let wallNs = 0n;
      let nodeUs = 0;
      let failed = 0;
      for (let done = 0; done < total; done += burst) {
        const n = Math.min(burst, total - done);
        const start = process.hrtime.bigint();
        await link.request('hs', { suite: 'x25519', host: '127.0.0.1', port, n, records: 0, bytes: 16, aead: 'aes-256-gcm', refresh: 0, pin }, {
          idle: true, timeoutMs: 30000,
          onEvent: (ev) => {
            const t = ev.t as Record<string, number> | undefined;
            if (ev.ok !== true) failed++;
            if (t?.total !== undefined) {
              nodeUs += t.total;
              hsTimes.push(t.total);
            }
          },
        });
        wallNs += process.hrtime.bigint() - start;
      }
      const wallMs = Number(wallNs) / 1e6;
      return { node: vn.opts.name, wallMs, nodeHsMs: nodeUs / 1000, ratio: wallMs / (nodeUs / 1000), failed };
    }));
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    const ratios = summarize(perNode.map((p) => p.ratio));
    return {
      nodes: nNodes, handshakesPerNode: total, burst, pace, perNode,
      ratioMax: ratios.max, ratioMedian: ratios.median,
      handshakesPerSecond: (nNodes * total) / elapsed, hsMedianUs: summarize(hsTimes).median,
    };
  } finally {
    await stopNodes(nodes);
    await srv.close();
  }
}

async function pingRtt(n: number, pace: boolean) {
  const [node] = await startNodes(1, pace, `ping${pace ? 'p' : ''}`);
  const rtts: number[] = [];
  try {
    for (let i = 0; i < 50; i++) await node!.link.request('ping'); // warm-up
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      await node!.link.request('ping');
      rtts.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  } finally {
    await stopNodes([node!]);
  }
  const s = summarize(rtts);
  const sorted = [...rtts].sort((a, b) => a - b);
  return { n, pace, medianMs: s.median, p99Ms: sorted[Math.floor(0.99 * (sorted.length - 1))]!, maxMs: s.max };
}

async function main(): Promise<void> {
  const keys = generateServerKeys();
  const HS = Number(process.env.QSLAB_BENCH_HANDSHAKES ?? 1000);
  const BURST = Number(process.env.QSLAB_BENCH_BURST ?? 100);
  process.stderr.write(`bench: ${HS} x25519 handshakes per node in bursts of ${BURST}; unpaced ptys unless noted\n`);
  const one = await overhead(keys, 1, HS, BURST, false);
  process.stderr.write(`bench: 1 node done (ratio ${one.ratioMax.toFixed(3)})\n`);
  const eight = await overhead(keys, 8, HS, BURST, false);
  process.stderr.write(`bench: 8 nodes done (max ratio ${eight.ratioMax.toFixed(3)})\n`);
  const onePaced = await overhead(keys, 1, Math.min(HS, 300), BURST, true);
  const ping = await pingRtt(2000, false);
  const pingPaced = await pingRtt(300, true);

  const rows: [string, string, string][] = [
    ['overhead ratio, 1 node (max)', one.ratioMax.toFixed(3), '≤ 1.05'],
    ['overhead ratio, 8 nodes (max over nodes)', eight.ratioMax.toFixed(3), '≤ 1.10'],
    ['overhead ratio, 8 nodes (median)', eight.ratioMedian.toFixed(3), ''],
    ['overhead ratio, 1 node, paced 115200 baud', onePaced.ratioMax.toFixed(3), 'informative'],
    ['x25519 handshake median (node clock), 1 node', `${one.hsMedianUs.toFixed(1)} µs`, ''],
    ['x25519 handshake median (node clock), 8 nodes', `${eight.hsMedianUs.toFixed(1)} µs`, ''],
    ['handshakes/s, 1 node / 8 nodes', `${one.handshakesPerSecond.toFixed(0)} / ${eight.handshakesPerSecond.toFixed(0)}`, ''],
    ['serial no-op RTT median (pty)', `${ping.medianMs.toFixed(3)} ms`, '≤ 1 ms'],
    ['serial no-op RTT p99 (pty)', `${ping.p99Ms.toFixed(3)} ms`, '≤ 5 ms'],
    ['serial no-op RTT median, paced 115200', `${pingPaced.medianMs.toFixed(3)} ms`, 'informative'],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(`\n${'measure'.padEnd(w)}  ${'value'.padStart(16)}  target\n${'-'.repeat(w + 30)}\n`);
  for (const [k, v, t] of rows) process.stdout.write(`${k.padEnd(w)}  ${v.padStart(16)}  ${t}\n`);

  const result = {
    kind: 'qslab-bench-overhead',
    date: new Date().toISOString(),
    controller: { version: controllerVersion(), commit: gitCommit() },
    machine: { hostname: hostname(), cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    pass: { oneNode: one.ratioMax <= 1.05, eightNodes: eight.ratioMax <= 1.10, pingMedian: ping.medianMs <= 1, pingP99: ping.p99Ms <= 5 },
    overhead: { one, eight, onePaced },
    ping: { unpaced: ping, paced: pingPaced },
  };
  const dir = join(ROOT, 'reports', 'bench');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `overhead-${result.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(dir, 'overhead-latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`\nresults: ${file}\n`);
}

try {
  await main();
} finally {
  await cleanup.run();
}
