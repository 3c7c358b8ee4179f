"""Open a link from a URL; each scheme is one backend, imported only when used.

    zmq+ipc://PATH        ZeroMQ PAIR over a Unix socket file (absolute or relative path)
    zmq+tcp://HOST:PORT   ZeroMQ PAIR over TCP (the plant binds HOST:PORT; port 0 = any free;
                          ?keys=DIR: CURVE, needed to bind other than loopback; bridge.keys)
    unix://PATH           a Unix SOCK_SEQPACKET socket file, no ZeroMQ (bridge.unix_link)
    loop://NAME           in-process pair of queues, for tests and threads
    serial://PATH[?baud=N], serial+rfc2217://HOST:PORT, ...
                          a serial port, framed (see bridge.serial_link)

To add a scheme, add one row to :data:`SCHEMES` (or call :func:`register_scheme`). The
backend class provides ``parse_url(scheme, rest, role) -> dict`` (raising ValueError with a
short reason) and a constructor ``Class(url, role, **parsed)``.
"""

from __future__ import annotations

import importlib

from bridge.errors import LinkError, UrlError
from bridge.link import Link

ROLES = ("plant", "fsw")  # plant binds / serves, fsw connects

# scheme -> ("module:Class", grammar quoted in error messages)
SCHEMES: dict[str, tuple[str, str]] = {
    "zmq+ipc": ("bridge.zmq_link:ZmqLink", "zmq+ipc://PATH"),
    "zmq+tcp": ("bridge.zmq_link:ZmqLink", "zmq+tcp://HOST:PORT[?keys=DIR]"),
    "unix": ("bridge.unix_link:UnixLink", "unix://PATH"),
    "loop": ("bridge.loop_link:LoopLink", "loop://NAME"),
    # serial (bridge.serial_link): a local port, or one of pyserial's URL handlers
    "serial": ("bridge.serial_link:SerialLink", "serial://PATH[?baud=N]"),
    "serial+rfc2217": ("bridge.serial_link:SerialLink", "serial+rfc2217://HOST:PORT"),
    "serial+socket": ("bridge.serial_link:SerialLink", "serial+socket://HOST:PORT"),
    "serial+spy": ("bridge.serial_link:SerialLink", "serial+spy://PATH"),
    "serial+hwgrep": ("bridge.serial_link:SerialLink", "serial+hwgrep://VID:PID"),
}


def register_scheme(scheme: str, target: str, grammar: str) -> None:
    """Add a URL scheme served by ``target`` ("module:Class"), e.g. for a serial backend."""
    SCHEMES[scheme] = (target, grammar)


def grammar() -> str:
    """All accepted URL forms, for error messages."""
    forms = [form for _, form in SCHEMES.values()]
    return forms[0] if len(forms) == 1 else ", ".join(forms[:-1]) + " or " + forms[-1]


def parse_url(url: str, role: str = "plant") -> tuple[type[Link], dict]:
    """Check a URL without opening it: the backend class and its parsed options."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    scheme, sep, rest = url.partition("://") if isinstance(url, str) else ("", "", "")
    if not sep or scheme not in SCHEMES:
        reason = f'unknown scheme "{scheme}"' if sep else "missing scheme"
        raise UrlError(str(url), grammar(), reason)
    target, form = SCHEMES[scheme]
    cls = _load(scheme, target)
    try:
        options = cls.parse_url(scheme, rest, role)
    except ValueError as error:
        raise UrlError(url, form, str(error)) from None
    return cls, options


def open_link(url: str, role: str) -> Link:
    """Open one end of a link. ``role`` is "plant" (binds, serves) or "fsw" (connects)."""
    cls, options = parse_url(url, role)
    return cls(url, role, **options)


def _load(scheme: str, target: str) -> type[Link]:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise LinkError(f'link scheme "{scheme}" needs module {module_name}, '
                        f"which cannot be imported: {error}") from error
    return getattr(module, class_name)
