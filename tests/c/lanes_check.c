/* lanes.h's running sums in lanes against their definition, bit for bit: element j of a
 * call goes to lane j % FL_LANES, except the last n % FL_LANES, which are summed in order
 * and then added to lane 0; fl_lanes_total adds the lanes in a fixed tree.  Random data
 * in [-1, 1], then with NaN, infinities, tiny and huge values; n around the multiples of FL_LANES.  On a
 * SIMD layer the helpers keep the lanes in registers (fl_lanes_add_prod_f32 with an fma,
 * which must round as the multiply and add do: float products are exact in double), and
 * fl_lanes_add_and_prod_S gives the bits of fl_lanes_add_S and fl_lanes_add_prod_S;
 * fl_lanes_add_quads_f32 (four floats summed in float per lane step) against its own;
 * fl_sum_S (a whole sum: the same lanes from zero, then the tree) against the same.
 * Built and run by tests/test_vectorize.py at each instruction-set level. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lanes.h"

static int same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

static int wild;        /* 1: NaN, infinities, tiny and huge values; 0: in [-1, 1] */

static double value(void)
{
    double u = (double)rand() / RAND_MAX - 0.5;
    int k = rand() % 97;
    if (!wild)
        return 2 * u;
    return k == 0 ? NAN : k == 1 ? INFINITY : k == 2 ? -INFINITY
                  : u * (rand() % 2 ? 1e-30 : 1e30);
}

#define CHECK(S, T, PROD)                                                            \
static int check_##S(void)                                                           \
{                                                                                    \
    static T a[700], b[700];                                                         \
    double got[FL_LANES], want[FL_LANES];                                            \
    int bad = 0;                                                                     \
    for (int n = 0; n < 700; n += (n < 70 ? 1 : 37)) {                               \
        for (int i = 0; i < n; i++) {                                                \
            a[i] = (T)value();                                                       \
            b[i] = (T)value();                                                       \
        }                                                                            \
        for (int prod = 0; prod <= PROD; prod++) {                                   \
            double tail = 0.0, l[FL_LANES];                                          \
            int full = n - n % FL_LANES;                                             \
            for (int j = 0; j < FL_LANES; j++)                                       \
                got[j] = want[j] = j * 0.25;                                         \
            if (prod)                                                                \
                fl_lanes_add_prod_##S(got, a, b, n);                                 \
            else                                                                     \
                fl_lanes_add_##S(got, a, n);                                         \
            for (int i = 0; i < full; i++) {                                         \
                volatile double term = prod ? (double)a[i] * (double)b[i] : (double)a[i]; \
                want[i % FL_LANES] += term;                                          \
            }                                                                        \
            for (int i = full; i < n; i++) {                                         \
                volatile double term = prod ? (double)a[i] * (double)b[i] : (double)a[i]; \
                tail += term;                                                        \
            }                                                                        \
            want[0] += tail;                                                         \
            for (int j = 0; j < FL_LANES; j++)                                       \
                bad += !same(got[j], want[j]);                                       \
            for (int j = 0; j < FL_LANES; j++)                                       \
                l[j] = want[j];                                                      \
            for (int w = FL_LANES / 2; w >= 1; w /= 2)                               \
                for (int j = 0; j < w; j++)                                          \
                    l[j] += l[j + w];                                                \
            bad += !same(fl_lanes_total(got), l[0]);                                 \
        }                                                                            \
        {   /* fl_sum_S: these lanes from zero, then fl_lanes_total's tree */        \
            double z[FL_LANES], tail = 0.0;                                          \
            int full = n - n % FL_LANES;                                             \
            for (int j = 0; j < FL_LANES; j++)                                       \
                z[j] = 0.0;                                                          \
            for (int i = 0; i < full; i++) {                                         \
                volatile double term = (double)a[i];                                 \
                z[i % FL_LANES] += term;                                             \
            }                                                                        \
            for (int i = full; i < n; i++) {                                         \
                volatile double term = (double)a[i];                                 \
                tail += term;                                                        \
            }                                                                        \
            z[0] += tail;                                                            \
            for (int w = FL_LANES / 2; w >= 1; w /= 2)                               \
                for (int j = 0; j < w; j++)                                          \
                    z[j] += z[j + w];                                                \
            bad += !same(fl_sum_##S(a, n), z[0]);                                    \
        }                                                                            \
        {   /* both sums in one call: the same bits as the two calls */              \
            double s1[FL_LANES], p1[FL_LANES], s2[FL_LANES], p2[FL_LANES];           \
            for (int j = 0; j < FL_LANES; j++)                                       \
                s1[j] = s2[j] = j * 0.5, p1[j] = p2[j] = j * 0.125;                  \
            fl_lanes_add_##S(s1, a, n);                                              \
            fl_lanes_add_prod_##S(p1, a, b, n);                                      \
            fl_lanes_add_and_prod_##S(s2, p2, a, b, n);                              \
            for (int j = 0; j < FL_LANES; j++)                                       \
                bad += !same(s1[j], s2[j]) || !same(p1[j], p2[j]);                   \
        }                                                                            \
    }                                                                                \
    return bad;                                                                      \
}
CHECK(f32, float, 1)
CHECK(f64, double, 0)

/* fl_lanes_add_quads_f32 against its definition: each whole group of FL_QUAD values adds
 * (v[j] + v[j + L]) + (v[j + 2L] + v[j + 3L]) in float to lane j (L = FL_LANES), the rest
 * as fl_lanes_add_f32's definition; over two calls, the first a multiple of FL_QUAD. */
static int check_quads(void)
{
    static float a[1400];
    double got[FL_LANES], want[FL_LANES];
    int bad = 0;
    for (int n = 0; n < 700; n += (n < 140 ? 1 : 37)) {
        for (int first = 0; first <= n; first += FL_QUAD) {
            for (int i = 0; i < n; i++)
                a[i] = (float)value();
            for (int j = 0; j < FL_LANES; j++)
                got[j] = want[j] = j * 0.25;
            fl_lanes_add_quads_f32(got, a, first);
            fl_lanes_add_quads_f32(got, a + first, n - first);
            for (int part = 0; part < 2; part++) {
                const float* v = part ? a + first : a;
                int m = part ? n - first : first, i = 0;
                double tail = 0.0;
                for (; i + FL_QUAD <= m; i += FL_QUAD)
                    for (int j = 0; j < FL_LANES; j++) {
                        volatile float s01 = v[i + j] + v[i + j + FL_LANES];
                        volatile float s23 = v[i + j + 2 * FL_LANES] + v[i + j + 3 * FL_LANES];
                        volatile float s = s01 + s23;
                        want[j] += (double)s;
                    }
                for (; i + FL_LANES <= m; i += FL_LANES)
                    for (int j = 0; j < FL_LANES; j++)
                        want[j] += (double)v[i + j];
                for (; i < m; i++)
                    tail += (double)v[i];
                want[0] += tail;
            }
            for (int j = 0; j < FL_LANES; j++)
                bad += !same(got[j], want[j]);
            if (first > 120)
                break;
        }
    }
    return bad;
}

int main(void)
{
    int bad = 0;
    srand(1);
    for (wild = 0; wild <= 1; wild++)
        bad += check_f32() + check_f64() + check_quads();
    printf("mismatches: %d\n", bad);
    return bad != 0;
}
