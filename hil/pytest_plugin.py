"""pytest plugin ``fsil``: timing tests of *your* flight software's control loop, in your suite.

Installed with fsil (entry point ``pytest11``: ``fsil = "hil.pytest_plugin"``), so any test
suite in an environment where fsil is installed can write::

    @pytest.mark.fsil(scenario="terminal", max_sim_time_s=30, fsw="my_fsw.py:MyFsw")
    def test_control_loop_meets_its_deadline(fsil_timing):
        assert fsil_timing.deadline_misses == 0
        assert fsil_timing.latency.p99 < 0.002        # seconds

    def test_my_program(fsil_run):
        report = fsil_run("terminal", max_sim_time_s=10, fsw_cmd=["./build/my-fsw", "{link}"])
        assert report.compute.p99 < 0.005

The flight software (docs/your-fsw.md) is ``fsw=`` (a registry spec: ``FILE.py:CLASS``,
``MODULE:CLASS``, an installed name, ``default``, ``legacy``) or ``fsw_cmd=`` (a program:
an argument list or a shell-quoted string, ``{link}`` replaced by the link URL), in the
marker, the fixture call, or on the command line (``--fsil-fsw``, ``--fsil-fsw-cmd``);
unset, fsil's own (``default``) runs. A failed assertion shows the run's figures (the
report's repr is one readable line, and the test's report gets an "fsil timing" section).

Each run is a real ``fsil`` run in real-time mode (``--realtime``): the plant and the flight
software as separate processes, frames paced on the wall clock, every deadline measured,
the run folder under the test's ``tmp_path``. The result is a
:class:`hil.timing.TimingReport` (times in seconds).

The link is a parameter (marker ``link=``, option ``--fsil-link``, ini ``fsil_link``):

    ``ipc`` (default)          ``fsil run``: ZeroMQ over a Unix socket in a temp folder
    ``tcp``                    ``fsil run --link zmq+tcp://127.0.0.1:0``
    ``zmq+ipc://..``, ``zmq+tcp://..``, ``unix://PATH``   ``fsil run --link URL``
    ``serial://PORT[?baud=N]``, ``serial+...``   ``fsil plant --link URL``: the plant serves
                               a flight software already running on a board on that port
    ``virtual``                ``fsil hil --virtual``: the board firmware under MicroPython

Anything else the command needs goes in ``args=[...]`` / ``--fsil-args``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hil.timing import TimingReport

_RESULTS = pytest.StashKey[list]()

DEFAULTS = {"scenario": "terminal", "link": "ipc"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fsil", "fsil real-time timing tests (fixtures fsil_timing, fsil_run)")
    group.addoption("--fsil-scenario", default=None, metavar="NAME|PATH",
                    help="scenario for fsil_timing (default: ini fsil_scenario, else terminal)")
    group.addoption("--fsil-link", default=None, metavar="LINK",
                    help="ipc | tcp | zmq+ipc://.. | zmq+tcp://.. | unix://PATH | serial://PORT | virtual "
                         "(default: ini fsil_link, else ipc)")
    group.addoption("--fsil-max-sim-time", type=float, default=None, metavar="S",
                    help="end each run after S s of sim time (= S s of wall time at real time)")
    group.addoption("--fsil-seed", type=int, default=None, metavar="N", help="run seed")
    group.addoption("--fsil-fsw-load-ms", type=float, default=None, metavar="MS",
                    help="inject MS ms of compute per cycle into the flight software (ZeroMQ "
                         "links)")
    group.addoption("--fsil-fsw", default=None, metavar="SPEC",
                    help="the flight software to time: FILE.py:CLASS, MODULE:CLASS, an "
                         "installed name, default or legacy (see docs/your-fsw.md)")
    group.addoption("--fsil-fsw-cmd", default=None, metavar="CMD",
                    help="time your own program instead: 'PROGRAM ARGS {link}' (ZeroMQ links)")
    group.addoption("--fsil-args", default=None, metavar="ARGS",
                    help="extra arguments for the fsil command, shell-quoted")
    parser.addini("fsil_scenario", "scenario for fsil_timing (name or path)", default=None)
    parser.addini("fsil_link", "link for fsil timing runs", default=None)
    parser.addini("fsil_max_sim_time", "sim seconds per timing run", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fsil(scenario=None, link=None, max_sim_time_s=None, seed=None, "
                   "fsw=None, fsw_cmd=None, fsw_load_ms=None, args=()): settings of the "
                   "fsil_timing run")
    config.stash[_RESULTS] = []


def fsil_command(link: str | None) -> list[str]:
    """The ``fsil`` subcommand and link arguments for a link name or URL."""
    link = link or "ipc"
    if link == "ipc":
        return ["run"]
    if link == "tcp":
        return ["run", "--link", "zmq+tcp://127.0.0.1:0"]
    if link.startswith(("zmq+", "unix://")):
        return ["run", "--link", link]
    if link.startswith("serial"):
        return ["plant", "--link", link]
    if link == "virtual":
        return ["hil", "--virtual"]
    raise pytest.UsageError(f"fsil: unknown link {link!r}; expected ipc, tcp, zmq+ipc://PATH, "
                            f"zmq+tcp://HOST:PORT, unix://PATH, serial://PORT or virtual")


def _fsw_arguments(link: str | None, fsw: str | None, fsw_cmd) -> list[str]:
    """The ``fsil`` arguments that choose the flight software."""
    if fsw is not None and fsw_cmd is not None:
        raise pytest.UsageError("fsil: give fsw= (a class) or fsw_cmd= (a program), not both")
    kind = fsil_command(link)[0]
    if fsw_cmd is not None:
        if kind != "run":
            raise pytest.UsageError(f"fsil: fsw_cmd= needs a ZeroMQ link (ipc, tcp, zmq+...), "
                                    f"not {link!r}")
        text = fsw_cmd if isinstance(fsw_cmd, str) else shlex.join(str(a) for a in fsw_cmd)
        return ["--fsw-cmd", text]
    if fsw is not None:
        if kind == "plant":
            raise pytest.UsageError(f"fsil: on link {link!r} the flight software already runs "
                                    "on the board; fsw= does not apply")
        return ["--fsw", str(fsw)]
    return []


def _timing_report_class():
    from hil.timing import TimingReport

    class FsilTimingReport(TimingReport):
        """A TimingReport whose repr is one readable line of figures (what pytest prints for
        a failed assertion), not every field."""

        def __repr__(self) -> str:
            ms = (lambda x: "-" if x is None else f"{x * 1e3:.3f} ms")
            deadline = "" if self.deadline is None else f", deadline {ms(self.deadline)}"
            return (f"<fsil timing: {self.mode}, {self.outcome}, {self.deadline_misses} misses "
                    f"in {self.cycles} cycles{deadline}, latency p50 {ms(self.latency.p50)} "
                    f"p99 {ms(self.latency.p99)}, compute p50 {ms(self.compute.p50)} p99 "
                    f"{ms(self.compute.p99)}, longest overrun {ms(self.longest_overrun)}>")

    return FsilTimingReport


_REPORT_CLASS: list = []


def timing_report(summary: dict, run_dir: Path, exit_code: int):
    """The run's report (the class is made on first use: hil.timing is not imported while
    pytest collects)."""
    if not _REPORT_CLASS:
        _REPORT_CLASS.append(_timing_report_class())
    return _REPORT_CLASS[0].from_summary(summary, run_dir, exit_code)


class FsilRunner:
    """Runs ``fsil ... --realtime`` in a subprocess and reads its timing report."""

    def __init__(self, config: pytest.Config, base: Path, node: Any) -> None:
        self.config, self.base, self.node = config, base, node
        self.count = 0

    def _setting(self, name: str, given: Any, cast=str) -> Any:
        if given is not None:
            return given
        opt = self.config.getoption(f"--fsil-{name.replace('_', '-')}", None)
        if opt is not None:
            return opt
        ini = {"scenario": "fsil_scenario", "link": "fsil_link",
               "max_sim_time": "fsil_max_sim_time"}.get(name)
        if ini is not None:
            value = self.config.getini(ini)
            if value:
                return cast(value)
        return DEFAULTS.get(name)

    def __call__(self, scenario: str | None = None, *, link: str | None = None,
                 max_sim_time_s: float | None = None, seed: int | None = None,
                 fsw_load_ms: float | None = None, args: list[str] | tuple[str, ...] = (),
                 timeout_s: float | None = None, fsw: str | None = None,
                 fsw_cmd: str | list[str] | tuple[str, ...] | None = None) -> TimingReport:
        scenario = self._setting("scenario", scenario)
        link = self._setting("link", link)
        max_sim = self._setting("max_sim_time", max_sim_time_s, float)
        seed = self._setting("seed", seed)
        load = self._setting("fsw_load_ms", fsw_load_ms)
        if fsw is None and fsw_cmd is None:     # the call's choice beats the command line's
            fsw = self._setting("fsw", None)
            fsw_cmd = self._setting("fsw_cmd", None)
        fsw_args = _fsw_arguments(link, fsw, fsw_cmd)
        extra = list(args) + shlex.split(self.config.getoption("--fsil-args", None) or "")
        self.count += 1
        out = self.base / f"fsil-run-{self.count}"
        cmd = [sys.executable, "-m", "hil.cli", *fsil_command(link), "--realtime",
               "--scenario", str(scenario), "--out", str(out), "--no-progress"]
        if max_sim is not None:
            cmd += ["--max-sim-time", f"{float(max_sim):g}"]
        if seed is not None:
            cmd += ["--seed", str(int(seed))]
        if load:
            cmd += ["--fsw-load-ms", f"{float(load):g}"]
        cmd += fsw_args + extra
        if timeout_s is None and max_sim is not None:
            timeout_s = 2.0 * float(max_sim) + 120.0
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail(f"fsil timing run did not finish within {timeout_s:g} s: "
                        f"{shlex.join(cmd)}", pytrace=False)
        summary_path = out / "summary.json"
        if not summary_path.exists():
            pytest.fail(f"fsil timing run failed (exit {proc.returncode}) without a summary: "
                        f"{shlex.join(cmd)}\n{proc.stderr.strip()}", pytrace=False)
        summary = json.loads(summary_path.read_text())
        if summary.get("outcome") == "link_failure":
            pytest.fail(f"fsil timing run: {summary.get('reason')} ({shlex.join(cmd)})",
                        pytrace=False)
        report = timing_report(summary, out, proc.returncode)
        self.config.stash[_RESULTS].append((self.node.nodeid, report))
        return report


@pytest.fixture
def fsil_run(request: pytest.FixtureRequest, tmp_path: Path) -> FsilRunner:
    """A function that runs a scenario in real time and returns its ``TimingReport``.

    ``fsil_run(scenario=None, *, link=None, max_sim_time_s=None, seed=None, fsw=None,
    fsw_cmd=None, fsw_load_ms=None, args=(), timeout_s=None)``; unset arguments come from the
    ``--fsil-*`` options, then the ini file, then the defaults (scenario ``terminal``, link
    ``ipc``, fsil's own flight software).
    """
    return FsilRunner(request.config, tmp_path, request.node)


@pytest.fixture
def fsil_timing(request: pytest.FixtureRequest, fsil_run: FsilRunner) -> TimingReport:
    """The ``TimingReport`` of one real-time run set by ``@pytest.mark.fsil(...)`` and options."""
    marker = request.node.get_closest_marker("fsil")
    kwargs = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        kwargs.setdefault("scenario", marker.args[0])
    return fsil_run(**kwargs)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test that ran fsil timing runs gets their figures as a report section."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    runs = [r for nodeid, r in item.config.stash.get(_RESULTS, []) if nodeid == item.nodeid]
    if not runs:
        return
    from hil.timing import format_report
    lines = []
    for r in runs:
        lines.append(f"run folder {r.run_dir}: outcome {r.outcome}, exit {r.exit_code}, "
                     f"fsw {r.summary.get('fsw_software')} ({r.summary.get('fsw_runtime')})")
        lines += format_report(r.summary.get("timing") or {})
    rep.sections.append(("fsil timing", "\n".join(lines)))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, [])
    if not results:
        return
    terminalreporter.section("fsil timing")
    for nodeid, r in results:
        p99 = "-" if r.latency.p99 is None else f"{r.latency.p99 * 1e3:.2f} ms"
        deadline = "-" if r.deadline is None else f"{r.deadline * 1e3:g} ms"
        terminalreporter.write_line(
            f"{nodeid}: {r.deadline_misses} misses in {r.cycles} cycles (deadline {deadline}), "
            f"latency p99 {p99}, longest overrun {r.longest_overrun * 1e3:.2f} ms, outcome "
            f"{r.outcome}; {r.run_dir}")
