/* FIPS 180-4 SHA-2: SHA-224, SHA-256, SHA-384, SHA-512, SHA-512/224, SHA-512/256 (portable C11, no heap).
 * Used for HashML-DSA pre-hashing (FIPS 204 section 5.4). Incremental: init, update any number of times, final.
 * Contexts may hold secret-derived data: the final functions wipe them. */
#ifndef QS_PQC_SHA2_H
#define QS_PQC_SHA2_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t len;          /* bytes absorbed */
    uint8_t buf[64];
    unsigned outlen;       /* 28 or 32 */
} qs_pqc_sha256_ctx;

typedef struct {
    uint64_t h[8];
    uint64_t len;          /* bytes absorbed (messages < 2^64 bytes) */
    uint8_t buf[128];
    unsigned outlen;       /* 28, 32, 48 or 64 */
} qs_pqc_sha512_ctx;

void qs_pqc_sha224_init(qs_pqc_sha256_ctx *c);
void qs_pqc_sha256_init(qs_pqc_sha256_ctx *c);
void qs_pqc_sha256_update(qs_pqc_sha256_ctx *c, const uint8_t *in, size_t len);
void qs_pqc_sha256_final(qs_pqc_sha256_ctx *c, uint8_t *out);      /* writes c->outlen bytes */

void qs_pqc_sha384_init(qs_pqc_sha512_ctx *c);
void qs_pqc_sha512_init(qs_pqc_sha512_ctx *c);
void qs_pqc_sha512_224_init(qs_pqc_sha512_ctx *c);
void qs_pqc_sha512_256_init(qs_pqc_sha512_ctx *c);
void qs_pqc_sha512_update(qs_pqc_sha512_ctx *c, const uint8_t *in, size_t len);
void qs_pqc_sha512_final(qs_pqc_sha512_ctx *c, uint8_t *out);      /* writes c->outlen bytes */

/* One-shot helpers. */
void qs_pqc_sha224(uint8_t *out, const uint8_t *in, size_t len);   /* 28-byte digest */
void qs_pqc_sha256(uint8_t *out, const uint8_t *in, size_t len);   /* 32-byte digest */
void qs_pqc_sha384(uint8_t *out, const uint8_t *in, size_t len);   /* 48-byte digest */
void qs_pqc_sha512(uint8_t *out, const uint8_t *in, size_t len);   /* 64-byte digest */
void qs_pqc_sha512_224(uint8_t *out, const uint8_t *in, size_t len);   /* 28-byte digest */
void qs_pqc_sha512_256(uint8_t *out, const uint8_t *in, size_t len);   /* 32-byte digest */
#endif
