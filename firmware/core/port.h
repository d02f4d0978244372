/* qslab node firmware: platform port interface.
 *
 * The portable core (firmware/core) calls only these functions and the C standard library. A port
 * (POSIX: firmware/ports/posix, ESP32: ESP-IDF) implements them. Unless stated otherwise every function may
 * be called from the main task (serial loop) and from the workload task.
 */
#ifndef QS_PORT_H
#define QS_PORT_H

#include <stddef.h>
#include <stdint.h>

/* ---- board / identity ---------------------------------------------------------------------------------- */
typedef struct {
    const char *port;       /* "posix", "esp-idf" */
    const char *board;      /* board profile: "esp32", "esp32s3", "rpi4", "rpi3" */
    const char *name;       /* node name (may be NULL) */
    const char *clock;      /* clock source reported in hello: "monotonic", "cycles" */
    uint32_t cpu_mhz;
    uint64_t ram;           /* RAM budget of the board in bytes */
} qs_board_info;

const qs_board_info *qs_port_board(void);

/* ---- serial (control plane) ---------------------------------------------------------------------------- */
/* Read up to cap bytes, waiting at most timeout_ms. Returns bytes read (>0), 0 on timeout / transient
 * condition (e.g. no peer on a pty), <0 on a fatal error. */
int qs_serial_read(uint8_t *buf, size_t cap, uint32_t timeout_ms);
/* Queue len bytes for transmission (like a UART driver's TX ring buffer); blocks only while the buffer is
 * full. Callers hold qs_serial_lock() so that lines never interleave. */
void qs_serial_write(const void *buf, size_t len);
/* Like qs_serial_write, but the port may hold the bytes up to QS_SERIAL_DEFER_MS to send several lines in one
 * go (a UART FIFO drained on a timer tick). Used for streamed op events so the workload task does not pay a
 * driver wake-up per event; order with qs_serial_write is kept. */
#define QS_SERIAL_DEFER_MS 1
void qs_serial_write_deferred(const void *buf, size_t len);
/* Wait (at most timeout_ms) until everything queued has left the node. */
void qs_serial_flush(uint32_t timeout_ms);
void qs_serial_lock(void);
void qs_serial_unlock(void);

/* ---- time ---------------------------------------------------------------------------------------------- */
uint64_t qs_now_ns(void);       /* monotonic clock, ns (arbitrary origin) */
uint64_t qs_cycles(void);       /* CPU cycle counter, 0 when the port has none */

/* ---- heap accounting ----------------------------------------------------------------------------------- */
/* Allocations through these (and the crypto library's, which the crypto port routes here) are counted. */
void *qs_malloc(size_t n);
void *qs_realloc(void *p, size_t n);
void qs_free(void *p);
size_t qs_heap_current(void);   /* bytes currently allocated */
size_t qs_heap_peak(void);      /* highest qs_heap_current() since the last reset */
void qs_heap_reset_peak(void);  /* peak := current */

/* ---- workload task --------------------------------------------------------------------------------------- */
typedef void (*qs_task_fn)(void *arg);
/* Run fn(arg) on the workload task (its own thread/task with a painted stack), asynchronously.
 * Returns QS_OK, or QS_E_BUSY when a job is still queued. */
int qs_task_start(qs_task_fn fn, void *arg);
/* Called on the workload task only: repaint the stack used so far / stack bytes used since the last repaint
 * (measured from the task's entry frame to the deepest byte touched). */
void qs_stack_reset(void);
size_t qs_stack_used(void);
/* CPU time consumed by the calling task (the workload task), ns. */
uint64_t qs_task_cpu_ns(void);

/* Marker output (a GPIO the meter / Firmata board samples): high while an operation runs. */
void qs_marker(int on);

/* ---- sockets (data plane) -------------------------------------------------------------------------------- */
typedef struct qs_sock qs_sock;
/* Returns QS_OK, QS_E_NET or QS_E_TIMEOUT; on failure *out is NULL and err holds a short reason. */
int qs_tcp_connect(qs_sock **out, const char *host, uint16_t port, uint32_t timeout_ms, char *err, size_t errcap);
/* Send all bytes. QS_OK, QS_E_NET, QS_E_TIMEOUT, QS_E_CLOSED. */
int qs_tcp_send(qs_sock *s, const void *buf, size_t len, uint32_t timeout_ms);
/* Receive exactly len bytes. QS_OK, QS_E_NET, QS_E_TIMEOUT, QS_E_CLOSED. */
int qs_tcp_recv(qs_sock *s, void *buf, size_t len, uint32_t timeout_ms);
/* Short reason of the last failure on s (never NULL). */
const char *qs_tcp_error(const qs_sock *s);
void qs_tcp_close(qs_sock *s);

/* ---- network station (data plane; the `net` command, PROTOCOL.md §4) -------------------------------------- */
/* Returned by a port entry for a facility the port does not have (answered as E_NOTSUP). Not part of enum
 * qs_status (qs.h): only the net entries below return it. */
#define QS_PORT_E_NOTSUP (-100)

enum qs_net_state {
    QS_NET_HOST = 0,          /* the node uses its host's network (POSIX port): nothing to configure here */
    QS_NET_UNCONFIGURED = 1,  /* no station credentials stored */
    QS_NET_CONNECTING = 2,    /* credentials stored, not (yet / no longer) associated with an address */
    QS_NET_CONNECTED = 3,     /* associated, address in ip */
    QS_NET_DOWN = 4           /* the port's network stack did not start (see the boot log) */
};

typedef struct {
    int state;        /* enum qs_net_state */
    char ip[48];      /* the address the data plane uses, "" when none or unknown (NUL-terminated) */
    char ssid[33];    /* the configured SSID, "" when none or not applicable (NUL-terminated) */
} qs_net_info;

/* Store Wi-Fi station credentials and (re)connect with them. Called on the main task only, never while a workload
 * runs. The core has validated both (ssid 1..32 bytes; pass "" for an open network, 8..63 printable ASCII
 * characters, or 64 hex digits) and wipes its own copies after the call: the port keeps pass only where
 * connecting needs it (ESP32: NVS and the Wi-Fi driver), wipes any temporary copy, and never prints it.
 * Returns QS_OK, QS_E_ARGS, QS_E_NET or QS_PORT_E_NOTSUP (the port has no station to configure); on failure msg
 * (cap bytes) may hold a short reason, which must not contain pass. */
int qs_port_net_config(const char *ssid, const char *pass, char *msg, size_t cap);
/* The station's state now (any task). Fills every field of *out. */
void qs_port_net_status(qs_net_info *out);

/* ---- misc ---------------------------------------------------------------------------------------------- */
int qs_random(void *buf, size_t len);           /* non-crypto uses (QS_OK / <0) */
int qs_port_should_exit(void);                  /* main loop returns when true */
/* Port-specific boot text (ROM-like, non-frame lines) written to the serial line before the boot event. */
void qs_port_boot_text(int after_reset);
/* Restart the node (POSIX: re-exec on the same serial line). Returns only on failure. */
void qs_port_reset(void);

#endif
