/* qslab node: the `bench` command — a pqm4-style microbenchmark of the firmware's own ML-KEM / ML-DSA over
 * the protocol. Each iteration is timed with the node's cycle counter and monotonic clock, its stack high-water
 * measured by painting and its heap peak by the port's accounting; one `bench` event per iteration carries the
 * raw figures (the controller computes the statistics). Inputs are prepared outside the timed region. */
#include <stdio.h>
#include <string.h>

#include "crypto_port.h"
#include "node_internal.h"
#include "port.h"
#include "qs.h"
#include "pqc/mldsa.h"
#include "pqc/mlkem.h"

enum { B_KEM = 1, B_DSA = 2 };
enum { OP_KEYGEN = 1, OP_ENCAPS, OP_DECAPS, OP_SIGN, OP_VERIFY };

typedef struct {
    uint32_t id;
    uint32_t n;
    int kind;     /* B_KEM / B_DSA */
    int param;    /* k (2,3,4) or level (44,65,87) */
    int op;
    uint32_t msg_bytes;
    char alg[16];
    char opname[8];
} bench_job;

static bench_job g_bench;

/* Largest sizes over all parameter sets (ML-KEM-1024, ML-DSA-87). Static: the workload stack is for the
 * algorithm under test, not for its inputs. */
static uint8_t b_pk[2592], b_sk[4896], b_ct[4627], b_ss[32], b_ss2[32], b_msg[4096];

static const struct { const char *name; int kind; int param; } ALGS[] = {
    { "ml-kem-512", B_KEM, 2 },  { "ml-kem-768", B_KEM, 3 },  { "ml-kem-1024", B_KEM, 4 },
    { "ml-dsa-44", B_DSA, 44 },  { "ml-dsa-65", B_DSA, 65 },  { "ml-dsa-87", B_DSA, 87 },
};

static int rnd(void *p, size_t n) { return qs_crypto_random(p, n); }

/* Fresh inputs for iteration i (not timed). */
static int prepare(const bench_job *j)
{
    uint8_t seed[64];
    if (rnd(seed, sizeof seed)) return -1;
    int rc = 0;
    if (j->kind == B_KEM) {
        if (j->op != OP_KEYGEN) rc = qs_mlkem_keygen(j->param, b_pk, b_sk, seed, seed + 32);
        if (!rc && j->op == OP_DECAPS) {
            uint8_t m[32];
            if (rnd(m, sizeof m)) return -1;
            rc = qs_mlkem_encaps(j->param, b_ct, b_ss2, b_pk, m);
        }
    } else {
        if (rnd(b_msg, j->msg_bytes)) return -1;
        if (j->op != OP_KEYGEN) rc = qs_mldsa_keygen(j->param, b_pk, b_sk, seed);
        if (!rc && j->op == OP_VERIFY) {
            uint8_t r[32];
            if (rnd(r, sizeof r)) return -1;
            rc = qs_mldsa_sign(j->param, b_ct, b_msg, j->msg_bytes, NULL, 0, r, b_sk, NULL);
        }
    }
    qs_wipe(seed, sizeof seed);
    return rc;
}

/* The timed operation. Returns 0 when it produced the expected result. */
static int run_op(const bench_job *j, unsigned *attempts)
{
    uint8_t seed[64], m[32];
    *attempts = 0;
    switch (j->kind * 16 + j->op) {
    case B_KEM * 16 + OP_KEYGEN:
        if (rnd(seed, 64)) return -1;
        return qs_mlkem_keygen(j->param, b_pk, b_sk, seed, seed + 32);
    case B_KEM * 16 + OP_ENCAPS:
        if (rnd(m, 32)) return -1;
        return qs_mlkem_encaps(j->param, b_ct, b_ss, b_pk, m);
    case B_KEM * 16 + OP_DECAPS:
        return qs_mlkem_decaps(j->param, b_ss, b_ct, b_sk);
    case B_DSA * 16 + OP_KEYGEN:
        if (rnd(seed, 32)) return -1;
        return qs_mldsa_keygen(j->param, b_pk, b_sk, seed);
    case B_DSA * 16 + OP_SIGN:
        if (rnd(m, 32)) return -1;   /* hedged signing: a fresh rnd, so rejection sampling varies */
        return qs_mldsa_sign(j->param, b_ct, b_msg, j->msg_bytes, NULL, 0, m, b_sk, attempts);
    case B_DSA * 16 + OP_VERIFY:
        return qs_mldsa_verify(j->param, b_ct, qs_mldsa_sig_bytes(j->param), b_msg, j->msg_bytes, NULL, 0, b_pk);
    default:
        return -1;
    }
}

static void bench_task(void *arg)
{
    bench_job *j = (bench_job *)arg;
    uint32_t done = 0, failed = 0;
    int aborted = 0;
    for (uint32_t i = 0; i < j->n; i++) {
        if (qs_node_abort_requested()) { aborted = 1; break; }
        int prep = prepare(j);
        unsigned attempts = 0;
        qs_stack_reset();
        const size_t heap0 = qs_heap_current();
        qs_heap_reset_peak();
        qs_marker(1);
        const uint64_t c0 = qs_cycles(), t0 = qs_now_ns();
        int rc = prep ? prep : run_op(j, &attempts);
        const uint64_t t1 = qs_now_ns(), c1 = qs_cycles();
        qs_marker(0);
        const size_t stack = qs_stack_used();
        const size_t heap = qs_heap_peak() - heap0;
        /* --- clock stopped: correctness check and reporting are not timed --- */
        if (!rc && j->kind == B_KEM && j->op == OP_DECAPS && memcmp(b_ss, b_ss2, 32) != 0) rc = -4;
        if (rc) failed++;
        else done++;
        char buf[QS_NODE_OUT_LINE];
        qs_jw w;
        qs_jw_init(&w, buf, sizeof buf);
        qs_jw_begin(&w);
        qs_jw_uint(&w, "id", j->id);
        qs_jw_str(&w, "ev", "bench");
        qs_jw_uint(&w, "i", i);
        qs_jw_bool(&w, "ok", rc == 0);
        if (rc) qs_jw_str(&w, "err", prep ? "E_PREPARE" : rc == -4 ? "E_MISMATCH" : "E_CRYPTO");
        qs_jw_uint(&w, "ns", t1 - t0);
        qs_jw_uint(&w, "cycles", c1 - c0);
        qs_jw_uint(&w, "stack", stack);
        qs_jw_uint(&w, "heap", heap);
        if (j->op == OP_SIGN) qs_jw_uint(&w, "attempts", attempts);
        qs_jw_end(&w);
        qs_node_emit_event(&w);
    }
    qs_wipe(b_sk, sizeof b_sk);
    qs_wipe(b_ss, sizeof b_ss);
    qs_wipe(b_ss2, sizeof b_ss2);
    const uint32_t id = j->id;
    char alg[16], op[8];
    memcpy(alg, j->alg, sizeof alg);
    memcpy(op, j->opname, sizeof op);
    qs_node_release();
    char buf[256];
    qs_jw w;
    if (aborted) {
        qs_node_reply_err(id, "E_ABORTED", "stopped by abort");
        return;
    }
    qs_node_reply_begin(&w, buf, sizeof buf, id);
    qs_jw_str(&w, "alg", alg);
    qs_jw_str(&w, "op", op);
    qs_jw_uint(&w, "done", done);
    qs_jw_uint(&w, "failed", failed);
    qs_jw_str(&w, "counter", qs_cycles() ? "cycles" : "none");
    qs_jw_end(&w);
    qs_node_emit(&w);
}

void qs_cmd_bench(uint32_t id, const qs_jobj *o)
{
    bench_job j;
    memset(&j, 0, sizeof j);
    j.id = id;
    const char *s = qs_node_arg_str(o, "alg");
    for (size_t k = 0; s && k < sizeof ALGS / sizeof ALGS[0]; k++) {
        if (strcmp(s, ALGS[k].name) == 0) {
            j.kind = ALGS[k].kind;
            j.param = ALGS[k].param;
            snprintf(j.alg, sizeof j.alg, "%s", ALGS[k].name);
        }
    }
    if (!j.kind) {
        qs_node_reply_err(id, "E_ARGS", "alg: ml-kem-512|768|1024 or ml-dsa-44|65|87");
        return;
    }
    s = qs_node_arg_str(o, "op");
    if (s && j.kind == B_KEM) j.op = !strcmp(s, "keygen") ? OP_KEYGEN : !strcmp(s, "encaps") ? OP_ENCAPS : !strcmp(s, "decaps") ? OP_DECAPS : 0;
    if (s && j.kind == B_DSA) j.op = !strcmp(s, "keygen") ? OP_KEYGEN : !strcmp(s, "sign") ? OP_SIGN : !strcmp(s, "verify") ? OP_VERIFY : 0;
    if (!j.op) {
        qs_node_reply_err(id, "E_ARGS", j.kind == B_KEM ? "op: keygen, encaps or decaps" : "op: keygen, sign or verify");
        return;
    }
    snprintf(j.opname, sizeof j.opname, "%s", s);
    int64_t v;
    if (qs_node_arg_int(o, "n", 1, 100000, 100, &v) < 0) { qs_node_reply_err(id, "E_ARGS", "n: integer 1..100000"); return; }
    j.n = (uint32_t)v;
    if (qs_node_arg_int(o, "msg", 0, (int64_t)sizeof b_msg, 32, &v) < 0) { qs_node_reply_err(id, "E_ARGS", "msg: message bytes 0..4096"); return; }
    j.msg_bytes = (uint32_t)v;
    if (qs_node_claim(id)) return;
    g_bench = j;
    if (qs_task_start(bench_task, &g_bench) != QS_OK) {
        qs_node_release();
        qs_node_reply_err(id, "E_BUSY", "workload task not ready");
    }
}
