"""Doppler lidar velocimeter (NASA Navigation Doppler Lidar class): three fixed beams.

At each sample time the plant calls :meth:`DopplerVelocimeter.sample`. Per beam ``k``
(a unit vector ``b_k`` fixed in body axes, rotated to MCI as ``d_k``):

* true range ``rho_k`` = first terrain intersection of the beam (ray cast, as the
  altimeter's boresight); *in range* if there is a hit and ``min_range_m <= rho_k <=
  max_range_m``;
* true line-of-sight velocity ``v_k = -(v - v_s) . d_k``: ``v`` the vehicle's inertial
  velocity, ``v_s`` the inertial velocity of the illuminated surface point (zero on a
  Moon that does not rotate; the plant's surface-velocity function otherwise). It is the
  rate of change of the distance between the vehicle and that point: **negative while
  closing**. This is what a Doppler shift measures; the ray-cast range of a fixed beam
  over sloped ground changes at another rate as the spot slides (documented, not a bug);
* acquisition per beam: valid only once that beam has been in range continuously for
  ``acquisition_s``; out of range restarts it; a dropout does not;
* noise: ``velocity_noise_mps`` and ``sqrt(range_noise_m^2 + (range_noise_fraction rho)^2)``,
  Gaussian, one sigma, per beam; the measured range is clamped at 0;
* dropout: each beam independently invalid with ``dropout_probability``;
* an invalid beam carries 0.0 velocity and 0.0 range (never a stale value) and its bit
  of ``valid_mask`` is clear;
* the sample ``[t_us, v0, v1, v2, r0, r1, r2, valid_mask]`` carries the time it was taken and
  is delivered ``latency_s`` later (first in, first out).

Random numbers: per sample six normals and three uniforms, drawn whether or not any beam
is in range (in blocks of ``_BLOCK`` samples), so the stream does not shift with the
trajectory or the terrain.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Callable

import numpy as np

from plant.config import VelocimeterConfig, cone_beams
from plant.terrain import Terrain

BEAMS = 3
_BLOCK = 64

# post(t_us, true_ranges, true_vlos, sample) -> sample or None; sample = [v0, v1, v2, r0,
# r1, r2, mask]; true_ranges entries None where the beam sees no surface within max range.
PostHook = Callable[[int, list, list, list], "tuple[list, int] | None"]


def ndl_beams(off_nadir_deg: float = 22.5) -> list[list[float]]:
    """Three beams ``off_nadir_deg`` from body -z, 120 degrees apart in azimuth (from +x):
    the default geometry (NASA's NDL points its three beams about 22.5 deg off nadir)."""
    return cone_beams(off_nadir_deg)


def beams_problem(beams: object) -> str | None:
    """Why ``beams`` cannot be the three beam directions, or None if they can."""
    try:
        b = np.asarray(beams, dtype=float)
    except (TypeError, ValueError):
        return "must be three [x, y, z] vectors of numbers"
    if b.shape != (BEAMS, 3):
        return "must be three [x, y, z] vectors"
    if not np.all(np.isfinite(b)):
        return "must be finite"
    norms = np.linalg.norm(b, axis=1)
    if np.any(norms < 1e-6):
        return "must not contain a zero vector"
    if abs(np.linalg.det(b / norms[:, None])) < 1e-3:
        return "must not lie in one plane (three independent directions give a velocity)"
    return None


class DopplerVelocimeter:
    """Sampled three-beam Doppler lidar with acquisition, noise, dropouts and latency."""

    def __init__(self, config: VelocimeterConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rate_hz = float(config.rate_hz)
        self.period_us = int(round(1e6 / self.rate_hz))
        problem = beams_problem(config.beams_body)
        if problem:
            raise ValueError(f"velocimeter beams_body {problem}")
        beams = np.asarray(config.beams_body, dtype=float)
        self.beams_body = beams / np.linalg.norm(beams, axis=1)[:, None]
        self._rng = rng
        self._latency_us = int(round(config.latency_s * 1e6))
        self._acq_us = int(round(config.acquisition_s * 1e6))
        self._lock_start_us: list[int | None] = [None] * BEAMS
        self._pending: deque[tuple[int, list]] = deque()
        self._delivered: list | None = None
        self._normals: list[list[float]] = []
        self._uniforms: list[list[float]] = []
        self._row = 0
        self.last_true_range_m: list[float | None] = [None] * BEAMS
        self.last_true_vlos_mps: list[float] = [0.0] * BEAMS
        self.samples = 0
        self.dropouts = 0

    def _draws(self) -> tuple[list[float], list[float]]:
        if self._row >= len(self._normals):
            self._normals = self._rng.standard_normal((_BLOCK, 2 * BEAMS)).tolist()
            self._uniforms = self._rng.random((_BLOCK, BEAMS)).tolist()
            self._row = 0
        row = self._row
        self._row += 1
        return self._normals[row], self._uniforms[row]

    def sample(self, t_us: int, r_m: np.ndarray, v_mps: np.ndarray, body_to_mci: np.ndarray,
               terrain: Terrain,
               surface_velocity: Callable[[np.ndarray], np.ndarray] | None = None,
               post: PostHook | None = None) -> None:
        """Take the sample at ``t_us`` (MCI position ``r_m``, velocity ``v_mps``, attitude
        matrix body->MCI).

        ``surface_velocity(p)``: inertial velocity of the surface point ``p`` (MCI); None:
        the surface is at rest. ``post(t_us, true_ranges, true_vlos, sample)``, if given,
        sees the model's sample ``[v0, v1, v2, r0, r1, r2, mask]`` and returns ``(sample,
        extra_delay_us)`` to queue instead, or None to queue nothing (``plant/faults.py``).
        """
        cfg = self.config
        normals, uniforms = self._draws()
        self.samples += 1
        # Plain floats but for the beams' directions: numpy's matrix product (BLAS) rounds
        # differently from a written-out sum, and the directions stay as they always were.
        dirs = (np.asarray(body_to_mci, dtype=float) @ self.beams_body.T).T.tolist()
        origin = (float(r_m[0]), float(r_m[1]), float(r_m[2]))
        vx, vy, vz = float(v_mps[0]), float(v_mps[1]), float(v_mps[2])
        out = [0.0] * (2 * BEAMS) + [0]
        true_ranges: list[float | None] = [None] * BEAMS
        true_vlos = [0.0] * BEAMS
        mask = 0
        for k in range(BEAMS):
            d = dirs[k]
            rho = terrain.ray_range_m(origin, d, cfg.max_range_m)
            true_ranges[k] = rho
            if rho is not None and surface_velocity is not None:
                dv = np.asarray(v_mps, dtype=float) - surface_velocity(
                    np.asarray(r_m, dtype=float) + rho * np.asarray(d))
                vlos = -float(dv @ np.asarray(d))
            else:
                vlos = -(vx * d[0] + vy * d[1] + vz * d[2])
            true_vlos[k] = vlos
            if rho is None or not cfg.min_range_m <= rho <= cfg.max_range_m:
                self._lock_start_us[k] = None
                continue
            if self._lock_start_us[k] is None:
                self._lock_start_us[k] = t_us
            if t_us - self._lock_start_us[k] < self._acq_us:
                continue
            if uniforms[k] < cfg.dropout_probability:
                self.dropouts += 1
                continue
            sigma_r = math.hypot(cfg.range_noise_m, cfg.range_noise_fraction * rho)
            out[k] = vlos + cfg.velocity_noise_mps * normals[k]
            out[BEAMS + k] = max(0.0, rho + sigma_r * normals[BEAMS + k])
            mask |= 1 << k
        out[2 * BEAMS] = mask
        self.last_true_range_m = true_ranges
        self.last_true_vlos_mps = true_vlos
        delay_us = self._latency_us
        if post is not None:
            res = post(int(t_us), true_ranges, true_vlos, out)
            if res is None:
                return
            out, extra_us = res
            delay_us += extra_us
        self._pending.append((t_us + delay_us, [int(t_us), *out]))

    def delivered(self, t_us: int) -> list | None:
        """Latest sample ``[t_us, v0, v1, v2, r0, r1, r2, valid_mask]`` delivered by ``t_us``;
        None before the first. Call with non-decreasing times (first in, first out: with a
        varying delay no sample overtakes an earlier one)."""
        pending = self._pending
        while pending and pending[0][0] <= t_us:
            self._delivered = pending.popleft()[1]
        return self._delivered

    def hello_config(self) -> dict:
        """The HELLO config's ``velocimeter`` block: what the flight software is told."""
        c = self.config
        return {"beams_body": self.beams_body.tolist(),
                "velocity_noise_mps": c.velocity_noise_mps, "range_noise_m": c.range_noise_m,
                "range_noise_fraction": c.range_noise_fraction,
                "min_range_m": c.min_range_m, "max_range_m": c.max_range_m,
                "rate_hz": c.rate_hz, "latency_s": c.latency_s}
