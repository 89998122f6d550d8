"""MSE, MAE and Pseudo-Huber: values, gradients and Hessians against independent references
(NumPy float64 closed forms, PyTorch float64 autograd, finite differences, mpmath)."""
import mpmath
import numpy as np
import pytest

import fastloss
import reference as ref
from conftest import assert_grad, assert_value

LOSSES = {
    "mse": (fastloss.MSE(), ref.mse),
    "mae": (fastloss.MAE(), ref.mae),
    "pseudo_huber": (fastloss.PseudoHuber(), ref.pseudo_huber),
    "pseudo_huber_0.3": (fastloss.PseudoHuber(delta=0.3), lambda x, t: ref.pseudo_huber(x, t, 0.3)),
    "pseudo_huber_4": (fastloss.PseudoHuber(delta=4.0), lambda x, t: ref.pseudo_huber(x, t, 4.0)),
}
SHAPES = [(), (1,), (37,), (5, 7), (3, 4, 5), (2000,)]


def weights_for(kind, shape, rng):
    if kind is None or shape == ():
        return None
    if kind == "leading":
        return rng.uniform(0, 2, shape[:1])
    return rng.uniform(0, 2, shape)


def check_against_reference(loss, fn, x, t, w, dtype):
    x = x.astype(dtype)
    t = t.astype(dtype)
    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    l, g, h = fn(x64, t64)
    wref = ref.expand_weight(w, x.shape)
    for reduction in ("mean", "sum", "none"):
        value, grad, _ = ref.reduce(l, g, h, reduction, wref)
        got = loss(x, t, sample_weight=w, reduction=reduction)
        assert_value(got, value, dtype)
        v2, g2 = loss.value_and_grad(x, t, sample_weight=w, reduction=reduction)
        assert_value(v2, value, dtype)
        assert g2.dtype == dtype and g2.shape == x.shape
        assert_grad(g2, grad, dtype)
        if reduction == "none":
            assert isinstance(got, np.ndarray) and got.dtype == dtype and got.shape == x.shape
        else:
            assert type(got) is float
    for reduction in ("sum", "mean", "none"):
        _, grad, hess = ref.reduce(l, g, h, reduction, wref)
        g3, h3 = loss.grad_hess(x, t, sample_weight=w, reduction=reduction)
        assert_grad(g3, grad, dtype)
        assert_grad(h3, hess, dtype)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weights", [None, "leading", "full"])
def test_against_numpy_reference(level, name, dtype, shape, weights, rng):
    loss, fn = LOSSES[name]
    x = rng.normal(size=shape) * 3
    t = rng.normal(size=shape)
    check_against_reference(loss, fn, x, t, weights_for(weights, shape, rng), dtype)


@pytest.mark.parametrize("name", ["mse", "mae", "pseudo_huber_0.3"])
def test_against_torch_autograd(name, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    loss, _ = LOSSES[name]
    x = rng.normal(size=(64, 9)) * 2
    t = rng.normal(size=(64, 9))
    w = rng.uniform(0, 2, 64)
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(t)
    wt = torch.tensor(w)[:, None]
    if name == "mse":
        per = F.mse_loss(xt, tt, reduction="none")
    elif name == "mae":
        per = F.l1_loss(xt, tt, reduction="none")
    else:       # PyTorch has no Pseudo-Huber: its formula, differentiated by autograd
        d = 0.3
        per = d**2 * (torch.sqrt(1 + ((xt - tt) / d) ** 2) - 1)
    value_t = (wt * per).sum() / (wt.expand_as(per)).sum()
    value_t.backward()
    value, grad = loss.value_and_grad(x, t, sample_weight=w)
    np.testing.assert_allclose(value, value_t.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("loss", [fastloss.MSE(), fastloss.MAE(), fastloss.PseudoHuber(0.7)],
                         ids=repr)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_is_derivative_of_value(loss, reduction, rng):
    x = rng.normal(size=(4, 5))
    t = x + rng.choice([-1, 1], size=x.shape) * rng.uniform(0.1, 2, x.shape)   # away from kinks
    w = rng.uniform(0.5, 2, 4)
    f = lambda z: loss(z, t, sample_weight=w, reduction=reduction)
    _, grad = loss.value_and_grad(x, t, sample_weight=w, reduction=reduction)
    np.testing.assert_allclose(grad, ref.numeric_gradient(f, x, 1e-3), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("loss", [fastloss.MSE(), fastloss.PseudoHuber(0.7)], ids=repr)
def test_hessian_is_derivative_of_gradient(loss, rng):
    x = rng.normal(size=20)
    t = rng.normal(size=20)
    _, hess = loss.grad_hess(x, t)
    h = 1e-4
    g_plus = loss.grad_hess(x + h, t)[0]
    g_minus = loss.grad_hess(x - h, t)[0]
    np.testing.assert_allclose(hess, (g_plus - g_minus) / (2 * h), rtol=1e-6, atol=1e-9)


def test_mae_gradient_at_the_kink_is_zero(level):
    for dtype in (np.float32, np.float64):
        x = np.array([1.0, -2.0, 0.0, 3.5], dtype=dtype)
        _, grad = fastloss.MAE().value_and_grad(x, x.copy(), reduction="sum")
        assert np.all(grad == 0)
        _, grad = fastloss.MAE().value_and_grad(x, x + 1, reduction="sum")
        assert np.all(grad == -1)


def test_mae_hessian_is_the_unit_surrogate():
    x = np.arange(6.0)
    w = np.array([0.5, 2, 0, 1, 1, 3])
    _, hess = fastloss.MAE().grad_hess(x, x[::-1].copy(), sample_weight=w)
    np.testing.assert_array_equal(hess, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pseudo_huber_extremes(level, dtype):
    """Quadratic for tiny residuals, linear with slope delta for huge ones, never inf/NaN."""
    delta = 2.0
    tiny = 1e-15 if dtype == np.float32 else 1e-140       # losses stay normal numbers
    r = np.array([tiny, -1e-7, 0.5, 1e8, -1e30, 1e37 if dtype == np.float32 else 1e300])
    x = r.astype(dtype)
    values = fastloss.PseudoHuber(delta)(x, np.zeros_like(x), reduction="none")
    grad = fastloss.PseudoHuber(delta).value_and_grad(x, np.zeros_like(x), reduction="none")[1]
    _, hess = fastloss.PseudoHuber(delta).grad_hess(x, np.zeros_like(x), reduction="none")
    mpmath.mp.dps = 50
    for i, ri in enumerate(x.astype(np.float64)):
        a = mpmath.mpf(ri) / delta
        q = mpmath.sqrt(1 + a * a)
        exact = (delta**2 * a * a / (q + 1), mpmath.mpf(ri) / q, q**-3)   # = delta^2 (q - 1)
        for got, want in zip((values[i], grad[i], hess[i]), exact):
            assert np.isfinite(got)
            want = float(dtype(float(want)))        # the exact value, rounded to the dtype
            assert float(got) == pytest.approx(want, rel=1e-6 if dtype == np.float32 else 1e-12,
                                               abs=float(2 * np.finfo(dtype).smallest_subnormal))


def test_float32_accumulates_in_float64_near_a_large_offset():
    """10^7 float32 elements near 1e4: a float32 running sum would lose ~3 digits."""
    rng = np.random.default_rng(7)
    n = 10**7
    t = np.full(n, 1e4, dtype=np.float32)
    x = (t + rng.uniform(0.5, 1.5, n).astype(np.float32)).astype(np.float32)
    r = x.astype(np.float64) - t.astype(np.float64)
    np.testing.assert_allclose(fastloss.MSE()(x, t), np.mean(r * r), rtol=1e-6)
    np.testing.assert_allclose(fastloss.MAE()(x, t, reduction="sum"), np.sum(np.abs(r)), rtol=1e-6)
    big = np.full(n, 3e3, dtype=np.float32)                      # every loss is 9e6
    np.testing.assert_allclose(fastloss.MSE()(big, np.zeros_like(big), reduction="sum"),
                               9e6 * n, rtol=1e-7)


def test_nan_propagates_to_value_and_that_element(level):
    x = np.array([1.0, np.nan, 3.0])
    t = np.zeros(3)
    for loss in (fastloss.MSE(), fastloss.MAE(), fastloss.PseudoHuber()):
        assert np.isnan(loss(x, t))
        value, grad = loss.value_and_grad(x, t, reduction="none")
        assert np.isnan(value[1]) and np.isnan(grad[1])
        assert np.all(np.isfinite(value[[0, 2]])) and np.all(np.isfinite(grad[[0, 2]]))
