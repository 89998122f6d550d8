/*
 * fastloss SIMD layer: the one way the C headers write vector code.
 *
 * How vector code is written here
 * -------------------------------
 * Every kernel family is compiled once per instruction-set level (src/fastloss/_build.py:
 * baseline, avx2, avx512), and the level's compiler flags say which of these it gets:
 *
 *   simd_avx512.h   __AVX512F__   W = 16 floats / 8 doubles, lane masks in k registers
 *   simd_avx2.h     __AVX2__      W = 8 floats / 4 doubles, lane masks in vectors
 *   (none)          otherwise     plain C loops, vectorized by the compiler (FL_SIMD)
 *
 * Each per-ISA file defines the same names; they (and simd_x86.h, the 256-bit folds both
 * x86 files share) are the only places where raw intrinsics appear.  Code above the layer (lanes.h, maxat.h, transpose.h, kl_tile.h, vecmath.h) is
 * written once, for any W, in these terms; it asks `#ifdef FL_VECTOR_REGISTERS` (a layer
 * is present) and otherwise keeps a plain loop, which is also the reference the tests
 * compare the vector code with.  A per-ISA file per instruction set, rather than `#if`
 * ladders inside each helper, keeps the helpers readable and puts everything one needs to
 * port in one place.
 *
 * Per type S (f32, f64), at every level:
 *   fl_v_S, FL_W_S                    the vector type and its number of lanes
 *   fl_vload_S, fl_vstore_S           whole vectors, unaligned
 *   fl_vload_first_S(p, n)            p[0 .. n), zeros in the other lanes
 *   fl_vstore_first_S(p, n, v)        p[0 .. n) only
 *   fl_vset1_S, fl_vzero_S
 *   fl_vadd_S, fl_vsub_S, fl_vmul_S   (also C's operators: see below)
 *   fl_vmax_S(v, m)                   `v > m ? v : m` per lane, NaN included (x86 max)
 *   fl_vfma_S(a, b, c)                a b + c rounded once
 *   fl_veq_bits_S(a, b)               bit j set where a_j == b_j
 *   fl_vhmax_S(v)                     the largest lane of a vector without NaN
 *   fl_vtranspose_S(v)                v[j] = row j of a W x W block -> v[c] = column c
 * float64 sums of float data (FL_W_f32 = 2 FL_W_f64 at every level):
 *   fl_vload_f32_as_f64(p)            FL_W_f64 floats at p, as doubles
 *   fl_vlo_f64(v), fl_vhi_f64(v)      the low and high half of a float vector, as doubles
 *   fl_vsum_f64(v)                    the lanes of a double vector, added in a fixed tree
 * half-precision data (uint16_t bits), widened exactly:
 *   fl_vload_bf16_f32(p), fl_vload_f16_f32(p)   FL_W_f32 bfloat16 / float16 values at p
 * with GCC and Clang, fl_vi_f32 and fl_vu_f32: the float vector's lanes as 32-bit signed
 * and unsigned integers (C's operators; a cast to or from fl_v_f32 keeps the bits), and
 *   fl_vfloat_f32(i)                  the signed integer lanes converted to float
 * lane masks of float vectors (fl_k_f32: a k register, or a vector of all-ones lanes):
 *   fl_kall_f32(), fl_kfirst_f32(n)   every lane / the first n lanes
 *   fl_kbit_f32(j)                    lane j alone (none for j outside 0 .. W)
 *   fl_kne0_f32(v, k)                 the lanes of k where v != 0 (or NaN)
 *   fl_vmaskz_f32(k, v)               v in the lanes of k, 0 elsewhere
 *   fl_vmask_sub1_f32(k, v)           v - 1 in the lanes of k, v elsewhere
 *   fl_vmaskz_sub_f32(k, a, b)        a - b in the lanes of k, 0 elsewhere
 *
 * Arithmetic may also be written with C's operators, which GCC and Clang define on vector
 * types (and use to define the add and multiply intrinsics themselves): the exp and log
 * cores of vecmath.h are then one expression for scalars and vectors, and the compiler
 * contracts a b + c into an fma in the same places in both, so the vector code gives the
 * scalar code's bits.  Code that uses the operators is guarded by FL_VECTOR_OPERATORS
 * (not MSVC, which has no operators on vector types and then runs the plain loops:
 * the same results, only slower); code that must also vectorize with MSVC (lanes.h,
 * maxat.h, transpose.h) uses the named functions.  Operations that only one level has
 * are functions of that level's file, announced by a macro and used behind it:
 * FL_VECTOR_GETEXP (AVX-512) brings getexp, getmant and scalef, 16-entry table lookups
 * (fl_tab16_*) and the masked steps of vecmath.h's vector log (fl_klt, fl_kge,
 * fl_vmask_add1, fl_vmask_half); FL_VECTOR_PAIRS (AVX2) brings fl_vload_pairs_f32 and
 * fl_vstore_pairs_f32, two classes of W rows without a transpose (transpose.h), and
 * FL_VECTOR_TAB8 (AVX2) 8-entry table lookups (fl_tab8_*) and fl_vumax_f32 /
 * fl_vumin_f32 (unsigned lanes) for vecmath.h's float log of positive normal values.
 *
 * Adding an instruction set: write simd_<isa>.h with every name above, include it below
 * under the macro its compiler flags define, add the level to _build.py, and run the tests
 * at that level (FASTLOSS_SIMD=<level>): tests/test_rows.py and tests/test_vectorize.py
 * (which runs tests/c/transpose_check.c and lanes_check.c) compare the vector helpers with
 * the plain loops bit for bit, and tests/test_vecmath.py checks the vector math's bounds.
 *
 * Also here: FL_SIMD, the `omp simd` pragma of the plain loops, and fl_prefetch.
 */
#ifndef FASTLOSS_SIMD_H
#define FASTLOSS_SIMD_H

#include <math.h>
#include <stddef.h>

#include "fl_inline.h"

/* `#pragma omp simd` asks for a loop to be vectorized without changing its results.
 * Needs -fopenmp or -fopenmp-simd (setup.py passes one of them); without either the loops
 * stay correct, only scalar.  (Sums keep their own lanes, in lanes.h: plain C fixes the
 * order of a floating-point sum, and an `omp simd reduction` would leave the lanes to the
 * compiler.) */
#if defined(_MSC_VER) && !defined(__clang__)
#define FL_SIMD
#else
#define FL_PRAGMA(x) _Pragma(#x)
#define FL_SIMD FL_PRAGMA(omp simd)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FL_VECTOR_OPERATORS 1
#endif

/* Ask for the cache lines of p[0 .. bytes) ahead of use (a hint; never faults):
 * fl_prefetch into L1 (prefetcht0), fl_prefetch_l2 into L2 only (prefetcht1), for data
 * too large for L1 before its use. */
#if defined(__GNUC__) || defined(__clang__)
#define FL_DEFINE_PREFETCH(NAME, LOCALITY)                                          \
FL_INLINE void NAME(const void* p, ptrdiff_t bytes)                                 \
{                                                                                   \
    for (ptrdiff_t i = 0; i < bytes; i += 64)                                       \
        __builtin_prefetch((const char*)p + i, 0, LOCALITY);                        \
}
#else
#define FL_DEFINE_PREFETCH(NAME, LOCALITY)                                          \
FL_INLINE void NAME(const void* p, ptrdiff_t bytes)                                 \
{                                                                                   \
    (void)p;                                                                        \
    (void)bytes;                                                                    \
}
#endif
FL_DEFINE_PREFETCH(fl_prefetch, 3)
FL_DEFINE_PREFETCH(fl_prefetch_l2, 2)

#if defined(__AVX512F__) || defined(__AVX2__)
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
#include "simd_avx512.h"
#elif defined(__AVX2__)
#include "simd_avx2.h"
#endif

#endif /* FASTLOSS_SIMD_H */
