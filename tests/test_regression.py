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
