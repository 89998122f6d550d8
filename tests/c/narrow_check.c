/* narrow.h's register version of the narrow softmax tile's exp and sums against the plain
 * loop (fl_tile_exp_sums_loop_f32), bit for bit: every C in 1..32, row counts around the
 * register-block sizes, ties at the row maximum (e == 1, counted and left out of the sum),
 * results that underflow to subnormals and zero, -inf and NaN.  Built and run by
 * tests/test_vectorize.py at each instruction-set level. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "narrow.h"

static int same_bits(const void* a, const void* b, size_t n) { return memcmp(a, b, n) == 0; }

int main(void)
{
    int bad = 0, cases = 0;
    srand(1);
    for (int C = 1; C <= 32; C++)
    for (int R = 1; R <= 70; R += (R < 20 ? 1 : 7)) {
        float* z = malloc(sizeof(float) * C * R);
        float* t1 = malloc(sizeof(float) * C * R);
        float* t2 = malloc(sizeof(float) * C * R);
        float* m = malloc(sizeof(float) * R);
        float* k1 = malloc(sizeof(float) * R);
        float* k2 = malloc(sizeof(float) * R);
        double* T1 = malloc(sizeof(double) * R);
        double* T2 = malloc(sizeof(double) * R);
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
            }
        memcpy(t1, z, sizeof(float) * C * R);
        memcpy(t2, z, sizeof(float) * C * R);
        fl_tile_exp_sums_loop_f32(t1, m, R, 0, C, T1, k1);
        fl_tile_exp_sums_f32(t2, m, R, C, T2, k2);
        bad += !same_bits(t1, t2, sizeof(float) * C * R);
        bad += !same_bits(T1, T2, sizeof(double) * R);
        bad += !same_bits(k1, k2, sizeof(float) * R);
        cases++;
        free(z); free(t1); free(t2); free(m); free(k1); free(k2); free(T1); free(T2);
    }
    printf("cases: %d\nmismatches: %d\n", cases, bad);
    return bad != 0;
}
