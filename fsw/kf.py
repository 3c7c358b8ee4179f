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
    """(h, S): ``h = P H^T`` and the innovation variance ``S = H P H^T + r``.

    As the loops (straight-line code compiled once per size and pattern of H's non-zero
    entries, see :func:`_innovation_source`)::

        h = []
        for i in range(n):
            acc = 0.0
            for j in range(n):
                if H[j] != 0.0: acc += P[i * n + j] * H[j]
            h.append(acc)
        s = r
        for j in range(n):
            if H[j] != 0.0: s += H[j] * h[j]
    """
    nz = 0
    for j in range(n):
        if H[j] != 0.0:
            nz |= 1 << j
    return _compiled(_INNOVATION, _innovation_source, "innovation", (n, nz))(P, H, r)


def _innovation_source(key):
    n, nz = key
    js = [j for j in range(n) if nz >> j & 1]
    out = ["def innovation(P, H, r):"]
    out += ["    H%d = H[%d]" % (j, j) for j in js]
    for i in range(n):
        out.append("    h%d = 0.0%s" % (i, "".join(" + P[%d] * H%d" % (i * n + j, j) for j in js)))
    out.append("    return [%s], r%s" % (", ".join("h%d" % i for i in range(n)),
                                          "".join(" + H%d * h%d" % (j, j) for j in js)))
    return "\n".join(out) + "\n"


_INNOVATION = {}


def update(P, n, h, s, K):
    """Joseph-form covariance update for gain ``K`` (``h``, ``s`` from innovation_var).

    As the loops (straight-line code compiled once per size, see :func:`_update_source`)::

        for i in range(n):
            for j in range(i, n):
                v = P[i * n + j] - K[i] * h[j] - h[i] * K[j] + s * K[i] * K[j]
                P[i * n + j] = v
                P[j * n + i] = v
    """
    _compiled(_UPDATE, _update_source, "update", n)(P, h, s, K)


def _update_source(n):
    names = lambda c: ", ".join(c + str(i) for i in range(n)) + ("," if n == 1 else "")
    out = ["def update(P, h, s, K):", "    %s = h" % names("h"), "    %s = K" % names("k")]
    for i in range(n):
        out.append("    sk = s * k%d" % i)
        for j in range(i, n):
            out.append("    v = P[%d] - k%d * h%d - h%d * k%d + sk * k%d"
                       % (i * n + j, i, j, i, j, j))
            out.append("    P[%d] = v" % (i * n + j))
            if j != i:
                out.append("    P[%d] = v" % (j * n + i))
    return "\n".join(out) + "\n"


_UPDATE = {}


def _compiled(cache, source, name, n):
    """Function ``name`` of the code ``source(n)``, compiled once per ``n`` (MicroPython's
    ``exec`` too)."""
    fn = cache.get(n)
    if fn is None:
        ns = {"math": math}
        exec(source(n), ns)
        fn = cache[n] = ns[name]
    return fn


def scale_state(P, n, i, k):
    """Multiply state ``i`` by ``k`` in the covariance (row and column ``i``)."""
    for j in range(n):
        P[i * n + j] *= k
        P[j * n + i] *= k


def psd_fault(P, n, tol=1e-6):
    """True when ``P`` is not a symmetric positive semi-definite matrix (or not finite).

    The check (see :func:`_psd_source`) runs as straight-line code compiled once per size:
    the loops' interpreter work was most of its cost, twice a cycle."""
    return _compiled(_PSD, _psd_source, "psd", n)(P, tol)


_PSD = {}


def _psd_source(n):
    """Source of ``psd(P, tol)`` for size ``n``: the loops below written out, with the same
    floating-point operations in the same order, so the same answer for every ``P``::

        scale = 0.0
        for i in range(n):
            d = P[i * n + i]
            if d is NaN or infinite: return True
            if d > scale: scale = d
            for j in range(i + 1, n):
                if P[i * n + j] != P[j * n + i]: return True
        if scale <= 0.0: return scale < 0.0
        floor = -tol * scale
        # LDL^T, stopping at the first negative pivot; a zero pivot (a state known
        # exactly) needs a zero column below it.
        L = [0.0] * (n * n); D = [0.0] * n
        for j in range(n):
            d = P[j * n + j]
            for k in range(j): d -= L[j * n + k] * L[j * n + k] * D[k]
            if d < floor: return True
            D[j] = d
            for i in range(j + 1, n):
                v = P[i * n + j]
                for k in range(j): v -= L[i * n + k] * L[j * n + k] * D[k]
                if d > tol * scale: L[i * n + j] = v / d
                elif abs(v) > math.sqrt(tol) * scale: return True
        return False

    (Every check answers True, and no operation raises, so their order does not matter.)
    """
    out = ["def psd(P, tol):", "    inf = math.inf", "    scale = 0.0"]
    for i in range(n):
        d = "P[%d]" % (i * n + i)
        out.append("    d = " + d)
        out.append("    if not (d == d) or d == inf or d == -inf:")
        out.append("        return True")
        out.append("    if d > scale:")
        out.append("        scale = d")
        pairs = ["P[%d] != P[%d]" % (i * n + j, j * n + i) for j in range(i + 1, n)]
        if pairs:
            out.append("    if " + " or ".join(pairs) + ":")
            out.append("        return True")
    out += ["    if scale <= 0.0:", "        return scale < 0.0",
            "    floor = -tol * scale", "    tiny = tol * scale",
            "    big = math.sqrt(tol) * scale"]
    L = lambda i, k: "L%d_%d" % (i, k)
    for j in range(n):
        expr = "P[%d]" % (j * n + j) + "".join(
            " - %s * %s * D%d" % (L(j, k), L(j, k), k) for k in range(j))
        out.append("    D%d = %s" % (j, expr))
        out.append("    if D%d < floor:" % j)
        out.append("        return True")
        rows = range(j + 1, n)
        for i in rows:
            expr = "P[%d]" % (i * n + j) + "".join(
                " - %s * %s * D%d" % (L(i, k), L(j, k), k) for k in range(j))
            out.append("    v%d = %s" % (i, expr))
        if rows:
            out.append("    if D%d > tiny:" % j)
            for i in rows:
                out.append("        %s = v%d / D%d" % (L(i, j), i, j))
            out.append("    else:")
            out.append("        if " + " or ".join("abs(v%d) > big" % i for i in rows) + ":")
            out.append("            return True")
            for i in rows:
                out.append("        %s = 0.0" % L(i, j))
    out.append("    return False")
    return "\n".join(out) + "\n"
