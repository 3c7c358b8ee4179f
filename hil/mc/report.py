"""A campaign's results: runs.parquet from the journal, summary.json, report.md and its PNGs.

``finish(DIR)`` is what ``fsil mc`` runs at the end and ``fsil mc report DIR`` runs again
(also on a killed campaign: it reports the runs finished so far). Plots use matplotlib's
object API with the Agg canvas, as ``hil.plots`` does.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from hil.mc import stats
from hil.mc.campaign import load_meta, read_journal
from hil.mc.task import RESULT_COLUMNS

CONFIDENCE = 0.95
TARGETS = (0.99, 0.999)       # success probabilities the report says how to demonstrate
WORST = 10                    # worst runs listed
HISTOGRAMS = (("vertical_speed_mps", "touchdown vertical speed", "m/s", "max_vertical_speed_mps"),
              ("horizontal_speed_mps", "touchdown horizontal speed", "m/s",
               "max_horizontal_speed_mps"),
              ("tilt_deg", "touchdown tilt", "deg", "max_tilt_deg"),
              ("propellant_left_kg", "propellant left", "kg", None))


def write_parquet(out_dir: Path) -> Path:
    """runs.parquet: the journal's rows in run order (runs < the campaign's run count)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    meta = load_meta(out_dir)
    rows = sorted((r for r in read_journal(out_dir) if r["run"] < meta["runs"]),
                  key=lambda r: r["run"])
    draws = draw_columns(meta, rows)
    columns = list(RESULT_COLUMNS) + draws
    data = {c: [r.get(c) for r in rows] for c in columns}
    arrays = []
    for c in columns:
        values = data[c]
        kinds = {type(v) for v in values if v is not None}
        if kinds <= {int, float} and kinds and c not in ("run", "seed", "cycles",
                                                         "cov_fault_cycles", "safe_cycles"):
            arrays.append(pa.array([None if v is None else float(v) for v in values],
                                   type=pa.float64()))
        elif len(kinds) > 1 and not kinds <= {int, float}:   # a choice of mixed types
            arrays.append(pa.array([None if v is None else str(v) for v in values]))
        else:
            arrays.append(pa.array(values))
    path = out_dir / "runs.parquet"
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table(arrays, names=columns), tmp)
    os.replace(tmp, path)
    return path


def draw_columns(meta: dict, rows: list[dict]) -> list[str]:
    """The drawn-value columns, in the order the runs' rows hold them."""
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            if k not in RESULT_COLUMNS:
                seen.setdefault(k, None)
    return list(seen)


def read_runs(out_dir: Path) -> Any:
    """runs.parquet as a pandas DataFrame."""
    import pandas as pd
    return pd.read_parquet(Path(out_dir) / "runs.parquet")


def finish(out_dir: str | os.PathLike[str], *, command: str = "fsil") -> dict:
    """Write runs.parquet, summary.json, report.md and the PNGs; returns the summary."""
    out_dir = Path(out_dir)
    meta = load_meta(out_dir)
    write_parquet(out_dir)
    df = read_runs(out_dir)
    summary = summarise(meta, df)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n",
                                          encoding="utf-8")
    figures = plot_all(meta, df, summary, out_dir)
    (out_dir / "report.md").write_text(markdown(meta, df, summary, figures, out_dir, command),
                                       encoding="utf-8")
    return summary


# ---------------------------------------------------------------- numbers


def touchdown_limits(meta: dict) -> dict:
    return dict(meta["scenario"].get("touchdown") or {})


def run_limits(limits: dict, row: dict) -> dict:
    """The run's own ``[touchdown]`` criteria (a dispersed criterion replaces the nominal)."""
    out = dict(limits)
    for key in limits:
        drawn = row.get(f"touchdown.{key}")
        if drawn is not None and not (isinstance(drawn, float) and math.isnan(drawn)):
            out[key] = drawn
    return out


def failures(meta: dict, df: Any) -> list[str | None]:
    """Each run's failure category (None: landed), against the run's own criteria."""
    limits = touchdown_limits(meta)
    return [stats.failure_kind(row, run_limits(limits, row)) for row in df.to_dict("records")]


CLIMB_LIMIT_M = 50.0   # issue 11: a nominal descent never climbs more than this


def _runs_with(df: Any, column: str) -> int | None:
    """Runs with a non-zero count in ``column`` (None: no run recorded it)."""
    if not len(df) or column not in df or df[column].isna().all():
        return None
    return int((df[column].fillna(0) > 0).sum())


def summarise(meta: dict, df: Any) -> dict:
    n = len(df)
    landed = int((df["outcome"] == "landed").sum()) if n else 0
    lo, hi = stats.success_interval(landed, n, CONFIDENCE)
    rate = landed / n if n else 0.0
    kinds = Counter(k for k in failures(meta, df) if k is not None)
    touched = df[df["downrange_m"].notna()] if n else df
    ell = stats.ellipse(touched["downrange_m"].to_numpy(float),
                        touched["crossrange_m"].to_numpy(float)) if n else None
    failed = (df["outcome"] != "landed").to_numpy(int) if n else np.zeros(0, int)
    draws = draw_columns(meta, df.to_dict("records")) if n else []
    return {
        "campaign": meta["name"], "seed": meta["seed"], "fsw": meta["fsw"],
        "link": "two-process" if meta["two_process"] else "in-process",
        "runs_requested": meta["runs"], "runs_done": n, "complete": n >= meta["runs"],
        "outcomes": dict(Counter(df["outcome"])) if n else {},
        "landed": landed, "success_rate": rate,
        "interval": {"confidence": CONFIDENCE, "method": "Clopper-Pearson",
                     "low": lo, "high": hi},
        "demonstrated": {"confidence": CONFIDENCE, "one_sided_low":
                         stats.demonstrated(landed, n, CONFIDENCE)},
        "runs_needed": [{"target": t, "confidence": CONFIDENCE,
                         "with_no_failure": stats.runs_needed(t, CONFIDENCE, 0.0),
                         "at_observed_rate": stats.runs_needed(t, CONFIDENCE, 1.0 - rate)
                         if n else None} for t in TARGETS],
        "failures": dict(kinds.most_common()),
        # Runs whose flight software flagged its own covariance, or gave up the site.
        "cov_fault_runs": _runs_with(df, "cov_fault_cycles"),
        "safe_mode_runs": _runs_with(df, "safe_cycles"),
        # Largest climb of the radius above its start (issue 11: never more than 50 m).
        "climb_m": {"max": float(df["climb_m"].max()), "runs_over_50m":
                    int((df["climb_m"] > CLIMB_LIMIT_M).sum())}
        if n and "climb_m" in df and not df["climb_m"].isna().all() else None,
        "footprint": ell,
        "drivers": stats.drivers(df, draws, failed) if n else [],
        "wall_time_s": {"sum": float(df["wall_time_s"].sum()) if n else 0.0,
                        "median": float(df["wall_time_s"].median()) if n else None},
        "sim_time_s": {"median": float(df["sim_time_s"].median()) if n else None},
        "files": {"runs": "runs.parquet", "report": "report.md", "histories": "histories/"},
    }


def worst(meta: dict, df: Any, count: int = WORST) -> Any:
    """The runs that failed worst, then the landed ones closest to a limit."""
    limits = touchdown_limits(meta)
    score = np.zeros(len(df))
    for i, row in enumerate(df.to_dict("records")):
        own = run_limits(limits, row)
        for col, crit, _ in stats.CRITERIA:
            value, lim = row.get(col), own.get(crit)
            if lim and value is not None and math.isfinite(value):
                score[i] = max(score[i], value / lim)
    score = np.where(df["outcome"].to_numpy() == "landed", score, 1e3 + score)
    score = np.where(df["outcome"].to_numpy() == "error", 1e6, score)
    order = np.argsort(-np.nan_to_num(score, nan=1e2), kind="stable")
    out = df.iloc[order[:count]].copy()
    out["limit_ratio"] = score[order[:count]]
    return out


# ---------------------------------------------------------------- plots


def plot_all(meta: dict, df: Any, summary: dict, out_dir: Path) -> dict[str, str]:
    if not len(df):
        return {}
    figures = {"footprint": plot_footprint(df, summary, out_dir / "footprint.png"),
               "touchdown": plot_histograms(meta, df, out_dir / "touchdown.png"),
               "failures": plot_failures(meta, df, summary, out_dir / "failures.png")}
    return {k: v.name for k, v in figures.items() if v is not None}


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_footprint(df: Any, summary: dict, png: Path) -> Path | None:
    from matplotlib.patches import Ellipse
    ok = df["downrange_m"].notna() & df["crossrange_m"].notna()
    if not ok.any():
        return None
    fig = _figure(7, 6)
    ax = fig.add_subplot(1, 1, 1)
    landed = ok & (df["outcome"] == "landed")
    failed = ok & (df["outcome"] != "landed")
    ax.scatter(df.loc[landed, "downrange_m"], df.loc[landed, "crossrange_m"], s=10,
               c="tab:blue", alpha=0.6, label=f"landed ({int(landed.sum())})")
    ax.scatter(df.loc[failed, "downrange_m"], df.loc[failed, "crossrange_m"], s=40,
               c="tab:red", marker="x", label=f"not landed ({int(failed.sum())})")
    ax.plot([0], [0], marker="+", ms=14, c="k", ls="none", label="target")
    ell = summary.get("footprint")
    if ell:
        ax.add_patch(Ellipse(ell["centre_m"], 2 * ell["semi_major_m"], 2 * ell["semi_minor_m"],
                             angle=ell["angle_deg"], fill=False, ec="tab:green", lw=1.5,
                             label=f"{100 * ell['level']:.1f} % ellipse"))
    ax.set_xlabel("downrange, m (+ past the target)")
    ax.set_ylabel("crossrange, m")
    ax.set_title(f"{summary['campaign']}: landing footprint, {summary['runs_done']} runs")
    ax.axis("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    return png


def plot_histograms(meta: dict, df: Any, png: Path) -> Path | None:
    limits = touchdown_limits(meta)
    fig = _figure(10, 7)
    for i, (col, title, unit, crit) in enumerate(HISTOGRAMS):
        ax = fig.add_subplot(2, 2, i + 1)
        x = df[col].to_numpy(float) if col in df else np.zeros(0)
        x = x[np.isfinite(x)]
        if len(x):
            ax.hist(x, bins=min(50, max(5, int(math.sqrt(len(x))) + 1)), color="tab:blue",
                    alpha=0.8)
        lim = limits.get(crit) if crit else 0.0
        if lim is not None:
            ax.axvline(lim, color="tab:red", ls="--",
                       label=f"limit {lim:g} {unit}" if crit else "empty")
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit)
        ax.set_ylabel("runs")
    fig.tight_layout()
    fig.savefig(png)
    return png


def plot_failures(meta: dict, df: Any, summary: dict, png: Path) -> Path | None:
    kinds = summary["failures"]
    drivers = summary["drivers"][:8]
    if not kinds and not drivers:
        return None
    fig = _figure(10, 4.5)
    ax = fig.add_subplot(1, 2, 1)
    if kinds:
        names = list(kinds)[::-1]
        ax.barh(names, [kinds[k] for k in names], color="tab:red")
    ax.set_title("failures by reason", fontsize=10)
    ax.set_xlabel("runs")
    ax = fig.add_subplot(1, 2, 2)
    if drivers:
        names = [d["key"] for d in drivers][::-1]
        vals = [d.get("rho", d["strength"]) for d in drivers][::-1]
        ax.barh(names, vals, color=["tab:orange" if v > 0 else "tab:purple" for v in vals])
        ax.axvline(0, color="k", lw=0.8)
    ax.set_title("association with failure", fontsize=10)
    ax.set_xlabel("Spearman rho (choices of text: Cramér's V)")
    fig.tight_layout()
    fig.savefig(png)
    return png


# ---------------------------------------------------------------- report.md


def replay_command(out_dir: Path, run: int, command: str = "fsil") -> str:
    return f"{command} run --campaign {shlex.quote(str(out_dir))} --run {run}"


def markdown(meta: dict, df: Any, s: dict, figures: dict[str, str], out_dir: Path,
             command: str = "fsil") -> str:
    pct = lambda x: f"{100 * x:.2f} %"  # noqa: E731
    iv = s["interval"]
    lines = [f"# Campaign {s['campaign']}: {s['runs_done']} of {s['runs_requested']} runs", "",
             f"Seed {s['seed']}, flight software `{s['fsw']}`, {s['link']}."
             + ("" if s["complete"] else " **Incomplete**: run the same `fsil mc` command "
                                         "again to finish it."), "",
             "## Success", "",
             f"- landed: **{s['landed']} of {s['runs_done']} = {pct(s['success_rate'])}**, "
             f"{int(100 * iv['confidence'])} % interval {pct(iv['low'])} .. {pct(iv['high'])} "
             f"({iv['method']})",
             f"- demonstrated at {int(100 * iv['confidence'])} % confidence: P(landing) >= "
             f"{pct(s['demonstrated']['one_sided_low'])}"]
    if s.get("cov_fault_runs") is not None:
        lines.append(f"- runs whose covariance check fired (FLAG_NAV_COV_FAULT): "
                     f"{s['cov_fault_runs']}; runs that gave up the site (mode safe): "
                     f"{s['safe_mode_runs']}")
    if s.get("climb_m"):
        lines.append(f"- largest climb above the start (radius): {s['climb_m']['max']:.1f} m; "
                     f"runs climbing more than {CLIMB_LIMIT_M:.0f} m: "
                     f"{s['climb_m']['runs_over_50m']}")
    for need in s["runs_needed"]:
        at = need["at_observed_rate"]
        lines.append(f"- to demonstrate {pct(need['target'])} at {int(100 * need['confidence'])} "
                     f"% confidence: {need['with_no_failure']} runs without a failure"
                     + (f"; {at} runs at the observed failure rate" if at else
                        "; the observed failure rate cannot demonstrate it"))
    lines += ["", "| outcome | runs |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(s["outcomes"].items(), key=lambda kv: -kv[1])]
    ell = s["footprint"]
    lines += ["", "## Landing footprint", ""]
    if ell:
        lines.append(f"{100 * ell['level']:.1f} % ellipse of the {ell['points']} touchdown "
                     f"points: centre {ell['centre_m'][0]:.1f} m downrange, "
                     f"{ell['centre_m'][1]:.1f} m crossrange; semi-axes "
                     f"{ell['semi_major_m']:.1f} m x {ell['semi_minor_m']:.1f} m at "
                     f"{ell['angle_deg']:.0f} deg from downrange.")
    if "footprint" in figures:
        lines += ["", f"![footprint]({figures['footprint']})"]
    lines += ["", "## Touchdown", ""]
    for col, title, unit, _ in HISTOGRAMS:
        if col in df and df[col].notna().any():
            x = df[col].dropna()
            lines.append(f"- {title}: median {x.median():.2f} {unit}, 99th percentile "
                         f"{x.quantile(0.99):.2f} {unit}, max {x.max():.2f} {unit}")
    if "touchdown" in figures:
        lines += ["", f"![touchdown]({figures['touchdown']})"]
    lines += ["", "## Failures", ""]
    if s["failures"]:
        lines += ["| reason | runs |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in s["failures"].items()]
    else:
        lines.append("None.")
    if s["drivers"]:
        lines += ["", "What goes with failure (strongest first): Spearman's rank correlation "
                      "of each dispersed number with failing (positive: higher values fail "
                      "more); for choices, the failure rate per value and the chi-square "
                      "test's p-value.", "",
                  "| dispersed key | association | p-value |", "|---|---|---|"]
        for d in s["drivers"][:15]:
            what = f"rho {d['rho']:+.2f}" if "rho" in d else \
                ", ".join(f"{k}: {100 * v:.0f} % fail" for k, v in d["rates"].items())
            lines.append(f"| `{d['key']}` | {what} | {d['p_value']:.2g} |")
    if "failures" in figures:
        lines += ["", f"![failures]({figures['failures']})"]
    lines += ["", "## Worst runs", "", "| run | outcome | reason | replay |", "|---|---|---|---|"]
    for row in worst(meta, df).to_dict("records"):
        reason = str(row["reason"]).replace("|", "/")[:120]
        lines.append(f"| {row['run']} | {row['outcome']} | {reason} | "
                     f"`{replay_command(out_dir, int(row['run']), command)}` |")
    lines += ["", f"Rows: `runs.parquet` (one per run: drawn values, outcome, touchdown, "
                  f"landing point, navigation error, times, worker); histories of the failed "
                  f"runs and {meta.get('keep_histories', 0)} others in `histories/`.", ""]
    return "\n".join(lines)
