"""The end of a run: ``summary.json`` (same keys in every mode), the plots, the exit code.

:func:`write_provisional` writes a first summary.json as the run starts (outcome
``incomplete``: "the plant process ended without writing its summary (killed?)", with
the scenario, seed, engine and build), so a plant killed with SIGKILL still leaves a run
folder that says what happened; the real end replaces it atomically.
:func:`build_summary` turns the finished (or failed) run into the summary dict;
:func:`finish` closes the history, adds the timing block, writes ``summary.json``, draws
``descent.png`` (and ``timing.png`` in real time) -- a plot that fails never loses the
results -- and returns the :class:`RunResult`. The descent plot is drawn from the
recorder's decimated copy of the plotted columns (:class:`hil.plots.PlotTap`), with
matplotlib loaded as the run started (:func:`hil.plots.prefetch`). An interrupted run draws
descent.png too, after its summary.json, only when matplotlib is loaded already (a
signal in the run's first second may come before) and the signal came at most
:data:`PLOT_AFTER_SIGNAL_S` ago (a loaded machine); timing.png and the plots of a run a
link or flight-software failure cut short are left to ``fsil plot RUN``.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from hil.engine.context import RunContext, RunResult
from hil.engine.pacing import normal_priority
from hil.errors import EXIT_LANDED, EXIT_LINK, EXIT_NOT_LANDED, HilError, Interrupted
from hil.scenario import scenario_to_dict


INCOMPLETE_REASON = "the plant process ended without writing its summary (killed?)"


def write_provisional(out_dir: os.PathLike[str], cfg: Any, seed: int, info: dict) -> None:
    """summary.json as the run starts: outcome ``incomplete`` until the end replaces it
    (``info``: engine, processes, link, history_file, build). Best effort: a folder that
    cannot take it fails the run where it writes its history, with the usual one line."""
    try:
        _write_provisional(out_dir, cfg, seed, info)
    except OSError:
        pass


def _write_provisional(out_dir: os.PathLike[str], cfg: Any, seed: int, info: dict) -> None:
    write_summary(Path(out_dir) / "summary.json", {
        "outcome": "incomplete",
        "reason": INCOMPLETE_REASON,
        "provisional": True,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "engine": info["engine"],
        "processes": info.get("processes"),
        "link": info.get("link"),
        "seed": seed,
        "scenario": cfg.name,
        "files": {"history": info.get("history_file"), "plot": None},
        "build": info.get("build"),
    })


def build_summary(ctx: RunContext, prop0_kg: float, wall_s: float, info: dict,
                  failure: HilError | Interrupted | None,
                  failure_outcome: str = "link_failure") -> dict:
    """The summary of a run; ``info`` carries the mode-specific entries (engine, link,
    link_stats, processes, fsw_runtime, fsw_software, control, history file, build);
    ``failure_outcome`` is the outcome of a run that ``failure`` ended (``interrupted``
    for a signal, whatever the mode)."""
    plant = ctx.plant
    t = plant.truth()
    if isinstance(failure, Interrupted):
        seq = ctx.frame.seq if ctx.frame is not None else 0
        outcome, touchdown = "interrupted", {}
        reason = f"{failure} at seq {seq} (sim t = {plant.t_us * 1e-6:.2f} s)"
    elif failure is not None:   # a failure with an outcome of its own (history_failure)
        outcome = getattr(failure, "outcome", failure_outcome)
        reason, touchdown = str(failure), {}
    elif plant.outcome is not None:
        outcome, reason = plant.outcome.outcome, plant.outcome.reason
        touchdown = plant.outcome.touchdown
    else:
        outcome, reason, touchdown = "incomplete", "run stopped before an outcome", {}
    errors = ctx.recorder.last_nav_errors
    final = {"downrange_m": float(t["downrange_m"]), "crossrange_m": float(t["crossrange_m"]),
             "nav_pos_err_m": None, "nav_vel_err_mps": None, "nav_alt_err_m": None}
    if errors is not None:
        final.update(nav_pos_err_m=_jsonable(errors[0]), nav_vel_err_mps=_jsonable(errors[1]),
                     nav_alt_err_m=_jsonable(errors[2]))
    return {
        "outcome": outcome,
        "reason": reason,
        "touchdown": touchdown,
        "final": final,
        "propellant_used_kg": prop0_kg - t["propellant_kg"],
        "propellant_left_kg": t["propellant_kg"],
        "sim_time_s": plant.t_us * 1e-6,
        "wall_time_s": wall_s,
        "cycles": ctx.timing.cycles,
        "engine": info["engine"],
        "processes": info["processes"],
        "link": info.get("link"),
        "link_stats": info.get("link_stats", {}),
        "fsw_link_stats": info.get("fsw_link_stats"),   # the peer's last STATUS
        "fsw_runtime": info.get("fsw_runtime"),
        "fsw_software": info.get("fsw_software"),
        "seed": ctx.seed,
        "scenario": ctx.cfg.name,
        "imu": {k: _jsonable(v) for k, v in plant.imu.params.items()},
        "files": {"history": info.get("history_file"), "plot": None},
        "faults": plant.faults.summary(),
        "control": info.get("control"),
        "config": scenario_to_dict(ctx.cfg),
        "build": info.get("build"),   # fsil version, git commit, command line (from the CLI)
    }


def finish(ctx: RunContext, summary: dict, failure: HilError | Interrupted | None,
           plots: bool = True) -> RunResult:
    """Write the run folder's summary.json and plots (when there is a run folder)."""
    log = ctx.timing
    summary["timing"] = log.report()
    writer = getattr(ctx.recorder.sink, "writer_report", None)
    if writer is not None:   # the history writer process (hil.engine.writer): wall-clock figures
        summary["timing"]["history_writer"] = writer()
    out = ctx.out_dir
    history = ctx.recorder.history()
    if out is not None:  # first without the plots: drawing them may take a while
        write_summary(out / "summary.json", summary)
    if out is not None and plots and _draw_now(failure):
        with normal_priority():   # ~1 s of CPU: never at SCHED_FIFO (hil.engine.pacing)
            _draw(ctx, summary, failure, log, out, history)
        write_summary(out / "summary.json", summary)
    if failure is not None:
        code = getattr(failure, "exit_code", EXIT_LINK)
    else:
        code = EXIT_LANDED if summary["outcome"] == "landed" else EXIT_NOT_LANDED
    return RunResult(code, summary, out, history)


def _draw(ctx: RunContext, summary: dict, failure: HilError | Interrupted | None,
          log: Any, out: Path, history: Any) -> None:
    """Draw timing.png (a finished real-time run) and descent.png into ``out``."""
    title = f"{ctx.cfg.name} seed {ctx.seed}"
    if log.realtime and failure is None:
        try:
            from hil.timing import plot_timing
            plot_timing(log, out / "timing.png", f"{title}: timing ({summary['outcome']})")
            summary["files"]["timing_plot"] = "timing.png"
        except Exception as e:  # a plot must never lose the run's results
            summary["timing_plot_error"] = str(e)
    source: Any = None
    tap = ctx.recorder.tap
    if tap is not None and tap.count:    # the plotted columns, kept as recorded
        source = tap.columns()
    elif summary["files"]["history"] and (out / summary["files"]["history"]).exists():
        source = out / summary["files"]["history"]
    elif history is not None:
        source = history.data
    if source is not None:
        try:
            from hil.plots import plot_descent
            plot_descent(source, out / "descent.png", f"{title}: {summary['outcome']}")
            summary["files"]["plot"] = "descent.png"
        except Exception as e:  # a plot must never lose the run's results
            summary["plot_error"] = str(e)


PLOT_AFTER_SIGNAL_S = 0.6   # an interrupted run starts its plot at most this long after the signal


def _draw_now(failure: HilError | Interrupted | None) -> bool:
    """Plots for a finished run; for an interrupted one, the descent plot only if matplotlib
    is loaded already (hil.plots.prefetch: then it takes a few tenths of a second of CPU)
    and no more than :data:`PLOT_AFTER_SIGNAL_S` have passed since the signal, so that the
    process still exits well within 2 s of it on a loaded machine (the draw itself took up
    to 1.1 s there); none for a run a link or flight-software failure cut short."""
    if failure is None:
        return True
    if isinstance(failure, Interrupted):
        from hil.engine.signals import seconds_since_signal
        from hil.plots import prefetched
        late = seconds_since_signal()
        return prefetched() and (late is None or late <= PLOT_AFTER_SIGNAL_S)
    return False


def write_summary(path: os.PathLike[str], summary: dict) -> None:
    """summary.json, written whole (a temporary file renamed over it)."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, path)


def history_file(sink) -> str | None:
    """The run folder's history file name for a sink (None: not written to a file)."""
    path = getattr(sink, "path", None)   # CsvSink, ParquetSink, writer.ProcessSink
    if path is not None:
        return path.name
    return None


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v
