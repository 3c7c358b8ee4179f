"""The codec's hot paths (FRAME and COMMAND as lists of plain values, packed or unpacked) accept
exactly what the general paths accept, and pack the same bytes or decode the same fields;
everything else takes the general path."""

from __future__ import annotations

import math
import random

import msgpack
import numpy as np

from bridge import codec, protocol
from bridge.codec import decode, encode
from bridge.errors import BridgeError

ODD = [math.nan, math.inf, -math.inf, True, False, 1, -1, 0, 7, 8, 2**32 - 1, 2**63 - 1, 2**32, 2**63, -0.0, 1e300,
       np.float64(0.5), np.int64(3), np.bool_(True), "1", None, [], (1.0,)]


def _general(type_id: int, fields: list) -> bytes:
    """The general path (a mapping never takes the hot path)."""
    names = [name for name, _ in protocol.LAYOUTS[type_id]]
    return encode(type_id, dict(zip(names, fields)))


def _outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except BridgeError as e:
        return type(e).__name__, str(e)


def _frame(r: random.Random) -> list:
    t0 = r.randrange(0, 10**9)
    imu = [[t0 + 5000 * (i + 1), *(r.gauss(0, 1e-3) for _ in range(6))]
           for i in range(r.choice([0, 1, 4]))]
    alt = r.choice([None, [t0, r.uniform(0, 5e4), r.random() < 0.8],
                    (t0, r.uniform(0, 5e4), False)])
    vel = r.choice([None, [t0, *(r.gauss(0, 3) for _ in range(6)), r.randrange(8)],
                    tuple([t0, *(r.gauss(0, 3) for _ in range(6)), 7])])
    q = [r.gauss(0, 1) for _ in range(4)]
    att = r.choice([None, [t0, *q, True], [t0, 1.0, 0.0, 0.0, 0.0, False], tuple([t0, *q, True]),
                    [t0, 0.0, -0.0, 0.0, 1.0, r.random() < 0.5]])
    return [r.randrange(2**32), t0 + 20000, imu, alt, vel, att]


def _command(r: random.Random) -> list:
    torque = [r.gauss(0, 50) for _ in range(3)]
    nav = r.choice([None, [r.gauss(0, 1e6) for _ in range(7)]])
    return [r.randrange(2**32), r.random(), r.choice([torque, tuple(torque)]),
            r.randrange(len(protocol.MODES)), r.randrange(2**32),
            nav if nav is None or r.random() < 0.5 else tuple(nav), r.randrange(128)]


def _spoil(r: random.Random, value):
    """One cell somewhere inside ``value`` replaced by an odd value."""
    if isinstance(value, (list, tuple)) and value and r.random() < 0.7:
        out = list(value)
        i = r.randrange(len(out))
        out[i] = _spoil(r, out[i])
        return out if isinstance(value, list) else tuple(out)
    return r.choice(ODD)


def test_hot_path_and_general_path_agree_on_every_message():
    r = random.Random(9)
    for trial in range(6000):
        type_id = protocol.FRAME if trial % 2 else protocol.COMMAND
        fields = _frame(r) if type_id == protocol.FRAME else _command(r)
        if trial % 3:
            i = r.randrange(len(fields))
            fields[i] = _spoil(r, fields[i])
        for shape in (list, tuple):
            fast = _outcome(encode, type_id, shape(fields))
            assert fast == _outcome(_general, type_id, list(fields)), (type_id, fields)


def test_hot_path_edges_refused_or_converted_as_the_general_path_does():
    t = 1_000_000
    imu = [[t + 5000 * i, 1e-3, 0.0, -0.0, 1e-7, 2.0, -3.0] for i in range(1, 5)]
    frame = [7, t + 20000, imu, [t, 1234.5, True], [t, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 5],
             [t, 0.5, -0.5, 0.5, -0.5, True]]
    command = [7, 0.5, [1.0, 2.0, 3.0], 3, 40, [1.0] * 7, 9]
    edits = {
        protocol.FRAME: [(0, 2**32), (0, 2**32 - 1), (1, -1), (1, protocol.T_US_MAX),
                         (1, protocol.T_US_MAX + 1), (2, imu[:1] + imu[:1]),
                         (2, [[-1, *imu[0][1:]]]), (2, [imu[0][:6]]), (2, (imu[0],)),
                         (2, [tuple(imu[0])]), (3, [t, 1234.5, 1]), (3, [t, 1234, True]),
                         (3, [-1, 1.0, True]), (3, [t, math.nan, True]), (3, [t, 1.0]),
                         (4, [t, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8]),
                         (4, [t, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1]),
                         (4, [t, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
                         (4, [t, 1.0, 2.0, 3.0, 4.0, 5.0, math.inf, 7]),
                         (4, [protocol.T_US_MAX + 1, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7]),
                         (5, None),
                         (5, [t, 1.0, 0.0, 0.0, 0.0, False]), (5, (t, 0.5, 0.5, 0.5, 0.5, True)),
                         (5, [t, 0.0, 0.0, 0.0, 0.0, True]), (5, [t, -0.0, 0.0, -0.0, 0.0, False]),
                         (5, [t, 1.0, 0.0, 0.0, 0.0]), (5, [t, 1.0, 0.0, 0.0, 0.0, True, 0]),
                         (5, [t, math.nan, 0.0, 0.0, 0.0, True]),
                         (5, [t, 1.0, 0.0, 0.0, math.inf, True]),
                         (5, [t, 1.0, 0.0, 0.0, 0.0, 1]), (5, [t, 1.0, 0.0, 0.0, 0.0, None]),
                         (5, [t, 1, 0, 0, 0, True]), (5, [t, 1.0, 0.0, 0.0, 0, True]),
                         (5, [-1, 1.0, 0.0, 0.0, 0.0, True]), (5, [1.5, 1.0, 0.0, 0.0, 0.0, True]),
                         (5, [True, 1.0, 0.0, 0.0, 0.0, True]),
                         (5, [protocol.T_US_MAX + 1, 1.0, 0.0, 0.0, 0.0, True]),
                         (5, [t, np.float64(1.0), 0.0, 0.0, 0.0, np.bool_(True)]),
                         (5, np.array([1.0, 0.0, 0.0, 0.0])), (5, "att"), (5, 1.0)],
        protocol.COMMAND: [(0, -1), (0, 2**32), (1, 1), (1, math.inf), (1, -0.0),
                           (2, [1.0, 2.0]), (2, [1.0, 2.0, 3]), (2, (1.0, math.nan, 3.0)),
                           (3, len(protocol.MODES)), (3, -1), (3, True), (4, 2**32),
                           (4, 2**32 - 1), (5, [1.0] * 6), (5, [1.0] * 6 + [2]),
                           (5, np.ones(7)), (6, 2**32), (6, -1), (6, 2**31)],
    }
    for type_id, base in ((protocol.FRAME, frame), (protocol.COMMAND, command)):
        assert _outcome(encode, type_id, base)[0] == "ok"
        for i, value in edits[type_id]:
            fields = list(base)
            fields[i] = value
            assert _outcome(encode, type_id, fields) == _outcome(_general, type_id, fields), \
                (type_id, i, value)


# --- decode: the same fields or the same error as the general path, for any packed array


def _general_decode(payload: bytes):
    """The general path of decode (every field through its kind's decoder)."""
    return codec._decode_general(msgpack.unpackb(payload, raw=False, strict_map_key=True))


def _packed(type_id: int, fields: list, version=protocol.PROTOCOL_VERSION) -> bytes | None:
    """The fields packed as a peer could send them (None: not msgpack, e.g. numpy values)."""
    try:
        return msgpack.packb([version, type_id, *fields], use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return None


def test_decode_hot_path_and_general_path_agree_on_every_message():
    r = random.Random(10)
    fast_taken = 0
    for trial in range(6000):
        type_id = protocol.FRAME if trial % 2 else protocol.COMMAND
        fields = _frame(r) if type_id == protocol.FRAME else _command(r)
        spoiled = trial % 3
        if spoiled:
            i = r.randrange(len(fields))
            fields[i] = _spoil(r, fields[i])
        payload = _packed(type_id, fields)
        if payload is None:
            continue
        got = _outcome(decode, payload)
        assert got == _outcome(_general_decode, payload), (type_id, fields)
        if not spoiled:   # what a peer sends takes the hot path and decodes
            assert got[0] == "ok"
            assert codec._FAST_DECODE[type_id](msgpack.unpackb(payload)) is not None
            fast_taken += 1
    assert fast_taken > 1500


def test_decode_hot_path_edges_refused_or_converted_as_the_general_path_does():
    t = 1_000_000
    imu = [[t + 5000 * i, 1e-3, 0.0, -0.0, 1e-7, 2.0, -3.0] for i in range(1, 5)]
    frame = [7, t + 20000, imu, [t, 1234.5, True], [t, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 5],
             [t, 0.5, -0.5, 0.5, -0.5, True]]
    command = [7, 0.5, [1.0, 2.0, 3.0], 3, 40, [1.0] * 7, 9]
    edits = {
        protocol.FRAME: [(0, 2**32), (0, 2**32 - 1), (0, -1), (0, 1.0), (1, -1),
                         (1, protocol.T_US_MAX), (1, protocol.T_US_MAX + 1), (1, 1.5),
                         (2, imu[:1] + imu[:1]), (2, [[-1, *imu[0][1:]]]), (2, [imu[0][:6]]),
                         (2, [imu[0] + [1.0]]), (2, [[t, 1, 0.0, 0.0, 0.0, 0.0, 0.0]]),
                         (2, [[t, math.nan, 0.0, 0.0, 0.0, 0.0, 0.0]]), (2, [[1.0] * 7]),
                         (2, []), (2, None), (2, {"a": 1}), (3, None), (3, [t, 1234.5, 1]),
                         (3, [t, 1234, True]), (3, [-1, 1.0, True]), (3, [t, math.nan, True]),
                         (3, [t, math.inf, False]), (3, [t, 1.0]), (3, [t, 1.0, True, 0]),
                         (3, [protocol.T_US_MAX + 1, 1.0, True]), (4, None),
                         (4, [t, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8]),
                         (4, [t, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1]),
                         (4, [t, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
                         (4, [t, 1.0, 2.0, 3.0, 4.0, 5.0, math.inf, 7]),
                         (4, [t, 1, 2.0, 3.0, 4.0, 5.0, 6.0, 7]),
                         (4, [protocol.T_US_MAX + 1, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7]),
                         (5, None),
                         (5, [t, 1.0, 0.0, 0.0, 0.0, False]), (5, [t, 0.5, 0.5, 0.5, 0.5, True]),
                         (5, [t, 0.0, 0.0, 0.0, 0.0, True]), (5, [t, -0.0, 0.0, -0.0, 0.0, False]),
                         (5, [t, 1.0, 0.0, 0.0, 0.0]), (5, [t, 1.0, 0.0, 0.0, 0.0, True, 0]),
                         (5, [t, math.nan, 0.0, 0.0, 0.0, True]),
                         (5, [t, 1.0, 0.0, 0.0, -math.inf, True]),
                         (5, [t, 1.0, 0.0, 0.0, 0.0, 1]), (5, [t, 1.0, 0.0, 0.0, 0.0, None]),
                         (5, [t, 1, 0, 0, 0, True]),
                         (5, [t, 1.0, 0.0, 0.0, 0, True]), (5, [t, 0, 0, 0, 0, True]),
                         (5, [-1, 1.0, 0.0, 0.0, 0.0, True]), (5, [1.5, 1.0, 0.0, 0.0, 0.0, True]),
                         (5, [True, 1.0, 0.0, 0.0, 0.0, True]), (5, {"qw": 1.0}), (5, []),
                         (5, [protocol.T_US_MAX + 1, 1.0, 0.0, 0.0, 0.0, True])],
        protocol.COMMAND: [(0, -1), (0, 2**32), (1, 1), (1, True), (1, math.inf), (1, math.nan),
                           (1, -0.0), (2, [1.0, 2.0]), (2, [1.0, 2.0, 3]),
                           (2, [1.0, math.nan, 3.0]), (2, None), (3, len(protocol.MODES)),
                           (3, -1), (3, True), (3, 1.0), (4, 2**32), (4, 2**32 - 1), (4, -1),
                           (5, None), (5, [1.0] * 6), (5, [1.0] * 6 + [2]), (5, [1.0] * 8),
                           (5, [1.0] * 6 + [math.inf]), (6, 2**32), (6, -1), (6, 2**31),
                           (6, False)],
    }
    for type_id, base in ((protocol.FRAME, frame), (protocol.COMMAND, command)):
        assert _outcome(decode, _packed(type_id, base))[0] == "ok"
        for i, value in edits[type_id]:
            fields = list(base)
            fields[i] = value
            payload = _packed(type_id, fields)
            assert _outcome(decode, payload) == _outcome(_general_decode, payload), \
                (type_id, i, value)
        for payload in (_packed(type_id, base[:-1]), _packed(type_id, base + [0]),
                        _packed(type_id, base, version=1), _packed(type_id, base, version=2.0),
                        _packed(type_id, base, version=True)):
            assert _outcome(decode, payload) == _outcome(_general_decode, payload), payload
