"""The star tracker (plant/star_tracker.py) and its fusion in the flight software
(fsw/nav.py ``fuse_star_tracker``): the samples scatter, lock and arrive as configured,
runs without one are unchanged, and a MEMS unit's gyro bias is learnt from it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fsw.core import FlightSoftware
from fsw.frame import Frame
from hil.scenario import load_scenario, scenario_from_dict, scenario_to_dict
from plant.config import StarTrackerConfig
from plant.lander import Command, LanderPlant
from plant.star_tracker import ARCSEC_RAD, StarTracker

N = 4000            # samples: a sigma is estimated to 1.1 % (4 sigma: 4.5 %)


def _qmul(a, b):
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw)


def _error_body(q_true, q_meas):
    """Rotation vector (rad, body axes) taking q_true to q_meas."""
    w, x, y, z = q_true
    d = _qmul((w, -x, -y, -z), q_meas)
    k = 2.0 if d[0] >= 0 else -2.0
    return np.array([k * d[1], k * d[2], k * d[3]])


def _tracker(**kw) -> StarTracker:
    cfg = StarTrackerConfig(enabled=True, **kw)
    return StarTracker(cfg, np.random.default_rng(7))


def _fly(st: StarTracker, n: int, q, rate=(0.0, 0.0, 0.0), t0_us: int = 0) -> list:
    out = []
    for i in range(n):
        t = t0_us + i * st.period_us
        st.sample(t, q, rate)
        out.append(st.delivered(t + 10 ** 7))
    return out


def test_samples_scatter_as_configured_across_and_about_the_boresight() -> None:
    # Boresight along body +y: the roll noise is about y, the cross noise about x and z.
    st = _tracker(boresight_body=[0.0, 1.0, 0.0], cross_sigma_arcsec=5.0,
                  roll_sigma_arcsec=40.0, acquisition_s=0.0)
    q = (math.cos(0.3), math.sin(0.3) * 0.6, 0.0, math.sin(0.3) * 0.8)
    samples = _fly(st, N, q)
    assert all(s[5] is True for s in samples)
    err = np.array([_error_body(q, s[1:5]) for s in samples]) / ARCSEC_RAD
    sd = err.std(axis=0, ddof=1)
    bound = 4.0 / math.sqrt(2 * N)
    for axis, want in ((0, 5.0), (1, 40.0), (2, 5.0)):
        assert abs(sd[axis] / want - 1.0) < bound, (axis, sd)
        assert abs(err[:, axis].mean()) < 4.0 * want / math.sqrt(N)
    # unit quaternions
    norms = [math.sqrt(sum(c * c for c in s[1:5])) for s in samples]
    assert max(abs(n - 1.0) for n in norms) < 1e-12


def test_a_fast_turn_loses_the_lock_and_it_comes_back_after_acquisition() -> None:
    st = _tracker(rate_hz=5.0, max_rate_dps=2.0, acquisition_s=1.0, latency_s=0.0)
    q = (1.0, 0.0, 0.0, 0.0)
    slow, fast = (0.0, math.radians(1.9), 0.0), (0.0, math.radians(2.1), 0.0)
    valid = []
    for i in range(30):
        t = i * st.period_us
        st.sample(t, q, fast if 10 <= i < 15 else slow)
        valid.append(st.delivered(t)[5])
    # calm from 0: valid from 1 s (sample 5) on; lost at 10..14; 1 s after the turn (15)
    # ends, valid again from sample 20.
    assert valid == [False] * 5 + [True] * 5 + [False] * 10 + [True] * 10
    invalid = st.delivered(12 * st.period_us)
    assert invalid is not None


def test_samples_arrive_after_the_latency_and_an_invalid_one_carries_no_attitude() -> None:
    st = _tracker(rate_hz=5.0, latency_s=0.1, acquisition_s=0.0, max_rate_dps=1.0)
    q = (0.5, 0.5, 0.5, 0.5)
    st.sample(0, q, (0.0, 0.0, 0.0))
    assert st.delivered(99_999) is None
    s = st.delivered(100_000)
    assert s[0] == 0 and s[5] is True
    st.sample(200_000, q, (0.0, 1.0, 0.0))            # 57 deg/s: no lock
    assert st.delivered(299_999)[0] == 0
    assert st.delivered(300_000) == [200_000, 1.0, 0.0, 0.0, 0.0, False]


def test_dropouts_come_at_the_configured_rate() -> None:
    p = 0.1
    st = _tracker(acquisition_s=0.0, dropout_probability=p)
    _fly(st, N, (1.0, 0.0, 0.0, 0.0))
    sd = math.sqrt(N * p * (1 - p))
    assert abs(st.dropouts - N * p) < 4.0 * sd, st.dropouts


def _plant(tracker: bool, preset: str = "navigation") -> LanderPlant:
    data = scenario_to_dict(load_scenario("nominal"))
    data["imu"]["preset"] = preset
    data["star_tracker"] = {"enabled": tracker}
    return LanderPlant(scenario_from_dict(data))


def test_a_run_without_a_tracker_is_unchanged_by_fitting_one() -> None:
    # The tracker draws from a generator of its own: the other sensors' streams, and so a
    # run without a tracker, are bit for bit what they were before it existed.
    a, b = _plant(False), _plant(True)
    fa, fb = a.reset(3), b.reset(3)
    assert fa.att is None and fb.att is None         # the first arrives after the latency
    cmd = Command(0.6, (0.1, -0.2, 0.05))
    for _ in range(200):
        fa, fb = a.step(cmd), b.step(cmd)
        assert (fa.imu, fa.alt, fa.vel) == (fb.imu, fb.alt, fb.vel)
    assert a.state == b.state
    assert fb.att is not None and fb.att[5] is True
    assert "star_tracker" in b.fsw_config() and "star_tracker" not in a.fsw_config()


def _coast(tracker: bool, seed: int = 5):
    """A MEMS unit through the nominal coast (engine off, 20 s): the flight software's
    gyro bias estimate at ignition, the true bias averaged over the coast's last 10 s (a
    flicker-noise bias has fast parts no estimator follows), and the attitude error."""
    plant = _plant(tracker, "mems")
    frame = plant.reset(seed)
    fsw = FlightSoftware(plant.fsw_config())
    truth = []
    while frame.t_us < fsw.ignition_t_us - 20_000:
        out = fsw.step(_frame(frame))
        frame = plant.step(Command(out[0], tuple(out[1])))
        if frame.t_us > fsw.ignition_t_us - 10_000_000:
            imu = plant.imu
            truth.append(np.asarray(imu.turn_on_bias[3:6]) + np.asarray(imu.gm_bias[3:6]))
    att_err = np.linalg.norm(_error_body(plant.state[6:10], fsw.nav.q_i))
    return fsw, np.mean(truth, axis=0), att_err


def _frame(frame):
    f = Frame(frame.seq, frame.t_us, frame.imu, frame.alt, frame.vel)
    f.att = frame.att
    return f


def test_the_coast_learns_a_mems_gyro_bias_from_the_tracker() -> None:
    fsw, true_bias, att_err = _coast(True)
    dph = 180.0 / math.pi * 3600.0
    err = np.asarray(fsw.nav.gyro_bias) - true_bias
    # About 60 deg/h of bias (20 deg/h per axis turn-on, 8 deg/h instability): most of it
    # learnt in the 20 s coast; the attitude held to the angle random walk's tens of
    # arc-seconds (0.48 deg/sqrt(h): 13" between two samples).
    assert np.linalg.norm(true_bias) * dph > 10.0
    assert np.linalg.norm(err) < 0.5 * np.linalg.norm(true_bias), (err * dph, true_bias * dph)
    assert att_err < 150 * ARCSEC_RAD, att_err / ARCSEC_RAD
    # Without the tracker the same coast drifts by the bias: about 0.3 deg.
    _, _, att_err_free = _coast(False)
    assert att_err_free > 500 * ARCSEC_RAD, att_err_free / ARCSEC_RAD


def test_a_sample_far_from_the_estimate_is_rejected() -> None:
    plant = _plant(True, "mems")
    frame = plant.reset(1)
    fsw = FlightSoftware(plant.fsw_config())
    nav = fsw.nav
    fsw.step(_frame(frame))
    t = frame.t_us
    far = [t, 0.0, 1.0, 0.0, 0.0, True]                 # 180 deg away
    before = nav.q_i
    nav.fuse_star_tracker(far)
    assert nav.st_rejected and not nav.st_used and nav.q_i == before
