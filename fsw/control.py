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
    b_z = vec.rotate(q, (0.0, 0.0, 1.0))
    axis = vec.cross(b_z, d_inertial)
    s = vec.norm(axis)
    angle = math.atan2(s, vec.dot(b_z, d_inertial))
    if s > 1e-12:
        e_i = vec.scale(axis, angle / s)
    elif angle > 1.0:  # exactly opposite: any perpendicular axis
        e_i = vec.scale(vec.unit(vec.cross(b_z, (1.0, 0.0, 0.0))), angle)
    else:
        e_i = (0.0, 0.0, 0.0)
    e_b = vec.rotate_inv(q, e_i)
    w_des = [K_ANGLE * e_b[0], K_ANGLE * e_b[1], 0.0]
    w_mag = math.sqrt(w_des[0] ** 2 + w_des[1] ** 2)
    if w_mag > MAX_RATE_RADPS:
        w_des[0] *= MAX_RATE_RADPS / w_mag
        w_des[1] *= MAX_RATE_RADPS / w_mag
    torque = []
    for i in range(3):
        t = inertia[i] * K_RATE * (w_des[i] - w_body[i])
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
