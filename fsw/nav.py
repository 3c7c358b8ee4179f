"""Navigation: strapdown integration of IMU increments plus an altimeter Kalman filter.

The strapdown part integrates delta-angles into the attitude quaternion (in the Moon-centred
inertial frame, MCI) and delta-velocities into velocity and position in the **Moon-fixed**
frame: the Moon turns at ``omega`` (the HELLO config's ``moon.rotation_rad_s``) about MCI +z,
the frames coincide at t = 0, and in the turning frame the landing site stays put and the
velocity is the velocity over the ground (what the velocimeter measures and what touchdown
is judged on). The velocity equation then carries the Coriolis and centrifugal terms,
``dv/dt = f + g - 2 w x v - w x (w x r)``. The attitude is integrated in MCI and turned into
the Moon-fixed frame once per frame (``q``): the Moon's turn over one IMU sample (1e-8 rad)
would be lost in a float32 quaternion's rounding, its turn since t = 0 is not. Time comes
only from the samples' integer microseconds.

The altimeter filter has three states: the errors of altitude above the landing-site datum
(h) and of vertical speed, and the terrain height under the lander above that datum (t).
The altimeter measures h - t (a slant range turned into altitude with the navigated
attitude, corrected for the sample's latency). The terrain state wanders as the lander
flies (its variance grows with horizontal speed; where it would exceed what the map is
assumed to know near the site, estimate and covariance of the terrain are scaled back together
towards the map's datum), so over unknown ground the filter learns the terrain, and in a
hover it corrects the altitude. A 3x3 covariance with scalar updates in Joseph form
(``fsw/kf.py``), propagated once per frame: cheap enough for a microcontroller. The vertical
speed's process noise includes the thrust seen through an attitude error (a braking burn's
horizontal thrust turned up by a milliradian moves the height by metres), so the filter
does not blame its own drift on the terrain. :meth:`Navigator.cov_fault` checks every
cycle that the covariance is still one (telemetry flag ``FLAG_NAV_COV_FAULT``).

Two variants of the altimeter logic (``variant``):

* ``default`` -- fault detection, isolation and recovery: samples outside the innovation
  gate are rejected, but a run of rejected samples that agree with each other (persistence,
  and consistency with the IMU-propagated vertical rate) is a terrain step, not a broken
  sensor: the terrain state is re-based onto it. Rejected samples that disagree with each
  other mark the altimeter unhealthy. ``alt_overdue`` says the altimeter should have been
  valid by now (below ``EXPECT_VALID_BELOW_M``) and is not: guidance then limits the
  descent rate and plans a landing without it.
* ``legacy`` -- the weaknesses that failed in flight: the first valid sample is trusted
  completely (the altitude is reset to it; until then the IMU-propagated altitude is
  trusted); there is no terrain state; a sample that jumps outside the gate by more than
  ``LEGACY_JUMP_M`` is taken for a broken sensor and the altimeter is ignored from then on.
  Its altimeter aiding is feedforward (open loop): the corrections go into the output
  (position, velocity) and the inertial solution under it runs on unaided, its gravity
  computed where the inertial solution is (``ins_offset_m``: the output less the inertial
  position). A height reset by thousands of metres then does not move the gravity the
  vertical channel integrates (a 4.5 km reset would make it 0.008 m/s^2 stronger).

Default only: an altimeter that repeats its last range to the bit is frozen (a real unit's
noise never repeats); its samples are rejected. The velocimeter's beam ranges
(``fsw/velnav.py``) are height measurements too (:meth:`Navigator.fuse_beam_range`), so a
stuck or lost altimeter does not end height knowledge when the lander has one. With both,
two sensors vote: an altimeter whose samples move together while the beams (used within
``BEAMS_RECENT_S``) still agree with us has a fault of its own (a bias, a scale error) and
is not taken for a terrain step (``alt_vetoed``) -- if it says we are higher; an altimeter
that says, steadily, that we are lower than such beams is followed and the beams' ranges
are given up (``beams_disputed``: two units disagree, nothing tells which is biased, and
the lower height is the safe one); beams that disagree together from their first sample
on, or while the altimeter is unhealthy, re-base the terrain onto them. An altimeter so
followed that then drifts the terrain estimate ``MAP_GATE_SIGMA`` map sigmas (off the
datum, and since its last step) is the faulty unit after all (a range scale error): it is isolated for good (``alt_isolated``) and the
beams are heights again (fsw 0.8.1).

During the engine-off coast the accelerometer should read zero: the mean reading is the
accelerometer bias, estimated and removed from then on.
"""

import math

from fsw import kf, vec

GM_M3PS2 = 4.902800118e12


def gravity(r):
    r2 = vec.dot(r, r)
    k = -GM_M3PS2 / (r2 * math.sqrt(r2))
    return vec.scale(r, k)


class Navigator:
    """Inertial navigation with altimeter aiding."""

    # Filter tuning (SI units).
    ACCEL_NOISE_MPS2 = 0.003      # process noise on vertical acceleration, 1 sigma
    TERRAIN_RATE_M_PER_M = 0.01   # terrain height change per metre flown, 1 sigma
    MAP_SIGMA_SITE_M = 20.0       # terrain known to this at the site (1 sigma) ...
    MAP_SIGMA_PER_M = 0.05        # ... growing with the ground distance from it
    GATE_SIGMA = 5.0              # innovation check, in sigmas
    MAX_BORESIGHT_TILT_RAD = 1.22 # no altimeter fusion beyond 70 deg from vertical
    SLOPE_SIGMA = 0.05            # unknown ground slope under a slanted beam (1 sigma)
    STEP_SAMPLES = 8              # default: rejected samples that must agree for a step
    STEP_SPREAD_M = 5.0           # ... agreeing within this (plus noise and 2 %)
    UNHEALTHY_AFTER_S = 3.0       # default: no accepted sample for this long -> unhealthy
    BEAMS_RECENT_S = 1.0          # default: velocimeter ranges this fresh outvote the altimeter
    EXPECT_VALID_BELOW_M = 4000.0 # default: altimeter expected valid below this height
    LEGACY_JUMP_M = 500.0         # legacy: a jump this large disables the altimeter
    UNCERTAINTY_GROWTH = 0.5      # default: assumed height error while overdue, per metre
    OVERDUE_VEL_SIGMA_MPS = 1.0   # default: assumed vertical-speed error after a late lock
    TILT_SIGMA_RAD = 0.002        # attitude error that tilts the thrust, 1 sigma
    FROZEN_SAMPLES = 2            # default: repeats of one range that mean a frozen unit
    MAP_GATE_SIGMA = 3.0          # default: the altimeter followed against the beams has moved
                                  # the terrain this many map sigmas off the datum, and as
                                  # many since its last step: isolated
    ISOLATED_SCALE = 0.25         # default: height error assumed then, per metre of height
    H_ALT = (1.0, 0.0, -1.0, 0.0, 0.0)  # the altimeter sees height less terrain
    N = 5                         # states: height, vertical speed, terrain, tilt, tilt drift
    TILT_AXIS_MIN_MPS2 = 0.5      # horizontal specific force that fixes the tilt's axis
    DESCENT_TURN_RAD = 1.6        # the attitude turns about this much in a descent
    ST_GAIN = 0.2                 # star tracker: share of the attitude error corrected per
                                  # sample ...
    ST_BIAS_GAIN = 0.01           # ... and fed to the gyro bias estimate (per sample, over the
                                  # sample period): with 5 Hz a critically damped loop at
                                  # 0.5 rad/s (a bias is learnt in about 10 s)
    ST_MAX_ERR_RAD = 0.05         # a sample this far from the estimate is rejected
    ST_STEP_SIGMAS = 10.0         # the tracker is isolated when its disagreement jumps from
    ST_STEP_FLOOR_RAD = 0.0015    # one sample to the next by more than this many sigmas
                                  # of the difference of two samples' noise, plus this
                                  # (the gyros' error over a period, generously: 309")
    HISTORY_FRAMES = 16           # frames of attitude and velocity kept for late samples
    ST_LOST_US = 5000000          # no sample fused for this long while the body turned
                                  # slower than the tracker's limit: the tracker is lost,
                                  # and the tilt model it took over runs again

    def __init__(self, r, v, q, t_us, site_radius_m, alt_noise_m, alt_noise_fraction,
                 boresight_body, pos_sigma_m, vel_sigma_mps, variant="default",
                 site_up=None, omega_radps=0.0, imu=None, att_sigma_rad=0.0):
        # Position is kept relative to a local origin -- the landing site on its datum --
        # so that single-precision floats (MicroPython on a Pico) keep centimetres: in the
        # Moon-centred frame a float32 resolves only 0.125 m, and a 5 ms step's motion near
        # the ground would be lost in rounding.
        # ``r``, ``v``, ``q`` are inertial (MCI) at ``t_us``; the state is kept Moon-fixed.
        self._cache_r_of = self._cache_up_of = self._cache_alt_of = None
        self._cache_vs_of = self._cache_vs_up = None
        self.omega = float(omega_radps)
        self.t_us = t_us
        self.q_i = vec.qnormalize(tuple(q))    # body -> MCI, integrated from the gyros
        self._turn(t_us)                       # and q: body -> Moon-fixed
        r = tuple(r)
        v = vec.sub(tuple(v), (-self.omega * r[1], self.omega * r[0], 0.0))  # over the ground
        up0 = vec.unit(site_up if site_up is not None else self.to_fixed(r))
        self.site_up = up0
        self.origin = vec.scale(up0, site_radius_m)
        self.d = vec.sub(self.to_fixed(r), self.origin)
        self.v = self.to_fixed(v)
        self.site_radius_m = site_radius_m
        self.alt_noise_m = alt_noise_m
        self.alt_noise_fraction = alt_noise_fraction
        self.boresight = vec.unit(boresight_body)
        self.variant = variant
        self.legacy = variant == "legacy"
        # Covariance of (h, v, t, tilt, drift), row-major 5x5 (symmetric).
        p_t = 0.0 if self.legacy else self.MAP_SIGMA_SITE_M ** 2
        n = self.N
        self.P = [0.0] * (n * n)
        self.P[0] = pos_sigma_m * pos_sigma_m
        self.P[n + 1] = vel_sigma_mps * vel_sigma_mps
        self.P[2 * n + 2] = p_t
        self._imu_noise(imu, att_sigma_rad)
        self.tilt_rad = 0.0           # estimated tilt error about ``tilt_axis`` (rad)
        self.drift_radps = 0.0        # ... and its drift (a gyro bias), rad/s
        self.tilt_axis = None         # horizontal axis normal to the braking thrust (fixed)
        self.tilt_coupling_mps2 = 0.0  # vertical acceleration error per radian of tilt
        self.tilt_off = False         # handed over to the velocimeter's filter
        self.terrain_m = 0.0          # terrain height under the lander above the datum
        self.ground_m = (0.0, 0.0)    # set by the caller: (downrange, crossrange) from the site
        self.accel_bias = (0.0, 0.0, 0.0)
        self._cal_sum = [0.0, 0.0, 0.0]
        self._cal_time_s = 0.0
        self.last_rate_body = (0.0, 0.0, 0.0)
        self.specific_force_mps2 = 0.0  # accelerometer reading over the last frame
        self.process_accel_mps2 = self.ACCEL_NOISE_MPS2  # velocity random walk, 1 sigma
        self.alt_used = False
        self.alt_rejected = False
        self.alt_last_t_us = -1
        self.alt_ever_valid = False
        self.alt_disabled = False     # legacy: ignored for good after a large jump
        self.alt_healthy = False
        self.alt_overdue = False
        self.last_accept_us = None
        self._outliers = []           # default: recent rejected innovations
        self._last_range_m = -1.0
        self.beam_accept_us = None    # default: last velocimeter range used as a height
        self._frozen = 0              # default: samples in a row repeating the last range
        self.alt_frozen = False
        self.alt_vetoed = False       # default: the beams outvoted the altimeter's step
        self._beam_out = []           # default: velocimeter ranges rejected in a row
        self.beams_disputed = False   # default: the beams' heights given up (above the altimeter's)
        self.dispute_terrain_m = 0.0  # default: the terrain estimate at the altimeter's last step
                                      # since the beams were given up
        self.alt_isolated = False     # default: the altimeter contradicted the map: ignored for good
        # Legacy (feedforward aiding): the altimeter's corrections so far, the output less
        # the inertial solution: position (m) and velocity (m/s), Moon-fixed.
        self.ins_offset_m = (0.0, 0.0, 0.0)
        self.ins_offset_mps = (0.0, 0.0, 0.0)
        # The last frames' (t_us, attitude, velocity change integrated so far): a sensor
        # sample is weighed with the attitude and velocity of its own time (it arrives tens
        # of ms late, and a slew of 10 deg/s turns a beam by 0.5 deg meanwhile: 1 m/s of
        # line-of-sight velocity at 150 m/s).
        self._dv_acc = (0.0, 0.0, 0.0)
        self._hist = [(t_us, self.q, self._dv_acc)]
        # Star tracker (``use_star_tracker``): the gyro bias estimate (rad/s, body axes; None:
        # no tracker, the gyros are taken as they read), the last sample seen.
        self.gyro_bias = None
        self.st_period_s = 0.2
        self.st_last_t_us = -1
        self.st_used = False
        self.st_rejected = False
        self.st_error_rad = 0.0       # the last fused sample's disagreement (rad)
        self.st_failed = None         # why the tracker was isolated ("stuck", "step"), or None
        self.st_last_fused_us = None  # the frame time of the last fused sample
        self.st_lost = 0              # times the tilt model was taken back from a lost tracker
        self._tilt_by_st = False      # the tilt model was handed over to the tracker
        self.vel_took_tilt = False    # ... to the velocimeter's filter (velnav.py): for good
        self.st_max_rate_radps = 0.0  # the tracker's rate limit (HELLO)
        self._st_calm_since_us = None  # the body turning slower than it since then
        self.st_stale = 0             # samples older than the attitudes kept (not compared)
        self.st_step_ratio = 0.0      # the largest jump seen, as a share of its gate
        self._st_prev = None          # (t_us, e, gain applied) of the last valid sample checked
        self._st_prev_q = None        # the last valid sample's quaternion, as delivered
        self._st_boresight = (0.0, 0.0, 1.0)
        self._st_gate_cross = self._st_gate_roll = self.ST_STEP_FLOOR_RAD

    # --- frames -------------------------------------------------------------------------
    def _turn(self, t_us):
        """The Moon's turn at ``t_us``: the rotation MCI -> Moon-fixed, and ``q`` from ``q_i``."""
        th = self.omega * (t_us * 1e-6)
        self._c = math.cos(th)
        self._s = math.sin(th)
        h = -0.5 * th         # q = Rz(-theta) q_i
        self.q = vec.qmul((math.cos(h), 0.0, 0.0, math.sin(h)), self.q_i)

    def at(self, t_us):
        """(attitude, velocity) at an earlier time ``t_us``, from the last frames
        (interpolated; the oldest kept if older). The velocity is today's less what the
        IMU and gravity added since, so the corrections made meanwhile count."""
        hist = self._hist
        i = len(hist) - 1
        while i > 0 and hist[i - 1][0] >= t_us:
            i -= 1
        t_b, q_b, a_b = hist[i]
        if i == 0 or t_us >= t_b:
            q, acc = q_b, a_b
        else:
            t_a, q_a, a_a = hist[i - 1]
            f = (t_us - t_a) / (t_b - t_a)
            g = 1.0 - f
            fq = -f if vec.dot4(q_a, q_b) < 0.0 else f
            q = vec.qnormalize((g * q_a[0] + fq * q_b[0], g * q_a[1] + fq * q_b[1],
                                g * q_a[2] + fq * q_b[2], g * q_a[3] + fq * q_b[3]))
            acc = vec.add(vec.scale(a_a, g), vec.scale(a_b, f))
        return q, vec.sub(self.v, vec.sub(self._dv_acc, acc))

    def to_fixed(self, a):
        """An MCI vector's Moon-fixed components now."""
        c, s = self._c, self._s
        return (c * a[0] + s * a[1], -s * a[0] + c * a[1], a[2])

    def to_inertial(self, a):
        """A Moon-fixed vector's MCI components now."""
        c, s = self._c, self._s
        return (c * a[0] - s * a[1], s * a[0] + c * a[1], a[2])

    def r_inertial(self):
        """Position in MCI (telemetry)."""
        return self.to_inertial(self.r)

    def v_inertial(self):
        """Inertial velocity in MCI (telemetry): the ground's own velocity added."""
        r, w = self.r, self.omega
        return self.to_inertial(vec.add(self.v, (-w * r[1], w * r[0], 0.0)))

    # --- derived quantities -------------------------------------------------------------
    # Position, up, altitude and vertical speed are asked for many times a cycle; each is
    # kept with the state tuple(s) it was computed from (the tuple itself, so identity is
    # the test: a moved state is a new tuple) and computed again only when they changed.
    @property
    def r(self):
        """Position from the Moon's centre, Moon-fixed (for gravity)."""
        d = self.d
        if d is not self._cache_r_of:
            o = self.origin
            self._cache_r = (o[0] + d[0], o[1] + d[1], o[2] + d[2])
            self._cache_r_of = d
        return self._cache_r

    def _move(self, delta):
        self.d = vec.add(self.d, delta)

    def up(self):
        d = self.d
        if d is not self._cache_up_of:
            self._cache_up = vec.unit(self.r)
            self._cache_up_of = d
        return self._cache_up

    def altitude_m(self):
        """Navigated altitude above the landing-site datum."""
        d = self.d
        if d is not self._cache_alt_of:
            # |R u + d| - R, written so that it keeps its precision in float32.
            R = self.site_radius_m
            ud = vec.dot(self.site_up, d)
            num = 2.0 * R * ud + vec.dot(d, d)
            self._cache_alt = num / (math.sqrt(R * R + num) + R)
            self._cache_alt_of = d
        return self._cache_alt

    def vertical_speed_mps(self):
        v, up = self.v, self.up()
        if v is not self._cache_vs_of or up is not self._cache_vs_up:
            self._cache_vs = v[0] * up[0] + v[1] * up[1] + v[2] * up[2]
            self._cache_vs_of = v
            self._cache_vs_up = up
        return self._cache_vs

    def agl_m(self):
        """Navigated height above the ground under the lander (datum altitude - terrain)."""
        return self.altitude_m() - self.terrain_m

    def agl_sigma_m(self):
        """One-sigma uncertainty of ``agl_m``."""
        P = self.P
        return math.sqrt(max(0.0, P[0] - 2.0 * P[2] + P[2 * self.N + 2]))

    # --- propagation --------------------------------------------------------------------
    def finish_calibration(self):
        """Turn the readings accumulated while calibrating into an accelerometer bias."""
        if self._cal_time_s > 0.0:
            k = 1.0 / self._cal_time_s
            self.accel_bias = (self._cal_sum[0] * k, self._cal_sum[1] * k, self._cal_sum[2] * k)

    def propagate(self, imu, calibrating=False):
        """Integrate IMU samples [t_us, dvx, dvy, dvz, dax, day, daz] (body axes).

        With ``calibrating`` the engine is known to be off: the accelerometer readings are
        also summed for the bias estimate.

        The arithmetic is ``vec``'s (qrotvec, qmul, qnormalize, rotate, gravity, add,
        scale) written out on local floats, operation for operation in the same order, so
        the same bits for a fraction of the interpreter's work (a frame has 4 samples).
        """
        dt_sum = 0.0
        fx = fy = fz = 0.0
        sfx = sfy = sfz = 0.0         # the frame's specific-force increment, Moon-fixed
        w = self.omega
        c, sn = self._c, self._s      # the Moon's turn (its change over a frame: 1e-8 rad)
        sqrt, sin, cos = math.sqrt, math.sin, math.cos
        legacy = self.legacy
        ab0, ab1, ab2 = self.accel_bias
        o0, o1, o2 = self.origin
        d0, d1, d2 = self.d
        v0, v1, v2 = self.v
        qw, qx, qy, qz = self.q_i
        a0, a1, a2 = self._dv_acc
        t_prev = self.t_us
        cal = self._cal_sum
        gb = self.gyro_bias
        if gb is not None:
            gb0, gb1, gb2 = gb
        last = None
        for s in imu:
            t_us = s[0]
            dt = (t_us - t_prev) * 1e-6
            if dt <= 0.0:
                continue
            t_prev = t_us
            dt_sum += dt
            if calibrating:
                cal[0] += s[1]
                cal[1] += s[2]
                cal[2] += s[3]
                self._cal_time_s += dt
            b0 = s[1] - ab0 * dt
            b1 = s[2] - ab1 * dt
            b2 = s[3] - ab2 * dt
            if gb is None:
                t0, t1, t2 = s[4], s[5], s[6]
            else:
                t0, t1, t2 = s[4] - gb0 * dt, s[5] - gb1 * dt, s[6] - gb2 * dt
            # q_mid = q_i * qrotvec(dth * 0.5)
            h0, h1, h2 = t0 * 0.5, t1 * 0.5, t2 * 0.5
            a = sqrt(h0 * h0 + h1 * h1 + h2 * h2)
            if a < 1e-9:
                e0, e1, e2, e3 = 1.0, 0.5 * h0, 0.5 * h1, 0.5 * h2
                n = sqrt(e0 * e0 + e1 * e1 + e2 * e2 + e3 * e3)
                rw, rx, ry, rz = e0 / n, e1 / n, e2 / n, e3 / n
            else:
                k = sin(0.5 * a) / a
                rw, rx, ry, rz = cos(0.5 * a), h0 * k, h1 * k, h2 * k
            mw = qw * rw - qx * rx - qy * ry - qz * rz
            mx = qw * rx + qx * rw + qy * rz - qz * ry
            my = qw * ry - qx * rz + qy * rw + qz * rx
            mz = qw * rz + qx * ry - qy * rx + qz * rw
            # q_i = qnormalize(q_i * qrotvec(dth))
            a = sqrt(t0 * t0 + t1 * t1 + t2 * t2)
            if a < 1e-9:
                e0, e1, e2, e3 = 1.0, 0.5 * t0, 0.5 * t1, 0.5 * t2
                n = sqrt(e0 * e0 + e1 * e1 + e2 * e2 + e3 * e3)
                rw, rx, ry, rz = e0 / n, e1 / n, e2 / n, e3 / n
            else:
                k = sin(0.5 * a) / a
                rw, rx, ry, rz = cos(0.5 * a), t0 * k, t1 * k, t2 * k
            e0 = qw * rw - qx * rx - qy * ry - qz * rz
            e1 = qw * rx + qx * rw + qy * rz - qz * ry
            e2 = qw * ry - qx * rz + qy * rw + qz * rx
            e3 = qw * rz + qx * ry - qy * rx + qz * rw
            n = sqrt(e0 * e0 + e1 * e1 + e2 * e2 + e3 * e3)
            qw, qx, qy, qz = e0 / n, e1 / n, e2 / n, e3 / n
            # dv_i = rotate(q_mid, dv_b)
            tx = 2.0 * (my * b2 - mz * b1)
            ty = 2.0 * (mz * b0 - mx * b2)
            tz = 2.0 * (mx * b1 - my * b0)
            i0 = b0 + mw * tx + my * tz - mz * ty
            i1 = b1 + mw * ty + mz * tx - mx * tz
            i2 = b2 + mw * tz + mx * ty - my * tx
            fx += b0
            fy += b1
            fz += b2
            r0, r1, r2 = o0 + d0, o1 + d1, o2 + d2
            if legacy:
                # Gravity where the unaided inertial solution is (feedforward aiding).
                g = gravity(vec.sub((r0, r1, r2), self.ins_offset_m))
                self.ins_offset_m = vec.add(self.ins_offset_m,
                                            vec.scale(self.ins_offset_mps, dt))
                g0, g1, g2 = g
            else:
                rr = r0 * r0 + r1 * r1 + r2 * r2
                k = -GM_M3PS2 / (rr * sqrt(rr))
                g0, g1, g2 = r0 * k, r1 * k, r2 * k
            if w != 0.0:
                # Into the turning frame: dv Moon-fixed, gravity plus the Coriolis and
                # centrifugal accelerations.
                i0, i1 = c * i0 + sn * i1, -sn * i0 + c * i1
                g0, g1 = g0 + w * (2.0 * v1 + w * r0), g1 + w * (w * r1 - 2.0 * v0)
            sfx, sfy, sfz = sfx + i0, sfy + i1, sfz + i2
            e0, e1, e2 = i0 + g0 * dt, i1 + g1 * dt, i2 + g2 * dt
            a0, a1, a2 = a0 + e0, a1 + e1, a2 + e2
            n0, n1, n2 = v0 + e0, v1 + e1, v2 + e2
            k = 0.5 * dt
            d0, d1, d2 = d0 + (v0 + n0) * k, d1 + (v1 + n1) * k, d2 + (v2 + n2) * k
            v0, v1, v2 = n0, n1, n2
            last = (t0, t1, t2, dt)
        self.t_us = t_prev
        if last is not None:
            self.q_i = (qw, qx, qy, qz)
            self.v = (v0, v1, v2)
            self.d = (d0, d1, d2)
            self._dv_acc = (a0, a1, a2)
            t0, t1, t2, dt = last
            k = 1.0 / dt
            self.last_rate_body = (t0 * k, t1 * k, t2 * k)
        self._turn(self.t_us)
        if dt_sum > 0.0:
            hist = self._hist
            hist.append((self.t_us, self.q, self._dv_acc))
            if len(hist) > self.HISTORY_FRAMES:
                hist.pop(0)
            self.specific_force_mps2 = math.sqrt(fx * fx + fy * fy + fz * fz) / dt_sum
            if not self.legacy:
                k = 1.0 / dt_sum
                self._tilt_step((sfx * k, sfy * k, sfz * k), dt_sum)
            self._propagate_cov(dt_sum, self.specific_force_mps2)

    # --- star tracker -------------------------------------------------------------------
    def use_star_tracker(self, st):
        """A star tracker is fitted (the HELLO ``star_tracker`` block): the attitude is
        measured, so the gyro bias is estimated from it, and from its first sample fused on
        the tilt model stops (the attitude error it models is held at the tracker's
        arc-seconds; until then, or if no sample ever comes, it runs as without one)."""
        self.gyro_bias = (0.0, 0.0, 0.0)
        self.st_period_s = 1.0 / float(st["rate_hz"])
        self._st_boresight = vec.unit(tuple(float(x) for x in st["boresight_body"]))
        self.st_max_rate_radps = float(st["max_rate_radps"])
        k = self.ST_STEP_SIGMAS * math.sqrt(2.0)
        self._st_gate_cross = k * float(st["cross_sigma_rad"]) + self.ST_STEP_FLOOR_RAD
        self._st_gate_roll = k * float(st["roll_sigma_rad"]) + self.ST_STEP_FLOOR_RAD

    def fuse_star_tracker(self, att):
        """Fuse a star tracker sample ``[t_us, qw, qx, qy, qz, valid]`` (attitude body ->
        MCI at ``t_us``): a complementary filter. The disagreement ``e`` (a small rotation,
        body axes: truth = estimate * e) is compared at the sample's own time; a share
        ``ST_GAIN`` of it turns the attitude (and the attitudes of the last frames), and
        ``-ST_BIAS_GAIN e / period`` goes into the gyro bias estimate."""
        self.st_used = self.st_rejected = False
        if self._tilt_by_st and not self.vel_took_tilt:
            # Lost: isolated, or nothing fused for ST_LOST_US while the body has turned
            # slowly enough all along to be tracked (a slew past the rate limit is not a
            # loss: the lock comes back after it).
            w = self.last_rate_body
            if w[0] * w[0] + w[1] * w[1] + w[2] * w[2] > self.st_max_rate_radps ** 2:
                self._st_calm_since_us = None
            elif self._st_calm_since_us is None:
                self._st_calm_since_us = self.t_us
            calm = self._st_calm_since_us
            if self.st_failed or calm is not None and \
                    self.t_us - max(calm, self.st_last_fused_us) > self.ST_LOST_US:
                self.take_back_tilt()
        if att is None or att[0] == self.st_last_t_us or not att[5] or self.st_failed:
            return
        t = att[0]
        self.st_last_t_us = t
        if t < self._hist[0][0]:      # older than the attitudes kept: nothing to compare with
            self.st_rejected = True
            self.st_stale += 1
            return
        q_meas = (att[1], att[2], att[3], att[4])
        if q_meas == self._st_prev_q:  # a tracker's noise never repeats a sample exactly
            self.st_failed = "stuck"
            return
        self._st_prev_q = q_meas
        q_nav, _ = self.at(t)                      # body -> Moon-fixed then
        h = -0.5 * self.omega * (t * 1e-6)         # measured body -> MCI, into Moon-fixed
        q_m = vec.qmul((math.cos(h), 0.0, 0.0, math.sin(h)), vec.qnormalize(q_meas))
        w, x, y, z = q_nav
        dq = vec.qmul((w, -x, -y, -z), q_m)
        k = 2.0 if dq[0] >= 0.0 else -2.0
        e = (k * dq[1], k * dq[2], k * dq[3])
        prev = self._st_prev
        if prev is not None and t - prev[0] <= 1.5e6 * self.st_period_s:
            # What the last sample left uncorrected should still be there: a jump is the
            # tracker's (a shifted mounting, a wrong attitude solution), not the gyros'.
            c = 1.0 - prev[2]
            pe = prev[1]
            r = (e[0] - c * pe[0], e[1] - c * pe[1], e[2] - c * pe[2])
            b = self._st_boresight
            r_roll = vec.dot(r, b)
            r_cross = vec.norm((r[0] - r_roll * b[0], r[1] - r_roll * b[1],
                                r[2] - r_roll * b[2]))
            ratio = max(r_cross / self._st_gate_cross, abs(r_roll) / self._st_gate_roll)
            if ratio > self.st_step_ratio:
                self.st_step_ratio = ratio
            if ratio > 1.0:
                self.st_failed = "step"
                return
        self.st_error_rad = vec.norm(e)
        if self.st_error_rad > self.ST_MAX_ERR_RAD:
            self.st_rejected = True
            self._st_prev = (t, e, 0.0)
            return
        self._st_prev = (t, e, self.ST_GAIN)
        self.st_used = True
        self.st_last_fused_us = self.t_us
        if not self.tilt_off:
            self.hand_over_tilt()
            self._tilt_by_st = True
        turn = vec.qrotvec(vec.scale(e, self.ST_GAIN))
        self.q_i = vec.qnormalize(vec.qmul(self.q_i, turn))
        self._turn(self.t_us)
        hist = self._hist
        for i in range(len(hist)):
            t_h, q_h, a_h = hist[i]
            hist[i] = (t_h, vec.qnormalize(vec.qmul(q_h, turn)), a_h)
        kb = self.ST_BIAS_GAIN / self.st_period_s
        b = self.gyro_bias
        self.gyro_bias = (b[0] - kb * e[0], b[1] - kb * e[1], b[2] - kb * e[2])

    def _imu_noise(self, imu, att_sigma_rad):
        """Size the process noise from the HELLO ``imu`` block (the unit's grade).

        * tilt: the initial attitude error, and the gyros' scale and misalignment errors
          over the turn a descent makes (``DESCENT_TURN_RAD``), as its prior; the angle
          random walk as its white noise;
        * drift: the gyro's turn-on bias and bias instability as its prior, the instability
          over the correlation time as its random walk;
        * vertical speed: the accelerometer's velocity random walk, and its bias instability
          and scale error (a slowly varying acceleration) as white noise of the same
          variance over the correlation time.
        Without the block (a plant that does not tell) the unit is taken as tactical grade.
        """
        if not imu:
            imu = {"gyro_bias_radps": 2.4e-6, "gyro_bias_instability_radps": 2.4e-6,
                   "gyro_arw_rad_per_sqrt_s": 4.4e-5, "gyro_scale": 5e-5,
                   "accel_bias_mps2": 4.9e-4, "accel_bias_instability_mps2": 4.9e-4,
                   "accel_vrw_mps_per_sqrt_s": 1e-3, "accel_scale": 5e-5,
                   "misalignment_rad": 5e-5, "bias_correlation_time_s": 300.0}
        g = lambda k: float(imu.get(k, 0.0))
        tau = max(g("bias_correlation_time_s"), 1.0)
        turn2 = (g("gyro_scale") ** 2 + g("misalignment_rad") ** 2) * self.DESCENT_TURN_RAD ** 2
        self.q_tilt = g("gyro_arw_rad_per_sqrt_s") ** 2
        self.q_drift = 2.0 * g("gyro_bias_instability_radps") ** 2 / tau
        self.accel_scale = g("accel_scale")
        self.q_accel_bias = g("accel_bias_instability_mps2") ** 2 * tau
        self.q_vrw = g("accel_vrw_mps_per_sqrt_s") ** 2
        self.accel_tau_s = tau
        self._tilt_turn2 = turn2      # the tilt prior when a lost tracker gives it back
        self._drift_instab2 = g("gyro_bias_instability_radps") ** 2
        if not self.legacy:
            n = self.N
            self.P[3 * n + 3] = att_sigma_rad * att_sigma_rad + turn2
            self.P[4 * n + 4] = g("gyro_bias_radps") ** 2 + g("gyro_bias_instability_radps") ** 2

    def _tilt_step(self, f, dt):
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
        u0, u1, u2 = up
        fu = (f[1] * u2 - f[2] * u1, f[2] * u0 - f[0] * u2, f[0] * u1 - f[1] * u0)  # f x up
        if self.tilt_axis is None:
            if vec.norm(fu) < self.TILT_AXIS_MIN_MPS2:
                self.tilt_coupling_mps2 = 0.0
                return
            self.tilt_axis = vec.unit(fu)
        ax = self.tilt_axis
        c = fu[0] * ax[0] + fu[1] * ax[1] + fu[2] * ax[2]
        self.tilt_coupling_mps2 = c
        a = c * self.tilt_rad + 0.5 * c * self.drift_radps * dt
        k = a * dt
        v = self.v
        self.v = (v[0] + u0 * k, v[1] + u1 * k, v[2] + u2 * k)
        k = 0.5 * a * dt * dt
        d = self.d
        self.d = (d[0] + u0 * k, d[1] + u1 * k, d[2] + u2 * k)
        self.tilt_rad += self.drift_radps * dt

    def _propagate_cov(self, dt, f_mps2):
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
        # (3,4) dt): first the rows (F P: rows 0, 1, 3 each from rows not yet changed),
        # then the columns ((F P) F^T, each row's columns 0, 1, 3 the same way), then the
        # lower triangle copied from the upper (exactly symmetric: the sums ran in two
        # orders). Written out on the 25 elements: only the upper triangle's are formed,
        # each with the operations, in the order, of the loops over rows and columns.
        (p00, p01, p02, p03, p04, p10, p11, p12, p13, p14, p20, p21, p22, p23, p24,
         p30, p31, p32, p33, p34, p40, p41, p42, p43, p44) = P
        a00 = p00 + (dt * p10 + c03 * p30 + c04 * p40)      # rows
        a01 = p01 + (dt * p11 + c03 * p31 + c04 * p41)
        a02 = p02 + (dt * p12 + c03 * p32 + c04 * p42)
        a03 = p03 + (dt * p13 + c03 * p33 + c04 * p43)
        a04 = p04 + (dt * p14 + c03 * p34 + c04 * p44)
        a11 = p11 + (c13 * p31 + c14 * p41)
        a12 = p12 + (c13 * p32 + c14 * p42)
        a13 = p13 + (c13 * p33 + c14 * p43)
        a14 = p14 + (c13 * p34 + c14 * p44)
        a33 = p33 + dt * p43
        a34 = p34 + dt * p44
        b00 = a00 + (dt * a01 + c03 * a03 + c04 * a04)      # columns, upper triangle
        b01 = a01 + (c13 * a03 + c14 * a04)
        b03 = a03 + dt * a04
        b11 = a11 + (c13 * a13 + c14 * a14)
        b13 = a13 + dt * a14
        b23 = p23 + dt * p24
        b33 = a33 + dt * a34
        P[:] = [b00, b01, a02, b03, a04,
                b01, b11, a12, b13, a14,
                a02, a12, p22, b23, p24,
                b03, b13, b23, b33, a34,
                a04, a14, p24, a34, p44]
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

    def map_sigma_m(self):
        """How well the terrain height under the lander is known without the altimeter."""
        d = math.sqrt(self.ground_m[0] ** 2 + self.ground_m[1] ** 2)
        return self.MAP_SIGMA_SITE_M + self.MAP_SIGMA_PER_M * d

    def cov_fault(self):
        """True when the filter's covariance is no longer symmetric positive semi-definite."""
        return kf.psd_fault(self.P, self.N)

    # --- altimeter update ---------------------------------------------------------------
    def fuse_altimeter(self, alt):
        """Fuse one altimeter sample [t_us, range_m, valid] if it is new and plausible."""
        self.alt_used = False
        self.alt_rejected = False
        self._update_health()
        if alt is None or self.alt_disabled:
            return
        t_us, range_m, valid = alt[0], alt[1], alt[2]
        if not valid or t_us == self.alt_last_t_us:
            return
        self.alt_last_t_us = t_us
        if not self.legacy:
            # A frozen unit repeats its last range to the bit; a working one never does
            # (its noise alone is centimetres). Such samples are not measurements.
            if range_m == self._last_range_m:
                self._frozen += 1
            else:
                self._frozen = 0
            self._last_range_m = range_m
            if self._frozen >= self.FROZEN_SAMPLES:
                self.alt_rejected = True
                self.alt_frozen = True
                return
            self.alt_frozen = False
        up = self.up()
        bore_i = vec.rotate(self.at(t_us)[0], self.boresight)
        cos_tilt = -vec.dot(bore_i, up)
        if cos_tilt < math.cos(self.MAX_BORESIGHT_TILT_RAD):
            return
        z = range_m * cos_tilt
        # Predict the height at the sample's own time (it arrives late).
        age_s = (self.t_us - t_us) * 1e-6
        y = z - (self.agl_m() - self.vertical_speed_mps() * age_s)
        sigma_r = math.sqrt(self.alt_noise_m ** 2 + (self.alt_noise_fraction * range_m) ** 2)
        # A slanted beam hits the ground ahead: its unknown slope adds to the noise.
        sin_tilt = math.sqrt(max(0.0, 1.0 - cos_tilt * cos_tilt))
        r_meas = (sigma_r * cos_tilt) ** 2 + (self.SLOPE_SIGMA * range_m * sin_tilt) ** 2
        if self.legacy:
            self._fuse_legacy(y, r_meas, t_us)
        else:
            if self.alt_overdue:
                # A sample after the deadline: our height has gone uncorrected for longer
                # than planned (perhaps because it is wrong), so the filter is told the
                # uncertainty guidance already assumes. Raising a variance alone adds a
                # positive semi-definite matrix: P stays a covariance. The disagreement
                # then goes into our height, not into the terrain (ispace M2).
                self.P[0] = max(self.P[0], self.overdue_sigma_m() ** 2)
            self._fuse_default(y, r_meas, sigma_r, t_us)
            if self.beams_disputed:
                gate = self.MAP_GATE_SIGMA * self.map_sigma_m()
                if abs(self.terrain_m) > gate and abs(self.terrain_m - self.dispute_terrain_m) > gate:
                    self._isolate_altimeter()

    def _fuse_legacy(self, y, r_meas, t_us):
        if not self.alt_ever_valid:
            # Trust the first valid sample completely: the altitude becomes the range.
            self.alt_ever_valid = True
            # ... its variance the sample's, its old correlations dropped (kept, they make
            # no covariance, and the next samples kick the vertical speed by metres per
            # second: a nominal lock from 2 km then ends in a crash).
            self._correct(vec.scale(self.up(), y), (0.0, 0.0, 0.0))
            P = self.P
            P[0] = r_meas
            self._decorrelate(0)
            self._accepted(t_us)
            return
        s = self.P[0] + r_meas
        if y * y > self.GATE_SIGMA * self.GATE_SIGMA * s:
            self.alt_rejected = True
            if abs(y) > self.LEGACY_JUMP_M:
                self.alt_disabled = True  # "a sudden jump means a broken sensor"
            return
        self._kalman(y, r_meas)
        self._accepted(t_us)

    def fuse_beam_range(self, t_us, range_m, beam_i, sigma_r):
        """A velocimeter beam's range (inertial direction ``beam_i``) as a height
        measurement, gated; True if it was used (default flight software only)."""
        if self.beams_disputed:
            return False
        cos_tilt = -vec.dot(beam_i, self.up())
        if cos_tilt < math.cos(self.MAX_BORESIGHT_TILT_RAD):
            return False
        age_s = (self.t_us - t_us) * 1e-6
        y = range_m * cos_tilt - (self.agl_m() - self.vertical_speed_mps() * age_s)
        sin_tilt = math.sqrt(max(0.0, 1.0 - cos_tilt * cos_tilt))
        r_meas = (sigma_r * cos_tilt) ** 2 + (self.SLOPE_SIGMA * range_m * sin_tilt) ** 2
        P = self.P
        if y * y > self.GATE_SIGMA * self.GATE_SIGMA * (P[0] - 2.0 * P[2] + P[12] + r_meas):
            self._beam_outlier(y, r_meas, t_us)
            return False
        self._beam_out = []
        self._kalman(y, r_meas)
        self.alt_used = False          # the flag is the altimeter's own
        self.beam_accept_us = t_us
        return True

    def _beam_outlier(self, y, r_meas, t_us):
        """Beams that keep disagreeing with us, and with each other not: when they have
        never been used yet (three beams against one altimeter: the altimeter is the odd
        one out), or the altimeter is not healthy, they are the height: the terrain is
        re-based onto them. Beams that agreed before and moved together while the altimeter
        still agrees with us are the faulty ones: they stay rejected."""
        if self.legacy or self.beam_accept_us is not None and self.alt_healthy:
            return
        out = self._beam_out
        out.append(y)
        if len(out) > 3 * self.STEP_SAMPLES // 2:
            out.pop(0)
        if len(out) < 3 * self.STEP_SAMPLES // 2:
            return
        mean = sum(out) / len(out)
        if max(out) - min(out) <= self.STEP_SPREAD_M + 4.0 * math.sqrt(r_meas) + 0.02 * abs(mean):
            self.terrain_m -= mean
            self.P[12] += r_meas
            self._beam_out = []
            self.beam_accept_us = t_us

    def height_healthy(self):
        """The height above the ground is measured: by the altimeter, or by the
        velocimeter's beams within the last UNHEALTHY_AFTER_S."""
        return self.alt_healthy or self.beam_accept_us is not None and \
            (self.t_us - self.beam_accept_us) * 1e-6 <= self.UNHEALTHY_AFTER_S

    def _fuse_default(self, y, r_meas, sigma_r, t_us):
        P = self.P
        s = P[0] - 2.0 * P[2] + P[12] + r_meas
        if y * y <= self.GATE_SIGMA * self.GATE_SIGMA * s:
            self._outliers = []
            self._kalman(y, r_meas)
            self._accepted(t_us)
            return
        self.alt_rejected = True
        out = self._outliers
        out.append(y)
        if len(out) > self.STEP_SAMPLES:
            out.pop(0)
        if len(out) < self.STEP_SAMPLES:
            return
        # Persistence and consistency: a terrain step moves every sample by the same amount
        # (the vertical rate still matches the IMU); a failing sensor scatters or drifts.
        mean = sum(out) / len(out)
        spread = max(out) - min(out)
        if self.beam_accept_us is not None and \
                (self.t_us - self.beam_accept_us) * 1e-6 <= self.BEAMS_RECENT_S:
            if mean > 0.0 or spread > self.STEP_SPREAD_M + 4.0 * sigma_r + 0.02 * abs(mean):
                # The velocimeter's beams measure the same height and still agree with us:
                # the altimeter alone has moved (a bias, a scale error), not the ground.
                self.alt_vetoed = True
                self._outliers = []
                return
            # The altimeter says, steadily, that we are lower than the beams do. Two units
            # disagree and nothing here tells which is biased (a range bias common to the
            # three beams looks just like an altimeter's): the lower height is the safe one
            # (the worst case is a long last descent, not a fast one). The beams' ranges
            # are not used as heights from now on; their velocities still are.
            self.beams_disputed = True
            self.beam_accept_us = None
        if spread <= self.STEP_SPREAD_M + 4.0 * sigma_r + 0.02 * abs(mean):
            if self.alt_overdue or not self.alt_ever_valid and self.agl_m() < self.EXPECT_VALID_BELOW_M:
                # The altimeter locked late, after its deadline: our own height has drifted
                # without it, so the disagreement is ours. Re-base the height; gravity has
                # turned its error into a vertical-speed error too, so open that up.
                self._move(vec.scale(self.up(), mean))
                P[0] = r_meas + spread * spread
                self._decorrelate(0)
                P[6] = max(P[6], self.OVERDUE_VEL_SIGMA_MPS ** 2)
            else:
                # The altimeter has been fine: a persistent jump is the ground (a cliff, a
                # crater rim), not a broken sensor. Re-base the terrain under us.
                self.terrain_m -= mean
                P[12] += r_meas
            if self.beams_disputed:
                # Followed against the beams: the terrain's drift is measured from here
                # (a step is the ground's; a drift between steps is the altimeter's).
                self.dispute_terrain_m = self.terrain_m
            self._outliers = []
            self._accepted(t_us)
            self.alt_rejected = False
            self.alt_used = True

    def _isolate_altimeter(self):
        """The altimeter was followed against the beams (``beams_disputed``: it said, steadily,
        that we are lower) and has since drifted the terrain under us ``MAP_GATE_SIGMA``
        map sigmas off the datum, and as many since its last step (the dispute's own
        re-base, or a crater rim's, is the ground's): the map knows the ground far better
        than that, so the altimeter is the faulty unit. A range scale error does this: its height falls slower than the
        vertical speed the IMU and the velocimeter measure, the filter puts the difference
        into the terrain, and near the site, where the map's sigma narrows, the terrain and
        the datum height run away together (their gains grow past 1). It is ignored from
        now on (``alt_isolated``); the terrain goes back to the map's datum and the height
        above it to what was measured, with the map's spread and ``ISOLATED_SCALE`` of the
        height as their uncertainty; the beams are heights again and correct it (the height
        step re-plans the approach). Without beams the landing goes on blind."""
        self.alt_isolated = True
        self.alt_disabled = True      # ``alt_healthy`` lapses as for a silent unit (3 s)
        self.alt_used = False
        self.alt_rejected = True
        cap = self.map_sigma_m()
        agl = self.agl_m()
        self._move(vec.scale(self.up(), -self.terrain_m))
        self.terrain_m = 0.0
        P = self.P
        P[0] = (self.ISOLATED_SCALE * agl) ** 2 + cap * cap
        self._decorrelate(0)
        P[2 * self.N + 2] = cap * cap
        self._decorrelate(2)
        self.beams_disputed = False
        self.beam_accept_us = None
        self._beam_out = []
        self._outliers = []

    def _kalman(self, y, r_meas):
        """Scalar update with H = [1, 0, -1, 0, 0] (the altimeter sees h - t), Joseph form."""
        h, s = kf.innovation_var(self.P, self.N, self.H_ALT, r_meas)
        k = [x / s for x in h]
        up = self.up()
        self._correct(vec.scale(up, k[0] * y), vec.scale(up, k[1] * y))
        self.terrain_m += k[2] * y
        self.tilt_rad += k[3] * y
        self.drift_radps += k[4] * y
        kf.update(self.P, self.N, h, s, k)
        self.alt_used = True

    def _correct(self, dr, dv):
        """A measurement's correction of position ``dr`` and velocity ``dv``; the legacy
        keeps it out of its inertial solution (feedforward aiding)."""
        self._move(dr)
        self.v = vec.add(self.v, dv)
        if self.legacy:
            self.ins_offset_m = vec.add(self.ins_offset_m, dr)
            self.ins_offset_mps = vec.add(self.ins_offset_mps, dv)

    def _decorrelate(self, i):
        """Drop state ``i``'s covariances with the others (after it is re-based: a
        diagonal block taken out of a covariance leaves one)."""
        P, n = self.P, self.N
        for j in range(n):
            if j != i:
                P[i * n + j] = 0.0
                P[j * n + i] = 0.0

    def hand_over_tilt(self):
        """The velocimeter measures the velocity from now on (its filter models the thrust
        seen through an attitude error itself): the tilt model stops. Returns the vertical
        acceleration it explained (Moon-fixed vector). Tilt and drift leave the covariance
        (their rows and columns zeroed: what is left is still a covariance)."""
        if self.legacy or self.tilt_off:
            return (0.0, 0.0, 0.0)
        a = vec.scale(self.up(), self.tilt_coupling_mps2 * self.tilt_rad)
        self.tilt_off = True
        self.tilt_rad = self.drift_radps = 0.0
        self.tilt_coupling_mps2 = 0.0
        n = self.N
        for i in (3, 4):
            self._decorrelate(i)
            self.P[i * n + i] = 0.0
        return a

    def take_back_tilt(self):
        """The star tracker that took the tilt model over is lost (isolated, or no sample
        fused for ``ST_LOST_US``) before the velocimeter measures: the tilt model runs again,
        from no tilt, its prior the gyros' scale and misalignment over the descent's turn
        plus an attitude error the tracker's checks could have let through
        (``ST_STEP_FLOOR_RAD``), and their bias instability (the bias itself was learnt).
        The tracker hands it over again at its next fused sample."""
        self._tilt_by_st = False
        self.st_lost += 1
        if self.legacy:
            return
        self.tilt_off = False
        self.tilt_rad = self.drift_radps = 0.0
        n = self.N
        self.P[3 * n + 3] = self._tilt_turn2 + self.ST_STEP_FLOOR_RAD ** 2
        self.P[4 * n + 4] = self._drift_instab2

    def vertical_speed_var(self):
        """Variance of the navigated vertical speed (m^2/s^2)."""
        return self.P[self.N + 1]

    def narrow_vertical_speed(self, var):
        """Another sensor (the velocimeter) knows the vertical speed to ``var``: scale that
        state's row and column (a congruence: P stays a covariance)."""
        p = self.P[self.N + 1]
        if 0.0 < var < p:
            kf.scale_state(self.P, self.N, 1, math.sqrt(var / p))

    def _accepted(self, t_us):
        self.alt_ever_valid = True
        self.last_accept_us = t_us
        self.alt_healthy = True

    def _update_health(self):
        """Healthy while samples keep being accepted; overdue when expected and missing."""
        if self.last_accept_us is not None and \
                (self.t_us - self.last_accept_us) * 1e-6 > self.UNHEALTHY_AFTER_S:
            self.alt_healthy = False
        if self.legacy:
            self.alt_overdue = False
            return
        self.alt_overdue = not self.height_healthy() and self.agl_m() < self.EXPECT_VALID_BELOW_M

    def overdue_sigma_m(self):
        """Height uncertainty assumed while the altimeter is overdue (it should have
        corrected us by now, so the filter's own figure is too optimistic)."""
        return self.UNCERTAINTY_GROWTH * max(self.agl_m(), 0.0)
