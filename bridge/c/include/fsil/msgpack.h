/* The msgpack subset of the fsil protocol: a writer and a reader over caller buffers.
 *
 * Writer: every value in its smallest form, as msgpack-python packs it (floats always
 * float64, strings as str, never bin), so the bytes equal the host's byte for byte.
 * Reader: every form but bin and ext (the protocol never sends them), strings checked as
 * UTF-8 as strictly as Python decodes them; never reads past the end of its input.
 * No heap, no recursion.
 */
#ifndef FSIL_MSGPACK_H
#define FSIL_MSGPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of arrays and maps the reader accepts (the board firmware's limit too). */
#define FSIL_MP_MAX_DEPTH 16

typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool overflow; /* set once a value did not fit; len stops growing */
} fsil_mpw_t;

void fsil_mpw_init(fsil_mpw_t *w, uint8_t *buf, size_t cap);
void fsil_mpw_nil(fsil_mpw_t *w);
void fsil_mpw_bool(fsil_mpw_t *w, bool value);
void fsil_mpw_uint(fsil_mpw_t *w, uint64_t value);
void fsil_mpw_int(fsil_mpw_t *w, int64_t value);  /* non-negative values as unsigned forms */
void fsil_mpw_double(fsil_mpw_t *w, double value);
void fsil_mpw_str(fsil_mpw_t *w, const char *text, size_t len);
void fsil_mpw_cstr(fsil_mpw_t *w, const char *text);
void fsil_mpw_array(fsil_mpw_t *w, uint32_t count);
void fsil_mpw_map(fsil_mpw_t *w, uint32_t count);
void fsil_mpw_raw(fsil_mpw_t *w, const uint8_t *bytes, size_t len); /* pre-encoded value(s) */

typedef enum {
    FSIL_MP_NIL = 1,
    FSIL_MP_BOOL,
    FSIL_MP_INT,   /* any integer form */
    FSIL_MP_FLOAT, /* float32 or float64, as a double */
    FSIL_MP_STR,
    FSIL_MP_ARRAY,
    FSIL_MP_MAP
} fsil_mp_type_t;

typedef struct {
    fsil_mp_type_t type;
    bool b;         /* BOOL */
    bool negative;  /* INT: the value is i (< 0); else u */
    uint64_t u;     /* INT >= 0 */
    int64_t i;      /* INT < 0 */
    double f;       /* FLOAT */
    const char *s;  /* STR: bytes (not NUL-terminated) */
    uint32_t n;     /* STR: length in bytes; ARRAY: elements; MAP: key/value pairs */
} fsil_mp_obj_t;

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} fsil_mpr_t;

typedef enum {
    FSIL_MP_OK = 0,
    FSIL_MP_TRUNCATED,    /* the input ends inside a value */
    FSIL_MP_BAD_FORM,     /* c1, bin or ext: never in a payload */
    FSIL_MP_BAD_UTF8,     /* a string that is not UTF-8 */
    FSIL_MP_TOO_DEEP,     /* nested deeper than FSIL_MP_MAX_DEPTH */
    FSIL_MP_BAD_KEY,      /* a map key that is not a string */
    FSIL_MP_EXTRA_BYTES   /* bytes after the one object */
} fsil_mp_status_t;

void fsil_mpr_init(fsil_mpr_t *r, const uint8_t *data, size_t len);
/* Read one value's header (a whole scalar or string; an array or map's count only). */
fsil_mp_status_t fsil_mpr_next(fsil_mpr_t *r, fsil_mp_obj_t *obj);
/* Skip one whole value, checking it (nesting depth, string keys, UTF-8). */
fsil_mp_status_t fsil_mpr_skip(fsil_mpr_t *r);
/* Check that data[0..len) is exactly one well-formed value. */
fsil_mp_status_t fsil_mp_check(const uint8_t *data, size_t len);
const char *fsil_mp_status_text(fsil_mp_status_t status);
/* True if bytes[0..len) is UTF-8 as Python decodes it (no surrogates, no overlong forms). */
bool fsil_utf8_valid(const uint8_t *bytes, size_t len);

#endif /* FSIL_MSGPACK_H */
