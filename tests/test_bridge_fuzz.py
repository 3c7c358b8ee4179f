"""The crashes of issue 13, reproduced against each side, and a short mutation fuzz.

At the plant: a COMMAND with mode >= 7 or compute_us >= 2^63 crashed it (traceback, no
summary, no END); NaN values were accepted. At `fsil fsw`: a bad HELLO config (KeyError,
TypeError, ZeroDivisionError), huge or NaN frame values crashed it with a traceback, it never
sent END, never answered one, exited 0 when the plant ended on a link failure and printed
"fsil fsw: fsw: ...". Each case now ends the run with an END naming the problem, exit 3 and
one line; the plant keeps its history and summary. Both sides run in this process over
loop:// (the plant is hil.plant_side.PlantSide, the flight software fsw.host.runner), so
these are quick; bench/fuzz.py does the same with a million inputs and real processes.
"""

from __future__ import annotations

import copy
import json
import math
import random
import threading

import msgpack
import pytest
from hello_sample import CONFIG, RATES

from bench.fuzz import SEEDS, mutate
from bridge import protocol as p
from bridge.codec import decode, encode
from bridge.errors import ProtocolError
from bridge.url import open_link
from fsw.host.runner import main_fsw
from hil.plant_side import PlantSide
from hil.scenario import load_scenario

V = p.PROTOCOL_VERSION


@pytest.fixture
def no_plot(monkeypatch):
    import hil.plots
    monkeypatch.setattr(hil.plots, "plot_descent", lambda *a, **k: None)


# --- at the plant ---------------------------------------------------------------------------

def _plant_against(tmp_path, name: str, script) -> tuple:
    """Run PlantSide (terminal) in a thread; ``script(link)`` plays the flight software."""
    cfg = load_scenario("terminal")
    cfg.run.link_timeout_s = 5.0
    url = f"loop://{name}"
    side = PlantSide(cfg, url, tmp_path / "run", control=False, hello_timeout_s=30.0)
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", side.run()))
    thread.start()
    got = []
    with open_link(url, "fsw") as link:
        link.recv_msg(30.0, expect=p.HELLO)
        link.send_msg(p.HELLO_ACK, ["fsw", "scripted 1.0", "cpython"])
        script(link, got)
    thread.join(30.0)
    assert not thread.is_alive()
    return out["result"], got


def _command(seq: int, **change) -> list:
    fields = {"seq": seq, "throttle": 0.5, "torque_nm": [0.0, 0.0, 0.0], "mode": 4,
              "compute_us": 100, "nav": None, "flags": 0}
    fields.update(change)
    return [V, p.COMMAND, *fields.values()]


PLANT_CRASHES = [("mode", len(p.MODES)), ("mode", 2**40), ("compute_us", 2**63),
                 ("compute_us", 2**32), ("throttle", math.nan), ("torque_nm", [0.0, math.inf, 0.0]),
                 ("nav", [0.0] * 6 + [math.nan]), ("flags", 2**32)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("field, value", PLANT_CRASHES,
                         ids=[f"{f}={v!r}"[:30] for f, v in PLANT_CRASHES])
def test_the_plant_ends_cleanly_on_an_out_of_range_command(tmp_path, no_plot, field, value):
    def script(link, got):
        for seq in range(3):
            frame = link.recv_msg(10.0, expect=p.FRAME)
            bad = _command(frame.seq, **{field: value}) if seq == 2 else _command(frame.seq)
            link.send(msgpack.packb(bad))
        got.append(link.recv_msg(10.0))

    result, got = _plant_against(tmp_path, f"plant-{field}-{PLANT_CRASHES.index((field, value))}",
                                 script)
    assert result.exit_code == 3
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["outcome"] == "link_failure" and f'"{field}"' in summary["reason"]
    assert "\n" not in summary["reason"]
    assert (tmp_path / "run" / "history.csv").read_text().count("\n") == 3  # header + 2 rows
    end = got[-1]
    assert end.name == "end" and end.reason.startswith("link_failure: ") and field in end.reason


@pytest.mark.timeout(60)
def test_the_plant_records_a_status_sent_while_it_waits_for_a_command(tmp_path, no_plot):
    def script(link, got):
        for seq in range(3):
            frame = link.recv_msg(10.0, expect=p.FRAME)
            link.send_msg(p.STATUS, [frame.seq, {"frames_received": seq + 1, "crc_errors": 2}])
            link.send(msgpack.packb(_command(frame.seq)))
        link.recv_msg(10.0, expect=p.FRAME)
        link.send_msg(p.END, [2, "fsw_fault: scripted end"])

    result, _ = _plant_against(tmp_path, "plant-status", script)
    assert result.exit_code == 3 and "fsw_fault: scripted end" in result.summary["reason"]
    assert result.summary["fsw_link_stats"] == {"frames_received": 3, "crc_errors": 2}


# --- at fsil fsw ----------------------------------------------------------------------------

def _fsw_against(name: str, hello: bytes, frames: list[bytes], end: str | None, capsys,
                 timeout_s: float = 5.0) -> tuple[int, str, list]:
    """main_fsw (fsil fsw's entry) in a thread against a scripted plant."""
    url = f"loop://{name}"
    got: list = []
    with open_link(url, "plant") as link:
        out: dict = {}
        thread = threading.Thread(target=lambda: out.setdefault(
            "code", main_fsw(url, timeout_s, quiet=False)))
        thread.start()
        link.send(hello)
        try:
            msg = link.recv_msg(10.0)
            got.append(msg)
            if msg.name == "hello_ack":
                for payload in frames:
                    link.send(payload)
                    msg = link.recv_msg(10.0)
                    got.append(msg)
                    if msg.name == "end":
                        break
                else:
                    if end is not None:
                        link.send_msg(p.END, [len(frames), end])
                        got.append(link.recv_msg(10.0))
        finally:
            thread.join(30.0)
    assert not thread.is_alive()
    err = capsys.readouterr().err
    return out["code"], err, got


def _hello(config=None) -> bytes:
    return msgpack.packb([V, p.HELLO, "plant", "terminal", RATES,
                          CONFIG if config is None else config])


def _frame(seq: int, imu_value: float = 0.0) -> bytes:
    t = 20000 * (seq + 1)
    return msgpack.packb([V, p.FRAME, seq, t, [[t - 5000, imu_value, 0.0, 0.0081, 0.0, 0.0, 0.0],
                                                [t, 0.0, 0.0, 0.0081, 0.0, 0.0, 0.0]],
                          [t - 7000, 1800.0, True], None, None])


def _assert_one_line(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "fsw: fsw:" not in err and lines[0].startswith("fsil fsw: ")


def _config(path: str, value) -> dict:
    config = copy.deepcopy(CONFIG)
    *parents, key = path.split(".")
    node = config
    for k in parents:
        node = node[k]
    if value is KeyError:
        del node[key]
    else:
        node[key] = value
    return config


BAD_HELLO = [("nav_init.q", [0, 0, 0, 0]), ("vehicle", KeyError),
             ("vehicle.max_thrust_n", "9000"), ("site.up", [0.0, 0.0, 0.0]),
             ("nav_init.r_m", [math.nan, 0.0, 0.0])]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path, value", BAD_HELLO, ids=[k for k, _ in BAD_HELLO])
def test_fsil_fsw_refuses_a_bad_hello_config_with_an_end(path, value, capsys):
    code, err, got = _fsw_against(f"fsw-hello-{BAD_HELLO.index((path, value))}",
                                  _hello(_config(path, value)), [], None, capsys)
    assert code == 3
    _assert_one_line(err)
    assert "fsil fsw: protocol error: bad HELLO from the plant" in err and path in err
    assert got[0].name == "end" and got[0].reason.startswith("protocol_error: bad HELLO")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("value", [1e300, -1e308, 1e18], ids=["1e300", "-1e308", "1e18"])
def test_fsil_fsw_survives_huge_frame_values(value, capsys):
    frames = [_frame(0), _frame(1, value), _frame(2), _frame(3)]
    code, err, got = _fsw_against(f"fsw-huge-{abs(math.log10(abs(value))):.0f}", _hello(), frames,
                                  "landed: scripted", capsys)
    _assert_one_line(err)
    last = got[-1]
    if code == 3:  # the flight software could not cope: it says so, it does not crash
        assert last.name == "end" and last.reason.startswith("fsw_fault: flight software ")
        assert "broke the contract at seq 1" in err or "broke the contract at seq 2" in err
    else:          # or it coped and the run ended as the plant said
        assert code == 0 and last.reason == "ack: landed"


@pytest.mark.timeout(60)
def test_fsil_fsw_refuses_nan_frame_values_with_an_end(capsys):
    frames = [_frame(0), _frame(1, math.nan)]
    code, err, got = _fsw_against("fsw-nan", _hello(), frames, None, capsys)
    assert code == 3
    _assert_one_line(err)
    assert "protocol error: bad message from the plant after seq 0" in err and "imu" in err
    assert got[-1].name == "end" and got[-1].reason.startswith("protocol_error: ")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("end, code", [("landed: soft touchdown", 0), ("crashed: 9 m/s", 1),
                                       ("link_failure: fsw stalled at seq 2", 3)])
def test_fsil_fsw_answers_the_plants_end_and_exits_as_it_says(end, code, capsys):
    got_code, err, got = _fsw_against(f"fsw-end-{code}", _hello(), [_frame(0), _frame(1)], end,
                                      capsys)
    assert got_code == code
    _assert_one_line(err)
    assert got[-1].name == "end" and got[-1].reason.startswith("ack: ")


@pytest.mark.timeout(60)
def test_fsil_fsw_reports_a_silent_plant_and_says_so_to_it(capsys):
    code, err, got = _fsw_against("fsw-silent", _hello(), [], None, capsys, timeout_s=0.3)
    # the script sent no frame: the flight software gives up after its timeout
    assert code == 3
    _assert_one_line(err)
    assert "link failure: plant stalled: no frame after seq -1 within 0.3 s" in err


# --- a short mutation fuzz of the codec (bench/fuzz.py runs a million) -------------------------

def test_mutated_messages_are_decoded_or_refused_as_documented():
    rng = random.Random(13)
    refused = accepted = 0
    for _ in range(3000):
        data = mutate(rng, rng.choice(SEEDS))
        try:
            msg = decode(data)
        except ProtocolError:
            refused += 1
            continue
        accepted += 1
        once = encode(msg.type_id, msg.fields)   # what was accepted can be sent again as is
        assert encode(msg.type_id, decode(once).fields) == once
    assert refused > 1000 and accepted > 100
