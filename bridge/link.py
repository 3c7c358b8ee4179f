"""The link base class: bounded send and receive of whole payloads, and of messages.

A backend writes three private hooks and nothing else:

    _recv_internal(timeout_s) -> bytes | None   one payload, or None if none came in time
    _send_internal(payload, timeout_s) -> bool  True once sent, False if the peer was not ready
    _close_internal() -> None                   release the transport (called once)

The base owns the deadlines (it raises PeerTimeout), the statistics, the closed state and
the message layer (:meth:`Link.send_msg`, :meth:`Link.recv_msg`), which records the peer's
STATUS messages (:attr:`Link.peer_stats`) wherever they come.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bridge.codec import Message, decode, encode
from bridge.errors import LinkError, PeerTimeout, UnexpectedMessage
from bridge.protocol import END, NAMES, STATUS

DEFAULT_SEND_TIMEOUT_S = 10.0  # how long send() waits for the peer to take a payload


class Link:
    """One end of a point-to-point link carrying whole payloads (one message each).

    One end is used from one thread at a time; the two ends may live in different threads.
    ``lossy`` is True for a transport that can lose or damage a message (a serial line):
    the peers then exchange STATUS counters (docs/protocol.md).
    """

    lossy = False

    def __init__(self, url: str, send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S) -> None:
        self.url = url
        self.send_timeout_s = send_timeout_s
        self.stats = {"bytes_sent": 0, "bytes_received": 0, "messages_sent": 0,
                      "messages_received": 0}
        self.peer_stats: dict[str, int] | None = None  # the latest STATUS counters received
        self._closed = False

    # --- payloads

    def send(self, payload: bytes, timeout_s: float | None = None) -> None:
        """Send one payload; wait at most ``timeout_s`` (default ``send_timeout_s``) for the peer."""
        self._check_open()
        timeout_s = self.send_timeout_s if timeout_s is None else _check_timeout(timeout_s)
        deadline = time.monotonic() + timeout_s
        remaining_s = timeout_s
        while not self._send_internal(payload, remaining_s):
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise PeerTimeout(timeout_s, "the peer to accept a message", self.url)
        self.stats["bytes_sent"] += len(payload)
        self.stats["messages_sent"] += 1

    def recv(self, timeout_s: float) -> bytes:
        """Receive one payload, waiting at most ``timeout_s`` seconds (PeerTimeout after)."""
        self._check_open()
        _check_timeout(timeout_s)
        deadline = time.monotonic() + timeout_s
        remaining_s = timeout_s
        while True:
            payload = self._recv_internal(remaining_s)
            if payload is not None:
                break
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise PeerTimeout(timeout_s, "a message from the peer", self.url)
        self.stats["bytes_received"] += len(payload)
        self.stats["messages_received"] += 1
        return payload

    # --- messages

    def send_msg(self, type_id: int, fields: Mapping[str, Any] | Sequence[Any],
                 timeout_s: float | None = None) -> None:
        """Encode and send one message (see :func:`bridge.codec.encode`)."""
        self.send(encode(type_id, fields), timeout_s)

    def recv_msg(self, timeout_s: float,
                 expect: int | tuple[int, ...] | None = None) -> Message:
        """Receive and decode one message, waiting at most ``timeout_s`` in all.

        A STATUS is recorded in :attr:`peer_stats` (see :meth:`note_status`); unless STATUS
        is among ``expect``, it is then skipped and the wait goes on to its deadline.
        With ``expect`` (a type id or a tuple of them), any other type raises
        UnexpectedMessage -- except END, which is always returned so the caller sees it.
        """
        _check_timeout(timeout_s)
        expected = (expect,) if isinstance(expect, int) else expect
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                msg = decode(self.recv(max(0.0, deadline - time.monotonic())))
            except PeerTimeout:
                raise PeerTimeout(timeout_s, "a message from the peer", self.url) from None
            if msg.type_id == STATUS:
                self.note_status(msg)
                if expected is not None and STATUS not in expected:
                    continue
            if expected is None or msg.type_id == END:
                return msg
            if msg.type_id not in expected:
                names = " or ".join(NAMES.get(t, str(t)) for t in expected)
                raise UnexpectedMessage(msg.name, names)
            return msg

    def peer_gone(self) -> bool:
        """True when the transport knows that no peer is connected any more (checked by the
        plant's waits between slices; a backend that cannot tell says False)."""
        return False

    def note_status(self, msg: Message) -> None:
        """Record a decoded STATUS: :attr:`peer_stats` becomes its counters (a copy)."""
        self.peer_stats = dict(msg.stats)

    # --- life cycle

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close this end; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._close_internal()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.url} {state}>"

    def _check_open(self) -> None:
        if self._closed:
            raise LinkError(f"{self.url}: link is closed")

    # --- backend hooks

    def _recv_internal(self, timeout_s: float) -> bytes | None:
        """Return one payload, or None if none arrived within ``timeout_s`` (may be 0)."""
        raise NotImplementedError

    def _send_internal(self, payload: bytes, timeout_s: float) -> bool:
        """Send one payload; return False if the peer could not take it within ``timeout_s``."""
        raise NotImplementedError

    def _close_internal(self) -> None:
        """Release the transport."""
        raise NotImplementedError


def _check_timeout(timeout_s: float) -> float:
    if not (timeout_s >= 0 and math.isfinite(timeout_s)):
        raise ValueError(f"timeout_s must be a finite number >= 0, got {timeout_s!r}")
    return timeout_s
