"""LanderPlant: determinism, frame contents, IMU truth, touchdown outcomes, command limits.

Expected values come from physics computed here (energy, the rocket equation, a first-order
lag), never from a recorded run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hil.scenario import load_scenario, scenario_from_dict
from plant.lander import Command, LanderPlant, PlantError
from plant.moon import G0_MPS2, GM_M3PS2, MEAN_RADIUS_M

US = 1_000_000


def low_start(altitude_m: float = 20.0, vertical_speed_mps: float = 0.0, pitch_deg: float = 0.0,
              **tables) -> LanderPlant:
    """A plant over flat ground at the target, at rest horizontally, engine off, ideal IMU,
    on a Moon that does not rotate (the closed forms here; tests/test_moon_rotation.py has
    the rotating ones: a fall there picks up ~1e-4 m/s of Coriolis drift), without landing
    gear: the run ends at first contact, judged by [touchdown] (tests/test_gear.py has the
    legs)."""
    data = {
        "name": "low",
        "moon": {"rotation_rad_s": 0.0},
        "gear": {"enabled": False},
        "initial": {"altitude_m": altitude_m, "downrange_m": 0.0, "crossrange_m": 0.0,
                    "horizontal_speed_mps": 0.0, "vertical_speed_mps": vertical_speed_mps,
                    "pitch_deg": pitch_deg, "coast_s": 0.0},
        "imu": {"preset": "ideal"},
        "knowledge": {"position_sigma_m": 0.0, "velocity_sigma_mps": 0.0,
                      "attitude_sigma_deg": 0.0},
    }
    for key, value in tables.items():
        data.setdefault(key, {}).update(value)
    return LanderPlant(scenario_from_dict(data))


def frame_dt_s(plant: LanderPlant) -> float:
    return 1.0 / plant.cfg.rates.frame_hz


def physics_dt_s(plant: LanderPlant) -> float:
    return plant.dt_us * 1e-6


# --------------------------------------------------------------------------- determinism

def command_sequence(n: int) -> list[Command]:
    """Open-loop commands that exercise the engine and all three torque axes."""
    out = []
    for k in range(n):
        thr = 0.0 if k < 10 else 0.55 + 0.4 * math.sin(0.07 * k)
        out.append(Command(thr, (60.0 * math.sin(0.05 * k), -40.0 * math.cos(0.03 * k),
                                 10.0 * math.sin(0.11 * k))))
    return out


def record(seed: int, commands: list[Command], plant: LanderPlant | None = None):
    plant = plant or LanderPlant(load_scenario("terminal"))
    f0 = plant.reset(seed)
    nav_init = plant.fsw_config()["nav_init"]
    frames, truths = [f0], []
    for c in commands:
        frames.append(plant.step(c))
        truths.append(plant.truth())
    return frames, truths, nav_init


def assert_truth_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), k


def test_same_seed_same_commands_give_bit_identical_runs() -> None:
    cmds = command_sequence(250)                        # 5 s: altimeter acquired and valid
    f1, t1, n1 = record(11, cmds)
    f2, t2, n2 = record(11, cmds)
    assert n1 == n2
    assert len(f1) == len(f2) == 251
    for a, b in zip(f1, f2):
        assert (a.seq, a.t_us) == (b.seq, b.t_us)
        assert a.imu == b.imu                            # every float, exactly
        assert a.alt == b.alt
    for a, b in zip(t1, t2):
        assert_truth_equal(a, b)
    # The runs are not trivially empty: valid ranges and non-zero IMU readings.
    assert any(f.alt is not None and f.alt[2] for f in f1)
    assert any(s[3] != 0.0 for f in f1 for s in f.imu)


def test_reset_replays_the_run() -> None:
    cmds = command_sequence(60)
    plant = LanderPlant(load_scenario("terminal"))
    f1, t1, n1 = record(5, cmds, plant)
    f2, t2, n2 = record(5, cmds, plant)                 # same object, reset again
    assert n1 == n2
    def contents(frames):
        return [(f.seq, f.t_us, f.imu, f.alt) for f in frames]

    assert contents(f1) == contents(f2)
    for a, b in zip(t1, t2):
        assert_truth_equal(a, b)


def test_different_seed_changes_noise_not_physics() -> None:
    cmds = command_sequence(250)
    f1, t1, n1 = record(11, cmds)
    f2, t2, n2 = record(12, cmds)
    # Sensor noise (tactical IMU, altimeter) and the knowledge error differ ...
    imu1 = [s[1:] for f in f1 for s in f.imu]
    imu2 = [s[1:] for f in f2 for s in f.imu]
    assert len(imu1) == len(imu2)
    assert sum(a != b for a, b in zip(imu1, imu2)) > 0.9 * len(imu1)
    alt1 = [f.alt[1] for f in f1 if f.alt is not None and f.alt[2]]
    alt2 = [f.alt[1] for f in f2 if f.alt is not None and f.alt[2]]
    assert alt1 and alt1 != alt2
    assert n1["r_m"] != n2["r_m"] and n1["v_mps"] != n2["v_mps"] and n1["q"] != n2["q"]
    # ... but the seed never enters the physics: same commands, same true trajectory.
    for a, b in zip(t1, t2):
        assert_truth_equal(a, b)


# --------------------------------------------------------------------------- frames

def test_frame_timing_and_contents() -> None:
    cfg = load_scenario("terminal")
    r = cfg.rates
    per_frame = round(r.imu_hz / r.frame_hz)
    imu_period_us = round(US / r.imu_hz)
    frame_period_us = round(US / r.frame_hz)
    alt_period_us = round(US / r.altimeter_hz)
    latency_us = round(cfg.altimeter.latency_s * US)
    plant = LanderPlant(cfg)
    f = plant.reset(3)
    assert (f.seq, f.t_us, f.imu) == (0, 0, [])
    last_sample_t = 0
    valid_seen = 0
    for k, c in enumerate(command_sequence(150), start=1):
        f = plant.step(c)
        assert f.seq == k
        assert isinstance(f.t_us, int) and f.t_us == k * frame_period_us
        assert len(f.imu) == per_frame
        times = [s[0] for s in f.imu]
        assert all(isinstance(t, int) for t in times)
        assert times[0] > last_sample_t
        assert all(b - a == imu_period_us for a, b in zip([last_sample_t] + times, times))
        assert times[-1] == f.t_us                        # the frame ends with its last sample
        assert all(len(s) == 7 for s in f.imu)
        last_sample_t = times[-1]
        if f.alt is not None:
            t_alt, rng_m, valid = f.alt
            assert isinstance(t_alt, int) and t_alt <= f.t_us
            assert t_alt % alt_period_us == 0
            # The newest sample delivered: taken at most one period plus the latency ago.
            assert f.t_us - t_alt <= alt_period_us + latency_us
            if valid:
                valid_seen += 1
                assert rng_m > 0.0
    assert valid_seen > 0


# --------------------------------------------------------------------------- IMU truth

def test_ideal_imu_reads_nothing_in_free_fall_and_thrust_over_mass_when_burning() -> None:
    plant = low_start(altitude_m=2000.0, imu={"preset": "ideal"})
    plant.reset(1)
    n_1s = round(plant.cfg.rates.frame_hz)
    torque_x = 100.0
    # 1 s engine-off coast with a torque about body x: no specific force, a known rotation.
    dv, dth = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
    for _ in range(n_1s):
        f = plant.step(Command(0.0, (torque_x, 0.0, 0.0)))
        for s in f.imu:
            assert s[1] == 0.0 and s[2] == 0.0 and s[3] == 0.0
            for i in range(3):
                dth[i] += s[4 + i]
    ixx = plant.cfg.vehicle.inertia_kgm2[0]
    assert dth[0] == pytest.approx(0.5 * torque_x / ixx * 1.0 ** 2, rel=1e-9)
    assert dth[1] == 0.0 and dth[2] == 0.0

    # 1 s at throttle x from engine off: sum dv_z = integral of T/m.
    x = 0.6
    v = plant.cfg.vehicle
    ve = v.isp_s * G0_MPS2
    tau = v.throttle_time_constant_s
    m0 = plant.truth()["mass_kg"]
    dvx = dvy = dvz = 0.0
    for _ in range(n_1s):
        f = plant.step(Command(x, (0.0, 0.0, 0.0)))
        for s in f.imu:
            dvx += s[1]
            dvy += s[2]
            dvz += s[3]
    m1 = plant.truth()["mass_kg"]
    assert dvx == 0.0 and dvy == 0.0
    # The only specific force is thrust and mdot = -T / ve: the identity ve ln(m0/m1).
    assert dvz == pytest.approx(ve * math.log(m0 / m1), rel=1e-9)

    # Independently: the lagged throttle x (1 - e^{-t/tau}) and the mass it burns, by Simpson.
    def mass(t):
        return m0 - v.max_thrust_n * x / ve * (t - tau * (1.0 - math.exp(-t / tau)))

    def accel(t):
        return v.max_thrust_n * x * (1.0 - math.exp(-t / tau)) / mass(t)

    n = 2000
    h = 1.0 / n
    integral = h / 3.0 * sum((1 if i in (0, n) else 4 if i % 2 else 2) * accel(i * h)
                             for i in range(n + 1))
    assert dvz == pytest.approx(integral, rel=1e-6)
    assert m1 == pytest.approx(mass(1.0), rel=1e-9)


# --------------------------------------------------------------------------- touchdown

def run_until_done(plant: LanderPlant, policy, max_frames: int = 100_000):
    plant.reset(1)
    return run_until_done_from_here(plant, policy, max_frames)


def run_until_done_from_here(plant: LanderPlant, policy, max_frames: int = 100_000):
    for _ in range(max_frames):
        plant.step(policy(plant))
        if plant.done:
            return plant.outcome
    raise AssertionError("the run did not end")


def local_g(plant: LanderPlant) -> float:
    return GM_M3PS2 / float(np.linalg.norm(plant.truth()["r_m"])) ** 2


def test_engine_off_from_20_m_crashes_at_the_free_fall_speed() -> None:
    h, v0 = 20.0, -3.0
    plant = low_start(altitude_m=h, vertical_speed_mps=v0)
    out = run_until_done(plant, lambda p: Command(0.0))
    assert out.outcome == "crashed"
    assert "vertical speed" in out.reason
    assert "tilt" not in out.reason and "horizontal" not in out.reason
    r0, r1 = MEAN_RADIUS_M + h, MEAN_RADIUS_M
    v_ground = math.sqrt(v0 * v0 + 2.0 * GM_M3PS2 * (1.0 / r1 - 1.0 / r0))   # energy
    g = GM_M3PS2 / r1 ** 2
    # Contact is detected at the first physics step at or below the ground.
    vz = out.touchdown["vertical_speed_mps"]
    assert v_ground - 1e-9 <= vz <= v_ground + g * physics_dt_s(plant) + 1e-9, (vz, v_ground)
    t_fall = (v0 + math.sqrt(v0 * v0 + 2.0 * g * h)) / g
    assert abs(plant.t_us * 1e-6 - t_fall) <= physics_dt_s(plant) + 1e-3
    assert out.touchdown["horizontal_speed_mps"] < 1e-6
    assert out.touchdown["tilt_deg"] < 1e-6
    assert out.touchdown["distance_to_target_m"] < 1e-3
    with pytest.raises(PlantError):
        plant.step(Command())


def descent_policy(hover_s: float, rate_mps: float, pitch_deg: float = 0.0):
    """Hover for hover_s, then descend at rate_mps: throttle from the true state (P on vz)."""
    def policy(p: LanderPlant) -> Command:
        t = p.truth()
        vz_des = 0.0 if p.t_us < hover_s * US else -rate_mps
        a_up = local_g(p) + 1.5 * (vz_des - t["vert_speed_mps"])
        thrust = t["mass_kg"] * a_up / math.cos(math.radians(pitch_deg))
        return Command(max(thrust / p.cfg.vehicle.max_thrust_n, 1e-3))
    return policy


def test_hover_then_gentle_descent_lands() -> None:
    plant = low_start(altitude_m=20.0)
    plant.reset(1)
    policy = descent_policy(hover_s=3.0, rate_mps=1.0)
    for _ in range(150):                                 # 3 s of hover
        plant.step(policy(plant))
    # The engine starts from off through its 0.1 s lag: ~g tau = 0.16 m/s of sink before the
    # speed loop (1/1.5 s) catches it, i.e. ~0.1 m of height lost, never regained.
    assert abs(plant.truth()["alt_m"] - 20.0) < 0.3
    assert abs(plant.truth()["vert_speed_mps"]) < 0.01
    out = run_until_done_from_here(plant, policy)
    assert out.outcome == "landed", out.reason
    td = out.touchdown
    assert abs(td["vertical_speed_mps"] - 1.0) < 0.05
    assert td["horizontal_speed_mps"] < 1e-6 and td["tilt_deg"] < 1e-6
    assert td["angular_rate_dps"] == 0.0
    assert td["distance_to_target_m"] < 1e-3
    # ~3 s hover + 20 m at ~1 m/s (plus the spin-up to 1 m/s)
    assert 22.0 < plant.t_us * 1e-6 < 26.0


@pytest.mark.parametrize("pitch_deg, outcome", [(0.0, "landed"), (10.0, "crashed")])
def test_tilt_at_touchdown(pitch_deg: float, outcome: str) -> None:
    # Engine off from 1 m: hits at sqrt(2 g 1 m) = 1.8 m/s < 2 m/s, no horizontal speed,
    # no rotation; only the attitude differs.
    plant = low_start(altitude_m=1.0, pitch_deg=pitch_deg)
    out = run_until_done(plant, lambda p: Command(0.0))
    assert out.outcome == outcome, out.reason
    td = out.touchdown
    assert td["vertical_speed_mps"] == pytest.approx(math.sqrt(2 * GM_M3PS2 / MEAN_RADIUS_M ** 2),
                                                     abs=0.02)
    assert td["tilt_deg"] == pytest.approx(pitch_deg, abs=1e-9)
    if outcome == "crashed":
        assert out.reason.startswith("tilt 10.00 deg > 5 deg")
        assert "vertical" not in out.reason and "horizontal" not in out.reason


def test_tilted_powered_descent_crashes_naming_tilt() -> None:
    plant = low_start(altitude_m=20.0, pitch_deg=10.0)
    out = run_until_done(plant, descent_policy(hover_s=0.0, rate_mps=1.0, pitch_deg=10.0))
    assert out.outcome == "crashed"
    assert "tilt" in out.reason
    assert "vertical speed" not in out.reason            # the descent itself was gentle
    # Tilt is measured from the local vertical where it lands: the lean drifted the vehicle
    # sideways, and the vertical turned by (drift / radius) on the way.
    drift_deg = math.degrees(out.touchdown["distance_to_target_m"] / MEAN_RADIUS_M)
    assert out.touchdown["distance_to_target_m"] > 1.0
    assert abs(out.touchdown["tilt_deg"] - 10.0) <= drift_deg + 1e-6


def test_one_kg_of_propellant_runs_out() -> None:
    plant = low_start(altitude_m=20.0, vehicle={"propellant_kg": 1.0})
    v = plant.cfg.vehicle
    ve = v.isp_s * G0_MPS2
    tau = v.throttle_time_constant_s
    # Burn-out time at full throttle through the lag: (T/ve)(t - tau (1 - e^{-t/tau})) = 1 kg.
    t = 1.0
    for _ in range(50):                                  # Newton
        f = v.max_thrust_n / ve * (t - tau * (1.0 - math.exp(-t / tau))) - 1.0
        df = v.max_thrust_n / ve * (1.0 - math.exp(-t / tau))
        t -= f / df
    out = run_until_done(plant, lambda p: Command(1.0))
    assert out.outcome == "out_of_propellant", out.reason
    assert abs(plant.propellant_out_t_us * 1e-6 - t) <= physics_dt_s(plant) + 1e-9
    assert f"propellant ran out at t={t:.1f} s" in out.reason
    assert plant.truth()["propellant_kg"] == 0.0
    # Fell from above 20 m after the short climb: a hard hit.
    assert out.touchdown["vertical_speed_mps"] > 5.0


def test_timeout_with_a_hover() -> None:
    # No throttle lag: the per-frame weight-matching throttle holds the height exactly.
    plant = low_start(altitude_m=20.0, run={"max_sim_time_s": 1.0},
                      vehicle={"throttle_time_constant_s": 0.0})
    out = run_until_done(plant, descent_policy(hover_s=100.0, rate_mps=0.0))
    assert out.outcome == "timeout"
    assert plant.t_us == 1 * US
    assert abs(plant.truth()["alt_m"] - 20.0) < 0.001
    assert out.touchdown == {}
    with pytest.raises(PlantError):
        plant.step(Command())


# --------------------------------------------------------------------------- command limits

@pytest.mark.parametrize("demand, applied", [
    (0.0, 0.0), (-0.5, 0.0), (float("nan"), 0.0),
    (0.03, 0.1), (0.1, 0.1), (0.42, 0.42), (1.0, 1.0), (1.7, 1.0),
])
def test_throttle_limits(demand: float, applied: float) -> None:
    # min_throttle 0.1 (default); no lag, so the engine state shows the applied throttle.
    plant = low_start(altitude_m=100.0, vehicle={"throttle_time_constant_s": 0.0})
    plant.reset(1)
    m0 = plant.truth()["mass_kg"]
    plant.step(Command(demand))
    assert plant.command.throttle == applied
    assert plant.truth()["throttle"] == applied
    v = plant.cfg.vehicle
    burned = v.max_thrust_n * applied / (v.isp_s * G0_MPS2) * frame_dt_s(plant)
    assert m0 - plant.truth()["mass_kg"] == pytest.approx(burned, rel=1e-9, abs=1e-12)


def test_torque_is_clipped_per_axis() -> None:
    plant = low_start(altitude_m=100.0)
    plant.reset(1)
    lim = plant.cfg.vehicle.max_torque_nm
    inertia = plant.cfg.vehicle.inertia_kgm2
    plant.step(Command(0.0, (1e4, -1e4, 50.0)))
    assert plant.command.torque_nm == (lim[0], -lim[1], 50.0)
    dt = frame_dt_s(plant)
    w = plant.state[10:13]
    expected = (lim[0] / inertia[0] * dt, -lim[1] / inertia[1] * dt, 50.0 / inertia[2] * dt)
    # Euler's coupling terms are second order in these small rates (~1e-7 relative).
    for a, b in zip(w, expected):
        assert a == pytest.approx(b, rel=1e-5)
    plant.step(Command(0.0, (float("nan"), 0.0, -1e9)))
    assert plant.command.torque_nm == (0.0, 0.0, -lim[2])


# --------------------------------------------------------------------------- sample rates

@pytest.mark.parametrize("altimeter_hz", [7.0, 10.0, 20.0, 30.0, 40.0, 150.0])
def test_altimeter_keeps_its_configured_rate(altimeter_hz: float) -> None:
    # Sampled at the first physics step at or after each due time, the due times 1/rate
    # apart from t = 0: over 10 s, 10 * rate + 1 samples (exactly, when the period is a
    # whole number of physics steps), whatever the physics step. (Until commit 700c152 the
    # next due time counted from the late sample: 30 Hz gave 28.6 Hz, 150 Hz gave 100 Hz.)
    plant = low_start(altitude_m=5000.0, rates={"altimeter_hz": altimeter_hz})
    plant.reset(1)
    seconds = 10
    for _ in range(round(seconds * plant.cfg.rates.frame_hz)):
        plant.step(Command(0.0))
    expected = seconds * altimeter_hz + 1
    period_us = US / altimeter_hz
    if period_us % plant.dt_us == 0:
        assert plant.altimeter.samples == expected
    else:
        assert abs(plant.altimeter.samples - expected) <= 1


def test_knowledge_error_drawn_once_per_run():
    """A re-handshake gets the same state-vector error, not a new draw."""
    from hil.scenario import load_scenario
    from plant.lander import LanderPlant
    p = LanderPlant(load_scenario("terminal"))
    p.reset(5)
    a, b = p.fsw_config()["nav_init"], p.fsw_config()["nav_init"]
    assert a == b
    assert a["r_m"] != list(p.state[0:3])  # but there is an error
