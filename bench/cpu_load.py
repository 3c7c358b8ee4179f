"""Competing CPU load for real-time runs: N processes that spin at normal priority.

    python bench/cpu_load.py                 # one spinner per CPU until Ctrl-C
    python bench/cpu_load.py -n 2 -t 90      # two spinners for 90 s

Start it in one terminal and ``fsil run --realtime ...`` in another (docs/timing.md). Without
stress-ng this is the simplest way to keep every CPU busy; with stress-ng installed,
``stress-ng --cpu 2 --timeout 90s`` does the same.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time


def _spin(stop_at: float) -> None:
    x = 0
    while time.monotonic() < stop_at:
        for _ in range(10_000):
            x += 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Spin N processes to load the CPUs.")
    p.add_argument("-n", "--workers", type=int, default=os.cpu_count() or 1,
                   help="spinning processes (default: one per CPU)")
    p.add_argument("-t", "--seconds", type=float, default=float("inf"),
                   help="how long (default: until Ctrl-C)")
    args = p.parse_args(argv)
    if args.workers < 1 or not args.seconds > 0:
        p.error("need --workers >= 1 and --seconds > 0")
    stop_at = time.monotonic() + min(args.seconds, 1e9)
    procs = [mp.Process(target=_spin, args=(stop_at,), daemon=True) for _ in range(args.workers)]
    for proc in procs:
        proc.start()
    print(f"cpu_load: {args.workers} spinning processes (pids "
          f"{', '.join(str(q.pid) for q in procs)}); Ctrl-C to stop", file=sys.stderr)
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        for proc in procs:
            proc.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
