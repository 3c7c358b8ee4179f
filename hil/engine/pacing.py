"""Wall-clock pacing on absolute deadlines: sleep until shortly before, then spin.

Every due time is ``t0 + k * period`` in integer nanoseconds of the monotonic clock
(``time.perf_counter_ns``, CLOCK_MONOTONIC on Linux), so the rate never drifts: a late
cycle does not push the next one back (``next += period``, never ``sleep(period)``).

A wait first blocks in coarse slices -- ``time.sleep`` or, in the plant, a poll of the link
so commands are read the moment they arrive -- until ``spin_ns`` before the due time, then
spins on the clock for the last stretch (:func:`spin_for`: 1.5 ms, at most a quarter of the
period). The operating system's sleep overshoots by tens to hundreds of microseconds (more
on a busy or virtual machine); the spin absorbs what is less than the window, at the price
of that much CPU per cycle. ``fsil bench timing`` measures
the resulting wake-up error beside cyclictest's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import time
from typing import Callable

SPIN_NS = 1_500_000   # spin the last 1.5 ms before a due time (Trick sleeps to ~2 ms before)
SPIN_FRACTION = 4     # ... but at most a quarter of the period, so the loop sleeps every cycle

clock_ns = time.perf_counter_ns


def spin_for(period_ns: int) -> int:
    """The spin window for a period: 1.5 ms, at most a quarter of the period (250 us at 1 kHz).

    A loop that never sleeps is preempted by the scheduler's tick under SCHED_OTHER and
    throttled by the kernel's real-time budget under SCHED_FIFO: both cost milliseconds.
    """
    return min(SPIN_NS, period_ns // SPIN_FRACTION)


def coarse_ms(remaining_ns: int, spin_ns: int = SPIN_NS) -> float:
    """Seconds to block before spinning: whole milliseconds, so a poll that rounds its
    timeout up to the next millisecond (ZeroMQ, ``select``) still wakes before the spin."""
    return max(0, (remaining_ns - spin_ns) // 1_000_000) / 1000.0


def wait_until(due_ns: int, idle: Callable[[float], None] | None = None,
               spin_ns: int = SPIN_NS) -> int:
    """Return at ``due_ns`` or just after it (the clock reading when it saw the due time pass).

    Without ``idle`` it sleeps (``time.sleep``) until ``spin_ns`` before the due time, then
    spins on the clock. With ``idle(timeout_s)`` -- a poll that blocks at most ``timeout_s``
    -- it calls that instead: with whole milliseconds while more than ``spin_ns`` (plus the
    rounding) remains, then with ``0`` on every turn of the spin.
    """
    while True:
        now = clock_ns()
        remaining = due_ns - now
        if remaining <= 0:
            return now
        if idle is None:
            if remaining > spin_ns:
                time.sleep((remaining - spin_ns) * 1e-9)
            continue
        slice_s = coarse_ms(remaining, spin_ns)
        idle(slice_s)


class Pacer:
    """Due times ``t0 + k * period_ns``; :meth:`wait` returns the wake-up time of cycle k.

    The wake-up error ``wake - due`` is what ``fsil bench timing`` reports and what the plant
    records as its start jitter (there measured at the frame's send).
    """

    def __init__(self, period_ns: int, spin_ns: int | None = None) -> None:
        if period_ns <= 0:
            raise ValueError(f"period must be > 0 ns, got {period_ns}")
        self.period_ns = int(period_ns)
        self.spin_ns = spin_for(self.period_ns) if spin_ns is None else int(spin_ns)
        self.t0_ns = 0

    def start(self, lead_ns: int | None = None) -> int:
        """Set t0 one period (or ``lead_ns``) from now; returns t0."""
        self.t0_ns = clock_ns() + (self.period_ns if lead_ns is None else lead_ns)
        return self.t0_ns

    def due(self, k: int) -> int:
        """Due time of cycle ``k``, ns on the monotonic clock."""
        return self.t0_ns + k * self.period_ns

    def wait(self, k: int, idle: Callable[[float], None] | None = None) -> int:
        """Wait for cycle ``k``'s due time; returns the clock reading at wake-up."""
        return wait_until(self.t0_ns + k * self.period_ns, idle, self.spin_ns)


def set_fifo_priority(priority: int) -> None:
    """Run this process (and the processes it starts) at SCHED_FIFO ``priority`` (1..99).

    Raises PermissionError with the remedy when not allowed (needs root, CAP_SYS_NICE or an
    rtprio limit: ``ulimit -r``). The kernel's RT throttling (95 % by default) keeps a
    runaway FIFO process from locking up the machine.
    """
    import os
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError as e:
        raise PermissionError(f"SCHED_FIFO priority {priority} not permitted: run as root, "
                              f"grant CAP_SYS_NICE, or raise the rtprio limit (ulimit -r)") from e


@contextlib.contextmanager
def normal_priority() -> Iterator[None]:
    """This thread at SCHED_OTHER inside the block when it runs at a real-time policy, then
    back. For CPU-bound work after a paced loop (drawing the plots: about 1 s of CPU): at
    SCHED_FIFO it would hold its CPU from every other process of the machine for the
    kernel's whole real-time budget (950 ms of each second by default)."""
    import os
    try:
        policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    except (AttributeError, OSError):      # no POSIX scheduling here
        yield
        return
    lowered = False
    if policy in (os.SCHED_FIFO, os.SCHED_RR):
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            lowered = True
        except OSError:
            pass
    try:
        yield
    finally:
        if lowered:
            try:
                os.sched_setscheduler(0, policy, param)
            except OSError:                # may not raise it again: it stays lower
                pass


def scheduling() -> str:
    """This process's scheduling class, e.g. ``"SCHED_OTHER"`` or ``"SCHED_FIFO 50"``."""
    import os
    policy = os.sched_getscheduler(0)
    name = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR",
            getattr(os, "SCHED_BATCH", -9): "SCHED_BATCH",
            getattr(os, "SCHED_IDLE", -9): "SCHED_IDLE"}.get(policy, str(policy))
    prio = os.sched_getparam(0).sched_priority
    return f"{name} {prio}" if prio else name
