"""A lander flight software of your own, written against fsil's contract only (docs/your-fsw.md).

Run it:

    fsil run --scenario terminal --fsw examples/python-fsw/my_fsw.py:MyFsw
    fsil hil --virtual --scenario terminal --fsw examples/python-fsw/my_fsw.py:MyFsw

It imports nothing from fsil and only ``math`` from Python, so it also runs under MicroPython
on a board. Deliberately simple, and readable in one sitting:

* navigation: strapdown integration of the IMU (attitude from the delta-angles, velocity
  from the delta-v plus lunar gravity) from the initial estimate in the HELLO config, and
  the altimeter pulling the height towards the measured height above the ground;
* guidance: velocity tracking. The wanted velocity points at the landing site (at most
  ``MAX_GROUND_SPEED_MPS``, slowing as it gets near) and descends at a rate that shrinks
  with height; the final descent waits until the vehicle is over the site and slow;
* control: thrust along the wanted acceleration (body +z), a PD attitude law for the torque.
"""

import math

GM_MOON = 4.902800118e12        # m^3/s^2, used when the HELLO config has no "moon" block
G0 = 9.80665                    # m/s^2, for the specific impulse

MAX_GROUND_SPEED_MPS = 60.0
GROUND_BRAKING_MPS2 = 0.8       # horizontal speed wanted: stops at the site at this rate ...
GROUND_TIME_CONSTANT_S = 8.0    # ... and at most distance / this (a soft arrival)
MAX_DESCENT_MPS = 30.0
DESCENT_BRAKING_MPS2 = 0.8      # the same for the descent rate and the height
DESCENT_TIME_CONSTANT_S = 8.0
TOUCHDOWN_MPS = 1.0             # final descent rate
GLIDE_SLOPE = 0.3               # stay above this x the distance to the site
FINAL_GATE_M = 40.0             # below this height, descend only when over the site and slow
VELOCITY_TIME_CONSTANT_S = 2.5  # how fast a velocity error is removed
MAX_TILT_DEG = 50.0             # of the thrust from the local vertical
ALT_GAIN_PER_S = 0.2            # altimeter correction of the height estimate
ATT_BANDWIDTH_RAD_S = 2.0       # attitude loop


# --- small vector helpers (tuples of 3 floats) --------------------------------------------
def add(a, b):
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def sub(a, b):
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def scale(a, k):
    return (a[0] * k, a[1] * k, a[2] * k)


def dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def norm(a):
    return math.sqrt(dot(a, a))


def unit(a):
    n = norm(a)
    return scale(a, 1.0 / n) if n > 0.0 else (0.0, 0.0, 0.0)


def rotate(q, v):
    """v (body) into the inertial frame by q = (w, x, y, z), body to inertial."""
    w, x, y, z = q
    t = (2.0 * (y * v[2] - z * v[1]), 2.0 * (z * v[0] - x * v[2]), 2.0 * (x * v[1] - y * v[0]))
    return (v[0] + w * t[0] + y * t[2] - z * t[1],
            v[1] + w * t[1] + z * t[0] - x * t[2],
            v[2] + w * t[2] + x * t[1] - y * t[0])


def rotate_back(q, v):
    """v (inertial) into body axes."""
    return rotate((q[0], -q[1], -q[2], -q[3]), v)


def q_mul_small(q, a):
    """q times the rotation by the small angle vector a (body axes), normalised."""
    w, x, y, z = q
    h = 0.5
    dw, dx, dy, dz = 1.0, a[0] * h, a[1] * h, a[2] * h
    r = (w * dw - x * dx - y * dy - z * dz, w * dx + x * dw + y * dz - z * dy,
         w * dy - x * dz + y * dw + z * dx, w * dz + x * dy - y * dx + z * dw)
    n = math.sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2] + r[3] * r[3])
    return (r[0] / n, r[1] / n, r[2] / n, r[3] / n)


class MyFsw:
    """The whole flight software: one object per run, one ``step`` per sensor frame."""

    NAME = "my-fsw"
    VERSION = "1.0"

    def __init__(self, config):
        veh = config["vehicle"]
        self.max_thrust_n = float(veh["max_thrust_n"])
        self.min_throttle = float(veh["min_throttle"])
        self.exhaust_mps = float(veh["isp_s"]) * G0
        self.inertia = [float(x) for x in veh["inertia_kgm2"]]
        self.max_torque = [float(x) for x in veh["max_torque_nm"]]
        self.mass_kg = float(veh["dry_mass_kg"]) + float(veh["propellant_kg"])
        moon = config.get("moon", {})
        self.gm = float(moon.get("gm_m3ps2", GM_MOON))
        self.omega = float(moon.get("rotation_rad_s", 0.0))    # about inertial +z, rad/s
        site = config["site"]
        self.up = tuple(float(x) for x in site["up"])          # at the site, inertial
        self.east = tuple(float(x) for x in site["east"])
        self.north = cross(self.up, self.east)
        self.site_radius_m = float(site["radius_m"])
        nav = config["nav_init"]
        # Position relative to the site on its datum sphere: small numbers, so that the
        # arithmetic keeps centimetres in single precision too (a Pico's MicroPython).
        self.site = scale(self.up, self.site_radius_m)           # inertial, m
        self.d = sub(tuple(float(x) for x in nav["r_m"]), self.site)
        self.v = tuple(float(x) for x in nav["v_mps"])          # velocity, inertial, m/s
        self.q = tuple(float(x) for x in nav["q"])              # attitude, body to inertial
        self.t_us = int(nav["t_us"])
        self.boresight = tuple(float(x) for x in config["altimeter"]["boresight_body"])
        self.imu_dt_s = 1.0 / float(config["imu_hz"])
        self.rate = (0.0, 0.0, 0.0)                             # body rate, rad/s
        self.last_alt_t_us = None
        self.last_att_t_us = None
        self.throttle = 0.0
        self.mode = "approach"

    # --- the contract: one call per frame ---------------------------------------------
    def step(self, frame):
        dt = (frame.t_us - self.t_us) * 1e-6
        self.t_us = frame.t_us
        self.propagate(frame.imu)
        self.fuse_star_tracker(getattr(frame, "att", None))
        self.mass_kg -= self.throttle * self.max_thrust_n / self.exhaust_mps * max(dt, 0.0)
        alt_used = self.fuse_altimeter(frame.alt)
        accel = self.guidance()
        throttle, torque = self.control(accel)
        self.throttle = throttle
        r = self.position()
        nav = (r[0], r[1], r[2], self.v[0], self.v[1], self.v[2], self.height())
        return throttle, torque, self.mode, nav, (1 if alt_used else 0)

    # --- navigation ---------------------------------------------------------------------
    def propagate(self, imu):
        """Strapdown: each IMU sample's delta-angle turns the attitude, its delta-v (the
        specific force, body axes) and gravity change the velocity."""
        dt = self.imu_dt_s
        for sample in imu:
            da = (sample[4], sample[5], sample[6])
            q_mid = q_mul_small(self.q, scale(da, 0.5))
            self.q = q_mul_small(self.q, da)
            r = self.position()
            g = scale(r, -self.gm / norm(r) ** 3)
            v_new = add(add(self.v, rotate(q_mid, (sample[1], sample[2], sample[3]))),
                        scale(g, dt))
            self.d = add(self.d, scale(add(self.v, v_new), 0.5 * dt))
            self.v = v_new
            self.rate = scale(da, 1.0 / dt)

    def fuse_star_tracker(self, att):
        """A star tracker's sample ``[t_us, qw, qx, qy, qz, valid]`` (the attitude body ->
        inertial at ``t_us``), when one is fitted (None otherwise). Each sample is repeated
        in the frames until the next arrives: use it once. A complementary filter: the
        attitude is turned a fifth of the way to the measured one, and the gyros carry it
        between samples. (The sample is a tenth of a second old when it arrives; fsil's own
        flight software compares it with its attitude of that time, fsw/nav.py.)"""
        if att is None or not att[5] or att[0] == self.last_att_t_us:
            return
        self.last_att_t_us = att[0]
        w, x, y, z = self.q
        m = (att[1], att[2], att[3], att[4])
        d = (w * m[0] + x * m[1] + y * m[2] + z * m[3],       # conj(q) * m: the error
             w * m[1] - x * m[0] - y * m[3] + z * m[2],
             w * m[2] + x * m[3] - y * m[0] - z * m[1],
             w * m[3] - x * m[2] + y * m[1] - z * m[0])
        k = 2.0 if d[0] >= 0.0 else -2.0                        # as a rotation vector, rad
        self.q = q_mul_small(self.q, (0.2 * k * d[1], 0.2 * k * d[2], 0.2 * k * d[3]))

    def position(self):
        """Position, inertial (the Moon's centre), m."""
        return add(self.site, self.d)

    def height(self):
        """Height above the site's datum sphere, m: |site + d| - R, written without the
        difference of two large numbers."""
        d = self.d
        rr = self.site_radius_m
        return (2.0 * rr * dot(d, self.up) + dot(d, d)) / (norm(self.position()) + rr)

    def fuse_altimeter(self, alt):
        """Pull the height towards the altimeter's (a new, valid sample only)."""
        if alt is None or not alt[2] or alt[0] == self.last_alt_t_us:
            return False
        since_s = 0.0 if self.last_alt_t_us is None else (alt[0] - self.last_alt_t_us) * 1e-6
        self.last_alt_t_us = alt[0]
        down = scale(unit(self.position()), -1.0)
        cos_nadir = dot(rotate(self.q, self.boresight), down)
        if cos_nadir < 0.5:                  # looking too far from the vertical
            return False
        measured = alt[1] * cos_nadir
        error = measured - self.height()
        k = min(0.5, ALT_GAIN_PER_S * since_s)
        self.d = add(self.d, scale(unit(self.position()), error * k))
        return True

    # --- guidance -------------------------------------------------------------------------
    def guidance(self):
        """The thrust acceleration wanted (inertial, m/s^2)."""
        r = self.position()
        up = unit(r)
        h = self.height()
        # Where the site is now (the Moon turns under the inertial frame), and the velocity
        # over the ground.
        turn = self.omega * self.t_us * 1e-6
        c, s = math.cos(turn), math.sin(turn)
        u0 = self.up
        site_moved = scale(sub((c * u0[0] - s * u0[1], s * u0[0] + c * u0[1], u0[2]), u0),
                           self.site_radius_m)
        to_site = sub(site_moved, self.d)
        to_site = sub(to_site, scale(up, dot(to_site, up)))             # horizontal
        dist = norm(to_site)
        v_rel = sub(self.v, (-self.omega * r[1], self.omega * r[0], 0.0))
        ground_speed = min(MAX_GROUND_SPEED_MPS, math.sqrt(2.0 * GROUND_BRAKING_MPS2 * dist),
                           dist / GROUND_TIME_CONSTANT_S)
        v_ground = scale(unit(to_site), ground_speed)
        v_h = sub(v_rel, scale(up, dot(v_rel, up)))
        descent = max(TOUCHDOWN_MPS, min(MAX_DESCENT_MPS, h / DESCENT_TIME_CONSTANT_S,
                                         math.sqrt(2.0 * DESCENT_BRAKING_MPS2 * max(h, 0.0))))
        if h >= FINAL_GATE_M:           # stay above a glide slope to the site
            glide_m = GLIDE_SLOPE * dist
            descent = min(descent, max(0.0, (h - glide_m) / DESCENT_TIME_CONSTANT_S))
        else:
            self.mode = "terminal" if h > 1.0 else "touchdown"
            if dist > 3.0 or norm(v_h) > 0.3:   # hold height until over the site and slow
                descent = max(0.0, min(descent, (h - 0.7 * FINAL_GATE_M) / 5.0))
        v_wanted = add(v_ground, scale(up, -descent))
        g = self.gm / dot(self.position(), self.position())
        accel = add(scale(sub(v_wanted, v_rel), 1.0 / VELOCITY_TIME_CONSTANT_S), scale(up, g))
        # Keep the thrust within MAX_TILT_DEG of the vertical, and upwards.
        a_up = max(dot(accel, up), 0.2 * g)
        a_h = sub(accel, scale(up, dot(accel, up)))
        limit = a_up * math.tan(math.radians(MAX_TILT_DEG))
        if norm(a_h) > limit:
            a_h = scale(unit(a_h), limit)
        return add(a_h, scale(up, a_up))

    # --- control --------------------------------------------------------------------------
    def control(self, accel):
        """Throttle and torque (body axes, N m) to thrust along ``accel``."""
        axis = rotate(self.q, (0.0, 0.0, 1.0))        # thrust axis, inertial
        wanted = axis if accel is None else unit(accel)
        error_body = rotate_back(self.q, cross(axis, wanted))   # small-angle error, body
        wn = ATT_BANDWIDTH_RAD_S
        torque = []
        for i in range(3):
            t = self.inertia[i] * (wn * wn * error_body[i] - 2.0 * 0.9 * wn * self.rate[i])
            torque.append(max(-self.max_torque[i], min(self.max_torque[i], t)))
        if accel is None:
            return 0.0, torque
        thrust = self.mass_kg * norm(accel) * max(0.0, dot(axis, wanted))
        throttle = thrust / self.max_thrust_n
        return max(self.min_throttle, min(1.0, throttle)), torque
