"""The flight software's cycle: navigate, pick the mode, guide, control (MicroPython-safe).

One call of :meth:`FlightSoftware.step` answers one sensor frame. Time comes only from the
frame's integer microseconds; the flight software never reads a clock.

Modes (``bridge.protocol.MODES``): init -> coast (engine off, accelerometer calibration)
-> braking (ZEM/ZEV to high gate) -> approach (ZEM/ZEV to low gate) -> terminal (a final
ZEM/ZEV leg to 45 m over the site, then a vertical descent at about 1 m/s): an Apollo-class
profile (docs/architecture.md) -> touchdown (the accelerometer felt the legs: engine off,
attitude only damped, so the vehicle settles on its gear). ``safe``: the site is given up
(a divert): after a navigation correction (a late altimeter lock, a large velocimeter
correction) the approach to the site is re-planned only if its profile fits the engine,
leans at most 60 deg and stays above half the low gate; otherwise the flight software
nulls its horizontal velocity at up to 50 deg of lean, descends to 45 m as the slide dies
out and lands where it stopped (``guidance.land_here``, then the vertical descent), and
reports ``safe`` until touchdown. ``safe`` too while it lands blind (no height measured:
altimeter and velocimeter lost): descend to the highest the ground can be (the height less
three sigmas), then at a constant rate the propellant lasts for through that band (at most
``BLIND_MAX_RATE_MPS``), until the legs touch (``_blind_descent``).

What the vehicle is: the HELLO config's ``vehicle`` block, what the flight software is
*told* (it may differ from the truth). The thrust acceleration actually obtained is
measured: the accelerometer's reading against the engine model while the engine burns
steadily gives ``thrust_scale``, which the throttle and every thrust-limited plan use.
With a ``velocimeter`` block the default variant fuses the Doppler lidar too
(``fsw/velnav.py``); with a ``star_tracker`` block, the measured attitude
(``Navigator.fuse_star_tracker``: the attitude corrected, the gyro bias learnt).
"""

import math

from bridge import protocol
from fsw import control, guidance, vec, velnav
from fsw.nav import Navigator, gravity

NAME = "fsil-fsw"
# 0.2.0: Apollo-class profile, told vehicle, velocimeter fusion, touchdown cut-off.
# 0.3.0: navigates on a rotating Moon (Moon-fixed state; HELLO moon.rotation_rad_s).
# 0.4.0: velocimeter filter with an unmodelled-acceleration state (flown out); re-plan on
#        a large velocimeter correction; velocimeter beams outvote an altimeter step.
# 0.5.0: a late altimeter lock corrects the height, not the terrain; a re-plan goes to the
#        site only if it is reachable, else a divert (mode safe) lands where it stops.
# 0.6.0: the altimeter filter carries the tilt error and its drift, sized from the HELLO
#        ``imu`` block (MEMS braking drift); braking re-plans after a height step over
#        1 km; a blind landing descends through its 3-sigma band at a rate the
#        propellant lasts for (mode safe); the velocimeter's acceleration flown while healthy.
# 0.7.0: braking never climbs (above twice high gate): while going up, the upward thrust
#        is capped to decay the vertical speed at 0.3 /s (a dispersed upward start climbed
#        50-64 m), the thrust at most ~15 deg below the horizon.
# 0.8.0: a star tracker (HELLO ``star_tracker``, FRAME ``att``) is fused: the attitude
#        corrected and the gyro bias learnt from it (a MEMS unit's 2 deg of braking drift);
#        without one, 0.7.0 bit for bit.
# 0.8.1: an altimeter followed against the velocimeter's beams (it said we are lower) that
#        then drifts the terrain estimate 3 map sigmas off the datum, and as many since its
#        last step, is isolated for good (a range scale error: 4 crashes of 56 in the
#        alt-scale campaign on 0.8.0); the beams are heights again. Without an altimeter
#        fault, 0.8.0 bit for bit.
# 0.8.2: a failing star tracker is isolated (a sample repeated exactly: stuck; the
#        disagreement jumping between two samples: a shifted mounting) and a sample older
#        than the attitudes kept is not compared; a healthy tracker's runs, and runs
#        without one, 0.8.0 bit for bit.
# 0.8.3: after braking, the thrust demand is held within 70 deg of the vertical (ZEM/ZEV
#        asked for thrust 155 deg from it, high and slow over a near target: a tumble);
#        runs that never ask for more, 0.8.2 bit for bit.
VERSION = "0.8.3"

MODE_INDEX = {}
for _i, _m in enumerate(protocol.MODES):
    MODE_INDEX[_m] = _i

# Aim points relative to the site: altitude (m), downrange (m), up speed, downrange speed (m/s),
# Apollo-like (Apollo 11: high gate ~2.3 km and ~8 km out, low gate ~150 m, then a vertical
# descent at ~1 m/s from ~45 m).
HIGH_GATE = (2100.0, -8000.0, -40.0, 110.0)    # braking ends here
LOW_GATE = (150.0, -600.0, -2.0, 12.0)         # approach ends here
TERMINAL_GATE = (45.0, 0.0, -1.0, 0.0)         # over the site: the vertical descent starts
GATES = {"braking": HIGH_GATE, "approach": LOW_GATE, "final": TERMINAL_GATE}
# Legacy only: a mission's own plan (HELLO ``fsw.plan``, the scenario's ``[plan]``) replaces
# these gates' components key by key; the default variant always flies the gates above.
PLAN_KEYS = {"high_gate": "braking", "low_gate": "approach", "terminal_gate": "final"}
PLAN_PARTS = ("height_m", "downrange_m", "up_mps", "downrange_mps")
# ... and its vertical descent's last rate (m/s, positive up: ``vertical_descent_up_mps``).
PLAN_DESCENT_KEY = "vertical_descent_up_mps"
PHASE_MODE = {"braking": "braking", "approach": "approach", "final": "terminal",
              "vertical": "terminal", "divert": "safe"}

BRAKING_THRUST_FRACTION = 0.85   # of the available thrust acceleration used to solve t_go
APPROACH_THRUST_FRACTION = 0.9   # ... and the most an approach (re-)plan may demand
VARIANTS = ("default", "legacy")
# The flight software's own covariance check failed this cycle (protocol v2's bit).
FLAG_NAV_COV_FAULT = getattr(protocol, "FLAG_NAV_COV_FAULT", 64)
FLAG_VEL_USED = getattr(protocol, "FLAG_VEL_USED", 8)
FLAG_VEL_REJECTED = getattr(protocol, "FLAG_VEL_REJECTED", 16)
FLAG_VEL_HEALTHY = getattr(protocol, "FLAG_VEL_HEALTHY", 32)

# Default FDIR: what the flight software does when the altimeter is late or gone.
GUARD_RANGE_M = 400.0            # the altimeter is assumed to lock by this range at worst
STOP_THRUST_FRACTION = 0.5       # of the thrust kept for stopping when it locks late
BLIND_MARGIN_M = 100.0           # extra clearance when landing without the altimeter
BLIND_MAX_RATE_MPS = 1.6         # blind: the last descent's rate at most (touchdown limit 2)
BLIND_PROPELLANT_USE = 0.8       # ... and the share of the propellant left it may take
REPLAN_JUMP_M = 50.0             # a terrain step this large re-plans the approach
REPLAN_VEL_MPS = 5.0             # ... and velocimeter corrections summing to this
REPLAN_BRAKING_JUMP_M = 1000.0   # ... in braking, below 1.2 high gates or after a height
                                 #     step this large (a MEMS unit's braking drift)
NEAR_SITE_M = 1000.0             # guidance heights are above the ground this near the site
BLEND_M = 2000.0                 # ... and blend to above the datum over this distance
SITE_MAX_TILT_RAD = 1.05         # a re-planned approach to the site tilts at most 60 deg
BRAKING_RESOLVE_S = 15.0         # braking's time-to-go is checked this long after ignition
CONTACT_AGL_M = 5.0              # touchdown is looked for below this height ...
CONTACT_ACCEL_MPS2 = 0.5         # ... as this much more acceleration than the engine gives
CONTACT_FRAMES = 2               # ... in this many frames in a row
THRUST_SCALE_TAU_S = 5.0         # time constant of the measured thrust-scale filter
PHASE_END_TGO_S = 3.0            # leave a ZEM/ZEV phase this close to its aim point


def legacy_gates(config):
    """The gates the legacy variant flies: ``GATES`` with the components the HELLO
    ``fsw.plan`` map gives (``high_gate_height_m``, ``low_gate_up_mps``, ...) replaced."""
    plan = (config.get("fsw") or {}).get("plan") or {}
    gates = {}
    for key, phase in PLAN_KEYS.items():
        gate = list(GATES[phase])
        for i, part in enumerate(PLAN_PARTS):
            value = plan.get(key + "_" + part)
            if value is not None:
                gate[i] = float(value)
        gates[phase] = tuple(gate)
    return gates


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
        self.dry_mass_kg = float(veh["dry_mass_kg"])
        self.mass_kg = self.dry_mass_kg + float(veh["propellant_kg"])
        # Measured over modelled thrust acceleration (the accelerometer against the told
        # thrust, mass, Isp and lag): 1 when what the flight software was told is the truth.
        self.thrust_scale = 1.0
        self._contact = 0             # frames in a row that felt the legs push
        site = config["site"]
        self.site = guidance.SiteGeometry(site["up"], site["east"], float(site["radius_m"]))
        nav0 = config["nav_init"]
        alt = config["altimeter"]
        # The Moon turns about inertial +z: navigation and guidance are Moon-fixed.
        self.omega = float(config.get("moon", {}).get("rotation_rad_s", 0.0))
        self.nav = Navigator(nav0["r_m"], nav0["v_mps"], nav0["q"], int(nav0["t_us"]),
                             self.site.radius_m, float(alt["noise_m"]),
                             float(alt["noise_fraction"]), alt["boresight_body"],
                             float(nav0["pos_sigma_m"]), float(nav0["vel_sigma_mps"]),
                             variant, site["up"], self.omega, config.get("imu"))
        st = config.get("star_tracker")
        self.star_tracker = bool(st) and variant == "default"
        if self.star_tracker:
            self.nav.use_star_tracker(st)
        self.ignition_t_us = int(config["ignition_t_us"])
        vel = config.get("velocimeter")
        self.velnav = velnav.VelocimeterFilter(vel) if vel and variant == "default" else None
        self.mode = "init"
        self.phase = None
        self.braking_solved = False
        self.braking_resolve_us = 0
        self.throttle_est = 0.0
        self.throttle_cmd = 0.0
        self.last_t_us = int(nav0["t_us"])
        self.hold_dir = vec.rotate(self.nav.q, (0.0, 0.0, 1.0))
        self.gates = legacy_gates(config) if variant == "legacy" else GATES
        self.last_rate_mps = guidance.DESCENT_RATE_MPS
        plan = (config.get("fsw") or {}).get("plan") or {}
        if variant == "legacy" and plan.get(PLAN_DESCENT_KEY) is not None:
            self.last_rate_mps = -float(plan[PLAN_DESCENT_KEY])

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
        if self.star_tracker:
            nav.fuse_star_tracker(getattr(frame, "att", None))
        h_before = nav.altitude_m()
        nav.fuse_altimeter(alt)
        if self.velnav is not None:
            self.velnav.propagate(dt, nav.process_accel_mps2, nav)
            self.velnav.fuse(nav, frame.vel)
        self._update_mass(dt)
        self._update_thrust_scale(dt)
        self._update_mode(t_us)
        jump = abs(nav.altitude_m() - h_before)
        if self.variant == "default" and (self.mode == "approach" or self.mode == "braking"
                                          and (nav.agl_m() < 1.2 * HIGH_GATE[0] or
                                               jump > REPLAN_BRAKING_JUMP_M)):
            if jump > REPLAN_JUMP_M:
                # Our own height was wrong by a lot (a late altimeter): re-plan from the
                # corrected one; to the site if the engine can still fly there safely,
                # else land here (``safe``).
                self._replan(t_us)
            elif self._velocity_jumped():
                # Our own velocity was wrong by a lot (an IMU's drift the velocimeter has
                # just measured): a new approach to the site, timed so the engine can fly
                # it, or a divert if it cannot.
                self._replan(t_us)

        a_thr = None
        self._detect_contact()
        if self.mode == "touchdown":
            # On the legs: engine off, the attitude only damped (the gear holds it).
            self.hold_dir = vec.rotate(nav.q, (0.0, 0.0, 1.0))
        elif self.phase is not None and self.phase.name == "divert":
            a_thr = guidance.land_here(nav.agl_m(), self._gate_height_m(self.gates["final"]), nav.v,
                                       nav.up(), vec.norm(gravity(nav.r)),
                                       self._a_full(APPROACH_THRUST_FRACTION))
        elif self.phase is not None and self.phase.name != "vertical":
            a_thr = self._zem_zev_step(t_us, dt)
        elif self.mode == "terminal" and self._blind():
            a_thr = self._blind_descent()
        elif self.mode == "terminal":
            a_thr, _ = guidance.vertical_descent(
                max(0.0, nav.agl_m() - self._blind_margin()), nav.v, nav.up(),
                vec.norm(gravity(nav.r)), self.last_rate_mps)
        if a_thr is not None and nav.alt_overdue:
            a_thr = self._limit_descent(a_thr)
        if a_thr is not None and self.velnav is not None and self.velnav.healthy:
            # What the velocimeter measured the vehicle doing beyond what the engine and
            # gravity explain (the thrust through an attitude error): flown out.
            a_thr = vec.sub(a_thr, self.velnav.accel)

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
            throttle = control.throttle_for(a_mag, self.mass_kg,
                                            self.max_thrust_n * self.thrust_scale,
                                            self.min_throttle, err)
        self.throttle_cmd = throttle
        mode = self.mode
        if self.phase is not None and self.phase.divert_free and mode != "touchdown":
            mode = "safe"   # the site is given up: landing where the vehicle can stop
        elif mode == "terminal" and self._blind():
            mode = "safe"   # no height measurement: the blind landing's descent (an
            # altimeter not yet locked or overdue in approach is not yet a blind landing)
        return throttle, torque, MODE_INDEX[mode], self._nav7(), self._flags()

    # --- pieces -------------------------------------------------------------------------
    def _replan(self, t_us):
        """After a large navigation correction: the site's approach if its profile fits the
        engine, stays within ``SITE_MAX_TILT_RAD`` of the vertical and keeps above half the
        low gate's height; otherwise give up the site for safety (a divert, for good): null
        the horizontal velocity and land where the vehicle stops (mode ``safe``)."""
        if self.phase is not None and self.phase.divert_free:
            return                       # a divert is a feedback law: nothing to re-plan
        self._start_phase("approach", t_us)
        self.mode = "approach"
        ph = self.phase
        pos, vel, _ = self._local()
        v_h = math.sqrt(vel[1] * vel[1] + vel[2] * vel[2])
        g = guidance.down(guidance.effective_gravity(vec.norm(self.nav.r), v_h, abs(ph.v_t[1])))
        if not guidance.reachable(pos, vel, g, ph.r_t, ph.v_t, ph.t_go,
                                  self._a_full(APPROACH_THRUST_FRACTION),
                                  0.5 * ph.r_t[0], SITE_MAX_TILT_RAD):
            self._start_phase("divert", t_us, divert_free=True)
            self.mode = "safe"

    def _velocity_jumped(self):
        """The velocimeter's corrections since the last check sum to REPLAN_VEL_MPS."""
        vn = self.velnav
        if vn is None or vec.norm(vn.correction) < REPLAN_VEL_MPS:
            return False
        vn.correction = (0.0, 0.0, 0.0)
        return True

    def _update_mass(self, dt):
        """Mass from the modelled engine: throttle lag, then flow from thrust and Isp."""
        cmd = self.throttle_cmd
        if self.throttle_tau_s > 0.0:
            self.throttle_est += (cmd - self.throttle_est) * min(1.0, dt / self.throttle_tau_s)
        else:
            self.throttle_est = cmd
        self.mass_kg -= self.max_thrust_n * self.throttle_est / self.exhaust_mps * dt

    def _update_thrust_scale(self, dt):
        """Compare the accelerometer with the modelled thrust acceleration while the engine
        burns steadily, and track the ratio (mass, thrust and Isp errors all show in it)."""
        est, cmd = self.throttle_est, self.throttle_cmd
        if est < self.min_throttle + 0.05 or abs(cmd - est) > 0.01 or dt <= 0.0:
            return
        ratio = self.nav.specific_force_mps2 / (est * self.max_thrust_n / self.mass_kg)
        ratio = vec.clamp(ratio, 0.5, 1.5)
        self.thrust_scale += (ratio - self.thrust_scale) * min(1.0, dt / THRUST_SCALE_TAU_S)

    def _detect_contact(self):
        """Touchdown: in the vertical descent, low, the accelerometer reads more than the
        engine gives (the legs push) for CONTACT_FRAMES frames in a row."""
        if self.mode == "touchdown" or self.phase is None or self.phase.name != "vertical":
            return
        if self.nav.agl_m() > CONTACT_AGL_M + (self._blind_sigma3() if self._blind() else 0.0):
            self._contact = 0
            return
        excess = self.nav.specific_force_mps2 - self._a_full(self.throttle_est)
        self._contact = self._contact + 1 if excess > CONTACT_ACCEL_MPS2 else 0
        if self._contact >= CONTACT_FRAMES:
            self.mode = "touchdown"

    def _a_full(self, fraction, mass_kg=None):
        """Thrust acceleration at ``fraction`` of full thrust, as measured."""
        m = self.mass_kg if mass_kg is None else mass_kg
        return fraction * self.thrust_scale * self.max_thrust_n / m

    def _update_mode(self, t_us):
        nav = self.nav
        if self.mode == "init":
            self.mode = "coast" if t_us < self.ignition_t_us else self._entry_phase(t_us)
        elif self.mode == "coast" and t_us >= self.ignition_t_us:
            nav.finish_calibration()
            self.mode = self._entry_phase(t_us)
        ph = self.phase
        if ph is not None:
            nxt = None
            if ph.name == "braking" and self.braking_solved and ph.t_go <= PHASE_END_TGO_S:
                nxt = "approach"
            elif ph.name == "approach" and (
                    ph.t_go <= PHASE_END_TGO_S or
                    nav.agl_m() < self._gate_height_m(self.gates["approach"]) * 0.5):
                nxt = "final"
            elif ph.name == "final" and (ph.t_go <= PHASE_END_TGO_S or
                                         nav.agl_m() < self._gate_height_m(self.gates["final"])):
                nxt = "vertical"
            elif ph.name == "divert":
                # Over the ground it stopped on (or, still sliding, far too low): the
                # vertical descent (which still nulls what is left of the sliding).
                floor = self._gate_height_m(self.gates["final"])
                up = nav.up()
                v_h = vec.norm(vec.sub(nav.v, vec.scale(up, vec.dot(nav.v, up))))
                if nav.agl_m() < floor + 5.0 and v_h < guidance.HOLD_SPEED_MPS or \
                        nav.agl_m() < 0.5 * floor:
                    nxt = "vertical"
            if nxt is not None:
                self._start_phase(nxt, t_us, ph.divert_free)
        if self.phase is not None and self.mode != "touchdown":
            self.mode = PHASE_MODE[self.phase.name]

    def _entry_phase(self, t_us):
        """Start in the phase the navigated state calls for (a run may start late)."""
        nav = self.nav
        v_h = vec.norm(vec.sub(nav.v, vec.scale(nav.up(), nav.vertical_speed_mps())))
        if v_h > 300.0:
            name = "braking"
        elif nav.agl_m() > LOW_GATE[0]:
            name = "approach"
        elif nav.agl_m() > TERMINAL_GATE[0]:
            name = "final"
        else:
            name = "vertical"
        self._start_phase(name, t_us)
        return PHASE_MODE[name]

    def _start_phase(self, name, t_us, divert_free=False):
        nav = self.nav
        if name == "vertical" or name == "divert":
            self.phase = guidance.Phase(name, None, None, 0.0)
            self.phase.divert_free = divert_free
            return
        gate = self.gates[name]
        r_t, v_t = (gate[0], gate[1], 0.0), (gate[2], gate[3], 0.0)
        t_go = 0.0  # braking: solved on the first step
        if name != "braking":
            pos, vel, _ = self._local()
            v_h = math.sqrt(vel[1] * vel[1] + vel[2] * vel[2])
            t_h = 2.0 * abs(r_t[1] - pos[1]) / max(v_h + abs(v_t[1]), 1.0)
            t_v = 2.0 * max(0.0, pos[0] - r_t[0]) / max(abs(vel[0]) + abs(v_t[0]), 1.0)
            t_go = vec.clamp(max(t_h, t_v), 20.0, 300.0)
            # Never shorter than what the engine can fly (after a late height correction).
            g = guidance.down(guidance.effective_gravity(vec.norm(nav.r), 0.0, 0.0))
            a_max = self._a_full(APPROACH_THRUST_FRACTION)
            t_go = max(t_go, guidance.solve_tgo(pos, vel, g, r_t, v_t, a_max, a_max, t_min=3.0))
        self.phase = guidance.Phase(name, r_t, v_t, t_go)
        self.phase.divert_free = divert_free

    def _zem_zev_step(self, t_us, dt):
        nav, ph = self.nav, self.phase
        pos, vel, axes = self._local()
        if ph.name != "braking":
            ph.r_t = (self._gate_height_m(self.gates[ph.name]), ph.r_t[1], ph.r_t[2])
        v_h = math.sqrt(vel[1] * vel[1] + vel[2] * vel[2])
        g = guidance.down(guidance.effective_gravity(vec.norm(nav.r), v_h, abs(ph.v_t[1])))
        if self.omega != 0.0:
            g = guidance.with_frame_terms(g, self.omega, nav.r, nav.v,
                                          self.site.to_frame(ph.v_t, axes), axes)
        ph.t_go -= dt
        if ph.name == "braking" and (not self.braking_solved or self.braking_resolve_us and
                                     t_us >= self.braking_resolve_us):
            # Solved at ignition on the told thrust; once more when the accelerometer has
            # measured it, if the told figure was off.
            if not self.braking_solved:
                self.braking_resolve_us = t_us + int(BRAKING_RESOLVE_S * 1e6)
            else:
                self.braking_resolve_us = 0
            if not self.braking_solved or abs(self.thrust_scale - 1.0) > 0.02:
                self._solve_braking_tgo(pos, vel, g)
            self.braking_solved = True
        t_go = max(ph.t_go, PHASE_END_TGO_S)
        a_local = guidance.zem_zev(pos, vel, g, ph.r_t, ph.v_t, t_go)
        if ph.name == "braking" and pos[0] > 2.0 * ph.r_t[0]:   # well above high gate
            a_local = guidance.arrest_climb(a_local, vel[0], vec.norm(nav.r),
                                            vec.dot(nav.v, nav.v))
        elif ph.name != "braking":
            a_local = guidance.tilt_cone(a_local)
        return self.site.to_frame(a_local, axes)

    def _local(self):
        """Guidance state in the site frame (height, downrange, crossrange; their rates).

        The height is above the site's datum far from the site; within ``NEAR_SITE_M`` of it
        (and from low gate on) it is the height above the ground measured under the lander,
        blended over ``BLEND_M`` in between. The altimeter knows the second far better than
        the first (the datum altitude is only as good as the terrain estimate), and near the
        site the ground under the lander is the site's.
        """
        nav = self.nav
        agl = nav.agl_m()
        if self.phase is None or self.phase.name not in ("final", "vertical", "divert"):
            down, cross = nav.ground_m
            d = math.sqrt(down * down + cross * cross)
            agl += vec.clamp((d - NEAR_SITE_M) / BLEND_M, 0.0, 1.0) * nav.terrain_m
        return self.site.local(nav.d, nav.v, agl)

    def _blind(self):
        """Landing without a healthy altimeter (default flight software only)."""
        return self.variant == "default" and not self.nav.height_healthy() and \
            (self.nav.alt_overdue or not self.nav.alt_ever_valid)

    def _blind_sigma3(self):
        """Three sigmas of the height when blind (the filter's own, and, if no height was
        ever measured, what guidance assumes for a late altimeter)."""
        nav = self.nav
        s = nav.agl_sigma_m()
        if not nav.alt_ever_valid and nav.beam_accept_us is None:
            s += nav.overdue_sigma_m()
        return 3.0 * s

    def _blind_descent(self):
        """A blind landing's vertical descent (no height measurement): the usual descent to
        the highest the ground can be (the navigated height less three sigmas), then a
        constant rate down through the band where the ground may be, until the legs touch.

        The rate is the slowest that crosses the whole band (six sigmas, less what is
        already below the band's top) on ``BLIND_PROPELLANT_USE`` of the propellant left at
        hover flow, at least the usual 1 m/s and at most ``BLIND_MAX_RATE_MPS`` (within
        the touchdown limit): the propellant then lasts to the lowest the ground can be,
        and the vehicle meets the highest at a speed the gear takes.
        """
        nav = self.nav
        g = vec.norm(gravity(nav.r))
        s3 = self._blind_sigma3()
        h = nav.agl_m()
        prop = max(0.0, self.mass_kg - self.dry_mass_kg)
        mdot = self.mass_kg * g / self.exhaust_mps
        t_avail = BLIND_PROPELLANT_USE * prop / max(mdot, 1e-6)
        span = s3 + min(max(h, 0.0), s3)
        rate = vec.clamp(span / max(t_avail, 1.0), guidance.DESCENT_RATE_MPS, BLIND_MAX_RATE_MPS)
        a_thr, _ = guidance.vertical_descent(max(0.0, h - s3), nav.v, nav.up(), g, rate)
        return a_thr

    def _blind_margin(self):
        """Clearance added to every height target when the altimeter cannot be trusted."""
        if not self._blind():
            return 0.0
        return 3.0 * self.nav.agl_sigma_m() + BLIND_MARGIN_M

    def _gate_height_m(self, gate):
        return gate[0] + self._blind_margin()

    def _limit_descent(self, a_thr):
        """Cap the descent rate so the vehicle can still stop when the altimeter locks late.

        The cap is the speed from which half the spare thrust stops the vehicle within the
        pessimistic height (navigated height less three inflated sigmas), but never within
        less than ``GUARD_RANGE_M``.
        """
        nav = self.nav
        up = nav.up()
        g = vec.norm(gravity(nav.r))
        a_stop = self._a_full(STOP_THRUST_FRACTION) - g
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
        a_now = self._a_full(BRAKING_THRUST_FRACTION)
        dv = vec.norm(vec.sub(ph.v_t, vel)) + 1.62 * 60.0  # rough gravity loss
        m_end = self.mass_kg * math.exp(-dv / self.exhaust_mps)
        a_end = self._a_full(BRAKING_THRUST_FRACTION, m_end)
        ph.t_go = guidance.solve_tgo(pos, vel, g, ph.r_t, ph.v_t, a_now, a_end)

    def _nav7(self):
        """The estimate for the telemetry: inertial (MCI) position and velocity, height."""
        n = self.nav
        r, v = n.r_inertial(), n.v_inertial()
        return (r[0], r[1], r[2], v[0], v[1], v[2], n.agl_m())

    def _flags(self):
        f = 0
        if self.nav.alt_used:
            f |= protocol.FLAG_ALT_USED
        if self.nav.alt_rejected:
            f |= protocol.FLAG_ALT_REJECTED
        if self.nav.alt_healthy:
            f |= protocol.FLAG_ALT_HEALTHY
        vn = self.velnav
        if vn is not None:
            if vn.used:
                f |= FLAG_VEL_USED
            if vn.rejected:
                f |= FLAG_VEL_REJECTED
            if vn.healthy:
                f |= FLAG_VEL_HEALTHY
        if self.nav.cov_fault() or vn is not None and vn.cov_fault():
            f |= FLAG_NAV_COV_FAULT
        return f
