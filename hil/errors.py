"""The harness's one exception tree, and the process exit codes it maps to.

Exit codes of ``fsil`` (and of anything else that ends a run):

    0  landed: the run completed and touchdown met every [touchdown] criterion
    1  the run ended without a good landing (crash, hard or tilted touchdown, time limit
       reached, or a :class:`RunFailure` that stopped it early)
    2  bad arguments or configuration (:class:`ConfigError`, :class:`ScenarioError`)
    3  link failure: the peer stalled, vanished or sent something unreadable (:class:`LinkFailure`)
  4  the history writer failed: the process that formats and writes the history died,
     stalled or could not write (:class:`HistoryWriterFailure`); the run stops there, its
     summary (outcome ``history_failure``) says what the history holds
  130  interrupted: SIGINT or SIGTERM ended the run (:class:`Interrupted`; 128 + SIGINT, as a
       shell reports Ctrl-C); the run's history and summary (outcome ``interrupted``) are kept

Errors from lower layers (OS, ZeroMQ, serial, tomllib) are converted at the boundary with
``raise ... from error``; callers tell errors apart by class, never by message text.
"""

from __future__ import annotations

EXIT_LANDED = 0
EXIT_NOT_LANDED = 1
EXIT_CONFIG = 2
EXIT_LINK = 3
EXIT_HISTORY = 4
EXIT_INTERRUPTED = 130


class HilError(Exception):
    """Base of every harness error; ``exit_code`` is what the process should exit with."""

    exit_code: int = EXIT_NOT_LANDED


class ConfigError(HilError):
    """Bad command-line arguments or configuration."""

    exit_code = EXIT_CONFIG


class ScenarioError(ConfigError):
    """A scenario file that cannot be used: missing, not TOML, or a bad key or value.

    ``path`` is the file as the user named it, ``key`` the dotted key path
    (``"vehicle.max_thrust_n"``, ``"terrain.craters[1].radius_m"`` with a 0-based index,
    or ``""`` for the file as a whole) and ``reason`` the problem without the file name.
    """

    def __init__(self, path: str, key: str, reason: str) -> None:
        self.path, self.key, self.reason = str(path), key, reason
        super().__init__(f'scenario "{self.path}": {reason}')


class LinkFailure(HilError):
    """The link to the peer failed: which side stalled, at which sequence number, after how long.

    ``side`` is the side that stopped answering (``"plant"`` or ``"fsw"``), ``seq`` the last
    frame sequence number sent or expected, ``waited_s`` how long we waited for it.
    """

    exit_code = EXIT_LINK

    def __init__(self, detail: str, *, side: str | None = None, seq: int | None = None,
                 waited_s: float | None = None) -> None:
        self.detail, self.side, self.seq, self.waited_s = detail, side, seq, waited_s
        parts = ["link failure"]
        if side is not None:
            parts.append(f"{side} stalled")
        if seq is not None:
            parts.append(f"at seq {seq}")
        if waited_s is not None:
            parts.append(f"after {waited_s:.3g} s")
        head = parts[0] if len(parts) == 1 else f"{parts[0]}: {' '.join(parts[1:])}"
        super().__init__(f"{head}: {detail}" if detail else head)


class PeerEnded(LinkFailure):
    """The flight software sent END: it ended the run itself (it needs no END back)."""


class RunFailure(HilError):
    """The run could not go on (plant diverged, flight software reported a fault, disk full)."""

    exit_code = EXIT_NOT_LANDED


class HistoryWriterFailure(HilError):
    """The history writer (:mod:`hil.engine.writer`, a process of its own) died, stalled or
    could not write; the message says which process, how, and what the history holds."""

    exit_code = EXIT_HISTORY
    outcome = "history_failure"


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM ended the run (:mod:`hil.engine.signals`); ``signal_name`` says which.

    Deliberately outside :class:`HilError`, under :class:`KeyboardInterrupt` (a
    ``BaseException``): an ``except Exception`` -- in a flight software's ``step``, in the
    contract checker -- must not swallow it.
    """

    exit_code = EXIT_INTERRUPTED

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        super().__init__(f"interrupted by {signal_name}")
