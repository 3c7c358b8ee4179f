"""How float32 position storage would change a landing (docs/hil.md, "Board budget").

A Pico's MicroPython computes in float32; the PC and the virtual board in float64. This
study runs the flight software in-process (no link) and rounds the navigator's position and
velocity to float32 after every IMU sample, everything else staying float64 -- the largest
float32 effect, not all of it:

    python tests/pico_float32_study.py terminal nominal

prints, per scenario: float64 as is, float32 position in the Moon-centred frame (as
fsw/nav.py kept it before it moved to a site-relative position), and float32 position
relative to the landing site (what fsw/nav.py keeps now; tests/test_fsw_float32.py checks it). Not a test: it
takes about a minute and reaches into fsw/nav.py's Navigator (``r``, ``v``, ``propagate``).
"""

import math
import struct
import sys

from fsw import nav as navmod
from fsw.core import FlightSoftware
from hil.scenario import load_scenario
from plant.lander import Command, LanderPlant

ORIGINAL = navmod.Navigator.propagate


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def rounding(origin):
    """A propagate that rounds (r - origin) and v to float32 after every sample."""
    def propagate(self, imu, calibrating=False):
        for s in imu:
            ORIGINAL(self, [s], calibrating)
            r = self.r  # Moon-centred; fsw/nav.py keeps d = r - site origin
            r32 = tuple(origin[i] + f32(r[i] - origin[i]) for i in range(3))
            self.d = tuple(r32[i] - self.origin[i] for i in range(3))
            self.v = tuple(f32(x) for x in self.v)
    return propagate


def run(name, mode):
    cfg = load_scenario(name)
    plant = LanderPlant(cfg)
    frame = plant.reset(1)
    config = plant.fsw_config()
    site = tuple(u * config["site"]["radius_m"] for u in config["site"]["up"])
    navmod.Navigator.propagate = {"float64": ORIGINAL, "float32 MCI": rounding((0.0, 0.0, 0.0)),
                                  "float32 site-relative": rounding(site)}[mode]
    try:
        fsw = FlightSoftware(config)
        while not plant.done:
            throttle, torque, _, nav7, _ = fsw.step(frame)
            frame = plant.step(Command(throttle, tuple(torque)))
    finally:
        navmod.Navigator.propagate = ORIGINAL
    truth = plant.truth()
    print(f"{name:10s} {mode:22s} {plant.outcome.outcome}: {plant.outcome.reason}; nav error "
          f"{math.dist(nav7[:3], truth['r_m']):.0f} m, {math.dist(nav7[3:6], truth['v_mps']):.2f} m/s")


if __name__ == "__main__":
    for scenario in sys.argv[1:] or ["terminal"]:
        for how in ("float64", "float32 MCI", "float32 site-relative"):
            run(scenario, how)
