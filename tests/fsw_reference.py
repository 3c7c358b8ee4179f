"""The unoptimised forms of the hot paths that speed work rewrote, kept as references.

Each function here is the code as it stood at fsw 0.6.0 (main 1f9f479), verbatim but for
the ``self`` of a method, before it was written out for speed; ``tests/test_speed_identity.py``
checks the rewritten code against these, function by function on random inputs and over a
whole run (the history must be the same bit for bit). :data:`PATCHES` lists
``(owner, attribute name, reference)``: patched in, a run takes the old paths throughout.
"""

from __future__ import annotations

import math

from fsw import control, guidance, kf, vec
from fsw.nav import Navigator, gravity
from fsw.velnav import VelocimeterFilter


def nav_propagate(self, imu, calibrating=False):
    """fsw.nav.Navigator.propagate."""
    dt_sum = 0.0
    fx = fy = fz = 0.0
    sf = (0.0, 0.0, 0.0)          # the frame's specific-force increment, Moon-fixed
    w = self.omega
    c, sn = self._c, self._s      # the Moon's turn (its change over a frame: 1e-8 rad)
    for s in imu:
        t_us = s[0]
        dt = (t_us - self.t_us) * 1e-6
        if dt <= 0.0:
            continue
        self.t_us = t_us
        dt_sum += dt
        if calibrating:
            self._cal_sum[0] += s[1]
            self._cal_sum[1] += s[2]
            self._cal_sum[2] += s[3]
            self._cal_time_s += dt
        dv_b = (s[1] - self.accel_bias[0] * dt, s[2] - self.accel_bias[1] * dt,
                s[3] - self.accel_bias[2] * dt)
        dth = (s[4], s[5], s[6])
        # Attitude: rotate by the delta-angle (half before, half after for dv).
        q_mid = vec.qmul(self.q_i, vec.qrotvec(vec.scale(dth, 0.5)))
        self.q_i = vec.qnormalize(vec.qmul(self.q_i, vec.qrotvec(dth)))
        dv_i = vec.rotate(q_mid, dv_b)
        fx += dv_b[0]
        fy += dv_b[1]
        fz += dv_b[2]
        r = self.r
        v_old = self.v
        if self.legacy:
            # Gravity where the unaided inertial solution is (feedforward aiding).
            g = gravity(vec.sub(r, self.ins_offset_m))
            self.ins_offset_m = vec.add(self.ins_offset_m,
                                        vec.scale(self.ins_offset_mps, dt))
        else:
            g = gravity(r)
        if w != 0.0:
            # Into the turning frame: dv Moon-fixed, gravity plus the Coriolis and
            # centrifugal accelerations.
            dv_i = (c * dv_i[0] + sn * dv_i[1], -sn * dv_i[0] + c * dv_i[1], dv_i[2])
            g = (g[0] + w * (2.0 * v_old[1] + w * r[0]),
                 g[1] + w * (w * r[1] - 2.0 * v_old[0]), g[2])
        sf = vec.add(sf, dv_i)
        dv = vec.add(dv_i, vec.scale(g, dt))
        self._dv_acc = vec.add(self._dv_acc, dv)
        self.v = vec.add(v_old, dv)
        self._move(vec.scale(vec.add(v_old, self.v), 0.5 * dt))
        self.last_rate_body = vec.scale(dth, 1.0 / dt)
    self._turn(self.t_us)
    if dt_sum > 0.0:
        hist = self._hist
        hist.append((self.t_us, self.q, self._dv_acc))
        if len(hist) > self.HISTORY_FRAMES:
            hist.pop(0)
        self.specific_force_mps2 = math.sqrt(fx * fx + fy * fy + fz * fz) / dt_sum
        if not self.legacy:
            self._tilt_step(vec.scale(sf, 1.0 / dt_sum), dt_sum)
        self._propagate_cov(dt_sum, self.specific_force_mps2)




def nav_tilt_step(self, f, dt):
    """The estimated tilt error's vertical acceleration, applied to the strapdown state.

    An attitude error ``e`` (rad, a small rotation) adds ``e . (f x up)`` of vertical
    acceleration to the navigated one (``f`` the specific force): a braking burn's
    horizontal thrust, tilted a milliradian, moves the height by metres a minute. The
    axis that matters is the horizontal one normal to the braking thrust (fixed once
    the thrust is); ``tilt_rad`` is the error about it, ``drift_radps`` its rate.
    """
    if self.tilt_off:
        return
    up = self.up()
    fu = vec.cross(f, up)
    if self.tilt_axis is None:
        if vec.norm(fu) < self.TILT_AXIS_MIN_MPS2:
            self.tilt_coupling_mps2 = 0.0
            return
        self.tilt_axis = vec.unit(fu)
    c = vec.dot(fu, self.tilt_axis)
    self.tilt_coupling_mps2 = c
    a = c * self.tilt_rad + 0.5 * c * self.drift_radps * dt
    self.v = vec.add(self.v, vec.scale(up, a * dt))
    self._move(vec.scale(up, 0.5 * a * dt * dt))
    self.tilt_rad += self.drift_radps * dt


def nav_propagate_cov(self, dt, f_mps2):
    """P' = F P F^T + Q over ``dt``.

    The states are the errors of height, vertical speed, terrain height, tilt (about
    ``tilt_axis``) and tilt drift; ``h' = v``, ``v' = c tilt``, ``tilt' = drift``, with
    ``c`` the vertical acceleration per radian of tilt (``tilt_coupling_mps2``). The
    legacy variant keeps the first three (its tilt and drift have no variance).

    The terrain under the lander changes as it flies (a random walk in the distance
    flown); its variance is held at what the map knows at this distance from the site
    by scaling the terrain state's whole row and column (a congruence: the covariance
    stays positive semi-definite), never by clipping the variance alone.
    """
    P, n = self.P, self.N
    # Vertical acceleration error: the accelerometer's noise, and the thrust seen
    # through an attitude error (it turns a braking burn's horizontal thrust upwards).
    a_tilt = 0.0 if self.legacy else self.TILT_SIGMA_RAD * f_mps2
    self.process_accel_mps2 = math.sqrt(self.ACCEL_NOISE_MPS2 ** 2 + a_tilt * a_tilt)
    q_a = self.process_accel_mps2 * self.process_accel_mps2 * dt
    if self.legacy:
        p00 = P[0] + 2.0 * dt * P[1] + dt * dt * P[n + 1]
        p01 = P[1] + dt * P[n + 1]
        p02 = P[2] + dt * P[n + 2]
        P[0], P[1], P[2] = p00, p01, p02
        P[n], P[2 * n] = p01, p02
        P[n + 1] += q_a
        return
    c = self.tilt_coupling_mps2
    c03, c04 = 0.5 * c * dt * dt, c * dt * dt * dt / 6.0
    c13, c14 = c * dt, 0.5 * c * dt * dt
    # F P F^T with F = I + E (E: (0,1) dt, (0,3) c03, (0,4) c04, (1,3) c13, (1,4) c14,
    # (3,4) dt): rows 0, 1, 3 in that order read only rows not yet changed; then the
    # columns the same way.
    r0, r1, r3, r4 = 0, n, 3 * n, 4 * n
    for j in range(n):
        P[r0 + j] += dt * P[r1 + j] + c03 * P[r3 + j] + c04 * P[r4 + j]
        P[r1 + j] += c13 * P[r3 + j] + c14 * P[r4 + j]
        P[r3 + j] += dt * P[r4 + j]
    for i in range(n):
        ri = i * n
        P[ri] += dt * P[ri + 1] + c03 * P[ri + 3] + c04 * P[ri + 4]
        P[ri + 1] += c13 * P[ri + 3] + c14 * P[ri + 4]
        P[ri + 3] += dt * P[ri + 4]
    for i in range(n):          # exactly symmetric (the sums above ran in two orders)
        for j in range(i + 1, n):
            P[j * n + i] = P[i * n + j]
    # The accelerometer: white noise, and its slowly varying bias and scale error as
    # white noise of the same variance over their correlation time.
    q_acc = self.q_vrw + self.q_accel_bias + \
        (self.accel_scale * f_mps2) ** 2 * self.accel_tau_s
    P[n + 1] += q_a + q_acc * dt
    P[3 * n + 3] += self.q_tilt * dt
    P[4 * n + 4] += self.q_drift * dt
    v_h = vec.norm(vec.sub(self.v, vec.scale(self.up(), self.vertical_speed_mps())))
    P[2 * n + 2] += (self.TERRAIN_RATE_M_PER_M * v_h) ** 2 * dt
    cap = self.map_sigma_m()
    if P[2 * n + 2] > cap * cap:
        # Known no better than the map: the estimate relaxes towards the map's
        # (the datum) with its spread -- one linear map of state and covariance.
        k = cap / math.sqrt(P[2 * n + 2])
        kf.scale_state(P, n, 2, k)
        self.terrain_m *= k


def nav_r(self):
    """fsw.nav.Navigator.r (a property)."""
    return vec.add(self.origin, self.d)


def nav_up(self):
    """fsw.nav.Navigator.up."""
    return vec.unit(self.r)


def nav_altitude_m(self):
    """Navigated altitude above the landing-site datum."""
    # |R u + d| - R, written so that it keeps its precision in float32.
    d, R = self.d, self.site_radius_m
    ud = vec.dot(self.site_up, d)
    num = 2.0 * R * ud + vec.dot(d, d)
    return num / (math.sqrt(R * R + num) + R)


def nav_vertical_speed_mps(self):
    """fsw.nav.Navigator.vertical_speed_mps."""
    return vec.dot(self.v, self.up())


# ----------------------------------------------------------------- fsw/velnav.py
# VelocimeterFilter.propagate's element indices in the 6 x 6 covariance (row-major):
# rows and columns of v (0-2) gaining dt times those of b (3-5); the elements of the cross
# blocks and of the b block; the upper triangle with the lower element it is copied to.
_N = 6
_ROWS = [(i * _N + j, (i + 3) * _N + j) for i in range(3) for j in range(_N)]
_COLS = [(j * _N + i, j * _N + i + 3) for j in range(_N) for i in range(3)]
_ONCE = [r * _N + c for r in range(_N) for c in range(_N) if (r >= 3) != (c >= 3)]
_TWICE = [r * _N + c for r in range(3, _N) for c in range(3, _N)]
_UPPER = [(i * _N + j, j * _N + i) for i in range(_N) for j in range(i + 1, _N)]


def velnav_propagate(self, dt, q_mps2, nav=None):
    """Velocity error ``dv' = b``, unmodelled acceleration ``b' = -b / tau`` (Gauss-
    Markov); the velocity error's variance grows by ``q_mps2^2 dt`` on every axis. The
    estimated ``b`` (the thrust seen through an attitude error, which the strapdown
    cannot know) is added to ``nav``'s velocity."""
    if dt <= 0.0:
        return
    n, P = self.N, self.P
    phi = math.exp(-dt / self.ACCEL_TAU_S)
    # P <- F P F^T with F = [[I, dt I], [0, phi I]], per 3x3 block, over the index
    # lists below: every element gets the operations it got from loops over the rows
    # and columns, in the same order, so the same bits, for less interpreter work.
    for a, b in _ROWS:          # rows i: v_i + dt b_i
        P[a] += dt * P[b]
    for a, b in _COLS:          # columns i: the same on the right
        P[a] += dt * P[b]
    for a in _ONCE:             # the cross blocks: phi once (row or column)
        P[a] *= phi
    for a in _TWICE:            # the b block: phi by row, then by column
        P[a] = P[a] * phi * phi
    q = q_mps2 * q_mps2 * dt
    qb = self.ACCEL_SIGMA_MPS2 ** 2 * (1.0 - phi * phi)
    for i in range(3):
        P[i * n + i] += q
        P[(i + 3) * n + i + 3] += qb
    for a, b in _UPPER:         # exactly symmetric (the sums above ran in two orders)
        P[b] = P[a]
    b = self.accel
    if nav is not None and self.healthy:
        # Only while the beams keep measuring it: an estimate left from a unit that has
        # gone silent is flown no further (its decay alone, from 0.01 m/s^2 learnt in
        # 13 s, left a blind lander 1 m/s off in vertical speed).
        nav.v = vec.add(nav.v, vec.scale(b, dt))
    self.accel = vec.scale(b, phi)



def velnav_fuse(self, nav, sample):
    """Fuse one sample ``[t_us, v0, v1, v2, r0, r1, r2, mask]`` if it is new."""
    self.used = False
    self.rejected = False
    if self.last_accept_us is not None and \
            (nav.t_us - self.last_accept_us) * 1e-6 > self.UNHEALTHY_AFTER_S:
        self.healthy = False
    if sample is None or sample[0] == self.last_t_us:
        return
    self.last_t_us = sample[0]
    # A frozen unit repeats its last sample to the bit under new times; a working one
    # never does (its noise alone is centimetres per second). Not measurements.
    values = (sample[1], sample[2], sample[3], sample[4], sample[5], sample[6])
    # (A sample with no valid beam carries zeros: nothing to repeat.)
    self._frozen = self._frozen + 1 if values == self._last_values and \
        (values[3] > 0.0 or values[4] > 0.0 or values[5] > 0.0) else 0
    self._last_values = values
    self.frozen = self._frozen >= self.FROZEN_SAMPLES
    if self.frozen:
        self.rejected = True
        return
    mask = int(sample[7])
    if mask == 0:
        # IM-1's lesson: data that arrive without their valid flag are still data. An
        # invalid beam carries zeros; a beam with a range is weighed (and gated) anyway.
        for k in range(3):
            if sample[4 + k] > 0.0:
                mask |= 1 << k
        if mask == 0:
            return
    if not self.ever_valid:
        # The first measurement: the navigator's own tilt model is handed over to this
        # filter's unmodelled acceleration (the same thrust seen through the same tilt).
        self.accel = vec.add(self.accel, nav.hand_over_tilt())
    # The navigated attitude and velocity at the sample's time.
    q_s, v_s = nav.at(sample[0])
    r = self.noise_mps * self.noise_mps
    P, n = self.P, self.N
    dv = (0.0, 0.0, 0.0)
    db = (0.0, 0.0, 0.0)
    accepted = rejected = 0
    for k in range(3):
        if not mask & (1 << k):
            continue
        d = vec.rotate(q_s, self.beams[k])
        H = (-d[0], -d[1], -d[2], 0.0, 0.0, 0.0)
        pred = vec.dot(H, vec.add(v_s, dv))
        y = sample[1 + k] - pred
        h, s = kf.innovation_var(P, n, H, r)
        if y * y > self.GATE_SIGMA * self.GATE_SIGMA * s and self._rejects < self.REBASE_AFTER:
            rejected += 1
            continue
        K = [x / s for x in h]
        dv = vec.add(dv, (K[0] * y, K[1] * y, K[2] * y))
        db = vec.add(db, (K[3] * y, K[4] * y, K[5] * y))
        kf.update(P, n, h, s, K)
        accepted += 1
    # The ranges: three more height measurements (a stuck or lost altimeter is then
    # not the end of height knowledge).
    for k in range(3):
        rng = sample[4 + k]
        if mask & (1 << k) and rng > 0.0:
            sig = math.sqrt(self.range_noise_m ** 2 + (self.range_noise_fraction * rng) ** 2)
            nav.fuse_beam_range(sample[0], rng, vec.rotate(q_s, self.beams[k]), sig)
    if accepted:
        self._apply(nav, dv)
        self.accel = vec.add(self.accel, db)
        self._rejects = 0
        self.used = True
        self.healthy = True
        self.ever_valid = True
        self.last_accept_us = sample[0]
    if rejected:
        self.rejected = True
        if not accepted:
            self._rejects += 1
            if self._rejects >= self.REBASE_AFTER:
                # Long disagreement: open the filter up and take the beams next time.
                s0 = self.VEL_SIGMA0_MPS ** 2
                for i in range(3):
                    P[i * n + i] = max(P[i * n + i], s0)


# ----------------------------------------------------------------- fsw/control.py
def control_attitude_torque(q, w_body, d_inertial, inertia, max_torque):
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
    w_des = [control.K_ANGLE * e_b[0], control.K_ANGLE * e_b[1], 0.0]
    w_mag = math.sqrt(w_des[0] ** 2 + w_des[1] ** 2)
    if w_mag > control.MAX_RATE_RADPS:
        w_des[0] *= control.MAX_RATE_RADPS / w_mag
        w_des[1] *= control.MAX_RATE_RADPS / w_mag
    torque = []
    for i in range(3):
        t = inertia[i] * control.K_RATE * (w_des[i] - w_body[i])
        torque.append(vec.clamp(t, -max_torque[i], max_torque[i]))
    return (torque[0], torque[1], torque[2]), angle


# ----------------------------------------------------------------- fsw/guidance.py
def guidance_local(self, d, v, alt_m=None):
    """Curvilinear state from the position ``d`` relative to the site's datum point:
    (alt, downrange, crossrange), their rates, and the local axes. ``alt_m`` may give the
    altitude already computed (float32-safe, see nav.Navigator.altitude_m)."""
    R = self.radius_m
    r = vec.add(vec.scale(self.up, R), d)
    rn = vec.norm(r)
    u = vec.scale(r, 1.0 / rn)
    e_a = vec.unit(vec.cross(self.north, u))
    e_c = vec.cross(u, e_a)
    down, cross = self.ground(d)
    k = R / rn
    pos = (rn - R if alt_m is None else alt_m, down, cross)
    vel = (vec.dot(v, u), vec.dot(v, e_a) * k, vec.dot(v, e_c) * k)
    return pos, vel, (u, e_a, e_c)


def guidance_to_frame(self, a_local, axes):
    """A local (up, downrange, crossrange) vector in the navigation (Moon-fixed) frame."""
    u, e_a, e_c = axes
    return vec.add(vec.add(vec.scale(u, a_local[0]), vec.scale(e_a, a_local[1])),
                   vec.scale(e_c, a_local[2]))


def guidance_ground(self, d):
    """(downrange_m, crossrange_m) of the point under ``d`` (relative to the site's datum
    point), arc lengths from the site; only small numbers are formed (float32-safe)."""
    R = self.radius_m
    x = R + vec.dot(d, self.up)
    a = math.atan2(vec.dot(d, self.east), x)
    n = vec.dot(d, self.north)
    c = math.atan2(n, math.sqrt(x * x + vec.dot(d, self.east) ** 2))
    return a * R, c * R


def guidance_zem_zev_terms(r, v, g, r_t, v_t, t_go):
    """Zero-effort miss and zero-effort velocity error after ``t_go``; ``g`` is the pair
    (gravity as the position feels it, as the velocity feels it), local vectors."""
    zem = vec.sub(r_t, vec.add(vec.add(r, vec.scale(v, t_go)), vec.scale(g[0], 0.5 * t_go * t_go)))
    zev = vec.sub(v_t, vec.add(v, vec.scale(g[1], t_go)))
    return zem, zev


def guidance_zem_zev(r, v, g, r_t, v_t, t_go):
    """Thrust acceleration that reaches (r_t, v_t) in t_go under constant gravity g."""
    zem, zev = guidance._zem_zev_terms(r, v, g, r_t, v_t, t_go)
    return vec.sub(vec.scale(zem, 6.0 / (t_go * t_go)), vec.scale(zev, 2.0 / t_go))


# ----------------------------------------------------------------- fsw/kf.py
def kf_innovation_var(P, n, H, r):
    """(h, S): ``h = P H^T`` and the innovation variance ``S = H P H^T + r``."""
    h = []
    for i in range(n):
        row = i * n
        acc = 0.0
        for j in range(n):
            if H[j] != 0.0:
                acc += P[row + j] * H[j]
        h.append(acc)
    s = r
    for j in range(n):
        if H[j] != 0.0:
            s += H[j] * h[j]
    return h, s


def kf_update(P, n, h, s, K):
    """Joseph-form covariance update for gain ``K`` (``h``, ``s`` from innovation_var)."""
    for i in range(n):
        ki, hi = K[i], h[i]
        row = i * n
        for j in range(i, n):
            v = P[row + j] - ki * h[j] - hi * K[j] + s * ki * K[j]
            P[row + j] = v
            P[j * n + i] = v


def kf_psd_fault(P, n, tol=1e-6):
    """True when ``P`` is not a symmetric positive semi-definite matrix (or not finite)."""
    scale = 0.0
    for i in range(n):
        d = P[i * n + i]
        if not (d == d) or d in (math.inf, -math.inf):  # NaN or infinite
            return True
        if d > scale:
            scale = d
        for j in range(i + 1, n):
            if P[i * n + j] != P[j * n + i]:
                return True
    if scale <= 0.0:
        return scale < 0.0
    floor = -tol * scale
    # LDL^T, stopping at the first negative pivot; a zero pivot (a state known exactly)
    # needs a zero column below it.
    L = [0.0] * (n * n)
    D = [0.0] * n
    for j in range(n):
        d = P[j * n + j]
        for k in range(j):
            d -= L[j * n + k] * L[j * n + k] * D[k]
        if d < floor:
            return True
        D[j] = d
        for i in range(j + 1, n):
            v = P[i * n + j]
            for k in range(j):
                v -= L[i * n + k] * L[j * n + k] * D[k]
            if d > tol * scale:
                L[i * n + j] = v / d
            elif abs(v) > math.sqrt(tol) * scale:
                return True  # a zero variance with a non-zero covariance
    return False


PATCHES = [
    (Navigator, "propagate", nav_propagate),
    (Navigator, "_tilt_step", nav_tilt_step),
    (Navigator, "_propagate_cov", nav_propagate_cov),
    (Navigator, "r", property(nav_r)),
    (Navigator, "up", nav_up),
    (Navigator, "altitude_m", nav_altitude_m),
    (Navigator, "vertical_speed_mps", nav_vertical_speed_mps),
    (VelocimeterFilter, "propagate", velnav_propagate),
    (VelocimeterFilter, "fuse", velnav_fuse),
    (control, "attitude_torque", control_attitude_torque),
    (guidance.SiteGeometry, "local", guidance_local),
    (guidance.SiteGeometry, "to_frame", guidance_to_frame),
    (guidance.SiteGeometry, "ground", guidance_ground),
    (guidance, "_zem_zev_terms", guidance_zem_zev_terms),
    (guidance, "zem_zev", guidance_zem_zev),
    (kf, "innovation_var", kf_innovation_var),
    (kf, "update", kf_update),
    (kf, "psd_fault", kf_psd_fault),
]
