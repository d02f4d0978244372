/* qslab POSIX port (Linux: Raspberry Pi and virtual nodes): serial TX ring + pacing thread, monotonic clock,
 * heap accounting, workload thread with a painted stack, TCP sockets. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../core/crypto_port.h"
#include "../../core/port.h"
#include "../../core/qs.h"
#include "posix.h"
#include "../stack_paint.h"

#define STACK_DEFAULT (64u * 1024u)
static size_t g_stack_size = STACK_DEFAULT;
#define STACK_GUARD 4096u
#define STACK_MARGIN 1024u
#define TX_STALL_DROP_NS 2000000000ull   /* output nobody reads for 2 s goes "into the void", as on a UART */

static qs_board_info g_board = { "posix", "esp32", NULL, "monotonic", 240, 532480 };
static volatile sig_atomic_t g_exit;
void (*qs_posix_reset_hook)(void);

/* ---- time ------------------------------------------------------------------------------------------------ */
uint64_t qs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t qs_cycles(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return 0;
#endif
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void abs_deadline(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

/* ---- board / misc ----------------------------------------------------------------------------------------- */
const qs_board_info *qs_port_board(void) { return &g_board; }
int qs_port_should_exit(void) { return g_exit != 0; }
void qs_posix_request_exit(void) { g_exit = 1; }

int qs_random(void *buf, size_t len)
{
    uint8_t *p = (uint8_t *)buf;
    while (len) {
        ssize_t r = getrandom(p, len, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return QS_E_CRYPTO;
        }
        p += r;
        len -= (size_t)r;
    }
    return QS_OK;
}

/* No GPIO on the POSIX port: with --marker-fd each edge goes out as a line "<1|0> <CLOCK_MONOTONIC ns>" on that
 * descriptor (a pipe the controller routes to a virtual meter's digital input or a virtual Firmata pin). The time
 * stamp is taken at the edge, as a meter sampling a real GPIO would see it, so pipe latency does not move it. */
int qs_posix_marker_fd = -1;
static int g_marker;
void qs_marker(int on)
{
    on = on ? 1 : 0;
    if (on == g_marker) return;
    g_marker = on;
    if (qs_posix_marker_fd >= 0) {
        char line[40];
        int n = snprintf(line, sizeof line, "%d %llu\n", on, (unsigned long long)qs_now_ns());
        ssize_t w;
        do { w = write(qs_posix_marker_fd, line, (size_t)n); } while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN) qs_posix_marker_fd = -1;   /* reader gone: stop trying */
    }
}

void qs_port_reset(void)
{
    if (qs_posix_reset_hook) qs_posix_reset_hook();
}

/* ---- network station: the host's --------------------------------------------------------------------------
 * A POSIX node (Raspberry Pi OS, or the controller host for a virtual node) uses the host's network; Wi-Fi is the
 * operating system's business, so `net` with credentials is answered E_NOTSUP (nothing is stored or printed). */
int qs_port_net_config(const char *ssid, const char *pass, char *msg, size_t cap)
{
    (void)ssid;
    (void)pass;
    if (msg && cap)
        snprintf(msg, cap, "the POSIX port uses the host's network; configure Wi-Fi in the OS (raspi-config / NetworkManager)");
    return QS_PORT_E_NOTSUP;
}

/* The IPv4 address the node's data plane would leave from: the source address of the default route (a UDP
 * connect sends nothing), else the first non-loopback IPv4 address of an interface that is up, else "". */
static void host_addr(char *ip, size_t cap)
{
    ip[0] = '\0';
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s >= 0) {
        struct sockaddr_in dst;
        memset(&dst, 0, sizeof dst);
        dst.sin_family = AF_INET;
        dst.sin_port = htons(9);
        inet_pton(AF_INET, "192.0.2.1", &dst.sin_addr);   /* TEST-NET-1: only the route lookup matters */
        struct sockaddr_in me;
        socklen_t ml = sizeof me;
        if (connect(s, (struct sockaddr *)&dst, sizeof dst) == 0 && getsockname(s, (struct sockaddr *)&me, &ml) == 0 &&
            me.sin_addr.s_addr != htonl(INADDR_ANY))
            inet_ntop(AF_INET, &me.sin_addr, ip, (socklen_t)cap);
        close(s);
        if (ip[0]) return;
    }
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0) return;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
            continue;
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr, ip, (socklen_t)cap);
        break;
    }
    freeifaddrs(ifs);
}

void qs_port_net_status(qs_net_info *out)
{
    memset(out, 0, sizeof *out);
    out->state = QS_NET_HOST;
    host_addr(out->ip, sizeof out->ip);
}

/* ---- heap accounting: firmware/ports/heap_count.c (shared with the ESP32 port) -------------------------------- */

/* ---- serial: TX ring buffer drained by a (pacing) thread, like a UART driver ------------------------------ */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t data, space, idle;
    uint8_t *buf;
    size_t cap, tail, count;
    int inflight;
    int urgent;   /* something written with qs_serial_write is queued: drain now, not on the tick */
    int ticking;  /* the TX thread wakes every tick by itself: deferred writers need not signal it */
    uint64_t dropped;
} tx = { .mu = PTHREAD_MUTEX_INITIALIZER };

static pthread_mutex_t g_serial_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_rfd = -1, g_wfd = -1;
static uint32_t g_baud = 115200;
static int g_pace;

void qs_serial_lock(void) { pthread_mutex_lock(&g_serial_mu); }
void qs_serial_unlock(void) { pthread_mutex_unlock(&g_serial_mu); }

/* Appends to the TX ring (caller holds tx.mu); blocks while the ring is full. */
static void ring_put(const uint8_t *p, size_t len)
{
    while (len) {
        while (tx.count == tx.cap) {
            if (g_exit) return;
            pthread_cond_signal(&tx.data);
            struct timespec dl;
            abs_deadline(&dl, 100);
            pthread_cond_timedwait(&tx.space, &tx.mu, &dl);
        }
        size_t head = (tx.tail + tx.count) % tx.cap;
        size_t room = tx.cap - tx.count;
        size_t contig = tx.cap - head;
        size_t n = len < room ? len : room;
        if (n > contig) n = contig;
        memcpy(tx.buf + head, p, n);
        tx.count += n;
        p += n;
        len -= n;
    }
}

void qs_serial_write(const void *buf, size_t len)
{
    const uint8_t *p = (const uint8_t *)buf;
    if (!tx.buf) return;
    pthread_mutex_lock(&tx.mu);
    if (!g_pace && tx.count == 0 && !tx.inflight) {
        /* Unpaced and nothing queued: write straight to the line (no thread hand-off on the answer path). */
        while (len) {
            ssize_t w = write(g_wfd, p, len);
            if (w > 0) { p += w; len -= (size_t)w; continue; }
            if (w < 0 && errno == EINTR) continue;
            break;   /* EAGAIN (line full) or an error: the TX thread takes the rest */
        }
    }
    if (len) {
        ring_put(p, len);
        tx.urgent = 1;
        pthread_cond_signal(&tx.data);
    }
    pthread_mutex_unlock(&tx.mu);
}

void qs_serial_write_deferred(const void *buf, size_t len)
{
    if (!tx.buf) return;
    pthread_mutex_lock(&tx.mu);
    ring_put((const uint8_t *)buf, len);
    if (!tx.ticking) {   /* the TX thread sleeps without a deadline: wake it once so it starts ticking */
        tx.ticking = 1;
        pthread_cond_signal(&tx.data);
    }
    pthread_mutex_unlock(&tx.mu);
}

void qs_serial_flush(uint32_t timeout_ms)
{
    if (!tx.buf) return;
    struct timespec dl;
    abs_deadline(&dl, timeout_ms);
    pthread_mutex_lock(&tx.mu);
    while ((tx.count || tx.inflight) && !g_exit)
        if (pthread_cond_timedwait(&tx.idle, &tx.mu, &dl) == ETIMEDOUT) break;
    pthread_mutex_unlock(&tx.mu);
}

/* Writes n bytes to the line; returns when written or dropped (line stalled: nobody reads the pty). */
static void line_write(const uint8_t *p, size_t n, int *stalled)
{
    uint64_t stall_start = 0;
    while (n) {
        ssize_t w = write(g_wfd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            *stalled = 0;
            stall_start = 0;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { sleep_ns(50000000ull); return; }  /* EIO: no peer */
        if (*stalled) return;   /* still stalled: drop without waiting again */
        uint64_t now = qs_now_ns();
        if (!stall_start) stall_start = now;
        if (now - stall_start > TX_STALL_DROP_NS) { *stalled = 1; return; }
        struct pollfd pf = { g_wfd, POLLOUT, 0 };
        poll(&pf, 1, 100);
    }
}

static void *tx_thread(void *arg)
{
    (void)arg;
    /* named so a power model can tell it from the node's own work: it stands in for a UART's hardware FIFO */
    pthread_setname_np(pthread_self(), "qs-uart");
    uint8_t chunk[4096];
    int stalled = 0;
    uint64_t next_free = 0;
    /* paced: write ~1 ms worth of bytes at a time, then wait for them to "leave the wire" */
    size_t maxchunk = sizeof chunk;
    if (g_pace) {
        size_t per1ms = g_baud / 10u / 1000u;
        maxchunk = per1ms < 1 ? 1 : per1ms > sizeof chunk ? sizeof chunk : per1ms;
    }
    unsigned idle_ticks = 0;
    int draining = 0;   /* the last write left bytes behind: go on without waiting for a tick */
    for (;;) {
        pthread_mutex_lock(&tx.mu);
        /* Like a UART driver: urgent bytes (answers) leave at once; deferred bytes (op events) leave on the next
         * 1 ms tick. While output keeps coming the thread ticks on its own, so deferred writers never need to
         * wake it; after 100 quiet ticks it sleeps until woken. */
        while (!draining && !tx.urgent && !g_exit && tx.count < tx.cap / 2) {
            if (tx.count == 0 && !tx.ticking) {
                pthread_cond_wait(&tx.data, &tx.mu);
                continue;
            }
            struct timespec dl;
            abs_deadline(&dl, QS_SERIAL_DEFER_MS);
            if (pthread_cond_timedwait(&tx.data, &tx.mu, &dl) == ETIMEDOUT) {
                if (tx.count) break;
                if (++idle_ticks > 100) tx.ticking = 0;
            }
        }
        tx.urgent = 0;
        if (tx.count == 0) {
            draining = 0;
            pthread_mutex_unlock(&tx.mu);
            if (g_exit) sleep_ns(10000000ull);
            continue;
        }
        tx.ticking = 1;
        idle_ticks = 0;
        size_t n = tx.count;
        if (n > tx.cap - tx.tail) n = tx.cap - tx.tail;
        if (n > maxchunk) n = maxchunk;
        memcpy(chunk, tx.buf + tx.tail, n);
        tx.inflight = 1;
        pthread_mutex_unlock(&tx.mu);

        line_write(chunk, n, &stalled);
        if (stalled) tx.dropped += n;

        pthread_mutex_lock(&tx.mu);
        tx.tail = (tx.tail + n) % tx.cap;
        tx.count -= n;
        tx.inflight = 0;
        pthread_cond_broadcast(&tx.space);
        if (tx.count == 0) pthread_cond_broadcast(&tx.idle);
        draining = tx.count > 0;
        pthread_mutex_unlock(&tx.mu);

        if (g_pace && !stalled) {
            /* The line time of n bytes. Up to 2 ms of oversleeping is caught up (no sleep); a line that was
             * idle longer than that starts afresh, so idle time never turns into unpaced bursts. */
            uint64_t now = qs_now_ns();
            if (next_free + 2000000ull < now) next_free = now;
            next_free += (uint64_t)n * 10u * 1000000000ull / g_baud;
            if (next_free > now) sleep_ns(next_free - now);
        }
    }
    return NULL;
}

int qs_serial_read(uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    struct pollfd pf = { g_rfd, POLLIN, 0 };
    int r = poll(&pf, 1, (int)timeout_ms);
    if (r < 0) return errno == EINTR ? 0 : -1;
    if (r == 0) return 0;
    if (pf.revents & POLLNVAL) return -1;
    ssize_t n = read(g_rfd, buf, cap);
    if (n > 0) return (int)n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    /* EIO / 0: no peer on the other side of the pty (or a hang-up): wait and retry */
    sleep_ns(50000000ull);
    return 0;
}

/* ---- workload thread with a painted stack ------------------------------------------------------------------ */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qs_task_fn fn;
    void *arg;
} task = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static pthread_t g_task_thread;
static int g_task_started;
static uint8_t *stk_lo, *stk_hi;
static uint8_t *volatile stk_top;   /* entry frame of the workload thread */

static int on_task(void) { return g_task_started && pthread_equal(pthread_self(), g_task_thread) && stk_top; }

void qs_stack_reset(void)
{
    if (on_task()) qs_paint_reset(stk_lo, stk_top, STACK_MARGIN);
}

size_t qs_stack_used(void)
{
    return on_task() ? qs_paint_used(stk_lo, stk_top) : 0;
}

uint64_t qs_task_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *task_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "qs-work");   /* the workload task: handshakes and their sockets */
    volatile uint8_t entry = 0;
    stk_top = (uint8_t *)(((uintptr_t)&entry + 64) & ~(uintptr_t)7);
    (void)entry;
    qs_crypto_warmup();   /* lazy library set-up happens here, not in the first measured operation */
    for (;;) {
        pthread_mutex_lock(&task.mu);
        while (!task.fn) pthread_cond_wait(&task.cv, &task.mu);
        qs_task_fn fn = task.fn;
        void *a = task.arg;
        task.fn = NULL;
        pthread_mutex_unlock(&task.mu);
        fn(a);
    }
    return NULL;
}

int qs_task_start(qs_task_fn fn, void *arg)
{
    int rc = QS_OK;
    pthread_mutex_lock(&task.mu);
    if (task.fn || !g_task_started) rc = QS_E_BUSY;
    else {
        task.fn = fn;
        task.arg = arg;
        pthread_cond_signal(&task.cv);
    }
    pthread_mutex_unlock(&task.mu);
    return rc;
}

static int start_task_thread(void)
{
    uint8_t *base = mmap(NULL, g_stack_size + STACK_GUARD, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return -1;
    mprotect(base, STACK_GUARD, PROT_NONE);
    stk_lo = base + STACK_GUARD;
    stk_hi = stk_lo + g_stack_size;
    memset(stk_lo, QS_PAINT_BYTE, g_stack_size);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstack(&at, stk_lo, g_stack_size);
    pthread_mutex_lock(&task.mu);
    int rc = pthread_create(&g_task_thread, &at, task_main, NULL);
    if (rc == 0) g_task_started = 1;
    pthread_mutex_unlock(&task.mu);
    pthread_attr_destroy(&at);
    return rc == 0 ? 0 : -1;
}

/* ---- init -------------------------------------------------------------------------------------------------- */
void qs_posix_init_minimal(void) {}

int qs_posix_init(const qs_posix_cfg *cfg)
{
    g_board.board = cfg->board;
    g_board.cpu_mhz = cfg->cpu_mhz;
    g_board.ram = cfg->ram;
    g_board.name = cfg->name;
    g_rfd = cfg->rfd;
    g_wfd = cfg->wfd;
    g_baud = cfg->baud ? cfg->baud : 115200;
    g_pace = cfg->pace;
    cond_init_mono(&tx.data);
    cond_init_mono(&tx.space);
    cond_init_mono(&tx.idle);
    tx.cap = cfg->tx_ring ? cfg->tx_ring : 4096;
    if (cfg->stack_bytes) g_stack_size = cfg->stack_bytes;
    tx.buf = malloc(tx.cap);
    if (!tx.buf) return -1;
    pthread_t t;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);   /* signals go to the main thread */
    int rc = pthread_create(&t, NULL, tx_thread, NULL);
    if (rc == 0) { pthread_detach(t); rc = start_task_thread(); }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : -1;
}

/* ---- boot text -------------------------------------------------------------------------------------------- */
static void console(const char *s)
{
    qs_serial_lock();
    qs_serial_write(s, strlen(s));
    qs_serial_unlock();
}

void qs_port_boot_text(int after_reset)
{
    char line[200];
    if (strncmp(g_board.board, "esp32", 5) == 0) {
        console("ets Jul 29 2019 12:21:46\n\n");
        console(after_reset ? "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\n"
                            : "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\n");
        console("configsip: 0, SPIWP:0xee\nmode:DIO, clock div:2\nload:0x3fff0030,len:7104\nentry 0x400805cc\n");
        console("I (29) boot: ESP-IDF v5.1 2nd stage bootloader (qslab virtual node)\n");
    } else {
        console("[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd083]\n");
        console(after_reset ? "[    0.000000] reboot: Restarting system (qslab reset)\n"
                            : "[    0.000000] Linux version 6.1 (qslab virtual node)\n");
    }
    snprintf(line, sizeof line, "I (31) qslab: qslab-node %s build %s, posix port, board %s%s%s\n", QS_FW_VERSION,
             qs_build_hash(), g_board.board, g_board.name ? ", name " : "", g_board.name ? g_board.name : "");
    console(line);
}

/* ---- sockets: firmware/ports/sock_bsd.c (shared with the ESP32 port) ------------------------------------------ */
