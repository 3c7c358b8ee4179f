"""Plant parameters: one dataclass per model, units in every field name.

A scenario file (TOML) maps one-to-one onto :class:`ScenarioConfig`: each table is one of
these dataclasses, each key one field. Field metadata carries the allowed range
(``lo``/``hi``, inclusive) and a one-line help text; the scenario loader in
``hil.scenario`` validates against it, so the ranges live here, next to the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def param(default: Any, lo: float | None = None, hi: float | None = None, help: str = "",
          required: bool = False) -> Any:
    """A dataclass field with a default, an inclusive range and a help text.

    ``required``: a table that maps onto the dataclass must give this key (the default,
    None, only stands for "not given").
    """
    meta = {"lo": lo, "hi": hi, "help": help, "required": required}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RatesConfig:
    """Loop rates. The frame rate is the flight software's control rate."""

    physics_hz: float = param(200.0, 50.0, 5000.0, "RK4 integration rate")
    frame_hz: float = param(50.0, 1.0, 1000.0, "sensor frames / commands per second")
    imu_hz: float = param(200.0, 1.0, 2000.0, "IMU sample rate")
    altimeter_hz: float = param(10.0, 0.1, 1000.0, "laser altimeter sample rate")


@dataclass
class VehicleConfig:
    """Rigid lander with one throttleable main engine along body +z and attitude torques."""

    dry_mass_kg: float = param(520.0, 1.0, 1e5)
    propellant_kg: float = param(680.0, 0.0, 1e5)
    max_thrust_n: float = param(4400.0, 1.0, 1e7)
    min_throttle: float = param(0.1, 0.0, 1.0, "lowest throttle while the engine burns")
    isp_s: float = param(320.0, 50.0, 1000.0, "specific impulse")
    throttle_time_constant_s: float = param(0.1, 0.0, 10.0, "first-order throttle response")
    inertia_kgm2: list = param([700.0, 700.0, 500.0], 0.1, 1e8, "principal inertia, body x y z")
    max_torque_nm: list = param([200.0, 200.0, 100.0], 0.0, 1e6, "attitude torque limit per body axis")
    leg_radius_m: float = param(1.5, 0.1, 20.0, "footpad circle radius for display only (the "
                                "landing gear has its own: [gear] footpad_radius_m)")


@dataclass
class MoonConfig:
    """The Moon: point-mass gravity, reference sphere and rotation (docs/plant.md#frames)."""

    gm_m3ps2: float = param(4.902800118e12, 1e9, 1e15, "gravitational parameter (JPL DE440)")
    radius_m: float = param(1737.4e3, 1e4, 1e7, "reference sphere: terrain heights and "
                            "ground distances are measured on it")
    rotation_rad_s: float = param(2.6617e-6, -1e-3, 1e-3, "rotation about the north pole in "
                                  "the inertial frame (sidereal 2.6617e-6; 0: not rotating)")


@dataclass
class TargetConfig:
    """Landing site on the Moon (the ground track runs along the equator towards it)."""

    lat_deg: float = param(0.0, -90.0, 90.0)
    lon_deg: float = param(0.0, -180.0, 180.0)


@dataclass
class InitialConfig:
    """Start state relative to the target, in the target's local frame."""

    altitude_m: float = param(15000.0, 1.0, 200000.0, "above the mean radius")
    downrange_m: float = param(-450000.0, -3e6, 3e6, "along track from the target; negative = before it")
    crossrange_m: float = param(0.0, -1e6, 1e6)
    horizontal_speed_mps: float = param(1692.0, 0.0, 3000.0, "along track, relative to the ground")
    vertical_speed_mps: float = param(0.0, -1000.0, 1000.0, "positive up, relative to the ground")
    pitch_deg: float = param(-88.0, -180.0, 180.0,
                             "thrust axis angle from local up towards the velocity direction; "
                             "negative leans it against the motion (retrograde)")
    coast_s: float = param(20.0, 0.0, 600.0, "engine-off coast before ignition (IMU calibration)")


@dataclass
class VehicleKnowledgeConfig:
    """What the flight software is told about the vehicle (HELLO "vehicle"); unset = the truth."""

    dry_mass_kg: float | None = param(None, 1.0, 1e5, "told dry mass")
    propellant_kg: float | None = param(None, 0.0, 1e5, "told propellant load")
    max_thrust_n: float | None = param(None, 1.0, 1e7, "told full thrust")
    min_throttle: float | None = param(None, 0.0, 1.0, "told lowest throttle")
    isp_s: float | None = param(None, 50.0, 1000.0, "told specific impulse")
    throttle_time_constant_s: float | None = param(None, 0.0, 10.0, "told throttle response")


@dataclass
class KnowledgeConfig:
    """One-sigma error of the state vector given to the flight software at start."""

    position_sigma_m: float = param(30.0, 0.0, 1e5)
    velocity_sigma_mps: float = param(0.03, 0.0, 100.0)
    attitude_sigma_deg: float = param(0.002, 0.0, 10.0)
    altitude_bias_m: float = param(0.0, -1e5, 1e5, "fixed error of the given altitude: the "
                                   "flight software believes it is this much higher")
    velocity_bias_mps: list = param([0.0, 0.0, 0.0], -100.0, 100.0, "fixed error of the "
                                    "given velocity along the site's east, north and up: the "
                                    "flight software believes it moves this much faster")
    vehicle: VehicleKnowledgeConfig = field(default_factory=VehicleKnowledgeConfig)


@dataclass
class PlanConfig:
    """A mission's own descent plan, flown by the legacy flight software only (HELLO fsw.plan).

    The components of its high gate (braking ends), low gate (approach ends) and terminal
    gate (the vertical descent starts), and the vertical descent's last rate; unset = the
    reference gates (``fsw/core.py``) and 1 m/s. The
    default flight software flies its own profile whatever this says."""

    high_gate_height_m: float | None = param(None, -1e3, 1e5, "height above the site")
    high_gate_downrange_m: float | None = param(None, -1e6, 1e6, "negative: before the site")
    high_gate_up_mps: float | None = param(None, -1e4, 1e4, "vertical speed (positive up)")
    high_gate_downrange_mps: float | None = param(None, -1e4, 1e4, "downrange speed")
    low_gate_height_m: float | None = param(None, -1e3, 1e5, "height above the site")
    low_gate_downrange_m: float | None = param(None, -1e6, 1e6, "negative: before the site")
    low_gate_up_mps: float | None = param(None, -1e4, 1e4, "vertical speed (positive up)")
    low_gate_downrange_mps: float | None = param(None, -1e4, 1e4, "downrange speed")
    terminal_gate_height_m: float | None = param(None, -1e3, 1e5, "height above the site")
    terminal_gate_downrange_m: float | None = param(None, -1e6, 1e6, "negative: before the site")
    terminal_gate_up_mps: float | None = param(None, -1e4, 1e4, "vertical speed (positive up)")
    terminal_gate_downrange_mps: float | None = param(None, -1e4, 1e4, "downrange speed")
    vertical_descent_up_mps: float | None = param(None, -10.0, -0.1, "the vertical descent's "
                                                  "last rate, from 50 m down (positive up)")


@dataclass
class ImuConfig:
    """IMU error model in datasheet units; ``preset`` fills what the file leaves out."""

    preset: str = param("navigation", help="navigation | tactical | mems | ideal")
    gyro_bias_dph: float | None = param(None, 0.0, 1e5, "constant (turn-on) bias, deg/h")
    gyro_bias_instability_dph: float | None = param(None, 0.0, 1e5, "deg/h, IEEE-952 reading: "
                                                    "Allan floor / 0.664 (flicker noise)")
    gyro_arw_dpsh: float | None = param(None, 0.0, 100.0, "angle random walk, deg/sqrt(h)")
    gyro_scale_ppm: float | None = param(None, 0.0, 1e5)
    gyro_range_dps: float | None = param(None, 1.0, 1e5, "saturation")
    gyro_quantum_rad: float | None = param(None, 0.0, 1.0, "delta-angle LSB")
    accel_bias_ug: float | None = param(None, 0.0, 1e6, "constant (turn-on) bias, micro-g")
    accel_bias_instability_ug: float | None = param(None, 0.0, 1e6, "micro-g, IEEE-952 reading: "
                                                    "Allan floor / 0.664 (flicker noise)")
    accel_vrw_mpsh: float | None = param(None, 0.0, 100.0, "velocity random walk, m/s/sqrt(h)")
    accel_scale_ppm: float | None = param(None, 0.0, 1e5)
    accel_range_g: float | None = param(None, 0.1, 1e4, "saturation")
    accel_quantum_mps: float | None = param(None, 0.0, 1.0, "delta-velocity LSB")
    misalignment_mrad: float | None = param(None, 0.0, 100.0, "per-axis non-orthogonality")
    bias_correlation_time_s: float | None = param(None, 1.0, 1e6, "the bias-instability floor "
                                                  "holds from 10 s to this averaging time")


@dataclass
class AltimeterConfig:
    """Laser altimeter: slant range along a body-fixed boresight, ray-cast on the terrain."""

    boresight_body: list = param([0.0, 0.0, -1.0], -1.0, 1.0, "unit vector in body axes")
    min_range_m: float = param(1.0, 0.0, 1e6)
    max_range_m: float = param(15000.0, 1.0, 1e6)
    noise_m: float = param(0.5, 0.0, 1e4, "one sigma, constant part")
    noise_fraction: float = param(0.001, 0.0, 1.0, "one sigma, proportional to range")
    acquisition_s: float = param(0.5, 0.0, 600.0, "in range this long before the first valid sample")
    latency_s: float = param(0.02, 0.0, 10.0, "sample to delivery")
    dropout_probability: float = param(0.0, 0.0, 1.0, "per sample")
    link_budget: bool = param(False, help="returns must be detected: the link budget below")
    laser_peak_power_w: float = param(5000.0, 1e-3, 1e9, "transmitted peak power of a pulse")
    pulse_rate_hz: float = param(100.0, 0.1, 1e6, "laser pulses per second")
    receiver_aperture_mm: float = param(50.0, 1.0, 2000.0, "receiving telescope diameter")
    optics_efficiency: float = param(0.5, 1e-4, 1.0, "transmit x receive optics and filter")
    receiver_sensitivity_nw: float = param(10.0, 1e-6, 1e6, "received peak power detected half "
                                           "the time")
    threshold_snr: float = param(5.0, 0.1, 100.0, "detection threshold over the noise sigma")
    min_detections: int = param(5, 1, 100000, "detected pulses a sample needs")
    speed_loss_db_per_mps: float = param(0.0, 0.0, 10.0, "signal loss per m/s of closing "
                                         "speed along the boresight")


def cone_beams(off_nadir_deg: float) -> list[list[float]]:
    """Three unit vectors ``off_nadir_deg`` from body -z, 120 degrees apart in azimuth from +x."""
    s, c = math.sin(math.radians(off_nadir_deg)), math.cos(math.radians(off_nadir_deg))
    return [[s * math.cos(a), s * math.sin(a), -c] for a in (0.0, 2.0 * math.pi / 3.0,
                                                               4.0 * math.pi / 3.0)]


@dataclass
class VelocimeterConfig:
    """Doppler lidar velocimeter (NASA Navigation Doppler Lidar class): three fixed beams,
    line-of-sight velocity and range per beam (docs/plant-sensors.md)."""

    enabled: bool = param(False, help="fly one (a scenario without this table has none)")
    beams_body: list = param(cone_beams(22.5), -1.0, 1.0,
                             "three beam directions, body axes (normalised on load); default "
                             "22.5 deg off body -z, 120 deg apart")
    rate_hz: float = param(10.0, 0.1, 1000.0, "samples per second")
    min_range_m: float = param(2.0, 0.0, 1e6)
    max_range_m: float = param(6000.0, 1.0, 1e6, "slant range along a beam")
    velocity_noise_mps: float = param(0.02, 0.0, 100.0, "one sigma per beam")
    range_noise_m: float = param(2.0, 0.0, 1e4, "one sigma per beam, constant part")
    range_noise_fraction: float = param(0.0005, 0.0, 1.0, "one sigma, proportional to range")
    acquisition_s: float = param(1.0, 0.0, 600.0, "a beam in range this long before its "
                                 "first valid sample")
    latency_s: float = param(0.05, 0.0, 10.0, "sample to delivery")
    dropout_probability: float = param(0.0, 0.0, 1.0, "per beam and sample")


@dataclass
class StarTrackerConfig:
    """Star tracker: the attitude measured against the stars (docs/plant-sensors.md)."""

    enabled: bool = param(False, help="fly one (a scenario without this table has none)")
    boresight_body: list = param([0.0, 0.0, 1.0], -1.0, 1.0,
                                 "boresight, body axes (normalised on load); default +z, along "
                                 "the thrust, away from the plume")
    rate_hz: float = param(5.0, 0.1, 100.0, "samples per second")
    cross_sigma_arcsec: float = param(5.0, 0.0, 3600.0, "one sigma about each axis across "
                                      "the boresight")
    roll_sigma_arcsec: float = param(40.0, 0.0, 36000.0, "one sigma about the boresight")
    max_rate_dps: float = param(2.0, 0.01, 100.0, "no valid sample above this body rate")
    acquisition_s: float = param(1.0, 0.0, 600.0, "the rate below the limit this long "
                                 "before a valid sample")
    latency_s: float = param(0.1, 0.0, 10.0, "sample to delivery")
    dropout_probability: float = param(0.0, 0.0, 1.0, "per sample")


@dataclass
class CraterConfig:
    """A bowl crater with a raised rim; position relative to the target."""

    downrange_m: float = param(0.0, -3e6, 3e6)
    crossrange_m: float = param(0.0, -1e6, 1e6)
    radius_m: float = param(500.0, 1.0, 1e6, "rim crest radius")
    depth_m: float = param(100.0, 0.0, 1e5, "floor below the mean surface")
    rim_height_m: float = param(20.0, 0.0, 1e5, "crest above the mean surface")


@dataclass
class CliffConfig:
    """A straight terrain step (cliff, crater wall, plateau edge) across the ground track."""

    downrange_m: float = param(0.0, -3e6, 3e6, "mid-line of the step, along track from the target")
    height_m: float = param(1000.0, 0.0, 20000.0, "how much higher the ground is on the high side")
    high_side: str = param("uprange", help="uprange | downrange")
    width_m: float = param(200.0, 1.0, 1e5, "horizontal width of the transition (cosine ramp)")
    crossrange_half_width_m: float = param(1e6, 1.0, 1e6,
                                           "extent either side of the track; the ends fall off "
                                           "over width_m")


@dataclass
class TerrainConfig:
    """Mean surface plus craters and cliffs; heights relative to the mean lunar radius."""

    mean_height_m: float = param(0.0, -10000.0, 10000.0)
    albedo: float = param(0.15, 0.001, 1.0, "Lambertian reflectance at the laser wavelength "
                          "(mare about 0.15 at 1064 nm)")
    site_slope_deg: float = param(0.0, 0.0, 45.0, "local slope of the ground around the target "
                                  "(a tilted plane through it)")
    site_slope_azimuth_deg: float = param(90.0, -360.0, 360.0, "direction the slope faces "
                                          "(downhill), clockwise from north: 90 = downhill "
                                          "towards downrange")
    site_slope_radius_m: float = param(200.0, 1.0, 1e5, "the plane's radius around the target; "
                                       "it blends into the ground over as much again")
    craters: list = param([], help="list of [[terrain.craters]] tables")
    cliffs: list = param([], help="list of [[terrain.cliffs]] tables")


@dataclass
class GearConfig:
    """Landing gear: four legs, crushable struts, friction; the run goes on to rest or tip-over.

    After first contact the vehicle settles on its legs until it is at rest, has tipped or
    failed, or ``settle_time_s`` has passed (docs/plant.md#landing-gear-and-touchdown)."""

    enabled: bool = param(True, help="false: no legs; the run ends at first contact, judged "
                          "by [touchdown] alone")
    footpad_radius_m: float = param(1.5, 0.1, 20.0, "horizontal distance of each footpad from "
                                    "the body z axis")
    com_height_m: float = param(1.6, 0.1, 20.0, "centre of mass above the footpad plane, "
                                "struts not stroked")
    first_leg_azimuth_deg: float = param(45.0, -360.0, 360.0, "first leg's direction from body "
                                         "+x towards +y; the others 90 deg apart")
    stiffness_n_per_m: float = param(1e5, 1e2, 1e8, "elastic stiffness of one leg along the "
                                     "ground normal")
    damping_n_s_per_m: float = param(4000.0, 0.0, 1e7, "damping of one leg along the normal")
    crush_load_n: float = param(2000.0, 1.0, 1e8, "load at which a leg's crushable cartridge "
                                "strokes (constant while stroke is left)")
    stroke_m: float = param(0.3, 0.0, 5.0, "crushable stroke of one leg")
    max_load_n: float = param(5000.0, 1.0, 1e9, "structural limit of one leg: above it the "
                              "gear fails (crashed, gear overload)")
    friction: float = param(0.8, 0.0, 5.0, "footpad-regolith friction coefficient")
    tangential_stiffness_n_per_m: float = param(1e5, 1e2, 1e8, "stiffness of a footpad's grip "
                                                "before it slides")
    tangential_damping_n_s_per_m: float = param(4000.0, 0.0, 1e7, "damping of a footpad's grip")
    body_clearance_m: float = param(0.6, 0.0, 20.0, "lowest point of the body (engine bell) "
                                    "above the footpad plane, struts not stroked")
    max_rest_tilt_deg: float = param(15.0, 0.0, 90.0, "landed only if at rest within this tilt "
                                     "from the local vertical")
    tipped_tilt_deg: float = param(60.0, 1.0, 180.0, "tilt from the local vertical at which the "
                                   "vehicle has tipped over")
    max_contact_speed_mps: float = param(10.0, 0.1, 1e4, "a first contact faster than this "
                                         "(relative to the ground) is a crash at once")
    rest_speed_mps: float = param(0.05, 0.0, 10.0, "at rest: speed relative to the ground "
                                  "below this ...")
    rest_rate_dps: float = param(1.0, 0.0, 100.0, "... and body rate below this ...")
    rest_time_s: float = param(1.0, 0.0, 60.0, "... for this long, with 3 or 4 legs down")
    settle_time_s: float = param(20.0, 0.1, 600.0, "longest time after first contact; then "
                                 "the verdict is taken as things are")


@dataclass
class TouchdownConfig:
    """Criteria at first ground contact: reported with landing gear, deciding without it.

    With ``[gear]`` the gear decides the outcome and these show as ``first_touch_ok``;
    with ``[gear] enabled = false`` they decide it."""

    max_vertical_speed_mps: float = param(2.0, 0.0, 100.0)
    max_horizontal_speed_mps: float = param(0.5, 0.0, 100.0)
    max_tilt_deg: float = param(5.0, 0.0, 90.0)
    max_angular_rate_dps: float = param(2.0, 0.0, 1000.0)


@dataclass
class RunConfig:
    """Run limits."""

    max_sim_time_s: float = param(1200.0, 1.0, 1e5)
    link_timeout_s: float = param(10.0, 0.01, 3600.0, "longest wait for the peer")
    seed: int = param(1, 0, 2**63 - 1)


@dataclass
class DeadlineConfig:
    """Deadline policy of a real-time run (``--realtime``; docs/timing.md); lockstep ignores it."""

    period_s: float | None = param(None, 1e-4, 10.0, "wall-clock time between frames "
                                   "(default 1 / frame_hz: real time)")
    deadline_s: float | None = param(None, 1e-5, 10.0, "frame due -> its command back, at "
                                     "most period_s (default period_s)")
    on_miss: str = param("hold", help="hold | skip")
    max_consecutive_misses: int = param(0, 0, 10**9, "end the run after this many misses in "
                                        "a row (0: no limit)")
    max_total_misses: int = param(0, 0, 10**9, "end the run after this many misses in all "
                                  "(0: no limit)")
    lost_after_s: float = param(1.0, 1e-3, 3600.0, "a command not back this long after its "
                                "frame counts as dropped; frames go out again")


@dataclass
class FaultConfig:
    """A sensor fault: which sensor, what goes wrong, when (one [[faults]] table; docs/faults.md)."""

    sensor: str | None = param(None, help="altimeter | imu | velocimeter | star_tracker",
                               required=True)
    kind: str | None = param(None, help="off | stuck | bias | scale | noise | dropout | spike | "
                                        "late | latency | saturation | stuck_axis | unflagged | "
                                        "power | sensitivity | blind",
                             required=True)
    at_time_s: float = param(0.0, 0.0, 1e6, "fires at or after this sim time")
    below_altitude_m: float | None = param(None, -1e5, 1e6, "and once the true altitude above "
                                           "the terrain is below this")
    below_range_m: float | None = param(None, 0.0, 1e6, "and once the altimeter's true slant "
                                        "range is below this")
    until_time_s: float | None = param(None, 0.0, 1e6, "ends at this sim time (none: permanent)")
    value: float | None = param(None, -1e9, 1e9, "size; unit and meaning per kind (docs/faults.md)")
    magnitude: float | None = param(None, -1e9, 1e9, "spike size, m (altimeter spike)")
    axis: int | None = param(None, -1, 2, "IMU axis 0, 1, 2; -1 or none: all three; star "
                             "tracker bias: 0, 1 across the boresight, 2 about it")
    channel: str | None = param(None, help="accel | gyro | velocity | range")
    beam: int | None = param(None, -1, 2, "velocimeter beam 0, 1, 2; -1 or none: all three")
    name: str = param("", help="a label for the summary")


@dataclass
class DispersionConfig:
    """How one scenario key varies from run to run in a campaign (``fsil mc``; docs/montecarlo.md)."""

    dist: str | None = param(None, help="normal | uniform | choice", required=True)
    apply: str = param("set", help="set | add | scale")
    mean: float | None = param(None, -1e12, 1e12, "normal: the centre (default: the nominal "
                               "value for set, 0 for add, 1 for scale)")
    sigma: float | None = param(None, 0.0, 1e12, "normal: one sigma")
    low: float | None = param(None, -1e12, 1e12, "uniform: lower bound")
    high: float | None = param(None, -1e12, 1e12, "uniform: upper bound")
    values: list | None = param(None, help="choice: the values to pick from")
    weights: list | None = param(None, 0.0, 1e12, "choice: relative weights (default: equal)")
    min: float | None = param(None, -1e12, 1e12, "normal: truncate below (redrawn, not clipped)")
    max: float | None = param(None, -1e12, 1e12, "normal: truncate above")


@dataclass
class ScenarioConfig:
    """A whole scenario: one TOML file."""

    name: str = param("unnamed")
    description: str = param("")
    rates: RatesConfig = field(default_factory=RatesConfig)
    moon: MoonConfig = field(default_factory=MoonConfig)
    vehicle: VehicleConfig = field(default_factory=VehicleConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    initial: InitialConfig = field(default_factory=InitialConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    imu: ImuConfig = field(default_factory=ImuConfig)
    altimeter: AltimeterConfig = field(default_factory=AltimeterConfig)
    velocimeter: VelocimeterConfig = field(default_factory=VelocimeterConfig)
    star_tracker: StarTrackerConfig = field(default_factory=StarTrackerConfig)
    terrain: TerrainConfig = field(default_factory=TerrainConfig)
    touchdown: TouchdownConfig = field(default_factory=TouchdownConfig)
    gear: GearConfig = field(default_factory=GearConfig)
    run: RunConfig = field(default_factory=RunConfig)
    deadline: DeadlineConfig = field(default_factory=DeadlineConfig)
    faults: list = param([], help="list of [[faults]] tables: sensor faults (docs/faults.md)")
    base: str | None = param(None, help="start from this scenario (shipped name or path, "
                             "relative to this file) and override it with this file's keys")
    dispersions: dict = param({}, help="[dispersions]: scenario key -> distribution, for "
                              "campaigns (fsil mc; docs/montecarlo.md)")
