"""Benchmark: the plant's cost per physics step, beside Basilisk's spacecraft + IMU step.

    .venv/bin/python bench/plant_step.py [--scenario nominal] [--frames N] [--repeats 3]
                                         [--no-basilisk] [--json FILE]

1. The scenario is flown once by fsil's own flight software in this process, recording the
   command of every frame (not timed).
2. Then, in alternating blocks (``--repeats`` times each, so that all see the same load on a
   shared machine):

   * plant: ``LanderPlant.step`` replaying those commands from ``reset(seed)``: the whole
     plant per physics step (rigid body, IMU sample, altimeter, terrain, faults, touchdown);
   * kernel: ``dynamics.rk4_step`` alone on the recorded states, and
     ``dynamics.rk4_step_reference`` (the plain form over ``derivative``, what the plant ran
     before the kernel; bit for bit the same results) on the same states;
   * Basilisk (if the ``bsk`` package imports): a Spacecraft hub (point-mass Moon gravity,
     RK4, an external force and torque) with an ImuSensor, at the plant's physics rate.

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
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fsw.core import FlightSoftware  # noqa: E402
from hil.scenario import load_scenario  # noqa: E402
from plant import dynamics  # noqa: E402
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


def time_plant(name: str, seed: int, cmds: list[Command]) -> tuple[float, float, int]:
    """(CPU s, wall s, physics steps) of replaying ``cmds``."""
    plant = LanderPlant(load_scenario(name))
    plant.reset(seed)
    step = plant.step
    c0, w0 = time.process_time(), time.perf_counter()
    for c in cmds:
        step(c)
        if plant.done:
            break
    return time.process_time() - c0, time.perf_counter() - w0, plant.step_index


def time_kernel(fn, states: list, cmds: list[Command], veh, dt_s: float, per_frame: int
                ) -> tuple[float, float, int]:
    c0, w0 = time.process_time(), time.perf_counter()
    n = 0
    for s, c in zip(states, cmds):
        thr, tq = c.throttle, c.torque_nm
        for _ in range(per_frame):
            s = fn(s, dt_s, thr, tq, veh)[0]
        n += per_frame
    return time.process_time() - c0, time.perf_counter() - w0, n


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
    veh, dt_s, per_frame = probe.veh, probe.dt_s, probe.steps_per_frame
    blocks: dict[str, list[tuple[float, float, int]]] = {}
    for _ in range(a.repeats):
        blocks.setdefault("plant", []).append(time_plant(a.scenario, a.seed, cmds))
        blocks.setdefault("kernel", []).append(
            time_kernel(dynamics.rk4_step, states, cmds, veh, dt_s, per_frame))
        blocks.setdefault("kernel_reference", []).append(
            time_kernel(dynamics.rk4_step_reference, states, cmds, veh, dt_s, per_frame))
        if not a.no_basilisk:
            b = basilisk_step(len(cmds) * per_frame, dt_s)
            if b is not None:
                blocks.setdefault("basilisk", []).append(b)
    us = {k: statistics.median(c / n * 1e6 for c, _, n in v) for k, v in blocks.items()}
    wall = {k: statistics.median(w / n * 1e6 for _, w, n in v) for k, v in blocks.items()}
    steps = blocks["plant"][0][2]
    load = os.getloadavg()
    print(f"{a.scenario}: {len(cmds)} frames, {steps} physics steps at {1 / dt_s:g} Hz; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"{'':34s} {'CPU us/step':>12s} {'wall us/step':>13s}")
    names = {"plant": "plant step (all models)", "kernel": "  rigid body (rk4_step)",
             "kernel_reference": "  rigid body, reference form", "basilisk":
             "Basilisk spacecraft + IMU step"}
    for k in names:
        if k in us:
            print(f"{names[k]:34s} {us[k]:12.2f} {wall[k]:13.2f}")
    ratios = {"kernel_speedup": us["kernel_reference"] / us["kernel"]}
    print(f"rigid body: reference / kernel = {ratios['kernel_speedup']:.2f}x")
    if "basilisk" in us:
        ratios["plant_over_basilisk"] = us["plant"] / us["basilisk"]
        print(f"plant / Basilisk = {ratios['plant_over_basilisk']:.2f} (target <= 1)")
    else:
        print("Basilisk: not installed (pip install bsk) or --no-basilisk")
    if a.json:
        a.json.write_text(json.dumps({"scenario": a.scenario, "frames": len(cmds),
                                      "physics_steps": steps, "cpu_us_per_step": us,
                                      "wall_us_per_step": wall, "ratios": ratios,
                                      "loadavg": load}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
