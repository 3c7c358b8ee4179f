/* Messages <-> payload bytes, walking the generated layouts (see fsil/codec.h). */
#include "fsil/codec.h"

#include <math.h>
#include <string.h>

#define IMU_SAMPLE_LEN 7u /* [t_us, dvx, dvy, dvz, dax, day, daz] */
#define ALT_SAMPLE_LEN 3u /* [t_us, range_m, valid] */
#define VEL_SAMPLE_LEN 8u /* [t_us, vlos0..2, range0..2, valid_mask] */
#define ATT_SAMPLE_LEN 6u /* [t_us, qw, qx, qy, qz, valid] */

/* ---- helpers --------------------------------------------------------------------------- */

fsil_str_t fsil_str(const char *text)
{
    fsil_str_t s;
    s.ptr = text;
    s.len = (uint32_t)strlen(text);
    return s;
}

int fsil_str_eq(fsil_str_t s, const char *text)
{
    size_t n = strlen(text);
    return n == s.len && (n == 0 || memcmp(s.ptr, text, n) == 0);
}

/* Python's name of a decoded value's type, for error texts. */
static const char *type_name(const fsil_mp_obj_t *obj)
{
    switch (obj->type) {
    case FSIL_MP_NIL: return "NoneType";
    case FSIL_MP_BOOL: return "bool";
    case FSIL_MP_INT: return "int";
    case FSIL_MP_FLOAT: return "float";
    case FSIL_MP_STR: return "str";
    case FSIL_MP_ARRAY: return "list";
    case FSIL_MP_MAP: return "dict";
    }
    return "?";
}

/* "expected WHAT, got TYPE" (or "array of N" for arrays). */
static fsil_err_t bad(fsil_error_t *err, const char *what, const fsil_mp_obj_t *got)
{
    fsil_error_add(err, "expected ");
    fsil_error_add(err, what);
    fsil_error_add(err, ", got ");
    if (got->type == FSIL_MP_ARRAY) {
        fsil_error_add(err, "array of ");
        fsil_error_add_u(err, got->n);
    } else {
        fsil_error_add(err, type_name(got));
    }
    return FSIL_ERR_MALFORMED;
}

static fsil_err_t next(fsil_mpr_t *r, fsil_mp_obj_t *obj, fsil_error_t *err)
{
    fsil_mp_status_t st = fsil_mpr_next(r, obj);
    if (st != FSIL_MP_OK) { /* cannot happen after fsil_mp_check; kept for safety */
        fsil_error_add(err, fsil_mp_status_text(st));
        return FSIL_ERR_MALFORMED;
    }
    return FSIL_OK;
}

/* ---- decoding one value of each kind ---------------------------------------------------- */

static fsil_err_t dec_f(fsil_mpr_t *r, double *out, fsil_error_t *err)
{
    fsil_mp_obj_t o;
    fsil_err_t st = next(r, &o, err);
    if (st != FSIL_OK) {
        return st;
    }
    if (o.type == FSIL_MP_FLOAT) {
        if (!isfinite(o.f)) {
            fsil_error_add(err, "expected a finite float, got ");
            fsil_error_add(err, o.f != o.f ? "nan" : o.f > 0 ? "inf" : "-inf");
            return FSIL_ERR_MALFORMED;
        }
        *out = o.f;
    } else if (o.type == FSIL_MP_INT) {
        *out = o.negative ? (double)o.i : (double)o.u;
    } else {
        return bad(err, "a float", &o);
    }
    return FSIL_OK;
}

/* An integer within [lo, hi] (hi as unsigned: 0..UINT64_MAX). */
static fsil_err_t dec_int(fsil_mpr_t *r, int64_t lo, uint64_t hi, const char *what,
                             uint64_t *u_out, int64_t *i_out, fsil_error_t *err)
{
    fsil_mp_obj_t o;
    fsil_err_t st = next(r, &o, err);
    if (st != FSIL_OK) {
        return st;
    }
    if (o.type != FSIL_MP_INT) {
        return bad(err, what, &o);
    }
    if (o.negative ? o.i < lo : o.u > hi) {
        fsil_error_add(err, "expected ");
        fsil_error_add(err, what);
        fsil_error_add(err, ", got ");
        if (o.negative) {
            fsil_error_add_i(err, o.i);
        } else {
            fsil_error_add_u(err, o.u);
        }
        return FSIL_ERR_MALFORMED;
    }
    if (u_out != NULL) {
        *u_out = o.u;
    }
    if (i_out != NULL) {
        *i_out = o.negative ? o.i : (int64_t)o.u;
    }
    return FSIL_OK;
}

static fsil_err_t dec_array(fsil_mpr_t *r, uint32_t n, const char *what, fsil_error_t *err)
{
    fsil_mp_obj_t o;
    fsil_err_t st = next(r, &o, err);
    if (st != FSIL_OK) {
        return st;
    }
    if (o.type != FSIL_MP_ARRAY || o.n != n) {
        return bad(err, what, &o);
    }
    return FSIL_OK;
}

/* nil -> *present = false; an array of n -> true; else an error. */
static fsil_err_t dec_nil_or_array(fsil_mpr_t *r, uint32_t n, const char *what, bool *present,
                                      fsil_error_t *err)
{
    fsil_mpr_t peek = *r;
    fsil_mp_obj_t o;
    fsil_err_t st = next(&peek, &o, err);
    if (st != FSIL_OK) {
        return st;
    }
    if (o.type == FSIL_MP_NIL) {
        *r = peek;
        *present = false;
        return FSIL_OK;
    }
    *present = true;
    return dec_array(r, n, what, err);
}

static fsil_err_t dec_floats(fsil_mpr_t *r, double *out, uint32_t n, const char *what,
                                fsil_error_t *err)
{
    uint32_t k;
    fsil_err_t st = dec_array(r, n, what, err);
    for (k = 0; st == FSIL_OK && k < n; k++) {
        fsil_error_t inner;
        fsil_error_clear(&inner);
        st = dec_f(r, &out[k], &inner);
        if (st != FSIL_OK) { /* "element 2: expected a float, got str" */
            fsil_error_add(err, "element ");
            fsil_error_add_u(err, k);
            fsil_error_add(err, ": ");
            fsil_error_add(err, inner.text);
        }
    }
    return st;
}

static fsil_err_t dec_imu(fsil_mpr_t *r, fsil_imu_t *imu, fsil_error_t *err)
{
    fsil_mp_obj_t o;
    uint32_t j;
    fsil_err_t st = next(r, &o, err);
    if (st != FSIL_OK) {
        return st;
    }
    if (o.type != FSIL_MP_ARRAY) {
        return bad(err, "an array of IMU samples", &o);
    }
    if (o.n > FSIL_MAX_IMU_SAMPLES) {
        fsil_error_add(err, "more than ");
        fsil_error_add_u(err, FSIL_MAX_IMU_SAMPLES);
        fsil_error_add(err, " IMU samples: ");
        fsil_error_add_u(err, o.n);
        return FSIL_ERR_MALFORMED;
    }
    imu->count = o.n;
    for (j = 0; j < o.n; j++) {
        fsil_imu_sample_t *s = &imu->s[j];
        uint32_t k;
        st = dec_array(r, IMU_SAMPLE_LEN, "an IMU sample of 7", err);
        if (st == FSIL_OK) {
            st = dec_int(r, 0, INT64_MAX, "a time t_us in us >= 0", NULL, &s->t_us, err);
        }
        for (k = 0; st == FSIL_OK && k < 6; k++) {
            st = dec_f(r, k < 3 ? &s->dv[k] : &s->dth[k - 3], err);
        }
        if (st == FSIL_OK && j > 0 && s->t_us <= imu->s[j - 1].t_us) {
            fsil_error_add(err, "t_us ");
            fsil_error_add_i(err, s->t_us);
            fsil_error_add(err, " is not after the previous sample's");
            st = FSIL_ERR_MALFORMED;
        }
        if (st != FSIL_OK) {
            fsil_error_add(err, " (IMU sample ");
            fsil_error_add_u(err, j);
            fsil_error_add(err, ")");
            return st;
        }
    }
    return FSIL_OK;
}

static fsil_err_t dec_alt(fsil_mpr_t *r, fsil_alt_t *alt, fsil_error_t *err)
{
    fsil_mp_obj_t o;
    fsil_err_t st = dec_nil_or_array(r, ALT_SAMPLE_LEN,
                                        "nil or an altimeter sample [t_us, range_m, valid]",
                                        &alt->present, err);
    if (st != FSIL_OK || !alt->present) {
        return st;
    }
    st = dec_int(r, 0, INT64_MAX, "a time t_us in us >= 0", NULL, &alt->t_us, err);
    if (st == FSIL_OK) {
        st = dec_f(r, &alt->range_m, err);
    }
    if (st == FSIL_OK) {
        st = next(r, &o, err);
    }
    if (st == FSIL_OK) {
        if (o.type != FSIL_MP_BOOL) {
            return bad(err, "a boolean valid", &o);
        }
        alt->valid = o.b;
    }
    return st;
}

static fsil_err_t dec_vel(fsil_mpr_t *r, fsil_vel_t *vel, fsil_error_t *err)
{
    uint64_t mask = 0;
    uint32_t k;
    fsil_err_t st = dec_nil_or_array(r, VEL_SAMPLE_LEN,
                                        "nil or a velocimeter sample of 8", &vel->present, err);
    if (st != FSIL_OK || !vel->present) {
        return st;
    }
    st = dec_int(r, 0, INT64_MAX, "a t_us integer >= 0", NULL, &vel->t_us, err);
    for (k = 0; st == FSIL_OK && k < 6; k++) {
        st = dec_f(r, k < 3 ? &vel->vlos_mps[k] : &vel->range_m[k - 3], err);
    }
    if (st == FSIL_OK) {
        st = dec_int(r, 0, 7, "a valid_mask 0..7", &mask, NULL, err);
    }
    vel->valid_mask = (uint32_t)mask;
    return st;
}

static fsil_err_t dec_att(fsil_mpr_t *r, fsil_att_t *att, fsil_error_t *err)
{
    fsil_mp_obj_t o;
    uint32_t k;
    fsil_err_t st = dec_nil_or_array(
        r, ATT_SAMPLE_LEN, "nil or a star tracker sample [t_us, qw, qx, qy, qz, valid]",
        &att->present, err);
    if (st != FSIL_OK || !att->present) {
        return st;
    }
    st = dec_int(r, 0, INT64_MAX, "a time t_us in us >= 0", NULL, &att->t_us, err);
    for (k = 0; st == FSIL_OK && k < 4; k++) {
        st = dec_f(r, &att->q[k], err);
    }
    if (st == FSIL_OK) {
        st = next(r, &o, err);
    }
    if (st != FSIL_OK) {
        return st;
    }
    if (o.type != FSIL_MP_BOOL) {
        return bad(err, "a boolean valid", &o);
    }
    att->valid = o.b;
    if (att->q[0] == 0.0 && att->q[1] == 0.0 && att->q[2] == 0.0 && att->q[3] == 0.0) {
        return fsil_error_set(err, FSIL_ERR_MALFORMED,
                              "star tracker quaternion [qw, qx, qy, qz] is all zero");
    }
    return FSIL_OK;
}

/* A map whose values are unsigned integers (link counters). */
static fsil_err_t check_counts(const uint8_t *ptr, size_t len, fsil_error_t *err)
{
    fsil_mpr_t r;
    fsil_mp_obj_t o;
    uint32_t k, n;
    fsil_mpr_init(&r, ptr, len);
    if (fsil_mpr_next(&r, &o) != FSIL_MP_OK || o.type != FSIL_MP_MAP) {
        return fsil_error_set(err, FSIL_ERR_MALFORMED, "expected a map of counters");
    }
    n = o.n;
    for (k = 0; k < n; k++) {
        fsil_mp_obj_t key;
        if (fsil_mpr_next(&r, &key) != FSIL_MP_OK || key.type != FSIL_MP_STR ||
            fsil_mpr_next(&r, &o) != FSIL_MP_OK) {
            return fsil_error_set(err, FSIL_ERR_MALFORMED, "expected a map of counters");
        }
        if (o.type != FSIL_MP_INT || o.negative) {
            fsil_error_add(err, "counter \"");
            fsil_error_add_n(err, key.s, key.n);
            fsil_error_add(err, "\": expected an unsigned integer, got ");
            fsil_error_add(err, o.type == FSIL_MP_INT ? "a negative one" : type_name(&o));
            if (o.type == FSIL_MP_ARRAY || o.type == FSIL_MP_MAP) {
                (void)fsil_mpr_skip(&r);
            }
            return FSIL_ERR_MALFORMED;
        }
    }
    return FSIL_OK;
}

/* A reader over the bytes [start, end). */
static fsil_mpr_t peek_map(const uint8_t *start, const uint8_t *end)
{
    fsil_mpr_t r;
    fsil_mpr_init(&r, start, (size_t)(end - start));
    return r;
}

/* ---- HELLO contents: the schemas of the table (fsil_rates_schema, fsil_config_schema) ---- */

/* Position *value at the value of key in the map whose `pairs` pairs follow r; the last
 * occurrence wins, as in the Python dict the host decodes. False if the key is absent. */
static bool find_key(fsil_mpr_t r, uint32_t pairs, const char *key, size_t key_len,
                     fsil_mpr_t *value)
{
    bool found = false;
    uint32_t k;
    for (k = 0; k < pairs; k++) {
        fsil_mp_obj_t o;
        if (fsil_mpr_next(&r, &o) != FSIL_MP_OK) {
            break;
        }
        if (o.type == FSIL_MP_STR && o.n == key_len &&
            (key_len == 0 || memcmp(o.s, key, key_len) == 0)) {
            *value = r;
            found = true;
        }
        if (fsil_mpr_skip(&r) != FSIL_MP_OK) {
            break;
        }
    }
    return found;
}

/* A finite number, integer or float (never a boolean), as a double in *x. */
static bool number(const fsil_mp_obj_t *o, double *x)
{
    if (o->type == FSIL_MP_INT) {
        *x = o->negative ? (double)o->i : (double)o->u;
        return true;
    }
    if (o->type == FSIL_MP_FLOAT && isfinite(o->f)) {
        *x = o->f;
        return true;
    }
    return false;
}

/* An array of n finite numbers at r: its lowest element and whether one is not zero. */
static bool numbers(fsil_mpr_t *r, uint32_t n, double *lowest, bool *nonzero)
{
    fsil_mp_obj_t o;
    uint32_t k;
    if (fsil_mpr_next(r, &o) != FSIL_MP_OK || o.type != FSIL_MP_ARRAY || o.n != n) {
        return false;
    }
    *lowest = HUGE_VAL;
    *nonzero = false;
    for (k = 0; k < n; k++) {
        double x;
        if (fsil_mpr_next(r, &o) != FSIL_MP_OK || !number(&o, &x)) {
            return false;
        }
        *lowest = x < *lowest ? x : *lowest;
        *nonzero = *nonzero || x != 0.0;
    }
    return true;
}

/* Does the value at r pass check (one of SCHEMA_CHECKS, bridge/kinds.py _SCHEMA_TESTS)? */
static bool check_value(fsil_mpr_t r, fsil_check_t check)
{
    fsil_mp_obj_t o;
    double x = 0.0, lowest = 0.0;
    bool nonzero = false;
    uint32_t k;
    switch (check) {
    case FSIL_CHECK_VEC3:
        return numbers(&r, 3, &lowest, &nonzero);
    case FSIL_CHECK_POS3:
        return numbers(&r, 3, &lowest, &nonzero) && lowest > 0.0;
    case FSIL_CHECK_NONNEG3:
        return numbers(&r, 3, &lowest, &nonzero) && lowest >= 0.0;
    case FSIL_CHECK_DIR3:
        return numbers(&r, 3, &lowest, &nonzero) && nonzero;
    case FSIL_CHECK_QUAT:
        return numbers(&r, 4, &lowest, &nonzero) && nonzero;
    case FSIL_CHECK_DIRS3:
        if (fsil_mpr_next(&r, &o) != FSIL_MP_OK || o.type != FSIL_MP_ARRAY || o.n != 3) {
            return false;
        }
        for (k = 0; k < 3; k++) {
            if (!numbers(&r, 3, &lowest, &nonzero) || !nonzero) {
                return false;
            }
        }
        return true;
    default:
        break;
    }
    if (fsil_mpr_next(&r, &o) != FSIL_MP_OK) {
        return false;
    }
    switch (check) {
    case FSIL_CHECK_REAL: return number(&o, &x);
    case FSIL_CHECK_POS: return number(&o, &x) && x > 0.0;
    case FSIL_CHECK_NONNEG: return number(&o, &x) && x >= 0.0;
    case FSIL_CHECK_UNIT: return number(&o, &x) && x >= 0.0 && x <= 1.0;
    case FSIL_CHECK_TIME: return o.type == FSIL_MP_INT && !o.negative && o.u <= INT64_MAX;
    case FSIL_CHECK_MAP:
    case FSIL_CHECK_NESTED: return o.type == FSIL_MP_MAP; /* keys: strings (the reader) */
    default: return false;
    }
}

/* Check the map at map_r against schema in the host's order (bridge/kinds.py check_schema):
 * keys in schema order, the first failure named by its dotted path ("vehicle.isp_s:
 * missing"). path holds the enclosing keys (depth of them). Recursion follows the
 * generated schema's nesting (FSIL_SCHEMA_MAX_DEPTH), never the input's. */
static fsil_err_t check_schema(fsil_mpr_t map_r, const fsil_schema_t *schema,
                               const char *const *path, uint32_t depth, fsil_error_t *err)
{
    fsil_mp_obj_t head;
    uint32_t k, j;
    if (fsil_mpr_next(&map_r, &head) != FSIL_MP_OK || head.type != FSIL_MP_MAP) {
        return fsil_error_set(err, FSIL_ERR_MALFORMED, "expected a map");
    }
    for (k = 0; k < schema->count; k++) {
        const fsil_schema_key_t *key = &schema->keys[k];
        fsil_mpr_t value;
        fsil_err_t st = FSIL_OK;
        bool found = find_key(map_r, head.n, key->key, strlen(key->key), &value);
        if (found && key->check == FSIL_CHECK_NESTED && check_value(value, FSIL_CHECK_NESTED)) {
            const char *inner[FSIL_SCHEMA_MAX_DEPTH];
            if (depth + 1u >= FSIL_SCHEMA_MAX_DEPTH) {
                return fsil_error_set(err, FSIL_ERR_MALFORMED, "schema nested too deep");
            }
            for (j = 0; j < depth; j++) {
                inner[j] = path[j];
            }
            inner[depth] = key->key;
            st = check_schema(value, key->nested, inner, depth + 1u, err);
            if (st != FSIL_OK) {
                return st;
            }
            continue;
        }
        if (found ? check_value(value, key->check) : !key->required) {
            continue;
        }
        fsil_error_clear(err);
        for (j = 0; j < depth; j++) {
            fsil_error_add(err, path[j]);
            fsil_error_add(err, ".");
        }
        fsil_error_add(err, key->key);
        if (!found) {
            fsil_error_add(err, ": missing");
            err->status = FSIL_ERR_MALFORMED;
            return FSIL_ERR_MALFORMED;
        }
        fsil_error_add(err, ": ");
        (void)fsil_mpr_next(&value, &head);
        return bad(err, fsil_check_text(key->check), &head);
    }
    return FSIL_OK;
}

fsil_err_t fsil_check_schema(fsil_map_t map, const fsil_schema_t *schema, fsil_error_t *err)
{
    fsil_mpr_t r;
    fsil_error_t scratch;
    if (err == NULL) {
        err = &scratch;
    }
    fsil_error_clear(err);
    if (map.ptr == NULL || fsil_mp_check(map.ptr, map.len) != FSIL_MP_OK) {
        return fsil_error_set(err, FSIL_ERR_MALFORMED, "not one well-formed msgpack map");
    }
    fsil_mpr_init(&r, map.ptr, map.len);
    return check_schema(r, schema, NULL, 0, err);
}

static fsil_err_t dec_field(fsil_mpr_t *r, const fsil_field_t *field, void *at, fsil_error_t *err)
{
    fsil_kind_t kind = field->kind;
    fsil_mp_obj_t o;
    fsil_err_t st;
    uint64_t u = 0;
    switch (kind) {
    case FSIL_KIND_U32:
        st = dec_int(r, 0, UINT32_MAX, "an unsigned 32-bit integer", &u, NULL, err);
        *(uint32_t *)at = (uint32_t)u;
        return st;
    case FSIL_KIND_T:
        return dec_int(r, 0, INT64_MAX, "a time in us >= 0", NULL, (int64_t *)at, err);
    case FSIL_KIND_MODE:
        st = dec_int(r, 0, FSIL_MODE_COUNT - 1, "a mode index into MODES", &u, NULL, err);
        *(uint32_t *)at = (uint32_t)u;
        return st;
    case FSIL_KIND_F:
        return dec_f(r, (double *)at, err);
    case FSIL_KIND_S:
        st = next(r, &o, err);
        if (st != FSIL_OK) {
            return st;
        }
        if (o.type != FSIL_MP_STR) {
            return bad(err, "a string", &o);
        }
        ((fsil_str_t *)at)->ptr = o.s;
        ((fsil_str_t *)at)->len = o.n;
        return FSIL_OK;
    case FSIL_KIND_M:
    case FSIL_KIND_COUNTS: {
        fsil_mpr_t peek = *r;
        const uint8_t *start = r->p;
        st = next(&peek, &o, err);
        if (st != FSIL_OK) {
            return st;
        }
        if (o.type != FSIL_MP_MAP) {
            return bad(err, "a map", &o);
        }
        if (fsil_mpr_skip(r) != FSIL_MP_OK) { /* keys were checked by fsil_mp_check */
            return fsil_error_set(err, FSIL_ERR_MALFORMED, "bad map");
        }
        ((fsil_map_t *)at)->ptr = start;
        ((fsil_map_t *)at)->len = (uint32_t)(r->p - start);
        if (field->schema != NULL) {
            return check_schema(peek_map(start, r->p), field->schema, NULL, 0, err);
        }
        return kind == FSIL_KIND_COUNTS ? check_counts(start, (size_t)(r->p - start), err) : FSIL_OK;
    }
    case FSIL_KIND_F3:
        return dec_floats(r, (double *)at, 3, "an array of 3 floats", err);
    case FSIL_KIND_NAV: {
        fsil_nav_t *nav = (fsil_nav_t *)at;
        fsil_mpr_t peek = *r;
        st = next(&peek, &o, err);
        if (st == FSIL_OK && o.type == FSIL_MP_NIL) {
            *r = peek;
            nav->present = false;
            return FSIL_OK;
        }
        nav->present = true;
        return dec_floats(r, nav->v, 7, "nil or an array of 7 floats", err);
    }
    case FSIL_KIND_IMU:
        return dec_imu(r, (fsil_imu_t *)at, err);
    case FSIL_KIND_ALT:
        return dec_alt(r, (fsil_alt_t *)at, err);
    case FSIL_KIND_VEL:
        return dec_vel(r, (fsil_vel_t *)at, err);
    case FSIL_KIND_ATT:
        return dec_att(r, (fsil_att_t *)at, err);
    }
    return fsil_error_set(err, FSIL_ERR_MALFORMED, "field of an unknown kind");
}

/* HELLO and HELLO_ACK name their sender: the role must be the table's. */
static fsil_err_t check_role(const fsil_layout_t *layout, const void *fields, fsil_error_t *err)
{
    const fsil_str_t *role;
    if (layout->role == NULL) {
        return FSIL_OK;
    }
    role = (const fsil_str_t *)(const void *)((const uint8_t *)fields + layout->role_offset);
    if (fsil_str_eq(*role, layout->role)) {
        return FSIL_OK;
    }
    fsil_error_set(err, FSIL_ERR_MALFORMED, layout->name);
    fsil_error_add(err, " field role: must be \"");
    fsil_error_add(err, layout->role);
    fsil_error_add(err, "\", got \"");
    fsil_error_add_n(err, role->ptr, role->len < 40 ? role->len : 40);
    fsil_error_add(err, "\"");
    return FSIL_ERR_MALFORMED;
}

/* After a version mismatch: an END keeps its layout in every version, so say its reason. */
static void add_end_reason(fsil_mpr_t r, uint32_t count, fsil_error_t *err)
{
    fsil_mp_obj_t type_id, reason;
    if (count == 4 && fsil_mpr_next(&r, &type_id) == FSIL_MP_OK && type_id.type == FSIL_MP_INT &&
        !type_id.negative && type_id.u == FSIL_MSG_END && fsil_mpr_skip(&r) == FSIL_MP_OK &&
        fsil_mpr_next(&r, &reason) == FSIL_MP_OK &&
        reason.type == FSIL_MP_STR) {
        fsil_error_add(err, " (the peer ended the run: ");
        fsil_error_add_n(err, reason.s, reason.n);
        fsil_error_add(err, ")");
    }
}

fsil_err_t fsil_decode(const uint8_t *payload, size_t len, fsil_msg_t *msg, fsil_error_t *err)
{
    fsil_mpr_t r;
    fsil_mp_obj_t o;
    fsil_mp_status_t mp;
    const fsil_layout_t *layout;
    uint32_t k, count;
    fsil_error_t scratch;
    if (err == NULL) {
        err = &scratch;
    }
    fsil_error_clear(err);
    if (len > FSIL_MAX_PAYLOAD_BYTES) {
        fsil_error_set(err, FSIL_ERR_TOO_LARGE, "payload of ");
        fsil_error_add_u(err, len);
        fsil_error_add(err, " bytes, more than the limit of ");
        fsil_error_add_u(err, FSIL_MAX_PAYLOAD_BYTES);
        return FSIL_ERR_TOO_LARGE;
    }
    mp = fsil_mp_check(payload, len);
    if (mp != FSIL_MP_OK) {
        fsil_error_set(err, FSIL_ERR_MALFORMED, "not one complete msgpack object (");
        fsil_error_add(err, fsil_mp_status_text(mp));
        fsil_error_add(err, ")");
        return FSIL_ERR_MALFORMED;
    }
    fsil_mpr_init(&r, payload, len);
    (void)fsil_mpr_next(&r, &o);
    if (o.type != FSIL_MP_ARRAY || o.n < 2) {
        fsil_error_set(err, FSIL_ERR_MALFORMED, "");
        return bad(err, "an array [version, type_id, ...]", &o);
    }
    count = o.n;
    (void)fsil_mpr_next(&r, &o);
    if (o.type != FSIL_MP_INT || o.negative || o.u != FSIL_PROTOCOL_VERSION) {
        fsil_error_set(err, FSIL_ERR_VERSION, "protocol version ");
        if (o.type == FSIL_MP_INT && !o.negative) {
            fsil_error_add_u(err, o.u);
        } else {
            fsil_error_add(err, o.type == FSIL_MP_INT ? "negative" : type_name(&o));
        }
        fsil_error_add(err, ", expected ");
        fsil_error_add_u(err, FSIL_PROTOCOL_VERSION);
        add_end_reason(r, count, err);
        return FSIL_ERR_VERSION;
    }
    (void)fsil_mpr_next(&r, &o);
    layout = (o.type == FSIL_MP_INT && !o.negative && o.u <= FSIL_MSG_MAX_ID)
                 ? fsil_layout((uint32_t)o.u) : NULL;
    if (layout == NULL) {
        fsil_error_set(err, FSIL_ERR_UNKNOWN, "unknown message type ");
        if (o.type == FSIL_MP_INT && !o.negative) {
            fsil_error_add_u(err, o.u);
        } else {
            fsil_error_add(err, type_name(&o));
        }
        return FSIL_ERR_UNKNOWN;
    }
    msg->type = (uint32_t)o.u;
    if (count - 2u != layout->count) {
        fsil_error_set(err, FSIL_ERR_MALFORMED, layout->name);
        fsil_error_add(err, ": expected ");
        fsil_error_add_u(err, layout->count);
        fsil_error_add(err, " fields, got ");
        fsil_error_add_u(err, count - 2u);
        return FSIL_ERR_MALFORMED;
    }
    for (k = 0; k < layout->count; k++) {
        const fsil_field_t *f = &layout->fields[k];
        fsil_error_t detail;
        fsil_err_t st;
        fsil_error_clear(&detail);
        st = dec_field(&r, f, (uint8_t *)&msg->u + f->offset, &detail);
        if (st != FSIL_OK) {
            fsil_error_set(err, st, layout->name);
            fsil_error_add(err, " field ");
            fsil_error_add(err, f->name);
            fsil_error_add(err, ": ");
            fsil_error_add(err, detail.text);
            return st;
        }
    }
    return check_role(layout, &msg->u, err);
}

/* ---- encoding ---------------------------------------------------------------------------- */

/* The encoder refuses what a receiver would: the same ranges as fsil_decode. */
static fsil_err_t enc_floats(fsil_mpw_t *w, const double *v, uint32_t n, fsil_error_t *err)
{
    uint32_t k;
    for (k = 0; k < n; k++) {
        if (!isfinite(v[k])) {
            fsil_error_set(err, FSIL_ERR_ARG, "element ");
            fsil_error_add_u(err, k);
            fsil_error_add(err, ": not a finite float");
            return FSIL_ERR_ARG;
        }
    }
    fsil_mpw_array(w, n);
    for (k = 0; k < n; k++) {
        fsil_mpw_double(w, v[k]);
    }
    return FSIL_OK;
}

static fsil_err_t enc_field(fsil_mpw_t *w, const fsil_field_t *field, const void *at,
                            fsil_error_t *err)
{
    fsil_kind_t kind = field->kind;
    uint32_t k;
    switch (kind) {
    case FSIL_KIND_U32:
        fsil_mpw_uint(w, *(const uint32_t *)at);
        return FSIL_OK;
    case FSIL_KIND_T:
        if (*(const int64_t *)at < 0) {
            return fsil_error_set(err, FSIL_ERR_ARG, "a time in us must be >= 0");
        }
        fsil_mpw_int(w, *(const int64_t *)at);
        return FSIL_OK;
    case FSIL_KIND_MODE:
        if (*(const uint32_t *)at >= FSIL_MODE_COUNT) {
            return fsil_error_set(err, FSIL_ERR_ARG, "mode is not an index into MODES");
        }
        fsil_mpw_uint(w, *(const uint32_t *)at);
        return FSIL_OK;
    case FSIL_KIND_F:
        if (!isfinite(*(const double *)at)) {
            return fsil_error_set(err, FSIL_ERR_ARG, "not a finite float");
        }
        fsil_mpw_double(w, *(const double *)at);
        return FSIL_OK;
    case FSIL_KIND_S: {
        const fsil_str_t *s = (const fsil_str_t *)at;
        if (s->len > 0 && (s->ptr == NULL || !fsil_utf8_valid((const uint8_t *)s->ptr, s->len))) {
            return fsil_error_set(err, FSIL_ERR_ARG, "not a UTF-8 string");
        }
        fsil_mpw_str(w, s->ptr, s->len);
        return FSIL_OK;
    }
    case FSIL_KIND_M:
    case FSIL_KIND_COUNTS: {
        const fsil_map_t *m = (const fsil_map_t *)at;
        fsil_mpr_t r;
        fsil_mp_obj_t o;
        if (m->ptr == NULL || fsil_mp_check(m->ptr, m->len) != FSIL_MP_OK) {
            return fsil_error_set(err, FSIL_ERR_ARG, "not one well-formed msgpack map");
        }
        fsil_mpr_init(&r, m->ptr, m->len);
        if (fsil_mpr_next(&r, &o) != FSIL_MP_OK || o.type != FSIL_MP_MAP) {
            return fsil_error_set(err, FSIL_ERR_ARG, "not a msgpack map");
        }
        if ((kind == FSIL_KIND_COUNTS && check_counts(m->ptr, m->len, err) != FSIL_OK) ||
            (field->schema != NULL &&
             check_schema(peek_map(m->ptr, m->ptr + m->len), field->schema, NULL, 0, err) !=
                 FSIL_OK)) {
            err->status = FSIL_ERR_ARG;
            return FSIL_ERR_ARG;
        }
        fsil_mpw_raw(w, m->ptr, m->len);
        return FSIL_OK;
    }
    case FSIL_KIND_F3:
        return enc_floats(w, (const double *)at, 3, err);
    case FSIL_KIND_NAV: {
        const fsil_nav_t *nav = (const fsil_nav_t *)at;
        if (!nav->present) {
            fsil_mpw_nil(w);
            return FSIL_OK;
        }
        return enc_floats(w, nav->v, 7, err);
    }
    case FSIL_KIND_IMU: {
        const fsil_imu_t *imu = (const fsil_imu_t *)at;
        if (imu->count > FSIL_MAX_IMU_SAMPLES) {
            return fsil_error_set(err, FSIL_ERR_ARG, "too many IMU samples");
        }
        fsil_mpw_array(w, imu->count);
        for (k = 0; k < imu->count; k++) {
            const fsil_imu_sample_t *s = &imu->s[k];
            double v[6];
            if (s->t_us < 0 || (k > 0 && s->t_us <= imu->s[k - 1].t_us)) {
                return fsil_error_set(err, FSIL_ERR_ARG,
                                      "IMU time stamps must be >= 0 and strictly increasing");
            }
            memcpy(v, s->dv, sizeof s->dv);
            memcpy(v + 3, s->dth, sizeof s->dth);
            fsil_mpw_array(w, IMU_SAMPLE_LEN);
            fsil_mpw_int(w, s->t_us);
            for (uint32_t j = 0; j < 6; j++) {
                if (!isfinite(v[j])) {
                    return fsil_error_set(err, FSIL_ERR_ARG, "IMU sample: not a finite float");
                }
                fsil_mpw_double(w, v[j]);
            }
        }
        return FSIL_OK;
    }
    case FSIL_KIND_ALT: {
        const fsil_alt_t *alt = (const fsil_alt_t *)at;
        if (!alt->present) {
            fsil_mpw_nil(w);
            return FSIL_OK;
        }
        if (alt->t_us < 0 || !isfinite(alt->range_m)) {
            return fsil_error_set(err, FSIL_ERR_ARG, "altimeter t_us < 0 or range not finite");
        }
        fsil_mpw_array(w, ALT_SAMPLE_LEN);
        fsil_mpw_int(w, alt->t_us);
        fsil_mpw_double(w, alt->range_m);
        fsil_mpw_bool(w, alt->valid);
        return FSIL_OK;
    }
    case FSIL_KIND_VEL: {
        const fsil_vel_t *vel = (const fsil_vel_t *)at;
        if (!vel->present) {
            fsil_mpw_nil(w);
            return FSIL_OK;
        }
        if (vel->t_us < 0 || vel->valid_mask >= (1u << FSIL_VEL_BEAMS)) {
            return fsil_error_set(err, FSIL_ERR_ARG, "velocimeter t_us < 0 or valid_mask > 7");
        }
        for (k = 0; k < 3; k++) {
            if (!isfinite(vel->vlos_mps[k]) || !isfinite(vel->range_m[k])) {
                return fsil_error_set(err, FSIL_ERR_ARG, "velocimeter: not a finite float");
            }
        }
        fsil_mpw_array(w, VEL_SAMPLE_LEN);
        fsil_mpw_int(w, vel->t_us);
        for (k = 0; k < 3; k++) {
            fsil_mpw_double(w, vel->vlos_mps[k]);
        }
        for (k = 0; k < 3; k++) {
            fsil_mpw_double(w, vel->range_m[k]);
        }
        fsil_mpw_uint(w, vel->valid_mask);
        return FSIL_OK;
    }
    case FSIL_KIND_ATT: {
        const fsil_att_t *att = (const fsil_att_t *)at;
        if (!att->present) {
            fsil_mpw_nil(w);
            return FSIL_OK;
        }
        if (att->t_us < 0) {
            return fsil_error_set(err, FSIL_ERR_ARG, "star tracker t_us < 0");
        }
        for (k = 0; k < 4; k++) {
            if (!isfinite(att->q[k])) {
                return fsil_error_set(err, FSIL_ERR_ARG, "star tracker: not a finite float");
            }
        }
        if (att->q[0] == 0.0 && att->q[1] == 0.0 && att->q[2] == 0.0 && att->q[3] == 0.0) {
            return fsil_error_set(err, FSIL_ERR_ARG, "star tracker quaternion is all zero");
        }
        fsil_mpw_array(w, ATT_SAMPLE_LEN);
        fsil_mpw_int(w, att->t_us);
        for (k = 0; k < 4; k++) {
            fsil_mpw_double(w, att->q[k]);
        }
        fsil_mpw_bool(w, att->valid);
        return FSIL_OK;
    }
    }
    return fsil_error_set(err, FSIL_ERR_ARG, "field of an unknown kind");
}

fsil_err_t fsil_encode(const fsil_msg_t *msg, uint8_t *buf, size_t cap, size_t *len,
                          fsil_error_t *err)
{
    const fsil_layout_t *layout = fsil_layout(msg->type);
    fsil_mpw_t w;
    uint32_t k;
    fsil_error_t scratch;
    if (err == NULL) {
        err = &scratch;
    }
    fsil_error_clear(err);
    *len = 0;
    if (layout == NULL) {
        fsil_error_set(err, FSIL_ERR_UNKNOWN, "unknown message type ");
        fsil_error_add_u(err, msg->type);
        return FSIL_ERR_UNKNOWN;
    }
    fsil_mpw_init(&w, buf, cap < FSIL_MAX_PAYLOAD_BYTES ? cap : FSIL_MAX_PAYLOAD_BYTES);
    fsil_mpw_array(&w, layout->count + 2u);
    fsil_mpw_uint(&w, FSIL_PROTOCOL_VERSION);
    fsil_mpw_uint(&w, msg->type);
    for (k = 0; k < layout->count; k++) {
        const fsil_field_t *f = &layout->fields[k];
        fsil_error_t detail;
        fsil_err_t st;
        fsil_error_clear(&detail);
        st = enc_field(&w, f, (const uint8_t *)&msg->u + f->offset, &detail);
        if (st != FSIL_OK) {
            fsil_error_set(err, st, layout->name);
            fsil_error_add(err, " field ");
            fsil_error_add(err, f->name);
            fsil_error_add(err, ": ");
            fsil_error_add(err, detail.text);
            return st;
        }
    }
    if (check_role(layout, &msg->u, err) != FSIL_OK) {
        err->status = FSIL_ERR_ARG;
        return FSIL_ERR_ARG;
    }
    if (w.overflow) {
        if (cap < FSIL_MAX_PAYLOAD_BYTES) {
            return fsil_error_set(err, FSIL_ERR_ARG, "encode buffer too small");
        }
        return fsil_error_set(err, FSIL_ERR_TOO_LARGE, "payload larger than 4096 bytes");
    }
    *len = w.len;
    return FSIL_OK;
}

fsil_err_t fsil_encode_hello_ack(uint8_t *buf, size_t cap, size_t *len,
                                    const char *software, const char *runtime)
{
    fsil_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = FSIL_MSG_HELLO_ACK;
    m.u.hello_ack.role = fsil_str("fsw");
    m.u.hello_ack.software = fsil_str(software);
    m.u.hello_ack.runtime = fsil_str(runtime);
    return fsil_encode(&m, buf, cap, len, NULL);
}

fsil_err_t fsil_encode_end(uint8_t *buf, size_t cap, size_t *len, uint32_t seq,
                              const char *reason)
{
    fsil_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = FSIL_MSG_END;
    m.u.end.seq = seq;
    m.u.end.reason = fsil_str(reason);
    return fsil_encode(&m, buf, cap, len, NULL);
}

fsil_err_t fsil_encode_status(uint8_t *buf, size_t cap, size_t *len, uint32_t seq,
                              const char *const *names, const uint64_t *values, uint32_t n)
{
    uint8_t stats[FSIL_MAX_PAYLOAD_BYTES];
    fsil_mpw_t w;
    fsil_msg_t m;
    uint32_t k;
    fsil_mpw_init(&w, stats, sizeof stats);
    fsil_mpw_map(&w, n);
    for (k = 0; k < n; k++) {
        fsil_mpw_cstr(&w, names[k]);
        fsil_mpw_uint(&w, values[k]);
    }
    *len = 0;
    if (w.overflow) {
        return FSIL_ERR_TOO_LARGE;
    }
    memset(&m, 0, sizeof m);
    m.type = FSIL_MSG_STATUS;
    m.u.status.seq = seq;
    m.u.status.stats.ptr = stats;
    m.u.status.stats.len = (uint32_t)w.len;
    return fsil_encode(&m, buf, cap, len, NULL);
}

/* ---- reading maps ------------------------------------------------------------------------ */

fsil_err_t fsil_map_find(fsil_map_t map, const char *path, fsil_mpr_t *value, fsil_error_t *err)
{
    fsil_mpr_t r;
    const char *key = path;
    fsil_mpr_init(&r, map.ptr, map.len);
    for (;;) {
        const char *dot = strchr(key, '.');
        size_t key_len = dot != NULL ? (size_t)(dot - key) : strlen(key);
        fsil_mp_obj_t o;
        if (fsil_mpr_next(&r, &o) != FSIL_MP_OK || o.type != FSIL_MP_MAP) {
            fsil_error_set(err, FSIL_ERR_MALFORMED, path);
            fsil_error_add(err, ": not a map at \"");
            fsil_error_add_n(err, key, key_len);
            fsil_error_add(err, "\"");
            return FSIL_ERR_MALFORMED;
        }
        if (!find_key(r, o.n, key, key_len, &r)) {
            fsil_error_set(err, FSIL_ERR_MALFORMED, path);
            fsil_error_add(err, ": missing");
            return FSIL_ERR_MALFORMED;
        }
        if (dot == NULL) {
            *value = r;
            return FSIL_OK;
        }
        key = dot + 1;
    }
}

static fsil_err_t map_error(fsil_error_t *err, const char *path, const char *what)
{
    fsil_error_set(err, FSIL_ERR_MALFORMED, path);
    fsil_error_add(err, ": expected ");
    fsil_error_add(err, what);
    return FSIL_ERR_MALFORMED;
}

fsil_err_t fsil_map_get_f64(fsil_map_t map, const char *path, double *out, fsil_error_t *err)
{
    fsil_mpr_t r;
    fsil_error_t ignored;
    fsil_err_t st = fsil_map_find(map, path, &r, err);
    if (st != FSIL_OK) {
        return st;
    }
    fsil_error_clear(&ignored);
    if (dec_f(&r, out, &ignored) != FSIL_OK) {
        return map_error(err, path, "a number");
    }
    return FSIL_OK;
}

fsil_err_t fsil_map_get_f64s(fsil_map_t map, const char *path, double *out, uint32_t n,
                                fsil_error_t *err)
{
    fsil_mpr_t r;
    fsil_error_t ignored;
    fsil_err_t st = fsil_map_find(map, path, &r, err);
    if (st != FSIL_OK) {
        return st;
    }
    fsil_error_clear(&ignored);
    if (dec_floats(&r, out, n, "", &ignored) != FSIL_OK) {
        fsil_error_set(err, FSIL_ERR_MALFORMED, path);
        fsil_error_add(err, ": expected an array of ");
        fsil_error_add_u(err, n);
        fsil_error_add(err, " numbers");
        return FSIL_ERR_MALFORMED;
    }
    return FSIL_OK;
}

fsil_err_t fsil_map_get_i64(fsil_map_t map, const char *path, int64_t *out, fsil_error_t *err)
{
    fsil_mpr_t r;
    fsil_error_t ignored;
    fsil_err_t st = fsil_map_find(map, path, &r, err);
    if (st != FSIL_OK) {
        return st;
    }
    fsil_error_clear(&ignored);
    if (dec_int(&r, INT64_MIN, INT64_MAX, "", NULL, out, &ignored) != FSIL_OK) {
        return map_error(err, path, "an integer");
    }
    return FSIL_OK;
}

fsil_err_t fsil_map_get_str(fsil_map_t map, const char *path, fsil_str_t *out, fsil_error_t *err)
{
    fsil_mpr_t r;
    fsil_mp_obj_t o;
    fsil_err_t st = fsil_map_find(map, path, &r, err);
    if (st != FSIL_OK) {
        return st;
    }
    if (fsil_mpr_next(&r, &o) != FSIL_MP_OK || o.type != FSIL_MP_STR) {
        return map_error(err, path, "a string");
    }
    out->ptr = o.s;
    out->len = o.n;
    return FSIL_OK;
}

fsil_err_t fsil_map_get_map(fsil_map_t map, const char *path, fsil_map_t *out, fsil_error_t *err)
{
    fsil_mpr_t r, peek;
    fsil_mp_obj_t o;
    fsil_err_t st = fsil_map_find(map, path, &r, err);
    if (st != FSIL_OK) {
        return st;
    }
    peek = r;
    if (fsil_mpr_next(&peek, &o) != FSIL_MP_OK || o.type != FSIL_MP_MAP) {
        return map_error(err, path, "a map");
    }
    out->ptr = r.p;
    if (fsil_mpr_skip(&r) != FSIL_MP_OK) {
        return map_error(err, path, "a well-formed map");
    }
    out->len = (uint32_t)(r.p - out->ptr);
    return FSIL_OK;
}
