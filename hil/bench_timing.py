"""``fsil bench timing``: the real-time pacer's wake-up latency beside cyclictest's, same run.

At each rate the plant's pacer (:class:`hil.pacing.Pacer`, exactly as ``fsil run --realtime``
uses it) and cyclictest (rt-tests, the standard Linux timer-latency tool) run at the same time
for the same duration. Both report the wake-up latency: the clock reading when the loop
woke minus the due time, on absolute due times (cyclictest: ``clock_nanosleep`` with
``TIMER_ABSTIME`` on CLOCK_MONOTONIC; the pacer: sleep, then spin the last ``--spin-us``).
The target is our p99 within 2x cyclictest's p99.

Both run at the same scheduling class: normal (SCHED_OTHER) by default, SCHED_FIFO with
``--fifo PRIO`` (root). cyclictest's ``-m`` (mlockall) is used when running as root.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INSTALL_HINT = ("cyclictest not found; it comes with rt-tests: "
                "apt-get install rt-tests (Debian, Ubuntu), dnf install realtime-tests (Fedora)")
TARGET_RATIO = 2.0
EXIT_OK, EXIT_ABOVE_TARGET, EXIT_NO_TOOL = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rates", default="100,1000", metavar="HZ[,HZ...]",
                   help="loop rates to measure, Hz (default: 100,1000)")
    p.add_argument("--duration", type=int, default=5, metavar="S",
                   help="seconds per rate, whole seconds (default: 5)")
    p.add_argument("--spin-us", type=float, default=None, metavar="US",
                   help="the pacer spins the last US us before each due time (default: as "
                        "fsil run --realtime: 1500, at most a quarter of the period)")
    p.add_argument("--fifo", type=int, default=None, metavar="PRIO",
                   help="run both loops at SCHED_FIFO priority PRIO, 1..99 (needs root; "
                        "default: normal scheduling for both)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the figures to FILE")
    p.add_argument("--check", action="store_true",
                   help=f"exit 1 if our p99 is above {TARGET_RATIO:g}x cyclictest's at any rate")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    cyclictest = shutil.which("cyclictest")
    if cyclictest is None:
        print(f"fsil bench timing: {INSTALL_HINT}", file=sys.stderr)
        return EXIT_NO_TOOL
    try:
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        rates = []
    if not rates or not all(1.0 <= r <= 10_000.0 for r in rates):
        print(f"fsil bench timing: error: --rates must be numbers 1 .. 10000 Hz, got "
              f"{args.rates!r}", file=sys.stderr)
        return 2
    if not 1 <= args.duration <= 3600:
        print(f"fsil bench timing: error: --duration must be 1 .. 3600 s, got {args.duration}",
              file=sys.stderr)
        return 2
    if args.fifo is not None and not (1 <= args.fifo <= 99 and os.geteuid() == 0):
        print("fsil bench timing: error: --fifo needs a priority 1 .. 99 and root",
              file=sys.stderr)
        return 2
    version = _version(cyclictest)
    policy = f"SCHED_FIFO {args.fifo}" if args.fifo else "SCHED_OTHER (normal)"
    print(f"fsil bench timing: wake-up latency = wake - due time, us; {args.duration} s per "
          f"rate, both loops at the same time, {policy}; {os.cpu_count()} CPUs")
    print(f"{'rate':>9}  {'loop':<28}{'cycles':>7}{'p50':>9}{'p90':>9}{'p99':>9}"
          f"{'p99.9':>9}{'max':>9}{'cpu':>6}")
    results, worst = [], 0.0
    for rate in rates:
        ours, theirs = _measure(rate, args, cyclictest)
        ratio = (ours["p99"] / theirs["p99"]) if theirs["p99"] else math.inf
        worst = max(worst, ratio)
        print(_line(rate, f"fsil pacer (spin {ours['spin_us']:g} us)", ours))
        print(_line(rate, f"cyclictest {version}", theirs))
        verdict = "within" if ratio <= TARGET_RATIO else "ABOVE"
        print(f"{'':>9}  p99 ratio fsil / cyclictest: {ratio:.2g} ({verdict} the "
              f"{TARGET_RATIO:g}x target)")
        results.append({"rate_hz": rate, "fsil": ours, "cyclictest": theirs, "p99_ratio": ratio})
    print("(the pacer sleeps, then spins the last stretch before each due time: its cpu "
          "column; cyclictest sleeps in clock_nanosleep)")
    if args.json is not None:
        args.json.write_text(json.dumps({"duration_s": args.duration, "policy": policy,
                                         "cyclictest": version, "results": results},
                                        indent=2) + "\n")
    return EXIT_ABOVE_TARGET if args.check and worst > TARGET_RATIO else EXIT_OK


def _line(rate: float, who: str, r: dict) -> str:
    cpu = "" if r.get("cpu") is None else f"{r['cpu']:.0%}"
    cells = "".join(f"{r[k]:>9.1f}" for k in ("p50", "p90", "p99", "p99.9", "max"))
    return f"{rate:>6g} Hz  {who:<28}{r['cycles']:>7}{cells}{cpu:>6}"


def _measure(rate: float, args: argparse.Namespace, cyclictest: str) -> tuple[dict, dict]:
    """Run cyclictest and the pacer side by side at ``rate``; both results in us."""
    interval_us = max(1, round(1e6 / rate))
    with tempfile.TemporaryDirectory(prefix="fsil-bench-") as tmp:
        json_path = Path(tmp) / "cyclictest.json"
        cmd = [cyclictest, "-q", "-D", str(args.duration), "-i", str(interval_us),
               "-h", str(max(100_000, 20 * interval_us)), f"--histfile={Path(tmp) / 'hist.txt'}",
               f"--json={json_path}"]
        if os.geteuid() == 0:
            cmd.append("-m")
        if args.fifo:
            cmd += ["-p", str(args.fifo)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True)
        try:
            ours = _pace(rate, args.duration, args.spin_us, args.fifo)
            out, _ = proc.communicate(timeout=args.duration + 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0 or not json_path.exists():
            raise SystemExit(f"fsil bench timing: cyclictest failed (exit {proc.returncode}): "
                             f"{' '.join(cmd)}\n{out.strip()[-500:]}")
        theirs = _cyclictest_result(json.loads(json_path.read_text()))
    return ours, theirs


def _pace(rate: float, duration_s: int, spin_us: float | None, fifo: int | None) -> dict:
    """The plant's pacer alone for ``duration_s``: wake - due per cycle, us."""
    import numpy as np

    from hil.engine.pacing import Pacer

    period_ns = round(1e9 / rate)
    n = max(1, round(duration_s * rate))
    err = np.empty(n, dtype=np.int64)
    old = None
    if fifo:
        old = (os.sched_getscheduler(0), os.sched_getparam(0))
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo))
    try:
        pacer = Pacer(period_ns, None if spin_us is None else round(spin_us * 1000))
        pacer.start(lead_ns=100_000_000)  # let cyclictest start first
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for k in range(n):
            err[k] = pacer.wait(k) - pacer.due(k)
        cpu = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    finally:
        if old is not None:
            os.sched_setscheduler(0, old[0], old[1])
    from hil.engine.timing import nearest_rank
    us = np.sort(err) / 1000.0
    out = {"cycles": n, **{name: float(us[nearest_rank(q, n) - 1])
                           for name, q in (("p50", 50), ("p90", 90), ("p99", 99),
                                           ("p99.9", 99.9))}}
    return {**out, "max": float(us[-1]), "cpu": cpu, "spin_us": pacer.spin_ns / 1000}


def _cyclictest_result(doc: dict) -> dict:
    """Percentiles from cyclictest's JSON histogram (1 us buckets; overflows count as max)."""
    thread = doc["thread"]["0"]
    hist = sorted((int(k), int(v)) for k, v in thread.get("histogram", {}).items())
    total = int(thread["cycles"])
    overflow = total - sum(v for _, v in hist)
    top = float(thread["max"])

    from hil.engine.timing import nearest_rank

    def pct(p: float) -> float:
        need = nearest_rank(p, total)
        seen = 0
        for us, count in hist:
            seen += count
            if seen >= need:
                return float(us)
        return top  # in the overflow: above the histogram's range
    out = {"cycles": total, "p50": pct(50), "p90": pct(90), "p99": pct(99), "p99.9": pct(99.9),
           "max": top, "cpu": None}
    if overflow > 0:
        out["overflows"] = overflow
    return out


def _version(cyclictest: str) -> str:
    try:
        head = subprocess.run([cyclictest, "--help"], capture_output=True, text=True,
                              timeout=10).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return head[0].split()[-1] if head and head[0].startswith("cyclictest") else ""
