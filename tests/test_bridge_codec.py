"""Codec: round trips for every message type, and every way a payload can be wrong."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # repo root, not installed

import msgpack
import numpy as np
import pytest

from bridge import protocol as p
from bridge.codec import (MAX_IMU_SAMPLES_PER_FRAME, Message, decode, encode, encode_command, encode_end, encode_frame,
                          encode_hello, encode_hello_ack)
from bridge.errors import (MalformedMessage, PayloadTooLarge, ProtocolError, UnknownMessage,
                           VersionError)

EXAMPLES = {
    p.HELLO: {
        "role": "plant",
        "scenario": "nominal",
        "rates": {"frame_hz": 50.0, "imu_hz": 200.0, "altimeter_hz": 10.0, "physics_hz": 200.0},
        "config": {"vehicle": {"dry_mass_kg": 520.0, "inertia_kgm2": [700.0, 700.0, 500.0]},
                   "target_r_m": [1737400.0, 0.0, 0.0], "site_radius_m": 1737400.0,
                   "nav_init": {"t_us": 0, "r_m": [1.0, 2.0, 3.0], "v_mps": [0.0, 1692.0, 0.0],
                                "q": [1.0, 0.0, 0.0, 0.0]},
                   "imu_hz": 200.0, "fsw": {}},
    },
    p.HELLO_ACK: {"role": "fsw", "software": "fsil-fsw 0.1.0", "runtime": "cpython 3.11.7"},
    p.FRAME: {"seq": 7, "t_us": 140000,
              "imu": [[135000, 0.01, -0.002, 0.0081, 1e-6, 0.0, -2e-6],
                      [140000, 0.011, -0.002, 0.0081, 1e-6, 0.0, -2e-6]],
              "alt": [100000, 15012.25, True]},
    p.COMMAND: {"seq": 7, "throttle": 0.65, "torque_nm": [1.5, -2.0, 0.0], "mode": 2,
                "compute_us": 850, "nav": [1737400.0, 10.0, -5.0, -1.0, 1692.0, 0.5, 15000.0],
                "flags": p.FLAG_ALT_USED | p.FLAG_ALT_HEALTHY},
    p.END: {"seq": 1200, "reason": "touchdown"},
}


def raw(*items) -> bytes:
    """A payload packed by hand, bypassing encode()'s checks."""
    return msgpack.packb(list(items), use_bin_type=True)


def test_examples_cover_every_message_type():
    assert set(EXAMPLES) == set(p.LAYOUTS)


@pytest.mark.parametrize("type_id", sorted(p.LAYOUTS), ids=lambda t: p.NAMES[t])
def test_round_trip(type_id):
    fields = EXAMPLES[type_id]
    payload = encode(type_id, fields)
    msg = decode(payload)
    assert msg.type_id == type_id and msg.name == p.NAMES[type_id]
    assert msg.fields == fields
    assert list(msg.fields) == [name for name, _ in p.LAYOUTS[type_id]]
    assert msg == Message(type_id, fields)
    # the sequence form gives the same bytes, and the envelope is [version, type_id, ...]
    assert encode(type_id, [fields[name] for name, _ in p.LAYOUTS[type_id]]) == payload
    assert msgpack.unpackb(payload)[:2] == [p.PROTOCOL_VERSION, type_id]


def test_attribute_and_item_access():
    msg = decode(encode(p.END, EXAMPLES[p.END]))
    assert msg.seq == msg["seq"] == 1200
    assert msg.reason == "touchdown"
    with pytest.raises(AttributeError, match="no field 'throttle'"):
        msg.throttle


def test_convenience_constructors_match_generic_encode():
    h, a, f, c, e = (EXAMPLES[t] for t in (p.HELLO, p.HELLO_ACK, p.FRAME, p.COMMAND, p.END))
    assert encode_hello(h["scenario"], h["rates"], h["config"]) == encode(p.HELLO, h)
    assert encode_hello_ack(a["software"], a["runtime"]) == encode(p.HELLO_ACK, a)
    assert encode_frame(f["seq"], f["t_us"], f["imu"], f["alt"]) == encode(p.FRAME, f)
    assert encode_command(**c) == encode(p.COMMAND, c)
    assert encode_end(e["seq"], e["reason"]) == encode(p.END, e)


def test_frame_with_no_samples_and_no_altimeter():
    msg = decode(encode_frame(0, 0, [], None))
    assert msg.imu == [] and msg.alt is None


def test_largest_frame_fits():
    t_us = 2**63 - 1  # the widest integer encoding
    sample = [t_us, -1.5e300, 1e-300, 2.0, 3.0, 4.0, 5.0]
    fields = {"seq": 2**64 - 1, "t_us": t_us, "imu": [sample] * MAX_IMU_SAMPLES_PER_FRAME,
              "alt": [t_us, 1e300, True]}
    payload = encode(p.FRAME, fields)
    assert len(payload) <= p.MAX_PAYLOAD_BYTES
    assert decode(payload).fields == fields
    with pytest.raises(PayloadTooLarge):
        encode(p.FRAME, dict(fields, imu=[sample] * 70))


def test_floats_go_out_as_float64():
    payload = encode_command(1, 1, [0, 0, 0], 0, 0, [0] * 7)  # ints given for floats
    assert b"\xca" not in payload  # no float32 marker
    assert payload.count(b"\xcb") == 1 + 3 + 7  # throttle, torque, nav
    msg = decode(payload)
    assert type(msg.throttle) is float and all(type(x) is float for x in msg.nav)


def test_int_accepted_where_float_expected_on_the_wire():
    payload = raw(1, p.COMMAND, 3, 1, [0, 1, 2], 2, 10, [1, 2, 3, 4, 5, 6, 7], 0)
    msg = decode(payload)
    assert msg.throttle == 1.0 and type(msg.throttle) is float
    assert msg.torque_nm == [0.0, 1.0, 2.0] and all(type(x) is float for x in msg.torque_nm)
    frame = decode(raw(1, p.FRAME, 0, 5, [[5, 0, 0, 0, 0, 0, 1]], [5, 100, False]))
    assert frame.imu == [[5, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]] and type(frame.alt[1]) is float
    assert type(frame.imu[0][0]) is int  # t_us stays an integer


def test_encode_accepts_numpy_values():
    payload = encode_command(np.uint32(3), np.float32(0.5), np.array([1.0, 2.0, 3.0]), np.int64(2),
                             np.int64(100), np.zeros(7), np.uint8(1))
    assert decode(payload).fields == {"seq": 3, "throttle": 0.5, "torque_nm": [1.0, 2.0, 3.0],
                                      "mode": 2, "compute_us": 100, "nav": [0.0] * 7, "flags": 1}
    hello = dict(EXAMPLES[p.HELLO], config={"target_r_m": np.array([1.0, 2.0, 3.0])})
    assert decode(encode(p.HELLO, hello)).config == {"target_r_m": [1.0, 2.0, 3.0]}
    frame = encode_frame(1, 2, [[1, *np.ones(6)]], (1, np.float64(2.5), np.bool_(True)))
    assert decode(frame).alt == [1, 2.5, True]


# --- decode refuses bad payloads


def test_truncated_payload_is_malformed_at_every_length():
    payload = encode(p.FRAME, EXAMPLES[p.FRAME])
    for n in range(len(payload)):
        with pytest.raises(MalformedMessage):
            decode(payload[:n])


def test_trailing_bytes_are_malformed():
    with pytest.raises(MalformedMessage, match="complete"):
        decode(encode(p.END, EXAMPLES[p.END]) + b"\x00")


def test_oversize_payload():
    with pytest.raises(PayloadTooLarge) as info:
        decode(b"\x00" * (p.MAX_PAYLOAD_BYTES + 1))
    assert info.value.size_bytes == p.MAX_PAYLOAD_BYTES + 1
    assert info.value.limit_bytes == p.MAX_PAYLOAD_BYTES
    with pytest.raises(PayloadTooLarge):
        encode_end(0, "x" * p.MAX_PAYLOAD_BYTES)


@pytest.mark.parametrize("payload", [b"", b"\xc1", b"\xff\xfe\xfd\x00garbage", b"\xa2\xff\xfe",
                                     raw(1), raw(), msgpack.packb({"a": 1}), msgpack.packb(3)],
                         ids=["empty", "reserved", "garbage", "bad-utf8", "short-array",
                              "empty-array", "map", "int"])
def test_garbage_is_malformed(payload):
    with pytest.raises(MalformedMessage):
        decode(payload)


def test_random_bytes_and_bit_flips_only_raise_protocol_errors():
    rng = np.random.default_rng(1)
    for _ in range(300):
        try:
            decode(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes())
        except ProtocolError:
            pass
    payload = bytearray(encode(p.FRAME, EXAMPLES[p.FRAME]))
    for k in range(len(payload)):
        for bit in range(8):
            payload[k] ^= 1 << bit
            try:
                decode(bytes(payload))
            except ProtocolError:
                pass
            payload[k] ^= 1 << bit


def test_wrong_version_names_both_versions():
    with pytest.raises(VersionError) as info:
        decode(raw(2, p.END, 0, "x"))
    assert (info.value.got, info.value.expected) == (2, p.PROTOCOL_VERSION)
    assert "2" in str(info.value) and str(p.PROTOCOL_VERSION) in str(info.value)
    with pytest.raises(VersionError):  # the version is checked before anything else
        decode(raw(99, 99))
    with pytest.raises(VersionError):
        decode(raw(True, p.END, 0, "x"))


@pytest.mark.parametrize("type_id", [0, 6, 99, -1, True, 1.0, "end", None])
def test_unknown_type(type_id):
    with pytest.raises(UnknownMessage):
        decode(raw(1, type_id, 0, "x"))
    with pytest.raises(UnknownMessage):
        encode(type_id, [0, "x"])


@pytest.mark.parametrize("fields", [[0], [0, "x", "y"], []])
def test_wrong_field_count(fields):
    with pytest.raises(MalformedMessage, match="end message.*expected 2 fields"):
        decode(raw(1, p.END, *fields))
    with pytest.raises(MalformedMessage, match="expected 2 fields"):
        encode(p.END, fields)


def test_encode_names_missing_and_unknown_fields():
    with pytest.raises(MalformedMessage, match="missing.*reason"):
        encode(p.END, {"seq": 1})
    with pytest.raises(MalformedMessage, match="unknown.*raeson"):
        encode(p.END, {"seq": 1, "reason": "x", "raeson": "y"})


def _good(type_id):
    return [EXAMPLES[type_id][name] for name, _ in p.LAYOUTS[type_id]]


BAD_FIELDS = [  # (type, field, bad value)
    (p.FRAME, "seq", -1),
    (p.FRAME, "seq", 1.0),
    (p.FRAME, "t_us", "0"),
    (p.FRAME, "imu", [[1, 0.0, 0.0, 0.0, 0.0, 0.0]]),            # 6 numbers
    (p.FRAME, "imu", [[1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]),     # float time
    (p.FRAME, "imu", [[1, 0.0, 0.0, "x", 0.0, 0.0, 0.0]]),
    (p.FRAME, "imu", {"t": 1}),
    (p.FRAME, "alt", [1, 100.0]),
    (p.FRAME, "alt", [1, 100.0, 1]),                             # valid must be a boolean
    (p.FRAME, "alt", [1, None, True]),
    (p.COMMAND, "throttle", "0.5"),
    (p.COMMAND, "throttle", None),
    (p.COMMAND, "torque_nm", [0.0, 0.0]),
    (p.COMMAND, "nav", [0.0] * 8),
    (p.COMMAND, "nav", 0.0),
    (p.HELLO, "rates", [50.0]),
    (p.HELLO, "role", 1),
    (p.HELLO_ACK, "software", b"bytes"),
]


@pytest.mark.parametrize("type_id, field, value", BAD_FIELDS,
                         ids=[f"{p.NAMES[t]}.{f}={v!r}"[:40] for t, f, v in BAD_FIELDS])
def test_wrong_field_kind_names_message_and_field(type_id, field, value):
    fields = _good(type_id)
    fields[[name for name, _ in p.LAYOUTS[type_id]].index(field)] = value
    with pytest.raises(MalformedMessage) as info:
        decode(raw(1, type_id, *fields))
    assert (info.value.message, info.value.field) == (p.NAMES[type_id], field)
    assert p.NAMES[type_id] in str(info.value) and f'"{field}"' in str(info.value)
    with pytest.raises(MalformedMessage):
        encode(type_id, fields)


@pytest.mark.parametrize("field", ["seq", "mode", "compute_us", "flags", "throttle"])
def test_bool_is_not_a_number(field):
    fields = dict(EXAMPLES[p.COMMAND], **{field: True})
    with pytest.raises(MalformedMessage, match=field):
        decode(raw(1, p.COMMAND, *fields.values()))
    with pytest.raises(MalformedMessage, match=field):
        encode(p.COMMAND, fields)


def test_bool_is_not_a_signed_int_either():
    with pytest.raises(MalformedMessage, match="t_us"):
        decode(raw(1, p.FRAME, 0, False, [], None))


def test_map_keys_must_be_strings():
    fields = _good(p.HELLO)
    fields[2] = {b"frame_hz": 50.0}
    with pytest.raises(MalformedMessage, match="rates"):
        decode(raw(1, p.HELLO, *fields))
