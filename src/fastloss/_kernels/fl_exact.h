/*
 * Exact sums of doubles: a fixed-point accumulator over the whole double range.
 *
 * Every finite double is an integer multiple of 2^-1074.  fl_exact keeps the exact sum of
 * the doubles added to it as that integer, in FL_EXACT_LIMBS limbs of 32 bits each held in
 * int64 (limb k weighs 2^(32 k - 1074)), so that an addition is three integer adds with no
 * carry to propagate, and the result depends only on the set of values added, never on
 * their order or grouping.  Limbs absorb 2^30 additions before fl_exact_add normalizes
 * them (carries to the next limb, 32 bits left in each).  Infinities and NaN go to
 * `special`, added as doubles (so +inf + -inf gives NaN, as the plain sum would).
 *
 * fastloss adds the block sums of a call here (blocks.pxd's blocked_sum): the call's
 * value is the exact sum of its block sums, rounded once (fl_exact_round), so a call and
 * any split of it into batches cut at block boundaries (the accumulators of
 * fastloss.Accumulator, merged in any order) give the same bits.  This is the "small
 * superaccumulator" of R. M. Neal, "Fast exact summation using small and large
 * superaccumulators" (2015), with 32-bit limbs.
 */
#ifndef FASTLOSS_EXACT_H
#define FASTLOSS_EXACT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 2^-1074 .. 2^1024 is 2098 bits: 66 limbs of 32, one more for carries out of the top */
#define FL_EXACT_LIMBS 67
#define FL_EXACT_NORMALIZE_EVERY (1 << 30)

typedef struct {
    int64_t limb[FL_EXACT_LIMBS];
    int64_t adds;               /* additions since the last normalization */
    double special;             /* sum of the infinities and NaNs added, or 0 */
} fl_exact;

static void fl_exact_zero(fl_exact* acc)
{
    memset(acc, 0, sizeof *acc);
}

/* Carry each limb's bits above 32 into the next one: limbs 0 .. top-1 end in [0, 2^32),
 * the top limb keeps the sign.  The value is unchanged. */
static void fl_exact_normalize(fl_exact* acc)
{
    int64_t carry = 0;
    for (int k = 0; k < FL_EXACT_LIMBS - 1; k++) {
        int64_t v = acc->limb[k] + carry;
        carry = v >> 32;                            /* arithmetic: floor(v / 2^32) */
        acc->limb[k] = v - carry * ((int64_t)1 << 32);
    }
    acc->limb[FL_EXACT_LIMBS - 1] += carry;
    acc->adds = 0;
}

static void fl_exact_add(fl_exact* acc, double x)
{
    uint64_t bits, mant, e, pos;
    int k, sh, neg;
    uint64_t part0, part1, part2;
    memcpy(&bits, &x, sizeof bits);
    e = (bits >> 52) & 0x7ff;
    if (e == 0x7ff) {                               /* inf or NaN */
        acc->special += x;
        return;
    }
    mant = bits & 0xfffffffffffffULL;
    if (e == 0) {                                   /* zero or subnormal: mant * 2^-1074 */
        if (mant == 0)
            return;
        pos = 0;
    } else {                                        /* (2^52 + mant) * 2^(e - 1075) */
        mant |= 0x10000000000000ULL;
        pos = e - 1;
    }
    neg = (int)(bits >> 63);
    k = (int)(pos >> 5);
    sh = (int)(pos & 31);
    /* mant << sh spans up to 85 bits: three 32-bit parts (bits 0-31, 32-63, 64-84) */
    part0 = (mant << sh) & 0xffffffffULL;
    part1 = ((mant << sh) >> 32) & 0xffffffffULL;    /* mant << sh's low 64 bits are exact */
    part2 = sh == 0 ? 0 : mant >> (64 - sh);
    if (neg) {
        acc->limb[k] -= (int64_t)part0;
        acc->limb[k + 1] -= (int64_t)part1;
        acc->limb[k + 2] -= (int64_t)part2;
    } else {
        acc->limb[k] += (int64_t)part0;
        acc->limb[k + 1] += (int64_t)part1;
        acc->limb[k + 2] += (int64_t)part2;
    }
    if (++acc->adds >= FL_EXACT_NORMALIZE_EVERY)
        fl_exact_normalize(acc);
}

/* acc += other (exact). */
static void fl_exact_merge(fl_exact* acc, const fl_exact* other)
{
    fl_exact o = *other;
    fl_exact_normalize(acc);
    fl_exact_normalize(&o);
    for (int k = 0; k < FL_EXACT_LIMBS; k++)
        acc->limb[k] += o.limb[k];
    acc->special += o.special;
    fl_exact_normalize(acc);
}

/* acc *= k, exactly, for an integer 0 <= k < 2^31. */
static void fl_exact_scale(fl_exact* acc, int64_t k)
{
    fl_exact_normalize(acc);                        /* limbs < 2^32: limb * k < 2^63 */
    for (int i = 0; i < FL_EXACT_LIMBS; i++)
        acc->limb[i] *= k;
    acc->special *= (double)k;
    fl_exact_normalize(acc);
}

/* The exact sum rounded once to the nearest double (ties to even); +-inf beyond the range;
 * `special` if any infinity or NaN was added. */
static double fl_exact_round(const fl_exact* in)
{
    fl_exact a = *in;
    int neg = 0, h, nb;
    uint64_t top, w;
    int sticky = 0;
    double r;
    if (a.special != 0 || a.special != a.special)
        return a.special;
    fl_exact_normalize(&a);
    if (a.limb[FL_EXACT_LIMBS - 1] < 0) {           /* negative: take the magnitude */
        neg = 1;
        for (int k = 0; k < FL_EXACT_LIMBS; k++)
            a.limb[k] = -a.limb[k];
        fl_exact_normalize(&a);
    }
    for (h = FL_EXACT_LIMBS - 1; h >= 0 && a.limb[h] == 0; h--)
        ;
    if (h < 0)
        return 0.0;
    if (h <= 1) {                                   /* below 2^-1010: exact in 64 bits */
        w = (uint64_t)a.limb[0] | (h == 1 ? (uint64_t)a.limb[1] << 32 : 0);
        if (w < ((uint64_t)1 << 53)) {              /* exactly representable */
            r = ldexp((double)w, -1074);
            return neg ? -r : r;
        }
    }
    /* the top 64 bits of the magnitude, its lowest bit made sticky for what lies below */
    top = (uint64_t)a.limb[h];
    for (nb = 0; nb < 32 && (top >> nb) != 0; nb++)
        ;                                           /* bit length of the top limb */
    {
        uint64_t l1 = h >= 1 ? (uint64_t)a.limb[h - 1] : 0;
        uint64_t l2 = h >= 2 ? (uint64_t)a.limb[h - 2] : 0;
        w = (top << (64 - nb)) | (l1 << (32 - nb));
        if (nb < 32)
            w |= l2 >> nb;
        sticky = nb < 32 ? (l2 & (((uint64_t)1 << nb) - 1)) != 0 : l2 != 0;
        for (int k = h - 3; k >= 0 && !sticky; k--)
            sticky = a.limb[k] != 0;
    }
    if (sticky)
        w |= 1;                 /* below the 11 guard bits: rounds as the exact value */
    /* w * 2^(32 (h - 2) + nb - 1074) ... with w's bit 63 the top bit of the value */
    r = ldexp((double)w, 32 * (h - 2) + nb - 1074);
    return neg ? -r : r;
}

/* A sum as FL_EXACT_STATE int64 values (what Python keeps, pickles and merges): the
 * normalized limbs, then the bits of `special`. */
#define FL_EXACT_STATE (FL_EXACT_LIMBS + 1)

static void fl_exact_store(const fl_exact* acc, int64_t* out)
{
    fl_exact a = *acc;
    fl_exact_normalize(&a);
    memcpy(out, a.limb, sizeof a.limb);
    memcpy(out + FL_EXACT_LIMBS, &a.special, sizeof a.special);
}

static void fl_exact_load(fl_exact* acc, const int64_t* in)
{
    memcpy(acc->limb, in, sizeof acc->limb);
    memcpy(&acc->special, in + FL_EXACT_LIMBS, sizeof acc->special);
    acc->adds = 0;
    fl_exact_normalize(acc);
}

#endif /* FASTLOSS_EXACT_H */
