/*
 * fastloss narrow-row steps: loops of the narrow softmax path (softmax.pyx, rows of a few
 * classes as a (C, R) tile, tile[c * R + r]) that the tile loops do worse than registers.
 *
 *   fl_tile_exp_sums_f32(t, m, R, C, T, k)
 *       in place: t[c R + r] = exp(t[c R + r] - m[r]) (vecmath.h's exp_nonpos), and per row
 *       T[r] = the float64 sum, in class order, of the e that are not 1, k[r] = how many are.
 *
 * As a tile loop (classes outer, rows inner) each class's step loads and stores the rows'
 * running sums T and k: two float64 and one float32 vector of memory traffic per vector of
 * e.  Here a block of W rows keeps them in registers over all the classes.  The sums are
 * the same float64 additions in the same order, and the exp is the same function, so the
 * results are bitwise those of the plain loop (tests/c/narrow_check.c, at every level).
 * Without the SIMD layer's vector exp (baseline, MSVC), the plain loop itself runs.
 */
#ifndef FASTLOSS_NARROW_H
#define FASTLOSS_NARROW_H

#include "vecmath.h"

/* the plain definition, and the rows past the last block of W */
FL_INLINE void fl_tile_exp_sums_loop_f32(float* t, const float* m, ptrdiff_t R,
                                         ptrdiff_t r0, ptrdiff_t C, double* T, float* k)
{
    for (ptrdiff_t r = r0; r < R; r++) {
        T[r] = 0.0;
        k[r] = 0.0f;
    }
    for (ptrdiff_t c = 0; c < C; c++)
        for (ptrdiff_t r = r0; r < R; r++) {
            float v = fl_exp_nonpos_f32(t[c * R + r] - m[r]);
            t[c * R + r] = v;
            T[r] += v == 1.0f ? 0.0 : (double)v;
            k[r] += v == 1.0f ? 1.0f : 0.0f;
        }
}

#if defined(FL_VECTOR_EXP)
FL_INLINE void fl_tile_exp_sums_f32(float* t, const float* m, ptrdiff_t R, ptrdiff_t C,
                                    double* T, float* k)
{
    const ptrdiff_t W = FL_W_f32;
    const fl_v_f32 one = fl_vset1_f32(1.0f);
    ptrdiff_t r0 = 0;
    for (; r0 + W <= R; r0 += W) {
        fl_v_f32 vm = fl_vload_f32(m + r0), n1 = fl_vzero_f32();
        fl_v_f64 lo = fl_vzero_f64(), hi = fl_vzero_f64();
        for (ptrdiff_t c = 0; c < C; c++) {
            float* p = t + c * R + r0;
            fl_v_f32 v = fl_vexp_nonpos_f32(fl_vload_f32(p) - vm);
            fl_vi_f32 at1 = (fl_vi_f32)(v == one);      /* all bits set where e == 1 */
            fl_v_f32 below = (fl_v_f32)((fl_vi_f32)v & ~at1);     /* +0 where e == 1 */
            fl_vstore_f32(p, v);
            lo = lo + fl_vlo_f64(below);
            hi = hi + fl_vhi_f64(below);
            n1 = n1 + (fl_v_f32)(at1 & (fl_vi_f32)one);
        }
        fl_vstore_f32(k + r0, n1);
        fl_vstore_f64(T + r0, lo);
        fl_vstore_f64(T + r0 + FL_W_f64, hi);
    }
    fl_tile_exp_sums_loop_f32(t, m, R, r0, C, T, k);
}
#else
FL_INLINE void fl_tile_exp_sums_f32(float* t, const float* m, ptrdiff_t R, ptrdiff_t C,
                                    double* T, float* k)
{
    fl_tile_exp_sums_loop_f32(t, m, R, 0, C, T, k);
}
#endif

#endif /* FASTLOSS_NARROW_H */
