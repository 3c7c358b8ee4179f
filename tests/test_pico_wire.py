"""The board's wire codec (hil/pico/wire.py) against the host's, byte for byte.

Every case runs twice: under CPython (in-process) and under real MicroPython (the virtual
board's WebAssembly build in Node.js, ``board.mjs --run``), through the same job script
(tests/pico_wire_job.py). The expected answers come from the host: bridge.codec (msgpack),
bridge.framing (the ``cobs`` package, zlib.crc32), and the shared vectors in
tests/vectors/wire_vectors.json.
"""

from __future__ import annotations

import binascii
import json
import math
import random
import struct
import zlib
from pathlib import Path

import msgpack
import pytest
from cobs import cobs

from bridge import codec, protocol
from bridge.errors import ProtocolError
from bridge.framing import FrameDecoder, encode_frame
from hil import virtual
from hil.pico import wire

import pico_wire_job as job

HERE = Path(__file__).parent
VECTORS = json.loads((HERE / "vectors" / "wire_vectors.json").read_text())
VALID_HELLO = [m for m in VECTORS["messages"] if m["type"] == "hello"]
NEEDS_NODE_MODULES = pytest.mark.skipif(
    not (virtual.PACKAGE_DIR / "package.json").is_file(),
    reason="the virtual board's MicroPython is not installed: run npm ci --prefix hil/virtual")


def _plain(v):
    """JSON round trip, so CPython and MicroPython results compare alike."""
    return json.loads(json.dumps(v))


def _vector_value(v):
    if isinstance(v, dict):
        if "bits" in v:
            return struct.unpack(">d", bytes.fromhex(v["bits"]))[0]
        if "map" in v:
            return {k: _vector_value(x) for k, x in v["map"]}
    if isinstance(v, list):
        return [_vector_value(x) for x in v]
    return v


def _host_message(payload: bytes) -> dict:
    """What the board must make of a good payload, by the host's codec."""
    msg = codec.decode(payload)
    fields = [msg.fields[name] for name, _ in protocol.LAYOUTS[msg.type_id]]
    again = codec.encode(msg.type_id, fields)
    return {"type": msg.type_id, "fields": job.dump(fields), "reencoded": again.hex(),
            "frame": encode_frame(again).hex()}


# --- random content -----------------------------------------------------------------------
def _rand_int(rng: random.Random, signed: bool = True) -> int:
    bits = rng.choice([0, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 63, 64])
    n = rng.getrandbits(bits) if bits else 0
    if signed and rng.random() < 0.5:
        n = -min(n, 2**63)
    return n


def _rand_float(rng: random.Random) -> float:
    return rng.choice([
        lambda: rng.uniform(-1, 1), lambda: rng.uniform(-2e6, 2e6), lambda: 0.0, lambda: -0.0,
        lambda: math.inf, lambda: -math.inf, lambda: 5e-324, lambda: 1.7976931348623157e308,
        lambda: struct.unpack(">f", struct.pack(">f", rng.uniform(-1e4, 1e4)))[0],
        lambda: rng.gauss(0, 1e-6), lambda: float(rng.randint(-10**6, 10**6)),
    ])()


_ALPHABET = "az09 _-.é—«»ü中文Ω\t\n"


def _rand_str(rng: random.Random) -> str:
    n = rng.choice([0, 1, 5, 30, 31, 32, 33, 100, 254, 255, 256, 300])
    s = "".join(rng.choice(_ALPHABET) for _ in range(n))
    return s


def _rand_value(rng: random.Random, depth: int = 0):
    kinds = ["int", "float", "str", "bool", "nil"] + (["list", "map"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return _rand_int(rng)
    if kind == "float":
        return _rand_float(rng)
    if kind == "str":
        return _rand_str(rng)[:40]
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "nil":
        return None
    n = rng.choice([0, 1, 3, 15, 16, 17, 20]) if depth < 2 else rng.randint(0, 3)
    if kind == "list":
        return [_rand_value(rng, depth + 1) for _ in range(n)]
    return {f"k{j}_{_rand_str(rng)[:6]}": _rand_value(rng, depth + 1) for j in range(n)}


def _rand_finite(rng: random.Random) -> float:
    while True:
        x = _rand_float(rng)
        if math.isfinite(x):
            return x


def _rand_time(rng: random.Random) -> int:
    return rng.getrandbits(rng.choice([0, 4, 7, 8, 16, 17, 31, 32, 33, 48, 63]))


def _rand_fields(rng: random.Random, type_id: int) -> list:
    """Valid fields of every kind, drawn over each kind's whole range."""
    out = []
    for name, kind in protocol.LAYOUTS[type_id]:
        if name == "role":
            out.append(protocol.ROLES[type_id])
        elif kind == "u":
            out.append(rng.getrandbits(rng.choice([0, 4, 7, 8, 9, 15, 16, 17, 31, 32])))
        elif kind == "t":
            out.append(_rand_time(rng))
        elif kind == "mode":
            out.append(rng.randrange(len(protocol.MODES)))
        elif kind == "f":
            out.append(_rand_finite(rng))
        elif kind == "s":
            out.append(_rand_str(rng))
        elif kind in ("rates", "config"):  # a valid map with random keys of its own added
            base = _vector_value(VALID_HELLO[rng.randrange(len(VALID_HELLO))]["fields"])
            extra = {f"key{j}": _rand_value(rng, 1) for j in range(rng.choice([0, 2, 6]))}
            out.append(dict(base[2 if kind == "rates" else 3], **extra))
        elif kind == "m":
            out.append({f"key{j}": _rand_value(rng, 1) for j in range(rng.choice([0, 2, 6, 16]))})
        elif kind == "counts":
            out.append({f"n{j}_{_rand_str(rng)[:5]}": rng.getrandbits(rng.choice([0, 8, 32, 64]))
                        for j in range(rng.choice([0, 1, 5, 16]))})
        elif kind == "f3":
            out.append([_rand_finite(rng) for _ in range(3)])
        elif kind == "nav":
            out.append(None if rng.random() < 0.3 else [_rand_finite(rng) for _ in range(7)])
        elif kind == "imu":
            n = rng.choice([0, 1, 4, 10, 15, 16, 40])
            times = sorted(rng.sample(range(2 ** rng.choice([8, 20, 40])), n))
            out.append([[t] + [_rand_finite(rng) for _ in range(6)] for t in times])
        elif kind == "alt":
            out.append(None if rng.random() < 0.3 else
                       [_rand_time(rng), _rand_finite(rng), rng.random() < 0.5])
        elif kind == "vel":
            out.append(None if rng.random() < 0.3 else
                       [_rand_time(rng)] + [_rand_finite(rng) for _ in range(6)]
                       + [rng.randrange(8)])
        elif kind == "att":
            q = [_rand_finite(rng) for _ in range(4)]
            if not any(q):
                q[rng.randrange(4)] = rng.choice([1.0, -1.0, 5e-324])
            valid = rng.random() < 0.6
            out.append(None if rng.random() < 0.3 else
                       [_rand_time(rng)] + (q if valid else [1.0, 0.0, 0.0, 0.0]) + [valid])
        else:  # pragma: no cover - a new kind needs a generator here
            raise AssertionError(f"no generator for kind {kind}")
    return out


def _random_messages(rng: random.Random, n: int) -> list[bytes]:
    payloads = []
    while len(payloads) < n:
        type_id = rng.choice(sorted(protocol.LAYOUTS))
        try:
            payloads.append(codec.encode(type_id, _rand_fields(rng, type_id)))
        except ProtocolError:
            continue  # over MAX_PAYLOAD_BYTES: draw again
    return payloads


def _damaged_stream(rng: random.Random) -> bytes:
    """Good frames with garbage, truncation, bit flips, runts and oversize between them."""
    out = bytearray()
    for payload in _random_messages(rng, 12):
        f = bytearray(encode_frame(payload))
        damage = rng.choice(["none", "none", "garbage", "truncate", "flip", "runt", "oversize"])
        if damage == "garbage":
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
            if rng.random() < 0.5:
                out += b"\x00"
        elif damage == "truncate":
            out += f[: rng.randint(1, len(f) - 1)] + b"\x00"
        elif damage == "flip":
            k = rng.randrange(len(f) - 1)
            f[k] ^= 1 << rng.randrange(8)
        elif damage == "runt":
            out += cobs.encode(b"\x01\x02\x03") + b"\x00"
        elif damage == "oversize":
            out += bytes(rng.randint(1, 255) for _ in range(4200)) + b"\x00"
        out += f
    return bytes(out)


# --- the job: cases and what the host says of each -----------------------------------------
def _cases() -> list[tuple[str, dict, dict]]:
    """(group, case, expected) for every check, host answers computed here."""
    rng = random.Random(20261124)
    cases: list[tuple[str, dict, dict]] = []
    for m in VECTORS["messages"]:
        fields = _vector_value(m["fields"])
        cases.append(("vector messages", {"op": "message", "payload": m["payload_hex"]},
                      {"type": m["type_id"], "fields": job.dump(fields),
                       "reencoded": m["payload_hex"], "frame": m["frame_hex"]}))
    for f in VECTORS["frames"]:
        cases.append(("vector frames", {"op": "frame", "payload": f["payload_hex"]},
                      {"frame": f["frame_hex"]}))
    for c in VECTORS["cobs"]:
        cases.append(("vector cobs", {"op": "cobs", "data": c["data_hex"]},
                      {"enc": c["cobs_hex"], "dec": c["data_hex"]}))
    for c in VECTORS["crc"]:
        crc = int(c["crc32"], 16)
        cases.append(("vector crc", {"op": "crc", "data": c["data_hex"]},
                      {"crc": crc, "crc_py": crc, "le": c["le_hex"]}))
    for s in VECTORS["streams"]:
        expected = {"payloads": s["payloads_hex"], "stats": s["stats"]}
        for how in ({}, {"bytewise": True}, {"chunk": 7}):
            cases.append(("vector streams", {"op": "stream", "input": s["input_hex"], **how},
                          expected))
    for payload in _random_messages(rng, 120):
        cases.append(("random messages", {"op": "message", "payload": payload.hex()},
                      _host_message(payload)))
    # integers and float32 where floats are due: read as floats, sent back as float64
    for payload in _random_messages(rng, 30):
        obj = msgpack.unpackb(payload)
        for k, (_, kind) in enumerate(protocol.LAYOUTS[obj[1]]):
            if kind == "f":
                obj[k + 2] = rng.randint(-1000, 1000)
        try:
            crafted = msgpack.packb(obj, use_single_float=rng.random() < 0.5)
        except OverflowError:      # a float beyond float32's range
            crafted = msgpack.packb(obj)
        if len(crafted) <= protocol.MAX_PAYLOAD_BYTES:
            cases.append(("ints and float32 for floats", {"op": "message", "payload": crafted.hex()},
                          _host_message(crafted)))
    # messages the host refuses: the board refuses them too (a version first)
    good = codec.encode(protocol.END, [3, "x"])
    bad = {
        "other version": msgpack.packb([protocol.PROTOCOL_VERSION + 1, protocol.HELLO, "plant",
                                        "s", {}, {}]),
        "version 0": msgpack.packb([0, protocol.END, 1, "x"]),
        "unknown type": msgpack.packb([protocol.PROTOCOL_VERSION, 9, 1]),
        "too few fields": msgpack.packb([protocol.PROTOCOL_VERSION, protocol.END, 1]),
        "too many fields": msgpack.packb([protocol.PROTOCOL_VERSION, protocol.END, 1, "x", 2]),
        "bool for int": msgpack.packb([protocol.PROTOCOL_VERSION, protocol.END, True, "x"]),
        "negative seq": msgpack.packb([protocol.PROTOCOL_VERSION, protocol.END, -1, "x"]),
        "str for float": msgpack.packb([protocol.PROTOCOL_VERSION, protocol.COMMAND, 1, "0.5",
                                        [0.0] * 3, 0, 0, [0.0] * 7, 0]),
        "short imu sample": msgpack.packb([protocol.PROTOCOL_VERSION, protocol.FRAME, 1, 2,
                                           [[1, 0.0]], None, None, None]),
        "alt valid not bool": msgpack.packb([protocol.PROTOCOL_VERSION, protocol.FRAME, 1, 2,
                                             [], [1, 2.0, 1], None, None]),
        "att valid not bool": msgpack.packb([protocol.PROTOCOL_VERSION, protocol.FRAME, 1, 2,
                                             [], None, None, [1, 1.0, 0.0, 0.0, 0.0, 0]]),
        "att all zero": msgpack.packb([protocol.PROTOCOL_VERSION, protocol.FRAME, 1, 2,
                                       [], None, None, [1, 0.0, -0.0, 0, 0.0, True]]),
        "att float32 nan": msgpack.packb([protocol.PROTOCOL_VERSION, protocol.FRAME, 1, 2,
                                          [], None, None, [1, 1.0, math.nan, 0.0, 0.0, True]],
                                         use_single_float=True),
        "not an array": msgpack.packb({"a": 1}),
        "truncated": good[:-1],
        "trailing byte": good + b"\x00",
        "int map key": msgpack.packb([protocol.PROTOCOL_VERSION, protocol.HELLO, "plant", "s",
                                      {1: 2}, {}]),
    }
    for name, payload in bad.items():
        with pytest.raises(ProtocolError):
            codec.decode(payload)
        expect = {"version_mismatch": name in ("other version", "version 0")}
        cases.append(("refused messages", {"op": "message", "payload": payload.hex(),
                                           "name": name}, expect))
    for r in VECTORS["refused"]:  # out of range, non-finite, wrong role: the shared vectors
        cases.append(("refused messages", {"op": "message", "payload": r["payload_hex"],
                                           "name": r["name"]},
                      {"version_mismatch": r["version_mismatch"]}))
    # generic msgpack values: every form the board may meet, canonical both ways
    values = [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1, -1, -32, -33,
              -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63, 0.0, -0.0, 1.5, math.inf,
              "", "a" * 31, "a" * 32, "é" * 200, "z" * 70000, None, True, False, [],
              list(range(15)), list(range(16)), list(range(300)),
              {}, {str(i): i for i in range(15)}, {str(i): i for i in range(16)}]
    values += [_rand_value(rng) for _ in range(80)]
    for v in values:
        payload = msgpack.packb(v, use_bin_type=True)
        cases.append(("msgpack values", {"op": "value", "payload": payload.hex()},
                      {"value": job.dump(msgpack.unpackb(payload, raw=False)),
                       "packed": payload.hex()}))
    for raw in ["cb0000", "c1", "d4017f", "c7020100", "92" + "01", "a5616263", "dc0005",
                "81a161", "81" + "01" + "02", "ca00"]:
        cases.append(("refused values", {"op": "bad_value", "payload": raw}, {"error": True}))
    # COBS at and around block boundaries, with zeros anywhere
    for n in (0, 1, 2, 252, 253, 254, 255, 256, 507, 508, 509, 1000, 4100):
        for density in (0.0, 0.01, 0.3, 1.0):
            data = bytes(0 if rng.random() < density else rng.randint(1, 255) for _ in range(n))
            cases.append(("cobs", {"op": "cobs", "data": data.hex()},
                          {"enc": cobs.encode(data).hex(), "dec": data.hex()}))
    for raw in ["05010203", "00", "0201000101", "ff" + "01" * 10]:
        with pytest.raises(cobs.DecodeError):
            cobs.decode(bytes.fromhex(raw))
        cases.append(("refused cobs", {"op": "bad_cobs", "data": raw}, {"error": True}))
    for n in (0, 1, 3, 4, 5, 64, 1000, 4100):
        data = bytes(rng.randrange(256) for _ in range(n))
        crc = zlib.crc32(data)
        cases.append(("crc", {"op": "crc", "data": data.hex()},
                      {"crc": crc, "crc_py": crc, "le": struct.pack("<I", crc).hex()}))
    # damaged streams: same payloads and the same counters as the host's decoder
    for k in range(6):
        stream = _damaged_stream(rng)
        host = FrameDecoder()
        payloads = [p.hex() for p in host.feed(stream)]
        expected = {"payloads": payloads, "stats": dict(host.stats)}
        cases.append(("damaged streams", {"op": "stream", "input": stream.hex(),
                                          "chunk": rng.choice([1, 3, 64, 1000])}, expected))
    return cases


CASES = _cases()
GROUPS = sorted({group for group, _, _ in CASES})


def _check(group: str, results: list[dict]) -> None:
    checked = 0
    for (g, case, expected), got in zip(CASES, results, strict=True):
        if g != group:
            continue
        checked += 1
        label = f"{group}: {case.get('name', '')} {json.dumps(case)[:120]}"
        if "error" in expected:                      # refused: any error text
            assert got.get("error"), label
        elif group == "refused messages":
            assert got.get("error"), label
            assert got["version_mismatch"] == expected["version_mismatch"], label
        else:
            assert _plain(got) == _plain(expected), label
    assert checked


@pytest.fixture(scope="module")
def micropython_results() -> dict:
    job_hex = binascii.hexlify(json.dumps([c for _, c, _ in CASES]).encode()).decode()
    code = (HERE / "pico_wire_job.py").read_text() + f'\nmain("{job_hex}")\n'
    done = virtual.run_script(code, timeout_s=240, heap_kb=65536)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.parametrize("group", GROUPS)
def test_cpython_board_codec_matches_host(group):
    _check(group, [_plain(job.run_case(case)) for _, case, _ in CASES])


@NEEDS_NODE_MODULES
@pytest.mark.parametrize("group", GROUPS)
def test_micropython_board_codec_matches_host(group, micropython_results):
    _check(group, micropython_results["cases"])


@NEEDS_NODE_MODULES
def test_micropython_is_the_runtime_and_uses_its_c_crc(micropython_results):
    assert micropython_results["runtime"] == "micropython"
    assert micropython_results["crc_from_binascii"] is True


# --- CPython-only details -------------------------------------------------------------------
def test_constants_follow_the_protocol_and_host_framing():
    from bridge import framing
    assert wire.MAX_PAYLOAD_BYTES == protocol.MAX_PAYLOAD_BYTES
    assert wire.MAX_FRAME_BYTES == framing.MAX_FRAME_BYTES
    assert wire.MAX_BODY_BYTES == framing.MAX_BODY_BYTES


def test_pure_python_crc_matches_zlib():
    rng = random.Random(5)
    for n in range(0, 300, 7):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert wire.crc32_py(data) == zlib.crc32(data) == wire.crc32(data)


def test_deframer_survives_random_bytes_with_bounded_memory():
    rng = random.Random(11)
    d = wire.Deframer()
    good = encode_frame(codec.encode(protocol.END, [1, "ok"]))
    for _ in range(300):
        chunk = bytes(rng.randrange(256) if rng.random() < 0.9 else 0
                      for _ in range(rng.randint(0, 3000)))
        d.feed(chunk)
        assert d.pending() <= wire.MAX_FRAME_BYTES
    d.feed(bytes(rng.randint(1, 255) for _ in range(20000)))
    assert d.pending() <= wire.MAX_FRAME_BYTES
    # a delimiter, then a good frame, is always accepted after any garbage
    assert d.feed(b"\x00" + good) == [codec.encode(protocol.END, [1, "ok"])]
    assert sum(d.stats[k] for k in ("cobs_errors", "runts", "oversize", "crc_errors")) > 0


def test_encoder_refuses_what_the_host_refuses():
    with pytest.raises(wire.WireError):
        wire.encode_message(protocol.END, [-1, "x"])           # unsigned
    with pytest.raises(wire.WireError):
        wire.encode_message(protocol.END, [1])                  # field count
    with pytest.raises(wire.WireError):
        wire.encode_message(protocol.COMMAND, [1, "x", [0.0] * 3, 0, 0, [0.0] * 7, 0])
    with pytest.raises(wire.WireError):
        wire.encode_message(99, [])
    with pytest.raises(wire.WireError):
        wire.encode_message(protocol.END, [1, "x" * 5000])      # over MAX_PAYLOAD_BYTES
    with pytest.raises(wire.WireError):
        wire.pack(2**64)
    with pytest.raises(wire.WireError):
        wire.pack(-2**63 - 1)
    with pytest.raises(wire.WireError):
        wire.pack(object())


def test_integers_where_floats_are_due_are_sent_as_float64():
    payload = wire.encode_message(protocol.COMMAND, [1, 0, (1, 2, 3), 2, 5, [0] * 7, 4])
    assert payload == codec.encode(protocol.COMMAND, [1, 0, (1, 2, 3), 2, 5, [0] * 7, 4])
    assert payload.count(b"\xcb") == 11


def test_nesting_is_bounded():
    deep = b"\x91" * (wire.MAX_DEPTH + 5) + b"\x00"
    with pytest.raises(wire.WireError):
        wire.unpack(deep)
    with pytest.raises(wire.WireError):
        wire.unpack(b"\xdd\xff\xff\xff\xff")                    # a count the data cannot hold
