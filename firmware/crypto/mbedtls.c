/* qslab crypto port on mbedTLS (the ESP32 / ESP-IDF build; on POSIX it is built and tested against Debian 12's
 * libmbedtls-dev 2.28 as build/qslab-node-mbedtls). Same contract as crypto/openssl.c (core/crypto_port.h).
 *
 * Only APIs that exist in both mbedTLS 2.28 and 3.x (ESP-IDF v5) are used; where the two differ the 2.28 / 3.x
 * spelling is selected on MBEDTLS_VERSION_NUMBER (see the compat block below). No mbedTLS struct field is
 * accessed directly except the EC group id of a parsed key (private in 3.x, read through the 3.x accessor).
 *
 * Primitive map:
 *   random            CTR_DRBG (AES-256) seeded from mbedtls_entropy_func (ESP-IDF: the hardware RNG)
 *   SHA-256           mbedtls_sha256_* (one context per qs_sha256_ctx; clone for dup)
 *   HMAC-SHA-256      RFC 2104 over mbedtls_sha256 contexts on the stack (no heap, unlike mbedtls_md_hmac)
 *   AES-256-GCM       mbedtls_gcm_crypt_and_tag / mbedtls_gcm_auth_decrypt (constant-time tag check; output
 *                     wiped on failure)
 *   ChaCha20-Poly1305 mbedtls_chachapoly_encrypt_and_tag / _auth_decrypt (constant-time tag check)
 *   X25519, P-256     mbedtls_ecdh_gen_public / mbedtls_ecdh_compute_shared on an mbedtls_ecp_group loaded
 *                     with MBEDTLS_ECP_DP_CURVE25519 / MBEDTLS_ECP_DP_SECP256R1 (blinded with the DRBG);
 *                     X25519 points and secrets are little-endian (RFC 7748; mbedTLS masks the top bit)
 *   ECDSA-P256 verify mbedtls_pk_parse_public_key (SPKI DER) + mbedtls_pk_verify over SHA-256
 *   RSA-OAEP encrypt  mbedtls_pk_parse_public_key + PKCS#1 v2.1 padding with SHA-256 (label empty, MGF1-SHA-256)
 *                     + mbedtls_pk_encrypt
 *
 * Heap: allocations of this port (contexts handed to the core) go through qs_malloc. mbedTLS's own allocations
 * (bignums, parsed keys) are routed there too when the library is built with MBEDTLS_PLATFORM_MEMORY (ESP-IDF
 * builds can enable it); Debian's libmbedcrypto is not, so qs_crypto_init then returns 1 ("heap not
 * accounted") and the node prints its warning. */
#include <stdint.h>
#include <string.h>

#include <mbedtls/version.h>
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#include <mbedtls/build_info.h>
#else
#include <mbedtls/config.h>
#endif
#include <mbedtls/asn1.h>
#include <mbedtls/chachapoly.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>

#include "../core/crypto_port.h"
#include "../core/port.h"
#include "../core/qs.h"
#include "warmup.h"

/* The main task and the workload task both draw from the one DRBG: it relies on the library's mutex
 * (ESP-IDF: CONFIG_MBEDTLS_THREADING_C with CONFIG_MBEDTLS_THREADING_PTHREAD). */
#if !defined(MBEDTLS_THREADING_C)
#error "crypto/mbedtls.c needs mbedTLS built with MBEDTLS_THREADING_C (the DRBG is shared between tasks)"
#endif
#if !defined(MBEDTLS_GCM_C) || !defined(MBEDTLS_CHACHAPOLY_C) || !defined(MBEDTLS_ECDH_C) || \
    !defined(MBEDTLS_ECDSA_C) || !defined(MBEDTLS_PK_PARSE_C) || !defined(MBEDTLS_PKCS1_V21) || \
    !defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED) || !defined(MBEDTLS_ECP_DP_SECP256R1_ENABLED) || \
    !defined(MBEDTLS_CTR_DRBG_C) || !defined(MBEDTLS_ENTROPY_C)
#error "crypto/mbedtls.c needs GCM, ChaCha20-Poly1305, ECDH, ECDSA, PK parse, PKCS#1 v2.1, Curve25519, P-256, CTR_DRBG"
#endif

/* ---- 2.28 vs 3.x -------------------------------------------------------------------------------------------- */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
/* 3.x: the *_ret SHA-256 functions were renamed to the plain names (which return int). */
#define SHA256_STARTS(c) mbedtls_sha256_starts((c), 0)
#define SHA256_UPDATE(c, d, n) mbedtls_sha256_update((c), (d), (n))
#define SHA256_FINISH(c, o) mbedtls_sha256_finish((c), (o))
#define SHA256_ONESHOT(d, n, o) mbedtls_sha256((d), (n), (o), 0)
#else
/* 2.28: the plain names are deprecated void wrappers; the *_ret variants report errors (e.g. a failing
 * hardware accelerator). */
#define SHA256_STARTS(c) mbedtls_sha256_starts_ret((c), 0)
#define SHA256_UPDATE(c, d, n) mbedtls_sha256_update_ret((c), (d), (n))
#define SHA256_FINISH(c, o) mbedtls_sha256_finish_ret((c), (o))
#define SHA256_ONESHOT(d, n, o) mbedtls_sha256_ret((d), (n), (o), 0)
#endif

static mbedtls_entropy_context g_entropy;
static mbedtls_ctr_drbg_context g_drbg;

/* ---- heap ------------------------------------------------------------------------------------------------ */
#if defined(MBEDTLS_PLATFORM_MEMORY) && !(defined(MBEDTLS_PLATFORM_CALLOC_MACRO) && defined(MBEDTLS_PLATFORM_FREE_MACRO))
#define QS_MBEDTLS_ACCOUNTED 1
static void *m_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = qs_malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

static void m_free(void *p)
{
    if (p) qs_free(p);
}
#endif

int qs_crypto_init(void)
{
    static const unsigned char pers[] = "qslab-node";
    int accounted = 0;
#ifdef QS_MBEDTLS_ACCOUNTED
    accounted = mbedtls_platform_set_calloc_free(m_calloc, m_free) == 0;
#endif
    mbedtls_entropy_init(&g_entropy);
    mbedtls_ctr_drbg_init(&g_drbg);
    if (mbedtls_ctr_drbg_seed(&g_drbg, mbedtls_entropy_func, &g_entropy, pers, sizeof pers - 1) != 0)
        return QS_E_CRYPTO;
    return accounted ? QS_OK : 1;   /* 1: works, but library heap is not accounted */
}

void qs_wipe(void *buf, size_t len)
{
    if (buf && len) mbedtls_platform_zeroize(buf, len);
}

int qs_crypto_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len) {   /* the DRBG serves at most MBEDTLS_CTR_DRBG_MAX_REQUEST bytes per call */
        size_t n = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        if (mbedtls_ctr_drbg_random(&g_drbg, p, n) != 0) return QS_E_CRYPTO;
        p += n;
        len -= n;
    }
    return QS_OK;
}

/* ---- SHA-256 ------------------------------------------------------------------------------------------------ */
struct qs_sha256_ctx {
    mbedtls_sha256_context c;
};

qs_sha256_ctx *qs_sha256_new(void)
{
    qs_sha256_ctx *h = qs_malloc(sizeof *h);
    if (!h) return NULL;
    mbedtls_sha256_init(&h->c);
    if (SHA256_STARTS(&h->c) != 0) { qs_sha256_free(h); return NULL; }
    return h;
}

int qs_sha256_update(qs_sha256_ctx *h, const void *data, size_t len)
{
    return SHA256_UPDATE(&h->c, data, len) == 0 ? QS_OK : QS_E_CRYPTO;
}

int qs_sha256_final(qs_sha256_ctx *h, uint8_t out[32])
{
    return SHA256_FINISH(&h->c, out) == 0 ? QS_OK : QS_E_CRYPTO;
}

qs_sha256_ctx *qs_sha256_dup(const qs_sha256_ctx *h)
{
    qs_sha256_ctx *d = qs_malloc(sizeof *d);
    if (!d) return NULL;
    mbedtls_sha256_init(&d->c);
    mbedtls_sha256_clone(&d->c, &h->c);
    return d;
}

void qs_sha256_free(qs_sha256_ctx *h)
{
    if (!h) return;
    mbedtls_sha256_free(&h->c);   /* zeroizes the state */
    qs_free(h);
}

int qs_sha256(const void *data, size_t len, uint8_t out[32])
{
    return SHA256_ONESHOT(data, len, out) == 0 ? QS_OK : QS_E_CRYPTO;
}

/* ---- HMAC-SHA-256 (RFC 2104; stack only) ------------------------------------------------------------------- */
int qs_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen, uint8_t out[32])
{
    uint8_t k[64], pad[64], inner[32];
    mbedtls_sha256_context c;
    int ok = 1;
    memset(k, 0, sizeof k);
    if (keylen > 64) ok = qs_sha256(key, keylen, k) == QS_OK;
    else if (keylen) memcpy(k, key, keylen);
    mbedtls_sha256_init(&c);
    for (int i = 0; i < 64; i++) pad[i] = (uint8_t)(k[i] ^ 0x36);
    ok = ok && SHA256_STARTS(&c) == 0 && SHA256_UPDATE(&c, pad, 64) == 0 &&
         (msglen == 0 || SHA256_UPDATE(&c, msg, msglen) == 0) && SHA256_FINISH(&c, inner) == 0;
    for (int i = 0; i < 64; i++) pad[i] = (uint8_t)(k[i] ^ 0x5c);
    ok = ok && SHA256_STARTS(&c) == 0 && SHA256_UPDATE(&c, pad, 64) == 0 && SHA256_UPDATE(&c, inner, 32) == 0 &&
         SHA256_FINISH(&c, out) == 0;
    mbedtls_sha256_free(&c);
    mbedtls_platform_zeroize(k, sizeof k);
    mbedtls_platform_zeroize(pad, sizeof pad);
    mbedtls_platform_zeroize(inner, sizeof inner);
    return ok ? QS_OK : QS_E_CRYPTO;
}

/* ---- AEAD --------------------------------------------------------------------------------------------------- */
struct qs_aead {
    int alg;
    union {
        mbedtls_gcm_context gcm;
        mbedtls_chachapoly_context cp;
    } u;
};

qs_aead *qs_aead_new(int alg, const uint8_t key[QS_AEAD_KEY_LEN])
{
    if (alg != QS_AEAD_AES256GCM && alg != QS_AEAD_CHACHA20POLY1305) return NULL;
    qs_aead *a = qs_malloc(sizeof *a);
    if (!a) return NULL;
    a->alg = alg;
    int rc;
    if (alg == QS_AEAD_AES256GCM) {
        mbedtls_gcm_init(&a->u.gcm);
        rc = mbedtls_gcm_setkey(&a->u.gcm, MBEDTLS_CIPHER_ID_AES, key, QS_AEAD_KEY_LEN * 8);
    } else {
        mbedtls_chachapoly_init(&a->u.cp);
        rc = mbedtls_chachapoly_setkey(&a->u.cp, key);
    }
    if (rc != 0) { qs_aead_free(a); return NULL; }
    return a;
}

int qs_aead_seal(qs_aead *a, const uint8_t nonce[QS_AEAD_NONCE_LEN], const uint8_t *aad, size_t aadlen,
                 const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[QS_AEAD_TAG_LEN])
{
    int rc;
    if (a->alg == QS_AEAD_AES256GCM)
        rc = mbedtls_gcm_crypt_and_tag(&a->u.gcm, MBEDTLS_GCM_ENCRYPT, len, nonce, QS_AEAD_NONCE_LEN, aad, aadlen,
                                       pt, ct, QS_AEAD_TAG_LEN, tag);
    else
        rc = mbedtls_chachapoly_encrypt_and_tag(&a->u.cp, len, nonce, aad, aadlen, pt, ct, tag);
    return rc == 0 ? QS_OK : QS_E_CRYPTO;
}

int qs_aead_open(qs_aead *a, const uint8_t nonce[QS_AEAD_NONCE_LEN], const uint8_t *aad, size_t aadlen,
                 const uint8_t *ct, size_t len, const uint8_t tag[QS_AEAD_TAG_LEN], uint8_t *pt)
{
    int rc, bad;
    /* Both compare the tag in constant time and zeroize pt when it does not verify. */
    if (a->alg == QS_AEAD_AES256GCM) {
        rc = mbedtls_gcm_auth_decrypt(&a->u.gcm, len, nonce, QS_AEAD_NONCE_LEN, aad, aadlen, tag, QS_AEAD_TAG_LEN,
                                      ct, pt);
        bad = rc == MBEDTLS_ERR_GCM_AUTH_FAILED;
    } else {
        rc = mbedtls_chachapoly_auth_decrypt(&a->u.cp, len, nonce, aad, aadlen, tag, ct, pt);
        bad = rc == MBEDTLS_ERR_CHACHAPOLY_AUTH_FAILED;
    }
    if (rc == 0) return QS_OK;
    if (len) mbedtls_platform_zeroize(pt, len);
    return bad ? QS_E_BADMAC : QS_E_CRYPTO;
}

void qs_aead_free(qs_aead *a)
{
    if (!a) return;
    if (a->alg == QS_AEAD_AES256GCM) mbedtls_gcm_free(&a->u.gcm);   /* both zeroize the key schedule */
    else mbedtls_chachapoly_free(&a->u.cp);
    mbedtls_platform_zeroize(a, sizeof *a);
    qs_free(a);
}

/* ---- key agreement ---------------------------------------------------------------------------------------- */
struct qs_kex {
    int x25519;
    mbedtls_ecp_group grp;
    mbedtls_mpi d;          /* private scalar (mbedtls_mpi_free zeroizes it) */
    mbedtls_ecp_point Q;
};

void qs_kex_free(qs_kex *k)
{
    if (!k) return;
    mbedtls_mpi_free(&k->d);
    mbedtls_ecp_point_free(&k->Q);
    mbedtls_ecp_group_free(&k->grp);
    mbedtls_platform_zeroize(k, sizeof *k);
    qs_free(k);
}

static int kex_keygen(mbedtls_ecp_group_id id, qs_kex **priv, uint8_t *pub, size_t publen)
{
    size_t n = 0;
    *priv = NULL;
    qs_kex *k = qs_malloc(sizeof *k);
    if (!k) return QS_E_OOM;
    k->x25519 = id == MBEDTLS_ECP_DP_CURVE25519;
    mbedtls_ecp_group_init(&k->grp);
    mbedtls_mpi_init(&k->d);
    mbedtls_ecp_point_init(&k->Q);
    /* For Curve25519 the library writes the little-endian u-coordinate (the format argument is ignored). */
    if (mbedtls_ecp_group_load(&k->grp, id) != 0 ||
        mbedtls_ecdh_gen_public(&k->grp, &k->d, &k->Q, mbedtls_ctr_drbg_random, &g_drbg) != 0 ||
        mbedtls_ecp_point_write_binary(&k->grp, &k->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &n, pub, publen) != 0 ||
        n != publen) {
        qs_kex_free(k);
        return QS_E_CRYPTO;
    }
    *priv = k;
    return QS_OK;
}

/* Peer point import + validation (P-256: on the curve; X25519: the library rejects the known low-order points)
 * and the blinded scalar multiplication. Any failure is QS_E_DECODE, as in the OpenSSL port. */
static int kex_derive(qs_kex *k, const uint8_t *peer, size_t len, uint8_t shared[32])
{
    mbedtls_ecp_point P;
    mbedtls_mpi z;
    int rc = QS_E_DECODE;
    mbedtls_ecp_point_init(&P);
    mbedtls_mpi_init(&z);
    if (mbedtls_ecp_point_read_binary(&k->grp, &P, peer, len) == 0 && mbedtls_ecp_check_pubkey(&k->grp, &P) == 0 &&
        mbedtls_ecdh_compute_shared(&k->grp, &z, &P, &k->d, mbedtls_ctr_drbg_random, &g_drbg) == 0 &&
        (k->x25519 ? mbedtls_mpi_write_binary_le(&z, shared, 32) : mbedtls_mpi_write_binary(&z, shared, 32)) == 0) {
        /* X25519: refuse the all-zero secret (RFC 7748 §6.1), checked without an early exit. */
        uint8_t acc = 0;
        for (int i = 0; i < 32; i++) acc |= shared[i];
        if (acc != 0) rc = QS_OK;
        else mbedtls_platform_zeroize(shared, 32);
    }
    mbedtls_mpi_free(&z);   /* zeroizes */
    mbedtls_ecp_point_free(&P);
    return rc;
}

int qs_x25519_keygen(qs_kex **priv, uint8_t pub[32])
{
    return kex_keygen(MBEDTLS_ECP_DP_CURVE25519, priv, pub, 32);
}

int qs_x25519_derive(qs_kex *priv, const uint8_t peer[32], uint8_t shared[32])
{
    if (!priv->x25519) return QS_E_DECODE;
    return kex_derive(priv, peer, 32, shared);
}

int qs_p256_keygen(qs_kex **priv, uint8_t pub[65])
{
    int rc = kex_keygen(MBEDTLS_ECP_DP_SECP256R1, priv, pub, 65);
    if (rc == QS_OK && pub[0] != 0x04) { qs_kex_free(*priv); *priv = NULL; return QS_E_CRYPTO; }
    return rc;
}

int qs_p256_derive(qs_kex *priv, const uint8_t peer[65], uint8_t shared[32])
{
    if (priv->x25519 || peer[0] != 0x04) return QS_E_DECODE;
    return kex_derive(priv, peer, 65, shared);
}

/* ---- public keys from SPKI DER -------------------------------------------------------------------------------- */
/* mbedtls_pk_parse_public_key ignores bytes after the SubjectPublicKeyInfo (and tries PEM first when the buffer
 * ends in NUL): require the buffer to be exactly one DER SEQUENCE, like d2i_PUBKEY + the trailing-bytes check. */
static int spki_parse(mbedtls_pk_context *pk, const uint8_t *spki, size_t len)
{
    unsigned char *p = (unsigned char *)spki;
    size_t l = 0;
    if (len == 0 || mbedtls_asn1_get_tag(&p, spki + len, &l, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0 ||
        l != (size_t)(spki + len - p))
        return -1;
    return mbedtls_pk_parse_public_key(pk, spki, len) == 0 ? 0 : -1;
}

static mbedtls_ecp_group_id pk_group(const mbedtls_pk_context *pk)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03050000
    return mbedtls_ecp_keypair_get_group_id(mbedtls_pk_ec(*pk));
#elif MBEDTLS_VERSION_NUMBER >= 0x03000000
    return mbedtls_pk_ec(*pk)->MBEDTLS_PRIVATE(grp).id;   /* 3.0-3.4: no accessor yet */
#else
    return mbedtls_pk_ec(*pk)->grp.id;
#endif
}

int qs_ecdsa_p256_verify(const uint8_t *spki, size_t spki_len, const uint8_t *msg, size_t msglen,
                         const uint8_t *sig, size_t siglen)
{
    mbedtls_pk_context pk;
    uint8_t h[32];
    int rc;
    mbedtls_pk_init(&pk);
    if (spki_parse(&pk, spki, spki_len) != 0 || mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY ||
        pk_group(&pk) != MBEDTLS_ECP_DP_SECP256R1)
        rc = QS_E_DECODE;
    else if (qs_sha256(msg, msglen, h) != QS_OK)
        rc = QS_E_CRYPTO;
    else   /* DER signature; trailing bytes after it are refused (MBEDTLS_ERR_PK_SIG_LEN_MISMATCH) */
        rc = mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, h, sizeof h, sig, siglen) == 0 ? QS_OK : QS_E_AUTH;
    mbedtls_pk_free(&pk);
    return rc;
}

int qs_rsa_oaep_encrypt(const uint8_t *spki, size_t spki_len, const uint8_t *msg, size_t msglen,
                        uint8_t *out, size_t *outlen)
{
    mbedtls_pk_context pk;
    size_t n = 0;
    int rc = QS_E_CRYPTO;
    mbedtls_pk_init(&pk);
    if (spki_parse(&pk, spki, spki_len) != 0 || mbedtls_pk_get_type(&pk) != MBEDTLS_PK_RSA) {
        mbedtls_pk_free(&pk);
        return QS_E_DECODE;
    }
    /* OAEP: PKCS#1 v2.1 padding; the hash id is both the OAEP hash and the MGF1 hash; the label is empty. */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    int padded = mbedtls_rsa_set_padding(mbedtls_pk_rsa(pk), MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256) == 0;
#else
    mbedtls_rsa_set_padding(mbedtls_pk_rsa(pk), MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);   /* void in 2.28 */
    int padded = 1;
#endif
    if (padded && mbedtls_pk_get_len(&pk) <= *outlen &&
        mbedtls_pk_encrypt(&pk, msg, msglen, out, &n, *outlen, mbedtls_ctr_drbg_random, &g_drbg) == 0) {
        *outlen = n;
        rc = QS_OK;
    }
    mbedtls_pk_free(&pk);
    return rc;
}

/* ---- warm-up ------------------------------------------------------------------------------------------------- */
/* WARM_RSA_SPKI: warmup.h */

/* A fixed P-256 key (SPKI DER) and its ECDSA-SHA256 signature (DER) over "qslab warm-up". */
static const uint8_t WARM_EC_SPKI[] = {
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
  0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
  0x42, 0x00, 0x04, 0xe8, 0x55, 0xbd, 0xad, 0x1a, 0xb5, 0xcf, 0x84, 0xc8,
  0x31, 0x1e, 0x65, 0x4b, 0x31, 0x60, 0xef, 0x3b, 0x5d, 0xcf, 0x9c, 0x81,
  0x6e, 0xc7, 0x54, 0x11, 0xb2, 0x10, 0xd7, 0x92, 0x1d, 0x85, 0xbf, 0x68,
  0x89, 0x11, 0x3d, 0xb9, 0x3d, 0x0e, 0x25, 0x3b, 0xc6, 0x94, 0x96, 0xd0,
  0x75, 0x39, 0xa8, 0x09, 0x16, 0x67, 0x3d, 0x94, 0x6d, 0x96, 0x66, 0x09,
  0xd4, 0x8e, 0xfb, 0xbe, 0x44, 0x6d, 0x4c
};
static const uint8_t WARM_EC_SIG[] = {
  0x30, 0x46, 0x02, 0x21, 0x00, 0xde, 0xdb, 0x33, 0x4c, 0xd5, 0x14, 0x0f,
  0x0d, 0x3d, 0x75, 0x05, 0x55, 0x94, 0x06, 0x9a, 0x15, 0x4c, 0x8b, 0x0e,
  0x84, 0x77, 0x37, 0xbd, 0xe9, 0x22, 0xe2, 0xb2, 0xe9, 0x29, 0x9b, 0x40,
  0x42, 0x02, 0x21, 0x00, 0xbd, 0xb1, 0x6f, 0xbb, 0x74, 0xd3, 0xa3, 0x33,
  0xfd, 0x2b, 0x7f, 0x33, 0x43, 0x5b, 0x00, 0x03, 0x86, 0xd9, 0xb2, 0x58,
  0x03, 0xe2, 0x86, 0x28, 0x8d, 0xb8, 0x89, 0x50, 0xd2, 0x7d, 0x13, 0x2c
};

void qs_crypto_warmup(void)
{
    uint8_t out[512], pub[65], pub2[65], z[32];
    size_t n;
    qs_kex *a = NULL, *b = NULL;
    qs_warmup_common();
    if (qs_p256_keygen(&a, pub) == QS_OK && qs_p256_keygen(&b, pub2) == QS_OK) qs_p256_derive(a, pub2, z);
    qs_kex_free(a);
    qs_kex_free(b);
    static const char msg[] = "qslab warm-up";
    qs_ecdsa_p256_verify(WARM_EC_SPKI, sizeof WARM_EC_SPKI, (const uint8_t *)msg, sizeof msg - 1, WARM_EC_SIG,
                         sizeof WARM_EC_SIG);
    n = sizeof out;
    qs_rsa_oaep_encrypt(WARM_RSA_SPKI, sizeof WARM_RSA_SPKI, z, 32, out, &n);
    mbedtls_platform_zeroize(z, sizeof z);
    mbedtls_platform_zeroize(out, sizeof out);
}
