/* The softmax's float exp and a wide row's passes (softmax.pyx's wide_row and wide_sums,
 * value only: the row's maximum and its index, then per 512-class chunk exp(z - m) into a
 * buffer and the row sum T in float64 quads), of two source trees, in one process,
 * interleaved, best of 15: a kernel change timed without the VM's drift between
 * processes.  Three cases per side:
 *
 *   exp        fl_exp_shift_n_f32 over 4096 values in L1 (the exp alone);
 *   rows       rows of 32000 and of 1000 float32 classes that stay in L2;
 *   bfloat16   the same rows from bfloat16, as the tree's kernel reads them: widened to
 *              float32 first (softmax_block's copy), or, in a tree whose half.h reads long
 *              rows as they are (FL_HALF_WIDE_MIN), rows that long read 2 bytes a value
 *              in each pass (labels, the value alone: this row's passes).
 *
 * Build each tree's side with its own headers and the level flags of
 * src/fastloss/_build.py, then link both (BASE: the other tree, e.g. from
 * `git archive <rev> src/fastloss/_kernels | tar -x -C BASE`):
 *
 *     F="-O3 -fno-math-errno -fno-trapping-math -fopenmp-simd -mavx2 -mfma -mf16c"
 *     cc $F -I BASE/src/fastloss/_kernels -DSIDE=1 -c bench/wide_rows_ab.c -o /tmp/base.o
 *     cc $F -I src/fastloss/_kernels -DSIDE=2 -c bench/wide_rows_ab.c -o /tmp/new.o
 *     cc -O2 bench/wide_rows_ab.c /tmp/base.o /tmp/new.o -o /tmp/wide_rows_ab -lm
 *     /tmp/wide_rows_ab [values per case, default 64000000]
 *
 * Prints ns per value of each side and new / base (and bfloat16 / float32 per side);
 * exits 1 if the two sides' exps or row sums differ by more than 1e-5 of them (the sides
 * may use different exp methods, each within 1.5 ulp). */
#include <stddef.h>
#include <stdint.h>

#if defined(SIDE)
#include "wide_row.h"
#include "half.h"
#define FL_PASTE(a, b) a##b
#define FL_NAME(side, what) FL_PASTE(what, side)

void FL_NAME(SIDE, side_exp_)(const float* z, ptrdiff_t n, float* out)
{
    fl_exp_shift_n_f32(z, 0.5f, n, out);
}

BENCH_DEFINE_ROW_T(row_t, float, fl_exp_shift_n_f32)

double FL_NAME(SIDE, side_row_)(const float* z, ptrdiff_t n)
{
    float m;
    ptrdiff_t top = fl_max_at_f32(z, n, &m);
    return row_t(z, n, top, m, 1);
}

#if defined(FL_HALF_WIDE_MIN)           /* a tree that reads long rows as they are */
#define HALF_EXP(z, m, k, buf) fl_half_exp_shift_n(z, FL_HALF_BF16, m, k, buf)
BENCH_DEFINE_ROW_T(half_row_t, uint16_t, HALF_EXP)
#endif

double FL_NAME(SIDE, side_half_row_)(const uint16_t* h, ptrdiff_t n, float* widened)
{
#if defined(FL_HALF_WIDE_MIN)           /* a tree that reads long rows as they are */
    if (FL_HALF_WIDE_MIN > 0 && n >= FL_HALF_WIDE_MIN) {
        float m;
        ptrdiff_t top = fl_half_max_at(h, n, FL_HALF_BF16, &m);
        return half_row_t(h, n, top, m, 1);
    }
#endif
    fl_half_widen(h, 1, n, FL_HALF_BF16, widened);
    return FL_NAME(SIDE, side_row_)(widened, n);
}
#else
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"

typedef void exp_fn(const float*, ptrdiff_t, float*);
typedef double row_fn(const float*, ptrdiff_t);
typedef double half_row_fn(const uint16_t*, ptrdiff_t, float*);
exp_fn side_exp_1, side_exp_2;
row_fn side_row_1, side_row_2;
half_row_fn side_half_row_1, side_half_row_2;

enum { ROWS = 4, MAX_C = 32000, L1_VALUES = 4096 };

int main(int argc, char** argv)
{
    long values = argc > 1 ? atol(argv[1]) : 64000000L;
    const ptrdiff_t widths[] = {32000, 1000};
    exp_fn* exps[2] = {side_exp_1, side_exp_2};
    row_fn* rows[2] = {side_row_1, side_row_2};
    half_row_fn* half_rows[2] = {side_half_row_1, side_half_row_2};
    float* z = malloc(sizeof(float) * MAX_C * ROWS);
    float* widened = malloc(sizeof(float) * MAX_C);
    uint16_t* h = malloc(sizeof(uint16_t) * MAX_C * ROWS);
    static float ex[2][L1_VALUES];
    int bad = 0;
    srand(1);
    for (int i = 0; i < MAX_C * ROWS; i++) {       /* 2 N(0, 1), Box-Muller */
        double u1 = (rand() + 1.0) / (RAND_MAX + 2.0), u2 = rand() / (RAND_MAX + 1.0);
        uint32_t bits;
        z[i] = (float)(2.0 * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
        memcpy(&bits, &z[i], sizeof bits);
        h[i] = (uint16_t)(bits >> 16);               /* a bfloat16 of it (truncated) */
    }
    {
        long reps = values / L1_VALUES > 0 ? values / L1_VALUES : 1;
        double best[2] = {1e30, 1e30};
        for (int rep = 0; rep < 15; rep++)
            for (int v = 0; v < 2; v++) {
                double t0 = now(), dt;
                for (long n = 0; n < reps; n++)
                    exps[v](z, L1_VALUES, ex[v]);    /* exp(z - 0.5): some above 0 */
                dt = (now() - t0) / reps / L1_VALUES * 1e9;
                best[v] = dt < best[v] ? dt : best[v];
            }
        for (int i = 0; i < L1_VALUES; i++)
            bad |= fabs(ex[1][i] - ex[0][i]) > 1e-5 * fabs(ex[0][i]);
        printf("exp, %d values in L1, ns per value: base %.4f new %.4f new / base %.3f\n",
               L1_VALUES, best[0], best[1], best[1] / best[0]);
    }
    for (int wi = 0; wi < 2; wi++) {
        ptrdiff_t C = widths[wi];
        long reps = values / (C * ROWS) > 0 ? values / (C * ROWS) : 1;
        double best[4] = {1e30, 1e30, 1e30, 1e30}, sums[4] = {0, 0, 0, 0};
        for (int rep = 0; rep < 15; rep++)
            for (int v = 0; v < 4; v++) {
                double t0 = now(), dt, acc = 0;
                for (long n = 0; n < reps; n++)
                    for (int r = 0; r < ROWS; r++)
                        acc += v < 2 ? rows[v](z + r * C, C)
                                     : half_rows[v - 2](h + r * C, C, widened);
                dt = (now() - t0) / reps / (C * ROWS) * 1e9;
                best[v] = dt < best[v] ? dt : best[v];
                sums[v] = acc;
            }
        bad |= fabs(sums[1] - sums[0]) > 1e-5 * fabs(sums[0]);
        bad |= fabs(sums[3] - sums[2]) > 1e-5 * fabs(sums[2]);
        printf("rows of %5ld classes, ns per value: float32 base %.4f new %.4f new / base %.3f;"
               " bfloat16 base %.4f new %.4f new / base %.3f; bfloat16 / float32 base %.3f"
               " new %.3f\n", (long)C, best[0], best[1], best[1] / best[0], best[2], best[3],
               best[3] / best[2], best[2] / best[0], best[3] / best[1]);
    }
    free(z);
    free(widened);
    free(h);
    return bad;
}
#endif
