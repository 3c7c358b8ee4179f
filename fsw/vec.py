"""Small 3-vector and quaternion helpers on tuples of floats (MicroPython-safe).

Quaternions are scalar first (w, x, y, z) and rotate body vectors into the inertial frame.
"""

import math


def add(a, b):
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def sub(a, b):
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def scale(a, k):
    return (a[0] * k, a[1] * k, a[2] * k)


def dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def norm(a):
    return math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])


def unit(a):
    n = norm(a)
    if n <= 0.0:
        return (0.0, 0.0, 0.0)
    return (a[0] / n, a[1] / n, a[2] / n)


def clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


def qmul(p, q):
    """Hamilton product p * q."""
    pw, px, py, pz = p
    qw, qx, qy, qz = q
    return (pw * qw - px * qx - py * qy - pz * qz,
            pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx,
            pw * qz + px * qy - py * qx + pz * qw)


def dot4(p, q):
    return p[0] * q[0] + p[1] * q[1] + p[2] * q[2] + p[3] * q[3]


def qnormalize(q):
    n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    return (q[0] / n, q[1] / n, q[2] / n, q[3] / n)


def qrotvec(theta):
    """Quaternion of a rotation vector (rad): axis * angle."""
    a = norm(theta)
    if a < 1e-9:
        return qnormalize((1.0, 0.5 * theta[0], 0.5 * theta[1], 0.5 * theta[2]))
    s = math.sin(0.5 * a) / a
    return (math.cos(0.5 * a), theta[0] * s, theta[1] * s, theta[2] * s)


def rotate(q, v):
    """Rotate body vector v into the inertial frame with q."""
    w, x, y, z = q
    vx, vy, vz = v
    # t = 2 * cross(q.xyz, v); v' = v + w t + cross(q.xyz, t)
    tx = 2.0 * (y * vz - z * vy)
    ty = 2.0 * (z * vx - x * vz)
    tz = 2.0 * (x * vy - y * vx)
    return (vx + w * tx + y * tz - z * ty,
            vy + w * ty + z * tx - x * tz,
            vz + w * tz + x * ty - y * tx)


def rotate_inv(q, v):
    """Rotate inertial vector v into body axes with q."""
    return rotate((q[0], -q[1], -q[2], -q[3]), v)
