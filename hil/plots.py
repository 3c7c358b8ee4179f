"""Descent plot from a run history: stacked panels against sim time, written as a PNG.

Uses matplotlib's object API with the Agg canvas (no pyplot, no display, no global backend
change). Panels whose columns are missing from the history are left out; long histories
are decimated to a few thousand points, keeping every change of mode and altimeter validity.

Kept cheap enough to draw when a run is interrupted (issue 13: the plot within 1 s of
Ctrl-C): a run that will plot loads matplotlib in a background thread as it starts
and builds the figure's skeleton there too (:class:`_Skeleton`: axes, labels, empty lines,
tick objects: half the drawing's CPU), both the same CPU a finished run spends anyway, out
of the signal's way (:func:`prefetch`); keeps
the plotted columns decimated in memory as it records (:class:`PlotTap`: no history file
read back) and draws without automatic layout passes (fixed margins, label and title
positions).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.protocol import MODES
from hil.history import as_floats, read_columns

MAX_POINTS = 4000   # plotted points per line, after decimation
T_COLUMN = "t_s"
STEP_COLUMNS = ("mode", "alt_valid")
Y_TICKS = 4         # at most this many y ticks per panel (ticks are most of the drawing)
X_TICKS = 8         # at most this many sim-time ticks
PNG_COMPRESS = 1    # zlib level of the PNG (a plot of lines compresses well at 1 already)


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


PLOT_COLUMNS = (T_COLUMN,) + tuple(dict.fromkeys(c for p in PANELS for c in p.columns + p.right))


# ---------------------------------------------------------------- loading matplotlib early
_prefetch: threading.Thread | None = None


def prefetch(wait: bool = False) -> None:
    """Import matplotlib's Agg canvas and figure in a background thread (once per process),
    so that drawing at the end of a run does not start with a second of imports; ``wait``:
    until it is done (a real-time run, before its paced loop)."""
    global _prefetch
    if _prefetch is None:
        _prefetch = threading.Thread(target=_import_matplotlib, name="fsil-plot-import",
                                     daemon=True)
        _prefetch.start()
    if wait:
        _prefetch.join()


def prefetched() -> bool:
    """True once matplotlib is imported (by :func:`prefetch` or anyone else)."""
    import sys
    return "matplotlib.backends.backend_agg" in sys.modules and (
        _prefetch is None or not _prefetch.is_alive())


def _import_matplotlib() -> None:
    # About 1 s of CPU, never at SCHED_FIFO (a real-time run's plant is, and its threads
    # inherit it): there it held a CPU from every other process for the kernel's 950 ms budget.
    from hil.engine.pacing import normal_priority
    with normal_priority():
        try:
            import matplotlib.backends.backend_agg  # noqa: F401
            import matplotlib.figure  # noqa: F401
            _build_skeleton()
        except Exception:   # drawing will report it, where a plot error is reported
            pass


# ---------------------------------------------------------------- the plotted columns, live
class PlotTap:
    """The plotted columns of every row written, decimated as they come: every
    ``stride``-th row and the rows on both sides of a change of mode or altimeter validity;
    the stride doubles when more than ``2 * MAX_POINTS`` rows are kept (memory stays flat
    with run length). :meth:`columns` gives them by name, as :func:`plot_descent` takes them.
    """

    def __init__(self, names: list[str]) -> None:
        index = {n: i for i, n in enumerate(names)}
        self.names = [c for c in PLOT_COLUMNS if c in index]
        self._cells = _getter([index[c] for c in self.names])
        self._steps = _getter([index[c] for c in STEP_COLUMNS if c in index])
        self.stride = 1
        self.count = 0                       # rows seen
        self._kept: list[tuple] = []         # (row number, at a change, cells...)
        self._last: tuple | None = None      # the last row seen, as an entry
        self._last_steps: tuple | None = None

    def write(self, rows, start: int, stop: int) -> None:
        if stop <= start:
            return
        cells, steps, kept, stride = self._cells, self._steps, self._kept, self.stride
        n, last_steps = self.count, self._last_steps
        for i in range(start, stop):
            row = rows[i]
            key = steps(row)
            if key != last_steps and last_steps is not None:
                if kept and kept[-1][0] == n - 1:            # the row before the change
                    kept[-1] = (n - 1, True) + kept[-1][2:]
                else:
                    kept.append((n - 1, True) + (cells(rows[i - 1]) if i > start
                                                 else self._last[2:]))
                kept.append((n, True) + cells(row))
            elif n % stride == 0:
                kept.append((n, False) + cells(row))
            last_steps = key
            n += 1
        self.count, self._last_steps = n, last_steps
        self._last = (n - 1, False) + cells(rows[stop - 1])
        if len(kept) > 2 * MAX_POINTS:
            self.stride *= 2
            self._kept = [e for e in kept if e[1] or e[0] % self.stride == 0]

    def columns(self) -> dict[str, np.ndarray]:
        """The kept rows (and the last row seen), columns by name."""
        kept = list(self._kept)
        if self._last is not None and (not kept or kept[-1][0] != self._last[0]):
            kept.append(self._last)
        out = {}
        for j, name in enumerate(self.names):
            values = [e[2 + j] for e in kept]
            if name == "mode":
                out[name] = np.array(["" if v is None else str(v) for v in values], dtype=str)
            else:
                out[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        return out


def _getter(positions: list[int]):
    """row -> the cells at ``positions``, as a tuple (itemgetter gives a bare cell for one)."""
    from operator import itemgetter
    if len(positions) > 1:
        return itemgetter(*positions)
    if positions:
        j = positions[0]
        return lambda row: (row[j],)
    return lambda row: ()


def plot_descent(history: str | os.PathLike[str] | Mapping[str, np.ndarray],
                 png: str | os.PathLike[str], title: str) -> Path:
    """Plot a run history (a CSV or Parquet file, or columns by name) to ``png``; returns
    the PNG path."""
    wanted = [T_COLUMN] + [c for p in PANELS for c in p.columns + p.right]
    if isinstance(history, Mapping):
        data = {k: _plain_column(history[k]) for k in wanted if k in history}
    else:
        data = read_columns(history, wanted)
    n = max((len(v) for v in data.values()), default=0)
    panels = tuple(p for p in PANELS if any(c in data for c in p.columns + p.right))
    png = Path(png)
    if n == 0 or not panels:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        fig = Figure(figsize=(10, _height_in(panels)), dpi=100)
        FigureCanvasAgg(fig)
        fig.suptitle(title)
        fig.text(0.5, 0.5, "no data in history" if n == 0 else "no plottable columns",
                 ha="center", va="center")
        fig.savefig(png)
        return png
    keep = _decimate(data, n)
    if T_COLUMN in data:
        t, xlabel = data[T_COLUMN][keep], "sim time (s)"
    else:
        t, xlabel = keep.astype(float), "row"
    present = frozenset(data)
    skeleton = _take_skeleton(present)
    if skeleton is None:
        skeleton = _Skeleton(present)
    skeleton.fill(t, xlabel, {k: v[keep] for k, v in data.items()}, title)
    skeleton.fig.savefig(png, pil_kwargs={"compress_level": PNG_COMPRESS})  # zlib 6: 3x time
    return png


def _height_in(panels) -> float:
    return 1.2 + 1.7 * max(sum(p.height for p in panels), 1)


# ---------------------------------------------------------------- the figure, built early
_skeleton: _Skeleton | None = None   # built by the prefetch thread for a full history
_skeleton_lock = threading.Lock()
PRESET_TICKS = 9    # tick objects made per axis as the skeleton is built (made lazily else)


def _take_skeleton(present: frozenset[str]) -> _Skeleton | None:
    """The figure the prefetch thread built, if it fits these columns (used once)."""
    global _skeleton
    thread = _prefetch
    if thread is not None and thread is not threading.current_thread():
        thread.join()
    with _skeleton_lock:
        skeleton, _skeleton = _skeleton, None
    if skeleton is not None and skeleton.present == present:
        return skeleton
    return None


def _build_skeleton() -> None:
    global _skeleton
    built = _Skeleton(frozenset(PLOT_COLUMNS))
    with _skeleton_lock:
        _skeleton = built


class _Skeleton:
    """The descent figure without its data: figure, Agg canvas, the panels' axes with their
    titles, labels, tick locators, legends and (empty) lines, and tick objects made ahead
    (creating them is a third of a draw). Built in :func:`prefetch`'s thread for a history
    with every plotted column, so that the end of a run -- an interrupted one above all --
    only sets the lines' data, rescales and renders (:meth:`fill`). Every plot is drawn
    this way, so a plot looks the same whether its skeleton was built early or not."""

    def __init__(self, present: frozenset[str]) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
        self.present = present
        self.panels = [p for p in PANELS if any(c in present for c in p.columns + p.right)]
        height_in = _height_in(self.panels)
        self.fig = fig = Figure(figsize=(10, height_in), dpi=100)
        FigureCanvasAgg(fig)
        self.title = fig.suptitle("")
        axes = fig.subplots(len(self.panels), 1, sharex=True, squeeze=False,
                            gridspec_kw={"height_ratios": [p.height for p in self.panels]})[:, 0]
        self.axes = list(axes)
        self.lines: list[tuple[object, object, str, float]] = []   # (axes, line, column, scale)
        self.alt_axes = None          # the altitude panel: m or km, by the data
        self.mode_line = None
        self.valid = None             # (axes, step line) of the altimeter validity
        for ax, panel in zip(axes, self.panels):
            self._panel(ax, panel)
            ax.grid(True, alpha=0.3)
            if panel.columns not in (("mode",), ("alt_valid",)):
                ax.yaxis.set_major_locator(MaxNLocator(Y_TICKS))
            # Fixed label and title positions: aligning them measures every tick label of
            # every panel (align_ylabels, automatic title placement: half the drawing time).
            ax.yaxis.set_label_coords(-0.07, 0.5)
        axes[-1].xaxis.set_major_locator(MaxNLocator(X_TICKS))   # shared by every panel
        # Fixed margins (in inches at the top and bottom) instead of tight_layout(): the
        # layout pass drew the figure twice (~2.5x the time; an interrupted run waits for it).
        fig.subplots_adjust(left=0.11, right=0.92, top=1 - 0.55 / height_in,
                            bottom=0.5 / height_in, hspace=0.55)
        for ax in fig.axes:
            ax.xaxis.get_major_ticks(PRESET_TICKS)
            ax.yaxis.get_major_ticks(PRESET_TICKS)

    def _panel(self, ax, panel: _Panel) -> None:
        present = self.present
        ax.set_title(panel.title, loc="left", fontsize=9, y=1.0, pad=3)
        if panel.columns == ("mode",):
            (self.mode_line,) = ax.step([], [], where="post", lw=1.2)
            self._mode_ticks(ax, list(MODES))
            return
        if panel.columns == ("alt_valid",):
            ax.set_yticks([0, 1], ["invalid", "valid"])
            ax.set_ylim(-0.1, 1.1)
            self.valid = (ax, None)
            return
        shown = [c for c in panel.columns if c in present]
        if panel.title == "altitude" and panel.ylabel == "m":
            self.alt_axes = ax
        for c in shown:
            (line,) = ax.plot([], [], lw=1, label=c)
            self.lines.append((ax, line, c, 1.0))
        ax.set_ylabel(panel.ylabel)
        labels = list(shown)
        right = [c for c in panel.right if c in present]
        if right:
            ax2 = ax.twinx() if shown else ax
            for c in right:
                (line,) = ax2.plot([], [], lw=1, ls="--", color="tab:red", label=c)
                self.lines.append((ax2, line, c, 1.0))
                labels.append(c)
            ax2.set_ylabel(panel.right_label)
            if ax2 is not ax:
                from matplotlib.ticker import MaxNLocator
                ax2.yaxis.set_major_locator(MaxNLocator(Y_TICKS))
                ax2.yaxis.set_label_coords(1.06, 0.5)
                handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
                ax.legend(handles, labels, fontsize=7, loc="upper right")
                return
        if len(labels) > 1:
            ax.legend(fontsize=7, loc="upper right")

    @staticmethod
    def _mode_ticks(ax, names: list[str]) -> None:
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_ylim(-0.5, len(names) - 0.5)

    def fill(self, t: np.ndarray, xlabel: str, data: dict[str, np.ndarray], title: str) -> None:
        """Put the (decimated) columns in, rescale the axes, set the title."""
        self.title.set_text(title)
        self.axes[-1].set_xlabel(xlabel)
        if self.alt_axes is not None:
            cols = [c for ax, _, c, _ in self.lines if ax is self.alt_axes]
            values = np.abs(np.concatenate([as_floats(data[c]) for c in cols]))
            values = values[np.isfinite(values)]
            if values.size and values.max() > 5000:
                self.alt_axes.set_ylabel("km")
                self.lines = [(ax, line, c, 1e-3 if ax is self.alt_axes else s)
                              for ax, line, c, s in self.lines]
        for _, line, c, scale in self.lines:
            line.set_data(t, as_floats(data[c]) * scale)
        if self.mode_line is not None:
            names, level = _mode_levels(data["mode"])
            self.mode_line.set_data(t, level)
            if len(names) != len(MODES):
                self._mode_ticks(self.mode_line.axes, names)
        if self.valid is not None:
            ax = self.valid[0]
            valid = np.nan_to_num(as_floats(data["alt_valid"]))
            ax.fill_between(t, valid, step="post", alpha=0.4)
            ax.step(t, valid, where="post", lw=1)
        for ax in self.fig.axes:
            ax.relim()
            ax.autoscale_view()


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


def _mode_levels(mode: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The mode's y ticks (mission order, unknown names after) and its level per row."""
    if mode.dtype.kind == "f":  # a history that logs the mode index instead of its name
        return list(MODES), mode
    extra = sorted({m for m in mode.tolist() if m and m not in MODES})
    names = list(MODES) + extra
    lookup = {name: i for i, name in enumerate(names)}
    return names, np.array([lookup.get(m, np.nan) for m in mode.tolist()], dtype=float)


def _plain_column(col: np.ndarray) -> np.ndarray:
    """An in-memory column as read_columns would give it (text as str, numbers as float)."""
    col = np.asarray(col)
    if col.dtype.kind in "OUS":
        return np.array(["" if v is None else str(v) for v in col.tolist()], dtype=str)
    return col.astype(float)
