// Post-quantum primitives for QSHS/1 suites 4–7 (firmware/HANDSHAKE.md §10): ML-KEM (FIPS 203) and ML-DSA
// (FIPS 204) from @noble/post-quantum, by parameter set. Shared by server, client and keys; no protocol logic.

import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';

export type KemSet = 512 | 768 | 1024;
export type DsaLevel = 44 | 65 | 87;
export const DSA_LEVELS: readonly DsaLevel[] = [44, 65, 87];

/** ML-DSA context string of every QSHS/1 signature (server and client), §10.2. */
export const DSA_CONTEXT = Buffer.from('QSHS1', 'latin1');
/** Label of the client's ClientAuth signature input, §10.3 (followed by one 0x00). */
export const CLIENT_SIG_LABEL = Buffer.from('QSHS1 client signature', 'latin1');

export interface Kem {
  ekLen: number;
  dkLen: number;
  ctLen: number;
  keygen(): { ek: Uint8Array; dk: Uint8Array };
  /** Throws when `ek` fails the FIPS 203 input checks. */
  encaps(ek: Uint8Array): { ct: Uint8Array; ss: Uint8Array };
  decaps(ct: Uint8Array, dk: Uint8Array): Uint8Array;
}

function mkKem(impl: typeof ml_kem768): Kem {
  return {
    ekLen: impl.lengths.publicKey!,
    dkLen: impl.lengths.secretKey!,
    ctLen: impl.lengths.cipherText!,
    keygen: () => {
      const { publicKey, secretKey } = impl.keygen();
      return { ek: publicKey, dk: secretKey };
    },
    encaps: (ek) => {
      const { cipherText, sharedSecret } = impl.encapsulate(ek);
      return { ct: cipherText, ss: sharedSecret };
    },
    decaps: (ct, dk) => impl.decapsulate(ct, dk),
  };
}

const KEMS: Record<KemSet, Kem> = { 512: mkKem(ml_kem512), 768: mkKem(ml_kem768), 1024: mkKem(ml_kem1024) };
export const kem = (set: KemSet): Kem => KEMS[set];

export interface Dsa {
  level: DsaLevel;
  pkLen: number;
  skLen: number;
  sigLen: number;
  /** Key pair from a 32-byte seed ξ (FIPS 204 ML-DSA.KeyGen_internal). */
  keygen(seed: Uint8Array): { pk: Uint8Array; sk: Uint8Array };
  /** Pure, hedged ML-DSA with ctx = "QSHS1". */
  sign(msg: Uint8Array, sk: Uint8Array): Uint8Array;
  /** False for a bad signature, a signature or key of the wrong length, or any malformed input. */
  verify(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean;
}

function mkDsa(level: DsaLevel, impl: typeof ml_dsa65): Dsa {
  const pkLen = impl.lengths.publicKey!;
  const sigLen = impl.lengths.signature!;
  return {
    level, pkLen, skLen: impl.lengths.secretKey!, sigLen,
    keygen: (seed) => {
      const { publicKey, secretKey } = impl.keygen(seed);
      return { pk: publicKey, sk: secretKey };
    },
    sign: (msg, sk) => impl.sign(msg, sk, { context: DSA_CONTEXT }),
    verify: (sig, msg, pk) => {
      if (sig.length !== sigLen || pk.length !== pkLen) return false;
      try {
        return impl.verify(sig, msg, pk, { context: DSA_CONTEXT });
      } catch {
        return false;
      }
    },
  };
}

const DSAS: Record<DsaLevel, Dsa> = { 44: mkDsa(44, ml_dsa44), 65: mkDsa(65, ml_dsa65), 87: mkDsa(87, ml_dsa87) };
export const dsa = (level: DsaLevel): Dsa => DSAS[level];
