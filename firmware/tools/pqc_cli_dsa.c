/* qslab-pqc: dsa.* commands (see pqc_cli.c).
 *
 *   dsa.keygen <44|65|87> <xi>                                   -> ok <pk> <sk>
 *   dsa.sign   <set> <iface> <ph> <sk> <msg-or-mu> <ctx> <rnd>   -> ok <sig> <attempts>
 *   dsa.verify <set> <iface> <ph> <pk> <msg-or-mu> <ctx> <sig>   -> ok 1 | ok 0
 *
 * iface: internal  Sign_internal / Verify_internal on M' = msg (ctx must be "-", ph "pure")
 *        external  ML-DSA.Sign / Verify (ph "pure": M' = 0 || |ctx| || ctx || msg) or HashML-DSA (ph = ACVP hash
 *                  name: M' = 1 || |ctx| || ctx || OID || PH(msg))
 *        mu        Sign_internal / Verify_internal on a 64-byte mu (ACVP externalMu; ctx "-", ph "pure")
 * ph:    pure | SHA2-224 | SHA2-256 | SHA2-384 | SHA2-512 | SHA2-512/224 | SHA2-512/256 | SHA3-224 | SHA3-256 |
 *        SHA3-384 | SHA3-512 | SHAKE-128 (256-bit output) | SHAKE-256 (512-bit output)
 * rnd:   32 bytes; "-" = 32 zero bytes (deterministic signing). attempts: rejection-loop iterations (decimal).
 *
 * Wrong argument counts: err E_ARGS; unknown parameter set: err E_PARAM; bad hex, wrong key/mu/rnd lengths,
 * contexts over 255 bytes, unknown iface/ph: err E_INPUT. A signature of the wrong length verifies as "ok 0"
 * (it is simply not a valid signature). */
#include <string.h>
#include "pqc_cli.h"
#include "../core/pqc/fips202.h"
#include "../core/pqc/mldsa.h"
#include "../core/pqc/sha2.h"

#define MSG_MAX (4u * 1024u * 1024u)   /* a request line is at most 8 MiB of hex */

enum { IF_INTERNAL, IF_EXTERNAL, IF_MU };

typedef struct {
    const char *name;
    uint8_t oid_last;   /* OID 2.16.840.1.101.3.4.2.x: DER 06 09 60 86 48 01 65 03 04 02 x */
    unsigned outlen;    /* digest bytes */
} prehash;

static const prehash PREHASHES[] = {
    { "SHA2-256", 0x01, 32 },     { "SHA2-384", 0x02, 48 },     { "SHA2-512", 0x03, 64 },
    { "SHA2-224", 0x04, 28 },     { "SHA2-512/224", 0x05, 28 }, { "SHA2-512/256", 0x06, 32 },
    { "SHA3-224", 0x07, 28 },     { "SHA3-256", 0x08, 32 },     { "SHA3-384", 0x09, 48 },
    { "SHA3-512", 0x0A, 64 },     { "SHAKE-128", 0x0B, 32 },    { "SHAKE-256", 0x0C, 64 },
};

/* SHA3 with a given rate (bytes); fips202.h has init functions for SHA3-256/512 only. */
static void sha3_rate(uint8_t *out, unsigned outlen, unsigned rate, const uint8_t *in, size_t len)
{
    qs_keccak k;
    memset(&k, 0, sizeof k);
    k.rate = rate;
    k.dsep = 0x06;
    qs_keccak_absorb(&k, in, len);
    qs_keccak_squeeze(&k, out, outlen);
    qs_pqc_wipe(&k, sizeof k);
}

/* PH(msg) for one of PREHASHES (index ph). */
static void prehash_msg(unsigned ph, uint8_t *out, const uint8_t *msg, size_t len)
{
    switch (PREHASHES[ph].oid_last) {
    case 0x01: qs_pqc_sha256(out, msg, len); break;
    case 0x02: qs_pqc_sha384(out, msg, len); break;
    case 0x03: qs_pqc_sha512(out, msg, len); break;
    case 0x04: qs_pqc_sha224(out, msg, len); break;
    case 0x05: qs_pqc_sha512_224(out, msg, len); break;
    case 0x06: qs_pqc_sha512_256(out, msg, len); break;
    case 0x07: sha3_rate(out, 28, 144, msg, len); break;
    case 0x08: qs_sha3_256(out, msg, len); break;
    case 0x09: sha3_rate(out, 48, 104, msg, len); break;
    case 0x0A: qs_sha3_512(out, msg, len); break;
    case 0x0B: qs_shake128(out, 32, msg, len); break;
    default: qs_shake256(out, 64, msg, len); break;
    }
}

static int set_lvl(const char *s)
{
    if (strcmp(s, "44") == 0) return 44;
    if (strcmp(s, "65") == 0) return 65;
    if (strcmp(s, "87") == 0) return 87;
    return 0;
}

static int arg_hex(FILE *out, const char *what, const char *s, uint8_t *buf, size_t cap, size_t *n)
{
    if (cli_hex(s, buf, cap, n) != 0) {
        fprintf(out, "err E_INPUT %s is not hex of at most %zu bytes", what, cap);
        return -1;
    }
    return 0;
}

static int arg_exact(FILE *out, const char *what, const char *s, uint8_t *buf, size_t cap, size_t want)
{
    size_t n;
    if (arg_hex(out, what, s, buf, cap, &n)) return -1;
    if (n != want) {
        fprintf(out, "err E_INPUT %s must be %zu bytes, got %zu", what, want, n);
        return -1;
    }
    return 0;
}

/* Builds the M' prefix for the external interface: 0|1 || |ctx| || ctx [|| OID]; returns its length. */
static size_t external_prefix(uint8_t *pre, int ph, const uint8_t *ctx, size_t ctxlen)
{
    static const uint8_t oid[10] = { 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02 };
    size_t n = 0;
    pre[n++] = ph < 0 ? 0 : 1;
    pre[n++] = (uint8_t)ctxlen;
    memcpy(pre + n, ctx, ctxlen);
    n += ctxlen;
    if (ph >= 0) {
        memcpy(pre + n, oid, sizeof oid);
        n += sizeof oid;
        pre[n++] = PREHASHES[ph].oid_last;
    }
    return n;
}

int pqc_cli_dsa(int argc, char **argv, FILE *out)
{
    static uint8_t msg[MSG_MAX], pk[QS_MLDSA_PK_MAX + 1], sk[QS_MLDSA_SK_MAX + 1], sig[QS_MLDSA_SIG_MAX + 1];
    uint8_t a[33], ctx[QS_MLDSA_CTX_MAX + 1], pre[2 + QS_MLDSA_CTX_MAX + 11], digest[64];
    const char *cmd = argv[0];
    int nargs;
    if (strcmp(cmd, "dsa.keygen") == 0) nargs = 3;
    else if (strcmp(cmd, "dsa.sign") == 0 || strcmp(cmd, "dsa.verify") == 0) nargs = 8;
    else return 0;
    if (argc != nargs) {
        fprintf(out, "err E_ARGS %s takes %d arguments", cmd, nargs - 1);
        return 1;
    }
    int lvl = set_lvl(argv[1]);
    if (!lvl) {
        fprintf(out, "err E_PARAM unknown ML-DSA parameter set %s (44, 65 or 87)", argv[1]);
        return 1;
    }
    const size_t pkn = qs_mldsa_pk_bytes(lvl), skn = qs_mldsa_sk_bytes(lvl), sign = qs_mldsa_sig_bytes(lvl);

    if (strcmp(cmd, "dsa.keygen") == 0) {
        if (arg_exact(out, "xi", argv[2], a, sizeof a, 32)) return 1;
        int rc = qs_mldsa_keygen(lvl, pk, sk, a);
        qs_pqc_wipe(a, sizeof a);
        if (rc != QS_PQC_OK) { fputs("err E_INTERNAL keygen failed", out); return 1; }
        fputs("ok", out);
        cli_put_hex(out, pk, pkn);
        cli_put_hex(out, sk, skn);
        qs_pqc_wipe(sk, sizeof sk);
        return 1;
    }

    /* dsa.sign / dsa.verify: <set> <iface> <ph> <key> <msg-or-mu> <ctx> <rnd|sig> */
    int iface;
    if (strcmp(argv[2], "internal") == 0) iface = IF_INTERNAL;
    else if (strcmp(argv[2], "external") == 0) iface = IF_EXTERNAL;
    else if (strcmp(argv[2], "mu") == 0) iface = IF_MU;
    else {
        fprintf(out, "err E_INPUT unknown interface %s (internal, external or mu)", argv[2]);
        return 1;
    }
    int ph = -1;
    if (strcmp(argv[3], "pure") != 0) {
        for (unsigned i = 0; i < sizeof PREHASHES / sizeof PREHASHES[0]; i++)
            if (strcmp(argv[3], PREHASHES[i].name) == 0) ph = (int)i;
        if (ph < 0) {
            fprintf(out, "err E_INPUT unknown pre-hash %s", argv[3]);
            return 1;
        }
        if (iface != IF_EXTERNAL) {
            fputs("err E_INPUT pre-hashing needs the external interface", out);
            return 1;
        }
    }
    int signing = strcmp(cmd, "dsa.sign") == 0;
    if (signing ? arg_exact(out, "sk", argv[4], sk, sizeof sk, skn) : arg_exact(out, "pk", argv[4], pk, sizeof pk, pkn))
        return 1;
    size_t mlen, ctxlen;
    if (arg_hex(out, iface == IF_MU ? "mu" : "message", argv[5], msg, sizeof msg, &mlen)) return 1;
    if (iface == IF_MU && mlen != QS_MLDSA_MU_BYTES) {
        fprintf(out, "err E_INPUT mu must be %u bytes, got %zu", QS_MLDSA_MU_BYTES, mlen);
        return 1;
    }
    if (arg_hex(out, "context", argv[6], ctx, QS_MLDSA_CTX_MAX, &ctxlen)) return 1;
    if (iface != IF_EXTERNAL && ctxlen) {
        fputs("err E_INPUT a context needs the external interface", out);
        return 1;
    }

    /* M' = pre || m */
    const uint8_t *m = msg, *mu = NULL;
    size_t prelen = 0;
    if (iface == IF_MU) {
        mu = msg;
        mlen = 0;
    } else if (iface == IF_EXTERNAL) {
        prelen = external_prefix(pre, ph, ctx, ctxlen);
        if (ph >= 0) {
            prehash_msg((unsigned)ph, digest, msg, mlen);
            m = digest;
            mlen = PREHASHES[ph].outlen;
        }
    }

    if (signing) {
        size_t rn;
        if (arg_hex(out, "rnd", argv[7], a, sizeof a, &rn)) return 1;
        if (rn == 0) memset(a, 0, 32);
        else if (rn != 32) {
            fprintf(out, "err E_INPUT rnd must be 32 bytes, got %zu", rn);
            return 1;
        }
        unsigned attempts = 0;
        int rc = qs_mldsa_sign_internal(lvl, sig, pre, prelen, mu ? NULL : m, mlen, mu, a, sk, &attempts);
        qs_pqc_wipe(sk, sizeof sk);
        qs_pqc_wipe(a, sizeof a);
        if (rc != QS_PQC_OK) {
            fprintf(out, "err E_INTERNAL signing failed (%d)", rc);
            return 1;
        }
        fputs("ok", out);
        cli_put_hex(out, sig, sign);
        fprintf(out, " %u", attempts);
    } else {
        size_t sn;
        if (arg_hex(out, "signature", argv[7], sig, sizeof sig, &sn)) return 1;
        int rc = qs_mldsa_verify_internal(lvl, sig, sn, pre, prelen, mu ? NULL : m, mlen, mu, pk);
        if (rc != QS_PQC_OK && rc != QS_PQC_EVERIFY) {
            fprintf(out, "err E_INTERNAL verification failed (%d)", rc);
            return 1;
        }
        fputs(rc == QS_PQC_OK ? "ok 1" : "ok 0", out);
    }
    return 1;
}
