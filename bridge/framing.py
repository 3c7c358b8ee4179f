"""Framing of payloads on a byte stream (serial, USB CDC): COBS, CRC-32, 0x00 delimiter.

One frame on the wire::

    COBS( payload + CRC-32(payload) as 4 bytes little-endian ) + b"\\x00"

``payload`` is one protocol message (1 to ``MAX_PAYLOAD_BYTES`` bytes); the CRC is
CRC-32/IEEE (``zlib.crc32``, the check value of ``b"123456789"`` is 0xCBF43926). COBS
(Consistent Overhead Byte Stuffing, the ``cobs`` package) removes every 0x00 from the
encoded bytes, so 0x00 only ever ends a frame and a receiver resynchronises at the next
0x00 whatever came before.

:class:`FrameDecoder` takes bytes as they arrive and returns the good payloads. It knows
nothing of ports or threads, never raises on any input, runs in time linear in its input
and never buffers more than :data:`MAX_FRAME_BYTES`. Every rejected candidate is counted
by kind in :attr:`FrameDecoder.stats`.

The board firmware implements the same framing; ``tests/vectors/wire_vectors.json``
holds the shared test vectors both sides are checked against.
"""

from __future__ import annotations

import zlib

from cobs import cobs

from bridge.errors import MalformedMessage, PayloadTooLarge
from bridge.protocol import MAX_PAYLOAD_BYTES

DELIMITER = b"\x00"
CRC_BYTES = 4
# Longest COBS input: a payload at the cap plus its CRC.
MAX_BODY_BYTES = MAX_PAYLOAD_BYTES + CRC_BYTES                                    # 4100
# Longest frame on the wire: COBS adds one code byte per started 254-byte block, and the
# delimiter one more. A receiver holding more bytes than this without a delimiter has an
# oversize candidate in hand, whatever comes next.
MAX_FRAME_BYTES = MAX_BODY_BYTES + -(-MAX_BODY_BYTES // 254) + 1                  # 4118

COUNTERS = ("bytes_in", "bytes_discarded", "frames_ok", "cobs_errors", "runts", "oversize",
            "crc_errors")


def crc32(data: bytes) -> int:
    """CRC-32/IEEE of ``data`` (the one in zlib, Ethernet and PNG), as an unsigned int."""
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_frame(payload: bytes) -> bytes:
    """One frame, delimiter included: ``COBS(payload + crc32 LE) + b"\\x00"``.

    Raises PayloadTooLarge above ``MAX_PAYLOAD_BYTES`` and MalformedMessage for an empty
    payload (it could not be told from a runt).
    """
    size = len(payload)
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(size, MAX_PAYLOAD_BYTES)
    if size == 0:
        raise MalformedMessage("empty payload: a frame carries at least one byte")
    body = bytes(payload) + crc32(payload).to_bytes(CRC_BYTES, "little")
    return cobs.encode(body) + DELIMITER


class FrameDecoder:
    """Bytes in, good payloads out; every bad candidate is counted, none raises.

    The stream is split at each 0x00. Each candidate between two delimiters is:

    * empty (two delimiters in a row, e.g. a sender's flush byte): ignored, not counted;
    * not valid COBS: ``cobs_errors``;
    * shorter than 5 bytes once decoded (no room for a payload and its CRC): ``runts``;
    * longer than ``MAX_PAYLOAD_BYTES + 4`` once decoded: ``oversize``;
    * a CRC that does not match: ``crc_errors``;
    * otherwise a good payload: ``frames_ok``.

    When more than :data:`MAX_FRAME_BYTES` bytes arrive without a delimiter, the buffer is
    dropped and counted once as ``oversize``, and everything up to the next delimiter is
    dropped too. ``bytes_in`` counts every byte fed; ``bytes_discarded`` the bytes of
    rejected candidates (delimiters not counted).
    """

    def __init__(self) -> None:
        self.stats: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._buffer = bytearray()
        self._skipping = False  # dropping an oversize candidate until the next delimiter

    @property
    def pending_bytes(self) -> int:
        """Bytes held for a frame whose delimiter has not come yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next bytes of the stream; return the good payloads they complete."""
        data = bytes(data)
        self.stats["bytes_in"] += len(data)
        payloads: list[bytes] = []
        start = 0
        while True:
            end = data.find(0, start)
            if end < 0:
                self._hold(data, start, len(data))
                return payloads
            self._hold(data, start, end)
            self._end_candidate(payloads)
            start = end + 1

    def _hold(self, data: bytes, start: int, end: int) -> None:
        """Buffer data[start:end] (no delimiter in it), or drop it when over the cap."""
        if start == end:
            return
        if self._skipping:
            self.stats["bytes_discarded"] += end - start
            return
        if len(self._buffer) + (end - start) <= MAX_FRAME_BYTES:
            self._buffer += data[start:end]
            return
        self.stats["oversize"] += 1
        self.stats["bytes_discarded"] += len(self._buffer) + (end - start)
        self._buffer.clear()
        self._skipping = True

    def _end_candidate(self, payloads: list[bytes]) -> None:
        """A delimiter came: judge the buffered candidate."""
        if self._skipping:
            self._skipping = False
            return
        if not self._buffer:
            return
        candidate = bytes(self._buffer)
        self._buffer.clear()
        kind = "frames_ok"
        try:
            body = cobs.decode(candidate)
        except cobs.DecodeError:
            kind = "cobs_errors"
        else:
            if len(body) <= CRC_BYTES:
                kind = "runts"
            elif len(body) > MAX_BODY_BYTES:
                kind = "oversize"
            elif crc32(body[:-CRC_BYTES]) != int.from_bytes(body[-CRC_BYTES:], "little"):
                kind = "crc_errors"
        self.stats[kind] += 1
        if kind == "frames_ok":
            payloads.append(body[:-CRC_BYTES])
        else:
            self.stats["bytes_discarded"] += len(candidate)
