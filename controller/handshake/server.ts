// QSHS/1 handshake server (controller side of the data plane, firmware/HANDSHAKE.md §4).
//
// One TCP connection per operation: ClientHello → ServerHello → [ClientKeyExchange] → client Finished →
// server Finished → M echoed records → close_notify. Long-term keys are loaded/generated once; per handshake
// the server does one ephemeral keygen + ECDH/X25519 + one ECDSA signature (or one RSA-OAEP decryption) and a
// handful of HMACs, all synchronous node crypto (no thread-pool hops). Every connection reports one ServerOp
// (timings, sizes, outcome; never key material) to the onOp listeners once its socket has closed.

import {
  constants as C, createECDH, createPublicKey, diffieHellman, generateKeyPairSync, privateDecrypt, randomBytes, sign,
  type KeyObject,
} from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import {
  deriveHandshakeSecrets, finishedMac, observeSecret, sha256, Transcript, verifyFinished, wipe, wipeHandshakeSecrets,
  type HandshakeSecrets,
} from './keyschedule.js';
import {
  checkServerKeys, generateServerKeysAsync, keyPin, spkiDer, type ServerKeys,
} from './keys.js';
import { RecordError, RecordReceiver, RecordSender } from './record.js';
import {
  aeadName, ALERT, alertName, decodeAlert, decodeClientHello, decodeClientKeyExchange, decodeFinished,
  encodeAlert, encodeFinished, encodeRecordFrame, encodeServerHello, FrameStream, isSuiteName, MSG, msgName,
  PREMASTER_LEN, RANDOM_LEN, shareLen, StreamError, suiteName, VERSION, WireError,
  type AeadName, type AlertName, type Frame, type SuiteName,
} from './wire.js';

export {
  generateServerKeys, generateServerKeysAsync, loadServerKeys, saveServerKeys, loadOrCreateServerKeys, checkServerKeys,
  type ServerKeys,
} from './keys.js';

/** Deliberate misbehaviour, to test the node's checks. */
export type Fault = 'tamper' | 'replay' | 'bad-sig' | 'bad-finished' | 'wrong-key';
export const FAULTS: readonly Fault[] = ['tamper', 'replay', 'bad-sig', 'bad-finished', 'wrong-key'];

export interface HandshakeServerOptions {
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Listen port (default 0 = ephemeral). */
  port?: number;
  /** Long-term identity; generated in start() when absent. */
  keys?: ServerKeys;
  fault?: Fault;
  /** Max wait for the client's next message, handshake and record phase alike (default 10000 ms). */
  recordTimeoutMs?: number;
}

/** One connection as the server saw it. Contains no key material. */
export interface ServerOp {
  /** First 16 hex digits of client_random ('' when no valid ClientHello arrived). */
  cr: string;
  /** Suite / AEAD names ('' when unknown). */
  suite: string;
  aead: string;
  /** K from the ClientHello (-1 when unknown). */
  refresh: number;
  ok: boolean;
  /**
   * On failure: the alert the server sent (`decode_error`, `handshake_failure`, `unsupported`, `bad_record_mac`,
   * `replay`, `bad_epoch`, `internal_error`), `peer_alert:<name>` when the client sent one, or `timeout`,
   * `eof` (peer closed without close_notify), `truncated` (peer closed inside a frame), `net`, `server_closed`.
   */
  err?: string;
  /** Human-readable detail for `err`. */
  msg?: string;
  /** accept → socket closed, µs. */
  wallUs: number;
  /** accept → server Finished written, µs (absent when the handshake did not complete). */
  hsUs?: number;
  /** Records echoed. */
  recs: number;
  /** Bytes read from / written to the socket (framing included). */
  bytesIn: number;
  bytesOut: number;
}

export type OpListener = (op: ServerOp) => void;

/** The identity a connection presents: private keys plus their SPKI DER. */
interface Identity {
  rsa: KeyObject;
  rsaSpki: Buffer;
  ecdsa: KeyObject;
  ecdsaSpki: Buffer;
}

function identityOf(keys: ServerKeys): Identity {
  checkServerKeys(keys);
  return { rsa: keys.rsa, rsaSpki: spkiDer(keys.rsa), ecdsa: keys.ecdsa, ecdsaSpki: spkiDer(keys.ecdsa) };
}

const SIG_CONTEXT = Buffer.concat([Buffer.from('QSHS1 server signature', 'latin1'), Buffer.of(0)]);
const RSA_CT_LEN = 256;
const LINGER_MS = 2000;

/** Ends the connection with `err`; sends Alert(`alert`) first when given. */
class Abort extends Error {
  constructor(readonly err: string, message: string, readonly alert?: AlertName) {
    super(message);
  }
}

interface ConnState {
  socket: Socket;
  acceptNs: bigint;
  cr: string;
  suite: string;
  aead: string;
  refresh: number;
  ok: boolean;
  err?: string;
  msg?: string;
  hsNs?: bigint;
  recs: number;
}

const usSince = (t0: bigint, t1: bigint): number => Number(t1 - t0) / 1000;

export class HandshakeServer {
  private readonly opts: HandshakeServerOptions;
  private readonly timeoutMs: number;
  private id: Identity | undefined;
  private presented: Identity | undefined; // differs from `id` under fault 'wrong-key'
  private pins = new Map<SuiteName, string>();
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly pending = new Set<Promise<void>>();
  private readonly listeners = new Set<OpListener>();
  private closing = false;
  private closed: Promise<void> | undefined;

  constructor(opts: HandshakeServerOptions = {}) {
    this.opts = { ...opts };
    this.timeoutMs = opts.recordTimeoutMs ?? 10_000;
    if (opts.fault !== undefined && !FAULTS.includes(opts.fault)) throw new Error(`unknown fault '${String(opts.fault)}'`);
    if (opts.keys) this.setIdentity(opts.keys);
  }

  private setIdentity(keys: ServerKeys): void {
    this.id = identityOf(keys);
    this.pins = new Map((['rsa2048', 'ecdhe-p256-ecdsa', 'x25519'] as SuiteName[]).map((s) => [s, keyPin(keys, s)]));
  }

  /** Subscribe to per-connection reports; returns an unsubscribe function. */
  onOp(listener: OpListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hex SHA-256 of the SPKI DER this server's identity has for `suite` (the pin a node must be given). */
  pin(suite: string): string {
    if (!isSuiteName(suite)) throw new Error(`unknown suite '${suite}'`);
    const p = this.pins.get(suite);
    if (!p) throw new Error('server keys not ready: pass keys to the constructor or await start() first');
    return p;
  }

  get address(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  async start(): Promise<{ host: string; port: number }> {
    if (this.server) throw new Error('server already started');
    if (!this.id) this.setIdentity(await generateServerKeysAsync());
    this.presented = this.opts.fault === 'wrong-key' ? identityOf(await generateServerKeysAsync()) : this.id;
    const server = createServer({ noDelay: true }, (s) => this.accept(s));
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      this.server = undefined;
      throw e;
    }
    // Later listener errors (e.g. EMFILE on accept) must not crash the controller.
    server.on('error', () => undefined);
    return this.address!;
  }

  /** Stop listening, destroy every open connection, and resolve once all their ops have been reported. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closing = true;
      const server = this.server;
      const listenerClosed = server
        ? new Promise<void>((resolve) => server.close(() => resolve()))
        : Promise.resolve();
      for (const s of this.sockets) s.destroy();
      this.closed = Promise.all([listenerClosed, ...this.pending]).then(() => undefined);
    }
    return this.closed;
  }

  // -------------------------------------------------------------------------------------------------------

  private accept(socket: Socket): void {
    const st: ConnState = {
      socket, acceptNs: process.hrtime.bigint(), cr: '', suite: '', aead: '', refresh: -1, ok: false, recs: 0,
    };
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const closedP = new Promise<bigint>((resolve) => socket.once('close', () => resolve(process.hrtime.bigint())));
    const done = this.serve(st)
      .catch(() => undefined) // serve() handles its own errors; this is belt and braces
      .then(() => closedP)
      .then((closeNs) => {
        this.sockets.delete(socket);
        this.report(st, closeNs);
      });
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  private report(st: ConnState, closeNs: bigint): void {
    const op: ServerOp = {
      cr: st.cr, suite: st.suite, aead: st.aead, refresh: st.refresh, ok: st.ok,
      wallUs: usSince(st.acceptNs, closeNs),
      recs: st.recs, bytesIn: st.socket.bytesRead, bytesOut: st.socket.bytesWritten,
    };
    if (!st.ok) {
      op.err = st.err ?? (this.closing ? 'server_closed' : 'eof');
      if (st.msg) op.msg = st.msg;
    }
    if (st.hsNs !== undefined) op.hsUs = usSince(st.acceptNs, st.hsNs);
    for (const l of this.listeners) {
      try {
        l(op);
      } catch {
        // a listener's bug must not take the server down
      }
    }
  }

  private async serve(st: ConnState): Promise<void> {
    const { socket } = st;
    const frames = new FrameStream(socket);
    const secrets: { hs?: HandshakeSecrets; z?: Buffer; tx?: RecordSender; rx?: RecordReceiver } = {};
    let endWith: Buffer | undefined;
    let graceful = false;
    try {
      await this.run(st, frames, secrets);
      graceful = true;
    } catch (e) {
      if (e instanceof Abort) {
        st.err = e.err;
        st.msg = e.message;
        if (e.alert) endWith = encodeAlert(ALERT[e.alert], e.message);
      } else if (e instanceof WireError) {
        st.err = e.alert;
        st.msg = e.message;
        endWith = encodeAlert(ALERT[e.alert], e.message);
      } else if (e instanceof RecordError) {
        st.err = e.code;
        st.msg = e.message;
        endWith = encodeAlert(ALERT[e.code], e.message);
      } else if (e instanceof StreamError) {
        st.err = this.closing ? 'server_closed' : e.kind;
        st.msg = e.message;
      } else {
        st.err = 'internal_error';
        st.msg = e instanceof Error ? `${e.name}: ${e.message}` : 'internal error';
        endWith = encodeAlert(ALERT.internal_error, 'internal error');
      }
    } finally {
      wipeHandshakeSecrets(secrets.hs);
      wipe(secrets.z);
      secrets.tx?.destroy();
      secrets.rx?.destroy();
    }
    if (socket.destroyed) return;
    if (graceful || endWith) {
      if (endWith && socket.writable) socket.end(endWith);
      else socket.end();
      // The peer should close at once; do not keep a half-open socket around if it does not.
      socket.setTimeout(LINGER_MS, () => socket.destroy());
    } else {
      socket.destroy();
    }
  }

  private async read(frames: FrameStream, ...expect: number[]): Promise<Frame> {
    const f = await frames.read(this.timeoutMs);
    if (f.type === MSG.Alert) {
      const a = decodeAlert(f.body);
      if (a.code === ALERT.close_notify && !expect.includes(MSG.Alert)) {
        throw new Abort('eof', 'peer sent close_notify before the operation completed');
      }
      if (a.code !== ALERT.close_notify) {
        throw new Abort(`peer_alert:${alertName(a.code)}`, a.reason ? `peer alert: ${a.reason}` : 'peer alert');
      }
      return f;
    }
    if (!expect.includes(f.type)) {
      throw new Abort('decode_error', `unexpected ${msgName(f.type)}`, 'decode_error');
    }
    return f;
  }

  private async run(
    st: ConnState, frames: FrameStream,
    secrets: { hs?: HandshakeSecrets; z?: Buffer; tx?: RecordSender; rx?: RecordReceiver },
  ): Promise<void> {
    const { socket } = st;
    const fault = this.opts.fault;
    const ident = this.presented!;

    // ClientHello
    const chF = await this.read(frames, MSG.ClientHello);
    const ch = decodeClientHello(chF.body);
    st.cr = ch.clientRandom.subarray(0, 8).toString('hex');
    const suite = suiteName(ch.suite);
    const aead: AeadName | undefined = aeadName(ch.aead);
    st.suite = suite ?? '';
    st.aead = aead ?? '';
    st.refresh = ch.refresh;
    if (ch.version !== VERSION) throw new Abort('unsupported', `unsupported version ${ch.version}`, 'unsupported');
    if (!suite) throw new Abort('unsupported', `unsupported suite ${ch.suite}`, 'unsupported');
    if (!aead) throw new Abort('unsupported', `unsupported aead ${ch.aead}`, 'unsupported');
    if (ch.share.length !== shareLen(suite)) {
      throw new Abort('decode_error', `${suite} client share must be ${shareLen(suite)} bytes`, 'decode_error');
    }
    const transcript = new Transcript().add(chF.raw);
    const serverRandom = randomBytes(RANDOM_LEN);

    // ServerHello (the ECDH computation happens after it is sent, overlapping the client's verification)
    let share = Buffer.alloc(0);
    let cert: Buffer;
    let sig = Buffer.alloc(0);
    let derive: (() => Buffer) | undefined;
    if (suite === 'rsa2048') {
      cert = ident.rsaSpki;
    } else {
      cert = ident.ecdsaSpki;
      if (suite === 'ecdhe-p256-ecdsa') {
        if (ch.share[0] !== 0x04) throw new Abort('decode_error', 'P-256 share must be an uncompressed point', 'decode_error');
        const ecdh = createECDH('prime256v1');
        share = ecdh.generateKeys();
        derive = () => ecdh.computeSecret(ch.share);
      } else {
        const kp = generateKeyPairSync('x25519');
        share = Buffer.from(kp.publicKey.export({ format: 'jwk' }).x!, 'base64url');
        derive = () => diffieHellman({
          privateKey: kp.privateKey,
          publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: ch.share.toString('base64url') }, format: 'jwk' }),
        });
      }
      sig = sign('sha256', Buffer.concat([SIG_CONTEXT, sha256(chF.raw), serverRandom, share]), {
        key: ident.ecdsa, dsaEncoding: 'der',
      });
      if (fault === 'bad-sig') sig[sig.length - 1]! ^= 0x01;
    }
    const shFrame = encodeServerHello({ serverRandom, share, cert, sig });
    socket.write(shFrame);
    transcript.add(shFrame);

    // Z
    if (derive) {
      try {
        secrets.z = derive();
      } catch {
        throw new Abort('handshake_failure', 'invalid client key share', 'handshake_failure');
      }
      if (secrets.z.every((b) => b === 0)) throw new Abort('handshake_failure', 'all-zero shared secret', 'handshake_failure');
    } else {
      const ckeF = await this.read(frames, MSG.ClientKeyExchange);
      const ct = decodeClientKeyExchange(ckeF.body);
      if (ct.length !== RSA_CT_LEN) throw new Abort('decode_error', `RSA ciphertext must be ${RSA_CT_LEN} bytes`, 'decode_error');
      transcript.add(ckeF.raw);
      // A failed decryption is not reported separately (no padding oracle): a random premaster makes the
      // Finished check fail like any other key mismatch.
      try {
        secrets.z = privateDecrypt({ key: ident.rsa, padding: C.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, ct);
        if (secrets.z.length !== PREMASTER_LEN) {
          wipe(secrets.z);
          secrets.z = randomBytes(PREMASTER_LEN);
        }
      } catch {
        secrets.z = randomBytes(PREMASTER_LEN);
      }
    }
    observeSecret('Z(server)', secrets.z);

    // Key schedule and Finished
    const th = transcript.snapshot();
    secrets.hs = deriveHandshakeSecrets(secrets.z, ch.clientRandom, serverRandom, th);
    wipe(secrets.z);
    const finF = await this.read(frames, MSG.Finished);
    const mac = decodeFinished(finF.body);
    const good = verifyFinished(secrets.hs.cFin, th, mac);
    wipe(secrets.hs.cFin);
    if (!good) throw new Abort('handshake_failure', 'client Finished does not verify', 'handshake_failure');
    const th2 = transcript.add(finF.raw).snapshot();
    const sfin = finishedMac(secrets.hs.sFin, th2);
    wipe(secrets.hs.sFin);
    if (fault === 'bad-finished') sfin[0]! ^= 0x01;
    socket.write(encodeFinished(sfin));
    st.hsNs = process.hrtime.bigint();

    // Record phase
    secrets.rx = new RecordReceiver(aead, secrets.hs.c2s, ch.refresh);
    secrets.tx = new RecordSender(aead, secrets.hs.s2c, ch.refresh);
    secrets.hs = undefined; // ownership of the traffic secrets moved to the record objects
    for (;;) {
      const f = await this.read(frames, MSG.Record, MSG.Alert);
      if (f.type === MSG.Alert) break; // close_notify (other alerts threw in read())
      const { plaintext } = secrets.rx.open(f.body);
      const body: Buffer = secrets.tx.seal(plaintext);
      if (st.recs === 0 && fault === 'tamper') {
        const i = body.length > 26 ? 10 : body.length - 1; // first ciphertext byte, or the tag when empty
        body[i]! ^= 0x01;
      }
      const frame = encodeRecordFrame(body);
      socket.write(frame);
      if (st.recs === 0 && fault === 'replay') socket.write(frame);
      st.recs++;
    }
    st.ok = true;
  }
}
