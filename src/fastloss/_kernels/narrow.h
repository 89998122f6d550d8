/*
 * fastloss narrow-row steps: loops of the narrow softmax path (softmax.pyx, rows of a few
 * classes as a (C, R) tile, tile[c * R + r]) that the tile loops do worse than registers.
 *
 *   fl_tile_exp_sums_f32(t, m, R, C, T, k, nt)
 *       in place: t[c R + r] = exp(t[c R + r] - m[r]) (vecmath.h's tile exp), and per row
 *       T[r] = the float64 sum, in class order, of the e that are not 1 (each four classes
 *       first summed in float, (e0 + e1) + (e2 + e3), as lanes.h's quads), k[r] = how many
 *       are.
 *   fl_tile_exp_dense_f32(t, w, lam, m, R, C, T, k, A, B, nt)
 *       the same, and for dense targets with weights w (a (C, R) tile) the float64 row sums
 *       A[r] = sum_c w_c and B[r] = sum_c w_c L_c, L_c = lam_c + (m - z_c) in float32, the
 *       product in float64 and 0 where w_c = 0 (0 log 0 = 0).
 *   fl_next_tile_share(nt, k, n)
 *       asks for the k-th of n shares of the next tile's cache lines (nt: NULL, or up to
 *       FL_NEXT_RANGES byte ranges).  Both loops above take an nt and spread it over their
 *       work: the next tile's memory then arrives while this tile computes.
 *
 * As a tile loop (classes outer, rows inner) each class's step loads and stores the rows'
 * running sums T and k: two float64 and one float32 vector of memory traffic per vector of
 * e.  Here a block of W rows keeps them in registers over all the classes.  The sums are
 * the same additions in the same order, and the exp is the same function, so the
 * results are bitwise those of the plain loop (tests/c/narrow_check.c, at every level;
 * where a sum meets two NaNs, either may come out, as the compiler orders the operands).
 * Without the SIMD layer's vector exp (baseline, MSVC), the plain loop itself runs.
 */
#ifndef FASTLOSS_NARROW_H
#define FASTLOSS_NARROW_H

#include "vecmath.h"

/* The next tile's memory, asked for while this one computes.  The narrow path reads a
 * tile's rows, computes for a while in L1, then writes its gradient rows; the hardware
 * prefetcher stays only a few lines ahead, so without this the reads of the next tile and
 * the read-for-ownership of its gradient lines wait in full (at 2 threads, 1000000 x 10
 * took about compute + memory).  All the lines at once (tried) stalls on the miss buffers;
 * a share per step of the exp loop overlaps.  Write ranges are asked for as reads too
 * (prefetcht0: the line comes exclusive when no other core has it, and the store then
 * needs no read-for-ownership). */
enum { FL_NEXT_RANGES = 4 };
typedef struct {
    const void* p[FL_NEXT_RANGES];      /* a range's first byte, or NULL: no range */
    ptrdiff_t bytes[FL_NEXT_RANGES];
} fl_next_tile;

FL_INLINE void fl_next_tile_share(const fl_next_tile* nt, ptrdiff_t k, ptrdiff_t n)
{
    if (nt == NULL)
        return;
    for (int i = 0; i < FL_NEXT_RANGES; i++) {
        if (nt->p[i] == NULL || nt->bytes[i] <= 0)
            continue;
        uintptr_t first = (uintptr_t)nt->p[i] & ~(uintptr_t)63;
        uintptr_t last = ((uintptr_t)nt->p[i] + (uintptr_t)nt->bytes[i] - 1) & ~(uintptr_t)63;
        ptrdiff_t lines = (ptrdiff_t)((last - first) / 64) + 1;
        /* lines [lines k / n, lines (k + 1) / n): only lines that hold bytes of the range */
        fl_prefetch((const char*)first + 64 * (lines * k / n),
                    64 * (lines * (k + 1) / n - lines * k / n));
    }
}

/* the plain definition, and the rows past the last block of W */
FL_INLINE void fl_tile_exp_sums_loop_f32(float* t, const float* m, ptrdiff_t R,
                                         ptrdiff_t r0, ptrdiff_t C, double* T, float* k,
                                         const fl_next_tile* nt)
{
    for (ptrdiff_t r = r0; r < R; r++) {
        T[r] = 0.0;
        k[r] = 0.0f;
    }
    ptrdiff_t c = 0;
    for (; c + 4 <= C; c += 4) {        /* four classes: their terms summed in float first */
        for (int u = 0; u < 4; u++)
            fl_next_tile_share(nt, c + u, C);
        for (ptrdiff_t r = r0; r < R; r++) {
            float b[4];
            for (int u = 0; u < 4; u++) {
                float v = fl_exp_tile_f32(t[(c + u) * R + r] - m[r]);
                t[(c + u) * R + r] = v;
                b[u] = v == 1.0f ? 0.0f : v;
                k[r] += v == 1.0f ? 1.0f : 0.0f;
            }
            T[r] += (double)((b[0] + b[1]) + (b[2] + b[3]));
        }
    }
    for (; c < C; c++) {
        fl_next_tile_share(nt, c, C);
        for (ptrdiff_t r = r0; r < R; r++) {
            float v = fl_exp_tile_f32(t[c * R + r] - m[r]);
            t[c * R + r] = v;
            T[r] += v == 1.0f ? 0.0 : (double)v;
            k[r] += v == 1.0f ? 1.0f : 0.0f;
        }
    }
}

FL_INLINE void fl_tile_exp_dense_loop_f32(float* t, const float* w, const float* lam,
                                          const float* m, ptrdiff_t R, ptrdiff_t r0,
                                          ptrdiff_t C, double* T, float* k, double* A,
                                          double* B, const fl_next_tile* nt)
{
    for (ptrdiff_t r = r0; r < R; r++) {
        A[r] = 0.0;
        B[r] = 0.0;
    }
    for (ptrdiff_t c = 0; c < C; c++)
        for (ptrdiff_t r = r0; r < R; r++) {
            ptrdiff_t i = c * R + r;
            float L = lam[i] + (m[r] - t[i]);
            /* the product kept whole (no fma with the sum), 0 where w = 0, as a bit mask
             * like the vector code's */
            uint64_t keep = 0ULL - (uint64_t)(w[i] != 0.0f);
            double term = fl_from_bits_f64(fl_bits_f64((double)w[i] * (double)L) & keep);
            A[r] += (double)w[i];
            B[r] += term;
        }
    fl_tile_exp_sums_loop_f32(t, m, R, r0, C, T, k, nt);
}

#if defined(FL_VECTOR_EXP)
/* one class of a block of W rows: e = exp(z - m) stored at p, k (integer lanes, turned
 * to float once a block) counts 1 where e == 1 by subtracting the compare's all-ones
 * lanes (an and and a float add took 6-10% more time in the tile's loop at AVX2 with
 * labels, 2-6% with dense targets, bench/tile_sums_ab.c); returns T's term: e where
 * e != 1, +0 where e == 1 */
FL_INLINE fl_v_f32 fl_exp_below_f32(float* p, fl_v_f32 z, fl_v_f32 vm, fl_vi_f32* k)
{
    const fl_v_f32 one = fl_vset1_f32(1.0f);
    fl_v_f32 v = fl_vexp_tile_f32(z - vm, fl_exp_tile_tab_f32());
    fl_vi_f32 at1 = (fl_vi_f32)(v == one);                  /* all bits set where e == 1 */
    fl_vstore_f32(p, v);
    *k = *k - at1;                                          /* -1 where e == 1: a count */
    return (fl_v_f32)((fl_vi_f32)v & ~at1);
}

/* T (lo, hi: its lower and upper W/2 rows) += a float vector of terms, as doubles */
FL_INLINE void fl_exp_sums_add_f32(fl_v_f32 terms, fl_v_f64* lo, fl_v_f64* hi)
{
    *lo = *lo + fl_vlo_f64(terms);
    *hi = *hi + fl_vhi_f64(terms);
}

/* dense targets: a block's running sums A (alo, ahi) and B (blo, bhi) */
typedef struct { fl_v_f64 alo, ahi, blo, bhi; } fl_dense_sums_f32;

/* one class of a block of W rows (its values at t + i, w + i, lam + i): e as
 * fl_exp_below_f32, A += w and B += w L; returns T's term */
FL_INLINE fl_v_f32 fl_dense_class_f32(float* t, const float* w, const float* lam,
                                      ptrdiff_t i, fl_v_f32 vm, fl_vi_f32* k,
                                      fl_dense_sums_f32* d)
{
    fl_v_f32 z = fl_vload_f32(t + i), wv = fl_vload_f32(w + i);
    /* L, and +0 where w = 0: then w L is the loop's term, the product of two floats is
     * exact in float64, and the fma rounds as its add does (B is never -0, so adding
     * -0 = w 0 for w = -0 changes nothing) */
    fl_v_f32 L = fl_vmaskz_f32(fl_kne0_f32(wv, fl_kall_f32()),
                               fl_vload_f32(lam + i) + (vm - z));
    fl_v_f64 wlo = fl_vlo_f64(wv), whi = fl_vhi_f64(wv);
    d->alo = d->alo + wlo;
    d->ahi = d->ahi + whi;
    d->blo = fl_vfma_f64(wlo, fl_vlo_f64(L), d->blo);
    d->bhi = fl_vfma_f64(whi, fl_vhi_f64(L), d->bhi);
    return fl_exp_below_f32(t + i, z, vm, k);
}

FL_INLINE void fl_tile_exp_sums_f32(float* t, const float* m, ptrdiff_t R, ptrdiff_t C,
                                    double* T, float* k, const fl_next_tile* nt)
{
    const ptrdiff_t W = FL_W_f32;
    ptrdiff_t r0 = 0;
    for (; r0 + W <= R; r0 += W) {
        fl_next_tile_share(nt, r0 / W, R / W);
        fl_v_f32 vm = fl_vload_f32(m + r0);
        fl_vi_f32 n1 = (fl_vi_f32)fl_vzero_f32();
        fl_v_f64 lo = fl_vzero_f64(), hi = fl_vzero_f64();
        ptrdiff_t c = 0;
        for (; c + 4 <= C; c += 4) {    /* four classes: (b0 + b1) + (b2 + b3), then to T */
            float* p = t + c * R + r0;
            fl_v_f32 b0 = fl_exp_below_f32(p, fl_vload_f32(p), vm, &n1);
            fl_v_f32 b1 = fl_exp_below_f32(p + R, fl_vload_f32(p + R), vm, &n1);
            fl_v_f32 b2 = fl_exp_below_f32(p + 2 * R, fl_vload_f32(p + 2 * R), vm, &n1);
            fl_v_f32 b3 = fl_exp_below_f32(p + 3 * R, fl_vload_f32(p + 3 * R), vm, &n1);
            fl_exp_sums_add_f32((b0 + b1) + (b2 + b3), &lo, &hi);
        }
        for (; c < C; c++) {
            float* p = t + c * R + r0;
            fl_exp_sums_add_f32(fl_exp_below_f32(p, fl_vload_f32(p), vm, &n1), &lo, &hi);
        }
        fl_vstore_f32(k + r0, fl_vfloat_f32(n1));
        fl_vstore_f64(T + r0, lo);
        fl_vstore_f64(T + r0 + FL_W_f64, hi);
    }
    fl_tile_exp_sums_loop_f32(t, m, R, r0, C, T, k, r0 == 0 ? nt : NULL);
}
FL_INLINE void fl_tile_exp_dense_f32(float* t, const float* w, const float* lam,
                                     const float* m, ptrdiff_t R, ptrdiff_t C, double* T,
                                     float* k, double* A, double* B, const fl_next_tile* nt)
{
    const ptrdiff_t W = FL_W_f32, H = FL_W_f64;
    const fl_v_f64 zero = fl_vzero_f64();
    ptrdiff_t r0 = 0;
    for (; r0 + W <= R; r0 += W) {
        fl_next_tile_share(nt, r0 / W, R / W);
        fl_v_f32 vm = fl_vload_f32(m + r0);
        fl_vi_f32 n1 = (fl_vi_f32)fl_vzero_f32();
        fl_v_f64 lo = zero, hi = zero;
        fl_dense_sums_f32 d = {zero, zero, zero, zero};
        ptrdiff_t c = 0;
        for (; c + 4 <= C; c += 4) {    /* four classes: (b0 + b1) + (b2 + b3), then to T */
            /* b0 + b1 as soon as both are there: fewer vectors held across the steps */
            fl_v_f32 b0 = fl_dense_class_f32(t, w, lam, c * R + r0, vm, &n1, &d);
            fl_v_f32 b01 = b0 + fl_dense_class_f32(t, w, lam, (c + 1) * R + r0, vm, &n1, &d);
            fl_v_f32 b2 = fl_dense_class_f32(t, w, lam, (c + 2) * R + r0, vm, &n1, &d);
            fl_v_f32 b3 = fl_dense_class_f32(t, w, lam, (c + 3) * R + r0, vm, &n1, &d);
            fl_exp_sums_add_f32(b01 + (b2 + b3), &lo, &hi);
        }
        for (; c < C; c++)
            fl_exp_sums_add_f32(fl_dense_class_f32(t, w, lam, c * R + r0, vm, &n1, &d),
                                &lo, &hi);
        fl_vstore_f32(k + r0, fl_vfloat_f32(n1));
        fl_vstore_f64(T + r0, lo);
        fl_vstore_f64(T + r0 + H, hi);
        fl_vstore_f64(A + r0, d.alo);
        fl_vstore_f64(A + r0 + H, d.ahi);
        fl_vstore_f64(B + r0, d.blo);
        fl_vstore_f64(B + r0 + H, d.bhi);
    }
    fl_tile_exp_dense_loop_f32(t, w, lam, m, R, r0, C, T, k, A, B, r0 == 0 ? nt : NULL);
}
#else
FL_INLINE void fl_tile_exp_sums_f32(float* t, const float* m, ptrdiff_t R, ptrdiff_t C,
                                    double* T, float* k, const fl_next_tile* nt)
{
    fl_tile_exp_sums_loop_f32(t, m, R, 0, C, T, k, nt);
}

FL_INLINE void fl_tile_exp_dense_f32(float* t, const float* w, const float* lam,
                                     const float* m, ptrdiff_t R, ptrdiff_t C, double* T,
                                     float* k, double* A, double* B, const fl_next_tile* nt)
{
    fl_tile_exp_dense_loop_f32(t, w, lam, m, R, 0, C, T, k, A, B, nt);
}
#endif

#endif /* FASTLOSS_NARROW_H */
