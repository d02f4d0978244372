// X25519 ephemeral keys through Node's native crypto without generateKeyPairSync and without JWK export: Node 20
// can deadlock when the garbage collector destroys a key-generation job while a JWK export of its key holds that
// key's lock (seen as a hung controller: ~KeyGenJob() waiting in uv_mutex_lock under ExportJWKEdKey). Keys are
// made from 32 random bytes and moved in and out as fixed-prefix DER.
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes, type KeyObject } from 'node:crypto';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex'); // RFC 8410 X25519 private key
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex'); // RFC 8410 X25519 public key

export interface X25519Pair {
  /** Our 32-byte public key. */
  pub: Buffer;
  /** The shared secret with a peer's 32-byte public key (throws on a malformed key). */
  derive(peer: Uint8Array): Buffer;
}

export function x25519Ephemeral(): X25519Pair {
  const raw = randomBytes(32);
  const der = Buffer.concat([PKCS8_PREFIX, raw]);
  raw.fill(0);
  let priv: KeyObject;
  try {
    priv = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return {
    pub: Buffer.from(spki.subarray(SPKI_PREFIX.length)),
    derive: (peer) => {
      if (peer.length !== 32) throw new Error('X25519 public key must be 32 bytes');
      const pub = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, peer]), format: 'der', type: 'spki' });
      return diffieHellman({ privateKey: priv, publicKey: pub });
    },
  };
}
