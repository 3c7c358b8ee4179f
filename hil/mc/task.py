"""One run of a campaign, as a worker runs it: build run k's scenario, fly it, make its row.

Everything here is a pure function of the campaign spec and the run index (the wall time and
the worker aside), so a run gives the same row on any worker, in any order, and again when
replayed. A run that raises still gives a row (outcome ``error``, the exception in ``error``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any

from hil import dispersions
from hil.scenario import scenario_from_dict, scenario_to_dict
from plant.config import ScenarioConfig

# The columns every row has, in this order; the drawn values follow them.
RESULT_COLUMNS = (
    "run", "seed", "outcome", "reason", "error",
    "vertical_speed_mps", "horizontal_speed_mps", "tilt_deg", "angular_rate_dps",
    "downrange_m", "crossrange_m", "distance_m", "propellant_left_kg", "propellant_used_kg",
    "nav_pos_err_m", "nav_vel_err_mps", "nav_alt_err_m",
    "first_touch_ok", "slope_deg", "rest_tilt_deg", "leg_load_max_n", "stroke_max_m",
    "sim_time_s", "wall_time_s", "cycles", "cov_fault_cycles", "safe_cycles", "climb_m",
    "worker", "history",
)
FLAG_NAV_COV_FAULT = 64      # bridge.protocol: the flight software's covariance check failed
SAFE_MODE = "safe"           # bridge.protocol.MODES: the flight software gave up the site


@dataclass(frozen=True)
class CampaignSpec:
    """What every run of a campaign shares (picklable; sent with each task)."""

    scenario: dict            # the campaign scenario, scenario_to_dict form, with [dispersions]
    seed: int                 # the campaign seed
    fsw: str = "default"      # flight software spec (registry string)
    two_process: bool = False  # the real link (ZeroMQ ipc, a flight software process) per run

    @property
    def digest(self) -> str:
        """A fingerprint of everything that decides the runs' results."""
        text = json.dumps([self.scenario, self.seed, self.fsw, self.two_process],
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_BASE: dict[str, tuple[ScenarioConfig, dispersions.Plan]] = {}  # per process: parsed once


def base_config(spec: CampaignSpec) -> ScenarioConfig:
    """The campaign scenario as a config, parsed once per process and campaign."""
    return _parsed(spec)[0]


def draw(spec: CampaignSpec, run: int) -> dict[str, Any]:
    """Run ``run``'s drawn values."""
    return _parsed(spec)[1].draw(spec.seed, run)


def _parsed(spec: CampaignSpec) -> tuple[ScenarioConfig, dispersions.Plan]:
    key = spec.digest
    if key not in _BASE:
        _BASE.clear()
        cfg = scenario_from_dict(spec.scenario, "campaign")
        _BASE[key] = (cfg, dispersions.Plan(cfg))
    return _BASE[key]


def run_config(spec: CampaignSpec, run: int) -> tuple[ScenarioConfig, int, dict[str, Any]]:
    """Run ``run``'s scenario (draws applied, ``[run] seed`` = its plant seed), seed and draws.

    Raises :class:`hil.errors.ScenarioError` if a draw leaves a key out of its range.
    """
    base = base_config(spec)
    draws = draw(spec, run)
    return _build(spec, base, run, draws), dispersions.plant_seed(spec.seed, run), draws


def _build(spec: CampaignSpec, base: ScenarioConfig, run: int, draws: dict) -> ScenarioConfig:
    data = dispersions.apply(scenario_to_dict(base), base, draws)
    data["run"]["seed"] = dispersions.plant_seed(spec.seed, run)
    return scenario_from_dict(data, f"{base.name} run {run}")


def run_one(spec: CampaignSpec, run: int, keep_history: bool) -> tuple[dict, Any]:
    """Fly run ``run``; returns its row and its history (a pyarrow Table) when kept.

    The history is kept when ``keep_history`` or the run did not land.
    """
    wall0 = time.perf_counter()
    row: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
    row.update(run=run, seed=dispersions.plant_seed(spec.seed, run),
               worker=f"{socket.gethostname()}:{os.getpid()}")
    history = None
    try:
        base = base_config(spec)
        draws = draw(spec, run)
        row.update(draws)
        cfg = _build(spec, base, run, draws)
        seed = row["seed"]
        from hil.mc.engine import fly
        summary, history = fly(cfg, seed, spec.fsw, spec.two_process)
        row.update(summary_values(summary))
        row.update(flag_counts(history))
    except Exception as e:  # recorded in the row; the campaign goes on
        row.update(outcome="error", reason=f"{type(e).__name__}: {e}"[:500],
                   error="".join(traceback.format_exception(e))[-4000:])
    row["wall_time_s"] = time.perf_counter() - wall0
    if history is not None and (keep_history or row["outcome"] != "landed"):
        row["history"] = f"histories/run-{run:06d}.parquet"
    else:
        history = None
    return row, history


def flag_counts(history: Any) -> dict[str, Any]:
    """Cycles whose command raised the covariance-fault flag, cycles in mode ``safe``, and
    the largest climb (m) of the distance from the Moon's centre above its first value (a
    history as a pyarrow Table): "the covariance check never fires in any campaign" and
    "altitude never rises more than 50 m above its start" are then columns of the rows."""
    import numpy as np
    flags = np.asarray(history.column("cmd_flags").to_numpy(zero_copy_only=False), dtype=np.int64)
    modes = history.column("mode").to_numpy(zero_copy_only=False)
    r_m = np.sqrt(sum(np.asarray(history.column(f"true_{a}_m").to_numpy(), dtype=np.float64) ** 2
                      for a in "xyz"))
    return {"cov_fault_cycles": int(np.count_nonzero(flags & FLAG_NAV_COV_FAULT)),
            "safe_cycles": int(np.count_nonzero(modes == SAFE_MODE)),
            "climb_m": float(r_m.max() - r_m[0]) if len(r_m) else 0.0}


def summary_values(summary: dict) -> dict[str, Any]:
    """The row's result columns from a run summary (the engine's summary.json keys)."""
    td = summary.get("touchdown") or {}
    final = summary.get("final") or {}
    down, cross = final.get("downrange_m"), final.get("crossrange_m")
    return {
        "outcome": summary["outcome"], "reason": summary["reason"],
        "vertical_speed_mps": td.get("vertical_speed_mps"),
        "horizontal_speed_mps": td.get("horizontal_speed_mps"),
        "tilt_deg": td.get("tilt_deg"), "angular_rate_dps": td.get("angular_rate_dps"),
        "downrange_m": down, "crossrange_m": cross,
        "distance_m": math.hypot(down, cross) if down is not None and cross is not None
        else None,
        "propellant_left_kg": summary.get("propellant_left_kg"),
        "propellant_used_kg": summary.get("propellant_used_kg"),
        "nav_pos_err_m": final.get("nav_pos_err_m"), "nav_vel_err_mps": final.get("nav_vel_err_mps"),
        "nav_alt_err_m": final.get("nav_alt_err_m"),
        # landing gear (plant.gear): first-touch criteria met, ground slope, settled state
        "first_touch_ok": td.get("first_touch_ok"), "slope_deg": td.get("slope_deg"),
        "rest_tilt_deg": td.get("rest_tilt_deg"), "leg_load_max_n": td.get("leg_load_max_n"),
        "stroke_max_m": td.get("stroke_max_m"),
        "sim_time_s": summary.get("sim_time_s"), "cycles": summary.get("cycles"),
    }
