"""Small Kalman-filter kernels on flat row-major lists (MicroPython-safe, no numpy).

A covariance ``P`` of ``n`` states is a list of ``n * n`` floats kept exactly symmetric:
every kernel writes ``P[i][j]`` and ``P[j][i]`` from one value.

* :func:`update` -- one scalar measurement in Joseph form. For any gain ``K``,
  ``P+ = (I - K H) P (I - K H)^T + K R K^T`` equals ``P - K h^T - h K^T + S K K^T`` with
  ``h = P H^T`` and ``S = H h + R``; written that way it costs O(n^2), stays symmetric,
  and a gain that is not quite optimal (rounding, a float32 board) changes ``P`` only to
  second order, so the result stays positive semi-definite.
* :func:`scale_state` -- rescale one state by ``k``: its variance by ``k^2`` and its
  cross-covariances by ``k`` (a congruence ``D P D``, which keeps ``P`` positive
  semi-definite, unlike clipping a variance alone).
* :func:`psd_fault` -- the flight software's own check that ``P`` is still a covariance:
  symmetric, and an LDL^T factorisation with no pivot below ``-tol`` times its scale.
"""

import math


def innovation_var(P, n, H, r):
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


def update(P, n, h, s, K):
    """Joseph-form covariance update for gain ``K`` (``h``, ``s`` from innovation_var)."""
    for i in range(n):
        ki, hi = K[i], h[i]
        row = i * n
        for j in range(i, n):
            v = P[row + j] - ki * h[j] - hi * K[j] + s * ki * K[j]
            P[row + j] = v
            P[j * n + i] = v


def scale_state(P, n, i, k):
    """Multiply state ``i`` by ``k`` in the covariance (row and column ``i``)."""
    for j in range(n):
        P[i * n + j] *= k
        P[j * n + i] *= k


def psd_fault(P, n, tol=1e-6):
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
