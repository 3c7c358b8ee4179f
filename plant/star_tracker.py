"""Star tracker: the vehicle's attitude, measured against the stars.

At each sample time the plant calls :meth:`StarTracker.sample` with the true attitude
(quaternion body -> MCI, scalar first) and body rate:

* *tracking* while the body rate is at most ``max_rate_dps`` (the stars smear across the
  detector above it); a faster turn loses the lock, and a sample is valid only once the
  rate has stayed below the limit for ``acquisition_s``;
* noise: a small rotation ``(sigma_c n0, sigma_c n1, sigma_r n2)`` in the tracker's own
  axes (z along ``boresight_body``; ``cross_sigma_arcsec`` about the two axes across the
  boresight, ``roll_sigma_arcsec`` about it: a tracker measures its roll several times
  worse), applied in body axes: ``q_meas = q_true * exp(dtheta_body / 2)``;
* dropout: a sample is invalid with ``dropout_probability``;
* an invalid sample carries ``[1, 0, 0, 0]`` (never a stale attitude);
* the sample ``[t_us, qw, qx, qy, qz, valid]`` carries the time it was taken (the attitude
  *of* that time) and is delivered ``latency_s`` later (first in, first out).

Faults (``plant/faults.py``, sensor ``star_tracker``): off, blind, stuck, bias, noise,
dropout, latency (docs/faults.md). Not modelled as geometry: blinding by the Sun, the Earth
or the lit Moon in the field of view (the ``blind`` fault stands in for it, at the times
a scenario gives), and the slow thermal drift of the mounting (docs/plant-sensors.md).

Random numbers: per sample three normals and one uniform, drawn whether or not the sample
is valid (in blocks of ``_BLOCK`` samples), so the stream does not shift with the
trajectory.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from plant.config import StarTrackerConfig

ARCSEC_RAD = math.pi / (180.0 * 3600.0)
_BLOCK = 64


def _qmul(a: tuple, b: tuple) -> tuple:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw)


def tracker_axes(boresight_body: list[float]) -> list[list[float]]:
    """The tracker's axes in body axes: two across the boresight, then the boresight."""
    z = np.asarray(boresight_body, dtype=float)
    z = z / np.linalg.norm(z)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return [x.tolist(), y.tolist(), z.tolist()]


class StarTracker:
    """Sampled attitude measurement with a rate limit, acquisition, noise and latency."""

    def __init__(self, config: StarTrackerConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rate_hz = float(config.rate_hz)
        self.period_us = int(round(1e6 / self.rate_hz))
        b = np.asarray(config.boresight_body, dtype=float)
        if b.shape != (3,) or not np.all(np.isfinite(b)) or np.linalg.norm(b) < 1e-6:
            raise ValueError("star_tracker boresight_body must be a non-zero [x, y, z] vector")
        self.axes = tracker_axes(config.boresight_body)
        self.cross_sigma_rad = config.cross_sigma_arcsec * ARCSEC_RAD
        self.roll_sigma_rad = config.roll_sigma_arcsec * ARCSEC_RAD
        self.max_rate_radps = math.radians(config.max_rate_dps)
        self._rng = rng
        self._latency_us = int(round(config.latency_s * 1e6))
        self._acq_us = int(round(config.acquisition_s * 1e6))
        self._calm_since_us: int | None = None
        self._pending: deque[tuple[int, list]] = deque()
        self._delivered: list | None = None
        self._normals: list[list[float]] = []
        self._uniforms: list[float] = []
        self._row = 0
        self.samples = 0
        self.dropouts = 0

    def _draws(self) -> tuple[list[float], float]:
        if self._row >= len(self._normals):
            self._normals = self._rng.standard_normal((_BLOCK, 3)).tolist()
            self._uniforms = self._rng.random(_BLOCK).tolist()
            self._row = 0
        row = self._row
        self._row += 1
        return self._normals[row], self._uniforms[row]

    def sample(self, t_us: int, q_body_to_mci, rate_body_radps, post=None) -> None:
        """Take the sample at ``t_us`` of the attitude ``q_body_to_mci`` (w, x, y, z) while
        the body turns at ``rate_body_radps`` (body axes). ``post(t_us, sample)``, if given,
        sees the model's ``[qw, qx, qy, qz, valid]`` and returns ``(sample,
        extra_delay_us)`` to queue instead, or None to queue nothing (``plant/faults.py``)."""
        normals, uniform = self._draws()
        self.samples += 1
        wx, wy, wz = (float(w) for w in rate_body_radps)
        if math.sqrt(wx * wx + wy * wy + wz * wz) > self.max_rate_radps:
            self._calm_since_us = None
        elif self._calm_since_us is None:
            self._calm_since_us = t_us
        valid = self._calm_since_us is not None and t_us - self._calm_since_us >= self._acq_us
        if valid and uniform < self.config.dropout_probability:
            self.dropouts += 1
            valid = False
        out = [1.0, 0.0, 0.0, 0.0, False]
        if valid:
            s_c, s_r = self.cross_sigma_rad, self.roll_sigma_rad
            e = (s_c * normals[0], s_c * normals[1], s_r * normals[2])   # tracker axes
            ax = self.axes
            th = [e[0] * ax[0][i] + e[1] * ax[1][i] + e[2] * ax[2][i] for i in range(3)]
            a = math.sqrt(th[0] * th[0] + th[1] * th[1] + th[2] * th[2])
            k = 0.5 if a < 1e-12 else math.sin(0.5 * a) / a
            dq = (math.cos(0.5 * a), th[0] * k, th[1] * k, th[2] * k)
            q = _qmul(tuple(float(x) for x in q_body_to_mci), dq)
            n = math.sqrt(sum(x * x for x in q))
            out = [q[0] / n, q[1] / n, q[2] / n, q[3] / n, True]
        delay_us = self._latency_us
        if post is not None:
            res = post(int(t_us), out)
            if res is None:
                return
            out, extra_us = res
            delay_us += extra_us
        self._pending.append((t_us + delay_us, [int(t_us), *out]))

    def delivered(self, t_us: int) -> list | None:
        """Latest sample ``[t_us, qw, qx, qy, qz, valid]`` delivered by ``t_us``; None
        before the first. Call with non-decreasing times."""
        pending = self._pending
        while pending and pending[0][0] <= t_us:
            self._delivered = pending.popleft()[1]
        return self._delivered

    def hello_config(self) -> dict:
        """The HELLO config's ``star_tracker`` block: what the flight software is told."""
        c = self.config
        return {"boresight_body": self.axes[2], "cross_sigma_rad": self.cross_sigma_rad,
                "roll_sigma_rad": self.roll_sigma_rad, "rate_hz": self.rate_hz,
                "latency_s": float(c.latency_s), "max_rate_radps": self.max_rate_radps}
