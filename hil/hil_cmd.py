"""``fsil hil``: the plant against flight software on a board, over a serial port.

    fsil hil --port /dev/ttyACM0 [--scenario terminal]   a Pico running hil/pico (docs/hil.md)
    fsil hil --virtual [--scenario terminal]             the same firmware under MicroPython
                                                         in Node.js, behind a pseudo-terminal
    fsil hil deploy --port /dev/ttyACM0                  copy the firmware with mpremote

The run is the same as ``fsil run`` (lockstep, history, summary, plot) over
``serial://PORT?baud=N``; ``summary.json`` names the link and the board's interpreter
(``fsw_runtime``, from its HELLO_ACK). A board that resets or a port that goes away
mid-run ends the run with exit code 3 and keeps the history.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import tty
from pathlib import Path

from hil.errors import ConfigError

DEFAULT_BAUD = 921600
ROOT = Path(__file__).resolve().parent.parent          # holds fsw/, bridge/, hil/
PICO_DIR = ROOT / "hil" / "pico"
FIRMWARE = ("wire.py", "board.py")                      # main.py is copied last
VIRTUAL_STOP_S = 5.0


def add_parser(sub, add_common) -> None:
    """Register ``fsil hil`` on the CLI's subparsers (``add_common`` adds the run options)."""
    p = sub.add_parser(
        "hil", help="run a landing against flight software on a board (serial), or deploy it",
        description="Run the plant against the flight software on a Raspberry Pi Pico running "
                    "MicroPython (--port), or on the virtual board: the same firmware under "
                    "MicroPython in Node.js behind a pseudo-terminal (--virtual). "
                    "'fsil hil deploy --port PORT' copies the firmware to a board with mpremote. "
                    "See docs/hil.md.")
    p.add_argument("action", nargs="?", choices=("run", "deploy"), default="run",
                   help="'run' (default) a landing, or 'deploy' the firmware to the board")
    add_common(p)
    p.add_argument("--port", default=None,
                   help="the board's serial port (/dev/ttyACM0, COM3) or a serial URL "
                        "(serial+hwgrep://2e8a:0005)")
    p.add_argument("--virtual", action="store_true",
                   help="use the virtual board (needs Node.js and 'npm ci --prefix hil/virtual')")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                   help=f"baud rate for a UART (USB CDC ignores it; default {DEFAULT_BAUD})")
    from hil.run_options import _add_fsw_variant
    _add_fsw_variant(p)
    p.set_defaults(func=cmd_hil)


def cmd_hil(args: argparse.Namespace) -> int:
    if args.action == "deploy":
        if args.virtual or not args.port:
            raise ConfigError("'fsil hil deploy' needs --port PORT (the virtual board loads the "
                              "firmware by itself)")
        return deploy(args.port, board_fsw(args.fsw or "default"))
    if bool(args.virtual) == bool(args.port):
        raise ConfigError("give one of --port PORT (a board) or --virtual (the virtual board)")
    if not args.baud > 0:
        raise ConfigError(f"--baud must be > 0, got {args.baud}")
    if args.virtual:
        return _run_virtual(args, board_fsw(args.fsw or "default"))
    if args.fsw is not None:
        raise ConfigError("--fsw with --port: the board runs the flight software that "
                          "'fsil hil deploy --port PORT --fsw SPEC' put on it")
    url = args.port if "://" in args.port else f"serial://{args.port}?baud={args.baud}"
    return _run(args, url, launcher=None)


# --- runs -------------------------------------------------------------------------------
def _run(args: argparse.Namespace, url: str, launcher, log: dict | None = None) -> int:
    """One run over the serial ``url``; ``log["path"]`` is set to RUN/fsw.log for the
    launcher (the board's own output)."""
    from hil.run_options import _check_url, _load, _print_summary
    from hil.engine import PlantSide
    cfg, seed, out = _load(args)
    if log is not None:
        log["path"] = out / "fsw.log"
    if not url.startswith("serial"):
        raise ConfigError(f'--port takes a serial port or a serial URL, got "{url}"')
    _check_url(url)
    extra = {"realtime": True} if getattr(args, "realtime", False) else {}
    from hil.engine.signals import handle_signals
    with handle_signals():   # SIGINT/SIGTERM end the run in order (summary kept)
        result = PlantSide(cfg, url, out, seed, fsw_launcher=launcher,
                           progress=not args.no_progress, hello_timeout_s=args.hello_timeout,
                           build=getattr(args, "build", None),
                           plots=not getattr(args, "no_plot", False), **extra).run()
    _print_summary(result)
    return result.exit_code


def board_fsw(spec: str):
    """The registry entry for ``--fsw SPEC`` on a board: fsil's own, or a module file that is
    copied to the board (it must be MicroPython-compatible; it is imported there, not here)."""
    from fsw.host.registry import resolve
    entry = resolve(spec)
    if not entry.builtin and (entry.source_file is None or entry.source_file.suffix != ".py"):
        raise ConfigError(f"--fsw {spec}: no Python source file found for {entry.module} to "
                          "copy to the board")
    return entry


def _run_virtual(args: argparse.Namespace, entry) -> int:
    from hil import virtual
    why = virtual.problem()
    if why is not None:
        raise ConfigError(why)
    # The plant opens the pseudo-terminal's slave end by its path through pyserial, as it
    # would /dev/ttyACM0; the virtual board holds the master end (an inherited descriptor).
    master, slave = os.openpty()
    tty.setraw(slave)
    procs: list[subprocess.Popen] = []
    log: dict = {}

    def launch(bound_url: str) -> subprocess.Popen:
        extra = [] if entry.builtin else ["--fsw-file", str(entry.source_file)]
        with open(log["path"], "wb") as out:   # the board's output: RUN/fsw.log
            proc = subprocess.Popen(virtual.board_command("--fd", str(master), "--quiet",
                                                          "--fsw", entry.board_spec, *extra),
                                    pass_fds=(master,), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        os.close(master)       # the board's copy is the only one: if it dies, the port hangs up
        return proc

    try:
        url = f"serial://{os.ttyname(slave)}?baud={args.baud}"
        return _run(args, url, launch, log)
    finally:
        if not procs:
            os.close(master)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=VIRTUAL_STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        os.close(slave)


# --- deploy -----------------------------------------------------------------------------
def mpremote_command() -> list[str]:
    """How to run mpremote: the one installed beside this Python, else the module."""
    exe = Path(sys.executable).with_name("mpremote")
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-m", "mpremote"]


def deploy_plan(port: str, empty_init: str, fsw_config: str | None = None,
                user_files: tuple[str, ...] = ()) -> list[str]:
    """mpremote's arguments: make the folders, copy the firmware, fsw/, the user's flight
    software module(s) (to the board's root) and bridge/protocol.py, main.py last, then reset
    the board so it starts the firmware."""
    mkdirs = ("import os\n"
              "for d in ('fsw', 'bridge'):\n"
              "    try:\n"
              "        os.mkdir(d)\n"
              "    except OSError:\n"
              "        pass\n")
    cmd = ["connect", port, "exec", mkdirs]
    copies = [(str(PICO_DIR / name), ":" + name) for name in FIRMWARE]
    copies += [(str(p), ":fsw/" + p.name) for p in sorted((ROOT / "fsw").glob("*.py"))]
    copies += [(f, ":" + Path(f).name) for f in user_files]
    if fsw_config is not None:
        copies.append((fsw_config, ":fsw_config.py"))
    copies += [(empty_init, ":bridge/__init__.py"),
               (str(ROOT / "bridge" / "protocol.py"), ":bridge/protocol.py"),
               (str(PICO_DIR / "main.py"), ":main.py")]
    for src, dst in copies:
        cmd += ["+", "fs", "cp", src, dst]
    return cmd + ["+", "reset"]


def deploy(port: str, entry) -> int:
    """Copy the firmware to the board on ``port`` with mpremote; 0 on success, else 3."""
    with tempfile.TemporaryDirectory(prefix="fsil-deploy-") as tmp:
        empty = os.path.join(tmp, "__init__.py")
        Path(empty).write_text("")   # the host's bridge/__init__.py imports msgpack and zmq
        config = os.path.join(tmp, "fsw_config.py")
        Path(config).write_text(f'FSW = "{entry.board_spec}"  # written by fsil hil deploy --fsw\n')
        user = () if entry.builtin else (str(entry.source_file),)
        cmd = mpremote_command() + deploy_plan(port, empty, config, user)
        print(f"fsil hil deploy: copying the firmware to {port} with mpremote", file=sys.stderr)
        try:
            done = subprocess.run(cmd, stdin=subprocess.DEVNULL)
        except OSError as error:
            raise ConfigError(f"cannot run mpremote ({error}); install it: pip install mpremote") from error
    if done.returncode != 0:
        print(f"fsil: deploy to {port} failed: mpremote exited with code {done.returncode} "
              "(see its message above; docs/hil.md tells how to recover a stuck board)",
              file=sys.stderr)
        return 3
    print(f"fsil hil deploy: done; the board runs the firmware. Next: fsil hil --port {port}",
          file=sys.stderr)
    return 0
