/* The msgpack subset of the fsil protocol (see fsil/msgpack.h). Written from the msgpack
 * specification (https://github.com/msgpack/msgpack/blob/master/spec.md). */
#include "fsil/msgpack.h"

#include <string.h>

/* ---- writer ---------------------------------------------------------------------------- */

void fsil_mpw_init(fsil_mpw_t *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = false;
}

static void put(fsil_mpw_t *w, const uint8_t *bytes, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, bytes, n);
    w->len += n;
}

/* A type byte followed by `size` bytes of value, big-endian. */
static void put_be(fsil_mpw_t *w, uint8_t type, uint64_t value, unsigned size)
{
    uint8_t out[9];
    unsigned k;
    out[0] = type;
    for (k = 0; k < size; k++) {
        out[size - k] = (uint8_t)(value >> (8u * k));
    }
    put(w, out, size + 1u);
}

void fsil_mpw_nil(fsil_mpw_t *w)
{
    put_be(w, 0xc0, 0, 0);
}

void fsil_mpw_bool(fsil_mpw_t *w, bool value)
{
    put_be(w, value ? 0xc3 : 0xc2, 0, 0);
}

void fsil_mpw_uint(fsil_mpw_t *w, uint64_t v)
{
    if (v <= 0x7f) {
        put_be(w, (uint8_t)v, 0, 0);
    } else if (v <= 0xff) {
        put_be(w, 0xcc, v, 1);
    } else if (v <= 0xffff) {
        put_be(w, 0xcd, v, 2);
    } else if (v <= 0xffffffffu) {
        put_be(w, 0xce, v, 4);
    } else {
        put_be(w, 0xcf, v, 8);
    }
}

void fsil_mpw_int(fsil_mpw_t *w, int64_t v)
{
    if (v >= 0) {
        fsil_mpw_uint(w, (uint64_t)v);
    } else if (v >= -32) {
        put_be(w, (uint8_t)(0xe0 | (uint8_t)(v + 32)), 0, 0);
    } else if (v >= -128) {
        put_be(w, 0xd0, (uint64_t)v, 1);
    } else if (v >= -32768) {
        put_be(w, 0xd1, (uint64_t)v, 2);
    } else if (v >= -2147483647L - 1) {
        put_be(w, 0xd2, (uint64_t)v, 4);
    } else {
        put_be(w, 0xd3, (uint64_t)v, 8);
    }
}

void fsil_mpw_double(fsil_mpw_t *w, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_be(w, 0xcb, bits, 8);
}

/* A length header: the fix form below fix_limit, then 8 (if code8), 16 and 32 bits. */
static void put_len(fsil_mpw_t *w, uint32_t n, uint8_t fix_base, uint32_t fix_limit,
                    uint8_t code8, uint8_t code16)
{
    if (n < fix_limit) {
        put_be(w, (uint8_t)(fix_base | n), 0, 0);
    } else if (code8 != 0 && n <= 0xff) {
        put_be(w, code8, n, 1);
    } else if (n <= 0xffff) {
        put_be(w, code16, n, 2);
    } else {
        put_be(w, (uint8_t)(code16 + 1), n, 4);
    }
}

void fsil_mpw_str(fsil_mpw_t *w, const char *text, size_t len)
{
    if (len > 0xffffffffu) {
        w->overflow = true;
        return;
    }
    put_len(w, (uint32_t)len, 0xa0, 32, 0xd9, 0xda);
    put(w, (const uint8_t *)text, len);
}

void fsil_mpw_cstr(fsil_mpw_t *w, const char *text)
{
    fsil_mpw_str(w, text, strlen(text));
}

void fsil_mpw_array(fsil_mpw_t *w, uint32_t count)
{
    put_len(w, count, 0x90, 16, 0, 0xdc);
}

void fsil_mpw_map(fsil_mpw_t *w, uint32_t count)
{
    put_len(w, count, 0x80, 16, 0, 0xde);
}

void fsil_mpw_raw(fsil_mpw_t *w, const uint8_t *bytes, size_t len)
{
    put(w, bytes, len);
}

/* ---- reader ---------------------------------------------------------------------------- */

void fsil_mpr_init(fsil_mpr_t *r, const uint8_t *data, size_t len)
{
    r->p = data;
    r->end = data + len;
}

static uint64_t be(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    unsigned k;
    for (k = 0; k < size; k++) {
        v = (v << 8) | p[k];
    }
    return v;
}

bool fsil_utf8_valid(const uint8_t *s, size_t len)
{
    size_t k = 0;
    while (k < len) {
        uint8_t c = s[k];
        size_t more;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            k++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            if (c == 0xe0) {
                lo = 0xa0; /* no overlong forms */
            } else if (c == 0xed) {
                hi = 0x9f; /* no surrogates */
            }
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            if (c == 0xf0) {
                lo = 0x90;
            } else if (c == 0xf4) {
                hi = 0x8f; /* nothing above U+10FFFF */
            }
        } else {
            return false;
        }
        if (more > len - k - 1) {
            return false;
        }
        if (s[k + 1] < lo || s[k + 1] > hi) {
            return false;
        }
        for (size_t j = 2; j <= more; j++) {
            if (s[k + j] < 0x80 || s[k + j] > 0xbf) {
                return false;
            }
        }
        k += more + 1;
    }
    return true;
}

/* Take n bytes from the reader, or fail if fewer are left. */
static const uint8_t *take(fsil_mpr_t *r, size_t n)
{
    const uint8_t *at = r->p;
    if (n > (size_t)(r->end - r->p)) {
        return NULL;
    }
    r->p += n;
    return at;
}

static fsil_mp_status_t read_int(fsil_mpr_t *r, fsil_mp_obj_t *obj, unsigned size, bool is_signed)
{
    const uint8_t *p = take(r, size);
    uint64_t raw;
    if (p == NULL) {
        return FSIL_MP_TRUNCATED;
    }
    raw = be(p, size);
    obj->type = FSIL_MP_INT;
    obj->negative = false;
    obj->u = raw;
    if (is_signed) {
        unsigned shift = 64u - 8u * size;
        /* sign-extend without relying on implementation-defined shifts of negatives */
        uint64_t sign = (uint64_t)1 << (8u * size - 1u);
        if ((raw & sign) != 0) {
            uint64_t magnitude = (~(raw << shift) >> shift) + 1u; /* two's complement */
            obj->negative = true;
            obj->i = magnitude == ((uint64_t)1 << 63) ? INT64_MIN : -(int64_t)magnitude;
        }
    }
    return FSIL_MP_OK;
}

static fsil_mp_status_t read_str(fsil_mpr_t *r, fsil_mp_obj_t *obj, uint64_t n)
{
    const uint8_t *p;
    if (n > (uint64_t)(r->end - r->p)) {
        return FSIL_MP_TRUNCATED;
    }
    p = take(r, (size_t)n);
    if (p == NULL) {
        return FSIL_MP_TRUNCATED;
    }
    if (!fsil_utf8_valid(p, (size_t)n)) {
        return FSIL_MP_BAD_UTF8;
    }
    obj->type = FSIL_MP_STR;
    obj->s = (const char *)p;
    obj->n = (uint32_t)n;
    return FSIL_MP_OK;
}

static fsil_mp_status_t read_len(fsil_mpr_t *r, unsigned size, uint64_t *n)
{
    const uint8_t *p = take(r, size);
    if (p == NULL) {
        return FSIL_MP_TRUNCATED;
    }
    *n = be(p, size);
    return FSIL_MP_OK;
}

fsil_mp_status_t fsil_mpr_next(fsil_mpr_t *r, fsil_mp_obj_t *obj)
{
    const uint8_t *p = take(r, 1);
    uint8_t c;
    uint64_t n = 0;
    fsil_mp_status_t st;
    if (p == NULL) {
        return FSIL_MP_TRUNCATED;
    }
    c = *p;
    if (c <= 0x7f) {
        obj->type = FSIL_MP_INT;
        obj->negative = false;
        obj->u = c;
        return FSIL_MP_OK;
    }
    if (c >= 0xe0) {
        obj->type = FSIL_MP_INT;
        obj->negative = true;
        obj->i = (int64_t)c - 256;
        return FSIL_MP_OK;
    }
    if (c <= 0x8f || (c >= 0x90 && c <= 0x9f)) {
        obj->type = c <= 0x8f ? FSIL_MP_MAP : FSIL_MP_ARRAY;
        obj->n = c & 0x0fu;
        return FSIL_MP_OK;
    }
    if (c >= 0xa0 && c <= 0xbf) {
        return read_str(r, obj, c & 0x1fu);
    }
    switch (c) {
    case 0xc0:
        obj->type = FSIL_MP_NIL;
        return FSIL_MP_OK;
    case 0xc2:
    case 0xc3:
        obj->type = FSIL_MP_BOOL;
        obj->b = c == 0xc3;
        return FSIL_MP_OK;
    case 0xca: {
        const uint8_t *q = take(r, 4);
        uint32_t bits;
        float f;
        if (q == NULL) {
            return FSIL_MP_TRUNCATED;
        }
        bits = (uint32_t)be(q, 4);
        memcpy(&f, &bits, sizeof f);
        obj->type = FSIL_MP_FLOAT;
        obj->f = (double)f;
        return FSIL_MP_OK;
    }
    case 0xcb: {
        const uint8_t *q = take(r, 8);
        uint64_t bits;
        if (q == NULL) {
            return FSIL_MP_TRUNCATED;
        }
        bits = be(q, 8);
        obj->type = FSIL_MP_FLOAT;
        memcpy(&obj->f, &bits, sizeof obj->f);
        return FSIL_MP_OK;
    }
    case 0xcc: return read_int(r, obj, 1, false);
    case 0xcd: return read_int(r, obj, 2, false);
    case 0xce: return read_int(r, obj, 4, false);
    case 0xcf: return read_int(r, obj, 8, false);
    case 0xd0: return read_int(r, obj, 1, true);
    case 0xd1: return read_int(r, obj, 2, true);
    case 0xd2: return read_int(r, obj, 4, true);
    case 0xd3: return read_int(r, obj, 8, true);
    case 0xd9:
    case 0xda:
    case 0xdb:
        st = read_len(r, c == 0xd9 ? 1u : c == 0xda ? 2u : 4u, &n);
        return st != FSIL_MP_OK ? st : read_str(r, obj, n);
    case 0xdc:
    case 0xdd:
    case 0xde:
    case 0xdf:
        st = read_len(r, (c & 1u) == 0 ? 2u : 4u, &n);
        if (st != FSIL_MP_OK) {
            return st;
        }
        obj->type = c <= 0xdd ? FSIL_MP_ARRAY : FSIL_MP_MAP;
        obj->n = (uint32_t)n;
        return FSIL_MP_OK;
    default: /* c1 (never used), bin c4-c6, ext c7-c9 and d4-d8 */
        return FSIL_MP_BAD_FORM;
    }
}

fsil_mp_status_t fsil_mpr_skip(fsil_mpr_t *r)
{
    struct {
        uint64_t left; /* values still to read at this level */
        bool map;      /* keys at even positions */
        uint64_t pos;
    } stack[FSIL_MP_MAX_DEPTH];
    unsigned depth = 0;
    do {
        fsil_mp_obj_t obj;
        fsil_mp_status_t st;
        bool key = depth > 0 && stack[depth - 1].map && stack[depth - 1].pos % 2u == 0;
        st = fsil_mpr_next(r, &obj);
        if (st != FSIL_MP_OK) {
            return st;
        }
        if (key && obj.type != FSIL_MP_STR) {
            return FSIL_MP_BAD_KEY;
        }
        if (depth > 0) {
            stack[depth - 1].pos++;
            stack[depth - 1].left--;
        }
        if (obj.type == FSIL_MP_ARRAY || obj.type == FSIL_MP_MAP) {
            uint64_t items = obj.type == FSIL_MP_MAP ? 2u * (uint64_t)obj.n : obj.n;
            if (depth == FSIL_MP_MAX_DEPTH) {
                return FSIL_MP_TOO_DEEP;
            }
            if (items > (uint64_t)(r->end - r->p)) {
                return FSIL_MP_TRUNCATED; /* every value takes at least one byte */
            }
            stack[depth].left = items;
            stack[depth].map = obj.type == FSIL_MP_MAP;
            stack[depth].pos = 0;
            depth++;
        }
        while (depth > 0 && stack[depth - 1].left == 0) {
            depth--;
        }
    } while (depth > 0);
    return FSIL_MP_OK;
}

fsil_mp_status_t fsil_mp_check(const uint8_t *data, size_t len)
{
    fsil_mpr_t r;
    fsil_mp_status_t st;
    fsil_mpr_init(&r, data, len);
    st = fsil_mpr_skip(&r);
    if (st == FSIL_MP_OK && r.p != r.end) {
        st = FSIL_MP_EXTRA_BYTES;
    }
    return st;
}

const char *fsil_mp_status_text(fsil_mp_status_t status)
{
    switch (status) {
    case FSIL_MP_OK: return "ok";
    case FSIL_MP_TRUNCATED: return "the data ends inside a value";
    case FSIL_MP_BAD_FORM: return "a msgpack form the protocol never uses (c1, bin or ext)";
    case FSIL_MP_BAD_UTF8: return "a string that is not valid UTF-8";
    case FSIL_MP_TOO_DEEP: return "arrays and maps nested too deep";
    case FSIL_MP_BAD_KEY: return "a map key that is not a string";
    case FSIL_MP_EXTRA_BYTES: return "extra bytes after the message";
    }
    return "unknown msgpack status";
}
