"""Benchmark: the terminal scenario over a noisy serial line, at several bit-flip rates.

    .venv/bin/python bench/line_noise.py [--rates 0,1e-4,1e-3] [--seed 1] [--virtual]
                                         [--scenario terminal] [--max-sim-time S]
                                         [--fsw-program 'bridge/c/build/fsil-example-fsw']

Each run is ``fsil plant`` and ``fsil fsw`` (two processes) on the two ends of a
hil.line_noise.NoisyLine: two raw pseudo-terminals joined by a relay that flips one random
bit in each byte with the given probability, seeded (both directions). ``--virtual`` adds
the same runs against the virtual board (the board firmware under MicroPython in Node.js)
behind the same noise; ``--fsw-program`` runs that program (given the link URL as its last
argument, e.g. the C library's example) instead of ``fsil fsw``. Rate 0 is the baseline measured in the same run: the table gives
each run's outcome, cycles, wall time and its ratio to the baseline's, the bits flipped,
and the counters of both sides (frames sent again by the plant, the most sends of one
frame, damaged frames dropped at the plant and at the flight software, commands sent again
from the flight software's cache). A run that ends on the line gives its one-line reason.

Target (issue 13.5): at 1e-4 the run lands with the retries counted; at 1e-3 it ends with
a reason naming line noise, not a stall.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import tty

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hil.line_noise import NoisyLine  # noqa: E402

DAMAGE = ("crc_errors", "cobs_errors", "runts", "oversize")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="0,1e-4,1e-3",
                   help="bit flips per byte, comma-separated; 0 is the baseline (default "
                        "0,1e-4,1e-3)")
    p.add_argument("--seed", type=int, default=1, help="noise seed (default 1)")
    p.add_argument("--scenario", default="terminal", help="scenario (default terminal)")
    p.add_argument("--max-sim-time", default=None, metavar="S",
                   help="cut each run at S seconds of sim time (default: the scenario's)")
    p.add_argument("--virtual", action="store_true",
                   help="also run against the virtual board (needs Node.js)")
    p.add_argument("--fsw-program", default=None, metavar="PROGRAM",
                   help="the flight software for the pty runs: PROGRAM URL (default fsil fsw)")
    return p.parse_args(argv)


def _fsil(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hil.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _plant_args(args: argparse.Namespace, port: str, out: pathlib.Path) -> list[str]:
    extra = ["--max-sim-time", args.max_sim_time] if args.max_sim_time else []
    return ["plant", "--scenario", args.scenario, "--link", f"serial://{port}", "--out",
            str(out), "--no-progress", *extra]


def run_pty(args: argparse.Namespace, rate: float, out: pathlib.Path) -> dict:
    """fsil plant and fsil fsw over a noisy pty pair."""
    with NoisyLine(rate, args.seed) as line:
        plant_port, fsw_port = line.names
        t0 = time.monotonic()
        plant = _fsil(*_plant_args(args, plant_port, out))
        if args.fsw_program:
            fsw = subprocess.Popen([*args.fsw_program.split(), f"serial://{fsw_port}"], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        else:
            fsw = _fsil("fsw", "--link", f"serial://{fsw_port}")
        plant_log = plant.communicate(timeout=1800)[0]
        fsw_log = fsw.communicate(timeout=120)[0]
        wall = time.monotonic() - t0
    return _result(out, wall, line, plant.returncode, fsw.returncode, plant_log, fsw_log)


def run_virtual(args: argparse.Namespace, rate: float, out: pathlib.Path) -> dict:
    """fsil plant against the virtual board, the noise between them."""
    from hil import virtual
    master, slave = os.openpty()
    tty.setraw(slave)
    line = NoisyLine(rate, args.seed)
    line.attach(slave)
    line.start()
    board = subprocess.Popen(virtual.board_command("--fd", str(master), "--quiet"),
                             pass_fds=(master,), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    os.close(master)
    try:
        t0 = time.monotonic()
        plant = _fsil(*_plant_args(args, line.names[0], out))
        plant_log = plant.communicate(timeout=1800)[0]
        wall = time.monotonic() - t0
    finally:
        board.terminate()
        board_log = board.communicate(timeout=30)[1]
        line.close()
        os.close(slave)
    return _result(out, wall, line, plant.returncode, None, plant_log, board_log)


def _result(out: pathlib.Path, wall: float, line: NoisyLine, plant_code: int,
            fsw_code: int | None, plant_log: str, fsw_log: str) -> dict:
    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return {"outcome": "no summary", "wall_s": wall, "log": plant_log[-300:] + fsw_log[-300:]}
    mine, theirs = summary.get("link_stats") or {}, summary.get("fsw_link_stats") or {}
    return {"outcome": summary["outcome"], "reason": summary["reason"], "cycles": summary["cycles"],
            "wall_s": wall, "flips": sum(line.flips), "plant_code": plant_code,
            "fsw_code": fsw_code, "resent": mine.get("frames_resent", 0),
            "max_sends": mine.get("max_sends", 0), "hellos": mine.get("hellos_sent", 0),
            "bad_here": sum(mine.get(k, 0) for k in DAMAGE),
            "bad_there": sum(theirs.get(k, 0) for k in DAMAGE),
            "cached": theirs.get("commands_resent", 0)}


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        rates = [float(x) for x in args.rates.split(",")]
    except ValueError:
        print(f"line_noise: --rates takes numbers separated by commas, got {args.rates!r}",
              file=sys.stderr)
        return 2
    if 0.0 not in rates:
        rates.insert(0, 0.0)            # the baseline of the ratio
    kinds = [("pty", run_pty)] + ([("virtual", run_virtual)] if args.virtual else [])
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} CPUs)")
    header = (f"{'link':8} {'rate':>7} {'outcome':>13} {'cycles':>6} {'wall s':>7} {'x base':>6} "
              f"{'flips':>5} {'resent':>6} {'max':>3} {'hello':>5} {'bad@plant':>9} "
              f"{'bad@fsw':>7} {'cached':>6}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="fsil-line-noise-") as tmp:
        for kind, run in kinds:
            base = None
            for rate in sorted(rates):
                r = run(args, rate, pathlib.Path(tmp) / f"{kind}-{rate:g}")
                if rate == 0.0:
                    base = r["wall_s"]
                rows.append((kind, rate, r, base))
                print(_row(kind, rate, r, base), flush=True)
    print()
    print(header)
    for kind, rate, r, base in rows:
        print(_row(kind, rate, r, base))
    for kind, rate, r, _ in rows:
        if r["outcome"] != "landed":
            print(f"{kind} {rate:g}: {r.get('reason') or r.get('log')}")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


def _row(kind: str, rate: float, r: dict, base: float | None) -> str:
    ratio = f"{r['wall_s'] / base:6.2f}" if base else f"{'-':>6}"
    if "cycles" not in r:
        return f"{kind:8} {rate:7.0e} {r['outcome']:>13} {'':>6} {r['wall_s']:7.1f} {ratio}"
    return (f"{kind:8} {rate:7.0e} {r['outcome']:>13} {r['cycles']:6d} {r['wall_s']:7.1f} {ratio} "
            f"{r['flips']:5d} {r['resent']:6d} {r['max_sends']:3d} {r['hellos']:5d} "
            f"{r['bad_here']:9d} {r['bad_there']:7d} {r['cached']:6d}")


if __name__ == "__main__":
    sys.exit(main())
