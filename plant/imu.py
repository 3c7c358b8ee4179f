"""Strapdown IMU error model: delta-velocity and delta-angle per sample, in body axes.

Per sample interval ``dt = 1/rate_hz`` and per triad (accelerometer on delta-v ``x`` in m/s,
gyro on delta-angle in rad), with the true increment ``x`` over the interval::

    y = (I + S) (I + M) x  +  (b0 + b_f) dt  +  sigma_w sqrt(dt) n       n ~ N(0, 1)
    y = clip(y, -range dt, +range dt)                                    saturation
    y_out = quantum * round((y + carry) / quantum),  carry <- y + carry - y_out

* ``S`` diagonal scale-factor error, +-scale_ppm with a random sign per axis;
* ``M`` misalignment / non-orthogonality, zero diagonal, off-diagonals N(0, misalignment);
* ``b0`` turn-on bias, N(0, bias) per axis, constant for the run;
* ``b_f`` bias instability: flicker (1/f) noise approximated by a bank of first-order
  Gauss-Markov processes per axis (:class:`FlickerBias`), so that the Allan deviation has
  a flat floor of 0.664 x instability (IEEE Std 952's reading) for averaging times from
  10 s to ``bias_correlation_time_s``; it starts from its stationary distribution;
* white noise from the random-walk density: ARW deg/sqrt(h) -> rad/sqrt(s) is ``/60 * pi/180``,
  VRW m/s/sqrt(h) -> m/s/sqrt(s) is ``/60``; the noise on one increment is density*sqrt(dt),
  so the noise integrated over 1 s is the density whatever the rate (Basilisk's imuSensor
  does not scale by dt, so its level depends on the task rate);
* saturation clips the interval-mean rate / specific force (plus noise) to the range;
* quantisation carries its residual to the next sample, so sums stay unbiased.

All errors are residuals after calibration. Randomness comes only from the given generator:
the unit's errors are drawn at construction, then normals are drawn in blocks: everything
that does not depend on the true increment (biases and noise) is computed for
``_BLOCK`` samples at a time with numpy, and the per-sample hot path is plain floats.
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


FLICKER_FLOOR = math.sqrt(2.0 * math.log(2.0) / math.pi)   # 0.664: Allan floor / instability
FLOOR_START_S = 10.0        # the flicker floor is flat from this averaging time ...
_BANK_SPACING = math.sqrt(10.0)   # ... with one Gauss-Markov process per half decade
_BANK_CHUNK = 64            # bank updates computed at once


def gauss_markov_avar(tau_s: np.ndarray | float, sigma: float, corr_s: float) -> np.ndarray:
    """Allan variance of a first-order Gauss-Markov process (stationary sigma, time constant).

    ``(2 sigma^2 T / tau) (1 - (T / 2 tau)(3 - 4 e^(-tau/T) + e^(-2 tau/T)))``: it peaks at
    about (0.62 sigma)^2 near tau = 1.9 T and falls as 1/tau beyond (no flat floor).
    """
    x = np.asarray(tau_s, dtype=float) / corr_s
    return 2.0 * sigma * sigma / x * (1.0 - (3.0 - 4.0 * np.exp(-x) + np.exp(-2.0 * x)) / (2.0 * x))


def ar1_scan(x0: np.ndarray, phi: np.ndarray | float, w: np.ndarray) -> np.ndarray:
    """States ``x[1..n]`` of ``x[j] = phi x[j-1] + w[j-1]`` from ``x0``; ``w`` (n, ...) is
    overwritten and returned. A log-depth prefix scan (numpy), not a Python loop."""
    w[0] += phi * x0
    p, s, n = phi, 1, w.shape[0]
    while s < n:
        w[s:] += p * w[:-s]
        p, s = p * p, 2 * s
    return w


class FlickerBias:
    """Bias instability as flicker noise: a bank of Gauss-Markov processes per channel.

    Flicker (1/f) noise has an Allan deviation flat at ``0.664 B`` (B the bias
    instability, IEEE Std 952). A sum of first-order Gauss-Markov processes whose time
    constants are spaced by half a decade, each of the same variance, has a 1/f spectrum
    between its slowest and fastest corners (Keshner's construction). The bank runs
    from ``10 x floor_end_s`` down to ``min(1 s, floor_end_s / 10)``, a decade beyond the
    floor at each end, so the Allan deviation is flat within about 3 % for averaging times
    from ``FLOOR_START_S`` (10 s) to ``floor_end_s``; the common variance is set so that the
    floor's geometric mean over that range is ``0.664 B``.

    The bank is discretised exactly (``b <- phi b + sigma sqrt(1 - phi^2) w``) with an update
    period of a tenth of its fastest time constant (a whole number of ``sample_s``) and held
    between updates; it starts from its stationary distribution. Updates are computed
    ``_BANK_CHUNK`` at a time (an exact recursion, evaluated as a log-depth prefix scan).
    """

    def __init__(self, instability: np.ndarray, floor_end_s: float, sample_s: float,
                 rng: np.random.Generator) -> None:
        self.instability = np.asarray(instability, dtype=float)     # B per channel
        self.floor_end_s = float(floor_end_s)
        slow = 10.0 * self.floor_end_s
        fast = min(1.0, self.floor_end_s / 10.0)
        k = 1 + math.ceil(math.log(slow / fast) / math.log(_BANK_SPACING) - 1e-9)
        self.time_constants_s = slow / _BANK_SPACING ** np.arange(k)
        self.update_samples = max(1, round(0.1 * self.time_constants_s[-1] / sample_s))
        self.update_s = self.update_samples * sample_s
        self.unit_sigma = self._unit_sigma()       # per component, for B = 1
        sigma = np.outer(self.instability, np.full(k, self.unit_sigma))   # (channels, k)
        self._phi = np.exp(-self.update_s / self.time_constants_s)        # (k,)
        self._drive = sigma * np.sqrt(1.0 - self._phi ** 2)
        self._rng = rng
        self.active = bool(np.any(sigma > 0.0))
        self._state = sigma * rng.standard_normal(sigma.shape) if self.active \
            else np.zeros(sigma.shape)

    def _unit_sigma(self) -> float:
        lo, hi = FLOOR_START_S, max(FLOOR_START_S, self.floor_end_s)
        tau = np.geomspace(lo, hi, 64)
        avar = sum(gauss_markov_avar(tau, 1.0, t) for t in self.time_constants_s)
        level = math.exp(0.5 * float(np.mean(np.log(avar))))     # geometric-mean ADEV
        return FLICKER_FLOOR / level

    def allan_deviation(self, tau_s: np.ndarray | float) -> np.ndarray:
        """The bank's Allan deviation per unit of instability (closed form, continuous time)."""
        return np.sqrt(sum(gauss_markov_avar(tau_s, self.unit_sigma, t)
                           for t in self.time_constants_s))

    @property
    def value(self) -> np.ndarray:
        """The current bias per channel (the bank's sum)."""
        return self._state.sum(axis=1)

    def next(self, n: int) -> np.ndarray:
        """The bias for the next ``n`` updates, shape ``(n, channels)``: first the current
        value, then one update later, and so on (the state advances by ``n`` updates)."""
        out = np.empty((n, self._state.shape[0]))
        for i in range(0, n, _BANK_CHUNK):
            m = min(_BANK_CHUNK, n - i)
            if not self.active:
                out[i:i + m] = 0.0
                continue
            w = self._rng.standard_normal((m,) + self._state.shape) * self._drive
            states = ar1_scan(self._state, self._phi, w)
            out[i] = self._state.sum(axis=1)
            out[i + 1:i + m] = states[:m - 1].sum(axis=2)
            self._state = states[m - 1]
        return out


class Imu:
    """One IMU unit: its errors are drawn once from ``rng``, then it measures increments.

    The hot path (:meth:`sample`) is plain Python floats: per sample a 3x3 product per
    triad, one addition, saturation and quantisation. Biases and white noise are computed
    ``_BLOCK`` samples at a time with numpy.
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
        instability = pair(si["accel_bias_instability_mps2"], si["gyro_bias_instability_radps"])
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
        self.flicker = FlickerBias(instability, si["bias_correlation_time_s"], dt, rng)
        self.params["bias_bank_time_constants_s"] = self.flicker.time_constants_s.tolist()
        self.params["bias_bank_update_s"] = self.flicker.update_s

        acc = np.diag(1.0 + self.scale_error[:3]) @ (np.eye(3) + self.accel_misalignment)
        gyr = np.diag(1.0 + self.scale_error[3:]) @ (np.eye(3) + self.gyro_misalignment)
        self._a = acc.tolist() + gyr.tolist()                  # row i of the triad's matrix
        self._noise_sigma = noise * math.sqrt(dt)
        self._noisy = bool(np.any(self._noise_sigma > 0.0))
        limit = rng_lim * dt
        self._limit = limit.tolist()
        self._saturates = bool(np.isfinite(limit).any())
        self._quantum = quantum.tolist()
        self._quantised = bool((quantum > 0.0).any())
        self._carry = [0.0] * 6
        self._err_block = np.empty((0, 6))    # per sample: bias and noise increments
        self._err: list[list[float]] | None = None   # the same as lists, made when needed
        self._bank_block = np.zeros((1, 6))   # per sample: the bank's bias in force
        self._row = 0
        self._bank: np.ndarray = np.empty((0, 6))   # bank values from update _bank_j0 on
        self._bank_j0 = 0
        self.samples = 0

    @property
    def gm_bias(self) -> np.ndarray:
        """Bias-instability part of the bias in force over the last sample (before the first:
        over the first), m/s^2 for 0..2, rad/s for 3..5."""
        if not len(self._err_block):
            self._refill()
        return self._bank_block[max(self._row - 1, 0)].copy()

    def _bank_values(self, n0: int, n: int) -> np.ndarray:
        """Bank bias in force over samples ``n0 .. n0+n-1``, shape (n, 6)."""
        per = self.flicker.update_samples
        j = (n0 + np.arange(n)) // per
        end = self._bank_j0 + self._bank.shape[0]
        if j[-1] >= end:
            keep = self._bank[j[0] - self._bank_j0:]
            more = self.flicker.next(int(j[-1] + 1 - end))
            self._bank = np.concatenate((keep, more))
            self._bank_j0 = int(j[0])
        return self._bank[j - self._bank_j0]

    def _refill(self) -> None:
        bank = self._bank_values(self.samples, _BLOCK)              # (BLOCK, 6)
        err = (self.turn_on_bias + bank) * self.dt_s
        if self._noisy:
            err += self._rng.standard_normal((_BLOCK, 6)) * self._noise_sigma
        self._bank_block = bank
        self._err_block = np.ascontiguousarray(err)
        self._err = None          # (the plant's kernel reads the array; sample() the lists)
        self._row = 0

    # HELLO config ``imu``: the unit's grade as the flight software is told it (SI units).
    HELLO_KEYS = ("gyro_bias_radps", "gyro_bias_instability_radps", "gyro_arw_rad_per_sqrt_s",
                  "gyro_scale", "accel_bias_mps2", "accel_bias_instability_mps2",
                  "accel_vrw_mps_per_sqrt_s", "accel_scale", "misalignment_rad",
                  "bias_correlation_time_s")

    def hello_config(self) -> dict:
        """The HELLO config's ``imu`` block: the preset's error figures (one sigma, after
        calibration), so a flight software can size its filter's process noise."""
        out: dict[str, float | str] = {k: float(self.params[k]) for k in self.HELLO_KEYS}
        out["preset"] = self.preset
        return out

    def kernel_params(self) -> tuple[np.ndarray, list[float], list[float], bool, bool]:
        """For the plant's compiled kernel (``plant/kernel.py``): the triads' matrices (6 x 3),
        the limits and quanta per sample, and the saturation and quantisation switches.
        The kernel reads the errors from ``_err_block`` at ``_row`` and carries ``_carry``
        (the plant copies both in and out)."""
        return (np.array(self._a, dtype=float), list(self._limit), list(self._quantum),
                self._saturates, self._quantised)

    def sample(self, dv_true: Sequence[float], dtheta_true: Sequence[float]) -> list[float]:
        """Measured ``[dvx, dvy, dvz, dax, day, daz]`` (m/s, rad; body axes) for one interval.

        ``dv_true`` and ``dtheta_true`` are three floats each (any sequence).
        """
        row = self._row
        if row >= len(self._err_block):
            self._refill()
            row = 0
        self._row = row + 1
        self.samples += 1
        err = self._err
        if err is None:
            err = self._err = self._err_block.tolist()
        e = err[row]
        a0, a1, a2, a3, a4, a5 = self._a
        x0, x1, x2 = dv_true
        x3, x4, x5 = dtheta_true
        # Written out per axis: a loop costs a third more on this hot path.
        y = [a0[0] * x0 + a0[1] * x1 + a0[2] * x2 + e[0],
             a1[0] * x0 + a1[1] * x1 + a1[2] * x2 + e[1],
             a2[0] * x0 + a2[1] * x1 + a2[2] * x2 + e[2],
             a3[0] * x3 + a3[1] * x4 + a3[2] * x5 + e[3],
             a4[0] * x3 + a4[1] * x4 + a4[2] * x5 + e[4],
             a5[0] * x3 + a5[1] * x4 + a5[2] * x5 + e[5]]
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
                if q > 0.0:
                    v = y[i] + carry[i]
                    o = round(v / q) * q            # half to even
                    carry[i] = v - o
                    y[i] = o
        return y

    def measure(self, dv_true: np.ndarray, dtheta_true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measured (delta-v m/s, delta-angle rad) in body axes for one sample interval."""
        y = self.sample(np.asarray(dv_true, dtype=float).tolist(),
                        np.asarray(dtheta_true, dtype=float).tolist())
        return np.array(y[:3]), np.array(y[3:])
