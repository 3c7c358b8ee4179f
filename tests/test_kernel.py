"""The plant's compiled kernel, both builds (C, plant/ckernel.py from plant/kernel.c, and
numba, plant/kernel.py), against the pure-Python reference path (``LanderPlant(cfg,
kernel=False)``): every frame the same, bit for bit (compared through ``repr``, which tells
-0.0 from 0.0 and an int time stamp from a float), over a whole descent flown by fsil's
flight software with faults, gear contact and a rotating Moon, and over short runs that
reach the kernel's other branches. Then the builds' on-disk caches: a second process loads
the compiled kernel instead of compiling it; the C build keeps numba out of the process."""

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


@pytest.fixture(params=["c", "numba"])
def build(request, monkeypatch) -> str:
    """The kernel build the plants of a test fly on (FSIL_PLANT_KERNEL, plant/kernels.py)."""
    monkeypatch.setenv("FSIL_PLANT_KERNEL", request.param)
    return request.param


def twins(data: dict) -> tuple[LanderPlant, LanderPlant]:
    cfg = scenario_from_dict(data)
    fast = LanderPlant(cfg, kernel=True)
    assert fast._kernel.__name__ == {"c": "plant.ckernel", "numba": "plant.kernel"}[
        os.environ["FSIL_PLANT_KERNEL"]]
    return fast, LanderPlant(cfg, kernel=False)


def test_a_whole_descent_with_faults_gear_and_rotation_is_bit_for_bit_the_reference(
        monkeypatch) -> None:
    # On the C build, the default (the numba build's branches: below, both builds).
    monkeypatch.setenv("FSIL_PLANT_KERNEL", "c")
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
def test_the_kernels_branches_are_bit_for_bit_the_reference(case: str, build: str) -> None:
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
import os
os.environ["FSIL_PLANT_KERNEL"] = "numba"
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


_C_PROBE = """
import sys
from hil.scenario import load_scenario
from plant.lander import Command, LanderPlant
p = LanderPlant(load_scenario("terminal"))
p.reset(1)
p.step(Command(0.5))
print(p._kernel.__name__, "numba" in sys.modules, "llvmlite" in sys.modules)
"""


def test_the_c_build_is_cached_and_keeps_numba_out_of_the_plant(tmp_path) -> None:
    env = {**os.environ, "FSIL_KERNEL_CACHE_DIR": str(tmp_path), "FSIL_PLANT_KERNEL": "auto"}
    first = subprocess.run([sys.executable, "-c", _C_PROBE], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["plant.ckernel", "False", "False"]
    built = list(tmp_path.glob("fsil-kernel-*.so"))
    assert len(built) == 1 and not list(tmp_path.glob(".fsil-kernel-*"))   # no leftovers
    # The next process loads the library without compiling: with no compiler on PATH.
    stamp = built[0].stat().st_mtime_ns
    second = subprocess.run([sys.executable, "-c", _C_PROBE], cwd=ROOT,
                            env={**env, "PATH": str(tmp_path), "CC": ""},
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["plant.ckernel", "False", "False"]
    assert built[0].stat().st_mtime_ns == stamp


def test_without_a_compiler_the_plant_flies_on_numba_and_c_says_why(tmp_path) -> None:
    env = {**os.environ, "FSIL_KERNEL_CACHE_DIR": str(tmp_path), "PATH": str(tmp_path),
           "CC": ""}
    auto = subprocess.run([sys.executable, "-c", _C_PROBE], cwd=ROOT,
                          env={**env, "FSIL_PLANT_KERNEL": "auto"},
                          capture_output=True, text=True, timeout=300)
    assert auto.returncode == 0, auto.stderr
    assert auto.stdout.split() == ["plant.kernel", "True", "True"]
    forced = subprocess.run([sys.executable, "-c", _C_PROBE], cwd=ROOT,
                            env={**env, "FSIL_PLANT_KERNEL": "c"},
                            capture_output=True, text=True, timeout=300)
    assert forced.returncode != 0
    assert "FSIL_PLANT_KERNEL=c: no C compiler" in forced.stderr


def test_the_c_kernel_refuses_arrays_it_would_overrun() -> None:
    import numpy as np

    from plant import ckernel
    from plant.kernel_layout import N_IO, N_OUT, N_P
    assert ckernel.available() is None
    io, p, a, err = np.zeros(N_IO), np.zeros(N_P), np.zeros((6, 3)), np.zeros((4, 6))
    p[11] = 1.0          # P_SPI
    assert ckernel.fly(io, 2, p, a, err, np.zeros((2, N_OUT))) == (2, 2)
    for bad in [(io, 3, p, a, err, np.zeros((2, N_OUT))),          # more steps than rows
                (io, 1, p, a, np.zeros((4, 5)), np.zeros((2, N_OUT))),
                (io[:-1], 1, p, a, err, np.zeros((2, N_OUT))),
                (io, 1, p, np.zeros((6, 3), dtype=np.float32), err, np.zeros((2, N_OUT))),
                (io, 1, p, a, err, np.zeros((2, 2 * N_OUT))[:, ::2])]:
        with pytest.raises(ValueError, match="plant kernel"):
            ckernel.fly(*bad)
    assert ckernel.fly(io, 2, p, a, err, np.zeros((2, N_OUT))) == (2, 2)   # and again
