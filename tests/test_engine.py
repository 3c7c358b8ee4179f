"""The run engine (hil/engine/): a room of its own without import cycles, the in-process
mode and its contract checks, the history recorder's formats, the summary's final block."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hil.engine import run_inprocess
from hil.engine.recorder import CsvSink, HistoryRecorder, MemorySink, NullSink, ParquetSink
from hil.engine.schema import HISTORY, HISTORY_COLUMNS, TIMING, TIMING_COLUMNS, markdown_table
from hil.history import read_columns, read_history
from hil.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the import graph of hil/

def _hil_imports() -> dict[str, set[str]]:
    """Module -> the hil modules it imports (anywhere in the file, lazy imports included)."""
    graph: dict[str, set[str]] = {}
    modules = {}
    for path in (REPO / "hil").rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    for name, path in modules.items():
        deps = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_of_hil_has_no_cycles():
    graph = _hil_imports()
    assert "hil.engine.lockstep" in graph and "hil.cli" in graph
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)
    # The check itself finds a cycle when there is one.
    assert _cycle({**graph, "hil.errors": graph["hil.errors"] | {"hil.engine.lockstep"}})


def test_the_engine_does_not_reach_back_into_the_command_line():
    graph = _hil_imports()
    for name, deps in graph.items():
        if name.startswith("hil.engine"):
            assert not deps & {"hil.cli", "hil.hil_cmd", "hil.plant_side", "hil.control",
                                "hil.pacing"}, name


# ---------------------------------------------------------------- in process

@pytest.fixture(scope="module")
def short_cfg():
    cfg = load_scenario("terminal")
    cfg.run.max_sim_time_s = 4.0     # 200 cycles
    return cfg


def test_inprocess_history_in_memory_csv_and_parquet_agree(short_cfg, tmp_path):
    pytest.importorskip("pyarrow")
    mem = run_inprocess(short_cfg, 3, history="memory")
    csv = run_inprocess(short_cfg, 3, out_dir=tmp_path / "csv", plots=False)
    pq = run_inprocess(short_cfg, 3, out_dir=tmp_path / "pq", history="parquet", plots=False)
    assert mem.out_dir is None and mem.history is not None and len(mem.history) == 200
    assert csv.summary["files"]["history"] == "history.csv"
    assert pq.summary["files"]["history"] == "history.parquet"
    assert json.loads((tmp_path / "pq" / "summary.json").read_text())["cycles"] == 200
    # The history kept in memory writes the very same CSV the run wrote.
    mem.history.to_csv(tmp_path / "mem.csv")
    wall = {HISTORY_COLUMNS.index("compute_us"), HISTORY_COLUMNS.index("round_trip_us")}

    def cut(path: Path) -> list[list[str]]:
        return [[c for j, c in enumerate(line.split(",")) if j not in wall]
                for line in path.read_text().splitlines()]
    assert cut(tmp_path / "mem.csv") == cut(tmp_path / "csv" / "history.csv")
    # Parquet holds the same values (missing cells are nulls), read back both ways.
    a = read_history(tmp_path / "csv" / "history.csv")
    b = read_history(tmp_path / "pq" / "history.parquet")
    assert list(b.columns) == HISTORY_COLUMNS
    for col in HISTORY:
        name = col.name
        if name in ("compute_us", "round_trip_us"):
            continue
        if col.kind != "s":
            np.testing.assert_array_equal(a[name].to_numpy(float), b[name].to_numpy(float))
        else:
            blank = (lambda values: ["" if v is None or v != v else v for v in values])
            assert blank(a[name].tolist()) == blank(b[name].tolist()), name
    assert b["alt_t_s"].isna().iloc[0] and b["alt_valid"].dtype.kind == "i"
    cols = read_columns(tmp_path / "pq" / "history.parquet", ["t_s", "mode", "nope"])
    assert set(cols) == {"t_s", "mode"} and cols["mode"][0] == "approach"


def test_inprocess_summary_has_the_final_block(short_cfg, tmp_path):
    r = run_inprocess(short_cfg, 3, out_dir=tmp_path / "run", plots=True)
    s = r.summary
    assert s["engine"] == "inprocess" and s["outcome"] == "timeout" and r.exit_code == 1
    f = s["final"]
    assert set(f) == {"downrange_m", "crossrange_m", "nav_pos_err_m", "nav_vel_err_mps",
                      "nav_alt_err_m"}
    last = read_columns(tmp_path / "run" / "history.csv")
    assert f["nav_pos_err_m"] == last["nav_pos_err_m"][-1]
    assert f["nav_alt_err_m"] == last["nav_alt_err_m"][-1]
    # Downrange and crossrange of the final state: one frame on from the last row.
    assert abs(f["downrange_m"] - last["true_downrange_m"][-1]) < 2.0
    assert (tmp_path / "run" / "descent.png").read_bytes()[:4] == b"\x89PNG"
    assert s["files"]["plot"] == "descent.png"


class _Scripted:
    """A flight software that holds a hover-ish command and breaks the contract at cycle 5."""

    NAME, VERSION = "scripted", "0.1"
    how = "raise"

    def __init__(self, config):
        self.config = config

    def step(self, frame):
        if frame.seq < 5:
            return 0.5, (0.0, 0.0, 0.0), "terminal"
        return {"raise": lambda: 1 / 0,
                "shape": lambda: (0.5, (0.0, 0.0, 0.0)),
                "nan": lambda: (float("nan"), (0.0, 0.0, 0.0), 4),
                "torque": lambda: (0.5, (0.0, 0.0), 4),
                "mode": lambda: (0.5, (0.0, 0.0, 0.0), "hover"),
                "flags": lambda: (0.5, (0.0, 0.0, 0.0), 4, None, -1),
                "nav": lambda: (0.5, (0.0, 0.0, 0.0), 4, [1.0] * 6, 0)}[self.how]()


@pytest.mark.parametrize("how,words", [
    ("raise", "step raised ZeroDivisionError"),
    ("shape", "step returned tuple"),
    ("nan", "throttle is nan"),
    ("torque", "torque_nm has 2 values"),
    ("mode", "unknown mode 'hover'"),
    ("flags", "flags is -1"),
    ("nav", "nav has 6 values"),
])
def test_a_contract_break_is_one_line_exit_3_history_kept(short_cfg, tmp_path, how, words):
    fsw = type(f"Bad{how.title()}", (_Scripted,), {"how": how})
    r = run_inprocess(short_cfg, 1, fsw=fsw, out_dir=tmp_path, plots=False)
    s = r.summary
    assert r.exit_code == 3 and s["outcome"] == "fsw_fault"
    assert s["reason"].startswith(f"flight software Bad{how.title()} broke the contract at "
                                  f"seq 5: ")
    assert words in s["reason"] and "\n" not in s["reason"]
    assert s["fsw_software"] == "scripted 0.1"
    h = read_columns(tmp_path / "history.csv", ["seq", "mode"])
    assert h["seq"].tolist() == [0, 1, 2, 3, 4] and set(h["mode"]) == {"terminal"}
    assert json.loads((tmp_path / "summary.json").read_text())["outcome"] == "fsw_fault"


def test_a_flight_software_without_step_or_that_cannot_start(short_cfg):
    class NoStep:
        def __init__(self, config):
            pass

    def broken(config):
        raise KeyError("vehicle")

    r = run_inprocess(short_cfg, 1, fsw=NoStep, history=None)
    assert r.exit_code == 3 and r.summary["reason"] == ("flight software NoStep broke the "
                                                        "contract at start (before the first "
                                                        "frame): has no step(frame) method")
    r = run_inprocess(short_cfg, 1, fsw=broken, history=None)
    assert r.exit_code == 3 and "constructor raised KeyError" in r.summary["reason"]
    assert r.summary["cycles"] == 0 and r.summary["outcome"] == "fsw_fault"


def test_the_flight_software_sees_what_the_link_would_deliver(short_cfg):
    seen = []

    class Probe:
        def __init__(self, config):
            seen.append(config)

        def step(self, frame):
            seen.append((frame.seq, frame.t_us, frame.imu, frame.alt, frame.vel))
            return 0, [0, 0, 0], 1           # integers where floats are due: accepted

    r = run_inprocess(short_cfg, 1, fsw=Probe, history="memory")
    config = seen[0]
    assert isinstance(config["site"]["up"], list) and isinstance(config["vehicle"], dict)
    frames = seen[1:]
    assert [f[0] for f in frames] == list(range(200))
    assert all(type(s[0]) is int and all(type(x) is float for x in s[1:])
               for f in frames for s in f[2])
    alts = [f[3] for f in frames if f[3] is not None]
    assert alts and all(type(a) is list and type(a[0]) is int and type(a[1]) is float
                        and type(a[2]) is bool for a in alts)
    h = r.history
    assert h["cmd_throttle"].dtype == np.float64 and set(h["mode"]) == {"coast"}
    assert set(h["cmd_throttle"]) == {0.0} and h["cmd_tx_nm"].dtype == np.float64
    assert r.exit_code == 1


# ---------------------------------------------------------------- the recorder

def _fill(rec: HistoryRecorder, n: int) -> None:
    w = rec.width
    for k in range(n):
        row = rec.row
        row[:] = [float(k)] * w
        row[1] = k
        row[2] = "coast" if k % 2 else 'a,"b"'
        for name in ("alt_t_s", "compute_us"):
            row[HISTORY_COLUMNS.index(name)] = None if k % 3 == 0 else k
        row[HISTORY_COLUMNS.index("alt_valid")] = k % 2
        row[HISTORY_COLUMNS.index("cmd_flags")] = k
        row[HISTORY_COLUMNS.index("round_trip_us")] = k
        row[HISTORY_COLUMNS.index("faults")] = ""
        rec.commit()
        if k % 3 == 0:
            rec.idle(2)


def test_recorder_blocks_idle_writes_and_flushes(tmp_path):
    path = tmp_path / "h.csv"
    rec = HistoryRecorder(CsvSink(path, HISTORY), block_rows=8, flush_interval_s=1e9)
    _fill(rec, 21)   # two full blocks (one pending, written in pieces) and 5 rows
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(HISTORY_COLUMNS)
    assert 1 + 8 <= len(lines) <= 1 + 16     # the pending block may be partly written
    rec.close()
    rec.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 22
    assert lines[1 + 4].startswith('4.0,4,"a,""b""",4.0,')
    rows = list(csv.reader(lines))
    assert rows[1 + 4][2] == 'a,"b"' and rows[1 + 5][2] == "coast"
    assert rows[1 + 3][HISTORY_COLUMNS.index("alt_t_s")] == ""
    assert rows[1 + 4][HISTORY_COLUMNS.index("alt_t_s")] == "4"   # an int where a float is due
    h = read_columns(path, ["seq", "alt_t_s", "compute_us"])
    assert h["seq"].tolist() == list(range(21))
    assert np.isnan(h["alt_t_s"][3]) and h["compute_us"][4] == 4


def test_recorder_memory_and_parquet_sinks(tmp_path):
    pytest.importorskip("pyarrow")
    mem = HistoryRecorder(MemorySink(HISTORY), block_rows=4)
    _fill(mem, 10)
    mem.close()
    h = mem.history()
    assert len(h) == 10 and h["seq"].dtype == np.int64 and np.isnan(h["compute_us"][0])
    assert h["mode"][1] == "coast"
    pq = HistoryRecorder(ParquetSink(tmp_path / "h.parquet", HISTORY), block_rows=4)
    _fill(pq, 10)
    pq.close()
    import pyarrow.parquet as pqm
    t = pqm.read_table(tmp_path / "h.parquet")
    assert t.column("compute_us").null_count == 4 and t.column("seq").to_pylist() == \
        list(range(10))


def test_imu_columns_sum_the_samples_as_numpy_does():
    """The recorder sums a frame's IMU samples in plain floats; the result is numpy's sum over
    the samples bit for bit, signed zeros included (histories stay as they were)."""
    from types import SimpleNamespace

    rng = np.random.default_rng(7)
    rec = HistoryRecorder(NullSink())
    plant = SimpleNamespace(truth=_fake_truth, altimeter=SimpleNamespace(last_true_range_m=None),
                            faults=SimpleNamespace(label=lambda t: ""), t_us=0,
                            gear_row=lambda: [None] * 9)
    for trial in range(300):
        n = int(rng.integers(1, 9))
        values = rng.choice([0.0, -0.0, 1e-7, -1e-7, 3e-5], size=(n, 6)) \
            if trial % 2 else rng.standard_normal((n, 6)) * 1e-4
        imu = [[5000 * (i + 1), *map(float, row)] for i, row in enumerate(values)]
        rec.plant_part(plant, SimpleNamespace(t_us=0, seq=0, imu=imu, alt=None, vel=None))
        got = rec.row[HISTORY_COLUMNS.index("imu_dvx_mps"):][:6]
        want = np.sum(np.array(imu), axis=0)[1:].tolist()
        assert [repr(x) for x in got] == [repr(x) for x in want]


def _fake_truth():
    return {"r_m": np.array([1.0, 2.0, 3.0]), "v_mps": np.array([0.0, 0.0, 0.0]), "alt_m": 1.0,
            "vert_speed_mps": 0.0, "horiz_speed_mps": 0.0, "downrange_m": 0.0,
            "crossrange_m": 0.0, "tilt_deg": 0.0, "rate_dps": 0.0, "mass_kg": 1.0,
            "propellant_kg": 0.0, "throttle": 0.0}


def test_the_gear_columns_are_the_plants_gear_row():
    from plant.lander import GEAR_COLUMNS
    assert HISTORY_COLUMNS[-len(GEAR_COLUMNS):] == GEAR_COLUMNS


def test_schema_columns_are_documented():
    doc = (REPO / "docs" / "history.md").read_text()
    assert markdown_table(HISTORY) in doc and markdown_table(TIMING) in doc
    assert len(set(HISTORY_COLUMNS + TIMING_COLUMNS)) == len(HISTORY) + len(TIMING)

