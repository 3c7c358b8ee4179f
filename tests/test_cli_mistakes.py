"""A user's mistakes on the command line: one line naming the problem, exit 2, nothing run.

Each case calls ``hil.cli.main`` in this process; none of them gets as far as starting a
plant, so they cost milliseconds.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hil import cli
from hil.errors import EXIT_CONFIG


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_version_names_the_protocol(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    from bridge.protocol import PROTOCOL_VERSION
    assert re.match(rf"fsil \d+\.\d+\.\d+ \(protocol {PROTOCOL_VERSION}", out), out


def test_out_is_a_file(tmp_path, capsys) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    assert cli.main(["run", "--out", str(f), "--no-progress"]) == EXIT_CONFIG
    assert "is not a folder" in one_line_error(capsys)
    assert f.read_text() == "mine"


def test_out_where_nothing_can_be_written(capsys) -> None:
    assert cli.main(["run", "--out", "/proc/fsil-cannot-be-here", "--no-progress"]) == EXIT_CONFIG
    assert "cannot write there" in one_line_error(capsys)


def test_out_not_empty_needs_force(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "descent.png").write_bytes(b"an old plot")
    (out / "keep.txt").write_text("the user's own file")
    assert cli.main(["run", "--out", str(out), "--no-progress"]) == EXIT_CONFIG
    err = one_line_error(capsys)
    assert "not empty" in err and "--force" in err
    assert (out / "descent.png").exists()
    # --force clears fsil's own files (a stale plot must not pass for this run's) and keeps others
    cli.prepare_run_folder(out, force=True)
    assert not (out / "descent.png").exists()
    assert (out / "keep.txt").read_text() == "the user's own file"


def test_plant_alone_on_a_loop_link(capsys) -> None:
    assert cli.main(["plant", "--link", "loop://x", "--no-progress"]) == EXIT_CONFIG
    assert "loop://" in one_line_error(capsys)


@pytest.mark.parametrize("command", [["fsw"], ["plant", "--no-progress"]])
def test_bad_url_is_exit_2_on_either_side(command, capsys) -> None:
    assert cli.main([*command, "--link", "bogus://x"]) == EXIT_CONFIG
    assert 'unknown scheme "bogus"' in one_line_error(capsys)


def test_version_from_a_fresh_process() -> None:
    done = subprocess.run([sys.executable, "-m", "hil.cli", "--version"], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parent.parent, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("fsil "), done.stderr


def test_a_link_that_cannot_be_opened_is_exit_2_with_the_run_kept(tmp_path, capsys) -> None:
    """A socket folder that does not exist (nothing is created for it), a TCP port in use
    and a serial port that is not there: one line naming the link, exit 2, summary kept."""
    import json
    import socket
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    cases = [(f"zmq+ipc://{tmp_path}/no/such/x.sock", "folder"),
             (f"zmq+tcp://127.0.0.1:{port}", "in use"),
             (f"serial://{tmp_path}/ttyACM9", "cannot open serial port")]
    try:
        for k, (url, words) in enumerate(cases):
            out = tmp_path / f"run{k}"
            code = cli.main(["plant", "--link", url, "--scenario", "terminal", "--out", str(out),
                             "--no-progress"])
            assert code == EXIT_CONFIG, url
            err = capsys.readouterr().err.strip().splitlines()[-1]
            assert err.startswith("fsil: cannot open the link: ") and words in err, err
            summary = json.loads((out / "summary.json").read_text())
            assert "cannot open the link" in summary["reason"]
    finally:
        busy.close()
    assert not (tmp_path / "no").exists()
