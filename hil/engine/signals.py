"""Signals end a run in order: SIGINT and SIGTERM become :class:`hil.errors.Interrupted`.

The command line handles the two signals around a run and its clean-up
(:func:`handle_signals`, main thread only). A signal does not raise where it lands -- that
could be halfway through writing a history row -- it is *noted*, and the run's loops look
for it at their safe points (:func:`check`: once per cycle, and in every slice of a wait
for the peer), then raise :class:`Interrupted` there. The engine then ends the run in
order: END ``interrupted: ...`` to the peer, the history closed, summary.json with
outcome ``interrupted`` and the plots; the command line stops and reaps the
flight-software process, removes its temporary folder, prints one line and exits
``EXIT_INTERRUPTED``. A loop with safe points of its own (``fsil mc`` between completions)
asks :func:`noted` instead and stops there.

The handlers are installed whatever the inherited disposition: a process started as a
background job of a non-interactive shell begins with SIGINT ignored (POSIX), and Python
leaves it so; ``fsil`` still ends in order on ``kill -INT``.

If a loop is stuck where it does not look (a flight software's ``step`` that never
returns, in process), a second signal -- the user's second Ctrl-C, or the one this module
sends the main thread itself :data:`NUDGE_S` after the first -- raises :class:`Interrupted`
at once, but only while a run's loop runs (:func:`armed`): never in the write-out, which
must not be cut short. A signal noted before the loop starts interrupts it on entry; once
the run has taken its signal, more signals change nothing.

Outside :func:`handle_signals` (a library caller, a pytest session, a Dask worker) nothing
changes: Python's own handling applies and :func:`check` costs one attribute read.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from hil.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)
NUDGE_S = 0.5   # after this, a noted signal is raised wherever the armed loop is


class _State:
    """The process's signal state (one run at a time per process)."""

    installed = False           # handle_signals() is in effect
    armed = False               # a run's loop is running
    pending: str | None = None  # a noted signal's name, not yet raised
    signum = 0
    noted_at = 0.0              # time.monotonic() when the pending signal came, s
    taken = False               # Interrupted was raised: the run is ending


STATE = _State()
_LOCK = threading.Lock()   # the nudge never signals once the handlers are restored


def _on_signal(signum: int, frame) -> None:
    if STATE.taken:
        return                  # the run is already ending in order
    if STATE.pending is None:
        STATE.pending, STATE.signum = signal.Signals(signum).name, signum
        STATE.noted_at = time.monotonic()
        nudge = threading.Timer(NUDGE_S, _nudge, (threading.main_thread().ident,))
        nudge.daemon = True
        nudge.start()
    elif STATE.armed:           # a second signal: the loop did not look in time
        _take()


def _nudge(main_ident: int) -> None:
    """The second signal, sent to the main thread (it wakes a blocking call there)."""
    with _LOCK:
        if STATE.installed and STATE.pending is not None and not STATE.taken:
            try:
                signal.pthread_kill(main_ident, STATE.signum)
            except (OSError, ValueError):
                pass


def _take() -> None:
    STATE.taken = True
    raise Interrupted(STATE.pending or "a signal")


def check() -> None:
    """Raise :class:`Interrupted` if a handled signal is waiting (the loops' safe points)."""
    if STATE.pending is not None and not STATE.taken:
        _take()


def instead(failure: BaseException) -> BaseException:
    """``failure`` -- or :class:`Interrupted` if a handled signal is waiting: Ctrl-C reaches
    the flight-software process too, and it may end the link (END, or its death) before the
    plant's loop reaches a safe point; the run was still interrupted."""
    if STATE.pending is not None and not STATE.taken:
        STATE.taken = True
        return Interrupted(STATE.pending)
    return failure


def noted() -> str | None:
    """The name of a handled signal that has come (``"SIGINT"``), else None: for a loop that
    stops at its own safe points instead of raising (``fsil mc`` between completions).
    Always None outside :func:`handle_signals`."""
    return STATE.pending if STATE.installed else None


def seconds_since_signal() -> float | None:
    """Seconds since the handled signal came (None: none has, or outside
    :func:`handle_signals`): the write-out's budget for optional work (the plot)."""
    if not STATE.installed or STATE.pending is None:
        return None
    return time.monotonic() - STATE.noted_at


@contextmanager
def handle_signals() -> Iterator[None]:
    """SIGINT and SIGTERM handled as this module says for the duration of the block (the
    previous handlers restored after it): around a run and its clean-up. A no-op outside
    the main thread or inside another such block."""
    if threading.current_thread() is not threading.main_thread() or STATE.installed:
        yield
        return
    previous = {s: signal.signal(s, _on_signal) for s in SIGNALS}
    STATE.installed, STATE.armed, STATE.pending, STATE.taken = True, False, None, False
    try:
        yield
    finally:
        with _LOCK:
            STATE.installed = STATE.armed = False
            for s, h in previous.items():
                signal.signal(s, h)
            # A signal noted too late for this run (in its clean-up) must not interrupt a
            # later run of the same process (a library caller, a test).
            STATE.pending, STATE.taken = None, False


@contextmanager
def armed() -> Iterator[None]:
    """Around a run's loop: a signal noted before it is raised on entry, a second signal
    inside it is raised at once."""
    if not STATE.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    check()
    STATE.armed = True
    try:
        yield
    finally:
        STATE.armed = False
