// The record of every kernel effect qslab makes (namespace, veth/ifb link, qdisc, nft table), written atomically
// to .qslab/net-state.json BEFORE the effect is made, so that clear() can undo everything even after the
// controller was SIGKILLed. clear() also sweeps leftovers by name (`qslab-*` namespaces, `qs<10 hex>[hni]` links,
// `qslab_*` nft tables, root qdiscs with qslab's handle 5153: on interfaces in the record) and never touches
// anything else.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT } from '../paths.js';
import { cleanup } from '../cleanup.js';
import { NetExec, checkIfName, checkNetns, checkTable, nsArgs, NETNS_RE, NFT_TABLE_RE } from './exec.js';

/** Root qdisc handle qslab uses (0x5153 = "QS"): marks a qdisc as ours. */
export const QDISC_HANDLE = '5153:';
/** Links qslab makes: qs + 10 hex digits + h (host side of a veth), n (node side), i (ifb). */
export const OUR_LINK_RE = /^qs[0-9a-f]{10}[hni]$/;

export type Effect =
  | { kind: 'netns'; name: string }
  | { kind: 'link'; name: string; ns?: string }
  | { kind: 'qdisc'; dev: string; ns?: string; parent: 'root' | 'ingress' }
  | { kind: 'nft'; table: string; ns?: string };

export interface Entry {
  effect: Effect;
  run: string;
  pid: number;
  bootId: string;
  at: string;
}

interface StateFile {
  version: 1;
  entries: Entry[];
}

export function defaultStatePath(): string {
  return process.env.QSLAB_NET_STATE ?? join(ROOT, '.qslab', 'net-state.json');
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}
const BOOT = bootId();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** An entry's owner is alive: same boot and its pid still runs (pid reuse errs on the side of keeping). */
export function ownerAlive(e: Entry): boolean {
  return e.bootId === BOOT && pidAlive(e.pid);
}

function validate(effect: Effect): Effect {
  switch (effect.kind) {
    case 'netns': checkNetns(effect.name); break;
    case 'link': checkIfName(effect.name); if (effect.ns) checkNetns(effect.ns); break;
    case 'qdisc': checkIfName(effect.dev); if (effect.ns) checkNetns(effect.ns); break;
    case 'nft': checkTable(effect.table); if (effect.ns) checkNetns(effect.ns); break;
  }
  return effect;
}

export function sameEffect(a: Effect, b: Effect): boolean {
  return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
}
function norm(e: Effect): unknown {
  switch (e.kind) {
    case 'netns': return ['netns', e.name];
    case 'link': return ['link', e.name, e.ns ?? ''];
    case 'qdisc': return ['qdisc', e.dev, e.ns ?? '', e.parent];
    case 'nft': return ['nft', e.table, e.ns ?? ''];
  }
}

/** The state file. Writes are write-to-temp + fsync + rename (atomic); a dry run never writes. */
export class NetState {
  constructor(readonly path: string = defaultStatePath(), readonly dryRun = false) {}

  read(): Entry[] {
    if (!existsSync(this.path)) return [];
    try {
      const s = JSON.parse(readFileSync(this.path, 'utf8')) as StateFile;
      return Array.isArray(s.entries) ? s.entries : [];
    } catch {
      // a torn file cannot happen (rename), but a hand-edited one can: the sweep still finds our objects by name
      return [];
    }
  }

  private write(entries: Entry[]): void {
    if (this.dryRun) return;
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeFileSync(fd, `${JSON.stringify({ version: 1, entries } satisfies StateFile, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }

  /**
   * Read-modify-write under an exclusive lock file: two qslab processes on one machine (a run and `qslab net
   * clear`, two runs) would otherwise lose each other's entries, and a lost entry makes its owner refuse to shape
   * its own interface. The lock holds the owner's pid; a dead owner's lock is taken over.
   */
  private locked<T>(fn: () => T): T {
    if (this.dryRun) return fn();
    mkdirSync(dirname(this.path), { recursive: true });
    const lock = `${this.path}.lock`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const fd = openSync(lock, 'wx', 0o600);
        writeFileSync(fd, String(process.pid));
        closeSync(fd);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        let owner = NaN;
        try {
          owner = Number(readFileSync(lock, 'utf8'));
        } catch {
          continue; // released meanwhile
        }
        if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) {
          rmSync(lock, { force: true });
          continue;
        }
        if (Date.now() > deadline) throw new Error(`${lock} is held by pid ${owner} for more than 10 s; if no qslab runs, remove it`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
    }
    try {
      return fn();
    } finally {
      rmSync(lock, { force: true });
    }
  }

  /** Records an effect (before it is made). Idempotent. */
  record(effect: Effect, run: string): void {
    validate(effect);
    this.locked(() => {
      const entries = this.read();
      if (entries.some((e) => sameEffect(e.effect, effect))) return;
      entries.push({ effect, run, pid: process.pid, bootId: BOOT, at: new Date().toISOString() });
      this.write(entries);
    });
  }

  /** Drops an effect from the record (after it was undone). */
  forget(effect: Effect): void {
    this.forgetMany((e) => sameEffect(e.effect, effect));
  }

  forgetMany(pred: (e: Entry) => boolean): void {
    this.locked(() => {
      const entries = this.read();
      const left = entries.filter((e) => !pred(e));
      if (left.length !== entries.length) this.write(left);
    });
  }

  has(pred: (e: Entry) => boolean): boolean {
    return this.read().some(pred);
  }
}

// ---- live listing ---------------------------------------------------------------------------------------------

export async function listNetns(x: NetExec): Promise<string[]> {
  const r = await x.ip(['netns', 'list'], { query: true, allowFail: true });
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean);
}

export async function listLinks(x: NetExec, ns?: string): Promise<string[]> {
  const r = await x.ip([...nsArgs(ns), '-o', 'link', 'show'], { query: true, allowFail: true });
  const out: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)[@:]/.exec(line);
    if (m?.[1]) out.push(m[1]);
  }
  return out;
}

export interface NftTable { family: string; name: string }
export async function listNftTables(x: NetExec, ns?: string): Promise<NftTable[]> {
  const r = await x.nft(['list', 'tables'], ns, { query: true, allowFail: true });
  const out: NftTable[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^table\s+(\S+)\s+(\S+)/.exec(line.trim());
    if (m?.[1] && m[2]) out.push({ family: m[1], name: m[2] });
  }
  return out;
}

export async function listQdiscs(x: NetExec, ns?: string): Promise<string[]> {
  const r = await x.tc([...nsArgs(ns), 'qdisc', 'show'], { query: true, allowFail: true });
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

// ---- undo -----------------------------------------------------------------------------------------------------

async function nsExists(x: NetExec, ns: string | undefined): Promise<boolean> {
  if (!ns) return true;
  return (await listNetns(x)).includes(ns);
}

/** Undoes one effect; "already gone" is success. */
export async function undo(x: NetExec, e: Effect): Promise<void> {
  switch (e.kind) {
    case 'nft':
      if (await nsExists(x, e.ns)) {
        const tables = await listNftTables(x, e.ns);
        for (const t of tables.filter((t) => t.name === e.table)) {
          await x.nft(['delete', 'table', t.family, checkTable(t.name)], e.ns, { allowFail: true });
        }
      }
      return;
    case 'qdisc':
      if (await nsExists(x, e.ns)) {
        if (!(await listLinks(x, e.ns)).includes(e.dev)) return;
        // delete only if the qdisc there is still ours (root: handle 5153:; ingress: the ingress qdisc we added)
        const lines = await listQdiscs(x, e.ns);
        const ours = lines.some((l) => l.includes(` dev ${e.dev} `) && (e.parent === 'root' ? l.includes(` ${QDISC_HANDLE} `) : /^qdisc ingress ffff:/.test(l)));
        if (ours || x.dryRun) await x.tc([...nsArgs(e.ns), 'qdisc', 'del', 'dev', checkIfName(e.dev), e.parent === 'root' ? 'root' : 'ingress'], { allowFail: true });
      }
      return;
    case 'link':
      if (await nsExists(x, e.ns) && ((await listLinks(x, e.ns)).includes(e.name) || x.dryRun)) {
        await x.ip([...nsArgs(e.ns), 'link', 'del', checkIfName(e.name)], { allowFail: true });
      }
      return;
    case 'netns':
      if ((await listNetns(x)).includes(e.name) || x.dryRun) await x.ip(['netns', 'del', checkNetns(e.name)], { allowFail: true });
      return;
  }
}

const ORDER: Record<Effect['kind'], number> = { nft: 0, qdisc: 1, link: 2, netns: 3 };

export interface ClearOptions {
  exec?: NetExec;
  state?: NetState;
  /** Only this run's entries and names (`qslab-<run>-*`, `qslab_<run>`); default: all of qslab's. */
  run?: string;
  /** Also remove what a live owner (another running controller) holds. Default false. */
  includeLive?: boolean;
  /** Sweep leftovers by name prefix as well as the record (default true). */
  sweep?: boolean;
}

export interface ClearReport {
  undone: Effect[];
  swept: Effect[];
  keptLive: Effect[];
}

/**
 * Removes everything this machine's qslab made: first what the state file records (newest first, nft → qdisc →
 * link → netns), then leftovers found by name (`qslab-` namespaces, `qs<hex>[hni]` links in the root namespace,
 * `qslab_` nft tables in the root namespace). Objects whose recorded owner still runs are kept unless
 * `includeLive`. Never touches a name outside those patterns.
 */
export async function clear(opts: ClearOptions = {}): Promise<ClearReport> {
  const x = opts.exec ?? new NetExec();
  const st = opts.state ?? new NetState(defaultStatePath(), x.dryRun);
  const report: ClearReport = { undone: [], swept: [], keptLive: [] };
  const all = st.read();
  const mine = (e: Entry) => !opts.run || e.run === opts.run;
  const live = all.filter((e) => mine(e) && !opts.includeLive && ownerAlive(e) && e.pid !== process.pid);
  const todo = all
    .filter((e) => mine(e) && !live.includes(e))
    .map((e, i) => ({ e, i }))
    .sort((a, b) => ORDER[a.e.effect.kind] - ORDER[b.e.effect.kind] || b.i - a.i)
    .map(({ e }) => e);
  report.keptLive = live.map((e) => e.effect);
  for (const e of todo) {
    await undo(x, e.effect);
    st.forget(e.effect);
    report.undone.push(e.effect);
  }
  if (opts.sweep === false) return report;

  // protected: names a live owner holds (another controller's running rig)
  const keep = new Set<string>();
  for (const e of live) {
    const ef = e.effect;
    if (ef.kind === 'netns') keep.add(`ns:${ef.name}`);
    if (ef.kind === 'link' && !ef.ns) keep.add(`link:${ef.name}`);
    if (ef.kind === 'nft' && !ef.ns) keep.add(`nft:${ef.table}`);
  }
  const nsPrefix = opts.run ? `qslab-${opts.run}-` : 'qslab-';
  const tablePrefix = opts.run ? `qslab_${opts.run}` : 'qslab_';
  // A namespace with processes in it is in use: another controller (another checkout, or a test with its own
  // state file) runs a node in it. Its namespace, veth host side and run table are left alone unless includeLive;
  // a crashed controller's nodes die with it, so its namespaces are empty and go.
  if (!opts.includeLive) {
    for (const ns of (await listNetns(x)).filter((n) => NETNS_RE.test(n) && n.startsWith(nsPrefix) && !keep.has(`ns:${n}`))) {
      const pids = await x.ip(['netns', 'pids', ns], { allowFail: true, query: true });
      if (!pids.stdout.trim()) continue;
      keep.add(`ns:${ns}`);
      for (const l of await listLinks(x, ns)) if (OUR_LINK_RE.test(l)) keep.add(`link:${l.slice(0, -1)}h`);
      const run = /^qslab-(.+)-\d+$/.exec(ns)?.[1];
      if (run) keep.add(`nft:qslab_${run}`);
      report.keptLive.push({ kind: 'netns', name: ns });
    }
  }
  for (const t of await listNftTables(x)) {
    if (!NFT_TABLE_RE.test(t.name) || !t.name.startsWith(tablePrefix) || keep.has(`nft:${t.name}`)) continue;
    if (opts.run && t.name !== `qslab_${opts.run}`) continue;
    await x.nft(['delete', 'table', t.family, t.name], undefined, { allowFail: true });
    report.swept.push({ kind: 'nft', table: t.name });
  }
  const nss = (await listNetns(x)).filter((n) => NETNS_RE.test(n) && n.startsWith(nsPrefix) && !keep.has(`ns:${n}`));
  for (const ns of nss) {
    await x.ip(['netns', 'del', ns], { allowFail: true });
    report.swept.push({ kind: 'netns', name: ns });
  }
  if (!opts.run) {
    // veth host sides / ifbs left in the root namespace (a veth whose namespace is gone is gone too)
    for (const l of await listLinks(x)) {
      if (!OUR_LINK_RE.test(l) || keep.has(`link:${l}`)) continue;
      await x.ip(['link', 'del', l], { allowFail: true });
      report.swept.push({ kind: 'link', name: l });
    }
  }
  if (!x.dryRun) st.forgetMany((e) => mine(e) && !live.includes(e));
  return report;
}

/**
 * What the controller calls when it starts: removes what dead controllers (SIGKILLed, crashed, previous boot)
 * left, keeps what a running one holds.
 */
export function startupClear(opts: Omit<ClearOptions, 'includeLive' | 'run'> = {}): Promise<ClearReport> {
  return clear({ ...opts, includeLive: false });
}

/**
 * Registers a cleanup.add() undo that clears this run's effects when the controller ends (normally or on
 * SIGINT/SIGTERM). SIGKILL is covered by the state file and startupClear(). Returns the unregister function.
 */
export function registerNetCleanup(run: string, opts: Omit<ClearOptions, 'run'> = {}): () => void {
  return cleanup.add(`net: clear run ${run}`, async () => {
    await clear({ ...opts, run, includeLive: true });
  });
}

// ---- guards ---------------------------------------------------------------------------------------------------

export class ShapeRefused extends Error {}

/** Interfaces that carry a default route (IPv4 or IPv6) in namespace `ns` (root when absent). */
export async function defaultRouteDevs(x: NetExec, ns?: string): Promise<string[]> {
  const devs = new Set<string>();
  for (const fam of ['-4', '-6']) {
    const r = await x.ip([...nsArgs(ns), fam, '-j', 'route', 'show', 'default'], { query: true, allowFail: true });
    try {
      for (const route of JSON.parse(r.stdout || '[]') as { dev?: string }[]) if (route.dev) devs.add(route.dev);
    } catch {
      // no JSON: no routes
    }
  }
  return [...devs];
}

export interface ShapeCheck {
  dev: string;
  ns?: string;
  /** Interfaces named in the rig file (e.g. rig.net.interfaces). */
  rigInterfaces?: readonly string[];
  force?: boolean;
  state?: NetState;
}

/**
 * Throws ShapeRefused unless `dev` may be shaped: it must be named in the rig file or made by qslab (a link in the
 * state record, or any interface inside a qslab namespace), and must not carry the default route unless `force`.
 */
export async function checkShapeAllowed(x: NetExec, c: ShapeCheck): Promise<void> {
  checkIfName(c.dev);
  if (c.ns) checkNetns(c.ns);
  const st = c.state ?? new NetState();
  const ours = !!c.ns || OUR_LINK_RE.test(c.dev) && st.has((e) => e.effect.kind === 'link' && e.effect.name === c.dev);
  const named = (c.rigInterfaces ?? []).includes(c.dev);
  if (!ours && !named && !c.force) {
    throw new ShapeRefused(`refusing to shape ${c.dev}: it is neither named in the rig file (net.interfaces) nor made by qslab (use --force to override)`);
  }
  if (!c.force && (await defaultRouteDevs(x, c.ns)).includes(c.dev)) {
    throw new ShapeRefused(`refusing to shape ${c.dev}${c.ns ? ` in ${c.ns}` : ''}: it carries the default route (use --force to override)`);
  }
}

/** Interfaces a rig file allows shaping: `net.interfaces` (the lead adds this optional field to rigSchema). */
export function rigInterfaces(rig: unknown): string[] {
  const net = (rig as { net?: { interfaces?: unknown } } | null)?.net;
  return Array.isArray(net?.interfaces) ? net.interfaces.filter((s): s is string => typeof s === 'string') : [];
}
