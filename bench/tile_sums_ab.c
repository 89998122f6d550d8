/* narrow.h's tile exp and row sums (the narrow softmax path's fl_tile_exp_sums_f32, and
 * fl_tile_exp_dense_f32 for dense targets) of two source trees, in one process,
 * interleaved, best of 15: a kernel change timed without the VM's drift between
 * processes.  A tile of 64 rows, 10, 16 and 32 classes (re-copied before each call, in
 * both sides' times), L1-resident.  Build each tree's side with its own headers and the
 * level flags of src/fastloss/_build.py, then link both:
 *
 *     F="-O3 -fno-math-errno -fno-trapping-math -fopenmp-simd -mavx2 -mfma -mf16c"
 *     cc $F -I BASE/src/fastloss/_kernels -DSIDE=1 -c bench/tile_sums_ab.c -o /tmp/base.o
 *     cc $F -I src/fastloss/_kernels -DSIDE=2 -c bench/tile_sums_ab.c -o /tmp/new.o
 *     cc -O2 bench/tile_sums_ab.c /tmp/base.o /tmp/new.o -o /tmp/tile_sums_ab
 *     /tmp/tile_sums_ab [values per case, default 20000000]
 *
 * Prints ns per value of each and new / base; exits 1 if the two sides' row sums of a
 * tile differ by more than 1e-6 of them. */
#include <stddef.h>

#if defined(SIDE)
#include "narrow.h"
#define FL_PASTE(a, b) a##b
#define FL_NAME(side, what) FL_PASTE(what, side)
void FL_NAME(SIDE, side_sums_)(float* t, const float* m, ptrdiff_t R, ptrdiff_t C, double* T,
                               float* k)
{
    fl_tile_exp_sums_f32(t, m, R, C, T, k, NULL);
}
void FL_NAME(SIDE, side_dense_)(float* t, const float* w, const float* lam, const float* m,
                                ptrdiff_t R, ptrdiff_t C, double* T, float* k, double* A,
                                double* B)
{
    fl_tile_exp_dense_f32(t, w, lam, m, R, C, T, k, A, B, NULL);
}
#else
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_clock.h"

typedef void sums_fn(float*, const float*, ptrdiff_t, ptrdiff_t, double*, float*);
typedef void dense_fn(float*, const float*, const float*, const float*, ptrdiff_t, ptrdiff_t,
                      double*, float*, double*, double*);
sums_fn side_sums_1, side_sums_2;
dense_fn side_dense_1, side_dense_2;

enum { R = 64, MAX_C = 32 };
static float z[MAX_C * R], t[MAX_C * R], w[MAX_C * R], lam[MAX_C * R], m[R], k[R];
static double T[2][R], A[R], B[R];

int main(int argc, char** argv)
{
    long values = argc > 1 ? atol(argv[1]) : 20000000L;
    const int classes[] = {10, 16, 32};
    sums_fn* sums[2] = {side_sums_1, side_sums_2};
    dense_fn* dense[2] = {side_dense_1, side_dense_2};
    int bad = 0;
    srand(1);
    for (int i = 0; i < MAX_C * R; i++) {
        z[i] = -(float)(rand() % 10000) * 1e-3f;     /* e in (e^-10, 1] */
        w[i] = (float)(rand() % 1000) * 1e-3f;
        lam[i] = -(float)(rand() % 5000) * 1e-3f;
    }
    for (int r = 0; r < R; r++)
        z[r] = m[r] = 0.0f;                          /* each row's maximum, in class 0 */
    for (int ci = 0; ci < 3; ci++) {
        int C = classes[ci];
        long reps = values / (C * R) > 0 ? values / (C * R) : 1;
        double best[4] = {1e30, 1e30, 1e30, 1e30};
        for (int rep = 0; rep < 15; rep++)
            for (int v = 0; v < 4; v++) {
                double t0 = now(), dt;
                for (long n = 0; n < reps; n++) {
                    memcpy(t, z, sizeof(float) * C * R);
                    if (v < 2)
                        sums[v](t, m, R, C, T[v], k);
                    else
                        dense[v - 2](t, w, lam, m, R, C, T[v - 2], k, A, B);
                }
                dt = (now() - t0) / reps / (C * R) * 1e9;
                best[v] = dt < best[v] ? dt : best[v];
            }
        for (int r = 0; r < R; r++)
            bad |= fabs(T[1][r] - T[0][r]) > 1e-6 * fabs(T[0][r]);
        printf("C = %2d, ns per value: sums base %.4f new %.4f new / base %.3f;"
               " dense base %.4f new %.4f new / base %.3f\n", C, best[0], best[1],
               best[1] / best[0], best[2], best[3], best[3] / best[2]);
    }
    return bad;
}
#endif
