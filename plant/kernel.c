/* The plant's kernel in C: plant/kernel.py's fly(), line for line, for plant/ckernel.py.
 *
 * The same operations in the same order as the numba kernel (and so as the pure-Python
 * path, bit for bit): built with -ffp-contract=off and without fast-math, so that no
 * multiply-add is fused and nothing is reassociated; the quaternion's squares through the
 * C library's pow() with the exponent read from p[] (as CPython's float power), sqrt()
 * correctly rounded, round-half-even through rint(). The layout of io, p and out is that of
 * the index constants in plant/kernel_layout.py (the Python side checks the shapes). */

#include <math.h>

enum {
    P_DT = 0, P_DT_US = 1, P_IXX = 2, P_IYY = 3, P_IZZ = 4, P_FMAX = 5, P_VE = 6, P_DRY = 7,
    P_MGM = 8, P_TAU = 9, P_TWO = 10, P_SPI = 11, P_SAT = 12, P_QUANT = 13, P_LIMIT = 14,
    P_QUANTUM = 20,
    IO_ACC = 15, IO_CARRY = 19, IO_STEP = 25, IO_ROW = 26, IO_THR = 27, IO_TQ = 28,
    O_IMU = 15, O_TRUE = 22, O_STEP = 28, N_OUT = 29
};

/* Up to n physics steps (n < 2**31); returns the steps done + 2**32 * the IMU samples taken.
 * imu_a: 6 x 3, row-major; imu_err: rows x 6, row-major; out: at least n rows of N_OUT. */
long long fsil_plant_fly(double *io, int n, const double *p, const double *imu_a,
                         const double *imu_err, int rows, double *out)
{
    const double dt_s = p[P_DT];
    const double dt_us = p[P_DT_US];
    const double thr_target = io[IO_THR];
    const double tqx = io[IO_TQ], tqy = io[IO_TQ + 1], tqz = io[IO_TQ + 2];
    const double ixx = p[P_IXX], iyy = p[P_IYY], izz = p[P_IZZ];
    const double c_x = izz - iyy, c_y = ixx - izz, c_z = iyy - ixx;
    const double fmax = p[P_FMAX], ve = p[P_VE], dry = p[P_DRY], mgm = p[P_MGM];
    const double tau = p[P_TAU];
    const double two = p[P_TWO];
    const int lagged = tau > 0.0;
    const double h6 = dt_s / 6.0;
    const long spi = (long)p[P_SPI];
    long step = (long)io[IO_STEP];
    long row = (long)io[IO_ROW];
    const int saturates = p[P_SAT] != 0.0;
    const int quantised = p[P_QUANT] != 0.0;
    double acc_v = io[IO_ACC], acc_x = io[IO_ACC + 1], acc_y = io[IO_ACC + 2];
    double acc_z = io[IO_ACC + 3];
    double x0 = io[0], y0 = io[1], z0 = io[2];
    double vx0 = io[3], vy0 = io[4], vz0 = io[5];
    double qw0 = io[6], qx0 = io[7], qy0 = io[8], qz0 = io[9];
    double wx0 = io[10], wy0 = io[11], wz0 = io[12], m0 = io[13], thr0 = io[14];
    long done = 0, samples = 0;
    for (int j = 0; j < n; j++) {
        const int sample = (step + 1) % spi == 0;
        if (sample && row >= rows)
            break;
        if (!lagged)
            thr0 = thr_target;
        /* --- one RK4 step ---------------------------------------------------------------- */
        double x = x0, y = y0, z = z0, vx = vx0, vy = vy0, vz = vz0;
        double qw = qw0, qx = qx0, qy = qy0, qz = qz0, wx = wx0, wy = wy0, wz = wz0;
        double m = m0, thr = thr0;
        double sx = 0.0, sy = 0.0, sz = 0.0, svx = 0.0, svy = 0.0, svz = 0.0;
        double sqw = 0.0, sqx = 0.0, sqy = 0.0, sqz = 0.0;
        double swx = 0.0, swy = 0.0, swz = 0.0, sm = 0.0, sthr = 0.0, sa = 0.0;
        double sdx = 0.0, sdy = 0.0, sdz = 0.0;
        for (int stage = 0; stage < 4; stage++) {
            const double weight = (stage == 0 || stage == 3) ? 1.0 : 2.0;
            const double r2 = x * x + y * y + z * z;
            const double gk = mgm / (r2 * sqrt(r2));
            const double thrust = (m > dry && thr > 0.0) ? fmax * thr : 0.0;
            const double a_thr = thrust / m;
            const double zx = 2.0 * (qx * qz + qw * qy);
            const double zy = 2.0 * (qy * qz - qw * qx);
            const double zz = 1.0 - 2.0 * (qx * qx + qy * qy);
            const double kvx = gk * x + a_thr * zx;
            const double kvy = gk * y + a_thr * zy;
            const double kvz = gk * z + a_thr * zz;
            const double kqw = 0.5 * (-qx * wx - qy * wy - qz * wz);
            const double kqx = 0.5 * (qw * wx + qy * wz - qz * wy);
            const double kqy = 0.5 * (qw * wy + qz * wx - qx * wz);
            const double kqz = 0.5 * (qw * wz + qx * wy - qy * wx);
            const double kwx = (tqx - c_x * wy * wz) / ixx;
            const double kwy = (tqy - c_y * wz * wx) / iyy;
            const double kwz = (tqz - c_z * wx * wy) / izz;
            const double km = -thrust / ve;
            const double kthr = lagged ? (thr_target - thr) / tau : 0.0;
            sx += weight * vx;
            sy += weight * vy;
            sz += weight * vz;
            svx += weight * kvx;
            svy += weight * kvy;
            svz += weight * kvz;
            sqw += weight * kqw;
            sqx += weight * kqx;
            sqy += weight * kqy;
            sqz += weight * kqz;
            swx += weight * kwx;
            swy += weight * kwy;
            swz += weight * kwz;
            sm += weight * km;
            sthr += weight * kthr;
            sa += weight * a_thr;
            sdx += weight * wx;
            sdy += weight * wy;
            sdz += weight * wz;
            if (stage == 3)
                break;
            const double h = (stage == 2 ? 1.0 : 0.5) * dt_s;
            x = x0 + h * vx; y = y0 + h * vy; z = z0 + h * vz;
            vx = vx0 + h * kvx; vy = vy0 + h * kvy; vz = vz0 + h * kvz;
            qw = qw0 + h * kqw; qx = qx0 + h * kqx; qy = qy0 + h * kqy; qz = qz0 + h * kqz;
            wx = wx0 + h * kwx; wy = wy0 + h * kwy; wz = wz0 + h * kwz;
            m = m0 + h * km; thr = thr0 + h * kthr;
        }
        qw = qw0 + h6 * sqw; qx = qx0 + h6 * sqx; qy = qy0 + h6 * sqy; qz = qz0 + h6 * sqz;
        const double nq = sqrt(pow(qw, two) + pow(qx, two) + pow(qy, two) + pow(qz, two));
        m = m0 + h6 * sm;
        if (m < dry)
            m = dry;
        x0 = x0 + h6 * sx; y0 = y0 + h6 * sy; z0 = z0 + h6 * sz;
        vx0 = vx0 + h6 * svx; vy0 = vy0 + h6 * svy; vz0 = vz0 + h6 * svz;
        qw0 = qw / nq; qx0 = qx / nq; qy0 = qy / nq; qz0 = qz / nq;
        wx0 = wx0 + h6 * swx; wy0 = wy0 + h6 * swy; wz0 = wz0 + h6 * swz;
        m0 = m;
        thr0 = lagged ? thr0 + h6 * sthr : thr_target;
        double *o = out + j * N_OUT;
        o[0] = x0; o[1] = y0; o[2] = z0; o[3] = vx0; o[4] = vy0; o[5] = vz0;
        o[6] = qw0; o[7] = qx0; o[8] = qy0; o[9] = qz0;
        o[10] = wx0; o[11] = wy0; o[12] = wz0; o[13] = m0; o[14] = thr0;
        /* --- the open increments ---------------------------------------------------------- */
        acc_v += h6 * sa;
        acc_x += h6 * sdx;
        acc_y += h6 * sdy;
        acc_z += h6 * sdz;
        step += 1;
        done += 1;
        if (!sample)
            continue;
        /* --- one IMU sample ------------------------------------------------------------- */
        double *r = out + samples * N_OUT;
        double *xt = r + O_TRUE;
        xt[0] = 0.0; xt[1] = 0.0; xt[2] = acc_v; xt[3] = acc_x; xt[4] = acc_y; xt[5] = acc_z;
        const double *e = imu_err + row * 6;
        row += 1;
        r[O_IMU] = (double)step * dt_us;
        double *ym = r + O_IMU + 1;
        for (int i = 0; i < 3; i++)
            ym[i] = imu_a[i * 3] * xt[0] + imu_a[i * 3 + 1] * xt[1] + imu_a[i * 3 + 2] * xt[2]
                    + e[i];
        for (int i = 3; i < 6; i++)
            ym[i] = imu_a[i * 3] * xt[3] + imu_a[i * 3 + 1] * xt[4] + imu_a[i * 3 + 2] * xt[5]
                    + e[i];
        if (saturates) {
            for (int i = 0; i < 6; i++) {
                const double lim = p[P_LIMIT + i];
                if (ym[i] > lim)
                    ym[i] = lim;
                else if (ym[i] < -lim)
                    ym[i] = -lim;
            }
        }
        if (quantised) {
            for (int i = 0; i < 6; i++) {
                const double q = p[P_QUANTUM + i];
                if (q > 0.0) {
                    const double v = ym[i] + io[IO_CARRY + i];
                    const double oq = (rint(v / q) + 0.0) * q;   /* +0.0: as kernel.py */
                    io[IO_CARRY + i] = v - oq;
                    ym[i] = oq;
                }
            }
        }
        r[O_STEP] = (double)j;
        samples += 1;
        acc_v = acc_x = acc_y = acc_z = 0.0;
    }
    io[IO_STEP] = (double)step;
    io[IO_ROW] = (double)row;
    io[IO_ACC] = acc_v; io[IO_ACC + 1] = acc_x; io[IO_ACC + 2] = acc_y; io[IO_ACC + 3] = acc_z;
    return (long long)done + ((long long)samples << 32);
}
