"""Attitude and throttle control.

Attitude: the thrust axis (body +z) is steered onto the demanded thrust direction by a
cascade -- the pointing error (rad) makes a body-rate demand, capped, and a rate loop makes
a torque demand, capped per axis. Roll about the thrust axis is only damped.
Throttle: demanded thrust acceleration times the estimated mass over the maximum thrust;
the engine idles at minimum throttle while the thrust axis is more than ``FAR_OFF_RAD`` from
where it should point (a slew of a few seconds); below that the thrust is kept, since most
of it already acts in the wanted direction.
"""

import math

from fsw import vec

K_ANGLE = 0.8          # rate demand per pointing error, 1/s
K_RATE = 3.0           # angular acceleration demand per rate error, 1/s
MAX_RATE_RADPS = math.radians(15.0)
FAR_OFF_RAD = 1.0      # beyond this pointing error the engine idles at minimum throttle


def attitude_torque(q, w_body, d_inertial, inertia, max_torque):
    """Torque (N m, body) steering body +z onto unit vector ``d_inertial``; and the error (rad)."""
    # vec.rotate(q, (0, 0, 1)), cross, norm, dot, scale and rotate_inv written out, each
    # operation as there and in the same order (once a cycle).
    w, x, y, z = q
    tx = 2.0 * (y * 1.0 - z * 0.0)
    ty = 2.0 * (z * 0.0 - x * 1.0)
    tz = 2.0 * (x * 0.0 - y * 0.0)
    b0 = 0.0 + w * tx + y * tz - z * ty
    b1 = 0.0 + w * ty + z * tx - x * tz
    b2 = 1.0 + w * tz + x * ty - y * tx
    d0, d1, d2 = d_inertial
    a0, a1, a2 = b1 * d2 - b2 * d1, b2 * d0 - b0 * d2, b0 * d1 - b1 * d0
    s = math.sqrt(a0 * a0 + a1 * a1 + a2 * a2)
    angle = math.atan2(s, b0 * d0 + b1 * d1 + b2 * d2)
    if s > 1e-12:
        k = angle / s
        e_i = (a0 * k, a1 * k, a2 * k)
    elif angle > 1.0:  # exactly opposite: any perpendicular axis
        e_i = vec.scale(vec.unit(vec.cross((b0, b1, b2), (1.0, 0.0, 0.0))), angle)
    else:
        e_i = (0.0, 0.0, 0.0)
    e_b = vec.rotate((w, -x, -y, -z), e_i)
    w0, w1 = K_ANGLE * e_b[0], K_ANGLE * e_b[1]
    w_mag = math.sqrt(w0 ** 2 + w1 ** 2)
    if w_mag > MAX_RATE_RADPS:
        w0 *= MAX_RATE_RADPS / w_mag
        w1 *= MAX_RATE_RADPS / w_mag
    torque = []
    for i, w_des in ((0, w0), (1, w1), (2, 0.0)):
        t = inertia[i] * K_RATE * (w_des - w_body[i])
        torque.append(vec.clamp(t, -max_torque[i], max_torque[i]))
    return (torque[0], torque[1], torque[2]), angle


def throttle_for(a_thrust_mps2, mass_kg, max_thrust_n, min_throttle, pointing_error_rad):
    """Throttle (0..1) giving thrust acceleration ``a_thrust_mps2``; 0 means engine off."""
    if a_thrust_mps2 <= 0.0:
        return 0.0
    thr = a_thrust_mps2 * mass_kg / max_thrust_n
    if pointing_error_rad > FAR_OFF_RAD:
        thr = min_throttle
    return vec.clamp(thr, min_throttle, 1.0)
