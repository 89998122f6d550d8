"""fastloss.torch against torch.nn: every module and option, values and gradients (float64
to 1e-12 relative, float32 to 1e-5), layouts, dtypes, autograd (gradcheck, opcheck,
double backward), torch.compile, training, and what goes to PyTorch instead.

A spy (`calls`) records every call into fastloss's kernels, so that a test of a fast path
fails if the call silently went to PyTorch, and a test of a fallback fails if it did not.
"""
import itertools
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import fastloss  # noqa: E402
import fastloss.torch as flt  # noqa: E402
from fastloss.torch import _ops  # noqa: E402

F64, F32 = torch.float64, torch.float32
DEFAULT_SMALL = dict(flt.functional.SMALL)


@pytest.fixture(autouse=True)
def every_size(monkeypatch):
    """fastloss computes every size here (small inputs go to PyTorch by default:
    test_small_inputs_go_to_torch_by_default)."""
    monkeypatch.setattr(flt.functional, "SMALL", dict.fromkeys(flt.functional.SMALL, 0))


@pytest.fixture
def calls(monkeypatch):
    """The `grad` flag of every call into fastloss's kernels (True: value and gradient)."""
    seen = []
    for name in ("pointwise_run", "cross_entropy_run"):
        real = getattr(_ops, name)

        def spy(*args, _real=real):
            seen.append(args[-1])
            return _real(*args)
        monkeypatch.setattr(_ops, name, spy)
    return seen


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def tolerance(dtype):
    return 1e-12 if dtype == F64 else 1e-5


def assert_close(actual, expected, dtype):
    """Relative to each entry, with an absolute floor relative to the largest entry (an
    entry formed by cancellation keeps only that)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    rtol = tolerance(dtype)
    scale = expected.abs().max().item() if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale + 1e-300,
                               equal_nan=True)


def run_both(ours, theirs, x, *args, gen=None, grad_output="random"):
    """Value and input gradient of both callables, with the same incoming gradient (random
    for reduction="none" and for scalars, or 1: the plain loss.backward())."""
    results = []
    g = None
    for fn in (ours, theirs):
        leaf = x.detach().clone().requires_grad_()
        value = fn(leaf, *args)
        if g is None:
            g = (torch.ones_like(value) if grad_output == "ones" else
                 torch.rand(value.shape, generator=gen, dtype=value.dtype) + 0.5)
        value.backward(g)
        results.append((value.detach(), leaf.grad))
    return results


def check(ours, theirs, x, *args, gen=None, grad_output="random"):
    (v1, g1), (v2, g2) = run_both(ours, theirs, x, *args, gen=gen, grad_output=grad_output)
    assert_close(v1, v2, x.dtype)
    assert_close(g1, g2, x.dtype)


# ------------------------------------------------------------------ regression ----

REDUCTIONS = ["mean", "sum", "none"]
DTYPES = [F64, F32]

REGRESSION = [
    (flt.MSELoss, torch.nn.MSELoss, {}),
    (flt.L1Loss, torch.nn.L1Loss, {}),
    (flt.HuberLoss, torch.nn.HuberLoss, {"delta": 1.0}),
    (flt.HuberLoss, torch.nn.HuberLoss, {"delta": 0.4}),
    (flt.SmoothL1Loss, torch.nn.SmoothL1Loss, {"beta": 1.0}),
    (flt.SmoothL1Loss, torch.nn.SmoothL1Loss, {"beta": 0.4}),
    (flt.SmoothL1Loss, torch.nn.SmoothL1Loss, {"beta": 0.0}),
]


@pytest.mark.parametrize("ours, theirs, options", REGRESSION,
                         ids=lambda v: v.__name__ if isinstance(v, type) else repr(v))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_regression_modules_match_torch(ours, theirs, options, reduction, dtype, gen, calls):
    for shape in [(), (7,), (6, 5), (2, 3, 4)]:
        x = torch.randn(shape, generator=gen, dtype=dtype)
        t = torch.randn(shape, generator=gen, dtype=dtype)
        check(ours(reduction=reduction, **options), theirs(reduction=reduction, **options),
              x, t, gen=gen)
        check(ours(reduction=reduction, **options), theirs(reduction=reduction, **options),
              x, t, gen=gen, grad_output="ones")
    assert calls and all(calls)


@pytest.mark.parametrize("fn, tfn", [(flt.mse_loss, F.mse_loss), (flt.l1_loss, F.l1_loss),
                                     (flt.huber_loss, F.huber_loss)],
                         ids=["mse", "l1", "huber"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weighted_regression_functions_match_torch(fn, tfn, reduction, gen, calls):
    x, t = torch.randn(2, 6, 5, generator=gen, dtype=F64).unbind(0)
    w = torch.rand(6, 5, generator=gen, dtype=F64)
    check(lambda z, t: fn(z, t, reduction=reduction, weight=w),
          lambda z, t: tfn(z, t, reduction=reduction, weight=w), x, t, gen=gen)
    assert calls == [True]


def test_pseudo_huber_matches_its_formula_under_autograd(gen, calls):
    for delta, reduction, dtype in itertools.product([1.0, 0.3, 5.0], REDUCTIONS, DTYPES):
        x = 3 * torch.randn(5, 7, generator=gen, dtype=dtype)
        t = torch.randn(5, 7, generator=gen, dtype=dtype)

        def formula(z, t):
            per = delta**2 * (torch.sqrt(1 + ((z - t) / delta) ** 2) - 1)
            return {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
        check(flt.PseudoHuberLoss(delta, reduction), formula, x, t, gen=gen)
    assert calls and all(calls)
    with pytest.raises(ValueError, match="delta"):
        flt.PseudoHuberLoss(delta=0.0)
    with pytest.raises(ValueError, match="reduction"):
        flt.PseudoHuberLoss(reduction="batchmean")
    assert "delta=0.5" in repr(flt.PseudoHuberLoss(0.5))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_nll_matches_torch(reduction, dtype, gen, calls):
    x = torch.randn(6, 4, generator=gen, dtype=dtype)
    t = torch.poisson(3 * torch.rand(6, 4, generator=gen, dtype=dtype), generator=gen)
    check(flt.PoissonNLLLoss(reduction=reduction), torch.nn.PoissonNLLLoss(reduction=reduction),
          x, t, gen=gen)
    assert calls == [True]
    # options fastloss does not have: PyTorch computes them
    for log_input, full in [(False, False), (True, True), (False, True)]:
        xi = x.abs() + 0.1 if not log_input else x
        check(flt.PoissonNLLLoss(log_input, full, reduction=reduction),
              torch.nn.PoissonNLLLoss(log_input, full, reduction=reduction), xi, t, gen=gen)
    assert calls == [True]


def test_poisson_nll_negative_counts_are_computed_by_torch(gen, calls):
    x = torch.randn(5, generator=gen, dtype=F64)
    t = torch.tensor([1.0, -2.0, 0.0, 3.0, 1.5], dtype=F64)
    check(flt.PoissonNLLLoss(), torch.nn.PoissonNLLLoss(), x, t, gen=gen)
    assert calls == [True]              # fastloss was asked, declined, PyTorch computed


# ------------------------------------------------------------------ binary ----

BCE_WEIGHTS = {"none": None, "per sample": (6, 1), "per class": (4,), "full": (6, 4),
               "scalar": ()}


@pytest.mark.parametrize("weight", list(BCE_WEIGHTS))
@pytest.mark.parametrize("pos_weight", [None, (4,), (), (1,)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_matches_torch(weight, pos_weight, reduction, dtype, gen, calls):
    x = 3 * torch.randn(6, 4, generator=gen, dtype=dtype)
    t = torch.rand(6, 4, generator=gen, dtype=dtype)
    shape = BCE_WEIGHTS[weight]
    w = None if shape is None else torch.rand(shape, generator=gen, dtype=dtype) + 0.5
    pw = None if pos_weight is None else torch.rand(pos_weight, generator=gen,
                                                    dtype=dtype) * 3
    check(flt.BCEWithLogitsLoss(w, reduction=reduction, pos_weight=pw),
          torch.nn.BCEWithLogitsLoss(w, reduction=reduction, pos_weight=pw), x, t, gen=gen)
    assert calls == [True]


@pytest.mark.parametrize("weight", ["none", "per sample", "full"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_matches_torch(weight, reduction, dtype, gen, calls):
    p = torch.rand(6, 4, generator=gen, dtype=dtype) * 0.98 + 0.01
    t = torch.rand(6, 4, generator=gen, dtype=dtype)
    t[0, :2] = torch.tensor([0.0, 1.0])
    shape = BCE_WEIGHTS[weight]
    w = None if shape is None else torch.rand(shape, generator=gen, dtype=dtype) + 0.5
    check(flt.BCELoss(w, reduction=reduction), torch.nn.BCELoss(w, reduction=reduction),
          p, t, gen=gen)
    assert calls == [True]


def test_bce_outside_the_unit_interval_raises_torchs_error():
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        flt.BCELoss()(torch.tensor([0.5, 1.5]), torch.tensor([0.0, 1.0]))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        flt.BCELoss()(torch.tensor([0.5, 0.5]), torch.tensor([0.0, 2.0]))


def test_negative_weights_are_computed_by_torch(gen, calls):
    x = torch.randn(4, 3, generator=gen, dtype=F64)
    t = torch.rand(4, 3, generator=gen, dtype=F64)
    w = torch.tensor([[1.0], [-0.5], [2.0], [0.0]], dtype=F64)
    check(flt.BCEWithLogitsLoss(w), torch.nn.BCEWithLogitsLoss(w), x, t, gen=gen)
    cw = torch.tensor([1.0, -1.0, 2.0], dtype=F64)
    y = torch.tensor([0, 1, 2, 1])
    check(flt.CrossEntropyLoss(cw), torch.nn.CrossEntropyLoss(cw), x, y, gen=gen)
    assert calls == [True, True]


# ------------------------------------------------------------------ KL ----

@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_div_matches_torch(reduction, log_target, dtype, gen, calls):
    for shape in [(5, 7), (3, 4, 2), (6,)]:
        x = torch.log_softmax(torch.randn(shape, generator=gen, dtype=dtype), -1)
        t = torch.softmax(torch.randn(shape, generator=gen, dtype=dtype), -1)
        if not log_target:
            t.view(-1)[0] = 0                   # 0 log 0 = 0, as in PyTorch
        else:
            t = t.log()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            check(flt.KLDivLoss(reduction=reduction, log_target=log_target),
                  torch.nn.KLDivLoss(reduction=reduction, log_target=log_target), x, t,
                  gen=gen)
        warned = [str(w.message) for w in seen if "batchmean" in str(w.message)]
        assert len(warned) == (2 if reduction == "mean" else 0)     # ours, then torch's
    assert calls and all(calls)


def test_kl_div_zero_target_is_zero_where_torch_gives_nan():
    x = torch.tensor([-float("inf"), -1.0], dtype=F64, requires_grad=True)
    t = torch.tensor([0.0, 0.5], dtype=F64)
    v = flt.kl_div(x, t, reduction="none")
    assert v[0].item() == 0 and torch.isnan(F.kl_div(x, t, reduction="none")[0])


# ------------------------------------------------------------------ cross-entropy ----

def labels(shape, C, gen, ignore_index=-100, ignored=0.2):
    y = torch.randint(0, C, shape, generator=gen)
    y[torch.rand(shape, generator=gen) < ignored] = ignore_index
    return y


CE_OPTIONS = list(itertools.product([False, True], [-100, 1], [0.0, 0.25]))


@pytest.mark.parametrize("weighted, ignore_index, smoothing", CE_OPTIONS,
                         ids=lambda v: repr(v))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_matches_torch(weighted, ignore_index, smoothing, reduction, dtype, gen,
                                     calls):
    C = 5
    w = torch.rand(C, generator=gen, dtype=dtype) + 0.2 if weighted else None
    ours = flt.CrossEntropyLoss(w, ignore_index=ignore_index, reduction=reduction,
                                label_smoothing=smoothing)
    theirs = torch.nn.CrossEntropyLoss(w, ignore_index=ignore_index, reduction=reduction,
                                       label_smoothing=smoothing)
    for shape in [(9, C), (4, C, 3), (2, C, 3, 2)]:
        x = 2 * torch.randn(shape, generator=gen, dtype=dtype)
        y = labels(shape[:1] + shape[2:], C, gen, ignore_index)
        y.view(-1)[0] = 0                               # not all ignored
        check(ours, theirs, x, y, gen=gen)
        check(ours, theirs, x, y, gen=gen, grad_output="ones")
    for target in (torch.tensor(3), torch.tensor(ignore_index)):       # unbatched (C,)
        x = torch.randn(C, generator=gen, dtype=dtype)
        if target.item() == ignore_index and reduction == "mean":
            continue                                    # torch: NaN; fastloss: 0 (below)
        check(ours, theirs, x, target, gen=gen)
    assert calls and all(calls)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probability_targets_match_torch(weighted, smoothing, reduction, gen,
                                                       calls):
    C = 4
    w = torch.rand(C, generator=gen, dtype=F64) + 0.2 if weighted else None
    for shape in [(6, C), (3, C, 5), (C,)]:
        x = torch.randn(shape, generator=gen, dtype=F64)
        t = torch.softmax(torch.randn(shape, generator=gen, dtype=F64), 1 if len(shape) > 1
                          else 0)
        check(flt.CrossEntropyLoss(w, reduction=reduction, label_smoothing=smoothing),
              torch.nn.CrossEntropyLoss(w, reduction=reduction, label_smoothing=smoothing),
              x, t, gen=gen)
    assert calls and all(calls)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (4,)])
def test_all_ignored_mean_is_zero_where_torch_gives_nan(weighted, shape, calls):
    w = torch.rand(4, dtype=F64) + 0.5 if weighted else None
    x = torch.randn(shape, dtype=F64, requires_grad=True)
    y = torch.full(shape[:1] + shape[2:] if len(shape) > 1 else (), 2)
    y.fill_(-100)
    loss = flt.CrossEntropyLoss(w, label_smoothing=0.1)(x, y)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(x.grad == 0)
    assert torch.isnan(torch.nn.CrossEntropyLoss(w, label_smoothing=0.1)(x, y))
    assert calls == [True]


def test_empty_batch_gives_zero(calls):
    x = torch.randn(0, 3, requires_grad=True)
    loss = flt.cross_entropy(x, torch.zeros(0, dtype=torch.int64))
    loss.backward()
    assert loss.item() == 0.0 and x.grad.shape == (0, 3)


def test_cross_entropy_reads_the_nc_layout_in_place(monkeypatch, gen):
    """(N, C, d1, d2): the kernels get a view of the tensor's own memory, not a copy."""
    x = torch.randn(2, 5, 3, 4, generator=gen, requires_grad=True)
    y = labels((2, 3, 4), 5, gen)
    seen = []
    real = fastloss.CrossEntropy.value_and_grad

    def spy(self, input, target, **kw):
        seen.append((input.ctypes.data, self.axis))
        return real(self, input, target, **kw)
    monkeypatch.setattr(fastloss.CrossEntropy, "value_and_grad", spy)
    flt.cross_entropy(x, y).backward()
    assert seen == [(x.data_ptr(), 1)]


def test_errors_are_torchs():
    x = torch.randn(3, 4, requires_grad=True)
    with pytest.raises(IndexError, match="out of bounds"):
        flt.cross_entropy(x, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        flt.cross_entropy(x, torch.tensor([0, 1, 1]), reduction="avg")
    with pytest.raises(RuntimeError):
        flt.cross_entropy(x, torch.tensor([0, 1, 1], dtype=torch.int32))
    with pytest.raises(RuntimeError):
        flt.cross_entropy(x, torch.tensor([0, 1, 1]), label_smoothing=1.5)


# ------------------------------------------------------------------ layouts and dtypes ----

def test_non_contiguous_and_expanded_inputs(gen, calls):
    base = torch.randn(7, 6, generator=gen, dtype=F64)
    views = {"transposed": base.t(), "sliced": base[::2, 1:], "expanded rows":
             base[:1].expand(5, 6), "channels_last": torch.randn(
                 2, 6, 3, 4, generator=gen, dtype=F64).to(memory_format=torch.channels_last)}
    for name, x in views.items():
        y = labels(x.shape[:1] + x.shape[2:], x.shape[1], gen)
        check(flt.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), x, y, gen=gen)
        t = torch.randn(x.shape, generator=gen, dtype=F64)
        check(flt.MSELoss(), torch.nn.MSELoss(), x, t, gen=gen)
        check(flt.MSELoss(reduction="none"), torch.nn.MSELoss(reduction="none"), x,
              t[..., :1].expand(x.shape), gen=gen)
    assert len(calls) == 3 * len(views) and all(calls)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_dtypes_compute_in_float32_and_return_theirs(dtype, gen, calls):
    x = torch.randn(16, 10, generator=gen).to(dtype)
    y = labels((16,), 10, gen)
    t = torch.rand(16, 10, generator=gen).to(dtype)
    for ours, theirs, target in [(flt.CrossEntropyLoss(label_smoothing=0.1),
                                  torch.nn.CrossEntropyLoss(label_smoothing=0.1), y),
                                 (flt.MSELoss(), torch.nn.MSELoss(), t),
                                 (flt.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), t)]:
        (v1, g1), (v2, g2) = run_both(ours, theirs, x, target, gen=gen)
        assert v1.dtype == v2.dtype == dtype and g1.dtype == g2.dtype == dtype
        # the float32 computation, rounded once: within half an ulp of the half result
        (v3, g3), _ = run_both(ours, theirs, x.float(), target if target.dtype ==
                               torch.int64 else target.float(), gen=gen, grad_output="ones")
        torch.testing.assert_close(v1, v3.to(dtype), rtol=0, atol=0)
        torch.testing.assert_close(v1.float(), v2.float(), rtol=1e-2, atol=1e-3)
        torch.testing.assert_close(g1.float(), g2.float(), rtol=2e-2, atol=1e-3)
        (_, g4), _ = run_both(ours, theirs, x, target, gen=gen, grad_output="ones")
        assert torch.equal(g4, g3.to(dtype))            # the float32 gradient, rounded once
    assert calls and all(calls)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_dtypes_make_no_float32_copies(dtype, gen):
    """float16 / bfloat16 input is read in place and its gradient stored in its dtype by
    the kernel: forward and backward make no conversion (before, the input was copied to
    float32 and autograd converted the float32 gradient back: two aten::_to_copy)."""
    x = torch.randn(64, 100, generator=gen).to(dtype).requires_grad_()
    y = labels((64,), 100, gen)
    t = torch.randn(64, 100, generator=gen).to(dtype)
    for fn, target in ((flt.cross_entropy, y), (flt.mse_loss, t),
                       (flt.binary_cross_entropy_with_logits, t.sigmoid())):
        x.grad = None
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            fn(x, target).backward()
        names = [e.name for e in prof.events()]
        assert "aten::_to_copy" not in names, (fn.__name__, sorted(set(names)))
        assert x.grad.dtype == dtype


def test_no_grad_runs_the_value_only_kernels(gen, calls):
    x = torch.randn(8, 5, generator=gen, requires_grad=True)
    y = labels((8,), 5, gen)
    with torch.no_grad():
        flt.cross_entropy(x, y)
        flt.mse_loss(x, torch.randn(8, 5))
    flt.cross_entropy(x.detach(), y)            # an input that needs no gradient
    assert calls == [False, False, False]
    flt.cross_entropy(x, y)
    assert calls[-1] is True


def test_caller_tensors_are_never_written(gen):
    x = torch.randn(6, 4, generator=gen, requires_grad=True)
    args = [labels((6,), 4, gen), torch.rand(6, 4, generator=gen), torch.rand(4) + 0.1]
    before = [x.detach().clone()] + [a.clone() for a in args]
    for reduction in REDUCTIONS:
        flt.cross_entropy(x, args[0], weight=args[2], reduction=reduction).sum().backward()
        flt.binary_cross_entropy_with_logits(x, args[1], pos_weight=args[2],
                                             reduction=reduction).sum().backward()
    after = [x.detach()] + args
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_the_gradient_buffer_becomes_x_grad_and_survives_retain_graph(gen):
    x = torch.randn(5, 3, generator=gen, dtype=F64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 1, 0])
    loss = flt.cross_entropy(x, y)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()                                 # the saved gradient is intact
    torch.testing.assert_close(x.grad, 2 * first, rtol=1e-15, atol=0)
    (g,) = torch.autograd.grad(2.5 * flt.cross_entropy(x, y), x)
    torch.testing.assert_close(g, 2.5 * first, rtol=1e-15, atol=0)


def test_large_gradient_buffers_are_reused_only_when_free(gen):
    x = torch.randn(600, 1000, generator=gen, requires_grad=True)      # 2.4 MB
    y = labels((600,), 1000, gen)
    flt.cross_entropy(x, y).backward()
    kept, first = x.grad, x.grad.clone()
    x.grad = None
    flt.cross_entropy(x, y.flip(0)).backward()         # `kept` still holds its buffer
    assert x.grad.data_ptr() != kept.data_ptr()
    assert torch.equal(kept, first)
    ptr = x.grad.data_ptr()
    x.grad = None                                       # now that buffer is free
    flt.cross_entropy(x, y).backward()
    assert x.grad.data_ptr() == ptr and torch.equal(x.grad, first)
    flt.empty_cache()
    assert not _ops._pool


# ------------------------------------------------------------------ what PyTorch computes ----

def test_targets_and_weights_that_need_a_gradient_go_to_torch(gen, calls):
    x = torch.randn(5, 4, generator=gen, dtype=F64)
    t = torch.rand(5, 4, generator=gen, dtype=F64, requires_grad=True)
    for ours, theirs in [(flt.mse_loss, F.mse_loss), (flt.kl_div, F.kl_div),
                         (flt.binary_cross_entropy_with_logits,
                          F.binary_cross_entropy_with_logits)]:
        a = ours(x, t, reduction="sum")
        b = theirs(x, t, reduction="sum")
        (ga,) = torch.autograd.grad(a, t)
        (gb,) = torch.autograd.grad(b, t)
        torch.testing.assert_close(ga, gb)
    w = (torch.rand(4, dtype=F64) + 0.1).requires_grad_()
    y = torch.tensor([0, 1, 2, 3, 0])
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument"):
        F.cross_entropy(x, y, weight=w)             # PyTorch's own answer, and ours:
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument"):
        flt.cross_entropy(x, y, weight=w)
    assert calls == []
    with torch.no_grad():                           # no gradient wanted: fastloss's turn
        flt.mse_loss(x, t)
    assert calls == [False]


def test_small_inputs_go_to_torch_by_default(monkeypatch, calls):
    monkeypatch.setattr(flt.functional, "SMALL", DEFAULT_SMALL)     # the real thresholds
    _ops_spy = calls
    SMALL = DEFAULT_SMALL
    cases = [(flt.mse_loss, (SMALL["mse"],), torch.randn),
             (flt.binary_cross_entropy_with_logits, (SMALL["bce_logits"],), torch.rand),
             (flt.cross_entropy, (-(-SMALL["cross_entropy"] // 100), 100),
              lambda *s: torch.randint(0, 100, s[:1])),
             (flt.cross_entropy, (SMALL["cross_entropy_few_classes"] // 8, 8),
              lambda *s: torch.randint(0, 8, s[:1]))]
    for fn, shape, target in cases:
        small = (shape[0] - 1,) + shape[1:]
        fn(torch.randn(small), target(*small))
        assert _ops_spy == []
        fn(torch.randn(shape), target(*shape))
        assert _ops_spy == [False]
        _ops_spy.clear()


def test_other_devices_broadcasting_and_mixed_dtypes_go_to_torch(calls):
    x = torch.randn(4, 3, device="meta")
    assert flt.cross_entropy(x, torch.zeros(4, dtype=torch.int64, device="meta")).is_meta
    assert flt.mse_loss(x, torch.randn(4, 3, device="meta")).device.type == "meta"
    xc = torch.randn(4, 3, dtype=F64)
    with pytest.warns(UserWarning, match="target size"):
        torch.testing.assert_close(flt.mse_loss(xc, xc[:1]), F.mse_loss(xc, xc[:1]))
    torch.testing.assert_close(flt.mse_loss(xc, xc.float()), F.mse_loss(xc, xc.float()))
    xi = xc.to(torch.int64)
    torch.testing.assert_close(flt.l1_loss(xi, xi, reduction="sum"),
                               F.l1_loss(xi, xi, reduction="sum"))
    assert calls == []


def test_functorch_transforms_go_to_torch(gen, calls):
    x = torch.randn(4, 3, generator=gen, dtype=F64)
    y = torch.tensor([0, 2, 1, 1])
    torch.testing.assert_close(torch.func.grad(lambda z: flt.cross_entropy(z, y))(x),
                               torch.func.grad(lambda z: F.cross_entropy(z, y))(x))
    torch.testing.assert_close(torch.vmap(flt.mse_loss)(x, 2 * x),
                               torch.vmap(F.mse_loss)(x, 2 * x))
    assert calls == []


def test_double_backward_raises_a_clear_error(gen):
    x = torch.randn(4, 3, generator=gen, dtype=F64, requires_grad=True)
    for loss in (flt.cross_entropy(x, torch.tensor([0, 1, 2, 0])),
                 flt.mse_loss(x, torch.zeros(4, 3, dtype=F64))):
        with pytest.raises(RuntimeError, match="double backward"):
            torch.autograd.grad(loss, x, create_graph=True)


# ------------------------------------------------------------------ autograd tools ----

def test_gradcheck_float64(gen):
    x = torch.randn(4, 3, generator=gen, dtype=F64, requires_grad=True)
    y = torch.tensor([0, 2, -100, 1])
    t = torch.rand(4, 3, generator=gen, dtype=F64)
    w = torch.rand(3, generator=gen, dtype=F64) + 0.5
    for reduction in REDUCTIONS:
        fns = [lambda z: flt.cross_entropy(z, y, weight=w, label_smoothing=0.2,
                                           reduction=reduction),
               lambda z: flt.mse_loss(z, t, reduction=reduction),
               lambda z: flt.smooth_l1_loss(z, t + 0.05, beta=0.5, reduction=reduction),
               lambda z: flt.binary_cross_entropy_with_logits(z, t, pos_weight=w,
                                                              reduction=reduction),
               lambda z: flt.kl_div(z, t, reduction="batchmean" if reduction == "mean"
                                    else reduction),
               lambda z: flt.pseudo_huber_loss(z, t, delta=0.7, reduction=reduction),
               lambda z: flt.poisson_nll_loss(z, 3 * t, reduction=reduction)]
        for fn in fns:
            assert torch.autograd.gradcheck(fn, (x,))


def opcheck_cases():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=g, dtype=F64, requires_grad=True)
    t = torch.rand(4, 3, generator=g, dtype=F64)
    x4 = torch.randn(2, 3, 4, 5, generator=g, requires_grad=True)
    y4 = torch.randint(0, 3, (2, 4, 5), generator=g)
    w = torch.rand(3, generator=g, dtype=F64) + 0.5
    ops = torch.ops.fastloss
    for name in ("pointwise_vg", "pointwise"):
        op = getattr(ops, name).default
        if name == "pointwise":             # value only: called for inputs without grad
            x, x4 = x.detach(), x4.detach()
        yield op, (x, t, None, None, "mse", 0.0, "mean", 1.0)
        yield op, (x, t, t[:, 0].contiguous(), w, "bce_logits", 0.0, "none", 1.0)
        yield op, (x, t, None, None, "huber", 0.5, "sum", 2.0)
    x, x4 = x.detach().clone().requires_grad_(), x4.detach().clone().requires_grad_()
    for name in ("cross_entropy_vg", "cross_entropy"):
        op = getattr(ops, name).default
        if name == "cross_entropy":
            x, x4 = x.detach(), x4.detach()
        yield op, (x, torch.tensor([0, 1, 2, -100]), w, -100, 0.1, "mean")
        yield op, (x4, y4, None, -100, 0.0, "none")
        yield op, (x, t, None, -100, 0.0, "sum")


@pytest.mark.parametrize("op, args", list(opcheck_cases()),
                         ids=lambda v: str(v) if isinstance(v, torch._ops.OpOverload) else "")
def test_opcheck(op, args):
    torch.library.opcheck(op, args)


def test_compiled_model_trains_fullgraph(gen, calls):
    """A model whose loss is a fastloss module compiles with fullgraph=True (no graph
    break), runs fastloss's operators, and trains as in eager mode."""
    torch._dynamo.reset()
    C = 5
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, C))
    eager = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, C))
    eager.load_state_dict(model.state_dict())
    criterion = flt.CrossEntropyLoss(label_smoothing=0.1)

    def step(m, x, y):
        return criterion(m(x), y)
    compiled = torch.compile(step, fullgraph=True)
    opts = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (model, eager)]
    x = torch.randn(32, 8, generator=gen)
    y = torch.randint(0, C, (32,), generator=gen)
    losses = []
    for _ in range(5):
        for m, opt, fn in ((model, opts[0], compiled), (eager, opts[1], step)):
            opt.zero_grad()
            loss = fn(m, x, y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert losses[-2] < losses[0]
    np.testing.assert_allclose(losses[0::2], losses[1::2], rtol=1e-5)
    assert calls.count(True) == 10          # 5 compiled + 5 eager steps, all fastloss's
    with torch.no_grad():
        v, want = compiled(model, x, y), step(eager, x, y)
    torch.testing.assert_close(v, want, rtol=1e-5, atol=1e-6)
    assert calls[-2:] == [False, False]


def test_training_matches_torch_for_50_sgd_steps(gen):
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Tanh(), torch.nn.Linear(32, 7))
    ours = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Tanh(), torch.nn.Linear(32, 7))
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(64, 20, generator=gen)
    y = torch.randint(0, 7, (64,), generator=gen)
    for model, criterion in ((ref, torch.nn.CrossEntropyLoss()), (ours, flt.CrossEntropyLoss())):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(50):
            opt.zero_grad()
            criterion(model(x), y).backward()
            opt.step()
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ the package ----

def test_modules_are_torchs_classes():
    for name in ("MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "CrossEntropyLoss",
                 "BCEWithLogitsLoss", "BCELoss", "KLDivLoss", "PoissonNLLLoss"):
        ours, theirs = getattr(flt, name), getattr(torch.nn, name)
        assert issubclass(ours, theirs)
    m = flt.CrossEntropyLoss(torch.ones(3), ignore_index=2, label_smoothing=0.1)
    assert set(m.state_dict()) == set(torch.nn.CrossEntropyLoss(torch.ones(3)).state_dict())
    assert isinstance(flt.PseudoHuberLoss(), torch.nn.Module)


def test_functions_have_torchs_signatures():
    import inspect
    for name in ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "cross_entropy",
                 "binary_cross_entropy_with_logits", "binary_cross_entropy", "kl_div",
                 "poisson_nll_loss"):
        ours = inspect.signature(getattr(flt, name)).parameters
        theirs = inspect.signature(getattr(F, name)).parameters
        assert list(ours) == list(theirs), name
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]


def test_importing_fastloss_does_not_import_torch():
    code = ("import sys, fastloss; fastloss.MSE()([1.0], [0.0]); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
