"""SerialLink on real pseudo-terminals: round trips, damage on the line, timeouts, ports that
are missing, busy or vanish, two links over a pty null modem, and the URL forms.

The test holds the master end of a pty (os.openpty) and reads and writes it raw; the link
opens the slave by its name, as it would open /dev/ttyACM0. POSIX only.
"""

import os
import pathlib
import select
import socket
import sys
import threading
import time
import tty

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # repo root, not installed

import pytest
from hello_sample import CONFIG, RATES

if not hasattr(os, "openpty"):
    pytest.skip("pseudo-terminals need POSIX", allow_module_level=True)

from bridge import open_link, protocol as p
from bridge.codec import decode, encode
from bridge.errors import LinkError, PeerClosed, PeerTimeout, UrlError
from bridge.framing import FrameDecoder, encode_frame
from bridge.serial_link import DEFAULT_BAUD, SerialLink
from bridge.url import parse_url

HELLO_ACK = ["fsw", "fsil-fsw 0.1.0", "cpython 3.11.7"]
END = [3, "done"]


def _frame_msg(seq: int) -> bytes:
    t_us = 20000 * (seq + 1)
    imu = [[t_us - 5000 * (3 - k), 0.001, -0.0, 0.0081, 1e-6, -2e-6, 0.0] for k in range(4)]
    return encode(p.FRAME, [seq, t_us, imu, [t_us - 7000, 1500.5, True], None, None])


def _command_msg(seq: int) -> bytes:
    return encode(p.COMMAND, [seq, 0.6, [-1.0, 0.25, 0.0], 3, 900, [1.0] * 7, 5])


class Pty:
    """A raw pseudo-terminal: the test holds ``master``; ``name`` is the slave's path."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no line discipline: bytes pass unchanged
        self.name = os.ttyname(self.slave)
        self.decoder = FrameDecoder()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view):]

    def read_payloads(self, count: int, timeout_s: float = 5.0) -> list[bytes]:
        """Read the master until ``count`` framed payloads came (or fail after timeout_s)."""
        out, deadline = [], time.monotonic() + timeout_s
        while len(out) < count:
            left_s = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.master], [], [], left_s)
            assert ready, f"only {len(out)} of {count} frames within {timeout_s} s"
            out += self.decoder.feed(os.read(self.master, 65536))
        return out

    def drain(self) -> bytes:
        data = b""
        while select.select([self.master], [], [], 0.05)[0]:
            data += os.read(self.master, 65536)
        return data

    def close_master(self) -> None:
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def close(self) -> None:
        self.close_master()
        os.close(self.slave)


@pytest.fixture
def pty():
    end = Pty()
    yield end
    end.close()


@pytest.fixture
def link(pty):
    end = open_link(f"serial://{pty.name}", "plant")
    yield end
    end.close()


class NullModem:
    """Two ptys whose masters a thread joins, like a null-modem cable: both ends are ttys."""

    def __init__(self) -> None:
        self.a, self.b = Pty(), Pty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        peer = {self.a.master: self.b, self.b.master: self.a}
        while not self._stop.is_set():
            for fd in select.select(list(peer), [], [], 0.05)[0]:
                try:
                    peer[fd].write(os.read(fd, 65536))
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.a.close()
        self.b.close()


# --- round trips


@pytest.mark.timeout(20)
def test_messages_round_trip_over_a_pty(pty, link):
    link.send_msg(p.FRAME, decode(_frame_msg(5)).fields)
    link.send_msg(p.END, END)
    first = pty.drain()
    assert first.startswith(b"\x00") and first.count(b"\x00\x00") == 0  # one flush, then frames
    assert FrameDecoder().feed(first) == [_frame_msg(5), encode(p.END, END)]

    pty.write(encode_frame(encode(p.HELLO_ACK, HELLO_ACK)) + encode_frame(_command_msg(5)))
    assert link.recv_msg(5.0, expect=p.HELLO_ACK).fields["software"] == "fsil-fsw 0.1.0"
    assert link.recv(5.0) == _command_msg(5)
    stats = link.stats
    assert stats["frames_ok"] == 2 and stats["messages_received"] == 2
    assert stats["bytes_out"] == len(first)
    assert stats["bytes_in"] == len(encode_frame(encode(p.HELLO_ACK, HELLO_ACK))) + \
        len(encode_frame(_command_msg(5)))
    assert all(stats[k] == 0 for k in ("crc_errors", "cobs_errors", "oversize", "runts",
                                      "bytes_discarded"))


@pytest.mark.timeout(20)
def test_largest_payload_round_trips(pty, link):
    payload = bytes(range(256)) * 16  # 4096 bytes with zeros
    writer = threading.Thread(target=pty.write, args=(encode_frame(payload),))
    writer.start()
    assert link.recv(5.0) == payload
    writer.join()
    link.send(payload)
    assert pty.read_payloads(1) == [payload]


# --- damage on the line


@pytest.mark.timeout(30)
def test_damage_on_the_pty_is_counted_and_every_good_frame_after_it_kept(pty, link):
    good = [_command_msg(k) for k in range(12)]
    frames = [encode_frame(x) for x in good]
    assert frames[2][0] > 10  # the first COBS block runs past byte 10: cut there, it is bad COBS
    flipped = bytearray(frames[2])
    flipped[20] ^= 0x10 if flipped[20] ^ 0x10 else 0x20
    stream = [
        b"\x00", frames[0],
        b"\x13\x37garbage\xff\x00", frames[1],                      # garbage: cobs error
        frames[2][:10] + b"\x00", frames[3],                         # truncated: cobs error
        bytes(flipped), frames[4],                                   # bit flip: crc error
        b"\x02\x01\x00", frames[5],                                  # runt
        b"\x5a" * 20000 + b"\x00", frames[6],                        # endless: oversize
        frames[7][:-1] + b"\x5a" * 5000 + b"\x00", frames[8],       # overlong: oversize
        b"\x00\x00\x00", frames[9], frames[10], frames[11],         # empty candidates
    ]
    data = b"".join(stream)
    writer = threading.Thread(target=pty.write, args=(data,))  # the pty buffer is small
    writer.start()
    got = [link.recv(5.0) for _ in range(10)]
    writer.join()
    assert got == [good[k] for k in (0, 1, 3, 4, 5, 6, 8, 9, 10, 11)]
    stats = link.stats
    assert (stats["cobs_errors"], stats["crc_errors"], stats["runts"], stats["oversize"]) == \
        (2, 1, 1, 2)
    assert stats["frames_ok"] == 10 and stats["bytes_in"] == len(data)
    with pytest.raises(PeerTimeout):
        link.recv(0.05)


# --- bounded waits


@pytest.mark.timeout(20)
def test_recv_timeout_is_bounded(pty, link):
    for timeout_s in (0.0, 0.05, 0.3):
        start = time.monotonic()
        with pytest.raises(PeerTimeout) as info:
            link.recv(timeout_s)
        elapsed = time.monotonic() - start
        assert timeout_s <= elapsed < timeout_s + 0.5  # liveness bound, not a performance claim
        assert info.value.timeout_s == timeout_s


@pytest.mark.timeout(20)
def test_a_port_without_a_file_descriptor_is_polled(pty, link):
    """RFC 2217 ports have no descriptor to wait on: the link polls them, still bounded."""
    link._fd = None
    start = time.monotonic()
    with pytest.raises(PeerTimeout):
        link.recv(0.1)
    assert 0.1 <= time.monotonic() - start < 0.6
    threading.Timer(0.05, pty.write, args=(encode_frame(_command_msg(4)),)).start()
    assert link.recv(5.0) == _command_msg(4)


@pytest.mark.timeout(20)
def test_a_half_frame_then_silence_times_out(pty, link):
    pty.write(encode_frame(_command_msg(1))[:30])
    with pytest.raises(PeerTimeout):
        link.recv(0.2)
    pty.write(b"\x00" + encode_frame(_command_msg(2)))  # the sender's flush ends the half
    assert link.recv(5.0) == _command_msg(2)
    assert link.stats["cobs_errors"] + link.stats["crc_errors"] == 1


@pytest.mark.timeout(30)
def test_send_timeout_is_bounded_and_the_next_frame_is_clean(pty, link):
    """Nobody reads the master: the pty buffer fills and send gives up in time."""
    payload = bytes(range(1, 256)) * 16
    sent = 0
    with pytest.raises(PeerTimeout):
        for _ in range(1000):
            start = time.monotonic()
            link.send(payload, timeout_s=0.2)
            sent += 1
    assert time.monotonic() - start < 1.0
    assert sent > 0
    received = FrameDecoder()
    out = received.feed(pty.drain())
    link.send(b"after")  # preceded by a delimiter: the part-written frame cannot swallow it
    out += received.feed(pty.drain())
    assert out[-1] == b"after" and out[:-1] == [payload] * (len(out) - 1)
    assert len(out) - 1 in (sent, sent + 1)
    assert received.stats["crc_errors"] + received.stats["cobs_errors"] <= 1


# --- ports missing, busy, vanishing


def test_missing_port_is_a_link_error_naming_it():
    with pytest.raises(LinkError) as info:
        open_link("serial:///dev/fsil-no-such-port", "fsw")
    assert "/dev/fsil-no-such-port" in str(info.value)
    assert "No such file or directory" in str(info.value)


def test_busy_port_is_a_link_error(pty, link):
    with pytest.raises(LinkError) as info:
        open_link(f"serial://{pty.name}", "fsw")
    assert pty.name in str(info.value) and "in use" in str(info.value)


@pytest.mark.timeout(20)
def test_closing_the_far_end_mid_run_raises_peer_closed(pty, link):
    pty.write(encode_frame(_command_msg(1)))
    assert link.recv(5.0) == _command_msg(1)
    outcome = {}

    def wait() -> None:
        start = time.monotonic()
        try:
            link.recv(10.0)
        except LinkError as error:
            outcome["error"] = error
        outcome["elapsed"] = time.monotonic() - start

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    pty.close_master()  # the board vanished (USB re-enumeration looks the same)
    waiter.join(5.0)
    assert not waiter.is_alive()
    assert isinstance(outcome["error"], PeerClosed) and outcome["elapsed"] < 2.0
    assert pty.name in str(outcome["error"])
    with pytest.raises(PeerClosed, match="failed on write"):
        link.send(b"anyone?")
    link.close()
    link.close()  # safe twice


# --- two links, both roles open the port the same way


@pytest.mark.timeout(30)
def test_lockstep_between_two_serial_links_over_a_null_modem():
    modem = NullModem()
    try:
        plant = open_link(f"serial://{modem.a.name}?baud=115200", "plant")
        fsw = open_link(f"serial://{modem.b.name}", "fsw")
        assert (plant.baud, fsw.baud) == (115200, DEFAULT_BAUD)

        def serve() -> None:
            fsw.recv_msg(5.0, expect=p.HELLO)
            fsw.send_msg(p.HELLO_ACK, HELLO_ACK)
            while True:
                msg = fsw.recv_msg(5.0, expect=p.FRAME)
                if msg.name == "end":
                    fsw.send_msg(p.END, [msg.seq, "bye"])
                    return
                fsw.send(_command_msg(msg.seq))

        server = threading.Thread(target=serve)
        server.start()
        plant.send_msg(p.HELLO, ["plant", "terminal", RATES, CONFIG])
        assert plant.recv_msg(5.0, expect=p.HELLO_ACK).role == "fsw"
        for seq in range(100):
            plant.send(_frame_msg(seq))
            assert plant.recv_msg(5.0, expect=p.COMMAND).seq == seq
        plant.send_msg(p.END, [99, "touchdown"])
        assert plant.recv_msg(5.0).reason == "bye"
        server.join(5.0)
        for end in (plant, fsw):
            assert end.stats["frames_ok"] == 102 and end.stats["messages_sent"] == 102
            errors = ("crc_errors", "cobs_errors", "oversize", "runts")
            assert sum(end.stats[k] for k in errors) == 0
        plant.close()
        fsw.close()
    finally:
        modem.close()


# --- URL forms


@pytest.mark.parametrize("url, port, baud", [
    ("serial:///dev/ttyACM0", "/dev/ttyACM0", 921600),
    ("serial:///dev/ttyUSB0?baud=115200", "/dev/ttyUSB0", 115200),
    ("serial://COM3?baud=9600", "COM3", 9600),
    ("serial+rfc2217://ser2net.lab:7000?baud=57600&logging=debug",
     "rfc2217://ser2net.lab:7000?logging=debug", 57600),
    ("serial+socket://127.0.0.1:7001", "socket://127.0.0.1:7001", 921600),
    ("serial+spy:///dev/ttyACM0?file=dump.txt&baud=230400", "spy:///dev/ttyACM0?file=dump.txt",
     230400),
    ("serial+hwgrep://2e8a:0005", "hwgrep://2e8a:0005", 921600),
])
def test_url_forms(url, port, baud):
    for role in ("plant", "fsw"):  # both roles open the port the same way
        cls, options = parse_url(url, role)
        assert cls is SerialLink and options == {"port": port, "baud": baud}


@pytest.mark.parametrize("url, reason", [
    ("serial://", "missing PATH"),
    ("serial://?baud=9600", "missing PATH"),
    ("serial:///dev/ttyACM0?baud=fast", "baud must be a positive integer"),
    ("serial:///dev/ttyACM0?baud=0", "baud must be a positive integer"),
    ("serial:///dev/ttyACM0?baud", "baud must be a positive integer"),
    ("serial:///dev/ttyACM0?parity=E", 'unknown option "parity"'),
    ("serial+socket://", "missing address"),
])
def test_bad_serial_urls_quote_the_grammar(url, reason):
    with pytest.raises(UrlError) as info:
        open_link(url, "fsw")
    assert reason in str(info.value) and f'"{url}"' in str(info.value)
    assert info.value.expected.startswith("serial")


def test_unknown_scheme_lists_the_serial_forms_and_leaves_loop_alone():
    with pytest.raises(UrlError) as info:
        open_link("serial+loop://", "fsw")  # pyserial's loop:// is not offered; ours is loop://
    assert "serial://PATH[?baud=N]" in str(info.value)
    assert "serial+rfc2217://HOST:PORT" in str(info.value)
    assert parse_url("loop://x", "fsw")[0] is not SerialLink


@pytest.mark.timeout(20)
def test_serial_over_a_tcp_serial_server():
    """serial+socket:// against a raw TCP serial server on loopback (like ser2net)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        link = open_link(f"serial+socket://127.0.0.1:{port}", "fsw")
        conn, _ = server.accept()
        conn.sendall(encode_frame(_frame_msg(3)))
        assert link.recv(5.0) == _frame_msg(3)
        link.send(_command_msg(3))
        received = FrameDecoder()
        got = []
        while not got:
            got = received.feed(conn.recv(65536))
        assert got == [_command_msg(3)]
        conn.close()  # the server goes away
        with pytest.raises(PeerClosed, match=f"socket://127.0.0.1:{port}"):
            link.recv(5.0)
        link.close()
    finally:
        server.close()


@pytest.mark.timeout(20)
def test_spy_url_dumps_the_traffic(pty, tmp_path):
    dump = tmp_path / "spy.txt"
    link = open_link(f"serial+spy://{pty.name}?file={dump}", "fsw")
    try:
        link.send(b"\x93\x01\x05")
        assert pty.read_payloads(1) == [b"\x93\x01\x05"]
    finally:
        link.close()
    assert "TX" in dump.read_text()
