"""The real-mission failure scenarios: the legacy flight software fails the way the missions
did, the default one (with altimeter FDIR) lands. In-process (plant + flight software core,
no link) for speed; the two-process path is exercised by one CLI run at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from fsw.core import FlightSoftware
from hil.scenario import load_scenario
from plant.lander import Command, LanderPlant

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = ("m2-late-lrf", "m1-crater-rim", "im1-no-lrf")
CRITERIA = dict(vertical=2.0, horizontal=0.5, tilt=5.0, rate=2.0)


@lru_cache(maxsize=None)
def fly(name: str, variant: str, seed: int = 1) -> dict:
    """One landing; returns the outcome and a light trace (every 0.1 s)."""
    plant = LanderPlant(load_scenario(name))
    frame = plant.reset(seed)
    fsw = FlightSoftware(plant.fsw_config(), variant)
    trace = {"t": [], "true_alt": [], "nav_alt": [], "vz": [], "alt_valid": []}
    while not plant.done:
        thr, tq, _, nav7, _ = fsw.step(frame)
        frame = plant.step(Command(thr, tq))
        if frame.seq % 5 == 0:
            tr = plant.truth()
            trace["t"].append(frame.t_us * 1e-6)
            trace["true_alt"].append(tr["alt_m"])
            trace["nav_alt"].append(nav7[6])
            trace["vz"].append(tr["vert_speed_mps"])
            trace["alt_valid"].append(bool(frame.alt and frame.alt[2]))
    return {"outcome": plant.outcome, "trace": {k: np.array(v) for k, v in trace.items()},
            "propellant_kg": plant.truth()["propellant_kg"]}


def _landed_within_criteria(run: dict) -> None:
    o = run["outcome"]
    assert o.outcome == "landed", o.reason
    td = o.touchdown
    assert td["vertical_speed_mps"] <= CRITERIA["vertical"]
    assert td["horizontal_speed_mps"] <= CRITERIA["horizontal"]
    assert td["tilt_deg"] <= CRITERIA["tilt"]
    assert td["angular_rate_dps"] <= CRITERIA["rate"]
    assert run["propellant_kg"] > 0


@pytest.mark.parametrize("name", SCENARIOS)
def test_default_flight_software_lands(name):
    _landed_within_criteria(fly(name, "default"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_legacy_flight_software_crashes(name):
    o = fly(name, "legacy")["outcome"]
    assert o.outcome in ("crashed", "out_of_propellant"), o.reason


def test_m1_legacy_thinks_it_is_down_while_kilometres_up():
    """ispace M1: the estimate reaches zero while the true altitude is kilometres; it hovers
    down until the propellant runs out, then falls at over 100 m/s."""
    run = fly("m1-crater-rim", "legacy")
    tr = run["trace"]
    first_zero = int(np.argmax(tr["nav_alt"] <= 1.0))
    assert tr["nav_alt"][first_zero] <= 1.0
    assert tr["true_alt"][first_zero] > 2000.0
    o = run["outcome"]
    assert o.outcome == "out_of_propellant"
    assert o.touchdown["vertical_speed_mps"] > 80.0


def test_m1_default_sees_the_rim_as_terrain():
    """The default keeps using the altimeter across the 3 km jump: near the ground its
    height estimate is within metres of the truth."""
    tr = fly("m1-crater-rim", "default")["trace"]
    low = tr["true_alt"] < 500.0
    assert low.any()
    assert np.abs(tr["nav_alt"][low] - tr["true_alt"][low]).max() < 20.0


def test_m2_legacy_descends_far_faster_than_planned_when_the_range_finder_locks():
    """ispace M2: the first valid range comes late, with the lander descending far faster
    than the nominal plan at that height (66 against 44 m/s in flight)."""
    tr = fly("m2-late-lrf", "legacy")["trace"]
    i = int(np.argmax(tr["alt_valid"]))
    assert tr["alt_valid"][i]
    alt_lock, descent_lock = tr["true_alt"][i], -tr["vz"][i]
    assert alt_lock < 1000.0  # far below the 3 km it was expected from
    plan = fly("nominal", "default")["trace"]
    order = np.argsort(plan["true_alt"])
    planned_descent = -np.interp(alt_lock, plan["true_alt"][order], plan["vz"][order])
    assert descent_lock > 1.4 * planned_descent, (descent_lock, planned_descent)


def test_im1_legacy_lands_hard_believing_it_is_higher():
    """IM-1: no range finder; near the ground it believes it is ~100 m higher, and hits the
    ground too fast."""
    run = fly("im1-no-lrf", "legacy")
    tr = run["trace"]
    assert not tr["alt_valid"].any()
    assert tr["nav_alt"][-1] - tr["true_alt"][-1] > 50.0
    assert run["outcome"].touchdown["vertical_speed_mps"] > 2.0


def test_nominal_still_lands_with_the_default():
    _landed_within_criteria(fly("nominal", "default"))
    assert fly("nominal", "default")["outcome"].touchdown["distance_to_target_m"] < 1000.0


@pytest.mark.timeout(300)
def test_cli_legacy_run_exits_1_and_compare_plots_both(tmp_path):
    """`fsil run --fsw legacy` ends not landed (exit 1), the default lands (exit 0), and
    `fsil compare` plots both and prints the differences. In process (--inprocess): the
    two-process path of the same command is tested on nominal and terminal
    (test_cli_e2e), and the histories of the two modes are identical (test_engine)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    outs = {}
    for variant, code in (("legacy", 1), ("default", 0)):
        out = tmp_path / variant
        proc = subprocess.run([sys.executable, "-m", "hil.cli", "run", "--scenario", "m1-crater-rim",
                               "--fsw", variant, "--inprocess", "--out", str(out), "--no-progress"],
                              capture_output=True, text=True, env=env, timeout=240, cwd=REPO)
        assert proc.returncode == code, proc.stdout + proc.stderr
        s = json.loads((out / "summary.json").read_text())
        assert variant in s["fsw_software"]
        outs[variant] = out
    png = tmp_path / "cmp.png"
    proc = subprocess.run([sys.executable, "-m", "hil.cli", "compare", str(outs["legacy"]),
                           str(outs["default"]), "--out", str(png)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "out_of_propellant" in proc.stdout and "landed" in proc.stdout
