"""The engine's fast paths give the same numbers as the plain ones, bit for bit."""

from __future__ import annotations

import pytest

from hil.engine.truth import truth_cells
from hil.scenario import load_scenario
from plant.lander import Command, LanderPlant

TRUTH_KEYS = ("alt_m", "vert_speed_mps", "horiz_speed_mps", "downrange_m", "crossrange_m",
              "tilt_deg", "rate_dps", "mass_kg", "propellant_kg", "throttle")


@pytest.mark.parametrize("rotation_rad_s", [None, 0.0])
def test_truth_cells_are_the_plants_truth_bit_for_bit(rotation_rad_s):
    """Every frame of a manoeuvring descent (on a rotating and a still Moon): the history's
    truth cells in plain floats are ``plant.truth()``'s numpy results, compared by repr."""
    cfg = load_scenario("terminal")
    if rotation_rad_s is not None:
        cfg.moon.rotation_rad_s = rotation_rad_s
    plant = LanderPlant(cfg)
    plant.reset(5)
    assert plant.moon.rotating == (rotation_rad_s is None)
    frames = 0
    while not plant.done and frames < 400:
        t = plant.truth()
        r, v, alt_m, cells = truth_cells(plant)
        want = (*t["r_m"].tolist(), *t["v_mps"].tolist(), *(t[k] for k in TRUTH_KEYS))
        assert list(map(repr, cells)) == list(map(repr, want)), f"frame {frames}"
        assert (r, v, repr(alt_m)) == (t["r_m"].tolist(), t["v_mps"].tolist(), repr(t["alt_m"]))
        swing = 1.0 if frames % 60 < 30 else -1.0    # tilt and turn, so every cell moves
        plant.step(Command(0.5 + 0.2 * swing, (40.0 * swing, -25.0 * swing, 10.0)))
        frames += 1
    assert frames == 400


def test_numba_does_not_load_scipy_in_the_plant_but_others_can():
    """The plant's kernel keeps scipy out of numba's imports (16 MB of the plant process's
    peak memory); scipy itself stays importable for everyone else in the process."""
    import subprocess
    import sys
    code = ("import os, sys\n"
            "os.environ['FSIL_PLANT_KERNEL'] = 'numba'\n"
            "from hil.scenario import load_scenario\n"
            "from plant.lander import Command, LanderPlant\n"
            "p = LanderPlant(load_scenario('terminal')); p.reset(1)\n"
            "p.step(Command(0.5, (0.0, 0.0, 0.0)))\n"
            "assert p._kernel.__name__ == 'plant.kernel' and 'numba' in sys.modules\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))\n"
            "import scipy.stats\n"
            "print(scipy.stats.norm.cdf(0.0))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "0.5"]
