"""Powered-descent guidance: ZEM/ZEV optimal feedback to aim points, then a vertical descent.

    a_cmd = 6 ZEM / t_go^2 - 2 ZEV / t_go
    ZEM = r_T - (r + v t_go + g t_go^2 / 2),   ZEV = v_T - (v + g t_go)

The law runs in the site's curvilinear frame (on the Moon-fixed sphere: it turns with the
Moon, and ``with_frame_terms`` adds the Coriolis and centrifugal accelerations) -- altitude above the site datum, downrange and
crossrange arc lengths -- where a vehicle at orbital speed does not "fall": gravity is the
effective one, ``g - v_h^2 / r``, with ``v_h^2`` averaged over the phase (the horizontal
speed changes linearly from now to the aim point), once as the velocity feels it and once,
weighted to the early fast part, as the position does (``effective_gravity``). A constant inertial gravity vector would
be wrong by tens of kilometres over a 450 km braking arc. ``a_cmd`` is the thrust
acceleration, re-evaluated every cycle. In braking, the time-to-go is the shortest one
whose profile fits the engine now and at high gate, solved about once a second and counted
down in between.
"""

import math

from fsw import vec

GM_M3PS2 = 4.902800118e12


class SiteGeometry:
    """The landing site's local frame: up, east (downrange) and the datum radius."""

    def __init__(self, up, east, radius_m):
        self.up = vec.unit(up)
        self.east = vec.unit(east)
        self.north = vec.cross(self.up, self.east)
        self.radius_m = radius_m

    def local(self, d, v, alt_m=None):
        """Curvilinear state from the position ``d`` relative to the site's datum point:
        (alt, downrange, crossrange), their rates, and the local axes. ``alt_m`` may give the
        altitude already computed (float32-safe, see nav.Navigator.altitude_m)."""
        # vec's operations written out, in their order (every cycle in guided flight).
        R = self.radius_m
        up, nt = self.up, self.north
        r0, r1, r2 = up[0] * R + d[0], up[1] * R + d[1], up[2] * R + d[2]
        rn = math.sqrt(r0 * r0 + r1 * r1 + r2 * r2)
        k = 1.0 / rn
        u0, u1, u2 = r0 * k, r1 * k, r2 * k
        c0 = nt[1] * u2 - nt[2] * u1                   # e_a = unit(north x u)
        c1 = nt[2] * u0 - nt[0] * u2
        c2 = nt[0] * u1 - nt[1] * u0
        n = math.sqrt(c0 * c0 + c1 * c1 + c2 * c2)
        if n <= 0.0:
            a0 = a1 = a2 = 0.0
        else:
            a0, a1, a2 = c0 / n, c1 / n, c2 / n
        e0, e1, e2 = u1 * a2 - u2 * a1, u2 * a0 - u0 * a2, u0 * a1 - u1 * a0   # u x e_a
        down, cross = self.ground(d)
        k = R / rn
        pos = (rn - R if alt_m is None else alt_m, down, cross)
        v0, v1, v2 = v[0], v[1], v[2]
        vel = (v0 * u0 + v1 * u1 + v2 * u2, (v0 * a0 + v1 * a1 + v2 * a2) * k,
               (v0 * e0 + v1 * e1 + v2 * e2) * k)
        return pos, vel, ((u0, u1, u2), (a0, a1, a2), (e0, e1, e2))

    def to_frame(self, a_local, axes):
        """A local (up, downrange, crossrange) vector in the navigation (Moon-fixed) frame."""
        u, e_a, e_c = axes
        x, y, z = a_local[0], a_local[1], a_local[2]
        return (u[0] * x + e_a[0] * y + e_c[0] * z, u[1] * x + e_a[1] * y + e_c[1] * z,
                u[2] * x + e_a[2] * y + e_c[2] * z)

    def ground(self, d):
        """(downrange_m, crossrange_m) of the point under ``d`` (relative to the site's datum
        point), arc lengths from the site; only small numbers are formed (float32-safe)."""
        R = self.radius_m
        up, e, nt = self.up, self.east, self.north
        d0, d1, d2 = d[0], d[1], d[2]
        x = R + (d0 * up[0] + d1 * up[1] + d2 * up[2])
        de = d0 * e[0] + d1 * e[1] + d2 * e[2]
        a = math.atan2(de, x)
        n = d0 * nt[0] + d1 * nt[1] + d2 * nt[2]
        c = math.atan2(n, math.sqrt(x * x + de ** 2))
        return a * R, c * R


def effective_gravity(r_m, v_h_mps, v_h_target_mps):
    """Local-frame gravity over a phase whose horizontal speed changes linearly to its aim.

    Returns ``(g_pos, g_vel)``: ``g - v_h^2 / r`` (downward, positive) averaged as the
    position and the velocity feel it. The velocity integrates it uniformly over the phase;
    the position weights early times more (by the time left, ``t_go - tau``), when the
    vehicle is fast and hardly falls. Averaging uniformly for both over-predicts the fall
    of a braking burn from orbital speed by kilometres, and the burn climbs to make up.
    """
    a, b = v_h_mps, v_h_target_mps
    g0 = GM_M3PS2 / (r_m * r_m)
    v2_vel = (a * a + a * b + b * b) / 3.0
    v2_pos = (3.0 * a * a + 2.0 * a * b + b * b) / 6.0
    return g0 - v2_pos / r_m, g0 - v2_vel / r_m


def with_frame_terms(g_pair, omega, r, v, v_target, axes):
    """The ``(g_pos, g_vel)`` pair (local vectors) plus the turning Moon-fixed frame's
    Coriolis and centrifugal accelerations, ``-2 w x v - w x (w x r)``, with ``w`` along +z.

    Like the centripetal term, the Coriolis term follows the velocity, which changes about
    linearly from ``v`` to ``v_target`` (both Moon-fixed): averaged uniformly as the velocity
    feels it, weighted to the start, ``(2 v + v_T) / 3``, as the position does. Braking from
    orbital speed eastward, it lifts by ``2 w v`` (9 mm/s^2 at 1.7 km/s): hundreds of metres
    over the burn.
    """
    u, e_a, e_c = axes
    out = []
    for g, k in ((g_pair[0], 2.0 / 3.0), (g_pair[1], 0.5)):
        vx = k * v[0] + (1.0 - k) * v_target[0]
        vy = k * v[1] + (1.0 - k) * v_target[1]
        a = (omega * (2.0 * vy + omega * r[0]), omega * (omega * r[1] - 2.0 * vx), 0.0)
        out.append((g[0] + vec.dot(a, u), g[1] + vec.dot(a, e_a), g[2] + vec.dot(a, e_c)))
    return out[0], out[1]


CLIMB_ARREST_GAIN = 0.3   # braking: upward speed to extra downward acceleration, 1/s
CLIMB_ARREST_DIP = 0.27   # ... the thrust at most ~15 deg below the horizontal (tan)


def arrest_climb(a_local, vz_mps, r_m, v2_m2ps2):
    """Braking never climbs: the upward thrust is capped so the vertical speed decays.

    ZEM/ZEV over a braking time-to-go of minutes corrects an upward start (a dispersed
    PDI state, or the coast's centrifugal lift above circular speed) by hundredths of a
    m/s^2, and the lander goes on climbing for most of a minute (tens of metres). While
    climbing, the thrust's up component is held at or below ``g_now - k vz``, with
    ``g_now = GM / r^2 - v_h^2 / r`` (the current speed's centripetal term; ``v2_m2ps2``
    is the whole speed squared), but never below ``CLIMB_ARREST_DIP`` times the horizontal
    demand: the vertical speed then decays at ``k`` (the climb stays below ``vz / k``)
    with the thrust at most ~15 deg below the horizon. The horizontal demands are unchanged.
    """
    if vz_mps <= 0.0:
        return a_local
    g_now = GM_M3PS2 / (r_m * r_m) - (v2_m2ps2 - vz_mps * vz_mps) / r_m
    a_h = math.sqrt(a_local[1] * a_local[1] + a_local[2] * a_local[2])
    a_up_max = max(g_now - CLIMB_ARREST_GAIN * vz_mps, -CLIMB_ARREST_DIP * a_h)
    if a_local[0] <= a_up_max:
        return a_local
    return (a_up_max, a_local[1], a_local[2])


APPROACH_MAX_TILT_RAD = 1.2217   # after braking: the thrust at most 70 deg from the vertical
APPROACH_MIN_UP_MPS2 = 0.1       # ... and pointing up even when the demand points down


def tilt_cone(a_local, max_tilt_rad=APPROACH_MAX_TILT_RAD):
    """The thrust's demand within ``max_tilt_rad`` of the vertical (local up, downrange,
    crossrange): the horizontal part scaled down to ``a_up tan(max_tilt)``, the up part at
    least ``APPROACH_MIN_UP_MPS2``. ZEM/ZEV wants to go down faster than gravity takes the
    lander when it is high and slow over a near target: it then asks for thrust below the
    horizon (155 deg from the vertical measured), which an engine that only pushes and an
    attitude loop that turns the lander to it make a tumble. Within the cone the demand is
    returned as it is (the same object)."""
    up = a_local[0]
    h = math.sqrt(a_local[1] * a_local[1] + a_local[2] * a_local[2])
    tan_max = math.tan(max_tilt_rad)
    if h <= up * tan_max:
        return a_local
    up = max(up, APPROACH_MIN_UP_MPS2)
    k = up * tan_max / h
    return (up, a_local[1] * k, a_local[2] * k)


def down(g_pair):
    """The ``(g_pos, g_vel)`` pair as local (up, downrange, crossrange) vectors."""
    return (-g_pair[0], 0.0, 0.0), (-g_pair[1], 0.0, 0.0)


def _zem_zev_terms(r, v, g, r_t, v_t, t_go):
    """Zero-effort miss and zero-effort velocity error after ``t_go``; ``g`` is the pair
    (gravity as the position feels it, as the velocity feels it), local vectors."""
    h = 0.5 * t_go * t_go
    gp, gv = g
    zem = (r_t[0] - (r[0] + v[0] * t_go + gp[0] * h), r_t[1] - (r[1] + v[1] * t_go + gp[1] * h),
           r_t[2] - (r[2] + v[2] * t_go + gp[2] * h))
    zev = (v_t[0] - (v[0] + gv[0] * t_go), v_t[1] - (v[1] + gv[1] * t_go),
           v_t[2] - (v[2] + gv[2] * t_go))
    return zem, zev


def zem_zev(r, v, g, r_t, v_t, t_go):
    """Thrust acceleration that reaches (r_t, v_t) in t_go under constant gravity g."""
    zem, zev = _zem_zev_terms(r, v, g, r_t, v_t, t_go)
    k6, k2 = 6.0 / (t_go * t_go), 2.0 / t_go
    return (zem[0] * k6 - zev[0] * k2, zem[1] * k6 - zev[1] * k2, zem[2] * k6 - zev[2] * k2)


def zem_zev_ends(r, v, g, r_t, v_t, t_go):
    """Thrust acceleration now and at arrival of the (linear in time) ZEM/ZEV profile."""
    zem, zev = _zem_zev_terms(r, v, g, r_t, v_t, t_go)
    a_now = vec.sub(vec.scale(zem, 6.0 / (t_go * t_go)), vec.scale(zev, 2.0 / t_go))
    a_end = vec.sub(vec.scale(zev, 4.0 / t_go), vec.scale(zem, 6.0 / (t_go * t_go)))
    return a_now, a_end


def _overload(r, v, g, r_t, v_t, t_go, a_now_max, a_end_max):
    """Largest demand of the profile as a fraction of what the engine gives (<= 1 fits)."""
    a_now, a_end = zem_zev_ends(r, v, g, r_t, v_t, t_go)
    return max(vec.norm(a_now) / a_now_max, vec.norm(a_end) / a_end_max)


def solve_tgo(r, v, g, r_t, v_t, a_now_max, a_end_max, t_min=5.0, t_max=1500.0):
    """Shortest t_go whose ZEM/ZEV profile stays within the thrust available.

    The profile's acceleration is linear in time, so its largest values are at its ends:
    the demand now must fit ``a_now_max`` and the demand at arrival ``a_end_max`` (the
    vehicle is lighter by then). Scans t_go upward geometrically, then bisects; if nothing
    fits, returns the t_go that overloads the engine least.
    """
    best_t, best = t_min, _overload(r, v, g, r_t, v_t, t_min, a_now_max, a_end_max)
    if best <= 1.0:
        return t_min
    t_prev = t = t_min
    while t < t_max:
        t_prev, t = t, t * 1.05
        load = _overload(r, v, g, r_t, v_t, t, a_now_max, a_end_max)
        if load <= 1.0:
            break
        if load < best:
            best_t, best = t, load
    else:
        return best_t
    lo, hi = t_prev, t
    for _ in range(10):
        mid = 0.5 * (lo + hi)
        if _overload(r, v, g, r_t, v_t, mid, a_now_max, a_end_max) <= 1.0:
            hi = mid
        else:
            lo = mid
    return hi


def reachable(r, v, g, r_t, v_t, t_go, a_max, floor_m, max_tilt_rad, steps=16):
    """Whether the ZEM/ZEV profile to ``(r_t, v_t)`` in ``t_go`` is flyable: its thrust
    acceleration stays within ``a_max`` and within ``max_tilt_rad`` of the vertical (local
    axes: up first), and its height never drops below ``floor_m`` on the way.

    The profile's thrust is linear in time, ``a(tau) = a0 + (a1 - a0) tau / T``, so its
    height is a cubic: ``h0 + vz tau + (g + a0) tau^2 / 2 + (a1 - a0) tau^3 / (6 T)``,
    checked at ``steps`` points (with gravity as the position feels it).
    """
    a0, a1 = zem_zev_ends(r, v, g, r_t, v_t, t_go)
    cos_max = math.cos(max_tilt_rad)
    for a in (a0, a1):
        n = vec.norm(a)
        if n > a_max or n > 1e-6 and a[0] < cos_max * n:
            return False
    j = (a1[0] - a0[0]) / t_go
    for i in range(1, steps + 1):
        tau = t_go * i / steps
        h = r[0] + v[0] * tau + 0.5 * (g[0][0] + a0[0]) * tau * tau + j * tau ** 3 / 6.0
        if h < floor_m:
            return False
    return True


class Phase:
    """One guided phase toward an aim point with a counted-down time-to-go."""

    def __init__(self, name, r_t, v_t, t_go):
        self.name = name
        self.r_t = r_t
        self.v_t = v_t
        self.t_go = t_go
        self.divert_free = False  # the site is given up (a divert and what follows it)


DESCENT_RATE_MPS = 1.0     # terminal: the vertical descent's rate (Apollo's P66: ~1 m/s)
SLIDE_SPEED_MPS = 0.5      # ... kept in full while sliding slower than this,
HOLD_SPEED_MPS = 1.5       # ... and down to a height hold at this horizontal speed


def vertical_descent(alt_m, v, up, g_mag, last_rate_mps=DESCENT_RATE_MPS):
    """Terminal phase: a descent-rate schedule and horizontal velocity nulling.

    The descent rate is ``clamp(0.02 h, last, 3)`` m/s (``last_rate_mps``, 1 m/s unless a
    mission's plan says otherwise; a blind landing's band rate: from 50 m down), scaled
    down smoothly to a height hold as the horizontal speed rises from 0.5 to 1.5 m/s, so the
    vehicle never meets the ground sliding and no switch between the two can oscillate.
    The horizontal speed is nulled with a tilt that shrinks near the ground; the vehicle
    does not translate (the approach brought it over its aim point). Returns the thrust
    acceleration (inertial) and the descent rate aimed at.
    """
    vz = vec.dot(v, up)
    v_h = vec.sub(v, vec.scale(up, vz))
    v_h_mag = vec.norm(v_h)
    rate = vec.clamp(0.02 * alt_m, last_rate_mps, 3.0)
    if alt_m > 3.0:
        rate *= vec.clamp((HOLD_SPEED_MPS - v_h_mag) / (HOLD_SPEED_MPS - SLIDE_SPEED_MPS),
                          0.0, 1.0)
    vz_des = -rate
    a_up = g_mag + 1.2 * (vz_des - vz)
    a_h = vec.scale(v_h, -0.6)
    a_h_mag = vec.norm(a_h)
    a_h_max = (0.3 if alt_m > 10.0 else 0.12 if alt_m > 5.0 else 0.05) * a_up
    if a_h_mag > a_h_max:
        a_h = vec.scale(a_h, a_h_max / a_h_mag)
    return vec.add(vec.scale(up, a_up), a_h), vz_des


DIVERT_TILT_RAD = 0.87     # divert: the thrust leans at most 50 deg from the vertical
DIVERT_RATE_GAIN = 0.8     # ... vertical-speed error to acceleration, 1/s
DIVERT_NULL_GAIN = 0.5     # ... horizontal speed to deceleration, 1/s
DIVERT_HEIGHT_GAIN = 0.3   # ... height below the floor to climb rate, 1/s


def land_here(alt_m, floor_m, v, up, g_mag, a_max):
    """Divert (the site given up): null the horizontal velocity, descending to ``floor_m``.

    The horizontal speed is nulled at up to ``DIVERT_TILT_RAD`` of lean within the thrust
    ``a_max`` left over from the vertical channel, which has priority: the descent rate is
    the one that reaches ``floor_m`` as the horizontal speed dies out, never more than a
    constant deceleration at half the spare thrust can stop above ``floor_m``; the height is
    held at ``floor_m`` while the vehicle still slides (climbing back when below it), and once it no longer slides the
    descent goes on at at least ``DESCENT_RATE_MPS``. Returns the thrust acceleration.
    """
    vz = vec.dot(v, up)
    v_h = vec.sub(v, vec.scale(up, vz))
    vh = vec.norm(v_h)
    tan_tilt = math.tan(DIVERT_TILT_RAD)
    a_h_cap = min(tan_tilt * g_mag, math.sqrt(max(a_max * a_max - g_mag * g_mag, 0.0)))
    t_null = vh / (0.8 * a_h_cap) if a_h_cap > 0.0 else 1e3
    dh = max(alt_m - floor_m, 0.0)
    a_stop = 0.5 * max(a_max - g_mag, 0.1)
    rate_stop = math.sqrt(2.0 * a_stop * dh)
    rate = min(dh / max(t_null, 1.0), rate_stop)
    if alt_m < floor_m:
        # Below the floor while still sliding: climb back to it (the height, measured, also
        # closes the loop: a vertical-speed estimate biased by a steep lean cannot sink us).
        rate = -DIVERT_HEIGHT_GAIN * (floor_m - alt_m)
    # Following the stopping curve decelerates at a_stop: fed forward, or the rate loop
    # lags it by a_stop / gain and reaches the floor that much too fast.
    a_ff = a_stop if rate == rate_stop and rate > DESCENT_RATE_MPS else 0.0
    if vh < HOLD_SPEED_MPS:
        rate = max(rate, DESCENT_RATE_MPS)
    a_up = vec.clamp(g_mag + a_ff + DIVERT_RATE_GAIN * (-rate - vz), 0.0, a_max)
    a_h = vec.scale(v_h, -DIVERT_NULL_GAIN)
    a_h_mag = vec.norm(a_h)
    a_h_max = min(tan_tilt * a_up, math.sqrt(max(a_max * a_max - a_up * a_up, 0.0)))
    if a_h_mag > a_h_max:
        a_h = vec.scale(a_h, a_h_max / a_h_mag)
    return vec.add(vec.scale(up, a_up), a_h)
