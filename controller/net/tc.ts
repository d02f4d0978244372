// Kernel shaping of one interface for a LinkProfile. With netem: delay/jitter/distribution, loss (random,
// Gilbert-Elliott `gemodel`, 4-state `state`), rate (+ overhead), corrupt, duplicate, reorder — one netem qdisc.
// Without netem (this CI kernel): rate with tbf (default) or htb, random loss with nftables (nft.ts); delay,
// jitter, corrupt, duplicate and reorder cannot be done in the kernel then and are reported as `forRelay`.
// Ingress shaping redirects the interface's ingress to an ifb and shapes the ifb's egress. Every qdisc is root
// handle 5153: ("QS"), applied with `tc qdisc replace` (idempotent) and recorded in the state file first.
import { createHash } from 'node:crypto';
import type { LinkProfile } from './profiles.js';
import { NetExec, checkIfName, nsArgs, type ExecResult } from './exec.js';
import { NetState, QDISC_HANDLE, checkShapeAllowed, listLinks } from './state.js';
import { applyNftLoss, removeNftLoss, nftTableName, type NftLossPlan } from './nft.js';

export interface KernelCaps {
  netem: boolean;
  tbf: boolean;
  htb: boolean;
  ifb: boolean;
  u32: boolean;
  nft: boolean;
  netns: boolean;
  errors: Record<string, string>;
}

/** Formats a number for tc: at most 4 decimals, no trailing zeros, no exponent. */
export function num(n: number): string {
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`not a non-negative finite number: ${n}`);
  return String(Number(n.toFixed(4)));
}
const pct = (n: number) => `${num(n)}%`;
const ms = (n: number) => `${num(n)}ms`;

/** netem options (everything after `netem`) for a profile. Exported for golden tests. */
export function netemOptions(p: LinkProfile, opts: { limit?: number } = {}): string[] {
  const a: string[] = [];
  const limit = opts.limit ?? (p.delay_ms > 0 || p.jitter_ms > 0 ? 10000 : undefined);
  if (limit !== undefined) a.push('limit', String(limit));
  if (p.delay_ms > 0 || p.jitter_ms > 0 || p.reorder_pct > 0) {
    a.push('delay', ms(p.delay_ms));
    if (p.jitter_ms > 0) {
      a.push(ms(p.jitter_ms));
      // netem's default jitter is uniform; normal/pareto come from iproute2's distribution tables
      if (p.jitter_distribution !== 'uniform') a.push('distribution', p.jitter_distribution);
    }
  }
  const l = p.loss;
  switch (l.model) {
    case 'none':
      break;
    case 'random':
      if (l.p > 0) a.push('loss', 'random', pct(l.p));
      break;
    case 'gilbert-elliott':
      a.push('loss', 'gemodel', pct(l.p), pct(l.r), pct(l.one_minus_h), pct(l.one_minus_k));
      break;
    case 'markov4':
      a.push('loss', 'state', pct(l.p13), pct(l.p31), pct(l.p32), pct(l.p23), pct(l.p14));
      break;
  }
  if (p.corrupt_pct > 0) a.push('corrupt', pct(p.corrupt_pct));
  if (p.duplicate_pct > 0) a.push('duplicate', pct(p.duplicate_pct));
  if (p.reorder_pct > 0) a.push('reorder', pct(p.reorder_pct));
  if (p.rate_kbit > 0) {
    a.push('rate', `${num(p.rate_kbit)}kbit`);
    if (p.overhead_bytes > 0) a.push(String(p.overhead_bytes));
  }
  return a;
}

/** tbf options for a rate: burst = max(2 full frames, 5 ms at the rate), 50 ms queue. */
export function tbfOptions(rateKbit: number, overheadBytes = 0): string[] {
  if (!(rateKbit > 0)) throw new RangeError('tbf needs rate_kbit > 0');
  const burst = Math.max(2 * (1514 + overheadBytes), Math.ceil((rateKbit * 1000 / 8) * 0.005));
  const a = ['rate', `${num(rateKbit)}kbit`, 'burst', String(burst), 'latency', '50ms'];
  if (overheadBytes > 0) a.push('overhead', String(overheadBytes));
  return a;
}

export type RateShaper = 'tbf' | 'htb';
export type Direction = 'egress' | 'ingress' | 'both';

export interface ShapeTarget {
  dev: string;
  /** Namespace the interface lives in (root when absent). */
  ns?: string;
}

export interface ShapeOptions extends ShapeTarget {
  profile: LinkProfile;
  caps: Pick<KernelCaps, 'netem'>;
  run: string;
  direction?: Direction;
  /** Without netem: which qdisc limits the rate (default tbf). */
  rateShaper?: RateShaper;
  /** Without netem: do random loss with nftables (default true). */
  nftLoss?: boolean;
  exec?: NetExec;
  state?: NetState;
  force?: boolean;
  rigInterfaces?: readonly string[];
}

export interface ShapePlan {
  mode: 'netem' | 'tbf' | 'htb' | 'none';
  /** Exact argv of every command made (or, in dry-run mode, that would be made). */
  argv: string[][];
  /** Profile parts the kernel could not do here (the userspace relay must cover them). */
  forRelay: string[];
  nft?: NftLossPlan;
}

/** The ifb a (ns, dev) pair redirects its ingress to: qs + 10 hex + i. */
export function ifbName(t: ShapeTarget): string {
  const h = createHash('sha256').update(`${t.ns ?? ''}/${checkIfName(t.dev)}`).digest('hex').slice(0, 10);
  return `qs${h}i`;
}

/** Argv (without the leading `tc`) of the root qdisc commands for one device. */
export function rootQdiscArgs(t: ShapeTarget, kind: 'netem' | 'tbf' | 'htb', p: LinkProfile): string[][] {
  const base = [...nsArgs(t.ns), 'qdisc', 'replace', 'dev', checkIfName(t.dev), 'root', 'handle', QDISC_HANDLE];
  if (kind === 'netem') return [[...base, 'netem', ...netemOptions(p)]];
  if (kind === 'tbf') return [[...base, 'tbf', ...tbfOptions(p.rate_kbit, p.overhead_bytes)]];
  const cls = ['rate', `${num(p.rate_kbit)}kbit`, 'ceil', `${num(p.rate_kbit)}kbit`];
  if (p.overhead_bytes > 0) cls.push('overhead', String(p.overhead_bytes));
  return [
    [...base, 'htb', 'default', '1'],
    [...nsArgs(t.ns), 'class', 'replace', 'dev', t.dev, 'parent', QDISC_HANDLE, 'classid', `${QDISC_HANDLE}1`, 'htb', ...cls],
  ];
}

async function rootKind(x: NetExec, t: ShapeTarget): Promise<string | null> {
  const r = await x.tc([...nsArgs(t.ns), 'qdisc', 'show', 'dev', t.dev, 'root'], { query: true, allowFail: true });
  const m = /^qdisc (\S+) (\S+)/.exec(r.stdout.trim());
  return m?.[1] && m[2] === QDISC_HANDLE ? m[1] : null;
}

async function shapeRoot(x: NetExec, st: NetState, run: string, t: ShapeTarget, kind: 'netem' | 'tbf' | 'htb', p: LinkProfile, out: string[][]): Promise<void> {
  st.record({ kind: 'qdisc', dev: t.dev, ...(t.ns ? { ns: t.ns } : {}), parent: 'root' }, run);
  const cur = await rootKind(x, t);
  if (cur && cur !== kind) out.push((await x.tc([...nsArgs(t.ns), 'qdisc', 'del', 'dev', t.dev, 'root'], { allowFail: true })).argv);
  for (const a of rootQdiscArgs(t, kind, p)) out.push((await x.tc(a)).argv);
}

async function setupIfb(x: NetExec, st: NetState, run: string, t: ShapeTarget, out: string[][]): Promise<string> {
  const ifb = ifbName(t);
  st.record({ kind: 'link', name: ifb, ...(t.ns ? { ns: t.ns } : {}) }, run);
  if (x.dryRun || !(await listLinks(x, t.ns)).includes(ifb)) out.push((await x.ip([...nsArgs(t.ns), 'link', 'add', ifb, 'type', 'ifb'])).argv);
  out.push((await x.ip([...nsArgs(t.ns), 'link', 'set', ifb, 'up'])).argv);
  st.record({ kind: 'qdisc', dev: t.dev, ...(t.ns ? { ns: t.ns } : {}), parent: 'ingress' }, run);
  out.push((await x.tc([...nsArgs(t.ns), 'qdisc', 'replace', 'dev', t.dev, 'handle', 'ffff:', 'ingress'])).argv);
  out.push((await x.tc([...nsArgs(t.ns), 'filter', 'replace', 'dev', t.dev, 'parent', 'ffff:', 'protocol', 'all', 'prio', '1',
    'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', ifb])).argv);
  return ifb;
}

function relayParts(p: LinkProfile): string[] {
  const r: string[] = [];
  if (p.delay_ms > 0) r.push('delay_ms');
  if (p.jitter_ms > 0) r.push('jitter_ms');
  if (p.corrupt_pct > 0) r.push('corrupt_pct');
  if (p.duplicate_pct > 0) r.push('duplicate_pct');
  if (p.reorder_pct > 0) r.push('reorder_pct');
  return r;
}

/**
 * Shapes `dev` (egress, ingress via ifb, or both) for a profile; idempotent (replace). Refuses interfaces that are
 * neither in the rig file nor made by qslab, and the default-route interface, unless `force`.
 */
export async function applyShaping(o: ShapeOptions): Promise<ShapePlan> {
  const x = o.exec ?? new NetExec();
  const st = o.state ?? new NetState(undefined, x.dryRun);
  const t: ShapeTarget = { dev: checkIfName(o.dev), ...(o.ns ? { ns: o.ns } : {}) };
  await checkShapeAllowed(x, { ...t, force: !!o.force, state: st, ...(o.rigInterfaces ? { rigInterfaces: o.rigInterfaces } : {}) });
  const p = o.profile;
  const dir = o.direction ?? 'egress';
  const plan: ShapePlan = { mode: 'none', argv: [], forRelay: [] };
  const targets: ShapeTarget[] = [];
  if (dir === 'egress' || dir === 'both') targets.push(t);
  let ifb: string | undefined;
  if (dir === 'ingress' || dir === 'both') {
    ifb = await setupIfb(x, st, o.run, t, plan.argv);
    targets.push({ dev: ifb, ...(t.ns ? { ns: t.ns } : {}) });
  }
  if (o.caps.netem) {
    plan.mode = 'netem';
    for (const tt of targets) await shapeRoot(x, st, o.run, tt, 'netem', p, plan.argv);
    return plan;
  }
  plan.forRelay = relayParts(p);
  if (p.rate_kbit > 0) {
    plan.mode = o.rateShaper ?? 'tbf';
    for (const tt of targets) await shapeRoot(x, st, o.run, tt, plan.mode, p, plan.argv);
  } else {
    for (const tt of targets) await removeRoot(x, tt, plan.argv);
  }
  if (p.loss.model !== 'none' && o.nftLoss !== false) {
    plan.nft = await applyNftLoss({
      run: o.run, dev: t.dev, ...(t.ns ? { ns: t.ns } : {}), loss: p.loss, direction: dir, exec: x, state: st,
    });
    plan.argv.push(...plan.nft.argv);
    if (plan.nft.approximated) plan.forRelay.push(`loss(${p.loss.model}: nft gives ${plan.nft.note})`);
  } else if (p.loss.model !== 'none') {
    plan.forRelay.push('loss');
  } else if (o.nftLoss !== false) {
    plan.argv.push(...(await removeNftLoss({ run: o.run, ...(t.ns ? { ns: t.ns } : {}), exec: x, state: st })));
  }
  return plan;
}

async function removeRoot(x: NetExec, t: ShapeTarget, out: string[][]): Promise<void> {
  if (await rootKind(x, t)) out.push((await x.tc([...nsArgs(t.ns), 'qdisc', 'del', 'dev', t.dev, 'root'], { allowFail: true })).argv);
}

/** Removes qslab's shaping from `dev`: root qdisc 5153:, the ingress redirect and its ifb, this run's nft table. */
export async function removeShaping(o: ShapeTarget & { run: string; exec?: NetExec; state?: NetState }): Promise<string[][]> {
  const x = o.exec ?? new NetExec();
  const st = o.state ?? new NetState(undefined, x.dryRun);
  const t: ShapeTarget = { dev: checkIfName(o.dev), ...(o.ns ? { ns: o.ns } : {}) };
  const out: string[][] = [];
  await removeRoot(x, t, out);
  const ifb = ifbName(t);
  const hasIfb = (await listLinks(x, t.ns)).includes(ifb);
  if (hasIfb || st.has((e) => e.effect.kind === 'qdisc' && e.effect.parent === 'ingress' && e.effect.dev === t.dev && e.effect.ns === t.ns)) {
    out.push((await x.tc([...nsArgs(t.ns), 'qdisc', 'del', 'dev', t.dev, 'ingress'], { allowFail: true })).argv);
  }
  if (hasIfb) out.push((await x.ip([...nsArgs(t.ns), 'link', 'del', ifb], { allowFail: true })).argv);
  out.push(...(await removeNftLoss({ run: o.run, ...(t.ns ? { ns: t.ns } : {}), exec: x, state: st })));
  if (!x.dryRun) {
    st.forgetMany((e) => {
      const f = e.effect;
      return (f.kind === 'qdisc' && (f.dev === t.dev || f.dev === ifb) && f.ns === t.ns) || (f.kind === 'link' && f.name === ifb && f.ns === t.ns);
    });
  }
  return out;
}

/** Probes the kernel in a scratch namespace (removed afterwards): netem, tbf, htb, ifb, u32, nftables. */
export async function probe(o: { exec?: NetExec; state?: NetState } = {}): Promise<KernelCaps> {
  const x = o.exec && !o.exec.dryRun ? o.exec : new NetExec();
  const st = o.state ?? new NetState();
  const ns = `qslab-probe${process.pid}`;
  const caps: KernelCaps = { netem: false, tbf: false, htb: false, ifb: false, u32: false, nft: false, netns: false, errors: {} };
  const ok = (key: keyof Omit<KernelCaps, 'errors'>, r: ExecResult) => {
    caps[key] = r.code === 0;
    if (r.code !== 0) caps.errors[key] = r.stderr.trim().split('\n')[0] ?? `exit ${r.code}`;
  };
  st.record({ kind: 'netns', name: ns }, 'probe');
  try {
    ok('netns', await x.ip(['netns', 'add', ns], { allowFail: true }));
    if (!caps.netns) return caps;
    await x.ip(['-n', ns, 'link', 'set', 'lo', 'up'], { allowFail: true });
    const q = (kind: string[]) => x.tc(['-n', ns, 'qdisc', 'replace', 'dev', 'lo', 'root', 'handle', QDISC_HANDLE, ...kind], { allowFail: true });
    ok('netem', await q(['netem', 'delay', '1ms']));
    ok('tbf', await q(['tbf', 'rate', '1000kbit', 'burst', '3200', 'latency', '50ms']));
    await x.tc(['-n', ns, 'qdisc', 'del', 'dev', 'lo', 'root'], { allowFail: true });
    ok('htb', await q(['htb', 'default', '1']));
    ok('ifb', await x.ip(['-n', ns, 'link', 'add', 'qsprobei', 'type', 'ifb'], { allowFail: true }));
    await x.tc(['-n', ns, 'qdisc', 'replace', 'dev', 'lo', 'handle', 'ffff:', 'ingress'], { allowFail: true });
    ok('u32', await x.tc(['-n', ns, 'filter', 'replace', 'dev', 'lo', 'parent', 'ffff:', 'protocol', 'all', 'prio', '1', 'u32', 'match', 'u32', '0', '0',
      'action', 'mirred', 'egress', 'redirect', 'dev', caps.ifb ? 'qsprobei' : 'lo'], { allowFail: true }));
    ok('nft', await x.nft(['add', 'table', 'inet', 'qslab_probe'], ns, { allowFail: true }));
  } finally {
    await x.ip(['netns', 'del', ns], { allowFail: true });
    st.forget({ kind: 'netns', name: ns });
  }
  return caps;
}

export { nftTableName };
