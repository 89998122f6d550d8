/*
 * fl_max_at_S(v, n, m_out): the maximum of v[0 .. n) (-inf for n = 0; NaN elements may or
 * may not be skipped) into *m_out, and an index where v equals it, or -1 if none does
 * (n = 0, or only NaN): the softmax rows' maximum and the class that holds it.
 */
#ifndef FASTLOSS_MAXAT_H
#define FASTLOSS_MAXAT_H

#include "simd.h"

/* The plain loop (the baseline level, and short rows).  Explicit lanes rather than
 * `omp simd reduction(max:)`: a select is not an IEEE max, so Clang (no fast-math) leaves
 * that reduction scalar; an element-wise loop over the lanes vectorizes everywhere (x86
 * maxps is exactly `a > b ? a : b`).  The lane that holds the maximum then says which
 * positions to search: n / 16 of them, not n.  (More lanes make the final fold cost more
 * than they save on rows of about a thousand values.) */
#define FL_MAX_LANES 16
#define FL_DEFINE_MAX_AT(NAME, T)                                                   \
FL_INLINE ptrdiff_t NAME(const T* v, ptrdiff_t n, T* m_out)                         \
{                                                                                   \
    T lane[FL_MAX_LANES], m = -INFINITY;                                            \
    ptrdiff_t i = 0, full;                                                          \
    for (int l = 0; l < FL_MAX_LANES; l++)                                          \
        lane[l] = -INFINITY;                                                        \
    for (; i + FL_MAX_LANES <= n; i += FL_MAX_LANES) {                              \
        FL_SIMD                                                                     \
        for (int l = 0; l < FL_MAX_LANES; l++)                                      \
            lane[l] = v[i + l] > lane[l] ? v[i + l] : lane[l];                      \
    }                                                                               \
    full = i;                                                                       \
    for (; i < n; i++)                                                              \
        m = v[i] > m ? v[i] : m;                                                    \
    for (int l = 0; l < FL_MAX_LANES; l++)                                          \
        m = lane[l] > m ? lane[l] : m;                                              \
    *m_out = m;                                                                     \
    for (int l = 0; l < FL_MAX_LANES; l++)                                          \
        if (lane[l] == m)                                                           \
            for (i = l; i < full; i += FL_MAX_LANES)                                \
                if (v[i] == m)                                                      \
                    return i;                                                       \
    for (i = full; i < n; i++)                                                      \
        if (v[i] == m)                                                              \
            return i;                                                               \
    return -1;                                                                      \
}
FL_DEFINE_MAX_AT(fl_max_at_loop_f32, float)
FL_DEFINE_MAX_AT(fl_max_at_loop_f64, double)

#ifdef FL_VECTOR_REGISTERS
/* On the SIMD layer: four running maxima of W lanes (the last W values are loaded once
 * more where W does not divide n: a maximum does not mind), one fold through registers,
 * then the first vector that holds the maximum says where it is, so the index is the
 * first one; the search tests four vectors per branch (their compare bits or-ed) before
 * it looks at one.  The plain loop folds its 16 lanes through memory and then searches
 * one lane element by element, which costs several times more on rows of about a
 * thousand values.  (Two maxima and one vector per branch took 0.15 ns per value on the
 * 2-core EPYC, AVX2, rows of 1000 floats in L2; this takes 0.094.)  NAME reads elements of
 * type E, W at a time by LOAD (as vectors of S: half.h's rows of float16 and bfloat16 are
 * read widened), and SMALL(v, n, m_out) takes rows shorter than a vector. */
#define FL_DEFINE_MAX_AT_REG(NAME, E, S, T, LOAD, SMALL)                            \
FL_INLINE ptrdiff_t NAME(const E* v, ptrdiff_t n, T* m_out)                         \
{                                                                                   \
    const ptrdiff_t W = FL_W_##S;                                                   \
    fl_v_##S a, b, c, d, vm;                                                        \
    ptrdiff_t i;                                                                    \
    unsigned bits;                                                                  \
    if (n < W)                                                                      \
        return SMALL(v, n, m_out);                                                  \
    a = fl_vmax_##S(LOAD(v), fl_vset1_##S(-INFINITY));    /* NaN skipped */         \
    b = fl_vmax_##S(LOAD(v + n - W), a);                                            \
    c = a;                                                                          \
    d = b;                                                                          \
    for (i = W; i + 4 * W <= n; i += 4 * W) {                                       \
        a = fl_vmax_##S(LOAD(v + i), a);                                            \
        b = fl_vmax_##S(LOAD(v + i + W), b);                                        \
        c = fl_vmax_##S(LOAD(v + i + 2 * W), c);                                    \
        d = fl_vmax_##S(LOAD(v + i + 3 * W), d);                                    \
    }                                                                               \
    for (; i + W <= n; i += W)                                                      \
        a = fl_vmax_##S(LOAD(v + i), a);                                            \
    *m_out = fl_vhmax_##S(fl_vmax_##S(fl_vmax_##S(a, b), fl_vmax_##S(c, d)));       \
    vm = fl_vset1_##S(*m_out);                                                      \
    for (i = 0; i + 4 * W <= n; i += 4 * W)                                         \
        if ((fl_veq_bits_##S(LOAD(v + i), vm)                                       \
             | fl_veq_bits_##S(LOAD(v + i + W), vm)                                 \
             | fl_veq_bits_##S(LOAD(v + i + 2 * W), vm)                             \
             | fl_veq_bits_##S(LOAD(v + i + 3 * W), vm)) != 0)                      \
            break;                                /* the first match is in these 4 W */ \
    for (; i + W <= n; i += W)                                                      \
        if ((bits = fl_veq_bits_##S(LOAD(v + i), vm)) != 0)                         \
            return i + fl_ctz(bits);                                                \
    bits = fl_veq_bits_##S(LOAD(v + n - W), vm);                                    \
    return bits != 0 ? n - W + fl_ctz(bits) : -1;                                   \
}
FL_DEFINE_MAX_AT_REG(fl_max_at_f32, float, f32, float, fl_vload_f32, fl_max_at_loop_f32)
FL_DEFINE_MAX_AT_REG(fl_max_at_f64, double, f64, double, fl_vload_f64, fl_max_at_loop_f64)
#else
FL_INLINE ptrdiff_t fl_max_at_f32(const float* v, ptrdiff_t n, float* m_out)
{
    return fl_max_at_loop_f32(v, n, m_out);
}
FL_INLINE ptrdiff_t fl_max_at_f64(const double* v, ptrdiff_t n, double* m_out)
{
    return fl_max_at_loop_f64(v, n, m_out);
}
#endif

#endif /* FASTLOSS_MAXAT_H */
