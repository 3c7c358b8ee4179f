"""The plant's real-time loop: frames paced on the wall clock, deadlines measured, policy applied.

Cycle k is due at ``t0 + k * period`` on the monotonic clock (absolute deadlines, no drift).
At its due time the plant sends frame k -- unless the flight software still owes the command
for an earlier frame: then the frame is *skipped* (a cycle slip; its IMU samples ride in the
next frame sent, so navigation loses nothing) and the cycle counts as a miss. The plant never
waits for the flight software: it reads commands as they come until the cycle's deadline
(``due + deadline``) or until the command for frame k is in, whichever is first, then steps
the physics one frame period with the command in effect and writes the history row.

The command in effect over cycle k:

- the command answering frame k, if it arrived by the deadline;
- otherwise, with ``on_miss = "hold"``, the newest late command that arrived since the last
  step (a late command is applied when it arrives, i.e. from the next step on), else the
  previous command, held;
- with ``on_miss = "skip"``, the previous command, held: late commands are dropped.

Every command is recorded, late or not (latency, overrun); a second copy of a seq is a
duplicate; a frame whose command is not back within ``lost_after_s`` is given up (a dropped
command) so frames go out again. ``max_consecutive_misses`` / ``max_total_misses`` end the
run with the outcome ``deadline_abort``. Silence for ``run.link_timeout_s`` is a link failure.

The sim still advances exactly one frame period per cycle: the plant owns sim time, the wall
clock only paces it, so the plant's own step (``plant_step_us``) must fit in the period.
"""

from __future__ import annotations

import gc

from bridge import protocol
from bridge.codec import MAX_IMU_SAMPLES_PER_FRAME, decode, encode
from bridge.errors import BridgeError, PeerTimeout, ProtocolError, one_line
from plant.lander import Command, Outcome, SensorFrame

import hil.engine.signals as signals
from hil.engine.context import RunContext
from hil.engine.lockstep import check_connected, send_watching
from hil.engine.pacing import clock_ns, coarse_ms, spin_for
from hil.engine.schema import HISTORY_COLUMNS
from hil.engine.timing import NONE, TimingLog
from hil.errors import LinkFailure, PeerEnded

ALIVE_CHECK_NS = 100_000_000   # how often the owned fsw process is checked while waiting


class _NoCommand:
    """What the history shows before the first command arrives (engine off, no estimate)."""

    seq = NONE
    throttle = 0.0
    torque_nm = (0.0, 0.0, 0.0)
    mode = 0
    compute_us = None
    nav = [float("nan")] * 7
    flags = 0


class RealtimeLoop:
    """One real-time run over an open, handshaken link; see the module docstring."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.link, self.plant, self.rec, self.bar = ctx.link, ctx.plant, ctx.recorder, ctx.progress
        self.log: TimingLog = ctx.timing
        dl = ctx.cfg.deadline
        self.period_ns = self.log.period_ns
        self.deadline_ns = self.log.deadline_ns
        self.lost_ns = round(dl.lost_after_s * 1e9)
        self.hold = dl.on_miss == "hold"
        self.max_streak = dl.max_consecutive_misses
        self.max_total = dl.max_total_misses
        self.spin_ns = spin_for(self.period_ns)
        self.stall_ns = round(ctx.timeout_s * 1e9)
        self.t0 = 0
        self.k = 0                  # the current cycle
        self.outstanding = NONE     # seq of the frame whose command is owed, or NONE
        self.out_sent_ns = 0
        self.answered = NONE        # seq of the newest command that met its deadline
        self.ontime = None          # that command
        self.late = None            # newest late command not applied yet (hold)
        self.applied = _NoCommand()
        self.row_late = (None, None, None)  # (seq, latency_us, overrun_us) seen this cycle
        self.last_heard_ns = 0
        self.next_alive_ns = 0
        self.sent_ns = [0, 0]       # send times of the last two frames by parity (beyond capacity)

    # --- the loop -------------------------------------------------------------------------
    def run(self, frame: SensorFrame) -> SensorFrame:
        """Run until the plant is done or the policy ends the run; returns the last frame."""
        gc.collect()
        gc.freeze()   # long-lived objects out of the collector's way: shorter pauses
        try:
            return self._run(frame)
        except ProtocolError as e:
            raise LinkFailure(f"bad message from the flight software: {e}", side="fsw",
                              seq=self.k) from e
        except BridgeError as e:
            raise LinkFailure(str(e), side="link", seq=self.k) from e
        finally:
            gc.unfreeze()

    def _run(self, frame: SensorFrame) -> SensorFrame:
        log, plant, rec, ctx = self.log, self.plant, self.rec, self.ctx
        timing_at = len(HISTORY_COLUMNS)
        period, deadline, cap = self.period_ns, self.deadline_ns, log.capacity
        carry: list | None = None   # IMU samples of skipped frames, for the next frame sent
        payload = self._encode(frame, frame.imu)
        t0 = self.t0 = clock_ns() + period
        self.last_heard_ns = self.next_alive_ns = t0
        k = 0
        state = signals.STATE
        while True:
            if state.pending is not None:
                signals.check()
            self.k = k
            ctx.frame = frame
            due = t0 + k * period
            self._serve_until(due, NONE)
            # --- send frame k, or skip it while a command is owed
            now = clock_ns()
            if self.outstanding != NONE and now - self.out_sent_ns >= self.lost_ns:
                log.dropped_commands += 1
                self.outstanding = NONE
            if self.outstanding == NONE:
                if carry is not None:  # skipped frames' IMU samples first
                    payload = self._merged(frame, carry)
                    carry = None
                sent = clock_ns()
                send_watching(ctx, payload, k, "frame")
                self.outstanding, self.out_sent_ns = k, sent
                self.sent_ns[k & 1] = sent
                log.frames_sent += 1
                if k < cap:
                    log.sent_us[k] = (sent - t0) // 1000
                    log.jitter_us[k] = (sent - due) // 1000
            else:
                log.skipped_frames += 1
                carry = frame.imu if carry is None else carry + frame.imu
            # --- read commands until this frame's command or its deadline
            self._serve_until(due + deadline, k)
            # --- the command in effect over this cycle, and the deadline bookkeeping
            met = self.answered == k
            if met:
                cmd = self.ontime
                self.late = None
            elif self.late is not None:
                cmd, self.late = self.late, None
            else:
                cmd = self.applied
            self.applied = cmd
            log.miss(not met)
            if k < cap:
                log.met[k] = met
            rec.plant_part(plant, frame)
            if met and k < cap:
                compute_us, latency_us = int(log.compute_us[k]), int(log.latency_us[k])
            else:
                compute_us = latency_us = None
            rec.command_part(cmd.mode, cmd.throttle, cmd.torque_nm, cmd.nav, cmd.flags,
                             compute_us, latency_us)
            abort = self._abort_reason()
            step_us = None
            if abort is None:
                t_step = clock_ns()
                frame = ctx.step(Command(cmd.throttle, tuple(cmd.torque_nm)))
                step_us = (clock_ns() - t_step) // 1000
                if k < cap:
                    log.step_us[k] = step_us
            late_seq, late_lat, late_over = self.row_late
            self.row_late = (None, None, None)
            rec.row[timing_at:] = (
                (due - t0) // 1000,
                int(log.sent_us[k]) if k < cap and log.sent_us[k] >= 0 else None,
                int(log.jitter_us[k]) if k < cap and log.jitter_us[k] >= 0 else None,
                int(log.arrival_us[k]) if met and k < cap else None,
                int(met), cmd.seq if cmd.seq != NONE else None,
                late_seq, late_lat, late_over, step_us)
            rec.commit()
            k += 1
            log.cycles = k
            log.loop_ns = clock_ns() - t0
            ctx.frame = frame
            if abort is not None:
                log.abort = abort
                plant.done = True
                plant.outcome = Outcome("deadline_abort", abort, {})
                return frame
            if self.bar.bar is not None:
                mode = protocol.MODES[cmd.mode] if cmd.mode < len(protocol.MODES) else cmd.mode
                self.bar.update(frame.t_us * 1e-6, str(mode), rec.last_alt_m)
            if plant.done:
                return frame
            payload = self._encode(frame, frame.imu) if carry is None else b""

    def _merged(self, frame: SensorFrame, carry: list) -> bytes:
        imu = carry + frame.imu
        if len(imu) > MAX_IMU_SAMPLES_PER_FRAME:
            self.log.imu_samples_dropped += len(imu) - MAX_IMU_SAMPLES_PER_FRAME
            imu = imu[-MAX_IMU_SAMPLES_PER_FRAME:]
        return self._encode(frame, imu)

    @staticmethod
    def _encode(frame: SensorFrame, imu: list) -> bytes:
        """FRAME payload; ``vel`` and ``att`` are nil without a velocimeter, star tracker."""
        return encode(protocol.FRAME, [frame.seq, frame.t_us, imu, frame.alt,
                                       getattr(frame, "vel", None), getattr(frame, "att", None)])

    def _abort_reason(self) -> str | None:
        log = self.log
        if self.max_streak and log.streak >= self.max_streak:
            return (f"{log.streak} consecutive deadline misses (limit {self.max_streak}) at "
                    f"cycle {self.k}")
        if self.max_total and log.misses >= self.max_total:
            return f"{log.misses} deadline misses (limit {self.max_total}) at cycle {self.k}"
        return None

    # --- reading commands ---------------------------------------------------------------
    def _serve_until(self, until_ns: int, seq: int) -> None:
        """Read commands until ``until_ns``, or until the command for ``seq`` met its deadline."""
        spin = self.spin_ns
        while True:
            remaining = until_ns - clock_ns()
            if remaining <= 0 or (seq != NONE and self.answered == seq):
                return
            self._poll(coarse_ms(remaining, spin))

    def _poll(self, timeout_s: float) -> None:
        try:
            payload = self.link.recv(timeout_s)
        except PeerTimeout:
            signals.check()
            now = clock_ns()
            if now >= self.next_alive_ns:
                self.next_alive_ns = now + ALIVE_CHECK_NS
                self.ctx.check_alive(self.k, "command")
                check_connected(self.ctx, self.k, "command")
                if now - self.last_heard_ns > self.stall_ns:
                    waited = (now - self.last_heard_ns) / 1e9
                    raise LinkFailure(f"no command within {waited:.3g} s", side="fsw",
                                      seq=self.outstanding if self.outstanding != NONE
                                      else self.k, waited_s=waited) from None
            return
        arrival = clock_ns()
        self.last_heard_ns = arrival
        msg = decode(payload)
        if msg.type_id == protocol.STATUS:  # the flight software's link counters
            self.link.note_status(msg)
            return
        if msg.type_id == protocol.END:
            raise PeerEnded(f"flight software ended the run: {one_line(msg.reason)}",
                            side="fsw", seq=self.k)
        if msg.type_id == protocol.HELLO_ACK and self.ctx.retx is not None:
            return   # the answer to a repeated HELLO on a serial line (hil.retransmit)
        if msg.type_id != protocol.COMMAND:
            raise LinkFailure(f"bad message from the flight software: got {msg.name} while "
                              f"expecting command", side="fsw", seq=self.k)
        self._on_command(msg, arrival)

    def _on_command(self, msg, arrival: int) -> None:
        log, s, t0 = self.log, msg.seq, self.t0
        if s > self.k or (s < log.capacity and log.sent_us[s] < 0
                          and s != self.outstanding):
            raise LinkFailure(f"command answers seq {s}, but frame {s} was never sent",
                              side="fsw", seq=self.k)
        if s < log.capacity:
            if log.arrival_us[s] >= 0:
                log.duplicate_commands += 1
                return
            sent = t0 + log.sent_us[s] * 1000   # us resolution
        else:
            sent = self.sent_ns[s & 1]
        log.commands += 1
        latency_us = (arrival - sent) // 1000
        overrun = arrival - (t0 + s * self.period_ns + self.deadline_ns)
        if s < log.capacity:
            log.arrival_us[s] = (arrival - t0) // 1000
            log.latency_us[s] = latency_us
            log.compute_us[s] = msg.compute_us
        if s == self.outstanding:
            self.outstanding = NONE
        if overrun <= 0:
            self.answered, self.ontime = s, msg
            return
        over_us = overrun // 1000
        log.late_commands += 1
        if s < log.capacity:
            log.overrun_us[s] = over_us
        if over_us > log.longest_overrun_us:
            log.longest_overrun_us = over_us
        self.row_late = (s, latency_us, over_us)
        if self.hold and (self.late is None or s > self.late.seq) and s > self.applied.seq:
            self.late = msg
