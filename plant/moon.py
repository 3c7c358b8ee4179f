"""The Moon and the target's local frame.

The Moon is a sphere that does not rotate (its sidereal rate, 2.66e-6 rad/s, moves a
point on the equator by 4.6 m/s -- far less than the guidance corrects for -- and is left
out). The frame is Moon-centred inertial (MCI): x through latitude 0, longitude 0; z
through the north pole.

The target's local frame: ``up`` (radial at the target), ``east`` and ``north``. The
approach flies east, so *downrange* is along ``east`` and *crossrange* along ``north``.
"""

from __future__ import annotations

import math

import numpy as np

GM_M3PS2 = 4.902800118e12      # JPL DE440
MEAN_RADIUS_M = 1737.4e3
G0_MPS2 = 9.80665              # standard gravity, for Isp


def gravity_mps2(r_m: np.ndarray) -> np.ndarray:
    """Point-mass gravitational acceleration at MCI position ``r_m``."""
    r = float(np.linalg.norm(r_m))
    return -GM_M3PS2 / (r * r * r) * r_m


def site_frame(lat_deg: float, lon_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors (up, east, north) in MCI at a latitude and longitude."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    up = np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])
    east = np.array([-math.sin(lon), math.cos(lon), 0.0])
    north = np.cross(up, east)
    return up, east, north


class SiteFrame:
    """The target's local frame and conversions between it and MCI."""

    def __init__(self, lat_deg: float, lon_deg: float) -> None:
        self.up, self.east, self.north = site_frame(lat_deg, lon_deg)

    def surface_direction(self, downrange_m: float, crossrange_m: float) -> np.ndarray:
        """Unit vector from the Moon's centre to a point given by arc lengths from the target."""
        a, c = downrange_m / MEAN_RADIUS_M, crossrange_m / MEAN_RADIUS_M
        u = math.cos(a) * math.cos(c) * self.up + math.sin(a) * math.cos(c) * self.east \
            + math.sin(c) * self.north
        return u / np.linalg.norm(u)

    def ground_coordinates(self, r_m: np.ndarray) -> tuple[float, float]:
        """(downrange_m, crossrange_m) arc lengths of the point under ``r_m`` from the target."""
        u = r_m / np.linalg.norm(r_m)
        c = math.asin(max(-1.0, min(1.0, float(u @ self.north))))
        a = math.atan2(float(u @ self.east), float(u @ self.up))
        return a * MEAN_RADIUS_M, c * MEAN_RADIUS_M

    def great_circle_m(self, u1: np.ndarray, u2: np.ndarray) -> float:
        """Surface arc length between two unit vectors, at the mean radius."""
        return MEAN_RADIUS_M * math.atan2(float(np.linalg.norm(np.cross(u1, u2))), float(u1 @ u2))
