"""Host codec: messages <-> msgpack bytes, following the table in :mod:`bridge.protocol`.

One generic path: :func:`encode` takes a type id and the fields (a dict by name, or a
sequence in layout order); :func:`decode` checks a payload and returns a :class:`Message`.
Both check every field against its kind and range (:mod:`bridge.kinds`) and the role
strings (``protocol.ROLES``), so a bad message is refused at the sender too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import isfinite
from typing import Any

import msgpack

from bridge.errors import MalformedMessage, PayloadTooLarge, UnknownMessage, VersionError
from bridge.kinds import (_ALT_TYPES, _ATT_TYPES, _IMU_TYPES, _VEL_TYPES, DECODERS, ENCODERS,
                          NAV_LEN, VALID_MASK_MAX, Bad, describe)
from bridge.protocol import (COMMAND, END, FRAME, HELLO, HELLO_ACK, LAYOUTS, MAX_PAYLOAD_BYTES,
                             MODES, NAMES, PROTOCOL_VERSION, ROLES, STATUS, T_US_MAX, U32_MAX)

# A FRAME with this many IMU samples always fits MAX_PAYLOAD_BYTES (at most 64 bytes each),
# so a run needs imu_hz / frame_hz <= MAX_IMU_SAMPLES_PER_FRAME.
MAX_IMU_SAMPLES_PER_FRAME = 60
N_MODES = len(MODES)


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


# Per message type: ((field name, decoder), ...) -- built once so decode only loops.
_DECODE_PLAN = {t: tuple((name, DECODERS[kind]) for name, kind in layout)
                for t, layout in LAYOUTS.items()}
_ENCODE_PLAN = {t: tuple((name, ENCODERS[kind]) for name, kind in layout)
                for t, layout in LAYOUTS.items()}

_CLASHES = {name for layout in LAYOUTS.values() for name, _ in layout if hasattr(Message, name)}
if _CLASHES:  # a field named like a Message attribute could not be read as msg.<field>
    raise RuntimeError(f"protocol field names clash with Message attributes: {sorted(_CLASHES)}")


def _plain(obj: Any) -> Any:
    """msgpack fallback for numpy scalars and arrays inside maps."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot encode {type(obj).__name__}")


def encode(type_id: int, fields: Mapping[str, Any] | Sequence[Any]) -> bytes:
    """Encode one message: ``[PROTOCOL_VERSION, type_id, *fields]`` as msgpack bytes.

    ``fields`` is a mapping with exactly the layout's field names, or a sequence in layout
    order. Raises UnknownMessage, MalformedMessage or PayloadTooLarge.
    """
    kind = type(fields)
    if kind is list or kind is tuple:   # the hot path: a FRAME or COMMAND of plain values
        fast = _FAST.get(type_id) if type(type_id) is int else None
        out = fast(fields) if fast is not None else None
        if out is not None:
            return _pack(out)
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
        except Bad as bad:
            raise MalformedMessage(str(bad), name, field) from None
    if type_id in ROLES and out[2] != ROLES[type_id]:
        raise MalformedMessage(f'role must be "{ROLES[type_id]}", got {out[2]!r}', name, "role")
    return _pack(out)


def _pack(out: list) -> bytes:
    try:
        payload = msgpack.packb(out, use_bin_type=True, default=_plain)
    except (TypeError, ValueError, OverflowError) as error:
        raise MalformedMessage(f"cannot pack: {error}", NAMES[out[1]]) from error
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(len(payload), MAX_PAYLOAD_BYTES)
    return payload


# --- the hot path: FRAME and COMMAND whose values already are exactly what the wire carries
# (ints, finite floats, bools, in lists or tuples of the right length, in range). Each returns
# the message array encode() would build, or None for anything else, which then takes the
# general path (that converts numpy values, or names the problem). So the fast path accepts
# nothing the general one refuses, and packs the same bytes (msgpack packs a tuple as a list).

def _finite_floats(v: Any, n: int) -> bool:
    t = type(v)
    return (t is list or t is tuple) and len(v) == n and \
        tuple(map(type, v)) == _FLOATS[n] and all(map(isfinite, v))


def _fast_command(f: Sequence[Any]) -> list | None:
    if len(f) != 7:
        return None
    seq, throttle, torque, mode, compute_us, nav, flags = f
    if type(seq) is int and 0 <= seq <= U32_MAX and type(throttle) is float \
            and throttle - throttle == 0.0 and type(mode) is int and 0 <= mode < N_MODES \
            and type(compute_us) is int and 0 <= compute_us <= U32_MAX \
            and type(flags) is int and 0 <= flags <= U32_MAX \
            and _finite_floats(torque, 3) and (nav is None or _finite_floats(nav, NAV_LEN)):
        return [PROTOCOL_VERSION, COMMAND, seq, throttle, list(torque), mode, compute_us,
                nav if nav is None else list(nav), flags]
    return None


def _good_att(att: Any) -> bool:
    """A star tracker sample exactly as the wire carries it: [t_us, 4 finite floats not all
    zero, bool] (a list or tuple of those types)."""
    t = type(att)
    return (t is list or t is tuple) and tuple(map(type, att)) == _ATT_TYPES \
        and 0 <= att[0] <= T_US_MAX and att[1] - att[1] == 0.0 and att[2] - att[2] == 0.0 \
        and att[3] - att[3] == 0.0 and att[4] - att[4] == 0.0 \
        and (att[1] != 0.0 or att[2] != 0.0 or att[3] != 0.0 or att[4] != 0.0)


def _fast_frame(f: Sequence[Any]) -> list | None:
    if len(f) != 6:
        return None
    seq, t_us, imu, alt, vel, att = f
    if not (type(seq) is int and 0 <= seq <= U32_MAX and type(t_us) is int
            and 0 <= t_us <= T_US_MAX and type(imu) is list):
        return None
    last = -1
    for s in imu:   # [t_us, 6 finite floats], times strictly increasing
        if type(s) is not list or tuple(map(type, s)) != _IMU_TYPES or \
                not last < s[0] <= T_US_MAX or not all(map(isfinite, s)):
            return None
        last = s[0]
    if alt is not None:   # [t_us, finite float, bool]
        t = type(alt)
        if not ((t is list or t is tuple) and len(alt) == 3 and type(alt[0]) is int
                and 0 <= alt[0] <= T_US_MAX and type(alt[1]) is float and isfinite(alt[1])
                and type(alt[2]) is bool):
            return None
        alt = list(alt)
    if vel is not None:   # [t_us, 6 finite floats, valid mask]
        t = type(vel)
        if not ((t is list or t is tuple) and tuple(map(type, vel)) == _VEL_TYPES
                and 0 <= vel[0] <= T_US_MAX and 0 <= vel[7] <= VALID_MASK_MAX
                and all(map(isfinite, vel))):
            return None
        vel = list(vel)
    if att is not None:   # [t_us, 4 finite floats not all zero, bool]
        if not _good_att(att):
            return None
        att = list(att)
    return [PROTOCOL_VERSION, FRAME, seq, t_us, imu, alt, vel, att]


_FLOATS = {3: (float,) * 3, NAV_LEN: (float,) * NAV_LEN}
_FAST = {COMMAND: _fast_command, FRAME: _fast_frame}


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
    if type(obj) is list and len(obj) > 1 and obj[0] == PROTOCOL_VERSION \
            and type(obj[0]) is int:   # the hot path: a FRAME or COMMAND as the peer sends it
        type_id = obj[1]
        fast = _FAST_DECODE.get(type_id) if type(type_id) is int else None
        fields = fast(obj) if fast is not None else None
        if fields is not None:
            return Message(type_id, fields)
    return _decode_general(obj)


def _decode_general(obj: Any) -> Message:
    """The general path of :func:`decode` from the unpacked object: every field through its
    kind's decoder, each problem named."""
    if type(obj) is not list or len(obj) < 2:
        raise MalformedMessage(f"expected an array [version, type_id, ...], got {describe(obj)}")
    version, type_id = obj[0], obj[1]
    if version != PROTOCOL_VERSION or type(version) is not int:
        raise VersionError(version, PROTOCOL_VERSION, _end_reason(obj))
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
    except Bad as bad:
        raise MalformedMessage(str(bad), NAMES[type_id], plan[k - 2][0]) from None
    if type_id in ROLES and fields["role"] != ROLES[type_id]:
        raise MalformedMessage(f'role must be "{ROLES[type_id]}", got {fields["role"]!r}',
                               NAMES[type_id], "role")
    return Message(type_id, fields)


# --- the hot path of decode: a FRAME or COMMAND whose values are exactly what the wire
# carries (as msgpack delivers them: ints, finite floats, bools, lists), in range. Each returns
# the fields the general path would return -- the same objects, unchanged, as the general
# path returns them for such values -- or None for anything else, which then takes the
# general path (that converts integers where floats belong, or names the problem). So the
# fast path accepts nothing the general one refuses (tests/test_codec_fast.py).

def _decode_frame(obj: list) -> dict | None:
    if len(obj) != 8:
        return None
    seq, t_us, imu, alt, vel, att = obj[2], obj[3], obj[4], obj[5], obj[6], obj[7]
    if not (type(seq) is int and 0 <= seq <= U32_MAX and type(t_us) is int
            and 0 <= t_us <= T_US_MAX and type(imu) is list):
        return None
    last = -1
    for s in imu:   # [t_us, 6 finite floats], times strictly increasing
        if type(s) is not list or tuple(map(type, s)) != _IMU_TYPES or \
                not last < s[0] <= T_US_MAX or not all(map(isfinite, s)):
            return None
        last = s[0]
    if alt is not None and not (type(alt) is list and tuple(map(type, alt)) == _ALT_TYPES
                                and 0 <= alt[0] <= T_US_MAX and isfinite(alt[1])):
        return None
    if vel is not None and not (type(vel) is list and tuple(map(type, vel)) == _VEL_TYPES
                                and 0 <= vel[0] <= T_US_MAX and 0 <= vel[7] <= VALID_MASK_MAX
                                and all(map(isfinite, vel))):
        return None
    if att is not None and not (type(att) is list and _good_att(att)):
        return None
    return {"seq": seq, "t_us": t_us, "imu": imu, "alt": alt, "vel": vel, "att": att}


def _decode_command(obj: list) -> dict | None:
    if len(obj) != 9:
        return None
    seq, throttle, torque, mode, compute_us, nav, flags = obj[2:]
    if type(seq) is int and 0 <= seq <= U32_MAX and type(throttle) is float \
            and throttle - throttle == 0.0 and type(mode) is int and 0 <= mode < N_MODES \
            and type(compute_us) is int and 0 <= compute_us <= U32_MAX \
            and type(flags) is int and 0 <= flags <= U32_MAX and type(torque) is list \
            and _finite_floats(torque, 3) and (nav is None or type(nav) is list
                                               and _finite_floats(nav, NAV_LEN)):
        return {"seq": seq, "throttle": throttle, "torque_nm": torque, "mode": mode,
                "compute_us": compute_us, "nav": nav, "flags": flags}
    return None


_FAST_DECODE = {FRAME: _decode_frame, COMMAND: _decode_command}


def _end_reason(obj: list) -> str | None:
    """The reason of an END of any protocol version (its layout never changes), else None."""
    if len(obj) == 4 and obj[1] == END and type(obj[1]) is int and type(obj[3]) is str:
        return obj[3]
    return None


# --- convenience constructors: thin wrappers over encode(), one per message type.

def encode_hello(scenario: str, rates: Mapping[str, float], config: Mapping[str, Any],
                 role: str = "plant") -> bytes:
    """HELLO, plant -> fsw."""
    return encode(HELLO, {"role": role, "scenario": scenario, "rates": rates, "config": config})


def encode_hello_ack(software: str, runtime: str, role: str = "fsw") -> bytes:
    """HELLO_ACK, fsw -> plant."""
    return encode(HELLO_ACK, {"role": role, "software": software, "runtime": runtime})


def encode_frame(seq: int, t_us: int, imu: Sequence[Sequence[float]],
                 alt: Sequence[Any] | None, vel: Sequence[Any] | None = None,
                 att: Sequence[Any] | None = None) -> bytes:
    """FRAME, plant -> fsw: IMU samples since the last frame, the latest altimeter,
    velocimeter and star tracker samples."""
    return encode(FRAME, {"seq": seq, "t_us": t_us, "imu": imu, "alt": alt, "vel": vel,
                          "att": att})


def encode_command(seq: int, throttle: float, torque_nm: Sequence[float], mode: int,
                   compute_us: int, nav: Sequence[float] | None = None, flags: int = 0) -> bytes:
    """COMMAND, fsw -> plant, answering frame ``seq``."""
    return encode(COMMAND, {"seq": seq, "throttle": throttle, "torque_nm": torque_nm, "mode": mode,
                            "compute_us": compute_us, "nav": nav, "flags": flags})


def encode_end(seq: int, reason: str) -> bytes:
    """END, either way: end of the run."""
    return encode(END, {"seq": seq, "reason": reason})


def encode_status(seq: int, stats: Mapping[str, int]) -> bytes:
    """STATUS, either way: the sender's link counters."""
    return encode(STATUS, {"seq": seq, "stats": stats})
