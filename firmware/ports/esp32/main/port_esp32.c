/* qslab ESP-IDF port (ESP32 / ESP32-S3, ESP-IDF v5.x): implements core/port.h with ESP-IDF APIs, mirroring the
 * semantics of ports/posix/port.c:
 *   serial     UART0 driver (RX ring, TX ring drained by the driver's ISR); deferred writes are staged and handed
 *              to the driver by a small task one tick (1 ms) later; ESP-IDF log output is routed through the same
 *              lock so that log lines never cut a frame
 *   time       esp_timer_get_time (µs, 64-bit, common to both cores); cycles: CCOUNT (esp_cpu_get_cycle_count,
 *              32-bit per core) extended to 64 bits against esp_timer
 *   heap       malloc/realloc/free with a size header, counted (mbedTLS routed here by crypto/mbedtls.c)
 *   workload   a task pinned to CONFIG_QS_WORK_CORE with a statically allocated, painted stack; task CPU time from
 *              FreeRTOS run-time stats
 *   marker     gpio_set_level on CONFIG_QS_MARKER_GPIO
 *   sockets    lwIP BSD sockets: non-blocking connect + select for the connect timeout, SO_RCVTIMEO/SO_SNDTIMEO
 *   Wi-Fi      station mode; credentials from NVS, written by qs_port_net_config (the core's `net` command; never
 *              compiled in) */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <unistd.h>

#include "driver/gpio.h"
#include "driver/uart.h"
#include "esp_cpu.h"
#include "esp_event.h"
#include "esp_heap_caps.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_random.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "lwip/netdb.h"
#include "lwip/sockets.h"
#include "nvs.h"
#include "sdkconfig.h"

#include "../../../core/crypto_port.h"
#include "../../../core/port.h"
#include "../../../core/qs.h"
#include "esp32_port.h"
#include "../../stack_paint.h"

/* ---- configuration ----------------------------------------------------------------------------------------- */
#if CONFIG_IDF_TARGET_ESP32S3
#define QS_BOARD "esp32s3"
#define QS_BOARD_RAM 524288ull      /* same profile as the POSIX node's --board esp32s3 */
#elif CONFIG_IDF_TARGET_ESP32
#define QS_BOARD "esp32"
#define QS_BOARD_RAM 532480ull      /* --board esp32 */
#else
#error "qslab ESP-IDF port: targets esp32 and esp32s3 only (idf.py set-target esp32|esp32s3)"
#endif

#if defined(CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ)            /* ESP-IDF v5.1+ */
#define QS_CPU_MHZ CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ
#elif defined(CONFIG_ESP32S3_DEFAULT_CPU_FREQ_MHZ)      /* v5.0 */
#define QS_CPU_MHZ CONFIG_ESP32S3_DEFAULT_CPU_FREQ_MHZ
#elif defined(CONFIG_ESP32_DEFAULT_CPU_FREQ_MHZ)
#define QS_CPU_MHZ CONFIG_ESP32_DEFAULT_CPU_FREQ_MHZ
#else
#error "cannot determine the CPU frequency from sdkconfig"
#endif
#if defined(CONFIG_PM_ENABLE)
#error "qs_cycles assumes a fixed CPU clock: disable CONFIG_PM_ENABLE (sdkconfig.defaults)"
#endif

#if !defined(CONFIG_FREERTOS_GENERATE_RUN_TIME_STATS) || !defined(CONFIG_FREERTOS_USE_TRACE_FACILITY)
#error "qs_task_cpu_ns needs CONFIG_FREERTOS_GENERATE_RUN_TIME_STATS and CONFIG_FREERTOS_USE_TRACE_FACILITY"
#endif

#define QS_UART ((uart_port_t)CONFIG_ESP_CONSOLE_UART_NUM)
#define UART_RX_BUF 4096u    /* > a 1024-byte request line plus what arrives while the main task is busy */
#define UART_TX_RING 4096u   /* the POSIX port's TX ring size */
#define STAGE_CAP 2048u      /* deferred bytes held for at most one tick */

#define STACK_MARGIN 1536u   /* never paint this close below the live stack pointer (Xtensa register save areas,
                              * interrupt frames pushed while painting) */

#if portNUM_PROCESSORS > 1
#define WORK_CORE CONFIG_QS_WORK_CORE
#else
#define WORK_CORE 0
#endif

static const char *TAG = "qslab";

static qs_board_info g_board = { "esp-idf", QS_BOARD, NULL, "monotonic", QS_CPU_MHZ, QS_BOARD_RAM };
static char g_name[33];

const qs_board_info *qs_port_board(void) { return &g_board; }
int qs_port_should_exit(void) { return 0; }   /* a node never leaves its loop; main.c restarts if it does */

int qs_esp32_after_reset(void) { return esp_reset_reason() == ESP_RST_SW; }

void qs_port_reset(void)
{
    esp_restart();   /* does not return; the core has flushed the answer and holds the serial lock */
}

int qs_random(void *buf, size_t len)
{
    esp_fill_random(buf, len);
    return QS_OK;
}

/* ---- time ---------------------------------------------------------------------------------------------------- */
uint64_t qs_now_ns(void) { return (uint64_t)esp_timer_get_time() * 1000ull; }

/* CCOUNT is 32 bits per core and wraps every 2^32 / 240 MHz = 17.9 s. Each core keeps its own 64-bit extension;
 * wraps between two calls are counted from the esp_timer time that passed (fixed CPU clock), so a gap of any
 * length is handled. Values from different cores are not comparable: the workload task is pinned. */
static portMUX_TYPE g_cc_mux = portMUX_INITIALIZER_UNLOCKED;
static struct {
    uint32_t last_cc;
    int64_t last_us;
    uint64_t ext;
    int init;
} g_cc[portNUM_PROCESSORS];

uint64_t qs_cycles(void)
{
    uint64_t v;
    portENTER_CRITICAL_SAFE(&g_cc_mux);   /* no migration, no preemption between the two clock reads */
    const int core = (int)esp_cpu_get_core_id();
    const uint32_t cc = (uint32_t)esp_cpu_get_cycle_count();
    const int64_t us = esp_timer_get_time();
    if (!g_cc[core].init) {
        g_cc[core].init = 1;
        g_cc[core].ext = cc;
    } else {
        const uint32_t d = cc - g_cc[core].last_cc;   /* modulo 2^32 */
        const uint64_t expect = (uint64_t)(us - g_cc[core].last_us) * (uint64_t)QS_CPU_MHZ;
        /* expect ~ d + k * 2^32: k = wraps the modular difference missed (rounded to the nearest) */
        const uint64_t k = expect > d ? (expect - d + (1ull << 31)) >> 32 : 0;
        g_cc[core].ext += (uint64_t)d + (k << 32);
    }
    g_cc[core].last_cc = cc;
    g_cc[core].last_us = us;
    v = g_cc[core].ext;
    portEXIT_CRITICAL_SAFE(&g_cc_mux);
    return v;
}

/* ---- heap accounting: firmware/ports/heap_count.c (shared with the POSIX port) --------------------------------- */

/* ---- serial: UART0 driver ------------------------------------------------------------------------------------
 * qs_serial_write copies into the driver's TX ring buffer (the ISR drains it): the answer leaves at once.
 * qs_serial_write_deferred copies into a staging buffer; the qs-uart task hands it to the driver one tick later
 * (QS_SERIAL_DEFER_MS, FreeRTOS tick 1 ms), so a burst of op events costs one driver call per tick, not one per
 * event. g_tx_mu orders the two: a direct write first pushes whatever is staged. */
static SemaphoreHandle_t g_serial_mu;   /* qs_serial_lock: recursive (an ESP-IDF log line from inside is safe) */
static SemaphoreHandle_t g_tx_mu;       /* staging buffer + driver writes */
static TaskHandle_t g_tx_task;
static uint8_t g_stage[STAGE_CAP];
static size_t g_stage_len;
static volatile int g_uart_ok;

void qs_serial_lock(void)
{
    if (g_serial_mu) xSemaphoreTakeRecursive(g_serial_mu, portMAX_DELAY);
}

void qs_serial_unlock(void)
{
    if (g_serial_mu) xSemaphoreGiveRecursive(g_serial_mu);
}

/* Copies into the driver's TX ring; blocks only while the ring is full. Caller holds g_tx_mu. */
static void uart_put(const uint8_t *p, size_t n)
{
    while (n) {
        int w = uart_write_bytes(QS_UART, p, n);
        if (w <= 0) return;   /* driver error: the bytes are lost, as on a broken line */
        p += w;
        n -= (size_t)w;
    }
}

static void stage_drain(void)
{
    if (g_stage_len) {
        uart_put(g_stage, g_stage_len);
        g_stage_len = 0;
    }
}

void qs_serial_write(const void *buf, size_t len)
{
    if (!g_uart_ok || !len) return;
    xSemaphoreTake(g_tx_mu, portMAX_DELAY);
    stage_drain();
    uart_put((const uint8_t *)buf, len);
    xSemaphoreGive(g_tx_mu);
}

void qs_serial_write_deferred(const void *buf, size_t len)
{
    if (!g_uart_ok || !len) return;
    xSemaphoreTake(g_tx_mu, portMAX_DELAY);
    if (g_stage_len + len > STAGE_CAP) stage_drain();
    if (len > STAGE_CAP) {
        uart_put((const uint8_t *)buf, len);
    } else {
        const int wake = g_stage_len == 0;   /* the first staged byte starts the tick */
        memcpy(g_stage + g_stage_len, buf, len);
        g_stage_len += len;
        if (wake) xTaskNotifyGive(g_tx_task);
    }
    xSemaphoreGive(g_tx_mu);
}

static void tx_task(void *arg)
{
    (void)arg;
    TickType_t tick = pdMS_TO_TICKS(QS_SERIAL_DEFER_MS);
    if (tick < 1) tick = 1;
    for (;;) {
        ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
        vTaskDelay(tick);   /* until the next tick: at most QS_SERIAL_DEFER_MS */
        xSemaphoreTake(g_tx_mu, portMAX_DELAY);
        stage_drain();
        xSemaphoreGive(g_tx_mu);
    }
}

void qs_serial_flush(uint32_t timeout_ms)
{
    if (!g_uart_ok) return;
    if (xSemaphoreTake(g_tx_mu, pdMS_TO_TICKS(timeout_ms)) == pdTRUE) {
        stage_drain();
        xSemaphoreGive(g_tx_mu);
    }
    uart_wait_tx_done(QS_UART, pdMS_TO_TICKS(timeout_ms));   /* TX ring empty and the FIFO shifted out */
}

int qs_serial_read(uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    if (!g_uart_ok) return -1;
    if (cap == 0) return 0;
    /* uart_read_bytes waits for *all* requested bytes: wait for one, then take what is already buffered */
    int n = uart_read_bytes(QS_UART, buf, 1, pdMS_TO_TICKS(timeout_ms));
    if (n < 0) return -1;
    if (n == 0) return 0;
    size_t avail = 0;
    if (cap > 1 && uart_get_buffered_data_len(QS_UART, &avail) == ESP_OK && avail) {
        if (avail > cap - 1) avail = cap - 1;
        int m = uart_read_bytes(QS_UART, buf + 1, (uint32_t)avail, 0);
        if (m > 0) n += m;
    }
    return n;
}

/* ESP-IDF log output (Wi-Fi, lwIP, this port's ESP_LOGx) shares UART0 with protocol frames: every piece goes out
 * as whole lines under the serial lock, so it can never land inside a frame. The controller ignores non-frame
 * lines (PROTOCOL.md §9). Pieces without a newline are terminated (a line split in two is still console). */
static int log_vprintf(const char *fmt, va_list ap)
{
    char line[200];
    int n = vsnprintf(line, sizeof line, fmt, ap);
    if (n <= 0) return n;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (line[len - 1] != '\n') {
        if (len == sizeof line - 1) line[len - 1] = '\n';
        else line[len++] = '\n';
    }
    /* a log call made while this task is inside a serial write (e.g. a driver error) is dropped, not nested */
    if (xSemaphoreGetMutexHolder(g_tx_mu) == xTaskGetCurrentTaskHandle()) return n;
    if (xSemaphoreTakeRecursive(g_serial_mu, pdMS_TO_TICKS(100)) != pdTRUE) return n;   /* line busy: dropped */
    qs_serial_write(line, len);
    xSemaphoreGiveRecursive(g_serial_mu);
    return n;
}

/* ---- marker GPIO ----------------------------------------------------------------------------------------------- */
static int g_marker_gpio = -1;

void qs_marker(int on)
{
    if (g_marker_gpio >= 0) gpio_set_level((gpio_num_t)g_marker_gpio, on ? 1u : 0u);
}

static void marker_init(void)
{
    const int pin = CONFIG_QS_MARKER_GPIO;
    if (pin < 0) return;
    if (!GPIO_IS_VALID_OUTPUT_GPIO(pin)) {
        ESP_LOGW(TAG, "marker GPIO %d cannot drive an output: marker disabled", pin);
        return;
    }
    gpio_reset_pin((gpio_num_t)pin);
    if (gpio_set_direction((gpio_num_t)pin, GPIO_MODE_OUTPUT) != ESP_OK) return;
    gpio_set_level((gpio_num_t)pin, 0);
    g_marker_gpio = pin;
}

/* ---- workload task with a painted stack ------------------------------------------------------------------------
 * The stack buffer is ours (xTaskCreateStaticPinnedToCore), so its bounds are known: it is painted with 0xA5
 * before the task starts, repainted below the live frame by qs_stack_reset, and scanned from its low end by
 * qs_stack_used (the stack grows down on Xtensa). */
static SemaphoreHandle_t g_task_mu;
static qs_task_fn g_fn;
static void *g_fn_arg;
static TaskHandle_t g_task;
static StaticTask_t g_task_tcb;
static uint8_t *stk_lo, *stk_hi;
static uint8_t *volatile stk_top;   /* entry frame of the workload task */
static size_t g_stack_size;

static int on_task(void) { return g_task && xTaskGetCurrentTaskHandle() == g_task && stk_top; }

void qs_stack_reset(void)
{
    if (on_task()) qs_paint_reset(stk_lo, stk_top, STACK_MARGIN);
}

size_t qs_stack_used(void)
{
    return on_task() ? qs_paint_used(stk_lo, stk_top) : 0;
}

/* FreeRTOS charges run time to a task at each context switch, so the running slice is missing until the next one.
 * taskYIELD() forces a switch (back to this task when nothing else is ready) and brings the counter up to date.
 * Counter unit: microseconds (CONFIG_FREERTOS_RUN_TIME_STATS_USING_ESP_TIMER) or CPU cycles; 32-bit counters are
 * extended to 64 bits for the workload task (a 32-bit µs counter wraps after 71.6 min of CPU time). */
static uint32_t g_rt_last;
static uint64_t g_rt_high;

uint64_t qs_task_cpu_ns(void)
{
    TaskHandle_t me = xTaskGetCurrentTaskHandle();
    taskYIELD();
    TaskStatus_t st;
    vTaskGetInfo(me, &st, pdFALSE, eRunning);
    uint64_t rt = (uint64_t)st.ulRunTimeCounter;
    if (sizeof st.ulRunTimeCounter < sizeof(uint64_t) && me == g_task) {
        const uint32_t r32 = (uint32_t)rt;
        if (r32 < g_rt_last) g_rt_high += 1ull << 32;
        g_rt_last = r32;
        rt = g_rt_high + r32;
    }
#if defined(CONFIG_FREERTOS_RUN_TIME_STATS_USING_ESP_TIMER)
    return rt * 1000ull;
#else
    return rt * 1000ull / (uint64_t)QS_CPU_MHZ;
#endif
}

static void task_main(void *arg)
{
    (void)arg;
    volatile uint8_t entry = 0;
    uint8_t *top = (uint8_t *)(((uintptr_t)&entry + 64) & ~(uintptr_t)3);
    stk_top = top < stk_hi ? top : stk_hi;
    (void)entry;
    qs_crypto_warmup();   /* lazy library set-up happens here, not in the first measured operation */
    ESP_LOGI(TAG, "workload task: core %d, stack %u bytes, %u never touched after crypto warm-up",
             (int)esp_cpu_get_core_id(), (unsigned)g_stack_size, (unsigned)uxTaskGetStackHighWaterMark(NULL));
    for (;;) {
        ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
        for (;;) {
            xSemaphoreTake(g_task_mu, portMAX_DELAY);
            qs_task_fn fn = g_fn;
            void *a = g_fn_arg;
            g_fn = NULL;
            xSemaphoreGive(g_task_mu);
            if (!fn) break;
            fn(a);
        }
    }
}

int qs_task_start(qs_task_fn fn, void *arg)
{
    int rc = QS_OK;
    if (!g_task_mu) return QS_E_BUSY;
    xSemaphoreTake(g_task_mu, portMAX_DELAY);
    if (g_fn || !g_task) rc = QS_E_BUSY;
    else {
        g_fn = fn;
        g_fn_arg = arg;
    }
    xSemaphoreGive(g_task_mu);
    if (rc == QS_OK) xTaskNotifyGive(g_task);
    return rc;
}

static int start_task(void)
{
    g_stack_size = (size_t)CONFIG_QS_WORK_STACK_KIB * 1024u;
    stk_lo = heap_caps_malloc(g_stack_size, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
    if (!stk_lo) return -1;
    stk_hi = stk_lo + g_stack_size;
    memset(stk_lo, QS_PAINT_BYTE, g_stack_size);
    /* ESP-IDF: StackType_t is a byte and the depth is given in bytes */
    g_task = xTaskCreateStaticPinnedToCore(task_main, "qs-work", (uint32_t)g_stack_size, NULL,
                                           CONFIG_QS_WORK_PRIORITY, (StackType_t *)(void *)stk_lo, &g_task_tcb,
                                           WORK_CORE);
    return g_task ? 0 : -1;
}

/* ---- boot text -------------------------------------------------------------------------------------------------
 * The ROM and the second-stage bootloader have printed the real boot text already (same UART, 115200 baud); the
 * port adds its identity line, in ESP-IDF log format, before the core's boot event. */
static const char *reset_reason_text(esp_reset_reason_t r)
{
    switch (r) {
    case ESP_RST_POWERON: return "power-on";
    case ESP_RST_EXT: return "external pin";
    case ESP_RST_SW: return "software (qslab reset)";
    case ESP_RST_PANIC: return "panic";
    case ESP_RST_INT_WDT: return "interrupt watchdog";
    case ESP_RST_TASK_WDT: return "task watchdog";
    case ESP_RST_WDT: return "watchdog";
    case ESP_RST_DEEPSLEEP: return "deep sleep";
    case ESP_RST_BROWNOUT: return "brownout";
    default: return "other";
    }
}

void qs_port_boot_text(int after_reset)
{
    char line[240];
    int n = snprintf(line, sizeof line,
                     "I (%lu) qslab: qslab-node %s build %s, esp-idf port (ESP-IDF %s), board %s%s%s, %u MHz, "
                     "reset: %s%s, free heap %u\n",
                     (unsigned long)(esp_timer_get_time() / 1000), QS_FW_VERSION, qs_build_hash(),
                     esp_get_idf_version(), g_board.board, g_board.name ? ", name " : "",
                     g_board.name ? g_board.name : "", (unsigned)g_board.cpu_mhz,
                     reset_reason_text(esp_reset_reason()), after_reset ? "" : " (boot event: poweron)",
                     (unsigned)heap_caps_get_free_size(MALLOC_CAP_8BIT));
    if (n <= 0) return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    qs_serial_lock();
    qs_serial_write(line, len);
    qs_serial_unlock();
}

/* ---- init ------------------------------------------------------------------------------------------------------ */
static void load_name(void)
{
    nvs_handle_t h;
    if (nvs_open("qslab", NVS_READONLY, &h) != ESP_OK) return;
    size_t n = sizeof g_name;
    if (nvs_get_str(h, "name", g_name, &n) == ESP_OK && g_name[0]) g_board.name = g_name;
    nvs_close(h);
}

int qs_esp32_port_init(void)
{
    g_serial_mu = xSemaphoreCreateRecursiveMutex();
    g_tx_mu = xSemaphoreCreateMutex();
    g_task_mu = xSemaphoreCreateMutex();
    if (!g_serial_mu || !g_tx_mu || !g_task_mu) return -1;

    const uart_config_t uc = {
        .baud_rate = CONFIG_ESP_CONSOLE_UART_BAUDRATE,
        .data_bits = UART_DATA_8_BITS,
        .parity = UART_PARITY_DISABLE,
        .stop_bits = UART_STOP_BITS_1,
        .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
        .source_clk = UART_SCLK_DEFAULT,
    };
    fflush(stdout);   /* boot log written through the console VFS goes out before the driver takes over */
    if (uart_driver_install(QS_UART, UART_RX_BUF, UART_TX_RING, 0, NULL, 0) != ESP_OK) return -1;
    if (uart_param_config(QS_UART, &uc) != ESP_OK) return -1;
    if (xTaskCreate(tx_task, "qs-uart", 3072, NULL, CONFIG_QS_WORK_PRIORITY + 1, &g_tx_task) != pdPASS) return -1;
    g_uart_ok = 1;
    esp_log_set_vprintf(log_vprintf);

    load_name();
    marker_init();
    if (start_task() != 0) {
        ESP_LOGE(TAG, "cannot start the workload task (%u KiB stack)", (unsigned)CONFIG_QS_WORK_STACK_KIB);
        return -1;
    }
    return 0;
}

/* ---- sockets: firmware/ports/sock_bsd.c (shared with the POSIX port) ---------------------------------------- */

/* ---- Wi-Fi station ----------------------------------------------------------------------------------------------
 * Credentials are never compiled in: they live in NVS (namespace "qslab", keys "wifi_ssid", "wifi_pass"), written
 * by qs_port_net_config (core/port.h; the protocol's `net` command, sent by `qslab provision`) or by an NVS
 * partition image (README.md, "Wi-Fi"). Reconnects after a disconnect with a back-off of 1 s doubling to 30 s.
 * The password is never logged; temporary copies (wifi_config_t, the NVS read buffer) are wiped after use. */
#define NVS_NS "qslab"
static esp_timer_handle_t g_reconnect_timer;
static uint32_t g_backoff_ms = 1000;
static volatile int g_net_started;
static volatile int g_have_creds;
static volatile int g_connected;
static esp_netif_ip_info_t g_ip;
static char g_ssid[33];   /* the SSID in use (for `net` status answers); never the password */

static void reconnect_cb(void *arg)
{
    (void)arg;
    if (g_have_creds) esp_wifi_connect();
}

static void on_net_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
        if (g_have_creds) esp_wifi_connect();
        else ESP_LOGW(TAG, "wifi: no station credentials in NVS (namespace qslab): not connecting");
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
        const wifi_event_sta_disconnected_t *d = (const wifi_event_sta_disconnected_t *)data;
        g_connected = 0;
        ESP_LOGW(TAG, "wifi: disconnected (reason %d), retry in %u ms", d ? (int)d->reason : -1,
                 (unsigned)g_backoff_ms);
        if (g_have_creds && g_reconnect_timer) {
            esp_timer_stop(g_reconnect_timer);   /* not running is fine */
            esp_timer_start_once(g_reconnect_timer, (uint64_t)g_backoff_ms * 1000u);
            g_backoff_ms = g_backoff_ms >= 15000 ? 30000 : g_backoff_ms * 2;
        }
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        const ip_event_got_ip_t *e = (const ip_event_got_ip_t *)data;
        g_ip = e->ip_info;
        g_connected = 1;
        g_backoff_ms = 1000;
        ESP_LOGI(TAG, "wifi: sta connected, ip " IPSTR, IP2STR(&e->ip_info.ip));
    }
}

static int apply_creds(const char *ssid, const char *pass)
{
    wifi_config_t wc;
    memset(&wc, 0, sizeof wc);
    memcpy(wc.sta.ssid, ssid, strnlen(ssid, sizeof wc.sta.ssid));          /* 32 bytes, NUL only if shorter */
    memcpy(wc.sta.password, pass, strnlen(pass, sizeof wc.sta.password));  /* 64 bytes */
    wc.sta.threshold.authmode = pass[0] ? WIFI_AUTH_WPA2_PSK : WIFI_AUTH_OPEN;
    wc.sta.pmf_cfg.capable = true;
    wc.sta.pmf_cfg.required = false;
    esp_err_t e = esp_wifi_set_config(WIFI_IF_STA, &wc);
    qs_wipe(&wc, sizeof wc);   /* the driver keeps its own copy */
    if (e != ESP_OK) return -1;
    snprintf(g_ssid, sizeof g_ssid, "%.32s", ssid);
    g_have_creds = 1;
    return 0;
}

int qs_esp32_net_start(void)
{
    if (!esp_netif_create_default_wifi_sta()) return -1;
    wifi_init_config_t cfg = WIFI_INIT_CONFIG_DEFAULT();
    if (esp_wifi_init(&cfg) != ESP_OK) return -1;
    if (esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_net_event, NULL, NULL) != ESP_OK ||
        esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_net_event, NULL, NULL) != ESP_OK)
        return -1;
    const esp_timer_create_args_t ta = { .callback = reconnect_cb, .name = "qs-wifi-retry" };
    if (esp_timer_create(&ta, &g_reconnect_timer) != ESP_OK) return -1;
    esp_wifi_set_storage(WIFI_STORAGE_RAM);   /* our NVS keys are the only copy of the credentials */
    if (esp_wifi_set_mode(WIFI_MODE_STA) != ESP_OK) return -1;

    nvs_handle_t h;
    if (nvs_open(NVS_NS, NVS_READONLY, &h) == ESP_OK) {
        char ssid[33] = "", pass[65] = "";
        size_t ns = sizeof ssid, np = sizeof pass;
        if (nvs_get_str(h, "wifi_ssid", ssid, &ns) == ESP_OK && ssid[0]) {
            if (nvs_get_str(h, "wifi_pass", pass, &np) != ESP_OK) pass[0] = '\0';
            if (apply_creds(ssid, pass) != 0) ESP_LOGE(TAG, "wifi: stored credentials rejected");
        }
        qs_wipe(pass, sizeof pass);
        nvs_close(h);
    }
    if (esp_wifi_start() != ESP_OK) return -1;
    esp_wifi_set_ps(WIFI_PS_NONE);   /* no modem sleep: it would add up to a DTIM interval to every round trip */
    g_net_started = 1;
    return 0;
}

/* core/port.h. Called by the core's `net` command on the main task (never during a workload), after the core has
 * validated both strings; checked again here since NVS is what the next boot trusts. */
int qs_port_net_config(const char *ssid, const char *pass, char *msg, size_t cap)
{
    if (!ssid || !pass) return QS_E_ARGS;
    size_t ls = strlen(ssid), lp = strlen(pass);
    if (ls < 1 || ls > 32) return QS_E_ARGS;
    if (lp != 0 && (lp < 8 || lp > 64)) return QS_E_ARGS;
    if (lp == 64)
        for (size_t i = 0; i < 64; i++)
            if (!((pass[i] >= '0' && pass[i] <= '9') || (pass[i] >= 'a' && pass[i] <= 'f') ||
                  (pass[i] >= 'A' && pass[i] <= 'F')))
                return QS_E_ARGS;   /* 64 characters: a raw PSK in hex */
    if (!g_net_started) {
        snprintf(msg, cap, "the Wi-Fi station did not start at boot (see the boot log); nothing stored");
        return QS_E_NET;
    }
    nvs_handle_t h;
    esp_err_t e = nvs_open(NVS_NS, NVS_READWRITE, &h);
    if (e != ESP_OK) {
        snprintf(msg, cap, "NVS: cannot open namespace %s (%s)", NVS_NS, esp_err_to_name(e));
        return QS_E_NET;
    }
    e = nvs_set_str(h, "wifi_ssid", ssid);
    if (e == ESP_OK) e = nvs_set_str(h, "wifi_pass", pass);
    if (e == ESP_OK) e = nvs_commit(h);
    nvs_close(h);
    if (e != ESP_OK) {
        snprintf(msg, cap, "NVS: storing the credentials failed (%s)", esp_err_to_name(e));
        return QS_E_NET;
    }
    g_connected = 0;
    esp_wifi_disconnect();   /* fine when not connected */
    if (apply_creds(ssid, pass) != 0) {
        snprintf(msg, cap, "stored in NVS, but the Wi-Fi driver refused the configuration (applied at the next boot)");
        return QS_E_NET;
    }
    g_backoff_ms = 1000;
    if (g_reconnect_timer) esp_timer_stop(g_reconnect_timer);   /* a pending retry would use the old network */
    ESP_LOGI(TAG, "wifi: station credentials for \"%s\" stored, connecting", g_ssid);
    e = esp_wifi_connect();
    if (e != ESP_OK) {
        snprintf(msg, cap, "stored, but esp_wifi_connect failed (%s); retried at the next boot", esp_err_to_name(e));
        return QS_E_NET;
    }
    return QS_OK;
}

void qs_port_net_status(qs_net_info *out)
{
    memset(out, 0, sizeof *out);
    if (!g_net_started) { out->state = QS_NET_DOWN; return; }
    if (!g_have_creds) { out->state = QS_NET_UNCONFIGURED; return; }
    snprintf(out->ssid, sizeof out->ssid, "%s", g_ssid);
    if (!g_connected) { out->state = QS_NET_CONNECTING; return; }
    out->state = QS_NET_CONNECTED;
    snprintf(out->ip, sizeof out->ip, IPSTR, IP2STR(&g_ip.ip));
}
