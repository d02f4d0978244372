/* What the node's command modules (node.c, bench.c) share: replies, events, arguments and the workload task
 * claim. Not part of the port interface. */
#ifndef QS_NODE_INTERNAL_H
#define QS_NODE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "proto.h"

#define QS_NODE_OUT_LINE 768

void qs_node_reply_err(uint32_t id, const char *err, const char *msg);
void qs_node_reply_begin(qs_jw *w, char *buf, size_t cap, uint32_t id);   /* {"id":..,"ok":true ... */
void qs_node_emit(qs_jw *w);         /* an answer: sent at once */
void qs_node_emit_event(qs_jw *w);   /* a streamed event: may wait for the next TX tick */
/* 1: present and valid (*out set), 0: absent (*out = def), -1: present but invalid. */
int qs_node_arg_int(const qs_jobj *o, const char *key, int64_t lo, int64_t hi, int64_t def, int64_t *out);
const char *qs_node_arg_str(const qs_jobj *o, const char *key);
/* Claims the workload task for a job (replies E_BUSY and returns -1 when taken); release when the job ends,
 * before its final answer. */
int qs_node_claim(uint32_t id);
void qs_node_release(void);
int qs_node_abort_requested(void);

/* bench.c */
void qs_cmd_bench(uint32_t id, const qs_jobj *o);

#endif
