"""A run's timing report: console lines, the timing.png plot, and reading it back.

The per-cycle arrays and the ``timing`` block of ``summary.json`` come from the run engine
(:class:`hil.engine.timing.TimingLog`, re-exported here with the history's
``TIMING_COLUMNS``). :func:`format_report` turns the block into console lines,
:func:`plot_timing` into ``timing.png``, and :class:`TimingReport` reads it back with
attribute access in seconds (the pytest plugin returns one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hil.engine.schema import TIMING_COLUMNS  # noqa: F401  (re-exported)
from hil.engine.timing import (MAX_SAMPLES, NONE, PERCENTILES, TimingLog,  # noqa: F401
                               nearest_rank, percentiles)


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
