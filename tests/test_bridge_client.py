"""bridge.client: the flight software's end of a run, against a scripted plant over loop://.

The plant side is a thread speaking the protocol by hand, so every path (END each way,
stalls, bad HELLO, retransmitted frames, contract breaks, STATUS) is checked from both ends.
One test lands `terminal` with the module docstring's kind of process, as its own process.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import msgpack
import pytest
from hello_sample import CONFIG, RATES

from bridge import protocol as p
from bridge.client import ContractError, FswClient, exit_code_for, outcome_of, serve
from bridge.codec import encode
from bridge.errors import MalformedMessage, PeerClosed, PeerTimeout
from bridge.url import open_link

ROOT = Path(__file__).resolve().parents[1]


def _frame(seq: int) -> list:
    t_us = 20000 * (seq + 1)
    return [seq, t_us, [[t_us - 5000, 0.0, 0.0, 0.0081, 0.0, 0.0, 0.0], [t_us, 0.0, 0.0, 0.0081,
                                                                          0.0, 0.0, 0.0]],
            [t_us - 7000, 100.0 - seq, True], None, _att(seq)]


def _att(seq: int) -> list | None:
    """The star tracker sample of frame seq: none in frame 0, then valid and invalid in turn."""
    if seq == 0:
        return None
    return [20000 * seq - 10000, 0.5, -0.5, 0.5, 0.5, True] if seq % 2 else \
        [20000 * seq - 10000, 1.0, 0.0, 0.0, 0.0, False]


class Plant(threading.Thread):
    """A scripted plant: HELLO, ``frames`` frames each awaiting its command, then ``end``.

    What it received is kept in ``got`` (decoded messages, in order).
    """

    def __init__(self, name: str, frames: int = 3, end: str | None = "landed: soft touchdown",
                 hello: bytes | None = None, repeat: int | None = None,
                 stall_after: int | None = None, status_before: int | None = None) -> None:
        super().__init__(daemon=True)
        self.url = f"loop://{name}"
        self.link = open_link(self.url, "plant")
        self.frames, self.end, self.hello = frames, end, hello
        self.repeat, self.stall_after, self.status_before = repeat, stall_after, status_before
        self.got: list = []
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self._script()
        except PeerClosed:  # the client ended the run and closed: read what it sent before
            try:
                while True:
                    self.got.append(self.link.recv_msg(1.0))
            except (PeerClosed, PeerTimeout):
                pass
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.done.set()

    def _script(self) -> None:
        link = self.link
        link.send(self.hello or encode(p.HELLO, ["plant", "test", RATES, CONFIG]))
        if self.hello is not None:
            self.got.append(link.recv_msg(5.0))  # the client's END
            return
        self.got.append(link.recv_msg(5.0, expect=p.HELLO_ACK))
        for seq in range(self.frames):
            if seq == self.stall_after:  # silent: the client gives up and says so
                self.got.append(link.recv_msg(5.0))
                return
            if seq == self.status_before:
                link.send_msg(p.STATUS, [seq, {"frames_sent": seq}])
            link.send_msg(p.FRAME, _frame(seq))
            msg = link.recv_msg(5.0, expect=p.COMMAND)
            self.got.append(msg)
            if msg.type_id == p.END:
                return
            if seq == self.repeat:
                link.send_msg(p.FRAME, _frame(seq))  # a retransmission
                self.got.append(link.recv_msg(5.0, expect=p.COMMAND))
        if self.end is not None:
            link.send_msg(p.END, [self.frames - 1, self.end])
            self.got.append(link.recv_msg(5.0, expect=p.END))

    def finish(self) -> list:
        self.done.set()
        self.join(10.0)
        self.link.close()
        assert self.error is None, self.error
        return self.got


class Hold:
    """A contract flight software: constant throttle, remembers what it saw."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.seen: list = []

    def step(self, frame):
        self.seen.append(frame.seq)
        return 0.5, [0.0, 0.0, 0.0], "terminal"


# --- the normal run, and how the plant's END maps to an exit code


@pytest.mark.timeout(30)
@pytest.mark.parametrize("end, code", [("landed: soft touchdown", 0),
                                       ("crashed: 12 m/s at touchdown", 1),
                                       ("link_failure: fsw stalled at seq 2", 3),
                                       ("plant: something", 1)])
def test_a_run_ends_with_the_plants_end_and_its_exit_code(end, code):
    plant = Plant(f"end{code}_{len(end)}", end=end)
    plant.start()
    with FswClient(plant.url, software="hold 1.0") as client:
        assert client.config == CONFIG and client.rates == RATES and client.scenario == "test"
        fsw = Hold(client.config)
        for frame in client.frames():
            assert frame.vel is None and frame.alt[2] is True
            assert frame.att == _att(frame.seq)
            client.reply(fsw.step(frame))
    got = plant.finish()
    assert fsw.seen == [0, 1, 2]
    assert (got[0].name, got[0].software, got[0].runtime.startswith("cpython")) == \
        ("hello_ack", "hold 1.0", True)
    commands = [m for m in got if m.name == "command"]
    assert [c.seq for c in commands] == [0, 1, 2]
    assert all(c.mode == p.MODES.index("terminal") and c.nav is None for c in commands)
    assert all(0 <= c.compute_us < 5_000_000 for c in commands)
    assert got[-1].name == "end" and got[-1].reason == f"ack: {outcome_of(end) or 'end'}"
    assert client.end_reason == end and client.ended_by == "plant"
    assert client.exit_code == code


@pytest.mark.timeout(30)
def test_a_retransmitted_frame_gets_the_same_command_without_a_second_step():
    plant = Plant("repeat", frames=3, repeat=1)
    plant.start()
    with FswClient(plant.url) as client:
        fsw = Hold(client.config)
        for frame in client.frames():
            client.reply(fsw.step(frame))
    got = plant.finish()
    assert fsw.seen == [0, 1, 2]
    commands = [m for m in got if m.name == "command"]
    assert [c.seq for c in commands] == [0, 1, 1, 2]
    assert commands[1] == commands[2]
    assert client.stats["frames_repeated"] == 1 and client.stats["commands_resent"] == 1


@pytest.mark.timeout(30)
def test_status_both_ways():
    plant = Plant("status", frames=4, status_before=2)
    plant.start()
    with FswClient(plant.url, status_every=2) as client:  # as on a lossy link
        for frame in client.frames():
            client.command(0.5, [0.0, 0.0, 0.0], 4, nav=[1.0] * 7, flags=p.FLAG_VEL_USED)
    plant.finish()
    # the plant's STATUS was recorded and skipped; ours reached the plant's link
    assert client.stats["frames_received"] == 4
    assert plant.link.peer_stats["commands_sent"] == 4
    assert {"frames_received", "frames_repeated", "commands_resent", "bad_frames"} \
        <= set(plant.link.peer_stats)


# --- failures on this side: an END with the reason, then the exception


@pytest.mark.timeout(30)
def test_a_bad_hello_is_refused_with_an_end_naming_the_key():
    config = copy.deepcopy(CONFIG)
    config["nav_init"]["q"] = [0, 0, 0, 0]  # crashed `fsil fsw` with ZeroDivisionError
    plant = Plant("badhello", hello=msgpack.packb([p.PROTOCOL_VERSION, p.HELLO, "plant", "x",
                                                   RATES, config]))
    plant.start()
    with pytest.raises(MalformedMessage, match="nav_init.q"):
        with FswClient(plant.url):
            pass
    (end,) = plant.finish()
    assert end.name == "end" and end.reason.startswith("protocol_error: bad HELLO from the plant")
    assert "nav_init.q" in end.reason


@pytest.mark.timeout(30)
def test_a_silent_plant_ends_the_run_after_the_frame_timeout():
    plant = Plant("stall", frames=5, stall_after=2)
    plant.start()
    client = FswClient(plant.url, frame_timeout_s=0.3)
    with pytest.raises(PeerTimeout) as info:
        with client:
            for frame in client.frames():
                client.reply((0.5, [0.0, 0.0, 0.0], 4))
    got = plant.finish()
    assert exit_code_for(info.value) == 3 and client.exit_code == 3
    assert got[-1].name == "end"
    assert got[-1].reason == "link_failure: plant stalled: no frame after seq 1 within 0.3 s"


BROKEN = [  # (what step returns, the words of the reason)
    ((0.5, [0.0, 0.0, 0.0]), "step returned a tuple of 2"),
    ("full", "step returned str"),
    ((math.nan, [0.0, 0.0, 0.0], 4), "throttle: expected a finite float"),
    ((0.5, [0.0, math.inf, 0.0], 4), "torque_nm"),
    ((0.5, [0.0, 0.0, 0.0], "hover"), "mode 'hover' is not one of"),
    ((0.5, [0.0, 0.0, 0.0], 7), "mode 7 is not an index"),
    ((0.5, [0.0, 0.0, 0.0], 4, [0.0] * 6, 0), "nav"),
    ((0.5, [0.0, 0.0, 0.0], 4, None, 2**32), "flags"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("result, words", BROKEN, ids=[w[:30] for _, w in BROKEN])
def test_a_command_that_breaks_the_contract_ends_the_run(result, words):
    plant = Plant(f"broken{BROKEN.index((result, words))}", frames=3)
    plant.start()

    class Broken(Hold):
        def step(self, frame):
            return result if frame.seq == 1 else super().step(frame)

    with pytest.raises(ContractError) as info:
        serve(plant.url, Broken, "broken 1.0")
    got = plant.finish()
    text = str(info.value)
    assert text.startswith("flight software Broken broke the contract at seq 1: ") and words in text
    assert info.value.exit_code == 3 and "\n" not in text
    assert got[-1].name == "end" and got[-1].reason == f"fsw_fault: {text}"


@pytest.mark.timeout(30)
def test_an_exception_in_step_or_in_the_constructor_is_reported_with_the_class_and_seq():
    plant = Plant("raises", frames=3)
    plant.start()

    class Diverges(Hold):
        def step(self, frame):
            if frame.seq == 2:
                return math.exp(1e6), [0.0] * 3, 4   # huge values: OverflowError
            return super().step(frame)

    with pytest.raises(ContractError, match="Diverges broke the contract at seq 2: step raised "
                                            "OverflowError: math range error"):
        serve(plant.url, Diverges, "diverges 1.0")
    assert plant.finish()[-1].reason.startswith("fsw_fault: flight software Diverges")

    plant = Plant("raises_init", frames=3)
    plant.start()

    def factory(config):
        return config["no such key"]
    with pytest.raises(ContractError, match="factory broke the contract at seq -1: cannot start: "
                                            "KeyError"):
        serve(plant.url, factory, "x")
    assert plant.finish()[-1].reason.startswith("fsw_fault: flight software factory")


@pytest.mark.timeout(30)
def test_an_exception_in_the_with_block_sends_end_and_propagates():
    plant = Plant("userraise", frames=3)
    plant.start()
    with pytest.raises(ZeroDivisionError):
        with FswClient(plant.url) as client:
            for frame in client.frames():
                client.reply((1 / (1 - frame.seq), [0.0] * 3, 4))
    got = plant.finish()
    assert got[-1].reason == "fsw_fault: flight software raised ZeroDivisionError at seq 1: " \
                             "division by zero"
    assert client.exit_code == 3


@pytest.mark.timeout(30)
def test_no_hello_within_the_timeout():
    with open_link("loop://nohello", "plant") as _plant:
        client = FswClient("loop://nohello", hello_timeout_s=0.2)
        with pytest.raises(PeerTimeout):
            client.connect()
        assert client.end_reason.startswith("link_failure: no HELLO from the plant")
        assert client.exit_code == 3


# --- a user's own process lands `terminal` (fsil plant on one side, this on the other)

def _docstring_example() -> str:
    """The user's process shown in bridge.client's docstring, as a script."""
    import bridge.client
    doc = bridge.client.__doc__
    block = doc.split("::\n\n", 1)[1].split("\n\n" + "What it does")[0]
    return textwrap.dedent(block)


@pytest.mark.timeout(240)
def test_a_users_process_with_the_client_lands_terminal(tmp_path):
    script = tmp_path / "my_fsw.py"
    script.write_text(_docstring_example())
    url = f"zmq+ipc://{tmp_path}/link.sock"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    plant = subprocess.Popen([sys.executable, "-m", "hil.cli", "plant", "--scenario", "terminal",
                              "--link", url, "--out", str(tmp_path / "run"), "--no-progress",
                              "--no-plot"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    user = subprocess.run([sys.executable, str(script), url], env=env, capture_output=True,
                          text=True, timeout=200)
    out, err = plant.communicate(timeout=60)
    assert plant.returncode == 0, err
    assert user.returncode == 0, user.stderr
    assert "ended: landed:" in user.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["outcome"] == "landed" and summary["fsw_software"] == "my-fsw 1.0"
