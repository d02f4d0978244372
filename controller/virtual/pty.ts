// The far end of an emulated serial device: a real pseudo-terminal (firmware/tools/pty-peer) whose master side
// this process reads and writes as raw bytes. The controller's drivers open the slave path with serialport,
// exactly as they would open /dev/ttyUSB0. A stable symlink stands in for /dev/serial/by-id/...: unplug() closes
// the pty (the driver sees the port vanish) and replug() makes a new one behind the same link.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cleanup } from '../cleanup.js';
import { ROOT } from '../paths.js';

export const PTY_PEER = join(ROOT, 'firmware', 'build', 'pty-peer');

export interface PtyEndpointOptions {
  /** Stable path (symlink) to the pty, like /dev/serial/by-id/...; kept across unplug/replug. */
  link?: string;
  name?: string;
}

/** Events: 'data' (Buffer from the driver), 'plug' (slave path), 'unplug'. */
export class PtyEndpoint extends EventEmitter {
  ptyPath = '';
  private child?: ChildProcess;
  private unregister?: () => void;

  constructor(readonly opts: PtyEndpointOptions = {}) {
    super();
  }

  /** The path drivers should open: the stable link when there is one. */
  get path(): string {
    return this.opts.link ?? this.ptyPath;
  }

  get plugged(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<string> {
    if (!existsSync(PTY_PEER)) throw new Error(`${PTY_PEER} is missing: run "npm run build:firmware"`);
    const child = spawn(PTY_PEER, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.unregister ??= cleanup.add(`pty ${this.opts.name ?? ''}`.trim(), () => this.stop());
    child.stdin!.on('error', () => {}); // EPIPE after unplug: the device is gone, nothing to report
    const path = await new Promise<string>((resolve, reject) => {
      let head = Buffer.alloc(0);
      let done = false;
      const onData = (b: Buffer): void => {
        if (done) {
          this.emit('data', b);
          return;
        }
        head = Buffer.concat([head, b]);
        const nl = head.indexOf(0x0a);
        if (nl < 0) return;
        const m = /^PTY (\S+)$/.exec(head.subarray(0, nl).toString('latin1'));
        if (!m) return reject(new Error(`pty-peer said "${head.subarray(0, nl).toString('latin1')}"`));
        done = true;
        resolve(m[1]!);
        const rest = head.subarray(nl + 1);
        if (rest.length) this.emit('data', rest);
      };
      child.stdout!.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code) => {
        if (!done) reject(new Error(`pty-peer exited (${code}) before allocating a pty`));
      });
    });
    this.ptyPath = path;
    if (this.opts.link) {
      mkdirSync(dirname(this.opts.link), { recursive: true });
      const tmp = `${this.opts.link}.${process.pid}.tmp`;
      rmSync(tmp, { force: true });
      symlinkSync(path, tmp);
      renameSync(tmp, this.opts.link); // atomic: a driver never sees a missing link while replugging
    }
    this.emit('plug', path);
    return this.path;
  }

  write(bytes: Buffer | string): boolean {
    if (!this.plugged) return false;
    return this.child!.stdin!.write(bytes);
  }

  /** Pulls the cable: the pty closes, an open driver gets EOF/EIO. The link is left dangling, as udev would. */
  async unplug(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const done = new Promise((r) => c.once('exit', r));
    c.stdin!.end();
    c.kill('SIGTERM');
    await done;
    if (this.opts.link) rmSync(this.opts.link, { force: true });
    this.emit('unplug');
  }

  /** Plugs back in: a new pty behind the same link. */
  replug(): Promise<string> {
    return this.start();
  }

  async stop(): Promise<void> {
    await this.unplug();
    this.unregister?.();
    this.unregister = undefined;
  }
}
