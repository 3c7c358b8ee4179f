"""The pytest plugin as a user meets it: installed (entry point pytest11), loaded by a pytest
run on a test file outside this repository, its fixtures running real-time fsil runs."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.xdist_group("realtime")  # paced runs: one at a time (pyproject)

REPO = Path(__file__).resolve().parents[1]

USER_TESTS = '''
import pytest

FIFO = {fifo!r}   # SCHED_FIFO where permitted: robust on a shared machine

@pytest.mark.fsil(scenario="terminal", max_sim_time_s=2, args=FIFO)
def test_control_loop_meets_its_deadline(fsil_timing):
    report = fsil_timing
    assert report.mode == "realtime" and report.cycles == 100
    # a shared VM: its host stalls even a SCHED_FIFO loop now and then (up to 11 of 100
    # cycles seen, in 30-90 ms bursts); a loop that cannot keep up misses every cycle
    assert report.deadline_misses < report.cycles // 4
    assert report.latency.p50 < 0.010          # seconds
    assert report.compute.p50 < report.latency.p50
    assert report.deadline == 0.02 and report.run_dir.joinpath("timing.png").exists()

def test_injected_load_is_caught(fsil_run):
    report = fsil_run("terminal", max_sim_time_s=1, fsw_load_ms=30)
    assert report.deadline_misses == report.cycles == 50
    assert report.longest_overrun >= 0.010
    assert report.outcome == "timeout" and report.exit_code == 1

@pytest.mark.fsil(link="tcp", max_sim_time_s=1)
def test_over_tcp(fsil_timing):
    assert fsil_timing.summary["link"].startswith("zmq+tcp://127.0.0.1:")
    assert fsil_timing.cycles == 50

@pytest.mark.fsil(max_sim_time_s=1)
def test_an_impossible_budget_fails(fsil_timing):
    assert fsil_timing.latency.p99 < 1e-9
'''


def _fifo() -> list[str]:
    """Arguments that run a timing run at SCHED_FIFO, where permitted."""
    ok = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 50
    return ["--rt-priority", "50"] if ok else []


def test_plugin_is_installed_and_documents_its_options(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*fsil real-time timing tests*", "*--fsil-scenario=NAME|PATH*",
                                 "*--fsil-link=LINK*", "*--fsil-fsw-load-ms=MS*"])
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.fsil(scenario=None, link=None*"])


def test_users_timing_tests_pass_and_fail_on_their_numbers(pytester):
    assert REPO not in pytester.path.resolve().parents      # a user's folder, not ours
    pytester.makepyfile(test_user_loop=USER_TESTS.format(fifo=_fifo()))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*test_an_impossible_budget_fails*",
        "*fsil timing*",
        "*test_control_loop_meets_its_deadline: * misses in 100 cycles (deadline 20 ms)*",
        "*test_injected_load_is_caught: 50 misses in 50 cycles*",
    ])


USER_FSW = """
import time

class SlowFsw:
    NAME = "slow-fsw"
    VERSION = "0.1"

    def __init__(self, config):
        pass

    def step(self, frame):
        time.sleep(0.004)               # 4 ms of 'work' per cycle
        return 0.0, (0.0, 0.0, 0.0), "coast"
"""

USER_FSW_TESTS = '''
import sys
import pytest

FIFO = {fifo!r}

@pytest.mark.fsil(max_sim_time_s=1, fsw="slow_fsw.py:SlowFsw", args=FIFO)
def test_my_class_is_timed(fsil_timing):
    assert fsil_timing.summary["fsw_software"] == "slow-fsw 0.1"
    assert fsil_timing.compute.p50 >= 0.004          # its compute, not fsil's own
    assert fsil_timing.latency.p50 >= fsil_timing.compute.p50

def test_my_program_misses_an_impossible_budget(fsil_run):
    report = fsil_run(max_sim_time_s=1, args=FIFO, fsw_cmd=[
        sys.executable, "-m", "hil.cli", "fsw", "--link", "{{link}}", "--fsw", "slow_fsw.py:SlowFsw"])
    assert report.compute.p99 < 0.001
'''


def test_a_users_own_flight_software_is_timed_and_a_failure_shows_its_figures(pytester):
    pytester.makepyfile(slow_fsw=USER_FSW, test_mine=USER_FSW_TESTS.format(fifo=_fifo()))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    # The failed assertion: one readable line of figures, not a dump of every field.
    result.stdout.fnmatch_lines([
        "*assert * < 0.001",
        "*where * = <fsil timing: realtime, timeout, * misses in 50 cycles, deadline 20.000 ms, "
        "latency p50 * ms p99 * ms, compute p50 * ms p99 * ms, longest overrun * ms>.compute",
        "*- fsil timing -*",
        "*fsw slow-fsw 0.1 (cpython *)*",
        "*compute    p50*",
    ])
    assert "policy={" not in out and "TimingReport(" not in out


def test_settings_from_the_ini_file_and_command_line(pytester):
    pytester.makeini("[pytest]\nfsil_scenario = terminal\nfsil_max_sim_time = 1\n")
    pytester.makepyfile(test_cfg='''
        def test_from_ini(fsil_timing):
            assert fsil_timing.cycles == 50
            assert fsil_timing.summary["scenario"] == "terminal"
            assert fsil_timing.summary["seed"] == 7
    ''')
    fifo = [f"--fsil-args={' '.join(_fifo())}"] if _fifo() else []
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fsil-seed", "7", *fifo)
    result.assert_outcomes(passed=1)


def test_a_run_that_cannot_start_fails_the_test_with_the_reason(pytester):
    pytester.makepyfile(test_bad='''
        import pytest
        @pytest.mark.fsil(scenario="no-such-scenario", max_sim_time_s=1)
        def test_x(fsil_timing):
            pass
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fsil timing run failed (exit 2)*",
                                 '*no shipped scenario named "no-such-scenario"*'])


def _virtual_problem() -> str | None:
    try:
        from hil import virtual
    except ImportError as e:   # the virtual board is not in this checkout
        return str(e)
    return virtual.problem()


def test_link_is_a_parameter_virtual_board_over_serial(pytester):
    """The same fixture over the virtual board: MicroPython behind a pseudo-terminal."""
    why = _virtual_problem()
    if why is not None:
        import pytest
        pytest.skip(f"virtual board unavailable: {why}")
    pytester.makepyfile(test_board=f'''
        import pytest
        @pytest.mark.fsil(link="virtual", max_sim_time_s=2, args={_fifo()!r})
        def test_board_loop(fsil_timing):
            assert fsil_timing.summary["link"].startswith("serial://")
            assert fsil_timing.summary["fsw_runtime"].startswith("micropython")
            assert fsil_timing.cycles == 100
            # MicroPython under Node.js at SCHED_FIFO: 0 misses on a quiet machine, 2 of 100
            # (overrun 8 ms) in a whole-suite run at load 7; a loop that cannot keep up with
            # the 20 ms deadline misses them all
            assert fsil_timing.deadline_misses < fsil_timing.cycles // 4
            t = fsil_timing.summary["timing"]
            assert fsil_timing.compute.count == t["commands_received"]   # every command timed
            # every frame sent is answered but a dropped one and the last (still owed when the
            # run ended: 96 of 97 in a whole-suite run beside bench/cpu_load.py)
            assert t["frames_sent"] == 100 - t["skipped_frames"]
            assert t["commands_received"] >= t["frames_sent"] - t["dropped_commands"] - 1
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("link, want", [
    (None, ["run"]), ("tcp", ["run", "--link", "zmq+tcp://127.0.0.1:0"]),
    ("zmq+ipc:///tmp/x.sock", ["run", "--link", "zmq+ipc:///tmp/x.sock"]),
    ("unix:///tmp/x.sock", ["run", "--link", "unix:///tmp/x.sock"]),
    ("serial:///dev/ttyACM0", ["plant", "--link", "serial:///dev/ttyACM0"]),
    ("virtual", ["hil", "--virtual"]),
])
def test_each_link_maps_to_its_fsil_command(link, want):
    from hil.pytest_plugin import fsil_command
    assert fsil_command(link) == want


def test_an_unknown_link_names_every_form():
    from hil.pytest_plugin import fsil_command
    with pytest.raises(pytest.UsageError, match="unix://PATH"):
        fsil_command("udp://x")
