"""The flight software's numeric choices hold in single precision (a Pico's MicroPython).

The navigation state is rounded to float32 after every IMU sample -- position (kept relative
to the landing site), velocity and attitude -- and the terminal descent must still land.
In the Moon-centred frame a float32 resolves only 0.125 m; the site-relative position is
what makes this pass.
"""

from __future__ import annotations

import struct

import pytest

from fsw import nav as navmod
from fsw.core import FlightSoftware
from hil.scenario import load_scenario
from plant.lander import Command, LanderPlant


def f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


@pytest.fixture
def float32_nav(monkeypatch):
    original = navmod.Navigator.propagate

    def propagate(self, imu, calibrating=False):
        for s in imu:
            original(self, [s], calibrating)
            self.d = tuple(f32(x) for x in self.d)
            self.v = tuple(f32(x) for x in self.v)
            self.q = tuple(f32(x) for x in self.q)
    monkeypatch.setattr(navmod.Navigator, "propagate", propagate)


def _land(name: str) -> tuple:
    plant = LanderPlant(load_scenario(name))
    frame = plant.reset(1)
    fsw = FlightSoftware(plant.fsw_config())
    worst = 0.0
    while not plant.done:
        thr, tq, _, nav7, _ = fsw.step(frame)
        frame = plant.step(Command(thr, tq))
        t = plant.truth()
        if t["alt_m"] < 100.0:
            worst = max(worst, abs(nav7[6] - t["alt_m"]))
    return plant.outcome, worst


def test_terminal_lands_with_float32_navigation_state(float32_nav):
    outcome, worst_alt_err = _land("terminal")
    assert outcome.outcome == "landed", outcome.reason
    assert worst_alt_err < 2.0


def test_site_relative_altitude_keeps_precision_in_float32():
    """altitude_m() of a point 1.5 m above the datum, all inputs rounded to float32."""
    R = f32(1737.4e3)
    nav = navmod.Navigator((R + 1.5, 0.0, 0.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), 0, R,
                           0.5, 0.001, (0.0, 0.0, -1.0), 30.0, 0.03, site_up=(1.0, 0.0, 0.0))
    nav.d = tuple(f32(x) for x in nav.d)
    assert abs(nav.altitude_m() - 1.5) < 1e-3
