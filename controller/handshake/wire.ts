// QSHS/1 wire format (firmware/HANDSHAKE.md §1–3, §7): framing, identifiers, message encode/decode,
// and an incremental frame reader over a TCP stream. No crypto here.

import type { Socket } from 'node:net';

// ---------------------------------------------------------------------------------------------------------
// Identifiers

export const MSG = {
  ClientHello: 0x01,
  ServerHello: 0x02,
  ClientKeyExchange: 0x03,
  Finished: 0x04,
  Record: 0x05,
  Alert: 0x06,
  ClientAuth: 0x07,
} as const;
export type MsgType = (typeof MSG)[keyof typeof MSG];

const MSG_NAMES: Record<number, string> = {
  1: 'ClientHello', 2: 'ServerHello', 3: 'ClientKeyExchange', 4: 'Finished', 5: 'Record', 6: 'Alert', 7: 'ClientAuth',
};
export function msgName(type: number): string {
  return MSG_NAMES[type] ?? `type 0x${type.toString(16).padStart(2, '0')}`;
}

export const VERSION = 1;
export const HEADER_LEN = 4;
export const MAX_BODY = 1 << 20; // 1 MiB
export const RANDOM_LEN = 32;
export const FINISHED_LEN = 32;
export const PREMASTER_LEN = 48;

export type ClassicalSuiteName = 'rsa2048' | 'ecdhe-p256-ecdsa' | 'x25519';
export type PqSuiteName = 'mlkem512-mldsa44' | 'mlkem768-mldsa65' | 'mlkem1024-mldsa87' | 'x25519mlkem768';
/** QKD-augmented suites (HANDSHAKE.md §11): a PQ suite's key exchange plus fresh QKD keys. */
export type QkdSuiteName = 'qkd-mlkem768' | 'qkd-x25519mlkem768';
/**
 * The plaintext baseline (HANDSHAKE.md §12, the paper's "No Encryption" row): no key exchange, no authentication,
 * no key schedule, records in the clear. A server negotiates it only when started with `allowPlaintext`.
 */
export type PlaintextSuiteName = 'none';
export type SuiteName = ClassicalSuiteName | PqSuiteName | QkdSuiteName | PlaintextSuiteName;
export type AeadName = 'aes-256-gcm' | 'chacha20-poly1305';

export const SUITE_IDS: Readonly<Record<SuiteName, number>> = {
  'rsa2048': 1, 'ecdhe-p256-ecdsa': 2, 'x25519': 3,
  'mlkem512-mldsa44': 4, 'mlkem768-mldsa65': 5, 'mlkem1024-mldsa87': 6, 'x25519mlkem768': 7,
  'qkd-mlkem768': 8, 'qkd-x25519mlkem768': 9,
  'none': 10,
};
export const AEAD_IDS: Readonly<Record<AeadName, number>> = { 'aes-256-gcm': 1, 'chacha20-poly1305': 2 };
export const CLASSICAL_SUITES: readonly ClassicalSuiteName[] = ['rsa2048', 'ecdhe-p256-ecdsa', 'x25519'];
export const PQ_SUITES: readonly PqSuiteName[] = ['mlkem512-mldsa44', 'mlkem768-mldsa65', 'mlkem1024-mldsa87', 'x25519mlkem768'];
export const QKD_SUITES: readonly QkdSuiteName[] = ['qkd-mlkem768', 'qkd-x25519mlkem768'];
/** §12: not part of any default suite list; a server refuses it unless started with `allowPlaintext`. */
export const PLAINTEXT_SUITES: readonly PlaintextSuiteName[] = ['none'];
/** Every suite id this implementation knows (the plaintext baseline included). */
export const SUITES: readonly SuiteName[] = [...CLASSICAL_SUITES, ...PQ_SUITES, ...QKD_SUITES, ...PLAINTEXT_SUITES];
export const AEADS: readonly AeadName[] = ['aes-256-gcm', 'chacha20-poly1305'];

/** ClientHello `flags` (§10.3): bit 0 = mutual authentication. */
export const CH_FLAG_MUTUAL = 0x01;
/**
 * ClientHello and ServerHello `flags` bit 1 (§12): "this connection is unauthenticated plaintext". Required in
 * both hellos of suite `none`, forbidden with every other suite.
 */
export const HELLO_FLAG_PLAINTEXT = 0x02;
/** The `aead` id of a plaintext ClientHello (§12): records carry no AEAD. Not an AeadName. */
export const AEAD_NONE = 0;

/** How a suite exchanges keys and authenticates the server (§2, §10). */
export interface SuiteInfo {
  kex: 'rsa' | 'p256' | 'x25519' | 'mlkem' | 'x25519mlkem' | 'none';
  /** ML-KEM parameter set (ML-KEM and hybrid suites). */
  kem?: 512 | 768 | 1024;
  /** Server authentication: RSA key transport, ECDSA P-256, or ML-DSA of `dsa`'s level. */
  auth: 'rsa' | 'ecdsa' | 'mldsa' | 'none';
  dsa?: 44 | 65 | 87;
  /** ML-DSA level of the client's key under mutual authentication (undefined: mutual not allowed). */
  clientDsa?: 44 | 65 | 87;
  clientShare: number;
  serverShare: number;
  /** QKD suite (§11): ClientHello carries qkd_upd, ServerHello the key_IDs, the schedule mixes QKD keys. */
  qkd?: true;
  /** Plaintext baseline (§12): hello exchange only, records in the clear, server must allow it. */
  plaintext?: true;
}

export const SUITE_INFO: Readonly<Record<SuiteName, SuiteInfo>> = {
  'rsa2048': { kex: 'rsa', auth: 'rsa', clientShare: 0, serverShare: 0 },
  'ecdhe-p256-ecdsa': { kex: 'p256', auth: 'ecdsa', clientShare: 65, serverShare: 65 },
  'x25519': { kex: 'x25519', auth: 'ecdsa', clientShare: 32, serverShare: 32 },
  'mlkem512-mldsa44': { kex: 'mlkem', kem: 512, auth: 'mldsa', dsa: 44, clientDsa: 44, clientShare: 800, serverShare: 768 },
  'mlkem768-mldsa65': { kex: 'mlkem', kem: 768, auth: 'mldsa', dsa: 65, clientDsa: 65, clientShare: 1184, serverShare: 1088 },
  'mlkem1024-mldsa87': { kex: 'mlkem', kem: 1024, auth: 'mldsa', dsa: 87, clientDsa: 87, clientShare: 1568, serverShare: 1568 },
  'x25519mlkem768': { kex: 'x25519mlkem', kem: 768, auth: 'ecdsa', clientDsa: 65, clientShare: 1184 + 32, serverShare: 1088 + 32 },
  // §11: same shares and server authentication as suites 5 and 7; no mutual mode (the QKD key authenticates the node)
  'qkd-mlkem768': { kex: 'mlkem', kem: 768, auth: 'mldsa', dsa: 65, clientShare: 1184, serverShare: 1088, qkd: true },
  'qkd-x25519mlkem768': { kex: 'x25519mlkem', kem: 768, auth: 'ecdsa', clientShare: 1184 + 32, serverShare: 1088 + 32, qkd: true },
  // §12: empty shares, empty cert and signature, no mutual mode, no QKD
  'none': { kex: 'none', auth: 'none', clientShare: 0, serverShare: 0, plaintext: true },
};

/** §11: suite ids that carry the QKD fields (qkd_upd in the ClientHello, key_IDs in the ServerHello). */
export function isQkdSuiteId(id: number): boolean {
  const n = suiteName(id);
  return n !== undefined && SUITE_INFO[n].qkd === true;
}
/** §12: the suite id is the plaintext baseline. */
export function isPlaintextSuiteId(id: number): boolean {
  const n = suiteName(id);
  return n !== undefined && SUITE_INFO[n].plaintext === true;
}
/** Bytes of a binary key_ID (a UUID, RFC 9562), §11. */
export const QKD_ID_LEN = 16;
/** Most fresh QKD keys a ClientHello may ask for besides the handshake key (qkd_upd ≤ 255), §11. */
export const QKD_MAX_UPD = 255;

export function suiteName(id: number): SuiteName | undefined {
  return SUITES.find((s) => SUITE_IDS[s] === id);
}
export function aeadName(id: number): AeadName | undefined {
  return AEADS.find((a) => AEAD_IDS[a] === id);
}
export function isSuiteName(s: string): s is SuiteName {
  return (SUITES as readonly string[]).includes(s);
}
export function isAeadName(s: string): s is AeadName {
  return (AEADS as readonly string[]).includes(s);
}

/** Length of the client's key share for a suite (§2). */
export function clientShareLen(suite: SuiteName): number {
  return SUITE_INFO[suite].clientShare;
}
/** Length of the server's key share for a suite (§2). */
export function serverShareLen(suite: SuiteName): number {
  return SUITE_INFO[suite].serverShare;
}
/** Whether the suite allows mutual authentication (§10.3). */
export function supportsMutual(suite: SuiteName): boolean {
  return SUITE_INFO[suite].clientDsa !== undefined;
}

export const ALERT = {
  close_notify: 0,
  bad_record_mac: 1,
  replay: 2,
  decode_error: 3,
  handshake_failure: 4,
  bad_epoch: 5,
  unsupported: 6,
  internal_error: 7,
} as const;
export type AlertName = keyof typeof ALERT;
const ALERT_NAMES = Object.keys(ALERT) as AlertName[];
export function alertName(code: number): string {
  return ALERT_NAMES.find((n) => ALERT[n] === code) ?? `alert_${code}`;
}

// ---------------------------------------------------------------------------------------------------------
// Errors

/** A protocol violation on the wire; `alert` is what the receiver answers with. */
export class WireError extends Error {
  constructor(readonly alert: 'decode_error' | 'unsupported', message: string) {
    super(message);
    this.name = 'WireError';
  }
}

export type StreamErrorKind = 'eof' | 'truncated' | 'timeout' | 'net';
/** The stream under a FrameStream failed: peer closed (maybe mid-frame), read timeout, socket error. */
export class StreamError extends Error {
  constructor(readonly kind: StreamErrorKind, message: string) {
    super(message);
    this.name = 'StreamError';
  }
}

// ---------------------------------------------------------------------------------------------------------
// Framing

export interface Frame {
  type: number;
  /** Body only (view into `raw`). */
  body: Buffer;
  /** Whole frame, 4-byte header included (what transcript hashes cover). */
  raw: Buffer;
}

export function encodeFrame(type: number, body: Uint8Array): Buffer {
  if (body.length > MAX_BODY) throw new WireError('decode_error', `body of ${body.length} bytes exceeds 1 MiB`);
  const out = Buffer.allocUnsafe(HEADER_LEN + body.length);
  out[0] = type;
  out.writeUIntBE(body.length, 1, 3);
  out.set(body, HEADER_LEN);
  return out;
}

function checkHeader(type: number, len: number): void {
  if (type < MSG.ClientHello || type > MSG.ClientAuth) {
    throw new WireError('decode_error', `unknown message type 0x${type.toString(16).padStart(2, '0')}`);
  }
  if (len > MAX_BODY) throw new WireError('decode_error', `frame body of ${len} bytes exceeds 1 MiB`);
}

/**
 * Incremental frame parser: push() socket chunks, next() yields complete frames. Rejects a frame as soon as
 * its header is seen (unknown type, body > 1 MiB) so garbage is never buffered beyond 1 MiB + 4 bytes.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private len = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.len += chunk.length;
  }

  /** Bytes received but not yet returned as a frame. */
  get buffered(): number {
    return this.len;
  }

  /** Next complete frame, or undefined when more bytes are needed. Throws WireError on a bad header. */
  next(): Frame | undefined {
    if (this.len < HEADER_LEN) return undefined;
    const first = this.chunks[0]!;
    let type: number;
    let blen: number;
    if (first.length >= HEADER_LEN) {
      type = first[0]!;
      blen = first.readUIntBE(1, 3);
    } else {
      const h = this.peek(HEADER_LEN);
      type = h[0]!;
      blen = h.readUIntBE(1, 3);
    }
    checkHeader(type, blen);
    const total = HEADER_LEN + blen;
    if (this.len < total) return undefined;
    const raw = this.take(total);
    return { type, body: raw.subarray(HEADER_LEN), raw };
  }

  private peek(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    for (const c of this.chunks) {
      const k = Math.min(n - off, c.length);
      c.copy(out, off, 0, k);
      off += k;
      if (off === n) break;
    }
    return out;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0]!;
        const k = Math.min(n - off, c.length);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.len -= n;
    return out;
  }
}

/**
 * Frames from a socket as a pull API: `await read(timeoutMs)`. Frames that arrived before a decode error or
 * EOF are still delivered first. Pauses the socket while frames pile up unread (flood protection).
 */
export class FrameStream {
  private readonly reader = new FrameReader();
  private readonly frames: Frame[] = [];
  private failure: Error | undefined;
  private waiter:
    | { resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | undefined }
    | undefined;
  private paused = false;
  /** Bytes of complete frames handed out by read(). */
  frameBytes = 0;

  private static readonly MAX_QUEUED = 8;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // Errors are only constructed when they are the first failure (most connections end with 'end' + 'close').
    socket.on('end', () => {
      if (this.failure) return;
      const partial = this.reader.buffered > 0;
      this.fail(partial
        ? new StreamError('truncated', `peer closed inside a frame (${this.reader.buffered} bytes pending)`)
        : new StreamError('eof', 'peer closed the connection'));
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (!this.failure) this.fail(new StreamError('net', e.code ?? e.message));
    });
    socket.on('close', () => {
      if (!this.failure) this.fail(new StreamError('eof', 'connection closed'));
    });
  }

  private onData(chunk: Buffer): void {
    if (this.failure) return;
    this.reader.push(chunk);
    try {
      for (let f = this.reader.next(); f; f = this.reader.next()) this.frames.push(f);
    } catch (e) {
      this.failure = e as Error;
    }
    if (this.frames.length >= FrameStream.MAX_QUEUED && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.pump();
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    this.pump();
  }

  private pump(): void {
    const w = this.waiter;
    if (!w) return;
    const f = this.frames.shift();
    if (f) {
      this.waiter = undefined;
      if (w.timer) clearTimeout(w.timer);
      this.frameBytes += f.raw.length;
      this.maybeResume();
      w.resolve(f);
    } else if (this.failure) {
      this.waiter = undefined;
      if (w.timer) clearTimeout(w.timer);
      w.reject(this.failure);
    }
  }

  private maybeResume(): void {
    if (this.paused && this.frames.length < FrameStream.MAX_QUEUED / 2 && !this.failure) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** Next frame. Rejects with WireError (bad header) or StreamError (eof/truncated/timeout/net). */
  read(timeoutMs?: number): Promise<Frame> {
    if (this.waiter) return Promise.reject(new Error('FrameStream: concurrent read'));
    const f = this.frames.shift();
    if (f) {
      this.frameBytes += f.raw.length;
      this.maybeResume();
      return Promise.resolve(f);
    }
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Frame>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs !== undefined && timeoutMs > 0) {
        timer = setTimeout(() => {
          this.waiter = undefined;
          reject(new StreamError('timeout', `no message within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiter = { resolve, reject, timer };
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Message bodies

/** Cursor over a body that throws decode_error on any overrun. */
class Cursor {
  off = 0;
  constructor(private readonly b: Buffer, private readonly what: string) {}
  u8(): number {
    this.need(1);
    return this.b[this.off++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.b.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.b.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  vec16(): Buffer {
    return this.bytes(this.u16());
  }
  end(): void {
    if (this.off !== this.b.length) {
      throw new WireError('decode_error', `${this.what}: ${this.b.length - this.off} trailing bytes`);
    }
  }
  private need(n: number): void {
    if (this.off + n > this.b.length) throw new WireError('decode_error', `${this.what}: truncated body`);
  }
}

function u16(n: number, what: string): Buffer {
  if (n > 0xffff) throw new WireError('decode_error', `${what} longer than 65535 bytes`);
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n, 0);
  return b;
}

function fixed(b: Uint8Array, n: number, what: string): void {
  if (b.length !== n) throw new WireError('decode_error', `${what} must be ${n} bytes, got ${b.length}`);
}

export interface ClientHello {
  version: number;
  suite: number;      // raw id; may be unknown (server answers `unsupported`)
  aead: number;       // raw id
  refresh: number;    // K, uint32
  clientRandom: Buffer;
  share: Buffer;
  /** §11, QKD suites only (present iff the suite id is a QKD suite): fresh QKD keys wanted for epochs 1..qkd_upd. */
  qkdUpd?: number;
  /** §10.3; encoded only when nonzero (decoded as 0 when absent). */
  flags?: number;
}

export function encodeClientHello(m: ClientHello): Buffer {
  fixed(m.clientRandom, RANDOM_LEN, 'client_random');
  if (!Number.isInteger(m.refresh) || m.refresh < 0 || m.refresh > 0xffffffff) {
    throw new WireError('decode_error', 'refresh must be a uint32');
  }
  const head = Buffer.allocUnsafe(7);
  head[0] = m.version;
  head[1] = m.suite;
  head[2] = m.aead;
  head.writeUInt32BE(m.refresh, 3);
  const flags = m.flags ?? 0;
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xff) throw new WireError('decode_error', 'flags must be a uint8');
  const tail = flags ? [Buffer.of(flags)] : [];
  const qkd: Buffer[] = [];
  if (isQkdSuiteId(m.suite)) {
    const u = m.qkdUpd ?? 0;
    if (!Number.isInteger(u) || u < 0 || u > QKD_MAX_UPD) throw new WireError('decode_error', 'qkd_upd must be 0..255');
    qkd.push(Buffer.of(u));
  }
  return encodeFrame(MSG.ClientHello, Buffer.concat([head, m.clientRandom, u16(m.share.length, 'share'), m.share, ...qkd, ...tail]));
}

/** Structural decode only; version/suite/aead values and the share length are checked by the caller. */
export function decodeClientHello(body: Buffer): ClientHello {
  const c = new Cursor(body, 'ClientHello');
  const version = c.u8();
  const suite = c.u8();
  const aead = c.u8();
  const refresh = c.u32();
  const clientRandom = c.bytes(RANDOM_LEN);
  const share = c.vec16();
  const qkdUpd = isQkdSuiteId(suite) ? c.u8() : undefined;
  let flags = 0;
  if (c.off < body.length) {
    flags = c.u8();
    if (flags === 0) throw new WireError('decode_error', 'ClientHello: 1 trailing byte (a flags byte must be nonzero)');
  }
  c.end();
  return { version, suite, aead, refresh, clientRandom, share, flags, ...(qkdUpd !== undefined ? { qkdUpd } : {}) };
}

export interface ServerHello {
  serverRandom: Buffer;
  share: Buffer;
  cert: Buffer;
  sig: Buffer;
  /** §11, QKD suites only: the binary key_IDs (16 bytes each), epoch 0 first; encoded as ids_len(2) | ids. */
  qkdIds?: Buffer;
  /** §12, suite `none` only: flags(1) after sig (HELLO_FLAG_PLAINTEXT); encoded when present. */
  flags?: number;
}

export function encodeServerHello(m: ServerHello): Buffer {
  fixed(m.serverRandom, RANDOM_LEN, 'server_random');
  return encodeFrame(MSG.ServerHello, Buffer.concat([
    m.serverRandom,
    u16(m.share.length, 'share'), m.share,
    u16(m.cert.length, 'cert'), m.cert,
    u16(m.sig.length, 'sig'), m.sig,
    ...(m.qkdIds ? [u16(m.qkdIds.length, 'key_IDs'), m.qkdIds] : []),
    ...(m.flags !== undefined ? [Buffer.of(m.flags)] : []),
  ]));
}

/**
 * `qkd`: the suite is a QKD suite (§11), whose ServerHello ends with ids_len(2) | key_IDs; `plaintext`: suite
 * `none` (§12), whose ServerHello ends with flags(1). Structural decode only; the caller checks the values.
 */
export function decodeServerHello(body: Buffer, qkd = false, plaintext = false): ServerHello {
  const c = new Cursor(body, 'ServerHello');
  const serverRandom = c.bytes(RANDOM_LEN);
  const share = c.vec16();
  const cert = c.vec16();
  const sig = c.vec16();
  const qkdIds = qkd ? c.vec16() : undefined;
  const flags = plaintext ? c.u8() : undefined;
  c.end();
  return { serverRandom, share, cert, sig, ...(qkdIds ? { qkdIds } : {}), ...(flags !== undefined ? { flags } : {}) };
}

export function encodeClientKeyExchange(ct: Uint8Array): Buffer {
  return encodeFrame(MSG.ClientKeyExchange, Buffer.concat([u16(ct.length, 'ct'), ct]));
}

export function decodeClientKeyExchange(body: Buffer): Buffer {
  const c = new Cursor(body, 'ClientKeyExchange');
  const ct = c.vec16();
  c.end();
  return ct;
}

export interface ClientAuth {
  pk: Buffer;
  sig: Buffer;
}

export function encodeClientAuth(m: { pk: Uint8Array; sig: Uint8Array }): Buffer {
  return encodeFrame(MSG.ClientAuth, Buffer.concat([u16(m.pk.length, 'pk'), m.pk, u16(m.sig.length, 'sig'), m.sig]));
}

/** Structural decode only; the lengths of pk and sig are checked by the caller. */
export function decodeClientAuth(body: Buffer): ClientAuth {
  const c = new Cursor(body, 'ClientAuth');
  const pk = c.vec16();
  const sig = c.vec16();
  c.end();
  return { pk, sig };
}

export function encodeFinished(mac: Uint8Array): Buffer {
  fixed(mac, FINISHED_LEN, 'Finished mac');
  return encodeFrame(MSG.Finished, mac);
}

export function decodeFinished(body: Buffer): Buffer {
  if (body.length !== FINISHED_LEN) {
    throw new WireError('decode_error', `Finished: body must be ${FINISHED_LEN} bytes, got ${body.length}`);
  }
  return body;
}

export interface Alert {
  code: number;
  reason: string;
}

export function encodeAlert(code: number, reason = ''): Buffer {
  return encodeFrame(MSG.Alert, Buffer.concat([Buffer.of(code), Buffer.from(reason, 'utf8')]));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
export function decodeAlert(body: Buffer): Alert {
  if (body.length < 1) throw new WireError('decode_error', 'Alert: empty body');
  let reason: string;
  try {
    reason = utf8.decode(body.subarray(1));
  } catch {
    throw new WireError('decode_error', 'Alert: reason is not UTF-8');
  }
  return { code: body[0]!, reason };
}

/** Record frames carry an opaque body (epoch|seq|ciphertext|tag, or epoch|seq|plaintext for `none`; see record.ts). */
export function encodeRecordFrame(body: Uint8Array): Buffer {
  return encodeFrame(MSG.Record, body);
}
