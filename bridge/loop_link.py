"""In-process loopback backend: ``loop://NAME``.

The first end opened with role "plant" and the first with role "fsw" under the same NAME
are paired, in either order. Each direction is a bounded, thread-safe FIFO, so the two
ends work from different threads of one process. Closing either end closes the pair: the
other end still receives what was already sent, then gets PeerClosed. Once closed, the
NAME is free for a new pair.
"""

from __future__ import annotations

import re
import threading
from collections import deque

from bridge.errors import LinkError, PeerClosed
from bridge.link import DEFAULT_SEND_TIMEOUT_S, Link

PIPE_DEPTH_MESSAGES = 1024  # a send waits once this many payloads are queued one way
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


class _PipeClosed(Exception):
    """The pair was closed by either end."""


class _Pipe:
    """One direction: a bounded FIFO of payloads that can be closed."""

    def __init__(self, depth: int) -> None:
        self._items: deque[bytes] = deque()
        self._depth = depth
        self._cond = threading.Condition()
        self._closed = False

    def put(self, payload: bytes, timeout_s: float) -> bool:
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or len(self._items) < self._depth,
                                       timeout_s):
                return False
            if self._closed:
                raise _PipeClosed
            self._items.append(payload)
            self._cond.notify_all()
            return True

    def get(self, timeout_s: float) -> bytes | None:
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._items, timeout_s)
            if self._items:
                payload = self._items.popleft()
                self._cond.notify_all()
                return payload
            if self._closed:
                raise _PipeClosed
            return None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _Pair:
    """Two pipes and the ends currently attached, by role."""

    def __init__(self) -> None:
        self.to_role = {"plant": _Pipe(PIPE_DEPTH_MESSAGES), "fsw": _Pipe(PIPE_DEPTH_MESSAGES)}
        self.ends: dict[str, LoopLink | None] = {"plant": None, "fsw": None}


_LOCK = threading.Lock()
_PAIRS: dict[str, _Pair] = {}  # NAME -> the pair being formed or in use


def open_names() -> list[str]:
    """Names with at least one open end (tests use it to check nothing was left open)."""
    with _LOCK:
        return sorted(_PAIRS)


class LoopLink(Link):
    """One end of an in-process pair."""

    @staticmethod
    def parse_url(scheme: str, rest: str, role: str) -> dict:
        """``loop://NAME``: NAME of letters, digits, '_', '.', '-'."""
        if not _NAME.fullmatch(rest):
            raise ValueError("NAME must be letters, digits, '_', '.' or '-'" if rest
                             else "missing NAME")
        return {"name": rest}

    def __init__(self, url: str, role: str, name: str,
                 send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S) -> None:
        super().__init__(url, send_timeout_s)
        peer_role = "fsw" if role == "plant" else "plant"
        with _LOCK:
            pair = _PAIRS.setdefault(name, _Pair())
            if pair.ends[role] is not None:
                self._closed = True
                raise LinkError(f'{url}: the "{role}" end is already open')
            pair.ends[role] = self
        self._name = name
        self._pair = pair
        self._inbox = pair.to_role[role]
        self._outbox = pair.to_role[peer_role]

    def _recv_internal(self, timeout_s: float) -> bytes | None:
        try:
            return self._inbox.get(timeout_s)
        except _PipeClosed:
            raise PeerClosed(self.url) from None

    def _send_internal(self, payload: bytes, timeout_s: float) -> bool:
        try:
            return self._outbox.put(bytes(payload), timeout_s)
        except _PipeClosed:
            raise PeerClosed(self.url) from None

    def _close_internal(self) -> None:
        with _LOCK:
            if _PAIRS.get(self._name) is self._pair:
                del _PAIRS[self._name]
        self._inbox.close()
        self._outbox.close()
