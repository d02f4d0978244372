/* QKD key store of the node (HANDSHAKE.md §11, PROTOCOL.md `qkd`): keys delivered in batches over the serial
 * control plane by the node's key manager (trusted-node delivery), each used once by a QKD-suite handshake and
 * wiped as it is taken, on `clear` and on `reset`. Key bytes never leave the store except into the operation
 * that uses them; no answer or event carries them. */
#ifndef QS_QKDSTORE_H
#define QS_QKDSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define QS_QKD_CAP 256u        /* keys the store holds */
#define QS_QKD_KEY_BYTES 32u   /* every key is 256 bits */
#define QS_QKD_ID_BYTES 16u    /* key_ID: a UUID, binary */

/* Takes the keys named by n binary key_IDs (ids: n * 16 bytes) out of the store into keys (n * 32 bytes), in
 * order, wiping their slots. Every listed key that is present is taken (used once) even when another is missing.
 * Returns QS_OK, or QS_E_QKD_KEY with *missing = index of the first unknown key_ID. Workload task only. */
int qs_qkd_take(const uint8_t *ids, size_t n, uint8_t *keys, size_t *missing);
size_t qs_qkd_count(void);
/* Wipes every key (clear, reset). */
void qs_qkd_wipe_all(void);
/* Canonical lower-case UUID text of a binary key_ID (37 bytes with the NUL). */
void qs_qkd_id_str(const uint8_t id[16], char out[37]);

/* The `qkd` command: op = load | count | clear. */
void qs_cmd_qkd(uint32_t id, const qs_jobj *o);

#endif
