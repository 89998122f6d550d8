"""The loss classes: a thin layer over the Cython kernels.

Every loss has the same three methods (see :class:`Loss`).  A call validates its arguments
once (fastloss._validation), resolves the compute dtype and the thread count, allocates the
outputs, and makes one kernel call that reads the data once and writes each output once.
"""
from __future__ import annotations

import math
import operator
from typing import Literal, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _dispatch
from ._kernels import checks
from ._validation import (F32, F64, REDUCTIONS, as_array, as_float, check_no_overlap,
                          aligned_c, check_out, check_reduction, check_same_shape,
                          checked_weights, compute_dtype, readable, resolve_threads, rows_view)

__all__ = ["Loss", "MSE", "MAE", "PseudoHuber", "BinaryCrossEntropy", "CrossEntropy",
           "KLDivergence", "mse", "mae", "pseudo_huber", "cross_entropy",
           "binary_cross_entropy", "kl_divergence"]

# What a kernel computes (the same values as in _kernels/blocks.pxd).
VALUE, GRAD, HESS = 1, 2, 4

Reduction = Literal["mean", "sum", "none"]
Value = Union[float, np.ndarray]


class Loss:
    """Common interface of every fastloss loss.

    ``loss(input, target, *, sample_weight=None, reduction="mean", n_threads=None)``
        The loss value: a Python float for ``"mean"`` and ``"sum"``, an array of per-sample
        losses for ``"none"``.  Allocates nothing proportional to the input otherwise.
    ``loss.value_and_grad(input, target, *, ..., reduction="mean", out=None)``
        ``(value, grad)`` in one pass; ``grad`` has the input's shape and is the gradient
        of the returned value (for ``"mean"`` it includes the 1 / sum(w) factor).
    ``loss.grad_hess(input, target, *, ..., reduction="sum", out=None)``
        ``(grad, hess)``: gradient and Hessian diagonal of the reduced loss, for
        gradient-boosting backends.

    Common arguments
    ----------------
    sample_weight : array-like, optional
        Non-negative finite weights, one per leading-axis sample (shape ``(N,)``) or one
        per per-sample loss.  ``"mean"`` is ``sum(w l) / sum(w)``; ``"none"`` gives ``w l``.
    reduction : {"mean", "sum", "none"}
    n_threads : int, optional
        ``None`` follows OpenMP's default (``OMP_NUM_THREADS``, threadpoolctl limits),
        ``-1`` uses every core, ``k >= 1`` uses ``k`` (at most the number of cores).
        Results are bitwise identical for every thread count.
    out : ndarray, or (ndarray, ndarray) for ``grad_hess``, optional
        Preallocated C-contiguous writeable output(s) of the input's shape and compute
        dtype, not overlapping any argument; filled and returned.

    Dtypes: float32 input is computed in float32, float64 in float64, other real dtypes
    are converted to float64; the target follows the input.  Sums accumulate in float64.
    """

    __slots__ = ()

    def __call__(self, input: ArrayLike, target: ArrayLike, *,
                 sample_weight: ArrayLike | None = None, reduction: Reduction = "mean",
                 n_threads: int | None = None) -> Value:
        """The loss value (a float, or per-sample losses for ``reduction="none"``)."""
        return self._run(VALUE, input, target, sample_weight, reduction, n_threads, None)

    def value_and_grad(self, input: ArrayLike, target: ArrayLike, *,
                       sample_weight: ArrayLike | None = None, reduction: Reduction = "mean",
                       n_threads: int | None = None,
                       out: np.ndarray | None = None) -> tuple[Value, np.ndarray]:
        """``(value, grad)`` in one pass; ``grad`` is the gradient of ``value``."""
        return self._run(VALUE | GRAD, input, target, sample_weight, reduction, n_threads, out)

    def grad_hess(self, input: ArrayLike, target: ArrayLike, *,
                  sample_weight: ArrayLike | None = None, reduction: Reduction = "sum",
                  n_threads: int | None = None,
                  out: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``(grad, hess)``: gradient and Hessian diagonal of the reduced loss."""
        return self._run(GRAD | HESS, input, target, sample_weight, reduction, n_threads, out)

    def _run(self, mode, input, target, sample_weight, reduction, n_threads, out):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def _params(self) -> dict:
        return {}


def _outputs(mode, out, x, inputs):
    """(grad, hess) arrays for this call: checked `out` or freshly allocated (or None)."""
    if not mode & GRAD:
        return None, None
    if out is None:
        grad = np.empty(x.shape, x.dtype)
        return grad, (np.empty(x.shape, x.dtype) if mode & HESS else None)
    if mode & HESS:
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ValueError("out for grad_hess must be a pair (grad, hess) of arrays")
        grad, hess = out
        if not checks.plain_out(grad, x):
            check_out(grad, x.shape, x.dtype, "out[0]", "gradient")
        if not checks.plain_out(hess, x):
            check_out(hess, x.shape, x.dtype, "out[1]", "Hessian")
        check_no_overlap([grad], [hess])
        check_no_overlap([grad, hess], inputs)
        return grad, hess
    if not checks.plain_out(out, x):
        check_out(out, x.shape, x.dtype, "out", "gradient")
    check_no_overlap([out], inputs)
    return out, None


def _nothing_to_average(mode, grad, hess):
    """"mean" over no valid samples (empty, all ignored, all weights 0): 0.0 and a zero
    gradient, never NaN."""
    for arr in (grad, hess):
        if arr is not None:
            arr.fill(0)
    return _result(mode, 0.0, grad, hess)


def _scale(reduction, total_w):
    """What the kernels multiply gradient and Hessian by: 1 / sum(w) for "mean"."""
    return 1.0 / total_w if reduction == "mean" else 1.0


def _value(reduction, total, total_w, per_sample):
    """The reduced value from the kernel's weighted sum (per-sample losses for "none")."""
    if per_sample is not None:
        return per_sample
    return total / total_w if reduction == "mean" else total


def _result(mode, value, grad, hess):
    if mode == VALUE:
        return value
    if mode & HESS:
        return grad, hess
    return value, grad


class _Pointwise(Loss):
    """A loss of one element: per-sample losses, gradient and Hessian have the input's shape."""

    __slots__ = ()
    _kernel_id: int

    def _param(self) -> float:
        return 0.0

    def _pos_weight(self, dtype, shape):
        return None, 1

    def _run(self, mode, input, target, sample_weight, reduction, n_threads, out):
        if checks.plain_pair(input, target):        # the common case, checked in ~50 ns
            x, t = input, target
        else:
            x = as_float(input, "input")
            t = as_float(target, "target", x.dtype)
            if t.shape != x.shape:
                check_same_shape(x, t)
        if reduction not in REDUCTIONS:
            check_reduction(reduction)
        nt = resolve_threads(n_threads)
        dtype, shape = x.dtype, x.shape
        if sample_weight is None:
            w, group, total_w = None, 1, x.size
        else:
            w, group, total_w = checked_weights(sample_weight, dtype, shape, nt)
        pw, period = self._pos_weight(dtype, shape)
        grad, hess = _outputs(mode, out, x, (x, t, w))
        if reduction == "mean" and total_w == 0:
            return _nothing_to_average(mode, grad, hess)
        value = np.empty(shape, dtype) if reduction == "none" and mode & VALUE else None
        total = _dispatch.kernels.pointwise.pointwise(
            self._kernel_id, mode, readable(x), readable(t), w, group, pw, period, value,
            grad, hess, _scale(reduction, total_w), self._param(), nt)
        return _result(mode, _value(reduction, total, total_w, value), grad, hess)


class MSE(_Pointwise):
    """Mean squared error: ``l = (x - t)^2``, ``grad = 2 (x - t)``, ``hess = 2``.

    Example
    -------
    >>> import numpy as np, fastloss
    >>> fastloss.MSE()(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    2.5
    >>> value, grad = fastloss.MSE().value_and_grad(np.array([1.0, 2.0]), np.zeros(2))
    >>> grad
    array([1., 2.])
    """

    __slots__ = ()
    _kernel_id = 0


class MAE(_Pointwise):
    """Mean absolute error: ``l = |x - t|``, ``grad = sign(x - t)`` (0 at ``x == t``).

    The Hessian is taken as 1, the usual surrogate in gradient boosting (the true second
    derivative is 0 almost everywhere).

    Example
    -------
    >>> import fastloss
    >>> fastloss.MAE()([1.0, -3.0], [0.0, 0.0])
    2.0
    """

    __slots__ = ()
    _kernel_id = 1


class PseudoHuber(_Pointwise):
    """Pseudo-Huber loss: ``l = delta^2 (sqrt(1 + (r / delta)^2) - 1)``, ``r = x - t``.

    ``grad = r / sqrt(1 + (r / delta)^2)``, ``hess = (1 + (r / delta)^2)^(-3/2)``.  Quadratic
    for ``|r| << delta``, linear with slope ``delta`` for ``|r| >> delta``; computed without
    cancellation or overflow for every finite ``r``.

    Parameters
    ----------
    delta : float, default 1.0
        Finite and > 0, else ``ValueError``.

    Example
    -------
    >>> import fastloss
    >>> round(fastloss.PseudoHuber(delta=2.0)([3.0], [0.0]), 6)
    3.211103
    """

    __slots__ = ("delta",)
    _kernel_id = 2

    def __init__(self, delta: float = 1.0):
        self.delta = _positive_finite(delta, "delta")

    def _param(self) -> float:
        return self.delta

    def _params(self):
        return {"delta": self.delta}


class BinaryCrossEntropy(_Pointwise):
    """Binary cross-entropy, elementwise (multi-label): targets are probabilities in [0, 1].

    With ``s = sigmoid(x)`` (``from_logits=True``, the default) or ``s = x``
    (``from_logits=False``):

    ``l = -(pw t log s + (1 - t) log(1 - s))``, ``grad = (pw t + 1 - t) s - pw t`` with respect
    to the logits, ``hess = (pw t + 1 - t) s (1 - s)``.

    From logits the loss uses the stable form ``softplus(x) = max(x, 0) + log1p(exp(-|x|))``
    and is finite for all finite logits (tested to 1e30).  From probabilities, as in
    ``torch.nn.functional.binary_cross_entropy``, each log is clamped at -100 and the
    gradient with respect to ``p`` divides by ``max(p (1 - p), 1e-12)``; the Hessian is the
    derivative of that gradient.  Targets are not range-checked (as in PyTorch).

    Parameters
    ----------
    from_logits : bool, default True
    pos_weight : array-like, optional
        Weight of the positive term, broadcast over the last axis: a scalar or shape
        ``(C,)`` with ``C = input.shape[-1]``; finite and >= 0.

    Example (multi-label: three independent labels per sample)
    -------
    >>> import numpy as np, fastloss
    >>> logits = np.array([[2.0, -1.0, 0.5], [-0.5, 1.5, -2.0]])
    >>> labels = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    >>> round(fastloss.BinaryCrossEntropy()(logits, labels), 6)
    0.286114
    """

    __slots__ = ("from_logits", "pos_weight", "_pw")

    def __init__(self, from_logits: bool = True, pos_weight=None):
        self.from_logits = bool(from_logits)
        self.pos_weight = None
        self._pw = {}
        if pos_weight is not None:
            pw = np.array(as_float(pos_weight, "pos_weight", F64), dtype=F64, order="C")
            if pw.ndim > 1:
                raise ValueError(f"pos_weight must be a scalar or 1-D (broadcast over the last "
                                 f"axis); got shape {pw.shape}")
            if not np.all(np.isfinite(pw) & (pw >= 0)):
                raise ValueError("pos_weight must be finite and >= 0")
            pw.flags.writeable = False
            self.pos_weight = pw
            self._pw = {F64: pw.reshape(-1), F32: pw.reshape(-1).astype(F32)}

    @property
    def _kernel_id(self):
        return 3 if self.from_logits else 4

    def _pos_weight(self, dtype, shape):
        if self.pos_weight is None:
            return None, 1
        pw = self._pw[dtype]
        last = shape[-1] if shape else 1
        if pw.size != 1 and pw.size != last:
            raise ValueError(f"pos_weight of shape {self.pos_weight.shape} does not broadcast "
                             f"over the last axis of input shape {shape}")
        return pw, pw.size

    def _params(self):
        return {"from_logits": self.from_logits, "pos_weight": self.pos_weight}


def _positive_finite(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}") from None
    if isinstance(value, (bool, np.bool_)) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return v


# ------------------------------------------------------------------ softmax losses ----

CE_INDEX, CE_PROBS, KL, KL_LOG = 0, 1, 2, 3     # as in _kernels/softmax.pyx
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def _class_labels(target, n_cls) -> np.ndarray:
    """Integer class labels as C-contiguous int64 (values are checked by the kernel pass)."""
    y = as_array(target, "target")
    if y.dtype.kind == "u" and y.size and y.max() > np.iinfo(np.int64).max:
        pos = np.unravel_index(int(np.argmax(y)), y.shape)
        raise ValueError(f"target[{', '.join(map(str, pos))}] = {y[pos]} is not a class "
                         f"index in [0, {n_cls})")
    return aligned_c(y, np.int64)


class _Softmax(Loss):
    """A loss over the last axis (classes): one value per row, shape input.shape[:-1]."""

    __slots__ = ()
    _takes_labels = False                   # True: targets may be integer class labels

    def _targets(self, target, x):
        """(kernel kind, int64 labels or None, float targets or None)."""
        raise NotImplementedError

    def _class_weight(self, dtype, n_cls):
        return None, float(n_cls)

    def _run(self, mode, input, target, sample_weight, reduction, n_threads, out):
        x = input if checks.plain_float(input) else as_float(input, "input")
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"input must have a last axis of at least one class; "
                             f"got shape {x.shape}")
        dtype = x.dtype
        shape, sample_shape, n_cls = x.shape, x.shape[:-1], x.shape[-1]
        if self._takes_labels and checks.plain_labels(target, x):   # common: ~50 ns
            kind, y, t = CE_INDEX, target, None
        else:
            kind, y, t = self._targets(target, x)
        if reduction not in REDUCTIONS:
            check_reduction(reduction)
        nt = resolve_threads(n_threads)
        if sample_weight is None:
            w, group, total_w = None, 1, float(math.prod(sample_shape))
        else:
            w, group, total_w = checked_weights(sample_weight, dtype, sample_shape, nt)
        cw, cw_sum = self._class_weight(dtype, n_cls)
        if kind == CE_INDEX:
            total_w, bad = checks.labels(y, n_cls, self.ignore_index, cw, w, group,
                                         dtype is F32, nt)
            if bad >= 0:
                pos = np.unravel_index(bad, y.shape) if y.ndim else ()
                raise ValueError(f"target[{', '.join(map(str, pos))}] = "
                                 f"{y.reshape(-1)[bad]} is not a class index in [0, {n_cls}) "
                                 f"nor ignore_index={self.ignore_index}")
        grad, hess = _outputs(mode, out, x, (x, y, t, w))
        if reduction == "mean" and total_w == 0:
            return _nothing_to_average(mode, grad, hess)
        value = np.empty(sample_shape, dtype) if reduction == "none" and mode & VALUE else None
        total, bad = _dispatch.kernels.softmax.softmax(
            kind, mode, self.from_logits, rows_view(x), y, None if t is None else rows_view(t),
            cw, cw_sum, w, group, value, grad, hess, _scale(reduction, total_w),
            self._smoothing(), self._ignore(), nt)
        if bad >= 0:
            _labels_changed(y, bad, n_cls, self.ignore_index)
        return _result(mode, _value(reduction, total, total_w, value), grad, hess)

    def _smoothing(self) -> float:
        return 0.0

    def _ignore(self) -> int:
        return 0


def _labels_changed(y, bad, n_cls, ignore_index):
    """The kernel read a label that had been in range when checked and was not any more:
    the caller's labels were written during the call (by another thread)."""
    pos = np.unravel_index(bad, y.shape) if y.ndim else ()
    raise ValueError(f"target[{', '.join(map(str, pos))}] changed during the call (another "
                     f"thread wrote to the labels) to a value that is not a class index in "
                     f"[0, {n_cls}) nor ignore_index={ignore_index}; that row was counted "
                     f"as ignored and the outputs of this call are not valid")


class CrossEntropy(_Softmax):
    """Cross-entropy over the last axis (classes), with PyTorch's options and semantics.

    ``input`` holds logits (``from_logits=True``, the default) or probabilities, shape
    ``(..., C)``.  ``target`` is either integer class indices of shape ``input.shape[:-1]``
    (any integer dtype) or class probabilities of ``input``'s shape.

    Per row, with ``p = softmax(x)``, class weights ``w`` and smoothing ``e``:
    ``l = (1 - e) w_y (-log p_y) + (e / C) sum_c w_c (-log p_c)`` for class indices,
    ``l = -sum_c w_c ((1 - e) t_c + e / C) log p_c`` for probabilities.  The gradient with
    respect to the logits is ``A p - a`` (``a_c`` the weighted smoothed target, ``A`` its
    sum), the Hessian diagonal ``A p (1 - p)``.

    ``"mean"`` divides by the sum of ``w_y`` (times sample weights) over rows that are not
    ignored, as PyTorch does; with probability targets it divides by the number of rows
    (or the sum of sample weights), also as PyTorch does.  Rows whose label equals
    ``ignore_index`` contribute 0 and get a zero gradient.  Logits of ``-inf`` mask a class
    (gradient exactly 0 there); with probability targets a class whose target is 0
    contributes 0 even when masked (``0 log 0 = 0``; PyTorch would give NaN).  Label
    smoothing makes every class a target, so a masked class then makes the loss infinite,
    as in PyTorch.  With ``from_logits=False``, each log is clamped at -100, the gradient
    divides by ``max(p, 1e-12)``, and the Hessian is that gradient's derivative
    (``a_c / p_c^2``, and 0 where ``p_c <= 1e-12``).

    Parameters
    ----------
    from_logits : bool, default True
    class_weight : array-like of shape (C,), optional; finite and >= 0
    ignore_index : int, default -100
    label_smoothing : float in [0, 1], default 0

    Example: three classes, cat / car / rhino
    -------
    >>> import numpy as np, fastloss
    >>> logits = np.array([[2.0, 0.5, -1.0],     # confident: cat
    ...                    [0.1, 0.2, 3.0]])     # confident: rhino
    >>> labels = np.array([0, 1])                # truth: cat, car
    >>> loss = fastloss.CrossEntropy()
    >>> round(loss(logits, labels), 4)
    1.5755
    >>> value, grad = loss.value_and_grad(logits, labels)
    >>> grad.round(3)
    array([[-0.107,  0.088,  0.02 ],
           [ 0.025, -0.473,  0.448]])
    """

    __slots__ = ("from_logits", "class_weight", "ignore_index", "label_smoothing", "_cw")
    _takes_labels = True

    def __init__(self, from_logits: bool = True, class_weight=None, ignore_index: int = -100,
                 label_smoothing: float = 0.0):
        self.from_logits = bool(from_logits)
        if isinstance(ignore_index, (bool, np.bool_)) or not hasattr(ignore_index, "__index__"):
            raise ValueError(f"ignore_index must be an integer; got {ignore_index!r}")
        self.ignore_index = operator.index(ignore_index)
        if not _INT64_MIN <= self.ignore_index <= _INT64_MAX:
            raise ValueError(f"ignore_index must fit in int64 (labels are int64); got "
                             f"{ignore_index!r}")
        try:
            eps = float(label_smoothing)
        except (TypeError, ValueError):
            raise ValueError(f"label_smoothing must be a number in [0, 1]; "
                             f"got {label_smoothing!r}") from None
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1]; got {label_smoothing!r}")
        self.label_smoothing = eps
        self.class_weight = None
        self._cw = {}
        if class_weight is not None:
            cw = np.array(as_float(class_weight, "class_weight", F64), dtype=F64, order="C")
            if cw.ndim != 1:
                raise ValueError(f"class_weight must have shape (C,); got {cw.shape}")
            if not np.all(np.isfinite(cw) & (cw >= 0)):
                raise ValueError("class_weight must be finite and >= 0")
            cw.flags.writeable = False
            self.class_weight = cw
            self._cw = {F64: cw, F32: cw.astype(F32)}

    def _class_weight(self, dtype, n_cls):
        if self.class_weight is None:
            return None, float(n_cls)
        if self.class_weight.shape != (n_cls,):
            raise ValueError(f"class_weight has shape {self.class_weight.shape} but the input "
                             f"has {n_cls} classes (expected shape ({n_cls},))")
        cw = self._cw[dtype]
        return cw, float(cw.sum(dtype=np.float64))

    def _targets(self, target, x):
        tgt = as_array(target, "target")
        sample_shape = x.shape[:-1]
        if tgt.shape == sample_shape:
            if tgt.dtype.kind in "iu":
                return CE_INDEX, _class_labels(tgt, x.shape[-1]), None
            if tgt.dtype.kind in "fbc":
                raise ValueError(f"class indices must be integers; got a target of dtype "
                                 f"{tgt.dtype} and shape {tgt.shape} (for probabilities, "
                                 f"give the input's shape {x.shape})")
            compute_dtype(tgt.dtype, "target")         # raises TypeError
        if tgt.shape == x.shape:
            return CE_PROBS, None, as_float(tgt, "target", x.dtype)
        raise ValueError(f"target shape {tgt.shape} matches neither class indices "
                         f"{sample_shape} nor probabilities {x.shape} for input shape "
                         f"{x.shape}")

    def _smoothing(self):
        return self.label_smoothing

    def _ignore(self):
        return self.ignore_index

    def _params(self):
        return {"from_logits": self.from_logits, "class_weight": self.class_weight,
                "ignore_index": self.ignore_index, "label_smoothing": self.label_smoothing}


class KLDivergence(_Softmax):
    """Kullback-Leibler divergence ``KL(t || q)`` per row over the last axis.

    ``l = sum_c t_c (log t_c - log q_c)`` with ``q = softmax(x)`` (``from_logits=True``, the
    default) or ``q = x`` (probabilities), and ``0 log 0 = 0``.  ``log_target=True`` means the
    target holds ``log t``.  Gradient with respect to the logits ``sum(t) q - t``, Hessian
    diagonal ``sum(t) q (1 - q)``.  ``"mean"`` averages over rows (PyTorch's
    ``reduction="batchmean"``, the mathematically correct KL mean; PyTorch's ``"mean"``
    would divide by the number of elements).  A target of 0 (``-inf`` with ``log_target``)
    contributes exactly 0, where PyTorch's ``log_target`` form gives NaN.

    Example
    -------
    >>> import numpy as np, fastloss
    >>> t = np.array([[0.5, 0.5, 0.0]])
    >>> round(fastloss.KLDivergence()(np.log([[0.25, 0.25, 0.5]]), t), 6)
    0.693147
    """

    __slots__ = ("from_logits", "log_target")

    def __init__(self, from_logits: bool = True, log_target: bool = False):
        self.from_logits = bool(from_logits)
        self.log_target = bool(log_target)

    def _targets(self, target, x):
        t = as_float(target, "target", x.dtype)
        check_same_shape(x, t)
        return (KL_LOG if self.log_target else KL), None, t

    def _params(self):
        return {"from_logits": self.from_logits, "log_target": self.log_target}


# ------------------------------------------------------------------ functional forms ----
# One-line conveniences in the style of torch.nn.functional: the loss value only.

def mse(input: ArrayLike, target: ArrayLike, **kwargs) -> Value:
    """``MSE()(input, target, **kwargs)``."""
    return MSE()(input, target, **kwargs)


def mae(input: ArrayLike, target: ArrayLike, **kwargs) -> Value:
    """``MAE()(input, target, **kwargs)``."""
    return MAE()(input, target, **kwargs)


def pseudo_huber(input: ArrayLike, target: ArrayLike, delta: float = 1.0, **kwargs) -> Value:
    """``PseudoHuber(delta)(input, target, **kwargs)``."""
    return PseudoHuber(delta)(input, target, **kwargs)


def cross_entropy(input: ArrayLike, target: ArrayLike, *, from_logits: bool = True,
                  class_weight: ArrayLike | None = None, ignore_index: int = -100,
                  label_smoothing: float = 0.0, **kwargs) -> Value:
    """``CrossEntropy(...)(input, target, **kwargs)``."""
    return CrossEntropy(from_logits, class_weight, ignore_index, label_smoothing)(
        input, target, **kwargs)


def binary_cross_entropy(input: ArrayLike, target: ArrayLike, *, from_logits: bool = True,
                         pos_weight: ArrayLike | None = None, **kwargs) -> Value:
    """``BinaryCrossEntropy(...)(input, target, **kwargs)``."""
    return BinaryCrossEntropy(from_logits, pos_weight)(input, target, **kwargs)


def kl_divergence(input: ArrayLike, target: ArrayLike, *, from_logits: bool = True,
                  log_target: bool = False, **kwargs) -> Value:
    """``KLDivergence(...)(input, target, **kwargs)``."""
    return KLDivergence(from_logits, log_target)(input, target, **kwargs)
