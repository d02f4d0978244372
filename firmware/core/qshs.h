/* QSHS/1 client (HANDSHAKE.md): one operation = TCP connect, handshake, M echoed records, close_notify. */
#ifndef QS_QSHS_H
#define QS_QSHS_H

#include <stddef.h>
#include <stdint.h>

enum { QS_SUITE_RSA2048 = 1, QS_SUITE_ECDHE_P256 = 2, QS_SUITE_X25519 = 3 };

/* Step timings, in the order they are reported. */
enum { QS_T_CONNECT, QS_T_KEYGEN, QS_T_DH, QS_T_VERIFY, QS_T_KDF, QS_T_FIN, QS_T_HS, QS_T_REC, QS_T_TOTAL, QS_T_N };

#define QS_HS_MAX_RECORDS 1000000u
#define QS_HS_MAX_BYTES 16384u

typedef struct {
    int suite;            /* QS_SUITE_* */
    int aead;             /* QS_AEAD_* */
    uint32_t refresh;     /* K */
    uint32_t records;     /* M */
    uint32_t bytes;       /* B */
    char host[128];
    uint16_t port;
    uint8_t pin[32];      /* SHA-256 of the server's SPKI DER */
    uint32_t timeout_ms;  /* data-plane timeout */
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
} qs_op_result;

const char *qs_suite_name(int suite);
int qs_suite_by_name(const char *name);
const char *qs_aead_name(int aead);
int qs_aead_by_name(const char *name);
const char *qs_alert_name(int code);
/* Protocol error code ("E_NET", ...) for a qs_status. */
const char *qs_status_code(int status);

/* Runs one operation; always fills *r (r->status). Never writes to the serial line. */
void qs_hs_op(const qs_hs_params *p, qs_op_result *r);

#endif
