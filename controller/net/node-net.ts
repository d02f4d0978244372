// Kernel shaping for the virtual rig (root only): each virtual node runs in its own network namespace, joined to
// the host by a veth pair. A cell's profile is split between the kernel and the userspace relay:
//   kernel — rate (tbf on the egress of both veth ends: node side = uplink, host side = downlink) and random loss
//            (nftables on the same egresses), or all of it with netem where the kernel has netem;
//   relay  — what the kernel lacks here (delay, jitter, Gilbert-Elliott/4-state bursts, corruption, ...). The relay
//            listens on the host side of the node's veth, so every byte crosses the shaped veth.
// Realized figures come from the kernel: nft drop counters and veth packet counters per direction, and the node
// namespace's own TCP counters (retransmissions).
import { NetExec } from './exec.js';
import { NetState, clear, registerNetCleanup } from './state.js';
import { createNodeNet, destroyNodeNet, type NodeNet } from './netns.js';
import { applyShaping, probe, type KernelCaps, type ShapePlan } from './tc.js';
import { applyNftLoss, nftDropCounters } from './nft.js';
import { makeProfile, type LinkProfile } from './profiles.js';

export interface KernelShape {
  /** Who did what, for the report: e.g. "kernel: tbf 2000 kbit + nft random 5% | relay: delay_ms, jitter_ms". */
  backend: string;
  /** The profile left for the relay (loss/rate removed where the kernel did them). */
  residual: LinkProfile;
  plans: ShapePlan[];
}

export interface VethCounters {
  upPackets: number;
  downPackets: number;
  upDropped: number;
  downDropped: number;
}

/** Whether this process can shape virtual nodes with the kernel. */
export function kernelShapingAvailable(): boolean {
  return process.getuid?.() === 0;
}

export class NodeNetworks {
  readonly nets = new Map<string, NodeNet>();
  caps?: KernelCaps;
  private unregister?: () => void;
  private index = 0;

  constructor(readonly run: string, readonly exec = new NetExec(), readonly state = new NetState()) {}

  async init(): Promise<KernelCaps> {
    this.caps = await probe({ exec: this.exec, state: this.state });
    if (!this.caps.netns) throw new Error(`network namespaces unavailable: ${this.caps.errors.netns ?? 'ip netns add failed'}`);
    this.unregister = registerNetCleanup(this.run, { exec: this.exec, state: this.state });
    return this.caps;
  }

  async add(node: string): Promise<NodeNet> {
    const n = await createNodeNet({ run: this.run, index: this.index++, exec: this.exec, state: this.state });
    this.nets.set(node, n);
    return n;
  }

  /**
   * How a profile splits between the kernel and the relay here (no side effects, so the relay can switch at
   * once when a jamming phase starts): netem takes everything; otherwise tbf takes the rate, nftables random
   * loss, and the relay the rest. nftables cannot keep Gilbert-Elliott / 4-state state: those stay with the
   * relay, which runs the real models.
   */
  split(p: LinkProfile): { residual: LinkProfile; kernelLoss: boolean; netem: boolean; relayParts: string[] } {
    const netem = !!this.caps?.netem;
    if (netem) return { residual: makeProfile({ name: p.name, description: 'all parts shaped by netem' }), kernelLoss: true, netem, relayParts: [] };
    const kernelLoss = p.loss.model === 'random';
    const relayParts = [
      ...(['delay_ms', 'jitter_ms', 'corrupt_pct', 'duplicate_pct', 'reorder_pct'] as const).filter((k) => p[k] > 0),
      ...(!kernelLoss && p.loss.model !== 'none' ? [`loss (${p.loss.model})`] : []),
    ];
    return { residual: { ...p, rate_kbit: 0, overhead_bytes: 0, loss: kernelLoss ? { model: 'none' } : p.loss }, kernelLoss, netem, relayParts };
  }

  /** Shapes a node's veth for a profile (idempotent; called again on each jamming phase). */
  async shape(node: string, p: LinkProfile): Promise<KernelShape> {
    const n = this.nets.get(node);
    if (!n || !this.caps) throw new Error(`no namespace for node ${node}`);
    const sp = this.split(p);
    // The run's nft table in the root namespace is shared by every node's host-side chain, so loss is set per
    // interface chain here (an empty chain for no loss), never by dropping the table.
    const common = { profile: p, caps: this.caps, run: this.run, exec: this.exec, state: this.state, nftLoss: false, direction: 'egress' as const };
    const plans = [
      await applyShaping({ ...common, dev: n.nodeIf, ns: n.ns }),
      await applyShaping({ ...common, dev: n.hostIf }),
    ];
    let nftNote = '';
    if (!sp.netem) {
      const loss = sp.kernelLoss ? p.loss : { model: 'none' as const };
      for (const [dev, ns] of [[n.nodeIf, n.ns], [n.hostIf, undefined]] as const) {
        nftNote = (await applyNftLoss({ run: this.run, dev, ...(ns ? { ns } : {}), loss, direction: 'egress', exec: this.exec, state: this.state })).note;
      }
    }
    const kernel: string[] = [];
    if (sp.netem) kernel.push('netem');
    else {
      if (p.rate_kbit > 0) kernel.push(`${plans[0]!.mode} ${p.rate_kbit} kbit`);
      if (sp.kernelLoss) kernel.push(`nft ${nftNote}`);
    }
    const backend = `kernel (${n.ns}): ${kernel.length ? kernel.join(' + ') : 'nothing to do'}; relay: ${sp.relayParts.length ? sp.relayParts.join(', ') : 'forwarding only'}`;
    return { backend, residual: sp.residual, plans };
  }

  /** Packets through and dropped by our rules, per direction (up = node -> host). */
  async counters(node: string): Promise<VethCounters> {
    const n = this.nets.get(node);
    if (!n) throw new Error(`no namespace for node ${node}`);
    const tx = async (dev: string, ns?: string): Promise<number> => {
      const r = await this.exec.ip([...(ns ? ['-n', ns] : []), '-s', '-j', 'link', 'show', 'dev', dev], { query: true, allowFail: true });
      try {
        const j = JSON.parse(r.stdout) as { stats64?: { tx?: { packets?: number } } }[];
        return j[0]?.stats64?.tx?.packets ?? 0;
      } catch {
        return 0;
      }
    };
    const drops = async (dev: string, ns?: string): Promise<number> => (await nftDropCounters(this.run, ns, this.exec))[`out_${dev}`] ?? 0;
    const [upPackets, downPackets, upDropped, downDropped] = await Promise.all([tx(n.nodeIf, n.ns), tx(n.hostIf), drops(n.nodeIf, n.ns), drops(n.hostIf)]);
    return { upPackets, downPackets, upDropped, downDropped };
  }

  async close(): Promise<void> {
    for (const n of this.nets.values()) await destroyNodeNet(n, { exec: this.exec, state: this.state }).catch(() => undefined);
    this.nets.clear();
    // the root namespace's nft table of this run (host-side veth rules)
    await clear({ run: this.run, includeLive: true, exec: this.exec, state: this.state }).catch(() => undefined);
    this.unregister?.();
  }
}

/** Realized loss per direction between two counter snapshots (drops ÷ packets offered). */
export function realizedKernelLoss(a: VethCounters, b: VethCounters): { up: number; down: number; upPackets: number; downPackets: number } {
  const upD = b.upDropped - a.upDropped, downD = b.downDropped - a.downDropped;
  const upP = b.upPackets - a.upPackets + upD, downP = b.downPackets - a.downPackets + downD;
  return { up: upP ? upD / upP : 0, down: downP ? downD / downP : 0, upPackets: upP, downPackets: downP };
}
