"""The flight software's hot paths, rewritten for speed, compute what they computed before,
bit for bit: each against its unoptimised form (tests/fsw_reference.py) on random inputs,
and a whole terminal descent's history with the references patched in against one without.

A campaign that resumes on newer code must fly every run exactly as before; these are the
checks that a speed-up changed no floating-point operation (nor their order)."""

from __future__ import annotations

import math
import random

import fsw_reference as ref  # tests/fsw_reference.py
import pytest

from fsw.nav import Navigator


def _state(obj) -> str:
    return repr(sorted((k, v) for k, v in vars(obj).items()
                       if not callable(v) and not k.startswith("_cache")))


def _with_reference(obj):
    """``obj`` turned into a subclass of its class with every reference patched in."""
    cls = type(obj)
    attrs = {name: fn for owner, name, fn in ref.PATCHES if owner is cls}
    obj.__class__ = type("Reference" + cls.__name__, (cls,), attrs)
    return obj


def _navigator(rnd: random.Random, variant: str, omega: float) -> Navigator:
    R = 1737400.0
    up = (0.6, 0.0, 0.8)
    r = tuple(x * (R + rnd.uniform(100.0, 15000.0)) for x in up)
    v = (rnd.gauss(0.0, 50.0), 1700.0 + rnd.gauss(0.0, 50.0), rnd.gauss(0.0, 20.0))
    q = vec_unit4(tuple(rnd.gauss(0.0, 1.0) for _ in range(4)))
    imu = None if rnd.random() < 0.3 else {
        "gyro_bias_radps": 1e-5, "gyro_bias_instability_radps": 2e-6,
        "gyro_arw_rad_per_sqrt_s": 1e-4, "gyro_scale": 1e-4, "accel_bias_mps2": 1e-3,
        "accel_bias_instability_mps2": 5e-4, "accel_vrw_mps_per_sqrt_s": 2e-3,
        "accel_scale": 1e-4, "misalignment_rad": 1e-4, "bias_correlation_time_s": 200.0}
    nav = Navigator(r, v, q, 1_000_000, R, 0.5, 0.001, (0.0, 0.0, -1.0), 100.0, 1.0,
                    variant, up, omega, imu)
    nav.ground_m = (rnd.uniform(-5e5, 0.0), rnd.uniform(-1e3, 1e3))
    nav.accel_bias = tuple(rnd.gauss(0.0, 1e-3) for _ in range(3))
    if variant == "legacy":
        nav.ins_offset_m = tuple(rnd.gauss(0.0, 100.0) for _ in range(3))
        nav.ins_offset_mps = tuple(rnd.gauss(0.0, 1.0) for _ in range(3))
    return nav


def vec_unit4(q):
    n = math.sqrt(sum(x * x for x in q))
    return tuple(x / n for x in q)


def _imu_frame(rnd: random.Random, t_us: int) -> tuple[list, int]:
    samples = []
    for _ in range(rnd.choice([0, 1, 4, 4, 4, 5])):
        step = rnd.choice([5000, 5000, 5000, 0, -5000, 1, 20000])
        t_us += step
        if rnd.random() < 0.1:
            dth = [0.0, 0.0, 0.0] if rnd.random() < 0.5 else \
                [rnd.gauss(0.0, 1e-10) for _ in range(3)]       # below qrotvec's 1e-9
        else:
            dth = [rnd.gauss(0.0, 1e-3) for _ in range(3)]
        dv = [rnd.gauss(0.0, 0.01) for _ in range(2)] + [rnd.gauss(0.015, 0.01)]
        samples.append([t_us, *dv, *dth])
    return samples, t_us


@pytest.mark.parametrize("variant,omega", [("default", 0.0), ("default", 2.6617e-6),
                                           ("legacy", 0.0), ("legacy", 2.6617e-6)])
def test_navigator_propagate_is_the_reference(variant: str, omega: float) -> None:
    rnd = random.Random(f"{variant}{omega}")
    for trial in range(20):
        seed = rnd.random()
        a = _navigator(random.Random(seed), variant, omega)
        b = _with_reference(_navigator(random.Random(seed), variant, omega))
        t_us = a.t_us
        for k in range(25):
            frame, t_us = _imu_frame(rnd, t_us)
            calibrating = k < 5
            a.propagate(frame, calibrating)
            b.propagate(frame, calibrating)
            assert _state(a) == _state(b), (trial, k)


def _covariance(rnd: random.Random, n: int) -> list[float]:
    m = [[rnd.gauss(0.0, rnd.choice([1e-4, 1.0, 100.0])) for _ in range(n)] for _ in range(n)]
    rank = rnd.choice([n, n, n - 1, 1])       # rank-deficient ones too (zero pivots)
    return [sum(m[i][k] * m[j][k] for k in range(rank)) for i in range(n) for j in range(n)]


def _odd(rnd: random.Random, P: list[float], n: int) -> list[float]:
    """What psd_fault must see through: asymmetry, NaN, infinities, negative pivots,
    exact zero variances with and without covariances."""
    P = list(P)
    i, j = rnd.randrange(n), rnd.randrange(n)
    how = rnd.randrange(8)
    if how == 0:
        P[i * n + j] += 1e-9
    elif how == 1:
        P[i * n + i] = rnd.choice([math.nan, math.inf, -math.inf])
    elif how == 2:
        P[i * n + j] = P[j * n + i] = math.nan
    elif how == 3:                  # a negative eigenvalue, small or not
        for a in range(n):
            P[a * n + a] -= rnd.choice([1e-12, 1e-7, 1e-3, 1.0]) * abs(P[a * n + a])
    elif how == 4:                  # a state known exactly ...
        for a in range(n):
            P[i * n + a] = P[a * n + i] = 0.0
        if rnd.random() < 0.5:      # ... or with a covariance left over
            P[i * n + j] = P[j * n + i] = rnd.gauss(0.0, 1.0) if i != j else 0.0
    elif how == 5:
        P = [0.0] * (n * n)
    elif how == 6:
        P = [-x for x in P]
    return P


@pytest.mark.parametrize("n", [3, 5, 6])
def test_kalman_kernels_are_the_reference(n: int) -> None:
    from fsw import kf
    rnd = random.Random(n)
    faults = 0
    for trial in range(1500):
        P = _covariance(rnd, n)
        Q = _odd(rnd, P, n) if trial % 2 else P
        got, want = kf.psd_fault(Q, n), ref.kf_psd_fault(Q, n)
        assert got == want, (trial, Q)
        faults += got
        H = [rnd.choice([0.0, 1.0, -1.0, rnd.gauss(0.0, 1.0)]) for _ in range(n)]
        r = rnd.uniform(1e-4, 10.0)
        (h1, s1), (h2, s2) = kf.innovation_var(P, n, H, r), ref.kf_innovation_var(P, n, H, r)
        assert repr((h1, s1)) == repr((h2, s2)), trial
        K = [x / s1 for x in h1]
        a, b = list(P), list(P)
        kf.update(a, n, h1, s1, K)
        ref.kf_update(b, n, h2, s2, K)
        assert repr(a) == repr(b), trial
    assert 200 < faults < 1300     # both answers were exercised


def _run_digest(cfg) -> tuple[str, str]:
    """The history's (wall-clock columns aside) and the summary's SHA-256 of an in-process
    run of ``cfg``."""
    import hashlib
    import json

    import numpy as np

    from hil.engine import run_inprocess
    from hil.engine.schema import WALL_CLOCK_COLUMNS
    result = run_inprocess(cfg, None, history="memory", plots=False)
    h = hashlib.sha256()
    for name, arr in result.history.data.items():
        if name not in WALL_CLOCK_COLUMNS:
            h.update(name.encode())
            h.update(repr(arr.tolist()).encode() if arr.dtype == object else
                     np.ascontiguousarray(arr).tobytes())
    summary = {k: v for k, v in result.summary.items()
               if k not in ("wall_time_s", "timing", "build", "processes")}
    return h.hexdigest(), hashlib.sha256(json.dumps(summary, sort_keys=True,
                                                    default=repr).encode()).hexdigest()


def test_a_whole_descent_is_the_same_with_the_reference_paths(monkeypatch) -> None:
    """The terminal descent (altimeter, velocimeter, touchdown), flown with the hot paths
    as they are and with every reference patched in: the same history and summary."""
    from hil.scenario import load_scenario
    cfg = load_scenario("terminal")
    now = _run_digest(cfg)
    for owner, name, fn in ref.PATCHES:
        monkeypatch.setattr(owner, name, fn)
    assert _run_digest(cfg) == now


def test_history_to_arrow_is_the_per_cell_conversion() -> None:
    """History.to_arrow from numpy holds what pyarrow made of the Python values cell by
    cell (the campaign's in-memory history): the same floats bit for bit, the same nulls,
    the same Parquet file."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hil.engine.recorder import MemorySink, _from_numpy, arrow_schema
    from hil.engine.schema import columns
    rnd = random.Random(5)
    cols = columns(True)

    def cell(kind):
        if kind in ("f?", "i?", "s") and rnd.random() < 0.3:
            return None
        if kind in ("f", "f?"):
            return rnd.choice([math.nan, -0.0, 0.0, rnd.gauss(0.0, 1e3), 1e-300])
        if kind in ("i", "i?"):
            return rnd.choice([0, -1, rnd.randrange(-10**15, 10**15)])
        return rnd.choice(["", "altimeter:late", "a,b"])
    sink = MemorySink(cols)
    for _ in range(4):
        rows = [[cell(c.kind) for c in cols] for _ in range(50)]
        sink.write(rows, 0, len(rows))
    history = sink.history()
    got = history.to_arrow()
    schema = arrow_schema(cols)
    want = pa.Table.from_arrays([pa.array(_from_numpy(c.kind, history.data[c.name]),
                                          type=f.type) for c, f in zip(cols, schema)],
                                schema=schema)
    assert got.schema == want.schema
    for name in want.column_names:
        a, b = got.column(name), want.column(name)
        assert a.null_count == b.null_count, name
        x, y = a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False)
        assert (x.tolist() == y.tolist()) if x.dtype == object else \
            (np.asarray(x).tobytes() == np.asarray(y).tobytes()), name

    def parquet(table):
        out = io.BytesIO()
        pq.write_table(table, out)
        return out.getvalue()
    assert parquet(got) == parquet(want)


def test_guidance_geometry_is_the_reference() -> None:
    from fsw import guidance
    rnd = random.Random(3)
    for trial in range(2000):
        up = [rnd.gauss(0.0, 1.0) for _ in range(3)]
        east = [rnd.gauss(0.0, 1.0) for _ in range(3)]
        site = guidance.SiteGeometry(up, east, 1737400.0 + rnd.gauss(0.0, 1e3))
        scale_m = rnd.choice([1.0, 1e3, 4e5])
        d = tuple(rnd.gauss(0.0, scale_m) for _ in range(3))
        if trial % 50 == 0:
            d = tuple((n - u) * site.radius_m for n, u in zip(site.north, site.up))  # u = n
        v = tuple(rnd.gauss(0.0, 100.0) for _ in range(3))
        alt = rnd.choice([None, rnd.gauss(1e3, 1e3)])
        got = site.local(d, v, alt)
        assert repr(got) == repr(ref.guidance_local(site, d, v, alt)), trial
        a = tuple(rnd.gauss(0.0, 3.0) for _ in range(3))
        axes = got[2]
        assert repr(site.to_frame(a, axes)) == repr(ref.guidance_to_frame(site, a, axes))
        assert repr(site.ground(d)) == repr(ref.guidance_ground(site, d))
        r, v_l = got[0], got[1]
        g = ((-1.6, rnd.gauss(0.0, 1e-3), 0.0), (-1.61, 0.0, rnd.gauss(0.0, 1e-3)))
        r_t = (rnd.uniform(0.0, 3e3), rnd.uniform(-1e4, 0.0), 0.0)
        v_t = (rnd.uniform(-40.0, 0.0), rnd.uniform(0.0, 100.0), 0.0)
        t_go = rnd.choice([3.0, rnd.uniform(3.0, 400.0)])
        assert repr(guidance.zem_zev(r, v_l, g, r_t, v_t, t_go)) == \
            repr(ref.guidance_zem_zev(r, v_l, g, r_t, v_t, t_go))
        assert repr(guidance._zem_zev_terms(r, v_l, g, r_t, v_t, t_go)) == \
            repr(ref.guidance_zem_zev_terms(r, v_l, g, r_t, v_t, t_go))


def test_attitude_torque_is_the_reference() -> None:
    from fsw import control
    rnd = random.Random(4)
    inertia, max_torque = (1500.0, 1500.0, 1200.0), (200.0, 200.0, 100.0)
    for trial in range(3000):
        q = vec_unit4(tuple(rnd.gauss(0.0, 1.0) for _ in range(4)))
        w = tuple(rnd.gauss(0.0, 0.2) for _ in range(3))
        how = trial % 4
        if how == 0:        # the thrust axis itself, or exactly opposite
            bz = ref.vec.rotate(q, (0.0, 0.0, 1.0))
            d = bz if rnd.random() < 0.5 else tuple(-x for x in bz)
        elif how == 1:      # close to it
            bz = ref.vec.rotate(q, (0.0, 0.0, 1.0))
            d = ref.vec.unit(tuple(x + rnd.gauss(0.0, 1e-7) for x in bz))
        else:
            d = ref.vec.unit(tuple(rnd.gauss(0.0, 1.0) for _ in range(3)))
        assert repr(control.attitude_torque(q, w, d, inertia, max_torque)) == \
            repr(ref.control_attitude_torque(q, w, d, inertia, max_torque)), trial
