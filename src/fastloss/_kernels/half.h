/* Half-precision input (float16 and bfloat16), widened to float32 as a tile is read, and
 * float32 results rounded back to half precision as they are stored (the gradient in the
 * input's dtype, on request).
 *
 * Both conversions are exact (every float16 and bfloat16 value is a float32 value) and
 * written with integer and float operations that every level vectorizes, so no compiler
 * needs a _Float16 type (MSVC has none); where F16C is there (avx2, avx512) contiguous
 * float16 goes through its conversion instruction instead.
 *
 * bfloat16 is the upper half of a float32: shift it back into place.
 *
 * float16 (1 sign, 5 exponent, 10 mantissa bits, bias 15): the exponent and mantissa bits,
 * shifted to float32's places, read as a float32 whose exponent is off by the bias
 * difference, 2^(127 - 15) = 2^112; one multiplication by 2^112 fixes it, and subnormal
 * float16 values come out right too (they are subnormal float32 values scaled by an exact
 * power of two).  Infinity and NaN (float16 exponent 31) come out as finite values of at
 * least 2^16 and get float32's all-ones exponent back (a NaN keeps its payload bits).
 *
 * No AVX-512 BF16 or FP16 instruction is used, on purpose.  Widening bfloat16 is a shift
 * whatever the CPU (AVX-512 BF16 has no widening instruction, only dot products), and F16C
 * already widens and rounds float16 on every AVX2 and AVX-512 CPU.  AVX-512 BF16's
 * rounding (vcvtneps2bf16) treats subnormal float32 input as zero and flushes subnormal
 * results, so it would not give the bits of NumPy's and ml_dtypes' rounding, which the
 * contract promises; the integer rounding below gives them in a few vector operations.
 */
#ifndef FL_HALF_H
#define FL_HALF_H

#include <stddef.h>
#include <stdint.h>

#include "vecmath.h"    /* fl_bits_f32, fl_from_bits_f32, the tile exp */
#include "maxat.h"

/* F16C (the avx2 and avx512 levels): eight float16 values widened by one instruction,
 * to the same bits as fl_f16_to_f32 */
#if defined(__F16C__) || (defined(_MSC_VER) && defined(__AVX2__))
#include <immintrin.h>
#define FL_HAVE_F16C 1
#endif

enum { FL_HALF_NONE = 0, FL_HALF_F16 = 1, FL_HALF_BF16 = 2 };

FL_INLINE float fl_bf16_to_f32(uint16_t h)
{
    return fl_from_bits_f32((uint32_t)h << 16);
}

FL_INLINE float fl_f16_to_f32(uint16_t h)
{
    float scaled = fl_from_bits_f32(((uint32_t)h & 0x7fffu) << 13) * 5.192296858534828e+33f; /* 2^112 */
    uint32_t bits = fl_bits_f32(scaled);
    bits |= scaled >= 65536.0f ? 0x7f800000u : 0u;      /* exponent 31: infinity or NaN */
    return fl_from_bits_f32(bits | ((uint32_t)h & 0x8000u) << 16);
}

/* out[i] = src[i * stride] widened to float32, for i < n (kind: FL_HALF_F16 or _BF16) */
FL_INLINE void fl_half_widen(const uint16_t* src, ptrdiff_t stride, ptrdiff_t n, int kind,
                             float* out)
{
    ptrdiff_t i;
    if (kind == FL_HALF_BF16) {
        if (stride == 1)
            for (i = 0; i < n; i++) out[i] = fl_bf16_to_f32(src[i]);
        else
            for (i = 0; i < n; i++) out[i] = fl_bf16_to_f32(src[i * stride]);
    } else if (stride == 1) {
        i = 0;
#ifdef FL_HAVE_F16C
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(src + i))));
#endif
        for (; i < n; i++) out[i] = fl_f16_to_f32(src[i]);
    } else {
        for (i = 0; i < n; i++) out[i] = fl_f16_to_f32(src[i * stride]);
    }
}

/* fl_half_widen of a tile of n values, asking memory for the tile 4 tiles later first (a
 * contiguous one): the conversion alone would wait on memory.  Not for long rows whose
 * compute asks for the next rows itself (softmax.pyx's wide rows): a burst of that many
 * prefetches costs more than it saves. */
FL_INLINE void fl_half_tile(const uint16_t* src, ptrdiff_t stride, ptrdiff_t n, int kind,
                            float* out)
{
    if (stride == 1)
        fl_prefetch(src + 4 * n, 2 * n);
    fl_half_widen(src, stride, n, kind, out);
}

/* ---- long rows read in half precision without a float32 copy: the softmax's wide rows
 * of FL_HALF_WIDE_MIN classes or more with class labels and no smoothing (softmax.pyx's
 * half_rows_as_they_are; every other half-precision row is widened into the thread's
 * scratch first).  fl_half_max_at is fl_max_at_f32 and fl_half_exp_shift_n is
 * fl_exp_shift_n_f32 of the widened row, bit for bit (widening is exact; the same
 * reduction order, the same exp), each widening its vectors as it loads them.  Each pass
 * then reads 2 bytes a value where the copy wrote 4 and two passes read 4: rows of 16384
 * to 128000 bfloat16 classes took 1-18% less time on the 2-core Zen 5 at avx2 and 7-21%
 * less at avx512 (a row in C, one process), where rows of 1000 to 8192 classes took more
 * (the copy stays in L1 or L2 there and the widening is done once, not in each pass).
 * Without a vector layer the copy stays: FL_HALF_WIDE_MIN is 0, and the plain functions
 * below only keep those builds whole. */
#if defined(FL_VECTOR_EXP)
#define FL_HALF_WIDE_MIN 16384

#define FL_DEFINE_HALF_ROW(H, KIND)                                                 \
FL_INLINE ptrdiff_t fl_max_at_small_##H(const uint16_t* v, ptrdiff_t n, float* m_out)  \
{                                                                                   \
    float w[FL_W_f32];                                                              \
    fl_half_widen(v, 1, n, KIND, w);                                                \
    return fl_max_at_loop_f32(w, n, m_out);                                         \
}                                                                                   \
FL_DEFINE_MAX_AT_REG(fl_max_at_##H, uint16_t, f32, float, fl_vload_##H##_f32,       \
                     fl_max_at_small_##H)                                           \
FL_DEFINE_EXP_SHIFT_VECTORS(fl_exp_shift_vectors_##H, uint16_t, fl_vload_##H##_f32)   \
FL_INLINE void fl_exp_shift_n_##H(const uint16_t* z, float m, ptrdiff_t n, float* out) \
{                                                                                   \
    float rest[FL_W_f32];                                                           \
    ptrdiff_t i = fl_exp_shift_vectors_##H(z, fl_vset1_f32(m), n, out,               \
                                          fl_exp_tile_tab_f32());                  \
    if (i < n) {                    /* the last values as fl_exp_shift_n_f32 takes them */ \
        fl_half_widen(z + i, 1, n - i, KIND, rest);                                 \
        fl_exp_shift_n_f32(rest, m, n - i, out + i);                                \
    }                                                                               \
}
FL_DEFINE_HALF_ROW(bf16, FL_HALF_BF16)
FL_DEFINE_HALF_ROW(f16, FL_HALF_F16)

FL_INLINE ptrdiff_t fl_half_max_at(const uint16_t* v, ptrdiff_t n, int kind, float* m_out)
{
    return kind == FL_HALF_BF16 ? fl_max_at_bf16(v, n, m_out) : fl_max_at_f16(v, n, m_out);
}

FL_INLINE void fl_half_exp_shift_n(const uint16_t* z, int kind, float m, ptrdiff_t n,
                                   float* out)
{
    if (kind == FL_HALF_BF16)
        fl_exp_shift_n_bf16(z, m, n, out);
    else
        fl_exp_shift_n_f16(z, m, n, out);
}
#else
#define FL_HALF_WIDE_MIN 0

FL_INLINE ptrdiff_t fl_half_max_at(const uint16_t* v, ptrdiff_t n, int kind, float* m_out)
{
    float w[64];
    ptrdiff_t i, top = -1;
    *m_out = -INFINITY;
    for (i = 0; i < n; i += 64) {
        ptrdiff_t k = n - i < 64 ? n - i : 64;
        float m;
        ptrdiff_t at;
        fl_half_widen(v + i, 1, k, kind, w);
        at = fl_max_at_loop_f32(w, k, &m);
        if (at >= 0 && (top < 0 || m > *m_out)) {
            *m_out = m;
            top = i + at;
        }
    }
    return top;
}

FL_INLINE void fl_half_exp_shift_n(const uint16_t* z, int kind, float m, ptrdiff_t n,
                                   float* out)
{
    fl_half_widen(z, 1, n, kind, out);
    fl_exp_shift_n_f32(out, m, n, out);
}
#endif

/* ---- float32 -> half, rounded to nearest, ties to even (the gradient in the input's
 * dtype, on request).  Branch-free, so that the store loops vectorize at every level:
 *
 * bfloat16: add 0x7fff plus the lowest kept bit, drop 16 bits (a carry into the exponent
 * is the right rounding, up to infinity); a NaN is kept quiet with its top payload bits.
 *
 * float16, on the magnitude a (sign put back at the end):
 *   normal results (a >= 2^-14): rebias the exponent by 15 - 127, round the 13 dropped
 *     bits the same way as bfloat16's 16; a carry out of the largest finite value gives
 *     infinity (65520 and up round to infinity, as IEEE 754 says);
 *   subnormal results (a < 2^-14): a + 0.5 puts float16's unit 2^-24 at the last bit of
 *     the sum, so the float addition itself rounds (to nearest even), and the sum's low
 *     bits are the float16 bits;
 *   a >= 2^16: infinity; NaN: quiet NaN with its top payload bits (what F16C's
 *     vcvtps2ph gives, so every level stores the same bits). */
FL_INLINE uint16_t fl_f32_to_bf16(float x)
{
    uint32_t u = fl_bits_f32(x);
    uint32_t nan = 0u - (uint32_t)((u & 0x7fffffffu) > 0x7f800000u);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((rounded & ~nan) | (((u >> 16) | 0x40u) & nan));
}

FL_INLINE uint16_t fl_f32_to_f16(float x)
{
    uint32_t u = fl_bits_f32(x);
    uint32_t a = u & 0x7fffffffu;
    uint32_t normal = (a - (112u << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
    uint32_t sub = fl_bits_f32(fl_from_bits_f32(a) + 0.5f) - 0x3f000000u;
    uint32_t is_sub = 0u - (uint32_t)(a < 0x38800000u);          /* a < 2^-14 */
    uint32_t is_big = 0u - (uint32_t)(a >= 0x47800000u);         /* a >= 2^16, inf, NaN */
    uint32_t is_nan = 0u - (uint32_t)(a > 0x7f800000u);
    uint32_t r = (sub & is_sub) | (normal & ~is_sub);
    r = (0x7c00u & is_big) | (r & ~is_big);
    r = ((0x7e00u | ((a >> 13) & 0x3ffu)) & is_nan) | (r & ~is_nan);
    return (uint16_t)(r | ((u >> 16) & 0x8000u));
}

/* dst[i * stride] = src[i] rounded to half precision, for i < n (kind as above) */
FL_INLINE void fl_half_store(const float* src, ptrdiff_t n, int kind, uint16_t* dst,
                             ptrdiff_t stride)
{
    ptrdiff_t i;
    if (kind == FL_HALF_BF16) {
        if (stride == 1)
            for (i = 0; i < n; i++) dst[i] = fl_f32_to_bf16(src[i]);
        else
            for (i = 0; i < n; i++) dst[i * stride] = fl_f32_to_bf16(src[i]);
    } else if (stride == 1) {
        i = 0;
#ifdef FL_HAVE_F16C
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i*)(dst + i),
                             _mm256_cvtps_ph(_mm256_loadu_ps(src + i),
                                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
        for (; i < n; i++) dst[i] = fl_f32_to_f16(src[i]);
    } else {
        for (i = 0; i < n; i++) dst[i * stride] = fl_f32_to_f16(src[i]);
    }
}

#endif
