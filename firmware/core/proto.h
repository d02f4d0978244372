/* qslab protocol v1 (PROTOCOL.md): CRC, frame codec, line assembly, flat JSON reader, JSON writer. */
#ifndef QS_PROTO_H
#define QS_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include "qs.h"

/* ---- CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0) ----------------------------- */
uint16_t qs_crc16(const void *data, size_t len);

/* ---- frames -------------------------------------------------------------------------------------------- */
enum { QS_FRAME_NONE = 0, QS_FRAME_OK = 1, QS_FRAME_BADCRC = 2 };
/* Classifies a line (without "\n" / "\r"): NONE = not a frame (console output), OK = frame with a good CRC
 * (*json_len = length of the JSON part), BADCRC = frame shape but the CRC does not match. */
int qs_frame_check(const char *line, size_t len, size_t *json_len);

/* ---- line assembly -------------------------------------------------------------------------------------- */
typedef struct {
    char buf[QS_MAX_LINE];
    size_t len;
    int discarding;   /* over-long line: dropping bytes up to the next "\n" */
} qs_line;

enum { QS_LINE_NONE = 0, QS_LINE_READY = 1, QS_LINE_TOOLONG = 2 };
void qs_line_init(qs_line *l);
/* Feed one byte. READY: l->buf[0..*len) holds a complete line ("\r\n" / "\n" stripped, NUL-terminated).
 * TOOLONG: the current line exceeded QS_MAX_LINE (reported once per line; the rest is discarded). */
int qs_line_feed(qs_line *l, uint8_t c, size_t *len);

/* ---- JSON reader (flat request objects) ----------------------------------------------------------------- */
#define QS_JSON_MAX_MEMBERS 32
#define QS_JSON_ARENA 2048
#define QS_JSON_MAX_DEPTH 16

typedef enum { QS_JT_NULL, QS_JT_BOOL, QS_JT_INT, QS_JT_NUM, QS_JT_STR, QS_JT_OBJ, QS_JT_ARR } qs_jtype;

typedef struct {
    const char *key;   /* NUL-terminated (decoded) */
    size_t klen;
    qs_jtype type;
    const char *s;     /* QS_JT_STR: decoded, NUL-terminated; slen may be < strlen if it holds \u0000 */
    size_t slen;
    int64_t i;         /* QS_JT_INT */
    int b;             /* QS_JT_BOOL */
} qs_jmember;

typedef struct {
    int n;
    qs_jmember m[QS_JSON_MAX_MEMBERS];
    size_t used;
    char arena[QS_JSON_ARENA];
} qs_jobj;

/* Parses one JSON object (whitespace around it allowed, nothing else). Nested values of unknown members are
 * validated and skipped (type OBJ/ARR). Returns 0, or -1 on any syntax error / limit exceeded. Never reads
 * outside p[0..len), never writes outside *o. */
int qs_json_parse(qs_jobj *o, const char *p, size_t len);
/* Last member named key, or NULL. */
const qs_jmember *qs_json_get(const qs_jobj *o, const char *key);

/* ---- JSON writer --------------------------------------------------------------------------------------- */
typedef struct {
    char *buf;
    size_t cap;
    size_t len;
    int overflow;
    int depth;
    uint32_t nonempty;  /* bit d: container at depth d already has an element */
} qs_jw;

void qs_jw_init(qs_jw *w, char *buf, size_t cap);
void qs_jw_begin(qs_jw *w);                          /* top-level "{" */
void qs_jw_end(qs_jw *w);                            /* closes the innermost object */
void qs_jw_obj(qs_jw *w, const char *key);           /* "key":{ */
void qs_jw_arr(qs_jw *w, const char *key);           /* "key":[ */
void qs_jw_end_arr(qs_jw *w);
void qs_jw_str(qs_jw *w, const char *key, const char *v);       /* key NULL: array element */
void qs_jw_strn(qs_jw *w, const char *key, const char *v, size_t n);
void qs_jw_int(qs_jw *w, const char *key, int64_t v);
void qs_jw_uint(qs_jw *w, const char *key, uint64_t v);
void qs_jw_bool(qs_jw *w, const char *key, int v);
void qs_jw_fixed(qs_jw *w, const char *key, double v, int decimals);
/* Appends "*XXXX\n" (CRC of the JSON written so far). Returns the line length, or 0 on overflow. */
size_t qs_jw_frame(qs_jw *w);

#endif
