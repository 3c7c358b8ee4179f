"""The flight software's end of a run, for a process of your own: connect, frames in, commands out.

A flight software process written with it is about ten lines (this one lands the ``terminal``
scenario against ``fsil plant --link URL``; tests/test_bridge_client.py runs it)::

    import sys
    from bridge.client import FswClient
    from fsw.reference import Default as MyFlightSoftware   # your class with step(frame)

    with FswClient(sys.argv[1], software="my-fsw 1.0") as client:
        fsw = MyFlightSoftware(client.config)  # the HELLO's config, checked by the codec
        for frame in client.frames():          # frame.seq, .t_us, .imu, .alt, .vel, .att
            client.reply(fsw.step(frame))      # (throttle, torque_nm, mode[, nav, flags])
    print("ended:", client.end_reason, file=sys.stderr)
    sys.exit(client.exit_code)                 # 0 landed, 1 not landed, 3 link failure

What it does for you:

* **Handshake.** Waits (bounded, ``hello_timeout_s``) for the plant's HELLO, which the codec
  has checked in full (``bridge.protocol.CONFIG_SCHEMA``), and answers HELLO_ACK.
* **Frames and commands.** :meth:`FswClient.frames` yields each FRAME (a
  :class:`bridge.codec.Message`: ``seq``, ``t_us``, ``imu``, ``alt``, ``vel``, ``att``) and
  waits at most ``frame_timeout_s`` for the next. :meth:`FswClient.reply` takes the flight software
  contract's tuple (``mode`` as an index into ``MODES`` or its name; ``nav`` None or 7
  floats), :meth:`FswClient.command` the fields by name. ``compute_us`` is measured from
  the frame's hand-over to the command, unless given. A frame that comes again with a seq
  already answered (a retransmission) gets the same command again, without your code; a
  HELLO that comes again before the first frame (the plant did not hear our HELLO_ACK)
  gets the same HELLO_ACK (docs/protocol.md, *Retries*).
* **Ending.** When the plant ends the run, the client answers its END and ``frames()``
  stops; :attr:`FswClient.outcome`, :attr:`FswClient.end_reason` and
  :attr:`FswClient.exit_code` say how it ended. When anything fails on this side -- the
  plant goes silent, sends something malformed, your code raises, a command breaks the
  contract -- the client sends END with a reason (``link_failure: ...``,
  ``protocol_error: ...``, ``fsw_fault: ...``), closes, and raises. Leaving the ``with``
  block by an exception does the same.
* **Counters.** On a lossy link (serial) the client sends STATUS with its counters
  (``frames_received``, ``frames_repeated``, ``commands_sent``, ``commands_resent``,
  ``hellos_repeated``, ``bad_frames``, and the link's ``crc_errors`` ...) every
  ``status_every`` frames and just before its END; the plant records them in summary.json.

Exceptions are those of :mod:`bridge.errors`, plus :class:`ContractError` for a command
that breaks the contract; every one of them is a link or peer failure, exit code 3 in the
table of :mod:`hil.errors` (``exit_code`` attribute on :class:`FswClientError`, and
:func:`exit_code_for` for any exception).

The END reason convention (docs/protocol.md): it starts with a word and a colon, the plant's
outcome (``landed``, ``crashed``, ``out_of_propellant``, ``timeout``, ``deadline_abort``,
``interrupted``) or a failure (``link_failure``, ``protocol_error``, ``fsw_fault``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgpack

from bridge import protocol
from bridge.codec import Message, encode
from bridge.errors import (BridgeError, LinkError, LinkOpenError, MalformedMessage, PeerClosed,
                           PeerTimeout, ProtocolError, UnexpectedMessage, UrlError, VersionError,
                           one_line)
from bridge.url import open_link
from hil.errors import EXIT_CONFIG, EXIT_LANDED, EXIT_LINK, EXIT_NOT_LANDED

DEFAULT_HELLO_TIMEOUT_S = 60.0   # the plant may start after us
DEFAULT_FRAME_TIMEOUT_S = 10.0   # the plant's own default wait for a command
DEFAULT_STATUS_EVERY = 250       # frames between two STATUS on a lossy link (5 s at 50 Hz)
END_SEND_TIMEOUT_S = 0.5         # an END is best effort: the peer may be gone
DAMAGE_POLL_S = 0.05             # on a lossy link, how often a wait looks for damage to report
DAMAGE_KEYS = ("crc_errors", "cobs_errors", "runts", "oversize")
REASON_MAX_CHARS = 500

# END reason words (docs/protocol.md, "END reasons") and the exit code each means here.
LANDED = "landed"
LINK_FAILURE = "link_failure"
PROTOCOL_ERROR = "protocol_error"
FSW_FAULT = "fsw_fault"
INTERRUPTED = "interrupted"
FAILURES = (LINK_FAILURE, PROTOCOL_ERROR, FSW_FAULT, INTERRUPTED)


class FswClientError(BridgeError):
    """Base of the client's own errors; ``exit_code`` per hil.errors (3: link/peer failure)."""

    exit_code = EXIT_LINK


class ContractError(FswClientError):
    """A command that breaks the flight software contract (shape, mode, non-finite value).

    ``seq`` is the frame it answered, ``detail`` what was wrong.
    """

    def __init__(self, seq: int, detail: str, software: str = "") -> None:
        super().__init__(seq, detail, software)
        self.seq, self.detail, self.software = seq, detail, software

    def __str__(self) -> str:
        who = f"{self.software} " if self.software else ""
        return f"flight software {who}broke the contract at seq {self.seq}: {self.detail}"


def exit_code_for(error: BaseException) -> int:
    """The exit code an error means for a flight software process (hil.errors' table):
    2 for a link that cannot be opened or a bad URL (configuration), else 3."""
    if isinstance(error, (LinkOpenError, UrlError)):
        return EXIT_CONFIG
    return getattr(error, "exit_code", EXIT_LINK) if isinstance(error, BridgeError) else EXIT_LINK


def outcome_of(reason: str) -> str:
    """The first word of an END reason (``"landed: ..."`` -> ``"landed"``)."""
    word, sep, _ = reason.partition(":")
    return word.strip() if sep and word.strip().replace("_", "").isalnum() else ""


def readable(reason: str) -> str:
    """An END reason for people, on one line: ``link_failure: x`` -> ``link failure: x``."""
    word = outcome_of(reason)
    text = f"{word.replace('_', ' ')}{reason[len(word):]}" if word else reason
    return one_line(text)


def runtime_name() -> str:
    """Interpreter name and version, e.g. 'cpython 3.11.7'."""
    v = sys.implementation.version
    return f"{sys.implementation.name} {v.major}.{v.minor}.{v.micro}"


class FswClient:
    """The flight software's end of one run over a link URL; see the module docstring.

    ``software`` is what HELLO_ACK tells the plant (name and version). Used as a context
    manager, it connects on entry and, on exit, ends the run with a reason if it is still
    going (an exception in the block: ``fsw_fault``) and closes the link.
    """

    def __init__(self, url: str, software: str = "user-fsw", *,
                 hello_timeout_s: float = DEFAULT_HELLO_TIMEOUT_S,
                 frame_timeout_s: float = DEFAULT_FRAME_TIMEOUT_S,
                 status_every: int | None = None) -> None:
        self.url = url
        self.software = software
        self.hello_timeout_s = hello_timeout_s
        self.frame_timeout_s = frame_timeout_s
        self.status_every = status_every
        self.fsw_name = ""                      # the flight software's class, for messages
        self.hello: Message | None = None
        self.end_reason: str | None = None     # why the run ended (the plant's or ours)
        self.ended_by: str | None = None        # "plant" or "fsw"
        self.stats = {"frames_received": 0, "frames_repeated": 0, "commands_sent": 0,
                      "commands_resent": 0, "hellos_repeated": 0, "bad_frames": 0}
        self._link = None
        self._frame: Message | None = None      # the frame awaiting its command
        self._frame_t_ns = 0
        self._last_seq = -1                     # the last frame answered
        self._last_command: bytes | None = None
        self._hello_ack: bytes | None = None    # sent again for a repeated HELLO
        self._damage_reported = 0               # deframer errors the plant has been told of

    # --- life cycle ---------------------------------------------------------------------
    def connect(self, accept: bool = True) -> Message:
        """Open the link, wait for the plant's HELLO and (``accept``) answer HELLO_ACK;
        returns the HELLO.

        With ``accept=False`` the caller builds its flight software from :attr:`config`
        first, then calls :meth:`accept` (with the name it reports), or :meth:`end` if it
        cannot start. Raises UrlError/LinkError (cannot open), PeerTimeout (no HELLO in
        time), ProtocolError (a bad HELLO: an END says why to the plant), or returns quietly
        with :attr:`end_reason` set if the plant ended the run before it started.
        """
        self._link = open_link(self.url, "fsw")
        if self.status_every is None:
            self.status_every = DEFAULT_STATUS_EVERY if getattr(self._link, "lossy", False) else 0
        try:
            msg = self._link.recv_msg(self.hello_timeout_s, expect=protocol.HELLO)
        except PeerTimeout as e:
            self._fail(LINK_FAILURE, f"no HELLO from the plant at {self.url} within "
                                     f"{e.timeout_s:g} s")
            raise
        except VersionError as e:  # say why in the plant's own version: END never changes
            self._fail(PROTOCOL_ERROR, f"this flight software speaks protocol version "
                                       f"{protocol.PROTOCOL_VERSION}, the plant {e.got!r}",
                       version=e.got)
            raise
        except ProtocolError as e:
            self._fail(PROTOCOL_ERROR, f"bad HELLO from the plant: {e}")
            raise
        except BridgeError:
            self._close()
            raise
        if msg.type_id == protocol.END:
            self._plant_ended(msg)
            return msg
        self.hello = msg
        if accept:
            self.accept()
        return msg

    def accept(self, software: str | None = None) -> None:
        """Answer the HELLO with HELLO_ACK (``software``: name and version, default the
        constructor's)."""
        if software is not None:
            self.software = software
        try:
            payload = encode(protocol.HELLO_ACK, ["fsw", self.software, runtime_name()])
        except MalformedMessage as e:
            raise self._contract(f"software name: {e.detail}") from None
        self._send(payload)
        self._hello_ack = payload

    @property
    def config(self) -> dict:
        """The HELLO's config map (vehicle, site, nav_init, ...: docs/protocol.md)."""
        return self.hello.config if self.hello is not None else {}

    @property
    def rates(self) -> dict:
        """The HELLO's rates map (frame_hz, imu_hz, ...)."""
        return self.hello.rates if self.hello is not None else {}

    @property
    def scenario(self) -> str:
        return self.hello.scenario if self.hello is not None else ""

    @property
    def running(self) -> bool:
        """True between a completed handshake and the END of the run."""
        return self.hello is not None and self.end_reason is None

    @property
    def outcome(self) -> str:
        """The END reason's first word: the plant's outcome, or a failure word."""
        return outcome_of(self.end_reason or "")

    @property
    def exit_code(self) -> int:
        """0 landed, 1 ended without a landing, 3 link or peer failure (hil.errors)."""
        if self.end_reason is None:
            return EXIT_LINK
        outcome = self.outcome
        if self.ended_by == "fsw" or outcome in FAILURES:
            return EXIT_LINK
        return EXIT_LANDED if outcome == LANDED else EXIT_NOT_LANDED

    @property
    def link_stats(self) -> dict:
        """The link's own counters (bytes, messages; on serial the deframer's too)."""
        return dict(self._link.stats) if self._link is not None else {}

    def end(self, reason: str, outcome: str = FSW_FAULT) -> None:
        """End the run from this side: STATUS (lossy links), END ``outcome: reason``, close."""
        if self.end_reason is None and self._link is not None and not self._link.closed:
            self._fail(outcome, reason)
        self._close()

    def close(self) -> None:
        """Close the link (an unfinished run is ended first, as ``fsw_fault``)."""
        if self.running:
            self.end("the flight software closed its link before the end of the run")
        self._close()

    def __enter__(self) -> FswClient:
        try:
            self.connect()
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and self.running:
            if isinstance(exc, BridgeError):
                self.end(str(exc), LINK_FAILURE)
            elif isinstance(exc, KeyboardInterrupt):
                self.end("the flight software was interrupted", INTERRUPTED)
            else:
                where = f" at seq {self._frame.seq}" if self._frame is not None else ""
                self.end(f"{self.fsw_name or 'flight software'} raised {type(exc).__name__}"
                         f"{where}: {exc}", FSW_FAULT)
        self.close()

    # --- the run ------------------------------------------------------------------------
    def frames(self) -> Iterator[Message]:
        """Yield each new FRAME until the plant ends the run; answer each with a command.

        A frame whose command was not sent when the next one is wanted ends the run
        (ContractError). Failures end the run with an END and raise (see the module
        docstring); the plant's END ends the iteration.
        """
        while self.running:
            if self._frame is not None:
                raise self._contract(f"no command was sent for frame {self._frame.seq}")
            msg = self._next_frame()
            if msg is None:
                return
            self._frame, self._frame_t_ns = msg, time.perf_counter_ns()
            yield msg

    def reply(self, result: Sequence[Any]) -> None:
        """Answer the current frame with the contract's tuple:
        ``(throttle, torque_nm, mode)`` or ``(throttle, torque_nm, mode, nav, flags)``."""
        if isinstance(result, (str, bytes)) or not hasattr(result, "__len__") \
                or len(result) not in (3, 5):
            raise self._contract(f"step returned {_shape(result)}; expected (throttle, "
                                 "torque_nm, mode) or (throttle, torque_nm, mode, nav, flags)")
        self.command(*result)

    def command(self, throttle: float, torque_nm: Sequence[float], mode: int | str,
                nav: Sequence[float] | None = None, flags: int = 0, *,
                compute_us: int | None = None) -> None:
        """Send the command answering the current frame (``mode``: index or name)."""
        frame = self._frame
        if frame is None:
            raise self._contract("a command without a frame to answer")
        if compute_us is None:
            compute_us = (time.perf_counter_ns() - self._frame_t_ns) // 1000
        compute_us = min(max(int(compute_us), 0), protocol.U32_MAX)  # saturated, as the wire says
        if isinstance(mode, str):
            if mode not in protocol.MODES:
                raise self._contract(f"mode {mode!r} is not one of {', '.join(protocol.MODES)}")
            mode = protocol.MODES.index(mode)
        try:
            payload = encode(protocol.COMMAND, [frame.seq, throttle, torque_nm, mode,
                                                compute_us, nav, flags])
        except MalformedMessage as e:
            raise self._contract(f"{e.field}: {e.detail}" if e.field else e.detail) from None
        self._send(payload)
        self._frame = None
        self._last_seq, self._last_command = frame.seq, payload
        self.stats["commands_sent"] += 1
        if self.status_every and self.stats["commands_sent"] % self.status_every == 0:
            self._send_status()

    # --- pieces -------------------------------------------------------------------------
    def _next_frame(self) -> Message | None:
        """The next new FRAME, or None once the plant ended the run."""
        link = self._link
        while True:
            try:
                msg = self._recv_frame()
            except PeerTimeout as e:
                self._fail(LINK_FAILURE, f"plant stalled: no frame after seq {self._last_seq} "
                                         f"within {e.timeout_s:g} s")
                raise
            except ProtocolError as e:
                self.stats["bad_frames"] += 1
                self._fail(PROTOCOL_ERROR, f"bad message from the plant after seq "
                                           f"{self._last_seq}: {e}")
                raise
            except (PeerClosed, LinkError) as e:
                self.end_reason = self.end_reason or (f"{LINK_FAILURE}: after seq "
                                                      f"{self._last_seq}: {one_line(str(e))}")
                self.ended_by = self.ended_by or "fsw"
                self._close()
                raise
            if msg.type_id == protocol.END:
                self._plant_ended(msg)
                return None
            if msg.type_id == protocol.HELLO:
                if self._last_seq >= 0 or self._hello_ack is None:
                    self.stats["bad_frames"] += 1
                    self._fail(PROTOCOL_ERROR, f"bad message from the plant after seq "
                                               f"{self._last_seq}: got hello while expecting frame")
                    raise UnexpectedMessage("hello", "frame")
                self.stats["hellos_repeated"] += 1   # the plant did not hear our HELLO_ACK
                self._send(self._hello_ack)
                continue
            self.stats["frames_received"] += 1
            if msg.seq <= self._last_seq:  # a retransmission: same answer, idempotent
                self.stats["frames_repeated"] += 1
                if msg.seq == self._last_seq and self._last_command is not None:
                    self._send(self._last_command)
                    self.stats["commands_resent"] += 1
                continue
            return msg

    def _recv_frame(self) -> Message:
        """A FRAME (or HELLO, END) within ``frame_timeout_s``. On a lossy link the wait goes
        in slices of DAMAGE_POLL_S, and a damaged frame dropped meanwhile is reported to
        the plant at once in a STATUS: the plant, which sends the frame again, then knows
        the line is noisy (docs/protocol.md, *Retries on a lossy link*)."""
        link, expect = self._link, (protocol.FRAME, protocol.HELLO)
        if not getattr(link, "lossy", False):
            return link.recv_msg(self.frame_timeout_s, expect=expect)
        deadline = time.monotonic() + self.frame_timeout_s
        while True:
            try:
                return link.recv_msg(max(0.0, min(DAMAGE_POLL_S, deadline - time.monotonic())),
                                     expect=expect)
            except PeerTimeout:
                if sum(link.stats.get(k, 0) for k in DAMAGE_KEYS) > self._damage_reported:
                    self.stats["damage_reports"] = self.stats.get("damage_reports", 0) + 1
                    self._send_status()
                if time.monotonic() >= deadline:
                    raise PeerTimeout(self.frame_timeout_s, "a message from the peer",
                                      link.url) from None

    def _plant_ended(self, msg: Message) -> None:
        """The plant's END: answer it (best effort) and close."""
        self.end_reason, self.ended_by = msg.reason, "plant"
        self._send_status()
        self._send_end(f"ack: {outcome_of(msg.reason) or 'end'}")
        self._close()

    def _fail(self, outcome: str, reason: str, version: Any = None) -> None:
        """End the run from this side with ``outcome: reason`` (STATUS first on lossy links;
        ``version``: write the END in the peer's protocol version)."""
        if self.end_reason is None:
            self.end_reason, self.ended_by = f"{outcome}: {reason}", "fsw"
        if self._link is not None and not self._link.closed:
            if version is None:
                self._send_status()
            self._send_end(self.end_reason, version)
        self._close()

    def _contract(self, detail: str) -> ContractError:
        seq = self._frame.seq if self._frame is not None else self._last_seq
        error = ContractError(seq, detail, self.fsw_name)
        self._fail(FSW_FAULT, str(error))
        return error

    def _send(self, payload: bytes) -> None:
        try:
            self._link.send(payload, timeout_s=self.frame_timeout_s)
        except BridgeError as e:
            self._fail(LINK_FAILURE, f"cannot send to the plant: {e}")
            raise

    def _send_end(self, reason: str, version: Any = None) -> None:
        seq = max(self._last_seq, 0)
        payload = encode(protocol.END, [seq, one_line(reason, REASON_MAX_CHARS)])
        if type(version) is int and 0 <= version < 0x10000 and version != protocol.PROTOCOL_VERSION:
            payload = msgpack.packb([version, *msgpack.unpackb(payload)[1:]])
        try:
            self._link.send(payload, timeout_s=END_SEND_TIMEOUT_S)
        except BridgeError:
            pass  # best effort: the plant may be gone

    def _send_status(self) -> None:
        """Our counters and the link's error counters, on a lossy link only."""
        link = self._link
        if not self.status_every or link is None or link.closed:
            return
        stats = dict(self.stats)
        for key in ("crc_errors", "cobs_errors", "runts", "oversize", "bytes_discarded"):
            if key in link.stats:
                stats[key] = link.stats[key]
        self._damage_reported = sum(stats.get(k, 0) for k in DAMAGE_KEYS)
        try:
            link.send(encode(protocol.STATUS, [max(self._last_seq, 0), stats]),
                      timeout_s=END_SEND_TIMEOUT_S)
        except BridgeError:
            pass  # counters are best effort

    def _close(self) -> None:
        if self._link is not None:
            self._link.close()


def _shape(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"{type(value).__name__} {value!r}"[:80]


def serve(url: str, factory: Callable[[dict], Any], software: str, *,
          hello_timeout_s: float = DEFAULT_HELLO_TIMEOUT_S,
          frame_timeout_s: float = DEFAULT_FRAME_TIMEOUT_S,
          step: Callable[[Any, Message], Sequence[Any]] | None = None) -> FswClient:
    """Run one flight software object for one run: ``factory(config)`` builds it, its
    ``step(frame)`` answers each frame (or ``step(fsw, frame)`` if given). Returns the
    client (``end_reason``, ``exit_code``, ``stats``); raises on failure, after the END.

    An exception in ``factory`` or ``step`` ends the run with ``fsw_fault`` naming the
    class, the seq and the exception, and is raised as a :class:`ContractError`.
    """
    client = FswClient(url, software, hello_timeout_s=hello_timeout_s,
                       frame_timeout_s=frame_timeout_s)
    client.connect(accept=False)
    if not client.running:
        return client
    client.fsw_name = getattr(factory, "__name__", "")
    try:
        fsw = factory(client.config)
    except Exception as e:
        raise client._contract(f"cannot start: {type(e).__name__}: {e}") from e
    client.accept()
    client.fsw_name = type(fsw).__name__
    call = (lambda frame: step(fsw, frame)) if step is not None else getattr(fsw, "step", None)
    if not callable(call):
        raise client._contract("it has no step(frame) method")
    for frame in client.frames():
        try:
            result = call(frame)
        except Exception as e:
            raise client._contract(f"step raised {type(e).__name__}: {e}") from e
        client.reply(result)
    return client
