/* A wide softmax row's passes in C, as the kernels run them (softmax.pyx's wide_row and
 * wide_sums: the row's maximum and its index, then per 512-class chunk exp(z - m) into a
 * buffer and the row sum T in float64 lanes), with T by fl_lanes_add_f32 (each value
 * converted to double) and by fl_lanes_add_quads_f32 (each lane's four values summed in
 * float first), in one process, interleaved, best of 15.  Rows of 32000 and 1000 classes
 * that stay in L2: the compute of the row alone, without the machine's memory.
 *
 *     cc -O3 -fno-math-errno -fno-trapping-math -fopenmp-simd <level flags> \
 *        -I src/fastloss/_kernels bench/wide_row_sums.c -o /tmp/wide_row_sums -lm
 *     /tmp/wide_row_sums [values per case, default 64000000]
 *
 * with the level flags of src/fastloss/_build.py (avx2: -mavx2 -mfma -mf16c; avx512: those
 * and -mavx512f -mavx512dq -mavx512bw -mavx512vl).  Prints ns per value and quads / lanes;
 * exits 1 if the two sums of a row differ by more than 1e-6 of it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_clock.h"
#include "wide_row.h"

BENCH_DEFINE_ROW_T(row_t, float, fl_exp_shift_n_f32)

static double row_sum(const float* z, int n, int quads)
{
    float m;
    ptrdiff_t top = fl_max_at_f32(z, n, &m);
    return row_t(z, n, top, m, quads);
}

int main(int argc, char** argv)
{
    const int rows = 4, width = 32000;
    long values = argc > 1 ? atol(argv[1]) : 64000000L;
    float* z = malloc(sizeof(float) * width * rows);
    int bad = 0;
    srand(1);
    for (int i = 0; i < width * rows; i++) {     /* 2 N(0, 1), Box-Muller */
        float u = (rand() + 1.0f) / ((float)RAND_MAX + 1.0f), v = rand() / (float)RAND_MAX;
        z[i] = 2.0f * sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
    }
    for (int n = width; n >= 1000; n /= 32) {
        double best[2] = {1e30, 1e30}, sums[2] = {0, 0};
        long reps = values / n > 0 ? values / n : 1;
        for (int rep = 0; rep < 15; rep++)
            for (int q = 0; q < 2; q++) {
                double s = 0, t0 = now(), t;
                for (long k = 0; k < reps; k++)
                    s += row_sum(z + (k % rows) * width, n, q);
                t = (now() - t0) / reps / n * 1e9;
                best[q] = t < best[q] ? t : best[q];
                sums[q] = s;
            }
        bad |= fabs(sums[1] - sums[0]) > 1e-6 * fabs(sums[0]);
        printf("%5d classes: ns per value: lanes %.4f, quads %.4f, quads / lanes %.3f\n", n,
               best[0], best[1], best[1] / best[0]);
    }
    free(z);
    return bad;
}
