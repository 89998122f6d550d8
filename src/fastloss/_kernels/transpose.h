/*
 * fastloss transposes between R short rows and a (C, R) tile: the narrow softmax path
 * (rows of a few classes) works on classes-by-rows tiles, so that its loops run along rows.
 *
 *   fl_transpose_in_S(src, stride, R, C, dst)          dst[c * R + r] = src[r * stride + c]
 *   fl_transpose_in_max_S(src, stride, R, C, dst, m)   the same, and m[r] = max of row r
 *   fl_transpose_out_S(srcT, R, C, dst)                dst[r * C + c] = srcT[c * R + r]
 *
 * The register and loop definitions of these three below are deliberately parallel: the
 * same entry points on the SIMD layer and without it.
 *
 * Tried on AVX2 (Zen, 2026-12) and not kept: (1) forming the gradient inside the write-back
 * (no gradient tile, no label scatter): faster alone in a C loop, 5-10% slower inside the
 * softmax tile function (register pressure; also as a non-inlined call); (2) a last class
 * block of at most 4 floats as two rows per vector with a transpose within each 128-bit
 * half (8 shuffles, not 24): the 128-bit masked loads, inserts and extracting stores cost
 * more than the shuffles saved (C = 3: 0.29 against 0.23 ns per value in).  Kept: a last
 * block of exactly 2 classes (C = 2, 10, 18, 26) as 64-bit loads and stores and 4 shuffles
 * (the layer's FL_VECTOR_PAIRS): in-cache KL 10 classes about 6% faster, CE about 2%
 * (bench/results/2026-12-02-epyc2-narrow-overlap.txt, section 7).
 */
#ifndef FASTLOSS_TRANSPOSE_H
#define FASTLOSS_TRANSPOSE_H

#include "simd.h"

/* Transposes between R rows of C values (row stride `stride`) and a (C, R) tile,
 * dst[c * R + r] = src[r * stride + c] and back.
 *
 * Portable form (the baseline level, and the rows past the last register block): loops
 * over rows for each class.  The write-back is classes outer, rows inner: strided stores
 * and contiguous loads (the other order is several times slower).  On the SIMD layer both
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

#ifdef FL_VECTOR_REGISTERS
/* A last class block of exactly 2 classes through 64-bit loads or stores (the layer's
 * FL_VECTOR_PAIRS, AVX2 floats): returns 1 when done, 0 where the layer has no such path
 * (the block is then transposed as any other). */
#define FL_DEFINE_NO_PAIRS(S, T)                                                    \
FL_INLINE int fl_load_pairs_##S(const T* p, ptrdiff_t stride, fl_v_##S* v)            \
{                                                                                   \
    (void)p, (void)stride, (void)v;                                                 \
    return 0;                                                                       \
}                                                                                   \
FL_INLINE int fl_store_pairs_##S(T* p, ptrdiff_t stride, const T* srcT, ptrdiff_t ld) \
{                                                                                   \
    (void)p, (void)stride, (void)srcT, (void)ld;                                    \
    return 0;                                                                       \
}
#if defined(FL_VECTOR_PAIRS)
FL_INLINE int fl_load_pairs_f32(const float* p, ptrdiff_t stride, fl_v_f32* v)
{
    fl_vload_pairs_f32(p, stride, &v[0], &v[1]);
    return 1;
}
FL_INLINE int fl_store_pairs_f32(float* p, ptrdiff_t stride, const float* srcT, ptrdiff_t ld)
{
    fl_vstore_pairs_f32(p, stride, fl_vload_f32(srcT), fl_vload_f32(srcT + ld));
    return 1;
}
#else
FL_DEFINE_NO_PAIRS(f32, float)
#endif
FL_DEFINE_NO_PAIRS(f64, double)

/* On the SIMD layer: blocks of W rows x W classes, masked row loads (or stores) and one
 * register transpose (fl_vtranspose_S),
 * about 3x fewer instructions than W * W scalar moves or W gathers.  Rows past the last
 * whole block of W use the loops above.  Where masked stores are slow (AVX2), the classes
 * past the last whole block are stored as whole vectors that overlap the next rows,
 * which are then stored over (a row's 8 values in one store, not 2 to 7 scalar ones).
 * With `m`, also the row maxima. */
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
            if (nc != 2 || !fl_load_pairs_##S(src + r0 * stride + c0, stride, v)) {  \
                for (int j = 0; j < W; j++)                                         \
                    v[j] = fl_vload_first_##S(src + (r0 + j) * stride + c0, nc);    \
                fl_vtranspose_##S(v);                                               \
            }                                                                       \
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
FL_INLINE void fl_transpose_out_block_##S(const T* srcT, ptrdiff_t R, ptrdiff_t c0,    \
                                          int nc, ptrdiff_t r0, fl_v_##S* v)        \
{                                                                                   \
    for (int c = 0; c < FL_W_##S; c++)                                              \
        v[c] = c < nc ? fl_vload_##S(srcT + (c0 + c) * R + r0) : fl_vzero_##S();   \
    fl_vtranspose_##S(v);                                                           \
}                                                                                   \
FL_INLINE void fl_transpose_out_##S(const T* srcT, ptrdiff_t R, ptrdiff_t C, T* dst)  \
{                                                                                   \
    const int W = FL_W_##S;                                                         \
    ptrdiff_t RW = R - R % W;                                                       \
    ptrdiff_t CW = C - C % W;               /* classes in whole blocks of W */      \
    ptrdiff_t CS = C;                       /* classes from CS on: scalar stores */ \
    if (CW < C && RW > 0 && FL_MASKED_STORES) {                                     \
        for (ptrdiff_t r0 = 0; r0 < RW; r0 += W) {                                  \
            fl_v_##S v[FL_W_##S];                                                   \
            fl_transpose_out_block_##S(srcT, R, CW, (int)(C - CW), r0, v);          \
            for (int j = 0; j < W; j++)                                             \
                fl_vstore_first_##S(dst + (r0 + j) * C + CW, (int)(C - CW), v[j]);  \
        }                                                                           \
    } else if (CW < C && RW > 0) {                                                  \
        /* Without masked stores, the last classes (nc < W of them) go first, a     \
         * whole vector per row: it runs past the row's end into the next rows,     \
         * whose classes are all stored again after it (by their own store here,    \
         * then the blocks below).  The rows from `fit` on, whose store would pass  \
         * the end of the R rows, go through a buffer. */                           \
        int nc = (int)(C - CW);                                                     \
        ptrdiff_t fit = R * C - CW - W < 0 ? 0 : (R * C - CW - W) / C + 1;          \
        for (ptrdiff_t r0 = 0; r0 < RW; r0 += W) {                                  \
            fl_v_##S v[FL_W_##S];                                                   \
            if (nc == 2 && fl_store_pairs_##S(dst + r0 * C + CW, C, srcT + CW * R + r0, R)) \
                continue;                                                           \
            fl_transpose_out_block_##S(srcT, R, CW, nc, r0, v);                     \
            if (r0 + W <= fit) {                                                    \
                for (int j = 0; j < W; j++)                                         \
                    fl_vstore_##S(dst + (r0 + j) * C + CW, v[j]);                   \
            } else {                                                                \
                for (int j = 0; j < W; j++)                                         \
                    if (r0 + j < fit)                                               \
                        fl_vstore_##S(dst + (r0 + j) * C + CW, v[j]);               \
                    else                                                            \
                        fl_vstore_first_##S(dst + (r0 + j) * C + CW, nc, v[j]);     \
            }                                                                       \
        }                                                                           \
    } else {                                                                        \
        CS = CW;                                                                    \
    }                                                                               \
    for (ptrdiff_t c0 = 0; c0 < CW; c0 += W)                                        \
        for (ptrdiff_t r0 = 0; r0 < RW; r0 += W) {                                  \
            fl_v_##S v[FL_W_##S];                                                   \
            fl_transpose_out_block_##S(srcT, R, c0, W, r0, v);                      \
            for (int j = 0; j < W; j++)                                             \
                fl_vstore_##S(dst + (r0 + j) * C + c0, v[j]);                       \
        }                                                                           \
    for (ptrdiff_t c = CS; c < C; c++)      /* no register rows: scalar stores */   \
        for (ptrdiff_t r = 0; r < RW; r++)                                          \
            dst[r * C + c] = srcT[c * R + r];                                       \
    if (RW < R)                                                                     \
        fl_transpose_out_loop_##S(srcT + RW, R, R - RW, C, dst + RW * C);           \
}
FL_DEFINE_REGISTER_TRANSPOSES(f32, float)
FL_DEFINE_REGISTER_TRANSPOSES(f64, double)
#else
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

#endif /* FASTLOSS_TRANSPOSE_H */
