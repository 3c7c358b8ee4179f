/* Messages <-> payload bytes, following the generated table (fsil/protocol.h).
 *
 * One generic path like the host's bridge/codec.py: fsil_decode() checks a payload and
 * fills an fsil_msg_t; fsil_encode() checks a message and writes its bytes, equal byte for
 * byte to what the host encodes. Strings and maps of a decoded message point into the
 * payload: keep the payload while you use them. No heap.
 */
#ifndef FSIL_CODEC_H
#define FSIL_CODEC_H

#include "fsil/msgpack.h"
#include "fsil/protocol.h"
#include "fsil/err.h"

/* Decode one payload. The checks run in the host's order: size, one complete msgpack
 * object, an array, version, type id, field count, each field (HELLO rates and config
 * against their schemas), the role. On failure msg is
 * unspecified and err (may be NULL) says why, naming the message and field. */
fsil_err_t fsil_decode(const uint8_t *payload, size_t len, fsil_msg_t *msg, fsil_error_t *err);

/* Encode one message into buf (cap bytes; FSIL_MAX_PAYLOAD_BYTES always suffice).
 * FSIL_ERR_TOO_LARGE above FSIL_MAX_PAYLOAD_BYTES, FSIL_ERR_ARG if buf is too small
 * or a field is out of its range (named in err). */
fsil_err_t fsil_encode(const fsil_msg_t *msg, uint8_t *buf, size_t cap, size_t *len,
                          fsil_error_t *err);

/* Check a map against a schema of the table (fsil_rates_schema, fsil_config_schema): what
 * fsil_decode does to HELLO rates and config, the host's check_schema in C. FSIL_OK, or
 * FSIL_ERR_MALFORMED with err naming the first bad key by its path ("vehicle.isp_s:
 * missing"; "nav_init.q: expected an array of 4 finite numbers [w, x, y, z], not all zero,
 * got array of 3"). */
fsil_err_t fsil_check_schema(fsil_map_t map, const fsil_schema_t *schema, fsil_error_t *err);

/* A string for encoding, from a NUL-terminated C string. */
fsil_str_t fsil_str(const char *text);
/* True if s equals the C string text. */
int fsil_str_eq(fsil_str_t s, const char *text);

/* ---- convenience encoders: thin wrappers over fsil_encode ---- */
fsil_err_t fsil_encode_hello_ack(uint8_t *buf, size_t cap, size_t *len,
                                    const char *software, const char *runtime);
fsil_err_t fsil_encode_end(uint8_t *buf, size_t cap, size_t *len, uint32_t seq,
                           const char *reason);
/* STATUS with counters: names[k] = values[k], k < n (all counters are unsigned). */
fsil_err_t fsil_encode_status(uint8_t *buf, size_t cap, size_t *len, uint32_t seq,
                              const char *const *names, const uint64_t *values, uint32_t n);

/* ---- reading a received map (HELLO rates and config) ----
 * A path names nested keys with dots: "vehicle.dry_mass_kg". Integers are read as
 * doubles where a double is asked for. Each returns FSIL_OK or FSIL_ERR_MALFORMED with
 * err naming the path ("config vehicle.dry_mass_kg: missing"). */
fsil_err_t fsil_map_get_f64(fsil_map_t map, const char *path, double *out, fsil_error_t *err);
fsil_err_t fsil_map_get_f64s(fsil_map_t map, const char *path, double *out, uint32_t n,
                                fsil_error_t *err);
fsil_err_t fsil_map_get_i64(fsil_map_t map, const char *path, int64_t *out, fsil_error_t *err);
fsil_err_t fsil_map_get_str(fsil_map_t map, const char *path, fsil_str_t *out, fsil_error_t *err);
fsil_err_t fsil_map_get_map(fsil_map_t map, const char *path, fsil_map_t *out, fsil_error_t *err);
/* Position a reader at the value of path; FSIL_ERR_MALFORMED if it is missing. A key
 * given twice in a map reads as its last value (as the host's Python dict does). */
fsil_err_t fsil_map_find(fsil_map_t map, const char *path, fsil_mpr_t *value, fsil_error_t *err);

#endif /* FSIL_CODEC_H */
