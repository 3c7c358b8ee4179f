"""IMU error model: each error term alone, against its textbook statistics."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from plant.config import ImuConfig
from plant.imu import PRESETS, Imu
from plant.moon import G0_MPS2

DEG = math.pi / 180.0


def only(**fields: float) -> ImuConfig:
    """The ideal unit with just the given error terms."""
    return ImuConfig(preset="ideal", **fields)


def run(imu: Imu, n: int, dv: np.ndarray | None = None,
        dth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    dv = np.zeros(3) if dv is None else dv
    dth = np.zeros(3) if dth is None else dth
    out_v, out_a = np.empty((n, 3)), np.empty((n, 3))
    for i in range(n):
        out_v[i], out_a[i] = imu.measure(dv, dth)
    return out_v, out_a


def test_ideal_returns_truth_exactly() -> None:
    imu = Imu(ImuConfig(preset="ideal"), 200.0, np.random.default_rng(3))
    rng = np.random.default_rng(4)
    for _ in range(200):
        dv, dth = rng.normal(0, 0.05, 3), rng.normal(0, 0.01, 3)
        mv, ma = imu.measure(dv, dth)
        assert np.array_equal(mv, dv) and np.array_equal(ma, dth)


def test_white_noise_level_per_sample() -> None:
    vrw, arw, rate = 0.06, 0.15, 200.0
    imu = Imu(only(accel_vrw_mpsh=vrw, gyro_arw_dpsh=arw), rate, np.random.default_rng(5))
    v, a = run(imu, 20000)
    dt = 1.0 / rate
    assert imu.params["accel_vrw_mps_per_sqrt_s"] == pytest.approx(vrw / 60.0)
    assert imu.params["gyro_arw_rad_per_sqrt_s"] == pytest.approx(arw * DEG / 60.0)
    assert v.std() == pytest.approx(vrw / 60.0 * math.sqrt(dt), rel=0.03)
    assert a.std() == pytest.approx(arw * DEG / 60.0 * math.sqrt(dt), rel=0.03)
    assert abs(v.mean()) < 4 * v.std() / math.sqrt(v.size)


def test_integrated_noise_does_not_depend_on_rate() -> None:
    """Random walk: the noise summed over T seconds has sigma = density * sqrt(T) at any rate."""
    vrw, arw, window_s, windows = 0.06, 0.15, 0.5, 400
    stds = {}
    for rate in (100.0, 400.0):
        imu = Imu(only(accel_vrw_mpsh=vrw, gyro_arw_dpsh=arw), rate, np.random.default_rng(11))
        v, a = run(imu, int(rate * window_s) * windows)
        per = int(rate * window_s)
        stds[rate] = (v.reshape(windows, per, 3).sum(axis=1).std(),
                      a.reshape(windows, per, 3).sum(axis=1).std())
        assert stds[rate][0] == pytest.approx(vrw / 60.0 * math.sqrt(window_s), rel=0.08)
        assert stds[rate][1] == pytest.approx(arw * DEG / 60.0 * math.sqrt(window_s), rel=0.08)
    assert stds[100.0][0] == pytest.approx(stds[400.0][0], rel=0.12)
    assert stds[100.0][1] == pytest.approx(stds[400.0][1], rel=0.12)


def test_constant_bias_is_the_mean_rate() -> None:
    rate = 50.0
    imu = Imu(only(accel_bias_ug=1000.0, gyro_bias_dph=10.0), rate, np.random.default_rng(2))
    v, a = run(imu, 100)
    assert np.allclose(v.mean(axis=0) * rate, imu.turn_on_bias[:3], rtol=1e-12, atol=0)
    assert np.allclose(a.mean(axis=0) * rate, imu.turn_on_bias[3:], rtol=1e-12, atol=0)
    # Turn-on biases across units: zero mean, one-sigma = the parameter.
    seed = np.random.SeedSequence(9)
    b = np.array([Imu(only(accel_bias_ug=1000.0), rate, np.random.default_rng(s)).turn_on_bias[:3]
                  for s in seed.spawn(1000)])
    assert b.std() == pytest.approx(1000.0e-6 * G0_MPS2, rel=0.06)
    assert abs(b.mean()) < 4 * b.std() / math.sqrt(b.size)


def test_gauss_markov_bias_instability() -> None:
    rate, tau, bi_dph = 10.0, 1.0, 5.0
    imu = Imu(only(gyro_bias_instability_dph=bi_dph, bias_correlation_time_s=tau), rate,
              np.random.default_rng(21))
    _, a = run(imu, 20000)
    b = a * rate                                # rad/s: the bias itself (no other error)
    sigma = bi_dph * DEG / 3600.0
    assert b.std() == pytest.approx(sigma, rel=0.06)
    lag1 = np.mean([np.corrcoef(b[:-1, k], b[1:, k])[0, 1] for k in range(3)])
    assert lag1 == pytest.approx(math.exp(-1.0 / (rate * tau)), abs=0.01)


def test_quantisation_carries_the_residual() -> None:
    q, dv = 1e-3, 3.7e-4                         # each sample is under half a quantum
    imu = Imu(only(accel_quantum_mps=q, gyro_quantum_rad=q), 200.0, np.random.default_rng(1))
    v, a = run(imu, 10000, dv=np.full(3, dv), dth=np.full(3, -dv))
    assert np.allclose(v / q, np.round(v / q), atol=1e-9)     # multiples of the quantum
    assert np.all(np.abs(v.sum(axis=0) - 10000 * dv) <= q)
    assert np.all(np.abs(a.sum(axis=0) + 10000 * dv) <= q)
    assert np.all(np.abs(np.cumsum(v[:, 0]) - dv * np.arange(1, 10001)) <= q / 2 + 1e-12)


def test_saturation_clips_rate_and_specific_force() -> None:
    rate = 100.0
    dt = 1.0 / rate
    imu = Imu(only(gyro_range_dps=100.0, accel_range_g=2.0), rate, np.random.default_rng(1))
    dth = np.array([150.0, -150.0, 50.0]) * DEG * dt
    dv = np.array([3.0, -3.0, 1.0]) * G0_MPS2 * dt
    mv, ma = imu.measure(dv, dth)
    assert np.allclose(ma, np.array([100.0, -100.0, 50.0]) * DEG * dt, rtol=1e-12)
    assert np.allclose(mv, np.array([2.0, -2.0, 1.0]) * G0_MPS2 * dt, rtol=1e-12)


def test_scale_factor_and_misalignment() -> None:
    imu = Imu(only(accel_scale_ppm=1000.0), 100.0, np.random.default_rng(8))
    mv, _ = imu.measure(np.array([1.0, 2.0, 3.0]), np.zeros(3))
    ratio = mv / np.array([1.0, 2.0, 3.0])
    assert np.allclose(np.abs(ratio - 1.0), 1e-3, rtol=1e-9)
    # Misalignment: a rate about x leaks into y and z at about the angle (1 mrad, 1 sigma).
    leak = []
    for s in np.random.SeedSequence(3).spawn(300):
        imu = Imu(only(misalignment_mrad=1.0), 100.0, np.random.default_rng(s))
        _, ma = imu.measure(np.zeros(3), np.array([1.0, 0.0, 0.0]))
        assert ma[0] == 1.0
        leak.extend(ma[1:])
    assert np.std(leak) == pytest.approx(1e-3, rel=0.12)


def test_presets_and_overrides() -> None:
    imu = Imu(ImuConfig(preset="tactical", gyro_arw_dpsh=1.0), 200.0, np.random.default_rng(0))
    assert imu.params["gyro_arw_rad_per_sqrt_s"] == pytest.approx(1.0 * DEG / 60.0)
    assert imu.params["gyro_bias_instability_radps"] == pytest.approx(
        PRESETS["tactical"]["gyro_bias_instability_dph"] * DEG / 3600.0)
    assert imu.params["accel_range_mps2"] == pytest.approx(10.0 * G0_MPS2)
    mems = Imu(ImuConfig(preset="mems"), 200.0, np.random.default_rng(0))
    assert mems.params["gyro_range_radps"] == pytest.approx(2000.0 * DEG)
    assert mems.params["gyro_arw_rad_per_sqrt_s"] > imu.params["gyro_arw_rad_per_sqrt_s"] / 3
    keys = {f.name for f in dataclasses.fields(ImuConfig)} - {"preset"}
    assert all(set(p) == keys for p in PRESETS.values())           # every preset is complete
    with pytest.raises(ValueError, match="ideal, mems, navigation, tactical"):
        Imu(ImuConfig(preset="strategic"), 200.0, np.random.default_rng(0))


@pytest.mark.parametrize("preset", ["tactical", "mems"])
def test_deterministic_from_the_seed(preset: str) -> None:
    truth_v, truth_a = np.array([0.01, -0.02, 0.008]), np.array([1e-4, 0.0, -3e-4])

    def seq(seed: int) -> np.ndarray:
        imu = Imu(ImuConfig(preset=preset), 200.0, np.random.default_rng(seed))
        v, a = run(imu, 600, truth_v, truth_a)      # crosses several random blocks
        return np.hstack((v, a))

    assert np.array_equal(seq(42), seq(42))
    assert not np.array_equal(seq(42), seq(43))
