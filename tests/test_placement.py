"""CPU placement of a lockstep run (hil/engine/placement.py): the plant and the flight
software it started each on one CPU of their own, the plant's masks restored after."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from hil.engine.placement import Placement, _tasks

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU allowed")


@pytest.fixture
def child():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield p
    p.kill()
    p.wait()


def test_plant_and_flight_software_on_two_cpus_then_the_plant_as_before(child) -> None:
    before = os.sched_getaffinity(0)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)        # a thread of the plant (ZeroMQ's)
    worker.start()
    try:
        placement = Placement()
        cpus = placement.pin(child.pid)
        assert cpus is not None and cpus[0] != cpus[1] and set(cpus) <= before
        assert os.sched_getaffinity(child.pid) == {cpus[1]}
        assert all(os.sched_getaffinity(t) == {cpus[0]} for t in _tasks(os.getpid()))
        late = threading.Thread(target=stop.wait)      # started pinned, by inheritance
        late.start()
        placement.restore()
        assert all(os.sched_getaffinity(t) == before for t in _tasks(os.getpid()))
        assert os.sched_getaffinity(child.pid) == {cpus[1]}    # until it ends
        stop.set()
        late.join()
    finally:
        stop.set()
        worker.join()
        os.sched_setaffinity(0, before)


def test_nothing_is_pinned_when_switched_off_or_the_peer_is_gone(child, monkeypatch) -> None:
    before = os.sched_getaffinity(0)
    monkeypatch.setenv("FSIL_PIN_CPUS", "0")
    assert Placement().pin(child.pid) is None
    monkeypatch.delenv("FSIL_PIN_CPUS")
    child.kill()
    child.wait()
    placement = Placement()
    assert placement.pin(child.pid) is None
    placement.restore()
    assert os.sched_getaffinity(0) == before
