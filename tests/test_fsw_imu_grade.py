"""The IMU's grade told in HELLO, the navigation's tilt states sized from it, and the MEMS
and blind landings of issue 11 (campaign runs that crashed before, flown in one process)."""

from __future__ import annotations

import math

import pytest

from bridge import protocol
from bridge.codec import decode, encode_hello
from bridge.kinds import check_schema
from fsw.core import FLAG_NAV_COV_FAULT, FlightSoftware
from hil.engine import run_inprocess
from hil.mc.cli import resolve
from hil.mc.task import CampaignSpec, run_config
from hil.scenario import load_scenario, scenario_from_dict, scenario_to_dict
from plant.imu import PRESETS, to_si
from plant.lander import LanderPlant


def _plant(preset: str) -> LanderPlant:
    data = scenario_to_dict(load_scenario("nominal"))
    data["imu"]["preset"] = preset
    plant = LanderPlant(scenario_from_dict(data))
    plant.reset(1)
    return plant


@pytest.mark.parametrize("preset", ["navigation", "tactical", "mems"])
def test_hello_tells_the_imu_grade_and_the_navigation_sizes_its_noise_from_it(preset) -> None:
    plant = _plant(preset)
    config = plant.fsw_config()
    si = to_si(PRESETS[preset])
    imu = config["imu"]
    assert imu["preset"] == preset
    for key, value in imu.items():
        if key != "preset":
            assert value == pytest.approx(si[key]), key
    # The block crosses the wire and is checked there like the rest of the config.
    rates = {"frame_hz": 50.0, "imu_hz": 200.0, "altimeter_hz": 10.0, "physics_hz": 200.0}
    msg = decode(encode_hello("nominal", rates, config))
    assert msg.fields["config"]["imu"] == imu
    nav = FlightSoftware(config).nav
    n = nav.N
    drift_var = si["gyro_bias_radps"] ** 2 + si["gyro_bias_instability_radps"] ** 2
    assert nav.P[4 * n + 4] == pytest.approx(drift_var)
    assert nav.q_tilt == pytest.approx(si["gyro_arw_rad_per_sqrt_s"] ** 2)


def test_a_bad_imu_block_is_refused_by_the_schema() -> None:
    config = _plant("mems").fsw_config()
    config["imu"]["gyro_bias_radps"] = -1.0
    with pytest.raises(Exception, match="imu.gyro_bias_radps"):
        check_schema(config, protocol.CONFIG_SCHEMA)
    del config["imu"]["gyro_bias_radps"]
    with pytest.raises(Exception, match="gyro_bias_radps"):
        check_schema(config, protocol.CONFIG_SCHEMA)


def _campaign_run(name: str, run: int, probe=None, star_tracker: bool | None = None):
    cfg0 = resolve(name)
    data = scenario_to_dict(cfg0)
    if star_tracker is not None:
        data["star_tracker"]["enabled"] = star_tracker
    cfg, seed, _ = run_config(CampaignSpec(data, cfg0.run.seed), run)
    seen = {"cov": 0, "modes": set()}

    class Probe(FlightSoftware):
        def step(self, frame):
            out = FlightSoftware.step(self, frame)
            seen["cov"] += bool(out[4] & FLAG_NAV_COV_FAULT)
            seen["modes"].add(protocol.MODES[out[2]])
            if probe is not None:
                probe(self, seen)
            return out

    result = run_inprocess(cfg, seed, fsw=Probe, history=None, plots=False)
    return result.summary, seen


def test_mems_braking_drift_is_measured_when_the_altimeter_locks_and_the_lander_lands() -> None:
    # nominal-mems run 4 (fsw 0.5.0 crashed at 47 m/s in braking): the gyros' bias tilts the
    # braking thrust by degrees, the height drifts by 3 km before the altimeter's slanted
    # beam first reaches the ground; the tilt states make that error's size known, so the
    # first beam ranges and altimeter samples correct the height instead of the terrain, and
    # braking is re-planned from the corrected state. (A lander without a star tracker: the
    # nominal-mems campaign now flies one, tests/test_star_tracker.py.)
    def probe(fsw, seen):
        seen["sigma_h"] = max(seen.get("sigma_h", 0.0), math.sqrt(fsw.nav.P[0]))

    summary, seen = _campaign_run("nominal-mems", 4, probe, star_tracker=False)
    assert summary["outcome"] == "landed", summary.get("reason")
    assert summary["touchdown"]["vertical_speed_mps"] < 1.5
    assert seen["cov"] == 0
    assert seen["sigma_h"] > 1000.0       # the drift's size was known before the lock


def test_a_blind_landing_lasts_on_its_propellant_and_says_safe() -> None:
    # alt-vel-off run 0: the altimeter off at 85 s, the velocimeter at 413 s. fsw 0.5.0 hovered
    # at three sigmas plus 100 m and ran out of propellant at 1014 s. Now: down to the highest
    # the ground can be, then a constant rate the propellant lasts for, mode `safe`.
    def probe(fsw, seen):
        if fsw.mode == "terminal" and fsw._blind():
            seen["blind_terminal"] = seen.get("blind_terminal", 0) + 1

    summary, seen = _campaign_run("alt-vel-off", 0, probe)
    assert summary["outcome"] == "landed", summary.get("reason")
    assert summary["touchdown"]["vertical_speed_mps"] < 2.0
    assert seen["blind_terminal"] > 0 and "safe" in seen["modes"]
    assert seen["cov"] == 0


def test_a_mems_unit_with_a_star_tracker_lands_near_the_site() -> None:
    # nominal-mems run 2: without the tracker the gyros' drift over braking put the lander
    # 31 km from the site (a divert, mode ``safe``, on fsw 0.7.0) and the navigation 13.7 km
    # off; with it, no divert and the navigation within the accelerometer's errors.
    def probe(fsw, seen):
        seen["st_used"] = seen.get("st_used", 0) + fsw.nav.st_used

    summary, seen = _campaign_run("nominal-mems", 2, probe)
    assert summary["outcome"] == "landed", summary.get("reason")
    assert summary["touchdown"]["distance_to_target_m"] < 1000.0
    assert "safe" not in seen["modes"] and seen["cov"] == 0
    assert seen["st_used"] > 2000                 # about 5 a second over 11 minutes
