"""Framing on byte streams (bridge.framing): round trips, damage of every kind, resync,
chunking, the memory bound, the shared wire vectors and the doc's byte-exact frames.

No port here: the decoder takes bytes. Randomness comes from seeded random.Random.
"""

import importlib.util
import json
import pathlib
import random
import re
import sys
import zlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # repo root, not installed

import pytest
from cobs import cobs

from bridge import protocol as p
from bridge.codec import decode, encode
from bridge.errors import MalformedMessage, PayloadTooLarge
from bridge.framing import (COUNTERS, MAX_BODY_BYTES, MAX_FRAME_BYTES, FrameDecoder, crc32,
                            encode_frame)

VECTORS_DIR = ROOT / "tests" / "vectors"
VECTORS = json.loads((VECTORS_DIR / "wire_vectors.json").read_text(encoding="utf-8"))
ERRORS = ("cobs_errors", "runts", "oversize", "crc_errors")


def _make_vectors_module():
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS_DIR / "make_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _random_payload(rng: random.Random, size: int) -> bytes:
    """Random bytes with zero runs, so COBS has work to do."""
    zero_share = rng.choice((0.0, 0.05, 0.5, 1.0))
    return bytes(0 if rng.random() < zero_share else rng.randrange(1, 256) for _ in range(size))


def _feed_in_chunks(decoder: FrameDecoder, data: bytes, rng: random.Random) -> list[bytes]:
    out, k = [], 0
    while k < len(data):
        n = rng.choice((1, 2, 3, 7, 64, 500, 5000))
        out += decoder.feed(data[k:k + n])
        k += n
    return out


def _code_positions(encoded: bytes) -> list[int]:
    """Positions of the COBS code bytes in one encoded block (no delimiter)."""
    positions, k = [], 0
    while k < len(encoded):
        positions.append(k)
        k += encoded[k]
    return positions


# --- encoding


def test_crc_is_crc32_ieee():
    assert crc32(b"123456789") == 0xCBF43926 == zlib.crc32(b"123456789")
    assert crc32(b"") == 0


def test_frame_layout():
    frame = encode_frame(b"\x01\x00\x02")
    assert frame.endswith(b"\x00") and b"\x00" not in frame[:-1]
    assert cobs.decode(frame[:-1]) == b"\x01\x00\x02" + crc32(b"\x01\x00\x02").to_bytes(4, "little")


def test_encode_limits():
    assert len(encode_frame(b"\x01" * p.MAX_PAYLOAD_BYTES)) <= MAX_FRAME_BYTES
    with pytest.raises(PayloadTooLarge) as info:
        encode_frame(b"\x01" * (p.MAX_PAYLOAD_BYTES + 1))
    assert info.value.size_bytes == p.MAX_PAYLOAD_BYTES + 1
    with pytest.raises(MalformedMessage):
        encode_frame(b"")
    assert MAX_FRAME_BYTES == MAX_BODY_BYTES + 17 + 1 == 4118


def test_round_trips_of_every_size_class():
    rng = random.Random(1)
    sizes = [1, 2, 3, 4, 5, 253, 254, 255, 256, 507, 508, 509, 1000, 4095, 4096]
    sizes += [rng.randrange(1, p.MAX_PAYLOAD_BYTES + 1) for _ in range(100)]
    payloads = [_random_payload(rng, n) for n in sizes]
    decoder = FrameDecoder()
    out = decoder.feed(b"".join(encode_frame(x) for x in payloads))
    assert out == payloads
    assert decoder.stats["frames_ok"] == len(payloads)
    assert all(decoder.stats[kind] == 0 for kind in ERRORS + ("bytes_discarded",))
    assert decoder.pending_bytes == 0


def test_messages_round_trip_through_frames():
    cmd = encode(p.COMMAND, [3, 0.5, [-1.0, 0.0, 2.5], 2, 800, [0.0] * 7, 5])
    end = encode(p.END, [3, "touchdown"])
    decoder = FrameDecoder()
    assert [decode(x) for x in decoder.feed(encode_frame(cmd) + encode_frame(end))] == \
        [decode(cmd), decode(end)]


# --- damage: every bad candidate rejected and counted by kind, every good frame after kept


def _damaged(kind: str, rng: random.Random, frame: bytes) -> bytes:
    """A candidate (with its delimiter) that the decoder must count as ``kind``."""
    body = frame[:-1]
    if kind == "cobs_errors":  # cut inside a COBS block: its code points past the end
        blocks = [k for k in _code_positions(body) if body[k] > 2]
        k = rng.choice(blocks)
        return body[:k + rng.randrange(1, body[k] - 1)] + b"\x00"
    if kind == "crc_errors":  # flip one bit of a data byte, never making a 00
        codes = set(_code_positions(body))
        k = rng.choice([j for j in range(len(body)) if j not in codes])
        bit = rng.choice([1 << b for b in range(8) if body[k] ^ (1 << b)])
        return body[:k] + bytes([body[k] ^ bit]) + body[k + 1:] + b"\x00"
    if kind == "runts":
        return cobs.encode(_random_payload(rng, rng.randrange(0, 5))) + b"\x00"
    if kind == "oversize":
        while rng.random() < 0.5:  # valid COBS within the cap, too long once decoded
            encoded = cobs.encode(_random_payload(rng, rng.randrange(MAX_BODY_BYTES + 1, 4118)))
            if len(encoded) <= MAX_FRAME_BYTES:
                return encoded + b"\x00"
        return bytes(rng.randrange(1, 256) for _ in range(rng.randrange(MAX_FRAME_BYTES + 1,
                                                                        20000))) + b"\x00"
    raise ValueError(kind)


@pytest.mark.parametrize("seed", range(6))
def test_damage_is_counted_by_kind_and_the_next_frame_is_kept(seed):
    rng = random.Random(seed)
    stream, good, expected = bytearray(b"\x00"), [], dict.fromkeys(ERRORS, 0)
    for _ in range(150):
        payload = _random_payload(rng, rng.randrange(1, 600))
        frame = encode_frame(payload)
        if rng.random() < 0.4:
            kind = rng.choice(ERRORS)
            candidate = _damaged(kind, rng, frame)
            if kind == "oversize" and len(candidate) - 1 <= MAX_FRAME_BYTES:
                assert len(cobs.decode(candidate[:-1])) > MAX_BODY_BYTES
            expected[kind] += 1
            stream += candidate
        else:
            good.append(payload)
            stream += frame
    decoder = FrameDecoder()
    assert _feed_in_chunks(decoder, bytes(stream), rng) == good
    assert {kind: decoder.stats[kind] for kind in ERRORS} == expected
    assert decoder.stats["frames_ok"] == len(good)
    good_bytes = sum(len(encode_frame(x)) - 1 for x in good)
    assert decoder.stats["bytes_in"] == len(stream)
    assert decoder.stats["bytes_discarded"] == len(stream) - stream.count(0) - good_bytes


@pytest.mark.parametrize("seed", range(4))
def test_random_garbage_never_raises_and_resyncs(seed):
    """Garbage of any content, ended by a delimiter, costs no good frame."""
    rng = random.Random(100 + seed)
    stream, good = bytearray(), []
    for _ in range(100):
        if rng.random() < 0.5:
            stream += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) + b"\x00"
        payload = _random_payload(rng, rng.randrange(1, 300))
        good.append(payload)
        stream += encode_frame(payload)
    decoder = FrameDecoder()
    out = _feed_in_chunks(decoder, bytes(stream), rng)
    # Garbage can by chance be a valid frame (a 1 in 2**32 CRC match): not with these seeds.
    assert out == good
    stats = decoder.stats
    assert stats["frames_ok"] == len(good)
    assert stats["bytes_in"] == len(stream)


def test_garbage_glued_to_a_frame_costs_that_frame_only():
    a, b = encode_frame(b"first"), encode_frame(b"second")
    decoder = FrameDecoder()
    assert decoder.feed(b"\x17\x42" + a + b) == [b"second"]
    assert decoder.stats["frames_ok"] == 1
    assert sum(decoder.stats[kind] for kind in ERRORS) == 1


def test_truncation_at_every_point_is_rejected_and_the_next_frame_kept():
    payload = encode(p.COMMAND, [9, 0.25, [0.0, -1.0, 0.5], 3, 120, [1.0] * 7, 1])
    frame, nxt = encode_frame(payload), encode_frame(b"next")
    for cut in range(1, len(frame) - 1):
        decoder = FrameDecoder()
        assert decoder.feed(frame[:cut] + b"\x00" + nxt) == [b"next"], cut
        assert sum(decoder.stats[kind] for kind in ERRORS) == 1, cut


def test_every_single_bit_flip_is_rejected_and_the_next_frame_kept():
    payload = encode(p.END, [12, "bit flips"])
    frame, nxt = encode_frame(payload), encode_frame(b"next")
    for k in range(len(frame) - 1):
        for bit in range(8):
            damaged = bytearray(frame)
            damaged[k] ^= 1 << bit
            decoder = FrameDecoder()
            out = decoder.feed(bytes(damaged) + nxt)
            assert out == [b"next"], (k, bit)
            assert decoder.stats["frames_ok"] == 1


def test_byte_by_byte_equals_all_at_once():
    rng = random.Random(7)
    stream = bytearray()
    for _ in range(60):
        frame = encode_frame(_random_payload(rng, rng.randrange(1, 400)))
        stream += frame if rng.random() < 0.7 else _damaged(rng.choice(ERRORS), rng, frame)
    stream += bytes(rng.randrange(256) for _ in range(500))  # a partial candidate at the end
    whole, single = FrameDecoder(), FrameDecoder()
    out_whole = whole.feed(bytes(stream))
    out_single = [x for k in range(len(stream)) for x in single.feed(stream[k:k + 1])]
    assert out_single == out_whole and single.stats == whole.stats
    assert single.pending_bytes == whole.pending_bytes


def test_memory_stays_bounded_on_an_endless_stream():
    rng = random.Random(3)
    decoder = FrameDecoder()
    fed = 0
    while fed < 2_000_000:
        n = rng.choice((1, 100, 4096, 65536, 300_000))
        decoder.feed(bytes(rng.randrange(1, 256) for _ in range(min(n, 256))) * (n // 256 + 1))
        fed += (n // 256 + 1) * min(n, 256)
        assert decoder.pending_bytes <= MAX_FRAME_BYTES
    assert decoder.stats["oversize"] == 1  # one endless candidate, counted once
    assert decoder.stats["bytes_discarded"] == fed
    assert decoder.feed(b"\x00" + encode_frame(b"alive")) == [b"alive"]


def test_stats_are_the_documented_counters():
    assert set(FrameDecoder().stats) == set(COUNTERS) == {
        "bytes_in", "bytes_discarded", "frames_ok", "cobs_errors", "runts", "oversize",
        "crc_errors"}


# --- shared wire vectors (the board firmware checks itself against the same file)


def test_vectors_file_is_what_the_generator_writes():
    make_vectors = _make_vectors_module()
    text = (VECTORS_DIR / "wire_vectors.json").read_text(encoding="utf-8")
    assert make_vectors.render(make_vectors.build()) == text, \
        "tests/vectors/wire_vectors.json is stale: run tests/vectors/make_vectors.py"


@pytest.mark.parametrize("vector", VECTORS["messages"], ids=lambda v: v["name"])
def test_message_vectors(vector):
    make_vectors = _make_vectors_module()
    fields = make_vectors.from_json(vector["fields"])
    payload = bytes.fromhex(vector["payload_hex"])
    assert encode(vector["type_id"], fields) == payload
    assert list(decode(payload).fields.values()) == fields
    assert p.NAMES[vector["type_id"]] == vector["type"]
    assert encode_frame(payload).hex() == vector["frame_hex"]
    assert FrameDecoder().feed(bytes.fromhex(vector["frame_hex"])) == [payload]


def test_message_vectors_cover_every_message_and_the_canonical_msgpack_forms():
    assert {v["type_id"] for v in VECTORS["messages"]} == set(p.NAMES)
    assert {v["name"] for v in VECTORS["messages"]} >= {"hello_ack_doc", "command_doc"}
    used = set(VECTORS["msgpack_forms_used"])
    for form in ("positive fixint", "uint8", "uint16", "uint32", "uint64", "negative fixint",
                 "int8", "int16", "int32", "int64", "float64", "fixstr", "str8", "str16",
                 "fixarray", "array16", "fixmap", "map16", "nil", "false", "true"):
        assert any(name.startswith(form + " ") for name in used), form
    assert not any(name.startswith(("float32", "bin")) for name in used)


@pytest.mark.parametrize("vector", VECTORS["frames"], ids=lambda v: v["name"])
def test_frame_vectors(vector):
    payload = bytes.fromhex(vector["payload_hex"])
    assert f"{crc32(payload):08x}" == vector["crc32"]
    frame = bytes.fromhex(vector["frame_hex"])
    assert encode_frame(payload) == frame
    assert FrameDecoder().feed(frame) == [payload]


def test_longest_frame_vector_is_the_cap():
    (longest,) = [v for v in VECTORS["frames"] if v["name"] == "max_payload_nonzero"]
    assert len(bytes.fromhex(longest["frame_hex"])) == MAX_FRAME_BYTES == VECTORS["max_frame_bytes"]


def test_cobs_and_crc_vectors():
    for vector in VECTORS["cobs"]:
        data = bytes.fromhex(vector["data_hex"])
        assert cobs.encode(data).hex() == vector["cobs_hex"]
        assert cobs.decode(bytes.fromhex(vector["cobs_hex"])) == data
    for vector in VECTORS["crc"]:
        data = bytes.fromhex(vector["data_hex"])
        assert f"{zlib.crc32(data):08x}" == vector["crc32"]
        assert crc32(data).to_bytes(4, "little").hex() == vector["le_hex"]


@pytest.mark.parametrize("vector", VECTORS["streams"], ids=lambda v: v["name"])
def test_stream_vectors_whole_and_byte_by_byte(vector):
    data = bytes.fromhex(vector["input_hex"])
    expected = [bytes.fromhex(x) for x in vector["payloads_hex"]]
    whole = FrameDecoder()
    assert whole.feed(data) == expected and whole.stats == vector["stats"]
    single = FrameDecoder()
    assert [x for k in range(len(data)) for x in single.feed(data[k:k + 1])] == expected
    assert single.stats == vector["stats"]


# --- docs/protocol.md: the framing section's bytes are the vectors'


def _framing_section() -> str:
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    return doc.split("## Framing on byte streams (serial)")[1].split("\n## ")[0]


def test_doc_frames_are_the_vectors():
    section = _framing_section()
    blocks = re.findall(r"^```hex\n(.*?)^```", section, re.S | re.M)
    frames = [bytes.fromhex("".join(line.split("#")[0] for line in block.splitlines()))
              for block in blocks]
    by_name = {v["name"]: bytes.fromhex(v["frame_hex"]) for v in VECTORS["messages"]}
    assert frames == [by_name["hello_ack_doc"], by_name["command_doc"]]
    for name, frame in (("hello_ack_doc", frames[0]), ("command_doc", frames[1])):
        payload = FrameDecoder().feed(frame)[0]
        assert f"({len(payload)}-byte payload) as a {len(frame)}-byte frame" in section, name


def test_doc_states_the_limits_and_counters():
    section = _framing_section()
    assert f"**{MAX_FRAME_BYTES}** bytes (`MAX_FRAME_BYTES`)" in section
    assert f"1 to {p.MAX_PAYLOAD_BYTES} bytes" in section
    for counter in COUNTERS:
        assert f"`{counter}`" in section, counter
    assert "`serial://PATH[?baud=N]`" in section
