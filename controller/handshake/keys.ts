// Long-term server identity for QSHS/1: an RSA-2048 key (suite rsa2048), a P-256 ECDSA key (ECDHE suites and
// x25519mlkem768) and one ML-DSA key per level 44/65/87 (suites mlkem*-mldsa*, HANDSHAKE.md §10.2).
// A lab reuses its identity across runs (nodes are given the pin), so keys can be saved and loaded as
// PKCS#8 PEM (ML-DSA: the RFC 9881 seed form). Private key files are written with mode 0600.

import {
  createHash, createPrivateKey, createPublicKey, generateKeyPair, generateKeyPairSync, randomBytes, type KeyObject,
} from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { dsa, DSA_LEVELS, type DsaLevel } from './pq.js';
import { SUITE_INFO, type SuiteName } from './wire.js';

export interface ServerKeys {
  /** RSA-2048 private key, e = 65537 (suite rsa2048). */
  rsa: KeyObject;
  /** P-256 private key (suites ecdhe-p256-ecdsa, x25519 and x25519mlkem768 sign with it). */
  ecdsa: KeyObject;
  /** ML-DSA private keys as their 32-byte seeds ξ (FIPS 204), one per level. */
  mldsa: Record<DsaLevel, Uint8Array>;
}

export const RSA_KEY_FILE = 'rsa2048.key.pem';
export const ECDSA_KEY_FILE = 'p256.key.pem';
export const mldsaKeyFile = (level: DsaLevel): string => `mldsa${level}.key.pem`;

const RSA_OPTS = { modulusLength: 2048, publicExponent: 65537 } as const;
const EC_OPTS = { namedCurve: 'P-256' } as const;

/** Throws unless `keys` are an RSA-2048/e=65537 and a P-256 private key and three 32-byte ML-DSA seeds. */
export function checkServerKeys(keys: ServerKeys): void {
  const r = keys.rsa;
  if (r.type !== 'private' || r.asymmetricKeyType !== 'rsa') throw new Error('server keys: rsa must be an RSA private key');
  const rd = r.asymmetricKeyDetails;
  if (rd?.modulusLength !== 2048 || rd.publicExponent !== 65537n) {
    throw new Error('server keys: rsa must be RSA-2048 with e = 65537');
  }
  const e = keys.ecdsa;
  if (e.type !== 'private' || e.asymmetricKeyType !== 'ec' || e.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('server keys: ecdsa must be a P-256 private key');
  }
  for (const l of DSA_LEVELS) {
    const seed = keys.mldsa?.[l];
    if (!(seed instanceof Uint8Array) || seed.length !== 32) {
      throw new Error(`server keys: mldsa[${l}] must be a 32-byte ML-DSA seed`);
    }
  }
}

function freshMldsaSeeds(): Record<DsaLevel, Uint8Array> {
  return { 44: randomBytes(32), 65: randomBytes(32), 87: randomBytes(32) };
}

/**
 * A long-lived copy of a freshly generated key that shares nothing with its key-generation job: Node 20 can
 * deadlock when the garbage collector destroys that job while the key's lock is held by an operation that
 * allocates (seen with JWK export; signing uses the key for the whole run).
 */
function detached(k: KeyObject): KeyObject {
  const der = k.export({ format: 'der', type: 'pkcs8' });
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

/** Fresh RSA-2048 (e = 65537) and P-256 keys. Synchronous (RSA keygen takes ~50–500 ms). */
export function generateServerKeys(): ServerKeys {
  return {
    rsa: detached(generateKeyPairSync('rsa', RSA_OPTS).privateKey),
    ecdsa: detached(generateKeyPairSync('ec', EC_OPTS).privateKey),
    mldsa: freshMldsaSeeds(),
  };
}

/** Same as generateServerKeys() without blocking the event loop. */
export async function generateServerKeysAsync(): Promise<ServerKeys> {
  const gen = (type: 'rsa' | 'ec'): Promise<KeyObject> => new Promise((resolve, reject) => {
    const cb = (err: Error | null, _pub: KeyObject, priv: KeyObject): void => (err ? reject(err) : resolve(priv));
    if (type === 'rsa') generateKeyPair('rsa', RSA_OPTS, cb);
    else generateKeyPair('ec', EC_OPTS, cb);
  });
  const [rsa, ecdsa] = await Promise.all([gen('rsa'), gen('ec')]);
  return { rsa: detached(rsa), ecdsa: detached(ecdsa), mldsa: freshMldsaSeeds() };
}

// ML-DSA private keys as PKCS#8 (RFC 5958) with the RFC 9881 seed form:
//   SEQUENCE { INTEGER 0, SEQUENCE { OID id-ml-dsa-NN }, OCTET STRING { [0] IMPLICIT OCTET STRING (32) } }
// = 30 34 02 01 00 30 0b 06 09 60 86 48 01 65 03 04 03 {11|12|13} 04 22 80 20 <seed>. OpenSSL >= 3.5 reads it.
const MLDSA_OID_LAST: Record<DsaLevel, number> = { 44: 0x11, 65: 0x12, 87: 0x13 };
const mldsaPkcs8Prefix = (level: DsaLevel): Buffer =>
  Buffer.from(`3034020100300b06096086480165030403${MLDSA_OID_LAST[level].toString(16)}04228020`, 'hex');

/** PKCS#8 PEM ("PRIVATE KEY") of an ML-DSA seed. */
export function mldsaSeedToPem(level: DsaLevel, seed: Uint8Array): string {
  if (seed.length !== 32) throw new Error('ML-DSA seed must be 32 bytes');
  const b64 = Buffer.concat([mldsaPkcs8Prefix(level), seed]).toString('base64');
  return `-----BEGIN PRIVATE KEY-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

/** The seed from a PEM written by mldsaSeedToPem() (seed form only). `what` names the file in errors. */
export function mldsaSeedFromPem(level: DsaLevel, pem: string, what = `ML-DSA-${level} key`): Uint8Array {
  const m = /-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END PRIVATE KEY-----/.exec(pem);
  if (!m) throw new Error(`${what}: not a PEM "PRIVATE KEY"`);
  const der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  const prefix = mldsaPkcs8Prefix(level);
  if (der.length !== prefix.length + 32 || !der.subarray(0, prefix.length).equals(prefix)) {
    throw new Error(`${what}: not a PKCS#8 ML-DSA-${level} private key in seed form (RFC 9881)`);
  }
  return new Uint8Array(der.subarray(prefix.length));
}

/** Write all private keys as PKCS#8 PEM into `dir` (created if missing, files mode 0600). */
export function saveServerKeys(dir: string, keys: ServerKeys): void {
  checkServerKeys(keys);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pem = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'pem' }) as string;
  writeFileSync(join(dir, RSA_KEY_FILE), pem(keys.rsa), { mode: 0o600 });
  writeFileSync(join(dir, ECDSA_KEY_FILE), pem(keys.ecdsa), { mode: 0o600 });
  for (const l of DSA_LEVELS) writeFileSync(join(dir, mldsaKeyFile(l)), mldsaSeedToPem(l, keys.mldsa[l]), { mode: 0o600 });
}

function readMldsa(dir: string): Record<DsaLevel, Uint8Array> {
  const get = (l: DsaLevel): Uint8Array => {
    const f = join(dir, mldsaKeyFile(l));
    return mldsaSeedFromPem(l, readFileSync(f, 'utf8'), f);
  };
  return { 44: get(44), 65: get(65), 87: get(87) };
}

/** Read keys written by saveServerKeys() (RSA/P-256: any PEM private key format OpenSSL reads is accepted). */
export function loadServerKeys(dir: string): ServerKeys {
  const keys: ServerKeys = {
    rsa: createPrivateKey(readFileSync(join(dir, RSA_KEY_FILE))),
    ecdsa: createPrivateKey(readFileSync(join(dir, ECDSA_KEY_FILE))),
    mldsa: readMldsa(dir),
  };
  checkServerKeys(keys);
  return keys;
}

/**
 * Load the identity from `dir`, or generate and save one when `dir` has none. A directory from before the
 * post-quantum suites (RSA and P-256 keys only) keeps its keys and gets ML-DSA keys added.
 */
export function loadOrCreateServerKeys(dir: string): ServerKeys {
  if (existsSync(join(dir, RSA_KEY_FILE)) && existsSync(join(dir, ECDSA_KEY_FILE))) {
    const missing = DSA_LEVELS.filter((l) => !existsSync(join(dir, mldsaKeyFile(l))));
    if (missing.length === DSA_LEVELS.length) {
      const seeds = freshMldsaSeeds();
      for (const l of DSA_LEVELS) writeFileSync(join(dir, mldsaKeyFile(l)), mldsaSeedToPem(l, seeds[l]), { mode: 0o600 });
    }
    return loadServerKeys(dir);
  }
  const keys = generateServerKeys();
  saveServerKeys(dir, keys);
  return keys;
}

/** SPKI DER of the public half of a private key. */
export function spkiDer(priv: KeyObject): Buffer {
  return createPublicKey(priv).export({ type: 'spki', format: 'der' });
}

/** ML-DSA key pair of a level, expanded from the stored seed. */
export function mldsaKeyPair(keys: ServerKeys, level: DsaLevel): { pk: Uint8Array; sk: Uint8Array } {
  return dsa(level).keygen(keys.mldsa[level]);
}

/** The classical key a suite presents: RSA for rsa2048, the P-256 key for the ECDHE/hybrid suites. */
export function suiteKey(keys: ServerKeys, suite: SuiteName): KeyObject {
  return suite === 'rsa2048' ? keys.rsa : keys.ecdsa;
}

/**
 * The `cert` bytes a suite presents: SPKI DER, or the raw ML-DSA public key (§10.2); empty for the plaintext
 * baseline `none` (§12), which has no server key.
 */
export function suiteCert(keys: ServerKeys, suite: SuiteName): Buffer {
  const info = SUITE_INFO[suite];
  if (info.auth === 'none') return Buffer.alloc(0);
  if (info.auth === 'mldsa') return Buffer.from(mldsaKeyPair(keys, info.dsa!).pk);
  return spkiDer(suiteKey(keys, suite));
}

/**
 * Pin of a suite's server key: hex SHA-256 of its cert (what the node's `hs` command gets as `pin`). For `none`
 * that is SHA-256 of the empty cert (e3b0c442…): it pins nothing, and the node does not use it (§12); it exists
 * so that callers need no special case.
 */
export function keyPin(keys: ServerKeys, suite: SuiteName): string {
  return createHash('sha256').update(suiteCert(keys, suite)).digest('hex');
}
