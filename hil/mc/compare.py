"""``fsil compare CAMPAIGN_A CAMPAIGN_B``: two campaigns side by side.

The text gives each campaign's success rate with its Clopper-Pearson interval, the difference
and Fisher's exact test of it (scipy), the footprint ellipses, touchdown speeds and the
failures by reason. The PNG shows both footprints (scatter, failures marked, the 99.7 %
ellipses) and both success rates with their intervals. Called by ``hil.compare.compare``
when both folders are campaign folders (they hold campaign.json).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hil.errors import ConfigError
from hil.mc.campaign import load_meta


def is_campaign(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / "campaign.json").is_file()


def _load(path: Path, label: str | None) -> dict:
    import json

    from hil.mc.report import read_runs
    meta = load_meta(path)
    summary_path = path / "summary.json"
    if not (path / "runs.parquet").is_file() or not summary_path.is_file():
        raise ConfigError(f'campaign "{path}" has no results yet; run: fsil mc report {path}')
    return {"label": label or path.resolve().name, "folder": path, "meta": meta,
            "summary": json.loads(summary_path.read_text(encoding="utf-8")),
            "rows": read_runs(path)}


def compare_campaigns(a_dir: str | os.PathLike[str], b_dir: str | os.PathLike[str],
                      out: str | os.PathLike[str] | None = None,
                      labels: tuple[str, str] | None = None) -> tuple[Path, list[str]]:
    """Compare two campaign folders; returns ``(png path, text lines)``."""
    la, lb = labels if labels else (None, None)
    a, b = _load(Path(a_dir), la), _load(Path(b_dir), lb)
    if a["label"] == b["label"]:
        a["label"], b["label"] = f"A {a['label']}", f"B {b['label']}"
    png = Path(out) if out is not None else Path(a_dir) / f"compare-{Path(b_dir).resolve().name}.png"
    if out is not None and png.is_dir():
        png = png / f"compare-{Path(b_dir).resolve().name}.png"
    if not png.parent.is_dir():
        raise ConfigError(f'folder "{png.parent}" for the plot does not exist')
    lines = differences(a, b)
    plot(a, b, png)
    return png, lines


def differences(a: dict, b: dict) -> list[str]:
    from scipy.stats import fisher_exact
    sa, sb = a["summary"], b["summary"]
    w = max(len(a["label"]), len(b["label"]), 14)
    lines = [f"{'':24s} {a['label']:>{w}s} {b['label']:>{w}s}"]

    def row(name: str, va: Any, vb: Any) -> None:
        lines.append(f"{name:24s} {va:>{w}s} {vb:>{w}s}")

    def rate(s: dict) -> str:
        return f"{100 * s['success_rate']:.2f} %"

    def interval(s: dict) -> str:
        return f"{100 * s['interval']['low']:.1f}..{100 * s['interval']['high']:.1f} %"

    row("scenario", a["meta"]["name"], b["meta"]["name"])
    row("flight software", a["meta"]["fsw"], b["meta"]["fsw"])
    row("runs", str(sa["runs_done"]), str(sb["runs_done"]))
    row("landed", str(sa["landed"]), str(sb["landed"]))
    row("success rate", rate(sa), rate(sb))
    row("95 % interval", interval(sa), interval(sb))
    for s_key, label in (("semi_major_m", "footprint 99.7 % major"),
                         ("semi_minor_m", "footprint 99.7 % minor")):
        fa, fb = sa.get("footprint"), sb.get("footprint")
        row(label + ", m", f"{fa[s_key]:.1f}" if fa else "-", f"{fb[s_key]:.1f}" if fb else "-")
    for col, label in (("vertical_speed_mps", "td vertical p99, m/s"),
                       ("horizontal_speed_mps", "td horizontal p99, m/s"),
                       ("propellant_left_kg", "propellant left p50, kg")):
        q = 0.5 if "p50" in label else 0.99
        va, vb = (r[col].dropna().quantile(q) if r[col].notna().any() else None
                  for r in (a["rows"], b["rows"]))
        row(label, "-" if va is None else f"{va:.2f}", "-" if vb is None else f"{vb:.2f}")
    table = [[sa["landed"], sa["runs_done"] - sa["landed"]],
             [sb["landed"], sb["runs_done"] - sb["landed"]]]
    p = fisher_exact(table)[1] if sa["runs_done"] and sb["runs_done"] else float("nan")
    lines.append(f"success rate B - A: {100 * (sb['success_rate'] - sa['success_rate']):+.2f} "
                 f"points (Fisher's exact test p = {p:.3g})")
    kinds = sorted(set(sa["failures"]) | set(sb["failures"]))
    for k in kinds:
        row(f"  {k}"[:24], str(sa["failures"].get(k, 0)), str(sb["failures"].get(k, 0)))
    return lines


def plot(a: dict, b: dict, png: Path) -> Path:
    from matplotlib.patches import Ellipse

    from hil.mc.report import _figure
    fig = _figure(12, 5.5)
    ax = fig.add_subplot(1, 2, 1)
    for c, colour in ((a, "tab:blue"), (b, "tab:orange")):
        rows, s = c["rows"], c["summary"]
        ok = rows["downrange_m"].notna()
        landed = ok & (rows["outcome"] == "landed")
        failed = ok & (rows["outcome"] != "landed")
        ax.scatter(rows.loc[landed, "downrange_m"], rows.loc[landed, "crossrange_m"], s=8,
                   c=colour, alpha=0.5, label=f"{c['label']} landed")
        ax.scatter(rows.loc[failed, "downrange_m"], rows.loc[failed, "crossrange_m"], s=30,
                   c=colour, marker="x", label=f"{c['label']} not landed")
        e = s.get("footprint")
        if e:
            ax.add_patch(Ellipse(e["centre_m"], 2 * e["semi_major_m"], 2 * e["semi_minor_m"],
                                 angle=e["angle_deg"], fill=False, ec=colour, lw=1.5))
    ax.plot([0], [0], marker="+", ms=14, c="k", ls="none", label="target")
    ax.set_xlabel("downrange, m")
    ax.set_ylabel("crossrange, m")
    ax.set_title("landing footprints and 99.7 % ellipses", fontsize=10)
    ax.axis("equal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax = fig.add_subplot(1, 2, 2)
    for i, (c, colour) in enumerate(((a, "tab:blue"), (b, "tab:orange"))):
        s = c["summary"]
        r, lo, hi = s["success_rate"], s["interval"]["low"], s["interval"]["high"]
        ax.bar(i, 100 * r, color=colour, alpha=0.8)
        ax.errorbar(i, 100 * r, yerr=[[100 * (r - lo)], [100 * (hi - r)]], color="k",
                    capsize=8)
    ax.set_xticks([0, 1], [a["label"], b["label"]])
    ax.set_ylabel("landed, % (95 % Clopper-Pearson interval)")
    ax.set_ylim(0, 105)
    ax.set_title("success rate", fontsize=10)
    fig.tight_layout()
    fig.savefig(png)
    return png
