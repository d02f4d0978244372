// NodeDriver: protocol v1 over a serial link (firmware/PROTOCOL.md). The same code opens /dev/ttyUSB0 on a
// bench and a pseudo-terminal of a virtual node.
import { EventEmitter } from 'node:events';
import { Transform, type TransformCallback } from 'node:stream';
import { SerialPortStream } from '@serialport/stream';
import { NodeLinkBinding } from './serial-binding.js';
import { ReadlineParser } from '@serialport/parser-readline';
import { z } from 'zod';
import { decodeLine, encodeFrame, HOST_MAX_LINE, NODE_MAX_LINE, PROTO_VERSION, type Json, type JsonObject } from '../link/frame.js';
import { wifiPassProblem, wifiSsidProblem } from '../config/rig.js';

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

/** The answer to `net` (firmware/PROTOCOL.md §4): the node's Wi-Fi station, or "host network" on the POSIX port. */
export const netStatusSchema = z.object({
  status: z.enum(['connected', 'connecting', 'unconfigured', 'down', 'host network']),
  ip: z.string().min(1).max(47).optional(),
  ssid: z.string().max(200).optional(),
});
export interface NetStatus extends z.infer<typeof netStatusSchema> {
  /** One line for people: "connected 192.168.1.23", "connecting", "host network 10.0.0.5". */
  text: string;
}

/** What replaces a secret wherever the link would otherwise record it. */
export const REDACTED = '<redacted>';

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
  /**
   * Arguments whose (string) values are secrets, e.g. ['pass']: from now on the link never records them. A line
   * that carries one back (a serial line that echoes) is kept in the console log with the value replaced by
   * REDACTED, and is never taken as an answer; error texts and events are scrubbed the same way.
   */
  secret?: string[];
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
  /** Secret argument values sent on this link (and their JSON-escaped forms): never recorded, see RequestOptions. */
  private readonly secrets: string[] = [];

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

  private recordConsole(text: string): void {
    this.console.push(text.length > 300 ? `${text.slice(0, 300)}…` : text);
    if (this.console.length > CONSOLE_KEEP) this.console.splice(0, this.console.length - CONSOLE_KEEP);
    this.emit('console', text);
  }

  private hasSecret(text: string): boolean {
    return this.secrets.some((s) => text.includes(s));
  }

  /** text with every secret sent on this link replaced by REDACTED. */
  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join(REDACTED);
    return out;
  }

  private scrub(v: Json): Json {
    if (typeof v === 'string') return this.redact(v);
    if (Array.isArray(v)) return v.map((x) => this.scrub(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [this.redact(k), this.scrub(x)]));
    return v;
  }

  private onLine(line: string): void {
    const d = decodeLine(line);
    if (d.kind === 'console' || d.kind === 'corrupt') {
      if (d.kind === 'corrupt') this.stats.corrupt++;
      else this.stats.console++;
      // (an oversized line is cut before it is recorded: redact the whole line first, so no part of a secret stays)
      this.recordConsole(!this.secrets.length ? d.text : d.kind === 'corrupt' && d.reason === 'oversized line' ? this.redact(line).slice(0, 200) : this.redact(d.text));
      return;
    }
    let msg = d.msg;
    if (this.secrets.length && this.hasSecret(line)) {
      // A node never sends a secret back. A request coming back (an echoing line) is console output, not an
      // answer; anything else that carries one is passed on with the value scrubbed.
      if (typeof msg.cmd === 'string') {
        this.stats.console++;
        this.recordConsole(this.redact(line));
        return;
      }
      msg = this.scrub(msg) as JsonObject;
    }
    this.stats.frames++;
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
    for (const k of o.secret ?? []) {
      const v = args[k];
      if (typeof v !== 'string' || v === '') continue;
      for (const form of [v, JSON.stringify(v).slice(1, -1)]) if (!this.secrets.includes(form)) this.secrets.push(form);
    }
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

  private netAnswer(raw: JsonObject): NetStatus {
    const parsed = netStatusSchema.safeParse(raw);
    if (!parsed.success) throw new LinkError('E_PROTO', `bad net answer from ${this.opts.name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const n = parsed.data;
    return { ...n, text: n.ip ? `${n.status} ${n.ip}` : n.status };
  }

  /** The node's Wi-Fi station: `{"cmd":"net"}` (PROTOCOL.md §4). POSIX nodes answer "host network". */
  async netStatus(timeoutMs = 3000): Promise<NetStatus> {
    return this.netAnswer(await this.request('net', {}, { timeoutMs }));
  }

  /**
   * Hands Wi-Fi station credentials to the node (`net` with ssid + pass; "" = open network). Checked here first
   * with the firmware's rules (LinkError E_ARGS, nothing sent). The password is a secret of the link: it is never
   * recorded (console log, errors, events). Resolves with the node's status (ESP32: normally "connecting"); rejects
   * with LinkError: E_NOTSUP on a POSIX node (it uses the host's network), E_ARGS, E_BUSY, E_NET.
   */
  async netConfig(ssid: string, pass: string, timeoutMs = 10_000): Promise<NetStatus> {
    const problem = wifiSsidProblem(ssid) ?? wifiPassProblem(pass);
    if (problem) throw new LinkError('E_ARGS', `${this.opts.name}: ${problem}`);
    return this.netAnswer(await this.request('net', { ssid, pass }, { timeoutMs, secret: ['pass'] }));
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
