"""Softmax losses with the classes on any axis (`axis`), PyTorch's (N, C, d1, ..., dk)
layout included, read in place; and the kernels' gradient written over the logits."""
import numpy as np
import pytest

import fastloss
from fastloss import _dispatch
from fastloss._kernels import cpu
from fastloss._loss import class_view
from conftest import assert_grad, assert_value


def classes_last(loss, x, t, axis, **kwargs):
    """The same loss computed with the classes moved to the last axis (a copy)."""
    xl = np.ascontiguousarray(np.moveaxis(x, axis, -1))
    tl = np.ascontiguousarray(np.moveaxis(t, axis, -1)) if t.shape == x.shape else t
    cls = type(loss)
    params = dict(loss.get_params(), axis=-1)
    value, grad = cls(**params).value_and_grad(xl, tl, **kwargs)
    return value, np.moveaxis(grad, -1, axis)


@pytest.mark.parametrize("C", [1, 3, 21, 32, 33, 150])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_segmentation_layout_matches_classes_last(level, C, dtype, reduction, rng):
    """(N, C, H, W) with axis=1, as PyTorch's CrossEntropyLoss takes it, equals the same
    data with the classes last (values and gradients, every reduction)."""
    x = (rng.normal(size=(2, C, 5, 7)) * 2).astype(dtype)
    y = rng.integers(0, C, (2, 5, 7))
    y[0, 1, :3] = -100
    w = rng.uniform(0.2, 2, 2)
    cw = rng.uniform(0.5, 2, C)
    loss = fastloss.CrossEntropy(axis=1, class_weight=cw, label_smoothing=0.1)
    value, grad = loss.value_and_grad(x, y, sample_weight=w, reduction=reduction)
    want_v, want_g = classes_last(loss, x, y, 1, sample_weight=w, reduction=reduction)
    assert grad.shape == x.shape and grad.flags.c_contiguous
    assert_value(value, want_v, dtype)
    assert_grad(grad, want_g, dtype)
    g2, h2 = loss.grad_hess(x, y, sample_weight=w, reduction=reduction)
    assert_grad(g2, want_g, dtype)


@pytest.mark.parametrize("kl", [False, True])
def test_dense_targets_on_a_middle_axis(level, kl, rng):
    x = rng.normal(size=(3, 4, 6, 2)) * 2
    t = rng.dirichlet(np.ones(4), (3, 6, 2))
    t = np.moveaxis(t, -1, 1)                       # classes on axis 1, not contiguous
    loss = fastloss.KLDivergence(axis=1) if kl else fastloss.CrossEntropy(axis=1)
    value, grad = loss.value_and_grad(x, t, reduction="none")
    want_v, want_g = classes_last(loss, x, t, 1, reduction="none")
    np.testing.assert_allclose(value, want_v, rtol=1e-13)
    np.testing.assert_allclose(grad, want_g, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
def test_any_axis(axis, rng):
    x = rng.normal(size=(5, 4, 3))
    loss = fastloss.CrossEntropy(axis=axis)
    C = x.shape[axis]
    y = rng.integers(0, C, x.shape[:axis % 3] + x.shape[axis % 3 + 1:])
    value, grad = loss.value_and_grad(x, y, reduction="none")
    want_v, want_g = classes_last(loss, x, y, axis % 3, reduction="none")
    np.testing.assert_allclose(value, want_v, rtol=1e-13)
    np.testing.assert_allclose(grad, want_g, rtol=1e-12, atol=1e-16)


def test_bad_axis_is_a_value_error(rng):
    with pytest.raises(ValueError, match="axis 3"):
        fastloss.CrossEntropy(axis=3)(rng.normal(size=(2, 3)), np.zeros(2, int))
    with pytest.raises(ValueError, match="axis"):
        fastloss.CrossEntropy(axis=1.5)


def test_the_segmentation_layout_is_read_in_place(rng):
    """No transposing copy: the kernels get views of the caller's (N, C, H, W) arrays, a
    non-contiguous class axis included."""
    x = rng.normal(size=(2, 21, 8, 8)).astype(np.float32)
    v = class_view(x, 1)
    assert v.shape == (2, 21, 64) and np.shares_memory(v, x)
    sliced = rng.normal(size=(2, 42, 8, 8))[:, ::2]          # every other class
    assert np.shares_memory(class_view(sliced, 1), sliced)
    last = rng.normal(size=(10, 7))
    assert np.shares_memory(class_view(last, 1), last)
    fortran = np.asfortranarray(last)                      # classes not contiguous: copied
    assert not np.shares_memory(class_view(fortran, 1), fortran)


@pytest.mark.parametrize("C", [4, 40, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_may_write_the_gradient_over_the_logits(level, C, dtype, rng):
    """Cross-entropy with labels from logits, the gradient written into the logits'
    memory (what the fused linear cross-entropy does with each block of logits), equals
    the gradient written elsewhere: every traversal reads a row before writing it."""
    x = (rng.normal(size=(300, C)) * 3).astype(dtype)
    y = rng.integers(0, C, 300)
    y[::7] = -100
    loss = fastloss.CrossEntropy(label_smoothing=0.1)
    value, grad = loss.value_and_grad(x, y, reduction="sum")
    kernels = _dispatch.kernels.softmax
    z = x.copy()
    view = class_view(z, 1)
    mode = cpu.MODES["value"] | cpu.MODES["grad"]
    total, bad = kernels.softmax(kernels.KINDS["ce_index"], mode, True, view, y, None, None,
                                 float(C), None, 1, None, view, None, 1.0, 0.1, -100, 2)
    assert bad == -1
    assert total == pytest.approx(value, rel=1e-12)
    np.testing.assert_array_equal(z, grad)
