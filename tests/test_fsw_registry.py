"""The flight-software registry and the contract checker (docs/your-fsw.md).

Specs resolve to factories and source files (built-ins, MODULE:CLASS, FILE.py:CLASS, entry
points of group fsil.fsw); a flight software that breaks the contract ends a real run over a
link with exit 3, one line naming the class, the cycle and the problem, and the history kept.
The runs are the plant and ``fsil fsw``'s serve() in two threads of this process over
``loop://`` (the same code as two processes, without their start-up cost).
"""

from __future__ import annotations

import csv
import math
import textwrap
import threading
from pathlib import Path

import pytest

from fsw.contract import ContractError, command, software_name
from fsw.frame import Frame
from fsw.host.checked import CheckedFsw, ContractViolation
from fsw.host.registry import FswSpecError, available, resolve
from fsw.host.runner import FswRunError, serve
from hil.cli import main
from hil.plant_side import PlantSide
from hil.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def write_fsw(tmp_path: Path, stem: str, body: str) -> Path:
    """A user's flight software file ``stem.py`` in its own folder (stems unique per test:
    an imported module stays in sys.modules)."""
    folder = tmp_path / "user"
    folder.mkdir(exist_ok=True)
    path = folder / f"{stem}.py"
    path.write_text(textwrap.dedent(body))
    return path


# A flight software that follows the contract for a few frames, then does one bad thing.
BAD_AT_SEQ = 3
TEMPLATE = """
    import math
    class Fsw:
        NAME = "bad-fsw"
        VERSION = "0.0"
        def __init__(self, config):
            self.max_thrust = config["vehicle"]["max_thrust_n"]
        def step(self, frame):
            if frame.seq < {bad}:
                return 0.0, (0.0, 0.0, 0.0), "coast"
            {bad_return}
"""

BREAKS = {
    "exception": ("raise RuntimeError('gimbal\\ntable empty')",
                  "step raised RuntimeError: gimbal table empty"),
    "nan_throttle": ("return math.nan, (0.0, 0.0, 0.0), 'coast'", "throttle is nan"),
    "inf_torque": ("return 0.5, (0.0, math.inf, 0.0), 'coast'", "torque_nm[1] is inf"),
    "nan_nav": ("return 0.5, (0.0, 0.0, 0.0), 2, [0.0] * 6 + [math.nan], 0", "nav[6] is nan"),
    "shape": ("return 0.5, (0.0, 0.0, 0.0)",
              "step returned tuple (0.5, (0.0, 0.0, 0.0)); expected (throttle, torque_nm, "
              "mode) or (throttle, torque_nm, mode, nav, flags)"),
    "torque_shape": ("return 0.5, (0.0, 0.0), 'coast'", "torque_nm has 2 values, expected 3"),
    "unknown_mode": ("return 0.5, (0.0, 0.0, 0.0), 'hover'",
                     "unknown mode 'hover' (modes: init, coast, braking, approach, terminal, "
                     "touchdown, safe)"),
    "mode_index": ("return 0.5, (0.0, 0.0, 0.0), 9", "unknown mode int 9"),
    "flags": ("return 0.5, (0.0, 0.0, 0.0), 1, None, -1", "flags is -1, outside 0 .. 4294967295"),
}


@pytest.fixture
def no_plot(monkeypatch):
    """Skip the descent plot (most of a short run's time; drawn in the no-nav test)."""
    import hil.plots
    monkeypatch.setattr(hil.plots, "plot_descent", lambda *a, **k: None)


def run_over_loop(tmp_path: Path, spec, name: str):
    """One run: plant (this thread) against serve(spec) (another thread) over loop://."""
    cfg = load_scenario("terminal")
    cfg.run.link_timeout_s = 10.0
    url = f"loop://{name}"
    side = PlantSide(cfg, url, tmp_path / "run", control=False, hello_timeout_s=10.0,
                     plots=False)
    got: dict = {}

    def fsw_side() -> None:
        try:
            got["reason"] = serve(url, 10.0, hello_timeout_s=10.0, fsw=spec)
        except FswRunError as e:
            got["error"] = e

    thread = threading.Thread(target=fsw_side, daemon=True)
    thread.start()
    result = side.run()
    thread.join(15.0)
    assert not thread.is_alive()
    return result, got


def history_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- resolve

def test_builtins_resolve_to_fsil_own_flight_software() -> None:
    for name, variant in (("default", "default"), ("legacy", "legacy")):
        entry = resolve(name, load=True)
        assert entry.builtin and entry.board_spec == name and entry.spec == name
        assert entry.source_file == ROOT / "fsw" / "reference.py"
        assert entry.load().__name__ == name.capitalize()
        assert entry.load()(_config()).variant == variant
        assert software_name(entry.load()).startswith("fsil-fsw ") and f"({variant})" in \
            software_name(entry.load())
    assert {"default", "legacy"} <= set(available())


def test_a_file_spec_loads_the_class_with_its_folder_on_the_path(tmp_path) -> None:
    write_fsw(tmp_path, "reg_helper_mod", "GAIN = 0.25\n")
    path = write_fsw(tmp_path, "reg_file_fsw", """
        from reg_helper_mod import GAIN      # a sibling module of the user's own
        class Mine:
            NAME = "mine"
            VERSION = "2.1"
            def __init__(self, config):
                self.config = config
            def step(self, frame):
                return GAIN, (0.0, 0.0, 0.0), "coast"
    """)
    entry = resolve(f"{path}:Mine", load=True)
    assert entry.source_file == path and entry.board_spec == "reg_file_fsw:Mine"
    assert entry.label == "Mine (reg_file_fsw.py)" and entry.spec == f"{path}:Mine"
    checked = CheckedFsw(entry, {"x": 1})
    assert checked.software == "mine 2.1"
    assert checked.step(Frame(0, 0, [])) == (0.25, (0.0, 0.0, 0.0), 1, None, 0)


def test_a_module_spec_and_an_entry_point_resolve(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "site" / "acme_gnc"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "lander.py").write_text("class Lander:\n    def __init__(self, config):\n"
                                   "        pass\n    def step(self, frame):\n"
                                   "        return 0.0, [0, 0, 0], 0\n")
    # An installed distribution declaring the entry point, as pip would write it.
    dist = tmp_path / "site" / "acme_gnc-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-gnc\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[fsil.fsw]\nacme = acme_gnc.lander:Lander\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    by_module = resolve("acme_gnc.lander:Lander", load=True)
    assert by_module.source_file == pkg / "lander.py"
    assert by_module.board_spec == "lander:Lander"
    assert "acme" in available()
    by_name = resolve("acme", load=True)
    assert by_name.load() is by_module.load() and by_name.source_file == pkg / "lander.py"
    assert CheckedFsw(by_name, {}).software == "Lander"


@pytest.mark.parametrize("spec, message", [
    ("", "empty flight software spec"),
    ("nonesuch", "no such flight software; give one of default, legacy"),
    ("no/such/file.py:Fsw", "no such file: no/such/file.py"),
    ("fsw.core:", "expected MODULE:CLASS or PATH/FILE.py:CLASS"),
    ("not_a_module_anywhere:Fsw", "cannot import not_a_module_anywhere: ModuleNotFoundError"),
    ("fsw.core:NoSuchClass", "fsw.core has no NoSuchClass"),
    ("fsw.core:NAME", "NAME in fsw.core is not a class or factory (str)"),
])
def test_a_bad_spec_is_one_configuration_line(spec, message) -> None:
    with pytest.raises(FswSpecError) as info:
        resolve(spec, load=True)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_a_bad_spec_on_the_command_line_is_exit_2_before_any_run(tmp_path, capsys) -> None:
    path = write_fsw(tmp_path, "reg_syntax_error", "def step(:\n")
    out = tmp_path / "run"
    assert main(["run", "--fsw", f"{path}:Fsw", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fsil: error: --fsw {path}:Fsw: cannot import reg_syntax_error: "
                          "SyntaxError")
    assert len(err.splitlines()) == 1 and not out.exists()
    assert main(["fsw", "--link", "loop://x", "--fsw", "nonesuch"]) == 2


# --------------------------------------------------------------------------- the contract

def test_command_normalises_what_step_returns() -> None:
    import numpy as np
    assert command((0.5, [1, 2, 3], "terminal")) == (0.5, (1.0, 2.0, 3.0), 4, None, 0)
    assert command([np.float64(0.5), np.zeros(3), np.int64(2), tuple(range(7)), 5]) == \
        (0.5, (0.0, 0.0, 0.0), 2, tuple(float(x) for x in range(7)), 5)
    for bad in (None, 0.5, (0.5, (0, 0, 0)), (0.5, (0, 0, 0), 1, None)):
        with pytest.raises(ContractError):
            command(bad)
    with pytest.raises(ContractError, match="throttle is not a number: str 'full'"):
        command(("full", (0, 0, 0), 1))
    with pytest.raises(ContractError, match="mode"):
        command((0.5, (0, 0, 0), True))


@pytest.mark.parametrize("kind", sorted(BREAKS))
def test_a_contract_break_ends_the_run_with_exit_3_naming_class_seq_and_problem(
        tmp_path, kind, no_plot) -> None:
    bad_return, problem = BREAKS[kind]
    path = write_fsw(tmp_path, f"reg_break_{kind}",
                     TEMPLATE.format(bad=BAD_AT_SEQ, bad_return=bad_return))
    result, got = run_over_loop(tmp_path, f"{path}:Fsw", f"reg-{kind}")
    line = (f"flight software Fsw (reg_break_{kind}.py) broke the contract at seq "
            f"{BAD_AT_SEQ}: {problem}")
    # The flight software side: exit 3 and the line.
    assert got["error"].exit_code == 3
    assert str(got["error"]).startswith(line) and "\n" not in str(got["error"])
    # The plant side: exit 3, the same line in its reason, the history up to the break kept.
    assert result.exit_code == 3
    assert result.summary["outcome"] == "link_failure"
    assert line in result.summary["reason"]
    assert result.summary["fsw_software"] == "bad-fsw 0.0"
    rows = history_rows(tmp_path / "run")
    assert [int(r["seq"]) for r in rows] == list(range(BAD_AT_SEQ))
    assert (tmp_path / "run" / "summary.json").exists()


def test_a_missing_step_or_a_failing_constructor_ends_the_handshake_with_exit_3(
        tmp_path, no_plot) -> None:
    path = write_fsw(tmp_path, "reg_no_step", """
        class NoStep:
            def __init__(self, config):
                pass
            def update(self, frame):
                return 0.0, (0, 0, 0), 0
        class BadInit:
            def __init__(self, config):
                self.g = config["no_such_key"]
            def step(self, frame):
                return 0.0, (0, 0, 0), 0
    """)
    for cls, problem in (("NoStep", "has no step(frame) method"),
                         ("BadInit", "constructor raised KeyError: 'no_such_key'")):
        result, got = run_over_loop(tmp_path / cls, f"{path}:{cls}", f"reg-{cls}")
        line = (f"flight software {cls} (reg_no_step.py) broke the contract at start "
                f"(before the first frame): {problem}")
        assert str(got["error"]) == line and got["error"].exit_code == 3
        assert result.exit_code == 3 and line in result.summary["reason"]
        assert (tmp_path / cls / "run" / "summary.json").exists()


def test_the_violation_names_the_cycle_for_an_in_process_caller() -> None:
    class Flaky:
        def __init__(self, config):
            pass

        def step(self, frame):
            return (math.nan if frame.seq == 7 else 0.0), (0, 0, 0), "init"

    entry = resolve("default")
    entry._obj = Flaky          # an object the registry resolved (as for an entry point)
    checked = CheckedFsw(entry, {})
    assert checked.step(Frame(6, 0, []))[0] == 0.0
    with pytest.raises(ContractViolation) as info:
        checked.step(Frame(7, 140000, []))
    assert info.value.seq == 7 and info.value.problem == "throttle is nan"
    assert info.value.exit_code == 3


def test_a_user_flight_software_without_nav_reports_no_estimate(tmp_path) -> None:
    path = write_fsw(tmp_path, "reg_no_nav", """
        class Hover:
            def __init__(self, config):
                pass
            def step(self, frame):
                return 0.0, (0.0, 0.0, 0.0), "coast"
    """)
    cfg_time = 1.0
    result, got = run_over_loop_short(tmp_path, f"{path}:Hover", "reg-no-nav", cfg_time)
    assert result.summary["fsw_software"] == "Hover"
    rows = history_rows(tmp_path / "run")
    assert len(rows) >= 40 and rows[-1]["mode"] == "coast"
    assert all(r["nav_alt_m"] in ("", "nan") for r in rows)
    assert (tmp_path / "run" / "descent.png").stat().st_size > 0        # the plot copes
    assert "plot_error" not in result.summary


def run_over_loop_short(tmp_path: Path, spec: str, name: str, sim_s: float):
    cfg = load_scenario("terminal")
    cfg.run.max_sim_time_s = sim_s
    url = f"loop://{name}"
    side = PlantSide(cfg, url, tmp_path / "run", control=False, hello_timeout_s=10.0)
    got: dict = {}
    thread = threading.Thread(target=lambda: got.setdefault(
        "reason", serve(url, 10.0, hello_timeout_s=10.0, fsw=spec)), daemon=True)
    thread.start()
    result = side.run()
    thread.join(15.0)
    return result, got


def _config() -> dict:
    from plant.lander import LanderPlant
    plant = LanderPlant(load_scenario("terminal"))
    plant.reset(1)
    return plant.fsw_config()

