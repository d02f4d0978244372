// QSHS/1 handshake server (controller side of the data plane, firmware/HANDSHAKE.md §4).
//
// One TCP connection per operation: ClientHello → ServerHello → [ClientKeyExchange] → [ClientAuth] → client
// Finished → server Finished → M echoed records → close_notify. Long-term keys are loaded/generated once; per
// handshake the server does one ephemeral keygen + ECDH/X25519 + one ECDSA signature (or one RSA-OAEP
// decryption; post-quantum suites: one ML-KEM encapsulation [+ X25519] + one ML-DSA or ECDSA signature
// [+ one ML-DSA verification under mutual authentication]) and a handful of HMACs, all synchronous (node crypto,
// @noble/post-quantum; no thread-pool hops). Every connection reports one ServerOp (timings, sizes, outcome;
// never key material) to the onOp listeners once its socket has closed.
//
// The plaintext baseline `none` (HANDSHAKE.md §12) is refused with `unsupported` unless the server was started
// with `allowPlaintext: true`; when allowed it is ClientHello → ServerHello → M echoed records in the clear →
// close_notify, through the same accept/read/echo code as every other suite.

import { nobleBackend, type PqcBackend } from './pqc-backend.js';
import { x25519Ephemeral } from './x25519.js';
import {
  constants as C, createECDH, privateDecrypt, randomBytes, sign,
  type KeyObject,
} from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import {
  deriveHandshakeSecrets, finishedMac, observeSecret, secretsFromMaster, sha256, Transcript, verifyFinished, wipe,
  wipeHandshakeSecrets, type HandshakeSecrets,
} from './keyschedule.js';
import { keyIdToBytes, QKD_KEY_LEN, qkdMaster, type QkdKey, type QkdKeySource } from './qkd.js';
import {
  checkServerKeys, generateServerKeysAsync, keyPin, mldsaKeyPair, spkiDer, type ServerKeys,
} from './keys.js';
import { CLIENT_SIG_LABEL, dsa, DSA_LEVELS, kem, type DsaLevel } from './pq.js';
import {
  PlaintextRecordReceiver, PlaintextRecordSender, RECORD_HEADER_LEN, RECORD_OVERHEAD, RecordError, RecordReceiver,
  RecordSender, type RecordOpener, type RecordSealer,
} from './record.js';
import {
  AEAD_NONE, aeadName, ALERT, alertName, CH_FLAG_MUTUAL, HELLO_FLAG_PLAINTEXT, clientShareLen, decodeAlert, decodeClientAuth, decodeClientHello,
  decodeClientKeyExchange, decodeFinished, encodeAlert, encodeFinished, encodeRecordFrame, encodeServerHello,
  FrameStream, isSuiteName, MSG, msgName, PREMASTER_LEN, RANDOM_LEN, StreamError, SUITE_INFO, SUITES, suiteName,
  VERSION, WireError,
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
  /** Who does the server's ML-KEM encapsulation and ML-DSA signing (default: noble in this process). */
  pqc?: PqcBackend;
  /** Fresh QKD keys for the QKD suites (HANDSHAKE.md §11); without it those suites are `unsupported`. */
  qkd?: QkdKeySource;
  /**
   * Negotiate the unauthenticated plaintext baseline `none` (HANDSHAKE.md §12). Off by default: a ClientHello for
   * `none` is then answered with Alert(unsupported) so plaintext can never be negotiated by accident.
   */
  allowPlaintext?: boolean;
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
  /** The ClientHello asked for mutual authentication (HANDSHAKE.md §10.3). */
  mutual?: boolean;
  /** Mutual authentication: hex SHA-256 of the client's ML-DSA public key, set once its signature verified. */
  clientKey?: string;
  /** QKD suites (§11): the key_IDs the server took for this connection, epoch 0 first (ids only, never keys). */
  qkdKeyIds: string[];
}

export type OpListener = (op: ServerOp) => void;

/** The identity a connection presents: private keys plus their SPKI DER / raw ML-DSA public keys. */
interface Identity {
  rsa: KeyObject;
  rsaSpki: Buffer;
  ecdsa: KeyObject;
  ecdsaSpki: Buffer;
  mldsa: Record<DsaLevel, { pk: Buffer; sk: Uint8Array }>;
}

function identityOf(keys: ServerKeys): Identity {
  checkServerKeys(keys);
  const ml = (l: DsaLevel): { pk: Buffer; sk: Uint8Array } => {
    const kp = mldsaKeyPair(keys, l);
    return { pk: Buffer.from(kp.pk), sk: kp.sk };
  };
  return {
    rsa: keys.rsa, rsaSpki: spkiDer(keys.rsa), ecdsa: keys.ecdsa, ecdsaSpki: spkiDer(keys.ecdsa),
    mldsa: Object.fromEntries(DSA_LEVELS.map((l) => [l, ml(l)])) as Identity['mldsa'],
  };
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
  mutual?: boolean;
  clientKey?: string;
  qkdKeyIds: string[];
}

const usSince = (t0: bigint, t1: bigint): number => Number(t1 - t0) / 1000;

/** Everything secret one connection holds, wiped when it ends. */
interface ConnSecrets {
  hs?: HandshakeSecrets;
  z?: Buffer;
  tx?: RecordSealer;
  rx?: RecordOpener;
  /** QKD suites: the keys taken for this connection (epoch 0 first). */
  qkd?: QkdKey[];
}

export class HandshakeServer {
  private readonly opts: HandshakeServerOptions;
  private readonly timeoutMs: number;
  private readonly pqc: PqcBackend;
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
    this.pqc = opts.pqc ?? nobleBackend;
    if (opts.fault !== undefined && !FAULTS.includes(opts.fault)) throw new Error(`unknown fault '${String(opts.fault)}'`);
    if (opts.keys) this.setIdentity(opts.keys);
  }

  private setIdentity(keys: ServerKeys): void {
    this.id = identityOf(keys);
    this.pins = new Map(SUITES.map((s) => [s, keyPin(keys, s)]));
  }

  /** Subscribe to per-connection reports; returns an unsubscribe function. */
  onOp(listener: OpListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hex SHA-256 of the cert (SPKI DER, or raw ML-DSA public key) this server presents for `suite` (the node's pin). */
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
      qkdKeyIds: [],
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
      recs: st.recs, bytesIn: st.socket.bytesRead, bytesOut: st.socket.bytesWritten, qkdKeyIds: [...st.qkdKeyIds],
    };
    if (!st.ok) {
      op.err = st.err ?? (this.closing ? 'server_closed' : 'eof');
      if (st.msg) op.msg = st.msg;
    }
    if (st.hsNs !== undefined) op.hsUs = usSince(st.acceptNs, st.hsNs);
    if (st.mutual !== undefined) op.mutual = st.mutual;
    if (st.clientKey) op.clientKey = st.clientKey;
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
    const secrets: ConnSecrets = {};
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
      wipe(secrets.z, ...(secrets.qkd ?? []).map((k) => k.key));
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
    st: ConnState, frames: FrameStream, secrets: ConnSecrets,
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
    const info = SUITE_INFO[suite];
    const plaintext = (ch.flags! & HELLO_FLAG_PLAINTEXT) !== 0;
    if (info.plaintext) {
      // §12: refused before anything else unless this server was started with allowPlaintext (the reason fits the
      // 63 characters a node keeps of an alert)
      if (!this.opts.allowPlaintext) {
        throw new Abort('unsupported', 'plaintext suite none not allowed (server allowPlaintext off)', 'unsupported');
      }
      if (ch.aead !== AEAD_NONE) throw new Abort('unsupported', `suite none needs aead 0 (none), got ${ch.aead}`, 'unsupported');
      st.aead = 'none';
      if (!plaintext) throw new Abort('unsupported', 'suite none needs the plaintext flag (0x02) in the ClientHello', 'unsupported');
    } else {
      if (!aead) throw new Abort('unsupported', `unsupported aead ${ch.aead}`, 'unsupported');
      if (plaintext) throw new Abort('unsupported', `plaintext flag with suite ${suite}`, 'unsupported');
    }
    if (ch.flags! & ~(CH_FLAG_MUTUAL | HELLO_FLAG_PLAINTEXT)) {
      throw new Abort('unsupported', `unsupported ClientHello flags 0x${ch.flags!.toString(16).padStart(2, '0')}`, 'unsupported');
    }
    const mutual = (ch.flags! & CH_FLAG_MUTUAL) !== 0;
    st.mutual = mutual;
    if (mutual && info.clientDsa === undefined) {
      throw new Abort('unsupported', `mutual authentication is not defined for ${suite}`, 'unsupported');
    }
    if (ch.share.length !== clientShareLen(suite)) {
      throw new Abort('decode_error', `${suite} client share must be ${clientShareLen(suite)} bytes`, 'decode_error');
    }
    if (info.plaintext) {
      // §12: ServerHello with empty share, cert and sig and the plaintext flag; no transcript, no key schedule, no
      // Finished. The records are those of every suite, in the clear.
      const empty = Buffer.alloc(0);
      socket.write(encodeServerHello({
        serverRandom: randomBytes(RANDOM_LEN), share: empty, cert: empty, sig: empty, flags: HELLO_FLAG_PLAINTEXT,
      }));
      st.hsNs = process.hrtime.bigint();
      secrets.rx = new PlaintextRecordReceiver(ch.refresh);
      secrets.tx = new PlaintextRecordSender(ch.refresh);
      await this.echo(st, frames, secrets.rx, secrets.tx, RECORD_HEADER_LEN);
      st.ok = true;
      return;
    }
    // QKD suites (§11): one key for the handshake plus qkd_upd fresh keys for the record epochs, taken now
    let qkdIds: Buffer | undefined;
    if (info.qkd) {
      const src = this.opts.qkd;
      if (!src) throw new Abort('unsupported', `${suite}: this server has no QKD key source`, 'unsupported');
      const n = 1 + (ch.qkdUpd ?? 0);
      let keys: QkdKey[];
      try {
        keys = await src.take(n);
      } catch (e) {
        throw new Abort('internal_error', `QKD key source: ${e instanceof Error ? e.message : String(e)}`, 'internal_error');
      }
      secrets.qkd = keys;
      if (keys.length !== n || keys.some((k) => k.key.length !== QKD_KEY_LEN)) {
        throw new Abort('internal_error', `QKD key source returned ${keys.length} keys (wanted ${n} of ${QKD_KEY_LEN} bytes)`, 'internal_error');
      }
      st.qkdKeyIds = keys.map((k) => k.keyId.toLowerCase());
      qkdIds = Buffer.concat(keys.map((k) => keyIdToBytes(k.keyId)));
    }
    const transcript = new Transcript().add(chF.raw);
    const serverRandom = randomBytes(RANDOM_LEN);

    // ServerHello (the ECDH computation happens after it is sent, overlapping the client's verification; the
    // ML-KEM encapsulation cannot: its ciphertext is the server share)
    let share: Buffer = Buffer.alloc(0);
    let cert: Buffer;
    let sig: Buffer = Buffer.alloc(0);
    let derive: (() => Buffer) | undefined;
    const x25519Pair = (peer: Buffer): { pub: Buffer; derive: () => Buffer } => {
      const kp = x25519Ephemeral();
      return { pub: kp.pub, derive: () => kp.derive(peer) };
    };
    const encaps = async (ek: Buffer): Promise<{ ct: Uint8Array; ss: Uint8Array }> => {
      try {
        return await this.pqc.encaps(info.kem!, ek);
      } catch {
        throw new Abort('handshake_failure', 'invalid client key share (ML-KEM encapsulation key)', 'handshake_failure');
      }
    };
    if (suite === 'rsa2048') {
      cert = ident.rsaSpki;
    } else {
      if (info.kex === 'p256') {
        if (ch.share[0] !== 0x04) throw new Abort('decode_error', 'P-256 share must be an uncompressed point', 'decode_error');
        const ecdh = createECDH('prime256v1');
        share = ecdh.generateKeys();
        derive = () => ecdh.computeSecret(ch.share);
      } else if (info.kex === 'x25519') {
        const x = x25519Pair(ch.share);
        share = x.pub;
        derive = x.derive;
      } else if (info.kex === 'mlkem') {
        const { ct, ss } = await encaps(ch.share);
        share = Buffer.from(ct);
        const z = Buffer.from(ss);
        wipe(ss);
        derive = () => z;
      } else {
        // x25519mlkem768: ML-KEM-768 first, then X25519 (§10.1)
        const ekLen = kem(info.kem!).ekLen;
        const { ct, ss } = await encaps(ch.share.subarray(0, ekLen));
        const x = x25519Pair(ch.share.subarray(ekLen));
        share = Buffer.concat([ct, x.pub]);
        const ssKem = Buffer.from(ss);
        wipe(ss);
        derive = () => {
          let ssX: Buffer;
          try {
            ssX = x.derive();
          } catch (e) {
            wipe(ssKem);
            throw e;
          }
          if (ssX.every((b) => b === 0)) {
            wipe(ssKem);
            throw new Abort('handshake_failure', 'all-zero X25519 shared secret', 'handshake_failure');
          }
          const z = Buffer.concat([ssKem, ssX]);
          wipe(ssKem, ssX);
          return z;
        };
      }
      const signed = Buffer.concat([SIG_CONTEXT, sha256(chF.raw), serverRandom, share]);
      if (info.auth === 'mldsa') {
        const key = ident.mldsa[info.dsa!];
        cert = key.pk;
        sig = Buffer.from(await this.pqc.sign(info.dsa!, signed, key.sk));
        if (fault === 'bad-sig') sig[0]! ^= 0x01; // c~ (the challenge hash): never verifies
      } else {
        cert = ident.ecdsaSpki;
        sig = sign('sha256', signed, { key: ident.ecdsa, dsaEncoding: 'der' });
        if (fault === 'bad-sig') sig[sig.length - 1]! ^= 0x01;
      }
    }
    const shFrame = encodeServerHello({ serverRandom, share, cert, sig, ...(qkdIds ? { qkdIds } : {}) });
    socket.write(shFrame);
    transcript.add(shFrame);

    // Z
    if (derive) {
      try {
        secrets.z = derive();
      } catch (e) {
        if (e instanceof Abort) throw e;
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

    // ClientAuth (mutual): ML-DSA signature over the transcript hash up to the ServerHello (§10.3)
    if (mutual) {
      const caF = await this.read(frames, MSG.ClientAuth);
      const ca = decodeClientAuth(caF.body);
      const d = dsa(info.clientDsa!);
      if (ca.pk.length !== d.pkLen || ca.sig.length !== d.sigLen) {
        throw new Abort('decode_error', `ClientAuth: ML-DSA-${d.level} key and signature must be ${d.pkLen} and ${d.sigLen} bytes`, 'decode_error');
      }
      const clientSigned = Buffer.concat([CLIENT_SIG_LABEL, Buffer.of(0), transcript.snapshot()]);
      if (!d.verify(ca.sig, clientSigned, ca.pk)) {
        throw new Abort('handshake_failure', 'client signature does not verify', 'handshake_failure');
      }
      st.clientKey = sha256(ca.pk).toString('hex');
      transcript.add(caF.raw);
    }
    observeSecret('Z(server)', secrets.z);

    // Key schedule and Finished
    const th = transcript.snapshot();
    if (secrets.qkd) {
      // §11.3: CatKDF over the QKD key of epoch 0, Z, TH and key_ID_0
      secrets.hs = secretsFromMaster(qkdMaster({
        qkdKey: secrets.qkd[0]!.key, z: secrets.z, th, keyId0: qkdIds!.subarray(0, 16), clientRandom: ch.clientRandom, serverRandom,
      }));
      wipe(secrets.qkd[0]!.key);
    } else {
      secrets.hs = deriveHandshakeSecrets(secrets.z, ch.clientRandom, serverRandom, th);
    }
    wipe(secrets.z);
    const finF = await this.read(frames, MSG.Finished);
    const mac = decodeFinished(finF.body);
    const good = verifyFinished(secrets.hs.cFin, th, mac);
    wipe(secrets.hs.cFin);
    if (!good) {
      if (secrets.qkd) {
        // §11.5 key confirmation: the signature covered the ML-KEM ciphertext, so a wrong Finished means the
        // client's QKD key differs from ours (or the client is broken)
        throw new Abort('handshake_failure', `key confirmation failed (QKD key ${st.qkdKeyIds[0]}): client Finished does not verify`, 'handshake_failure');
      }
      throw new Abort('handshake_failure', 'client Finished does not verify', 'handshake_failure');
    }
    const th2 = transcript.add(finF.raw).snapshot();
    const sfin = finishedMac(secrets.hs.sFin, th2);
    wipe(secrets.hs.sFin);
    if (fault === 'bad-finished') sfin[0]! ^= 0x01;
    socket.write(encodeFinished(sfin));
    st.hsNs = process.hrtime.bigint();

    // Record phase
    const epochKeys = secrets.qkd?.slice(1).map((k) => k.key);
    const recAead = aead!; // checked with the ClientHello for every suite but none, which has returned above
    secrets.rx = new RecordReceiver(recAead, secrets.hs.c2s, ch.refresh, epochKeys);
    secrets.tx = new RecordSender(recAead, secrets.hs.s2c, ch.refresh, epochKeys);
    secrets.hs = undefined; // ownership of the traffic secrets moved to the record objects
    await this.echo(st, frames, secrets.rx, secrets.tx, RECORD_OVERHEAD);
    st.ok = true;
  }

  /** Record phase: echo every record until close_notify. `overhead`: body bytes besides the payload. */
  private async echo(st: ConnState, frames: FrameStream, rx: RecordOpener, tx: RecordSealer, overhead: number): Promise<void> {
    const fault = this.opts.fault;
    for (;;) {
      const f = await this.read(frames, MSG.Record, MSG.Alert);
      if (f.type === MSG.Alert) break; // close_notify (other alerts threw in read())
      const { plaintext } = rx.open(f.body);
      const body: Buffer = tx.seal(plaintext);
      if (st.recs === 0 && fault === 'tamper') {
        // first ciphertext (plaintext: payload) byte, or the last byte (the tag) when the payload is empty
        const i = body.length > overhead ? RECORD_HEADER_LEN : body.length - 1;
        body[i]! ^= 0x01;
      }
      const frame = encodeRecordFrame(body);
      st.socket.write(frame);
      if (st.recs === 0 && fault === 'replay') st.socket.write(frame);
      st.recs++;
    }
  }
}
