/* QSHS/1 client (HANDSHAKE.md): one operation = TCP connect, handshake, M echoed records, close_notify. */
#ifndef QS_QSHS_H
#define QS_QSHS_H

#include <stddef.h>
#include <stdint.h>

enum {
    QS_SUITE_RSA2048 = 1, QS_SUITE_ECDHE_P256 = 2, QS_SUITE_X25519 = 3,
    QS_SUITE_MLKEM512_MLDSA44 = 4, QS_SUITE_MLKEM768_MLDSA65 = 5, QS_SUITE_MLKEM1024_MLDSA87 = 6,
    QS_SUITE_X25519MLKEM768 = 7,
    QS_SUITE_QKD_MLKEM768 = 8, QS_SUITE_QKD_X25519MLKEM768 = 9,   /* HANDSHAKE.md §11 */
    QS_SUITE_NONE = 10,   /* HANDSHAKE.md §12: unauthenticated plaintext baseline (no key exchange, no AEAD) */
    QS_SUITE_MAX = 10
};

/* Step timings, in the order they are reported (names: qs_step_name). */
enum { QS_T_CONNECT, QS_T_KEYGEN, QS_T_DECAP, QS_T_DH, QS_T_VERIFY, QS_T_SIGN, QS_T_QKD, QS_T_KDF, QS_T_FIN, QS_T_HS,
       QS_T_REC, QS_T_TOTAL, QS_T_N };

/* QKD suites (§11): at most this many fresh QKD keys per connection besides the handshake key. */
#define QS_QKD_MAX_UPD 255u

#define QS_HS_MAX_RECORDS 1000000u
#define QS_HS_MAX_BYTES 16384u

typedef struct {
    int suite;            /* QS_SUITE_* */
    int aead;             /* QS_AEAD_* (ignored by `none`: its records carry no AEAD) */
    uint32_t refresh;     /* K */
    uint32_t records;     /* M */
    uint32_t bytes;       /* B */
    char host[128];
    uint16_t port;
    uint8_t pin[32];      /* SHA-256 of the server's cert (SPKI DER, or raw ML-DSA public key); unused by `none` */
    uint32_t timeout_ms;  /* data-plane timeout */
    int mutual;           /* mutual authentication (HANDSHAKE.md §10.3; suites 4-7 only) */
} qs_hs_params;

typedef struct {
    uint64_t t_ns[QS_T_N];
    uint32_t t_set;          /* bit QS_T_x: step was measured */
    uint8_t cr[8];           /* first bytes of client_random */
    int have_cr;
    uint64_t hs_tx, hs_rx, rec_tx, rec_rx;
    uint32_t recs;
    int status;              /* QS_OK or enum qs_status */
    char msg[112];
    uint8_t ck[32];          /* mutual: SHA-256 of the node's ML-DSA public key */
    int have_ck;
    uint8_t qkd_id[16];      /* QKD suites: key_ID of epoch 0 (public) */
    uint32_t qkd_n;          /* QKD suites: key_IDs the server named (0: none) */
} qs_op_result;

const char *qs_suite_name(int suite);
int qs_suite_by_name(const char *name);
/* Whether a suite allows mutual authentication (suites 4-7). */
int qs_suite_mutual_ok(int suite);
/* Whether a suite is a QKD suite (8, 9; HANDSHAKE.md §11). */
int qs_suite_qkd(int suite);
/* Whether a suite is the plaintext baseline `none` (HANDSHAKE.md §12): no key exchange, no authentication, no
 * key schedule, records in the clear. The `hs` command needs no pin for it and ignores its aead. */
int qs_suite_plaintext(int suite);
/* qkd_upd for M records and refresh K: floor((M-1)/K), 0 when M or K is 0. */
uint32_t qs_qkd_upd(uint32_t records, uint32_t refresh);
/* Event key of a step ("encap" for QS_T_DH under rsa2048). */
const char *qs_step_name(int step, int suite);
const char *qs_aead_name(int aead);
int qs_aead_by_name(const char *name);
const char *qs_alert_name(int code);
/* Protocol error code ("E_NET", ...) for a qs_status. */
const char *qs_status_code(int status);

/* Before a burst, on the workload task: makes the long-term state an operation needs (the node's ML-DSA key for
 * a mutual burst, generated once per boot and level, HANDSHAKE.md §10.3), so that no operation is charged for it.
 * qs_hs_op does it itself when it was not done. QS_OK, QS_E_OOM, QS_E_CRYPTO. */
int qs_hs_prepare(const qs_hs_params *p);

/* Runs one operation; always fills *r (r->status). Never writes to the serial line. */
void qs_hs_op(const qs_hs_params *p, qs_op_result *r);

#endif
