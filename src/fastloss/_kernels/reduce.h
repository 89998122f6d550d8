/*
 * fastloss vector reductions: sums and maxima that the compiler may vectorize.
 *
 * Plain C fixes the order of a floating-point sum, so a compiler cannot keep one partial
 * sum per vector lane without fast-math flags.  `#pragma omp simd reduction` grants exactly
 * that permission for one loop and nothing else (no change to NaN, inf or rounding of the
 * terms).  The lane order is fixed by the compiled code: for a given build, results are
 * identical for every run and every thread count (different instruction-set builds may
 * differ in the last bits).  Sums of float32 data accumulate in float64.
 *
 * Needs -fopenmp or -fopenmp-simd (setup.py passes one of them); without either the
 * loops stay correct, only scalar.
 */
#ifndef FASTLOSS_REDUCE_H
#define FASTLOSS_REDUCE_H

#include <math.h>
#include <stddef.h>

#include "fl_inline.h"

#if defined(_MSC_VER) && !defined(__clang__)
#define FL_SIMD
#define FL_SIMD_REDUCTION(...)
#else
#define FL_PRAGMA(x) _Pragma(#x)
#define FL_SIMD FL_PRAGMA(omp simd)
#define FL_SIMD_REDUCTION(...) FL_PRAGMA(omp simd reduction(__VA_ARGS__))
#endif

/* sum of v[0 .. n) in float64 */
FL_INLINE double fl_sum_f32(const float* v, ptrdiff_t n)
{
    double acc = 0.0;
    FL_SIMD_REDUCTION(+:acc)
    for (ptrdiff_t i = 0; i < n; i++)
        acc += (double)v[i];
    return acc;
}

FL_INLINE double fl_sum_f64(const double* v, ptrdiff_t n)
{
    double acc = 0.0;
    FL_SIMD_REDUCTION(+:acc)
    for (ptrdiff_t i = 0; i < n; i++)
        acc += v[i];
    return acc;
}

/* Ask for the cache lines of p[0 .. bytes) ahead of use (a hint; never faults). */
FL_INLINE void fl_prefetch(const void* p, ptrdiff_t bytes)
{
#if defined(__GNUC__) || defined(__clang__)
    for (ptrdiff_t i = 0; i < bytes; i += 64)
        __builtin_prefetch((const char*)p + i, 0, 3);
#else
    (void)p;
    (void)bytes;
#endif
}

/* Running sums in lanes.  A sum that runs over many tiles (a wide softmax row) keeps
 * FL_LANES float64 partial sums: element j of a call goes to lane j % FL_LANES, except the
 * last n % FL_LANES, which are added in order and then to lane 0; the lanes are combined
 * once, at the end, in a fixed tree (fl_lanes_total).  A sum per tile instead pays the
 * horizontal reduction of every tile, which GCC compiles into a chain of 16 dependent
 * scalar adds: a fifth of a KL divergence's time at 256 elements per tile.  The order is
 * fixed by this code, the same at every instruction-set level. */
#define FL_LANES 16

FL_INLINE void fl_lanes_zero(double* acc)
{
    for (int j = 0; j < FL_LANES; j++)
        acc[j] = 0.0;
}

/* acc[j % FL_LANES] += v[j] for j < n (the last n % FL_LANES: summed, then to acc[0]).
 *
 * Written with intrinsics for AVX2 and AVX-512 (the same sums in the same order as the
 * portable loop): compilers unroll the portable loop completely inside the kernels, where
 * n <= TILE is known, keep the lanes in memory and convert float to double a quarter
 * vector at a time (measured: a fifth of a KL divergence's time). */
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

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

#if defined(__AVX512F__) || defined(__AVX2__)
FL_INLINE double fl_lanes_fold4(__m256d v)        /* (v0 + v2) + (v1 + v3) */
{
    __m128d a = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(a, _mm_unpackhi_pd(a, a)));
}
#endif

#if defined(__AVX512F__)
#define FL_LANE_VECTORS 2           /* of 8 doubles */
typedef __m512d fl_lanev;
#define FL_LANEV_LOAD _mm512_loadu_pd
#define FL_LANEV_STORE _mm512_storeu_pd
#define FL_LANEV_ADD _mm512_add_pd
#define FL_LANEV_CVT(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define FL_LANEV_FOLD(v) \
    fl_lanes_fold4(_mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1)))
#elif defined(__AVX2__)
#define FL_LANE_VECTORS 4           /* of 4 doubles */
typedef __m256d fl_lanev;
#define FL_LANEV_LOAD _mm256_loadu_pd
#define FL_LANEV_STORE _mm256_storeu_pd
#define FL_LANEV_ADD _mm256_add_pd
#define FL_LANEV_CVT(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define FL_LANEV_FOLD fl_lanes_fold4
#endif

#if defined(FL_LANE_VECTORS)
#define FL_LANEV_WIDTH (FL_LANES / FL_LANE_VECTORS)
/* LOAD(p): FL_LANEV_WIDTH values at p as doubles */
#define FL_DEFINE_LANES_ADD(SUFFIX, T, LOAD)                                        \
FL_INLINE void fl_lanes_add_##SUFFIX(double* acc, const T* v, ptrdiff_t n)           \
{                                                                                   \
    fl_lanev a[FL_LANE_VECTORS];                                                    \
    ptrdiff_t i = 0;                                                                \
    for (int k = 0; k < FL_LANE_VECTORS; k++)                                       \
        a[k] = FL_LANEV_LOAD(acc + FL_LANEV_WIDTH * k);                             \
    for (; i + FL_LANES <= n; i += FL_LANES)                                        \
        for (int k = 0; k < FL_LANE_VECTORS; k++)                                   \
            a[k] = FL_LANEV_ADD(a[k], LOAD(v + i + FL_LANEV_WIDTH * k));            \
    for (int k = 0; k < FL_LANE_VECTORS; k++)                                       \
        FL_LANEV_STORE(acc + FL_LANEV_WIDTH * k, a[k]);                             \
    fl_lanes_tail_##SUFFIX(acc, v, i, n);                                           \
}
FL_DEFINE_LANES_ADD(f32, float, FL_LANEV_CVT)
FL_DEFINE_LANES_ADD(f64, double, FL_LANEV_LOAD)

/* the same tree as the loop version below, in registers instead of through memory */
FL_INLINE double fl_lanes_total(const double* acc)
{
    fl_lanev a[FL_LANE_VECTORS];
    for (int k = 0; k < FL_LANE_VECTORS; k++)
        a[k] = FL_LANEV_LOAD(acc + FL_LANEV_WIDTH * k);
    for (int w = FL_LANE_VECTORS / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; k++)
            a[k] = FL_LANEV_ADD(a[k], a[k + w]);
    return FL_LANEV_FOLD(a[0]);
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
FL_DEFINE_LANES_ADD_PROD(f32, float)
FL_DEFINE_LANES_ADD_PROD(f64, double)

/* fl_max_at_S(v, n, m_out): the maximum of v[0 .. n) (-inf for n = 0; NaN elements may or
 * may not be skipped) into *m_out, and an index where v equals it, or -1 if none does
 * (n = 0, or only NaN).  With AVX2 or AVX-512, intrinsics below; otherwise this loop.
 * Explicit lanes rather than `omp simd reduction(max:)`: a select is not an IEEE max, so
 * Clang (no fast-math) leaves that reduction scalar; an element-wise loop over the lanes
 * vectorizes everywhere (x86 maxps is exactly `a > b ? a : b`).  The lane that holds the
 * maximum then says which positions to search: n / 16 of them, not n.  (64 lanes, four
 * vectors, measured twice as slow at 1000 values: the final fold costs more.) */
#define FL_MAX_LANES 16
#define FL_DEFINE_MAX_AT(NAME, T)                                                   \
FL_INLINE ptrdiff_t NAME(const T* v, ptrdiff_t n, T* m_out)                          \
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

/* Transposes between R rows of C values (row stride `stride`) and a (C, R) tile,
 * dst[c * R + r] = src[r * stride + c] and back.
 *
 * Portable form (the baseline level, and the rows past the last register block): loops
 * over rows for each class.  The write-back is classes outer, rows inner: strided stores
 * and contiguous loads (the other order measured 7x slower).  With AVX2 or AVX-512 both
 * types go through registers instead (below). */
#define FL_DEFINE_TRANSPOSE(SUFFIX, T)                                              \
FL_INLINE void fl_transpose_in_loop_##SUFFIX(const T* src, ptrdiff_t stride,         \
                                             ptrdiff_t R, ptrdiff_t C, T* dst,      \
                                             ptrdiff_t ld)                          \
{                                                                                   \
    for (ptrdiff_t c = 0; c < C; c++) {                                             \
        FL_SIMD                                                                     \
        for (ptrdiff_t r = 0; r < R; r++)                                           \
            dst[c * ld + r] = src[r * stride + c];                                  \
    }                                                                               \
}                                                                                   \
FL_INLINE void fl_transpose_out_loop_##SUFFIX(const T* srcT, ptrdiff_t ldT,          \
                                              ptrdiff_t R, ptrdiff_t C, T* dst)     \
{                                                                                   \
    for (ptrdiff_t c = 0; c < C; c++)                                               \
        for (ptrdiff_t r = 0; r < R; r++)                                           \
            dst[r * C + c] = srcT[c * ldT + r];                                     \
}
FL_DEFINE_TRANSPOSE(f32, float)
FL_DEFINE_TRANSPOSE(f64, double)

/* Transpose in as above (the tile's rows ld apart), and, unless m is NULL, m[r] = the
 * maximum of row r (NaN: as `v > m ? v : m` from the first class, a scalar loop's). */
#define FL_DEFINE_TRANSPOSE_IN_MAX_LOOP(SUFFIX, T)                                 \
FL_INLINE void fl_transpose_in_max_loop_##SUFFIX(const T* src, ptrdiff_t stride,     \
                                                 ptrdiff_t R, ptrdiff_t C, T* dst,  \
                                                 ptrdiff_t ld, T* m)                \
{                                                                                   \
    fl_transpose_in_loop_##SUFFIX(src, stride, R, C, dst, ld);                      \
    if (m == NULL)                                                                  \
        return;                                                                     \
    for (ptrdiff_t r = 0; r < R; r++)                                               \
        m[r] = dst[r];                                                              \
    for (ptrdiff_t c = 1; c < C; c++) {                                             \
        FL_SIMD                                                                     \
        for (ptrdiff_t r = 0; r < R; r++)                                           \
            m[r] = dst[c * ld + r] > m[r] ? dst[c * ld + r] : m[r];                 \
    }                                                                               \
}
FL_DEFINE_TRANSPOSE_IN_MAX_LOOP(f32, float)
FL_DEFINE_TRANSPOSE_IN_MAX_LOOP(f64, double)

/* Vector registers, for the register transposes and fl_max_at: W = 16 floats or 8 doubles
 * with AVX-512, 8 floats or 4 doubles with AVX2.  Per type S (f32, f64) and level:
 * fl_v_S (the vector type), FL_W_S, loads and stores of whole vectors and of their first n
 * lanes, max, zero, broadcast, the bit mask of lanes equal to a value, the largest lane,
 * and fl_vtranspose_S, which turns v[j] = row j into v[c] = column c. */
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#define FL_VECTOR_REGISTERS 1

/* the largest lane of a vector without NaN */
FL_INLINE float fl_hmax8_f32(__m256 v)
{
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    return _mm_cvtss_f32(_mm_max_ss(a, _mm_shuffle_ps(a, a, 1)));
}
FL_INLINE double fl_hmax4_f64(__m256d v)
{
    __m128d a = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(a, _mm_unpackhi_pd(a, a)));
}

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
FL_INLINE int fl_ctz(unsigned x)                /* x != 0 */
{
    unsigned long i;
    _BitScanForward(&i, x);
    return (int)i;
}
#else
FL_INLINE int fl_ctz(unsigned x) { return __builtin_ctz(x); }
#endif
#endif

#if defined(__AVX512F__)
#define FL_MASKED_STORES 1      /* fast on every AVX-512 CPU */
#define FL_W_f32 16
#define FL_W_f64 8
typedef __m512 fl_v_f32;
typedef __m512d fl_v_f64;
FL_INLINE fl_v_f32 fl_vload_f32(const float* p) { return _mm512_loadu_ps(p); }
FL_INLINE fl_v_f64 fl_vload_f64(const double* p) { return _mm512_loadu_pd(p); }
FL_INLINE fl_v_f32 fl_vload_first_f32(const float* p, int n)     /* p[0 .. n), zeros after */
{
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
}
FL_INLINE fl_v_f64 fl_vload_first_f64(const double* p, int n)
{
    return _mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1u), p);
}
FL_INLINE void fl_vstore_f32(float* p, fl_v_f32 v) { _mm512_storeu_ps(p, v); }
FL_INLINE void fl_vstore_f64(double* p, fl_v_f64 v) { _mm512_storeu_pd(p, v); }
FL_INLINE void fl_vstore_first_f32(float* p, int n, fl_v_f32 v)   /* p[0 .. n) only */
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), v);
}
FL_INLINE void fl_vstore_first_f64(double* p, int n, fl_v_f64 v)
{
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1u), v);
}
/* max(v, m) is `v > m ? v : m`, NaN included, as the scalar loops */
FL_INLINE fl_v_f32 fl_vmax_f32(fl_v_f32 v, fl_v_f32 m) { return _mm512_max_ps(v, m); }
FL_INLINE fl_v_f64 fl_vmax_f64(fl_v_f64 v, fl_v_f64 m) { return _mm512_max_pd(v, m); }
FL_INLINE fl_v_f32 fl_vzero_f32(void) { return _mm512_setzero_ps(); }
FL_INLINE fl_v_f64 fl_vzero_f64(void) { return _mm512_setzero_pd(); }
FL_INLINE fl_v_f32 fl_vset1_f32(float x) { return _mm512_set1_ps(x); }
FL_INLINE fl_v_f64 fl_vset1_f64(double x) { return _mm512_set1_pd(x); }
FL_INLINE unsigned fl_veq_bits_f32(fl_v_f32 a, fl_v_f32 b)
{
    return (unsigned)_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ);
}
FL_INLINE unsigned fl_veq_bits_f64(fl_v_f64 a, fl_v_f64 b)
{
    return (unsigned)_mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ);
}
FL_INLINE float fl_vhmax_f32(fl_v_f32 v)
{
    __m512d d = _mm512_castps_pd(v);
    return fl_hmax8_f32(_mm256_max_ps(_mm512_castps512_ps256(v),
                                      _mm256_castpd_ps(_mm512_extractf64x4_pd(d, 1))));
}
FL_INLINE double fl_vhmax_f64(fl_v_f64 v)
{
    return fl_hmax4_f64(_mm256_max_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1)));
}

FL_INLINE void fl_vtranspose_f32(fl_v_f32 v[16])
{
    fl_v_f32 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        v[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        v[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        v[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        v[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(v[i], v[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(v[i], v[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(v[i + 8], v[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(v[i + 8], v[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        v[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        v[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

FL_INLINE void fl_vtranspose_f64(fl_v_f64 v[8])
{
    fl_v_f64 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_pd(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_pd(v[i], v[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {             /* 128-bit lanes 0, 2 and 1, 3 */
        u[i] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0x88);
        u[i + 1] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0x88);
        u[i + 2] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0xdd);
        u[i + 3] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        v[i] = _mm512_shuffle_f64x2(u[i], u[i + 4], 0x88);
        v[i + 4] = _mm512_shuffle_f64x2(u[i], u[i + 4], 0xdd);
    }
}
#elif defined(__AVX2__)
#define FL_MASKED_STORES 0      /* vmaskmovps/pd stores are microcoded on AMD Zen 1-3 */
#define FL_W_f32 8
#define FL_W_f64 4
typedef __m256 fl_v_f32;
typedef __m256d fl_v_f64;
FL_INLINE fl_v_f32 fl_vload_f32(const float* p) { return _mm256_loadu_ps(p); }
FL_INLINE fl_v_f64 fl_vload_f64(const double* p) { return _mm256_loadu_pd(p); }
FL_INLINE fl_v_f32 fl_vload_first_f32(const float* p, int n)
{
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return n == 8 ? _mm256_loadu_ps(p)
                  : _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes));
}
FL_INLINE fl_v_f64 fl_vload_first_f64(const double* p, int n)
{
    __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
    return n == 4 ? _mm256_loadu_pd(p)
                  : _mm256_maskload_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), lanes));
}
FL_INLINE void fl_vstore_f32(float* p, fl_v_f32 v) { _mm256_storeu_ps(p, v); }
FL_INLINE void fl_vstore_f64(double* p, fl_v_f64 v) { _mm256_storeu_pd(p, v); }
/* (the transposes only store whole vectors here: FL_MASKED_STORES is 0) */
FL_INLINE void fl_vstore_first_f32(float* p, int n, fl_v_f32 v)
{
    float lane[8];
    if (n == 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    _mm256_storeu_ps(lane, v);
    for (int i = 0; i < n; i++)
        p[i] = lane[i];
}
FL_INLINE void fl_vstore_first_f64(double* p, int n, fl_v_f64 v)
{
    double lane[4];
    if (n == 4) {
        _mm256_storeu_pd(p, v);
        return;
    }
    _mm256_storeu_pd(lane, v);
    for (int i = 0; i < n; i++)
        p[i] = lane[i];
}
FL_INLINE fl_v_f32 fl_vmax_f32(fl_v_f32 v, fl_v_f32 m) { return _mm256_max_ps(v, m); }
FL_INLINE fl_v_f64 fl_vmax_f64(fl_v_f64 v, fl_v_f64 m) { return _mm256_max_pd(v, m); }
FL_INLINE fl_v_f32 fl_vzero_f32(void) { return _mm256_setzero_ps(); }
FL_INLINE fl_v_f64 fl_vzero_f64(void) { return _mm256_setzero_pd(); }
FL_INLINE fl_v_f32 fl_vset1_f32(float x) { return _mm256_set1_ps(x); }
FL_INLINE fl_v_f64 fl_vset1_f64(double x) { return _mm256_set1_pd(x); }
FL_INLINE unsigned fl_veq_bits_f32(fl_v_f32 a, fl_v_f32 b)
{
    return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_EQ_OQ));
}
FL_INLINE unsigned fl_veq_bits_f64(fl_v_f64 a, fl_v_f64 b)
{
    return (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(a, b, _CMP_EQ_OQ));
}
FL_INLINE float fl_vhmax_f32(fl_v_f32 v) { return fl_hmax8_f32(v); }
FL_INLINE double fl_vhmax_f64(fl_v_f64 v) { return fl_hmax4_f64(v); }

FL_INLINE void fl_vtranspose_f32(fl_v_f32 v[8])
{
    fl_v_f32 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

FL_INLINE void fl_vtranspose_f64(fl_v_f64 v[4])
{
    fl_v_f64 t0 = _mm256_unpacklo_pd(v[0], v[1]), t1 = _mm256_unpackhi_pd(v[0], v[1]);
    fl_v_f64 t2 = _mm256_unpacklo_pd(v[2], v[3]), t3 = _mm256_unpackhi_pd(v[2], v[3]);
    v[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    v[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    v[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    v[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}
#endif

#ifdef FL_VECTOR_REGISTERS
/* fl_max_at with vectors: two running maxima of W lanes (the last W values are loaded once
 * more where W does not divide n: a maximum does not mind), one fold through registers,
 * then the first vector that holds the maximum says where it is, so the index is the
 * first one.  The loop above, which folds its 16 lanes through memory and then searches
 * one lane element by element, measured 3-8x slower at n = 1000 on its own (in a KL
 * row, where this pass mostly waits for the row to arrive from memory: 1-2%). */
#define FL_DEFINE_MAX_AT_REG(S, T)                                                  \
FL_INLINE ptrdiff_t fl_max_at_##S(const T* v, ptrdiff_t n, T* m_out)                 \
{                                                                                   \
    const ptrdiff_t W = FL_W_##S;                                                   \
    fl_v_##S a, b, vm;                                                              \
    ptrdiff_t i;                                                                    \
    unsigned bits;                                                                  \
    if (n < W)                                                                      \
        return fl_max_at_loop_##S(v, n, m_out);                                     \
    a = fl_vmax_##S(fl_vload_##S(v), fl_vset1_##S(-INFINITY));    /* NaN skipped */ \
    b = fl_vmax_##S(fl_vload_##S(v + n - W), a);                                    \
    for (i = W; i + 2 * W <= n; i += 2 * W) {                                       \
        a = fl_vmax_##S(fl_vload_##S(v + i), a);                                    \
        b = fl_vmax_##S(fl_vload_##S(v + i + W), b);                                \
    }                                                                               \
    if (i + W <= n)                                                                 \
        a = fl_vmax_##S(fl_vload_##S(v + i), a);                                    \
    *m_out = fl_vhmax_##S(fl_vmax_##S(a, b));                                       \
    vm = fl_vset1_##S(*m_out);                                                      \
    for (i = 0; i + W <= n; i += W)                                                 \
        if ((bits = fl_veq_bits_##S(fl_vload_##S(v + i), vm)) != 0)                 \
            return i + fl_ctz(bits);                                                \
    bits = fl_veq_bits_##S(fl_vload_##S(v + n - W), vm);                            \
    return bits != 0 ? n - W + fl_ctz(bits) : -1;                                   \
}
FL_DEFINE_MAX_AT_REG(f32, float)
FL_DEFINE_MAX_AT_REG(f64, double)

/* Blocks of W rows x W classes: masked row loads (or stores) and one register transpose,
 * about 3x fewer instructions than W * W scalar moves or W gathers.  Rows past the last
 * whole block of W use the loops above; so do the classes past the last whole block where
 * masked stores are slow.  With `m`, also the row maxima. */
#define FL_DEFINE_REGISTER_TRANSPOSES(S, T)                                         \
FL_INLINE void fl_transpose_in_max_reg_##S(const T* src, ptrdiff_t stride, ptrdiff_t R,   \
                                           ptrdiff_t C, T* dst, T* m)               \
{                                                                                   \
    const int W = FL_W_##S;                                                         \
    ptrdiff_t RW = R - R % W;                                                       \
    fl_v_##S v[FL_W_##S];                                                           \
    for (ptrdiff_t c0 = 0; c0 < C; c0 += W) {                                       \
        int nc = C - c0 < W ? (int)(C - c0) : W;                                    \
        for (ptrdiff_t r0 = 0; r0 < RW; r0 += W) {                                  \
            for (int j = 0; j < W; j++)                                             \
                v[j] = fl_vload_first_##S(src + (r0 + j) * stride + c0, nc);        \
            fl_vtranspose_##S(v);                                                   \
            for (int c = 0; c < nc; c++)                                            \
                fl_vstore_##S(dst + (c0 + c) * R + r0, v[c]);                       \
            if (m != NULL) {                                                        \
                fl_v_##S mx = c0 == 0 ? v[0] : fl_vload_##S(m + r0);                \
                for (int c = 0; c < nc; c++)                                        \
                    mx = fl_vmax_##S(v[c], mx);                                     \
                fl_vstore_##S(m + r0, mx);                                          \
            }                                                                       \
        }                                                                           \
    }                                                                               \
    if (RW < R)                                                                     \
        fl_transpose_in_max_loop_##S(src + RW * stride, stride, R - RW, C, dst + RW, R, \
                                     m == NULL ? NULL : m + RW);                    \
}                                                                                   \
FL_INLINE void fl_transpose_in_##S(const T* src, ptrdiff_t stride, ptrdiff_t R,       \
                                   ptrdiff_t C, T* dst)                             \
{                                                                                   \
    fl_transpose_in_max_reg_##S(src, stride, R, C, dst, NULL);                      \
}                                                                                   \
FL_INLINE void fl_transpose_in_max_##S(const T* src, ptrdiff_t stride, ptrdiff_t R,   \
                                       ptrdiff_t C, T* dst, T* m)                   \
{                                                                                   \
    fl_transpose_in_max_reg_##S(src, stride, R, C, dst, m);                         \
}                                                                                   \
FL_INLINE void fl_transpose_out_##S(const T* srcT, ptrdiff_t R, ptrdiff_t C, T* dst)  \
{                                                                                   \
    const int W = FL_W_##S;                                                         \
    ptrdiff_t RW = R - R % W;                                                       \
    ptrdiff_t CW = FL_MASKED_STORES ? C : C - C % W;    /* classes via registers */ \
    fl_v_##S v[FL_W_##S];                                                           \
    for (ptrdiff_t c0 = 0; c0 < CW; c0 += W) {                                      \
        int nc = CW - c0 < W ? (int)(CW - c0) : W;                                  \
        for (ptrdiff_t r0 = 0; r0 < RW; r0 += W) {                                  \
            for (int c = 0; c < W; c++)                                             \
                v[c] = c < nc ? fl_vload_##S(srcT + (c0 + c) * R + r0)              \
                              : fl_vzero_##S();                                     \
            fl_vtranspose_##S(v);                                                   \
            for (int j = 0; j < W; j++)                                             \
                fl_vstore_first_##S(dst + (r0 + j) * C + c0, nc, v[j]);            \
        }                                                                           \
    }                                                                               \
    for (ptrdiff_t c = CW; c < C; c++)                  /* the rest: scalar stores */ \
        for (ptrdiff_t r = 0; r < RW; r++)                                          \
            dst[r * C + c] = srcT[c * R + r];                                       \
    if (RW < R)                                                                     \
        fl_transpose_out_loop_##S(srcT + RW, R, R - RW, C, dst + RW * C);           \
}
FL_DEFINE_REGISTER_TRANSPOSES(f32, float)
FL_DEFINE_REGISTER_TRANSPOSES(f64, double)
#else
FL_INLINE ptrdiff_t fl_max_at_f32(const float* v, ptrdiff_t n, float* m_out)
{
    return fl_max_at_loop_f32(v, n, m_out);
}
FL_INLINE ptrdiff_t fl_max_at_f64(const double* v, ptrdiff_t n, double* m_out)
{
    return fl_max_at_loop_f64(v, n, m_out);
}
#define FL_DEFINE_LOOP_TRANSPOSES(S, T)                                             \
FL_INLINE void fl_transpose_in_##S(const T* src, ptrdiff_t stride, ptrdiff_t R,       \
                                   ptrdiff_t C, T* dst)                             \
{                                                                                   \
    fl_transpose_in_loop_##S(src, stride, R, C, dst, R);                            \
}                                                                                   \
FL_INLINE void fl_transpose_in_max_##S(const T* src, ptrdiff_t stride, ptrdiff_t R,   \
                                       ptrdiff_t C, T* dst, T* m)                   \
{                                                                                   \
    fl_transpose_in_max_loop_##S(src, stride, R, C, dst, R, m);                     \
}                                                                                   \
FL_INLINE void fl_transpose_out_##S(const T* srcT, ptrdiff_t R, ptrdiff_t C, T* dst)  \
{                                                                                   \
    fl_transpose_out_loop_##S(srcT, R, R, C, dst);                                  \
}
FL_DEFINE_LOOP_TRANSPOSES(f32, float)
FL_DEFINE_LOOP_TRANSPOSES(f64, double)
#endif

#endif /* FASTLOSS_REDUCE_H */
