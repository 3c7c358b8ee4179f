"""The three mission replays measured against their public figures (issue 12.4).

``fly(scenario, seed, fsw)`` flies plant and flight software in one process through the
in-process engine (``hil.engine.run_inprocess``, history in memory, nothing written) and
keeps a per-frame trace; ``figures(name, seed, fsw)`` flies a replay and measures its
figures, and ``PUBLIC`` holds the public ones they are compared with, with their sources
(docs/scenarios.md cites them in full). ``python -m hil.replays [--seeds 1-10] [--jobs 2]
[SCENARIO ...]`` prints the tables of docs/scenarios.md: each figure's public value, the
simulated range over the seeds, the ratios, and every seed's value.

The figures:

* ``m2-late-lrf``: the descent rate at the first valid range over the rate the flight
  software's own plan has at that height (the plan: the same legacy flight software on the
  same scenario with the range finder as it performed in its ground tests and without the
  navigation error it was to remove, ``plan_of``),
  and the descent speed when the lander passes 192 m (Mission 2's last telemetry);
* ``m1-crater-rim``: the true height above the ground when the flight software's estimate
  first reaches zero, the free-fall time (propellant out to impact), the impact speed and
  the mean true sink rate from the estimate's zero to propellant out (``hover_sink_mps``;
  ``hover_max_climb_mps``, the fastest true climb meanwhile, is negative if it never climbed);
* ``im1-no-lrf``: the estimate's error (estimate minus truth) at 30 m true height, the
  vertical and lateral speeds at first contact, and the outcome (``tipped_over``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from plant.config import ScenarioConfig

MISSIONS = ("m2-late-lrf", "m1-crater-rim", "im1-no-lrf")

# Public figure per replay figure: (key, label, public value, unit, source). docs/scenarios.md
# gives the sources in full.
PUBLIC: dict[str, list[tuple[str, str, float, str, str]]] = {
    "m2-late-lrf": [
        ("rate_ratio", "descent rate at the first valid range / plan", 66.0 / 44.0, "",
         "ispace, 24 June 2025 (SpaceNews): 66 against 44 m/s"),
        ("descent_at_192_mps", "descent speed at 192 m", 42.0, "m/s",
         "ispace, 24 June 2025 (SpaceNews): last telemetry"),
    ],
    "m1-crater-rim": [
        ("true_alt_at_nav_zero_m", "true height when the estimate reaches 0", 5000.0, "m",
         "ispace, 26 May 2023 (PC Watch)"),
        ("free_fall_s", "free fall, propellant out to impact", 88.0, "s",
         "AMSAT-DL tracking (SciLogs)"),
        ("impact_mps", "impact speed (public: above 100)", 100.0, "m/s",
         "ispace, 26 May 2023 (PC Watch)"),
        ("hover_sink_mps", "sink rate from estimate 0 to propellant out (public: under 1)",
         1.0, "m/s", "ispace, 26 May 2023 (PC Watch; ispace on X)"),
    ],
    "im1-no-lrf": [
        ("alt_error_m", "estimate - truth near the surface (30 m)", 100.0, "m",
         "Intuitive Machines via SpaceNews"),
        ("td_vertical_mps", "vertical speed at touchdown", 2.7, "m/s",
         "Intuitive Machines via SpaceNews, Reuters"),
        ("td_lateral_mps", "lateral speed at touchdown", 0.9, "m/s",
         "Intuitive Machines via SpaceNews (uncertain)"),
    ],
}
PUBLIC_OUTCOME = {"m2-late-lrf": "crashed", "m1-crater-rim": "out of propellant, fell",
                  "im1-no-lrf": "tipped over"}
RATIO_LO, RATIO_HI = 0.7, 1.4
LOWER_BOUNDS = {"impact_mps"}  # public "more than 100 m/s": a bound, not a figure
UPPER_BOUNDS = {"hover_sink_mps"}  # public "under 1 m/s" (and sinking: above 0)
IM1_NEAR_SURFACE_M = 30.0      # where IM-1's "about 100 m higher" is read
M2_LAST_TELEMETRY_M = 192.0    # Mission 2's last telemetry height


@dataclass
class Flight:
    """One in-process run: the outcome, per-frame trace arrays and a few events."""

    scenario: str
    seed: int
    fsw: str
    outcome: str
    reason: str
    touchdown: dict
    propellant_left_kg: float
    sim_time_s: float
    propellant_out_s: float | None
    trace: dict[str, np.ndarray] = field(default_factory=dict)


def _load(scenario: str | ScenarioConfig) -> ScenarioConfig:
    if isinstance(scenario, ScenarioConfig):
        return scenario
    from hil.scenario import load_scenario
    return load_scenario(scenario)


def fly(scenario: str | ScenarioConfig, seed: int = 1, fsw: str = "legacy") -> Flight:
    """Fly one landing with the in-process engine (history kept in memory, nothing
    written); the trace has one row per frame, the history's columns renamed short."""
    from hil.engine import run_inprocess

    cfg = _load(scenario)
    res = run_inprocess(cfg, seed, fsw, out_dir=None, history="memory", plots=False)
    h, s = res.history, res.summary
    r = np.stack([h["nav_x_m"], h["nav_y_m"], h["nav_z_m"]], axis=1)
    v = np.stack([h["nav_vx_mps"], h["nav_vy_mps"], h["nav_vz_mps"]], axis=1)
    mask = h["vel_valid_mask"]
    trace = {"t_s": h["t_s"], "true_alt_m": h["true_alt_m"], "nav_alt_m": h["nav_alt_m"],
             "vz_mps": h["true_vert_speed_mps"],
             "nav_vz_mps": np.einsum("ij,ij->i", r, v) / np.linalg.norm(r, axis=1),
             "vh_mps": h["true_horiz_speed_mps"], "alt_valid": h["alt_valid"].astype(bool),
             "vel_mask": np.where(np.isnan(mask), -1, mask).astype(int), "mode": h["mode"],
             "throttle": h["throttle_actual"], "propellant_kg": h["propellant_kg"]}
    out = np.nonzero(trace["propellant_kg"] <= 0.0)[0]
    return Flight(cfg.name, seed, str(fsw), s["outcome"], s["reason"], dict(s["touchdown"]),
                  float(s["propellant_left_kg"]), float(s["sim_time_s"]),
                  float(trace["t_s"][out[0]]) if len(out) else None, trace)


def plan_of(cfg: ScenarioConfig) -> ScenarioConfig:
    """The M2 plan: the descent the flight software meant to fly -- the same scenario with
    the range finder as it performed in its ground tests (at rest: the link's degradation
    faults and its loss with the closing speed removed) and no navigation error for it to
    remove (``[knowledge] altitude_bias_m`` 0), flown by the same flight software."""
    faults = [f for f in cfg.faults if not (f.sensor == "altimeter" and
                                            f.kind in ("power", "sensitivity", "late"))]
    knowledge = replace(cfg.knowledge, altitude_bias_m=0.0)
    altimeter = replace(cfg.altimeter, speed_loss_db_per_mps=0.0)
    return replace(cfg, faults=faults, knowledge=knowledge, altimeter=altimeter,
                   name=cfg.name + "-plan")


def _interp_at_alt(tr: dict, alt_m: float, key: str, upto: int | None = None) -> float:
    """``key`` where the true height first falls through ``alt_m`` (linear between frames)."""
    h = tr["true_alt_m"][:upto]
    below = np.nonzero(h <= alt_m)[0]
    if len(below) == 0:
        return math.nan
    i = int(below[0])
    if i == 0:
        return float(tr[key][0])
    h0, h1 = h[i - 1], h[i]
    w = (h0 - alt_m) / (h0 - h1) if h0 != h1 else 1.0
    return float(tr[key][i - 1] + w * (tr[key][i] - tr[key][i - 1]))


def m2_figures(flight: Flight, plan: Flight) -> dict[str, float]:
    tr = flight.trace
    valid = np.nonzero(tr["alt_valid"])[0]
    if len(valid) == 0:
        return {"first_valid_alt_m": math.nan, "descent_at_lock_mps": math.nan,
                "plan_descent_mps": math.nan, "rate_ratio": math.nan,
                "descent_at_192_mps": math.nan}
    i = int(valid[0])
    alt_lock = float(tr["true_alt_m"][i])
    descent = -float(tr["vz_mps"][i])
    planned = -_interp_at_alt(plan.trace, alt_lock, "vz_mps")
    return {"first_valid_alt_m": alt_lock, "descent_at_lock_mps": descent,
            "plan_descent_mps": planned, "rate_ratio": descent / planned,
            "descent_at_192_mps": -_interp_at_alt(tr, M2_LAST_TELEMETRY_M, "vz_mps")}


def m1_figures(flight: Flight) -> dict[str, float]:
    tr = flight.trace
    zero = np.nonzero(tr["nav_alt_m"] <= 0.0)[0]
    true_at_zero = float(tr["true_alt_m"][zero[0]]) if len(zero) else math.nan
    fall = (flight.sim_time_s - flight.propellant_out_s) if flight.propellant_out_s else math.nan
    impact = flight.touchdown.get("vertical_speed_mps", math.nan)
    # After the estimate reached zero, while the engine burns: the mean true sink rate (height
    # lost over time taken) and the fastest true climb (negative: it never climbed).
    climb = sink = math.nan
    if len(zero):
        end = len(tr["t_s"]) if flight.propellant_out_s is None else \
            int(np.searchsorted(tr["t_s"], flight.propellant_out_s))
        i = int(zero[0])
        if end - 1 > i:
            h, t = tr["true_alt_m"], tr["t_s"]
            sink = float((h[i] - h[end - 1]) / (t[end - 1] - t[i]))
            climb = float(tr["vz_mps"][i:end].max())
    return {"true_alt_at_nav_zero_m": true_at_zero, "free_fall_s": fall, "impact_mps": impact,
            "hover_sink_mps": sink, "hover_max_climb_mps": climb}


def im1_figures(flight: Flight) -> dict[str, Any]:
    tr = flight.trace
    err = _interp_at_alt(tr, IM1_NEAR_SURFACE_M, "nav_alt_m") - IM1_NEAR_SURFACE_M
    td = flight.touchdown
    return {"alt_error_m": err,
            "td_vertical_mps": td.get("vertical_speed_mps", math.nan),
            "td_lateral_mps": td.get("horizontal_speed_mps", math.nan),
            "tipped_over": flight.outcome == "tipped_over"}


def figures(name: str, seed: int, fsw: str = "legacy") -> tuple[Flight, dict[str, Any]]:
    """Fly the replay ``name`` on ``seed`` and measure its figures."""
    cfg = _load(name)
    flight = fly(cfg, seed, fsw)
    if name == "m2-late-lrf":
        figs = m2_figures(flight, fly(plan_of(cfg), seed, fsw))
    elif name == "m1-crater-rim":
        figs = m1_figures(flight)
    else:
        figs = im1_figures(flight)
    figs["outcome"] = flight.outcome
    return flight, figs


def ratios(name: str, figs: dict[str, Any]) -> dict[str, float]:
    return {key: figs[key] / public for key, _, public, _, _ in PUBLIC[name]}


def within(name: str, figs: dict[str, Any]) -> bool:
    """All the replay's figures within RATIO_LO..RATIO_HI of the public ones (a public
    lower bound, ``LOWER_BOUNDS``: at least it; an upper bound, ``UPPER_BOUNDS``: above 0
    and at most it), and IM-1 tipped over."""
    ok = all(r >= 1.0 if key in LOWER_BOUNDS else 0.0 < r <= 1.0 if key in UPPER_BOUNDS
             else RATIO_LO <= r <= RATIO_HI for key, r in ratios(name, figs).items())
    if name == "im1-no-lrf":
        ok = ok and figs["tipped_over"]
    return ok


def _seeds(text: str) -> list[int]:
    """``"1-10"``, ``"1,3,5"`` or both mixed -> the seeds; ValueError on anything else."""
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        lo, hi = int(a), int(b or a)
        if lo < 0 or hi < lo:
            raise ValueError(part)
        out.extend(range(lo, hi + 1))
    return out


def _one(job: tuple[str, int, str]) -> tuple[str, int, dict]:
    name, seed, fsw = job
    flight, figs = figures(name, seed, fsw)
    figs["reason"] = flight.reason
    return name, seed, figs


def markdown_table(name: str, per_seed: dict[int, dict]) -> list[str]:
    """The docs' tables: each figure's public value and source, the simulated range over the
    seeds (median) and the ratio range; then every seed's value."""
    seeds = sorted(per_seed)
    lines = ["| figure | public | source | simulated, seeds %s: min .. max (median) | "
             "ratio min .. max |" % _span(seeds), "|---|---|---|---|---|"]
    for key, label, public, unit, source in PUBLIC[name]:
        vals = [per_seed[s][key] for s in seeds]
        rs = [v / public for v in vals]
        u = f" {unit}" if unit else ""
        lines.append(f"| {label} | {_fmt(public)}{u} | {source} | {_fmt(min(vals))} .. "
                     f"{_fmt(max(vals))} ({_fmt(statistics.median(vals))}){u} | "
                     f"{min(rs):.2f} .. {max(rs):.2f} |")
    outs = sorted({per_seed[s]["outcome"] for s in seeds})
    lines.append(f"| outcome | {PUBLIC_OUTCOME[name]} | | {', '.join(outs)} | |")
    lines += ["", "| seed | " + " | ".join(str(s) for s in seeds) + " |",
              "|---|" + "---|" * len(seeds)]
    for key, label, _, unit, _ in PUBLIC[name]:
        u = f" ({unit})" if unit else ""
        lines.append(f"| {label}{u} | " + " | ".join(_fmt(per_seed[s][key]) for s in seeds)
                     + " |")
    return lines


def _span(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else \
        ",".join(map(str, seeds))


def _fmt(x: float) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    a = abs(x)
    return f"{x:.0f}" if a >= 100 else f"{x:.1f}" if a >= 10 else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hil.replays", description=__doc__.split("\n")[0])
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="default: all three")
    ap.add_argument("--seeds", default="1-10", help="e.g. 1-10 or 1,3,5")
    ap.add_argument("--fsw", default="legacy")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--verbose", action="store_true", help="every figure of every seed")
    a = ap.parse_args(argv)
    try:
        seeds = _seeds(a.seeds)
    except ValueError:
        ap.error(f"--seeds {a.seeds!r}: expected seeds like 1-10 or 1,3,5")
    if a.jobs < 1:
        ap.error(f"--jobs {a.jobs}: expected at least 1")
    unknown = [n for n in a.scenarios if n not in MISSIONS]
    if unknown:
        ap.error(f"not a mission replay: {', '.join(unknown)} (one of {', '.join(MISSIONS)})")
    jobs = [(n, s, a.fsw) for n in (a.scenarios or MISSIONS) for s in seeds]
    if a.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(a.jobs) as ex:
            results = list(ex.map(_one, jobs))
    else:
        results = [_one(j) for j in jobs]
    by: dict[str, dict[int, dict]] = {}
    for name, seed, figs in results:
        by.setdefault(name, {})[seed] = figs
    ok_all = True
    for name, per_seed in by.items():
        print(f"\n### {name} ({a.fsw})\n")
        if a.verbose:
            for s in sorted(per_seed):
                f = per_seed[s]
                print(f"seed {s}: " + ", ".join(
                    f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in f.items()))
            print()
        if a.fsw == "legacy":
            print("\n".join(markdown_table(name, per_seed)))
            bad = [s for s in per_seed if not within(name, per_seed[s])]
            ok_all = ok_all and not bad
            print(f"\nwithin {RATIO_LO}-{RATIO_HI}: "
                  f"{'all seeds' if not bad else 'not on seeds ' + ','.join(map(str, bad))}")
        else:
            for s in sorted(per_seed):
                print(f"seed {s}: {per_seed[s]['outcome']}: {per_seed[s]['reason']}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
