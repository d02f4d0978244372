// Long-term server identity for QSHS/1: an RSA-2048 key (suite rsa2048) and a P-256 ECDSA key (ECDHE suites).
// A lab reuses its identity across runs (nodes are given the SPKI pin), so keys can be saved and loaded as
// PKCS#8 PEM. Private key files are written with mode 0600.

import {
  createHash, createPrivateKey, createPublicKey, generateKeyPair, generateKeyPairSync, type KeyObject,
} from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SuiteName } from './wire.js';

export interface ServerKeys {
  /** RSA-2048 private key, e = 65537 (suite rsa2048). */
  rsa: KeyObject;
  /** P-256 private key (suites ecdhe-p256-ecdsa and x25519 sign with it). */
  ecdsa: KeyObject;
}

export const RSA_KEY_FILE = 'rsa2048.key.pem';
export const ECDSA_KEY_FILE = 'p256.key.pem';

const RSA_OPTS = { modulusLength: 2048, publicExponent: 65537 } as const;
const EC_OPTS = { namedCurve: 'P-256' } as const;

/** Throws unless `keys` are an RSA-2048/e=65537 and a P-256 private key. */
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
}

/** Fresh RSA-2048 (e = 65537) and P-256 keys. Synchronous (RSA keygen takes ~50–500 ms). */
export function generateServerKeys(): ServerKeys {
  return {
    rsa: generateKeyPairSync('rsa', RSA_OPTS).privateKey,
    ecdsa: generateKeyPairSync('ec', EC_OPTS).privateKey,
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
  return { rsa, ecdsa };
}

/** Write both private keys as PKCS#8 PEM into `dir` (created if missing, files mode 0600). */
export function saveServerKeys(dir: string, keys: ServerKeys): void {
  checkServerKeys(keys);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pem = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'pem' }) as string;
  writeFileSync(join(dir, RSA_KEY_FILE), pem(keys.rsa), { mode: 0o600 });
  writeFileSync(join(dir, ECDSA_KEY_FILE), pem(keys.ecdsa), { mode: 0o600 });
}

/** Read keys written by saveServerKeys() (any PEM private key format OpenSSL reads is accepted). */
export function loadServerKeys(dir: string): ServerKeys {
  const keys: ServerKeys = {
    rsa: createPrivateKey(readFileSync(join(dir, RSA_KEY_FILE))),
    ecdsa: createPrivateKey(readFileSync(join(dir, ECDSA_KEY_FILE))),
  };
  checkServerKeys(keys);
  return keys;
}

/** Load the identity from `dir`, or generate and save one when `dir` has none. */
export function loadOrCreateServerKeys(dir: string): ServerKeys {
  if (existsSync(join(dir, RSA_KEY_FILE)) && existsSync(join(dir, ECDSA_KEY_FILE))) return loadServerKeys(dir);
  const keys = generateServerKeys();
  saveServerKeys(dir, keys);
  return keys;
}

/** SPKI DER of the public half of a private key. */
export function spkiDer(priv: KeyObject): Buffer {
  return createPublicKey(priv).export({ type: 'spki', format: 'der' });
}

/** The key a suite presents: RSA for rsa2048, the P-256 key for the ECDHE suites. */
export function suiteKey(keys: ServerKeys, suite: SuiteName): KeyObject {
  return suite === 'rsa2048' ? keys.rsa : keys.ecdsa;
}

/** Pin of a suite's server key: hex SHA-256 of its SPKI DER (what the node's `hs` command gets as `pin`). */
export function keyPin(keys: ServerKeys, suite: SuiteName): string {
  return createHash('sha256').update(spkiDer(suiteKey(keys, suite))).digest('hex');
}
