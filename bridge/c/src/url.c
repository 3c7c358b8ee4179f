/* Link URLs of the flight software's end (see fsil/url.h). */
#include "fsil/url.h"

#include <string.h>

static fsil_err_t bad_url(fsil_error_t *err, const char *url, const char *reason)
{
    fsil_error_set(err, FSIL_ERR_URL, "bad link URL \"");
    fsil_error_add(err, url);
    fsil_error_add(err, "\": ");
    fsil_error_add(err, reason);
    fsil_error_add(err, "; expected " FSIL_URL_GRAMMAR);
    return FSIL_ERR_URL;
}

static int starts(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* Decimal digits only, value in [lo, hi]; returns 1 and *out, or 0. */
static int parse_uint(const char *text, size_t len, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t v = 0;
    size_t k;
    if (len == 0 || len > 10) {
        return 0;
    }
    for (k = 0; k < len; k++) {
        if (text[k] < '0' || text[k] > '9') {
            return 0;
        }
        v = v * 10u + (uint64_t)(text[k] - '0');
    }
    if (v < lo || v > hi) {
        return 0;
    }
    *out = (uint32_t)v;
    return 1;
}

static fsil_err_t open_serial(fsil_url_link_t *out, const char *url, const char *rest,
                                 fsil_error_t *err)
{
    char path[256];
    const char *query = strchr(rest, '?');
    size_t path_len = query != NULL ? (size_t)(query - rest) : strlen(rest);
    uint32_t baud = FSIL_DEFAULT_BAUD;
    fsil_err_t st;
    if (path_len == 0) {
        return bad_url(err, url, "missing PATH");
    }
    if (path_len >= sizeof path) {
        return bad_url(err, url, "PATH too long");
    }
    if (query != NULL) {
        const char *option = query + 1;
        if (!starts(option, "baud=")) {
            return bad_url(err, url, "unknown option (only baud=N)");
        }
        if (!parse_uint(option + 5, strlen(option + 5), 1, 0xffffffffu, &baud)) {
            return bad_url(err, url, "baud must be a positive integer");
        }
    }
    memcpy(path, rest, path_len);
    path[path_len] = '\0';
    st = fsil_serial_open(&out->u.serial, path, baud, err);
    if (st == FSIL_OK) {
        out->link = &out->u.serial.stream.link;
    }
    return st;
}

#ifdef FSIL_WITH_ZMQ
static fsil_err_t open_zmq(fsil_url_link_t *out, const char *url, const char *rest, int ipc,
                              fsil_error_t *err)
{
    char endpoint[300];
    size_t len = strlen(rest);
    fsil_err_t st;
    if (strpbrk(rest, "?#") != NULL) {
        return bad_url(err, url, "no query or fragment allowed");
    }
    if (ipc) {
        if (len == 0) {
            return bad_url(err, url, "missing PATH");
        }
        if (len > FSIL_IPC_PATH_MAX_BYTES) {
            return bad_url(err, url, "PATH longer than 107 bytes");
        }
        memcpy(endpoint, "ipc://", 6);
        memcpy(endpoint + 6, rest, len + 1);
    } else {
        const char *colon = strrchr(rest, ':');
        uint32_t port;
        if (colon == NULL || colon == rest) {
            return bad_url(err, url, "missing HOST or PORT");
        }
        if (!parse_uint(colon + 1, strlen(colon + 1), 1, 65535, &port)) {
            return bad_url(err, url, "PORT must be an integer 1..65535");
        }
        if (len + 7 > sizeof endpoint) {
            return bad_url(err, url, "HOST too long");
        }
        memcpy(endpoint, "tcp://", 6);
        memcpy(endpoint + 6, rest, len + 1);
    }
    st = fsil_zmq_open(&out->u.zmq, endpoint, 0, err);
    if (st == FSIL_OK) {
        out->link = &out->u.zmq.link;
    }
    return st;
}
#endif

fsil_err_t fsil_open_url(fsil_url_link_t *out, const char *url, fsil_error_t *err)
{
    out->link = NULL;
    if (starts(url, "serial://")) {
        return open_serial(out, url, url + 9, err);
    }
    if (starts(url, "zmq+ipc://") || starts(url, "zmq+tcp://")) {
#ifdef FSIL_WITH_ZMQ
        return open_zmq(out, url, url + 10, url[4] == 'i', err);
#else
        return bad_url(err, url, "this program was built without ZeroMQ");
#endif
    }
    return bad_url(err, url, strstr(url, "://") != NULL ? "unknown scheme" : "missing scheme");
}
