// QSHS/1 reference client (the node's side of firmware/HANDSHAKE.md), in TypeScript. Used by tests, for
// loopback benchmarks, and as a readable reference for the C firmware. Reports what the node reports in its
// `op` event: per-step timings (µs), byte counts, `cr`, and an E_* error code on failure.
//
// Independence from server.ts: the client builds and checks its own messages (signature input, transcript,
// Finished), and by default does its public-key crypto with @noble/curves (P-256 ECDH + ECDSA verification,
// X25519) while the server uses node/OpenSSL; `crypto: 'node'` switches the client to node crypto for speed.
// RSA-OAEP encryption always uses node crypto (noble has no RSA). ML-KEM / ML-DSA (suites 4–7, HANDSHAKE.md
// §10) always use @noble/post-quantum, like the server: the independent implementation of those is the
// firmware's. Shared with the server: wire framing, key schedule, record layer, PQ parameter tables.
// Suite `none` (§12, the plaintext baseline): hello exchange, then the records in the clear; only against a server
// started with `allowPlaintext`.

import { x25519Ephemeral } from './x25519.js';
import {
  constants as C, createECDH, createHash, createPublicKey, publicEncrypt,
  randomBytes, timingSafeEqual, verify as nodeVerify, type KeyObject,
} from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { p256 } from '@noble/curves/nist.js';
import { x25519 } from '@noble/curves/ed25519.js';
import {
  deriveHandshakeSecrets, finishedMac, observeSecret, secretsFromMaster, Transcript, verifyFinished, wipe,
  wipeHandshakeSecrets, type HandshakeSecrets,
} from './keyschedule.js';
import { keyIdFromBytes, QKD_KEY_LEN, QKD_MAX_UPD, qkdMaster, qkdUpdFor } from './qkd.js';
import { CLIENT_SIG_LABEL, dsa, kem, type DsaLevel } from './pq.js';
import {
  PlaintextRecordReceiver, PlaintextRecordSender, RecordError, RecordReceiver, RecordSender,
  type RecordOpener, type RecordSealer,
} from './record.js';
import {
  AEAD_IDS, AEAD_NONE, ALERT, alertName, CH_FLAG_MUTUAL, HELLO_FLAG_PLAINTEXT, decodeAlert, decodeFinished, decodeServerHello, encodeAlert,
  encodeClientAuth, encodeClientHello, encodeClientKeyExchange, encodeFinished, encodeRecordFrame, FrameStream,
  isAeadName, isSuiteName, MSG, msgName, PREMASTER_LEN, RANDOM_LEN, serverShareLen, StreamError, SUITE_IDS,
  SUITE_INFO, supportsMutual, VERSION, WireError,
  type AeadName, type AlertName, type Frame, type SuiteName,
} from './wire.js';

/** Error codes as in firmware/PROTOCOL.md §5 (the subset the data plane can produce, plus E_ARGS). */
export type ClientErrCode =
  | 'E_ARGS' | 'E_NET' | 'E_TIMEOUT' | 'E_AUTH' | 'E_ALERT' | 'E_RECORD' | 'E_REPLAY' | 'E_CRYPTO'
  | 'E_QKD_KEY' | 'E_QKD_CONFIRM';

export interface ClientOptions {
  host: string;
  port: number;
  suite: SuiteName;
  aead: AeadName;
  /** Hex SHA-256 of the server's SPKI DER (suite `none`: checked for form only, there is no server key). */
  pin: string;
  /** M, records after the handshake (default 0). */
  records?: number;
  /** B, plaintext bytes per record, 1..16384 (default 256). */
  bytes?: number;
  /** K, records per key epoch, 0 = never refresh (default 0). */
  refresh?: number;
  /** Max wait for connect and for each server message (default 10000 ms, like the node). */
  timeoutMs?: number;
  /** Public-key crypto implementation (default 'noble', independent of the server's node/OpenSSL). */
  crypto?: 'noble' | 'node';
  /** Mutual authentication (HANDSHAKE.md §10.3; suites 4–7 only). */
  mutual?: boolean;
  /**
   * 32-byte ML-DSA seed of the client key for mutual authentication. Default: one key per level, generated
   * once per process (like the node's per-boot key).
   */
  clientSeed?: Uint8Array;
  /** TEST ONLY: misbehave in ClientAuth ('bad-client-sig': flip a signature bit). */
  clientFault?: 'bad-client-sig';
  /**
   * QKD suites (HANDSHAKE.md §11): the client's key store, key_ID (lower-case UUID) → 32-byte key, like the
   * node's. Keys the server names are removed from the map (used once) and wiped after the operation.
   */
  qkdKeys?: Map<string, Buffer>;
}

export interface ClientResult {
  ok: boolean;
  err?: ClientErrCode;
  msg?: string;
  /**
   * Step durations, µs: connect, keygen, dh (rsa2048: encap), verify, kdf, fin, hs, rec, total.
   * On failure only the steps reached are present.
   */
  t: Record<string, number>;
  /** First 16 hex digits of client_random. */
  cr: string;
  /** Bytes written/read per phase, framing included; the final close_notify (5 bytes) is in neither. */
  hsTx: number;
  hsRx: number;
  recTx: number;
  recRx: number;
  /** Records sent and whose echo checked. */
  recs: number;
  /** Mutual authentication: hex SHA-256 of the client's ML-DSA public key (the node's `ck`). */
  clientKey?: string;
  /** QKD suites: the key_IDs the server named (epoch 0 first), as the node reports `qkd_id` / `qkd_n`. */
  qkdKeyIds?: string[];
}

interface WipeLater {
  hs?: HandshakeSecrets;
  z?: Uint8Array;
  sk?: Uint8Array[];
  tx?: RecordSealer;
  rx?: RecordOpener;
  /** QKD suites: the keys taken from the store, epoch 0 first. */
  qkd?: Buffer[];
}

/** A failed operation; `alert` is what the client sends the server before closing (if anything). */
export class ClientError extends Error {
  constructor(readonly code: ClientErrCode, message: string, readonly alert?: AlertName) {
    super(message);
    this.name = 'ClientError';
  }
}

const SIG_LABEL = Buffer.from('QSHS1 server signature', 'latin1'); // 22 bytes, followed by one 0x00
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const MAX_B = 16384;

const now = (): bigint => process.hrtime.bigint();
const us = (a: bigint, b: bigint): number => Number(b - a) / 1000;

interface Counters {
  phase: 'hs' | 'rec';
  hsTx: number;
  hsRx: number;
  recTx: number;
  recRx: number;
}

function checkArgs(o: ClientOptions): string | undefined {
  if (!isSuiteName(o.suite)) return `suite '${String(o.suite)}'`;
  if (!isAeadName(o.aead)) return `aead '${String(o.aead)}'`;
  if (!/^[0-9a-fA-F]{64}$/.test(o.pin)) return 'pin (64 hex digits)';
  const m = o.records ?? 0;
  if (!Number.isInteger(m) || m < 0) return 'records';
  const b = o.bytes ?? 256;
  if (!Number.isInteger(b) || b < 1 || b > MAX_B) return 'bytes (1..16384)';
  const k = o.refresh ?? 0;
  if (!Number.isInteger(k) || k < 0 || k > 0xffffffff) return 'refresh';
  if (o.mutual && !supportsMutual(o.suite)) return `mutual (not defined for ${o.suite})`;
  if (o.clientSeed !== undefined && o.clientSeed.length !== 32) return 'clientSeed (32 bytes)';
  if (SUITE_INFO[o.suite].qkd) {
    if (!o.qkdKeys) return `qkdKeys (required by ${o.suite})`;
    if (qkdUpdFor(m, k) > QKD_MAX_UPD) return `records/refresh (at most ${QKD_MAX_UPD} fresh QKD keys per connection)`;
  }
  return undefined;
}

/** Run one operation (handshake + M echoed records + close_notify). Never throws; failures are in the result. */
export async function runClient(opts: ClientOptions): Promise<ClientResult> {
  const res: ClientResult = { ok: false, t: {}, cr: '', hsTx: 0, hsRx: 0, recTx: 0, recRx: 0, recs: 0 };
  const bad = checkArgs(opts);
  if (bad) return { ...res, err: 'E_ARGS', msg: `invalid ${bad}` };

  const cnt: Counters = { phase: 'hs', hsTx: 0, hsRx: 0, recTx: 0, recRx: 0 };
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const t0 = now();
  let socket: Socket | undefined;
  const wipeLater: WipeLater = {};
  try {
    socket = await openSocket(opts.host, opts.port, timeoutMs);
    res.t.connect = us(t0, now());
    if (SUITE_INFO[opts.suite].plaintext) await operatePlaintext(opts, socket, res, cnt, t0, timeoutMs, wipeLater);
    else await operate(opts, socket, res, cnt, t0, timeoutMs, wipeLater);
    res.ok = true;
  } catch (e) {
    const ce = toClientError(e);
    res.err = ce.code;
    res.msg = ce.message;
    if (socket && ce.alert && socket.writable) write(socket, cnt, encodeAlert(ALERT[ce.alert], ce.message));
  } finally {
    wipeHandshakeSecrets(wipeLater.hs);
    wipe(wipeLater.z, ...(wipeLater.sk ?? []), ...(wipeLater.qkd ?? []));
    wipeLater.tx?.destroy();
    wipeLater.rx?.destroy();
    if (socket) await closeSocket(socket);
  }
  res.hsTx = cnt.hsTx;
  res.hsRx = cnt.hsRx;
  res.recTx = cnt.recTx;
  res.recRx = cnt.recRx;
  return res;
}

function toClientError(e: unknown): ClientError {
  if (e instanceof ClientError) return e;
  if (e instanceof RecordError) {
    switch (e.code) {
      case 'replay': return new ClientError('E_REPLAY', e.message, 'replay');
      case 'bad_record_mac': return new ClientError('E_RECORD', e.message, 'bad_record_mac');
      case 'bad_epoch': return new ClientError('E_RECORD', e.message, 'bad_epoch');
      case 'decode_error': return new ClientError('E_RECORD', e.message, 'decode_error');
      default: return new ClientError('E_CRYPTO', e.message, 'internal_error');
    }
  }
  if (e instanceof WireError) return new ClientError('E_NET', `${e.alert}: ${e.message}`, e.alert);
  if (e instanceof StreamError) {
    return e.kind === 'timeout' ? new ClientError('E_TIMEOUT', e.message) : new ClientError('E_NET', e.message);
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && /^E[A-Z]+$/.test(err.code) && !err.code.startsWith('ERR_')) {
    return new ClientError('E_NET', err.code);
  }
  return new ClientError('E_CRYPTO', err instanceof Error ? `${err.name}: ${err.message}` : 'crypto failure', 'internal_error');
}

function openSocket(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ClientError('E_TIMEOUT', `connect to ${host}:${port} timed out`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', onErr);
      resolve(s);
    });
    const onErr = (e: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      reject(new ClientError('E_NET', `connect: ${e.code ?? e.message}`));
    };
    s.once('error', onErr);
  });
}

function closeSocket(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve();
    s.once('close', () => resolve());
    s.on('error', () => undefined);
    s.end(() => s.destroy());
  });
}

function write(s: Socket, cnt: Counters, data: Buffer): void {
  if (cnt.phase === 'hs') cnt.hsTx += data.length;
  else cnt.recTx += data.length;
  s.write(data);
}

async function readFrame(frames: FrameStream, cnt: Counters, timeoutMs: number, want: number): Promise<Frame> {
  const f = await frames.read(timeoutMs);
  if (cnt.phase === 'hs') cnt.hsRx += f.raw.length;
  else cnt.recRx += f.raw.length;
  if (f.type === MSG.Alert) {
    const a = decodeAlert(f.body);
    const name = alertName(a.code);
    throw new ClientError('E_ALERT', a.reason ? `server alert ${name}: ${a.reason}` : `server alert ${name}`);
  }
  if (f.type !== want) {
    throw new ClientError('E_NET', `decode_error: expected ${msgName(want)}, got ${msgName(f.type)}`, 'decode_error');
  }
  return f;
}

// ---------------------------------------------------------------------------------------------------------
// Suite-specific key exchange (client side)

type Timer = <T>(step: string, fn: () => T) => T;

interface KeyExchange {
  /** Client share for the ClientHello. */
  share: Buffer;
  /**
   * Given the verified ServerHello: Z and, for rsa2048, the ClientKeyExchange ciphertext. Times its own steps
   * (`dh`, `encap`, `decap`) with `time`.
   */
  finish(serverShare: Buffer, serverKey: KeyObject | undefined, time: Timer): { z: Buffer; ct?: Buffer };
  /** Ephemeral secrets to wipe when the operation ends. */
  secrets(): Uint8Array[];
}

const badShare = (): ClientError => new ClientError('E_CRYPTO', 'invalid server key share', 'handshake_failure');

/** X25519 part (suite x25519 and the hybrid): share and a raw shared-secret function. */
function x25519Kex(impl: 'noble' | 'node'): { share: Buffer; derive(peer: Buffer): Buffer; secret?: Uint8Array } {
  if (impl === 'noble') {
    const sk = x25519.utils.randomSecretKey();
    return {
      share: Buffer.from(x25519.getPublicKey(sk)),
      derive: (peer) => {
        let z: Buffer;
        try {
          z = Buffer.from(x25519.getSharedSecret(sk, peer));
        } catch {
          throw badShare();
        }
        if (z.every((b) => b === 0)) throw new ClientError('E_CRYPTO', 'all-zero shared secret', 'handshake_failure');
        return z;
      },
      secret: sk,
    };
  }
  const kp = x25519Ephemeral();
  return {
    share: kp.pub,
    derive: (peer) => {
      let z: Buffer;
      try {
        z = kp.derive(peer);
      } catch {
        throw badShare();
      }
      if (z.every((b) => b === 0)) throw new ClientError('E_CRYPTO', 'all-zero shared secret', 'handshake_failure');
      return z;
    },
  };
}

function keyExchange(suite: SuiteName, impl: 'noble' | 'node'): KeyExchange {
  const info = SUITE_INFO[suite];
  if (info.kex === 'rsa') {
    const premaster = randomBytes(PREMASTER_LEN);
    return {
      share: Buffer.alloc(0),
      finish: (_share, key, time) => time('encap', () => {
        const ct = publicEncrypt({ key: key!, padding: C.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, premaster);
        return { z: premaster, ct };
      }),
      secrets: () => [premaster],
    };
  }
  if (info.kex === 'p256') {
    if (impl === 'noble') {
      const sk = p256.utils.randomSecretKey();
      return {
        share: Buffer.from(p256.getPublicKey(sk, false)),
        finish: (peer, _key, time) => time('dh', () => {
          let shared: Uint8Array;
          try {
            shared = p256.getSharedSecret(sk, peer, true);
          } catch {
            throw badShare();
          }
          const z = Buffer.from(shared.subarray(1, 33));
          wipe(shared);
          return { z };
        }),
        secrets: () => [sk],
      };
    }
    const ecdh = createECDH('prime256v1');
    return {
      share: ecdh.generateKeys(),
      finish: (peer, _key, time) => time('dh', () => {
        try {
          return { z: ecdh.computeSecret(peer) };
        } catch {
          throw badShare();
        }
      }),
      secrets: () => [],
    };
  }
  if (info.kex === 'x25519') {
    const x = x25519Kex(impl);
    return {
      share: x.share,
      finish: (peer, _key, time) => time('dh', () => ({ z: x.derive(peer) })),
      secrets: () => (x.secret ? [x.secret] : []),
    };
  }
  // ML-KEM (§10.1): ek is the share; the hybrid appends an X25519 public key (ML-KEM first).
  const k = kem(info.kem!);
  const { ek, dk } = k.keygen();
  const x = info.kex === 'x25519mlkem' ? x25519Kex(impl) : undefined;
  return {
    share: x ? Buffer.concat([ek, x.share]) : Buffer.from(ek),
    finish: (peer, _key, time) => {
      const ss = time('decap', () => k.decaps(peer.subarray(0, k.ctLen), dk));
      wipe(dk);
      if (!x) {
        const z = Buffer.from(ss);
        wipe(ss);
        return { z };
      }
      let ssX: Buffer;
      try {
        ssX = time('dh', () => x.derive(peer.subarray(k.ctLen)));
      } catch (e) {
        wipe(ss);
        throw e;
      }
      const z = Buffer.concat([ss, ssX]);
      wipe(ss, ssX);
      return { z };
    },
    secrets: () => [dk, ...(x?.secret ? [x.secret] : [])],
  };
}

const P256_NAME = 'P-256 SPKI';

/** Check the pin (before anything else, §3), the share length, the certificate and the signature. Returns the RSA key for rsa2048. */
function authenticate(
  suite: SuiteName, impl: 'noble' | 'node', pin: string, chFrame: Buffer,
  sh: { serverRandom: Buffer; share: Buffer; cert: Buffer; sig: Buffer },
): KeyObject | undefined {
  const got = createHash('sha256').update(sh.cert).digest();
  const want = Buffer.from(pin, 'hex');
  if (!timingSafeEqual(got, want)) throw new ClientError('E_AUTH', 'server key does not match the pin', 'handshake_failure');
  const sl = serverShareLen(suite);
  if (sh.share.length !== sl) {
    throw new ClientError('E_NET', `decode_error: ${suite} server share must be ${sl} bytes, got ${sh.share.length}`, 'decode_error');
  }
  const info = SUITE_INFO[suite];

  if (info.auth === 'rsa') {
    if (sh.sig.length !== 0) throw new ClientError('E_NET', 'decode_error: rsa2048 ServerHello carries a signature', 'decode_error');
    let key: KeyObject;
    try {
      key = createPublicKey({ key: sh.cert, format: 'der', type: 'spki' });
    } catch {
      throw new ClientError('E_AUTH', 'server certificate is not an SPKI public key', 'handshake_failure');
    }
    const d = key.asymmetricKeyDetails;
    if (key.asymmetricKeyType !== 'rsa' || d?.modulusLength !== 2048 || d.publicExponent !== 65537n) {
      throw new ClientError('E_AUTH', 'server key is not RSA-2048 with e = 65537', 'handshake_failure');
    }
    return key;
  }

  const signed = Buffer.concat([
    SIG_LABEL, Buffer.of(0), createHash('sha256').update(chFrame).digest(), sh.serverRandom, sh.share,
  ]);
  let ok: boolean;
  if (info.auth === 'mldsa') {
    const d = dsa(info.dsa!);
    if (sh.cert.length !== d.pkLen) {
      throw new ClientError('E_AUTH', `server key is not an ML-DSA-${d.level} public key`, 'handshake_failure');
    }
    ok = d.verify(sh.sig, signed, sh.cert);
  } else {
    if (sh.cert.length !== 91 || !sh.cert.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX)) {
      throw new ClientError('E_AUTH', `server key is not a ${P256_NAME}`, 'handshake_failure');
    }
    try {
      if (impl === 'noble') {
        const point = sh.cert.subarray(P256_SPKI_PREFIX.length);
        ok = p256.verify(sh.sig, signed, point, { format: 'der', prehash: true, lowS: false });
      } else {
        const key = createPublicKey({ key: sh.cert, format: 'der', type: 'spki' });
        ok = nodeVerify('sha256', signed, { key, dsaEncoding: 'der' }, sh.sig);
      }
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new ClientError('E_AUTH', 'server signature does not verify', 'handshake_failure');
  return undefined;
}

/** The client's ML-DSA keys for mutual authentication: one per level and process unless a seed is given. */
const clientKeys = new Map<DsaLevel, { pk: Uint8Array; sk: Uint8Array }>();
function clientKey(level: DsaLevel, seed: Uint8Array | undefined): { pk: Uint8Array; sk: Uint8Array } {
  if (seed) return dsa(level).keygen(seed);
  let k = clientKeys.get(level);
  if (!k) {
    const s = randomBytes(32);
    k = dsa(level).keygen(s);
    wipe(s);
    clientKeys.set(level, k);
  }
  return k;
}

async function operate(
  opts: ClientOptions, socket: Socket, res: ClientResult, cnt: Counters, t0: bigint, timeoutMs: number,
  w: WipeLater,
): Promise<void> {
  const { suite, aead } = opts;
  const impl = opts.crypto ?? 'noble';
  const M = opts.records ?? 0;
  const B = opts.bytes ?? 256;
  const K = opts.refresh ?? 0;
  const mutual = opts.mutual === true;
  const frames = new FrameStream(socket);
  const time: Timer = (step, fn) => {
    const ts = now();
    try {
      return fn();
    } finally {
      res.t[step] = (res.t[step] ?? 0) + us(ts, now());
    }
  };

  // Client key for mutual authentication (outside every step, like the node's per-boot key)
  const ck = mutual ? clientKey(SUITE_INFO[suite].clientDsa!, opts.clientSeed) : undefined;
  if (ck) res.clientKey = createHash('sha256').update(ck.pk).digest('hex');

  // keygen
  const kx = time('keygen', () => keyExchange(suite, impl));
  w.sk = kx.secrets();

  // ClientHello
  const clientRandom = randomBytes(RANDOM_LEN);
  res.cr = clientRandom.subarray(0, 8).toString('hex');
  const qkdSuite = SUITE_INFO[suite].qkd === true;
  const qkdUpd = qkdSuite ? qkdUpdFor(M, K) : 0;
  const chFrame = encodeClientHello({
    version: VERSION, suite: SUITE_IDS[suite], aead: AEAD_IDS[aead], refresh: K, clientRandom, share: kx.share,
    flags: mutual ? CH_FLAG_MUTUAL : 0, ...(qkdSuite ? { qkdUpd } : {}),
  });
  write(socket, cnt, chFrame);

  // ServerHello
  const shF = await readFrame(frames, cnt, timeoutMs, MSG.ServerHello);
  const sh = decodeServerHello(shF.body, qkdSuite);
  if (qkdSuite && sh.qkdIds!.length !== 16 * (1 + qkdUpd)) {
    throw new ClientError('E_NET', `decode_error: ServerHello carries ${sh.qkdIds!.length} bytes of key_IDs, expected ${16 * (1 + qkdUpd)}`, 'decode_error');
  }

  // verify (pin + signature)
  const rsaKey = time('verify', () => authenticate(suite, impl, opts.pin, chFrame, sh));

  // dh / encap / decap
  const { z, ct } = kx.finish(sh.share, rsaKey, time);
  w.z = z;
  observeSecret('Z(client)', z);

  const transcript = new Transcript().add(chFrame).add(shF.raw);
  const ckeFrame = ct ? encodeClientKeyExchange(ct) : undefined;
  if (ckeFrame) transcript.add(ckeFrame);

  // sign (mutual): ClientAuth over the transcript hash up to the ServerHello
  let caFrame: Buffer | undefined;
  if (ck) {
    caFrame = time('sign', () => {
      const d = dsa(SUITE_INFO[suite].clientDsa!);
      const sig = d.sign(Buffer.concat([CLIENT_SIG_LABEL, Buffer.of(0), transcript.snapshot()]), ck.sk);
      if (opts.clientFault === 'bad-client-sig') sig[0]! ^= 0x01;
      return encodeClientAuth({ pk: ck.pk, sig });
    });
    transcript.add(caFrame);
  }

  // qkd (§11): take the named keys from the store (each once), before any key is derived
  let keyIds: string[] = [];
  if (qkdSuite) {
    time('qkd', () => {
      const store = opts.qkdKeys!;
      keyIds = [];
      for (let i = 0; i < sh.qkdIds!.length; i += 16) keyIds.push(keyIdFromBytes(sh.qkdIds!.subarray(i, i + 16)));
      res.qkdKeyIds = keyIds;
      const keys: Buffer[] = [];
      w.qkd = keys;
      let missing: string | undefined;
      for (const [e, id] of keyIds.entries()) {
        const k = store.get(id);
        if (!k || k.length !== QKD_KEY_LEN) {
          missing ??= `unknown QKD key_ID ${id} (epoch ${e})`;
          continue;
        }
        store.delete(id);
        keys.push(k);
      }
      if (missing) throw new ClientError('E_QKD_KEY', missing, 'handshake_failure');
    });
  }

  // kdf (QKD suites: TH here, the CatKDF combination in `qkd`)
  let t = now();
  const th = transcript.snapshot();
  if (qkdSuite) {
    res.t.kdf = us(t, now());
    const master = time('qkd', () => qkdMaster({
      qkdKey: w.qkd![0]!, z, th, keyId0: sh.qkdIds!.subarray(0, 16), clientRandom, serverRandom: shF.body.subarray(0, RANDOM_LEN),
    }));
    wipe(w.qkd![0]!);
    t = now();
    w.hs = secretsFromMaster(master);
    res.t.kdf += us(t, now());
  } else {
    w.hs = deriveHandshakeSecrets(z, clientRandom, shF.body.subarray(0, RANDOM_LEN), th);
    res.t.kdf = us(t, now());
  }
  wipe(z, ...w.sk);

  // client Finished (sent together with the ClientKeyExchange / ClientAuth in one write)
  t = now();
  const cmac = finishedMac(w.hs.cFin, th);
  wipe(w.hs.cFin);
  const finFrame = encodeFinished(cmac);
  const th2 = transcript.add(finFrame).snapshot();
  let fin = us(t, now());
  write(socket, cnt, Buffer.concat([...(ckeFrame ? [ckeFrame] : []), ...(caFrame ? [caFrame] : []), finFrame]));

  // server Finished (QKD suites: key confirmation, §11.5)
  const confirm = (why: string): ClientError =>
    new ClientError('E_QKD_CONFIRM', `key confirmation failed (QKD key ${keyIds[0]}): ${why}`, 'handshake_failure');
  let sfF: Frame;
  try {
    sfF = await readFrame(frames, cnt, timeoutMs, MSG.Finished);
  } catch (e) {
    if (qkdSuite && e instanceof ClientError && e.code === 'E_ALERT' && /handshake_failure/.test(e.message)) {
      throw new ClientError('E_QKD_CONFIRM', `key confirmation failed (QKD key ${keyIds[0]}): ${e.message}`);
    }
    throw e;
  }
  t = now();
  const smac = decodeFinished(sfF.body);
  const good = verifyFinished(w.hs.sFin, th2, smac);
  wipe(w.hs.sFin);
  fin += us(t, now());
  res.t.fin = fin;
  if (!good) {
    if (qkdSuite) throw confirm('server Finished does not verify');
    throw new ClientError('E_AUTH', 'server Finished does not verify', 'handshake_failure');
  }
  const tHs = now();
  res.t.hs = us(t0, tHs);

  // record phase
  cnt.phase = 'rec';
  const epochKeys = qkdSuite ? w.qkd!.slice(1) : undefined;
  w.tx = new RecordSender(aead, w.hs.c2s, K, epochKeys);
  w.rx = new RecordReceiver(aead, w.hs.s2c, K, epochKeys);
  w.hs = undefined; // the record objects own the traffic secrets now
  await recordPhase(socket, frames, res, cnt, timeoutMs, w.tx, w.rx, M, B, false);
  const tEnd = now();
  res.t.rec = us(tHs, tEnd);
  res.t.total = us(t0, tEnd);
}

/** M records of B random bytes, each echo checked; then close_notify. */
async function recordPhase(
  socket: Socket, frames: FrameStream, res: ClientResult, cnt: Counters, timeoutMs: number,
  tx: RecordSealer, rx: RecordOpener, M: number, B: number, plaintextSuite: boolean,
): Promise<void> {
  for (let i = 0; i < M; i++) {
    const pt = randomBytes(B);
    write(socket, cnt, encodeRecordFrame(tx.seal(pt)));
    const f = await readFrame(frames, cnt, timeoutMs, MSG.Record);
    const { seq, plaintext } = rx.open(f.body);
    if (!plaintext.equals(pt)) {
      // §12: without a MAC the comparison is the only integrity check, so a mismatch is answered like a bad tag
      if (plaintextSuite) {
        throw new ClientError('E_RECORD', `echo of record ${i} (seq ${seq}) differs from what was sent (plaintext, no MAC)`, 'bad_record_mac');
      }
      throw new ClientError('E_RECORD', `echo of record ${i} differs from what was sent`, 'decode_error');
    }
    res.recs++;
  }
  // close_notify is not counted in rec_tx (neither handshake nor record phase), like the C node does.
  socket.write(encodeAlert(ALERT.close_notify));
}

/**
 * Suite `none` (§12): ClientHello (aead 0, plaintext flag) → ServerHello (empty share, cert and sig, plaintext
 * flag) → the record phase in the clear. No key exchange, authentication or key schedule, hence no steps but
 * connect, hs, rec and total; `aead` and `pin` are not used.
 */
async function operatePlaintext(
  opts: ClientOptions, socket: Socket, res: ClientResult, cnt: Counters, t0: bigint, timeoutMs: number,
  w: WipeLater,
): Promise<void> {
  const M = opts.records ?? 0;
  const B = opts.bytes ?? 256;
  const K = opts.refresh ?? 0;
  const frames = new FrameStream(socket);
  const clientRandom = randomBytes(RANDOM_LEN);
  res.cr = clientRandom.subarray(0, 8).toString('hex');
  write(socket, cnt, encodeClientHello({
    version: VERSION, suite: SUITE_IDS[opts.suite], aead: AEAD_NONE, refresh: K, clientRandom, share: Buffer.alloc(0),
    flags: HELLO_FLAG_PLAINTEXT,
  }));
  const shF = await readFrame(frames, cnt, timeoutMs, MSG.ServerHello);
  const sh = decodeServerHello(shF.body, false, true);
  if (sh.share.length || sh.cert.length || sh.sig.length) {
    throw new ClientError('E_NET', 'decode_error: none ServerHello carries a key share, key or signature', 'decode_error');
  }
  if (sh.flags !== HELLO_FLAG_PLAINTEXT) {
    throw new ClientError('E_NET', `decode_error: ServerHello does not confirm plaintext (flags 0x${sh.flags!.toString(16).padStart(2, '0')})`, 'decode_error');
  }
  const tHs = now();
  res.t.hs = us(t0, tHs);
  cnt.phase = 'rec';
  w.tx = new PlaintextRecordSender(K);
  w.rx = new PlaintextRecordReceiver(K);
  await recordPhase(socket, frames, res, cnt, timeoutMs, w.tx, w.rx, M, B, true);
  const tEnd = now();
  res.t.rec = us(tHs, tEnd);
  res.t.total = us(t0, tEnd);
}
