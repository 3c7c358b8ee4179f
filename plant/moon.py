"""The Moon, its rotation, and the target's local frame.

The Moon is a sphere of radius ``radius_m`` with point-mass gravity ``gm_m3ps2`` that
rotates at ``rotation_rad_s`` about its north pole (the sidereal rate 2.6617e-6 rad/s by
default: a point on the equator moves at 4.62 m/s). Two frames, both Moon-centred:

* **MCI** (Moon-centred inertial): the frame the rigid body is integrated in. At t = 0 it
  coincides with the Moon-fixed frame.
* **Moon-fixed**: x through latitude 0, longitude 0; z through the north pole. It turns
  about z by ``theta = rotation_rad_s * t`` in MCI: ``r_fixed = Rz(-theta) r_mci``.
  Terrain, the landing site and the ground coordinates live here.

The target's local frame: ``up`` (radial at the target), ``east`` and ``north``, in the
Moon-fixed frame. The approach flies east, so *downrange* is along ``east`` and
*crossrange* along ``north``.
"""

from __future__ import annotations

import math

import numpy as np

GM_M3PS2 = 4.902800118e12      # JPL DE440
MEAN_RADIUS_M = 1737.4e3
SIDEREAL_RATE_RADPS = 2.6617e-6  # 2 pi / 27.3217 d
G0_MPS2 = 9.80665              # standard gravity, for Isp


def gravity_mps2(r_m: np.ndarray, gm_m3ps2: float = GM_M3PS2) -> np.ndarray:
    """Point-mass gravitational acceleration at MCI position ``r_m``."""
    r = float(np.linalg.norm(r_m))
    return -gm_m3ps2 / (r * r * r) * r_m


class Moon:
    """Gravity, radius and rotation; conversions between MCI and the Moon-fixed frame.

    All conversions take and return plain floats (the plant calls them every physics step
    near the ground). ``t_s`` is sim time: the frames coincide at t = 0.
    """

    __slots__ = ("gm_m3ps2", "radius_m", "rotation_rad_s", "rotating")

    def __init__(self, gm_m3ps2: float = GM_M3PS2, radius_m: float = MEAN_RADIUS_M,
                 rotation_rad_s: float = SIDEREAL_RATE_RADPS) -> None:
        self.gm_m3ps2 = float(gm_m3ps2)
        self.radius_m = float(radius_m)
        self.rotation_rad_s = float(rotation_rad_s)
        self.rotating = self.rotation_rad_s != 0.0

    def to_fixed(self, x: float, y: float, z: float, t_s: float) -> tuple[float, float, float]:
        """An MCI vector (position or direction) in the Moon-fixed frame at time ``t_s``."""
        if not self.rotating:
            return x, y, z
        th = self.rotation_rad_s * t_s
        c, s = math.cos(th), math.sin(th)
        return c * x + s * y, -s * x + c * y, z

    def to_inertial(self, x: float, y: float, z: float, t_s: float
                    ) -> tuple[float, float, float]:
        """A Moon-fixed vector in MCI at time ``t_s``."""
        if not self.rotating:
            return x, y, z
        th = self.rotation_rad_s * t_s
        c, s = math.cos(th), math.sin(th)
        return c * x - s * y, s * x + c * y, z

    def ground_velocity(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """Velocity of the Moon-fixed point at ``(x, y, z)``: ``omega x r`` (either frame's
        components, as ``r`` is given in)."""
        w = self.rotation_rad_s
        return -w * y, w * x, 0.0

    def fixed_matrix(self, t_s: float) -> list[list[float]]:
        """Rotation matrix MCI -> Moon-fixed at ``t_s`` (``Rz(-theta)``)."""
        th = self.rotation_rad_s * t_s
        c, s = math.cos(th), math.sin(th)
        return [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]]

    def hello(self) -> dict:
        """The handshake's ``"moon"`` map."""
        return {"gm_m3ps2": self.gm_m3ps2, "radius_m": self.radius_m,
                "rotation_rad_s": self.rotation_rad_s}


def site_frame(lat_deg: float, lon_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors (up, east, north) in the Moon-fixed frame at a latitude and longitude."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    up = np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])
    east = np.array([-math.sin(lon), math.cos(lon), 0.0])
    north = np.cross(up, east)
    return up, east, north


class SiteFrame:
    """The target's local frame and conversions between it and the Moon-fixed frame.

    Ground positions are arc lengths on the sphere of ``radius_m`` (the Moon's reference
    radius), from the target.
    """

    def __init__(self, lat_deg: float, lon_deg: float, radius_m: float = MEAN_RADIUS_M) -> None:
        self.up, self.east, self.north = site_frame(lat_deg, lon_deg)
        self.radius_m = float(radius_m)

    def surface_direction(self, downrange_m: float, crossrange_m: float) -> np.ndarray:
        """Unit vector from the Moon's centre to a point given by arc lengths from the target."""
        a, c = downrange_m / self.radius_m, crossrange_m / self.radius_m
        u = math.cos(a) * math.cos(c) * self.up + math.sin(a) * math.cos(c) * self.east \
            + math.sin(c) * self.north
        return u / np.linalg.norm(u)

    def ground_coordinates(self, r_m: np.ndarray) -> tuple[float, float]:
        """(downrange_m, crossrange_m) arc lengths of the point under Moon-fixed ``r_m``."""
        u = np.asarray(r_m, dtype=float)
        u = u / np.linalg.norm(u)
        c = math.asin(max(-1.0, min(1.0, float(u @ self.north))))
        a = math.atan2(float(u @ self.east), float(u @ self.up))
        return a * self.radius_m, c * self.radius_m

    def great_circle_m(self, u1: np.ndarray, u2: np.ndarray) -> float:
        """Surface arc length between two unit vectors, at the reference radius."""
        return self.radius_m * math.atan2(float(np.linalg.norm(np.cross(u1, u2))),
                                          float(u1 @ u2))
