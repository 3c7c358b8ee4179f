"""Laser altimeter: slant range along a body-fixed boresight, ray-cast on the terrain.

At each sample time the plant calls :meth:`LaserAltimeter.sample`. The model:

* true range = first terrain intersection of the boresight ray (body -> MCI) from the
  vehicle position; *in range* if there is a hit and ``min_range_m <= range <= max_range_m``;
* acquisition: a sample is valid only once the returns have been in range continuously for
  ``acquisition_s`` (first in-range sample at t0: valid from t0 + acquisition_s on); any
  out-of-range sample restarts it; a dropout does not (the lock is kept, one return lost);
* noise: Gaussian, ``sigma = sqrt(noise_m^2 + (noise_fraction * range)^2)``; measured range
  clamped at 0;
* dropout: with ``dropout_probability`` a sample is invalid;
* an invalid sample is still a message: ``valid = False`` and range 0.0 (never a stale value);
* the message carries its own time stamp (the time it was taken) and is delivered
  ``latency_s`` later (rounded to the microsecond).

Exactly one normal and one uniform are drawn per sample, whatever the geometry, so the
random stream does not shift when the trajectory or terrain changes.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Callable

import numpy as np

from plant.config import AltimeterConfig
from plant.terrain import Terrain


class LaserAltimeter:
    """Sampled laser range finder with acquisition, noise, dropouts and latency."""

    def __init__(self, config: AltimeterConfig, rate_hz: float, rng: np.random.Generator) -> None:
        self.config = config
        self.rate_hz = float(rate_hz)
        self.period_us = int(round(1e6 / self.rate_hz))
        b = np.asarray(config.boresight_body, dtype=float)
        n = float(np.linalg.norm(b))
        if n == 0.0:
            raise ValueError("altimeter boresight_body must be non-zero")
        self.boresight_body = b / n
        self._rng = rng
        self._latency_us = int(round(config.latency_s * 1e6))
        self._acq_us = int(round(config.acquisition_s * 1e6))
        self._lock_start_us: int | None = None
        self._pending: deque[tuple[int, int, float, bool]] = deque()
        self._delivered: tuple[int, float, bool] | None = None
        self.last_true_range_m: float | None = None   # ray-cast range (None: no hit in max range)
        self.last_in_range = False
        self.samples = 0
        self.dropouts = 0

    def sample(self, t_us: int, r_m: np.ndarray, body_to_mci: np.ndarray, terrain: Terrain,
               post: Callable[[int, float | None, float, bool],
                              tuple[float, bool, int] | None] | None = None) -> None:
        """Take the sample at time ``t_us`` (position MCI ``r_m``, attitude matrix body->MCI).

        ``post(t_us, true_range_m, range_m, valid)``, if given, sees the model's result and
        returns ``(range_m, valid, extra_delay_us)`` to queue instead, or None to queue
        nothing (sensor faults, ``plant/faults.py``).
        """
        cfg = self.config
        direction = body_to_mci @ self.boresight_body
        true_range = terrain.ray_range_m(r_m, direction, cfg.max_range_m)
        self.last_true_range_m = true_range
        noise = float(self._rng.standard_normal())
        lost = float(self._rng.random()) < cfg.dropout_probability
        self.samples += 1

        in_range = true_range is not None and cfg.min_range_m <= true_range <= cfg.max_range_m
        self.last_in_range = in_range
        if not in_range:
            self._lock_start_us = None
            valid, measured = False, 0.0
        else:
            if self._lock_start_us is None:
                self._lock_start_us = t_us
            acquired = t_us - self._lock_start_us >= self._acq_us
            if lost:
                self.dropouts += 1
            valid = acquired and not lost
            if valid:
                sigma = math.hypot(cfg.noise_m, cfg.noise_fraction * true_range)
                measured = max(0.0, true_range + sigma * noise)
            else:
                measured = 0.0
        delay_us = self._latency_us
        if post is not None:
            out = post(int(t_us), true_range, measured, valid)
            if out is None:
                return
            measured, valid, extra_us = out
            delay_us += extra_us
        self._pending.append((t_us + delay_us, int(t_us), measured, valid))

    def delivered(self, t_us: int) -> tuple[int, float, bool] | None:
        """Latest (sample time us, range m, valid) delivered by ``t_us``; None before the first.

        Call with non-decreasing times: delivered samples leave the queue. The queue is first
        in, first out: with a varying delay (a latency fault) no sample overtakes an earlier
        one; samples held up behind a late one come out with it and the newest wins.
        """
        pending = self._pending
        while pending and pending[0][0] <= t_us:
            _, ts, rng_m, valid = pending.popleft()
            self._delivered = (ts, rng_m, valid)
        return self._delivered
