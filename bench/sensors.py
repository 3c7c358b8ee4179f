"""Sensor models' cost on the plant's hot path, and their output against another revision.

    python bench/sensors.py [--baseline REV] [--scenario nominal] [--seed 1] [--json OUT]

Flies the scenario's whole descent in one process (plant and the default flight software
called directly, no link) and times, per call, what the plant spends on each sensor: the
IMU sample (model and fault hook), the altimeter sample (ray cast, model, fault hook) and
the velocimeter sample when the scenario has one, plus the whole plant step per physics
step. With ``--baseline REV`` the same descent is flown, in the same invocation and in
alternating order, by the tree of revision ``REV`` (extracted with ``git archive`` into a
temporary folder), and the two runs are compared: every frame's IMU, altimeter and
velocimeter samples bit for bit, and the true trajectory (largest position difference).

Figures are CPU time of the measuring thread per call (microseconds, the cost of reading
the clock taken off; median of the repeats) and their ratio to the baseline's measured in
the same run: on a loaded machine the absolute figures move, the ratio much less.
``uptime``'s load is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs inside the tree being measured (its own plant/ and fsw/ on sys.path).
CHILD = r'''
import inspect, json, pickle, sys, time
from hil.scenario import load_scenario
from plant.lander import LanderPlant
from fsw.core import FlightSoftware

scenario, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cfg = load_scenario(scenario)
plant = LanderPlant(cfg)
frame = plant.reset(seed=seed)
fsw = FlightSoftware(plant.fsw_config())
new_contract = len(inspect.signature(fsw.step).parameters) == 1
ns = time.thread_time_ns            # CPU time of this thread: a loaded machine inflates it less
costs = {}
t0 = ns()
for _ in range(20000):
    ns()
    ns()
timer_ns = (ns() - t0) / 40000          # one clock read: what a timed interval holds of it

def timed(name, fn):
    acc = costs.setdefault(name, [0, 0])
    def wrapper(*a, **k):
        t0 = ns()
        r = fn(*a, **k)
        acc[0] += ns() - t0
        acc[1] += 1
        return r
    return wrapper

for name in ("_sample_imu", "_sample_altimeter", "_sample_velocimeter"):
    if hasattr(plant, name):
        setattr(plant, name, timed(name, getattr(plant, name)))
frames, truth = [], []
step_ns = 0
import plant.lander as lander_mod
Command = lander_mod.Command
while True:
    vel = getattr(frame, "vel", None)
    frames.append((frame.seq, frame.t_us, frame.imu, frame.alt, vel))
    truth.append(list(plant.state[0:6]))
    if plant.done:
        break
    if new_contract:
        out_cmd = fsw.step(frame)
    else:
        out_cmd = fsw.step(frame.seq, frame.t_us, frame.imu, frame.alt)
    thr, torque = out_cmd[0], out_cmd[1]
    t0 = ns()
    frame = plant.step(Command(thr, tuple(torque)))
    step_ns += ns() - t0 - timer_ns
wrapped = sum(v[1] for v in costs.values())
step_ns -= wrapped * 2 * timer_ns      # the wrappers' own clock reads inside plant.step
res = {"outcome": plant.outcome.outcome, "physics_steps": plant.step_index,
       "plant_step_us": step_ns / 1e3 / max(1, plant.step_index),
       "per_call_us": {k: max(0.0, v[0] / max(1, v[1]) - timer_ns) / 1e3
                       for k, v in costs.items()},
       "calls": {k: v[1] for k, v in costs.items()}}
with open(out, "wb") as f:
    pickle.dump({"result": res, "frames": frames, "truth": truth}, f)
'''

LABELS = {"_sample_imu": "IMU sample", "_sample_altimeter": "altimeter sample",
          "_sample_velocimeter": "velocimeter sample"}


def _run(tree: Path, scenario: str, seed: int, tmp: Path, tag: str) -> dict:
    out = tmp / f"{tag}.pkl"
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
    subprocess.run([sys.executable, "-c", CHILD, scenario, str(seed), str(out)], cwd=tree,
                   env=env, check=True)
    with open(out, "rb") as f:
        return pickle.load(f)


def _extract(rev: str, dest: Path) -> Path:
    dest.mkdir()
    archive = subprocess.run(["git", "archive", rev, "plant", "fsw", "hil", "bridge"],
                             cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _compare(a: dict, b: dict) -> dict:
    fa, fb = a["frames"], b["frames"]
    n = min(len(fa), len(fb))
    diff = {"frames": (len(fa), len(fb)), "imu": 0, "alt": 0, "vel": 0}
    for x, y in zip(fa[:n], fb[:n]):
        # repr: bit for bit, and -0.0 differs from 0.0
        diff["imu"] += repr(x[2]) != repr(y[2])
        diff["alt"] += repr(x[3]) != repr(y[3])
        diff["vel"] += x[4] is not None and y[4] is not None and repr(x[4]) != repr(y[4])
    ta, tb = a["truth"][:n], b["truth"][:n]
    diff["max_pos_diff_m"] = max(sum((p - q) ** 2 for p, q in zip(u[:3], v[:3])) ** 0.5
                                 for u, v in zip(ta, tb))
    diff["truth_bitwise"] = ta == tb
    return diff


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", metavar="REV", help="git revision to compare with")
    ap.add_argument("--scenario", default="nominal")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="runs per tree (alternating)")
    ap.add_argument("--json", metavar="OUT", help="write the figures here")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fsil-bench-sensors-") as tmp_s:
        tmp = Path(tmp_s)
        trees = {"current": ROOT}
        if args.baseline:
            trees = {"baseline": _extract(args.baseline, tmp / "baseline"), "current": ROOT}
        runs: dict[str, list[dict]] = {k: [] for k in trees}
        for i in range(args.repeat):
            for tag, tree in trees.items():
                runs[tag].append(_run(tree, args.scenario, args.seed, tmp, f"{tag}{i}"))
    report: dict = {"scenario": args.scenario, "seed": args.seed, "repeat": args.repeat,
                    "load_before": load, "load_after": os.getloadavg()}
    for tag, rs in runs.items():
        res = [r["result"] for r in rs]
        report[tag] = {
            "outcome": res[0]["outcome"], "physics_steps": res[0]["physics_steps"],
            "calls": res[0]["calls"],
            "plant_step_us": statistics.median(r["plant_step_us"] for r in res),
            "per_call_us": {k: statistics.median(r["per_call_us"][k] for r in res)
                            for k in res[0]["per_call_us"]}}
    cur = report["current"]
    print(f"scenario {args.scenario}, seed {args.seed}, {cur['physics_steps']} physics steps, "
          f"outcome {cur['outcome']}; load {load[0]:.2f} before, "
          f"{report['load_after'][0]:.2f} after")
    base = report.get("baseline")
    head = f"{'per call, us':<34}{'current':>10}"
    print(head + (f"{'baseline':>10}{'ratio':>8}" if base else ""))

    def line(label: str, now: float, then: float | None) -> None:
        extra = f"{then:>10.2f}{now / then:>8.2f}" if then else ""
        print(f"{label:<34}{now:>10.2f}{extra}")

    for key, label in LABELS.items():
        if key in cur["per_call_us"]:
            then = base["per_call_us"].get(key) if base else None
            line(f"{label} ({cur['calls'][key]} calls)", cur["per_call_us"][key], then)
    steps = cur["physics_steps"]
    for tag in ("current", "baseline"):
        if tag in report:
            r = report[tag]
            share = sum(r["per_call_us"][k] * r["calls"][k] for k in r["per_call_us"]) / steps
            r["sensors_per_physics_step_us"] = share
    line("sensors per physics step", cur["sensors_per_physics_step_us"],
         base["sensors_per_physics_step_us"] if base else None)
    line("whole plant step per physics step", cur["plant_step_us"],
         base["plant_step_us"] if base else None)
    if base:
        diff = _compare(runs["baseline"][0], runs["current"][0])
        report["diff"] = diff
        print(f"frames {diff['frames'][0]} vs {diff['frames'][1]}; frames whose samples differ "
              f"(bit for bit): IMU {diff['imu']}, altimeter {diff['alt']}, "
              f"velocimeter {diff['vel']}; trajectory bit for bit: {diff['truth_bitwise']}, "
              f"largest position difference {diff['max_pos_diff_m']:.3g} m")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
