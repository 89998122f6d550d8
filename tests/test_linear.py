"""fastloss.LinearCrossEntropy (fused linear + cross-entropy) and its PyTorch integration:
values and gradients against PyTorch in float64 (``cross_entropy(linear(...))``) for every
option, both dtypes, several row blocks; the same bits for every thread count and block
loop; errors for bad shapes and values.

The reference is PyTorch's autograd through ``F.linear`` and ``F.cross_entropy`` in
float64, with fastloss's sample weights applied to PyTorch's per-row losses.
"""
import pickle
import threading

import numpy as np
import pytest

import fastloss
from fastloss import linear as _linear

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import fastloss.torch as flt  # noqa: E402
from fastloss.torch import _ops  # noqa: E402

N, H, V = 45, 12, 37
OPTIONS = [dict(), dict(ignore_index=3), dict(label_smoothing=0.2),
           dict(class_weight="random"), dict(class_weight="random", label_smoothing=0.1,
                                             ignore_index=0)]


def make(rng, dtype, n=N, h=H, v=V, ignored=(2, 7)):
    x = rng.standard_normal((n, h)).astype(dtype)
    w = (rng.standard_normal((v, h)) * 0.7).astype(dtype)
    b = rng.standard_normal(v).astype(dtype)
    y = rng.integers(0, v, n)
    return x, w, b, y, ignored


def options(opts, rng, v=V):
    opts = dict(opts)
    if opts.get("class_weight") == "random":
        opts["class_weight"] = rng.random(v) + 0.1
    return opts


def reference(x, w, y, b=None, sw=None, reduction="mean", class_weight=None,
              ignore_index=-100, label_smoothing=0.0):
    """(value, grad_x, grad_w, grad_b) of PyTorch's cross_entropy(linear(...)) in float64,
    the per-row losses weighted by sw (fastloss's "mean": sum(sw l) / sum(sw w_y))."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    bt = None if b is None else torch.tensor(b, dtype=torch.float64, requires_grad=True)
    yt = torch.from_numpy(np.asarray(y, np.int64))
    cw = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float64)
    per = F.cross_entropy(F.linear(xt, wt, bt), yt, weight=cw, reduction="none",
                          ignore_index=ignore_index, label_smoothing=label_smoothing)
    swt = torch.ones(len(y), dtype=torch.float64) if sw is None else torch.tensor(
        sw, dtype=torch.float64)
    per = per * swt
    if reduction == "none":
        value, total = per, per.sum()
    elif reduction == "sum":
        value = total = per.sum()
    else:
        keep = yt != ignore_index
        wy = torch.ones(len(y), dtype=torch.float64) if cw is None else cw[yt.clamp(0)]
        value = total = per.sum() / (swt * wy * keep).sum()
    params = [xt, wt] + ([bt] if bt is not None else [])
    grads = torch.autograd.grad(total, params)
    return (value.detach().numpy(),) + tuple(g.numpy() for g in grads)


def assert_close(actual, expected, dtype):
    """float64 to 1e-10, float32 to 1e-5 relative to each entry with a floor of 1e-5 (1e-12
    in float64) times the largest entry."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    floor = 1e-12 if dtype == np.float64 else 1e-5
    atol = floor * max(float(np.max(np.abs(expected), initial=0.0)), 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


# ------------------------------------------------------------------ values and gradients ----

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("weighted", [False, True], ids=["", "sw"])
def test_against_torch_float64(rng, dtype, reduction, opts, bias, weighted):
    x, w, b, y, ignored = make(rng, dtype)
    opts = options(opts, rng)
    if "ignore_index" in opts:
        y[list(ignored)] = opts["ignore_index"]
    sw = rng.random(N).astype(dtype) if weighted else None
    b = b if bias else None
    loss = fastloss.LinearCrossEntropy(**opts)
    expected = reference(x, w, y, b, sw, reduction, **opts)
    # block_rows=16: three row blocks (the last a partial one), the sums across blocks
    for rows in (None, 16):
        value, grads = loss.value_and_grad(x, w, y, bias=b, sample_weight=sw,
                                           reduction=reduction, block_rows=rows)
        assert len(grads) == (3 if bias else 2)
        for g, arr in zip(grads, (x, w, b)):
            assert g.dtype == dtype and g.shape == arr.shape
        assert_close(value, expected[0], dtype)
        for g, e in zip(grads, expected[1:]):
            assert_close(g, e, dtype)
        only = loss(x, w, y, bias=b, sample_weight=sw, reduction=reduction, block_rows=rows)
        if reduction == "none":
            assert only.dtype == dtype and only.shape == (N,)
            np.testing.assert_array_equal(only, value)
        else:
            assert type(only) is float and only == value


def test_large_vocabulary_blocks(rng):
    """Several row blocks of a vocabulary wider than a forward chunk (FORWARD_CHUNK) and
    than a chunk of grad_weight, float32 against float64."""
    x, w, b, y, _ = make(rng, np.float32, n=70, h=40, v=_linear.FORWARD_CHUNK + 300)
    value, grads = fastloss.LinearCrossEntropy(label_smoothing=0.05).value_and_grad(
        x, w, y, bias=b, block_rows=32)
    expected = reference(x, w, y, b, label_smoothing=0.05)
    assert_close(value, expected[0], np.float32)
    for g, e in zip(grads, expected[1:]):
        assert_close(g, e, np.float32)


def test_integer_and_mixed_inputs(rng):
    """Integer hidden computes in float64; a float64 weight with float32 hidden is converted
    to float32 (the compute dtype follows hidden)."""
    x, w, b, y, _ = make(rng, np.float64)
    xi = np.round(x * 3).astype(np.int32)
    value = fastloss.LinearCrossEntropy()(xi, w, y)
    assert_close(value, reference(xi.astype(np.float64), w, y)[0], np.float64)
    v32, grads = fastloss.LinearCrossEntropy().value_and_grad(x.astype(np.float32), w, y)
    assert grads[1].dtype == np.float32
    assert_close(v32, reference(x.astype(np.float32), w.astype(np.float32), y)[0], np.float32)


def test_strided_inputs(rng):
    """A transposed (Fortran-ordered) weight and a sliced hidden are read as they are."""
    x, w, b, y, _ = make(rng, np.float64)
    wf = np.asfortranarray(w)
    xs = np.repeat(x, 2, axis=0)[::2]
    value, grads = fastloss.LinearCrossEntropy().value_and_grad(xs, wf, y, bias=b)
    expected = reference(x, w, y, b)
    assert_close(value, expected[0], np.float64)
    for g, e in zip(grads, expected[1:]):
        assert_close(g, e, np.float64)


def test_nothing_to_average(rng):
    x, w, b, y, _ = make(rng, np.float32)
    y[:] = -100
    value, (gx, gw, gb) = fastloss.LinearCrossEntropy().value_and_grad(x, w, y, bias=b)
    assert value == 0.0 and not gx.any() and not gw.any() and not gb.any()
    assert fastloss.LinearCrossEntropy()(x, w, y) == 0.0
    value, (gx, gw) = fastloss.LinearCrossEntropy().value_and_grad(x, w, y, reduction="sum")
    assert value == 0.0 and not gx.any() and not gw.any()
    empty = np.empty((0, H), np.float32)
    no_labels = np.empty(0, np.int64)
    for reduction in ("mean", "sum"):
        value, (gx, gw) = fastloss.LinearCrossEntropy().value_and_grad(
            empty, w, no_labels, reduction=reduction)
        assert value == 0.0 and gx.shape == (0, H) and gw.shape == (V, H) and not gw.any()
    assert fastloss.LinearCrossEntropy()(empty, w, no_labels, reduction="none").shape == (0,)


# ------------------------------------------------------------------ determinism ----

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_bits_for_every_thread_count(rng, dtype):
    """BLAS runs single-threaded and fastloss's threads take fixed chunks: the thread
    count changes no bit (with several row blocks and vocabulary chunks)."""
    x, w, b, y, _ = make(rng, dtype, n=300, h=70, v=_linear.FORWARD_CHUNK * 2 + 11)
    sw = rng.random(300).astype(dtype)
    loss = fastloss.LinearCrossEntropy(class_weight=rng.random(w.shape[0]),
                                       label_smoothing=0.1)
    runs = [loss.value_and_grad(x, w, y, bias=b, sample_weight=sw, n_threads=k,
                                block_rows=64) for k in (1, 2, -1, None, 3, 1)]
    for value, grads in runs[1:]:
        assert value == runs[0][0]
        for g, g0 in zip(grads, runs[0][1]):
            np.testing.assert_array_equal(g, g0)
    none = [loss(x, w, y, bias=b, reduction="none", n_threads=k) for k in (1, 2)]
    np.testing.assert_array_equal(none[0], none[1])


def test_same_bits_with_concurrent_calls(rng):
    """Calls from several Python threads at once give each the bits of a call alone (BLAS
    stays single-threaded until the last of them ends)."""
    x, w, b, y, _ = make(rng, np.float32, n=256, h=64, v=3000)
    loss = fastloss.LinearCrossEntropy()
    alone = loss.value_and_grad(x, w, y, n_threads=2)
    results = [None] * 4

    def call(i):
        results[i] = loss.value_and_grad(x, w, y, n_threads=2)
    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for value, grads in results:
        assert value == alone[0]
        for g, g0 in zip(grads, alone[1]):
            np.testing.assert_array_equal(g, g0)


def test_block_rows(rng):
    """The default block: a function of shapes and dtype, within its limits; any block
    size gives the same value to rounding."""
    assert _linear.block_rows(4096, 32000, np.dtype(np.float32)) == 1024
    assert _linear.block_rows(2048, 128000, np.dtype(np.float32)) == 256
    assert _linear.block_rows(10, 128000, np.dtype(np.float32)) == 10
    assert _linear.block_rows(10**6, 10**7, np.dtype(np.float64)) == _linear.MIN_ROWS
    x, w, b, y, _ = make(rng, np.float64)
    base = fastloss.LinearCrossEntropy().value_and_grad(x, w, y)
    for rows in (1, 7, N, 10**6):
        value, grads = fastloss.LinearCrossEntropy().value_and_grad(x, w, y, block_rows=rows)
        assert value == pytest.approx(base[0], rel=1e-13)
        for g, g0 in zip(grads, base[1]):
            np.testing.assert_allclose(g, g0, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ the object ----

def test_parameters_are_cross_entropys():
    names = [p.name for p in fastloss.LinearCrossEntropy.params]
    assert names == ["class_weight", "ignore_index", "label_smoothing"]
    ce = {p.name: p for p in fastloss.CrossEntropy.params}
    assert all(p is ce[p.name] for p in fastloss.LinearCrossEntropy.params)
    loss = fastloss.LinearCrossEntropy(class_weight=[1.0, 2.0], label_smoothing=0.1)
    assert loss.label_smoothing == 0.1 and loss.ignore_index == -100
    assert loss == pickle.loads(pickle.dumps(loss))
    assert loss != fastloss.LinearCrossEntropy()
    assert hash(loss) == hash(fastloss.LinearCrossEntropy(class_weight=[1.0, 2.0],
                                                          label_smoothing=0.1))
    assert repr(fastloss.LinearCrossEntropy()) == (
        "LinearCrossEntropy(class_weight=None, ignore_index=-100, label_smoothing=0.0)")
    assert "LinearCrossEntropy" in fastloss.__all__
    assert fastloss.LinearCrossEntropy not in fastloss.LOSSES


@pytest.mark.parametrize("kwargs, match", [
    (dict(label_smoothing=1.5), "label_smoothing must be in"),
    (dict(class_weight=[1.0, -1.0]), "class_weight must be finite and >= 0"),
    (dict(ignore_index=1.5), "ignore_index must be an integer"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fastloss.LinearCrossEntropy(**kwargs)


@pytest.mark.parametrize("change, error, match", [
    (lambda a: a.update(w=a["w"][:, :-1]), ValueError, r"weight has shape \(37, 11\): 11 "
                                                       r"features, but hidden has 12"),
    (lambda a: a.update(x=a["x"][0]), ValueError, r"hidden must be 2-D"),
    (lambda a: a.update(w=a["w"][0]), ValueError, r"weight must be 2-D"),
    (lambda a: a.update(w=a["w"][:0]), ValueError, r"at least one row"),
    (lambda a: a.update(y=a["y"][:-1]), ValueError, r"target has shape \(44,\); expected "
                                                    r"\(45,\)"),
    (lambda a: a.update(y=a["y"].astype(np.float64)), ValueError, r"integer class indices"),
    (lambda a: a.update(y=a["y"].astype(complex)), TypeError, r"target must hold real"),
    (lambda a: a.update(x=a["x"].astype(complex)), TypeError, r"hidden must hold real"),
    (lambda a: a["y"].__setitem__(4, V), ValueError, r"target\[4\] = 37 is not a class "
                                                     r"index in \[0, 37\)"),
    (lambda a: a["y"].__setitem__(4, -1), ValueError, r"target\[4\] = -1"),
    (lambda a: a.update(b=np.ones(V + 1)), ValueError, r"bias has shape \(38,\); expected "
                                                       r"\(37,\)"),
    (lambda a: a.update(sw=np.ones(N - 1)), ValueError, r"sample_weight has shape"),
    (lambda a: a.update(sw=-np.ones(N)), ValueError, r"sample_weight must be finite and"),
    (lambda a: a.update(reduction="avg"), ValueError, r"reduction must be"),
    (lambda a: a.update(rows=0), ValueError, r"block_rows must be a positive integer"),
    (lambda a: a.update(nt=0), ValueError, r"n_threads"),
])
def test_errors(rng, change, error, match):
    x, w, b, y, _ = make(rng, np.float64)
    args = dict(x=x, w=w, b=None, y=y, sw=None, reduction="mean", rows=None, nt=None)
    change(args)
    loss = fastloss.LinearCrossEntropy()
    for method in (loss, loss.value_and_grad):
        with pytest.raises(error, match=match):
            method(args["x"], args["w"], args["y"], bias=args["b"], sample_weight=args["sw"],
                   reduction=args["reduction"], block_rows=args["rows"],
                   n_threads=args["nt"])


def test_class_weight_of_another_vocabulary(rng):
    x, w, b, y, _ = make(rng, np.float32)
    loss = fastloss.LinearCrossEntropy(class_weight=np.ones(V + 2))
    with pytest.raises(ValueError, match=r"class_weight has shape \(39,\) but weight has 37 "
                                         r"rows \(classes\): expected shape \(37,\)"):
        loss.value_and_grad(x, w, y)


# ------------------------------------------------------------------ fastloss.torch ----

def _torch_inputs(rng, dtype, bias=True):
    x, w, b, y, _ = make(rng, np.float64)
    to = dict(dtype=dtype)
    xt = torch.tensor(x, **to, requires_grad=True)
    wt = torch.tensor(w, **to, requires_grad=True)
    bt = torch.tensor(b, **to, requires_grad=True) if bias else None
    return xt, wt, bt, torch.from_numpy(y)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [True, False])
def test_torch_function_against_torch(rng, dtype, reduction, bias, monkeypatch):
    seen = []
    real = _ops.linear_ce_run
    monkeypatch.setattr(_ops, "linear_ce_run",
                        lambda *a, **k: seen.append(a[8]) or real(*a, **k))
    xt, wt, bt, y = _torch_inputs(rng, dtype, bias)
    y[3] = 5
    cw = torch.tensor(rng.random(V) + 0.1, dtype=dtype)
    kw = dict(class_weight=cw, ignore_index=5, label_smoothing=0.1, reduction=reduction)
    out = flt.linear_cross_entropy(xt, wt, y, bt, **kw)
    assert seen == ([False] if reduction == "none" else [True])
    params = [xt, wt] + ([bt] if bias else [])
    g = (torch.tensor(rng.standard_normal(N), dtype=dtype) if reduction == "none"
         else torch.tensor(-1.5, dtype=dtype))        # negative per-row weights too
    grads = torch.autograd.grad(out, params, g)
    p64 = [p.detach().double().requires_grad_() for p in params]
    ref = F.cross_entropy(F.linear(p64[0], p64[1], p64[2] if bias else None), y,
                          weight=cw.double(), ignore_index=5, label_smoothing=0.1,
                          reduction=reduction)
    ref_grads = torch.autograd.grad(ref, p64, g.double())
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    assert out.dtype == dtype and out.shape == ref.shape
    assert_close(out.detach().numpy(), ref.detach().numpy(), np_dtype)
    for a, e in zip(grads, ref_grads):
        assert a.dtype == dtype
        assert_close(a.numpy(), e.numpy(), np_dtype)


def test_torch_module_and_batches(rng):
    """(B, T, H) input with (B, T) targets; the module's options and buffer."""
    cw = torch.tensor(rng.random(V) + 0.5)
    module = flt.LinearCrossEntropyLoss(weight=cw, label_smoothing=0.1, ignore_index=0)
    assert "weight" in dict(module.named_buffers())
    assert "label_smoothing=0.1" in repr(module)
    x = torch.tensor(rng.standard_normal((3, 5, H)), requires_grad=True)
    w = torch.tensor(rng.standard_normal((V, H)), requires_grad=True)
    y = torch.from_numpy(rng.integers(0, V, (3, 5)))
    loss = module(x, w, y)
    loss.backward()
    x2, w2 = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    ref = torch.nn.CrossEntropyLoss(weight=cw, label_smoothing=0.1, ignore_index=0)(
        F.linear(x2, w2).reshape(-1, V), y.reshape(-1))
    ref.backward()
    assert_close(loss.detach().numpy(), ref.detach().numpy(), np.float64)
    assert_close(x.grad.numpy(), x2.grad.numpy(), np.float64)
    assert_close(w.grad.numpy(), w2.grad.numpy(), np.float64)
    per = flt.linear_cross_entropy(x, w, y, reduction="none")
    assert per.shape == (3, 5)
    with pytest.raises(ValueError, match="reduction"):
        flt.LinearCrossEntropyLoss(reduction="avg")


def test_torch_no_grad_and_fallbacks(rng, monkeypatch):
    seen = []
    real = _ops.linear_ce_run
    monkeypatch.setattr(_ops, "linear_ce_run",
                        lambda *a, **k: seen.append(a[8]) or real(*a, **k))
    xt, wt, bt, y = _torch_inputs(rng, torch.float32)
    with torch.no_grad():
        v = flt.linear_cross_entropy(xt, wt, y, bt)
    assert seen == [False] and v.grad_fn is None
    ref = F.cross_entropy(F.linear(xt, wt, bt), y)
    assert v.item() == pytest.approx(ref.item(), rel=1e-5)
    seen.clear()
    # what fastloss does not take goes to PyTorch, with PyTorch's results and errors
    half = flt.linear_cross_entropy(xt.bfloat16(), wt.bfloat16(), y)
    assert half.dtype == torch.bfloat16
    with pytest.raises(RuntimeError, match="target dtype"):  # PyTorch's dtype error
        flt.linear_cross_entropy(xt, wt, y.int())
    with pytest.raises(RuntimeError):                        # PyTorch's dtype error
        flt.linear_cross_entropy(xt, wt.double(), y)
    assert seen == []
    with pytest.raises(RuntimeError):
        flt.linear_cross_entropy(xt, wt[:, :-1], y)         # PyTorch's shape error
    y_bad = y.clone()
    y_bad[0] = V                                             # PyTorch's own error
    with pytest.raises((IndexError, RuntimeError)):
        flt.linear_cross_entropy(xt, wt, y_bad)


def test_torch_operators(rng):
    """The custom operators (what torch.compile traces) pass opcheck and give the eager
    path's bits."""
    xt, wt, bt, y = _torch_inputs(rng, torch.float64)
    args = (xt, wt, y, bt, None, -100, 0.1, "mean")
    torch.library.opcheck(_ops.linear_ce_vg_op, args)
    torch.library.opcheck(_ops.linear_ce_op, (xt.detach(), wt.detach(), y, bt.detach())
                          + args[4:])
    eager = flt.linear_cross_entropy(xt, wt, y, bt, label_smoothing=0.1)
    value, gx, gw, gb = _ops.linear_ce_vg_op(*args)
    assert value.item() == eager.item()
    eager.backward()
    assert torch.equal(gx, xt.grad) and torch.equal(gw, wt.grad) and torch.equal(gb, bt.grad)
