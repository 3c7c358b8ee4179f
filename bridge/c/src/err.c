/* Status names and one-line error texts (see fsil/err.h). */
#include "fsil/err.h"

#include <string.h>

const char *fsil_err_name(fsil_err_t status)
{
    switch (status) {
    case FSIL_OK: return "ok";
    case FSIL_ERR_MALFORMED: return "malformed message";
    case FSIL_ERR_VERSION: return "protocol version mismatch";
    case FSIL_ERR_UNKNOWN: return "unknown message type";
    case FSIL_ERR_TOO_LARGE: return "payload too large";
    case FSIL_ERR_UNEXPECTED: return "unexpected message";
    case FSIL_ERR_TIMEOUT: return "peer timeout";
    case FSIL_ERR_CLOSED: return "peer closed";
    case FSIL_ERR_IO: return "link error";
    case FSIL_ERR_URL: return "bad link URL";
    case FSIL_ERR_ARG: return "bad argument";
    case FSIL_ERR_END: return "run ended by the peer";
    }
    return "unknown status";
}

void fsil_error_clear(fsil_error_t *err)
{
    if (err != NULL) {
        err->status = FSIL_OK;
        err->text[0] = '\0';
    }
}

void fsil_error_add_n(fsil_error_t *err, const char *text, size_t len)
{
    size_t have, room;
    if (err == NULL) {
        return;
    }
    have = strlen(err->text);
    room = sizeof err->text - 1u - have;
    if (len > room) {
        len = room;
    }
    memcpy(err->text + have, text, len);
    err->text[have + len] = '\0';
}

void fsil_error_add(fsil_error_t *err, const char *text)
{
    fsil_error_add_n(err, text, strlen(text));
}

fsil_err_t fsil_error_set(fsil_error_t *err, fsil_err_t status, const char *text)
{
    if (err != NULL) {
        err->status = status;
        err->text[0] = '\0';
        fsil_error_add(err, text);
    }
    return status;
}

void fsil_error_add_u(fsil_error_t *err, uint64_t value)
{
    char digits[21];
    size_t k = sizeof digits;
    do {
        digits[--k] = (char)('0' + (int)(value % 10u));
        value /= 10u;
    } while (value != 0);
    fsil_error_add_n(err, digits + k, sizeof digits - k);
}

void fsil_error_add_i(fsil_error_t *err, int64_t value)
{
    if (value < 0) {
        fsil_error_add(err, "-");
        fsil_error_add_u(err, (uint64_t)0 - (uint64_t)value);
    } else {
        fsil_error_add_u(err, (uint64_t)value);
    }
}
