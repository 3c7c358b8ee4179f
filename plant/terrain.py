"""Lunar terrain: a sphere at the mean height plus bowl craters with raised rims and cliffs.

Surface radius under a direction ``u`` (unit vector from the Moon's centre)::

    R_surf(u) = R_moon + mean_height_m + sum_i crater_i(s_i) + sum_j cliff_j(a, c)

where ``s_i`` is the great-circle distance (arc length at the mean radius) from crater
``i``'s centre. Crater profile with rim-crest radius ``R``, depth ``D``, rim height ``H``::

    s <  R          -D + (D + H) (s/R)^2                       parabolic bowl, -D .. +H
    R <= s < 5 R    H ((R/s)^3 - k) / (1 - k),  k = (1/5)^3    rim / ejecta falling off
    s >= 5 R        0

The outer flank is the classic ``(R/s)^3`` ejecta fall-off, shifted by ``k`` so it reaches
exactly zero at ``5 R``: every crater has compact support (a crater 10 km away does not
change the height of the landing site), and the profile is continuous everywhere (kinks at
the rim crest and a very small one at ``5 R``). Overlapping craters add.

A cliff is a straight step across the ground track, a function of the point's ground
coordinates ``(a, c)`` (downrange and crossrange arcs, :meth:`SiteFrame.ground_coordinates`;
lines of constant ``a`` cross the track at right angles). With mid-line ``a0``, height
``H``, width ``w``, ``sigma = +1`` if the high side is downrange (-1 uprange) and half
extent ``L`` across the track::

    cliff(a, c) = H ramp(sigma (a - a0) / w) taper((|c| - L) / w)
    ramp(x)  = 0 (x <= -1/2),  (1 - cos(pi (x + 1/2))) / 2,  1 (x >= 1/2)
    taper(v) = 1 (v <= 0),     (1 + cos(pi v)) / 2,           0 (v >= 1)

The step is exactly flat outside its ``w`` wide band (the landing site height is untouched
unless the band or the high side covers it), continuous with a continuous slope, steepest at
the mid-line: ``pi H / (2 w)`` (5 km over 100 m: 89.3 degrees). The high side reaches to
the meridian opposite the target (``|a| = pi R``), where the step is cut: 5,000 km away.

Ray casting (:meth:`Terrain.ray_range_m`) is Lipschitz ray marching ("sphere tracing"): the
step is the altitude margin divided by a bound on how fast that margin can shrink, using a
local bound on the terrain slope within the step's reach (for a cliff: how far away its
band is and how much it can still rise), so a step never jumps over terrain (down to
``MIN_STEP_M``); the first crossing is then refined to about 5 mm.
"""

from __future__ import annotations

import math

import numpy as np

from plant.config import CliffConfig, CraterConfig, TerrainConfig
from plant.moon import MEAN_RADIUS_M, SiteFrame

OUTER_RADIUS_FACTOR = 5.0                        # crater influence ends at 5 rim radii
_K_OUTER = (1.0 / OUTER_RADIUS_FACTOR) ** 3      # shift that makes the flank zero there
MIN_STEP_M = 0.05        # smallest marching step; thinner intersections may be skipped
REFINE_TOL_M = 0.005     # root bracket width at which the refinement stops
MAX_MARCH_STEPS = 20000  # guard against pathological grazing rays: give up (no return)

_MAX_LAT_RAD = 1.45      # beyond this site-frame latitude a cliff is treated as unbounded
_HUGE = 1e30             # "at once" slope for rise bounds that cannot be localised


class _Crater:
    """One crater, precomputed for fast evaluation (plain floats)."""

    __slots__ = ("cx", "cy", "cz", "radius_m", "depth_m", "rim_m", "outer_m",
                 "chord_outer", "bowl_slope", "flank_slope")

    def __init__(self, centre_unit: np.ndarray, radius_m: float, depth_m: float,
                 rim_m: float, moon_radius_m: float = MEAN_RADIUS_M) -> None:
        self.cx, self.cy, self.cz = (float(v) for v in centre_unit)
        self.radius_m = float(radius_m)
        self.depth_m = float(depth_m)
        self.rim_m = float(rim_m)
        self.outer_m = OUTER_RADIUS_FACTOR * self.radius_m
        # Chord length (unit sphere) of the influence radius, for a cheap cut-off test.
        self.chord_outer = 2.0 * math.sin(min(math.pi, self.outer_m / moon_radius_m) / 2.0)
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

    def slope(self, s_m: float) -> float:
        """dh/ds of the profile at arc distance ``s_m`` from the centre (outwards)."""
        r = self.radius_m
        if s_m < r:
            return 2.0 * (self.depth_m + self.rim_m) * s_m / (r * r)
        if s_m < self.outer_m:
            q = r / s_m
            return -self.flank_slope * q * q * q * q
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


class _Cliff:
    """One cliff (a smooth step across the track), precomputed (plain floats).

    Works in the ground coordinates ``a`` (downrange arc) and ``c`` (crossrange arc), m.
    """

    __slots__ = ("a0", "sigma", "height_m", "width_m", "half_m", "slope", "moon_radius_m",
                 "half_turn_m")

    def __init__(self, cc: CliffConfig, moon_radius_m: float = MEAN_RADIUS_M) -> None:
        self.moon_radius_m = float(moon_radius_m)
        # |downrange| of the meridian opposite the target: where the high side is cut.
        self.half_turn_m = math.pi * self.moon_radius_m
        if cc.high_side not in ("uprange", "downrange"):
            raise ValueError(f'cliff high_side must be "uprange" or "downrange", '
                             f"got {cc.high_side!r}")
        self.a0 = float(cc.downrange_m)
        self.sigma = 1.0 if cc.high_side == "downrange" else -1.0
        self.height_m = float(cc.height_m)
        self.width_m = float(cc.width_m)
        if not self.width_m > 0.0:
            raise ValueError(f"cliff width_m must be > 0, got {cc.width_m!r}")
        self.half_m = float(cc.crossrange_half_width_m)
        self.slope = math.pi / (2.0 * self.width_m)   # max d(ramp)/da = max |d(taper)/dc|

    def ramp(self, a_m: float) -> float:
        """0 on the low side, 1 on the high side, cosine ramp over the band."""
        u = self.sigma * (a_m - self.a0) / self.width_m + 0.5
        if u <= 0.0:
            return 0.0
        if u >= 1.0:
            return 1.0
        return 0.5 - 0.5 * math.cos(math.pi * u)

    def taper(self, c_m: float) -> float:
        """1 across the track within the half width, cosine fall-off to 0 over one width."""
        v = (abs(c_m) - self.half_m) / self.width_m
        if v <= 0.0:
            return 1.0
        if v >= 1.0:
            return 0.0
        return 0.5 + 0.5 * math.cos(math.pi * v)

    def height(self, a_m: float, c_m: float) -> float:
        r = self.ramp(a_m)
        return 0.0 if r == 0.0 else self.height_m * r * self.taper(c_m)

    def gradient(self, a_m: float, c_m: float) -> tuple[float, float]:
        """(dh/da, dh/dc) at ground coordinates (a, c)."""
        u = self.sigma * (a_m - self.a0) / self.width_m + 0.5
        if u <= 0.0:
            return 0.0, 0.0
        if u >= 1.0:
            ramp, d_ramp = 1.0, 0.0
        else:
            ramp = 0.5 - 0.5 * math.cos(math.pi * u)
            d_ramp = 0.5 * math.pi * math.sin(math.pi * u) * self.sigma / self.width_m
        v = (abs(c_m) - self.half_m) / self.width_m
        if v <= 0.0:
            taper, d_taper = 1.0, 0.0
        elif v >= 1.0:
            return 0.0, 0.0
        else:
            taper = 0.5 + 0.5 * math.cos(math.pi * v)
            d_taper = -0.5 * math.pi * math.sin(math.pi * v) * math.copysign(1.0, c_m) \
                / self.width_m
        return self.height_m * d_ramp * taper, self.height_m * ramp * d_taper

    def constant_on(self, a_m: float, c_m: float, radius_m: float) -> float | None:
        """The cliff's height if it is the same everywhere within ground distance
        ``radius_m`` of ``(a_m, c_m)``, else None."""
        lat = (abs(c_m) + radius_m) / self.moon_radius_m
        if lat >= _MAX_LAT_RAD:
            return None
        da = radius_m / math.cos(lat)               # |delta a| <= |delta s| / cos(latitude)
        if abs(a_m) + da >= self.half_turn_m:
            return None                             # the cut opposite the target is in reach
        x = self.sigma * (a_m - self.a0)
        half_w = 0.5 * self.width_m
        if x + da <= -half_w:
            return 0.0                              # all on the low side
        if x - da < half_w:
            return None                             # the band is in reach
        if abs(c_m) + radius_m <= self.half_m:
            return self.height_m                    # all on the full-height high side
        if abs(c_m) - radius_m >= self.half_m + self.width_m:
            return 0.0                              # all beyond the cliff's end
        return None

    def rise_terms(self, a_m: float, c_m: float, rate_a: float | None, rate_c: float,
                   out: list[tuple[float, float, float]]) -> None:
        """Bounds on how much this cliff can rise along the next metres of a ray.

        ``rate_a`` / ``rate_c`` bound how fast the ray's downrange / crossrange arcs change
        per metre of ray over the reach considered (``rate_a`` None: unbounded, e.g. the
        cut opposite the target is within reach). Appends ``(start, slope, cap)`` terms,
        each meaning: rise after ``t`` metres of ray <= ``min(cap, slope * max(0, t -
        start))``. From ``ramp(a') taper(c') - ramp(a) taper(c) <= max(0, ramp(a') -
        ramp(a)) + ramp(a) max(0, taper(c') - taper(c))``, each factor Lipschitz with
        ``self.slope`` and flat until its band is reached.
        """
        h = self.height_m
        r = self.ramp(a_m)
        cap_a = h * (1.0 - r)
        if cap_a > 0.0:
            if rate_a is None:
                out.append((0.0, _HUGE, cap_a))     # cannot localise: may rise at once
            elif rate_a > 0.0:
                gap = max(0.0, -0.5 * self.width_m - self.sigma * (a_m - self.a0))
                out.append((gap / rate_a, h * self.slope * rate_a, cap_a))
        if r > 0.0 and rate_c > 0.0:
            cap_c = h * r * (1.0 - self.taper(c_m))
            if cap_c > 0.0:
                gap = max(0.0, abs(c_m) - self.half_m - self.width_m)
                out.append((gap / rate_c, h * r * self.slope * rate_c, cap_c))


class _SlopePatch:
    """The landing site's local slope: a plane through the target tilted by ``slope_deg``,
    facing ``azimuth_deg`` (the downhill direction, clockwise from north), over a disc of
    ``radius_m``; it blends back into the surrounding ground over another ``radius_m``.

    In the ground coordinates ``(a, c)`` (downrange = east, crossrange = north), with the
    downhill unit vector ``d = (sin az, cos az)`` and ``rho = hypot(a, c)``::

        h(a, c) = -tan(slope) (d_a a + d_c c) W(rho)
        W = 1 (rho <= R0),  (1 + cos(pi (rho - R0) / R0)) / 2 (R0 < rho < 2 R0),  0 beyond

    The same duck type as :class:`_Cliff` (a function of the ground coordinates with
    ``height``, ``gradient``, ``constant_on`` and ``rise_terms``), so ray casting and the
    surface normal treat it like a cliff.
    """

    __slots__ = ("tan_slope", "da", "dc", "r0_m", "outer_m", "max_abs_m", "max_grad",
                 "moon_radius_m", "half_turn_m", "height_m")

    def __init__(self, slope_deg: float, azimuth_deg: float, radius_m: float,
                 moon_radius_m: float = MEAN_RADIUS_M) -> None:
        self.tan_slope = math.tan(math.radians(slope_deg))
        az = math.radians(azimuth_deg)
        self.da, self.dc = math.sin(az), math.cos(az)
        self.r0_m = float(radius_m)
        self.outer_m = 2.0 * self.r0_m
        # |h| <= tan * rho * W <= tan * outer; |grad h| <= tan (1 + outer * max|W'|).
        self.max_abs_m = self.tan_slope * self.outer_m
        self.max_grad = self.tan_slope * (1.0 + self.outer_m * 0.5 * math.pi / self.r0_m)
        self.height_m = self.max_abs_m              # for the terrain's global bounds
        self.moon_radius_m = float(moon_radius_m)
        self.half_turn_m = math.pi * self.moon_radius_m

    def _window(self, rho: float) -> tuple[float, float]:
        """W(rho) and dW/drho."""
        if rho <= self.r0_m:
            return 1.0, 0.0
        if rho >= self.outer_m:
            return 0.0, 0.0
        x = math.pi * (rho - self.r0_m) / self.r0_m
        return 0.5 + 0.5 * math.cos(x), -0.5 * math.pi / self.r0_m * math.sin(x)

    def height(self, a_m: float, c_m: float) -> float:
        rho = math.hypot(a_m, c_m)
        if rho >= self.outer_m:
            return 0.0
        return -self.tan_slope * (self.da * a_m + self.dc * c_m) * self._window(rho)[0]

    def gradient(self, a_m: float, c_m: float) -> tuple[float, float]:
        """(dh/da, dh/dc) at ground coordinates (a, c)."""
        rho = math.hypot(a_m, c_m)
        if rho >= self.outer_m:
            return 0.0, 0.0
        w, dw = self._window(rho)
        plane = -self.tan_slope * (self.da * a_m + self.dc * c_m)
        ga, gc = -self.tan_slope * self.da * w, -self.tan_slope * self.dc * w
        if dw != 0.0:
            ga += plane * dw * a_m / rho
            gc += plane * dw * c_m / rho
        return ga, gc

    def constant_on(self, a_m: float, c_m: float, radius_m: float) -> float | None:
        """0.0 if the patch is nowhere within ground distance ``radius_m`` of (a, c)."""
        lat = (abs(c_m) + radius_m) / self.moon_radius_m
        if lat >= _MAX_LAT_RAD:
            return None
        da = radius_m / math.cos(lat)
        if abs(a_m) + da >= self.half_turn_m:
            return None
        near_a = max(0.0, abs(a_m) - da)
        near_c = max(0.0, abs(c_m) - radius_m)
        return 0.0 if math.hypot(near_a, near_c) >= self.outer_m else None

    def rise_terms(self, a_m: float, c_m: float, rate_a: float | None, rate_c: float,
                   out: list[tuple[float, float, float]]) -> None:
        """As :meth:`_Cliff.rise_terms`: the patch rises by at most ``max_grad`` per metre
        of ground, which moves by at most ``rate_a + rate_c`` per metre of ray, once the
        reach meets the patch; never above ``max_abs_m``."""
        cap = self.max_abs_m - self.height(a_m, c_m)
        if cap <= 0.0:
            return
        if rate_a is None:
            out.append((0.0, _HUGE, cap))
            return
        rate = rate_a + rate_c
        if rate > 0.0:
            gap = max(0.0, math.hypot(a_m, c_m) - self.outer_m)
            out.append((gap / rate, self.max_grad * rate, cap))


def _safe_step(rate: float, terms: list[tuple[float, float, float]], f: float,
               cap: float) -> float:
    """Largest t in [0, cap] with ``rate t + sum min(cap_j, slope_j max(0, t - start_j))
    <= f`` (f > 0): the bound is continuous, non-decreasing and piecewise linear."""

    def bound(t: float) -> float:
        total = rate * t
        for start, slope, top in terms:
            if t > start:
                total += min(top, slope * (t - start))
        return total

    if bound(cap) <= f:
        return cap
    knots = set()
    for start, slope, top in terms:
        for k in (start, start + top / slope):
            if 0.0 < k < cap:
                knots.add(k)
    prev, b_prev = 0.0, 0.0
    for k in sorted(knots) + [cap]:
        b_k = bound(k)
        if b_k > f:
            return prev + (f - b_prev) * (k - prev) / (b_k - b_prev)
        prev, b_prev = k, b_k
    return cap          # not reached: bound(cap) > f


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
    """Mean sphere plus craters and cliffs, in Moon-centred inertial coordinates."""

    def __init__(self, config: TerrainConfig, site: SiteFrame) -> None:
        self.config = config
        self.site = site
        self.radius_m = R = float(site.radius_m)     # the reference sphere (the Moon's radius)
        self.mean_height_m = float(config.mean_height_m)
        craters: list[_Crater] = []
        for c in config.craters:
            cc = c if isinstance(c, CraterConfig) else CraterConfig(**dict(c))
            u = site.surface_direction(cc.downrange_m, cc.crossrange_m)
            craters.append(_Crater(u, cc.radius_m, cc.depth_m, cc.rim_height_m, R))
        self.craters = craters
        self.cliffs = [_Cliff(c if isinstance(c, CliffConfig) else CliffConfig(**dict(c)), R)
                       for c in getattr(config, "cliffs", [])]
        slope_deg = float(getattr(config, "site_slope_deg", 0.0))
        self.slope_patch = _SlopePatch(slope_deg, getattr(config, "site_slope_azimuth_deg", 90.0),
                                       getattr(config, "site_slope_radius_m", 200.0), R) \
            if slope_deg > 0.0 else None
        # Shapes that are functions of the ground coordinates (a, c): cliffs and the slope.
        self._features = self.cliffs + ([self.slope_patch] if self.slope_patch else [])
        # Site axes as floats, for the ground coordinates of a direction.
        self._up = tuple(float(v) for v in site.up)
        self._east = tuple(float(v) for v in site.east)
        self._north = tuple(float(v) for v in site.north)
        # Crater centre unit vectors and angular influence radii, for segment culling.
        self._outer_rad = np.array([c.outer_m / R for c in craters])
        self._outer_rad_list = self._outer_rad.tolist()
        # Global bounds of the surface height (overlaps add, so sum).
        self.max_height_m = self.mean_height_m + sum(c.rim_m for c in craters) \
            + sum(c.height_m for c in self._features)
        self.min_height_m = self.mean_height_m - sum(c.depth_m for c in craters) \
            - (self.slope_patch.max_abs_m if self.slope_patch else 0.0)
        self._site_radius_m = R + self._height_dir(*site.up)

    # ---- surface -------------------------------------------------------------------

    @property
    def site_radius_m(self) -> float:
        """Surface radius at the target (downrange 0, crossrange 0), m."""
        return self._site_radius_m

    def _ground(self, ux: float, uy: float, uz: float) -> tuple[float, float]:
        """(downrange, crossrange) arcs of unit direction u, as SiteFrame.ground_coordinates."""
        up, east, north = self._up, self._east, self._north
        a = math.atan2(ux * east[0] + uy * east[1] + uz * east[2],
                       ux * up[0] + uy * up[1] + uz * up[2])
        sn = ux * north[0] + uy * north[1] + uz * north[2]
        R = self.radius_m
        return a * R, math.asin(max(-1.0, min(1.0, sn))) * R

    def _height_dir(self, ux: float, uy: float, uz: float,
                    craters: list[_Crater] | None = None) -> float:
        """Surface height above the mean radius along unit direction u (floats), m."""
        h = self.mean_height_m
        two_r = 2.0 * self.radius_m
        for c in self.craters if craters is None else craters:
            ex, ey, ez = ux - c.cx, uy - c.cy, uz - c.cz
            chord = math.sqrt(ex * ex + ey * ey + ez * ez)
            if chord < c.chord_outer:
                h += c.profile_m(two_r * math.asin(0.5 * chord))
        if self._features:
            a, cr = self._ground(ux, uy, uz)
            for cl in self._features:
                h += cl.height(a, cr)
        return h

    def height_m(self, r_m: np.ndarray) -> float:
        """Surface height above the mean radius under point ``r_m`` (MCI), m."""
        x, y, z = float(r_m[0]), float(r_m[1]), float(r_m[2])
        rn = math.sqrt(x * x + y * y + z * z)
        return self._height_dir(x / rn, y / rn, z / rn)

    def surface_radius_m(self, r_m: np.ndarray) -> float:
        """Distance from the Moon's centre to the surface under ``r_m``, m."""
        return self.radius_m + self.height_m(r_m)

    def altitude_m(self, r_m: np.ndarray) -> float:
        """|r| minus the surface radius under the point (radial altitude), m."""
        x, y, z = float(r_m[0]), float(r_m[1]), float(r_m[2])
        rn = math.sqrt(x * x + y * y + z * z)
        return rn - self.radius_m - self._height_dir(x / rn, y / rn, z / rn)

    def height_gradient_dir(self, ux: float, uy: float, uz: float
                            ) -> tuple[float, tuple[float, float, float]]:
        """Surface height (m) along unit direction u and its gradient: the tangent vector
        of dh per metre of arc on the reference sphere (dimensionless, Moon-fixed axes).

        Analytic: each crater contributes ``h'(s)`` along the unit tangent pointing away
        from its centre; each ground-coordinate shape ``dh/da grad(a) + dh/dc grad(c)``,
        with ``grad(a) = (x e - y up) / (x^2 + y^2)`` (x = u.up, y = u.e) and ``grad(c) =
        (n - (u.n) u) / sqrt(1 - (u.n)^2)`` for the site axes up, e(ast), n(orth).
        """
        h = self.mean_height_m
        gx = gy = gz = 0.0
        two_r = 2.0 * self.radius_m
        for c in self.craters:
            ex, ey, ez = ux - c.cx, uy - c.cy, uz - c.cz
            chord = math.sqrt(ex * ex + ey * ey + ez * ez)
            if chord < c.chord_outer:
                s_m = two_r * math.asin(0.5 * chord)
                h += c.profile_m(s_m)
                # Away from the centre, in the tangent plane: (c.u) u - c, normalised.
                cu = c.cx * ux + c.cy * uy + c.cz * uz
                tx, ty, tz = cu * ux - c.cx, cu * uy - c.cy, cu * uz - c.cz
                tn = math.sqrt(tx * tx + ty * ty + tz * tz)
                if tn > 0.0:
                    k = c.slope(s_m) / tn
                    gx, gy, gz = gx + k * tx, gy + k * ty, gz + k * tz
        if self._features:
            up, east, north = self._up, self._east, self._north
            a, cr = self._ground(ux, uy, uz)
            x = ux * up[0] + uy * up[1] + uz * up[2]
            y = ux * east[0] + uy * east[1] + uz * east[2]
            w = ux * north[0] + uy * north[1] + uz * north[2]
            xy2 = x * x + y * y
            ga = [(x * east[i] - y * up[i]) / xy2 for i in range(3)]
            cw = math.sqrt(max(1e-300, 1.0 - w * w))
            uu = (ux, uy, uz)
            gc = [(north[i] - w * uu[i]) / cw for i in range(3)]
            for cl in self._features:
                h += cl.height(a, cr)
                da, dc = cl.gradient(a, cr)
                if da != 0.0 or dc != 0.0:
                    gx += da * ga[0] + dc * gc[0]
                    gy += da * ga[1] + dc * gc[1]
                    gz += da * ga[2] + dc * gc[2]
        return h, (gx, gy, gz)

    def ground_plane(self, p: tuple[float, float, float] | list[float]
                     ) -> tuple[tuple[float, float, float], tuple[float, float, float], float]:
        """The terrain under Moon-fixed point ``p``: the surface point radially below (or
        above) it, the surface's unit upward normal there, and the point's height above
        the surface along the radial, m. The surface is ``r(u) = (R + h(u)) u``; its normal
        is along ``u - R / (R + h) grad h``."""
        x, y, z = float(p[0]), float(p[1]), float(p[2])
        rn = math.sqrt(x * x + y * y + z * z)
        ux, uy, uz = x / rn, y / rn, z / rn
        h, (gx, gy, gz) = self.height_gradient_dir(ux, uy, uz)
        rs = self.radius_m + h
        k = self.radius_m / rs
        nx, ny, nz = ux - k * gx, uy - k * gy, uz - k * gz
        nn = math.sqrt(nx * nx + ny * ny + nz * nz)
        return (rs * ux, rs * uy, rs * uz), (nx / nn, ny / nn, nz / nn), rn - rs

    def slope_deg(self, p: tuple[float, float, float] | list[float]) -> float:
        """Slope of the terrain under Moon-fixed point ``p`` (angle of its normal from the
        radial), degrees."""
        x, y, z = float(p[0]), float(p[1]), float(p[2])
        rn = math.sqrt(x * x + y * y + z * z)
        _, n, _ = self.ground_plane(p)
        cosang = (n[0] * x + n[1] * y + n[2] * z) / rn
        return math.degrees(math.acos(max(-1.0, min(1.0, cosang))))

    # ---- ray casting ---------------------------------------------------------------

    def _segment_features(self, p0: tuple[float, float, float], p1: tuple[float, float, float]
                          ) -> tuple[list[_Crater], list[_Cliff], float]:
        """What shapes the ground track of segment p0..p1: the craters whose influence cap
        can touch it, the cliffs that are not constant along it, and the base height (mean
        plus the constant cliffs), m."""
        n0 = math.sqrt(p0[0] ** 2 + p0[1] ** 2 + p0[2] ** 2)
        n1 = math.sqrt(p1[0] ** 2 + p1[1] ** 2 + p1[2] ** 2)
        ax, ay, az = p0[0] / n0, p0[1] / n0, p0[2] / n0
        bx, by, bz = p1[0] / n1, p1[1] / n1, p1[2] / n1
        mx, my, mz = ax + bx, ay + by, az + bz
        mn = math.sqrt(mx * mx + my * my + mz * mz)
        mx, my, mz = mx / mn, my / mn, mz / mn
        # The ground track is the great-circle arc u0..u1; it lies within half its
        # angle of the arc midpoint.
        cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
        half = 0.5 * math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + az * bz)
        craters: list[_Crater] = []
        for c, outer in zip(self.craters, self._outer_rad_list):
            dot = c.cx * mx + c.cy * my + c.cz * mz
            ang = math.acos(max(-1.0, min(1.0, dot)))
            if ang <= half + outer + 1e-6:              # margin covers acos rounding
                craters.append(c)
        base = self.mean_height_m
        cliffs: list[_Cliff] = []
        if self._features:
            a, c = self._ground(mx, my, mz)
            radius = (half + 1e-6) * self.radius_m
            for cl in self._features:
                h = cl.constant_on(a, c, radius)
                if h is None:
                    cliffs.append(cl)
                else:
                    base += h
        return craters, cliffs, base

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
        t0, t_top_exit = _sphere_entry(ox, oy, oz, dx, dy, dz, self.radius_m + self.max_height_m)
        if t0 is None or t0 > max_range_m:
            return None
        t_low, _ = _sphere_entry(ox, oy, oz, dx, dy, dz, self.radius_m + self.min_height_m)
        if t_low == 0.0:
            return 0.0                      # origin below the lowest possible surface
        # The ray is surely under the surface once inside the lowest sphere.
        end_is_hit = t_low is not None and t_low <= max_range_m
        t_end = t_low if end_is_hit else min(max_range_m, t_top_exit)

        p0 = (ox + t0 * dx, oy + t0 * dy, oz + t0 * dz)
        p1 = (ox + t_end * dx, oy + t_end * dy, oz + t_end * dz)
        craters, cliffs, base = self._segment_features(p0, p1)
        if not craters and not cliffs:
            # A sphere under this segment (mean height plus constant cliffs): exact answer.
            t_hit, _ = _sphere_entry(ox, oy, oz, dx, dy, dz, self.radius_m + base)
            if t_hit is None or t_hit > max_range_m:
                return None
            return t_hit
        feat = (craters, cliffs, base)
        return self._march(ox, oy, oz, dx, dy, dz, t0, t_end, end_is_hit, feat)

    def _margin(self, ox: float, oy: float, oz: float, dx: float, dy: float, dz: float,
                t: float, feat: tuple[list[_Crater], list[_Cliff], float]
                ) -> tuple[float, list[float], float, float, float]:
        """At ray distance ``t``: altitude above the surface under the point, m; distances
        from the crater centres, m; descent rate -d|p|/dt (metres down per metre of ray);
        the point's downrange and crossrange arcs, m (0, 0 when no cliff is in play)."""
        craters, cliffs, h = feat
        R = self.radius_m
        px, py, pz = ox + t * dx, oy + t * dy, oz + t * dz
        rn = math.sqrt(px * px + py * py + pz * pz)
        ux, uy, uz = px / rn, py / rn, pz / rn
        dists = []
        for c in craters:
            ex, ey, ez = ux - c.cx, uy - c.cy, uz - c.cz
            s = 2.0 * R * math.asin(min(1.0, 0.5 * math.sqrt(ex * ex + ey * ey + ez * ez)))
            dists.append(s)
            h += c.profile_m(s)
        a = cr = 0.0
        if cliffs:
            a, cr = self._ground(ux, uy, uz)
            for cl in cliffs:
                h += cl.height(a, cr)
        return rn - R - h, dists, -(ux * dx + uy * dy + uz * dz), a, cr

    def _march(self, ox: float, oy: float, oz: float, dx: float, dy: float, dz: float,
               t: float, t_end: float, end_is_hit: bool,
               feat: tuple[list[_Crater], list[_Cliff], float]) -> float | None:
        """Lipschitz ray marching on [t, t_end], then root refinement.

        The margin f = |p| - R_surface shrinks per metre of ray by at most
        ``descent + g * S``, plus what the cliffs can rise: |p| is convex along a straight
        line, so the descent rate -d|p|/dt only falls along the ray; the ground track moves
        at most ``g`` metres per metre of ray, ``g = R_mean * b / (R_mean + lowest
        height)^2`` with ``b = |o x d|`` the ray's distance from the Moon's centre (0 for a
        vertical ray); S bounds the crater slopes within the ground reach of the step; a
        cliff rises by nothing until the reach meets its band, then at most its steepest
        slope, and never by more than it has left (:meth:`_Cliff.rise_terms`). The longest
        step whose total bound stays under f therefore cannot cross the surface. Reaches of
        f, 4f, ... 256f are tried and the longest safe step taken.

        ``end_is_hit``: t_end is on the lowest possible surface, so the ray is at or under
        the ground there even if rounding says a nanometre above.
        """
        craters, cliffs, _ = feat
        bx, by, bz = oy * dz - oz * dy, oz * dx - ox * dz, ox * dy - oy * dx
        R = self.radius_m
        half_turn = math.pi * R
        r_low = R + self.min_height_m
        k_rate = R / (r_low * r_low)
        g = k_rate * math.sqrt(bx * bx + by * by + bz * bz)
        if cliffs:
            # Rates of the ground coordinates per metre of ray, from b = p x d = o x d (the
            # same all along the ray) and n the site's north: da/dt = R (b.n) / (|p| cos
            # lat)^2 and |dc/dt| <= R |n x b| / (|p|^2 cos lat), with |p| >= r_low.
            nx, ny, nz = self._north
            b_n = abs(bx * nx + by * ny + bz * nz) * k_rate
            b_nx = k_rate * math.sqrt((ny * bz - nz * by) ** 2 + (nz * bx - nx * bz) ** 2
                                      + (nx * by - ny * bx) ** 2)
        f, dists, descent, a, c = self._margin(ox, oy, oz, dx, dy, dz, t, feat)
        if f <= 0.0:
            return t
        terms: list[tuple[float, float, float]] = []
        for _ in range(MAX_MARCH_STEPS):
            descent = max(0.0, descent)
            step = 0.0
            cap = f
            for _k in range(5):                 # step caps f, 4f, 16f, 64f, 256f
                reach = g * cap
                slope = 0.0
                for cr, s in zip(craters, dists):
                    slope += cr.max_slope(s - reach, s + reach)
                rate = descent + g * slope
                if cliffs:
                    terms.clear()
                    lat = (abs(c) + reach) / R
                    if lat < _MAX_LAT_RAD:
                        cos_lat = math.cos(lat)
                        rate_a = min(g / cos_lat, b_n / (cos_lat * cos_lat))
                        rate_c = min(g, b_nx / cos_lat)
                        if abs(a) + rate_a * cap >= half_turn:
                            rate_a = None               # the cut opposite the target
                    else:
                        rate_a, rate_c = None, g
                    for cl in cliffs:
                        cl.rise_terms(a, c, rate_a, rate_c, terms)
                    safe = _safe_step(rate, terms, f, cap) if terms else \
                        (cap if rate * cap <= f else f / rate)
                else:
                    safe = cap if rate * cap <= f else f / rate
                step = max(step, safe)
                if step < cap:
                    break                       # larger reaches only add slope
                cap *= 4.0
            step = max(MIN_STEP_M, step)
            t_new = t + step
            last = t_new >= t_end
            if last:
                t_new = t_end
            f_new, dists_new, descent_new, a_new, c_new = self._margin(
                ox, oy, oz, dx, dy, dz, t_new, feat)
            if f_new <= 0.0:
                return self._refine(ox, oy, oz, dx, dy, dz, t, f, t_new, f_new, feat)
            if last:
                return t_end if end_is_hit else None
            t, f, dists, descent, a, c = t_new, f_new, dists_new, descent_new, a_new, c_new
        return None

    def _refine(self, ox: float, oy: float, oz: float, dx: float, dy: float, dz: float,
                a: float, fa: float, b: float, fb: float,
                feat: tuple[list[_Crater], list[_Cliff], float]) -> float:
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
            fx = self._margin(ox, oy, oz, dx, dy, dz, x, feat)[0]
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
