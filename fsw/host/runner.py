"""Host runner of a flight software (``fsil fsw``): any contract class, served over a link.

Resolves the flight software (fsw/host/registry.py), waits for the plant's HELLO, constructs
it from the HELLO config, answers with HELLO_ACK (its NAME and VERSION), then answers every
FRAME with one COMMAND until END, each step checked against the contract
(fsw/host/checked.py). The compute time it reports is measured here, around the step, with
the host's monotonic counter; the flight software itself never reads a clock.
"""

from __future__ import annotations

import sys
import time

from bridge import protocol
from bridge.errors import BridgeError, PeerTimeout, ProtocolError
from bridge.url import open_link
from fsw.contract import wire_nav
from fsw.frame import Frame
from fsw.host.checked import CheckedFsw, ContractViolation
from fsw.host.registry import FswEntry, FswSpecError, resolve


class FswRunError(Exception):
    """The flight software side could not go on; ``exit_code`` follows the CLI's table."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def runtime_name() -> str:
    """Interpreter name and version, e.g. 'cpython 3.11.7'."""
    v = sys.implementation.version
    return f"{sys.implementation.name} {v.major}.{v.minor}.{v.micro}"


def serve(url: str, timeout_s: float = 10.0, hello_timeout_s: float = 60.0,
          load_ms: float = 0.0, fsw: str | FswEntry = "default") -> str:
    """Run the flight software ``fsw`` (a registry spec or entry) against the plant at ``url``
    until END; returns the plant's reason.

    ``load_ms`` > 0 busy-waits that long after each step, inside the measured compute time:
    an injected load that proves the plant's deadline measurement (``fsil fsw --load-ms``).
    A flight software that breaks the contract ends the run: END to the plant with the one-line
    reason, then :class:`FswRunError` (exit 3).
    """
    entry = fsw if isinstance(fsw, FswEntry) else resolve(fsw)
    load_ns = round(load_ms * 1e6)
    with open_link(url, "fsw") as link:
        try:
            hello = link.recv_msg(hello_timeout_s, expect=protocol.HELLO)
        except PeerTimeout as e:
            raise FswRunError(f"fsw: no HELLO from the plant at {url} within {e.timeout_s:g} s", 3) from e
        except ProtocolError as e:
            raise FswRunError(f"fsw: bad handshake from the plant: {e}", 3) from e
        if hello.type_id == protocol.END:
            return hello.reason
        last_seq = 0
        try:
            checked = CheckedFsw(entry, hello.config)
            link.send_msg(protocol.HELLO_ACK, ["fsw", checked.software, runtime_name()])
            last_seq = -1
            while True:
                try:
                    msg = link.recv_msg(timeout_s, expect=(protocol.FRAME,))
                except PeerTimeout as e:
                    raise FswRunError(f"fsw: plant stalled: no frame after seq {last_seq} for "
                                      f"{e.timeout_s:g} s", 3) from e
                except ProtocolError as e:
                    raise FswRunError(f"fsw: bad message from the plant after seq {last_seq}: {e}",
                                      3) from e
                if msg.type_id == protocol.END:
                    return msg.reason
                frame = Frame(msg.seq, msg.t_us, msg.imu, msg.alt, msg.fields.get("vel"))
                t0 = time.perf_counter_ns()
                throttle, torque, mode, nav, flags = checked.step(frame)
                if load_ns > 0:
                    busy_until = time.perf_counter_ns() + load_ns
                    while time.perf_counter_ns() < busy_until:
                        pass
                compute_us = min((time.perf_counter_ns() - t0) // 1000, protocol.U32_MAX)
                link.send_msg(protocol.COMMAND, [msg.seq, throttle, torque, mode, compute_us,
                                                 wire_nav(nav), flags])
                last_seq = msg.seq
        except (ContractViolation, FswSpecError) as e:
            _send_end(link, max(last_seq, 0), str(e))
            raise FswRunError(str(e), e.exit_code) from e


def _send_end(link, seq: int, reason: str) -> None:
    """Tell the plant why the run ends (best effort: it may be gone)."""
    try:
        link.send_msg(protocol.END, [seq, reason[:500]], timeout_s=1.0)
    except BridgeError:
        pass


def main_fsw(url: str, timeout_s: float, quiet: bool = False, load_ms: float = 0.0,
             fsw: str = "default") -> int:
    """Entry for ``fsil fsw``: serve one run, print one line on failure, return the exit code."""
    entry = resolve(fsw, load=True)          # a bad spec is exit 2 before the link opens
    try:
        reason = serve(url, timeout_s, load_ms=load_ms, fsw=entry)
    except FswRunError as e:
        print(f"fsil fsw: {e}", file=sys.stderr)
        return e.exit_code
    except BridgeError as e:
        print(f"fsil fsw: link failure: {e}", file=sys.stderr)
        return 3
    if not quiet:
        print(f"fsil fsw: run ended: {reason}", file=sys.stderr)
    return 0
