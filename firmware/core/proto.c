/* qslab protocol v1: CRC, frames, lines, JSON. Portable C11, no allocation. */
#include "proto.h"

#include <stdio.h>
#include <string.h>

/* ---- CRC ------------------------------------------------------------------------------------------------ */
uint16_t qs_crc16(const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)p[i] << 8);
        for (int k = 0; k < 8; k++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* ---- frames --------------------------------------------------------------------------------------------- */
static int uhex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int qs_frame_check(const char *line, size_t len, size_t *json_len)
{
    if (len < 6 || line[0] != '{' || line[len - 5] != '*') return QS_FRAME_NONE;
    unsigned v = 0;
    for (size_t i = len - 4; i < len; i++) {
        int d = uhex(line[i]);
        if (d < 0) return QS_FRAME_NONE;
        v = (v << 4) | (unsigned)d;
    }
    *json_len = len - 5;
    return qs_crc16(line, len - 5) == v ? QS_FRAME_OK : QS_FRAME_BADCRC;
}

/* ---- lines ---------------------------------------------------------------------------------------------- */
void qs_line_init(qs_line *l)
{
    l->len = 0;
    l->discarding = 0;
}

int qs_line_feed(qs_line *l, uint8_t c, size_t *len)
{
    if (c == '\n') {
        if (l->discarding) {
            l->discarding = 0;
            l->len = 0;
            return QS_LINE_NONE;
        }
        size_t n = l->len;
        if (n > 0 && l->buf[n - 1] == '\r') n--;
        l->buf[n] = '\0';   /* n < QS_MAX_LINE: see below */
        l->len = 0;
        *len = n;
        return QS_LINE_READY;
    }
    if (l->discarding) return QS_LINE_NONE;
    /* A line (terminator included) may hold QS_MAX_LINE bytes, so at most QS_MAX_LINE - 1 before "\n". */
    if (l->len >= QS_MAX_LINE - 1) {
        l->discarding = 1;
        l->len = 0;
        return QS_LINE_TOOLONG;
    }
    l->buf[l->len++] = (char)c;
    return QS_LINE_NONE;
}

/* ---- JSON reader ------------------------------------------------------------------------------------------ */
typedef struct {
    const char *p;
    const char *end;
    qs_jobj *o;
} jcur;

static void jws(jcur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int read_u4(jcur *c, unsigned *out)
{
    if (c->end - c->p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hexval(c->p[i]);
        if (d < 0) return -1;
        v = (v << 4) | (unsigned)d;
    }
    c->p += 4;
    *out = v;
    return 0;
}

/* Appends one byte to the arena (store mode). */
static int put(jcur *c, int store, char ch)
{
    if (!store) return 0;
    if (c->o->used >= QS_JSON_ARENA) return -1;
    c->o->arena[c->o->used++] = ch;
    return 0;
}

/* Parses a JSON string starting at c->p. store: decode into the arena (NUL-terminated), set s and n. */
static int jstring(jcur *c, int store, const char **s, size_t *n)
{
    if (c->p >= c->end || *c->p != '"') return -1;
    c->p++;
    size_t start = c->o->used;
    for (;;) {
        if (c->p >= c->end) return -1;
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"') break;
        if (ch < 0x20) return -1;
        if (ch != '\\') {
            if (put(c, store, (char)ch)) return -1;
            continue;
        }
        if (c->p >= c->end) return -1;
        char e = *c->p++;
        char out;
        switch (e) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            unsigned cp;
            if (read_u4(c, &cp)) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u') {
                    const char *save = c->p;
                    c->p += 2;
                    if (read_u4(c, &lo)) return -1;
                    if (lo >= 0xDC00 && lo <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    else { cp = 0xFFFD; c->p = save; }
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            /* UTF-8 encode */
            if (cp < 0x80) {
                if (put(c, store, (char)cp)) return -1;
            } else if (cp < 0x800) {
                if (put(c, store, (char)(0xC0 | (cp >> 6))) || put(c, store, (char)(0x80 | (cp & 0x3F)))) return -1;
            } else if (cp < 0x10000) {
                if (put(c, store, (char)(0xE0 | (cp >> 12))) || put(c, store, (char)(0x80 | ((cp >> 6) & 0x3F))) ||
                    put(c, store, (char)(0x80 | (cp & 0x3F))))
                    return -1;
            } else {
                if (put(c, store, (char)(0xF0 | (cp >> 18))) || put(c, store, (char)(0x80 | ((cp >> 12) & 0x3F))) ||
                    put(c, store, (char)(0x80 | ((cp >> 6) & 0x3F))) || put(c, store, (char)(0x80 | (cp & 0x3F))))
                    return -1;
            }
            continue;
        }
        default:
            return -1;
        }
        if (put(c, store, out)) return -1;
    }
    if (store) {
        size_t len = c->o->used - start;
        if (put(c, store, '\0')) return -1;
        *s = c->o->arena + start;
        *n = len;
    }
    return 0;
}

/* Number per RFC 8259. *is_int and *iv set when it is an integer that fits int64. */
static int jnumber(jcur *c, int *is_int, int64_t *iv)
{
    const char *p = c->p;
    int neg = 0, integral = 1, overflow = 0;
    uint64_t mag = 0;
    if (p < c->end && *p == '-') { neg = 1; p++; }
    if (p >= c->end) return -1;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < c->end && *p >= '0' && *p <= '9') {
            unsigned d = (unsigned)(*p - '0');
            if (mag > (UINT64_MAX - d) / 10) overflow = 1;
            else mag = mag * 10 + d;
            p++;
        }
    } else {
        return -1;
    }
    if (p < c->end && *p == '.') {
        integral = 0;
        p++;
        if (p >= c->end || *p < '0' || *p > '9') return -1;
        while (p < c->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < c->end && (*p == 'e' || *p == 'E')) {
        integral = 0;
        p++;
        if (p < c->end && (*p == '+' || *p == '-')) p++;
        if (p >= c->end || *p < '0' || *p > '9') return -1;
        while (p < c->end && *p >= '0' && *p <= '9') p++;
    }
    c->p = p;
    *is_int = 0;
    if (integral && !overflow) {
        if (!neg && mag <= (uint64_t)INT64_MAX) { *iv = (int64_t)mag; *is_int = 1; }
        else if (neg && mag <= (uint64_t)INT64_MAX) { *iv = -(int64_t)mag; *is_int = 1; }
        else if (neg && mag == (uint64_t)INT64_MAX + 1u) { *iv = INT64_MIN; *is_int = 1; }
    }
    return 0;
}

static int jliteral(jcur *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) return -1;
    c->p += n;
    return 0;
}

/* Any value, validated and skipped (store = 0 for strings). depth bounds the recursion. */
static int jskip(jcur *c, int depth)
{
    if (depth > QS_JSON_MAX_DEPTH) return -1;
    jws(c);
    if (c->p >= c->end) return -1;
    char ch = *c->p;
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        c->p++;
        jws(c);
        if (c->p < c->end && *c->p == close) { c->p++; return 0; }
        for (;;) {
            if (ch == '{') {
                jws(c);
                if (jstring(c, 0, NULL, NULL)) return -1;
                jws(c);
                if (c->p >= c->end || *c->p != ':') return -1;
                c->p++;
            }
            if (jskip(c, depth + 1)) return -1;
            jws(c);
            if (c->p >= c->end) return -1;
            if (*c->p == ',') { c->p++; continue; }
            if (*c->p == close) { c->p++; return 0; }
            return -1;
        }
    }
    if (ch == '"') return jstring(c, 0, NULL, NULL);
    if (ch == 't') return jliteral(c, "true");
    if (ch == 'f') return jliteral(c, "false");
    if (ch == 'n') return jliteral(c, "null");
    int is_int;
    int64_t iv;
    return jnumber(c, &is_int, &iv);
}

int qs_json_parse(qs_jobj *o, const char *p, size_t len)
{
    jcur c = { p, p + len, o };
    o->n = 0;
    o->used = 0;
    if (p == NULL) return -1;
    jws(&c);
    if (c.p >= c.end || *c.p != '{') return -1;
    c.p++;
    jws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
    } else {
        for (;;) {
            if (o->n >= QS_JSON_MAX_MEMBERS) return -1;
            qs_jmember *m = &o->m[o->n];
            memset(m, 0, sizeof *m);
            jws(&c);
            if (jstring(&c, 1, &m->key, &m->klen)) return -1;
            jws(&c);
            if (c.p >= c.end || *c.p != ':') return -1;
            c.p++;
            jws(&c);
            if (c.p >= c.end) return -1;
            char ch = *c.p;
            if (ch == '"') {
                m->type = QS_JT_STR;
                if (jstring(&c, 1, &m->s, &m->slen)) return -1;
            } else if (ch == 't') {
                if (jliteral(&c, "true")) return -1;
                m->type = QS_JT_BOOL;
                m->b = 1;
            } else if (ch == 'f') {
                if (jliteral(&c, "false")) return -1;
                m->type = QS_JT_BOOL;
                m->b = 0;
            } else if (ch == 'n') {
                if (jliteral(&c, "null")) return -1;
                m->type = QS_JT_NULL;
            } else if (ch == '{' || ch == '[') {
                m->type = ch == '{' ? QS_JT_OBJ : QS_JT_ARR;
                if (jskip(&c, 1)) return -1;
            } else {
                int is_int = 0;
                int64_t iv = 0;
                if (jnumber(&c, &is_int, &iv)) return -1;
                m->type = is_int ? QS_JT_INT : QS_JT_NUM;
                m->i = iv;
            }
            o->n++;
            jws(&c);
            if (c.p >= c.end) return -1;
            if (*c.p == ',') { c.p++; continue; }
            if (*c.p == '}') { c.p++; break; }
            return -1;
        }
    }
    jws(&c);
    return c.p == c.end ? 0 : -1;
}

const qs_jmember *qs_json_get(const qs_jobj *o, const char *key)
{
    size_t kl = strlen(key);
    for (int i = o->n - 1; i >= 0; i--)
        if (o->m[i].klen == kl && memcmp(o->m[i].key, key, kl) == 0) return &o->m[i];
    return NULL;
}

/* ---- JSON writer ---------------------------------------------------------------------------------------- */
static void wraw(qs_jw *w, const char *s, size_t n)
{
    if (w->overflow) return;
    if (n > w->cap - w->len) { w->overflow = 1; return; }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void wc(qs_jw *w, char ch) { wraw(w, &ch, 1); }

void qs_jw_init(qs_jw *w, char *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = cap == 0;
    w->depth = 0;
    w->nonempty = 0;
}

static void welem(qs_jw *w)
{
    uint32_t bit = 1u << (w->depth & 31);
    if (w->nonempty & bit) wc(w, ',');
    w->nonempty |= bit;
}

static void wescaped(qs_jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    wc(w, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') { wc(w, '\\'); wc(w, (char)ch); }
        else if (ch == '\n') wraw(w, "\\n", 2);
        else if (ch == '\r') wraw(w, "\\r", 2);
        else if (ch == '\t') wraw(w, "\\t", 2);
        else if (ch < 0x20 || ch == 0x7F) {
            char u[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };
            wraw(w, u, 6);
        } else if (ch >= 0x80) wc(w, '?');   /* keep lines ASCII whatever the source */
        else wc(w, (char)ch);
    }
    wc(w, '"');
}

static void wkey(qs_jw *w, const char *key)
{
    welem(w);
    if (key) {
        wescaped(w, key, strlen(key));
        wc(w, ':');
    }
}

void qs_jw_begin(qs_jw *w)
{
    wc(w, '{');
    w->depth = 1;
    w->nonempty &= ~(1u << 1);
}

static void wopen(qs_jw *w, const char *key, char ch)
{
    wkey(w, key);
    wc(w, ch);
    if (w->depth < 31) w->depth++;
    else w->overflow = 1;
    w->nonempty &= ~(1u << w->depth);
}

void qs_jw_obj(qs_jw *w, const char *key) { wopen(w, key, '{'); }
void qs_jw_arr(qs_jw *w, const char *key) { wopen(w, key, '['); }

void qs_jw_end(qs_jw *w)
{
    wc(w, '}');
    if (w->depth > 0) w->depth--;
}

void qs_jw_end_arr(qs_jw *w)
{
    wc(w, ']');
    if (w->depth > 0) w->depth--;
}

void qs_jw_strn(qs_jw *w, const char *key, const char *v, size_t n)
{
    wkey(w, key);
    wescaped(w, v, n);
}

void qs_jw_str(qs_jw *w, const char *key, const char *v) { qs_jw_strn(w, key, v ? v : "", v ? strlen(v) : 0); }

void qs_jw_int(qs_jw *w, const char *key, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    wkey(w, key);
    wraw(w, t, (size_t)n);
}

void qs_jw_uint(qs_jw *w, const char *key, uint64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    wkey(w, key);
    wraw(w, t, (size_t)n);
}

void qs_jw_bool(qs_jw *w, const char *key, int v)
{
    wkey(w, key);
    if (v) wraw(w, "true", 4);
    else wraw(w, "false", 5);
}

void qs_jw_fixed(qs_jw *w, const char *key, double v, int decimals)
{
    char t[40];
    if (!(v == v) || v > 1e15 || v < -1e15) v = 0;   /* NaN / absurd values never reach the wire */
    if (decimals < 0) decimals = 0;
    if (decimals > 6) decimals = 6;
    int n = snprintf(t, sizeof t, "%.*f", decimals, v);
    if (n < 0 || (size_t)n >= sizeof t) { w->overflow = 1; return; }
    wkey(w, key);
    wraw(w, t, (size_t)n);
}

size_t qs_jw_frame(qs_jw *w)
{
    static const char hex[] = "0123456789ABCDEF";
    if (w->overflow) return 0;
    uint16_t crc = qs_crc16(w->buf, w->len);
    char t[6] = { '*', hex[(crc >> 12) & 15], hex[(crc >> 8) & 15], hex[(crc >> 4) & 15], hex[crc & 15], '\n' };
    wraw(w, t, 6);
    return w->overflow ? 0 : w->len;
}
