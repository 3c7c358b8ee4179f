"""The board's protocol core: bytes from the host in, bytes for the host out, no I/O.

    board = Board()
    reply = board.feed(data_from_serial)     # write ``reply`` back to the host

The same handshake and loop as the host runner (fsw/host/runner.py): wait for HELLO, answer
HELLO_ACK (software, runtime), then answer every FRAME with one COMMAND whose
``compute_us`` is measured here, around the flight software's step, with the board's own
clock (``time.ticks_us`` on MicroPython). It differs where a board must outlive its host:

* a HELLO at any time starts a new run (the host went away and came back);
* an END, a protocol error or a flight software fault ends the run, answered with an END,
  and the board waits for the next HELLO;
* a HELLO of another protocol version is answered with an END in the *host's* version
  (END is ``[seq, reason]`` in every version) saying which side speaks what, so the host
  can print why instead of failing to decode.

On a noisy line (docs/protocol.md, *Retries*) the host sends again what went unanswered:
a repeated FRAME (the seq just answered) gets the cached COMMAND again, byte for byte,
without stepping the flight software; an older seq is ignored; a repeated HELLO (the same
bytes, before the first frame) gets the cached HELLO_ACK. The board counts what it received,
repeated and dropped (``link_stats``: its counters and the deframer's) and sends them to
the host in a STATUS every STATUS_EVERY frames, before each END it sends, and at once when
a damaged frame was dropped during a run.

``main.py`` pumps a real Pico's USB serial port through :meth:`Board.feed`; the virtual
board (hil/virtual/board.mjs) pumps a pseudo-terminal through it inside MicroPython.
"""

import sys
import time

from bridge import protocol
from fsw import contract
from fsw.frame import Frame

try:
    import wire                      # on the board: files at the root of the filesystem
except ImportError:
    from hil.pico import wire        # on the host (tests)

WAITING = "waiting"    # no run: waiting for a HELLO
RUNNING = "running"    # handshake done: answering frames
FAULT = "fault"        # the last run ended on an error; waiting for a HELLO
STATUS_EVERY = 250     # frames between two STATUS messages (as the host's client)
LINK_COUNTERS = ("frames_received", "frames_repeated", "frames_stale", "commands_sent",
                 "commands_resent", "hellos_repeated", "bad_messages", "damage_reports")
DEFRAMER_COUNTERS = ("crc_errors", "cobs_errors", "runts", "oversize", "bytes_discarded")

if hasattr(time, "ticks_us"):
    _ticks_us = time.ticks_us
    _ticks_diff = time.ticks_diff
    CLOCK = "time.ticks_us"
else:  # CPython (tests)
    def _ticks_us():
        return time.perf_counter_ns() // 1000

    def _ticks_diff(a, b):
        return a - b
    CLOCK = "time.perf_counter_ns"


def runtime_name():
    """Interpreter and version, and the machine where it says: 'micropython 1.27.0 (...)'."""
    impl = sys.implementation
    v = impl.version
    name = "%s %d.%d.%d" % (impl.name, v[0], v[1], v[2])
    machine = getattr(impl, "_machine", None)
    return "%s (%s)" % (name, machine) if machine else name


def version_mismatch_reason(board_version, host_version):
    """The one line a host of another protocol version gets from this board."""
    return ("board firmware speaks protocol %s, host speaks %s: update the firmware "
            "(fsil hil deploy)" % (board_version, host_version))


class Board:
    """Flight software behind the wire protocol, fed with raw bytes from a serial port.

    ``on_state(state)`` is called with WAITING, RUNNING or FAULT when the state changes
    (the LED). ``clock`` is a pair ``(ticks_us(), ticks_diff(a, b))`` for the compute time,
    by default ``time.ticks_us``/``time.ticks_diff`` (the virtual board passes a finer one:
    the WebAssembly port's ticks_us counts whole milliseconds). ``stats`` counts frames
    answered and the compute time (us) spent in them; ``link`` the run's link counters
    (LINK_COUNTERS, sent in STATUS with the deframer's).
    """

    def __init__(self, on_state=None, clock=None, protocol_version=protocol.PROTOCOL_VERSION,
                 fsw="default"):
        self.on_state = on_state
        self.fsw_spec = fsw                        # which flight software (--fsw; load_fsw)
        self.fsw_label = fsw
        self.ticks_us, self.ticks_diff = clock if clock is not None else (_ticks_us, _ticks_diff)
        self.protocol_version = protocol_version   # a test may pretend to be older firmware
        self.deframer = wire.Deframer()
        self.fsw = None
        self.state = WAITING
        self.last_seq = 0
        self.runs = 0
        self.last_reason = ""
        self.stats = {"frames": 0, "compute_us_total": 0, "compute_us_max": 0}
        self.link = {}
        self._reset_link()

    def _reset_link(self):
        self.link = {}
        for k in LINK_COUNTERS:
            self.link[k] = 0
        self.answered = -1        # the seq of the last COMMAND sent in this run (-1: none)
        self.last_command = None  # its payload, sent again for a repeated FRAME
        self.hello_payload = None  # this run's HELLO and HELLO_ACK, for a repeated HELLO
        self.hello_ack = None

    def link_stats(self):
        """The counters a STATUS carries: this run's and the deframer's (since power-up)."""
        stats = dict(self.link)
        for k in DEFRAMER_COUNTERS:
            stats[k] = self.deframer.stats[k]
        return stats

    def _damage(self):
        st = self.deframer.stats
        return st["crc_errors"] + st["cobs_errors"] + st["runts"] + st["oversize"]

    def feed(self, data):
        """Consume bytes from the host; return the bytes to write back (maybe empty).

        During a run, a damaged frame dropped by the deframer is reported at once in a
        STATUS, so the host, which sends it again, knows the line is noisy."""
        out = b""
        damage = self._damage()
        for payload in self.deframer.feed(data):
            reply = self.handle(payload)
            if reply is None:
                continue
            if type(reply) is bytes:
                out += wire.frame(reply)
            else:
                for part in reply:
                    out += wire.frame(part)
        if self.state == RUNNING and self._damage() > damage:
            self.link["damage_reports"] += 1
            out += wire.frame(self._status_payload())
        return out

    # --- one message --------------------------------------------------------------------
    def handle(self, payload):
        """Answer one payload; returns the reply payload, a list of them, or None."""
        try:
            if self.protocol_version != protocol.PROTOCOL_VERSION:
                raise wire.VersionMismatch(_peek_version(payload))
            type_id, fields = wire.decode_message(payload)
        except wire.VersionMismatch as e:
            return self._version_end(e.got)
        except wire.WireError as e:
            self.link["bad_messages"] += 1
            return self._end_run("protocol error: %s" % e, FAULT)
        if type_id == protocol.HELLO:
            if (self.state == RUNNING and self.answered < 0 and self.hello_ack is not None
                    and payload == self.hello_payload):
                self.link["hellos_repeated"] += 1   # our HELLO_ACK was lost or is late
                return self.hello_ack
            return self._hello(fields, payload)
        if type_id == protocol.FRAME:
            if self.state != RUNNING:
                return self._end_run("board: frame %d without a run: send HELLO first" % fields[0],
                                     FAULT)
            self.link["frames_received"] += 1
            seq = fields[0]
            if seq <= self.answered:          # sent again: the same answer, idempotent
                if seq == self.answered:
                    self.link["frames_repeated"] += 1
                    self.link["commands_resent"] += 1
                    return self.last_command
                self.link["frames_stale"] += 1
                return None
            return self._frame(fields)
        if type_id == protocol.STATUS:
            return None               # the host's link counters: nothing to answer
        if type_id == protocol.END:
            if self.state != RUNNING:
                return None           # nothing to end; do not answer an END with an END forever
            self.last_reason = fields[1]
            self._set_state(WAITING)
            return [self._status_payload(), self._end_payload("board: end acknowledged")]
        return self._end_run("protocol error: got %s while expecting %s"
                             % (protocol.NAMES[type_id], "frame" if self.state == RUNNING
                                else "hello"), FAULT)

    def _hello(self, fields, payload=None):
        self.fsw = None
        self.last_seq = 0
        self._reset_link()
        try:
            cls = load_fsw(self.fsw_spec)
            self.fsw_label = fsw_label(cls, self.fsw_spec)
        except Exception as e:  # a module that does not import must not take the board down
            return self._end_run("fsw: cannot load %s: %s: %s"
                                 % (self.fsw_spec, type(e).__name__, e), FAULT)
        try:
            self.fsw = cls(fields[3])
            contract.check_object(self.fsw)
        except Exception as e:  # a bad config must not take the board down
            return self._end_run("flight software %s broke the contract at start (before the "
                                 "first frame): %s: %s" % (self.fsw_label, type(e).__name__, e),
                                 FAULT)
        self.runs += 1
        self._set_state(RUNNING)
        self.hello_payload = payload
        self.hello_ack = wire.encode_message(
            protocol.HELLO_ACK, ["fsw", contract.software_name(self.fsw), runtime_name()])
        return self.hello_ack

    def _frame(self, fields):
        seq = fields[0]
        frame = Frame(seq, fields[1], fields[2], fields[3], fields[4], fields[5])
        self.last_seq = seq
        try:
            t0 = self.ticks_us()
            result = self.fsw.step(frame)
            compute_us = self.ticks_diff(self.ticks_us(), t0)
            if compute_us < 0:
                compute_us = 0
            throttle, torque, mode, nav, flags = contract.command(result)
            reply = wire.encode_message(protocol.COMMAND, [seq, throttle, torque, mode, compute_us,
                                                           contract.wire_nav(nav), flags])
        except Exception as e:
            problem = str(e) if isinstance(e, contract.ContractError) else \
                "step raised %s: %s" % (type(e).__name__, e)
            return self._end_run("flight software %s broke the contract at seq %d: %s"
                                 % (self.fsw_label, seq, problem), FAULT)
        st = self.stats
        st["frames"] += 1
        st["compute_us_total"] += compute_us
        if compute_us > st["compute_us_max"]:
            st["compute_us_max"] = compute_us
        self.answered = seq
        self.last_command = reply
        link = self.link
        link["commands_sent"] += 1
        if link["commands_sent"] % STATUS_EVERY == 0:
            return [reply, self._status_payload()]
        return reply

    # --- ending -------------------------------------------------------------------------
    def _end_payload(self, reason, version=None):
        return wire.encode_message(protocol.END, [self.last_seq, reason[:200]], version)

    def _status_payload(self):
        return wire.encode_message(protocol.STATUS, [self.last_seq, self.link_stats()])

    def _end_run(self, reason, state):
        was_running = self.state == RUNNING
        self.fsw = None
        self.last_reason = reason
        self._set_state(state)
        if was_running:   # the host hears the counters of the run that ends
            return [self._status_payload(), self._end_payload(reason)]
        return self._end_payload(reason)

    def _version_end(self, host_version):
        reason = version_mismatch_reason(self.protocol_version, host_version)
        self.fsw = None
        self.last_reason = reason
        self._set_state(FAULT)
        # in the host's version if it is a plain small integer, so the host can read it
        ok = type(host_version) is int and 0 <= host_version < 0x10000
        return self._end_payload(reason, host_version if ok else None)

    def _set_state(self, state):
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state(state)


def load_fsw(spec):
    """The flight software class (or factory) for ``spec``: ``default`` or ``legacy`` (fsil's
    own, fsw/reference.py) or ``module:Class`` (a module on the board's filesystem, copied
    there by ``fsil hil deploy --fsw`` or the virtual board)."""
    if spec in ("default", "legacy"):
        from fsw import reference
        return reference.BUILTIN[spec]
    if ":" not in spec:
        raise ValueError("expected default, legacy or module:Class, got %r" % spec)
    name, attr = spec.split(":", 1)
    module = __import__(name)
    for part in name.split(".")[1:]:
        module = getattr(module, part)
    return getattr(module, attr)


def fsw_label(cls, spec):
    """How a one-line error names the flight software: ``MyFsw (my_fsw)``."""
    if ":" not in spec:
        return "%s (fsw.reference)" % getattr(cls, "__name__", spec)
    return "%s (%s)" % (spec.split(":", 1)[1], spec.split(":", 1)[0])


def _peek_version(payload):
    """The version field of a payload, or None if it is not [version, ...]."""
    try:
        obj = wire.unpack(payload)
        return obj[0] if type(obj) is list and obj else None
    except wire.WireError:
        return None


def repl_request(first_bytes):
    """True if the bytes after a delimiter are a person's (or mpremote's) Ctrl-C, not a frame.

    A frame's first byte is a COBS code: 3 would mean payload byte 2 (the type id) is zero,
    which no message has, so b"\\x03" or b"\\r\\x03" at a frame boundary is an interrupt.
    """
    return first_bytes[:1] == b"\x03" or first_bytes[:2] == b"\r\x03"


class ReadSizer:
    """How many bytes a blocking read may ask for without waiting past the end of a frame.

    A Pico's ``sys.stdin.buffer.read(n)`` blocks until n bytes came, and reading one byte
    per call is slow. COBS says where each frame goes on: a code byte c is followed by c - 1
    data bytes and then the next code byte or the 0x00 delimiter. So a read may ask for the
    rest of the current block plus the byte after it, and never waits for bytes the host has
    not sent with the frame. The first two bytes after a delimiter are read one by one, so
    that a Ctrl-C there (see :func:`repl_request`) is seen before anything after it.
    A zero byte where data was expected is taken as a delimiter (resync after garbage).
    """

    def __init__(self):
        self.left = 0    # data bytes before the next code byte (or delimiter)
        self.head = 0    # bytes read since the last delimiter

    def size(self):
        return 1 if self.head < 2 else self.left + 1

    def reset(self):
        self.left = 0
        self.head = 0

    def took(self, chunk):
        """Account for the bytes a read returned."""
        n = len(chunk)
        pos = 0              # chunk index after the last code byte or delimiter walked
        nxt = self.left      # chunk index of the next code byte or delimiter
        last_delim = -1
        while True:
            z = chunk.find(b"\x00", pos, nxt if nxt < n else n)
            if z >= 0:
                nxt = z
            elif nxt >= n:
                break
            c = chunk[nxt]
            pos = nxt + 1
            if c == 0:
                last_delim = nxt
                nxt = pos
            else:
                nxt += c
        self.left = nxt - n
        self.head = n - last_delim - 1 if last_delim >= 0 else self.head + n
