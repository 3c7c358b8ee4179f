"""fsil mc: campaigns on a real Dask cluster (LocalCluster worker processes, and a scheduler and
a worker started with Dask's own command line), replay, resume, results and report.

One short dispersed scenario (a hover-to-touchdown from ~10 m: a few seconds of sim per run)
whose draws give landed, crashed (a dispersed touchdown criterion) and error runs (a dispersed
physics rate that does not divide a second).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hil.mc import stats
from hil.mc.campaign import close_client, open_client, read_journal, run_campaign
from hil.mc.cli import resolve
from hil.mc.report import finish, write_parquet
from hil.mc.task import CampaignSpec, run_config, run_one
from hil.scenario import load_scenario, scenario_to_dict

ROOT = Path(__file__).resolve().parent.parent
RUNS = 6
SEED = 5
SCENARIO = """\
base = "terminal"
name = "short"
[initial]
altitude_m = 10.0
downrange_m = 0.0
horizontal_speed_mps = 0.0
vertical_speed_mps = -1.0
pitch_deg = 0.0
[terrain]
craters = []
[gear]
enabled = false          # judged at first contact by [touchdown], whose criterion is dispersed
[run]
max_sim_time_s = 60.0
[dispersions]
"initial.altitude_m" = { dist = "uniform", low = 6.0, high = 12.0 }
"initial.vertical_speed_mps" = { dist = "normal", sigma = 1.0, min = -3.0, max = 1.0 }
"touchdown.max_vertical_speed_mps" = { dist = "choice", values = [2.0, 0.5], weights = [2, 1] }
"rates.physics_hz" = { dist = "choice", values = [200.0, 300.0], weights = [5, 1] }
"""
VARYING = ["wall_time_s", "worker"]   # the only columns that may differ between two campaigns


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mc") / "short.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def spec(scenario_file: Path) -> CampaignSpec:
    return CampaignSpec(scenario_to_dict(resolve(str(scenario_file))), SEED)


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of two worker processes for the module: (client, its address)."""
    client, local = open_client(2, None)
    try:
        yield client, local.scheduler_address
    finally:
        close_client(client, local)


@pytest.fixture(scope="module")
def local_campaign(cluster, spec: CampaignSpec, tmp_path_factory):
    """A campaign on the LocalCluster; one worker is killed (SIGKILL) as soon as the first
    run is in: its runs must be retried."""
    client, _ = cluster
    out = tmp_path_factory.mktemp("mc") / "local"
    pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_one(row: dict) -> None:
        if not killed:
            victim = next(iter(pids.values()))
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    state = run_campaign(out, spec, RUNS, keep=1, client=client, progress=False,
                         on_row=kill_one)
    deadline = time.monotonic() + 60
    while len(client.nthreads()) < 2 and time.monotonic() < deadline:  # the nanny restarts it
        time.sleep(0.1)
    after = client.run(os.getpid)
    summary = finish(out)
    return {"out": out, "state": state, "pids": pids, "killed": killed, "after": after,
            "summary": summary, "rows": pd.read_parquet(out / "runs.parquet")}


def same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns=VARYING).reset_index(drop=True),
                                  b.drop(columns=VARYING).reset_index(drop=True))


# ---------------------------------------------------------------- a campaign


def test_campaign_on_a_local_cluster_keeps_every_run_through_a_killed_worker(local_campaign):
    c = local_campaign
    rows = c["rows"]
    assert c["killed"] and set(c["after"].values()) != set(c["pids"].values())  # one was lost
    assert not c["state"].interrupted and c["state"].new == RUNS
    assert rows["run"].tolist() == list(range(RUNS))
    journal = [r["run"] for r in read_journal(c["out"])]
    assert sorted(journal) == list(range(RUNS))              # each run once
    assert set(rows["outcome"]) == {"landed", "crashed", "error"}, rows["outcome"].tolist()
    workers = {w.rsplit(":", 1)[1] for w in rows["worker"]}
    assert workers <= {str(p) for p in list(c["pids"].values()) + list(c["after"].values())}


def test_rows_hold_the_draws_and_the_outcome_against_the_runs_own_criteria(local_campaign):
    rows = local_campaign["rows"]
    for row in rows.to_dict("records"):
        assert row["seed"] > 0
        if row["outcome"] == "error":      # a physics rate that does not divide a second
            assert row["rates.physics_hz"] == 300.0
            assert "physics_hz" in row["reason"] and "ScenarioError" in row["error"]
            continue
        assert row["rates.physics_hz"] == 200.0
        limit = row["touchdown.max_vertical_speed_mps"]
        assert (row["outcome"] == "landed") == (row["vertical_speed_mps"] <= limit)
        assert row["distance_m"] == pytest.approx(np.hypot(row["downrange_m"],
                                                           row["crossrange_m"]))
        assert 6.0 <= row["initial.altitude_m"] <= 12.0
        assert row["sim_time_s"] > 0 and row["propellant_left_kg"] > 0
        assert row["nav_alt_err_m"] is not None and abs(row["nav_alt_err_m"]) < 5.0


def test_histories_of_failed_and_chosen_runs_are_kept(local_campaign) -> None:
    rows, out = local_campaign["rows"], local_campaign["out"]
    for row in rows.to_dict("records"):
        flew = row["outcome"] != "error"
        keep = row["outcome"] == "crashed" or row["run"] == 0         # keep=1: run 0
        assert isinstance(row["history"], str) == (keep and flew), row
        if isinstance(row["history"], str):
            history = pd.read_parquet(out / row["history"])
            assert len(history) == row["cycles"]
            # The flag columns count the history's own cycles (issue 11: "the covariance
            # check never fires in any campaign" is read from the rows).
            assert row["cov_fault_cycles"] == int((history["cmd_flags"] & 64 != 0).sum())
            assert row["safe_cycles"] == int((history["mode"] == "safe").sum())
            radius = (history["true_x_m"] ** 2 + history["true_y_m"] ** 2
                      + history["true_z_m"] ** 2) ** 0.5
            assert row["climb_m"] == pytest.approx(radius.max() - radius.iloc[0], abs=1e-6)
            assert history["t_s"].is_monotonic_increasing
            assert history["true_alt_m"].iloc[0] > history["true_alt_m"].iloc[-1]


def test_summary_and_report(local_campaign) -> None:
    s, rows, out = local_campaign["summary"], local_campaign["rows"], local_campaign["out"]
    landed = int((rows["outcome"] == "landed").sum())
    assert (s["runs_done"], s["landed"], s["complete"]) == (RUNS, landed, True)
    flown = rows["outcome"] != "error"
    assert (rows.loc[flown, "cov_fault_cycles"] == 0).all() and s["cov_fault_runs"] == 0
    assert s["climb_m"]["max"] == pytest.approx(rows.loc[flown, "climb_m"].max())
    assert s["climb_m"]["runs_over_50m"] == int((rows.loc[flown, "climb_m"] > 50).sum())
    assert s["success_rate"] == landed / RUNS
    assert s["interval"]["low"] < s["success_rate"] < s["interval"]["high"]
    assert s["failures"]["error"] == int((rows["outcome"] == "error").sum())
    assert any(k.startswith("crashed: vertical speed") for k in s["failures"])
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(s))
    report = (out / "report.md").read_text()
    for png in ("footprint.png", "touchdown.png", "failures.png"):
        assert f"]({png})" in report and (out / png).stat().st_size > 10_000
    worst = rows[rows["outcome"] != "landed"]["run"].tolist()
    for run in worst:
        assert f"fsil run --campaign {out} --run {run}`" in report


# ---------------------------------------------------------------- Dask's own command line


def test_a_dask_cli_cluster_with_one_worker_gives_identical_rows(local_campaign, spec,
                                                                 tmp_path: Path) -> None:
    dask = Path(sys.executable).parent / "dask"
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--dashboard-address", "127.0.0.1:0",
                               "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen([str(dask), "worker", "--scheduler-file", str(sched_file),
                                       "--nworkers", "1", "--nthreads", "1", "--host",
                                       "127.0.0.1", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while not (sched_file.exists() and sched_file.stat().st_size):
            assert time.monotonic() < deadline, "dask scheduler wrote no scheduler file"
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        out = tmp_path / "cli-cluster"
        state = run_campaign(out, spec, RUNS, keep=1, scheduler=address, progress=False)
        assert state.new == RUNS
        finish(out)
        rows = pd.read_parquet(out / "runs.parquet")
        assert len({w for w in rows["worker"]}) == 1
        same_rows(rows, local_campaign["rows"])
        from hil.compare import compare
        png, lines = compare(local_campaign["out"], out, tmp_path / "cmp.png", ("two", "one"))
        assert png.stat().st_size > 10_000
        assert "success rate B - A: +0.00 points (Fisher's exact test p = 1)" in lines
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ---------------------------------------------------------------- replay


def test_fsil_run_replays_a_campaign_run_bit_for_bit(local_campaign, tmp_path: Path) -> None:
    rows, out = local_campaign["rows"], local_campaign["out"]
    row = rows[rows["outcome"] == "crashed"].iloc[0]
    replay = tmp_path / "replay"
    proc = subprocess.run([sys.executable, "-m", "hil.cli", "run", "--campaign", str(out),
                           "--run", str(row["run"]), "--out", str(replay), "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stderr                    # crashed, as in the campaign
    s = json.loads((replay / "summary.json").read_text())
    assert s["seed"] == row["seed"] and s["outcome"] == row["outcome"]
    for key in ("vertical_speed_mps", "horizontal_speed_mps", "tilt_deg"):
        assert s["touchdown"][key] == row[key], key               # bit for bit
    assert s["propellant_left_kg"] == row["propellant_left_kg"]
    assert s["sim_time_s"] == row["sim_time_s"]


def test_an_exported_run_is_the_same_scenario(local_campaign, spec, tmp_path: Path) -> None:
    from hil.mc.replay import export
    path = export(local_campaign["out"], 0, tmp_path / "run0.toml")
    cfg, seed, _ = run_config(spec, 0)
    exported = load_scenario(str(path))
    assert exported.run.seed == seed
    assert scenario_to_dict(exported) | {"name": "", "description": ""} == \
        scenario_to_dict(cfg) | {"name": "", "description": ""}


# ---------------------------------------------------------------- errors and resume


def test_a_run_that_raises_gives_an_error_row(spec) -> None:
    bad = CampaignSpec(spec.scenario, SEED, fsw="no-such-software")
    row, history = run_one(bad, 0, keep_history=True)
    assert row["outcome"] == "error" and history is None
    assert "no-such-software" in row["reason"] and "Traceback" in row["error"]
    assert row["initial.altitude_m"] is not None                # the draws are still there


def test_a_killed_then_interrupted_campaign_resumes_without_redoing_runs(
        cluster, local_campaign, scenario_file: Path, spec, tmp_path: Path) -> None:
    client, address = cluster
    out = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "hil.cli", "mc", "--scenario", str(scenario_file), "--runs",
           str(RUNS), "--seed", str(SEED), "--scheduler", address, "--out", str(out),
           "--keep-histories", "1", "--no-progress"]

    def start_and_stop(sig: int, rows_before: int) -> subprocess.CompletedProcess:
        # The child starts with SIGINT at its default, as from a terminal: exec resets a
        # handled signal to the default but keeps an ignored one (this process may have been
        # started with SIGINT ignored, as a background job of a non-interactive shell).
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True)
        finally:
            signal.signal(signal.SIGINT, previous)
        deadline = time.monotonic() + 180
        while len(list(read_journal(out))) <= rows_before:
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(p.pid, sig)
        stdout, stderr = p.communicate(timeout=120)
        return subprocess.CompletedProcess(cmd, p.returncode, stdout, stderr)

    killed = start_and_stop(signal.SIGKILL, 0)
    assert killed.returncode == -signal.SIGKILL
    first = len(list(read_journal(out)))
    stopped = start_and_stop(signal.SIGINT, first)              # Ctrl-C
    assert stopped.returncode == 130, stopped.stderr
    assert stopped.stderr.startswith("fsil mc: interrupted by SIGINT: ")
    assert "run the same command to resume" in stopped.stderr
    assert len(stopped.stderr.splitlines()) == 1, stopped.stderr      # one line, no traceback
    kept = len(list(read_journal(out)))
    assert first < kept < RUNS
    with (out / "runs.jsonl").open("a") as f:                   # a writer killed mid-line
        f.write('{"run": 99, "outc')
    state = run_campaign(out, spec, RUNS, keep=1, client=client, progress=False)
    assert state.new == RUNS - kept
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["run"] for line in lines) == list(range(RUNS))
    write_parquet(out)
    same_rows(pd.read_parquet(out / "runs.parquet"), local_campaign["rows"])


def test_another_campaign_in_the_same_folder_is_refused(local_campaign, spec) -> None:
    from hil.mc.campaign import CampaignError, prepare
    other = CampaignSpec(spec.scenario, SEED + 1)
    with pytest.raises(CampaignError, match="holds another campaign \\(seed differs\\)"):
        prepare(local_campaign["out"], other, RUNS, 1)
    with pytest.raises(CampaignError, match="would leave some out"):
        prepare(local_campaign["out"], spec, RUNS - 1, 1)


# ---------------------------------------------------------------- statistics


def test_intervals_and_runs_needed_against_closed_forms() -> None:
    # No failure in n runs: the Clopper-Pearson bounds have closed forms.
    n, c = 50, 0.95
    lo, hi = stats.success_interval(n, n, c)
    assert hi == 1.0 and lo == pytest.approx(((1 - c) / 2) ** (1 / n), rel=1e-9)
    assert stats.demonstrated(n, n, c) == pytest.approx((1 - c) ** (1 / n), rel=1e-9)
    assert stats.runs_needed(0.99, 0.95) == 299                  # the success-run rule
    n_needed = stats.runs_needed(0.99, 0.95, failure_rate=0.002)
    assert stats.demonstrated(n_needed - round(0.002 * n_needed), n_needed) >= 0.99
    assert stats.runs_needed(0.99, 0.95, failure_rate=0.02) is None


def test_footprint_ellipse_holds_its_share_of_normal_points() -> None:
    rng = np.random.default_rng(5)
    pts = rng.multivariate_normal([3.0, -2.0], [[400.0, 120.0], [120.0, 100.0]], 4000)
    e = stats.ellipse(pts[:, 0], pts[:, 1], 0.9)
    a, b, t = e["semi_major_m"], e["semi_minor_m"], np.radians(e["angle_deg"])
    d = pts - e["centre_m"]
    u = d[:, 0] * np.cos(t) + d[:, 1] * np.sin(t)
    v = -d[:, 0] * np.sin(t) + d[:, 1] * np.cos(t)
    inside = np.mean((u / a) ** 2 + (v / b) ** 2 <= 1.0)
    assert abs(inside - 0.9) < 4 * np.sqrt(0.9 * 0.1 / 4000)


# ---------------------------------------------------------------- shipped campaigns


@pytest.mark.parametrize("name", ["nominal", "terminal", "m1-crater-rim", "m2-late-lrf",
                                  "im1-no-lrf"])
def test_shipped_campaigns_load_and_draw_in_range(name: str) -> None:
    from hil.mc.cli import check_draws, list_campaigns
    assert name in list_campaigns()
    cfg = resolve(name)
    assert cfg.base == name and len(cfg.dispersions) >= 10
    assert cfg.knowledge.vehicle.max_thrust_n is None          # told the truth's nominal
    check_draws(CampaignSpec(scenario_to_dict(cfg), 1), 200)
    run_cfg, _, draws = run_config(CampaignSpec(scenario_to_dict(cfg), 1), 0)
    assert run_cfg.vehicle.max_thrust_n == draws["vehicle.max_thrust_n"]
    assert run_cfg.knowledge.vehicle.max_thrust_n == cfg.vehicle.max_thrust_n


def test_a_draw_out_of_its_keys_range_stops_the_campaign_before_it_starts(tmp_path) -> None:
    from hil.errors import ScenarioError
    from hil.mc.cli import check_draws
    path = tmp_path / "wide.toml"
    path.write_text('base = "terminal"\n[dispersions]\n'
                    '"vehicle.min_throttle" = { dist = "normal", sigma = 0.5 }\n')
    with pytest.raises(ScenarioError) as info:
        check_draws(CampaignSpec(scenario_to_dict(resolve(str(path))), 1), 100)
    message = str(info.value)
    assert '[dispersions] "vehicle.min_throttle": run ' in message
    assert "out of range (0 .. 1)" in message and "bound the draw" in message


def test_two_process_runs_give_the_in_process_rows(cluster, local_campaign, spec,
                                                   tmp_path: Path) -> None:
    client, _ = cluster
    linked = CampaignSpec(spec.scenario, SEED, two_process=True)
    out = tmp_path / "linked"
    state = run_campaign(out, linked, 2, keep=0, client=client, progress=False)
    assert state.new == 2
    write_parquet(out)
    rows = pd.read_parquet(out / "runs.parquet")
    same_rows(rows.drop(columns=["history"]),
              local_campaign["rows"].iloc[:2].drop(columns=["history"]))


def test_failures_are_grouped_by_the_gears_verdict_or_the_criteria_exceeded() -> None:
    limits = {"max_vertical_speed_mps": 2.0, "max_horizontal_speed_mps": 0.5,
              "max_tilt_deg": 5.0, "max_angular_rate_dps": 2.0}
    crash = {"outcome": "crashed", "vertical_speed_mps": 3.0, "horizontal_speed_mps": 0.9,
             "tilt_deg": 1.0, "angular_rate_dps": 0.1}
    assert stats.failure_kind({**crash, "reason": "vertical speed 3.00 m/s > 2 m/s (by 1.00); "
                                                 "horizontal speed ..."}, limits) == \
        "crashed: vertical speed + horizontal speed"
    assert stats.failure_kind({**crash, "reason": "gear overload: leg 2 load 7000 N > 5000 N"},
                              limits) == "crashed: gear overload"
    assert stats.failure_kind({**crash, "reason": "at rest tilted 17.0 deg > 15 deg"},
                              limits) == "crashed: at rest tilted"
    assert stats.failure_kind({"outcome": "tipped_over", "reason": "tipped over: ..."},
                              limits) == "tipped_over"
    assert stats.failure_kind({"outcome": "landed"}, limits) is None
