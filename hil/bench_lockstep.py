"""``fsil bench lockstep``: what a lockstep cycle costs, over two processes and in one, beside
a bare ZeroMQ round trip and Basilisk's spacecraft step, all in one invocation.

Measured, each in a fresh process so that peak memory is the run's own:

1. the descent (default ``nominal``) over two processes (zmq+ipc, the flight software
   started as ``fsil run`` starts it) and in process (``fsil run --inprocess``), with the
   history written as ``fsil run`` writes it; the same for a short scenario (``terminal``)
   so that peak memory can be compared between a short and a long run;
2. a bare pyzmq PAIR round trip between two processes over ipc with payloads shaped like a
   real FRAME and COMMAND (blocking receive, as the link waits), and the same with a poll
   before each receive (as the link waited before), with a busy-poll of ``--spin-us``
   before blocking, over loopback TCP, and over a plain Unix SOCK_SEQPACKET socket without
   ZeroMQ (its I/O threads add two wake-ups each way): what the transport's wake-up costs
   and what another way of waiting buys; ``ipc-pinned`` is the blocking one with the two
   processes on two CPUs of their own as a run places them (hil/engine/placement.py);
3. the plant alone (fixed command) per physics step, beside Basilisk's spacecraft + IMU
   (RK4 at the same rate, point-mass Moon, a body-fixed force) when the ``bsk`` package is
   installed (``pip install 'fsil[bench]'``).

Printed: real-time factors, the per-cycle split (plant step, flight software compute,
transport, recording; means over the run), the ratios of issue 9 with their targets, and
the peak resident memory of every process. ``--json FILE`` writes them all. The split is
the plant's view; ``python bench/lockstep_trace.py`` times both processes' sends and
receives and places the rest of a two-process cycle (send calls, deliveries, each side's
work outside its step).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"two_process_vs_parts": 1.25, "plant_vs_basilisk": 1.0, "rt_two_process": 80.0,
           "rt_inprocess": 200.0, "rss_mb": 150.0}
RTT_VARIANTS = ("ipc-blocking", "ipc-pinned", "ipc-poll", "ipc-spin", "tcp-blocking",
                "unix-seqpacket")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="nominal",
                   help="the (long) descent measured (default: nominal)")
    p.add_argument("--short-scenario", default="terminal",
                   help="a shorter descent, for peak memory against run length "
                        "(default: terminal)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: the scenario's)")
    p.add_argument("--round-trips", type=int, default=20_000, metavar="N",
                   help="bare round trips per variant (default: 20000)")
    p.add_argument("--spin-us", type=float, default=50.0, metavar="US",
                   help="busy-poll before blocking in the 'ipc-spin' round trip (default: 50)")
    p.add_argument("--plant-frames", type=int, default=2000, metavar="N",
                   help="frames of the plant-alone and Basilisk runs (default: 2000)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write every figure to FILE")
    p.set_defaults(func=main)


# ----------------------------------------------------------------------------- parent
def main(args: argparse.Namespace) -> int:
    from hil.scenario import load_scenario
    for name in (args.scenario, args.short_scenario):
        load_scenario(name)   # a bad name: one line, exit 2, before anything runs
    if args.round_trips < 100 or args.plant_frames < 10:
        print("fsil bench lockstep: error: --round-trips >= 100 and --plant-frames >= 10",
              file=sys.stderr)
        return 2
    out: dict = {"load_before": os.getloadavg(), "cpus": os.cpu_count(),
                 "scenario": args.scenario, "short_scenario": args.short_scenario}
    print(f"fsil bench lockstep: {args.scenario} (and {args.short_scenario}), "
          f"{os.cpu_count()} CPUs, load {_load()}")
    runs = {}
    for scenario, tag in ((args.scenario, "long"), (args.short_scenario, "short")):
        for mode in ("two_process", "inprocess"):
            print(f"  running {scenario} {mode.replace('_', '-')} ...", flush=True)
            runs[f"{mode}_{tag}"] = _child("run", mode, scenario, str(args.seed))
    out["runs"] = runs
    print("  bare round trips ...", flush=True)
    out["round_trip"] = {v: _round_trips(v, args.round_trips, args.spin_us)
                         for v in RTT_VARIANTS}
    print("  plant alone and Basilisk ...", flush=True)
    out["plant_alone"] = _child("plant", args.scenario, str(args.plant_frames))
    out["basilisk"] = _child("basilisk", args.scenario, str(args.plant_frames))
    out["load_after"] = os.getloadavg()
    out["ratios"] = _ratios(out)
    _print(out)
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


def _child(*argv: str) -> dict:
    """Run one measurement in a fresh process; its JSON line."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])
           + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "hil.bench_lockstep", *argv],
                          capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _round_trips(variant: str, n: int, spin_us: float) -> dict:
    """Bare pyzmq PAIR round trips with FRAME- and COMMAND-shaped payloads (us)."""
    import numpy as np
    import zmq
    frame, command = _payloads()
    if variant == "unix-seqpacket":
        return _round_trips_unix(n, frame, command)
    with tempfile.TemporaryDirectory(prefix="fsil-bench-") as tmp:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PAIR)
        sock.setsockopt(zmq.LINGER, 0)
        if variant.startswith("tcp"):
            sock.bind("tcp://127.0.0.1:0")
            addr = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        else:
            addr = f"ipc://{tmp}/rtt.sock"
            sock.bind(addr)
        peer = subprocess.Popen([sys.executable, "-m", "hil.bench_lockstep", "echo", addr,
                                 variant, str(spin_us), str(len(command))],
                                env={**os.environ, "PYTHONPATH": str(Path(__file__)
                                                                     .resolve().parents[1])})
        recv = _receiver(sock, variant, spin_us)
        rtt = np.empty(n, dtype=np.int64)
        placement = None
        if variant == "ipc-pinned":
            from hil.engine.placement import Placement
            placement = Placement()
            placement.pin(peer.pid)
        try:
            for _ in range(200):                     # warm up
                sock.send(frame)
                recv()
            clock = time.perf_counter_ns
            cpu0 = time.process_time()
            for k in range(n):
                t0 = clock()
                sock.send(frame)
                recv()
                rtt[k] = clock() - t0
            cpu = time.process_time() - cpu0
            sock.send(b"")
        finally:
            try:
                peer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                peer.kill()
                peer.wait()
            sock.close()
            ctx.term()
            if placement is not None:
                placement.restore()
    us = rtt / 1000.0
    return {"n": n, "mean_us": float(us.mean()), "p50_us": float(np.median(us)),
            "p99_us": float(np.percentile(us, 99)), "cpu_us": cpu / n * 1e6,
            "frame_bytes": len(frame), "command_bytes": len(command)}


def _round_trips_unix(n: int, frame: bytes, command: bytes) -> dict:
    """The same round trips over a plain Unix SOCK_SEQPACKET socket, without ZeroMQ: what
    its I/O threads cost (a ZeroMQ message passes the sender's and the receiver's I/O
    thread, two more wake-ups each way; not an fsil transport)."""
    import socket

    import numpy as np
    with tempfile.TemporaryDirectory(prefix="fsil-bench-") as tmp:
        path = f"{tmp}/rtt.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        server.bind(path)
        server.listen(1)
        server.settimeout(30.0)
        peer = subprocess.Popen([sys.executable, "-m", "hil.bench_lockstep", "echo", path,
                                 "unix-seqpacket", "0", str(len(command))],
                                env={**os.environ, "PYTHONPATH": str(Path(__file__)
                                                                     .resolve().parents[1])})
        rtt = np.empty(n, dtype=np.int64)
        try:
            sock, _ = server.accept()
            sock.settimeout(30.0)
            for _ in range(200):
                sock.send(frame)
                sock.recv(8192)
            clock = time.perf_counter_ns
            cpu0 = time.process_time()
            for k in range(n):
                t0 = clock()
                sock.send(frame)
                sock.recv(8192)
                rtt[k] = clock() - t0
            cpu = time.process_time() - cpu0
            sock.send(b"")
            sock.close()
        finally:
            try:
                peer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                peer.kill()
                peer.wait()
            server.close()
    us = rtt / 1000.0
    return {"n": n, "mean_us": float(us.mean()), "p50_us": float(np.median(us)),
            "p99_us": float(np.percentile(us, 99)), "cpu_us": cpu / n * 1e6,
            "frame_bytes": len(frame), "command_bytes": len(command)}


def _receiver(sock, variant: str, spin_us: float):
    import zmq
    if variant == "ipc-poll":
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)

        def recv() -> bytes:
            while not poller.poll(250):
                pass
            return sock.recv(zmq.NOBLOCK)
        return recv
    if variant == "ipc-spin":
        spin_ns = round(spin_us * 1000)
        clock = time.perf_counter_ns

        def recv() -> bytes:
            until = clock() + spin_ns
            while clock() < until:
                try:
                    return sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    pass
            return sock.recv()
        return recv
    return sock.recv


def _payloads() -> tuple[bytes, bytes]:
    """A FRAME (4 IMU samples, an altimeter sample) and a COMMAND as a run sends them."""
    from bridge import protocol
    from bridge.codec import encode
    imu = [[1_000_000 + 5000 * i, 1.234567e-3, -2.345678e-4, 0.01234567, 1.2e-6, -3.4e-7,
            5.6e-8] for i in range(4)]
    frame = encode(protocol.FRAME, [50, 1_000_000, imu, [990_000, 1234.5678901234, True], None,
                                    None])
    command = encode(protocol.COMMAND, [50, 0.634567890123, [1.2345678, -2.3456789, 0.0345678],
                                        3, 57, [1.7e6 + 0.123456789, 4.1e5 + 0.987654321,
                                                12.3456789, -1.23456789, 1692.123456789,
                                                -0.0123456789, 1234.5678901],
                                        7])
    return frame, command


def _ratios(out: dict) -> dict:
    runs, rtt = out["runs"], out["round_trip"]["ipc-blocking"]
    r: dict = {}
    two, inp = runs.get("two_process_long", {}), runs.get("inprocess_long", {})
    if "per_cycle_us" in two and "per_cycle_us" in inp:
        r["two_process_vs_parts"] = two["per_cycle_us"] / (inp["per_cycle_us"]
                                                           + rtt["mean_us"])
        pinned = out["round_trip"].get("ipc-pinned", {})
        if "mean_us" in pinned:     # the round trip placed as the run places its processes
            r["two_process_vs_parts_pinned_rtt"] = two["per_cycle_us"] / (
                inp["per_cycle_us"] + pinned["mean_us"])
        r["rt_two_process"] = two["rt_factor"]
        r["rt_inprocess"] = inp["rt_factor"]
    plant, bsk = out.get("plant_alone", {}), out.get("basilisk", {})
    if "us_per_step" in plant and "us_per_step" in bsk:
        r["plant_vs_basilisk"] = plant["us_per_step"] / bsk["us_per_step"]
        r["plant_vs_basilisk_cpu"] = plant["cpu_us_per_step"] / bsk["cpu_us_per_step"]
    rss = [v for run in runs.values() for v in run.get("rss_mb", {}).values()]
    if rss:
        r["rss_mb"] = max(rss)
    return r


def _print(out: dict) -> None:
    runs = out["runs"]
    print()
    print(f"{'run':<26}{'sim s':>8}{'wall s':>8}{'x RT':>8}{'us/cycle':>10}{'step':>8}"
          f"{'fsw':>8}{'transp':>8}{'record':>8}{'writer':>8}   peak RSS MB")
    for key, run in runs.items():
        if "error" in run:
            print(f"{key:<26}failed: {run['error']}")
            continue
        s = run["split_us"]
        rss = ", ".join(f"{k} {v:.0f}" for k, v in run["rss_mb"].items())
        print(f"{run['scenario'] + ' ' + run['mode']:<26}{run['sim_s']:>8.1f}"
              f"{run['loop_s']:>8.2f}{run['rt_factor']:>8.1f}{run['per_cycle_us']:>10.1f}"
              f"{s['plant_step']:>8.1f}{s['fsw_compute']:>8.1f}{s['transport']:>8.1f}"
              f"{s['recording']:>8.1f}{_fmt_opt(s.get('writer_cpu')):>8}   {rss}")
    print("  (means per cycle, us; in process the transport is 0 and 'fsw' is the step call; "
          "over two processes part of the recording runs while the command is owed: "
          "'record' includes it; 'writer' is the CPU time of the history writer process, "
          "formatting and writing the rows on another CPU, not part of the cycle)")
    print()
    print(f"{'bare round trip':<26}{'mean':>8}{'p50':>8}{'p99':>8}  us "
          f"(FRAME {out['round_trip']['ipc-blocking']['frame_bytes']} B, COMMAND "
          f"{out['round_trip']['ipc-blocking']['command_bytes']} B)")
    for variant, rt in out["round_trip"].items():
        print(f"  {variant:<24}{rt['mean_us']:>8.1f}{rt['p50_us']:>8.1f}{rt['p99_us']:>8.1f}")
    plant, bsk = out["plant_alone"], out["basilisk"]
    print()
    if "us_per_step" in plant:
        print(f"plant alone: {plant['us_per_step']:.1f} us per physics step "
              f"({plant['cpu_us_per_step']:.1f} us CPU), {plant['steps']} steps")
    if "us_per_step" in bsk:
        print(f"Basilisk {bsk['version']} spacecraft + IMU: {bsk['us_per_step']:.1f} us per "
              f"step ({bsk['cpu_us_per_step']:.1f} us CPU)")
    else:
        print(f"Basilisk: not measured ({bsk.get('error', 'bsk not installed')}; "
              f"pip install 'fsil[bench]')")
    print()
    ratios = out["ratios"]
    rows = [("two-process cycle / (in-process cycle + bare round trip)",
             "two_process_vs_parts", "<="),
            ("plant per physics step / Basilisk step (wall)", "plant_vs_basilisk", "<="),
            ("real-time factor, two processes", "rt_two_process", ">="),
            ("real-time factor, in process", "rt_inprocess", ">="),
            ("largest peak RSS of any process, MB", "rss_mb", "<=")]
    for label, key, op in rows:
        if key not in ratios:
            print(f"  {label}: not measured")
            continue
        v, t = ratios[key], TARGETS[key]
        ok = v <= t if op == "<=" else v >= t
        print(f"  {label}: {v:.2f} (target {op} {t:g}: {'holds' if ok else 'MISSED'})")
    if "two_process_vs_parts_pinned_rtt" in ratios:
        print(f"  two-process cycle / (in-process cycle + bare round trip pinned as a run is): "
              f"{ratios['two_process_vs_parts_pinned_rtt']:.2f}")
    if "plant_vs_basilisk_cpu" in ratios:
        print(f"  plant per physics step / Basilisk step (CPU time): "
              f"{ratios['plant_vs_basilisk_cpu']:.2f}")
    long_rss, short_rss = _rss_pair(runs)
    if long_rss:
        print("  peak RSS short vs long run: " + "; ".join(
            f"{k} {short_rss.get(k, math.nan):.0f} -> {v:.0f} MB" for k, v in long_rss.items()))
    print(f"  load average before {_fmt_load(out['load_before'])}, after "
          f"{_fmt_load(out['load_after'])} (ratios are from this one run)")


def _rss_pair(runs: dict) -> tuple[dict, dict]:
    long_rss, short_rss = {}, {}
    for mode in ("two_process", "inprocess"):
        for proc, mb in runs.get(f"{mode}_long", {}).get("rss_mb", {}).items():
            long_rss[f"{mode} {proc}"] = mb
        for proc, mb in runs.get(f"{mode}_short", {}).get("rss_mb", {}).items():
            short_rss[f"{mode} {proc}"] = mb
    return long_rss, short_rss


def _fmt_opt(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _load() -> str:
    return _fmt_load(os.getloadavg())


def _fmt_load(load) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


# ----------------------------------------------------------------------------- children
def peak_rss_mb() -> float:
    """This process's peak resident memory, MB: VmHWM of its own address space (getrusage's
    ru_maxrss also counts the parent's pages a forked child started with)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ``fsil fsw`` that writes its peak memory (peak_rss_mb) to the file argv[1] when it ends.
_FSW_REPORTING_PEAK = (
    "import atexit, sys\n"
    "from hil.bench_lockstep import peak_rss_mb\n"
    "path = sys.argv[1]\n"
    "atexit.register(lambda: open(path, 'w').write(f'{peak_rss_mb():.1f}'))\n"
    "from hil.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n")


def _child_run(mode: str, scenario: str, seed_text: str) -> dict:
    from hil.engine.inprocess import run_inprocess
    from hil.engine.two_process import PlantSide
    from hil.scenario import load_scenario
    cfg = load_scenario(scenario)
    seed = None if seed_text == "None" else int(seed_text)
    fsw_rss = None
    with tempfile.TemporaryDirectory(prefix="fsil-bench-") as tmp:
        out = Path(tmp) / "run"
        if mode == "inprocess":
            result = run_inprocess(cfg, seed, out_dir=out, plots=False)
        else:
            procs: list[subprocess.Popen] = []

            hwm_file = Path(tmp) / "fsw-hwm"

            def launch(url: str) -> subprocess.Popen:
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", _FSW_REPORTING_PEAK, str(hwm_file), "fsw",
                     "--link", url, "--quiet", "--timeout", f"{cfg.run.link_timeout_s + 5:g}"],
                    stdin=subprocess.DEVNULL))
                return procs[-1]
            result = PlantSide(cfg, f"zmq+ipc://{tmp}/link.sock", out, seed,
                               fsw_launcher=launch, control=True, plots=False).run()
            for p in procs:
                p.wait()
                fsw_rss = float(hwm_file.read_text()) if hwm_file.exists() else None
    s = result.summary
    t = s["timing"]
    loop_s = t.get("loop_s") or s["wall_time_s"]
    cycles = s["cycles"]
    lat, comp = t["round_trip_us"]["mean"], t["compute_us"]["mean"]
    rss = {"plant": peak_rss_mb()}
    # The history writer process (hil.engine.writer): its CPU time, off the loop
    writer = t.get("history_writer")
    writer_cpu = (writer["cpu_s"] * 1e6 / cycles
                  if writer and writer.get("cpu_s") is not None and cycles else None)
    if fsw_rss is not None:
        rss["fsw"] = fsw_rss
    return {"scenario": scenario, "mode": mode.replace("_", "-"), "outcome": s["outcome"],
            "sim_s": s["sim_time_s"], "loop_s": loop_s, "wall_s": s["wall_time_s"],
            "cycles": cycles, "rt_factor": s["sim_time_s"] / loop_s,
            "per_cycle_us": loop_s / cycles * 1e6,
            "split_us": {"plant_step": t["plant_step_us"]["mean"], "fsw_compute": comp,
                         "transport": max(0.0, lat - comp) if mode != "inprocess" else 0.0,
                         "recording": t["record_us"]["mean"],
                         "recording_in_wait": (t.get("record_wait_us") or {}).get("mean"),
                         "round_trip": lat,
                         "writer_cpu": writer_cpu},
            "history_writer": writer,
            "rss_mb": rss}


def _child_plant(scenario: str, frames_text: str) -> dict:
    from hil.scenario import load_scenario
    from plant.lander import Command, LanderPlant
    cfg = load_scenario(scenario)
    frames = int(frames_text)
    plant = LanderPlant(cfg)
    plant.reset(cfg.run.seed)
    command = Command(0.6, (0.0, 0.0, 0.0))
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(frames):
        plant.step(command)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps = frames * plant.steps_per_frame
    return {"steps": steps, "us_per_step": wall / steps * 1e6, "cpu_us_per_step": cpu / steps * 1e6,
            "done": plant.done}


def _child_basilisk(scenario: str, frames_text: str) -> dict:
    import numpy as np
    from Basilisk import __version__ as bsk_version
    from Basilisk.simulation import extForceTorque, imuSensor, spacecraft
    from Basilisk.utilities import SimulationBaseClass, macros, simIncludeGravBody

    from hil.scenario import load_scenario
    cfg = load_scenario(scenario)
    v = cfg.vehicle
    dt_s = 1.0 / cfg.rates.physics_hz
    steps = int(frames_text) * round(cfg.rates.physics_hz / cfg.rates.frame_hz)
    sim = SimulationBaseClass.SimBaseClass()
    proc = sim.CreateNewProcess("plant")
    proc.addTask(sim.CreateNewTask("physics", macros.sec2nano(dt_s)))
    sc = spacecraft.Spacecraft()
    sc.ModelTag = "lander"
    sc.hub.mHub = v.dry_mass_kg + v.propellant_kg
    sc.hub.IHubPntBc_B = np.diag(v.inertia_kgm2).tolist()
    sc.hub.r_CN_NInit = [[1737.4e3 + cfg.initial.altitude_m], [0.0], [0.0]]
    sc.hub.v_CN_NInit = [[0.0], [cfg.initial.horizontal_speed_mps], [0.0]]
    gravity = simIncludeGravBody.gravBodyFactory()
    gravity.createMoon().isCentralBody = True
    gravity.addBodiesTo(sc)
    sim.AddModelToTask("physics", sc)
    engine = extForceTorque.ExtForceTorque()
    engine.ModelTag = "engine"
    engine.extForce_B = [[0.0], [0.0], [0.6 * v.max_thrust_n]]
    sc.addDynamicEffector(engine)
    sim.AddModelToTask("physics", engine)
    imu = imuSensor.ImuSensor()
    imu.ModelTag = "imu"
    imu.scStateInMsg.subscribeTo(sc.scStateOutMsg)
    imu.PMatrixGyro = (np.eye(3) * 1e-5).tolist()
    imu.PMatrixAccel = (np.eye(3) * 1e-4).tolist()
    imu.setWalkBoundsGyro(np.array([1e-4] * 3))
    imu.setWalkBoundsAccel(np.array([1e-3] * 3))
    sim.AddModelToTask("physics", imu)
    sim.InitializeSimulation()
    t0, c0 = time.perf_counter(), time.process_time()
    sim.ConfigureStopTime(macros.sec2nano(steps * dt_s))
    sim.ExecuteSimulation()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"steps": steps, "us_per_step": wall / steps * 1e6,
            "cpu_us_per_step": cpu / steps * 1e6, "version": bsk_version,
            "model": "spacecraft (RK4) + point-mass Moon + body force + imuSensor"}


def _child_echo(addr: str, variant: str, spin_us: str, command_len: str) -> None:
    _, command = _payloads()
    if variant == "unix-seqpacket":
        import socket
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.settimeout(30.0)
        sock.connect(addr)
        while True:
            msg = sock.recv(8192)
            if not msg:
                break
            sock.send(command)
        sock.close()
        return
    import zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(addr)
    recv = _receiver(sock, variant, float(spin_us))
    while True:
        msg = recv()
        if not msg:
            break
        sock.send(command)
    sock.close()
    ctx.term()


def _child_main(argv: list[str]) -> int:
    kind, rest = argv[0], argv[1:]
    if kind == "echo":
        _child_echo(*rest)
        return 0
    fn = {"run": _child_run, "plant": _child_plant, "basilisk": _child_basilisk}[kind]
    print(json.dumps(fn(*rest)))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
