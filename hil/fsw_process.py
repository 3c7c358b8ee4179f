"""Starting the flight software as a process of its own: fsil's (``fsil fsw``) or the user's.

``fsil run --fsw-cmd 'PROGRAM ARGS {link}'`` runs any executable in place of fsil's flight
software: ``{link}`` in any argument becomes the link URL the plant bound, which is also in
the environment as ``FSIL_LINK``. The command is split like a shell would (``shlex``), but
no shell runs it. Either way the process's stdout and stderr go to ``RUN/fsw.log``, and the
plant supervises it the same way (bounded waits, liveness, its exit code in the reason).

:class:`FswLauncher` is the launcher callable the run engine takes: ``launch(url) -> Popen``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

from hil.errors import ConfigError
from hil.link_dir import LINK_DIR_ENV, RUN_DIR_ENV

LINK_PLACEHOLDER = "{link}"
LINK_ENV = "FSIL_LINK"
LOG_NAME = "fsw.log"
STOP_WAIT_S = 5.0


def parse_fsw_cmd(text: str) -> list[str]:
    """The argument vector of ``--fsw-cmd TEXT``; :class:`ConfigError` (exit 2) if it is empty,
    cannot be split, or its program is not there or not executable."""
    try:
        argv = shlex.split(text)
    except ValueError as e:
        raise ConfigError(f"--fsw-cmd {text!r}: {e}") from None
    if not argv:
        raise ConfigError("--fsw-cmd: empty command")
    program = argv[0]
    if os.sep in program or (os.altsep and os.altsep in program):
        path = Path(program)
        if not path.exists():
            raise ConfigError(f"--fsw-cmd: no such program: {program}")
        if path.is_dir() or not os.access(path, os.X_OK):
            raise ConfigError(f"--fsw-cmd: {program} is not an executable file")
    elif shutil.which(program) is None:
        raise ConfigError(f"--fsw-cmd: program not found on PATH: {program}")
    return argv


def own_fsw_argv(spec: str, timeout_s: float, load_ms: float = 0.0) -> list[str]:
    """fsil's own flight software process (``fsil fsw``) for registry ``spec``."""
    argv = [sys.executable, "-m", "hil.cli", "fsw", "--link", LINK_PLACEHOLDER,
            "--timeout", f"{timeout_s:g}", "--quiet"]
    if load_ms > 0:
        argv += ["--load-ms", f"{load_ms:g}"]
    return argv + ["--fsw", spec]


class FswLauncher:
    """Starts ``argv`` (with ``{link}`` filled in) once the plant has bound its link, output to
    ``log_path``; :meth:`stop` reaps it at the end of the run."""

    def __init__(self, argv: list[str], log_path: Path | None,
                 link_dir: str | None = None, run_dir: Path | None = None) -> None:
        self.argv = list(argv)
        self.link_dir = link_dir   # fsil's temporary link folder (hil.link_dir), if any
        self.run_dir = run_dir     # with it: the run folder, for a killed plant's summary
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def __call__(self, url: str) -> subprocess.Popen:
        argv = [a.replace(LINK_PLACEHOLDER, url) for a in self.argv]
        env = dict(os.environ, **{LINK_ENV: url})
        env.pop(LINK_DIR_ENV, None)
        env.pop(RUN_DIR_ENV, None)
        if self.link_dir is not None:   # the child may remove it if the plant is killed
            env[LINK_DIR_ENV] = self.link_dir
            if self.run_dir is not None:    # and record the death in its summary.json
                env[RUN_DIR_ENV] = os.path.abspath(self.run_dir)
        out = subprocess.DEVNULL
        if self.log_path is not None:
            self._log = open(self.log_path, "wb")
            out = self._log
        try:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, env=env)
        except OSError as e:
            self._close_log()
            raise ConfigError(f"--fsw-cmd: cannot start {argv[0]}: {e.strerror or e}") from None
        return self.process

    def stop(self, wait_s: float = STOP_WAIT_S) -> None:
        """Wait for the process to leave (it was sent END), then terminate or kill it."""
        proc = self.process
        if proc is not None:
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
