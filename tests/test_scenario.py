"""Scenario files: the shipped ones load, and every kind of bad file names its key."""

from __future__ import annotations

import dataclasses
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # repo root, not installed

import pytest

from hil.errors import ConfigError, HilError, ScenarioError
from hil.scenario import (SCENARIO_DIR, list_scenarios, load_scenario, reference_markdown,
                          scenario_from_dict, scenario_to_dict)
from plant.config import CraterConfig, ScenarioConfig

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"


def write(tmp_path: pathlib.Path, text: str, name: str = "x.toml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: pathlib.Path, text: str) -> ScenarioError:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    return info.value


# ---------------------------------------------------------------- shipped scenarios


def test_list_scenarios_has_both_with_descriptions() -> None:
    found = dict(list_scenarios())
    assert {"nominal", "terminal"} <= set(found)
    assert all(found[name] for name in ("nominal", "terminal"))


@pytest.mark.parametrize("name", [name for name, _ in list_scenarios()])
def test_every_shipped_scenario_loads_and_is_named_after_its_file(name: str) -> None:
    cfg = load_scenario(name)
    assert isinstance(cfg, ScenarioConfig)
    assert cfg.name == name
    assert all(isinstance(c, CraterConfig) for c in cfg.terrain.craters)


def test_nominal_is_the_defaults_plus_craters() -> None:
    cfg = load_scenario("nominal")
    default = ScenarioConfig()
    for table in ("rates", "vehicle", "target", "initial", "knowledge", "imu", "altimeter",
                  "touchdown"):
        assert getattr(cfg, table) == getattr(default, table), table
    assert cfg.run.max_sim_time_s == 1200 and cfg.run.seed == 1
    craters = cfg.terrain.craters
    assert len(craters) >= 3
    for c in craters:
        assert -60_000 <= c.downrange_m <= -2_000
        assert 100 <= c.radius_m <= 2_000 and c.rim_height_m <= 50
        # plant.terrain: a crater shapes the ground out to 5 rim radii; the last km stays flat
        assert abs(c.downrange_m) - 5 * c.radius_m >= 1_000


def test_terminal_starts_near_high_gate() -> None:
    cfg = load_scenario("terminal")
    i = cfg.initial
    assert (i.altitude_m, i.downrange_m, i.horizontal_speed_mps, i.vertical_speed_mps,
            i.pitch_deg, i.coast_s) == (2000, -4000, 60, -30, -45, 0)
    assert cfg.run.max_sim_time_s == 300
    assert cfg.terrain.craters == [CraterConfig(-2500.0, 0.0, 150.0, 30.0, 8.0)]


def test_load_by_path_and_by_path_object() -> None:
    path = SCENARIO_DIR / "terminal.toml"
    assert load_scenario(str(path)) == load_scenario(path) == load_scenario("terminal")


def test_dict_round_trip() -> None:
    cfg = load_scenario("nominal")
    d = scenario_to_dict(cfg)
    assert d["terrain"]["craters"][0]["radius_m"] == cfg.terrain.craters[0].radius_m
    assert d["imu"]["gyro_bias_dph"] is None
    assert scenario_from_dict(d) == cfg


def test_empty_file_is_all_defaults_named_after_the_file(tmp_path: pathlib.Path) -> None:
    cfg = load_scenario(str(write(tmp_path, "", "blank.toml")))
    assert cfg == dataclasses.replace(ScenarioConfig(), name="blank")


def test_int_accepted_for_float_and_optional_field_accepts_a_number(tmp_path) -> None:
    cfg = load_scenario(str(write(tmp_path, "[vehicle]\nmax_thrust_n = 5000\n"
                                            "[imu]\ngyro_bias_dph = 2\n")))
    assert cfg.vehicle.max_thrust_n == 5000.0 and isinstance(cfg.vehicle.max_thrust_n, float)
    assert cfg.imu.gyro_bias_dph == 2.0


def test_docs_key_reference_is_up_to_date() -> None:
    assert reference_markdown() in DOCS.read_text(encoding="utf-8"), \
        "regenerate the key reference in docs/scenarios.md: python -m hil.scenario --markdown"


# ---------------------------------------------------------------- malformed files

BAD = {
    "unknown key": ("[vehicle]\nmax_thrust = 5.0\n", "vehicle.max_thrust",
                    ['[vehicle] unknown key "max_thrust"', 'did you mean "max_thrust_n"',
                     "valid keys: dry_mass_kg"]),
    "unknown table": ("[vehical]\nmax_thrust_n = 5.0\n", "vehical",
                      ["unknown table [vehical]", "did you mean [vehicle]", "[rates]"]),
    "unknown top-level key": ('nmae = "x"\n', "nmae", ['unknown key "nmae"', '"name"']),
    "string for number": ('[vehicle]\nmax_thrust_n = "4400"\n', "vehicle.max_thrust_n",
                          ['max_thrust_n = "4400" is a string; expected a number']),
    "bool for number": ("[rates]\nframe_hz = true\n", "rates.frame_hz",
                        ["frame_hz = true is a boolean"]),
    "float for integer": ("[run]\nseed = 1.5\n", "run.seed", ["expected an integer"]),
    "number for table": ("vehicle = 5\n", "vehicle", ["expected a table [vehicle]"]),
    "out of range": ("[vehicle]\nmax_thrust_n = -5\n", "vehicle.max_thrust_n",
                     ["[vehicle] max_thrust_n = -5 is out of range (1 .. 1e7)"]),
    "optional out of range": ("[imu]\ngyro_arw_dpsh = -1.0\n", "imu.gyro_arw_dpsh",
                              ["out of range (0 .. 100)"]),
    "not finite": ("[initial]\naltitude_m = nan\n", "initial.altitude_m", ["not a finite"]),
    "bad choice": ('[imu]\npreset = "tactcal"\n', "imu.preset",
                   ["not one of navigation, tactical, mems, ideal", 'did you mean "tactical"']),
    "vector too short": ("[vehicle]\ninertia_kgm2 = [700.0, 700.0]\n", "vehicle.inertia_kgm2",
                         ["inertia_kgm2 = [700, 700] has 2 elements; expected 3"]),
    "vector element type": ('[vehicle]\nmax_torque_nm = [1.0, "a", 1.0]\n',
                            "vehicle.max_torque_nm", ['max_torque_nm[1] = "a" is a string']),
    "vector element range": ("[vehicle]\ninertia_kgm2 = [700.0, 0.0, 500.0]\n",
                             "vehicle.inertia_kgm2", ["inertia_kgm2[1] = 0 is out of range"]),
    "scalar for vector": ("[altimeter]\nboresight_body = 1.0\n", "altimeter.boresight_body",
                          ["expected a list"]),
    "bad crater entry": ("[[terrain.craters]]\nradius_m = 100.0\n"
                         "[[terrain.craters]]\nradius_m = 0.5\n", "terrain.craters[1].radius_m",
                         ["[[terrain.craters]] #2: radius_m = 0.5 is out of range"]),
    "unknown crater key": ("[[terrain.craters]]\nradus_m = 100.0\n", "terrain.craters[0].radus_m",
                           ['#1: unknown key "radus_m"', 'did you mean "radius_m"']),
    "crater not a table": ("[terrain]\ncraters = [1, 2]\n", "terrain.craters[0]",
                           ["[[terrain.craters]] #1: expected a table"]),
    "rate not a multiple": ("[rates]\nframe_hz = 60.0\n", "rates.physics_hz",
                            ["physics_hz = 200 is not an integer multiple of frame_hz = 60"]),
    "imu rate not a multiple of frame": (
        "[rates]\nphysics_hz = 600.0\nframe_hz = 100.0\nimu_hz = 150.0\n", "rates.imu_hz",
        ["imu_hz = 150 is not an integer multiple of frame_hz = 100"]),
    "physics slower than imu": ("[rates]\nimu_hz = 400.0\n", "rates.physics_hz",
                                ["multiple of imu_hz = 400"]),
    "altimeter ranges": ("[altimeter]\nmin_range_m = 20000.0\n", "altimeter.min_range_m",
                         ["min_range_m = 20000 must be less than max_range_m = 15000"]),
    "zero boresight": ("[altimeter]\nboresight_body = [0.0, 0.0, 0.0]\n",
                       "altimeter.boresight_body", ["must not be zero"]),
    "bad TOML syntax": ("[vehicle]\ndry_mass_kg = 5\nmax_thrust_n = \n", "",
                        ["TOML syntax error at line 3"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_scenario_names_the_file_and_key(tmp_path: pathlib.Path, case: str) -> None:
    text, key, fragments = BAD[case]
    error = error_for(tmp_path, text)
    message = str(error)
    assert message.startswith(f'scenario "{tmp_path / "x.toml"}": ')
    assert "\n" not in message
    assert error.key == key
    for fragment in fragments:
        assert fragment in message
    assert isinstance(error, ConfigError) and isinstance(error, HilError)
    assert error.exit_code == 2


def test_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ScenarioError, match=r'scenario ".*nope\.toml": file not found'):
        load_scenario(str(tmp_path / "nope.toml"))


def test_unknown_shipped_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError, match=r'no shipped scenario named "nominl".*nominal'):
        load_scenario("nominl")


def test_directory_and_non_utf8(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ScenarioError, match="directory"):
        load_scenario(str(tmp_path) + "/")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'description = "caf\xe9"\n')
    with pytest.raises(ScenarioError, match="UTF-8"):
        load_scenario(str(bad))


def test_imu_preset_choices_match_the_imu_model(tmp_path: pathlib.Path) -> None:
    from plant.imu import PRESETS  # the help text "tactical | mems | ideal" must not drift

    for preset in PRESETS:
        text = f'[imu]\npreset = "{preset}"\n'
        assert load_scenario(str(write(tmp_path, text))).imu.preset == preset
