"""The sensor frame handed to a flight software's ``step`` (MicroPython-safe).

``Frame(seq, t_us, imu, alt, vel, att)`` carries one FRAME message's fields as attributes:

* ``seq``  -- frame sequence number (int);
* ``t_us`` -- sim time at the frame (int, microseconds);
* ``imu``  -- IMU samples since the previous frame, oldest first, each
  ``[t_us, dvx, dvy, dvz, dax, day, daz]`` (delta-v m/s, delta-angle rad, body axes);
* ``alt``  -- None or the latest delivered altimeter sample ``[t_us, range_m, valid]``;
* ``vel``  -- None or the latest delivered velocimeter sample
  ``[t_us, vlos0, vlos1, vlos2, range0, range1, range2, valid_mask]``;
* ``att``  -- None (no star tracker fitted, or no sample delivered yet) or the latest
  delivered star tracker sample ``[t_us, qw, qx, qy, qz, valid]``: the measured attitude
  body -> MCI as a quaternion [w, x, y, z] (the convention of HELLO nav_init q); an invalid
  sample carries [1.0, 0.0, 0.0, 0.0].

A flight software reads only these attributes, so any object that has them (the plant's own
sensor frame in process, a decoded message) may be passed instead. See docs/your-fsw.md.
"""


class Frame:
    """One sensor frame: ``seq``, ``t_us``, ``imu``, ``alt``, ``vel``, ``att``."""

    def __init__(self, seq, t_us, imu, alt=None, vel=None, att=None):
        self.seq = seq
        self.t_us = t_us
        self.imu = imu
        self.alt = alt
        self.vel = vel
        self.att = att

    def __repr__(self):
        return "Frame(seq=%d, t_us=%d, %d imu samples, alt=%r, vel=%r, att=%r)" % (
            self.seq, self.t_us, len(self.imu), self.alt, self.vel, self.att)
