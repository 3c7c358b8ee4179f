"""Benchmark: the plant's cost per physics step, beside Basilisk's spacecraft + IMU step.

    .venv/bin/python bench/plant_step.py [--scenario nominal] [--frames N] [--repeats 3]
                                         [--no-basilisk] [--json FILE]

1. The scenario is flown once by fsil's own flight software in this process, recording the
   command of every frame (not timed).
2. Then, in alternating blocks (``--repeats`` times each, so that all see the same load on a
   shared machine):

   * plant: ``LanderPlant.step`` replaying those commands from ``reset(seed)``: the whole
     plant per physics step (rigid body, IMU sample, altimeter, velocimeter, terrain,
     faults, touchdown) on the compiled kernel (``plant/kernel.py``);
   * plant, reference path: the same with ``LanderPlant(cfg, kernel=False)`` (pure Python;
     bit for bit the same frames, ``tests/test_kernel.py``);
   * Basilisk (if the ``bsk`` package imports): a Spacecraft hub (point-mass Moon gravity,
     RK4, an external force and torque) with an ImuSensor, at the plant's physics rate.

3. The kernel's one-off costs, each in a fresh process: compiling it (an empty
   ``NUMBA_CACHE_DIR``), loading it from that cache, importing numba; and how many frames
   the compilation takes to pay for itself.

Per step figures are the median over the blocks of process CPU time (``time.process_time``,
less sensitive to other processes than wall time; wall time in ``--json``). The ratio
plant / Basilisk is the target of issue 9 (<= 1). The machine's load (``os.getloadavg``) is
printed beside the figures.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fsw.core import FlightSoftware  # noqa: E402
from hil.scenario import load_scenario  # noqa: E402
from plant.lander import Command, LanderPlant  # noqa: E402


def _fsw_stepper(fsw):
    """Call the flight software's step with a frame or with its fields (either contract)."""
    params = [p for p in inspect.signature(fsw.step).parameters.values()
              if p.default is inspect.Parameter.empty]
    if len(params) == 1:
        return lambda f: fsw.step(f)
    return lambda f: fsw.step(f.seq, f.t_us, f.imu, f.alt)


def record(name: str, seed: int, max_frames: int | None) -> tuple[list[Command], list]:
    """Fly the scenario with the default flight software; the commands and the states."""
    plant = probe = LanderPlant(load_scenario(name))
    frame = plant.reset(seed)
    step = _fsw_stepper(FlightSoftware(plant.fsw_config(), "default"))
    cmds, states = [], []
    while not plant.done and (max_frames is None or len(cmds) < max_frames):
        out = step(frame)
        cmd = probe._limit(Command(out[0], tuple(out[1])))  # as the plant applies it
        cmds.append(cmd)
        states.append(list(plant.state))
        frame = plant.step(cmd)
    return cmds, states


def time_plant(name: str, seed: int, cmds: list[Command], kernel: bool
               ) -> tuple[float, float, int]:
    """(CPU s, wall s, physics steps) of replaying ``cmds``."""
    plant = LanderPlant(load_scenario(name), kernel=kernel)
    plant.reset(seed)
    step = plant.step
    c0, w0 = time.process_time(), time.perf_counter()
    for c in cmds:
        step(c)
        if plant.done:
            break
    return time.process_time() - c0, time.perf_counter() - w0, plant.step_index


_ONE_OFF = """
import sys, time
sys.path.insert(0, sys.argv[1])
c0 = time.process_time()
import numba
c1 = time.process_time()
from hil.scenario import load_scenario
from plant.lander import LanderPlant
cfg = load_scenario(sys.argv[2])
LanderPlant(cfg, kernel=False)   # everything but the kernel imported and warmed up
c2 = time.process_time()
LanderPlant(cfg, kernel=False)
c3 = time.process_time()
LanderPlant(cfg)                 # the same and the kernel, loaded or compiled
c4 = time.process_time()
from plant import kernel
print(c1 - c0, (c4 - c3) - (c3 - c2), sum(kernel.fly.stats.cache_hits.values()))
"""


def one_off_costs(name: str) -> dict[str, float]:
    """CPU s of importing numba, compiling the kernel, loading it from the cache (fresh
    processes, an empty cache directory)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        out = [subprocess.run([sys.executable, "-c", _ONE_OFF, str(ROOT), name], env=env,
                              check=True, capture_output=True, text=True).stdout.split()
               for _ in range(2)]
    (imp, compile_s, hits0), (_, load_s, hits1) = out
    assert (hits0, hits1) == ("0", "1"), "the kernel's cache did not work"
    return {"import_numba_s": float(imp), "compile_s": float(compile_s),
            "cache_load_s": float(load_s)}


def basilisk_step(n_steps: int, dt_s: float):
    """(CPU s, wall s, steps) of a Basilisk Spacecraft + ImuSensor run; None without bsk."""
    try:
        from Basilisk.simulation import extForceTorque, imuSensor, spacecraft
        from Basilisk.utilities import SimulationBaseClass, macros, simIncludeGravBody
    except ImportError:
        return None
    sim = SimulationBaseClass.SimBaseClass()
    proc = sim.CreateNewProcess("plant")
    proc.addTask(sim.CreateNewTask("physics", macros.sec2nano(dt_s)))
    sc = spacecraft.Spacecraft()
    sc.hub.mHub = 1200.0
    sc.hub.IHubPntBc_B = [[700.0, 0.0, 0.0], [0.0, 700.0, 0.0], [0.0, 0.0, 500.0]]
    sc.hub.r_CN_NInit = [1737.4e3 + 15000.0, 0.0, 0.0]
    sc.hub.v_CN_NInit = [0.0, 1692.0, 0.0]
    grav = simIncludeGravBody.gravBodyFactory()
    grav.createMoon().isCentralBody = True
    grav.addBodiesTo(sc)
    ext = extForceTorque.ExtForceTorque()
    ext.extForce_B = [0.0, 0.0, 2000.0]
    ext.extTorquePntB_B = [1.0, 2.0, 3.0]
    sc.addDynamicEffector(ext)
    imu = imuSensor.ImuSensor()
    imu.setBodyToPlatformDCM(0.0, 0.0, 0.0)
    imu.PMatrixGyro = [[1e-6, 0.0, 0.0], [0.0, 1e-6, 0.0], [0.0, 0.0, 1e-6]]
    imu.PMatrixAccel = [[1e-5, 0.0, 0.0], [0.0, 1e-5, 0.0], [0.0, 0.0, 1e-5]]
    imu.setWalkBoundsGyro([1e-5] * 3)
    imu.setWalkBoundsAccel([1e-4] * 3)
    imu.scStateInMsg.subscribeTo(sc.scStateOutMsg)
    for model in (sc, ext, imu):
        sim.AddModelToTask("physics", model)
    sim.InitializeSimulation()
    sim.ConfigureStopTime(macros.sec2nano(dt_s * 100))
    sim.ExecuteSimulation()
    c0, w0 = time.process_time(), time.perf_counter()
    sim.ConfigureStopTime(macros.sec2nano(dt_s * (100 + n_steps)))
    sim.ExecuteSimulation()
    return time.process_time() - c0, time.perf_counter() - w0, n_steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="nominal")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--frames", type=int, default=None, help="replay only the first N frames")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-basilisk", action="store_true")
    ap.add_argument("--json", type=pathlib.Path, default=None)
    a = ap.parse_args(argv)

    cfg = load_scenario(a.scenario)
    print(f"recording {a.scenario} seed {a.seed} with the default flight software ...",
          flush=True)
    cmds, states = record(a.scenario, a.seed, a.frames)
    probe = LanderPlant(cfg)
    dt_s, per_frame = probe.dt_s, probe.steps_per_frame
    blocks: dict[str, list[tuple[float, float, int]]] = {}
    for _ in range(a.repeats):
        blocks.setdefault("plant", []).append(time_plant(a.scenario, a.seed, cmds, True))
        blocks.setdefault("plant_reference", []).append(
            time_plant(a.scenario, a.seed, cmds, False))
        if not a.no_basilisk:
            b = basilisk_step(len(cmds) * per_frame, dt_s)
            if b is not None:
                blocks.setdefault("basilisk", []).append(b)
    one_off = one_off_costs(a.scenario)
    us = {k: statistics.median(c / n * 1e6 for c, _, n in v) for k, v in blocks.items()}
    wall = {k: statistics.median(w / n * 1e6 for _, w, n in v) for k, v in blocks.items()}
    steps = blocks["plant"][0][2]
    load = os.getloadavg()
    print(f"{a.scenario}: {len(cmds)} frames, {steps} physics steps at {1 / dt_s:g} Hz; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"{'':38s} {'CPU us/step':>12s} {'wall us/step':>13s}")
    names = {"plant": "plant step (all models), kernel", "plant_reference":
             "plant step, pure-Python reference", "basilisk": "Basilisk spacecraft + IMU step"}
    for k in names:
        if k in us:
            print(f"{names[k]:38s} {us[k]:12.2f} {wall[k]:13.2f}")
    ratios = {"kernel_speedup": us["plant_reference"] / us["plant"]}
    print(f"plant: reference / kernel = {ratios['kernel_speedup']:.2f}x")
    saved_s_per_frame = (us["plant_reference"] - us["plant"]) * per_frame * 1e-6
    ratios["frames_to_pay_compile"] = one_off["compile_s"] / saved_s_per_frame \
        if saved_s_per_frame > 0 else float("inf")
    ratios["frames_to_pay_load"] = (one_off["cache_load_s"] + one_off["import_numba_s"]) / \
        saved_s_per_frame if saved_s_per_frame > 0 else float("inf")
    print(f"kernel one-off CPU: compile {one_off['compile_s']:.2f} s (once per machine and "
          f"edit), cache load {one_off['cache_load_s']:.2f} s + import numba "
          f"{one_off['import_numba_s']:.2f} s (per process); paid back after "
          f"{ratios['frames_to_pay_compile']:.0f} and {ratios['frames_to_pay_load']:.0f} frames "
          f"({steps / per_frame:.0f} in this run)")
    if "basilisk" in us:
        ratios["plant_over_basilisk"] = us["plant"] / us["basilisk"]
        print(f"plant / Basilisk = {ratios['plant_over_basilisk']:.2f} (target <= 1)")
    else:
        print("Basilisk: not installed (pip install bsk) or --no-basilisk")
    if a.json:
        a.json.write_text(json.dumps({"scenario": a.scenario, "frames": len(cmds),
                                      "physics_steps": steps, "cpu_us_per_step": us,
                                      "wall_us_per_step": wall, "ratios": ratios,
                                      "one_off_cpu_s": one_off,
                                      "loadavg": load}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
