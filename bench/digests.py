"""SHA-256 digests of whole in-process runs, for speed work that must not change a single bit.

Each case is flown twice in this process (``hil.engine.run_inprocess``): once with the CSV
sink into a temporary run folder (digest of history.csv and of summary.json), once with the
memory sink (digest of the numpy columns' bytes and of the returned summary). Campaign cases
go through ``hil.mc.task.run_one`` exactly as a campaign worker does (digest of the row and of
the pyarrow history). Wall-clock cells are left out everywhere: the history's
``compute_us``/``round_trip_us`` columns, summary ``wall_time_s``/``timing``/``build``/
``processes``, a row's ``wall_time_s``/``worker``.

    python bench/digests.py --out before.json            # record
    python bench/digests.py --check before.json          # re-fly, compare, exit 1 on a change
    python bench/digests.py --check before.json --only terminal,m1-crater-rim

No figure here is a target: it is the evidence that an optimisation kept every run the same.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hil.engine import run_inprocess  # noqa: E402
from hil.engine.schema import WALL_CLOCK_COLUMNS  # noqa: E402
from hil.scenario import load_scenario  # noqa: E402

SCENARIOS = ("nominal", "terminal", "m2-late-lrf", "m1-crater-rim", "im1-no-lrf")
PRESETS = ("mems", "tactical")        # nominal with these IMU presets
CAMPAIGN = ("nominal", (0, 1))       # fsil mc --scenario nominal: runs 0 and 1 (its seed)
SUMMARY_WALL = ("wall_time_s", "timing", "build", "processes")
ROW_WALL = ("wall_time_s", "worker")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_digest(obj: dict, drop: tuple[str, ...]) -> str:
    kept = {k: v for k, v in obj.items() if k not in drop}
    return _sha(json.dumps(kept, sort_keys=True, default=repr).encode())


def csv_digest(path: Path) -> str:
    """history.csv as written, wall-clock columns left out (cells as their exact text)."""
    h = hashlib.sha256()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        keep = [i for i, name in enumerate(header) if name not in WALL_CLOCK_COLUMNS]
        h.update(repr([header[i] for i in keep]).encode())
        for row in reader:
            h.update(("\x1f".join(row[i] for i in keep) + "\n").encode())
    return h.hexdigest()


def columns_digest(data: dict) -> str:
    """Numpy (or pyarrow-converted) columns: float/int bytes, text by repr."""
    h = hashlib.sha256()
    for name, arr in data.items():
        if name in WALL_CLOCK_COLUMNS:
            continue
        arr = np.asarray(arr)
        h.update(f"{name}:{arr.dtype}:{arr.shape}".encode())
        h.update(repr(arr.tolist()).encode() if arr.dtype == object else arr.tobytes())
    return h.hexdigest()


def scenario_case(name: str, cfg) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="fsil-digest-") as tmp:
        r = run_inprocess(cfg, None, out_dir=tmp, history="csv", plots=False)
        out["outcome"] = r.summary["outcome"]
        out["cycles"] = r.summary["cycles"]
        out["history_csv"] = csv_digest(Path(tmp) / "history.csv")
        summary = json.loads((Path(tmp) / "summary.json").read_text())
        out["summary_json"] = _json_digest(summary, SUMMARY_WALL)
    r = run_inprocess(cfg, None, history="memory", plots=False)
    out["history_memory"] = columns_digest(r.history.data)
    out["summary_memory"] = _json_digest(r.summary, SUMMARY_WALL)
    return out


def campaign_case(name: str, run: int) -> dict:
    from hil.mc.cli import resolve
    from hil.mc.task import CampaignSpec, run_one
    from hil.scenario import scenario_to_dict
    cfg = resolve(name)
    spec = CampaignSpec(scenario_to_dict(cfg), cfg.run.seed, "default", False)
    row, table = run_one(spec, run, keep_history=True)
    if row["outcome"] == "error":
        raise RuntimeError(row["error"])
    cols = {n: table.column(n).to_numpy(zero_copy_only=False) for n in table.column_names}
    return {"outcome": row["outcome"], "cycles": row["cycles"],
            "row": _json_digest(row, ROW_WALL), "history_arrow": columns_digest(cols)}


def cases() -> dict:
    """name -> a zero-argument callable flying the case."""
    out = {}
    for name in SCENARIOS:
        out[name] = (lambda n=name: scenario_case(n, load_scenario(n)))
    for preset in PRESETS:
        def fly(p=preset):
            from hil.scenario import scenario_from_dict, scenario_to_dict
            data = scenario_to_dict(load_scenario("nominal"))
            data["imu"] = {"preset": p}   # the preset fills every other key
            return scenario_case(f"nominal-{p}", scenario_from_dict(data, f"nominal-{p}"))
        out[f"nominal-{preset}"] = fly
    name, runs = CAMPAIGN
    for k in runs:
        out[f"mc-{name}-run{k}"] = (lambda n=name, k=k: campaign_case(n, k))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the digests here (JSON)")
    ap.add_argument("--check", type=Path, help="compare with these digests; exit 1 on a change")
    ap.add_argument("--only", help="comma-separated case names (default: all)")
    args = ap.parse_args(argv)
    todo = cases()
    if args.only:
        names = args.only.split(",")
        unknown = [n for n in names if n not in todo]
        if unknown:
            ap.error(f"unknown case(s) {unknown}; cases: {', '.join(todo)}")
        todo = {n: todo[n] for n in names}
    ref = json.loads(args.check.read_text()) if args.check else None
    result, changed = {}, []
    for name, fly in todo.items():
        t0 = time.process_time()
        got = fly()
        result[name] = got
        verdict = ""
        if ref is not None:
            same = ref.get(name) == got
            verdict = "same" if same else "CHANGED"
            if not same:
                changed.append(name)
        print(f"{name:24s} {got['outcome']:10s} {got['cycles']:6d} cycles "
              f"{time.process_time() - t0:6.1f} s CPU {verdict}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    if changed:
        for name in changed:
            for key in sorted(set(ref.get(name, {})) | set(result[name])):
                if ref.get(name, {}).get(key) != result[name].get(key):
                    print(f"  {name}: {key} differs")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
