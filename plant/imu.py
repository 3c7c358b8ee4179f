"""Strapdown IMU error model: delta-velocity and delta-angle per sample, in body axes.

Per sample interval ``dt = 1/rate_hz`` and per triad (accelerometer on delta-v ``x`` in m/s,
gyro on delta-angle in rad), with the true increment ``x`` over the interval::

    y = (I + S) (I + M) x  +  (b0 + b_gm) dt  +  sigma_w sqrt(dt) n      n ~ N(0, 1)
    y = clip(y, -range dt, +range dt)                                    saturation
    y_out = quantum * round((y + carry) / quantum),  carry <- y + carry - y_out

* ``S`` diagonal scale-factor error, +-scale_ppm with a random sign per axis;
* ``M`` misalignment / non-orthogonality, zero diagonal, off-diagonals N(0, misalignment);
* ``b0`` turn-on bias, N(0, bias) per axis, constant for the run;
* ``b_gm`` bias instability, first-order Gauss-Markov, stationary sigma = instability,
  time constant tau, discretised exactly: ``b <- phi b + sigma sqrt(1 - phi^2) w``,
  ``phi = exp(-dt/tau)``; it starts from its stationary distribution;
* white noise from the random-walk density: ARW deg/sqrt(h) -> rad/sqrt(s) is ``/60 * pi/180``,
  VRW m/s/sqrt(h) -> m/s/sqrt(s) is ``/60``; the noise on one increment is density*sqrt(dt),
  so the noise integrated over 1 s is the density whatever the rate (Basilisk's imuSensor
  does not scale by dt, so its level depends on the task rate);
* saturation clips the interval-mean rate / specific force (plus noise) to the range;
* quantisation carries its residual to the next sample, so sums stay unbiased.

All errors are residuals after calibration. Randomness comes only from the given generator:
the unit's errors are drawn at construction, then normals are drawn in blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from plant.config import ImuConfig
from plant.moon import G0_MPS2

DEG = math.pi / 180.0
_BLOCK = 256            # samples of random normals drawn at once

# Datasheet-unit parameters per preset; an ImuConfig field left None takes these.
PRESETS: dict[str, dict[str, float]] = {
    # Navigation grade, space-qualified (Honeywell MIMU class: ring-laser gyros,
    # quartz-flexure accelerometers), residuals after in-orbit calibration. The default:
    # without a velocimeter or star tracker, a tactical unit's angle random walk over a
    # 10-minute braking burn leaves about 1 m/s of horizontal velocity error at touchdown.
    "navigation": {
        "gyro_bias_dph": 0.005,
        "gyro_bias_instability_dph": 0.005,
        "gyro_arw_dpsh": 0.005,
        "gyro_scale_ppm": 5.0,
        "gyro_range_dps": 375.0,
        "gyro_quantum_rad": 1e-7,
        "accel_bias_ug": 25.0,
        "accel_bias_instability_ug": 10.0,
        "accel_vrw_mpsh": 0.02,
        "accel_scale_ppm": 20.0,
        "accel_range_g": 10.0,
        "accel_quantum_mps": 1e-6,
        "misalignment_mrad": 0.02,
        "bias_correlation_time_s": 600.0,
    },
    # Tactical grade (Safran STIM300 / Honeywell HG1700 class), residuals after calibration.
    "tactical": {
        "gyro_bias_dph": 0.5,
        "gyro_bias_instability_dph": 0.5,
        "gyro_arw_dpsh": 0.15,
        "gyro_scale_ppm": 50.0,
        "gyro_range_dps": 400.0,
        "gyro_quantum_rad": 1e-7,
        "accel_bias_ug": 50.0,
        "accel_bias_instability_ug": 50.0,
        "accel_vrw_mpsh": 0.06,
        "accel_scale_ppm": 50.0,
        "accel_range_g": 10.0,
        "accel_quantum_mps": 1e-6,
        "misalignment_mrad": 0.05,
        "bias_correlation_time_s": 300.0,
    },
    # Industrial MEMS (Analog Devices ADIS16470 class), residuals after calibration.
    "mems": {
        "gyro_bias_dph": 20.0,
        "gyro_bias_instability_dph": 8.0,
        "gyro_arw_dpsh": 0.48,          # 0.008 deg/s/sqrt(Hz) * 60
        "gyro_scale_ppm": 500.0,
        "gyro_range_dps": 2000.0,
        "gyro_quantum_rad": 1e-6,
        "accel_bias_ug": 300.0,
        "accel_bias_instability_ug": 13.0,
        "accel_vrw_mpsh": 0.04,
        "accel_scale_ppm": 500.0,
        "accel_range_g": 40.0,
        "accel_quantum_mps": 1e-5,
        "misalignment_mrad": 1.0,
        "bias_correlation_time_s": 100.0,
    },
    # Perfect unit: returns the truth.
    "ideal": {
        "gyro_bias_dph": 0.0,
        "gyro_bias_instability_dph": 0.0,
        "gyro_arw_dpsh": 0.0,
        "gyro_scale_ppm": 0.0,
        "gyro_range_dps": math.inf,
        "gyro_quantum_rad": 0.0,
        "accel_bias_ug": 0.0,
        "accel_bias_instability_ug": 0.0,
        "accel_vrw_mpsh": 0.0,
        "accel_scale_ppm": 0.0,
        "accel_range_g": math.inf,
        "accel_quantum_mps": 0.0,
        "misalignment_mrad": 0.0,
        "bias_correlation_time_s": 3600.0,
    },
}


def resolve_imu_config(config: ImuConfig) -> dict[str, float]:
    """Datasheet-unit parameters: the config's fields, None ones from its preset."""
    if config.preset not in PRESETS:
        raise ValueError(f"unknown IMU preset {config.preset!r}; allowed: "
                         + ", ".join(sorted(PRESETS)))
    out = dict(PRESETS[config.preset])
    for key in out:
        value = getattr(config, key)
        if value is not None:
            out[key] = float(value)
    return out


def to_si(p: dict[str, float]) -> dict[str, float]:
    """Convert datasheet-unit parameters to SI (rad, s, m)."""
    ug = 1e-6 * G0_MPS2
    return {
        "gyro_bias_radps": p["gyro_bias_dph"] * DEG / 3600.0,
        "gyro_bias_instability_radps": p["gyro_bias_instability_dph"] * DEG / 3600.0,
        "gyro_arw_rad_per_sqrt_s": p["gyro_arw_dpsh"] * DEG / 60.0,
        "gyro_scale": p["gyro_scale_ppm"] * 1e-6,
        "gyro_range_radps": p["gyro_range_dps"] * DEG,
        "gyro_quantum_rad": p["gyro_quantum_rad"],
        "accel_bias_mps2": p["accel_bias_ug"] * ug,
        "accel_bias_instability_mps2": p["accel_bias_instability_ug"] * ug,
        "accel_vrw_mps_per_sqrt_s": p["accel_vrw_mpsh"] / 60.0,
        "accel_scale": p["accel_scale_ppm"] * 1e-6,
        "accel_range_mps2": p["accel_range_g"] * G0_MPS2,
        "accel_quantum_mps": p["accel_quantum_mps"],
        "misalignment_rad": p["misalignment_mrad"] * 1e-3,
        "bias_correlation_time_s": p["bias_correlation_time_s"],
    }


class Imu:
    """One IMU unit: its errors are drawn once from ``rng``, then it measures increments.

    The hot path (:meth:`sample`) is plain Python floats: per sample a few dozen float
    operations, no numpy call. Normals are drawn ``_BLOCK`` samples at a time (the same
    stream as drawing them sample by sample) and multiplied by their sigmas per block.
    """

    def __init__(self, config: ImuConfig, rate_hz: float, rng: np.random.Generator) -> None:
        self.preset = config.preset
        self.datasheet = resolve_imu_config(config)
        si = to_si(self.datasheet)
        self.rate_hz = float(rate_hz)
        self.dt_s = 1.0 / self.rate_hz
        self.params: dict[str, float | str] = {"preset": config.preset, "rate_hz": self.rate_hz,
                                              "dt_s": self.dt_s, **si}
        self._rng = rng
        dt = self.dt_s

        # Stacked 6-vectors: accelerometer (delta-v) axes 0..2, gyro (delta-angle) 3..5.
        def pair(a: float, g: float) -> np.ndarray:
            return np.array([a, a, a, g, g, g], dtype=float)

        scale = pair(si["accel_scale"], si["gyro_scale"])
        bias = pair(si["accel_bias_mps2"], si["gyro_bias_radps"])
        gm_sigma = pair(si["accel_bias_instability_mps2"], si["gyro_bias_instability_radps"])
        noise = pair(si["accel_vrw_mps_per_sqrt_s"], si["gyro_arw_rad_per_sqrt_s"])
        rng_lim = pair(si["accel_range_mps2"], si["gyro_range_radps"])
        quantum = pair(si["accel_quantum_mps"], si["gyro_quantum_rad"])
        mis = si["misalignment_rad"]

        # The unit's own errors, in a fixed draw order.
        self.scale_error = scale * np.where(rng.random(6) < 0.5, -1.0, 1.0)
        self.turn_on_bias = bias * rng.standard_normal(6)      # m/s^2 (0..2), rad/s (3..5)
        off = np.ones((3, 3)) - np.eye(3)
        self.accel_misalignment = mis * rng.standard_normal((3, 3)) * off
        self.gyro_misalignment = mis * rng.standard_normal((3, 3)) * off
        gm0 = gm_sigma * rng.standard_normal(6)                # starts stationary

        acc = np.diag(1.0 + self.scale_error[:3]) @ (np.eye(3) + self.accel_misalignment)
        gyr = np.diag(1.0 + self.scale_error[3:]) @ (np.eye(3) + self.gyro_misalignment)
        self._a = acc.tolist() + gyr.tolist()                  # row i of the triad's matrix
        self._bias_dt = (self.turn_on_bias * dt).tolist()
        self._noise_sigma = noise * math.sqrt(dt)
        phi = math.exp(-dt / si["bias_correlation_time_s"])
        self._gm = gm0.tolist()
        self._gm_phi = phi
        self._gm_drive = gm_sigma * math.sqrt(1.0 - phi * phi)
        self._gm_dt = dt
        limit = rng_lim * dt
        self._limit = limit.tolist()
        self._saturates = bool(np.isfinite(limit).any())
        self._quantum = quantum.tolist()
        self._quantised = bool((quantum > 0.0).any())
        self._carry = [0.0] * 6
        self._noise: list[list[float]] = []        # per sample: 6 white-noise increments
        self._drive: list[list[float]] = []        # per sample: 6 Gauss-Markov drives
        self._row = 0
        self.samples = 0

    @property
    def gm_bias(self) -> np.ndarray:
        """Current Gauss-Markov bias (m/s^2 for 0..2, rad/s for 3..5)."""
        return np.array(self._gm)

    def _refill(self) -> None:
        z = self._rng.standard_normal((_BLOCK, 12))
        self._noise = (z[:, :6] * self._noise_sigma).tolist()
        self._drive = (z[:, 6:] * self._gm_drive).tolist()
        self._row = 0

    def sample(self, dv_true: Sequence[float], dtheta_true: Sequence[float]) -> list[float]:
        """Measured ``[dvx, dvy, dvz, dax, day, daz]`` (m/s, rad; body axes) for one interval.

        ``dv_true`` and ``dtheta_true`` are three floats each (any sequence).
        """
        row = self._row
        if row >= len(self._noise):
            self._refill()
            row = 0
        self._row = row + 1
        self.samples += 1
        n, d, g, b = self._noise[row], self._drive[row], self._gm, self._bias_dt
        dt, phi = self._gm_dt, self._gm_phi
        a0, a1, a2, a3, a4, a5 = self._a
        x0, x1, x2 = dv_true
        x3, x4, x5 = dtheta_true
        # Written out per axis: a loop costs a third more on this hot path.
        y = [((a0[0] * x0 + a0[1] * x1 + a0[2] * x2) + b[0] + g[0] * dt) + n[0],
             ((a1[0] * x0 + a1[1] * x1 + a1[2] * x2) + b[1] + g[1] * dt) + n[1],
             ((a2[0] * x0 + a2[1] * x1 + a2[2] * x2) + b[2] + g[2] * dt) + n[2],
             ((a3[0] * x3 + a3[1] * x4 + a3[2] * x5) + b[3] + g[3] * dt) + n[3],
             ((a4[0] * x3 + a4[1] * x4 + a4[2] * x5) + b[4] + g[4] * dt) + n[4],
             ((a5[0] * x3 + a5[1] * x4 + a5[2] * x5) + b[5] + g[5] * dt) + n[5]]
        # Gauss-Markov step to the next interval.
        g[0] = g[0] * phi + d[0]
        g[1] = g[1] * phi + d[1]
        g[2] = g[2] * phi + d[2]
        g[3] = g[3] * phi + d[3]
        g[4] = g[4] * phi + d[4]
        g[5] = g[5] * phi + d[5]
        if self._saturates:
            for i, lim in enumerate(self._limit):
                v = y[i]
                if v > lim:
                    y[i] = lim
                elif v < -lim:
                    y[i] = -lim
        if self._quantised:
            carry = self._carry
            for i, q in enumerate(self._quantum):
                v = y[i] + carry[i]
                if q > 0.0:
                    o = round(v / q) * q            # half to even, like numpy
                    if o == 0.0:
                        o = math.copysign(0.0, v)   # numpy keeps the sign of a zero
                    carry[i] = v - o
                    y[i] = o
                else:
                    y[i] = v                        # carry stays 0.0 on an unquantised axis
        return y

    def measure(self, dv_true: np.ndarray, dtheta_true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measured (delta-v m/s, delta-angle rad) in body axes for one sample interval."""
        y = self.sample(np.asarray(dv_true, dtype=float).tolist(),
                        np.asarray(dtheta_true, dtype=float).tolist())
        return np.array(y[:3]), np.array(y[3:])
