// A virtual node: the firmware's POSIX build on its own pseudo-terminal. Only the far end of the wire is
// emulated; the controller opens the pty path with serialport exactly as it opens /dev/ttyUSB0.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { cleanup } from '../cleanup.js';
import { NODE_BINARY } from '../paths.js';
import { spawnInNs } from '../net/netns.js';

export interface VirtualNodeOptions {
  name: string;
  board: string;
  baud: number;
  pace: boolean;
  binary?: string;
  /** Network namespace to run in (root only; see net/node-net.ts). */
  netns?: string;
  /** The node's marker line (a GPIO on a board): called on every edge with its host arrival time (ms). */
  onMarker?: (high: boolean, tMs: number) => void;
  /** Stable path to the node's pty (like /dev/serial/by-id/...), kept across power cycles. */
  link?: string;
  /** Called with the new process id each time the node boots (power-on). */
  onStart?: (pid: number) => void;
}

/** CLOCK_MONOTONIC ns (as the POSIX node stamps) → host ms since the epoch (the meters' time base). */
export function monotonicNsToHostMs(ns: bigint): number {
  const nowNs = process.hrtime.bigint();
  return performance.timeOrigin + performance.now() - Number(nowNs - ns) / 1e6;
}

export class VirtualNode {
  ptyPath = '';
  private child?: ChildProcess;
  private unregister?: () => void;
  readonly stderr: string[] = [];
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;

  constructor(readonly opts: VirtualNodeOptions) {}

  /** The path a driver opens: the stable link when there is one. */
  get path(): string {
    return this.opts.link ?? this.ptyPath;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return !!this.child && this.exitCode === null && this.exitSignal === null;
  }

  async start(timeoutMs = 5000): Promise<string> {
    const bin = this.opts.binary ?? NODE_BINARY;
    if (!existsSync(bin)) {
      throw new Error(`virtual node binary ${bin} is missing: run "npm run build:firmware" (needs a C compiler and libssl-dev)`);
    }
    const args = ['--pty', '--name', this.opts.name, '--board', this.opts.board, '--baud', String(this.opts.baud)];
    if (this.opts.pace) args.push('--pace');
    if (this.opts.link) args.push('--pty-link', this.opts.link);
    // The marker line: edges arrive on fd 3 (a pipe) as "<1|0> <CLOCK_MONOTONIC ns>" lines, stamped by the node
    // at the edge; Node's hrtime is the same clock, so the edge maps to host time without the pipe's latency.
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe'];
    if (this.opts.onMarker) {
      args.push('--marker-fd', '3');
      stdio.push('pipe');
    }
    // `ip netns exec` enters the namespace and execs the node: same pid, so /proc/<pid> is the node's.
    const child = this.opts.netns ? spawnInNs(this.opts.netns, [bin, ...args], { stdio })
      : spawn(bin, args, { stdio });
    const markerPipe = this.opts.onMarker ? (child.stdio[3] as NodeJS.ReadableStream | null) : null;
    if (markerPipe) {
      const cb = this.opts.onMarker!;
      createInterface({ input: markerPipe }).on('line', (line) => {
        const m = /^([01]) (\d{1,20})$/.exec(line);
        if (m) cb(m[1] === '1', monotonicNsToHostMs(BigInt(m[2]!)));
      });
      markerPipe.on('error', () => {});
    }
    this.child = child;
    this.exitCode = null;
    this.exitSignal = null;
    this.unregister?.();
    this.unregister = cleanup.add(`virtual node ${this.opts.name}`, () => this.stop());
    if (process.env.QSLAB_NODE_STDERR) child.stderr!.pipe(process.stderr);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      this.stderr.push(s);
      if (this.stderr.length > 50) this.stderr.shift();
    });
    const exited = new Promise<void>((res) =>
      child.once('exit', (code, sig) => {
        this.exitCode = code;
        this.exitSignal = sig;
        res();
      }),
    );
    this.exitedP = exited;
    const rl = createInterface({ input: child.stdout! });
    const path = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`virtual node ${this.opts.name}: no PTY line within ${timeoutMs} ms`)), timeoutMs);
      rl.on('line', (line) => {
        const m = /^PTY (\/\S+)$/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`virtual node ${this.opts.name}: ${e.message}`));
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`virtual node ${this.opts.name} exited (${this.exitCode ?? this.exitSignal}) before its pty was ready: ${this.stderr.join('').trim()}`));
      });
    });
    this.ptyPath = path;
    if (child.pid) this.opts.onStart?.(child.pid);
    return this.opts.link ?? path;
  }

  private exitedP: Promise<void> = Promise.resolve();

  /** Simulates a node dying (power loss): SIGKILL, no goodbye. */
  kill(): void {
    this.child?.kill('SIGKILL');
  }

  /** Power removed: SIGKILL and wait until the process is gone (a relay opening the node's supply). */
  async powerOff(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exitedP;
  }

  async stop(): Promise<void> {
    this.unregister?.();
    if (!this.running) return;
    this.child!.kill('SIGTERM');
    const t = setTimeout(() => this.child?.kill('SIGKILL'), 1500);
    await this.exitedP;
    clearTimeout(t);
  }
}
