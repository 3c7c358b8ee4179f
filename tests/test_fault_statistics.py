"""The random sensor faults deliver their configured strength (plant/faults.py).

Each test draws enough samples that a 4-sigma bound around the configured figure is tight
enough to reject a model with half (or, for the noise, 0.8 times) the configured strength:
``test_bounds_reject_a_wrong_model`` checks that power explicitly, so a loosened test fails
here first. Samples go through :class:`plant.faults.FaultSet` directly (a steady 500 m range,
one sample per 100 ms), which is what the plant calls for every altimeter sample.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from plant.config import FaultConfig
from plant.faults import FaultSet

N = 4000                 # samples per test
RANGE_M = 500.0
SIGMAS = 4.0


def deliver(fault: dict, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """(range_m, valid) of N altimeter samples with one fault active from t = 0."""
    faults = FaultSet([FaultConfig(sensor="altimeter", **fault)],
                      np.random.default_rng(seed), imu_dt_s=0.005, acquisition_s=0.0)
    out = [faults.apply_altimeter(k * 100_000, RANGE_M, RANGE_M, True) for k in range(N)]
    return (np.array([o[0] for o in out]), np.array([o[1] for o in out]))


def proportion_bound(p: float, n: int = N) -> float:
    """Half-width of the 4-sigma band of an observed proportion."""
    return SIGMAS * math.sqrt(p * (1.0 - p) / n)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.6])
def test_dropout_rate(p: float) -> None:
    _, valid = deliver(dict(kind="dropout", value=p))
    assert (~valid).mean() == pytest.approx(p, abs=proportion_bound(p))


@pytest.mark.parametrize("p", [0.1, 0.25, 0.6])
def test_spike_rate_and_size(p: float) -> None:
    r, valid = deliver(dict(kind="spike", value=p, magnitude=120.0))
    assert valid.all()
    spiked = np.isclose(r, RANGE_M + 120.0)
    assert np.all(spiked | np.isclose(r, RANGE_M))    # nothing else is touched
    assert spiked.mean() == pytest.approx(p, abs=proportion_bound(p))


@pytest.mark.parametrize("sigma_m", [0.5, 40.0])
def test_noise_sigma_and_zero_mean(sigma_m: float) -> None:
    r, valid = deliver(dict(kind="noise", value=sigma_m))
    assert valid.all()
    extra = r - RANGE_M
    # the sample standard deviation of N normal draws has a standard error of sigma/sqrt(2N)
    assert extra.std() == pytest.approx(sigma_m, abs=SIGMAS * sigma_m / math.sqrt(2 * N))
    assert abs(extra.mean()) < SIGMAS * sigma_m / math.sqrt(N)


def test_bounds_reject_a_wrong_model() -> None:
    """The bands above are narrow enough to catch half the rate or 0.8 times the sigma."""
    for p in (0.1, 0.25, 0.6):
        assert abs(p / 2 - p) > 2 * proportion_bound(p), p
    assert 0.2 > 2 * SIGMAS / math.sqrt(2 * N)
    # ... and a model that really is wrong by that much fails the rate check.
    _, valid = deliver(dict(kind="dropout", value=0.125))
    assert abs((~valid).mean() - 0.25) > proportion_bound(0.25)
