"""The C example flight software (bridge/c/build/fsil-example-fsw) lands the terminal
scenario against the real plant process: over ZeroMQ, and over a serial link between two
pseudo-terminals joined like a null-modem cable (the plant on one, the C program on the
other, as it would open /dev/ttyACM0). Both runs go at once, to keep the suite short.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import select
import subprocess
import sys
import threading
import tty

import pytest

from c_build import BUILD, ROOT, build, have_zmq, missing  # tests/c_build.py

if not hasattr(os, "openpty"):
    pytest.skip("pseudo-terminals need POSIX", allow_module_level=True)

EXAMPLE = BUILD / "fsil-example-fsw"
RUN_TIMEOUT_S = 240


class NullModem:
    """Two raw ptys whose masters a thread joins: both ends are real ttys."""

    def __init__(self) -> None:
        self.ends = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)
            self.ends.append((master, slave, os.ttyname(slave)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    @property
    def names(self) -> tuple[str, str]:
        return self.ends[0][2], self.ends[1][2]

    def _pump(self) -> None:
        (a, _, _), (b, _, _) = self.ends
        peer = {a: b, b: a}
        while not self._stop.is_set():
            for fd in select.select([a, b], [], [], 0.05)[0]:
                try:
                    data = os.read(fd, 65536)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(peer[fd], view):]
                except OSError:
                    pass  # an end closed for a moment: the link itself reports it

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        for master, slave, _ in self.ends:
            os.close(master)
            os.close(slave)


def _plant(link: str, out: pathlib.Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hil.cli", "plant", "--scenario", "terminal",
                             "--link", link, "--out", str(out), "--no-progress"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _fsw(link: str) -> subprocess.Popen:
    return subprocess.Popen([str(EXAMPLE), link], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start both landings at once; yield {name: (plant code, plant log, fsw code, fsw log, out)}."""
    build()
    tmp = tmp_path_factory.mktemp("c_example")
    started = {}
    modem = NullModem()
    try:
        if have_zmq():
            url = f"zmq+ipc://{tmp}/link.sock"
            started["zmq"] = (_plant(url, tmp / "zmq"), _fsw(url), tmp / "zmq")
        plant_tty, fsw_tty = modem.names
        fsw = _fsw(f"serial://{fsw_tty}")  # waits for the plant's HELLO
        started["serial"] = (_plant(f"serial://{plant_tty}", tmp / "serial"), fsw, tmp / "serial")
        results = {}
        for name, (plant, fsw, out) in started.items():
            plant_log, _ = plant.communicate(timeout=RUN_TIMEOUT_S)
            fsw_log, _ = fsw.communicate(timeout=30)
            results[name] = (plant.returncode, plant_log, fsw.returncode, fsw_log, out)
        yield results
    finally:
        for plant, fsw, _ in started.values():
            for proc in (plant, fsw):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        modem.close()


def _check_landed(result) -> dict:
    plant_code, plant_log, fsw_code, fsw_log, out = result
    assert plant_code == 0, plant_log + fsw_log
    assert fsw_code == 0, fsw_log
    assert "run ended: landed" in fsw_log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "landed"
    assert summary["fsw_software"].startswith("fsil-example-fsw ")
    assert summary["fsw_runtime"].startswith("c99 ")
    assert summary["cycles"] > 8000
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary["cycles"]
    # it navigated from the IMU and altimeter it received: its estimate tracked the truth
    worst_alt_err = max(abs(float(r["nav_alt_err_m"])) for r in rows[len(rows) // 2:])
    assert worst_alt_err < 20.0
    assert abs(float(rows[-1]["nav_alt_err_m"])) < 2.0
    assert {"approach", "terminal"} <= {r["mode"] for r in rows}
    return summary


def test_c_example_lands_terminal_over_zeromq(runs):
    if "zmq" not in runs:
        missing("libzmq development files not found (Debian: libzmq3-dev)")
    summary = _check_landed(runs["zmq"])
    assert summary["link"].startswith("zmq+ipc://")
    print("zmq:", summary["reason"])


def test_c_example_lands_terminal_over_a_pty_serial_link(runs):
    summary = _check_landed(runs["serial"])
    assert summary["link"].startswith("serial://")
    stats = summary["link_stats"]
    assert stats["frames_ok"] >= summary["cycles"] and stats["crc_errors"] == 0
    print("serial:", summary["reason"], stats)


def test_bad_url_is_one_line_and_exit_2():
    build()
    done = subprocess.run([str(EXAMPLE), "zmq+foo://x"], capture_output=True, text=True, timeout=10)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "expected zmq+ipc://PATH" in done.stderr
    done = subprocess.run([str(EXAMPLE)], capture_output=True, text=True, timeout=10)
    assert done.returncode == 2 and "usage" in done.stderr


def test_missing_serial_port_is_one_line_and_exit_3(tmp_path):
    build()
    done = subprocess.run([str(EXAMPLE), f"serial://{tmp_path}/ttyNONE"], capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and "No such file" in done.stderr
