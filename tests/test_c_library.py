"""The C library (bridge/c) against the host: byte for byte on the shared wire vectors,
the same verdicts as the Python codec and deframer on damaged input, the generated
protocol header in step with bridge/protocol.py, strict compiles, a sanitizer fuzz run and
a Cortex-M0+ build.

The C side runs in bridge/c/build/fsil-vectors (tests/vectors_tool.c), fed one command per
line; one process serves a whole test.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys

import msgpack
import pytest

from bridge import protocol as p
from bridge.codec import decode
from bridge.errors import MalformedMessage, PayloadTooLarge, UnknownMessage, VersionError
from bridge.framing import COUNTERS, FrameDecoder, encode_frame
from c_build import BUILD, C_DIR, ROOT, build, have_zmq, missing  # tests/c_build.py

VECTORS = json.loads((ROOT / "tests" / "vectors" / "wire_vectors.json").read_text())


@pytest.fixture(scope="module")
def tool():
    build()
    return Tool()


class Tool:
    """bridge/c/build/fsil-vectors: commands in, one JSON answer per command out."""

    def run(self, commands: list[str]) -> list[dict]:
        done = subprocess.run([str(BUILD / "fsil-vectors")], input="\n".join(commands) + "\n",
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == len(commands), done.stdout[-2000:]
        return [json.loads(line) for line in lines]

    def one(self, command: str) -> dict:
        return self.run([command])[0]


def _bits(value):
    """A vector value with floats as {"bits": hex} only (the form the C tool prints)."""
    if isinstance(value, list):
        return [_bits(v) for v in value]
    if isinstance(value, dict):
        if "map" in value:
            return {"map": [[k, _bits(v)] for k, v in value["map"]]}
        return {"bits": value["bits"]}
    return value


def _py_bits(value):
    """A decoded Python value in the C tool's form."""
    import struct
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return {"bits": struct.pack(">d", value).hex()}
    if isinstance(value, dict):
        return {"map": [[k, _py_bits(v)] for k, v in value.items()]}
    return [_py_bits(v) for v in value]


# --- the shared vectors, byte for byte ------------------------------------------------------

def test_every_message_vector_decodes_and_encodes_byte_for_byte(tool):
    messages = VECTORS["messages"]
    assert {m["type_id"] for m in messages} == set(p.LAYOUTS), "a message type has no vector"
    answers = tool.run([f"decode {m['payload_hex']}" for m in messages])
    for vector, got in zip(messages, answers):
        name = vector["name"]
        assert got["ok"], f"{name}: {got}"
        assert got["type"] == vector["type_id"] and got["name"] == vector["type"], name
        assert got["fields"] == _bits(vector["fields"]), name
        assert got["reencoded"] == vector["payload_hex"], f"{name}: fsil_encode differs"
        assert got["repacked"] == vector["payload_hex"], f"{name}: msgpack writer differs"


def test_every_message_vector_frames_byte_for_byte(tool):
    messages = VECTORS["messages"]
    answers = tool.run([f"frame {m['payload_hex']}" for m in messages])
    for vector, got in zip(messages, answers):
        assert got["frame"] == vector["frame_hex"], vector["name"]


def test_frame_vectors(tool):
    frames = VECTORS["frames"]
    answers = tool.run([f"frame {f['payload_hex']}" for f in frames]
                       + [f"deframe {f['frame_hex']}" for f in frames])
    for k, vector in enumerate(frames):
        assert answers[k]["frame"] == vector["frame_hex"], vector["name"]
        back = answers[len(frames) + k]
        assert back["payloads"] == [vector["payload_hex"]], vector["name"]
        assert back["stats"]["frames_ok"] == 1


def test_cobs_and_crc_vectors(tool):
    cobs, crcs = VECTORS["cobs"], VECTORS["crc"]
    answers = tool.run([f"cobs {c['data_hex']}" for c in cobs] + [f"crc {c['data_hex']}" for c in crcs])
    for vector, got in zip(cobs, answers):
        assert got["cobs"] == vector["cobs_hex"], vector
        assert got["decoded_ok"] and got["decoded"] == vector["data_hex"], vector
    for vector, got in zip(crcs, answers[len(cobs):]):
        assert got["crc32"] == vector["crc32"], vector


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "byte_by_byte"])
def test_damaged_stream_vectors_give_the_same_payloads_and_counters(tool, bytewise):
    streams = VECTORS["streams"]
    verb = "deframe1" if bytewise else "deframe"
    answers = tool.run([f"{verb} {s['input_hex']}" for s in streams])
    for vector, got in zip(streams, answers):
        assert got["payloads"] == vector["payloads_hex"], vector["name"]
        assert got["stats"] == vector["stats"], vector["name"]
    assert sorted(answers[0]["stats"]) == sorted(COUNTERS)


def test_refused_vectors_are_refused_for_the_same_reason(tool):
    refused = VECTORS["refused"]
    answers = tool.run([f"decode {r['payload_hex']}" for r in refused])
    status = {cls.__name__: name for cls, name in _ERROR_STATUS.items()}
    schema_refusals = 0
    for vector, got in zip(refused, answers):
        assert not got["ok"], vector["name"]
        assert got["status"] == status[vector["error"]], (vector["name"], got)
        if vector["field"]:
            assert f" field {vector['field']}:" in got["error"], (vector["name"], got["error"])
        if vector["field"] in ("rates", "config"):  # the schema: the same key path and check
            schema_refusals += 1
            assert _c_detail(got) == _host_detail(bytes.fromhex(vector["payload_hex"])), \
                vector["name"]
    assert schema_refusals >= 10, "the vectors lost their refused HELLOs"
    by_name = dict(zip((r["name"] for r in refused), answers))
    assert "board firmware speaks protocol 1" in by_name["version_1_end"]["error"]


# --- the same verdicts as the host on damaged and random input ------------------------------

_ERROR_STATUS = {VersionError: "protocol version mismatch", UnknownMessage: "unknown message type",
                 PayloadTooLarge: "payload too large", MalformedMessage: "malformed message"}


def _mutants(seed: int, count: int) -> list[bytes]:
    """Payloads near the vectors: bytes flipped, set, inserted, cut, spliced."""
    rng = random.Random(seed)
    bases = [bytes.fromhex(m["payload_hex"]) for m in VECTORS["messages"]]
    interesting = [0x00, 0x7f, 0x80, 0x90, 0x9f, 0xa0, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xca, 0xcb,
                   0xcc, 0xcf, 0xd0, 0xd3, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff]
    out = []
    for _ in range(count):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(5)
            at = rng.randrange(len(data)) if data else 0
            if op == 0 and data:
                data[at] ^= 1 << rng.randrange(8)
            elif op == 1 and data:
                data[at] = rng.choice(interesting)
            elif op == 2:
                data[at:at] = bytes([rng.choice(interesting)])
            elif op == 3 and data:
                del data[at:at + rng.randint(1, 9)]
            else:
                other = rng.choice(bases)
                cut = rng.randrange(len(other))
                data = data[:at] + other[cut:cut + rng.randint(1, 40)]
        out.append(bytes(data))
    return out


def _python_verdict(payload: bytes):
    try:
        msg = decode(payload)
    except tuple(_ERROR_STATUS) as error:
        for cls, status in _ERROR_STATUS.items():
            if isinstance(error, cls):
                return status, None
    return "ok", (msg.type_id, [_py_bits(msg.fields[n]) for n, _ in p.LAYOUTS[msg.type_id]])


def _differences(tool, payloads: list[bytes]) -> list[str]:
    answers = tool.run([f"decode {x.hex()}" for x in payloads])
    diffs = []
    for payload, got in zip(payloads, answers):
        want, fields = _python_verdict(payload)
        if got["ok"]:
            mine = ("ok", (got["type"], got["fields"]))
            if mine != (want, fields) or got["reencoded"] != encode_again(got, payload):
                diffs.append(f"{payload.hex()}: python {want} {fields}, C ok {got['fields']}")
        elif got["status"] != want:
            diffs.append(f"{payload.hex()}: python {want}, C {got['status']} ({got['error']})")
    return diffs


def encode_again(got: dict, payload: bytes) -> str:
    """What the host encodes for the message C decoded (its smallest-form bytes)."""
    from bridge.codec import encode
    return encode(got["type"], decode(payload).fields).hex()


# C's reasons for refusing what the host accepts: the documented differences of
# bridge/c/README.md ("Where C is stricter than the host"), and only these.
_C_STRICTER = ("a msgpack form the protocol never uses (c1, bin or ext)",
               "a map key that is not a string", "arrays and maps nested too deep",
               "frame field imu: more than 60 IMU samples")


def _c_accepts_what_python_accepts(diff: str) -> bool:
    """A difference that is one of the documented ones: C refuses, the host accepts, and
    C's reason is one of _C_STRICTER."""
    return "python ok" in diff and "C malformed message" in diff and \
        any(reason in diff for reason in _C_STRICTER)


def test_mutated_payloads_get_the_host_codecs_verdict(tool):
    payloads = _mutants(seed=8, count=3000)
    diffs = [d for d in _differences(tool, payloads) if not _c_accepts_what_python_accepts(d)]
    assert not diffs, f"{len(diffs)} of {len(payloads)} differ, e.g.\n" + "\n".join(diffs[:5])


def test_random_bytes_get_the_host_codecs_verdict(tool):
    rng = random.Random(9)
    payloads = [bytes([0x90 | rng.randrange(2, 10), 1]) + rng.randbytes(rng.randrange(0, 40))
                for _ in range(1500)]
    payloads += [rng.randbytes(rng.randrange(0, 30)) for _ in range(500)]
    payloads.append(b"\x91" + b"\x00" * (p.MAX_PAYLOAD_BYTES + 1))
    diffs = [d for d in _differences(tool, payloads) if not _c_accepts_what_python_accepts(d)]
    assert not diffs, f"{len(diffs)} of {len(payloads)} differ, e.g.\n" + "\n".join(diffs[:5])


# --- HELLO contents: the schema of the table, checked by C as by the host ----------------------

def _host_detail(payload: bytes) -> str | None:
    """The host's reason for refusing a HELLO, as 'FIELD: DETAIL' (None: accepted), with the
    value it got named by its type only: C says "got float" where the host says "got float
    -1.0", and "got array of 3" for "got list [...]" (the one documented difference)."""
    try:
        decode(payload)
    except MalformedMessage as error:
        text = f"{error.field}: {error.detail}"
        head, got, value = text.partition(", got ")
        if not got:
            return text
        kind = value.split(" ", 1)[0]
        if kind == "list":
            where = error.detail.split(", got ")[0]
            path = where.split(": ")[0].split(".") if ": " in where else []
            x = msgpack.unpackb(payload)[{"rates": 4, "config": 5}[error.field]]
            for key in path:
                x = x[key]
            kind = f"array of {len(x)}"
        return f"{head}, got {kind}"
    return None


def _c_detail(got: dict) -> str | None:
    """The C tool's reason in the same form: 'FIELD: DETAIL'."""
    if got["ok"]:
        return None
    found = re.match(r"hello field (\w+): (.*)$", got["error"])
    assert found, got["error"]
    return f"{found.group(1)}: {found.group(2)}"


class _Pairs(list):
    """A map given as (key, value) pairs, so a key can appear twice."""


def _pack(value) -> bytes:
    if isinstance(value, (dict, _Pairs)):
        pairs = list(value.items()) if isinstance(value, dict) else list(value)
        out = bytearray(msgpack.Packer().pack_map_header(len(pairs)))
        for key, x in pairs:
            out += _pack(key) + _pack(x)
        return bytes(out)
    if isinstance(value, list):
        return msgpack.Packer().pack_array_header(len(value)) + b"".join(map(_pack, value))
    return msgpack.packb(value, use_bin_type=True)


_ODD = [0, 1, -1, 0.5, 1.5, -0.0, 2**63 - 1, 2**64 - 1, -2**63, float("nan"), float("inf"),
        -float("inf"), True, False, None, "x", [], [1.0, 2.0], [1.0, 2.0, 3.0], [0.0, -0.0, 0],
        [1, -2, 3], [2, 3, 4], [0.5, 0.0, 1], [1.0, 0.0, float("nan")], [1.0, 0.0, 0.0, 0.0],
        [0, 0, 0, 0], [[1.0, 0, 0]] * 3, [[1.0, 0, 0], [0, 0, 0], [0, 1, 0]], [[1, 0, 0]] * 2,
        [[1, 0, 0], [0, 1, 0], "z"], {}, {"a": 1}]


def _schema_paths(schema, value, prefix=()):
    """Every key path of a schema that value holds, maps before their keys."""
    for key, check, _ in schema:
        if key in value:
            yield prefix + (key,)
            if type(check) is tuple:
                yield from _schema_paths(check, value[key], prefix + (key,))


def _edit(tree, path, how, x=None):
    """A copy of tree with path replaced by x, deleted, or given twice (x first or last)."""
    import copy
    tree = copy.deepcopy(tree)
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if how == "set":
        parent[key] = x
    elif how == "delete":
        del parent[key]
    else:  # "twice_first" / "twice_last": a duplicate key, x before or after the good value
        pairs = _Pairs(parent.items())
        pairs.insert(0 if how == "twice_first" else len(pairs), (key, x))
        if len(path) == 1:
            return pairs
        grand = tree
        for k in path[:-2]:
            grand = grand[k]
        grand[path[-2]] = pairs
    return tree


def _hello_mutants() -> list[bytes]:
    from hello_sample import _value  # tests/hello_sample.py: the vectors' values as Python
    fields = _value(next(m["fields"] for m in VECTORS["messages"]
                         if m["name"] == "hello_v2_sections"))
    role, scenario, rates, config = fields
    out = []
    for index, schema, tree in ((2, p.RATES_SCHEMA, rates), (3, p.CONFIG_SCHEMA, config)):
        def hello(changed):
            parts = [p.PROTOCOL_VERSION, p.HELLO, role, scenario, rates, config]
            parts[index + 2] = changed
            return _pack(parts)
        for path in _schema_paths(schema, tree):
            out.append(hello(_edit(tree, path, "delete")))
            for x in _ODD:
                out.append(hello(_edit(tree, path, "set", x)))
            out.append(hello(_edit(tree, path, "twice_first", "bad")))
            out.append(hello(_edit(tree, path, "twice_last", "bad")))
        out.append(hello(_edit(tree, ("unlisted_key",), "set", [None, {"x": "y"}])))
        out += [hello(x) for x in _ODD if not isinstance(x, dict)]
    return out


def test_hello_contents_get_the_host_schemas_verdict_and_key_path(tool):
    """Every key of RATES_SCHEMA and CONFIG_SCHEMA (with the optional moon and velocimeter)
    deleted, given twice, and set to ~30 values of every type and range edge: C accepts
    what the host accepts and refuses the rest naming the same field and key path with the
    same check's words (the value it got named by its type)."""
    payloads = _hello_mutants()
    answers = tool.run([f"decode {x.hex()}" for x in payloads])
    refused = 0
    for payload, got in zip(payloads, answers):
        want = _host_detail(payload)
        assert _c_detail(got) == want, (payload.hex(), want, got)
        refused += want is not None
    assert len(payloads) > 1400 and 0.5 * len(payloads) < refused < len(payloads)


def test_random_streams_give_the_host_deframers_counters(tool):
    rng = random.Random(10)
    good = [encode_frame(bytes.fromhex(m["payload_hex"])) for m in VECTORS["messages"]]
    streams = []
    for _ in range(200):
        data = bytearray()
        for _ in range(rng.randint(1, 6)):
            piece = bytearray(rng.choice(good))
            for _ in range(rng.randint(0, 3)):
                at = rng.randrange(len(piece))
                piece[at] = rng.choice([0, rng.randrange(256), piece[at] ^ 0x10])
            if rng.random() < 0.2:
                piece = piece[:rng.randrange(len(piece))]
            data += piece
        if rng.random() < 0.1:
            data += bytes(rng.randrange(1, 256) for _ in range(4200))  # an oversize run
        streams.append(bytes(data))
    answers = tool.run([f"deframe {s.hex()}" for s in streams])
    for stream, got in zip(streams, answers):
        decoder = FrameDecoder()
        payloads = decoder.feed(stream)
        assert got["payloads"] == [x.hex() for x in payloads], stream.hex()
        assert got["stats"] == decoder.stats, stream.hex()
        assert got["pending"] == decoder.pending_bytes


# --- the generated table ----------------------------------------------------------------------

def test_generated_protocol_files_match_the_table():
    done = subprocess.run([sys.executable, str(C_DIR / "gen_protocol.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_generated_header_has_the_tables_ids_modes_and_flags():
    header = (C_DIR / "include" / "fsil" / "protocol.h").read_text()
    defines = dict(re.findall(r"#define (FSIL_\w+) (\d+)u?\b", header))
    assert int(defines["FSIL_PROTOCOL_VERSION"]) == p.PROTOCOL_VERSION
    assert int(defines["FSIL_MAX_PAYLOAD_BYTES"]) == p.MAX_PAYLOAD_BYTES
    for type_id, name in p.NAMES.items():
        assert int(defines[f"FSIL_MSG_{name.upper()}"]) == type_id
    for index, mode in enumerate(p.MODES):
        assert int(defines[f"FSIL_MODE_{mode.upper()}"]) == index
    for key in dir(p):
        if key.startswith("FLAG_"):
            assert int(defines[f"FSIL_{key}"]) == getattr(p, key)
    for type_id, layout in p.LAYOUTS.items():
        struct = re.search(r"typedef struct \{  /\* %s \(%d\) \*/\n(.*?)\n\} "
                           % (p.NAMES[type_id], type_id), header, re.S)
        members = re.findall(r"(\w+)(?:\[\d+\])?;", struct.group(1))
        assert members == [name for name, _ in layout], p.NAMES[type_id]


def test_a_changed_table_makes_the_check_fail(tmp_path):
    """Copy the generator and the table elsewhere, add a field: --check must fail."""
    (tmp_path / "bridge" / "c").mkdir(parents=True)
    for rel in ("bridge/protocol.py", "bridge/codec.py", "bridge/c/gen_protocol.py"):
        shutil.copy(ROOT / rel, tmp_path / rel)
    for rel in ("include/fsil/protocol.h", "src/protocol_tables.c"):
        (tmp_path / "bridge" / "c" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(C_DIR / rel, tmp_path / "bridge" / "c" / rel)
    gen = [sys.executable, str(tmp_path / "bridge" / "c" / "gen_protocol.py"), "--check"]
    assert subprocess.run(gen, capture_output=True).returncode == 0
    table = tmp_path / "bridge" / "protocol.py"
    table.write_text(table.read_text().replace('("reason", "s"),', '("reason", "s"), ("x", "u"),'))
    done = subprocess.run(gen, capture_output=True, text=True)
    assert done.returncode == 1 and "out of date" in done.stderr
    table.write_text(table.read_text().replace('("x", "u")', '("x", "q9")'))
    done = subprocess.run(gen[:-1], capture_output=True, text=True)
    assert done.returncode != 0 and "'q9'" in done.stderr + done.stdout
    table.write_text(table.read_text().replace('("x", "q9")', '("x", "u")'))
    assert subprocess.run(gen[:-1], capture_output=True).returncode == 0  # regenerated
    assert subprocess.run(gen, capture_output=True).returncode == 0
    # the HELLO schema is part of the table: a new key, then a check C does not know
    table.write_text(table.read_text().replace('("isp_s", "pos", True),',
                                               '("isp_s", "pos", True), ("y_m", "real", True),'))
    done = subprocess.run(gen, capture_output=True, text=True)
    assert done.returncode == 1 and "out of date" in done.stderr
    table.write_text(table.read_text().replace('("y_m", "real", True)', '("y_m", "odd9", True)')
                     .replace('"map": "a map with string keys",',
                              '"map": "a map with string keys", "odd9": "odd",'))
    done = subprocess.run(gen[:-1], capture_output=True, text=True)
    assert done.returncode != 0 and "'odd9'" in done.stderr + done.stdout


# --- compiles: strict host build, sanitizers, the Pico's core ----------------------------------

def test_library_builds_with_strict_c99_warnings_as_errors(tmp_path):
    """Every source, compiled here on its own with the strict flags (not only via make)."""
    build()
    if shutil.which("cc") is None:
        missing("cc not found")
    strict = ["cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2",
              "-I", str(C_DIR / "include"), "-I", str(C_DIR / "examples")]
    sources = sorted((C_DIR / "src").glob("*.c")) + sorted((C_DIR / "examples").glob("*.c"))
    if not have_zmq():
        sources = [s for s in sources if s.name != "zmq_link.c"]
    else:
        strict += ["-DFSIL_WITH_ZMQ"] + subprocess.run(
            ["pkg-config", "--cflags", "libzmq"], capture_output=True, text=True).stdout.split()
    for k, source in enumerate(sources):
        done = subprocess.run(strict + ["-c", str(source), "-o", str(tmp_path / f"{k}.o")],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{source.name}:\n{done.stderr}"
    assert (BUILD / "libfsil.a").is_file() and (BUILD / "fsil-example-fsw").is_file()


def test_fuzz_driver_under_address_and_undefined_sanitizers():
    """A short bounded run; the long one is `bridge/c/build/fsil-fuzz 2000000` (CI step)."""
    build()
    code, _ = subprocess.run(["cc", "-fsanitize=address,undefined", "-x", "c", "-", "-o",
                              "/dev/null"], input=b"int main(void){return 0;}",
                             capture_output=True).returncode, None
    if code != 0:
        missing("the C compiler cannot link with -fsanitize=address,undefined here")
    build("fuzz")
    done = subprocess.run([str(BUILD / "fsil-fuzz"), "30000", "7"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["inputs"] >= 30000 and report["crashes"] == 0
    # every damaged frame counted: rejected + delivered = frames fed
    assert report["frames_bad_counted"] == report["frames_bad_fed"]
    assert report["frames_good_delivered"] == report["frames_good_fed"]


def test_portable_part_compiles_for_the_picos_cortex_m0plus():
    if shutil.which("arm-none-eabi-gcc") is None:
        missing("arm-none-eabi-gcc not found (Debian: apt-get install gcc-arm-none-eabi "
                "libnewlib-arm-none-eabi)")
    out = build("arm")
    elf = BUILD / "arm" / "fsil-m0plus-check.elf"
    assert elf.is_file()
    head = elf.read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and head[18] == 40, "not an ARM ELF"  # e_machine EM_ARM
    print(out[-1500:])
