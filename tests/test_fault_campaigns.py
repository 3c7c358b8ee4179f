"""The shipped fault and IMU-preset campaigns (issue 11's proofs: `fsil mc --scenario alt-KIND`,
`nominal-tactical`, `nominal-mems`): each loads on top of the nominal campaign, keeps its
dispersions, and draws its fault's onset over the whole powered descent. No flights here
(docs/montecarlo.md has the figures and the commands)."""

from __future__ import annotations

import pytest

from hil.mc.cli import check_draws, list_campaigns, resolve
from hil.mc.task import CampaignSpec, run_config
from hil.scenario import scenario_to_dict
from plant.faults import ALTIMETER_KINDS

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
