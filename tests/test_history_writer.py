"""The history writer process (hil/engine/writer.py): the same bytes as the in-loop sinks,
and nothing lost when it dies, stalls, or the run is interrupted.

The rows of a real run are compared with a reference run of the same scenario and seed
cell for cell, but the wall-clock columns (compute_us, round_trip_us).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from pathlib import Path

import pytest

import hil.engine.writer as writer
from hil.engine import run_inprocess, signals
from hil.engine.recorder import CsvSink, HistoryRecorder, ParquetSink
from hil.engine.schema import columns
from hil.engine.writer import ProcessSink
from hil.errors import EXIT_HISTORY, EXIT_INTERRUPTED
from hil.scenario import load_scenario

WALL = ("compute_us", "round_trip_us")


def _rows(n: int, first: int = 0) -> list[list]:
    """Rows of every column kind, with awkward values (NaN, -0.0, None, quoted text)."""
    cols = columns(False)
    out = []
    for k in range(first, first + n):
        row = []
        for j, c in enumerate(cols):
            if c.kind == "f":
                row.append((k * 0.1 + j / 7) if k % 5 else (-0.0 if j % 2 else float("nan")))
            elif c.kind == "f?":
                row.append(None if k % 3 == 0 else k / 3 + j)
            elif c.kind in ("i", "i?"):
                row.append(None if c.kind == "i?" and k % 4 == 0 else k * 1000 + j)
            else:
                row.append('altimeter:late;imu:"bias", x' if k % 7 == 0 else f"mode{k % 3}")
        out.append(row)
    return out


def _reference_csv(tmp_path: Path, blocks: list[list[list]]) -> bytes:
    path = tmp_path / "reference.csv"
    sink = CsvSink(path, columns(False))
    for b in blocks:
        sink.write(b, 0, len(b))
    sink.close()
    return path.read_bytes()


def _writer_pid(sink: ProcessSink) -> int:
    assert sink.proc is not None, "the writer process did not start"
    return sink.proc.pid


def test_the_writer_writes_the_bytes_the_plant_would(tmp_path):
    blocks = [_rows(10), _rows(256, 10), _rows(3, 266), _rows(200, 269)]
    sink = ProcessSink("csv", tmp_path / "history.csv", columns(False))
    for b in blocks:
        sink.write(b, 0, len(b))
    pid = sink.pid
    sink.close()
    assert pid is not None and sink.failure is None
    report = sink.writer_report()
    assert report["rows_sent"] == 459 and report["rows_in_plant"] == 10   # 10 < START_ROWS
    assert (tmp_path / "history.csv").read_bytes() == _reference_csv(tmp_path, blocks)


def test_the_parquet_writer_writes_the_plant_s_table(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    blocks = [_rows(100), _rows(300, 100)]
    sink = ProcessSink("parquet", tmp_path / "history.parquet", columns(False))
    ref = ParquetSink(tmp_path / "reference.parquet", columns(False))
    for b in blocks:
        sink.write(b, 0, len(b))
        ref.write(b, 0, len(b))
    sink.close()
    ref.close()
    assert sink.failure is None
    a, b = pq.read_table(tmp_path / "history.parquet"), pq.read_table(tmp_path / "reference.parquet")
    assert a.schema.equals(b.schema) and a.num_rows == 400
    assert a.to_pylist() == b.to_pylist() or all(   # NaN != NaN: compare as text
        repr(x) == repr(y) for x, y in zip(a.to_pylist(), b.to_pylist()))


def test_a_killed_writer_loses_no_row_and_is_named(tmp_path):
    blocks = [_rows(256, 256 * i) for i in range(6)]
    sink = ProcessSink("csv", tmp_path / "history.csv", columns(False))
    for b in blocks[:3]:
        sink.write(b, 0, len(b))
    pid = _writer_pid(sink)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    for b in blocks[3:]:            # the first write after the death finds it
        sink.write(b, 0, len(b))
    sink.close()
    assert sink.failure is not None
    text = str(sink.failure)
    assert f"history writer process {pid} was killed by SIGKILL" in text, text
    assert "\n" not in text
    assert (tmp_path / "history.csv").read_bytes() == _reference_csv(tmp_path, blocks)
    assert sink.failure.exit_code == EXIT_HISTORY


def test_a_stalled_writer_is_a_bounded_wait(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "WAIT_S", 0.5)
    blocks = [_rows(256, 256 * i) for i in range(writer.QUEUE_BLOCKS + 4)]
    sink = ProcessSink("csv", tmp_path / "history.csv", columns(False))
    sink.write(blocks[0], 0, 256)
    pid = _writer_pid(sink)
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        for b in blocks[1:]:
            sink.write(b, 0, len(b))
        sink.close()
        waited = time.monotonic() - t0
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert sink.failure is not None and "stalled" in str(sink.failure), sink.failure
    assert waited < 5.0
    assert (tmp_path / "history.csv").read_bytes() == _reference_csv(tmp_path, blocks)


# ------------------------------------------------------------- whole runs, in process
@pytest.fixture(scope="module")
def cfg():
    c = load_scenario("terminal")
    c.run.max_sim_time_s = 40.0     # 2,000 cycles: several blocks through the writer
    return c


@pytest.fixture(scope="module")
def reference(cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    result = run_inprocess(cfg, 5, out_dir=out, plots=False)
    assert result.summary["timing"]["history_writer"]["rows_sent"] > 0
    return _read(out / "history.csv")


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    keep = [j for j, name in enumerate(rows[0]) if name not in WALL]
    return rows[0], [[r[j] for j in keep] for r in rows[1:]]


def _fsw_doing(at_seq: int, action):
    from fsw.host.registry import resolve
    inner = resolve("default", load=True).factory

    class Fsw:
        def __init__(self, config):
            self.fsw = inner(config)

        def step(self, frame):
            if frame.seq == at_seq:
                action()
            return self.fsw.step(frame)
    return Fsw


def _writer_children() -> list[int]:
    """Processes this one started that run hil.engine.writer."""
    pids = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                if b"hil.engine.writer" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(int(pid))
            except OSError:
                pass
    return pids


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_run_whose_writer_is_killed_ends_with_its_history_whole(cfg, reference, tmp_path):
    killed = []

    def kill_writer():
        pids = _writer_children()
        assert pids, "no writer process running at seq 1500"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    result = run_inprocess(cfg, 5, fsw=_fsw_doing(1500, kill_writer), out_dir=tmp_path,
                           plots=False)
    assert killed
    s = json.loads((tmp_path / "summary.json").read_text())
    assert result.exit_code == EXIT_HISTORY
    assert s["outcome"] == "history_failure"
    assert f"history writer process {killed[0]} was killed by SIGKILL" in s["reason"]
    assert "completed by the plant's process" in s["reason"]
    header, rows = _read(tmp_path / "history.csv")
    assert header == reference[0]
    assert len(rows) == s["cycles"] >= 1500     # every recorded row, none twice
    assert rows == reference[1][:len(rows)]


def test_a_signal_mid_run_keeps_the_history_the_writer_had(cfg, reference, tmp_path):
    with signals.handle_signals():
        result = run_inprocess(cfg, 5, fsw=_fsw_doing(1200, lambda: signal.raise_signal(
            signal.SIGTERM)), out_dir=tmp_path, plots=False)
    s = json.loads((tmp_path / "summary.json").read_text())
    assert result.exit_code == EXIT_INTERRUPTED and s["outcome"] == "interrupted"
    w = s["timing"]["history_writer"]
    assert w["rows_sent"] > 0 and not w["failed"]
    header, rows = _read(tmp_path / "history.csv")
    assert len(rows) == s["cycles"] >= 1200
    assert rows == reference[1][:len(rows)]
    assert not _writer_children()           # reaped


def test_the_campaign_path_starts_no_writer(cfg):
    result = run_inprocess(cfg, 5, out_dir=None, history="memory", plots=False)
    assert "history_writer" not in result.summary["timing"]
    assert len(result.history) == result.summary["cycles"]


def test_over_two_processes_the_writer_is_asked_for_and_gives_the_same_rows(tmp_path):
    """Over a link the plant formats the rows while the flight software computes (no writer
    by default); FSIL_HISTORY_WRITER=1 asks for one: the same history as without."""
    import subprocess
    import sys
    runs = {}
    for flag in ("0", "1"):
        out = tmp_path / f"w{flag}"
        proc = subprocess.run(
            [sys.executable, "-m", "hil.cli", "run", "--scenario", "terminal", "--seed", "2",
             "--out", str(out), "--no-progress", "--no-plot"], capture_output=True, text=True,
            timeout=300, env={**os.environ, "FSIL_HISTORY_WRITER": flag})
        assert proc.returncode == 0, proc.stderr
        s = json.loads((out / "summary.json").read_text())
        runs[flag] = (s, _read(out / "history.csv"))
    assert "history_writer" not in runs["0"][0]["timing"]
    assert runs["1"][0]["timing"]["history_writer"]["rows_sent"] > 10_000
    assert runs["0"][1] == runs["1"][1] and len(runs["0"][1][1]) == runs["0"][0]["cycles"]


def test_writer_enabled_follows_the_environment_and_the_cpus(monkeypatch):
    monkeypatch.delenv(writer.WRITER_ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert writer.writer_enabled(True) and not writer.writer_enabled(False)
    monkeypatch.setenv(writer.WRITER_ENV, "0")
    assert not writer.writer_enabled(True)
    monkeypatch.setenv(writer.WRITER_ENV, "1")
    assert writer.writer_enabled(False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert not writer.writer_enabled(True)     # one CPU: nothing to gain


def test_a_writer_that_cannot_start_is_said_and_the_rows_are_kept(tmp_path, monkeypatch):
    def no_process(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")
    monkeypatch.setattr(writer.subprocess, "Popen", no_process)
    blocks = [_rows(100), _rows(256, 100), _rows(5, 356)]
    sink = ProcessSink("csv", tmp_path / "history.csv", columns(False))
    for b in blocks:
        sink.write(b, 0, len(b))
    sink.close()
    assert sink.failure is not None and "could not start" in str(sink.failure)
    assert sink.writer_report()["rows_in_plant"] == 361
    assert (tmp_path / "history.csv").read_bytes() == _reference_csv(tmp_path, blocks)
