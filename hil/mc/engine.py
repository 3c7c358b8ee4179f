"""How a campaign flies one run: the one place that calls the run engine.

``fly(cfg, seed, fsw, two_process)`` returns the run's summary (the keys of summary.json,
with the ``final`` block) and its history as a pyarrow Table.

Until ``hil.engine.run_inprocess`` lands (issue 9), the in-process path here steps the
plant and fsil's flight software in one loop and records the same history columns as the
two-process run (``hil.plant_side``).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from plant.config import ScenarioConfig


def fly(cfg: ScenarioConfig, seed: int, fsw: str = "default", two_process: bool = False
        ) -> tuple[dict, Any]:
    """Fly one run; returns ``(summary, history as a pyarrow Table)``."""
    if two_process:
        return _fly_two_process(cfg, seed, fsw)
    return _fly_inprocess(cfg, seed, fsw)


def _fly_inprocess(cfg: ScenarioConfig, seed: int, fsw: str) -> tuple[dict, Any]:
    from fsw import contract
    from fsw.frame import Frame
    from fsw.host import registry
    from hil.plant_side import HISTORY_COLUMNS, PlantSide
    from plant.lander import Command, LanderPlant

    wall0 = time.monotonic()
    plant = LanderPlant(cfg)
    frame = plant.reset(seed)
    prop0 = plant.truth()["propellant_kg"]
    software = registry.resolve(fsw).factory(plant.fsw_config())
    rows: list[list] = []
    cycles = 0
    nav = None
    while not plant.done:
        t0 = time.perf_counter_ns()
        throttle, torque, mode, nav, flags = contract.command(software.step(
            Frame(frame.seq, frame.t_us, frame.imu, frame.alt, getattr(frame, "vel", None))))
        compute_us = (time.perf_counter_ns() - t0) // 1000
        cmd = SimpleNamespace(throttle=throttle, torque_nm=list(torque), mode=mode, nav=nav,
                              flags=flags, compute_us=compute_us)
        rows.append(PlantSide._row(None, plant, frame, cmd, compute_us))  # type: ignore[arg-type]
        frame = plant.step(Command(throttle, tuple(torque)))
        cycles += 1
    t = plant.truth()
    final = {"downrange_m": t["downrange_m"], "crossrange_m": t["crossrange_m"],
             "nav_pos_err_m": None, "nav_vel_err_mps": None, "nav_alt_err_m": None}
    if nav is not None:
        final.update(nav_pos_err_m=math.dist(nav[0:3], t["r_m"]),
                     nav_vel_err_mps=math.dist(nav[3:6], t["v_mps"]),
                     nav_alt_err_m=nav[6] - t["alt_m"])
    out = plant.outcome
    summary = {"outcome": out.outcome, "reason": out.reason, "touchdown": out.touchdown,
               "propellant_used_kg": prop0 - t["propellant_kg"],
               "propellant_left_kg": t["propellant_kg"], "sim_time_s": plant.t_us * 1e-6,
               "wall_time_s": time.monotonic() - wall0, "cycles": cycles, "seed": seed,
               "scenario": cfg.name, "fsw_software": f"fsil {fsw}", "final": final}
    return summary, _table(HISTORY_COLUMNS, rows)


def _table(columns: list[str], rows: list[list]) -> Any:
    import pyarrow as pa
    cols = list(zip(*rows)) if rows else [[] for _ in columns]
    arrays = []
    for name, values in zip(columns, cols):
        if name in ("mode", "faults"):
            arrays.append(pa.array([None if v is None else str(v) for v in values],
                                   type=pa.string()))
        else:
            arrays.append(pa.array(np.array([np.nan if v is None else float(v) for v in values],
                                            dtype=float)))
    return pa.table(arrays, names=list(columns))


def _fly_two_process(cfg: ScenarioConfig, seed: int, fsw: str) -> tuple[dict, Any]:
    """The real link: the plant here, the flight software in its own process (ZeroMQ ipc)."""
    from hil.history import read_columns
    from hil.plant_side import PlantSide

    tmp = Path(tempfile.mkdtemp(prefix="fsil-mc-"))
    procs: list[subprocess.Popen] = []

    def launch(url: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "hil.cli", "fsw", "--link", url, "--quiet",
               "--timeout", f"{cfg.run.link_timeout_s + 5.0:g}", "--fsw", fsw]
        procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        return procs[-1]

    try:
        result = PlantSide(cfg, f"zmq+ipc://{tmp}/link.sock", tmp / "run", seed,
                           fsw_launcher=launch, control=False).run()
        cols = read_columns(tmp / "run" / "history.csv")
        import pyarrow as pa
        table = pa.table({k: pa.array(v.tolist()) for k, v in cols.items()})
        summary = dict(result.summary)
        summary.setdefault("final", _final_from_history(cols))
        return summary, table
    finally:
        for proc in procs:
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _final_from_history(cols: dict) -> dict:
    """The ``final`` block from the last history row (for a summary without one)."""
    def last(name: str) -> float | None:
        col = cols.get(name)
        return float(col[-1]) if col is not None and len(col) and col.dtype.kind == "f" else None
    return {"downrange_m": last("true_downrange_m"), "crossrange_m": last("true_crossrange_m"),
            "nav_pos_err_m": last("nav_pos_err_m"), "nav_vel_err_mps": last("nav_vel_err_mps"),
            "nav_alt_err_m": last("nav_alt_err_m")}
