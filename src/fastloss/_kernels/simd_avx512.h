/*
 * The SIMD layer for AVX-512 (F, DQ, BW, VL): W = 16 floats or 8 doubles, lane masks in
 * k registers.  The names and what they do are listed in simd.h, which includes this file
 * when __AVX512F__ is defined; nothing else should include it.  Deliberately parallel to simd_avx2.h, name for name: one
 * file per instruction set is the layer's design (simd.h).
 */
#ifndef FASTLOSS_SIMD_AVX512_H
#define FASTLOSS_SIMD_AVX512_H

#include <stdint.h>

#include "simd_x86.h"

#define FL_VECTOR_REGISTERS 1
#define FL_MASKED_STORES 1      /* masked stores are fast at this level */
#define FL_W_f32 16
#define FL_W_f64 8
typedef __m512 fl_v_f32;
typedef __m512d fl_v_f64;
typedef __mmask16 fl_k_f32;
typedef __mmask8 fl_k_f64;

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
FL_INLINE fl_v_f32 fl_vadd_f32(fl_v_f32 a, fl_v_f32 b) { return _mm512_add_ps(a, b); }
FL_INLINE fl_v_f64 fl_vadd_f64(fl_v_f64 a, fl_v_f64 b) { return _mm512_add_pd(a, b); }
FL_INLINE fl_v_f32 fl_vsub_f32(fl_v_f32 a, fl_v_f32 b) { return _mm512_sub_ps(a, b); }
FL_INLINE fl_v_f64 fl_vsub_f64(fl_v_f64 a, fl_v_f64 b) { return _mm512_sub_pd(a, b); }
FL_INLINE fl_v_f32 fl_vmul_f32(fl_v_f32 a, fl_v_f32 b) { return _mm512_mul_ps(a, b); }
FL_INLINE fl_v_f64 fl_vmul_f64(fl_v_f64 a, fl_v_f64 b) { return _mm512_mul_pd(a, b); }
FL_INLINE fl_v_f32 fl_vfma_f32(fl_v_f32 a, fl_v_f32 b, fl_v_f32 c) { return _mm512_fmadd_ps(a, b, c); }
FL_INLINE fl_v_f64 fl_vfma_f64(fl_v_f64 a, fl_v_f64 b, fl_v_f64 c) { return _mm512_fmadd_pd(a, b, c); }
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

/* ---- half-precision data: bfloat16 shifted into place, float16 by F16C's AVX-512 form */
FL_INLINE fl_v_f32 fl_vload_bf16_f32(const uint16_t* p)
{
    __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}
FL_INLINE fl_v_f32 fl_vload_f16_f32(const uint16_t* p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p));
}

/* ---- float64 sums of float data */
FL_INLINE fl_v_f64 fl_vload_f32_as_f64(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
FL_INLINE fl_v_f64 fl_vlo_f64(fl_v_f32 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
FL_INLINE fl_v_f64 fl_vhi_f64(fl_v_f32 v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}
FL_INLINE double fl_vsum_f64(fl_v_f64 v)          /* halves added, then fl_hsum4_f64 */
{
    return fl_hsum4_f64(_mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1)));
}

/* ---- lane masks */
FL_INLINE fl_k_f32 fl_kfirst_f32(ptrdiff_t n) { return (fl_k_f32)((1u << n) - 1u); }
FL_INLINE fl_k_f64 fl_kfirst_f64(ptrdiff_t n) { return (fl_k_f64)((1u << n) - 1u); }
FL_INLINE fl_k_f32 fl_kall_f32(void) { return (fl_k_f32)0xffff; }
FL_INLINE fl_k_f32 fl_kbit_f32(ptrdiff_t j) { return (fl_k_f32)(0 <= j && j < 16 ? 1u << j : 0u); }
FL_INLINE fl_k_f32 fl_kne0_f32(fl_v_f32 v, fl_k_f32 k)
{
    return _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ) & k;
}
FL_INLINE fl_k_f32 fl_klt_f32(fl_v_f32 a, fl_v_f32 b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
FL_INLINE fl_k_f64 fl_kge_f64(fl_v_f64 a, fl_v_f64 b) { return _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ); }
FL_INLINE fl_v_f32 fl_vmaskz_f32(fl_k_f32 k, fl_v_f32 v) { return _mm512_maskz_mov_ps(k, v); }
FL_INLINE fl_v_f32 fl_vmask_sub1_f32(fl_k_f32 k, fl_v_f32 v)
{
    return _mm512_mask_sub_ps(v, k, v, _mm512_set1_ps(1.0f));
}
FL_INLINE fl_v_f32 fl_vmask_add1_f32(fl_k_f32 k, fl_v_f32 v)
{
    return _mm512_mask_add_ps(v, k, v, _mm512_set1_ps(1.0f));
}
FL_INLINE fl_v_f64 fl_vmask_add1_f64(fl_k_f64 k, fl_v_f64 v)
{
    return _mm512_mask_add_pd(v, k, v, _mm512_set1_pd(1.0));
}
FL_INLINE fl_v_f64 fl_vmask_half_f64(fl_k_f64 k, fl_v_f64 v)     /* v / 2 in the lanes of k */
{
    return _mm512_mask_mul_pd(v, k, v, _mm512_set1_pd(0.5));
}
FL_INLINE fl_v_f32 fl_vmaskz_sub_f32(fl_k_f32 k, fl_v_f32 a, fl_v_f32 b)
{
    return _mm512_maskz_sub_ps(k, a, b);
}

/* ---- what only this level has, for vecmath.h (FL_VECTOR_GETEXP) */
#define FL_VECTOR_GETEXP 1
/* x = 2^e m: getexp gives e (-inf at 0), getmant m in [0.75, 1.5) (float) or [1, 2)
 * (double), NaN for x < 0; both handle subnormals, inf and NaN */
FL_INLINE fl_v_f32 fl_vgetexp_f32(fl_v_f32 x) { return _mm512_getexp_ps(x); }
FL_INLINE fl_v_f64 fl_vgetexp_f64(fl_v_f64 x) { return _mm512_getexp_pd(x); }
FL_INLINE fl_v_f32 fl_vgetmant_f32(fl_v_f32 x)
{
    return _mm512_getmant_ps(x, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_nan);
}
FL_INLINE fl_v_f64 fl_vgetmant_f64(fl_v_f64 x)
{
    return _mm512_getmant_pd(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_nan);
}
/* p 2^k for an integral k, rounded once (subnormal results included) */
FL_INLINE fl_v_f32 fl_vscalef_f32(fl_v_f32 p, fl_v_f32 k) { return _mm512_scalef_ps(p, k); }
FL_INLINE fl_v_f64 fl_vscalef_f64(fl_v_f64 p, fl_v_f64 k) { return _mm512_scalef_pd(p, k); }

/* A 16-entry float table and its lookup: tab[bits(x) >> shift & 15] in each lane. */
#if defined(__GNUC__) || defined(__clang__)
typedef int32_t fl_vi_f32 __attribute__((vector_size(64)));
typedef uint32_t fl_vu_f32 __attribute__((vector_size(64)));
FL_INLINE fl_v_f32 fl_vfloat_f32(fl_vi_f32 i) { return _mm512_cvtepi32_ps((__m512i)i); }
#endif
typedef __m512 fl_tab16_f32;
FL_INLINE fl_tab16_f32 fl_tab16_load_f32(const float* tab) { return _mm512_loadu_ps(tab); }
typedef __m512i fl_vidx_f32;
FL_INLINE fl_vidx_f32 fl_vidx_f32_of(fl_v_f32 x, int shift)
{
    return _mm512_srli_epi32(_mm512_castps_si512(x), shift);    /* the low 4 bits count */
}
FL_INLINE fl_v_f32 fl_tab16_lookup_f32(fl_tab16_f32 tab, fl_vidx_f32 i)
{
    return _mm512_permutexvar_ps(i, tab);
}

/* ---- register transposes: v[j] = row j -> v[c] = column c */
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

#endif /* FASTLOSS_SIMD_AVX512_H */
