/* QSHS/1 record layer (HANDSHAKE.md §5-6): one qs_rl per direction. */
#ifndef QS_RECORD_H
#define QS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "crypto_port.h"

#define QS_RL_HDR 10                       /* epoch(2) | seq(8) */
#define QS_RL_OVERHEAD (QS_RL_HDR + 16)    /* + tag */
#define QS_RL_MAX_EPOCH 0xFFFFu
/* `aead` of a plaintext direction (suite `none`, HANDSHAKE.md §12): body = epoch(2) | seq(8) | plaintext, no tag,
 * no keys. Epoch, sequence and replay checks are those of the AEAD records; key refresh is a no-op (the epoch
 * field still follows floor(seq / K), but no secret is ratcheted). */
#define QS_RL_PLAINTEXT 0

typedef struct {
    int aead;
    uint32_t refresh;     /* K (0 = never) */
    uint16_t epoch;       /* current epoch of this direction */
    uint8_t secret[32];   /* secret_epoch */
    uint8_t iv[12];
    qs_aead *ctx;         /* keyed with key_epoch */
    uint64_t next_seq;    /* sender: seq of the next record */
    /* receiver: replay window */
    int any;              /* a record has been accepted */
    uint64_t high;        /* highest accepted seq */
    uint64_t bitmap;      /* bit i: seq high - i accepted */
    /* QKD suites (HANDSHAKE.md §11.4): fresh QKD keys for epochs 1..qkd_n (32 bytes each, epoch e at
     * qkd + 32 (e - 1)), mixed into the ratchet; NULL = plain ratchet. Not owned (the caller wipes them). */
    const uint8_t *qkd;
    uint32_t qkd_n;
} qs_rl;

/* Takes a copy of secret0 (the caller wipes its own). aead QS_RL_PLAINTEXT: no keys, secret0 is ignored (may be
 * NULL). */
int qs_rl_init(qs_rl *rl, int aead, uint32_t refresh, const uint8_t secret0[32]);
/* Bytes a record body adds to its plaintext: QS_RL_OVERHEAD, or QS_RL_HDR for QS_RL_PLAINTEXT. */
size_t qs_rl_overhead(int aead);
void qs_rl_free(qs_rl *rl);   /* wipes everything */

/* Seal len bytes of plaintext into body (len + qs_rl_overhead(aead) bytes) with the next seq. Plaintext: the
 * bytes are copied after the header (pt and body may overlap). */
int qs_rl_seal(qs_rl *rl, const uint8_t *pt, size_t len, uint8_t *body);
/* Check and open a record body. pt receives blen - qs_rl_overhead(aead) bytes. Returns QS_OK, QS_E_DECODE (too
 * short), QS_E_EPOCH (epoch != floor(seq/K), or an epoch already retired), QS_E_REPLAY, QS_E_BADMAC,
 * QS_E_CRYPTO/QS_E_OOM. The window and the epoch move only after the tag has checked. Plaintext: the same
 * checks without the tag (never QS_E_BADMAC; the caller compares what it got with what it expected). */
int qs_rl_open(qs_rl *rl, const uint8_t *body, size_t blen, uint8_t *pt, size_t *ptlen, uint64_t *seq_out);

/* secret_{e+1} = HKDF-Expand(secret_e, "QSHS1 upd", 32); key/iv of an epoch secret. Exposed for tests. */
int qs_rl_next_secret(const uint8_t cur[32], uint8_t next[32]);
/* QKD suites: secret_{e+1} = HKDF-Extract(salt = HKDF-Expand(secret_e, "QSHS1 upd", 32), IKM = qkd_key_{e+1}). */
int qs_rl_next_secret_qkd(const uint8_t cur[32], const uint8_t qkd_key[32], uint8_t next[32]);
int qs_rl_epoch_keys(const uint8_t secret[32], uint8_t key[32], uint8_t iv[12]);

#endif
