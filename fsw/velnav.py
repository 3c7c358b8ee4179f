"""Doppler velocimeter fusion: three line-of-sight velocities correct the navigated velocity.

Each valid beam ``k`` (unit vector ``b_k`` in body axes, ``d_k`` in the inertial frame with
the navigated attitude) measures ``-(v - v_surface) . d_k`` (negative while closing) at
the sample's time. The velocity error is a three-state Kalman filter of its own (inertial
axes, covariance ``P``); each beam is one scalar update in Joseph form (``fsw/kf.py``),
gated at 5 sigma. Its process noise, like the altimeter filter's, is the accelerometer's
noise plus the thrust seen through an attitude error. The corrections go into the
navigated velocity; the vertical one also narrows the altimeter filter's vertical-speed
variance (by scaling its row and column, which keeps that covariance one).

A beam whose valid bit is clear but which carries a range is used all the same (gated like
any other): IM-1 ignored its Doppler lidar for a missing "data valid" flag.

Health: healthy while samples keep being accepted; unhealthy after ``UNHEALTHY_AFTER_S``
without one, or when the beams disagree with the navigated velocity several samples in a
row (a sick unit, or our own velocity far off: then the velocimeter is re-trusted once its
beams agree with each other).
"""

import math

from fsw import kf, vec


class VelocimeterFilter:
    """Fuses the velocimeter's beams into the navigator's velocity."""

    GATE_SIGMA = 5.0
    UNHEALTHY_AFTER_S = 2.0
    REBASE_AFTER = 10          # samples rejected in a row before the filter re-opens
    VEL_SIGMA0_MPS = 1.0       # prior velocity uncertainty when the first sample comes

    def __init__(self, config):
        self.beams = [vec.unit(tuple(float(x) for x in b)) for b in config["beams_body"]]
        self.noise_mps = max(float(config.get("velocity_noise_mps", 0.05)), 1e-3)
        self.range_noise_m = float(config.get("range_noise_m", 2.0))
        self.range_noise_fraction = float(config.get("range_noise_fraction", 0.0))
        s0 = self.VEL_SIGMA0_MPS ** 2
        self.P = [s0, 0.0, 0.0, 0.0, s0, 0.0, 0.0, 0.0, s0]
        self.last_t_us = -1
        self.last_accept_us = None
        self.used = False
        self.rejected = False
        self.healthy = False
        self.ever_valid = False
        self._rejects = 0

    def propagate(self, dt, q_mps2):
        """Velocity error variance grows by ``q_mps2^2 dt`` on every axis."""
        q = q_mps2 * q_mps2 * dt
        P = self.P
        P[0] += q
        P[4] += q
        P[8] += q

    def fuse(self, nav, sample):
        """Fuse one sample ``[t_us, v0, v1, v2, r0, r1, r2, mask]`` if it is new."""
        self.used = False
        self.rejected = False
        if self.last_accept_us is not None and \
                (nav.t_us - self.last_accept_us) * 1e-6 > self.UNHEALTHY_AFTER_S:
            self.healthy = False
        if sample is None or sample[0] == self.last_t_us:
            return
        self.last_t_us = sample[0]
        mask = int(sample[7])
        if mask == 0:
            # IM-1's lesson: data that arrive without their valid flag are still data. An
            # invalid beam carries zeros; a beam with a range is weighed (and gated) anyway.
            for k in range(3):
                if sample[4 + k] > 0.0:
                    mask |= 1 << k
            if mask == 0:
                return
        # The navigated attitude and velocity at the sample's time.
        q_s, v_s = nav.at(sample[0])
        r = self.noise_mps * self.noise_mps
        P = self.P
        dv = (0.0, 0.0, 0.0)
        accepted = rejected = 0
        for k in range(3):
            if not mask & (1 << k):
                continue
            d = vec.rotate(q_s, self.beams[k])
            H = (-d[0], -d[1], -d[2])
            pred = vec.dot(H, vec.add(v_s, dv))
            y = sample[1 + k] - pred
            h, s = kf.innovation_var(P, 3, H, r)
            if y * y > self.GATE_SIGMA * self.GATE_SIGMA * s and self._rejects < self.REBASE_AFTER:
                rejected += 1
                continue
            K = (h[0] / s, h[1] / s, h[2] / s)
            dv = vec.add(dv, vec.scale(K, y))
            kf.update(P, 3, h, s, K)
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
                    for i in (0, 4, 8):
                        P[i] = max(P[i], s0)

    def _apply(self, nav, dv):
        nav.v = vec.add(nav.v, dv)
        # Tell the altimeter filter how well the vertical speed is now known.
        up = nav.up()
        P = self.P
        pu = (P[0] * up[0] + P[1] * up[1] + P[2] * up[2],
              P[3] * up[0] + P[4] * up[1] + P[5] * up[2],
              P[6] * up[0] + P[7] * up[1] + P[8] * up[2])
        var_up = vec.dot(up, pu)
        if 0.0 < var_up < nav.P[4]:
            kf.scale_state(nav.P, 3, 1, math.sqrt(var_up / nav.P[4]))

    def cov_fault(self):
        return kf.psd_fault(self.P, 3)
