/* TCP for the node's data plane over BSD sockets: Linux (the POSIX port: Raspberry Pi, virtual node) and lwIP
 * (the ESP32 port) alike, so the ESP32's socket code is the code the host tests run.
 * Connect non-blocking and wait with select() for the connect timeout (lwIP ignores SO_SNDTIMEO for connect), then
 * blocking I/O with SO_SNDTIMEO / SO_RCVTIMEO; a small receive buffer so a message usually costs one recv().
 * getaddrinfo takes IP literals without DNS (glibc and lwIP); names go through the system's / DHCP's resolver. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include "../core/port.h"
#include "../core/qs.h"

#define SOCK_RBUF 2048

struct qs_sock {
    int fd;
    uint32_t rcvtimeo_ms;
    size_t roff, rlen;
    char err[80];
    uint8_t rbuf[SOCK_RBUF];
};

static void set_err(char *dst, size_t cap, int e)
{
    if (!dst || !cap) return;
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    char tmp[64];
    snprintf(dst, cap, "%s", strerror_r(e, tmp, sizeof tmp));   /* thread-safe where the libc has it */
#else
    snprintf(dst, cap, "%s", strerror(e));
#endif
}

static int set_timeo(int fd, int opt, uint64_t ms)
{
    if (ms == 0) ms = 1;   /* 0 would mean "forever" */
    struct timeval tv = { (time_t)(ms / 1000u), (suseconds_t)((ms % 1000u) * 1000u) };
    return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

static uint64_t remaining_ms(uint64_t deadline)
{
    uint64_t now = qs_now_ns();
    return now >= deadline ? 0 : (deadline - now + 999999u) / 1000000u;
}

static int connect_addr(const struct sockaddr *sa, socklen_t sl, uint64_t deadline, uint32_t io_timeout_ms,
                        int *fd_out, int *err)
{
    uint64_t left = remaining_ms(deadline);
    if (left == 0) { *err = ETIMEDOUT; return QS_E_TIMEOUT; }
#ifdef SOCK_CLOEXEC
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);   /* not into a re-exec'd node */
#else
    int fd = socket(sa->sa_family, SOCK_STREAM, IPPROTO_TCP);
#endif
    if (fd < 0) { *err = errno; return QS_E_NET; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) { *err = errno; close(fd); return QS_E_NET; }
    if (connect(fd, sa, sl) != 0) {
        if (errno != EINPROGRESS) { *err = errno; close(fd); return QS_E_NET; }
        fd_set wset, eset;
        FD_ZERO(&wset);
        FD_ZERO(&eset);
        FD_SET(fd, &wset);
        FD_SET(fd, &eset);
        struct timeval tv = { (time_t)(left / 1000u), (suseconds_t)((left % 1000u) * 1000u) };
        int r = select(fd + 1, NULL, &wset, &eset, &tv);
        if (r == 0) { *err = ETIMEDOUT; close(fd); return QS_E_TIMEOUT; }
        if (r < 0) { *err = errno; close(fd); return QS_E_NET; }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
        if (soerr != 0) {
            *err = soerr;
            close(fd);
            return soerr == ETIMEDOUT ? QS_E_TIMEOUT : QS_E_NET;
        }
    }
    if (fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) { *err = errno; close(fd); return QS_E_NET; }
    set_timeo(fd, SO_SNDTIMEO, io_timeout_ms);
    set_timeo(fd, SO_RCVTIMEO, io_timeout_ms);
    *fd_out = fd;
    return QS_OK;
}

int qs_tcp_connect(qs_sock **out, const char *host, uint16_t port, uint32_t timeout_ms, char *err, size_t errcap)
{
    uint64_t deadline = qs_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    int fd = -1, e = 0, rc;
    *out = NULL;
    /* lwIP's getaddrinfo takes IP literals without DNS and resolves names through the DHCP-provided server */
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    int g = getaddrinfo(host, service, &hints, &res);
    if (g != 0 || !res) {
        if (err && errcap) snprintf(err, errcap, "cannot resolve '%.40s' (getaddrinfo %d)", host, g);
        if (res) freeaddrinfo(res);
        return QS_E_NET;
    }
    rc = QS_E_NET;
    e = EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_addr(ai->ai_addr, ai->ai_addrlen, deadline, timeout_ms, &fd, &e);
        if (rc == QS_OK || rc == QS_E_TIMEOUT) break;
    }
    freeaddrinfo(res);
    if (rc != QS_OK) {
        set_err(err, errcap, e);
        return rc;
    }
    qs_sock *s = malloc(sizeof *s);   /* an lwIP resource, not workload heap: not accounted (as on POSIX) */
    if (!s) {
        close(fd);
        if (err && errcap) snprintf(err, errcap, "out of memory");
        return QS_E_NET;
    }
    s->fd = fd;
    s->rcvtimeo_ms = timeout_ms;
    s->roff = s->rlen = 0;
    s->err[0] = '\0';
    *out = s;
    return QS_OK;
}

static int sock_fail(qs_sock *s, int e)
{
    set_err(s->err, sizeof s->err, e);
    if (e == EPIPE || e == ECONNRESET || e == ENOTCONN) return QS_E_CLOSED;
    return QS_E_NET;
}

int qs_tcp_send(qs_sock *s, const void *buf, size_t len, uint32_t timeout_ms)
{
    const uint8_t *p = (const uint8_t *)buf;
    (void)timeout_ms;   /* SO_SNDTIMEO = the connect-time I/O timeout */
    while (len) {
        ssize_t n = send(s->fd, p, len, 0);
        if (n > 0) { p += n; len -= (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            snprintf(s->err, sizeof s->err, "send timed out");
            return QS_E_TIMEOUT;
        }
        return sock_fail(s, n < 0 ? errno : EPIPE);
    }
    return QS_OK;
}

int qs_tcp_recv(qs_sock *s, void *buf, size_t len, uint32_t timeout_ms)
{
    uint8_t *p = (uint8_t *)buf;
    size_t k = s->rlen - s->roff;
    if (k > len) k = len;
    memcpy(p, s->rbuf + s->roff, k);
    s->roff += k;
    p += k;
    len -= k;
    if (len == 0) return QS_OK;
    if (s->rcvtimeo_ms != timeout_ms) {
        set_timeo(s->fd, SO_RCVTIMEO, timeout_ms);
        s->rcvtimeo_ms = timeout_ms;
    }
    uint64_t deadline = qs_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (len) {
        ssize_t n;
        int direct = len >= SOCK_RBUF;
        if (direct) n = recv(s->fd, p, len, 0);
        else n = recv(s->fd, s->rbuf, SOCK_RBUF, 0);
        if (n > 0) {
            size_t got = (size_t)n;
            if (!direct) {
                s->roff = 0;
                s->rlen = got;
                got = got < len ? got : len;
                memcpy(p, s->rbuf, got);
                s->roff = got;
            }
            p += got;
            len -= got;
            if (len && qs_now_ns() > deadline) { snprintf(s->err, sizeof s->err, "timed out"); return QS_E_TIMEOUT; }
            continue;
        }
        if (n == 0) { snprintf(s->err, sizeof s->err, "connection closed by peer"); return QS_E_CLOSED; }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) { snprintf(s->err, sizeof s->err, "timed out"); return QS_E_TIMEOUT; }
        return sock_fail(s, errno);
    }
    return QS_OK;
}

const char *qs_tcp_error(const qs_sock *s) { return s && s->err[0] ? s->err : "error"; }

void qs_tcp_close(qs_sock *s)
{
    if (!s) return;
    close(s->fd);
    free(s);
}
