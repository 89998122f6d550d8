"""Shared fixtures: every kernel build level this machine can run, and tolerances."""
import numpy as np
import pytest

import fastloss
from fastloss import _dispatch
from fastloss.bench import reference as ref

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
    """docs/contract.md: float64 to 1e-12 relative; float32 values to 1e-6 relative and gradients
    to 1e-6 absolute + 1e-5 relative."""
    if np.dtype(dtype) == np.float64:
        return dict(rtol=1e-12, atol=0), dict(rtol=1e-12, atol=1e-300)
    return dict(rtol=1e-6, atol=0), dict(rtol=1e-5, atol=1e-6)


def assert_value(actual, expected, dtype, cancels=False):
    """To the contract's tolerance.  `cancels`: per-sample values of a formula that cancels
    (a KL divergence or cross-entropy against probabilities, where the target is close to
    the softmax: sum a log t and sum a log q nearly equal) are held to the tolerance
    relative to the array's largest value, as the contract says; no float32 evaluation,
    PyTorch's included, keeps their relative precision otherwise."""
    vt, _ = tolerances(dtype)
    expected = np.asarray(expected)
    atol = vt["atol"]
    if cancels and expected.ndim and np.all(np.isfinite(expected)):
        atol = max(atol, vt["rtol"] * np.max(np.abs(expected), initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=vt["rtol"], atol=atol)


def assert_grad(actual, expected, dtype):
    """Elementwise to the docs/contract.md tolerance, except that an entry formed by cancellation
    (e.g. A p_c - a_c with p_c close to a_c / A) is held to the tolerance relative to the
    array's largest entry: no floating-point evaluation, PyTorch's included, keeps the
    relative precision of a difference of nearly equal terms."""
    _, gt = tolerances(dtype)
    expected = np.asarray(expected)
    scale = np.max(np.abs(expected), initial=0.0) if np.all(np.isfinite(expected)) else 0.0
    np.testing.assert_allclose(actual, expected, rtol=gt["rtol"],
                               atol=max(gt["atol"], gt["rtol"] * scale * 1e-2))


# ------------------------------------------------------------------ the loss table ----
# Every generic test runs over every row of fastloss's loss table (fastloss.LOSSES): the
# default instance, and one instance per parameter example the row declares.

def loss_instances():
    out = []
    for cls in fastloss.LOSSES:
        out.append(cls())
        for p in cls.params:
            for value in p.examples:
                out.append(cls(**{p.name: value}))
    return out


LOSS_INSTANCES = loss_instances()


def is_rowwise(loss):
    return loss.family == "softmax"


def sample_shape(loss, x_shape):
    """Shape of the per-sample losses for input shape x_shape."""
    if not is_rowwise(loss):
        return tuple(x_shape)
    axis = loss.axis % len(x_shape)
    return tuple(x_shape[:axis]) + tuple(x_shape[axis + 1:])


target_for = ref.example_target
input_for = ref.example_input
