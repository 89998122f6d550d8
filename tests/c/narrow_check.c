/* narrow.h's register versions of the narrow softmax tile's exp and sums against the plain
 * loops (fl_tile_exp_sums_loop_f32, fl_tile_exp_dense_loop_f32), bit for bit (a NaN may be
 * any NaN): every C in 1..32, row counts around the register-block sizes, ties at the row
 * maximum (e == 1, counted and left out of the sum), results that underflow to subnormals
 * and zero, -inf and NaN; for dense targets also zero weights (whose term is 0 even where
 * L is -inf or NaN), tiny and NaN weights and -inf log-targets.  Built and run by
 * tests/test_vectorize.py at each instruction-set level. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "narrow.h"

/* the same bits, or both NaN: which NaN a sum of two NaNs keeps depends on the order in
 * which the compiler puts the operands of an addition, which C leaves to it */
static int same_f32(const float* a, const float* b, int n)
{
    for (int i = 0; i < n; i++)
        if (memcmp(a + i, b + i, sizeof(float)) != 0 && !(isnan(a[i]) && isnan(b[i])))
            return 0;
    return 1;
}

static int same_f64(const double* a, const double* b, int n)
{
    for (int i = 0; i < n; i++)
        if (memcmp(a + i, b + i, sizeof(double)) != 0 && !(isnan(a[i]) && isnan(b[i])))
            return 0;
    return 1;
}

enum { MAX_C = 32, MAX_R = 70 };
/* tiles (z, its two results, the weights and lambda) and per-row results of each version */
static float z[MAX_C * MAX_R], t1[MAX_C * MAX_R], t2[MAX_C * MAX_R], w[MAX_C * MAX_R],
             lam[MAX_C * MAX_R], m[MAX_R], k1[MAX_R], k2[MAX_R];
static double T1[MAX_R], T2[MAX_R], A1[MAX_R], A2[MAX_R], B1[MAX_R], B2[MAX_R];

int main(void)
{
    int bad = 0, cases = 0;
    srand(1);
    for (int C = 1; C <= MAX_C; C++)
    for (int R = 1; R <= MAX_R; R += (R < 20 ? 1 : 7)) {
        for (int r = 0; r < R; r++)
            m[r] = (float)(rand() % 21 - 10) * 0.5f;
        for (int c = 0; c < C; c++)
            for (int r = 0; r < R; r++) {
                int kind = rand() % 40;
                float v = m[r] - (float)(rand() % 100000) * 1e-3f;     /* e in (e^-100, 1] */
                if (kind == 0) v = m[r];                               /* a tie: e == 1 */
                if (kind == 1) v = m[r] - 95.0f - (float)(rand() % 20); /* subnormal or 0 */
                if (kind == 2) v = -INFINITY;
                if (kind == 3 && rand() % 4 == 0) v = NAN;
                z[c * R + r] = v;
                int wk = rand() % 30;
                w[c * R + r] = wk == 0 ? 0.0f : wk == 1 ? 1e-30f : wk == 2 && rand() % 4 == 0
                               ? NAN : (float)(rand() % 1000) * 1e-3f;
                lam[c * R + r] = rand() % 25 == 0 ? -INFINITY
                                 : -(float)(rand() % 20000) * 1e-3f;
            }
        /* the vector versions also ask for a "next tile": ranges of these arrays, one
         * starting off a cache line, one empty (prefetches: no effect on the results) */
        fl_next_tile nt = {{z + 1, w, NULL, lam},
                           {(ptrdiff_t)sizeof(float) * (C * R - 1),
                            (ptrdiff_t)sizeof(float) * C * R, 0, 0}};
        memcpy(t1, z, sizeof(float) * C * R);
        memcpy(t2, z, sizeof(float) * C * R);
        fl_tile_exp_sums_loop_f32(t1, m, R, 0, C, T1, k1, NULL);
        fl_tile_exp_sums_f32(t2, m, R, C, T2, k2, &nt);
        bad += !same_f32(t1, t2, C * R);
        bad += !same_f64(T1, T2, R);
        bad += !same_f32(k1, k2, R);
        memcpy(t1, z, sizeof(float) * C * R);
        memcpy(t2, z, sizeof(float) * C * R);
        fl_tile_exp_dense_loop_f32(t1, w, lam, m, R, 0, C, T1, k1, A1, B1, NULL);
        fl_tile_exp_dense_f32(t2, w, lam, m, R, C, T2, k2, A2, B2, &nt);
        bad += !same_f32(t1, t2, C * R);
        bad += !same_f64(T1, T2, R);
        bad += !same_f32(k1, k2, R);
        bad += !same_f64(A1, A2, R);
        bad += !same_f64(B1, B2, R);
        cases++;
    }
    printf("cases: %d\nmismatches: %d\n", cases, bad);
    return bad != 0;
}
