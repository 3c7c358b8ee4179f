"""Which build of the plant's kernel a plant flies on: ``FSIL_PLANT_KERNEL`` = ``c`` (the C
build, :mod:`plant.ckernel`; an error if it cannot be built), ``numba`` (:mod:`plant.kernel`)
or ``auto`` (the default: C where a C compiler or a cached build is found, else numba).
Both give the same results bit for bit; the C build keeps numba and LLVM out of the process
(about 100 MB of peak memory less)."""

from __future__ import annotations

import os
from types import ModuleType

CHOICES = ("auto", "c", "numba")


def load() -> ModuleType:
    """The kernel module (``fly`` and the layout constants of :mod:`plant.kernel_layout`)."""
    choice = os.environ.get("FSIL_PLANT_KERNEL", "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise ValueError(f"FSIL_PLANT_KERNEL={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice != "numba":
        from plant import ckernel
        why = ckernel.available()
        if why is None:
            return ckernel
        if choice == "c":
            raise ckernel.KernelBuildError(f"FSIL_PLANT_KERNEL=c: {why}")
    from plant import kernel    # imports numba
    return kernel
