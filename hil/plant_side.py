"""Compatibility: the plant side of a run lives in the run engine, :mod:`hil.engine`
(:class:`hil.engine.two_process.PlantSide`; the history's columns in
:mod:`hil.engine.schema`)."""

from hil.engine.context import RunResult  # noqa: F401
from hil.engine.lockstep import POLL_SLICE_S  # noqa: F401
from hil.engine.schema import HISTORY_COLUMNS  # noqa: F401
from hil.engine.two_process import PlantSide  # noqa: F401
