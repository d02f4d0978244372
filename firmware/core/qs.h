/* qslab node firmware: common definitions (portable C11). */
#ifndef QS_H
#define QS_H

#include <stddef.h>
#include <stdint.h>

#define QS_FW_VERSION "0.1.0"
#define QS_PROTO_MIN 1
#define QS_PROTO_MAX 1
/* Longest request line the node accepts, terminating "\n" (and an optional "\r" before it) included. */
#define QS_MAX_LINE 1024
/* Data-plane timeout for connect and for every message awaited from the server (PROTOCOL.md §5 E_TIMEOUT). */
#define QS_NET_TIMEOUT_MS 10000u

/* Status codes shared by core, ports and crypto port. QS_OK is 0, failures are negative. */
enum qs_status {
    QS_OK = 0,
    QS_E_NET = -1,      /* socket error */
    QS_E_TIMEOUT = -2,  /* peer did not answer in time */
    QS_E_CLOSED = -3,   /* peer closed the connection */
    QS_E_AUTH = -4,     /* pin / signature / Finished failure */
    QS_E_ALERT = -5,    /* peer sent an alert */
    QS_E_BADMAC = -6,   /* record failed authentication */
    QS_E_EPOCH = -7,    /* record epoch wrong or retired */
    QS_E_REPLAY = -8,   /* record replayed or outside the window */
    QS_E_CRYPTO = -9,   /* crypto library failure */
    QS_E_OOM = -10,     /* allocation failed */
    QS_E_DECODE = -11,  /* malformed / unexpected message from the peer */
    QS_E_ECHO = -12,    /* authentic echo record whose plaintext differs */
    QS_E_BUSY = -13,
    QS_E_ARGS = -14,
    QS_E_QKD_KEY = -15,     /* QKD key_ID not in the node's store (HANDSHAKE.md §11) */
    QS_E_QKD_CONFIRM = -16  /* key confirmation failed: the QKD keys (or the shared secret) differ */
};

/* Build hash: first 16 hex digits of SHA-256 over the firmware sources and build flags (set by the Makefile). */
const char *qs_build_hash(void);

#endif
