// One network namespace per virtual node (`qslab-<run>-<n>`) joined to the root namespace by a veth pair
// (host side `qs<hash>h`, node side `qs<hash>n`), addressed from a private /30 inside 10.213.0.0/16. No default
// route and no forwarding: a node can reach only the host side of its own veth, where the server listens.
import { createHash } from 'node:crypto';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { NetExec, checkNetns, checkRun, checkIfName } from './exec.js';
import { NetState, clear, listNetns } from './state.js';

export const NET_BASE = 0x0ad50000; // 10.213.0.0
export const NET_SLOTS = 16384;     // /30s in the /16

export interface NodeNet {
  run: string;
  index: number;
  ns: string;
  hostIf: string;
  nodeIf: string;
  /** Host side (root namespace): the server binds/advertises this. */
  hostAddr: string;
  /** Node side (inside ns). */
  nodeAddr: string;
  prefixLen: 30;
  slot: number;
}

function ipv4(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

export function netnsName(run: string, index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 9999) throw new RangeError(`node index ${index} out of range 0-9999`);
  return checkNetns(`qslab-${checkRun(run)}-${index}`);
}

/** veth names for a namespace: qs + first 10 hex digits of sha256(ns) + h|n (13 chars); the ifb uses i. */
export function vethNames(ns: string): { host: string; node: string; ifb: string } {
  const h = createHash('sha256').update(checkNetns(ns)).digest('hex').slice(0, 10);
  return { host: checkIfName(`qs${h}h`), node: checkIfName(`qs${h}n`), ifb: checkIfName(`qs${h}i`) };
}

/** The /30 of a slot: network+1 on the host side, network+2 on the node side. */
export function slotAddrs(slot: number): { hostAddr: string; nodeAddr: string; network: string } {
  if (!Number.isInteger(slot) || slot < 0 || slot >= NET_SLOTS) throw new RangeError(`address slot ${slot} out of range`);
  const net = NET_BASE + slot * 4;
  return { network: `${ipv4(net)}/30`, hostAddr: ipv4(net + 1), nodeAddr: ipv4(net + 2) };
}

/** Slots whose /30 is already on some interface of the root namespace. */
async function usedSlots(x: NetExec): Promise<Set<number>> {
  const r = await x.ip(['-o', '-4', 'addr', 'show'], { query: true, allowFail: true });
  const used = new Set<number>();
  for (const m of r.stdout.matchAll(/inet (10\.213\.(\d+)\.(\d+))\//g)) {
    const n = Number(m[2]) * 256 + Number(m[3]);
    used.add(Math.floor(n / 4));
  }
  return used;
}

export interface CreateNodeNetOptions {
  run: string;
  index: number;
  exec?: NetExec;
  state?: NetState;
  /** Fixed slot (default: the first free one from `index` on). */
  slot?: number;
}

/**
 * Makes the namespace, the veth pair, the addresses, and brings lo and both veth ends up. Idempotent per name:
 * a namespace of the same name left over from a dead run is removed first. Every effect is recorded first.
 */
export async function createNodeNet(o: CreateNodeNetOptions): Promise<NodeNet> {
  const x = o.exec ?? new NetExec();
  const st = o.state ?? new NetState(undefined, x.dryRun);
  const ns = netnsName(o.run, o.index);
  const { host, node } = vethNames(ns);
  if ((await listNetns(x)).includes(ns)) await destroyNodeNet({ ns, hostIf: host }, { exec: x, state: st });
  let slot = o.slot;
  if (slot === undefined) {
    const used = x.dryRun ? new Set<number>() : await usedSlots(x);
    slot = o.index % NET_SLOTS;
    for (let k = 0; used.has(slot) && k < NET_SLOTS; k++) slot = (slot + 1) % NET_SLOTS;
    if (used.has(slot)) throw new Error('no free /30 left in 10.213.0.0/16');
  }
  const { hostAddr, nodeAddr } = slotAddrs(slot);

  st.record({ kind: 'netns', name: ns }, o.run);
  await x.ip(['netns', 'add', ns]);
  st.record({ kind: 'link', name: host }, o.run);
  await x.ip(['link', 'add', host, 'type', 'veth', 'peer', 'name', node, 'netns', ns]);
  await x.ip(['addr', 'add', `${hostAddr}/30`, 'dev', host]);
  await x.ip(['link', 'set', host, 'up']);
  await x.ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  await x.ip(['-n', ns, 'addr', 'add', `${nodeAddr}/30`, 'dev', node]);
  await x.ip(['-n', ns, 'link', 'set', node, 'up']);
  return { run: o.run, index: o.index, ns, hostIf: host, nodeIf: node, hostAddr, nodeAddr, prefixLen: 30, slot };
}

/** Removes a node's namespace and host-side veth (the pair and everything inside the namespace go with them). */
export async function destroyNodeNet(n: Pick<NodeNet, 'ns' | 'hostIf'>, o: { exec?: NetExec; state?: NetState } = {}): Promise<void> {
  const x = o.exec ?? new NetExec();
  const st = o.state ?? new NetState(undefined, x.dryRun);
  checkNetns(n.ns);
  checkIfName(n.hostIf);
  await x.ip(['link', 'del', n.hostIf], { allowFail: true });
  await x.ip(['netns', 'del', n.ns], { allowFail: true });
  st.forgetMany((e) => {
    const f = e.effect;
    return (f.kind === 'netns' && f.name === n.ns) || (f.kind === 'link' && (f.name === n.hostIf || f.ns === n.ns))
      || ((f.kind === 'qdisc' || f.kind === 'nft') && (f.ns === n.ns || (f.kind === 'qdisc' && f.dev === n.hostIf)));
  });
}

/** Removes every namespace/veth/qdisc/nft table of a run (the record and the `qslab-<run>-` names). */
export async function destroyRun(run: string, o: { exec?: NetExec; state?: NetState } = {}): Promise<void> {
  await clear({ run: checkRun(run), includeLive: true, ...(o.exec ? { exec: o.exec } : {}), ...(o.state ? { state: o.state } : {}) });
}

/** argv that runs `argv` inside namespace `ns` (for spawn/execFile; never a shell string). */
export function nsExecArgv(ns: string, argv: readonly string[]): string[] {
  if (!argv.length) throw new Error('nsExecArgv: empty argv');
  return ['ip', 'netns', 'exec', checkNetns(ns), ...argv];
}

/** Spawns `argv` inside namespace `ns` (e.g. the node binary). */
export function spawnInNs(ns: string, argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const [cmd, ...args] = nsExecArgv(ns, argv);
  return spawn(cmd!, args, opts);
}

// ---- measurement helpers (net probe, tests): a Node child inside the namespace, the parent in the root namespace --

import { createServer, createConnection, isIP, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';

/** Test traffic may only go to loopback or qslab's own 10.213.0.0/16. */
export function checkTestTarget(host: string): string {
  const ok = host === 'localhost' || (isIP(host) === 4 && (/^127\./.test(host) || /^10\.213\./.test(host))) || host === '::1';
  if (!ok) throw new Error(`refusing to send test traffic to ${host}: only loopback and qslab namespaces (10.213.0.0/16) may carry it`);
  return host;
}

function nodeInNs(ns: string, code: string, args: string[]): ChildProcess {
  return spawnInNs(ns, [process.execPath, '-e', code, '--', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
}

async function firstLine(c: ChildProcess, timeoutMs = 10_000): Promise<string> {
  let buf = '';
  let err = '';
  c.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`child did not report within ${timeoutMs} ms: ${err}`)), timeoutMs);
    c.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) { clearTimeout(t); resolve(buf.slice(0, i)); }
    });
    c.once('exit', (code) => { clearTimeout(t); reject(new Error(`child exited (${code}) before reporting: ${err}`)); });
  });
}

export interface TcpThroughput { bytes: number; seconds: number; kbit: number }

/**
 * Bulk TCP from inside `ns` to a server on `hostAddr` (root namespace) for `seconds`; the rate is measured by the
 * receiver over the window after `warmupS` (skips the token-bucket burst and slow start). Payload bits only.
 */
export async function measureTcpThroughput(o: { ns: string; hostAddr: string; seconds?: number; warmupS?: number }): Promise<TcpThroughput> {
  checkTestTarget(o.hostAddr);
  const seconds = o.seconds ?? 3;
  const warm = o.warmupS ?? 0.5;
  let first = 0, bytesAtWarm = -1, tWarm = 0, bytes = 0, tLast = 0;
  const accepted = new Set<Socket>();
  const srv = createServer((s) => {
    accepted.add(s);
    s.on('data', (d: Buffer) => {
      const now = performance.now();
      if (!first) first = now;
      bytes += d.length;
      if (bytesAtWarm < 0 && now - first >= warm * 1000) { bytesAtWarm = bytes; tWarm = now; }
      tLast = now;
    });
    s.on('error', () => undefined);
  });
  srv.listen(0, o.hostAddr);
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  const code = `const [h,p,ms]=process.argv.slice(1);const s=require('net').connect(+p,h,()=>{const b=Buffer.alloc(65536);const w=()=>{while(s.write(b)){}};s.on('drain',w);w();setTimeout(()=>{s.destroy();process.exit(0)},+ms)});s.on('error',e=>{console.error(e.message);process.exit(1)})`;
  const c = nodeInNs(o.ns, code, [o.hostAddr, String(port), String(Math.round((seconds + warm) * 1000))]);
  await once(c, 'exit');
  // The client's FIN may still sit in a shaped queue when the namespace goes away: never wait for it.
  for (const s of accepted) s.destroy();
  srv.close();
  if (bytesAtWarm < 0) throw new Error('TCP throughput: too little data received');
  const s = (tLast - tWarm) / 1000;
  const b = bytes - bytesAtWarm;
  return { bytes: b, seconds: s, kbit: (b * 8) / s / 1000 };
}

/** TCP round trip time: an echo server inside `ns` on `nodeAddr`, `count` 1-byte ping-pongs from the root namespace. */
export async function measureTcpRtt(o: { ns: string; nodeAddr: string; count?: number }): Promise<{ medianMs: number; samplesMs: number[] }> {
  checkTestTarget(o.nodeAddr);
  const code = `const [h]=process.argv.slice(1);const srv=require('net').createServer(s=>{s.setNoDelay(true);s.pipe(s)});srv.listen(0,h,()=>console.log(srv.address().port));process.stdin.on('end',()=>process.exit(0));process.stdin.resume()`;
  const c = nodeInNs(o.ns, code, [o.nodeAddr]);
  try {
    const port = Number(await firstLine(c));
    const sock = createConnection({ host: o.nodeAddr, port, noDelay: true });
    await once(sock, 'connect');
    const samples: number[] = [];
    for (let i = 0; i < (o.count ?? 20); i++) {
      const t = performance.now();
      sock.write('x');
      await once(sock, 'data');
      samples.push(performance.now() - t);
    }
    sock.destroy();
    const sorted = [...samples].sort((a, b) => a - b);
    return { medianMs: sorted[Math.floor(sorted.length / 2)]!, samplesMs: samples };
  } finally {
    c.stdin?.end();
    c.kill();
  }
}

/** TCP connect RTT to host:port (loopback or qslab namespaces only) from the root namespace. */
export async function measureConnectRtt(host: string, port: number, count = 5): Promise<{ medianMs: number; samplesMs: number[] }> {
  checkTestTarget(host);
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    const s = createConnection({ host, port });
    await Promise.race([once(s, 'connect'), once(s, 'error').then(([e]) => { throw e as Error; })]);
    samples.push(performance.now() - t);
    s.destroy();
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)]!, samplesMs: samples };
}

/** UDP datagrams from the root namespace to a receiver inside `ns` on `nodeAddr`; realized loss = 1 - received/sent. */
export async function measureUdpLoss(o: { ns: string; nodeAddr: string; count?: number; size?: number }): Promise<{ sent: number; received: number; loss: number }> {
  checkTestTarget(o.nodeAddr);
  const count = o.count ?? 4000;
  const code = `const [h]=process.argv.slice(1);let n=0;const s=require('dgram').createSocket('udp4');s.on('message',()=>n++);s.bind(0,h,()=>console.log(s.address().port));process.stdin.on('end',()=>{console.log(n);process.exit(0)});process.stdin.resume()`;
  const c = nodeInNs(o.ns, code, [o.nodeAddr]);
  let out = '';
  const port = Number(await firstLine(c));
  c.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const sock = createSocket('udp4');
  const payload = Buffer.alloc(o.size ?? 200);
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => sock.send(payload, port, o.nodeAddr, (e) => (e ? reject(e) : resolve())));
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 2));
  }
  sock.close();
  await new Promise((r) => setTimeout(r, 300));
  c.stdin!.end();
  await once(c, 'exit');
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
  const received = Number(lines[lines.length - 1]);
  return { sent: count, received, loss: 1 - received / count };
}
