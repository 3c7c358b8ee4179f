"""Landing gear: strut stroke against the energy balance, the static tip-over angle against
its closed form, and every way a run after first contact ends. Expected values come from
the footpad geometry and energy, never from a run."""

from __future__ import annotations

import math

import pytest

from hil.scenario import scenario_from_dict
from plant.gear import static_tip_angle_deg
from plant.lander import Command, LanderPlant
from plant.moon import GM_M3PS2, MEAN_RADIUS_M

G = GM_M3PS2 / MEAN_RADIUS_M ** 2
STIFF = {"stiffness_n_per_m": 1e6, "tangential_stiffness_n_per_m": 1e6,
         "damping_n_s_per_m": 2e4, "tangential_damping_n_s_per_m": 2e4}


def plant_on(altitude_m: float, vertical_speed_mps: float = 0.0, slope_deg: float = 0.0,
             pitch_deg: float = 0.0, gear: dict | None = None, rotation: float = 0.0,
             horizontal_speed_mps: float = 0.0, lat_deg: float = 0.0) -> LanderPlant:
    """Engine off over the target; the site sloping down towards downrange (east)."""
    data = {
        "name": "gear",
        "moon": {"rotation_rad_s": rotation},
        "target": {"lat_deg": lat_deg},
        "initial": {"altitude_m": altitude_m, "downrange_m": 0.0, "crossrange_m": 0.0,
                    "horizontal_speed_mps": horizontal_speed_mps,
                    "vertical_speed_mps": vertical_speed_mps, "pitch_deg": pitch_deg,
                    "coast_s": 0.0},
        "imu": {"preset": "ideal"},
        "knowledge": {"position_sigma_m": 0.0, "velocity_sigma_mps": 0.0,
                      "attitude_sigma_deg": 0.0},
        "terrain": {"site_slope_deg": slope_deg, "site_slope_azimuth_deg": 90.0},
        "gear": gear or {},
    }
    return LanderPlant(scenario_from_dict(data))


def fly(plant: LanderPlant, policy=lambda p: Command(0.0), max_frames: int = 5000):
    plant.reset(1)
    for _ in range(max_frames):
        plant.step(policy(plant))
        if plant.done:
            return plant.outcome
    raise AssertionError("no verdict")


def test_static_tip_angle_closed_form() -> None:
    # Between two legs the support edge is R cos 45 out; along a leg, R.
    assert static_tip_angle_deg(1.5, 1.6, 45.0) == pytest.approx(
        math.degrees(math.atan(1.5 / math.sqrt(2.0) / 1.6)), abs=1e-12)       # 33.5 deg
    assert static_tip_angle_deg(1.5, 1.6, 0.0) == pytest.approx(
        math.degrees(math.atan(1.5 / 1.6)), abs=1e-12)                         # 43.2 deg


@pytest.mark.parametrize("offset_deg, outcome", [(-1.5, "landed"), (+1.0, "tipped_over")])
def test_stands_below_and_tips_above_the_static_tip_angle(offset_deg: float, outcome: str) -> None:
    # Set down on the slope with all four footpads on it (body z along the slope normal),
    # the downhill direction between two legs (legs at 45 deg from body x, which points
    # downhill). Stiff, well-damped legs and a high friction, so the static picture holds:
    # the release itself rocks the vehicle a little, which tips it up to ~0.7 deg early
    # (docs/plant.md), hence the asymmetric bracket.
    tip = static_tip_angle_deg(1.5, 1.6, 45.0)
    slope = tip + offset_deg
    plant = plant_on(1.6 / math.cos(math.radians(slope)), slope_deg=slope, pitch_deg=slope,
                     gear={**STIFF, "friction": 1.2, "max_rest_tilt_deg": 50.0,
                           "footpad_radius_m": 1.5, "com_height_m": 1.6,
                           "first_leg_azimuth_deg": 45.0})
    out = fly(plant)
    assert out.outcome == outcome, out.reason
    assert out.touchdown["slope_deg"] == pytest.approx(slope, abs=0.01)
    if outcome == "landed":
        assert out.touchdown["rest_tilt_deg"] == pytest.approx(slope, abs=0.5)
        assert out.touchdown["legs_down"] == 4


@pytest.mark.parametrize("v", [1.0, 1.4])
def test_stroke_absorbs_the_touchdown_energy(v: float) -> None:
    # Flat ground, four legs together, no damping: each leg springs to the crush load Fc
    # (elastic e = Fc / k), then crushes at Fc. At the bottom:
    #   1/2 m v^2 + m g (e + c) = 4 (Fc^2 / 2k + Fc c)   ->   c.
    fc, k = 2000.0, 1e5
    plant = plant_on(1.6 + 1e-4, -v, gear={"damping_n_s_per_m": 0.0, "crush_load_n": fc,
                                           "stiffness_n_per_m": k, "stroke_m": 1.0,
                                           "max_load_n": 1e9})
    plant.reset(1)
    while plant._contact_t_us is None or plant.truth()["vert_speed_mps"] < 0.0:
        plant.step(Command(0.0))
    m = plant.truth()["mass_kg"]
    v0 = plant.outcome.touchdown["vertical_speed_mps"] if plant.done else \
        plant._first_touch["vertical_speed_mps"]
    e = fc / k
    c = (0.5 * m * v0 * v0 + m * G * e - 4.0 * fc * fc / (2.0 * k)) / (4.0 * fc - m * G)
    strokes = plant.gear.stroke_m
    assert max(strokes) - min(strokes) < 1e-9                 # all four alike
    assert strokes[0] == pytest.approx(c, rel=0.02)


def test_engine_off_landing_comes_to_rest_and_lands() -> None:
    plant = plant_on(2.0)
    out = fly(plant)
    assert out.outcome == "landed", out.reason
    td = out.touchdown
    # First touch after a 0.4 m fall: sqrt(2 g 0.4); the old criteria are still reported.
    assert td["vertical_speed_mps"] == pytest.approx(math.sqrt(2 * G * 0.4), abs=0.02)
    assert td["first_touch_ok"] is True and td["first_touch_exceeded"] == ""
    assert td["legs_down"] == 4 and td["rest_tilt_deg"] < 0.01
    assert 0.0 < td["stroke_max_m"] < 0.3 and td["leg_load_max_n"] <= 2000.0 + 1e-6
    assert "at rest" in out.reason


def test_too_fast_for_the_stroke_is_a_gear_overload() -> None:
    # 1200 kg at 2 m/s needs (1/2 m v^2) / (4 Fc - m g) = 0.40 m of stroke: only 0.3 there.
    out = fly(plant_on(1.6 + 1e-4, -2.0))
    assert out.outcome == "crashed"
    assert out.reason.startswith("gear overload: leg")
    assert out.touchdown["stroke_max_m"] == pytest.approx(0.3)
    assert out.touchdown["first_touch_ok"] is False            # 2.0 > 2 m/s by a hair


def test_low_clearance_body_hits_the_ground() -> None:
    out = fly(plant_on(1.6 + 1e-4, -1.4, gear={"body_clearance_m": 0.05, "stroke_m": 1.0,
                                                 "max_load_n": 1e9}))
    assert out.outcome == "crashed" and out.reason.startswith("body contact"), out.reason


def test_first_contact_far_beyond_the_gear_ends_at_once() -> None:
    out = fly(plant_on(1.6 + 1e-4, -12.0))
    assert out.outcome == "crashed" and "at first contact" in out.reason
    assert out.touchdown["settle_time_s"] == 0.0


def test_thrusting_on_after_contact_still_ends_in_a_verdict() -> None:
    # A flight software that never cuts its engine: 0.97 of the weight all along, so the
    # vehicle bobs on its legs, light on the ground, and never quite comes to rest.
    plant = plant_on(3.0, gear={"settle_time_s": 5.0, "rest_time_s": 10.0})
    veh = plant.cfg.vehicle

    def policy(p):
        return Command(0.97 * p.truth()["mass_kg"] * G / veh.max_thrust_n)
    out = fly(plant, policy)
    assert out.outcome == "landed", out.reason
    assert "not fully at rest after 5 s" in out.reason
    assert out.touchdown["settle_time_s"] == pytest.approx(5.0, abs=0.03)


def test_lands_at_rest_relative_to_the_rotating_ground() -> None:
    # Over the equator the ground moves at 4.6 m/s in MCI: the footpads grip the ground,
    # so the vehicle comes to rest with it (a gear in MCI would drag it at 4.6 m/s).
    plant = plant_on(2.0, rotation=2.6617e-6)
    out = fly(plant)
    assert out.outcome == "landed", out.reason
    t = plant.truth()
    assert math.sqrt(float(t["v_ground_mps"] @ t["v_ground_mps"])) < 0.05
    assert float((t["v_mps"] @ t["v_mps"]) ** 0.5) == pytest.approx(4.62, abs=0.01)
    assert out.touchdown["final_distance_to_target_m"] < 0.05


def test_sliding_down_a_slope_steeper_than_friction_allows() -> None:
    # tan(20 deg) = 0.36 > mu = 0.2: the footpads cannot grip; it slides (downrange).
    plant = plant_on(1.6 / math.cos(math.radians(20.0)), slope_deg=20.0, pitch_deg=20.0,
                     gear={"friction": 0.2, "settle_time_s": 2.0, "max_rest_tilt_deg": 30.0})
    out = fly(plant)
    assert out.outcome == "crashed" and out.reason.startswith("not at rest"), out.reason
    # Coulomb sliding: a = g (sin - mu cos) for the 2 s of settling time allowed.
    a = G * (math.sin(math.radians(20.0)) - 0.2 * math.cos(math.radians(20.0)))
    assert plant.truth()["downrange_m"] == pytest.approx(0.5 * a * 2.0 ** 2, rel=0.1)
