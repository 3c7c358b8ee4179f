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
:class:`plant.lander.LanderPlant` fills them and reads them back. The first call in a
process loads the compiled code from the cache (``plant/__pycache__``, or numba's user
cache where that is read-only): importing numba and loading the code cost about half a
second of CPU per process (``bench/plant_step.py`` measures it beside the saving).
"""

from __future__ import annotations

import math

import numba
import numpy as np

# Parameter vector ``p`` (float64): the frame's command, the vehicle, the IMU's open
# increments (in and out).
P_DT = 0            # physics step, s
P_THR = 1           # throttle target
P_TQ = 2            # torque, body axes, N m: 2, 3, 4
P_IXX, P_IYY, P_IZZ = 5, 6, 7
P_FMAX = 8          # max thrust, N
P_VE = 9            # exhaust velocity, m/s
P_DRY = 10          # dry mass, kg
P_MGM = 11          # -GM, m^3/s^2
P_TAU = 12          # throttle time constant, s (<= 0: no lag)
P_TWO = 13          # 2.0: the exponent of the quaternion norm's squares
P_ACC = 14          # open increments since the last IMU sample: dv_z, dth_x, dth_y, dth_z
N_P = 18

# Integer vector ``ii`` (int64).
I_STEP = 0          # physics steps done before this call (in); after it (out)
I_SPI = 1           # physics steps per IMU sample
I_ROW = 2           # next row of the IMU's error block (in and out)
I_SAT = 3           # 1: the IMU saturates
I_QUANT = 4         # 1: the IMU quantises
N_I = 5

# IMU vector rows ``imu_v`` (float64, 3 x 6): limits, quanta, quantisation carry (in/out).
V_LIMIT, V_QUANTUM, V_CARRY = 0, 1, 2


@numba.njit(cache=True)
def fly(state, n, p, ii, imu_a, imu_err, imu_v, out_s, out_y, out_x, out_j):
    """Up to ``n`` physics steps from ``state`` (15 floats) with the held command of ``p``.

    After step ``j`` the state is ``out_s[j]``. Every ``ii[I_SPI]``-th step (counted over
    the run) the IMU is sampled: sample ``k`` is ``out_y[k]`` (measured increments,
    ``[dvx, dvy, dvz, dax, day, daz]``), ``out_x[k]`` the true ones, ``out_j[k]`` its step.
    Stops early, before a step that would sample the IMU, when its block of errors
    ``imu_err`` is used up (the caller refills it and calls again). Returns (steps done,
    samples taken); ``ii``, ``p``'s open increments and the IMU carry are updated.
    """
    dt_s = p[P_DT]
    thr_target = p[P_THR]
    tqx, tqy, tqz = p[P_TQ], p[P_TQ + 1], p[P_TQ + 2]
    ixx, iyy, izz = p[P_IXX], p[P_IYY], p[P_IZZ]
    c_x, c_y, c_z = izz - iyy, ixx - izz, iyy - ixx
    fmax, ve, dry, mgm, tau = p[P_FMAX], p[P_VE], p[P_DRY], p[P_MGM], p[P_TAU]
    two = p[P_TWO]
    lagged = tau > 0.0
    h6 = dt_s / 6.0
    spi = ii[I_SPI]
    step = ii[I_STEP]
    row = ii[I_ROW]
    rows = imu_err.shape[0]
    saturates = ii[I_SAT] != 0
    quantised = ii[I_QUANT] != 0
    acc_v, acc_x, acc_y, acc_z = p[P_ACC], p[P_ACC + 1], p[P_ACC + 2], p[P_ACC + 3]
    x0, y0, z0 = state[0], state[1], state[2]
    vx0, vy0, vz0 = state[3], state[4], state[5]
    qw0, qx0, qy0, qz0 = state[6], state[7], state[8], state[9]
    wx0, wy0, wz0, m0, thr0 = state[10], state[11], state[12], state[13], state[14]
    done = 0
    samples = 0
    for j in range(n):
        sample = (step + 1) % spi == 0
        if sample and row >= rows:
            break
        if not lagged:
            thr0 = thr_target
        # --- one RK4 step: rk4_step's loop over the stages, unrolled by hand ------------
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
        o = out_s[j]
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
        xt = out_x[samples]
        xt[0], xt[1], xt[2], xt[3], xt[4], xt[5] = 0.0, 0.0, acc_v, acc_x, acc_y, acc_z
        e = imu_err[row]
        row += 1
        ym = out_y[samples]
        for i in range(3):
            ym[i] = imu_a[i, 0] * xt[0] + imu_a[i, 1] * xt[1] + imu_a[i, 2] * xt[2] + e[i]
        for i in range(3, 6):
            ym[i] = imu_a[i, 0] * xt[3] + imu_a[i, 1] * xt[4] + imu_a[i, 2] * xt[5] + e[i]
        if saturates:
            for i in range(6):
                lim = imu_v[V_LIMIT, i]
                if ym[i] > lim:
                    ym[i] = lim
                elif ym[i] < -lim:
                    ym[i] = -lim
        if quantised:
            for i in range(6):
                q = imu_v[V_QUANTUM, i]
                if q > 0.0:
                    v = ym[i] + imu_v[V_CARRY, i]
                    oq = np.rint(v / q) * q            # half to even, as round()
                    imu_v[V_CARRY, i] = v - oq
                    ym[i] = oq
        out_j[samples] = j
        samples += 1
        acc_v = acc_x = acc_y = acc_z = 0.0
    ii[I_STEP] = step
    ii[I_ROW] = row
    p[P_ACC], p[P_ACC + 1], p[P_ACC + 2], p[P_ACC + 3] = acc_v, acc_x, acc_y, acc_z
    return done, samples
