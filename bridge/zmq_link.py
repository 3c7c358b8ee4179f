"""ZeroMQ backend: ``zmq+ipc://PATH`` and ``zmq+tcp://HOST:PORT``.

One PAIR socket per end: the plant binds, the flight software connects. Each link has its
own zmq.Context (never the global instance), so links in forked or spawned processes do
not share state; LINGER is 0 so close() never blocks. Every wait is a bounded poll.

ZeroMQ does not report a vanished peer on a PAIR socket: it shows as PeerTimeout. An
orderly end is the END message.
"""

from __future__ import annotations

import errno
import math
import os
import socket
import stat

import zmq

from bridge.errors import LinkError
from bridge.link import DEFAULT_SEND_TIMEOUT_S, Link

IPC_PATH_MAX_BYTES = 107  # sun_path limit on Linux, less the terminating NUL


class ZmqLink(Link):
    """One end of a ZeroMQ PAIR link."""

    @staticmethod
    def parse_url(scheme: str, rest: str, role: str) -> dict:
        """Check the address part; return the ZeroMQ endpoint and, for ipc, the path."""
        if "?" in rest or "#" in rest:
            raise ValueError("no query or fragment allowed")
        if scheme == "zmq+ipc":
            if not rest:
                raise ValueError("missing PATH")
            if len(os.fsencode(rest)) > IPC_PATH_MAX_BYTES:
                raise ValueError(f"PATH longer than {IPC_PATH_MAX_BYTES} bytes")
            return {"endpoint": f"ipc://{rest}", "ipc_path": rest}
        host, sep, port_text = rest.rpartition(":")
        if not sep or not host:
            raise ValueError("missing HOST or PORT")
        if host.startswith("[") != host.endswith("]") or "/" in host:
            raise ValueError(f'bad HOST "{host}"')
        if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
            raise ValueError(f'PORT must be an integer 1..65535, got "{port_text}"')
        if int(port_text) == 0 and role != "plant":
            raise ValueError("PORT 0 (any free port) only for the binding plant end")
        return {"endpoint": f"tcp://{host}:{int(port_text)}", "ipv6": host.startswith("[")}

    def __init__(self, url: str, role: str, endpoint: str, ipc_path: str | None = None,
                 ipv6: bool = False, send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S) -> None:
        super().__init__(url, send_timeout_s)
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.PAIR)
        self._socket.setsockopt(zmq.LINGER, 0)
        if ipv6:
            self._socket.setsockopt(zmq.IPV6, 1)
        try:
            if role == "plant":
                self._bind(endpoint, ipc_path)
            else:
                self._socket.connect(endpoint)
        except (zmq.ZMQError, OSError) as error:
            self.close()
            verb = "bind" if role == "plant" else "connect"
            reason = error.strerror or str(error)
            raise LinkError(f"{url}: cannot {verb}: {reason}") from error
        self._pollin = zmq.Poller()
        self._pollin.register(self._socket, zmq.POLLIN)
        self._pollout = zmq.Poller()
        self._pollout.register(self._socket, zmq.POLLOUT)

    def _bind(self, endpoint: str, ipc_path: str | None) -> None:
        if ipc_path is not None:
            parent = os.path.dirname(ipc_path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            _check_ipc_free(ipc_path)
        self._socket.bind(endpoint)
        if endpoint.startswith("tcp://") and endpoint.endswith(":0"):
            bound = self._socket.getsockopt(zmq.LAST_ENDPOINT).decode()
            self.url = "zmq+" + bound  # the port actually bound, to hand to the peer

    def _recv_internal(self, timeout_s: float) -> bytes | None:
        try:
            if not self._pollin.poll(_ms(timeout_s)):
                return None
            return self._socket.recv(zmq.NOBLOCK)
        except zmq.Again:
            return None
        except zmq.ZMQError as error:
            raise LinkError(f"{self.url}: receive failed: {error.strerror}") from error

    def _send_internal(self, payload: bytes, timeout_s: float) -> bool:
        try:
            if not self._pollout.poll(_ms(timeout_s)):
                return False
            self._socket.send(payload, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False
        except zmq.ZMQError as error:
            raise LinkError(f"{self.url}: send failed: {error.strerror}") from error

    def _close_internal(self) -> None:
        self._socket.close(linger=0)
        self._context.term()


def _ms(timeout_s: float) -> int:
    """Poll timeout in whole milliseconds, rounded up so a wait never ends early."""
    return max(0, math.ceil(timeout_s * 1000.0))


def _check_ipc_free(path: str) -> None:
    """Refuse to bind over a socket file another process is listening on.

    ZeroMQ would silently unlink it and take the address; a stale file (nobody listening)
    is fine and is replaced.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as error:
        if error.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return
        raise
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"address already in use (a process listens on {path})")
