"""Run history: streamed, flushed as it goes, readable after a crash."""

from __future__ import annotations

import math
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # repo root, not installed

import numpy as np
import pytest

from hil.history import HistoryWriter, read_columns, read_history

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = ["t_s", "alt_m", "mode", "alt_valid", "note"]


def row(i: int) -> list:
    return [i * 0.02, 15000.0 - i * 0.1, "braking" if i % 2 else "coast", i % 3 == 0, None]


def test_stream_10k_rows_file_grows_while_writing(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "history.csv"
    sizes = []
    with HistoryWriter(path, COLUMNS, flush_every=500) as w:
        assert path.stat().st_size > 0            # header is on disk at once
        for i in range(10_000):
            w.write(row(i))
            if i % 1000 == 999:
                sizes.append(path.stat().st_size)
        assert len(w._pending) < 500              # memory bounded by flush_every
    assert all(b > a for a, b in zip(sizes, sizes[1:]))
    assert w.rows_written == 10_000
    cols = read_columns(path)
    assert list(cols) == COLUMNS
    assert len(cols["t_s"]) == 10_000
    assert cols["t_s"][-1] == 9999 * 0.02         # floats round-trip exactly
    assert cols["mode"][1] == "braking"
    assert cols["alt_valid"][:4].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert np.isnan(cols["note"]).all()           # None -> empty cell -> NaN


def test_abandoned_writer_keeps_flushed_rows(tmp_path: pathlib.Path) -> None:
    """A process that dies without close() leaves every row up to the last flush."""
    path = tmp_path / "crash.csv"
    script = (
        "import os, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from hil.history import HistoryWriter\n"
        f"w = HistoryWriter({str(path)!r}, ['i', 'x'], flush_every=100)\n"
        "for i in range(1050):\n"
        "    w.write([i, i * 0.5])\n"
        "os._exit(7)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert done.returncode == 7
    cols = read_columns(path)
    assert cols["i"].tolist() == list(range(1000))
    assert len(read_history(path)) == 1000


def test_partial_last_line_is_ignored(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "cut.csv"
    with HistoryWriter(path, COLUMNS) as w:
        for i in range(5):
            w.write(row(i))
    with open(path, "a", encoding="utf-8") as f:
        f.write("0.1,14999.9,brak")               # a crash in the middle of a row
    assert read_columns(path)["alt_m"].tolist() == [15000.0 - i * 0.1 for i in range(5)]
    df = read_history(path)
    assert len(df) == 5 and df["mode"].iloc[-1] == "coast"


def test_pandas_reads_it(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("pandas")
    path = tmp_path / "h.csv"
    with HistoryWriter(path, ["t_s", "x", "mode", "flag", "s"]) as w:
        w.write([0.0, np.float64(1.5), "init", np.bool_(True), 'a,"b"'])
        w.write([0.02, float("nan"), "coast", False, "line\nbreak"])
        w.write([0.04, np.int64(3), "coast", None, None])
    df = read_history(path)
    assert list(df.columns) == ["t_s", "x", "mode", "flag", "s"]
    assert df["x"].iloc[0] == 1.5 and math.isnan(df["x"].iloc[1]) and df["x"].iloc[2] == 3
    assert df["flag"].iloc[:2].tolist() == [1, 0]
    assert df["s"].iloc[0] == 'a,"b"' and df["s"].iloc[1] == "line break"


def test_close_is_idempotent_and_misuse_is_refused(tmp_path: pathlib.Path) -> None:
    w = HistoryWriter(tmp_path / "h.csv", ["a", "b"])
    with pytest.raises(ValueError, match="2"):
        w.write([1.0])
    w.write([1.0, 2.0])
    w.close()
    w.close()
    assert w.closed
    with pytest.raises(ValueError, match="closed"):
        w.write([1.0, 2.0])
    with pytest.raises(ValueError, match="duplicate"):
        HistoryWriter(tmp_path / "d.csv", ["a", "a"])
    assert read_columns(tmp_path / "h.csv", ["b", "missing"]) == {"b": pytest.approx([2.0])}


def test_float_format_option(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "g.csv"
    with HistoryWriter(path, ["x"], float_format="%.9g") as w:
        w.write([1 / 3])
    assert path.read_text().splitlines()[1] == "0.333333333"


def test_read_history_floats_bit_for_bit_and_no_warning(tmp_path):
    """Floats written with repr come back exactly, with the installed pandas, without a
    warning (pandas >= 3.1 deprecates float_precision; older ones need it to be exact)."""
    import warnings

    import numpy as np

    from hil.engine.schema import HISTORY_COLUMNS
    from hil.history import _exact_floats, read_history
    rng = np.random.default_rng(3)
    x = rng.standard_normal(20_000) * 10.0 ** rng.integers(-8, 8, 20_000)
    col = HISTORY_COLUMNS.index("t_s")
    path = tmp_path / "history.csv"
    path.write_text(",".join(HISTORY_COLUMNS) + "\n" + "".join(
        ",".join(repr(float(v)) if j == col else "1" for j in range(len(HISTORY_COLUMNS)))
        + "\n" for v in x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = read_history(path)
    assert np.array_equal(df["t_s"].to_numpy(), x)
    assert _exact_floats("2.2.3") == _exact_floats("3.0.3") == {"float_precision": "round_trip"}
    assert _exact_floats("3.1.1") == _exact_floats("4.0.0rc1") == {}
