"""Per-cycle timing of a run: preallocated arrays, miss counters and the report block.

One :class:`TimingLog` per run holds integer-microsecond arrays sized for the whole run
(``max_sim_time_s * frame_hz`` cycles, capped at :data:`MAX_SAMPLES`), indexed by the cycle
(= frame sequence number). The hot path stores into them and bumps counters; nothing is
allocated per cycle for timing. At the end :meth:`TimingLog.report` turns them into the
``timing`` block of ``summary.json`` (percentiles in integer microseconds); hil/timing.py
formats that block for the console, plots it and reads it back.

Where each figure is measured (all on the plant's monotonic clock, except ``compute``):

- ``due``: the cycle's scheduled start, ``t0 + k * period`` (real time only);
- ``sent``: just before the frame is handed to the link;
- ``arrival``: just after the command's bytes are read from the link, before decoding;
- ``latency = arrival - sent``: sensor frame out to command in (lockstep: the round trip;
  in-process: the call of the flight software's step);
- ``compute``: the flight software's own figure for the cycle, carried in its COMMAND;
- ``jitter = sent - due``: how late the plant started the cycle;
- ``overrun = arrival - (due + deadline)`` for a command that missed its deadline;
- ``plant_step``: the plant's physics step for the cycle (must fit in the period);
- ``record``: (lockstep) recording the cycle's history row, all of it; ``record_wait`` the
  part done while the command was owed (over a link: hidden behind the round trip);
- ``loop``: wall time of the whole loop, from the first frame to the end of the last cycle.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_SAMPLES = 2_000_000     # per-cycle samples kept for percentiles (11 h at 50 Hz)
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))
NONE = -1                   # "no value" in the integer arrays
_INT64_MAX = (1 << 63) - 1


class TimingLog:
    """Per-cycle arrays and counters for one run (``realtime`` or lockstep)."""

    def __init__(self, capacity: int, realtime: bool, period_ns: int = 0, deadline_ns: int = 0,
                 policy: dict | None = None) -> None:
        n = max(1, min(int(capacity), MAX_SAMPLES))
        self.capacity = n
        self.realtime = realtime
        self.period_ns = period_ns
        self.deadline_ns = deadline_ns
        self.policy = dict(policy or {})
        # Each mode allocates only its own arrays. Real time fills them with NONE (a cycle
        # may leave some unset); lockstep writes every cycle's cells in order, so its arrays
        # are left unwritten (np.empty): their pages become resident only as the run
        # reaches them, and a short run does not pay for the scenario's longest one.
        rt, ls = (n if realtime else 0), (0 if realtime else n)
        both = (lambda m: np.full(m, NONE, np.int64)) if realtime else \
            (lambda m: np.empty(m, np.int64))
        self.sent_us = np.full(rt, NONE, np.int64)      # since t0
        self.arrival_us = np.full(rt, NONE, np.int64)   # since t0
        self.latency_us = both(n)                       # lockstep: round trip
        self.compute_us = both(n)
        self.jitter_us = np.full(rt, NONE, np.int64)
        self.overrun_us = np.full(rt, NONE, np.int64)
        self.step_us = both(n)
        self.record_us = np.empty(ls, np.int64)         # lockstep: history recording
        self.record_wait_us = np.empty(ls, np.int64)    # ... of it while a command was owed
        self.loop_ns = 0             # wall time of the loop (first frame to the end)
        self.met = np.full(rt, NONE, np.int8)
        self.cycles = 0              # cycles completed (= history rows)
        self.frames_sent = 0
        self.commands = 0            # commands received (first copy of each seq)
        self.misses = 0
        self.streak = 0
        self.longest_streak = 0
        self.longest_overrun_us = 0
        self.skipped_frames = 0      # due while the fsw still owed a command: not sent
        self.dropped_commands = 0    # not back within lost_after_s
        self.duplicate_commands = 0
        self.late_commands = 0
        self.imu_samples_dropped = 0  # carried over skipped frames beyond a frame's capacity
        self.abort: str | None = None

    @classmethod
    def for_run(cls, cfg: Any, realtime: bool) -> TimingLog:
        """Sized for ``cfg``'s longest run; period, deadline and policy from ``[deadline]``."""
        r, dl = cfg.rates, cfg.deadline
        capacity = math.ceil(cfg.run.max_sim_time_s * r.frame_hz) + 2
        if not realtime:
            return cls(capacity, False)
        period_ns = round((dl.period_s if dl.period_s is not None else 1.0 / r.frame_hz) * 1e9)
        deadline_ns = round(dl.deadline_s * 1e9) if dl.deadline_s is not None else period_ns
        policy = {"on_miss": dl.on_miss, "max_consecutive_misses": dl.max_consecutive_misses,
                  "max_total_misses": dl.max_total_misses, "lost_after_s": dl.lost_after_s}
        return cls(capacity, True, period_ns, deadline_ns, policy)

    # --- lockstep: one call per cycle ----------------------------------------------------
    def lockstep(self, k: int, round_trip_us: int, compute_us: int, step_us: int,
                 record_us: int = NONE, record_wait_us: int = NONE) -> None:
        if k < self.capacity:
            if k > self.cycles:          # cycles skipped (none in lockstep): never read garbage
                for a in (self.latency_us, self.compute_us, self.step_us, self.record_us,
                          self.record_wait_us):
                    a[self.cycles:k] = NONE
            self.latency_us[k] = round_trip_us
            self.compute_us[k] = min(compute_us, _INT64_MAX)
            self.step_us[k] = step_us
            self.record_us[k] = record_us
            self.record_wait_us[k] = record_wait_us
        self.cycles = k + 1
        self.frames_sent = self.commands = k + 1

    # --- real time: counters kept by hil.realtime ----------------------------------------
    def miss(self, missed: bool) -> None:
        """Close one cycle's deadline bookkeeping."""
        if missed:
            self.misses += 1
            self.streak += 1
            if self.streak > self.longest_streak:
                self.longest_streak = self.streak
        else:
            self.streak = 0

    # --- the report ----------------------------------------------------------------------
    def report(self) -> dict:
        """The ``timing`` block of summary.json: integer microseconds, percentiles, counts."""
        n = min(self.cycles, self.capacity)
        out: dict[str, Any] = {"mode": "realtime" if self.realtime else "lockstep",
                               "clock": "CLOCK_MONOTONIC (time.perf_counter_ns), plant side",
                               "cycles": self.cycles}
        from hil.engine.pacing import scheduling
        out["scheduling"] = scheduling()
        if self.realtime:
            out["period_us"] = self.period_ns // 1000
            out["deadline_us"] = self.deadline_ns // 1000
            out["policy"] = self.policy
            out["deadline_misses"] = self.misses
            out["longest_miss_streak"] = self.longest_streak
            out["longest_overrun_us"] = self.longest_overrun_us
            out["frames_sent"] = self.frames_sent
            out["commands_received"] = self.commands
            out["skipped_frames"] = self.skipped_frames
            out["dropped_commands"] = self.dropped_commands
            out["duplicate_commands"] = self.duplicate_commands
            out["late_commands"] = self.late_commands
            out["imu_samples_dropped"] = self.imu_samples_dropped
            out["abort"] = self.abort
        lat, comp = self.latency_us[:n], self.compute_us[:n]
        both = (lat >= 0) & (comp >= 0)
        out["latency_us" if self.realtime else "round_trip_us"] = percentiles(lat)
        out["compute_us"] = percentiles(comp)
        out["transport_us"] = percentiles(np.maximum(lat[both] - comp[both], 0))
        if self.realtime:
            out["jitter_us"] = percentiles(self.jitter_us[:n])
            out["overrun_us"] = percentiles(self.overrun_us[:n])
        out["plant_step_us"] = percentiles(self.step_us[:n])
        if not self.realtime:
            out["record_us"] = percentiles(self.record_us[:n])
            out["record_wait_us"] = percentiles(self.record_wait_us[:n])
        out["loop_s"] = self.loop_ns / 1e9
        if self.cycles > self.capacity:
            out["percentiles_over_first_cycles"] = self.capacity
        return out


def percentiles(values: np.ndarray) -> dict:
    """``{count, p50, p90, p99, p99.9, max, mean}`` of the values >= 0 (nearest rank)."""
    v = values[values >= 0]
    if v.size == 0:
        return {"count": 0, **{name: None for name, _ in PERCENTILES}, "max": None,
                "mean": None}
    v = np.sort(v)
    return {"count": int(v.size), **{name: int(v[nearest_rank(q, v.size) - 1])
                                     for name, q in PERCENTILES}, "max": int(v[-1]),
            "mean": round(float(v.mean()), 1)}


def nearest_rank(q: float, n: int) -> int:
    """1-based rank of the q-th percentile of n sorted values: the smallest value with at
    least q % of the values at or below it (``ceil(q n / 100)``, exact for q = 99.9)."""
    return min(n, max(1, math.ceil(q * n / 100.0 - 1e-9)))
