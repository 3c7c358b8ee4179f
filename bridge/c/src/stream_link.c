/* The byte-stream link: framing over read/write callbacks (see fsil/stream_link.h). */
#include "fsil/stream_link.h"

#include <string.h>

static uint32_t elapsed_ms(fsil_stream_link_t *s, uint32_t start)
{
    return (uint32_t)(s->io.now_ms(s->io.ctx) - start); /* wraps correctly */
}

static fsil_err_t stream_send(fsil_link_t *link, const uint8_t *payload, size_t len,
                                 uint32_t timeout_ms)
{
    fsil_stream_link_t *s = (fsil_stream_link_t *)link;
    size_t n = 0, done = 0, start_at = 0;
    uint32_t start = s->io.now_ms(s->io.ctx);
    fsil_err_t st;
    if (s->flush_next) {
        s->tx[0] = 0;
        start_at = 1;
    }
    st = fsil_frame_encode(payload, len, s->tx + start_at, sizeof s->tx - start_at, &n);
    if (st != FSIL_OK) {
        return fsil_error_set(&link->error, st, st == FSIL_ERR_TOO_LARGE
                              ? "payload above 4096 bytes" : "empty payload");
    }
    n += start_at;
    while (done < n) {
        uint32_t spent = elapsed_ms(s, start);
        int32_t wrote = s->io.write(s->io.ctx, s->tx + done, n - done,
                                    spent < timeout_ms ? timeout_ms - spent : 0);
        if (wrote < 0) {
            return fsil_error_set(&link->error, FSIL_ERR_CLOSED,
                                  "the port failed on write (unplugged, reset or closed)");
        }
        done += (size_t)wrote;
        s->bytes_out += (uint64_t)wrote;
        if (done < n && elapsed_ms(s, start) >= timeout_ms) {
            s->flush_next = done > 0; /* part of a frame is out: end it at the peer */
            fsil_error_set(&link->error, FSIL_ERR_TIMEOUT, "the port took no more bytes for ");
            fsil_error_add_u(&link->error, timeout_ms);
            fsil_error_add(&link->error, " ms");
            return FSIL_ERR_TIMEOUT;
        }
    }
    s->flush_next = 0;
    return FSIL_OK;
}

static fsil_err_t stream_recv(fsil_link_t *link, uint8_t *buf, size_t cap, size_t *len,
                                 uint32_t timeout_ms)
{
    fsil_stream_link_t *s = (fsil_stream_link_t *)link;
    uint32_t start = s->io.now_ms(s->io.ctx);
    int read_once = 0;
    for (;;) {
        while (s->rx_pos < s->rx_len) {
            const uint8_t *payload;
            size_t payload_len;
            s->rx_pos += fsil_deframer_push(&s->deframer, s->rx + s->rx_pos, s->rx_len - s->rx_pos,
                                            &payload, &payload_len);
            if (payload != NULL) {
                if (payload_len > cap) {
                    return fsil_error_set(&link->error, FSIL_ERR_ARG, "receive buffer too small");
                }
                memcpy(buf, payload, payload_len);
                *len = payload_len;
                return FSIL_OK;
            }
        }
        {
            uint32_t spent = elapsed_ms(s, start);
            int32_t got;
            if (spent >= timeout_ms && read_once) { /* bounded even if garbage keeps coming */
                fsil_error_set(&link->error, FSIL_ERR_TIMEOUT, "no message from the peer within ");
                fsil_error_add_u(&link->error, timeout_ms);
                fsil_error_add(&link->error, " ms");
                return FSIL_ERR_TIMEOUT;
            }
            got = s->io.read(s->io.ctx, s->rx, sizeof s->rx,
                             spent < timeout_ms ? timeout_ms - spent : 0);
            read_once = 1;
            if (got < 0) {
                return fsil_error_set(&link->error, FSIL_ERR_CLOSED,
                                      "the port failed on read (unplugged, reset or closed)");
            }
            s->rx_pos = 0;
            s->rx_len = (size_t)got;
        }
    }
}

static void stream_close(fsil_link_t *link)
{
    fsil_stream_link_t *s = (fsil_stream_link_t *)link;
    if (s->io.close != NULL) {
        s->io.close(s->io.ctx);
    }
}

static uint32_t stream_now_ms(fsil_link_t *link)
{
    fsil_stream_link_t *s = (fsil_stream_link_t *)link;
    return s->io.now_ms(s->io.ctx);
}

static const fsil_deframer_stats_t *stream_stats(fsil_link_t *link)
{
    return &((fsil_stream_link_t *)link)->deframer.stats;
}

static const fsil_link_ops_t stream_ops = {stream_send, stream_recv, stream_close, stream_now_ms,
                                           stream_stats};

void fsil_stream_link_init(fsil_stream_link_t *s, const fsil_stream_io_t *io)
{
    memset(&s->link, 0, sizeof s->link);
    s->link.ops = &stream_ops;
    s->link.open = 1;
    s->io = *io;
    fsil_deframer_init(&s->deframer);
    s->rx_pos = s->rx_len = 0;
    s->flush_next = 1;
    s->bytes_out = 0;
}
