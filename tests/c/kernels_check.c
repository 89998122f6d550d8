/* The kernels' C helpers against independent references, for any target: built and run by
 * tools/aarch64_check.sh with the aarch64 cross compiler under qemu-user (the NEON code of
 * the arm64 wheels), and natively at each x86-64 level by tests/test_kernels_c.py.
 *
 *   vecmath.h  exp, exp_nonpos, log, log1p (float, double) in vectorizable loops, and the
 *              exp(z - m) / log tile loops, against long double libm (double libm for
 *              float) to the documented bound of 1.5 ulp (NaN, infinities, signed zeros,
 *              subnormals, the overflow and underflow edges);
 *   lanes.h, maxat.h  the lane sums bit for bit against the documented order (lane j % 16, the
 *              tail in order to lane 0, the fixed tree), the omp-simd sums and the maxima
 *              (fl_max_at) against plain loops;
 *   kl_tile.h  the KL divergence tile against a long double evaluation of its sums, and
 *              (with vecmath.h's log of nonzero floats) its one-loop float log terms.
 * (The transposes have their own program, tests/c/transpose_check.c.)
 *
 * tools/aarch64_check.sh also checks that every LOOP line marked "must vectorize" is
 * reported vectorized by the compiler.  Prints one line per group and "failures: N"; exit status 0 when N
 * is 0.  Build: cc -O3 -fno-math-errno -fno-trapping-math -fopenmp-simd (the build's flags,
 * src/fastloss/_build.py) -I src/fastloss/_kernels kernels_check.c -lm.
 */

/* ---- the kernel headers under test: the one place that names them ---------------- */
#include "vecmath.h"
#include "lanes.h"
#include "maxat.h"
#include "kl_tile.h"
#include "half.h"
/* ----------------------------------------------------------------------------------- */

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ULP 1.5L            /* vecmath.h's documented bound */
#define N_RANDOM 40000          /* random arguments per function and type */

static int failures;

static void check(int ok, const char* what)
{
    if (!ok) {
        failures++;
        if (failures <= 30)
            printf("  FAILED: %s\n", what);
    }
}

/* ---- random numbers (xorshift64*, fixed seed: the same arguments on every target) ---- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd64(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}
static double rnd_unit(void) { return (double)(rnd64() >> 11) * 0x1p-53; }
static double rnd_in(double lo, double hi) { return lo + (hi - lo) * rnd_unit(); }
static float bits_f32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }
static double bits_f64(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }
/* a positive finite value with uniformly random bits: every exponent, subnormals too */
static float pos_bits_f32(void)
{
    for (;;) {
        float x = bits_f32((uint32_t)rnd64() & 0x7fffffffu);
        if (isfinite(x) && x > 0)
            return x;
    }
}
static double pos_bits_f64(void)
{
    for (;;) {
        double x = bits_f64(rnd64() & 0x7fffffffffffffffULL);
        if (isfinite(x) && x > 0)
            return x;
    }
}

/* ---- error in units of the last place of the result type (mant bits, min exponent) ---- */
static long double ulp_error(long double got, long double exact, int mant, int emin)
{
    int e, emax = 1 - emin;
    /* what rounds to infinity in the result type */
    if (fabsl(exact) >= ldexpl(1.0L, emax + 1) - ldexpl(1.0L, emax - mant))
        exact = exact > 0 ? INFINITY : -INFINITY;
    if (isnan(exact))
        return isnan(got) ? 0.0L : INFINITY;
    if (isinf(exact) || isinf(got))
        return got == exact ? 0.0L : INFINITY;
    if (isnan(got))
        return INFINITY;
    if (exact == 0) {
        if (got == 0)
            return signbit(got) == signbit(exact) ? 0.0L : INFINITY;
        e = emin + 1;
    } else {
        frexpl(exact, &e);                  /* exact = f 2^e, f in [1/2, 1) */
    }
    if (e - 1 < emin)
        e = emin + 1;                       /* subnormal: subnormal spacing */
    return fabsl(got - exact) / ldexpl(1.0L, e - 1 - (mant - 1));
}

/* ---- the vectorizable loops (what the kernels' tile loops compile to) ---- */
#define LOOP(FN, T)                                                                  \
__attribute__((noinline)) static void loop_##FN(const T* x, T* y, ptrdiff_t n)       \
{                                                                                    \
    for (ptrdiff_t i = 0; i < n; i++)                                                \
        y[i] = FN(x[i]);                                                             \
}
LOOP(fl_exp_f32, float)                 /* must vectorize */
LOOP(fl_exp_f64, double)                /* must vectorize */
LOOP(fl_exp_nonpos_f32, float)          /* must vectorize */
LOOP(fl_exp_nonpos_f64, double)         /* must vectorize */
LOOP(fl_log_f32, float)                 /* must vectorize */
LOOP(fl_log_f64, double)                /* must vectorize */
LOOP(fl_log1p_f32, float)               /* must vectorize */
LOOP(fl_log1p_f64, double)              /* must vectorize */

/* references: float through double libm, double through long double libm */
static long double ref_exp_f32(long double x) { return exp((double)x); }
static long double ref_log_f32(long double x) { return log((double)x); }
static long double ref_log1p_f32(long double x) { return log1p((double)x); }
static long double ref_exp_f64(long double x) { return expl(x); }
static long double ref_log_f64(long double x) { return logl(x); }
static long double ref_log1p_f64(long double x) { return log1pl(x); }

#define MAX_ARGS (N_RANDOM + 64)

/* Fill x with the specials and N_RANDOM random arguments of a kind, run the loop, and
 * compare with the reference.  Also the tile loop where there is one. */
#define CHECK_FN(NAME, FN, T, REF, MANT, EMIN, FILL)                                 \
static void check_##NAME(void)                                                       \
{                                                                                    \
    static T x[MAX_ARGS], y[MAX_ARGS];                                               \
    ptrdiff_t n = 0;                                                                 \
    long double worst = 0;                                                           \
    T worst_x = 0;                                                                   \
    char msg[160];                                                                   \
    FILL                                                                             \
    loop_##FN(x, y, n);                                                              \
    for (ptrdiff_t i = 0; i < n; i++) {                                              \
        long double err = ulp_error(y[i], REF((long double)x[i]), MANT, EMIN);       \
        if (!(err <= worst)) {                                                       \
            worst = err;                                                             \
            worst_x = x[i];                                                          \
        }                                                                            \
    }                                                                                \
    printf("  %-20s %6ld arguments, worst %.3Lf ulp (at %.9g)\n", #NAME, (long)n,    \
           worst, (double)worst_x);                                                  \
    snprintf(msg, sizeof msg, "%s: %.3Lf ulp at %.17g (bound %.1Lf)", #NAME, worst,  \
             (double)worst_x, MAX_ULP);                                              \
    check(worst <= MAX_ULP, msg);                                                    \
}

#define SPECIALS(T, MAX, TINY, SUB)                                                  \
    {                                                                                \
        T sp[] = {NAN, INFINITY, -INFINITY, 0, -0.0, 1, -1, 0.5, 2, MAX, -MAX, TINY, \
                  -TINY, SUB, -SUB, (T)1e-30, (T)-1e-30};                            \
        for (size_t k = 0; k < sizeof sp / sizeof sp[0]; k++)                        \
            x[n++] = sp[k];                                                          \
    }

#define FILL_EXP(T, LO, HI, MAX, TINY, SUB)                                          \
    SPECIALS(T, MAX, TINY, SUB)                                                      \
    for (int k = 0; k < N_RANDOM / 2; k++)                                           \
        x[n++] = (T)rnd_in(LO, HI);                                                  \
    for (int k = 0; k < N_RANDOM / 2 - 200; k++)                                     \
        x[n++] = (T)rnd_in(-2, 2);                                                   \
    for (int k = 0; k < 100; k++) {              /* the edges: overflow, underflow */ \
        x[n++] = (T)(HI + (k - 50) * 0.01);                                          \
        x[n++] = (T)(LO + (k - 50) * 0.05);                                          \
    }

#define FILL_NONPOS(T, LO, MAX, TINY, SUB)                                           \
    {                                                                                \
        T sp[] = {NAN, -INFINITY, 0, -0.0, -1, -MAX, -TINY, -SUB};                   \
        for (size_t k = 0; k < sizeof sp / sizeof sp[0]; k++)                        \
            x[n++] = sp[k];                                                          \
    }                                                                                \
    for (int k = 0; k < N_RANDOM / 2; k++)                                           \
        x[n++] = (T)rnd_in(LO, 0);                                                   \
    for (int k = 0; k < N_RANDOM / 2; k++)                                           \
        x[n++] = (T)-rnd_in(0, 3);

#define FILL_LOG(T, POS, MAX, TINY, SUB)                                             \
    SPECIALS(T, MAX, TINY, SUB)                                                      \
    for (int k = 0; k < N_RANDOM / 2; k++)                                           \
        x[n++] = POS();                                                              \
    for (int k = 0; k < N_RANDOM / 2; k++)                                           \
        x[n++] = (T)rnd_in(0.25, 4);

#define FILL_LOG1P(T, POS, MAX, TINY, SUB)                                           \
    SPECIALS(T, MAX, TINY, SUB)                                                      \
    x[n++] = (T)-2;                                                                  \
    for (int k = 0; k < N_RANDOM / 3; k++)                                           \
        x[n++] = POS();                                                              \
    for (int k = 0; k < N_RANDOM / 3; k++)                                           \
        x[n++] = (T)-rnd_unit();                                                     \
    for (int k = 0; k < N_RANDOM / 3; k++)                                           \
        x[n++] = (T)rnd_in(-1e-3, 1e-3);

CHECK_FN(exp_f32, fl_exp_f32, float, ref_exp_f32, 24, -126,
         FILL_EXP(float, -104.0, 89.0, FLT_MAX, FLT_MIN, 0x1p-149f))
CHECK_FN(exp_f64, fl_exp_f64, double, ref_exp_f64, 53, -1022,
         FILL_EXP(double, -746.0, 710.0, DBL_MAX, DBL_MIN, 0x1p-1074))
CHECK_FN(exp_nonpos_f32, fl_exp_nonpos_f32, float, ref_exp_f32, 24, -126,
         FILL_NONPOS(float, -104.0, FLT_MAX, FLT_MIN, 0x1p-149f))
CHECK_FN(exp_nonpos_f64, fl_exp_nonpos_f64, double, ref_exp_f64, 53, -1022,
         FILL_NONPOS(double, -746.0, DBL_MAX, DBL_MIN, 0x1p-1074))
CHECK_FN(log_f32, fl_log_f32, float, ref_log_f32, 24, -126,
         FILL_LOG(float, pos_bits_f32, FLT_MAX, FLT_MIN, 0x1p-149f))
CHECK_FN(log_f64, fl_log_f64, double, ref_log_f64, 53, -1022,
         FILL_LOG(double, pos_bits_f64, DBL_MAX, DBL_MIN, 0x1p-1074))
CHECK_FN(log1p_f32, fl_log1p_f32, float, ref_log1p_f32, 24, -126,
         FILL_LOG1P(float, pos_bits_f32, FLT_MAX, FLT_MIN, 0x1p-149f))
CHECK_FN(log1p_f64, fl_log1p_f64, double, ref_log1p_f64, 53, -1022,
         FILL_LOG1P(double, pos_bits_f64, DBL_MAX, DBL_MIN, 0x1p-1074))

/* The tile loops: exp(z - m) and log over n values (every n up to 70, as tiles end),
 * against the scalar function's reference; nothing written past n. */
#define CHECK_TILES(S, T, REFEXP, REFLOG, MANT, EMIN)                                \
static void check_tiles_##S(void)                                                    \
{                                                                                    \
    T z[80], out[80 + 8];                                                            \
    long double worst = 0;                                                           \
    int past = 0;                                                                    \
    for (int n = 0; n <= 70; n++) {                                                  \
        T m = (T)rnd_in(-5, 5);                                                      \
        for (int i = 0; i < n; i++)                                                  \
            z[i] = m - (T)rnd_in(0, 30);                                             \
        for (int i = 0; i < n + 8; i++)                                              \
            out[i] = (T)-7;                                                          \
        fl_exp_shift_n_##S(z, m, n, out);                                            \
        for (int i = 0; i < n; i++) {                                                \
            long double e = ulp_error(out[i], REFEXP((long double)(T)(z[i] - m)),    \
                                      MANT, EMIN);                                   \
            worst = e > worst ? e : worst;                                           \
        }                                                                            \
        for (int i = n; i < n + 8; i++)                                              \
            past += out[i] != (T)-7;                                                 \
        for (int i = 0; i < n; i++)                                                  \
            z[i] = (T)rnd_in(1e-6, 50);                                              \
        fl_log_n_##S(z, n, out);                                                     \
        for (int i = 0; i < n; i++) {                                                \
            long double e = ulp_error(out[i], REFLOG((long double)z[i]), MANT, EMIN);  \
            worst = e > worst ? e : worst;                                           \
        }                                                                            \
        for (int i = n; i < n + 8; i++)                                              \
            past += out[i] != (T)-7;                                                 \
    }                                                                                \
    printf("  tile loops %-9s worst %.3Lf ulp, %d writes past the end\n", #S, worst, \
           past);                                                                    \
    check(worst <= MAX_ULP, "tile loops (exp_shift_n, log_n) " #S ": ulp bound");    \
    check(past == 0, "tile loops (exp_shift_n, log_n) " #S ": wrote past the end");  \
}
CHECK_TILES(f32, float, ref_exp_f32, ref_log_f32, 24, -126)
CHECK_TILES(f64, double, ref_exp_f64, ref_log_f64, 53, -1022)

/* ---- lanes.h, maxat.h ---- */

/* The documented lane order, written out: element j of a call to lane j % FL_LANES, the
 * last n % FL_LANES summed in order and added to lane 0; the total the fixed tree. */
static void ref_lanes_add(double* acc, const double* v, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    double tail = 0;
    for (; i + FL_LANES <= n; i += FL_LANES)
        for (int j = 0; j < FL_LANES; j++)
            acc[j] += v[i + j];
    for (; i < n; i++)
        tail += v[i];
    acc[0] += tail;
}

static double ref_lanes_total(const double* acc)
{
    double l[FL_LANES];
    memcpy(l, acc, sizeof l);
    for (int w = FL_LANES / 2; w >= 1; w /= 2)
        for (int j = 0; j < w; j++)
            l[j] += l[j + w];
    return l[0];
}

static void check_reduce(void)
{
    static float vf[600];
    static double vd[600], vfd[600];
    int bad_lanes = 0, bad_sum = 0, bad_max = 0;
    for (int n = 0; n <= 600; n += (n < 40 ? 1 : 37)) {
        double acc[FL_LANES], ref[FL_LANES], accd[FL_LANES], refd[FL_LANES];
        long double exact_f = 0, exact_d = 0, abs_f = 0, abs_d = 0;
        for (int i = 0; i < n; i++) {
            vf[i] = (float)rnd_in(-1e3, 1e3) * (rnd64() % 7 == 0 ? 1e-6f : 1.0f);
            vfd[i] = vf[i];
            vd[i] = rnd_in(-1e6, 1e6) * (rnd64() % 5 == 0 ? 1e-9 : 1.0);
            exact_f += vf[i];
            abs_f += fabsl(vf[i]);
            exact_d += vd[i];
            abs_d += fabsl(vd[i]);
        }
        /* lane sums over two calls (the first a multiple of FL_LANES, as the kernels do),
         * bit for bit against the documented order */
        ptrdiff_t cut = (n / 2) / FL_LANES * FL_LANES;
        fl_lanes_zero(acc);
        fl_lanes_zero(accd);
        memset(ref, 0, sizeof ref);
        memset(refd, 0, sizeof refd);
        fl_lanes_add_f32(acc, vf, cut);
        fl_lanes_add_f32(acc, vf + cut, n - cut);
        ref_lanes_add(ref, vfd, cut);
        ref_lanes_add(ref, vfd + cut, n - cut);
        fl_lanes_add_f64(accd, vd, cut);
        fl_lanes_add_f64(accd, vd + cut, n - cut);
        ref_lanes_add(refd, vd, cut);
        ref_lanes_add(refd, vd + cut, n - cut);
        bad_lanes += fl_lanes_total(acc) != ref_lanes_total(ref);
        bad_lanes += fl_lanes_total(accd) != ref_lanes_total(refd);
        /* the omp-simd sums: any order, so within n rounding errors of the exact sum */
        bad_sum += fabsl(fl_sum_f32(vf, n) - exact_f) > (n + 1) * DBL_EPSILON * abs_f;
        bad_sum += fabsl(fl_sum_f64(vd, n) - exact_d) > (n + 1) * DBL_EPSILON * abs_d;
        /* maxima: the value of `v > m ? v : m` over the array, and an index holding it */
        for (int nan = 0; nan < 2; nan++) {
            float mf, rf = -INFINITY;
            double md, rd = -INFINITY;
            if (nan && n > 3) {
                vf[n / 3] = NAN;
                vd[n / 3] = NAN;
            }
            for (int i = 0; i < n; i++) {
                rf = vf[i] > rf ? vf[i] : rf;
                rd = vd[i] > rd ? vd[i] : rd;
            }
            ptrdiff_t kf = fl_max_at_f32(vf, n, &mf);
            ptrdiff_t kd = fl_max_at_f64(vd, n, &md);
            if (!nan || n <= 3) {       /* with a NaN the maximum may or may not skip it */
                bad_max += mf != rf || md != rd;
            }
            bad_max += n > 0 && !isnan(mf) && (kf < 0 || kf >= n || vf[kf] != mf);
            bad_max += n > 0 && !isnan(md) && (kd < 0 || kd >= n || vd[kd] != md);
            bad_max += n == 0 && (kf != -1 || kd != -1 || mf != -INFINITY);
        }
    }
    printf("  lanes.h, maxat.h     lane sums %d, omp-simd sums %d, maxima %d mismatches\n",
           bad_lanes, bad_sum, bad_max);
    check(bad_lanes == 0, "lanes.h lane sums differ from the documented order");
    check(bad_sum == 0, "lanes.h fl_sum_* outside the rounding bound");
    check(bad_max == 0, "maxat.h fl_max_at_* wrong maximum or index");
}

/* ---- kl_tile.h: the KL divergence tile ---- */
#define CHECK_KL(S, T, EPS)                                                           \
static void check_kl_##S(void)                                                        \
{                                                                                     \
    T z[300], t[300], e[300 + 8], scratch[600];                                       \
    int bad = 0;                                                                      \
    long double worst = 0;                                                            \
    for (int n = 1; n <= 300; n += (n < 40 ? 1 : 29)) {                               \
        double Ts[FL_LANES], As[FL_LANES], Bs[FL_LANES];                              \
        long double rT = 0, rA = 0, rB = 0, sT = 0, sA = 0, sB = 0;                   \
        ptrdiff_t top = 0;                                                            \
        for (int i = 0; i < n; i++) {                                                 \
            z[i] = (T)rnd_in(-20, 20);                                                \
            t[i] = rnd64() % 6 == 0 ? (T)0 : (T)rnd_unit();                           \
            top = z[i] > z[top] ? i : top;                                            \
        }                                                                             \
        T m = z[top];                                                                 \
        for (int i = 0; i < n + 8; i++)                                               \
            e[i] = (T)-7;                                                             \
        fl_lanes_zero(Ts);                                                            \
        fl_lanes_zero(As);                                                            \
        fl_lanes_zero(Bs);                                                            \
        fl_kl_tile_##S(z, t, m, n, top, e, Ts, As, Bs, scratch);                      \
        for (int i = 0; i < n; i++) {                                                 \
            long double d = (long double)(T)(z[i] - m);                               \
            long double ei = expl(d);                                                 \
            long double err = ulp_error(e[i], ei, EPS == FLT_EPSILON ? 24 : 53,       \
                                        EPS == FLT_EPSILON ? -126 : -1022);           \
            worst = err > worst ? err : worst;                                        \
            if (i != top) {                                                           \
                rT += ei;                                                             \
                sT += ei;                                                             \
            }                                                                         \
            rA += t[i];                                                               \
            sA += t[i];                                                               \
            if (t[i] != 0) {                                                          \
                long double L = logl((long double)t[i]) - d;                          \
                rB += t[i] * L;                                                       \
                sB += t[i] * (fabsl(logl((long double)t[i])) + fabsl(d) + 1);         \
            }                                                                         \
        }                                                                             \
        for (int i = n; i < n + 8; i++)                                               \
            bad += e[i] != (T)-7;                                                     \
        bad += fabsl(fl_lanes_total(Ts) - rT) > 4 * EPS * (sT + 1e-30L);              \
        bad += fabsl(fl_lanes_total(As) - rA) > 2 * DBL_EPSILON * n * (sA + 1e-30L);  \
        bad += fabsl(fl_lanes_total(Bs) - rB) > 4 * EPS * (sB + 1e-30L);              \
        /* value only (e NULL): the same sums */                                      \
        double T2[FL_LANES], A2[FL_LANES], B2[FL_LANES];                              \
        fl_lanes_zero(T2);                                                            \
        fl_lanes_zero(A2);                                                            \
        fl_lanes_zero(B2);                                                            \
        fl_kl_tile_##S(z, t, m, n, top, NULL, T2, A2, B2, scratch);                   \
        bad += fl_lanes_total(T2) != fl_lanes_total(Ts)                               \
               || fl_lanes_total(A2) != fl_lanes_total(As)                            \
               || fl_lanes_total(B2) != fl_lanes_total(Bs);                           \
    }                                                                                 \
    printf("  KL tile %-12s exp(z - m) worst %.3Lf ulp, %d mismatches\n", #S, worst,  \
           bad);                                                                      \
    check(worst <= MAX_ULP, "kl_tile.h KL tile " #S ": exp(z - m) outside the bound");   \
    check(bad == 0, "kl_tile.h KL tile " #S ": sums or writes wrong");                   \
}
CHECK_KL(f32, float, FLT_EPSILON)
CHECK_KL(f64, double, DBL_EPSILON)

/* vecmath.h's log of nonzero floats (fl_log_n_where_nonzero_f32) and kl_tile.h's one-loop
 * KL terms L_c = log t_c - (z_c - m) (fl_kl_log_terms_fast_f32): against double libm to the
 * bound, 0 terms where t_c = 0, the special values, and each value's result independent of
 * the rest of its tile.  Tiles of probabilities, with the edges of the normal range, with
 * zeros, and with one value of each other kind (subnormal, negative, infinite, NaN) at a
 * random place. */
static void check_log_nonzero_f32(void)
{
    static const float other[] = {0x1p-149f, 0x1.fffffcp-127f, -0.5f, -0x1p-126f,
                                  INFINITY, -INFINITY, NAN};
    float z[300], t[300], lg[300], L[300], lg0[300], L0[300];
    long double worst = 0;
    int bad = 0, tiles = 0;
    for (int kind = -2; kind < (int)(sizeof other / sizeof other[0]); kind++)
        for (int n = 1; n <= 300; n += (n < 40 ? 1 : 37)) {
            int at = (int)(rnd64() % (uint64_t)n);
            for (int i = 0; i < n; i++) {
                z[i] = (float)rnd_in(-20, 20);
                t[i] = (float)rnd_unit();
                if (kind == -2 && rnd64() % 3 == 0)         /* the edges of the normals */
                    t[i] = rnd64() % 2 ? 0x1p-126f : 0x1.fffffep+127f;
                if (kind >= -1 && i != at && rnd64() % 5 == 0)
                    t[i] = rnd64() % 2 ? 0.0f : -0.0f;
            }
            float m = (float)rnd_in(-20, 20);
            fl_log_n_where_nonzero_f32(t, n, lg0);          /* the tile without `other` */
            fl_kl_log_terms_fast_f32(z, t, m, n, L0);
            if (kind >= 0)
                t[at] = other[kind];
            fl_log_n_where_nonzero_f32(t, n, lg);
            fl_kl_log_terms_fast_f32(z, t, m, n, L);
            for (int i = 0; i < n; i++) {
                long double d = (long double)(float)(z[i] - m);
                if (t[i] == 0) {
                    bad += L[i] != 0;                        /* 0 log 0 = 0 */
                    continue;
                }
                long double err = ulp_error(lg[i], ref_log_f32(t[i]), 24, -126);
                worst = err > worst ? err : worst;
                if (isnan(t[i]) || t[i] < 0 || isinf(t[i])) {
                    bad += !(isinf(t[i]) && t[i] > 0 ? L[i] == INFINITY : isnan(L[i]));
                } else {
                    long double ref = logl((long double)t[i]) - d;
                    bad += fabsl(L[i] - ref)
                           > 2 * FLT_EPSILON * (fabsl(logl((long double)t[i])) + fabsl(d));
                }
                if (i != at || kind < 0)                     /* the others: unchanged */
                    bad += memcmp(&lg[i], &lg0[i], sizeof(float)) != 0
                           || memcmp(&L[i], &L0[i], sizeof(float)) != 0;
            }
            tiles++;
        }
    printf("  log where nonzero f32: %d tiles, worst %.3Lf ulp; with the KL terms, %d wrong\n",
           tiles, worst, bad);
    check(worst <= MAX_ULP, "vecmath.h fl_log_n_where_nonzero_f32: ulp bound");
    check(bad == 0, "fl_log_n_where_nonzero_f32 / fl_kl_log_terms_fast_f32 wrong");
}

/* half.h: every float16 and bfloat16 bit pattern, contiguous (F16C where the level has it)
 * and strided, against a decoding of the fields */
static float ref_f16(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24)
            : e == 31 ? (m ? NAN : INFINITY)
            : ldexpf((float)(m + 1024), e - 25);
    return (h & 0x8000) ? -v : v;
}

static void check_half(void)
{
    enum { N = 1 << 16 };
    static uint16_t bits[2 * N];
    static float out[N];
    int kind, bad, i;
    for (i = 0; i < N; i++)
        bits[i] = bits[N + i] = 0;
    for (kind = FL_HALF_F16; kind <= FL_HALF_BF16; kind++) {
        for (int strided = 0; strided <= 1; strided++) {
            for (i = 0; i < N; i++)
                bits[strided ? 2 * i : i] = (uint16_t)i;
            if (strided)
                fl_half_tile(bits, 2, N, kind, out);
            else    /* in tiles of odd length, as the kernels' last tile may be */
                for (i = 0; i < N; i += 253)
                    fl_half_tile(bits + i, 1, N - i < 253 ? N - i : 253, kind, out + i);
            bad = 0;
            for (i = 0; i < N; i++) {
                float want = kind == FL_HALF_F16 ? ref_f16((uint16_t)i)
                                                 : bits_f32((uint32_t)i << 16);
                float got = out[i];
                if (isnan(want) ? !isnan(got) : memcmp(&got, &want, 4) != 0)
                    bad++;
            }
            char msg[96];
            snprintf(msg, sizeof msg, "half.h %s %s: all 65536 values exact (%d wrong)",
                     kind == FL_HALF_F16 ? "float16" : "bfloat16",
                     strided ? "strided" : "contiguous", bad);
            printf("  %s\n", msg);
            check(bad == 0, msg);
        }
    }
}

/* half.h's rounding to half precision, at every boundary: for each pair of neighbouring
 * half values lo < hi (both signs; float16 up to its largest finite value, whose upper
 * neighbour is 2^16, the overflow threshold's other side), lo itself, the midpoint (a tie:
 * the even one) and the float32 values on either side of it (lo and hi).  Every midpoint
 * is a float32 value (halves have at most 11 significant bits).  Then infinity, NaN and
 * values past the range.  Contiguous and strided stores, in odd-length pieces. */
static float half_value(int kind, uint32_t h)
{
    return kind == FL_HALF_F16 ? ref_f16((uint16_t)h) : bits_f32(h << 16);
}

static void check_half_store(void)
{
    enum { N = 4 * 0x7f80 + 8 };
    static float src[N];
    static uint16_t want[N], got[2 * N];
    for (int kind = FL_HALF_F16; kind <= FL_HALF_BF16; kind++) {
        uint32_t top = kind == FL_HALF_F16 ? 0x7bffu : 0x7f7fu;      /* largest finite */
        int n = 0;
        for (uint32_t h = 0; h <= top; h++) {
            float lo = half_value(kind, h);
            float hi = h == top ? (kind == FL_HALF_F16 ? 65536.0f : INFINITY)
                                : half_value(kind, h + 1);
            float mid = lo + (hi - lo) / 2;
            uint16_t up = (uint16_t)(h + 1), even = (uint16_t)((h & 1u) ? h + 1 : h);
            if (h == top && kind == FL_HALF_BF16)
                mid = bits_f32(0x7f7f8000u);        /* between the largest bf16 and 2^128 */
            src[n] = lo; want[n++] = (uint16_t)h;
            src[n] = mid; want[n++] = even;
            src[n] = nextafterf(mid, 0.0f); want[n++] = (uint16_t)h;
            src[n] = nextafterf(mid, INFINITY); want[n++] = up;
        }
        src[n] = INFINITY; want[n++] = kind == FL_HALF_F16 ? 0x7c00 : 0x7f80;
        src[n] = 1e30f; want[n++] = kind == FL_HALF_F16 ? 0x7c00 : 0x714a;
        src[n] = FLT_MAX; want[n++] = kind == FL_HALF_F16 ? 0x7c00 : 0x7f80;
        src[n] = 0x1p-149f; want[n++] = 0;
        src[n] = NAN; want[n++] = kind == FL_HALF_F16 ? 0x7e00 : 0x7fc0;
        for (int sign = 0; sign <= 1; sign++) {
            for (int strided = 0; strided <= 1; strided++) {
                int bad = 0, first = -1;
                for (int i = 0; i < n; i++)
                    if (sign)
                        src[i] = -src[i];
                for (int i = 0; i < n; i += 253)
                    fl_half_store(src + i, n - i < 253 ? n - i : 253, kind,
                                  got + (strided ? 2 * i : i), strided ? 2 : 1);
                for (int i = 0; i < n; i++) {
                    uint16_t w = (uint16_t)(want[i] | (sign ? 0x8000 : 0));
                    if (got[strided ? 2 * i : i] != w) {
                        bad++;
                        first = first < 0 ? i : first;
                    }
                }
                for (int i = 0; i < n; i++)
                    if (sign)
                        src[i] = -src[i];
                char msg[128];
                snprintf(msg, sizeof msg, "half.h store %s %s %s: %d boundary values "
                         "rounded to nearest even (%d wrong, first %d)",
                         kind == FL_HALF_F16 ? "float16" : "bfloat16",
                         sign ? "negative" : "positive", strided ? "strided" : "contiguous",
                         n, bad, first);
                printf("  %s\n", msg);
                check(bad == 0, msg);
            }
        }
    }
}

int main(void)
{
    printf("vecmath.h (bound %.1Lf ulp):\n", MAX_ULP);
    check_exp_f32();
    check_exp_f64();
    check_exp_nonpos_f32();
    check_exp_nonpos_f64();
    check_log_f32();
    check_log_f64();
    check_log1p_f32();
    check_log1p_f64();
    check_tiles_f32();
    check_tiles_f64();
    printf("lanes.h, maxat.h, kl_tile.h:\n");
    check_reduce();
    check_kl_f32();
    check_kl_f64();
    check_log_nonzero_f32();
    printf("half.h:\n");
    check_half();
    check_half_store();
    printf("failures: %d\n", failures);
    return failures != 0;
}
