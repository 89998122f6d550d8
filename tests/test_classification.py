"""Cross-entropy, binary cross-entropy and KL divergence against PyTorch float64 autograd,
NumPy references, finite differences and mpmath, plus the edge cases of docs/contract.md."""
import mpmath
import numpy as np
import pytest

import fastloss
from fastloss.bench import reference as ref
from conftest import assert_grad, assert_value

try:
    import torch
    import torch.nn.functional as F
except ImportError:         # the NumPy references still run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
CLASS_COUNTS = [1, 2, 3, 10, 16, 17, 32, 33, 300]  # 32 and below: the row-parallel path


def softmax_rows(x):
    return np.exp(ref.log_softmax(x))


def check(loss, x, target, expected, dtype, sample_weight=None, reductions=("mean", "sum", "none")):
    """expected(reduction) -> (value, grad, hess) in float64."""
    for reduction in reductions:
        value, grad, hess = expected(reduction)
        got_v, got_g = loss.value_and_grad(x, target, sample_weight=sample_weight,
                                           reduction=reduction)
        assert_value(got_v, value, dtype)
        assert_value(loss(x, target, sample_weight=sample_weight, reduction=reduction),
                     value, dtype)
        assert_grad(got_g, grad, dtype)
        g2, h2 = loss.grad_hess(x, target, sample_weight=sample_weight, reduction=reduction)
        assert_grad(g2, grad, dtype)
        assert_grad(h2, hess, dtype)


# ------------------------------------------------------------------ cross-entropy ----

@pytest.mark.parametrize("C", CLASS_COUNTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_indices_against_reference(level, C, dtype, smoothing, weighted, rng):
    N = 150
    x = (rng.normal(size=(N, C)) * 3).astype(dtype)
    y = rng.integers(0, C, N)
    y[::9] = -100
    cw = rng.uniform(0.2, 2, C) if weighted else None
    sw = rng.uniform(0, 2, N)
    loss = fastloss.CrossEntropy(class_weight=cw, label_smoothing=smoothing)
    a, denom = ref.target_weights(x.shape, y, cw, smoothing)
    l, g, h = ref.softmax_ce(x.astype(np.float64), a)
    check(loss, x, y, lambda red: ref.reduce(l, g, h, red, sw, denom, per_row=True), dtype, sw)


@pytest.mark.parametrize("C", CLASS_COUNTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_probabilities_against_reference(level, C, dtype, smoothing, rng):
    N = 70
    x = (rng.normal(size=(N, C)) * 2).astype(dtype)
    t = rng.uniform(size=(N, C))
    t[:, 0] = 0
    t = (t / np.maximum(t.sum(1, keepdims=True), 1e-300)).astype(dtype)
    cw = rng.uniform(0.2, 2, C)
    loss = fastloss.CrossEntropy(class_weight=cw, label_smoothing=smoothing)
    a, _ = ref.target_weights(x.shape, t.astype(np.float64), cw, smoothing)
    l, g, h = ref.softmax_ce(x.astype(np.float64), a)
    check(loss, x, t, lambda red: ref.reduce(l, g, h, red, per_row=True), dtype)


@needs_torch
@pytest.mark.parametrize("C", [2, 5, 40])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_smoothing_weights_and_ignore_against_torch(C, reduction, rng):
    """All of PyTorch's options at once, on leading dimensions (N, T, C)."""
    x = rng.normal(size=(6, 5, C)) * 2
    y = rng.integers(0, C, (6, 5))
    y[0, :3] = 3 if C > 3 else 1
    y[1, 1] = y[4, 0] = 3
    cw = rng.uniform(0.3, 2, C)
    loss = fastloss.CrossEntropy(class_weight=cw, ignore_index=3, label_smoothing=0.2)
    xt = torch.tensor(x, requires_grad=True)
    want = F.cross_entropy(xt.permute(0, 2, 1), torch.tensor(y), weight=torch.tensor(cw),
                           ignore_index=3, label_smoothing=0.2, reduction=reduction)
    want.sum().backward()
    value, grad = loss.value_and_grad(x, y, reduction=reduction)
    np.testing.assert_allclose(value, want.detach().numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-17)


@needs_torch
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_probabilities_against_torch(smoothing, rng):
    x = rng.normal(size=(30, 7))
    t = rng.dirichlet(np.ones(7), 30)
    cw = rng.uniform(0.3, 2, 7)
    xt = torch.tensor(x, requires_grad=True)
    want = F.cross_entropy(xt, torch.tensor(t), weight=torch.tensor(cw), label_smoothing=smoothing)
    want.backward()
    value, grad = fastloss.CrossEntropy(class_weight=cw, label_smoothing=smoothing).value_and_grad(x, t)
    np.testing.assert_allclose(value, want.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-17)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [3, 300])
def test_cross_entropy_from_probabilities(level, dtype, C, rng):
    p = softmax_rows(rng.normal(size=(40, C)) * 3)
    p[0, :] = 0
    p[0, 1] = 1                                           # exact 0 and 1
    p = p.astype(dtype)
    y = rng.integers(0, C, 40)
    y[0] = 0                                              # p_y = 0: log clamped at -100
    loss = fastloss.CrossEntropy(from_logits=False, label_smoothing=0.1)
    a, denom = ref.target_weights(p.shape, y, None, 0.1)
    l, g, h = ref.prob_ce(p.astype(np.float64), a)
    check(loss, p, y, lambda red: ref.reduce(l, g, h, red, None, denom, per_row=True), dtype)
    value, grad = loss.value_and_grad(p, y)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
                                   np.int64, np.uint64])
def test_every_integer_label_dtype(dtype, rng):
    x = rng.normal(size=(20, 4))
    y = rng.integers(0, 4, 20)
    assert fastloss.CrossEntropy()(x, y.astype(dtype)) == fastloss.CrossEntropy()(x, y)


def test_leading_dimensions(rng):
    x = rng.normal(size=(3, 4, 6))
    y = rng.integers(0, 6, (3, 4))
    loss = fastloss.CrossEntropy()
    v, g = loss.value_and_grad(x, y, reduction="none")
    v2, g2 = loss.value_and_grad(x.reshape(12, 6), y.reshape(12), reduction="none")
    np.testing.assert_array_equal(v, v2.reshape(3, 4))
    np.testing.assert_array_equal(g, g2.reshape(3, 4, 6))
    assert loss(x[0, 0], y[0, 0]) == v[0, 0]              # one unbatched row, label shape ()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_very_wide_rows(dtype, rng):
    C = 50_000
    x = (rng.normal(size=(3, C)) * 4).astype(dtype)
    y = np.array([0, 49_999, 1234])
    a, denom = ref.target_weights(x.shape, y)
    l, g, h = ref.softmax_ce(x.astype(np.float64), a)
    check(fastloss.CrossEntropy(), x, y,
          lambda red: ref.reduce(l, g, h, red, None, denom, per_row=True), dtype)


def test_one_and_two_classes(rng):
    x1 = rng.normal(size=(5, 1))
    value, grad = fastloss.CrossEntropy().value_and_grad(x1, np.zeros(5, dtype=int))
    assert value == 0 and np.all(grad == 0)
    x2 = rng.normal(size=(9, 2))
    y = rng.integers(0, 2, 9)
    # two-class softmax cross-entropy is the logistic loss of the logit difference
    d = x2[:, 1] - x2[:, 0]
    np.testing.assert_allclose(fastloss.CrossEntropy()(x2, y, reduction="none"),
                               fastloss.BinaryCrossEntropy()(d, y.astype(float), reduction="none"),
                               rtol=1e-13)


# ------------------------------------------------------------------ extremes ----

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [4, 100])
@pytest.mark.parametrize("scale", [80.0, 1e30])
def test_huge_logits_stay_finite(level, dtype, C, scale, rng):
    x = (rng.choice([-1.0, 1.0], size=(20, C)) * scale).astype(dtype)
    y = rng.integers(0, C, 20)
    t = softmax_rows(rng.normal(size=(20, C))).astype(dtype)
    for loss, target in [(fastloss.CrossEntropy(), y), (fastloss.CrossEntropy(label_smoothing=0.1), y),
                         (fastloss.CrossEntropy(), t), (fastloss.KLDivergence(), t),
                         (fastloss.BinaryCrossEntropy(), (t > 0.3).astype(dtype))]:
        value, grad = loss.value_and_grad(x, target, reduction="none")
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)), repr(loss)
        grad, hess = loss.grad_hess(x, target)
        assert np.all(np.isfinite(grad)) and np.all(np.isfinite(hess)), repr(loss)


@pytest.mark.parametrize("C", [3, 40, 301])
def test_tiny_losses_keep_full_relative_precision(level, C):
    """A confident correct prediction: the loss log1p(sum exp(z_c - z_y)) is ~1e-20, which a
    plain log(sum exp) would round to 0; and a tie at the maximum.  Checked against mpmath.
    Wide rows (C > 32, another code path) carry the three classes at the start, at lane
    boundaries and in the tail, padded with logits whose exp is 0."""
    mpmath.mp.dps = 60
    x3 = np.array([[45.0, 0.0, -3.0], [0.0, 30.5, 29.0], [10.0, 10.0, -40.0]])
    y3 = np.array([0, 1, 0])
    where = [[0, 1, 2], [15, 16, 17], [C - 3, C - 1, C - 2]] if C > 3 else [[0, 1, 2]] * 3
    x = np.full((3, C), -1e4)
    y = np.empty(3, dtype=np.int64)
    for r in range(3):
        x[r, where[r]] = x3[r]
        y[r] = where[r][y3[r]]
    value, grad = fastloss.CrossEntropy().value_and_grad(x, y, reduction="none")
    _, hess = fastloss.CrossEntropy().grad_hess(x, y, reduction="none")
    one_hot = np.eye(C)[y]                              # the dense-target path, same loss
    dense_value = fastloss.CrossEntropy()(x, one_hot, reduction="none")
    others = np.ones((3, C), dtype=bool)
    for r in range(3):
        others[r, where[r]] = False
    assert np.all(grad[others] == 0) and np.all(hess[others] == 0)
    for r in range(3):
        z = [mpmath.mpf(v) for v in x[r]]
        S = sum(mpmath.exp(v - z[y[r]]) for v in z)
        p = [mpmath.exp(v - z[y[r]]) / S for v in z]
        assert float(value[r]) == pytest.approx(float(mpmath.log(S)), rel=1e-13)
        assert float(dense_value[r]) == pytest.approx(float(mpmath.log(S)), rel=1e-13)
        for c in where[r]:
            want = p[c] - (1 if c == y[r] else 0)
            assert float(grad[r, c]) == pytest.approx(float(want), rel=1e-13, abs=1e-300)
            assert float(hess[r, c]) == pytest.approx(float(p[c] * (1 - p[c])), rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("C", [10, 32, 64, 1000])
def test_tiny_float32_losses_keep_relative_precision(level, C):
    """float32 rows whose loss is log1p(T) with T = sum of exp(z_c - max) over the other
    classes down to about 4e-30: the row sums add four classes' terms in float32 before
    float64 (narrow tiles up to 32 classes, lanes of wide rows from 64), which must keep
    T's own relative precision however small it is (docs/contract.md: 2^-23 more relative
    error).  Against mpmath, to 1e-6 relative."""
    mpmath.mp.dps = 50
    rng = np.random.default_rng(7)
    gaps = [20.0, 40.0, 60.0, 68.0]                     # T from 5e-7 down to 4e-30
    x = np.zeros((len(gaps), C), np.float32)
    y = np.zeros(len(gaps), np.int64)
    for r, gap in enumerate(gaps):
        x[r] = -gap - rng.uniform(0, 4, C).astype(np.float32)
        y[r] = rng.integers(0, C)
        x[r, y[r]] = 0.0
    value = fastloss.CrossEntropy()(x, y, reduction="none")
    for r in range(len(gaps)):
        z = [mpmath.mpf(float(v)) for v in x[r]]
        T = sum(mpmath.exp(v) for c, v in enumerate(z) if c != y[r])
        assert 0 < float(T) < 1e-5
        assert float(value[r]) == pytest.approx(float(mpmath.log1p(T)), rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, "bfloat16"])
@pytest.mark.parametrize("C", [5, 10, 33, 70, 1000])
def test_value_alone_is_value_and_grads_value_bit_for_bit(level, dtype, C, rng):
    """The value of a call without gradient equals, bit for bit, the value that
    value_and_grad and the per-sample values return for the same softmax input: the row
    sums are the same whichever outputs are asked for (narrow and wide rows, labels with
    and without smoothing, probabilities, KL)."""
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        dtype = ml_dtypes.bfloat16
    x = (3 * rng.standard_normal((40, C))).astype(dtype)
    y = rng.integers(0, C, 40)
    p = softmax_rows(rng.standard_normal((40, C))).astype(np.float32 if dtype != np.float64
                                                          else np.float64)
    cases = [(fastloss.CrossEntropy(), y), (fastloss.CrossEntropy(label_smoothing=0.1), y),
             (fastloss.CrossEntropy(), p), (fastloss.KLDivergence(), p)]
    for loss, t in cases:
        for reduction in ("none", "sum"):
            alone = loss(x, t, reduction=reduction)
            with_grad, _ = loss.value_and_grad(x, t, reduction=reduction)
            np.testing.assert_array_equal(alone, with_grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_minus_infinity_masks_classes(level, dtype, rng):
    for C in (5, 60):
        x = rng.normal(size=(8, C)).astype(dtype)
        x[:, 1] = -np.inf
        x[3, 2:4] = -np.inf
        y = rng.integers(0, C, 8)
        y[y == 1] = 0
        y[3] = 0
        t = softmax_rows(np.where(np.isinf(x), -np.inf, rng.normal(size=x.shape))).astype(dtype)
        for loss, target in [(fastloss.CrossEntropy(), y), (fastloss.CrossEntropy(), t),
                             (fastloss.KLDivergence(), t)]:
            value, grad = loss.value_and_grad(x, target, reduction="none")
            assert np.all(np.isfinite(value))
            assert np.all(grad[np.isinf(x)] == 0)
            _, hess = loss.grad_hess(x, target)
            assert np.all(hess[np.isinf(x)] == 0)
        masked = x.copy()
        keep = ~np.isinf(masked[0])
        np.testing.assert_allclose(fastloss.CrossEntropy()(x[:1], y[:1]),
                                   fastloss.CrossEntropy()(x[:1, keep],
                                                           np.searchsorted(np.flatnonzero(keep), y[:1])),
                                   rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("C", [4, 100])
def test_nan_in_a_row_gives_nan_for_that_row_only(level, C, rng):
    x = rng.normal(size=(6, C))
    x[2, 1] = np.nan
    x[4, C - 1] = np.inf                                # inf - inf: NaN, as in PyTorch
    y = rng.integers(0, C, 6)
    t = softmax_rows(rng.normal(size=(6, C)))
    for loss, target in [(fastloss.CrossEntropy(), y), (fastloss.CrossEntropy(), t),
                         (fastloss.KLDivergence(), t)]:
        value, grad = loss.value_and_grad(x, target, reduction="none")
        assert np.isnan(value[2]) and np.all(np.isnan(grad[2]))
        assert np.isnan(value[4])
        rest = (np.arange(6) != 2) & (np.arange(6) != 4)
        assert np.all(np.isfinite(value[rest])) and np.all(np.isfinite(grad[rest]))
        assert np.isnan(loss(x, target))


@pytest.mark.parametrize("C", [4, 100])
def test_all_rows_ignored(C, rng):
    x = rng.normal(size=(5, C))
    x[0, 0] = np.nan                                     # ignored rows never leak NaN
    y = np.full(5, -100)
    loss = fastloss.CrossEntropy()
    value, grad = loss.value_and_grad(x, y)
    assert value == 0.0 and np.all(grad == 0)
    assert loss(x, y, reduction="sum") == 0.0
    grad, hess = loss.grad_hess(x, y, reduction="mean")
    assert np.all(grad == 0) and np.all(hess == 0)


# ------------------------------------------------------------------ binary cross-entropy ----

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pos_weight", [None, "scalar", "per-class"])
def test_bce_with_logits_against_reference(level, dtype, pos_weight, rng):
    x = (rng.normal(size=(40, 6)) * 4).astype(dtype)
    t = rng.uniform(size=(40, 6)).astype(dtype)
    pw = {None: None, "scalar": 2.5, "per-class": rng.uniform(0.2, 3, 6)}[pos_weight]
    sw = rng.uniform(0, 2, 40)
    loss = fastloss.BinaryCrossEntropy(pos_weight=pw)
    l, g, h = ref.bce_logits(x.astype(np.float64), t.astype(np.float64), 1.0 if pw is None else pw)
    check(loss, x, t, lambda red: ref.reduce(l, g, h, red, sw[:, None]), dtype, sw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [True, False])
def test_bce_pos_weight_of_one_gives_the_unweighted_bits(level, dtype, from_logits, rng):
    # pos_weight runs the weighted tile loops, no pos_weight the unweighted ones (1 as a
    # constant): the same arithmetic, so the same bits
    x = (rng.normal(size=(50, 7)) * 4).astype(dtype)
    if not from_logits:
        x = 1 / (1 + np.exp(-x))
    t = rng.uniform(size=(50, 7)).astype(dtype)
    plain = fastloss.BinaryCrossEntropy(from_logits=from_logits)
    for pw in (1.0, np.ones(7)):
        loss = fastloss.BinaryCrossEntropy(from_logits=from_logits, pos_weight=pw)
        for a, b in zip(plain.grad_hess(x, t), loss.grad_hess(x, t)):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(plain.value_and_grad(x, t, reduction="none"),
                        loss.value_and_grad(x, t, reduction="none")):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(plain(x, t, reduction="none"),
                                      loss(x, t, reduction="none"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_from_probabilities_against_reference(level, dtype, rng):
    p = rng.uniform(size=(30, 5))
    p[0] = [0.0, 1.0, 1e-30, 1 - 1e-9, 0.5]              # exact 0 and 1, and near them
    p = p.astype(dtype)
    t = rng.uniform(size=(30, 5)).astype(dtype)
    t[0] = [1.0, 0.0, 1.0, 0.0, 0.25]
    loss = fastloss.BinaryCrossEntropy(from_logits=False, pos_weight=1.7)
    l, g, h = ref.bce_probs(p.astype(np.float64), t.astype(np.float64), 1.7)
    check(loss, p, t, lambda red: ref.reduce(l, g, h, red), dtype)
    value, grad = loss.value_and_grad(p, t, reduction="none")
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))


@needs_torch
def test_bce_against_torch(rng):
    x = rng.normal(size=(25, 4)) * 3
    t = rng.uniform(size=(25, 4))
    pw = rng.uniform(0.5, 2, 4)
    xt = torch.tensor(x, requires_grad=True)
    want = F.binary_cross_entropy_with_logits(xt, torch.tensor(t), pos_weight=torch.tensor(pw))
    want.backward()
    value, grad = fastloss.BinaryCrossEntropy(pos_weight=pw).value_and_grad(x, t)
    np.testing.assert_allclose(value, want.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-17)
    p = rng.uniform(0.01, 0.99, size=(25, 4))
    pt = torch.tensor(p, requires_grad=True)
    want = F.binary_cross_entropy(pt, torch.tensor(t))
    want.backward()
    value, grad = fastloss.BinaryCrossEntropy(from_logits=False).value_and_grad(p, t)
    np.testing.assert_allclose(value, want.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-12)


def test_bce_multi_label_example():
    logits = np.array([[3.0, -2.0, 0.5], [-1.0, 4.0, 2.0]])       # cat, car, rhino tags
    labels = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    want = np.mean(labels * np.logaddexp(0, -logits) + (1 - labels) * np.logaddexp(0, logits))
    assert fastloss.BinaryCrossEntropy()(logits, labels) == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_logits_extremes_against_mpmath(level, dtype):
    mpmath.mp.dps = 50
    x = np.array([-1e30, -80.0, -30.0, -1e-8, 0.0, 2e-9, 35.0, 80.0, 1e30]).astype(dtype)
    for target in (0.0, 1.0, 0.3):
        t = np.full_like(x, target)
        value, grad = fastloss.BinaryCrossEntropy().value_and_grad(x, t, reduction="none")
        _, hess = fastloss.BinaryCrossEntropy().grad_hess(x, t, reduction="none")
        for i, xi in enumerate(x.astype(np.float64)):
            z = mpmath.mpf(xi)
            s = 1 / (1 + mpmath.exp(-z))
            want = (target * mpmath.log1p(mpmath.exp(-z)) + (1 - target) * mpmath.log1p(mpmath.exp(z)),
                    s - target, s * (1 - s))
            for got, w in zip((value[i], grad[i], hess[i]), want):
                w = float(dtype(float(w)))
                assert np.isfinite(got)
                assert float(got) == pytest.approx(w, rel=2e-6 if dtype == np.float32 else 1e-12,
                                                   abs=float(np.finfo(dtype).smallest_subnormal) * 4)


# ------------------------------------------------------------------ KL divergence ----

@pytest.mark.parametrize("C", CLASS_COUNTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_from_logits_against_reference(level, C, dtype, log_target, rng):
    x = (rng.normal(size=(60, C)) * 2).astype(dtype)
    t = rng.uniform(size=(60, C))
    t[:, ::3] = 0                                           # zero targets: 0 log 0 = 0
    t /= np.maximum(t.sum(1, keepdims=True), 1e-300)
    t = t.astype(dtype)
    with np.errstate(divide="ignore"):
        target = np.log(t) if log_target else t
    sw = rng.uniform(0, 2, 60)
    l, g, h = ref.kl_logits(x.astype(np.float64), t.astype(np.float64))
    check(fastloss.KLDivergence(log_target=log_target), x, target,
          lambda red: ref.reduce(l, g, h, red, sw, per_row=True), dtype, sw)


@needs_torch
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_against_torch_batchmean(log_target, rng):
    x = rng.normal(size=(12, 9))
    t = rng.dirichlet(np.ones(9), 12)
    target = np.log(t) if log_target else t
    xt = torch.tensor(x, requires_grad=True)
    want = F.kl_div(F.log_softmax(xt, -1), torch.tensor(target), reduction="batchmean",
                    log_target=log_target)
    want.backward()
    value, grad = fastloss.KLDivergence(log_target=log_target).value_and_grad(x, target)
    np.testing.assert_allclose(value, want.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-17)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kl_from_probabilities(level, dtype, rng):
    q = softmax_rows(rng.normal(size=(20, 8)) * 2)
    q[0, :2] = [0.0, 0.0]
    q = q.astype(dtype)
    t = rng.dirichlet(np.ones(8), 20)
    t[1, 3] = 0
    t = t.astype(dtype)
    l, g, h = ref.kl_probs(q.astype(np.float64), t.astype(np.float64))
    check(fastloss.KLDivergence(from_logits=False), q, t,
          lambda red: ref.reduce(l, g, h, red, per_row=True), dtype)


# ------------------------------------------------------------------ derivatives ----

@pytest.mark.parametrize("case", ["ce", "ce_smooth_weighted", "ce_probs", "kl", "kl_log",
                                  "bce", "bce_probs", "ce_from_probs"])
def test_gradients_are_derivatives_of_the_value(case, rng):
    x = rng.normal(size=(4, 5))
    y = np.array([0, 3, 4, 1])
    t = rng.dirichlet(np.ones(5), 4)
    loss, target = {
        "ce": (fastloss.CrossEntropy(), y),
        "ce_smooth_weighted": (fastloss.CrossEntropy(class_weight=[1, 2, 0.5, 1, 3],
                                                     label_smoothing=0.2), y),
        "ce_probs": (fastloss.CrossEntropy(), t),
        "kl": (fastloss.KLDivergence(), t),
        "kl_log": (fastloss.KLDivergence(log_target=True), np.log(t)),
        "bce": (fastloss.BinaryCrossEntropy(pos_weight=[1, 2, 3, 0.5, 1]), t),
        "bce_probs": (fastloss.BinaryCrossEntropy(from_logits=False), t),
        "ce_from_probs": (fastloss.CrossEntropy(from_logits=False, label_smoothing=0.1), y),
    }[case]
    if "probs" in case and case != "ce_probs":
        x = rng.uniform(0.2, 0.8, size=(4, 5))
    w = np.array([1.0, 0.5, 2.0, 1.5])
    f = lambda z: loss(z, target, sample_weight=w)
    _, grad = loss.value_and_grad(x, target, sample_weight=w)
    np.testing.assert_allclose(grad, ref.numeric_gradient(f, x, 1e-4), rtol=1e-7, atol=1e-10)
    if case in ("ce", "ce_probs", "kl", "bce", "bce_probs"):
        # the Hessian diagonal is the derivative of the gradient
        _, hess = loss.grad_hess(x, target, sample_weight=w, reduction="sum")
        for i in range(x.size):
            e = np.zeros_like(x)
            e.flat[i] = 1e-5
            gp = loss.grad_hess(x + e, target, sample_weight=w, reduction="sum")[0].flat[i]
            gm = loss.grad_hess(x - e, target, sample_weight=w, reduction="sum")[0].flat[i]
            assert hess.flat[i] == pytest.approx((gp - gm) / 2e-5, rel=1e-6, abs=1e-9)


# ------------------------------------------------------------------ argument checks ----

def test_label_out_of_range_names_value_and_position(rng):
    x = rng.normal(size=(2, 3, 4))
    y = np.zeros((2, 3), dtype=int)
    y[1, 2] = 7
    with pytest.raises(ValueError, match=r"target\[1, 2\] = 7 is not a class index in \[0, 4\)"):
        fastloss.CrossEntropy()(x, y)
    y[1, 2] = -1
    with pytest.raises(ValueError, match=r"target\[1, 2\] = -1"):
        fastloss.CrossEntropy()(x, y)
    y = np.zeros((2, 3), dtype=np.uint64)
    y[0, 1] = 2**64 - 1
    with pytest.raises(ValueError, match=r"target\[0, 1\] = 18446744073709551615"):
        fastloss.CrossEntropy()(x, y)


def test_one_loss_object_serves_every_class_count_dtype_and_layout(rng):
    """A loss keeps what it derives from its parameters per dtype (class weights, the
    class count): reused on other class counts, dtypes and layouts, every call is right."""
    ce, kl = fastloss.CrossEntropy(label_smoothing=0.1), fastloss.KLDivergence()
    for C, dtype, transposed in [(3, np.float64, False), (5, np.float32, False),
                                 (3, np.float32, True), (7, np.float64, True)]:
        x = rng.normal(size=(6, C)).astype(dtype)
        y = rng.integers(0, C, 6)
        t = softmax_rows(rng.normal(size=(6, C))).astype(dtype)
        if transposed:      # the same rows, stored column by column (not C-contiguous)
            x, t = np.asfortranarray(x), np.asfortranarray(t)
        x64 = x.astype(np.float64)
        eps = 0.1
        a = (1 - eps) * np.eye(C)[y] + eps / C
        assert_value(ce(x, y, reduction="sum"), -(a * ref.log_softmax(x64)).sum(), dtype)
        assert_grad(ce.value_and_grad(x, y, reduction="sum")[1],
                    softmax_rows(x64) - a, dtype)
        t64 = t.astype(np.float64)
        assert_value(kl(x, t, reduction="sum"),
                     (t64 * (np.log(t64) - ref.log_softmax(x64))).sum(), dtype)
    weighted = fastloss.CrossEntropy(class_weight=[1.0, 2.0, 3.0])
    x = rng.normal(size=(4, 3))
    weighted(x, np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match=r"class_weight has shape \(3,\) but the input has 4"):
        weighted(rng.normal(size=(4, 4)), np.array([0, 1, 2, 3]))


def test_float_labels_are_rejected(rng):
    with pytest.raises(ValueError, match="class indices must be integers"):
        fastloss.CrossEntropy()(rng.normal(size=(3, 4)), np.array([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(class_weight=[1.0, 2.0]), r"class_weight has shape \(2,\) but the input has 4 classes"),
    (dict(class_weight=[[1.0] * 4]), r"class_weight must have shape \(C,\)"),
    (dict(class_weight=[1.0, -1.0, 1.0, 1.0]), "finite and >= 0"),
    (dict(label_smoothing=1.5), r"label_smoothing must be in \[0, 1\]"),
    (dict(label_smoothing=-0.1), r"label_smoothing must be in \[0, 1\]"),
    (dict(ignore_index=1.5), "ignore_index must be an integer"),
])
def test_cross_entropy_options_are_checked(kwargs, match, rng):
    with pytest.raises(ValueError, match=match):
        fastloss.CrossEntropy(**kwargs)(rng.normal(size=(3, 4)), np.array([0, 1, 2]))


def test_target_shapes_are_checked(rng):
    x = rng.normal(size=(3, 4))
    with pytest.raises(ValueError, match=r"target shape \(3, 5\) matches neither"):
        fastloss.CrossEntropy()(x, np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"target shape \(3, 5\) does not match input shape \(3, 4\)"):
        fastloss.KLDivergence()(x, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="pos_weight"):
        fastloss.BinaryCrossEntropy(pos_weight=[1.0, 2.0])(x, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="pos_weight"):
        fastloss.BinaryCrossEntropy(pos_weight=[[1.0]])
    with pytest.raises(ValueError, match="at least one class"):
        fastloss.CrossEntropy()(np.zeros((3, 0)), np.zeros(3, dtype=int))


# ------------------------------------------------------------------ KLDiv (elementwise) ----

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kl_div_zero_targets_nan_and_infinities(level, dtype):
    """t = 0 gives a 0 term and gradient -0, also for x = -inf (PyTorch: NaN); NaN in x or
    t, and t < 0, give NaN; log_target = -inf is a zero target."""
    x = np.array([-np.inf, 0.5, np.nan, -1.0, 0.3, -2.0], dtype=dtype)
    t = np.array([0.0, 0.0, 0.0, np.nan, -0.5, 0.25], dtype=dtype)
    v, g = fastloss.KLDiv().value_and_grad(x, t, reduction="none")
    assert v[0] == 0 and v[1] == 0
    assert np.isnan(v[2]) and np.isnan(v[3]) and np.isnan(v[4])
    np.testing.assert_allclose(v[5], 0.25 * (np.log(0.25) + 2.0), rtol=1e-6)
    np.testing.assert_array_equal(g[[0, 1, 2, 4, 5]], -t[[0, 1, 2, 4, 5]])
    lt = np.array([-np.inf, -np.inf, np.nan, np.log(0.25)], dtype=dtype)
    v, g = fastloss.KLDiv(log_target=True).value_and_grad(x[[0, 1, 2, 5]], lt,
                                                          reduction="none")
    assert v[0] == 0 and v[1] == 0 and np.isnan(v[2])
    np.testing.assert_allclose(v[3], 0.25 * (np.log(0.25) + 2.0), rtol=1e-6)
    assert g[0] == 0 and g[1] == 0


def test_kl_div_float32_terms_keep_full_precision_near_the_optimum(level, rng):
    """log t - x cancels where q is close to t: float32 input is evaluated in float64."""
    t = rng.uniform(0.01, 1, 5000)
    x = (np.log(t) + rng.normal(scale=1e-4, size=t.size)).astype(np.float32)
    t32 = t.astype(np.float32)
    exact = t32.astype(float) * (np.log(t32.astype(float)) - x.astype(float))
    got = fastloss.KLDiv()(x, t32, reduction="none")
    np.testing.assert_allclose(got, exact, rtol=2 ** -23)


def test_kl_div_is_pytorch_kl_div_summed_over_classes(rng):
    """Summed over a row's classes it is the row's KL divergence: KLDivergence from
    probabilities (the same numbers, the other form)."""
    torch = pytest.importorskip("torch")
    q = rng.dirichlet(np.ones(7), 11)
    t = rng.dirichlet(np.ones(7), 11)
    per = fastloss.KLDiv()(np.log(q), t, reduction="none")
    np.testing.assert_allclose(per.sum(-1), fastloss.KLDivergence(from_logits=False)(
        q, t, reduction="none"), rtol=1e-12)
    want = torch.nn.functional.kl_div(torch.tensor(np.log(q)), torch.tensor(t),
                                      reduction="batchmean")
    np.testing.assert_allclose(fastloss.KLDiv()(np.log(q), t, reduction="sum") / 11,
                               want.item(), rtol=1e-12)
