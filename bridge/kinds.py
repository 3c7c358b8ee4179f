"""Field kinds of :mod:`bridge.protocol`: a checker and a converter for each.

``DECODERS[kind](value)`` checks a value as msgpack delivered it (plain Python types, so
exact type checks) and returns it, integers turned into floats where a float is due.
``ENCODERS[kind](value)`` accepts what callers naturally hold (tuples, numpy scalars and
arrays) and returns plain Python types of the right kind. Both raise :class:`Bad`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

IMU_SAMPLE_LEN = 7   # [t_us, dvx, dvy, dvz, dax, day, daz]
ALT_SAMPLE_LEN = 3   # [t_us, range_m, valid]


class Bad(Exception):
    """A field value of the wrong kind; the detail text names what was wrong."""


def _got(value: Any) -> str:
    """The type name of a value."""
    return type(value).__name__


# --- decode side: msgpack gives plain Python types, so exact type checks are cheap and exact.

def _dec_u(v: Any) -> int:
    if type(v) is not int or v < 0:
        raise Bad(f"expected an unsigned integer, got {_got(v)} {v!r}")
    return v


def _dec_i(v: Any) -> int:
    if type(v) is not int:
        raise Bad(f"expected an integer, got {_got(v)} {v!r}")
    return v


def _dec_f(v: Any) -> float:
    if type(v) is float:
        return v
    if type(v) is int:
        return float(v)
    raise Bad(f"expected a float, got {_got(v)} {v!r}")


def _dec_s(v: Any) -> str:
    if type(v) is not str:
        raise Bad(f"expected a string, got {_got(v)}")
    return v


def _dec_b(v: Any) -> bool:
    if type(v) is not bool:
        raise Bad(f"expected a boolean, got {_got(v)} {v!r}")
    return v


def _dec_m(v: Any) -> dict:
    if type(v) is not dict:
        raise Bad(f"expected a map, got {_got(v)}")
    for key in v:
        if type(key) is not str:
            raise Bad(f"map key {key!r} is not a string")
    return v


def _dec_floats_into(v: list, start: int, what: str) -> None:
    """Check v[start:] are floats, turning integers into floats in place."""
    for k in range(start, len(v)):
        x = v[k]
        if type(x) is not float:
            if type(x) is int:
                v[k] = float(x)
            else:
                raise Bad(f"{what} element {k}: expected a float, got {_got(x)} {x!r}")


def _dec_fn(n: int) -> Callable[[Any], list]:
    def check(v: Any) -> list:
        if type(v) is not list or len(v) != n:
            raise Bad(f"expected an array of {n} floats, got {describe(v)}")
        _dec_floats_into(v, 0, "array")
        return v
    return check


def _dec_imu(v: Any) -> list:
    if type(v) is not list:
        raise Bad(f"expected an array of IMU samples, got {_got(v)}")
    for j, s in enumerate(v):
        if type(s) is not list or len(s) != IMU_SAMPLE_LEN:
            raise Bad(f"IMU sample {j}: expected an array of {IMU_SAMPLE_LEN}, got {describe(s)}")
        if type(s[0]) is not int:
            raise Bad(f"IMU sample {j}: t_us must be an integer, got {_got(s[0])}")
        _dec_floats_into(s, 1, f"IMU sample {j}")
    return v


def _dec_alt(v: Any) -> list | None:
    if v is None:
        return None
    if type(v) is not list or len(v) != ALT_SAMPLE_LEN:
        raise Bad(f"expected nil or an altimeter sample [t_us, range_m, valid], got {describe(v)}")
    if type(v[0]) is not int:
        raise Bad(f"altimeter t_us must be an integer, got {_got(v[0])}")
    v[1] = _dec_f(v[1])
    if type(v[2]) is not bool:
        raise Bad(f"altimeter valid must be a boolean, got {_got(v[2])}")
    return v


def describe(v: Any) -> str:
    """Short description of a value's shape for error messages."""
    return f"array of {len(v)}" if isinstance(v, (list, tuple)) else _got(v)


DECODERS: dict[str, Callable[[Any], Any]] = {
    "u": _dec_u, "i": _dec_i, "f": _dec_f, "s": _dec_s, "b": _dec_b, "m": _dec_m,
    "f3": _dec_fn(3), "f7": _dec_fn(7), "imu": _dec_imu, "alt": _dec_alt,
}


# --- encode side: accept what callers naturally hold (tuples, numpy scalars and arrays)
# and turn it into plain Python types of the right kind.

def _is_numpy_bool(v: Any) -> bool:
    return getattr(getattr(v, "dtype", None), "kind", None) == "b"


def _enc_int(v: Any, unsigned: bool) -> int:
    if isinstance(v, bool) or _is_numpy_bool(v):
        raise Bad(f"expected an integer, got a boolean {v!r}")
    try:
        n = operator.index(v)
    except TypeError:
        raise Bad(f"expected an integer, got {_got(v)} {v!r}") from None
    if unsigned and n < 0:
        raise Bad(f"expected an unsigned integer, got {n}")
    return n


def _enc_u(v: Any) -> int:
    return _enc_int(v, unsigned=True)


def _enc_i(v: Any) -> int:
    return _enc_int(v, unsigned=False)


def _enc_f(v: Any) -> float:
    if type(v) is float:
        return v
    if isinstance(v, (bool, str, bytes)) or _is_numpy_bool(v):
        raise Bad(f"expected a float, got {_got(v)} {v!r}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise Bad(f"expected a float, got {_got(v)}") from None


def _enc_b(v: Any) -> bool:
    if type(v) is not bool and _is_numpy_bool(v):
        v = bool(v)
    return _dec_b(v)


def _enc_m(v: Any) -> dict:
    if not isinstance(v, Mapping):
        raise Bad(f"expected a map, got {_got(v)}")
    return _dec_m(dict(v))


def _enc_list(v: Any, what: str) -> Sequence:
    """A sized sequence (list, tuple, numpy array), not a string or a map."""
    if isinstance(v, (str, bytes, Mapping)) or not hasattr(v, "__len__"):
        raise Bad(f"expected {what}, got {_got(v)}")
    return v


def _enc_seq(v: Any, n: int, what: str) -> Sequence:
    """As _enc_list, with exactly n elements."""
    if len(_enc_list(v, what)) != n:
        raise Bad(f"expected {what}, got {len(v)} elements")
    return v


def _enc_fn(n: int) -> Callable[[Any], list]:
    def convert(v: Any) -> list:
        return [_enc_f(x) for x in _enc_seq(v, n, f"an array of {n} floats")]
    return convert


def _enc_imu(v: Any) -> list:
    out = []
    for j, s in enumerate(_enc_list(v, "an array of IMU samples")):
        s = _enc_seq(s, IMU_SAMPLE_LEN, f"IMU sample {j} of {IMU_SAMPLE_LEN} numbers")
        out.append([_enc_i(s[0])] + [_enc_f(x) for x in s[1:]])
    return out


def _enc_alt(v: Any) -> list | None:
    if v is None:
        return None
    s = _enc_seq(v, ALT_SAMPLE_LEN, "nil or an altimeter sample [t_us, range_m, valid]")
    return [_enc_i(s[0]), _enc_f(s[1]), _enc_b(s[2])]


ENCODERS: dict[str, Callable[[Any], Any]] = {
    "u": _enc_u, "i": _enc_i, "f": _enc_f, "s": _dec_s, "b": _enc_b, "m": _enc_m,
    "f3": _enc_fn(3), "f7": _enc_fn(7), "imu": _enc_imu, "alt": _enc_alt,
}
