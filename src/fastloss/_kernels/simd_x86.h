/*
 * 256-bit helpers that both x86 layers (simd_avx2.h, simd_avx512.h) use to fold a vector
 * to one value.  Included by those files only (see simd.h).
 */
#ifndef FASTLOSS_SIMD_X86_H
#define FASTLOSS_SIMD_X86_H

#include <immintrin.h>

#include "fl_inline.h"

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

/* (v0 + v2) + (v1 + v3) */
FL_INLINE double fl_hsum4_f64(__m256d v)
{
    __m128d a = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(a, _mm_unpackhi_pd(a, a)));
}

#endif /* FASTLOSS_SIMD_X86_H */
