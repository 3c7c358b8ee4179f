"""The shipped fault and IMU-preset campaigns (issue 11's proofs: `fsil mc --scenario alt-KIND`,
`nominal-tactical`, `nominal-mems`): each loads on top of the nominal campaign, keeps its
dispersions, and draws its fault's onset over the whole powered descent. No flights here
(docs/montecarlo.md has the figures and the commands)."""

from __future__ import annotations

import pytest

from hil.mc.cli import check_draws, list_campaigns, resolve
from hil.mc.task import CampaignSpec, run_config
from hil.scenario import scenario_to_dict
from plant.faults import ALTIMETER_KINDS, VELOCIMETER_KINDS

# Every altimeter kind but the link budget's (they need [altimeter] link_budget = true).
KINDS = [k for k in ALTIMETER_KINDS if k not in ("power", "sensitivity")]


@pytest.mark.parametrize("kind", KINDS)
def test_each_altimeter_fault_has_a_campaign_at_random_onset(kind: str) -> None:
    name = f"alt-{kind}"
    assert name in list_campaigns()
    cfg = resolve(name)
    nominal = resolve("nominal")
    assert set(nominal.dispersions) < set(cfg.dispersions)     # the nominal's, and more
    assert [(f.sensor, f.kind) for f in cfg.faults] == [("altimeter", kind)]
    spec = CampaignSpec(scenario_to_dict(cfg), 1)
    check_draws(spec, 50)
    onsets = [run_config(spec, k)[2]["faults[0].at_time_s"] for k in range(40)]
    # Ignition (20 s) to touchdown (~676 s): early, mid and late onsets all drawn.
    assert 20.0 <= min(onsets) < 120.0 and 570.0 < max(onsets) <= 670.0


@pytest.mark.parametrize("preset", ["tactical", "mems"])
def test_imu_preset_campaigns_fly_the_preset_with_the_velocimeter(preset: str) -> None:
    cfg = resolve(f"nominal-{preset}")
    assert cfg.imu.preset == preset and cfg.velocimeter.enabled
    assert set(cfg.dispersions) == set(resolve("nominal").dispersions)


def test_each_velocimeter_fault_has_a_campaign_at_random_onset() -> None:
    """One campaign per velocimeter kind (the drawing itself is checked on the altimeter's
    above): the nominal's dispersions and more, the onset uniform over the powered descent."""
    nominal = set(resolve("nominal").dispersions)
    for kind in VELOCIMETER_KINDS:
        cfg = resolve(f"vel-{kind}")
        assert nominal < set(cfg.dispersions), kind
        assert [(f.sensor, f.kind) for f in cfg.faults] == [("velocimeter", kind)]
        assert cfg.velocimeter.enabled
        onset = cfg.dispersions["faults[0].at_time_s"]
        assert (onset.dist, onset.low, onset.high) == ("uniform", 20.0, 670.0), kind
    check_draws(CampaignSpec(scenario_to_dict(resolve("vel-bias")), 1), 5)


def test_range_bias_from_the_first_sample_and_a_fault_of_both_height_sensors() -> None:
    cfg = resolve("vel-range-bias")
    (f,) = cfg.faults
    assert (f.sensor, f.kind, f.channel, f.at_time_s) == ("velocimeter", "bias", "range", 0.0)
    spec = CampaignSpec(scenario_to_dict(cfg), 1)
    values = [run_config(spec, k)[2]["faults[0].value"] for k in range(40)]
    assert min(values) < -150.0 and max(values) > 150.0
    both = resolve("alt-vel-off")
    assert [(f.sensor, f.kind) for f in both.faults] == [("altimeter", "off"),
                                                         ("velocimeter", "off")]
    assert {"faults[0].at_time_s", "faults[1].at_time_s"} < set(both.dispersions)


def test_each_star_tracker_fault_has_a_campaign_on_the_mems_descent() -> None:
    """One campaign per star tracker kind, on the MEMS descent with its tracker: the
    nominal's dispersions and more, the onset uniform from the coast's start to touchdown."""
    from plant.faults import STAR_TRACKER_KINDS
    nominal = set(resolve("nominal").dispersions)
    for kind in STAR_TRACKER_KINDS:
        cfg = resolve(f"st-{kind}")
        assert nominal < set(cfg.dispersions), kind
        assert [(f.sensor, f.kind) for f in cfg.faults] == [("star_tracker", kind)]
        assert cfg.star_tracker.enabled and cfg.imu.preset == "mems"
        onset = cfg.dispersions["faults[0].at_time_s"]
        assert (onset.dist, onset.low, onset.high) == ("uniform", 0.0, 670.0), kind
    spec = CampaignSpec(scenario_to_dict(resolve("st-bias")), 1)
    check_draws(spec, 5)
    axes = {run_config(spec, k)[2]["faults[0].axis"] for k in range(30)}
    assert axes == {0, 1, 2}
