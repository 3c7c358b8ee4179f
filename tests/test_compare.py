"""``fsil compare``: two synthetic run folders -> one PNG and the printed differences."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # repo root, not installed

import pytest

from hil.compare import CompareError, compare, load_run
from hil.errors import EXIT_CONFIG
from hil.history import HistoryWriter

ROOT = pathlib.Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COLUMNS = ["t_s", "seq", "mode", "true_alt_m", "true_vert_speed_mps", "alt_valid", "nav_alt_m",
           "nav_alt_err_m"]


def make_run(folder: pathlib.Path, *, valid_below_m: float, nav_offset_at: float | None,
             outcome: str, faults: list | None = None, n: int = 400) -> pathlib.Path:
    """A 200 s descent from 4 km at a descent rate rising from 10 to 30 m/s.

    The altimeter reads valid once the true altitude is below ``valid_below_m``. From sim
    time ``nav_offset_at`` on, the estimate is 3000 m too low (a rejected terrain jump)."""
    folder.mkdir(parents=True)
    alt, t_prev = 4000.0, 0.0
    with HistoryWriter(folder / "history.csv", COLUMNS) as w:
        for i in range(n):
            t = i * 0.5
            rate = 10.0 + 20.0 * t / 200.0
            alt = max(0.0, alt - rate * (t - t_prev))
            t_prev = t
            mode = "coast" if t < 5.0 else "braking" if t < 60.0 else \
                "approach" if t < 150.0 else "terminal"
            nav = alt + (-3000.0 if nav_offset_at is not None and t >= nav_offset_at else 2.0)
            w.write([t, i, mode, alt, -rate, alt < valid_below_m, nav, nav - alt])
    summary = {
        "outcome": outcome,
        "reason": "touchdown at 1.00 m/s vertical" if outcome == "landed"
        else "hit the ground at 30.0 m/s vertical",
        "touchdown": {"vertical_speed_mps": 1.0 if outcome == "landed" else 30.0,
                      "horizontal_speed_mps": 0.2, "tilt_deg": 1.5, "angular_rate_dps": 0.1,
                      "distance_to_target_m": 40.0},
        "propellant_used_kg": 500.0, "propellant_left_kg": 180.0 if outcome == "landed" else 0.0,
        "sim_time_s": n * 0.5, "scenario": "synthetic", "seed": 1,
    }
    if faults is not None:
        summary["faults"] = faults
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return folder


@pytest.fixture
def two_runs(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    a = make_run(tmp_path / "good", valid_below_m=3500.0, nav_offset_at=None, outcome="landed")
    b = make_run(tmp_path / "late", valid_below_m=900.0, nav_offset_at=120.0, outcome="crashed",
                 faults=[{"sensor": "altimeter", "kind": "late", "name": "lrf late",
                          "source": "scenario", "params": {"value": 900.0},
                          "trigger": {"at_time_s": 0.0}, "fired_t_s": 0.0,
                          "cleared_t_s": None}])
    return a, b


def line(lines: list[str], start: str) -> list[str]:
    """The cells of the table row whose name is ``start``."""
    found = [ln for ln in lines if ln.startswith(start)]
    assert found, f"no row {start!r} in:\n" + "\n".join(lines)
    return found[0][len(start):].split()


def test_compare_writes_one_png_and_the_differences(two_runs) -> None:
    a, b = two_runs
    png, lines = compare(a, b)
    assert png == a / "compare-late.png"            # default: in run A's folder
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 30_000
    text = "\n".join(lines)
    assert lines[0].startswith("A: good") and lines[1].startswith("B: late")
    assert line(lines, "outcome") == ["landed", "crashed"]
    assert line(lines, "touchdown vertical speed (m/s)") == ["1.00", "30.00", "+29.00"]
    assert line(lines, "touchdown tilt (deg)") == ["1.50", "1.50", "+0.00"]
    assert line(lines, "propellant left (kg)") == ["180.0", "0.0", "-180.0"]
    assert line(lines, "sim time (s)") == ["200.0", "200.0", "+0.0"]
    # First valid altimeter: A at 3500 m, B far lower and faster (late acquisition).
    ta, tb, dt = (float(x) for x in line(lines, "altimeter first valid at (s)"))
    assert 0 < ta < tb and dt == pytest.approx(tb - ta, abs=0.06)
    alt_a, alt_b, _ = (float(x) for x in line(lines, "  true altitude then (m)"))
    assert 3400 < alt_a < 3500 and 850 < alt_b < 900
    rate_a, rate_b, _ = (float(x) for x in line(lines, "  descent rate then (m/s)"))
    assert rate_a < 15.0 < 25.0 < rate_b
    assert line(lines, "largest nav altitude error (m)")[:2] == ["+2.0", "-3000.0"]
    assert float(line(lines, "  at (s)")[1]) >= 120.0
    assert "  A: touchdown at 1.00 m/s vertical" in text
    assert "  B: hit the ground at 30.0 m/s vertical" in text
    assert "  A: coast 0.0, braking 5.0, approach 60.0, terminal 150.0" in text
    assert "  A: none" in text
    assert '  B: altimeter late "lrf late": fired at 0.0 s [at_time_s=0; value=900]' in text


def test_labels_and_out(two_runs, tmp_path: pathlib.Path) -> None:
    a, b = two_runs
    png, lines = compare(a / "history.csv", b, tmp_path / "x.png", ("default", "legacy"))
    assert png == tmp_path / "x.png" and png.read_bytes()[:8] == PNG_MAGIC
    assert lines[0].startswith("A: default") and "default" in lines[3] and "legacy" in lines[3]
    assert "faults" in lines                     # only B has a faults key: A shows none
    png, _ = compare(a, b, tmp_path)             # a folder: the default name in it
    assert png == tmp_path / "compare-late.png" and png.is_file()


def test_same_folder_names_get_told_apart(tmp_path: pathlib.Path) -> None:
    a = make_run(tmp_path / "x" / "run", valid_below_m=3000.0, nav_offset_at=None, outcome="landed")
    b = make_run(tmp_path / "y" / "run", valid_below_m=3000.0, nav_offset_at=None, outcome="landed")
    _, lines = compare(a, b)
    assert lines[0].startswith("A: A run") and lines[1].startswith("B: B run")
    assert "faults" not in lines                 # neither summary lists faults


def test_missing_things_are_one_line_errors(two_runs, tmp_path: pathlib.Path) -> None:
    a, b = two_runs
    with pytest.raises(CompareError, match='run folder ".*nowhere" not found'):
        compare(tmp_path / "nowhere", b)
    (b / "summary.json").unlink()
    with pytest.raises(CompareError, match=r'summary.json" not found \(is ".*late" a run folder\?\)'):
        compare(a, b)
    bare = tmp_path / "bare"
    bare.mkdir()
    with HistoryWriter(bare / "history.csv", ["t_s", "mode", "true_alt_m"]) as w:
        w.write([0.0, "coast", 100.0])
    (bare / "summary.json").write_text("{}", encoding="utf-8")
    with pytest.raises(CompareError) as info:
        load_run(bare)
    assert str(info.value).endswith("history.csv\" lacks columns nav_alt_m, true_vert_speed_mps, "
                                    "alt_valid")
    assert info.value.exit_code == EXIT_CONFIG
    (bare / "summary.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(CompareError, match="cannot read"):
        load_run(bare)
    with pytest.raises(CompareError, match="for the plot does not exist"):
        compare(a, a, tmp_path / "no" / "such" / "x.png")


def test_header_only_history(two_runs, tmp_path: pathlib.Path) -> None:
    """A run that died before its first frame still compares (nothing to say about it)."""
    a, _ = two_runs
    empty = tmp_path / "empty"
    empty.mkdir()
    HistoryWriter(empty / "history.csv", COLUMNS).close()
    (empty / "summary.json").write_text(json.dumps({"outcome": "link_failure",
                                                    "reason": "fsw stalled"}), encoding="utf-8")
    png, lines = compare(a, empty)
    assert png.is_file()
    assert line(lines, "altimeter first valid at (s)")[1] == "never"
    assert line(lines, "touchdown vertical speed (m/s)") == ["1.00", "-"]
    assert "  B: no rows" in lines


def test_cli_compare(two_runs, tmp_path: pathlib.Path) -> None:
    a, b = two_runs
    out = tmp_path / "cli.png"
    proc = subprocess.run([sys.executable, "-m", "hil.cli", "compare", str(a), str(b),
                           "--out", str(out), "--labels", "ok", "late-lrf"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert "outcome" in proc.stdout and "landed" in proc.stdout and "crashed" in proc.stdout
    assert proc.stdout.rstrip().endswith(f"plot: {out}")
    proc = subprocess.run([sys.executable, "-m", "hil.cli", "compare", str(a),
                           str(tmp_path / "missing")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == EXIT_CONFIG
    assert proc.stderr.count("\n") == 1 and "not found" in proc.stderr
