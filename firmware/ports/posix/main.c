/* qslab-node: the POSIX node (Raspberry Pi on a UART / virtual node on a pseudo-terminal). PROTOCOL.md §8.
 *
 *   qslab-node [--board esp32|esp32s3|rpi4|rpi3] [--baud N] [--pace] [--name NAME]
 *              [--pty | --serial /dev/ttyAMA0] [--pty-link PATH]
 *
 * Hidden (used by `reset`, which re-executes the binary on the same line): --pty-fd N, --pty-slave-fd N,
 * --reset.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "../../core/crypto_port.h"
#include "../../core/node.h"
#include "../../core/port.h"
#include "../../core/qs.h"
#include "posix.h"

typedef struct {
    const char *name;
    uint32_t mhz;
    uint64_t ram;
} board_profile;

static const board_profile BOARDS[] = {
    { "esp32", 240, 532480ull },
    { "esp32s3", 240, 524288ull },
    { "rpi4", 1500, 4294967296ull },
    { "rpi3", 1200, 1073741824ull },
};

static struct {
    const board_profile *board;
    uint32_t baud;
    int pace;
    const char *name;
    const char *serial;
    const char *link;
    int pty_fd, slave_fd;
    int after_reset;
    uint32_t stack_kib;
} opt = { &BOARDS[0], 115200, 0, NULL, NULL, NULL, -1, -1, 0, 64 };

static int g_argc;
static char **g_argv;
static int g_master = -1, g_slave = -1;
static char g_slave_path[PATH_MAX];

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qslab-node [--board esp32|esp32s3|rpi4|rpi3] [--baud N] [--pace] [--name NAME]\n"
            "                  [--pty | --serial PATH] [--pty-link PATH] [--stack-kib N] [--marker-fd N]\n"
            "--stack-kib: workload task stack (default 64; painted and scanned after every operation)\n"
            "--marker-fd: write each marker edge as a line \"<1|0> <CLOCK_MONOTONIC ns>\" to this descriptor\n"
            "qslab node firmware %s (build %s), POSIX port. Speaks protocol v1 on the serial line;\n"
            "with --pty (default) prints \"PTY <path>\" on stdout once the pseudo-terminal is ready.\n",
            QS_FW_VERSION, qs_build_hash());
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    if (!s || !*s || *s == '-') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char *a = argv[i], *val = NULL, *eq = NULL;
        char key[64];
        if (strncmp(a, "--", 2) == 0 && (eq = strchr(a, '=')) != NULL && (size_t)(eq - a) < sizeof key) {
            memcpy(key, a, (size_t)(eq - a));
            key[eq - a] = '\0';
            val = eq + 1;
            a = key;
        }
#define NEEDVAL()                                                             \
        do {                                                                  \
            if (!val) {                                                       \
                if (i + 1 >= argc) { fprintf(stderr, "qslab-node: %s needs a value\n", a); return -1; } \
                val = argv[++i];                                              \
            }                                                                 \
        } while (0)
        unsigned long long v;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { usage(stdout); exit(0); }
        else if (strcmp(a, "--version") == 0) { printf("qslab-node %s build %s\n", QS_FW_VERSION, qs_build_hash()); exit(0); }
        else if (strcmp(a, "--board") == 0) {
            NEEDVAL();
            opt.board = NULL;
            for (size_t k = 0; k < sizeof BOARDS / sizeof BOARDS[0]; k++)
                if (strcmp(val, BOARDS[k].name) == 0) opt.board = &BOARDS[k];
            if (!opt.board) { fprintf(stderr, "qslab-node: unknown board '%s' (esp32, esp32s3, rpi4, rpi3)\n", val); return -1; }
        } else if (strcmp(a, "--baud") == 0) {
            NEEDVAL();
            if (parse_uint(val, 100000000ull, &v) || v < 300) { fprintf(stderr, "qslab-node: bad --baud '%s'\n", val); return -1; }
            opt.baud = (uint32_t)v;
        } else if (strcmp(a, "--pace") == 0) {
            opt.pace = 1;
        } else if (strcmp(a, "--stack-kib") == 0) {
            NEEDVAL();
            if (parse_uint(val, 65536ull, &v) || v < 16) { fprintf(stderr, "qslab-node: bad --stack-kib '%s' (16..65536)\n", val); return -1; }
            opt.stack_kib = (uint32_t)v;
        } else if (strcmp(a, "--name") == 0) {
            NEEDVAL();
            opt.name = val;
        } else if (strcmp(a, "--pty") == 0) {
            opt.serial = NULL;
        } else if (strcmp(a, "--serial") == 0) {
            NEEDVAL();
            opt.serial = val;
        } else if (strcmp(a, "--pty-link") == 0) {
            NEEDVAL();
            opt.link = val;
        } else if (strcmp(a, "--pty-fd") == 0) {
            NEEDVAL();
            if (parse_uint(val, INT_MAX, &v)) return -1;
            opt.pty_fd = (int)v;
        } else if (strcmp(a, "--pty-slave-fd") == 0) {
            NEEDVAL();
            if (parse_uint(val, INT_MAX, &v)) return -1;
            opt.slave_fd = (int)v;
        } else if (strcmp(a, "--marker-fd") == 0) {
            NEEDVAL();
            if (parse_uint(val, INT_MAX, &v)) { fprintf(stderr, "qslab-node: bad --marker-fd '%s'\n", val); return -1; }
            qs_posix_marker_fd = (int)v;
        } else if (strcmp(a, "--reset") == 0) {
            opt.after_reset = 1;
        } else {
            fprintf(stderr, "qslab-node: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return -1;
        }
#undef NEEDVAL
    }
    return 0;
}

static speed_t baud_const(uint32_t b)
{
    switch (b) {
    case 300: return B300; case 1200: return B1200; case 2400: return B2400; case 4800: return B4800;
    case 9600: return B9600; case 19200: return B19200; case 38400: return B38400; case 57600: return B57600;
    case 115200: return B115200; case 230400: return B230400; case 460800: return B460800;
    case 500000: return B500000; case 576000: return B576000; case 921600: return B921600;
    case 1000000: return B1000000; case 1500000: return B1500000; case 2000000: return B2000000;
    case 3000000: return B3000000; case 4000000: return B4000000;
    default: return 0;
    }
}

static int set_raw(int fd, uint32_t baud, int strict)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return -1;
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~(tcflag_t)CRTSCTS;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    speed_t sp = baud_const(baud);
    if (sp) { cfsetispeed(&t, sp); cfsetospeed(&t, sp); }
    else if (strict) { errno = EINVAL; return -1; }
    return tcsetattr(fd, TCSANOW, &t);
}

static void set_cloexec(int fd, int on)
{
    int f = fcntl(fd, F_GETFD);
    if (f >= 0) fcntl(fd, F_SETFD, on ? (f | FD_CLOEXEC) : (f & ~FD_CLOEXEC));
}

static void set_nonblock(int fd)
{
    int f = fcntl(fd, F_GETFL);
    if (f >= 0) fcntl(fd, F_SETFL, f | O_NONBLOCK);
}

static int open_pty(void)
{
    if (opt.pty_fd >= 0) {   /* after reset: keep the master the controller's port is attached to */
        g_master = opt.pty_fd;
        if (ptsname_r(g_master, g_slave_path, sizeof g_slave_path) != 0) {
            fprintf(stderr, "qslab-node: --pty-fd %d is not a pty master\n", g_master);
            return -1;
        }
        g_slave = opt.slave_fd;
        if (g_slave < 0 || fcntl(g_slave, F_GETFD) < 0) g_slave = open(g_slave_path, O_RDWR | O_NOCTTY);
    } else {
        g_master = posix_openpt(O_RDWR | O_NOCTTY);
        if (g_master < 0 || grantpt(g_master) != 0 || unlockpt(g_master) != 0 ||
            ptsname_r(g_master, g_slave_path, sizeof g_slave_path) != 0) {
            perror("qslab-node: posix_openpt");
            return -1;
        }
        /* keep our own slave descriptor so the link survives the controller closing and reopening the port */
        g_slave = open(g_slave_path, O_RDWR | O_NOCTTY);
    }
    if (g_slave < 0) { perror("qslab-node: open pty slave"); return -1; }
    if (set_raw(g_slave, opt.baud, 0) != 0) { perror("qslab-node: tcsetattr"); return -1; }
    set_nonblock(g_master);
    set_cloexec(g_master, 1);
    set_cloexec(g_slave, 1);
    if (opt.link) {
        struct stat st;
        if (lstat(opt.link, &st) == 0) {
            if (!S_ISLNK(st.st_mode)) { fprintf(stderr, "qslab-node: --pty-link %s exists and is not a symlink\n", opt.link); return -1; }
            unlink(opt.link);
        }
        if (symlink(g_slave_path, opt.link) != 0) { perror("qslab-node: --pty-link"); return -1; }
    }
    return 0;
}

static int open_serial(void)
{
    g_master = open(opt.serial, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (g_master < 0) { fprintf(stderr, "qslab-node: %s: %s\n", opt.serial, strerror(errno)); return -1; }
    if (set_raw(g_master, opt.baud, 1) != 0) {
        fprintf(stderr, "qslab-node: %s: cannot set raw mode at %u baud: %s\n", opt.serial, opt.baud, strerror(errno));
        return -1;
    }
    return 0;
}

static void remove_link(void)
{
    if (!opt.link) return;
    char buf[PATH_MAX];
    ssize_t n = readlink(opt.link, buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = '\0';
        if (strcmp(buf, g_slave_path) == 0) unlink(opt.link);
    }
}

static void on_signal(int sig)
{
    (void)sig;
    qs_posix_request_exit();
}

/* reset: answer already flushed; re-execute ourselves on the same line. */
static void do_reset(void)
{
    char fdbuf[16], sfdbuf[16];
    char **nv = calloc((size_t)g_argc + 8, sizeof *nv);
    if (!nv) return;
    int k = 0;
    nv[k++] = g_argv[0];
    for (int i = 1; i < g_argc; i++) {
        const char *a = g_argv[i];
        if (strcmp(a, "--reset") == 0 || strncmp(a, "--pty-fd=", 9) == 0 || strncmp(a, "--pty-slave-fd=", 15) == 0) continue;
        if (strcmp(a, "--pty-fd") == 0 || strcmp(a, "--pty-slave-fd") == 0) { i++; continue; }
        nv[k++] = g_argv[i];
    }
    nv[k++] = "--reset";
    if (!opt.serial) {
        snprintf(fdbuf, sizeof fdbuf, "%d", g_master);
        snprintf(sfdbuf, sizeof sfdbuf, "%d", g_slave);
        nv[k++] = "--pty-fd";
        nv[k++] = fdbuf;
        nv[k++] = "--pty-slave-fd";
        nv[k++] = sfdbuf;
        set_cloexec(g_master, 0);
        set_cloexec(g_slave, 0);
    }
    nv[k] = NULL;
    execv("/proc/self/exe", nv);
    execvp(g_argv[0], nv);
    fprintf(stderr, "qslab-node: reset: exec failed: %s\n", strerror(errno));
    if (!opt.serial) {
        set_cloexec(g_master, 1);
        set_cloexec(g_slave, 1);
    }
    free(nv);
}

int main(int argc, char **argv)
{
    /* first: the crypto library's allocations must all go through the heap accounting */
    int crc = qs_crypto_init();
    if (crc < 0) { fprintf(stderr, "qslab-node: crypto library initialisation failed\n"); return 1; }
    if (crc > 0) fprintf(stderr, "qslab-node: warning: crypto heap not accounted\n");

    g_argc = argc;
    g_argv = argv;
    if (parse_args(argc, argv) != 0) return 2;

    /* A virtual node (pty) lives and dies with the controller that started it; on --serial it is the Pi's
     * service and outlives whoever started it (systemd, or the rpi-ssh flasher's supervise mode over ssh). */
    if (!opt.serial) {
        pid_t parent = getppid();
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) return 0;   /* parent already gone */
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if ((opt.serial ? open_serial() : open_pty()) != 0) return 1;

    qs_posix_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.board = opt.board->name;
    cfg.cpu_mhz = opt.board->mhz;
    cfg.ram = opt.board->ram;
    cfg.name = opt.name;
    cfg.rfd = g_master;
    cfg.wfd = g_master;
    cfg.baud = opt.baud;
    cfg.pace = opt.pace;
    cfg.tx_ring = 4096;
    cfg.stack_bytes = opt.stack_kib * 1024u;
    qs_posix_reset_hook = do_reset;
    if (qs_posix_init(&cfg) != 0) { perror("qslab-node: threads"); remove_link(); return 1; }

    if (!opt.serial && !opt.after_reset) {
        printf("PTY %s\n", g_slave_path);
        fflush(stdout);
    }
    qs_node_run(opt.after_reset);

    qs_serial_flush(200);
    remove_link();
    fflush(stdout);
    _exit(0);   /* the workload thread may be inside the crypto library: no atexit handlers */
}
