"""``fsil mc``: Monte Carlo campaigns on Dask (docs/montecarlo.md).

    fsil mc --scenario terminal --runs 200            a LocalCluster, one worker per core
    fsil mc --scenario nominal --scheduler tcp://HOST:8786    an existing Dask cluster
    fsil mc report DIR                                redraw DIR's report (also a partial one)
    fsil mc export DIR --run K [--out FILE]           run K as a plain scenario file

Running the same command again resumes a campaign that was stopped (Ctrl-C, killed): the
finished runs are kept and not run again.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from hil.errors import EXIT_INTERRUPTED, EXIT_NOT_LANDED, ConfigError

CAMPAIGN_DIR = Path(__file__).resolve().parent.parent / "campaigns"
DEFAULT_RUNS = 100
DEFAULT_KEEP = 10


def add_parser(sub) -> None:
    """Register ``fsil mc`` on the CLI's subparsers."""
    p = sub.add_parser(
        "mc", help="Monte Carlo campaign: many dispersed runs on Dask, with a report",
        description="Fly a scenario many times with its [dispersions] drawn per run, on a Dask "
                    "LocalCluster (one worker process per core) or an existing Dask cluster "
                    "(--scheduler), and write runs.parquet, summary.json and report.md. "
                    "Run the same command again to resume a stopped campaign. "
                    "'fsil mc report DIR' redraws a report; 'fsil mc export DIR --run K' writes "
                    "run K as a scenario file. See docs/montecarlo.md.")
    p.add_argument("action", nargs="?", choices=("run", "report", "export"), default="run",
                   help="'run' (default) a campaign, 'report' DIR again, 'export' a run of DIR")
    p.add_argument("dir", nargs="?", type=Path, default=None, metavar="DIR",
                   help="the campaign folder (report, export)")
    p.add_argument("--scenario", default=None,
                   help="shipped campaign or scenario name (hil/campaigns, then hil/scenarios) "
                        "or path to a TOML file with a [dispersions] table")
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                   help=f"number of runs (default: {DEFAULT_RUNS})")
    p.add_argument("--seed", type=int, default=None,
                   help="campaign seed: every run's draws and seed come from it (default: the "
                        "scenario's [run] seed)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None,
                       help="worker processes of the LocalCluster (default: one per core)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="use the Dask cluster at ADDRESS (tcp://HOST:8786; default: "
                            "$DASK_SCHEDULER_ADDRESS, else a LocalCluster)")
    p.add_argument("--out", type=Path, default=None,
                   help="campaign folder (default: campaigns/NAME-seedS); export: the TOML file")
    p.add_argument("--two-process", action="store_true",
                   help="fly each run over the real link (flight software in its own process, "
                        "ZeroMQ ipc) instead of in one process")
    p.add_argument("--fsw", default="default", metavar="SPEC",
                   help="flight software: default, legacy, an installed name, MODULE:CLASS or "
                        "PATH/FILE.py:CLASS (docs/your-fsw.md; default: default); every worker "
                        "must be able to import it")
    p.add_argument("--keep-histories", type=int, default=DEFAULT_KEEP, metavar="N",
                   help=f"keep the histories of N landed runs besides every failed one "
                        f"(default: {DEFAULT_KEEP})")
    p.add_argument("--min-success", type=float, default=None, metavar="P",
                   help="exit 1 unless the success rate is at least P (0..1)")
    p.add_argument("--run", type=int, default=None, metavar="K", help="export: the run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_mc)


def cmd_mc(args: argparse.Namespace) -> int:
    if args.action == "report":
        return _report(args)
    if args.action == "export":
        return _export(args)
    if args.dir is not None:
        raise ConfigError(f"'fsil mc' takes no folder; give it with --out (got {args.dir})")
    return _run(args)


def resolve(name: str):
    """A shipped campaign (hil/campaigns/NAME.toml), else a shipped scenario or a file."""
    from hil.scenario import _is_shipped_name, load_scenario
    shipped = CAMPAIGN_DIR / f"{name}.toml"
    if _is_shipped_name(name) and shipped.is_file():
        return load_scenario(shipped)
    return load_scenario(name)


def list_campaigns() -> list[str]:
    return sorted(p.stem for p in CAMPAIGN_DIR.glob("*.toml"))


def _run(args: argparse.Namespace) -> int:
    from hil.mc.campaign import CampaignError, run_campaign
    from hil.mc.report import finish
    from hil.mc.task import CampaignSpec
    from hil.scenario import scenario_to_dict

    if args.scenario is None:
        raise ConfigError("'fsil mc' needs --scenario NAME|PATH (shipped campaigns: "
                          + ", ".join(list_campaigns()) + ")")
    if args.runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {args.runs}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.keep_histories < 0:
        raise ConfigError(f"--keep-histories must be >= 0, got {args.keep_histories}")
    if args.min_success is not None and not 0.0 <= args.min_success <= 1.0:
        raise ConfigError(f"--min-success must be 0 .. 1, got {args.min_success:g}")
    fsw = _check_fsw(args.fsw)
    cfg = resolve(args.scenario)
    seed = cfg.run.seed if args.seed is None else args.seed
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    spec = CampaignSpec(scenario_to_dict(cfg), seed, fsw, args.two_process)
    check_draws(spec, args.runs, args.scenario)
    out = args.out or Path("campaigns") / f"{cfg.name}-seed{seed}"
    wall0 = time.monotonic()
    from hil.engine.signals import handle_signals
    with handle_signals():   # SIGINT/SIGTERM noted; the loop stops between completions
        state = run_campaign(out, spec, args.runs, keep=args.keep_histories,
                             workers=args.workers, scheduler=args.scheduler,
                             progress=not args.no_progress)
    if state.interrupted:    # no report here: it takes seconds; 'fsil mc report' draws it
        print(f"fsil mc: interrupted by {state.signal or 'SIGINT'}: {state.done} of "
              f"{args.runs} runs kept in {out}; run the same command to resume (report so "
              f"far: fsil mc report {out})", file=sys.stderr)
        return EXIT_INTERRUPTED
    summary = finish(out)
    _print(summary, out, state, time.monotonic() - wall0)
    if args.min_success is not None and summary["success_rate"] < args.min_success:
        print(f"fsil mc: success rate {100 * summary['success_rate']:.2f} % is below "
              f"--min-success {100 * args.min_success:g} %", file=sys.stderr)
        return EXIT_NOT_LANDED
    return 0


def check_draws(spec, runs: int, source: str | None = None) -> None:
    """Every run's drawn values inside their keys' ranges, before any run starts (one line
    naming the run, the key and the value; a truncation bound is the usual fix)."""
    from hil import dispersions
    from hil.errors import ScenarioError
    from hil.mc.task import base_config, draw
    base = base_config(spec)
    if not base.dispersions:
        return
    targets = {t.path: t for path in base.dispersions for t in dispersions.targets(base, path)}
    for run in range(runs):
        for path, value in draw(spec, run).items():
            problem = dispersions.out_of_range(targets[path], value)
            if problem:
                key = next(p for p in base.dispersions
                           if path in {t.path for t in dispersions.targets(base, p)})
                raise ScenarioError(source or base.name, f'dispersions."{key}"',
                                    f'[dispersions] "{key}": run {run} draws {path} = '
                                    f"{value:g}, {problem}; bound the draw (min/max, low/high)")


def _check_fsw(spec: str) -> str:
    """The flight software spec, resolved and imported here (one line, exit 2, if it names
    nothing); returns the spec the workers resolve again (a file's path made absolute)."""
    from fsw.host import registry
    return registry.resolve(spec, load=True).spec


def _print(s: dict, out: Path, state, wall_s: float) -> None:
    iv = s["interval"]
    print(f"campaign {s['campaign']}: {s['runs_done']} of {s['runs_requested']} runs "
          f"({state.new} run now) in {wall_s:.0f} s, {s['link']}, fsw {s['fsw']}")
    print(f"landed {s['landed']}/{s['runs_done']} = {100 * s['success_rate']:.2f} % "
          f"({int(100 * iv['confidence'])} % interval {100 * iv['low']:.2f} .. "
          f"{100 * iv['high']:.2f} %, {iv['method']})")
    if s["failures"]:
        print("not landed: " + ", ".join(f"{k} {v}" for k, v in s["failures"].items()))
    if s.get("cov_fault_runs") is not None:
        print(f"covariance check fired in {s['cov_fault_runs']} runs; mode safe in "
              f"{s['safe_mode_runs']} runs")
    if s.get("climb_m"):
        print(f"largest climb above the start {s['climb_m']['max']:.1f} m; "
              f"{s['climb_m']['runs_over_50m']} runs climbed more than 50 m")
    if s["footprint"]:
        f = s["footprint"]
        print(f"footprint {100 * f['level']:.1f} %: {f['semi_major_m']:.1f} m x "
              f"{f['semi_minor_m']:.1f} m around ({f['centre_m'][0]:.1f}, "
              f"{f['centre_m'][1]:.1f}) m")
    print(f"report: {out / 'report.md'}")


def _report(args: argparse.Namespace) -> int:
    from hil.mc.campaign import Progress
    from hil.mc.report import finish
    if args.dir is None:
        raise ConfigError("'fsil mc report' needs the campaign folder: fsil mc report DIR")
    summary = finish(args.dir)
    _print(summary, args.dir, Progress(summary["runs_requested"]), 0.0)
    return 0


def _export(args: argparse.Namespace) -> int:
    from hil.mc.replay import export
    if args.dir is None or args.run is None:
        raise ConfigError("'fsil mc export' needs the folder and the run: "
                          "fsil mc export DIR --run K")
    path = export(args.dir, args.run, args.out)
    print(f"run {args.run}: {path}\nreplay: fsil run --scenario {path}")
    return 0
