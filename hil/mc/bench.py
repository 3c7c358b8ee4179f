"""``fsil bench mc``: campaign throughput on Dask beside a plain serial loop, same invocation.

The same runs of a campaign (default: the shipped ``terminal`` campaign) are flown three
ways, one after the other: a plain loop calling the run function in this process (no Dask),
a LocalCluster with one worker process, one with two. Each figure is runs per minute of wall
time from the first run submitted to the last result written (the cluster's start-up is
timed apart: it is paid once per campaign). The rows of the three must be identical (wall
time and worker aside). Targets: two workers >= 1.7 x one worker; one worker within 10 % of
the serial loop. The machine's load (``os.getloadavg``) is printed beside each figure: on a
shared machine the ratios, measured minutes apart, are what to read.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

TARGET_TWO_OVER_ONE = 1.7
TARGET_ONE_OVER_SERIAL = 0.9


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="terminal",
                   help="campaign or scenario (default: the shipped terminal campaign)")
    p.add_argument("--runs", type=int, default=8, help="runs per configuration (default: 8)")
    p.add_argument("--seed", type=int, default=1, help="campaign seed (default: 1)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the figures to FILE")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if a ratio misses its target")
    p.set_defaults(func=main)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min), {five:.2f} (5 min)"


def main(args: argparse.Namespace) -> int:
    from hil.errors import ConfigError
    from hil.mc.campaign import close_client, open_client, run_campaign
    from hil.mc.cli import resolve
    from hil.mc.report import write_parquet
    from hil.mc.task import CampaignSpec, run_one
    from hil.scenario import scenario_to_dict

    if args.runs < 2:
        raise ConfigError(f"--runs must be at least 2, got {args.runs}")
    spec = CampaignSpec(scenario_to_dict(resolve(args.scenario)), args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="fsil-bench-mc-"))
    figures: dict = {"scenario": args.scenario, "runs": args.runs, "cpus": os.cpu_count()}
    rows: dict[str, list] = {}
    try:
        print(f"fsil bench mc: {args.runs} runs of {args.scenario} per configuration; "
              f"{os.cpu_count()} cores; {_load()}")
        run_one(spec, 0, False)  # imports and the scenario parse, as a worker's first task does
        t0 = time.perf_counter()
        rows["serial"] = [run_one(spec, k, False)[0] for k in range(args.runs)]
        figures["serial"] = _figure(args.runs, time.perf_counter() - t0, 0.0)
        _print("serial loop", figures["serial"])
        for workers in (1, 2):
            name = f"{workers}_worker" + ("s" if workers > 1 else "")
            t_start = time.perf_counter()
            client, cluster = open_client(workers, None)
            try:
                client.run(_warm, spec)
                start_s = time.perf_counter() - t_start
                out = tmp / name
                t0 = time.perf_counter()
                run_campaign(out, spec, args.runs, keep=0, client=client, progress=False)
                wall = time.perf_counter() - t0
            finally:
                close_client(client, cluster)
            write_parquet(out)
            import pandas as pd
            rows[name] = pd.read_parquet(out / "runs.parquet").to_dict("records")
            figures[name] = _figure(args.runs, wall, start_s)
            _print(f"{workers} worker{'s' if workers > 1 else ''}", figures[name])
        same = _same_rows(rows)
        one, two, serial = (figures[k]["runs_per_min"] for k in ("1_worker", "2_workers",
                                                                  "serial"))
        figures["ratios"] = {"two_over_one": two / one, "one_over_serial": one / serial,
                             "identical_rows": same}
        ok = two / one >= TARGET_TWO_OVER_ONE and one / serial >= TARGET_ONE_OVER_SERIAL
        print(f"2 workers / 1 worker: {two / one:.2f} x (target >= {TARGET_TWO_OVER_ONE:g})")
        print(f"1 worker / serial:    {one / serial:.2f} x (target >= "
              f"{TARGET_ONE_OVER_SERIAL:g}: within 10 %)")
        print(f"rows identical in the three: {'yes' if same else 'NO'}; {_load()}")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        return 1 if args.check and not (ok and same) else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _warm(spec) -> None:
    """A worker's first task pays the imports and the scenario parse: paid before timing."""
    from hil.mc.task import base_config
    from hil.mc import engine  # noqa: F401
    base_config(spec)


def _figure(runs: int, wall_s: float, start_s: float) -> dict:
    return {"wall_s": wall_s, "runs_per_min": 60.0 * runs / wall_s, "startup_s": start_s,
            "load_1min": os.getloadavg()[0]}


def _print(name: str, f: dict) -> None:
    start = f" (+ {f['startup_s']:.1f} s cluster start)" if f["startup_s"] else ""
    print(f"{name:12s} {f['runs_per_min']:7.1f} runs/min  ({f['wall_s']:.1f} s){start}  "
          f"load {f['load_1min']:.2f}", flush=True)
    sys.stdout.flush()


def _same_rows(rows: dict[str, list]) -> bool:
    def key(r: dict) -> dict:
        return {k: v for k, v in r.items() if k not in ("wall_time_s", "worker")}
    serial = sorted((key(r) for r in rows["serial"]), key=lambda r: r["run"])
    others = [sorted((key(r) for r in rows[k]), key=lambda r: r["run"])
              for k in rows if k != "serial"]
    return all(_equal(serial, o) for o in others)


def _equal(a: list[dict], b: list[dict]) -> bool:
    import math
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for k in ra:
            va, vb = ra[k], rb.get(k)
            if isinstance(va, float) and isinstance(vb, float) and math.isnan(va) and \
                    math.isnan(vb):
                continue
            if va != vb and not (va is None and isinstance(vb, float) and math.isnan(vb)):
                return False
    return True
