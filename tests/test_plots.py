"""Descent plot: a PNG from a small synthetic history, with and without some columns."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # repo root, not installed

import math

import numpy as np

from hil.history import HistoryWriter
from hil.plots import MAX_POINTS, _decimate, plot_descent

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COLUMNS = ["t_s", "true_alt_m", "nav_alt_m", "true_vert_speed_mps", "true_horiz_speed_mps",
           "cmd_throttle", "mode", "alt_valid", "nav_pos_err_m", "nav_vel_err_mps",
           "nav_alt_err_m"]
MODES = ["coast", "braking", "approach", "terminal", "touchdown"]


def synthetic(path: pathlib.Path, n: int, columns: list[str] = COLUMNS) -> pathlib.Path:
    with HistoryWriter(path, columns) as w:
        for i in range(n):
            t = i * 0.5
            full = {"t_s": t, "true_alt_m": 2000.0 - 10 * t, "nav_alt_m": 2001.0 - 10 * t,
                    "true_vert_speed_mps": -30 + 0.1 * t, "true_horiz_speed_mps": 60 - 0.3 * t,
                    "cmd_throttle": 0.5 + 0.3 * math.sin(t), "mode": MODES[i * 5 // n],
                    "alt_valid": i > 3, "nav_pos_err_m": 5.0 / (1 + t),
                    "nav_vel_err_mps": 0.1, "nav_alt_err_m": 1.0 - 0.005 * t}
            w.write([full[c] for c in columns])
    return path


def is_png(path: pathlib.Path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 20_000


def test_plot_from_small_history(tmp_path: pathlib.Path) -> None:
    csv = synthetic(tmp_path / "h.csv", 200)
    out = plot_descent(csv, tmp_path / "descent.png", "terminal: synthetic")
    assert out == tmp_path / "descent.png" and is_png(out)


def test_missing_columns_and_tiny_history(tmp_path: pathlib.Path) -> None:
    csv = synthetic(tmp_path / "h.csv", 3, ["t_s", "true_alt_m", "mode"])
    assert is_png(plot_descent(csv, tmp_path / "p.png", "three rows"))


def test_header_only_history(tmp_path: pathlib.Path) -> None:
    csv = synthetic(tmp_path / "h.csv", 0)
    out = plot_descent(csv, tmp_path / "empty.png", "no rows")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_decimation_keeps_every_mode_change() -> None:
    n = 100_000
    mode = np.array(["coast"] * n, dtype=object)
    mode[50_001:] = "braking"
    valid = np.zeros(n)
    valid[70_003:70_005] = 1.0                  # a two-row blip
    keep = _decimate({"mode": mode, "alt_valid": valid}, n)
    assert len(keep) < 1.1 * MAX_POINTS and keep[0] == 0 and keep[-1] == n - 1
    assert {50_000, 50_001, 70_002, 70_003, 70_004, 70_005} <= set(keep.tolist())
