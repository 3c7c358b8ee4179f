"""Write tests/vectors/wire_vectors.json: test vectors shared by the host and the board.

    .venv/bin/python tests/vectors/make_vectors.py           # (re)write the file
    .venv/bin/python tests/vectors/make_vectors.py --check   # exit 1 if the file is stale

Everything comes from the host's own code (bridge.codec for msgpack, bridge.framing for
COBS + CRC-32 + delimiter) and fixed inputs, so running it again gives the same file byte
for byte; tests/test_framing.py checks that. The board firmware checks its encoder,
decoder, COBS and CRC against the same file.
"""

from __future__ import annotations

import json
import pathlib
import random
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402
from cobs import cobs  # noqa: E402

from bridge import protocol as p  # noqa: E402
from bridge.codec import decode, encode  # noqa: E402
from bridge.errors import ProtocolError, VersionError  # noqa: E402
from bridge.framing import (CRC_BYTES, MAX_FRAME_BYTES, FrameDecoder, crc32,  # noqa: E402
                            encode_frame)

OUT = pathlib.Path(__file__).resolve().parent / "wire_vectors.json"

# --- messages ------------------------------------------------------------------------------

# A realistic handshake config (the shape of plant.lander.LanderPlant.fsw_config), written
# out here so the vectors do not change when the plant does. "fsw" holds options of every
# msgpack form the host can emit: negative integers of each width, a long string, a map of
# more than 15 keys, an array of more than 15 elements, non-ASCII text, -0.0, extremes.
HELLO_CONFIG = {
    "vehicle": {"dry_mass_kg": 1100.0, "propellant_kg": 680.0, "max_thrust_n": 9000.0,
                "min_throttle": 0.1, "isp_s": 318.5, "throttle_time_constant_s": 0.05,
                "inertia_kgm2": [2300.0, 2300.0, 1800.0], "max_torque_nm": [400.0, 400.0, 250.0]},
    "site": {"up": [0.6234898018587336, -0.7818314824680298, 0.0],
             "east": [0.7818314824680298, 0.6234898018587336, 0.0], "radius_m": 1736512.75},
    "nav_init": {"t_us": 0, "r_m": [1090143.5812, -1366952.0447, 12.25],
                 "v_mps": [1334.126, 1063.9977, -0.0315], "q": [0.9238795325112867, 0.0,
                                                                -0.3826834323650898, 0.0],
                 "pos_sigma_m": 120.0, "vel_sigma_mps": 0.2},
    "altimeter": {"boresight_body": [0.0, 0.0, 1.0], "noise_m": 0.1, "noise_fraction": 0.001},
    "ignition_t_us": 30000000,
    "imu_hz": 200.0,
    "fsw": {
        "gate_tilt_deg": 25, "k_pos": -1, "k_a": -32, "k_b": -33, "k_c": -128, "k_d": -129,
        "k_e": -32768, "k_f": -32769, "k_g": -2147483648, "k_h": -2147483649,
        "k_i": -(2 ** 63), "u8": 255, "u16": 65535, "u32": 4294967295, "u64": 2 ** 64 - 1,
        "neg_zero": -0.0, "tiny": 5e-324, "huge": 1.7976931348623157e308,
        "label": "Mare Crisium \u2014 r\u00e9gion \u0398, \u6708\u9762 \U0001F315",
        "ok": True, "bypass": False, "none": None,
        "table": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, -1.5, "x", [[]]],
        "notes": ("Nominal powered descent from 15 km; altimeter acquires below 20 km. "
                  "Cr\u00e8te du crat\u00e8re \u00e0 3.2 km uprange: expect range jumps. ") * 3,
    },
}
HELLO_RATES = {"frame_hz": 50.0, "imu_hz": 200.0, "altimeter_hz": 10.0, "physics_hz": 200.0}
# The optional sections of protocol 2's config, and the velocimeter's rate.
MOON = {"gm_m3ps2": 4902800118000.0, "radius_m": 1737400.0, "rotation_rad_s": 2.6617e-06}
VELOCIMETER = {"beams_body": [[0.4226182617, 0.0, 0.906307787], [-0.2113091309, 0.3659981507,
                                                                    0.906307787],
                              [-0.2113091309, -0.3659981507, 0.906307787]],
               "velocity_noise_mps": 0.02, "range_noise_m": 2.0, "max_range_m": 5000.0,
               "latency_s": 0.05}
# protocol 3's star tracker section (a 5 arcsec x 40 arcsec tracker looking along body +y)
STAR_TRACKER = {"boresight_body": [0.0, 1.0, 0.0], "cross_sigma_rad": 2.42406840554768e-05,
                "roll_sigma_rad": 0.000193925472443814, "rate_hz": 5.0, "latency_s": 0.1,
                "max_rate_radps": 0.0349065850398866}


def _without(config: dict, path: str) -> dict:
    """A deep copy of config without the key at a dotted path."""
    out = json.loads(json.dumps(config))
    *parents, key = path.split(".")
    node = out
    for k in parents:
        node = node[k]
    del node[key]
    return out


def _with(config: dict, path: str, value) -> dict:
    """A deep copy of config with the key at a dotted path set to value."""
    out = json.loads(json.dumps(config))
    *parents, key = path.split(".")
    node = out
    for k in parents:
        node = node[k]
    node[key] = value
    return out


def minimal_config() -> dict:
    """HELLO_CONFIG with only the required keys: what every flight software may rely on."""
    return {key: value for key, value in HELLO_CONFIG.items() if key != "fsw"}


def _imu(n: int, t_end_us: int, rng: random.Random) -> list:
    """n IMU samples at 200 Hz ending at t_end_us, with realistic small deltas."""
    return [[t_end_us - 5000 * (n - 1 - k),
             round(rng.uniform(-0.002, 0.002), 9), round(rng.uniform(-0.002, 0.002), 9),
             round(0.0081 + rng.uniform(-1e-4, 1e-4), 9),
             rng.uniform(-2e-6, 2e-6), rng.uniform(-2e-6, 2e-6), -rng.uniform(0.0, 1e-6)]
            for k in range(n)]


def messages() -> list[tuple[str, int, list]]:
    """(name, type_id, fields in layout order) for each message vector."""
    rng = random.Random(20261124)
    big_t = 2 ** 40  # sim time past 2**32 us (71.6 min): a uint64 on the wire
    return [
        ("hello", p.HELLO, ["plant", "nominal \u2014 Mare Crisium", HELLO_RATES, HELLO_CONFIG]),
        ("hello_v2_sections", p.HELLO, ["plant", "terminal", dict(HELLO_RATES, velocimeter_hz=10.0),
                                        dict(minimal_config(), moon=MOON, velocimeter=VELOCIMETER)]),
        ("hello_v3_star_tracker", p.HELLO, ["plant", "nominal-mems",
                                            dict(HELLO_RATES, velocimeter_hz=10.0, star_tracker_hz=5),
                                            dict(minimal_config(), velocimeter=VELOCIMETER,
                                                 star_tracker=STAR_TRACKER)]),
        ("hello_minimal", p.HELLO, ["plant", "x", HELLO_RATES, minimal_config()]),
        ("hello_ack_doc", p.HELLO_ACK, ["fsw", "fsil-fsw 0.1.0", "cpython 3.11.7"]),
        ("hello_ack_board", p.HELLO_ACK, ["fsw", "fsil-fsw 0.1.0", "micropython 1.27.0"]),
        ("frame_first", p.FRAME, [0, 0, [], None, None, None]),
        ("frame_1imu_alt_nil", p.FRAME, [1, 20000, _imu(1, 20000, rng), None, None, None]),
        ("frame_4imu_alt", p.FRAME, [1234, 24680000, _imu(4, 24680000, rng),
                                     [24600000, 15012.25, True], None, None]),
        ("frame_16imu_late", p.FRAME, [54975581, big_t, _imu(16, big_t, rng),
                                       [big_t - 50000, 2.375, False],
                                       [big_t - 30000, -0.03125, -0.0625, 0.0, 2.5, 2.625,
                                        2.75, 5], None]),
        ("frame_vel_all_valid", p.FRAME, [4000, 80000000, _imu(4, 80000000, rng),
                                          [79950000, 2480.5, True],
                                          [79980000, -41.25, -38.5, -44.0078125, 2871.25,
                                           2866.0, 2903.5, 7], None]),
        ("frame_vel_none_valid", p.FRAME, [4001, 80020000, _imu(4, 80020000, rng),
                                           [79950000, 2480.5, True],
                                           [80000000, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0], None]),
        ("frame_vel_only", p.FRAME, [12, 240000, [], None,
                                     [230000, -1.5, -1.5, -1.5, 30.25, 30.25, 30.25, 2], None]),
        ("frame_att_valid", p.FRAME, [4002, 80040000, _imu(4, 80040000, rng),
                                      [79950000, 2480.5, True],
                                      [80000000, -41.25, -38.5, -44.0078125, 2871.25, 2866.0,
                                       2903.5, 7],
                                      [79900000, 0.6532814824381883, -0.2705980500730985,
                                       0.6532814824381883, 0.2705980500730985, True]]),
        ("frame_att_invalid", p.FRAME, [4003, 80060000, _imu(4, 80060000, rng), None, None,
                                        [80000000, 1.0, 0.0, 0.0, 0.0, False]]),
        ("frame_att_only", p.FRAME, [13, 260000, [], None, None,
                                     [200000, 0.5, -0.5, 0.5, -0.5, True]]),
        ("frame_att_late", p.FRAME, [54975582, big_t + 20000, [], [big_t - 50000, 2.375, False],
                                     None, [big_t - 100000, -0.0, 0.0, -1.0, 0.0, True]]),
        ("command_doc", p.COMMAND, [7, 0.65, [1.5, -2.0, 0.0], 2, 850,
                                    [1737400.0, 10.0, -5.0, -1.0, 1692.0, 0.5, 15000.0], 5]),
        ("command_typical", p.COMMAND, [4921, 0.437512, [-12.75, 3.125, -0.0046875], 3, 70123,
                                        [1090143.58, -1366952.04, 1988.4, -41.3, 27.9, -35.02,
                                         1987.61], 7]),
        ("command_zeros", p.COMMAND, [0, 0.0, [0.0, -0.0, 0.0], 0, 0, [0.0] * 7, 0]),
        ("command_float32_exact", p.COMMAND, [65536, 1.0, [-400.0, 0.25, -0.125], 6, 255,
                                              [1736512.75, -2.5, 1024.0, 0.5, -0.75, 0.0,
                                               60.0], 4]),
        ("command_nav_nil", p.COMMAND, [9, 0.5, [0.0, 0.0, 0.0], 4, 1200, None,
                                        p.FLAG_VEL_USED | p.FLAG_VEL_HEALTHY]),
        ("command_limits", p.COMMAND, [p.U32_MAX, 1.0, [0.5, 0.5, 0.5], len(p.MODES) - 1,
                                       p.U32_MAX, None, p.U32_MAX]),
        ("command_all_flags", p.COMMAND, [3, 0.25, [1.0, 2.0, 3.0], 5, 65535,
                                          [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 30.0], 127]),
        ("end_plant", p.END, [29474, "touchdown"]),
        ("end_fsw", p.END, [p.U32_MAX, "protocol error: \u00abthrottle\u00bb must be a float, "
                                      "got str \u2014 fin de l'essai"]),
        ("status_serial", p.STATUS, [8532, {"frames_received": 8533, "frames_repeated": 12,
                                            "commands_resent": 12, "bad_frames": 3,
                                            "crc_errors": 2}]),
        ("status_empty", p.STATUS, [0, {}]),
        ("status_large", p.STATUS, [17, {"bytes_in": 2 ** 40, "bytes_out": p.COUNT_MAX}]),
    ]


def refused() -> list[tuple[str, str, bytes]]:
    """(name, note, payload) that every receiver refuses, built bypassing the encoder."""
    v = p.PROTOCOL_VERSION
    imu = [[20000, 0.001, 0.0, 0.0081, 0.0, 1e-06, 0.0]]
    cmd = [7, 0.65, [1.5, -2.0, 0.0], 2, 850, None, 5]

    def command(**change):
        fields = dict(zip([name for name, _ in p.LAYOUTS[p.COMMAND]], cmd), **change)
        return msgpack.packb([v, p.COMMAND, *fields.values()])

    def frame(**change):
        fields = dict(zip([name for name, _ in p.LAYOUTS[p.FRAME]],
                          [1, 20000, imu, None, None, None]), **change)
        return msgpack.packb([v, p.FRAME, *fields.values()])

    nan, inf = float("nan"), float("inf")

    def hello(config=None, rates=None, role="plant"):
        return msgpack.packb([v, p.HELLO, role, "x", HELLO_RATES if rates is None else rates,
                              minimal_config() if config is None else config])

    c = minimal_config()
    return [
        ("hello_role", "a HELLO whose role is not plant", hello(role="fsw")),
        ("hello_no_vehicle", "config without vehicle", hello(_without(c, "vehicle"))),
        ("hello_no_isp", "config.vehicle without isp_s", hello(_without(c, "vehicle.isp_s"))),
        ("hello_zero_quaternion", "an all-zero attitude", hello(_with(c, "nav_init.q", [0, 0, 0, 0]))),
        ("hello_nan_position", "a NaN in the initial position",
         hello(_with(c, "nav_init.r_m", [1.0, nan, 2.0]))),
        ("hello_negative_mass", "a negative dry mass", hello(_with(c, "vehicle.dry_mass_kg", -1.0))),
        ("hello_zero_thrust", "no thrust", hello(_with(c, "vehicle.max_thrust_n", 0))),
        ("hello_thrust_string", "a thrust as text", hello(_with(c, "vehicle.max_thrust_n", "9000"))),
        ("hello_throttle_above_1", "min_throttle above 1", hello(_with(c, "vehicle.min_throttle", 1.5))),
        ("hello_zero_inertia", "a zero moment of inertia",
         hello(_with(c, "vehicle.inertia_kgm2", [2300.0, 0.0, 1800.0]))),
        ("hello_site_up_zero", "a zero up vector", hello(_with(c, "site.up", [0.0, 0.0, 0.0]))),
        ("hello_site_not_map", "site as an array", hello(_with(c, "site", [1.0, 2.0]))),
        ("hello_t_us_float", "nav_init.t_us as a float", hello(_with(c, "nav_init.t_us", 0.0))),
        ("hello_ignition_negative", "a negative ignition time", hello(_with(c, "ignition_t_us", -1))),
        ("hello_moon_gm_zero", "a Moon without gravity",
         hello(dict(c, moon=dict(MOON, gm_m3ps2=0.0)))),
        ("hello_velocimeter_two_beams", "a velocimeter of two beams",
         hello(dict(c, velocimeter=dict(VELOCIMETER, beams_body=VELOCIMETER["beams_body"][:2])))),
        ("hello_fsw_not_map", "fsw options as a string", hello(dict(c, fsw="fast"))),
        ("hello_rates_no_frame_hz", "rates without frame_hz",
         hello(rates={k: x for k, x in HELLO_RATES.items() if k != "frame_hz"})),
        ("hello_rates_zero", "a zero IMU rate", hello(rates=dict(HELLO_RATES, imu_hz=0.0))),
        ("version_1_end", "an END of protocol 1: VersionError, the reason still readable",
         msgpack.packb([1, p.END, 0, "board firmware speaks protocol 1"])),
        ("unknown_type", "type id 99", msgpack.packb([v, 99, 1])),
        ("mode_7", "mode past the last of MODES", command(mode=len(p.MODES))),
        ("compute_us_2_63", "compute_us beyond 32 bits", command(compute_us=2 ** 63)),
        ("compute_us_2_32", "compute_us one past U32_MAX", command(compute_us=2 ** 32)),
        ("seq_2_32", "seq one past U32_MAX", command(seq=2 ** 32)),
        ("flags_2_32", "flags beyond 32 bits", command(flags=2 ** 32)),
        ("throttle_nan", "a NaN throttle", command(throttle=nan)),
        ("throttle_inf", "an infinite throttle", command(throttle=inf)),
        ("torque_inf", "an infinite torque", command(torque_nm=[0.0, -inf, 0.0])),
        ("nav_nan", "NaN in the estimate", command(nav=[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, nan])),
        ("nav_short", "an estimate of 6", command(nav=[0.0] * 6)),
        ("t_us_negative", "a frame time before 0", frame(t_us=-1)),
        ("t_us_2_63", "a frame time beyond int64", frame(t_us=2 ** 63)),
        ("imu_nan", "NaN in an IMU sample", frame(imu=[[20000, nan, 0.0, 0.0, 0.0, 0.0, 0.0]])),
        ("imu_huge_inf", "an infinite delta-angle",
         frame(imu=[[20000, 0.0, 0.0, 0.0, 0.0, 0.0, inf]])),
        ("imu_not_increasing", "two IMU samples with the same time stamp", frame(imu=imu * 2)),
        ("imu_decreasing", "IMU time stamps going back",
         frame(imu=[[20000] + imu[0][1:], [15000] + imu[0][1:]])),
        ("alt_nan", "a NaN altimeter range", frame(alt=[10000, nan, True])),
        ("alt_t_negative", "an altimeter time before 0", frame(alt=[-5, 100.0, True])),
        ("vel_mask_8", "a velocimeter mask with a fourth beam",
         frame(vel=[10000, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 8])),
        ("vel_inf", "an infinite line-of-sight velocity",
         frame(vel=[10000, inf, 0.0, 0.0, 1.0, 1.0, 1.0, 7])),
        ("vel_short", "a velocimeter sample of 7", frame(vel=[10000, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0])),
        ("vel_mask_float", "a float mask", frame(vel=[10000, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 7.0])),
        ("frame_v1_layout", "a protocol-1 FRAME (no vel) labelled version 3",
         msgpack.packb([v, p.FRAME, 1, 20000, imu, None])),
        ("frame_v2_layout", "a protocol-2 FRAME (no att) labelled version 3",
         msgpack.packb([v, p.FRAME, 1, 20000, imu, None, None])),
        ("frame_v2", "a protocol-2 FRAME: VersionError",
         msgpack.packb([2, p.FRAME, 1, 20000, imu, None, None])),
        ("att_nan", "a NaN in the star tracker quaternion",
         frame(att=[10000, 1.0, nan, 0.0, 0.0, True])),
        ("att_inf", "an infinite quaternion element", frame(att=[10000, 1.0, 0.0, 0.0, -inf, False])),
        ("att_zero", "an all-zero quaternion", frame(att=[10000, 0.0, 0.0, 0.0, 0.0, False])),
        ("att_zero_ints", "an all-zero quaternion as integers", frame(att=[10000, 0, 0, -0.0, 0, True])),
        ("att_short", "a star tracker sample of 5", frame(att=[10000, 1.0, 0.0, 0.0, 0.0])),
        ("att_long", "a star tracker sample of 7", frame(att=[10000, 1.0, 0.0, 0.0, 0.0, True, 0])),
        ("att_valid_int", "valid as an integer", frame(att=[10000, 1.0, 0.0, 0.0, 0.0, 1])),
        ("att_valid_nil", "valid as nil", frame(att=[10000, 1.0, 0.0, 0.0, 0.0, None])),
        ("att_t_negative", "a star tracker time before 0", frame(att=[-1, 1.0, 0.0, 0.0, 0.0, True])),
        ("att_t_float", "a star tracker time as a float", frame(att=[10000.0, 1.0, 0.0, 0.0, 0.0, True])),
        ("att_t_2_63", "a star tracker time beyond int64", frame(att=[2 ** 63, 1.0, 0.0, 0.0, 0.0, True])),
        ("att_q_string", "a quaternion element as text", frame(att=[10000, "1", 0.0, 0.0, 0.0, True])),
        ("att_not_array", "att as a map", frame(att={"qw": 1.0})),
        ("hello_star_tracker_no_rate", "a star tracker block without rate_hz",
         hello(dict(c, star_tracker={k: x for k, x in STAR_TRACKER.items() if k != "rate_hz"}))),
        ("hello_star_tracker_zero_boresight", "a star tracker looking nowhere",
         hello(dict(c, star_tracker=dict(STAR_TRACKER, boresight_body=[0.0, 0.0, 0.0])))),
        ("hello_star_tracker_negative_sigma", "a negative cross-boresight sigma",
         hello(dict(c, star_tracker=dict(STAR_TRACKER, cross_sigma_rad=-1e-5)))),
        ("hello_rates_star_tracker_zero", "a zero star tracker rate",
         hello(rates=dict(HELLO_RATES, star_tracker_hz=0.0))),
        ("hello_ack_role", "a HELLO_ACK whose role is not fsw",
         msgpack.packb([v, p.HELLO_ACK, "plant", "x 1.0", "cpython 3.11.7"])),
        ("status_negative", "a negative counter", msgpack.packb([v, p.STATUS, 1, {"crc_errors": -1}])),
        ("status_float", "a float counter", msgpack.packb([v, p.STATUS, 1, {"crc_errors": 1.0}])),
        ("end_seq_negative", "a negative END seq", msgpack.packb([v, p.END, -1, "x"])),
    ]


def to_json(value):
    """A value as JSON that keeps what msgpack keeps: floats bit for bit, map key order.

    float -> {"float": float.hex(), "bits": IEEE-754 binary64 big-endian hex}
    map   -> {"map": [[key, value], ...]} in wire order
    """
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return {"float": value.hex(), "bits": struct.pack(">d", value).hex()}
    if isinstance(value, dict):
        return {"map": [[key, to_json(v)] for key, v in value.items()]}
    return [to_json(v) for v in value]


def from_json(value):
    """Inverse of :func:`to_json`."""
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        if "map" in value:
            return {key: from_json(v) for key, v in value["map"]}
        bits = struct.unpack(">d", bytes.fromhex(value["bits"]))[0]
        assert bits.hex() == float.fromhex(value["float"]).hex()
        return bits
    return value


def _float32_exact(value) -> bool:
    """True if every float in value is a float32 (a board with single floats can match it)."""
    if isinstance(value, float):
        return struct.unpack("<f", struct.pack("<f", value))[0] == value
    if isinstance(value, dict):
        return all(_float32_exact(v) for v in value.values())
    if isinstance(value, list):
        return all(_float32_exact(v) for v in value)
    return True


# --- msgpack forms present in the payloads --------------------------------------------------

FORMS = (  # (first byte, last byte, name)
    (0x00, 0x7F, "positive fixint 00-7f"), (0x80, 0x8F, "fixmap 80-8f"),
    (0x90, 0x9F, "fixarray 90-9f"), (0xA0, 0xBF, "fixstr a0-bf"), (0xC0, 0xC0, "nil c0"),
    (0xC2, 0xC2, "false c2"), (0xC3, 0xC3, "true c3"), (0xC4, 0xC6, "bin8/16/32 c4-c6"),
    (0xCA, 0xCA, "float32 ca"), (0xCB, 0xCB, "float64 cb"), (0xCC, 0xCC, "uint8 cc"),
    (0xCD, 0xCD, "uint16 cd"), (0xCE, 0xCE, "uint32 ce"), (0xCF, 0xCF, "uint64 cf"),
    (0xD0, 0xD0, "int8 d0"), (0xD1, 0xD1, "int16 d1"), (0xD2, 0xD2, "int32 d2"),
    (0xD3, 0xD3, "int64 d3"), (0xD9, 0xD9, "str8 d9"), (0xDA, 0xDA, "str16 da"),
    (0xDB, 0xDB, "str32 db"), (0xDC, 0xDC, "array16 dc"), (0xDD, 0xDD, "array32 dd"),
    (0xDE, 0xDE, "map16 de"), (0xDF, 0xDF, "map32 df"), (0xE0, 0xFF, "negative fixint e0-ff"),
)
# Forms the board must handle to match the host; the others never occur in a payload.
CANONICAL = ("positive fixint 00-7f", "uint8 cc", "uint16 cd", "uint32 ce", "uint64 cf",
             "negative fixint e0-ff", "int8 d0", "int16 d1", "int32 d2", "int64 d3",
             "float64 cb", "fixstr a0-bf", "str8 d9", "str16 da", "fixarray 90-9f",
             "array16 dc", "fixmap 80-8f", "map16 de", "nil c0", "false c2", "true c3")


def msgpack_forms(data: bytes) -> set[str]:
    """Names of the msgpack forms in data, which must be exactly one object."""
    found: set[str] = set()

    def name(b: int) -> str:
        for first, last, form in FORMS:
            if first <= b <= last:
                return form
        raise ValueError(f"byte {b:02x} is not a msgpack form the host emits")

    def walk(k: int) -> int:
        b = data[k]
        form = name(b)
        found.add(form)
        size = {"uint8 cc": 1, "uint16 cd": 2, "uint32 ce": 4, "uint64 cf": 8, "int8 d0": 1,
                "int16 d1": 2, "int32 d2": 4, "int64 d3": 8, "float64 cb": 8, "float32 ca": 4}
        if form in size:
            return k + 1 + size[form]
        if form.startswith("fixstr"):
            return k + 1 + (b & 0x1F)
        if form in ("str8 d9", "str16 da", "str32 db"):
            width = {0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
            return k + 1 + width + int.from_bytes(data[k + 1:k + 1 + width], "big")
        if form.startswith(("fixarray", "array", "fixmap", "map")):
            if form.startswith("fix"):
                count, k = b & 0x0F, k + 1
            else:
                width = 2 if b in (0xDC, 0xDE) else 4
                count, k = int.from_bytes(data[k + 1:k + 1 + width], "big"), k + 1 + width
            for _ in range(count * (2 if "map" in form else 1)):
                k = walk(k)
            return k
        return k + 1  # fixint, nil, booleans

    if walk(0) != len(data):
        raise ValueError("not exactly one msgpack object")
    return found


# --- framing vectors ------------------------------------------------------------------------

def _nonzero(n: int, rng: random.Random) -> bytes:
    return bytes(rng.randrange(1, 256) for _ in range(n))


def _clean_crc_payload(n: int, seed: int) -> bytes:
    """n non-zero bytes whose CRC has no zero byte either: the body is one run of n + 4."""
    rng = random.Random(seed)
    while True:
        payload = _nonzero(n, rng)
        if 0 not in crc32(payload).to_bytes(CRC_BYTES, "little"):
            return payload


def framing_payloads() -> list[tuple[str, str, bytes]]:
    """(name, note, payload): COBS edge cases; body = payload + CRC is what COBS encodes."""
    rng = random.Random(4096)
    max_mixed = bytes(0 if rng.random() < 0.1 else rng.randrange(1, 256) for _ in range(4096))
    cases = [
        ("one_zero_byte", "payload 00", b"\x00"),
        ("one_byte", "payload 01", b"\x01"),
        ("zeros_5", "five zero bytes", b"\x00" * 5),
        ("zero_runs", "zero runs of 1, 2, 3 between bytes, a zero at the end",
         b"\x11\x00\x22\x00\x00\x33\x00\x00\x00\x44\x00"),
    ]
    for run in (253, 254, 255):
        cases.append((f"payload_run_{run}_then_zero",
                      f"{run} non-zero bytes, then 00, then 3 bytes: a run of {run} ends at a zero",
                      _nonzero(run, rng) + b"\x00" + _nonzero(3, rng)))
    for run in (253, 254, 255, 508):
        cases.append((f"body_run_{run}_at_end",
                      f"{run - 4} non-zero bytes and a CRC without zero: the body is one run "
                      f"of {run} ending at the end", _clean_crc_payload(run - 4, run)))
    cases += [
        ("max_payload_mixed", "4096 bytes, about 10 % zeros", max_mixed),
        ("max_payload_nonzero", "4096 non-zero bytes, CRC without zero: the longest frame, "
                                f"{MAX_FRAME_BYTES} bytes", _clean_crc_payload(4096, 4096)),
        ("max_payload_zeros", "4096 zero bytes", b"\x00" * 4096),
    ]
    return cases


def cobs_vectors() -> list[dict]:
    """Plain COBS (no CRC, no delimiter), for testing a COBS implementation alone."""
    rng = random.Random(254)
    data = [b"", b"\x00", b"\x00\x00", b"\x11\x22\x00\x33", b"\x11\x22\x33\x44",
            b"\x11\x00\x00\x00", bytes(range(1, 255)), bytes(range(0, 255)),
            bytes(range(1, 256)), bytes(range(2, 256)) + b"\x00", _nonzero(253, rng),
            _nonzero(254, rng) + b"\x00", _nonzero(255, rng), _nonzero(508, rng)]
    return [{"data_hex": d.hex(), "cobs_hex": cobs.encode(d).hex()} for d in data]


def crc_vectors() -> list[dict]:
    data = [b"", b"123456789", b"\x00", b"\xff\xff\xff\xff", b"\x00" * 32,
            b"The quick brown fox jumps over the lazy dog", bytes(range(256))]
    return [{"data_hex": d.hex(), "crc32": f"{crc32(d):08x}",
             "le_hex": crc32(d).to_bytes(4, "little").hex()} for d in data]


def stream_vectors(good: list[bytes]) -> list[dict]:
    """Byte streams with damage, the payloads a decoder returns and its counters."""
    a, b, c = (encode_frame(x) for x in good[:3])
    flipped = bytearray(a)
    k = len(a) // 2
    flipped[k] ^= 0x04 if flipped[k] ^ 0x04 else 0x08  # one bit, not creating a delimiter
    bad_crc = cobs.encode(good[0] + ((crc32(good[0]) ^ 1).to_bytes(4, "little"))) + b"\x00"
    streams = [
        ("good_frames", "a leading flush delimiter and three frames", b"\x00" + a + b + c),
        ("empty_candidates", "delimiters in a row are ignored, not counted",
         b"\x00\x00\x00" + a + b"\x00\x00" + b),
        ("garbage_first", "bytes before the first frame join it into one bad candidate; "
                          "the next frame is clean", b"\xde\xad\xbe\xef" + a + b),
        ("garbage_flushed", "garbage ended by a delimiter costs no frame",
         b"\xde\xad\xbe\xef\x00" + a + b),
        ("tail_of_older_frame", "a port opened mid-frame", a[-9:] + b + c),
        ("truncated", "half a frame, then a delimiter", a[:len(a) // 2] + b"\x00" + b),
        ("bit_flip", "one bit flipped inside a frame", bytes(flipped) + b),
        ("crc_mismatch", "valid COBS, CRC off by one bit", bad_crc + b),
        ("runt", "decodes to 3 bytes", cobs.encode(b"\x01\x02\x03") + b"\x00" + b),
        ("crc_only", "decodes to 4 bytes: a CRC and no payload is a runt",
         cobs.encode(crc32(b"").to_bytes(4, "little")) + b"\x00" + b),
        ("bad_cobs", "a code byte pointing past the end", b"\x05\x11\x22\x00" + b),
        ("oversize_decoded", f"{MAX_FRAME_BYTES} bytes of valid COBS decoding to "
                             "MAX_PAYLOAD_BYTES + 5 bytes",
         cobs.encode(b"\x41" * 4101) + b"\x00" + b),
        ("oversize_at_cap", f"{MAX_FRAME_BYTES + 1} bytes without a delimiter: dropped before "
                            "the delimiter comes", b"\x41" * (MAX_FRAME_BYTES + 1) + b"\x00" + b),
        ("endless", "10000 non-zero bytes: counted once, memory stays bounded",
         b"\x41" * 10000 + b"\x00" + b + c),
    ]
    out = []
    for name, note, data in streams:
        decoder = FrameDecoder()
        payloads = decoder.feed(data)
        out.append({"name": name, "note": note, "input_hex": data.hex(),
                    "payloads_hex": [x.hex() for x in payloads], "stats": decoder.stats})
    return out


# --- the file -------------------------------------------------------------------------------

def build() -> dict:
    msgs, forms = [], set()
    for name, type_id, fields in messages():
        payload = encode(type_id, fields)
        assert list(decode(payload).fields.values()) == fields, name
        forms |= msgpack_forms(payload)
        msgs.append({"name": name, "type": p.NAMES[type_id], "type_id": type_id,
                     "fields": to_json(fields), "float32_exact": _float32_exact(fields),
                     "payload_hex": payload.hex(), "frame_hex": encode_frame(payload).hex()})
    missing = set(CANONICAL) - forms
    assert not missing, f"message vectors lack msgpack forms {sorted(missing)}"
    frames = []
    for name, note, payload in framing_payloads():
        frames.append({"name": name, "note": note, "payload_hex": payload.hex(),
                       "crc32": f"{crc32(payload):08x}", "frame_hex": encode_frame(payload).hex()})
    good = [bytes.fromhex(m["payload_hex"]) for m in msgs if m["type"] in ("command", "end")]
    refusals = []
    for name, note, payload in refused():
        try:
            decode(payload)
        except ProtocolError as error:
            refusals.append({"name": name, "note": note, "payload_hex": payload.hex(),
                             "error": type(error).__name__,
                             "field": getattr(error, "field", "") or "",
                             "version_mismatch": isinstance(error, VersionError)})
        else:
            raise AssertionError(f"refused vector {name} was accepted")
    return {
        "about": [
            "fsil wire test vectors, shared by the host (bridge/) and the board firmware.",
            "Written by tests/vectors/make_vectors.py from the host codec and framing; "
            "do not edit by hand.",
            f"Protocol version {p.PROTOCOL_VERSION}; payloads at most {p.MAX_PAYLOAD_BYTES} bytes.",
            "Frame = COBS(payload + CRC-32/IEEE(payload) as 4 bytes little-endian) + 00. "
            "COBS is the basic method (Cheshire & Baker): a block of 254 non-zero bytes is "
            "code ff, and no extra code byte follows a final ff block.",
            f"Longest frame: {MAX_FRAME_BYTES} bytes with the delimiter.",
            "messages[].fields: the fields in layout order. JSON null/true/false/int/string "
            "are themselves; a float is {\"float\": float.hex(), \"bits\": IEEE-754 binary64 "
            "big-endian hex}; a map is {\"map\": [[key, value], ...]} in wire order.",
            "messages[].float32_exact: every float is a float32, so a board with single "
            "precision floats can produce the same bytes.",
            "msgpack forms: payloads use the smallest form of each value; every form in "
            "msgpack_forms_used occurs in messages[], the forms in msgpack_forms_never "
            "never occur in a payload.",
            "streams[]: a decoder fed input_hex (in one piece or byte by byte) returns "
            "payloads_hex and ends with these stats.",
            "refused[]: payloads every receiver refuses (bridge.errors class in error, the "
            "field named when there is one); version_mismatch: refused for its version.",
        ],
        "max_payload_bytes": p.MAX_PAYLOAD_BYTES,
        "max_frame_bytes": MAX_FRAME_BYTES,
        "msgpack_forms_used": [form for _, _, form in FORMS if form in forms],
        "msgpack_forms_never": [form for _, _, form in FORMS if form not in forms],
        "messages": msgs,
        "frames": frames,
        "cobs": cobs_vectors(),
        "crc": crc_vectors(),
        "streams": stream_vectors(good),
        "refused": refusals,
    }


def render(vectors: dict) -> str:
    return json.dumps(vectors, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render(build())
    if "--check" in argv:
        stale = not OUT.exists() or OUT.read_text(encoding="utf-8") != text
        print(f"{OUT} is {'stale: run make_vectors.py' if stale else 'up to date'}")
        return 1 if stale else 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
