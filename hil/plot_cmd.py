"""``fsil plot RUN``: draw a run folder's plots from its history, after the run.

A run that ended with the plant's verdict draws ``descent.png`` (and ``timing.png`` in
real time) itself. A run cut short -- SIGINT or SIGTERM, a link or flight-software
failure -- ends at once without them (matplotlib takes a second or two) and says so in
its one line; this command draws them from ``history.csv`` (or ``history.parquet``) and
``summary.json``, and records them in summary.json's ``files`` block. A run folder whose
summary is still the provisional one (the plant was killed) is drawn too: its history
holds every block written before the kill.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hil.errors import ConfigError


def add_parser(sub) -> None:
    """Register ``fsil plot`` on the CLI's subparsers."""
    p = sub.add_parser("plot", help="draw a run folder's plots (descent.png, timing.png) "
                                    "from its history",
                       description="Draw descent.png (and timing.png for a real-time run) "
                                   "from the history and summary.json of a run folder: for a "
                                   "run cut short by a signal or a failure, which ends "
                                   "without drawing them.")
    p.add_argument("run_dir", metavar="RUN", type=Path, help="the run folder (fsil run --out)")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    for png in plot_run(args.run_dir):
        print(f"plot: {png}")
    return 0


def plot_run(run_dir: Path) -> list[Path]:
    """Draw the run folder's plots; returns their paths. :class:`ConfigError` (one line,
    exit 2) for a folder without a readable history or summary."""
    from hil.engine.summary import write_summary
    from hil.history import history_path
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f'"{run_dir}" is not a run folder')
    summary_path = run_dir / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f'"{run_dir}" has no summary.json (is it a run folder?)') from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f'cannot read "{summary_path}": {e}') from None
    if not isinstance(summary, dict):
        raise ConfigError(f'"{summary_path}" is not a JSON object')
    history = history_path(run_dir)
    if not history.is_file():
        raise ConfigError(f'"{run_dir}" has no history.csv or history.parquet')
    title = f"{summary.get('scenario', '?')} seed {summary.get('seed', '?')}"
    outcome = summary.get("outcome", "?")
    drawn = []
    from hil.plots import plot_descent
    try:
        drawn.append(plot_descent(history, run_dir / "descent.png", f"{title}: {outcome}"))
        timing = (summary.get("timing") or {})
        if timing.get("mode") == "realtime":
            from hil.timing import plot_timing
            drawn.append(plot_timing(_timing_log(history, timing), run_dir / "timing.png",
                                     f"{title}: timing ({outcome})"))
    except ValueError as e:          # a malformed history (hil.history's readers)
        raise ConfigError(f'cannot plot "{history}": {e}') from None
    except OSError as e:
        raise ConfigError(f'cannot write the plot in "{run_dir}": {e.strerror or e}') from None
    if not summary.get("provisional"):   # the provisional summary stays as it is
        files = summary.setdefault("files", {})
        files["plot"] = "descent.png"
        if len(drawn) > 1:
            files["timing_plot"] = "timing.png"
        write_summary(summary_path, summary)
    return drawn


def _timing_log(history: Path, timing: dict):
    """A real-time run's TimingLog rebuilt from its history's timing columns (latency =
    arrival - sent, the fsw's compute time, deadline met) and summary's period/deadline."""
    import numpy as np

    from hil.engine.timing import NONE, TimingLog
    from hil.history import read_columns
    cols = read_columns(history, ["sent_us", "arrival_us", "compute_us", "deadline_met"])
    n = len(next(iter(cols.values()), []))
    log = TimingLog(max(n, 1), True, int(timing.get("period_us", 0)) * 1000,
                    int(timing.get("deadline_us", 0)) * 1000)

    def ints(name: str) -> np.ndarray:
        v = cols.get(name, np.full(n, np.nan)).astype(float)
        return np.where(np.isfinite(v), v, NONE).astype(np.int64)

    sent, arrival = ints("sent_us"), ints("arrival_us")
    log.latency_us[:n] = np.where((sent >= 0) & (arrival >= 0), arrival - sent, NONE)
    log.compute_us[:n] = ints("compute_us")
    log.met[:n] = ints("deadline_met").astype(np.int8)
    log.cycles = n
    return log
