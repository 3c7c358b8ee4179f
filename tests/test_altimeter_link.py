"""Laser range finder link budget: detection statistics, lock range against the closed form,
albedo, incidence, speed loss and the power/sensitivity faults."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from plant.altimeter import (LaserAltimeter, detection_probability, lock_range_m,
                             received_power_w)
from plant.config import AltimeterConfig, FaultConfig, TerrainConfig
from plant.faults import FaultSet
from plant.moon import MEAN_RADIUS_M, SiteFrame
from plant.terrain import Terrain

SITE = SiteFrame(0.0, 0.0)
FLAT = Terrain(TerrainConfig(), SITE)
LEVEL = np.column_stack((SITE.east, SITE.north, SITE.up))
RATE = 10.0
MARE = 0.15


def unit(**kw) -> AltimeterConfig:
    base = dict(link_budget=True, acquisition_s=0.0, latency_s=0.0, noise_m=0.0,
                noise_fraction=0.0, max_range_m=20000.0)
    return AltimeterConfig(**{**base, **kw})


def run(cfg: AltimeterConfig, range_m: float, n: int, seed: int = 1, link=None,
        v=None) -> tuple[float, float]:
    """(fraction of pulses detected, fraction of samples valid) at a fixed nadir range."""
    alt = LaserAltimeter(cfg, RATE, np.random.default_rng(seed), MARE)
    hits = valid = 0
    for k in range(n):
        alt.sample(k * 100_000, SITE.up * (MEAN_RADIUS_M + range_m), LEVEL, FLAT, None, v, link)
        hits += alt.last_detections
        valid += alt.delivered(k * 100_000)[2]
    return hits / (n * alt.pulses), valid / n


def test_pulse_detection_and_sample_validity_statistics() -> None:
    """4,000 samples of 10 pulses near the 50 % point: both rates within 4 sigma of the
    model's; the same data rejects a unit with half the laser power."""
    cfg = unit()
    r = 0.97 * lock_range_m(cfg, RATE, MARE)
    p = detection_probability(cfg, received_power_w(cfg, r, MARE, 1.0))
    n = 4000
    pulses, valid = run(cfg, r, n)
    sd = math.sqrt(p * (1 - p) / (n * 10))
    assert abs(pulses - p) < 4 * sd
    tail = sum(math.comb(10, j) * p ** j * (1 - p) ** (10 - j) for j in range(5, 11))
    assert abs(valid - tail) < 4 * math.sqrt(tail * (1 - tail) / n)
    p_half = detection_probability(cfg, received_power_w(cfg, r, MARE, 1.0, gain=0.5))
    assert abs(pulses - p_half) > 4 * sd


def test_nominal_unit_locks_above_3_km_over_mare_and_matches_the_closed_form() -> None:
    cfg = unit()
    lock = lock_range_m(cfg, RATE, MARE)
    assert lock > 3000.0
    # Closed form, computed here independently: the per-pulse p with P(>= 5 of 10) = 1/2,
    # the received power giving it, and the link equation solved for the range.
    ps = np.linspace(0.3, 0.6, 300001)
    tail = sum(math.comb(10, j) * ps ** j * (1 - ps) ** (10 - j) for j in range(5, 11))
    p_star = ps[np.argmin(np.abs(tail - 0.5))]
    p_r = 10e-9 * (1.0 + NormalDist().inv_cdf(p_star) / 5.0)
    area = math.pi * 0.025 ** 2
    closed = math.sqrt(5000.0 * 0.5 * MARE * area / (math.pi * p_r))
    assert lock == pytest.approx(closed, rel=1e-4)
    # Simulated: valid more than half the time 3 % inside the lock range, less 3 % outside.
    n = 1500
    _, inside = run(cfg, 0.97 * lock, n, seed=2)
    _, outside = run(cfg, 1.03 * lock, n, seed=3)
    band = 4 * math.sqrt(0.25 / n)
    assert inside > 0.5 + band / 2 and outside < 0.5 - band / 2
    # Lock scales as sqrt(albedo x cos(incidence)); highlands (0.35) lock further out.
    assert lock_range_m(cfg, RATE, 0.35) / lock == pytest.approx(math.sqrt(0.35 / MARE))
    assert lock_range_m(cfg, RATE, MARE, math.cos(math.radians(60))) / lock == \
        pytest.approx(math.sqrt(0.5))


def test_speed_loss_and_faults_shorten_the_lock() -> None:
    cfg = unit(speed_loss_db_per_mps=0.05)
    lock = lock_range_m(cfg, RATE, MARE)
    fast = lock_range_m(cfg, RATE, MARE, closing_mps=60.0)      # 3 dB: half the power
    assert fast / lock == pytest.approx(math.sqrt(10 ** -0.3))
    v = -60.0 * SITE.up                                          # descending at 60 m/s
    pulses, _ = run(cfg, 0.9 * fast, 300, v=v)
    p = detection_probability(cfg, received_power_w(cfg, 0.9 * fast, MARE, 1.0, 60.0))
    assert abs(pulses - p) < 4 * math.sqrt(p * (1 - p) / 3000)
    faults = FaultSet([FaultConfig(sensor="altimeter", kind="power", value=0.25),
                       FaultConfig(sensor="altimeter", kind="sensitivity", value=2.0,
                                   at_time_s=100.0)],
                      np.random.default_rng(0), 0.005, 0.0)
    assert faults.altimeter_link(0, 3000.0) == (0.25, 1.0)
    assert faults.altimeter_link(100_000_000, 3000.0) == (0.25, 2.0)
    base = unit()
    r = 0.5 * lock_range_m(base, RATE, MARE)        # power / 4 x sensitivity / 2: range / sqrt(8)
    pulses, valid = run(base, r * 0.95, 300, link=lambda t, rng: (0.25, 2.0))
    assert valid < 0.2 and run(base, r * 0.95, 300)[1] == 1.0
