"""The board's protocol core (hil/pico/board.py) under CPython: bytes in, bytes out.

Handshake, commands equal to the flight software run in-process, version mismatch, a new
HELLO restarting a run, END, faults, garbage before a frame, and the helpers the Pico's
USB pump uses (the read sizes that never outwait a frame, Ctrl-C between frames).
"""

from __future__ import annotations

import random

import msgpack
import pytest

from bridge import codec, protocol
from bridge.framing import FrameDecoder, encode_frame
from fsw.core import FlightSoftware
from hil.pico import board as board_mod
from hil.pico.board import FAULT, RUNNING, WAITING, Board, ReadSizer, repl_request
from hil.scenario import load_scenario
from plant.lander import Command, LanderPlant


class Host:
    """The host's side of the byte stream: frames out, decoded messages back."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.decoder = FrameDecoder()
        self.status: list = []   # the board's STATUS messages (link counters), set aside

    def send_payload(self, payload: bytes, split: int | None = None) -> list:
        data = encode_frame(payload)
        out = b""
        if split:
            for k in range(0, len(data), split):
                out += self.board.feed(data[k:k + split])
        else:
            out = self.board.feed(data)
        replies = [codec.decode(p) for p in self.decoder.feed(out)]
        self.status += [m for m in replies if m.type_id == protocol.STATUS]
        return [m for m in replies if m.type_id != protocol.STATUS]

    def send(self, type_id: int, fields, split: int | None = None) -> list:
        return self.send_payload(codec.encode(type_id, fields), split)


@pytest.fixture(scope="module")
def hello_fields():
    cfg = load_scenario("terminal")
    plant = LanderPlant(cfg)
    plant.reset(1)
    r = cfg.rates
    rates = {"frame_hz": r.frame_hz, "imu_hz": r.imu_hz, "altimeter_hz": r.altimeter_hz,
             "physics_hz": r.physics_hz}
    return ["plant", cfg.name, rates, plant.fsw_config()]


def _frames(n: int):
    """The first n sensor frames of the terminal scenario, with the commands in-process."""
    cfg = load_scenario("terminal")
    plant = LanderPlant(cfg)
    frame = plant.reset(1)
    fsw = FlightSoftware(plant.fsw_config())
    out = []
    for _ in range(n):
        result = fsw.step(frame)
        out.append((frame, result))
        frame = plant.step(Command(result[0], tuple(result[1])))
    return out


def test_handshake_then_commands_equal_the_flight_software_in_process(hello_fields):
    states = []
    host = Host(Board(on_state=states.append))
    (ack,) = host.send(protocol.HELLO, hello_fields)
    assert ack.name == "hello_ack"
    assert ack.role == "fsw" and ack.software.startswith("fsil-fsw ")
    assert ack.runtime.startswith("cpython ")
    assert states == [RUNNING]
    for frame, (throttle, torque, mode, nav7, flags) in _frames(60):
        (cmd,) = host.send(protocol.FRAME, [frame.seq, frame.t_us, frame.imu, frame.alt, frame.vel, frame.att])
        assert cmd.name == "command" and cmd.seq == frame.seq
        assert (cmd.throttle, cmd.torque_nm, cmd.mode, cmd.nav, cmd.flags) == \
            (throttle, list(torque), mode, list(nav7), flags)
        assert cmd.compute_us >= 0
    assert host.board.stats["frames"] == 60


def test_a_new_hello_restarts_the_run(hello_fields):
    host = Host(Board())
    host.send(protocol.HELLO, hello_fields)
    frames = _frames(20)
    for frame, _ in frames:
        host.send(protocol.FRAME, [frame.seq, frame.t_us, frame.imu, frame.alt, frame.vel, frame.att])
    (ack,) = host.send(protocol.HELLO, hello_fields)      # the host came back
    assert ack.name == "hello_ack" and host.board.runs == 2
    for frame, (throttle, _, mode, nav7, _) in frames[:5]:
        (cmd,) = host.send(protocol.FRAME, [frame.seq, frame.t_us, frame.imu, frame.alt, frame.vel, frame.att])
        assert (cmd.seq, cmd.throttle, cmd.mode, cmd.nav) == (frame.seq, throttle, mode, list(nav7))


def test_end_returns_to_waiting_and_a_frame_without_a_run_is_refused(hello_fields):
    states = []
    host = Host(Board(on_state=states.append))
    host.send(protocol.HELLO, hello_fields)
    (reply,) = host.send(protocol.END, [0, "touchdown"])
    assert reply.name == "end" and host.board.state == WAITING
    assert host.send(protocol.END, [0, "again"]) == []       # no END ping-pong
    (reply,) = host.send(protocol.FRAME, [5, 100, [], None, None, None])
    assert reply.name == "end" and "send HELLO first" in reply.reason
    assert states == [RUNNING, WAITING, FAULT]
    (ack,) = host.send(protocol.HELLO, hello_fields)          # and it comes back
    assert ack.name == "hello_ack" and host.board.state == RUNNING


def test_hello_of_another_version_gets_an_end_in_the_hosts_version(hello_fields):
    board = Board()
    newer = msgpack.packb([protocol.PROTOCOL_VERSION + 1, protocol.HELLO, *hello_fields])
    (reply,) = FrameDecoder().feed(board.feed(encode_frame(newer)))
    version, type_id, seq, reason = msgpack.unpackb(reply)
    assert (version, type_id, seq) == (protocol.PROTOCOL_VERSION + 1, protocol.END, 0)
    assert reason == (f"board firmware speaks protocol {protocol.PROTOCOL_VERSION}, host speaks "
                      f"{protocol.PROTOCOL_VERSION + 1}: update the firmware (fsil hil deploy)")
    assert board.state == FAULT


def test_old_firmware_answers_a_current_host_readably(hello_fields):
    host = Host(Board(protocol_version=0))                    # firmware of protocol 0
    (reply,) = host.send(protocol.HELLO, hello_fields)       # decodes with the host's codec
    assert reply.name == "end"
    assert reply.reason == (f"board firmware speaks protocol 0, host speaks "
                            f"{protocol.PROTOCOL_VERSION}: update the firmware (fsil hil deploy)")


def test_garbage_before_a_frame_is_dropped_and_counted(hello_fields):
    rng = random.Random(3)
    board = Board()
    hello = encode_frame(codec.encode(protocol.HELLO, hello_fields))
    flipped = bytearray(hello)
    flipped[40] ^= 0x10
    junk = bytes(rng.randrange(256) for _ in range(500)) + b"\x00"
    stream = junk + hello[:30] + b"\x00" + bytes(flipped) + b"\x00\x00" + hello
    out = b""
    for k in range(0, len(stream), 13):
        out += board.feed(stream[k:k + 13])
    replies = [codec.decode(p) for p in FrameDecoder().feed(out)]
    assert [r.name for r in replies] == ["hello_ack"]
    stats = board.deframer.stats
    assert stats["frames_ok"] == 1
    assert stats["crc_errors"] + stats["cobs_errors"] + stats["runts"] >= 2


def test_protocol_errors_and_faults_end_the_run_and_the_board_survives(hello_fields, monkeypatch):
    host = Host(Board())
    bad_hello = [protocol.PROTOCOL_VERSION, protocol.HELLO, "plant", "x", hello_fields[2],
                 dict(hello_fields[3], vehicle={})]          # the codec refuses it (schema)
    (reply,) = host.send_payload(msgpack.packb(bad_hello))
    assert reply.name == "end" and reply.reason.startswith(
        'protocol error: malformed hello message, field "config": vehicle.dry_mass_kg: missing')
    (reply,) = host.send(protocol.HELLO_ACK, ["fsw", "x", "y"])
    assert reply.name == "end" and "got hello_ack while expecting hello" in reply.reason
    (reply,) = host.send_payload(msgpack.packb([protocol.PROTOCOL_VERSION, protocol.FRAME, 1]))
    assert reply.name == "end" and reply.reason.startswith("protocol error: malformed frame")
    host.send(protocol.HELLO, hello_fields)

    def broken(*args):
        raise ZeroDivisionError("division by zero")
    monkeypatch.setattr(host.board.fsw, "step", broken)
    (reply,) = host.send(protocol.FRAME, [7, 35000, [], None, None, None])
    assert reply.name == "end" and reply.seq == 7
    assert reply.reason == ("flight software Default (fsw.reference) broke the contract at "
                            "seq 7: step raised ZeroDivisionError: division by zero")
    assert host.board.state == FAULT
    (ack,) = host.send(protocol.HELLO, hello_fields)
    assert ack.name == "hello_ack"


def test_a_user_flight_software_on_the_board_and_its_contract_breaks(hello_fields, tmp_path,
                                                                      monkeypatch):
    # As on a Pico after 'fsil hil deploy --fsw FILE.py:Class': the module at the board's root.
    (tmp_path / "board_user_fsw.py").write_text(
        "class Good:\n"
        "    NAME = 'good'\n    VERSION = '3'\n"
        "    def __init__(self, config):\n        self.n = 0\n"
        "    def step(self, frame):\n"
        "        return 0.5, (0.0, 0.0, 0.0), 'approach'\n"
        "class Nan(Good):\n"
        "    def step(self, frame):\n"
        "        return (float('nan') if frame.seq == 2 else 0.5), (0, 0, 0), 'approach'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    host = Host(Board(fsw="board_user_fsw:Good"))
    (ack,) = host.send(protocol.HELLO, hello_fields)
    assert ack.software == "good 3"
    (cmd,) = host.send(protocol.FRAME, [0, 0, [], None, None, None])
    assert (cmd.throttle, cmd.mode, cmd.flags) == (0.5, protocol.MODES.index("approach"), 0)
    assert cmd.nav is None                          # it reports no estimate
    host = Host(Board(fsw="board_user_fsw:Nan"))
    host.send(protocol.HELLO, hello_fields)
    host.send(protocol.FRAME, [0, 0, [], None, None, None])
    host.send(protocol.FRAME, [1, 20000, [], None, None, None])
    (end,) = host.send(protocol.FRAME, [2, 40000, [], None, None, None])
    assert end.name == "end" and end.seq == 2 and host.board.state == FAULT
    assert end.reason == ("flight software Nan (board_user_fsw) broke the contract at seq 2: "
                          "throttle is nan")
    host = Host(Board(fsw="no_such_module:Fsw"))
    (end,) = host.send(protocol.HELLO, hello_fields)
    assert end.name == "end" and end.reason.startswith(
        "fsw: cannot load no_such_module:Fsw: ImportError") or \
        end.reason.startswith("fsw: cannot load no_such_module:Fsw: ModuleNotFoundError")


def test_the_star_tracker_sample_reaches_the_boards_flight_software(hello_fields, tmp_path,
                                                                  monkeypatch):
    (tmp_path / "board_att_fsw.py").write_text(
        "class Att:\n"
        "    def __init__(self, config):\n        pass\n"
        "    def step(self, frame):\n"
        "        a = frame.att\n"
        "        if a is None:\n            return 0.0, (0.0, 0.0, 0.0), 'coast'\n"
        "        return (0.75 if a[5] else 0.25), (a[2], a[3], a[4] + a[0] * 1e-6), 'approach'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    host = Host(Board(fsw="board_att_fsw:Att"))
    host.send(protocol.HELLO, hello_fields)
    (cmd,) = host.send(protocol.FRAME, [0, 0, [], None, None, None])
    assert (cmd.throttle, cmd.torque_nm) == (0.0, [0.0, 0.0, 0.0])
    (cmd,) = host.send(protocol.FRAME, [1, 200000, [], None, None,
                                        [100000, 0.5, -0.5, 0.25, 2.0, True]])
    assert (cmd.throttle, cmd.torque_nm) == (0.75, [-0.5, 0.25, 2.0 + 100000 * 1e-6])
    (cmd,) = host.send(protocol.FRAME, [2, 220000, [], None, None,
                                        [200000, 1.0, 0.0, 0.0, 0.0, False]])
    assert (cmd.throttle, cmd.torque_nm) == (0.25, [0.0, 0.0, 0.0 + 200000 * 1e-6])
    # a spoiled sample is the plant's protocol error, not the flight software's
    bad = msgpack.packb([protocol.PROTOCOL_VERSION, protocol.FRAME, 3, 240000, [], None, None,
                         [200000, 0.0, 0.0, 0.0, 0.0, True]])
    (end,) = host.send_payload(bad)
    assert end.name == "end" and host.board.state == FAULT
    assert end.reason == ('protocol error: malformed frame message, field "att": star tracker '
                          "quaternion [qw, qx, qy, qz] is all zero")


def test_byte_by_byte_input_gives_the_same_answers(hello_fields):
    whole, split = Host(Board()), Host(Board())
    assert whole.send(protocol.HELLO, hello_fields)[0].name == "hello_ack"
    assert split.send(protocol.HELLO, hello_fields, split=1)[0].name == "hello_ack"
    for frame, _ in _frames(5):
        fields = [frame.seq, frame.t_us, frame.imu, frame.alt, frame.vel, frame.att]
        a, = whole.send(protocol.FRAME, fields)
        b, = split.send(protocol.FRAME, fields, split=1)
        assert (a.seq, a.throttle, a.nav) == (b.seq, b.throttle, b.nav)


def test_runtime_name_and_clock():
    assert board_mod.runtime_name().startswith("cpython 3.")
    assert board_mod.CLOCK == "time.perf_counter_ns"      # MicroPython: time.ticks_us


# --- the Pico pump's helpers ------------------------------------------------------------------
class BlockingStream:
    """A Pico's stdin: read(n) returns n bytes or, if fewer are there, fails the test."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, n: int) -> bytes:
        assert self.pos + n <= len(self.data), "the read would block: asked past the frame"
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk


def _pump(payloads: list[bytes]) -> tuple[list[bytes], int, int]:
    """Read a stream of frames as the Pico does; (payloads, reads, bytes)."""
    from hil.pico import wire
    stream = b"\x00" + b"".join(encode_frame(p) for p in payloads)   # the link's flush byte
    src = BlockingStream(stream)
    sizer = ReadSizer()
    deframer = wire.Deframer()
    got, reads = [], 0
    while src.pos < len(stream):
        data = src.read(sizer.size())
        assert 1 <= len(data) <= 255
        sizer.took(data)
        got += deframer.feed(data)
        reads += 1
    assert sizer.head == 0                      # ends at a frame boundary
    return got, reads, len(stream)


def test_read_sizes_never_wait_past_the_end_of_a_frame():
    rng = random.Random(9)
    payloads = [bytes(rng.choice([0, 0, 1, 7, 255]) for _ in range(rng.randint(1, 1500)))
                for _ in range(40)]
    got, _, _ = _pump(payloads)
    assert got == payloads


def test_protocol_frames_take_few_reads(hello_fields):
    payloads = [codec.encode(protocol.HELLO, hello_fields)]
    payloads += [codec.encode(protocol.FRAME, [f.seq, f.t_us, f.imu, f.alt, f.vel, f.att]) for f, _ in _frames(30)]
    got, reads, size = _pump(payloads)
    assert got == payloads
    assert reads < size / 4                      # far fewer reads than bytes (the
    # velocimeter's sample, with its zero bytes, makes more COBS blocks: ~5 bytes per read)


def test_read_sizer_resyncs_on_a_zero_where_data_was_due():
    sizer = ReadSizer()
    sizer.took(b"\x0a")                 # a code byte: 9 data bytes due
    sizer.took(b"\x05")
    sizer.took(b"\x01\x00")             # a zero among them: taken as a delimiter
    assert sizer.head == 0 and sizer.size() == 1


def test_ctrl_c_between_frames_is_a_repl_request_and_no_frame_is():
    assert repl_request(b"\x03") and repl_request(b"\r\x03")
    assert not repl_request(b"\r") and not repl_request(b"\x00")
    for type_id, fields in ((protocol.END, [1, "x"]), (protocol.FRAME, [0, 0, [], None, None, None]),
                            (protocol.COMMAND, [1, 0.5, [0.0] * 3, 1, 3, [1.0] * 7, 0])):
        frame = encode_frame(codec.encode(type_id, fields))
        assert not repl_request(frame[:2])
    # mpremote's interrupt then raw-REPL request, after a frame: seen in the first two reads
    sizer = ReadSizer()
    sizer.took(encode_frame(codec.encode(protocol.END, [1, "x"])))
    src = BlockingStream(b"\r\x03\r\x01")
    head = src.read(sizer.size())
    sizer.took(head)
    head += src.read(sizer.size())
    assert repl_request(head) and src.pos == 2


# --- main.py, the Pico's pump, run under CPython with stand-ins for the board's modules ------
class _Stdin:
    """The Pico's stdin: poll says whether bytes wait; read(n) must not block."""

    def __init__(self, data: bytes) -> None:
        self.src = BlockingStream(data)

    def waiting(self) -> bool:
        return self.src.pos < len(self.src.data)

    def read(self, n: int) -> bytes:
        return self.src.read(n)


class _Poller:
    def __init__(self, stdin: _Stdin) -> None:
        self.stdin = stdin
        self.idle_polls = 0

    def register(self, *args) -> None:
        pass

    def poll(self, timeout_ms: int = -1):
        if self.stdin.waiting():
            return [(self.stdin, 1)]
        self.idle_polls += 1
        if self.idle_polls > 100:
            raise TimeoutError("main.py kept polling after the input ended")
        return []


def test_pico_main_pumps_frames_and_leaves_on_ctrl_c(hello_fields, monkeypatch):
    import io
    import runpy
    import sys
    import time
    import types
    from pathlib import Path

    frames = _frames(20)
    stream = b"\x00" + encode_frame(codec.encode(protocol.HELLO, hello_fields))
    stream += b"".join(encode_frame(codec.encode(protocol.FRAME, [f.seq, f.t_us, f.imu, f.alt, f.vel, f.att]))
                       for f, _ in frames)
    stream += b"\r\x03\r\x01"                                  # mpremote's interrupt
    stdin = _Stdin(stream)
    stdout = io.BytesIO()
    kbd = []
    led = []
    fake_select = types.SimpleNamespace(poll=lambda: _Poller(stdin), POLLIN=1)
    fake_micropython = types.SimpleNamespace(kbd_intr=kbd.append)

    class Pin:
        OUT = 1

        def __init__(self, name, mode):
            self.v = 0

        def value(self, v=None):
            if v is not None:
                self.v = v
                led.append(v)
            return self.v

        def toggle(self):
            self.value(1 - self.v)

    monkeypatch.setitem(sys.modules, "select", fake_select)
    monkeypatch.setitem(sys.modules, "micropython", fake_micropython)
    monkeypatch.setitem(sys.modules, "machine", types.SimpleNamespace(Pin=Pin))
    monkeypatch.setattr(time, "ticks_ms", lambda: int(time.monotonic() * 1000), raising=False)
    monkeypatch.setattr(time, "ticks_diff", lambda a, b: a - b, raising=False)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=stdin))
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(buffer=stdout))
    import gc
    monkeypatch.setattr(gc, "mem_free", lambda: 10**6, raising=False)
    pico = str(Path(__file__).resolve().parent.parent / "hil" / "pico")
    monkeypatch.syspath_prepend(pico)
    for name in ("board", "wire", "main"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    try:
        runpy.run_path(str(Path(pico) / "main.py"), run_name="main")
    finally:
        for name in ("board", "wire"):          # the firmware's top-level names
            sys.modules.pop(name, None)

    replies = [codec.decode(p) for p in FrameDecoder().feed(stdout.getvalue())]
    assert [r.name for r in replies] == ["hello_ack"] + ["command"] * len(frames)
    assert [r.seq for r in replies[1:]] == [f.seq for f, _ in frames]
    assert [r.throttle for r in replies[1:]] == [res[0] for _, res in frames]
    assert kbd == [-1, 3]                     # Ctrl-C off while it runs, back on when it leaves
    assert stdin.src.pos == len(stream) - 2   # it left before taking mpremote's Ctrl-A
    assert 1 in led and led[-1] == 0


# --- a noisy line: repeated messages answered from cache, counters in STATUS


def _frame_fields(frame) -> list:
    return [frame.seq, frame.t_us, frame.imu, frame.alt, frame.vel, frame.att]


def test_a_repeated_frame_gets_the_cached_command_and_no_second_step(hello_fields):
    host = Host(Board())
    host.send(protocol.HELLO, hello_fields)
    frames = _frames(12)
    steps = 0
    for frame, (throttle, _, mode, nav7, _) in frames:
        (cmd,) = host.send(protocol.FRAME, _frame_fields(frame))
        steps += 1
        assert host.board.stats["frames"] == steps
        for _ in range(2):       # the host heard nothing and sends the frame again
            (again,) = host.send(protocol.FRAME, _frame_fields(frame))
            assert again.fields == cmd.fields    # compute_us too: nothing was computed again
        assert host.board.stats["frames"] == steps     # the flight software stepped once
        assert (cmd.seq, cmd.throttle, cmd.mode, cmd.nav) == (frame.seq, throttle, mode, list(nav7))
    older = frames[3][0]
    assert host.send(protocol.FRAME, _frame_fields(older)) == []   # an older seq: ignored
    link = host.board.link_stats()
    assert link["frames_received"] == 12 * 3 + 1 and link["commands_sent"] == 12
    assert link["frames_repeated"] == link["commands_resent"] == 24
    assert link["frames_stale"] == 1


def test_a_repeated_hello_gets_the_same_ack_without_a_new_run(hello_fields):
    host = Host(Board())
    (ack,) = host.send(protocol.HELLO, hello_fields)
    (again,) = host.send(protocol.HELLO, hello_fields)     # our HELLO_ACK was lost: same answer
    assert again.fields == ack.fields and host.board.runs == 1
    assert host.board.link_stats()["hellos_repeated"] == 1
    frame, (throttle, *_) = _frames(1)[0]
    (cmd,) = host.send(protocol.FRAME, _frame_fields(frame))
    assert (cmd.seq, cmd.throttle) == (0, throttle)
    host.send(protocol.HELLO, hello_fields)                # after a frame: a new run
    assert host.board.runs == 2 and host.board.link_stats()["hellos_repeated"] == 0


def test_the_board_sends_its_counters_every_status_every_frames_and_before_its_end(
        hello_fields, monkeypatch):
    monkeypatch.setattr(board_mod, "STATUS_EVERY", 5)
    host = Host(Board())
    host.send(protocol.HELLO, hello_fields)
    frames = _frames(12)
    damaged = bytearray(encode_frame(codec.encode(protocol.FRAME, _frame_fields(frames[5][0]))))
    damaged[40] ^= 0x04 if damaged[40] != 0x04 else 0x08   # a flipped bit: dropped, counted
    reported = [codec.decode(x) for x in FrameDecoder().feed(host.board.feed(bytes(damaged)))]
    assert [m.name for m in reported] == ["status"]        # reported at once
    damage = {k: reported[0].stats[k] for k in board_mod.DEFRAMER_COUNTERS[:4]}
    assert sum(damage.values()) == 1 and reported[0].stats["damage_reports"] == 1
    for frame, _ in frames:
        host.send(protocol.FRAME, _frame_fields(frame))
    assert [m.seq for m in host.status] == [4, 9]
    assert host.status[-1].stats["commands_sent"] == 10
    (end,) = host.send(protocol.END, [12, "landed: ok"])
    assert end.name == "end" and len(host.status) == 3     # the last STATUS before its END
    final = host.status[-1].stats
    assert final["commands_sent"] == 12 and final["frames_received"] == 12
    assert set(final) == set(board_mod.LINK_COUNTERS) | set(board_mod.DEFRAMER_COUNTERS)
