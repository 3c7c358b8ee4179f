"""The bridge's one exception tree.

    BridgeError
    +-- LinkError            the transport failed
    |   +-- UrlError         malformed or unsupported link URL
    |   +-- LinkOpenError    the link cannot be opened: address in use, no such folder or port
    |   +-- PeerTimeout      the peer did not answer in time
    |   +-- PeerClosed       the peer closed its end
    +-- ProtocolError        the bytes arrived but their content is wrong
        +-- VersionError     other protocol version
        +-- UnknownMessage   unknown message type id
        +-- MalformedMessage not msgpack, wrong field count or field kind
        +-- PayloadTooLarge  larger than protocol.MAX_PAYLOAD_BYTES
        +-- UnexpectedMessage a valid message, but not the one expected now

Each error keeps its facts as attributes (``timeout_s``, ``got``, ...) so callers never
need to read the text. The constructor arguments are kept in ``args`` so errors pickle.
"""

from __future__ import annotations

REASON_MAX_CHARS = 300  # a peer's text shown in one line is cut here


def one_line(text: str, limit: int = REASON_MAX_CHARS) -> str:
    """A peer's text (an END reason) made safe to print on one line.

    Control characters (newlines, ANSI escapes) are shown escaped (``\\n``, ``\\x1b``),
    and the text is cut to ``limit`` characters.
    """
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class BridgeError(Exception):
    """Base of every error raised by the bridge."""


class LinkError(BridgeError):
    """A transport problem: cannot open, bind, send or receive."""


class UrlError(LinkError):
    """A link URL that is malformed or names an unknown scheme."""

    def __init__(self, url: str, expected: str, reason: str = "") -> None:
        super().__init__(url, expected, reason)
        self.url = url
        self.expected = expected
        self.reason = reason

    def __str__(self) -> str:
        reason = f"{self.reason}; " if self.reason else ""
        return f'bad link URL "{self.url}": {reason}expected {self.expected}'


class LinkOpenError(LinkError):
    """The link cannot be opened at all (a configuration problem, not a peer's failure):
    the address is in use, the socket's folder or the serial port does not exist, no
    permission. The text names the URL and the reason."""


class PeerTimeout(LinkError):
    """Waited ``timeout_s`` seconds for the peer without result."""

    def __init__(self, timeout_s: float, waiting_for: str = "a message from the peer",
                 url: str = "") -> None:
        super().__init__(timeout_s, waiting_for, url)
        self.timeout_s = timeout_s
        self.waiting_for = waiting_for
        self.url = url

    def __str__(self) -> str:
        where = f"{self.url}: " if self.url else ""
        return f"{where}timed out after {self.timeout_s:g} s waiting for {self.waiting_for}"


class PeerClosed(LinkError):
    """The peer closed its end of the link."""

    def __init__(self, url: str = "", detail: str = "") -> None:
        super().__init__(url, detail)
        self.url = url
        self.detail = detail

    def __str__(self) -> str:
        where = f"{self.url}: " if self.url else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{where}peer closed the link{detail}"


class ProtocolError(BridgeError):
    """Bytes were received but their content breaks the protocol."""


class VersionError(ProtocolError):
    """The peer speaks another protocol version.

    ``end_reason`` is the reason of the message when it is an END (whose layout is the same
    in every version, so a peer can always say why it stops), else None.
    """

    def __init__(self, got: object, expected: int, end_reason: str | None = None) -> None:
        super().__init__(got, expected, end_reason)
        self.got = got
        self.expected = expected
        self.end_reason = end_reason

    def __str__(self) -> str:
        text = f"protocol version {self.got!r} received, this end speaks version {self.expected}"
        if self.end_reason is not None:
            text += f" (the peer ended the run: {one_line(self.end_reason)})"
        return text


class UnknownMessage(ProtocolError):
    """A message type id not in ``protocol.LAYOUTS``."""

    def __init__(self, type_id: object) -> None:
        super().__init__(type_id)
        self.type_id = type_id

    def __str__(self) -> str:
        return f"unknown message type id {self.type_id!r}"


class MalformedMessage(ProtocolError):
    """Not a msgpack array, wrong field count, or a field of the wrong kind."""

    def __init__(self, detail: str, message: str = "", field: str = "") -> None:
        super().__init__(detail, message, field)
        self.detail = detail
        self.message = message
        self.field = field

    def __str__(self) -> str:
        what = f"malformed {self.message} message" if self.message else "malformed message"
        where = f', field "{self.field}"' if self.field else ""
        return f"{what}{where}: {self.detail}"


class PayloadTooLarge(ProtocolError):
    """An encoded message larger than the protocol allows."""

    def __init__(self, size_bytes: int, limit_bytes: int) -> None:
        super().__init__(size_bytes, limit_bytes)
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes

    def __str__(self) -> str:
        return f"payload of {self.size_bytes} bytes exceeds the limit of {self.limit_bytes} bytes"


class UnexpectedMessage(ProtocolError):
    """A valid message that is not the one the protocol expects at this point."""

    def __init__(self, got: str, expected: str) -> None:
        super().__init__(got, expected)
        self.got = got
        self.expected = expected

    def __str__(self) -> str:
        return f"got {self.got} while expecting {self.expected}"
