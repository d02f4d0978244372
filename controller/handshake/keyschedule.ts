// QSHS/1 key schedule (firmware/HANDSHAKE.md §5): HKDF-SHA-256 (RFC 5869), transcript hashes, Finished MACs,
// traffic secrets, per-epoch key/iv and the ratchet. Every secret this module hands out is a Buffer the caller
// owns and must wipe (wipe()) when done; intermediates (PRK, master) are wiped here.
// The test tap sees live buffers: a test copies the value when tapped and can later check the buffer is zero.

import { createHash, createHmac, timingSafeEqual, type Hash } from 'node:crypto';

export const HASH_LEN = 32;
export const KEY_LEN = 32;
export const IV_LEN = 12;

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');
export const LABEL = {
  master: ascii('QSHS1 master'),
  cFin: ascii('QSHS1 c fin'),
  sFin: ascii('QSHS1 s fin'),
  c2s: ascii('QSHS1 c2s'),
  s2c: ascii('QSHS1 s2c'),
  key: ascii('QSHS1 key'),
  iv: ascii('QSHS1 iv'),
  upd: ascii('QSHS1 upd'),
} as const;

// ---------------------------------------------------------------------------------------------------------
// Test hook: lets tests see every secret as it is derived (to check that none leaks into events or errors,
// and that each is wiped afterwards). The tap receives the live buffer, not a copy. Never set in production.

export type SecretTap = (name: string, secret: Buffer) => void;
let tap: SecretTap | undefined;
/** TEST ONLY. Install (or remove with undefined) an observer for every derived secret. */
export function setSecretTap(fn: SecretTap | undefined): void {
  tap = fn;
}
/** Report a secret to the test tap (used by modules that create secrets themselves, e.g. Z). */
export function observeSecret(name: string, secret: Buffer): void {
  if (tap) tap(name, secret);
}

/** Overwrite buffers with zeros. Accepts undefined for convenience in cleanup paths. */
export function wipe(...bufs: (Uint8Array | undefined | null)[]): void {
  for (const b of bufs) if (b) b.fill(0);
}

// ---------------------------------------------------------------------------------------------------------
// HMAC / HKDF

export function hmacSha256(key: Uint8Array, ...data: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const d of data) h.update(d);
  return h.digest();
}

/** HKDF-Extract(salt, IKM) = HMAC-SHA-256(salt, IKM). */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return hmacSha256(salt, ikm);
}

/** HKDF-Expand(PRK, info, L), RFC 5869 §2.3. `info` may be given in pieces (concatenated). */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array | Uint8Array[], length: number): Buffer {
  if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_LEN) throw new RangeError('HKDF-Expand: bad length');
  const parts = Array.isArray(info) ? info : [info];
  const out = Buffer.alloc(length);
  let prev: Buffer | undefined;
  let off = 0;
  for (let i = 1; off < length; i++) {
    const h = createHmac('sha256', prk);
    if (prev) h.update(prev);
    for (const p of parts) h.update(p);
    h.update(Uint8Array.of(i));
    const t = h.digest();
    wipe(prev);
    prev = t;
    const k = Math.min(HASH_LEN, length - off);
    t.copy(out, off, 0, k);
    off += k;
  }
  wipe(prev);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Transcript

/** Running SHA-256 over whole frames (headers included). snapshot() does not disturb the running hash. */
export class Transcript {
  private readonly h: Hash = createHash('sha256');
  add(frame: Uint8Array): this {
    this.h.update(frame);
    return this;
  }
  snapshot(): Buffer {
    return this.h.copy().digest();
  }
}

export function sha256(...data: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const d of data) h.update(d);
  return h.digest();
}

// ---------------------------------------------------------------------------------------------------------
// Handshake secrets

export interface HandshakeSecrets {
  cFin: Buffer;
  sFin: Buffer;
  /** Traffic secret of epoch 0, client → server. */
  c2s: Buffer;
  /** Traffic secret of epoch 0, server → client. */
  s2c: Buffer;
}

/**
 * PRK = HKDF-Extract(client_random | server_random, Z); master = HKDF-Expand(PRK, "QSHS1 master" | TH, 32);
 * then both finished keys and both epoch-0 traffic secrets. PRK and master are wiped before returning.
 * Z stays owned by the caller (wipe it right after this call).
 */
export function deriveHandshakeSecrets(
  z: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array, th: Uint8Array,
): HandshakeSecrets {
  const salt = Buffer.concat([clientRandom, serverRandom]);
  const prk = hkdfExtract(salt, z);
  const master = hkdfExpand(prk, [LABEL.master, th], HASH_LEN);
  if (tap) {
    tap('Z', Buffer.isBuffer(z) ? z : Buffer.from(z.buffer, z.byteOffset, z.length));
    tap('PRK', prk);
    tap('master', master);
  }
  wipe(prk);
  return secretsFromMaster(master);
}

/**
 * c_fin, s_fin, c2s_0, s2c_0 from `master` (§5); wipes `master`. Used directly by the QKD suites (§11), whose
 * master comes from the CatKDF combiner (qkd.ts).
 */
export function secretsFromMaster(master: Buffer): HandshakeSecrets {
  const s: HandshakeSecrets = {
    cFin: hkdfExpand(master, LABEL.cFin, HASH_LEN),
    sFin: hkdfExpand(master, LABEL.sFin, HASH_LEN),
    c2s: hkdfExpand(master, LABEL.c2s, HASH_LEN),
    s2c: hkdfExpand(master, LABEL.s2c, HASH_LEN),
  };
  wipe(master);
  if (tap) {
    tap('c_fin', s.cFin);
    tap('s_fin', s.sFin);
    tap('c2s_0', s.c2s);
    tap('s2c_0', s.s2c);
  }
  return s;
}

export function wipeHandshakeSecrets(s: HandshakeSecrets | undefined): void {
  if (s) wipe(s.cFin, s.sFin, s.c2s, s.s2c);
}

/** Finished MAC = HMAC-SHA-256(finished key, transcript hash). */
export function finishedMac(finKey: Uint8Array, th: Uint8Array): Buffer {
  return hmacSha256(finKey, th);
}

/** Constant-time check of a received Finished MAC. */
export function verifyFinished(finKey: Uint8Array, th: Uint8Array, mac: Uint8Array): boolean {
  const want = finishedMac(finKey, th);
  const ok = mac.length === want.length && timingSafeEqual(want, mac);
  wipe(want);
  return ok;
}

// ---------------------------------------------------------------------------------------------------------
// Traffic keys

export interface EpochKeys {
  key: Buffer;
  iv: Buffer;
}

/** key_e = HKDF-Expand(secret_e, "QSHS1 key", 32); iv_e = HKDF-Expand(secret_e, "QSHS1 iv", 12). */
export function epochKeys(secret: Uint8Array): EpochKeys {
  const k: EpochKeys = { key: hkdfExpand(secret, LABEL.key, KEY_LEN), iv: hkdfExpand(secret, LABEL.iv, IV_LEN) };
  if (tap) {
    tap('key', k.key);
    tap('iv', k.iv);
  }
  return k;
}

/**
 * secret_{e+1} = HKDF-Expand(secret_e, "QSHS1 upd", 32). With `qkdKey` (QKD suites, HANDSHAKE.md §11.4):
 * secret_{e+1} = HKDF-Extract(salt = HKDF-Expand(secret_e, "QSHS1 upd", 32), IKM = qkd_key_{e+1}).
 * Does not wipe secret_e (caller does).
 */
export function nextSecret(secret: Uint8Array, qkdKey?: Uint8Array): Buffer {
  let s = hkdfExpand(secret, LABEL.upd, HASH_LEN);
  if (qkdKey) {
    const mixed = hkdfExtract(s, qkdKey);
    wipe(s);
    s = mixed;
  }
  if (tap) tap('secret', s);
  return s;
}
