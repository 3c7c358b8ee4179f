"""The history recorder: one row per cycle into preallocated blocks, written a block at a time.

The loop fills the current row in place (``recorder.row``, a list as wide as the schema,
reused from block to block), in two parts: :meth:`HistoryRecorder.plant_part` as soon as the
frame is out (truth, sensors, faults: none of it depends on the command) and
:meth:`HistoryRecorder.command_part` once the command is in; :meth:`HistoryRecorder.commit`
closes the row. The truth cells are :meth:`plant.lander.LanderPlant.truth`'s numbers
computed in plain floats (:mod:`hil.engine.truth`, the same bits, a fifth of the time).
When a block of ``block_rows`` rows is full it becomes the *pending* block
and the other block is filled; a two-process loop hands the pending block to the sink a few
rows at a time in :meth:`HistoryRecorder.idle` while the flight software computes, an
in-process loop writes it at once. At least every ``flush_interval_s`` of wall time, and
on close, everything recorded is written and flushed, so a run that dies keeps its rows up
to the last flush (memory stays flat with run length for the file sinks).

Sinks (``history=``): ``"csv"`` (the default; floats in shortest round-trip form, exactly as
``repr`` writes them), ``"parquet"`` (pyarrow; missing cells are nulls), ``"memory"`` (a
:class:`History` of numpy columns, written later by the caller if wanted) or ``None``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from bridge.protocol import MODES
from hil.engine.schema import HISTORY_COLUMNS, Column, columns
from hil.engine.truth import truth_cells
from hil.engine.csvtext import format_csv, text_cell  # noqa: F401 (format_csv: re-exported)

HISTORY_FORMATS = ("csv", "parquet", "memory")
BLOCK_ROWS = 256              # rows per block
IDLE_ROWS = 8                 # at most this many rows of the pending block per idle() call
IDLE_CHUNK_ROWS = 2           # formatted together
IDLE_BUDGET_NS = 100_000      # no new chunk once idle() has taken this long
FLUSH_INTERVAL_S = 1.0        # longest wall time between flushes
PARQUET_ROW_GROUP = 16384     # rows per Parquet row group

_NAN = math.nan
_NAN6 = (_NAN,) * 6
_NAN7 = (_NAN,) * 7
_I = {name: i for i, name in enumerate(HISTORY_COLUMNS)}
# Column positions used by the hot path (the schema's order).
_T, _SEQ, _MODE, _TRUE = _I["t_s"], _I["seq"], _I["mode"], _I["true_x_m"]
_IMU, _ALT, _NAV, _CMD = _I["imu_dvx_mps"], _I["alt_t_s"], _I["nav_x_m"], _I["cmd_throttle"]
_FAULTS, _COMPUTE, _RTT = _I["faults"], _I["compute_us"], _I["round_trip_us"]
_VEL, _ATT, _GEAR = _I["vel_t_s"], _I["att_t_s"], _I["gear_legs_down"]
_NONE8 = (None,) * 8
_NONE6 = (None,) * 6
_INT64_MAX = (1 << 63) - 1


def history_file_name(fmt: str) -> str:
    """``history.csv`` or ``history.parquet``."""
    return f"history.{fmt}"


# ----------------------------------------------------------------------------- sinks
class CsvSink:
    """Rows as CSV lines: floats as ``repr`` writes them, missing cells empty, text quoted
    only when it holds a comma or a quote (line breaks become spaces)."""

    failure = None

    def __init__(self, path: str | os.PathLike[str], cols: Sequence[Column],
                 append: bool = False) -> None:
        self.path = Path(path)
        self.kinds = [c.kind for c in cols]
        self._file: IO[str] | None = open(self.path, "a" if append else "w",
                                          encoding="utf-8", newline="")
        if not append:   # append: rows after those already there (hil.engine.writer)
            self._file.write(",".join(text_cell(c.name) for c in cols) + "\n")
            self._file.flush()

    def write(self, rows: Sequence[list], start: int, stop: int) -> None:
        if stop > start and self._file is not None:
            self._file.write(format_csv(self.kinds, rows[start:stop]))

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            finally:
                self._file.close()
                self._file = None


class ParquetSink:
    """Rows as a Parquet file (pyarrow), in row groups of :data:`PARQUET_ROW_GROUP` rows;
    complete (readable) once closed."""

    failure = None

    def __init__(self, path: str | os.PathLike[str], cols: Sequence[Column]) -> None:
        pa, pq = _pyarrow()
        self.path = Path(path)
        self.cols = list(cols)
        self.schema = arrow_schema(self.cols)
        self._pa = pa
        self._writer = pq.ParquetWriter(str(self.path), self.schema)
        self._buffer: list[list] = [[] for _ in self.cols]
        self._rows = 0

    def write(self, rows: Sequence[list], start: int, stop: int) -> None:
        if stop <= start or self._writer is None:
            return
        for buf, col in zip(self._buffer, zip(*rows[start:stop])):
            buf.extend(col)
        self._rows += stop - start
        if self._rows >= PARQUET_ROW_GROUP:
            self._write_group()

    def flush(self) -> None:
        """Row groups are written when full or at close (a Parquet file is readable only
        once closed)."""

    def close(self) -> None:
        if self._writer is None:
            return
        try:
            if self._rows:
                self._write_group()
        finally:
            self._writer.close()
            self._writer = None

    def _write_group(self) -> None:
        pa = self._pa
        arrays = [pa.array(buf, type=field.type) for buf, field in zip(self._buffer, self.schema)]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self._buffer = [[] for _ in self.cols]
        self._rows = 0


class MemorySink:
    """Rows kept as numpy column blocks; :meth:`history` joins them into a :class:`History`."""

    failure = None

    def __init__(self, cols: Sequence[Column]) -> None:
        self.cols = list(cols)
        self._blocks: list[list[np.ndarray]] = []

    def write(self, rows: Sequence[list], start: int, stop: int) -> None:
        if stop > start:
            self._blocks.append([_to_numpy(c.kind, col)
                                 for c, col in zip(self.cols, zip(*rows[start:stop]))])

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def history(self) -> History:
        data = {}
        for j, c in enumerate(self.cols):
            parts = [b[j] for b in self._blocks]
            data[c.name] = np.concatenate(parts) if parts else _to_numpy(c.kind, ())
        return History(self.cols, data)


class NullSink:
    """No history at all (``history=None``)."""

    failure = None

    def write(self, rows: Sequence[list], start: int, stop: int) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_sink(fmt: str | None, out_dir: Path | None, cols: Sequence[Column]):
    """The sink for ``history=fmt``; file sinks need ``out_dir`` (else nothing is written).
    (Lockstep runs open theirs with :func:`hil.engine.writer.open_history`: a file written
    by a process of its own.)"""
    if fmt is None:
        return NullSink()
    if fmt == "memory":
        return MemorySink(cols)
    if fmt not in HISTORY_FORMATS:
        raise ValueError(f"history format {fmt!r}: expected one of csv, parquet, memory or None")
    if out_dir is None:
        return NullSink()
    path = Path(out_dir) / history_file_name(fmt)
    return CsvSink(path, cols) if fmt == "csv" else ParquetSink(path, cols)


# ----------------------------------------------------------------------------- recorder
class HistoryRecorder:
    """One run's history rows; see the module docstring."""

    def __init__(self, sink, realtime: bool = False, block_rows: int = BLOCK_ROWS,
                 flush_interval_s: float = FLUSH_INTERVAL_S, plot_tap: bool = False) -> None:
        self.sink = sink
        self.cols = columns(realtime)
        # The plotted columns, decimated, as rows are written (hil.plots.PlotTap): the
        # plot at the end reads no file back.
        self.tap = None
        if plot_tap:
            from hil.plots import PlotTap
            self.tap = PlotTap([c.name for c in self.cols])
        self.width = len(self.cols)
        self.block_rows = max(2, int(block_rows))
        self.flush_interval_s = flush_interval_s
        self._blocks = [[[None] * self.width for _ in range(self.block_rows)] for _ in range(2)]
        self._filling = 0
        self.rows = self._blocks[0]
        self.i = 0                      # the row being filled in the current block
        self.row = self.rows[0]
        self.count = 0                  # rows committed
        self._pending: list[list] | None = None
        self._pending_n = 0
        self._pending_done = 0
        self._last_flush = time.monotonic()
        self._closed = False
        self._failed = None             # a history writer's failure, raised by plant_part
        self._idle_rows = getattr(sink, "idle_rows", IDLE_ROWS)
        self._idle_chunk = getattr(sink, "idle_chunk_rows", IDLE_CHUNK_ROWS)
        # The truth of the current row, for the command part's estimation errors.
        self._r: Sequence[float] = _NAN6[:3]
        self._v: Sequence[float] = _NAN6[:3]
        self._alt = _NAN
        # The last committed row's estimation errors (summary "final").
        self.last_nav_errors: tuple[float, float, float] | None = None

    @property
    def last_alt_m(self) -> float:
        """True altitude of the row being filled (the progress bar shows it)."""
        return self._alt

    # --- the row ------------------------------------------------------------------------
    def plant_part(self, plant, frame) -> None:
        """Everything in the row that does not depend on the command: truth at the frame,
        the frame's sensor samples, the faults active in it. Raises the failure of a history
        writer that died (:mod:`hil.engine.writer`) before the row is begun: every row
        committed is a cycle the timing log counted."""
        if self._failed is not None:
            raise self._failed
        row = self.row
        if hasattr(plant, "site"):    # a LanderPlant: its truth() in plain floats, same bits
            r, v, alt_m, cells = truth_cells(plant)
        else:
            r, v, alt_m, cells = _truth_of(plant)
        self._r, self._v, self._alt = r, v, alt_m
        row[_T] = frame.t_us * 1e-6
        row[_SEQ] = frame.seq
        row[_TRUE:_TRUE + 16] = cells
        imu = frame.imu
        if imu:   # from 0.0, in sample order: as numpy's sum over axis 0 (-0.0 + 0.0 = 0.0)
            dvx = dvy = dvz = dax = day = daz = 0.0
            for s in imu:
                dvx += s[1]
                dvy += s[2]
                dvz += s[3]
                dax += s[4]
                day += s[5]
                daz += s[6]
            row[_IMU:_IMU + 6] = (dvx, dvy, dvz, dax, day, daz)
        else:
            row[_IMU:_IMU + 6] = _NAN6
        alt = frame.alt
        true_range = plant.altimeter.last_true_range_m
        if alt:
            row[_ALT:_ALT + 4] = (alt[0] * 1e-6, float(alt[1]), int(bool(alt[2])), true_range)
        else:
            row[_ALT:_ALT + 4] = (None, None, 0, true_range)
        vel, att = frame.vel, getattr(frame, "att", None)
        row[_VEL:_VEL + 8] = _NONE8 if vel is None else vel_cells(vel)
        row[_ATT:_ATT + 6] = _NONE6 if att is None else att_cells(att)
        row[_FAULTS] = plant.faults.label(plant.t_us)
        row[_GEAR:_GEAR + 9] = plant.gear_row()

    def command_part(self, mode: int, throttle: float, torque_nm: Sequence[float],
                     nav: Sequence[float] | None, flags: int, compute_us: int | None,
                     round_trip_us: int | None) -> None:
        """The command answering the frame, and the estimation errors against the truth."""
        row = self.row
        row[_MODE] = MODES[mode] if 0 <= mode < len(MODES) else str(mode)
        if nav is None:
            nav = _NAN7
        r, v = self._r, self._v
        errors = (math.dist(nav[0:3], r), math.dist(nav[3:6], v), nav[6] - self._alt)
        row[_NAV:_NAV + 10] = (*nav, *errors)
        row[_CMD:_CMD + 5] = (throttle, *torque_nm, flags)
        row[_COMPUTE] = compute_us if compute_us is None else min(compute_us, _INT64_MAX)
        row[_RTT] = round_trip_us
        self.last_nav_errors = errors

    def commit(self) -> None:
        """Close the current row; the next one is ``recorder.row``."""
        self.count += 1
        i = self.i + 1
        if i == self.block_rows:
            self._rotate()
        else:
            self.i = i
            self.row = self.rows[i]
            if not i & 15 and time.monotonic() - self._last_flush >= self.flush_interval_s:
                self.flush()

    # --- writing ------------------------------------------------------------------------
    def idle(self, max_rows: int | None = None) -> None:
        """Write up to ``max_rows`` of the pending block (call while waiting for the peer),
        :data:`IDLE_CHUNK_ROWS` at a time, stopping after :data:`IDLE_BUDGET_NS` (so that
        the command is not left waiting: a block needs one row a cycle on average). A sink
        of its own process (:class:`hil.engine.writer.ProcessSink`) takes half a block a
        call, in one message."""
        if self._pending is None:
            return
        if max_rows is None:
            max_rows = self._idle_rows
        chunk = self._idle_chunk
        start = self._pending_done
        limit = min(self._pending_n, start + max_rows)
        until = time.perf_counter_ns() + IDLE_BUDGET_NS
        pending = self._pending
        while True:   # a few rows at a time, while the flight software still computes
            stop = min(limit, start + chunk)
            self._pending_done = stop       # before writing: a failed write is not repeated
            if stop >= self._pending_n:
                self._pending = None
            self._write(pending, start, stop)
            start = stop
            if stop >= limit or time.perf_counter_ns() >= until:
                break
        if self._pending is None:
            self.sink.flush()
            self._last_flush = time.monotonic()
        self._check_sink()

    def flush(self) -> None:
        """Write every committed row and flush the sink (between rows only)."""
        self._flush()
        self._check_sink()

    def close(self) -> None:
        """Write what is left and close the sink; safe to call more than once. Never raises
        a writer's failure: it is in :attr:`failure` (the rows are written all the same)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._flush()
        finally:
            self.sink.close()

    @property
    def failure(self):
        """The :class:`hil.errors.HistoryWriterFailure` of a history writer that died or
        stalled (:mod:`hil.engine.writer`), else None."""
        return self.sink.failure

    def _flush(self) -> None:
        self._finish_pending()
        n = self.i
        if n:
            self.i = 0
            self.row = self.rows[0]
            self._write(self.rows, 0, n)
        self.sink.flush()
        self._last_flush = time.monotonic()

    def _check_sink(self) -> None:
        """A writer that failed: raised as the next row begins (:meth:`plant_part`)."""
        self._failed = self.sink.failure

    def history(self) -> History | None:
        """The in-memory history (``history="memory"``), else None."""
        return self.sink.history() if isinstance(self.sink, MemorySink) else None

    def _write(self, rows: Sequence[list], start: int, stop: int) -> None:
        self.sink.write(rows, start, stop)
        if self.tap is not None:
            self.tap.write(rows, start, stop)

    def _rotate(self) -> None:
        old, done, n = self._pending, self._pending_done, self._pending_n
        self._pending, self._pending_n, self._pending_done = self.rows, self.block_rows, 0
        self._filling ^= 1
        self.rows = self._blocks[self._filling]
        self.i = 0
        self.row = self.rows[0]
        if old is not None:   # what idle() left of the previous block (all of it in process)
            self._write(old, done, n)     # before its rows are filled again
            self.sink.flush()
            self._last_flush = time.monotonic()
        self._check_sink()

    def _finish_pending(self) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None        # before writing: a failed write is not repeated
            self._write(pending, self._pending_done, self._pending_n)
            self.sink.flush()
            self._last_flush = time.monotonic()


# ----------------------------------------------------------------------------- History
class History:
    """A run's history in memory: numpy columns by name, in the schema's order.

    Floats are float64 (missing: NaN), integers int64, integers that may be missing
    float64 (missing: NaN), text object arrays. ``to_csv``/``to_parquet`` write the same
    files a run folder would hold; ``to_pandas`` needs pandas.
    """

    def __init__(self, cols: Sequence[Column], data: dict[str, np.ndarray]) -> None:
        self.cols = tuple(cols)
        self.data = data

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cols]

    def __len__(self) -> int:
        return len(self.data[self.cols[0].name]) if self.cols else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    def __contains__(self, name: object) -> bool:
        return name in self.data

    def rows(self) -> list[list]:
        """The rows as lists of plain Python values (missing cells as None)."""
        cols = [_from_numpy(c.kind, self.data[c.name]) for c in self.cols]
        return [list(r) for r in zip(*cols)]

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        sink = CsvSink(path, self.cols)
        try:
            rows = self.rows()
            sink.write(rows, 0, len(rows))
        finally:
            sink.close()
        return sink.path

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        sink = ParquetSink(path, self.cols)
        try:
            rows = self.rows()
            sink.write(rows, 0, len(rows))
        finally:
            sink.close()
        return sink.path

    def to_arrow(self) -> Any:
        """A pyarrow Table with the Parquet file's schema (missing cells as nulls)."""
        pa, _ = _pyarrow()
        schema = arrow_schema(self.cols)
        arrays = [_to_arrow(pa, c.kind, self.data[c.name], field.type)
                  for c, field in zip(self.cols, schema)]
        return pa.Table.from_arrays(arrays, schema=schema)

    def to_pandas(self) -> Any:
        import pandas as pd
        return pd.DataFrame({name: self.data[name] for name in self.names})


# ----------------------------------------------------------------------------- helpers
def vel_cells(vel: Sequence | None) -> tuple:
    """The velocimeter columns of a frame's sample: time in s, six floats, the valid mask;
    all empty without one."""
    if vel is None:
        return _NONE8
    return (vel[0] * 1e-6, vel[1], vel[2], vel[3], vel[4], vel[5], vel[6], int(vel[7]))


def att_cells(att: Sequence | None) -> tuple:
    """The star tracker columns of a frame's sample: time in s, the quaternion's four
    floats, valid as 0/1; all empty without one."""
    if att is None:
        return _NONE6
    return (att[0] * 1e-6, float(att[1]), float(att[2]), float(att[3]), float(att[4]),
            int(bool(att[5])))


def _truth_of(plant: Any) -> tuple[list[float], list[float], float, tuple]:
    """:func:`hil.engine.truth.truth_cells` from any object with ``truth()`` (a stand-in)."""
    t = plant.truth()
    r, v = t["r_m"].tolist(), t["v_mps"].tolist()
    return r, v, t["alt_m"], (
        r[0], r[1], r[2], v[0], v[1], v[2], t["alt_m"],
        t["vert_speed_mps"], t["horiz_speed_mps"], t["downrange_m"], t["crossrange_m"],
        t["tilt_deg"], t["rate_dps"], t["mass_kg"], t["propellant_kg"], t["throttle"])


def arrow_schema(cols: Sequence[Column]):
    """The Parquet schema of the columns (pyarrow)."""
    pa, _ = _pyarrow()
    types = {"f": pa.float64(), "f?": pa.float64(), "i": pa.int64(), "i?": pa.int64(),
             "s": pa.string()}
    return pa.schema([pa.field(c.name, types[c.kind], nullable=c.kind in ("f?", "i?", "s"))
                      for c in cols])


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:  # a dependency: reported as a configuration problem
        from hil.errors import ConfigError
        raise ConfigError("history as Parquet needs pyarrow (pip install pyarrow)") from error
    return pa, pq


def _to_numpy(kind: str, col: Sequence[Any]) -> np.ndarray:
    if kind == "i":
        return np.array(col, dtype=np.int64)
    if kind == "s":
        return np.array(col, dtype=object)
    return np.array(col, dtype=np.float64)   # f, f?, i? (None -> NaN)


def _to_arrow(pa: Any, kind: str, arr: np.ndarray, type_: Any) -> Any:
    """A column as a pyarrow array straight from numpy: the values of
    ``pa.array(_from_numpy(kind, arr), type=type_)`` (floats bit for bit, NaN of a
    may-be-missing column as null, integers that may be missing as int64 with nulls)
    without a Python object per cell."""
    if kind == "f" or kind == "i":
        return pa.array(arr, type=type_)
    if kind == "f?" or kind == "i?":
        missing = np.isnan(arr)
        if kind == "i?":
            arr = np.where(missing, 0.0, arr).astype(np.int64)
        return pa.array(arr, type=type_, mask=missing)
    return pa.array(_from_numpy(kind, arr), type=type_)


def _from_numpy(kind: str, arr: np.ndarray) -> list:
    values = arr.tolist()
    if kind == "f?":
        return [None if v != v else v for v in values]
    if kind == "i?":
        return [None if v != v else int(v) for v in values]
    return values
