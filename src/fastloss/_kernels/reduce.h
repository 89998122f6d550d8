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

/* max of v[0 .. n) (-inf for n = 0); NaN elements may or may not be skipped.
 * Explicit lanes rather than `omp simd reduction(max:)`: a select is not an IEEE max, so
 * Clang (no fast-math) leaves that reduction scalar; an element-wise loop over the lanes
 * vectorizes everywhere (x86 maxps is exactly `a > b ? a : b`). */
#define FL_MAX_LANES 16
#define FL_DEFINE_MAX(NAME, T)                                                      \
FL_INLINE T NAME(const T* v, ptrdiff_t n)                                           \
{                                                                                   \
    T lane[FL_MAX_LANES], m = -INFINITY;                                            \
    ptrdiff_t i = 0;                                                                \
    for (int l = 0; l < FL_MAX_LANES; l++)                                          \
        lane[l] = -INFINITY;                                                        \
    for (; i + FL_MAX_LANES <= n; i += FL_MAX_LANES) {                              \
        FL_SIMD                                                                     \
        for (int l = 0; l < FL_MAX_LANES; l++)                                      \
            lane[l] = v[i + l] > lane[l] ? v[i + l] : lane[l];                      \
    }                                                                               \
    for (; i < n; i++)                                                              \
        m = v[i] > m ? v[i] : m;                                                    \
    for (int l = 0; l < FL_MAX_LANES; l++)                                          \
        m = lane[l] > m ? lane[l] : m;                                              \
    return m;                                                                       \
}
FL_DEFINE_MAX(fl_max_f32, float)
FL_DEFINE_MAX(fl_max_f64, double)

/* Softmax sums of e = exp(z - max(z)): *t += sum of the e < 1, *k += count of e == 1.
 * (S - 1 = (k - 1) + t is then exact where 1 + t would round.) */
FL_INLINE void fl_split_sum_f32(const float* e, ptrdiff_t n, double* t, double* k)
{
    double ts = 0.0, ks = 0.0;
    FL_SIMD_REDUCTION(+:ts,ks)
    for (ptrdiff_t i = 0; i < n; i++) {
        double v = (double)e[i];
        ts += v == 1.0 ? 0.0 : v;
        ks += v == 1.0 ? 1.0 : 0.0;
    }
    *t += ts;
    *k += ks;
}

FL_INLINE void fl_split_sum_f64(const double* e, ptrdiff_t n, double* t, double* k)
{
    double ts = 0.0, ks = 0.0;
    FL_SIMD_REDUCTION(+:ts,ks)
    for (ptrdiff_t i = 0; i < n; i++) {
        double v = e[i];
        ts += v == 1.0 ? 0.0 : v;
        ks += v == 1.0 ? 1.0 : 0.0;
    }
    *t += ts;
    *k += ks;
}

/* Transposes between R rows of C values (row stride `stride`) and a (C, R) tile,
 * dst[c * R + r] = src[r * stride + c] and back.
 *
 * Portable form: loops over rows for each class; the simd loop lets the compiler use
 * gather loads (AVX2, AVX-512), 1.3-1.7x faster than scalar loads on an AMD Zen 4 for
 * C = 4-10.  The write-back is classes outer, rows inner: strided stores and contiguous
 * loads (the other order measured 7x slower).
 *
 * With AVX2 or AVX-512, float32 goes through registers instead (below). */
#define FL_DEFINE_TRANSPOSE(SUFFIX, T)                                              \
FL_INLINE void fl_transpose_in_loop_##SUFFIX(const T* src, ptrdiff_t stride,         \
                                             ptrdiff_t R, ptrdiff_t C, T* dst)      \
{                                                                                   \
    for (ptrdiff_t c = 0; c < C; c++) {                                             \
        FL_SIMD                                                                     \
        for (ptrdiff_t r = 0; r < R; r++)                                           \
            dst[c * R + r] = src[r * stride + c];                                   \
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

/* Transpose in as above, and m[r] = max over the row's C values (NaN: as `v > m ? v : m`
 * from the first class, the same as a scalar loop). */
#define FL_DEFINE_TRANSPOSE_IN_MAX_LOOP(SUFFIX, T)                                 \
FL_INLINE void fl_transpose_in_max_loop_##SUFFIX(const T* src, ptrdiff_t stride,     \
                                                 ptrdiff_t R, ptrdiff_t C, T* dst,  \
                                                 T* m)                              \
{                                                                                   \
    fl_transpose_in_loop_##SUFFIX(src, stride, R, C, dst);                          \
    for (ptrdiff_t r = 0; r < R; r++)                                               \
        m[r] = dst[r];                                                              \
    for (ptrdiff_t c = 1; c < C; c++) {                                             \
        FL_SIMD                                                                     \
        for (ptrdiff_t r = 0; r < R; r++)                                           \
            m[r] = dst[c * R + r] > m[r] ? dst[c * R + r] : m[r];                   \
    }                                                                               \
}
FL_DEFINE_TRANSPOSE_IN_MAX_LOOP(f32, float)
FL_DEFINE_TRANSPOSE_IN_MAX_LOOP(f64, double)

/* Register transposes, float32: W x W blocks (W = 16 with AVX-512, 8 with AVX2) through
 * vector registers.  fl_vtranspose turns v[j] = row j into v[c] = column c. */
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#define FL_REGISTER_TRANSPOSE 1
#endif

#if defined(__AVX512F__)
#define FL_W 16
#define FL_MASKED_STORES 1      /* fast on every AVX-512 CPU */
typedef __m512 fl_vf;
FL_INLINE fl_vf fl_vload(const float* p) { return _mm512_loadu_ps(p); }
FL_INLINE fl_vf fl_vload_first(const float* p, int n)        /* p[0 .. n), zeros after */
{
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
}
FL_INLINE void fl_vstore(float* p, fl_vf v) { _mm512_storeu_ps(p, v); }
FL_INLINE void fl_vstore_first(float* p, int n, fl_vf v)     /* p[0 .. n) only */
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), v);
}
FL_INLINE fl_vf fl_vmax(fl_vf v, fl_vf m) { return _mm512_max_ps(v, m); }  /* v > m ? v : m */
FL_INLINE fl_vf fl_vzero(void) { return _mm512_setzero_ps(); }

FL_INLINE void fl_vtranspose(fl_vf v[16])
{
    fl_vf t[16];
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
#elif defined(__AVX2__)
#define FL_W 8
#define FL_MASKED_STORES 0      /* vmaskmovps stores are microcoded on AMD Zen 1-3 */
typedef __m256 fl_vf;
FL_INLINE __m256i fl_first_mask(int n)                        /* lanes 0 .. n-1 set */
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
FL_INLINE fl_vf fl_vload(const float* p) { return _mm256_loadu_ps(p); }
FL_INLINE fl_vf fl_vload_first(const float* p, int n)
{
    return n == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, fl_first_mask(n));
}
FL_INLINE void fl_vstore(float* p, fl_vf v) { _mm256_storeu_ps(p, v); }
FL_INLINE void fl_vstore_first(float* p, int n, fl_vf v)
{
    if (n == 8)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, fl_first_mask(n), v);
}
FL_INLINE fl_vf fl_vmax(fl_vf v, fl_vf m) { return _mm256_max_ps(v, m); }  /* v > m ? v : m */
FL_INLINE fl_vf fl_vzero(void) { return _mm256_setzero_ps(); }

FL_INLINE void fl_vtranspose(fl_vf v[8])
{
    fl_vf t[8], u[8];
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
#endif

#ifdef FL_REGISTER_TRANSPOSE
/* Blocks of W rows x W classes: masked row loads (or stores) and one register transpose,
 * about 3x fewer instructions than W * W scalar moves or W gathers.  Rows past the last
 * whole block of W use the loops above.  With `m`, also the row maxima (fl_vmax is the
 * scalar loop's select, NaN included). */
FL_INLINE void fl_transpose_in_max_reg_f32(const float* src, ptrdiff_t stride, ptrdiff_t R,
                                           ptrdiff_t C, float* dst, float* m)
{
    ptrdiff_t RW = R - R % FL_W;
    fl_vf v[FL_W];
    for (ptrdiff_t c0 = 0; c0 < C; c0 += FL_W) {
        int nc = C - c0 < FL_W ? (int)(C - c0) : FL_W;
        for (ptrdiff_t r0 = 0; r0 < RW; r0 += FL_W) {
            for (int j = 0; j < FL_W; j++)
                v[j] = fl_vload_first(src + (r0 + j) * stride + c0, nc);
            fl_vtranspose(v);
            for (int c = 0; c < nc; c++)
                fl_vstore(dst + (c0 + c) * R + r0, v[c]);
            if (m != NULL) {
                fl_vf mx = c0 == 0 ? v[0] : fl_vload(m + r0);
                for (int c = 0; c < nc; c++)
                    mx = fl_vmax(v[c], mx);
                fl_vstore(m + r0, mx);
            }
        }
    }
    if (RW < R) {
        for (ptrdiff_t c = 0; c < C; c++)
            for (ptrdiff_t r = RW; r < R; r++)
                dst[c * R + r] = src[r * stride + c];
        for (ptrdiff_t r = RW; m != NULL && r < R; r++) {
            m[r] = dst[r];
            for (ptrdiff_t c = 1; c < C; c++)
                m[r] = dst[c * R + r] > m[r] ? dst[c * R + r] : m[r];
        }
    }
}

FL_INLINE void fl_transpose_in_f32(const float* src, ptrdiff_t stride, ptrdiff_t R,
                                   ptrdiff_t C, float* dst)
{
    fl_transpose_in_max_reg_f32(src, stride, R, C, dst, NULL);
}

FL_INLINE void fl_transpose_in_max_f32(const float* src, ptrdiff_t stride, ptrdiff_t R,
                                       ptrdiff_t C, float* dst, float* m)
{
    fl_transpose_in_max_reg_f32(src, stride, R, C, dst, m);
}

FL_INLINE void fl_transpose_out_f32(const float* srcT, ptrdiff_t R, ptrdiff_t C, float* dst)
{
    ptrdiff_t RW = R - R % FL_W;
    ptrdiff_t CW = FL_MASKED_STORES ? C : C - C % FL_W;     /* classes through registers */
    fl_vf v[FL_W];
    for (ptrdiff_t c0 = 0; c0 < CW; c0 += FL_W) {
        int nc = CW - c0 < FL_W ? (int)(CW - c0) : FL_W;
        for (ptrdiff_t r0 = 0; r0 < RW; r0 += FL_W) {
            for (int c = 0; c < FL_W; c++)
                v[c] = c < nc ? fl_vload(srcT + (c0 + c) * R + r0) : fl_vzero();
            fl_vtranspose(v);
            for (int j = 0; j < FL_W; j++)
                fl_vstore_first(dst + (r0 + j) * C + c0, nc, v[j]);
        }
    }
    for (ptrdiff_t c = CW; c < C; c++)                      /* the rest: scalar stores */
        for (ptrdiff_t r = 0; r < RW; r++)
            dst[r * C + c] = srcT[c * R + r];
    if (RW < R)
        fl_transpose_out_loop_f32(srcT + RW, R, R - RW, C, dst + RW * C);
}
#else
FL_INLINE void fl_transpose_in_f32(const float* src, ptrdiff_t stride, ptrdiff_t R,
                                   ptrdiff_t C, float* dst)
{
    fl_transpose_in_loop_f32(src, stride, R, C, dst);
}

FL_INLINE void fl_transpose_in_max_f32(const float* src, ptrdiff_t stride, ptrdiff_t R,
                                       ptrdiff_t C, float* dst, float* m)
{
    fl_transpose_in_max_loop_f32(src, stride, R, C, dst, m);
}

FL_INLINE void fl_transpose_out_f32(const float* srcT, ptrdiff_t R, ptrdiff_t C, float* dst)
{
    fl_transpose_out_loop_f32(srcT, R, R, C, dst);
}
#endif

FL_INLINE void fl_transpose_in_max_f64(const double* src, ptrdiff_t stride, ptrdiff_t R,
                                       ptrdiff_t C, double* dst, double* m)
{
    fl_transpose_in_max_loop_f64(src, stride, R, C, dst, m);
}

FL_INLINE void fl_transpose_in_f64(const double* src, ptrdiff_t stride, ptrdiff_t R,
                                   ptrdiff_t C, double* dst)
{
    fl_transpose_in_loop_f64(src, stride, R, C, dst);
}

FL_INLINE void fl_transpose_out_f64(const double* srcT, ptrdiff_t R, ptrdiff_t C, double* dst)
{
    fl_transpose_out_loop_f64(srcT, R, R, C, dst);
}

#endif /* FASTLOSS_REDUCE_H */
