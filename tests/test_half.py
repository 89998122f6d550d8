"""Half-precision input (docs/contract.md, "Dtypes and layouts"): float16 and bfloat16
(ml_dtypes' NumPy dtype, or PyTorch tensors) are computed in float32 and give float32
results, within float32 tolerance of a float64 reference computed from the same rounded
inputs.  The kernels read the 2-byte values themselves, widening each tile (pointwise) or
block of rows (softmax from logits, classes last) as they read it: no float32 copy.  On
request (an `out` of the input's dtype) the gradient and Hessian are stored in that dtype,
each float32 result rounded once to nearest even, as the kernel writes it."""
import tracemalloc

import numpy as np
import pytest

import fastloss
from conftest import (LOSS_INSTANCES, assert_grad, assert_value, input_for, is_rowwise,
                      sample_shape, target_for)
from fastloss import _dispatch
from fastloss.bench import reference as ref

try:
    import ml_dtypes        # the README's test extras install it; the wheels' tests may not
except ImportError:
    ml_dtypes = None

HALVES = {"float16": np.float16,
          "bfloat16": ml_dtypes.bfloat16 if ml_dtypes else None}
HALF_PARAMS = ["float16", pytest.param("bfloat16", marks=pytest.mark.skipif(
    ml_dtypes is None, reason="ml_dtypes (NumPy's bfloat16) is not installed"))]


def _torch():
    return pytest.importorskip("torch")


def _reference(loss, x, t, w, reduction):
    """float64 reference of the rounded half-precision inputs."""
    x64 = np.asarray(x, np.float64)
    t64 = t if t.dtype.kind in "iu" else np.asarray(t, np.float64)
    l, g, h, denom = ref.by_name(loss.name)(x64, t64, **loss.get_params())
    sshape = sample_shape(loss, x.shape)
    return ref.reduce(l, g, h, reduction, ref.expand_weight(w, sshape), denom,
                      is_rowwise(loss), getattr(loss, "axis", -1))


@pytest.mark.parametrize("loss", LOSS_INSTANCES, ids=repr)
@pytest.mark.parametrize("half", HALF_PARAMS)
def test_half_inputs_against_float64_reference(level, loss, half, rng):
    shape = (37, 5) if is_rowwise(loss) else (2000,)
    x = input_for(loss, shape, rng, np.float32).astype(HALVES[half])
    t = target_for(loss, x.astype(np.float32), rng)
    if t.dtype.kind == "f":
        t = t.astype(HALVES[half])
    w = rng.uniform(0, 2, sample_shape(loss, shape)[:1])
    for reduction in ("mean", "sum", "none"):
        value, grad, hess = _reference(loss, x, t, w, reduction)
        got = loss(x, t, sample_weight=w, reduction=reduction)
        assert_value(got, value, np.float32, cancels=is_rowwise(loss) and t.shape == x.shape)
        v2, g2 = loss.value_and_grad(x, t, sample_weight=w, reduction=reduction)
        assert g2.dtype == np.float32 and g2.shape == x.shape
        assert_grad(g2, grad, np.float32)
        g3, h3 = loss.grad_hess(x, t, sample_weight=w, reduction=reduction)
        assert g3.dtype == h3.dtype == np.float32
        assert_grad(g3, grad, np.float32)
        assert_grad(h3, hess, np.float32)
        if reduction == "none":
            assert got.dtype == np.float32


@pytest.mark.parametrize("half", HALF_PARAMS)
def test_every_half_value_is_widened_exactly(level, half):
    """All 65,536 bit patterns (subnormals, infinities, NaN included) through the
    pointwise kernels' own conversion: MAE against 0 per element is |x| in float32."""
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    x = bits.view(HALVES[half])
    got = fastloss.MAE()(x, np.zeros(x.size, np.float32), reduction="none")
    expected = np.abs(x.astype(np.float32))
    np.testing.assert_array_equal(got, expected)          # NaN where expected is NaN
    strided = fastloss.MAE()(x[::3], np.zeros(x[::3].size, np.float32), reduction="none")
    np.testing.assert_array_equal(strided, expected[::3])


def _peak_bytes(fn):
    fn()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_half_inputs_are_read_without_a_float32_copy(rng):
    """The whole point: a 2-byte input is read as it is, not converted first (before,
    float16 became a float64 copy, 4x its bytes, and bfloat16 was refused)."""
    n = 1_000_000
    x = rng.normal(size=n).astype(np.float16)
    t = rng.normal(size=n).astype(np.float16)
    assert _peak_bytes(lambda: fastloss.MSE()(x, t)) < n     # a float32 copy: 4n bytes
    logits = rng.normal(size=(n // 1000, 1000)).astype(np.float16)
    y = rng.integers(0, 1000, n // 1000)
    assert _peak_bytes(lambda: fastloss.CrossEntropy()(logits, y)) < n


def _result_bits(v):
    """A result's bits: per-sample float32 values, or a reduction's Python float."""
    a = np.atleast_1d(np.asarray(v))
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("half", HALF_PARAMS)
def test_long_half_rows_read_as_they_are_give_the_float32_bits(level, half, rng):
    """Cross-entropy with labels over rows of 16384 classes and more (an LLM's vocabulary)
    reads the half-precision rows without a float32 copy (half.h, at avx2 and avx512):
    values, gradients and Hessians are bit for bit those of the same values in float32
    (the gradient in the input's dtype: float32's, rounded), with sample and class
    weights, ignored and wrong labels; around the 16384-class threshold (the probes'
    LAYOUT["HALF_WIDE_MIN"]; 0 where every row is widened first: the baseline level, and
    MSVC builds, which run the plain loops; held to the same sizes there), with rows that
    no vector width divides.  (With label smoothing the rows are widened first: also
    float32's bits.)"""
    probes = _dispatch.probes(level)
    wide = probes.LAYOUT["HALF_WIDE_MIN"]
    assert wide == (16384 if level != "baseline" and probes.VECTOR_OPERATORS else 0)
    wide = wide or 16384
    for C, n in ((wide - 1, 3), (wide, 5), (wide + 3627, 6), (40000, 2)):
        x = (rng.normal(size=(n, C)) * 4).astype(HALVES[half])
        x[0, 5] = x[0, 9] = np.max(x[0]) + 1           # a tie at the maximum
        x32 = x.astype(np.float32)
        y = rng.integers(0, C, n)
        y[0] = 9
        y[-1] = -100                                    # ignored
        w = rng.uniform(0, 2, n)
        cw = rng.uniform(0.5, 2, C)
        for loss in (fastloss.CrossEntropy(), fastloss.CrossEntropy(class_weight=cw)):
            for reduction in ("none", "sum", "mean"):
                got = _result_bits(loss(x, y, sample_weight=w, reduction=reduction))
                want = _result_bits(loss(x32, y, sample_weight=w, reduction=reduction))
                np.testing.assert_array_equal(got, want)
                v, g = loss.value_and_grad(x, y, sample_weight=w, reduction=reduction)
                v32, g32 = loss.value_and_grad(x32, y, sample_weight=w, reduction=reduction)
                np.testing.assert_array_equal(_result_bits(v), got)
                np.testing.assert_array_equal(g.view(np.uint32), g32.view(np.uint32))
            g, h = loss.grad_hess(x, y, sample_weight=w)
            g32, h32 = loss.grad_hess(x32, y, sample_weight=w)
            np.testing.assert_array_equal(g.view(np.uint32), g32.view(np.uint32))
            np.testing.assert_array_equal(h.view(np.uint32), h32.view(np.uint32))
            out = np.empty(x.shape, HALVES[half])           # the gradient in the input's dtype
            loss.value_and_grad(x, y, sample_weight=w, out=out)
            _, g32 = loss.value_and_grad(x32, y, sample_weight=w)
            np.testing.assert_array_equal(out.view(np.uint16),
                                          g32.astype(HALVES[half]).view(np.uint16))
        smooth = fastloss.CrossEntropy(label_smoothing=0.1)
        np.testing.assert_array_equal(_result_bits(smooth(x, y, reduction="none")),
                                      _result_bits(smooth(x32, y, reduction="none")))
        value, _, _ = _reference(fastloss.CrossEntropy(), x, y, None, "none")
        assert_value(fastloss.CrossEntropy()(x, y, reduction="none"), value, np.float32)
        bad = y.copy()
        bad[1] = C
        with pytest.raises(ValueError, match=rf"target\[1\] = {C} is not a class index"):
            fastloss.CrossEntropy()(x, bad)


@pytest.mark.parametrize("half", HALF_PARAMS)
@pytest.mark.parametrize("layout", ["classes_last", "strided_rows", "classes_first",
                                    "probabilities"])
def test_softmax_half_inputs_in_every_layout(level, half, layout, rng):
    """Classes last and contiguous: read natively, a block of rows at a time (rows of one
    block and of several, wide and narrow rows); other layouts are converted first.  All
    agree with the float64 reference of the rounded values."""
    for C in (3, 40, 5000):
        x = (rng.normal(size=(9, C)) * 3).astype(HALVES[half])
        y = rng.integers(0, C, 9)
        loss = fastloss.CrossEntropy(label_smoothing=0.1)
        if layout == "strided_rows":
            x = np.repeat(x, 2, axis=0)[::2]
        elif layout == "classes_first":
            x, loss = np.ascontiguousarray(x.T), fastloss.CrossEntropy(label_smoothing=0.1,
                                                                       axis=0)
        elif layout == "probabilities":
            p = np.exp(x.astype(np.float64))
            x = (p / p.sum(axis=1, keepdims=True)).astype(HALVES[half])
            loss = fastloss.CrossEntropy(from_logits=False)
        for reduction in ("sum", "none"):
            value, grad, _ = _reference(loss, x, y, None, reduction)
            v, g = loss.value_and_grad(x, y, reduction=reduction)
            assert_value(v, value, np.float32)
            assert g.dtype == np.float32 and g.shape == x.shape
            assert_grad(g, grad, np.float32)


@pytest.mark.parametrize("half", HALF_PARAMS)
def test_pytorch_half_tensors_are_read_as_numpy_halves_are(half, rng):
    torch = _torch()
    tdtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}[half]
    x32 = rng.normal(size=(300, 7)).astype(np.float32)
    t32 = rng.normal(size=(300, 7)).astype(np.float32)
    xh, th = x32.astype(HALVES[half]), t32.astype(HALVES[half])
    xt, tt = torch.from_numpy(x32).to(tdtype), torch.from_numpy(t32).to(tdtype)
    y = rng.integers(0, 7, 300)
    for loss, a, b in ((fastloss.PseudoHuber(), (xh, th), (xt, tt)),
                       (fastloss.BinaryCrossEntropy(), (xh, th), (xt, tt)),
                       (fastloss.CrossEntropy(), (xh, y), (xt, torch.from_numpy(y)))):
        va, ga = loss.value_and_grad(*a)
        vb, gb = loss.value_and_grad(*b)
        assert va == vb and gb.dtype == np.float32
        np.testing.assert_array_equal(ga, gb)
    strided = xt[:, ::2]                    # a view: read through DLPack with its strides
    np.testing.assert_array_equal(fastloss.MAE()(strided, strided, reduction="none"),
                                  np.zeros((300, 4), np.float32))


def test_half_inputs_keep_the_usual_checks(rng):
    x = rng.normal(size=10).astype(np.float16)
    with pytest.raises(ValueError, match=r"target shape \(9,\) does not match input shape"):
        fastloss.MSE()(x, np.zeros(9, np.float16))
    with pytest.raises(ValueError, match="target must be >= 0"):
        fastloss.PoissonNLL()(x, -np.ones(10, np.float16))
    out = np.full(10, 7, np.float64)
    with pytest.raises(ValueError, match=r"out cannot hold the gradient: it has dtype float64 "
                                         r"\(expected float32, or float16, the input's dtype\)"):
        fastloss.MSE().value_and_grad(x, x, out=out)
    assert (out == 7).all()                 # nothing written
    grad = np.full(10, np.nan, np.float32)
    fastloss.MSE().value_and_grad(x, x, out=grad)
    assert not grad.any()


# ------------------------------------------------- the gradient in the input's dtype ----

def _bits(a):
    return np.asarray(a).view(np.uint16)


def _rounded(a, half):
    """NumPy's (ml_dtypes') rounding of float32 results to the half dtype (to infinity
    past its range, as IEEE 754 rounding does)."""
    with np.errstate(over="ignore"):
        return _bits(np.asarray(a).astype(HALVES[half]))


def _half_out(x, half, pair=False):
    make = lambda: np.full(x.shape, 7, HALVES[half])     # noqa: E731
    return (make(), make()) if pair else make()


@pytest.mark.parametrize("loss", LOSS_INSTANCES, ids=repr)
@pytest.mark.parametrize("half", HALF_PARAMS)
def test_gradient_in_the_input_dtype_on_request(level, loss, half, rng):
    """An `out` of the input's half dtype gets the float32 gradient (and Hessian) rounded
    once to nearest even: the same bits as NumPy's (ml_dtypes') own rounding of the float32
    results, for every loss, in tiles, narrow and wide rows and classes on another axis."""
    shapes = [(37, 5), (9, 40), (3, 5000)] if is_rowwise(loss) else [(2000,), (3, 300)]
    for shape in shapes:
        x = (input_for(loss, shape, rng, np.float32) * 3).astype(HALVES[half])
        t = target_for(loss, x.astype(np.float32), rng)
        if t.dtype.kind == "f":
            t = t.astype(HALVES[half])
        w = rng.uniform(0, 2, sample_shape(loss, shape)[:1])
        for reduction in ("mean", "none"):
            v32, g32 = loss.value_and_grad(x, t, sample_weight=w, reduction=reduction)
            out = _half_out(x, half)
            v, g = loss.value_and_grad(x, t, sample_weight=w, reduction=reduction, out=out)
            assert g is out and g.dtype == HALVES[half]
            np.testing.assert_array_equal(v, v32)
            np.testing.assert_array_equal(_bits(g), _rounded(g32, half))
            gh32 = loss.grad_hess(x, t, sample_weight=w, reduction=reduction)
            outs = _half_out(x, half, pair=True)
            gh = loss.grad_hess(x, t, sample_weight=w, reduction=reduction, out=outs)
            assert gh[0] is outs[0] and gh[1] is outs[1]
            for got, want in zip(gh, gh32):
                np.testing.assert_array_equal(_bits(got), _rounded(want, half))


@pytest.mark.parametrize("half", HALF_PARAMS)
@pytest.mark.parametrize("layout", ["classes_first", "strided_rows", "probabilities"])
def test_softmax_half_gradients_in_other_layouts(level, half, layout, rng):
    """Inputs the kernels do not read natively (converted to float32 first) still give a
    gradient in their dtype on request, laid out as the input."""
    x = (rng.normal(size=(50, 7)) * 3).astype(HALVES[half])
    y = rng.integers(0, 7, 50)
    loss = fastloss.CrossEntropy(label_smoothing=0.1)
    if layout == "classes_first":
        x, loss = np.ascontiguousarray(x.T), fastloss.CrossEntropy(label_smoothing=0.1, axis=0)
    elif layout == "strided_rows":
        x = np.repeat(x, 2, axis=0)[::2]
    else:
        p = np.exp(x.astype(np.float64))
        x = (p / p.sum(axis=1, keepdims=True)).astype(HALVES[half])
        loss = fastloss.CrossEntropy(from_logits=False)
    _, g32 = loss.value_and_grad(x, y)
    out = np.empty(x.shape, HALVES[half])
    _, g = loss.value_and_grad(x, y, out=out)
    np.testing.assert_array_equal(_bits(g), _rounded(g32, half))


def _rounding_boundaries(half):
    """Positive float32 values at every rounding boundary of the half dtype: each finite
    half value, the midpoint to the next (a tie) and the float32 values either side of it,
    and values past the largest finite one."""
    dtype = HALVES[half]
    bits = np.arange(0x7c00 if half == "float16" else 0x7f80, dtype=np.uint16)
    lo = bits.view(dtype).astype(np.float32)
    hi = np.append(lo[1:], np.float32(65536.0 if half == "float16" else np.inf))
    mid = (lo + (hi - lo) / 2).astype(np.float32)
    mid[-1] = 65520.0 if half == "float16" else np.float32(3.3961514e38)
    below, above = np.nextafter(mid, 0, dtype=np.float32), np.nextafter(mid, np.inf,
                                                                       dtype=np.float32)
    return np.concatenate([lo, mid, below, above, [1e6, 3e38]]).astype(np.float32)


@pytest.mark.parametrize("half", HALF_PARAMS)
def test_half_gradient_rounding_at_every_boundary(level, half):
    """The kernels' own stores (F16C where the level has it, else half.h's bit arithmetic),
    checked at every rounding boundary against NumPy's (ml_dtypes') rounding: MSE's
    gradient "sum" at x = 1/2, t = 0 is exactly the element's weight w (and -w at x = -1/2),
    so the weights carry the values to round."""
    w = _rounding_boundaries(half)
    for sign in (1, -1):
        x = np.full(w.size, 0.5 * sign, HALVES[half])
        out = np.empty(w.size, HALVES[half])
        _, g = fastloss.MSE().value_and_grad(x, np.zeros(w.size, HALVES[half]),
                                             sample_weight=w, reduction="sum", out=out)
        np.testing.assert_array_equal(_bits(g), _rounded(sign * w, half))


def test_half_gradients_need_no_float32_buffer(rng):
    """Half in, half out: neither the input nor the gradient exists in float32."""
    n = 1_000_000
    x = rng.normal(size=n).astype(np.float16)
    out = np.empty(n, np.float16)
    assert _peak_bytes(lambda: fastloss.MSE().value_and_grad(x, x, out=out)) < n
    logits = rng.normal(size=(n // 1000, 1000)).astype(np.float16)
    gout = np.empty(logits.shape, np.float16)
    y = rng.integers(0, 1000, n // 1000)
    assert _peak_bytes(lambda: fastloss.CrossEntropy().value_and_grad(logits, y, out=gout)) < n


@pytest.mark.parametrize("half", HALF_PARAMS)
def test_pytorch_half_tensors_as_out(half, rng):
    torch = _torch()
    tdtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}[half]
    x = torch.randn(300, 7, generator=torch.Generator().manual_seed(0)).to(tdtype)
    y = torch.from_numpy(rng.integers(0, 7, 300))
    for loss, t in ((fastloss.MSE(), x.flip(0)), (fastloss.CrossEntropy(), y)):
        _, g32 = loss.value_and_grad(x, t)
        out = torch.full_like(x, 7)
        _, g = loss.value_and_grad(x, t, out=out)
        assert g is out
        assert torch.equal(out, torch.from_numpy(g32).to(tdtype))


def test_half_outputs_keep_the_usual_checks(rng):
    x = rng.normal(size=(10, 4)).astype(np.float16)
    y = rng.integers(0, 4, 10)
    for loss, t in ((fastloss.MSE(), x[::-1].copy()), (fastloss.CrossEntropy(), y)):
        strided = np.full((10, 8), 7, np.float16)[:, ::2]
        with pytest.raises(ValueError, match="out cannot hold the gradient: it has a "
                                             "non-C-contiguous layout"):
            loss.value_and_grad(x, t, out=strided)
        with pytest.raises(ValueError, match=r"out cannot hold the gradient: it has shape "
                                             r"\(10, 5\)"):
            loss.value_and_grad(x, t, out=np.full((10, 5), 7, np.float16))
        with pytest.raises(ValueError, match="must not share memory"):
            loss.value_and_grad(x, t, out=x)
        mixed = (np.full(x.shape, 7, np.float16), np.full(x.shape, 7, np.float32))
        with pytest.raises(ValueError, match=r"out\[1\] cannot hold the Hessian: it has "
                                             r"dtype float32 \(expected float32, or float16, "
                                             r"the input's dtype for both\)"):
            loss.grad_hess(x, t, out=mixed)
        assert (strided == 7).all() and (mixed[0] == 7).all() and (mixed[1] == 7).all()
    with pytest.raises(ValueError, match=r"dtype float16 \(expected float32\)"):
        fastloss.MSE().value_and_grad(x.astype(np.float32), x.astype(np.float32),
                                      out=np.empty(x.shape, np.float16))
    if ml_dtypes is not None:
        other = np.full(x.shape, 7, ml_dtypes.bfloat16)
        with pytest.raises(ValueError, match=r"dtype bfloat16 \(expected float32, or "
                                             r"float16, the input's dtype\)"):
            fastloss.MSE().value_and_grad(x, x, out=other)
        assert (other.astype(np.float32) == 7).all()
