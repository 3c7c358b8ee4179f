"""Host runner of the flight software: the same core as the board, served over a link.

Waits for the plant's HELLO, answers with HELLO_ACK, then answers every FRAME with one
COMMAND until END. The compute time it reports is measured here, around the core's step,
with the host's monotonic counter; the core itself never reads a clock.
"""

from __future__ import annotations

import sys
import time

from bridge import protocol
from bridge.errors import BridgeError, PeerTimeout, ProtocolError
from bridge.url import open_link
from fsw import core
from fsw.frame import Frame


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
          load_ms: float = 0.0, variant: str = "default") -> str:
    """Run the flight software against the plant at ``url`` until END; returns the reason.

    ``load_ms`` > 0 busy-waits that long after each step, inside the measured compute time:
    an injected load that proves the plant's deadline measurement (``fsil fsw --load-ms``).
    """
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
        fsw = core.FlightSoftware(hello.config, variant)
        link.send_msg(protocol.HELLO_ACK, ["fsw", f"{core.NAME} {core.VERSION} ({variant})",
                                           runtime_name()])
        last_seq = -1
        while True:
            try:
                msg = link.recv_msg(timeout_s, expect=(protocol.FRAME,))
            except PeerTimeout as e:
                raise FswRunError(
                    f"fsw: plant stalled: no frame after seq {last_seq} for {e.timeout_s:g} s", 3) from e
            except ProtocolError as e:
                raise FswRunError(f"fsw: bad message from the plant after seq {last_seq}: {e}", 3) from e
            if msg.type_id == protocol.END:
                return msg.reason
            t0 = time.perf_counter_ns()
            frame = Frame(msg.seq, msg.t_us, msg.imu, msg.alt, msg.fields.get("vel"))
            throttle, torque, mode, nav7, flags = fsw.step(frame)
            if load_ns > 0:
                busy_until = time.perf_counter_ns() + load_ns
                while time.perf_counter_ns() < busy_until:
                    pass
            compute_us = min((time.perf_counter_ns() - t0) // 1000, protocol.U32_MAX)
            link.send_msg(protocol.COMMAND, [msg.seq, throttle, torque, mode, compute_us, nav7, flags])
            last_seq = msg.seq


def main_fsw(url: str, timeout_s: float, quiet: bool = False, load_ms: float = 0.0,
             variant: str = "default") -> int:
    """Entry for ``fsil fsw``: serve one run, print one line on failure, return the exit code."""
    try:
        reason = serve(url, timeout_s, load_ms=load_ms, variant=variant)
    except FswRunError as e:
        print(f"fsil fsw: {e}", file=sys.stderr)
        return e.exit_code
    except BridgeError as e:
        print(f"fsil fsw: link failure: {e}", file=sys.stderr)
        return 3
    if not quiet:
        print(f"fsil fsw: run ended: {reason}", file=sys.stderr)
    return 0
