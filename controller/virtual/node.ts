// A virtual node: the firmware's POSIX build on its own pseudo-terminal. Only the far end of the wire is
// emulated; the controller opens the pty path with serialport exactly as it opens /dev/ttyUSB0.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { cleanup } from '../cleanup.js';
import { NODE_BINARY } from '../paths.js';
import { spawnInNs } from '../net/netns.js';
import { readFlashApp } from '../flash/image.js';
import { PtyEndpoint } from './pty.js';

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
  /**
   * Boot from this flash file (see flash/image.ts): at every start() the application image at 0x10000 is read,
   * checked (magic + SHA-256) and its ELF run instead of `binary`. An erased or damaged image boots like a board
   * with a bad app: the pty only carries ROM boot lines, hello gets no answer, and `bootProblem` says why.
   */
  flashFile?: string;
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
  /** Booting from flashFile: why there is no application (undefined when it booted). */
  bootProblem?: string;
  /** Booting from flashFile: the build hash of the image that runs. */
  bootedHash?: string;
  private badApp?: PtyEndpoint;
  private appDir?: string;

  constructor(readonly opts: VirtualNodeOptions) {}

  /** The path a driver opens: the stable link when there is one. */
  get path(): string {
    return this.opts.link ?? this.ptyPath;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    if (this.badApp) return this.badApp.plugged;
    return !!this.child && this.exitCode === null && this.exitSignal === null;
  }

  /** Reads the app from the flash file into a private executable; undefined (and bootProblem set) when bad. */
  private appFromFlash(file: string): string | undefined {
    const app = readFlashApp(file);
    this.bootProblem = undefined;
    this.bootedHash = undefined;
    if (!app.ok) {
      this.bootProblem = `no valid application in flash: ${app.reason}`;
      return undefined;
    }
    this.appDir ??= mkdtempSync(join(tmpdir(), `qslab-app-${this.opts.name}-`));
    const bin = join(this.appDir, `qslab-node-${app.hash}`);
    rmSync(bin, { force: true });
    writeFileSync(bin, app.payload);
    chmodSync(bin, 0o755);
    this.bootedHash = app.hash;
    return bin;
  }

  /** A board whose app does not boot: the ROM prints its boot loop lines, nothing answers the protocol. */
  private async startBadApp(): Promise<string> {
    const ep = new PtyEndpoint({ link: this.opts.link, name: `virtual node ${this.opts.name} (no app)` });
    this.badApp = ep;
    const path = await ep.start();
    this.ptyPath = ep.ptyPath;
    this.unregister?.();
    this.unregister = cleanup.add(`virtual node ${this.opts.name}`, () => this.stop());
    const banner = `ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n` +
      `E (qslab-virtual) ${this.bootProblem}\r\n`;
    ep.write(banner);
    if (process.env.QSLAB_NODE_STDERR) process.stderr.write(`virtual node ${this.opts.name}: ${this.bootProblem}\n`);
    this.stderr.push(`${this.bootProblem}\n`);
    return path;
  }

  async start(timeoutMs = 5000): Promise<string> {
    let bin = this.opts.binary ?? NODE_BINARY;
    this.badApp = undefined;
    if (this.opts.flashFile) {
      const app = this.appFromFlash(this.opts.flashFile);
      if (!app) return this.startBadApp();
      bin = app;
    }
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
    if (this.badApp) void this.badApp.unplug();
    this.child?.kill('SIGKILL');
  }

  /** Power removed: SIGKILL and wait until the process is gone (a relay opening the node's supply). */
  async powerOff(): Promise<void> {
    if (this.badApp) return this.badApp.unplug();
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exitedP;
  }

  async stop(): Promise<void> {
    this.unregister?.();
    if (this.appDir) {
      const d = this.appDir;
      this.appDir = undefined;
      this.unregister = undefined;
      await this.stop();
      rmSync(d, { recursive: true, force: true });
      return;
    }
    if (this.badApp) {
      await this.badApp.stop();
      return;
    }
    if (!this.running) return;
    this.child!.kill('SIGTERM');
    const t = setTimeout(() => this.child?.kill('SIGKILL'), 1500);
    await this.exitedP;
    clearTimeout(t);
  }
}
