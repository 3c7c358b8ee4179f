"""The wire protocol's one table: version, message ids, field layouts and value ranges.

This module is shared by the host and the board firmware, so it is written in the subset
of Python that MicroPython runs: constants and tuples only, no imports.

Every message is one msgpack array::

    [PROTOCOL_VERSION, type_id, field_1, field_2, ...]

with the fields in the order given by ``LAYOUTS[type_id]``. Each field is ``(name, kind)``
where kind is one of (docs/protocol.md gives the byte forms):

    "u"      unsigned 32-bit integer, 0 .. U32_MAX
    "t"      time, integer microseconds, 0 .. T_US_MAX (a signed 64-bit integer >= 0)
    "mode"   unsigned integer, an index into MODES
    "f"      finite float (an integer is accepted and read as float)
    "s"      UTF-8 string
    "m"      map with string keys
    "counts" map of string keys to unsigned integers (0 .. COUNT_MAX), link counters
    "f3"     array of 3 finite floats
    "nav"    nil, or an array of 7 finite floats
    "imu"    array of IMU samples, time stamps strictly increasing (see below)
    "alt"    nil, or one altimeter sample (see below)
    "vel"    nil, or one velocimeter sample (see below)
    "att"    nil, or one star tracker sample (see below)
    "rates"  map of sample rates (see the HELLO section of docs/protocol.md)
    "config" map: the flight software's configuration (docs/protocol.md, HELLO config)

IMU sample: ``[t_us, dvx, dvy, dvz, dax, day, daz]`` -- sample time (integer us, end of
the interval), delta-velocity (m/s, specific force integrated over the interval: gravity
is not sensed) and delta-angle (rad) over the interval, body axes.
Altimeter sample: ``[t_us, range_m, valid]`` -- measurement time (integer us), slant
range (m) along the boresight, validity flag (boolean).
Velocimeter sample: ``[t_us, vlos0, vlos1, vlos2, range0, range1, range2, valid_mask]`` --
measurement time (integer us), each beam's line-of-sight velocity (m/s, -(v - v_ground) . d:
the rate of change of the distance to the lit ground point, negative while closing), each
beam's range (m), and the valid beams as a bit
mask (bit N set = beam N valid, 0 .. 7).
Star tracker sample: ``[t_us, qw, qx, qy, qz, valid]`` -- measurement time (integer us),
the measured attitude body -> MCI as a quaternion [w, x, y, z] (the convention of HELLO
nav_init q: 4 finite floats, not all zero), validity flag (boolean). An invalid sample
carries [1.0, 0.0, 0.0, 0.0], never a stale attitude.
"""

PROTOCOL_VERSION = 3

# Message type ids.
HELLO = 1       # plant -> fsw: start of a run
HELLO_ACK = 2   # fsw -> plant: accepts the run, says what it is
FRAME = 3       # plant -> fsw: sensor frame
COMMAND = 4     # fsw -> plant: command answering one frame
END = 5         # either way: end of the run; [seq, reason] in every protocol version
STATUS = 6      # either way, optional, after the handshake: the sender's link counters

NAMES = {HELLO: "hello", HELLO_ACK: "hello_ack", FRAME: "frame", COMMAND: "command", END: "end",
         STATUS: "status"}

LAYOUTS = {
    HELLO: (
        ("role", "s"),          # "plant"
        ("scenario", "s"),      # scenario name
        ("rates", "rates"),     # {"frame_hz", "imu_hz", "altimeter_hz", "physics_hz", ...}: Hz
        ("config", "config"),   # vehicle, site, Moon, sensors, initial estimate (docs/protocol.md)
    ),
    HELLO_ACK: (
        ("role", "s"),          # "fsw"
        ("software", "s"),      # flight software name and version
        ("runtime", "s"),       # interpreter, e.g. "cpython 3.11.7" or "micropython 1.27.0"
    ),
    FRAME: (
        ("seq", "u"),           # frame sequence number, 0 for the first frame
        ("t_us", "t"),          # sim time at the frame, integer microseconds
        ("imu", "imu"),         # IMU samples since the previous frame, oldest first
        ("alt", "alt"),         # latest delivered altimeter sample, or nil before the first
        ("vel", "vel"),         # latest delivered velocimeter sample, or nil (none yet/fitted)
        ("att", "att"),         # latest delivered star tracker sample, or nil (none yet/fitted)
    ),
    COMMAND: (
        ("seq", "u"),           # the frame sequence number this command answers
        ("throttle", "f"),      # 0 = engine off, else min_throttle..1 of max thrust
        ("torque_nm", "f3"),    # attitude torque demand, body axes, N m
        ("mode", "mode"),       # index into MODES
        ("compute_us", "u"),    # flight software's own compute time for this cycle, us (saturated)
        ("nav", "nav"),         # estimate: position (m, 3), velocity (m/s, 3), altitude (m); or nil
        ("flags", "u"),         # bit field, see FLAG_*
    ),
    END: (
        ("seq", "u"),           # last frame sequence number sent (plant) or answered (fsw)
        ("reason", "s"),        # why the run ends, one line
    ),
    STATUS: (
        ("seq", "u"),           # as END: the last frame sequence number sent or answered
        ("stats", "counts"),    # {"frames_received", "frames_repeated", "commands_resent",
                                #  "bad_frames", "crc_errors", ...}: unsigned integers
    ),
}

# The value the "role" field must hold, per message.
ROLES = {HELLO: "plant", HELLO_ACK: "fsw"}

# Flight software modes, in mission order; the command carries the index.
MODES = ("init", "coast", "braking", "approach", "terminal", "touchdown", "safe")

# COMMAND.flags bits.
FLAG_ALT_USED = 1        # an altimeter sample was fused this cycle
FLAG_ALT_REJECTED = 2    # an altimeter sample was rejected by the innovation check this cycle
FLAG_ALT_HEALTHY = 4     # the flight software trusts the altimeter at the moment
FLAG_VEL_USED = 8        # a velocimeter sample was fused this cycle
FLAG_VEL_REJECTED = 16   # a velocimeter sample was rejected this cycle
FLAG_VEL_HEALTHY = 32    # the flight software trusts the velocimeter at the moment
FLAG_NAV_COV_FAULT = 64  # the flight software's own covariance check failed this cycle

# Integer ranges.
U32_MAX = 0xFFFFFFFF             # "u": seq, compute_us, flags
T_US_MAX = 0x7FFFFFFFFFFFFFFF    # "t": time stamps, us (int64, never negative)
COUNT_MAX = 0xFFFFFFFFFFFFFFFF   # "counts" values (uint64)
VEL_BEAMS = 3                    # velocimeter beams; valid_mask < 1 << VEL_BEAMS
ATT_INVALID_Q = (1.0, 0.0, 0.0, 0.0)  # the quaternion an invalid star tracker sample carries

# --- HELLO contents: the "rates" and "config" kinds --------------------------------------
# A schema is a tuple of (key, check, required). ``check`` names one of SCHEMA_CHECKS, or is
# a nested schema (the value must then be a map checked by it). A required key must be
# present; every key listed must pass its check; keys not listed are allowed and handed on
# unchecked (a newer plant may tell more than an older flight software reads).
SCHEMA_CHECKS = {
    "real": "a finite number",
    "pos": "a finite number > 0",
    "nonneg": "a finite number >= 0",
    "unit": "a finite number in 0..1",
    "time": "an integer 0..T_US_MAX (us)",
    "vec3": "an array of 3 finite numbers",
    "pos3": "an array of 3 finite numbers > 0",
    "nonneg3": "an array of 3 finite numbers >= 0",
    "dir3": "an array of 3 finite numbers, not all zero",
    "dirs3": "an array of 3 directions (each an array of 3 finite numbers, not all zero)",
    "quat": "an array of 4 finite numbers [w, x, y, z], not all zero",
    "map": "a map with string keys",
}

RATES_SCHEMA = (
    ("frame_hz", "pos", True),        # FRAME rate
    ("imu_hz", "pos", True),          # IMU samples per second
    ("altimeter_hz", "pos", True),    # altimeter measurements per second
    ("physics_hz", "pos", True),      # plant integration steps per second
    ("velocimeter_hz", "pos", False),  # velocimeter measurements per second, when fitted
    ("star_tracker_hz", "pos", False),  # star tracker measurements per second, when fitted
)

CONFIG_SCHEMA = (
    ("vehicle", (                     # what the flight software is told about the vehicle
        ("dry_mass_kg", "pos", True),
        ("propellant_kg", "nonneg", True),
        ("max_thrust_n", "pos", True),            # along body +z, through the centre of mass
        ("min_throttle", "unit", True),           # lowest non-zero throttle, fraction of max
        ("isp_s", "pos", True),
        ("throttle_time_constant_s", "nonneg", True),
        ("inertia_kgm2", "pos3", True),           # principal moments, body axes
        ("max_torque_nm", "nonneg3", True),       # per body axis
    ), True),
    ("site", (                        # the landing site, Moon-centred inertial frame (MCI)
        ("up", "dir3", True),                     # unit vector, MCI
        ("east", "dir3", True),                   # unit vector, MCI
        ("radius_m", "pos", True),                # terrain radius at the site, m
    ), True),
    ("nav_init", (                    # the initial estimate handed to the flight software
        ("t_us", "time", True),
        ("r_m", "vec3", True),                    # position, MCI, m
        ("v_mps", "vec3", True),                  # velocity, MCI, m/s
        ("q", "quat", True),                      # attitude, body to MCI, [w, x, y, z]
        ("pos_sigma_m", "nonneg", True),          # one-sigma error of r_m, per axis
        ("vel_sigma_mps", "nonneg", True),        # one-sigma error of v_mps, per axis
    ), True),
    ("altimeter", (
        ("boresight_body", "dir3", True),         # beam direction, body axes
        ("noise_m", "nonneg", True),              # one-sigma range noise, m
        ("noise_fraction", "nonneg", True),       # one-sigma noise proportional to range
    ), True),
    ("ignition_t_us", "time", True),              # end of the engine-off coast
    ("imu_hz", "pos", True),
    ("moon", (                        # absent: GM 4.902800118e12 m^3/s^2, radius 1737400 m,
                                      # no rotation
        ("gm_m3ps2", "pos", True),
        ("radius_m", "pos", True),                # mean radius; terrain is relative to it
        ("rotation_rad_s", "real", True),         # about MCI +z (sidereal: 2.6617e-6)
    ), False),
    ("velocimeter", (                 # absent: no velocimeter fitted (FRAME vel stays nil)
        ("beams_body", "dirs3", True),            # beam N's direction, body axes
        ("velocity_noise_mps", "nonneg", True),   # one-sigma line-of-sight velocity noise
        ("range_noise_m", "nonneg", True),        # one-sigma range noise
        ("max_range_m", "pos", True),             # no valid beam beyond this range
    ), False),
    ("star_tracker", (                # absent: no star tracker fitted (FRAME att stays nil)
        ("boresight_body", "dir3", True),         # optical axis, body axes
        ("cross_sigma_rad", "nonneg", True),      # one sigma about each axis across the boresight
        ("roll_sigma_rad", "nonneg", True),       # one sigma about the boresight
        ("rate_hz", "pos", True),                 # measurements per second
        ("latency_s", "nonneg", True),            # measurement to delivery
        ("max_rate_radps", "pos", True),          # no valid sample above this body rate
    ), False),
    ("imu", (                         # absent: the IMU's grade is not told (SI units, one
                                      # sigma, residuals after calibration; plant/imu.py)
        ("gyro_bias_radps", "nonneg", True),              # turn-on bias, per axis
        ("gyro_bias_instability_radps", "nonneg", True),  # bias instability (IEEE 952)
        ("gyro_arw_rad_per_sqrt_s", "nonneg", True),      # angle random walk
        ("gyro_scale", "nonneg", True),                   # scale-factor error, fraction
        ("accel_bias_mps2", "nonneg", True),
        ("accel_bias_instability_mps2", "nonneg", True),
        ("accel_vrw_mps_per_sqrt_s", "nonneg", True),     # velocity random walk
        ("accel_scale", "nonneg", True),
        ("misalignment_rad", "nonneg", True),
        ("bias_correlation_time_s", "pos", True),         # longest bias correlation time
    ), False),
    ("fsw", "map", False),            # options for the flight software, its own business
)

# Largest encoded message accepted, bytes.
MAX_PAYLOAD_BYTES = 4096
