"""Benchmark: where a two-process lockstep cycle's time goes, placed from both processes.

    .venv/bin/python bench/lockstep_trace.py [--scenario nominal] [--link zmq|unix]
                                             [--pin | --no-pin] [--json FILE]

``fsil bench lockstep`` gives a two-process cycle's mean and a split measured by the plant
alone (its step, its recording, the round trip it waits, the compute time the flight
software reports). This one places the rest: it runs one descent over two processes as
``fsil run`` does (the flight software started as ``fsil fsw``, the fault-control socket
served, the history written as CSV), with every send and receive of the link timed in
*both* processes on the one monotonic clock they share (``time.perf_counter_ns``,
CLOCK_MONOTONIC). Each process keeps ``(kind, start, end)`` per completed call in an
array and writes it when it ends; the messages are paired by order (over ZeroMQ and
``unix://`` a message is delivered once and in order: the counts must match).

The wrapping is this benchmark's only: it replaces the link class's two private hooks
(``_send_internal``, ``_recv_internal``) in both processes before any link is opened, and
adds two clock reads and an array append to each call (under 1 us). The product's code
is not changed.

Printed per cycle (means, p50 and p90 in us), in the order a cycle runs:

* plant: sending the FRAME (the link's send call);
* the FRAME's delivery (the plant's send returned -> the flight software's receive returned);
* flight software: its step (``compute_us``, as reported in the COMMAND), and the rest of
  its work between the FRAME in and the COMMAND out (decode, the contract's checks,
  encode, the client's and the link's wrappers);
* flight software: sending the COMMAND;
* the COMMAND's delivery (its send returned -> the plant's receive returned);
* plant: from the COMMAND in to the next FRAME out (decode, the row's command part,
  the plant's step, encode), with the plant step's own share from the run's timing log;
* how late the plant came to its receive after the COMMAND had been sent (its recording
  while the command was owed, when it overran).

The parts add up to the cycle (the last column says by how much they do not).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The flight software's process: the same wrapping, then ``fsil fsw``.
_FSW = ("import sys\n"
        "sys.path.insert(0, {root!r})\n"
        "from bench.lockstep_trace import install\n"
        "install(dump=True)\n"
        "from hil.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
SEND, RECV = 1, 2
_LOG: list[int] = []


def install(dump: bool = False) -> None:
    """Time every completed send and receive of the ZeroMQ and Unix links in this process;
    with ``dump`` the log is written to ``$FSIL_TRACE_DIR/PID.npy`` when the process ends."""
    import atexit
    import time

    from bridge.unix_link import UnixLink
    from bridge.zmq_link import ZmqLink
    clock, log = time.perf_counter_ns, _LOG
    for cls in (ZmqLink, UnixLink):
        send, recv = cls._send_internal, cls._recv_internal

        def timed_send(self, payload, timeout_s, _send=send):
            t0 = clock()
            done = _send(self, payload, timeout_s)
            if done:
                log.extend((SEND, t0, clock()))
            return done

        def timed_recv(self, timeout_s, _recv=recv):
            t0 = clock()
            payload = _recv(self, timeout_s)
            if payload is not None:
                log.extend((RECV, t0, clock()))
            return payload
        cls._send_internal, cls._recv_internal = timed_send, timed_recv

    def write() -> None:
        folder = os.environ.get("FSIL_TRACE_DIR")
        if folder:
            np.save(f"{folder}/{os.getpid()}.npy", np.array(log, dtype=np.int64).reshape(-1, 3))
    if dump:
        atexit.register(write)


def run(scenario: str, link: str, pin: bool, tmp: str) -> dict:
    """One descent over two processes with both sides traced; the paired timeline."""
    os.environ["FSIL_TRACE_DIR"] = tmp
    os.environ["FSIL_PIN_CPUS"] = "1" if pin else "0"
    install(dump=False)
    from hil.engine.two_process import PlantSide
    from hil.scenario import load_scenario
    cfg = load_scenario(scenario)
    url = f"zmq+ipc://{tmp}/link.sock" if link == "zmq" else f"unix://{tmp}/link.sock"
    procs: list[subprocess.Popen] = []

    def launch(u: str) -> subprocess.Popen:
        procs.append(subprocess.Popen(
            [sys.executable, "-c", _FSW.format(root=str(ROOT)), "fsw", "--link", u, "--quiet",
             "--timeout", f"{cfg.run.link_timeout_s + 5:g}"], stdin=subprocess.DEVNULL))
        return procs[-1]
    result = PlantSide(cfg, url, pathlib.Path(tmp) / "run", None, fsw_launcher=launch,
                       control=True, plots=False).run()
    for p in procs:
        p.wait()
    s = result.summary
    t = s["timing"]
    plant = np.array(_LOG, dtype=np.int64).reshape(-1, 3)
    fsw = np.load(f"{tmp}/{procs[0].pid}.npy")
    return {"scenario": scenario, "link": url.split(":")[0], "pinned": pin,
            "outcome": s["outcome"], "cycles": s["cycles"],
            "loop_us_per_cycle": t["loop_s"] / s["cycles"] * 1e6,
            "plant_step_us": t["plant_step_us"]["mean"], "compute_us": t["compute_us"]["mean"],
            "record_us": t["record_us"]["mean"], "parts": timeline(plant, fsw, s["cycles"])}


def timeline(plant: np.ndarray, fsw: np.ndarray, cycles: int) -> dict:
    """The per-cycle parts (us) from the two logs: plant sends HELLO, FRAME x N (END);
    the flight software receives them in order and sends HELLO_ACK, COMMAND x N."""
    ps, pr = plant[plant[:, 0] == SEND], plant[plant[:, 0] == RECV]
    fs, fr = fsw[fsw[:, 0] == SEND], fsw[fsw[:, 0] == RECV]
    n = cycles - 1   # cycle k runs from FRAME k out to FRAME k+1 out
    if min(len(ps), len(fr)) < cycles + 1 or min(len(fs), len(pr)) < cycles + 1:
        raise SystemExit(f"lockstep_trace: logs too short for {cycles} cycles "
                         f"({len(ps)}, {len(fr)}, {len(fs)}, {len(pr)})")
    a0, a1 = ps[1:n + 1, 1], ps[1:n + 1, 2]      # plant: FRAME k sent
    c1 = fr[1:n + 1, 2]                          # fsw: FRAME k received
    d0, d1 = fs[1:n + 1, 1], fs[1:n + 1, 2]      # fsw: COMMAND k sent
    b0, b1 = pr[1:n + 1, 1], pr[1:n + 1, 2]      # plant: COMMAND k received
    nxt = ps[2:n + 2, 1]                         # plant: FRAME k+1 sent
    parts = {
        "cycle": nxt - a0,
        "plant_send_frame": a1 - a0,
        "frame_delivery": c1 - a1,
        "fsw_between_frame_and_command": d0 - c1,
        "fsw_send_command": d1 - d0,
        "command_delivery": b1 - d1,
        "plant_command_to_next_frame": nxt - b1,
        "plant_late_to_receive": np.maximum(0, b0 - d1),
    }
    return {k: {"mean": float(v.mean() / 1e3), "p50": float(np.median(v) / 1e3),
                "p90": float(np.percentile(v, 90) / 1e3)} for k, v in parts.items()}


def report(r: dict) -> None:
    p = r["parts"]
    print(f"{r['scenario']} over {r['link']} ({'pinned' if r['pinned'] else 'not pinned'}), "
          f"{r['cycles']} cycles, {r['outcome']}; load {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = [("cycle (FRAME out to next FRAME out)", "cycle", None),
            ("plant: send FRAME (link call)", "plant_send_frame", None),
            ("FRAME delivery (send returned -> receive returned)", "frame_delivery", None),
            ("fsw: FRAME in -> COMMAND out", "fsw_between_frame_and_command", "compute_us"),
            ("fsw: send COMMAND (link call)", "fsw_send_command", None),
            ("COMMAND delivery", "command_delivery", None),
            ("plant: COMMAND in -> next FRAME out", "plant_command_to_next_frame",
             "plant_step_us"),
            ("plant late to its receive (overlaps the above)", "plant_late_to_receive", None)]
    print(f"  {'part':<52}{'mean':>8}{'p50':>8}{'p90':>8}")
    for label, key, inner in rows:
        v = p[key]
        print(f"  {label:<52}{v['mean']:>8.1f}{v['p50']:>8.1f}{v['p90']:>8.1f}")
        if inner is not None:
            name = "its step (compute_us)" if inner == "compute_us" else "the plant step"
            print(f"    {'of which ' + name + ', mean':<50}{r[inner]:>8.1f}"
                  f"   -> the rest {v['mean'] - r[inner]:.1f}")
    summed = sum(p[k]["mean"] for k, _ in [(k, 0) for _, k, _ in rows[1:7]])
    print(f"  parts add up to {summed:.1f} of {p['cycle']['mean']:.1f} us; the run's loop "
          f"{r['loop_us_per_cycle']:.1f} us a cycle; transport (two send calls and two "
          f"deliveries) {sum(p[k]['mean'] for k in ('plant_send_frame', 'frame_delivery', 'fsw_send_command', 'command_delivery')):.1f} us")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="nominal")
    ap.add_argument("--link", choices=("zmq", "unix"), default="zmq")
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                    help="place the processes as a run does (FSIL_PIN_CPUS; zmq links only)")
    ap.add_argument("--json", type=pathlib.Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsil-trace-") as tmp:
        r = run(args.scenario, args.link, args.pin, tmp)
    report(r)
    if args.json is not None:
        args.json.write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
