"""A serial link that survives line noise (issue 13.5; docs/protocol.md, *Retries*).

The noise: hil.line_noise.NoisyLine, two raw ptys joined by a seeded bit-flipping relay.
The rules, one by one, over a loop link with a scripted flight software (no timing in the
assertions): the plant sends a frame again until it is answered, ignores stale answers,
gives up naming line noise only when the line showed damage, repeats HELLO and END; the
flight software answers a repeated HELLO with the same HELLO_ACK. Then the real thing over
a noisy pty pair (fsil plant and fsil fsw, two processes each run): at 1e-4 bit flips per
byte a truncated terminal run goes to its end with the retries counted on both sides, with
a flight software that opens its port after the plant's first HELLO; at 1e-3 the run ends
with one line naming line noise. The full terminal landing at 1e-4 is bench/line_noise.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import c_build  # tests/c_build.py
import numpy as np
import pytest

from bridge import open_link, protocol as p
from bridge.client import FswClient
from bridge.codec import encode
from bridge.errors import UnexpectedMessage
from hil import virtual
from hil.engine.two_process import PlantSide
from hil.errors import LinkFailure
from hil.line_noise import NoisyLine
from hil.retransmit import END_RETRIES, END_RETRY_S, RetryPolicy, Retransmitter
from hil.scenario import load_scenario

if not hasattr(os, "openpty"):
    pytest.skip("pseudo-terminals need POSIX", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
SIM_S = 10.0           # the noisy runs fly the terminal scenario's first 10 s: 500 cycles
CYCLES = 500           # (seed 3 damages both directions within the first ~30 KB)
FAST = RetryPolicy(interval_s=0.01, max_interval_s=0.05, max_retries=3, hello_interval_s=0.05)
CALM = RetryPolicy(interval_s=0.1, max_interval_s=0.4, max_retries=3, hello_interval_s=0.5)


# --- the noise itself ---------------------------------------------------------------------


def test_the_noise_flips_one_bit_per_hit_at_the_rate_asked_and_is_seeded():
    data = bytes(range(256)) * 8000            # 2,048,000 bytes
    rate = 1e-3
    line = NoisyLine(rate, seed=11)
    try:
        damaged, hits = line.damage(data, 0)
    finally:
        line.close()
    bits = int(np.unpackbits(np.frombuffer(damaged, np.uint8)
                             ^ np.frombuffer(data, np.uint8)).sum())
    assert bits == hits                        # one bit in each byte hit
    n = len(data)
    mean, sd = n * rate, (n * rate * (1 - rate)) ** 0.5
    assert abs(hits - mean) < 4 * sd           # 2048 +- 181: half the rate (1024) fails
    again = NoisyLine(rate, seed=11)           # the same seed, the stream cut differently
    try:
        pieces = []
        for k in range(0, 20 * 777, 777):
            pieces.append(again.damage(data[k:k + 777], 0))
            again.bytes[0] += 777                 # as the relay counts what it passed on
    finally:
        again.close()
    assert b"".join(x for x, _ in pieces) == damaged[:20 * 777]


# --- the rules, over a loop link with a scripted flight software ---------------------------


def _frame(seq: int) -> bytes:
    return encode(p.FRAME, [seq, 20_000 * seq, [], None, None, None])


def _command(seq: int) -> bytes:
    return encode(p.COMMAND, [seq, 0.5, [0.0, 0.0, 0.0], 1, 100, None, 0])


class Scripted:
    """A flight software over a loop link that stays silent for the copies of a frame
    listed in ``silent`` ({seq: copies to ignore}); with ``damaged``, it reports each copy
    it ignores as a damaged frame in a STATUS (as a client does on a noisy line)."""

    def __init__(self, name: str, silent: dict[int, int], stale: bool = False,
                 damaged: bool = False) -> None:
        self.link = open_link(f"loop://{name}", "fsw")
        self.silent, self.stale, self.damaged = dict(silent), stale, damaged
        self.crc_errors = 0
        self.seen: list[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        link = self.link
        try:
            while True:
                msg = link.recv_msg(5.0)
                if msg.type_id == p.END:
                    link.send_msg(p.END, [0, "ack: end"])
                    return
                if msg.type_id == p.HELLO:
                    link.send_msg(p.HELLO_ACK, ["fsw", "scripted", "cpython"])
                    continue
                self.seen.append(msg.seq)
                if self.silent.get(msg.seq, 0) > 0:
                    self.silent[msg.seq] -= 1
                    if self.damaged:
                        self.crc_errors += 1
                        link.send_msg(p.STATUS, [msg.seq, {"crc_errors": self.crc_errors}])
                    continue
                if self.stale and msg.seq > 0:
                    link.send(_command(msg.seq - 1))   # the answer to an earlier copy
                link.send(_command(msg.seq))
        except Exception:
            pass
        finally:
            link.close()


def _cycle(plant, retx: Retransmitter, seq: int, timeout_s: float):
    """Send frame ``seq`` as the plant's loop does; the command answering it."""
    payload = _frame(seq)
    sent_at = time.monotonic()
    plant.send(payload)
    return retx.command(payload, seq, timeout_s, sent_at)


def _plant(name: str, policy: RetryPolicy = FAST):
    link = open_link(f"loop://{name}", "plant")
    return link, Retransmitter(link, policy=policy)


def test_a_frame_is_sent_again_until_answered_and_stale_answers_are_ignored():
    plant, retx = _plant("retx-a", CALM)
    fsw = Scripted("retx-a", silent={2: 2, 4: 1}, stale=True)
    try:
        ack = retx.hello(_hello(), 5.0)
        assert ack.software == "scripted"
        for seq in range(6):
            assert _cycle(plant, retx, seq, 10.0).seq == seq
        retx.end(5, "landed: test")
    finally:
        plant.close()
        fsw.thread.join(5.0)
    # a loaded machine may add a copy where the answer was merely late: never fewer
    assert sorted(set(fsw.seen)) == list(range(6)) and fsw.seen == sorted(fsw.seen)
    assert fsw.seen.count(2) >= 3 and fsw.seen.count(4) >= 2
    stats = plant.stats
    assert stats["frames_resent"] == len(fsw.seen) - 6       # every copy reached it
    assert stats["frames_retried"] >= 2 and stats["max_sends"] >= 3
    assert stats["stale_commands"] >= 5 and stats["ends_sent"] == 1 and stats["hellos_sent"] == 1


def test_retries_exhausted_on_a_damaged_line_name_line_noise():
    plant, retx = _plant("retx-b", CALM)
    fsw = Scripted("retx-b", silent={3: 99}, damaged=True)
    try:
        retx.hello(_hello(), 5.0)
        with pytest.raises(LinkFailure) as failure:
            for seq in range(5):
                _cycle(plant, retx, seq, 30.0)             # gives up long before 30 s
        retx.end(3, "link_failure: test")
    finally:
        plant.close()
        fsw.thread.join(5.0)
    text = str(failure.value)
    assert text.startswith("link failure: line noise: frame 3 sent 4 times in ")
    assert " without a valid command, 4 damaged frames meanwhile; in the run none at the " \
           "plant; 4 CRC errors at the flight software (its last STATUS); 3 frames resent" in text
    assert "stalled" not in text and failure.value.seq == 3
    assert fsw.seen.count(3) == 4 and fsw.seen[-1] == 3     # 1 + max_retries copies


def test_without_damage_seen_a_silent_peer_is_a_stall_at_the_link_timeout():
    # damage reported before frame 1 (while 0 was outstanding) is no evidence for frame 1
    plant, retx = _plant("retx-c")
    fsw = Scripted("retx-c", silent={0: 1, 1: 99})
    try:
        retx.hello(_hello(), 5.0)
        with pytest.raises(LinkFailure) as failure:
            for seq in range(3):
                _cycle(plant, retx, seq, 2.0)
    finally:
        plant.close()
        fsw.thread.join(5.0)
    reason = str(failure.value)
    stall = "link failure: fsw stalled at seq 1 after 2 s: no command within 2 s (frame sent 4 times)"
    # on a loaded machine the reason may add how long the plant itself was not scheduled
    assert reason == stall or reason.startswith(stall + "; the plant itself was not scheduled")
    assert fsw.seen.count(0) >= 2


def test_a_plant_that_slept_past_its_timeout_takes_the_command_waiting_for_it():
    """A stalled machine can stop the plant between sending frame k and waiting for its
    command for longer than the link timeout (a SCHED_FIFO neighbour holds its CPU, the VM
    host pauses it). The flight software answered meanwhile: the command is in the plant's
    input. The plant reads before it judges: no stall blamed on the flight software, no
    copy of the frame sent."""
    plant, retx = _plant("retx-slept", CALM)
    fsw = open_link("loop://retx-slept", "fsw")
    try:
        payload = _frame(7)
        plant.send(payload)
        assert fsw.recv_msg(5.0).seq == 7
        fsw.send(_command(6))                    # an old answer first, then the one owed
        fsw.send(_command(7))
        # first sent 5 s ago, timeout 1 s: the plant "slept" 4 s past its deadline
        cmd = retx.command(payload, 7, 1.0, time.monotonic() - 5.0)
    finally:
        plant.close()
        fsw.close()
    assert cmd.seq == 7
    assert plant.stats["frames_resent"] == 0 and plant.stats["stale_commands"] == 1


def test_a_stall_says_whether_the_plant_or_the_flight_software_was_not_running():
    """The reason of a stall on a lossy link names the plant's own absence from its wait
    (>= 1 s) and the CPU time the flight-software process used since the frame was first
    sent again: a starved peer (no CPU) is told from a busy or hung one."""
    plant = open_link("loop://retx-why", "plant")
    cpu = iter([2.5, 2.5])                        # the peer's CPU seconds: it did not run
    retx = Retransmitter(plant, policy=FAST, peer_cpu=lambda: next(cpu))
    fsw = open_link("loop://retx-why", "fsw")
    try:
        payload = _frame(3)
        plant.send(payload)
        with pytest.raises(LinkFailure) as failure:
            retx.command(payload, 3, 2.0, time.monotonic() - 1.5)   # away 1.5 s already
    finally:
        plant.close()
        fsw.close()
    reason = str(failure.value)
    assert reason.startswith("link failure: fsw stalled at seq 3 after 2 s: no command within "
                             "2 s (frame sent 4 times); the plant itself was not scheduled for ")
    gap_s = float(reason.split("not scheduled for ")[1].split(" s")[0])
    assert gap_s >= 1.5
    assert reason.endswith("; the flight software's process used 0.00 s of CPU since the "
                           "first retransmission")


def test_retry_bounds_are_checked():
    for bad in ({"interval_s": 0.001}, {"interval_s": 2.0, "max_interval_s": 1.0},
                {"max_interval_s": 11.0}, {"max_retries": 21}, {"max_retries": -1},
                {"hello_interval_s": 0.01}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)


def _hello() -> bytes:
    from hello_sample import CONFIG, RATES
    return encode(p.HELLO, ["plant", "terminal", RATES, CONFIG])


def test_the_client_answers_a_repeated_hello_with_the_same_ack():
    plant = open_link("loop://retx-hello", "plant")
    hello = _hello()
    plant.send(hello)
    plant.send(hello)                          # our first HELLO_ACK "was lost"
    client = FswClient("loop://retx-hello", "test-fsw 1.0", frame_timeout_s=5.0)
    try:
        client.connect()
        answers, raised = [], []

        def fsw() -> None:
            try:
                for frame in client.frames():
                    answers.append(frame.seq)
                    client.reply((0.5, [0.0, 0.0, 0.0], 1))
            except UnexpectedMessage as e:     # after END "protocol_error: ..." to the plant
                raised.append(e)

        thread = threading.Thread(target=fsw)
        thread.start()
        first = plant.recv(5.0)
        assert plant.recv(5.0) == first        # the same HELLO_ACK, byte for byte
        plant.send(_frame(0))
        assert plant.recv_msg(5.0, expect=p.COMMAND).seq == 0
        plant.send(hello)                      # after a frame: not a repetition
        assert plant.recv_msg(5.0).type_id == p.END
        thread.join(5.0)
    finally:
        client.close()
        plant.close()
    assert answers == [0] and client.stats["hellos_repeated"] == 1 and len(raised) == 1
    assert client.end_reason.startswith("protocol_error: ")


# --- end to end: a noisy pty pair, and the virtual board behind the noise -------------------


def _fsil(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hil.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class PtyRuns:
    """fsil plant + fsil fsw over a noisy pty pair at 1e-4 (CYCLES) and at 1e-3, and
    fsil plant + the C library's example at 1e-4, all started at once; the virtual board's
    run goes on in this process meanwhile. At 1e-4 the flight software opens its port only
    after the plant's first HELLO went through the line (pyserial empties the input on
    open): the plant's repeated HELLO gets it connected."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.c_problem: BaseException | None = None
        try:
            c_build.build()
        except (pytest.skip.Exception, pytest.fail.Exception) as e:   # no C compiler here
            self.c_problem = e
        names = ["1e-4", "1e-3"] + (["c-1e-4"] if self.c_problem is None else [])
        self.lines = {name: NoisyLine(float(name.removeprefix("c-")), seed=3).start()
                      for name in names}
        self.procs: dict[str, list] = {}
        self.logs: dict[str, tuple[str, str]] | None = None
        for name in names:
            plant_tty, _ = self.lines[name].names
            sim_s = "120" if name == "1e-3" else str(SIM_S)
            self.procs[name] = [_fsil("plant", "--scenario", "terminal", "--link",
                                      f"serial://{plant_tty}", "--out", str(tmp / name),
                                      "--max-sim-time", sim_s, "--no-progress"), None]
        self._fsw("1e-3")
        if self.c_problem is None:
            self.procs["c-1e-4"][1] = subprocess.Popen(
                [str(c_build.BUILD / "fsil-example-fsw"),
                 f"serial://{self.lines['c-1e-4'].names[1]}"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while self.lines["1e-4"].bytes[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)                   # the plant's first HELLO is on its way
        time.sleep(0.2)
        self._fsw("1e-4")

    def _fsw(self, name: str) -> None:
        self.procs[name][1] = _fsil("fsw", "--link", f"serial://{self.lines[name].names[1]}")

    def collect(self) -> dict[str, tuple[str, str]]:
        if self.logs is None:
            self.logs = {name: (plant.communicate(timeout=200)[0], fsw.communicate(timeout=60)[0])
                         for name, (plant, fsw) in self.procs.items()}
        return self.logs

    def close(self) -> None:
        for plant, fsw in self.procs.values():
            for proc in (plant, fsw):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for line in self.lines.values():
            line.close()


@pytest.fixture(scope="module")
def pty_runs(tmp_path_factory):
    runs = PtyRuns(tmp_path_factory.mktemp("line_noise"))
    try:
        yield runs
    finally:
        runs.close()


@pytest.mark.timeout(240)
@pytest.mark.skipif(virtual.problem() is not None,
                    reason=f"the virtual board cannot start here: {virtual.problem()}")
def test_the_virtual_board_behind_1e_4_noise_runs_to_the_end_with_retries_counted(
        pty_runs, tmp_path):
    cfg = load_scenario("terminal")
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, max_sim_time_s=SIM_S))
    master, slave = os.openpty()
    tty.setraw(slave)
    line = NoisyLine(1e-4, seed=3)
    line.attach(slave)          # plant's port <-> noise <-> the pty the board holds
    boards: list[subprocess.Popen] = []

    def launch(url: str) -> subprocess.Popen:
        board = subprocess.Popen(virtual.board_command("--fd", str(master), "--quiet"),
                                 pass_fds=(master,), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        boards.append(board)
        os.close(master)
        return board

    try:
        with line:
            result = PlantSide(cfg, f"serial://{line.names[0]}", tmp_path / "run", 1,
                               fsw_launcher=launch, control=False, plots=False).run()
    finally:
        for board in boards:
            board.terminate()
            board.communicate(timeout=30)
        if not boards:
            os.close(master)
        os.close(slave)
    summary = result.summary
    assert (result.exit_code, summary["outcome"]) == (1, "timeout"), summary["reason"]
    assert summary["cycles"] == CYCLES and summary["fsw_runtime"].startswith("micropython")
    mine, board = summary["link_stats"], summary["fsw_link_stats"]
    assert line.flips[0] > 0 and line.flips[1] > 0
    assert mine["frames_resent"] > 0 and mine["crc_errors"] + mine["cobs_errors"] > 0
    assert board["commands_sent"] == CYCLES        # the board's STATUS before its END
    assert board["crc_errors"] + board["cobs_errors"] > 0 and board["commands_resent"] > 0
    assert board["frames_received"] == CYCLES + board["frames_repeated"] + board["frames_stale"]


@pytest.mark.timeout(240)
def test_a_noisy_pty_pair_at_1e_4_completes_and_at_1e_3_ends_naming_line_noise(pty_runs):
    logs = pty_runs.collect()
    tmp = pty_runs.tmp
    plant, fsw = pty_runs.procs["1e-4"]
    summary = json.loads((tmp / "1e-4" / "summary.json").read_text())
    assert (plant.returncode, summary["outcome"]) == (1, "timeout"), logs["1e-4"]
    assert summary["cycles"] == CYCLES                   # every cycle to the end of the run
    assert fsw.returncode == 1, logs["1e-4"][1]          # it heard the plant's END
    mine, theirs = summary["link_stats"], summary["fsw_link_stats"]
    assert mine["hellos_sent"] >= 2                      # the first one was emptied away
    line = pty_runs.lines["1e-4"]
    assert line.flips[0] > 0 and line.flips[1] > 0
    assert mine["frames_resent"] > 0 and mine["frames_retried"] <= mine["frames_resent"]
    assert mine["crc_errors"] + mine["cobs_errors"] > 0  # damaged commands, dropped here
    assert theirs["commands_sent"] == CYCLES and theirs["commands_resent"] > 0
    assert theirs["crc_errors"] + theirs["cobs_errors"] > 0  # damaged frames, dropped there

    plant, fsw = pty_runs.procs["1e-3"]
    summary = json.loads((tmp / "1e-3" / "summary.json").read_text())
    assert plant.returncode == 3 and summary["outcome"] == "link_failure", logs["1e-3"]
    assert summary["reason"].startswith("link failure: line noise: frame "), summary["reason"]
    assert "stall" not in summary["reason"] and "\n" not in summary["reason"]
    assert summary["link_stats"]["frames_resent"] > 0
    assert fsw.returncode == 3


@pytest.mark.timeout(240)
def test_the_c_library_over_a_noisy_pty_pair_answers_from_its_cache_and_reports_damage(
        pty_runs):
    if pty_runs.c_problem is not None:
        raise pty_runs.c_problem               # skipped (or failed under FSIL_REQUIRE_C=1)
    logs = pty_runs.collect()
    plant, fsw = pty_runs.procs["c-1e-4"]
    summary = json.loads((pty_runs.tmp / "c-1e-4" / "summary.json").read_text())
    assert (plant.returncode, summary["outcome"]) == (1, "timeout"), logs["c-1e-4"]
    assert summary["cycles"] == CYCLES and "run ended: timeout" in logs["c-1e-4"][1]  # END heard
    mine, theirs = summary["link_stats"], summary["fsw_link_stats"]
    assert mine["frames_resent"] > 0
    assert theirs["commands_sent"] == CYCLES and theirs["commands_resent"] > 0
    assert theirs["damage_reports"] > 0 and theirs["crc_errors"] + theirs["cobs_errors"] > 0


def test_the_documented_retry_rules_are_the_defaults():
    doc = (ROOT / "docs" / "protocol.md").read_text()
    rules = RetryPolicy()
    assert f"first interval max({rules.interval_s * 1000:g} ms" in doc
    assert f"never above {rules.max_interval_s:g} s; at most **{rules.max_retries} " \
           "retransmissions**" in doc
    assert f"within {rules.hello_interval_s:g} s | every {rules.hello_interval_s:g} s" in doc
    assert f"within {END_RETRY_S:g} s | at most {END_RETRIES} more times" in doc
