/* Fuzz driver for the portable C library, built with AddressSanitizer and
 * UndefinedBehaviorSanitizer (`make -C bridge/c fuzz`):
 *
 *   build/fsil-fuzz [INPUTS [SEED]]     default 200000 inputs, seed 1
 *
 * Each input is one of: a payload of random bytes; a valid payload (encoded here) mutated
 * by bit flips, byte sets, inserts, cuts and splices; a byte stream of good and damaged
 * frames fed to the deframer in random pieces; or such a stream served to the client
 * (handshake, frames, commands) through an in-memory byte-stream link. Checks, beyond "no
 * sanitizer report": a decoded payload encodes again and decodes to the same bytes; every
 * good frame comes out whole and every damaged one is counted exactly once; the deframer
 * never holds more than FSIL_MAX_FRAME_BYTES. Prints one JSON line; exits 1 on a failed
 * check (a sanitizer report aborts it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsil/client.h"
#include "fsil/codec.h"
#include "fsil/framing.h"
#include "fsil/stream_link.h"

static uint64_t rng_state = 1;

static uint64_t rnd(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static size_t below(size_t n) { return n == 0 ? 0 : (size_t)(rnd() % n); }

static double rnd_double(void)
{
    static const double specials[] = {0.0, -0.0, 1.0, -1.5, 1e308, -1e-308, 5e-324, 1737400.0};
    uint64_t bits;
    double d;
    if (below(4) == 0) {
        return specials[below(sizeof specials / sizeof specials[0])];
    }
    bits = rnd();
    memcpy(&d, &bits, sizeof d);
    return d == d && d - d == 0.0 ? d : 0.25; /* any finite bit pattern */
}

static long failures = 0;

#define CHECK(cond, what)                                                              \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            failures++;                                                                \
            fprintf(stderr, "fsil-fuzz: check failed: %s (line %d)\n", what, __LINE__); \
        }                                                                              \
    } while (0)

/* ---- seed payloads ----------------------------------------------------------------------- */

#define SEEDS 12
static uint8_t seeds[SEEDS][FSIL_MAX_PAYLOAD_BYTES];
static size_t seed_len[SEEDS];
static uint8_t config_buf[2048];
static uint8_t rates_buf[256];

static void put_f(fsil_mpw_t *w, const char *key, double value)
{
    fsil_mpw_cstr(w, key);
    fsil_mpw_double(w, value);
}

static void put_f3(fsil_mpw_t *w, const char *key, double x, double y, double z)
{
    fsil_mpw_cstr(w, key);
    fsil_mpw_array(w, 3);
    fsil_mpw_double(w, x);
    fsil_mpw_double(w, y);
    fsil_mpw_double(w, z);
}

/* A HELLO config that passes CONFIG_SCHEMA (every section, the optional ones too, integers
 * where numbers are due), plus unlisted keys: text, deep nesting. */
static size_t make_config(void)
{
    fsil_mpw_t w;
    uint32_t j;
    fsil_mpw_init(&w, config_buf, sizeof config_buf);
    fsil_mpw_map(&w, 11);
    fsil_mpw_cstr(&w, "vehicle");
    fsil_mpw_map(&w, 8);
    put_f(&w, "dry_mass_kg", 1100.0);
    fsil_mpw_cstr(&w, "propellant_kg");
    fsil_mpw_int(&w, 0);
    put_f(&w, "max_thrust_n", 9000.0);
    put_f(&w, "min_throttle", 0.1);
    put_f(&w, "isp_s", 318.0);
    put_f(&w, "throttle_time_constant_s", 0.05);
    fsil_mpw_cstr(&w, "inertia_kgm2");
    fsil_mpw_array(&w, 3);
    fsil_mpw_int(&w, 2300);
    fsil_mpw_double(&w, 2300.0);
    fsil_mpw_double(&w, 1800.0);
    put_f3(&w, "max_torque_nm", 400.0, 400.0, 250.0);
    fsil_mpw_cstr(&w, "site");
    fsil_mpw_map(&w, 3);
    put_f3(&w, "up", 0.6, -0.8, 0.0);
    put_f3(&w, "east", 0.8, 0.6, -0.0);
    put_f(&w, "radius_m", 1737400.0);
    fsil_mpw_cstr(&w, "nav_init");
    fsil_mpw_map(&w, 6);
    fsil_mpw_cstr(&w, "t_us");
    fsil_mpw_int(&w, 0);
    put_f3(&w, "r_m", 1.0e6, -1.3e6, 12.25);
    put_f3(&w, "v_mps", 1334.1, 1063.99, -0.03);
    fsil_mpw_cstr(&w, "q");
    fsil_mpw_array(&w, 4);
    fsil_mpw_double(&w, 0.92);
    fsil_mpw_int(&w, 0);
    fsil_mpw_double(&w, -0.38);
    fsil_mpw_double(&w, 0.0);
    put_f(&w, "pos_sigma_m", 120.0);
    put_f(&w, "vel_sigma_mps", 0.2);
    fsil_mpw_cstr(&w, "altimeter");
    fsil_mpw_map(&w, 3);
    put_f3(&w, "boresight_body", 0.0, 0.0, 1.0);
    put_f(&w, "noise_m", 0.1);
    put_f(&w, "noise_fraction", 0.001);
    fsil_mpw_cstr(&w, "ignition_t_us");
    fsil_mpw_int(&w, 30000000);
    put_f(&w, "imu_hz", 200.0);
    fsil_mpw_cstr(&w, "moon");
    fsil_mpw_map(&w, 3);
    put_f(&w, "gm_m3ps2", 4.9028e12);
    put_f(&w, "radius_m", 1737400.0);
    put_f(&w, "rotation_rad_s", 2.6617e-6);
    fsil_mpw_cstr(&w, "velocimeter");
    fsil_mpw_map(&w, 4);
    fsil_mpw_cstr(&w, "beams_body");
    fsil_mpw_array(&w, 3);
    for (j = 0; j < 3; j++) {
        fsil_mpw_array(&w, 3);
        fsil_mpw_double(&w, j == 0 ? 0.42 : -0.21);
        fsil_mpw_double(&w, j == 0 ? 0.0 : j == 1 ? 0.37 : -0.37);
        fsil_mpw_double(&w, 0.9);
    }
    put_f(&w, "velocity_noise_mps", 0.02);
    put_f(&w, "range_noise_m", 2.0);
    put_f(&w, "max_range_m", 5000.0);
    fsil_mpw_cstr(&w, "star_tracker");
    fsil_mpw_map(&w, 6);
    put_f3(&w, "boresight_body", 0.0, 1.0, 0.0);
    put_f(&w, "cross_sigma_rad", 2.4e-5);
    put_f(&w, "roll_sigma_rad", 1.9e-4);
    fsil_mpw_cstr(&w, "rate_hz");
    fsil_mpw_int(&w, 5);
    put_f(&w, "latency_s", 0.1);
    put_f(&w, "max_rate_radps", 0.035);
    fsil_mpw_cstr(&w, "label");
    fsil_mpw_cstr(&w, "Mare Crisium \xe2\x80\x94 r\xc3\xa9gion");
    fsil_mpw_cstr(&w, "deep");
    for (j = 0; j < 10; j++) {
        fsil_mpw_array(&w, 2);
        fsil_mpw_nil(&w);
    }
    fsil_mpw_bool(&w, true);
    CHECK(!w.overflow, "the seed config fits");
    return w.len;
}

static size_t make_rates(void)
{
    fsil_mpw_t w;
    fsil_mpw_init(&w, rates_buf, sizeof rates_buf);
    fsil_mpw_map(&w, 6);
    put_f(&w, "frame_hz", 50.0);
    fsil_mpw_cstr(&w, "imu_hz");
    fsil_mpw_int(&w, 200);
    put_f(&w, "altimeter_hz", 10.0);
    put_f(&w, "physics_hz", 200.0);
    put_f(&w, "velocimeter_hz", 10.0);
    put_f(&w, "star_tracker_hz", 5.0);
    return w.len;
}

static void make_seeds(void)
{
    static fsil_msg_t m;
    size_t k;
    uint32_t j;
    size_t config_len = make_config(), rates_len = make_rates();
    for (k = 0; k < SEEDS; k++) {
        memset(&m, 0, sizeof m);
        switch (k % 6) {
        case 0:
            m.type = FSIL_MSG_HELLO;
            m.u.hello.role = fsil_str("plant");
            m.u.hello.scenario = fsil_str("terminal");
            m.u.hello.rates.ptr = rates_buf;
            m.u.hello.rates.len = (uint32_t)rates_len;
            m.u.hello.config.ptr = config_buf;
            m.u.hello.config.len = (uint32_t)config_len;
            break;
        case 1:
            m.type = FSIL_MSG_HELLO_ACK;
            m.u.hello_ack.role = fsil_str("fsw");
            m.u.hello_ack.software = fsil_str("fsil-fuzz");
            m.u.hello_ack.runtime = fsil_str("c99");
            break;
        case 2:
            m.type = FSIL_MSG_FRAME;
            m.u.frame.seq = (uint32_t)(rnd() >> (32 + rnd() % 32));
            m.u.frame.t_us = (int64_t)(rnd() >> 2);
            m.u.frame.imu.count = (uint32_t)(k % 7);
            for (j = 0; j < m.u.frame.imu.count; j++) {
                fsil_imu_sample_t *s = &m.u.frame.imu.s[j];
                s->t_us = (int64_t)(rnd() >> 8) + (int64_t)j * ((int64_t)1 << 56);
                s->dv[0] = rnd_double();
                s->dv[1] = 0.001;
                s->dv[2] = 0.0081;
                s->dth[0] = rnd_double();
                s->dth[1] = 1e-6;
                s->dth[2] = -0.0;
            }
            m.u.frame.alt.present = k % 2 == 0;
            m.u.frame.alt.t_us = 24600000;
            m.u.frame.alt.range_m = 15012.25;
            m.u.frame.alt.valid = true;
            m.u.frame.vel.present = k % 4 == 2;
            m.u.frame.vel.t_us = 24600000;
            m.u.frame.vel.vlos_mps[0] = -12.5;
            m.u.frame.vel.range_m[2] = 130.25;
            m.u.frame.vel.valid_mask = 5;
            m.u.frame.att.present = true; /* seed 2: a valid sample, seed 8: an invalid one */
            m.u.frame.att.t_us = 24500000;
            m.u.frame.att.q[0] = k < 6 ? 0.6532814824381883 : 1.0;
            m.u.frame.att.q[1] = k < 6 ? -0.2705980500730985 : 0.0;
            m.u.frame.att.q[2] = k < 6 ? 0.6532814824381883 : 0.0;
            m.u.frame.att.q[3] = k < 6 ? 0.2705980500730985 : 0.0;
            m.u.frame.att.valid = k < 6;
            break;
        case 3:
            m.type = FSIL_MSG_COMMAND;
            m.u.command.seq = k;
            m.u.command.throttle = 0.65;
            m.u.command.torque_nm[0] = 1.5;
            m.u.command.mode = 2;
            m.u.command.compute_us = 850;
            m.u.command.flags = 5;
            m.u.command.nav.present = k % 2 == 1;
            m.u.command.nav.v[6] = 1987.61;
            break;
        case 5: {
            static const char *const names[] = {"frames_received", "crc_errors"};
            static const uint64_t values[] = {8533, 18446744073709551615ull};
            CHECK(fsil_encode_status(seeds[k], sizeof seeds[k], &seed_len[k], 7, names, values,
                                     2) == FSIL_OK, "a STATUS encodes");
            continue;
        }
        default:
            m.type = FSIL_MSG_END;
            m.u.end.seq = 1200;
            m.u.end.reason = fsil_str("touchdown");
            break;
        }
        CHECK(fsil_encode(&m, seeds[k], sizeof seeds[k], &seed_len[k], NULL) == FSIL_OK,
              "a seed message encodes");
        CHECK(fsil_decode(seeds[k], seed_len[k], &m, NULL) == FSIL_OK, "a seed message decodes");
    }
}

static const uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
                                      0xc2, 0xc3, 0xc4, 0xc7, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
                                      0xd0, 0xd3, 0xd4, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
                                      0xe0, 0xff};

/* Mutate buf (len bytes, room for cap) in place; returns the new length. */
static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
    size_t n = 1 + below(4), k;
    for (k = 0; k < n; k++) {
        size_t at = below(len + 1);
        switch (below(6)) {
        case 0:
            if (at < len) {
                buf[at] ^= (uint8_t)(1u << below(8));
            }
            break;
        case 1:
            if (at < len) {
                buf[at] = interesting[below(sizeof interesting)];
            }
            break;
        case 2:
            if (len < cap) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)rnd();
                len++;
            }
            break;
        case 3: {
            size_t cut = 1 + below(9);
            if (at < len) {
                cut = cut > len - at ? len - at : cut;
                memmove(buf + at, buf + at + cut, len - at - cut);
                len -= cut;
            }
            break;
        }
        case 4: { /* splice a piece of another seed */
            size_t s = below(SEEDS), from = below(seed_len[s]), piece = 1 + below(40);
            piece = piece > seed_len[s] - from ? seed_len[s] - from : piece;
            piece = piece > cap - at ? cap - at : piece;
            memcpy(buf + at, seeds[s] + from, piece);
            len = at + piece > len ? at + piece : len;
            break;
        }
        default:
            len = at; /* truncate */
            break;
        }
    }
    return len;
}

/* ---- one payload through the codec --------------------------------------------------------- */

static fsil_msg_t msg, msg2;
static uint8_t enc[FSIL_MAX_PAYLOAD_BYTES], enc2[FSIL_MAX_PAYLOAD_BYTES];
static long decoded_ok = 0, rejected = 0;

static void payload_input(const uint8_t *p, size_t len)
{
    fsil_error_t err;
    size_t n = 0, n2 = 0;
    fsil_mpr_t r;
    double d;
    int64_t i;
    fsil_str_t s;
    fsil_map_t sub;
    if (fsil_decode(p, len, &msg, &err) != FSIL_OK) {
        rejected++;
        CHECK(err.text[0] != '\0', "a rejected payload has a reason");
        return;
    }
    decoded_ok++;
    CHECK(fsil_encode(&msg, enc, sizeof enc, &n, &err) == FSIL_OK, "a decoded message encodes");
    CHECK(fsil_decode(enc, n, &msg2, &err) == FSIL_OK, "an encoded message decodes");
    CHECK(fsil_encode(&msg2, enc2, sizeof enc2, &n2, &err) == FSIL_OK && n2 == n &&
          memcmp(enc, enc2, n) == 0, "encode(decode(x)) is stable");
    if (msg.type == FSIL_MSG_HELLO) { /* the map reader on whatever map came */
        fsil_map_t config = msg.u.hello.config;
        (void)fsil_map_get_f64(config, "vehicle.dry_mass_kg", &d, &err);
        (void)fsil_map_get_i64(config, "ignition_t_us", &i, &err);
        (void)fsil_map_get_str(config, "label", &s, &err);
        (void)fsil_map_get_map(config, "vehicle", &sub, &err);
        (void)fsil_map_find(config, "deep", &r, &err);
        (void)fsil_map_get_f64s(config, "vehicle.inertia_kgm2", &d, 1, &err);
    }
}

/* ---- framing -------------------------------------------------------------------------------- */

static fsil_deframer_t deframer;
static uint8_t stream[64 * 1024];
static uint8_t frame_buf[FSIL_MAX_FRAME_BYTES + 8];
static uint8_t sent[16][FSIL_MAX_PAYLOAD_BYTES];
static size_t sent_len[16];
static long good_fed = 0, good_delivered = 0, bad_fed = 0, bad_counted = 0;

static void stream_input(void)
{
    size_t len = 0, k, frames = 1 + below(12), next_good = 0, fed = 0;
    int good[16];
    fsil_deframer_init(&deframer);
    stream[len++] = 0; /* a flush: each frame on its own */
    for (k = 0; k < frames; k++) {
        size_t plen = 1 + below(below(8) == 0 ? FSIL_MAX_PAYLOAD_BYTES : 200), n, j;
        for (j = 0; j < plen; j++) {
            sent[k][j] = below(3) == 0 ? 0 : (uint8_t)rnd();
        }
        sent_len[k] = plen;
        CHECK(fsil_frame_encode(sent[k], plen, frame_buf, sizeof frame_buf, &n) == FSIL_OK,
              "a frame encodes");
        good[k] = below(3) != 0;
        if (!good[k]) { /* damage without touching the delimiter or adding one */
            size_t at = below(n - 1);
            uint8_t b = frame_buf[at];
            switch (below(3)) {
            case 0: frame_buf[at] = (uint8_t)(b == 0xff ? 0x01 : b + 1); break;
            case 1: memmove(frame_buf + at, frame_buf + at + 1, n - at - 1); n--; break;
            default: frame_buf[at] ^= (uint8_t)(1u << below(8));
                     if (frame_buf[at] == 0) { frame_buf[at] = 0x55 ^ b ? 0x55 ^ b : 1; }
                     break;
            }
            if (n <= 1) { /* nothing left but the delimiter: an empty candidate, not a frame */
                good[k] = -1;
            }
        }
        if (len + n > sizeof stream) {
            frames = k;
            break;
        }
        memcpy(stream + len, frame_buf, n);
        len += n;
    }
    while (fed < len) {
        const uint8_t *payload;
        size_t payload_len, piece = 1 + below(below(2) ? 64 : len);
        piece = piece > len - fed ? len - fed : piece;
        fed += fsil_deframer_push(&deframer, stream + fed, piece, &payload, &payload_len);
        CHECK(deframer.held <= FSIL_MAX_FRAME_BYTES, "the deframer holds at most one frame");
        if (payload != NULL) {
            while (next_good < frames && good[next_good] != 1) {
                next_good++;
            }
            CHECK(next_good < frames && payload_len == sent_len[next_good] &&
                  memcmp(payload, sent[next_good], payload_len) == 0,
                  "the good frames come out whole and in order");
            next_good++;
            good_delivered++;
        }
    }
    for (k = 0; k < frames; k++) {
        good_fed += good[k] == 1;
        bad_fed += good[k] == 0;
    }
    bad_counted += (long)(deframer.stats.cobs_errors + deframer.stats.runts +
                          deframer.stats.oversize + deframer.stats.crc_errors);
    CHECK(deframer.stats.bytes_in == len, "every byte counted in");
}

static void garbage_stream_input(void)
{
    size_t len = below(sizeof stream), k, fed = 0;
    uint64_t bytes = 0;
    for (k = 0; k < len; k++) {
        stream[k] = below(50) == 0 ? 0 : (uint8_t)rnd();
    }
    fsil_deframer_init(&deframer);
    while (fed < len) {
        const uint8_t *payload;
        size_t payload_len, piece = 1 + below(5000);
        piece = piece > len - fed ? len - fed : piece;
        fed += fsil_deframer_push(&deframer, stream + fed, piece, &payload, &payload_len);
        CHECK(deframer.held <= FSIL_MAX_FRAME_BYTES, "bounded under garbage");
    }
    bytes = deframer.stats.bytes_in;
    CHECK(bytes == len, "garbage counted in");
}

/* ---- the client over an in-memory byte stream ------------------------------------------------ */

typedef struct {
    const uint8_t *data;
    size_t len, pos;
    uint32_t clock_ms;
} mem_port_t;

static int32_t mem_read(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    mem_port_t *m = (mem_port_t *)ctx;
    size_t n = 1 + below(cap);
    if (m->pos >= m->len) {
        m->clock_ms += timeout_ms + 1; /* nothing more will come: the wait runs out */
        return below(50) == 0 ? -1 : 0;
    }
    n = n > m->len - m->pos ? m->len - m->pos : n;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (int32_t)n;
}

static int32_t mem_write(void *ctx, const uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    mem_port_t *m = (mem_port_t *)ctx;
    (void)buf;
    (void)timeout_ms;
    m->clock_ms++;
    return below(20) == 0 ? (int32_t)(len / 2) : (int32_t)len;
}

static uint32_t mem_now(void *ctx)
{
    mem_port_t *m = (mem_port_t *)ctx;
    return m->clock_ms += 1;
}

static fsil_stream_link_t mem_link;
static fsil_client_t client;

static void client_input(void)
{
    mem_port_t port;
    fsil_stream_io_t io;
    size_t len = 1, k, n;
    const fsil_hello_t *hello;
    const fsil_frame_t *frame;
    stream[0] = 0;
    for (k = 0; k < 1 + below(10) && len + FSIL_MAX_FRAME_BYTES < sizeof stream; k++) {
        size_t s = k == 0 ? 0 : below(SEEDS);
        size_t plen = seed_len[s];
        memcpy(enc, seeds[s], plen);
        if (below(3) == 0) {
            plen = mutate(enc, plen, sizeof enc);
        }
        if (plen > 0 && fsil_frame_encode(enc, plen, stream + len, sizeof stream - len, &n) == FSIL_OK) {
            len += n;
        }
        if (below(8) == 0) {
            stream[len++] = (uint8_t)rnd();
        }
    }
    port.data = stream;
    port.len = len;
    port.pos = 0;
    port.clock_ms = (uint32_t)rnd(); /* wrap-around included */
    io.read = mem_read;
    io.write = mem_write;
    io.now_ms = mem_now;
    io.close = NULL;
    io.ctx = &port;
    fsil_stream_link_init(&mem_link, &io);
    fsil_client_init(&client, &mem_link.link);
    if (fsil_client_hello(&client, 100, &hello) == FSIL_OK) {
        (void)fsil_client_ack(&client, "fsil-fuzz", "c99");
        for (k = 0; k < 20 && fsil_client_next_frame(&client, 100, &frame) == FSIL_OK; k++) {
            fsil_command_t cmd;
            memset(&cmd, 0, sizeof cmd);
            cmd.throttle = 0.5;
            cmd.mode = 3;
            (void)fsil_client_command(&client, &cmd);
        }
    }
    fsil_client_end(&client, "fuzz \x01 done with a reason long enough to be cut somewhere past "
                             "one hundred and sixty bytes of text, which is where the client "
                             "bounds an END reason \xe2\x80\x94 mid-character");
    fsil_link_close(&mem_link.link);
}

int main(int argc, char **argv)
{
    long inputs = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    long k;
    clock_t start = clock();
    double seconds;
    static uint8_t buf[FSIL_MAX_PAYLOAD_BYTES + 64];
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) * 2654435761ull + 1 : 1;
    make_seeds();
    for (k = 0; k < inputs; k++) {
        size_t kind = below(100), len, j;
        if (kind < 20) { /* random bytes, often starting like a message */
            len = below(below(10) == 0 ? sizeof buf : 64);
            for (j = 0; j < len; j++) {
                buf[j] = (uint8_t)rnd();
            }
            if (len > 2 && below(2) == 0) {
                buf[0] = (uint8_t)(0x90 | below(16));
                buf[1] = FSIL_PROTOCOL_VERSION;
                buf[2] = (uint8_t)below(8);
            }
            payload_input(buf, len);
        } else if (kind < 85) { /* a mutated valid payload */
            size_t s = below(SEEDS);
            memcpy(buf, seeds[s], seed_len[s]);
            len = mutate(buf, seed_len[s], sizeof buf);
            payload_input(buf, len);
        } else if (kind < 95) {
            stream_input();
        } else if (kind < 97) {
            garbage_stream_input();
        } else {
            client_input();
        }
    }
    seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    printf("{\"inputs\":%ld,\"crashes\":0,\"failed_checks\":%ld,\"decoded_ok\":%ld,"
           "\"rejected\":%ld,\"frames_good_fed\":%ld,\"frames_good_delivered\":%ld,"
           "\"frames_bad_fed\":%ld,\"frames_bad_counted\":%ld,\"cpu_s\":%.2f,"
           "\"inputs_per_s\":%.0f}\n",
           inputs, failures, decoded_ok, rejected, good_fed, good_delivered, bad_fed, bad_counted,
           seconds, seconds > 0 ? (double)inputs / seconds : 0.0);
    return failures == 0 ? 0 : 1;
}
