/*
 * fastloss one-pass KL tile: one tile of a KL divergence row from logits in one pass over
 * the tile, where the tile loops of the kernels would make several.
 *
 * A KL divergence row from logits needs, per class, exp(z - m), log t and three float64
 * sums.  As separate tile loops (vecmath.h, lanes.h) that is five passes over the tile,
 * with e, log t and the terms going through memory.  On a SIMD layer with vector exp and
 * log (FL_VECTOR_EXPLOG), the loop below does it all at once, in registers, with the sums
 * in the same lanes (the benchmark suite's KL rows show the difference).  Other levels,
 * MSVC and float64 run the same steps as tile loops; both give the same sums in the same
 * order (lanes.h), so the results agree bit for bit with the tile loops of the same build
 * (tests/test_rows.py).  In the float tile loops (AVX2, SSE2, NEON), log t and the terms
 * L take one loop (fl_kl_log_terms_fast_f32; on AVX2 with vecmath.h's table log): on
 * AVX2, single-thread KL from logits at 20000 x 1000 and 2000 x 32000 took 12% and 10%
 * less time than two loops, as multiples of np.exp's time in the same process, in each
 * of ten pairs of alternating processes
 * (bench/results/2026-12-01-epyc2-compute-drift.txt says why that measure).
 * (A one-pass AVX2 tile with a vector log was tried and was 18-21% slower, probably
 * because 16 ymm registers do not hold the log, the exp and the lanes of three sums.)
 */
#ifndef FASTLOSS_KL_TILE_H
#define FASTLOSS_KL_TILE_H

#include "vecmath.h"
#include "lanes.h"

/* L_c = log t_c - (z_c - m) for c < n, and L_c = 0 where t_c = 0 (0 log 0 = 0). */
#define FL_DEFINE_KL_LOG_TERMS(S, T)                                                \
FL_INLINE void fl_kl_log_terms_##S(const T* z, const T* t, T m, ptrdiff_t n, T* L)  \
{                                                                                   \
    fl_log_n_##S(t, n, L);                                                          \
    for (ptrdiff_t c = 0; c < n; c++) {   /* computed, then selected: vectorizes */ \
        T v = L[c] - (z[c] - m);                                                    \
        L[c] = t[c] != (T)0 ? v : (T)0;                                             \
    }                                                                               \
}
FL_DEFINE_KL_LOG_TERMS(f32, float)
FL_DEFINE_KL_LOG_TERMS(f64, double)

/* The same for float targets.  Without FL_VECTOR_EXPLOG, in one loop as
 * fl_log_n_where_nonzero_f32 does it (positive normal targets, the usual ones, through
 * fl_log_pos_normal_f32; any other nonzero target then through fl_log_f32, one at a
 * time), with no pass of log t through memory. */
#if defined(FL_VECTOR_EXPLOG)
#define fl_kl_log_terms_fast_f32 fl_kl_log_terms_f32
#elif defined(FL_VECTOR_LOG_POS_NORMAL)                   /* AVX2: vecmath.h's table log */
FL_INLINE void fl_kl_log_terms_fast_f32(const float* z, const float* t, float m, ptrdiff_t n,
                                        float* L)
{
    const ptrdiff_t W = FL_W_f32;
    fl_log8_tables_f32 tab = fl_log8_tables_f32_load();
    fl_v_f32 vm = fl_vset1_f32(m);
    fl_vu_f32 hi = (fl_vu_f32)fl_vzero_f32(), lo = hi - 1u;
    ptrdiff_t c = 0;
    for (; c + W <= n; c += W) {
        fl_v_f32 tv = fl_vload_f32(t + c);
        fl_v_f32 v = fl_vlog_pos_normal_f32(tv, tab) - (fl_vload_f32(z + c) - vm);
        fl_vstore_f32(L + c, fl_vmaskz_f32(fl_kne0_f32(tv, fl_kall_f32()), v));
        fl_vnot_pos_normal_add(&hi, &lo, tv);
    }
    if (c < n) {
        int k = (int)(n - c);
        fl_v_f32 tv = fl_vload_first_f32(t + c, k);
        fl_v_f32 v = fl_vlog_pos_normal_f32(tv, tab) - (fl_vload_first_f32(z + c, k) - vm);
        fl_vstore_first_f32(L + c, k, fl_vmaskz_f32(fl_kne0_f32(tv, fl_kall_f32()), v));
        fl_vnot_pos_normal_add(&hi, &lo, tv);
    }
    if (fl_vnot_pos_normal_any(hi, lo))  /* rare: subnormal, negative, inf or NaN targets */
        for (c = 0; c < n; c++)
            if (fl_log_not_pos_normal_f32(t[c]))
                L[c] = fl_log_f32(t[c]) - (z[c] - m);
}
#else
FL_INLINE void fl_kl_log_terms_fast_f32(const float* z, const float* t, float m, ptrdiff_t n,
                                        float* L)
{
    FL_ANY_NOT_POS_NORMAL_START;
    for (ptrdiff_t c = 0; c < n; c++) {
        float v = fl_log_pos_normal_f32(t[c]) - (z[c] - m);
        L[c] = t[c] != 0.0f ? v : 0.0f;
        FL_ANY_NOT_POS_NORMAL_ADD(t[c]);
    }
    if (FL_ANY_NOT_POS_NORMAL)          /* rare: subnormal, negative, inf or NaN targets */
        for (ptrdiff_t c = 0; c < n; c++)
            if (fl_log_not_pos_normal_f32(t[c]))
                L[c] = fl_log_f32(t[c]) - (z[c] - m);
}
#endif

/* One tile of a KL divergence row from logits: n values, the row's maximum m, `top` the
 * tile's index of a class where z = m (or outside 0 .. n), and running sums in lanes:
 *     e_c = exp(z_c - m)                       written to e unless e is NULL (value only)
 *     T += e_c, with e_top - 1 = 0 in place of e_top   (T = S - 1 exactly; float data in
 *          quads, fl_lanes_add_quads_f32)
 *     A += t_c
 *     B += t_c * L_c,  L_c = log t_c - (z_c - m), and L_c = 0 where t_c = 0 (0 log 0 = 0)
 * The product t_c L_c is taken in float64.  scratch: room for 2 n values. */
#define FL_DEFINE_KL_TILE_LOOPS(S, T, LOG_TERMS, T_ADD)                             \
FL_INLINE void fl_kl_tile_loops_##S(const T* z, const T* t, T m, ptrdiff_t n,         \
                                    ptrdiff_t top, T* e, double* Ts, double* As,    \
                                    double* Bs, T* scratch)                         \
{                                                                                   \
    T* L = scratch + n;                                                             \
    int at_top = 0 <= top && top < n;                                               \
    if (e == NULL)                                                                  \
        e = scratch;                                                                \
    fl_exp_shift_n_##S(z, m, n, e);                                                 \
    if (at_top)                                                                     \
        e[top] -= (T)1;                                                             \
    T_ADD(Ts, e, n);                                                                \
    if (at_top)                                                                     \
        e[top] += (T)1;                                                             \
    LOG_TERMS(z, t, m, n, L);                                                       \
    fl_lanes_add_and_prod_##S(As, Bs, t, L, n);                                     \
}
FL_DEFINE_KL_TILE_LOOPS(f32, float, fl_kl_log_terms_fast_f32, fl_lanes_add_quads_f32)
FL_DEFINE_KL_TILE_LOOPS(f64, double, fl_kl_log_terms_f64, fl_lanes_add_f64)

FL_INLINE void fl_kl_tile_f64(const double* z, const double* t, double m, ptrdiff_t n,
                              ptrdiff_t top, double* e, double* Ts, double* As, double* Bs,
                              double* scratch)
{
    fl_kl_tile_loops_f64(z, t, m, n, top, e, Ts, As, Bs, scratch);
}

#if defined(FL_VECTOR_EXPLOG) && FL_LANES % FL_W_f32 == 0      /* AVX-512 */
#define FL_KL_VECTORS (FL_LANES / FL_W_f32)       /* float vectors per FL_LANES values */

/* e, the T term (e less 1 in the lane of `topbit`) and L of W values (k: which are real) */
FL_INLINE void fl_kl_v_f32(fl_v_f32 zv, fl_v_f32 tv, fl_v_f32 vm, fl_k_f32 k, fl_k_f32 topbit,
                           fl_log_tables_f32 tab, fl_v_f32* e, fl_v_f32* eT, fl_v_f32* L)
{
    fl_v_f32 d = zv - vm;
    fl_k_f32 nz = fl_kne0_f32(tv, k);
    *e = fl_vmaskz_f32(k, fl_vexp_tile_f32(d, fl_exp_tile_tab_f32()));
    *eT = fl_vmask_sub1_f32(topbit, *e);
    *L = fl_vmaskz_sub_f32(nz, fl_vlog_f32(tv, tab), d);
}

/* One whole vector at z + o, t + o: e (stored at e + o unless e is NULL), A += t and
 * B += t L in the double vectors A[0..1], B[0..1] (its low and high half); returns the T
 * term (e less 1 in the lane of `top`). */
FL_INLINE fl_v_f32 fl_kl_step_f32(const float* z, const float* t, float* e, ptrdiff_t o,
                                  ptrdiff_t top, fl_v_f32 vm, fl_log_tables_f32 tab,
                                  fl_v_f64* A, fl_v_f64* B)
{
    fl_v_f32 tv = fl_vload_f32(t + o), ev, eT, L;
    fl_v_f64 tlo = fl_vlo_f64(tv), thi = fl_vhi_f64(tv);
    fl_kl_v_f32(fl_vload_f32(z + o), tv, vm, fl_kall_f32(), fl_kbit_f32(top - o), tab, &ev,
                &eT, &L);
    if (e != NULL)
        fl_vstore_f32(e + o, ev);
    A[0] = fl_vadd_f64(A[0], tlo);
    A[1] = fl_vadd_f64(A[1], thi);
    /* exact products: the same as a multiply and an add */
    B[0] = fl_vfma_f64(tlo, fl_vlo_f64(L), B[0]);
    B[1] = fl_vfma_f64(thi, fl_vhi_f64(L), B[1]);
    return eT;
}

/* Float vector j of each FL_LANES values holds lanes j W .. (j + 1) W, which are the
 * double vectors 2 j (its low half) and 2 j + 1 (its high half) of the running sums. */
FL_INLINE void fl_kl_tile_f32(const float* z, const float* t, float m, ptrdiff_t n,
                              ptrdiff_t top, float* e, double* Ts, double* As, double* Bs,
                              float* scratch)
{
    const ptrdiff_t W = FL_W_f32, WD = FL_W_f64;
    fl_log_tables_f32 tab = fl_log_tables_f32_load();
    fl_v_f32 vm = fl_vset1_f32(m), ev, eT, L;
    fl_v_f64 Tv[2 * FL_KL_VECTORS], Av[2 * FL_KL_VECTORS], Bv[2 * FL_KL_VECTORS];
    ptrdiff_t i = 0, rest;
    (void)scratch;                                    /* only the tile loops need it */
    for (int j = 0; j < 2 * FL_KL_VECTORS; j++) {
        Tv[j] = fl_vload_f64(Ts + WD * j);
        Av[j] = fl_vload_f64(As + WD * j);
        Bv[j] = fl_vload_f64(Bs + WD * j);
    }
    /* whole quads (T as fl_lanes_add_quads_f32: each lane's four e's summed in float, in
     * its order, then added once), then whole lanes; A and B add every value in order */
    for (; i + FL_QUAD <= n; i += FL_QUAD)
        for (int j = 0; j < FL_KL_VECTORS; j++) {
            fl_v_f32 q[4];
            for (int u = 0; u < 4; u++)
                q[u] = fl_kl_step_f32(z, t, e, i + FL_LANES * u + W * j, top, vm, tab,
                                      &Av[2 * j], &Bv[2 * j]);
            eT = fl_vadd_f32(fl_vadd_f32(q[0], q[1]), fl_vadd_f32(q[2], q[3]));
            Tv[2 * j] = fl_vadd_f64(Tv[2 * j], fl_vlo_f64(eT));
            Tv[2 * j + 1] = fl_vadd_f64(Tv[2 * j + 1], fl_vhi_f64(eT));
        }
    for (; i + FL_LANES <= n; i += FL_LANES)
        for (int j = 0; j < FL_KL_VECTORS; j++) {
            eT = fl_kl_step_f32(z, t, e, i + W * j, top, vm, tab, &Av[2 * j], &Bv[2 * j]);
            Tv[2 * j] = fl_vadd_f64(Tv[2 * j], fl_vlo_f64(eT));
            Tv[2 * j + 1] = fl_vadd_f64(Tv[2 * j + 1], fl_vhi_f64(eT));
        }
    for (int j = 0; j < 2 * FL_KL_VECTORS; j++) {
        fl_vstore_f64(Ts + WD * j, Tv[j]);
        fl_vstore_f64(As + WD * j, Av[j]);
        fl_vstore_f64(Bs + WD * j, Bv[j]);
    }
    rest = n - i;
    if (rest > 0) {            /* the last n % FL_LANES: summed in order, then to lane 0 */
        float et[FL_LANES], Lt[FL_LANES];
        for (int j = 0; j < FL_KL_VECTORS; j++) {
            ptrdiff_t o = i + W * j;
            int nj = rest - W * j < 0 ? 0 : rest - W * j > W ? (int)W : (int)(rest - W * j);
            fl_k_f32 k = fl_kfirst_f32(nj);
            fl_v_f32 tv = fl_vload_first_f32(t + o, nj);
            fl_kl_v_f32(fl_vload_first_f32(z + o, nj), tv, vm, k,
                        fl_kbit_f32(top < n ? top - o : -1), tab, &ev, &eT, &L);
            if (e != NULL && nj > 0)
                fl_vstore_first_f32(e + o, nj, ev);
            fl_vstore_f32(et + W * j, eT);
            fl_vstore_f32(Lt + W * j, L);
        }
        fl_lanes_tail_f32(Ts, et, 0, rest);
        fl_lanes_tail_f32(As, t + i, 0, rest);
        fl_lanes_add_prod_f32(Bs, t + i, Lt, rest);
    }
}
#else
FL_INLINE void fl_kl_tile_f32(const float* z, const float* t, float m, ptrdiff_t n,
                              ptrdiff_t top, float* e, double* Ts, double* As, double* Bs,
                              float* scratch)
{
    fl_kl_tile_loops_f32(z, t, m, n, top, e, Ts, As, Bs, scratch);
}
#endif

#endif /* FASTLOSS_KL_TILE_H */
