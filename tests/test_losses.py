"""Every loss of the table (fastloss.LOSSES), with each parameter example its row declares,
against independent references: the NumPy reference (fastloss.bench.reference), PyTorch
float64 autograd, and finite differences of its own value and gradient.

Nothing here names a loss: a new row of the table is tested by these as soon as it and its
reference exist.  Edge cases of particular losses are in test_regression.py and
test_classification.py.
"""
import numpy as np
import pytest

from conftest import (LOSS_INSTANCES, assert_grad, assert_value, input_for, is_rowwise,
                      sample_shape, target_for)
from fastloss.bench import reference as ref

POINTWISE_SHAPES = [(), (1,), (37,), (5, 7), (3, 4, 5), (2000,)]
ROW_SHAPES = [(1, 3), (37, 5), (6, 40), (3, 4, 5), (2, 1, 33)]


def shapes_for(loss):
    return ROW_SHAPES if is_rowwise(loss) else POINTWISE_SHAPES


def reference_parts(loss, x, t):
    """The reference's (loss, grad, hess, denom) in float64 for the loss's parameters."""
    x64 = np.asarray(x, np.float64)
    t = np.asarray(t)
    t64 = t if t.dtype.kind in "iu" else t.astype(np.float64)
    return ref.by_name(loss.name)(x64, t64, **loss.get_params())


def weights_for(kind, shape, rng):
    if kind is None or shape == ():
        return None
    if kind == "leading":
        return rng.uniform(0, 2, shape[:1])
    return rng.uniform(0, 2, shape)


@pytest.mark.parametrize("loss", LOSS_INSTANCES, ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weights", [None, "leading", "full"])
def test_against_numpy_reference(level, loss, dtype, weights, rng):
    for shape in shapes_for(loss):
        x = input_for(loss, shape, rng, dtype)
        for labels in ((True, False) if loss.target == "labels or probabilities" else (True,)):
            t = target_for(loss, x, rng, labels=labels)
            sshape = sample_shape(loss, shape)
            w = weights_for(weights, sshape, rng)
            l, g, h, denom = reference_parts(loss, x, t)
            wref = ref.expand_weight(w, sshape)
            per_row = is_rowwise(loss)
            cancels = per_row and t.shape == x.shape     # dense targets: see assert_value
            for reduction in ("mean", "sum", "none"):
                value, grad, hess = ref.reduce(l, g, h, reduction, wref, denom, per_row,
                                               getattr(loss, "axis", -1))
                got = loss(x, t, sample_weight=w, reduction=reduction)
                assert_value(got, value, dtype, cancels)
                v2, g2 = loss.value_and_grad(x, t, sample_weight=w, reduction=reduction)
                assert_value(v2, value, dtype, cancels)
                assert g2.dtype == dtype and g2.shape == x.shape
                assert_grad(g2, grad, dtype)
                g3, h3 = loss.grad_hess(x, t, sample_weight=w, reduction=reduction)
                assert_grad(g3, grad, dtype)
                assert_grad(h3, hess, dtype)
                if reduction == "none":
                    assert isinstance(got, np.ndarray) and got.shape == sshape
                    assert got.dtype == dtype
                else:
                    assert type(got) is float


@pytest.mark.parametrize("loss", LOSS_INSTANCES, ids=repr)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_against_torch_autograd(loss, reduction, rng):
    """Value and gradient against PyTorch float64 autograd of the per-sample losses (the
    reference's PyTorch form), with sample weights, to the contract's 1e-12."""
    torch = pytest.importorskip("torch")
    torch_loss = ref.torch_by_name(loss.name)
    shape = (24, 7) if not is_rowwise(loss) else (24, 3, 7)
    x = input_for(loss, shape, rng)
    t = target_for(loss, x, rng)
    xt = torch.tensor(x, requires_grad=True)
    per = torch_loss(xt, torch.tensor(t), **loss.get_params()) if torch_loss else None
    if per is None:
        pytest.skip(f"no PyTorch form of {loss!r}")
    sshape = sample_shape(loss, shape)
    w = rng.uniform(0, 2, sshape[:1])
    wt = torch.tensor(ref.expand_weight(w, sshape))
    denom = reference_parts(loss, x, t)[3]
    dt = torch.ones(sshape, dtype=torch.float64) if denom is None else torch.tensor(denom)
    if reduction == "mean":
        want = (wt * per).sum() / (wt * dt).sum()
    elif reduction == "sum":
        want = (wt * per).sum()
    else:
        want = wt * per
    want.sum().backward()
    value, grad = loss.value_and_grad(x, t, sample_weight=w, reduction=reduction)
    np.testing.assert_allclose(value, want.detach().numpy(), rtol=1e-12, atol=1e-300)
    assert_grad(grad, xt.grad.numpy(), np.float64)


@pytest.mark.parametrize("loss", LOSS_INSTANCES, ids=repr)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_is_the_derivative_of_the_value(loss, reduction, rng):
    """4th-order central differences of the loss's own value (float64)."""
    shape = (4, 5)
    x = input_for(loss, shape, rng, scale=1.0)
    t = target_for(loss, x, rng)
    if not is_rowwise(loss) and loss.target == "real":
        # away from kinks (MAE at 0, Huber at +-delta): residuals of 0.1 .. 0.4 in size
        x = t + rng.choice([-1, 1], size=shape) * rng.uniform(0.1, 0.4, shape)
    w = rng.uniform(0.5, 2, sample_shape(loss, shape)[:1])
    f = lambda z: loss(z, t, sample_weight=w, reduction=reduction)
    _, grad = loss.value_and_grad(x, t, sample_weight=w, reduction=reduction)
    h = 1e-4 if getattr(loss, "from_logits", True) else 1e-6
    np.testing.assert_allclose(grad, ref.numeric_gradient(f, x, h), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("loss", [lo for lo in LOSS_INSTANCES if lo.hessian == "exact"],
                         ids=repr)
def test_hessian_is_the_derivative_of_the_gradient(loss, rng):
    """Central differences of the gradient, one class (or element) at a time."""
    shape = (6, 5)
    x = input_for(loss, shape, rng, scale=1.0)
    t = target_for(loss, x, rng)
    if not is_rowwise(loss) and loss.target == "real":
        x = t + rng.choice([-1, 1], size=shape) * rng.uniform(0.1, 0.4, shape)
    _, hess = loss.grad_hess(x, t)
    h = 1e-5 if getattr(loss, "from_logits", True) else 1e-7
    numeric = np.empty_like(x)
    axis = loss.axis % x.ndim if is_rowwise(loss) else -1
    n = x.shape[axis] if is_rowwise(loss) else 1          # one class at a time
    for c in range(n):
        at = [slice(None)] * x.ndim
        if is_rowwise(loss):
            at[axis] = c
        at = tuple(at)
        e = np.zeros_like(x)
        e[at] = h
        numeric[at] = ((loss.grad_hess(x + e, t)[0] - loss.grad_hess(x - e, t)[0])
                       / (2 * h))[at]
    np.testing.assert_allclose(hess, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("loss", LOSS_INSTANCES, ids=repr)
def test_float32_agrees_with_float64(loss, rng):
    x = input_for(loss, (300, 9), rng)
    t = target_for(loss, x, rng)
    x32 = x.astype(np.float32)
    t32 = t.astype(np.float32) if t.dtype.kind == "f" else t
    v32, g32 = loss.value_and_grad(x32, t32)
    v64, g64 = loss.value_and_grad(x32.astype(np.float64), t32 if t32.dtype.kind != "f"
                                   else t32.astype(np.float64))
    assert g32.dtype == np.float32
    assert_value(v32, v64, np.float32)
    assert_grad(g32, g64, np.float32)


@pytest.mark.parametrize("loss", LOSS_INSTANCES, ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_of_ones_give_the_unweighted_bits(level, loss, dtype, rng):
    # A call without weights runs loops of its own, with 1 for the weight (the pointwise
    # family: setup.py's generated tiles); weights of ones run the weighted loops.
    # Multiplying by 1 changes no bits, so both must agree exactly, in every output.
    shape = (6, 40) if is_rowwise(loss) else (3, 700)
    x = input_for(loss, shape, rng, dtype)
    t = target_for(loss, x, rng)
    ones = np.ones(sample_shape(loss, shape))
    for reduction in ("mean", "sum", "none"):
        plain = (loss(x, t, reduction=reduction),
                 *loss.value_and_grad(x, t, reduction=reduction),
                 *loss.grad_hess(x, t, reduction=reduction))
        weighted = (loss(x, t, sample_weight=ones, reduction=reduction),
                    *loss.value_and_grad(x, t, sample_weight=ones, reduction=reduction),
                    *loss.grad_hess(x, t, sample_weight=ones, reduction=reduction))
        for a, b in zip(plain, weighted):
            np.testing.assert_array_equal(a, b)
