"""``fsil run --fsw-cmd 'PROGRAM ARGS {link}'``: any program as the flight software.

The program gets the link URL in place of ``{link}`` and in ``FSIL_LINK``; it is supervised
like fsil's own flight software (its exit code in the one-line reason), and its output is
kept in RUN/fsw.log (fsil's own flight software's too).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from hil.cli import main

ROOT = Path(__file__).resolve().parent.parent
PY = shlex.quote(sys.executable)


def fsil(*args: str, timeout_s: float = 180.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hil.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)


def test_a_missing_program_or_a_clash_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    cases = [
        (["--fsw-cmd", "no-such-fsw-program {link}"],
         "--fsw-cmd: program not found on PATH: no-such-fsw-program"),
        (["--fsw-cmd", "./no/such/fsw {link}"], "--fsw-cmd: no such program: ./no/such/fsw"),
        (["--fsw-cmd", str(tmp_path)], f"--fsw-cmd: {tmp_path} is not an executable file"),
        (["--fsw-cmd", "'unclosed {link}"], "No closing quotation"),
        (["--fsw-cmd", "   "], "--fsw-cmd: empty command"),
        (["--fsw-cmd", "true", "--fsw", "legacy"], "--fsw-cmd runs your own program; it "
                                                    "takes no --fsw"),
    ]
    for extra, message in cases:
        assert main(["run", "--out", str(out), "--no-progress", *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


def test_a_program_that_dies_is_exit_3_with_its_code_and_its_output_kept(tmp_path) -> None:
    out = tmp_path / "run"
    script = "import sys; print('fsw starting', flush=True); sys.exit('no gimbal table')"
    done = fsil("run", "--scenario", "terminal", "--out", str(out), "--no-progress",
                "--fsw-cmd", f"{PY} -c {shlex.quote(script)} {{link}}")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "exited with code 1" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "link_failure" and "exited with code 1" in summary["reason"]
    assert (out / "fsw.log").read_text() == "fsw starting\nno gimbal table\n"


def test_the_link_reaches_the_program_as_argument_and_in_the_environment(tmp_path) -> None:
    # A shell script in place of the flight software, in a real-time run: it prints what it
    # was given, then runs a flight software (fsil's own) on the URL from the environment.
    out = tmp_path / "run"
    script = tmp_path / "my fsw.sh"            # a space in the path: quoted, not split
    script.write_text(f'#!/bin/sh\necho "arg=$1 env=$FSIL_LINK"\n'
                      f'exec {PY} -m hil.cli fsw --link "$FSIL_LINK" --fsw legacy\n')
    script.chmod(0o755)
    done = fsil("run", "--scenario", "terminal", "--out", str(out), "--no-progress",
                "--no-plot", "--realtime", "--max-sim-time", "1",
                "--fsw-cmd", f"{shlex.quote(str(script))} {{link}}")
    assert done.returncode == 1, done.stdout + done.stderr      # 1 s: not landed, no error
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "timeout" and summary["timing"]["mode"] == "realtime"
    assert summary["timing"]["cycles"] == 50
    assert "(legacy)" in summary["fsw_software"]
    log = (out / "fsw.log").read_text().splitlines()
    arg, env = log[0].split(" ")
    assert arg == "arg=" + summary["link"] and env == "env=" + summary["link"]
    assert summary["link"].startswith("zmq+ipc://")
    assert "run ended" in log[-1]       # fsil fsw's own last words, kept too
