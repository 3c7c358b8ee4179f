"""Codec: round trips for every message type, and every way a payload can be wrong."""

import copy
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # repo root, not installed

import msgpack
import numpy as np
import pytest

from bridge import protocol as p
from bridge.codec import (MAX_IMU_SAMPLES_PER_FRAME, Message, decode, encode, encode_command,
                          encode_end, encode_frame, encode_hello, encode_hello_ack, encode_status)
from bridge.errors import (MalformedMessage, PayloadTooLarge, ProtocolError, UnknownMessage,
                           VersionError)

EXAMPLES = {
    p.HELLO: {
        "role": "plant",
        "scenario": "nominal",
        "rates": {"frame_hz": 50.0, "imu_hz": 200.0, "altimeter_hz": 10.0, "physics_hz": 200.0},
        "config": {
            "vehicle": {"dry_mass_kg": 520.0, "propellant_kg": 300.0, "max_thrust_n": 4000.0,
                        "min_throttle": 0.1, "isp_s": 310.0, "throttle_time_constant_s": 0.05,
                        "inertia_kgm2": [700.0, 700.0, 500.0], "max_torque_nm": [40.0, 40.0, 20.0]},
            "site": {"up": [1.0, 0.0, 0.0], "east": [0.0, 1.0, 0.0], "radius_m": 1737400.0},
            "nav_init": {"t_us": 0, "r_m": [1737900.0, 2.0, 3.0], "v_mps": [0.0, 1692.0, 0.0],
                         "q": [1.0, 0.0, 0.0, 0.0], "pos_sigma_m": 10.0, "vel_sigma_mps": 0.1},
            "altimeter": {"boresight_body": [0.0, 0.0, 1.0], "noise_m": 0.1, "noise_fraction": 0.0},
            "ignition_t_us": 0, "imu_hz": 200.0, "fsw": {}},
    },
    p.HELLO_ACK: {"role": "fsw", "software": "fsil-fsw 0.1.0", "runtime": "cpython 3.11.7"},
    p.FRAME: {"seq": 7, "t_us": 140000,
              "imu": [[135000, 0.01, -0.002, 0.0081, 1e-6, 0.0, -2e-6],
                      [140000, 0.011, -0.002, 0.0081, 1e-6, 0.0, -2e-6]],
              "alt": [100000, 15012.25, True],
              "vel": [120000, -1.25, -1.5, -1.375, 1700.5, 1690.25, 1720.0, 5],
              "att": [40000, 0.5, -0.5, 0.5, 0.5, True]},
    p.COMMAND: {"seq": 7, "throttle": 0.65, "torque_nm": [1.5, -2.0, 0.0], "mode": 2,
                "compute_us": 850, "nav": [1737400.0, 10.0, -5.0, -1.0, 1692.0, 0.5, 15000.0],
                "flags": p.FLAG_ALT_USED | p.FLAG_ALT_HEALTHY},
    p.END: {"seq": 1200, "reason": "touchdown"},
    p.STATUS: {"seq": 1199, "stats": {"frames_received": 1200, "crc_errors": 3}},
}
V = p.PROTOCOL_VERSION


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
    h, a, f, c, e, st = (EXAMPLES[t] for t in (p.HELLO, p.HELLO_ACK, p.FRAME, p.COMMAND, p.END,
                                               p.STATUS))
    assert encode_hello(h["scenario"], h["rates"], h["config"]) == encode(p.HELLO, h)
    assert encode_hello_ack(a["software"], a["runtime"]) == encode(p.HELLO_ACK, a)
    assert encode_frame(f["seq"], f["t_us"], f["imu"], f["alt"], f["vel"],
                        f["att"]) == encode(p.FRAME, f)
    assert encode_command(**c) == encode(p.COMMAND, c)
    assert encode_end(e["seq"], e["reason"]) == encode(p.END, e)
    assert encode_status(st["seq"], st["stats"]) == encode(p.STATUS, st)


def test_frame_with_no_samples_and_no_altimeter():
    msg = decode(encode_frame(0, 0, [], None))
    assert msg.imu == [] and msg.alt is None and msg.vel is None and msg.att is None


def test_command_without_an_estimate():
    msg = decode(encode_command(3, 0.5, [0.0, 0.0, 0.0], 4, 10))
    assert msg.nav is None and msg.flags == 0


def test_largest_frame_fits():
    t_us = 2**63 - 1  # the widest integer encoding
    sample = [t_us, -1.5e300, 1e-300, 2.0, 3.0, 4.0, 5.0]
    imu = [[t_us - MAX_IMU_SAMPLES_PER_FRAME + k] + sample[1:]
           for k in range(1, MAX_IMU_SAMPLES_PER_FRAME + 1)]
    fields = {"seq": 2**32 - 1, "t_us": t_us, "imu": imu, "alt": [t_us, 1e300, True],
              "vel": [t_us, -1e300, 1e300, 2.0, 3.0, 4.0, 5.0, 7],
              "att": [t_us, -1e300, 1e300, 2.0, 3.0, False]}
    payload = encode(p.FRAME, fields)
    assert len(payload) <= p.MAX_PAYLOAD_BYTES
    assert decode(payload).fields == fields
    with pytest.raises(PayloadTooLarge):
        encode(p.FRAME, dict(fields, imu=[[t_us - 70 + k] + sample[1:] for k in range(70)]))


def test_floats_go_out_as_float64():
    payload = encode_command(1, 1, [0, 0, 0], 0, 0, [0] * 7)  # ints given for floats
    assert b"\xca" not in payload  # no float32 marker
    assert payload.count(b"\xcb") == 1 + 3 + 7  # throttle, torque, nav
    msg = decode(payload)
    assert type(msg.throttle) is float and all(type(x) is float for x in msg.nav)


def test_int_accepted_where_float_expected_on_the_wire():
    payload = raw(V, p.COMMAND, 3, 1, [0, 1, 2], 2, 10, [1, 2, 3, 4, 5, 6, 7], 0)
    msg = decode(payload)
    assert msg.throttle == 1.0 and type(msg.throttle) is float
    assert msg.torque_nm == [0.0, 1.0, 2.0] and all(type(x) is float for x in msg.torque_nm)
    frame = decode(raw(V, p.FRAME, 0, 5, [[5, 0, 0, 0, 0, 0, 1]], [5, 100, False],
                       [4, -1, 0, 1, 10, 11, 12, 7], [3, 1, 0, 0, 0, False]))
    assert frame.imu == [[5, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]] and type(frame.alt[1]) is float
    assert type(frame.imu[0][0]) is int  # t_us stays an integer
    assert frame.vel == [4, -1.0, 0.0, 1.0, 10.0, 11.0, 12.0, 7]
    assert [type(x) for x in frame.vel] == [int] + [float] * 6 + [int]
    assert frame.att == [3, 1.0, 0.0, 0.0, 0.0, False]
    assert [type(x) for x in frame.att] == [int] + [float] * 4 + [bool]


def test_encode_accepts_numpy_values():
    payload = encode_command(np.uint32(3), np.float32(0.5), np.array([1.0, 2.0, 3.0]), np.int64(2),
                             np.int64(100), np.zeros(7), np.uint8(1))
    assert decode(payload).fields == {"seq": 3, "throttle": 0.5, "torque_nm": [1.0, 2.0, 3.0],
                                      "mode": 2, "compute_us": 100, "nav": [0.0] * 7, "flags": 1}
    config = dict(EXAMPLES[p.HELLO]["config"], target_r_m=np.array([1.0, 2.0, 3.0]),
                  imu_hz=np.float64(200.0))
    config["site"] = dict(config["site"], up=np.array([1.0, 0.0, 0.0]))
    got = decode(encode(p.HELLO, dict(EXAMPLES[p.HELLO], config=config))).config
    assert got["target_r_m"] == [1.0, 2.0, 3.0] and got["site"]["up"] == [1.0, 0.0, 0.0]
    assert type(got["imu_hz"]) is float
    frame = encode_frame(1, 2, [[1, *np.ones(6)]], (1, np.float64(2.5), np.bool_(True)),
                         np.array([3, 1, 2, 3, 4, 5, 6, 7]),
                         (np.int64(2), *np.array([0.5, 0.5, -0.5, 0.5]), np.bool_(False)))
    assert decode(frame).att == [2, 0.5, 0.5, -0.5, 0.5, False]
    assert decode(frame).alt == [1, 2.5, True]
    assert decode(frame).vel == [3, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7]


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
        decode(raw(1, p.HELLO_ACK, "fsw", "x", "y"))
    assert (info.value.got, info.value.expected) == (1, p.PROTOCOL_VERSION)
    assert "1" in str(info.value) and str(p.PROTOCOL_VERSION) in str(info.value)
    assert info.value.end_reason is None
    with pytest.raises(VersionError):  # the version is checked before anything else
        decode(raw(99, 99))
    with pytest.raises(VersionError):
        decode(raw(True, p.END, 0, "x"))


def test_an_end_of_another_version_still_says_why():
    """END is [seq, reason] in every version: a mismatch can always be reported."""
    with pytest.raises(VersionError) as info:
        decode(raw(1, p.END, 0, "board firmware speaks protocol 1\n\x1b[31mupdate"))
    assert info.value.end_reason.startswith("board firmware speaks protocol 1")
    text = str(info.value)
    assert "board firmware speaks protocol 1" in text and "\n" not in text and "\x1b" not in text


@pytest.mark.parametrize("type_id", [0, 7, 99, -1, True, 1.0, "end", None])
def test_unknown_type(type_id):
    with pytest.raises(UnknownMessage):
        decode(raw(V, type_id, 0, "x"))
    with pytest.raises(UnknownMessage):
        encode(type_id, [0, "x"])


@pytest.mark.parametrize("fields", [[0], [0, "x", "y"], []])
def test_wrong_field_count(fields):
    with pytest.raises(MalformedMessage, match="end message.*expected 2 fields"):
        decode(raw(V, p.END, *fields))
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
        decode(raw(V, type_id, *fields))
    assert (info.value.message, info.value.field) == (p.NAMES[type_id], field)
    assert p.NAMES[type_id] in str(info.value) and f'"{field}"' in str(info.value)
    with pytest.raises(MalformedMessage):
        encode(type_id, fields)


@pytest.mark.parametrize("field", ["seq", "mode", "compute_us", "flags", "throttle"])
def test_bool_is_not_a_number(field):
    fields = dict(EXAMPLES[p.COMMAND], **{field: True})
    with pytest.raises(MalformedMessage, match=field):
        decode(raw(V, p.COMMAND, *fields.values()))
    with pytest.raises(MalformedMessage, match=field):
        encode(p.COMMAND, fields)


def test_bool_is_not_a_signed_int_either():
    with pytest.raises(MalformedMessage, match="t_us"):
        decode(raw(V, p.FRAME, 0, False, [], None, None, None))


def test_map_keys_must_be_strings():
    fields = _good(p.HELLO)
    fields[2] = {b"frame_hz": 50.0}
    with pytest.raises(MalformedMessage, match="rates"):
        decode(raw(V, p.HELLO, *fields))


# --- every field within its range (issue 13: these crashed the plant or the flight software)

INF, NAN = float("inf"), float("nan")
OUT_OF_RANGE = [  # (type, field, value)
    (p.COMMAND, "mode", len(p.MODES)),           # crashed the plant's progress bar (MODES[7])
    (p.COMMAND, "mode", 2**32),
    (p.COMMAND, "compute_us", 2**63),            # crashed the plant's int64 timing array
    (p.COMMAND, "compute_us", 2**32),
    (p.COMMAND, "seq", 2**32),
    (p.COMMAND, "flags", 2**32),
    (p.COMMAND, "throttle", NAN),
    (p.COMMAND, "throttle", INF),
    (p.COMMAND, "torque_nm", [0.0, -INF, 0.0]),
    (p.COMMAND, "nav", [0.0] * 6 + [NAN]),
    (p.FRAME, "seq", 2**32),
    (p.FRAME, "t_us", -1),
    (p.FRAME, "t_us", 2**63),
    (p.FRAME, "imu", [[5, NAN, 0.0, 0.0, 0.0, 0.0, 0.0]]),
    (p.FRAME, "imu", [[5, 0.0, 0.0, 0.0, 0.0, 0.0, INF]]),
    (p.FRAME, "imu", [[-5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]),
    (p.FRAME, "imu", [[5] + [0.0] * 6, [5] + [0.0] * 6]),        # same stamp twice
    (p.FRAME, "imu", [[5] + [0.0] * 6, [4] + [0.0] * 6]),        # going back
    (p.FRAME, "alt", [1, NAN, True]),
    (p.FRAME, "alt", [-1, 1.0, True]),
    (p.FRAME, "vel", [1, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 8]),      # a fourth beam
    (p.FRAME, "vel", [1, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, -1]),
    (p.FRAME, "vel", [1, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, True]),
    (p.FRAME, "vel", [1, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 7.0]),
    (p.FRAME, "vel", [1, 0.0, INF, 0.0, 1.0, 1.0, 1.0, 7]),
    (p.FRAME, "vel", [1, 0.0, 0.0, 0.0, 1.0, NAN, 1.0, 7]),
    (p.FRAME, "vel", [1, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
    (p.FRAME, "vel", [-1, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 7]),
    (p.FRAME, "att", [1, NAN, 0.0, 0.0, 0.0, True]),
    (p.FRAME, "att", [1, 1.0, 0.0, INF, 0.0, True]),
    (p.FRAME, "att", [1, 0.0, 0.0, 0.0, 0.0, True]),            # no rotation at all
    (p.FRAME, "att", [1, 0.0, -0.0, 0.0, 0, False]),
    (p.FRAME, "att", [1, 1.0, 0.0, 0.0, True]),                # one element short
    (p.FRAME, "att", [1, 1.0, 0.0, 0.0, 0.0, True, 0]),
    (p.FRAME, "att", [1, 1.0, 0.0, 0.0, 0.0, 1]),              # valid not a boolean
    (p.FRAME, "att", [1, 1.0, 0.0, 0.0, 0.0, None]),
    (p.FRAME, "att", [1, 1.0, "0", 0.0, 0.0, True]),
    (p.FRAME, "att", [-1, 1.0, 0.0, 0.0, 0.0, True]),
    (p.FRAME, "att", [2**63, 1.0, 0.0, 0.0, 0.0, True]),
    (p.FRAME, "att", [1.0, 1.0, 0.0, 0.0, 0.0, True]),
    (p.FRAME, "att", [True, 1.0, 0.0, 0.0, 0.0, True]),
    (p.FRAME, "att", [1.0, 0.0, 0.0, 0.0]),
    (p.STATUS, "stats", {"crc_errors": -1}),
    (p.STATUS, "stats", {"crc_errors": 1.5}),
    (p.STATUS, "stats", {"crc_errors": True}),
    (p.HELLO, "role", "fsw"),
    (p.HELLO_ACK, "role", "plant"),
    (p.END, "seq", 2**32),
]


@pytest.mark.parametrize("type_id, field, value", OUT_OF_RANGE,
                         ids=[f"{p.NAMES[t]}.{f}={v!r}"[:50] for t, f, v in OUT_OF_RANGE])
def test_out_of_range_is_refused_both_ways(type_id, field, value):
    fields = _good(type_id)
    fields[[name for name, _ in p.LAYOUTS[type_id]].index(field)] = value
    with pytest.raises(MalformedMessage) as info:
        decode(raw(V, type_id, *fields))
    assert (info.value.message, info.value.field) == (p.NAMES[type_id], field)
    with pytest.raises(MalformedMessage) as info:
        encode(type_id, fields)
    assert info.value.field == field


def _config(path: str, value=None, delete=False) -> dict:
    """The example config with the key at a dotted path set to value (or deleted)."""
    config = copy.deepcopy(EXAMPLES[p.HELLO]["config"])
    *parents, key = path.split(".")
    node = config
    for k in parents:
        node = node[k]
    if delete:
        del node[key]
    else:
        node[key] = value
    return config


BAD_CONFIG = [  # (dotted key, value or DELETE): each crashed or could crash `fsil fsw`
    ("vehicle", "DELETE"),                         # KeyError in the flight software
    ("vehicle.isp_s", "DELETE"),
    ("nav_init.q", [0, 0, 0, 0]),                  # ZeroDivisionError normalising it
    ("nav_init.q", [1.0, 0.0, 0.0]),
    ("nav_init.r_m", [1.0, NAN, 2.0]),
    ("nav_init.t_us", 1.5),
    ("vehicle.dry_mass_kg", -1.0),
    ("vehicle.max_thrust_n", 0.0),
    ("vehicle.max_thrust_n", "9000"),              # TypeError in the flight software
    ("vehicle.max_thrust_n", True),
    ("vehicle.min_throttle", 1.5),
    ("vehicle.inertia_kgm2", [700.0, 0.0, 500.0]),
    ("vehicle.max_torque_nm", [40.0, -1.0, 20.0]),
    ("site", [1.0, 0.0, 0.0]),
    ("site.up", [0.0, 0.0, 0.0]),
    ("site.radius_m", INF),
    ("altimeter.boresight_body", [0.0, 0.0]),
    ("ignition_t_us", -1),
    ("imu_hz", 0.0),
    ("moon", {"gm_m3ps2": 4.9e12, "radius_m": 1737400.0}),
    ("moon", {"gm_m3ps2": -4.9e12, "radius_m": 1737400.0, "rotation_rad_s": 0.0}),
    ("velocimeter", {"beams_body": [[0.0, 0.0, 1.0]] * 2, "velocity_noise_mps": 0.02,
                     "range_noise_m": 2.0, "max_range_m": 5000.0}),
    ("velocimeter", {"beams_body": [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]],
                     "velocity_noise_mps": 0.02, "range_noise_m": 2.0, "max_range_m": 5000.0}),
    ("star_tracker", {"boresight_body": [0.0, 1.0, 0.0], "cross_sigma_rad": 2.4e-5,
                      "roll_sigma_rad": 1.9e-4, "rate_hz": 5.0, "latency_s": 0.1}),
    ("star_tracker.boresight_body", [0.0, 0.0, 0.0]),
    ("star_tracker.cross_sigma_rad", -1e-5),
    ("star_tracker.roll_sigma_rad", NAN),
    ("star_tracker.rate_hz", 0.0),
    ("star_tracker.latency_s", -0.1),
    ("star_tracker.max_rate_radps", 0),
    ("star_tracker", [0.0, 1.0, 0.0]),
    ("fsw", "options"),
]


@pytest.mark.parametrize("path, value", BAD_CONFIG,
                         ids=[f"{k}={v!r}"[:50] for k, v in BAD_CONFIG])
def test_bad_hello_config_is_refused_naming_the_key(path, value):
    if path.startswith("star_tracker."):   # a bad key inside a good block
        config = _config("star_tracker", dict(STAR_TRACKER))
        config["star_tracker"][path.split(".")[1]] = value
    else:
        config = _config(path, delete=True) if value == "DELETE" else _config(path, value)
    fields = dict(EXAMPLES[p.HELLO], config=config)
    with pytest.raises(MalformedMessage) as info:
        decode(raw(V, p.HELLO, *fields.values()))
    assert info.value.field == "config" and path in str(info.value)
    with pytest.raises(MalformedMessage, match=path.replace(".", r"\.")):
        encode(p.HELLO, fields)


STAR_TRACKER = {"boresight_body": [0.0, 1.0, 0.0], "cross_sigma_rad": 2.4e-5,
                "roll_sigma_rad": 1.9e-4, "rate_hz": 5.0, "latency_s": 0.1,
                "max_rate_radps": 0.035}


def test_star_tracker_block_and_rate_pass():
    config = _config("star_tracker", dict(STAR_TRACKER, mount="+y panel"))
    rates = dict(EXAMPLES[p.HELLO]["rates"], star_tracker_hz=5)
    fields = dict(EXAMPLES[p.HELLO], config=config, rates=rates)
    got = decode(encode(p.HELLO, fields))
    assert got.config["star_tracker"] == config["star_tracker"] and got.rates == rates


def test_config_keys_beyond_the_schema_pass_unchecked():
    config = _config("vehicle.paint", "white")
    config["moon"] = {"gm_m3ps2": 4.9e12, "radius_m": 1737400.0, "rotation_rad_s": 0.0, "j2": 2e-4}
    config["future_sensor"] = [1, "x"]
    del config["fsw"]
    fields = dict(EXAMPLES[p.HELLO], config=config)
    assert decode(encode(p.HELLO, fields)).config == config


@pytest.mark.parametrize("rates", [{"frame_hz": 50.0}, dict(EXAMPLES[p.HELLO]["rates"], imu_hz=-1),
                                   dict(EXAMPLES[p.HELLO]["rates"], physics_hz=NAN),
                                   dict(EXAMPLES[p.HELLO]["rates"], velocimeter_hz=0),
                                   dict(EXAMPLES[p.HELLO]["rates"], star_tracker_hz=-5.0),
                                   dict(EXAMPLES[p.HELLO]["rates"], star_tracker_hz="5")])
def test_bad_rates_are_refused(rates):
    with pytest.raises(MalformedMessage, match="rates"):
        decode(raw(V, p.HELLO, "plant", "x", rates, EXAMPLES[p.HELLO]["config"]))


def test_the_limits_themselves_pass():
    fields = dict(EXAMPLES[p.COMMAND], seq=2**32 - 1, compute_us=2**32 - 1, flags=2**32 - 1,
                  mode=len(p.MODES) - 1, nav=None)
    assert decode(encode(p.COMMAND, fields)).fields == fields
    frame = dict(EXAMPLES[p.FRAME], t_us=2**63 - 1, vel=[2**63 - 1] + [0.0] * 6 + [0],
                 att=[2**63 - 1, -0.0, 0.0, 0.0, 5e-324, True])
    assert decode(encode(p.FRAME, frame)).fields == frame
    status = {"seq": 0, "stats": {"a": 0, "b": 2**64 - 1}}
    assert decode(encode(p.STATUS, status)).fields == status
    with pytest.raises(MalformedMessage, match="counter"):
        encode(p.STATUS, {"seq": 0, "stats": {"a": 2**64}})  # msgpack itself cannot hold it


def test_errors_name_the_sample_and_the_element():
    fields = _good(p.FRAME)
    fields[2] = [[5] + [0.0] * 6, [10, 0.0, 0.0, NAN, 0.0, 0.0, 0.0]]
    with pytest.raises(MalformedMessage, match="IMU sample 1: dvz.*finite"):
        decode(raw(V, p.FRAME, *fields))
    fields[2] = [[5] + [0.0] * 6, [5] + [0.0] * 6]
    with pytest.raises(MalformedMessage, match="IMU sample 1: t_us 5 is not after"):
        decode(raw(V, p.FRAME, *fields))


@pytest.mark.parametrize("att, words", [
    ([1, 0.0, 0.0, 0.0, 0.0, True], "quaternion .* all zero"),
    ([1, 1.0, 0.0, NAN, 0.0, True], "star tracker qy: expected a finite float"),
    ([1, 1.0, 0.0, 0.0, 0.0, 1], "star tracker valid must be a boolean, got int"),
    ([1, 1.0, 0.0, 0.0, 0.0],
     r"star tracker sample \[t_us, qw, qx, qy, qz, valid\], got array of 5"),
    ([-1, 1.0, 0.0, 0.0, 0.0, False], "star tracker t_us -1 is outside"),
    ([0.5, 1.0, 0.0, 0.0, 0.0, False], "star tracker t_us: expected an integer"),
])
def test_star_tracker_errors_say_what_is_wrong(att, words):
    fields = _good(p.FRAME)
    fields[5] = att
    with pytest.raises(MalformedMessage, match=words) as info:
        decode(raw(V, p.FRAME, *fields))
    assert info.value.field == "att" and "\n" not in str(info.value)


def test_encode_does_not_change_the_callers_values():
    torque = [0, 1, 2]
    imu = [(5, 0, 0, 0, 0, 0, 1)]
    encode_frame(1, 5, imu, None)
    encode_command(1, 0.5, torque, 2, 3)
    assert torque == [0, 1, 2] and imu == [(5, 0, 0, 0, 0, 0, 1)]
