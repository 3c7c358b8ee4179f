"""The plant's kernel built from C (``plant/kernel.c``) with the machine's C compiler and
called through ctypes: the same ``fly`` as :mod:`plant.kernel` (numba), bit for bit
(``tests/test_kernel.py`` flies both against the pure-Python path), without numba and LLVM
in the process. Importing numba and loading its cached machine code make up about 100 MB
of a plant process's 150 MB peak (LLVM's library, numba's compiler initialising its
runtime, its typing registries); this build costs a shared library of a few kB.

The library is compiled on first use (about 0.3 s) with ``$CC`` or ``cc``, ``gcc``,
``clang`` from ``PATH``, flags :data:`CFLAGS` (no fused multiply-add, no fast-math: the
results must be bit for bit those of CPython's float arithmetic), and cached as
``fsil-kernel-<hash>.so`` (the hash covers the source, the flags and the machine) in
``$FSIL_KERNEL_CACHE_DIR`` when set, else ``plant/__pycache__`` beside this file when
writable, else ``~/.cache/fsil``. Later processes load it without compiling. Where no
compiler is found and nothing is cached, :func:`available` says why and the plant falls
back to numba (:mod:`plant.kernels`).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from plant.kernel_layout import *  # noqa: F401,F403  (the arrays' layout, as plant.kernel)
from plant.kernel_layout import N_IO, N_OUT, N_P

SOURCE = Path(__file__).with_name("kernel.c")
CFLAGS = ("-O2", "-std=c99", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math",
          "-fno-associative-math", "-fno-reciprocal-math")

_lib = None
_why_not: str | None = None


class KernelBuildError(RuntimeError):
    """The C kernel could not be compiled or loaded (the reason in one line)."""


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(cc.split()[0]) and cc
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return name
    return None


def _cache_dirs() -> list[Path]:
    env = os.environ.get("FSIL_KERNEL_CACHE_DIR")
    if env:
        return [Path(env)]
    return [Path(__file__).with_name("__pycache__"),
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fsil"]


def _library_name() -> str:
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(CFLAGS).encode()
                         + f"{platform.machine()} {sys.platform}".encode()).hexdigest()[:16]
    return f"fsil-kernel-{key}.so"


def _build(cc: str, target: Path) -> None:
    """Compile into ``target`` (through a temporary file in its directory, then a rename,
    so that concurrent processes never load a half-written library)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".fsil-kernel-", suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run([*cc.split(), *CFLAGS, "-o", tmp, str(SOURCE), "-lm"],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            raise KernelBuildError(f"{cc} failed on {SOURCE.name}: {last}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load() -> ctypes.CDLL:
    name = _library_name()
    dirs = _cache_dirs()
    for d in dirs:
        if (d / name).is_file():
            return ctypes.CDLL(str(d / name))
    cc = _compiler()
    if cc is None:
        raise KernelBuildError("no C compiler (CC, cc, gcc or clang) and no cached build")
    errors = []
    for d in dirs:
        try:
            _build(cc, d / name)
        except OSError as e:                 # not writable: the next directory
            errors.append(f"{d}: {e.strerror or e}")
            continue
        return ctypes.CDLL(str(d / name))
    raise KernelBuildError("no writable cache directory: " + "; ".join(errors))


def available() -> str | None:
    """None when the C kernel is ready (compiled or loaded now if need be); else why not."""
    global _lib, _why_not
    if _lib is None and _why_not is None:
        try:
            fn = _load().fsil_plant_fly
            fn.restype = ctypes.c_longlong
            # No argtypes: the arguments are passed as ctypes objects (the pointers) and
            # small ints (C int), the cheapest call ctypes makes (about 1 us; with argtypes
            # converting Python ints, twice that).
            _lib = fn
        except (KernelBuildError, OSError, subprocess.SubprocessError) as e:
            _why_not = str(e)
    return _why_not


# The last call's arrays and their addresses as ctypes objects: a plant passes the same
# arrays frame after frame (its io, p and out, the IMU's matrices, the IMU's block of
# errors until it is refilled), and asking numpy for an address costs about 2 us each.
# The cached tuple keeps the arrays alive, and numpy refuses to resize an array that is
# referenced, so an array seen before still has the buffer (and the size) checked then;
# a shape set in place keeps the size, which is all the C code relies on.
_last: tuple = ()


def _checked(io, p, imu_a, imu_err, out) -> tuple:
    for a, writable in ((io, True), (p, False), (imu_a, False), (imu_err, False), (out, True)):
        if a.dtype.char != "d" or not a.flags.c_contiguous or (
                writable and not a.flags.writeable):
            raise ValueError("plant kernel: arrays must be C-contiguous float64 (io and out "
                             "writable)")
    if (io.shape != (N_IO,) or p.shape != (N_P,) or imu_a.shape != (6, 3)
            or len(imu_err.shape) != 2 or imu_err.shape[1] != 6 or imu_err.shape[0] >= 2 ** 31
            or len(out.shape) != 2 or out.shape[1] != N_OUT or out.shape[0] >= 2 ** 31):
        raise ValueError("plant kernel: array shapes do not match plant/kernel_layout.py")
    ptrs = [ctypes.c_void_p(a.__array_interface__["data"][0])
            for a in (io, p, imu_a, imu_err, out)]
    return (io, p, imu_a, imu_err, out, *ptrs, imu_err.shape[0], out.shape[0])


def fly(io, n, p, imu_a, imu_err, out):
    """As :func:`plant.kernel.fly`: up to ``n`` physics steps; (steps done, samples)."""
    global _last
    last = _last
    if not (last and io is last[0] and p is last[1] and imu_a is last[2]
            and imu_err is last[3] and out is last[4]):
        if _lib is None:
            why = available()
            if why is not None:
                raise KernelBuildError(why)
        _last = last = _checked(io, p, imu_a, imu_err, out)
    if not 0 <= n <= last[11]:
        raise ValueError(f"plant kernel: {n} steps for {last[11]} rows of out")
    both = _lib(last[5], n, last[6], last[7], last[8], last[10], last[9])
    return both & 0xFFFFFFFF, both >> 32
