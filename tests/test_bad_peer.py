"""A peer that talks nonsense or dies: the plant (a real process) says what and where,
exits 3, and keeps its summary; the flight software side does the same for a bad plant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
import zmq

from bridge import protocol

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _start_plant(tmp_path: Path) -> tuple[subprocess.Popen, str, Path]:
    url_path = tmp_path / "l.sock"
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hil.cli", "plant", "--scenario", "terminal", "--link",
         f"zmq+ipc://{url_path}", "--out", str(out), "--timeout", "3", "--hello-timeout", "3", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
    return proc, f"ipc://{url_path}", out


def _fake_fsw(addr: str):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(addr)
    if not sock.poll(60_000):
        sock.close()
        ctx.term()   # a context left to the garbage collector with a socket hangs pytest
        pytest.fail("no HELLO from the plant within 60 s")
    hello = msgpack.unpackb(sock.recv())
    assert hello[0] == protocol.PROTOCOL_VERSION and hello[1] == protocol.HELLO
    return ctx, sock


ACK = ["fsw", "fake 0", "cpython 3"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case,expect", [
    ("garbage", "bad message"),
    ("wrong_version", "version"),
    ("wrong_type", "command"),
    ("oversize", "no HELLO_ACK"),  # dropped by libzmq (ZMQ_MAXMSGSIZE), never buffered
    ("truncated", "bad message"),
    ("silent", "no HELLO_ACK"),
])
def test_plant_reports_bad_fsw(tmp_path, case, expect):
    proc, addr, out = _start_plant(tmp_path)
    ctx, sock = _fake_fsw(addr)
    try:
        if case == "garbage":
            sock.send(b"\xc1\xff\x00garbage")
        elif case == "wrong_version":
            sock.send(msgpack.packb([99, protocol.HELLO_ACK, *ACK]))
        elif case == "wrong_type":
            sock.send(msgpack.packb([protocol.PROTOCOL_VERSION, protocol.HELLO_ACK, *ACK]))
            sock.poll(10_000)
            sock.recv()  # frame 0
            sock.send(msgpack.packb([protocol.PROTOCOL_VERSION, protocol.HELLO_ACK, *ACK]))
        elif case == "oversize":
            sock.send(b"\x00" * (protocol.MAX_PAYLOAD_BYTES + 1))
        elif case == "truncated":
            sock.send(msgpack.packb([protocol.PROTOCOL_VERSION, protocol.HELLO_ACK, *ACK])[:-3])
        _, stderr = proc.communicate(timeout=40)
    finally:
        sock.close()
        ctx.term()
    assert proc.returncode == 3, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr
    assert expect.lower() in lines[0].lower()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "link_failure"
    assert (out / "history.csv").exists()


@pytest.mark.timeout(60)
def test_fsw_reports_wrong_version_plant(tmp_path):
    addr = f"ipc://{tmp_path / 'p.sock'}"
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(addr)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "hil.cli", "fsw", "--link",
                                 f"zmq+ipc://{tmp_path / 'p.sock'}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=ENV, cwd=REPO)
        sock.send(msgpack.packb([7, protocol.HELLO, "plant", "x", {}, {}]))
        _, stderr = proc.communicate(timeout=40)
    finally:
        sock.close()
        ctx.term()
    assert proc.returncode == 3
    assert "version" in stderr.lower() and "Traceback" not in stderr
