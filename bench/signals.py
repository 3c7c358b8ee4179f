"""How fast a signalled ``fsil run`` ends in order, and how a killed flight software is told.

Each trial starts ``fsil run --scenario nominal`` (two processes, in one process with
``--inprocess``, or ``--realtime``), waits until its history holds ``--rows`` rows, sends
SIGINT or SIGTERM to it (``ctrl_c``: to its whole process group, as a terminal's Ctrl-C
does; or SIGKILL to its flight-software child: ``--kill9``), and
timestamps, from the signal on:

- ``child``: the flight-software process is gone (reaped: no /proc entry, no zombie);
- ``summary``: summary.json is there with the expected outcome;
- ``tmp``: the run's temporary folder (/tmp/fsil-*, the ipc link's) is removed;
- ``plot``: descent.png is drawn and named in summary.json (an interrupted run draws it
  after its summary when matplotlib, loaded in the background from the run's start, is
  there already: the "plots" column counts them; a run whose fsw child was killed draws
  none: ``fsil plot RUN``);
- ``exit``: the ``fsil run`` process has exited.

``--kill9-plant`` trials send SIGKILL to ``fsil run`` itself: its flight-software child
must see the link drop, exit 3 (this script is made a child subreaper, so it reaps the
orphan and reads its exit code), rewrite the provisional summary.json as ``link_failure``
(naming the plant's death and the last seq, recorded by the flight-software side) and remove
the link folder. ``child`` and ``exit`` are then the child's exit, ``summary`` the rewrite.

It checks every trial (exit code, outcome, reason, no orphan, no leftover folder) and
prints, per kind of trial, the count, the trials with problems, those with the right exit
code, and the time distributions (median, p90, max, in ms) with the load beside them.
Target (issue 13): the whole thing within 1 s on a quiet machine.

    python bench/signals.py --trials 10
    python bench/signals.py --trials 5 --modes two_process --signals INT --kill9 5
    nice -n 10 python bench/signals.py --trials 13 --kill9 100 --kill9-plant 100   # full
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FSIL = [sys.executable, "-m", "hil.cli"]
MODES = {"two_process": [], "inprocess": ["--inprocess"], "realtime": ["--realtime"],
         "ctrl_c": []}   # ctrl_c: two processes, the signal to the whole process group
POLL_S = 0.002
PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Orphans of this script's children (a killed plant's fsw) are reparented to it."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _children(pid: int, writers: bool = False) -> list[int]:
    """The process's children but its history writer (hil.engine.writer), or only its
    writer (``writers``)."""
    try:
        pids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [p for p in pids if _is_writer(p) == writers]


def _is_writer(pid: int) -> bool:
    try:
        return b"hil.engine.writer" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _exists(pid: int) -> bool:
    """True while ``pid`` has a /proc entry (running, or a zombie not yet reaped)."""
    return Path(f"/proc/{pid}").exists()


def _running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has exited: an orphan's is reaped by init, late)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _link_folder(children: list[int]) -> Path | None:
    """The temporary folder of the ipc link, from the flight software's command line."""
    for pid in children:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for a in argv:
            if a.startswith(b"zmq+ipc://"):
                return Path(a[len(b"zmq+ipc://"):].decode()).parent
    return None


def _summary(out: Path) -> dict | None:
    try:
        return json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def plant_kill_trial(rows: int, work: Path) -> dict:
    """kill -9 of the plant (``fsil run`` itself): its flight-software child must see the
    link drop and exit 3 by itself (no orphan), naming the link in fsw.log, rewrite the
    provisional summary.json as link_failure and remove the link folder."""
    out = work / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([*FSIL, "run", "--scenario", "nominal", "--out", str(out),
                             "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, cwd=REPO)
    hist = out / "history.csv"
    deadline = time.monotonic() + 120
    while not (hist.exists() and hist.stat().st_size > rows * 400):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("plant kill: the run did not get going")
        time.sleep(0.02)
    children = _children(proc.pid)
    writers = _children(proc.pid, writers=True)
    tmp = _link_folder(children)
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    writer_codes = {}
    for w in writers:   # the history writer, reparented here: it writes what it got, exits 0
        end = time.monotonic() + 10
        while time.monotonic() < end:
            pid, status = os.waitpid(w, os.WNOHANG)
            if pid == w:
                writer_codes[w] = os.waitstatus_to_exitcode(status)
                break
            time.sleep(POLL_S)
    marks: dict[str, float] = {}
    codes = {}
    while len(codes) < len(children) or (tmp is not None and "tmp" not in marks):
        now = time.monotonic() - t0
        for c in children:   # reparented to this script (a subreaper): reap and read it
            if c not in codes:
                pid, status = os.waitpid(c, os.WNOHANG)
                if pid == c:
                    codes[c] = os.waitstatus_to_exitcode(status)
                    marks["child"] = marks["exit"] = now
        if "tmp" not in marks and tmp is not None and not tmp.exists():
            marks["tmp"] = now
        if "summary" not in marks and (_summary(out) or {}).get("outcome") == "link_failure":
            marks["summary"] = now
        if now > 60:
            for c in children:
                if c not in codes:
                    os.kill(c, signal.SIGKILL)
                    os.waitpid(c, 0)
            break
        time.sleep(POLL_S)
    problems = []
    if any(writer_codes.get(w) != 0 for w in writers):
        problems.append(f"history writer exit codes {writer_codes}, expected 0 within 10 s")
    if len(codes) < len(children):
        problems.append("the flight software outlived its plant by 60 s")
    if any(code != 3 for code in codes.values()):
        problems.append(f"fsw exit codes {sorted(codes.values())}, expected 3")
    log = (out / "fsw.log").read_text() if (out / "fsw.log").exists() else ""
    if "link failure" not in log:
        problems.append(f"fsw.log does not say link failure: {log.strip()[-200:]!r}")
    s = _summary(out) or {}
    if s.get("outcome") != "link_failure" or s.get("recorded_by") != "fsw" \
            or f"(pid {proc.pid}) died after seq" not in s.get("reason", ""):
        problems.append(f"summary not rewritten by the fsw: {s.get('outcome')}: "
                        f"{s.get('reason')}")
    if tmp is None or tmp.exists():
        problems.append(f"left {tmp}")
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return {"marks": marks, "problems": problems,
            "right_code": bool(codes) and all(c == 3 for c in codes.values())}


def trial(mode: str, sig: signal.Signals, rows: int, work: Path) -> dict:
    """One run, signalled once it is under way; the milestones in s after the signal."""
    out = work / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([*FSIL, "run", "--scenario", "nominal", "--out", str(out),
                             "--no-progress", *MODES[mode]], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
                            start_new_session=mode == "ctrl_c")
    hist = out / "history.csv"
    deadline = time.monotonic() + 120
    while not (hist.exists() and hist.stat().st_size > rows * 400):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{mode}: the run did not get going: {proc.stderr.read()}")
        time.sleep(0.02)
    children = _children(proc.pid)
    writers = _children(proc.pid, writers=True)
    tmp = _link_folder(children)
    target = children[0] if sig == signal.SIGKILL else proc.pid
    t0 = time.monotonic()
    if mode == "ctrl_c":
        os.killpg(proc.pid, sig)
    else:
        os.kill(target, sig)
    want = "link_failure" if sig == signal.SIGKILL else "interrupted"
    marks: dict[str, float] = {}
    while "exit" not in marks or "child" not in marks:
        now = time.monotonic() - t0
        if "child" not in marks and not any(_exists(c) for c in children):
            marks["child"] = now
        s = _summary(out) if "summary" not in marks or "plot" not in marks else None
        if "summary" not in marks:
            if s is not None and s["outcome"] == want:
                marks["summary"] = now
        if "tmp" not in marks and tmp is not None and not tmp.exists():
            marks["tmp"] = now
        if "plot" not in marks and s is not None and s.get("outcome") == want \
                and (s.get("files") or {}).get("plot"):
            marks["plot"] = now
        if "exit" not in marks and proc.poll() is not None:
            marks["exit"] = now
        if now > 60:
            proc.kill()
            raise RuntimeError(f"{mode} {sig.name}: no end within 60 s: {marks}")
        time.sleep(POLL_S)
    stderr = proc.stderr.read()
    s = _summary(out) or {}
    problems = []
    code = 3 if sig == signal.SIGKILL else 130
    if proc.returncode != code:
        problems.append(f"exit code {proc.returncode}, expected {code}: {stderr.strip()}")
    if s.get("outcome") != want:
        problems.append(f"outcome {s.get('outcome')}")
    if sig == signal.SIGKILL and "killed by SIGKILL (exit code -9)" not in s.get("reason", ""):
        problems.append(f"reason does not name the death: {s.get('reason')}")
    if any(_exists(c) for c in children):
        problems.append(f"orphan: {children}")
    if any(_exists(w) for w in writers):
        problems.append(f"history writer left running: {writers}")
    if hist.exists() and s.get("cycles") is not None:   # every recorded row, none twice
        with open(hist, "rb") as f:
            lines = sum(1 for line in f if line.endswith(b"\n")) - 1
        if lines != s["cycles"]:
            problems.append(f"history holds {lines} rows, summary {s['cycles']} cycles")
    if tmp is not None and tmp.exists():
        problems.append(f"left {tmp}")
    drawn = (out / "descent.png").exists() and (s.get("files") or {}).get("plot")
    if sig == signal.SIGKILL and drawn:
        problems.append("a plot was drawn (a link failure ends without one)")
    shutil.rmtree(out, ignore_errors=True)
    return {"marks": marks, "problems": problems, "right_code": proc.returncode == code}


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return f"{statistics.median(ms):6.0f} {p90:6.0f} {ms[-1]:6.0f}"


def _round_robin(cases: list) -> list:
    """The cases, one of each kind in turn."""
    kinds: dict = {}
    for c in cases:
        kinds.setdefault(c, []).append(c)
    out = []
    while any(kinds.values()):
        for queue in kinds.values():
            if queue:
                out.append(queue.pop())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=5, help="trials per mode and signal")
    ap.add_argument("--modes", default="two_process,inprocess,realtime,ctrl_c")
    ap.add_argument("--signals", default="INT,TERM")
    ap.add_argument("--kill9", type=int, default=5, help="kill -9 trials of the fsw child")
    ap.add_argument("--kill9-plant", type=int, default=5,
                    help="kill -9 trials of the plant (fsil run itself)")
    ap.add_argument("--rows", type=int, default=100, help="history rows before the signal")
    args = ap.parse_args(argv)
    _become_subreaper()
    cases = [(m, signal.Signals["SIG" + s]) for m in args.modes.split(",")
             for s in args.signals.split(",") for _ in range(args.trials)]
    cases += [("two_process", signal.SIGKILL)] * args.kill9
    cases += [("plant_kill", signal.SIGKILL)] * args.kill9_plant
    results: dict[tuple[str, str], list[dict]] = {}
    load0 = os.getloadavg()
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-signals-") as work:
        for mode, sig in _round_robin(cases):   # interleaved: load drifts alike for all
            if mode == "plant_kill":
                r = plant_kill_trial(args.rows, Path(work))
            else:
                r = trial(mode, sig, args.rows, Path(work))
            results.setdefault((mode, sig.name), []).append(r)
    load = os.getloadavg()
    print(f"fsil run ended by a signal: ms after it (median p90 max); {len(cases)} trials in "
          f"{time.monotonic() - t_start:.0f} s; load at start {load0[0]:.2f} {load0[1]:.2f} "
          f"{load0[2]:.2f}, at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on "
          f"{os.cpu_count()} cores")
    print(f"{'mode':12s} {'signal':8s} {'n':>3s} {'bad':>3s} {'code':>4s} {'plots':>5s}  "
          f"{'child reaped':>20s}  {'summary.json':>20s}  {'tmp removed':>20s}  "
          f"{'plot drawn':>20s}  {'exit':>20s}  problems")
    failed = 0
    for (mode, name), rs in results.items():
        cols = [_fmt([r["marks"][k] for r in rs if k in r["marks"]])
                for k in ("child", "summary", "tmp", "plot", "exit")]
        problems = [p for r in rs for p in r["problems"]]
        bad = sum(1 for r in rs if r["problems"])
        failed += bad
        right = sum(1 for r in rs if r["right_code"])
        shown = "none" if not problems else "; ".join(problems[:3])
        target = ("the plant (fsil run): the fsw child's exit" if mode == "plant_kill" else
                  "fsw child" if name == "SIGKILL" else
                  "process group" if mode == "ctrl_c" else "fsil run")
        plots = sum(1 for r in rs if "plot" in r["marks"])
        print(f"{mode:12s} {name:8s} {len(rs):3d} {bad:3d} {right:4d} {plots:5d}  {cols[0]:>20s}  "
              f"{cols[1]:>20s}  {cols[2]:>20s}  {cols[3]:>20s}  {cols[4]:>20s}  {shown}  "
              f"({name} to {target})")
    print(f"{failed} of {len(cases)} trials with problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
