"""The run engine: the loops that drive a run, in a room of their own.

Public entry points (imported on first use, so ``hil.engine.schema`` and friends stay
light):

- :func:`run_two_process` / :class:`PlantSide`: the plant side of a run over a link,
  optionally launching and watching the flight-software process;
- :func:`run_inprocess`: plant and flight software in one process, no link, the same
  history bit for bit;
- :class:`RunResult` (``exit_code``, ``summary``, ``out_dir``, ``history``),
  :class:`RunContext`, :class:`History`, ``HISTORY_COLUMNS``, ``TIMING_COLUMNS``.

Modules: ``schema`` (the history's columns), ``recorder`` (rows in blocks, CSV/Parquet/
memory), ``writer`` and ``csvtext`` (the history writer process and the CSV text it
writes), ``timing`` (per-cycle timing), ``pacing`` (wall-clock deadlines), ``control``
(the fault-control channel), ``context`` (RunContext, RunResult), ``lockstep`` and
``realtime`` (the loops), ``two_process`` and ``inprocess`` (the two ways to run),
``summary`` (summary.json and plots).
"""

from __future__ import annotations

from typing import Any

__all__ = ["HISTORY_COLUMNS", "TIMING_COLUMNS", "History", "PlantSide", "RunContext",
           "RunResult", "run_inprocess", "run_two_process"]


def __getattr__(name: str) -> Any:
    if name in ("run_two_process", "PlantSide"):
        from hil.engine import two_process
        return getattr(two_process, name)
    if name == "run_inprocess":
        from hil.engine.inprocess import run_inprocess
        return run_inprocess
    if name in ("RunResult", "RunContext"):
        from hil.engine import context
        return getattr(context, name)
    if name == "History":
        from hil.engine.recorder import History
        return History
    if name in ("HISTORY_COLUMNS", "TIMING_COLUMNS"):
        from hil.engine import schema
        return getattr(schema, name)
    raise AttributeError(f"module 'hil.engine' has no attribute {name!r}")
