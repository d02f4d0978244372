/* ML-DSA-44/65/87 (FIPS 204), portable C11, no heap, no OS headers.
 *
 * The parameter set is given by lvl: 44, 65 or 87; anything else gives QS_PQC_EPARAM (the *_bytes functions
 * return 0). Buffers are the FIPS 204 byte strings. Randomness is the caller's: keygen takes the seed xi, the
 * signing functions take rnd (32 bytes; all zero = the deterministic variant), so everything is KAT-testable.
 *
 *   Layers: the *_internal functions are ML-DSA.KeyGen_internal / Sign_internal / Verify_internal (Alg 6-8)
 *   on M' = pre || msg (pre and msg are concatenated logically, never copied), or on a caller-supplied 64-byte
 *   mu (ACVP "externalMu"; pre/msg are then ignored). qs_mldsa_sign / qs_mldsa_verify are the pure ML-DSA.Sign /
 *   Verify (Alg 2/3) with M' = 0 || |ctx| || ctx || M. HashML-DSA is Sign_internal with
 *   pre = 1 || |ctx| || ctx || OID(PH) and msg = PH(M) (see firmware/tools/pqc_cli_dsa.c).
 *
 * Side channels (secret data = seeds, K, rho', rho'', s1, s2, t0, y, w, z/r0/ct0/h of rejected iterations):
 *   - no secret-dependent branches or table indices: Montgomery/Barrett-style reductions, Decompose (division
 *     by 2*gamma2 done as multiply-shift), MakeHint and the infinity-norm checks are branch-free; the norm
 *     checks OR-accumulate over a whole vector, so only the per-phase accept/reject decision is visible;
 *   - MakeHint results go into a bitmap indexed by the (public) coefficient position; they become the list of
 *     hint positions only after the iteration is accepted, when they are part of the public signature;
 *   - SampleInBall's swap uses a masked sweep over all candidate positions when signing (not a c[j] index);
 *   - what *is* visible: the number of rejection-loop iterations (public per FIPS 204), and in the rejection
 *     samplers (ExpandS for s1/s2, SampleInBall) which candidate nibbles/bytes were rejected. Those rejected
 *     candidates are independent of the accepted values, so this reveals nothing about s1, s2 or c.
 *   - every secret on the stack (workspace polynomials, seeds, mu/rho'', SHAKE states, hint bitmap) is wiped
 *     with qs_pqc_wipe before return; if signing gives up, sig is zeroed.
 *   Verification handles public data only and may branch freely.
 *
 * Memory: A is never stored; each entry A[i][j] is generated from rho when it is used (column-wise during
 * signing, row-wise during verification and key generation). s1, s2 are kept in the NTT domain while signing
 * (they are used every iteration); t0 stays packed in sk and is unpacked row by row in the rare iterations that
 * get as far as the ct0 check. Workspaces are exact per parameter set (no VLAs, no alloca, no recursion).
 *
 * Stack (bytes, deepest call chain including the SHAKE/Keccak frames), x86-64, gcc 12 -O2:
 *
 *                               ML-DSA-44   ML-DSA-65   ML-DSA-87    limit (65 / 87)
 *   qs_mldsa_keygen                 7,616       8,640      10,688
 *   qs_mldsa_sign                  22,896      29,040      37,232    48 KiB / 60 KiB
 *   qs_mldsa_sign_internal (mu)    22,528      28,672      36,864    48 KiB / 60 KiB
 *   qs_mldsa_verify                 9,312      10,336      12,384    48 KiB / 60 KiB
 *   qs_mldsa_verify_internal (mu)   8,960       9,984      12,032    48 KiB / 60 KiB
 *
 * (-Os and -O0 are within +-400 bytes of these.) Where it goes: signing holds s1-hat, s2-hat, y/z and w
 * ((2l + 2k) x 1 KiB) plus c-hat and two scratch polynomials; verification holds z-hat (l x 1 KiB) plus three
 * scratch polynomials; key generation s1-hat plus two. The rest is SHAKE states/blocks and the 640-byte
 * ExpandMask buffer; qs_mldsa_sign/verify add the 257-byte M' prefix.
 *
 * Method: stack painting. A throwaway harness (not in the tree) runs each operation on a pthread whose 1 MiB
 * stack (pthread_attr_setstack) was filled with a pattern beforehand, finds the deepest overwritten byte after
 * the join, and subtracts the same figure for an empty operation (thread start-up, TLS); maximum over 20 keys
 * and messages per set. Cross-checked with gcc -fstack-usage (frames summed along the deepest call chain
 * qs_mldsa_sign -> sign_87 -> sign_core -> sample_a -> qs_keccak_squeeze -> qs_keccak_f1600: 37,024 bytes).
 */
#ifndef QS_PQC_MLDSA_H
#define QS_PQC_MLDSA_H
#include <stddef.h>
#include <stdint.h>

#ifndef QS_PQC_OK
#define QS_PQC_OK 0
#endif
#ifndef QS_PQC_EINPUT
#define QS_PQC_EINPUT (-1)   /* malformed input (null pointer, context longer than 255 bytes) */
#endif
#ifndef QS_PQC_EPARAM
#define QS_PQC_EPARAM (-2)   /* unknown parameter set */
#endif
#define QS_PQC_EVERIFY (-3)  /* signature invalid */
#define QS_PQC_ELOOP (-4)    /* signing gave up after QS_MLDSA_MAX_ATTEMPTS iterations (probability < 2^-300) */

#define QS_MLDSA_SEED_BYTES 32u
#define QS_MLDSA_RND_BYTES 32u
#define QS_MLDSA_MU_BYTES 64u
#define QS_MLDSA_CTX_MAX 255u
#define QS_MLDSA_MAX_ATTEMPTS 1000u   /* FIPS 204 Appendix C: at least 814 */
/* Largest sizes (ML-DSA-87), for static buffers. */
#define QS_MLDSA_PK_MAX 2592u
#define QS_MLDSA_SK_MAX 4896u
#define QS_MLDSA_SIG_MAX 4627u

/* lvl = 44, 65, 87 */
size_t qs_mldsa_pk_bytes(int lvl);    /* 1312 / 1952 / 2592 */
size_t qs_mldsa_sk_bytes(int lvl);    /* 2560 / 4032 / 4896 */
size_t qs_mldsa_sig_bytes(int lvl);   /* 2420 / 3309 / 4627 */

int qs_mldsa_keygen(int lvl, uint8_t *pk, uint8_t *sk, const uint8_t xi[32]);               /* KeyGen_internal */

/* Sign_internal (Alg 7) on M' = pre || msg, or directly on mu when mu != NULL (ACVP externalMu).
 * rnd: 32 bytes (all zero = deterministic). attempts (nullable): rejection-loop iterations used. */
int qs_mldsa_sign_internal(int lvl, uint8_t *sig, const uint8_t *pre, size_t prelen, const uint8_t *msg, size_t msglen,
                           const uint8_t *mu, const uint8_t rnd[32], const uint8_t *sk, unsigned *attempts);
/* 0 or QS_PQC_EVERIFY (also for a signature of the wrong length) / QS_PQC_EINPUT / QS_PQC_EPARAM */
int qs_mldsa_verify_internal(int lvl, const uint8_t *sig, size_t siglen, const uint8_t *pre, size_t prelen,
                             const uint8_t *msg, size_t msglen, const uint8_t *mu, const uint8_t *pk);

/* Pure ML-DSA.Sign / Verify (Alg 2/3): M' = 0 || |ctx| || ctx || M, ctx <= 255 bytes (else QS_PQC_EINPUT) */
int qs_mldsa_sign(int lvl, uint8_t *sig, const uint8_t *msg, size_t mlen, const uint8_t *ctx, size_t ctxlen,
                  const uint8_t rnd[32], const uint8_t *sk, unsigned *attempts);
int qs_mldsa_verify(int lvl, const uint8_t *sig, size_t siglen, const uint8_t *msg, size_t mlen,
                    const uint8_t *ctx, size_t ctxlen, const uint8_t *pk);
#endif
