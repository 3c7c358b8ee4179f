"""Build the C library once per test session (bridge/c) and find its programs.

Used by tests/test_c_*.py. A developer machine without a C compiler or make skips those
tests with the reason; CI installs everything (.ci/run), and there ``FSIL_REQUIRE_C=1``
turns a missing tool into a failure instead of a skip.
"""

from __future__ import annotations

import functools
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
C_DIR = ROOT / "bridge" / "c"
BUILD = C_DIR / "build"
REQUIRED = os.environ.get("FSIL_REQUIRE_C") == "1"


def missing(reason: str) -> None:
    """Skip (developer machine) or fail (CI) for a missing tool."""
    if REQUIRED:
        pytest.fail(f"{reason} (FSIL_REQUIRE_C=1: CI must have it)")
    pytest.skip(reason)


@functools.lru_cache(maxsize=None)
def _make(target: str) -> tuple[int, str]:
    """One make at a time across the suite's xdist workers (an exclusive lock on a file in
    the build folder): two workers building the same objects at once would race."""
    import fcntl
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / ".make.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(["make", "-C", str(C_DIR), target], capture_output=True,
                              text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def build(target: str = "all") -> str:
    """Run ``make -C bridge/c TARGET`` once per session; return its output or fail."""
    for tool in ("make", "cc"):
        if shutil.which(tool) is None:
            missing(f"{tool} not found: the C library cannot be built here")
    code, output = _make(target)
    assert code == 0, f"make -C bridge/c {target} failed:\n{output[-4000:]}"
    return output


def have_zmq() -> bool:
    """True if libzmq's development files are installed (pkg-config finds libzmq)."""
    return subprocess.run(["pkg-config", "--exists", "libzmq"]).returncode == 0 \
        if shutil.which("pkg-config") else False
