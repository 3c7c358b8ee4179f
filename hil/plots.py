"""Descent plot from a run history: stacked panels against sim time, written as a PNG.

Uses matplotlib's object API with the Agg canvas (no pyplot, no display, no global backend
change). Panels whose columns are missing from the history are left out; long histories
are decimated to a few thousand points, keeping every change of mode and altimeter validity.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.protocol import MODES
from hil.history import as_floats, read_columns

MAX_POINTS = 4000   # plotted points per line, after decimation
T_COLUMN = "t_s"
STEP_COLUMNS = ("mode", "alt_valid")


@dataclass(frozen=True)
class _Panel:
    title: str
    columns: tuple[str, ...]
    ylabel: str
    right: tuple[str, ...] = ()     # columns on a second y axis
    right_label: str = ""
    height: float = 1.0             # relative panel height


PANELS = (
    _Panel("altitude", ("true_alt_m", "nav_alt_m"), "m"),
    _Panel("vertical speed", ("true_vert_speed_mps",), "m/s"),
    _Panel("horizontal speed", ("true_horiz_speed_mps",), "m/s"),
    _Panel("throttle", ("cmd_throttle",), "fraction"),
    _Panel("mode", ("mode",), "", height=1.2),
    _Panel("altimeter valid", ("alt_valid",), "", height=0.5),
    _Panel("navigation error", ("nav_pos_err_m", "nav_alt_err_m"), "m",
           ("nav_vel_err_mps",), "m/s"),
)


def plot_descent(history: str | os.PathLike[str] | Mapping[str, np.ndarray],
                 png: str | os.PathLike[str], title: str) -> Path:
    """Plot a run history (a CSV or Parquet file, or columns by name) to ``png``; returns
    the PNG path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    wanted = [T_COLUMN] + [c for p in PANELS for c in p.columns + p.right]
    if isinstance(history, Mapping):
        data = {k: _plain_column(history[k]) for k in wanted if k in history}
    else:
        data = read_columns(history, wanted)
    n = max((len(v) for v in data.values()), default=0)
    panels = [p for p in PANELS if any(c in data for c in p.columns + p.right)]
    png = Path(png)

    height_in = 1.2 + 1.7 * max(sum(p.height for p in panels), 1)
    fig = Figure(figsize=(10, height_in), dpi=100)
    FigureCanvasAgg(fig)
    fig.suptitle(title)
    if n == 0 or not panels:
        fig.text(0.5, 0.5, "no data in history" if n == 0 else "no plottable columns",
                 ha="center", va="center")
        fig.savefig(png)
        return png

    keep = _decimate(data, n)
    if T_COLUMN in data:
        t, xlabel = data[T_COLUMN][keep], "sim time (s)"
    else:
        t, xlabel = keep.astype(float), "row"
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": [p.height for p in panels]})[:, 0]
    for ax, panel in zip(axes, panels):
        _draw(ax, panel, t, {k: v[keep] for k, v in data.items()})
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel(xlabel)
    fig.align_ylabels(axes)
    # Fixed margins (in inches at the top and bottom) instead of tight_layout(): the
    # layout pass drew the figure twice (~2.5x the time; an interrupted run waits for it).
    fig.subplots_adjust(left=0.11, right=0.92, top=1 - 0.55 / height_in,
                        bottom=0.5 / height_in, hspace=0.55)
    fig.savefig(png)
    return png


def _decimate(data: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Row indices to plot: a regular stride plus every change in the step columns."""
    if n <= MAX_POINTS:
        return np.arange(n)
    parts = [np.arange(0, n, -(-n // MAX_POINTS)), np.array([n - 1])]
    for name in STEP_COLUMNS:
        if name in data:
            col = data[name]
            change = np.flatnonzero(col[1:] != col[:-1]) + 1
            parts += [change, change - 1]
    return np.unique(np.concatenate(parts))


def _draw(ax, panel: _Panel, t: np.ndarray, data: dict[str, np.ndarray]) -> None:
    """One panel: its present columns against ``t``."""
    ax.set_title(panel.title, loc="left", fontsize=9)
    if panel.columns == ("mode",):
        _draw_mode(ax, t, data["mode"])
        return
    if panel.columns == ("alt_valid",):
        valid = np.nan_to_num(as_floats(data["alt_valid"]))
        ax.fill_between(t, valid, step="post", alpha=0.4)
        ax.step(t, valid, where="post", lw=1)
        ax.set_yticks([0, 1], ["invalid", "valid"])
        ax.set_ylim(-0.1, 1.1)
        return
    scale, unit = 1.0, panel.ylabel
    present = [c for c in panel.columns if c in data]
    if panel.ylabel == "m" and panel.title == "altitude" and present:
        values = np.abs(np.concatenate([as_floats(data[c]) for c in present]))
        values = values[np.isfinite(values)]
        if values.size and values.max() > 5000:
            scale, unit = 1e-3, "km"
    for c in present:
        ax.plot(t, as_floats(data[c]) * scale, lw=1, label=c)
    ax.set_ylabel(unit)
    lines = list(present)
    if panel.right and any(c in data for c in panel.right):
        ax2 = ax.twinx() if present else ax
        for c in panel.right:
            if c in data:
                ax2.plot(t, as_floats(data[c]), lw=1, ls="--", color="tab:red", label=c)
                lines.append(c)
        ax2.set_ylabel(panel.right_label)
        if ax2 is not ax:
            handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
            ax.legend(handles, lines, fontsize=7, loc="upper right")
            return
    if len(lines) > 1:
        ax.legend(fontsize=7, loc="upper right")


def _draw_mode(ax, t: np.ndarray, mode: np.ndarray) -> None:
    """Step plot of the mode, names as y ticks in mission order (unknown names after)."""
    if mode.dtype.kind == "f":  # a history that logs the mode index instead of its name
        names = list(MODES)
        level = mode
    else:
        extra = sorted({m for m in mode.tolist() if m and m not in MODES})
        names = list(MODES) + extra
        lookup = {name: i for i, name in enumerate(names)}
        level = np.array([lookup.get(m, np.nan) for m in mode.tolist()], dtype=float)
    ax.step(t, level, where="post", lw=1.2)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_ylim(-0.5, len(names) - 0.5)


def _plain_column(col: np.ndarray) -> np.ndarray:
    """An in-memory column as read_columns would give it (text as str, numbers as float)."""
    col = np.asarray(col)
    if col.dtype.kind == "O":
        return np.array(["" if v is None else str(v) for v in col.tolist()], dtype=str)
    return col.astype(float)
