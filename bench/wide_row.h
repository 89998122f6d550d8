/* A wide softmax row's sum T in C, as the kernels form it (softmax.pyx's wide_sums, value
 * only): per chunk of BENCH_CHUNK classes exp(z - m) into a buffer, e at the row's `top`
 * less 1 (T = S - 1), added to float64 lanes four terms at a time (quads: the kernels'
 * way) or one at a time.  BENCH_DEFINE_ROW_T(NAME, E, EXP) defines
 *     double NAME(const E* z, ptrdiff_t n, ptrdiff_t top, float m, int quads)
 * with EXP(z + c0, m, k, buf) the chunk's exp (E: float, or uint16_t for half-precision
 * rows read as they are).  Shared by bench/wide_row_sums.c and bench/wide_rows_ab.c;
 * needs the kernel headers (-I src/fastloss/_kernels) of the tree it times. */
#ifndef FL_BENCH_WIDE_ROW_H
#define FL_BENCH_WIDE_ROW_H

#include "simd.h"
#include "vecmath.h"
#include "lanes.h"
#include "maxat.h"

#define BENCH_CHUNK 512             /* float32 classes per chunk (WIDE_CHUNK_BYTES) */

#define BENCH_DEFINE_ROW_T(NAME, E, EXP)                                            \
static double NAME(const E* z, ptrdiff_t n, ptrdiff_t top, float m, int quads)      \
{                                                                                   \
    float buf[BENCH_CHUNK];                                                         \
    double lanes[FL_LANES];                                                         \
    fl_lanes_zero(lanes);                                                           \
    for (ptrdiff_t c0 = 0; c0 < n; c0 += BENCH_CHUNK) {                             \
        ptrdiff_t k = n - c0 < BENCH_CHUNK ? n - c0 : BENCH_CHUNK;                  \
        EXP(z + c0, m, k, buf);                                                     \
        if (c0 <= top && top < c0 + k)                                              \
            buf[top - c0] -= 1.0f;                  /* T = S - 1, as the kernel's */ \
        if (quads)                                                                  \
            fl_lanes_add_quads_f32(lanes, buf, k);                                  \
        else                                                                        \
            fl_lanes_add_f32(lanes, buf, k);                                        \
    }                                                                               \
    return fl_lanes_total(lanes);                                                   \
}

#endif
