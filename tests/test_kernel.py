"""The plant's compiled kernel (plant/kernel.py) against the pure-Python reference path
(``LanderPlant(cfg, kernel=False)``): every frame the same, bit for bit (compared through
``repr``, which tells -0.0 from 0.0 and an int time stamp from a float), over a whole
descent flown by fsil's flight software with faults, gear contact and a rotating Moon, and
over short runs that reach the kernel's other branches. Then numba's on-disk cache: a second
process loads the compiled kernel instead of compiling it."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tomllib

import numba
import pytest

from fsw.core import FlightSoftware
from hil.scenario import scenario_from_dict
from plant.config import FaultConfig
from plant.lander import Command, LanderPlant
from plant.moon import GM_M3PS2, MEAN_RADIUS_M

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIDEREAL = 2.6617e-6


def frame_repr(plant: LanderPlant, frame) -> str:
    """Everything a frame and the plant's state carry, with the types of the time stamps."""
    return repr((frame, plant.state, [type(s[0]) for s in frame.imu], plant.step_index,
                 plant.t_us, plant.propellant_out_t_us, plant._contact_t_us))


def twins(data: dict) -> tuple[LanderPlant, LanderPlant]:
    cfg = scenario_from_dict(data)
    return LanderPlant(cfg, kernel=True), LanderPlant(cfg, kernel=False)


def test_a_whole_descent_with_faults_gear_and_rotation_is_bit_for_bit_the_reference() -> None:
    data = tomllib.loads((ROOT / "hil/scenarios/terminal.toml").read_text())
    data.setdefault("moon", {})["rotation_rad_s"] = SIDEREAL   # whatever the file says
    data["gear"] = {"enabled": True}
    data["faults"] = [   # faults in the general path, none at all from 70.5 s to 200 s
        {"sensor": "imu", "kind": "bias", "channel": "gyro", "axis": 1, "value": 0.001,
         "at_time_s": 5.0, "until_time_s": 20.0},
        {"sensor": "altimeter", "kind": "spike", "magnitude": 50.0, "value": 0.05,
         "below_altitude_m": 1500.0, "until_time_s": 60.0},
        {"sensor": "velocimeter", "kind": "dropout", "value": 0.3, "at_time_s": 30.0,
         "until_time_s": 50.0},
        {"sensor": "imu", "kind": "off", "at_time_s": 70.0, "until_time_s": 70.5},
    ]
    late = FaultConfig(sensor="altimeter", kind="noise", value=0.2)   # armed at 200 s
    fast, ref = twins(data)
    f_fast, f_ref = fast.reset(3), ref.reset(3)
    fsw = FlightSoftware(fast.fsw_config(), "default")
    frames = quiet = 0
    while not fast.done:
        assert frame_repr(fast, f_fast) == frame_repr(ref, f_ref), f"frame {frames}"
        out = fsw.step(f_fast)
        command = Command(out[0], tuple(out[1]))
        if fast.t_us == 200_000_000:        # as the fault-control channel arms one
            fast.faults.add(late, "control", fast.t_us)
            ref.faults.add(late, "control", ref.t_us)
        quiet += not fast.faults
        f_fast, f_ref = fast.step(command), ref.step(command)
        frames += 1
    assert ref.done and frame_repr(fast, f_fast) == frame_repr(ref, f_ref)
    assert repr(fast.outcome) == repr(ref.outcome)
    assert fast.faults.summary() == ref.faults.summary()
    assert fast.imu.samples == ref.imu.samples > 4 * 256      # the error block refilled
    # The run went where it was meant to: every fault fired, a stretch without any,
    # first contact on the legs and settling on them, on the turning Moon.
    assert all(f["fired_t_s"] is not None for f in fast.faults.summary())
    assert quiet > 1000
    assert fast._contact_t_us is not None and fast.t_us > fast._contact_t_us
    assert fast.moon.rotating
    assert fast.outcome.outcome in ("landed", "crashed", "tipped_over"), fast.outcome


def _short(legs: bool, altitude_m: float, imu: dict, vehicle: dict | None = None,
           vertical_speed_mps: float = 0.0, gear: dict | None = None) -> dict:
    return {"name": "kernel", "moon": {"rotation_rad_s": 0.0},
            "initial": {"altitude_m": altitude_m, "downrange_m": 0.0, "crossrange_m": 0.0,
                        "horizontal_speed_mps": 0.0, "vertical_speed_mps": vertical_speed_mps,
                        "pitch_deg": 0.0, "coast_s": 0.0},
            "imu": imu, "vehicle": vehicle or {}, "gear": {"enabled": legs, **(gear or {})},
            "run": {"max_sim_time_s": 30.0}}


G = GM_M3PS2 / MEAN_RADIUS_M ** 2
CASES = {
    # Full throttle and a torque with a unit that saturates (0.1 g, 1 deg/s) and does not
    # quantise (the other cases do), so that a clipped sample reads exactly the limit.
    "saturating": (_short(True, 500.0, {"preset": "mems", "accel_range_g": 0.1,
                                        "gyro_range_dps": 1.0, "accel_quantum_mps": 0.0,
                                        "gyro_quantum_rad": 0.0}),
                   lambda p: Command(1.0, (40.0, -30.0, 20.0))),
    # No legs, engine off: the contact falls inside a frame's kernel call.
    "no_gear_drop": (_short(False, 20.0, {"preset": "tactical"}, vertical_speed_mps=-3.0),
                     lambda p: Command(0.0)),
    # One kg of propellant at full throttle, no throttle lag: it runs out within a frame.
    "burn_out": (_short(True, 50.0, {"preset": "navigation"},
                        {"propellant_kg": 1.0, "throttle_time_constant_s": 0.0}),
                 lambda p: Command(1.0)),
    # Hovering, then sinking onto the legs with the engine on: settling after contact.
    "hover_down": (_short(True, 8.0, {"preset": "tactical"}, gear={"settle_time_s": 3.0}),
                   lambda p: Command(0.97 * p.state[13] * G / p.cfg.vehicle.max_thrust_n)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_kernels_branches_are_bit_for_bit_the_reference(case: str) -> None:
    data, policy = CASES[case]
    fast, ref = twins(data)
    f_fast, f_ref = fast.reset(5), ref.reset(5)
    saturated = False
    while not fast.done:
        assert frame_repr(fast, f_fast) == frame_repr(ref, f_ref)
        command = policy(ref)
        f_fast, f_ref = fast.step(command), ref.step(command)
        lim = fast.imu._limit
        saturated |= any(abs(s[1 + i]) == lim[i] for s in f_fast.imu for i in range(6))
    assert ref.done and frame_repr(fast, f_fast) == frame_repr(ref, f_ref)
    assert repr(fast.outcome) == repr(ref.outcome)
    if case == "saturating":
        assert saturated
    if case == "burn_out":
        assert fast.propellant_out_t_us is not None
    if case == "no_gear_drop":
        assert fast.gear is None and fast.outcome.outcome in ("landed", "crashed")


_CACHE_PROBE = """
from hil.scenario import load_scenario
from plant.lander import Command, LanderPlant
from plant import kernel
p = LanderPlant(load_scenario("terminal"))
p.reset(1)
p.step(Command(0.5))
print(sum(kernel.fly.stats.cache_hits.values()), sum(kernel.fly.stats.cache_misses.values()))
"""


def test_a_second_process_loads_the_compiled_kernel_from_the_cache(tmp_path) -> None:
    # NUMBA_CACHE_DIR (numba's own variable) points the cache elsewhere than the source
    # tree's plant/__pycache__; the first process compiles and writes, the next one loads.
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", _CACHE_PROBE], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert runs[0].stdout.split() == ["0", "1"]         # compiled (a miss) ...
    assert list(tmp_path.rglob("kernel.fly-*.nbi"))     # ... and written where it was told
    assert runs[1].stdout.split() == ["1", "0"]         # loaded, not compiled again


def test_without_a_writable_cache_directory_the_kernel_compiles_anyway(monkeypatch) -> None:
    # A read-only install with no writable home: numba finds no cache directory and would
    # refuse to decorate (RuntimeError at import); the kernel module compiles uncached.
    import numba.core.caching as caching

    from plant import kernel

    def read_only(self):
        raise PermissionError(13, "Read-only file system", self.get_cache_path())
    monkeypatch.setattr(caching._CacheLocator, "ensure_cache_path", read_only)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)

    def twice(x):
        return 2.0 * x
    with pytest.raises(RuntimeError, match="no locator"):
        numba.njit(cache=True)(twice)
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        compiled = kernel._compiled(twice)
    assert compiled(1.5) == 3.0
