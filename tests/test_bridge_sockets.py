"""Link sockets are safe by default (issue 13.3): private ipc files, bounded messages,
no remote bind without CURVE, and a real CURVE handshake between two processes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bridge import protocol as p
from bridge.codec import encode
from bridge.errors import LinkError, PeerTimeout, UrlError
from bridge.keys import make_keys
from bridge.url import open_link
from hil.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def test_ipc_socket_is_private_whatever_the_umask(tmp_path):
    """The socket file is 0600 even at umask 000 (fsil creates no folder for an address:
    its default link lives in a mkdtemp folder, 0700)."""
    old = os.umask(0)
    try:
        with open_link(f"zmq+ipc://{tmp_path}/link.sock", "plant"):
            mode = os.stat(tmp_path / "link.sock").st_mode
            assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    finally:
        os.umask(old)


ATTACKER = textwrap.dedent("""
    import sys, time, zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PAIR)
    s.setsockopt(zmq.LINGER, 2000)
    s.connect(sys.argv[1])
    s.send(b"\\x00" * int(sys.argv[2]))          # far over MAX_PAYLOAD_BYTES
    time.sleep(0.5)
    s.send(bytes.fromhex(sys.argv[3]))           # then a valid END: the link still works
    s.close()                                    # LINGER: delivered before the context ends
    ctx.term()
""")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.timeout(60)
def test_an_oversize_message_is_dropped_before_it_is_buffered(tmp_path):
    """ZMQ_MAXMSGSIZE: 64 MiB sent to the plant's link does not reach its memory."""
    end = encode(p.END, [0, "still here"])
    with open_link(f"zmq+ipc://{tmp_path}/link.sock", "plant") as plant:
        before = _rss_mib()
        child = subprocess.Popen([sys.executable, "-c", ATTACKER, f"ipc://{tmp_path}/link.sock",
                                  str(64 * 2**20), end.hex()], env=ENV)
        try:
            assert plant.recv(30.0) == end    # the oversize message never came through
            assert _rss_mib() - before < 16
        finally:
            child.wait(30)


def test_a_remote_bind_needs_curve_keys_at_the_link_and_allow_remote_at_the_cli(tmp_path, capsys):
    for url in ("zmq+tcp://0.0.0.0:0", "zmq+tcp://[::]:0", "zmq+tcp://192.0.2.1:5555"):
        with pytest.raises(UrlError, match="not a loopback address, needs CURVE keys"):
            open_link(url, "plant")
    for command in ("run", "plant"):
        code = main([command, "--scenario", "terminal", "--link", "zmq+tcp://0.0.0.0:5555",
                     "--out", str(tmp_path / command), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and "pass --allow-remote" in err and err.count("\n") == 1
    with pytest.raises(LinkError, match="plant.key_secret"):
        open_link(f"zmq+tcp://127.0.0.1:0?keys={tmp_path}/none", "plant")


def test_fsil_keys_writes_private_secrets_and_refuses_to_overwrite(tmp_path, capsys):
    folder = tmp_path / "keys"
    assert main(["keys", str(folder)]) == 0
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    modes = {f.name: stat.S_IMODE(os.stat(f).st_mode) for f in folder.iterdir()}
    assert modes == {"plant.key": 0o644, "plant.key_secret": 0o600, "fsw.key": 0o644,
                     "fsw.key_secret": 0o600}
    before = (folder / "plant.key_secret").read_bytes()
    capsys.readouterr()
    assert main(["keys", str(folder)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (folder / "plant.key_secret").read_bytes() == before
    assert main(["keys", str(folder), "--force"]) == 0
    assert (folder / "plant.key_secret").read_bytes() != before


FSW_CHILD = textwrap.dedent("""
    import sys
    from bridge import protocol as p
    from bridge.url import open_link
    from bridge.errors import PeerTimeout
    with open_link(sys.argv[1], "fsw") as link:
        link.send_msg(p.HELLO_ACK, ["fsw", "curve child", "cpython"], timeout_s=float(sys.argv[2]))
        try:
            msg = link.recv_msg(float(sys.argv[2]), expect=p.END)
        except PeerTimeout:
            sys.exit(4)
        link.send_msg(p.END, [0, "bye: " + msg.reason])
""")


def _child(url: str, wait_s: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", FSW_CHILD, url, str(wait_s)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(90)
def test_curve_between_two_processes_lets_in_only_the_key_holder(tmp_path):
    keys, other = tmp_path / "keys", tmp_path / "other"
    make_keys(keys)
    make_keys(other)  # a stranger's keys: same names, other secrets
    with open_link(f"zmq+tcp://127.0.0.1:0?keys={keys}", "plant") as plant:
        assert plant.curve and plant.url.endswith(f"?keys={keys}")
        port_url = plant.url.partition("?")[0]
        # without keys, or with another key pair, nothing gets through
        strangers = [_child(port_url, 1.0), _child(f"{port_url}?keys={other}", 1.0)]
        for child in strangers:  # each sent its HELLO_ACK and waited 1 s for an answer
            assert child.wait(60) != 0
        with pytest.raises(PeerTimeout):
            plant.recv(0.5)      # none of it came through
        # the flight software holding fsw.key_secret and plant.key is in
        child = _child(plant.url, 20.0)
        ack = plant.recv_msg(30.0, expect=p.HELLO_ACK)
        assert ack.software == "curve child"
        plant.send_msg(p.END, [0, "landed: curve works"])
        assert plant.recv_msg(20.0).reason == "bye: landed: curve works"
        assert child.wait(30) == 0, child.stderr.read()

