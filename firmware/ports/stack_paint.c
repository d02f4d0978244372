/* Stack painting shared by the POSIX and ESP32 ports (see stack_paint.h). Words are uintptr_t: 4 bytes on the
 * ESP32's Xtensa, 8 on the hosts. */
#include <string.h>
#include "stack_paint.h"

#define WORD sizeof(uintptr_t)

uint8_t *qs_paint_deepest(const uint8_t *lo, const uint8_t *top)
{
    const uintptr_t pat = (uintptr_t)0x0101010101010101ull * QS_PAINT_BYTE;
    const uintptr_t *w = (const uintptr_t *)(const void *)lo;
    const uintptr_t *e = (const uintptr_t *)(const void *)top;
    while (w < e && *w == pat) w++;
    return (uint8_t *)(uintptr_t)w;
}

void qs_paint_reset(uint8_t *lo, uint8_t *top, size_t margin)
{
    volatile uint8_t here = 0;
    uint8_t *limit = (uint8_t *)(((uintptr_t)&here - margin) & ~(uintptr_t)(WORD - 1));
    uint8_t *deep = qs_paint_deepest(lo, top);
    if (deep < limit) memset(deep, QS_PAINT_BYTE, (size_t)(limit - deep));
    (void)here;
}

size_t qs_paint_used(const uint8_t *lo, const uint8_t *top)
{
    const uint8_t *deep = qs_paint_deepest(lo, top);
    return deep < top ? (size_t)(top - deep) : 0;
}
