/* qslab node firmware: crypto port interface (OpenSSL 3 on POSIX, mbedTLS on ESP32).
 * All functions return QS_OK (0) or a negative enum qs_status. Secret buffers are wiped by the implementation
 * when freed. HKDF is built in the core on top of qs_hmac_sha256 (core/hkdf.c). */
#ifndef QS_CRYPTO_PORT_H
#define QS_CRYPTO_PORT_H

#include <stddef.h>
#include <stdint.h>

enum { QS_AEAD_AES256GCM = 1, QS_AEAD_CHACHA20POLY1305 = 2 };
#define QS_AEAD_KEY_LEN 32
#define QS_AEAD_NONCE_LEN 12
#define QS_AEAD_TAG_LEN 16

/* Library set-up: must run before any other crypto call (routes the library's heap into qs_malloc). */
int qs_crypto_init(void);
/* Optional: exercise every primitive once on the calling task so that lazy library initialisation is not
 * charged to the first measured operation. */
void qs_crypto_warmup(void);

int qs_crypto_random(void *buf, size_t len);
void qs_wipe(void *buf, size_t len);

/* SHA-256 */
typedef struct qs_sha256_ctx qs_sha256_ctx;
qs_sha256_ctx *qs_sha256_new(void);
int qs_sha256_update(qs_sha256_ctx *h, const void *data, size_t len);
int qs_sha256_final(qs_sha256_ctx *h, uint8_t out[32]);         /* h is unusable afterwards except for free */
qs_sha256_ctx *qs_sha256_dup(const qs_sha256_ctx *h);               /* copy of the running state */
void qs_sha256_free(qs_sha256_ctx *h);
int qs_sha256(const void *data, size_t len, uint8_t out[32]);

/* HMAC-SHA-256 */
int qs_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen, uint8_t out[32]);

/* AEAD with a fixed key (one context per traffic key) */
typedef struct qs_aead qs_aead;
qs_aead *qs_aead_new(int alg, const uint8_t key[QS_AEAD_KEY_LEN]);
int qs_aead_seal(qs_aead *a, const uint8_t nonce[QS_AEAD_NONCE_LEN], const uint8_t *aad, size_t aadlen,
                 const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[QS_AEAD_TAG_LEN]);
/* QS_E_BADMAC when the tag does not verify (pt contents are then unspecified). */
int qs_aead_open(qs_aead *a, const uint8_t nonce[QS_AEAD_NONCE_LEN], const uint8_t *aad, size_t aadlen,
                 const uint8_t *ct, size_t len, const uint8_t tag[QS_AEAD_TAG_LEN], uint8_t *pt);
void qs_aead_free(qs_aead *a);

/* Ephemeral key agreement. Peer shares that are invalid (not on the curve, small order) give QS_E_DECODE. */
typedef struct qs_kex qs_kex;
int qs_x25519_keygen(qs_kex **priv, uint8_t pub[32]);
int qs_x25519_derive(qs_kex *priv, const uint8_t peer[32], uint8_t shared[32]);
int qs_p256_keygen(qs_kex **priv, uint8_t pub[65]);                         /* uncompressed point */
int qs_p256_derive(qs_kex *priv, const uint8_t peer[65], uint8_t shared[32]); /* x-coordinate */
void qs_kex_free(qs_kex *k);

/* ECDSA-P256-SHA256 verification: spki = SubjectPublicKeyInfo DER of a P-256 key, sig = DER.
 * QS_OK, QS_E_AUTH (bad signature), QS_E_DECODE (key is not a P-256 SPKI). */
int qs_ecdsa_p256_verify(const uint8_t *spki, size_t spki_len, const uint8_t *msg, size_t msglen,
                         const uint8_t *sig, size_t siglen);

/* RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) encryption with an RSA SPKI DER public key.
 * *outlen: in = capacity of out, out = ciphertext length. QS_E_DECODE when the key is not an RSA SPKI. */
int qs_rsa_oaep_encrypt(const uint8_t *spki, size_t spki_len, const uint8_t *msg, size_t msglen,
                        uint8_t *out, size_t *outlen);

#endif
