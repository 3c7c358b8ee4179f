/* Test driver for tests/test_c_library.py: runs the C codec and framing on inputs given as
 * hex, one command per line on stdin, and prints one JSON line per command.
 *
 *   decode HEX     the decoded fields (floats as their IEEE-754 bits), the message encoded
 *                  again by fsil_encode, and the payload re-packed value by value through
 *                  the msgpack reader and writer; or the error
 *   frame HEX      fsil_frame_encode of a payload
 *   cobs HEX       COBS encoding, and decoding that again
 *   crc HEX        CRC-32
 *   deframe HEX    payloads and counters of a deframer fed the bytes in one piece
 *   deframe1 HEX   ... fed byte by byte
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsil/codec.h"
#include "fsil/framing.h"

#define LINE_BYTES (2 * 70000 + 64)

static char line[LINE_BYTES];
static uint8_t data[70000];
static uint8_t out[70000];
static uint8_t out2[70000];

static size_t unhex(const char *text, uint8_t *dst, size_t cap)
{
    size_t n = 0;
    while (text[0] != '\0' && text[0] != '\n' && text[1] != '\0' && n < cap) {
        unsigned byte;
        if (sscanf(text, "%2x", &byte) != 1) {
            break;
        }
        dst[n++] = (uint8_t)byte;
        text += 2;
    }
    return n;
}

static void print_hex(const uint8_t *bytes, size_t len)
{
    size_t k;
    putchar('"');
    for (k = 0; k < len; k++) {
        printf("%02x", bytes[k]);
    }
    putchar('"');
}

static void print_str(const char *s, size_t len)
{
    size_t k;
    putchar('"');
    for (k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static void print_double(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    printf("{\"bits\":\"%016" PRIx64 "\"}", bits);
}

static void print_doubles(const double *v, unsigned n)
{
    unsigned k;
    putchar('[');
    for (k = 0; k < n; k++) {
        if (k > 0) {
            putchar(',');
        }
        print_double(v[k]);
    }
    putchar(']');
}

/* One msgpack value as JSON in the vectors' form ({"map": [[k, v], ...]} for maps). */
static int print_value(fsil_mpr_t *r)
{
    fsil_mp_obj_t o;
    uint32_t k;
    if (fsil_mpr_next(r, &o) != FSIL_MP_OK) {
        return 0;
    }
    switch (o.type) {
    case FSIL_MP_NIL: printf("null"); return 1;
    case FSIL_MP_BOOL: printf(o.b ? "true" : "false"); return 1;
    case FSIL_MP_INT:
        if (o.negative) {
            printf("%" PRId64, o.i);
        } else {
            printf("%" PRIu64, o.u);
        }
        return 1;
    case FSIL_MP_FLOAT: print_double(o.f); return 1;
    case FSIL_MP_STR: print_str(o.s, o.n); return 1;
    case FSIL_MP_ARRAY:
        putchar('[');
        for (k = 0; k < o.n; k++) {
            if (k > 0) {
                putchar(',');
            }
            if (!print_value(r)) {
                return 0;
            }
        }
        putchar(']');
        return 1;
    case FSIL_MP_MAP:
        printf("{\"map\":[");
        for (k = 0; k < o.n; k++) {
            printf(k > 0 ? ",[" : "[");
            if (!print_value(r)) {
                return 0;
            }
            putchar(',');
            if (!print_value(r)) {
                return 0;
            }
            putchar(']');
        }
        printf("]}");
        return 1;
    }
    return 0;
}

/* Re-pack one value through the reader and writer (every form the writer has). */
static int repack(fsil_mpr_t *r, fsil_mpw_t *w)
{
    fsil_mp_obj_t o;
    uint32_t k;
    if (fsil_mpr_next(r, &o) != FSIL_MP_OK) {
        return 0;
    }
    switch (o.type) {
    case FSIL_MP_NIL: fsil_mpw_nil(w); return 1;
    case FSIL_MP_BOOL: fsil_mpw_bool(w, o.b); return 1;
    case FSIL_MP_INT:
        if (o.negative) {
            fsil_mpw_int(w, o.i);
        } else {
            fsil_mpw_uint(w, o.u);
        }
        return 1;
    case FSIL_MP_FLOAT: fsil_mpw_double(w, o.f); return 1;
    case FSIL_MP_STR: fsil_mpw_str(w, o.s, o.n); return 1;
    case FSIL_MP_ARRAY:
    case FSIL_MP_MAP:
        if (o.type == FSIL_MP_ARRAY) {
            fsil_mpw_array(w, o.n);
        } else {
            fsil_mpw_map(w, o.n);
        }
        for (k = 0; k < (o.type == FSIL_MP_MAP ? 2u * o.n : o.n); k++) {
            if (!repack(r, w)) {
                return 0;
            }
        }
        return 1;
    }
    return 0;
}

static void print_field(const fsil_field_t *f, const uint8_t *at)
{
    uint32_t k;
    switch (f->kind) {
    case FSIL_KIND_U32:
    case FSIL_KIND_MODE: printf("%" PRIu32, *(const uint32_t *)at); break;
    case FSIL_KIND_T: printf("%" PRId64, *(const int64_t *)at); break;
    case FSIL_KIND_F: print_double(*(const double *)at); break;
    case FSIL_KIND_S: {
        const fsil_str_t *s = (const fsil_str_t *)at;
        print_str(s->ptr, s->len);
        break;
    }
    case FSIL_KIND_M:
    case FSIL_KIND_COUNTS: {
        const fsil_map_t *m = (const fsil_map_t *)at;
        fsil_mpr_t r;
        fsil_mpr_init(&r, m->ptr, m->len);
        print_value(&r);
        break;
    }
    case FSIL_KIND_F3: print_doubles((const double *)at, 3); break;
    case FSIL_KIND_NAV: {
        const fsil_nav_t *o = (const fsil_nav_t *)at;
        if (o->present) {
            print_doubles(o->v, 7);
        } else {
            printf("null");
        }
        break;
    }
    case FSIL_KIND_IMU: {
        const fsil_imu_t *imu = (const fsil_imu_t *)at;
        putchar('[');
        for (k = 0; k < imu->count; k++) {
            const fsil_imu_sample_t *s = &imu->s[k];
            printf(k > 0 ? ",[%" PRId64 "," : "[%" PRId64 ",", s->t_us);
            print_double(s->dv[0]); putchar(',');
            print_double(s->dv[1]); putchar(',');
            print_double(s->dv[2]); putchar(',');
            print_double(s->dth[0]); putchar(',');
            print_double(s->dth[1]); putchar(',');
            print_double(s->dth[2]);
            putchar(']');
        }
        putchar(']');
        break;
    }
    case FSIL_KIND_ALT: {
        const fsil_alt_t *a = (const fsil_alt_t *)at;
        if (!a->present) {
            printf("null");
            break;
        }
        printf("[%" PRId64 ",", a->t_us);
        print_double(a->range_m);
        printf(a->valid ? ",true]" : ",false]");
        break;
    }
    case FSIL_KIND_VEL: {
        const fsil_vel_t *v = (const fsil_vel_t *)at;
        if (!v->present) {
            printf("null");
            break;
        }
        printf("[%" PRId64, v->t_us);
        for (k = 0; k < 3; k++) {
            putchar(',');
            print_double(v->vlos_mps[k]);
        }
        for (k = 0; k < 3; k++) {
            putchar(',');
            print_double(v->range_m[k]);
        }
        printf(",%" PRIu32 "]", v->valid_mask);
        break;
    }
    case FSIL_KIND_ATT: {
        const fsil_att_t *a = (const fsil_att_t *)at;
        if (!a->present) {
            printf("null");
            break;
        }
        printf("[%" PRId64, a->t_us);
        for (k = 0; k < 4; k++) {
            putchar(',');
            print_double(a->q[k]);
        }
        printf(a->valid ? ",true]" : ",false]");
        break;
    }
    }
}

static fsil_msg_t msg;

static void cmd_decode(const uint8_t *p, size_t n)
{
    fsil_error_t err;
    fsil_err_t st = fsil_decode(p, n, &msg, &err);
    const fsil_layout_t *layout;
    size_t len = 0;
    uint32_t k;
    fsil_mpr_t r;
    fsil_mpw_t w;
    if (st != FSIL_OK) {
        printf("{\"ok\":false,\"status\":\"%s\",\"error\":", fsil_err_name(st));
        print_str(err.text, strlen(err.text));
        printf("}\n");
        return;
    }
    layout = fsil_layout(msg.type);
    printf("{\"ok\":true,\"type\":%" PRIu32 ",\"name\":\"%s\",\"fields\":[", msg.type, layout->name);
    for (k = 0; k < layout->count; k++) {
        if (k > 0) {
            putchar(',');
        }
        print_field(&layout->fields[k], (const uint8_t *)&msg.u + layout->fields[k].offset);
    }
    printf("],\"reencoded\":");
    st = fsil_encode(&msg, out, sizeof out, &len, &err);
    if (st == FSIL_OK) {
        print_hex(out, len);
    } else {
        print_str(err.text, strlen(err.text));
    }
    fsil_mpr_init(&r, p, n);
    fsil_mpw_init(&w, out2, sizeof out2);
    printf(",\"repacked\":");
    if (repack(&r, &w) && !w.overflow) {
        print_hex(out2, w.len);
    } else {
        printf("null");
    }
    printf("}\n");
}

static void cmd_deframe(const uint8_t *p, size_t n, int bytewise)
{
    fsil_deframer_t *d = malloc(sizeof *d); /* the test driver may use the heap; the library does not */
    size_t k = 0, first = 1;
    fsil_deframer_init(d);
    printf("{\"payloads\":[");
    while (k < n) {
        const uint8_t *payload;
        size_t payload_len;
        size_t chunk = bytewise ? 1 : n - k;
        size_t used = fsil_deframer_push(d, p + k, chunk, &payload, &payload_len);
        k += used;
        if (payload != NULL) {
            printf(first ? "" : ",");
            print_hex(payload, payload_len);
            first = 0;
        }
    }
    printf("],\"stats\":{\"bytes_in\":%" PRIu64 ",\"bytes_discarded\":%" PRIu64
           ",\"frames_ok\":%" PRIu64 ",\"cobs_errors\":%" PRIu64 ",\"runts\":%" PRIu64
           ",\"oversize\":%" PRIu64 ",\"crc_errors\":%" PRIu64 "},\"pending\":%zu}\n",
           d->stats.bytes_in, d->stats.bytes_discarded, d->stats.frames_ok, d->stats.cobs_errors,
           d->stats.runts, d->stats.oversize, d->stats.crc_errors, d->skipping ? (size_t)0 : d->held);
    free(d);
}

int main(void)
{
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *space = strchr(line, ' ');
        const char *hex = space != NULL ? space + 1 : "";
        size_t n;
        size_t len = 0;
        if (space != NULL) {
            *space = '\0';
        } else {
            line[strcspn(line, "\n")] = '\0';
        }
        n = unhex(hex, data, sizeof data);
        if (strcmp(line, "decode") == 0) {
            cmd_decode(data, n);
        } else if (strcmp(line, "frame") == 0) {
            fsil_err_t st = fsil_frame_encode(data, n, out, sizeof out, &len);
            printf("{\"status\":\"%s\",\"frame\":", fsil_err_name(st));
            print_hex(out, len);
            printf("}\n");
        } else if (strcmp(line, "cobs") == 0) {
            size_t dec_len = 0;
            int ok;
            len = fsil_cobs_encode(data, n, out);
            ok = fsil_cobs_decode(out, len, out2, &dec_len);
            printf("{\"cobs\":");
            print_hex(out, len);
            printf(",\"decoded_ok\":%s,\"decoded\":", ok ? "true" : "false");
            print_hex(out2, ok ? dec_len : 0);
            printf("}\n");
        } else if (strcmp(line, "crc") == 0) {
            printf("{\"crc32\":\"%08" PRIx32 "\"}\n", fsil_crc32(0, data, n));
        } else if (strcmp(line, "deframe") == 0 || strcmp(line, "deframe1") == 0) {
            cmd_deframe(data, n, line[7] == '1');
        } else {
            printf("{\"error\":\"unknown command\"}\n");
        }
        fflush(stdout);
    }
    return 0;
}
