/* FIPS 202: Keccak-f[1600], SHA3-256, SHA3-512, SHAKE128, SHAKE256 (portable C11, no heap, no OS headers).
 *
 * Incremental use: *_init, then qs_keccak_absorb any number of times, then qs_keccak_squeeze any number of
 * times (the first squeeze pads and finalizes; absorbing after squeezing has started is not allowed and is
 * ignored). For SHA3-256/512 squeeze exactly the digest length (32/64 bytes) to get the FIPS 202 digest.
 * The state may hold secrets: wipe it with qs_pqc_wipe when done (the one-shot functions do this). */
#ifndef QS_PQC_FIPS202_H
#define QS_PQC_FIPS202_H
#include <stddef.h>
#include <stdint.h>

#define QS_SHAKE128_RATE 168u
#define QS_SHAKE256_RATE 136u
#define QS_SHA3_256_RATE 136u
#define QS_SHA3_512_RATE 72u

typedef struct {
    uint64_t s[25];     /* state, lane (x, y) at s[x + 5y], bytes little-endian within a lane */
    unsigned pos;       /* byte position in the current rate block */
    unsigned rate;      /* bytes */
    uint8_t dsep;       /* domain separation + first pad bit: 0x06 SHA3, 0x1F SHAKE */
    int squeezing;
} qs_keccak;

/* The permutation itself (24 rounds). */
void qs_keccak_f1600(uint64_t s[25]);

void qs_shake128_init(qs_keccak *k);
void qs_shake256_init(qs_keccak *k);
void qs_sha3_256_init(qs_keccak *k);
void qs_sha3_512_init(qs_keccak *k);
void qs_keccak_absorb(qs_keccak *k, const uint8_t *in, size_t len);   /* any number of calls */
void qs_keccak_squeeze(qs_keccak *k, uint8_t *out, size_t len);       /* first call pads+finalizes; any number of calls */

void qs_sha3_256(uint8_t out[32], const uint8_t *in, size_t len);
void qs_sha3_512(uint8_t out[64], const uint8_t *in, size_t len);
void qs_shake128(uint8_t *out, size_t outlen, const uint8_t *in, size_t inlen);
void qs_shake256(uint8_t *out, size_t outlen, const uint8_t *in, size_t inlen);

/* Secure zeroization (volatile byte writes, not elided by the optimizer); used by both PQC modules. */
void qs_pqc_wipe(void *p, size_t n);
#endif
