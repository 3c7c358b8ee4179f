/* A link over any byte stream: a UART or USB CDC on a board, a serial port on a PC.
 *
 * You give three callbacks; the link frames each payload (COBS + CRC-32 + 00, exactly as
 * the host's serial link) and deframes what arrives with the counting deframer. Like the
 * host, the first frame sent (and the first after a write that timed out part-way) is
 * preceded by one 00, so the receiver drops whatever partial frame it held.
 * Memory: about 8.5 KB per link, all inside fsil_stream_link_t (no heap).
 */
#ifndef FSIL_STREAM_LINK_H
#define FSIL_STREAM_LINK_H

#include "fsil/link.h"

typedef struct {
    /* Read up to cap bytes, waiting at most timeout_ms for the first one. Return how many
     * were read (0: none in time), or -1 if the port failed (unplugged, closed). */
    int32_t (*read)(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms);
    /* Write up to len bytes, waiting at most timeout_ms. Return how many were written
     * (fewer, even 0, if the port was not ready in time), or -1 if the port failed. */
    int32_t (*write)(void *ctx, const uint8_t *buf, size_t len, uint32_t timeout_ms);
    /* A monotonic clock in milliseconds (may wrap). */
    uint32_t (*now_ms)(void *ctx);
    /* Release the port; may be NULL. */
    void (*close)(void *ctx);
    void *ctx;
} fsil_stream_io_t;

#define FSIL_STREAM_READ_CHUNK 256

typedef struct {
    fsil_link_t link;               /* first: a fsil_stream_link_t * is a fsil_link_t * */
    fsil_stream_io_t io;
    fsil_deframer_t deframer;
    uint8_t rx[FSIL_STREAM_READ_CHUNK];
    size_t rx_pos, rx_len;          /* bytes read but not yet deframed */
    uint8_t tx[FSIL_MAX_FRAME_BYTES + 1];
    int flush_next;                 /* precede the next frame with a 00 */
    uint64_t bytes_out;             /* raw bytes written, framing included */
} fsil_stream_link_t;

/* Set up a link over io (copied). Never fails. */
void fsil_stream_link_init(fsil_stream_link_t *s, const fsil_stream_io_t *io);

#endif /* FSIL_STREAM_LINK_H */
