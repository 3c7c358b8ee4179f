"""Campaign statistics: success rate with its interval, runs needed, footprint, failure drivers.

All intervals and tests come from scipy.stats: Clopper-Pearson (exact binomial) intervals,
the chi-square quantile for the footprint ellipse, Spearman's rank correlation and the
chi-square test of independence for what drives the failures.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FOOTPRINT_LEVEL = 0.997      # the "3-sigma" ellipse of a 2-D normal footprint


def success_interval(landed: int, runs: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval of the success probability."""
    if runs == 0:
        return (0.0, 1.0)
    from scipy.stats import binomtest
    ci = binomtest(landed, runs).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def demonstrated(landed: int, runs: int, confidence: float = 0.95) -> float:
    """One-sided lower Clopper-Pearson bound: P(success) >= this, at ``confidence``."""
    if runs == 0 or landed == 0:
        return 0.0
    from scipy.stats import beta
    return float(beta.ppf(1.0 - confidence, landed, runs - landed + 1))


def runs_needed(target: float, confidence: float = 0.95, failure_rate: float = 0.0,
                limit: int = 10_000_000) -> int | None:
    """Fewest runs whose one-sided lower bound reaches ``target`` at ``confidence`` if the
    runs fail at ``failure_rate`` (0: no failure at all, the success-run rule
    n = ln(1 - C) / ln(R)); None if that rate can never demonstrate ``target``."""
    if failure_rate <= 0.0:
        return math.ceil(math.log(1.0 - confidence) / math.log(target))
    if 1.0 - failure_rate <= target:
        return None
    lo, hi = 1, 1
    while demonstrated(_successes(hi, failure_rate), hi, confidence) < target:
        lo, hi = hi, hi * 2
        if hi > limit:
            return None
    while lo < hi:  # the bound grows with n (at a fixed rate) up to rounding: bisect
        mid = (lo + hi) // 2
        if demonstrated(_successes(mid, failure_rate), mid, confidence) >= target:
            hi = mid
        else:
            lo = mid + 1
    return hi


def _successes(n: int, failure_rate: float) -> int:
    return n - math.ceil(failure_rate * n - 1e-9)


def ellipse(x: np.ndarray, y: np.ndarray, level: float = FOOTPRINT_LEVEL) -> dict | None:
    """The ``level`` ellipse of the points' fitted 2-D normal: centre, semi-axes, angle."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        return None
    from scipy.stats import chi2
    cov = np.cov(np.vstack([x, y]))
    values, vectors = np.linalg.eigh(cov)
    scale = math.sqrt(chi2.ppf(level, 2))
    major = vectors[:, 1]
    return {"level": level, "centre_m": [float(x.mean()), float(y.mean())],
            "semi_major_m": float(scale * math.sqrt(max(values[1], 0.0))),
            "semi_minor_m": float(scale * math.sqrt(max(values[0], 0.0))),
            "angle_deg": float(math.degrees(math.atan2(major[1], major[0]))),
            "points": int(len(x))}


def drivers(table: Any, draw_columns: list[str], failed: np.ndarray) -> list[dict]:
    """How each dispersed value goes with failure, strongest first.

    Numbers: Spearman's rank correlation with the 0/1 failure flag (a positive rho: higher
    values fail more). Choices: failure rate per value and the chi-square test of
    independence. Columns that do not vary are left out.
    """
    from scipy.stats import chi2_contingency, spearmanr
    out = []
    for name in draw_columns:
        col = table[name]
        values = list(col)
        present = [v is not None for v in values]
        if sum(present) < 3:
            continue
        f = failed[np.array(present)]
        vals = [v for v in values if v is not None]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            x = np.array(vals, dtype=float)
            if np.ptp(x) == 0 or f.min() == f.max():
                continue
            rho, p = spearmanr(x, f)
            out.append({"key": name, "kind": "rank correlation", "rho": float(rho),
                        "p_value": float(p), "strength": abs(float(rho))})
        else:
            labels = sorted({str(v) for v in vals})
            if len(labels) < 2 or f.min() == f.max():
                continue
            s = np.array([str(v) for v in vals])
            counts = np.array([[np.sum((s == lab) & (f == 1)), np.sum((s == lab) & (f == 0))]
                               for lab in labels])
            p = float(chi2_contingency(counts)[1])
            rates = {lab: float(c[0] / max(1, c.sum())) for lab, c in zip(labels, counts)}
            n = counts.sum()
            cramer = math.sqrt(chi2_contingency(counts, correction=False)[0] / n)
            out.append({"key": name, "kind": "failure rate by value", "rates": rates,
                        "p_value": p, "strength": cramer})
    return sorted(out, key=lambda d: -d["strength"])


CRITERIA = (("vertical_speed_mps", "max_vertical_speed_mps", "vertical speed"),
            ("horizontal_speed_mps", "max_horizontal_speed_mps", "horizontal speed"),
            ("tilt_deg", "max_tilt_deg", "tilt"),
            ("angular_rate_dps", "max_angular_rate_dps", "angular rate"))


def failure_kind(row: dict, touchdown: dict) -> str | None:
    """Why a run failed, as a category: the outcome, and for a crash the criteria exceeded
    (judged from the row's values against the scenario's ``[touchdown]``); None if landed."""
    outcome = row["outcome"]
    if outcome == "landed":
        return None
    if outcome != "crashed":
        return outcome
    gear = _gear_reason(str(row.get("reason") or ""))
    if gear:
        return f"crashed: {gear}"
    over = [label for col, crit, label in CRITERIA
            if row.get(col) is not None and touchdown.get(crit) is not None
            and row[col] > touchdown[crit]]
    return "crashed: " + (" + ".join(over) if over else "other")


def _gear_reason(reason: str) -> str | None:
    """The landing gear's verdict in a crash reason (``gear overload: leg 2 ...``,
    ``body contact: ...``, ``not at rest 30 s after ...``, ``at rest tilted 17 deg ...``)."""
    head = reason.split(":", 1)[0].strip()
    if ":" in reason and head and len(head.split()) <= 3 and not any(c.isdigit() for c in head):
        return head
    for phrase in ("not at rest", "at rest tilted"):
        if reason.startswith(phrase):
            return phrase
    return None
