"""CPU placement of a lockstep run over two processes: the plant on one CPU, the flight
software it started on another (``os.sched_setaffinity``, every thread of each process,
ZeroMQ's I/O threads included).

Why: in lockstep the two processes hand the cycle back and forth, each through its own
ZeroMQ I/O thread. Left to the scheduler, the four threads wander between the CPUs and a
hand-off often wakes a thread on the other CPU (an inter-processor interrupt, costly on a
virtual machine) or behind another process. Pinned, each process's hand-off to its own I/O
thread stays on one CPU, warm in its cache, and the two sides still compute in parallel.
Measured with ``fsil bench lockstep``'s terminal descent on the shared 2-core machine
(load 6-9, alternating runs): 786-1033 us a cycle pinned against 1151-1720 us unpinned;
the plant alone pinned (the flight software free): 1514-2147 us, worse, so a flight
software the plant did not start (a board, a process started separately) leaves the plant
unpinned too.

The plant takes the CPU it is running on, the flight software the next allowed one, so
that runs started side by side on a larger machine spread as the scheduler placed them.
Only ZeroMQ links are placed: over ``unix://`` (no I/O threads) pinning was worse
(terminal descent at load 7-8: 2080 and 4211 us a cycle pinned against 1079 free), and a
serial link's peer is a board. Nothing is pinned with fewer than two allowed CPUs, in
real-time mode (its own policy, docs/timing.md) or with ``FSIL_PIN_CPUS=0``. The plant's threads get their old masks back
when the run ends (a long-lived process, a test or a campaign worker, runs on)."""

from __future__ import annotations

import os
from pathlib import Path


def _tasks(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def _current_cpu() -> int | None:
    """The CPU this process last ran on (/proc/self/stat, field 39)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return None


class Placement:
    """Pins the plant (this process) and the flight software's process for one run."""

    def __init__(self) -> None:
        self.saved: dict[int, set[int]] = {}
        self.cpus: tuple[int, int] | None = None

    def pin(self, fsw_pid: int) -> tuple[int, int] | None:
        """Plant and flight software on two CPUs; (plant CPU, fsw CPU), or None."""
        if os.environ.get("FSIL_PIN_CPUS", "1").strip() == "0" \
                or not hasattr(os, "sched_setaffinity"):
            return None
        try:
            allowed = sorted(os.sched_getaffinity(0))
        except OSError:
            return None
        if len(allowed) < 2:
            return None
        here = _current_cpu()
        i = allowed.index(here) if here in allowed else 0
        plant_cpu, fsw_cpu = allowed[i], allowed[(i + 1) % len(allowed)]
        try:
            for tid in _tasks(fsw_pid):
                os.sched_setaffinity(tid, {fsw_cpu})
        except OSError:          # it already ended: the run reports that, not placement
            return None
        for tid in _tasks(os.getpid()):
            try:
                self.saved[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, {plant_cpu})
            except OSError:      # a thread that ended in between
                self.saved.pop(tid, None)
        self.cpus = (plant_cpu, fsw_cpu)
        return self.cpus

    def restore(self) -> None:
        """The plant's threads back on the CPUs they were allowed before; threads started
        during the run (pinned by inheritance) get the main thread's old mask."""
        if self.cpus is None:
            return
        default = self.saved.get(os.getpid())
        for tid in _tasks(os.getpid()):
            mask = self.saved.get(tid, default)
            if mask is None:
                continue
            try:
                os.sched_setaffinity(tid, mask)
            except OSError:
                pass
        self.saved.clear()
        self.cpus = None
