"""The ``fsil`` command line: run a landing, start either side alone, list scenarios.

Exit codes: 0 landed; 1 run completed but not landed; 2 bad arguments or configuration;
3 link failure; 130 interrupted (SIGINT, SIGTERM). Every non-zero exit prints a one-line
reason.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hil.errors import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_LINK, HilError
from hil.run_options import (DEFAULT_SCENARIO, RUN_FILES, HilErrorConfig,  # noqa: F401
                             _add_common, _add_fsw_variant, _add_history, _check_load,
                             _check_url, _load, _print_summary, _rt_priority,
                             prepare_run_folder)

def _resolve_fsw(spec: str):
    """The registry entry for ``--fsw SPEC``, imported now: a bad spec is exit 2 at once."""
    from fsw.host.registry import resolve
    return resolve(spec, load=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fsil",
        description="Flight software in the loop: land a lunar lander with the flight software "
                    "and the physics plant as two processes over ZeroMQ.")
    parser.add_argument("--version", action="version", version=version_line())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="run a landing: plant and flight software as two processes",
                       description="Start the plant (this process) and the flight software (a "
                                   "child process) over ZeroMQ, in lockstep; show progress; "
                                   "write the run folder; print a summary.")
    _add_common(p)
    p.add_argument("--link", default=None,
                   help="zmq+ipc://PATH, zmq+tcp://127.0.0.1:PORT or unix://PATH (default: "
                        "zmq+ipc in a fresh temporary folder)")
    p.add_argument("--fsw-load-ms", type=float, default=0.0, metavar="MS",
                   help="the flight software busy-waits MS ms per cycle inside its measured "
                        "compute time (load injection; default 0)")
    _add_fsw_variant(p)
    p.add_argument("--fsw-cmd", default=None, metavar="'PROGRAM ARGS {link}'",
                   help="run your own flight software program instead (any language): "
                        "{link} is replaced by the link URL, also in the environment as "
                        "FSIL_LINK; its output goes to RUN/fsw.log (see docs/your-fsw.md)")
    _add_allow_remote(p)
    p.add_argument("--campaign", type=Path, default=None, metavar="DIR",
                   help="replay a run of the campaign in DIR (with --run K): its drawn scenario "
                        "and seed, bit for bit (see docs/montecarlo.md)")
    p.add_argument("--run", type=int, default=None, metavar="K", help="the campaign run to replay")
    p.add_argument("--inprocess", action="store_true",
                   help="run the flight software in this process, without a link: faster, "
                        "and the same history as over two processes (no --link, --realtime, "
                        "--fsw-cmd or --fsw-load-ms)")
    _add_history(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("plant", help="start the plant alone and serve a flight software on --link",
                       description="Run the plant side of a landing; the flight software is "
                                   "started separately (e.g. 'fsil fsw --link URL' in another "
                                   "terminal).")
    _add_common(p)
    p.add_argument("--link", required=True,
                   help="zmq+ipc://PATH, zmq+tcp://HOST:PORT, unix://PATH")
    _add_allow_remote(p)
    _add_history(p)
    p.set_defaults(func=cmd_plant)

    p = sub.add_parser("fsw", help="start the flight software alone and connect to a plant on --link",
                       description="Run the flight software (host runner) against a plant "
                                   "serving on --link, until the plant ends the run.")
    p.add_argument("--link", required=True,
                   help="zmq+ipc://PATH, zmq+tcp://HOST:PORT, unix://PATH")
    _add_fsw_variant(p)
    p.add_argument("--timeout", type=float, default=10.0,
                   help="longest wait for the next frame, s (default: 10; the plant's first "
                        "HELLO is awaited up to 60 s)")
    p.add_argument("--quiet", action="store_true", help="print nothing when the run ends well")
    p.add_argument("--rt-priority", type=int, default=None, metavar="PRIO",
                   help="run at SCHED_FIFO priority PRIO, 1..99 (root or CAP_SYS_NICE)")
    p.add_argument("--load-ms", type=float, default=0.0, metavar="MS",
                   help="busy-wait MS ms per cycle inside the measured compute time (load "
                        "injection; default 0)")
    p.set_defaults(func=cmd_fsw)

    p = sub.add_parser("bench", help="benchmarks: 'fsil bench timing', 'fsil bench lockstep', "
                       "'fsil bench mc'",
                       description="Benchmarks of the harness itself.")
    bench = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    from hil.bench_timing import add_arguments as add_bench_timing
    add_bench_timing(bench.add_parser(
        "timing", help="wake-up latency of the real-time pacer beside cyclictest's",
        description="Run the plant's real-time pacer and cyclictest (rt-tests) side by side "
                    "at each rate and print their wake-up latency percentiles and the ratio "
                    "of the p99s."))
    from hil.bench_lockstep import add_arguments as add_bench_lockstep
    add_bench_lockstep(bench.add_parser(
        "lockstep", help="lockstep cycle cost over two processes and in one, beside a bare "
                         "ZeroMQ round trip and Basilisk's spacecraft step",
        description="In one invocation: the descent over two processes and in process, a bare "
                    "pyzmq round trip with frame- and command-shaped payloads, the plant alone "
                    "and Basilisk's spacecraft + IMU step (if bsk is installed); prints "
                    "real-time factors, the per-cycle split, the ratios and their targets, "
                    "and every process's peak memory."))
    from hil.mc.bench import add_arguments as add_bench_mc
    add_bench_mc(bench.add_parser(
        "mc", help="campaign runs per minute on 1 and 2 Dask workers beside a serial loop",
        description="Fly the same campaign runs in a plain loop in this process, then on a "
                    "LocalCluster of one worker and of two, and print runs per minute and "
                    "the ratios (targets: 2 workers >= 1.7 x 1 worker; 1 worker within 10 % "
                    "of the loop)."))

    p = sub.add_parser("compare", help="plot two runs (or two campaigns) together and print "
                                       "their differences",
                       description="Plot two run folders against sim time (true and estimated "
                                   "altitude, descent rate, altimeter validity, mode) into one "
                                   "PNG and print the key differences. Two campaign folders "
                                   "(fsil mc) are compared as campaigns: success rates with "
                                   "their intervals, footprints, touchdown figures.")
    p.add_argument("run_a", metavar="RUN_A", help="run folder (holds history.csv, summary.json) "
                                                  "or campaign folder")
    p.add_argument("run_b", metavar="RUN_B", help="run or campaign folder to compare with")
    p.add_argument("--out", type=Path, default=None,
                   help="PNG path, or a folder for the default name "
                        "(default: RUN_A/compare-<RUN_B folder name>.png)")
    p.add_argument("--labels", nargs=2, metavar=("A", "B"), default=None,
                   help="names for the runs in the plot and text (default: folder names)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("inject", help="command a sensor fault in a running plant",
                       description="Send one sensor-fault request to the plant running in "
                                   "RUN_DIR (through RUN_DIR/control.url); it takes effect at "
                                   "the plant's next step and shows in history.csv (column "
                                   "'faults') and summary.json. See docs/faults.md.")
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path,
                   help="run folder of a running 'fsil run' or 'fsil plant' (its --out)")
    from plant.faults import KINDS
    p.add_argument("sensor", metavar="SENSOR", choices=tuple(KINDS),
                   help=", ".join(KINDS))
    p.add_argument("kind", metavar="KIND",
                   help="; ".join(f"{s}: {', '.join(k)}" for s, k in KINDS.items())
                        + "; with --clear also 'all'")
    p.add_argument("--value", type=float, metavar="V",
                   help="size; unit per kind: m, fraction, probability, s, m/s^2, rad/s "
                        "or arcsec (star tracker)")
    p.add_argument("--magnitude", type=float, metavar="M", help="spike size, m")
    p.add_argument("--axis", type=int, metavar="N", help="IMU axis 0, 1, 2 or -1 (default: all); star tracker bias: "
                        "0, 1 across the boresight, 2 about it (default 0)")
    p.add_argument("--channel", choices=("accel", "gyro", "velocity", "range"),
                   help="IMU channel (accel, gyro) or velocimeter channel (velocity, range)")
    p.add_argument("--beam", type=int, metavar="N",
                   help="velocimeter beam 0, 1, 2 or -1 (default: all)")
    p.add_argument("--until", type=float, metavar="S",
                   help="sim time at which the fault ends, s (default: permanent)")
    p.add_argument("--name", default=None, help="a label for the summary")
    p.add_argument("--clear", action="store_true",
                   help="end the armed or active SENSOR KIND fault(s) instead")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="longest wait for the plant's answer, s (default: 5)")
    p.set_defaults(func=cmd_inject)

    from hil.hil_cmd import add_parser as add_hil_parser
    add_hil_parser(sub, _add_common)
    from hil.keys_cmd import add_parser as add_keys_parser
    add_keys_parser(sub)
    from hil.mc.cli import add_parser as add_mc_parser
    add_mc_parser(sub)
    from hil.plot_cmd import add_parser as add_plot_parser
    add_plot_parser(sub)

    p = sub.add_parser("scenarios", help="list the shipped scenarios",
                       description="List the scenarios shipped with fsil, with their descriptions.")
    p.set_defaults(func=cmd_scenarios)
    return parser


# --- commands ---------------------------------------------------------------------------
def cmd_scenarios(args: argparse.Namespace) -> int:
    from hil.scenario import list_scenarios
    for name, desc in list_scenarios():
        print(f"{name:16s} {desc}")
    return 0


def cmd_inject(args: argparse.Namespace) -> int:
    from hil.control import Rejected, send_request
    from hil.errors import ScenarioError
    from hil.scenario import fault_from_dict
    if not args.timeout > 0:
        raise HilErrorConfig(f"--timeout must be > 0 s, got {args.timeout}")
    options = {"value": args.value, "magnitude": args.magnitude, "axis": args.axis,
               "channel": args.channel, "beam": args.beam, "until_time_s": args.until}
    given = {k: v for k, v in options.items() if v is not None}
    request: dict = {"sensor": args.sensor}
    if args.clear:
        if given:
            flags = ", ".join("--" + ("until" if k == "until_time_s" else k) for k in given)
            raise HilErrorConfig(f"--clear takes no {flags}")
        if args.kind != "all":
            request["kind"] = args.kind
        request["clear"] = True
    else:
        request.update(kind=args.kind, **given)
    if args.name:
        request["name"] = args.name
    if not args.clear:
        try:  # the plant checks again; this catches a bad request without one
            fault_from_dict(request, "fsil inject")
        except ScenarioError as e:
            raise HilErrorConfig(e.reason) from None
    reply = send_request(args.run_dir, request, args.timeout)
    if not reply.get("ok"):
        raise Rejected(f"the plant rejected the request: {reply.get('error')}")
    if reply.get("action") == "clear":
        labels = ", ".join(f"{c['sensor']}:{c['kind']}" for c in reply.get("cleared", []))
        print(f"fsil inject: cleared {labels} at t = {reply['t_s']:.3f} s "
              f"(frames from seq {reply['seq']} on)")
    elif reply.get("fired"):
        print(f"fsil inject: {reply['label']} in effect from t = {reply['t_s']:.3f} s "
              f"(frame seq {reply['seq']})")
    else:
        print(f"fsil inject: {reply['label']} armed at t = {reply['armed_t_s']:.3f} s; it fires "
              f"when its trigger holds")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from hil.compare import compare
    png, lines = compare(args.run_a, args.run_b, args.out,
                         tuple(args.labels) if args.labels else None)
    print("\n".join(lines))
    print(f"plot: {png}")
    return 0


def cmd_fsw(args: argparse.Namespace) -> int:
    from fsw.host.runner import main_fsw
    _check_url(args.link, "fsw")
    _check_load(args.load_ms, "--load-ms")
    _rt_priority(args.rt_priority)
    return main_fsw(args.link, args.timeout, quiet=args.quiet, load_ms=args.load_ms,
                    fsw=args.fsw or "default")


def version_line() -> str:
    """'fsil 0.1.0 (protocol 2)', with the git commit when run from a checkout."""
    from bridge.protocol import PROTOCOL_VERSION
    info = build_info()
    commit = f", commit {info['git_commit']}" if info.get("git_commit") else ""
    return f"fsil {info['version']} (protocol {PROTOCOL_VERSION}{commit})"


def build_info() -> dict:
    """The fsil version and, from a git checkout, the commit (for summary.json and --version)."""
    from importlib import metadata
    try:
        version = metadata.version("fsil")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = None
    root = Path(__file__).resolve().parent.parent
    if (root / ".git").exists():
        try:
            done = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                                  capture_output=True, text=True, timeout=5)
            if done.returncode == 0:
                commit = done.stdout.strip()
                dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                        "--untracked-files=no"],
                                       capture_output=True, text=True, timeout=5)
                if dirty.returncode == 0 and dirty.stdout.strip():
                    commit += "+dirty"
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"version": version, "git_commit": commit}


def _add_allow_remote(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-remote", action="store_true",
                   help="let the plant bind a TCP address other than loopback (the link then "
                        "needs CURVE keys: 'fsil keys DIR', then --link "
                        "'zmq+tcp://0.0.0.0:PORT?keys=DIR')")


def cmd_plant(args: argparse.Namespace) -> int:
    from hil.engine import PlantSide
    _check_url(args.link, allow_remote=args.allow_remote)
    if args.link.startswith("loop://"):
        raise HilErrorConfig(f"--link {args.link}: a loop:// link exists only inside one "
                             "process, so no flight software could join this plant; use "
                             "zmq+ipc://, zmq+tcp:// or serial://")
    cfg, seed, out = _load(args)
    from hil.engine.signals import handle_signals
    with handle_signals():
        result = PlantSide(cfg, args.link, out, seed, progress=not args.no_progress,
                           hello_timeout_s=args.hello_timeout, realtime=args.realtime,
                           history=args.history, build=getattr(args, "build", None),
                           plots=not args.no_plot).run()
    _print_summary(result)
    return result.exit_code


def cmd_run(args: argparse.Namespace) -> int:
    from hil.engine import PlantSide
    from hil.fsw_process import LOG_NAME, FswLauncher, own_fsw_argv, parse_fsw_cmd
    from hil.link_dir import make_link_dir
    if args.inprocess:
        return _run_inprocess(args)
    if args.fsw_cmd is not None:
        given = [flag for flag, on in (("--fsw", args.fsw is not None),
                                       ("--fsw-load-ms", args.fsw_load_ms > 0)) if on]
        if given:
            raise HilErrorConfig(f"--fsw-cmd runs your own program; it takes no "
                                 f"{', '.join(given)}")
        fsw_argv = parse_fsw_cmd(args.fsw_cmd)
    else:
        fsw_entry = _resolve_fsw(args.fsw or "default")
    cfg, seed, out = _load(args)
    _check_load(args.fsw_load_ms, "--fsw-load-ms")
    if args.fsw_cmd is None:
        fsw_argv = own_fsw_argv(fsw_entry.spec, cfg.run.link_timeout_s + 5.0, args.fsw_load_ms)
    if args.link is not None:
        _check_url(args.link, allow_remote=args.allow_remote)
    from hil.engine.signals import handle_signals
    with handle_signals():   # SIGINT/SIGTERM: the run ends in order, then this clean-up
        tmp = None
        url = args.link
        if url is None:   # removed by the plant once the link is closed (PlantSide.link_dir)
            tmp = make_link_dir()
            url = f"zmq+ipc://{tmp}/link.sock"
        launcher = FswLauncher(fsw_argv, out / LOG_NAME, link_dir=tmp, run_dir=out)
        try:
            result = PlantSide(cfg, url, out, seed, fsw_launcher=launcher,
                               progress=not args.no_progress,
                               hello_timeout_s=args.hello_timeout, realtime=args.realtime,
                               history=args.history, build=getattr(args, "build", None),
                               link_dir=tmp, plots=not args.no_plot).run()
        finally:
            launcher.stop()
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
    _print_summary(result)
    return result.exit_code


def _run_inprocess(args: argparse.Namespace) -> int:
    """``fsil run --inprocess``: the flight software called in this process, no link."""
    given = [flag for flag, on in (("--link", args.link is not None),
                                   ("--realtime", args.realtime),
                                   ("--fsw-cmd", args.fsw_cmd is not None),
                                   ("--fsw-load-ms", args.fsw_load_ms > 0),
                                   ("--allow-remote", args.allow_remote)) if on]
    if given:
        raise HilErrorConfig(f"--inprocess runs without a link; it takes no {', '.join(given)}")
    from hil.engine import run_inprocess
    from hil.engine.signals import handle_signals
    entry = _resolve_fsw(args.fsw or "default")
    cfg, seed, out = _load(args)
    with handle_signals():
        result = run_inprocess(cfg, seed, fsw=entry, out_dir=out, history=args.history,
                               progress=not args.no_progress, control=True,
                               build=getattr(args, "build", None), plots=not args.no_plot)
    _print_summary(result)
    return result.exit_code


def run_build(args: argparse.Namespace) -> dict:
    """summary.json's ``build`` block: fsil version, git commit (from a checkout), and the
    command line that started the run."""
    return {**build_info(), "command": ["fsil", *getattr(args, "argv", [])]}


# Commands whose process ends as soon as its results are written and its output flushed
# (os._exit: no interpreter teardown, which takes 0.3-1 s with numba, numpy and zmq loaded):
# every file they write is closed and every child reaped before they return.
FAST_EXIT = ("run", "plant", "fsw")


def main(argv: list[str] | None = None, fast_exit: bool = False) -> int:
    """Run one ``fsil`` command; returns its exit code (hil.errors' table). ``fast_exit``
    (the ``fsil`` program itself, never a library caller): a :data:`FAST_EXIT` command's
    process leaves at once, without the interpreter's teardown."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.build = run_build(args) if args.command in ("run", "plant", "hil") else None
    code = _main(args)
    if fast_exit and args.command in FAST_EXIT:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    return code


def entry() -> None:
    """The ``fsil`` program (``python -m hil.cli`` too)."""
    sys.exit(main(fast_exit=True))


def _main(args: argparse.Namespace) -> int:
    from bridge.errors import BridgeError, UrlError
    from plant.lander import PlantError
    try:
        return int(args.func(args))
    except UrlError as e:
        print(f"fsil: error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except HilError as e:
        print(f"fsil: error: {e}", file=sys.stderr)
        return e.exit_code
    except BridgeError as e:
        print(f"fsil: link failure: {e}", file=sys.stderr)
        return EXIT_LINK
    except PlantError as e:
        print(f"fsil: error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt as e:   # hil.errors.Interrupted too (SIGINT, SIGTERM)
        print(f"fsil: {str(e) or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    entry()
