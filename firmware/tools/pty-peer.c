/* pty-peer: the far end of a serial wire under full control of a test.
 * Allocates a pseudo-terminal, prints "PTY <slave path>", then copies stdin -> pty and pty -> stdout.
 * Exits (closing the pty) on stdin EOF or SIGTERM. Used by the link tests to script a node byte by byte. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) { struct pollfd q = {fd, POLLOUT, 0}; poll(&q, 1, 100); continue; }
      return -1;
    }
    p += w; n -= (size_t)w;
  }
  return 0;
}

int main(void) {
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) || unlockpt(master)) { perror("pty-peer: posix_openpt"); return 1; }
  const char *name = ptsname(master);
  if (!name) { perror("pty-peer: ptsname"); return 1; }
  /* Hold the slave open so the master never reads EIO while the controller reopens the port. */
  int slave = open(name, O_RDWR | O_NOCTTY);
  if (slave < 0) { perror("pty-peer: open slave"); return 1; }
  struct termios tio;
  if (tcgetattr(slave, &tio) == 0) { cfmakeraw(&tio); tcsetattr(slave, TCSANOW, &tio); }
  printf("PTY %s\n", name);
  fflush(stdout);
  char buf[65536];
  struct pollfd fds[2] = {{0, POLLIN, 0}, {master, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) { if (errno == EINTR) continue; break; }
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) break;
      if (write_all(master, buf, (size_t)n)) break;
    }
    if (fds[1].revents & POLLIN) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n > 0 && write_all(1, buf, (size_t)n)) break;
    }
  }
  close(slave);
  close(master);
  return 0;
}
