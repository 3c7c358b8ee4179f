/* A link carries whole payloads (one message each) with bounded waits.
 *
 * Every transport embeds fsil_link_t as its first member and fills its ops; callers use
 * fsil_link_send / fsil_link_recv / fsil_link_close only. Timeouts are in milliseconds;
 * 0 takes only what has already arrived. Transports:
 *   fsil_stream_link_t  a byte stream (UART, USB CDC, POSIX serial) through read/write
 *                       callbacks, framed with COBS + CRC-32 (fsil/stream_link.h)
 *   fsil_zmq_link_t     a ZeroMQ PAIR socket (host programs, libzmq; fsil/zmq_link.h)
 */
#ifndef FSIL_LINK_H
#define FSIL_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "fsil/framing.h"
#include "fsil/err.h"

typedef struct fsil_link fsil_link_t;

typedef struct {
    fsil_err_t (*send)(fsil_link_t *link, const uint8_t *payload, size_t len,
                          uint32_t timeout_ms);
    fsil_err_t (*recv)(fsil_link_t *link, uint8_t *buf, size_t cap, size_t *len,
                          uint32_t timeout_ms);
    void (*close)(fsil_link_t *link);
    /* a monotonic clock in ms (wraps at 2^32): every wait is measured on it */
    uint32_t (*now_ms)(fsil_link_t *link);
    /* the framing counters of a byte-stream link, or NULL for a link without framing */
    const fsil_deframer_stats_t *(*framing_stats)(fsil_link_t *link);
} fsil_link_ops_t;

struct fsil_link {
    const fsil_link_ops_t *ops;
    fsil_error_t error;         /* why the last failed call failed */
    uint64_t bytes_sent;        /* payload bytes */
    uint64_t bytes_received;
    uint64_t messages_sent;
    uint64_t messages_received;
    int open;
};

/* Send one payload, waiting at most timeout_ms for the peer to take it. */
fsil_err_t fsil_link_send(fsil_link_t *link, const uint8_t *payload, size_t len,
                             uint32_t timeout_ms);
/* Receive one payload into buf, waiting at most timeout_ms (FSIL_ERR_TIMEOUT after). */
fsil_err_t fsil_link_recv(fsil_link_t *link, uint8_t *buf, size_t cap, size_t *len,
                             uint32_t timeout_ms);
/* Close; safe to call more than once. */
void fsil_link_close(fsil_link_t *link);
uint32_t fsil_link_now_ms(fsil_link_t *link);
/* Framing counters of a byte-stream link, NULL for ZeroMQ. */
const fsil_deframer_stats_t *fsil_link_framing_stats(fsil_link_t *link);

#endif /* FSIL_LINK_H */
