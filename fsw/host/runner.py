"""Host runner of a flight software (``fsil fsw``): a thin layer over the Python client.

The registry (fsw/host/registry.py) says which flight software; the client
(bridge/client.py) does the protocol -- handshake, frames, commands, END, STATUS on lossy
links, every wait bounded; the contract checker (fsw/host/checked.py) checks each step;
this module adds the compute time, measured around the step with the host's monotonic
counter (the flight software itself never reads a clock), and ``--load-ms``.
"""

from __future__ import annotations

import sys
import time

from bridge import protocol
from bridge.client import FswClient, exit_code_for, readable
from bridge.errors import BridgeError, LinkOpenError, PeerClosed, UrlError, one_line
from fsw.frame import Frame
from fsw.host.checked import CheckedFsw, ContractViolation
from fsw.host.registry import FswEntry, FswSpecError, resolve
from hil.link_dir import remove_if_orphaned


class FswRunError(Exception):
    """The flight software side could not go on; ``exit_code`` follows the CLI's table."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.last_seq: int | None = None    # the last frame received (a link failure)


def serve(url: str, timeout_s: float = 10.0, hello_timeout_s: float = 60.0,
          load_ms: float = 0.0, fsw: str | FswEntry = "default") -> FswClient:
    """Run the flight software ``fsw`` (a registry spec or entry) against the plant at ``url``
    until the run ends; returns the client (``end_reason``, ``exit_code``, ``stats``).

    ``load_ms`` > 0 busy-waits that long after each step, inside the measured compute time:
    an injected load that proves the plant's deadline measurement (``fsil fsw --load-ms``).
    Whatever ends the run from this side -- a contract break, a plant that goes silent or
    talks nonsense -- sends END with the one-line reason, then raises :class:`FswRunError`.
    """
    entry = fsw if isinstance(fsw, FswEntry) else resolve(fsw)
    load_ns = round(load_ms * 1e6)
    client = FswClient(url, entry.name, hello_timeout_s=hello_timeout_s,
                       frame_timeout_s=timeout_s)
    frame = None
    try:
        client.connect(accept=False)
        if not client.running:           # the plant ended the run before it started
            return client
        checked = CheckedFsw(entry, client.config)
        client.fsw_name = checked.label
        client.accept(checked.software)
        command = client.command
        for msg in client.frames():
            f = msg.fields   # (not msg.seq ...: each attribute is a __getattr__ call)
            frame = Frame(f["seq"], f["t_us"], f["imu"], f["alt"], f["vel"], f["att"])
            t0 = time.perf_counter_ns()
            throttle, torque, mode, nav, flags = checked.step(frame)
            if load_ns > 0:
                busy_until = time.perf_counter_ns() + load_ns
                while time.perf_counter_ns() < busy_until:
                    pass
            compute_us = min((time.perf_counter_ns() - t0) // 1000, protocol.U32_MAX)
            command(throttle, torque, mode, nav, flags, compute_us=compute_us)
    except (ContractViolation, FswSpecError) as e:
        client.end(str(e))                # fsw_fault: <the one line>
        raise FswRunError(str(e), e.exit_code) from e
    except (LinkOpenError, UrlError) as e:  # a configuration problem: one line, exit 2
        raise FswRunError(one_line(str(e)), exit_code_for(e)) from e
    except BridgeError as e:
        client.close()
        reason = client.end_reason or f"link_failure: {e}"
        error = FswRunError(readable(reason), exit_code_for(e))   # "link failure: ..."
        error.last_seq = frame.seq if frame is not None else None
        raise error from e
    finally:
        client.close()
    return client


def main_fsw(url: str, timeout_s: float, quiet: bool = False, load_ms: float = 0.0,
             fsw: str = "default") -> int:
    """Entry for ``fsil fsw``: serve one run, print one line on failure, return the exit
    code: 0 landed, 1 the run ended without a landing, 2 a bad ``--fsw``, 3 link or peer
    failure (the plant's END saying so, or this side's)."""
    entry = resolve(fsw, load=True)          # a bad spec is exit 2 before the link opens
    try:
        client = serve(url, timeout_s, load_ms=load_ms, fsw=entry)
    except FswRunError as e:
        print(f"fsil fsw: {e}", file=sys.stderr)
        # a plant that was killed left the link folder fsil made for it (hil.link_dir)
        # (and records its death in the run's provisional summary.json)
        remove_if_orphaned(url, plant_gone=isinstance(e.__cause__, PeerClosed), seq=e.last_seq)
        return e.exit_code
    code = client.exit_code
    if code != 0 or not quiet:
        print(f"fsil fsw: run ended: {one_line(client.end_reason or '')}", file=sys.stderr)
    return code
