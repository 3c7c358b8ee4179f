"""The wire protocol's one table: version, message ids and field layouts.

This module is shared by the host and the board firmware, so it is written in the subset
of Python that MicroPython runs: constants and tuples only, no imports.

Every message is one msgpack array::

    [PROTOCOL_VERSION, type_id, field_1, field_2, ...]

with the fields in the order given by ``LAYOUTS[type_id]``. Each field is ``(name, kind)``
where kind is one of:

    "u"   unsigned integer            "i"   signed integer
    "f"   float (an integer is accepted and read as float)
    "s"   UTF-8 string                "b"   boolean
    "m"   map with string keys        "f3"  array of 3 floats
    "f7"  array of 7 floats           "imu" array of IMU samples (see below)
    "alt" nil, or one altimeter sample (see below)

IMU sample: ``[t_us, dvx, dvy, dvz, dax, day, daz]`` -- sample time (integer us, end of
the interval), delta-velocity (m/s) and delta-angle (rad) over the interval, body axes.
Altimeter sample: ``[t_us, range_m, valid]`` -- measurement time (integer us), slant
range (m), validity flag.
"""

PROTOCOL_VERSION = 1

# Message type ids.
HELLO = 1       # plant -> fsw: start of a run
HELLO_ACK = 2   # fsw -> plant: accepts the run, says what it is
FRAME = 3       # plant -> fsw: sensor frame
COMMAND = 4     # fsw -> plant: command answering one frame
END = 5         # either way: orderly end of the run

NAMES = {HELLO: "hello", HELLO_ACK: "hello_ack", FRAME: "frame", COMMAND: "command", END: "end"}

LAYOUTS = {
    HELLO: (
        ("role", "s"),          # "plant"
        ("scenario", "s"),      # scenario name
        ("rates", "m"),         # {"frame_hz", "imu_hz", "altimeter_hz", "physics_hz"}: floats, Hz
        ("config", "m"),        # vehicle, target and initial state vector for the flight software
    ),
    HELLO_ACK: (
        ("role", "s"),          # "fsw"
        ("software", "s"),      # flight software name and version
        ("runtime", "s"),       # interpreter, e.g. "cpython 3.11.7" or "micropython 1.27.0"
    ),
    FRAME: (
        ("seq", "u"),           # frame sequence number, 0 for the first frame
        ("t_us", "i"),          # sim time at the frame, integer microseconds
        ("imu", "imu"),         # IMU samples since the previous frame, oldest first
        ("alt", "alt"),         # latest delivered altimeter sample, or nil before the first
    ),
    COMMAND: (
        ("seq", "u"),           # the frame sequence number this command answers
        ("throttle", "f"),      # 0 = engine off, else min_throttle..1 of max thrust
        ("torque_nm", "f3"),    # attitude torque demand, body axes, N m
        ("mode", "u"),          # index into MODES
        ("compute_us", "u"),    # flight software's own compute time for this cycle, us
        ("nav", "f7"),          # estimate: position (m, 3), velocity (m/s, 3), altitude (m)
        ("flags", "u"),         # bit field, see FLAG_*
    ),
    END: (
        ("seq", "u"),           # last sequence number sent by the sender
        ("reason", "s"),        # why the run ends, one line
    ),
}

# Flight software modes, in mission order; the command carries the index.
MODES = ("init", "coast", "braking", "approach", "terminal", "touchdown", "safe")

# COMMAND.flags bits.
FLAG_ALT_USED = 1        # an altimeter sample was fused this cycle
FLAG_ALT_REJECTED = 2    # an altimeter sample was rejected by the innovation check this cycle
FLAG_ALT_HEALTHY = 4     # the flight software trusts the altimeter at the moment

# Largest encoded message accepted, bytes.
MAX_PAYLOAD_BYTES = 4096
