"""Signals and a dying child end a run in order (issue 13.4).

``fsil run`` sent SIGINT or SIGTERM mid-run -- over two processes, in one, in real time --
sends END to its flight software, stops and reaps it, writes summary.json with outcome
``interrupted``, keeps the history, removes its temporary folder and exits with
``EXIT_INTERRUPTED`` and one line. A flight-software child killed with SIGKILL is reported
as its death with its exit code. The time these take is measured by bench/signals.py, not
asserted here (the bounds below only catch a hang).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.engine import run_inprocess, signals
from hil.engine.context import Progress, RunContext
from hil.engine.lockstep import send_watching
from hil.errors import EXIT_INTERRUPTED, EXIT_LINK, Interrupted, LinkFailure
from hil.scenario import load_scenario

# ---------------------------------------------------------------- in this process

@pytest.fixture(scope="module")
def short_cfg():
    cfg = load_scenario("terminal")
    cfg.run.max_sim_time_s = 4.0     # 200 cycles
    return cfg


def _signalling_fsw(at_seq: int, sig: int, hang: bool = False):
    """fsil's flight software that sends this process ``sig`` at frame ``at_seq`` (and then
    never returns from that step, if ``hang``)."""
    from fsw.host.registry import resolve
    inner = resolve("default", load=True).factory

    class Signalling:
        def __init__(self, config):
            self.fsw = inner(config)

        def step(self, frame):
            if frame.seq == at_seq:
                signal.raise_signal(sig)
                while hang:
                    pass
            return self.fsw.step(frame)
    return Signalling


@pytest.mark.parametrize("hang", [False, True], ids=["at-a-safe-point", "in-a-hung-step"])
def test_a_signal_ends_an_inprocess_run_in_order(short_cfg, tmp_path, hang):
    """Noted, then taken at the next cycle (or, the step hung, by the second signal the
    module sends itself): outcome interrupted, exit 130, every recorded row once."""
    with signals.handle_signals():
        r = run_inprocess(short_cfg, 1, fsw=_signalling_fsw(60, signal.SIGTERM, hang),
                          out_dir=tmp_path, plots=False)
    assert r.exit_code == EXIT_INTERRUPTED
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["outcome"] == "interrupted" and s["reason"].startswith("interrupted by SIGTERM")
    assert s["cycles"] == (60 if hang else 61)   # hung: frame 60's step never finished
    rows = (tmp_path / "history.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[1]) for row in rows] == list(range(s["cycles"]))


def test_without_the_handlers_nothing_changes(short_cfg):
    """A library caller (no handle_signals): Python's own SIGINT handling applies."""
    with pytest.raises(KeyboardInterrupt) as e:
        run_inprocess(short_cfg, 1, fsw=_signalling_fsw(5, signal.SIGINT), history=None)
    assert not isinstance(e.value, Interrupted)


def test_a_dead_peer_is_seen_while_sending(tmp_path, short_cfg):
    """A frame the peer never takes (no peer: ZeroMQ blocks the send): the plant checks its
    flight-software process between slices and reports its death, not a stall later."""
    from bridge.url import open_link
    from hil.engine.recorder import HistoryRecorder, NullSink
    from hil.engine.timing import TimingLog
    from plant.lander import LanderPlant

    checks = []

    def dead(seq, what):
        checks.append((seq, what))
        raise LinkFailure(f"flight software process 1 was killed by SIGKILL (exit code -9) "
                          f"while the plant sent it a {what}", side="fsw", seq=seq)

    with open_link(f"zmq+ipc://{tmp_path}/x.sock", "plant") as link:
        ctx = RunContext(short_cfg, 1, LanderPlant(short_cfg), HistoryRecorder(NullSink()),
                         TimingLog.for_run(short_cfg, False), Progress(1.0, False), link=link,
                         check_alive=dead, timeout_s=10.0)
        with pytest.raises(LinkFailure, match="killed by SIGKILL"):
            send_watching(ctx, b"frame", 7, "frame")
    assert checks == [(7, "frame")]


# ---------------------------------------------------------------- through the command line

REPO = Path(__file__).resolve().parents[1]
FSIL = [sys.executable, "-m", "hil.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
HANG_S = 120.0     # only a hang exceeds this (4 runs drawing plots at once, load 11: 35 s)


def _start(out: Path, *extra: str, session: bool = False) -> subprocess.Popen:
    return subprocess.Popen([*FSIL, "run", "--scenario", "nominal", "--out", str(out),
                             "--no-progress", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=REPO,
                            start_new_session=session)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _running(out: Path, proc: subprocess.Popen, rows: int = 120) -> None:
    """Wait until the run is well under way (its history has ``rows`` rows on disk)."""
    hist = out / "history.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if hist.exists() and hist.stat().st_size > rows * 400:
            return
        time.sleep(0.05)
    pytest.fail("the run did not get going")


def _alive(pid: int) -> bool:
    """True if ``pid`` is a live process (a zombie is not: it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


MODES = {
    "two_process": (),
    "ctrl_c": (),            # two processes, SIGINT to the whole process group (Ctrl-C)
    "inprocess": ("--inprocess",),
    "realtime": ("--realtime",),
}


CASES = [("two_process", signal.SIGINT), ("inprocess", signal.SIGTERM),
         ("realtime", signal.SIGTERM), ("ctrl_c", signal.SIGINT),
         ("two_process", signal.SIGKILL)]   # the last: kill -9 of the flight software child


@pytest.fixture(scope="module")
def ended(tmp_path_factory) -> dict:
    """Every case at once (one start-up cost): each run is signalled when it is under way
    (SIGKILL goes to its flight-software child; Ctrl-C to both: the child may end the link
    first, the run is still interrupted); what each left behind, by case."""
    base = tmp_path_factory.mktemp("signals")
    started = []
    for mode, sig in CASES:
        out = base / f"{mode}-{sig.name}"
        started.append((mode, sig, out, _start(out, *MODES[mode], session=mode == "ctrl_c")))
    runs = {}
    try:
        for mode, sig, out, proc in started:
            _running(out, proc)
            children = _children(proc.pid)
            assert (len(children) == 1) == (mode != "inprocess"), (mode, children)
            if mode == "ctrl_c":       # the terminal signals the plant and its child at once
                os.killpg(proc.pid, sig)
            else:
                os.kill(children[0] if sig == signal.SIGKILL else proc.pid, sig)
            runs[(mode, sig)] = (out, proc, children)
        for key, (out, proc, children) in runs.items():
            _, stderr = proc.communicate(timeout=HANG_S)
            runs[key] = (out, proc.returncode, stderr, children)
    finally:
        for _, _, _, proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return runs


@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode,sig", CASES[:-1], ids=lambda v: getattr(v, "name", v))
def test_sigint_and_sigterm_end_the_run_in_order(ended, mode, sig):
    out, code, stderr, children = ended[(mode, sig)]
    assert code == EXIT_INTERRUPTED, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("fsil")]
    assert len(lines) == 1 and lines[0].startswith(f"fsil: interrupted by {sig.name} at seq")
    s = json.loads((out / "summary.json").read_text())
    assert s["outcome"] == "interrupted", s["reason"]
    assert sig.name in s["reason"] and "seq" in s["reason"]
    assert s["engine"] == ("inprocess" if mode == "inprocess" else "two_process")
    assert s["build"]["version"] and s["build"]["command"][:2] == ["fsil", "run"]
    rows = (out / "history.csv").read_text().splitlines()
    assert len(rows) - 1 == s["cycles"] > 50
    assert (out / "descent.png").stat().st_size > 10_000
    for pid in children:             # the flight software: ended (and reaped: no orphan)
        assert not _alive(pid), pid
    if mode != "inprocess":
        link = s["link"]
        assert link.startswith("zmq+ipc:///tmp/fsil-")
        assert not Path(link[len("zmq+ipc://"):]).parent.exists()
        log = (out / "fsw.log").read_text()
        assert "interrupted" in log      # the flight software got END "interrupted: ..."


@pytest.mark.timeout(240)
def test_fsw_child_killed_is_reported_as_its_death(ended):
    """kill -9 of the flight software fsil run started: the reason names its death and exit
    code (whether the plant was sending a frame or waiting for a command), exit 3."""
    out, code, stderr, (child,) = ended[("two_process", signal.SIGKILL)]
    assert code == EXIT_LINK, stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["outcome"] == "link_failure"
    assert f"process {child} was killed by SIGKILL (exit code -9)" in s["reason"], s["reason"]
    assert "no command within" not in s["reason"]
    assert not _alive(child)
