"""Field kinds of :mod:`bridge.protocol`: a checker and a converter for each.

``DECODERS[kind](value)`` checks a value as msgpack delivered it (plain Python types, so
exact type checks) and returns it, integers turned into floats where a float is due. It
checks the kind's whole range: integer widths, finite floats, increasing IMU time stamps.
``ENCODERS[kind](value)`` accepts what callers naturally hold (tuples, numpy scalars and
arrays), turns it into plain Python types and applies the same check, so a sender cannot
emit what a receiver refuses. Both raise :class:`Bad`.

The hot path (a FRAME or a COMMAND of plain floats and ints) costs one C-level pass per
array: ``tuple(map(type, v))`` against the expected types, then ``all(map(isfinite, v))``;
anything else takes a slower path that converts or names the exact problem.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from math import isfinite
from typing import Any

from bridge.protocol import (CONFIG_SCHEMA, COUNT_MAX, MODES, RATES_SCHEMA, SCHEMA_CHECKS, T_US_MAX,
                             U32_MAX, VEL_BEAMS)

IMU_SAMPLE_LEN = 7   # [t_us, dvx, dvy, dvz, dax, day, daz]
ALT_SAMPLE_LEN = 3   # [t_us, range_m, valid]
VEL_SAMPLE_LEN = 8   # [t_us, vlos0, vlos1, vlos2, range0, range1, range2, valid_mask]
ATT_SAMPLE_LEN = 6   # [t_us, qw, qx, qy, qz, valid]
NAV_LEN = 7          # position (3), velocity (3), altitude
VALID_MASK_MAX = (1 << VEL_BEAMS) - 1

_IMU_TYPES = (int,) + (float,) * 6
_ALT_TYPES = (int, float, bool)
_VEL_TYPES = (int,) + (float,) * 6 + (int,)
_ATT_TYPES = (int, float, float, float, float, bool)
_F3_TYPES = (float,) * 3
_F7_TYPES = (float,) * NAV_LEN
_IMU_NAMES = ("t_us", "dvx", "dvy", "dvz", "dax", "day", "daz")
_VEL_NAMES = ("t_us", "vlos0", "vlos1", "vlos2", "range0", "range1", "range2", "valid_mask")
_ATT_NAMES = ("t_us", "qw", "qx", "qy", "qz", "valid")


class Bad(Exception):
    """A field value of the wrong kind or out of range; the text names what was wrong."""


def _got(value: Any) -> str:
    """The type name of a value."""
    return type(value).__name__


def describe(v: Any) -> str:
    """Short description of a value's shape for error messages."""
    return f"array of {len(v)}" if isinstance(v, (list, tuple)) else _got(v)


# --- decode side: msgpack gives plain Python types, so exact type checks are cheap and exact.

def _dec_u(v: Any) -> int:
    if type(v) is int and 0 <= v <= U32_MAX:
        return v
    if type(v) is int:
        raise Bad(f"{v} is outside 0..{U32_MAX} (an unsigned 32-bit integer)")
    raise Bad(f"expected an unsigned integer, got {_got(v)} {v!r}")


def _check_t(v: Any, what: str = "time") -> int:
    if type(v) is int and 0 <= v <= T_US_MAX:
        return v
    if type(v) is int:
        raise Bad(f"{what} {v} is outside 0..{T_US_MAX} (integer us, a signed 64-bit integer >= 0)")
    raise Bad(f"{what}: expected an integer (us), got {_got(v)} {v!r}")


def _dec_t(v: Any) -> int:
    return _check_t(v)


def _dec_mode(v: Any) -> int:
    if type(v) is int and 0 <= v < len(MODES):
        return v
    if type(v) is int:
        raise Bad(f"mode {v} is not an index into MODES (0..{len(MODES) - 1})")
    raise Bad(f"expected a mode index (unsigned integer), got {_got(v)} {v!r}")


def _dec_f(v: Any) -> float:
    if type(v) is float:
        if isfinite(v):
            return v
        raise Bad(f"expected a finite float, got {v!r}")
    if type(v) is int:
        return float(v)  # msgpack integers are at most 64 bits: always within float range
    raise Bad(f"expected a float, got {_got(v)} {v!r}")


def _dec_s(v: Any) -> str:
    if type(v) is not str:
        raise Bad(f"expected a string, got {_got(v)}")
    return v


def _dec_m(v: Any) -> dict:
    if type(v) is not dict:
        raise Bad(f"expected a map, got {_got(v)}")
    for key in v:
        if type(key) is not str:
            raise Bad(f"map key {key!r} is not a string")
    return v


def _dec_counts(v: Any) -> dict:
    _dec_m(v)
    for key, n in v.items():
        if type(n) is not int or not 0 <= n <= COUNT_MAX:
            raise Bad(f'counter "{key}": expected an unsigned integer (0..{COUNT_MAX}), '
                      f"got {_got(n)} {n!r}")
    return v


def _floats_slow(v: list, start: int, names: tuple[str, ...] | None, what: str,
                 stop: int | None = None) -> None:
    """Check v[start:stop] are finite floats, turning integers into floats in place."""
    for k in range(start, len(v) if stop is None else stop):
        x = v[k]
        if type(x) is int:
            v[k] = float(x)
        elif type(x) is not float or not isfinite(x):
            name = names[k] if names else f"element {k}"
            kind = "finite float" if type(x) is float else "float"
            raise Bad(f"{what}{name}: expected a {kind}, got {_got(x)} {x!r}")


def _dec_floats(v: Any, n: int, types: tuple, what: str) -> list:
    if type(v) is list and len(v) == n:
        if tuple(map(type, v)) == types and all(map(isfinite, v)):
            return v
        _floats_slow(v, 0, None, what)
        return v
    raise Bad(f"expected {what}an array of {n} floats, got {describe(v)}")


def _dec_f3(v: Any) -> list:
    return _dec_floats(v, 3, _F3_TYPES, "")


def _dec_nav(v: Any) -> list | None:
    if v is None:
        return None
    if type(v) is list and len(v) == NAV_LEN:
        return _dec_floats(v, NAV_LEN, _F7_TYPES, "")
    raise Bad(f"expected nil or an array of {NAV_LEN} floats, got {describe(v)}")


def _dec_imu(v: Any) -> list:
    if type(v) is not list:
        raise Bad(f"expected an array of IMU samples, got {_got(v)}")
    last = -1
    for j, s in enumerate(v):
        if type(s) is not list or tuple(map(type, s)) != _IMU_TYPES:
            if type(s) is not list or len(s) != IMU_SAMPLE_LEN:
                raise Bad(f"IMU sample {j}: expected an array of {IMU_SAMPLE_LEN}, "
                          f"got {describe(s)}")
            _check_t(s[0], f"IMU sample {j}: t_us")
            _floats_slow(s, 1, _IMU_NAMES, f"IMU sample {j}: ")
        t = s[0]
        if not last < t <= T_US_MAX:
            _check_t(t, f"IMU sample {j}: t_us")
            raise Bad(f"IMU sample {j}: t_us {t} is not after the previous sample's {last}")
        if not all(map(isfinite, s)):
            _floats_slow(s, 1, _IMU_NAMES, f"IMU sample {j}: ")
        last = t
    return v


def _dec_alt(v: Any) -> list | None:
    if v is None:
        return None
    if type(v) is not list or len(v) != ALT_SAMPLE_LEN:
        raise Bad(f"expected nil or an altimeter sample [t_us, range_m, valid], got {describe(v)}")
    if tuple(map(type, v)) != _ALT_TYPES:
        if type(v[2]) is not bool:
            raise Bad(f"altimeter valid must be a boolean, got {_got(v[2])}")
        v[1] = _dec_f(v[1])
    _check_t(v[0], "altimeter t_us")
    if not isfinite(v[1]):
        raise Bad(f"altimeter range_m: expected a finite float, got {v[1]!r}")
    return v


def _dec_vel(v: Any) -> list | None:
    if v is None:
        return None
    if type(v) is not list or len(v) != VEL_SAMPLE_LEN:
        raise Bad("expected nil or a velocimeter sample [t_us, vlos0, vlos1, vlos2, range0, "
                  f"range1, range2, valid_mask], got {describe(v)}")
    if tuple(map(type, v)) != _VEL_TYPES:
        mask = v[7]
        if type(mask) is not int:
            raise Bad(f"velocimeter valid_mask: expected an unsigned integer, got {_got(mask)}")
        _floats_slow(v, 1, _VEL_NAMES, "velocimeter ", stop=7)
    _check_t(v[0], "velocimeter t_us")
    if not 0 <= v[7] <= VALID_MASK_MAX:
        raise Bad(f"velocimeter valid_mask {v[7]} is outside 0..{VALID_MASK_MAX} "
                  f"(one bit per beam, {VEL_BEAMS} beams)")
    if not all(map(isfinite, v)):
        _floats_slow(v, 1, _VEL_NAMES, "velocimeter ", stop=7)
    return v


def _dec_att(v: Any) -> list | None:
    if v is None:
        return None
    if type(v) is not list or len(v) != ATT_SAMPLE_LEN:
        raise Bad("expected nil or a star tracker sample [t_us, qw, qx, qy, qz, valid], "
                  f"got {describe(v)}")
    if tuple(map(type, v)) != _ATT_TYPES:
        if type(v[5]) is not bool:
            raise Bad(f"star tracker valid must be a boolean, got {_got(v[5])}")
        _floats_slow(v, 1, _ATT_NAMES, "star tracker ", stop=5)
    _check_t(v[0], "star tracker t_us")
    if not (isfinite(v[1]) and isfinite(v[2]) and isfinite(v[3]) and isfinite(v[4])):
        _floats_slow(v, 1, _ATT_NAMES, "star tracker ", stop=5)
    if not (v[1] or v[2] or v[3] or v[4]):
        raise Bad("star tracker quaternion [qw, qx, qy, qz] is all zero")
    return v


# --- HELLO contents: schemas of protocol.py (RATES_SCHEMA, CONFIG_SCHEMA)

def _number(x: Any) -> bool:
    """A finite int or float (not a bool)."""
    t = type(x)
    return (t is float and isfinite(x)) or (t is int and -2**1023 < x < 2**1023)


def _numbers(x: Any, n: int) -> bool:
    return type(x) is list and len(x) == n and all(map(_number, x))


_SCHEMA_TESTS: dict[str, Callable[[Any], bool]] = {
    "real": _number,
    "pos": lambda x: _number(x) and x > 0,
    "nonneg": lambda x: _number(x) and x >= 0,
    "unit": lambda x: _number(x) and 0 <= x <= 1,
    "time": lambda x: type(x) is int and 0 <= x <= T_US_MAX,
    "vec3": lambda x: _numbers(x, 3),
    "pos3": lambda x: _numbers(x, 3) and min(x) > 0,
    "nonneg3": lambda x: _numbers(x, 3) and min(x) >= 0,
    "dir3": lambda x: _numbers(x, 3) and any(x),
    "dirs3": lambda x: type(x) is list and len(x) == 3 and all(map(_SCHEMA_TESTS["dir3"], x)),
    "quat": lambda x: _numbers(x, 4) and any(x),
    "map": lambda x: type(x) is dict and all(type(k) is str for k in x),
}
assert set(_SCHEMA_TESTS) == set(SCHEMA_CHECKS), "a schema check without its test"


def check_schema(value: Any, schema: tuple, path: str = "") -> None:
    """Check a map against a schema of protocol.py; raise Bad naming the key path."""
    _dec_m(value)
    for key, check, required in schema:
        where = f"{path}{key}"
        if key not in value:
            if required:
                raise Bad(f"{where}: missing")
            continue
        x = value[key]
        if type(check) is tuple:
            if type(x) is not dict:
                raise Bad(f"{where}: expected a map, got {_got(x)}")
            check_schema(x, check, where + ".")
        elif not _SCHEMA_TESTS[check](x):
            raise Bad(f"{where}: expected {SCHEMA_CHECKS[check]}, got {_short(x)}")


def _short(x: Any) -> str:
    text = repr(x)
    return f"{_got(x)} {text}" if len(text) <= 60 else f"{_got(x)} {text[:57]}..."


def _dec_rates(v: Any) -> dict:
    check_schema(v, RATES_SCHEMA)
    return v


def _dec_config(v: Any) -> dict:
    check_schema(v, CONFIG_SCHEMA)
    return v


DECODERS: dict[str, Callable[[Any], Any]] = {
    "u": _dec_u, "t": _dec_t, "mode": _dec_mode, "f": _dec_f, "s": _dec_s, "m": _dec_m,
    "counts": _dec_counts, "f3": _dec_f3, "nav": _dec_nav, "imu": _dec_imu, "alt": _dec_alt,
    "vel": _dec_vel, "att": _dec_att, "rates": _dec_rates, "config": _dec_config,
}


# --- encode side: accept what callers naturally hold (tuples, numpy scalars and arrays),
# turn it into plain Python types, then apply the decode check.

def _is_numpy_bool(v: Any) -> bool:
    return getattr(getattr(v, "dtype", None), "kind", None) == "b"


def _to_int(v: Any) -> int:
    if type(v) is int:
        return v
    if isinstance(v, bool) or _is_numpy_bool(v):
        raise Bad(f"expected an integer, got a boolean {v!r}")
    try:
        return operator.index(v)
    except TypeError:
        raise Bad(f"expected an integer, got {_got(v)} {v!r}") from None


def _to_float(v: Any) -> Any:
    if type(v) is float:
        return v
    if isinstance(v, (bool, str, bytes)) or _is_numpy_bool(v):
        raise Bad(f"expected a float, got {_got(v)} {v!r}")
    try:
        return float(v)
    except (TypeError, ValueError, OverflowError):
        raise Bad(f"expected a float, got {_got(v)}") from None


def _to_bool(v: Any) -> bool:
    if type(v) is not bool and _is_numpy_bool(v):
        return bool(v)
    return v


def _seq(v: Any, n: int | None, what: str) -> Any:
    """A sized sequence (list, tuple, numpy array), not a string or a map; n elements if given."""
    if isinstance(v, (str, bytes, Mapping)) or not hasattr(v, "__len__"):
        raise Bad(f"expected {what}, got {_got(v)}")
    if n is not None and len(v) != n:
        raise Bad(f"expected {what}, got {len(v)} elements")
    return v


def _plain(v: Any, types: tuple, n: int, what: str) -> list:
    """v as a list of plain ints/floats/bools with these types (v itself when it is one)."""
    if type(v) is list and tuple(map(type, v)) == types:
        return v
    _seq(v, n, what)
    return [_to_int(x) if t is int else _to_bool(x) if t is bool else _to_float(x)
            for t, x in zip(types, v)]


def _enc_u(v: Any) -> int:
    return _dec_u(_to_int(v))


def _enc_t(v: Any) -> int:
    return _dec_t(_to_int(v))


def _enc_mode(v: Any) -> int:
    return _dec_mode(_to_int(v))


def _enc_f(v: Any) -> float:
    return _dec_f(_to_float(v))


def _enc_m(v: Any) -> dict:
    if type(v) is dict:
        return _dec_m(v)
    if not isinstance(v, Mapping):
        raise Bad(f"expected a map, got {_got(v)}")
    return _dec_m(dict(v))


def _plain_tree(v: Any) -> Any:
    """Maps, sequences and numpy values as plain dicts, lists, ints, floats and bools."""
    if isinstance(v, Mapping):
        return {key: _plain_tree(x) for key, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain_tree(x) for x in v]
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):
        return _plain_tree(v.tolist())  # numpy scalars and arrays
    return v


def _enc_rates(v: Any) -> dict:
    return _dec_rates(_plain_tree(_enc_m(v)))


def _enc_config(v: Any) -> dict:
    return _dec_config(_plain_tree(_enc_m(v)))


def _enc_counts(v: Any) -> dict:
    v = _enc_m(v)
    if not all(type(n) is int for n in v.values()):
        v = {key: _to_int(n) for key, n in v.items()}
    return _dec_counts(v)


def _enc_f3(v: Any) -> list:
    return _dec_f3(_plain(v, _F3_TYPES, 3, "an array of 3 floats"))


def _enc_nav(v: Any) -> list | None:
    if v is None:
        return None
    return _dec_nav(_plain(v, _F7_TYPES, NAV_LEN, f"nil or an array of {NAV_LEN} floats"))


def _enc_imu(v: Any) -> list:
    if type(v) is list:  # the hot path: a list of plain samples is checked as it stands
        for s in v:
            if type(s) is not list or tuple(map(type, s)) != _IMU_TYPES:
                break
        else:
            return _dec_imu(v)
    _seq(v, None, "an array of IMU samples")
    out = [_plain(s, _IMU_TYPES, IMU_SAMPLE_LEN, f"IMU sample {j} of {IMU_SAMPLE_LEN} numbers")
           for j, s in enumerate(v)]
    return _dec_imu(out)


def _enc_alt(v: Any) -> list | None:
    if v is None:
        return None
    return _dec_alt(_plain(v, _ALT_TYPES, ALT_SAMPLE_LEN,
                           "nil or an altimeter sample [t_us, range_m, valid]"))


def _enc_vel(v: Any) -> list | None:
    if v is None:
        return None
    return _dec_vel(_plain(v, _VEL_TYPES, VEL_SAMPLE_LEN,
                           f"nil or a velocimeter sample of {VEL_SAMPLE_LEN} numbers"))


def _enc_att(v: Any) -> list | None:
    if v is None:
        return None
    return _dec_att(_plain(v, _ATT_TYPES, ATT_SAMPLE_LEN,
                           "nil or a star tracker sample [t_us, qw, qx, qy, qz, valid]"))


ENCODERS: dict[str, Callable[[Any], Any]] = {
    "u": _enc_u, "t": _enc_t, "mode": _enc_mode, "f": _enc_f, "s": _dec_s, "m": _enc_m,
    "counts": _enc_counts, "f3": _enc_f3, "nav": _enc_nav, "imu": _enc_imu, "alt": _enc_alt,
    "vel": _enc_vel, "att": _enc_att, "rates": _enc_rates, "config": _enc_config,
}
