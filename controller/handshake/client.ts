// QSHS/1 reference client (the node's side of firmware/HANDSHAKE.md), in TypeScript. Used by tests, for
// loopback benchmarks, and as a readable reference for the C firmware. Reports what the node reports in its
// `op` event: per-step timings (µs), byte counts, `cr`, and an E_* error code on failure.
//
// Independence from server.ts: the client builds and checks its own messages (signature input, transcript,
// Finished), and by default does its public-key crypto with @noble/curves (P-256 ECDH + ECDSA verification,
// X25519) while the server uses node/OpenSSL; `crypto: 'node'` switches the client to node crypto for speed.
// RSA-OAEP encryption always uses node crypto (noble has no RSA). Shared with the server: wire framing,
// key schedule, record layer.

import {
  constants as C, createECDH, createHash, createPublicKey, diffieHellman, generateKeyPairSync, publicEncrypt,
  randomBytes, timingSafeEqual, verify as nodeVerify, type KeyObject,
} from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { p256 } from '@noble/curves/nist.js';
import { x25519 } from '@noble/curves/ed25519.js';
import {
  deriveHandshakeSecrets, finishedMac, observeSecret, Transcript, verifyFinished, wipe, wipeHandshakeSecrets,
  type HandshakeSecrets,
} from './keyschedule.js';
import { RecordError, RecordReceiver, RecordSender } from './record.js';
import {
  AEAD_IDS, ALERT, alertName, decodeAlert, decodeFinished, decodeServerHello, encodeAlert, encodeClientHello,
  encodeClientKeyExchange, encodeFinished, encodeRecordFrame, FrameStream, isAeadName, isSuiteName, MSG, msgName,
  PREMASTER_LEN, RANDOM_LEN, shareLen, StreamError, SUITE_IDS, VERSION, WireError,
  type AeadName, type AlertName, type Frame, type SuiteName,
} from './wire.js';

/** Error codes as in firmware/PROTOCOL.md §5 (the subset the data plane can produce, plus E_ARGS). */
export type ClientErrCode = 'E_ARGS' | 'E_NET' | 'E_TIMEOUT' | 'E_AUTH' | 'E_ALERT' | 'E_RECORD' | 'E_REPLAY' | 'E_CRYPTO';

export interface ClientOptions {
  host: string;
  port: number;
  suite: SuiteName;
  aead: AeadName;
  /** Hex SHA-256 of the server's SPKI DER. */
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
  const wipeLater: { hs?: HandshakeSecrets; z?: Uint8Array; sk?: Uint8Array; tx?: RecordSender; rx?: RecordReceiver } = {};
  try {
    socket = await openSocket(opts.host, opts.port, timeoutMs);
    res.t.connect = us(t0, now());
    await operate(opts, socket, res, cnt, t0, timeoutMs, wipeLater);
    res.ok = true;
  } catch (e) {
    const ce = toClientError(e);
    res.err = ce.code;
    res.msg = ce.message;
    if (socket && ce.alert && socket.writable) write(socket, cnt, encodeAlert(ALERT[ce.alert], ce.message));
  } finally {
    wipeHandshakeSecrets(wipeLater.hs);
    wipe(wipeLater.z, wipeLater.sk);
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

interface KeyExchange {
  /** Client share for the ClientHello. */
  share: Buffer;
  /** Given the verified ServerHello: Z and, for rsa2048, the ClientKeyExchange ciphertext. */
  finish(serverShare: Buffer, serverKey: KeyObject | undefined): { z: Buffer; ct?: Buffer };
  secret(): Uint8Array | undefined;
}

function keyExchange(suite: SuiteName, impl: 'noble' | 'node'): KeyExchange {
  if (suite === 'rsa2048') {
    const premaster = randomBytes(PREMASTER_LEN);
    return {
      share: Buffer.alloc(0),
      finish: (_share, key) => {
        const ct = publicEncrypt({ key: key!, padding: C.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, premaster);
        return { z: premaster, ct };
      },
      secret: () => premaster,
    };
  }
  if (suite === 'ecdhe-p256-ecdsa') {
    if (impl === 'noble') {
      const sk = p256.utils.randomSecretKey();
      return {
        share: Buffer.from(p256.getPublicKey(sk, false)),
        finish: (peer) => {
          let shared: Uint8Array;
          try {
            shared = p256.getSharedSecret(sk, peer, true);
          } catch {
            throw new ClientError('E_CRYPTO', 'invalid server key share', 'handshake_failure');
          }
          const z = Buffer.from(shared.subarray(1, 33));
          wipe(shared);
          return { z };
        },
        secret: () => sk,
      };
    }
    const ecdh = createECDH('prime256v1');
    return {
      share: ecdh.generateKeys(),
      finish: (peer) => {
        try {
          return { z: ecdh.computeSecret(peer) };
        } catch {
          throw new ClientError('E_CRYPTO', 'invalid server key share', 'handshake_failure');
        }
      },
      secret: () => undefined,
    };
  }
  // x25519
  if (impl === 'noble') {
    const sk = x25519.utils.randomSecretKey();
    return {
      share: Buffer.from(x25519.getPublicKey(sk)),
      finish: (peer) => {
        let z: Buffer;
        try {
          z = Buffer.from(x25519.getSharedSecret(sk, peer));
        } catch {
          throw new ClientError('E_CRYPTO', 'invalid server key share', 'handshake_failure');
        }
        if (z.every((b) => b === 0)) throw new ClientError('E_CRYPTO', 'all-zero shared secret', 'handshake_failure');
        return { z };
      },
      secret: () => sk,
    };
  }
  const kp = generateKeyPairSync('x25519');
  return {
    share: Buffer.from(kp.publicKey.export({ format: 'jwk' }).x!, 'base64url'),
    finish: (peer) => {
      try {
        const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peer.toString('base64url') }, format: 'jwk' });
        return { z: diffieHellman({ privateKey: kp.privateKey, publicKey: pub }) };
      } catch {
        throw new ClientError('E_CRYPTO', 'invalid server key share', 'handshake_failure');
      }
    },
    secret: () => undefined,
  };
}

/** Check the pin (before anything else, §3), the share length, the certificate and the signature. Returns the RSA key for rsa2048. */
function authenticate(
  suite: SuiteName, impl: 'noble' | 'node', pin: string, chFrame: Buffer,
  sh: { serverRandom: Buffer; share: Buffer; cert: Buffer; sig: Buffer },
): KeyObject | undefined {
  const got = createHash('sha256').update(sh.cert).digest();
  const want = Buffer.from(pin, 'hex');
  if (!timingSafeEqual(got, want)) throw new ClientError('E_AUTH', 'server key does not match the pin', 'handshake_failure');
  const sl = shareLen(suite);
  if (sh.share.length !== sl) {
    throw new ClientError('E_NET', `decode_error: ${suite} server share must be ${sl} bytes, got ${sh.share.length}`, 'decode_error');
  }

  if (suite === 'rsa2048') {
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

  if (sh.cert.length !== 91 || !sh.cert.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX)) {
    throw new ClientError('E_AUTH', 'server key is not a P-256 SPKI', 'handshake_failure');
  }
  const signed = Buffer.concat([
    SIG_LABEL, Buffer.of(0), createHash('sha256').update(chFrame).digest(), sh.serverRandom, sh.share,
  ]);
  let ok: boolean;
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
  if (!ok) throw new ClientError('E_AUTH', 'server signature does not verify', 'handshake_failure');
  return undefined;
}

async function operate(
  opts: ClientOptions, socket: Socket, res: ClientResult, cnt: Counters, t0: bigint, timeoutMs: number,
  w: { hs?: HandshakeSecrets; z?: Uint8Array; sk?: Uint8Array; tx?: RecordSender; rx?: RecordReceiver },
): Promise<void> {
  const { suite, aead } = opts;
  const impl = opts.crypto ?? 'noble';
  const M = opts.records ?? 0;
  const B = opts.bytes ?? 256;
  const K = opts.refresh ?? 0;
  const frames = new FrameStream(socket);

  // keygen
  let t = now();
  const kx = keyExchange(suite, impl);
  w.sk = kx.secret();
  res.t.keygen = us(t, now());

  // ClientHello
  const clientRandom = randomBytes(RANDOM_LEN);
  res.cr = clientRandom.subarray(0, 8).toString('hex');
  const chFrame = encodeClientHello({
    version: VERSION, suite: SUITE_IDS[suite], aead: AEAD_IDS[aead], refresh: K, clientRandom, share: kx.share,
  });
  write(socket, cnt, chFrame);

  // ServerHello
  const shF = await readFrame(frames, cnt, timeoutMs, MSG.ServerHello);
  const sh = decodeServerHello(shF.body);

  // verify (pin + signature)
  t = now();
  const rsaKey = authenticate(suite, impl, opts.pin, chFrame, sh);
  res.t.verify = us(t, now());

  // dh / encap
  t = now();
  const { z, ct } = kx.finish(sh.share, rsaKey);
  w.z = z;
  observeSecret('Z(client)', z);
  res.t[suite === 'rsa2048' ? 'encap' : 'dh'] = us(t, now());

  const transcript = new Transcript().add(chFrame).add(shF.raw);
  const ckeFrame = ct ? encodeClientKeyExchange(ct) : undefined;
  if (ckeFrame) transcript.add(ckeFrame);

  // kdf
  t = now();
  const th = transcript.snapshot();
  w.hs = deriveHandshakeSecrets(z, clientRandom, shF.body.subarray(0, RANDOM_LEN), th);
  wipe(z, w.sk);
  res.t.kdf = us(t, now());

  // client Finished (sent together with the ClientKeyExchange in one write)
  t = now();
  const cmac = finishedMac(w.hs.cFin, th);
  wipe(w.hs.cFin);
  const finFrame = encodeFinished(cmac);
  const th2 = transcript.add(finFrame).snapshot();
  let fin = us(t, now());
  write(socket, cnt, ckeFrame ? Buffer.concat([ckeFrame, finFrame]) : finFrame);

  // server Finished
  const sfF = await readFrame(frames, cnt, timeoutMs, MSG.Finished);
  t = now();
  const smac = decodeFinished(sfF.body);
  const good = verifyFinished(w.hs.sFin, th2, smac);
  wipe(w.hs.sFin);
  fin += us(t, now());
  res.t.fin = fin;
  if (!good) throw new ClientError('E_AUTH', 'server Finished does not verify', 'handshake_failure');
  const tHs = now();
  res.t.hs = us(t0, tHs);

  // record phase
  cnt.phase = 'rec';
  w.tx = new RecordSender(aead, w.hs.c2s, K);
  w.rx = new RecordReceiver(aead, w.hs.s2c, K);
  w.hs = undefined; // the record objects own the traffic secrets now
  for (let i = 0; i < M; i++) {
    const pt = randomBytes(B);
    write(socket, cnt, encodeRecordFrame(w.tx.seal(pt)));
    const f = await readFrame(frames, cnt, timeoutMs, MSG.Record);
    const { plaintext } = w.rx.open(f.body);
    if (!plaintext.equals(pt)) throw new ClientError('E_RECORD', `echo of record ${i} differs from what was sent`, 'decode_error');
    res.recs++;
  }
  // close_notify is not counted in rec_tx (neither handshake nor record phase), like the C node does.
  socket.write(encodeAlert(ALERT.close_notify));
  const tEnd = now();
  res.t.rec = us(tHs, tEnd);
  res.t.total = us(t0, tEnd);
}
