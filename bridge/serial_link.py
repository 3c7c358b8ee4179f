"""Serial backend: ``serial://PATH[?baud=N]`` and ``serial+PYSERIAL_URL``, on pyserial.

    serial:///dev/ttyACM0?baud=921600     a local port (Linux, macOS; serial://COM3 on Windows)
    serial+rfc2217://HOST:PORT            a network serial server speaking RFC 2217
    serial+socket://HOST:PORT             a raw TCP serial server (ser2net raw mode)
    serial+spy:///dev/ttyACM0?file=x.txt  a local port, every byte hex-dumped (debugging)
    serial+hwgrep://VID:PID               the first port whose USB ids match (2e8a:0005 is
                                          a Raspberry Pi Pico), whatever its name today

``serial+`` hands the rest of the URL to pyserial's handler of that name; its own query
options (``logging=debug``, ``file=...``) pass through. ``baud=N`` (default 921600) may
appear in the query of every form and is taken out before pyserial sees the URL. USB CDC
ignores the baud rate; a UART does not.

Payloads travel framed by :mod:`bridge.framing` (COBS, CRC-32, 0x00 delimiter). Both
roles open the port the same way: there is no bind or connect on a serial line. The first
frame a link sends, and the first after a write that timed out part-way, is preceded by
one 0x00 so the receiver drops whatever partial frame it holds. The decoder's counters
(``frames_ok``, ``crc_errors``, ``cobs_errors``, ``runts``, ``oversize``,
``bytes_discarded``, ``bytes_in``) and ``bytes_out`` (raw bytes written, framing
included) are kept in ``link.stats``.

A port that fails on read or write (unplugged, a board reset re-enumerating USB, the
other end of a pseudo-terminal closed) raises PeerClosed naming the port; the link must
then be opened again.
"""

from __future__ import annotations

import errno
import io
import os
import select
import time
from collections import deque

import serial

from bridge.errors import LinkError, LinkOpenError, PeerClosed
from bridge.framing import DELIMITER, FrameDecoder, encode_frame
from bridge.link import DEFAULT_SEND_TIMEOUT_S, Link

DEFAULT_BAUD = 921600
READ_CHUNK_BYTES = 65536     # most bytes taken from the port in one read
POLL_S = 0.001               # a port without a file descriptor (rfc2217) is polled this often
MIN_WRITE_TIMEOUT_S = 0.001  # pyserial's write timeout 0 spins on a full buffer: never below this
PYSERIAL_SCHEMES = ("rfc2217", "socket", "spy", "hwgrep")  # serial+NAME:// forms in bridge.url


class SerialLink(Link):
    """One end of a framed link over a serial port (or a pyserial URL)."""

    lossy = True  # line noise costs frames: the counters travel in STATUS

    @staticmethod
    def parse_url(scheme: str, rest: str, role: str) -> dict:
        """``port`` (a device path or a pyserial URL) and ``baud`` from the URL."""
        target, _, query = rest.partition("?")
        baud = DEFAULT_BAUD
        passed = []  # query options for pyserial's handler
        for option in query.split("&") if query else ():
            name, sep, value = option.partition("=")
            if name == "baud":
                if not (sep and value.isascii() and value.isdigit() and int(value) > 0):
                    raise ValueError(f'baud must be a positive integer, got "{value}"')
                baud = int(value)
            elif scheme == "serial":
                raise ValueError(f'unknown option "{name}" (only baud=N)')
            else:
                passed.append(option)
        if not target:
            raise ValueError("missing PATH" if scheme == "serial" else "missing address")
        if scheme == "serial":
            return {"port": target, "baud": baud}
        handler = scheme.partition("+")[2]
        if handler not in PYSERIAL_SCHEMES:
            raise ValueError(f'unknown pyserial handler "{handler}"')
        port = f"{handler}://{target}" + ("?" + "&".join(passed) if passed else "")
        return {"port": port, "baud": baud}

    def __init__(self, url: str, role: str, port: str, baud: int = DEFAULT_BAUD,
                 send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S) -> None:
        super().__init__(url, send_timeout_s)
        self.port = port
        self.baud = baud
        self._decoder = FrameDecoder()
        self._payloads: deque[bytes] = deque()
        self._flush_next = True  # precede the next frame by a delimiter
        self.stats.update(self._decoder.stats)
        self.stats["bytes_out"] = 0
        try:
            # timeout 0: reads take what has arrived; the waiting is done here, with select
            self._serial = serial.serial_for_url(port, baudrate=baud, timeout=0,
                                                 write_timeout=send_timeout_s, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as error:
            self._closed = True
            raise LinkOpenError(f"{url}: cannot open serial port {port}: {_reason(error)}") from error
        try:
            self._fd: int | None = self._serial.fileno()
        except (io.UnsupportedOperation, AttributeError, OSError):
            self._fd = None  # polled instead

    # --- backend hooks

    def _recv_internal(self, timeout_s: float) -> bytes | None:
        if not self._payloads:
            data = self._read(timeout_s)
            if data:
                self._payloads.extend(self._decoder.feed(data))
                self.stats.update(self._decoder.stats)
        return self._payloads.popleft() if self._payloads else None

    def _send_internal(self, payload: bytes, timeout_s: float) -> bool:
        frame = encode_frame(payload)
        if self._flush_next:
            frame = DELIMITER + frame
        write_timeout_s = max(timeout_s, MIN_WRITE_TIMEOUT_S)
        try:
            if self._serial.write_timeout != write_timeout_s:
                self._serial.write_timeout = write_timeout_s
            written = self._serial.write(frame)
        except serial.SerialTimeoutException:
            written = None  # part of the frame may be out: the next one starts with a delimiter
        except (serial.SerialException, OSError) as error:
            raise PeerClosed(self.url, self._failed("write", error)) from error
        if written != len(frame):
            self._flush_next = True
            return False
        self._flush_next = False
        self.stats["bytes_out"] += len(frame)
        return True

    def _close_internal(self) -> None:
        try:
            self._serial.close()
        except (serial.SerialException, OSError):
            pass  # the port is gone already

    # --- helpers

    def _read(self, timeout_s: float) -> bytes:
        """What has arrived, waiting at most ``timeout_s`` for the first byte."""
        try:
            if self._fd is None:
                data = self._serial.read(READ_CHUNK_BYTES)
                if data or timeout_s <= 0:
                    return data
                time.sleep(min(timeout_s, POLL_S))
            elif timeout_s > 0:
                select.select([self._fd], [], [], timeout_s)  # at once if bytes are waiting
            return self._serial.read(READ_CHUNK_BYTES)
        except (serial.SerialException, OSError, ValueError) as error:
            raise PeerClosed(self.url, self._failed("read", error)) from error

    def _failed(self, operation: str, error: Exception) -> str:
        return (f"serial port {self.port} failed on {operation}: {error}; unplugged, reset "
                f"(USB re-enumerated) or its other end closed: open the link again")


def _reason(error: Exception) -> str:
    """Why a port could not be opened, from the OS error number when there is one."""
    number = getattr(error, "errno", None)
    if number in (errno.EAGAIN, errno.EWOULDBLOCK):
        return "in use by another program (it holds the port's exclusive lock)"
    if number == errno.EACCES:
        return f"{os.strerror(number)} (on Linux, add your user to the dialout group)"
    if isinstance(number, int) and number > 0:
        return os.strerror(number)
    return str(error)
