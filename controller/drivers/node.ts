// NodeDriver: protocol v1 over a serial link (firmware/PROTOCOL.md). The same code opens /dev/ttyUSB0 on a
// bench and a pseudo-terminal of a virtual node.
import { EventEmitter } from 'node:events';
import { Transform, type TransformCallback } from 'node:stream';
import { SerialPortStream } from '@serialport/stream';
import { NodeLinkBinding } from './serial-binding.js';
import { ReadlineParser } from '@serialport/parser-readline';
import { z } from 'zod';
import { decodeLine, encodeFrame, HOST_MAX_LINE, NODE_MAX_LINE, PROTO_VERSION, type JsonObject } from '../link/frame.js';

export class LinkError extends Error {
  constructor(public readonly code: string, message: string) {
    super(`${code}: ${message}`);
    this.name = 'LinkError';
  }
}

export const helloSchema = z.object({
  proto: z.number().int(),
  fw: z.string(),
  build: z.string().regex(/^[0-9a-f]{16}$/),
  board: z.string(),
  port: z.string().optional(),
  cpu_mhz: z.number(),
  ram: z.number(),
  suites: z.array(z.string()),
  aeads: z.array(z.string()).optional(),
  max_line: z.number().int().optional(),
});
export type Hello = z.infer<typeof helloSchema>;

export interface LinkStats {
  frames: number;
  console: number;
  corrupt: number;
  orphans: number; // frames for no pending request
}

interface Pending {
  id: number;
  cmd: string;
  resolve: (msg: JsonObject) => void;
  reject: (e: Error) => void;
  onEvent?: (ev: JsonObject) => void;
  timer: NodeJS.Timeout;
  timeoutMs: number;
  idle: boolean;
}

export interface RequestOptions {
  /** Overall deadline, or — with `idle` — the longest silence between events. */
  timeoutMs?: number;
  idle?: boolean;
  onEvent?: (ev: JsonObject) => void;
}

/** Caps lines before they reach the readline parser so a node spewing bytes without '\n' cannot eat memory. */
class LineGuard extends Transform {
  private run = 0;
  private dropping = false;
  oversized = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let start = 0;
    const out: Buffer[] = [];
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] === 0x0a) {
        if (!this.dropping) out.push(chunk.subarray(start, i + 1));
        this.dropping = false;
        this.run = 0;
        start = i + 1;
      } else if (!this.dropping && ++this.run > HOST_MAX_LINE) {
        out.push(chunk.subarray(start, i), Buffer.from('\n'));
        this.oversized++;
        this.dropping = true;
      }
    }
    if (!this.dropping && start < chunk.length) out.push(chunk.subarray(start));
    cb(null, out.length ? Buffer.concat(out) : undefined);
  }
}

const CONSOLE_KEEP = 500;

export interface NodeLinkOptions {
  name: string;
  path: string;
  baud: number;
}

/**
 * Events: 'console' (line), 'boot' (frame), 'event' (unsolicited frame), 'close' (Error|undefined).
 */
export class NodeLink extends EventEmitter {
  readonly stats: LinkStats = { frames: 0, console: 0, corrupt: 0, orphans: 0 };
  readonly console: string[] = [];
  hello?: Hello;
  private port?: SerialPortStream;
  private guard?: LineGuard;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(readonly opts: NodeLinkOptions) {
    super();
  }

  get isOpen(): boolean {
    return !!this.port?.isOpen && !this.closed;
  }

  async open(): Promise<void> {
    const port = new SerialPortStream({ binding: NodeLinkBinding, path: this.opts.path, baudRate: this.opts.baud, autoOpen: false, hupcl: false });
    await new Promise<void>((res, rej) =>
      port.open((err) => (err ? rej(new LinkError('E_OPEN', `${this.opts.path}: ${err.message}`)) : res())),
    );
    this.port = port;
    this.closed = false;
    this.guard = new LineGuard();
    const parser = port.pipe(this.guard).pipe(new ReadlineParser({ delimiter: '\n', encoding: 'utf8' }));
    parser.on('data', (line: string) => this.onLine(line));
    port.on('error', (err) => this.fail(new LinkError('E_CLOSED', `${this.opts.path}: ${err.message}`)));
    port.on('close', () => this.fail(new LinkError('E_CLOSED', `${this.opts.path} closed`)));
  }

  private onLine(line: string): void {
    const d = decodeLine(line);
    if (d.kind === 'console' || d.kind === 'corrupt') {
      if (d.kind === 'corrupt') this.stats.corrupt++;
      else this.stats.console++;
      this.console.push(d.text.length > 300 ? `${d.text.slice(0, 300)}…` : d.text);
      if (this.console.length > CONSOLE_KEEP) this.console.splice(0, this.console.length - CONSOLE_KEEP);
      this.emit('console', d.text);
      return;
    }
    this.stats.frames++;
    const msg = d.msg;
    const id = typeof msg.id === 'number' ? msg.id : 0;
    if (msg.ev === 'boot') {
      // A reboot loses every request in flight.
      for (const p of [...this.pending.values()]) this.settle(p, new LinkError('E_RESET', `node ${this.opts.name} rebooted during "${p.cmd}"`));
      this.emit('boot', msg);
      return;
    }
    const p = this.pending.get(id);
    if (!p) {
      this.stats.orphans++;
      this.emit('event', msg);
      return;
    }
    if (typeof msg.ev === 'string') {
      if (p.idle) p.timer.refresh();
      p.onEvent?.(msg);
      return;
    }
    if (msg.ok === true) this.settle(p, undefined, msg);
    else this.settle(p, new LinkError(typeof msg.err === 'string' ? msg.err : 'E_NODE', typeof msg.msg === 'string' ? msg.msg : JSON.stringify(msg)));
  }

  private settle(p: Pending, err?: Error, msg?: JsonObject): void {
    if (!this.pending.delete(p.id)) return;
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(msg!);
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of [...this.pending.values()]) this.settle(p, err);
    this.emit('close', err);
  }

  /** Sends one request; resolves with the node's ok response, rejects with LinkError. */
  request(cmd: string, args: Record<string, string | number | boolean> = {}, o: RequestOptions = {}): Promise<JsonObject> {
    if (!this.isOpen) return Promise.reject(new LinkError('E_CLOSED', `link to ${this.opts.name} is not open`));
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const line = encodeFrame({ id, cmd, ...args });
    if (line.length + 1 > NODE_MAX_LINE) return Promise.reject(new LinkError('E_TOOLONG', `request "${cmd}" is ${line.length} bytes; nodes accept ${NODE_MAX_LINE}`));
    const timeoutMs = o.timeoutMs ?? 3000;
    return new Promise<JsonObject>((resolve, reject) => {
      const p: Pending = {
        id, cmd, resolve, reject, onEvent: o.onEvent, timeoutMs, idle: !!o.idle,
        timer: setTimeout(() => {
          this.settle(p, new LinkError('E_TIMEOUT', `no ${o.idle ? 'progress' : 'answer'} from ${this.opts.name} to "${cmd}" within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.pending.set(id, p);
      this.port!.write(`${line}\n`, (err) => {
        if (err) this.settle(p, new LinkError('E_CLOSED', `write to ${this.opts.path}: ${err.message}`));
      });
    });
  }

  /** Version negotiation; validates the node's answer at the edge. */
  async negotiate(timeoutMs = 3000): Promise<Hello> {
    const raw = await this.request('hello', { pmin: PROTO_VERSION, pmax: PROTO_VERSION }, { timeoutMs });
    const parsed = helloSchema.safeParse(raw);
    if (!parsed.success) throw new LinkError('E_PROTO', `bad hello from ${this.opts.name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    if (parsed.data.proto !== PROTO_VERSION) throw new LinkError('E_PROTO', `${this.opts.name} answered protocol ${parsed.data.proto}, controller speaks ${PROTO_VERSION}`);
    this.hello = parsed.data;
    return parsed.data;
  }

  /** Hello with retries: a node that is still printing boot text may miss the first request. */
  async connect(attempts = 3, timeoutMs = 2000): Promise<Hello> {
    let last: Error | undefined;
    for (let i = 0; i < attempts; i++) {
      try {
        return await this.negotiate(timeoutMs);
      } catch (e) {
        last = e as Error;
        if (e instanceof LinkError && (e.code === 'E_PROTO' || e.code === 'E_CLOSED')) throw e;
      }
    }
    throw last!;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get oversizedLines(): number {
    return this.guard?.oversized ?? 0;
  }

  async close(): Promise<void> {
    const port = this.port;
    this.fail(new LinkError('E_CLOSED', `link to ${this.opts.name} closed by controller`));
    if (port?.isOpen) await new Promise<void>((res) => port.close(() => res()));
  }
}
