"""The flight software's cycle: navigate, pick the mode, guide, control (MicroPython-safe).

One call of :meth:`FlightSoftware.step` answers one sensor frame. Time comes only from the
frame's integer microseconds; the flight software never reads a clock.

Modes (``bridge.protocol.MODES``): init -> coast (engine off, accelerometer calibration)
-> braking (ZEM/ZEV to high gate, near full thrust) -> approach (ZEM/ZEV to low gate over
the site) -> terminal (vertical descent at a capped rate). ``touchdown`` and ``safe`` are
in the table for the fault handling to come; this flight software does not enter them yet
(the plant ends the run at first contact).
"""

import math

from bridge import protocol
from fsw import control, guidance, vec
from fsw.nav import Navigator, gravity

NAME = "fsil-fsw"
VERSION = "0.1.0"

MODE_INDEX = {}
for _i, _m in enumerate(protocol.MODES):
    MODE_INDEX[_m] = _i

# Aim points relative to the site: altitude (m), downrange (m), up speed, downrange speed (m/s).
HIGH_GATE = (2000.0, -5000.0, -35.0, 80.0)
LOW_GATE = (60.0, 0.0, -3.0, 0.0)

BRAKING_THRUST_FRACTION = 0.85   # of the available thrust acceleration used to solve t_go
APPROACH_THRUST_FRACTION = 0.9   # ... and the most an approach (re-)plan may demand
VARIANTS = ("default", "legacy")
# The flight software's own covariance check failed this cycle (protocol v2's bit).
FLAG_NAV_COV_FAULT = getattr(protocol, "FLAG_NAV_COV_FAULT", 64)

# Default FDIR: what the flight software does when the altimeter is late or gone.
GUARD_RANGE_M = 400.0            # the altimeter is assumed to lock by this range at worst
STOP_THRUST_FRACTION = 0.5       # of the thrust kept for stopping when it locks late
BLIND_MARGIN_M = 100.0           # extra clearance when landing without the altimeter
REPLAN_JUMP_M = 50.0             # a terrain step this large re-plans the approach
PHASE_END_TGO_S = 3.0            # leave a ZEM/ZEV phase this close to its aim point


class FlightSoftware:
    """Navigation, mode logic, guidance and control for one landing."""

    def __init__(self, config, variant="default"):
        if variant not in VARIANTS:
            raise ValueError("unknown flight software variant %r; choose one of %s"
                             % (variant, ", ".join(VARIANTS)))
        self.variant = variant
        veh = config["vehicle"]
        self.max_thrust_n = float(veh["max_thrust_n"])
        self.min_throttle = float(veh["min_throttle"])
        self.exhaust_mps = float(veh["isp_s"]) * 9.80665
        self.inertia = tuple(float(x) for x in veh["inertia_kgm2"])
        self.max_torque = tuple(float(x) for x in veh["max_torque_nm"])
        self.throttle_tau_s = float(veh.get("throttle_time_constant_s", 0.1))
        self.mass_kg = float(veh["dry_mass_kg"]) + float(veh["propellant_kg"])
        site = config["site"]
        self.site = guidance.SiteGeometry(site["up"], site["east"], float(site["radius_m"]))
        nav0 = config["nav_init"]
        alt = config["altimeter"]
        self.nav = Navigator(nav0["r_m"], nav0["v_mps"], nav0["q"], int(nav0["t_us"]),
                             self.site.radius_m, float(alt["noise_m"]),
                             float(alt["noise_fraction"]), alt["boresight_body"],
                             float(nav0["pos_sigma_m"]), float(nav0["vel_sigma_mps"]),
                             variant, site["up"])
        self.ignition_t_us = int(config["ignition_t_us"])
        self.mode = "init"
        self.phase = None
        self.braking_solved = False
        self.throttle_est = 0.0
        self.throttle_cmd = 0.0
        self.last_t_us = int(nav0["t_us"])
        self.hold_dir = vec.rotate(self.nav.q, (0.0, 0.0, 1.0))

    # --- one cycle ----------------------------------------------------------------------
    def step(self, frame):
        """Answer one frame (``.seq``, ``.t_us``, ``.imu``, ``.alt``, ``.vel``; see fsw/frame.py).

        Returns (throttle, torque_nm, mode_index, nav7, flags): the flight-software contract
        of docs/your-fsw.md.
        """
        t_us, imu, alt = frame.t_us, frame.imu, frame.alt
        dt = (t_us - self.last_t_us) * 1e-6
        self.last_t_us = t_us
        nav = self.nav
        nav.ground_m = self.site.ground(nav.d)
        nav.propagate(imu, self.mode in ("init", "coast"))
        h_before = nav.altitude_m()
        nav.fuse_altimeter(alt)
        self._update_mass(dt)
        self._update_mode(t_us)
        if self.variant == "default" and abs(nav.altitude_m() - h_before) > REPLAN_JUMP_M and (
                self.mode == "approach" or
                self.mode == "braking" and nav.agl_m() < 1.2 * HIGH_GATE[0]):
            # Our own height was wrong by a lot: re-plan from the corrected one, stopping
            # where the vehicle can rather than insisting on the site.
            self.mode = "approach"
            self._start_phase("approach", t_us, divert_free=True)

        a_thr = None
        if self.mode in ("braking", "approach"):
            a_thr = self._zem_zev_step(t_us, dt)
        elif self.mode == "terminal":
            a_thr, _ = guidance.vertical_descent(
                max(0.0, nav.agl_m() - self._blind_margin()), nav.v, nav.up(), self.site,
                nav.d, vec.norm(gravity(nav.r)))
        if a_thr is not None and nav.alt_overdue:
            a_thr = self._limit_descent(a_thr)

        if a_thr is None:
            direction, a_mag = self.hold_dir, 0.0
        else:
            a_mag = vec.norm(a_thr)
            direction = vec.unit(a_thr) if a_mag > 1e-6 else self.hold_dir
            self.hold_dir = direction
        torque, err = control.attitude_torque(self.nav.q, self.nav.last_rate_body, direction,
                                              self.inertia, self.max_torque)
        throttle = 0.0
        if a_thr is not None:
            throttle = control.throttle_for(a_mag, self.mass_kg, self.max_thrust_n,
                                            self.min_throttle, err)
        self.throttle_cmd = throttle
        return throttle, torque, MODE_INDEX[self.mode], self._nav7(), self._flags()

    # --- pieces -------------------------------------------------------------------------
    def _update_mass(self, dt):
        """Mass from the modelled engine: throttle lag, then flow from thrust and Isp."""
        cmd = self.throttle_cmd
        if self.throttle_tau_s > 0.0:
            self.throttle_est += (cmd - self.throttle_est) * min(1.0, dt / self.throttle_tau_s)
        else:
            self.throttle_est = cmd
        self.mass_kg -= self.max_thrust_n * self.throttle_est / self.exhaust_mps * dt

    def _update_mode(self, t_us):
        nav = self.nav
        if self.mode == "init":
            self.mode = "coast" if t_us < self.ignition_t_us else self._entry_phase()
        elif self.mode == "coast" and t_us >= self.ignition_t_us:
            nav.finish_calibration()
            self.mode = self._entry_phase()
        elif self.mode in ("braking", "approach") and self.phase.t_go <= PHASE_END_TGO_S:
            self.mode = "approach" if self.mode == "braking" else "terminal"
        elif self.mode == "approach" and nav.agl_m() < self._low_gate_m() * 0.8:
            self.mode = "terminal"
        if self.mode in ("braking", "approach") and (self.phase is None
                                                     or self.phase.name != self.mode):
            self._start_phase(self.mode, t_us)

    def _entry_phase(self):
        """The phase to start in, from the navigated state (a run may start late)."""
        nav = self.nav
        v_h = vec.norm(vec.sub(nav.v, vec.scale(nav.up(), nav.vertical_speed_mps())))
        if v_h > 300.0:
            return "braking"
        if nav.agl_m() > LOW_GATE[0]:
            return "approach"
        return "terminal"

    def _start_phase(self, name, t_us, divert_free=False):
        nav = self.nav
        gate = HIGH_GATE if name == "braking" else LOW_GATE
        r_t, v_t = (gate[0], gate[1], 0.0), (gate[2], gate[3], 0.0)
        t_go = 0.0  # braking: solved on the first step
        if name != "braking":
            pos, vel, _ = self._local()
            v_h = math.sqrt(vel[1] * vel[1] + vel[2] * vel[2])
            t_h = 2.0 * abs(r_t[1] - pos[1]) / max(v_h + abs(v_t[1]), 1.0)
            t_v = 2.0 * max(0.0, pos[0] - r_t[0]) / max(abs(vel[0]) + abs(v_t[0]), 1.0)
            if divert_free:
                t_h = 0.0  # the aim point follows the vehicle: only the height sets the time
            t_go = vec.clamp(max(t_h, t_v), 20.0, 300.0)
            # Never shorter than what the engine can fly (after a late height correction).
            g = (-guidance.effective_gravity(vec.norm(nav.r), 0.0, 0.0), 0.0, 0.0)
            a_max = APPROACH_THRUST_FRACTION * self.max_thrust_n / self.mass_kg
            t_go = max(t_go, guidance.solve_tgo(pos, vel, g, r_t, v_t, a_max, a_max, t_min=3.0))
        self.phase = guidance.Phase(name, r_t, v_t, t_go)
        self.phase.divert_free = divert_free

    def _zem_zev_step(self, t_us, dt):
        nav, ph = self.nav, self.phase
        pos, vel, axes = self._local()
        if ph.name == "approach":
            down, cross = ph.r_t[1], ph.r_t[2]
            if ph.divert_free:  # aim where a constant deceleration stops us
                t_half = 0.5 * max(ph.t_go, PHASE_END_TGO_S)
                down, cross = pos[1] + vel[1] * t_half, pos[2] + vel[2] * t_half
            ph.r_t = (self._low_gate_m(), down, cross)
        v_h = math.sqrt(vel[1] * vel[1] + vel[2] * vel[2])
        g = (-guidance.effective_gravity(vec.norm(nav.r), v_h, abs(ph.v_t[1])), 0.0, 0.0)
        ph.t_go -= dt
        if ph.name == "braking" and ph.t_go <= 0.0 and not self.braking_solved:
            self._solve_braking_tgo(pos, vel, g)
            self.braking_solved = True
        t_go = max(ph.t_go, PHASE_END_TGO_S)
        a_local = guidance.zem_zev(pos, vel, g, ph.r_t, ph.v_t, t_go)
        return self.site.to_inertial(a_local, axes)

    def _local(self):
        """Guidance state in the site frame (height above the site's datum)."""
        nav = self.nav
        return self.site.local(nav.d, nav.v, nav.altitude_m())

    def _blind(self):
        """Landing without a healthy altimeter (default flight software only)."""
        return self.variant == "default" and not self.nav.alt_healthy and \
            (self.nav.alt_overdue or not self.nav.alt_ever_valid)

    def _blind_margin(self):
        """Clearance added to every height target when the altimeter cannot be trusted."""
        if not self._blind():
            return 0.0
        return 3.0 * self.nav.agl_sigma_m() + BLIND_MARGIN_M

    def _low_gate_m(self):
        return LOW_GATE[0] + self._blind_margin()

    def _limit_descent(self, a_thr):
        """Cap the descent rate so the vehicle can still stop when the altimeter locks late.

        The cap is the speed from which half the spare thrust stops the vehicle within the
        pessimistic height (navigated height less three inflated sigmas), but never within
        less than ``GUARD_RANGE_M``.
        """
        nav = self.nav
        up = nav.up()
        g = vec.norm(gravity(nav.r))
        a_stop = STOP_THRUST_FRACTION * self.max_thrust_n / self.mass_kg - g
        if a_stop <= 0.0:
            return a_thr
        sigma = nav.agl_sigma_m() + nav.overdue_sigma_m()
        v_cap = math.sqrt(2.0 * a_stop * max(GUARD_RANGE_M, nav.agl_m() - 3.0 * sigma))
        vz = nav.vertical_speed_mps()
        if vz >= -v_cap:
            return a_thr
        a_up = vec.dot(a_thr, up)
        a_up_min = g + 0.5 * (-v_cap - vz)
        if a_up >= a_up_min:
            return a_thr
        return vec.add(a_thr, vec.scale(up, a_up_min - a_up))

    def _solve_braking_tgo(self, pos, vel, g):
        """Time-to-go whose acceleration profile fits the engine, now and at high gate."""
        ph = self.phase
        a_now = BRAKING_THRUST_FRACTION * self.max_thrust_n / self.mass_kg
        dv = vec.norm(vec.sub(ph.v_t, vel)) + 1.62 * 60.0  # rough gravity loss
        m_end = self.mass_kg * math.exp(-dv / self.exhaust_mps)
        a_end = BRAKING_THRUST_FRACTION * self.max_thrust_n / m_end
        ph.t_go = guidance.solve_tgo(pos, vel, g, ph.r_t, ph.v_t, a_now, a_end)

    def _nav7(self):
        n = self.nav
        return (n.r[0], n.r[1], n.r[2], n.v[0], n.v[1], n.v[2], n.agl_m())

    def _flags(self):
        f = 0
        if self.nav.alt_used:
            f |= protocol.FLAG_ALT_USED
        if self.nav.alt_rejected:
            f |= protocol.FLAG_ALT_REJECTED
        if self.nav.alt_healthy:
            f |= protocol.FLAG_ALT_HEALTHY
        if self.nav.cov_fault():
            f |= FLAG_NAV_COV_FAULT
        return f
