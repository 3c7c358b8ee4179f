/* The link interface's dispatch and statistics (see fsil/link.h). */
#include "fsil/link.h"

fsil_err_t fsil_link_send(fsil_link_t *link, const uint8_t *payload, size_t len,
                             uint32_t timeout_ms)
{
    fsil_err_t st;
    if (!link->open) {
        return fsil_error_set(&link->error, FSIL_ERR_CLOSED, "link is closed");
    }
    if (len > FSIL_MAX_PAYLOAD_BYTES) {
        return fsil_error_set(&link->error, FSIL_ERR_TOO_LARGE, "payload above 4096 bytes");
    }
    st = link->ops->send(link, payload, len, timeout_ms);
    if (st == FSIL_OK) {
        link->bytes_sent += len;
        link->messages_sent++;
    }
    return st;
}

fsil_err_t fsil_link_recv(fsil_link_t *link, uint8_t *buf, size_t cap, size_t *len,
                             uint32_t timeout_ms)
{
    fsil_err_t st;
    *len = 0;
    if (!link->open) {
        return fsil_error_set(&link->error, FSIL_ERR_CLOSED, "link is closed");
    }
    st = link->ops->recv(link, buf, cap, len, timeout_ms);
    if (st == FSIL_OK) {
        link->bytes_received += *len;
        link->messages_received++;
    }
    return st;
}

void fsil_link_close(fsil_link_t *link)
{
    if (link->open) {
        link->open = 0;
        link->ops->close(link);
    }
}

uint32_t fsil_link_now_ms(fsil_link_t *link)
{
    return link->ops->now_ms(link);
}

const fsil_deframer_stats_t *fsil_link_framing_stats(fsil_link_t *link)
{
    return link->ops->framing_stats != NULL ? link->ops->framing_stats(link) : NULL;
}
