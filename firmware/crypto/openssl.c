/* qslab crypto port on OpenSSL 3 libcrypto (EVP APIs). Heap allocations of the library are routed into the
 * platform port's accounting (qs_malloc) so that an operation's "heap" figure includes them. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "../core/crypto_port.h"
#include "../core/port.h"
#include "../core/qs.h"
#include "warmup.h"

static EVP_MD *g_sha256;
static EVP_CIPHER *g_gcm;
static EVP_CIPHER *g_chacha;

/* ---- heap ------------------------------------------------------------------------------------------------ */
static void *m_malloc(size_t n, const char *file, int line)
{
    (void)file; (void)line;
    return qs_malloc(n);
}

static void *m_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file; (void)line;
    if (p == NULL) return qs_malloc(n);
    if (n == 0) { qs_free(p); return NULL; }
    return qs_realloc(p, n);
}

static void m_free(void *p, const char *file, int line)
{
    (void)file; (void)line;
    qs_free(p);
}

int qs_crypto_init(void)
{
    /* Must precede every other libcrypto call; returns 0 if the library already allocated. */
    int accounted = CRYPTO_set_mem_functions(m_malloc, m_realloc, m_free);
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    g_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    g_chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    if (!g_sha256 || !g_gcm || !g_chacha) return QS_E_CRYPTO;
    return accounted ? QS_OK : 1;   /* 1: works, but library heap is not accounted */
}

void qs_wipe(void *buf, size_t len)
{
    if (buf && len) OPENSSL_cleanse(buf, len);
}

int qs_crypto_random(void *buf, size_t len)
{
    if (len == 0) return QS_OK;
    return RAND_bytes((unsigned char *)buf, (int)len) == 1 ? QS_OK : QS_E_CRYPTO;
}

/* ---- SHA-256 ------------------------------------------------------------------------------------------------ */
qs_sha256_ctx *qs_sha256_new(void)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestInit_ex2(c, g_sha256, NULL) != 1) { EVP_MD_CTX_free(c); c = NULL; }
    return (qs_sha256_ctx *)c;
}

int qs_sha256_update(qs_sha256_ctx *h, const void *data, size_t len)
{
    return EVP_DigestUpdate((EVP_MD_CTX *)h, data, len) == 1 ? QS_OK : QS_E_CRYPTO;
}

int qs_sha256_final(qs_sha256_ctx *h, uint8_t out[32])
{
    unsigned n = 0;
    return EVP_DigestFinal_ex((EVP_MD_CTX *)h, out, &n) == 1 && n == 32 ? QS_OK : QS_E_CRYPTO;
}

qs_sha256_ctx *qs_sha256_dup(const qs_sha256_ctx *h)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_MD_CTX_copy_ex(c, (const EVP_MD_CTX *)h) != 1) { EVP_MD_CTX_free(c); c = NULL; }
    return (qs_sha256_ctx *)c;
}

void qs_sha256_free(qs_sha256_ctx *h) { EVP_MD_CTX_free((EVP_MD_CTX *)h); }

int qs_sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned n = 0;
    return EVP_Digest(data, len, out, &n, g_sha256, NULL) == 1 && n == 32 ? QS_OK : QS_E_CRYPTO;
}

/* ---- HMAC-SHA-256 (RFC 2104 over the prefetched digest: no per-call algorithm fetch) ------------------------- */
int qs_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t msglen, uint8_t out[32])
{
    uint8_t k[64], pad[64], inner[32];
    unsigned n = 0;
    int ok = 1;
    memset(k, 0, sizeof k);
    if (keylen > 64) ok = qs_sha256(key, keylen, k) == QS_OK;
    else if (keylen) memcpy(k, key, keylen);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    ok = ok && c != NULL;
    for (int i = 0; i < 64; i++) pad[i] = (uint8_t)(k[i] ^ 0x36);
    ok = ok && EVP_DigestInit_ex2(c, g_sha256, NULL) == 1 && EVP_DigestUpdate(c, pad, 64) == 1 &&
         (msglen == 0 || EVP_DigestUpdate(c, msg, msglen) == 1) && EVP_DigestFinal_ex(c, inner, &n) == 1;
    for (int i = 0; i < 64; i++) pad[i] = (uint8_t)(k[i] ^ 0x5c);
    ok = ok && EVP_DigestInit_ex2(c, g_sha256, NULL) == 1 && EVP_DigestUpdate(c, pad, 64) == 1 &&
         EVP_DigestUpdate(c, inner, 32) == 1 && EVP_DigestFinal_ex(c, out, &n) == 1;
    EVP_MD_CTX_free(c);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner, sizeof inner);
    return ok ? QS_OK : QS_E_CRYPTO;
}

/* ---- AEAD --------------------------------------------------------------------------------------------------- */
struct qs_aead {
    EVP_CIPHER_CTX *enc;
    EVP_CIPHER_CTX *dec;
};

qs_aead *qs_aead_new(int alg, const uint8_t key[QS_AEAD_KEY_LEN])
{
    const EVP_CIPHER *ci = alg == QS_AEAD_AES256GCM ? g_gcm : alg == QS_AEAD_CHACHA20POLY1305 ? g_chacha : NULL;
    if (!ci) return NULL;
    qs_aead *a = qs_malloc(sizeof *a);
    if (!a) return NULL;
    a->enc = EVP_CIPHER_CTX_new();
    a->dec = EVP_CIPHER_CTX_new();
    if (!a->enc || !a->dec || EVP_EncryptInit_ex2(a->enc, ci, key, NULL, NULL) != 1 ||
        EVP_DecryptInit_ex2(a->dec, ci, key, NULL, NULL) != 1) {
        qs_aead_free(a);
        return NULL;
    }
    return a;
}

int qs_aead_seal(qs_aead *a, const uint8_t nonce[QS_AEAD_NONCE_LEN], const uint8_t *aad, size_t aadlen,
                 const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[QS_AEAD_TAG_LEN])
{
    int n = 0, m = 0;
    if (len > 0x7FFFFFFF || aadlen > 0x7FFFFFFF) return QS_E_CRYPTO;
    if (EVP_EncryptInit_ex2(a->enc, NULL, NULL, nonce, NULL) != 1) return QS_E_CRYPTO;
    if (aadlen && EVP_EncryptUpdate(a->enc, NULL, &n, aad, (int)aadlen) != 1) return QS_E_CRYPTO;
    n = 0;
    if (len && EVP_EncryptUpdate(a->enc, ct, &n, pt, (int)len) != 1) return QS_E_CRYPTO;
    if (EVP_EncryptFinal_ex(a->enc, ct + n, &m) != 1) return QS_E_CRYPTO;
    if (EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, QS_AEAD_TAG_LEN, tag) != 1) return QS_E_CRYPTO;
    return QS_OK;
}

int qs_aead_open(qs_aead *a, const uint8_t nonce[QS_AEAD_NONCE_LEN], const uint8_t *aad, size_t aadlen,
                 const uint8_t *ct, size_t len, const uint8_t tag[QS_AEAD_TAG_LEN], uint8_t *pt)
{
    int n = 0, m = 0;
    uint8_t t[QS_AEAD_TAG_LEN];
    if (len > 0x7FFFFFFF || aadlen > 0x7FFFFFFF) return QS_E_CRYPTO;
    memcpy(t, tag, sizeof t);
    if (EVP_DecryptInit_ex2(a->dec, NULL, NULL, nonce, NULL) != 1) return QS_E_CRYPTO;
    if (EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, QS_AEAD_TAG_LEN, t) != 1) return QS_E_CRYPTO;
    if (aadlen && EVP_DecryptUpdate(a->dec, NULL, &n, aad, (int)aadlen) != 1) return QS_E_CRYPTO;
    n = 0;
    if (len && EVP_DecryptUpdate(a->dec, pt, &n, ct, (int)len) != 1) return QS_E_BADMAC;
    if (EVP_DecryptFinal_ex(a->dec, pt + n, &m) != 1) {
        if (len) OPENSSL_cleanse(pt, len);
        return QS_E_BADMAC;
    }
    return QS_OK;
}

void qs_aead_free(qs_aead *a)
{
    if (!a) return;
    EVP_CIPHER_CTX_free(a->enc);   /* cleanses the key schedule */
    EVP_CIPHER_CTX_free(a->dec);
    qs_free(a);
}

/* ---- key agreement ---------------------------------------------------------------------------------------- */
void qs_kex_free(qs_kex *k) { EVP_PKEY_free((EVP_PKEY *)k); }

/* validate: run the library's public-key check on the peer (P-256 points are already checked to be on the
 * curve when imported, and the curve has cofactor 1, so the costly full check is skipped there). */
static int derive(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t shared[32], int validate)
{
    size_t n = 32;
    int rc = QS_E_DECODE;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    if (!c) return QS_E_OOM;
    if (EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer_ex(c, peer, validate) == 1 &&
        EVP_PKEY_derive(c, shared, &n) == 1 && n == 32)
        rc = QS_OK;
    EVP_PKEY_CTX_free(c);
    return rc;
}

int qs_x25519_keygen(qs_kex **priv, uint8_t pub[32])
{
    EVP_PKEY *pk = NULL;
    size_t n = 32;
    *priv = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    int ok = c && EVP_PKEY_keygen_init(c) == 1 && EVP_PKEY_generate(c, &pk) == 1 &&
             EVP_PKEY_get_raw_public_key(pk, pub, &n) == 1 && n == 32;
    EVP_PKEY_CTX_free(c);
    if (!ok) { EVP_PKEY_free(pk); return QS_E_CRYPTO; }
    *priv = (qs_kex *)pk;
    return QS_OK;
}

int qs_x25519_derive(qs_kex *priv, const uint8_t peer[32], uint8_t shared[32])
{
    EVP_PKEY *p = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, peer, 32);
    if (!p) return QS_E_DECODE;
    int rc = derive((EVP_PKEY *)priv, p, shared, 1);
    EVP_PKEY_free(p);
    return rc;
}

int qs_p256_keygen(qs_kex **priv, uint8_t pub[65])
{
    size_t n = 0;
    *priv = NULL;
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!pk) return QS_E_CRYPTO;
    if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, 65, &n) != 1 || n != 65 ||
        pub[0] != 0x04) {
        EVP_PKEY_free(pk);
        return QS_E_CRYPTO;
    }
    *priv = (qs_kex *)pk;
    return QS_OK;
}

/* P-256 public key from an uncompressed point (rejected when not on the curve). */
static EVP_PKEY *p256_public(const uint8_t *point, size_t len)
{
    EVP_PKEY *pk = NULL;
    char group[] = "prime256v1";
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, len);
    params[2] = OSSL_PARAM_construct_end();
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!c || EVP_PKEY_fromdata_init(c) != 1 || EVP_PKEY_fromdata(c, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) pk = NULL;
    EVP_PKEY_CTX_free(c);
    return pk;
}

int qs_p256_derive(qs_kex *priv, const uint8_t peer[65], uint8_t shared[32])
{
    if (peer[0] != 0x04) return QS_E_DECODE;
    EVP_PKEY *p = p256_public(peer, 65);
    if (!p) return QS_E_DECODE;
    int rc = derive((EVP_PKEY *)priv, p, shared, 0);
    EVP_PKEY_free(p);
    return rc;
}

/* ---- public keys from SPKI DER -------------------------------------------------------------------------------- */
/* The SPKI of every P-256 key is this 26-byte prefix followed by the 65-byte uncompressed point. */
static const uint8_t P256_SPKI_PREFIX[26] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00
};

static EVP_PKEY *spki_decode(const uint8_t *spki, size_t len)
{
    const unsigned char *p = spki;
    if (len > 0x7FFFFFFF) return NULL;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)len);
    if (pk && p != spki + len) { EVP_PKEY_free(pk); pk = NULL; }   /* trailing bytes */
    return pk;
}

int qs_ecdsa_p256_verify(const uint8_t *spki, size_t spki_len, const uint8_t *msg, size_t msglen,
                         const uint8_t *sig, size_t siglen)
{
    /* Exact P-256 SPKI shape: fast import without the generic decoder; anything else must still decode to an
     * EC key on prime256v1. */
    EVP_PKEY *pk = NULL;
    if (spki_len == 91 && memcmp(spki, P256_SPKI_PREFIX, sizeof P256_SPKI_PREFIX) == 0) {
        pk = p256_public(spki + 26, 65);
    } else {
        pk = spki_decode(spki, spki_len);
        char g[32];
        size_t gl = 0;
        if (pk && (!EVP_PKEY_is_a(pk, "EC") ||
                   EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof g, &gl) != 1 ||
                   (strcmp(g, "prime256v1") != 0 && strcmp(g, "P-256") != 0))) {
            EVP_PKEY_free(pk);
            pk = NULL;
        }
    }
    if (!pk) return QS_E_DECODE;
    int rc = QS_E_AUTH;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c) rc = QS_E_OOM;
    else if (EVP_DigestVerifyInit_ex(c, NULL, "SHA256", NULL, NULL, pk, NULL) != 1) rc = QS_E_CRYPTO;
    else if (EVP_DigestVerify(c, sig, siglen, msg, msglen) == 1) rc = QS_OK;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    return rc;
}

int qs_rsa_oaep_encrypt(const uint8_t *spki, size_t spki_len, const uint8_t *msg, size_t msglen,
                        uint8_t *out, size_t *outlen)
{
    EVP_PKEY *pk = spki_decode(spki, spki_len);
    if (!pk || !EVP_PKEY_is_a(pk, "RSA")) { EVP_PKEY_free(pk); return QS_E_DECODE; }
    int rc = QS_E_CRYPTO;
    size_t n = 0;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    if (c && EVP_PKEY_encrypt_init(c) == 1 && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
        EVP_PKEY_CTX_set_rsa_oaep_md_name(c, "SHA256", NULL) == 1 &&
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, "SHA256", NULL) == 1 &&
        EVP_PKEY_encrypt(c, NULL, &n, msg, msglen) == 1 && n <= *outlen &&
        EVP_PKEY_encrypt(c, out, &n, msg, msglen) == 1) {
        *outlen = n;
        rc = QS_OK;
    }
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(pk);
    return rc;
}

/* ---- warm-up ------------------------------------------------------------------------------------------------- */
/* WARM_RSA_SPKI: warmup.h */

void qs_crypto_warmup(void)
{
    uint8_t buf[512], out[512], k[32] = { 1 }, pub[65], pub2[65], z[32];
    size_t n;
    qs_kex *a = NULL, *b = NULL;
    qs_warmup_common();
    if (qs_p256_keygen(&a, pub) == QS_OK && qs_p256_keygen(&b, pub2) == QS_OK) qs_p256_derive(a, pub2, z);
    /* ECDSA: sign with a fresh key, verify through the port. */
    if (a) {
        unsigned char *der = NULL;
        int dl = i2d_PUBKEY((EVP_PKEY *)a, &der);
        size_t sl = sizeof buf;
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        if (dl > 0 && c && EVP_DigestSignInit_ex(c, NULL, "SHA256", NULL, NULL, (EVP_PKEY *)a, NULL) == 1 &&
            EVP_DigestSign(c, buf, &sl, k, sizeof k) == 1) {
            qs_ecdsa_p256_verify(der, (size_t)dl, k, sizeof k, buf, sl);
        }
        EVP_MD_CTX_free(c);
        OPENSSL_free(der);
    }
    qs_kex_free(a);
    qs_kex_free(b);
    n = sizeof out;
    qs_rsa_oaep_encrypt(WARM_RSA_SPKI, sizeof WARM_RSA_SPKI, z, 32, out, &n);
    OPENSSL_cleanse(z, sizeof z);
    OPENSSL_cleanse(buf, sizeof buf);
    OPENSSL_cleanse(out, sizeof out);
}
