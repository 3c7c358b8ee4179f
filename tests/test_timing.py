"""Timing log, report, report object, plot, pacer, and the [deadline] scenario table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hil.errors import ScenarioError
from hil.pacing import Pacer, clock_ns, coarse_ms, wait_until
from hil.scenario import load_scenario, scenario_from_dict
from hil.timing import (MAX_SAMPLES, TimingLog, TimingReport, format_report, percentiles,
                        plot_timing)


# --- percentiles and the log --------------------------------------------------------------
def test_percentiles_nearest_rank_and_ignore_missing():
    v = np.array([-1, *range(1, 1001), -1], dtype=np.int64)  # -1 = no value
    p = percentiles(v)
    assert p == {"count": 1000, "p50": 500, "p90": 900, "p99": 990, "p99.9": 999, "max": 1000,
                 "mean": 500.5}
    assert percentiles(np.full(5, -1))["p99"] is None


def test_log_is_preallocated_for_the_run_and_capped():
    cfg = load_scenario("terminal")            # 300 s at 50 Hz
    log = TimingLog.for_run(cfg, realtime=True)
    assert log.capacity == 15_002 and log.latency_us.dtype == np.int64
    assert log.period_ns == log.deadline_ns == 20_000_000
    cfg.run.max_sim_time_s = 1e5
    cfg.rates.frame_hz = 1000.0
    assert TimingLog.for_run(cfg, realtime=False).capacity == MAX_SAMPLES


def test_miss_streaks():
    log = TimingLog(10, True, 1, 1)
    for missed in (True, True, False, True, True, True, False):
        log.miss(missed)
    assert log.misses == 5 and log.longest_streak == 3 and log.streak == 0


def test_lockstep_report():
    log = TimingLog(100, False)
    for k in range(10):
        log.lockstep(k, round_trip_us=500 + k, compute_us=100, step_us=200)
    t = log.report()
    assert t["mode"] == "lockstep" and t["cycles"] == 10
    assert t["round_trip_us"]["max"] == 509 and t["compute_us"]["p50"] == 100
    assert t["transport_us"]["p50"] == 404 and t["plant_step_us"]["count"] == 10
    assert "deadline_misses" not in t and "latency_us" not in t
    json.dumps(t)
    assert "lockstep" in format_report(t)[0]


def test_lockstep_log_reads_only_cells_it_wrote():
    """Lockstep arrays are left unwritten until a cycle reaches them (memory follows the run,
    not the scenario's longest one): cycles never recorded count as missing, not garbage."""
    log = TimingLog(1_000, False)
    for k in (0, 1, 5):                      # 2-4 skipped
        log.lockstep(k, round_trip_us=300, compute_us=100, step_us=50, record_us=20,
                     record_wait_us=10)
    t = log.report()
    assert t["cycles"] == 6
    for key in ("round_trip_us", "compute_us", "plant_step_us", "record_us", "record_wait_us"):
        assert t[key]["count"] == 3, key
    assert t["round_trip_us"]["max"] == 300 and t["record_us"]["max"] == 20


def _realtime_log() -> TimingLog:
    log = TimingLog(100, True, 20_000_000, 15_000_000,
                    {"on_miss": "hold", "max_consecutive_misses": 0, "max_total_misses": 0,
                     "lost_after_s": 1.0})
    for k in range(20):
        log.sent_us[k] = k * 20_000 + 5
        log.jitter_us[k] = 5
        log.latency_us[k] = 1_000 if k != 7 else 18_000
        log.compute_us[k] = 800 if k != 7 else 17_800
        log.arrival_us[k] = log.sent_us[k] + log.latency_us[k]
        log.step_us[k] = 150
        log.met[k] = k != 7
        log.miss(k == 7)
    log.overrun_us[7] = 3_005
    log.longest_overrun_us = 3_005
    log.late_commands = 1
    log.cycles = log.frames_sent = log.commands = 20
    return log


def test_realtime_report_and_report_object(tmp_path):
    t = _realtime_log().report()
    assert t["mode"] == "realtime" and t["period_us"] == 20_000 and t["deadline_us"] == 15_000
    assert t["deadline_misses"] == 1 and t["longest_overrun_us"] == 3_005
    assert t["latency_us"]["max"] == 18_000 and t["overrun_us"]["count"] == 1
    assert t["policy"]["on_miss"] == "hold" and t["abort"] is None
    summary = json.loads(json.dumps({"outcome": "landed", "timing": t}))
    r = TimingReport.from_summary(summary, tmp_path, 0)
    assert r.deadline_misses == 1 and r.cycles == 20
    assert r.latency.p99 == pytest.approx(0.018) and r.latency.p50 == pytest.approx(0.001)
    assert r.latency.p99_9 == pytest.approx(0.018) and r.compute.max == pytest.approx(0.0178)
    assert r.jitter.p50 == pytest.approx(5e-6)
    assert r.deadline == pytest.approx(0.015) and r.longest_overrun == pytest.approx(0.003005)
    assert r.outcome == "landed" and r.exit_code == 0 and r.run_dir == tmp_path
    assert "1 deadline misses in 20 cycles" in str(r)
    lines = "\n".join(format_report(t))
    assert "deadline 15 ms" in lines and "1 deadline misses in 20 cycles" in lines
    assert "p99.9" in lines and "longest overrun 3.00 ms" in lines


def test_report_object_without_timing_block():
    r = TimingReport.from_summary({"outcome": "link_failure"})
    assert r.mode == "none" and r.latency.p99 is None and r.latency.count == 0


def test_timing_plot(tmp_path):
    png = plot_timing(_realtime_log(), tmp_path / "timing.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = TimingLog(10, True, 20_000_000, 20_000_000)
    empty.cycles = 3
    empty.met[:3] = 0
    assert plot_timing(empty, tmp_path / "empty.png", "nothing came").exists()


# --- pacer --------------------------------------------------------------------------------
def test_coarse_wait_is_whole_milliseconds_before_the_spin():
    assert coarse_ms(10_000_000, 1_500_000) == 0.008
    assert coarse_ms(2_400_000, 1_500_000) == 0.0
    assert coarse_ms(-5, 1_500_000) == 0.0


def test_pacer_never_wakes_early_and_keeps_an_absolute_schedule():
    pacer = Pacer(5_000_000)  # 200 Hz
    t0 = pacer.start()
    wakes = [pacer.wait(k) for k in range(40)]
    errors = [w - pacer.due(k) for k, w in enumerate(wakes)]
    assert all(e >= 0 for e in errors)
    assert pacer.due(39) - t0 == 39 * 5_000_000        # no drift: next += period
    # loose: the spin makes the median error microseconds; 2 ms allows a busy machine
    assert sorted(errors)[len(errors) // 2] < 2_000_000


def test_wait_until_polls_while_waiting():
    calls = []
    due = clock_ns() + 6_000_000
    woke = wait_until(due, idle=lambda s: (calls.append(s), __import__("time").sleep(s)))
    assert woke >= due and calls and max(calls) <= 0.005   # whole ms, < 6 - 1.5 ms


def test_pacer_rejects_a_bad_period():
    with pytest.raises(ValueError):
        Pacer(0)


# --- the [deadline] table -----------------------------------------------------------------
def test_deadline_defaults_and_values():
    cfg = load_scenario("terminal")
    d = cfg.deadline
    assert (d.period_s, d.deadline_s, d.on_miss) == (None, None, "hold")
    assert (d.max_consecutive_misses, d.max_total_misses, d.lost_after_s) == (0, 0, 1.0)
    cfg = scenario_from_dict({"deadline": {"period_s": 0.04, "deadline_s": 0.03,
                                           "on_miss": "skip", "max_total_misses": 5}})
    assert cfg.deadline.deadline_s == 0.03 and cfg.deadline.on_miss == "skip"
    log = TimingLog.for_run(cfg, realtime=True)
    assert log.period_ns == 40_000_000 and log.deadline_ns == 30_000_000


@pytest.mark.parametrize("table, key, words", [
    ({"deadline_s": 0.021}, "deadline.deadline_s", "at most the period, 0.02 s (1 / frame_hz)"),
    ({"period_s": 0.05, "deadline_s": 0.06}, "deadline.deadline_s", "at most the period"),
    ({"on_miss": "drop"}, "deadline.on_miss", "not one of hold, skip"),
    ({"max_total_misses": -1}, "deadline.max_total_misses", "out of range"),
    ({"max_consecutive_misses": 2.5}, "deadline.max_consecutive_misses", "expected an integer"),
    ({"lost_after_s": 0.01}, "deadline.lost_after_s", "at least the deadline"),
    ({"deadline": 0.01}, "deadline.deadline", 'did you mean "deadline_s"'),
])
def test_bad_deadline_table(table, key, words):
    with pytest.raises(ScenarioError) as e:
        scenario_from_dict({"deadline": table}, source="x.toml")
    assert e.value.key == key and words in str(e.value)
    assert str(e.value).startswith('scenario "x.toml": [deadline]')


def test_deadline_equal_to_the_period_is_fine():
    cfg = scenario_from_dict({"rates": {"frame_hz": 50.0}, "deadline": {"deadline_s": 0.02}})
    assert math.isclose(cfg.deadline.deadline_s, 0.02)


def test_spin_window_leaves_every_cycle_a_sleep():
    from hil.pacing import SPIN_NS, spin_for
    assert spin_for(20_000_000) == SPIN_NS == 1_500_000      # 50 Hz: 1.5 ms
    assert spin_for(1_000_000) == 250_000                     # 1 kHz: a quarter period
    assert Pacer(1_000_000).spin_ns == 250_000 and Pacer(1_000_000, 0).spin_ns == 0
