"""fsw/velnav.py's covariance propagation over index lists gives bit for bit what the loops
over rows and columns gave (the plain form, kept here as the reference)."""

from __future__ import annotations

import math
import random

from fsw import vec
from fsw.velnav import VelocimeterFilter


def reference_propagate(self, dt, q_mps2, nav=None):
    if dt <= 0.0:
        return
    n, P = self.N, self.P
    phi = math.exp(-dt / self.ACCEL_TAU_S)
    for i in range(3):
        for j in range(6):
            P[i * n + j] += dt * P[(i + 3) * n + j]
    for j in range(6):
        for i in range(3):
            P[j * n + i] += dt * P[j * n + i + 3]
    for i in range(3, 6):
        for j in range(6):
            P[i * n + j] *= phi
            P[j * n + i] *= phi
    q = q_mps2 * q_mps2 * dt
    qb = self.ACCEL_SIGMA_MPS2 ** 2 * (1.0 - phi * phi)
    for i in range(3):
        P[i * n + i] += q
        P[(i + 3) * n + i + 3] += qb
    for i in range(n):
        for j in range(i + 1, n):
            P[j * n + i] = P[i * n + j]
    b = self.accel
    if nav is not None and self.healthy:
        nav.v = vec.add(nav.v, vec.scale(b, dt))
    self.accel = vec.scale(b, phi)


class _Nav:
    v = (1.0, -2.0, 3.0)


def test_propagation_is_bit_for_bit_the_loops() -> None:
    rnd = random.Random(11)
    beams = [[0.0, 0.0, 1.0], [0.5, 0.0, 0.866], [0.0, 0.5, 0.866]]
    for trial in range(3000):
        a, b = VelocimeterFilter({"beams_body": beams}), VelocimeterFilter({"beams_body": beams})
        m = [[rnd.gauss(0.0, rnd.choice([1e-3, 1.0, 30.0])) for _ in range(6)] for _ in range(6)]
        P = [sum(m[i][k] * m[j][k] for k in range(6)) for i in range(6) for j in range(6)]
        if trial % 7 == 0:          # not symmetric: the copy of the upper triangle shows
            P[rnd.randrange(36)] += 1e-3
        a.P, b.P = list(P), list(P)
        a.accel = b.accel = tuple(rnd.gauss(0.0, 0.05) for _ in range(3))
        a.healthy = b.healthy = trial % 2 == 0
        na, nb = _Nav(), _Nav()
        dt = rnd.choice([0.02, 0.005, rnd.uniform(-0.01, 0.2)])
        q = rnd.uniform(0.0, 2.0)
        for _ in range(3):
            a.propagate(dt, q, na)
            reference_propagate(b, dt, q, nb)
        assert repr((a.P, a.accel, na.v)) == repr((b.P, b.accel, nb.v)), trial
