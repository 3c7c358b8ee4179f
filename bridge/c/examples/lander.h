/* The example flight software's guidance, navigation and control: a C port of fsil's
 * reference flight software fsw/ at version LANDER_PORTED_FROM (fsw/core.py, nav.py,
 * velnav.py, kf.py, guidance.py, control.py, vec.py; the "default" variant), portable C99
 * with no heap, so it runs on a board as well as on a PC. It answers the frames of a run as
 * fsw/ does, operation for operation (tests/test_c_example.py compares them cycle by cycle).
 *
 * Navigation: strapdown integration of the IMU in the Moon-fixed frame (the Moon turns at
 * config moon.rotation_rad_s about inertial +z; the frames coincide at t = 0), an altimeter
 * Kalman filter of five states (height, vertical speed, terrain, tilt error and its drift,
 * sized from the HELLO imu block) with innovation gating, terrain-step, late-lock and
 * frozen-unit detection, and, with a HELLO velocimeter block, a Doppler velocimeter filter
 * (velocity error and unmodelled acceleration) whose beam ranges are height measurements
 * too, and with a HELLO star_tracker block the measured attitude (a complementary filter:
 * attitude corrected, gyro bias learnt). Guidance: an Apollo-class profile (ZEM/ZEV to high gate, low gate and 45 m over the
 * site, then a vertical descent at about 1 m/s), re-plans after a large navigation
 * correction (or a divert, mode safe, that lands where it stops), a blind landing without
 * a height measurement, and an engine cut-off at touchdown. Control: a rate-limited
 * cascade steering the thrust axis, and the throttle from the demanded acceleration, the
 * estimated mass and the measured thrust scale. The estimate reported in COMMAND is MCI.
 */
#ifndef FSIL_EXAMPLE_LANDER_H
#define FSIL_EXAMPLE_LANDER_H

#include "fsil/codec.h"

#define LANDER_PORTED_FROM "0.8.3" /* fsw.core.VERSION this file ports */

typedef struct { double x, y, z; } v3_t;
typedef struct { double w, x, y, z; } quat_t;

#define LANDER_N 5             /* altimeter filter states */
#define LANDER_VN 6            /* velocimeter filter states */
#define LANDER_STEP_SAMPLES 8  /* rejected altimeter samples that must agree for a step */
#define LANDER_BEAM_SAMPLES 12 /* ... velocimeter ranges (3 * STEP_SAMPLES / 2) */
#define LANDER_HISTORY 16      /* frames of attitude and velocity kept for late samples */

typedef struct { int64_t t_us; quat_t q; v3_t dv_acc; } lander_hist_t;

typedef struct { /* nav.py Navigator (default variant) */
    double omega;
    int64_t t_us;
    quat_t q_i, q;            /* body -> MCI (integrated), body -> Moon-fixed */
    double c, s;              /* the Moon's turn now */
    v3_t site_up, origin, d, v, boresight;
    double site_radius_m, alt_noise_m, alt_noise_fraction;
    double P[LANDER_N * LANDER_N];
    double q_tilt, q_drift, accel_scale, q_accel_bias, q_vrw, accel_tau_s;
    double tilt_rad, drift_radps, tilt_coupling_mps2;
    int have_tilt_axis, tilt_off;
    v3_t tilt_axis;
    double terrain_m, ground_m[2];
    v3_t accel_bias, last_rate_body;
    double cal_sum[3], cal_time_s, specific_force_mps2, process_accel_mps2;
    int alt_used, alt_rejected, alt_ever_valid, alt_healthy, alt_overdue;
    int alt_frozen, alt_vetoed, beams_disputed, frozen; /* frozen: repeats of the last range */
    int alt_isolated;            /* the altimeter contradicted the map: ignored for good */
    double dispute_terrain_m;    /* the terrain at the altimeter's last step since the dispute */
    int64_t alt_last_t_us;
    int have_accept, have_beam_accept;
    int64_t last_accept_us, beam_accept_us;
    double outliers[LANDER_STEP_SAMPLES];
    int n_outliers;
    double beam_out[LANDER_BEAM_SAMPLES];
    int n_beam_out;
    double last_range_m;
    v3_t dv_acc;
    lander_hist_t hist[LANDER_HISTORY];
    int n_hist;
    /* star tracker (nav.py use_star_tracker / fuse_star_tracker) */
    int st_on, st_used, st_rejected;
    v3_t gyro_bias;           /* rad/s, body axes */
    double st_period_s, st_error_rad;
    int64_t st_last_t_us;
    /* its isolation (nav.py: st_failed, st_stale, _st_prev, _st_prev_q) */
    int st_failed;            /* 0, LANDER_ST_STUCK or LANDER_ST_STEP */
    long st_stale;            /* samples older than the attitudes kept */
    double st_step_ratio;     /* the largest jump seen, as a share of its gate */
    int st_have_prev, st_have_prev_q;
    int64_t st_prev_t_us;
    v3_t st_prev_e;
    double st_prev_gain;
    double st_prev_q[4];
    v3_t st_boresight;
    double st_gate_cross, st_gate_roll;
    /* the tilt model taken back from a lost tracker (nav.py take_back_tilt) */
    int tilt_by_st, vel_took_tilt, st_have_calm;
    long st_lost;
    int64_t st_last_fused_us, st_calm_since_us;
    double st_max_rate_radps, tilt_turn2, drift_instab2;
} lander_nav_t;

#define LANDER_ST_STUCK 1     /* the tracker repeated a sample exactly */
#define LANDER_ST_STEP 2      /* its disagreement jumped between two samples */

typedef struct { /* velnav.py VelocimeterFilter */
    int on;
    v3_t beams[3];
    double noise_mps, range_noise_m, range_noise_fraction;
    double P[LANDER_VN * LANDER_VN];
    v3_t accel, correction;
    int64_t last_t_us, last_accept_us;
    int have_accept, used, rejected, healthy, ever_valid, rejects;
    int have_last_values, frozen_count, frozen;
    double last_values[6];
} lander_vel_t;

typedef struct {
    int name;                  /* LANDER_PHASE_* */
    double r_t[3], v_t[3];     /* aim point: (height, downrange, crossrange) and its rates */
    double t_go;
    int divert_free;           /* the site is given up */
} lander_phase_t;

typedef struct {
    /* told in HELLO */
    double max_thrust_n, min_throttle, exhaust_mps, throttle_tau_s, dry_mass_kg;
    double inertia[3], max_torque[3];
    v3_t site_up, site_east, site_north;
    double site_radius_m, omega;
    int64_t ignition_t_us;
    lander_nav_t nav;
    lander_vel_t vel;
    /* mode logic, guidance, control */
    int mode, have_phase, braking_solved, contact;
    lander_phase_t phase;
    int64_t braking_resolve_us, last_t_us;
    double mass_kg, thrust_scale, throttle_est, throttle_cmd, last_rate_mps;
    v3_t hold_dir;
} lander_t;

/* Set up from the HELLO config map; FSIL_ERR_MALFORMED with err naming a missing or bad key. */
fsil_err_t lander_init(lander_t *L, fsil_map_t config, fsil_error_t *err);
/* One cycle: answer one frame. Fills throttle, torque_nm, mode, nav and flags of cmd. */
void lander_step(lander_t *L, const fsil_frame_t *frame, fsil_command_t *cmd);

#endif /* FSIL_EXAMPLE_LANDER_H */
