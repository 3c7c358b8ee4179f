"""Lunar terrain: a sphere at the mean height plus bowl craters with raised rims.

Surface radius under a direction ``u`` (unit vector from the Moon's centre)::

    R_surf(u) = MEAN_RADIUS_M + mean_height_m + sum_i crater_i(s_i)

where ``s_i`` is the great-circle distance (arc length at the mean radius) from crater
``i``'s centre. Crater profile with rim-crest radius ``R``, depth ``D``, rim height ``H``::

    s <  R          -D + (D + H) (s/R)^2                       parabolic bowl, -D .. +H
    R <= s < 5 R    H ((R/s)^3 - k) / (1 - k),  k = (1/5)^3    rim / ejecta falling off
    s >= 5 R        0

The outer flank is the classic ``(R/s)^3`` ejecta fall-off, shifted by ``k`` so it reaches
exactly zero at ``5 R``: every crater has compact support (a crater 10 km away does not
change the height of the landing site), and the profile is continuous everywhere (kinks at
the rim crest and a very small one at ``5 R``). Overlapping craters add.

Ray casting (:meth:`Terrain.ray_range_m`) is Lipschitz ray marching ("sphere tracing"): the
step is the altitude margin divided by a bound on how fast that margin can shrink, using a
local bound on the terrain slope within the step's reach, so a step never jumps over
terrain (down to ``MIN_STEP_M``); the first crossing is then refined to about 5 mm.
"""

from __future__ import annotations

import math

import numpy as np

from plant.config import CraterConfig, TerrainConfig
from plant.moon import MEAN_RADIUS_M, SiteFrame

OUTER_RADIUS_FACTOR = 5.0                        # crater influence ends at 5 rim radii
_K_OUTER = (1.0 / OUTER_RADIUS_FACTOR) ** 3      # shift that makes the flank zero there
MIN_STEP_M = 0.05        # smallest marching step; thinner intersections may be skipped
REFINE_TOL_M = 0.005     # root bracket width at which the refinement stops
MAX_MARCH_STEPS = 20000  # guard against pathological grazing rays: give up (no return)


class _Crater:
    """One crater, precomputed for fast evaluation (plain floats)."""

    __slots__ = ("cx", "cy", "cz", "radius_m", "depth_m", "rim_m", "outer_m",
                 "chord_outer", "bowl_slope", "flank_slope")

    def __init__(self, centre_unit: np.ndarray, radius_m: float, depth_m: float,
                 rim_m: float) -> None:
        self.cx, self.cy, self.cz = (float(v) for v in centre_unit)
        self.radius_m = float(radius_m)
        self.depth_m = float(depth_m)
        self.rim_m = float(rim_m)
        self.outer_m = OUTER_RADIUS_FACTOR * self.radius_m
        # Chord length (unit sphere) of the influence radius, for a cheap cut-off test.
        self.chord_outer = 2.0 * math.sin(min(math.pi, self.outer_m / MEAN_RADIUS_M) / 2.0)
        # Steepest slopes (dh/ds, dimensionless), both at the rim crest.
        self.bowl_slope = 2.0 * (self.depth_m + self.rim_m) / self.radius_m
        self.flank_slope = 3.0 * self.rim_m / self.radius_m / (1.0 - _K_OUTER)

    def profile_m(self, s_m: float) -> float:
        """Height relative to the mean surface at arc distance ``s_m`` from the centre."""
        r = self.radius_m
        if s_m < r:
            x = s_m / r
            return -self.depth_m + (self.depth_m + self.rim_m) * x * x
        if s_m < self.outer_m:
            q = r / s_m
            return self.rim_m * (q * q * q - _K_OUTER) / (1.0 - _K_OUTER)
        return 0.0

    def max_slope(self, s_lo_m: float, s_hi_m: float) -> float:
        """Largest |dh/ds| of the profile for distances in [s_lo_m, s_hi_m]."""
        r = self.radius_m
        if s_lo_m >= self.outer_m:
            return 0.0
        if s_hi_m <= r:
            return 2.0 * (self.depth_m + self.rim_m) * s_hi_m / (r * r)
        if s_lo_m >= r:
            q = r / s_lo_m
            return self.flank_slope * q * q * q * q
        return max(self.bowl_slope, self.flank_slope)


def _sphere_entry(ox: float, oy: float, oz: float, dx: float, dy: float, dz: float,
                  radius_m: float) -> tuple[float | None, float | None]:
    """(entry, exit) distances of the ray into/out of a centred sphere; None if absent.

    The entry is 0.0 when the origin is inside. Computed in the cancellation-free form.
    """
    rn = math.sqrt(ox * ox + oy * oy + oz * oz)
    b = ox * dx + oy * dy + oz * dz
    c = (rn - radius_m) * (rn + radius_m)
    disc = b * b - c
    if disc < 0.0:
        return None, None
    sq = math.sqrt(disc)
    if c > 0.0:                     # origin outside
        if b >= 0.0:
            return None, None       # moving away
        t_in = c / (-b + sq)
        return t_in, -b + sq
    # Origin inside: exit distance -b + sq, written without cancellation when b > 0.
    return 0.0, (-b + sq if b <= 0.0 else -c / (b + sq))


class Terrain:
    """Mean sphere plus craters, in Moon-centred inertial coordinates."""

    def __init__(self, config: TerrainConfig, site: SiteFrame) -> None:
        self.config = config
        self.site = site
        self.mean_height_m = float(config.mean_height_m)
        craters: list[_Crater] = []
        for c in config.craters:
            cc = c if isinstance(c, CraterConfig) else CraterConfig(**dict(c))
            u = site.surface_direction(cc.downrange_m, cc.crossrange_m)
            craters.append(_Crater(u, cc.radius_m, cc.depth_m, cc.rim_height_m))
        self.craters = craters
        # Crater centre unit vectors and angular influence radii, for segment culling.
        self._centres = np.array([[c.cx, c.cy, c.cz] for c in craters]).reshape(-1, 3)
        self._outer_rad = np.array([c.outer_m / MEAN_RADIUS_M for c in craters])
        # Global bounds of the surface height (overlaps add, so sum).
        self.max_height_m = self.mean_height_m + sum(c.rim_m for c in craters)
        self.min_height_m = self.mean_height_m - sum(c.depth_m for c in craters)
        self._site_radius_m = MEAN_RADIUS_M + self._height_dir(*site.up)

    # ---- surface -------------------------------------------------------------------

    @property
    def site_radius_m(self) -> float:
        """Surface radius at the target (downrange 0, crossrange 0), m."""
        return self._site_radius_m

    def _height_dir(self, ux: float, uy: float, uz: float,
                    craters: list[_Crater] | None = None) -> float:
        """Surface height above the mean radius along unit direction u (floats), m."""
        h = self.mean_height_m
        for c in self.craters if craters is None else craters:
            ex, ey, ez = ux - c.cx, uy - c.cy, uz - c.cz
            chord = math.sqrt(ex * ex + ey * ey + ez * ez)
            if chord < c.chord_outer:
                h += c.profile_m(2.0 * MEAN_RADIUS_M * math.asin(0.5 * chord))
        return h

    def height_m(self, r_m: np.ndarray) -> float:
        """Surface height above the mean radius under point ``r_m`` (MCI), m."""
        x, y, z = float(r_m[0]), float(r_m[1]), float(r_m[2])
        rn = math.sqrt(x * x + y * y + z * z)
        return self._height_dir(x / rn, y / rn, z / rn)

    def surface_radius_m(self, r_m: np.ndarray) -> float:
        """Distance from the Moon's centre to the surface under ``r_m``, m."""
        return MEAN_RADIUS_M + self.height_m(r_m)

    def altitude_m(self, r_m: np.ndarray) -> float:
        """|r| minus the surface radius under the point (radial altitude), m."""
        x, y, z = float(r_m[0]), float(r_m[1]), float(r_m[2])
        rn = math.sqrt(x * x + y * y + z * z)
        return rn - MEAN_RADIUS_M - self._height_dir(x / rn, y / rn, z / rn)

    # ---- ray casting ---------------------------------------------------------------

    def _segment_craters(self, p0: tuple[float, float, float],
                         p1: tuple[float, float, float]) -> list[_Crater]:
        """Craters whose influence cap can touch the ground track of segment p0..p1."""
        if not self.craters:
            return []
        u0 = np.array(p0) / math.sqrt(p0[0] ** 2 + p0[1] ** 2 + p0[2] ** 2)
        u1 = np.array(p1) / math.sqrt(p1[0] ** 2 + p1[1] ** 2 + p1[2] ** 2)
        mid = u0 + u1
        mid /= np.linalg.norm(mid)
        # The ground track is the great-circle arc u0..u1; it lies within half its
        # angle of the arc midpoint.
        half = 0.5 * math.atan2(float(np.linalg.norm(np.cross(u0, u1))), float(u0 @ u1))
        ang = np.arccos(np.clip(self._centres @ mid, -1.0, 1.0))
        near = ang <= half + self._outer_rad + 1e-6      # margin covers arccos rounding
        return [c for c, n in zip(self.craters, near) if n]

    def ray_range_m(self, origin_m: np.ndarray, direction_unit: np.ndarray,
                    max_range_m: float) -> float | None:
        """Distance along the ray to its first intersection with the surface, m.

        None if the ray does not reach the surface within ``max_range_m``. 0.0 if the
        origin is on or under the surface. Intersections thinner than ``MIN_STEP_M`` along
        the ray (a ray skimming a rim crest by millimetres) may be missed.
        """
        ox, oy, oz = float(origin_m[0]), float(origin_m[1]), float(origin_m[2])
        dx, dy, dz = float(direction_unit[0]), float(direction_unit[1]), float(direction_unit[2])
        dn = math.sqrt(dx * dx + dy * dy + dz * dz)
        dx, dy, dz = dx / dn, dy / dn, dz / dn
        max_range_m = float(max_range_m)

        # Bracket: the surface lies between the spheres of the lowest and highest height.
        t0, t_top_exit = _sphere_entry(ox, oy, oz, dx, dy, dz, MEAN_RADIUS_M + self.max_height_m)
        if t0 is None or t0 > max_range_m:
            return None
        t_low, _ = _sphere_entry(ox, oy, oz, dx, dy, dz, MEAN_RADIUS_M + self.min_height_m)
        if t_low == 0.0:
            return 0.0                      # origin below the lowest possible surface
        # The ray is surely under the surface once inside the lowest sphere.
        end_is_hit = t_low is not None and t_low <= max_range_m
        t_end = t_low if end_is_hit else min(max_range_m, t_top_exit)

        p0 = (ox + t0 * dx, oy + t0 * dy, oz + t0 * dz)
        p1 = (ox + t_end * dx, oy + t_end * dy, oz + t_end * dz)
        craters = self._segment_craters(p0, p1)
        if not craters:
            # Only the mean sphere under this segment: exact answer.
            t_hit, _ = _sphere_entry(ox, oy, oz, dx, dy, dz, MEAN_RADIUS_M + self.mean_height_m)
            if t_hit is None or t_hit > max_range_m:
                return None
            return t_hit
        return self._march(ox, oy, oz, dx, dy, dz, t0, t_end, end_is_hit, craters)

    def _margin(self, ox: float, oy: float, oz: float, dx: float, dy: float, dz: float,
                t: float, craters: list[_Crater]) -> tuple[float, list[float], float]:
        """At ray distance ``t``: altitude above the surface under the point, m; distances
        from the crater centres, m; descent rate -d|p|/dt (metres down per metre of ray)."""
        px, py, pz = ox + t * dx, oy + t * dy, oz + t * dz
        rn = math.sqrt(px * px + py * py + pz * pz)
        ux, uy, uz = px / rn, py / rn, pz / rn
        h = self.mean_height_m
        dists = []
        for c in craters:
            ex, ey, ez = ux - c.cx, uy - c.cy, uz - c.cz
            s = 2.0 * MEAN_RADIUS_M * math.asin(min(1.0, 0.5 * math.sqrt(ex * ex + ey * ey + ez * ez)))
            dists.append(s)
            h += c.profile_m(s)
        return rn - MEAN_RADIUS_M - h, dists, -(ux * dx + uy * dy + uz * dz)

    def _march(self, ox: float, oy: float, oz: float, dx: float, dy: float, dz: float,
               t: float, t_end: float, end_is_hit: bool,
               craters: list[_Crater]) -> float | None:
        """Lipschitz ray marching on [t, t_end], then root refinement.

        The margin f = |p| - R_surface shrinks per metre of ray by at most
        ``descent + g * S``: |p| is convex along a straight line, so the descent rate
        -d|p|/dt only falls along the ray; the ground track moves at most ``g`` metres per
        metre of ray, ``g = R_mean * b / (R_mean + lowest height)^2`` with ``b = |o x d|``
        the ray's distance from the Moon's centre (0 for a vertical ray); S bounds the
        slope within the ground reach of the step. A step of f / (descent + g S) therefore
        cannot cross the surface. Reaches of f, 4f, ... 256f are tried and the longest
        safe step taken.

        ``end_is_hit``: t_end is on the lowest possible surface, so the ray is at or under
        the ground there even if rounding says a nanometre above.
        """
        bx, by, bz = oy * dz - oz * dy, oz * dx - ox * dz, ox * dy - oy * dx
        r_low = MEAN_RADIUS_M + self.min_height_m
        g = MEAN_RADIUS_M * math.sqrt(bx * bx + by * by + bz * bz) / (r_low * r_low)
        f, dists, descent = self._margin(ox, oy, oz, dx, dy, dz, t, craters)
        if f <= 0.0:
            return t
        for _ in range(MAX_MARCH_STEPS):
            descent = max(0.0, descent)
            step = 0.0
            cap = f
            for _k in range(5):                 # step caps f, 4f, 16f, 64f, 256f
                reach = g * cap
                slope = 0.0
                for c, s in zip(craters, dists):
                    slope += c.max_slope(s - reach, s + reach)
                rate = descent + g * slope
                step = max(step, cap if rate * cap <= f else f / rate)
                if step < cap:
                    break                       # larger reaches only add slope
                cap *= 4.0
            step = max(MIN_STEP_M, step)
            t_new = t + step
            last = t_new >= t_end
            if last:
                t_new = t_end
            f_new, dists_new, descent_new = self._margin(ox, oy, oz, dx, dy, dz, t_new, craters)
            if f_new <= 0.0:
                return self._refine(ox, oy, oz, dx, dy, dz, t, f, t_new, f_new, craters)
            if last:
                return t_end if end_is_hit else None
            t, f, dists, descent = t_new, f_new, dists_new, descent_new
        return None

    def _refine(self, ox: float, oy: float, oz: float, dx: float, dy: float, dz: float,
                a: float, fa: float, b: float, fb: float, craters: list[_Crater]) -> float:
        """Root of the margin in [a, b] (fa > 0 >= fb): Illinois false position + bisection."""
        side = 0
        for i in range(200):
            if b - a <= REFINE_TOL_M:
                break
            if i % 4 == 3:
                x = 0.5 * (a + b)           # guaranteed shrink every fourth step
            else:
                x = (a * fb - b * fa) / (fb - fa)
                if not a < x < b:
                    x = 0.5 * (a + b)
            fx = self._margin(ox, oy, oz, dx, dy, dz, x, craters)[0]
            if fx > 0.0:
                a, fa = x, fx
                if side == 1:
                    fb *= 0.5
                side = 1
            else:
                b, fb = x, fx
                if side == -1:
                    fa *= 0.5
                side = -1
        if fa == fb:
            return b
        return min(b, max(a, (a * fb - b * fa) / (fb - fa)))
