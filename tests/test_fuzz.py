"""Property-based fuzzing of the call protocol (Hypothesis): any shape, dtype, layout,
stride, misaligned address, aliasing, weight and `out=`.

For every drawn call: no crash; a call built to be valid returns the NumPy reference's
result; a call with one fault built in raises ValueError or TypeError and writes nothing
to `out=`.  Memory errors that do not crash (a read past an array's end) are the
sanitizer run's job (tools/sanitize.sh runs this file too).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastloss
from conftest import input_for, target_for
from fastloss.bench import reference as ref
from fastloss.bench.reference import misaligned

FAULTS = (None, None, None, "target_shape", "bad_label", "negative_weight", "weight_shape",
          "out_shape", "out_dtype", "out_misaligned", "out_readonly", "out_aliases_input",
          "out_aliases_target", "reduction", "n_threads")


def layout(draw, a):
    """`a` (a fresh array) in a drawn layout: C, Fortran, a strided view, reversed,
    misaligned or read-only; the values stay a's."""
    kind = draw(st.sampled_from(["c", "fortran", "strided", "reversed", "misaligned",
                                 "readonly"]))
    a = np.array(a)
    if kind == "fortran" and a.ndim:           # (asfortranarray makes 0-d arrays 1-d)
        return np.asfortranarray(a)
    if kind == "strided" and a.ndim:
        big = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if kind == "reversed" and a.ndim:
        return np.ascontiguousarray(a[::-1])[::-1]
    if kind == "misaligned" and a.dtype.itemsize > 1:
        return misaligned(a)
    if kind == "readonly":
        a = a.copy()
        a.flags.writeable = False
    return a


@st.composite
def loss_instances(draw):
    """Any row of the table, with each parameter at its default or one of its examples
    (and, for class weights, random weights of the right size, chosen later)."""
    cls = draw(st.sampled_from(fastloss.LOSSES))
    params = {p.name: draw(st.sampled_from((p.default,) + tuple(p.examples)))
              for p in cls.params}
    return cls, params


@st.composite
def calls(draw):
    cls, params = draw(loss_instances())
    fault = draw(st.sampled_from(FAULTS))
    softmax = cls.family == "softmax"
    ndim = draw(st.integers(1 if softmax else 0, 3))
    dims = [draw(st.integers(0, 6)) for _ in range(ndim)]
    axis = -1
    if softmax:
        axis = params["axis"] % ndim
        dims[axis] = draw(st.sampled_from([1, 2, 3, 5, 16, 33, 70]))  # narrow and wide rows
    shape = tuple(dims)
    dtype = np.dtype(draw(st.sampled_from(["float32", "float64", "float16", "int32"])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # docs/contract.md: float32, float16 (and bfloat16) compute in float32, others in float64
    compute = np.dtype(np.float32) if dtype in (np.float32, np.float16) else np.dtype(np.float64)
    if "class_weight" in params and draw(st.booleans()):
        params["class_weight"] = rng.uniform(0, 2, shape[axis])
    loss = cls(**params)

    x = input_for(loss, shape, rng)
    if dtype.kind == "i":
        x = np.round(x * 2) if getattr(loss, "from_logits", True) else np.ones(shape)
    x = x.astype(dtype)
    sample_shape = shape[:axis] + shape[axis + 1:] if softmax else shape
    target = np.asarray(target_for(loss, x.astype(compute), rng,
                                   labels=draw(st.booleans())))
    if target.dtype.kind in "iu":
        if draw(st.booleans()) and target.size:
            target.flat[0] = loss.ignore_index
        if target.size == 0 or (target.min() >= 0 and target.max() < 256):
            target = target.astype(draw(st.sampled_from(["int64", "int32", "uint8"])))
    elif draw(st.booleans()):
        target = target.astype(np.float64)           # a target of another dtype: converted

    weight = None
    if draw(st.booleans()) and sample_shape:
        wshape = draw(st.sampled_from([sample_shape[:1], sample_shape]))
        weight = rng.uniform(0, 2, wshape)

    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    method = draw(st.sampled_from(["value", "value_and_grad", "grad_hess"]))
    n_threads = draw(st.sampled_from([None, 1, 2, -1]))
    out = None
    if method != "value" and draw(st.booleans()):
        out = np.full(shape, 7, compute) if method == "value_and_grad" else \
            (np.full(shape, 7, compute), np.full(shape, 7, compute))

    # one fault, where it applies
    if fault == "target_shape":
        target = np.zeros(shape + (2,))
    elif fault == "bad_label" and target.dtype.kind in "iu" and target.size:
        target = target.astype(np.int64)
        target.flat[-1] = shape[axis] + 3
    elif fault == "negative_weight" and weight is not None and weight.size:
        weight.flat[0] = -1.0
    elif fault == "weight_shape" and sample_shape:
        weight = np.ones(sample_shape[0] + 1)
    elif fault and fault.startswith("out_") and method != "value" and x.size:
        # an argument of another dtype is converted (copied) first: no sharing then
        target = np.asarray(target)
        if fault == "out_aliases_target" and target.dtype in (compute, np.int64):
            bad, target = sharing_memory(np.full(shape, 7, compute), target)
        elif fault == "out_aliases_input" and x.dtype == compute:
            bad, x = sharing_memory(np.full(shape, 7, compute), x)
        elif fault in ("out_aliases_input", "out_aliases_target"):
            bad, fault = None, None
        else:
            bad = {"out_shape": lambda: np.full(shape + (1,), 7, compute),
                   # never an output dtype (float16 is one, for float16 input)
                   "out_dtype": lambda: np.full(shape, 7, np.int32),
                   "out_misaligned": lambda: misaligned(np.full(shape, 7, compute)),
                   "out_readonly": lambda: readonly(np.full(shape, 7, compute))}[fault]()
        if bad is not None:
            out = bad if method == "value_and_grad" else (np.full(shape, 7, compute), bad)
    elif fault == "reduction":
        reduction = "average"
    elif fault == "n_threads":
        n_threads = 0
    else:
        fault = None

    if fault not in ("out_aliases_input", "out_aliases_target"):   # a copy would unshare
        x = layout(draw, x)
        target = layout(draw, np.asarray(target))
    return dict(loss=loss, x=x, target=target, weight=weight, reduction=reduction,
                method=method, n_threads=n_threads, out=out, fault=fault, compute=compute)


def sharing_memory(out, other):
    """(out, other) rebuilt over one buffer, so that they overlap; values kept."""
    holder = np.zeros(max(out.nbytes, other.nbytes) + 16, np.uint8)
    o = holder[:out.nbytes].view(out.dtype).reshape(out.shape)
    o[...] = out
    t = holder[:other.nbytes].view(other.dtype).reshape(other.shape)
    t[...] = other          # other's values win where both are written: they are read first
    return o, t


def readonly(a):
    a.flags.writeable = False
    return a


def reference(call):
    """(value, grad, hess) of the reduced loss from the reference, in float64, on the
    values fastloss computes with (the input and target rounded to the compute dtype)."""
    loss = call["loss"]
    x = np.asarray(call["x"]).astype(call["compute"]).astype(np.float64)
    t = np.asarray(call["target"])
    if t.dtype.kind == "f":
        t = t.astype(call["compute"]).astype(np.float64)
    l, g, h, denom = ref.by_name(loss.name)(x, t, **loss.get_params())
    per_row = loss.family == "softmax"
    axis = loss.axis % x.ndim if per_row else -1
    sample_shape = x.shape[:axis] + x.shape[axis + 1:] if per_row else x.shape
    w = ref.expand_weight(call["weight"], sample_shape)
    return ref.reduce(l, g, h, call["reduction"], w, denom, per_row, axis)


def run(call):
    loss = call["loss"]
    kw = dict(sample_weight=call["weight"], reduction=call["reduction"],
              n_threads=call["n_threads"])
    if call["method"] == "value":
        return loss(call["x"], call["target"], **kw), None, None
    if call["method"] == "value_and_grad":
        value, grad = loss.value_and_grad(call["x"], call["target"], out=call["out"], **kw)
        return value, grad, None
    grad, hess = loss.grad_hess(call["x"], call["target"], out=call["out"], **kw)
    return None, grad, hess


def close(got, expected, compute):
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    assert got.shape == expected.shape
    scale = np.max(np.abs(expected), initial=0.0)
    if compute == np.float32:
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-5 * max(scale, 1))
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * max(scale, 1))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(calls())
def test_fuzz_call_protocol(call):
    outs = [] if call["out"] is None else (
        list(call["out"]) if isinstance(call["out"], tuple) else [call["out"]])
    before = [np.array(o, copy=True) for o in outs]
    if call["fault"] is not None:
        with pytest.raises((ValueError, TypeError)):
            run(call)
        for o, b in zip(outs, before):
            np.testing.assert_array_equal(o, b, err_msg="out= was written before an error")
        return
    with np.errstate(all="ignore"):
        value, grad, hess = run(call)
        ev, eg, eh = reference(call)
    if value is not None:
        close(value, ev, call["compute"])
    if grad is not None:
        assert grad.dtype == call["compute"]
        close(grad, eg, call["compute"])
    if hess is not None:
        close(hess, eh, call["compute"])
