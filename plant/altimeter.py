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
  ``latency_s`` later (rounded to the microsecond);
* with ``link_budget = true``, a return must also be *detected*: the unit fires
  ``pulse_rate_hz / rate`` pulses per sample; each is detected with probability
  ``P_d = Phi(threshold_snr (P_r / P_s - 1))`` from the received peak power of an extended
  Lambertian surface, ``P_r = P_t eta rho cos(i) A / (pi R^2) x 10^(-loss_db / 10)``
  (laser peak power ``P_t``, optics efficiency ``eta``, surface albedo ``rho``, incidence
  angle ``i``, receiver aperture area ``A``, range ``R``, a loss growing with the closing
  speed along the boresight) against the receiver sensitivity ``P_s`` (the received power
  detected half the time); a sample is in range only with at least ``min_detections``
  detected pulses (:func:`detection_probability`, :func:`lock_range_m`).

Exactly one normal and one uniform are drawn per sample, whatever the geometry (plus one
uniform per pulse with the link budget on), so the random stream does not shift when the
trajectory or terrain changes.
"""

from __future__ import annotations

import math
from collections import deque
from statistics import NormalDist
from typing import Callable

import numpy as np

from plant.config import AltimeterConfig
from plant.terrain import Terrain

NW = 1e-9


def received_power_w(cfg: AltimeterConfig, range_m: float, albedo: float, cos_incidence: float,
                     closing_mps: float = 0.0, gain: float = 1.0) -> float:
    """Received peak power (W) from an extended Lambertian surface at ``range_m``.

    ``gain`` multiplies the laser power (a power fault); the closing speed along the
    boresight costs ``speed_loss_db_per_mps`` dB per m/s.
    """
    area = math.pi * (0.5e-3 * cfg.receiver_aperture_mm) ** 2
    loss = 10.0 ** (-cfg.speed_loss_db_per_mps * max(0.0, closing_mps) / 10.0)
    return (gain * cfg.laser_peak_power_w * cfg.optics_efficiency * albedo
            * max(0.0, cos_incidence) * area / (math.pi * range_m * range_m) * loss)


def detection_probability(cfg: AltimeterConfig, received_w: float,
                          sensitivity_factor: float = 1.0) -> float:
    """One pulse's detection probability: ``Phi(threshold_snr (P_r / P_s - 1))``.

    A threshold detector in Gaussian noise: the threshold sits ``threshold_snr`` noise
    sigmas up, and ``P_s`` (``receiver_sensitivity_nw``, times ``sensitivity_factor`` when
    a fault degrades it) is the signal at the threshold: detected half the time.
    """
    p_s = cfg.receiver_sensitivity_nw * NW * sensitivity_factor
    x = cfg.threshold_snr * (received_w / p_s - 1.0)
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def pulses_per_sample(cfg: AltimeterConfig, rate_hz: float) -> int:
    return max(1, int(round(cfg.pulse_rate_hz / rate_hz)))


def lock_range_m(cfg: AltimeterConfig, rate_hz: float, albedo: float,
                 cos_incidence: float = 1.0, closing_mps: float = 0.0) -> float:
    """Closed form: the range at which a sample is in range half the time.

    With ``n`` pulses per sample and ``k = min_detections``, solve ``P(Binomial(n, p) >= k)
    = 1/2`` for the per-pulse ``p``, invert ``P_d`` for the received power and the link
    equation for the range.
    """
    n, k = pulses_per_sample(cfg, rate_hz), cfg.min_detections
    lo, hi = 0.0, 1.0
    for _ in range(100):                       # bisection on p
        p = 0.5 * (lo + hi)
        if _binomial_tail(n, k, p) < 0.5:
            lo = p
        else:
            hi = p
    z = NormalDist().inv_cdf(0.5 * (lo + hi))
    p_r = cfg.receiver_sensitivity_nw * NW * (1.0 + z / cfg.threshold_snr)
    one_m = received_power_w(cfg, 1.0, albedo, cos_incidence, closing_mps)
    return math.sqrt(one_m / p_r)


def _binomial_tail(n: int, k: int, p: float) -> float:
    return sum(math.comb(n, j) * p ** j * (1.0 - p) ** (n - j) for j in range(k, n + 1))


def surface_normal(terrain: Terrain, p_m: np.ndarray, step_m: float = 1.0) -> np.ndarray:
    """Outward unit normal of the terrain at the surface point ``p_m`` (finite differences of
    the surface radius over ``step_m`` either way along two tangent directions)."""
    up = p_m / np.linalg.norm(p_m)
    e1 = np.cross([0.0, 0.0, 1.0], up)
    if np.linalg.norm(e1) < 1e-9:
        e1 = np.cross([1.0, 0.0, 0.0], up)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    r = float(np.linalg.norm(p_m))
    grads = []
    for e in (e1, e2):
        hi = terrain.surface_radius_m(up * r + step_m * e)
        lo = terrain.surface_radius_m(up * r - step_m * e)
        grads.append((hi - lo) / (2.0 * step_m))
    n = up - grads[0] * e1 - grads[1] * e2
    return n / np.linalg.norm(n)


class LaserAltimeter:
    """Sampled laser range finder with acquisition, noise, dropouts and latency."""

    def __init__(self, config: AltimeterConfig, rate_hz: float, rng: np.random.Generator,
                 albedo: float = 0.15) -> None:
        self.config = config
        self.albedo = float(albedo)
        self.pulses = pulses_per_sample(config, rate_hz) if config.link_budget else 0
        self.last_detections: int | None = None       # link budget: pulses detected
        self.last_detection_probability: float | None = None
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
                              tuple[float, bool, int] | None] | None = None,
               v_mps: np.ndarray | None = None,
               link: Callable[[int, float | None], tuple[float, float]] | None = None) -> None:
        """Take the sample at time ``t_us`` (position MCI ``r_m``, attitude matrix body->MCI).

        ``post(t_us, true_range_m, range_m, valid)``, if given, sees the model's result and
        returns ``(range_m, valid, extra_delay_us)`` to queue instead, or None to queue
        nothing (sensor faults, ``plant/faults.py``). With the link budget on: ``v_mps``
        the vehicle's velocity relative to the ground (MCI; None: at rest) and
        ``link(t_us, true_range_m) -> (power_gain, sensitivity_factor)`` the faults'
        degradation of the laser power and of the receiver sensitivity.
        """
        cfg = self.config
        direction = body_to_mci @ self.boresight_body
        true_range = terrain.ray_range_m(r_m, direction, cfg.max_range_m)
        self.last_true_range_m = true_range
        noise = float(self._rng.standard_normal())
        lost = float(self._rng.random()) < cfg.dropout_probability
        self.samples += 1

        in_range = true_range is not None and cfg.min_range_m <= true_range <= cfg.max_range_m
        if self.pulses:
            pulses = self._rng.random(self.pulses)          # drawn whatever the geometry
            detected, p = 0, 0.0
            if in_range:
                gain, worse = link(int(t_us), true_range) if link is not None else (1.0, 1.0)
                hit = r_m + true_range * direction
                cos_i = -float(direction @ surface_normal(terrain, hit))
                closing = 0.0 if v_mps is None else float(np.asarray(v_mps) @ direction)
                p = detection_probability(cfg, received_power_w(
                    cfg, true_range, self.albedo, cos_i, closing, gain), worse)
                detected = int(np.count_nonzero(pulses < p))
            self.last_detections, self.last_detection_probability = detected, p
            in_range = in_range and detected >= cfg.min_detections
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
