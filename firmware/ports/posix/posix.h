/* POSIX port internals shared by main.c and port.c (not part of the portable core). */
#ifndef QS_POSIX_H
#define QS_POSIX_H

#include <stdint.h>

typedef struct {
    const char *board;
    uint32_t cpu_mhz;
    uint64_t ram;
    const char *name;
    int rfd, wfd;         /* serial line (pty master or tty), non-blocking */
    uint32_t baud;
    int pace;             /* pace output to baud (10 bits per byte) */
    uint32_t tx_ring;     /* TX ring buffer bytes */
    uint32_t stack_bytes; /* workload task stack; smaller = cheaper high-water scan after each operation */
} qs_posix_cfg;

/* Starts the TX thread and the workload thread. Returns 0 or -1 (errno-style message on stderr). */
int qs_posix_init(const qs_posix_cfg *cfg);
/* Heap accounting / clock / sockets only (host tests: no serial, no threads). */
void qs_posix_init_minimal(void);
void qs_posix_request_exit(void);
/* Called by qs_port_reset(); set by main.c. */
extern void (*qs_posix_reset_hook)(void);
extern int qs_posix_marker_fd;   /* --marker-fd: marker edges as '1'/'0' bytes (-1 = none) */

#endif
