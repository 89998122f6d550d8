"""Independent reference implementations of every loss, written from the contract
(docs/contract.md) with plain NumPy, and PyTorch's forms where it has them.

They share no code with fastloss's kernels: straightforward formulas (np.logaddexp,
explicit softmax), evaluated in the dtype they are given (float64 for the tests).  Each
returns per-sample losses, per-element gradients and Hessian diagonals of the *unreduced,
unweighted* loss; `reduce` applies weights and reductions.  The tests check fastloss
against them; the benchmarks time them as what a NumPy user would write.
"""
import numpy as np


def _mse(x, t):
    r = x - t
    return r * r, 2 * r, np.full_like(r, 2.0)


def _mae(x, t):
    r = x - t
    return np.abs(r), np.sign(r), np.ones_like(r)


def _pseudo_huber(x, t, delta=1.0):
    r = x - t
    q = 1 + (r / delta) ** 2
    # delta^2 (sqrt(q) - 1) written as r^2 / (sqrt(q) + 1): the same value, no cancellation
    return r * r / (np.sqrt(q) + 1), r / np.sqrt(q), q**-1.5


def expit(z):
    """sigmoid(z) without overflow or cancellation (so 1 - sigmoid(z) = expit(-z))."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def bce_logits(x, t, pw=1.0):
    s, sc = expit(x), expit(-x)
    loss = pw * t * np.logaddexp(0, -x) + (1 - t) * np.logaddexp(0, x)
    a = pw * t + 1 - t
    return loss, (1 - t) * s - pw * t * sc, a * s * sc


def bce_probs(p, t, pw=1.0):
    with np.errstate(divide="ignore"):
        lp = np.maximum(np.log(p), -100)
        lq = np.maximum(np.log1p(-p), -100)
    loss = -(pw * t * lp + (1 - t) * lq)
    d = p * (1 - p)
    clamped = d <= 1e-12
    a = pw * t + 1 - t
    grad = (a * p - pw * t) / np.where(clamped, 1e-12, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        hess = np.where(clamped, a / 1e-12, pw * t / p**2 + (1 - t) / (1 - p) ** 2)
    return loss, grad, hess


def softmax_parts(x):
    """(log p, p, 1 - p), each to full relative precision: log S = log1p(S - 1) and, at a
    row's (single) maximum, 1 - p = (S - 1) / S with S - 1 summed from the other classes."""
    m = np.max(x, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        e = np.exp(x - m)
    top = (x == m) & (np.cumsum(x == m, axis=-1) == 1)          # first maximum of each row
    s_minus_1 = np.sum(np.where(top, 0.0, e), axis=-1, keepdims=True)
    S = 1 + s_minus_1
    lp = x - m - np.log1p(s_minus_1)
    p = e / S
    q = np.where(top, s_minus_1 / S, 1 - p)
    return lp, p, q


def log_softmax(x):
    return softmax_parts(x)[0]


def target_weights(x_shape, target, class_weight=None, label_smoothing=0.0,
                   ignore_index=-100):
    """a_c = w_c ((1 - e) t_c + e / C) for every row, with t one-hot for class indices;
    rows with ignore_index get a = 0.  Also returns the 'mean' denominator per row."""
    C = x_shape[-1]
    w = np.ones(C) if class_weight is None else np.asarray(class_weight, dtype=np.float64)
    if np.asarray(target).shape == tuple(x_shape):
        t = np.asarray(target, dtype=np.float64)
        a = w * ((1 - label_smoothing) * t + label_smoothing / C)
        return a, np.ones(x_shape[:-1])
    y = np.asarray(target)
    ignored = y == ignore_index
    yc = np.where(ignored, 0, y)
    onehot = np.zeros(yc.shape + (C,))
    np.put_along_axis(onehot, yc[..., None], 1.0, axis=-1)
    a = w * ((1 - label_smoothing) * onehot + label_smoothing / C)
    a[ignored] = 0
    denom = np.where(ignored, 0.0, w[yc])
    return a, denom


def softmax_ce(x, a):
    """Per-row -sum a log softmax(x) (0 log 0 = 0), gradient A p - a, Hessian A p (1 - p).
    A p_c - a_c is formed as (A - a_c) p_c - a_c (1 - p_c), exact when p_c is near 1."""
    lp, p, q = softmax_parts(x)
    A = a.sum(-1, keepdims=True)
    others = np.sum(a, axis=-1, keepdims=True) - a
    others = np.where(a == A, 0.0, others)
    with np.errstate(invalid="ignore"):
        loss = -np.sum(np.where(a == 0, 0.0, a * lp), axis=-1)
    return loss, others * p - a * q, A * p * q


def prob_ce(p, a):
    """From probabilities: -sum a clamp(log p, -100), gradient -a / max(p, 1e-12)."""
    with np.errstate(divide="ignore"):
        lp = np.maximum(np.log(p), -100)
    loss = -np.sum(np.where(a == 0, 0.0, a * lp), axis=-1)
    grad = -a / np.maximum(p, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        hess = np.where(p > 1e-12, a / p**2, 0.0)
    return loss, grad, hess


def kl_logits(x, t):
    lp, p, q = softmax_parts(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = np.sum(np.where(t == 0, 0.0, t * (np.log(t) - lp)), axis=-1)
    T = t.sum(-1, keepdims=True)
    return loss, T * p - t, T * p * q


def kl_probs(q, t):
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = np.maximum(np.log(q), -100)
        loss = np.sum(np.where(t == 0, 0.0, t * (np.log(t) - lq)), axis=-1)
        hess = np.where(q > 1e-12, t / q**2, 0.0)
    return loss, -t / np.maximum(q, 1e-12), hess


def reduce(loss, grad, hess, reduction, weight=None, denom=None, per_row=False, axis=-1):
    """Apply docs/contract.md's weights and reductions.

    loss: per-sample losses; grad, hess: per element (for per_row losses the last axis is
    classes).  weight: per-sample weights broadcastable to loss.shape (None: ones).
    denom: per-sample contribution to the "mean" denominator before weighting (class weight
    of the label for cross-entropy with indices; None: ones).
    Returns (value, grad, hess) of the reduced loss.
    """
    w = np.ones(loss.shape) if weight is None else np.broadcast_to(weight, loss.shape)
    d = np.ones(loss.shape) if denom is None else denom
    wl = w * loss
    total = (w * d).sum()
    if reduction == "mean":
        if total == 0:
            return 0.0, np.zeros_like(grad), np.zeros_like(hess)
        scale = 1 / total
        value = wl.sum() * scale
    elif reduction == "sum":
        scale, value = 1.0, wl.sum()
    else:
        scale, value = 1.0, wl
    we = np.expand_dims(w * scale, axis % grad.ndim) if per_row else w * scale
    return value, we * grad, we * hess


def expand_weight(sample_weight, sample_shape):
    """A (N,) or full-shape sample weight broadcast to the per-sample loss shape."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape == tuple(sample_shape):
        return w
    return w.reshape(w.shape + (1,) * (len(sample_shape) - 1))


def numeric_gradient(f, x, h):
    """4th-order central differences of the scalar function f at every element of x."""
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = h
        g.flat[i] = (-f(x + 2 * e) + 8 * f(x + e) - 8 * f(x - e) + f(x - 2 * e)) / (12 * h)
    return g


# ------------------------------------------------------------------ by loss ----
# One entry per row of the loss table (fastloss/losses.py), named as the row's `name` and
# taking its parameters: (per-sample loss, gradient, Hessian, "mean" denominator per sample
# or None) of the unreduced, unweighted loss, in float64 unless given float32 data.  The
# tests run every loss of the table against these; the benchmarks time them as the NumPy
# peer.  `torch_<name>`, where PyTorch can express the loss, gives its per-sample loss as a
# differentiable tensor (PyTorch's own function where it has one, else the formula).

# ------------------------------------------------------------------ example data ----
# Inputs and targets for any loss of the table, from what its row says it reads: for the
# tests, the benchmarks and the stress tool.

def example_target(loss, x, rng, labels=True):
    """A valid target for `loss` and input `x`, by what the row says its target holds."""
    kind = loss.target
    axis = getattr(loss, "axis", -1) % max(x.ndim, 1)
    if kind == "labels or probabilities" and labels:
        return rng.integers(0, x.shape[axis], x.shape[:axis] + x.shape[axis + 1:])
    if kind in ("distribution", "labels or probabilities"):
        t = rng.uniform(size=x.shape)
        t = t / t.sum(axis, keepdims=True) if x.shape[axis] else t
        if getattr(loss, "log_target", False):
            t = np.log(t)
        return t.astype(x.dtype)
    if kind == "probability":
        t = rng.uniform(size=x.shape)
        return (np.log(t) if getattr(loss, "log_target", False) else t).astype(x.dtype)
    if kind == "count":
        return rng.poisson(2.0, size=x.shape).astype(x.dtype)
    return rng.normal(size=x.shape).astype(x.dtype)


def example_input(loss, shape, rng, dtype=np.float64, scale=2.0):
    """An input for `loss`: logits or real values, or probabilities where the loss reads
    probabilities (from_logits=False)."""
    if getattr(loss, "from_logits", True):
        return (rng.normal(size=shape) * scale).astype(dtype)
    if loss.family == "softmax":
        axis = loss.axis % len(shape)
        p = rng.dirichlet(np.ones(shape[axis]), shape[:axis] + shape[axis + 1:])
        return np.moveaxis(p, -1, axis).astype(dtype)
    return rng.uniform(0.02, 0.98, shape).astype(dtype)


def misaligned(a):
    """A copy of array `a` at an address that is not a multiple of its item size (the
    tests and the stress tool pass such arrays)."""
    a = np.asarray(a)
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, a.dtype, a.size, 1).reshape(a.shape)
    out[...] = a
    return out


def _pointwise(parts):
    return (*parts, None)


def by_name(name):
    """The NumPy reference of the loss called `name` (a row's `name`)."""
    return globals()[name]


def torch_by_name(name):
    """The PyTorch reference of `name`, or None if there is none."""
    return globals().get("torch_" + name)


def mse(x, t):
    return _pointwise(_mse(x, t))


def mae(x, t):
    return _pointwise(_mae(x, t))


def pseudo_huber(x, t, delta=1.0):
    return _pointwise(_pseudo_huber(x, t, delta))


def huber(x, t, delta=1.0):
    r = x - t
    inside = np.abs(r) <= delta
    loss = np.where(inside, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
    return loss, np.clip(r, -delta, delta), inside.astype(r.dtype), None


def poisson_nll(x, t, log_input=True):
    e = np.exp(x)
    return e - t * x, e - t, e, None


def kl_div(x, t, log_target=False):
    p = np.exp(t) if log_target else t
    lt = t if log_target else np.log(np.where(t > 0, t, 1.0))
    loss = np.where(p == 0, 0.0, p * (lt - x))
    return loss, -p, np.zeros_like(p), None


def binary_cross_entropy(x, t, from_logits=True, pos_weight=None):
    pw = 1.0 if pos_weight is None else pos_weight
    return _pointwise((bce_logits if from_logits else bce_probs)(x, t, pw))


def _classes_on(axis, x, target, fn):
    """fn(x, target) with the classes moved to the last axis, its outputs moved back."""
    if axis in (-1, x.ndim - 1):
        return fn(x, target)
    target = np.asarray(target)
    dense = target.shape == x.shape
    l, g, h, denom = fn(np.moveaxis(x, axis, -1), np.moveaxis(target, axis, -1) if dense
                        else target)
    return l, np.moveaxis(g, -1, axis), np.moveaxis(h, -1, axis), denom


def cross_entropy(x, target, from_logits=True, class_weight=None, ignore_index=-100,
                  label_smoothing=0.0, axis=-1):
    def last(x, target):
        a, denom = target_weights(x.shape, target, class_weight, label_smoothing,
                                  ignore_index)
        if np.asarray(target).shape == x.shape:
            denom = None                # probability targets: "mean" is over rows
        return (*(softmax_ce if from_logits else prob_ce)(x, a), denom)
    return _classes_on(axis, x, target, last)


def kl_divergence(x, t, from_logits=True, log_target=False, axis=-1):
    def last(x, t):
        if log_target:
            t = np.exp(t)
        return (*(kl_logits if from_logits else kl_probs)(x, t), None)
    return _classes_on(axis, x, t, last)


def torch_mse(x, t):
    import torch
    return torch.nn.functional.mse_loss(x, t, reduction="none")


def torch_mae(x, t):
    import torch
    return torch.nn.functional.l1_loss(x, t, reduction="none")


def torch_pseudo_huber(x, t, delta=1.0):
    import torch                        # PyTorch has none: its formula, under autograd,
    r = x - t                           # as r^2 / (S + 1) = delta^2 (S - 1): no cancellation
    return r * r / (torch.sqrt(1 + (r / delta) ** 2) + 1)


def torch_huber(x, t, delta=1.0):
    import torch
    return torch.nn.functional.huber_loss(x, t, delta=delta, reduction="none")


def torch_poisson_nll(x, t, log_input=True):
    import torch
    return torch.nn.functional.poisson_nll_loss(x, t, log_input=True, full=False,
                                                reduction="none")


def torch_kl_div(x, t, log_target=False):
    import torch
    return torch.nn.functional.kl_div(x, t, reduction="none", log_target=log_target)


def torch_binary_cross_entropy(x, t, from_logits=True, pos_weight=None):
    import torch
    pw = None if pos_weight is None else torch.tensor(np.array(pos_weight), dtype=x.dtype)
    if from_logits:
        return torch.nn.functional.binary_cross_entropy_with_logits(
            x, t, pos_weight=pw, reduction="none")
    lp = torch.clamp(torch.log(x), min=-100)
    lq = torch.clamp(torch.log1p(-x), min=-100)
    return -((1.0 if pw is None else pw) * t * lp + (1 - t) * lq)


def torch_cross_entropy(x, target, from_logits=True, class_weight=None, ignore_index=-100,
                        label_smoothing=0.0, axis=-1):
    import torch
    if axis not in (-1, x.dim() - 1):
        dense = target.dim() == x.dim()
        return torch_cross_entropy(x.movedim(axis, -1), target.movedim(axis, -1) if dense
                                   else target, from_logits, class_weight, ignore_index,
                                   label_smoothing)
    cw = None if class_weight is None else torch.tensor(np.array(class_weight), dtype=x.dtype)
    C = x.shape[-1]
    if not from_logits:                 # probabilities: PyTorch's clamped log, by hand
        lp = torch.clamp(torch.log(x), min=-100)
        w = torch.ones(C, dtype=x.dtype) if cw is None else cw
        if target.dim() == x.dim():
            a = w * ((1 - label_smoothing) * target + label_smoothing / C)
        else:
            keep = (target != ignore_index)
            y = torch.where(keep, target, torch.zeros_like(target))
            onehot = torch.nn.functional.one_hot(y, C).to(x.dtype)
            a = w * ((1 - label_smoothing) * onehot + label_smoothing / C)
            a = a * keep.unsqueeze(-1).to(x.dtype)
        return -(a * lp).sum(-1)
    flat = x.reshape(-1, C)
    tgt = target.reshape(-1) if target.dim() == x.dim() - 1 else target.reshape(-1, C)
    per = torch.nn.functional.cross_entropy(flat, tgt, weight=cw, ignore_index=ignore_index,
                                            label_smoothing=label_smoothing, reduction="none")
    return per.reshape(x.shape[:-1])


def torch_kl_divergence(x, t, from_logits=True, log_target=False, axis=-1):
    import torch
    if axis not in (-1, x.dim() - 1):
        return torch_kl_divergence(x.movedim(axis, -1), t.movedim(axis, -1), from_logits,
                                   log_target)
    lq = torch.log_softmax(x, -1) if from_logits else torch.clamp(torch.log(x), min=-100)
    return torch.nn.functional.kl_div(lq, t, reduction="none", log_target=log_target).sum(-1)
