/* Open the flight software's end of a link from the URL fsil hands it (host programs):
 *   zmq+ipc://PATH          ZeroMQ PAIR over a Unix socket file (needs FSIL_WITH_ZMQ)
 *   zmq+tcp://HOST:PORT     ZeroMQ PAIR over TCP (needs FSIL_WITH_ZMQ)
 *   serial://PATH[?baud=N]  a serial port, framed (default 921600 baud)
 */
#ifndef FSIL_URL_H
#define FSIL_URL_H

#include "fsil/serial_posix.h"
#ifdef FSIL_WITH_ZMQ
#include "fsil/zmq_link.h"
#endif

#define FSIL_URL_GRAMMAR "zmq+ipc://PATH, zmq+tcp://HOST:PORT or serial://PATH[?baud=N]"
#define FSIL_IPC_PATH_MAX_BYTES 107 /* sun_path on Linux, less its NUL */

typedef struct {
    fsil_link_t *link; /* the opened link: pass it to fsil_client_init */
    union {
        fsil_serial_link_t serial;
#ifdef FSIL_WITH_ZMQ
        fsil_zmq_link_t zmq;
#endif
    } u;
} fsil_url_link_t;

/* Connect to the plant at url (the flight software's role). On failure err says why, a
 * malformed URL with FSIL_ERR_URL and the grammar. */
fsil_err_t fsil_open_url(fsil_url_link_t *out, const char *url, fsil_error_t *err);

#endif /* FSIL_URL_H */
