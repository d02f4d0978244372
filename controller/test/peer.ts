// Test helper: a scripted far end of a serial wire (firmware/tools/pty-peer on a real pty).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { decodeLine, encodeFrame, type JsonObject } from '../link/frame.js';

export { PTY_PEER } from '../virtual/pty.js';
import { PTY_PEER } from '../virtual/pty.js';

export class PtyPeer {
  path = '';
  private child!: ChildProcess;
  private readonly waiters: ((msg: JsonObject) => void)[] = [];
  private readonly queue: JsonObject[] = []; // received, not yet taken by next()
  readonly received: JsonObject[] = [];

  async start(): Promise<string> {
    if (!existsSync(PTY_PEER)) throw new Error(`${PTY_PEER} missing: run npm run build:firmware`);
    this.child = spawn(PTY_PEER, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    const rl = createInterface({ input: this.child.stdout! });
    return new Promise((resolve, reject) => {
      rl.on('line', (line) => {
        const m = /^PTY (\S+)$/.exec(line);
        if (m && !this.path) {
          this.path = m[1]!;
          resolve(this.path);
          return;
        }
        const d = decodeLine(line);
        if (d.kind === 'frame') {
          this.received.push(d.msg);
          const w = this.waiters.shift();
          if (w) w(d.msg);
          else this.queue.push(d.msg);
        }
      });
      this.child.once('error', reject);
    });
  }

  /** Next request the controller sends (frames only). */
  next(timeoutMs = 2000): Promise<JsonObject> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const w = (m: JsonObject) => {
        clearTimeout(t);
        resolve(m);
      };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error('peer: no request from the controller'));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  raw(bytes: string | Buffer): Promise<void> {
    return new Promise((res, rej) => this.child.stdin!.write(bytes, (e) => (e ? rej(e) : res())));
  }

  frame(obj: JsonObject): Promise<void> {
    return this.raw(`${encodeFrame(obj)}\n`);
  }

  /** Answers a hello like a node would. */
  async answerHello(): Promise<void> {
    const req = await this.next();
    await this.frame({ id: req.id as number, ok: true, proto: 1, fw: '0.1.0', build: '0123456789abcdef', board: 'esp32', cpu_mhz: 240, ram: 532480, suites: ['x25519'] });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.stdin!.end();
    this.child.kill('SIGTERM');
    await done;
  }
}
