/* The ZeroMQ link (host programs, libzmq): one PAIR socket, as bridge/zmq_link.py.
 * The plant binds, the flight software connects. Own context per link, LINGER 0, every
 * wait a bounded zmq_poll, messages above FSIL_MAX_PAYLOAD_BYTES refused by the socket. */
#ifndef FSIL_ZMQ_LINK_H
#define FSIL_ZMQ_LINK_H

#include "fsil/link.h"

typedef struct {
    fsil_link_t link; /* first: usable as a fsil_link_t * */
    void *context;
    void *socket;
} fsil_zmq_link_t;

/* endpoint: a ZeroMQ endpoint, "ipc:///tmp/x.sock" or "tcp://127.0.0.1:5555". */
fsil_err_t fsil_zmq_open(fsil_zmq_link_t *z, const char *endpoint, int bind,
                            fsil_error_t *err);

#endif /* FSIL_ZMQ_LINK_H */
