// Client of firmware/build/qslab-pqc: the firmware's ML-KEM / ML-DSA C code on the host, one request line per
// answer line (see firmware/tools/pqc_cli.c). Requests are queued and answered in order.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from '../paths.js';
import { cleanup } from '../cleanup.js';

export const PQC_TOOL = join(ROOT, 'firmware', 'build', 'qslab-pqc');

export class PqcToolError extends Error {
  constructor(readonly code: string, message: string) {
    super(`${code}: ${message}`);
  }
}

/** Argument for a request: bytes become hex ("-" when empty), numbers and strings go as they are. */
export type ToolArg = Uint8Array | number | string;

export class PqcTool {
  private child?: ChildProcess;
  private readonly waiting: { resolve: (v: string[]) => void; reject: (e: Error) => void }[] = [];
  private unregister?: () => void;

  start(binary = PQC_TOOL): this {
    if (!existsSync(binary)) throw new Error(`${binary} is missing: run "npm run build:firmware"`);
    const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = child;
    this.unregister = cleanup.add('qslab-pqc tool', () => this.stop());
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const w = this.waiting.shift();
      if (!w) return;
      const [status, ...rest] = line.split(' ');
      if (status === 'ok') w.resolve(rest);
      else w.reject(new PqcToolError(rest[0] ?? 'E_TOOL', rest.slice(1).join(' ') || line));
    });
    child.once('exit', (code, sig) => {
      for (const w of this.waiting.splice(0)) w.reject(new PqcToolError('E_TOOL', `qslab-pqc exited (${code ?? sig})`));
    });
    return this;
  }

  /** Sends one request; resolves with the answer's fields (hex strings or numbers as text). */
  call(cmd: string, ...args: ToolArg[]): Promise<string[]> {
    if (!this.child?.stdin?.writable) return Promise.reject(new PqcToolError('E_TOOL', 'qslab-pqc is not running'));
    const parts = args.map((a) => (a instanceof Uint8Array ? (a.length ? Buffer.from(a).toString('hex') : '-') : String(a)));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child!.stdin!.write(`${[cmd, ...parts].join(' ')}\n`);
    });
  }

  /** Like call(), with the fields decoded from hex. */
  async bytes(cmd: string, ...args: ToolArg[]): Promise<Uint8Array[]> {
    const r = await this.call(cmd, ...args);
    return r.map((h) => (h === '-' ? new Uint8Array(0) : new Uint8Array(Buffer.from(h, 'hex'))));
  }

  async stop(): Promise<void> {
    this.unregister?.();
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const done = new Promise((r) => c.once('exit', r));
    c.stdin!.end();
    const t = setTimeout(() => c.kill('SIGKILL'), 2000);
    await done;
    clearTimeout(t);
  }
}
