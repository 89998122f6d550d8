/*
 * fastloss fused tiles: one pass over a tile where the tile loops of the kernels would
 * make several.
 *
 * A KL divergence row from logits needs, per class, exp(z - m), log t and three float64
 * sums.  As separate tile loops (vecmath.h, reduce.h) that is five passes over the tile,
 * with e, log t and the terms going through memory: 0.99 ns per element on Zen 4 (one
 * thread, 1000 classes).  With AVX-512 (GCC and Clang) the loop below does it all at once,
 * in registers, with the sums in the same lanes: 0.93 ns.  Other levels, MSVC and float64
 * run the same steps as tile loops; both give the same sums in the same order (reduce.h),
 * so the results agree bit for bit with the tile loops of the same build (tested).
 */
#ifndef FASTLOSS_FUSED_H
#define FASTLOSS_FUSED_H

#include "vecmath.h"
#include "reduce.h"

/* One tile of a KL divergence row from logits: n values, the row's maximum m, `top` the
 * tile's index of a class where z = m (or outside 0 .. n), and running sums in lanes:
 *     e_c = exp(z_c - m)                       written to e unless e is NULL (value only)
 *     T += e_c, with e_top - 1 = 0 in place of e_top   (T = S - 1 exactly)
 *     A += t_c
 *     B += t_c * L_c,  L_c = log t_c - (z_c - m), and L_c = 0 where t_c = 0 (0 log 0 = 0)
 * The product t_c L_c is taken in float64.  scratch: room for 2 n values. */
#define FL_DEFINE_KL_TILE_LOOPS(S, T)                                               \
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
    fl_lanes_add_##S(Ts, e, n);                                                     \
    if (at_top)                                                                     \
        e[top] += (T)1;                                                             \
    fl_log_n_##S(t, n, L);                                                          \
    for (ptrdiff_t c = 0; c < n; c++) {   /* computed, then selected: vectorizes */ \
        T v = L[c] - (z[c] - m);                                                    \
        L[c] = t[c] != (T)0 ? v : (T)0;                                             \
    }                                                                               \
    fl_lanes_add_##S(As, t, n);                                                     \
    fl_lanes_add_prod_##S(Bs, t, L, n);                                             \
}
FL_DEFINE_KL_TILE_LOOPS(f32, float)
FL_DEFINE_KL_TILE_LOOPS(f64, double)

FL_INLINE void fl_kl_tile_f64(const double* z, const double* t, double m, ptrdiff_t n,
                              ptrdiff_t top, double* e, double* Ts, double* As, double* Bs,
                              double* scratch)
{
    fl_kl_tile_loops_f64(z, t, m, n, top, e, Ts, As, Bs, scratch);
}

#if defined(__AVX512F__) && (defined(__GNUC__) || defined(__clang__)) && FL_LANES == 16
/* lanes 0-7 and 8-15 of a float vector, as doubles */
FL_INLINE __m512d fl_lo8_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
FL_INLINE __m512d fl_hi8_pd(__m512 v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/* e, the T term (e less 1 at `topbit`) and L of 16 values (k: which of them are real) */
FL_INLINE void fl_kl_v16f(__m512 zv, __m512 tv, __m512 vm, __mmask16 k, __mmask16 topbit,
                          fl_log_tables_v16f tab, __m512* e, __m512* eT, __m512* L)
{
    __m512 d = _mm512_sub_ps(zv, vm);
    __mmask16 nz = _mm512_cmp_ps_mask(tv, _mm512_setzero_ps(), _CMP_NEQ_UQ) & k;
    *e = _mm512_maskz_mov_ps(k, fl_exp_nonpos_v16f(d));
    *eT = _mm512_mask_sub_ps(*e, topbit, *e, _mm512_set1_ps(1.0f));
    *L = _mm512_maskz_sub_ps(nz, fl_log_v16f(tv, tab), d);
}

FL_INLINE void fl_kl_tile_f32(const float* z, const float* t, float m, ptrdiff_t n,
                              ptrdiff_t top, float* e, double* Ts, double* As, double* Bs,
                              float* scratch)
{
    fl_log_tables_v16f tab = fl_log_tables_v16f_load();
    (void)scratch;                                    /* only the tile loops need it */
    __m512 vm = _mm512_set1_ps(m), ev, eT, L;
    __m512d T0 = _mm512_loadu_pd(Ts), T1 = _mm512_loadu_pd(Ts + 8);
    __m512d A0 = _mm512_loadu_pd(As), A1 = _mm512_loadu_pd(As + 8);
    __m512d B0 = _mm512_loadu_pd(Bs), B1 = _mm512_loadu_pd(Bs + 8);
    ptrdiff_t i = 0, rest;
    for (; i + 16 <= n; i += 16) {
        __m512 tv = _mm512_loadu_ps(t + i);
        __m512d tlo = fl_lo8_pd(tv), thi = fl_hi8_pd(tv);
        __mmask16 topbit = (__mmask16)(i <= top && top < i + 16 ? 1u << (top - i) : 0u);
        fl_kl_v16f(_mm512_loadu_ps(z + i), tv, vm, 0xffff, topbit, tab, &ev, &eT, &L);
        if (e != NULL)
            _mm512_storeu_ps(e + i, ev);
        T0 = _mm512_add_pd(T0, fl_lo8_pd(eT));
        T1 = _mm512_add_pd(T1, fl_hi8_pd(eT));
        A0 = _mm512_add_pd(A0, tlo);
        A1 = _mm512_add_pd(A1, thi);
        B0 = _mm512_fmadd_pd(tlo, fl_lo8_pd(L), B0);      /* exact products: as mul + add */
        B1 = _mm512_fmadd_pd(thi, fl_hi8_pd(L), B1);
    }
    _mm512_storeu_pd(Ts, T0);
    _mm512_storeu_pd(Ts + 8, T1);
    _mm512_storeu_pd(As, A0);
    _mm512_storeu_pd(As + 8, A1);
    _mm512_storeu_pd(Bs, B0);
    _mm512_storeu_pd(Bs + 8, B1);
    rest = n - i;
    if (rest > 0) {            /* the last n % 16: summed in order, then to lane 0 */
        __mmask16 k = (__mmask16)((1u << rest) - 1u);
        __mmask16 topbit = (__mmask16)(i <= top && top < n ? 1u << (top - i) : 0u);
        __m512 tv = _mm512_maskz_loadu_ps(k, t + i);
        float et[16], Lt[16];
        fl_kl_v16f(_mm512_maskz_loadu_ps(k, z + i), tv, vm, k, topbit, tab, &ev, &eT, &L);
        if (e != NULL)
            _mm512_mask_storeu_ps(e + i, k, ev);
        _mm512_storeu_ps(et, eT);
        _mm512_storeu_ps(Lt, L);
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

#endif /* FASTLOSS_FUSED_H */
