"""The run history's columns: one table with each column's kind, unit, frame and meaning.

``HISTORY`` is every run's columns, ``TIMING`` what a real-time run appends. The recorder
(:mod:`hil.engine.recorder`) fills rows in this order; docs/history.md is this table in
prose (a test keeps the two in step: ``python -m hil.engine.schema`` prints the table).

Kinds decide how a cell is stored and written:

- ``f``   float; NaN is written ``nan``
- ``f?``  float or missing (``None``); missing is an empty CSV cell, a null in Parquet
- ``i``   integer
- ``i?``  integer or missing (an empty cell, a null)
- ``s``   text (``mode``: a name from ``bridge.protocol.MODES``; ``faults``: labels)

Frames: **MCI** is Moon-centred inertial (x through latitude 0, longitude 0, z through the
north pole; plant/moon.py); **site** is the target's local frame (downrange along east,
crossrange along north, arc lengths at the mean radius); **body** is the vehicle's body
axes (main engine along +z); **beam** is along a velocimeter beam (fixed in the body);
**body->MCI** is a quaternion [w, x, y, z] that turns body vectors into MCI.
Each other stream adds its columns here with a small hunk.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One history column."""

    name: str
    kind: str          # f, f?, i, i?, s (see the module docstring)
    unit: str          # "" for dimensionless
    frame: str         # MCI, site, body, or "" where no frame applies
    doc: str


def _c(name: str, kind: str, unit: str, frame: str, doc: str) -> Column:
    return Column(name, kind, unit, frame, doc)


HISTORY: tuple[Column, ...] = (
    _c("t_s", "f", "s", "", "sim time of the frame (the frame's t_us / 1e6)"),
    _c("seq", "i", "", "", "frame sequence number (0 for the first frame)"),
    _c("mode", "s", "", "", "flight software mode of the command answering the frame"),
    _c("true_x_m", "f", "m", "MCI", "true position, x"),
    _c("true_y_m", "f", "m", "MCI", "true position, y"),
    _c("true_z_m", "f", "m", "MCI", "true position, z"),
    _c("true_vx_mps", "f", "m/s", "MCI", "true velocity, x"),
    _c("true_vy_mps", "f", "m/s", "MCI", "true velocity, y"),
    _c("true_vz_mps", "f", "m/s", "MCI", "true velocity, z"),
    _c("true_alt_m", "f", "m", "site", "true altitude above the terrain under the vehicle "
                                        "(radial)"),
    _c("true_vert_speed_mps", "f", "m/s", "site", "true vertical speed over the ground, "
                                                  "positive up (local radial)"),
    _c("true_horiz_speed_mps", "f", "m/s", "site", "true horizontal speed over the ground "
                                                   "(perpendicular to the local radial)"),
    _c("true_downrange_m", "f", "m", "site", "arc length east of the target, of the ground "
                                             "point under the vehicle (negative: before it)"),
    _c("true_crossrange_m", "f", "m", "site", "arc length north of the target"),
    _c("true_tilt_deg", "f", "deg", "", "angle between the body +z axis (thrust) and the "
                                        "local vertical"),
    _c("true_rate_dps", "f", "deg/s", "body", "magnitude of the true angular rate"),
    _c("mass_kg", "f", "kg", "", "true total mass"),
    _c("propellant_kg", "f", "kg", "", "true propellant left"),
    _c("throttle_actual", "f", "", "", "actual throttle, 0..1 of max thrust (lags the "
                                       "command)"),
    _c("imu_dvx_mps", "f", "m/s", "body", "sum of the frame's IMU delta-velocity samples, x "
                                          "(nan: no sample)"),
    _c("imu_dvy_mps", "f", "m/s", "body", "IMU delta-velocity sum, y"),
    _c("imu_dvz_mps", "f", "m/s", "body", "IMU delta-velocity sum, z"),
    _c("imu_dax_rad", "f", "rad", "body", "sum of the frame's IMU delta-angle samples, x"),
    _c("imu_day_rad", "f", "rad", "body", "IMU delta-angle sum, y"),
    _c("imu_daz_rad", "f", "rad", "body", "IMU delta-angle sum, z"),
    _c("alt_t_s", "f?", "s", "", "measurement time of the altimeter sample in the frame "
                                 "(empty: none delivered yet)"),
    _c("alt_range_m", "f?", "m", "body", "measured slant range along the boresight (0 when "
                                         "invalid)"),
    _c("alt_valid", "i", "", "", "1 if the altimeter sample is valid, else 0"),
    _c("alt_true_range_m", "f?", "m", "body", "true slant range of the altimeter's latest "
                                              "sample (empty: no terrain within max range)"),
    _c("vel_t_s", "f?", "s", "", "measurement time of the velocimeter sample in the frame "
                                 "(empty: no velocimeter, or none delivered yet)"),
    _c("vel_los0_mps", "f?", "m/s", "beam", "line-of-sight velocity along beam 0: rate of "
                                            "change of its range (negative while closing)"),
    _c("vel_los1_mps", "f?", "m/s", "beam", "line-of-sight velocity along beam 1"),
    _c("vel_los2_mps", "f?", "m/s", "beam", "line-of-sight velocity along beam 2"),
    _c("vel_range0_m", "f?", "m", "beam", "range along beam 0"),
    _c("vel_range1_m", "f?", "m", "beam", "range along beam 1"),
    _c("vel_range2_m", "f?", "m", "beam", "range along beam 2"),
    _c("vel_valid_mask", "i?", "", "", "bit N set: beam N valid"),
    _c("att_t_s", "f?", "s", "", "measurement time of the star tracker sample in the frame "
                                 "(empty: no star tracker, or none delivered yet)"),
    _c("att_qw", "f?", "", "body->MCI", "measured attitude quaternion, scalar part w "
                                        "(1 when invalid)"),
    _c("att_qx", "f?", "", "body->MCI", "measured attitude quaternion, x (0 when invalid)"),
    _c("att_qy", "f?", "", "body->MCI", "measured attitude quaternion, y (0 when invalid)"),
    _c("att_qz", "f?", "", "body->MCI", "measured attitude quaternion, z (0 when invalid)"),
    _c("att_valid", "i?", "", "", "1 if the star tracker sample is valid, else 0 (empty: "
                                  "no sample)"),
    _c("nav_x_m", "f", "m", "MCI", "flight software's position estimate, x (nan: none "
                                   "reported)"),
    _c("nav_y_m", "f", "m", "MCI", "position estimate, y"),
    _c("nav_z_m", "f", "m", "MCI", "position estimate, z"),
    _c("nav_vx_mps", "f", "m/s", "MCI", "flight software's velocity estimate, x"),
    _c("nav_vy_mps", "f", "m/s", "MCI", "velocity estimate, y"),
    _c("nav_vz_mps", "f", "m/s", "MCI", "velocity estimate, z"),
    _c("nav_alt_m", "f", "m", "site", "flight software's height above the ground under the "
                                      "vehicle"),
    _c("nav_pos_err_m", "f", "m", "", "distance between the estimated and the true position"),
    _c("nav_vel_err_mps", "f", "m/s", "", "magnitude of the velocity estimate's error"),
    _c("nav_alt_err_m", "f", "m", "", "nav_alt_m - true_alt_m"),
    _c("cmd_throttle", "f", "", "", "commanded throttle (0 = off, else min_throttle..1)"),
    _c("cmd_tx_nm", "f", "N m", "body", "commanded torque, x"),
    _c("cmd_ty_nm", "f", "N m", "body", "commanded torque, y"),
    _c("cmd_tz_nm", "f", "N m", "body", "commanded torque, z"),
    _c("cmd_flags", "i", "", "", "the command's flag bits (bridge.protocol FLAG_*)"),
    _c("compute_us", "i?", "us", "", "the flight software's own compute time for the cycle "
                                     "(wall clock; empty: no command in time)"),
    _c("round_trip_us", "i?", "us", "", "frame sent -> command received, plant's monotonic "
                                        "clock (wall clock; in-process: the step call)"),
    _c("faults", "s", "", "", "sensor faults active during the frame, e.g. "
                              "\"altimeter:late;imu:bias\" (plant.faults)"),
    # landing gear (plant/gear.py; empty without [gear]): the plant's gear_row() in this order
    _c("gear_legs_down", "i?", "", "", "legs whose footpad touches the ground"),
    *(_c(f"gear_stroke{i}_m", "f?", "m", "", f"leg {i}: crushed stroke") for i in range(1, 5)),
    *(_c(f"gear_load{i}_n", "f?", "N", "", f"leg {i}: contact force") for i in range(1, 5)),
)

TIMING: tuple[Column, ...] = (
    _c("due_us", "i", "us", "", "scheduled start of the cycle, since t0 (real time only)"),
    _c("sent_us", "i?", "us", "", "frame sent, since t0; empty if skipped (the fsw was busy)"),
    _c("jitter_us", "i?", "us", "", "sent_us - due_us"),
    _c("arrival_us", "i?", "us", "", "the command for this frame arrived, since t0 (if by "
                                     "the step)"),
    _c("deadline_met", "i", "", "", "1 if this frame's command arrived by due + deadline"),
    _c("applied_seq", "i?", "", "", "seq of the command the plant applied over this cycle"),
    _c("late_seq", "i?", "", "", "a late command that arrived during this cycle: its seq"),
    _c("late_latency_us", "i?", "us", "", "that late command's latency (sent -> arrival)"),
    _c("late_overrun_us", "i?", "us", "", "by how much that late command missed its deadline"),
    _c("plant_step_us", "i?", "us", "", "the plant's physics step for this cycle"),
)

HISTORY_COLUMNS: list[str] = [c.name for c in HISTORY]
TIMING_COLUMNS: list[str] = [c.name for c in TIMING]
# Columns measured on a wall clock: they differ between two runs of the same seed.
WALL_CLOCK_COLUMNS: tuple[str, ...] = ("compute_us", "round_trip_us", *TIMING_COLUMNS)

KINDS = ("f", "f?", "i", "i?", "s")
for _col in HISTORY + TIMING:
    if _col.kind not in KINDS:
        raise RuntimeError(f"history column {_col.name}: unknown kind {_col.kind!r}")


def columns(realtime: bool = False) -> tuple[Column, ...]:
    """The columns of a run's history (real time appends :data:`TIMING`)."""
    return HISTORY + TIMING if realtime else HISTORY


def markdown_table(cols: tuple[Column, ...]) -> str:
    """The columns as a Markdown table (docs/history.md holds these)."""
    lines = ["| column | unit | frame | meaning |", "|---|---|---|---|"]
    for c in cols:
        lines.append(f"| `{c.name}` | {c.unit or '-'} | {c.frame or '-'} | {c.doc} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table(HISTORY))
    print()
    print(markdown_table(TIMING))
