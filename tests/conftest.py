"""Suite-wide checks: no test module leaves a link open; no test leaves a signal handler.

Every :class:`bridge.link.Link` created in this process during a test module is recorded;
when the module ends, any still open is closed and the module's last test fails with the
list (python-can's test suite does the same for buses). Links in child processes are their
processes' business: those end with the process.

SIGINT and SIGTERM: each test (with its fixtures' set-up and tear-down) must leave the
handlers it found; one that does not fails, and the handlers are put back. The suite starts
with Python's own SIGINT handler even when it was launched with SIGINT ignored (a background
job of a non-interactive shell, POSIX): the tests that signal a process rely on Python's
usual Ctrl-C, in this process and in the children it starts (an ignored disposition is
inherited across exec; a handled one is reset to the default).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bridge.link import Link

_created: list[Link] = []
_init = Link.__init__


def _recording_init(self: Link, *args, **kwargs) -> None:
    _init(self, *args, **kwargs)
    _created.append(self)


Link.__init__ = _recording_init  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="module")
def no_leaked_links(request: pytest.FixtureRequest):
    """Fail the module if it leaves a link open (and close it, so the next module is clean)."""
    start = len(_created)
    yield
    leaked = [link for link in _created[start:] if not link.closed]
    del _created[start:]
    for link in leaked:
        link.close()
    if leaked:
        pytest.fail(f"{request.module.__name__} left {len(leaked)} link(s) open: "
                    + ", ".join(repr(link) for link in leaked[:5]), pytrace=False)


SIGNALS = (signal.SIGINT, signal.SIGTERM)
_handlers_before: dict[str, dict[int, object]] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _handlers_before[item.nodeid] = {s: signal.getsignal(s) for s in SIGNALS}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """Fail the test that leaves another SIGINT/SIGTERM handler than it found (its body or
    its fixtures: a module fixture's set-up counts against the module's first test, its
    tear-down against the last), and put the handler back."""
    result = yield
    before = _handlers_before.pop(item.nodeid, None)
    if before is not None:
        changed = [s for s in SIGNALS if signal.getsignal(s) is not before[s]]
        leaked = [f"{signal.Signals(s).name} {signal.getsignal(s)!r} (was {before[s]!r})"
                  for s in changed]
        for s in changed:
            if before[s] is not None:      # None: not set from Python; cannot be put back
                signal.signal(s, before[s])
        if leaked:
            pytest.fail("left a signal handler in place: " + "; ".join(leaked), pytrace=False)
    return result


@pytest.fixture(scope="session", autouse=True)
def _plant_kernel_ready():
    """Compile (or load from its cache) the plant's kernel once, before any test: on a fresh
    clone the first compile (C: about 0.3 s; numba, where no C compiler is found: 3.5 s of
    CPU) must not land inside the first test's HELLO or command timeout. Plants in later
    processes load the cache."""
    from hil.scenario import load_scenario
    from plant.lander import LanderPlant
    LanderPlant(load_scenario("terminal"))


# --------------------------------------------------------------------- scheduling on workers
#
# The suite runs on three workers (pytest-xdist, ``--dist loadgroup``; pyproject.toml): on two
# cores, because the real-time group's worker mostly waits on the wall clock (paced runs at
# SCHED_FIFO, about 65 s of CPU in 170 s). Two rules keep it short:
#
# 1. A fixture shared by several tests of a module (scope module, class, package or session,
#    defined in that module) is computed on every worker that runs one of those tests: a
#    shared landing, a campaign, a set of signalled runs would be flown twice. The tests that
#    share one get one ``xdist_group`` (named after the module and the fixtures), so one worker
#    runs them all and computes it once. Tests already in a group (``realtime``) keep theirs.
# 2. xdist hands out the groups and the single tests in collection order
#    (``--no-loadscope-reorder``): the long ones are moved to the front, so neither worker
#    is left with a long test at the end while the other idles. The figures below are rough
#    idle seconds per work unit (a group or a test), measured with ``--durations``; they only
#    set the order (a wrong one costs time, never a result). Units not listed keep their
#    place after the listed ones.
LONG_FIRST_S = {                  # measured 4 Dec 2026: CPU s per unit (realtime: paced wall)
    "realtime": 169,              # 65 s CPU; the rest is paced waiting
    "tests/test_virtual_board.py::test_virtual_board_lands_the_terminal": 55,
    "test_mc:": 37,
    "test_fsw_core:": 32,
    "tests/test_cli_e2e.py::test_nominal_lands_from_pdi": 31,
    "tests/test_mission_scenarios.py::test_cli_legacy_run": 21,
    "test_cli_e2e:": 21,
    "replay:m2-late-lrf:legacy": 20,
    "tests/test_fsw_imu_grade.py::test_a_blind_landing": 16,
    "tests/test_fsw_core.py::test_tactical": 14,
    "replay:m2-late-lrf:default": 14,
    "test_inject:": 14,
    "replay:im1-no-lrf:default": 13,
    "tests/test_mission_scenarios.py::test_default_diverts": 12,
    "tests/test_bridge_client.py::test_a_users_process_with_the_client_lands": 12,
    "test_c_example:": 12,
    "tests/test_mission_scenarios.py::test_default_lands_m2_on_a_seed": 11,
    "test_signals:ended": 11,
    "test_line_noise:": 11,
    "tests/test_fsw_imu_grade.py::test_mems_braking": 11,
    "replay:im1-no-lrf:legacy": 11,
    "test_pico_wire:": 11,
    "tests/test_inject.py::test_control_protocol": 10,
    "tests/test_kernel.py::test_a_whole_descent": 8,
    "replay:m1-crater-rim:legacy": 8,
    "tests/test_fsw_float32.py::test_terminal": 7,
    "tests/test_examples.py::": 7,
    "replay:m1-crater-rim:default": 7,
    "tests/test_fsw_core.py::test_default_lands_through": 6,
    "tests/test_fsw_core.py::test_told_vehicle": 6,
    "tests/test_fsw_core.py::test_a_frozen_velocimeter": 6,
    "tests/test_engine_speed.py::test_numba": 6,
    "tests/test_fsw_core.py::test_a_height_dispute": 5,
    "tests/test_kernel.py::test_a_second_process": 4,
    "tests/test_bad_peer.py::test_fsw_reports_wrong_version": 4,   # mostly a timeout's wait
}


def _shared_fixtures(item: pytest.Item) -> list[str]:
    """The fixtures this test shares with others of its module (defined in the module, wider
    than one test)."""
    module = item.nodeid.split("::")[0]
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    shared = []
    for name in info.names_closure:
        defs = info.name2fixturedefs.get(name)
        if not defs:
            continue
        fixturedef = defs[-1]
        if fixturedef.scope != "function" and str(fixturedef.baseid).startswith(module):
            shared.append(name)
    return shared


def _group_by_shared_fixtures(items: list[pytest.Item]) -> None:
    """Rule 1: one xdist_group per set of tests linked by the shared fixtures they use."""
    parent: dict[str, str] = {}          # union-find over "module::fixture"

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    uses = {}
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        module = item.nodeid.split("::")[0]
        keys = [f"{module}::{name}" for name in _shared_fixtures(item)]
        if keys:
            uses[item] = keys
            for key in keys:
                parent[find(key)] = find(keys[0])
    members: dict[str, list[str]] = {}
    for key in parent:
        members.setdefault(find(key), []).append(key.split("::")[1])
    for item, keys in uses.items():
        module = Path(keys[0].split("::")[0]).stem
        item.add_marker(pytest.mark.xdist_group(f"{module}:{'+'.join(sorted(members[find(keys[0])]))}"))


def _unit(item: pytest.Item) -> str:
    """The work unit xdist schedules this test in: its group, or the test alone."""
    mark = item.get_closest_marker("xdist_group")
    return mark.args[0] if mark is not None else item.nodeid


def _long_first(items: list[pytest.Item]) -> None:
    """Rule 2: units in order of their LONG_FIRST_S figure (a group's members kept together)."""
    def weight(item: pytest.Item) -> float:
        unit = _unit(item)
        return max((s for key, s in LONG_FIRST_S.items()
                    if unit == key or unit.startswith(key) or item.nodeid.startswith(key)),
                   default=0.0)

    first_index: dict[str, int] = {}
    unit_weight: dict[str, float] = {}
    for index, item in enumerate(items):
        unit = _unit(item)
        first_index.setdefault(unit, index)
        unit_weight[unit] = max(unit_weight.get(unit, 0.0), weight(item))
    items.sort(key=lambda it: (-unit_weight[_unit(it)], first_index[_unit(it)]))


@pytest.hookimpl(tryfirst=True)  # before xdist appends the group to each test's id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _group_by_shared_fixtures(items)
    _long_first(items)


def pytest_configure(config: pytest.Config) -> None:
    """Python's own SIGINT handler if the suite was started with SIGINT ignored (see the
    module's docstring). Refuse --dist loadgroup where it silently does not group: with
    pytest 9.2 and pytest-xdist up to 3.8 the xdist_group marks are ignored (pytest-xdist
    issue 1386), so two paced runs would overlap and shared fixtures be computed on both
    workers."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if config.getoption("dist", "no") != "loadgroup" or not config.getoption("numprocesses", None):
        return
    from importlib.metadata import version
    xdist = tuple(int(part) for part in version("pytest-xdist").split(".")[:2])
    if pytest.version_tuple[:2] >= (9, 2) and xdist <= (3, 8):
        raise pytest.UsageError(
            f"pytest {pytest.__version__} with pytest-xdist {version('pytest-xdist')} ignores "
            "xdist_group (pytest-xdist issue 1386): reinstall the test extra "
            "(pip install -e '.[test]', which keeps pytest below 9.2) or run with -n 0")
