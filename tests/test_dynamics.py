"""6-DOF dynamics (plant.dynamics.rk4_step) against closed-form physics.

Every expected value is computed here from first principles (Kepler, free fall, the rocket
equation, rigid-body rotation, a first-order lag); none is copied from a run.
"""

from __future__ import annotations

import math

import pytest

from plant import dynamics
from plant.moon import G0_MPS2, GM_M3PS2, MEAN_RADIUS_M

ISP_S = 320.0
MAX_THRUST_N = 4400.0
DRY_KG = 520.0
WET_KG = 1200.0
VE = ISP_S * G0_MPS2                       # exhaust velocity


def vehicle(tau_s: float = 0.0, inertia=(700.0, 700.0, 500.0),
            dry_kg: float = DRY_KG) -> dynamics.VehicleModel:
    return dynamics.VehicleModel(MAX_THRUST_N, ISP_S, dry_kg, inertia, tau_s)


def state(r, v, q=(1.0, 0.0, 0.0, 0.0), w=(0.0, 0.0, 0.0), m=WET_KG, thr=0.0) -> list[float]:
    s = [*map(float, r), *map(float, v), *map(float, q), *map(float, w), float(m), float(thr)]
    assert len(s) == dynamics.N_STATE
    return s


def run(s, n, dt, thr=0.0, torque=(0.0, 0.0, 0.0), veh=None):
    """n steps; returns the final state, the summed dv_z and the summed delta-angle."""
    veh = veh or vehicle()
    dv = 0.0
    dth = [0.0, 0.0, 0.0]
    for _ in range(n):
        s, dvz, da = dynamics.rk4_step(s, dt, thr, torque, veh)
        dv += dvz
        for i in range(3):
            dth[i] += da[i]
    return s, dv, dth


def norm(a) -> float:
    return math.sqrt(sum(x * x for x in a))


def cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def rotate(q, v):
    m = dynamics.quat_to_matrix(q)
    return [sum(m[i][j] * v[j] for j in range(3)) for i in range(3)]


def upright_at(u):
    """Quaternion whose body +z points along unit vector u (body x, y completed arbitrarily)."""
    helper = (0.0, 0.0, 1.0) if abs(u[2]) < 0.9 else (1.0, 0.0, 0.0)
    x = cross(helper, u)
    x = [c / norm(x) for c in x]
    y = cross(u, x)
    rot = [[x[i], y[i], u[i]] for i in range(3)]
    return dynamics.matrix_to_quat(rot)


# A general (non-axis) direction, so every term of the body-z column is exercised.
U_SITE = tuple(c / norm((0.3, -0.5, 0.8)) for c in (0.3, -0.5, 0.8))


# --------------------------------------------------------------------------- orbit

A_ORBIT = MEAN_RADIUS_M + 100e3
T_ORBIT = 2.0 * math.pi * math.sqrt(A_ORBIT ** 3 / GM_M3PS2)
V_CIRC = math.sqrt(GM_M3PS2 / A_ORBIT)
INC = math.radians(30.0)
R0 = (A_ORBIT, 0.0, 0.0)
V0 = (0.0, V_CIRC * math.cos(INC), V_CIRC * math.sin(INC))


def orbit_after_one_period(n_steps: int) -> list[float]:
    s, dv, _ = run(state(R0, V0), n_steps, T_ORBIT / n_steps)
    assert dv == 0.0                     # engine off: no specific force at all
    return s


def energy(s) -> float:
    return 0.5 * norm(s[3:6]) ** 2 - GM_M3PS2 / norm(s[0:3])


def test_circular_orbit_closes_after_one_period_and_conserves_invariants() -> None:
    n = round(T_ORBIT / 0.5)             # ~0.5 s steps (~14,000 per orbit)
    s = orbit_after_one_period(n)
    assert math.dist(s[0:3], R0) < 1e-3                  # back at the start (m)
    assert math.dist(s[3:6], V0) < 1e-6                  # with the start velocity (m/s)
    e0 = 0.5 * V_CIRC ** 2 - GM_M3PS2 / A_ORBIT
    assert abs(energy(s) - e0) <= 1e-9 * abs(e0)
    h0 = cross(R0, V0)
    h1 = cross(s[0:3], s[3:6])
    assert math.dist(h1, h0) <= 1e-9 * norm(h0)
    # Nothing else moves: no rotation, no mass flow.
    assert s[6:10] == [1.0, 0.0, 0.0, 0.0] and s[10:13] == [0.0, 0.0, 0.0] and s[13] == WET_KG


def test_rk4_is_fourth_order_on_the_orbit() -> None:
    # Coarse steps, so truncation (not rounding) dominates: halving dt cuts the closure
    # error by 2^4 = 16 for a 4th-order method (2 or 4 would mean 1st or 2nd order).
    e1 = math.dist(orbit_after_one_period(400)[0:3], R0)
    e2 = math.dist(orbit_after_one_period(800)[0:3], R0)
    assert e1 > 1e-3                     # really in the truncation regime
    assert 8.0 < e1 / e2 < 24.0, (e1, e2)


# --------------------------------------------------------------------------- free fall

def test_free_fall_from_rest_at_100_m() -> None:
    r0 = MEAN_RADIUS_M + 100.0
    g0 = GM_M3PS2 / r0 ** 2
    t, dt = 10.0, 0.01
    s, dv, _ = run(state([r0 * c for c in U_SITE], (0.0, 0.0, 0.0)), round(t / dt), dt)
    r1 = norm(s[0:3])
    drop = r0 - r1
    # Gravity grows as 1/r^2 on the way down: x'' = g0 (1 + 2 x / r0 + ...). With
    # x ~ g0 t^2 / 2 the extra acceleration is g0^2 t^2 / r0, so the first correction to
    # 0.5 g0 t^2 is g0^2 t^4 / (12 r0) (~1.3 mm here); the next is ~1e-4 of that.
    uniform = 0.5 * g0 * t * t
    gradient = g0 * g0 * t ** 4 / (12.0 * r0)
    assert abs(drop - uniform - gradient) < 0.05 * gradient, (drop, uniform, gradient)
    # Speed: g0 t plus its own gradient term g0^2 t^3 / (3 r0).
    speed = norm(s[3:6])
    assert abs(speed - g0 * t - g0 * g0 * t ** 3 / (3.0 * r0)) < 1e-5
    # Straight down the radial: no sideways motion.
    u1 = [c / r1 for c in s[0:3]]
    assert math.dist(u1, U_SITE) < 1e-12
    assert dv == 0.0                     # an accelerometer in free fall reads nothing


# --------------------------------------------------------------------------- engine

def test_hover_trimmed_every_step_holds_altitude_and_burns_t_over_isp_g0() -> None:
    r0 = MEAN_RADIUS_M + 100.0
    s = state([r0 * c for c in U_SITE], (0.0, 0.0, 0.0), q=upright_at(U_SITE))
    veh = vehicle(tau_s=0.0)
    dt, n = 0.005, 2000                  # 10 s at the plant's 200 Hz
    burned = 0.0
    worst = 0.0
    for _ in range(n):
        r = norm(s[0:3])
        thr = s[13] * GM_M3PS2 / r ** 2 / MAX_THRUST_N     # thrust = weight
        m_before = s[13]
        s, _, _ = dynamics.rk4_step(s, dt, thr, (0.0, 0.0, 0.0), veh)
        # Constant thrust over the step: the mass drops by exactly T dt / (Isp g0).
        step_burn = thr * MAX_THRUST_N * dt / VE
        assert abs((m_before - s[13]) - step_burn) <= 1e-9 * step_burn
        burned += step_burn
        worst = max(worst, abs(norm(s[0:3]) - r0))
    assert worst < 0.01                  # altitude held within a centimetre for 10 s
    assert abs((WET_KG - s[13]) - burned) <= 1e-9 * burned
    # And the mass drop is what weight / (Isp g0) predicts (mass changes by < 1 %).
    g0 = GM_M3PS2 / r0 ** 2
    assert burned == pytest.approx(WET_KG * g0 / VE * 10.0, rel=1e-2)


def test_constant_throttle_climb_follows_the_rocket_equation() -> None:
    # Throttle fixed at the initial hover value: mass falls exactly linearly, the vehicle
    # gets lighter and climbs; x(t) from integrating v(t) = ve ln(m0/m(t)) - g t.
    r0 = MEAN_RADIUS_M + 100.0
    g = GM_M3PS2 / r0 ** 2
    thr = WET_KG * g / MAX_THRUST_N
    k = thr * MAX_THRUST_N / VE                       # kg/s
    s = state([r0 * c for c in U_SITE], (0.0, 0.0, 0.0), q=upright_at(U_SITE))
    veh = vehicle(tau_s=0.0)
    dt = 0.005
    for i in range(1, 2001):
        s, _, _ = dynamics.rk4_step(s, dt, thr, (0.0, 0.0, 0.0), veh)
        if i % 200 == 0:
            t = i * dt
            assert abs(s[13] - (WET_KG - k * t)) <= 1e-6 * k * t    # linear to 1e-6
    t = 10.0
    m0, m1 = WET_KG, WET_KG - k * t
    # integral_0^t ln(m0 / m(s)) ds, with m(s) = m0 - k s
    int_ln = t * math.log(m0) + ((m1 * math.log(m1) - m1) - (m0 * math.log(m0) - m0)) / k
    rise = VE * int_ln - 0.5 * g * t * t
    assert rise > 0.1                                   # a real, measurable climb
    # Gravity falls off by 2 rise / r0 (~1e-7 relative) on the way up: negligible.
    assert abs((norm(s[0:3]) - r0) - rise) < 1e-4, (norm(s[0:3]) - r0, rise)
    assert abs(s[13] - m1) <= 1e-9 * m0


def test_thrust_delta_v_matches_the_rocket_equation_in_free_space() -> None:
    far = 1e12                                          # gravity ~5e-12 m/s^2: free space
    q = upright_at(U_SITE)
    s0 = state((far, 0.0, 0.0), (0.0, 0.0, 0.0), q=q)
    dt, n = 0.01, 10000                                 # 100 s at full throttle
    s, dv_z, _ = run(s0, n, dt, thr=1.0, veh=vehicle(tau_s=0.0))
    m1 = WET_KG - MAX_THRUST_N / VE * n * dt
    assert s[13] == pytest.approx(m1, rel=1e-12)
    ideal = VE * math.log(WET_KG / m1)
    assert abs(dv_z - ideal) <= 1e-6 * ideal           # the IMU-side delta-v
    dv_vec = [a - b for a, b in zip(s[3:6], s0[3:6])]
    assert abs(norm(dv_vec) - ideal) <= 1e-6 * ideal   # the velocity itself
    # ... along body +z, i.e. along U_SITE in inertial axes.
    assert math.dist([c / norm(dv_vec) for c in dv_vec], U_SITE) < 1e-9


def test_engine_stops_at_the_dry_mass() -> None:
    far = 1e12
    veh = vehicle(tau_s=0.0, dry_kg=WET_KG - 10.0)     # 10 kg of propellant: ~7.1 s burn
    dt = 0.01
    s, dv_z, _ = run(state((far, 0.0, 0.0), (0.0, 0.0, 0.0)), 1000, dt, thr=1.0, veh=veh)
    assert s[13] == WET_KG - 10.0                       # clamped, never below dry
    ideal = VE * math.log(WET_KG / (WET_KG - 10.0))
    a_max = MAX_THRUST_N / (WET_KG - 10.0)
    assert abs(dv_z - ideal) <= a_max * dt             # within the step that burns out
    assert abs(norm(s[3:6]) - ideal) <= a_max * dt
    # And no thrust once dry.
    s2, dv2, _ = run(s, 100, dt, thr=1.0, veh=veh)
    assert dv2 == 0.0 and s2[13] == s[13]


def test_first_order_throttle_response() -> None:
    tau = 0.1
    veh = vehicle(tau_s=tau)
    dt = 0.005
    s = state((1e12, 0.0, 0.0), (0.0, 0.0, 0.0))
    s, _, _ = run(s, round(tau / dt), dt, thr=1.0, veh=veh)
    assert abs(s[14] - (1.0 - math.exp(-1.0))) < 1e-6   # 63.2 % after one time constant
    s, _, _ = run(s, round(tau / dt), dt, thr=1.0, veh=veh)
    assert abs(s[14] - (1.0 - math.exp(-2.0))) < 1e-6
    # Mass follows the lagged thrust: m0 - (T/ve) (t - tau (1 - e^{-t/tau})).
    t = 2 * tau
    expected = WET_KG - MAX_THRUST_N / VE * (t - tau * (1.0 - math.exp(-t / tau)))
    assert abs(s[13] - expected) < 1e-6
    # Step down to zero: decays the same way.
    thr0 = s[14]
    s, _, _ = run(s, round(tau / dt), dt, thr=0.0, veh=veh)
    assert abs(s[14] - thr0 * math.exp(-1.0)) < 1e-6


def test_zero_time_constant_applies_the_demand_at_once() -> None:
    s = state((1e12, 0.0, 0.0), (0.0, 0.0, 0.0))
    s, _, _ = dynamics.rk4_step(s, 0.005, 0.37, (0.0, 0.0, 0.0), vehicle(tau_s=0.0))
    assert s[14] == 0.37


# --------------------------------------------------------------------------- attitude

def test_torque_free_spin_about_a_principal_axis_keeps_its_rate() -> None:
    w = 0.5
    dt, n = 0.01, 1000                                  # 10 s
    s, _, dth = run(state((1e12, 0.0, 0.0), (0.0, 0.0, 0.0), w=(0.0, 0.0, w)), n, dt,
                    veh=vehicle(inertia=(100.0, 200.0, 300.0)))
    assert s[10:13] == [0.0, 0.0, w]
    angle = w * n * dt
    q_expected = (math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2))
    assert math.dist(s[6:10], q_expected) < 1e-9
    assert abs(dth[2] - angle) < 1e-12 and dth[0] == 0.0 and dth[1] == 0.0


def test_constant_torque_spins_up_linearly() -> None:
    inertia = (700.0, 700.0, 500.0)
    torque = (0.0, 150.0, 0.0)
    alpha = torque[1] / inertia[1]
    dt, n = 0.005, 400                                  # 2 s
    s, _, dth = run(state((1e12, 0.0, 0.0), (0.0, 0.0, 0.0)), n, dt, torque=torque,
                    veh=vehicle(inertia=inertia))
    t = n * dt
    assert abs(s[11] - alpha * t) < 1e-12               # w = tau / I t
    assert s[10] == 0.0 and s[12] == 0.0
    theta = 0.5 * alpha * t * t
    assert abs(dth[1] - theta) < 1e-12                  # delta-angles add up to the angle
    q_expected = (math.cos(theta / 2), 0.0, math.sin(theta / 2), 0.0)
    assert math.dist(s[6:10], q_expected) < 1e-9


def angular_momentum_inertial(s, inertia):
    h_body = [inertia[i] * s[10 + i] for i in range(3)]
    return rotate(s[6:10], h_body)


def test_torque_free_tumble_conserves_inertial_angular_momentum_and_energy() -> None:
    # A general tumble: Euler's equations and the quaternion kinematics must agree, or the
    # angular momentum seen from the inertial frame drifts.
    inertia = (100.0, 200.0, 300.0)
    veh = vehicle(inertia=inertia)
    q0 = upright_at(U_SITE)
    s = state((1e12, 0.0, 0.0), (0.0, 0.0, 0.0), q=q0, w=(0.3, -0.2, 0.25))
    h0 = angular_momentum_inertial(s, inertia)
    k0 = 0.5 * sum(inertia[i] * s[10 + i] ** 2 for i in range(3))
    dt = 0.005
    for _ in range(20):
        s, _, _ = run(s, 100, dt, veh=veh)
        assert abs(norm(s[6:10]) - 1.0) < 1e-14
        assert math.dist(angular_momentum_inertial(s, inertia), h0) < 1e-8 * norm(h0)
        k = 0.5 * sum(inertia[i] * s[10 + i] ** 2 for i in range(3))
        assert abs(k - k0) < 1e-9 * k0
    # It really tumbled (the body rates changed direction).
    assert math.dist(s[10:13], (0.3, -0.2, 0.25)) > 0.05


def test_intermediate_axis_is_unstable_major_axis_is_stable() -> None:
    inertia = (100.0, 200.0, 300.0)                     # x minor, y intermediate, z major
    veh = vehicle(inertia=inertia)
    eps = 1e-6
    dt, n = 0.01, 4000                                  # 40 s; growth ~exp(0.58 t) on y

    wy_min, wx_max = 1.0, 0.0
    s = state((1e12, 0.0, 0.0), (0.0, 0.0, 0.0), w=(eps, 1.0, eps))
    for _ in range(n // 50):
        s, _, _ = run(s, 50, dt, veh=veh)
        wy_min = min(wy_min, s[11])
        wx_max = max(wx_max, abs(s[10]))
    assert wx_max > 0.1                                 # the perturbation grew 1e5-fold
    assert wy_min < -0.5                                # the Dzhanibekov flip

    s, _, _ = run(state((1e12, 0.0, 0.0), (0.0, 0.0, 0.0), w=(eps, eps, 1.0)), n, dt, veh=veh)
    assert abs(s[10]) < 10 * eps and abs(s[11]) < 10 * eps
    assert abs(s[12] - 1.0) < 1e-9


# --------------------------------------------------------------------------- the fast kernel

def test_kernel_is_bit_for_bit_the_reference_form() -> None:
    # rk4_step (the plant's hot path, plain floats in one loop) must give exactly what the
    # plainly written rk4_step_reference over derivative() gives: random states over the
    # whole envelope (engine on and off, with and without throttle lag, burning out).
    import random
    rnd = random.Random(7)
    for _ in range(3000):
        q = [rnd.gauss(0.0, 1.0) for _ in range(4)]
        q = [c / norm(q) for c in q]
        s = state([rnd.uniform(-2e6, 2e6) for _ in range(3)],
                  [rnd.uniform(-2e3, 2e3) for _ in range(3)], q=q,
                  w=[rnd.gauss(0.0, 0.3) for _ in range(3)],
                  m=rnd.uniform(500.0, 1300.0), thr=rnd.uniform(0.0, 1.0))
        veh = vehicle(tau_s=rnd.choice([0.0, 0.1]), inertia=(700.0, 650.0, 500.0),
                      dry_kg=rnd.choice([DRY_KG, 1250.0]))
        thr = rnd.choice([0.0, rnd.uniform(0.1, 1.0)])
        torque = tuple(rnd.uniform(-200.0, 200.0) for _ in range(3))
        dt = rnd.choice([0.005, 0.001, 0.05])
        fast = dynamics.rk4_step(s, dt, thr, torque, veh)
        ref = dynamics.rk4_step_reference(s, dt, thr, torque, veh)
        assert fast[0] == ref[0] and fast[1] == ref[1] and tuple(fast[2]) == tuple(ref[2])
