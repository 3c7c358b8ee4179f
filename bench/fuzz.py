"""Fuzz the wire from outside: the codec, the deframer, a live plant and a live `fsil fsw`.

    .venv/bin/python bench/fuzz.py [--codec 700000] [--deframer 300000] [--plant 40]
                                   [--fsw 40] [--oversize-mib 256] [--seed 1] [--json FILE]

Every input is a mutation of a valid one (seeded, so a run can be repeated):

* bytes: bit flips, byte changes, insertions, deletions, truncations, repeated slices,
  another version or type id;
* structure: the message unpacked, one value anywhere inside it (a field, an IMU element,
  a key of the HELLO config) replaced by a nasty one -- NaN, infinities, 2^63, 2^64 - 1,
  -1, 1e308, a boolean, a string, nil, an empty or deeply nested array, a map -- and
  packed again.

Targets:

* codec: ``bridge.codec.decode`` in this process. Documented = a ProtocolError (or a clean
  decode, whose re-encoding must decode to the same message); a crash is anything else.
* deframer: ``bridge.framing.FrameDecoder`` fed damaged byte streams of framed messages
  in random chunks; it must never raise, keep at most MAX_FRAME_BYTES pending, and return
  only payloads whose CRC is right.
* plant: ``fsil plant`` as its own process; this script is its flight software and sends
  mutated HELLO_ACKs and COMMANDs (legal extremes keep a session going; the first refused
  one must end it). Documented = exit code 0, 1 or 3, at most one line on stderr, no
  traceback, summary.json written; a hang = not ended within the timeout after the input.
  The first session starts with one 256 MiB message (``--oversize-mib``): the plant's peak
  memory in that session is printed (issue 13 saw 553 MiB).
* fsw: ``fsil fsw`` as its own process; this script is its plant and sends mutated HELLOs
  and FRAMEs. Documented = exit code 0, 1 or 3, at most one line on stderr, no traceback.

Prints per target the inputs, the documented rejections, the accepted inputs, crashes,
hangs and memory (this process's RSS before and after the in-process targets; the live
processes' peak RSS, first and last session). Target: 0 crashes, 0 hangs, flat memory.
The first few crashes are printed with their input (hex) and traceback.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402

from bridge import protocol as p  # noqa: E402
from bridge.codec import decode, encode  # noqa: E402
from bridge.errors import BridgeError, PeerTimeout, ProtocolError  # noqa: E402
from bridge.framing import MAX_FRAME_BYTES, FrameDecoder, crc32, encode_frame  # noqa: E402
from bridge.url import open_link  # noqa: E402

VECTORS = json.loads((ROOT / "tests" / "vectors" / "wire_vectors.json").read_text())
SHOW_CRASHES = 5
SESSION_TIMEOUT_S = 60.0   # a live process must end within this after its last input
PEER_TIMEOUT_S = 3.0       # what the live processes are told to wait for us

NASTY = [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 2**63, 2**64 - 1, -2**63, -1, 0,
         2**32, 7, True, False, None, "", "x" * 300, [], [[[[[]]]]], {}, {"a": 1}, 0.0, -0.0,
         [math.nan] * 7, [1e300] * 3]


def _vector_value(v):
    if isinstance(v, dict):
        if "bits" in v:
            import struct
            return struct.unpack(">d", bytes.fromhex(v["bits"]))[0]
        if "map" in v:
            return {k: _vector_value(x) for k, x in v["map"]}
    if isinstance(v, list):
        return [_vector_value(x) for x in v]
    return v


SEEDS = [bytes.fromhex(m["payload_hex"]) for m in VECTORS["messages"]]
SEEDS += [bytes.fromhex(r["payload_hex"]) for r in VECTORS["refused"]]


# --- mutations ------------------------------------------------------------------------------
def _leaves(obj, path=()):
    """Paths to every value inside a decoded message (lists by index, maps by key)."""
    yield path
    if isinstance(obj, list):
        for k, x in enumerate(obj):
            yield from _leaves(x, path + (k,))
    elif isinstance(obj, dict):
        for k, x in obj.items():
            yield from _leaves(x, path + (k,))


def _replace(obj, path, value):
    if not path:
        return value
    node = obj
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return obj


def mutate_structure(rng: random.Random, payload: bytes) -> bytes:
    """One value anywhere inside the message replaced by a nasty one."""
    try:
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception:
        return mutate_bytes(rng, payload)
    paths = list(_leaves(obj))[1:]
    if not paths:
        return mutate_bytes(rng, payload)
    obj = _replace(copy.deepcopy(obj), rng.choice(paths), copy.deepcopy(rng.choice(NASTY)))
    try:
        return msgpack.packb(obj, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):
        return payload


def mutate_bytes(rng: random.Random, payload: bytes) -> bytes:
    data = bytearray(payload)
    for _ in range(rng.choice([1, 1, 1, 2, 3, 8])):
        op = rng.randrange(7)
        n = len(data)
        if op == 0 and n:
            k = rng.randrange(n)
            data[k] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            data[rng.randrange(n)] = rng.randrange(256)
        elif op == 2:
            k = rng.randrange(n + 1)
            data[k:k] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3 and n:
            k = rng.randrange(n)
            del data[k:k + rng.randint(1, 16)]
        elif op == 4 and n:
            del data[rng.randrange(n):]
        elif op == 5 and n:
            k = rng.randrange(n)
            data[k:k] = data[k:k + rng.randint(1, 32)] * rng.randint(1, 4)
        elif op == 6 and n > 2:
            data[rng.choice([1, 2])] = rng.choice([0, 1, 2, 3, 6, 7, 0x7f, 0xcc, 0xc0])
    return bytes(data)


def mutate(rng: random.Random, payload: bytes) -> bytes:
    return mutate_structure(rng, payload) if rng.random() < 0.5 else mutate_bytes(rng, payload)


# --- bookkeeping ----------------------------------------------------------------------------
class Tally:
    def __init__(self, name: str) -> None:
        self.name = name
        self.inputs = self.rejected = self.accepted = self.crashes = self.hangs = 0
        self.examples: list[str] = []
        self.memory: dict = {}
        self.notes: dict = {}

    def crash(self, what: str) -> None:
        self.crashes += 1
        if len(self.examples) < SHOW_CRASHES:
            self.examples.append(what)

    def row(self) -> str:
        mem = ", ".join(f"{k} {v}" for k, v in self.memory.items())
        return (f"{self.name:<9} {self.inputs:>9,} {self.rejected:>9,} {self.accepted:>9,} "
                f"{self.crashes:>7} {self.hangs:>5}  {mem}")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


# --- in-process targets ---------------------------------------------------------------------
def fuzz_codec(n: int, rng: random.Random) -> Tally:
    t = Tally("codec")
    t.memory["rss_before_mib"] = round(rss_mib(), 1)
    signal.signal(signal.SIGALRM, _alarm)
    done = 0
    while done < n:
        batch = min(2000, n - done)
        signal.alarm(30)  # a batch that takes this long holds a hang
        try:
            for _ in range(batch):
                data = mutate(rng, rng.choice(SEEDS))
                t.inputs += 1
                try:
                    msg = decode(data)
                except ProtocolError:
                    t.rejected += 1
                    continue
                except Exception:
                    t.crash(f"decode({data.hex()}):\n{traceback.format_exc()}")
                    continue
                t.accepted += 1
                try:  # accepted: re-encoding is canonical and stable (NaN may sit in free maps)
                    once = encode(msg.type_id, msg.fields)
                    if encode(msg.type_id, decode(once).fields) != once:
                        t.crash(f"re-encoding {data.hex()} is not stable")
                except Exception:
                    t.crash(f"re-encode of {data.hex()}:\n{traceback.format_exc()}")
        except _Hang:
            t.hangs += 1
        finally:
            signal.alarm(0)
        done += batch
    t.memory["rss_after_mib"] = round(rss_mib(), 1)
    return t


def fuzz_deframer(n: int, rng: random.Random) -> Tally:
    """n damaged streams, each of a few framed messages, fed in random chunks."""
    t = Tally("deframer")
    t.memory["rss_before_mib"] = round(rss_mib(), 1)
    good = [s for s in SEEDS if 0 < len(s) <= p.MAX_PAYLOAD_BYTES]
    decoder = FrameDecoder()  # one decoder for everything: it must never get stuck
    max_pending = last_errors = 0
    signal.signal(signal.SIGALRM, _alarm)
    done = 0
    while done < n:
        batch = min(500, n - done)
        signal.alarm(30)
        try:
            for _ in range(batch):
                stream = bytearray()
                for _ in range(rng.randint(1, 4)):
                    f = encode_frame(rng.choice(good))
                    if rng.random() < 0.7:
                        f = mutate_bytes(rng, f)
                    stream += f
                if rng.random() < 0.02:
                    stream += bytes(rng.randint(1, 255) for _ in range(rng.randint(4000, 9000)))
                t.inputs += 1
                k = 0
                try:
                    out = []
                    while k < len(stream):
                        step = rng.choice([1, 7, 64, 4096, len(stream)])
                        out += decoder.feed(bytes(stream[k:k + step]))
                        k += step
                        max_pending = max(max_pending, decoder.pending_bytes)
                except Exception:
                    t.crash(f"feed({bytes(stream).hex()[:200]}...):\n{traceback.format_exc()}")
                    decoder = FrameDecoder()
                    continue
                if decoder.pending_bytes > MAX_FRAME_BYTES:
                    t.crash(f"{decoder.pending_bytes} bytes pending, over {MAX_FRAME_BYTES}")
                errors = sum(decoder.stats[k] for k in ("cobs_errors", "runts", "oversize",
                                                        "crc_errors"))
                if out:
                    t.accepted += 1
                if errors > last_errors:
                    t.rejected += 1
                last_errors = errors
                for payload in out:
                    if not payload:
                        t.crash("an empty payload came out")
                # an intact frame after a delimiter always comes through (after whatever
                # the delimiter completes)
                probe = rng.choice(good)
                if decoder.feed(b"\x00" + encode_frame(probe))[-1:] != [probe]:
                    t.crash(f"a clean frame after {bytes(stream).hex()[:200]}... was lost")
        except _Hang:
            t.hangs += 1
        finally:
            signal.alarm(0)
        done += batch
    t.notes["deframer_counters"] = dict(decoder.stats)
    t.notes["max_pending_bytes"] = max_pending
    t.memory["rss_after_mib"] = round(rss_mib(), 1)
    assert crc32(b"123456789") == 0xCBF43926
    return t


# --- live processes ---------------------------------------------------------------------------
def _fsil(*args: str, out_dir: pathlib.Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "hil.cli", *args], env=env, cwd=out_dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _finish(t: Tally, proc: subprocess.Popen, label: str, peaks: list,
            summary: pathlib.Path | None = None) -> None:
    """Wait for a live process and judge how it ended."""
    peak = peak_rss_mib(proc.pid)
    try:
        out, err = proc.communicate(timeout=SESSION_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        t.hangs += 1
        t.examples.append(f"{label}: no exit within {SESSION_TIMEOUT_S:g} s") \
            if len(t.examples) < SHOW_CRASHES else None
        return
    if peak is not None:
        peaks.append(peak)
    lines = [line for line in err.splitlines() if line.strip()]
    bad = []
    if proc.returncode not in (0, 1, 3):
        bad.append(f"exit code {proc.returncode}")
    if "Traceback" in err or len(lines) > 1:
        bad.append(f"stderr of {len(lines)} lines")
    if "fsw: fsw:" in err:
        bad.append('"fsw: fsw:" in the message')
    if summary is not None and not summary.exists():
        bad.append("no summary.json")
    if bad:
        t.crash(f"{label}: {', '.join(bad)}\n{err[-1500:]}")


def _legal_extreme_command(rng: random.Random, seq: int) -> list:
    """A COMMAND the codec accepts, with values at or beyond what the physics allows."""
    big = rng.choice([1e300, -1e300, 1e9, 0.0, -5.0, 5e-324])
    return [seq, rng.choice([big, 0.5, 1.0, 0.0, -1.0, 2.0]),
            [rng.choice([big, 0.0, -big]) for _ in range(3)], rng.randrange(len(p.MODES)),
            rng.choice([0, p.U32_MAX, 850]),
            rng.choice([None, [big] * 7, [0.0] * 7]), rng.choice([0, p.U32_MAX, 127])]


def fuzz_plant(sessions: int, rng: random.Random, work: pathlib.Path,
               oversize_mib: int = 0) -> Tally:
    """This script is the flight software; `fsil plant` runs the terminal scenario.

    Session 0 first sends ``oversize_mib`` MiB in one message (issue 13: 256 MiB took the
    plant to 553 MiB); its peak RSS is reported as ``oversize_session_peak_rss_mib``.
    """
    t = Tally("plant")
    peaks: list = []
    for k in range(sessions):
        run = work / f"plant{k}"
        run.mkdir()
        url = f"zmq+ipc://{run}/link.sock"
        proc = _fsil("plant", "--scenario", "terminal", "--link", url, "--out", str(run / "out"),
                     "--no-progress", "--timeout", f"{PEER_TIMEOUT_S:g}", "--hello-timeout", "30",
                     out_dir=run)
        label = f"plant session {k}"
        try:
            with open_link(url, "fsw") as link:
                link.recv_msg(30.0, expect=p.HELLO)
                if k == 0 and oversize_mib:
                    link.send(bytes(oversize_mib * 2**20), timeout_s=60.0)
                    t.inputs += 1
                    t.rejected += 1
                    time.sleep(1.0)  # the plant drops the connection; ours reconnects
                ack = encode(p.HELLO_ACK, ["fsw", "fuzz 1.0", "cpython"])
                if rng.random() < 0.2:  # a mutated handshake
                    link.send(mutate(rng, ack))
                    t.inputs += 1
                else:
                    link.send(ack)
                good_run = rng.randint(0, 60)
                seq = 0
                while True:
                    msg = link.recv_msg(PEER_TIMEOUT_S + 5)
                    if msg.type_id == p.END:
                        break
                    seq = msg.seq
                    if good_run > 0:
                        good_run -= 1
                        link.send_msg(p.COMMAND, _legal_extreme_command(rng, seq))
                        t.inputs += 1
                        t.accepted += 1
                        continue
                    cmd = encode(p.COMMAND, _legal_extreme_command(rng, seq))
                    data = mutate(rng, cmd)
                    link.send(data)
                    t.inputs += 1
                    try:
                        decode(data)
                        t.accepted += 1
                    except ProtocolError:
                        t.rejected += 1  # the plant must now end the run, documented
                        link.recv_msg(PEER_TIMEOUT_S + 5)
                        break
        except (BridgeError, PeerTimeout) as e:
            t.notes.setdefault("session_link_errors", []).append(f"{label}: {e}"[:200])
        _finish(t, proc, label, peaks, run / "out" / "summary.json")
        if k == 0 and oversize_mib and peaks:
            t.notes["oversize_session_peak_rss_mib"] = round(peaks[-1], 1)
    if peaks:
        t.memory["peak_rss_first_mib"] = round(peaks[0], 1)
        t.memory["peak_rss_last_mib"] = round(peaks[-1], 1)
    return t


def _plant_hello() -> list:
    from hil.scenario import load_scenario
    from plant.lander import LanderPlant
    cfg = load_scenario("terminal")
    plant = LanderPlant(cfg)
    frame = plant.reset(1)
    r = cfg.rates
    rates = {"frame_hz": r.frame_hz, "imu_hz": r.imu_hz, "altimeter_hz": r.altimeter_hz,
             "physics_hz": r.physics_hz}
    frames = []
    from plant.lander import Command
    for _ in range(40):
        frame = plant.step(Command(0.6, (0.0, 0.0, 0.0)))
        att = frame.att if frame.seq % 3 else [frame.t_us, 0.5, 0.5, 0.5, 0.5, True] \
            if frame.seq % 2 else [frame.t_us, 1.0, 0.0, 0.0, 0.0, False]
        frames.append([frame.seq, frame.t_us, frame.imu, frame.alt, frame.vel, att])
    return ["plant", cfg.name, rates, plant.fsw_config()], frames


def fuzz_fsw(sessions: int, rng: random.Random, work: pathlib.Path) -> Tally:
    """This script is the plant; `fsil fsw` answers."""
    t = Tally("fsw")
    peaks: list = []
    hello_fields, frames = _plant_hello()
    hello = encode(p.HELLO, hello_fields)
    for k in range(sessions):
        run = work / f"fsw{k}"
        run.mkdir()
        url = f"zmq+ipc://{run}/link.sock"
        label = f"fsw session {k}"
        with open_link(url, "plant") as link:
            proc = _fsil("fsw", "--link", url, "--timeout", f"{PEER_TIMEOUT_S:g}", out_dir=run)
            try:
                data = mutate(rng, hello) if rng.random() < 0.4 else hello
                link.send(data, timeout_s=30.0)
                t.inputs += 1
                try:
                    decode(data)
                    t.accepted += 1
                except ProtocolError:
                    t.rejected += 1
                msg = link.recv_msg(30.0)
                if msg.type_id == p.HELLO_ACK:
                    last = 0
                    for fields in frames[:rng.randint(1, len(frames))]:
                        payload = encode(p.FRAME, fields)
                        if rng.random() < 0.3:
                            payload = mutate(rng, payload)
                        link.send(payload)
                        t.inputs += 1
                        try:
                            decode(payload)
                            t.accepted += 1
                        except ProtocolError:
                            t.rejected += 1
                        msg = link.recv_msg(PEER_TIMEOUT_S + 5)
                        if msg.type_id == p.END:
                            break
                        last = msg.seq
                    else:
                        link.send_msg(p.END, [last, "landed: fuzz session over"], timeout_s=1.0)
                        link.recv_msg(PEER_TIMEOUT_S + 5)
            except BridgeError as e:
                t.notes.setdefault("session_link_errors", []).append(f"{label}: {e}"[:200])
            _finish(t, proc, label, peaks)
    if peaks:
        t.memory["peak_rss_first_mib"] = round(peaks[0], 1)
        t.memory["peak_rss_last_mib"] = round(peaks[-1], 1)
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", type=int, default=700_000, help="codec inputs (700000)")
    parser.add_argument("--deframer", type=int, default=300_000, help="deframer streams (300000)")
    parser.add_argument("--plant", type=int, default=40, help="live plant sessions (40)")
    parser.add_argument("--fsw", type=int, default=40, help="live fsil fsw sessions (40)")
    parser.add_argument("--oversize-mib", type=int, default=256,
                        help="one message this large to the live plant first (256)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the counts to this file")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    tallies = [fuzz_codec(args.codec, rng), fuzz_deframer(args.deframer, rng)]
    with tempfile.TemporaryDirectory(prefix="fsil-fuzz-") as work:
        tallies.append(fuzz_plant(args.plant, rng, pathlib.Path(work), args.oversize_mib))
        tallies.append(fuzz_fsw(args.fsw, rng, pathlib.Path(work)))
    print(f"{'target':<9} {'inputs':>9} {'rejected':>9} {'accepted':>9} {'crashes':>7} "
          f"{'hangs':>5}  memory")
    for t in tallies:
        print(t.row())
    total = sum(t.inputs for t in tallies)
    crashes = sum(t.crashes for t in tallies)
    hangs = sum(t.hangs for t in tallies)
    print(f"{'total':<9} {total:>9,} {'':>9} {'':>9} {crashes:>7} {hangs:>5}  "
          f"({time.monotonic() - t0:.0f} s, seed {args.seed})")
    for t in tallies:
        for key, value in t.notes.items():
            if key != "session_link_errors":
                print(f"{t.name}: {key}: {value}")
    for t in tallies:
        for example in t.examples:
            print(f"\n--- {t.name}: {example}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {t.name: {"inputs": t.inputs, "rejected": t.rejected, "accepted": t.accepted,
                      "crashes": t.crashes, "hangs": t.hangs, "memory": t.memory,
                      "notes": t.notes, "examples": t.examples} for t in tallies}, indent=2))
    return 1 if crashes or hangs else 0


if __name__ == "__main__":
    sys.exit(main())
