"""Unix-socket backend: ``unix://PATH``, one ``SOCK_SEQPACKET`` connection, no ZeroMQ.

The plant binds and listens on PATH; the flight software connects. A seqpacket socket keeps
message boundaries and order, so one payload is one ``send``/``recv`` with no framing, and
no I/O thread sits between the process and the kernel: a round trip is two thread wake-ups
instead of ZeroMQ's six (``fsil bench lockstep``: ``unix-seqpacket`` against
``ipc-blocking``). Local only (Linux; where the platform has no ``SOCK_SEQPACKET`` the
scheme says so when opened).

Safe by default, as ``zmq+ipc://``:

* the socket file is created 0600 (owner only, whatever the umask) in a folder that must
  exist; a stale socket file is replaced, a path another process listens on or a path that
  is not a socket is refused;
* the plant accepts one connection, then stops listening (a second process cannot get in
  later); it removes the socket file it created when it closes;
* a message larger than ``MAX_PAYLOAD_BYTES`` is refused by both ends (the receiver reads
  at most that much plus one byte: a longer one is cut by the kernel, seen, and reported
  as a LinkError; the sender refuses before sending), so no peer can fill memory;
* every wait is a bounded ``poll``.

A vanished peer: the flight software's end raises PeerClosed when the connection ends with
nothing left to read; the plant's end reports it through :meth:`UnixLink.peer_gone` (its
waits ask between slices), like the ZeroMQ backend.
"""

from __future__ import annotations

import errno
import math
import os
import select
import socket
import stat
import time

from bridge.errors import LinkError, LinkOpenError, PeerClosed
from bridge.link import DEFAULT_SEND_TIMEOUT_S, Link
from bridge.protocol import MAX_PAYLOAD_BYTES
from bridge.zmq_link import IPC_PATH_MAX_BYTES

CONNECT_RETRY_S = 0.02     # the fsw end: how often it tries again while no plant listens
_HUP = select.POLLHUP | select.POLLERR


class UnixLink(Link):
    """One end of a ``unix://`` link."""

    @staticmethod
    def parse_url(scheme: str, rest: str, role: str) -> dict:
        if "?" in rest or "#" in rest:
            raise ValueError("no query or fragment allowed")
        if not rest:
            raise ValueError("missing PATH")
        if len(os.fsencode(rest)) > IPC_PATH_MAX_BYTES:
            raise ValueError(f"PATH longer than {IPC_PATH_MAX_BYTES} bytes")
        return {"path": rest}

    def __init__(self, url: str, role: str, path: str,
                 send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S) -> None:
        super().__init__(url, send_timeout_s)
        self.path = path
        self.role = role
        self._listener: socket.socket | None = None
        self._sock: socket.socket | None = None
        self._poll: select.poll | None = None
        self._eof = False
        self._created = 0           # the inode of the socket file this end made
        self._buf = bytearray(MAX_PAYLOAD_BYTES + 1)
        self._view = memoryview(self._buf)
        if not hasattr(socket, "SOCK_SEQPACKET") or not hasattr(socket, "AF_UNIX"):
            self.close()
            raise LinkOpenError(f"{url}: this platform has no Unix SOCK_SEQPACKET sockets")
        try:
            if role == "plant":
                self._bind()
            else:
                self._try_connect()
        except LinkError:
            self.close()
            raise

    # --- opening
    def _bind(self) -> None:
        parent = os.path.dirname(self.path)
        if parent and not os.path.isdir(parent):   # never create folders for an address
            raise LinkOpenError(f"{self.url}: cannot bind: folder {parent} does not exist")
        try:
            _check_free(self.path)
            if os.path.lexists(self.path):
                os.unlink(self.path)               # a stale socket file (nobody uses it)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            old = os.umask(0o177)                   # born 0600: no window for another user
            try:
                listener.bind(self.path)
            finally:
                os.umask(old)
            self._created = os.stat(self.path).st_ino
            os.chmod(self.path, 0o600)
            listener.listen(1)
            listener.setblocking(False)
        except OSError as error:
            raise LinkOpenError(f"{self.url}: cannot bind: {error.strerror or error}") \
                from error
        self._listener = listener

    def _try_connect(self) -> bool:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(self.path)
        except OSError as error:
            sock.close()
            if error.errno in (errno.ENOENT, errno.ECONNREFUSED):
                return False                        # no plant listening yet: later
            raise LinkOpenError(f"{self.url}: cannot connect: {error.strerror or error}") \
                from error
        self._use(sock)
        return True

    def _use(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def _ready(self, timeout_s: float) -> bool:
        """A connection within ``timeout_s`` (the plant accepts, the fsw connects)."""
        if self._sock is not None:
            return True
        deadline = time.monotonic() + timeout_s
        while True:
            if self._listener is not None:
                if select.select([self._listener], [], [], max(0.0, timeout_s))[0]:
                    try:
                        sock, _ = self._listener.accept()
                    except BlockingIOError:
                        sock = None
                    if sock is not None:
                        self._listener.close()      # one peer: nobody else gets in
                        self._listener = None
                        self._use(sock)
                        return True
            elif self._try_connect():
                return True
            else:
                time.sleep(max(0.0, min(CONNECT_RETRY_S, deadline - time.monotonic())))
            timeout_s = deadline - time.monotonic()
            if timeout_s <= 0:
                return False

    # --- the hooks
    def _recv_internal(self, timeout_s: float) -> bytes | None:
        start = time.monotonic()
        if not self._ready(timeout_s):
            return None
        if self._eof:
            return self._closed_peer(timeout_s)
        remaining = timeout_s - (time.monotonic() - start)
        try:
            n = self._sock.recv_into(self._buf)
        except BlockingIOError:
            try:
                events = self._poll.poll(_ms(remaining))
            except InterruptedError:
                return None
            if not events:
                return None
            try:
                n = self._sock.recv_into(self._buf)
            except BlockingIOError:
                return None
            except OSError as error:
                raise LinkError(f"{self.url}: receive failed: {error.strerror}") from error
        except OSError as error:
            raise LinkError(f"{self.url}: receive failed: {error.strerror}") from error
        if n == 0:                  # the peer closed its end (fsil never sends empty)
            self._eof = True
            return self._closed_peer(remaining)
        if n > MAX_PAYLOAD_BYTES:
            raise LinkError(f"{self.url}: the peer sent a message larger than "
                            f"{MAX_PAYLOAD_BYTES} bytes")
        return bytes(self._view[:n])

    def _closed_peer(self, timeout_s: float) -> None:
        if self.role == "fsw":
            raise PeerClosed(self.url, "the connection dropped: the plant ended or was killed")
        # The plant's end: nothing comes any more; its waits see it through peer_gone().
        time.sleep(max(0.0, min(timeout_s, 0.01)))
        return None

    def _send_internal(self, payload: bytes, timeout_s: float) -> bool:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise LinkError(f"{self.url}: message of {len(payload)} bytes, larger than "
                            f"{MAX_PAYLOAD_BYTES}")
        start = time.monotonic()
        if not self._ready(timeout_s):
            return False
        try:
            self._sock.send(payload)
            return True
        except BlockingIOError:
            pass
        except BrokenPipeError as error:
            if self.role == "fsw":
                raise PeerClosed(self.url, "the connection dropped: the plant ended or was "
                                 "killed") from error
            self._eof = True       # peer_gone() says so; the caller's slice ends
            time.sleep(max(0.0, min(timeout_s, 0.01)))
            return False
        except OSError as error:
            raise LinkError(f"{self.url}: send failed: {error.strerror}") from error
        remaining = timeout_s - (time.monotonic() - start)
        if not select.select([], [self._sock], [], max(0.0, remaining))[1]:
            return False
        try:
            self._sock.send(payload)
            return True
        except BlockingIOError:
            return False
        except OSError as error:
            raise LinkError(f"{self.url}: send failed: {error.strerror}") from error

    def peer_gone(self) -> bool:
        """The plant's end: True once its one connection has ended with nothing left to
        read (a peer that never connected is not gone: the caller's timeout covers it)."""
        if self._closed or self._sock is None:
            return False
        if self._eof:
            return True
        try:
            events = self._poll.poll(0)
        except OSError:
            return False
        if not events:
            return False
        if events[0][1] & select.POLLIN:
            return False                            # something to read first
        return bool(events[0][1] & _HUP)

    def _close_internal(self) -> None:
        for s in (self._sock, self._listener):
            if s is not None:
                s.close()
        self._sock = self._listener = None
        if self._created:
            try:   # the file this end made, not one a later plant bound at the same path
                if os.stat(self.path).st_ino == self._created:
                    os.unlink(self.path)
            except OSError:
                pass


def _check_free(path: str) -> None:
    """Refuse a path that is not a socket, or a socket another process listens on or is
    connected through (a run in progress): /proc/net/unix lists every bound socket with its
    path (probing with a connection would be the listening plant's one accepted peer)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
    names = {path, os.path.abspath(path)}
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as table:
            next(table, None)                       # the header
            for line in table:
                fields = line.split()
                if len(fields) >= 8 and fields[7] in names:
                    raise OSError(errno.EADDRINUSE,
                                  f"address already in use (a process uses {path})")
    except FileNotFoundError:
        return


def _ms(timeout_s: float) -> int:
    """Poll timeout in whole milliseconds, rounded up so a wait never ends early."""
    return max(0, math.ceil(timeout_s * 1000.0))
