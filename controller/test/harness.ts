// Shared by the interop tests: a real virtual node (POSIX firmware on a pty) and a real handshake server.
import assert from 'node:assert/strict';
import { once, type EventEmitter } from 'node:events';
import { NodeLink } from '../drivers/node.js';
import { ConfigError } from '../config/load.js';
import { VirtualNode } from '../virtual/node.js';
import { HandshakeServer, type HandshakeServerOptions, type ServerOp } from '../handshake/server.js';
import type { JsonObject } from '../link/frame.js';
import { runClient, type ClientOptions, type ClientResult } from '../handshake/client.js';
import { FrameReader, type AeadName, type Frame, type SuiteName } from '../handshake/wire.js';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface NodeHandle {
  link: NodeLink;
  vn: VirtualNode;
  /** Every console (non-frame) line the node printed. */
  lines: string[];
}

/** Starts a virtual node, says hello, runs fn, and always tears both down. */
/** binary: the node firmware to run (default: paths.ts NODE_BINARY, i.e. the OpenSSL build or $QSLAB_NODE_BINARY). */
export async function withNode<T>(name: string, fn: (link: NodeLink, h: NodeHandle) => Promise<T>, opts: { baud?: number; pace?: boolean; board?: string; binary?: string } = {}): Promise<T> {
  const baud = opts.baud ?? 115200;
  const vn = new VirtualNode({ name, board: opts.board ?? 'esp32', baud, pace: opts.pace ?? false, ...(opts.binary ? { binary: opts.binary } : {}) });
  const path = await vn.start();
  const link = new NodeLink({ name, path, baud });
  const lines: string[] = [];
  link.on('console', (l: string) => lines.push(l));
  await link.open();
  try {
    await link.connect(3, opts.pace ? 5000 : 2000);
    return await fn(link, { link, vn, lines });
  } finally {
    await link.close();
    await vn.stop();
  }
}

/** Starts a handshake server (3 s record timeout), collects its ops, runs fn, closes it. */
export async function withServer<T>(opts: HandshakeServerOptions, fn: (srv: HandshakeServer, port: number, ops: ServerOp[]) => Promise<T>): Promise<T> {
  const srv = new HandshakeServer({ recordTimeoutMs: 3000, ...opts });
  const ops: ServerOp[] = [];
  srv.onOp((o) => ops.push(o));
  const { port } = await srv.start();
  try {
    return await fn(srv, port, ops);
  } finally {
    await srv.close();
  }
}

/** One `hs` burst on the node against 127.0.0.1:port; returns the answer and the op events. */
export async function burst(link: NodeLink, port: number, pin: string, args: Record<string, string | number | boolean>) {
  const events: JsonObject[] = [];
  const res = await link.request('hs', { host: '127.0.0.1', port, pin, n: 3, records: 5, bytes: 100, aead: 'aes-256-gcm', refresh: 2, ...args }, {
    idle: true, timeoutMs: 30000, onEvent: (e) => events.push(e),
  });
  return { res, events: events.filter((e) => e.ev === 'op') };
}

/** Marks a promise that a test will assert on later as handled, so an early rejection is not "unhandled". */
export function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** Collects a server's ops; wait() resolves on the first (past or future) op matching a predicate. */
export class Ops {
  readonly all: ServerOp[] = [];
  private waiters: { pred: (o: ServerOp) => boolean; resolve: (o: ServerOp) => void }[] = [];
  constructor(server: HandshakeServer) {
    server.onOp((op) => {
      this.all.push(op);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(op)) return true;
        w.resolve(op);
        return false;
      });
    });
  }
  wait(pred: (o: ServerOp) => boolean): Promise<ServerOp> {
    const seen = this.all.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }
  forCr(cr: string): Promise<ServerOp> {
    return this.wait((o) => o.cr === cr);
  }
  /** The n-th op (0-based) in arrival order. */
  nth(n: number): Promise<ServerOp> {
    return this.wait(() => this.all.length > n).then(() => this.all[n]!);
  }
}

/** A handshake server with an Ops collector, for TS client ↔ server tests. */
export async function withTrackedServer<T>(
  opts: HandshakeServerOptions,
  fn: (s: HandshakeServer, addr: { host: string; port: number }, ops: Ops) => Promise<T>,
): Promise<T> {
  const s = new HandshakeServer(opts);
  const ops = new Ops(s);
  const addr = await s.start();
  try {
    return await fn(s, addr, ops);
  } finally {
    await s.close();
  }
}

/** One TS-client operation against a test server (pinned to its key; no records unless `more` says so). */
export function client(
  s: HandshakeServer, addr: { host: string; port: number }, suite: SuiteName, aead: AeadName,
  more: Partial<ClientOptions> = {},
): Promise<ClientResult> {
  return runClient({ ...addr, suite, aead, pin: s.pin(suite), records: 0, bytes: 64, refresh: 0, ...more });
}

/** Frame-aware TCP relay between a client and the server; can log and rewrite frames per direction. */
export interface Proxy {
  port: number;
  log: { dir: 'c2s' | 's2c'; frame: Frame }[];
  close(): Promise<void>;
}
export type Mutate = (dir: 'c2s' | 's2c', f: Frame) => Buffer[] | undefined;
export async function startProxy(target: number, mutate?: Mutate): Promise<Proxy> {
  const log: Proxy['log'] = [];
  const socks = new Set<Socket>();
  const srv: Server = createServer((down) => {
    const up = connect({ host: '127.0.0.1', port: target });
    for (const s of [down, up]) {
      socks.add(s);
      s.unref();
      s.setNoDelay(true);
      s.on('error', () => undefined);
      s.on('close', () => socks.delete(s));
    }
    const pipe = (from: Socket, to: Socket, dir: 'c2s' | 's2c'): void => {
      const r = new FrameReader();
      from.on('data', (c: Buffer) => {
        r.push(c);
        for (let f = r.next(); f; f = r.next()) {
          const copy = { type: f.type, raw: Buffer.from(f.raw), body: Buffer.from(f.body) };
          log.push({ dir, frame: copy });
          for (const out of mutate?.(dir, copy) ?? [copy.raw]) to.write(out);
        }
      });
      from.on('end', () => to.end());
      from.on('close', () => to.destroy());
    };
    pipe(down, up, 'c2s');
    pipe(up, down, 's2c');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  srv.unref(); // a failed assertion that skips close() must not keep the test process alive
  const port = (srv.address() as { port: number }).port;
  return {
    port, log,
    close: () => new Promise<void>((r) => {
      for (const s of socks) s.destroy();
      srv.close(() => r());
    }),
  };
}

/** Runs fn, which must throw a ConfigError, and returns its located problems. */
export function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e.problems;
  }
  assert.fail('expected a ConfigError');
}

/** Polls `cond` every `pollMs` until it holds; after `timeoutMs` fails naming what it waited for. */
export async function until(cond: () => boolean, timeoutMs: number, what: string | (() => string), pollMs = 5): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The next `ev` from `em`, or a rejection after `timeoutMs`. */
export function waitEvent(em: EventEmitter, ev: string, timeoutMs: number): Promise<unknown[]> {
  return Promise.race([once(em, ev), new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no '${ev}' within ${timeoutMs} ms`)), timeoutMs).unref())]);
}
