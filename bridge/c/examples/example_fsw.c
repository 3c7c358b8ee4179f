/* fsil-example-fsw: a flight software in C, served to the plant over any fsil link.
 *
 *   fsil-example-fsw zmq+ipc:///tmp/fsil/link.sock
 *   fsil-example-fsw serial:///dev/ttyACM0?baud=921600
 *   fsil run --scenario terminal --fsw-cmd 'bridge/c/build/fsil-example-fsw {link}'
 *
 * Waits for HELLO (60 s), sets up the guidance, navigation and control of lander.c from its
 * config, answers HELLO_ACK, then answers every FRAME with one COMMAND until the plant
 * ends the run. Exit codes (hil/errors.py): 0 the plant ended the run, 1 this flight
 * software failed (it sends END saying why), 2 bad arguments, 3 link or peer failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fsil/client.h"
#include "fsil/url.h"
#include "lander.h"

#ifdef FSIL_WITH_ZMQ
#include <zmq.h>
#endif

#define NAME "fsil-example-fsw " LANDER_PORTED_FROM " (C port of fsil-fsw, default)"
#define HELLO_TIMEOUT_MS 60000u
#define FRAME_TIMEOUT_MS 30000u
#define STATUS_EVERY_FRAMES 250u /* on byte-stream links: about every 5 s at 50 Hz */

static volatile sig_atomic_t interrupted = 0;

static void on_signal(int sig)
{
    interrupted = sig;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void runtime_name(char *out, size_t cap)
{
#if defined(__clang__)
    snprintf(out, cap, "c99 clang %d.%d.%d", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
    snprintf(out, cap, "c99 gcc %d.%d.%d", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
    snprintf(out, cap, "c99");
#endif
#ifdef FSIL_WITH_ZMQ
    {
        int major, minor, patch;
        size_t n = strlen(out);
        zmq_version(&major, &minor, &patch);
        snprintf(out + n, cap - n, ", libzmq %d.%d.%d", major, minor, patch);
    }
#endif
}

static int finite_command(const fsil_command_t *cmd)
{
    int k;
    if (!isfinite(cmd->throttle)) {
        return 0;
    }
    for (k = 0; k < 3; k++) {
        if (!isfinite(cmd->torque_nm[k])) {
            return 0;
        }
    }
    return 1;
}

static fsil_url_link_t url_link;
static fsil_client_t client;
static lander_t lander;

/* One line on stderr and the exit code for a failed client call. */
static int link_failure(fsil_client_t *c, const char *while_doing)
{
    char reason[FSIL_ERROR_TEXT_BYTES + 64];
    if (interrupted) {
        snprintf(reason, sizeof reason, "fsw: interrupted by signal %d", (int)interrupted);
        fsil_client_end(c, reason);
        fprintf(stderr, "fsil-example-fsw: %s\n", reason);
        return 3;
    }
    if (c->error.status == FSIL_ERR_END) {
        fprintf(stderr, "fsil-example-fsw: run ended: %s\n", c->end_reason);
        return 0;
    }
    if (c->error.status == FSIL_ERR_TIMEOUT) {
        snprintf(reason, sizeof reason, "fsw: no message from the plant %s (after seq %llu)",
                 while_doing, (unsigned long long)c->seq);
        fsil_client_end(c, reason);
        fprintf(stderr, "fsil-example-fsw: %s: %s\n", reason, c->error.text);
        return 3;
    }
    fsil_client_end(c, c->error.text); /* no-op if the client already sent END */
    fprintf(stderr, "fsil-example-fsw: %s: %s\n", fsil_err_name(c->error.status), c->error.text);
    return 3;
}

int main(int argc, char **argv)
{
    const fsil_hello_t *hello;
    const fsil_frame_t *frame;
    fsil_error_t err;
    fsil_err_t st;
    char runtime[96];
    struct sigaction sa;
    if (argc != 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: fsil-example-fsw LINK_URL\n  LINK_URL: " FSIL_URL_GRAMMAR "\n");
        return argc == 2 ? 0 : 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a wait returns early and the run ends */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    st = fsil_open_url(&url_link, argv[1], &err);
    if (st != FSIL_OK) {
        fprintf(stderr, "fsil-example-fsw: %s\n", err.text);
        return st == FSIL_ERR_URL ? 2 : 3;
    }
    fsil_client_init(&client, url_link.link);
    if (fsil_link_framing_stats(url_link.link) != NULL) {
        client.status_every = STATUS_EVERY_FRAMES;
    }
    if (fsil_client_hello(&client, HELLO_TIMEOUT_MS, &hello) != FSIL_OK) {
        int code = link_failure(&client, "for the HELLO");
        fsil_link_close(url_link.link);
        return code;
    }
    st = lander_init(&lander, hello->config, &err);
    if (st != FSIL_OK) {
        char reason[FSIL_ERROR_TEXT_BYTES + 64];
        snprintf(reason, sizeof reason, "fsw: bad HELLO config: %s", err.text);
        fsil_client_end(&client, reason);
        fprintf(stderr, "fsil-example-fsw: %s\n", reason);
        fsil_link_close(url_link.link);
        return 3;
    }
    runtime_name(runtime, sizeof runtime);
    if (fsil_client_ack(&client, NAME, runtime) != FSIL_OK) {
        int code = link_failure(&client, "taking the HELLO_ACK");
        fsil_link_close(url_link.link);
        return code;
    }
    for (;;) {
        fsil_command_t cmd;
        uint64_t t0, compute_us;
        st = fsil_client_next_frame(&client, FRAME_TIMEOUT_MS, &frame);
        if (st != FSIL_OK || interrupted) {
            int code = link_failure(&client, "for the next frame");
            fsil_link_close(url_link.link);
            return code;
        }
        memset(&cmd, 0, sizeof cmd);
        t0 = now_ns();
        lander_step(&lander, frame, &cmd);
        compute_us = (now_ns() - t0) / 1000u;
        cmd.compute_us = compute_us > UINT32_MAX ? UINT32_MAX : (uint32_t)compute_us;
        if (!finite_command(&cmd)) {
            char reason[FSIL_ERROR_TEXT_BYTES + 64];
            snprintf(reason, sizeof reason, "fsw error: non-finite throttle or torque at seq %llu",
                     (unsigned long long)frame->seq);
            fsil_client_end(&client, reason);
            fprintf(stderr, "fsil-example-fsw: %s\n", reason);
            fsil_link_close(url_link.link);
            return 1;
        }
        if (fsil_client_command(&client, &cmd) != FSIL_OK) {
            int code = link_failure(&client, "taking a command");
            fsil_link_close(url_link.link);
            return code;
        }
    }
}
