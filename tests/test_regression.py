"""Edge cases of the regression losses (MAE's kink, Pseudo-Huber's extremes against mpmath,
float64 accumulation, NaN).  Every loss of the table is also checked against the NumPy and
PyTorch references and finite differences in test_losses.py."""
import mpmath
import numpy as np
import pytest

import fastloss


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


# ------------------------------------------------------------------ Huber and Poisson ----

@pytest.mark.parametrize("delta", [0.25, 1.0, 3.0])
def test_huber_matches_torch_at_the_joint_and_far_out(level, delta):
    """Exactly at |r| == delta, beside it, at 0 and at huge |r|: PyTorch's values and
    gradients to 1e-12 (here: bit for bit), and the Hessian's 1 inside, 0 outside."""
    torch = pytest.importorskip("torch")
    eps = np.spacing(delta)
    r = np.array([0.0, delta, -delta, delta - eps, delta + eps, -delta - eps, 0.5 * delta,
                  1e8, -1e300, 2.5 * delta])
    t = np.linspace(-2, 2, r.size)
    x = t + r
    r = x - t                                    # the residuals fastloss and PyTorch see
    xt = torch.tensor(x, requires_grad=True)
    want = torch.nn.functional.huber_loss(xt, torch.tensor(t), delta=delta, reduction="none")
    want.sum().backward()
    loss = fastloss.Huber(delta)
    value, grad = loss.value_and_grad(x, t, reduction="none")
    np.testing.assert_allclose(value, want.detach().numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=0)
    _, hess = loss.grad_hess(x, t, reduction="none")
    np.testing.assert_array_equal(hess, (np.abs(r) <= delta).astype(float))


def test_huber_nan_propagates(level):
    x = np.array([np.nan, 1.0])
    value, grad = fastloss.Huber().value_and_grad(x, np.zeros(2), reduction="none")
    _, hess = fastloss.Huber().grad_hess(x, np.zeros(2), reduction="none")
    assert np.isnan(value[0]) and np.isnan(grad[0]) and np.isnan(hess[0])
    assert np.isfinite(value[1]) and grad[1] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_poisson_nll_matches_torch_at_large_inputs(level, dtype):
    """Large and very negative log-rates, zero counts and big counts, against PyTorch in
    float64 (1e-12), and float32 rounded once from the exact value (1e-6)."""
    torch = pytest.importorskip("torch")
    x = np.array([-700.0, -50.0, -3.0, 0.0, 1e-8, 2.5, 40.0, 80.0, 88.0], dtype)
    t = np.array([0.0, 3.0, 0.0, 1.0, 5.0, 12.0, 1e17, 0.0, 1e30], dtype)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    want = torch.nn.functional.poisson_nll_loss(xt, torch.tensor(t.astype(np.float64)),
                                                log_input=True, full=False, reduction="none")
    want.sum().backward()
    value, grad = fastloss.PoissonNLL().value_and_grad(x, t, reduction="none")
    _, hess = fastloss.PoissonNLL().grad_hess(x, t, reduction="none")
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    exact = lambda a: np.asarray(a).astype(dtype)        # the exact value, in the dtype
    np.testing.assert_allclose(value, exact(want.detach().numpy()), rtol=rtol, atol=0)
    np.testing.assert_allclose(grad, exact(xt.grad.numpy()), rtol=rtol, atol=0)
    np.testing.assert_allclose(hess, exact(np.exp(x.astype(np.float64))), rtol=rtol, atol=0)


def test_poisson_nll_rejects_negative_counts_and_writes_nothing():
    x = np.zeros((3, 4))
    t = np.ones((3, 4))
    t[2, 1] = -1.0
    out = np.full(x.shape, 7.0)
    with pytest.raises(ValueError, match=r"target must be >= 0.*target\[2, 1\] = -1.0"):
        fastloss.PoissonNLL().value_and_grad(x, t, out=out)
    assert np.all(out == 7.0)
    with pytest.raises(ValueError, match="target must be >= 0"):
        fastloss.PoissonNLL()(x[0], -t[0, ::-1])          # strided
    with pytest.raises(ValueError, match="log_input"):
        fastloss.PoissonNLL(log_input=False)
