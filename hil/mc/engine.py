"""How a campaign flies one run: the one place that calls the run engine.

``fly(cfg, seed, fsw, two_process)`` returns the run's summary (the keys of summary.json,
with the ``final`` block) and its history as a pyarrow Table: in process through
``hil.engine.run_inprocess``, or over the real link (the flight software in its own
process) through ``hil.engine.PlantSide``; the history is kept in memory either way.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from plant.config import ScenarioConfig


def fly(cfg: ScenarioConfig, seed: int, fsw: str = "default", two_process: bool = False
        ) -> tuple[dict, Any]:
    """Fly one run; returns ``(summary, history as a pyarrow Table)``."""
    if two_process:
        return _fly_two_process(cfg, seed, fsw)
    return _fly_inprocess(cfg, seed, fsw)


def _fly_inprocess(cfg: ScenarioConfig, seed: int, fsw: str) -> tuple[dict, Any]:
    from hil.engine import run_inprocess
    result = run_inprocess(cfg, seed, fsw=fsw, history="memory", plots=False)
    return result.summary, result.history.to_arrow()


def _fly_two_process(cfg: ScenarioConfig, seed: int, fsw: str) -> tuple[dict, Any]:
    """The real link: the plant here, the flight software in its own process (ZeroMQ ipc)."""
    from hil.engine import PlantSide

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
                           fsw_launcher=launch, control=False, history="memory",
                           plots=False).run()
        return result.summary, result.history.to_arrow()
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

