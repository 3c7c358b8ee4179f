"""Per-cycle timing of a run: preallocated arrays, miss counters, the report, its plot.

One :class:`TimingLog` per run holds integer-microsecond arrays sized for the whole run
(``max_sim_time_s * frame_hz`` cycles, capped at :data:`MAX_SAMPLES`), indexed by the cycle
(= frame sequence number). The hot path stores into them and bumps counters; nothing is
allocated per cycle for timing. At the end :meth:`TimingLog.report` turns them into the
``timing`` block of ``summary.json`` (percentiles in integer microseconds), :func:`format_report`
into console lines and :func:`plot_timing` into ``timing.png``. :class:`TimingReport` reads a
``timing`` block back with attribute access in seconds (the pytest plugin returns one).

Where each figure is measured (all on the plant's monotonic clock, except ``compute``):

- ``due``: the cycle's scheduled start, ``t0 + k * period`` (real time only);
- ``sent``: just before the frame is handed to the link;
- ``arrival``: just after the command's bytes are read from the link, before decoding;
- ``latency = arrival - sent``: sensor frame out to command in (lockstep: the round trip);
- ``compute``: the flight software's own figure for the cycle, carried in its COMMAND;
- ``jitter = sent - due``: how late the plant started the cycle;
- ``overrun = arrival - (due + deadline)`` for a command that missed its deadline;
- ``plant_step``: the plant's physics step for the cycle (must fit in the period).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAX_SAMPLES = 2_000_000     # per-cycle samples kept for percentiles (11 h at 50 Hz)
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))
NONE = -1                   # "no value" in the integer arrays

# Columns a real-time run appends to the history (integer microseconds; empty = none).
# ``round_trip_us`` (already in the history) holds the latency, ``compute_us`` the compute
# time of the command answering this cycle's frame, when it came by the step.
TIMING_COLUMNS = [
    "due_us",           # scheduled start of the cycle, since t0
    "sent_us",          # frame sent, since t0; empty if skipped (the fsw was still busy)
    "jitter_us",        # sent - due
    "arrival_us",       # the command for this frame arrived, since t0 (if by the step)
    "deadline_met",     # 1 if this frame's command arrived by due + deadline, else 0
    "applied_seq",      # seq of the command the plant applied over this cycle
    "late_seq",         # a late command that arrived during this cycle: its seq
    "late_latency_us",  # ... and its latency
    "late_overrun_us",  # ... and by how much it missed its deadline
    "plant_step_us",    # the plant's physics step for this cycle
]


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
        self.sent_us = np.full(n, NONE, np.int64)      # since t0
        self.arrival_us = np.full(n, NONE, np.int64)   # since t0
        self.latency_us = np.full(n, NONE, np.int64)   # lockstep: round trip
        self.compute_us = np.full(n, NONE, np.int64)
        self.jitter_us = np.full(n, NONE, np.int64)
        self.overrun_us = np.full(n, NONE, np.int64)
        self.step_us = np.full(n, NONE, np.int64)
        self.met = np.full(n, NONE, np.int8)
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
    def lockstep(self, k: int, round_trip_us: int, compute_us: int, step_us: int) -> None:
        if k < self.capacity:
            self.latency_us[k] = round_trip_us
            self.compute_us[k] = compute_us
            self.step_us[k] = step_us
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
        from hil.pacing import scheduling
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
        if self.cycles > self.capacity:
            out["percentiles_over_first_cycles"] = self.capacity
        return out


def percentiles(values: np.ndarray) -> dict:
    """``{count, p50, p90, p99, p99.9, max}`` of the values >= 0 (nearest rank)."""
    v = values[values >= 0]
    if v.size == 0:
        return {"count": 0, **{name: None for name, _ in PERCENTILES}, "max": None}
    v = np.sort(v)
    return {"count": int(v.size), **{name: int(v[nearest_rank(q, v.size) - 1])
                                     for name, q in PERCENTILES}, "max": int(v[-1])}


def nearest_rank(q: float, n: int) -> int:
    """1-based rank of the q-th percentile of n sorted values: the smallest value with at
    least q % of the values at or below it (``ceil(q n / 100)``, exact for q = 99.9)."""
    return min(n, max(1, math.ceil(q * n / 100.0 - 1e-9)))


# --- console ------------------------------------------------------------------------------
def _ms(us: int | None) -> str:
    return "-" if us is None else f"{us / 1000:.2f}"


def _row(label: str, p: dict | None) -> str:
    if not p or not p.get("count"):
        return f"    {label:10s} (none)"
    return (f"    {label:10s} p50 {_ms(p['p50']):>6}  p90 {_ms(p['p90']):>6}  p99 {_ms(p['p99']):>6}"
            f"  p99.9 {_ms(p['p99.9']):>6}  max {_ms(p['max']):>6} ms  (n {p['count']})")


def format_report(t: dict) -> list[str]:
    """The ``timing`` block as console lines."""
    if t.get("mode") == "realtime":
        pol = t.get("policy", {})
        lines = [f"  timing (real time): period {t['period_us'] / 1000:g} ms, deadline "
                 f"{t['deadline_us'] / 1000:g} ms, on_miss {pol.get('on_miss')}: "
                 f"{t['deadline_misses']} deadline misses in {t['cycles']} cycles, longest "
                 f"overrun {_ms(t['longest_overrun_us'])} ms, longest miss streak "
                 f"{t['longest_miss_streak']}",
                 _row("latency", t.get("latency_us")),
                 _row("compute", t.get("compute_us")),
                 _row("jitter", t.get("jitter_us")),
                 _row("plant step", t.get("plant_step_us")),
                 f"    frames sent {t['frames_sent']}, skipped {t['skipped_frames']} (fsw busy); "
                 f"commands late {t['late_commands']}, dropped {t['dropped_commands']}, "
                 f"duplicate {t['duplicate_commands']}"]
        if t.get("abort"):
            lines.append(f"    run ended by the deadline policy: {t['abort']}")
        if t["deadline_misses"] and t.get("scheduling", "").startswith("SCHED_OTHER"):
            lines.append("    (normal scheduling: other processes can delay the plant or the "
                         "flight software; --rt-priority 50 runs both at SCHED_FIFO)")
        return lines
    return ["  timing (lockstep): no deadlines without a wall clock",
            _row("round trip", t.get("round_trip_us")),
            _row("compute", t.get("compute_us")),
            _row("plant step", t.get("plant_step_us"))]


# --- plot ---------------------------------------------------------------------------------
def plot_timing(log: TimingLog, png: str | os.PathLike[str], title: str) -> Path:
    """Histogram of latency and compute time with the deadline marked, and latency per cycle."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = min(log.cycles, log.capacity)
    lat, comp = log.latency_us[:n], log.compute_us[:n]
    deadline_ms = log.deadline_ns / 1e6
    fig = Figure(figsize=(10, 7), dpi=100)
    FigureCanvasAgg(fig)
    fig.suptitle(title)
    ax1, ax2 = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1.2, 1.0]})
    got = lat >= 0
    if got.any():
        top = max(float(lat[got].max()) / 1000, deadline_ms) * 1.05
        bins = np.linspace(0, top, 120)
        ax1.hist(lat[got] / 1000, bins=bins, alpha=0.6, label="latency (frame sent -> command in)")
        c = comp[comp >= 0]
        if c.size:
            ax1.hist(c / 1000, bins=bins, alpha=0.6, label="fsw compute (its own clock)")
        ax1.set_yscale("log")
    else:
        ax1.text(0.5, 0.5, "no command arrived", ha="center", va="center",
                 transform=ax1.transAxes)
    ax1.axvline(deadline_ms, color="tab:red", lw=1.5, label=f"deadline {deadline_ms:g} ms")
    ax1.set_xlabel("ms")
    ax1.set_ylabel("cycles")
    ax1.legend(fontsize=8, loc="upper right")
    ax1.grid(True, alpha=0.3)

    k = np.arange(n)
    t_s = k * (log.period_ns / 1e9)
    ax2.plot(t_s[got], lat[got] / 1000, ".", ms=2, label="latency")
    missed = log.met[:n] == 0
    if missed.any():
        ax2.plot(t_s[missed], np.full(int(missed.sum()), deadline_ms), "x", color="tab:red",
                 ms=4, label=f"deadline missed ({int(missed.sum())})")
    ax2.axhline(deadline_ms, color="tab:red", lw=1)
    ax2.set_xlabel("wall time since the first frame (s)")
    ax2.set_ylabel("latency (ms)")
    ax2.legend(fontsize=8, loc="upper right")
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    png = Path(png)
    fig.savefig(png)
    return png


# --- reading a report back ----------------------------------------------------------------
@dataclass(frozen=True)
class Percentiles:
    """Percentiles of one measurement, in seconds (``None`` where nothing was measured)."""

    count: int = 0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    p99_9: float | None = None
    max: float | None = None

    @classmethod
    def from_us(cls, d: dict | None) -> Percentiles:
        if not d:
            return cls()
        s = {k: (None if d.get(k) is None else d[k] * 1e-6)
             for k in ("p50", "p90", "p99", "p99.9", "max")}
        return cls(int(d.get("count") or 0), s["p50"], s["p90"], s["p99"], s["p99.9"], s["max"])

    def __str__(self) -> str:
        if not self.count:
            return "(none)"
        ms = {k: f"{v * 1e3:.3f}" for k, v in (("p50", self.p50), ("p99", self.p99),
                                                ("max", self.max))}
        return f"p50 {ms['p50']} ms, p99 {ms['p99']} ms, max {ms['max']} ms (n {self.count})"


@dataclass(frozen=True)
class TimingReport:
    """A run's timing in seconds, from ``summary.json``: what a timing test asserts on.

    ``report.deadline_misses == 0``, ``report.latency.p99 < 0.002``,
    ``report.longest_overrun < 0.005``; ``report.summary`` is the whole summary.json.
    """

    mode: str
    outcome: str
    exit_code: int | None
    cycles: int
    period: float | None
    deadline: float | None
    policy: dict
    deadline_misses: int
    longest_miss_streak: int
    longest_overrun: float
    skipped_frames: int
    dropped_commands: int
    duplicate_commands: int
    late_commands: int
    abort: str | None
    latency: Percentiles
    compute: Percentiles
    jitter: Percentiles
    overrun: Percentiles
    transport: Percentiles
    plant_step: Percentiles
    run_dir: Path | None = None
    summary: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_summary(cls, summary: dict, run_dir: str | os.PathLike[str] | None = None,
                     exit_code: int | None = None) -> TimingReport:
        t = summary.get("timing") or {}
        rt = t.get("mode") == "realtime"
        us = (lambda key: (t.get(key) or 0) * 1e-6)
        return cls(
            mode=t.get("mode", "none"), outcome=summary.get("outcome", "unknown"),
            exit_code=exit_code, cycles=int(t.get("cycles", 0)),
            period=us("period_us") if rt else None, deadline=us("deadline_us") if rt else None,
            policy=dict(t.get("policy") or {}),
            deadline_misses=int(t.get("deadline_misses", 0)),
            longest_miss_streak=int(t.get("longest_miss_streak", 0)),
            longest_overrun=us("longest_overrun_us"),
            skipped_frames=int(t.get("skipped_frames", 0)),
            dropped_commands=int(t.get("dropped_commands", 0)),
            duplicate_commands=int(t.get("duplicate_commands", 0)),
            late_commands=int(t.get("late_commands", 0)),
            abort=t.get("abort"),
            latency=Percentiles.from_us(t.get("latency_us") or t.get("round_trip_us")),
            compute=Percentiles.from_us(t.get("compute_us")),
            jitter=Percentiles.from_us(t.get("jitter_us")),
            overrun=Percentiles.from_us(t.get("overrun_us")),
            transport=Percentiles.from_us(t.get("transport_us")),
            plant_step=Percentiles.from_us(t.get("plant_step_us")),
            run_dir=Path(run_dir) if run_dir is not None else None,
            summary=summary)

    def __str__(self) -> str:
        head = (f"{self.mode} run, outcome {self.outcome}: {self.deadline_misses} deadline misses "
                f"in {self.cycles} cycles")
        if self.deadline is not None:
            head += (f" (deadline {self.deadline * 1e3:g} ms, longest overrun "
                     f"{self.longest_overrun * 1e3:.3f} ms, longest streak "
                     f"{self.longest_miss_streak})")
        return (f"{head}\n  latency {self.latency}\n  compute {self.compute}\n"
                f"  jitter  {self.jitter}" + (f"\n  run folder {self.run_dir}" if self.run_dir else ""))
