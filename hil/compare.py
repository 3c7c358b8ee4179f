"""``fsil compare RUN_A RUN_B``: one plot of two runs against sim time, and their key differences.

Two campaign folders (``fsil mc``) are compared as campaigns instead: success rates with
their intervals, footprints, touchdown figures (``hil.mc.compare``).

Each run is a run folder as ``fsil run`` writes it (``history.csv`` and ``summary.json``; a
path to either file inside the folder works too). The plot (one PNG, stacked panels, both
runs in each: run A blue, run B orange) shows

- altitude: true above the terrain (solid) and the flight software's estimate (dashed),
  columns ``true_alt_m`` and ``nav_alt_m``;
- descent rate, ``-true_vert_speed_mps`` (positive down);
- altimeter validity, ``alt_valid``, one lane per run (filled: valid);
- mode, ``mode``, as a step plot with the names in mission order (``bridge.protocol.MODES``).

The text gives, side by side with B - A: outcome, touchdown vertical/horizontal speed and
tilt, propellant left, sim time, time / true altitude / descent rate when the altimeter
first read valid, the largest navigation altitude error (estimate minus truth) and when;
then both reasons, the time of every mode change and the faults listed in summary.json
(key ``faults``), if any.

The PNG goes to ``--out`` or, by default, into run A's folder as ``compare-<B's folder
name>.png`` (next to the data it came from; comparing A with several runs keeps one plot
per pair). A missing folder, file or column is a :class:`CompareError`: one line, exit 2.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bridge.protocol import MODES
from hil.errors import ConfigError
from hil.history import as_floats, read_columns

REQUIRED_COLUMNS = ("t_s", "true_alt_m", "nav_alt_m", "true_vert_speed_mps", "alt_valid", "mode")
COLOURS = ("tab:blue", "tab:orange")


class CompareError(ConfigError):
    """A run folder that cannot be compared: missing, or missing a file or a column."""


@dataclass
class Run:
    """One run's data for the comparison."""

    label: str
    folder: Path
    summary: dict
    t: np.ndarray           # sim time, s
    true_alt: np.ndarray    # m above the terrain
    nav_alt: np.ndarray     # m, the flight software's estimate
    descent: np.ndarray     # m/s, positive down
    valid: np.ndarray       # bool, altimeter sample valid
    mode: list[str]         # mode name per row


# ---------------------------------------------------------------- loading


def run_folder(path: str | os.PathLike[str]) -> Path:
    """The run folder for a folder path or a path to its history.csv / summary.json."""
    p = Path(path)
    if p.is_file() and p.name in ("history.csv", "summary.json"):
        return p.parent
    if not p.exists():
        raise CompareError(f'run folder "{p}" not found')
    if not p.is_dir():
        raise CompareError(f'"{p}" is not a run folder (give the folder that holds '
                           f"history.csv and summary.json)")
    return p


def load_run(path: str | os.PathLike[str], label: str | None = None) -> Run:
    """Read a run folder's history.csv (the columns compared) and summary.json."""
    folder = run_folder(path)
    hist, summ = folder / "history.csv", folder / "summary.json"
    for f in (hist, summ):
        if not f.is_file():
            raise CompareError(f'"{f}" not found (is "{folder}" a run folder?)')
    try:
        with open(summ, encoding="utf-8") as fh:
            summary = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CompareError(f'cannot read "{summ}": {error}') from error
    if not isinstance(summary, dict):
        raise CompareError(f'"{summ}" is not a JSON object')
    if summary.get("provisional"):   # written as the run started; the plant never ended it
        raise CompareError(f'run "{folder}" is incomplete: {summary.get("reason")}; its '
                           f"history so far is kept (fsil plot {folder} draws it)")
    try:
        data = read_columns(hist, REQUIRED_COLUMNS)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CompareError(f'cannot read "{hist}": {error}') from error
    missing = [c for c in REQUIRED_COLUMNS if c not in data]
    if missing:
        raise CompareError(f'"{hist}" lacks column{"s" if len(missing) > 1 else ""} '
                           f"{', '.join(missing)}")
    return Run(
        label=label or folder.resolve().name,
        folder=folder,
        summary=summary,
        t=as_floats(data["t_s"]),
        true_alt=as_floats(data["true_alt_m"]),
        nav_alt=as_floats(data["nav_alt_m"]),
        descent=-as_floats(data["true_vert_speed_mps"]),
        valid=np.nan_to_num(as_floats(data["alt_valid"])) > 0.5,
        mode=_mode_names(data["mode"]),
    )


def _mode_names(col: np.ndarray) -> list[str]:
    """Mode names per row; a history that logs the index gets the names from MODES."""
    if col.dtype.kind == "f":
        return [MODES[int(v)] if math.isfinite(v) and 0 <= int(v) < len(MODES)
                else ("" if not math.isfinite(v) else str(int(v))) for v in col.tolist()]
    return [str(m) for m in col.tolist()]


# ---------------------------------------------------------------- what to compare


def first_valid(run: Run) -> tuple[float, float, float] | None:
    """(time s, true altitude m, descent rate m/s) at the first valid altimeter row."""
    idx = np.flatnonzero(run.valid)
    if idx.size == 0:
        return None
    i = int(idx[0])
    return float(run.t[i]), float(run.true_alt[i]), float(run.descent[i])


def largest_nav_error(run: Run) -> tuple[float, float] | None:
    """(estimate minus truth, m; time, s) where |nav_alt_m - true_alt_m| is largest."""
    err = run.nav_alt - run.true_alt
    ok = np.isfinite(err)
    if not ok.any():
        return None
    i = int(np.flatnonzero(ok)[np.argmax(np.abs(err[ok]))])
    return float(err[i]), float(run.t[i])


def mode_changes(run: Run) -> list[tuple[float, str]]:
    """(time, mode) of the first row and of every row whose mode differs from the last."""
    out: list[tuple[float, str]] = []
    for t, m in zip(run.t.tolist(), run.mode):
        if not out or m != out[-1][1]:
            out.append((t, m))
    return out


def _touchdown(run: Run, key: str) -> float | None:
    td = run.summary.get("touchdown") or {}
    v = td.get(key) if isinstance(td, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _number(run: Run, key: str) -> float | None:
    v = run.summary.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def differences(a: Run, b: Run) -> list[str]:
    """The comparison as text lines (what ``fsil compare`` prints)."""
    width = min(24, max(12, len(a.label), len(b.label)))
    lines = [f"A: {a.label}  ({a.folder}{_about(a)})",
             f"B: {b.label}  ({b.folder}{_about(b)})", ""]

    def row(name: str, va: Any, vb: Any, fmt: str = "{:.2f}", delta: bool = True) -> None:
        sa, sb = _cell(va, fmt), _cell(vb, fmt)
        d = ""
        if delta and isinstance(va, float) and isinstance(vb, float) \
                and math.isfinite(va) and math.isfinite(vb):
            d = format(vb - va, "+" + fmt[2:-1].lstrip("+"))
        lines.append(f"{name:34s} {sa:>{width}s} {sb:>{width}s} {d:>12s}".rstrip())

    lines.append(f"{'':34s} {a.label[:width]:>{width}s} {b.label[:width]:>{width}s} "
                 f"{'B - A':>12s}")
    row("outcome", a.summary.get("outcome", "-"), b.summary.get("outcome", "-"))
    row("touchdown vertical speed (m/s)", _touchdown(a, "vertical_speed_mps"),
        _touchdown(b, "vertical_speed_mps"))
    row("touchdown horizontal speed (m/s)", _touchdown(a, "horizontal_speed_mps"),
        _touchdown(b, "horizontal_speed_mps"))
    row("touchdown tilt (deg)", _touchdown(a, "tilt_deg"), _touchdown(b, "tilt_deg"))
    row("propellant left (kg)", _number(a, "propellant_left_kg"),
        _number(b, "propellant_left_kg"), "{:.1f}")
    row("sim time (s)", _number(a, "sim_time_s"), _number(b, "sim_time_s"), "{:.1f}")
    fa, fb = first_valid(a), first_valid(b)
    row("altimeter first valid at (s)", fa[0] if fa else "never", fb[0] if fb else "never",
        "{:.1f}")
    row("  true altitude then (m)", fa[1] if fa else None, fb[1] if fb else None, "{:.0f}")
    row("  descent rate then (m/s)", fa[2] if fa else None, fb[2] if fb else None, "{:.1f}")
    ea, eb = largest_nav_error(a), largest_nav_error(b)
    row("largest nav altitude error (m)", ea[0] if ea else None, eb[0] if eb else None,
        "{:+.1f}")
    row("  at (s)", ea[1] if ea else None, eb[1] if eb else None, "{:.1f}")
    lines.append("reason")
    for tag, run in (("A", a), ("B", b)):
        lines.append(f"  {tag}: {run.summary.get('reason', '-')}")
    lines.append("mode changes (s)")
    for tag, run in (("A", a), ("B", b)):
        changes = mode_changes(run)
        text = ", ".join(f"{m or '?'} {t:.1f}" for t, m in changes) if changes else "no rows"
        lines.append(f"  {tag}: {text}")
    if "faults" in a.summary or "faults" in b.summary:
        lines.append("faults")
        for tag, run in (("A", a), ("B", b)):
            faults = run.summary.get("faults")
            if not faults:
                lines.append(f"  {tag}: none")
                continue
            items = faults if isinstance(faults, list) else [faults]
            for i, f in enumerate(items):
                lines.append(f"  {tag if i == 0 else ' '}: {_fault_text(f)}")
    return lines


def _about(run: Run) -> str:
    s = run.summary
    parts = [f"scenario {s['scenario']}" if "scenario" in s else "",
             f"seed {s['seed']}" if "seed" in s else ""]
    text = ", ".join(p for p in parts if p)
    return f"; {text}" if text else ""


def _cell(v: Any, fmt: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return fmt.format(v) if math.isfinite(v) else "-"
    return str(v)


def _fault_text(f: Any) -> str:
    """One fault entry of summary.json as one line."""
    if not isinstance(f, dict):
        return str(f)
    head = " ".join(str(f[k]) for k in ("sensor", "kind") if f.get(k)) or "fault"
    if f.get("name"):
        head += f' "{f["name"]}"'
    fired = f.get("fired_t_s")
    state = f"fired at {fired:.1f} s" if isinstance(fired, (int, float)) else "did not fire"
    if isinstance(f.get("cleared_t_s"), (int, float)):
        state += f", cleared at {f['cleared_t_s']:.1f} s"
        if f.get("cleared_by"):
            state += f" ({f['cleared_by']})"
    extra = []
    for key in ("trigger", "params"):
        v = f.get(key)
        if isinstance(v, dict) and v:
            extra.append(", ".join(f"{k}={_short(x)}" for k, x in v.items()))
    if f.get("source") and f.get("source") != "scenario":
        extra.append(f"from {f['source']}")
    return head + ": " + state + (f" [{'; '.join(extra)}]" if extra else "")


def _short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


# ---------------------------------------------------------------- plot


def plot_compare(a: Run, b: Run, png: str | os.PathLike[str]) -> Path:
    """Write the comparison plot of runs ``a`` and ``b`` to ``png``; returns its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    png = Path(png)
    fig = Figure(figsize=(10, 9.5), dpi=100)
    FigureCanvasAgg(fig)
    fig.suptitle(f"{a.label}  vs  {b.label}")
    ratios = [2.2, 1.4, 0.7, 1.4]
    ax_alt, ax_rate, ax_valid, ax_mode = fig.subplots(
        4, 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    runs = [(a, COLOURS[0], _keep(a)), (b, COLOURS[1], _keep(b))]
    widths = {id(a): 2.4, id(b): 1.1}        # A wider, underneath: visible where they agree

    # Altitude: true solid, estimate dashed, km when large.
    peak = max([float(np.nanmax(np.abs(x))) for r, _, _ in runs for x in (r.true_alt, r.nav_alt)
                if x.size and np.isfinite(x).any()] or [0.0])
    scale, unit = (1e-3, "km") if peak > 5000.0 else (1.0, "m")
    for r, colour, k in runs:
        ax_alt.plot(r.t[k], r.true_alt[k] * scale, color=colour, lw=widths[id(r)])
        ax_alt.plot(r.t[k], r.nav_alt[k] * scale, color=colour, lw=widths[id(r)], ls="--")
    ax_alt.set_ylabel(unit)
    ax_alt.set_title("altitude above the terrain: true (solid), estimated (dashed)",
                     loc="left", fontsize=9)
    handles = [Line2D([], [], color=c, lw=widths[id(r)], ls=ls, label=f"{r.label} {what}")
               for r, c, _ in runs for ls, what in (("-", "true"), ("--", "estimate"))]
    ax_alt.legend(handles=handles, fontsize=7, loc="upper right")

    for r, colour, k in runs:
        ax_rate.plot(r.t[k], r.descent[k], color=colour, lw=widths[id(r)], label=r.label)
    ax_rate.axhline(0.0, color="0.6", lw=0.6)
    ax_rate.set_ylabel("m/s")
    ax_rate.set_title("descent rate (true, positive down)", loc="left", fontsize=9)
    ax_rate.legend(fontsize=7, loc="upper right")

    # Altimeter validity: one lane per run, A on top.
    for lane, (r, colour, k) in zip((1, 0), runs):
        level = lane + 0.8 * r.valid[k].astype(float)
        ax_valid.fill_between(r.t[k], lane, level, step="post", color=colour, alpha=0.5, lw=0)
        ax_valid.step(r.t[k], level, where="post", color=colour, lw=0.8)
    ax_valid.set_yticks([1.4, 0.4], [a.label[:16], b.label[:16]], fontsize=7)
    ax_valid.set_ylim(-0.1, 1.9)
    ax_valid.set_title("altimeter valid (filled = valid)", loc="left", fontsize=9)

    # Mode: names in mission order (unknown names after), the runs slightly apart.
    extra = sorted({m for r, _, _ in runs for m in r.mode if m and m not in MODES})
    names = list(MODES) + extra
    lookup = {n: i for i, n in enumerate(names)}
    for offset, (r, colour, k) in zip((0.08, -0.08), runs):
        level = np.array([lookup.get(r.mode[i], np.nan) for i in k.tolist()]) + offset
        ax_mode.step(r.t[k], level, where="post", color=colour, lw=1.4, label=r.label)
    ax_mode.set_yticks(range(len(names)), names, fontsize=7)
    ax_mode.set_ylim(-0.5, len(names) - 0.5)
    ax_mode.set_title("mode", loc="left", fontsize=9)
    ax_mode.set_xlabel("sim time (s)")

    for ax in (ax_alt, ax_rate, ax_valid, ax_mode):
        ax.grid(True, alpha=0.3)
    fig.align_ylabels([ax_alt, ax_rate, ax_valid, ax_mode])
    fig.tight_layout()
    fig.savefig(png)
    return png


def _keep(run: Run) -> np.ndarray:
    """Rows to plot: every row of a short run, else a stride plus every change of mode
    and altimeter validity (as the descent plot does)."""
    from hil.plots import _decimate
    n = run.t.size
    return _decimate({"mode": np.array(run.mode, dtype=object), "alt_valid": run.valid}, n)


# ---------------------------------------------------------------- entry point


def default_png(a_folder: Path, b_folder: Path) -> Path:
    """``RUN_A/compare-<B's folder name>.png``."""
    return a_folder / f"compare-{b_folder.resolve().name}.png"


def compare(run_a: str | os.PathLike[str], run_b: str | os.PathLike[str],
            out: str | os.PathLike[str] | None = None,
            labels: tuple[str, str] | None = None) -> tuple[Path, list[str]]:
    """Load two runs, write the plot, return ``(png path, text lines)``.

    Two campaign folders (``fsil mc``) are compared as campaigns (``hil.mc.compare``).
    """
    from hil.mc.compare import compare_campaigns, is_campaign
    if is_campaign(run_a) or is_campaign(run_b):
        if not (is_campaign(run_a) and is_campaign(run_b)):
            raise CompareError("compare two runs or two campaigns, not a run with a campaign")
        return compare_campaigns(run_a, run_b, out, labels)
    la, lb = labels if labels else (None, None)
    a, b = load_run(run_a, la), load_run(run_b, lb)
    if a.label == b.label:
        a.label, b.label = f"A {a.label}", f"B {b.label}"
    png = Path(out) if out is not None else default_png(a.folder, b.folder)
    if out is not None and png.is_dir():
        png = default_png(png, b.folder)          # --out a folder: the default name in it
    if not png.parent.is_dir():
        raise CompareError(f'folder "{png.parent}" for the plot does not exist')
    lines = differences(a, b)
    try:
        plot_compare(a, b, png)
    except OSError as error:
        raise CompareError(f'cannot write "{png}": {error.strerror or error}') \
            from error
    return png, lines
