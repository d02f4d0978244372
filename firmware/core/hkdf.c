#include "hkdf.h"

#include <string.h>

#include "crypto_port.h"
#include "qs.h"

int qs_hkdf_extract(const uint8_t *salt, size_t saltlen, const uint8_t *ikm, size_t ikmlen, uint8_t prk[32])
{
    static const uint8_t zero[32] = { 0 };
    if (salt == NULL || saltlen == 0) { salt = zero; saltlen = sizeof zero; }
    return qs_hmac_sha256(salt, saltlen, ikm, ikmlen, prk);
}

int qs_hkdf_expand2(const uint8_t *prk, size_t prklen, const uint8_t *info1, size_t info1len,
                    const uint8_t *info2, size_t info2len, uint8_t *out, size_t outlen)
{
    uint8_t buf[32 + QS_HKDF_MAX_INFO + 1];
    uint8_t t[32];
    size_t infolen = info1len + info2len;
    if (infolen > QS_HKDF_MAX_INFO || outlen > 255u * 32u || (info1len && !info1) || (info2len && !info2))
        return QS_E_CRYPTO;
    size_t off = 0, tlen = 0;
    int rc = QS_OK;
    for (unsigned i = 1; off < outlen; i++) {
        size_t n = 0;
        memcpy(buf, t, tlen);
        n += tlen;
        if (info1len) memcpy(buf + n, info1, info1len);
        n += info1len;
        if (info2len) memcpy(buf + n, info2, info2len);
        n += info2len;
        buf[n++] = (uint8_t)i;
        rc = qs_hmac_sha256(prk, prklen, buf, n, t);
        if (rc) break;
        tlen = 32;
        size_t k = outlen - off < 32 ? outlen - off : 32;
        memcpy(out + off, t, k);
        off += k;
    }
    qs_wipe(buf, sizeof buf);
    qs_wipe(t, sizeof t);
    return rc;
}

int qs_hkdf_expand(const uint8_t *prk, size_t prklen, const uint8_t *info, size_t infolen, uint8_t *out, size_t outlen)
{
    return qs_hkdf_expand2(prk, prklen, info, infolen, NULL, 0, out, outlen);
}

int qs_hkdf_expand_label(const uint8_t *secret, const char *label, uint8_t *out, size_t outlen)
{
    return qs_hkdf_expand2(secret, 32, (const uint8_t *)label, strlen(label), NULL, 0, out, outlen);
}
