/* qslab node: QKD key store and the `qkd` command (PROTOCOL.md §4 `qkd`, HANDSHAKE.md §11.6). */
#include "qkdstore.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "crypto_port.h"
#include "node_internal.h"
#include "qs.h"

typedef struct {
    uint8_t id[QS_QKD_ID_BYTES];
    uint8_t key[QS_QKD_KEY_BYTES];
    uint8_t used;   /* slot holds a key */
} qkd_slot;

/* Written by `load`/`clear` (main task, with the workload claimed) and by qs_qkd_take (workload task), never at
 * the same time; the count is read by `count` at any time. */
static qkd_slot g_slots[QS_QKD_CAP];
static atomic_size_t g_count;

#define LOAD_MAX 16u   /* keys per `load` request (a 1024-byte line holds 9) */

size_t qs_qkd_count(void) { return atomic_load(&g_count); }

void qs_qkd_wipe_all(void)
{
    qs_wipe(g_slots, sizeof g_slots);
    atomic_store(&g_count, 0);
}

void qs_qkd_id_str(const uint8_t id[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[id[i] >> 4];
        out[o++] = hex[id[i] & 15];
    }
    out[o] = '\0';
}

static qkd_slot *find(const uint8_t id[16])
{
    for (size_t i = 0; i < QS_QKD_CAP; i++)
        if (g_slots[i].used && memcmp(g_slots[i].id, id, QS_QKD_ID_BYTES) == 0) return &g_slots[i];
    return NULL;
}

int qs_qkd_take(const uint8_t *ids, size_t n, uint8_t *keys, size_t *missing)
{
    int rc = QS_OK;
    for (size_t i = 0; i < n; i++) {
        qkd_slot *s = find(ids + QS_QKD_ID_BYTES * i);
        if (!s) {
            if (rc == QS_OK) { rc = QS_E_QKD_KEY; if (missing) *missing = i; }
            qs_wipe(keys + QS_QKD_KEY_BYTES * i, QS_QKD_KEY_BYTES);
            continue;
        }
        memcpy(keys + QS_QKD_KEY_BYTES * i, s->key, QS_QKD_KEY_BYTES);
        qs_wipe(s, sizeof *s);
        atomic_fetch_sub(&g_count, 1u);
    }
    return rc;
}

static int hexval(char c)
{
    return (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (36 chars) → 16 bytes. */
static int parse_uuid(const char *s, uint8_t out[16])
{
    size_t o = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return -1;
            i++;
            continue;
        }
        int a = hexval(s[i]), b = hexval(s[i + 1]);
        if (a < 0 || b < 0) return -1;
        out[o++] = (uint8_t)(a << 4 | b);
        i += 2;
    }
    return 0;
}

static int parse_key(const char *s, uint8_t out[32])
{
    for (size_t i = 0; i < 32; i++) {
        int a = hexval(s[2 * i]), b = hexval(s[2 * i + 1]);
        if (a < 0 || b < 0) return -1;
        out[i] = (uint8_t)(a << 4 | b);
    }
    return 0;
}

static void answer_count(uint32_t id, const char *extra_key, size_t extra)
{
    char buf[128];
    qs_jw w;
    qs_node_reply_begin(&w, buf, sizeof buf, id);
    if (extra_key) qs_jw_uint(&w, extra_key, extra);
    qs_jw_uint(&w, "count", qs_qkd_count());
    qs_jw_uint(&w, "cap", QS_QKD_CAP);
    qs_jw_end(&w);
    qs_node_emit(&w);
}

/* keys = "<uuid>=<64 hex>;<uuid>=<64 hex>;..." — all or nothing. Error messages name positions and key_IDs,
 * never key bytes. */
static void cmd_load(uint32_t id, const char *keys)
{
    qkd_slot in[LOAD_MAX];
    size_t n = 0;
    char msg[96];
    const char *p = keys;
    const char *err = NULL;
    if (!*p) err = "keys: empty";
    while (!err && *p) {
        if (n == LOAD_MAX) { snprintf(msg, sizeof msg, "keys: at most %u per request", LOAD_MAX); err = msg; break; }
        size_t len = strcspn(p, ";");
        if (len != 36 + 1 + 64 || p[36] != '=' || parse_uuid(p, in[n].id) || parse_key(p + 37, in[n].key)) {
            snprintf(msg, sizeof msg, "keys: item %u is not <uuid>=<64 hex digits>", (unsigned)n);
            err = msg;
            break;
        }
        for (size_t k = 0; k < n && !err; k++)
            if (memcmp(in[k].id, in[n].id, QS_QKD_ID_BYTES) == 0) { snprintf(msg, sizeof msg, "keys: item %u repeats a key_ID", (unsigned)n); err = msg; }
        n++;
        p += len;
        if (*p == ';') {
            p++;
            if (!*p) { err = "keys: trailing ';'"; break; }
        }
    }
    if (err) {
        qs_wipe(in, sizeof in);
        qs_node_reply_err(id, "E_ARGS", err);
        return;
    }
    if (qs_node_claim(id)) { qs_wipe(in, sizeof in); return; }   /* E_BUSY: a workload may be taking keys */
    const char *code = NULL;
    for (size_t k = 0; k < n && !code; k++) {
        if (find(in[k].id)) {
            char u[37];
            qs_qkd_id_str(in[k].id, u);
            snprintf(msg, sizeof msg, "key_ID %s is already loaded", u);
            code = "E_ARGS";
        }
    }
    if (!code && qs_qkd_count() + n > QS_QKD_CAP) {
        snprintf(msg, sizeof msg, "store full: %u of %u keys, %u more do not fit", (unsigned)qs_qkd_count(), QS_QKD_CAP, (unsigned)n);
        code = "E_QKD_FULL";
    }
    if (!code) {
        size_t k = 0;
        for (size_t i = 0; i < QS_QKD_CAP && k < n; i++) {
            if (g_slots[i].used) continue;
            memcpy(g_slots[i].id, in[k].id, QS_QKD_ID_BYTES);
            memcpy(g_slots[i].key, in[k].key, QS_QKD_KEY_BYTES);
            g_slots[i].used = 1;
            atomic_fetch_add(&g_count, 1u);
            k++;
        }
    }
    qs_wipe(in, sizeof in);
    qs_node_release();
    if (code) qs_node_reply_err(id, code, msg);
    else answer_count(id, "loaded", n);
}

void qs_cmd_qkd(uint32_t id, const qs_jobj *o)
{
    const char *op = qs_node_arg_str(o, "op");
    if (!op) { qs_node_reply_err(id, "E_ARGS", "op: load, count or clear"); return; }
    if (strcmp(op, "count") == 0) { answer_count(id, NULL, 0); return; }
    if (strcmp(op, "clear") == 0) {
        if (qs_node_claim(id)) return;
        size_t n = qs_qkd_count();
        qs_qkd_wipe_all();
        qs_node_release();
        answer_count(id, "cleared", n);
        return;
    }
    if (strcmp(op, "load") == 0) {
        const char *keys = qs_node_arg_str(o, "keys");
        if (!keys) { qs_node_reply_err(id, "E_ARGS", "keys: string <uuid>=<hex>;... required"); return; }
        cmd_load(id, keys);
        return;
    }
    qs_node_reply_err(id, "E_ARGS", "op: load, count or clear");
}
