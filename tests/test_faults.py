"""Sensor faults in the plant (plant/faults.py): each kind's effect on the sensor output, at
its trigger (time, altitude, range) and not before, ending at until_time_s; determinism;
scenario validation.

Method: the same scenario, seed and open-loop commands with and without the fault. The
commands do not depend on the sensors, so both runs fly the same trajectory and draw the
same sensor noise; every difference in the frames is the fault's doing.
"""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest

from hil.errors import ScenarioError
from hil.scenario import fault_from_dict, load_scenario, scenario_from_dict, scenario_to_dict
from plant.altimeter import LaserAltimeter
from plant.config import FaultConfig
from plant.faults import FaultSet, FaultSpecError, check_fault
from plant.imu import Imu
from plant.lander import Command, LanderPlant

US = 1_000_000
FRAME_US = 20_000          # terminal: 50 Hz frames
IMU_DT_S = 1 / 200         # 200 Hz IMU


# ---------------------------------------------------------------- helpers

def base_cfg(**alt):
    """The terminal scenario with the given [altimeter] overrides."""
    cfg = load_scenario("terminal")
    for k, v in alt.items():
        setattr(cfg.altimeter, k, v)
    return cfg


def quiet_cfg():
    """Noise-free sensors: ideal IMU, altimeter without noise or dropouts."""
    cfg = base_cfg(noise_m=0.0, noise_fraction=0.0, dropout_probability=0.0)
    cfg.imu.preset = "ideal"
    return cfg


def command(k: int) -> Command:
    # A fixed schedule: thrust, and a body-x torque pulse that makes the gyro see motion.
    return Command(0.5, (20.0 if 20 <= k < 120 else 0.0, 0.0, 0.0))


@dataclasses.dataclass
class Run:
    plant: LanderPlant
    frames: list
    imu: dict                 # t_us -> np.array(6)
    imu_per_frame: list       # samples per frame
    alt: dict                 # t_us -> (range_m, valid), every sample ever delivered
    first_seen_us: dict       # sample t_us -> frame t_us that first carried it
    alt_m: list               # true altitude at each frame's end


def fly(cfg, faults=(), frames=400, seed=3) -> Run:
    cfg = dataclasses.replace(cfg, faults=[FaultConfig(**f) for f in faults])
    plant = LanderPlant(cfg)
    frame = plant.reset(seed)
    run = Run(plant, [frame], {}, [], {}, {}, [plant.truth()["alt_m"]])
    for k in range(frames):
        frame = plant.step(command(k))
        run.frames.append(frame)
        run.imu_per_frame.append(len(frame.imu))
        for s in frame.imu:
            run.imu[s[0]] = np.array(s[1:])
        if frame.alt is not None:
            t, r, v = frame.alt
            run.alt[t] = (r, bool(v))
            run.first_seen_us.setdefault(t, frame.t_us)
        run.alt_m.append(plant.truth()["alt_m"])
        if plant.done:
            break
    return run


def split(d: dict, at_us: int, until_us: int | None = None):
    """Keys of ``d`` before, inside and after [at_us, until_us)."""
    keys = sorted(d)
    before = [t for t in keys if t < at_us]
    inside = [t for t in keys if t >= at_us and (until_us is None or t < until_us)]
    after = [] if until_us is None else [t for t in keys if t >= until_us]
    return before, inside, after


def summary_of(run: Run, i: int = 0) -> dict:
    return run.plant.faults.summary()[i]


@pytest.fixture(scope="module")
def quiet_base() -> Run:
    return fly(quiet_cfg())


@pytest.fixture(scope="module")
def noisy_base() -> Run:
    return fly(base_cfg())


ALT_WINDOW = dict(at_time_s=2.0, until_time_s=5.0)
AT, UNTIL = 2 * US, 5 * US


def same_outside(base: Run, run: Run, at_us: int, until_us: int) -> None:
    before, _, after = split(base.alt, at_us, until_us)
    assert before and after
    for t in before + after:
        assert run.alt[t] == base.alt[t], t


# ---------------------------------------------------------------- seeding and determinism

def test_fault_generator_leaves_the_three_sensor_streams_unchanged():
    """spawn(4)[0..2] == spawn(3): a run without faults draws exactly what it drew before."""
    cfg = base_cfg()
    plant = LanderPlant(cfg)
    plant.reset(11)
    old = np.random.SeedSequence(11).spawn(3)
    imu = Imu(cfg.imu, cfg.rates.imu_hz, np.random.default_rng(old[0]))
    np.testing.assert_array_equal(plant.imu.turn_on_bias, imu.turn_on_bias)
    np.testing.assert_array_equal(plant.imu.scale_error, imu.scale_error)
    alt = LaserAltimeter(cfg.altimeter, cfg.rates.altimeter_hz, np.random.default_rng(old[1]))
    alt._rng.standard_normal(), alt._rng.random()  # reset took one sample
    assert plant.altimeter._rng.bit_generator.state == alt._rng.bit_generator.state
    know = np.random.default_rng(old[2])
    k = cfg.knowledge
    np.testing.assert_array_equal(plant._know_err[0], know.standard_normal(3) * k.position_sigma_m)


def test_a_fault_that_never_fires_changes_nothing(noisy_base):
    run = fly(base_cfg(), [dict(sensor="altimeter", kind="noise", value=5.0, at_time_s=900.0),
                           dict(sensor="imu", kind="bias", value=1.0, channel="accel",
                                at_time_s=900.0)])
    assert [(f.t_us, f.imu, f.alt) for f in run.frames] == \
        [(f.t_us, f.imu, f.alt) for f in noisy_base.frames]
    assert summary_of(run)["fired_t_s"] is None


def test_random_faults_are_deterministic_per_seed():
    faults = [dict(sensor="altimeter", kind="noise", value=3.0),
              dict(sensor="altimeter", kind="dropout", value=0.3),
              dict(sensor="altimeter", kind="spike", value=0.2, magnitude=100.0)]
    a = fly(base_cfg(), faults, frames=200, seed=5)
    b = fly(base_cfg(), faults, frames=200, seed=5)
    c = fly(base_cfg(), faults, frames=200, seed=6)
    assert a.alt == b.alt
    assert a.alt != c.alt


# ---------------------------------------------------------------- altimeter kinds

def test_altimeter_bias(noisy_base):
    run = fly(base_cfg(), [dict(sensor="altimeter", kind="bias", value=250.0, **ALT_WINDOW)])
    same_outside(noisy_base, run, AT, UNTIL)
    _, inside, _ = split(noisy_base.alt, AT, UNTIL)
    assert len(inside) == 30
    for t in inside:
        r0, v0 = noisy_base.alt[t]
        assert v0 and run.alt[t] == (pytest.approx(r0 + 250.0, abs=1e-9), True)
    s = summary_of(run)
    assert s["fired_t_s"] == 2.0 and s["cleared_t_s"] == 5.0 and s["cleared_by"] == "until"
    assert s["fired_seq"] == 100 and s["source"] == "scenario"


def test_altimeter_scale_is_relative_to_the_true_range(quiet_base):
    run = fly(quiet_cfg(), [dict(sensor="altimeter", kind="scale", value=-0.25, **ALT_WINDOW)])
    same_outside(quiet_base, run, AT, UNTIL)
    for t in split(quiet_base.alt, AT, UNTIL)[1]:
        r_true = quiet_base.alt[t][0]   # noise-free: the delivered range is the true one
        assert run.alt[t][0] == pytest.approx(0.75 * r_true, rel=1e-12)


def test_altimeter_noise_adds_the_given_sigma(noisy_base):
    cfg = base_cfg()
    run = fly(cfg, [dict(sensor="altimeter", kind="noise", value=40.0, at_time_s=1.0)],
              frames=600)
    base = fly(cfg, frames=600)
    _, inside, _ = split(base.alt, 1 * US)
    extra = np.array([run.alt[t][0] - base.alt[t][0] for t in inside])
    assert len(extra) >= 100
    assert extra.std() > 10.0   # applied through the plant; its sigma: test_fault_statistics.py
    for t in split(base.alt, 1 * US)[0]:
        assert run.alt[t] == base.alt[t]


def test_altimeter_dropout(noisy_base):
    run = fly(base_cfg(), [dict(sensor="altimeter", kind="dropout", value=1.0, **ALT_WINDOW)])
    same_outside(noisy_base, run, AT, UNTIL)
    for t in split(noisy_base.alt, AT, UNTIL)[1]:
        assert run.alt[t] == (0.0, False)
    half = fly(base_cfg(), [dict(sensor="altimeter", kind="dropout", value=0.4)], frames=600)
    lost = np.mean([not v for _, v in half.alt.values()])
    assert 0.0 < lost < 1.0   # applied through the plant; the rate itself: test_fault_statistics.py


def test_altimeter_spike(noisy_base):
    run = fly(base_cfg(), [dict(sensor="altimeter", kind="spike", value=1.0, magnitude=-3000.0,
                                **ALT_WINDOW)])
    same_outside(noisy_base, run, AT, UNTIL)
    for t in split(noisy_base.alt, AT, UNTIL)[1]:
        # a short return 3 km closer: clamped at 0 m, still flagged valid
        assert run.alt[t] == (0.0, True)
    some = fly(base_cfg(), [dict(sensor="altimeter", kind="spike", value=0.25, magnitude=500.0)],
               frames=600)
    d = np.array([some.alt[t][0] - r for t, (r, _) in fly(base_cfg(), frames=600).alt.items()])
    spikes = np.isclose(d, 500.0)
    assert np.all(spikes | np.isclose(d, 0.0))
    assert 0.0 < spikes.mean() < 1.0   # the rate itself: test_fault_statistics.py


def test_altimeter_off_delivers_nothing_new(noisy_base):
    run = fly(base_cfg(), [dict(sensor="altimeter", kind="off", **ALT_WINDOW)])
    same_outside(noisy_base, run, AT, UNTIL)
    _, inside, _ = split(noisy_base.alt, AT, UNTIL)
    assert not set(inside) & set(run.alt)
    last_before = max(t for t in noisy_base.alt if t < AT)
    stale = [f for f in run.frames if AT + 30_000 <= f.t_us < UNTIL]
    assert stale and all(f.alt[0] == last_before for f in stale)


def test_altimeter_stuck_holds_the_last_valid_range(noisy_base):
    run = fly(base_cfg(), [dict(sensor="altimeter", kind="stuck", **ALT_WINDOW)])
    same_outside(noisy_base, run, AT, UNTIL)
    held = noisy_base.alt[max(t for t in noisy_base.alt if t < AT)]
    assert held[1]
    _, inside, _ = split(noisy_base.alt, AT, UNTIL)
    for t in inside:  # new time stamps, frozen value, flagged valid
        assert run.alt[t] == held
    assert len({noisy_base.alt[t][0] for t in inside}) == len(inside)


def test_altimeter_late_valid_only_below_the_range_after_acquisition(quiet_base):
    # The range at t = 3 s: above it every sample is invalid.
    t3 = 3 * US
    limit = quiet_base.alt[t3][0] + 1e-6
    run = fly(quiet_cfg(), [dict(sensor="altimeter", kind="late", value=limit)])
    acq_us = int(0.5 * US)
    for t, (r, valid) in sorted(run.alt.items()):
        r_true, v0 = quiet_base.alt[t]
        if t < t3:
            assert (r, valid) == (0.0, False), t
            assert r_true > limit or not v0     # (the model's own acquisition at the start)
        elif t < t3 + acq_us:
            assert (r, valid) == (0.0, False), t     # acquiring
        else:
            assert (r, valid) == (r_true, v0), t
    assert sum(1 for t in run.alt if t >= t3 + acq_us) >= 40


def test_altimeter_latency_delays_delivery(noisy_base):
    run = fly(base_cfg(), [dict(sensor="altimeter", kind="latency", value=0.3, **ALT_WINDOW)])
    for t in split(noisy_base.alt, AT, UNTIL)[1]:
        if t + 300_000 < UNTIL - 200_000:
            assert run.alt[t] == noisy_base.alt[t]          # same sample...
            delay = run.first_seen_us[t] - t                # ...delivered 0.3 s later
            assert 320_000 <= delay < 320_000 + FRAME_US
            assert noisy_base.first_seen_us[t] - t < 20_000 + FRAME_US
    before, _, after = split(noisy_base.alt, AT, UNTIL)
    for t in before + after[5:]:
        assert run.first_seen_us[t] == noisy_base.first_seen_us[t]


# ---------------------------------------------------------------- triggers

def test_below_altitude_trigger_fires_at_the_crossing_and_not_before(noisy_base):
    alt_m = np.array(noisy_base.alt_m)
    a = float(alt_m[0] - 150.0)
    k = int(np.argmax(alt_m < a))            # first frame that ends below a
    run = fly(base_cfg(), [dict(sensor="altimeter", kind="bias", value=100.0,
                                below_altitude_m=a)])
    s = summary_of(run)
    assert s["fired_seq"] == k
    assert (k - 1) * FRAME_US < s["fired_t_s"] * US <= k * FRAME_US
    fired_us = round(s["fired_t_s"] * US)
    for t, (r, v) in run.alt.items():
        r0, _ = noisy_base.alt[t]
        assert r == pytest.approx(r0 + (100.0 if t >= fired_us else 0.0), abs=1e-9)
    assert any(t >= fired_us for t in run.alt) and any(t < fired_us for t in run.alt)


def test_below_range_trigger_fires_at_the_first_sample_below(quiet_base):
    times = sorted(quiet_base.alt)
    t_cross = times[40]
    limit = quiet_base.alt[t_cross][0] + 1e-6          # sample 40 is the first below
    assert quiet_base.alt[times[39]][0] > limit
    run = fly(quiet_cfg(), [dict(sensor="altimeter", kind="bias", value=-20.0,
                                 below_range_m=limit, until_time_s=t_cross / US + 1.0)])
    for t in times:
        r0 = quiet_base.alt[t][0]
        inside = t_cross <= t < t_cross + US
        assert run.alt[t][0] == pytest.approx(r0 - 20.0 if inside else r0, abs=1e-9), t
    s = summary_of(run)
    assert s["fired_t_s"] == t_cross / US and s["cleared_t_s"] == t_cross / US + 1.0


def test_below_range_trigger_can_fire_an_imu_fault(quiet_base):
    times = sorted(quiet_base.alt)
    limit = quiet_base.alt[times[25]][0] + 1e-6
    run = fly(quiet_cfg(), [dict(sensor="imu", kind="off", below_range_m=limit)], frames=200)
    fired = summary_of(run)["fired_t_s"]
    assert fired == times[25] / US
    assert all(t <= times[25] for t in run.imu) and max(run.imu) > times[25] - FRAME_US


def test_until_before_firing_never_fires():
    run = fly(base_cfg(), [dict(sensor="altimeter", kind="off", below_altitude_m=10.0,
                                until_time_s=1.0)], frames=100)
    s = summary_of(run)
    assert s["fired_t_s"] is None and s["cleared_by"] == "until"
    assert not run.plant.faults


# ---------------------------------------------------------------- IMU kinds

IMU_AT, IMU_UNTIL = 1 * US, 2 * US
IMU_WINDOW = dict(at_time_s=1.0, until_time_s=2.0)


def imu_diff(base: Run, run: Run):
    """Per sample time: faulted minus base, split before / inside / after the window."""
    before, inside, after = split(base.imu, IMU_AT, IMU_UNTIL)
    for t in before + after:
        np.testing.assert_array_equal(run.imu[t], base.imu[t])
    assert len(inside) == 200
    return {t: run.imu[t] - base.imu[t] for t in inside}


def test_imu_accel_bias_on_one_axis(quiet_base):
    run = fly(quiet_cfg(), [dict(sensor="imu", kind="bias", value=0.8, channel="accel", axis=2,
                                 **IMU_WINDOW)])
    for d in imu_diff(quiet_base, run).values():
        np.testing.assert_allclose(d, [0, 0, 0.8 * IMU_DT_S, 0, 0, 0], atol=1e-15)


def test_imu_gyro_bias_on_all_axes(quiet_base):
    run = fly(quiet_cfg(), [dict(sensor="imu", kind="bias", value=-0.01, channel="gyro",
                                 **IMU_WINDOW)])
    for d in imu_diff(quiet_base, run).values():
        np.testing.assert_allclose(d, [0, 0, 0] + [-0.01 * IMU_DT_S] * 3, atol=1e-15)


def test_imu_scale(quiet_base):
    run = fly(quiet_cfg(), [dict(sensor="imu", kind="scale", value=0.1, channel="accel", axis=2,
                                 **IMU_WINDOW)])
    for t, d in imu_diff(quiet_base, run).items():
        true = quiet_base.imu[t]   # ideal IMU: the truth
        np.testing.assert_allclose(d, [0, 0, 0.1 * true[2], 0, 0, 0], atol=1e-15)
        assert true[2] > 0.005


def test_imu_saturation(quiet_base):
    run = fly(quiet_cfg(), [dict(sensor="imu", kind="saturation", value=1.0, channel="accel",
                                 **IMU_WINDOW)])
    imu_diff(quiet_base, run)
    for t in split(quiet_base.imu, IMU_AT, IMU_UNTIL)[1]:
        assert quiet_base.imu[t][2] > 1.5 * IMU_DT_S           # thrust over the limit
        assert run.imu[t][2] == pytest.approx(1.0 * IMU_DT_S, rel=1e-12)


def test_imu_stuck_axis_repeats_the_last_increment(quiet_base):
    run = fly(quiet_cfg(), [dict(sensor="imu", kind="stuck_axis", channel="gyro", axis=0,
                                 **IMU_WINDOW)])
    diffs = imu_diff(quiet_base, run)
    held = quiet_base.imu[IMU_AT - 5000][3]
    assert held != 0.0
    for t in diffs:
        assert run.imu[t][3] == held
        np.testing.assert_array_equal(np.delete(run.imu[t], 3), np.delete(quiet_base.imu[t], 3))
    # the body rate changes under the torque pulse: the real increments do not repeat
    assert len({quiet_base.imu[t][3] for t in diffs}) > 100


def test_imu_off_sends_no_samples(quiet_base):
    run = fly(quiet_cfg(), [dict(sensor="imu", kind="off", **IMU_WINDOW)])
    before, inside, after = split(quiet_base.imu, IMU_AT, IMU_UNTIL)
    assert set(run.imu) == set(before) | set(after)
    counts = dict(enumerate(run.imu_per_frame, start=1))   # frame seq -> IMU samples
    assert all(counts[k] == 4 for k in range(1, 50))
    assert counts[50] == 3                     # frame 50, (0.98, 1.0] s: loses t = 1.0
    assert all(counts[k] == 0 for k in range(51, 100))
    assert counts[100] == 1                    # (1.98, 2.0]: t = 2.0 is after until_time_s
    assert all(counts[k] == 4 for k in range(101, 120))


# ---------------------------------------------------------------- labels, clearing, runtime adds

def test_label_shows_the_faults_active_in_the_frame():
    plant = LanderPlant(dataclasses.replace(base_cfg(), faults=[
        FaultConfig(sensor="altimeter", kind="late", value=100.0),
        FaultConfig(sensor="imu", kind="bias", value=0.1, channel="accel", at_time_s=0.1,
                    until_time_s=0.2)]))
    plant.reset(1)
    labels = [plant.faults.label(plant.t_us)]
    for k in range(15):
        plant.step(command(k))
        labels.append(plant.faults.label(plant.t_us))
    assert labels[0] == labels[4] == "altimeter:late"
    assert labels[5] == labels[10] == "altimeter:late;imu:bias"   # fired at 0.1 s = frame 5
    assert labels[11] == "altimeter:late"                          # ended at 0.2 s


def test_add_and_clear_between_steps():
    plant = LanderPlant(base_cfg())
    plant.reset(1)
    for k in range(10):
        plant.step(command(k))
    f = plant.faults.add(FaultConfig(sensor="imu", kind="off", at_time_s=plant.t_us / US),
                         "inject", plant.t_us)
    frame = plant.step(command(10))
    assert frame.imu == [] and f.fired_seq == frame.seq == 11 and f.fired_t_us == 205_000
    cleared = plant.faults.clear(plant.t_us, "imu")
    assert cleared == [f] and f.ended_by == "clear"
    assert len(plant.step(command(11)).imu) == 4
    assert plant.faults.clear(plant.t_us, "imu") == []
    assert plant.faults.summary()[0]["source"] == "inject"


# ---------------------------------------------------------------- validation

def load(tmp_path, body: str):
    p = tmp_path / "s.toml"
    p.write_text(textwrap.dedent(body))
    return load_scenario(p)


def test_scenario_file_with_faults(tmp_path):
    cfg = load(tmp_path, """
        [[faults]]
        sensor = "altimeter"
        kind = "late"
        value = 900
        name = "M2 range finder"

        [[faults]]
        sensor = "imu"
        kind = "bias"
        channel = "gyro"
        axis = 1
        value = 1e-4
        below_altitude_m = 500
        until_time_s = 100
    """)
    assert [(f.sensor, f.kind) for f in cfg.faults] == [("altimeter", "late"), ("imu", "bias")]
    assert cfg.faults[0].value == 900.0 and cfg.faults[1].axis == 1
    again = scenario_from_dict(scenario_to_dict(cfg))
    assert again == cfg


@pytest.mark.parametrize("fault, key, words", [
    ({"sensor": "altimeter", "kind": "lat", "value": 1}, "kind", 'did you mean "late"'),
    ({"sensor": "altimeter", "kind": "saturation", "value": 1}, "kind",
     "is not an altimeter fault"),
    ({"sensor": "imu", "kind": "late", "value": 1}, "kind", "is not an imu fault"),
    ({"kind": "off"}, "sensor", "needs sensor (altimeter | imu | velocimeter | star_tracker)"),
    ({"sensor": "imu"}, "kind", "needs kind"),
    ({"sensor": "altimeter", "kind": "late"}, "value", "needs value (the range in m"),
    ({"sensor": "altimeter", "kind": "dropout", "value": 1.5}, "value", "must be >= 0 and <= 1"),
    ({"sensor": "altimeter", "kind": "noise", "value": -1}, "value", "must be > 0"),
    ({"sensor": "altimeter", "kind": "scale", "value": -1}, "value", "must be > -1"),
    ({"sensor": "altimeter", "kind": "off", "value": 3}, "value", "not used by"),
    ({"sensor": "altimeter", "kind": "spike", "value": 0.1}, "magnitude", "needs magnitude"),
    ({"sensor": "altimeter", "kind": "bias", "value": 1, "channel": "gyro"}, "channel",
     "only for imu"),
    ({"sensor": "imu", "kind": "bias", "value": 1}, "channel", "needs channel"),
    ({"sensor": "imu", "kind": "bias", "value": 1, "channel": "mag"}, "channel",
     "is not one of accel, gyro"),
    ({"sensor": "imu", "kind": "bias", "value": 1, "channel": "accel", "axis": 3}, "axis",
     "out of range"),
    ({"sensor": "imu", "kind": "off", "channel": "accel"}, "channel", "other than off"),
    ({"sensor": "altimeter", "kind": "off", "at_time_s": 5, "until_time_s": 5}, "until_time_s",
     "must be after at_time_s = 5"),
    ({"sensor": "altimeter", "kind": "latency", "value": 100}, "value", "<= 60"),
    ({"sensor": "altimeter", "kind": "off", "when": 3}, "when", 'unknown key "when"'),
    ({"sensor": "altimeter", "kind": "bias", "value": "big"}, "value", "expected a number"),
])
def test_scenario_fault_errors_name_the_entry_and_key(fault, key, words):
    ok = {"sensor": "altimeter", "kind": "off"}
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({"faults": [ok, fault]}, source="x.toml")
    e = info.value
    assert e.key == f"faults[1].{key}"
    assert str(e).startswith('scenario "x.toml": [[faults]] #2: ')
    assert words in str(e)
    with pytest.raises(ScenarioError) as info:   # the same rules for one fault alone
        fault_from_dict(fault, "inject")
    assert info.value.key == key and words in info.value.reason


def test_faults_must_be_tables():
    with pytest.raises(ScenarioError, match=r"expected a list of \[\[faults\]\] tables"):
        scenario_from_dict({"faults": {"sensor": "imu"}})


def test_check_fault_on_a_config_built_in_code():
    with pytest.raises(FaultSpecError) as info:
        check_fault(FaultConfig(sensor="imu", kind="saturation", channel="gyro"))
    assert info.value.key == "value"
    with pytest.raises(FaultSpecError):
        FaultSet([FaultConfig(sensor="altimeter", kind="bias")], np.random.default_rng(0),
                 0.005, 0.5)
    check_fault(FaultConfig(sensor="imu", kind="stuck_axis", channel="gyro", axis=-1))
