// Power model of a virtual node (DESIGN.md §4): the current a board would draw, driven by what a real process
// did — CPU time it used and bytes it wrote, read from /proc — never by what it reports about itself.
// The model keeps a ground-truth log of piecewise-constant (t0, t1, volts, amps) segments so any meter reading
// can be checked against the energy the model actually "spent". Numbers and sources: controller/power/README.md.
import { readdirSync, readFileSync } from 'node:fs';
import { hostNow } from '../drivers/meter.js';
import { Rng } from '../net/relay-rng.js';
import type { Board } from '../config/rig.js';

export interface BoardPower {
  /** Supply voltage at the meter (V). */
  volts: number;
  /** Whole board at rest: chip idle + board overhead (A at `volts`). */
  idleA: number;
  /** Extra current per fully busy core (A). */
  cpuActivePerCoreA: number;
  /** Cores the node's work can occupy at once (the firmware's workload task is one thread). */
  workCores: number;
  /** Extra current while the radio transmits (A). */
  txA: number;
  /** Effective on-air bit rate (b/s): airtime per byte sent = 8 / txBitRate, MAC overhead included. */
  txBitRate: number;
  /** Board-seconds of CPU work that one host CPU-second stands for (host core speed ÷ board core speed). */
  cpuScale: number;
  /** 1σ current noise, drawn per segment (A). */
  noiseA: number;
  /** 1σ supply ripple, drawn per segment (V). */
  rippleV: number;
}

// Why these numbers: README.md "Board profiles". Estimates are marked there; override per rig when measured.
export const BOARD_POWER: Record<Board, BoardPower> = {
  // ESP32 dev board on 5.0 V USB (linear LDO: input current ≈ module current). ESP32 datasheet, "Power
  // Consumption by Power Modes": Modem-sleep 240 MHz 30–68 mA (CPU idle → both cores busy ⇒ 19 mA/core);
  // "RF Power-Consumption Specifications": TX 802.11n OFDM MCS7 +14 dBm 180 mA ⇒ +150 mA over idle.
  // +25 mA board overhead (USB-UART bridge, LDO quiescent, LED) is an estimate.
  esp32: { volts: 5.0, idleA: 0.055, cpuActivePerCoreA: 0.019, workCores: 1, txA: 0.15, txBitRate: 20e6, cpuScale: 40, noiseA: 0.002, rippleV: 0.005 },
  // ESP32-S3 dev board on 5.0 V: awake idle 31.7 mA measured on a DevKitM-1 at 3.3 V (lucidar.me) + ~8 mA board
  // overhead (on-chip USB, no bridge); per-core and TX costs assumed equal to ESP32 (no S3 table at hand).
  esp32s3: { volts: 5.0, idleA: 0.040, cpuActivePerCoreA: 0.019, workCores: 1, txA: 0.15, txBitRate: 20e6, cpuScale: 33, noiseA: 0.002, rippleV: 0.005 },
  // Raspberry Pi 4 B at 5.1 V: idle 540 mA, `stress --cpu 4` 1280 mA (pidramble power benchmarks) ⇒ 185 mA/core;
  // Ethernet TX cost is an estimate.
  rpi4: { volts: 5.1, idleA: 0.54, cpuActivePerCoreA: 0.185, workCores: 1, txA: 0.05, txBitRate: 100e6, cpuScale: 3.5, noiseA: 0.01, rippleV: 0.01 },
  // Raspberry Pi 3 B at 5.1 V: idle 260 mA, 4-core stress 730 mA (pidramble) ⇒ 118 mA/core.
  rpi3: { volts: 5.1, idleA: 0.26, cpuActivePerCoreA: 0.118, workCores: 1, txA: 0.05, txBitRate: 100e6, cpuScale: 8.8, noiseA: 0.008, rippleV: 0.01 },
};

/** What a process did, as cumulative counters. Any source works: /proc for a real process, functions in tests. */
export interface ActivitySource {
  /** CPU time used so far (ns), all threads. */
  cpuNs(): number;
  /** Bytes written so far (anything the process wrote: sockets, pty, files). */
  txBytes(): number;
}

/**
 * A real process seen through /proc: CPU = Σ over threads of /proc/<pid>/task/<tid>/schedstat field 1 (ns on
 * CPU); bytes = /proc/<pid>/io `wchar`. Threads are tracked one by one so a thread that exits does not make the
 * sum go backwards (its last few µs are lost). A process that has exited keeps its last values.
 */
export interface ProcActivityOptions {
  /** Threads (by /proc comm) whose CPU time is not the board's: the POSIX node's "qs-uart" thread paces the
   * serial line the way a UART's hardware FIFO does, costing a real board no CPU. */
  excludeCpu?: RegExp;
  /** Only these threads' written bytes count as radio traffic (the workload task's sockets; not the serial
   * console the main thread and the UART thread write). Absent: the whole process's wchar. */
  txThreads?: RegExp;
}

export class ProcActivity implements ActivitySource {
  private readonly perTask = new Map<string, number>();
  private readonly perTaskTx = new Map<string, number>();
  private readonly comm = new Map<string, string>();
  private cpu = 0;
  private tx = 0;
  constructor(readonly pid: number, readonly o: ProcActivityOptions = {}) {
    this.cpuNs();
    this.txBytes();
  }

  private commOf(tid: string): string {
    let c = this.comm.get(tid);
    if (c === undefined) {
      try {
        c = readFileSync(`/proc/${this.pid}/task/${tid}/comm`, 'latin1').trim();
      } catch {
        c = '';
      }
      this.comm.set(tid, c);
    }
    return c;
  }

  cpuNs(): number {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${this.pid}/task`);
    } catch {
      return this.cpu; // gone: nothing more happens
    }
    for (const tid of tids) {
      if (this.o.excludeCpu && this.o.excludeCpu.test(this.commOf(tid))) continue;
      let ns: number;
      try {
        ns = Number(readFileSync(`/proc/${this.pid}/task/${tid}/schedstat`, 'latin1').split(' ', 1)[0]);
      } catch {
        continue; // exited between readdir and read
      }
      const last = this.perTask.get(tid) ?? 0;
      if (ns > last) {
        this.cpu += ns - last;
        this.perTask.set(tid, ns);
      }
    }
    return this.cpu;
  }

  txBytes(): number {
    if (this.o.txThreads) {
      let tids: string[];
      try {
        tids = readdirSync(`/proc/${this.pid}/task`);
      } catch {
        return this.tx;
      }
      for (const tid of tids) {
        if (!this.o.txThreads.test(this.commOf(tid))) continue;
        try {
          const m = /^wchar:\s*(\d+)/m.exec(readFileSync(`/proc/${this.pid}/task/${tid}/io`, 'latin1'));
          const v = m ? Number(m[1]) : 0;
          const last = this.perTaskTx.get(tid) ?? 0;
          if (v > last) {
            this.tx += v - last;
            this.perTaskTx.set(tid, v);
          }
        } catch {
          /* exited */
        }
      }
      return this.tx;
    }
    try {
      const m = /^wchar:\s*(\d+)/m.exec(readFileSync(`/proc/${this.pid}/io`, 'latin1'));
      if (m) this.tx = Math.max(this.tx, Number(m[1]));
    } catch {
      /* gone */
    }
    return this.tx;
  }
}

export interface PowerReading {
  v: number;
  a: number;
}

export interface Segment {
  t0: number;
  t1: number;
  v: number;
  a: number;
}

export interface PowerModelOptions {
  board: Board;
  activity: ActivitySource;
  /** Replace any profile number (e.g. a measured idle current, cpuScale 1 for tests that compare windows). */
  overrides?: Partial<BoardPower>;
  seed?: number;
  /** Log older than this (ms) behind the newest segment is dropped. */
  horizonMs?: number;
  /** Clock (ms); hostNow by default. */
  now?: () => number;
}

/**
 * current = idleA + cpuActivePerCoreA · (busy core-seconds / dt) + txA · (airtime / dt) + noise.
 * CPU work is converted to board time (× cpuScale) and airtime (bytes · 8 / txBitRate); both go into a backlog
 * that drains at most `workCores` (CPU) or 1 (radio) per wall second, so a board slower than the host stays busy
 * after the host is done — energy is conserved, the trace stretches (see `backlogSeconds`).
 */
export class PowerModel {
  readonly profile: BoardPower;
  private readonly rng: Rng;
  private readonly horizonMs: number;
  private readonly clock: () => number;
  // Contiguous segments: segment k spans [times[k], times[k+1]].
  private times: number[] = [];
  private volts: number[] = [];
  private amps: number[] = [];
  private lastCpu: number;
  private lastTx: number;
  private cpuBacklog = 0; // board core-seconds still to run
  private airBacklog = 0; // radio seconds still to send
  private cursor = 0;
  private timer?: NodeJS.Timeout;

  constructor(readonly opts: PowerModelOptions) {
    this.profile = { ...BOARD_POWER[opts.board], ...opts.overrides };
    this.rng = new Rng(opts.seed ?? 1, 0x9047);
    this.horizonMs = opts.horizonMs ?? 120_000;
    this.clock = opts.now ?? hostNow;
    this.lastCpu = opts.activity.cpuNs();
    this.lastTx = opts.activity.txBytes();
    this.times.push(this.clock());
  }

  /** Advances by itself every tickMs (1 ms default: finer than any op we time). */
  start(tickMs = 1): this {
    this.timer ??= setInterval(() => this.advance(this.clock()), tickMs);
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Start of the log (ms). */
  get startMs(): number {
    return this.times[0]!;
  }

  /** End of the log (ms): the model knows the current up to here. */
  get endMs(): number {
    return this.times[this.times.length - 1]!;
  }

  /** Work the board still owes (s): CPU core-seconds and radio airtime not yet drawn in the log. */
  get backlogSeconds(): { cpu: number; radio: number } {
    return { cpu: this.cpuBacklog, radio: this.airBacklog };
  }

  /** Adds one segment [endMs, nowMs] from the activity since the last call. */
  advance(nowMs: number): void {
    const t0 = this.endMs;
    if (!(nowMs > t0)) return;
    const p = this.profile;
    const dt = (nowMs - t0) / 1000;
    const cpu = this.opts.activity.cpuNs();
    const tx = this.opts.activity.txBytes();
    this.cpuBacklog += (Math.max(0, cpu - this.lastCpu) / 1e9) * p.cpuScale;
    this.airBacklog += (Math.max(0, tx - this.lastTx) * 8) / p.txBitRate;
    this.lastCpu = cpu;
    this.lastTx = tx;
    const busy = Math.min(this.cpuBacklog, p.workCores * dt);
    const air = Math.min(this.airBacklog, dt);
    this.cpuBacklog -= busy;
    this.airBacklog -= air;
    const a = p.idleA + (p.cpuActivePerCoreA * busy) / dt + (p.txA * air) / dt + p.noiseA * this.rng.gaussian();
    const v = p.volts + p.rippleV * this.rng.gaussian();
    this.times.push(nowMs);
    this.volts.push(v);
    this.amps.push(Math.max(0, a));
    this.trim();
  }

  private trim(): void {
    const cut = this.endMs - this.horizonMs;
    if (this.times.length < 4096 || this.times[2048]! > cut) return; // trim in blocks, not every tick
    let k = 0;
    while (k < this.amps.length - 1 && this.times[k + 1]! <= cut) k++;
    this.times = this.times.slice(k);
    this.volts = this.volts.slice(k);
    this.amps = this.amps.slice(k);
    this.cursor = 0;
  }

  /** Index of the segment containing t (t inside the log). Cursor first: emulators ask in time order. */
  private indexAt(t: number): number {
    const n = this.amps.length;
    let k = Math.min(this.cursor, n - 1);
    if (this.times[k]! <= t && t < this.times[k + 1]!) return k;
    if (k + 1 < n && this.times[k + 1]! <= t && t < this.times[k + 2]!) return (this.cursor = k + 1);
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.times[mid]! <= t) lo = mid;
      else hi = mid - 1;
    }
    return (this.cursor = lo);
  }

  /**
   * Volts and amps at host time t (ms). The model knows the current up to endMs (its last tick); a later t reads
   * the newest logged value, at most one tick old. It does not advance on demand: a segment cut short at an
   * arbitrary moment would hold the CPU time /proc has published so far — which moves in scheduler ticks
   * (~4 ms) — and a meter sampling right there would read a biased value.
   */
  sampleAt(t: number): PowerReading {
    const n = this.amps.length;
    if (n === 0) return { v: this.profile.volts, a: this.profile.idleA };
    if (t < this.startMs) throw new RangeError(`t=${t} is before the model's log (starts ${this.startMs}; horizon ${this.horizonMs} ms)`);
    if (t >= this.endMs) return { v: this.volts[n - 1]!, a: this.amps[n - 1]! };
    const k = this.indexAt(t);
    return { v: this.volts[k]!, a: this.amps[k]! };
  }

  currentAt(t: number): number {
    return this.sampleAt(t).a;
  }

  /** The log between t0 and t1 (segments clipped to the range). */
  segments(t0 = this.startMs, t1 = this.endMs): Segment[] {
    const out: Segment[] = [];
    for (let k = 0; k < this.amps.length; k++) {
      const a = Math.max(t0, this.times[k]!);
      const b = Math.min(t1, this.times[k + 1]!);
      if (b > a) out.push({ t0: a, t1: b, v: this.volts[k]!, a: this.amps[k]! });
    }
    return out;
  }

  /**
   * ∫ V·I dt over [t0, t1] (J) from the model's own log — independent of any meter. Past the log's end the last
   * segment holds (as sampleAt answers there): an emulated meter on its own clock may stamp a sample a few ms after
   * the model's last update.
   */
  groundTruthEnergy(t0: number, t1: number): number {
    if (t0 < this.startMs || t1 < t0 || !this.amps.length) {
      throw new RangeError(`energy window [${t0}, ${t1}] is outside the model's log [${this.startMs}, ${this.endMs}]`);
    }
    let e = 0;
    const last = this.amps.length - 1;
    for (let k = this.indexAt(t0); k <= last && this.times[k]! < t1; k++) {
      const a = Math.max(t0, this.times[k]!);
      const b = Math.min(t1, k === last ? Math.max(t1, this.times[k + 1]!) : this.times[k + 1]!);
      if (b > a) e += this.volts[k]! * this.amps[k]! * (b - a);
    }
    return e / 1000;
  }
}
