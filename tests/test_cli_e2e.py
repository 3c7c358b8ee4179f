"""End to end through the real command line: two OS processes over ZeroMQ, run folders,
exit codes and one-line reasons for bad input and dead peers."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
FSIL = [sys.executable, "-m", "hil.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def fsil(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([*FSIL, *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV, cwd=REPO)


@pytest.fixture(scope="module")
def terminal_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("run") / "terminal"
    return fsil("run", "--scenario", "terminal", "--out", str(out), "--no-progress"), out


@pytest.mark.timeout(180)
def test_terminal_lands_over_two_processes(terminal_run):
    proc, out = terminal_run
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["outcome"] == "landed"
    td = s["touchdown"]
    assert td["vertical_speed_mps"] <= 2.0
    assert td["horizontal_speed_mps"] <= 0.5
    assert td["tilt_deg"] <= 5.0 and td["angular_rate_dps"] <= 2.0
    assert td["distance_to_target_m"] < 1000.0
    assert s["propellant_left_kg"] > 0 and s["propellant_used_kg"] > 0
    p = s["processes"]
    assert p["plant_pid"] != p["fsw_pid"] and p["fsw_pid"] is not None
    assert s["link"].startswith("zmq+ipc://")
    assert s["fsw_runtime"].startswith("cpython ")
    assert s["seed"] == 1 and s["cycles"] > 1000
    for key in ("reason", "sim_time_s", "wall_time_s"):
        assert key in s
    assert "outcome: landed" in proc.stdout


def test_history_is_complete_and_pandas_reads_it(terminal_run):
    _, out = terminal_run
    s = json.loads((out / "summary.json").read_text())
    h = pd.read_csv(out / "history.csv")
    assert len(h) == s["cycles"]
    for col in ("t_s", "mode", "true_alt_m", "nav_alt_m", "nav_pos_err_m", "cmd_throttle",
                "alt_valid", "compute_us", "round_trip_us"):
        assert col in h.columns
    assert h["t_s"].is_monotonic_increasing
    assert set(h["mode"]) >= {"approach", "terminal"}
    # The navigation estimate tracks the truth once the altimeter is in.
    late = h[h["true_alt_m"] < 500]
    assert (late["nav_alt_err_m"].abs() < 5.0).all()
    png = (out / "descent.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def _without_wall_clock(path: Path) -> list[str]:
    """History lines with the wall-clock columns (compute_us, round_trip_us) cut out."""
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    drop = {header.index("compute_us"), header.index("round_trip_us")}
    out = []
    for line in lines:
        cells = line.split(",")   # no quoted cells in a nominal history
        assert len(cells) == len(header)
        out.append(",".join(c for j, c in enumerate(cells) if j not in drop))
    return out


def test_same_seed_same_run_in_one_process_or_two(terminal_run, tmp_path):
    """The same scenario and seed give the same history, bit for bit (every float written
    in shortest round-trip form, so equal text is equal bits), whether the flight software
    runs in its own process over ZeroMQ or in the plant's process (fsil run --inprocess)."""
    _, out1 = terminal_run
    proc = fsil("run", "--scenario", "terminal", "--out", str(tmp_path / "again"), "--no-progress",
                "--inprocess", "--no-plot")
    assert proc.returncode == 0, proc.stderr
    assert "link none (in process)" in proc.stdout
    a = _without_wall_clock(out1 / "history.csv")
    b = _without_wall_clock(tmp_path / "again" / "history.csv")
    assert len(a) > 1000 and a == b
    s1 = json.loads((out1 / "summary.json").read_text())
    s2 = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert set(s1) == set(s2)
    assert (s1["engine"], s2["engine"]) == ("two_process", "inprocess")
    assert s1["final"] == s2["final"] and s1["touchdown"] == s2["touchdown"]
    final, td = s1["final"], s1["touchdown"]   # where it came to rest; where it first touched
    assert math.hypot(final["downrange_m"], final["crossrange_m"]) == \
        pytest.approx(td["distance_to_target_m"], abs=2.0)
    assert final["nav_pos_err_m"] == pd.read_csv(out1 / "history.csv")["nav_pos_err_m"].iloc[-1]
    assert s2["processes"]["fsw_pid"] == s2["processes"]["plant_pid"]
    assert s2["fsw_software"] == s1["fsw_software"]


@pytest.mark.parametrize("sub", ["run", "plant", "fsw", "scenarios"])
def test_every_subcommand_has_help(sub):
    proc = fsil(sub, "--help")
    assert proc.returncode == 0
    assert "usage: fsil " + sub in proc.stdout


def test_scenarios_lists_both():
    proc = fsil("scenarios")
    assert proc.returncode == 0
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert "nominal" in names and "terminal" in names


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_malformed_scenario_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[vehicle]\nmax_thrust_n = -5\n')
    proc = fsil("run", "--scenario", str(bad), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    line = _one_line_error(proc)
    assert "max_thrust_n" in line and "range" in line


def test_unknown_key_and_syntax_error_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[vehicle]\nmax_thrust = 4000\n')
    proc = fsil("run", "--scenario", str(bad))
    assert proc.returncode == 2 and "max_thrust" in _one_line_error(proc)
    bad.write_text('[vehicle\n')
    proc = fsil("run", "--scenario", str(bad))
    assert proc.returncode == 2 and "bad.toml" in _one_line_error(proc)


def test_unknown_scenario_name_exit_2():
    proc = fsil("run", "--scenario", "no-such-scenario")
    assert proc.returncode == 2
    assert "no-such-scenario" in _one_line_error(proc)


@pytest.mark.parametrize("url", ["zmq+foo://x", "tcp://127.0.0.1:5", "zmq+tcp://127.0.0.1:notaport",
                                 "nourl"])
def test_bad_url_exit_2(url, tmp_path):
    proc = fsil("run", "--scenario", "terminal", "--link", url, "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    line = _one_line_error(proc)
    assert "expected zmq+" in line  # the message quotes the grammar


def test_bad_argument_exit_2():
    proc = fsil("run", "--seed", "abc")
    assert proc.returncode == 2


@pytest.mark.timeout(120)
def test_fsw_killed_mid_run_exit_3_history_kept(tmp_path):
    """Kill the flight software process mid-run: the plant says so, exits 3, keeps the history."""
    sock = tmp_path / "link.sock"
    url = f"zmq+ipc://{sock}"
    out = tmp_path / "o"
    plant = subprocess.Popen([*FSIL, "plant", "--scenario", "terminal", "--link", url,
                              "--out", str(out), "--timeout", "2", "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                             cwd=REPO)
    fsw = subprocess.Popen([*FSIL, "fsw", "--link", url], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=ENV, cwd=REPO)
    hist = out / "history.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if hist.exists() and hist.stat().st_size > 50_000:
            break
        time.sleep(0.05)
    fsw.send_signal(signal.SIGKILL)
    fsw.wait()
    # Rows already on disk when the flight software died (the file grows in blocks of whole
    # rows, about 500 bytes each: about 100 rows here); every one of them must be kept.
    seen = hist.read_bytes().count(b"\n") - 1
    stdout, stderr = plant.communicate(timeout=60)
    assert plant.returncode == 3, stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["outcome"] == "link_failure"
    assert "fsw" in s["reason"] and "seq" in s["reason"]
    rows = pd.read_csv(hist)
    assert seen > 50 and len(rows) >= seen, (seen, len(rows))
    assert "link failure" in stderr or "link_failure" in stderr


@pytest.mark.timeout(300)
def test_nominal_lands_from_pdi_over_two_processes(tmp_path):
    """The main job: the README's run -- full powered descent from 15 km, 450 km out."""
    out = tmp_path / "nominal"
    proc = fsil("run", "--out", str(out), "--no-progress", "--no-plot", timeout=280)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["outcome"] == "landed"
    assert s["touchdown"]["distance_to_target_m"] < 1000.0
    assert s["propellant_left_kg"] > 20.0
    h = pd.read_csv(out / "history.csv", usecols=["mode", "true_alt_m", "true_horiz_speed_mps"])
    assert list(dict.fromkeys(h["mode"])) == ["coast", "braking", "approach", "terminal", "touchdown"]
    assert h["true_alt_m"].iloc[0] > 14000 and h["true_horiz_speed_mps"].iloc[0] > 1600
