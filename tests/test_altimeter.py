"""Laser altimeter: acquisition, range limits, noise, dropouts, latency, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plant.altimeter import LaserAltimeter
from plant.config import AltimeterConfig, TerrainConfig
from plant.moon import MEAN_RADIUS_M, SiteFrame
from plant.terrain import Terrain

SITE = SiteFrame(0.0, 0.0)
TERRAIN = Terrain(TerrainConfig(), SITE)                       # flat: range = altitude
LEVEL = np.column_stack((SITE.east, SITE.north, SITE.up))     # body x, y, z in MCI; -z looks down


def at(alt_m: float) -> np.ndarray:
    return SITE.up * (MEAN_RADIUS_M + alt_m)


def altimeter(seed: int = 1, **kw: float) -> LaserAltimeter:
    cfg = AltimeterConfig(**{"latency_s": 0.0, **kw})
    return LaserAltimeter(cfg, 10.0, np.random.default_rng(seed))


def take(alt: LaserAltimeter, t_us: int, alt_m: float, attitude: np.ndarray = LEVEL):
    alt.sample(t_us, at(alt_m), attitude, TERRAIN)
    return alt.delivered(t_us)


def test_valid_only_after_acquisition_in_range() -> None:
    alt = altimeter(acquisition_s=0.5, noise_m=0.0, noise_fraction=0.0)
    out = [take(alt, k * 100_000, 1000.0) for k in range(8)]
    assert [o[2] for o in out] == [False] * 5 + [True] * 3        # valid from t0 + 0.5 s
    assert all(o[1] == 0.0 for o in out[:5])                      # invalid -> range 0.0
    assert out[5][1] == pytest.approx(1000.0, abs=0.01)
    assert alt.last_true_range_m == pytest.approx(1000.0, abs=0.01)


def test_out_of_range_is_invalid_and_restarts_acquisition() -> None:
    alt = altimeter(acquisition_s=0.3, min_range_m=1.0, max_range_m=15000.0)
    t = 0
    for _ in range(5):
        assert take(alt, t, 20000.0)[2] is False                  # beyond max range
        assert alt.last_true_range_m is None
        t += 100_000
    valid = []
    for _ in range(6):
        valid.append(take(alt, t, 14000.0)[2])
        t += 100_000
    assert valid == [False, False, False, True, True, True]
    assert take(alt, t, 0.5)[2] is False                           # below min range
    assert alt.last_true_range_m == pytest.approx(0.5, abs=0.01)
    t += 100_000
    assert take(alt, t, 100.0)[2] is False                         # lock lost: acquire again


def test_slant_range_along_tilted_boresight() -> None:
    alt = altimeter(acquisition_s=0.0, noise_m=0.0, noise_fraction=0.0)
    th = math.radians(30.0)
    c, s = math.cos(th), math.sin(th)
    tilt = LEVEL @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])   # about body y
    ts, r, valid = take(alt, 0, 1000.0, tilt)
    curvature = (1000.0 * s / c) ** 2 / (2.0 * MEAN_RADIUS_M) / c   # surface drop, 0.11 m
    assert valid and r == pytest.approx(1000.0 / c + curvature, abs=0.01)


@pytest.mark.parametrize("range_m", [100.0, 5000.0])
def test_noise_sigma(range_m: float) -> None:
    a, b = 0.5, 0.001
    alt = altimeter(seed=3, acquisition_s=0.0, noise_m=a, noise_fraction=b)
    r = np.array([take(alt, k * 100_000, range_m)[1] for k in range(4000)])
    sigma = math.sqrt(a * a + (b * range_m) ** 2)
    assert r.std() == pytest.approx(sigma, rel=0.05)
    assert abs(r.mean() - range_m) < 4 * sigma / math.sqrt(r.size)


def test_latency_and_time_stamp() -> None:
    alt = altimeter(latency_s=0.025, acquisition_s=0.0, noise_m=0.0, noise_fraction=0.0)
    assert alt.delivered(0) is None
    alt.sample(1_000_000, at(800.0), LEVEL, TERRAIN)
    assert alt.delivered(1_000_000) is None
    assert alt.delivered(1_024_999) is None
    ts, r, valid = alt.delivered(1_025_000)
    assert ts == 1_000_000 and valid and r == pytest.approx(800.0, abs=0.01)
    alt.sample(1_100_000, at(700.0), LEVEL, TERRAIN)
    assert alt.delivered(1_110_000)[0] == 1_000_000               # still the older one
    assert alt.delivered(1_200_000)[0] == 1_100_000


def test_dropout_fraction() -> None:
    p, n = 0.2, 5000
    alt = altimeter(seed=5, acquisition_s=0.0, dropout_probability=p)
    valid = np.array([take(alt, k * 100_000, 500.0)[2] for k in range(n)])
    lost = 1.0 - valid.mean()
    assert lost == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n))
    assert alt.dropouts == n - valid.sum()


def test_deterministic_from_the_seed() -> None:
    def seq(seed: int) -> list:
        alt = altimeter(seed=seed, acquisition_s=0.2, dropout_probability=0.1)
        return [take(alt, k * 100_000, 3000.0 - 10.0 * k) for k in range(50)]

    assert seq(7) == seq(7)
    assert seq(7) != seq(8)
