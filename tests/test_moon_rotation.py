"""The rotating Moon: frames, a surface point's motion, a hover over a fixed point, and the
invariants that hold in each frame. Expected values are computed here from the rotation
rate and the geometry, never taken from a run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hil.scenario import scenario_from_dict
from plant.lander import Command, LanderPlant
from plant.moon import GM_M3PS2, MEAN_RADIUS_M, SIDEREAL_RATE_RADPS, Moon

W = SIDEREAL_RATE_RADPS


def test_sidereal_rate_is_the_27_3217_day_period() -> None:
    assert W == pytest.approx(2.0 * math.pi / (27.3217 * 86400.0), rel=1e-4)


@pytest.mark.parametrize("lat_deg, speed_mps", [(0.0, 4.62), (60.0, 2.31)])
def test_a_surface_point_moves_at_omega_r_cos_latitude_in_the_inertial_frame(
        lat_deg: float, speed_mps: float) -> None:
    moon = Moon()
    lat, lon = math.radians(lat_deg), math.radians(25.0)
    p = [MEAN_RADIUS_M * math.cos(lat) * math.cos(lon),
         MEAN_RADIUS_M * math.cos(lat) * math.sin(lon), MEAN_RADIUS_M * math.sin(lat)]
    t, dt = 5000.0, 1.0
    a = np.array(moon.to_inertial(*p, t - dt))
    b = np.array(moon.to_inertial(*p, t + dt))
    v = (b - a) / (2.0 * dt)                               # central difference
    assert float(np.linalg.norm(v)) == pytest.approx(speed_mps, abs=0.005)   # missions.md
    assert float(np.linalg.norm(v)) == pytest.approx(W * MEAN_RADIUS_M * math.cos(lat), rel=1e-9)
    here = np.array(moon.to_inertial(*p, t))
    np.testing.assert_allclose(v, moon.ground_velocity(*here), rtol=1e-9, atol=1e-12)
    assert v[2] == 0.0                                     # about the pole: no z motion
    # The frames coincide at t = 0 and the conversions invert each other.
    assert moon.to_inertial(*p, 0.0) == pytest.approx(p, abs=1e-9)
    assert moon.to_fixed(*moon.to_inertial(*p, t), t) == pytest.approx(p, abs=1e-6)
    # After a quarter of a sidereal day the point has turned 90 degrees about z.
    q = moon.to_inertial(*p, 0.5 * math.pi / W)
    assert q == pytest.approx((-p[1], p[0], p[2]), abs=1e-6)


def hover_plant(lat_deg: float, rotation: float | None = None, **extra) -> LanderPlant:
    data = {
        "name": "hover",
        "target": {"lat_deg": lat_deg, "lon_deg": 10.0},
        "initial": {"altitude_m": 30.0, "downrange_m": 0.0, "crossrange_m": 0.0,
                    "horizontal_speed_mps": 0.0, "vertical_speed_mps": 0.0,
                    "pitch_deg": 0.0, "coast_s": 0.0},
        "vehicle": {"throttle_time_constant_s": 0.0},
        "imu": {"preset": "ideal"},
        "knowledge": {"position_sigma_m": 0.0, "velocity_sigma_mps": 0.0,
                      "attitude_sigma_deg": 0.0},
        "terrain": {"craters": [{"downrange_m": 0.0, "crossrange_m": 0.0, "radius_m": 150.0,
                                 "depth_m": 20.0, "rim_height_m": 5.0}]},
    }
    if rotation is not None:
        data["moon"] = {"rotation_rad_s": rotation}
    for k, v in extra.items():
        data.setdefault(k, {}).update(v)
    return LanderPlant(scenario_from_dict(data))


@pytest.mark.parametrize("lat_deg", [0.0, 60.0])
def test_hover_over_a_fixed_point_of_the_rotating_ground(lat_deg: float) -> None:
    # Start at rest relative to the ground 30 m over a crater's centre (50 m over its
    # floor); hold the height with the engine along the local up. Relative to the ground
    # the lander stays put while the inertial position sweeps omega R cos(lat) t.
    plant = hover_plant(lat_deg)
    plant.reset(1)
    t0 = plant.truth()
    assert t0["horiz_speed_mps"] < 1e-9 and abs(t0["vert_speed_mps"]) < 1e-9
    v_inertial = float(np.linalg.norm(t0["v_mps"]))
    assert v_inertial == pytest.approx(W * math.hypot(*t0["r_m"][0:2]), rel=1e-12)
    h0 = t0["alt_m"]
    assert h0 == pytest.approx(30.0 + 20.0, abs=1e-6)      # over the crater floor
    veh = plant.cfg.vehicle
    seconds = 30.0
    frames = round(seconds * plant.cfg.rates.frame_hz)
    worst_ground = worst_alt = 0.0
    for _ in range(frames):
        t = plant.truth()
        r = float(np.linalg.norm(t["r_m"]))
        rho = math.hypot(t["r_m"][0], t["r_m"][1])
        # Weight less the radial part of the centrifugal acceleration, plus a gentle
        # height hold (the mass falls as it burns).
        g_eff = GM_M3PS2 / r ** 2 - W * W * rho * rho / r
        a = g_eff + 0.5 * (h0 - t["alt_m"]) - 1.0 * t["vert_speed_mps"]
        plant.step(Command(t["mass_kg"] * a / veh.max_thrust_n))
        t = plant.truth()
        worst_ground = max(worst_ground, math.hypot(t["downrange_m"], t["crossrange_m"]))
        worst_alt = max(worst_alt, abs(t["alt_m"] - h0))
    t1 = plant.truth()
    assert not plant.done
    # The attitude is held in inertial space, so the engine leans off the turning local
    # vertical by omega t: a horizontal push g omega t that moves the lander g omega t^3 / 6
    # (2 cm after 30 s). Nothing else moves it over the ground.
    g = GM_M3PS2 / float(np.linalg.norm(t1["r_m"])) ** 2
    lean_drift = g * W * seconds ** 3 / 6.0
    assert worst_ground < 2.0 * lean_drift + 0.005, (worst_ground, lean_drift)
    assert worst_alt < 0.05
    swept = float(np.linalg.norm(t1["r_m"] - t0["r_m"]))
    ground_speed = W * math.hypot(*t0["r_m"][0:2])
    assert swept == pytest.approx(ground_speed * seconds, rel=1e-3)   # 139 m at the equator
    assert t1["horiz_speed_mps"] < 0.01                    # ... but not over the ground
    # The altimeter casts its ray on the Moon-fixed terrain: it still sees the crater floor
    # straight below (in the inertial frame the floor would be 139 m away, under the rim).
    assert plant.altimeter.last_true_range_m == pytest.approx(h0, abs=0.1)


def test_without_rotation_the_same_start_stays_put_in_inertial_space() -> None:
    plant = hover_plant(0.0, rotation=0.0)
    plant.reset(1)
    t0 = plant.truth()
    assert float(np.linalg.norm(t0["v_mps"])) == 0.0
    np.testing.assert_array_equal(t0["r_fixed_m"], t0["r_m"])


def test_coast_keeps_energy_in_mci_and_the_jacobi_integral_in_the_moon_fixed_frame() -> None:
    # Engine off, 120 s of a PDI-like coast (15 km, 1692 m/s over the ground): the inertial
    # energy and angular momentum are constant, and in the rotating frame the Jacobi
    # integral 1/2 |v_ground|^2 - GM/r - 1/2 omega^2 (x^2 + y^2) and
    # h_z = (r x v_ground)_z + omega (x^2 + y^2) are too (computed from the plant's
    # ground-relative truth, so the frame conversions must be exact to hold).
    plant = hover_plant(0.0, initial={"altitude_m": 15000.0, "horizontal_speed_mps": 1692.0,
                                      "downrange_m": -450000.0})
    plant.reset(1)

    def invariants(t):
        r, v = t["r_m"], t["v_mps"]
        rf, vg = t["r_fixed_m"], t["v_ground_mps"]
        rn = float(np.linalg.norm(r))
        e = 0.5 * float(v @ v) - GM_M3PS2 / rn
        h = np.cross(r, v)
        rho2 = rf[0] ** 2 + rf[1] ** 2
        jac = 0.5 * float(vg @ vg) - GM_M3PS2 / rn - 0.5 * W * W * rho2
        hz_rot = float(np.cross(rf, vg)[2]) + W * rho2
        return e, h, jac, hz_rot

    e0, h0, j0, hz0 = invariants(plant.truth())
    assert hz0 == pytest.approx(h0[2], rel=1e-12)
    for _ in range(120):
        for _ in range(round(plant.cfg.rates.frame_hz)):
            plant.step(Command(0.0))
        e, h, j, hz = invariants(plant.truth())
        assert abs(e - e0) <= 1e-11 * abs(e0)
        assert float(np.linalg.norm(h - h0)) <= 1e-11 * float(np.linalg.norm(h0))
        assert abs(j - j0) <= 1e-11 * abs(j0)
        assert abs(hz - hz0) <= 1e-11 * abs(hz0)
    # The ground speed differs from the inertial one by omega R (4.6 m/s): the Jacobi
    # integral is not the inertial energy.
    assert abs(j0 - e0) > 1000.0


def test_touchdown_speeds_are_relative_to_the_ground() -> None:
    # Dropped from 5 m at rest over the rotating equator: it lands straight down (its
    # inertial velocity is 4.6 m/s sideways), at the free-fall speed.
    plant = hover_plant(0.0, terrain={"craters": []}, initial={"altitude_m": 5.0})
    plant.reset(1)
    while not plant.done:
        plant.step(Command(0.0))
    td = plant.outcome.touchdown
    assert td["horizontal_speed_mps"] < 1e-3
    g = GM_M3PS2 / MEAN_RADIUS_M ** 2
    fall = 5.0 - plant.cfg.gear.com_height_m             # until the footpads touch
    assert td["vertical_speed_mps"] == pytest.approx(math.sqrt(2.0 * g * fall), abs=0.01)
    assert plant.outcome.outcome == "crashed"            # 3.3 m/s at 1200 kg: gear overload


def test_hello_carries_the_moon() -> None:
    plant = hover_plant(0.0, moon={"gm_m3ps2": 4.9e12, "radius_m": 1737000.0,
                                   "rotation_rad_s": 1e-6})
    plant.reset(1)
    assert plant.fsw_config()["moon"] == {"gm_m3ps2": 4.9e12, "radius_m": 1737000.0,
                                          "rotation_rad_s": 1e-6}
    # The reference sphere is the given radius: the site is at radius + terrain height.
    assert plant.terrain.site_radius_m == pytest.approx(1737000.0 - 20.0, abs=1e-6)
