// The per-direction link model of the impairment relay: loss processes (netem-compatible), delay/jitter sampling,
// serialization at a rate, a precise scheduler and the statistics. relay.ts wires it to sockets.
import { performance } from 'node:perf_hooks';
import type { LinkProfile, LossModel } from './profiles.js';
import { Rng } from './relay-rng.js';

/** Loss decision per packet, with netem's exact state machines (sch_netem.c loss_gilb_ell / loss_4state). */
export class LossProcess {
  private kind: LossModel['model'] = 'none';
  /** GE: 0 good, 1 bad. 4-state: 1 TX in gap, 2 TX in burst, 3 lost in burst, 4 lost in gap. */
  private state = 0;

  constructor(private readonly rng: Rng) {}

  decide(m: LossModel): boolean {
    if (m.model !== this.kind) {
      this.kind = m.model;
      this.state = m.model === 'markov4' ? 1 : 0;
    }
    const u = () => this.rng.next() * 100;
    switch (m.model) {
      case 'none':
        return false;
      case 'random':
        return u() < m.p;
      case 'gilbert-elliott':
        if (this.state === 0) {
          if (u() < m.p) this.state = 1;
          return u() < m.one_minus_k;
        }
        if (u() < m.r) this.state = 0;
        return u() < m.one_minus_h;
      case 'markov4': {
        const rnd = u();
        switch (this.state) {
          case 1:
            if (rnd < m.p14) {
              this.state = 4;
              return true;
            }
            if (rnd < m.p14 + m.p13) {
              this.state = 3;
              return true;
            }
            return false;
          case 2:
            if (rnd < m.p23) {
              this.state = 3;
              return true;
            }
            return false;
          case 3:
            if (rnd < m.p32) this.state = 2;
            else if (rnd < m.p32 + m.p31) this.state = 1;
            else return true;
            return false;
          default:
            this.state = 1;
            return false;
        }
      }
    }
  }
}

/** Samples one-way delay (ms) with netem's meaning of jitter: SD for normal/pareto, +/- range for uniform. */
export function sampleDelay(p: LinkProfile, rng: Rng): number {
  const d = p.delay_ms;
  const j = p.jitter_ms;
  if (j <= 0) return d;
  let v: number;
  switch (p.jitter_distribution) {
    case 'normal':
      v = d + j * rng.gaussian();
      break;
    case 'uniform':
      v = d + j * (2 * rng.next() - 1);
      break;
    case 'pareto': {
      // Pareto with shape 3 (finite variance), shifted to mean 0 and scaled to SD j: heavy right tail.
      const xm = j / Math.sqrt(0.75);
      v = d + xm / Math.cbrt(1 - rng.next()) - 1.5 * xm;
      break;
    }
  }
  return Math.max(0, v);
}

class Welford {
  n = 0;
  mean = 0;
  m2 = 0;
  add(x: number): void {
    this.n++;
    const d = x - this.mean;
    this.mean += d / this.n;
    this.m2 += d * (x - this.mean);
  }
  get sd(): number {
    return this.n > 1 ? Math.sqrt(this.m2 / (this.n - 1)) : 0;
  }
}

export interface DirectionStats {
  /** Datagrams (UDP) or segments (TCP, chunks split at the MSS) offered to the link. */
  packets: number;
  bytes: number;
  delivered: number;
  deliveredBytes: number;
  /** UDP: datagrams lost by the loss model. TCP: always 0 (a stream loses no bytes). */
  dropped: number;
  /** UDP: tail drops at the queue limit. */
  queueDropped: number;
  /** TCP: lost transmissions repaired by the retransmission model (each repeated loss counts). */
  retransmitted: number;
  duplicated: number;
  /** Delivered after a packet with a higher sequence number. */
  reordered: number;
  corrupted: number;
  /** Applied delay (arrival -> scheduled delivery: queueing + serialization + delay/jitter + retransmissions). */
  delayMeanMs: number;
  delaySdMs: number;
  /** Mean lateness of actual delivery behind the schedule (timer precision). */
  schedulingLateMs: number;
  /** Loss-model decisions and losses; realizedLoss = losses / decisions (UDP: + queue drops / packets). */
  lossDecisions: number;
  losses: number;
  realizedLoss: number;
  /** Runs of consecutive losses in the loss-model decision sequence (GE / 4-state burst lengths). */
  lossBursts: { count: number; meanLength: number; maxLength: number };
  /** Delivered bits / (last delivery - first arrival), kbit/s. */
  throughputKbit: number;
}

type Task = { at: number; seq: number; fn: (late: number) => void };

/** Min-heap timer queue. Wakes by setTimeout ~1 ms early, then by setImmediate until due (sub-ms precision). */
export class Scheduler {
  private heap: Task[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private imm: NodeJS.Immediate | null = null;
  private armedAt = Infinity;
  private closed = false;

  get size(): number {
    return this.heap.length;
  }

  at(at: number, fn: (late: number) => void): void {
    if (this.closed) return;
    const h = this.heap;
    h.push({ at, seq: this.seq++, fn });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
    if (at < this.armedAt) this.arm();
  }

  close(): void {
    this.closed = true;
    this.disarm();
    this.heap = [];
  }

  private pop(): Task {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.imm) clearImmediate(this.imm);
    this.timer = null;
    this.imm = null;
    this.armedAt = Infinity;
  }

  private arm(): void {
    this.disarm();
    const top = this.heap[0];
    if (!top || this.closed) return;
    this.armedAt = top.at;
    const wait = top.at - performance.now();
    if (wait > 1.5) this.timer = setTimeout(() => this.run(), Math.floor(wait - 1));
    else this.imm = setImmediate(() => this.run());
  }

  private run(): void {
    this.timer = null;
    this.imm = null;
    this.armedAt = Infinity;
    const now = performance.now();
    while (this.heap.length && this.heap[0]!.at <= now + 0.02) {
      const t = this.pop();
      t.fn(now - t.at);
      if (this.closed) return;
    }
    this.arm();
  }
}

function less(a: Task, b: Task): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** One direction of the link: its RNG streams, loss state, serializer and statistics. */
export class LinkDirection {
  readonly lossRng: Rng;
  readonly delayRng: Rng;
  readonly miscRng: Rng;
  private readonly loss: LossProcess;
  private linkFree = 0;
  private seqOut = 0;
  private maxDelivered = -1;
  private burst = 0;
  private bursts = { count: 0, sum: 0, max: 0 };
  private delay = new Welford();
  private late = new Welford();
  private firstArrival = -1;
  private lastDelivery = -1;
  readonly s = {
    packets: 0, bytes: 0, delivered: 0, deliveredBytes: 0, dropped: 0, queueDropped: 0, retransmitted: 0,
    duplicated: 0, reordered: 0, corrupted: 0, lossDecisions: 0, losses: 0,
  };

  constructor(seed: number, dirIndex: number, public profile: LinkProfile, readonly sched: Scheduler) {
    this.lossRng = new Rng(seed, dirIndex * 3);
    this.delayRng = new Rng(seed, dirIndex * 3 + 1);
    this.miscRng = new Rng(seed, dirIndex * 3 + 2);
    this.loss = new LossProcess(this.lossRng);
  }

  /** Arrival bookkeeping; returns this packet's sequence number. */
  arrive(bytes: number, now: number): number {
    if (this.firstArrival < 0) this.firstArrival = now;
    this.s.packets++;
    this.s.bytes += bytes;
    return this.seqOut++;
  }

  /** One loss-model decision (with burst accounting). */
  lost(): boolean {
    const l = this.loss.decide(this.profile.loss);
    this.s.lossDecisions++;
    if (l) {
      this.s.losses++;
      this.burst++;
    } else if (this.burst) {
      this.endBurst();
    }
    return l;
  }

  private endBurst(): void {
    this.bursts.count++;
    this.bursts.sum += this.burst;
    this.bursts.max = Math.max(this.bursts.max, this.burst);
    this.burst = 0;
  }

  /** Serialization at rate_kbit with per-packet overhead; returns when the last bit left the link (ms). */
  serialize(bytes: number, now: number): number {
    const rate = this.profile.rate_kbit;
    if (rate <= 0) return now;
    const start = Math.max(now, this.linkFree);
    this.linkFree = start + ((bytes + this.profile.overhead_bytes) * 8) / rate;
    return this.linkFree;
  }

  sampleDelay(): number {
    return sampleDelay(this.profile, this.delayRng);
  }

  /** Schedules delivery at `at`; `applied` is recorded as the applied delay. */
  deliver(seq: number, bytes: number, arrival: number, at: number, fn: () => void): void {
    this.delay.add(at - arrival);
    this.sched.at(at, (late) => {
      this.late.add(late);
      this.s.delivered++;
      this.s.deliveredBytes += bytes;
      if (seq < this.maxDelivered) this.s.reordered++;
      else this.maxDelivered = seq;
      this.lastDelivery = performance.now();
      fn();
    });
  }

  stats(): DirectionStats {
    const b = { ...this.bursts };
    if (this.burst) {
      b.count++;
      b.sum += this.burst;
      b.max = Math.max(b.max, this.burst);
    }
    const s = this.s;
    const span = this.lastDelivery - this.firstArrival;
    const realizedLoss =
      s.retransmitted > 0 || s.dropped === 0
        ? s.lossDecisions ? s.losses / s.lossDecisions : 0
        : s.packets ? (s.dropped + s.queueDropped) / s.packets : 0;
    return {
      ...s,
      delayMeanMs: this.delay.mean,
      delaySdMs: this.delay.sd,
      schedulingLateMs: this.late.mean,
      realizedLoss,
      lossBursts: { count: b.count, meanLength: b.count ? b.sum / b.count : 0, maxLength: b.max },
      throughputKbit: span > 0 ? (s.deliveredBytes * 8) / span : 0,
    };
  }
}
