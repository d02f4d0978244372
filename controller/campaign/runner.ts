// Campaign runner: expands a campaign into cells, runs each node's cells in a seeded random order (nodes in
// parallel), records every operation, and keeps partial results when stopped.
import { createHash, randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { z } from 'zod';
import type { Campaign } from '../config/campaign.js';
import type { Rig } from '../config/rig.js';
import type { CellInfo, NetDirection, NetFigures, OpRecord, QkdSweepPoint, RunInfo, RunStatus, Store } from '../model.js';
import { LinkError } from '../drivers/node.js';
import { bringUpAll, recover, shutDown, type ReadyNode } from '../rig/strategy.js';
import { Progress } from '../progress.js';
import { controllerVersion, gitCommit, resolveUserPath, ROOT } from '../paths.js';
import { cleanup } from '../cleanup.js';
import { HandshakeServer, generateServerKeysAsync, loadOrCreateServerKeys, type ServerOp } from '../handshake/server.js';
import { FirmwareCBackend, nobleBackend, type PqcBackend } from '../handshake/pqc-backend.js';
import { PQ_SUITES, QKD_SUITES } from '../handshake/wire.js';
import type { ServerKeys } from '../handshake/keys.js';
import { startKmePair, type KmePair } from '../kme/serve.js';
import { QkdSupply, PoolEmpty, MASTER_SAE, saeOf, keysPerOp, opsPerBatch, type Provisioned } from './qkd-supply.js';
import { join } from 'node:path';
import { ImpairmentRelay, type RelayStats } from '../net/relay.js';
import { loadProfiles, makeProfile, type LinkProfile } from '../net/profiles.js';
import { NodeNetworks, kernelShapingAvailable, realizedKernelLoss, type VethCounters } from '../net/node-net.js';
import { haveTool } from '../net/exec.js';
import { TcpInfoSampler, namespaceTcpCounters, diffCounters, type TcpCounters } from '../net/tcpinfo.js';
import { summarize } from '../report/stats.js';
import { PowerBench } from '../power/bench.js';
import { baselineSeconds, measureBurst, opsForTarget, type BurstAnswer } from '../power/window.js';
import type { VirtualNode } from '../virtual/node.js';
import { ConfigError } from '../config/load.js';
import { simulateLink } from '../qkd/simulate.js';
import type { DirectionStats } from '../net/relay-model.js';

/**
 * Where records go besides the local store (InfluxDB). A sink failing never stops a run. Network figures and the
 * QKD sweep are optional for a sink (the local store always has them).
 */
export type Sink = Pick<Store, 'beginRun' | 'endRun' | 'upsertCell' | 'addOps' | 'addEvent' | 'addEnergy' | 'addTrace'> &
  Partial<Pick<Store, 'addNet' | 'addQkdSweep'>>;

/** What the runner records through: the local store's writers (a sink's optional ones included). */
export type Recorder = Required<Sink>;

/** The local store first (it is the record of truth), then every sink. */
function tee(store: Store, sinks: Sink[]): Recorder {
  const each = <K extends keyof Recorder>(k: K, ...args: Parameters<Recorder[K]>) => {
    (store[k] as (...a: Parameters<Recorder[K]>) => void)(...args);
    for (const s of sinks) {
      const f = s[k] as ((...a: Parameters<Recorder[K]>) => void) | undefined;
      if (!f) continue;
      try {
        f.apply(s, args);
      } catch (e) {
        process.stderr.write(`sink ${k}: ${(e as Error).message}\n`);
      }
    }
  };
  return {
    beginRun: (r) => each('beginRun', r),
    endRun: (id, st, at) => each('endRun', id, st, at),
    upsertCell: (c) => each('upsertCell', c),
    addOps: (ops) => each('addOps', ops),
    addEvent: (ev) => each('addEvent', ev),
    addEnergy: (w) => each('addEnergy', w),
    addTrace: (tr) => each('addTrace', tr),
    addNet: (n) => each('addNet', n),
    addQkdSweep: (p) => each('addQkdSweep', p),
  };
}

export interface RunHooks {
  onReady?(nodes: ReadyNode[]): void;
  onOp?(op: OpRecord, node: ReadyNode): void;
}

export interface RunOptions {
  campaign: { file: string; text: string; value: Campaign };
  rig: { file: string; text: string; value: Rig };
  store: Store;
  sinks?: Sink[];
  signal?: AbortSignal;
  quiet?: boolean;
  hooks?: RunHooks;
}

export interface RunSummary {
  runId: string;
  status: RunStatus;
  durationS: number;
  nodes: { name: string; board: string; build: string; fw: string; ok: boolean; error?: string }[];
  cells: { total: number; ok: number; failed: number; skipped: number };
  ops: { total: number; ok: number; failed: number };
  failures: { cellId: string; error: string }[];
  checks: { name: string; ok: boolean; detail: string }[];
}

/** mulberry32: small, seeded, good enough to order cells reproducibly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(items: T[], rnd: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export interface PlannedCell {
  cellId: string;
  node: string;
  suite: string;
  profile: string;
  bytes: number;
  repetition: number;
}

/** suites × nodes × profiles × payloads × repetitions, in a seeded random interleaving. */
export function planCells(c: Campaign, nodeNames: string[]): PlannedCell[] {
  const payloads = Array.isArray(c.records.bytes) ? c.records.bytes : [c.records.bytes];
  const cells: PlannedCell[] = [];
  for (let rep = 1; rep <= c.repetitions; rep++)
    for (const suite of c.suites)
      for (const node of nodeNames)
        for (const profile of c.profiles)
          for (const bytes of payloads) cells.push({ cellId: `${node}/${suite}/${profile}/${bytes}B/r${rep}`, node, suite, profile, bytes, repetition: rep });
  return shuffle(cells, seededRandom(c.seed));
}

const opEventSchema = z.object({
  i: z.number().int().min(0),
  ok: z.boolean(),
  err: z.string().max(64).optional(),
  msg: z.string().max(300).optional(),
  cr: z.string().regex(/^[0-9a-f]{16}$/).optional(),
  t: z.record(z.string(), z.number().finite().min(0)).default({}),
  hs_tx: z.number().int().min(0).default(0),
  hs_rx: z.number().int().min(0).default(0),
  rec_tx: z.number().int().min(0).default(0),
  rec_rx: z.number().int().min(0).default(0),
  recs: z.number().int().min(0).default(0),
  heap: z.number().int().min(0).default(0),
  stack: z.number().int().min(0).default(0),
  cpu: z.number().min(0).max(1000).default(0),
});

function runIdFor(campaign: string): string {
  const ts = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${ts}-${campaign}-${randomBytes(2).toString('hex')}`;
}

export async function runCampaign(o: RunOptions): Promise<RunSummary> {
  const c = o.campaign.value;
  const rig = o.rig.value;
  const t0 = Date.now();
  const wanted = c.nodes === 'all' ? rig.nodes.map((n) => n.name) : c.nodes;
  const unknown = wanted.filter((n) => !rig.nodes.some((r) => r.name === n));
  if (unknown.length) throw new Error(`${o.campaign.file}: nodes: ${unknown.join(', ')} not in rig ${o.rig.file} (it has ${rig.nodes.map((n) => n.name).join(', ')})`);

  if (c.require_build !== undefined && typeof c.require_build !== 'string') {
    const unknownReq = Object.keys(c.require_build).filter((k) => !wanted.includes(k));
    if (unknownReq.length) throw new ConfigError(o.campaign.file, [`require_build: ${unknownReq.join(', ')} not among this campaign's nodes (${wanted.join(', ')}). Fix: use node names from the rig`]);
  }
  const shaped = c.profiles.filter((p) => p !== 'loopback');
  let profiles = new Map<string, LinkProfile>();
  if (shaped.length) {
    profiles = loadProfiles(resolveUserPath(c.profiles_file));
    const problems: string[] = [];
    for (const m of shaped) {
      if (profiles.has(m)) continue;
      const sched = c.schedules[m];
      if (!sched) problems.push(`profiles: "${m}" is neither in ${c.profiles_file} nor a schedule of this campaign. Fix: use one of ${[...profiles.keys()].join(', ')}, a name under schedules:, or loopback`);
      else for (const [i, ph] of sched.phases.entries()) if (!profiles.has(ph.profile)) problems.push(`schedules.${m}.phases[${i}].profile: "${ph.profile}" is not in ${c.profiles_file}`);
    }
    if (problems.length) throw new ConfigError(o.campaign.file, problems);
  }
  const virtualNames = rig.nodes.filter((n) => wanted.includes(n.name) && n.kind === 'virtual').map((n) => n.name);
  // Kernel shaping (root): each virtual node in its own namespace + veth, shaped by tc/nft, the relay covering the
  // rest. Only for campaigns that shape at all: loopback-only runs keep the nodes on loopback.
  let kernel = false;
  if (shaped.length && virtualNames.length && c.shaper !== 'relay') {
    const can = kernelShapingAvailable() && haveTool('ip') && haveTool('tc') && haveTool('nft');
    if (c.shaper === 'kernel' && !can) {
      throw new ConfigError(o.campaign.file, ['shaper: "kernel" needs root (CAP_NET_ADMIN) and ip, tc and nft (iproute2, nftables). Fix: run as root, or use shaper: relay (or auto)']);
    }
    kernel = can;
  }
  const virtualParts: string[] = [];
  if (virtualNames.length) {
    virtualParts.push('nodes: firmware POSIX build on pseudo-terminals (host CPU, not the board)',
      !shaped.length ? 'data plane: loopback TCP, no impairment'
        : kernel ? `data plane: each virtual node in its own network namespace with a veth pair; profiles ${shaped.join(', ')} shaped by the kernel (tc, nftables) with the userspace relay covering what this kernel lacks`
          : `data plane: loopback TCP; profiles ${shaped.join(', ')} emulated by the userspace impairment relay`);
  }
  if (c.suites.some((s) => (QKD_SUITES as readonly string[]).includes(s))) {
    virtualParts.push('QKD: simulated quantum link (controller/qkd) feeding emulated ETSI GS QKD 014 key managers');
  }
  if (c.qkd.sweep) virtualParts.push('QKD sweep: simulated links (controller/qkd simulateLink), not a physical QKD system');
  const run: RunInfo = {
    id: runIdFor(c.name),
    campaign: c.name,
    campaignFile: o.campaign.file,
    campaignText: o.campaign.text,
    rig: rig.name,
    rigFile: o.rig.file,
    rigText: o.rig.text,
    controllerVersion: controllerVersion(),
    gitCommit: gitCommit(),
    seed: c.seed,
    virtual: virtualParts.length > 0,
    virtualParts,
    startedAt: new Date(t0).toISOString(),
    status: 'running',
  };
  const rec = tee(o.store, o.sinks ?? []);
  rec.beginRun(run);
  const log = (s: string) => { if (!o.quiet) process.stderr.write(`${s}\n`); };
  log(`run ${run.id}: campaign ${c.name} (${basename(o.campaign.file)}) on rig ${rig.name}`);

  const summary: RunSummary = {
    runId: run.id, status: 'running', durationS: 0, nodes: [],
    cells: { total: 0, ok: 0, failed: 0, skipped: 0 }, ops: { total: 0, ok: 0, failed: 0 }, failures: [], checks: [],
  };
  let nodes: ReadyNode[] = [];
  let server: HandshakeServer | undefined;
  let pqc: PqcBackend | undefined;
  let unregisterServer: () => void = () => {};
  let kme: KmePair | undefined;
  let qkd: QkdSupply | undefined;
  let nets: NodeNetworks | undefined;
  let power: PowerBench | undefined;
  try {
    // The QKD link sweep runs first, once per run, before any node is brought up (it needs none).
    if (c.qkd.sweep) await runQkdSweep(c, run.id, rec, { ...(o.signal ? { signal: o.signal } : {}), quiet: !!o.quiet });
    if (PowerBench.wanted(rig)) {
      power = await PowerBench.open(rig, { devDir: join(ROOT, '.qslab', 'dev', run.id), seed: c.seed, log });
      for (const line of power.setup) rec.addEvent({ runId: run.id, ts: Date.now(), kind: 'setup', detail: `power: ${line}` });
    }
    if (kernel) {
      nets = new NodeNetworks(`r${createHash('sha256').update(run.id).digest('hex').slice(0, 10)}`);
      const caps = await nets.init();
      for (const name of virtualNames) await nets.add(name);
      rec.addEvent({
        runId: run.id, ts: Date.now(), kind: 'setup',
        detail: `network shaping: kernel (netem ${caps.netem ? 'present' : 'absent'}, tbf ${caps.tbf ? 'yes' : 'no'}, nftables ${caps.nft ? 'yes' : 'no'}); namespaces ${[...nets.nets.entries()].map(([k, v]) => `${k}=${v.ns} (${v.nodeAddr} → ${v.hostAddr})`).join(', ')}`,
      });
    }
    // A lab keeps its server identity (rig server.keys); otherwise a fresh one per run.
    const keys = rig.server.keys ? loadOrCreateServerKeys(resolveUserPath(rig.server.keys)) : await generateServerKeysAsync();
    pqc = rig.server.pqc === 'noble' ? nobleBackend : new FirmwareCBackend(2);
    // The plaintext baseline suite is only accepted by a server started for a campaign that lists it.
    server = new HandshakeServer({ host: rig.server.bind, port: rig.server.port, keys, pqc, allowPlaintext: c.suites.includes('none') });
    rec.addEvent({
      runId: run.id, ts: Date.now(), kind: 'setup',
      detail: `handshake server: classical crypto by Node's OpenSSL; ML-KEM/ML-DSA by ${pqc.name === 'noble' ? '@noble/post-quantum in the controller' : "the firmware's C library in 2 qslab-pqc worker processes"}`,
    });
    const serverOps = new Map<string, ServerOp>();
    server.onOp((op) => {
      if (op.cr) serverOps.set(op.cr, op);
    });
    const { port } = await server.start();
    const srv = server;
    unregisterServer = cleanup.add('handshake server', () => srv.close());
    if (c.suites.some((s) => (QKD_SUITES as readonly string[]).includes(s))) {
      kme = await startKmePair({
        dir: join(ROOT, '.qslab', 'kme'), masterSae: MASTER_SAE, slaveSaes: wanted.map(saeOf), keySize: c.qkd.key_bits,
        ...(c.qkd.rate_bps ? { rateBps: c.qkd.rate_bps } : { link: { protocol: c.qkd.link?.protocol ?? 'bb84', distanceKm: c.qkd.link?.distance_km ?? 10 } }),
      });
      qkd = new QkdSupply(kme, c.qkd.key_bits);
      rec.addEvent({
        runId: run.id, ts: Date.now(), kind: 'setup',
        detail: `QKD: ETSI GS QKD 014 key manager pair (HTTPS, mutual TLS) fed by an emulated ${c.qkd.rate_bps ? 'link' : `${c.qkd.link?.protocol ?? 'bb84'} link of ${c.qkd.link?.distance_km ?? 10} km`} at ${kme.rate.rateBps.toFixed(0)} bit/s secret key rate; keys reach nodes over serial (trusted-node delivery); empty pool policy: ${c.qkd.policy}`,
      });
    }

    const pb = power;
    const up = await bringUpAll(rig, wanted, { netns: (name) => nets?.nets.get(name)?.ns, ...(pb ? { virtual: (name: string) => pb.virtualHooks(name) } : {}) });
    if (c.require_build !== undefined) {
      const req = c.require_build;
      for (const n of [...up.ready]) {
        const want = typeof req === 'string' ? req : req[n.spec.name];
        if (!want || n.hello.build === want) continue;
        up.ready.splice(up.ready.indexOf(n), 1);
        await shutDown([n]);
        up.failed.push({ spec: n.spec, error: `runs build ${n.hello.build}, the campaign requires ${want}. Fix: qslab flash --rig ${o.rig.file} --node ${n.spec.name} (with the image of that build), or change require_build` });
      }
    }
    nodes = up.ready;
    for (const n of up.ready) summary.nodes.push({ name: n.spec.name, board: n.spec.board, build: n.hello.build, fw: n.hello.fw, ok: true });
    for (const f of up.failed) {
      summary.nodes.push({ name: f.spec.name, board: f.spec.board, build: '', fw: '', ok: false, error: f.error });
      rec.addEvent({ runId: run.id, ts: Date.now(), kind: 'node-lost', node: f.spec.name, detail: `bring-up failed: ${f.error}` });
      log(`node ${f.spec.name}: NOT READY: ${f.error}`);
    }
    for (const n of up.ready) log(`node ${n.spec.name}: ${n.hello.board} fw ${n.hello.fw} build ${n.hello.build} on ${n.link.opts.path}`);
    if (power) {
      await power.attachNodes(new Map(nodes.filter((n) => n.virtual).map((n) => [n.spec.name, n.virtual!] as [string, VirtualNode])));
      for (const line of power.setup.slice(-rig.meters.length)) rec.addEvent({ runId: run.id, ts: Date.now(), kind: 'setup', detail: `power: ${line}` });
    }
    o.hooks?.onReady?.(nodes);

    const plan = planCells(c, wanted);
    summary.cells.total = plan.length;
    const progress = new Progress(plan.length * c.handshakes, `${c.name} (ops)`, process.stderr, !!o.quiet);
    const ctx: RunContext = { port, server: srv, serverOps, progress, keys, pqc, profiles, ...(qkd ? { qkd } : {}), ...(nets ? { nets } : {}), ...(power ? { power } : {}) };
    if (shaped.length && !kernel) {
      rec.addEvent({ runId: run.id, ts: Date.now(), kind: 'setup', detail: `network shaping: userspace impairment relay (TCP, seeded) between nodes and the handshake server for profiles ${shaped.join(', ')} (${c.profiles_file})` });
    }
    let cellsDone = 0;
    const base = (p: PlannedCell): CellInfo => {
      const n = nodes.find((x) => x.spec.name === p.node);
      const spec = rig.nodes.find((x) => x.name === p.node)!;
      return {
        runId: run.id, cellId: p.cellId, node: p.node, board: spec.board, buildHash: n?.hello.build ?? '', firmware: n?.hello.fw ?? '',
        suite: p.suite, profile: p.profile, aead: p.suite === 'none' ? 'none' : c.records.aead, records: c.records.count, bytes: p.bytes, refresh: c.records.refresh,
        repetition: p.repetition, ops: c.handshakes, status: 'pending', attempts: 0,
      };
    };
    for (const p of plan) rec.upsertCell(base(p));

    const finishCell = (cell: CellInfo) => {
      rec.upsertCell(cell);
      if (cell.status === 'ok') summary.cells.ok++;
      else if (cell.status === 'failed') {
        summary.cells.failed++;
        summary.failures.push({ cellId: cell.cellId, error: cell.error ?? 'unknown' });
      } else if (cell.status === 'skipped') summary.cells.skipped++;
      progress.note(`[${++cellsDone}/${plan.length}] ${cell.cellId}: ${cell.status}${cell.error ? ` (${cell.error})` : ''}`);
    };

    const worker = async (nodeName: string) => {
      const cells = plan.filter((p) => p.node === nodeName);
      const node = nodes.find((n) => n.spec.name === nodeName);
      let lost: string | undefined = node ? undefined : summary.nodes.find((x) => x.name === nodeName)?.error ?? 'node not ready';
      for (const p of cells) {
        const cell = base(p);
        if (o.signal?.aborted) {
          finishCell({ ...cell, status: 'skipped', error: 'run interrupted' });
          continue;
        }
        if (lost || !node) {
          finishCell({ ...cell, status: 'failed', error: `node lost: ${lost}` });
          continue;
        }
        cell.startedAt = new Date().toISOString();
        cell.status = 'running';
        for (let attempt = 1; attempt <= 1 + c.retries; attempt++) {
          cell.attempts = attempt;
          const res = await runCell(o, rec, run, cell, node, attempt, ctx);
          summary.ops.total += res.ok + res.failed;
          summary.ops.ok += res.ok;
          summary.ops.failed += res.failed;
          if (!res.error) {
            cell.status = 'ok';
            delete cell.error;
            break;
          }
          cell.status = 'failed';
          cell.error = res.error;
          if (o.signal?.aborted) break;
          rec.addEvent({ runId: run.id, ts: Date.now(), kind: 'retry', node: nodeName, cellId: cell.cellId, detail: `attempt ${attempt} failed: ${res.error}` });
          let back = await recover(node);
          if (!back && power?.nodes.get(nodeName)?.relay) {
            // a hung node: take its power away through the relay and let it boot again
            const t0 = Date.now();
            const tr0 = power.transitions.length;
            await power.powerCycle(nodeName);
            // the pin levels commanded, for the record (HIGH/LOW as written to the board, relative to the first)
            const trs = power.transitions.slice(tr0).filter((x) => x.node === nodeName);
            const pinLog = trs.map((x) => `${x.level ? 'HIGH' : 'LOW'} (${x.state}) at +${(x.t - trs[0]!.t).toFixed(0)} ms`).join(', ');
            back = await recoverAfterBoot(node, 10_000);
            const relay = power.nodes.get(nodeName)!.relay!.rig;
            rec.addEvent({
              runId: run.id, ts: Date.now(), kind: 'power-cycle', node: nodeName, cellId: cell.cellId,
              detail: `node did not answer after "${res.error}": power-cycled through relay ${relay.name} (${relay.off_ms} ms off; ${relay.board} pin ${relay.pin}: ${pinLog}); ${back ? `ready again after ${Date.now() - t0} ms, build ${node.hello.build}` : 'still not answering'}`,
            });
          }
          if (!back) {
            lost = `${res.error}; node does not answer after the failure${node.virtual && !node.virtual.running ? ` (virtual node process ended: ${node.virtual.exitSignal ?? node.virtual.exitCode})` : ''}`;
            rec.addEvent({ runId: run.id, ts: Date.now(), kind: 'node-lost', node: nodeName, cellId: cell.cellId, detail: lost });
            log(`node ${nodeName}: lost (${lost}); its remaining cells fail, the others go on`);
            break;
          }
        }
        cell.endedAt = new Date().toISOString();
        finishCell(cell);
      }
    };
    await Promise.all(wanted.map((n) => worker(n)));
    progress.finish();
    summary.checks = evaluateChecks(c, o.store.getOps(run.id));
    for (const ch of summary.checks) rec.addEvent({ runId: run.id, ts: Date.now(), kind: ch.ok ? 'check-passed' : 'check-failed', detail: `${ch.name}: ${ch.detail}` });
    summary.status = o.signal?.aborted ? 'interrupted' : summary.cells.failed > 0 || summary.checks.some((x) => !x.ok) ? 'failed' : 'completed';
  } catch (e) {
    summary.status = 'failed';
    rec.addEvent({ runId: run.id, ts: Date.now(), kind: 'error', detail: (e as Error).message });
    throw e;
  } finally {
    if (o.signal?.aborted && summary.status === 'running') summary.status = 'interrupted';
    if (o.signal?.aborted) rec.addEvent({ runId: run.id, ts: Date.now(), kind: 'interrupt', detail: String(o.signal.reason ?? 'aborted') });
    await shutDown(nodes);
    await power?.close();
    await nets?.close();
    await server?.close();
    await pqc?.close();
    await qkd?.close();
    await kme?.stop();
    unregisterServer();
    summary.durationS = (Date.now() - t0) / 1000;
    rec.endRun(run.id, summary.status === 'running' ? 'failed' : summary.status, new Date().toISOString());
  }
  return summary;
}

/** A per-burst relay seed: reproducible from the campaign seed and where the burst is. */
function seedFor(seed: number, where: string): number {
  let h = seed >>> 0;
  for (let i = 0; i < where.length; i++) h = Math.imul(h ^ where.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function describeLoss(p: LinkProfile): string {
  const l = p.loss as { model: string; p?: number };
  return l.model === 'none' ? 'no loss' : l.model === 'random' ? `loss ${l.p} %` : `${l.model} loss`;
}

/** RTT samples and retransmissions TCP itself reported (TCP_INFO) on the node's leg. */
function describeTcpInfo(t: { rttMs: number[]; sockets: number; retrans: number }): string {
  if (!t.rttMs.length) return 'TCP_INFO: no live connection sampled';
  const s = summarize(t.rttMs);
  return `TCP_INFO (node↔relay leg): RTT median ${s.median.toFixed(2)} ms [p5 ${s.p5.toFixed(2)} – p95 ${s.p95.toFixed(2)}] from ${t.rttMs.length} samples of ${t.sockets} connections, ${t.retrans} retransmitted segments`;
}

/** Kernel-shaped cell: who shaped what, realized loss from nft/veth counters, the namespace's TCP counters. */
export function describeKernelRealized(p: LinkProfile, backend: string, loss: ReturnType<typeof realizedKernelLoss>, tcp: TcpCounters | null,
  info: { rttMs: number[]; sockets: number; retrans: number }, rel: RelayStats): string {
  const parts = [`shaped by ${backend}`, `configured ${p.rate_kbit ? `rate ${p.rate_kbit} kbit/s, ` : ''}delay ${p.delay_ms} ± ${p.jitter_ms} ms, ${describeLoss(p)}`,
    `kernel loss node→server ${(loss.up * 100).toFixed(2)} % of ${loss.upPackets} packets, server→node ${(loss.down * 100).toFixed(2)} % of ${loss.downPackets}`];
  if (tcp) parts.push(`node TCP: ${tcp.outSegs} segments out, ${tcp.retransSegs} retransmitted (${tcp.outSegs ? ((100 * tcp.retransSegs) / tcp.outSegs).toFixed(2) : '0.00'} %), ${tcp.activeOpens} connections`);
  parts.push(describeTcpInfo(info));
  if (rel.up.packets || rel.down.packets) parts.push(`relay delay node→server ${rel.up.delayMeanMs.toFixed(1)} ± ${rel.up.delaySdMs.toFixed(1)} ms, server→node ${rel.down.delayMeanMs.toFixed(1)} ± ${rel.down.delaySdMs.toFixed(1)} ms, ${rel.down.throughputKbit.toFixed(0)} kbit/s down`);
  return `kernel ${p.name}: ${parts.join('; ')}`;
}

/** Configured profile beside what the relay really did (both directions), for the report. */
export function describeRealized(p: LinkProfile, st: RelayStats): string {
  const dir = (name: string, d: RelayStats['up']) =>
    `${name} ${d.packets} segments, delay ${d.delayMeanMs.toFixed(1)} ± ${d.delaySdMs.toFixed(1)} ms, loss ${(d.realizedLoss * 100).toFixed(2)} % (${d.retransmitted} retransmissions), ${d.throughputKbit.toFixed(0)} kbit/s`;
  return `relay ${p.name}: configured delay ${p.delay_ms} ± ${p.jitter_ms} ms (${p.jitter_distribution}), ${describeLoss(p)}${p.rate_kbit ? `, rate ${p.rate_kbit} kbit/s` : ''} → ` +
    `${dir('node→server', st.up)}; ${dir('server→node', st.down)}; ${st.flows} connections${st.resets ? `, ${st.resets} reset by the retransmission cap` : ''}`;
}

/** The campaign's `checks`, evaluated on what the store holds for the run. */
export function evaluateChecks(c: Campaign, ops: OpRecord[]): { name: string; ok: boolean; detail: string }[] {
  const out: { name: string; ok: boolean; detail: string }[] = [];
  const k = c.checks;
  if (!k) return out;
  const good = ops.filter((x) => x.ok);
  if (k.min_record_exchanges !== undefined) {
    const n = good.reduce((a, x) => a + x.recs, 0);
    out.push({ name: 'record exchanges', ok: n >= k.min_record_exchanges, detail: `${n} records exchanged and echoed intact by successful operations (need ≥ ${k.min_record_exchanges})` });
  }
  if (k.no_key_reuse) {
    const ids = ops.flatMap((x) => x.keyIds ?? []);
    const dup = ids.length - new Set(ids).size;
    out.push({ name: 'no QKD key reuse', ok: dup === 0 && ids.length > 0, detail: `${ids.length} QKD key_IDs used, ${new Set(ids).size} distinct, ${dup} reused` });
  }
  if (k.max_failed_ops !== undefined) {
    const failed = ops.length - good.length;
    const reasons = [...new Set(ops.filter((x) => !x.ok).map((x) => x.err ?? 'unknown'))].join(', ');
    out.push({ name: 'failed operations', ok: failed <= k.max_failed_ops, detail: `${failed} of ${ops.length} operations failed (allowed ${k.max_failed_ops})${reasons ? `: ${reasons}` : ''}` });
  }
  return out;
}

interface CellResult {
  ok: number;
  failed: number;
  error?: string;
}

/** What every cell of a run shares: the main handshake server and, for QKD suites, the key supply. */
interface RunContext {
  port: number;
  server: HandshakeServer;
  serverOps: Map<string, ServerOp>;
  progress: Progress;
  keys: ServerKeys;
  pqc: PqcBackend;
  qkd?: QkdSupply;
  profiles: Map<string, LinkProfile>;
  nets?: NodeNetworks;
  power?: PowerBench;
}

/** After a power cycle: the node boots (a new process behind the same link on the virtual rig); retry hello. */
async function recoverAfterBoot(node: ReadyNode, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    await node.link.close().catch(() => undefined);
    if (await recover(node)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/** A QKD suite whose pool ran dry falls back to the same exchange without QKD (policy 'fallback'). */
const QKD_FALLBACK: Record<string, string> = { 'qkd-mlkem768': 'mlkem768-mldsa65', 'qkd-x25519mlkem768': 'x25519mlkem768' };

async function runCell(o: RunOptions, rec: Recorder, run: RunInfo, cell: CellInfo, node: ReadyNode, attempt: number, ctx: RunContext): Promise<CellResult> {
  const c = o.campaign.value;
  const res: CellResult = { ok: 0, failed: 0 };
  const buffer: (OpRecord & { cr?: string })[] = [];
  // The server reports a connection when its socket closes, a moment after the node's event: mid-cell flushes
  // keep the newest ops back so they can still be joined with the server's wall time.
  const flush = (final: boolean) => {
    const ready = final ? buffer.splice(0) : buffer.splice(0, Math.max(0, buffer.length - 16));
    if (!ready.length) return;
    for (const op of ready) {
      const s = op.cr ? ctx.serverOps.get(op.cr) : undefined;
      if (s) {
        op.hostUs = s.wallUs;
        if (s.qkdKeyIds.length) op.keyIds = s.qkdKeyIds;
        ctx.serverOps.delete(op.cr!);
      }
      delete op.cr;
    }
    rec.addOps(ready);
  };
  const event = (kind: string, detail: string, ts = Date.now()) => rec.addEvent({ runId: run.id, ts, kind, node: cell.node, cellId: cell.cellId, detail });
  const onAbort = () => void node.link.request('abort', {}, { timeoutMs: 1000 }).catch(() => undefined);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const deadline = Date.now() + c.timeouts.cell_s * 1000;
  const cellTimer = setTimeout(onAbort, c.timeouts.cell_s * 1000);
  const isQkd = (QKD_SUITES as readonly string[]).includes(cell.suite);
  const burstSize = isQkd ? opsPerBatch(cell.records, cell.refresh) : cell.ops;
  // What the relay (and the kernel) realized, burst by burst; one `net` row for the attempt at its end.
  const netBursts: NetBurst[] = [];
  try {
    // Energy: a node with a meter has every burst measured; a slow meter may ask for one extra, longer burst.
    const np = ctx.power?.nodes.get(cell.node);
    let total = cell.ops;
    let extraBurst = 0;
    let extraBaselineS = 0;
    for (let done = 0; done < total && !o.signal?.aborted; ) {
      // (a QKD burst is capped by what the node's key store holds, the extra energy burst included)
      const n = extraBurst && done >= cell.ops ? Math.min(extraBurst, total - done, isQkd ? burstSize : Infinity) : Math.min(burstSize, total - done);
      let suite = cell.suite;
      let port = ctx.port;
      let qkdServer: HandshakeServer | undefined;
      let batch: Provisioned | undefined;
      if (isQkd) {
        try {
          batch = await ctx.qkd!.provision(node.spec.name, node.link, n * keysPerOp(cell.records, cell.refresh), c.qkd.policy, deadline);
          event('qkd-provision', `${batch.keyIds.length} QKD keys for ${n} operations loaded over serial: ${batch.serialBytes} B in ${batch.serialMs.toFixed(0)} ms` +
            (batch.waitedMs ? `, after waiting ${(batch.waitedMs / 1000).toFixed(1)} s for the link to refill the pools` : ''));
          qkdServer = new HandshakeServer({ host: o.rig.value.server.bind, port: 0, keys: ctx.keys, pqc: ctx.pqc, qkd: batch.source });
          qkdServer.onOp((op) => {
            if (op.cr) ctx.serverOps.set(op.cr, op);
          });
          port = (await qkdServer.start()).port;
        } catch (e) {
          if (!(e instanceof PoolEmpty)) throw e;
          if (c.qkd.policy !== 'fallback') {
            res.error = `E_QKD_POOL: ${e.message} (policy ${c.qkd.policy})`;
            break;
          }
          suite = QKD_FALLBACK[cell.suite]!;
          event('qkd-fallback', `${n} operations ran as ${suite} without QKD: ${e.message}`);
        }
      }
      let relay: ImpairmentRelay | undefined;
      let relayClosed = false;
      // Everything set up for this burst (QKD keys and server, relay, kernel shaping) is released here even when
      // shaping or the burst throws: a leaked batch would keep key material and a listener alive.
      try {
        const schedule = c.schedules[cell.profile];
        const profile = ctx.profiles.get(schedule ? schedule.phases[0]!.profile : cell.profile);
        let phaseTimer: NodeJS.Timeout | undefined;
        // A node in its own namespace reaches the server only through the relay on its veth's host side.
        const nn = ctx.nets?.nets.get(cell.node);
        let host = o.rig.value.server.advertise;
        let kernelShape: { backend: string; c0: VethCounters; tcp0: TcpCounters | null } | undefined;
        let sampler: TcpInfoSampler | undefined;
        let kernelChain: Promise<void> = Promise.resolve();
        if (profile || nn) {
          const wantedProfile = profile ?? makeProfile({ name: 'loopback', description: 'no impairment' });
          let relayProfile = wantedProfile;
          if (nn) {
            const ks = await ctx.nets!.shape(cell.node, wantedProfile);
            relayProfile = ks.residual;
            host = nn.hostAddr;
            kernelShape = { backend: ks.backend, c0: await ctx.nets!.counters(cell.node), tcp0: node.virtual?.pid ? namespaceTcpCounters(node.virtual.pid) : null };
          }
          relay = new ImpairmentRelay({
            upstream: { host: o.rig.value.server.bind === '0.0.0.0' ? '127.0.0.1' : o.rig.value.server.bind, port },
            listen: { host: nn ? nn.hostAddr : o.rig.value.server.bind, port: 0 },
            profile: relayProfile, seed: seedFor(c.seed, `${cell.cellId}#${attempt}#${done}`), protocol: 'tcp',
          });
          port = (await relay.start()).port;
          sampler = new TcpInfoSampler(port).start();
          if (schedule) {
            // Jamming: cycle the link through the schedule's phases; every change is timestamped for the report.
            let i = 0;
            const enter = () => {
              const ph = schedule.phases[i]!;
              const php = ctx.profiles.get(ph.profile)!;
              const k = i;
              if (nn) {
                // The relay switches at once; the kernel part follows in order (a few tc/nft calls, ~10-100 ms).
                // The phase is stamped when it starts (the relay part); the kernel's lag is stated in the event.
                const t0 = performance.now(), ts = Date.now();
                relay!.setProfile(ctx.nets!.split(php).residual);
                kernelChain = kernelChain.then(() => ctx.nets!.shape(cell.node, php)).then(
                  () => event('net-phase', `phase ${k}: ${ph.profile} for ${ph.seconds} s (kernel part applied after ${(performance.now() - t0).toFixed(0)} ms)`, ts),
                  (e: Error) => event('net-error', `phase ${k}: ${e.message}`));
              } else {
                relay!.setProfile(php);
                event('net-phase', `phase ${k}: ${ph.profile} for ${ph.seconds} s`);
              }
              i++;
              if (i >= schedule.phases.length) {
                if (!schedule.repeat) return;
                i = 0;
              }
              phaseTimer = setTimeout(enter, ph.seconds * 1000);
            };
            enter();
          }
        }
        try {
          const hs = async (): Promise<BurstAnswer> => { const r = await node.link.request(
            'hs',
            {
              suite, host, port, n, records: cell.records, bytes: cell.bytes,
              ...(suite === 'none' ? {} : { aead: cell.aead }), refresh: cell.refresh, pin: ctx.server.pin(suite),
              ...(c.mutual && ([...PQ_SUITES, ...QKD_SUITES] as readonly string[]).includes(suite) ? { mutual: true } : {}),
            },
            {
              idle: true,
              timeoutMs: c.timeouts.idle_s * 1000,
              onEvent: (ev) => {
                if (ev.ev !== 'op') return;
                const parsed = opEventSchema.safeParse(ev);
                if (!parsed.success) {
                  event('bad-event', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ').slice(0, 300));
                  return;
                }
                const e = parsed.data;
                const op: OpRecord & { cr?: string } = {
                  runId: run.id, cellId: cell.cellId, node: cell.node, board: cell.board, suite, profile: cell.profile,
                  attempt, index: done + e.i, ok: e.ok, t: e.t, hsTx: e.hs_tx, hsRx: e.hs_rx, recTx: e.rec_tx, recRx: e.rec_rx, recs: e.recs,
                  heap: e.heap, stack: e.stack, cpu: e.cpu, ts: Date.now(),
                };
                if (e.err) op.err = e.err;
                if (e.msg) op.msg = e.msg;
                if (e.cr) op.cr = e.cr;
                if (e.ok) res.ok++;
                else res.failed++;
                buffer.push(op);
                ctx.progress.add();
                o.hooks?.onOp?.(op, node);
                if (buffer.length >= 216) flush(false);
              },
            },
          );
          return { ops: Number(r.done ?? 0) + Number(r.failed ?? 0), ...(typeof r.b0_us === 'number' ? { b0Us: r.b0_us } : {}), ...(typeof r.b1_us === 'number' ? { b1Us: r.b1_us } : {}) };
          };
          if (np?.meter) {
            const baselineS = extraBaselineS && done >= cell.ops ? extraBaselineS : c.power.baseline_s;
            const m = await measureBurst(ctx.power!, np, node.link, { baud: node.spec.baud, paced: node.spec.kind === 'serial' || node.spec.pace }, hs,
              { ...(baselineS !== undefined ? { baselineS } : {}), ...(o.signal ? { signal: o.signal } : {}) });
            if (m.measured) {
              const w = { ...m.measured.window, runId: run.id, cellId: cell.cellId, suite, profile: cell.profile };
              rec.addEnergy(w);
              const tr = np.meter.ring.slice(w.t0 - 50, w.t1 + 50);
              rec.addTrace({ runId: run.id, cellId: cell.cellId, meter: w.meter, node: cell.node, t: tr.t, v: tr.v, i: tr.i, ...(tr.d ? { d: tr.d } : {}) });
              event('energy', `${m.measured.note}: ${m.result.ops} ops, ${(w.perOpJ * 1e3).toFixed(4)} ± ${(w.perOpUncJ * 1e3).toFixed(4)} mJ/op` +
                (w.truthPerOpJ !== undefined ? ` (power model: ${(w.truthPerOpJ * 1e3).toFixed(4)} mJ/op)` : ''));
              const info = np.meter.driver.info;
              const e = m.measured.energy;
              // (a net energy ≤ 0 is a burst the meter did not resolve at all: it needs the longer burst most)
              if (!extraBurst && done + n >= total && info.rateHz < 1000 && !(m.measured.relErr <= c.power.target_rel_err)) {
                const need = opsForTarget(e, c.power.target_rel_err, info.rateHz);
                extraBurst = Math.min(c.power.max_ops, Math.max(1, need));
                total += extraBurst;
                // the baseline grows with the burst, so its mean is known well enough for the longer window
                // (as long as the burst itself: energyPerOp's durationS includes a sample period of padding each side)
                const burstS = Math.max(0, e.durationS - 2 / info.rateHz);
                extraBaselineS = Math.min(60, Math.max(baselineSeconds(np.meter), (burstS * extraBurst) / Math.max(1, e.ops)));
                event('energy-burst', `energy per op ±${(100 * m.measured.relErr).toFixed(1)} % from ${e.ops} ops is above the ${(100 * c.power.target_rel_err).toFixed(1)} % target for a ${info.rateHz} Hz meter: one more burst of ${extraBurst} ops${extraBurst < need ? ` (capped by power.max_ops; ${need} needed)` : ''}`);
              }
            } else event('energy-error', m.error ?? 'not measured');
          } else await hs();
        } finally {
          // Wait for the server's records of this burst before its server goes away.
          for (let i = 0; i < 10 && buffer.some((b) => b.cr && !ctx.serverOps.has(b.cr)); i++) await new Promise((r) => setTimeout(r, 10));
          clearTimeout(phaseTimer);
          await kernelChain;
          if (relay) {
            const tcp = sampler!.stop();
            const rel = relay.stats();
            const burst: NetBurst = { rel, tcp };
            if (kernelShape) {
              const c1 = await ctx.nets!.counters(cell.node).catch(() => kernelShape!.c0);
              const tcp1 = node.virtual?.pid ? namespaceTcpCounters(node.virtual.pid) : null;
              const kLoss = realizedKernelLoss(kernelShape.c0, c1);
              const kTcp = kernelShape.tcp0 && tcp1 ? diffCounters(kernelShape.tcp0, tcp1) : null;
              burst.kernel = { shaping: kernelShape.backend, loss: kLoss, tcp: kTcp };
              event('net-realized', describeKernelRealized(profile ?? makeProfile({ name: 'loopback' }), kernelShape.backend, kLoss, kTcp, tcp, rel));
            } else if (profile) event('net-realized', `${describeRealized(profile, rel)}; ${describeTcpInfo(tcp)}`);
            netBursts.push(burst);
            await relay.close();
            relayClosed = true;
          }
        }
      } finally {
        if (relay && !relayClosed) await relay.close().catch(() => undefined);
        await qkdServer?.close().catch(() => undefined);
        batch?.dispose();
      }
      done += n;
    }
  } catch (e) {
    res.error = e instanceof LinkError ? e.message : `E_CONTROLLER: ${(e as Error).message}`;
    if (e instanceof LinkError && e.code === 'E_TIMEOUT') onAbort();
  } finally {
    clearTimeout(cellTimer);
    o.signal?.removeEventListener('abort', onAbort);
    flush(true);
    if (netBursts.length) {
      // A jamming schedule has no one configured profile: its row has the whole cell's figures, configured absent.
      const configured = c.schedules[cell.profile] ? undefined : ctx.profiles.get(cell.profile) ?? makeProfile({ name: 'loopback', description: 'no impairment' });
      try {
        rec.addNet(netFigures({ runId: run.id, cellId: cell.cellId, attempt, node: cell.node, suite: cell.suite, profile: cell.profile }, configured, netBursts));
      } catch (e) {
        event('net-error', `network figures not stored: ${(e as Error).message}`);
      }
    }
  }
  return res;
}

/** What one burst's relay measured, and for a kernel-shaped node what the kernel did. */
export interface NetBurst {
  rel: RelayStats;
  tcp: { rttMs: number[]; sockets: number; retrans: number };
  kernel?: { shaping: string; loss: ReturnType<typeof realizedKernelLoss>; tcp: TcpCounters | null };
}

/**
 * One direction over several bursts (relays): counts summed, realized loss from the summed loss decisions (the
 * relay's own rule), delay mean/SD pooled exactly (Welford merge over the delivered packets), throughput as
 * delivered bits over the bursts' summed active spans. One burst gives the relay's figures unchanged.
 */
export function combineDirections(ds: readonly DirectionStats[]): NetDirection {
  const sum = (f: (d: DirectionStats) => number) => ds.reduce((a, d) => a + f(d), 0);
  const packets = sum((d) => d.packets), lost = sum((d) => d.losses), decisions = sum((d) => d.lossDecisions);
  const dropped = sum((d) => d.dropped), queueDropped = sum((d) => d.queueDropped), retransmitted = sum((d) => d.retransmitted);
  const loss = retransmitted > 0 || dropped === 0 ? (decisions ? lost / decisions : 0) : packets ? (dropped + queueDropped) / packets : 0;
  let n = 0, mean = 0;
  const w = ds.map((d) => Math.max(0, d.packets - d.dropped - d.queueDropped + d.duplicated));
  for (const [i, d] of ds.entries()) {
    n += w[i]!;
    mean += w[i]! * d.delayMeanMs;
  }
  mean = n ? mean / n : 0;
  let m2 = 0;
  for (const [i, d] of ds.entries()) if (w[i]) m2 += d.delaySdMs ** 2 * (w[i]! - 1) + w[i]! * (d.delayMeanMs - mean) ** 2;
  const bits = sum((d) => d.deliveredBytes * 8);
  const spanMs = sum((d) => (d.throughputKbit > 0 ? (d.deliveredBytes * 8) / d.throughputKbit : 0));
  return {
    packets, lost, loss, delayMeanMs: mean, delaySdMs: n > 1 ? Math.sqrt(m2 / (n - 1)) : 0,
    throughputKbit: spanMs > 0 ? bits / spanMs : 0, retransmitted,
  };
}

/** The `net` row of one cell attempt from its bursts; `configured` is the cell's profile (none under a schedule). */
export function netFigures(
  cell: Pick<NetFigures, 'runId' | 'cellId' | 'attempt' | 'node' | 'suite' | 'profile'>, configured: LinkProfile | undefined,
  bursts: readonly NetBurst[], ts = Date.now(),
): NetFigures {
  const kb = bursts.filter((b) => b.kernel);
  const out: NetFigures = {
    ...cell, backend: kb.length ? 'kernel' : 'relay', bursts: bursts.length,
    flows: bursts.reduce((a, b) => a + b.rel.flows, 0), resets: bursts.reduce((a, b) => a + b.rel.resets, 0),
    up: combineDirections(bursts.map((b) => b.rel.up)), down: combineDirections(bursts.map((b) => b.rel.down)), ts,
  };
  if (kb.length) out.shaping = kb[0]!.kernel!.shaping;
  if (configured) {
    const l = configured.loss as { model: string; p?: number };
    out.configured = { delayMs: configured.delay_ms, jitterMs: configured.jitter_ms, lossModel: l.model, rateKbit: configured.rate_kbit };
    if (l.model === 'random' && typeof l.p === 'number') out.configured.lossPct = l.p;
  }
  if (kb.length) {
    let upP = 0, downP = 0, upD = 0, downD = 0;
    for (const b of kb) {
      const k = b.kernel!.loss;
      upP += k.upPackets;
      downP += k.downPackets;
      upD += k.up * k.upPackets;
      downD += k.down * k.downPackets;
    }
    out.kernel = { lossUp: upP ? upD / upP : 0, lossDown: downP ? downD / downP : 0, packetsUp: upP, packetsDown: downP };
    const tc = kb.map((b) => b.kernel!.tcp).filter((x): x is TcpCounters => x !== null);
    if (tc.length) out.tcp = { outSegs: tc.reduce((a, x) => a + x.outSegs, 0), retransSegs: tc.reduce((a, x) => a + x.retransSegs, 0) };
  }
  const rtt = bursts.flatMap((b) => b.tcp.rttMs);
  if (rtt.length) {
    const st = summarize(rtt);
    out.rtt = {
      n: st.n, sockets: bursts.reduce((a, b) => a + b.tcp.sockets, 0), medianMs: st.median, p5Ms: st.p5, p95Ms: st.p95,
      retrans: bursts.reduce((a, b) => a + b.tcp.retrans, 0),
    };
  }
  return out;
}

/** Mean of the finite values (NaN when there are none). */
function meanOf(xs: readonly number[]): number {
  const f = xs.filter((x) => Number.isFinite(x));
  return f.length ? f.reduce((a, b) => a + b, 0) / f.length : NaN;
}

/**
 * The campaign's qkd.sweep: simulateLink for every protocol × distance × repeat, seed = campaign seed + repeat
 * index (the same for every protocol and distance, so the sweep is reproducible point by point). Each point is
 * stored as it is done; one 'qkd-sweep' event per protocol sums it up. Stops early (keeping what is done) when
 * the run is interrupted.
 */
export async function runQkdSweep(c: Campaign, runId: string, rec: Pick<Recorder, 'addQkdSweep' | 'addEvent'>,
  o: { signal?: AbortSignal; quiet?: boolean } = {}): Promise<QkdSweepPoint[]> {
  const sw = c.qkd.sweep;
  if (!sw) return [];
  const out: QkdSweepPoint[] = [];
  const progress = new Progress(sw.protocols.length * sw.distances_km.length * sw.repeats, `${c.name} (QKD sweep)`, process.stderr, !!o.quiet);
  const fmt = (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toPrecision(3)) : 'n/a');
  const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)} %` : 'n/a');
  try {
    for (const protocol of sw.protocols) {
      const t0 = performance.now();
      const mine: QkdSweepPoint[] = [];
      for (const distanceKm of sw.distances_km) {
        for (let repeat = 0; repeat < sw.repeats; repeat++) {
          if (o.signal?.aborted) return out;
          const seed = c.seed + repeat;
          const r = simulateLink({ protocol, distanceKm, seed, blockBits: sw.block_bits });
          const p: QkdSweepPoint = {
            runId, protocol, distanceKm, repeat, seed, blockBits: sw.block_bits, qber: r.qber, secretKeyRateBps: r.secretKeyRateBps,
            finalBits: r.finalBits, siftedBits: r.siftedBits, durationS: r.durationS,
          };
          if (r.abortReason !== undefined) p.abortReason = r.abortReason;
          rec.addQkdSweep(p);
          out.push(p);
          mine.push(p);
          progress.add();
          // let signals, timers and sockets run between two simulations (each is synchronous, ~10-100 ms)
          await new Promise((res) => setImmediate(res));
        }
      }
      const at = (d: number) => mine.filter((p) => p.distanceKm === d);
      const first = sw.distances_km[0]!, last = sw.distances_km[sw.distances_km.length - 1]!;
      const aborted = mine.filter((p) => p.abortReason !== undefined);
      const withKey = sw.distances_km.filter((d) => at(d).some((p) => p.finalBits > 0));
      const line = `${protocol}: ${sw.distances_km.length} distances × ${sw.repeats} repeats (block ${sw.block_bits} bits, seeds ${c.seed}–${c.seed + sw.repeats - 1}): ` +
        `secret key rate ${fmt(meanOf(at(first).map((p) => p.secretKeyRateBps)))} bit/s at ${first} km → ${fmt(meanOf(at(last).map((p) => p.secretKeyRateBps)))} bit/s at ${last} km, ` +
        `QBER ${pct(meanOf(at(first).map((p) => p.qber)))} → ${pct(meanOf(at(last).map((p) => p.qber)))} (means of repeats); ` +
        `${aborted.length} of ${mine.length} links without key${withKey.length ? `, key up to ${Math.max(...withKey)} km` : ''}; ${((performance.now() - t0) / 1000).toFixed(1)} s`;
      rec.addEvent({ runId, ts: Date.now(), kind: 'qkd-sweep', detail: line });
      progress.note(`QKD sweep ${line}`);
    }
  } finally {
    progress.finish();
  }
  return out;
}
