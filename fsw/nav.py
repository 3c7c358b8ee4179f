"""Navigation: strapdown integration of IMU increments plus a vertical-channel Kalman filter.

The strapdown part integrates delta-angles into the attitude quaternion and delta-velocities
(rotated to the inertial frame, plus modelled gravity) into velocity and position, in the
Moon-centred inertial frame. Time comes only from the samples' integer microseconds.

The altimeter filter estimates the errors of altitude (above the landing-site datum) and
vertical speed: two states, a 2x2 covariance, scalar updates -- cheap enough for a
microcontroller. A slant range becomes an altitude with the navigated attitude (flat
ground under the lander); each update passes an innovation check first.

During the engine-off coast the accelerometer should read zero: the mean reading is the
accelerometer bias, estimated and removed from then on.
"""

import math

from fsw import vec

GM_M3PS2 = 4.902800118e12


def gravity(r):
    r2 = vec.dot(r, r)
    k = -GM_M3PS2 / (r2 * math.sqrt(r2))
    return vec.scale(r, k)


class Navigator:
    """Inertial navigation with altimeter aiding."""

    # Filter tuning (SI units).
    ACCEL_NOISE_MPS2 = 0.003      # process noise on vertical acceleration, 1 sigma
    TERRAIN_RATE_M_PER_M = 0.02   # terrain height change per metre flown, 1 sigma, as noise
    GATE_SIGMA = 5.0              # innovation check, in sigmas
    MAX_BORESIGHT_TILT_RAD = 0.6  # no altimeter fusion beyond ~34 deg from vertical
    REJECT_PERSIST = 10           # consecutive consistent rejections that force a reset

    def __init__(self, r, v, q, t_us, site_radius_m, alt_noise_m, alt_noise_fraction,
                 boresight_body, pos_sigma_m, vel_sigma_mps):
        self.r = tuple(r)
        self.v = tuple(v)
        self.q = vec.qnormalize(tuple(q))
        self.t_us = t_us
        self.site_radius_m = site_radius_m
        self.alt_noise_m = alt_noise_m
        self.alt_noise_fraction = alt_noise_fraction
        self.boresight = vec.unit(boresight_body)
        # Vertical-channel covariance [[p_hh, p_hv], [p_hv, p_vv]].
        self.p_hh = pos_sigma_m * pos_sigma_m
        self.p_hv = 0.0
        self.p_vv = vel_sigma_mps * vel_sigma_mps
        self.accel_bias = (0.0, 0.0, 0.0)
        self._cal_sum = [0.0, 0.0, 0.0]
        self._cal_time_s = 0.0
        self.last_rate_body = (0.0, 0.0, 0.0)
        self.last_specific_force = 0.0
        self.alt_used = False
        self.alt_rejected = False
        self.reject_count = 0
        self.alt_last_t_us = -1

    # --- derived quantities -------------------------------------------------------------
    def up(self):
        return vec.unit(self.r)

    def altitude_m(self):
        """Navigated altitude above the landing-site datum."""
        return vec.norm(self.r) - self.site_radius_m

    def vertical_speed_mps(self):
        return vec.dot(self.v, self.up())

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
        """
        for s in imu:
            t_us = s[0]
            dt = (t_us - self.t_us) * 1e-6
            if dt <= 0.0:
                continue
            self.t_us = t_us
            if calibrating:
                self._cal_sum[0] += s[1]
                self._cal_sum[1] += s[2]
                self._cal_sum[2] += s[3]
                self._cal_time_s += dt
            dv_b = (s[1] - self.accel_bias[0] * dt, s[2] - self.accel_bias[1] * dt,
                    s[3] - self.accel_bias[2] * dt)
            dth = (s[4], s[5], s[6])
            # Attitude: rotate by the delta-angle (half before, half after for dv).
            q_mid = vec.qmul(self.q, vec.qrotvec(vec.scale(dth, 0.5)))
            self.q = vec.qnormalize(vec.qmul(self.q, vec.qrotvec(dth)))
            dv_i = vec.rotate(q_mid, dv_b)
            g = gravity(self.r)
            v_old = self.v
            self.v = vec.add(vec.add(v_old, dv_i), vec.scale(g, dt))
            self.r = vec.add(self.r, vec.scale(vec.add(v_old, self.v), 0.5 * dt))
            self.last_rate_body = vec.scale(dth, 1.0 / dt)
            self.last_specific_force = vec.norm(dv_b) / dt
            self._propagate_cov(dt)

    def _propagate_cov(self, dt):
        q_a = self.ACCEL_NOISE_MPS2 * self.ACCEL_NOISE_MPS2
        v_h = vec.norm(vec.sub(self.v, vec.scale(self.up(), self.vertical_speed_mps())))
        q_t = (self.TERRAIN_RATE_M_PER_M * v_h) ** 2 * dt
        p_hh = self.p_hh + 2.0 * dt * self.p_hv + dt * dt * self.p_vv + q_t
        p_hv = self.p_hv + dt * self.p_vv
        self.p_hh, self.p_hv, self.p_vv = p_hh, p_hv, self.p_vv + q_a * dt

    # --- altimeter update ---------------------------------------------------------------
    def fuse_altimeter(self, alt):
        """Fuse one altimeter sample [t_us, range_m, valid] if it is new and plausible."""
        self.alt_used = False
        self.alt_rejected = False
        if alt is None:
            return
        t_us, range_m, valid = alt[0], alt[1], alt[2]
        if not valid or t_us == self.alt_last_t_us:
            return
        self.alt_last_t_us = t_us
        up = self.up()
        bore_i = vec.rotate(self.q, self.boresight)
        cos_tilt = -vec.dot(bore_i, up)
        if cos_tilt < math.cos(self.MAX_BORESIGHT_TILT_RAD):
            return
        z = range_m * cos_tilt
        # Predict the altitude at the sample's own time (it arrives late).
        age_s = (self.t_us - t_us) * 1e-6
        h_pred = self.altitude_m() - self.vertical_speed_mps() * age_s
        y = z - h_pred
        sigma_r = math.sqrt(self.alt_noise_m ** 2 + (self.alt_noise_fraction * range_m) ** 2)
        r_meas = (sigma_r * cos_tilt) ** 2
        s = self.p_hh + r_meas
        if y * y > self.GATE_SIGMA * self.GATE_SIGMA * s:
            self.alt_rejected = True
            self.reject_count += 1
            if self.reject_count < self.REJECT_PERSIST:
                return
            # Persistent disagreement: our altitude is what is wrong; re-initialise it.
            self.p_hh += y * y
            s = self.p_hh + r_meas
        self.reject_count = 0
        k_h = self.p_hh / s
        k_v = self.p_hv / s
        self.r = vec.add(self.r, vec.scale(up, k_h * y))
        self.v = vec.add(self.v, vec.scale(up, k_v * y))
        p_hh, p_hv, p_vv = self.p_hh, self.p_hv, self.p_vv
        self.p_hh = (1.0 - k_h) * p_hh
        self.p_hv = (1.0 - k_h) * p_hv
        self.p_vv = p_vv - k_v * p_hv
        self.alt_used = True

    def alt_sigma_m(self):
        return math.sqrt(self.p_hh)
