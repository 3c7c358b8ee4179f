"""Real time through the command line: the real flight software in its own process.

Margins (stated in docs/timing.md): at 50 Hz the deadline is 20 ms and the nominal flight
software answers in about 0.5 ms (p99 a few ms on this shared two-core machine), so a miss
needs a ~20 ms stall; the tests allow a median latency up to 10 ms and misses up to 5 % (the VM's host stalls). With 30 ms of injected load
every command is at least 10 ms late by construction, so "every cycle missed" and "overrun
>= 10 ms" cannot flake; the median overrun may exceed the 10 ms excess by at most 8 ms
(measured: ~0.5-1 ms over).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hil.plant_side import HISTORY_COLUMNS
from hil.timing import TIMING_COLUMNS

pytestmark = pytest.mark.xdist_group("realtime")  # paced runs: one at a time (pyproject)

REPO = Path(__file__).resolve().parents[1]
FSIL = [sys.executable, "-m", "hil.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def fsil(*args: str, timeout: float = 300.0, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*FSIL, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or ENV, cwd=REPO)


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _fifo_allowed() -> bool:
    """SCHED_FIFO is permitted: root, CAP_SYS_NICE or an rtprio limit of at least 50."""
    import resource
    return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 50


@pytest.mark.timeout(240)
def test_nominal_fsw_meets_its_deadline_in_real_time(tmp_path):
    """20 s of the terminal descent in real time at 50 Hz: 1000 cycles, no deadline missed.

    Both processes at SCHED_FIFO (--rt-priority) where permitted: neighbours on this shared
    machine then cannot preempt the loop (under their load SCHED_OTHER misses ~0.5 % of the
    cycles; docs/timing.md)."""
    out = tmp_path / "rt"
    fifo = ["--rt-priority", "50"] if _fifo_allowed() else []
    proc = fsil("run", "--scenario", "terminal", "--realtime", "--max-sim-time", "20",
                *fifo, "--out", str(out), "--no-progress")
    s = summary(out)
    assert s["outcome"] == "timeout", proc.stderr     # still flying at 20 s: not crashed
    assert proc.returncode == 1
    t = s["timing"]
    assert t["mode"] == "realtime" and t["cycles"] == 1000 == s["cycles"]
    assert t["period_us"] == t["deadline_us"] == 20_000
    # At SCHED_FIFO no process of this machine preempts the loop, but the virtual machine's
    # host can still stall it: 0 misses in most runs, up to 15 in 1000 cycles seen in
    # 30-150 ms bursts. At most 5 % here (a pacer that cannot keep up misses them all);
    # the zero-miss figure is measured by 'fsil bench timing' and the run's own summary.
    assert t["deadline_misses"] <= 50, t
    assert t["skipped_frames"] + t["late_commands"] + t["dropped_commands"] <= 3 * 50, t
    assert t["latency_us"]["p50"] < 10_000
    assert t["scheduling"] == ("SCHED_FIFO 50" if fifo else "SCHED_OTHER")
    # compute is measured for every command that arrived (skipped frames have none)
    assert t["compute_us"]["count"] == 1000 - t["skipped_frames"]
    assert t["plant_step_us"]["p50"] < 5_000
    assert s["wall_time_s"] >= 20.0                     # paced: not faster than real time
    h = pd.read_csv(out / "history.csv")
    assert list(h.columns) == HISTORY_COLUMNS + TIMING_COLUMNS and len(h) == 1000
    assert (h["deadline_met"] == 0).sum() == t["deadline_misses"]
    assert (out / "timing.png").read_bytes()[:4] == b"\x89PNG"
    assert s["files"]["timing_plot"] == "timing.png"
    assert "timing (real time)" in proc.stdout and f"{t['deadline_misses']} deadline misses in 1000 cycles" in proc.stdout


def _scenario_with(tmp_path: Path, deadline_table: str) -> Path:
    path = tmp_path / "terminal_deadline.toml"
    path.write_text((REPO / "hil/scenarios/terminal.toml").read_text()
                    + "\n[deadline]\n" + deadline_table)
    return path


@pytest.mark.timeout(120)
def test_injected_load_beyond_the_deadline_is_caught(tmp_path):
    """30 ms of compute per cycle against a 20 ms deadline: every cycle misses, each command
    overruns by about the 10 ms excess, and the policy ends the run after 50 misses in a row."""
    out = tmp_path / "load"
    # normal scheduling on purpose: a 30 ms busy-wait at SCHED_FIFO would hold a CPU from
    # any other real-time run on this machine (docs/timing.md)
    proc = fsil("run", "--scenario", str(_scenario_with(tmp_path, "max_consecutive_misses = 50\n")),
                "--realtime", "--fsw-load-ms", "30", "--out", str(out), "--no-progress",
                "--no-plot")
    assert proc.returncode == 1, proc.stderr
    s = summary(out)
    assert s["outcome"] == "deadline_abort"
    assert "50 consecutive deadline misses (limit 50)" in s["reason"]
    t = s["timing"]
    assert t["cycles"] == 50 == t["deadline_misses"] == t["longest_miss_streak"]
    assert t["compute_us"]["p50"] >= 30_000
    # Every command that came back was late, and each late one made the next frame(s)
    # skipped. How many frames went out depends on how long the busy-wait really took (a
    # loaded machine stretches it: 13 of 50 at load 6-10), so the counts are tied to each
    # other, not to a figure only a quiet machine gives (2 of 50 at load 9).
    assert t["frames_sent"] >= 1 and t["late_commands"] >= t["frames_sent"] - 1, t
    assert t["skipped_frames"] >= t["frames_sent"] - 1
    assert t["frames_sent"] + t["skipped_frames"] == 50
    excess_us = 30_000 - 20_000
    # at least the excess; at most what the flight software itself measured (its compute
    # less the 20 ms deadline, plus up to 20 ms of transport and wake-up)
    assert excess_us <= t["overrun_us"]["p50"] <= t["compute_us"]["p50"], (t["overrun_us"],
                                                                           t["compute_us"])
    assert t["longest_overrun_us"] >= excess_us
    assert "run ended by the deadline policy" in proc.stdout
    assert "deadline_abort" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(120)
def test_hold_policy_without_limits_flies_on_under_load(tmp_path):
    out = tmp_path / "hold"
    proc = fsil("run", "--scenario", "terminal", "--realtime", "--fsw-load-ms", "30",
                "--max-sim-time", "3", "--out", str(out), "--no-progress", "--no-plot")
    s = summary(out)
    assert s["outcome"] == "timeout" and proc.returncode == 1, proc.stderr
    t = s["timing"]
    assert t["cycles"] == 150 == t["deadline_misses"]   # every command >= 30 ms: all late
    assert t["frames_sent"] + t["skipped_frames"] == 150 and t["skipped_frames"] >= 50
    assert t["abort"] is None and t["policy"]["on_miss"] == "hold"
    h = pd.read_csv(out / "history.csv")
    # hold: the late commands are applied -- the applied seq moves on with each of them
    # (skip would drop them all and hold the first). How many came back depends on the
    # machine's load (9 of 150 at load 6-10, about 75 quiet).
    n_cmd = t["commands_received"]
    assert n_cmd >= 5 and h["applied_seq"].dropna().nunique() >= n_cmd - 1, (n_cmd, t)


@pytest.mark.timeout(120)
def test_lockstep_keeps_its_history_and_reports_compute_and_round_trip(tmp_path):
    out = tmp_path / "lock"
    proc = fsil("run", "--scenario", "terminal", "--fsw-load-ms", "2", "--max-sim-time", "2",
                "--out", str(out), "--no-progress")
    assert proc.returncode == 1, proc.stderr
    s = summary(out)
    t = s["timing"]
    assert t["mode"] == "lockstep" and t["cycles"] == 100 == s["cycles"]
    assert 2_000 <= t["compute_us"]["p50"] < 12_000         # the injected 2 ms is measured
    assert t["round_trip_us"]["p50"] >= t["compute_us"]["p50"]
    assert "deadline_misses" not in t
    assert list(pd.read_csv(out / "history.csv").columns) == HISTORY_COLUMNS
    assert not (out / "timing.png").exists()
    assert "timing (lockstep)" in proc.stdout


@pytest.mark.parametrize("args, words", [
    (["run", "--fsw-load-ms", "-1"], "--fsw-load-ms must be 0 .. 10000 ms"),
    (["fsw", "--link", "zmq+ipc:///tmp/x.sock", "--load-ms", "20000"], "--load-ms must be"),
    (["run", "--max-sim-time", "0"], "--max-sim-time must be > 0"),
    (["run", "--rt-priority", "0"], "--rt-priority must be 1 .. 99"),
])
def test_bad_timing_arguments_exit_2(args, words):
    proc = fsil(*args, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]


@pytest.mark.parametrize("args", [["bench", "--help"], ["bench", "timing", "--help"]])
def test_bench_help(args):
    proc = fsil(*args, timeout=60)
    assert proc.returncode == 0 and "usage: fsil bench" in proc.stdout


def test_bench_without_cyclictest_says_how_to_install(tmp_path):
    env = {**ENV, "PATH": str(tmp_path)}   # an empty folder: no cyclictest
    proc = fsil("bench", "timing", env=env, timeout=60)
    assert proc.returncode == 2
    assert "apt-get install rt-tests" in proc.stderr and "cyclictest not found" in proc.stderr


@pytest.mark.skipif(not any((Path(d) / "cyclictest").exists()
                            for d in os.environ.get("PATH", "").split(os.pathsep)),
                    reason="cyclictest not installed (apt-get install rt-tests)")
@pytest.mark.timeout(120)
def test_bench_prints_both_loops_and_the_ratio(tmp_path):
    out = tmp_path / "bench.json"
    proc = fsil("bench", "timing", "--duration", "1", "--json", str(out), timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("fsil pacer") == 2 and proc.stdout.count("cyclictest 2") == 2
    assert proc.stdout.count("p99 ratio fsil / cyclictest") == 2
    doc = json.loads(out.read_text())
    assert [r["rate_hz"] for r in doc["results"]] == [100.0, 1000.0]
    for r in doc["results"]:
        assert r["fsil"]["cycles"] == round(r["rate_hz"])
        # cyclictest ran and measured (how many of its cycles fit in the second depends on
        # when it got a CPU: 860 of 1000 at load 15, 50 of 100 at load 9)
        assert r["cyclictest"]["cycles"] > 0
        assert 0 <= r["fsil"]["p50"] <= r["fsil"]["p99"] <= r["fsil"]["max"]
        assert r["p99_ratio"] >= 0
