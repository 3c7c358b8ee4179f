/* Guidance, navigation and control of the example flight software (see lander.h): a port
 * of fsw/ (default variant). Names follow the Python so the two can be read side by side. */
#include "lander.h"

#include <math.h>
#include <string.h>

#define G0_MPS2 9.80665
#define DEFAULT_GM_M3PS2 4.902800118e12

/* core.py */
static const double HIGH_GATE[4] = {2000.0, -5000.0, -35.0, 80.0}; /* alt, down, v_up, v_down */
static const double LOW_GATE[4] = {60.0, 0.0, -3.0, 0.0};
#define BRAKING_THRUST_FRACTION 0.85
#define APPROACH_THRUST_FRACTION 0.9
#define GUARD_RANGE_M 400.0
#define STOP_THRUST_FRACTION 0.5
#define BLIND_MARGIN_M 100.0
#define REPLAN_JUMP_M 50.0
#define PHASE_END_TGO_S 3.0
/* nav.py */
#define ACCEL_NOISE_MPS2 0.003
#define TERRAIN_RATE_M_PER_M 0.01
#define MAP_SIGMA_SITE_M 20.0
#define MAP_SIGMA_PER_M 0.05
#define GATE_SIGMA 5.0
#define MAX_BORESIGHT_TILT_RAD 1.22
#define SLOPE_SIGMA 0.05
#define STEP_SPREAD_M 5.0
#define UNHEALTHY_AFTER_S 3.0
#define EXPECT_VALID_BELOW_M 4000.0
#define UNCERTAINTY_GROWTH 0.5
#define OVERDUE_VEL_SIGMA_MPS 1.0
/* guidance.py, control.py */
#define HOLD_SPEED_MPS 1.0
#define K_ANGLE 0.8
#define K_RATE 3.0
#define MAX_RATE_RADPS (15.0 * 3.14159265358979323846 / 180.0)
#define FAR_OFF_RAD 1.0

/* ---- vectors and quaternions (vec.py) ---------------------------------------------------- */

static v3_t v3(double x, double y, double z) { v3_t r; r.x = x; r.y = y; r.z = z; return r; }
static v3_t add(v3_t a, v3_t b) { return v3(a.x + b.x, a.y + b.y, a.z + b.z); }
static v3_t sub(v3_t a, v3_t b) { return v3(a.x - b.x, a.y - b.y, a.z - b.z); }
static v3_t scale(v3_t a, double k) { return v3(a.x * k, a.y * k, a.z * k); }
static double dot(v3_t a, v3_t b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
static v3_t cross(v3_t a, v3_t b)
{
    return v3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
static double norm(v3_t a) { return sqrt(dot(a, a)); }
static v3_t unit(v3_t a)
{
    double n = norm(a);
    return n > 0.0 ? scale(a, 1.0 / n) : v3(0.0, 0.0, 0.0);
}
static double clamp(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }
static v3_t from(const double *a) { return v3(a[0], a[1], a[2]); }

static quat_t qmul(quat_t p, quat_t q)
{
    quat_t r;
    r.w = p.w * q.w - p.x * q.x - p.y * q.y - p.z * q.z;
    r.x = p.w * q.x + p.x * q.w + p.y * q.z - p.z * q.y;
    r.y = p.w * q.y - p.x * q.z + p.y * q.w + p.z * q.x;
    r.z = p.w * q.z + p.x * q.y - p.y * q.x + p.z * q.w;
    return r;
}

static quat_t qnormalize(quat_t q)
{
    double n = sqrt(q.w * q.w + q.x * q.x + q.y * q.y + q.z * q.z);
    q.w /= n;
    q.x /= n;
    q.y /= n;
    q.z /= n;
    return q;
}

/* Quaternion of a rotation vector (rad). */
static quat_t qrotvec(v3_t th)
{
    double a = norm(th), s;
    quat_t q;
    if (a < 1e-9) {
        q.w = 1.0;
        q.x = 0.5 * th.x;
        q.y = 0.5 * th.y;
        q.z = 0.5 * th.z;
        return qnormalize(q);
    }
    s = sin(0.5 * a) / a;
    q.w = cos(0.5 * a);
    q.x = th.x * s;
    q.y = th.y * s;
    q.z = th.z * s;
    return q;
}

static v3_t rotate(quat_t q, v3_t v)
{
    double tx = 2.0 * (q.y * v.z - q.z * v.y);
    double ty = 2.0 * (q.z * v.x - q.x * v.z);
    double tz = 2.0 * (q.x * v.y - q.y * v.x);
    return v3(v.x + q.w * tx + q.y * tz - q.z * ty, v.y + q.w * ty + q.z * tx - q.x * tz,
              v.z + q.w * tz + q.x * ty - q.y * tx);
}

static v3_t rotate_inv(quat_t q, v3_t v)
{
    q.x = -q.x;
    q.y = -q.y;
    q.z = -q.z;
    return rotate(q, v);
}

/* Rotation about z by angle (rad): the Moon-fixed frame's turn. */
static v3_t rot_z(v3_t a, double angle)
{
    double c = cos(angle), s = sin(angle);
    return v3(c * a.x - s * a.y, s * a.x + c * a.y, a.z);
}

static quat_t q_z(double angle)
{
    quat_t q;
    q.w = cos(0.5 * angle);
    q.x = 0.0;
    q.y = 0.0;
    q.z = sin(0.5 * angle);
    return q;
}

/* ---- navigation (nav.py) ------------------------------------------------------------------ */

static v3_t nav_r(const lander_t *L) { return add(L->origin, L->d); }
static v3_t nav_up(const lander_t *L) { return unit(nav_r(L)); }

static v3_t gravity(const lander_t *L, v3_t r)
{
    double r2 = dot(r, r);
    return scale(r, -L->gm / (r2 * sqrt(r2)));
}

static double altitude_m(const lander_t *L)
{
    double R = L->site_radius_m;
    double ud = dot(L->site_up, L->d);
    double num = 2.0 * R * ud + dot(L->d, L->d);
    return num / (sqrt(R * R + num) + R);
}

static double vertical_speed(const lander_t *L) { return dot(L->v, nav_up(L)); }
static double agl_m(const lander_t *L) { return altitude_m(L) - L->terrain_m; }
static double agl_sigma_m(const lander_t *L)
{
    double s = L->P[0] - 2.0 * L->P[2] + L->P[8];
    return sqrt(s > 0.0 ? s : 0.0);
}
static double overdue_sigma_m(const lander_t *L)
{
    double h = agl_m(L);
    return UNCERTAINTY_GROWTH * (h > 0.0 ? h : 0.0);
}

static void propagate_cov(lander_t *L, double dt)
{
    double *P = L->P;
    double q_a = ACCEL_NOISE_MPS2 * ACCEL_NOISE_MPS2 * dt;
    double p00 = P[0] + 2.0 * dt * P[1] + dt * dt * P[4];
    double p01 = P[1] + dt * P[4];
    double p02 = P[2] + dt * P[5];
    double v_h, p_tt, dist, cap;
    P[0] = p00;
    P[1] = p01;
    P[2] = p02;
    P[3] = p01;
    P[6] = p02;
    P[4] += q_a;
    v_h = norm(sub(L->v, scale(nav_up(L), vertical_speed(L))));
    p_tt = P[8] + (TERRAIN_RATE_M_PER_M * v_h) * (TERRAIN_RATE_M_PER_M * v_h) * dt;
    dist = sqrt(L->ground_down_m * L->ground_down_m + L->ground_cross_m * L->ground_cross_m);
    cap = MAP_SIGMA_SITE_M + MAP_SIGMA_PER_M * dist;
    P[8] = p_tt < cap * cap ? p_tt : cap * cap;
}

static void propagate(lander_t *L, const fsil_imu_t *imu, int calibrating)
{
    uint32_t k;
    v3_t w = v3(0.0, 0.0, L->omega);
    for (k = 0; k < imu->count; k++) {
        const fsil_imu_sample_t *s = &imu->s[k];
        double dt = (double)(s->t_us - L->t_us) * 1e-6;
        v3_t dv_b, dth, dv_i, g, v_old;
        quat_t q_mid;
        if (dt <= 0.0) {
            continue;
        }
        L->t_us = s->t_us;
        if (calibrating) {
            L->cal_sum = add(L->cal_sum, from(s->dv));
            L->cal_time_s += dt;
        }
        dv_b = sub(from(s->dv), scale(L->accel_bias, dt));
        dth = from(s->dth);
        q_mid = qmul(L->q, qrotvec(scale(dth, 0.5)));
        L->q = qnormalize(qmul(L->q, qrotvec(dth)));
        if (L->omega != 0.0) { /* the frame turned under the body */
            q_mid = qmul(q_z(-0.5 * L->omega * dt), q_mid);
            L->q = qnormalize(qmul(q_z(-L->omega * dt), L->q));
        }
        dv_i = rotate(q_mid, dv_b);
        g = gravity(L, nav_r(L));
        if (L->omega != 0.0) { /* Coriolis and centrifugal terms of the turning frame */
            g = sub(g, add(scale(cross(w, L->v), 2.0), cross(w, cross(w, nav_r(L)))));
        }
        v_old = L->v;
        L->v = add(add(v_old, dv_i), scale(g, dt));
        L->d = add(L->d, scale(add(v_old, L->v), 0.5 * dt));
        L->last_rate_body = scale(dth, 1.0 / dt);
        propagate_cov(L, dt);
    }
}

static void accepted(lander_t *L, int64_t t_us)
{
    L->alt_ever_valid = 1;
    L->last_accept_us = t_us;
    L->alt_healthy = 1;
}

static void update_health(lander_t *L)
{
    if (L->last_accept_us >= 0 &&
        (double)(L->t_us - L->last_accept_us) * 1e-6 > UNHEALTHY_AFTER_S) {
        L->alt_healthy = 0;
    }
    L->alt_overdue = !L->alt_healthy && agl_m(L) < EXPECT_VALID_BELOW_M;
}

/* Scalar update with H = [1, 0, -1] (the altimeter sees h - t). */
static void kalman(lander_t *L, double y, double r_meas)
{
    double *P = L->P;
    double ph[3], k[3], s;
    v3_t up = nav_up(L);
    int i, j;
    ph[0] = P[0] - P[2];
    ph[1] = P[3] - P[5];
    ph[2] = P[6] - P[8];
    s = ph[0] - ph[2] + r_meas;
    for (i = 0; i < 3; i++) {
        k[i] = ph[i] / s;
    }
    L->d = add(L->d, scale(up, k[0] * y));
    L->v = add(L->v, scale(up, k[1] * y));
    L->terrain_m += k[2] * y;
    for (i = 0; i < 3; i++) {
        for (j = 0; j < 3; j++) {
            P[3 * i + j] -= k[i] * ph[j];
        }
    }
    L->alt_used = 1;
}

static void fuse_default(lander_t *L, double y, double r_meas, double sigma_r, int64_t t_us)
{
    double *P = L->P;
    double s = P[0] - 2.0 * P[2] + P[8] + r_meas;
    double mean = 0.0, lo, hi, spread;
    int k;
    if (y * y <= GATE_SIGMA * GATE_SIGMA * s) {
        L->n_outliers = 0;
        kalman(L, y, r_meas);
        accepted(L, t_us);
        return;
    }
    L->alt_rejected = 1;
    if (L->n_outliers == LANDER_STEP_SAMPLES) {
        memmove(L->outliers, L->outliers + 1, sizeof L->outliers - sizeof L->outliers[0]);
        L->n_outliers--;
    }
    L->outliers[L->n_outliers++] = y;
    if (L->n_outliers < LANDER_STEP_SAMPLES) {
        return;
    }
    /* Persistence and consistency: a terrain step moves every sample by the same amount. */
    lo = hi = L->outliers[0];
    for (k = 0; k < L->n_outliers; k++) {
        mean += L->outliers[k];
        lo = L->outliers[k] < lo ? L->outliers[k] : lo;
        hi = L->outliers[k] > hi ? L->outliers[k] : hi;
    }
    mean /= L->n_outliers;
    spread = hi - lo;
    if (spread <= STEP_SPREAD_M + 4.0 * sigma_r + 0.02 * fabs(mean)) {
        if (L->alt_overdue || (!L->alt_ever_valid && agl_m(L) < EXPECT_VALID_BELOW_M)) {
            /* locked late: our own height drifted; re-base it and open the speed up */
            L->d = add(L->d, scale(nav_up(L), mean));
            P[0] = r_meas + spread * spread;
            P[1] = P[2] = P[3] = P[6] = 0.0;
            P[4] = P[4] > OVERDUE_VEL_SIGMA_MPS * OVERDUE_VEL_SIGMA_MPS
                       ? P[4] : OVERDUE_VEL_SIGMA_MPS * OVERDUE_VEL_SIGMA_MPS;
        } else { /* a cliff or a crater rim: re-base the terrain under us */
            L->terrain_m -= mean;
            P[8] += r_meas;
        }
        L->n_outliers = 0;
        accepted(L, t_us);
        L->alt_rejected = 0;
        L->alt_used = 1;
    }
}

static void fuse_altimeter(lander_t *L, const fsil_alt_t *alt)
{
    v3_t up, bore_i;
    double cos_tilt, z, age_s, y, sigma_r, sin_tilt, r_meas;
    L->alt_used = 0;
    L->alt_rejected = 0;
    update_health(L);
    if (!alt->present || !alt->valid || alt->t_us == L->alt_last_t_us) {
        return;
    }
    L->alt_last_t_us = alt->t_us;
    up = nav_up(L);
    bore_i = rotate(L->q, L->boresight);
    cos_tilt = -dot(bore_i, up);
    if (cos_tilt < cos(MAX_BORESIGHT_TILT_RAD)) {
        return;
    }
    z = alt->range_m * cos_tilt;
    age_s = (double)(L->t_us - alt->t_us) * 1e-6; /* it arrives late: predict to its time */
    y = z - (agl_m(L) - vertical_speed(L) * age_s);
    sigma_r = sqrt(L->alt_noise_m * L->alt_noise_m +
                   (L->alt_noise_fraction * alt->range_m) * (L->alt_noise_fraction * alt->range_m));
    sin_tilt = sqrt(1.0 - cos_tilt * cos_tilt > 0.0 ? 1.0 - cos_tilt * cos_tilt : 0.0);
    r_meas = (sigma_r * cos_tilt) * (sigma_r * cos_tilt) +
             (SLOPE_SIGMA * alt->range_m * sin_tilt) * (SLOPE_SIGMA * alt->range_m * sin_tilt);
    fuse_default(L, y, r_meas, sigma_r, alt->t_us);
}

/* ---- guidance (guidance.py) ---------------------------------------------------------------- */

/* (downrange, crossrange) arc lengths of the point under d (relative to the site). */
static void ground(const lander_t *L, v3_t d, double *down, double *cross_m)
{
    double R = L->site_radius_m;
    double x = R + dot(d, L->site_up);
    double e = dot(d, L->site_east);
    *down = atan2(e, x) * R;
    *cross_m = atan2(dot(d, L->site_north), sqrt(x * x + e * e)) * R;
}

/* Curvilinear state: (alt, downrange, crossrange), their rates, and the local axes. */
static void local(const lander_t *L, double pos[3], double vel[3], v3_t axes[3])
{
    double R = L->site_radius_m;
    v3_t r = add(scale(L->site_up, R), L->d);
    double rn = norm(r), k = R / rn;
    v3_t u = scale(r, 1.0 / rn);
    v3_t e_a = unit(cross(L->site_north, u));
    v3_t e_c = cross(u, e_a);
    pos[0] = altitude_m(L);
    ground(L, L->d, &pos[1], &pos[2]);
    vel[0] = dot(L->v, u);
    vel[1] = dot(L->v, e_a) * k;
    vel[2] = dot(L->v, e_c) * k;
    axes[0] = u;
    axes[1] = e_a;
    axes[2] = e_c;
}

static double effective_gravity(const lander_t *L, double r_m, double v_h, double v_ht)
{
    double v2 = (v_h * v_h + v_h * v_ht + v_ht * v_ht) / 3.0;
    return L->gm / (r_m * r_m) - v2 / r_m;
}

static void zem_zev_ends(const double r[3], const double v[3], const double g[3],
                         const double r_t[3], const double v_t[3], double t_go,
                         double a_now[3], double a_end[3])
{
    int i;
    for (i = 0; i < 3; i++) {
        double zem = r_t[i] - (r[i] + v[i] * t_go + 0.5 * g[i] * t_go * t_go);
        double zev = v_t[i] - (v[i] + g[i] * t_go);
        a_now[i] = 6.0 * zem / (t_go * t_go) - 2.0 * zev / t_go;
        if (a_end != NULL) {
            a_end[i] = 4.0 * zev / t_go - 6.0 * zem / (t_go * t_go);
        }
    }
}

static double overload(const double r[3], const double v[3], const double g[3],
                       const double r_t[3], const double v_t[3], double t_go,
                       double a_now_max, double a_end_max)
{
    double a_now[3], a_end[3];
    double now, end;
    zem_zev_ends(r, v, g, r_t, v_t, t_go, a_now, a_end);
    now = sqrt(a_now[0] * a_now[0] + a_now[1] * a_now[1] + a_now[2] * a_now[2]) / a_now_max;
    end = sqrt(a_end[0] * a_end[0] + a_end[1] * a_end[1] + a_end[2] * a_end[2]) / a_end_max;
    return now > end ? now : end;
}

/* Shortest t_go whose ZEM/ZEV profile fits the engine now and at arrival. */
static double solve_tgo(const double r[3], const double v[3], const double g[3],
                        const double r_t[3], const double v_t[3], double a_now_max,
                        double a_end_max, double t_min, double t_max)
{
    double best_t = t_min, best = overload(r, v, g, r_t, v_t, t_min, a_now_max, a_end_max);
    double t_prev = t_min, t = t_min, lo, hi;
    int k, fits = 0;
    if (best <= 1.0) {
        return t_min;
    }
    while (t < t_max) {
        double load;
        t_prev = t;
        t = t * 1.05;
        load = overload(r, v, g, r_t, v_t, t, a_now_max, a_end_max);
        if (load <= 1.0) {
            fits = 1;
            break;
        }
        if (load < best) {
            best_t = t;
            best = load;
        }
    }
    if (!fits) {
        return best_t;
    }
    lo = t_prev;
    hi = t;
    for (k = 0; k < 10; k++) {
        double mid = 0.5 * (lo + hi);
        if (overload(r, v, g, r_t, v_t, mid, a_now_max, a_end_max) <= 1.0) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    return hi;
}

/* Terminal phase: a capped descent rate and horizontal velocity nulling. */
static v3_t vertical_descent(const lander_t *L, double alt_m, double g_mag)
{
    v3_t up = nav_up(L);
    double vz = dot(L->v, up);
    v3_t v_h = sub(L->v, scale(up, vz));
    double v_h_mag = norm(v_h);
    double vz_des = -clamp(0.05 * alt_m, 1.0, 3.0);
    double a_up, a_h_mag, a_h_max, down, cross_m;
    v3_t a_h;
    if (v_h_mag > HOLD_SPEED_MPS && alt_m > 3.0) {
        vz_des = 0.0;
    }
    a_up = g_mag + 1.2 * (vz_des - vz);
    ground(L, L->d, &down, &cross_m);
    a_h = scale(v_h, -0.6);
    if (alt_m > 10.0 && v_h_mag < HOLD_SPEED_MPS) {
        v3_t e = add(scale(L->site_east, -down), scale(L->site_north, -cross_m));
        a_h = add(a_h, scale(e, 0.01));
    }
    a_h_mag = norm(a_h);
    a_h_max = (alt_m > 10.0 ? 0.3 : alt_m > 5.0 ? 0.12 : 0.05) * a_up;
    if (a_h_mag > a_h_max) {
        a_h = scale(a_h, a_h_max / a_h_mag);
    }
    return add(scale(up, a_up), a_h);
}

/* ---- control (control.py) ------------------------------------------------------------------ */

static v3_t attitude_torque(const lander_t *L, v3_t d_inertial, double *angle_out)
{
    v3_t b_z = rotate(L->q, v3(0.0, 0.0, 1.0));
    v3_t axis = cross(b_z, d_inertial);
    double s = norm(axis);
    double angle = atan2(s, dot(b_z, d_inertial));
    v3_t e_i, e_b;
    double w_des[3], w_body[3], w_mag, torque[3];
    int i;
    if (s > 1e-12) {
        e_i = scale(axis, angle / s);
    } else if (angle > 1.0) {
        e_i = scale(unit(cross(b_z, v3(1.0, 0.0, 0.0))), angle);
    } else {
        e_i = v3(0.0, 0.0, 0.0);
    }
    e_b = rotate_inv(L->q, e_i);
    w_des[0] = K_ANGLE * e_b.x;
    w_des[1] = K_ANGLE * e_b.y;
    w_des[2] = 0.0;
    w_mag = sqrt(w_des[0] * w_des[0] + w_des[1] * w_des[1]);
    if (w_mag > MAX_RATE_RADPS) {
        w_des[0] *= MAX_RATE_RADPS / w_mag;
        w_des[1] *= MAX_RATE_RADPS / w_mag;
    }
    w_body[0] = L->last_rate_body.x;
    w_body[1] = L->last_rate_body.y;
    w_body[2] = L->last_rate_body.z;
    for (i = 0; i < 3; i++) {
        torque[i] = clamp(L->inertia[i] * K_RATE * (w_des[i] - w_body[i]), -L->max_torque[i],
                          L->max_torque[i]);
    }
    *angle_out = angle;
    return v3(torque[0], torque[1], torque[2]);
}

static double throttle_for(const lander_t *L, double a_mps2, double pointing_error_rad)
{
    double thr;
    if (a_mps2 <= 0.0) {
        return 0.0;
    }
    thr = a_mps2 * L->mass_kg / L->max_thrust_n;
    if (pointing_error_rad > FAR_OFF_RAD) {
        thr = L->min_throttle;
    }
    return clamp(thr, L->min_throttle, 1.0);
}

/* ---- the cycle (core.py) -------------------------------------------------------------------- */

static int blind(const lander_t *L)
{
    return !L->alt_healthy && (L->alt_overdue || !L->alt_ever_valid);
}

static double blind_margin(const lander_t *L)
{
    return blind(L) ? 3.0 * agl_sigma_m(L) + BLIND_MARGIN_M : 0.0;
}

static double low_gate_m(const lander_t *L) { return LOW_GATE[0] + blind_margin(L); }

static void start_phase(lander_t *L, int braking, int divert_free)
{
    const double *gate = braking ? HIGH_GATE : LOW_GATE;
    lander_phase_t *ph = &L->phase;
    ph->r_t[0] = gate[0];
    ph->r_t[1] = gate[1];
    ph->r_t[2] = 0.0;
    ph->v_t[0] = gate[2];
    ph->v_t[1] = gate[3];
    ph->v_t[2] = 0.0;
    ph->t_go = 0.0; /* braking: solved on the first step */
    ph->braking = braking;
    ph->divert_free = divert_free;
    if (!braking) {
        double pos[3], vel[3], g[3], a_max, t_h, t_v, t_go, t_fit;
        v3_t axes[3];
        double v_h;
        local(L, pos, vel, axes);
        v_h = sqrt(vel[1] * vel[1] + vel[2] * vel[2]);
        t_h = 2.0 * fabs(ph->r_t[1] - pos[1]) / (v_h + fabs(ph->v_t[1]) > 1.0
                                                  ? v_h + fabs(ph->v_t[1]) : 1.0);
        t_v = 2.0 * (pos[0] - ph->r_t[0] > 0.0 ? pos[0] - ph->r_t[0] : 0.0) /
              (fabs(vel[0]) + fabs(ph->v_t[0]) > 1.0 ? fabs(vel[0]) + fabs(ph->v_t[0]) : 1.0);
        if (divert_free) {
            t_h = 0.0;
        }
        t_go = clamp(t_h > t_v ? t_h : t_v, 20.0, 300.0);
        g[0] = -effective_gravity(L, norm(nav_r(L)), 0.0, 0.0);
        g[1] = g[2] = 0.0;
        a_max = APPROACH_THRUST_FRACTION * L->max_thrust_n / L->mass_kg;
        t_fit = solve_tgo(pos, vel, g, ph->r_t, ph->v_t, a_max, a_max, 3.0, 1500.0);
        ph->t_go = t_go > t_fit ? t_go : t_fit;
    }
    L->have_phase = 1;
}

static int entry_mode(const lander_t *L)
{
    v3_t up = nav_up(L);
    double v_h = norm(sub(L->v, scale(up, vertical_speed(L))));
    if (v_h > 300.0) {
        return FSIL_MODE_BRAKING;
    }
    return agl_m(L) > LOW_GATE[0] ? FSIL_MODE_APPROACH : FSIL_MODE_TERMINAL;
}

static void update_mode(lander_t *L, int64_t t_us)
{
    if (L->mode == FSIL_MODE_INIT) {
        L->mode = t_us < L->ignition_t_us ? FSIL_MODE_COAST : entry_mode(L);
    } else if (L->mode == FSIL_MODE_COAST && t_us >= L->ignition_t_us) {
        if (L->cal_time_s > 0.0) { /* the mean reading while coasting is the bias */
            L->accel_bias = scale(L->cal_sum, 1.0 / L->cal_time_s);
        }
        L->mode = entry_mode(L);
    } else if ((L->mode == FSIL_MODE_BRAKING || L->mode == FSIL_MODE_APPROACH) &&
               L->phase.t_go <= PHASE_END_TGO_S) {
        L->mode = L->mode == FSIL_MODE_BRAKING ? FSIL_MODE_APPROACH : FSIL_MODE_TERMINAL;
    } else if (L->mode == FSIL_MODE_APPROACH && agl_m(L) < low_gate_m(L) * 0.8) {
        L->mode = FSIL_MODE_TERMINAL;
    }
    if ((L->mode == FSIL_MODE_BRAKING || L->mode == FSIL_MODE_APPROACH) &&
        (!L->have_phase || L->phase.braking != (L->mode == FSIL_MODE_BRAKING))) {
        start_phase(L, L->mode == FSIL_MODE_BRAKING, 0);
    }
}

static v3_t zem_zev_step(lander_t *L, double dt)
{
    lander_phase_t *ph = &L->phase;
    double pos[3], vel[3], g[3], a_local[3], v_h, t_go;
    v3_t axes[3];
    local(L, pos, vel, axes);
    if (!ph->braking) {
        double down = ph->r_t[1], cross_m = ph->r_t[2];
        if (ph->divert_free) { /* aim where a constant deceleration stops us */
            double t_half = 0.5 * (ph->t_go > PHASE_END_TGO_S ? ph->t_go : PHASE_END_TGO_S);
            down = pos[1] + vel[1] * t_half;
            cross_m = pos[2] + vel[2] * t_half;
        }
        ph->r_t[0] = low_gate_m(L);
        ph->r_t[1] = down;
        ph->r_t[2] = cross_m;
    }
    v_h = sqrt(vel[1] * vel[1] + vel[2] * vel[2]);
    g[0] = -effective_gravity(L, norm(nav_r(L)), v_h, fabs(ph->v_t[1]));
    g[1] = g[2] = 0.0;
    ph->t_go -= dt;
    if (ph->braking && ph->t_go <= 0.0 && !L->braking_solved) {
        double a_now = BRAKING_THRUST_FRACTION * L->max_thrust_n / L->mass_kg;
        double dv[3] = {ph->v_t[0] - vel[0], ph->v_t[1] - vel[1], ph->v_t[2] - vel[2]};
        double dv_total = sqrt(dv[0] * dv[0] + dv[1] * dv[1] + dv[2] * dv[2]) + 1.62 * 60.0;
        double m_end = L->mass_kg * exp(-dv_total / L->exhaust_mps);
        double a_end = BRAKING_THRUST_FRACTION * L->max_thrust_n / m_end;
        ph->t_go = solve_tgo(pos, vel, g, ph->r_t, ph->v_t, a_now, a_end, 5.0, 1500.0);
        L->braking_solved = 1;
    }
    t_go = ph->t_go > PHASE_END_TGO_S ? ph->t_go : PHASE_END_TGO_S;
    zem_zev_ends(pos, vel, g, ph->r_t, ph->v_t, t_go, a_local, NULL);
    return add(add(scale(axes[0], a_local[0]), scale(axes[1], a_local[1])),
               scale(axes[2], a_local[2]));
}

/* Cap the descent rate so the vehicle can still stop when the altimeter locks late. */
static v3_t limit_descent(const lander_t *L, v3_t a_thr)
{
    v3_t up = nav_up(L);
    double g = norm(gravity(L, nav_r(L)));
    double a_stop = STOP_THRUST_FRACTION * L->max_thrust_n / L->mass_kg - g;
    double sigma, reach, v_cap, vz, a_up, a_up_min;
    if (a_stop <= 0.0) {
        return a_thr;
    }
    sigma = agl_sigma_m(L) + overdue_sigma_m(L);
    reach = agl_m(L) - 3.0 * sigma;
    v_cap = sqrt(2.0 * a_stop * (reach > GUARD_RANGE_M ? reach : GUARD_RANGE_M));
    vz = vertical_speed(L);
    if (vz >= -v_cap) {
        return a_thr;
    }
    a_up = dot(a_thr, up);
    a_up_min = g + 0.5 * (-v_cap - vz);
    if (a_up >= a_up_min) {
        return a_thr;
    }
    return add(a_thr, scale(up, a_up_min - a_up));
}

static void update_mass(lander_t *L, double dt)
{
    if (L->throttle_tau_s > 0.0) {
        double k = dt / L->throttle_tau_s;
        L->throttle_est += (L->throttle_cmd - L->throttle_est) * (k < 1.0 ? k : 1.0);
    } else {
        L->throttle_est = L->throttle_cmd;
    }
    L->mass_kg -= L->max_thrust_n * L->throttle_est / L->exhaust_mps * dt;
}

void lander_step(lander_t *L, const fsil_frame_t *frame, fsil_command_t *cmd)
{
    double dt = (double)(frame->t_us - L->last_t_us) * 1e-6;
    double h_before, a_mag = 0.0, err_rad, throttle = 0.0, t_s;
    int have_thrust = 0;
    v3_t a_thr = v3(0.0, 0.0, 0.0), direction, torque, r_i, v_i;
    L->last_t_us = frame->t_us;
    ground(L, L->d, &L->ground_down_m, &L->ground_cross_m);
    propagate(L, &frame->imu, L->mode == FSIL_MODE_INIT || L->mode == FSIL_MODE_COAST);
    h_before = altitude_m(L);
    fuse_altimeter(L, &frame->alt);
    update_mass(L, dt);
    update_mode(L, frame->t_us);
    if (fabs(altitude_m(L) - h_before) > REPLAN_JUMP_M &&
        (L->mode == FSIL_MODE_APPROACH ||
         (L->mode == FSIL_MODE_BRAKING && agl_m(L) < 1.2 * HIGH_GATE[0]))) {
        /* our own height was wrong by a lot: re-plan, stopping where the vehicle can */
        L->mode = FSIL_MODE_APPROACH;
        start_phase(L, 0, 1);
    }
    if (L->mode == FSIL_MODE_BRAKING || L->mode == FSIL_MODE_APPROACH) {
        a_thr = zem_zev_step(L, dt);
        have_thrust = 1;
    } else if (L->mode == FSIL_MODE_TERMINAL) {
        double h = agl_m(L) - blind_margin(L);
        a_thr = vertical_descent(L, h > 0.0 ? h : 0.0, norm(gravity(L, nav_r(L))));
        have_thrust = 1;
    }
    if (have_thrust && L->alt_overdue) {
        a_thr = limit_descent(L, a_thr);
    }
    direction = L->hold_dir;
    if (have_thrust) {
        a_mag = norm(a_thr);
        if (a_mag > 1e-6) {
            direction = unit(a_thr);
            L->hold_dir = direction;
        }
    }
    torque = attitude_torque(L, direction, &err_rad);
    if (have_thrust) {
        throttle = throttle_for(L, a_mag, err_rad);
    }
    L->throttle_cmd = throttle;
    cmd->throttle = throttle;
    cmd->torque_nm[0] = torque.x;
    cmd->torque_nm[1] = torque.y;
    cmd->torque_nm[2] = torque.z;
    cmd->mode = (uint32_t)L->mode;
    /* the estimate, inertial: undo the frame's turn */
    t_s = (double)frame->t_us * 1e-6;
    r_i = rot_z(nav_r(L), L->omega * t_s);
    v_i = rot_z(add(L->v, cross(v3(0.0, 0.0, L->omega), nav_r(L))), L->omega * t_s);
    cmd->nav.present = true;
    cmd->nav.v[0] = r_i.x;
    cmd->nav.v[1] = r_i.y;
    cmd->nav.v[2] = r_i.z;
    cmd->nav.v[3] = v_i.x;
    cmd->nav.v[4] = v_i.y;
    cmd->nav.v[5] = v_i.z;
    cmd->nav.v[6] = agl_m(L);
    cmd->flags = (L->alt_used ? FSIL_FLAG_ALT_USED : 0u) |
                 (L->alt_rejected ? FSIL_FLAG_ALT_REJECTED : 0u) |
                 (L->alt_healthy ? FSIL_FLAG_ALT_HEALTHY : 0u);
}

/* ---- set-up from HELLO ---------------------------------------------------------------------- */

static fsil_err_t get_v3(fsil_map_t config, const char *path, v3_t *out, fsil_error_t *err)
{
    double a[3];
    fsil_err_t st = fsil_map_get_f64s(config, path, a, 3, err);
    *out = v3(a[0], a[1], a[2]);
    return st;
}

fsil_err_t lander_init(lander_t *L, fsil_map_t config, fsil_error_t *err)
{
    double dry, prop, isp, q4[4], pos_sigma, vel_sigma, t0_s;
    int64_t t0_us;
    v3_t r0, v0;
    quat_t q0;
    fsil_err_t st = FSIL_OK;
    fsil_mpr_t probe;
    fsil_error_t ignored;
    memset(L, 0, sizeof *L);
    L->gm = DEFAULT_GM_M3PS2;
    L->throttle_tau_s = 0.1;
    /* optional keys (protocol v2's moon block, the engine lag) */
    if (fsil_map_find(config, "moon.gm_m3ps2", &probe, &ignored) == FSIL_OK) {
        st = fsil_map_get_f64(config, "moon.gm_m3ps2", &L->gm, err);
    }
    if (st == FSIL_OK && fsil_map_find(config, "moon.rotation_rad_s", &probe, &ignored) == FSIL_OK) {
        st = fsil_map_get_f64(config, "moon.rotation_rad_s", &L->omega, err);
    }
    if (st == FSIL_OK &&
        fsil_map_find(config, "vehicle.throttle_time_constant_s", &probe, &ignored) == FSIL_OK) {
        st = fsil_map_get_f64(config, "vehicle.throttle_time_constant_s", &L->throttle_tau_s, err);
    }
#define GET(call) do { if (st == FSIL_OK) { st = (call); } } while (0)
    GET(fsil_map_get_f64(config, "vehicle.max_thrust_n", &L->max_thrust_n, err));
    GET(fsil_map_get_f64(config, "vehicle.min_throttle", &L->min_throttle, err));
    GET(fsil_map_get_f64(config, "vehicle.isp_s", &isp, err));
    GET(fsil_map_get_f64s(config, "vehicle.inertia_kgm2", L->inertia, 3, err));
    GET(fsil_map_get_f64s(config, "vehicle.max_torque_nm", L->max_torque, 3, err));
    GET(fsil_map_get_f64(config, "vehicle.dry_mass_kg", &dry, err));
    GET(fsil_map_get_f64(config, "vehicle.propellant_kg", &prop, err));
    GET(get_v3(config, "site.up", &L->site_up, err));
    GET(get_v3(config, "site.east", &L->site_east, err));
    GET(fsil_map_get_f64(config, "site.radius_m", &L->site_radius_m, err));
    GET(fsil_map_get_i64(config, "nav_init.t_us", &t0_us, err));
    GET(get_v3(config, "nav_init.r_m", &r0, err));
    GET(get_v3(config, "nav_init.v_mps", &v0, err));
    GET(fsil_map_get_f64s(config, "nav_init.q", q4, 4, err));
    GET(fsil_map_get_f64(config, "nav_init.pos_sigma_m", &pos_sigma, err));
    GET(fsil_map_get_f64(config, "nav_init.vel_sigma_mps", &vel_sigma, err));
    GET(get_v3(config, "altimeter.boresight_body", &L->boresight, err));
    GET(fsil_map_get_f64(config, "altimeter.noise_m", &L->alt_noise_m, err));
    GET(fsil_map_get_f64(config, "altimeter.noise_fraction", &L->alt_noise_fraction, err));
    GET(fsil_map_get_i64(config, "ignition_t_us", &L->ignition_t_us, err));
#undef GET
    if (st != FSIL_OK) {
        return st;
    }
    if (!(L->max_thrust_n > 0.0 && isp > 0.0 && dry + prop > 0.0 && L->site_radius_m > 0.0 &&
          norm(L->site_up) > 0.0 && norm(L->site_east) > 0.0 && norm(L->boresight) > 0.0 &&
          q4[0] * q4[0] + q4[1] * q4[1] + q4[2] * q4[2] + q4[3] * q4[3] > 0.0 &&
          norm(r0) > L->site_radius_m * 0.5 && L->gm > 0.0 && fabs(L->omega) < 1e-2)) {
        return fsil_error_set(err, FSIL_ERR_MALFORMED,
                              "config: a zero or negative thrust, Isp, mass, radius, GM, "
                              "direction or quaternion, or a position inside the Moon");
    }
    L->exhaust_mps = isp * G0_MPS2;
    L->mass_kg = dry + prop;
    L->site_up = unit(L->site_up);
    L->site_east = unit(L->site_east);
    L->site_north = cross(L->site_up, L->site_east);
    L->boresight = unit(L->boresight);
    /* the initial state into the Moon-fixed frame at t0 */
    t0_s = (double)t0_us * 1e-6;
    q0.w = q4[0];
    q0.x = q4[1];
    q0.y = q4[2];
    q0.z = q4[3];
    v0 = rot_z(sub(v0, cross(v3(0.0, 0.0, L->omega), r0)), -L->omega * t0_s);
    r0 = rot_z(r0, -L->omega * t0_s);
    L->q = qnormalize(qmul(q_z(-L->omega * t0_s), qnormalize(q0)));
    L->origin = scale(L->site_up, L->site_radius_m);
    L->d = sub(r0, L->origin);
    L->v = v0;
    L->t_us = t0_us;
    L->last_t_us = t0_us;
    L->P[0] = pos_sigma * pos_sigma;
    L->P[4] = vel_sigma * vel_sigma;
    L->P[8] = MAP_SIGMA_SITE_M * MAP_SIGMA_SITE_M;
    L->alt_last_t_us = -1;
    L->last_accept_us = -1;
    L->mode = FSIL_MODE_INIT;
    L->hold_dir = rotate(L->q, v3(0.0, 0.0, 1.0));
    return FSIL_OK;
}
