/*
 * The SIMD layer for AVX2 with FMA: W = 8 floats or 4 doubles, lane masks as vectors (all
 * bits set in the lanes that take part).  The names and what they do are listed in simd.h,
 * which includes this file when __AVX2__ (and not __AVX512F__) is defined; nothing else
 * should include it.  Deliberately parallel to simd_avx512.h, name for name: one file per
 * instruction set is the layer's design (simd.h).
 */
#ifndef FASTLOSS_SIMD_AVX2_H
#define FASTLOSS_SIMD_AVX2_H

#include <stdint.h>

#include "simd_x86.h"

#define FL_VECTOR_REGISTERS 1
#define FL_MASKED_STORES 0      /* vmaskmovps/pd stores are microcoded on some AVX2 CPUs */
#define FL_W_f32 8
#define FL_W_f64 4
typedef __m256 fl_v_f32;
typedef __m256d fl_v_f64;
typedef __m256 fl_k_f32;
typedef __m256d fl_k_f64;

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
/* through a buffer, not a masked store: FL_MASKED_STORES is 0 */
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
FL_INLINE fl_v_f32 fl_vadd_f32(fl_v_f32 a, fl_v_f32 b) { return _mm256_add_ps(a, b); }
FL_INLINE fl_v_f64 fl_vadd_f64(fl_v_f64 a, fl_v_f64 b) { return _mm256_add_pd(a, b); }
FL_INLINE fl_v_f32 fl_vsub_f32(fl_v_f32 a, fl_v_f32 b) { return _mm256_sub_ps(a, b); }
FL_INLINE fl_v_f64 fl_vsub_f64(fl_v_f64 a, fl_v_f64 b) { return _mm256_sub_pd(a, b); }
FL_INLINE fl_v_f32 fl_vmul_f32(fl_v_f32 a, fl_v_f32 b) { return _mm256_mul_ps(a, b); }
FL_INLINE fl_v_f64 fl_vmul_f64(fl_v_f64 a, fl_v_f64 b) { return _mm256_mul_pd(a, b); }
FL_INLINE fl_v_f32 fl_vfma_f32(fl_v_f32 a, fl_v_f32 b, fl_v_f32 c) { return _mm256_fmadd_ps(a, b, c); }
FL_INLINE fl_v_f64 fl_vfma_f64(fl_v_f64 a, fl_v_f64 b, fl_v_f64 c) { return _mm256_fmadd_pd(a, b, c); }
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

/* ---- half-precision data: bfloat16 shifted into place, float16 by F16C */
FL_INLINE fl_v_f32 fl_vload_bf16_f32(const uint16_t* p)
{
    __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}
FL_INLINE fl_v_f32 fl_vload_f16_f32(const uint16_t* p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
}

/* ---- float64 sums of float data */
FL_INLINE fl_v_f64 fl_vload_f32_as_f64(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
FL_INLINE fl_v_f64 fl_vlo_f64(fl_v_f32 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
FL_INLINE fl_v_f64 fl_vhi_f64(fl_v_f32 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }
FL_INLINE double fl_vsum_f64(fl_v_f64 v) { return fl_hsum4_f64(v); }

/* ---- lane masks */
FL_INLINE fl_k_f32 fl_kfirst_f32(ptrdiff_t n)
{
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lanes));
}
FL_INLINE fl_k_f32 fl_kall_f32(void) { return _mm256_castsi256_ps(_mm256_set1_epi32(-1)); }
FL_INLINE fl_k_f32 fl_kbit_f32(ptrdiff_t j)
{
    __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int jj = 0 <= j && j < 8 ? (int)j : -1;
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_set1_epi32(jj), lanes));
}
FL_INLINE fl_k_f32 fl_kne0_f32(fl_v_f32 v, fl_k_f32 k)
{
    return _mm256_and_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ), k);
}
FL_INLINE fl_v_f32 fl_vmaskz_f32(fl_k_f32 k, fl_v_f32 v) { return _mm256_and_ps(k, v); }
FL_INLINE fl_v_f32 fl_vmask_sub1_f32(fl_k_f32 k, fl_v_f32 v)       /* v - 0 is v, -0 too */
{
    return _mm256_sub_ps(v, _mm256_and_ps(k, _mm256_set1_ps(1.0f)));
}
FL_INLINE fl_v_f32 fl_vmaskz_sub_f32(fl_k_f32 k, fl_v_f32 a, fl_v_f32 b)
{
    return _mm256_and_ps(k, _mm256_sub_ps(a, b));
}

/* ---- 32-bit integer lanes of a float vector (GCC / Clang vector types: C's operators,
 * casts to and from fl_v_f32 reinterpret the bits) */
#if defined(__GNUC__) || defined(__clang__)
typedef int32_t fl_vi_f32 __attribute__((vector_size(32)));
typedef uint32_t fl_vu_f32 __attribute__((vector_size(32)));
FL_INLINE fl_v_f32 fl_vfloat_f32(fl_vi_f32 i) { return _mm256_cvtepi32_ps((__m256i)i); }

/* ---- 8-entry float tables (FL_VECTOR_TAB8, this level only): the float log's tables
 * (vecmath.h), one vpermps per lookup: tab[i & 7] in each lane; with the unsigned max
 * and min that log uses */
#define FL_VECTOR_TAB8 1
typedef __m256 fl_tab8_f32;
FL_INLINE fl_tab8_f32 fl_tab8_load_f32(const float* tab) { return _mm256_loadu_ps(tab); }
FL_INLINE fl_v_f32 fl_tab8_lookup_f32(fl_tab8_f32 tab, fl_vu_f32 i)
{
    return _mm256_permutevar8x32_ps(tab, (__m256i)i);
}
FL_INLINE fl_vu_f32 fl_vumax_f32(fl_vu_f32 a, fl_vu_f32 b)          /* unsigned, per lane */
{
    return (fl_vu_f32)_mm256_max_epu32((__m256i)a, (__m256i)b);
}
FL_INLINE fl_vu_f32 fl_vumin_f32(fl_vu_f32 a, fl_vu_f32 b)
{
    return (fl_vu_f32)_mm256_min_epu32((__m256i)a, (__m256i)b);
}
#endif

/* ---- register transposes: v[j] = row j -> v[c] = column c */
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

/* ---- two classes of W rows (FL_VECTOR_PAIRS, this level only): the narrow tile's last
 * class block when it has exactly 2 classes (C = 2, 10, 18, 26).  Row j's 2 floats at
 * p + j stride <-> lane j of a (first class) and b (second): 64-bit loads or stores and 4
 * shuffles, in place of 8 masked loads (or 8 whole-vector stores) and an 8 x 8 transpose.
 * Bit for bit the values a transpose moves. */
#define FL_VECTOR_PAIRS 1
/* (the 64-bit moves go through __m64 and __m128i pointers, which may alias floats) */
FL_INLINE __m128 fl_load_pair2_f32(const float* p, const float* q)     /* p's pair, q's */
{
    return _mm_loadh_pi(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i*)p)), (const __m64*)q);
}
FL_INLINE void fl_vload_pairs_f32(const float* p, ptrdiff_t stride, fl_v_f32* a, fl_v_f32* b)
{
    __m128 r01 = fl_load_pair2_f32(p, p + stride);
    __m128 r23 = fl_load_pair2_f32(p + 2 * stride, p + 3 * stride);
    __m128 r45 = fl_load_pair2_f32(p + 4 * stride, p + 5 * stride);
    __m128 r67 = fl_load_pair2_f32(p + 6 * stride, p + 7 * stride);
    /* [r0 r1 | r4 r5] and [r2 r3 | r6 r7], each row's pair (c0, c1) */
    __m256 lo = _mm256_insertf128_ps(_mm256_castps128_ps256(r01), r45, 1);
    __m256 hi = _mm256_insertf128_ps(_mm256_castps128_ps256(r23), r67, 1);
    *a = _mm256_shuffle_ps(lo, hi, 0x88);          /* c0 of r0 r1 r2 r3 | r4 r5 r6 r7 */
    *b = _mm256_shuffle_ps(lo, hi, 0xdd);          /* c1 */
}
FL_INLINE void fl_vstore_pairs_f32(float* p, ptrdiff_t stride, fl_v_f32 a, fl_v_f32 b)
{
    __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);  /* r0 r1 | r4 r5 */
    __m128 l0 = _mm256_castps256_ps128(lo), l1 = _mm256_extractf128_ps(lo, 1);
    __m128 h0 = _mm256_castps256_ps128(hi), h1 = _mm256_extractf128_ps(hi, 1);  /* r2 r3 */
    _mm_storel_pi((__m64*)p, l0);
    _mm_storeh_pi((__m64*)(p + stride), l0);
    _mm_storel_pi((__m64*)(p + 2 * stride), h0);
    _mm_storeh_pi((__m64*)(p + 3 * stride), h0);
    _mm_storel_pi((__m64*)(p + 4 * stride), l1);
    _mm_storeh_pi((__m64*)(p + 5 * stride), l1);
    _mm_storel_pi((__m64*)(p + 6 * stride), h1);
    _mm_storeh_pi((__m64*)(p + 7 * stride), h1);
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

#endif /* FASTLOSS_SIMD_AVX2_H */
