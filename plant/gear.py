"""Landing gear: four legs with footpads, crushable struts and friction against the terrain.

Each leg ends in a footpad at body position ``b_i = (R cos az_i, R sin az_i, -h)``
(``R`` = ``footpad_radius_m``, ``h`` = ``com_height_m``, legs 90 degrees apart from
``first_leg_azimuth_deg``). At the start of every contact sub-step the terrain under each
footpad is frozen as its tangent plane (Moon-fixed point ``g_i`` and upward normal ``n_i``,
from the terrain's analytic gradient); within the sub-step, with the footpad's Moon-fixed
position ``p`` and velocity relative to the ground ``v``:

* penetration ``d = n . (g - p)``; the strut's crushed stroke ``c`` (plastic, never
  recovers) takes part of it, the rest ``e = d - c`` is elastic; in contact while e > 0;
* normal force ``F_n = k e - c_d (n . v)``, at least 0; while stroke is left it is at most
  the crush load ``F_c`` (the honeycomb cartridge crushes at a constant load: ``c`` grows
  after the sub-step until ``k e = F_c``); once the stroke is used up it is not capped,
  and the load soon exceeds ``max_load_n`` (gear overload);
* friction: an anchor point on the ground per footpad (set when it lands); tangential
  force ``-k_t d_t - c_t v_t`` (``d_t`` the footpad's tangential offset from its anchor),
  at most ``mu F_n``; when it slides the anchor follows (stick-slip);
* the force acts at the footpad: ``F`` (MCI) on the centre of mass, ``b_i x F`` (body) as
  torque.

The plant integrates the rigid body with these forces by RK4 on sub-steps short enough
for the stiffest of the springs (``omega h <= 0.2``), deterministic. Static tip-over: on a
slope of angle ``theta`` the centre of mass, ``h`` above the footpad plane, moves ``h tan
theta`` downhill over the support square; it tips when that passes the downhill edge, at
``tan theta = R cos(45 deg) / h`` with the downhill direction between two legs and
``tan theta = R / h`` along a leg (:func:`static_tip_angle_deg`).
"""

from __future__ import annotations

import math

from plant.config import GearConfig
from plant.dynamics import quat_to_matrix
from plant.moon import Moon
from plant.terrain import Terrain

N_LEGS = 4
OMEGA_H = 0.2        # largest (rate x sub-step) of the contact integration


def static_tip_angle_deg(footpad_radius_m: float, com_height_m: float,
                         downhill_from_leg_deg: float) -> float:
    """Slope at which the vehicle standing on it tips over (friction holding), degrees.

    ``downhill_from_leg_deg``: angle between the downhill direction and the nearest leg,
    0 (a leg points downhill: the support edge is that footpad, ``R`` out) to 45 (between
    two legs: the edge between them, ``R cos 45`` out); in general the edge of the square
    of footpads is ``R cos(45) / cos(45 - angle)`` out along the downhill direction.
    """
    a = math.radians(min(45.0, abs(downhill_from_leg_deg)))
    edge = footpad_radius_m * math.cos(math.radians(45.0)) / math.cos(math.radians(45.0) - a)
    return math.degrees(math.atan2(edge, com_height_m))


class LandingGear:
    """The four legs' geometry, their state during contact, and the forces they make."""

    def __init__(self, cfg: GearConfig, terrain: Terrain, moon: Moon, dry_mass_kg: float,
                 inertia_kgm2: tuple[float, float, float]) -> None:
        self.cfg = cfg
        self.terrain = terrain
        self.moon = moon
        az0 = math.radians(cfg.first_leg_azimuth_deg)
        r, h = cfg.footpad_radius_m, cfg.com_height_m
        self.pads_body = [(r * math.cos(az0 + i * 0.5 * math.pi),
                           r * math.sin(az0 + i * 0.5 * math.pi), -h) for i in range(N_LEGS)]
        self.body_point = (0.0, 0.0, -(h - cfg.body_clearance_m))
        # Reach of the lowest vehicle point below the centre of mass, for a cheap test.
        self.reach_m = math.hypot(r, h)
        self.k = cfg.stiffness_n_per_m
        self.c = cfg.damping_n_s_per_m
        # Sub-steps: the fastest of the spring-mass and damper rates with a quarter of the
        # dry mass on one leg (or the pitch inertia over its arm), omega h <= OMEGA_H.
        m_leg = 0.25 * dry_mass_kg
        m_rot = min(inertia_kgm2) / (r * r + h * h)
        m_eff = min(m_leg, m_rot)
        self.rate_radps = max(math.sqrt(self.k / m_eff), self.c / m_eff)
        self.reset()

    def substeps(self, dt_s: float) -> int:
        return max(1, math.ceil(dt_s * self.rate_radps / OMEGA_H))

    def reset(self) -> None:
        self.stroke_m = [0.0] * N_LEGS          # crushed, per leg
        self.anchor: list[tuple[float, float, float] | None] = [None] * N_LEGS
        self.planes: list[tuple[tuple[float, float, float], tuple[float, float, float]] | None] = \
            [None] * N_LEGS
        self.in_contact = [False] * N_LEGS
        self.load_n = [0.0] * N_LEGS            # magnitude of the contact force, last sub-step
        self.max_load_n = [0.0] * N_LEGS
        self.max_stroke_m = [0.0] * N_LEGS

    # --- geometry --------------------------------------------------------------------------
    def _pads_fixed(self, s: list[float], t_s: float):
        """Footpad positions and ground-relative velocities, Moon-fixed, and the rotation
        matrix body -> MCI."""
        rot = quat_to_matrix(s[6:10])
        wx, wy, wz = s[10], s[11], s[12]
        moon = self.moon
        w = moon.rotation_rad_s
        out = []
        for bx, by, bz in self.pads_body:
            ox = rot[0][0] * bx + rot[0][1] * by + rot[0][2] * bz
            oy = rot[1][0] * bx + rot[1][1] * by + rot[1][2] * bz
            oz = rot[2][0] * bx + rot[2][1] * by + rot[2][2] * bz
            px, py, pz = s[0] + ox, s[1] + oy, s[2] + oz
            # w_body x b, to MCI
            cx, cy, cz = wy * bz - wz * by, wz * bx - wx * bz, wx * by - wy * bx
            vx = s[3] + rot[0][0] * cx + rot[0][1] * cy + rot[0][2] * cz + w * py
            vy = s[4] + rot[1][0] * cx + rot[1][1] * cy + rot[1][2] * cz - w * px
            vz = s[5] + rot[2][0] * cx + rot[2][1] * cy + rot[2][2] * cz
            out.append((moon.to_fixed(px, py, pz, t_s), moon.to_fixed(vx, vy, vz, t_s)))
        return out, rot

    def lowest_altitude_m(self, s: list[float], t_s: float) -> float:
        """Smallest height of a footpad or the body's lowest point above the terrain."""
        rot = quat_to_matrix(s[6:10])
        best = math.inf
        for bx, by, bz in (*self.pads_body, self.body_point):
            p = self.moon.to_fixed(s[0] + rot[0][0] * bx + rot[0][1] * by + rot[0][2] * bz,
                                   s[1] + rot[1][0] * bx + rot[1][1] * by + rot[1][2] * bz,
                                   s[2] + rot[2][0] * bx + rot[2][1] * by + rot[2][2] * bz, t_s)
            best = min(best, self.terrain.altitude_m(p))
        return best

    def body_altitude_m(self, s: list[float], t_s: float) -> float:
        """Height of the body's lowest point (engine bell) above the terrain, m."""
        rot = quat_to_matrix(s[6:10])
        bx, by, bz = self.body_point
        p = self.moon.to_fixed(s[0] + rot[0][0] * bx + rot[0][1] * by + rot[0][2] * bz,
                               s[1] + rot[1][0] * bx + rot[1][1] * by + rot[1][2] * bz,
                               s[2] + rot[2][0] * bx + rot[2][1] * by + rot[2][2] * bz, t_s)
        return self.terrain.altitude_m(p)

    # --- sub-step --------------------------------------------------------------------------
    def begin_substep(self, s: list[float], t_s: float) -> None:
        """Freeze the ground plane under each footpad near the ground; set new anchors."""
        pads, _ = self._pads_fixed(s, t_s)
        for i, (p, _v) in enumerate(pads):
            g, n, above = self.terrain.ground_plane(p)
            if above > 1.0 + self.stroke_m[i]:
                self.planes[i] = None               # far from the ground: no force possible
                self.anchor[i] = None
                continue
            self.planes[i] = (g, n)
            if self.anchor[i] is None:
                d = n[0] * (g[0] - p[0]) + n[1] * (g[1] - p[1]) + n[2] * (g[2] - p[2])
                if d - self.stroke_m[i] > 0.0:      # touching: the pad's point on the ground
                    self.anchor[i] = (p[0] + d * n[0], p[1] + d * n[1], p[2] + d * n[2])

    def _leg_force(self, i: int, p, v) -> tuple[float, float, float, float]:
        """(Fx, Fy, Fz) Moon-fixed and the normal force of leg i at footpad state p, v."""
        plane = self.planes[i]
        if plane is None:
            return 0.0, 0.0, 0.0, 0.0
        (gx, gy, gz), (nx, ny, nz) = plane
        d = nx * (gx - p[0]) + ny * (gy - p[1]) + nz * (gz - p[2])
        e = d - self.stroke_m[i]
        if e <= 0.0:
            return 0.0, 0.0, 0.0, 0.0
        vn = nx * v[0] + ny * v[1] + nz * v[2]
        cfg = self.cfg
        fn = self.k * e - self.c * vn
        if fn < 0.0:
            fn = 0.0
        elif fn > cfg.crush_load_n and self.stroke_m[i] < cfg.stroke_m:
            fn = cfg.crush_load_n
        # Tangential velocity and offset from the anchor.
        vtx, vty, vtz = v[0] - vn * nx, v[1] - vn * ny, v[2] - vn * nz
        a = self.anchor[i]
        if a is not None:
            ox, oy, oz = p[0] - a[0], p[1] - a[1], p[2] - a[2]
            on = nx * ox + ny * oy + nz * oz
            ox, oy, oz = ox - on * nx, oy - on * ny, oz - on * nz
        else:
            ox = oy = oz = 0.0
        kt, ct = cfg.tangential_stiffness_n_per_m, cfg.tangential_damping_n_s_per_m
        fx, fy, fz = -kt * ox - ct * vtx, -kt * oy - ct * vty, -kt * oz - ct * vtz
        ft = math.sqrt(fx * fx + fy * fy + fz * fz)
        lim = cfg.friction * fn
        if ft > lim:
            k = lim / ft
            fx, fy, fz = fx * k, fy * k, fz * k
        return fn * nx + fx, fn * ny + fy, fn * nz + fz, fn

    def forces(self, s: list[float], t_s: float
               ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """Total contact force (MCI, N) and torque (body axes, N m) in state ``s``."""
        if not any(self.planes):
            return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
        pads, rot = self._pads_fixed(s, t_s)
        moon = self.moon
        fx = fy = fz = tx = ty = tz = 0.0
        for i, (p, v) in enumerate(pads):
            gx, gy, gz, fn = self._leg_force(i, p, v)
            if fn == 0.0 and gx == 0.0 and gy == 0.0 and gz == 0.0:
                continue
            ix, iy, iz = moon.to_inertial(gx, gy, gz, t_s)
            fx, fy, fz = fx + ix, fy + iy, fz + iz
            # In body axes: rot^T F; torque b x F_body.
            bx_, by_, bz_ = (rot[0][0] * ix + rot[1][0] * iy + rot[2][0] * iz,
                             rot[0][1] * ix + rot[1][1] * iy + rot[2][1] * iz,
                             rot[0][2] * ix + rot[1][2] * iy + rot[2][2] * iz)
            px, py, pz = self.pads_body[i]
            tx += py * bz_ - pz * by_
            ty += pz * bx_ - px * bz_
            tz += px * by_ - py * bx_
        return (fx, fy, fz), (tx, ty, tz)

    def end_substep(self, s: list[float], t_s: float) -> None:
        """Crush the struts, let sliding anchors follow, record loads and contact."""
        pads, _ = self._pads_fixed(s, t_s)
        cfg = self.cfg
        for i, (p, v) in enumerate(pads):
            fx, fy, fz, fn = self._leg_force(i, p, v)
            self.load_n[i] = load = math.sqrt(fx * fx + fy * fy + fz * fz)
            if load > self.max_load_n[i]:
                self.max_load_n[i] = load
            plane = self.planes[i]
            if plane is None:
                self.in_contact[i] = False
                continue
            (gx, gy, gz), (nx, ny, nz) = plane
            d = nx * (gx - p[0]) + ny * (gy - p[1]) + nz * (gz - p[2])
            e = d - self.stroke_m[i]
            self.in_contact[i] = e > 0.0
            if e <= 0.0:
                self.anchor[i] = None
                continue
            if self.k * e > cfg.crush_load_n and self.stroke_m[i] < cfg.stroke_m:
                self.stroke_m[i] = min(cfg.stroke_m, d - cfg.crush_load_n / self.k)
                self.max_stroke_m[i] = max(self.max_stroke_m[i], self.stroke_m[i])
            a = self.anchor[i]
            if a is None:
                continue
            # Stick-slip: if the spring would pull harder than friction allows, the anchor
            # follows the footpad to where it pulls exactly that much.
            on_x, on_y, on_z = p[0] + d * nx, p[1] + d * ny, p[2] + d * nz   # on the plane
            ox, oy, oz = on_x - a[0], on_y - a[1], on_z - a[2]
            off = math.sqrt(ox * ox + oy * oy + oz * oz)
            reach = cfg.friction * max(fn, 0.0) / cfg.tangential_stiffness_n_per_m
            if off > reach:
                k = reach / off
                self.anchor[i] = (on_x - ox * k, on_y - oy * k, on_z - oz * k)

    @property
    def legs_in_contact(self) -> int:
        return sum(self.in_contact)
