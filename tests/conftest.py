"""Suite-wide checks: no test module leaves a link open.

Every :class:`bridge.link.Link` created in this process during a test module is recorded;
when the module ends, any still open is closed and the module's last test fails with the
list (python-can's test suite does the same for buses). Links in child processes are their
processes' business: those end with the process.
"""

from __future__ import annotations

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


@pytest.fixture(scope="session", autouse=True)
def _plant_kernel_ready():
    """Compile (or load from numba's cache) the plant's kernel once, before any test: on a
    fresh clone the first compile costs about 3.5 s of CPU, which must not land inside the
    first test's HELLO or command timeout. Plants in later processes load the cache."""
    from hil.scenario import load_scenario
    from plant.lander import LanderPlant
    LanderPlant(load_scenario("terminal"))
