"""6-DOF rigid-body lander dynamics and a classic 4th-order Runge-Kutta step.

State vector (plain floats, for speed in the inner loop; 15 entries):

    0..2   r_m        position, Moon-centred inertial (MCI)
    3..5   v_mps      velocity, MCI
    6..9   q          attitude quaternion body -> MCI, scalar first (w, x, y, z)
    10..12 w_radps    angular rate, body axes
    13     m_kg       total mass
    14     throttle   actual throttle (0..1 of max thrust), first-order lag behind the demand

The main engine thrusts along body +z through the centre of mass. Attitude torques act
about the body axes. Gravity is a point mass. The integrator holds the demands (throttle
target, torque) constant over the step (zero-order hold).
"""

from __future__ import annotations

import math

from plant.moon import G0_MPS2, GM_M3PS2

N_STATE = 15


class VehicleModel:
    """Constant parameters of the lander used by the derivative."""

    def __init__(self, max_thrust_n: float, isp_s: float, dry_mass_kg: float,
                 inertia_kgm2: tuple[float, float, float], throttle_tau_s: float,
                 gm_m3ps2: float = GM_M3PS2) -> None:
        self.max_thrust_n = max_thrust_n
        self.gm_m3ps2 = gm_m3ps2
        self.exhaust_mps = isp_s * G0_MPS2
        self.dry_mass_kg = dry_mass_kg
        self.ixx, self.iyy, self.izz = (float(v) for v in inertia_kgm2)
        self.throttle_tau_s = throttle_tau_s


def derivative(s: list[float], thr_target: float, torque: tuple[float, float, float],
               veh: VehicleModel) -> tuple[list[float], float]:
    """Time derivative of the state, and the thrust acceleration (m/s^2, along body +z)."""
    x, y, z = s[0], s[1], s[2]
    qw, qx, qy, qz = s[6], s[7], s[8], s[9]
    wx, wy, wz = s[10], s[11], s[12]
    m, thr = s[13], s[14]

    r2 = x * x + y * y + z * z
    gk = -veh.gm_m3ps2 / (r2 * math.sqrt(r2))

    burning = m > veh.dry_mass_kg
    thrust = veh.max_thrust_n * thr if burning and thr > 0.0 else 0.0
    a_thr = thrust / m
    # Body +z in MCI: third column of the rotation matrix of q.
    zx = 2.0 * (qx * qz + qw * qy)
    zy = 2.0 * (qy * qz - qw * qx)
    zz = 1.0 - 2.0 * (qx * qx + qy * qy)

    qdw = 0.5 * (-qx * wx - qy * wy - qz * wz)
    qdx = 0.5 * (qw * wx + qy * wz - qz * wy)
    qdy = 0.5 * (qw * wy + qz * wx - qx * wz)
    qdz = 0.5 * (qw * wz + qx * wy - qy * wx)

    ixx, iyy, izz = veh.ixx, veh.iyy, veh.izz
    wdx = (torque[0] - (izz - iyy) * wy * wz) / ixx
    wdy = (torque[1] - (ixx - izz) * wz * wx) / iyy
    wdz = (torque[2] - (iyy - ixx) * wx * wy) / izz

    mdot = -thrust / veh.exhaust_mps
    tau = veh.throttle_tau_s
    thr_dot = (thr_target - thr) / tau if tau > 0.0 else 0.0

    return [s[3], s[4], s[5],
            gk * x + a_thr * zx, gk * y + a_thr * zy, gk * z + a_thr * zz,
            qdw, qdx, qdy, qdz,
            wdx, wdy, wdz,
            mdot, thr_dot], a_thr


def rk4_step_reference(s: list[float], dt_s: float, thr_target: float,
                       torque: tuple[float, float, float], veh: VehicleModel
                       ) -> tuple[list[float], float, tuple[float, float, float]]:
    """One RK4 step of ``dt_s``, written plainly over :func:`derivative` (the reference
    :func:`rk4_step` must agree with bit for bit; slower).

    Returns the new state, the true delta-velocity along body +z over the step (m/s; the
    only specific force is thrust), and the true delta-angle in body axes (rad), both as
    RK4-weighted averages of the stage values.
    """
    if veh.throttle_tau_s <= 0.0:
        s = s[:]
        s[14] = thr_target
    k1, a1 = derivative(s, thr_target, torque, veh)
    h2 = 0.5 * dt_s
    s2 = [a + h2 * b for a, b in zip(s, k1)]
    k2, a2 = derivative(s2, thr_target, torque, veh)
    s3 = [a + h2 * b for a, b in zip(s, k2)]
    k3, a3 = derivative(s3, thr_target, torque, veh)
    s4 = [a + dt_s * b for a, b in zip(s, k3)]
    k4, a4 = derivative(s4, thr_target, torque, veh)
    h6 = dt_s / 6.0
    out = [a + h6 * (b1 + 2.0 * b2 + 2.0 * b3 + b4) for a, b1, b2, b3, b4 in zip(s, k1, k2, k3, k4)]
    # Renormalise the quaternion (RK4 does not keep its norm).
    n = math.sqrt(out[6] ** 2 + out[7] ** 2 + out[8] ** 2 + out[9] ** 2)
    for i in range(6, 10):
        out[i] /= n
    if out[13] < veh.dry_mass_kg:
        out[13] = veh.dry_mass_kg
    if veh.throttle_tau_s <= 0.0:
        out[14] = thr_target
    dv_z = h6 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
    # Body rates at the four stages are s[10..12], s2, s3, s4 -> RK4 weights.
    dth = tuple(h6 * (s[i] + 2.0 * s2[i] + 2.0 * s3[i] + s4[i]) for i in (10, 11, 12))
    return out, dv_z, dth  # type: ignore[return-value]


_STAGES = ((1.0, 0.5), (2.0, 0.5), (2.0, 1.0), (1.0, 0.0))   # RK4 weight, next stage's step


def rk4_step(s: list[float], dt_s: float, thr_target: float,
             torque: tuple[float, float, float], veh: VehicleModel
             ) -> tuple[list[float], float, tuple[float, float, float]]:
    """One RK4 step of ``dt_s``: the plant's hot path.

    The same arithmetic as :func:`rk4_step_reference`, in the same order (so the results
    are bit for bit the same), on local floats: the derivative is written inline once in a
    loop over the four stages, which accumulates the RK4 weighted sums as it goes
    (``k1 + 2 k2 + 2 k3 + k4`` summed left to right from 0.0, as the reference sums it).

    Returns the new state, the true delta-velocity along body +z over the step (m/s; the
    only specific force is thrust), and the true delta-angle in body axes (rad), both as
    RK4-weighted averages of the stage values.
    """
    x0, y0, z0, vx0, vy0, vz0, qw0, qx0, qy0, qz0, wx0, wy0, wz0, m0, thr0 = s
    tau = veh.throttle_tau_s
    lagged = tau > 0.0
    if not lagged:
        thr0 = thr_target
    tqx, tqy, tqz = torque
    ixx, iyy, izz = veh.ixx, veh.iyy, veh.izz
    c_x, c_y, c_z = izz - iyy, ixx - izz, iyy - ixx
    fmax, ve, dry = veh.max_thrust_n, veh.exhaust_mps, veh.dry_mass_kg
    mgm = -veh.gm_m3ps2

    # Stage state (starts at the step's start) and the weighted sums of the derivatives.
    x, y, z, vx, vy, vz = x0, y0, z0, vx0, vy0, vz0
    qw, qx, qy, qz, wx, wy, wz, m, thr = qw0, qx0, qy0, qz0, wx0, wy0, wz0, m0, thr0
    sx = sy = sz = svx = svy = svz = sqw = sqx = sqy = sqz = 0.0
    swx = swy = swz = sm = sthr = sa = sdx = sdy = sdz = 0.0
    for weight, frac in _STAGES:
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
        if frac == 0.0:
            break
        h = frac * dt_s
        x, y, z = x0 + h * vx, y0 + h * vy, z0 + h * vz
        vx, vy, vz = vx0 + h * kvx, vy0 + h * kvy, vz0 + h * kvz
        qw, qx, qy, qz = qw0 + h * kqw, qx0 + h * kqx, qy0 + h * kqy, qz0 + h * kqz
        wx, wy, wz = wx0 + h * kwx, wy0 + h * kwy, wz0 + h * kwz
        m, thr = m0 + h * km, thr0 + h * kthr

    h6 = dt_s / 6.0
    qw, qx, qy, qz = qw0 + h6 * sqw, qx0 + h6 * sqx, qy0 + h6 * sqy, qz0 + h6 * sqz
    # Renormalise the quaternion (RK4 does not keep its norm); ``** 2`` as the reference
    # has it (CPython's float power is not always the same as x * x in the last bit).
    n = math.sqrt(qw ** 2 + qx ** 2 + qy ** 2 + qz ** 2)
    m = m0 + h6 * sm
    if m < dry:
        m = dry
    out = [x0 + h6 * sx, y0 + h6 * sy, z0 + h6 * sz,
           vx0 + h6 * svx, vy0 + h6 * svy, vz0 + h6 * svz,
           qw / n, qx / n, qy / n, qz / n,
           wx0 + h6 * swx, wy0 + h6 * swy, wz0 + h6 * swz,
           m, thr0 + h6 * sthr if lagged else thr_target]
    return out, h6 * sa, (h6 * sdx, h6 * sdy, h6 * sdz)


def rk4_step_forced(s: list[float], t_s: float, dt_s: float, thr_target: float,
                    torque: tuple[float, float, float], veh: VehicleModel, forces
                    ) -> tuple[list[float], tuple[float, float, float],
                               tuple[float, float, float]]:
    """One RK4 step with an external force and torque: ``forces(state, t_s) -> ((Fx, Fy,
    Fz) MCI N, (Tx, Ty, Tz) body N m)``, evaluated at every stage (landing gear contact).

    Returns the new state, the true delta-velocity of the specific force in body axes over
    the step (thrust and the external force; m/s) and the true delta-angle (rad), as
    RK4-weighted averages of the stage values. Slower than :func:`rk4_step` (the plant
    uses it only once the vehicle has touched the ground).
    """
    if veh.throttle_tau_s <= 0.0:
        s = s[:]
        s[14] = thr_target
    h2 = 0.5 * dt_s
    ks, spec, rates = [], [], []
    stage = s
    for frac, t in ((h2, t_s), (h2, t_s + h2), (dt_s, t_s + h2), (None, t_s + dt_s)):
        k, a_thr = derivative(stage, thr_target, torque, veh)
        (fx, fy, fz), (tx, ty, tz) = forces(stage, t)
        m = stage[13]
        k[3] += fx / m
        k[4] += fy / m
        k[5] += fz / m
        k[10] += tx / veh.ixx
        k[11] += ty / veh.iyy
        k[12] += tz / veh.izz
        rot = quat_to_matrix(stage[6:10])
        spec.append((sum(rot[i][0] * f for i, f in enumerate((fx, fy, fz))) / m,
                     sum(rot[i][1] * f for i, f in enumerate((fx, fy, fz))) / m,
                     sum(rot[i][2] * f for i, f in enumerate((fx, fy, fz))) / m + a_thr))
        rates.append(stage[10:13])
        ks.append(k)
        if frac is not None:
            stage = [a + frac * b for a, b in zip(s, k)]
    h6 = dt_s / 6.0
    k1, k2, k3, k4 = ks
    out = [a + h6 * (b1 + 2.0 * b2 + 2.0 * b3 + b4) for a, b1, b2, b3, b4 in zip(s, k1, k2, k3, k4)]
    n = math.sqrt(out[6] ** 2 + out[7] ** 2 + out[8] ** 2 + out[9] ** 2)
    for i in range(6, 10):
        out[i] /= n
    if out[13] < veh.dry_mass_kg:
        out[13] = veh.dry_mass_kg
    if veh.throttle_tau_s <= 0.0:
        out[14] = thr_target
    dv = tuple(h6 * (spec[0][i] + 2.0 * spec[1][i] + 2.0 * spec[2][i] + spec[3][i])
               for i in range(3))
    dth = tuple(h6 * (rates[0][i] + 2.0 * rates[1][i] + 2.0 * rates[2][i] + rates[3][i])
                for i in range(3))
    return out, dv, dth  # type: ignore[return-value]


def quat_to_matrix(q: tuple[float, float, float, float] | list[float]) -> list[list[float]]:
    """Rotation matrix body -> MCI of a scalar-first unit quaternion."""
    w, x, y, z = q
    return [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]


def matrix_to_quat(m) -> tuple[float, float, float, float]:
    """Scalar-first unit quaternion of a rotation matrix (Shepperd's method)."""
    tr = m[0][0] + m[1][1] + m[2][2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = (0.25 * s, (m[2][1] - m[1][2]) / s, (m[0][2] - m[2][0]) / s, (m[1][0] - m[0][1]) / s)
    elif m[0][0] > m[1][1] and m[0][0] > m[2][2]:
        s = math.sqrt(1.0 + m[0][0] - m[1][1] - m[2][2]) * 2
        q = ((m[2][1] - m[1][2]) / s, 0.25 * s, (m[0][1] + m[1][0]) / s, (m[0][2] + m[2][0]) / s)
    elif m[1][1] > m[2][2]:
        s = math.sqrt(1.0 + m[1][1] - m[0][0] - m[2][2]) * 2
        q = ((m[0][2] - m[2][0]) / s, (m[0][1] + m[1][0]) / s, 0.25 * s, (m[1][2] + m[2][1]) / s)
    else:
        s = math.sqrt(1.0 + m[2][2] - m[0][0] - m[1][1]) * 2
        q = ((m[1][0] - m[0][1]) / s, (m[0][2] + m[2][0]) / s, (m[1][2] + m[2][1]) / s, 0.25 * s)
    n = math.sqrt(sum(c * c for c in q))
    sign = 1.0 if q[0] >= 0 else -1.0
    return tuple(sign * c / n for c in q)  # type: ignore[return-value]
