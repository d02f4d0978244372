/* Stack high-water by painting (both ports): the workload task's stack is filled with a known byte, an operation
 * runs, and the deepest overwritten word tells how much it used. The ports own the stack and know which task is the
 * workload; this is the painting and scanning they share. */
#ifndef QS_STACK_PAINT_H
#define QS_STACK_PAINT_H
#include <stddef.h>
#include <stdint.h>

#define QS_PAINT_BYTE 0xA5u   /* = FreeRTOS tskSTACK_FILL_BYTE, so uxTaskGetStackHighWaterMark agrees on the ESP32 */

/* Deepest word below `top` (the task's entry frame) that is no longer paint; stacks grow down from top to lo. */
uint8_t *qs_paint_deepest(const uint8_t *lo, const uint8_t *top);
/* Repaints from the deepest written word up to `margin` bytes below the caller's stack pointer. A full scan every
 * time: whatever ran since the last measurement (input preparation, event formatting) may have gone deeper. */
void qs_paint_reset(uint8_t *lo, uint8_t *top, size_t margin);
/* Bytes of stack used since the last reset. */
size_t qs_paint_used(const uint8_t *lo, const uint8_t *top);

#endif
