"""Doppler lidar velocimeter: beam geometry, sign, noise, validity, latency, faults, wiring."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pytest

from hil.errors import ScenarioError
from hil.scenario import load_scenario, scenario_from_dict, scenario_to_dict
from plant.config import FaultConfig, TerrainConfig, VelocimeterConfig
from plant.faults import FaultSet
from plant.lander import Command, LanderPlant
from plant.moon import MEAN_RADIUS_M, SiteFrame
from plant.terrain import Terrain
from plant.velocimeter import DopplerVelocimeter, ndl_beams

SITE = SiteFrame(0.0, 0.0)
FLAT = Terrain(TerrainConfig(), SITE)
LEVEL = np.column_stack((SITE.east, SITE.north, SITE.up))     # body x, y, z in MCI
US = 1_000_000


def quiet(**kw) -> VelocimeterConfig:
    base = dict(enabled=True, velocity_noise_mps=0.0, range_noise_m=0.0,
                range_noise_fraction=0.0, acquisition_s=0.0, latency_s=0.0)
    return VelocimeterConfig(**{**base, **kw})


def at(alt_m: float) -> np.ndarray:
    return SITE.up * (MEAN_RADIUS_M + alt_m)


def sphere_range(alt_m: float, d: np.ndarray) -> float:
    """Exact ray-sphere distance from altitude alt_m along d (MCI) to the mean sphere."""
    o = at(alt_m)
    b = float(o @ d)
    return -b - math.sqrt(b * b - (float(o @ o) - MEAN_RADIUS_M ** 2))


def take(vel: DopplerVelocimeter, t_us: int, alt_m: float, v: np.ndarray, **kw):
    vel.sample(t_us, at(alt_m), v, LEVEL, FLAT, **kw)
    return vel.delivered(t_us)


def test_line_of_sight_velocity_sign_and_ranges_recover_the_velocity() -> None:
    """v_los = -(v . d): negative while closing; three beams give back the velocity vector."""
    vel = DopplerVelocimeter(quiet(), np.random.default_rng(1))
    v = -25.0 * SITE.up + 40.0 * SITE.east - 3.0 * SITE.north    # descending, flying east
    s = take(vel, 0, 1500.0, v)
    d = LEVEL @ np.array(ndl_beams()).T                           # beam directions, MCI
    assert s[0] == 0 and s[7] == 0b111
    vlos = np.array(s[1:4])
    assert np.allclose(vlos, -(v @ d), rtol=0, atol=1e-12)
    assert vlos.mean() < 0                                         # closing on the ground
    for k in range(3):
        assert s[4 + k] == pytest.approx(sphere_range(1500.0, d[:, k]), abs=0.01)
        assert s[4 + k] == pytest.approx(1500.0 / math.cos(math.radians(22.5)), rel=1e-3)
    # The flight software's reconstruction: d^T v = -v_los.
    assert np.allclose(np.linalg.solve(d.T, -vlos), v, atol=1e-9)
    # Level flight: the ray ranges do not change, the Doppler still sees the motion.
    v_level = 40.0 * SITE.east
    s2 = take(vel, 100_000, 1500.0, v_level)
    assert s2[1] == pytest.approx(-40.0 * d[:, 0] @ SITE.east, abs=1e-12) and s2[1] < 0


def test_surface_relative_velocity_on_a_rotating_surface() -> None:
    omega = np.array([0.0, 0.0, 2.6617e-6])                       # Moon's sidereal rate

    def surface(p: np.ndarray) -> np.ndarray:
        return np.cross(omega, p)

    r = at(800.0)
    v = surface(r) - 5.0 * SITE.up      # co-rotating with the ground, descending 5 m/s
    vel = DopplerVelocimeter(quiet(), np.random.default_rng(1))
    vel.sample(0, r, v, LEVEL, FLAT, surface)
    s = vel.delivered(0)
    d = LEVEL @ np.array(ndl_beams()).T
    spots = [r + s[4 + k] * d[:, k] for k in range(3)]
    expect = [-float((v - surface(p)) @ d[:, k]) for k, p in enumerate(spots)]
    assert np.allclose(s[1:4], expect, atol=1e-9)
    assert np.allclose(s[1:4], -5.0 * math.cos(math.radians(22.5)), atol=1e-4)
    vel2 = DopplerVelocimeter(quiet(), np.random.default_rng(1))  # ignoring rotation: 4.6 m/s off
    vel2.sample(0, r, v, LEVEL, FLAT)
    assert np.max(np.abs(np.array(vel2.delivered(0)[1:4]) - expect)) > 1.0


def test_range_limits_acquisition_and_invalid_beams_carry_zeros() -> None:
    vel = DopplerVelocimeter(quiet(acquisition_s=0.3, max_range_m=6000.0),
                             np.random.default_rng(2))
    v = -10.0 * SITE.up
    far = take(vel, 0, 7000.0, v)                 # slant 7.6 km: out of range
    assert far[7] == 0 and far[1:7] == [0.0] * 6 and vel.last_true_range_m == [None] * 3
    masks = [take(vel, k * 100_000, 5000.0, v)[7] for k in range(1, 6)]
    assert masks == [0, 0, 0, 0b111, 0b111]       # in range at 0.1 s; valid from 0.4 s
    # One beam over a high cliff band? Simpler: tilt the vehicle so one beam looks long.
    th = math.radians(60.0)
    tilt = LEVEL @ np.array([[math.cos(th), 0, -math.sin(th)], [0, 1, 0],
                             [math.sin(th), 0, math.cos(th)]])
    vel.sample(600_000, at(3000.0), v, tilt, FLAT)
    s = vel.delivered(600_000)
    lost = [k for k in range(3) if not s[7] >> k & 1]
    assert lost and all(s[1 + k] == 0.0 and s[4 + k] == 0.0 for k in lost)


@pytest.mark.parametrize("range_m", [200.0, 4000.0])
def test_noise_per_beam(range_m: float) -> None:
    """4,000 samples x 3 beams: each sigma within 4 standard errors (about 3 %)."""
    cfg = VelocimeterConfig(enabled=True, acquisition_s=0.0, latency_s=0.0)
    vel = DopplerVelocimeter(cfg, np.random.default_rng(3))
    alt = range_m * math.cos(math.radians(22.5))
    v = -7.0 * SITE.up + 12.0 * SITE.east
    d = LEVEL @ np.array(ndl_beams()).T
    n = 4000
    s = np.array([take(vel, k * 100_000, alt, v)[1:8] for k in range(n)])
    assert np.all(s[:, 6] == 0b111)
    dv = s[:, 0:3] - (-(v @ d))
    truth = [sphere_range(alt, d[:, k]) for k in range(3)]
    dr = s[:, 3:6] - truth
    sig_r = math.hypot(cfg.range_noise_m, cfg.range_noise_fraction * range_m)
    se = 4.0 / math.sqrt(2 * n)
    for k in range(3):
        assert dv[:, k].std() == pytest.approx(cfg.velocity_noise_mps, rel=se)
        assert dr[:, k].std() == pytest.approx(sig_r, rel=se)
        assert abs(dv[:, k].mean()) < 4 * cfg.velocity_noise_mps / math.sqrt(n)
    assert abs(np.corrcoef(dv[:, 0], dv[:, 1])[0, 1]) < 4 / math.sqrt(n)


def test_dropout_per_beam_and_latency() -> None:
    p, n = 0.25, 4000
    vel = DopplerVelocimeter(quiet(dropout_probability=p), np.random.default_rng(5))
    masks = np.array([take(vel, k * 100_000, 1000.0, -SITE.up)[7] for k in range(n)])
    for k in range(3):
        lost = 1.0 - np.mean(masks >> k & 1)
        assert lost == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n))
    late = DopplerVelocimeter(quiet(latency_s=0.05), np.random.default_rng(5))
    late.sample(1_000_000, at(500.0), -SITE.up, LEVEL, FLAT)
    assert late.delivered(1_049_999) is None
    assert late.delivered(1_050_000)[0] == 1_000_000


def test_deterministic_from_the_seed() -> None:
    def seq(seed: int) -> list:
        vel = DopplerVelocimeter(VelocimeterConfig(enabled=True, dropout_probability=0.1),
                                 np.random.default_rng(seed))
        return [take(vel, k * 100_000, 3000.0 - 20.0 * k, -20.0 * SITE.up) for k in range(100)]

    assert seq(7) == seq(7) and seq(7) != seq(8)


# ---------------------------------------------------------------- faults

def faulted(*faults: FaultConfig, n: int = 30, seed: int = 9, sink_mps: float = 300.0):
    """The same samples with and without the faults (noise on, in range, acquired)."""
    out = []
    for fs in ((), faults):
        vel = DopplerVelocimeter(VelocimeterConfig(enabled=True, acquisition_s=0.0,
                                                   latency_s=0.0), np.random.default_rng(seed))
        fset = FaultSet(list(fs), np.random.default_rng(1), 0.005, 0.5, 0.3)
        rows = []
        for k in range(n):
            t = k * 100_000
            fset.begin_frame(k, t)
            vel.sample(t, at(2000.0 - sink_mps * t / US), -30.0 * SITE.up, LEVEL, FLAT, None,
                       fset.apply_velocimeter)
            rows.append(vel.delivered(t))
        out.append(rows)
    return out


def fault(kind: str, **kw) -> FaultConfig:
    return FaultConfig(sensor="velocimeter", kind=kind, **kw)


def test_additive_faults_on_a_channel_and_a_beam() -> None:
    clean, bad = faulted(fault("bias", value=0.5, beam=1, at_time_s=1.0))
    for a, b in zip(clean, bad):
        expect = 0.5 if a[0] >= US else 0.0
        assert b[2] - a[2] == pytest.approx(expect, abs=1e-12)
        assert b[1] == a[1] and b[3] == a[3] and b[4:] == a[4:]
    clean, bad = faulted(fault("scale", value=0.1, channel="range"))
    truth = [sphere_range(2000.0 - 30.0 * k, LEVEL @ np.array(ndl_beams()[0])) for k in range(30)]
    assert all(b[4] - a[4] == pytest.approx(0.1 * t, rel=1e-9)
               for a, b, t in zip(clean, bad, truth))
    clean, bad = faulted(fault("noise", value=2.0), n=400, sink_mps=0.0)
    extra = np.array([np.subtract(b[1:4], a[1:4]) for a, b in zip(clean, bad)])
    assert extra.std() == pytest.approx(2.0, rel=4 / math.sqrt(2 * extra.size))


def test_unflagged_keeps_good_data_without_the_valid_flag() -> None:
    """IM-1: the velocimeter worked, its data arrived without the 'data valid' flag."""
    clean, bad = faulted(fault("unflagged"))
    assert all(a[7] == 0b111 for a in clean)
    assert all(b[7] == 0 and b[1:7] == a[1:7] for a, b in zip(clean, bad))
    clean, bad = faulted(fault("unflagged", beam=2))
    assert all(b[7] == 0b011 and b[1:7] == a[1:7] for a, b in zip(clean, bad))


def test_stuck_dropout_late_latency_off() -> None:
    clean, bad = faulted(fault("stuck", at_time_s=1.0))
    frozen = clean[9]
    assert all(b == a for a, b in zip(clean[:10], bad[:10]))
    assert all(b[1:] == frozen[1:] and b[0] == a[0] for a, b in zip(clean[10:], bad[10:]))
    _, bad = faulted(fault("dropout", value=1.0, beam=0))
    assert all(b[7] == 0b110 and b[1] == 0.0 and b[4] == 0.0 for b in bad)
    _, bad = faulted(fault("late", value=1500.0))        # beam range below 1.5 km, 0.3 s
    alts = [2000.0 - 30.0 * k for k in range(30)]
    first = next(k for k, a in enumerate(alts) if a / math.cos(math.radians(22.5)) < 1500.0)
    assert [b[7] for b in bad] == [0] * (first + 3) + [0b111] * (30 - first - 3)
    _, bad = faulted(fault("latency", value=0.25))
    assert bad[10][0] == 700_000                          # 1.0 s now carries the 0.7 s sample
    _, bad = faulted(fault("off", at_time_s=1.0))
    assert all(b[0] == 900_000 for b in bad[10:])         # the last one before, repeated


def test_fault_checks() -> None:
    from plant.faults import FaultSpecError, check_fault
    for f, key in ((fault("bias", value=1.0, channel="accel"), "channel"),
                   (fault("off", beam=1), "beam"),
                   (fault("unflagged", value=1.0), "value"),
                   (fault("stuck", axis=1), "axis"),
                   (FaultConfig(sensor="altimeter", kind="off", beam=0), "beam")):
        with pytest.raises(FaultSpecError) as err:
            check_fault(f)
        assert err.value.key == key


# ---------------------------------------------------------------- scenario and plant

def test_scenario_table_and_checks() -> None:
    assert load_scenario("terminal").velocimeter.enabled
    assert load_scenario("nominal").velocimeter.enabled
    assert not load_scenario("m1-crater-rim").velocimeter.enabled
    assert not load_scenario("m2-late-lrf").velocimeter.enabled
    im1 = load_scenario("im1-no-lrf")
    assert im1.velocimeter.enabled and any(
        f.sensor == "velocimeter" and f.kind == "unflagged" for f in im1.faults)
    d = scenario_to_dict(load_scenario("terminal"))
    d["velocimeter"]["beams_body"] = [[0, 0, -1], [0, 0.1, -1], [0, 0.2, -1]]
    with pytest.raises(ScenarioError, match=r"\[velocimeter\] beams_body = .* one plane"):
        scenario_from_dict(d)
    d["velocimeter"]["beams_body"] = [[0, 0, -1], [0, 1, 0]]
    with pytest.raises(ScenarioError, match="expected 3"):
        scenario_from_dict(d)


def test_plant_frames_carry_the_sample_and_hello_describes_the_unit() -> None:
    cfg = load_scenario("terminal")
    plant = LanderPlant(cfg)
    frame = plant.reset(seed=3)
    hello = plant.fsw_config()["velocimeter"]
    assert np.allclose(hello["beams_body"], ndl_beams(), atol=1e-6)
    assert hello["velocity_noise_mps"] == cfg.velocimeter.velocity_noise_mps
    seen = []
    for _ in range(100):
        frame = plant.step(Command(0.6, (0.0, 0.0, 0.0)))
        if frame.vel is not None and (not seen or frame.vel[0] != seen[-1][0]):
            seen.append(frame.vel)
    assert len(seen) >= 18 and all(len(s) == 8 and isinstance(s[7], int) for s in seen)
    assert seen[-1][7] == 0b111 and all(s[1] < 0 for s in seen[-5:])    # descending
    off = dataclasses.replace(cfg, velocimeter=VelocimeterConfig(enabled=False))
    plant = LanderPlant(off)
    assert plant.reset(seed=3).vel is None and "velocimeter" not in plant.fsw_config()


def test_inject_over_the_control_channel(tmp_path) -> None:
    """`fsil inject RUN velocimeter unflagged --beam 1`'s request, through the real control
    socket to a plant stepped in this process: the next frames carry beam 1 unflagged."""
    import threading

    from hil.control import ControlServer, FaultControl, send_request
    plant = LanderPlant(load_scenario("terminal"))
    plant.reset(seed=4)
    control = FaultControl(ControlServer(tmp_path))
    replies: list = []
    try:
        for _ in range(60):                                   # beams acquired
            frame = plant.step(Command(0.6, (0.0, 0.0, 0.0)))
        assert frame.vel[7] == 0b111
        asker = threading.Thread(target=lambda: replies.append(send_request(
            tmp_path, {"sensor": "velocimeter", "kind": "unflagged", "beam": 1})))
        asker.start()
        # Step until the request is served, bounded by wall time, not by a number of steps:
        # on a loaded machine the asking thread can start after 500 fast steps (it did).
        deadline = time.monotonic() + 20.0
        while not replies and asker.is_alive() and time.monotonic() < deadline:
            control.before_step(plant)
            frame = plant.step(Command(0.6, (0.0, 0.0, 0.0)))
            control.after_step(plant, frame)
            time.sleep(0.001)
        asker.join(5)
        assert replies and replies[0]["ok"] and replies[0]["label"] == "velocimeter:unflagged"
        for _ in range(10):
            frame = plant.step(Command(0.6, (0.0, 0.0, 0.0)))
        assert frame.vel[7] == 0b101 and frame.vel[2] != 0.0 and frame.vel[5] > 0.0
        assert plant.faults.summary()[-1]["params"] == {"beam": 1}
    finally:
        control.close()


def test_history_columns_carry_the_delivered_sample() -> None:
    from hil.engine.recorder import vel_cells as _vel_cells
    from hil.engine.schema import HISTORY_COLUMNS
    names = ["vel_t_s", "vel_los0_mps", "vel_los1_mps", "vel_los2_mps", "vel_range0_m",
             "vel_range1_m", "vel_range2_m", "vel_valid_mask"]
    i = HISTORY_COLUMNS.index("vel_t_s")
    assert HISTORY_COLUMNS[i:i + 8] == names
    assert list(_vel_cells([1_250_000, -1.5, -2.0, -2.5, 10.0, 11.0, 12.0, 5])) == \
        [1.25, -1.5, -2.0, -2.5, 10.0, 11.0, 12.0, 5]
    assert list(_vel_cells(None)) == [None] * 8
