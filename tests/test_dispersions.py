"""[dispersions] and base: campaign scenarios load, draw what they say, and fail in one line."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest

from hil import dispersions as D
from hil.errors import ScenarioError
from hil.scenario import load_scenario, scenario_from_dict, scenario_to_dict


def write(tmp_path: pathlib.Path, text: str, name: str = "c.toml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def campaign(tmp_path: pathlib.Path, dispersions: str, extra: str = ""):
    return load_scenario(str(write(tmp_path, f'base = "terminal"\n{extra}\n[dispersions]\n'
                                             f'{dispersions}\n')))


def run_config(cfg, seed: int, run: int):
    draws = D.draw(cfg, seed, run)
    return scenario_from_dict(D.apply(scenario_to_dict(cfg), cfg, draws)), draws


# ---------------------------------------------------------------- base


def test_base_merges_tables_key_by_key_and_replaces_lists(tmp_path: pathlib.Path) -> None:
    write(tmp_path, 'base = "terminal"\n[vehicle]\nisp_s = 300.0\n'
                    '[dispersions]\n"vehicle.isp_s" = { dist = "normal", sigma = 2.0 }\n',
          "mid.toml")
    (tmp_path / "sub").mkdir()
    path = write(tmp_path, 'base = "../mid.toml"\n[vehicle]\ndry_mass_kg = 500.0\n'
                           '[[terrain.craters]]\nradius_m = 50.0\n'
                           '[dispersions]\nvehicle.dry_mass_kg = { dist = "uniform", '
                           'low = 490.0, high = 510.0 }\n', "sub/top.toml")
    cfg = load_scenario(str(path))
    terminal = load_scenario("terminal")
    assert cfg.name == "top" and cfg.base == "../mid.toml"
    assert (cfg.vehicle.isp_s, cfg.vehicle.dry_mass_kg) == (300.0, 500.0)
    assert cfg.vehicle.max_thrust_n == terminal.vehicle.max_thrust_n
    assert cfg.initial == terminal.initial
    assert [c.radius_m for c in cfg.terrain.craters] == [50.0]     # the list replaced whole
    assert set(cfg.dispersions) == {"vehicle.isp_s", "vehicle.dry_mass_kg"}


def test_an_error_in_the_base_names_the_base_file(tmp_path: pathlib.Path) -> None:
    write(tmp_path, "[vehicle]\nisp_s = 5.0\n", "broken.toml")
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(write(tmp_path, 'base = "broken.toml"\n')))
    assert info.value.path.endswith("broken.toml") and info.value.key == "vehicle.isp_s"


def test_a_base_loop_is_an_error(tmp_path: pathlib.Path) -> None:
    write(tmp_path, 'base = "b.toml"\n', "a.toml")
    write(tmp_path, 'base = "a.toml"\n', "b.toml")
    with pytest.raises(ScenarioError, match=r"leads back to itself \(a.toml -> b.toml -> a.toml\)"):
        load_scenario(str(tmp_path / "a.toml"))


# ---------------------------------------------------------------- draws


def test_draws_are_reproducible_and_independent_of_the_other_dispersions(tmp_path) -> None:
    one = campaign(tmp_path, '"vehicle.isp_s" = { dist = "normal", sigma = 3.0 }')
    two = campaign(tmp_path, '"initial.altitude_m" = { dist = "normal", sigma = 10.0 }\n'
                             '"vehicle.isp_s" = { dist = "normal", sigma = 3.0 }')
    for run in range(5):
        assert D.draw(one, 7, run)["vehicle.isp_s"] == D.draw(two, 7, run)["vehicle.isp_s"]
        assert D.draw(one, 7, run) == D.draw(one, 7, run)
    values = {D.draw(one, 7, run)["vehicle.isp_s"] for run in range(20)}
    assert len(values) == 20
    assert D.draw(one, 8, 0) != D.draw(one, 7, 0)
    assert D.plant_seed(7, 0) != D.plant_seed(7, 1) and 0 <= D.plant_seed(7, 3) < 2 ** 63


N = 2000  # 4-sigma bounds: a draw with half (or double) the configured spread fails them


def samples(cfg, path: str, n: int = N) -> np.ndarray:
    return np.array([D.draw(cfg, 11, run)[path] for run in range(n)])


def test_normal_has_its_mean_and_sigma(tmp_path: pathlib.Path) -> None:
    x = samples(campaign(tmp_path, '"vehicle.isp_s" = { dist = "normal", sigma = 3.0 }'),
                "vehicle.isp_s")
    assert abs(x.mean() - 320.0) < 4 * 3.0 / math.sqrt(N)
    assert abs(x.std(ddof=1) / 3.0 - 1) < 4 / math.sqrt(2 * N)


def test_truncated_normal_stays_in_its_bounds_and_is_not_clipped(tmp_path) -> None:
    x = samples(campaign(tmp_path, '"vehicle.isp_s" = { dist = "normal", sigma = 10.0, '
                                   'min = 315.0, max = 330.0 }'), "vehicle.isp_s", 800)
    assert x.min() >= 315.0 and x.max() <= 330.0
    assert np.mean(x == 315.0) == 0.0 and np.mean(x == 330.0) == 0.0   # redrawn, not clipped
    from scipy.stats import truncnorm
    dist = truncnorm(-0.5, 1.0, loc=320.0, scale=10.0)
    assert abs(x.mean() - dist.mean()) < 4 * dist.std() / math.sqrt(len(x))


def test_uniform_add_and_scale(tmp_path: pathlib.Path) -> None:
    cfg = campaign(tmp_path, '"initial.downrange_m" = { dist = "uniform", low = -100.0, '
                             'high = 100.0, apply = "add" }\n'
                             '"vehicle.max_thrust_n" = { dist = "normal", sigma = 0.02, '
                             'apply = "scale" }')
    x = samples(cfg, "initial.downrange_m") + 4000.0    # terminal starts 4 km uprange
    assert x.min() >= -100.0 and x.max() <= 100.0
    assert abs(x.std(ddof=1) / (200.0 / math.sqrt(12)) - 1) < 4 * 0.8 / math.sqrt(N)
    t = samples(cfg, "vehicle.max_thrust_n")
    assert abs(t.mean() / 4400.0 - 1) < 4 * 0.02 / math.sqrt(N)
    assert abs(t.std(ddof=1) / (4400.0 * 0.02) - 1) < 4 / math.sqrt(2 * N)


def test_choice_follows_its_weights(tmp_path: pathlib.Path) -> None:
    cfg = campaign(tmp_path, '"imu.preset" = { dist = "choice", values = ["navigation", '
                             '"tactical"], weights = [3, 1] }')
    x = [D.draw(cfg, 11, run)["imu.preset"] for run in range(N)]
    share = x.count("navigation") / N
    assert set(x) == {"navigation", "tactical"}
    assert abs(share - 0.75) < 4 * math.sqrt(0.75 * 0.25 / N)


def test_star_draws_each_element_on_its_own(tmp_path: pathlib.Path) -> None:
    extra = "[[terrain.craters]]\ndownrange_m = -2500.0\n[[terrain.craters]]\ndownrange_m = -900.0\n"
    cfg = campaign(tmp_path, '"terrain.craters[*].radius_m" = { dist = "normal", sigma = 0.1, '
                             'apply = "scale", min = 0.5, max = 1.5 }', extra)
    run_cfg, draws = run_config(cfg, 3, 0)
    assert set(draws) == {"terrain.craters[0].radius_m", "terrain.craters[1].radius_m"}
    assert draws["terrain.craters[0].radius_m"] != draws["terrain.craters[1].radius_m"]
    assert [c.radius_m for c in run_cfg.terrain.craters] == list(draws.values())
    assert [c.downrange_m for c in run_cfg.terrain.craters] == [-2500.0, -900.0]


# ---------------------------------------------------------------- truth and knowledge


def test_dispersed_truth_leaves_the_flight_software_told_the_nominal(tmp_path) -> None:
    cfg = campaign(tmp_path, '"vehicle.isp_s" = { dist = "normal", sigma = 3.0 }\n'
                             '"vehicle.dry_mass_kg" = { dist = "normal", sigma = 5.0 }\n'
                             '"knowledge.vehicle.dry_mass_kg" = { dist = "normal", sigma = 1.0 }')
    run_cfg, draws = run_config(cfg, 5, 2)
    assert run_cfg.vehicle.isp_s == draws["vehicle.isp_s"] != 320.0
    assert run_cfg.knowledge.vehicle.isp_s == 320.0                  # told the nominal
    assert run_cfg.vehicle.dry_mass_kg == draws["vehicle.dry_mass_kg"]
    assert run_cfg.knowledge.vehicle.dry_mass_kg == draws["knowledge.vehicle.dry_mass_kg"]
    assert run_cfg.knowledge.vehicle.dry_mass_kg not in (520.0, run_cfg.vehicle.dry_mass_kg)
    assert run_cfg.knowledge.vehicle.max_thrust_n is None            # undispersed: the truth
    assert run_cfg.dispersions == {}


def test_a_knowledge_key_disperses_around_the_truth_when_unset(tmp_path) -> None:
    x = samples(campaign(tmp_path, '"knowledge.vehicle.max_thrust_n" = { dist = "normal", '
                                   'sigma = 0.01, apply = "scale" }'),
                "knowledge.vehicle.max_thrust_n")
    assert abs(x.mean() / 4400.0 - 1) < 4 * 0.01 / math.sqrt(N)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("entry, key, words", [
    ('vehicle.isp = { dist = "normal", sigma = 1.0 }', 'dispersions."vehicle.isp"',
     '[vehicle] has no key "isp" (did you mean "isp_s"?)'),
    ('"vehicle.isp_s" = { dist = "normal" }', 'dispersions."vehicle.isp_s".sigma',
     'dist = "normal" needs sigma'),
    ('"vehicle.isp_s" = { dist = "gauss", sigma = 1.0 }', 'dispersions."vehicle.isp_s".dist',
     "is not one of normal, uniform, choice"),
    ('"vehicle.isp_s" = { dist = "uniform", low = 1.0, high = 2.0, sigma = 1.0 }',
     'dispersions."vehicle.isp_s".sigma', 'sigma does not apply to dist = "uniform"'),
    ('"vehicle.isp_s" = { dist = "uniform", low = 330.0, high = 310.0 }',
     'dispersions."vehicle.isp_s".low', "must not exceed high"),
    ('"vehicle.isp_s" = { dist = "choice", values = [300, 2000] }',
     'dispersions."vehicle.isp_s".values', "values[1] = 2000 is out of range (50 .. 1000)"),
    ('"imu.preset" = { dist = "choice", values = ["navigation", "tacticl"] }',
     'dispersions."imu.preset".values', 'did you mean "tactical"?'),
    ('"imu.preset" = { dist = "normal", sigma = 1.0 }', 'dispersions."imu.preset".dist',
     "needs a number key"),
    ('"imu.preset" = { dist = "choice", values = ["navigation"], weights = [1, 2] }',
     'dispersions."imu.preset".weights', "weights has 2 elements; values has 1"),
    ('"terrain.craters[3].radius_m" = { dist = "normal", sigma = 1.0 }',
     'dispersions."terrain.craters[3].radius_m"', "terrain.craters[3] does not exist"),
    ('"terrain.craters.radius_m" = { dist = "normal", sigma = 1.0 }',
     'dispersions."terrain.craters.radius_m"', "name an element and a key"),
    ('"vehicle.inertia_kgm2" = { dist = "normal", sigma = 1.0 }',
     'dispersions."vehicle.inertia_kgm2"', "is a list; name one element"),
    ('"run.seed" = { dist = "normal", sigma = 1.0 }', 'dispersions."run.seed"',
     "cannot be dispersed"),
    ('"faults[0].at_time_s" = { dist = "normal", sigma = 1.0 }',
     'dispersions."faults[0].at_time_s"', "faults is empty"),
    ('"deadline.period_s" = { dist = "normal", sigma = 0.001 }',
     'dispersions."deadline.period_s".mean', "has no value in the scenario; give mean"),
    ('"vehicle.isp_s" = 3', 'dispersions."vehicle.isp_s"', "expected a table, got an integer"),
    ('"vehicle.isp_s" = { dist = "normal", sigma = 1.0, mode = 2 }',
     'dispersions."vehicle.isp_s".mode', 'unknown key "mode"'),
])
def test_bad_dispersions_are_one_line_naming_the_key(tmp_path: pathlib.Path, entry: str,
                                                      key: str, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        campaign(tmp_path, entry)
    message = str(info.value)
    assert info.value.key == key, message
    assert words in message and "\n" not in message
    assert message.startswith(f'scenario "{tmp_path / "c.toml"}": [dispersions] "')


def test_the_imu_preset_gives_the_nominal_of_an_unset_imu_key(tmp_path) -> None:
    cfg = campaign(tmp_path, '"imu.gyro_bias_dph" = { dist = "normal", sigma = 0.0, '
                             'apply = "scale" }')
    from plant.imu import resolve_imu_config
    assert D.draw(cfg, 1, 0)["imu.gyro_bias_dph"] == resolve_imu_config(cfg.imu)["gyro_bias_dph"]
