/* transpose.h's row/tile transposes against the plain definition, for every C in 1..32, row
 * counts around the register-block sizes, padded row strides and NaNs (the row maximum must
 * behave as the scalar select `v > m ? v : m`).  Also checks that nothing is written past
 * the output.  Built and run by tests/test_vectorize.py at each instruction-set level. */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include "transpose.h"
#define CHECK(S, T)                                                                  \
static int check_##S(void)                                                           \
{                                                                                    \
    int bad = 0;                                                                     \
    for (int C = 1; C <= 32; C++)                                                    \
    for (int R = 1; R <= 70; R += (R < 20 ? 1 : 7))                                  \
    for (int pad = 0; pad < 3; pad++) {                                              \
        int stride = C + pad;                                                        \
        T* src = malloc(sizeof(T) * (R * stride + 64));                              \
        T* t = malloc(sizeof(T) * C * R);                                            \
        T* t2 = malloc(sizeof(T) * C * R);                                           \
        T* m = malloc(sizeof(T) * R);                                                \
        T* out = malloc(sizeof(T) * (R * C + 64));                                   \
        for (int i = 0; i < R * stride; i++)                                         \
            src[i] = (T)(rand() % 1000) - 500 + ((rand() % 50 == 0) ? (T)NAN : 0);   \
        fl_transpose_in_max_##S(src, stride, R, C, t, m);                            \
        fl_transpose_in_##S(src, stride, R, C, t2);                                  \
        for (int c = 0; c < C; c++)                                                  \
            for (int r = 0; r < R; r++) {                                            \
                bad += !same(t[c * R + r], src[r * stride + c]);                     \
                bad += !same(t2[c * R + r], src[r * stride + c]);                    \
            }                                                                        \
        for (int r = 0; r < R; r++) {                                                \
            T ref = src[r * stride];                                                 \
            for (int c = 1; c < C; c++) {                                            \
                T v = src[r * stride + c];                                           \
                ref = v > ref ? v : ref;                                             \
            }                                                                        \
            bad += !same(m[r], ref);                                                 \
        }                                                                            \
        for (int i = 0; i < R * C + 64; i++)                                         \
            out[i] = -7;                                                             \
        fl_transpose_out_##S(t, R, C, out);                                          \
        for (int r = 0; r < R; r++)                                                  \
            for (int c = 0; c < C; c++)                                              \
                bad += !same(out[r * C + c], src[r * stride + c]);                   \
        for (int i = R * C; i < R * C + 64; i++)                                     \
            bad += out[i] != -7;                                                     \
        free(src); free(t); free(t2); free(m); free(out);                            \
    }                                                                                \
    return bad;                                                                      \
}

static int same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }
CHECK(f32, float)
CHECK(f64, double)

int main(void)
{
    srand(1);
    int bad = check_f32() + check_f64();
    printf("mismatches: %d\n", bad);
    return bad != 0;
}
