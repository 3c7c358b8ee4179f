/* Status codes of every fsil C call, and a one-line error text (no heap, no printf). */
#ifndef FSIL_ERR_H
#define FSIL_ERR_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FSIL_OK = 0,
    /* the content of a payload (bridge.errors.ProtocolError and its subclasses) */
    FSIL_ERR_MALFORMED,   /* not one msgpack array, wrong field count or kind, bad value */
    FSIL_ERR_VERSION,     /* another protocol version */
    FSIL_ERR_UNKNOWN,     /* unknown message type id */
    FSIL_ERR_TOO_LARGE,   /* payload above FSIL_MAX_PAYLOAD_BYTES */
    FSIL_ERR_UNEXPECTED,  /* a valid message that is not the one expected */
    /* the link (bridge.errors.LinkError and its subclasses) */
    FSIL_ERR_TIMEOUT,     /* nothing from the peer within the time allowed */
    FSIL_ERR_CLOSED,      /* the peer or the port went away */
    FSIL_ERR_IO,          /* a transport call failed */
    FSIL_ERR_URL,         /* a link URL that cannot be used */
    /* the caller */
    FSIL_ERR_ARG,         /* a bad argument (buffer too small, NULL, value out of range) */
    FSIL_ERR_END          /* not an error of the link: the peer ended the run with END */
} fsil_err_t;

#define FSIL_ERROR_TEXT_BYTES 200

/* Why a call failed, in one line ("frame field imu: IMU sample 3: expected ..."). */
typedef struct {
    fsil_err_t status;
    char text[FSIL_ERROR_TEXT_BYTES];
} fsil_error_t;

/* Short name of a status ("malformed message"). */
const char *fsil_err_name(fsil_err_t status);

/* Building error texts: append to err->text, truncating; err may be NULL. */
void fsil_error_clear(fsil_error_t *err);
fsil_err_t fsil_error_set(fsil_error_t *err, fsil_err_t status, const char *text);
void fsil_error_add(fsil_error_t *err, const char *text);
void fsil_error_add_n(fsil_error_t *err, const char *text, size_t len);
void fsil_error_add_u(fsil_error_t *err, uint64_t value);
void fsil_error_add_i(fsil_error_t *err, int64_t value);

#endif /* FSIL_ERR_H */
