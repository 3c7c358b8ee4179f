/* The example flight software's guidance, navigation and control: a C port of fsil's
 * reference flight software (fsw/core.py, nav.py, guidance.py, control.py, the "default"
 * variant), portable C99 with no heap, so it runs on a board as well as on a PC.
 *
 * Navigation integrates the IMU's delta-v and delta-angle (strapdown) and fuses the
 * altimeter in a 3-state Kalman filter (altitude, vertical speed, terrain height), with an
 * innovation gate and terrain-step detection. Guidance flies ZEM/ZEV to aim points (braking
 * to high gate, approach to low gate), then a vertical descent at a capped rate. Control
 * steers the thrust axis with a rate-limited cascade and sets the throttle from the
 * demanded acceleration and the estimated mass.
 *
 * The state is kept in the Moon-fixed frame, which turns at config moon.rotation_rad_s
 * about the inertial z axis and coincides with the inertial frame at t = 0 (with a rate of
 * 0, the two are one). The navigation estimate reported in COMMAND is inertial.
 */
#ifndef FSIL_EXAMPLE_LANDER_H
#define FSIL_EXAMPLE_LANDER_H

#include "fsil/codec.h"

typedef struct { double x, y, z; } v3_t;
typedef struct { double w, x, y, z; } quat_t;

#define LANDER_STEP_SAMPLES 8 /* rejected altimeter samples that must agree for a step */

typedef struct {
    double r_t[3], v_t[3]; /* aim point: (altitude, downrange, crossrange) and its rates */
    double t_go;
    int braking;           /* else approach */
    int divert_free;       /* aim point follows the stopping point (after a re-plan) */
} lander_phase_t;

typedef struct {
    /* told in HELLO */
    double gm, omega, max_thrust_n, min_throttle, exhaust_mps, throttle_tau_s;
    double inertia[3], max_torque[3];
    v3_t site_up, site_east, site_north;
    double site_radius_m;
    double alt_noise_m, alt_noise_fraction;
    v3_t boresight;
    int64_t ignition_t_us;
    /* navigation (Moon-fixed frame; position relative to the site on its datum) */
    v3_t origin, d, v;
    quat_t q;
    int64_t t_us;
    double P[9];
    double terrain_m, ground_down_m, ground_cross_m;
    v3_t accel_bias, cal_sum, last_rate_body;
    double cal_time_s;
    int alt_used, alt_rejected, alt_ever_valid, alt_healthy, alt_overdue;
    int64_t alt_last_t_us, last_accept_us; /* -1: none */
    double outliers[LANDER_STEP_SAMPLES];
    int n_outliers;
    /* mode logic, guidance, control */
    int mode;
    lander_phase_t phase;
    int have_phase, braking_solved;
    double mass_kg, throttle_est, throttle_cmd;
    int64_t last_t_us;
    v3_t hold_dir;
} lander_t;

/* Set up from the HELLO config map; FSIL_ERR_MALFORMED with err naming a missing or bad key. */
fsil_err_t lander_init(lander_t *L, fsil_map_t config, fsil_error_t *err);
/* One cycle: answer one frame. Fills throttle, torque_nm, mode, nav and flags of cmd. */
void lander_step(lander_t *L, const fsil_frame_t *frame, fsil_command_t *cmd);

#endif /* FSIL_EXAMPLE_LANDER_H */
