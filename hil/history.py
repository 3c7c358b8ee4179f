"""Run history files: reading them (CSV or Parquet), and a general streaming CSV writer.

A run's history is recorded by the run engine (hil/engine/recorder.py; its columns in
hil/engine/schema.py, documented in docs/history.md). This module reads a run folder's
``history.csv`` or ``history.parquet`` back (:func:`read_columns` without pandas,
:func:`read_history` with it) and holds :class:`HistoryWriter`, a CSV writer for any
columns (tests and tools write histories with it).

The writer keeps at most ``flush_every`` formatted rows in memory and writes them out as
whole lines (then flushes) every ``flush_every`` rows, at least every ``flush_interval_s``
of wall time, and on close -- so memory does not grow with run length and a run that dies
keeps what it wrote up to the last flush. Readers tolerate a partial last line.

Cells: floats in shortest round-trip form (``repr``) unless ``float_format`` is given,
booleans as ``0``/``1``, ``None`` as an empty cell, strings as they are (quoted only when
they hold a comma or a quote; line breaks become spaces so one row is one line).
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from hil.engine.csvtext import text_cell  # noqa: F401 (re-exported: a cell of any CSV)


class HistoryWriter:
    """Stream rows of ``columns`` to a CSV file at ``path``; a context manager."""

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str], *,
                 flush_every: int = 250, flush_interval_s: float = 1.0,
                 float_format: str | None = None) -> None:
        if not columns:
            raise ValueError("a history needs at least one column")
        if len(set(columns)) != len(columns):
            dupes = sorted({c for c in columns if list(columns).count(c) > 1})
            raise ValueError(f"duplicate history columns: {', '.join(dupes)}")
        if flush_every < 1:
            raise ValueError("flush_every must be at least 1")
        self.path = Path(path)
        self.columns = list(columns)
        self.rows_written = 0
        self._flush_every = flush_every
        self._flush_interval_s = flush_interval_s
        self._float = float.__repr__ if float_format is None else float_format.__mod__
        self._pending: list[str] = []
        self._file: IO[str] | None = None
        self._file = open(self.path, "w", encoding="utf-8", newline="")
        self._file.write(",".join(text_cell(c) for c in self.columns) + "\n")
        self._file.flush()
        self._last_flush = time.monotonic()

    @property
    def closed(self) -> bool:
        return self._file is None

    def write(self, row: Sequence[Any]) -> None:
        """Append one row, values in column order."""
        if self._file is None:
            raise ValueError(f"history {self.path} is closed")
        if len(row) != len(self.columns):
            raise ValueError(f"history row has {len(row)} values; expected {len(self.columns)}")
        self._pending.append(",".join([self._cell(v) for v in row]) + "\n")
        self.rows_written += 1
        if len(self._pending) >= self._flush_every \
                or time.monotonic() - self._last_flush >= self._flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Write the pending rows as whole lines and flush them to the OS."""
        if self._file is None:
            return
        if self._pending:
            self._file.write("".join(self._pending))
            self._pending.clear()
        self._file.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Flush and close; safe to call more than once."""
        if self._file is None:
            return
        try:
            self.flush()
        finally:
            self._file.close()
            self._file = None

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _cell(self, v: Any) -> str:
        if type(v) is float:
            return self._float(v)
        if v is None:
            return ""
        if isinstance(v, (bool, np.bool_)):
            return "1" if v else "0"
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            return self._float(float(v))
        return text_cell(str(v))


def _complete_lines(f: IO[str]) -> Iterator[str]:
    """Lines of ``f`` that end in a newline (a partial last line is dropped)."""
    for line in f:
        if not line.endswith("\n"):
            return
        yield line


def history_path(run_dir: str | os.PathLike[str]) -> Path:
    """A run folder's history file: ``history.csv``, else ``history.parquet`` (the CSV
    name when neither exists)."""
    folder = Path(run_dir)
    csv_path = folder / "history.csv"
    if not csv_path.exists() and (folder / "history.parquet").exists():
        return folder / "history.parquet"
    return csv_path


def read_columns(path: str | os.PathLike[str], names: Sequence[str] | None = None
                 ) -> dict[str, np.ndarray]:
    """Columns of a history CSV (or ``.parquet``) as numpy arrays, without pandas.

    ``names`` selects columns (default all); names not in the file are left out of the
    result. Numeric columns come back as float arrays (empty cells as NaN), others as
    string arrays. A partial last line (a run that died mid-write) is ignored.
    """
    if str(path).endswith(".parquet"):
        return _read_parquet_columns(path, names)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(_complete_lines(f))
        header = next(reader, None)
        if header is None:
            return {}
        wanted = header if names is None else [n for n in names if n in header]
        index = [header.index(n) for n in wanted]
        cells: list[list[str]] = [[] for _ in wanted]
        width = len(header)
        for row in reader:
            if len(row) != width:
                raise ValueError(f"{path}: line {reader.line_num} has {len(row)} cells; "
                                 f"expected {width}")
            for out, i in zip(cells, index):
                out.append(row[i])
    return {name: _to_array(col) for name, col in zip(wanted, cells)}


def _read_parquet_columns(path: str | os.PathLike[str], names: Sequence[str] | None
                          ) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    header = pq.read_schema(path).names
    wanted = header if names is None else [n for n in names if n in header]
    table = pq.read_table(path, columns=wanted)
    out = {}
    for name in wanted:
        col = table.column(name)
        if pa.types.is_string(col.type):
            out[name] = np.array(["" if v is None else v for v in col.to_pylist()], dtype=str)
        else:
            out[name] = col.to_numpy().astype(float)   # nulls come back as NaN
    return out


def _to_array(cells: list[str]) -> np.ndarray:
    strings = np.array(cells, dtype=str)
    if strings.size == 0:
        return np.zeros(0)
    try:
        return np.where(strings == "", "nan", strings).astype(float)
    except ValueError:
        return strings


def as_floats(col: np.ndarray) -> np.ndarray:
    """A column from ``read_columns`` as floats (non-numeric cells as NaN)."""
    if col.dtype.kind == "f":
        return col
    out = np.full(col.shape, np.nan)
    for i, v in enumerate(col.tolist()):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            pass
    return out


def read_history(path: str | os.PathLike[str]) -> Any:
    """The whole history as a ``pandas.DataFrame`` (pandas needed), floats exactly as written;
    a partial last line is dropped. A ``.parquet`` file is read with pyarrow."""
    import pandas as pd
    if str(path).endswith(".parquet"):
        return pd.read_parquet(path)

    newlines, ends_clean = 0, True
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            newlines += chunk.count(b"\n")
            ends_clean = chunk.endswith(b"\n")
    if newlines == 0:
        return pd.DataFrame()
    # round_trip: every float as written, bit for bit (pandas' default parser is not exact);
    # text columns as text (a column empty for thousands of rows, then "altimeter:late",
    # would otherwise be guessed chunk by chunk: DtypeWarning, mixed types)
    from hil.engine.schema import HISTORY, TIMING
    text = {c.name: str for c in HISTORY + TIMING if c.kind == "s"}
    nrows = None if ends_clean else newlines - 1
    return pd.read_csv(path, nrows=nrows, dtype=text, **_exact_floats(pd.__version__))


def _exact_floats(pandas_version: str) -> dict:
    """read_csv's option for floats read bit for bit: pandas >= 3.1 parses exactly by
    default and deprecates ``float_precision`` (Pandas4Warning); older ones need it."""
    major, minor = (int("".join(ch for ch in part if ch.isdigit()) or 0)
                    for part in pandas_version.split(".")[:2])
    return {} if (major, minor) >= (3, 1) else {"float_precision": "round_trip"}
