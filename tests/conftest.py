"""Shared fixtures: every kernel build level this machine can run, and tolerances."""
import numpy as np
import pytest

from fastloss import _dispatch

LEVELS = _dispatch.available()


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    """NumPy's OpenBLAS threads keep spinning after a matrix product and, on a machine with
    few cores, starve the kernels' OpenMP threads (a 0.1 ms call took 7 ms): the tests need
    no parallel BLAS."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(params=LEVELS)
def level(request):
    """Run the test once per instruction-set build (baseline, avx2, avx512 where the CPU
    has them), so that every dispatch path is checked on one machine."""
    with _dispatch.use(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def tolerances(dtype):
    """SPEC.md: float64 to 1e-12 relative; float32 values to 1e-6 relative and gradients
    to 1e-6 absolute + 1e-5 relative."""
    if np.dtype(dtype) == np.float64:
        return dict(rtol=1e-12, atol=0), dict(rtol=1e-12, atol=1e-300)
    return dict(rtol=1e-6, atol=0), dict(rtol=1e-5, atol=1e-6)


def assert_value(actual, expected, dtype):
    vt, _ = tolerances(dtype)
    np.testing.assert_allclose(actual, expected, **vt)


def assert_grad(actual, expected, dtype):
    """Elementwise to the SPEC.md tolerance, except that an entry formed by cancellation
    (e.g. A p_c - a_c with p_c close to a_c / A) is held to the tolerance relative to the
    array's largest entry: no floating-point evaluation, PyTorch's included, keeps the
    relative precision of a difference of nearly equal terms."""
    _, gt = tolerances(dtype)
    expected = np.asarray(expected)
    scale = np.max(np.abs(expected), initial=0.0) if np.all(np.isfinite(expected)) else 0.0
    np.testing.assert_allclose(actual, expected, rtol=gt["rtol"],
                               atol=max(gt["atol"], gt["rtol"] * scale * 1e-2))
