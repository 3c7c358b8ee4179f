/* Test driver for tests/test_c_example.py: replays a recorded run through the example's
 * guidance, navigation and control (examples/lander.c), one payload per stdin line:
 *
 *   hello HEX   a HELLO payload: set up from its config; prints {"ok": ...}
 *   frame HEX   a FRAME payload: one step; prints the command (floats as IEEE-754 bits)
 *
 * so the C port can be compared cycle by cycle with the Python reference on the same frames.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fsil/codec.h"
#include "lander.h"

static char line[2 * FSIL_MAX_PAYLOAD_BYTES + 64];
static uint8_t payload[FSIL_MAX_PAYLOAD_BYTES + 8];
static uint8_t hello_payload[FSIL_MAX_PAYLOAD_BYTES + 8];
static fsil_msg_t msg;
static lander_t lander;

static size_t unhex(const char *text, uint8_t *dst, size_t cap)
{
    size_t n = 0;
    unsigned byte;
    while (n < cap && sscanf(text + 2 * n, "%2x", &byte) == 1) {
        dst[n++] = (uint8_t)byte;
    }
    return n;
}

static void bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    printf("\"%016" PRIx64 "\"", b);
}

int main(void)
{
    while (fgets(line, sizeof line, stdin) != NULL) {
        fsil_error_t err;
        int is_hello = strncmp(line, "hello ", 6) == 0;
        uint8_t *buf = is_hello ? hello_payload : payload; /* HELLO's map must outlive it */
        size_t n = unhex(line + 6, buf, FSIL_MAX_PAYLOAD_BYTES + 8);
        if (fsil_decode(buf, n, &msg, &err) != FSIL_OK) {
            printf("{\"ok\":false,\"error\":\"%s\"}\n", err.text);
        } else if (is_hello && msg.type == FSIL_MSG_HELLO) {
            fsil_err_t st = lander_init(&lander, msg.u.hello.config, &err);
            printf("{\"ok\":%s,\"error\":\"%s\"}\n", st == FSIL_OK ? "true" : "false",
                   st == FSIL_OK ? "" : err.text);
        } else if (msg.type == FSIL_MSG_FRAME) {
            fsil_command_t cmd;
            int k;
            memset(&cmd, 0, sizeof cmd);
            lander_step(&lander, &msg.u.frame, &cmd);
            printf("{\"ok\":true,\"throttle\":");
            bits(cmd.throttle);
            printf(",\"torque_nm\":[");
            for (k = 0; k < 3; k++) {
                if (k > 0) {
                    putchar(',');
                }
                bits(cmd.torque_nm[k]);
            }
            printf("],\"mode\":%u,\"nav\":[", (unsigned)cmd.mode);
            for (k = 0; k < 7; k++) {
                if (k > 0) {
                    putchar(',');
                }
                bits(cmd.nav.v[k]);
            }
            printf("],\"flags\":%u}\n", (unsigned)cmd.flags);
        } else {
            printf("{\"ok\":false,\"error\":\"expected hello or frame\"}\n");
        }
    }
    return 0;
}
