/*
 * fastloss sums in float64: whole sums (fl_sum) and running sums kept in lanes over many
 * tiles (fl_lanes_*).
 *
 * The lane order is fixed by this code: for a given build, results are identical for every
 * run and every thread count, and the lane sums are the same at every instruction-set
 * level.  Sums of float32 data accumulate in float64 (a softmax row's sum of exp feeds
 * its float64 lanes float sums of four terms: fl_lanes_add_quads_f32).
 */
#ifndef FASTLOSS_LANES_H
#define FASTLOSS_LANES_H

#include "simd.h"

/* Running sums in lanes.  A sum that runs over many tiles (a wide softmax row) keeps
 * FL_LANES float64 partial sums: element j of a call goes to lane j % FL_LANES, except the
 * last n % FL_LANES, which are added in order and then to lane 0; the lanes are combined
 * once, at the end, in a fixed tree (fl_lanes_total).  A sum per tile instead pays the
 * horizontal reduction of every tile, which GCC compiles into a chain of 16 dependent
 * scalar adds.  The order is fixed by this code, the same at every instruction-set level. */
#define FL_LANES 16

/* Vector stores on the SIMD layer: GCC turns the plain loop into `rep stosq`, whose
 * start-up cost was 2.5% of a 1000-class KL row (three sums to clear per row). */
FL_INLINE void fl_lanes_zero(double* acc)
{
#if defined(FL_VECTOR_REGISTERS)
    for (int k = 0; k < FL_LANES / FL_W_f64; k++)
        fl_vstore_f64(acc + FL_W_f64 * k, fl_vzero_f64());
#else
    for (int j = 0; j < FL_LANES; j++)
        acc[j] = 0.0;
#endif
}

FL_INLINE void fl_lanes_tail_f32(double* acc, const float* v, ptrdiff_t i, ptrdiff_t n)
{
    double tail = 0.0;
    for (; i < n; i++)
        tail += (double)v[i];
    acc[0] += tail;
}

FL_INLINE void fl_lanes_tail_f64(double* acc, const double* v, ptrdiff_t i, ptrdiff_t n)
{
    double tail = 0.0;
    for (; i < n; i++)
        tail += v[i];
    acc[0] += tail;
}

/* fl_lanes_add_S(acc, v, n): acc[j % FL_LANES] += v[j] for j < n (the last n % FL_LANES:
 * summed, then to acc[0]).
 *
 * On the SIMD layer, the lanes are FL_LANES / FL_W_f64 double vectors held in registers
 * (the same sums in the same order as the plain loop): compilers unroll the plain loop
 * completely inside the kernels, where n <= TILE is known, keep the lanes in memory and
 * convert float to double a quarter vector at a time. */
#if defined(FL_VECTOR_REGISTERS)
#define FL_LANE_VECTORS (FL_LANES / FL_W_f64)
#define FL_DEFINE_LANES_ADD(SUFFIX, T, LOAD)                                        \
FL_INLINE void fl_lanes_add_##SUFFIX(double* acc, const T* v, ptrdiff_t n)           \
{                                                                                   \
    fl_v_f64 a[FL_LANE_VECTORS];                                                    \
    ptrdiff_t i = 0;                                                                \
    for (int k = 0; k < FL_LANE_VECTORS; k++)                                       \
        a[k] = fl_vload_f64(acc + FL_W_f64 * k);                                    \
    for (; i + FL_LANES <= n; i += FL_LANES)                                        \
        for (int k = 0; k < FL_LANE_VECTORS; k++)                                   \
            a[k] = fl_vadd_f64(a[k], LOAD(v + i + FL_W_f64 * k));       \
    for (int k = 0; k < FL_LANE_VECTORS; k++)                                       \
        fl_vstore_f64(acc + FL_W_f64 * k, a[k]);                                    \
    fl_lanes_tail_##SUFFIX(acc, v, i, n);                                           \
}
FL_DEFINE_LANES_ADD(f32, float, fl_vload_f32_as_f64)
FL_DEFINE_LANES_ADD(f64, double, fl_vload_f64)

/* the same tree as the loop version below, in registers instead of through memory */
FL_INLINE double fl_lanes_total(const double* acc)
{
    fl_v_f64 a[FL_LANE_VECTORS];
    for (int k = 0; k < FL_LANE_VECTORS; k++)
        a[k] = fl_vload_f64(acc + FL_W_f64 * k);
    for (int w = FL_LANE_VECTORS / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; k++)
            a[k] = fl_vadd_f64(a[k], a[k + w]);
    return fl_vsum_f64(a[0]);
}
#else
FL_INLINE double fl_lanes_total(const double* acc)
{
    double l[FL_LANES];
    for (int j = 0; j < FL_LANES; j++)
        l[j] = acc[j];
    for (int w = FL_LANES / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            l[j] += l[j + w];
    return l[0];
}

#define FL_DEFINE_LANES_ADD(SUFFIX, T)                                              \
FL_INLINE void fl_lanes_add_##SUFFIX(double* acc, const T* v, ptrdiff_t n)           \
{                                                                                   \
    ptrdiff_t i = 0;                                                                \
    for (; i + FL_LANES <= n; i += FL_LANES)                                        \
        for (int j = 0; j < FL_LANES; j++)                                          \
            acc[j] += (double)v[i + j];                                             \
    fl_lanes_tail_##SUFFIX(acc, v, i, n);                                           \
}
FL_DEFINE_LANES_ADD(f32, float)
FL_DEFINE_LANES_ADD(f64, double)
#endif


/* fl_sum_S(v, n): the sum of v[0 .. n) in float64, in FL_LANES lanes as fl_lanes_add_S
 * (lane j % FL_LANES, the last n % FL_LANES in order into lane 0) combined in
 * fl_lanes_total's tree: the same order, so the same bits, at every level.  (Before, an
 * `omp simd reduction` whose lanes were the compiler's: two vectors, whose adds waited on
 * each other, at 3 cycles a vector of 8 values at AVX2; four vectors here, 22-26% less
 * time per value on the 2-core Zen 4, bench/results/2026-12-03b-sums.txt.) */
FL_INLINE double fl_sum_f32(const float* v, ptrdiff_t n)
{
    double acc[FL_LANES];
    fl_lanes_zero(acc);
    fl_lanes_add_f32(acc, v, n);
    return fl_lanes_total(acc);
}

FL_INLINE double fl_sum_f64(const double* v, ptrdiff_t n)
{
    double acc[FL_LANES];
    fl_lanes_zero(acc);
    fl_lanes_add_f64(acc, v, n);
    return fl_lanes_total(acc);
}


/* fl_lanes_add_quads_f32(acc, v, n): a running sum of positive float terms (a softmax's
 * exp(z - max)) in lanes, each float64 lane fed a float sum of four terms.  Each group of
 * FL_QUAD = 4 L values (a quad; L = FL_LANES) adds (v[j] + v[j + L]) + (v[j + 2L] +
 * v[j + 3L]), summed in float in that order, to lane j; what is left after the last whole
 * quad goes as in fl_lanes_add_f32 (whole lanes, then the last n % L summed and added to
 * lane 0).  Every call but the last of a sum must add a multiple of FL_QUAD values.
 *
 * Why: converting float to double costs more than the add itself: fl_lanes_add_f32 took
 * 3 cycles per 16 floats on a Zen 5 core at AVX-512, near a third of a softmax row's exp
 * and sum.  A quad converts once for four values: a wide row's exp and sum took 6-8% less
 * time at baseline and AVX2, 13-19% less at AVX-512 (bench/wide_row_sums.c; the runs in
 * bench/results/2026-12-02b-quads.txt).  The price is two float roundings per quad, each
 * at most 2^-24 of the quad's sum: for terms of one sign the sum's relative error gains
 * at most 2^-23, however long the row (the float64 lanes still add every quad), against
 * the 1.5 ulp of each exp term.  The same sums at every level: float adds are the same in
 * every lane. */
#define FL_QUAD (4 * FL_LANES)
#if defined(FL_VECTOR_REGISTERS)
FL_INLINE void fl_lanes_add_quads_f32(double* acc, const float* v, ptrdiff_t n)
{
    fl_v_f64 a[FL_LANE_VECTORS];
    ptrdiff_t i = 0;
    if (n < FL_QUAD) {              /* no quad (a row of up to 63 classes): no lanes to load */
        fl_lanes_add_f32(acc, v, n);
        return;
    }
    for (int k = 0; k < FL_LANE_VECTORS; k++)
        a[k] = fl_vload_f64(acc + FL_W_f64 * k);
    for (; i + FL_QUAD <= n; i += FL_QUAD)
        for (int k = 0; k < FL_LANES / FL_W_f32; k++) {
            const float* p = v + i + FL_W_f32 * k;
            fl_v_f32 s = fl_vadd_f32(fl_vadd_f32(fl_vload_f32(p), fl_vload_f32(p + FL_LANES)),
                                     fl_vadd_f32(fl_vload_f32(p + 2 * FL_LANES),
                                                 fl_vload_f32(p + 3 * FL_LANES)));
            a[2 * k] = fl_vadd_f64(a[2 * k], fl_vlo_f64(s));
            a[2 * k + 1] = fl_vadd_f64(a[2 * k + 1], fl_vhi_f64(s));
        }
    for (int k = 0; k < FL_LANE_VECTORS; k++)
        fl_vstore_f64(acc + FL_W_f64 * k, a[k]);
    fl_lanes_add_f32(acc, v + i, n - i);
}
#else
FL_INLINE void fl_lanes_add_quads_f32(double* acc, const float* v, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + FL_QUAD <= n; i += FL_QUAD)
        for (int j = 0; j < FL_LANES; j++) {
            const float* p = v + i + j;
            float s = (p[0] + p[FL_LANES]) + (p[2 * FL_LANES] + p[3 * FL_LANES]);
            acc[j] += (double)s;
        }
    fl_lanes_add_f32(acc, v + i, n - i);
}
#endif

/* acc[j % FL_LANES] += a[j] * b[j] in float64 (as fl_lanes_add: the last n % FL_LANES
 * are summed in order, then added to acc[0]).  For float data the product is exact. */
#define FL_DEFINE_LANES_ADD_PROD(S, T)                                              \
FL_INLINE void fl_lanes_add_prod_##S(double* acc, const T* a, const T* b, ptrdiff_t n) \
{                                                                                   \
    ptrdiff_t i = 0;                                                                \
    double tail = 0.0;                                                              \
    for (; i + FL_LANES <= n; i += FL_LANES) {                                      \
        FL_SIMD                                                                     \
        for (int j = 0; j < FL_LANES; j++)                                          \
            acc[j] += (double)a[i + j] * (double)b[i + j];                          \
    }                                                                               \
    for (; i < n; i++)                                                              \
        tail += (double)a[i] * (double)b[i];                                        \
    acc[0] += tail;                                                                 \
}
FL_DEFINE_LANES_ADD_PROD(f64, double)

/* For float data on the SIMD layer, the lanes are held in registers as in fl_lanes_add
 * (the plain loop keeps them in memory, a store and a load per step).  The products of
 * floats are exact in float64, so the fma rounds as the multiply and add do. */
#if defined(FL_VECTOR_REGISTERS)
FL_INLINE void fl_lanes_add_prod_f32(double* acc, const float* a, const float* b, ptrdiff_t n)
{
    fl_v_f64 s[FL_LANE_VECTORS];
    ptrdiff_t i = 0;
    double tail = 0.0;
    for (int k = 0; k < FL_LANE_VECTORS; k++)
        s[k] = fl_vload_f64(acc + FL_W_f64 * k);
    for (; i + FL_LANES <= n; i += FL_LANES)
        for (int k = 0; k < FL_LANE_VECTORS; k++)
            s[k] = fl_vfma_f64(fl_vload_f32_as_f64(a + i + FL_W_f64 * k),
                               fl_vload_f32_as_f64(b + i + FL_W_f64 * k), s[k]);
    for (int k = 0; k < FL_LANE_VECTORS; k++)
        fl_vstore_f64(acc + FL_W_f64 * k, s[k]);
    for (; i < n; i++)
        tail += (double)a[i] * (double)b[i];
    acc[0] += tail;
}
#else
FL_DEFINE_LANES_ADD_PROD(f32, float)
#endif

/* fl_lanes_add_S(acc, a, n) and fl_lanes_add_prod_S(acc_ab, a, b, n) in one call, with the
 * same sums (bit for bit).  On the SIMD layer in one loop: each float of a is loaded and
 * converted to double once for both sums (a KL row's sum of targets and of target times
 * log-term), not twice. */
#if defined(FL_VECTOR_REGISTERS)
FL_INLINE void fl_lanes_add_and_prod_f32(double* acc, double* acc_ab, const float* a,
                                         const float* b, ptrdiff_t n)
{
    fl_v_f64 s[FL_LANE_VECTORS], p[FL_LANE_VECTORS];
    ptrdiff_t i = 0;
    double tail = 0.0;
    for (int k = 0; k < FL_LANE_VECTORS; k++) {
        s[k] = fl_vload_f64(acc + FL_W_f64 * k);
        p[k] = fl_vload_f64(acc_ab + FL_W_f64 * k);
    }
    for (; i + FL_LANES <= n; i += FL_LANES)
        for (int k = 0; k < FL_LANE_VECTORS; k++) {
            fl_v_f64 av = fl_vload_f32_as_f64(a + i + FL_W_f64 * k);
            s[k] = fl_vadd_f64(s[k], av);
            p[k] = fl_vfma_f64(av, fl_vload_f32_as_f64(b + i + FL_W_f64 * k), p[k]);
        }
    for (int k = 0; k < FL_LANE_VECTORS; k++) {
        fl_vstore_f64(acc + FL_W_f64 * k, s[k]);
        fl_vstore_f64(acc_ab + FL_W_f64 * k, p[k]);
    }
    fl_lanes_tail_f32(acc, a, i, n);
    for (; i < n; i++)
        tail += (double)a[i] * (double)b[i];
    acc_ab[0] += tail;
}
#else
FL_INLINE void fl_lanes_add_and_prod_f32(double* acc, double* acc_ab, const float* a,
                                         const float* b, ptrdiff_t n)
{
    fl_lanes_add_f32(acc, a, n);
    fl_lanes_add_prod_f32(acc_ab, a, b, n);
}
#endif

FL_INLINE void fl_lanes_add_and_prod_f64(double* acc, double* acc_ab, const double* a,
                                         const double* b, ptrdiff_t n)
{
    fl_lanes_add_f64(acc, a, n);
    fl_lanes_add_prod_f64(acc_ab, a, b, n);
}

#endif /* FASTLOSS_LANES_H */
