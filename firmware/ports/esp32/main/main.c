/* qslab node on ESP-IDF (ESP32 / ESP32-S3): the counterpart of ports/posix/main.c. Initialises NVS, the crypto
 * library (first, so that its heap goes through the accounting), the port and the network, then runs the
 * portable core's serial loop (core/node.c) on the main task. */
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs_flash.h"

#include "../../../core/crypto_port.h"
#include "../../../core/node.h"
#include "../../../core/port.h"
#include "esp32_port.h"

static const char *TAG = "qslab";

void app_main(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        /* partition layout changed or full: start over (this loses the stored Wi-Fi credentials) */
        ESP_LOGW(TAG, "nvs: %s, erasing", esp_err_to_name(err));
        err = nvs_flash_erase();
        if (err == ESP_OK) err = nvs_flash_init();
    }
    if (err != ESP_OK) ESP_LOGE(TAG, "nvs: %s (Wi-Fi credentials unavailable)", esp_err_to_name(err));

    /* first: the crypto library's allocations must all go through the heap accounting */
    int crc = qs_crypto_init();

    if (qs_esp32_port_init() != 0) {
        ESP_LOGE(TAG, "port initialisation failed, restarting");
        vTaskDelay(pdMS_TO_TICKS(1000));
        esp_restart();
    }
    if (crc < 0) qs_node_log('E', "crypto library initialisation failed");
    else if (crc > 0) qs_node_log('W', "crypto heap not accounted");

    err = esp_netif_init();
    if (err == ESP_OK) err = esp_event_loop_create_default();
    if (err != ESP_OK || qs_esp32_net_start() != 0)
        ESP_LOGE(TAG, "network initialisation failed (%s): hs will fail with E_NET", esp_err_to_name(err));

    qs_node_run(qs_esp32_after_reset());

    /* the loop only returns on a fatal serial error: restart like a watchdog would */
    qs_serial_flush(200);
    esp_restart();
}
