"""The plant: lander dynamics, terrain and sensors behind a Gymnasium-like contract.

``reset(seed=...)`` returns the first sensor frame; ``step(command)`` holds the command for
one frame period, integrates the physics at its own rate, samples the IMU and altimeter at
theirs, and returns the next frame. Sim time is integer microseconds. All randomness comes
from generators seeded by ``seed``: the same seed gives the same run, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from plant import dynamics
from plant.altimeter import LaserAltimeter
from plant.config import ScenarioConfig
from plant.faults import FaultSet
from plant.gear import LandingGear
from plant.imu import Imu
from plant.moon import Moon, SiteFrame
from plant.terrain import Terrain
from plant.star_tracker import StarTracker
from plant.velocimeter import DopplerVelocimeter

US_PER_S = 1_000_000
# History columns of the landing gear (LanderPlant.gear_row), legs numbered from 1.
GEAR_COLUMNS = ["gear_legs_down", *(f"gear_stroke{i}_m" for i in range(1, 5)),
                *(f"gear_load{i}_n" for i in range(1, 5))]


class PlantError(Exception):
    """Base of the plant's errors."""


class RateError(PlantError):
    """Rates that do not divide into whole numbers of physics steps."""


@dataclass
class Command:
    """A command as the plant applies it."""

    throttle: float = 0.0                                  # 0 = off, else min..1
    torque_nm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # body axes


@dataclass
class SensorFrame:
    """What the plant sends each cycle."""

    seq: int
    t_us: int
    imu: list[list[float]]          # [t_us, dvx, dvy, dvz, dax, day, daz] per sample
    alt: list | None                # [t_us, range_m, valid] or None
    vel: list | None = None         # [t_us, v0, v1, v2, r0, r1, r2, valid_mask] or None
    att: list | None = None         # star tracker: [t_us, qw, qx, qy, qz, valid] or None


@dataclass
class Outcome:
    """How the run ended."""

    outcome: str                    # landed | crashed | tipped_over | out_of_propellant | timeout
    reason: str
    touchdown: dict = field(default_factory=dict)


def _ratio(a_hz: float, b_hz: float, what: str) -> int:
    n = a_hz / b_hz
    if abs(n - round(n)) > 1e-9 or round(n) < 1:
        raise RateError(f"{what}: {a_hz:g} Hz is not a whole multiple of {b_hz:g} Hz")
    return int(round(n))


class LanderPlant:
    """Lander around a spherical Moon with IMU and laser altimeter."""

    def __init__(self, cfg: ScenarioConfig, kernel: bool = True) -> None:
        """``kernel``: fly on the compiled kernel (``plant/kernel.py``; bit for bit the same
        results); False: the pure-Python reference path (the equality tests compare them)."""
        self.cfg = cfg
        r = cfg.rates
        self.steps_per_frame = _ratio(r.physics_hz, r.frame_hz, "physics rate / frame rate")
        self.steps_per_imu = _ratio(r.physics_hz, r.imu_hz, "physics rate / IMU rate")
        if US_PER_S % round(r.physics_hz) != 0 or r.physics_hz != round(r.physics_hz):
            raise RateError(f"physics rate {r.physics_hz:g} Hz must divide 1e6 us exactly")
        self.dt_us = US_PER_S // round(r.physics_hz)
        self.dt_s = self.dt_us * 1e-6
        self.alt_period_us = int(round(US_PER_S / r.altimeter_hz))
        v = cfg.vehicle
        mc = cfg.moon
        self.moon = Moon(mc.gm_m3ps2, mc.radius_m, mc.rotation_rad_s)
        self.veh = dynamics.VehicleModel(v.max_thrust_n, v.isp_s, v.dry_mass_kg,
                                         tuple(v.inertia_kgm2), v.throttle_time_constant_s,
                                         gm_m3ps2=self.moon.gm_m3ps2)
        self.site = SiteFrame(cfg.target.lat_deg, cfg.target.lon_deg, self.moon.radius_m)
        self.terrain = Terrain(cfg.terrain, self.site)
        self.gear = LandingGear(cfg.gear, self.terrain, self.moon, v.dry_mass_kg,
                                tuple(v.inertia_kgm2)) if cfg.gear.enabled else None
        self._n_sub = self.gear.substeps(self.dt_s) if self.gear else 1
        self._kernel = None
        if kernel:
            from plant.kernels import load      # C or numba: only a plant that flies pays
            self._kernel = kmod = load()
            veh, p = self.veh, np.zeros(kmod.N_P)
            p[kmod.P_DT], p[kmod.P_DT_US] = self.dt_s, self.dt_us
            p[kmod.P_IXX], p[kmod.P_IYY], p[kmod.P_IZZ] = veh.ixx, veh.iyy, veh.izz
            p[kmod.P_FMAX], p[kmod.P_VE], p[kmod.P_DRY] = \
                veh.max_thrust_n, veh.exhaust_mps, veh.dry_mass_kg
            p[kmod.P_MGM] = -veh.gm_m3ps2
            p[kmod.P_TAU] = veh.throttle_tau_s
            p[kmod.P_TWO] = 2.0
            p[kmod.P_SPI] = self.steps_per_imu
            self._k_p = p
            self._k_io = np.zeros(kmod.N_IO)
            self._k_out = np.zeros((self.steps_per_frame, kmod.N_OUT))
            # Load (or compile) the machine code now, not in the first frame: a real-time
            # run's first cycle would miss its deadline by the ~0.3 s a cache load takes.
            kmod.fly(self._k_io, 0, p, np.zeros((6, 3)), np.zeros((0, 6)), self._k_out)
        self.done = False
        self.outcome: Outcome | None = None
        self.seq = 0
        self.t_us = 0

    # --- contract -----------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> SensorFrame:
        """Start a run from the scenario's initial state; returns frame 0."""
        seed = self.cfg.run.seed if seed is None else seed
        self.seed = seed
        # Children 0..4 are the same whether 5 or 6 are spawned: adding a generator leaves
        # runs without the new model bit for bit as they were.
        ss_imu, ss_alt, ss_know, ss_fault, ss_vel, ss_st = \
            np.random.SeedSequence(seed).spawn(6)
        rates = self.cfg.rates
        self.imu = Imu(self.cfg.imu, rates.imu_hz, np.random.default_rng(ss_imu))
        self.altimeter = LaserAltimeter(self.cfg.altimeter, rates.altimeter_hz,
                                        np.random.default_rng(ss_alt), self.cfg.terrain.albedo)
        self.velocimeter = DopplerVelocimeter(self.cfg.velocimeter, np.random.default_rng(ss_vel)) \
            if self.cfg.velocimeter.enabled else None
        self.next_vel_us = 0
        self.star_tracker = StarTracker(self.cfg.star_tracker, np.random.default_rng(ss_st)) \
            if self.cfg.star_tracker.enabled else None
        self.next_st_us = 0
        know = np.random.default_rng(ss_know)
        self.state = self._initial_state()
        k = self.cfg.knowledge
        # The state vector handed to the flight software: drawn once per run.
        self._know_err = (know.standard_normal(3) * k.position_sigma_m,
                          know.standard_normal(3) * k.velocity_sigma_mps,
                          know.standard_normal(3) * math.radians(k.attitude_sigma_deg))
        self.seq = 0
        self.t_us = 0
        self.step_index = 0
        self.next_alt_us = 0
        self.command = Command()
        self.done = False
        self.outcome = None
        self.propellant_out_t_us: int | None = None
        self._acc_dv = 0.0
        self._acc_dv_xy = [0.0, 0.0]
        self._acc_dth = [0.0, 0.0, 0.0]
        self._imu_buffer: list[list[float]] = []
        self._contact_t_us: int | None = None
        self._first_touch: dict = {}
        self._rest_since_us: int | None = None
        if self.gear is not None:
            self.gear.reset()
        if self._kernel is not None:
            k, p = self._kernel, self._k_p
            self._k_imu_a, limit, quantum, sat, quant = self.imu.kernel_params()
            p[k.P_LIMIT:k.P_LIMIT + 6] = limit
            p[k.P_QUANTUM:k.P_QUANTUM + 6] = quantum
            p[k.P_SAT], p[k.P_QUANT] = float(sat), float(quant)
        self.faults = FaultSet(self.cfg.faults, np.random.default_rng(ss_fault),
                               1.0 / rates.imu_hz, self.cfg.altimeter.acquisition_s,
                               self.cfg.velocimeter.acquisition_s)
        if self.star_tracker is not None:
            self.faults.star_tracker_axes = self.star_tracker.axes
        self.faults.begin_frame(0, 0)
        self._update_faults()
        self._sample_altimeter()
        if self.velocimeter is not None:
            self._sample_velocimeter()
        if self.star_tracker is not None:
            self._sample_star_tracker()
        return SensorFrame(0, 0, [], self.altimeter.delivered(0), self._vel(0), self._att(0))

    def step(self, command: Command) -> SensorFrame:
        """Apply ``command`` for one frame period; returns the next frame."""
        if self.done:
            raise PlantError("step() after the run ended; call reset()")
        self.command = self._limit(command)
        thr_target = self.command.throttle
        torque = self.command.torque_nm
        self.faults.begin_frame(self.seq + 1, self.t_us)
        steps = self.steps_per_frame
        if self._contact_t_us is None:
            fly = self._fly if self._kernel is None else self._fly_kernel
            steps = fly(steps, thr_target, torque)
        if steps and not self.done:
            self._settle(steps, thr_target, torque)
        if not self.done and self.t_us >= self.cfg.run.max_sim_time_s * US_PER_S:
            self.done = True
            self.outcome = Outcome("timeout", f"no touchdown within {self.cfg.run.max_sim_time_s:g} s"
                                   " of sim time", {})
        self.seq += 1
        imu, self._imu_buffer = self._imu_buffer, []
        return SensorFrame(self.seq, self.t_us, imu, self.altimeter.delivered(self.t_us),
                           self._vel(self.t_us), self._att(self.t_us))

    def _fly(self, steps: int, thr_target: float, torque: tuple[float, float, float]) -> int:
        """Physics steps in flight (no contact) until ``steps`` are done or the vehicle
        touches the ground; returns how many steps are left (0 when all were flown)."""
        check_ground = self._near_ground()
        # The hot loop: attributes read once into locals (the plant's cost per physics step
        # is what a campaign pays; bench/plant_step.py measures it).
        rk4 = dynamics.rk4_step
        dt_s, dt_us, veh, dry_kg = self.dt_s, self.dt_us, self.veh, self.veh.dry_mass_kg
        steps_per_imu, faults = self.steps_per_imu, self.faults
        altitude = self._altitude_at
        velocimeter = self.velocimeter
        star_tracker = self.star_tracker
        # With legs, the footpads reach this far below the centre of mass (plus slopes).
        ground_margin = 0.0 if self.gear is None else \
            self.gear.reach_m + 2.0 * self.cfg.gear.footpad_radius_m
        state = self.state
        for n in range(steps):
            state, dv_z, dth = rk4(state, dt_s, thr_target, torque, veh)
            self.state = state
            self.step_index += 1
            self.t_us = t_us = self.step_index * dt_us
            if faults:
                self._update_faults()
            self._acc_dv += dv_z
            acc = self._acc_dth
            acc[0] += dth[0]
            acc[1] += dth[1]
            acc[2] += dth[2]
            if self.step_index % steps_per_imu == 0:
                self._sample_imu()
            if t_us >= self.next_alt_us:
                self._sample_altimeter()
            if velocimeter is not None and t_us >= self.next_vel_us:
                self._sample_velocimeter()
            if star_tracker is not None and t_us >= self.next_st_us:
                self._sample_star_tracker()
            if self.propellant_out_t_us is None and thr_target > 0 and state[13] <= dry_kg:
                self.propellant_out_t_us = t_us
            if check_ground and altitude(state, t_us) <= ground_margin:
                if self.gear is None:
                    self._touchdown()
                    return 0
                if self.gear.lowest_altitude_m(state, t_us * 1e-6) <= 0.0:
                    self._first_contact()
                    return steps - n - 1
        return 0

    def _fly_kernel(self, steps: int, thr_target: float,
                    torque: tuple[float, float, float]) -> int:
        """:meth:`_fly` on the compiled kernel: the rigid body and the IMU model for the
        frame's steps in one call, then, in step order, what needs Python (faults, the
        altimeter and velocimeter samples, the propellant and ground checks). Nothing of
        that feeds back into the rigid body or the IMU model, so the results are bit for
        bit those of :meth:`_fly`, but for the ground contact, which ends flight: when a
        step within the call touches, the call is repeated up to that step."""
        k = self._kernel
        check_ground = self._near_ground()
        imu, io, out, p, imu_a = self.imu, self._k_io, self._k_out, self._k_p, self._k_imu_a
        fly = k.fly
        left = steps
        while left > 0:
            base = self.step_index
            # State, open increments, IMU carry, step, IMU row, command: the layout of IO_*.
            io_in = [*self.state, self._acc_dv, *self._acc_dth, *imu._carry, base, imu._row,
                     thr_target, *torque]
            n = left
            while True:             # once, or twice when a step within the call touches
                io[:] = io_in
                m, n_imu = fly(io, n, p, imu_a, imu._err_block, out)
                contact = self._first_ground_step(base, m) if check_ground else -1
                if contact < 0 or contact == m - 1:
                    break
                n = contact + 1     # the steps after the contact never happen: again
            # Commit the IMU model's and the open increments' state, then the events.
            back = io[k.IO_ACC:k.IO_ROW + 1].tolist()
            self._acc_dv = back[0]
            self._acc_dth = back[1:4]
            imu._carry = back[4:10]
            imu._row = int(back[11])
            imu.samples += n_imu
            self._k_events(base, m, n_imu, thr_target)
            self.step_index = base + m
            self.t_us = self.step_index * self.dt_us
            if m:
                self.state = out[m - 1, :k.N_STATE].tolist()
            left -= m
            if contact >= 0:
                if self.gear is None:
                    self._touchdown()
                    return 0
                self._first_contact()
                return left
            if left:
                imu._refill()       # the kernel stopped: the IMU's block of errors is used up
        return 0

    def _first_ground_step(self, base: int, m: int) -> int:
        """The first of the kernel's ``m`` steps (from step ``base``) at which the vehicle
        touches the ground, as :meth:`_fly` judges it; -1 if none."""
        altitude, gear = self._altitude_at, self.gear
        states = self._k_out[:m, :self._kernel.N_STATE].tolist()
        margin = 0.0 if gear is None else gear.reach_m + 2.0 * self.cfg.gear.footpad_radius_m
        # Above the terrain's highest point plus the margin, no need to evaluate it.
        clear_m = self.terrain.radius_m + self.terrain.max_height_m + margin
        for j, s in enumerate(states):
            if math.sqrt(s[0] * s[0] + s[1] * s[1] + s[2] * s[2]) > clear_m:
                continue
            t_us = (base + j + 1) * self.dt_us
            if altitude(s, t_us) <= margin and (
                    gear is None or gear.lowest_altitude_m(s, t_us * 1e-6) <= 0.0):
                return j
        return -1

    def _k_events(self, base: int, m: int, n_imu: int, thr_target: float) -> None:
        """What :meth:`_fly` does in Python at each of the kernel's ``m`` steps, in order."""
        k, faults, dt_us, out = self._kernel, self.faults, self.dt_us, self._k_out
        samples = out[:n_imu, k.O_IMU:k.O_STEP + 1].tolist()    # [t_us, y.., x.., j]
        buf = self._imu_buffer
        velocimeter = self.velocimeter
        star_tracker = self.star_tracker
        t_end = (base + m) * dt_us

        def at(j: int) -> None:     # the plant as it was after step j, for the sensors
            self.step_index = base + j + 1
            self.t_us = self.step_index * dt_us
            self.state = out[j, :k.N_STATE].tolist()

        if faults:                  # in general: every step, as _fly
            by_step = {int(r[13]): r for r in samples}
            for j in range(m):
                at(j)
                t_us = self.t_us
                if faults:
                    self._update_faults()
                r = by_step.get(j)
                if r is not None:
                    y = faults.apply_imu(t_us, r[1:7], r[7:10], r[10:13])
                    if y is not None:
                        buf.append([t_us, *y])
                if t_us >= self.next_alt_us:
                    self._sample_altimeter()
                if velocimeter is not None and t_us >= self.next_vel_us:
                    self._sample_velocimeter()
                if star_tracker is not None and t_us >= self.next_st_us:
                    self._sample_star_tracker()
        else:                       # no fault armed: only the samples' steps
            for r in samples:
                del r[7:]
                r[0] = int(r[0])
            buf += samples
            if n_imu:
                faults.apply_imu(t_end, samples[-1][1:], (), ())   # remembers the last one
            # At most one sample per step, at the first step at or after it is due.
            j = -1
            while self.next_alt_us <= t_end:
                j = max(j + 1, -(-self.next_alt_us // dt_us) - base - 1)
                if j >= m:
                    break
                at(j)
                self._sample_altimeter()
            j = -1
            while velocimeter is not None and self.next_vel_us <= t_end:
                j = max(j + 1, -(-self.next_vel_us // dt_us) - base - 1)
                if j >= m:
                    break
                at(j)
                self._sample_velocimeter()
            j = -1
            while star_tracker is not None and self.next_st_us <= t_end:
                j = max(j + 1, -(-self.next_st_us // dt_us) - base - 1)
                if j >= m:
                    break
                at(j)
                self._sample_star_tracker()
        dry_kg = self.veh.dry_mass_kg
        if self.propellant_out_t_us is None and thr_target > 0 and m and \
                out[m - 1, 13] <= dry_kg:
            j = next(j for j in range(m) if out[j, 13] <= dry_kg)
            self.propellant_out_t_us = (base + j + 1) * dt_us

    def _settle(self, steps: int, thr_target: float, torque: tuple[float, float, float]) -> None:
        """Physics steps after first contact: the rigid body with the gear's forces, on
        sub-steps, then the verdict checks (plant/gear.py)."""
        gear, veh = self.gear, self.veh
        n_sub = self._n_sub
        h = self.dt_s / n_sub
        g = self.cfg.gear
        for _ in range(steps):
            t0_s = self.step_index * self.dt_us * 1e-6
            dvx = dvy = dvz = 0.0
            dth = self._acc_dth
            state = self.state
            for k in range(n_sub):
                t_s = t0_s + k * h
                gear.begin_substep(state, t_s)
                state, dv, da = dynamics.rk4_step_forced(state, t_s, h, thr_target, torque,
                                                         veh, gear.forces)
                gear.end_substep(state, t_s + h)
                dvx, dvy, dvz = dvx + dv[0], dvy + dv[1], dvz + dv[2]
                dth[0] += da[0]
                dth[1] += da[1]
                dth[2] += da[2]
            self.state = state
            self.step_index += 1
            self.t_us = t_us = self.step_index * self.dt_us
            if self.faults:
                self._update_faults()
            self._acc_dv += dvz
            self._acc_dv_xy[0] += dvx
            self._acc_dv_xy[1] += dvy
            if self.step_index % self.steps_per_imu == 0:
                self._sample_imu()
            if t_us >= self.next_alt_us:
                self._sample_altimeter()
            if self.velocimeter is not None and t_us >= self.next_vel_us:
                self._sample_velocimeter()
            if self.star_tracker is not None and t_us >= self.next_st_us:
                self._sample_star_tracker()
            if self.propellant_out_t_us is None and thr_target > 0 and \
                    state[13] <= veh.dry_mass_kg:
                self.propellant_out_t_us = t_us
            if self._verdict(g, t_us):
                return

    def _verdict(self, g, t_us: int) -> bool:
        """End the run if the gear has failed, the vehicle has tipped, touched with its
        body, come to rest, or run out of settling time. True when it ended."""
        gear = self.gear
        after_s = (t_us - self._contact_t_us) * 1e-6
        worst = max(range(len(gear.load_n)), key=lambda i: gear.load_n[i])
        if gear.load_n[worst] > g.max_load_n:
            return self._end_contact(
                "crashed", f"gear overload: leg {worst + 1} load {gear.load_n[worst]:.0f} N > "
                f"{g.max_load_n:g} N ({gear.stroke_m[worst]:.2f} of {g.stroke_m:g} m stroke "
                f"used), {after_s:.2f} s after first contact")
        t = self.truth()
        if t["tilt_deg"] > g.tipped_tilt_deg:
            return self._end_contact(
                "tipped_over", f"tipped over: tilt {t['tilt_deg']:.0f} deg {after_s:.1f} s after "
                f"first contact on a {self._first_touch['slope_deg']:.1f} deg slope")
        if gear.body_altitude_m(self.state, t_us * 1e-6) <= 0.0:
            return self._end_contact(
                "crashed", f"body contact: the engine bell hit the ground {after_s:.2f} s after "
                f"first contact (strokes {', '.join(f'{x:.2f}' for x in gear.stroke_m)} m)")
        speed = math.sqrt(float(t["v_ground_mps"] @ t["v_ground_mps"]))
        resting = speed < g.rest_speed_mps and t["rate_dps"] < g.rest_rate_dps and \
            gear.legs_in_contact >= 3
        if not resting:
            self._rest_since_us = None
        elif self._rest_since_us is None:
            self._rest_since_us = t_us
        if resting and (t_us - self._rest_since_us) * 1e-6 >= g.rest_time_s:
            return self._at_rest(t, after_s, "")
        if after_s >= g.settle_time_s:
            # Out of time, still moving a little: a flight software that keeps its engine
            # near hover thrust floats on (or just above) its legs. Landed if it is slow,
            # upright and down (a footpad within 0.5 m of the ground).
            if speed < 0.5 and gear.lowest_altitude_m(self.state, t_us * 1e-6) < 0.5:
                return self._at_rest(t, after_s, f"; not fully at rest after {after_s:.0f} s "
                                     f"(speed {speed:.2f} m/s, {gear.legs_in_contact} legs "
                                     f"down, throttle {self.state[14]:.2f})")
            return self._end_contact(
                "crashed", f"not at rest {after_s:.0f} s after first contact: speed "
                f"{speed:.2f} m/s, {gear.legs_in_contact} legs down, tilt {t['tilt_deg']:.1f} deg")
        return False

    def _at_rest(self, t: dict, after_s: float, note: str) -> bool:
        g = self.cfg.gear
        if t["tilt_deg"] > g.max_rest_tilt_deg:
            return self._end_contact(
                "crashed", f"at rest tilted {t['tilt_deg']:.1f} deg > {g.max_rest_tilt_deg:g} deg"
                f"{note}")
        ft = self._first_touch
        return self._end_contact(
            "landed", f"touchdown at {ft['vertical_speed_mps']:.2f} m/s vertical, "
            f"{ft['horizontal_speed_mps']:.2f} m/s horizontal; at rest {after_s:.1f} s later, "
            f"{math.hypot(t['downrange_m'], t['crossrange_m']):.0f} m from the target, tilt "
            f"{t['tilt_deg']:.1f} deg, strokes up to {max(self.gear.max_stroke_m):.2f} m{note}")

    def _end_contact(self, outcome: str, reason: str) -> bool:
        gear = self.gear
        t = self.truth()
        td = dict(self._first_touch)
        td.update({
            "settle_time_s": (self.t_us - self._contact_t_us) * 1e-6,
            "rest_tilt_deg": t["tilt_deg"],
            "final_distance_to_target_m": math.hypot(t["downrange_m"], t["crossrange_m"]),
            "stroke_max_m": max(gear.max_stroke_m),
            "leg_load_max_n": max(gear.max_load_n),
            "legs_down": gear.legs_in_contact,
        })
        self.done = True
        self.outcome = Outcome(outcome, reason, td)
        return True

    def _first_contact(self) -> None:
        """A footpad (or the body) has touched the ground: record the first-touch values
        with the [touchdown] criteria, then settle on the gear (or end at once)."""
        td, over = self._first_touch_values()
        r_fixed, _ = self._ground_state()
        td["first_touch_ok"] = not over
        td["first_touch_exceeded"] = "; ".join(over)
        td["slope_deg"] = self.terrain.slope_deg(r_fixed)
        self._first_touch = td
        self._contact_t_us = self.t_us
        self._rest_since_us = None
        g = self.cfg.gear
        speed = math.hypot(td["vertical_speed_mps"], td["horizontal_speed_mps"])
        if self.propellant_out_t_us is not None:
            self._end_contact("out_of_propellant",
                              f"propellant ran out at t={self.propellant_out_t_us / 1e6:.1f} s; "
                              f"hit the ground at {td['vertical_speed_mps']:.1f} m/s")
        elif speed > g.max_contact_speed_mps:
            self._end_contact("crashed",
                              f"vertical speed {td['vertical_speed_mps']:.2f} m/s, horizontal "
                              f"speed {td['horizontal_speed_mps']:.2f} m/s at first contact: "
                              f"beyond the gear (max_contact_speed_mps {g.max_contact_speed_mps:g})")

    # --- configuration for the flight software ------------------------------------------
    def fsw_config(self) -> dict:
        """The handshake's config map: vehicle, site, initial state vector with its errors."""
        k, a = self.cfg.knowledge, self.cfg.altimeter
        s = self.state
        dr, dv, dth = self._know_err
        r0 = np.array(s[0:3])
        r = r0 + dr + k.altitude_bias_m * r0 / np.linalg.norm(r0)
        e, n, u = (float(x) for x in k.velocity_bias_mps)
        vel = np.array(s[3:6]) + dv + e * self.site.east + n * self.site.north + u * self.site.up
        q = _qmul(s[6:10], _qrotvec(dth))
        return {
            "vehicle": self.vehicle_knowledge(),
            "site": {"up": self.site.up.tolist(), "east": self.site.east.tolist(),
                     "radius_m": self.terrain.site_radius_m},
            "moon": self.moon.hello(),
            "nav_init": {"t_us": self.t_us, "r_m": r.tolist(), "v_mps": vel.tolist(),
                         "q": [float(c) for c in q], "pos_sigma_m": max(k.position_sigma_m, 1.0),
                         "vel_sigma_mps": max(k.velocity_sigma_mps, 0.01)},
            "altimeter": {"boresight_body": list(a.boresight_body), "noise_m": a.noise_m,
                          "noise_fraction": a.noise_fraction},
            **({"velocimeter": self.velocimeter.hello_config()} if self.velocimeter else {}),
            **({"star_tracker": self.star_tracker.hello_config()} if self.star_tracker else {}),
            "ignition_t_us": int(round(self.cfg.initial.coast_s * US_PER_S)),
            "imu_hz": self.cfg.rates.imu_hz,
            "imu": self.imu.hello_config(),
            "fsw": self._fsw_options(),
        }

    def _fsw_options(self) -> dict:
        """HELLO ``fsw``: the scenario's ``[plan]`` keys that are set (the legacy flight
        software's descent plan), under ``plan``; empty when none is."""
        plan = {k: float(v) for k, v in vars(self.cfg.plan).items() if v is not None}
        return {"plan": plan} if plan else {}

    def vehicle_knowledge(self) -> dict:
        """What the flight software is told about the vehicle: ``[knowledge.vehicle]`` where
        the scenario gives it, the truth (``[vehicle]``) elsewhere."""
        v, told = self.cfg.vehicle, self.cfg.knowledge.vehicle
        out = {name: float(getattr(v, name)) if getattr(told, name) is None
               else float(getattr(told, name))
               for name in ("dry_mass_kg", "propellant_kg", "max_thrust_n", "min_throttle",
                            "isp_s", "throttle_time_constant_s")}
        out["inertia_kgm2"] = list(v.inertia_kgm2)
        out["max_torque_nm"] = list(v.max_torque_nm)
        return out

    # --- truth for the history ----------------------------------------------------------
    def truth(self) -> dict:
        """True state in the quantities a person reads: altitude, speeds, tilt, mass."""
        s = self.state
        r = np.array(s[0:3])
        v = np.array(s[3:6])
        r_fixed, v_ground = self._ground_state()
        up = r / np.linalg.norm(r)
        # Speeds relative to the ground, along and across the local vertical.
        vg = np.array(v_ground)
        up_fixed = r_fixed / np.linalg.norm(r_fixed)
        vz = float(vg @ up_fixed)
        vh = float(np.linalg.norm(vg - vz * up_fixed))
        down, cross = self.site.ground_coordinates(r_fixed)
        rot = dynamics.quat_to_matrix(s[6:10])
        bz = np.array([rot[0][2], rot[1][2], rot[2][2]])
        tilt = math.degrees(math.acos(max(-1.0, min(1.0, float(bz @ up)))))
        return {
            "r_m": r, "v_mps": v,
            "r_fixed_m": r_fixed, "v_ground_mps": vg,
            "alt_m": self.terrain.altitude_m(r_fixed),
            "vert_speed_mps": vz, "horiz_speed_mps": vh,
            "downrange_m": down, "crossrange_m": cross,
            "tilt_deg": tilt,
            "rate_dps": math.degrees(math.sqrt(s[10] ** 2 + s[11] ** 2 + s[12] ** 2)),
            "mass_kg": s[13], "propellant_kg": s[13] - self.veh.dry_mass_kg,
            "throttle": s[14],
        }

    def gear_row(self) -> list:
        """History cells of the landing gear (:data:`GEAR_COLUMNS`): legs on the ground,
        crushed stroke per leg (m), contact force per leg (N); empty without gear."""
        g = self.gear
        if g is None:
            return [None] * len(GEAR_COLUMNS)
        return [g.legs_in_contact, *g.stroke_m, *g.load_n]

    # --- internals ----------------------------------------------------------------------
    def _initial_state(self) -> list[float]:
        ini = self.cfg.initial
        u = self.site.surface_direction(ini.downrange_m, ini.crossrange_m)
        # Local along-track direction at the start: d u / d downrange.
        u2 = self.site.surface_direction(ini.downrange_m + 1.0, ini.crossrange_m)
        along = u2 - u
        along -= (along @ u) * u
        along /= np.linalg.norm(along)
        side = np.cross(u, along)
        r = (self.moon.radius_m + ini.altitude_m) * u
        # The speeds are relative to the ground; MCI adds the ground's own velocity (the
        # frames coincide at t = 0).
        v = ini.horizontal_speed_mps * along + ini.vertical_speed_mps * u
        if self.moon.rotating:
            v = v + np.array(self.moon.ground_velocity(*r.tolist()))
        p = math.radians(ini.pitch_deg)
        z_b = math.cos(p) * u + math.sin(p) * along
        y_b = side
        x_b = np.cross(y_b, z_b)
        rot = np.column_stack([x_b, y_b, z_b])
        q = dynamics.matrix_to_quat(rot.tolist())
        m = self.cfg.vehicle.dry_mass_kg + self.cfg.vehicle.propellant_kg
        return [*r.tolist(), *v.tolist(), *q, 0.0, 0.0, 0.0, m, 0.0]

    def altitude_m(self) -> float:
        """True altitude above the terrain under the vehicle now (radial), m."""
        return self._altitude_at(self.state, self.t_us)

    def _altitude_at(self, s: list[float], t_us: int) -> float:
        """Altitude above the terrain of state ``s`` (MCI) at sim time ``t_us``, m."""
        if self.moon.rotating:
            return self.terrain.altitude_m(self.moon.to_fixed(s[0], s[1], s[2], t_us * 1e-6))
        return self.terrain.altitude_m(s)

    def _ground_state(self) -> tuple[np.ndarray, tuple[float, float, float]]:
        """Position and velocity relative to the ground, Moon-fixed axes, now."""
        s, moon = self.state, self.moon
        if not moon.rotating:
            return np.array(s[0:3]), (s[3], s[4], s[5])
        gx, gy, gz = moon.ground_velocity(s[0], s[1], s[2])
        t_s = self.t_us * 1e-6
        r = moon.to_fixed(s[0], s[1], s[2], t_s)
        return np.array(r), moon.to_fixed(s[3] - gx, s[4] - gy, s[5] - gz, t_s)

    def _limit(self, c: Command) -> Command:
        v = self.cfg.vehicle
        thr = float(c.throttle)
        if not math.isfinite(thr) or thr <= 0.0:
            thr = 0.0
        else:
            thr = min(1.0, max(v.min_throttle, thr))
        t0, t1, t2 = c.torque_nm      # written out: this runs every frame
        l0, l1, l2 = v.max_torque_nm
        t0, t1, t2 = float(t0), float(t1), float(t2)
        isfinite = math.isfinite
        tq = (max(-l0, min(l0, t0)) if isfinite(t0) else 0.0,
              max(-l1, min(l1, t1)) if isfinite(t1) else 0.0,
              max(-l2, min(l2, t2)) if isfinite(t2) else 0.0)
        return Command(thr, tq)

    def _near_ground(self) -> bool:
        """Could the lander touch the ground within the next frame? (cheap bound)"""
        s = self.state
        # Inertial speed plus the ground's: bounds the speed relative to the ground.
        speed = math.sqrt(s[3] ** 2 + s[4] ** 2 + s[5] ** 2) + abs(self.moon.rotation_rad_s) * \
            math.sqrt(s[0] ** 2 + s[1] ** 2)
        frame_s = self.steps_per_frame * self.dt_us * 1e-6
        reach = 0.0 if self.gear is None else \
            self.gear.reach_m + 2.0 * self.cfg.gear.footpad_radius_m
        limit = 2.0 * speed * frame_s + 50.0 + reach
        # The altitude is at least the height above the terrain's highest possible point:
        # when that is above the limit, the terrain need not be evaluated.
        terrain = self.terrain
        if math.sqrt(s[0] * s[0] + s[1] * s[1] + s[2] * s[2]) - terrain.radius_m \
                - terrain.max_height_m > limit:
            return False
        return self._altitude_at(s, self.t_us) <= limit

    def _sample_imu(self) -> None:
        dv_true = (self._acc_dv_xy[0], self._acc_dv_xy[1], self._acc_dv)
        dth_true = self._acc_dth
        y = self.imu.sample(dv_true, dth_true)
        self._acc_dv = 0.0
        self._acc_dv_xy = [0.0, 0.0]      # non-zero only on the ground (gear forces)
        self._acc_dth = [0.0, 0.0, 0.0]
        y = self.faults.apply_imu(self.t_us, y, dv_true, dth_true)
        if y is None:  # the unit is off: no sample
            return
        self._imu_buffer.append([self.t_us, *y])

    def _sensor_geometry(self) -> tuple:
        """For the ray-casting sensors, in the frame the terrain is in (Moon-fixed): the
        position, the attitude matrix body -> that frame, and the velocity relative to the
        ground."""
        s = self.state
        rot = np.array(dynamics.quat_to_matrix(s[6:10]))
        if not self.moon.rotating:
            return s[0:3], rot, s[3:6]      # (the sensors take any sequence of floats)
        r_fixed, v_ground = self._ground_state()
        return r_fixed, np.array(self.moon.fixed_matrix(self.t_us * 1e-6)) @ rot, \
            np.array(v_ground)

    def _sample_altimeter(self) -> None:
        r, rot, v = self._sensor_geometry()
        if self.cfg.altimeter.link_budget:      # closing speed and link faults
            self.altimeter.sample(self.t_us, r, rot, self.terrain, self.faults.apply_altimeter,
                                  v, self.faults.altimeter_link)
        else:
            self.altimeter.sample(self.t_us, r, rot, self.terrain, self.faults.apply_altimeter)
        self.next_alt_us += self.alt_period_us  # absolute schedule: no drift

    def _sample_velocimeter(self) -> None:
        # In the Moon-fixed frame the ground is at rest: velocity relative to it, no
        # surface-velocity hook needed.
        r, rot, v = self._sensor_geometry()
        self.velocimeter.sample(self.t_us, r, v, rot, self.terrain, None,
                                self.faults.apply_velocimeter)
        self.next_vel_us += self.velocimeter.period_us  # absolute schedule: no drift

    def _sample_star_tracker(self) -> None:
        s = self.state
        self.star_tracker.sample(self.t_us, s[6:10], s[10:13], self.faults.apply_star_tracker)
        self.next_st_us += self.star_tracker.period_us  # absolute schedule: no drift

    def _att(self, t_us: int) -> list | None:
        return self.star_tracker.delivered(t_us) if self.star_tracker is not None else None

    def _vel(self, t_us: int) -> list | None:
        return self.velocimeter.delivered(t_us) if self.velocimeter is not None else None

    def _update_faults(self) -> None:
        """Fault triggers at this physics step (the true altitude only when one needs it)."""
        alt = self._altitude_at(self.state, self.t_us) if self.faults.wants_altitude else None
        self.faults.update_triggers(self.t_us, alt)

    def _first_touch_values(self) -> tuple[dict, list[str]]:
        """The touchdown quantities now, and the [touchdown] criteria they exceed."""
        t = self.truth()
        crit = self.cfg.touchdown
        dist = math.hypot(t["downrange_m"], t["crossrange_m"])
        td = {
            "vertical_speed_mps": -t["vert_speed_mps"],
            "horizontal_speed_mps": t["horiz_speed_mps"],
            "tilt_deg": t["tilt_deg"],
            "angular_rate_dps": t["rate_dps"],
            "distance_to_target_m": dist,
        }
        checks = [
            ("vertical speed", td["vertical_speed_mps"], crit.max_vertical_speed_mps, "m/s"),
            ("horizontal speed", td["horizontal_speed_mps"], crit.max_horizontal_speed_mps, "m/s"),
            ("tilt", td["tilt_deg"], crit.max_tilt_deg, "deg"),
            ("angular rate", td["angular_rate_dps"], crit.max_angular_rate_dps, "deg/s"),
        ]
        over = [f"{name} {val:.2f} {unit} > {lim:g} {unit} (by {val - lim:.2f})"
                for name, val, lim, unit in checks if val > lim]
        return td, over

    def _touchdown(self) -> None:
        """Without landing gear: the run ends at first contact, judged by [touchdown]."""
        self.done = True
        td, over = self._first_touch_values()
        dist = td["distance_to_target_m"]
        if self.propellant_out_t_us is not None:
            self.outcome = Outcome(
                "out_of_propellant",
                f"propellant ran out at t={self.propellant_out_t_us / 1e6:.1f} s; "
                f"hit the ground at {td['vertical_speed_mps']:.1f} m/s", td)
        elif over:
            self.outcome = Outcome("crashed", "; ".join(over), td)
        else:
            self.outcome = Outcome(
                "landed", f"touchdown at {td['vertical_speed_mps']:.2f} m/s vertical, "
                f"{td['horizontal_speed_mps']:.2f} m/s horizontal, {dist:.0f} m from the target", td)


def _qmul(p, q):
    pw, px, py, pz = p
    qw, qx, qy, qz = q
    return (pw * qw - px * qx - py * qy - pz * qz, pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx, pw * qz + px * qy - py * qx + pz * qw)


def _qrotvec(th):
    a = float(np.linalg.norm(th))
    if a < 1e-12:
        return (1.0, 0.0, 0.0, 0.0)
    s = math.sin(a / 2) / a
    return (math.cos(a / 2), th[0] * s, th[1] * s, th[2] * s)
