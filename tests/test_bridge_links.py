"""Links: the same behaviour over loop://, zmq+ipc:// and zmq+tcp://, then what each adds."""

import os
import pathlib
import socket
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # repo root, not installed

import pytest
from hello_sample import CONFIG, RATES

from bridge import open_link, protocol as p
from bridge.errors import (LinkError, MalformedMessage, PeerClosed, PeerTimeout,
                           UnexpectedMessage, UrlError)
from bridge.loop_link import open_names

END = {"seq": 3, "reason": "done"}
COMMAND = {"seq": 0, "throttle": 0.5, "torque_nm": [0.0, 0.0, 1.0], "mode": 1,
           "compute_us": 10, "nav": [0.0] * 7, "flags": 0}


@pytest.fixture(autouse=True)
def no_loop_left_open():
    yield
    assert open_names() == [], "a loop:// link was left open"


@pytest.fixture(params=["loop", "zmq+ipc", "zmq+tcp", "unix"])
def pair(request, tmp_path):
    """(plant, fsw) ends of one link, both in this process."""
    url = {"loop": f"loop://{request.node.name}".replace("[", "-").replace("]", ""),
           "zmq+ipc": f"zmq+ipc://{tmp_path}/link.sock",
           "zmq+tcp": "zmq+tcp://127.0.0.1:0",
           "unix": f"unix://{tmp_path}/link.sock"}[request.param]
    plant = open_link(url, "plant")
    fsw = open_link(plant.url, "fsw")  # plant.url carries the bound port for tcp port 0
    yield plant, fsw
    fsw.close()
    plant.close()


# --- the same behaviour over every backend


@pytest.mark.timeout(20)
def test_exchange_both_ways_keeps_order_and_counts(pair):
    plant, fsw = pair
    fsw.send(b"first from fsw")  # the connecting end may speak first
    assert plant.recv(5.0) == b"first from fsw"
    for k in range(5):
        plant.send(bytes([k]) * (k + 1))
    assert [fsw.recv(5.0) for _ in range(5)] == [bytes([k]) * (k + 1) for k in range(5)]
    assert plant.stats == {"bytes_sent": 15, "bytes_received": 14, "messages_sent": 5,
                           "messages_received": 1}
    assert fsw.stats["messages_received"] == 5 and fsw.stats["bytes_sent"] == 14


@pytest.mark.timeout(20)
def test_messages_and_expectations(pair):
    plant, fsw = pair
    fsw.send_msg(p.COMMAND, COMMAND)
    assert plant.recv_msg(5.0, expect=p.COMMAND).fields == COMMAND
    fsw.send_msg(p.COMMAND, COMMAND)
    with pytest.raises(UnexpectedMessage, match="got command while expecting hello_ack or frame"):
        plant.recv_msg(5.0, expect=(p.HELLO_ACK, p.FRAME))
    fsw.send_msg(p.END, END)  # END always comes through, whatever was expected
    assert plant.recv_msg(5.0, expect=p.COMMAND).name == "end"
    fsw.send(b"\xc1")
    with pytest.raises(MalformedMessage):
        plant.recv_msg(5.0)


@pytest.mark.timeout(20)
def test_recv_timeout_is_bounded(pair):
    plant, fsw = pair
    for end in (plant, fsw):
        start = time.monotonic()
        with pytest.raises(PeerTimeout) as info:
            end.recv(0.3)
        elapsed = time.monotonic() - start
        assert 0.3 <= elapsed < 1.3  # liveness bound, not a performance claim
        assert info.value.timeout_s == 0.3 and end.url in str(info.value)
    with pytest.raises(PeerTimeout):
        plant.recv(0.0)  # zero means: only what is already there


@pytest.mark.timeout(20)
def test_close_twice_and_use_after_close(pair):
    plant, fsw = pair
    with fsw:
        pass
    fsw.close()
    assert fsw.closed
    with pytest.raises(LinkError, match="closed"):
        fsw.send(b"x")
    with pytest.raises(LinkError, match="closed"):
        fsw.recv(0.1)


def test_bad_timeout_is_a_value_error(pair):
    with pytest.raises(ValueError):
        pair[0].recv(-1.0)
    with pytest.raises(ValueError):
        pair[0].recv(float("nan"))


# --- URLs


@pytest.mark.parametrize("url", [
    "zmq+foo://x", "zmq://x", "x", "", "tcp://127.0.0.1:5555", "zmq+ipc://", "zmq+tcp://127.0.0.1",
    "zmq+tcp://:5555", "zmq+tcp://host:", "zmq+tcp://host:port", "zmq+tcp://host:65536",
    "zmq+tcp://host:-1", "zmq+tcp://h:1?x=1", "loop://", "loop://a/b", "loop:// a",
])
def test_bad_urls_quote_the_grammar(url):
    with pytest.raises(UrlError) as info:
        open_link(url, "fsw")
    assert f'"{url}"' in str(info.value) and "expected" in str(info.value)
    assert "://" in info.value.expected


def test_unknown_scheme_lists_every_form():
    from bridge.url import SCHEMES
    with pytest.raises(UrlError) as info:
        open_link("zmq+foo://x", "plant")
    for _, form in SCHEMES.values():
        assert form in str(info.value)


def test_port_zero_only_for_the_plant():
    with pytest.raises(UrlError, match="PORT 0"):
        open_link("zmq+tcp://127.0.0.1:0", "fsw")


def test_bad_role():
    with pytest.raises(ValueError, match="role"):
        open_link("loop://x", "ground")


def test_missing_backend_module_is_a_link_error(monkeypatch):
    from bridge import url as url_module
    monkeypatch.setitem(url_module.SCHEMES, "serial",
                        ("bridge.no_such_backend:SerialLink", "serial://DEVICE"))
    with pytest.raises(LinkError, match="bridge.no_such_backend"):
        open_link("serial:///dev/ttyACM0", "fsw")


# --- loop://


@pytest.mark.timeout(20)
def test_loop_between_threads():
    received = []

    def fsw_side():
        with open_link("loop://threads", "fsw") as fsw:  # may open before or after the plant
            while True:
                msg = fsw.recv_msg(5.0, expect=p.FRAME)
                if msg.type_id == p.END:
                    break
                fsw.send_msg(p.COMMAND, dict(COMMAND, seq=msg.seq))
                received.append(msg.seq)

    thread = threading.Thread(target=fsw_side)
    thread.start()
    with open_link("loop://threads", "plant") as plant:
        for seq in range(20):
            plant.send_msg(p.FRAME, {"seq": seq, "t_us": seq * 20000, "imu": [], "alt": None,
                                     "vel": None, "att": None})
            assert plant.recv_msg(5.0, expect=p.COMMAND).seq == seq
        plant.send_msg(p.END, END)
        thread.join(5.0)
    assert not thread.is_alive() and received == list(range(20))


@pytest.mark.timeout(20)
def test_loop_peer_close_delivers_what_was_sent_then_peer_closed():
    plant = open_link("loop://closing", "plant")
    fsw = open_link("loop://closing", "fsw")
    plant.send(b"last words")
    plant.close()
    assert fsw.recv(1.0) == b"last words"
    with pytest.raises(PeerClosed):
        fsw.recv(1.0)
    with pytest.raises(PeerClosed):
        fsw.send(b"anyone?")
    fsw.close()


def test_loop_one_end_per_role_and_name_reuse():
    with open_link("loop://dup", "plant"):
        with pytest.raises(LinkError, match="already open"):
            open_link("loop://dup", "plant")
    with open_link("loop://dup", "fsw") as fsw, open_link("loop://dup", "plant") as plant:
        plant.send(b"new pair")
        assert fsw.recv(1.0) == b"new pair"


@pytest.mark.timeout(20)
def test_loop_send_timeout_when_peer_does_not_read(monkeypatch):
    from bridge import loop_link
    monkeypatch.setattr(loop_link, "PIPE_DEPTH_MESSAGES", 2)
    with open_link("loop://full", "plant") as plant:
        plant.send(b"1")
        plant.send(b"2")
        with pytest.raises(PeerTimeout, match="accept"):
            plant.send(b"3", timeout_s=0.1)


# --- zmq


@pytest.mark.timeout(20)
def test_zmq_send_timeout_without_peer(tmp_path):
    with open_link(f"zmq+ipc://{tmp_path}/alone.sock", "plant") as plant:
        start = time.monotonic()
        with pytest.raises(PeerTimeout):
            plant.send(b"hello?", timeout_s=0.2)
        assert time.monotonic() - start < 1.2


def test_zmq_tcp_address_in_use():
    with open_link("zmq+tcp://127.0.0.1:0", "plant") as first:
        with pytest.raises(LinkError, match="cannot bind"):
            open_link(first.url, "plant")


def test_zmq_ipc_address_in_use_is_not_stolen(tmp_path):
    url = f"zmq+ipc://{tmp_path}/busy.sock"
    with open_link(url, "plant") as first, open_link(url, "fsw") as fsw:
        with pytest.raises(LinkError, match="in use"):
            open_link(url, "plant")
        fsw.send(b"still mine")
        assert first.recv(5.0) == b"still mine"


def test_zmq_ipc_stale_socket_file_is_replaced(tmp_path):
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    with open_link(f"zmq+ipc://{path}", "plant"):
        pass


def test_zmq_ipc_refuses_to_replace_a_regular_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    with pytest.raises(LinkError, match="not a socket"):
        open_link(f"zmq+ipc://{path}", "plant")
    assert path.read_text() == "keep me"


@pytest.mark.timeout(20)
def test_zmq_ipc_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    with open_link("zmq+ipc://run/rel.sock", "plant") as plant, \
            open_link("zmq+ipc://run/rel.sock", "fsw") as fsw:
        fsw.send(b"relative")
        assert plant.recv(5.0) == b"relative"


def test_zmq_ipc_missing_folder_is_refused_and_not_created(tmp_path):
    """An address in a folder that does not exist is a configuration error: nothing is
    created (a typo must not leave folders behind, at the root or anywhere)."""
    from bridge.errors import LinkOpenError
    url = f"zmq+ipc://{tmp_path}/no/such/dir/x.sock"
    with pytest.raises(LinkOpenError, match=f"folder {tmp_path}/no/such/dir does not exist"):
        open_link(url, "plant")
    assert list(tmp_path.iterdir()) == []


# --- two real processes

FSW_CHILD = """
import sys
from bridge import open_link, protocol as p
with open_link(sys.argv[1], "fsw") as link:
    hello = link.recv_msg(10.0, expect=p.HELLO)
    link.send_msg(p.HELLO_ACK, {"role": "fsw", "software": "child " + hello.scenario,
                                "runtime": "cpython"})
    while True:
        msg = link.recv_msg(10.0, expect=p.FRAME)
        if msg.type_id == p.END:
            break
        link.send_msg(p.COMMAND, {"seq": msg.seq, "throttle": 0.1 * msg.seq,
                                  "torque_nm": [0, 0, 0], "mode": 1, "compute_us": 5,
                                  "nav": [msg.t_us, 0, 0, 0, 0, 0, 0], "flags": 0})
    link.send_msg(p.END, {"seq": msg.seq, "reason": "plant ended"})
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scheme", ["zmq+ipc", "zmq+tcp", "unix"])
def test_zmq_between_two_processes(scheme, tmp_path):
    url = {"zmq+ipc": f"zmq+ipc://{tmp_path}/link.sock", "zmq+tcp": "zmq+tcp://127.0.0.1:0",
           "unix": f"unix://{tmp_path}/link.sock"}[scheme]
    with open_link(url, "plant") as plant:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        child = subprocess.Popen([sys.executable, "-c", FSW_CHILD, plant.url], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            plant.send_msg(p.HELLO, {"role": "plant", "scenario": "test", "rates": RATES,
                                     "config": CONFIG}, timeout_s=30.0)
            ack = plant.recv_msg(30.0, expect=p.HELLO_ACK)
            assert ack.software == "child test"
            for seq in range(5):
                plant.send_msg(p.FRAME, {"seq": seq, "t_us": 20000 * seq,
                                         "imu": [[20000 * seq, 0, 0, 0, 0, 0, 0]], "alt": None,
                                         "vel": None, "att": None})
                command = plant.recv_msg(10.0, expect=p.COMMAND)
                assert command.seq == seq and command.nav[0] == 20000.0 * seq
            plant.send_msg(p.END, {"seq": 4, "reason": "test over"})
            assert plant.recv_msg(10.0).fields == {"seq": 4, "reason": "plant ended"}
            _, stderr = child.communicate(timeout=20)
            assert child.returncode == 0, stderr
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


PLANT_CHILD = """
import sys, time
from bridge import open_link, protocol as p
link = open_link(sys.argv[1], "plant")
link.send(b"hello", timeout_s=30.0)
time.sleep(600)
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scheme", ["zmq+ipc", "zmq+tcp", "unix"])
def test_a_killed_plant_is_seen_by_the_fsw_end_at_once(scheme, tmp_path):
    """kill -9 of the plant's process: the flight software's end raises PeerClosed (its
    connection dropped) instead of waiting out its 30 s receive as PeerTimeout."""
    import signal
    from bridge.errors import PeerClosed
    if scheme in ("zmq+ipc", "unix"):
        url = f"{scheme}://{tmp_path}/link.sock"
    else:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        url = f"zmq+tcp://127.0.0.1:{probe.getsockname()[1]}"
        probe.close()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", PLANT_CHILD, url], env=env)
    try:
        with open_link(url, "fsw") as fsw:
            assert fsw.recv(30.0) == b"hello"
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            with pytest.raises(PeerClosed, match="connection dropped"):
                fsw.recv(30.0)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# --- unix:// (bridge/unix_link.py)


def test_unix_socket_is_private_single_peer_and_removed(tmp_path):
    path = tmp_path / "link.sock"
    old = os.umask(0o000)      # whatever the umask
    try:
        plant = open_link(f"unix://{path}", "plant")
    finally:
        os.umask(old)
    try:
        assert (path.stat().st_mode & 0o777) == 0o600
        fsw = open_link(f"unix://{path}", "fsw")
        fsw.send(b"first")
        assert plant.recv(5.0) == b"first"
        # Accepted: nobody else gets in (the plant stopped listening: refused, retried,
        # never connected).
        with open_link(f"unix://{path}", "fsw") as other:
            with pytest.raises(PeerTimeout):
                other.send(b"x", timeout_s=0.2)
        fsw.close()
        with pytest.raises(PeerTimeout):
            plant.recv(0.2)
        assert plant.peer_gone()
    finally:
        plant.close()
    assert not path.exists()


def test_unix_refuses_oversize_and_a_listening_or_foreign_path(tmp_path):
    import socket as so
    path = tmp_path / "link.sock"
    with open_link(f"unix://{path}", "plant") as plant, open_link(f"unix://{path}", "fsw") as fsw:
        with pytest.raises(LinkError, match="larger than 4096"):
            fsw.send(b"x" * (p.MAX_PAYLOAD_BYTES + 1))
        raw = so.socket(so.AF_UNIX, so.SOCK_SEQPACKET)     # a peer that ignores the limit
        plant.send(b"hello")
        assert fsw.recv(5.0) == b"hello"
        raw.close()
        fsw._sock.send(b"y" * (p.MAX_PAYLOAD_BYTES + 100))
        with pytest.raises(LinkError, match="larger than 4096"):
            plant.recv(5.0)
        with pytest.raises(LinkError, match="address already in use"):
            open_link(f"unix://{path}", "plant")
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(LinkError, match="not a socket"):
        open_link(f"unix://{regular}", "plant")
    assert regular.read_text() == "x"
    with pytest.raises(LinkError, match="does not exist"):
        open_link(f"unix://{tmp_path}/no/link.sock", "plant")
    with pytest.raises(UrlError):
        open_link(f"unix://{tmp_path}/link.sock?x=1", "plant")
