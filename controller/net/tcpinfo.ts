// What TCP itself saw on a link: the kernel's TCP_INFO per socket (read with `ss -tinO`, which asks inet_diag for
// it, so any socket of the namespace can be read without touching the process that owns it) and the namespace's
// TCP counters from /proc/<pid>/net/snmp (exact per namespace: a virtual node alone in its namespace gets its own).
import { readFileSync } from 'node:fs';
import { NetExec } from './exec.js';

export interface TcpInfo {
  local: string;
  peer: string;
  rttMs: number;
  rttVarMs: number;
  /** Retransmitted segments over the socket's life (TCP_INFO tcpi_total_retrans). */
  retrans: number;
  bytesSent: number;
  bytesRetrans: number;
  segsOut: number;
}

/** Parses `ss -tinHO` lines (one socket per line). Lines that are not sockets are ignored. */
export function parseSs(out: string): TcpInfo[] {
  const res: TcpInfo[] = [];
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !/^\d+$/.test(f[0]!)) continue;
    const kv = (k: string): string | undefined => new RegExp(`(?:^|\\s)${k}:(\\S+)`).exec(line)?.[1];
    const rtt = kv('rtt');
    if (!rtt) continue;
    const [avg, vari] = rtt.split('/').map(Number);
    const retrans = kv('retrans');
    res.push({
      local: f[2]!, peer: f[3]!,
      rttMs: avg ?? 0, rttVarMs: vari ?? 0,
      retrans: retrans ? Number(retrans.split('/')[1] ?? 0) : 0,
      bytesSent: Number(kv('bytes_sent') ?? 0), bytesRetrans: Number(kv('bytes_retrans') ?? 0), segsOut: Number(kv('segs_out') ?? 0),
    });
  }
  return res;
}

/** TCP_INFO of the established sockets with local or peer port `port` (in namespace `ns`, root when absent). */
export async function tcpInfo(port: number, ns?: string, exec = new NetExec()): Promise<TcpInfo[]> {
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new RangeError(`port ${port}`);
  const args = ['-tinHO', 'state', 'established', `( sport = :${port} or dport = :${port} )`];
  const r = ns ? await exec.run('ip', ['netns', 'exec', ns, 'ss', ...args], { query: true, allowFail: true })
    : await exec.run('ss', args, { query: true, allowFail: true });
  return r.code === 0 ? parseSs(r.stdout) : [];
}

export interface TcpCounters {
  activeOpens: number;
  outSegs: number;
  inSegs: number;
  retransSegs: number;
  outRsts: number;
}

/** TCP counters (RFC 4022 / MIB-II) of the network namespace process `pid` lives in. */
export function namespaceTcpCounters(pid: number): TcpCounters | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/snmp`, 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n').filter((l) => l.startsWith('Tcp:'));
  if (lines.length < 2) return null;
  const names = lines[0]!.split(/\s+/).slice(1);
  const vals = lines[1]!.split(/\s+/).slice(1).map(Number);
  const get = (k: string) => vals[names.indexOf(k)] ?? 0;
  return { activeOpens: get('ActiveOpens'), outSegs: get('OutSegs'), inSegs: get('InSegs'), retransSegs: get('RetransSegs'), outRsts: get('OutRsts') };
}

export function diffCounters(a: TcpCounters, b: TcpCounters): TcpCounters {
  return {
    activeOpens: b.activeOpens - a.activeOpens, outSegs: b.outSegs - a.outSegs, inSegs: b.inSegs - a.inSegs,
    retransSegs: b.retransSegs - a.retransSegs, outRsts: b.outRsts - a.outRsts,
  };
}

/**
 * Samples TCP_INFO of the sockets on `port` every `everyMs` while a burst runs: one RTT sample per socket per
 * poll, and the highest retransmission count seen per socket (a socket closed between polls is missed; the
 * namespace counters are the exact total where a namespace is private to the node).
 */
export class TcpInfoSampler {
  readonly rttMs: number[] = [];
  private readonly retrans = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private busy = false;
  polls = 0;

  constructor(private readonly port: number, private readonly ns?: string, private readonly everyMs = 100, private readonly exec = new NetExec()) {}

  start(): this {
    const tick = async () => {
      if (this.busy) return;
      this.busy = true;
      try {
        for (const s of await tcpInfo(this.port, this.ns, this.exec)) {
          if (this.rttMs.length < 100_000) this.rttMs.push(s.rttMs);
          const key = `${s.local}>${s.peer}`;
          this.retrans.set(key, Math.max(this.retrans.get(key) ?? 0, s.retrans));
        }
        this.polls++;
      } finally {
        this.busy = false;
      }
    };
    void tick();
    this.timer = setInterval(() => void tick(), this.everyMs);
    return this;
  }

  stop(): { rttMs: number[]; sockets: number; retrans: number; polls: number } {
    clearInterval(this.timer);
    return { rttMs: this.rttMs, sockets: this.retrans.size, retrans: [...this.retrans.values()].reduce((a, b) => a + b, 0), polls: this.polls };
  }
}
