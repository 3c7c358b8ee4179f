"""The plant's compiled kernel: the rigid body and the IMU error model over the physics
steps of one frame, in one call (numba, compiled on first use and cached on disk).

The arithmetic is that of :func:`plant.dynamics.rk4_step` (bit for bit the same as
:func:`plant.dynamics.rk4_step_reference`) and of :meth:`plant.imu.Imu.sample`, operation
for operation in the same order, so the results are bit for bit the same as the pure-Python
path's (``tests/test_kernel.py``): no fast-math, no fused multiply-add, and the
quaternion's ``x ** 2`` through the C library's ``pow`` like CPython's float power (the
exponent comes in as data, ``P_TWO``, so that the compiler cannot turn it into ``x * x``,
which differs in the last bit about once in a thousand).

Everything crosses the boundary as numpy arrays, laid out by the index constants below;
:class:`plant.lander.LanderPlant` fills them and reads them back.

Compilation and its cache (numba's ``cache=True``): the first call in a process loads the
machine code from the cache, or compiles it (about 3.5 s of CPU) and writes it there. The
cache is, in numba's order: ``$NUMBA_CACHE_DIR`` when set; else ``plant/__pycache__`` beside
this file when writable (ignored by git like the ``.pyc`` files); else numba's user-wide
cache (``~/.cache/numba``). An entry is keyed by this file's content, the argument types
and the CPU, so an edit or another machine compiles afresh. Where no cache directory is
writable the kernel compiles in every process (a warning says so) instead of failing.
Importing numba and loading the code cost about 0.6 s of CPU per process
(``bench/plant_step.py`` measures both beside the saving).
"""

from __future__ import annotations

import math
import os
import sys
import warnings


class _NoScipyForNumba:
    """Refuses scipy to numba's own imports (a meta-path finder; others import it as usual).

    numba imports scipy when it is installed (a version check, and scipy.linalg's BLAS and
    LAPACK for ``np.linalg`` in compiled code, which this kernel does not use): about 16 MB
    of the plant process's peak memory for nothing (issue 9: 150 MB per process). Without
    it numba works as where scipy is not installed. ``FSIL_NUMBA_SCIPY=1`` lets it through.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "scipy" and not name.startswith("scipy."):
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith(
                ("importlib", "_frozen_importlib")):
            frame = frame.f_back          # up through the import machinery to the importer
        importer = frame.f_globals.get("__name__", "") if frame is not None else ""
        if importer == "numba" or importer.startswith("numba."):
            raise ModuleNotFoundError(f"{name} is not loaded for numba in fsil's plant "
                                      "(plant/kernel.py)", name=name)
        return None


if os.environ.get("FSIL_NUMBA_SCIPY") != "1" and \
        not any(isinstance(f, _NoScipyForNumba) for f in sys.meta_path):
    sys.meta_path.insert(0, _NoScipyForNumba())

import numba  # noqa: E402  (after the finder)
import numpy as np  # noqa: E402


def _compiled(fn):
    """``numba.njit`` with the on-disk cache, or without it where numba finds no writable
    cache directory (it would refuse the module)."""
    try:
        return numba.njit(cache=True)(fn)
    except RuntimeError as e:       # numba: "cannot cache function ...: no locator available"
        warnings.warn(f"plant kernel compiled in every process: {e}; set NUMBA_CACHE_DIR "
                      "to a writable directory", RuntimeWarning, stacklevel=2)
        return numba.njit(fn)

from plant.kernel_layout import *  # noqa: E402,F401,F403  (the arrays' layout)
from plant.kernel_layout import (IO_ACC, IO_CARRY, IO_ROW, IO_STEP, IO_THR, IO_TQ,  # noqa: E402
                                 O_IMU, O_STEP, O_TRUE, P_DRY, P_DT, P_DT_US, P_FMAX, P_IXX,
                                 P_IYY, P_IZZ, P_LIMIT, P_MGM, P_QUANT, P_QUANTUM, P_SAT,
                                 P_SPI, P_TAU, P_TWO, P_VE)


@_compiled
def fly(io, n, p, imu_a, imu_err, out):
    """Up to ``n`` physics steps from the state in ``io`` with its held command.

    After step ``j`` the state is ``out[j, O_STATE:]``. Every ``p[P_SPI]``-th step (counted
    over the run) the IMU is sampled: sample ``k`` is ``out[k, O_IMU:O_TRUE]`` (time and
    measured increments), ``out[k, O_TRUE:O_STEP]`` the true ones, ``out[k, O_STEP]`` its
    step. Stops early, before a step that would sample the IMU, when its block of errors
    ``imu_err`` is used up (the caller refills it and calls again). Returns (steps done,
    samples taken); ``io``'s step, row, open increments and carry are updated.
    """
    dt_s = p[P_DT]
    dt_us = p[P_DT_US]
    thr_target = io[IO_THR]
    tqx, tqy, tqz = io[IO_TQ], io[IO_TQ + 1], io[IO_TQ + 2]
    ixx, iyy, izz = p[P_IXX], p[P_IYY], p[P_IZZ]
    c_x, c_y, c_z = izz - iyy, ixx - izz, iyy - ixx
    fmax, ve, dry, mgm, tau = p[P_FMAX], p[P_VE], p[P_DRY], p[P_MGM], p[P_TAU]
    two = p[P_TWO]
    lagged = tau > 0.0
    h6 = dt_s / 6.0
    spi = int(p[P_SPI])
    step = int(io[IO_STEP])
    row = int(io[IO_ROW])
    rows = imu_err.shape[0]
    saturates = p[P_SAT] != 0.0
    quantised = p[P_QUANT] != 0.0
    acc_v, acc_x, acc_y, acc_z = io[IO_ACC], io[IO_ACC + 1], io[IO_ACC + 2], io[IO_ACC + 3]
    x0, y0, z0 = io[0], io[1], io[2]
    vx0, vy0, vz0 = io[3], io[4], io[5]
    qw0, qx0, qy0, qz0 = io[6], io[7], io[8], io[9]
    wx0, wy0, wz0, m0, thr0 = io[10], io[11], io[12], io[13], io[14]
    done = 0
    samples = 0
    for j in range(n):
        sample = (step + 1) % spi == 0
        if sample and row >= rows:
            break
        if not lagged:
            thr0 = thr_target
        # --- one RK4 step: rk4_step's loop over the stages -------------------------------
        x, y, z, vx, vy, vz = x0, y0, z0, vx0, vy0, vz0
        qw, qx, qy, qz, wx, wy, wz, m, thr = qw0, qx0, qy0, qz0, wx0, wy0, wz0, m0, thr0
        sx = sy = sz = svx = svy = svz = sqw = sqx = sqy = sqz = 0.0
        swx = swy = swz = sm = sthr = sa = sdx = sdy = sdz = 0.0
        for stage in range(4):
            weight = 1.0 if stage == 0 or stage == 3 else 2.0
            r2 = x * x + y * y + z * z
            gk = mgm / (r2 * math.sqrt(r2))
            thrust = fmax * thr if m > dry and thr > 0.0 else 0.0
            a_thr = thrust / m
            zx = 2.0 * (qx * qz + qw * qy)
            zy = 2.0 * (qy * qz - qw * qx)
            zz = 1.0 - 2.0 * (qx * qx + qy * qy)
            kvx = gk * x + a_thr * zx
            kvy = gk * y + a_thr * zy
            kvz = gk * z + a_thr * zz
            kqw = 0.5 * (-qx * wx - qy * wy - qz * wz)
            kqx = 0.5 * (qw * wx + qy * wz - qz * wy)
            kqy = 0.5 * (qw * wy + qz * wx - qx * wz)
            kqz = 0.5 * (qw * wz + qx * wy - qy * wx)
            kwx = (tqx - c_x * wy * wz) / ixx
            kwy = (tqy - c_y * wz * wx) / iyy
            kwz = (tqz - c_z * wx * wy) / izz
            km = -thrust / ve
            kthr = (thr_target - thr) / tau if lagged else 0.0
            sx += weight * vx
            sy += weight * vy
            sz += weight * vz
            svx += weight * kvx
            svy += weight * kvy
            svz += weight * kvz
            sqw += weight * kqw
            sqx += weight * kqx
            sqy += weight * kqy
            sqz += weight * kqz
            swx += weight * kwx
            swy += weight * kwy
            swz += weight * kwz
            sm += weight * km
            sthr += weight * kthr
            sa += weight * a_thr
            sdx += weight * wx
            sdy += weight * wy
            sdz += weight * wz
            if stage == 3:
                break
            h = (1.0 if stage == 2 else 0.5) * dt_s
            x, y, z = x0 + h * vx, y0 + h * vy, z0 + h * vz
            vx, vy, vz = vx0 + h * kvx, vy0 + h * kvy, vz0 + h * kvz
            qw, qx, qy, qz = qw0 + h * kqw, qx0 + h * kqx, qy0 + h * kqy, qz0 + h * kqz
            wx, wy, wz = wx0 + h * kwx, wy0 + h * kwy, wz0 + h * kwz
            m, thr = m0 + h * km, thr0 + h * kthr
        qw, qx, qy, qz = qw0 + h6 * sqw, qx0 + h6 * sqx, qy0 + h6 * sqy, qz0 + h6 * sqz
        nq = math.sqrt(qw ** two + qx ** two + qy ** two + qz ** two)
        m = m0 + h6 * sm
        if m < dry:
            m = dry
        x0, y0, z0 = x0 + h6 * sx, y0 + h6 * sy, z0 + h6 * sz
        vx0, vy0, vz0 = vx0 + h6 * svx, vy0 + h6 * svy, vz0 + h6 * svz
        qw0, qx0, qy0, qz0 = qw / nq, qx / nq, qy / nq, qz / nq
        wx0, wy0, wz0 = wx0 + h6 * swx, wy0 + h6 * swy, wz0 + h6 * swz
        m0 = m
        thr0 = thr0 + h6 * sthr if lagged else thr_target
        o = out[j]
        o[0], o[1], o[2], o[3], o[4], o[5] = x0, y0, z0, vx0, vy0, vz0
        o[6], o[7], o[8], o[9] = qw0, qx0, qy0, qz0
        o[10], o[11], o[12], o[13], o[14] = wx0, wy0, wz0, m0, thr0
        # --- the open increments, as LanderPlant._fly adds them --------------------------
        acc_v += h6 * sa
        acc_x += h6 * sdx
        acc_y += h6 * sdy
        acc_z += h6 * sdz
        step += 1
        done += 1
        if not sample:
            continue
        # --- one IMU sample: Imu.sample on the true increments (0, 0, dv_z) and dth ------
        r = out[samples]
        xt = r[O_TRUE:O_STEP]
        xt[0], xt[1], xt[2], xt[3], xt[4], xt[5] = 0.0, 0.0, acc_v, acc_x, acc_y, acc_z
        e = imu_err[row]
        row += 1
        r[O_IMU] = step * dt_us
        ym = r[O_IMU + 1:O_TRUE]
        for i in range(3):
            ym[i] = imu_a[i, 0] * xt[0] + imu_a[i, 1] * xt[1] + imu_a[i, 2] * xt[2] + e[i]
        for i in range(3, 6):
            ym[i] = imu_a[i, 0] * xt[3] + imu_a[i, 1] * xt[4] + imu_a[i, 2] * xt[5] + e[i]
        if saturates:
            for i in range(6):
                lim = p[P_LIMIT + i]
                if ym[i] > lim:
                    ym[i] = lim
                elif ym[i] < -lim:
                    ym[i] = -lim
        if quantised:
            for i in range(6):
                q = p[P_QUANTUM + i]
                if q > 0.0:
                    v = ym[i] + io[IO_CARRY + i]
                    # Half to even, as round(); "+ 0.0" because round() gives the int 0
                    # where rint gives -0.0, and 0 * q is +0.0 (the sign of zero is a bit).
                    oq = (np.rint(v / q) + 0.0) * q
                    io[IO_CARRY + i] = v - oq
                    ym[i] = oq
        r[O_STEP] = j
        samples += 1
        acc_v = acc_x = acc_y = acc_z = 0.0
    io[IO_STEP] = step
    io[IO_ROW] = row
    io[IO_ACC], io[IO_ACC + 1], io[IO_ACC + 2], io[IO_ACC + 3] = acc_v, acc_x, acc_y, acc_z
    return done, samples
