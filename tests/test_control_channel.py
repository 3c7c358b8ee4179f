"""The fault-control channel's defences (issue 13.3): a private socket file whatever the
umask, and a request parser bounded in size and depth that answers anything -- garbage, a
deeply nested document, an oversized request -- with an error and lets the run go on."""

from __future__ import annotations

import json
import os
import stat
import threading

import msgpack
import pytest
import zmq

from hil.engine.context import Progress, RunContext
from hil.engine.control import (MAX_REQUEST_BYTES, MAX_REQUEST_DEPTH, ControlServer,
                                FaultControl, Rejected, parse_request)
from hil.engine.recorder import HistoryRecorder, NullSink
from hil.engine.timing import TimingLog
from hil.scenario import load_scenario
from plant.lander import Command, LanderPlant


def test_the_control_socket_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        server = ControlServer(tmp_path)
        try:
            mode = os.stat(tmp_path / "control.sock").st_mode
            assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
            # What the umask gives any other new file: world-writable.
            (tmp_path / "probe").write_text("")
            assert stat.S_IMODE(os.stat(tmp_path / "probe").st_mode) == 0o666
        finally:
            server.close()
    finally:
        os.umask(old)
    assert not (tmp_path / "control.sock").exists()


NESTED_JSON = b"[" * 3000 + b"]" * 3000                         # ~6 KB
NESTED_OBJECT = b'{"a":' * 600 + b"1" + b"}" * 600               # ~3.6 KB, under the size
DEEP_MSGPACK = b"\x91" * 2000 + b"\xc0"                         # 2,000 nested arrays
NESTED_MSGPACK = b"\x81\xa1a" * 10 + b"\xc0"                      # 10 nested maps


@pytest.mark.parametrize("raw,words", [
    (NESTED_JSON, f"at most {MAX_REQUEST_BYTES}"),
    (NESTED_OBJECT, f"deeper than {MAX_REQUEST_DEPTH}"),
    (b'{"sensor": [[[[[["imu"]]]]]]}', f"deeper than {MAX_REQUEST_DEPTH}"),
    (NESTED_MSGPACK, f"deeper than {MAX_REQUEST_DEPTH}"),
    (DEEP_MSGPACK, "not a JSON object or msgpack map"),   # msgpack's own stack limit
    (b"\xc1\xff garbage", "not a JSON object or msgpack map"),
    (b'{"sensor": "imu", ', "not a JSON object or msgpack map"),
    (b"\xff\xfe{", "not a JSON object or msgpack map"),
    (json.dumps({"k": "x" * 5000}).encode(), f"at most {MAX_REQUEST_BYTES}"),
    (b"[1, 2]", "expected a map, got list"),
])
def test_the_parser_refuses_with_a_reason(raw, words):
    encoding = "json" if raw.lstrip()[:1] in (b"{", b"[") else "msgpack"
    with pytest.raises(Exception) as info:
        parse_request(raw, encoding)
    if isinstance(info.value, Rejected):
        assert words in str(info.value)
    else:   # the decoder's own error: the server words it as "not a JSON object ..."
        assert "not a JSON object" in words


def _ask(endpoint: str, payloads: list[bytes], replies: list) -> None:
    ctx = zmq.Context()
    try:
        for raw in payloads:
            sock = ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
            sock.send(raw)
            replies.append(sock.recv() if sock.poll(20_000) else None)
            sock.close()
    finally:
        ctx.term()


def test_bad_requests_are_answered_and_the_run_goes_on(tmp_path):
    cfg = load_scenario("terminal")
    plant = LanderPlant(cfg)
    plant.reset(1)
    control = FaultControl(ControlServer(tmp_path))
    ctx = RunContext(cfg, 1, plant, HistoryRecorder(NullSink()), TimingLog(10, False),
                     Progress(1.0, False), control=control)
    payloads = [NESTED_JSON, NESTED_OBJECT, DEEP_MSGPACK, b"\xc1\xff garbage",
                msgpack.packb({"sensor": "imu", "kind": "bias", "value": [1.0]}),
                json.dumps({"sensor": "imu", "kind": "off"}).encode()]
    replies: list = []
    client = threading.Thread(target=_ask, args=(control.server.endpoint, payloads, replies))
    client.start()
    steps = 0
    try:
        while client.is_alive() and steps < 8000:
            ctx.step(Command(0.5, (0.0, 0.0, 0.0)))
            steps += 1
    finally:
        client.join(30)
        control.close()
    assert len(replies) == len(payloads) and None not in replies
    decoded = [json.loads(r) if p.lstrip()[:1] in (b"{", b"[") else msgpack.unpackb(r)
               for p, r in zip(payloads, replies)]
    assert [d["ok"] for d in decoded] == [False] * 5 + [True]
    assert f"at most {MAX_REQUEST_BYTES}" in decoded[0]["error"]
    assert "deeper than" in decoded[1]["error"]
    assert "not a JSON object or msgpack map (StackError" in decoded[2]["error"]
    assert "not a JSON object or msgpack map" in decoded[3]["error"]
    assert "value" in decoded[4]["error"]
    assert decoded[5]["label"] == "imu:off" and decoded[5]["fired"] is True
    assert control.requests == 2 and control.rejected == 1   # the two that parsed
    assert not plant.done and plant.t_us > 0                  # the run went on
