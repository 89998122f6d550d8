"""Exact sums (fl_exact.h): every call's total is the exact sum of its block sums rounded
once, so that any split of the data at block boundaries, summed exactly in any order,
gives the same bits as one call (what fastloss's accumulators rely on)."""
import math
import random
from fractions import Fraction

import numpy as np
import pytest

import fastloss
from fastloss import _dispatch
from fastloss._kernels import exact


def exact_round(values) -> float:
    """The exact sum of finite doubles, correctly rounded (Fraction, then float())."""
    total = sum((Fraction(v) for v in values), Fraction(0))
    try:
        return float(total)
    except OverflowError:
        return math.inf if total > 0 else -math.inf


def state_of(values):
    return exact.add(exact.zero(), np.asarray(values, dtype=np.float64))


def tricky_values(rng, n):
    """Doubles over the whole range: subnormals, huge ones, cancelling pairs, ties."""
    kinds = rng.integers(0, 6, n)
    exps = rng.integers(-1074, 1023, n)
    v = rng.uniform(1, 2, n) * np.exp2(np.clip(exps, -1022, 1023).astype(float))
    v[kinds == 0] = rng.integers(1, 2**20, (kinds == 0).sum()) * 2.0**-1074    # subnormal
    v[kinds == 1] = rng.uniform(-1, 1, (kinds == 1).sum())
    v[kinds == 2] = rng.uniform(1e300, 1e308, (kinds == 2).sum())
    v *= rng.choice([-1.0, 1.0], n)
    pairs = rng.random(n) < 0.2                      # exact cancellation partners
    v[np.roll(pairs, 1)] = -v[pairs][: np.roll(pairs, 1).sum()]
    return v


@pytest.mark.parametrize("seed", range(40))
def test_round_is_the_correctly_rounded_exact_sum(seed):
    rng = np.random.default_rng(seed)
    v = tricky_values(rng, int(rng.integers(1, 300)))
    assert exact.round_to_float(state_of(v)) == exact_round(v)


def test_rounding_ties_go_to_even_and_subnormals_are_exact():
    one_ulp = 2.0**-52
    for values, want in [
        ([1.0, one_ulp / 2], 1.0),                        # tie: to even (1.0)
        ([1.0 + one_ulp, one_ulp / 2], 1.0 + 2 * one_ulp),  # tie: to even (up)
        ([1.0, one_ulp / 2, 2.0**-200], 1.0 + one_ulp),   # above the tie: up
        ([2.0**-1074] * 3, 3 * 2.0**-1074),
        ([2.0**-1022, -(2.0**-1074)], 2.0**-1022 - 2.0**-1074),
        ([1e308, 1e308], math.inf), ([-1e308, -1e308], -math.inf),
        ([1e308, 1e308, -1e308], 1e308),                  # no overflow on the way
        ([], 0.0), ([0.0, -0.0], 0.0),
    ]:
        assert exact.round_to_float(state_of(values)) == want, values


def test_infinities_and_nan_are_sticky():
    assert exact.round_to_float(state_of([1.0, math.inf, 5.0])) == math.inf
    assert math.isnan(exact.round_to_float(state_of([math.inf, -math.inf])))
    assert math.isnan(exact.round_to_float(state_of([1.0, math.nan])))


@pytest.mark.parametrize("seed", range(10))
def test_any_order_and_any_merge_tree_give_the_same_bits(seed):
    rng = np.random.default_rng(seed)
    v = tricky_values(rng, 500)
    want = exact.round_to_float(state_of(v))
    for _ in range(5):
        parts = np.array_split(rng.permutation(v), int(rng.integers(2, 40)))
        states = [state_of(p) for p in parts]
        order = random.Random(int(rng.integers(1 << 30)))
        while len(states) > 1:                      # a random merge tree
            i, j = sorted(order.sample(range(len(states)), 2))
            merged = exact.merge(states[i], states[j])
            states = [s for k, s in enumerate(states) if k not in (i, j)] + [merged]
        assert exact.round_to_float(states[0]) == want


def test_many_additions_are_normalized_without_overflow():
    big = np.full(100_000, 2.0**1000)
    s = state_of(big)
    for _ in range(20):
        exact.add(s, big)
    assert exact.round_to_float(s) == 21 * 100_000 * 2.0**1000


def test_a_bad_state_is_rejected():
    with pytest.raises(ValueError, match="exact-sum state"):
        exact.round_to_float(np.zeros(3, np.int64))


# ------------------------------------------------------------------ kernels ----

BLOCK = _dispatch.probes().LAYOUT["BLOCK_MIN"]


@pytest.mark.parametrize("loss, kind", [(fastloss.MSE(), "pointwise"),
                                        (fastloss.CrossEntropy(), "labels"),
                                        (fastloss.CrossEntropy(class_weight=np.arange(1.0, 8)),
                                         "labels"),
                                        (fastloss.KLDivergence(), "dense")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_batches_cut_at_block_boundaries_give_the_single_calls_bits(level, loss, kind, dtype,
                                                                   weighted):
    """The exact sums of batches of multiples of BLOCK_MIN rows, merged in a shuffled
    order, equal one call's "sum" and "mean" bit for bit (any thread counts)."""
    rng = np.random.default_rng(3)
    n = 5 * BLOCK + 123
    if kind == "pointwise":
        x = rng.normal(size=(n, 3)).astype(dtype)
        t = rng.normal(size=(n, 3)).astype(dtype)
    else:
        x = (rng.normal(size=(n, 7)) * 3).astype(dtype)
        t = rng.integers(0, 7, n) if kind == "labels" else \
            rng.dirichlet(np.ones(7), n).astype(dtype)
    w = rng.uniform(0, 2, n).astype(dtype) if weighted else None
    whole_sum = loss(x, t, sample_weight=w, reduction="sum", n_threads=2)
    whole_mean = loss(x, t, sample_weight=w, reduction="mean", n_threads=2)
    cuts = [0, BLOCK, 3 * BLOCK, 4 * BLOCK, n]
    num, den = exact.zero(), exact.zero()
    for i in rng.permutation(len(cuts) - 1):
        lo, hi = cuts[i], cuts[i + 1]
        n_part, d_part = loss._accumulate(x[lo:hi], t[lo:hi],
                                          None if w is None else w[lo:hi],
                                          n_threads=1 + i % 2)
        num, den = exact.merge(num, n_part), exact.merge(den, d_part)
    assert exact.round_to_float(num) == whole_sum
    assert exact.round_to_float(num) / exact.round_to_float(den) == whole_mean
