"""The lockstep loops: one frame, one command, one plant step, for as long as the plant runs.

Over a link (:func:`run_lockstep`) the plant sends frame k, then -- while the flight
software computes -- records the part of history row k that does not depend on the
command and writes a few rows of the previous block; then it waits (bounded, watching the
flight-software process) for the command answering k, completes the row and steps.
In process (:func:`run_inprocess_loop`) the flight software's ``step(frame)`` is called
directly. Both record exactly the same row for the same frame and command, so the two
modes give the same history for the same scenario and seed.

Timing per cycle (:class:`hil.engine.timing.TimingLog`): the round trip (in process, the
step call), the flight software's compute time, the plant step and the recording time.
"""

from __future__ import annotations

import time

from bridge import protocol
from bridge.codec import encode
from bridge.errors import PeerTimeout, one_line
from plant.lander import Command, SensorFrame

import hil.engine.signals as signals
from hil.engine.context import RunContext
from hil.errors import LinkFailure, PeerEnded

POLL_SLICE_S = 0.1    # how often a wait for the peer checks its process and a signal
FRAME = protocol.FRAME
MODES = protocol.MODES


def send_watching(ctx: RunContext, payload: bytes, seq: int | None, what: str) -> None:
    """Send ``payload`` to the flight software, bounded by ``ctx.timeout_s``, checking its
    process (and a pending signal) every :data:`POLL_SLICE_S`: a peer that died while the
    plant was sending is reported as its death, with its exit code, not later as a stall."""
    link = ctx.link
    try:
        link.send(payload, timeout_s=min(POLL_SLICE_S, ctx.timeout_s))
        return
    except PeerTimeout:
        pass
    timeout_s = ctx.timeout_s
    deadline = time.monotonic() + timeout_s - POLL_SLICE_S
    while True:
        signals.check()
        ctx.check_alive(seq, what)
        check_connected(ctx, seq, what)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LinkFailure(f"the flight software took no {what} within {timeout_s:g} s",
                              side="fsw", seq=seq, waited_s=timeout_s)
        try:
            link.send(payload, timeout_s=min(POLL_SLICE_S, remaining))
            return
        except PeerTimeout:
            pass


def check_connected(ctx: RunContext, seq: int | None, what: str) -> None:
    """LinkFailure if the link knows that no flight software is connected any more
    (``Link.peer_gone``: every connection closed; one started separately that died)."""
    if ctx.link.peer_gone():
        doing = "sent it a frame" if what == "frame" else f"waited for its {what}"
        raise LinkFailure(f"the flight software's connection closed while the plant {doing} "
                          f"(it ended or was killed)", side="fsw", seq=seq)


def wait_message(ctx: RunContext, type_id: int, timeout_s: float, seq: int | None, what: str):
    """Receive one message of ``type_id`` (or END, which raises), bounded by ``timeout_s``,
    checking the flight-software process (and a pending signal) every :data:`POLL_SLICE_S`."""
    link = ctx.link
    expect = (type_id,)
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            msg = link.recv_msg(max(0.0, min(POLL_SLICE_S, remaining)), expect=expect)
        except PeerTimeout:
            signals.check()
            ctx.check_alive(seq, what)
            check_connected(ctx, seq, what)
            if time.monotonic() >= deadline:
                raise LinkFailure(f"no {what} within {timeout_s:g} s", side="fsw",
                                  seq=seq, waited_s=timeout_s) from None
            continue
        if msg.type_id == protocol.END:
            raise PeerEnded(f"flight software ended the run: {one_line(msg.reason)}",
                            side="fsw", seq=seq)
        return msg


def run_lockstep(ctx: RunContext, frame: SensorFrame) -> SensorFrame:
    """Lockstep over ``ctx.link`` until the plant is done; returns the last frame."""
    plant, rec, log, bar = ctx.plant, ctx.recorder, ctx.timing, ctx.progress
    timeout_s = ctx.timeout_s
    clock = time.perf_counter_ns
    state = signals.STATE
    retx = ctx.retx   # on a lossy link: frames sent again until answered (hil.retransmit)
    k = log.cycles
    t_loop = clock()
    while not plant.done:
        if state.pending is not None:
            signals.check()
        ctx.frame = frame
        seq = frame.seq
        t_send = clock()
        payload = encode(FRAME, [seq, frame.t_us, frame.imu, frame.alt, frame.vel, frame.att])
        sent_at = time.monotonic() if retx is not None else 0.0
        send_watching(ctx, payload, seq, "frame")
        t_rec = clock()
        rec.plant_part(plant, frame)      # while the flight software computes
        rec.idle()
        t_wait = clock()
        if retx is None:
            cmd = wait_message(ctx, protocol.COMMAND, timeout_s, seq, "command")
        else:
            cmd = retx.command(payload, seq, timeout_s, sent_at)
        t_cmd = clock()
        f = cmd.fields
        if f["seq"] != seq:
            raise LinkFailure(f"command answers seq {f['seq']}, expected {seq}", side="fsw",
                              seq=seq)
        rtt_us = (t_cmd - t_send) // 1000
        mode, throttle, torque = f["mode"], f["throttle"], f["torque_nm"]
        rec.command_part(mode, throttle, torque, f["nav"], f["flags"], f["compute_us"], rtt_us)
        rec.commit()
        if bar.bar is not None:
            bar.update(frame.t_us * 1e-6, MODES[mode] if mode < len(MODES) else str(mode),
                       rec.last_alt_m)
        t_step = clock()
        frame = ctx.step(Command(throttle, tuple(torque)))
        t_end = clock()
        log.lockstep(k, rtt_us, f["compute_us"], (t_end - t_step) // 1000,
                     (t_wait - t_rec + t_step - t_cmd) // 1000, (t_wait - t_rec) // 1000)
        k += 1
        log.loop_ns = t_end - t_loop
    ctx.frame = frame
    return frame


def run_inprocess_loop(ctx: RunContext, call, frame: SensorFrame) -> SensorFrame:
    """Lockstep with the flight software called in this process: ``call(frame)`` returns
    ``(mode, throttle, torque_nm, nav, flags)`` checked against the contract."""
    plant, rec, log, bar = ctx.plant, ctx.recorder, ctx.timing, ctx.progress
    clock = time.perf_counter_ns
    state = signals.STATE
    k = log.cycles
    t_loop = clock()
    while not plant.done:
        if state.pending is not None:
            signals.check()
        ctx.frame = frame
        t_rec = clock()
        rec.plant_part(plant, frame)
        t_call = clock()
        mode, throttle, torque, nav, flags = call(frame)
        t_cmd = clock()
        compute_us = (t_cmd - t_call) // 1000
        rec.command_part(mode, throttle, torque, nav, flags, compute_us, compute_us)
        rec.commit()
        if bar.bar is not None:
            bar.update(frame.t_us * 1e-6, MODES[mode], rec.last_alt_m)
        t_step = clock()
        frame = ctx.step(Command(throttle, torque))
        t_end = clock()
        log.lockstep(k, compute_us, compute_us, (t_end - t_step) // 1000,
                     (t_call - t_rec + t_step - t_cmd) // 1000)
        k += 1
        log.loop_ns = t_end - t_loop
    ctx.frame = frame
    return frame
