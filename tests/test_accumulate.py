"""fastloss.Accumulator: a loss over batches equals one call over all of them (bitwise at
4096-row cuts, 1e-13 relative otherwise), and the result does not depend on the merge
order, the number of workers or threads (issue 14; the exact sums: tests/test_exact.py)."""
import pickle
import random
import threading

import numpy as np
import pytest

import fastloss
from conftest import LOSS_INSTANCES, input_for, target_for
from fastloss.accumulate import ROWS_PER_BLOCK


def sample_axis(loss):
    """The input's axis that batches cut: rows, or for classes on axis 0 the next one."""
    return 1 if loss.family == "softmax" and loss.axis % 2 == 0 else 0


def make_data(loss, n, rng, dtype=np.float64, weighted=False, classes=5):
    """(input, target, weights) with n samples; the input is 2-D."""
    ax = sample_axis(loss)
    shape = (classes, n) if ax == 1 else (n, classes if loss.family == "softmax" else 3)
    x = input_for(loss, shape, rng, dtype)
    t = target_for(loss, x.astype(np.float64), rng)
    if getattr(t, "dtype", None) is not None and t.dtype.kind == "f":
        t = t.astype(dtype)
    if loss.family == "softmax" and getattr(loss, "ignore_index", None) in (0,):
        pass                                      # label 0 rows are ignored: fine
    w = rng.uniform(0, 2, n).astype(dtype) if weighted else None
    return x, t, w


def cut(loss, arrays, lo, hi):
    """Rows lo..hi of (input, target, weights): along the sample axis of each."""
    x, t, w = arrays
    ax = sample_axis(loss)

    def part(a, axis):
        if a is None:
            return None
        idx = [slice(None)] * a.ndim
        idx[axis] = slice(lo, hi)
        return a[tuple(idx)]

    t_axis = ax if np.ndim(t) == x.ndim else 0
    return part(x, ax), part(t, t_axis), part(w, 0)


def accumulators(loss, arrays, cuts, reduction, rng):
    """One accumulator per batch between consecutive cuts, with varying thread counts."""
    out = []
    for i, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:])):
        x, t, w = cut(loss, arrays, lo, hi)
        acc = fastloss.Accumulator(loss, reduction)
        out.append(acc.update(x, t, w, n_threads=int(rng.integers(1, 4))))
    return out


def merge_tree(accs, seed):
    """Merge copies of `accs` in a random binary tree."""
    order = random.Random(seed)
    parts = [a.copy() for a in accs]
    while len(parts) > 1:
        i, j = sorted(order.sample(range(len(parts)), 2))
        merged = parts[i].merge(parts[j])
        parts = [p for k, p in enumerate(parts) if k not in (i, j)] + [merged]
    return parts[0]


def sequential(loss, arrays, cuts, reduction):
    acc = fastloss.Accumulator(loss, reduction)
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        acc.update(*cut(loss, arrays, lo, hi))
    return acc.result()


N = 3 * ROWS_PER_BLOCK + 517


@pytest.mark.parametrize("loss", LOSS_INSTANCES, ids=repr)
@pytest.mark.parametrize("weighted", [False, True])
def test_cuts_at_4096_rows_give_the_single_calls_bits(loss, weighted):
    rng = np.random.default_rng(7)
    arrays = make_data(loss, N, rng, weighted=weighted)
    x, t, w = arrays
    for reduction in ("mean", "sum"):
        want = loss(x, t, sample_weight=w, reduction=reduction)
        for cuts in ([0, N], [0, ROWS_PER_BLOCK, N],
                     [0, ROWS_PER_BLOCK, 2 * ROWS_PER_BLOCK, 3 * ROWS_PER_BLOCK, N],
                     [0, 2 * ROWS_PER_BLOCK, N]):
            accs = accumulators(loss, arrays, cuts, reduction, rng)
            assert merge_tree(accs, len(cuts)).result() == want, (reduction, cuts)
        assert sequential(loss, arrays, [0, 3 * ROWS_PER_BLOCK, N], reduction) == want


@pytest.mark.parametrize("loss", LOSS_INSTANCES, ids=repr)
@pytest.mark.parametrize("weighted", [False, True])
def test_any_split_and_merge_tree_give_one_result(loss, weighted):
    """Random splits into 10-100 batches: every merge tree (and the sequential updates)
    gives the same bits, within 1e-13 of the single call."""
    rng = np.random.default_rng(11)
    arrays = make_data(loss, N, rng, weighted=weighted)
    x, t, w = arrays
    for reduction in ("mean", "sum"):
        want = loss(x, t, sample_weight=w, reduction=reduction)
        for _ in range(2):
            k = int(rng.integers(10, 101))
            cuts = [0] + sorted(rng.choice(np.arange(1, N), k - 1, replace=False).tolist()) + [N]
            accs = accumulators(loss, arrays, cuts, reduction, rng)
            results = {merge_tree(accs, int(rng.integers(1 << 30))).result() for _ in range(4)}
            results.add(sequential(loss, arrays, cuts, reduction))
            assert len(results) == 1, results
            got = results.pop()
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", [fastloss.MSE(), fastloss.PoissonNLL(),
                                  fastloss.CrossEntropy(class_weight=np.arange(1.0, 6),
                                                        label_smoothing=0.1),
                                  fastloss.KLDivergence()], ids=repr)
def test_float32_batches(loss, dtype):
    rng = np.random.default_rng(5)
    arrays = make_data(loss, N, rng, dtype=dtype, weighted=True)
    x, t, w = arrays
    want = loss(x, t, sample_weight=w)
    assert sequential(loss, arrays, [0, ROWS_PER_BLOCK, N], "mean") == want
    got = sequential(loss, arrays, [0, 1000, 5000, N], "mean")
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_eight_threads_each_with_its_own_accumulator_give_the_same_bits():
    rng = np.random.default_rng(2)
    loss = fastloss.CrossEntropy(class_weight=np.linspace(0.5, 2, 7), label_smoothing=0.05)
    n = 40 * 1000 + 13
    x = rng.normal(size=(n, 7)) * 3
    t = rng.integers(0, 7, n)
    w = rng.uniform(0, 3, n)
    cuts = list(range(0, n, 1000)) + [n]
    batches = list(zip(cuts[:-1], cuts[1:]))
    want = fastloss.Accumulator(loss)
    for lo, hi in batches:
        want.update(x[lo:hi], t[lo:hi], w[lo:hi])
    for trial in range(3):
        accs = [fastloss.Accumulator(loss) for _ in range(8)]
        shuffled = random.Random(trial).sample(batches, len(batches))

        def work(k):
            for lo, hi in shuffled[k::8]:
                accs[k].update(x[lo:hi], t[lo:hi], w[lo:hi], n_threads=1 + k % 2)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        total = merge_tree(accs, trial)
        assert total.result() == want.result()
    np.testing.assert_allclose(want.result(), loss(x, t, sample_weight=w), rtol=1e-13)


# ------------------------------------------------------------------ the API ----

def test_empty_accumulator_and_nothing_to_average_give_zero():
    assert fastloss.Accumulator(fastloss.MSE()).result() == 0.0
    assert fastloss.Accumulator(fastloss.MSE(), "sum").result() == 0.0
    acc = fastloss.Accumulator(fastloss.CrossEntropy(ignore_index=1))
    acc.update(np.zeros((3, 4)), np.array([1, 1, 1]))          # every row ignored
    acc.update(np.zeros((0, 4)), np.zeros(0, np.int64))
    assert acc.result() == 0.0
    acc = fastloss.Accumulator(fastloss.MSE())
    acc.update(np.ones(3), np.zeros(3), np.zeros(3))
    assert acc.result() == 0.0
    acc.update(np.ones(2), np.zeros(2))
    assert acc.result() == 1.0


@pytest.mark.parametrize("loss", [fastloss.MSE(), fastloss.KLDivergence()], ids=repr)
def test_leading_weights_over_an_empty_axis_weigh_nothing(loss):
    """Weights (N,) for losses of shape (N, 0): no value, so nothing is added to the
    "mean" denominator (found by tests/test_fuzz.py: this raised)."""
    x = np.zeros((3, 0, 2))
    t = np.full((3, 0, 2), 0.5)
    assert loss(x, t, sample_weight=np.ones(3)) == 0.0
    assert loss(x, t, sample_weight=np.ones(3), reduction="sum") == 0.0
    with pytest.raises(ValueError, match="sample_weight"):
        loss(x, t, sample_weight=-np.ones(3))
    acc = fastloss.Accumulator(loss).update(x, t, np.ones(3))
    acc.update(np.ones((2, 1, 2)), np.full((2, 1, 2), 0.5))
    assert acc.result() == loss(np.ones((2, 1, 2)), np.full((2, 1, 2), 0.5))


def test_update_returns_self_and_merge_is_in_place():
    x, t = np.arange(6.0), np.zeros(6)
    a = fastloss.Accumulator(fastloss.MSE())
    assert a.update(x[:3], t[:3]) is a
    b = fastloss.Accumulator(fastloss.MSE()).update(x[3:], t[3:])
    before = b.result()
    assert a.merge(b) is a
    assert a.result() == fastloss.MSE()(x, t)
    assert b.result() == before                      # the other is not changed
    c = a.copy()
    c.update(x, t)
    assert a.result() == fastloss.MSE()(x, t)        # copies are independent
    assert a.reset() is a and a.result() == 0.0
    assert a.loss == fastloss.MSE() and a.reduction == "mean"


@pytest.mark.parametrize("bad", [
    dict(x=np.zeros((3, 4)), t=np.array([0, 1, 9])),                 # label out of range
    dict(x=np.zeros((3, 4)), t=np.array([0, 1, 2]), w=-np.ones(3)),  # negative weight
    dict(x=np.zeros((3, 4)), t=np.array([0, 1])),                    # shape mismatch
    dict(x=np.array([[1j, 2, 3, 4]]), t=np.array([0])),              # complex input
])
def test_a_failed_update_leaves_the_accumulator_unchanged(bad):
    rng = np.random.default_rng(0)
    acc = fastloss.Accumulator(fastloss.CrossEntropy())
    acc.update(rng.normal(size=(5, 4)), rng.integers(0, 4, 5))
    state = acc.state()
    with pytest.raises((ValueError, TypeError)):
        acc.update(bad["x"], bad["t"], bad.get("w"))
    after = acc.state()
    assert np.array_equal(after["num"], state["num"]) and \
        np.array_equal(after["den"], state["den"])


def test_merging_different_losses_or_reductions_raises():
    a = fastloss.Accumulator(fastloss.MSE())
    with pytest.raises(ValueError, match="different losses"):
        a.merge(fastloss.Accumulator(fastloss.MAE()))
    with pytest.raises(ValueError, match="different losses"):
        fastloss.Accumulator(fastloss.Huber(1.0)).merge(
            fastloss.Accumulator(fastloss.Huber(2.0)))
    with pytest.raises(ValueError, match="different losses"):
        fastloss.Accumulator(fastloss.CrossEntropy(class_weight=[1.0, 2.0])).merge(
            fastloss.Accumulator(fastloss.CrossEntropy(class_weight=[1.0, 3.0])))
    with pytest.raises(ValueError, match="different reductions"):
        a.merge(fastloss.Accumulator(fastloss.MSE(), "sum"))
    with pytest.raises(TypeError, match="Accumulator"):
        a.merge(0.5)
    # equal losses built separately merge
    fastloss.Accumulator(fastloss.CrossEntropy(class_weight=[1.0, 2.0])).merge(
        fastloss.Accumulator(fastloss.CrossEntropy(class_weight=np.array([1.0, 2.0]))))


def test_bad_arguments():
    with pytest.raises(ValueError, match="'mean' or 'sum'"):
        fastloss.Accumulator(fastloss.MSE(), "none")
    with pytest.raises(TypeError, match="fastloss loss"):
        fastloss.Accumulator(lambda x, t: 0.0)


@pytest.mark.parametrize("loss", LOSS_INSTANCES, ids=repr)
def test_state_and_pickle_round_trip(loss):
    rng = np.random.default_rng(1)
    x, t, w = make_data(loss, 300, rng, weighted=True)
    acc = fastloss.Accumulator(loss, "mean").update(x, t, w)
    state = acc.state()
    blob = pickle.dumps(state)
    assert len(blob) < 2000
    again = fastloss.Accumulator.from_state(loss, pickle.loads(blob))
    assert again.result() == acc.result() == loss(x, t, sample_weight=w)
    assert pickle.loads(pickle.dumps(acc)).result() == acc.result()
    again.update(x, t, w)                      # the rebuilt state is writable, private
    assert acc.result() == loss(x, t, sample_weight=w)


def test_from_state_checks_the_loss_and_the_state():
    state = fastloss.Accumulator(fastloss.MSE(), "sum").update([1.0], [0.0]).state()
    assert fastloss.Accumulator.from_state(fastloss.MSE(), state).reduction == "sum"
    with pytest.raises(ValueError, match="different losses.*'mse'"):
        fastloss.Accumulator.from_state(fastloss.MAE(), state)
    with pytest.raises(ValueError, match="int64 array"):
        fastloss.Accumulator.from_state(fastloss.MSE(), dict(state, num=np.zeros(3)))
    with pytest.raises(ValueError, match="lacks"):
        fastloss.Accumulator.from_state(fastloss.MSE(), {"num": state["num"]})
    with pytest.raises(TypeError, match="dict"):
        fastloss.Accumulator.from_state(fastloss.MSE(), [1, 2])


def test_fingerprint_is_the_same_in_another_process():
    import subprocess
    import sys

    code = ("import fastloss, numpy as np; print(fastloss.Accumulator(fastloss.CrossEntropy("
            "class_weight=np.arange(1.0, 4), label_smoothing=0.2)).state()['fingerprint'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    here = fastloss.Accumulator(fastloss.CrossEntropy(class_weight=np.arange(1.0, 4),
                                                      label_smoothing=0.2))
    assert out == here.state()["fingerprint"]


def test_infinities_and_nan_propagate():
    acc = fastloss.Accumulator(fastloss.PoissonNLL(), "sum")
    acc.update(np.array([1000.0]), np.array([1.0]))
    assert acc.result() == np.inf
    acc = fastloss.Accumulator(fastloss.MSE())
    acc.update(np.array([np.nan, 1.0]), np.zeros(2))
    acc.update(np.ones(2), np.zeros(2))
    assert np.isnan(acc.result())
