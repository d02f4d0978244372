// Userspace impairment relay (no root): listens on loopback, forwards to `upstream`, and applies a LinkProfile
// per direction (up = client -> upstream, down = upstream -> client).
//
// UDP (netem semantics): per datagram, loss (random / Gilbert-Elliott / 4-state, netem state machines), corruption
// (one bit flipped), duplication (the copy gets its own delay), serialization at rate_kbit (+ overhead_bytes per
// packet), then delay + jitter drawn independently per datagram, so jitter larger than the packet gap reorders, as
// in netem's tfifo; reorder_pct sends that share with no delay (netem `reorder`). `udpKeepOrder` forces FIFO.
//
// TCP: a byte stream cannot lose bytes. Each chunk read from a socket is split at the MSS (1448 B) into segments;
// each segment takes serialization at rate_kbit (+ overhead) and delay + jitter, and is never delivered before the
// previous segment of the same connection and direction (in-order delivery to the application). A segment the
// loss model drops is delivered after a retransmission timeout, the way TCP experiences an RTO-recovered loss:
// RTO = max(200 ms, 2 * RTT) with RTT = 2 * delay_ms, doubling on each repeated loss of the same segment (each
// retransmission takes a new loss decision), capped at 120 s; everything behind it waits (head-of-line blocking).
// After `tcpMaxRetries` consecutive losses of one segment the connection is reset, as TCP gives up. Fast
// retransmit (recovery in ~1 RTT when later segments are in flight) is not modelled: the RTO path is the worst
// case and the usual one for the short flights of a handshake. Corruption, duplication and reordering do not
// apply to TCP (TCP repairs them below the application). A FIN is forwarded after the data before it
// (half-close supported); a RST or error on one side resets the other; close propagates.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket, type RemoteInfo } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import { cleanup } from '../cleanup.js';
import type { LinkProfile } from './profiles.js';
import { LinkDirection, Scheduler, type DirectionStats } from './relay-model.js';

export type { DirectionStats } from './relay-model.js';

export const TCP_MSS = 1448;
const HIGH_WATER = 1 << 20;
const LOW_WATER = 1 << 18;

export interface RelayOptions {
  upstream: { host: string; port: number };
  listen?: { host?: string; port?: number };
  profile: LinkProfile;
  seed: number;
  protocol: 'tcp' | 'udp';
  /** UDP: keep datagrams in order despite jitter (default false = netem behaviour). */
  udpKeepOrder?: boolean;
  /** UDP: queue limit in datagrams per direction (netem default 1000). */
  udpQueueLimit?: number;
  /** TCP: consecutive losses of one segment before the connection is reset (default 8). */
  tcpMaxRetries?: number;
  /** TCP: segment size (default 1448). */
  mss?: number;
}

export interface RelayStats {
  protocol: 'tcp' | 'udp';
  profile: string;
  /** TCP connections / UDP client flows seen. */
  flows: number;
  /** TCP connections reset by the retransmission cap. */
  resets: number;
  up: DirectionStats;
  down: DirectionStats;
}

interface Flow {
  lastAt: number;
  pending: number;
}

export class ImpairmentRelay {
  private readonly sched = new Scheduler();
  private readonly up: LinkDirection;
  private readonly down: LinkDirection;
  private server: Server | null = null;
  private udp: UdpSocket | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly udpFlows = new Map<string, { sock: UdpSocket; up: Flow; down: Flow }>();
  private flows = 0;
  private resets = 0;
  private unregister: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private profile: LinkProfile;

  constructor(private readonly opts: RelayOptions) {
    this.profile = opts.profile;
    this.up = new LinkDirection(opts.seed, 0, opts.profile, this.sched);
    this.down = new LinkDirection(opts.seed, 1, opts.profile, this.sched);
  }

  /** Switches the profile live (jamming phases). Packets already scheduled keep their times. */
  setProfile(p: LinkProfile): void {
    this.profile = p;
    this.up.profile = p;
    this.down.profile = p;
  }

  stats(): RelayStats {
    return {
      protocol: this.opts.protocol,
      profile: this.profile.name,
      flows: this.flows,
      resets: this.resets,
      up: this.up.stats(),
      down: this.down.stats(),
    };
  }

  async start(): Promise<{ host: string; port: number }> {
    const host = this.opts.listen?.host ?? '127.0.0.1';
    const port = this.opts.listen?.port ?? 0;
    this.unregister = cleanup.add(`impairment relay (${this.opts.protocol}) -> ${this.opts.upstream.host}:${this.opts.upstream.port}`, () => this.close());
    try {
      if (this.opts.protocol === 'tcp') {
        const server = createServer({ allowHalfOpen: true }, (s) => this.onTcp(s));
        this.server = server;
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, host, () => {
            server.off('error', reject);
            resolve();
          });
        });
        const a = server.address();
        if (!a || typeof a === 'string') throw new Error('relay: no TCP address');
        return { host, port: a.port };
      }
      const sock = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
      this.udp = sock;
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(port, host, () => {
          sock.off('error', reject);
          resolve();
        });
      });
      sock.on('message', (m, r) => this.onUdpUp(m, r));
      sock.on('error', () => {});
      return { host, port: sock.address().port };
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.unregister?.();
      this.sched.close();
      for (const s of this.sockets) s.destroy();
      for (const f of this.udpFlows.values()) f.sock.close();
      this.udpFlows.clear();
      const server = this.server;
      if (server) await new Promise<void>((r) => server.close(() => r()));
      const udp = this.udp;
      if (udp) await new Promise<void>((r) => udp.close(() => r()));
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------- UDP

  private onUdpUp(msg: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    let f = this.udpFlows.get(key);
    if (!f) {
      const sock = createSocket(isIPv6(this.opts.upstream.host) ? 'udp6' : 'udp4');
      sock.on('error', () => {});
      sock.connect(this.opts.upstream.port, this.opts.upstream.host);
      const flow = { sock, up: { lastAt: 0, pending: 0 }, down: { lastAt: 0, pending: 0 } };
      sock.on('message', (m) => this.udpImpair(this.down, flow.down, m, (b) => this.udp?.send(b, rinfo.port, rinfo.address)));
      this.udpFlows.set(key, flow);
      this.flows++;
      f = flow;
    }
    const sock = f.sock;
    this.udpImpair(this.up, f.up, msg, (b) => {
      try {
        sock.send(b);
      } catch {
        /* not yet connected or closed: the datagram is lost, as on a wire */
      }
    });
  }

  private udpImpair(dir: LinkDirection, flow: Flow, msg: Buffer, send: (b: Buffer) => void): void {
    const now = performance.now();
    const p = dir.profile;
    const seq = dir.arrive(msg.length, now);
    const dup = dir.miscRng.chance(p.duplicate_pct);
    if (dir.lost()) {
      dir.s.dropped++;
      return;
    }
    if (this.sched.size >= 2 * (this.opts.udpQueueLimit ?? 1000)) {
      dir.s.queueDropped++;
      return;
    }
    let data = msg;
    if (dir.miscRng.chance(p.corrupt_pct)) {
      data = Buffer.from(msg);
      if (data.length) {
        const bit = dir.miscRng.u32() % (data.length * 8);
        data[bit >> 3] = data[bit >> 3]! ^ (1 << (bit & 7));
      }
      dir.s.corrupted++;
    }
    for (let copy = 0; copy < (dup ? 2 : 1); copy++) {
      if (copy) dir.s.duplicated++;
      const txDone = dir.serialize(data.length, now);
      const immediate = dir.miscRng.chance(p.reorder_pct);
      let at = txDone + (immediate ? 0 : dir.sampleDelay());
      if (this.opts.udpKeepOrder) {
        at = Math.max(at, flow.lastAt);
        flow.lastAt = at;
      }
      const d = data;
      dir.deliver(seq, d.length, now, at, () => send(d));
    }
  }

  // ---------------------------------------------------------------- TCP

  private onTcp(client: Socket): void {
    this.flows++;
    const upstream = connect({ host: this.opts.upstream.host, port: this.opts.upstream.port, allowHalfOpen: true });
    this.sockets.add(client);
    this.sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const reset = () => {
      for (const s of [client, upstream]) if (!s.destroyed) s.resetAndDestroy();
    };
    this.pipeTcp(client, upstream, this.up, reset);
    this.pipeTcp(upstream, client, this.down, reset);
  }

  private pipeTcp(src: Socket, dst: Socket, dir: LinkDirection, reset: () => void): void {
    const flow: Flow = { lastAt: 0, pending: 0 };
    const mss = this.opts.mss ?? TCP_MSS;
    const maxRetries = this.opts.tcpMaxRetries ?? 8;
    let paused = false;
    let ended = false;
    let dead = false;
    src.on('data', (chunk: Buffer) => {
      if (dead) return;
      const now = performance.now();
      for (let off = 0; off < chunk.length; off += mss) {
        const seg = chunk.subarray(off, Math.min(off + mss, chunk.length));
        const p = dir.profile;
        const seq = dir.arrive(seg.length, now);
        const txDone = dir.serialize(seg.length, now);
        let wait = 0;
        let rto = Math.max(200, 4 * p.delay_ms);
        let retries = 0;
        while (dir.lost()) {
          dir.s.retransmitted++;
          if (++retries > maxRetries) {
            dead = true;
            this.resets++;
            reset();
            return;
          }
          wait += rto;
          rto = Math.min(rto * 2, 120_000);
        }
        const at = Math.max(txDone + wait + dir.sampleDelay(), flow.lastAt);
        flow.lastAt = at;
        flow.pending += seg.length;
        dir.deliver(seq, seg.length, now, at, () => {
          flow.pending -= seg.length;
          if (!dst.destroyed && dst.writable) dst.write(seg);
          if (paused && flow.pending < LOW_WATER && !src.destroyed) {
            paused = false;
            src.resume();
          }
        });
      }
      if (flow.pending > HIGH_WATER && !paused) {
        paused = true;
        src.pause();
      }
    });
    src.on('end', () => {
      ended = true;
      // The FIN follows the data before it, with one more one-way delay.
      const at = Math.max(performance.now() + dir.profile.delay_ms, flow.lastAt);
      flow.lastAt = at;
      this.sched.at(at, () => {
        if (!dst.destroyed) dst.end();
      });
    });
    src.on('error', () => {
      /* reported through 'close' (hadError) */
    });
    src.on('close', (hadError) => {
      this.sockets.delete(src);
      if (hadError || !ended) reset();
    });
  }
}
