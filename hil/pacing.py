"""Compatibility: wall-clock pacing moved to :mod:`hil.engine.pacing`."""

from hil.engine.pacing import (SPIN_FRACTION, SPIN_NS, Pacer, clock_ns, coarse_ms,  # noqa: F401
                               scheduling, set_fifo_priority, spin_for, wait_until)
