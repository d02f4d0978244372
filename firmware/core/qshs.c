/* QSHS/1 client: handshake + record phase (HANDSHAKE.md). Never touches the serial line. */
#include "qshs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crypto_port.h"
#include "hkdf.h"
#include "port.h"
#include "pqc/fips202.h"   /* qs_pqc_wipe */
#include "pqc/mldsa.h"
#include "pqc/mlkem.h"
#include "qkdstore.h"
#include "qs.h"
#include "record.h"

enum { MT_CH = 1, MT_SH = 2, MT_CKE = 3, MT_FIN = 4, MT_REC = 5, MT_ALERT = 6, MT_CAUTH = 7 };
enum { AL_CLOSE = 0, AL_BADMAC = 1, AL_REPLAY = 2, AL_DECODE = 3, AL_HSFAIL = 4, AL_EPOCH = 5, AL_INTERNAL = 7 };

#define SH_MAX_BODY 16384u   /* client limit for a ServerHello body (mlkem1024-mldsa87: 8825 bytes) */
#define ALERT_MAX_BODY 512u
#define RSA_CT_MAX 512u
#define PREMASTER_LEN 48u
#define Z_MAX 96u            /* x25519mlkem768: ML-KEM ss | X25519 ss; QKD suites: qkd_key_0 | that */
#define CH_FIXED 45u         /* ClientHello frame without the share: 4 + 7 + 32 + 2 */
#define CH_FLAG_MUTUAL 0x01u
#define HELLO_FLAG_PLAINTEXT 0x02u   /* §12: ClientHello flags and ServerHello flags of suite `none` */

/* Suite table (HANDSHAKE.md §2, §10). */
enum { KX_RSA, KX_P256, KX_X25519, KX_MLKEM, KX_HYBRID, KX_NONE };
typedef struct {
    const char *name;
    uint8_t kex;       /* KX_* */
    uint8_t kem_k;     /* ML-KEM k (2, 3, 4); 0 = none */
    uint8_t sdsa;      /* server ML-DSA level; 0 = RSA / ECDSA */
    uint8_t cdsa;      /* client ML-DSA level under mutual authentication; 0 = not allowed */
    uint16_t cshare, sshare;
    uint8_t qkd;       /* QKD suite (§11) */
    uint8_t plain;     /* plaintext baseline `none` (§12) */
} suite_info;

static const suite_info SUITE_TAB[QS_SUITE_MAX + 1] = {
    { NULL, 0, 0, 0, 0, 0, 0, 0, 0 },
    { "rsa2048", KX_RSA, 0, 0, 0, 0, 0, 0, 0 },
    { "ecdhe-p256-ecdsa", KX_P256, 0, 0, 0, 65, 65, 0, 0 },
    { "x25519", KX_X25519, 0, 0, 0, 32, 32, 0, 0 },
    { "mlkem512-mldsa44", KX_MLKEM, 2, 44, 44, 800, 768, 0, 0 },
    { "mlkem768-mldsa65", KX_MLKEM, 3, 65, 65, 1184, 1088, 0, 0 },
    { "mlkem1024-mldsa87", KX_MLKEM, 4, 87, 87, 1568, 1568, 0, 0 },
    { "x25519mlkem768", KX_HYBRID, 3, 0, 65, 1184 + 32, 1088 + 32, 0, 0 },
    /* §11: suites 5 and 7 plus QKD keys; no mutual mode (the QKD key authenticates the node) */
    { "qkd-mlkem768", KX_MLKEM, 3, 65, 0, 1184, 1088, 1, 0 },
    { "qkd-x25519mlkem768", KX_HYBRID, 3, 0, 0, 1184 + 32, 1088 + 32, 1, 0 },
    /* §12: unauthenticated plaintext baseline: empty shares, no server key, records without AEAD */
    { "none", KX_NONE, 0, 0, 0, 0, 0, 0, 1 },
};

static const char *const AEADS[] = { NULL, "aes-256-gcm", "chacha20-poly1305" };
static const char *const ALERTS[] = { "close_notify", "bad_record_mac", "replay", "decode_error",
                                      "handshake_failure", "bad_epoch", "unsupported", "internal_error" };
static const char *const STEPS[QS_T_N] = { "connect", "keygen", "decap", "dh", "verify", "sign", "qkd", "kdf",
                                           "fin", "hs", "rec", "total" };

const char *qs_suite_name(int s) { return s >= 1 && s <= QS_SUITE_MAX ? SUITE_TAB[s].name : "?"; }
const char *qs_aead_name(int a) { return a >= 1 && a <= 2 ? AEADS[a] : "?"; }
const char *qs_alert_name(int c) { return c >= 0 && c <= 7 ? ALERTS[c] : "unknown"; }
int qs_suite_mutual_ok(int s) { return s >= 1 && s <= QS_SUITE_MAX && SUITE_TAB[s].cdsa != 0; }
int qs_suite_qkd(int s) { return s >= 1 && s <= QS_SUITE_MAX && SUITE_TAB[s].qkd != 0; }
int qs_suite_plaintext(int s) { return s >= 1 && s <= QS_SUITE_MAX && SUITE_TAB[s].plain != 0; }
uint32_t qs_qkd_upd(uint32_t records, uint32_t refresh) { return records && refresh ? (records - 1u) / refresh : 0u; }

const char *qs_step_name(int k, int suite)
{
    if (k < 0 || k >= QS_T_N) return "?";
    if (k == QS_T_DH && suite == QS_SUITE_RSA2048) return "encap";
    return STEPS[k];
}

int qs_suite_by_name(const char *n)
{
    for (int i = 1; i <= QS_SUITE_MAX; i++) if (strcmp(n, SUITE_TAB[i].name) == 0) return i;
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
    case QS_E_QKD_KEY: return "E_QKD_KEY";
    case QS_E_QKD_CONFIRM: return "E_QKD_CONFIRM";
    default: return "E_CRYPTO";
    }
}

/* Alert the client sends when it fails with `st` (-1: none). */
static int alert_for(int st)
{
    switch (st) {
    case QS_E_DECODE: case QS_E_ECHO: return AL_DECODE;
    case QS_E_AUTH: case QS_E_QKD_KEY: case QS_E_QKD_CONFIRM: return AL_HSFAIL;
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
    uint8_t z[Z_MAX];
    size_t zlen;
    uint8_t prk[32], master[32], cfin[32], sfin[32], c2s[32], s2c[32], mac[32];
    uint8_t seed[64];   /* ML-KEM keygen d | z, ML-DSA signing rnd */
} op_secrets;

static const char SIG_LABEL[] = "QSHS1 server signature";   /* 22 bytes, then 0x00 */
static const char CSIG_LABEL[] = "QSHS1 client signature";  /* 22 bytes, then 0x00 */
static const uint8_t DSA_CTX[5] = { 'Q', 'S', 'H', 'S', '1' };

/* ---- the node's ML-DSA key for mutual authentication: one per level, made once per boot (§10.3) ---------- */
typedef struct {
    uint8_t *pk, *sk;   /* qs_malloc'ed once, kept until the node restarts */
    uint8_t fp[32];     /* SHA-256(pk) */
    int ready;
} client_key;

static client_key g_ckey[3];   /* 44, 65, 87; only the workload task touches them */

static client_key *ckey_slot(int lvl) { return lvl == 44 ? &g_ckey[0] : lvl == 65 ? &g_ckey[1] : lvl == 87 ? &g_ckey[2] : NULL; }

static int ckey_make(int lvl)
{
    client_key *c = ckey_slot(lvl);
    if (!c) return QS_E_CRYPTO;
    if (c->ready) return QS_OK;
    const size_t pkl = qs_mldsa_pk_bytes(lvl), skl = qs_mldsa_sk_bytes(lvl);
    if (!c->pk) c->pk = qs_malloc(pkl);
    if (!c->sk) c->sk = qs_malloc(skl);
    if (!c->pk || !c->sk) return QS_E_OOM;
    uint8_t xi[32];
    int rc = qs_crypto_random(xi, sizeof xi) ? QS_E_CRYPTO : QS_OK;
    if (rc == QS_OK && qs_mldsa_keygen(lvl, c->pk, c->sk, xi) != QS_PQC_OK) rc = QS_E_CRYPTO;
    qs_pqc_wipe(xi, sizeof xi);
    if (rc == QS_OK && qs_sha256(c->pk, pkl, c->fp) != QS_OK) rc = QS_E_CRYPTO;
    if (rc != QS_OK) { qs_pqc_wipe(c->sk, skl); return rc; }
    c->ready = 1;
    return QS_OK;
}

int qs_hs_prepare(const qs_hs_params *P)
{
    if (!P->mutual || !qs_suite_mutual_ok(P->suite)) return QS_OK;
    return ckey_make(SUITE_TAB[P->suite].cdsa);
}

static void put_be16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void qs_hs_op(const qs_hs_params *P, qs_op_result *R)
{
    op_secrets S;
    memset(R, 0, sizeof *R);
    memset(&S, 0, sizeof S);
    conn C = { NULL, &R->hs_tx, &R->hs_rx, P->timeout_ms ? P->timeout_ms : QS_NET_TIMEOUT_MS, R };
    qs_kex *kex = NULL;
    qs_sha256_ctx *tr = NULL, *trc = NULL;
    uint8_t *sh = NULL, *sbuf = NULL, *rbuf = NULL, *pt = NULL, *pt2 = NULL;
    uint8_t *chbuf = NULL, *dk = NULL, *obuf = NULL, *sgbuf = NULL;
    uint8_t *qkeys = NULL;   /* QKD suites: 1 + qkd_upd keys taken from the store, epoch 0 first */
    size_t dklen = 0;
    const uint8_t *qids = NULL;
    char qid0[37] = "";
    int no_alert = 0;        /* the failure came from a server alert: do not answer it */
    qs_rl tx, rx;
    int have_tx = 0, have_rx = 0, in_hs = 1;
    uint8_t cr[32], sr[32], th[32], th2[32];
    uint8_t ch_small[CH_FIXED + 65 + 1];   /* classical suites; the PQ suites' ClientHello is on the heap */
    uint8_t *ch = ch_small;
    size_t chlen = 0, sharelen = 0;
    uint8_t out[4 + 2 + RSA_CT_MAX + 4 + 32];   /* [ClientKeyExchange] Finished; mutual: ClientAuth on the heap */
    uint8_t *ob = out;
    size_t outlen = 0;
    char err[96];
    int rc;
    const suite_info *SI = (P->suite >= 1 && P->suite <= QS_SUITE_MAX) ? &SUITE_TAB[P->suite] : &SUITE_TAB[0];
    const int kx = SI->kex;
    const int signed_sh = kx != KX_RSA;   /* the ServerHello carries a signature */
    const int mutual = P->mutual && SI->cdsa != 0;
    const size_t kem_ek = SI->kem_k ? qs_mlkem_ek_bytes(SI->kem_k) : 0;
    const size_t kem_ct = SI->kem_k ? qs_mlkem_ct_bytes(SI->kem_k) : 0;
    client_key *ck = NULL;
    const int qkd = SI->qkd;
    const uint32_t qupd = qkd ? qs_qkd_upd(P->records, P->refresh) : 0;
    const int plain = SI->plain;   /* §12 `none`: hello exchange, then records in the clear */

    if (!SI->name) { fail(R, QS_E_ARGS, "unknown suite %d", P->suite); goto done_early; }
    if (P->mutual && !mutual) { fail(R, QS_E_ARGS, "mutual authentication needs a post-quantum suite"); goto done_early; }
    if (mutual) {
        /* normally made by qs_hs_prepare before the burst; never inside the operation's clock */
        rc = ckey_make(SI->cdsa);
        if (rc) { fail(R, rc == QS_E_OOM ? rc : QS_E_CRYPTO, "client ML-DSA key generation failed"); goto done_early; }
        ck = ckey_slot(SI->cdsa);
        memcpy(R->ck, ck->fp, 32);
        R->have_ck = 1;
    }
    if (qkd && qupd > QS_QKD_MAX_UPD) { fail(R, QS_E_ARGS, "records/refresh: more than %u fresh QKD keys", QS_QKD_MAX_UPD); goto done_early; }
    sharelen = SI->cshare;
    chlen = CH_FIXED + sharelen + (mutual || plain ? 1u : 0u) + (qkd ? 1u : 0u);
    if (chlen > sizeof ch_small) {
        chbuf = qs_malloc(chlen);
        if (!chbuf) { fail(R, QS_E_OOM, "no memory for the ClientHello"); goto done_early; }
        ch = chbuf;
    }
    if (SI->kem_k) {
        dklen = qs_mlkem_dk_bytes(SI->kem_k);
        dk = qs_malloc(dklen);
        if (!dk) { fail(R, QS_E_OOM, "no memory for the ML-KEM key"); goto done_early; }
    }
    if (mutual) {
        /* ClientAuth frame | client Finished, sent in one write */
        const size_t cal = 4 + 2 + qs_mldsa_pk_bytes(SI->cdsa) + 2 + qs_mldsa_sig_bytes(SI->cdsa);
        obuf = qs_malloc(cal + 36);
        if (!obuf) { fail(R, QS_E_OOM, "no memory for ClientAuth"); goto done_early; }
        ob = obuf;
    }
done_early:;

    const uint64_t t0 = qs_now_ns();
    uint64_t ts, t_rec0 = 0;
    if (R->status != QS_OK) goto done;

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

    /* ---- keygen (rsa2048: premaster random; ML-KEM: key pair, ek straight into the ClientHello; none: nothing,
     * no step) ---- */
    if (!plain) {
        ts = qs_now_ns();
        uint8_t *share = ch + CH_FIXED;
        switch (kx) {
        case KX_X25519: rc = qs_x25519_keygen(&kex, share); break;
        case KX_P256: rc = qs_p256_keygen(&kex, share); break;
        case KX_RSA: rc = qs_crypto_random(S.z, PREMASTER_LEN); S.zlen = PREMASTER_LEN; break;
        default:
            rc = qs_crypto_random(S.seed, 64) ? QS_E_CRYPTO : QS_OK;
            if (rc == QS_OK && qs_mlkem_keygen(SI->kem_k, share, dk, S.seed, S.seed + 32) != QS_PQC_OK) rc = QS_E_CRYPTO;
            qs_pqc_wipe(S.seed, sizeof S.seed);
            if (rc == QS_OK && kx == KX_HYBRID) rc = qs_x25519_keygen(&kex, share + kem_ek);
            break;
        }
        step(R, QS_T_KEYGEN, ts);
        if (rc) { fail(R, rc == QS_E_OOM ? QS_E_OOM : QS_E_CRYPTO, "keygen failed"); goto done; }
    }

    /* ---- ClientHello ---- */
    hdr(ch, MT_CH, chlen - 4);
    ch[4] = 1;
    ch[5] = (uint8_t)P->suite;
    ch[6] = plain ? (uint8_t)QS_RL_PLAINTEXT : (uint8_t)P->aead;   /* §12: aead 0 = no AEAD */
    ch[7] = (uint8_t)(P->refresh >> 24);
    ch[8] = (uint8_t)(P->refresh >> 16);
    ch[9] = (uint8_t)(P->refresh >> 8);
    ch[10] = (uint8_t)P->refresh;
    memcpy(ch + 11, cr, 32);
    put_be16(ch + 43, sharelen);
    if (mutual) ch[CH_FIXED + sharelen] = CH_FLAG_MUTUAL;
    if (qkd) ch[CH_FIXED + sharelen] = (uint8_t)qupd;   /* §11.1 qkd_upd (no flags with the QKD suites) */
    if (plain) ch[CH_FIXED + sharelen] = HELLO_FLAG_PLAINTEXT;   /* §12: the client asks for plaintext, explicitly */
    if (!plain) {   /* none has no key schedule, hence no transcript */
        tr = qs_sha256_new();
        if (!tr || qs_sha256_update(tr, ch, chlen)) { fail(R, QS_E_OOM, "transcript hash"); goto done; }
    }
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
    if (qkd) {
        /* §11.2: ids_len(2) | key_IDs, 16 bytes each, epoch 0 first */
        if (end - p < 2) goto sh_trunc;
        size_t idslen = be16(p); p += 2;
        if ((size_t)(end - p) < idslen) goto sh_trunc;
        if (idslen != 16u * (1u + qupd)) {
            fail(R, QS_E_DECODE, "decode_error: ServerHello names %u key_IDs, expected %u", (unsigned)(idslen / 16), (unsigned)(1 + qupd));
            goto done;
        }
        qids = p; p += idslen;
        memcpy(R->qkd_id, qids, 16);
        R->qkd_n = 1 + qupd;
        qs_qkd_id_str(qids, qid0);
    }
    uint8_t sflags = 0;
    if (plain) {
        /* §12: flags(1) = plaintext, the server's explicit confirmation */
        if (end - p < 1) goto sh_trunc;
        sflags = *p++;
    }
    if (p != end) { fail(R, QS_E_DECODE, "decode_error: ServerHello has %u trailing bytes", (unsigned)(end - p)); goto done; }
    if (ssharelen != SI->sshare || (kx == KX_P256 && sshare[0] != 0x04)) {
        fail(R, QS_E_DECODE, "decode_error: server share of %u bytes for %s", (unsigned)ssharelen, SI->name);
        goto done;
    }
    if (!signed_sh && siglen != 0) { fail(R, QS_E_DECODE, "decode_error: rsa2048 ServerHello carries a signature"); goto done; }
    if (plain) {
        /* §12: no server key, no signature, no key schedule, no Finished: the handshake ends here */
        if (certlen != 0 || siglen != 0) { fail(R, QS_E_DECODE, "decode_error: none ServerHello carries a key or signature"); goto done; }
        if (sflags != HELLO_FLAG_PLAINTEXT) {
            fail(R, QS_E_DECODE, "decode_error: ServerHello does not confirm plaintext (flags 0x%02x)", (unsigned)sflags);
            goto done;
        }
        goto hs_done;
    }

    /* ---- verify: pin first, then the signature ---- */
    ts = qs_now_ns();
    {
        uint8_t h[32];
        rc = qs_sha256(cert, certlen, h);
        if (rc) { step(R, QS_T_VERIFY, ts); fail(R, QS_E_CRYPTO, "sha256 failed"); goto done; }
        if (!ct_equal(h, P->pin, 32)) { step(R, QS_T_VERIFY, ts); fail(R, QS_E_AUTH, "server key does not match the pin"); goto done; }
        if (signed_sh) {
            /* signed = label | 0x00 | SHA-256(ClientHello) | server_random | server_share (§3) */
            uint8_t head[2 + sizeof DSA_CTX + 22 + 1 + 32 + 32];   /* ML-DSA: M' prefix 0 | |ctx| | ctx */
            uint8_t *m = head + 2 + sizeof DSA_CTX;
            memcpy(m, SIG_LABEL, 22);
            m[22] = 0;
            rc = qs_sha256(ch, chlen, m + 23);
            memcpy(m + 55, sr, 32);
            if (rc == QS_OK && SI->sdsa) {
                /* pure ML-DSA with ctx "QSHS1": M' = 0 | 5 | "QSHS1" | signed; verified as pre | share (no copy) */
                head[0] = 0;
                head[1] = (uint8_t)sizeof DSA_CTX;
                memcpy(head + 2, DSA_CTX, sizeof DSA_CTX);
                if (certlen != qs_mldsa_pk_bytes(SI->sdsa)) {
                    step(R, QS_T_VERIFY, ts);
                    fail(R, QS_E_AUTH, "server key is not an ML-DSA-%d public key", SI->sdsa);
                    goto done;
                }
                int v = qs_mldsa_verify_internal(SI->sdsa, sig, siglen, head, sizeof head, sshare, ssharelen, NULL, cert);
                rc = v == QS_PQC_OK ? QS_OK : v == QS_PQC_EVERIFY ? QS_E_AUTH : QS_E_CRYPTO;
            } else if (rc == QS_OK) {
                /* ECDSA over one contiguous buffer: on the stack up to a P-256 share, else on the heap */
                const size_t ml = 87 + ssharelen;
                uint8_t small[87 + 65];
                uint8_t *msg = ml <= sizeof small ? small : (sgbuf = qs_malloc(ml));
                if (!msg) rc = QS_E_OOM;
                else {
                    memcpy(msg, m, 87);
                    memcpy(msg + 87, sshare, ssharelen);
                    rc = qs_ecdsa_p256_verify(cert, certlen, msg, ml, sig, siglen);
                }
                qs_free(sgbuf);
                sgbuf = NULL;
            }
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

    /* ---- key agreement / key transport / decapsulation ---- */
    if (kx == KX_MLKEM || kx == KX_HYBRID) {
        ts = qs_now_ns();
        rc = qs_mlkem_decaps(SI->kem_k, S.z, sshare, dk) == QS_PQC_OK ? QS_OK : QS_E_CRYPTO;
        S.zlen = 32;
        qs_pqc_wipe(dk, dklen);
        step(R, QS_T_DECAP, ts);
        if (rc) { fail(R, QS_E_CRYPTO, "ML-KEM decapsulation failed"); goto done; }
    }
    if (kx != KX_MLKEM) {
        ts = qs_now_ns();
        if (kx == KX_X25519) { rc = qs_x25519_derive(kex, sshare, S.z); S.zlen = 32; }
        else if (kx == KX_HYBRID) { rc = qs_x25519_derive(kex, sshare + kem_ct, S.z + 32); S.zlen = 64; }
        else if (kx == KX_P256) { rc = qs_p256_derive(kex, sshare, S.z); S.zlen = 32; }
        else {
            size_t ctlen = RSA_CT_MAX;
            rc = qs_rsa_oaep_encrypt(cert, certlen, S.z, PREMASTER_LEN, out + 6, &ctlen);
            if (rc == QS_OK) {
                hdr(out, MT_CKE, 2 + ctlen);
                put_be16(out + 4, ctlen);
                outlen = 6 + ctlen;
            }
        }
        step(R, QS_T_DH, ts);
        qs_kex_free(kex);
        kex = NULL;
        if (rc) {
            if (rc == QS_E_DECODE)
                fail(R, QS_E_AUTH, signed_sh ? "invalid server key share" : "server key is not an RSA SPKI");
            else fail(R, rc == QS_E_OOM ? rc : QS_E_CRYPTO, "%s failed", signed_sh ? "key agreement" : "RSA-OAEP encryption");
            goto done;
        }
    }
    if (outlen && qs_sha256_update(tr, out, outlen)) { fail(R, QS_E_CRYPTO, "transcript hash"); goto done; }

    /* ---- qkd (§11): take the named keys out of the store, each used once ---- */
    if (qkd) {
        ts = qs_now_ns();
        size_t missing = 0;
        qkeys = qs_malloc(QS_QKD_KEY_BYTES * (1u + qupd));
        rc = qkeys ? qs_qkd_take(qids, 1u + qupd, qkeys, &missing) : QS_E_OOM;
        step(R, QS_T_QKD, ts);
        if (rc == QS_E_OOM) { fail(R, rc, "no memory for %u QKD keys", (unsigned)(1 + qupd)); goto done; }
        if (rc) {
            char u[37];
            qs_qkd_id_str(qids + 16 * missing, u);
            fail(R, QS_E_QKD_KEY, "unknown QKD key_ID %s (epoch %u)", u, (unsigned)missing);
            goto done;
        }
    }

    /* ---- sign (mutual): ClientAuth = pk | ML-DSA(client_signed), client_signed over CH | SH (§10.3) ---- */
    if (mutual) {
        ts = qs_now_ns();
        const size_t pkl = qs_mldsa_pk_bytes(SI->cdsa), sgl = qs_mldsa_sig_bytes(SI->cdsa);
        uint8_t cs[22 + 1 + 32];
        memcpy(cs, CSIG_LABEL, 22);
        cs[22] = 0;
        trc = qs_sha256_dup(tr);
        rc = trc ? qs_sha256_final(trc, cs + 23) : QS_E_OOM;
        qs_sha256_free(trc);
        trc = NULL;
        if (rc == QS_OK) rc = qs_crypto_random(S.seed, QS_MLDSA_RND_BYTES) ? QS_E_CRYPTO : QS_OK;
        if (rc == QS_OK) {
            hdr(ob, MT_CAUTH, 2 + pkl + 2 + sgl);
            put_be16(ob + 4, pkl);
            memcpy(ob + 6, ck->pk, pkl);
            put_be16(ob + 6 + pkl, sgl);
            if (qs_mldsa_sign(SI->cdsa, ob + 8 + pkl, cs, sizeof cs, DSA_CTX, sizeof DSA_CTX, S.seed, ck->sk, NULL) != QS_PQC_OK)
                rc = QS_E_CRYPTO;
        }
        qs_pqc_wipe(S.seed, sizeof S.seed);
        if (rc == QS_OK) {
            outlen = 8 + pkl + sgl;
            rc = qs_sha256_update(tr, ob, outlen);
        }
        step(R, QS_T_SIGN, ts);
        if (rc) { fail(R, rc == QS_E_OOM ? rc : QS_E_CRYPTO, "ML-DSA signature failed"); goto done; }
    }

    /* ---- key schedule ---- */
    ts = qs_now_ns();
    trc = qs_sha256_dup(tr);
    rc = trc ? qs_sha256_final(trc, th) : QS_E_OOM;
    qs_sha256_free(trc);
    trc = NULL;
    if (rc == QS_OK && qkd) {
        /* §11.3 CatKDF (timed as qkd): IKM = qkd_key_0 | Z, salt = cr | sr,
         * info = SHA-256(u32 16 | "QSHS1 qkd master" | u32 32 | TH | u32 16 | key_ID_0) */
        step(R, QS_T_KDF, ts);
        ts = qs_now_ns();
        uint8_t ctx[32], salt[64];
        static const uint8_t L16[4] = { 0, 0, 0, 16 }, L32[4] = { 0, 0, 0, 32 };
        qs_sha256_ctx *h = qs_sha256_new();
        rc = h ? QS_OK : QS_E_OOM;
        if (rc == QS_OK) rc = qs_sha256_update(h, L16, 4);
        if (rc == QS_OK) rc = qs_sha256_update(h, "QSHS1 qkd master", 16);
        if (rc == QS_OK) rc = qs_sha256_update(h, L32, 4);
        if (rc == QS_OK) rc = qs_sha256_update(h, th, 32);
        if (rc == QS_OK) rc = qs_sha256_update(h, L16, 4);
        if (rc == QS_OK) rc = qs_sha256_update(h, qids, 16);
        if (rc == QS_OK) rc = qs_sha256_final(h, ctx);
        qs_sha256_free(h);
        memcpy(salt, cr, 32);
        memcpy(salt + 32, sr, 32);
        /* IKM = qkd_key_0 | Z: Z moves up by 32 bytes inside S.z (Z_MAX leaves room) */
        if (rc == QS_OK) {
            memmove(S.z + 32, S.z, S.zlen);
            memcpy(S.z, qkeys, 32);
            rc = qs_hkdf_extract(salt, 64, S.z, 32 + S.zlen, S.prk);
        }
        qs_wipe(qkeys, 32);
        qs_wipe(S.z, sizeof S.z);
        if (rc == QS_OK) rc = qs_hkdf_expand(S.prk, 32, ctx, 32, S.master, 32);
        qs_wipe(S.prk, sizeof S.prk);
        step(R, QS_T_QKD, ts);
        ts = qs_now_ns();
    } else if (rc == QS_OK) {
        uint8_t salt[64];
        memcpy(salt, cr, 32);
        memcpy(salt + 32, sr, 32);
        rc = qs_hkdf_extract(salt, 64, S.z, S.zlen, S.prk);
        qs_wipe(S.z, sizeof S.z);
        if (rc == QS_OK) rc = qs_hkdf_expand2(S.prk, 32, (const uint8_t *)"QSHS1 master", 12, th, 32, S.master, 32);
        qs_wipe(S.prk, sizeof S.prk);
    }
    qs_wipe(S.z, sizeof S.z);
    if (rc == QS_OK) rc = qs_hkdf_expand_label(S.master, "QSHS1 c fin", S.cfin, 32);
    if (rc == QS_OK) rc = qs_hkdf_expand_label(S.master, "QSHS1 s fin", S.sfin, 32);
    if (rc == QS_OK) rc = qs_hkdf_expand_label(S.master, "QSHS1 c2s", S.c2s, 32);
    if (rc == QS_OK) rc = qs_hkdf_expand_label(S.master, "QSHS1 s2c", S.s2c, 32);
    qs_wipe(S.master, sizeof S.master);
    step(R, QS_T_KDF, ts);
    if (rc) { fail(R, rc == QS_E_OOM ? rc : QS_E_CRYPTO, "key schedule failed"); goto done; }

    /* ---- client Finished ---- */
    ts = qs_now_ns();
    rc = qs_hmac_sha256(S.cfin, 32, th, 32, ob + outlen + 4);
    qs_wipe(S.cfin, sizeof S.cfin);
    if (rc == QS_OK) {
        hdr(ob + outlen, MT_FIN, 32);
        rc = qs_sha256_update(tr, ob + outlen, 36);
        outlen += 36;
    }
    if (rc == QS_OK) rc = qs_sha256_final(tr, th2);
    step(R, QS_T_FIN, ts);
    if (rc) { fail(R, QS_E_CRYPTO, "Finished failed"); goto done; }
    if (c_send(&C, ob, outlen)) goto done;

    /* ---- server Finished ---- */
    uint32_t flen;
    uint8_t fin[32];
    if (recv_hdr(&C, MT_FIN, 32, &flen, "Finished")) {
        if (qkd && R->status == QS_E_ALERT && strncmp(R->msg, "alert 4 ", 8) == 0) {
            /* §11.5: the server rejected our Finished — its QKD key differs from ours */
            R->status = QS_E_QKD_CONFIRM;
            snprintf(R->msg, sizeof R->msg, "key confirmation failed (QKD key %s): server alert handshake_failure", qid0);
            no_alert = 1;
        }
        goto done;
    }
    if (flen != 32) { fail(R, QS_E_DECODE, "decode_error: Finished body of %u bytes", (unsigned)flen); goto done; }
    if (c_recv(&C, fin, 32, "Finished")) goto done;
    ts = qs_now_ns();
    rc = qs_hmac_sha256(S.sfin, 32, th2, 32, S.mac);
    qs_wipe(S.sfin, sizeof S.sfin);
    int fin_ok = rc == QS_OK && ct_equal(S.mac, fin, 32);
    qs_wipe(S.mac, sizeof S.mac);
    step(R, QS_T_FIN, ts);
    if (rc) { fail(R, QS_E_CRYPTO, "Finished failed"); goto done; }
    if (!fin_ok) {
        if (qkd) fail(R, QS_E_QKD_CONFIRM, "key confirmation failed (QKD key %s): server Finished does not verify", qid0);
        else fail(R, QS_E_AUTH, "server Finished does not verify");
        goto done;
    }
hs_done:
    R->t_ns[QS_T_HS] = qs_now_ns() - t0;
    R->t_set |= 1u << QS_T_HS;
    in_hs = 0;

    /* ---- record phase ---- */
    C.tx = &R->rec_tx;
    C.rx = &R->rec_rx;
    t_rec0 = qs_now_ns();
    if (P->records > 0) {
        /* none (§12): the same framing, sequence numbers, epochs and replay window, records in the clear */
        const int rl_aead = plain ? QS_RL_PLAINTEXT : P->aead;
        const size_t ovh = qs_rl_overhead(rl_aead), B = P->bytes, blen = B + ovh, flen2 = 4 + blen;
        rc = qs_rl_init(&tx, rl_aead, P->refresh, S.c2s);
        if (rc == QS_OK) { have_tx = 1; rc = qs_rl_init(&rx, rl_aead, P->refresh, S.s2c); }
        if (rc == QS_OK) have_rx = 1;
        if (rc == QS_OK && qkd) {
            /* §11.4: the fresh QKD keys of epochs 1..qkd_upd, mixed into both directions' ratchets */
            tx.qkd = rx.qkd = qkeys + 32;
            tx.qkd_n = rx.qkd_n = qupd;
        }
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
            if (rlen < ovh) { fail(R, QS_E_DECODE, "decode_error: record body of %u bytes", (unsigned)rlen); goto done; }
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
            if (ptlen != B || memcmp(pt, pt2, B) != 0) {
                /* none: the byte-for-byte comparison is the only integrity check, so a mismatch counts as a bad MAC */
                if (plain) fail(R, QS_E_BADMAC, "echo of record %u (seq %llu) differs from what was sent (plaintext, no MAC)", (unsigned)i, (unsigned long long)seq);
                else fail(R, QS_E_ECHO, "echo of record %u differs from what was sent", (unsigned)i);
                goto done;
            }
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
        int al = no_alert ? -1 : alert_for(R->status);
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
    qs_free(chbuf);
    qs_free(obuf);
    qs_free(sgbuf);
    if (dk) { qs_pqc_wipe(dk, dklen); qs_free(dk); }
    if (qkeys) { qs_wipe(qkeys, QS_QKD_KEY_BYTES * (1u + qupd)); qs_free(qkeys); }
    qs_free(sbuf);
    qs_free(rbuf);
    if (pt) { qs_wipe(pt, P->bytes); qs_free(pt); }
    if (pt2) { qs_wipe(pt2, P->bytes); qs_free(pt2); }
    qs_wipe(&S, sizeof S);
}
