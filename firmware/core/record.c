#include "record.h"

#include <string.h>

#include "hkdf.h"
#include "qs.h"

int qs_rl_next_secret(const uint8_t cur[32], uint8_t next[32])
{
    return qs_hkdf_expand_label(cur, "QSHS1 upd", next, 32);
}

int qs_rl_next_secret_qkd(const uint8_t cur[32], const uint8_t qkd_key[32], uint8_t next[32])
{
    uint8_t salt[32];
    int rc = qs_hkdf_expand_label(cur, "QSHS1 upd", salt, 32);
    if (rc == QS_OK) rc = qs_hkdf_extract(salt, 32, qkd_key, 32, next);
    qs_wipe(salt, sizeof salt);
    return rc;
}

/* secret of epoch e + 1 from the secret of epoch e (QKD keys mixed in when the direction has them). */
static int step_secret(const qs_rl *rl, uint64_t e, const uint8_t cur[32], uint8_t next[32])
{
    if (!rl->qkd) return qs_rl_next_secret(cur, next);
    if (e + 1 > rl->qkd_n) return QS_E_EPOCH;
    return qs_rl_next_secret_qkd(cur, rl->qkd + 32u * e, next);
}

int qs_rl_epoch_keys(const uint8_t secret[32], uint8_t key[32], uint8_t iv[12])
{
    int rc = qs_hkdf_expand_label(secret, "QSHS1 key", key, 32);
    if (rc == QS_OK) rc = qs_hkdf_expand_label(secret, "QSHS1 iv", iv, 12);
    return rc;
}

/* Keys for `secret`: a fresh AEAD context and iv. */
static int make_keys(int aead, const uint8_t secret[32], qs_aead **ctx, uint8_t iv[12])
{
    uint8_t key[32];
    int rc = qs_rl_epoch_keys(secret, key, iv);
    *ctx = NULL;
    if (rc == QS_OK) {
        *ctx = qs_aead_new(aead, key);
        if (*ctx == NULL) rc = QS_E_CRYPTO;
    }
    qs_wipe(key, sizeof key);
    return rc;
}

size_t qs_rl_overhead(int aead) { return aead == QS_RL_PLAINTEXT ? QS_RL_HDR : QS_RL_OVERHEAD; }

int qs_rl_init(qs_rl *rl, int aead, uint32_t refresh, const uint8_t secret0[32])
{
    memset(rl, 0, sizeof *rl);
    rl->aead = aead;
    rl->refresh = refresh;
    if (aead == QS_RL_PLAINTEXT) return QS_OK;   /* suite none: no keys */
    memcpy(rl->secret, secret0, 32);
    int rc = make_keys(aead, rl->secret, &rl->ctx, rl->iv);
    if (rc) qs_rl_free(rl);
    return rc;
}

void qs_rl_free(qs_rl *rl)
{
    if (rl->ctx) qs_aead_free(rl->ctx);
    rl->ctx = NULL;
    qs_wipe(rl->secret, sizeof rl->secret);
    qs_wipe(rl->iv, sizeof rl->iv);
}

static uint64_t epoch_of(uint64_t seq, uint32_t refresh) { return refresh ? seq / refresh : 0; }

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static void make_nonce(uint8_t nonce[12], const uint8_t iv[12], const uint8_t hdr[QS_RL_HDR])
{
    for (int i = 0; i < 4; i++) nonce[i] = iv[i];
    for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(iv[4 + i] ^ hdr[2 + i]);
}

/* Advance this direction to `epoch` (> current), wiping the passed secrets. */
static int ratchet_to(qs_rl *rl, uint16_t epoch)
{
    while (rl->epoch < epoch) {
        uint8_t next[32];
        int rc = step_secret(rl, rl->epoch, rl->secret, next);
        if (rc) { qs_wipe(next, sizeof next); return rc; }
        memcpy(rl->secret, next, 32);
        qs_wipe(next, sizeof next);
        rl->epoch++;
    }
    qs_aead_free(rl->ctx);
    rl->ctx = NULL;
    return make_keys(rl->aead, rl->secret, &rl->ctx, rl->iv);
}

int qs_rl_seal(qs_rl *rl, const uint8_t *pt, size_t len, uint8_t *body)
{
    uint64_t seq = rl->next_seq;
    uint64_t e = epoch_of(seq, rl->refresh);
    if (e > QS_RL_MAX_EPOCH || seq == UINT64_MAX) return QS_E_CRYPTO;
    if (rl->aead == QS_RL_PLAINTEXT) {
        /* epoch(2) | seq(8) | plaintext: no tag, and a new epoch changes no key (refresh is a no-op) */
        memmove(body + QS_RL_HDR, pt, len);
        put_be(body, e, 2);
        put_be(body + 2, seq, 8);
        rl->epoch = (uint16_t)e;
        rl->next_seq = seq + 1;
        return QS_OK;
    }
    if (e != rl->epoch || rl->ctx == NULL) {
        int rc = ratchet_to(rl, (uint16_t)e);
        if (rc) return rc;
    }
    put_be(body, e, 2);
    put_be(body + 2, seq, 8);
    uint8_t nonce[12];
    make_nonce(nonce, rl->iv, body);
    int rc = qs_aead_seal(rl->ctx, nonce, body, QS_RL_HDR, pt, len, body + QS_RL_HDR, body + QS_RL_HDR + len);
    if (rc) return rc;
    rl->next_seq = seq + 1;
    return QS_OK;
}

int qs_rl_open(qs_rl *rl, const uint8_t *body, size_t blen, uint8_t *pt, size_t *ptlen, uint64_t *seq_out)
{
    const int plain = rl->aead == QS_RL_PLAINTEXT;
    if (blen < qs_rl_overhead(rl->aead)) return QS_E_DECODE;
    uint64_t epoch = get_be(body, 2);
    uint64_t seq = get_be(body + 2, 8);
    if (seq_out) *seq_out = seq;
    if (epoch != epoch_of(seq, rl->refresh)) return QS_E_EPOCH;
    /* replay window */
    if (rl->any && seq <= rl->high) {
        uint64_t d = rl->high - seq;
        if (d >= 64 || (rl->bitmap >> d) & 1u) return QS_E_REPLAY;
    }
    if (epoch < rl->epoch) return QS_E_EPOCH;   /* retired epoch: its keys are gone */
    if (rl->qkd && epoch > rl->qkd_n) return QS_E_EPOCH;   /* beyond the last QKD key */

    size_t len = blen - qs_rl_overhead(rl->aead);
    uint8_t nonce[12];
    int rc;
    if (plain) {
        /* no tag to check: the record is taken as it is (the echo comparison is the caller's integrity check) */
        memmove(pt, body + QS_RL_HDR, len);
        if (epoch > rl->epoch) rl->epoch = (uint16_t)epoch;   /* refresh is a no-op: only the counter moves */
        rc = QS_OK;
    } else if (epoch > rl->epoch) {
        /* tentative keys for the later epoch, committed only once the tag has checked */
        uint8_t sec[32], iv[12];
        qs_aead *ctx = NULL;
        memcpy(sec, rl->secret, 32);
        rc = QS_OK;
        for (uint64_t e = rl->epoch; e < epoch && rc == QS_OK; e++) {
            uint8_t next[32] = { 0 };
            rc = step_secret(rl, e, sec, next);
            memcpy(sec, next, 32);
            qs_wipe(next, sizeof next);
        }
        if (rc == QS_OK) rc = make_keys(rl->aead, sec, &ctx, iv);
        if (rc == QS_OK) {
            make_nonce(nonce, iv, body);
            rc = qs_aead_open(ctx, nonce, body, QS_RL_HDR, body + QS_RL_HDR, len, body + QS_RL_HDR + len, pt);
        }
        if (rc == QS_OK) {
            qs_aead_free(rl->ctx);
            rl->ctx = ctx;
            memcpy(rl->secret, sec, 32);
            memcpy(rl->iv, iv, 12);
            rl->epoch = (uint16_t)epoch;
        } else if (ctx) {
            qs_aead_free(ctx);
        }
        qs_wipe(sec, sizeof sec);
        qs_wipe(iv, sizeof iv);
    } else {
        make_nonce(nonce, rl->iv, body);
        rc = qs_aead_open(rl->ctx, nonce, body, QS_RL_HDR, body + QS_RL_HDR, len, body + QS_RL_HDR + len, pt);
    }
    if (rc) return rc;
    /* advance the window */
    if (!rl->any) {
        rl->any = 1;
        rl->high = seq;
        rl->bitmap = 1;
    } else if (seq > rl->high) {
        uint64_t shift = seq - rl->high;
        rl->bitmap = shift >= 64 ? 1 : (rl->bitmap << shift) | 1;
        rl->high = seq;
    } else {
        rl->bitmap |= (uint64_t)1 << (rl->high - seq);
    }
    *ptlen = len;
    return QS_OK;
}
