"""Star tracker faults (plant/faults.py ``apply_star_tracker``, sensor ``star_tracker``):
each kind changes the samples as docs/faults.md says, from its onset, and a run with a
tracker but no tracker fault is what it was."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hil.scenario import ScenarioError, load_scenario, scenario_from_dict, scenario_to_dict
from plant.config import FaultConfig, StarTrackerConfig
from plant.faults import FaultSet, FaultSpecError, check_fault
from plant.lander import Command, LanderPlant
from plant.star_tracker import ARCSEC_RAD, StarTracker

N = 4000            # samples: a sigma to 1.1 %, a rate of 0.3 to 0.7 % (4 sigma bounds)
Q = (math.cos(0.3), math.sin(0.3) * 0.6, 0.0, math.sin(0.3) * 0.8)


def _qmul(a, b):
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw)


def _error_body(q_true, q_meas):
    w, x, y, z = q_true
    d = _qmul((w, -x, -y, -z), q_meas)
    k = 2.0 if d[0] >= 0 else -2.0
    return np.array([k * d[1], k * d[2], k * d[3]])


def _pair(*faults: dict, **tracker):
    cfg = StarTrackerConfig(enabled=True, acquisition_s=0.0, latency_s=0.0,
                            **{"boresight_body": [0.0, 1.0, 0.0], **tracker})
    st = StarTracker(cfg, np.random.default_rng(7))
    fs = FaultSet([FaultConfig(sensor="star_tracker", **f) for f in faults],
                  np.random.default_rng(11), 0.005, 0.0)
    fs.star_tracker_axes = st.axes
    return st, fs


def _fly(st, fs, n, q=Q, t0_us=0):
    """n samples; each returned as delivered long after (so latency does not hide it)."""
    out = []
    for i in range(n):
        t = t0_us + i * st.period_us
        fs.update_triggers(t)
        st.sample(t, q, (0.0, 0.0, 0.0), fs.apply_star_tracker)
        out.append(st.delivered(t + 10 ** 8))
    return out


def test_off_delivers_nothing_from_its_onset_and_blind_delivers_invalid_samples() -> None:
    st, fs = _pair({"kind": "off", "at_time_s": 2.0})
    s = _fly(st, fs, 20)               # 5 Hz: samples at 0.0 .. 3.8 s
    assert all(x[5] for x in s[:10])
    assert all(x == s[9] for x in s[10:])     # the last before the onset stays the latest
    st, fs = _pair({"kind": "blind", "at_time_s": 2.0, "until_time_s": 3.0})
    s = _fly(st, fs, 20)
    assert [x[5] for x in s] == [True] * 10 + [False] * 5 + [True] * 5
    assert all(x[1:5] == [1.0, 0.0, 0.0, 0.0] for x in s[10:15])
    assert [x[0] for x in s] == [i * st.period_us for i in range(20)]   # still sampled


def test_stuck_repeats_the_last_valid_attitude_flagged_valid_as_the_body_turns() -> None:
    st, fs = _pair({"kind": "stuck", "at_time_s": 1.0})
    out = []
    for i in range(15):
        t = i * st.period_us
        q = (math.cos(0.01 * i), 0.0, math.sin(0.01 * i), 0.0)   # turning about body y
        fs.update_triggers(t)
        st.sample(t, q, (0.0, 0.0, 0.0), fs.apply_star_tracker)
        out.append(st.delivered(t))
    held = out[4]
    assert all(x[5] and x[1:5] == held[1:5] for x in out[5:])
    assert out[6][0] > held[0]                       # new times, the old attitude
    assert len({tuple(x[1:5]) for x in out[:5]}) == 5


@pytest.mark.parametrize("axis, body", [(None, 2), (0, 2), (1, 0), (2, 1)])
def test_bias_turns_the_attitude_about_the_tracker_axis_it_names(axis, body) -> None:
    # Boresight body +y: tracker axes x_t = body z, y_t = body x, z_t (boresight) = body y.
    fault = {"kind": "bias", "value": 3600.0, "at_time_s": 0.0}
    if axis is not None:
        fault["axis"] = axis
    st, fs = _pair(fault, cross_sigma_arcsec=1.0, roll_sigma_arcsec=1.0)
    err = np.array([_error_body(Q, s[1:5]) for s in _fly(st, fs, 400)]) / ARCSEC_RAD
    mean = err.mean(axis=0)
    assert abs(mean[body] - 3600.0) < 4.0 / math.sqrt(400) + 1e-6, mean
    others = [i for i in range(3) if i != body]
    assert max(abs(mean[i]) for i in others) < 4.0 / math.sqrt(400), mean


def test_noise_adds_its_sigma_about_every_axis() -> None:
    st, fs = _pair({"kind": "noise", "value": 30.0, "at_time_s": 0.0},
                   cross_sigma_arcsec=5.0, roll_sigma_arcsec=40.0)
    err = np.array([_error_body(Q, s[1:5]) for s in _fly(st, fs, N)]) / ARCSEC_RAD
    sd = err.std(axis=0, ddof=1)
    bound = 4.0 / math.sqrt(2 * N)
    # body y is the boresight (roll 40"), body x and z across it (5"); each plus 30".
    for i, base in ((0, 5.0), (1, 40.0), (2, 5.0)):
        want = math.hypot(base, 30.0)
        assert abs(sd[i] / want - 1.0) < bound, (i, sd)


def test_dropout_invalidates_samples_at_its_rate() -> None:
    p = 0.3
    st, fs = _pair({"kind": "dropout", "value": p, "at_time_s": 0.0})
    s = _fly(st, fs, N)
    rate = sum(not x[5] for x in s) / N
    sigma = math.sqrt(p * (1 - p) / N)
    assert abs(rate - p) < 4 * sigma, rate        # half the rate (0.15) is 23 sigma away
    assert all(x[1:5] == [1.0, 0.0, 0.0, 0.0] for x in s if not x[5])


def test_latency_delays_delivery_by_its_value_on_top_of_the_units() -> None:
    cfg = StarTrackerConfig(enabled=True, acquisition_s=0.0, latency_s=0.1)
    st = StarTracker(cfg, np.random.default_rng(7))
    fs = FaultSet([FaultConfig(sensor="star_tracker", kind="latency", value=0.5,
                               at_time_s=1.0)], np.random.default_rng(11), 0.005, 0.0)
    fs.star_tracker_axes = st.axes
    arrival = {}
    for step in range(0, 3_000_000, 5000):       # a 200 Hz plant, samples at 5 Hz
        t = step
        fs.update_triggers(t)
        if t % st.period_us == 0:
            st.sample(t, Q, (0.0, 0.0, 0.0), fs.apply_star_tracker)
        d = st.delivered(t)
        if d is not None and d[0] not in arrival:
            arrival[d[0]] = t
    lag = {ts: arrival[ts] - ts for ts in arrival}
    assert lag[800_000] == 100_000 and lag[1_000_000] == 600_000


def test_the_fault_keys_are_checked_with_a_reason() -> None:
    with pytest.raises(FaultSpecError, match="needs value"):
        check_fault(FaultConfig(sensor="star_tracker", kind="bias"))
    with pytest.raises(FaultSpecError, match="axis is used by star_tracker bias only"):
        check_fault(FaultConfig(sensor="star_tracker", kind="noise", value=1.0, axis=1))
    with pytest.raises(FaultSpecError, match="must be 0 or 1"):
        check_fault(FaultConfig(sensor="star_tracker", kind="bias", value=1.0, axis=-1))
    with pytest.raises(FaultSpecError, match="channel is not used"):
        check_fault(FaultConfig(sensor="star_tracker", kind="off", channel="gyro"))
    with pytest.raises(FaultSpecError, match="not an star_tracker fault"):
        check_fault(FaultConfig(sensor="star_tracker", kind="spike", value=0.1))
    data = scenario_to_dict(load_scenario("nominal"))
    data["faults"] = [{"sensor": "star_tracker", "kind": "dropout", "value": 1.5}]
    with pytest.raises(ScenarioError, match="dropout"):
        scenario_from_dict(data)


def _plant(faults: list) -> LanderPlant:
    data = scenario_to_dict(load_scenario("nominal"))
    data["imu"]["preset"] = "mems"
    data["star_tracker"] = {"enabled": True}
    data["faults"] = faults
    return LanderPlant(scenario_from_dict(data))


def test_in_a_run_a_fault_acts_from_its_onset_and_leaves_the_rest_as_it_was() -> None:
    cmd = Command(0.6, (0.01, -0.02, 0.005))
    base, blind = _plant([]), _plant([{"sensor": "star_tracker", "kind": "blind",
                                       "at_time_s": 2.0}])
    fa, fb = base.reset(4), blind.reset(4)
    for _ in range(200):                                   # 4 s
        fa, fb = base.step(cmd), blind.step(cmd)
        assert (fa.imu, fa.alt, fa.vel) == (fb.imu, fb.alt, fb.vel)
        if fa.att is not None and fa.att[0] < 2_000_000:
            assert fa.att == fb.att
        elif fa.att is not None:
            assert fa.att[5] and not fb.att[5]
    assert base.state == blind.state
    assert blind.faults.label(blind.t_us) == "star_tracker:blind"
