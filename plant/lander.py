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
from plant.imu import Imu
from plant.moon import Moon, SiteFrame
from plant.terrain import Terrain
from plant.velocimeter import DopplerVelocimeter

US_PER_S = 1_000_000


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


@dataclass
class Outcome:
    """How the run ended."""

    outcome: str                    # landed | crashed | out_of_propellant | timeout
    reason: str
    touchdown: dict = field(default_factory=dict)


def _ratio(a_hz: float, b_hz: float, what: str) -> int:
    n = a_hz / b_hz
    if abs(n - round(n)) > 1e-9 or round(n) < 1:
        raise RateError(f"{what}: {a_hz:g} Hz is not a whole multiple of {b_hz:g} Hz")
    return int(round(n))


class LanderPlant:
    """Lander around a spherical Moon with IMU and laser altimeter."""

    def __init__(self, cfg: ScenarioConfig) -> None:
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
        self.done = False
        self.outcome: Outcome | None = None
        self.seq = 0
        self.t_us = 0

    # --- contract -----------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> SensorFrame:
        """Start a run from the scenario's initial state; returns frame 0."""
        seed = self.cfg.run.seed if seed is None else seed
        self.seed = seed
        # Children 0..3 are the same whether 4 or 5 are spawned: adding a generator leaves
        # runs without the new model bit for bit as they were.
        ss_imu, ss_alt, ss_know, ss_fault, ss_vel = np.random.SeedSequence(seed).spawn(5)
        rates = self.cfg.rates
        self.imu = Imu(self.cfg.imu, rates.imu_hz, np.random.default_rng(ss_imu))
        self.altimeter = LaserAltimeter(self.cfg.altimeter, rates.altimeter_hz,
                                        np.random.default_rng(ss_alt), self.cfg.terrain.albedo)
        self.velocimeter = DopplerVelocimeter(self.cfg.velocimeter, np.random.default_rng(ss_vel)) \
            if self.cfg.velocimeter.enabled else None
        self.next_vel_us = 0
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
        self._acc_dth = [0.0, 0.0, 0.0]
        self._imu_buffer: list[list[float]] = []
        self.faults = FaultSet(self.cfg.faults, np.random.default_rng(ss_fault),
                               1.0 / rates.imu_hz, self.cfg.altimeter.acquisition_s,
                               self.cfg.velocimeter.acquisition_s)
        self.faults.begin_frame(0, 0)
        self._update_faults()
        self._sample_altimeter()
        if self.velocimeter is not None:
            self._sample_velocimeter()
        return SensorFrame(0, 0, [], self.altimeter.delivered(0), self._vel(0))

    def step(self, command: Command) -> SensorFrame:
        """Apply ``command`` for one frame period; returns the next frame."""
        if self.done:
            raise PlantError("step() after the run ended; call reset()")
        self.command = self._limit(command)
        thr_target = self.command.throttle
        torque = self.command.torque_nm
        check_ground = self._near_ground()
        self.faults.begin_frame(self.seq + 1, self.t_us)
        # The hot loop: attributes read once into locals (the plant's cost per physics step
        # is what a campaign pays; bench/plant_step.py measures it).
        rk4 = dynamics.rk4_step
        dt_s, dt_us, veh, dry_kg = self.dt_s, self.dt_us, self.veh, self.veh.dry_mass_kg
        steps_per_imu, faults = self.steps_per_imu, self.faults
        altitude = self._altitude_at
        velocimeter = self.velocimeter
        state = self.state
        for _ in range(self.steps_per_frame):
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
            if self.propellant_out_t_us is None and thr_target > 0 and state[13] <= dry_kg:
                self.propellant_out_t_us = t_us
            if check_ground and altitude(state, t_us) <= 0.0:
                self._touchdown()
                break
        if not self.done and self.t_us >= self.cfg.run.max_sim_time_s * US_PER_S:
            self.done = True
            self.outcome = Outcome("timeout", f"no touchdown within {self.cfg.run.max_sim_time_s:g} s"
                                   " of sim time", {})
        self.seq += 1
        imu, self._imu_buffer = self._imu_buffer, []
        return SensorFrame(self.seq, self.t_us, imu, self.altimeter.delivered(self.t_us),
                           self._vel(self.t_us))

    # --- configuration for the flight software ------------------------------------------
    def fsw_config(self) -> dict:
        """The handshake's config map: vehicle, site, initial state vector with its errors."""
        v, k, a = self.cfg.vehicle, self.cfg.knowledge, self.cfg.altimeter
        s = self.state
        dr, dv, dth = self._know_err
        r0 = np.array(s[0:3])
        r = r0 + dr + k.altitude_bias_m * r0 / np.linalg.norm(r0)
        vel = np.array(s[3:6]) + dv
        q = _qmul(s[6:10], _qrotvec(dth))
        return {
            "vehicle": {
                "dry_mass_kg": v.dry_mass_kg, "propellant_kg": v.propellant_kg,
                "max_thrust_n": v.max_thrust_n, "min_throttle": v.min_throttle,
                "isp_s": v.isp_s, "throttle_time_constant_s": v.throttle_time_constant_s,
                "inertia_kgm2": list(v.inertia_kgm2), "max_torque_nm": list(v.max_torque_nm),
            },
            "site": {"up": self.site.up.tolist(), "east": self.site.east.tolist(),
                     "radius_m": self.terrain.site_radius_m},
            "moon": self.moon.hello(),
            "nav_init": {"t_us": self.t_us, "r_m": r.tolist(), "v_mps": vel.tolist(),
                         "q": [float(c) for c in q], "pos_sigma_m": max(k.position_sigma_m, 1.0),
                         "vel_sigma_mps": max(k.velocity_sigma_mps, 0.01)},
            "altimeter": {"boresight_body": list(a.boresight_body), "noise_m": a.noise_m,
                          "noise_fraction": a.noise_fraction},
            **({"velocimeter": self.velocimeter.hello_config()} if self.velocimeter else {}),
            "ignition_t_us": int(round(self.cfg.initial.coast_s * US_PER_S)),
            "imu_hz": self.cfg.rates.imu_hz,
            "fsw": {},
        }

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
        tq = tuple(
            max(-lim, min(lim, float(t))) if math.isfinite(float(t)) else 0.0
            for t, lim in zip(c.torque_nm, v.max_torque_nm))
        return Command(thr, tq)  # type: ignore[arg-type]

    def _near_ground(self) -> bool:
        """Could the lander touch the ground within the next frame? (cheap bound)"""
        s = self.state
        alt = self._altitude_at(s, self.t_us)
        # Inertial speed plus the ground's: bounds the speed relative to the ground.
        speed = math.sqrt(s[3] ** 2 + s[4] ** 2 + s[5] ** 2) + abs(self.moon.rotation_rad_s) * \
            math.sqrt(s[0] ** 2 + s[1] ** 2)
        frame_s = self.steps_per_frame * self.dt_us * 1e-6
        return alt <= 2.0 * speed * frame_s + 50.0

    def _sample_imu(self) -> None:
        dv_true = (0.0, 0.0, self._acc_dv)
        dth_true = self._acc_dth
        y = self.imu.sample(dv_true, dth_true)
        self._acc_dv = 0.0
        self._acc_dth = [0.0, 0.0, 0.0]
        y = self.faults.apply_imu(self.t_us, y, dv_true, dth_true)
        if y is None:  # the unit is off: no sample
            return
        self._imu_buffer.append([self.t_us, *y])

    def _sensor_geometry(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the ray-casting sensors, in the frame the terrain is in (Moon-fixed): the
        position, the attitude matrix body -> that frame, and the velocity relative to the
        ground."""
        s = self.state
        rot = np.array(dynamics.quat_to_matrix(s[6:10]))
        if not self.moon.rotating:
            return np.array(s[0:3]), rot, np.array(s[3:6])
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

    def _vel(self, t_us: int) -> list | None:
        return self.velocimeter.delivered(t_us) if self.velocimeter is not None else None

    def _update_faults(self) -> None:
        """Fault triggers at this physics step (the true altitude only when one needs it)."""
        alt = self._altitude_at(self.state, self.t_us) if self.faults.wants_altitude else None
        self.faults.update_triggers(self.t_us, alt)

    def _touchdown(self) -> None:
        self.done = True
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
