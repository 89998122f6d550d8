/*
 * fastloss vector math: exp, log and log1p for float and double.  The float and double
 * versions are deliberate per-dtype twins (their constants, polynomials and bit layouts
 * differ); the tile loops over them share one shape.
 *
 * Why this file exists
 * --------------------
 * The loss kernels spend their arithmetic on exp and log.  A call into libm costs 20-50
 * cycles per element and keeps the loop scalar, which is 5-10x slower than memory allows.
 * The functions below are written so that a C compiler vectorizes the loops that call them:
 * no branches (special cases are selects), no libm calls, bit casts through memcpy, and only
 * integer operations that SSE2/AVX2/AVX-512/NEON all have (add, logical shift, no 64-bit
 * arithmetic shift, no int64 <-> double conversion).  The same source is compiled once per
 * instruction-set level (see setup.py); the Python layer picks the best level at run time.
 * They need no fast-math flags: NaN, +-inf, zeros and subnormals are handled exactly.
 *
 * Accuracy (checked by tests/test_vecmath.py against mpmath and NumPy):
 *   every function, float and double: <= 1.5 ulp (the tests see about 1.15).  fl_exp_nonpos
 *   returns fl_exp's results bit for bit (checked once for every float32 x <= 0; the
 *   tests sample both types).  The softmax's float exp a tile at a time (fl_exp_shift_n_f32)
 *   has a table method of its own with AVX2 and AVX-512 (fl_exp_tile_f32 below: <= 1.02
 *   ulp, checked once for every float32 x <= 0), and is fl_exp_nonpos's elsewhere.
 * The polynomial coefficients are minimax fits made by tools/fit_vecmath.py.
 *
 * Methods
 *   exp:   x = k ln2 + r, |r| <= ln2/2 (Cody-Waite, ln2 split in two so k*LN2HI is exact);
 *          exp(r) = 1 + r + r^2 q(r); 2^k applied as two factors 2^k1 * 2^k2 so that
 *          subnormal results are rounded once and large ones overflow to inf, never early.
 *   log:   x = 2^e m, m in [sqrt(1/2), sqrt(2)); f = m - 1, s = f / (2 + f), z = s^2;
 *          log(1 + f) = f - (f^2/2 - s (f^2/2 + z Q(z)))  (the fdlibm arrangement).
 *   log1p: y = 1 + u; log1p(u) = log(y) - ((y - 1) - u) / y  (corrects the rounding of 1 + u).
 */
#ifndef FASTLOSS_VECMATH_H
#define FASTLOSS_VECMATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fl_inline.h"
#include "simd.h"

FL_INLINE uint64_t fl_bits_f64(double x) { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
FL_INLINE double fl_from_bits_f64(uint64_t u) { double x; memcpy(&x, &u, sizeof x); return x; }
FL_INLINE uint32_t fl_bits_f32(float x) { uint32_t u; memcpy(&u, &x, sizeof u); return u; }
FL_INLINE float fl_from_bits_f32(uint32_t u) { float x; memcpy(&x, &u, sizeof x); return x; }

#define FL_INF_F64 fl_from_bits_f64(0x7ff0000000000000ULL)
#define FL_NAN_F64 fl_from_bits_f64(0x7ff8000000000000ULL)
#define FL_INF_F32 fl_from_bits_f32(0x7f800000U)
#define FL_NAN_F32 fl_from_bits_f32(0x7fc00000U)

/* cond ? a : b for the special cases at the end of log and log1p.  Two of those selects
 * give the same value; GCC 13 and 14 merge them (`c1 || c2 ? x : r`) into control flow and
 * then leave the whole loop scalar (then log and KL run several times slower).  A
 * bit blend is not merged and vectorizes with GCC >= 13 and Clang at every level.  GCC 12
 * and older keep the plain selects, and need them: they cannot vectorize the 64-bit blend
 * on SSE2. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
FL_INLINE float fl_select_f32(int cond, float a, float b) { return cond ? a : b; }
FL_INLINE double fl_select_f64(int cond, double a, double b) { return cond ? a : b; }
#else
FL_INLINE float fl_select_f32(int cond, float a, float b)
{
    uint32_t m = 0u - (uint32_t)(cond != 0);
    return fl_from_bits_f32((fl_bits_f32(a) & m) | (fl_bits_f32(b) & ~m));
}

FL_INLINE double fl_select_f64(int cond, double a, double b)
{
    uint64_t m = 0ULL - (uint64_t)(cond != 0);
    return fl_from_bits_f64((fl_bits_f64(a) & m) | (fl_bits_f64(b) & ~m));
}
#endif

/* ---------------------------------------------------------------- exp ---- */

/* exp(r) for x = k ln2 + r, given x (clamped) and kd = k: the part of exp shared by
 * fl_exp, fl_exp_nonpos and the AVX-512 tile loop (for any T with C's operators). */
#define FL_DEFINE_EXP_CORE_F64(NAME, T)                                             \
FL_INLINE T NAME(T xc, T kd)                                                        \
{                                                                                   \
    T r = xc - kd * 0x1.62e42fefa3800p-1;          /* exact: LN2HI has 11 zero bits */ \
    r = r - kd * 0x1.ef35793c76730p-45;            /* LN2LO */                      \
    T q = 0x1.aeaaf93e002fcp-26 * r + 0x1.289167f796c92p-22;                        \
    q = q * r + 0x1.71de5a3f4fdfbp-19;                                              \
    q = q * r + 0x1.a019b9296d808p-16;                                              \
    q = q * r + 0x1.a01a018c2fd8cp-13;                                              \
    q = q * r + 0x1.6c16c178835d1p-10;                                              \
    q = q * r + 0x1.111111111448ep-7;                                               \
    q = q * r + 0x1.5555555553d7dp-5;                                               \
    q = q * r + 0x1.555555555554dp-3;                                               \
    q = q * r + 0x1.0000000000001p-1;                                               \
    return 1.0 + (r + (r * r) * q);                                                 \
}
FL_DEFINE_EXP_CORE_F64(fl_exp_core_f64, double)

/* The float core in two parts: NAME_tail(xc, kd) = p - 1 = r + r^2 q (a float), and
 * NAME(xc, kd) = p = 1 + that. */
#define FL_DEFINE_EXP_CORE_F32(NAME, T)                                             \
FL_INLINE T NAME##_tail(T xc, T kd)                                                 \
{                                                                                   \
    T r = xc - kd * 0x1.62ep-1f;                   /* LN2HI, 13 significant bits */ \
    r = r - kd * 0x1.0bfbe8p-15f;                  /* LN2LO */                      \
    T q = 0x1.6c69f6p-10f * r + 0x1.120b28p-7f;                                     \
    q = q * r + 0x1.5555bap-5f;                                                     \
    q = q * r + 0x1.5554dep-3f;                                                     \
    q = q * r + 0x1p-1f;                                                            \
    return r + (r * r) * q;                                                         \
}                                                                                   \
FL_INLINE T NAME(T xc, T kd) { return 1.0f + NAME##_tail(xc, kd); }
FL_DEFINE_EXP_CORE_F32(fl_exp_core_f32, float)

FL_INLINE double fl_exp_f64(double x)
{
    const double shift = 0x1.8p52;      /* x + shift rounds x to an integer kept in the low bits */
    /* Outside [-746, 710] the result is 0 or inf; clamping keeps k in range.  NaN passes. */
    double xc = x < -746.0 ? -746.0 : x;
    xc = xc > 710.0 ? 710.0 : xc;
    double kshift = xc * 0x1.71547652b82fep+0 + shift;      /* k = round(x / ln 2) */
    double kd = kshift - shift;
    double p = fl_exp_core_f64(xc, kd);
    /* k in [-1076, 1024]: 2^k = 2^k1 * 2^k2 with k1 = floor(k / 2), both in [-538, 512] */
    uint64_t kb = fl_bits_f64(kshift) - fl_bits_f64(shift) + 2048;   /* k + 2048 >= 0 */
    uint64_t h = kb >> 1;                                             /* k1 + 1024 */
    double s1 = fl_from_bits_f64((h - 1) << 52);                      /* biased k1 */
    double s2 = fl_from_bits_f64((kb - h - 1) << 52);                 /* biased k - k1 */
    return (p * s1) * s2;
}

FL_INLINE float fl_exp_f32(float x)
{
    const float shift = 0x1.8p23f;
    float xc = x < -104.0f ? -104.0f : x;
    xc = xc > 89.0f ? 89.0f : xc;
    float kshift = xc * 0x1.715476p+0f + shift;
    float kd = kshift - shift;
    float p = fl_exp_core_f32(xc, kd);
    /* k in [-150, 128]: 2^k = 2^k1 * 2^k2 with k1 = floor(k / 2), both in [-75, 64] */
    uint32_t kb = fl_bits_f32(kshift) - fl_bits_f32(shift) + 256u;
    uint32_t h = kb >> 1;
    float s1 = fl_from_bits_f32((h - 1u) << 23);
    float s2 = fl_from_bits_f32((kb - h - 1u) << 23);
    return (p * s1) * s2;
}

/* exp(x) for x <= 0 (or NaN): the softmax's exp(z - max z), and exp(-|x|).  Same
 * reduction and polynomial as fl_exp, hence bitwise the same results, but with k <= 0 the
 * scaling 2^k fits one factor, 2^(k + B), applied exactly, and the one rounding comes from
 * the product with the constant 2^-B: 9 operations fewer than fl_exp's two computed
 * factors and its overflow clamp.  Arguments up to 18 (float) / 400 (double) are still
 * exact; larger ones are outside the contract. */
FL_INLINE double fl_exp_nonpos_f64(double x)
{
    const double shift = 0x1.8p52;
    double xc = x < -746.0 ? -746.0 : x;
    double kshift = xc * 0x1.71547652b82fep+0 + shift;
    double p = fl_exp_core_f64(xc, kshift - shift);
    /* k in [-1077, 0]: biased exponent of 2^(k + 600) in [546, 1623] */
    uint64_t kb = fl_bits_f64(kshift) - fl_bits_f64(shift);     /* k modulo 2^64 */
    return (p * fl_from_bits_f64((kb + 1623) << 52)) * 0x1p-600;
}

/* In float, 2^-100 goes into p's last step instead: y 2^-100 + 2^-100 (an fma, or an
 * exact product and one add) is p 2^-100 exactly, as scaling by a power of two commutes
 * with rounding in the normal range (and where y 2^-100 is subnormal, |y| < 2^-26, both
 * round to 2^-100).  The one rounding is then the product with 2^(k + 100), and the
 * multiply by 2^-100 leaves the path from x to the result: the same bits as
 * (p 2^(k + 100)) 2^-100 for every x <= 0 (checked in C over all of them), and a vector
 * exp loop 3-6% faster on the 2-core EPYC, whose loops of exp wait on that path. */
FL_INLINE float fl_exp_nonpos_f32(float x)
{
    const float shift = 0x1.8p23f;
    float xc = x < -104.0f ? -104.0f : x;
    float kshift = xc * 0x1.715476p+0f + shift;
    float y = fl_exp_core_f32_tail(xc, kshift - shift);
    /* k in [-150, 0]: biased exponent of 2^(k + 100) in [77, 227] */
    uint32_t kb = fl_bits_f32(kshift) - fl_bits_f32(shift);
    return (y * 0x1p-100f + 0x1p-100f) * fl_from_bits_f32((kb + 227u) << 23);
}

/* ---------------------------------------------------------------- log ---- */

/* log(2^e (1 + f)) for f in [sqrt(1/2) - 1, sqrt(2) - 1), minus c (a correction added
 * at the right place for full precision): the core that log and log1p share.  Written for
 * any type T with C's arithmetic operators, so that the AVX-512 tile loops below (GCC and
 * Clang vector types) evaluate the very same expression. */
#define FL_DEFINE_LOG_REDUCED_F64(NAME, T)                                          \
FL_INLINE T NAME(T f, T ed, T c)                                                    \
{                                                                                   \
    T s = f / (2.0 + f);                                                            \
    T z = s * s;                                                                    \
    T q = 0x1.2b5b3cd07f765p-3 * z + 0x1.39fe1f2d19f7ap-3;                          \
    q = q * z + 0x1.7462b6c858cc6p-3;                                               \
    q = q * z + 0x1.c71c62dd6bbfcp-3;                                               \
    q = q * z + 0x1.2492492df8420p-2;                                               \
    q = q * z + 0x1.999999999529cp-2;                                               \
    q = q * z + 0x1.5555555555558p-1;                                               \
    T R = z * q;                                                                    \
    T hfsq = 0.5 * f * f;                                                           \
    return ed * 0x1.62e42fefa3800p-1                                                \
           + (f - (hfsq - (s * (hfsq + R) + (ed * 0x1.ef35793c76730p-45 - c))));    \
}
FL_DEFINE_LOG_REDUCED_F64(fl_log_reduced_f64, double)

FL_INLINE double fl_log_f64(double x)
{
    int tiny = x < 0x1p-1022;                       /* subnormal (or <= 0): scale up by 2^54 */
    double xs = tiny ? x * 0x1p54 : x;
    uint64_t u = fl_bits_f64(xs);
    /* e = exponent of x / sqrt(1/2); shifted by 2^62 so the logical shift sees no sign */
    uint64_t t = u - 0x3fe6a09e667f3bcdULL + 0x4000000000000000ULL;
    uint64_t eb = t >> 52;                                      /* e + 1024 */
    double m = fl_from_bits_f64(u - ((eb - 1024) << 52));      /* in [sqrt(1/2), sqrt(2)) */
    eb -= tiny ? 54 : 0;
    /* (double)e without int64 -> double conversion: 2^52 + (e + 2048) has e in its mantissa */
    double ed = fl_from_bits_f64(0x4330000000000000ULL + eb + 1024) - (0x1p52 + 2048.0);
    double res = fl_log_reduced_f64(m - 1.0, ed, 0.0);
    res = fl_select_f64(x == 0.0, -FL_INF_F64, res);
    res = fl_select_f64(x < 0.0, FL_NAN_F64, res);
    res = fl_select_f64(x == FL_INF_F64, x, res);
    res = fl_select_f64(x != x, x, res);
    return res;
}

#define FL_DEFINE_LOG_REDUCED_F32(NAME, T)                                          \
FL_INLINE T NAME(T f, T ed, T c)                                                    \
{                                                                                   \
    T s = f / (2.0f + f);                                                           \
    T z = s * s;                                                                    \
    T q = 0x1.2ee7cep-2f * z + 0x1.997c24p-2f;                                      \
    q = q * z + 0x1.55555cp-1f;                                                     \
    T R = z * q;                                                                    \
    T hfsq = 0.5f * f * f;                                                          \
    return ed * 0x1.62ep-1f + (f - (hfsq - (s * (hfsq + R) + (ed * 0x1.0bfbe8p-15f - c)))); \
}
FL_DEFINE_LOG_REDUCED_F32(fl_log_reduced_f32, float)

FL_INLINE float fl_log_f32(float x)
{
    /* Subnormals (and zero and negatives, replaced below) are scaled by 2^24: a factor
     * picked from the bits, not `tiny ? x * 2^24 : x`, which GCC turns into two whole
     * decompositions and a select at the end. */
    uint32_t tiny = 0u - (uint32_t)(x < 0x1p-126f);
    float xs = x * fl_from_bits_f32(0x3f800000u + (tiny & (24u << 23)));
    uint32_t u = fl_bits_f32(xs);
    /* e = exponent of x / sqrt(1/2): 32-bit arithmetic shift and int -> float conversion,
     * which SSE2, AVX2, AVX-512 and NEON all have */
    int32_t e = (int32_t)(u - 0x3f3504f3u) >> 23;
    float m = fl_from_bits_f32(u - ((uint32_t)e << 23));         /* in [sqrt(1/2), sqrt(2)) */
    float ed = (float)(e - (int32_t)(tiny & 24u));
    float res = fl_log_reduced_f32(m - 1.0f, ed, 0.0f);
    res = fl_select_f32(x >= 0.0f, res, FL_NAN_F32);             /* negative or NaN */
    res = fl_select_f32(x == 0.0f, -FL_INF_F32, res);
    res = fl_select_f32(x == FL_INF_F32, x, res);
    return res;
}

/* -------------------------------------------------------------- log1p ---- */

FL_INLINE double fl_log1p_f64(double u)
{
    double y = 1.0 + u;
    double c = (y - 1.0) - u;                   /* rounding error of 1 + u */
    double res = fl_log_f64(y) - c / y;
    res = fl_select_f64(u == FL_INF_F64, u, res);
    res = fl_select_f64(y == 0.0, -FL_INF_F64, res);
    res = fl_select_f64(u == 0.0, u, res);      /* keeps the sign of -0.0 */
    return res;
}

FL_INLINE float fl_log1p_f32(float u)
{
    float y = 1.0f + u;
    float c = (y - 1.0f) - u;
    float res = fl_log_f32(y) - c / y;
    res = fl_select_f32(u == FL_INF_F32, u, res);
    res = fl_select_f32(y == 0.0f, -FL_INF_F32, res);
    res = fl_select_f32(u == 0.0f, u, res);
    return res;
}

/* ------------------------------------------------ log1p on [0, 1], fast ---- */
/* log1p(u) for u in [0, 1] (NaN passes through), given ry = 1 / (1 + u), which callers such
 * as the logistic loss need anyway.  Skips the range checks and subnormal handling that the
 * general functions need, and shares the division: about half the work of fl_log1p.
 * Same method and accuracy as fl_log + the log1p correction above. */

FL_INLINE double fl_log1p_unit_f64(double u, double ry)
{
    double y = 1.0 + u;
    int hi = y >= 0x1.6a09e667f3bcdp+0;                     /* sqrt(2): y = 2 m, e = 1 */
    double f = (hi ? 0.5 * y : y) - 1.0;
    /* the rounding error of 1 + u, c = (y - 1) - u, comes off as c / y = c ry */
    return fl_log_reduced_f64(f, hi ? 1.0 : 0.0, ((y - 1.0) - u) * ry);
}

FL_INLINE float fl_log1p_unit_f32(float u, float ry)
{
    float y = 1.0f + u;
    int hi = y >= 0x1.6a09e6p+0f;
    float f = (hi ? 0.5f * y : y) - 1.0f;
    return fl_log_reduced_f32(f, hi ? 1.0f : 0.0f, ((y - 1.0f) - u) * ry);
}

/* ---------------------------------------------- exp and log of a tile ---- */
/* out[i] = exp(z[i] - m) and out[i] = fl_log(x[i]) for i < n (out may be the input).  On
 * a SIMD layer (GCC and Clang), the float exp loops over whole vectors (FL_VECTOR_EXP),
 * with a table method of its own (fl_exp_tile_f32, below: AVX2 and AVX-512); elsewhere
 * the exp is fl_exp_nonpos.  Where the layer has getexp and scalef (FL_VECTOR_GETEXP:
 * AVX-512), the double exp and the log of both types loop over vectors too
 * (FL_VECTOR_EXPLOG), because those instructions are what compilers do not generate from
 * scalar code:
 * - double exp: scalef applies 2^k to p with one rounding, subnormal results included, in
 *   place of the exponent bit manipulations;
 * - log: getexp and getmant decompose x = 2^e m and handle subnormals, zero, infinity,
 *   NaN and negative inputs (getmant's sign control gives NaN for x < 0), in place of
 *   about 20 operations of bit manipulation and special-case selects; for float, 16-entry
 *   table lookups then replace the division.
 * The double exp and log use the scalar functions' core expressions on exact e, m and
 * 2^k, so their results are the same up to how the compiler contracts a*b + c (Clang: bit
 * for bit; GCC: 1 ulp apart for some subnormal inputs of log).  The float log has its own
 * method, below, as has the float exp (tests/test_vecmath.py: exp_n against exp_tile, its
 * scalar twin, bit for bit).
 * (The 16-entry table log was also tried on AVX2, each lookup two 8-entry permutes and a
 * blend, and ran slower than fl_log_f32's division.  With 8 intervals placed around 1, one
 * permute a lookup, it runs faster: fl_vlog_pos_normal_f32 below, for KL targets.)
 * The tests check bound and special values of each.  Other levels, other tiles and MSVC
 * loop over the scalar functions. */
/* The three tables of a table log (1 / c_i and log(1 / c_i) split in two, as below) held
 * in registers: NAME, and NAME_load() to load PREFIX_inv_f32, _hi_f32 and _lo_f32. */
#define FL_DEFINE_LOG_TABLES(NAME, TAB, LOAD, PREFIX)                               \
typedef struct { TAB inv, hi, lo; } NAME;                                           \
FL_INLINE NAME NAME##_load(void)                                                    \
{                                                                                   \
    NAME t;                                                                         \
    t.inv = LOAD(PREFIX##_inv_f32);                                                 \
    t.hi = LOAD(PREFIX##_hi_f32);                                                   \
    t.lo = LOAD(PREFIX##_lo_f32);                                                   \
    return t;                                                                       \
}

#if defined(FL_VECTOR_REGISTERS) && defined(FL_VECTOR_OPERATORS)
/* the float tile exp on whole vectors (fl_vexp_tile_f32, below) */
#define FL_VECTOR_EXP 1
FL_DEFINE_EXP_CORE_F32(fl_vexp_core_f32, fl_v_f32)

#if defined(FL_VECTOR_GETEXP)
/* fl_vlog_f32(x, fl_log_tables_f32_load()), and fl_vexp_nonpos_f64 and fl_vlog_f64 too */
#define FL_VECTOR_EXPLOG 1
/* float log with 16-entry tables (no division).  x = 2^e m with m in [0.75, 1.5) (getmant,
 * or the bits); the top four bits of m's mantissa pick one of 16 intervals (1/16 wide above
 * 1, 1/32 below), with c_i close to 1 / (its middle):
 *     log x = e ln2 + log(1 / c_i) + log1p(r),  r = m c_i - 1 (one fma), |r| < 1/16,
 *     log1p(r) = r + r^2 P(r)  (minimax, degree 3: tools/fit_vecmath.py).
 * The intervals next to 1 use c_i = 1 and log(1 / c_i) = 0, so that log x near 1 is
 * r + r^2 P(r), accurate relative to itself.  log(1 / c_i) is split into a multiple of
 * 2^-17 (fl_log_hi) and the rest (fl_log_lo), and ln2 likewise (16 bits), so that
 * e LN2_HI + fl_log_hi is exact.  Max error 0.998 ulp, checked by hand for every float32
 * (the scalar fl_log_f32: 0.86); the tables are made by tools/fit_vecmath.py. */
static const float fl_log_inv_f32[16] = {
    0x1p+0f, 0x1.d41d42p-1f, 0x1.bacf92p-1f, 0x1.a41a42p-1f,
    0x1.8f9c18p-1f, 0x1.7d05f4p-1f, 0x1.6c16c2p-1f, 0x1.5c9882p-1f,
    0x1.4e5e0ap+0f, 0x1.414142p+0f, 0x1.3521dp+0f, 0x1.29e412p+0f,
    0x1.1f7048p+0f, 0x1.15b1e6p+0f, 0x1.0c9714p+0f, 0x1p+0f};
static const float fl_log_hi_f32[16] = {
    0x0p+0f, 0x1.6f1p-4f, 0x1.2954p-3f, 0x1.9524p-3f,
    0x1.fb9p-3f, 0x1.2e8ep-2f, 0x1.5d1cp-2f, 0x1.89a4p-2f,
    -0x1.1178p-2f, -0x1.d104p-3f, -0x1.823cp-3f, -0x1.366p-3f,
    -0x1.da7p-4f, -0x1.4d3p-4f, -0x1.895p-5f, 0x0p+0f};
static const float fl_log_lo_f32[16] = {
    0x0p+0f, -0x1.6c68d4p-19f, 0x1.2c42p-19f, 0x1.a80f46p-19f,
    0x1.8bd5e4p-19f, 0x1.5f708ep-21f, -0x1.2d53fcp-21f, -0x1.8ae7d8p-19f,
    -0x1.cd84fcp-19f, 0x1.f066a8p-21f, -0x1.8551a4p-23f, 0x1.c9f538p-22f,
    -0x1.3c1c22p-19f, -0x1.165208p-20f, 0x1.5f2d82p-19f, 0x0p+0f};

FL_DEFINE_LOG_TABLES(fl_log_tables_f32, fl_tab16_f32, fl_tab16_load_f32, fl_log)

FL_DEFINE_LOG_REDUCED_F64(fl_vlog_reduced_f64, fl_v_f64)
FL_DEFINE_EXP_CORE_F64(fl_vexp_core_f64, fl_v_f64)

/* log x - c, for a c much smaller than ulp(log x) (a correction: see fl_logistic_parts_f32
 * below), taken off before the last two roundings; fl_vlog_f32 is c = 0 */
FL_INLINE fl_v_f32 fl_vlog_minus_f32(fl_v_f32 x, fl_log_tables_f32 tab, fl_v_f32 c)
{
    fl_v_f32 m = fl_vgetmant_f32(x);                /* in [0.75, 1.5); NaN: x < 0 */
    fl_v_f32 e = fl_vgetexp_f32(x);                 /* x = 2^e (1 + f), -inf at 0 */
    fl_vidx_f32 i = fl_vidx_f32_of(m, 19);          /* the top 4 bits of the mantissa */
    fl_v_f32 r = fl_vfma_f32(m, fl_tab16_lookup_f32(tab.inv, i), fl_vset1_f32(-1.0f));
    fl_v_f32 hi, lo, p, r2 = r * r;
    e = fl_vmask_add1_f32(fl_klt_f32(m, fl_vset1_f32(1.0f)), e);      /* m = mantissa / 2 */
    hi = fl_vfma_f32(e, fl_vset1_f32(0x1.62e4p-1f), fl_tab16_lookup_f32(tab.hi, i));
    lo = fl_vfma_f32(e, fl_vset1_f32(0x1.7f7d1cp-20f), fl_tab16_lookup_f32(tab.lo, i));
    p = ((0x1.85d256p-3f * r - 0x1.002284p-2f) * r + 0x1.55578cp-2f) * r - 0x1.fffffep-2f;
    return hi + (r + (r2 * p + (lo - c)));
}

FL_INLINE fl_v_f32 fl_vlog_f32(fl_v_f32 x, fl_log_tables_f32 tab)
{
    return fl_vlog_minus_f32(x, tab, fl_vzero_f32());      /* lo - 0 is lo: folded */
}

FL_INLINE fl_v_f64 fl_vlog_f64(fl_v_f64 x)
{
    fl_v_f64 m = fl_vgetmant_f64(x);                /* in [1, 2) */
    fl_v_f64 e = fl_vgetexp_f64(x);
    fl_k_f64 hi = fl_kge_f64(m, fl_vset1_f64(0x1.6a09e667f3bcdp+0));
    m = fl_vmask_half_f64(hi, m);
    e = fl_vmask_add1_f64(hi, e);
    return fl_vlog_reduced_f64(m - 1.0, e, fl_vzero_f64());
}

/* exp_nonpos with the scaling by scalef: p 2^k in one instruction, rounded once (float
 * has its own tile exp, below) */
FL_INLINE fl_v_f64 fl_vexp_nonpos_f64(fl_v_f64 x)
{
    fl_v_f64 xc = fl_vmax_f64(fl_vset1_f64(-746.0), x);
    fl_v_f64 kd = (xc * 0x1.71547652b82fep+0 + 0x1.8p52) - 0x1.8p52;
    return fl_vscalef_f64(fl_vexp_core_f64(xc, kd), kd);
}
#endif

#if defined(FL_VECTOR_TAB8) || defined(FL_VECTOR_GETEXP)
/* The softmax tiles' float exp with a table (AVX2 and AVX-512; FL_EXP_TABLE_N says its
 * size, 0 at other levels), exp(x) for x <= 0 (or NaN), as fl_exp_nonpos_f32 takes it but with N = 2^B intervals
 * per power of two, N = 8 (AVX2: one vpermps a lookup) or 16 (AVX-512):
 *     x = (k / N) ln2 + r, |r| <= ln2 / 2N  (ln2 / N split in two, k LN2HI / N exact),
 *     exp(x) = 2^(k / N) (1 + y),  y = r + r^2 q(r)  (minimax, degree 2 / 1:
 *     tools/fit_vecmath.py; two and three fmas fewer than fl_exp_core_f32's degree 4),
 *     s = 2^(k / N + 100) from integer bits: the table holds the bits of 2^(j / N + 100)
 *     rounded to float, less j 2^(23 - B), for j = k mod N (the low B bits of kshift's
 *     bits), and kshift's bits shifted left by 23 - B add k 2^(23 - B): (k - j) / N to
 *     the exponent, no shift right, no mask;
 *     exp(x) = (s + s y) 2^-100, one fma rounded in the normal range, and exact scaling
 *     but where the result is subnormal.
 * 17-20% less time than the polynomial exp before it on vectors in L1 (fl_exp_nonpos_f32's
 * method: operation for operation at AVX2, with scalef at AVX-512), and a softmax row's
 * exp and sums 8-17% less, on the 2-core Zen 5 at both levels (bench/wide_rows_ab.c,
 * bench/tile_sums_ab.c).  Max error over every float x <= 0 (checked by hand in C): 0.93
 * ulp with N = 8, 1.02 with 16 (fl_exp_nonpos_f32: 1.06).  Its results are not fl_exp's: fl_exp_tile_f32
 * below is the scalar twin, operation for operation, for the tile code's single values
 * and leftover rows; pointwise losses keep fl_exp (their scalar loops would turn a table
 * lookup into a gather). */
#if defined(FL_VECTOR_GETEXP)
#define FL_EXP_TAB_B 4
#define FL_EXP_TABLE_N 16
static const uint32_t fl_exp_tab_f32[16] = {
    0x71800000u, 0x717daac3u, 0x717b95c2u, 0x7179c3d3u, 0x717837f0u, 0x7176f532u,
    0x7175fed7u, 0x7175583fu, 0x717504f3u, 0x717508a4u, 0x7175672au, 0x7176248cu,
    0x717744fdu, 0x7178ccdfu, 0x717ac0c7u, 0x717d257du};
#define FL_EXP_TAB_Q(r) (0x1.5555acp-3f * (r) + 0x1.000148p-1f)
#define FL_EXP_TAB_LOOKUP(tab, u) fl_tab16_lookup_f32(tab, (fl_vidx_f32)(u))
typedef fl_tab16_f32 fl_exp_tab_v_f32;
#define fl_exp_tab_load_f32 fl_tab16_load_f32
#else
#define FL_EXP_TAB_B 3
#define FL_EXP_TABLE_N 8
static const uint32_t fl_exp_tab_f32[8] = {
    0x71800000u, 0x717b95c2u, 0x717837f0u, 0x7175fed7u, 0x717504f3u, 0x7175672au,
    0x717744fdu, 0x717ac0c7u};
#define FL_EXP_TAB_Q(r) ((0x1.5556b4p-5f * (r) + 0x1.555b7cp-3f) * (r) + 0x1p-1f)
#define FL_EXP_TAB_LOOKUP(tab, u) fl_tab8_lookup_f32(tab, u)
typedef fl_tab8_f32 fl_exp_tab_v_f32;
#define fl_exp_tab_load_f32 fl_tab8_load_f32
#endif

/* xc (x clamped) -> kshift, whose bits hold k = round(x N / ln2) + 0x4b400000, and r;
 * then y = exp(r) - 1 of r (FL_EXP_TAB_Y) */
#define FL_DEFINE_EXP_TAB_REDUCE(NAME, T)                                           \
FL_INLINE T NAME(T xc, T* kshift)                                                   \
{                                                                                   \
    const float n_ln2 = (float)(1 << FL_EXP_TAB_B) * 0x1.715476p+0f;   /* exact */  \
    T ks = xc * n_ln2 + 0x1.8p23f;                                                  \
    T kd = ks - 0x1.8p23f;                                                          \
    T r = xc - kd * (0x1.62ep-1f / (float)(1 << FL_EXP_TAB_B));   /* 12 bits: exact */ \
    r = r - kd * (0x1.0bfbe8p-15f / (float)(1 << FL_EXP_TAB_B));                    \
    *kshift = ks;                                                                   \
    return r;                                                                       \
}
FL_DEFINE_EXP_TAB_REDUCE(fl_exp_tab_reduce_f32, float)
FL_DEFINE_EXP_TAB_REDUCE(fl_vexp_tab_reduce_f32, fl_v_f32)
#define FL_EXP_TAB_Y(r) ((r) + ((r) * (r)) * FL_EXP_TAB_Q(r))

FL_INLINE float fl_exp_tile_f32(float x)
{
    float kshift, xc = x < -104.0f ? -104.0f : x;
    float r = fl_exp_tab_reduce_f32(xc, &kshift);
    float y = FL_EXP_TAB_Y(r);
    uint32_t u = fl_bits_f32(kshift);
    float s = fl_from_bits_f32(fl_exp_tab_f32[u & ((1u << FL_EXP_TAB_B) - 1u)]
                               + (u << (23 - FL_EXP_TAB_B)));
    return (s * y + s) * 0x1p-100f;
}

/* The vector tile exp in two steps (fl_exp_shift_n_f32's loop runs them a step apart):
 * fl_vexp_tile_reduce_f32 takes x to r and kshift, fl_vexp_tile_finish_f32 those to
 * exp(x); fl_vexp_tile_f32 is the one after the other. */
FL_INLINE fl_v_f32 fl_vexp_tile_reduce_f32(fl_v_f32 x, fl_v_f32* kshift)
{
    fl_v_f32 xc = fl_vmax_f32(fl_vset1_f32(-104.0f), x);               /* NaN passes */
    return fl_vexp_tab_reduce_f32(xc, kshift);
}

FL_INLINE fl_v_f32 fl_vexp_tile_finish_f32(fl_v_f32 r, fl_v_f32 kshift, fl_exp_tab_v_f32 tab)
{
    fl_v_f32 y = FL_EXP_TAB_Y(r);
    fl_vu_f32 u = (fl_vu_f32)kshift;
    fl_v_f32 s = (fl_v_f32)((fl_vu_f32)FL_EXP_TAB_LOOKUP(tab, u) + (u << (23 - FL_EXP_TAB_B)));
    return (s * y + s) * 0x1p-100f;
}

FL_INLINE fl_v_f32 fl_vexp_tile_f32(fl_v_f32 x, fl_exp_tab_v_f32 tab)
{
    fl_v_f32 kshift, r = fl_vexp_tile_reduce_f32(x, &kshift);
    return fl_vexp_tile_finish_f32(r, kshift, tab);
}

FL_INLINE fl_exp_tab_v_f32 fl_exp_tile_tab_f32(void)
{
    return fl_exp_tab_load_f32((const float*)fl_exp_tab_f32);
}

#else
/* a level with vectors but no table: the scalar fl_exp_nonpos_f32 on vectors, operation
 * for operation (the same bits) */
#define FL_EXP_TABLE_N 0
typedef int fl_exp_tab_v_f32;
FL_INLINE fl_exp_tab_v_f32 fl_exp_tile_tab_f32(void) { return 0; }
FL_INLINE fl_v_f32 fl_vexp_tile_reduce_f32(fl_v_f32 x, fl_v_f32* kshift)   /* xc */
{
    fl_v_f32 xc = fl_vmax_f32(fl_vset1_f32(-104.0f), x);      /* NaN passes, as x < -104 */
    *kshift = xc * 0x1.715476p+0f + fl_vset1_f32(0x1.8p23f);
    return xc;
}
FL_INLINE fl_v_f32 fl_vexp_tile_finish_f32(fl_v_f32 xc, fl_v_f32 kshift, fl_exp_tab_v_f32 tab)
{
    const fl_v_f32 shift = fl_vset1_f32(0x1.8p23f);
    fl_v_f32 y = fl_vexp_core_f32_tail(xc, kshift - shift);
    fl_vu_f32 kb = (fl_vu_f32)kshift - (fl_vu_f32)shift;       /* k modulo 2^32 */
    (void)tab;
    return (y * 0x1p-100f + 0x1p-100f) * (fl_v_f32)((kb + 227u) << 23);
}
FL_INLINE fl_v_f32 fl_vexp_tile_f32(fl_v_f32 x, fl_exp_tab_v_f32 tab)
{
    fl_v_f32 kshift, xc = fl_vexp_tile_reduce_f32(x, &kshift);
    return fl_vexp_tile_finish_f32(xc, kshift, tab);
}
FL_INLINE float fl_exp_tile_f32(float x) { return fl_exp_nonpos_f32(x); }
#endif

/* out[i] = exp(z[i] - m) for the whole vectors of z[0 .. n) (LOAD: a vector of E at p, as
 * float); returns how many values that was.  Two vectors a step, each step reducing the
 * next two while it finishes the two before: the same operations and bits as
 * fl_vexp_tile_f32 on each vector, but each step's finishing operations have their inputs
 * ready when they issue, where one vector at a time (a chain of about 45 cycles from the
 * load to the store) left the core's schedulers holding operations that waited on it.
 * The exp over 512 and 1000 values in L1 took 7-11% less time at AVX2 and 5-7% less at
 * AVX-512 on the 2-core Zen 4 (bench/results/2026-12-03e-exp-steps.txt).  Every load
 * comes before any store to the values before it: out may be z (E float). */
#define FL_DEFINE_EXP_SHIFT_VECTORS(NAME, E, LOAD)                                  \
FL_INLINE ptrdiff_t NAME(const E* z, fl_v_f32 vm, ptrdiff_t n, float* out,           \
                         fl_exp_tab_v_f32 tab)                                      \
{                                                                                   \
    const ptrdiff_t W = FL_W_f32;                                                   \
    ptrdiff_t i = 0;                                                                \
    if (n >= 2 * W) {                                                               \
        fl_v_f32 ka, kb, ka2, kb2, ra2, rb2;                                        \
        fl_v_f32 ra = fl_vexp_tile_reduce_f32(LOAD(z) - vm, &ka);                   \
        fl_v_f32 rb = fl_vexp_tile_reduce_f32(LOAD(z + W) - vm, &kb);               \
        for (i = 2 * W; i + 2 * W <= n; i += 2 * W) {                               \
            ra2 = fl_vexp_tile_reduce_f32(LOAD(z + i) - vm, &ka2);                  \
            fl_vstore_f32(out + i - 2 * W, fl_vexp_tile_finish_f32(ra, ka, tab));   \
            rb2 = fl_vexp_tile_reduce_f32(LOAD(z + i + W) - vm, &kb2);              \
            fl_vstore_f32(out + i - W, fl_vexp_tile_finish_f32(rb, kb, tab));       \
            ra = ra2;                                                               \
            ka = ka2;                                                               \
            rb = rb2;                                                               \
            kb = kb2;                                                               \
        }                                                                           \
        fl_vstore_f32(out + i - 2 * W, fl_vexp_tile_finish_f32(ra, ka, tab));       \
        fl_vstore_f32(out + i - W, fl_vexp_tile_finish_f32(rb, kb, tab));           \
    }                                                                               \
    if (i + W <= n) {                                                               \
        fl_vstore_f32(out + i, fl_vexp_tile_f32(LOAD(z + i) - vm, tab));            \
        i += W;                                                                     \
    }                                                                               \
    return i;                                                                       \
}
FL_DEFINE_EXP_SHIFT_VECTORS(fl_exp_shift_vectors_f32, float, fl_vload_f32)

FL_INLINE void fl_exp_shift_n_f32(const float* z, float m, ptrdiff_t n, float* out)
{
    fl_v_f32 vm = fl_vset1_f32(m);
    fl_exp_tab_v_f32 tab = fl_exp_tile_tab_f32();
    ptrdiff_t i = fl_exp_shift_vectors_f32(z, vm, n, out, tab);
    if (i < n)
        fl_vstore_first_f32(out + i, (int)(n - i),
                            fl_vexp_tile_f32(fl_vload_first_f32(z + i, (int)(n - i)) - vm,
                                             tab));
}

#else
/* the tile exp of the plain loops: fl_exp_nonpos_f32 */
#define FL_EXP_TABLE_N 0
FL_INLINE float fl_exp_tile_f32(float x) { return fl_exp_nonpos_f32(x); }

FL_INLINE void fl_exp_shift_n_f32(const float* z, float m, ptrdiff_t n, float* out)
{
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = fl_exp_tile_f32(z[i] - m);
}

#endif

#if defined(FL_VECTOR_EXPLOG)
FL_INLINE void fl_log_n_f32(const float* x, ptrdiff_t n, float* out)
{
    const ptrdiff_t W = FL_W_f32;
    fl_log_tables_f32 tab = fl_log_tables_f32_load();
    ptrdiff_t i = 0;
    for (; i + W <= n; i += W)
        fl_vstore_f32(out + i, fl_vlog_f32(fl_vload_f32(x + i), tab));
    if (i < n)
        fl_vstore_first_f32(out + i, (int)(n - i),
                            fl_vlog_f32(fl_vload_first_f32(x + i, (int)(n - i)), tab));
}

#else
FL_INLINE void fl_log_n_f32(const float* x, ptrdiff_t n, float* out)
{
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = fl_log_f32(x[i]);
}

#endif

/* log of a positive normal float: fl_log_f32's decomposition and reduced log alone, with
 * no subnormal scaling and no special cases.  The same expression as fl_log_f32's for such
 * x, so the same value up to how the compiler contracts a*b + c in each place (GCC picks
 * different products to fuse in the two: 1 ulp apart for about 1% of inputs), within the
 * same bound (tests/c/kernels_check.c). */
FL_INLINE float fl_log_pos_normal_f32(float x)
{
    uint32_t u = fl_bits_f32(x);
    int32_t e = (int32_t)(u - 0x3f3504f3u) >> 23;
    float m = fl_from_bits_f32(u - ((uint32_t)e << 23));
    return fl_log_reduced_f32(m - 1.0f, (float)e, 0.0f);
}

/* 1 where x is neither 0 nor a positive normal float (subnormal, negative, infinite or
 * NaN): where fl_log_pos_normal_f32 does not give the log */
FL_INLINE int fl_log_not_pos_normal_f32(float x)
{
    return (x != 0.0f) & !(x >= 0x1p-126f && x <= 0x1.fffffep+127f);
}

/* Whether any of many floats is one for fl_log_not_pos_normal_f32, from two reductions
 * that a vector loop keeps in unsigned max and min (vpmaxud, vpminud: 3 operations a
 * vector where the exact test takes 6): hi, the largest bit pattern, is >= that of +inf
 * for any negative, infinite or NaN value, and lo, the smallest bit pattern less 1 (0 wraps
 * to the largest), is below that of the smallest normal for any subnormal.  -0.0 raises it
 * too, a false alarm: the callers' rare loop then applies the exact test. */
#define FL_ANY_NOT_POS_NORMAL_START uint32_t fl_nn_hi = 0, fl_nn_lo = 0xffffffffu
#define FL_ANY_NOT_POS_NORMAL_ADD(x)                                                \
    do {                                                                            \
        uint32_t fl_nn_u = fl_bits_f32(x);                                          \
        fl_nn_hi = fl_nn_u > fl_nn_hi ? fl_nn_u : fl_nn_hi;                         \
        fl_nn_lo = fl_nn_u - 1u < fl_nn_lo ? fl_nn_u - 1u : fl_nn_lo;               \
    } while (0)
#define FL_ANY_NOT_POS_NORMAL (fl_nn_hi >= 0x7f800000u || fl_nn_lo < 0x7fffffu)

/* out[i] = log x[i] wherever x[i] != 0 (any value where x[i] == 0, for callers that
 * weigh it by x[i]: 0 log 0 = 0); out must not be x.  Without FL_VECTOR_EXPLOG's vector
 * log, positive normal values (probabilities, the usual tile) go through
 * fl_log_pos_normal_f32 (AVX2: its table form below) in one vector loop, about a fifth
 * fewer operations than fl_log_n_f32, and any other nonzero value then through
 * fl_log_f32, one at a time: each value's log depends on that value alone, not on what
 * else is in the tile. */
#if defined(FL_VECTOR_EXPLOG)
FL_INLINE void fl_log_n_where_nonzero_f32(const float* x, ptrdiff_t n, float* out)
{
    fl_log_n_f32(x, n, out);
}

#elif defined(FL_VECTOR_TAB8) && defined(FL_VECTOR_OPERATORS)             /* AVX2 */
/* The float log of positive normal values in vectors with 8-entry tables (vpermps), the
 * method of the AVX-512 log above without getexp and getmant: x = 2^e m with m in
 * [sqrt(1/2), sqrt(2)) from the bits as fl_log_pos_normal_f32 takes them, and bits 20-22
 * of the bits less those of sqrt(1/2) pick one of 8 intervals of m (1/16 wide below 1, 1/8
 * above, and the one around 1 from 1 - 0.043 to 1 + 0.039, where c = 1), so that
 *     log x = e ln2 + log(1 / c_i) + log1p(r),  r = m c_i - 1 (one fma), |r| < 1/16,
 *     log1p(r) = r + r^2 P(r)  (minimax, degree 3: tools/fit_vecmath.py),
 * with log(1 / c_i) and ln2 split as above.  Each c_i is a multiple of 1/16 (1/32 above 1)
 * near 1 / (its interval's middle): m c_i - 1 then fits a float and the fma gives r
 * exactly.  Max error 0.88 ulp over every positive normal float (the scalar fl_log_f32:
 * 0.86).  No division: a loop of KL terms (fl_kl_log_terms_fast_f32) over 1024 values in
 * L1 took about a quarter less time than with fl_log_pos_normal_f32 (the 2-core EPYC).
 * Values that are not positive normal go through fl_log_f32, as below. */
#define FL_VECTOR_LOG_POS_NORMAL 1
static const float fl_log8_inv_f32[8] = {
    0x1.6p+0f, 0x1.4p+0f, 0x1.3p+0f, 0x1.1p+0f, 0x1p+0f, 0x1.dp-1f, 0x1.ap-1f, 0x1.8p-1f};
static const float fl_log8_hi_f32[8] = {
    -0x1.4618p-2f, -0x1.c9p-3f, -0x1.5ff4p-3f, -0x1.f0a0p-5f,
    0x0p+0f, 0x1.9338p-4f, 0x1.a94p-3f, 0x1.2696p-2f};
static const float fl_log8_lo_f32[8] = {
    -0x1.78438cp-19f, 0x1.070cacp-20f, 0x1.f1eb0ep-20f, -0x1.86008cp-20f,
    0x0p+0f, -0x1.0d1536p-19f, -0x1.2c3752p-19f, 0x1.089a6ep-21f};

FL_DEFINE_LOG_TABLES(fl_log8_tables_f32, fl_tab8_f32, fl_tab8_load_f32, fl_log8)

/* log x - c, as fl_vlog_minus_f32 (AVX-512) */
FL_INLINE fl_v_f32 fl_vlog_pos_normal_minus_f32(fl_v_f32 x, fl_log8_tables_f32 tab,
                                                fl_v_f32 c)
{
    fl_vu_f32 u = (fl_vu_f32)x;
    fl_vu_f32 a = u - 0x3f3504f3u;
    fl_vi_f32 e = (fl_vi_f32)a >> 23;
    fl_v_f32 m = (fl_v_f32)(u - ((fl_vu_f32)e << 23));            /* [sqrt(1/2), sqrt(2)) */
    fl_vu_f32 i = a >> 20;                                         /* its low 3 bits count */
    fl_v_f32 ed = fl_vfloat_f32(e);
    fl_v_f32 r = fl_vfma_f32(m, fl_tab8_lookup_f32(tab.inv, i), fl_vset1_f32(-1.0f));
    fl_v_f32 hi = fl_vfma_f32(ed, fl_vset1_f32(0x1.62e4p-1f), fl_tab8_lookup_f32(tab.hi, i));
    fl_v_f32 lo = fl_vfma_f32(ed, fl_vset1_f32(0x1.7f7d1cp-20f), fl_tab8_lookup_f32(tab.lo, i));
    fl_v_f32 r2 = r * r;
    fl_v_f32 p = ((0x1.97f65ap-3f * r - 0x1.009de0p-2f) * r + 0x1.5555e2p-2f) * r
                 - 0x1.ffffeep-2f;
    return hi + (r + (r2 * p + (lo - c)));
}

FL_INLINE fl_v_f32 fl_vlog_pos_normal_f32(fl_v_f32 x, fl_log8_tables_f32 tab)
{
    return fl_vlog_pos_normal_minus_f32(x, tab, fl_vzero_f32());
}

/* FL_ANY_NOT_POS_NORMAL's reductions in vector lanes, and their test at the end */
FL_INLINE void fl_vnot_pos_normal_add(fl_vu_f32* hi, fl_vu_f32* lo, fl_v_f32 x)
{
    *hi = fl_vumax_f32(*hi, (fl_vu_f32)x);
    *lo = fl_vumin_f32(*lo, (fl_vu_f32)x - 1u);
}

FL_INLINE int fl_vnot_pos_normal_any(fl_vu_f32 hi, fl_vu_f32 lo)
{
    uint32_t h[FL_W_f32], l[FL_W_f32];
    int any = 0;
    memcpy(h, &hi, sizeof h);
    memcpy(l, &lo, sizeof l);
    for (int j = 0; j < FL_W_f32; j++)
        any |= (h[j] >= 0x7f800000u) | (l[j] < 0x7fffffu);
    return any;
}

FL_INLINE void fl_log_n_where_nonzero_f32(const float* x, ptrdiff_t n, float* out)
{
    const ptrdiff_t W = FL_W_f32;
    fl_log8_tables_f32 tab = fl_log8_tables_f32_load();
    fl_vu_f32 hi = (fl_vu_f32)fl_vzero_f32(), lo = hi - 1u;
    ptrdiff_t i = 0;
    for (; i + W <= n; i += W) {
        fl_v_f32 v = fl_vload_f32(x + i);
        fl_vstore_f32(out + i, fl_vlog_pos_normal_f32(v, tab));
        fl_vnot_pos_normal_add(&hi, &lo, v);
    }
    if (i < n) {                        /* the other lanes load 0, which counts as fine */
        fl_v_f32 v = fl_vload_first_f32(x + i, (int)(n - i));
        fl_vstore_first_f32(out + i, (int)(n - i), fl_vlog_pos_normal_f32(v, tab));
        fl_vnot_pos_normal_add(&hi, &lo, v);
    }
    if (fl_vnot_pos_normal_any(hi, lo))  /* rare: subnormal, negative, inf or NaN values */
        for (i = 0; i < n; i++)
            if (fl_log_not_pos_normal_f32(x[i]))
                out[i] = fl_log_f32(x[i]);
}

#else
FL_INLINE void fl_log_n_where_nonzero_f32(const float* x, ptrdiff_t n, float* out)
{
    FL_ANY_NOT_POS_NORMAL_START;
    for (ptrdiff_t i = 0; i < n; i++) {
        out[i] = fl_log_pos_normal_f32(x[i]);
        FL_ANY_NOT_POS_NORMAL_ADD(x[i]);
    }
    if (FL_ANY_NOT_POS_NORMAL)          /* rare: subnormal, negative, inf or NaN values */
        for (ptrdiff_t i = 0; i < n; i++)
            if (fl_log_not_pos_normal_f32(x[i]))
                out[i] = fl_log_f32(x[i]);
}

#endif

/* ------------------------------------------------- the logistic parts ---- */
/* fl_logistic_parts_S(x, n, e, d, L): for i < n,
 *     e[i] = exp(-|x[i]|) in (0, 1],  d[i] = 1 / (1 + e[i]) = sigmoid(|x[i]|),
 *     L[i] = log1p(e[i]) = softplus(-|x[i]|),
 * from which the logistic loss (BCE with logits) forms sigmoid(+-x) and softplus(+-x)
 * without overflow or cancellation.  One loop would be one long chain per element (an exp,
 * then a division and a log that wait for it); two loops over the tile, the exp first,
 * keep more elements in flight (pointwise_losses.pxi, "A stage").
 *
 * Where the layer has a float table log (AVX2: fl_vlog_pos_normal_f32's 8 intervals;
 * AVX-512: fl_vlog_f32's 16), float runs on vectors: e is the tile exp (fl_vexp_tile_f32)
 * and L = log(y) - c d, y = 1 + e, c = (y - 1) - e (the rounding error of 1 + e, taken
 * off before log's last two roundings), with no division but d's.  L to 0.80 ulp (AVX2)
 * and 1.01 ulp (AVX-512) of log1p(e) for every float e in (0, 1] (checked by hand in C;
 * fl_log1p_unit_f32: the division form, 1.5 ulp bound).  On the 2-core Zen 4, in cache,
 * BCE took 12-14% less time at AVX2 than with the scalar loops below, the same at
 * AVX-512, whose loss loop is then bound by its loads (a C copy of the tile's loops:
 * 21% and 16%; bench/results/2026-12-03c-logistic.txt).  Elsewhere, and for double: the
 * scalar functions, fl_exp_nonpos and fl_log1p_unit.  d is 1 / (1 + e) rounded once
 * everywhere.  NaN gives NaN in all three; x = +-inf gives e = 0, d = 1, L = 0. */
#if defined(FL_VECTOR_LOG_POS_NORMAL) || defined(FL_VECTOR_EXPLOG)
#if defined(FL_VECTOR_EXPLOG)
typedef fl_log_tables_f32 fl_logistic_log_tables_f32;
#define fl_logistic_log_tables_f32_load fl_log_tables_f32_load
#define fl_logistic_vlog_minus_f32 fl_vlog_minus_f32
#else
typedef fl_log8_tables_f32 fl_logistic_log_tables_f32;
#define fl_logistic_log_tables_f32_load fl_log8_tables_f32_load
#define fl_logistic_vlog_minus_f32 fl_vlog_pos_normal_minus_f32
#endif

FL_INLINE fl_v_f32 fl_vlogistic_e_f32(fl_v_f32 x, fl_exp_tab_v_f32 tab)
{
    return fl_vexp_tile_f32((fl_v_f32)((fl_vu_f32)x | 0x80000000u), tab);      /* -|x| */
}

FL_INLINE fl_v_f32 fl_vlogistic_dl_f32(fl_v_f32 e, fl_logistic_log_tables_f32 tab,
                                       fl_v_f32* L)
{
    fl_v_f32 y = e + 1.0f;
    fl_v_f32 d = 1.0f / y;
    *L = fl_logistic_vlog_minus_f32(y, tab, ((y - 1.0f) - e) * d);
    return d;
}

FL_INLINE void fl_logistic_parts_f32(const float* x, ptrdiff_t n, float* e, float* d,
                                     float* L)
{
    const ptrdiff_t W = FL_W_f32;
    ptrdiff_t i = 0;
    {
        fl_exp_tab_v_f32 tab = fl_exp_tile_tab_f32();
        for (; i + W <= n; i += W)
            fl_vstore_f32(e + i, fl_vlogistic_e_f32(fl_vload_f32(x + i), tab));
        if (i < n)
            fl_vstore_first_f32(e + i, (int)(n - i),
                                fl_vlogistic_e_f32(fl_vload_first_f32(x + i, (int)(n - i)),
                                                   tab));
    }
    fl_logistic_log_tables_f32 tab = fl_logistic_log_tables_f32_load();
    fl_v_f32 Lv;
    for (i = 0; i + W <= n; i += W) {
        fl_vstore_f32(d + i, fl_vlogistic_dl_f32(fl_vload_f32(e + i), tab, &Lv));
        fl_vstore_f32(L + i, Lv);
    }
    if (i < n) {                        /* the other lanes load 0: y = 1, harmless */
        fl_v_f32 dv = fl_vlogistic_dl_f32(fl_vload_first_f32(e + i, (int)(n - i)), tab, &Lv);
        fl_vstore_first_f32(d + i, (int)(n - i), dv);
        fl_vstore_first_f32(L + i, (int)(n - i), Lv);
    }
}

#else
FL_INLINE void fl_logistic_parts_f32(const float* x, ptrdiff_t n, float* e, float* d,
                                     float* L)
{
    for (ptrdiff_t i = 0; i < n; i++)
        e[i] = fl_exp_nonpos_f32(-fabsf(x[i]));
    for (ptrdiff_t i = 0; i < n; i++) {
        d[i] = 1.0f / (1.0f + e[i]);
        L[i] = fl_log1p_unit_f32(e[i], d[i]);
    }
}
#endif

FL_INLINE void fl_logistic_parts_f64(const double* x, ptrdiff_t n, double* e, double* d,
                                     double* L)
{
    for (ptrdiff_t i = 0; i < n; i++)
        e[i] = fl_exp_nonpos_f64(-fabs(x[i]));
    for (ptrdiff_t i = 0; i < n; i++) {
        d[i] = 1.0 / (1.0 + e[i]);
        L[i] = fl_log1p_unit_f64(e[i], d[i]);
    }
}

#if defined(FL_VECTOR_EXPLOG)
FL_INLINE void fl_exp_shift_n_f64(const double* z, double m, ptrdiff_t n, double* out)
{
    const ptrdiff_t W = FL_W_f64;
    fl_v_f64 vm = fl_vset1_f64(m);
    ptrdiff_t i = 0;
    for (; i + W <= n; i += W)
        fl_vstore_f64(out + i, fl_vexp_nonpos_f64(fl_vload_f64(z + i) - vm));
    if (i < n)
        fl_vstore_first_f64(out + i, (int)(n - i),
                            fl_vexp_nonpos_f64(fl_vload_first_f64(z + i, (int)(n - i)) - vm));
}

FL_INLINE void fl_log_n_f64(const double* x, ptrdiff_t n, double* out)
{
    const ptrdiff_t W = FL_W_f64;
    ptrdiff_t i = 0;
    for (; i + W <= n; i += W)
        fl_vstore_f64(out + i, fl_vlog_f64(fl_vload_f64(x + i)));
    if (i < n)
        fl_vstore_first_f64(out + i, (int)(n - i),
                            fl_vlog_f64(fl_vload_first_f64(x + i, (int)(n - i))));
}
#else
FL_INLINE void fl_exp_shift_n_f64(const double* z, double m, ptrdiff_t n, double* out)
{
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = fl_exp_nonpos_f64(z[i] - m);
}

FL_INLINE void fl_log_n_f64(const double* x, ptrdiff_t n, double* out)
{
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = fl_log_f64(x[i]);
}
#endif

#endif /* FASTLOSS_VECMATH_H */
