/* Framing of payloads on a byte stream: COBS(payload + CRC-32 LE) + 00, as bridge/framing.py.
 *
 * The deframer takes bytes as they arrive and hands out good payloads one at a time. It
 * knows nothing of ports, never fails on any input, works in time linear in its input,
 * holds at most FSIL_MAX_FRAME_BYTES, and counts every rejected candidate by kind with the
 * same rules and counters as the host's FrameDecoder (docs/protocol.md).
 */
#ifndef FSIL_FRAMING_H
#define FSIL_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsil/protocol.h"
#include "fsil/err.h"

/* CRC-32/IEEE (zlib's): reflected 0xEDB88320, init and final XOR 0xFFFFFFFF. Pass 0 as crc
 * to start; feed the result back to continue over more data. */
uint32_t fsil_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* COBS-encode src into dst (basic method: a 254-byte run is code ff, no code byte after a
 * final ff block); returns the encoded length (at most len + len / 254 + 1). */
size_t fsil_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst);
/* COBS-decode src into dst (dst may equal src: decoding in place is safe). Returns false
 * for invalid COBS (a code byte pointing past the end, or a 00 inside). */
bool fsil_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t *out_len);

/* One frame, delimiter included, into dst (FSIL_MAX_FRAME_BYTES suffice). FSIL_ERR_ARG for
 * an empty payload or too small a dst, FSIL_ERR_TOO_LARGE above FSIL_MAX_PAYLOAD_BYTES. */
fsil_err_t fsil_frame_encode(const uint8_t *payload, size_t len, uint8_t *dst, size_t cap,
                                size_t *out_len);

/* The host's counters, same names (bridge.framing.COUNTERS). */
typedef struct {
    uint64_t bytes_in;
    uint64_t bytes_discarded;
    uint64_t frames_ok;
    uint64_t cobs_errors;
    uint64_t runts;
    uint64_t oversize;
    uint64_t crc_errors;
} fsil_deframer_stats_t;

typedef struct {
    fsil_deframer_stats_t stats;
    size_t held;   /* bytes of the candidate in hand */
    bool skipping; /* dropping an oversize candidate until the next delimiter */
    uint8_t buf[FSIL_MAX_FRAME_BYTES];
} fsil_deframer_t;

void fsil_deframer_init(fsil_deframer_t *d);
/* Take bytes of the stream, stopping after the first good payload they complete.
 * Returns how many bytes were taken (call again with the rest); *payload is set to the
 * payload (valid until the next call) and *payload_len to its length, or *payload to NULL
 * if the bytes taken completed none. */
size_t fsil_deframer_push(fsil_deframer_t *d, const uint8_t *data, size_t len,
                          const uint8_t **payload, size_t *payload_len);

#endif /* FSIL_FRAMING_H */
