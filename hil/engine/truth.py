"""The history's truth cells in plain floats: :meth:`plant.lander.LanderPlant.truth`'s
quantities without its numpy arrays, the same numbers bit for bit.

``truth()`` works on 3-element numpy arrays (a dozen array operations, about 50 us a
call); the recorder needs its scalars once per cycle. :func:`truth_cells` computes them
with the same operations in the same order on floats: numpy's elementwise arithmetic
rounds as Python's, and its dot product and norm of three elements sum in index order
(``tests/test_engine.py`` compares the two every frame of runs on a still and a rotating
Moon, with ``repr``). The plant stays the authority: this module reads its state and
calls its Moon, site and terrain, and is checked against it.
"""

from __future__ import annotations

import math
from typing import Any


_AXES: dict[int, tuple] = {}   # id(site) -> (site, up, east, north)
_sqrt, _asin, _atan2, _acos, _degrees = math.sqrt, math.asin, math.atan2, math.acos, math.degrees
_cos, _sin = math.cos, math.sin


def truth_cells(plant: Any) -> tuple[list[float], list[float], float, tuple]:
    """``(r_m, v_mps, alt_m, cells)`` of the plant now: position and velocity (MCI) as
    lists, the true altitude, and the history's 16 truth cells in the schema's order
    (``true_x_m`` .. ``throttle_actual``)."""
    s = plant.state
    x, y, z, vx, vy, vz = s[0], s[1], s[2], s[3], s[4], s[5]
    moon = plant.moon
    if moon.rotating:   # LanderPlant._ground_state: Moon.ground_velocity, .to_fixed written out
        w = moon.rotation_rad_s
        gx, gy, gz = -w * y, w * x, 0.0
        th = w * (plant.t_us * 1e-6)
        co, si = _cos(th), _sin(th)
        fx, fy, fz = co * x + si * y, -si * x + co * y, z
        ax, ay, az = vx - gx, vy - gy, vz - gz
        wx, wy, wz = co * ax + si * ay, -si * ax + co * ay, az
    else:
        fx, fy, fz, wx, wy, wz = x, y, z, vx, vy, vz
    n = _sqrt(x * x + y * y + z * z)
    ux, uy, uz = x / n, y / n, z / n                      # up, MCI
    nf = _sqrt(fx * fx + fy * fy + fz * fz)
    px, py, pz = fx / nf, fy / nf, fz / nf                # up, Moon-fixed
    v_up = wx * px + wy * py + wz * pz
    hx, hy, hz = wx - v_up * px, wy - v_up * py, wz - v_up * pz
    v_horiz = _sqrt(hx * hx + hy * hy + hz * hz)
    down, cross = _ground_coordinates(plant.site, px, py, pz)
    # The body z axis in MCI: quat_to_matrix(s[6:10])'s third column, its expressions.
    qw, qx, qy, qz = s[6], s[7], s[8], s[9]
    c = 2 * (qx * qz + qw * qy) * ux + 2 * (qy * qz - qw * qx) * uy + \
        (1 - 2 * (qx * qx + qy * qy)) * uz
    tilt = _degrees(_acos(max(-1.0, min(1.0, c))))
    # Terrain.altitude_m((fx, fy, fz)): its norm and direction are nf and p
    terrain = plant.terrain
    alt_m = nf - terrain.radius_m - terrain._height_dir(px, py, pz)
    mass = s[13]
    cells = (x, y, z, vx, vy, vz, alt_m, v_up, v_horiz, down, cross, tilt,
             _degrees(_sqrt(s[10] ** 2 + s[11] ** 2 + s[12] ** 2)),
             mass, mass - plant.veh.dry_mass_kg, s[14])
    return [x, y, z], [vx, vy, vz], alt_m, cells


def _ground_coordinates(site: Any, ux: float, uy: float, uz: float) -> tuple[float, float]:
    """:meth:`plant.moon.SiteFrame.ground_coordinates` of a Moon-fixed position, given as
    its direction ``u`` (the position over its norm, as that method computes it)."""
    cached = _AXES.get(id(site))
    if cached is None or cached[0] is not site:     # the site's axes as floats, once
        cached = _AXES[id(site)] = (site, tuple(site.up.tolist()), tuple(site.east.tolist()),
                                    tuple(site.north.tolist()))
        if len(_AXES) > 64:
            _AXES.clear()
    _, (ax, ay, az), (ex, ey, ez), (nx, ny, nz) = cached
    c = _asin(max(-1.0, min(1.0, ux * nx + uy * ny + uz * nz)))
    a = _atan2(ux * ex + uy * ey + uz * ez, ux * ax + uy * ay + uz * az)
    r = site.radius_m
    return a * r, c * r
