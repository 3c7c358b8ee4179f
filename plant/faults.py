"""Sensor faults: scheduled in the scenario (``[[faults]]``) or commanded during a run.

A fault acts on a sensor's *output*, after the sensor model (``plant/altimeter.py``,
``plant/imu.py``): the model runs as always -- same random draws, same acquisition -- and
the fault then changes, invalidates, delays or withholds what the unit delivers. So a run
with faults shares its sensor noise with the same seed's run without them, and a run with
none is bit-for-bit the run it was before faults existed.

Life of a fault (:class:`Fault`):

* **armed** when added (at reset for the scenario's, when the request arrives for injected
  ones);
* **fired** at the first moment all of its triggers hold: sim time ``>= at_time_s``; the true
  altitude above the terrain ``< below_altitude_m`` (if given; checked every physics step);
  the altimeter's true slant range ``< below_range_m`` (if given; checked at each altimeter
  sample, and that sample is already affected; no surface within the maximum range counts
  as infinitely far);
* **active** from firing until sim time ``>= until_time_s`` (if given) or until cleared;
* **ended** (``cleared_t_s``, ``cleared_by`` = ``"until"`` or ``"clear"``). A fault whose
  ``until_time_s`` passes before it fired ends without firing.

Altimeter kinds (``value`` unit in brackets), applied to each sample taken while active:

==========  =====================================================================
off         no sample at all: the frame keeps carrying the last delivered one
stuck       the last valid range delivered before firing, flagged valid, every
            sample (a frozen unit); invalid if the unit had no valid range yet
bias        range + value [m]
scale       range + value * true range (so true * (1 + value) plus the model noise)
noise       range + value * N(0, 1) [m, one sigma]
dropout     invalid with probability value [0..1]
spike       range + magnitude [m] with probability value [0..1] (still valid)
late        invalid while the true range > value [m]; below it the unit acquires
            again: valid once it has been below value for the altimeter's
            acquisition_s (any sample above value restarts that)
latency     delivered value [s] later (on top of the model's latency_s)
==========  =====================================================================

Precedence in one sample: the additive kinds (scale, bias, noise, spike) on a valid
sample, clamped at 0 m; then late and dropout invalidate it (an invalid sample has range
0); then stuck replaces it; latency delays it; off withholds it. Random numbers (noise:
one normal, dropout and spike: one uniform per active fault per sample) come from the
plant's fourth generator, drawn whether or not the sample is valid.

IMU kinds, on one ``channel`` (``accel``: delta-velocity, ``gyro``: delta-angle) and one
``axis`` (0, 1, 2; -1 or none: all three), per sample of interval ``dt = 1 / imu_hz``:

==========  =====================================================================
bias        + value * dt  (value in m/s^2 for accel, rad/s for gyro)
scale       + value * true increment
saturation  clipped to +-value * dt (value in m/s^2 or rad/s)
stuck_axis  the axis repeats the increment it delivered last before firing
off         no samples: frames carry an empty IMU list (whole unit; no channel)
==========  =====================================================================

Precedence: scale and bias, then saturation, then stuck_axis, then off.

The IMU samples with faults applied are what the frames carry: the history's ``imu_*``
columns show them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from plant.config import FaultConfig

ALTIMETER_KINDS = ("off", "stuck", "bias", "scale", "noise", "dropout", "spike", "late", "latency",
                   "power", "sensitivity")
IMU_KINDS = ("bias", "scale", "saturation", "stuck_axis", "off")
VELOCIMETER_KINDS = ("off", "stuck", "bias", "scale", "noise", "dropout", "late", "latency",
                     "unflagged")
STAR_TRACKER_KINDS = ("off", "blind", "stuck", "bias", "noise", "dropout", "latency")
KINDS: dict[str, tuple[str, ...]] = {"altimeter": ALTIMETER_KINDS, "imu": IMU_KINDS,
                                     "velocimeter": VELOCIMETER_KINDS,
                                     "star_tracker": STAR_TRACKER_KINDS}
CHANNELS = ("accel", "gyro")
VEL_CHANNELS = ("velocity", "range")
_VEL_ADDITIVE = ("bias", "scale", "noise")          # take channel
_VEL_UNIT_WIDE = ("off", "latency")                 # the whole unit: no beam
MAX_EXTRA_LATENCY_S = 60.0
ARCSEC_RAD = math.pi / (180.0 * 3600.0)
MAX_ST_BIAS_ARCSEC = 180.0 * 3600.0   # a rotation of at most half a turn

_INF = math.inf

# value rule per (sensor, kind): (needed?, lo, hi, lo_open, hi_open, what it is)
# needed False = the kind takes no value.
_VALUE_RULES: dict[tuple[str, str], tuple[bool, float, float, bool, bool, str]] = {
    ("altimeter", "off"): (False, 0, 0, False, False, ""),
    ("altimeter", "stuck"): (False, 0, 0, False, False, ""),
    ("altimeter", "bias"): (True, -_INF, _INF, True, True, "the range offset in m"),
    ("altimeter", "scale"): (True, -1.0, _INF, True, True,
                             "the scale error as a fraction: measured = true * (1 + value)"),
    ("altimeter", "noise"): (True, 0.0, _INF, True, True, "the extra one-sigma noise in m"),
    ("altimeter", "dropout"): (True, 0.0, 1.0, False, False,
                               "the probability that a sample is lost"),
    ("altimeter", "spike"): (True, 0.0, 1.0, False, False,
                             "the probability of a spike per sample"),
    ("altimeter", "late"): (True, 0.0, _INF, True, True,
                            "the range in m below which samples become valid"),
    ("altimeter", "latency"): (True, 0.0, MAX_EXTRA_LATENCY_S, True, False,
                               "the extra delivery delay in s"),
    ("altimeter", "power"): (True, 0.0, _INF, True, True,
                             "the laser power as a fraction of nominal (link budget)"),
    ("altimeter", "sensitivity"): (True, 0.0, _INF, True, True,
                                   "the factor on the receiver's minimum detectable power "
                                   "(link budget; > 1 is worse)"),
    ("imu", "bias"): (True, -_INF, _INF, True, True,
                      "the bias in m/s^2 (accel) or rad/s (gyro)"),
    ("imu", "scale"): (True, -1.0, _INF, True, True, "the scale error as a fraction"),
    ("imu", "saturation"): (True, 0.0, _INF, True, True,
                            "the limit in m/s^2 (accel) or rad/s (gyro)"),
    ("imu", "stuck_axis"): (False, 0, 0, False, False, ""),
    ("imu", "off"): (False, 0, 0, False, False, ""),
    ("velocimeter", "off"): (False, 0, 0, False, False, ""),
    ("velocimeter", "stuck"): (False, 0, 0, False, False, ""),
    ("velocimeter", "unflagged"): (False, 0, 0, False, False, ""),
    ("velocimeter", "bias"): (True, -_INF, _INF, True, True,
                              "the offset in m/s (channel velocity) or m (channel range)"),
    ("velocimeter", "scale"): (True, -1.0, _INF, True, True,
                               "the scale error as a fraction: measured = true * (1 + value)"),
    ("velocimeter", "noise"): (True, 0.0, _INF, True, True,
                               "the extra one-sigma noise in m/s or m"),
    ("velocimeter", "dropout"): (True, 0.0, 1.0, False, False,
                                 "the probability that a beam's sample is lost"),
    ("velocimeter", "late"): (True, 0.0, _INF, True, True,
                              "the beam range in m below which beams become valid"),
    ("velocimeter", "latency"): (True, 0.0, MAX_EXTRA_LATENCY_S, True, False,
                                 "the extra delivery delay in s"),
    ("star_tracker", "off"): (False, 0, 0, False, False, ""),
    ("star_tracker", "blind"): (False, 0, 0, False, False, ""),
    ("star_tracker", "stuck"): (False, 0, 0, False, False, ""),
    ("star_tracker", "bias"): (True, -MAX_ST_BIAS_ARCSEC, MAX_ST_BIAS_ARCSEC, False, False,
                               "the rotation in arcsec about the tracker's axis `axis`"),
    ("star_tracker", "noise"): (True, 0.0, _INF, True, True,
                                "the extra one-sigma noise in arcsec about each axis"),
    ("star_tracker", "dropout"): (True, 0.0, 1.0, False, False,
                                  "the probability that a sample is invalid"),
    ("star_tracker", "latency"): (True, 0.0, MAX_EXTRA_LATENCY_S, True, False,
                                  "the extra delivery delay in s"),
}


class FaultSpecError(ValueError):
    """A fault description that cannot be used: ``key`` is the offending field."""

    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason
        super().__init__(reason)


def _num(x: float) -> str:
    return f"{x:g}"


def check_fault(f: FaultConfig) -> None:
    """Check one fault's sensor/kind combination and the parameters its kind needs.

    Ranges of single fields are the loader's job (``plant.config`` metadata); this checks
    what depends on the kind. Raises :class:`FaultSpecError`.
    """
    sensors = ", ".join(KINDS)
    if f.sensor is None:
        raise FaultSpecError("sensor", f"needs sensor ({' | '.join(KINDS)})")
    if f.sensor not in KINDS:
        raise FaultSpecError("sensor", f'sensor = "{f.sensor}" is not one of {sensors}')
    kinds = KINDS[f.sensor]
    if f.kind is None:
        raise FaultSpecError("kind", f"needs kind; {f.sensor} faults: {', '.join(kinds)}")
    if f.kind not in kinds:
        raise FaultSpecError("kind", f'kind = "{f.kind}" is not an {f.sensor} fault; '
                                     f"{f.sensor} faults: {', '.join(kinds)}")
    what = f'kind = "{f.kind}"'
    needed, lo, hi, lo_open, hi_open, meaning = _VALUE_RULES[(f.sensor, f.kind)]
    if needed:
        if f.value is None:
            raise FaultSpecError("value", f"{what} needs value ({meaning})")
        v = float(f.value)
        below = v <= lo if lo_open else v < lo
        above = v >= hi if hi_open else v > hi
        if not math.isfinite(v) or below or above:
            lo_s = "" if lo == -_INF else f"{'>' if lo_open else '>='} {_num(lo)}"
            hi_s = "" if hi == _INF else f"{'<' if hi_open else '<='} {_num(hi)}"
            bounds = " and ".join(s for s in (lo_s, hi_s) if s) or "finite"
            raise FaultSpecError("value", f"value = {_num(v)} for {what} must be {bounds} "
                                          f"({meaning})")
    elif f.value is not None:
        raise FaultSpecError("value", f"value is not used by {what}")
    if f.kind == "spike" and f.sensor == "altimeter":
        if f.magnitude is None or f.magnitude == 0.0:
            raise FaultSpecError("magnitude", f"{what} needs magnitude (the spike size in m, "
                                              f"non-zero; negative reads short)")
    elif f.magnitude is not None:
        raise FaultSpecError("magnitude", f"magnitude is not used by {f.sensor} {what}")
    if f.sensor == "velocimeter":
        _check_velocimeter_keys(f, what)
    elif f.sensor == "star_tracker":
        if f.channel is not None:
            raise FaultSpecError("channel", "channel is not used by star_tracker faults")
        if f.axis is not None:
            if f.kind != "bias":
                raise FaultSpecError("axis", f"axis is used by star_tracker bias only, not {what}")
            if f.axis not in (0, 1, 2):
                raise FaultSpecError("axis", f"axis = {f.axis} must be 0 or 1 (across the "
                                             f"boresight) or 2 (about it) for star_tracker bias")
    elif f.sensor == "altimeter" or f.kind == "off":
        for key in ("channel", "axis"):
            if getattr(f, key) is not None:
                which = "imu faults other than off" if f.sensor == "imu" \
                    else "imu faults and velocimeter bias, scale, noise"
                raise FaultSpecError(key, f"{key} is only for {which}")
    else:
        if f.channel is None:
            raise FaultSpecError("channel", f"imu {what} needs channel = accel or gyro")
        if f.channel not in CHANNELS:
            raise FaultSpecError("channel", f'channel = "{f.channel}" is not one of accel, gyro')
        if f.axis is not None and f.axis not in (-1, 0, 1, 2):
            raise FaultSpecError("axis", f"axis = {f.axis} must be 0, 1, 2 or -1 (all)")
    if f.sensor != "velocimeter" and f.beam is not None:
        raise FaultSpecError("beam", "beam is only for velocimeter faults")
    if f.until_time_s is not None and not f.until_time_s > f.at_time_s:
        raise FaultSpecError("until_time_s", f"until_time_s = {_num(f.until_time_s)} must be "
                                             f"after at_time_s = {_num(f.at_time_s)}")


def _check_velocimeter_keys(f: FaultConfig, what: str) -> None:
    if f.axis is not None:
        raise FaultSpecError("axis", "axis is only for imu faults (velocimeter: beam)")
    if f.kind in _VEL_ADDITIVE:
        if f.channel is not None and f.channel not in VEL_CHANNELS:
            raise FaultSpecError("channel", f'channel = "{f.channel}" is not one of velocity, '
                                            f"range (velocimeter {what})")
    elif f.channel is not None:
        raise FaultSpecError("channel", f"channel is only for velocimeter bias, scale, noise "
                                        f"(and imu faults), not {what}")
    if f.beam is not None:
        if f.kind in _VEL_UNIT_WIDE:
            raise FaultSpecError("beam", f"beam is not used by velocimeter {what} "
                                         f"(it acts on the whole unit)")
        if f.beam not in (-1, 0, 1, 2):
            raise FaultSpecError("beam", f"beam = {f.beam} must be 0, 1, 2 or -1 (all)")


@dataclass
class Fault:
    """One fault and what happened to it; times in integer microseconds of sim time."""

    cfg: FaultConfig
    source: str                          # "scenario" | "inject"
    number: int                          # 0-based, in the order added
    at_us: int
    until_us: int | None
    armed_t_us: int
    fired_t_us: int | None = None
    fired_seq: int | None = None
    ended_t_us: int | None = None
    ended_by: str | None = None          # "until" | "clear"
    hold: object = None                  # stuck: range (m) or None; stuck_axis: 6-vector
    lock_start_us: int | None = None     # late: first sample below value, None while above
    index: tuple[int, ...] = ()          # IMU: slots in the 6-vector [dv xyz, dtheta xyz];
    #                                      velocimeter: the beams it acts on
    beam_lock_us: list = None            # velocimeter late: per beam, like lock_start_us

    @property
    def label(self) -> str:
        return f"{self.cfg.sensor}:{self.cfg.kind}"

    @property
    def active(self) -> bool:
        return self.fired_t_us is not None and self.ended_t_us is None

    def params(self) -> dict:
        c = self.cfg
        out = {k: getattr(c, k) for k in ("value", "magnitude", "channel", "axis", "beam")
               if getattr(c, k) is not None}
        if c.sensor == "imu" and c.kind != "off" and c.axis is None:
            out["axis"] = -1
        if c.sensor == "star_tracker" and c.kind == "bias" and c.axis is None:
            out["axis"] = 0
        if c.sensor == "velocimeter":
            if c.kind not in _VEL_UNIT_WIDE and c.beam is None:
                out["beam"] = -1
            if c.kind in _VEL_ADDITIVE and c.channel is None:
                out["channel"] = "velocity"
        return out

    def trigger(self) -> dict:
        c = self.cfg
        out = {"at_time_s": c.at_time_s}
        for k in ("below_altitude_m", "below_range_m", "until_time_s"):
            if getattr(c, k) is not None:
                out[k] = getattr(c, k)
        return out

    def summary(self) -> dict:
        """The summary.json entry."""
        return {
            "sensor": self.cfg.sensor, "kind": self.cfg.kind, "name": self.cfg.name,
            "source": self.source, "params": self.params(), "trigger": self.trigger(),
            "armed_t_s": self.armed_t_us / 1e6,
            "fired_t_s": None if self.fired_t_us is None else self.fired_t_us / 1e6,
            "fired_seq": self.fired_seq,
            "cleared_t_s": None if self.ended_t_us is None else self.ended_t_us / 1e6,
            "cleared_by": self.ended_by,
        }


class FaultSet:
    """The plant's faults: triggers, and their effect on the sensor outputs.

    The plant calls, in this order: :meth:`begin_frame` at the start of each frame;
    :meth:`update_triggers` at every physics step (only while the set is non-empty:
    ``bool(faults)`` is False once no fault is armed or active); :meth:`apply_imu` on each
    IMU sample; :meth:`apply_altimeter` on each altimeter sample and
    :meth:`apply_velocimeter` on each velocimeter sample (as the sensors' ``post`` hooks).
    :meth:`add` and :meth:`clear` may be called between frames.
    """

    def __init__(self, faults: list[FaultConfig], rng: np.random.Generator, imu_dt_s: float,
                 acquisition_s: float, velocimeter_acquisition_s: float = 0.0) -> None:
        self.rng = rng
        self.imu_dt_s = float(imu_dt_s)
        self.acquisition_us = int(round(acquisition_s * 1e6))
        self.vel_acquisition_us = int(round(velocimeter_acquisition_s * 1e6))
        self._last_vel: list[tuple[float, float] | None] = [None] * 3   # per beam: last valid
        self.faults: list[Fault] = []
        self._live: list[Fault] = []          # armed or active, in the order added
        self.frame_seq = 0
        self.frame_start_us = 0
        self.last_alt_m: float | None = None
        self._last_valid_range_m: float | None = None
        self._last_imu: list[float] = [0.0] * 6
        self._imu_active = False           # an IMU fault has fired and not ended
        self._last_att: list[float] | None = None   # the star tracker's last valid [qw..qz]
        self.star_tracker_axes: list[list[float]] | None = None   # set by the plant
        for f in faults:
            self.add(f, "scenario", 0)

    def __bool__(self) -> bool:
        return bool(self._live)

    @property
    def wants_altitude(self) -> bool:
        """Does an armed fault wait for an altitude trigger (the plant then computes it)?"""
        return any(f.fired_t_us is None and f.cfg.below_altitude_m is not None for f in self._live)

    # --- adding and clearing --------------------------------------------------------------
    def add(self, cfg: FaultConfig, source: str, t_us: int) -> Fault:
        """Arm a fault at sim time ``t_us``; it fires when its triggers hold."""
        check_fault(cfg)
        f = Fault(cfg, source, len(self.faults), int(round(cfg.at_time_s * 1e6)),
                  None if cfg.until_time_s is None else int(round(cfg.until_time_s * 1e6)),
                  int(t_us))
        if cfg.sensor == "imu" and cfg.kind != "off":
            base = 0 if cfg.channel == "accel" else 3
            axes = [0, 1, 2] if cfg.axis is None or cfg.axis == -1 else [cfg.axis]
            f.index = tuple(base + a for a in axes)
        elif cfg.sensor == "velocimeter":
            f.index = (0, 1, 2) if cfg.beam is None or cfg.beam == -1 else (cfg.beam,)
            f.beam_lock_us = [None, None, None]
        self.faults.append(f)
        self._live.append(f)
        return f

    def clear(self, t_us: int, sensor: str, kind: str | None = None,
              name: str | None = None) -> list[Fault]:
        """End every armed or active fault of ``sensor`` (and ``kind``, ``name`` if given)."""
        out = [f for f in self._live if f.cfg.sensor == sensor
               and (kind is None or f.cfg.kind == kind) and (not name or f.cfg.name == name)]
        for f in out:
            f.ended_t_us, f.ended_by = int(t_us), "clear"
            self._live.remove(f)
        self._refresh()
        return out

    def _refresh(self) -> None:
        self._imu_active = any(f.cfg.sensor == "imu" and f.fired_t_us is not None
                               for f in self._live)

    # --- time line -------------------------------------------------------------------------
    def begin_frame(self, seq: int, t_us: int) -> None:
        """A new frame starts at ``t_us``: samples from here on go into frame ``seq``."""
        self.frame_seq = seq
        self.frame_start_us = int(t_us)

    def update_triggers(self, t_us: int, true_alt_m: float | None = None) -> None:
        """End faults whose ``until_time_s`` has come; fire those whose triggers now hold.

        ``true_alt_m`` (above the terrain) is needed only when :attr:`wants_altitude`.
        Range triggers are checked in :meth:`apply_altimeter`, at the altimeter's samples.
        """
        if true_alt_m is not None:
            self.last_alt_m = float(true_alt_m)
        self._tick(t_us, None)

    def _tick(self, t_us: int, range_m: float | None) -> None:
        for f in list(self._live):
            if f.until_us is not None and t_us >= f.until_us:
                f.ended_t_us, f.ended_by = int(t_us), "until"
                self._live.remove(f)
                self._refresh()
            elif f.fired_t_us is None and self._triggered(f, t_us, range_m):
                self._fire(f, t_us)

    def _triggered(self, f: Fault, t_us: int, range_m: float | None) -> bool:
        c = f.cfg
        if t_us < f.at_us:
            return False
        if c.below_altitude_m is not None and not (
                self.last_alt_m is not None and self.last_alt_m < c.below_altitude_m):
            return False
        if c.below_range_m is not None and not (range_m is not None and range_m < c.below_range_m):
            return False
        return True

    def _fire(self, f: Fault, t_us: int) -> None:
        f.fired_t_us, f.fired_seq = int(t_us), self.frame_seq
        if f.cfg.kind == "stuck":
            f.hold = self._last_valid_range_m
        elif f.cfg.kind == "stuck_axis":
            f.hold = list(self._last_imu)
        if f.cfg.sensor == "velocimeter" and f.cfg.kind == "stuck":
            f.hold = list(self._last_vel)
        elif f.cfg.sensor == "star_tracker" and f.cfg.kind == "stuck":
            f.hold = None if self._last_att is None else list(self._last_att)
        self._refresh()

    # --- effects ---------------------------------------------------------------------------
    def apply_altimeter(self, t_us: int, true_range_m: float | None, measured: float,
                        valid: bool) -> tuple[float, bool, int] | None:
        """One altimeter sample after the model: ``(range_m, valid, extra_delay_us)``, or
        None when the unit is off (no sample). ``true_range_m`` None: no surface in range."""
        rng_m = _INF if true_range_m is None else float(true_range_m)
        self._tick(t_us, rng_m)
        extra_s = 0.0
        drop = off = False
        stuck: Fault | None = None
        for f in self._live:
            if f.cfg.sensor != "altimeter" or f.fired_t_us is None:
                continue
            kind, v = f.cfg.kind, f.cfg.value
            if kind == "scale":
                if valid:
                    measured += v * rng_m
            elif kind == "bias":
                if valid:
                    measured += v
            elif kind == "noise":
                z = float(self.rng.standard_normal())
                if valid:
                    measured += v * z
            elif kind == "spike":
                u = float(self.rng.random())
                if valid and u < v:
                    measured += f.cfg.magnitude
            elif kind == "dropout":
                if float(self.rng.random()) < v:
                    drop = True
            elif kind == "late":
                if rng_m > v:
                    f.lock_start_us = None
                    drop = True
                else:
                    if f.lock_start_us is None:
                        f.lock_start_us = int(t_us)
                    if t_us - f.lock_start_us < self.acquisition_us:
                        drop = True
            elif kind == "stuck":
                stuck = stuck or f
            elif kind == "latency":
                extra_s += v
            elif kind == "off":
                off = True
        if valid:
            measured = max(0.0, measured)
        if drop:
            valid = False
        if not valid:
            measured = 0.0
        if stuck is not None:
            measured, valid = (stuck.hold, True) if stuck.hold is not None else (0.0, False)
        if off:
            return None
        if valid:
            self._last_valid_range_m = measured
        return measured, valid, int(round(extra_s * 1e6))

    def apply_imu(self, t_us: int, y: list[float], dv_true: Sequence[float],
                  dth_true: Sequence[float]) -> list[float] | None:
        """One IMU sample after the model, or None when the unit is off.

        ``y`` the model's output ``[dvx, dvy, dvz, dax, day, daz]`` (m/s, rad, a list of
        floats), ``dv_true`` and ``dth_true`` the true increments (three floats each).
        Returns ``y`` itself (changed in place while an IMU fault is active).
        """
        if not self._imu_active:
            self._last_imu = y
            return y
        x = [*dv_true, *dth_true]
        active = [f for f in self._live if f.cfg.sensor == "imu" and f.fired_t_us is not None]
        dt = self.imu_dt_s
        for f in active:  # additive first
            if f.cfg.kind == "scale":
                for i in f.index:
                    y[i] += f.cfg.value * x[i]
            elif f.cfg.kind == "bias":
                for i in f.index:
                    y[i] += f.cfg.value * dt
        for f in active:
            if f.cfg.kind == "saturation":
                lim = f.cfg.value * dt
                for i in f.index:
                    y[i] = min(max(y[i], -lim), lim)
        for f in active:
            if f.cfg.kind == "stuck_axis":
                for i in f.index:
                    y[i] = f.hold[i]
        if any(f.cfg.kind == "off" for f in active):
            return None
        self._last_imu = y
        return y

    def altimeter_link(self, t_us: int, true_range_m: float | None) -> tuple[float, float]:
        """The link-budget faults at an altimeter sample: ``(laser power factor, receiver
        sensitivity factor)``, products over the active ``power`` and ``sensitivity``
        faults (1.0 each without). Fires range triggers, as :meth:`apply_altimeter`."""
        self._tick(t_us, _INF if true_range_m is None else float(true_range_m))
        gain = worse = 1.0
        for f in self._live:
            if f.cfg.sensor == "altimeter" and f.fired_t_us is not None:
                if f.cfg.kind == "power":
                    gain *= f.cfg.value
                elif f.cfg.kind == "sensitivity":
                    worse *= f.cfg.value
        return gain, worse

    def apply_velocimeter(self, t_us: int, true_ranges: list, true_vlos: list,
                          sample: list) -> tuple[list, int] | None:
        """One velocimeter sample after the model: ``(sample, extra_delay_us)``, or None when
        the unit is off. ``sample`` is ``[v0, v1, v2, r0, r1, r2, valid_mask]`` (changed in
        place); ``true_ranges`` per beam (None: no surface within the maximum range)."""
        self._tick(t_us, None)
        active = [f for f in self._live if f.cfg.sensor == "velocimeter"
                  and f.fired_t_us is not None]
        mask = sample[6]
        extra_s = 0.0
        if active:
            drop = [False, False, False]
            stuck: Fault | None = None
            unflag = off = False
            unflag_beams: set[int] = set()
            for f in active:
                kind, v = f.cfg.kind, f.cfg.value
                off_ = 3 if f.cfg.channel == "range" else 0
                for k in f.index:
                    valid = mask >> k & 1
                    if kind == "bias":
                        if valid:
                            sample[off_ + k] += v
                    elif kind == "scale":
                        truth = true_vlos[k] if off_ == 0 else (true_ranges[k] or 0.0)
                        if valid:
                            sample[off_ + k] += v * truth
                    elif kind == "noise":
                        z = float(self.rng.standard_normal())
                        if valid:
                            sample[off_ + k] += v * z
                    elif kind == "dropout":
                        if float(self.rng.random()) < v:
                            drop[k] = True
                    elif kind == "late":
                        rho = _INF if true_ranges[k] is None else true_ranges[k]
                        if rho > v:
                            f.beam_lock_us[k] = None
                            drop[k] = True
                        else:
                            if f.beam_lock_us[k] is None:
                                f.beam_lock_us[k] = int(t_us)
                            if t_us - f.beam_lock_us[k] < self.vel_acquisition_us:
                                drop[k] = True
                    elif kind == "unflagged":
                        unflag = True
                        unflag_beams.add(k)
                if kind == "stuck":
                    stuck = stuck or f
                elif kind == "latency":
                    extra_s += v
                elif kind == "off":
                    off = True
            for k in range(3):
                if mask >> k & 1:
                    sample[3 + k] = max(0.0, sample[3 + k])
                if drop[k]:
                    mask &= ~(1 << k)
                if not mask >> k & 1:
                    sample[k] = sample[3 + k] = 0.0
            if stuck is not None:
                for k in stuck.index:
                    held = stuck.hold[k]
                    if held is None:
                        sample[k] = sample[3 + k] = 0.0
                        mask &= ~(1 << k)
                    else:
                        sample[k], sample[3 + k] = held
                        mask |= 1 << k
            sample[6] = mask
            if off:
                return None
            if unflag:       # good data delivered without its valid flag (IM-1)
                for k in unflag_beams:
                    if mask >> k & 1:
                        self._last_vel[k] = (sample[k], sample[3 + k])
                    sample[6] &= ~(1 << k)
                mask = sample[6]
        for k in range(3):
            if mask >> k & 1:
                self._last_vel[k] = (sample[k], sample[3 + k])
        return sample, int(round(extra_s * 1e6))

    def apply_star_tracker(self, t_us: int, sample: list) -> tuple[list, int] | None:
        """One star tracker sample after the model: ``(sample, extra_delay_us)``, or None
        when the unit is off. ``sample`` is ``[qw, qx, qy, qz, valid]`` (changed in place).

        Order: ``bias`` and ``noise`` turn a valid attitude (in the tracker's axes, as the
        model's own noise: ``q = q * exp(dtheta_body / 2)``); then ``dropout`` and
        ``blind`` invalidate it; ``stuck`` repeats the last valid attitude before it fired,
        flagged valid; an invalid sample carries ``[1, 0, 0, 0]``."""
        if not any(f.cfg.sensor == "star_tracker" for f in self._live):
            if sample[4]:
                self._last_att = sample[0:4]
            return sample, 0
        self._tick(t_us, None)
        extra_s = 0.0
        off = drop = False
        stuck: Fault | None = None
        valid = bool(sample[4])
        for f in self._live:
            if f.cfg.sensor != "star_tracker" or f.fired_t_us is None:
                continue
            kind, v = f.cfg.kind, f.cfg.value
            if kind == "bias":
                if valid:
                    e = [0.0, 0.0, 0.0]
                    e[0 if f.cfg.axis is None else f.cfg.axis] = v * ARCSEC_RAD
                    _turn_att(sample, self.star_tracker_axes, e)
            elif kind == "noise":
                z = self.rng.standard_normal(3).tolist()
                if valid:
                    s_rad = v * ARCSEC_RAD
                    _turn_att(sample, self.star_tracker_axes, [s_rad * z[0], s_rad * z[1],
                                                               s_rad * z[2]])
            elif kind == "dropout":
                if float(self.rng.random()) < v:
                    drop = True
            elif kind == "blind":
                drop = True
            elif kind == "stuck":
                stuck = stuck or f
            elif kind == "latency":
                extra_s += v
            elif kind == "off":
                off = True
        if drop:
            valid = False
        if stuck is not None:
            valid = stuck.hold is not None
            if valid:
                sample[0:4] = stuck.hold
        if not valid:
            sample[0:5] = [1.0, 0.0, 0.0, 0.0, False]
        if off:
            return None
        if valid:
            self._last_att = sample[0:4]
        return sample, int(round(extra_s * 1e6))

    # --- reporting -------------------------------------------------------------------------
    def label(self, t_us: int) -> str:
        """Faults active at any time in the current frame (from its start to ``t_us``), as
        ``"altimeter:late;imu:bias"`` (each sensor:kind once, in the order added); ``""``."""
        out: list[str] = []
        for f in self.faults:
            if f.fired_t_us is None or f.fired_t_us > t_us:
                continue
            if f.ended_t_us is not None and f.ended_t_us <= self.frame_start_us:
                continue
            if f.label not in out:
                out.append(f.label)
        return ";".join(out)

    def summary(self) -> list[dict]:
        """Every fault, armed, fired or ended, in the order added (summary.json ``faults``)."""
        return [f.summary() for f in self.faults]


def _turn_att(sample: list, axes: list[list[float]] | None, e: list[float]) -> None:
    """Turn the attitude ``sample[0:4]`` (w, x, y, z; body -> MCI) by the small rotation
    ``e`` given in the tracker's axes ``axes`` (three body-axis vectors; None: body axes):
    ``q = q * exp(theta_body / 2)``, normalised."""
    if axes is None:
        th = e
    else:
        th = [e[0] * axes[0][i] + e[1] * axes[1][i] + e[2] * axes[2][i] for i in range(3)]
    a = math.sqrt(th[0] * th[0] + th[1] * th[1] + th[2] * th[2])
    k = 0.5 if a < 1e-12 else math.sin(0.5 * a) / a
    bw, bx, by, bz = math.cos(0.5 * a), th[0] * k, th[1] * k, th[2] * k
    aw, ax, ay, az = sample[0:4]
    q = (aw * bw - ax * bx - ay * by - az * bz,
         aw * bx + ax * bw + ay * bz - az * by,
         aw * by - ax * bz + ay * bw + az * bx,
         aw * bz + ax * by - ay * bx + az * bw)
    n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    sample[0:4] = [q[0] / n, q[1] / n, q[2] / n, q[3] / n]
