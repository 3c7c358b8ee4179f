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

A sample that repeats the previous one to the bit (a frozen unit: fault ``stuck``) is
rejected, like the altimeter's. Health: healthy while samples keep being accepted; unhealthy after ``UNHEALTHY_AFTER_S``
without one, or when the beams disagree with the navigated velocity several samples in a
row (a sick unit, or our own velocity far off: then the velocimeter is re-trusted once its
beams agree with each other).
"""

import math

from fsw import kf, vec


# VelocimeterFilter.propagate's elements of the 6 x 6 covariance (row-major), upper
# triangle only: the velocity block's (v, v) with the indices of (b, v), (v, b) and (b, b)
# it is formed from, and whether it is on the diagonal; the cross block's (v, b) with its
# (b, b); the b block's; and each upper element with the lower one it is copied to.
_N = 6
_VV = [(i * _N + j, (i + 3) * _N + j, i * _N + j + 3, (i + 3) * _N + j + 3, i == j)
       for i in range(3) for j in range(i, 3)]
_VB = [(i * _N + j, (i + 3) * _N + j) for i in range(3) for j in range(3, _N)]
_BB = [(i * _N + j, i == j) for i in range(3, _N) for j in range(i, _N)]
_UPPER = [(i * _N + j, j * _N + i) for i in range(_N) for j in range(i + 1, _N)]


class VelocimeterFilter:
    """Fuses the velocimeter's beams into the navigator's velocity."""

    GATE_SIGMA = 5.0
    UNHEALTHY_AFTER_S = 2.0
    REBASE_AFTER = 10          # samples rejected in a row before the filter re-opens
    FROZEN_SAMPLES = 2         # repeats of one sample, to the bit, that mean a frozen unit
    VEL_SIGMA0_MPS = 1.0       # prior velocity uncertainty when the first sample comes
    N = 6                      # velocity error (3), unmodelled acceleration (3)
    ACCEL_SIGMA_MPS2 = 0.05    # unmodelled acceleration (an attitude error under thrust), 1 sigma
    ACCEL_TAU_S = 100.0        # ... its correlation time

    def __init__(self, config):
        self.beams = [vec.unit(tuple(float(x) for x in b)) for b in config["beams_body"]]
        self.noise_mps = max(float(config.get("velocity_noise_mps", 0.05)), 1e-3)
        self.range_noise_m = float(config.get("range_noise_m", 2.0))
        self.range_noise_fraction = float(config.get("range_noise_fraction", 0.0))
        self.P = self._prior()
        self.accel = (0.0, 0.0, 0.0)      # estimated unmodelled acceleration, nav frame
        self.last_t_us = -1
        self.last_accept_us = None
        self.used = False
        self.rejected = False
        self.healthy = False
        self.ever_valid = False
        self._rejects = 0
        self.correction = (0.0, 0.0, 0.0)   # velocity corrections applied, summed (m/s)
        self._last_values = None
        self._frozen = 0              # samples in a row repeating the last one to the bit
        self.frozen = False

    def _prior(self):
        n, s0, b0 = self.N, self.VEL_SIGMA0_MPS ** 2, self.ACCEL_SIGMA_MPS2 ** 2
        P = [0.0] * (n * n)
        for i in range(3):
            P[i * n + i] = s0
            P[(i + 3) * n + i + 3] = b0
        return P

    def propagate(self, dt, q_mps2, nav=None):
        """Velocity error ``dv' = b``, unmodelled acceleration ``b' = -b / tau`` (Gauss-
        Markov); the velocity error's variance grows by ``q_mps2^2 dt`` on every axis. The
        estimated ``b`` (the thrust seen through an attitude error, which the strapdown
        cannot know) is added to ``nav``'s velocity."""
        if dt <= 0.0:
            return
        P = self.P
        phi = math.exp(-dt / self.ACCEL_TAU_S)
        q = q_mps2 * q_mps2 * dt
        qb = self.ACCEL_SIGMA_MPS2 ** 2 * (1.0 - phi * phi)
        # P <- F P F^T + Q with F = [[I, dt I], [0, phi I]]: as loops would do it, first the
        # rows of v (each plus dt times the row of b), then the columns of v (the same on
        # the right), the cross blocks times phi, the b block times phi and phi, Q on the
        # diagonal, the lower triangle copied from the upper. Only the upper triangle is
        # formed, each element with the loops' operations in their order (the same bits):
        # (v, v) from its own, its (b, v), (v, b) and (b, b) elements, all read before they
        # change; then (v, b), then (b, b).
        for a, bv, vb, bb, diag in _VV:
            x = P[a] + dt * P[bv] + dt * (P[vb] + dt * P[bb])
            P[a] = x + q if diag else x
        for a, bb in _VB:
            P[a] = (P[a] + dt * P[bb]) * phi
        for a, diag in _BB:
            x = P[a] * phi * phi
            P[a] = x + qb if diag else x
        for a, b in _UPPER:
            P[b] = P[a]
        b = self.accel
        if nav is not None and self.healthy:
            # Only while the beams keep measuring it: an estimate left from a unit that has
            # gone silent is flown no further (its decay alone, from 0.01 m/s^2 learnt in
            # 13 s, left a blind lander 1 m/s off in vertical speed).
            nav.v = vec.add(nav.v, vec.scale(b, dt))
        self.accel = vec.scale(b, phi)

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
            nav.vel_took_tilt = True
        # The navigated attitude and velocity at the sample's time.
        q_s, v_s = nav.at(sample[0])
        r = self.noise_mps * self.noise_mps
        P, n = self.P, self.N
        dv = (0.0, 0.0, 0.0)
        db = (0.0, 0.0, 0.0)
        accepted = rejected = 0
        dirs = [None, None, None]    # the beams' directions (inertial) at the sample's time
        for k in range(3):
            if not mask & (1 << k):
                continue
            d = dirs[k] = vec.rotate(q_s, self.beams[k])
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
                nav.fuse_beam_range(sample[0], rng, dirs[k], sig)
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

    def _apply(self, nav, dv):
        nav.v = vec.add(nav.v, dv)
        self.correction = vec.add(self.correction, dv)
        # Tell the altimeter filter how well the vertical speed is now known.
        up = nav.up()
        P, n = self.P, self.N
        pu = (P[0] * up[0] + P[1] * up[1] + P[2] * up[2],
              P[n] * up[0] + P[n + 1] * up[1] + P[n + 2] * up[2],
              P[2 * n] * up[0] + P[2 * n + 1] * up[1] + P[2 * n + 2] * up[2])
        var_up = vec.dot(up, pu)
        nav.narrow_vertical_speed(var_up)

    def cov_fault(self):
        return kf.psd_fault(self.P, self.N)
