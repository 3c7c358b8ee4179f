"""The star tracker sample (FRAME att, protocol 3) travels everywhere a sensor frame travels:
the plant's SensorFrame.att reaches the flight software in process, over a link to a
flight software in another process (``fsil fsw``), and in the real-time loop's payload, and
lands in the history's att_* columns. A fixture gives the plant's frames a sample made from
the true attitude (none at first, then valid, every fifth invalid; some as tuples, as a
plant may hold them); the last test flies the plant's own star tracker (plant/star_tracker.py)
with fsil's flight software over two processes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bridge import protocol
from bridge.codec import decode
from hil.engine import PlantSide, run_inprocess
from hil.history import read_history
from hil.scenario import load_scenario
from plant.lander import Command, LanderPlant

REPO = Path(__file__).resolve().parents[1]
CYCLES = 60


def _sample(plant: LanderPlant, frame) -> list | tuple | None:
    """A star tracker sample for this frame: the true attitude 20 ms before it."""
    if frame.seq < 3:
        return None
    t_us = frame.t_us - 20_000
    if frame.seq % 5 == 0:
        return [t_us, 1.0, 0.0, 0.0, 0.0, False]
    q = [float(x) for x in plant.state[6:10]]
    return (t_us, *q, True) if frame.seq % 2 else [t_us, *q, True]


@pytest.fixture
def att_plant(monkeypatch):
    """LanderPlant frames carry an att sample; returns the samples sent, by seq."""
    sent: dict[int, list | None] = {}
    reset, step = LanderPlant.reset, LanderPlant.step

    def with_att(plant, frame):
        frame.att = _sample(plant, frame)
        sent[frame.seq] = None if frame.att is None else list(frame.att)
        return frame

    monkeypatch.setattr(LanderPlant, "reset",
                        lambda self, *a, **k: with_att(self, reset(self, *a, **k)))
    monkeypatch.setattr(LanderPlant, "step",
                        lambda self, *a, **k: with_att(self, step(self, *a, **k)))
    return sent


@pytest.fixture
def short_cfg():
    cfg = load_scenario("terminal")
    cfg.run.max_sim_time_s = CYCLES / cfg.rates.frame_hz
    cfg.run.link_timeout_s = 20.0
    return cfg


def _check_history(h, sent: dict) -> None:
    """The att_* columns are the samples the plant sent, row by row (empty: none)."""
    cols = ["att_t_s", "att_qw", "att_qx", "att_qy", "att_qz", "att_valid"]
    assert len(h) == CYCLES
    for seq, row in zip(h["seq"], h[cols].itertuples(index=False)):
        att = sent[int(seq)]
        if att is None:
            assert all(x is None or (isinstance(x, float) and math.isnan(x)) for x in row), seq
        else:
            assert list(row) == [att[0] * 1e-6, *att[1:5], int(att[5])], seq


def test_inprocess_the_flight_software_gets_the_plants_sample(att_plant, short_cfg):
    seen = {}

    class Probe:
        def __init__(self, config):
            pass

        def step(self, frame):
            seen[frame.seq] = frame.att
            return 0.0, [0.0, 0.0, 0.0], "coast"

    r = run_inprocess(short_cfg, 1, fsw=Probe, history="memory")
    assert sorted(seen) == list(range(CYCLES))
    assert seen == {seq: att for seq, att in att_plant.items() if seq < CYCLES}
    got = [a for a in seen.values() if a is not None]
    assert len(got) == CYCLES - 3 and any(not a[5] for a in got) and any(a[5] for a in got)
    assert all(type(a) is list and [type(x) for x in a] == [int] + [float] * 4 + [bool]
               for a in got)
    _check_history(r.history.to_pandas(), att_plant)


def test_two_processes_the_sample_crosses_the_link_to_fsil_fsw(att_plant, short_cfg, tmp_path):
    log = tmp_path / "att.jsonl"
    procs = []

    def launch(url: str) -> subprocess.Popen:
        env = dict(os.environ, FSIL_ATT_LOG=str(log))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "hil.cli", "fsw", "--link", url, "--quiet",
             "--fsw", str(REPO / "tests" / "att_probe.py") + ":AttProbe"], cwd=REPO, env=env))
        return procs[-1]

    out = tmp_path / "run"
    side = PlantSide(short_cfg, f"zmq+ipc://{tmp_path}/l.sock", out, 1, fsw_launcher=launch,
                     control=False, plots=False)
    try:
        result = side.run()
    finally:
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    assert result.summary["cycles"] == CYCLES, result.summary.get("reason")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [seq for seq, _, _ in lines] == list(range(CYCLES))
    for seq, att, kinds in lines:   # bit for bit: JSON writes floats in shortest round trip
        assert att == att_plant[seq], seq
        assert kinds is None or kinds == ["int"] + ["float"] * 4 + ["bool"]
    assert sum(att is not None and att[5] is False for _, att, _ in lines) >= 10
    _check_history(read_history(out / "history.csv"), att_plant)


def test_the_real_time_loop_sends_the_sample(att_plant, short_cfg):
    from hil.engine.realtime import RealtimeLoop
    plant = LanderPlant(short_cfg)
    frame = plant.reset(1)
    for _ in range(7):
        frame = plant.step(Command(0.0, (0.0, 0.0, 0.0)))
    assert isinstance(frame.att, tuple)   # seq 7: a tuple goes out as the array
    msg = decode(RealtimeLoop._encode(frame, frame.imu))
    assert msg.att == list(frame.att) and msg.type_id == protocol.FRAME
    frame.att = None
    assert decode(RealtimeLoop._encode(frame, frame.imu)).att is None
    assert np.isfinite(msg.att[1:5]).all()


def test_a_star_tracker_run_over_two_processes_is_the_in_process_run(tmp_path):
    """With the plant's own star tracker ([star_tracker] enabled), `fsil fsw` (fsil's flight
    software, which fuses it) over a link flies the very run the in-process engine flies:
    the histories agree cell for cell (but the wall-clock columns), the samples are in them,
    and the estimate differs from the same run without a star tracker."""
    cfg = load_scenario("terminal")
    cfg.run.max_sim_time_s = 8.0     # 400 cycles: acquisition 1 s, then 5 Hz samples
    cfg.star_tracker.enabled = True
    inproc = run_inprocess(cfg, 1, history="memory", plots=False).history.to_pandas()
    procs = []

    def launch(url: str) -> subprocess.Popen:
        procs.append(subprocess.Popen([sys.executable, "-m", "hil.cli", "fsw", "--link", url,
                                       "--quiet"], cwd=REPO))
        return procs[-1]

    out = tmp_path / "run"
    side = PlantSide(cfg, f"zmq+ipc://{tmp_path}/l.sock", out, 1, fsw_launcher=launch,
                     control=False, plots=False)
    try:
        result = side.run()
    finally:
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    assert result.summary["cycles"] == 400, result.summary.get("reason")
    linked = read_history(out / "history.csv")
    assert len(linked) == len(inproc) == 400
    wall = {"compute_us", "round_trip_us"}
    for name in inproc.columns:
        if name in wall:
            continue
        a, b = inproc[name].tolist(), linked[name].tolist()
        if inproc[name].dtype.kind in "fi":
            np.testing.assert_array_equal(np.asarray(a, float), np.asarray(b, float), name)
        else:    # text: an empty cell reads as NaN from CSV
            assert a == ["" if v != v else v for v in b], name
    valid = linked["att_valid"].fillna(0) == 1
    assert valid.sum() > 100 and linked["att_t_s"].isna().sum() < 30
    assert np.allclose(np.hypot.reduce(linked.loc[valid, ["att_qw", "att_qx", "att_qy",
                                                          "att_qz"]].to_numpy(), axis=1), 1.0)
    cfg.star_tracker.enabled = False
    without = run_inprocess(cfg, 1, history="memory", plots=False).history.to_pandas()
    assert without["att_t_s"].isna().all()
    assert not np.array_equal(without["nav_x_m"].to_numpy(), linked["nav_x_m"].to_numpy())


def test_the_hello_tells_the_star_tracker_only_when_fitted():
    from bridge.codec import encode
    from hil.engine.context import hello_rates
    cfg = load_scenario("terminal")
    for fitted in (False, True):
        cfg.star_tracker.enabled = fitted
        plant = LanderPlant(cfg)
        plant.reset(1)
        hello = decode(encode(protocol.HELLO, ["plant", cfg.name, hello_rates(cfg),
                                               plant.fsw_config()]))
        assert ("star_tracker_hz" in hello.rates) is fitted
        assert ("star_tracker" in hello.config) is fitted
        assert ("velocimeter_hz" in hello.rates) is cfg.velocimeter.enabled
    assert hello.rates["star_tracker_hz"] == hello.config["star_tracker"]["rate_hz"] == 5.0
    schema = {key: check for key, check, _ in protocol.CONFIG_SCHEMA}["star_tracker"]
    assert set(hello.config["star_tracker"]) == {key for key, _, _ in schema}
