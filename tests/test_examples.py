"""The examples a user copies (examples/): each lands the terminal scenario through ``fsil run``.

examples/python-fsw/my_fsw.py is a flight software written against the documented contract
only (docs/your-fsw.md), in a folder of its own, selected with ``--fsw FILE.py:CLASS``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def fsil(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hil.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=240, stdin=subprocess.DEVNULL)


def test_python_fsw_example_lands_terminal_from_its_own_folder(tmp_path) -> None:
    # Run from the example's folder, as a user with fsil installed would (the repository's
    # root is not the working directory, so nothing but the contract is in reach).
    folder = EXAMPLES / "python-fsw"
    out = tmp_path / "run"
    done = fsil("run", "--scenario", "terminal", "--fsw", "my_fsw.py:MyFsw", "--out", str(out),
                "--no-progress", "--no-plot", cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "landed"
    assert summary["fsw_software"] == "my-fsw 1.0"
    td = summary["touchdown"]
    assert td["vertical_speed_mps"] < 2.0 and td["horizontal_speed_mps"] < 0.5
    assert "import fsw" not in (folder / "my_fsw.py").read_text()   # the contract only


def test_python_process_example_lands_terminal_as_a_program_of_its_own(tmp_path) -> None:
    # The user's own process, written with bridge/client.py, started by --fsw-cmd.
    program = EXAMPLES / "python-process" / "my_process.py"
    out = tmp_path / "run"
    done = fsil("run", "--scenario", "terminal", "--out", str(out), "--no-progress", "--no-plot",
                "--fsw-cmd", f"{shlex.quote(sys.executable)} {shlex.quote(str(program))} {{link}}",
                cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "landed"
    assert summary["fsw_software"] == "my-process 1.0"
    assert summary["timing"]["compute_us"]["p50"] > 0       # measured by the client


def test_python_fsw_example_turns_its_attitude_towards_a_star_tracker_sample() -> None:
    """The example reads FRAME ``att`` (docs/your-fsw.md): a valid sample 1 mrad about body
    x from its attitude turns it by a fifth of that, once per sample; an invalid or repeated
    one changes nothing."""
    import importlib.util
    import math

    from hil.scenario import load_scenario
    from plant.lander import LanderPlant

    spec = importlib.util.spec_from_file_location("my_fsw", EXAMPLES / "python-fsw" / "my_fsw.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    plant = LanderPlant(load_scenario("terminal"))
    plant.reset(1)
    fsw = mod.MyFsw(plant.fsw_config())
    q0 = fsw.q
    meas = mod.q_mul_small(q0, (1e-3, 0.0, 0.0))

    def angle(a, b):
        dot = abs(sum(x * y for x, y in zip(a, b)))
        return 2.0 * math.acos(min(1.0, dot))

    fsw.fuse_star_tracker([5, 1.0, 0.0, 0.0, 0.0, False])            # invalid: ignored
    assert fsw.q == q0
    fsw.fuse_star_tracker([10, *meas, True])
    assert abs(angle(q0, fsw.q) - 2e-4) < 1e-6
    assert abs(angle(fsw.q, meas) - 8e-4) < 1e-6
    q1 = fsw.q
    fsw.fuse_star_tracker([10, *meas, True])                          # the same sample again
    assert fsw.q == q1
