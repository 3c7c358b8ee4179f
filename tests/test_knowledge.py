"""[knowledge.vehicle]: what the flight software is told about the vehicle, apart from the truth."""

from __future__ import annotations

import pathlib

import pytest

from hil.errors import ScenarioError
from hil.scenario import load_scenario, scenario_from_dict, scenario_to_dict
from plant.lander import LanderPlant

TOLD_KEYS = ("dry_mass_kg", "propellant_kg", "max_thrust_n", "min_throttle", "isp_s",
             "throttle_time_constant_s")


def hello_vehicle(data: dict) -> dict:
    plant = LanderPlant(scenario_from_dict(data))
    plant.reset(1)
    return plant.fsw_config()["vehicle"]


def test_without_knowledge_the_flight_software_is_told_the_truth() -> None:
    cfg = load_scenario("terminal")
    told = hello_vehicle(scenario_to_dict(cfg))
    for key in TOLD_KEYS:
        assert told[key] == getattr(cfg.vehicle, key), key
    assert told["inertia_kgm2"] == cfg.vehicle.inertia_kgm2


def test_told_values_replace_the_truth_key_by_key_and_the_plant_flies_the_truth() -> None:
    data = scenario_to_dict(load_scenario("terminal"))
    data["knowledge"]["vehicle"] = {"max_thrust_n": 4000.0, "isp_s": 300.0,
                                    "propellant_kg": 650.0}
    told = hello_vehicle(data)
    assert (told["max_thrust_n"], told["isp_s"], told["propellant_kg"]) == (4000.0, 300.0, 650.0)
    assert told["dry_mass_kg"] == 520.0 and told["throttle_time_constant_s"] == 0.1  # truth
    plant = LanderPlant(scenario_from_dict(data))
    plant.reset(1)
    assert plant.truth()["mass_kg"] == 520.0 + 680.0       # the plant carries the truth


def test_knowledge_vehicle_in_a_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "told.toml"
    path.write_text('[knowledge.vehicle]\npropellant_kg = 650.0\n', encoding="utf-8")
    cfg = load_scenario(str(path))
    assert cfg.knowledge.vehicle.propellant_kg == 650.0
    assert cfg.knowledge.vehicle.isp_s is None


@pytest.mark.parametrize("text, key, words", [
    ('[knowledge.vehicle]\nisp_s = 20.0\n', "knowledge.vehicle.isp_s", "out of range (50 .. 1000)"),
    ('[knowledge.vehicle]\nips_s = 300.0\n', "knowledge.vehicle.ips_s", 'did you mean "isp_s"'),
    ('[knowledge.vehicle]\nmax_thrust_n = "big"\n', "knowledge.vehicle.max_thrust_n",
     "expected a number"),
])
def test_bad_knowledge_is_one_line_naming_the_key(tmp_path: pathlib.Path, text: str, key: str,
                                                   words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    assert info.value.key == key
    assert words in str(info.value) and "[knowledge.vehicle]" in str(info.value)
    assert "\n" not in str(info.value)
