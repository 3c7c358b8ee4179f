"""The virtual board's Python side: find Node.js and the MicroPython package, start the board.

The board itself is ``board.mjs`` in this folder: the hil/pico firmware running inside the
official MicroPython WebAssembly build (npm package ``@micropython/micropython-webassembly-
pyscript``, pinned by ``package-lock.json``), installed with ``npm ci --prefix hil/virtual``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
BOARD_JS = HERE / "board.mjs"
PACKAGE = "@micropython/micropython-webassembly-pyscript"
PACKAGE_DIR = HERE / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
INSTALL_HINT = "npm ci --prefix hil/virtual"
MIN_NODE_MAJOR = 18


def node_path() -> str | None:
    """The ``node`` executable (``FSIL_NODE`` overrides the search), or None."""
    return os.environ.get("FSIL_NODE") or shutil.which("node")


def problem() -> str | None:
    """Why the virtual board cannot start here (one line), or None when it can."""
    node = node_path()
    if node is None:
        return (f"the virtual board needs Node.js >= {MIN_NODE_MAJOR} ('node' is not on PATH); "
                f"install it, then run: {INSTALL_HINT}")
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20)
        version = out.stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        return f"cannot run {node}: {error}"
    m = re.match(r"v(\d+)\.", version)
    if not m or int(m.group(1)) < MIN_NODE_MAJOR:
        return f"the virtual board needs Node.js >= {MIN_NODE_MAJOR}, {node} is {version or 'unknown'}"
    if not (PACKAGE_DIR / "package.json").is_file():
        return f"the virtual board's MicroPython ({PACKAGE}) is not installed; run: {INSTALL_HINT}"
    return None


def board_command(*args: str) -> list[str]:
    """The command line that starts the virtual board with ``args`` (see board.mjs --help)."""
    return [node_path() or "node", str(BOARD_JS), *args]


def run_script(code: str, timeout_s: float = 120.0, heap_kb: int = 8192,
               cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run Python ``code`` under the virtual board's MicroPython, with the firmware importable
    (``import wire``, ``import board``, ``from fsw import core``); stdout and stderr as text."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
        path = f.name
    try:
        return subprocess.run(board_command("--run", path, "--heap-kb", str(heap_kb)),
                              capture_output=True, text=True, timeout=timeout_s, cwd=cwd)
    finally:
        os.unlink(path)
