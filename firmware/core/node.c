/* qslab node: command dispatch, hs bursts, events. Portable C11. */
#include "node.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "crypto_port.h"
#include "port.h"
#include "proto.h"
#include "qkdstore.h"
#include "qs.h"
#include "qshs.h"
#include "node_internal.h"

#define OUT_LINE 768   /* longest line the node writes (op events stay well below ~400 bytes) */

static uint64_t g_boot_ns;
static atomic_int g_busy;
static atomic_int g_abort;
static atomic_uint g_ops_total;
static atomic_size_t g_heap_peak;     /* highest accounted heap in use, bytes */
static atomic_size_t g_stack_peak;    /* highest per-op stack high-water */

static double uptime_us(void) { return (double)(qs_now_ns() - g_boot_ns) / 1000.0; }

/* ---- output ----------------------------------------------------------------------------------------------- */
static void emit_to(qs_jw *w, void (*write)(const void *, size_t))
{
    size_t n = qs_jw_frame(w);
    if (n == 0) return;   /* cannot happen with OUT_LINE-sized buffers; never send a broken frame */
    qs_serial_lock();
    write(w->buf, n);
    qs_serial_unlock();
}

static void emit(qs_jw *w) { emit_to(w, qs_serial_write); }

void qs_node_log(char level, const char *text)
{
    char line[200];
    unsigned long ms = (unsigned long)((qs_now_ns() - g_boot_ns) / 1000000u);
    int n = snprintf(line, sizeof line, "%c (%lu) qslab: %s\n", level, ms, text);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) { n = (int)sizeof line - 1; line[n - 1] = '\n'; }
    qs_serial_lock();
    qs_serial_write(line, (size_t)n);
    qs_serial_unlock();
}

static void reply_err(uint32_t id, const char *err, const char *msg)
{
    char buf[OUT_LINE];
    qs_jw w;
    qs_jw_init(&w, buf, sizeof buf);
    qs_jw_begin(&w);
    qs_jw_uint(&w, "id", id);
    qs_jw_bool(&w, "ok", 0);
    qs_jw_str(&w, "err", err);
    if (msg) qs_jw_str(&w, "msg", msg);
    qs_jw_end(&w);
    emit(&w);
}

static void reply_begin(qs_jw *w, char *buf, size_t cap, uint32_t id)
{
    qs_jw_init(w, buf, cap);
    qs_jw_begin(w);
    qs_jw_uint(w, "id", id);
    qs_jw_bool(w, "ok", 1);
}

static void fold_max(atomic_size_t *a, size_t v)
{
    size_t cur = atomic_load(a);
    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v)) {}
}

/* ---- argument helpers ---------------------------------------------------------------------------------- */
/* 1: present and valid (*out set), 0: absent (*out = def), -1: present but invalid. */
static int arg_int(const qs_jobj *o, const char *key, int64_t lo, int64_t hi, int64_t def, int64_t *out)
{
    const qs_jmember *m = qs_json_get(o, key);
    *out = def;
    if (!m) return 0;
    if (m->type != QS_JT_INT || m->i < lo || m->i > hi) return -1;
    *out = m->i;
    return 1;
}

static const char *arg_str(const qs_jobj *o, const char *key)
{
    const qs_jmember *m = qs_json_get(o, key);
    if (!m || m->type != QS_JT_STR || strlen(m->s) != m->slen) return NULL;   /* no embedded NULs */
    return m->s;
}

/* ---- hello / ping / info / log --------------------------------------------------------------------------- */
static void cmd_hello(uint32_t id, const qs_jobj *o)
{
    int64_t pmin, pmax;
    if (arg_int(o, "pmin", 0, 0xFFFFFFFFLL, 0, &pmin) != 1) { reply_err(id, "E_ARGS", "pmin: integer required"); return; }
    if (arg_int(o, "pmax", 0, 0xFFFFFFFFLL, 0, &pmax) != 1) { reply_err(id, "E_ARGS", "pmax: integer required"); return; }
    int64_t lo = pmin > QS_PROTO_MIN ? pmin : QS_PROTO_MIN;
    int64_t hi = pmax < QS_PROTO_MAX ? pmax : QS_PROTO_MAX;
    if (lo > hi) {
        char msg[40];
        snprintf(msg, sizeof msg, "node speaks %d..%d", QS_PROTO_MIN, QS_PROTO_MAX);
        reply_err(id, "E_PROTO", msg);
        return;
    }
    const qs_board_info *b = qs_port_board();
    char buf[OUT_LINE];
    qs_jw w;
    reply_begin(&w, buf, sizeof buf, id);
    qs_jw_int(&w, "proto", hi);
    qs_jw_str(&w, "fw", QS_FW_VERSION);
    qs_jw_str(&w, "build", qs_build_hash());
    qs_jw_str(&w, "board", b->board);
    qs_jw_str(&w, "port", b->port);
    qs_jw_uint(&w, "cpu_mhz", b->cpu_mhz);
    qs_jw_uint(&w, "ram", b->ram);
    qs_jw_str(&w, "clock", b->clock);
    qs_jw_arr(&w, "suites");
    for (int s = 1; s <= QS_SUITE_MAX; s++) qs_jw_str(&w, NULL, qs_suite_name(s));
    qs_jw_end_arr(&w);
    qs_jw_arr(&w, "aeads");
    for (int a = 1; a <= 2; a++) qs_jw_str(&w, NULL, qs_aead_name(a));
    qs_jw_end_arr(&w);
    qs_jw_int(&w, "max_line", QS_MAX_LINE);
    if (b->name && b->name[0]) qs_jw_str(&w, "name", b->name);
    qs_jw_end(&w);
    emit(&w);
}

static void cmd_ping(uint32_t id)
{
    char buf[128];
    qs_jw w;
    reply_begin(&w, buf, sizeof buf, id);
    qs_jw_fixed(&w, "t_us", uptime_us(), 3);
    qs_jw_end(&w);
    emit(&w);
}

static void cmd_info(uint32_t id)
{
    char buf[OUT_LINE];
    qs_jw w;
    reply_begin(&w, buf, sizeof buf, id);
    qs_jw_uint(&w, "uptime_us", (uint64_t)uptime_us());
    fold_max(&g_heap_peak, qs_heap_peak());
    qs_jw_uint(&w, "heap_peak", atomic_load(&g_heap_peak));
    qs_jw_uint(&w, "heap", qs_heap_current());
    qs_jw_uint(&w, "stack_peak", atomic_load(&g_stack_peak));
    qs_jw_uint(&w, "ops_total", atomic_load(&g_ops_total));
    qs_jw_bool(&w, "busy", atomic_load(&g_busy));
    qs_jw_end(&w);
    emit(&w);
}

static void cmd_log(uint32_t id, const qs_jobj *o)
{
    int64_t n;
    if (arg_int(o, "n", 1, 100, 1, &n) < 0) { reply_err(id, "E_ARGS", "n: integer 1..100"); return; }
    static const char *const words[] = { "wifi: sta connected", "heap_caps: free 183456", "qslab: idle",
                                         "esp_timer: tick", "qslab: link ok" };
    for (int64_t i = 0; i < n; i++) {
        char text[96];
        snprintf(text, sizeof text, "log %d/%d: %s", (int)(i + 1), (int)n, words[i % 5]);
        qs_node_log('I', text);
    }
    char buf[96];
    qs_jw w;
    reply_begin(&w, buf, sizeof buf, id);
    qs_jw_int(&w, "n", n);
    qs_jw_end(&w);
    emit(&w);
}

/* ---- hs ------------------------------------------------------------------------------------------------ */
typedef struct {
    uint32_t id;
    uint32_t n;
    qs_hs_params p;
} hs_job;

static hs_job g_job;   /* owned by the workload task while g_busy */

static void emit_op(const hs_job *j, uint32_t i, const qs_op_result *r, size_t heap, size_t stack, double cpu)
{
    char buf[OUT_LINE];
    qs_jw w;
    qs_jw_init(&w, buf, sizeof buf);
    qs_jw_begin(&w);
    qs_jw_uint(&w, "id", j->id);
    qs_jw_str(&w, "ev", "op");
    qs_jw_uint(&w, "i", i);
    qs_jw_bool(&w, "ok", r->status == QS_OK);
    if (r->status != QS_OK) {
        qs_jw_str(&w, "err", qs_status_code(r->status));
        qs_jw_str(&w, "msg", r->msg);
    }
    qs_jw_obj(&w, "t");
    for (int k = 0; k < QS_T_N; k++) {
        if (!(r->t_set & (1u << k))) continue;
        qs_jw_fixed(&w, qs_step_name(k, j->p.suite), (double)r->t_ns[k] / 1000.0, 1);
    }
    qs_jw_end(&w);
    if (r->have_cr) {
        static const char hex[] = "0123456789abcdef";
        char cr[16];
        for (int k = 0; k < 8; k++) { cr[2 * k] = hex[r->cr[k] >> 4]; cr[2 * k + 1] = hex[r->cr[k] & 15]; }
        qs_jw_strn(&w, "cr", cr, 16);
    }
    if (r->have_ck) {
        static const char hex[] = "0123456789abcdef";
        char ck[64];
        for (int k = 0; k < 32; k++) { ck[2 * k] = hex[r->ck[k] >> 4]; ck[2 * k + 1] = hex[r->ck[k] & 15]; }
        qs_jw_strn(&w, "ck", ck, 64);
    }
    if (r->qkd_n) {   /* QKD suites: the key_IDs used (first one and how many), never key bytes */
        char u[37];
        qs_qkd_id_str(r->qkd_id, u);
        qs_jw_str(&w, "qkd_id", u);
        qs_jw_uint(&w, "qkd_n", r->qkd_n);
    }
    qs_jw_uint(&w, "hs_tx", r->hs_tx);
    qs_jw_uint(&w, "hs_rx", r->hs_rx);
    qs_jw_uint(&w, "rec_tx", r->rec_tx);
    qs_jw_uint(&w, "rec_rx", r->rec_rx);
    qs_jw_uint(&w, "recs", r->recs);
    qs_jw_uint(&w, "heap", heap);
    qs_jw_uint(&w, "stack", stack);
    qs_jw_fixed(&w, "cpu", cpu, 1);
    qs_jw_end(&w);
    emit_to(&w, qs_serial_write_deferred);   /* batched: op events may wait a tick, answers never do */
}

static void hs_task(void *arg)
{
    hs_job *j = (hs_job *)arg;
    uint32_t done = 0, failed = 0;
    int aborted = 0;
    qs_op_result r;
    (void)qs_hs_prepare(&j->p);   /* long-term keys (mutual); a failure shows in each op */
    const uint64_t b0 = qs_now_ns();
    for (uint32_t i = 0; i < j->n; i++) {
        if (atomic_load(&g_abort)) { aborted = 1; break; }
        qs_stack_reset();
        fold_max(&g_heap_peak, qs_heap_peak());
        const size_t heap0 = qs_heap_current();
        qs_heap_reset_peak();
        const uint64_t cpu0 = qs_task_cpu_ns();
        qs_marker(1);
        const uint64_t w0 = qs_now_ns();
        qs_hs_op(&j->p, &r);
        const uint64_t w1 = qs_now_ns();
        qs_marker(0);
        const uint64_t cpu1 = qs_task_cpu_ns();
        const size_t hpeak = qs_heap_peak();
        const size_t stack = qs_stack_used();
        /* --- the operation's clock has stopped; everything below is bookkeeping and serial I/O --- */
        fold_max(&g_heap_peak, hpeak);
        fold_max(&g_stack_peak, stack);
        atomic_fetch_add(&g_ops_total, 1u);
        double cpu = w1 > w0 ? 100.0 * (double)(cpu1 - cpu0) / (double)(w1 - w0) : 0.0;
        if (cpu > 100.0) cpu = 100.0;
        if (cpu < 0.0) cpu = 0.0;
        if (r.status == QS_OK) done++;
        else failed++;
        emit_op(j, i, &r, hpeak > heap0 ? hpeak - heap0 : 0, stack, cpu);
    }
    const uint64_t b1 = qs_now_ns();
    const double t_us = (double)(b1 - b0) / 1000.0;
    const uint32_t id = j->id;
    qs_wipe(&r, sizeof r);
    atomic_store(&g_abort, 0);
    atomic_store(&g_busy, 0);   /* before the answer: the controller may send the next hs right away */
    char buf[256];
    qs_jw w;
    qs_jw_init(&w, buf, sizeof buf);
    qs_jw_begin(&w);
    qs_jw_uint(&w, "id", id);
    qs_jw_bool(&w, "ok", !aborted);
    if (aborted) {
        qs_jw_str(&w, "err", "E_ABORTED");
        qs_jw_str(&w, "msg", "stopped by abort");
    }
    qs_jw_uint(&w, "done", done);
    qs_jw_uint(&w, "failed", failed);
    qs_jw_fixed(&w, "t_us", t_us, 1);
    /* burst bounds on the node clock (as ping's t_us): power windows when no marker line is wired */
    qs_jw_fixed(&w, "b0_us", (double)(b0 - g_boot_ns) / 1000.0, 1);
    qs_jw_fixed(&w, "b1_us", (double)(b1 - g_boot_ns) / 1000.0, 1);
    qs_jw_end(&w);
    emit(&w);
}

static int parse_hex32(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64) return -1;
    for (int i = 0; i < 64; i++) {
        char c = s[i];
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (v < 0) return -1;
        if (i & 1) out[i / 2] = (uint8_t)(out[i / 2] | v);
        else out[i / 2] = (uint8_t)(v << 4);
    }
    return 0;
}

/* IPv4/IPv6 literal or DNS name characters (IPv6 zone ids: '%'). */
static int host_ok(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == ':' || c == '_' || c == '%'))
            return 0;
    }
    return 1;
}

static void cmd_hs(uint32_t id, const qs_jobj *o)
{
    hs_job j;
    memset(&j, 0, sizeof j);
    j.id = id;
    int64_t v;
    const char *s;
    if (!(s = arg_str(o, "suite")) || !(j.p.suite = qs_suite_by_name(s))) {
        reply_err(id, "E_ARGS", "suite: unknown (hello lists the suites)");
        return;
    }
    const qs_jmember *mm = qs_json_get(o, "mutual");
    if (mm && mm->type != QS_JT_BOOL) { reply_err(id, "E_ARGS", "mutual: boolean"); return; }
    j.p.mutual = mm && mm->b;
    if (j.p.mutual && !qs_suite_mutual_ok(j.p.suite)) {
        reply_err(id, "E_ARGS", "mutual: only with the ML-KEM suites");
        return;
    }
    if (!(s = arg_str(o, "host")) || !s[0] || strlen(s) >= sizeof j.p.host || !host_ok(s)) {
        reply_err(id, "E_ARGS", "host: IP address or host name required (at most 127 bytes)");
        return;
    }
    memcpy(j.p.host, s, strlen(s) + 1);
    if (arg_int(o, "port", 1, 65535, 0, &v) != 1) { reply_err(id, "E_ARGS", "port: integer 1..65535 required"); return; }
    j.p.port = (uint16_t)v;
    if (arg_int(o, "n", 1, 100000, 1, &v) < 0) { reply_err(id, "E_ARGS", "n: integer 1..100000"); return; }
    j.n = (uint32_t)v;
    if (arg_int(o, "records", 0, QS_HS_MAX_RECORDS, 0, &v) < 0) { reply_err(id, "E_ARGS", "records: integer 0..1000000"); return; }
    j.p.records = (uint32_t)v;
    if (arg_int(o, "bytes", 1, QS_HS_MAX_BYTES, 256, &v) < 0) { reply_err(id, "E_ARGS", "bytes: integer 1..16384"); return; }
    j.p.bytes = (uint32_t)v;
    if (arg_int(o, "refresh", 0, 0xFFFFFFFFLL, 0, &v) < 0) { reply_err(id, "E_ARGS", "refresh: integer 0..4294967295"); return; }
    j.p.refresh = (uint32_t)v;
    if (j.p.refresh && j.p.records && (j.p.records - 1u) / j.p.refresh > 0xFFFFu) {
        reply_err(id, "E_ARGS", "records/refresh: more than 65536 key epochs");
        return;
    }
    if (qs_suite_qkd(j.p.suite) && qs_qkd_upd(j.p.records, j.p.refresh) > QS_QKD_MAX_UPD) {
        reply_err(id, "E_ARGS", "records/refresh: a QKD suite uses at most 256 QKD keys per connection");
        return;
    }
    const qs_jmember *am = qs_json_get(o, "aead");
    j.p.aead = QS_AEAD_AES256GCM;
    if (am && (!(s = arg_str(o, "aead")) || !(j.p.aead = qs_aead_by_name(s)))) {
        reply_err(id, "E_ARGS", "aead: aes-256-gcm or chacha20-poly1305");
        return;
    }
    /* none (HANDSHAKE.md §12) has no server key: its pin may be left out (a given one is checked for form only) */
    const int need_pin = !qs_suite_plaintext(j.p.suite);
    if ((need_pin || qs_json_get(o, "pin")) && (!(s = arg_str(o, "pin")) || parse_hex32(s, j.p.pin))) {
        reply_err(id, "E_ARGS", "pin: 64 hex digits (SHA-256 of the server SPKI) required");
        return;
    }
    j.p.timeout_ms = QS_NET_TIMEOUT_MS;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g_busy, &expected, 1)) {
        reply_err(id, "E_BUSY", "a workload is already running");
        return;
    }
    atomic_store(&g_abort, 0);
    g_job = j;
    if (qs_task_start(hs_task, &g_job) != QS_OK) {
        atomic_store(&g_busy, 0);
        reply_err(id, "E_BUSY", "workload task not ready");
    }
}

static void cmd_abort(uint32_t id)
{
    int busy = atomic_load(&g_busy);
    if (busy) atomic_store(&g_abort, 1);
    char buf[96];
    qs_jw w;
    reply_begin(&w, buf, sizeof buf, id);
    qs_jw_bool(&w, "busy", busy);
    qs_jw_end(&w);
    emit(&w);
}

static void cmd_reset(uint32_t id)
{
    char buf[64];
    qs_jw w;
    reply_begin(&w, buf, sizeof buf, id);
    qs_jw_end(&w);
    size_t n = qs_jw_frame(&w);
    /* Hold the serial lock until the restart so that a running workload cannot start a line that the restart
     * would cut in half; the answer is flushed first. */
    qs_qkd_wipe_all();   /* QKD keys never survive a reset */
    qs_serial_lock();
    if (n) qs_serial_write(buf, n);
    qs_serial_flush(2000);
    qs_port_reset();   /* returns only on failure */
    qs_serial_unlock();
    qs_node_log('E', "reset failed");
}

/* ---- net: Wi-Fi station credentials for the data plane (PROTOCOL.md §4 "net") ----------------------------------
 * The password is validated here, handed to the port, then wiped (the parsed request here, the raw line in
 * qs_node_run); it never appears in an answer, event or log line: error messages name the rule, not the value. */
static const char *net_state_name(int st)
{
    switch (st) {
    case QS_NET_HOST: return "host network";
    case QS_NET_UNCONFIGURED: return "unconfigured";
    case QS_NET_CONNECTING: return "connecting";
    case QS_NET_CONNECTED: return "connected";
    default: return "down";
    }
}

/* NULL when pass is acceptable: "" (open network), 8..63 printable ASCII characters (a WPA passphrase), or exactly
 * 64 hex digits (a raw PSK). */
static const char *net_pass_problem(const char *pass)
{
    size_t n = strlen(pass);
    if (n == 0) return NULL;
    if (n == 64) {
        for (size_t i = 0; i < 64; i++) {
            char c = pass[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                return "pass: 64 characters must be hex digits (a raw PSK); a passphrase has 8-63 characters";
        }
        return NULL;
    }
    if (n < 8 || n > 63) return "pass: empty (open network), 8-63 printable ASCII characters, or 64 hex digits";
    for (size_t i = 0; i < n; i++)
        if (pass[i] < 0x20 || pass[i] > 0x7e) return "pass: only printable ASCII characters (0x20-0x7E) in a passphrase";
    return NULL;
}

static void net_answer(uint32_t id)
{
    qs_net_info ni;
    memset(&ni, 0, sizeof ni);
    qs_port_net_status(&ni);
    ni.ip[sizeof ni.ip - 1] = '\0';
    ni.ssid[sizeof ni.ssid - 1] = '\0';
    char buf[384];   /* a 32-byte SSID escapes to at most 192 bytes */
    qs_jw w;
    reply_begin(&w, buf, sizeof buf, id);
    qs_jw_str(&w, "status", net_state_name(ni.state));
    if (ni.ip[0]) qs_jw_str(&w, "ip", ni.ip);
    if (ni.ssid[0]) qs_jw_str(&w, "ssid", ni.ssid);
    qs_jw_end(&w);
    emit(&w);
}

/* {"cmd":"net"}: status; {"cmd":"net","ssid":..,"pass":..}: store + (re)connect, answered with the status. */
static void cmd_net(uint32_t id, qs_jobj *o)
{
    const qs_jmember *ms = qs_json_get(o, "ssid");
    const qs_jmember *mp = qs_json_get(o, "pass");
    if (!ms && !mp) { net_answer(id); return; }
    if (!ms) { reply_err(id, "E_ARGS", "ssid: required with pass"); return; }
    const char *ssid = arg_str(o, "ssid");
    const size_t ls = ssid ? strlen(ssid) : 0;
    if (!ssid || ls < 1 || ls > 32) { reply_err(id, "E_ARGS", "ssid: string of 1-32 bytes required"); return; }
    if (!mp) { reply_err(id, "E_ARGS", "pass: required with ssid (\"\" for an open network)"); return; }
    const char *pass = arg_str(o, "pass");
    if (!pass) { reply_err(id, "E_ARGS", "pass: string required (\"\" for an open network)"); return; }
    const char *problem = net_pass_problem(pass);
    if (problem) { reply_err(id, "E_ARGS", problem); return; }
    if (atomic_load(&g_busy)) { reply_err(id, "E_BUSY", "a workload is running: configure the network between bursts"); return; }
    char msg[160] = "";
    const int rc = qs_port_net_config(ssid, pass, msg, sizeof msg);
    qs_wipe(o->arena, sizeof o->arena);   /* the decoded password (and ssid); qs_node_handle_line wipes the rest */
    if (rc == QS_OK) { net_answer(id); return; }
    const char *code = rc == QS_PORT_E_NOTSUP ? "E_NOTSUP" : rc == QS_E_ARGS ? "E_ARGS" : rc == QS_E_BUSY ? "E_BUSY" : "E_NET";
    if (!msg[0]) snprintf(msg, sizeof msg, "%s", rc == QS_PORT_E_NOTSUP ? "this port has no Wi-Fi station to configure"
                                                  : rc == QS_E_ARGS ? "credentials refused by the port" : "storing the credentials or reconnecting failed");
    reply_err(id, code, msg);
}

/* ---- dispatch -------------------------------------------------------------------------------------------- */
static void dispatch(qs_jobj *o)
{
    int64_t id64;
    if (arg_int(o, "id", 1, 0xFFFFFFFFLL, 0, &id64) != 1) { reply_err(0, "E_PARSE", "id: integer 1..4294967295 required"); return; }
    uint32_t id = (uint32_t)id64;
    const char *cmd = arg_str(o, "cmd");
    if (!cmd) { reply_err(id, "E_PARSE", "cmd: string required"); return; }
    if (strcmp(cmd, "hello") == 0) cmd_hello(id, o);
    else if (strcmp(cmd, "ping") == 0) cmd_ping(id);
    else if (strcmp(cmd, "info") == 0) cmd_info(id);
    else if (strcmp(cmd, "hs") == 0) cmd_hs(id, o);
    else if (strcmp(cmd, "abort") == 0) cmd_abort(id);
    else if (strcmp(cmd, "log") == 0) cmd_log(id, o);
    else if (strcmp(cmd, "reset") == 0) cmd_reset(id);
    else if (strcmp(cmd, "bench") == 0) qs_cmd_bench(id, o);
    else if (strcmp(cmd, "qkd") == 0) qs_cmd_qkd(id, o);
    else if (strcmp(cmd, "net") == 0) cmd_net(id, o);
    else {
        char msg[64];
        size_t n = strlen(cmd);
        snprintf(msg, sizeof msg, "unknown command '%.*s%s'", (int)(n > 24 ? 24 : n), cmd, n > 24 ? "..." : "");
        reply_err(id, "E_CMD", msg);
    }
}

void qs_node_handle_line(const char *line, size_t len)
{
    size_t jl = 0;
    int fc = qs_frame_check(line, len, &jl);
    if (fc == QS_FRAME_NONE) return;   /* console output / noise */
    if (fc == QS_FRAME_BADCRC) { reply_err(0, "E_CRC", "request failed its CRC"); return; }
    static qs_jobj o;   /* only the main task dispatches */
    if (qs_json_parse(&o, line, jl) != 0) {
        qs_wipe(&o, sizeof o);   /* whatever was decoded before the error (a password among it, perhaps) */
        reply_err(0, "E_PARSE", "request is not a JSON object");
        return;
    }
    /* A request carrying a password (net) leaves no decoded copy behind, whatever the command or the outcome. */
    const int secret = qs_json_get(&o, "pass") != NULL;
    dispatch(&o);
    if (secret) qs_wipe(&o, sizeof o);
}

void qs_node_run(int after_reset)
{
    static qs_line line;
    uint8_t buf[256];
    g_boot_ns = qs_now_ns();
    qs_line_init(&line);

    qs_port_boot_text(after_reset);
    const qs_board_info *b = qs_port_board();
    char ebuf[OUT_LINE];
    qs_jw w;
    qs_jw_init(&w, ebuf, sizeof ebuf);
    qs_jw_begin(&w);
    qs_jw_uint(&w, "id", 0);
    qs_jw_str(&w, "ev", "boot");
    qs_jw_int(&w, "proto", QS_PROTO_MAX);
    qs_jw_str(&w, "fw", QS_FW_VERSION);
    qs_jw_str(&w, "build", qs_build_hash());
    qs_jw_str(&w, "board", b->board);
    qs_jw_str(&w, "reason", after_reset ? "reset" : "poweron");
    qs_jw_end(&w);
    emit(&w);

    while (!qs_port_should_exit()) {
        int n = qs_serial_read(buf, sizeof buf, 100);
        if (n < 0) break;
        for (int i = 0; i < n; i++) {
            size_t len = 0;
            int ev = qs_line_feed(&line, buf[i], &len);
            if (ev == QS_LINE_READY) {
                qs_node_handle_line(line.buf, len);
                qs_wipe(line.buf, len + 1);   /* requests may carry secrets (net pass, qkd keys): no copy stays */
            } else if (ev == QS_LINE_TOOLONG) {
                qs_wipe(line.buf, sizeof line.buf);
                reply_err(0, "E_TOOLONG", "request line longer than 1024 bytes");
            }
        }
        qs_wipe(buf, (size_t)n);   /* every byte has gone into the line assembler */
    }
}

/* ---- shared with the other command modules (node_internal.h) ---------------------------------------------- */
void qs_node_reply_err(uint32_t id, const char *err, const char *msg) { reply_err(id, err, msg); }
void qs_node_reply_begin(qs_jw *w, char *buf, size_t cap, uint32_t id) { reply_begin(w, buf, cap, id); }
void qs_node_emit(qs_jw *w) { emit(w); }
void qs_node_emit_event(qs_jw *w) { emit_to(w, qs_serial_write_deferred); }
int qs_node_arg_int(const qs_jobj *o, const char *key, int64_t lo, int64_t hi, int64_t def, int64_t *out)
{
    return arg_int(o, key, lo, hi, def, out);
}
const char *qs_node_arg_str(const qs_jobj *o, const char *key) { return arg_str(o, key); }
int qs_node_claim(uint32_t id)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g_busy, &expected, 1)) {
        reply_err(id, "E_BUSY", "a workload is already running");
        return -1;
    }
    atomic_store(&g_abort, 0);
    return 0;
}
void qs_node_release(void)
{
    atomic_store(&g_abort, 0);
    atomic_store(&g_busy, 0);
}
int qs_node_abort_requested(void) { return atomic_load(&g_abort); }
