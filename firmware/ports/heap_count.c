/* Heap accounting for the node's workload (qs_malloc & co. in core/port.h): a size header in front of every block,
 * current and peak bytes in atomics (the workload task allocates, the main task reads). Plain malloc underneath:
 * glibc on the POSIX port, ESP-IDF's heap (MALLOC_CAP_DEFAULT, internal RAM on the rig boards) on the ESP32. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "../core/port.h"

typedef union {
    max_align_t align;
    size_t n;
} heap_hdr;

static atomic_size_t h_cur, h_peak;

static void heap_add(size_t n)
{
    size_t cur = atomic_fetch_add(&h_cur, n) + n;
    size_t pk = atomic_load(&h_peak);
    while (cur > pk && !atomic_compare_exchange_weak(&h_peak, &pk, cur)) {}
}

void *qs_malloc(size_t n)
{
    if (n > SIZE_MAX - sizeof(heap_hdr)) return NULL;
    heap_hdr *h = malloc(sizeof(heap_hdr) + n);
    if (!h) return NULL;
    h->n = n;
    heap_add(n);
    return h + 1;
}

void qs_free(void *p)
{
    if (!p) return;
    heap_hdr *h = (heap_hdr *)p - 1;
    atomic_fetch_sub(&h_cur, h->n);
    free(h);
}

void *qs_realloc(void *p, size_t n)
{
    if (!p) return qs_malloc(n);
    if (n == 0) { qs_free(p); return NULL; }
    if (n > SIZE_MAX - sizeof(heap_hdr)) return NULL;
    heap_hdr *h = (heap_hdr *)p - 1;
    size_t old = h->n;
    heap_hdr *nh = realloc(h, sizeof(heap_hdr) + n);
    if (!nh) return NULL;
    nh->n = n;
    if (n > old) heap_add(n - old);
    else atomic_fetch_sub(&h_cur, old - n);
    return nh + 1;
}

size_t qs_heap_current(void) { return atomic_load(&h_cur); }
size_t qs_heap_peak(void) { return atomic_load(&h_peak); }
void qs_heap_reset_peak(void) { atomic_store(&h_peak, atomic_load(&h_cur)); }
