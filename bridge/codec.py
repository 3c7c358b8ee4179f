"""Host codec: messages <-> msgpack bytes, following the table in :mod:`bridge.protocol`.

One generic path: :func:`encode` takes a type id and the fields (a dict by name, or a
sequence in layout order); :func:`decode` checks a payload and returns a :class:`Message`.
Both check every field against its kind, so a bad message is refused at the sender too.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgpack

from bridge.errors import MalformedMessage, PayloadTooLarge, UnknownMessage, VersionError
from bridge.protocol import (COMMAND, END, FRAME, HELLO, HELLO_ACK, LAYOUTS, MAX_PAYLOAD_BYTES,
                             NAMES, PROTOCOL_VERSION)

IMU_SAMPLE_LEN = 7   # [t_us, dvx, dvy, dvz, dax, day, daz]
ALT_SAMPLE_LEN = 3   # [t_us, range_m, valid]


class Message:
    """A decoded message: ``type_id``, ``name`` and ``fields`` (dict by field name).

    Fields also read as attributes (``msg.seq``) or items (``msg["seq"]``).
    """

    __slots__ = ("type_id", "fields")

    def __init__(self, type_id: int, fields: dict[str, Any]) -> None:
        self.type_id = type_id
        self.fields = fields

    @property
    def name(self) -> str:
        """The message name from ``protocol.NAMES``, e.g. ``"frame"``."""
        return NAMES[self.type_id]

    def __getattr__(self, field: str) -> Any:
        if field == "fields" or field.startswith("__"):
            raise AttributeError(field)
        try:
            return self.fields[field]
        except KeyError:
            raise AttributeError(f"{self.name} message has no field {field!r}") from None

    def __getitem__(self, field: str) -> Any:
        return self.fields[field]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.type_id == other.type_id and self.fields == other.fields

    def __repr__(self) -> str:
        return f"Message({self.name}, {self.fields!r})"


class _Bad(Exception):
    """A field value of the wrong kind; the detail text names what was wrong."""


def _got(value: Any) -> str:
    return type(value).__name__


# --- decode side: msgpack gives plain Python types, so exact type checks are cheap and exact.

def _dec_u(v: Any) -> int:
    if type(v) is not int or v < 0:
        raise _Bad(f"expected an unsigned integer, got {_got(v)} {v!r}")
    return v


def _dec_i(v: Any) -> int:
    if type(v) is not int:
        raise _Bad(f"expected an integer, got {_got(v)} {v!r}")
    return v


def _dec_f(v: Any) -> float:
    if type(v) is float:
        return v
    if type(v) is int:
        return float(v)
    raise _Bad(f"expected a float, got {_got(v)} {v!r}")


def _dec_s(v: Any) -> str:
    if type(v) is not str:
        raise _Bad(f"expected a string, got {_got(v)}")
    return v


def _dec_b(v: Any) -> bool:
    if type(v) is not bool:
        raise _Bad(f"expected a boolean, got {_got(v)} {v!r}")
    return v


def _dec_m(v: Any) -> dict:
    if type(v) is not dict:
        raise _Bad(f"expected a map, got {_got(v)}")
    for key in v:
        if type(key) is not str:
            raise _Bad(f"map key {key!r} is not a string")
    return v


def _dec_floats_into(v: list, start: int, what: str) -> None:
    """Check v[start:] are floats, turning integers into floats in place."""
    for k in range(start, len(v)):
        x = v[k]
        if type(x) is not float:
            if type(x) is int:
                v[k] = float(x)
            else:
                raise _Bad(f"{what} element {k}: expected a float, got {_got(x)} {x!r}")


def _dec_fn(n: int) -> Callable[[Any], list]:
    def check(v: Any) -> list:
        if type(v) is not list or len(v) != n:
            raise _Bad(f"expected an array of {n} floats, got {_describe(v)}")
        _dec_floats_into(v, 0, "array")
        return v
    return check


def _dec_imu(v: Any) -> list:
    if type(v) is not list:
        raise _Bad(f"expected an array of IMU samples, got {_got(v)}")
    for j, s in enumerate(v):
        if type(s) is not list or len(s) != IMU_SAMPLE_LEN:
            raise _Bad(f"IMU sample {j}: expected an array of {IMU_SAMPLE_LEN}, got {_describe(s)}")
        if type(s[0]) is not int:
            raise _Bad(f"IMU sample {j}: t_us must be an integer, got {_got(s[0])}")
        _dec_floats_into(s, 1, f"IMU sample {j}")
    return v


def _dec_alt(v: Any) -> list | None:
    if v is None:
        return None
    if type(v) is not list or len(v) != ALT_SAMPLE_LEN:
        raise _Bad(f"expected nil or an altimeter sample [t_us, range_m, valid], got {_describe(v)}")
    if type(v[0]) is not int:
        raise _Bad(f"altimeter t_us must be an integer, got {_got(v[0])}")
    v[1] = _dec_f(v[1])
    if type(v[2]) is not bool:
        raise _Bad(f"altimeter valid must be a boolean, got {_got(v[2])}")
    return v


def _describe(v: Any) -> str:
    return f"array of {len(v)}" if isinstance(v, (list, tuple)) else _got(v)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "u": _dec_u, "i": _dec_i, "f": _dec_f, "s": _dec_s, "b": _dec_b, "m": _dec_m,
    "f3": _dec_fn(3), "f7": _dec_fn(7), "imu": _dec_imu, "alt": _dec_alt,
}


# --- encode side: accept what callers naturally hold (tuples, numpy scalars and arrays)
# and turn it into plain Python types of the right kind.

def _is_numpy_bool(v: Any) -> bool:
    return getattr(getattr(v, "dtype", None), "kind", None) == "b"


def _enc_int(v: Any, unsigned: bool) -> int:
    if isinstance(v, bool) or _is_numpy_bool(v):
        raise _Bad(f"expected an integer, got a boolean {v!r}")
    try:
        n = operator.index(v)
    except TypeError:
        raise _Bad(f"expected an integer, got {_got(v)} {v!r}") from None
    if unsigned and n < 0:
        raise _Bad(f"expected an unsigned integer, got {n}")
    return n


def _enc_u(v: Any) -> int:
    return _enc_int(v, unsigned=True)


def _enc_i(v: Any) -> int:
    return _enc_int(v, unsigned=False)


def _enc_f(v: Any) -> float:
    if type(v) is float:
        return v
    if isinstance(v, (bool, str, bytes)) or _is_numpy_bool(v):
        raise _Bad(f"expected a float, got {_got(v)} {v!r}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise _Bad(f"expected a float, got {_got(v)}") from None


def _enc_b(v: Any) -> bool:
    if type(v) is not bool and _is_numpy_bool(v):
        v = bool(v)
    return _dec_b(v)


def _enc_m(v: Any) -> dict:
    if not isinstance(v, Mapping):
        raise _Bad(f"expected a map, got {_got(v)}")
    return _dec_m(dict(v))


def _enc_list(v: Any, what: str) -> Sequence:
    """A sized sequence (list, tuple, numpy array), not a string or a map."""
    if isinstance(v, (str, bytes, Mapping)) or not hasattr(v, "__len__"):
        raise _Bad(f"expected {what}, got {_got(v)}")
    return v


def _enc_seq(v: Any, n: int, what: str) -> Sequence:
    """As _enc_list, with exactly n elements."""
    if len(_enc_list(v, what)) != n:
        raise _Bad(f"expected {what}, got {len(v)} elements")
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


_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "u": _enc_u, "i": _enc_i, "f": _enc_f, "s": _dec_s, "b": _enc_b, "m": _enc_m,
    "f3": _enc_fn(3), "f7": _enc_fn(7), "imu": _enc_imu, "alt": _enc_alt,
}

# Per message type: ((field name, decoder), ...) -- built once so decode only loops.
_DECODE_PLAN = {t: tuple((name, _DECODERS[kind]) for name, kind in layout)
                for t, layout in LAYOUTS.items()}
_ENCODE_PLAN = {t: tuple((name, _ENCODERS[kind]) for name, kind in layout)
                for t, layout in LAYOUTS.items()}

for _layout in LAYOUTS.values():  # field names must not hide Message attributes
    for _name, _kind in _layout:
        assert not hasattr(Message, _name), f"field name {_name!r} clashes with Message"


def _plain(obj: Any) -> Any:
    """msgpack fallback for numpy scalars and arrays inside maps."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot encode {_got(obj)}")


def encode(type_id: int, fields: Mapping[str, Any] | Sequence[Any]) -> bytes:
    """Encode one message: ``[PROTOCOL_VERSION, type_id, *fields]`` as msgpack bytes.

    ``fields`` is a mapping with exactly the layout's field names, or a sequence in layout
    order. Raises UnknownMessage, MalformedMessage or PayloadTooLarge.
    """
    plan = _ENCODE_PLAN.get(type_id) if type(type_id) is int else None
    if plan is None:
        raise UnknownMessage(type_id)
    name = NAMES[type_id]
    if isinstance(fields, Mapping):
        extra = set(fields) - {field for field, _ in plan}
        if extra:
            raise MalformedMessage(f"unknown field(s) {sorted(extra)}", name)
        missing = [field for field, _ in plan if field not in fields]
        if missing:
            raise MalformedMessage(f"missing field(s) {missing}", name)
        values = [fields[field] for field, _ in plan]
    else:
        values = list(fields)
        if len(values) != len(plan):
            raise MalformedMessage(f"expected {len(plan)} fields, got {len(values)}", name)
    out: list[Any] = [PROTOCOL_VERSION, type_id]
    for (field, convert), value in zip(plan, values):
        try:
            out.append(convert(value))
        except _Bad as bad:
            raise MalformedMessage(str(bad), name, field) from None
    try:
        payload = msgpack.packb(out, use_bin_type=True, default=_plain)
    except (TypeError, ValueError, OverflowError) as error:
        raise MalformedMessage(f"cannot pack: {error}", name) from error
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(len(payload), MAX_PAYLOAD_BYTES)
    return payload


def decode(payload: bytes) -> Message:
    """Check and decode one payload into a :class:`Message`.

    Raises PayloadTooLarge, MalformedMessage, VersionError or UnknownMessage.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(len(payload), MAX_PAYLOAD_BYTES)
    try:
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=True, use_list=True,
                              max_str_len=MAX_PAYLOAD_BYTES, max_bin_len=MAX_PAYLOAD_BYTES,
                              max_array_len=MAX_PAYLOAD_BYTES, max_map_len=MAX_PAYLOAD_BYTES,
                              max_ext_len=MAX_PAYLOAD_BYTES)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise MalformedMessage(f"not one complete msgpack object ({error})") from None
    if type(obj) is not list or len(obj) < 2:
        raise MalformedMessage(f"expected an array [version, type_id, ...], got {_describe(obj)}")
    version, type_id = obj[0], obj[1]
    if version != PROTOCOL_VERSION or type(version) is not int:
        raise VersionError(version, PROTOCOL_VERSION)
    plan = _DECODE_PLAN.get(type_id) if type(type_id) is int else None
    if plan is None:
        raise UnknownMessage(type_id)
    if len(obj) - 2 != len(plan):
        raise MalformedMessage(f"expected {len(plan)} fields, got {len(obj) - 2}", NAMES[type_id])
    fields = {}
    k = 2
    try:
        for name, check in plan:
            fields[name] = check(obj[k])
            k += 1
    except _Bad as bad:
        raise MalformedMessage(str(bad), NAMES[type_id], plan[k - 2][0]) from None
    return Message(type_id, fields)


# --- convenience constructors: thin wrappers over encode(), one per message type.

def encode_hello(scenario: str, rates: Mapping[str, float], config: Mapping[str, Any],
                 role: str = "plant") -> bytes:
    """HELLO, plant -> fsw."""
    return encode(HELLO, {"role": role, "scenario": scenario, "rates": rates, "config": config})


def encode_hello_ack(software: str, runtime: str, role: str = "fsw") -> bytes:
    """HELLO_ACK, fsw -> plant."""
    return encode(HELLO_ACK, {"role": role, "software": software, "runtime": runtime})


def encode_frame(seq: int, t_us: int, imu: Sequence[Sequence[float]],
                 alt: Sequence[Any] | None) -> bytes:
    """FRAME, plant -> fsw: IMU samples since the last frame and the latest altimeter sample."""
    return encode(FRAME, {"seq": seq, "t_us": t_us, "imu": imu, "alt": alt})


def encode_command(seq: int, throttle: float, torque_nm: Sequence[float], mode: int,
                   compute_us: int, nav: Sequence[float], flags: int = 0) -> bytes:
    """COMMAND, fsw -> plant, answering frame ``seq``."""
    return encode(COMMAND, {"seq": seq, "throttle": throttle, "torque_nm": torque_nm, "mode": mode,
                            "compute_us": compute_us, "nav": nav, "flags": flags})


def encode_end(seq: int, reason: str) -> bytes:
    """END, either way: orderly end of the run."""
    return encode(END, {"seq": seq, "reason": reason})
