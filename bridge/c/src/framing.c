/* COBS + CRC-32 framing and the counting deframer (see fsil/framing.h). COBS after Cheshire
 * and Baker, "Consistent Overhead Byte Stuffing" (IEEE/ACM ToN, 1999); CRC-32 as in ISO-HDLC. */
#include "fsil/framing.h"

#include <string.h>

uint32_t fsil_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    /* bitwise, 4 bits at a time: a 16-entry table is small enough for any board */
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
        0x4db26158u, 0x5005713cu, 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
        0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};
    size_t k;
    crc = ~crc;
    for (k = 0; k < len; k++) {
        crc ^= data[k];
        crc = (crc >> 4) ^ nibble[crc & 0x0fu];
        crc = (crc >> 4) ^ nibble[crc & 0x0fu];
    }
    return ~crc;
}

size_t fsil_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst)
{
    size_t out = 1;  /* next free byte */
    size_t code_at = 0;
    uint8_t code = 1;
    size_t k;
    for (k = 0; k < len; k++) {
        if (src[k] == 0) {
            dst[code_at] = code;
            code_at = out++;
            code = 1;
            continue;
        }
        dst[out++] = src[k];
        code++;
        if (code == 0xff) {
            dst[code_at] = code;
            code_at = out++;
            code = 1;
            if (k + 1 == len) { /* no code byte after a final ff block */
                return out - 1;
            }
        }
    }
    dst[code_at] = code;
    return out;
}

bool fsil_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t *out_len)
{
    size_t in = 0, out = 0;
    while (in < len) {
        uint8_t code = src[in++];
        size_t k;
        if (code == 0 || (size_t)(code - 1u) > len - in) {
            return false;
        }
        for (k = 1; k < code; k++) {
            uint8_t byte = src[in++];
            if (byte == 0) {
                return false;
            }
            dst[out++] = byte;
        }
        if (in < len && code < 0xff) {
            dst[out++] = 0;
        }
    }
    *out_len = out;
    return true;
}

fsil_err_t fsil_frame_encode(const uint8_t *payload, size_t len, uint8_t *dst, size_t cap,
                                size_t *out_len)
{
    uint8_t body[FSIL_MAX_BODY_BYTES];
    uint32_t crc;
    size_t n;
    *out_len = 0;
    if (len > FSIL_MAX_PAYLOAD_BYTES) {
        return FSIL_ERR_TOO_LARGE;
    }
    if (len == 0 || cap < len + FSIL_CRC_BYTES + (len + FSIL_CRC_BYTES) / 254u + 2u) {
        return FSIL_ERR_ARG;
    }
    memcpy(body, payload, len);
    crc = fsil_crc32(0, payload, len);
    body[len] = (uint8_t)crc;
    body[len + 1] = (uint8_t)(crc >> 8);
    body[len + 2] = (uint8_t)(crc >> 16);
    body[len + 3] = (uint8_t)(crc >> 24);
    n = fsil_cobs_encode(body, len + FSIL_CRC_BYTES, dst);
    dst[n++] = 0;
    *out_len = n;
    return FSIL_OK;
}

void fsil_deframer_init(fsil_deframer_t *d)
{
    memset(&d->stats, 0, sizeof d->stats);
    d->held = 0;
    d->skipping = false;
}

/* A delimiter came: judge the candidate in hand; true if it is a good payload. */
static bool end_candidate(fsil_deframer_t *d, size_t *payload_len)
{
    size_t body_len = 0;
    size_t held = d->held;
    uint64_t *counter = &d->stats.frames_ok;
    if (d->skipping) {
        d->skipping = false;
        return false;
    }
    if (held == 0) {
        return false; /* two delimiters in a row: a flush, not an error */
    }
    d->held = 0;
    if (!fsil_cobs_decode(d->buf, held, d->buf, &body_len)) {
        counter = &d->stats.cobs_errors;
    } else if (body_len <= FSIL_CRC_BYTES) {
        counter = &d->stats.runts;
    } else if (body_len > FSIL_MAX_BODY_BYTES) {
        counter = &d->stats.oversize;
    } else {
        const uint8_t *c = d->buf + body_len - FSIL_CRC_BYTES;
        uint32_t want = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 |
                        (uint32_t)c[3] << 24;
        if (fsil_crc32(0, d->buf, body_len - FSIL_CRC_BYTES) != want) {
            counter = &d->stats.crc_errors;
        }
    }
    (*counter)++;
    if (counter != &d->stats.frames_ok) {
        d->stats.bytes_discarded += held;
        return false;
    }
    *payload_len = body_len - FSIL_CRC_BYTES;
    return true;
}

size_t fsil_deframer_push(fsil_deframer_t *d, const uint8_t *data, size_t len,
                          const uint8_t **payload, size_t *payload_len)
{
    size_t k = 0;
    *payload = NULL;
    *payload_len = 0;
    while (k < len) {
        const uint8_t *zero = memchr(data + k, 0, len - k);
        size_t run = zero != NULL ? (size_t)(zero - (data + k)) : len - k;
        /* hold data[k, k + run): no delimiter in it */
        if (d->skipping) {
            d->stats.bytes_discarded += run;
        } else if (run <= FSIL_MAX_FRAME_BYTES - d->held) {
            memcpy(d->buf + d->held, data + k, run);
            d->held += run;
        } else {
            d->stats.oversize++;
            d->stats.bytes_discarded += d->held + run;
            d->held = 0;
            d->skipping = true;
        }
        d->stats.bytes_in += run;
        k += run;
        if (zero == NULL) {
            break;
        }
        d->stats.bytes_in++; /* the delimiter */
        k++;
        if (end_candidate(d, payload_len)) {
            *payload = d->buf;
            return k;
        }
    }
    return k;
}
