/* qslab ESP-IDF port internals shared by main.c and port_esp32.c (not part of the portable core). */
#ifndef QS_ESP32_PORT_H
#define QS_ESP32_PORT_H

#include <stddef.h>

/* UART0 driver + deferred-TX task, ESP-IDF log redirection, marker GPIO, workload task. 0 or -1. Needs nothing
 * but FreeRTOS; call after qs_crypto_init (the workload task runs qs_crypto_warmup). */
int qs_esp32_port_init(void);
/* Wi-Fi station (esp_netif_init and the default event loop must exist). Connects with the credentials stored
 * in NVS (namespace "qslab", keys "wifi_ssid" / "wifi_pass"), if any. 0 or -1. */
int qs_esp32_net_start(void);
/* 1 when the last reset was a software restart (qs_port_reset / esp_restart): boot event reason "reset". */
int qs_esp32_after_reset(void);

/* The station's provisioning entries, qs_port_net_config / qs_port_net_status, are part of the port interface
 * (core/port.h): the core's `net` command calls them. */

#endif
