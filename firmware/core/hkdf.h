/* HKDF-SHA-256 (RFC 5869) on top of the crypto port's HMAC. */
#ifndef QS_HKDF_H
#define QS_HKDF_H

#include <stddef.h>
#include <stdint.h>

#define QS_HKDF_MAX_INFO 128

int qs_hkdf_extract(const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen, uint8_t prk[32]);
/* info may be given in two parts (info1 | info2; info2 may be NULL); infolen total <= QS_HKDF_MAX_INFO,
 * outlen <= 255 * 32. */
int qs_hkdf_expand2(const uint8_t *prk, size_t prklen, const uint8_t *info1, size_t info1len,
                    const uint8_t *info2, size_t info2len, uint8_t *out, size_t outlen);
int qs_hkdf_expand(const uint8_t *prk, size_t prklen, const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen);
/* HKDF-Expand with an ASCII label as info. */
int qs_hkdf_expand_label(const uint8_t *secret, const char *label, uint8_t *out, size_t outlen);

#endif
