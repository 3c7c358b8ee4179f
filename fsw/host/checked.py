"""The flight software behind the contract checker (host side).

:class:`CheckedFsw` constructs a resolved flight software and calls its ``step`` for each
frame; whatever breaks the contract (docs/your-fsw.md) -- a constructor or step that
raises, no ``step`` method, a wrong return shape, a non-finite throttle, torque or nav
value, an unknown mode -- becomes one :class:`ContractViolation` (exit 3) naming the class,
the cycle and the problem, e.g.::

    flight software MyFsw (my_fsw.py) broke the contract at seq 412: throttle is nan
"""

from __future__ import annotations

from typing import Any

from fsw.contract import ContractError, check_object, command, software_name
from fsw.host.registry import FswEntry
from hil.errors import EXIT_LINK, HilError

MAX_PROBLEM_CHARS = 300


class ContractViolation(HilError):
    """The user's flight software broke the contract; ``seq`` is None before the first frame."""

    exit_code = EXIT_LINK

    def __init__(self, label: str, seq: int | None, problem: str) -> None:
        self.label, self.seq, self.problem = label, seq, problem
        when = "at start (before the first frame)" if seq is None else f"at seq {seq}"
        super().__init__(f"flight software {label} broke the contract {when}: {problem}")


class CheckedFsw:
    """A flight software constructed from ``config`` whose every step is checked.

    ``step(frame)`` returns ``(throttle, torque_nm, mode_index, nav or None, flags)``;
    ``software`` is the HELLO_ACK software string (the class's NAME and VERSION).
    """

    def __init__(self, entry: FswEntry, config: dict) -> None:
        self.label = entry.label
        try:
            self.fsw: Any = entry.factory(config)
        except HilError:
            raise
        except Exception as e:
            raise ContractViolation(self.label, None, f"constructor raised {one_line(e)}") from e
        try:
            check_object(self.fsw)
        except ContractError as e:
            raise ContractViolation(self.label, None, str(e)) from None
        self.software = software_name(self.fsw)

    def step(self, frame: Any) -> tuple:
        try:
            result = self.fsw.step(frame)
        except Exception as e:
            raise ContractViolation(self.label, frame.seq, f"step raised {one_line(e)}") from e
        try:
            return command(result)
        except ContractError as e:
            raise ContractViolation(self.label, frame.seq, str(e)) from None


def one_line(e: BaseException) -> str:
    """``Type: message`` on one line, bounded."""
    text = " ".join(str(e).split())
    out = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return out if len(out) <= MAX_PROBLEM_CHARS else out[:MAX_PROBLEM_CHARS - 3] + "..."
