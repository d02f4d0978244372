// Packet loss with nftables, for kernels without netem. Table `inet qslab_<run>` (in the node's namespace, or the
// root namespace for a host-side interface); per interface a base chain per direction matching only that
// interface (`iifname`/`oifname`), so loopback and other traffic are never touched.
//
// Random loss is exact in distribution: `numgen random mod 10000 < p*100 drop` (i.i.d. Bernoulli(p) per packet).
// Limits: nftables has no per-packet Markov state, so Gilbert-Elliott and the 4-state model cannot be reproduced.
//   - gilbert-elliott: approximated by deterministic periodic bursts `numgen inc mod N < k drop` (k = mean
//     bad-state loss run (1-h)/r, N = k / stationary bad-state loss) plus random loss for the good-state part
//     (1-k)·πG. Mean loss rate and mean burst length match; burst/gap length distributions (geometric in GE) do
//     not, and the period is shared by all flows on the interface.
//   - markov4: random loss at the model's stationary loss rate (burstiness lost).
//   - `limit` rules are token buckets (rate caps), not loss models; not used.
// When burst statistics matter, use the userspace relay (relay.ts), which runs the real state machines.
import type { LossModel } from './profiles.js';
import { NetExec, checkIfName, checkRun, checkTable } from './exec.js';
import { NetState, listNftTables } from './state.js';

export function nftTableName(run: string): string {
  return checkTable(`qslab_${checkRun(run)}`);
}

function chainSuffix(dev: string): string {
  return checkIfName(dev).replace(/[^A-Za-z0-9_]/g, '_');
}

export interface LossRules {
  /** Rule bodies (after `add rule inet T chain`), without the interface match. */
  rules: string[][];
  approximated: boolean;
  note: string;
  /** Loss rate the rules realize on average (0-1). */
  meanLoss: number;
}

const per10k = (pct: number) => Math.round(pct * 100);

/** Stationary loss rate of netem's 4-state model (percentages in, probability out). */
export function markov4Loss(l: Extract<LossModel, { model: 'markov4' }>): number {
  const [p13, p31, p32, p23, p14] = [l.p13, l.p31, l.p32, l.p23, l.p14].map((v) => v / 100) as [number, number, number, number, number];
  // states 1 gap-rx, 2 burst-rx, 3 burst-loss, 4 gap-loss (netem loss_4state)
  const P = [
    [1 - p13 - p14, 0, p13, p14],
    [0, 1 - p23, p23, 0],
    [p31, p32, 1 - p31 - p32, 0],
    [1, 0, 0, 0],
  ];
  let v = [1, 0, 0, 0];
  for (let it = 0; it < 20000; it++) {
    const n = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) n[j]! += v[i]! * P[i]![j]!;
    v = n;
  }
  return v[2]! + v[3]!;
}

/** The nft rule bodies for a loss model (see the file comment for the approximations). */
export function lossRules(loss: LossModel): LossRules {
  switch (loss.model) {
    case 'none':
      return { rules: [], approximated: false, note: 'no loss', meanLoss: 0 };
    case 'random': {
      const n = per10k(loss.p);
      return { rules: n > 0 ? [['numgen', 'random', 'mod', '10000', '<', String(n), 'counter', 'drop']] : [], approximated: false, note: `random ${loss.p}%`, meanLoss: n / 10000 };
    }
    case 'gilbert-elliott': {
      const p = loss.p / 100, r = loss.r / 100, lb = loss.one_minus_h / 100, lg = loss.one_minus_k / 100;
      const piB = p + r > 0 ? p / (p + r) : 0;
      const rules: string[][] = [];
      const goodPart = (1 - piB) * lg;
      if (per10k(goodPart * 100) > 0) rules.push(['numgen', 'random', 'mod', '10000', '<', String(per10k(goodPart * 100)), 'counter', 'drop']);
      const badPart = piB * lb;
      let note = `mean loss ${(100 * (goodPart + badPart)).toFixed(2)}%`;
      let mean = per10k(goodPart * 100) / 10000;
      if (badPart > 0 && r > 0) {
        const k = Math.max(1, Math.round(lb / r));
        const N = Math.max(k + 1, Math.round(k / badPart));
        rules.push(['numgen', 'inc', 'mod', String(N), '<', String(k), 'counter', 'drop']);
        note += `, periodic bursts of ${k} every ${N} packets (GE state not reproducible in nftables)`;
        mean += (k / N) * (1 - mean);
      } else if (badPart > 0) {
        rules.push(['counter', 'drop']);
        mean = 1;
        note += ', absorbing bad state: drop all';
      }
      return { rules, approximated: true, note, meanLoss: mean };
    }
    case 'markov4': {
      const m = markov4Loss(loss);
      const n = per10k(m * 100);
      return { rules: n > 0 ? [['numgen', 'random', 'mod', '10000', '<', String(n), 'counter', 'drop']] : [], approximated: true, note: `random ${(m * 100).toFixed(2)}% (4-state stationary loss; bursts not reproducible in nftables)`, meanLoss: n / 10000 };
    }
  }
}

export interface NftLossOptions {
  run: string;
  dev: string;
  ns?: string;
  loss: LossModel;
  direction?: 'egress' | 'ingress' | 'both';
  exec?: NetExec;
  state?: NetState;
}

export interface NftLossPlan {
  table: string;
  argv: string[][];
  approximated: boolean;
  note: string;
  meanLoss: number;
}

/** The single atomic nft transaction (argv after `nft`) that (re)installs the loss rules for one interface. */
export function nftLossArgs(o: Pick<NftLossOptions, 'run' | 'dev' | 'loss' | 'direction'>): { args: string[]; rules: LossRules; table: string } {
  const table = nftTableName(o.run);
  const dev = checkIfName(o.dev);
  const sfx = chainSuffix(dev);
  const rules = lossRules(o.loss);
  const dir = o.direction ?? 'egress';
  const args: string[] = ['add', 'table', 'inet', table];
  const hooks: Array<[string, string, string]> = [];
  if (dir === 'ingress' || dir === 'both') hooks.push([`in_${sfx}`, 'prerouting', 'iifname']);
  if (dir === 'egress' || dir === 'both') hooks.push([`out_${sfx}`, 'postrouting', 'oifname']);
  for (const [chain, hook, match] of hooks) {
    args.push(';', 'add', 'chain', 'inet', table, chain, `{ type filter hook ${hook} priority -150 ; policy accept ; }`);
    args.push(';', 'flush', 'chain', 'inet', table, chain);
    for (const r of rules.rules) args.push(';', 'add', 'rule', 'inet', table, chain, match, `"${dev}"`, ...r);
  }
  return { args, rules, table };
}

/** Installs (idempotently, atomically) the loss rules for `dev`; records the table in the state file first. */
export async function applyNftLoss(o: NftLossOptions): Promise<NftLossPlan> {
  const x = o.exec ?? new NetExec();
  const st = o.state ?? new NetState(undefined, x.dryRun);
  const { args, rules, table } = nftLossArgs(o);
  st.record({ kind: 'nft', table, ...(o.ns ? { ns: o.ns } : {}) }, o.run);
  const r = await x.nft(args, o.ns);
  return { table, argv: [r.argv], approximated: rules.approximated, note: rules.note, meanLoss: rules.meanLoss };
}

/** Removes this run's nft table in `ns` (root when absent). */
export async function removeNftLoss(o: { run: string; ns?: string; exec?: NetExec; state?: NetState }): Promise<string[][]> {
  const x = o.exec ?? new NetExec();
  const st = o.state ?? new NetState(undefined, x.dryRun);
  const table = nftTableName(o.run);
  const out: string[][] = [];
  if ((await listNftTables(x, o.ns)).some((t) => t.family === 'inet' && t.name === table)) {
    out.push((await x.nft(['delete', 'table', 'inet', table], o.ns, { allowFail: true })).argv);
  }
  if (!x.dryRun) st.forget({ kind: 'nft', table, ...(o.ns ? { ns: o.ns } : {}) });
  return out;
}

/** Counters of qslab's drop rules in `ns`: packets dropped per chain (for status / tests). */
export async function nftDropCounters(run: string, ns?: string, exec?: NetExec): Promise<Record<string, number>> {
  const x = exec ?? new NetExec();
  const r = await x.nft(['list', 'table', 'inet', nftTableName(run)], ns, { query: true, allowFail: true });
  const out: Record<string, number> = {};
  let chain = '';
  for (const line of r.stdout.split('\n')) {
    const c = /^\s*chain (\S+)/.exec(line);
    if (c?.[1]) chain = c[1];
    const m = /counter packets (\d+)/.exec(line);
    if (m?.[1] && chain) out[chain] = (out[chain] ?? 0) + Number(m[1]);
  }
  return out;
}
