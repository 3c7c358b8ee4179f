"""ZeroMQ backend: ``zmq+ipc://PATH`` and ``zmq+tcp://HOST:PORT[?keys=DIR]``.

One PAIR socket per end: the plant binds, the flight software connects. Each link has its
own zmq.Context (never the global instance), so links in forked or spawned processes do
not share state; LINGER is 0 so close() never blocks. Every wait is a bounded poll.

Safe by default:

* an ipc socket file is created 0600 (owner only, whatever the umask); its folder must
  exist (none is created);
* both ends refuse a message larger than ``MAX_PAYLOAD_BYTES`` (ZMQ_MAXMSGSIZE: libzmq
  drops the connection that sent it, before buffering it), so no peer can fill memory;
* the plant binds a TCP address other than loopback only with CURVE keys (``?keys=DIR``,
  made by ``fsil keys``, see bridge.keys): the link is then encrypted and only a flight
  software holding ``fsw.key_secret`` is let in. With ``?keys=DIR`` a loopback link uses
  CURVE too.

A vanished plant is seen by the flight software's end at once: it watches its one
connection (a ZeroMQ socket monitor, ZMQ_EVENT_DISCONNECTED) and raises PeerClosed when the
connection drops with nothing left to read (the plant killed, or another flight software
already connected). The plant's end watches its connections too, but can be fooled by
another local process of the user that connects and stays, so it claims only what cannot be
wrong: :meth:`ZmqLink.peer_gone` is True once every connection it accepted has closed (and
stayed closed for :data:`GONE_GRACE_S`, longer than ZeroMQ's reconnect interval) with
nothing left to read -- nobody can be on the other end then. The plant's waits ask it
between slices, so a flight software started separately that dies is seen within a fraction
of a second, not as a stall after ``link_timeout_s``. An orderly end is the END message.
"""

from __future__ import annotations

import errno
import ipaddress
import math
import os
import socket
import stat
import struct
import time

import zmq

from bridge.errors import LinkError, LinkOpenError, PeerClosed
from bridge.link import DEFAULT_SEND_TIMEOUT_S, Link
from bridge.protocol import MAX_PAYLOAD_BYTES

IPC_PATH_MAX_BYTES = 107  # sun_path limit on Linux, less the terminating NUL
ZAP_DOMAIN = "fsil"        # the CURVE authenticator's domain
DRAIN_MS = 50              # after the connection drops: how long to look for what it carried
GONE_GRACE_S = 0.3         # the plant's end: no connection for this long = no peer (> 0.1 s,
                           # ZeroMQ's reconnect interval)
FAST_WAIT_MS = 20          # the fsw end's blocking receive before it also watches the connection


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (a host name other than localhost: False)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ZmqLink(Link):
    """One end of a ZeroMQ PAIR link."""

    @staticmethod
    def parse_url(scheme: str, rest: str, role: str) -> dict:
        """Check the address part; return the ZeroMQ endpoint and, for ipc, the path."""
        rest, _, query = rest.partition("?")
        keys = None
        for option in query.split("&") if query else ():
            name, sep, value = option.partition("=")
            if name != "keys" or not sep or not value or scheme != "zmq+tcp":
                raise ValueError(f'unknown option "{option}" (zmq+tcp takes ?keys=DIR)'
                                 if scheme == "zmq+tcp" else "no query allowed")
            keys = os.path.expanduser(value)
        if "#" in rest:
            raise ValueError("no fragment allowed")
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
        if role == "plant" and keys is None and not is_loopback(host):
            raise ValueError(f"binding {host}, not a loopback address, needs CURVE keys: make "
                             "them with 'fsil keys DIR' and add ?keys=DIR (docs/protocol.md)")
        return {"endpoint": f"tcp://{host}:{int(port_text)}", "ipv6": host.startswith("["),
                "keys": keys}

    def __init__(self, url: str, role: str, endpoint: str, ipc_path: str | None = None,
                 ipv6: bool = False, keys: str | None = None,
                 send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S) -> None:
        super().__init__(url, send_timeout_s)
        self._context = zmq.Context()
        self._auth = None
        self._socket = self._context.socket(zmq.PAIR)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_PAYLOAD_BYTES)
        if ipv6:
            self._socket.setsockopt(zmq.IPV6, 1)
        self._watch = None   # the plant's end: its connections (peer_gone), never polled
        self._open_fds: set[int] = set()
        self._accepted = False
        self._none_since = 0.0
        if role == "plant":  # before the bind: no connection is missed
            self._watch = self._socket.get_monitor_socket(
                zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        try:
            if keys is not None:
                self._curve(role, keys)
            if role == "plant":
                self._bind(endpoint, ipc_path)
            else:
                self._socket.connect(endpoint)
        except LinkError:
            self.close()
            raise
        except (zmq.ZMQError, OSError) as error:
            self.close()
            verb = "bind" if role == "plant" else "connect"
            reason = error.strerror or str(error)
            raise LinkOpenError(f"{url}: cannot {verb}: {reason}") from error
        self.curve = keys is not None
        self._pollin = zmq.Poller()
        self._pollin.register(self._socket, zmq.POLLIN)
        self._monitor = None
        if role == "fsw":
            self._monitor = self._socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            self._pollin.register(self._monitor, zmq.POLLIN)
        self._pollout = zmq.Poller()
        self._pollout.register(self._socket, zmq.POLLOUT)
        self._rcvtimeo = -1

    def _curve(self, role: str, keys: str) -> None:
        """CURVE on this socket: the plant is the server and admits the fsw's public key."""
        from bridge import keys as curve_keys
        if role == "plant":
            from zmq.auth.thread import ThreadAuthenticator
            public, secret = curve_keys.load_pair(keys, curve_keys.PLANT)
            curve_keys.load_public(keys, curve_keys.FSW)  # a clear error if it is missing
            self._auth = ThreadAuthenticator(self._context)
            self._auth.start()
            self._auth.configure_curve(domain=ZAP_DOMAIN, location=keys)
            self._socket.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())
            self._socket.setsockopt(zmq.CURVE_SERVER, 1)
        else:
            public, secret = curve_keys.load_pair(keys, curve_keys.FSW)
            self._socket.setsockopt(zmq.CURVE_SERVERKEY,
                                    curve_keys.load_public(keys, curve_keys.PLANT))
        self._socket.setsockopt(zmq.CURVE_PUBLICKEY, public)
        self._socket.setsockopt(zmq.CURVE_SECRETKEY, secret)

    def _bind(self, endpoint: str, ipc_path: str | None) -> None:
        if ipc_path is None:
            self._socket.bind(endpoint)
        else:
            parent = os.path.dirname(ipc_path)
            if parent and not os.path.isdir(parent):  # never create folders for an address
                raise LinkOpenError(f"{self.url}: cannot bind: folder {parent} does not exist")
            _check_ipc_free(ipc_path)
            old = os.umask(0o177)  # the socket file is born 0600: no window for another user
            try:
                self._socket.bind(endpoint)
            finally:
                os.umask(old)
            os.chmod(ipc_path, 0o600)
        if endpoint.startswith("tcp://") and endpoint.endswith(":0"):
            bound = self._socket.getsockopt(zmq.LAST_ENDPOINT).decode()
            query = self.url.partition("?")[2]
            # the port actually bound, to hand to the peer (with the keys option, if any)
            self.url = "zmq+" + bound + (f"?{query}" if query else "")

    def _recv_internal(self, timeout_s: float) -> bytes | None:
        """One payload within ``timeout_s``, or None. A blocking receive with a timeout
        (ZMQ_RCVTIMEO) wakes about twice as fast as a poll followed by a non-blocking
        receive (``fsil bench lockstep``: ipc-blocking against ipc-poll), so the wait is
        one: on the plant's end for all of it, on the flight software's end for its first
        :data:`FAST_WAIT_MS` (a frame normally comes long before), then a poll that also
        watches the connection (PeerClosed)."""
        ms = _ms(timeout_s)
        fast = ms if self._monitor is None else min(ms, FAST_WAIT_MS)
        if fast > 0:
            if fast != self._rcvtimeo:
                self._socket.setsockopt(zmq.RCVTIMEO, fast)
                self._rcvtimeo = fast
            try:
                return self._socket.recv()
            except zmq.Again:
                if fast == ms:
                    return None
            except zmq.ZMQError as error:
                raise LinkError(f"{self.url}: receive failed: {error.strerror}") from error
            ms -= fast
        try:
            ready = dict(self._pollin.poll(ms))
            if self._socket in ready:
                return self._socket.recv(zmq.NOBLOCK)
            if self._monitor is not None and self._monitor in ready:
                self._monitor.recv_multipart(zmq.NOBLOCK)   # the event: the connection dropped
                if self._socket.poll(DRAIN_MS, zmq.POLLIN):  # what the peer sent before is kept
                    return self._socket.recv(zmq.NOBLOCK)
                raise PeerClosed(self.url, "the connection dropped: the plant ended or was "
                                 "killed, or another flight software is connected")
            return None
        except zmq.Again:
            return None
        except zmq.ZMQError as error:
            raise LinkError(f"{self.url}: receive failed: {error.strerror}") from error

    def _send_internal(self, payload: bytes, timeout_s: float) -> bool:
        try:   # the peer can usually take it now: no poll (a system call) before the send
            self._socket.send(payload, zmq.NOBLOCK)
            return True
        except zmq.Again:
            pass
        except zmq.ZMQError as error:
            raise LinkError(f"{self.url}: send failed: {error.strerror}") from error
        try:
            if not self._pollout.poll(_ms(timeout_s)):
                return False
            self._socket.send(payload, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False
        except zmq.ZMQError as error:
            raise LinkError(f"{self.url}: send failed: {error.strerror}") from error

    def peer_gone(self) -> bool:
        """The plant's end: True once every connection it accepted has closed, none for
        :data:`GONE_GRACE_S`, and nothing is left to read (see the module docstring)."""
        watch = self._watch
        if watch is None or self._closed:
            return False
        try:
            while watch.poll(0):
                frames = watch.recv_multipart(zmq.NOBLOCK)
                event, fd = struct.unpack("=Hi", frames[0][:6])
                if event == zmq.EVENT_ACCEPTED:
                    self._open_fds.add(fd)
                    self._accepted = True
                elif event == zmq.EVENT_DISCONNECTED:
                    self._open_fds.discard(fd)
                    if not self._open_fds:
                        self._none_since = time.monotonic()
        except (zmq.ZMQError, struct.error):
            return False
        if not self._accepted or self._open_fds:
            return False
        if time.monotonic() - self._none_since < GONE_GRACE_S:
            return False
        return not self._socket.poll(0, zmq.POLLIN)

    def _close_internal(self) -> None:
        if getattr(self, "_watch", None) is not None:
            self._socket.disable_monitor()
            self._watch.close(linger=0)
        if getattr(self, "_monitor", None) is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
        self._socket.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
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
