/* reduce.h's row/tile transposes against the plain definition, for every C in 1..32, row
 * counts around the register-block sizes, padded row strides and NaNs (the row maximum must
 * behave as the scalar select `v > m ? v : m`).  Also checks that nothing is written past
 * the output.  Built and run by tests/test_vectorize.py at each instruction-set level. */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include "reduce.h"
int main(void) {
    int bad = 0;
    srand(1);
    for (int C = 1; C <= 32; C++) for (int R = 1; R <= 70; R += (R < 20 ? 1 : 7)) for (int pad = 0; pad < 3; pad++) {
        int stride = C + pad;
        float* src = malloc(sizeof(float) * (R * stride + 64));
        float* t = malloc(sizeof(float) * C * R);
        float* t2 = malloc(sizeof(float) * C * R);
        float* m = malloc(sizeof(float) * R);
        float* out = malloc(sizeof(float) * (R * C + 64));
        for (int i = 0; i < R * stride; i++) src[i] = (float)(rand() % 1000) - 500.0f + ((rand() % 50 == 0) ? NAN : 0.0f);
        fl_transpose_in_max_f32(src, stride, R, C, t, m);
        fl_transpose_in_f32(src, stride, R, C, t2);
        for (int c = 0; c < C; c++) for (int r = 0; r < R; r++) {
            float a = t[c * R + r], b = src[r * stride + c], d = t2[c * R + r];
            if (!(a == b) && !(isnan(a) && isnan(b))) bad++;
            if (!(d == b) && !(isnan(d) && isnan(b))) bad++;
        }
        for (int r = 0; r < R; r++) {
            float ref = src[r * stride];
            for (int c = 1; c < C; c++) { float v = src[r * stride + c]; ref = v > ref ? v : ref; }
            if (!(m[r] == ref) && !(isnan(m[r]) && isnan(ref))) bad++;
        }
        for (int i = 0; i < R * C + 64; i++) out[i] = -7;
        fl_transpose_out_f32(t, R, C, out);
        for (int r = 0; r < R; r++) for (int c = 0; c < C; c++) { float a = out[r * C + c], b = src[r * stride + c]; if (!(a == b) && !(isnan(a) && isnan(b))) bad++; }
        for (int i = R * C; i < R * C + 64; i++) if (out[i] != -7) bad++;
        free(src); free(t); free(t2); free(m); free(out);
    }
    printf("mismatches: %d\n", bad);
    return bad != 0;
}
