/* Guidance, navigation and control of the example flight software (see lander.h): a port
 * of fsw/ 0.7.0, default variant. Names and the order of every floating-point operation
 * follow the Python, so the two can be read side by side and agree to rounding. */
#include "lander.h"

#include <math.h>
#include <string.h>

#define G0_MPS2 9.80665
#define GM_M3PS2 4.902800118e12 /* nav.py and guidance.py use their own constant */
#define PI 3.14159265358979323846

/* ---- vec.py ---------------------------------------------------------------------------- */

static v3_t v3(double x, double y, double z) { v3_t r; r.x = x; r.y = y; r.z = z; return r; }
static quat_t quat(double w, double x, double y, double z)
{
    quat_t q;
    q.w = w;
    q.x = x;
    q.y = y;
    q.z = z;
    return q;
}
static v3_t add(v3_t a, v3_t b) { return v3(a.x + b.x, a.y + b.y, a.z + b.z); }
static v3_t sub(v3_t a, v3_t b) { return v3(a.x - b.x, a.y - b.y, a.z - b.z); }
static v3_t scale(v3_t a, double k) { return v3(a.x * k, a.y * k, a.z * k); }
static double dot(v3_t a, v3_t b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
static v3_t cross(v3_t a, v3_t b)
{
    return v3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
static double norm(v3_t a) { return sqrt(a.x * a.x + a.y * a.y + a.z * a.z); }
static v3_t unit(v3_t a)
{
    double n = norm(a);
    if (n <= 0.0) {
        return v3(0.0, 0.0, 0.0);
    }
    return v3(a.x / n, a.y / n, a.z / n);
}
static double clamp(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }
/* Python's max(a, b) and min(a, b): the first unless the second is larger (smaller). */
static double fmax2(double a, double b) { return b > a ? b : a; }
static double fmin2(double a, double b) { return b < a ? b : a; }
/* x ** 2 as CPython computes it: libm's pow, which glibc rounds within 0.52 ulp, so not
 * always as x * x; GCC folds a direct pow(x, 2.0) into x * x (a 4 ulp torque difference
 * in the braking reference), so pow is called through a pointer it cannot see through. */
static double (*const volatile libm_pow)(double, double) = pow;
static double sq(double x) { return libm_pow(x, 2.0); } /* x ** 2 */
static v3_t from(const double *a) { return v3(a[0], a[1], a[2]); }

static quat_t qmul(quat_t p, quat_t q)
{
    return quat(p.w * q.w - p.x * q.x - p.y * q.y - p.z * q.z,
                p.w * q.x + p.x * q.w + p.y * q.z - p.z * q.y,
                p.w * q.y - p.x * q.z + p.y * q.w + p.z * q.x,
                p.w * q.z + p.x * q.y - p.y * q.x + p.z * q.w);
}
static double dot4(quat_t p, quat_t q) { return p.w * q.w + p.x * q.x + p.y * q.y + p.z * q.z; }
static quat_t qnormalize(quat_t q)
{
    double n = sqrt(q.w * q.w + q.x * q.x + q.y * q.y + q.z * q.z);
    return quat(q.w / n, q.x / n, q.y / n, q.z / n);
}
static quat_t qrotvec(v3_t th)
{
    double a = norm(th), s;
    if (a < 1e-9) {
        return qnormalize(quat(1.0, 0.5 * th.x, 0.5 * th.y, 0.5 * th.z));
    }
    s = sin(0.5 * a) / a;
    return quat(cos(0.5 * a), th.x * s, th.y * s, th.z * s);
}
static v3_t rotate(quat_t q, v3_t v)
{
    double tx = 2.0 * (q.y * v.z - q.z * v.y);
    double ty = 2.0 * (q.z * v.x - q.x * v.z);
    double tz = 2.0 * (q.x * v.y - q.y * v.x);
    return v3(v.x + q.w * tx + q.y * tz - q.z * ty, v.y + q.w * ty + q.z * tx - q.x * tz,
              v.z + q.w * tz + q.x * ty - q.y * tx);
}
static v3_t rotate_inv(quat_t q, v3_t v) { return rotate(quat(q.w, -q.x, -q.y, -q.z), v); }

/* ---- kf.py ----------------------------------------------------------------------------- */

static double innovation_var(const double *P, int n, const double *H, double r, double *h)
{
    int i, j;
    double s = r;
    for (i = 0; i < n; i++) {
        double acc = 0.0;
        for (j = 0; j < n; j++) {
            if (H[j] != 0.0) {
                acc += P[i * n + j] * H[j];
            }
        }
        h[i] = acc;
    }
    for (j = 0; j < n; j++) {
        if (H[j] != 0.0) {
            s += H[j] * h[j];
        }
    }
    return s;
}

static void kf_update(double *P, int n, const double *h, double s, const double *K)
{
    int i, j;
    for (i = 0; i < n; i++) {
        double ki = K[i], hi = h[i];
        for (j = i; j < n; j++) {
            double v = P[i * n + j] - ki * h[j] - hi * K[j] + s * ki * K[j];
            P[i * n + j] = v;
            P[j * n + i] = v;
        }
    }
}

static void scale_state(double *P, int n, int i, double k)
{
    int j;
    for (j = 0; j < n; j++) {
        P[i * n + j] *= k;
        P[j * n + i] *= k;
    }
}

static int psd_fault(const double *P, int n)
{
    const double tol = 1e-6;
    double scl = 0.0, floor_, L[LANDER_VN * LANDER_VN], D[LANDER_VN];
    int i, j, k;
    for (i = 0; i < n; i++) {
        double d = P[i * n + i];
        if (!(d == d) || isinf(d)) {
            return 1;
        }
        if (d > scl) {
            scl = d;
        }
        for (j = i + 1; j < n; j++) {
            if (P[i * n + j] != P[j * n + i]) {
                return 1;
            }
        }
    }
    if (scl <= 0.0) {
        return scl < 0.0;
    }
    floor_ = -tol * scl;
    memset(L, 0, sizeof L);
    for (j = 0; j < n; j++) {
        double d = P[j * n + j];
        for (k = 0; k < j; k++) {
            d -= L[j * n + k] * L[j * n + k] * D[k];
        }
        if (d < floor_) {
            return 1;
        }
        D[j] = d;
        for (i = j + 1; i < n; i++) {
            double v = P[i * n + j];
            for (k = 0; k < j; k++) {
                v -= L[i * n + k] * L[j * n + k] * D[k];
            }
            if (d > tol * scl) {
                L[i * n + j] = v / d;
            } else if (fabs(v) > sqrt(tol) * scl) {
                return 1;
            }
        }
    }
    return 0;
}

/* ---- nav.py ---------------------------------------------------------------------------- */

#define ACCEL_NOISE_MPS2 0.003
#define TERRAIN_RATE_M_PER_M 0.01
#define MAP_SIGMA_SITE_M 20.0
#define MAP_SIGMA_PER_M 0.05
#define GATE_SIGMA 5.0
#define MAX_BORESIGHT_TILT_RAD 1.22
#define SLOPE_SIGMA 0.05
#define STEP_SPREAD_M 5.0
#define UNHEALTHY_AFTER_S 3.0
#define BEAMS_RECENT_S 1.0
#define EXPECT_VALID_BELOW_M 4000.0
#define UNCERTAINTY_GROWTH 0.5
#define OVERDUE_VEL_SIGMA_MPS 1.0
#define TILT_SIGMA_RAD 0.002
#define FROZEN_SAMPLES 2
#define MAP_GATE_SIGMA 3.0 /* terrain this many map sigmas off the datum and its last step */
#define ISOLATED_SCALE 0.25 /* height error assumed then, per metre of height */
#define TILT_AXIS_MIN_MPS2 0.5
#define DESCENT_TURN_RAD 1.6
#define ST_GAIN 0.2            /* star tracker: share of the attitude error corrected */
#define ST_BIAS_GAIN 0.01      /* ... and fed to the gyro bias (per sample, over the period) */
#define ST_MAX_ERR_RAD 0.05    /* a sample this far from the estimate is rejected */
#define ST_STEP_SIGMAS 10.0    /* isolated when the disagreement jumps by this many sigmas */
#define ST_STEP_FLOOR_RAD 0.0015 /* ... of two samples' noise, plus this (gyros, a period) */
#define ST_LOST_US 5000000     /* nothing fused this long, turning slowly: the tracker is lost */
#define NN LANDER_N

static const double H_ALT[NN] = {1.0, 0.0, -1.0, 0.0, 0.0};

static v3_t gravity(v3_t r)
{
    double r2 = dot(r, r);
    double k = -GM_M3PS2 / (r2 * sqrt(r2));
    return scale(r, k);
}

static void nav_turn(lander_nav_t *n, int64_t t_us)
{
    double th = n->omega * ((double)t_us * 1e-6), h;
    n->c = cos(th);
    n->s = sin(th);
    h = -0.5 * th;
    n->q = qmul(quat(cos(h), 0.0, 0.0, sin(h)), n->q_i);
}

static v3_t to_fixed(const lander_nav_t *n, v3_t a)
{
    return v3(n->c * a.x + n->s * a.y, -n->s * a.x + n->c * a.y, a.z);
}
static v3_t to_inertial(const lander_nav_t *n, v3_t a)
{
    return v3(n->c * a.x - n->s * a.y, n->s * a.x + n->c * a.y, a.z);
}
static v3_t nav_r(const lander_nav_t *n) { return add(n->origin, n->d); }
static void nav_move(lander_nav_t *n, v3_t delta) { n->d = add(n->d, delta); }
static v3_t nav_up(const lander_nav_t *n) { return unit(nav_r(n)); }

static double altitude_m(const lander_nav_t *n)
{
    double R = n->site_radius_m;
    double ud = dot(n->site_up, n->d);
    double num = 2.0 * R * ud + dot(n->d, n->d);
    return num / (sqrt(R * R + num) + R);
}
static double vertical_speed_mps(const lander_nav_t *n) { return dot(n->v, nav_up(n)); }
static double agl_m(const lander_nav_t *n) { return altitude_m(n) - n->terrain_m; }
static double agl_sigma_m(const lander_nav_t *n)
{
    const double *P = n->P;
    return sqrt(fmax2(0.0, P[0] - 2.0 * P[2] + P[2 * NN + 2]));
}
static double overdue_sigma_m(const lander_nav_t *n)
{
    return UNCERTAINTY_GROWTH * fmax2(agl_m(n), 0.0);
}

/* (attitude, velocity) at an earlier time, from the last frames. */
static void nav_at(const lander_nav_t *n, int64_t t_us, quat_t *q_out, v3_t *v_out)
{
    const lander_hist_t *hist = n->hist;
    int i = n->n_hist - 1;
    quat_t q;
    v3_t acc;
    while (i > 0 && hist[i - 1].t_us >= t_us) {
        i--;
    }
    if (i == 0 || t_us >= hist[i].t_us) {
        q = hist[i].q;
        acc = hist[i].dv_acc;
    } else {
        const lander_hist_t *a = &hist[i - 1], *b = &hist[i];
        double f = (double)(t_us - a->t_us) / (double)(b->t_us - a->t_us);
        double g = 1.0 - f;
        double fq = dot4(a->q, b->q) < 0.0 ? -f : f;
        q = qnormalize(quat(g * a->q.w + fq * b->q.w, g * a->q.x + fq * b->q.x,
                            g * a->q.y + fq * b->q.y, g * a->q.z + fq * b->q.z));
        acc = add(scale(a->dv_acc, g), scale(b->dv_acc, f));
    }
    *q_out = q;
    *v_out = sub(n->v, sub(n->dv_acc, acc));
}

static double map_sigma_m(const lander_nav_t *n)
{
    double d = sqrt(sq(n->ground_m[0]) + sq(n->ground_m[1]));
    return MAP_SIGMA_SITE_M + MAP_SIGMA_PER_M * d;
}

static void tilt_step(lander_nav_t *n, v3_t f, double dt)
{
    v3_t up, fu;
    double c, a;
    if (n->tilt_off) {
        return;
    }
    up = nav_up(n);
    fu = cross(f, up);
    if (!n->have_tilt_axis) {
        if (norm(fu) < TILT_AXIS_MIN_MPS2) {
            n->tilt_coupling_mps2 = 0.0;
            return;
        }
        n->tilt_axis = unit(fu);
        n->have_tilt_axis = 1;
    }
    c = dot(fu, n->tilt_axis);
    n->tilt_coupling_mps2 = c;
    a = c * n->tilt_rad + 0.5 * c * n->drift_radps * dt;
    n->v = add(n->v, scale(up, a * dt));
    nav_move(n, scale(up, 0.5 * a * dt * dt));
    n->tilt_rad += n->drift_radps * dt;
}

static void propagate_cov(lander_nav_t *n, double dt, double f_mps2)
{
    double *P = n->P;
    double a_tilt = TILT_SIGMA_RAD * f_mps2, q_a, c, c03, c04, c13, c14, q_acc, v_h, cap;
    int i, j;
    const int r0 = 0, r1 = NN, r3 = 3 * NN, r4 = 4 * NN;
    v3_t up;
    n->process_accel_mps2 = sqrt(sq(ACCEL_NOISE_MPS2) + a_tilt * a_tilt);
    q_a = n->process_accel_mps2 * n->process_accel_mps2 * dt;
    c = n->tilt_coupling_mps2;
    c03 = 0.5 * c * dt * dt;
    c04 = c * dt * dt * dt / 6.0;
    c13 = c * dt;
    c14 = 0.5 * c * dt * dt;
    for (j = 0; j < NN; j++) {
        P[r0 + j] += dt * P[r1 + j] + c03 * P[r3 + j] + c04 * P[r4 + j];
        P[r1 + j] += c13 * P[r3 + j] + c14 * P[r4 + j];
        P[r3 + j] += dt * P[r4 + j];
    }
    for (i = 0; i < NN; i++) {
        int ri = i * NN;
        P[ri] += dt * P[ri + 1] + c03 * P[ri + 3] + c04 * P[ri + 4];
        P[ri + 1] += c13 * P[ri + 3] + c14 * P[ri + 4];
        P[ri + 3] += dt * P[ri + 4];
    }
    for (i = 0; i < NN; i++) {
        for (j = i + 1; j < NN; j++) {
            P[j * NN + i] = P[i * NN + j];
        }
    }
    q_acc = n->q_vrw + n->q_accel_bias + sq(n->accel_scale * f_mps2) * n->accel_tau_s;
    P[NN + 1] += q_a + q_acc * dt;
    P[3 * NN + 3] += n->q_tilt * dt;
    P[4 * NN + 4] += n->q_drift * dt;
    up = nav_up(n);
    v_h = norm(sub(n->v, scale(up, vertical_speed_mps(n))));
    P[2 * NN + 2] += sq(TERRAIN_RATE_M_PER_M * v_h) * dt;
    cap = map_sigma_m(n);
    if (P[2 * NN + 2] > cap * cap) {
        double k = cap / sqrt(P[2 * NN + 2]);
        scale_state(P, NN, 2, k);
        n->terrain_m *= k;
    }
}

static void nav_propagate(lander_nav_t *n, const fsil_imu_t *imu, int calibrating)
{
    double dt_sum = 0.0, fx = 0.0, fy = 0.0, fz = 0.0;
    v3_t sf = v3(0.0, 0.0, 0.0);
    double w = n->omega, c = n->c, sn = n->s;
    uint32_t k;
    for (k = 0; k < imu->count; k++) {
        const fsil_imu_sample_t *s = &imu->s[k];
        double dt = (double)(s->t_us - n->t_us) * 1e-6;
        v3_t dv_b, dth, dv_i, r, v_old, g, dv;
        quat_t q_mid;
        if (dt <= 0.0) {
            continue;
        }
        n->t_us = s->t_us;
        dt_sum += dt;
        if (calibrating) {
            n->cal_sum[0] += s->dv[0];
            n->cal_sum[1] += s->dv[1];
            n->cal_sum[2] += s->dv[2];
            n->cal_time_s += dt;
        }
        dv_b = v3(s->dv[0] - n->accel_bias.x * dt, s->dv[1] - n->accel_bias.y * dt,
                  s->dv[2] - n->accel_bias.z * dt);
        if (n->st_on) {
            dth = v3(s->dth[0] - n->gyro_bias.x * dt, s->dth[1] - n->gyro_bias.y * dt,
                     s->dth[2] - n->gyro_bias.z * dt);
        } else {
            dth = from(s->dth);
        }
        q_mid = qmul(n->q_i, qrotvec(scale(dth, 0.5)));
        n->q_i = qnormalize(qmul(n->q_i, qrotvec(dth)));
        dv_i = rotate(q_mid, dv_b);
        fx += dv_b.x;
        fy += dv_b.y;
        fz += dv_b.z;
        r = nav_r(n);
        v_old = n->v;
        g = gravity(r);
        if (w != 0.0) {
            dv_i = v3(c * dv_i.x + sn * dv_i.y, -sn * dv_i.x + c * dv_i.y, dv_i.z);
            g = v3(g.x + w * (2.0 * v_old.y + w * r.x), g.y + w * (w * r.y - 2.0 * v_old.x), g.z);
        }
        sf = add(sf, dv_i);
        dv = add(dv_i, scale(g, dt));
        n->dv_acc = add(n->dv_acc, dv);
        n->v = add(v_old, dv);
        nav_move(n, scale(add(v_old, n->v), 0.5 * dt));
        n->last_rate_body = scale(dth, 1.0 / dt);
    }
    nav_turn(n, n->t_us);
    if (dt_sum > 0.0) {
        if (n->n_hist == LANDER_HISTORY) {
            memmove(n->hist, n->hist + 1, (LANDER_HISTORY - 1) * sizeof n->hist[0]);
            n->n_hist--;
        }
        n->hist[n->n_hist].t_us = n->t_us;
        n->hist[n->n_hist].q = n->q;
        n->hist[n->n_hist].dv_acc = n->dv_acc;
        n->n_hist++;
        n->specific_force_mps2 = sqrt(fx * fx + fy * fy + fz * fz) / dt_sum;
        tilt_step(n, scale(sf, 1.0 / dt_sum), dt_sum);
        propagate_cov(n, dt_sum, n->specific_force_mps2);
    }
}

static void finish_calibration(lander_nav_t *n)
{
    if (n->cal_time_s > 0.0) {
        double k = 1.0 / n->cal_time_s;
        n->accel_bias = v3(n->cal_sum[0] * k, n->cal_sum[1] * k, n->cal_sum[2] * k);
    }
}

static int height_healthy(const lander_nav_t *n)
{
    return n->alt_healthy ||
           (n->have_beam_accept &&
            (double)(n->t_us - n->beam_accept_us) * 1e-6 <= UNHEALTHY_AFTER_S);
}

static void accepted(lander_nav_t *n, int64_t t_us)
{
    n->alt_ever_valid = 1;
    n->have_accept = 1;
    n->last_accept_us = t_us;
    n->alt_healthy = 1;
}

static void update_health(lander_nav_t *n)
{
    if (n->have_accept && (double)(n->t_us - n->last_accept_us) * 1e-6 > UNHEALTHY_AFTER_S) {
        n->alt_healthy = 0;
    }
    n->alt_overdue = !height_healthy(n) && agl_m(n) < EXPECT_VALID_BELOW_M;
}

static void decorrelate(lander_nav_t *n, int i)
{
    int j;
    for (j = 0; j < NN; j++) {
        if (j != i) {
            n->P[i * NN + j] = 0.0;
            n->P[j * NN + i] = 0.0;
        }
    }
}

static void nav_kalman(lander_nav_t *n, double y, double r_meas)
{
    double h[NN], k[NN], s;
    v3_t up;
    int i;
    s = innovation_var(n->P, NN, H_ALT, r_meas, h);
    for (i = 0; i < NN; i++) {
        k[i] = h[i] / s;
    }
    up = nav_up(n);
    nav_move(n, scale(up, k[0] * y));
    n->v = add(n->v, scale(up, k[1] * y));
    n->terrain_m += k[2] * y;
    n->tilt_rad += k[3] * y;
    n->drift_radps += k[4] * y;
    kf_update(n->P, NN, h, s, k);
    n->alt_used = 1;
}

/* Append y to a window of at most cap values (the oldest dropped); the count after. */
static int push_window(double *out, int *count, int cap, double y)
{
    if (*count == cap) {
        memmove(out, out + 1, (size_t)(cap - 1) * sizeof out[0]);
        (*count)--;
    }
    out[(*count)++] = y;
    return *count;
}

static void window_stats(const double *out, int count, double *mean, double *spread)
{
    double sum = 0.0, lo = out[0], hi = out[0];
    int k;
    for (k = 0; k < count; k++) {
        sum += out[k];
        lo = out[k] < lo ? out[k] : lo;
        hi = out[k] > hi ? out[k] : hi;
    }
    *mean = sum / (double)count;
    *spread = hi - lo;
}

static void beam_outlier(lander_nav_t *n, double y, double r_meas, int64_t t_us)
{
    double mean, spread;
    if (n->have_beam_accept && n->alt_healthy) {
        return;
    }
    if (push_window(n->beam_out, &n->n_beam_out, LANDER_BEAM_SAMPLES, y) < LANDER_BEAM_SAMPLES) {
        return;
    }
    window_stats(n->beam_out, n->n_beam_out, &mean, &spread);
    if (spread <= STEP_SPREAD_M + 4.0 * sqrt(r_meas) + 0.02 * fabs(mean)) {
        n->terrain_m -= mean;
        n->P[12] += r_meas;
        n->n_beam_out = 0;
        n->have_beam_accept = 1;
        n->beam_accept_us = t_us;
    }
}

static int fuse_beam_range(lander_nav_t *n, int64_t t_us, double range_m, v3_t beam_i,
                           double sigma_r)
{
    double cos_tilt, age_s, y, sin_tilt, r_meas;
    const double *P = n->P;
    if (n->beams_disputed) {
        return 0;
    }
    cos_tilt = -dot(beam_i, nav_up(n));
    if (cos_tilt < cos(MAX_BORESIGHT_TILT_RAD)) {
        return 0;
    }
    age_s = (double)(n->t_us - t_us) * 1e-6;
    y = range_m * cos_tilt - (agl_m(n) - vertical_speed_mps(n) * age_s);
    sin_tilt = sqrt(fmax2(0.0, 1.0 - cos_tilt * cos_tilt));
    r_meas = sq(sigma_r * cos_tilt) + sq(SLOPE_SIGMA * range_m * sin_tilt);
    if (y * y > GATE_SIGMA * GATE_SIGMA * (P[0] - 2.0 * P[2] + P[12] + r_meas)) {
        beam_outlier(n, y, r_meas, t_us);
        return 0;
    }
    n->n_beam_out = 0;
    nav_kalman(n, y, r_meas);
    n->alt_used = 0;
    n->have_beam_accept = 1;
    n->beam_accept_us = t_us;
    return 1;
}

static void fuse_default(lander_nav_t *n, double y, double r_meas, double sigma_r, int64_t t_us)
{
    double *P = n->P;
    double s = P[0] - 2.0 * P[2] + P[12] + r_meas, mean, spread;
    if (y * y <= GATE_SIGMA * GATE_SIGMA * s) {
        n->n_outliers = 0;
        nav_kalman(n, y, r_meas);
        accepted(n, t_us);
        return;
    }
    n->alt_rejected = 1;
    if (push_window(n->outliers, &n->n_outliers, LANDER_STEP_SAMPLES, y) < LANDER_STEP_SAMPLES) {
        return;
    }
    window_stats(n->outliers, n->n_outliers, &mean, &spread);
    if (n->have_beam_accept && (double)(n->t_us - n->beam_accept_us) * 1e-6 <= BEAMS_RECENT_S) {
        if (mean > 0.0 || spread > STEP_SPREAD_M + 4.0 * sigma_r + 0.02 * fabs(mean)) {
            n->alt_vetoed = 1;
            n->n_outliers = 0;
            return;
        }
        n->beams_disputed = 1;
        n->have_beam_accept = 0;
    }
    if (spread <= STEP_SPREAD_M + 4.0 * sigma_r + 0.02 * fabs(mean)) {
        if (n->alt_overdue || (!n->alt_ever_valid && agl_m(n) < EXPECT_VALID_BELOW_M)) {
            /* locked late: our own height drifted; re-base it and open the speed up */
            nav_move(n, scale(nav_up(n), mean));
            P[0] = r_meas + spread * spread;
            decorrelate(n, 0);
            P[6] = fmax2(P[6], sq(OVERDUE_VEL_SIGMA_MPS));
        } else { /* a cliff or a crater rim: re-base the terrain under us */
            n->terrain_m -= mean;
            P[12] += r_meas;
        }
        if (n->beams_disputed) { /* the terrain's drift is measured from this step */
            n->dispute_terrain_m = n->terrain_m;
        }
        n->n_outliers = 0;
        accepted(n, t_us);
        n->alt_rejected = 0;
        n->alt_used = 1;
    }
}

/* The altimeter followed against the beams has drifted the terrain MAP_GATE_SIGMA map
 * sigmas off the datum and off its last step: it is the faulty unit (a range scale
 * error). Ignored from now on; the terrain back on the datum, the height above it as measured, both uncertain; the beams
 * are heights again (fsw/nav.py Navigator._isolate_altimeter). */
static void isolate_altimeter(lander_nav_t *n)
{
    double *P = n->P;
    double cap, agl;
    n->alt_isolated = 1; /* alt_healthy lapses as for a silent unit */
    n->alt_used = 0;
    n->alt_rejected = 1;
    cap = map_sigma_m(n);
    agl = agl_m(n);
    nav_move(n, scale(nav_up(n), -n->terrain_m));
    n->terrain_m = 0.0;
    P[0] = sq(ISOLATED_SCALE * agl) + cap * cap;
    decorrelate(n, 0);
    P[2 * NN + 2] = cap * cap;
    decorrelate(n, 2);
    n->beams_disputed = 0;
    n->have_beam_accept = 0;
    n->n_beam_out = 0;
    n->n_outliers = 0;
}

static void fuse_altimeter(lander_nav_t *n, const fsil_alt_t *alt)
{
    v3_t up, bore_i, v_unused;
    quat_t q_s;
    double cos_tilt, z, age_s, y, sigma_r, sin_tilt, r_meas, range_m;
    n->alt_used = 0;
    n->alt_rejected = 0;
    update_health(n);
    if (!alt->present || n->alt_isolated) {
        return;
    }
    if (!alt->valid || alt->t_us == n->alt_last_t_us) {
        return;
    }
    n->alt_last_t_us = alt->t_us;
    range_m = alt->range_m;
    /* a frozen unit repeats its last range to the bit */
    if (range_m == n->last_range_m) {
        n->frozen++;
    } else {
        n->frozen = 0;
    }
    n->last_range_m = range_m;
    if (n->frozen >= FROZEN_SAMPLES) {
        n->alt_rejected = 1;
        n->alt_frozen = 1;
        return;
    }
    n->alt_frozen = 0;
    up = nav_up(n);
    nav_at(n, alt->t_us, &q_s, &v_unused);
    bore_i = rotate(q_s, n->boresight);
    cos_tilt = -dot(bore_i, up);
    if (cos_tilt < cos(MAX_BORESIGHT_TILT_RAD)) {
        return;
    }
    z = range_m * cos_tilt;
    age_s = (double)(n->t_us - alt->t_us) * 1e-6;
    y = z - (agl_m(n) - vertical_speed_mps(n) * age_s);
    sigma_r = sqrt(sq(n->alt_noise_m) + sq(n->alt_noise_fraction * range_m));
    sin_tilt = sqrt(fmax2(0.0, 1.0 - cos_tilt * cos_tilt));
    r_meas = sq(sigma_r * cos_tilt) + sq(SLOPE_SIGMA * range_m * sin_tilt);
    if (n->alt_overdue) {
        n->P[0] = fmax2(n->P[0], sq(overdue_sigma_m(n)));
    }
    fuse_default(n, y, r_meas, sigma_r, alt->t_us);
    if (n->beams_disputed) {
        double gate = MAP_GATE_SIGMA * map_sigma_m(n);
        if (fabs(n->terrain_m) > gate && fabs(n->terrain_m - n->dispute_terrain_m) > gate) {
            isolate_altimeter(n);
        }
    }
}

/* The velocimeter takes over the velocity: the tilt model stops; its acceleration returned. */
static v3_t hand_over_tilt(lander_nav_t *n)
{
    v3_t a;
    int i;
    if (n->tilt_off) {
        return v3(0.0, 0.0, 0.0);
    }
    a = scale(nav_up(n), n->tilt_coupling_mps2 * n->tilt_rad);
    n->tilt_off = 1;
    n->tilt_rad = n->drift_radps = 0.0;
    n->tilt_coupling_mps2 = 0.0;
    for (i = 3; i <= 4; i++) {
        decorrelate(n, i);
        n->P[i * NN + i] = 0.0;
    }
    return a;
}

/* nav.take_back_tilt: the tracker that took the tilt model over is lost before the
 * velocimeter measures: the tilt model runs again from no tilt. */
static void take_back_tilt(lander_nav_t *n)
{
    n->tilt_by_st = 0;
    n->st_lost++;
    n->tilt_off = 0;
    n->tilt_rad = n->drift_radps = 0.0;
    n->P[3 * NN + 3] = n->tilt_turn2 + sq(ST_STEP_FLOOR_RAD);
    n->P[4 * NN + 4] = n->drift_instab2;
}

/* Star tracker sample: a complementary filter on the attitude and the gyro bias. */
static void fuse_star_tracker(lander_nav_t *n, const fsil_att_t *att)
{
    quat_t q_nav, q_m, dq, turn;
    v3_t v_unused, e;
    double h, k, kb;
    int i;
    n->st_used = n->st_rejected = 0;
    if (n->tilt_by_st && !n->vel_took_tilt) {
        v3_t w = n->last_rate_body;
        if (w.x * w.x + w.y * w.y + w.z * w.z > n->st_max_rate_radps * n->st_max_rate_radps) {
            n->st_have_calm = 0;
        } else if (!n->st_have_calm) {
            n->st_have_calm = 1;
            n->st_calm_since_us = n->t_us;
        }
        if (n->st_failed || (n->st_have_calm && n->t_us - (n->st_calm_since_us > n->st_last_fused_us
                                 ? n->st_calm_since_us : n->st_last_fused_us) > ST_LOST_US)) {
            take_back_tilt(n);
        }
    }
    if (!att->present || att->t_us == n->st_last_t_us || !att->valid || n->st_failed) {
        return;
    }
    n->st_last_t_us = att->t_us;
    if (n->n_hist > 0 && att->t_us < n->hist[0].t_us) {  /* older than the attitudes kept */
        n->st_rejected = 1;
        n->st_stale++;
        return;
    }
    if (n->st_have_prev_q && att->q[0] == n->st_prev_q[0] && att->q[1] == n->st_prev_q[1]
        && att->q[2] == n->st_prev_q[2] && att->q[3] == n->st_prev_q[3]) {
        n->st_failed = LANDER_ST_STUCK;   /* a tracker's noise never repeats a sample */
        return;
    }
    memcpy(n->st_prev_q, att->q, sizeof n->st_prev_q);
    n->st_have_prev_q = 1;
    nav_at(n, att->t_us, &q_nav, &v_unused);
    h = -0.5 * n->omega * ((double)att->t_us * 1e-6);
    q_m = qmul(quat(cos(h), 0.0, 0.0, sin(h)),
               qnormalize(quat(att->q[0], att->q[1], att->q[2], att->q[3])));
    dq = qmul(quat(q_nav.w, -q_nav.x, -q_nav.y, -q_nav.z), q_m);
    k = dq.w >= 0.0 ? 2.0 : -2.0;
    e = v3(k * dq.x, k * dq.y, k * dq.z);
    if (n->st_have_prev && (double)(att->t_us - n->st_prev_t_us) <= 1.5e6 * n->st_period_s) {
        /* what the last sample left uncorrected should still be there */
        double c = 1.0 - n->st_prev_gain, r_roll, r_cross, ratio;
        v3_t pe = n->st_prev_e, b = n->st_boresight;
        v3_t r = v3(e.x - c * pe.x, e.y - c * pe.y, e.z - c * pe.z);
        r_roll = dot(r, b);
        r_cross = norm(v3(r.x - r_roll * b.x, r.y - r_roll * b.y, r.z - r_roll * b.z));
        ratio = fmax2(r_cross / n->st_gate_cross, fabs(r_roll) / n->st_gate_roll);
        if (ratio > n->st_step_ratio) {
            n->st_step_ratio = ratio;
        }
        if (ratio > 1.0) {
            n->st_failed = LANDER_ST_STEP;
            return;
        }
    }
    n->st_error_rad = norm(e);
    n->st_have_prev = 1;
    n->st_prev_t_us = att->t_us;
    n->st_prev_e = e;
    if (n->st_error_rad > ST_MAX_ERR_RAD) {
        n->st_rejected = 1;
        n->st_prev_gain = 0.0;
        return;
    }
    n->st_prev_gain = ST_GAIN;
    n->st_used = 1;
    n->st_last_fused_us = n->t_us;
    if (!n->tilt_off) {
        (void)hand_over_tilt(n);
        n->tilt_by_st = 1;
    }
    turn = qrotvec(scale(e, ST_GAIN));
    n->q_i = qnormalize(qmul(n->q_i, turn));
    nav_turn(n, n->t_us);
    for (i = 0; i < n->n_hist; i++) {
        n->hist[i].q = qnormalize(qmul(n->hist[i].q, turn));
    }
    kb = ST_BIAS_GAIN / n->st_period_s;
    n->gyro_bias = v3(n->gyro_bias.x - kb * e.x, n->gyro_bias.y - kb * e.y,
                      n->gyro_bias.z - kb * e.z);
}

static void narrow_vertical_speed(lander_nav_t *n, double var)
{
    double p = n->P[NN + 1];
    if (0.0 < var && var < p) {
        scale_state(n->P, NN, 1, sqrt(var / p));
    }
}

static int nav_cov_fault(const lander_nav_t *n) { return psd_fault(n->P, NN); }

/* ---- velnav.py ------------------------------------------------------------------------- */

#define VEL_GATE_SIGMA 5.0
#define VEL_UNHEALTHY_AFTER_S 2.0
#define VEL_REBASE_AFTER 10
#define VEL_SIGMA0_MPS 1.0
#define VEL_ACCEL_SIGMA_MPS2 0.05
#define VEL_ACCEL_TAU_S 100.0
#define VN LANDER_VN

static void vel_prior(lander_vel_t *f)
{
    double s0 = sq(VEL_SIGMA0_MPS), b0 = sq(VEL_ACCEL_SIGMA_MPS2);
    int i;
    memset(f->P, 0, sizeof f->P);
    for (i = 0; i < 3; i++) {
        f->P[i * VN + i] = s0;
        f->P[(i + 3) * VN + i + 3] = b0;
    }
}

static void vel_propagate(lander_vel_t *f, double dt, double q_mps2, lander_nav_t *nav)
{
    double *P = f->P, phi, q, qb;
    int i, j, r, c;
    if (dt <= 0.0) {
        return;
    }
    phi = exp(-dt / VEL_ACCEL_TAU_S);
    for (i = 0; i < 3; i++) { /* rows i: v_i + dt b_i */
        for (j = 0; j < VN; j++) {
            P[i * VN + j] += dt * P[(i + 3) * VN + j];
        }
    }
    for (j = 0; j < VN; j++) { /* columns i: the same on the right */
        for (i = 0; i < 3; i++) {
            P[j * VN + i] += dt * P[j * VN + i + 3];
        }
    }
    for (r = 0; r < VN; r++) { /* the cross blocks: phi once */
        for (c = 0; c < VN; c++) {
            if ((r >= 3) != (c >= 3)) {
                P[r * VN + c] *= phi;
            }
        }
    }
    for (r = 3; r < VN; r++) { /* the b block: phi by row, then by column */
        for (c = 3; c < VN; c++) {
            P[r * VN + c] = P[r * VN + c] * phi * phi;
        }
    }
    q = q_mps2 * q_mps2 * dt;
    qb = sq(VEL_ACCEL_SIGMA_MPS2) * (1.0 - phi * phi);
    for (i = 0; i < 3; i++) {
        P[i * VN + i] += q;
        P[(i + 3) * VN + i + 3] += qb;
    }
    for (i = 0; i < VN; i++) {
        for (j = i + 1; j < VN; j++) {
            P[j * VN + i] = P[i * VN + j];
        }
    }
    if (f->healthy) {
        nav->v = add(nav->v, scale(f->accel, dt));
    }
    f->accel = scale(f->accel, phi);
}

static void vel_apply(lander_vel_t *f, lander_nav_t *nav, v3_t dv)
{
    v3_t up, pu;
    const double *P = f->P;
    nav->v = add(nav->v, dv);
    f->correction = add(f->correction, dv);
    up = nav_up(nav);
    pu = v3(P[0] * up.x + P[1] * up.y + P[2] * up.z,
            P[VN] * up.x + P[VN + 1] * up.y + P[VN + 2] * up.z,
            P[2 * VN] * up.x + P[2 * VN + 1] * up.y + P[2 * VN + 2] * up.z);
    narrow_vertical_speed(nav, dot(up, pu));
}

static void vel_fuse(lander_vel_t *f, lander_nav_t *nav, const fsil_vel_t *sample)
{
    double values[6], r, *P = f->P;
    uint32_t mask;
    int k, i, accepted_n = 0, rejected_n = 0, same;
    quat_t q_s;
    v3_t v_s, dv = v3(0.0, 0.0, 0.0), db = v3(0.0, 0.0, 0.0);
    f->used = 0;
    f->rejected = 0;
    if (f->have_accept && (double)(nav->t_us - f->last_accept_us) * 1e-6 > VEL_UNHEALTHY_AFTER_S) {
        f->healthy = 0;
    }
    if (!sample->present || sample->t_us == f->last_t_us) {
        return;
    }
    f->last_t_us = sample->t_us;
    for (k = 0; k < 3; k++) {
        values[k] = sample->vlos_mps[k];
        values[3 + k] = sample->range_m[k];
    }
    same = f->have_last_values;
    for (k = 0; k < 6 && same; k++) {
        same = values[k] == f->last_values[k];
    }
    f->frozen_count = same && (values[3] > 0.0 || values[4] > 0.0 || values[5] > 0.0)
                          ? f->frozen_count + 1 : 0;
    memcpy(f->last_values, values, sizeof values);
    f->have_last_values = 1;
    f->frozen = f->frozen_count >= FROZEN_SAMPLES;
    if (f->frozen) {
        f->rejected = 1;
        return;
    }
    mask = sample->valid_mask;
    if (mask == 0) { /* IM-1: data without their valid flag are still data */
        for (k = 0; k < 3; k++) {
            if (sample->range_m[k] > 0.0) {
                mask |= 1u << k;
            }
        }
        if (mask == 0) {
            return;
        }
    }
    if (!f->ever_valid) {
        f->accel = add(f->accel, hand_over_tilt(nav));
        nav->vel_took_tilt = 1;
    }
    nav_at(nav, sample->t_us, &q_s, &v_s);
    r = f->noise_mps * f->noise_mps;
    for (k = 0; k < 3; k++) {
        v3_t d, vs;
        double H[VN], h[VN], K[VN], pred, y, s;
        if (!(mask & (1u << k))) {
            continue;
        }
        d = rotate(q_s, f->beams[k]);
        H[0] = -d.x;
        H[1] = -d.y;
        H[2] = -d.z;
        H[3] = H[4] = H[5] = 0.0;
        vs = add(v_s, dv);
        pred = H[0] * vs.x + H[1] * vs.y + H[2] * vs.z;
        y = sample->vlos_mps[k] - pred;
        s = innovation_var(P, VN, H, r, h);
        if (y * y > VEL_GATE_SIGMA * VEL_GATE_SIGMA * s && f->rejects < VEL_REBASE_AFTER) {
            rejected_n++;
            continue;
        }
        for (i = 0; i < VN; i++) {
            K[i] = h[i] / s;
        }
        dv = add(dv, v3(K[0] * y, K[1] * y, K[2] * y));
        db = add(db, v3(K[3] * y, K[4] * y, K[5] * y));
        kf_update(P, VN, h, s, K);
        accepted_n++;
    }
    for (k = 0; k < 3; k++) {
        double rng = sample->range_m[k];
        if ((mask & (1u << k)) && rng > 0.0) {
            double sig = sqrt(sq(f->range_noise_m) + sq(f->range_noise_fraction * rng));
            fuse_beam_range(nav, sample->t_us, rng, rotate(q_s, f->beams[k]), sig);
        }
    }
    if (accepted_n) {
        vel_apply(f, nav, dv);
        f->accel = add(f->accel, db);
        f->rejects = 0;
        f->used = 1;
        f->healthy = 1;
        f->ever_valid = 1;
        f->have_accept = 1;
        f->last_accept_us = sample->t_us;
    }
    if (rejected_n) {
        f->rejected = 1;
        if (!accepted_n) {
            f->rejects++;
            if (f->rejects >= VEL_REBASE_AFTER) {
                double s0 = sq(VEL_SIGMA0_MPS);
                for (i = 0; i < 3; i++) {
                    P[i * VN + i] = fmax2(P[i * VN + i], s0);
                }
            }
        }
    }
}

/* ---- guidance.py ----------------------------------------------------------------------- */

#define DESCENT_RATE_MPS 1.0
#define SLIDE_SPEED_MPS 0.5
#define HOLD_SPEED_MPS 1.5
#define DIVERT_TILT_RAD 0.87
#define DIVERT_RATE_GAIN 0.8
#define DIVERT_NULL_GAIN 0.5
#define DIVERT_HEIGHT_GAIN 0.3

typedef struct { double a[3]; } l3_t; /* a local (up, downrange, crossrange) vector */

static l3_t l3(double a, double b, double c) { l3_t r; r.a[0] = a; r.a[1] = b; r.a[2] = c; return r; }
static double l3norm(l3_t v) { return sqrt(v.a[0] * v.a[0] + v.a[1] * v.a[1] + v.a[2] * v.a[2]); }

/* (downrange, crossrange) arc lengths of the point under d. */
static void ground(const lander_t *L, v3_t d, double *down, double *cross_m)
{
    double R = L->site_radius_m;
    double x = R + dot(d, L->site_up);
    double a = atan2(dot(d, L->site_east), x);
    double n = dot(d, L->site_north);
    double c = atan2(n, sqrt(x * x + sq(dot(d, L->site_east))));
    *down = a * R;
    *cross_m = c * R;
}

static void site_local(const lander_t *L, v3_t d, v3_t v, double alt_m, double pos[3],
                       double vel[3], v3_t axes[3])
{
    double R = L->site_radius_m, rn, k;
    v3_t r = add(scale(L->site_up, R), d), u, e_a, e_c;
    rn = norm(r);
    u = scale(r, 1.0 / rn);
    e_a = unit(cross(L->site_north, u));
    e_c = cross(u, e_a);
    k = R / rn;
    pos[0] = alt_m;
    ground(L, d, &pos[1], &pos[2]);
    vel[0] = dot(v, u);
    vel[1] = dot(v, e_a) * k;
    vel[2] = dot(v, e_c) * k;
    axes[0] = u;
    axes[1] = e_a;
    axes[2] = e_c;
}

static v3_t to_frame(const double a_local[3], const v3_t axes[3])
{
    return add(add(scale(axes[0], a_local[0]), scale(axes[1], a_local[1])),
               scale(axes[2], a_local[2]));
}

#define CLIMB_ARREST_GAIN 0.3 /* braking: upward speed to extra downward acceleration, 1/s */
#define CLIMB_ARREST_DIP 0.27  /* ... the thrust at most ~15 deg below the horizontal (tan) */

/* guidance.arrest_climb: while climbing in braking, the upward thrust is capped at
 * g_now - k vz (v2 is the whole speed squared), never below DIP times the horizontal
 * demand, so the vertical speed decays. */
static void arrest_climb(l3_t *a_local, double vz, double r_m, double v2)
{
    double g_now, a_h, a_up_max;
    if (vz <= 0.0) {
        return;
    }
    g_now = GM_M3PS2 / (r_m * r_m) - (v2 - vz * vz) / r_m;
    a_h = sqrt(a_local->a[1] * a_local->a[1] + a_local->a[2] * a_local->a[2]);
    a_up_max = fmax2(g_now - CLIMB_ARREST_GAIN * vz, -CLIMB_ARREST_DIP * a_h);
    if (a_local->a[0] <= a_up_max) {
        return;
    }
    a_local->a[0] = a_up_max;
}

/* guidance.tilt_cone: after braking the thrust demand within APPROACH_MAX_TILT_RAD of the
 * vertical (the horizontal part scaled down, the up part at least APPROACH_MIN_UP_MPS2). */
#define APPROACH_MAX_TILT_RAD 1.2217
#define APPROACH_MIN_UP_MPS2 0.1
static void tilt_cone(l3_t *a_local)
{
    double up = a_local->a[0], k;
    double h = sqrt(a_local->a[1] * a_local->a[1] + a_local->a[2] * a_local->a[2]);
    double tan_max = tan(APPROACH_MAX_TILT_RAD);
    if (h <= up * tan_max) {
        return;
    }
    up = fmax2(up, APPROACH_MIN_UP_MPS2);
    k = up * tan_max / h;
    a_local->a[0] = up;
    a_local->a[1] *= k;
    a_local->a[2] *= k;
}

/* (g_pos, g_vel) as local vectors: guidance.down(effective_gravity(...)). */
static void down_gravity(double r_m, double a, double b, l3_t g[2])
{
    double g0 = GM_M3PS2 / (r_m * r_m);
    double v2_vel = (a * a + a * b + b * b) / 3.0;
    double v2_pos = (3.0 * a * a + 2.0 * a * b + b * b) / 6.0;
    g[0] = l3(-(g0 - v2_pos / r_m), 0.0, 0.0);
    g[1] = l3(-(g0 - v2_vel / r_m), 0.0, 0.0);
}

static void with_frame_terms(l3_t g[2], double omega, v3_t r, v3_t v, v3_t v_target,
                             const v3_t axes[3])
{
    const double ks[2] = {2.0 / 3.0, 0.5};
    int i;
    for (i = 0; i < 2; i++) {
        double k = ks[i];
        double vx = k * v.x + (1.0 - k) * v_target.x;
        double vy = k * v.y + (1.0 - k) * v_target.y;
        v3_t a = v3(omega * (2.0 * vy + omega * r.x), omega * (omega * r.y - 2.0 * vx), 0.0);
        g[i] = l3(g[i].a[0] + dot(a, axes[0]), g[i].a[1] + dot(a, axes[1]),
                  g[i].a[2] + dot(a, axes[2]));
    }
}

static void zem_zev_ends(const double r[3], const double v[3], const l3_t g[2],
                         const double r_t[3], const double v_t[3], double t_go, l3_t *a_now,
                         l3_t *a_end)
{
    int i;
    double hh = 0.5 * t_go * t_go, k6 = 6.0 / (t_go * t_go), k2 = 2.0 / t_go, k4 = 4.0 / t_go;
    for (i = 0; i < 3; i++) {
        double zem = r_t[i] - ((r[i] + v[i] * t_go) + g[0].a[i] * hh);
        double zev = v_t[i] - (v[i] + g[1].a[i] * t_go);
        a_now->a[i] = zem * k6 - zev * k2;
        if (a_end != NULL) {
            a_end->a[i] = zev * k4 - zem * k6;
        }
    }
}

static double overload(const double r[3], const double v[3], const l3_t g[2],
                       const double r_t[3], const double v_t[3], double t_go,
                       double a_now_max, double a_end_max)
{
    l3_t a_now, a_end;
    zem_zev_ends(r, v, g, r_t, v_t, t_go, &a_now, &a_end);
    return fmax2(l3norm(a_now) / a_now_max, l3norm(a_end) / a_end_max);
}

static double solve_tgo(const double r[3], const double v[3], const l3_t g[2],
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

static int reachable(const double r[3], const double v[3], const l3_t g[2], const double r_t[3],
                     const double v_t[3], double t_go, double a_max, double floor_m,
                     double max_tilt_rad)
{
    const int steps = 16;
    l3_t ends[2];
    double cos_max = cos(max_tilt_rad), j;
    int i;
    zem_zev_ends(r, v, g, r_t, v_t, t_go, &ends[0], &ends[1]);
    for (i = 0; i < 2; i++) {
        double n = l3norm(ends[i]);
        if (n > a_max || (n > 1e-6 && ends[i].a[0] < cos_max * n)) {
            return 0;
        }
    }
    j = (ends[1].a[0] - ends[0].a[0]) / t_go;
    for (i = 1; i <= steps; i++) {
        double tau = t_go * (double)i / (double)steps;
        double h = r[0] + v[0] * tau + 0.5 * (g[0].a[0] + ends[0].a[0]) * tau * tau +
                   j * pow(tau, 3.0) / 6.0;
        if (h < floor_m) {
            return 0;
        }
    }
    return 1;
}

static v3_t vertical_descent(double alt_m, v3_t v, v3_t up, double g_mag, double last_rate_mps)
{
    double vz = dot(v, up), v_h_mag, rate, vz_des, a_up, a_h_mag, a_h_max;
    v3_t v_h = sub(v, scale(up, vz)), a_h;
    v_h_mag = norm(v_h);
    rate = clamp(0.02 * alt_m, last_rate_mps, 3.0);
    if (alt_m > 3.0) {
        rate *= clamp((HOLD_SPEED_MPS - v_h_mag) / (HOLD_SPEED_MPS - SLIDE_SPEED_MPS), 0.0, 1.0);
    }
    vz_des = -rate;
    a_up = g_mag + 1.2 * (vz_des - vz);
    a_h = scale(v_h, -0.6);
    a_h_mag = norm(a_h);
    a_h_max = (alt_m > 10.0 ? 0.3 : alt_m > 5.0 ? 0.12 : 0.05) * a_up;
    if (a_h_mag > a_h_max) {
        a_h = scale(a_h, a_h_max / a_h_mag);
    }
    return add(scale(up, a_up), a_h);
}

static v3_t land_here(double alt_m, double floor_m, v3_t v, v3_t up, double g_mag, double a_max)
{
    double vz = dot(v, up), vh, tan_tilt, a_h_cap, t_null, dh, a_stop, rate_stop, rate, a_ff;
    double a_up, a_h_mag, a_h_max;
    v3_t v_h = sub(v, scale(up, vz)), a_h;
    vh = norm(v_h);
    tan_tilt = tan(DIVERT_TILT_RAD);
    a_h_cap = fmin2(tan_tilt * g_mag, sqrt(fmax2(a_max * a_max - g_mag * g_mag, 0.0)));
    t_null = a_h_cap > 0.0 ? vh / (0.8 * a_h_cap) : 1e3;
    dh = fmax2(alt_m - floor_m, 0.0);
    a_stop = 0.5 * fmax2(a_max - g_mag, 0.1);
    rate_stop = sqrt(2.0 * a_stop * dh);
    rate = fmin2(dh / fmax2(t_null, 1.0), rate_stop);
    if (alt_m < floor_m) {
        rate = -DIVERT_HEIGHT_GAIN * (floor_m - alt_m);
    }
    a_ff = rate == rate_stop && rate > DESCENT_RATE_MPS ? a_stop : 0.0;
    if (vh < HOLD_SPEED_MPS) {
        rate = fmax2(rate, DESCENT_RATE_MPS);
    }
    a_up = clamp(g_mag + a_ff + DIVERT_RATE_GAIN * (-rate - vz), 0.0, a_max);
    a_h = scale(v_h, -DIVERT_NULL_GAIN);
    a_h_mag = norm(a_h);
    a_h_max = fmin2(tan_tilt * a_up, sqrt(fmax2(a_max * a_max - a_up * a_up, 0.0)));
    if (a_h_mag > a_h_max) {
        a_h = scale(a_h, a_h_max / a_h_mag);
    }
    return add(scale(up, a_up), a_h);
}

/* ---- control.py ------------------------------------------------------------------------ */

#define K_ANGLE 0.8
#define K_RATE 3.0
#define MAX_RATE_RADPS (15.0 * (PI / 180.0)) /* math.radians(15.0) */
#define FAR_OFF_RAD 1.0

static v3_t attitude_torque(quat_t q, v3_t w_body, v3_t d_inertial, const double inertia[3],
                            const double max_torque[3], double *angle_out)
{
    v3_t b_z = rotate(q, v3(0.0, 0.0, 1.0));
    v3_t axis = cross(b_z, d_inertial), e_i, e_b;
    double s = norm(axis);
    double angle = atan2(s, dot(b_z, d_inertial));
    double w_des[3], w_b[3], w_mag, torque[3];
    int i;
    if (s > 1e-12) {
        e_i = scale(axis, angle / s);
    } else if (angle > 1.0) {
        e_i = scale(unit(cross(b_z, v3(1.0, 0.0, 0.0))), angle);
    } else {
        e_i = v3(0.0, 0.0, 0.0);
    }
    e_b = rotate_inv(q, e_i);
    w_des[0] = K_ANGLE * e_b.x;
    w_des[1] = K_ANGLE * e_b.y;
    w_des[2] = 0.0;
    w_mag = sqrt(sq(w_des[0]) + sq(w_des[1]));
    if (w_mag > MAX_RATE_RADPS) {
        w_des[0] *= MAX_RATE_RADPS / w_mag;
        w_des[1] *= MAX_RATE_RADPS / w_mag;
    }
    w_b[0] = w_body.x;
    w_b[1] = w_body.y;
    w_b[2] = w_body.z;
    for (i = 0; i < 3; i++) {
        double t = inertia[i] * K_RATE * (w_des[i] - w_b[i]);
        torque[i] = clamp(t, -max_torque[i], max_torque[i]);
    }
    *angle_out = angle;
    return v3(torque[0], torque[1], torque[2]);
}

static double throttle_for(double a_mps2, double mass_kg, double max_thrust_n,
                           double min_throttle, double pointing_error_rad)
{
    double thr;
    if (a_mps2 <= 0.0) {
        return 0.0;
    }
    thr = a_mps2 * mass_kg / max_thrust_n;
    if (pointing_error_rad > FAR_OFF_RAD) {
        thr = min_throttle;
    }
    return clamp(thr, min_throttle, 1.0);
}

/* ---- core.py --------------------------------------------------------------------------- */

enum { PH_BRAKING, PH_APPROACH, PH_FINAL, PH_VERTICAL, PH_DIVERT };
static const int PHASE_MODE[5] = {FSIL_MODE_BRAKING, FSIL_MODE_APPROACH, FSIL_MODE_TERMINAL,
                                  FSIL_MODE_TERMINAL, FSIL_MODE_SAFE};
/* Aim points: height, downrange, up speed, downrange speed (braking, approach, final). */
static const double GATES[3][4] = {{2100.0, -8000.0, -40.0, 110.0},
                                   {150.0, -600.0, -2.0, 12.0},
                                   {45.0, 0.0, -1.0, 0.0}};
#define HIGH_GATE GATES[PH_BRAKING]
#define LOW_GATE GATES[PH_APPROACH]
#define TERMINAL_GATE GATES[PH_FINAL]
#define BRAKING_THRUST_FRACTION 0.85
#define APPROACH_THRUST_FRACTION 0.9
#define GUARD_RANGE_M 400.0
#define STOP_THRUST_FRACTION 0.5
#define BLIND_MARGIN_M 100.0
#define BLIND_MAX_RATE_MPS 1.6
#define BLIND_PROPELLANT_USE 0.8
#define REPLAN_JUMP_M 50.0
#define REPLAN_VEL_MPS 5.0
#define REPLAN_BRAKING_JUMP_M 1000.0
#define NEAR_SITE_M 1000.0
#define BLEND_M 2000.0
#define SITE_MAX_TILT_RAD 1.05
#define BRAKING_RESOLVE_US 15000000 /* int(BRAKING_RESOLVE_S * 1e6) */
#define CONTACT_AGL_M 5.0
#define CONTACT_ACCEL_MPS2 0.5
#define CONTACT_FRAMES 2
#define THRUST_SCALE_TAU_S 5.0
#define PHASE_END_TGO_S 3.0

static double a_full_m(const lander_t *L, double fraction, double m)
{
    return fraction * L->thrust_scale * L->max_thrust_n / m;
}
static double a_full(const lander_t *L, double fraction) { return a_full_m(L, fraction, L->mass_kg); }

static int blind(const lander_t *L)
{
    return !height_healthy(&L->nav) && (L->nav.alt_overdue || !L->nav.alt_ever_valid);
}

static double blind_sigma3(const lander_t *L)
{
    double s = agl_sigma_m(&L->nav);
    if (!L->nav.alt_ever_valid && !L->nav.have_beam_accept) {
        s += overdue_sigma_m(&L->nav);
    }
    return 3.0 * s;
}

static double blind_margin(const lander_t *L)
{
    if (!blind(L)) {
        return 0.0;
    }
    return 3.0 * agl_sigma_m(&L->nav) + BLIND_MARGIN_M;
}

static double gate_height_m(const lander_t *L, int phase) { return GATES[phase][0] + blind_margin(L); }

/* Guidance state in the site frame; heights above the ground near the site. */
static void local_state(const lander_t *L, double pos[3], double vel[3], v3_t axes[3])
{
    const lander_nav_t *nav = &L->nav;
    double agl = agl_m(nav);
    if (!L->have_phase ||
        !(L->phase.name == PH_FINAL || L->phase.name == PH_VERTICAL || L->phase.name == PH_DIVERT)) {
        double down = nav->ground_m[0], cr = nav->ground_m[1];
        double d = sqrt(down * down + cr * cr);
        agl += clamp((d - NEAR_SITE_M) / BLEND_M, 0.0, 1.0) * nav->terrain_m;
    }
    site_local(L, nav->d, nav->v, agl, pos, vel, axes);
}

static void start_phase(lander_t *L, int name, int divert_free)
{
    lander_phase_t ph;
    const lander_nav_t *nav = &L->nav;
    memset(&ph, 0, sizeof ph);
    ph.name = name;
    ph.divert_free = divert_free;
    if (name != PH_VERTICAL && name != PH_DIVERT) {
        const double *gate = GATES[name];
        ph.r_t[0] = gate[0];
        ph.r_t[1] = gate[1];
        ph.r_t[2] = 0.0;
        ph.v_t[0] = gate[2];
        ph.v_t[1] = gate[3];
        ph.v_t[2] = 0.0;
        ph.t_go = 0.0; /* braking: solved on the first step */
        if (name != PH_BRAKING) {
            double pos[3], vel[3], v_h, t_h, t_v, t_go, a_max;
            v3_t axes[3];
            l3_t g[2];
            local_state(L, pos, vel, axes); /* with the phase before this one */
            v_h = sqrt(vel[1] * vel[1] + vel[2] * vel[2]);
            t_h = 2.0 * fabs(ph.r_t[1] - pos[1]) / fmax2(v_h + fabs(ph.v_t[1]), 1.0);
            t_v = 2.0 * fmax2(0.0, pos[0] - ph.r_t[0]) / fmax2(fabs(vel[0]) + fabs(ph.v_t[0]), 1.0);
            t_go = clamp(fmax2(t_h, t_v), 20.0, 300.0);
            down_gravity(norm(nav_r(nav)), 0.0, 0.0, g);
            a_max = a_full(L, APPROACH_THRUST_FRACTION);
            t_go = fmax2(t_go, solve_tgo(pos, vel, g, ph.r_t, ph.v_t, a_max, a_max, 3.0, 1500.0));
            ph.t_go = t_go;
        }
    }
    L->phase = ph;
    L->have_phase = 1;
}

static void replan(lander_t *L)
{
    double pos[3], vel[3], v_h, a_max;
    v3_t axes[3];
    l3_t g[2];
    lander_phase_t *ph;
    if (L->have_phase && L->phase.divert_free) {
        return;
    }
    start_phase(L, PH_APPROACH, 0);
    L->mode = FSIL_MODE_APPROACH;
    ph = &L->phase;
    local_state(L, pos, vel, axes);
    v_h = sqrt(vel[1] * vel[1] + vel[2] * vel[2]);
    down_gravity(norm(nav_r(&L->nav)), v_h, fabs(ph->v_t[1]), g);
    a_max = a_full(L, APPROACH_THRUST_FRACTION);
    if (!reachable(pos, vel, g, ph->r_t, ph->v_t, ph->t_go, a_max, 0.5 * ph->r_t[0],
                   SITE_MAX_TILT_RAD)) {
        start_phase(L, PH_DIVERT, 1);
        L->mode = FSIL_MODE_SAFE;
    }
}

static int velocity_jumped(lander_t *L)
{
    lander_vel_t *vn = &L->vel;
    if (!vn->on || norm(vn->correction) < REPLAN_VEL_MPS) {
        return 0;
    }
    vn->correction = v3(0.0, 0.0, 0.0);
    return 1;
}

static void update_mass(lander_t *L, double dt)
{
    double cmd = L->throttle_cmd;
    if (L->throttle_tau_s > 0.0) {
        L->throttle_est += (cmd - L->throttle_est) * fmin2(1.0, dt / L->throttle_tau_s);
    } else {
        L->throttle_est = cmd;
    }
    L->mass_kg -= L->max_thrust_n * L->throttle_est / L->exhaust_mps * dt;
}

static void update_thrust_scale(lander_t *L, double dt)
{
    double est = L->throttle_est, cmd = L->throttle_cmd, ratio;
    if (est < L->min_throttle + 0.05 || fabs(cmd - est) > 0.01 || dt <= 0.0) {
        return;
    }
    ratio = L->nav.specific_force_mps2 / (est * L->max_thrust_n / L->mass_kg);
    ratio = clamp(ratio, 0.5, 1.5);
    L->thrust_scale += (ratio - L->thrust_scale) * fmin2(1.0, dt / THRUST_SCALE_TAU_S);
}

static void detect_contact(lander_t *L)
{
    double excess;
    if (L->mode == FSIL_MODE_TOUCHDOWN || !L->have_phase || L->phase.name != PH_VERTICAL) {
        return;
    }
    if (agl_m(&L->nav) > CONTACT_AGL_M + (blind(L) ? blind_sigma3(L) : 0.0)) {
        L->contact = 0;
        return;
    }
    excess = L->nav.specific_force_mps2 - a_full(L, L->throttle_est);
    L->contact = excess > CONTACT_ACCEL_MPS2 ? L->contact + 1 : 0;
    if (L->contact >= CONTACT_FRAMES) {
        L->mode = FSIL_MODE_TOUCHDOWN;
    }
}

static int entry_phase(lander_t *L)
{
    const lander_nav_t *nav = &L->nav;
    double v_h = norm(sub(nav->v, scale(nav_up(nav), vertical_speed_mps(nav))));
    int name;
    if (v_h > 300.0) {
        name = PH_BRAKING;
    } else if (agl_m(nav) > LOW_GATE[0]) {
        name = PH_APPROACH;
    } else if (agl_m(nav) > TERMINAL_GATE[0]) {
        name = PH_FINAL;
    } else {
        name = PH_VERTICAL;
    }
    start_phase(L, name, 0);
    return PHASE_MODE[name];
}

static void update_mode(lander_t *L, int64_t t_us)
{
    lander_nav_t *nav = &L->nav;
    if (L->mode == FSIL_MODE_INIT) {
        L->mode = t_us < L->ignition_t_us ? FSIL_MODE_COAST : entry_phase(L);
    } else if (L->mode == FSIL_MODE_COAST && t_us >= L->ignition_t_us) {
        finish_calibration(nav);
        L->mode = entry_phase(L);
    }
    if (L->have_phase) {
        const lander_phase_t *ph = &L->phase;
        int nxt = -1;
        if (ph->name == PH_BRAKING && L->braking_solved && ph->t_go <= PHASE_END_TGO_S) {
            nxt = PH_APPROACH;
        } else if (ph->name == PH_APPROACH &&
                   (ph->t_go <= PHASE_END_TGO_S ||
                    agl_m(nav) < gate_height_m(L, PH_APPROACH) * 0.5)) {
            nxt = PH_FINAL;
        } else if (ph->name == PH_FINAL &&
                   (ph->t_go <= PHASE_END_TGO_S || agl_m(nav) < gate_height_m(L, PH_FINAL))) {
            nxt = PH_VERTICAL;
        } else if (ph->name == PH_DIVERT) {
            double floor_m = gate_height_m(L, PH_FINAL);
            v3_t up = nav_up(nav);
            double v_h = norm(sub(nav->v, scale(up, dot(nav->v, up))));
            if ((agl_m(nav) < floor_m + 5.0 && v_h < HOLD_SPEED_MPS) || agl_m(nav) < 0.5 * floor_m) {
                nxt = PH_VERTICAL;
            }
        }
        if (nxt >= 0) {
            start_phase(L, nxt, ph->divert_free);
        }
    }
    if (L->have_phase && L->mode != FSIL_MODE_TOUCHDOWN) {
        L->mode = PHASE_MODE[L->phase.name];
    }
}

static void solve_braking_tgo(lander_t *L, const double pos[3], const double vel[3],
                              const l3_t g[2])
{
    lander_phase_t *ph = &L->phase;
    double a_now = a_full(L, BRAKING_THRUST_FRACTION);
    l3_t dvv = l3(ph->v_t[0] - vel[0], ph->v_t[1] - vel[1], ph->v_t[2] - vel[2]);
    double dv = l3norm(dvv) + 1.62 * 60.0;
    double m_end = L->mass_kg * exp(-dv / L->exhaust_mps);
    double a_end = a_full_m(L, BRAKING_THRUST_FRACTION, m_end);
    ph->t_go = solve_tgo(pos, vel, g, ph->r_t, ph->v_t, a_now, a_end, 5.0, 1500.0);
}

static v3_t zem_zev_step(lander_t *L, int64_t t_us, double dt)
{
    lander_nav_t *nav = &L->nav;
    lander_phase_t *ph = &L->phase;
    double pos[3], vel[3], v_h, t_go;
    v3_t axes[3];
    l3_t g[2], a_local;
    local_state(L, pos, vel, axes);
    if (ph->name != PH_BRAKING) {
        ph->r_t[0] = gate_height_m(L, ph->name);
    }
    v_h = sqrt(vel[1] * vel[1] + vel[2] * vel[2]);
    down_gravity(norm(nav_r(nav)), v_h, fabs(ph->v_t[1]), g);
    if (L->omega != 0.0) {
        with_frame_terms(g, L->omega, nav_r(nav), nav->v, to_frame(ph->v_t, axes), axes);
    }
    ph->t_go -= dt;
    if (ph->name == PH_BRAKING &&
        (!L->braking_solved || (L->braking_resolve_us != 0 && t_us >= L->braking_resolve_us))) {
        if (!L->braking_solved) {
            L->braking_resolve_us = t_us + BRAKING_RESOLVE_US;
        } else {
            L->braking_resolve_us = 0;
        }
        if (!L->braking_solved || fabs(L->thrust_scale - 1.0) > 0.02) {
            solve_braking_tgo(L, pos, vel, g);
        }
        L->braking_solved = 1;
    }
    t_go = fmax2(ph->t_go, PHASE_END_TGO_S);
    zem_zev_ends(pos, vel, g, ph->r_t, ph->v_t, t_go, &a_local, NULL);
    if (ph->name == PH_BRAKING && pos[0] > 2.0 * ph->r_t[0]) { /* well above high gate */
        arrest_climb(&a_local, vel[0], norm(nav_r(nav)), dot(nav->v, nav->v));
    } else if (ph->name != PH_BRAKING) {
        tilt_cone(&a_local);
    }
    return to_frame(a_local.a, axes);
}

static v3_t blind_descent(const lander_t *L)
{
    const lander_nav_t *nav = &L->nav;
    double g = norm(gravity(nav_r(nav)));
    double s3 = blind_sigma3(L);
    double h = agl_m(nav);
    double prop = fmax2(0.0, L->mass_kg - L->dry_mass_kg);
    double mdot = L->mass_kg * g / L->exhaust_mps;
    double t_avail = BLIND_PROPELLANT_USE * prop / fmax2(mdot, 1e-6);
    double span = s3 + fmin2(fmax2(h, 0.0), s3);
    double rate = clamp(span / fmax2(t_avail, 1.0), DESCENT_RATE_MPS, BLIND_MAX_RATE_MPS);
    return vertical_descent(fmax2(0.0, h - s3), nav->v, nav_up(nav), g, rate);
}

static v3_t limit_descent(const lander_t *L, v3_t a_thr)
{
    const lander_nav_t *nav = &L->nav;
    v3_t up = nav_up(nav);
    double g = norm(gravity(nav_r(nav)));
    double a_stop = a_full(L, STOP_THRUST_FRACTION) - g;
    double sigma, v_cap, vz, a_up, a_up_min;
    if (a_stop <= 0.0) {
        return a_thr;
    }
    sigma = agl_sigma_m(nav) + overdue_sigma_m(nav);
    v_cap = sqrt(2.0 * a_stop * fmax2(GUARD_RANGE_M, agl_m(nav) - 3.0 * sigma));
    vz = vertical_speed_mps(nav);
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

void lander_step(lander_t *L, const fsil_frame_t *frame, fsil_command_t *cmd)
{
    lander_nav_t *nav = &L->nav;
    int64_t t_us = frame->t_us;
    double dt = (double)(t_us - L->last_t_us) * 1e-6;
    double h_before, jump, a_mag, err_rad, throttle = 0.0;
    int have_thrust = 0, mode;
    v3_t a_thr = v3(0.0, 0.0, 0.0), direction, torque, r, v, r_i, v_i;
    uint32_t flags = 0;
    L->last_t_us = t_us;
    ground(L, nav->d, &nav->ground_m[0], &nav->ground_m[1]);
    nav_propagate(nav, &frame->imu, L->mode == FSIL_MODE_INIT || L->mode == FSIL_MODE_COAST);
    if (nav->st_on) {
        fuse_star_tracker(nav, &frame->att);
    }
    h_before = altitude_m(nav);
    fuse_altimeter(nav, &frame->alt);
    if (L->vel.on) {
        vel_propagate(&L->vel, dt, nav->process_accel_mps2, nav);
        vel_fuse(&L->vel, nav, &frame->vel);
    }
    update_mass(L, dt);
    update_thrust_scale(L, dt);
    update_mode(L, t_us);
    jump = fabs(altitude_m(nav) - h_before);
    if (L->mode == FSIL_MODE_APPROACH ||
        (L->mode == FSIL_MODE_BRAKING &&
         (agl_m(nav) < 1.2 * HIGH_GATE[0] || jump > REPLAN_BRAKING_JUMP_M))) {
        if (jump > REPLAN_JUMP_M) {
            replan(L);
        } else if (velocity_jumped(L)) {
            replan(L);
        }
    }

    detect_contact(L);
    if (L->mode == FSIL_MODE_TOUCHDOWN) {
        L->hold_dir = rotate(nav->q, v3(0.0, 0.0, 1.0));
    } else if (L->have_phase && L->phase.name == PH_DIVERT) {
        a_thr = land_here(agl_m(nav), gate_height_m(L, PH_FINAL), nav->v, nav_up(nav),
                          norm(gravity(nav_r(nav))), a_full(L, APPROACH_THRUST_FRACTION));
        have_thrust = 1;
    } else if (L->have_phase && L->phase.name != PH_VERTICAL) {
        a_thr = zem_zev_step(L, t_us, dt);
        have_thrust = 1;
    } else if (L->mode == FSIL_MODE_TERMINAL && blind(L)) {
        a_thr = blind_descent(L);
        have_thrust = 1;
    } else if (L->mode == FSIL_MODE_TERMINAL) {
        a_thr = vertical_descent(fmax2(0.0, agl_m(nav) - blind_margin(L)), nav->v, nav_up(nav),
                                 norm(gravity(nav_r(nav))), L->last_rate_mps);
        have_thrust = 1;
    }
    if (have_thrust && nav->alt_overdue) {
        a_thr = limit_descent(L, a_thr);
    }
    if (have_thrust && L->vel.on && L->vel.healthy) {
        a_thr = sub(a_thr, L->vel.accel);
    }

    if (!have_thrust) {
        direction = L->hold_dir;
        a_mag = 0.0;
    } else {
        a_mag = norm(a_thr);
        direction = a_mag > 1e-6 ? unit(a_thr) : L->hold_dir;
        L->hold_dir = direction;
    }
    torque = attitude_torque(nav->q, nav->last_rate_body, direction, L->inertia, L->max_torque,
                             &err_rad);
    if (have_thrust) {
        throttle = throttle_for(a_mag, L->mass_kg, L->max_thrust_n * L->thrust_scale,
                                L->min_throttle, err_rad);
    }
    L->throttle_cmd = throttle;
    mode = L->mode;
    if (L->have_phase && L->phase.divert_free && mode != FSIL_MODE_TOUCHDOWN) {
        mode = FSIL_MODE_SAFE;
    } else if (mode == FSIL_MODE_TERMINAL && blind(L)) {
        mode = FSIL_MODE_SAFE;
    }
    cmd->throttle = throttle;
    cmd->torque_nm[0] = torque.x;
    cmd->torque_nm[1] = torque.y;
    cmd->torque_nm[2] = torque.z;
    cmd->mode = (uint32_t)mode;
    /* the estimate for the telemetry: MCI position and velocity, height */
    r = nav_r(nav);
    v = add(nav->v, v3(-nav->omega * r.y, nav->omega * r.x, 0.0));
    r_i = to_inertial(nav, r);
    v_i = to_inertial(nav, v);
    cmd->nav.present = true;
    cmd->nav.v[0] = r_i.x;
    cmd->nav.v[1] = r_i.y;
    cmd->nav.v[2] = r_i.z;
    cmd->nav.v[3] = v_i.x;
    cmd->nav.v[4] = v_i.y;
    cmd->nav.v[5] = v_i.z;
    cmd->nav.v[6] = agl_m(nav);
    if (nav->alt_used) {
        flags |= FSIL_FLAG_ALT_USED;
    }
    if (nav->alt_rejected) {
        flags |= FSIL_FLAG_ALT_REJECTED;
    }
    if (nav->alt_healthy) {
        flags |= FSIL_FLAG_ALT_HEALTHY;
    }
    if (L->vel.on) {
        flags |= (L->vel.used ? FSIL_FLAG_VEL_USED : 0u) |
                 (L->vel.rejected ? FSIL_FLAG_VEL_REJECTED : 0u) |
                 (L->vel.healthy ? FSIL_FLAG_VEL_HEALTHY : 0u);
    }
    if (nav_cov_fault(nav) || (L->vel.on && psd_fault(L->vel.P, VN))) {
        flags |= FSIL_FLAG_NAV_COV_FAULT;
    }
    cmd->flags = flags;
}

/* ---- set-up from HELLO ----------------------------------------------------------------- */

/* The value at path, if present and not nil (Python's config.get(...) is not None). */
static int present(fsil_map_t map, const char *path, fsil_mpr_t *value)
{
    fsil_error_t ignored;
    fsil_mpr_t r, peek;
    fsil_mp_obj_t o;
    if (fsil_map_find(map, path, &r, &ignored) != FSIL_OK) {
        return 0;
    }
    peek = r;
    if (fsil_mpr_next(&peek, &o) != FSIL_MP_OK || o.type == FSIL_MP_NIL) {
        return 0;
    }
    if (value != NULL) {
        *value = r;
    }
    return 1;
}

/* A map that is present and not empty (Python: truthy); FSIL_OK with *out set, or 0 if not. */
static int nonempty_map(fsil_map_t config, const char *path, fsil_map_t *out)
{
    fsil_mpr_t r, peek;
    fsil_mp_obj_t o;
    fsil_error_t ignored;
    if (!present(config, path, &r)) {
        return 0;
    }
    peek = r;
    if (fsil_mpr_next(&peek, &o) != FSIL_MP_OK || o.type != FSIL_MP_MAP || o.n == 0) {
        return 0;
    }
    return fsil_map_get_map(config, path, out, &ignored) == FSIL_OK;
}

/* A number at path, or dflt where it is absent (or nil). */
static fsil_err_t get_opt(fsil_map_t map, const char *path, double dflt, double *out,
                          fsil_error_t *err)
{
    if (!present(map, path, NULL)) {
        *out = dflt;
        return FSIL_OK;
    }
    return fsil_map_get_f64(map, path, out, err);
}

static fsil_err_t get_v3(fsil_map_t map, const char *path, v3_t *out, fsil_error_t *err)
{
    double a[3];
    fsil_err_t st = fsil_map_get_f64s(map, path, a, 3, err);
    *out = v3(a[0], a[1], a[2]);
    return st;
}

/* velocimeter.beams_body: three [x, y, z]. */
static fsil_err_t get_beams(fsil_map_t vel, v3_t beams[3], fsil_error_t *err)
{
    fsil_mpr_t r;
    fsil_mp_obj_t o;
    int i, j;
    fsil_err_t st = fsil_map_find(vel, "beams_body", &r, err);
    if (st != FSIL_OK) {
        return st;
    }
    if (fsil_mpr_next(&r, &o) != FSIL_MP_OK || o.type != FSIL_MP_ARRAY || o.n != 3) {
        return fsil_error_set(err, FSIL_ERR_MALFORMED,
                              "velocimeter.beams_body: expected 3 arrays of 3 numbers");
    }
    for (i = 0; i < 3; i++) {
        double a[3];
        if (fsil_mpr_next(&r, &o) != FSIL_MP_OK || o.type != FSIL_MP_ARRAY || o.n != 3) {
            return fsil_error_set(err, FSIL_ERR_MALFORMED,
                                  "velocimeter.beams_body: expected 3 arrays of 3 numbers");
        }
        for (j = 0; j < 3; j++) {
            if (fsil_mpr_next(&r, &o) != FSIL_MP_OK) {
                o.type = FSIL_MP_NIL;
            }
            if (o.type == FSIL_MP_FLOAT) {
                a[j] = o.f;
            } else if (o.type == FSIL_MP_INT) {
                a[j] = o.negative ? (double)o.i : (double)o.u;
            } else {
                return fsil_error_set(err, FSIL_ERR_MALFORMED,
                                      "velocimeter.beams_body: expected 3 arrays of 3 numbers");
            }
        }
        beams[i] = unit(v3(a[0], a[1], a[2]));
    }
    return FSIL_OK;
}

/* nav.py _imu_noise: the process noise from the HELLO imu block (tactical if none). */
static fsil_err_t imu_noise(lander_nav_t *n, fsil_map_t config, fsil_error_t *err)
{
    static const char *const KEYS[10] = {
        "gyro_bias_radps", "gyro_bias_instability_radps", "gyro_arw_rad_per_sqrt_s",
        "gyro_scale", "accel_bias_mps2", "accel_bias_instability_mps2",
        "accel_vrw_mps_per_sqrt_s", "accel_scale", "misalignment_rad", "bias_correlation_time_s"};
    static const double TACTICAL[10] = {2.4e-6, 2.4e-6, 4.4e-5, 5e-5, 4.9e-4,
                                        4.9e-4, 1e-3,   5e-5,   5e-5, 300.0};
    double g[10], tau, turn2;
    fsil_map_t imu;
    int k;
    if (nonempty_map(config, "imu", &imu)) {
        for (k = 0; k < 10; k++) {
            fsil_err_t st = get_opt(imu, KEYS[k], 0.0, &g[k], err);
            if (st != FSIL_OK) {
                return st;
            }
        }
    } else {
        memcpy(g, TACTICAL, sizeof g);
    }
    /* g: 0 gyro_bias, 1 gyro_bias_instability, 2 gyro_arw, 3 gyro_scale, 4 accel_bias,
     * 5 accel_bias_instability, 6 accel_vrw, 7 accel_scale, 8 misalignment, 9 tau */
    tau = fmax2(g[9], 1.0);
    turn2 = (sq(g[3]) + sq(g[8])) * sq(DESCENT_TURN_RAD);
    n->q_tilt = sq(g[2]);
    n->q_drift = 2.0 * sq(g[1]) / tau;
    n->accel_scale = g[7];
    n->q_accel_bias = sq(g[5]) * tau;
    n->q_vrw = sq(g[6]);
    n->accel_tau_s = tau;
    n->tilt_turn2 = turn2;
    n->drift_instab2 = sq(g[1]);
    n->P[3 * NN + 3] = 0.0 * 0.0 + turn2; /* att_sigma_rad = 0 */
    n->P[4 * NN + 4] = sq(g[0]) + sq(g[1]);
    return FSIL_OK;
}

fsil_err_t lander_init(lander_t *L, fsil_map_t config, fsil_error_t *err)
{
    double isp, prop, q4[4], pos_sigma, vel_sigma, alt_noise_m, alt_noise_fraction;
    int64_t t0_us;
    v3_t r0, v0, bore, up0;
    fsil_map_t velmap, stmap;
    fsil_err_t st = FSIL_OK;
    lander_nav_t *n = &L->nav;
    memset(L, 0, sizeof *L);
#define GET(call) do { if (st == FSIL_OK) { st = (call); } } while (0)
    GET(fsil_map_get_f64(config, "vehicle.max_thrust_n", &L->max_thrust_n, err));
    GET(fsil_map_get_f64(config, "vehicle.min_throttle", &L->min_throttle, err));
    GET(fsil_map_get_f64(config, "vehicle.isp_s", &isp, err));
    GET(fsil_map_get_f64s(config, "vehicle.inertia_kgm2", L->inertia, 3, err));
    GET(fsil_map_get_f64s(config, "vehicle.max_torque_nm", L->max_torque, 3, err));
    GET(get_opt(config, "vehicle.throttle_time_constant_s", 0.1, &L->throttle_tau_s, err));
    GET(fsil_map_get_f64(config, "vehicle.dry_mass_kg", &L->dry_mass_kg, err));
    GET(fsil_map_get_f64(config, "vehicle.propellant_kg", &prop, err));
    GET(get_v3(config, "site.up", &L->site_up, err));
    GET(get_v3(config, "site.east", &L->site_east, err));
    GET(fsil_map_get_f64(config, "site.radius_m", &L->site_radius_m, err));
    GET(get_opt(config, "moon.rotation_rad_s", 0.0, &L->omega, err));
    GET(get_v3(config, "nav_init.r_m", &r0, err));
    GET(get_v3(config, "nav_init.v_mps", &v0, err));
    GET(fsil_map_get_f64s(config, "nav_init.q", q4, 4, err));
    GET(fsil_map_get_i64(config, "nav_init.t_us", &t0_us, err));
    GET(fsil_map_get_f64(config, "nav_init.pos_sigma_m", &pos_sigma, err));
    GET(fsil_map_get_f64(config, "nav_init.vel_sigma_mps", &vel_sigma, err));
    GET(fsil_map_get_f64(config, "altimeter.noise_m", &alt_noise_m, err));
    GET(fsil_map_get_f64(config, "altimeter.noise_fraction", &alt_noise_fraction, err));
    GET(get_v3(config, "altimeter.boresight_body", &bore, err));
    GET(fsil_map_get_i64(config, "ignition_t_us", &L->ignition_t_us, err));
#undef GET
    if (st != FSIL_OK) {
        return st;
    }
    if (!(L->max_thrust_n > 0.0 && isp > 0.0 && L->dry_mass_kg + prop > 0.0 &&
          L->site_radius_m > 0.0 && norm(L->site_up) > 0.0 && norm(L->site_east) > 0.0 &&
          norm(bore) > 0.0 && q4[0] * q4[0] + q4[1] * q4[1] + q4[2] * q4[2] + q4[3] * q4[3] > 0.0 &&
          norm(r0) > L->site_radius_m * 0.5 && fabs(L->omega) < 1e-2)) {
        return fsil_error_set(err, FSIL_ERR_MALFORMED,
                              "config: a zero or negative thrust, Isp, mass or radius, a zero "
                              "direction or quaternion, or a position inside the Moon");
    }
    L->exhaust_mps = isp * G0_MPS2;
    L->mass_kg = L->dry_mass_kg + prop;
    L->thrust_scale = 1.0;
    /* guidance.SiteGeometry */
    L->site_up = unit(L->site_up);
    L->site_east = unit(L->site_east);
    L->site_north = cross(L->site_up, L->site_east);

    /* nav.Navigator (default variant); r, v, q are MCI at t0, the state Moon-fixed */
    n->omega = L->omega;
    n->t_us = t0_us;
    n->q_i = qnormalize(quat(q4[0], q4[1], q4[2], q4[3]));
    nav_turn(n, t0_us);
    v0 = sub(v0, v3(-n->omega * r0.y, n->omega * r0.x, 0.0));
    up0 = L->site_up; /* vec.unit(site["up"]), as SiteGeometry's */
    n->site_up = up0;
    n->origin = scale(up0, L->site_radius_m);
    n->d = sub(to_fixed(n, r0), n->origin);
    n->v = to_fixed(n, v0);
    n->site_radius_m = L->site_radius_m;
    n->alt_noise_m = alt_noise_m;
    n->alt_noise_fraction = alt_noise_fraction;
    n->boresight = unit(bore);
    n->P[0] = pos_sigma * pos_sigma;
    n->P[NN + 1] = vel_sigma * vel_sigma;
    n->P[2 * NN + 2] = sq(MAP_SIGMA_SITE_M);
    st = imu_noise(n, config, err);
    if (st != FSIL_OK) {
        return st;
    }
    n->process_accel_mps2 = ACCEL_NOISE_MPS2;
    n->alt_last_t_us = -1;
    n->last_range_m = -1.0;
    n->hist[0].t_us = t0_us;
    n->hist[0].q = n->q;
    n->hist[0].dv_acc = v3(0.0, 0.0, 0.0);
    n->n_hist = 1;

    /* velnav.VelocimeterFilter, with a (non-empty) velocimeter block */
    if (nonempty_map(config, "velocimeter", &velmap)) {
        lander_vel_t *f = &L->vel;
        double noise;
        st = get_beams(velmap, f->beams, err);
        if (st == FSIL_OK) {
            st = get_opt(velmap, "velocity_noise_mps", 0.05, &noise, err);
        }
        if (st == FSIL_OK) {
            st = get_opt(velmap, "range_noise_m", 2.0, &f->range_noise_m, err);
        }
        if (st == FSIL_OK) {
            st = get_opt(velmap, "range_noise_fraction", 0.0, &f->range_noise_fraction, err);
        }
        if (st != FSIL_OK) {
            return st;
        }
        f->on = 1;
        f->noise_mps = fmax2(noise, 1e-3);
        vel_prior(f);
        f->last_t_us = -1;
    }

    /* nav.use_star_tracker, with a (non-empty) star_tracker block */
    if (nonempty_map(config, "star_tracker", &stmap)) {
        double rate_hz;
        st = fsil_map_get_f64(stmap, "rate_hz", &rate_hz, err);
        if (st != FSIL_OK) {
            return st;
        }
        if (!(rate_hz > 0.0)) {
            return fsil_error_set(err, FSIL_ERR_MALFORMED,
                                  "config: star_tracker.rate_hz must be > 0");
        }
        double cross_sigma, roll_sigma, kg;
        v3_t st_bore;
        st = fsil_map_get_f64(stmap, "cross_sigma_rad", &cross_sigma, err);
        if (st == FSIL_OK) {
            st = fsil_map_get_f64(stmap, "roll_sigma_rad", &roll_sigma, err);
        }
        if (st == FSIL_OK) {
            st = get_v3(config, "star_tracker.boresight_body", &st_bore, err);
        }
        if (st == FSIL_OK) {
            st = fsil_map_get_f64(stmap, "max_rate_radps", &n->st_max_rate_radps, err);
        }
        if (st != FSIL_OK) {
            return st;
        }
        n->st_on = 1;
        n->gyro_bias = v3(0.0, 0.0, 0.0);
        n->st_period_s = 1.0 / rate_hz;
        n->st_boresight = unit(st_bore);
        kg = ST_STEP_SIGMAS * sqrt(2.0);
        n->st_gate_cross = kg * cross_sigma + ST_STEP_FLOOR_RAD;
        n->st_gate_roll = kg * roll_sigma + ST_STEP_FLOOR_RAD;
    }
    n->st_last_t_us = -1;

    L->mode = FSIL_MODE_INIT;
    L->last_t_us = t0_us;
    L->hold_dir = rotate(n->q, v3(0.0, 0.0, 1.0));
    L->last_rate_mps = DESCENT_RATE_MPS;
    return FSIL_OK;
}
