/* ML-KEM-512/768/1024 (FIPS 203), portable C11, no heap, no OS headers.
 *
 * The parameter set is given by k: 2 = ML-KEM-512, 3 = ML-KEM-768, 4 = ML-KEM-1024; anything else gives
 * QS_PQC_EPARAM (the *_bytes functions return 0). Buffers are the FIPS 203 byte strings; their lengths are
 * the caller's to check (qs_mlkem_*_bytes). Randomness is the caller's: keygen takes d and z, encaps takes m
 * (the *_internal algorithms of FIPS 203 §6), so the functions are deterministic and KAT-testable.
 *
 *   encaps runs the encapsulation key check of §7.2 (modulus check) first; decaps runs the decapsulation key
 *   check of §7.3 (hash check H(ek) == h) first; both return QS_PQC_EINPUT (and zero their outputs) on failure.
 *   decaps uses implicit rejection: a ciphertext that does not re-encrypt gives K-bar = J(z || c), not an error.
 *
 * Side channels: no secret-dependent branches or table indices. Reductions (Montgomery, Barrett) and
 * compression are branch-free multiply/shift code; the re-encryption comparison is an OR-accumulated byte
 * difference turned into a mask, and the shared-secret choice a masked select. Secrets on the stack (seeds,
 * s, e, y, m', K', PRF/XOF states) are wiped with qs_pqc_wipe before every return. Rejection sampling of the
 * matrix A works on public data (rho) only. Checked ctgrind-style: under valgrind memcheck with d/z/m and the
 * dk's s and z marked undefined, no conditional jump or address depends on them (only SampleNTT on rho,
 * which is public, when d itself is marked).
 *
 * Stack (bytes, whole call chain incl. the SHA-3/Keccak callees), measured on x86-64, gcc 12:
 *
 *                      -O2 (build)   -Os      -O0      limit
 *   qs_mlkem_keygen       4,368     4,344    4,472    16 KiB
 *   qs_mlkem_encaps       4,768     4,376    4,488    16 KiB
 *   qs_mlkem_decaps       7,200     6,968    6,360    16 KiB
 *   qs_mlkem_check_ek         0        16       96    (leaf, registers only at -O2)
 *   qs_mlkem_check_dk       832       824      984
 *
 * The figures are the same for ML-KEM-512, -768 and -1024: the per-k arrays (s-hat / y-hat, KMAX = 4 polys of
 * 512 B) are sized for k = 4, and the matrix A is never stored whole (generated one entry at a time);
 * decaps adds the re-encryption buffer c' (1568 B). No recursion, VLAs or alloca.
 * Method: stack painting. A throwaway harness (not in the tree) fills a 64 KiB buffer with a pattern, runs
 * each operation for each parameter set on that buffer as its stack (ucontext), and reports the deepest
 * overwritten byte minus the trampoline's own use. Cross-checked with gcc -fstack-usage at -O2 (decaps frame
 * 2,848 + pke_encrypt 3,360 + sample_cbd 480 + squeeze 48 + keccak_f1600 360 + return addresses ~ 7.1 KiB).
 */
#ifndef QS_PQC_MLKEM_H
#define QS_PQC_MLKEM_H
#include <stddef.h>
#include <stdint.h>

/* Shared with mldsa.h (same values; guarded so either header may come first). */
#ifndef QS_PQC_OK
#define QS_PQC_OK 0
#endif
#ifndef QS_PQC_EINPUT
#define QS_PQC_EINPUT (-1)   /* malformed input (length, modulus check, hash check) */
#endif
#ifndef QS_PQC_EPARAM
#define QS_PQC_EPARAM (-2)   /* unknown parameter set */
#endif

#define QS_MLKEM_SS_BYTES 32u
#define QS_MLKEM_SEED_BYTES 32u
/* Largest sizes (ML-KEM-1024), for static buffers. */
#define QS_MLKEM_EK_MAX 1568u
#define QS_MLKEM_DK_MAX 3168u
#define QS_MLKEM_CT_MAX 1568u

/* k = 2 (ML-KEM-512), 3 (768), 4 (1024) */
size_t qs_mlkem_ek_bytes(int k);   /* 384k + 32 */
size_t qs_mlkem_dk_bytes(int k);   /* 768k + 96 */
size_t qs_mlkem_ct_bytes(int k);   /* 32(du k + dv) */

int qs_mlkem_keygen(int k, uint8_t *ek, uint8_t *dk, const uint8_t d[32], const uint8_t z[32]);     /* KeyGen_internal */
int qs_mlkem_encaps(int k, uint8_t *ct, uint8_t ss[32], const uint8_t *ek, const uint8_t m[32]);    /* Encaps_internal + ek check (FIPS 203 §7.2) */
int qs_mlkem_decaps(int k, uint8_t ss[32], const uint8_t *ct, const uint8_t *dk);                    /* Decaps_internal + dk check (§7.3), implicit rejection */
int qs_mlkem_check_ek(int k, const uint8_t *ek);   /* 0 ok, QS_PQC_EINPUT bad */
int qs_mlkem_check_dk(int k, const uint8_t *dk);
#endif
