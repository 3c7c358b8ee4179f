/* Link check for the Pico's core (make arm): the portable library and the example's
 * guidance, navigation and control in one Cortex-M0+ program, with stand-in UART
 * callbacks. It is compiled and linked, not run: the sizes it prints are what a board
 * project pays. On a real board the callbacks wrap the Pico SDK's stdio or UART calls. */
#include "fsil/client.h"
#include "fsil/stream_link.h"
#include "lander.h"

static volatile uint32_t ticks_ms;

static int32_t uart_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    (void)buf;
    (void)cap;
    ticks_ms += timeout_ms;
    return 0;
}

static int32_t uart_write(void *ctx, const uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    (void)ctx;
    (void)buf;
    (void)timeout_ms;
    return (int32_t)len;
}

static uint32_t uart_now_ms(void *ctx)
{
    (void)ctx;
    return ticks_ms++;
}

static fsil_stream_link_t link;
static fsil_client_t client;
static lander_t lander;

int main(void)
{
    fsil_stream_io_t io = {uart_read, uart_write, uart_now_ms, NULL, NULL};
    const fsil_hello_t *hello;
    const fsil_frame_t *frame;
    fsil_error_t err;
    fsil_stream_link_init(&link, &io);
    fsil_client_init(&client, &link.link);
    if (fsil_client_hello(&client, 60000, &hello) != FSIL_OK ||
        lander_init(&lander, hello->config, &err) != FSIL_OK ||
        fsil_client_ack(&client, "pico-fsw 1.0", "c99 cortex-m0plus") != FSIL_OK) {
        return 1;
    }
    while (fsil_client_next_frame(&client, 10000, &frame) == FSIL_OK) {
        fsil_command_t cmd = {0};
        lander_step(&lander, frame, &cmd);
        if (fsil_client_command(&client, &cmd) != FSIL_OK) {
            return 1;
        }
    }
    return 0;
}
