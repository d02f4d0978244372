/* QSHS/1 client: handshake + record phase (HANDSHAKE.md). Never touches the serial line. */
#include "qshs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crypto_port.h"
#include "hkdf.h"
#include "port.h"
#include "qs.h"
#include "record.h"

enum { MT_CH = 1, MT_SH = 2, MT_CKE = 3, MT_FIN = 4, MT_REC = 5, MT_ALERT = 6 };
enum { AL_CLOSE = 0, AL_BADMAC = 1, AL_REPLAY = 2, AL_DECODE = 3, AL_HSFAIL = 4, AL_EPOCH = 5, AL_INTERNAL = 7 };

#define SH_MAX_BODY 8192u    /* client limit for a ServerHello body (RSA-4096 SPKI + signature fit easily) */
#define ALERT_MAX_BODY 512u
#define RSA_CT_MAX 512u
#define PREMASTER_LEN 48u

static const char *const SUITES[] = { NULL, "rsa2048", "ecdhe-p256-ecdsa", "x25519" };
static const char *const AEADS[] = { NULL, "aes-256-gcm", "chacha20-poly1305" };
static const char *const ALERTS[] = { "close_notify", "bad_record_mac", "replay", "decode_error",
                                      "handshake_failure", "bad_epoch", "unsupported", "internal_error" };

const char *qs_suite_name(int s) { return s >= 1 && s <= 3 ? SUITES[s] : "?"; }
const char *qs_aead_name(int a) { return a >= 1 && a <= 2 ? AEADS[a] : "?"; }
const char *qs_alert_name(int c) { return c >= 0 && c <= 7 ? ALERTS[c] : "unknown"; }

int qs_suite_by_name(const char *n)
{
    for (int i = 1; i <= 3; i++) if (strcmp(n, SUITES[i]) == 0) return i;
    return 0;
}

int qs_aead_by_name(const char *n)
{
    for (int i = 1; i <= 2; i++) if (strcmp(n, AEADS[i]) == 0) return i;
    return 0;
}

const char *qs_status_code(int st)
{
    switch (st) {
    case QS_OK: return "";
    case QS_E_NET: case QS_E_CLOSED: case QS_E_DECODE: return "E_NET";
    case QS_E_TIMEOUT: return "E_TIMEOUT";
    case QS_E_AUTH: return "E_AUTH";
    case QS_E_ALERT: return "E_ALERT";
    case QS_E_BADMAC: case QS_E_EPOCH: case QS_E_ECHO: return "E_RECORD";
    case QS_E_REPLAY: return "E_REPLAY";
    case QS_E_OOM: return "E_OOM";
    case QS_E_BUSY: return "E_BUSY";
    case QS_E_ARGS: return "E_ARGS";
    default: return "E_CRYPTO";
    }
}

/* Alert the client sends when it fails with `st` (-1: none). */
static int alert_for(int st)
{
    switch (st) {
    case QS_E_DECODE: case QS_E_ECHO: return AL_DECODE;
    case QS_E_AUTH: return AL_HSFAIL;
    case QS_E_BADMAC: return AL_BADMAC;
    case QS_E_REPLAY: return AL_REPLAY;
    case QS_E_EPOCH: return AL_EPOCH;
    case QS_E_CRYPTO: case QS_E_OOM: return AL_INTERNAL;
    default: return -1;
    }
}

typedef struct {
    qs_sock *s;
    uint64_t *tx, *rx;
    uint32_t timeout;
    qs_op_result *r;
} conn;

static int fail(qs_op_result *r, int st, const char *fmt, ...)
{
    if (r->status == QS_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->msg, sizeof r->msg, fmt, ap);
        va_end(ap);
        /* printable ASCII only, no quotes or backslashes: the event line stays short whatever went in */
        for (char *q = r->msg; *q; q++)
            if (*q < 0x20 || *q > 0x7E || *q == '"' || *q == '\\') *q = '?';
        r->status = st;
    }
    return st;
}

static int c_send(conn *c, const void *buf, size_t n)
{
    int rc = qs_tcp_send(c->s, buf, n, c->timeout);
    if (rc == QS_OK) { *c->tx += n; return QS_OK; }
    if (rc == QS_E_CLOSED) return fail(c->r, rc, "peer closed the connection (send)");
    if (rc == QS_E_TIMEOUT) return fail(c->r, rc, "send stalled for %u ms", (unsigned)c->timeout);
    return fail(c->r, QS_E_NET, "send: %s", qs_tcp_error(c->s));
}

static int c_recv(conn *c, void *buf, size_t n, const char *what)
{
    int rc = qs_tcp_recv(c->s, buf, n, c->timeout);
    if (rc == QS_OK) { *c->rx += n; return QS_OK; }
    if (rc == QS_E_CLOSED) return fail(c->r, rc, "peer closed the connection (waiting for %s)", what);
    if (rc == QS_E_TIMEOUT) return fail(c->r, rc, "no %s from the server within %u ms", what, (unsigned)c->timeout);
    return fail(c->r, QS_E_NET, "recv: %s", qs_tcp_error(c->s));
}

/* Next message header; it must be of type `want` with a body of at most maxlen bytes. An Alert is read and
 * turned into QS_E_ALERT (or QS_E_CLOSED for close_notify). */
static int recv_hdr(conn *c, int want, uint32_t maxlen, uint32_t *len, const char *what)
{
    uint8_t h[4];
    int rc = c_recv(c, h, 4, what);
    if (rc) return rc;
    uint32_t l = ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
    if (h[0] == MT_ALERT && want != MT_ALERT) {
        uint8_t body[ALERT_MAX_BODY];
        if (l < 1 || l > ALERT_MAX_BODY) return fail(c->r, QS_E_DECODE, "decode_error: Alert body of %u bytes", (unsigned)l);
        rc = c_recv(c, body, l, "Alert");
        if (rc) return rc;
        char reason[64];
        size_t n = 0;
        for (uint32_t i = 1; i < l && n < sizeof reason - 1; i++)
            reason[n++] = (body[i] >= 0x20 && body[i] < 0x7F) ? (char)body[i] : '?';
        reason[n] = '\0';
        if (body[0] == AL_CLOSE)
            return fail(c->r, QS_E_CLOSED, "peer sent close_notify (waiting for %s)", what);
        return fail(c->r, QS_E_ALERT, "alert %u (%s)%s%s", (unsigned)body[0], qs_alert_name(body[0]),
                    n ? ": " : "", reason);
    }
    if (h[0] != want)
        return fail(c->r, QS_E_DECODE, "decode_error: message type %u while waiting for %s", (unsigned)h[0], what);
    if (l > maxlen) return fail(c->r, QS_E_DECODE, "decode_error: %s body of %u bytes", what, (unsigned)l);
    *len = l;
    return QS_OK;
}

static void hdr(uint8_t *p, int type, size_t len)
{
    p[0] = (uint8_t)type;
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
}

static void step(qs_op_result *r, int k, uint64_t ts)
{
    r->t_ns[k] += qs_now_ns() - ts;
    r->t_set |= 1u << k;
}

static int ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++) d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(((unsigned)p[0] << 8) | p[1]); }

/* All secrets of one operation, wiped in one place. */
typedef struct {
    uint8_t z[PREMASTER_LEN];
    size_t zlen;
    uint8_t prk[32], master[32], cfin[32], sfin[32], c2s[32], s2c[32], mac[32];
} op_secrets;

static const char SIG_LABEL[] = "QSHS1 server signature";   /* 22 bytes, then 0x00 */

void qs_hs_op(const qs_hs_params *P, qs_op_result *R)
{
    op_secrets S;
    memset(R, 0, sizeof *R);
    memset(&S, 0, sizeof S);
    conn C = { NULL, &R->hs_tx, &R->hs_rx, P->timeout_ms ? P->timeout_ms : QS_NET_TIMEOUT_MS, R };
    qs_kex *kex = NULL;
    qs_sha256_ctx *tr = NULL, *trc = NULL;
    uint8_t *sh = NULL, *sbuf = NULL, *rbuf = NULL, *pt = NULL, *pt2 = NULL;
    qs_rl tx, rx;
    int have_tx = 0, have_rx = 0, in_hs = 1;
    uint8_t cr[32], sr[32], th[32], th2[32];
    uint8_t ch[4 + 7 + 32 + 2 + 65];
    uint8_t share[65];
    size_t chlen, sharelen = 0;
    uint8_t out[4 + 2 + RSA_CT_MAX + 4 + 32];   /* [ClientKeyExchange] Finished */
    size_t outlen = 0;
    char err[96];
    int rc;
    const int ecdhe = P->suite == QS_SUITE_ECDHE_P256 || P->suite == QS_SUITE_X25519;

    const uint64_t t0 = qs_now_ns();
    uint64_t ts, t_rec0 = 0;

    if (qs_crypto_random(cr, sizeof cr)) { fail(R, QS_E_CRYPTO, "random failed"); goto done; }
    memcpy(R->cr, cr, 8);
    R->have_cr = 1;

    /* ---- connect ---- */
    ts = qs_now_ns();
    err[0] = '\0';
    rc = qs_tcp_connect(&C.s, P->host, P->port, C.timeout, err, sizeof err);
    step(R, QS_T_CONNECT, ts);
    if (rc) {
        fail(R, rc == QS_E_TIMEOUT ? QS_E_TIMEOUT : QS_E_NET, "connect %s:%u: %s", P->host, (unsigned)P->port,
             err[0] ? err : "failed");
        goto done;
    }

    /* ---- keygen (rsa2048: premaster random) ---- */
    ts = qs_now_ns();
    if (P->suite == QS_SUITE_X25519) { rc = qs_x25519_keygen(&kex, share); sharelen = 32; }
    else if (P->suite == QS_SUITE_ECDHE_P256) { rc = qs_p256_keygen(&kex, share); sharelen = 65; }
    else { rc = qs_crypto_random(S.z, PREMASTER_LEN); S.zlen = PREMASTER_LEN; }
    step(R, QS_T_KEYGEN, ts);
    if (rc) { fail(R, rc == QS_E_OOM ? QS_E_OOM : QS_E_CRYPTO, "keygen failed"); goto done; }

    /* ---- ClientHello ---- */
    chlen = 4 + 7 + 32 + 2 + sharelen;
    hdr(ch, MT_CH, chlen - 4);
    ch[4] = 1;
    ch[5] = (uint8_t)P->suite;
    ch[6] = (uint8_t)P->aead;
    ch[7] = (uint8_t)(P->refresh >> 24);
    ch[8] = (uint8_t)(P->refresh >> 16);
    ch[9] = (uint8_t)(P->refresh >> 8);
    ch[10] = (uint8_t)P->refresh;
    memcpy(ch + 11, cr, 32);
    ch[43] = (uint8_t)(sharelen >> 8);
    ch[44] = (uint8_t)sharelen;
    memcpy(ch + 45, share, sharelen);
    tr = qs_sha256_new();
    if (!tr || qs_sha256_update(tr, ch, chlen)) { fail(R, QS_E_OOM, "transcript hash"); goto done; }
    if (c_send(&C, ch, chlen)) goto done;

    /* ---- ServerHello ---- */
    uint32_t shlen;
    if (recv_hdr(&C, MT_SH, SH_MAX_BODY, &shlen, "ServerHello")) goto done;
    sh = qs_malloc(4 + (size_t)shlen);
    if (!sh) { fail(R, QS_E_OOM, "no memory for ServerHello"); goto done; }
    hdr(sh, MT_SH, shlen);
    if (c_recv(&C, sh + 4, shlen, "ServerHello")) goto done;
    const uint8_t *p = sh + 4, *end = sh + 4 + shlen;
    const uint8_t *sshare, *cert, *sig;
    size_t ssharelen, certlen, siglen;
    if (end - p < 34) goto sh_trunc;
    memcpy(sr, p, 32);
    p += 32;
    ssharelen = be16(p); p += 2;
    if ((size_t)(end - p) < ssharelen + 2) goto sh_trunc;
    sshare = p; p += ssharelen;
    certlen = be16(p); p += 2;
    if ((size_t)(end - p) < certlen + 2) goto sh_trunc;
    cert = p; p += certlen;
    siglen = be16(p); p += 2;
    if ((size_t)(end - p) < siglen) goto sh_trunc;
    sig = p; p += siglen;
    if (p != end) { fail(R, QS_E_DECODE, "decode_error: ServerHello has %u trailing bytes", (unsigned)(end - p)); goto done; }
    if (ssharelen != sharelen || (P->suite == QS_SUITE_ECDHE_P256 && sshare[0] != 0x04)) {
        fail(R, QS_E_DECODE, "decode_error: server share of %u bytes for %s", (unsigned)ssharelen, qs_suite_name(P->suite));
        goto done;
    }
    if (!ecdhe && siglen != 0) { fail(R, QS_E_DECODE, "decode_error: rsa2048 ServerHello carries a signature"); goto done; }

    /* ---- verify: pin first, then the signature ---- */
    ts = qs_now_ns();
    {
        uint8_t h[32];
        rc = qs_sha256(cert, certlen, h);
        if (rc) { step(R, QS_T_VERIFY, ts); fail(R, QS_E_CRYPTO, "sha256 failed"); goto done; }
        if (!ct_equal(h, P->pin, 32)) { step(R, QS_T_VERIFY, ts); fail(R, QS_E_AUTH, "server key does not match the pin"); goto done; }
        if (ecdhe) {
            uint8_t msg[22 + 1 + 32 + 32 + 65];
            size_t ml = 0;
            memcpy(msg, SIG_LABEL, 22); ml = 22;
            msg[ml++] = 0;
            rc = qs_sha256(ch, chlen, msg + ml); ml += 32;
            memcpy(msg + ml, sr, 32); ml += 32;
            memcpy(msg + ml, sshare, ssharelen); ml += ssharelen;
            if (rc == QS_OK) rc = qs_ecdsa_p256_verify(cert, certlen, msg, ml, sig, siglen);
            if (rc) {
                step(R, QS_T_VERIFY, ts);
                if (rc == QS_E_AUTH) fail(R, QS_E_AUTH, "server signature does not verify");
                else if (rc == QS_E_DECODE) fail(R, QS_E_AUTH, "server key is not a P-256 SPKI");
                else fail(R, rc == QS_E_OOM ? rc : QS_E_CRYPTO, "signature verification failed");
                goto done;
            }
        }
    }
    step(R, QS_T_VERIFY, ts);
    if (qs_sha256_update(tr, sh, 4 + (size_t)shlen)) { fail(R, QS_E_CRYPTO, "transcript hash"); goto done; }

    /* ---- key agreement / key transport ---- */
    ts = qs_now_ns();
    if (P->suite == QS_SUITE_X25519) { rc = qs_x25519_derive(kex, sshare, S.z); S.zlen = 32; }
    else if (P->suite == QS_SUITE_ECDHE_P256) { rc = qs_p256_derive(kex, sshare, S.z); S.zlen = 32; }
    else {
        size_t ctlen = RSA_CT_MAX;
        rc = qs_rsa_oaep_encrypt(cert, certlen, S.z, PREMASTER_LEN, out + 6, &ctlen);
        if (rc == QS_OK) {
            hdr(out, MT_CKE, 2 + ctlen);
            out[4] = (uint8_t)(ctlen >> 8);
            out[5] = (uint8_t)ctlen;
            outlen = 6 + ctlen;
        }
    }
    step(R, QS_T_DH, ts);
    qs_kex_free(kex);
    kex = NULL;
    if (rc) {
        if (rc == QS_E_DECODE)
            fail(R, QS_E_AUTH, ecdhe ? "invalid server key share" : "server key is not an RSA SPKI");
        else fail(R, rc == QS_E_OOM ? rc : QS_E_CRYPTO, "%s failed", ecdhe ? "key agreement" : "RSA-OAEP encryption");
        goto done;
    }
    if (outlen && qs_sha256_update(tr, out, outlen)) { fail(R, QS_E_CRYPTO, "transcript hash"); goto done; }

    /* ---- key schedule ---- */
    ts = qs_now_ns();
    trc = qs_sha256_dup(tr);
    rc = trc ? qs_sha256_final(trc, th) : QS_E_OOM;
    qs_sha256_free(trc);
    trc = NULL;
    if (rc == QS_OK) {
        uint8_t salt[64];
        memcpy(salt, cr, 32);
        memcpy(salt + 32, sr, 32);
        rc = qs_hkdf_extract(salt, 64, S.z, S.zlen, S.prk);
    }
    qs_wipe(S.z, sizeof S.z);
    if (rc == QS_OK) rc = qs_hkdf_expand2(S.prk, 32, (const uint8_t *)"QSHS1 master", 12, th, 32, S.master, 32);
    qs_wipe(S.prk, sizeof S.prk);
    if (rc == QS_OK) rc = qs_hkdf_expand_label(S.master, "QSHS1 c fin", S.cfin, 32);
    if (rc == QS_OK) rc = qs_hkdf_expand_label(S.master, "QSHS1 s fin", S.sfin, 32);
    if (rc == QS_OK) rc = qs_hkdf_expand_label(S.master, "QSHS1 c2s", S.c2s, 32);
    if (rc == QS_OK) rc = qs_hkdf_expand_label(S.master, "QSHS1 s2c", S.s2c, 32);
    qs_wipe(S.master, sizeof S.master);
    step(R, QS_T_KDF, ts);
    if (rc) { fail(R, rc == QS_E_OOM ? rc : QS_E_CRYPTO, "key schedule failed"); goto done; }

    /* ---- client Finished ---- */
    ts = qs_now_ns();
    rc = qs_hmac_sha256(S.cfin, 32, th, 32, out + outlen + 4);
    qs_wipe(S.cfin, sizeof S.cfin);
    if (rc == QS_OK) {
        hdr(out + outlen, MT_FIN, 32);
        rc = qs_sha256_update(tr, out + outlen, 36);
        outlen += 36;
    }
    if (rc == QS_OK) rc = qs_sha256_final(tr, th2);
    step(R, QS_T_FIN, ts);
    if (rc) { fail(R, QS_E_CRYPTO, "Finished failed"); goto done; }
    if (c_send(&C, out, outlen)) goto done;

    /* ---- server Finished ---- */
    uint32_t flen;
    uint8_t fin[32];
    if (recv_hdr(&C, MT_FIN, 32, &flen, "Finished")) goto done;
    if (flen != 32) { fail(R, QS_E_DECODE, "decode_error: Finished body of %u bytes", (unsigned)flen); goto done; }
    if (c_recv(&C, fin, 32, "Finished")) goto done;
    ts = qs_now_ns();
    rc = qs_hmac_sha256(S.sfin, 32, th2, 32, S.mac);
    qs_wipe(S.sfin, sizeof S.sfin);
    int fin_ok = rc == QS_OK && ct_equal(S.mac, fin, 32);
    qs_wipe(S.mac, sizeof S.mac);
    step(R, QS_T_FIN, ts);
    if (rc) { fail(R, QS_E_CRYPTO, "Finished failed"); goto done; }
    if (!fin_ok) { fail(R, QS_E_AUTH, "server Finished does not verify"); goto done; }
    R->t_ns[QS_T_HS] = qs_now_ns() - t0;
    R->t_set |= 1u << QS_T_HS;
    in_hs = 0;

    /* ---- record phase ---- */
    C.tx = &R->rec_tx;
    C.rx = &R->rec_rx;
    t_rec0 = qs_now_ns();
    if (P->records > 0) {
        const size_t B = P->bytes, blen = B + QS_RL_OVERHEAD, flen2 = 4 + blen;
        rc = qs_rl_init(&tx, P->aead, P->refresh, S.c2s);
        if (rc == QS_OK) { have_tx = 1; rc = qs_rl_init(&rx, P->aead, P->refresh, S.s2c); }
        if (rc == QS_OK) have_rx = 1;
        qs_wipe(S.c2s, sizeof S.c2s);
        qs_wipe(S.s2c, sizeof S.s2c);
        if (rc) { fail(R, rc == QS_E_OOM ? rc : QS_E_CRYPTO, "record keys failed"); goto done; }
        sbuf = qs_malloc(flen2);
        rbuf = qs_malloc(flen2);
        pt = qs_malloc(B);
        pt2 = qs_malloc(B);
        if (!sbuf || !rbuf || !pt || !pt2) { fail(R, QS_E_OOM, "no memory for %u-byte records", (unsigned)B); goto done; }
        for (uint32_t i = 0; i < P->records; i++) {
            for (size_t j = 0; j < B; j++) pt[j] = (uint8_t)(i * 131u + j);
            hdr(sbuf, MT_REC, blen);
            rc = qs_rl_seal(&tx, pt, B, sbuf + 4);
            if (rc) { fail(R, QS_E_CRYPTO, "record %u: seal failed", (unsigned)i); goto done; }
            if (c_send(&C, sbuf, flen2)) goto done;
            uint32_t rlen;
            if (recv_hdr(&C, MT_REC, (uint32_t)blen, &rlen, "echo record")) goto done;
            if (rlen < QS_RL_OVERHEAD) { fail(R, QS_E_DECODE, "decode_error: record body of %u bytes", (unsigned)rlen); goto done; }
            if (c_recv(&C, rbuf + 4, rlen, "echo record")) goto done;
            size_t ptlen = 0;
            uint64_t seq = 0;
            rc = qs_rl_open(&rx, rbuf + 4, rlen, pt2, &ptlen, &seq);
            switch (rc) {
            case QS_OK: break;
            case QS_E_BADMAC: fail(R, rc, "echo of record %u (seq %llu) failed authentication", (unsigned)i, (unsigned long long)seq); goto done;
            case QS_E_EPOCH: fail(R, rc, "echo of record %u (seq %llu) has a bad epoch", (unsigned)i, (unsigned long long)seq); goto done;
            case QS_E_REPLAY: fail(R, rc, "echo of record %u: seq %llu is a replay", (unsigned)i, (unsigned long long)seq); goto done;
            case QS_E_DECODE: fail(R, rc, "decode_error: short record"); goto done;
            default: fail(R, rc == QS_E_OOM ? rc : QS_E_CRYPTO, "record %u: open failed", (unsigned)i); goto done;
            }
            if (ptlen != B || memcmp(pt, pt2, B) != 0) { fail(R, QS_E_ECHO, "echo of record %u differs from what was sent", (unsigned)i); goto done; }
            R->recs++;
        }
    }
    R->t_ns[QS_T_REC] = qs_now_ns() - t_rec0;
    R->t_set |= 1u << QS_T_REC;
    R->t_ns[QS_T_TOTAL] = R->t_ns[QS_T_HS] + R->t_ns[QS_T_REC];
    R->t_set |= 1u << QS_T_TOTAL;
    {
        /* close_notify: counted in neither phase */
        static const uint8_t cn[5] = { MT_ALERT, 0, 0, 1, AL_CLOSE };
        (void)qs_tcp_send(C.s, cn, sizeof cn, C.timeout);
    }
    goto done;

sh_trunc:
    fail(R, QS_E_DECODE, "decode_error: ServerHello truncated");

done:
    if (R->status != QS_OK) {
        uint64_t now = qs_now_ns();
        if (in_hs) {
            R->t_ns[QS_T_HS] = now - t0;
            R->t_set |= 1u << QS_T_HS;
        } else {
            R->t_ns[QS_T_REC] = now - t_rec0;
            R->t_set |= 1u << QS_T_REC;
        }
        R->t_ns[QS_T_TOTAL] = R->t_ns[QS_T_HS] + R->t_ns[QS_T_REC];
        R->t_set |= 1u << QS_T_TOTAL;
        int al = alert_for(R->status);
        if (al >= 0 && C.s) {
            uint8_t a[5 + 100];
            size_t n = strlen(R->msg);
            if (n > 100) n = 100;
            hdr(a, MT_ALERT, 1 + n);
            a[4] = (uint8_t)al;
            memcpy(a + 5, R->msg, n);
            if (qs_tcp_send(C.s, a, 5 + n, 1000) == QS_OK) *C.tx += 5 + n;
        }
    }
    if (C.s) qs_tcp_close(C.s);
    qs_kex_free(kex);
    qs_sha256_free(tr);
    qs_sha256_free(trc);
    if (have_tx) qs_rl_free(&tx);
    if (have_rx) qs_rl_free(&rx);
    qs_free(sh);
    qs_free(sbuf);
    qs_free(rbuf);
    if (pt) { qs_wipe(pt, P->bytes); qs_free(pt); }
    if (pt2) { qs_wipe(pt2, P->bytes); qs_free(pt2); }
    qs_wipe(&S, sizeof S);
}
