"""The plant's retries on a lossy link (serial): docs/protocol.md, *Retries*.

A serial line can damage bytes. The framing drops a damaged frame (its CRC fails) and
nothing else says it is gone, so on a link whose ``lossy`` is true the plant, which owns
time, sends again what went unanswered:

* **HELLO** again every ``hello_interval_s`` until a HELLO_ACK comes (within the hello
  timeout): a flight software that opens its port after the first HELLO (pyserial empties
  the input on open) or whose HELLO_ACK was damaged still connects.
* **FRAME k** again, the same bytes, when no valid COMMAND k came within the retry
  interval. The first interval is ``max(interval_s, 3 x the smoothed round trip)``, at
  most ``max_interval_s``; it doubles after each retransmission (at most
  ``max_interval_s``); at most ``max_retries`` retransmissions. The flight software
  answers a frame it has answered with the same command without stepping again
  (idempotent), so a retransmission is always safe. A COMMAND for an older seq (the
  answer to an earlier copy) and a second HELLO_ACK are counted and ignored.
* **Giving up** on frame k: once its retries are exhausted and the line has shown damage
  while k was outstanding (errors in the plant's deframer, or in the flight software's,
  which reports damage in a STATUS at once), the run ends with a reason that names line
  noise and gives the counts. Without damage seen, the plant waits on to the link timeout
  (a slow or hung peer is not a noisy line).
  Every wait ends within ``link_timeout_s`` of the frame's first send in any case.
  What has arrived is always read before the plant judges the wait: a plant that was not
  scheduled past a retry time or the timeout (a stalled machine) takes the command waiting
  for it. A stall's reason says how long the plant itself was away from the wait and how
  much CPU the flight-software process used since the first retransmission.
* **END** again (at most ``END_RETRIES`` times, ``END_RETRY_S`` apart) until the peer's
  END answers it, so the flight software learns the outcome; its last STATUS, sent just
  before, is recorded on the way.

The plant's own counters go into ``link.stats`` (and so into summary.json's ``link_stats``):
``frames_resent``, ``frames_retried`` (frames sent more than once), ``max_sends`` (most
sends of one frame), ``hellos_sent``, ``ends_sent``, ``stale_commands``,
``acks_repeated``; ``retry_interval_us`` is the first retry interval in use at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from bridge import protocol
from bridge.codec import Message
from bridge.errors import BridgeError, PeerTimeout, one_line
from hil.errors import LinkFailure

POLL_SLICE_S = 0.25     # how often a wait checks that the flight-software process is alive
END_RETRY_S = 0.2       # wait for the peer's END after ours, before sending ours again
END_RETRIES = 2         # END sent at most 1 + END_RETRIES times
MAX_LATE_SKIPS = 100    # old answers read past the deadline before the wait ends anyway
RTT_GAIN = 0.125        # smoothing of the round trip (as TCP's SRTT, RFC 6298)
DAMAGE_KEYS = ("crc_errors", "cobs_errors", "runts", "oversize")
DAMAGE_NAMES = {"crc_errors": "CRC errors", "cobs_errors": "COBS errors", "runts": "runts",
                "oversize": "oversize frames"}
COUNTERS = ("frames_resent", "frames_retried", "max_sends", "hellos_sent", "ends_sent",
            "stale_commands", "acks_repeated", "retry_interval_us")

CheckAlive = Callable[[int | None, str], None]


@dataclass(frozen=True)
class RetryPolicy:
    """When the plant sends again (see the module docstring); checked bounds keep every wait
    bounded: ``interval_s`` 0.005..``max_interval_s``, ``max_interval_s`` <= 10 s,
    ``max_retries`` 0..20, ``hello_interval_s`` 0.05..10 s."""

    interval_s: float = 0.05
    max_interval_s: float = 1.0
    max_retries: int = 5
    hello_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if not 0.005 <= self.interval_s <= self.max_interval_s <= 10.0:
            raise ValueError(f"retry interval must satisfy 0.005 <= interval_s <= max_interval_s "
                             f"<= 10 s, got {self.interval_s!r} and {self.max_interval_s!r}")
        if not (type(self.max_retries) is int and 0 <= self.max_retries <= 20):
            raise ValueError(f"max_retries must be an integer 0..20, got {self.max_retries!r}")
        if not 0.05 <= self.hello_interval_s <= 10.0:
            raise ValueError(f"hello_interval_s must be within 0.05..10 s, "
                             f"got {self.hello_interval_s!r}")


class Retransmitter:
    """The plant's side of the retry rules over one lossy ``link``.

    ``peer_cpu()`` returns the flight-software process's CPU seconds so far (None if unknown):
    a stall's reason then says whether that process ran while it was silent.
    ``check_alive(seq, what)`` is called every POLL_SLICE_S of waiting (it raises when the
    flight-software process died). Failures are :class:`hil.errors.LinkFailure`.
    """

    def __init__(self, link, check_alive: CheckAlive | None = None,
                 policy: RetryPolicy | None = None,
                 peer_cpu: Callable[[], float | None] | None = None) -> None:
        self.link = link
        self.check_alive = check_alive or (lambda seq, what: None)
        self.peer_cpu = peer_cpu or (lambda: None)   # the peer process's CPU seconds, if known
        self.max_gap_s = 0.0
        self.policy = policy or RetryPolicy()
        self.srtt_s: float | None = None
        self.stats = link.stats
        for key in COUNTERS:
            self.stats.setdefault(key, 0)
        self.stats["retry_interval_us"] = round(self.first_interval_s() * 1e6)
        self._damage0 = 0   # both sides' damage counts when the current frame was first sent

    # --- HELLO ----------------------------------------------------------------------------
    def hello(self, payload: bytes, timeout_s: float) -> Message:
        """Send HELLO until a HELLO_ACK comes; returns it. Bounded by ``timeout_s``."""
        link, stats = self.link, self.stats
        t0 = time.monotonic()
        deadline, next_send = t0 + timeout_s, t0
        while True:
            now = time.monotonic()
            if now >= next_send:
                try:
                    link.send(payload, timeout_s=min(POLL_SLICE_S, max(0.0, deadline - now)))
                    stats["hellos_sent"] += 1
                except PeerTimeout:
                    pass   # nobody reads the port yet: the next HELLO may get through
                next_send = time.monotonic() + self.policy.hello_interval_s
            now = time.monotonic()
            try:   # what has arrived is read before the deadline is judged
                msg = link.recv_msg(max(0.0, min(POLL_SLICE_S, next_send - now, deadline - now)),
                                    expect=(protocol.HELLO_ACK,))
            except PeerTimeout:
                self.check_alive(None, "HELLO_ACK")
                if time.monotonic() >= deadline:
                    raise LinkFailure(f"no HELLO_ACK within {timeout_s:g} s (HELLO sent "
                                      f"{stats['hellos_sent']} times on {link.url}: is the "
                                      f"flight software running on the other end?)", side="fsw",
                                      waited_s=timeout_s) from None
                continue
            if msg.type_id == protocol.END:
                raise LinkFailure(f"flight software ended the run: {one_line(msg.reason)}",
                                  side="fsw")
            return msg

    # --- FRAME / COMMAND ------------------------------------------------------------------
    def first_interval_s(self) -> float:
        """The wait before the first retransmission of a frame."""
        p = self.policy
        rtt = 3.0 * self.srtt_s if self.srtt_s is not None else 0.0
        return min(max(p.interval_s, rtt), p.max_interval_s)

    def command(self, payload: bytes, seq: int, timeout_s: float, sent_at: float) -> Message:
        """The COMMAND answering FRAME ``seq`` (``payload``, first sent at monotonic time
        ``sent_at``), sending the frame again as the rules say.

        What has arrived is read before anything is judged: a plant that was itself not
        scheduled for a while (a stalled machine) finds the answer waiting and takes it,
        instead of sending the frame again or calling the flight software stalled."""
        link, stats, p = self.link, self.stats, self.policy
        interval = self.first_interval_s()
        next_send, deadline = sent_at + interval, sent_at + timeout_s
        sends = 1
        self._damage0 = self._damage_now()
        peer0 = None                      # the peer's CPU time at the first retransmission
        late_skips = 0                    # old answers read after the deadline
        last = time.monotonic()
        self.max_gap_s = last - sent_at   # the plant's own longest absence from this wait
        while True:
            now = time.monotonic()
            self.max_gap_s = max(self.max_gap_s, now - last)
            last = now
            try:
                msg = link.recv_msg(max(0.0, min(POLL_SLICE_S, next_send - now, deadline - now)),
                                    expect=(protocol.COMMAND, protocol.HELLO_ACK))
            except PeerTimeout:
                now = time.monotonic()
                self.max_gap_s = max(self.max_gap_s, now - last)
                last = now
                self.check_alive(seq, "command")
                if now >= deadline:
                    if sends > 1 and self.noise_seen():
                        raise self._noise(seq, sends, timeout_s) from None
                    again = f" (frame sent {sends} times)" if sends > 1 else ""
                    raise LinkFailure(f"no command within {timeout_s:g} s{again}"
                                      f"{self._why_silent(peer0)}", side="fsw", seq=seq,
                                      waited_s=timeout_s) from None
                if now >= next_send:
                    if sends > p.max_retries:        # retries exhausted
                        if self.noise_seen():
                            raise self._noise(seq, sends, now - sent_at) from None
                        next_send = deadline          # a slow peer: wait on to the timeout
                    else:
                        if peer0 is None:
                            peer0 = self.peer_cpu()
                        link.send(payload, timeout_s=max(0.001, deadline - now))
                        sends += 1
                        stats["frames_resent"] += 1
                        if sends == 2:
                            stats["frames_retried"] += 1
                        stats["max_sends"] = max(stats["max_sends"], sends)
                        interval = min(2.0 * interval, p.max_interval_s)
                        next_send = time.monotonic() + interval
                continue
            if msg.type_id == protocol.END:
                raise LinkFailure(f"flight software ended the run: {one_line(msg.reason)}",
                                  side="fsw", seq=seq)
            if msg.type_id == protocol.HELLO_ACK or msg.seq < seq:
                if msg.type_id == protocol.HELLO_ACK:
                    stats["acks_repeated"] += 1   # the answer to a repeated HELLO
                else:
                    stats["stale_commands"] += 1  # the answer to an earlier copy of a frame
                late_skips += time.monotonic() >= deadline
                if late_skips > MAX_LATE_SKIPS:   # a peer that only ever sends old answers
                    raise LinkFailure(f"no command within {timeout_s:g} s ({late_skips} old "
                                      f"answers after it)", side="fsw", seq=seq,
                                      waited_s=timeout_s)
                continue
            if msg.seq != seq:
                raise LinkFailure(f"command answers seq {msg.seq}, expected {seq}", side="fsw",
                                  seq=seq)
            if sends == 1:                        # Karn: time only frames sent once
                rtt = time.monotonic() - sent_at
                self.srtt_s = rtt if self.srtt_s is None else \
                    self.srtt_s + RTT_GAIN * (rtt - self.srtt_s)
                stats["retry_interval_us"] = round(self.first_interval_s() * 1e6)
            return msg

    def _why_silent(self, peer0: float | None) -> str:
        """What the plant knows about a silence, for the stall's reason: how long the plant
        itself was not scheduled (a stalled machine, not a stalled peer), and the CPU time
        the flight-software process used since the frame was first sent again."""
        parts = []
        if self.max_gap_s >= 1.0:
            parts.append(f"the plant itself was not scheduled for {self.max_gap_s:.1f} s of "
                         f"the wait")
        peer1 = self.peer_cpu() if peer0 is not None else None
        if peer1 is not None:
            parts.append(f"the flight software's process used {peer1 - peer0:.2f} s of CPU "
                         f"since the first retransmission")
        return f"; {'; '.join(parts)}" if parts else ""

    # --- END ------------------------------------------------------------------------------
    def end(self, seq: int, reason: str) -> None:
        """Send END until the peer's END answers it (bounded; best effort)."""
        link = self.link
        payload_fields = [seq, reason[:500]]
        for _ in range(1 + END_RETRIES):
            try:
                link.send_msg(protocol.END, payload_fields, timeout_s=END_RETRY_S)
                self.stats["ends_sent"] += 1
                deadline = time.monotonic() + END_RETRY_S
                while (left := deadline - time.monotonic()) > 0:
                    if link.recv_msg(left).type_id == protocol.END:
                        return
            except PeerTimeout:
                continue
            except BridgeError:
                return   # the peer is gone, or talks nonsense at the end: nothing to add

    # --- line noise -----------------------------------------------------------------------
    @staticmethod
    def _damage(stats: dict | None) -> int:
        return sum(int(stats.get(k, 0)) for k in DAMAGE_KEYS) if stats else 0

    def _damage_now(self) -> int:
        return self._damage(self.link.stats) + self._damage(self.link.peer_stats)

    def noise_seen(self) -> bool:
        """Damage counted while the current frame was outstanding: by the plant's deframer,
        or by the flight software's (its STATUS, sent at once on damage)."""
        return self._damage_now() > self._damage0

    def _noise(self, seq: int, sends: int, waited_s: float) -> LinkFailure:
        here = _counts(self.link.stats)
        there = _counts(self.link.peer_stats or {})
        seen = [f"{here or 'none'} at the plant"]
        if self.link.peer_stats is not None:
            seen.append(f"{there or 'none'} at the flight software (its last STATUS)")
        failure = LinkFailure(
            f"line noise: frame {seq} sent {sends} times in {waited_s:.3g} s without a valid "
            f"command, {self._damage_now() - self._damage0} damaged frames meanwhile; in the "
            f"run {'; '.join(seen)}; {self.stats['frames_resent']} frames resent")
        failure.side, failure.seq, failure.waited_s = "link", seq, waited_s
        return failure


def _counts(stats: dict) -> str:
    return ", ".join(f"{int(stats[k])} {DAMAGE_NAMES[k]}" for k in DAMAGE_KEYS
                     if stats.get(k))
