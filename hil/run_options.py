"""What ``fsil run``, ``fsil plant`` and ``fsil hil`` share: their options, loading the
scenario (or a campaign's run) with the command line's overrides, the run folder, and the
printed summary.

(Its own module so that subcommands in other modules -- hil/hil_cmd.py -- use it without
importing the command line back: hil/ has no import cycles.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hil.errors import EXIT_CONFIG, HilError

DEFAULT_SCENARIO = "nominal"


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help="shipped scenario name (see 'fsil scenarios') or path to a TOML file "
                        f"(default: {DEFAULT_SCENARIO})")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed for sensor noise and initial knowledge (default: the scenario's)")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder for summary.json, history.csv and descent.png "
                        "(default: runs/SCENARIO-seedN-TIME)")
    p.add_argument("--force", action="store_true",
                   help="reuse a non-empty --out folder: fsil's files from an earlier run in it "
                        "are removed first (default: refuse it)")
    p.add_argument("--timeout", type=float, default=None,
                   help="longest wait for the peer, s (default: the scenario's link_timeout_s)")
    p.add_argument("--hello-timeout", type=float, default=60.0,
                   help="longest wait for the flight software's handshake, s (default: 60)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plot", action="store_true",
                   help="draw no descent.png / timing.png (scripted runs that do not look at "
                        "them; 'fsil plot RUN' draws them later)")
    p.add_argument("--realtime", action="store_true",
                   help="pace frames on the wall clock at the scenario's rate and measure every "
                        "deadline (see docs/timing.md; default: lockstep)")
    p.add_argument("--rt-priority", type=int, default=None, metavar="PRIO",
                   help="run the plant (and the flight software it starts) at SCHED_FIFO "
                        "priority PRIO, 1..99 (root or CAP_SYS_NICE; see docs/timing.md)")
    p.add_argument("--max-sim-time", type=float, default=None, metavar="S",
                   help="end the run after S s of sim time (default: the scenario's "
                        "max_sim_time_s)")


def _add_fsw_variant(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fsw", default=None, metavar="SPEC",
                   help="the flight software: 'default' (fsil's own, with altimeter fault "
                        "detection, isolation and recovery), 'legacy' (the altimeter logic that "
                        "failed in flight; see docs/scenarios.md), an installed name (entry "
                        "point group fsil.fsw), MODULE:CLASS or PATH/TO/FILE.py:CLASS (see "
                        "docs/your-fsw.md) (default: default)")


def _rt_priority(priority: int | None) -> None:
    """Switch this process to SCHED_FIFO ``priority`` if asked; children inherit it."""
    if priority is None:
        return
    if not 1 <= priority <= 99:
        raise HilErrorConfig(f"--rt-priority must be 1 .. 99, got {priority}")
    from hil.engine.pacing import set_fifo_priority
    try:
        set_fifo_priority(priority)
    except PermissionError as e:
        raise HilErrorConfig(f"--rt-priority: {e}") from None


def _check_load(load_ms: float, flag: str) -> None:
    if not 0.0 <= load_ms <= 10_000.0:
        raise HilErrorConfig(f"{flag} must be 0 .. 10000 ms, got {load_ms:g}")


def _load(args: argparse.Namespace):
    from hil.scenario import load_scenario
    if getattr(args, "campaign", None) is not None or getattr(args, "run", None) is not None:
        return _load_campaign_run(args)
    cfg = load_scenario(args.scenario)
    if not args.hello_timeout > 0:
        raise HilErrorConfig(f"--hello-timeout must be > 0 s, got {args.hello_timeout}")
    if args.timeout is not None:
        if not args.timeout > 0:
            raise HilErrorConfig(f"--timeout must be > 0 s, got {args.timeout}")
        cfg.run.link_timeout_s = args.timeout
    if args.max_sim_time is not None:
        if not 0 < args.max_sim_time <= 1e5:
            raise HilErrorConfig(f"--max-sim-time must be > 0 and <= 1e5 s, "
                                 f"got {args.max_sim_time:g}")
        cfg.run.max_sim_time_s = args.max_sim_time
    seed = cfg.run.seed if args.seed is None else args.seed
    if seed < 0:
        raise HilErrorConfig(f"--seed must be >= 0, got {seed}")
    _rt_priority(getattr(args, "rt_priority", None))  # before any fsw starts: it inherits it
    out = args.out or Path("runs") / f"{cfg.name}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    prepare_run_folder(out, getattr(args, "force", False))
    return cfg, seed, out


# What fsil writes into a run folder: removed from a reused one (--force) so nothing stale
# (an old plot, an old summary) is mistaken for this run's.
RUN_FILES = ("summary.json", "history.csv", "history.parquet", "descent.png", "timing.png",
             "fsw.log", "control.url", "control.sock")


def prepare_run_folder(out: Path, force: bool) -> None:
    """Make ``out`` a usable, empty run folder, or say in one line why it cannot be."""
    if out.exists() and not out.is_dir():
        raise HilErrorConfig(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise HilErrorConfig(f"--out {out}: folder is not empty (an earlier run?); "
                                 "choose another or add --force to reuse it")
        for name in RUN_FILES:
            try:
                (out / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                raise HilErrorConfig(f"--out {out}: cannot remove {name}: "
                                     f"{e.strerror or e}") from None
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".fsil-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise HilErrorConfig(f"--out {out}: cannot write there: {e.strerror or e}") from None


def _load_campaign_run(args: argparse.Namespace):
    """``fsil run --campaign DIR --run K``: run K's scenario and seed; the campaign's fsw."""
    from hil.mc.replay import campaign_run
    if args.campaign is None or args.run is None:
        raise HilErrorConfig("--campaign DIR and --run K go together")
    if args.seed is not None:
        raise HilErrorConfig("--seed cannot be given with --campaign: the run has its own")
    cfg, seed, meta = campaign_run(args.campaign, args.run)
    if args.scenario not in (DEFAULT_SCENARIO, meta["name"], cfg.name):
        raise HilErrorConfig(f"--scenario {args.scenario}: the campaign in {args.campaign} "
                             f"is of {meta['name']}")
    if getattr(args, "fsw", None) is None and getattr(args, "fsw_cmd", None) is None:
        args.fsw = meta["fsw"]
    if args.max_sim_time is not None or args.timeout is not None:
        raise HilErrorConfig("--max-sim-time and --timeout cannot change a campaign run")
    if not args.hello_timeout > 0:
        raise HilErrorConfig(f"--hello-timeout must be > 0 s, got {args.hello_timeout}")
    _rt_priority(getattr(args, "rt_priority", None))
    out = args.out or Path(args.campaign) / "replay" / f"run-{args.run}"
    prepare_run_folder(out, getattr(args, "force", False))
    return cfg, seed, out


def _check_url(url: str, role: str = "plant", allow_remote: bool = False) -> None:
    from bridge.url import parse_url
    if role == "plant" and url.startswith("zmq+tcp://") and not allow_remote:
        from bridge.zmq_link import is_loopback
        host = url[len("zmq+tcp://"):].partition("?")[0].rpartition(":")[0]
        if host and not is_loopback(host):
            raise HilErrorConfig(f"--link {url}: binding {host} would let any machine that "
                                 "reaches it drive the plant; pass --allow-remote (the link "
                                 "then needs CURVE keys: 'fsil keys DIR', ?keys=DIR)")
    parse_url(url, role)


def _print_summary(result) -> None:
    s = result.summary
    td = s.get("touchdown") or {}
    print(f"outcome: {s['outcome']} -- {s['reason']}")
    if td:
        print(f"  touchdown: vertical {td['vertical_speed_mps']:.2f} m/s, horizontal "
              f"{td['horizontal_speed_mps']:.2f} m/s, tilt {td['tilt_deg']:.2f} deg, "
              f"rate {td['angular_rate_dps']:.2f} deg/s, {td['distance_to_target_m']:.0f} m from target")
    print(f"  propellant: used {s['propellant_used_kg']:.1f} kg, left {s['propellant_left_kg']:.1f} kg")
    print(f"  sim {s['sim_time_s']:.1f} s in {s['wall_time_s']:.1f} s wall, {s['cycles']} cycles, "
          f"link {s['link'] or 'none (in process)'}, fsw {s.get('fsw_runtime')}")
    if s.get("timing"):
        from hil.timing import format_report
        print("\n".join(format_report(s["timing"])))
    print(f"  run folder: {result.out_dir}")
    hint = ""     # a run cut short may end without its plots (hil.engine.summary)
    files = s.get("files") or {}
    missing = not files.get("plot") or (
        (s.get("timing") or {}).get("mode") == "realtime" and not files.get("timing_plot"))
    if result.out_dir is not None and missing and files.get("history"):
        hint = f"; plot it with: fsil plot {result.out_dir}"
    if s["outcome"] in ("link_failure", "interrupted", "history_failure"):
        print(f"fsil: {s['reason']}{hint}", file=sys.stderr)
    elif s["outcome"] != "landed":
        print(f"fsil: not landed: {s['outcome']}: {s['reason']}{hint}", file=sys.stderr)


class HilErrorConfig(HilError):
    exit_code = EXIT_CONFIG




def _add_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("--history", choices=("csv", "parquet"), default="csv",
                   help="history file format: csv (history.csv) or parquet (history.parquet) "
                        "(default: csv; columns in docs/history.md)")
