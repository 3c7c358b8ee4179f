/* The ZeroMQ PAIR link (see fsil/zmq_link.h). */
#define _POSIX_C_SOURCE 200809L

#include "fsil/zmq_link.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static int poll_ms(uint32_t timeout_ms)
{
    return timeout_ms > 0x7fffffffu ? 0x7fffffff : (int)timeout_ms;
}

/* Wait for events on the socket: 1 ready, 0 not in time (or a signal), -1 failed. */
static int wait_socket(fsil_zmq_link_t *z, short events, uint32_t timeout_ms)
{
    zmq_pollitem_t item;
    int n;
    item.socket = z->socket;
    item.fd = 0;
    item.events = events;
    item.revents = 0;
    n = zmq_poll(&item, 1, poll_ms(timeout_ms));
    if (n < 0) {
        return zmq_errno() == EINTR ? 0 : -1;
    }
    return n > 0 ? 1 : 0;
}

static fsil_err_t zmq_failed(fsil_link_t *link, const char *what)
{
    fsil_error_set(&link->error, FSIL_ERR_IO, what);
    fsil_error_add(&link->error, ": ");
    fsil_error_add(&link->error, zmq_strerror(zmq_errno()));
    return FSIL_ERR_IO;
}

static fsil_err_t z_send(fsil_link_t *link, const uint8_t *payload, size_t len,
                            uint32_t timeout_ms)
{
    fsil_zmq_link_t *z = (fsil_zmq_link_t *)link;
    int n = wait_socket(z, ZMQ_POLLOUT, timeout_ms);
    if (n < 0) {
        return zmq_failed(link, "send failed");
    }
    if (n <= 0 || zmq_send(z->socket, payload, len, ZMQ_DONTWAIT) < 0) {
        if (n > 0 && zmq_errno() != EAGAIN) {
            return zmq_failed(link, "send failed");
        }
        fsil_error_set(&link->error, FSIL_ERR_TIMEOUT, "the peer took no message within ");
        fsil_error_add_u(&link->error, timeout_ms);
        fsil_error_add(&link->error, " ms");
        return FSIL_ERR_TIMEOUT;
    }
    return FSIL_OK;
}

static fsil_err_t z_recv(fsil_link_t *link, uint8_t *buf, size_t cap, size_t *len,
                            uint32_t timeout_ms)
{
    fsil_zmq_link_t *z = (fsil_zmq_link_t *)link;
    int n = wait_socket(z, ZMQ_POLLIN, timeout_ms);
    if (n < 0) {
        return zmq_failed(link, "receive failed");
    }
    if (n > 0) {
        int got = zmq_recv(z->socket, buf, cap, ZMQ_DONTWAIT);
        if (got >= 0) {
            if ((size_t)got > cap) {
                return fsil_error_set(&link->error, FSIL_ERR_TOO_LARGE,
                                      "message larger than the receive buffer");
            }
            *len = (size_t)got;
            return FSIL_OK;
        }
        if (zmq_errno() != EAGAIN) {
            return zmq_failed(link, "receive failed");
        }
    }
    fsil_error_set(&link->error, FSIL_ERR_TIMEOUT, "no message from the peer within ");
    fsil_error_add_u(&link->error, timeout_ms);
    fsil_error_add(&link->error, " ms");
    return FSIL_ERR_TIMEOUT;
}

static void z_close(fsil_link_t *link)
{
    fsil_zmq_link_t *z = (fsil_zmq_link_t *)link;
    if (z->socket != NULL) {
        zmq_close(z->socket);
        z->socket = NULL;
    }
    if (z->context != NULL) {
        zmq_ctx_term(z->context);
        z->context = NULL;
    }
}

static uint32_t z_now_ms(fsil_link_t *link)
{
    struct timespec ts;
    (void)link;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static const fsil_link_ops_t zmq_ops = {z_send, z_recv, z_close, z_now_ms, NULL};

fsil_err_t fsil_zmq_open(fsil_zmq_link_t *z, const char *endpoint, int bind,
                            fsil_error_t *err)
{
    int linger = 0;
    int64_t max_size = FSIL_MAX_PAYLOAD_BYTES;
    memset(&z->link, 0, sizeof z->link);
    z->link.ops = &zmq_ops;
    z->context = zmq_ctx_new();
    z->socket = z->context != NULL ? zmq_socket(z->context, ZMQ_PAIR) : NULL;
    if (z->socket == NULL ||
        zmq_setsockopt(z->socket, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(z->socket, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size) != 0 ||
        (bind ? zmq_bind(z->socket, endpoint) : zmq_connect(z->socket, endpoint)) != 0) {
        fsil_error_set(err, FSIL_ERR_IO, bind ? "cannot bind " : "cannot connect to ");
        fsil_error_add(err, endpoint);
        fsil_error_add(err, ": ");
        fsil_error_add(err, zmq_strerror(zmq_errno()));
        z_close(&z->link);
        return FSIL_ERR_IO;
    }
    z->link.open = 1;
    return FSIL_OK;
}
