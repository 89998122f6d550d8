"""What the gradient-boosting integrations share (fastloss.xgboost, fastloss.lightgbm).

Nothing here imports XGBoost or LightGBM: the libraries call the objects made here, and
those read what they are handed (arrays, and a training set through ``get_label()`` and
``get_weight()``).  Which losses can drive boosting is read from the table's columns
(fastloss/losses.py), never from a list of names:

* ``family == "pointwise"`` with ``target`` "real", "probability" or "count": one label
  per output, the loss applied elementwise (one output per row, or one per target of an
  XGBoost multi-output model);
* ``family == "softmax"`` rows that take integer labels (``takes_labels``): one label per
  row and one margin per class;
* anything with ``from_logits=False`` is refused (the libraries hand raw margins), as are
  rows that need a target distribution per row (KL) and, as objectives, rows whose
  ``hessian`` is neither "exact" nor "surrogate".
"""
from __future__ import annotations

import math
import numbers
import sys
from dataclasses import dataclass

import numpy as np

from ._kernels import cpu
from ._loss import GRAD, HESS, Loss

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)

POINTWISE_TARGETS = ("real", "probability", "count")
USABLE_HESSIANS = ("exact", "surrogate")

#: values per thread in a block of rows where init_score works block by block: each block
#: is one kernel call large enough to run on every thread (fastloss runs calls below 32k
#: values on one), and the block's scratch stays small.
BLOCK_VALUES_PER_THREAD = 1 << 15


@dataclass(frozen=True)
class Library:
    """One boosting library's names and conventions, for messages and intercepts."""
    name: str           # "XGBoost"
    module: str         # "xgboost"
    classes_hint: str   # how to get one margin per class
    eps: float          # the library's floor for a probability in its own intercepts
    centre: bool        # True: log class priors are centred (mean 0), as XGBoost does


def require(lib: Library):
    """Import the library, or raise ImportError saying how to install it."""
    import importlib
    try:
        return importlib.import_module(lib.module)
    except ImportError as e:
        raise ImportError(f"fastloss.{lib.module} needs {lib.name}: pip install "
                          f"'fastloss[{lib.module}]'") from e


# ------------------------------------------------------------------ which losses ----

def check_loss(loss, lib: Library, role: str) -> None:
    """Raise unless `loss` can be a boosting `role` ("objective", "metric", "init_score")."""
    if isinstance(loss, type) and issubclass(loss, Loss):
        raise TypeError(f"pass a loss instance, e.g. fastloss.{lib.module}.{role}"
                        f"(fastloss.{loss.__name__}()), not the class {loss.__name__}")
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a fastloss loss (a row of fastloss.LOSSES, e.g. "
                        f"fastloss.MSE()); got {type(loss).__name__}")
    name = type(loss).__name__
    if loss.get_params().get("from_logits", True) is False:
        raise ValueError(f"{loss!r} reads probabilities, but {lib.name} hands the {role} "
                         f"raw margins (any real number); use {name}() with "
                         f"from_logits=True (the default)")
    if loss.family == "pointwise":
        if loss.target not in POINTWISE_TARGETS:
            raise ValueError(f"{name}'s target is {loss.target!r}; a boosting label is one "
                             f"of {', '.join(POINTWISE_TARGETS)}")
    elif loss.family == "softmax":
        if not getattr(loss, "takes_labels", False):
            raise ValueError(f"{name} needs a target distribution over the classes for every "
                             f"row (its target is {loss.target!r}), but {lib.name} gives one "
                             f"label per row; use fastloss.CrossEntropy() with integer class "
                             f"labels (label_smoothing= softens them)")
    else:
        raise ValueError(f"{name} is of family {loss.family!r}, which fastloss.{lib.module} "
                         f"does not know")
    if role == "objective" and loss.hessian not in USABLE_HESSIANS:
        raise ValueError(f"{name}'s Hessian is {loss.hessian!r}: a boosting step divides by "
                         f"the summed Hessian, so {name} cannot be an objective (it can be "
                         f"a metric); use a loss with curvature, e.g. PseudoHuber for a "
                         f"robust loss, or MAE, whose Hessian is the surrogate 1")


def positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}") from None
    if isinstance(value, (bool, np.bool_)) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return v


def threads(n_threads):
    """`n_threads` as fastloss takes it (checked here, so that a bad value fails when the
    objective is made, not in the middle of training)."""
    if n_threads is None:
        return None
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"n_threads must be None or an integer; got "
                        f"{type(n_threads).__name__}")
    if n_threads == 0 or n_threads < -1:
        raise ValueError(f"n_threads must be None, -1 (all cores) or a positive integer; "
                         f"got {n_threads}")
    return int(n_threads)


# ------------------------------------------------------------------ labels ----

def class_indices(y: np.ndarray, n_cls: int, lib: Library, out=None) -> np.ndarray:
    """Labels (any real dtype) as C-contiguous int64 class indices in [0, n_cls), or raise
    naming the first bad label.  `out`: an int64 buffer of the labels' size to write them
    into (the objectives keep one, which saves the page faults of a new array per call)."""
    y = np.asarray(y).reshape(-1)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"class labels must be numbers; got dtype {y.dtype}")
    if y.size and not (y.min() >= 0 and y.max() < n_cls):       # NaN fails too
        _bad_label(y, n_cls, lib)
    if out is None or out.shape != y.shape:
        out = np.empty(y.shape, np.int64)
    np.copyto(out, y, casting="unsafe")
    if y.dtype.kind == "f" and not np.equal(out, y).all():
        _bad_label(y, n_cls, lib)
    return out


def _bad_label(y, n_cls, lib):
    with np.errstate(invalid="ignore"):
        bad = ~((y >= 0) & (y < n_cls) & (np.floor(y) == y))
    i = int(np.flatnonzero(bad)[0])
    v = y[i].item()
    if 0 <= v < n_cls:
        raise ValueError(f"label {v!r} (row {i}) is not an integer: class labels must be "
                         f"the integers 0..{n_cls - 1}; encode them with "
                         f"sklearn.preprocessing.LabelEncoder")
    raise ValueError(f"label {v!r} (row {i}) is not a class index in [0, {n_cls}): the "
                     f"model has {n_cls} classes ({lib.classes_hint}); labels must be the "
                     f"integers 0..{n_cls - 1} (encode them with "
                     f"sklearn.preprocessing.LabelEncoder, or raise the number of classes)")


def _check_label_range(loss, y: np.ndarray) -> None:
    """Probability labels in [0, 1]; counts >= 0 (also checked by fastloss, said here in
    the labels' terms)."""
    if loss.target == "probability":
        if y.size and not (y.min() >= 0 and y.max() <= 1):
            i = int(np.flatnonzero(~((y >= 0) & (y <= 1)))[0])
            raise ValueError(f"{type(loss).__name__} needs labels in [0, 1]; label "
                             f"{y.reshape(-1)[i].item()!r} at position {i}")
    elif loss.target == "count":
        if y.size and not y.min() >= 0:
            i = int(np.flatnonzero(~(y >= 0))[0])
            raise ValueError(f"{type(loss).__name__} needs counts >= 0 as labels; label "
                             f"{y.reshape(-1)[i].item()!r} at position {i}")


def prepare(loss, lib: Library, preds, labels, label_buffer=None):
    """(margins, targets) for one call: margins as given (an ndarray), targets shaped and
    typed for `loss` (int64 class indices, written into `label_buffer` when it fits, or
    floats of the margins' shape)."""
    x = np.asarray(preds)
    y = np.asarray(labels)
    name = type(loss).__name__
    if loss.family == "softmax":
        if x.ndim != 2 or x.shape[1] < 2:
            raise ValueError(f"{name} needs one margin per class, but the predictions have "
                             f"shape {x.shape}: {lib.classes_hint}")
        n, k = x.shape
        if y.size != n:
            raise ValueError(f"{name} needs one class label per row: {y.size} labels for "
                             f"{n} rows of {k} class margins")
        return x, class_indices(y, k, lib, label_buffer)
    if y.shape != x.shape:
        if y.size == x.size:
            y = y.reshape(x.shape)
        elif x.ndim == 2 and y.size == x.shape[0]:
            raise ValueError(f"{name} is elementwise and needs one label per output, but the "
                             f"model has {x.shape[1]} outputs per row and one label per row: "
                             f"for classes use fastloss.CrossEntropy(), otherwise train with "
                             f"one output (no num_class)")
        else:
            raise ValueError(f"{y.size} labels for predictions of shape {x.shape}")
    _check_label_range(loss, y)
    return x, y


def weights_of(w):
    """A training set's weights, or None (XGBoost gives an empty array when unweighted)."""
    if w is None:
        return None
    w = np.asarray(w)
    return None if w.size == 0 else w


# ------------------------------------------------------------------ objective ----

class Objective:
    """A fastloss loss as a boosting objective (the library-specific subclasses say how
    they are called).  Gradient and Hessian diagonal of ``loss_scale * sum_i w_i l_i``
    with respect to the margins, the Hessian then multiplied by ``hess_scale``."""

    lib: Library

    def __init__(self, loss, hess_scale=1.0, *, loss_scale=1.0, n_threads=None):
        check_loss(loss, self.lib, "objective")
        self.loss = loss
        self.hess_scale = positive(hess_scale, "hess_scale")
        self.loss_scale = positive(loss_scale, "loss_scale")
        self.n_threads = threads(n_threads)
        self._outputs = None        # the last call's (grad, hess), see _take_outputs
        self._labels = None         # int64 class labels
        self._by_class = None       # softmax losses: the loss with classes on axis 0

    def __getstate__(self):
        return {**self.__dict__, "_outputs": None, "_labels": None, "_by_class": None}

    def __repr__(self):
        extra = "".join(f", {k}={getattr(self, k)!r}" for k, d in
                        (("hess_scale", 1.0), ("loss_scale", 1.0), ("n_threads", None))
                        if getattr(self, k) != d)
        return f"fastloss.{self.lib.module}.objective({self.loss!r}{extra})"

    def _weights(self, w, n):
        w = weights_of(w)
        if self.loss_scale != 1.0:
            w = np.full(n, self.loss_scale) if w is None else w * self.loss_scale
        return w

    def _take_outputs(self, shape, dtype):
        """Arrays for this call's gradient and Hessian: the last call's when nothing
        holds them, or a view of them, any more (the libraries copy the results and drop
        them before they call again), else new ones.  A new array costs a page fault per
        4 KiB on its first write: at 1M x 10 float32, ~10 ms per array, a third of the
        call.  A caller that keeps the results gets new arrays on the next call, so no
        result is ever overwritten."""
        last, self._outputs = self._outputs, None
        if last is not None:
            g, h = last
            del last
            probe = np.empty(0)             # held as g and h are: by one local name
            free = sys.getrefcount(probe)
            if (g.shape == shape and g.dtype == dtype and sys.getrefcount(g) == free
                    and sys.getrefcount(h) == free):
                return g, h
        return np.empty(shape, dtype), np.empty(shape, dtype)

    def _grad_hess(self, preds, labels, weights):
        x, t = prepare(self.loss, self.lib, preds, labels, self._labels)
        if self.loss.family == "softmax":
            self._labels = t                # never handed out: reused by the next call
        w = self._weights(weights, x.shape[0] if x.ndim else 1)
        if x.ndim == 2 and not x.flags.c_contiguous and x.flags.f_contiguous:
            return self._column_ordered(x, t, w)
        if x.dtype not in (F32, F64):
            x = x.astype(F64)
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        g, h = self._take_outputs(x.shape, x.dtype)
        # the kernel scales the Hessian as it stores it
        self.loss._run(GRAD | HESS, x, t, w, "sum", self.n_threads, (g, h),
                       hess_scale=self.hess_scale)
        self._check_curvature(h)
        self._outputs = (g, h)
        return g, h

    def _column_ordered(self, x, t, w):
        """(n, k) margins stored column by column (LightGBM's layout, n >= 2), computed in
        the margins' precision (LightGBM's float64).  Returns (n, k) Fortran-ordered
        gradient and Hessian.

        Softmax losses: the kernel reads the (k, n) margins as rows whose classes are n
        apart (as PyTorch's (N, C, d) layout), in tiles of rows, scales the Hessian and
        rounds each value to float32 as it stores it: one pass on every thread, in the
        layout and dtype LightGBM takes without a copy.  Elementwise losses: the (k, n)
        arrays element by element.

        Computing in float32 would be faster, but LightGBM computes its own gradients in
        float64 and rounds them: float32 ones differ in the last bits, and that flipped a
        split (margins 0.5 apart from the built-in's at 3000 x 10, where float64 gives
        1e-14)."""
        n, k = x.shape
        xt = x.T if x.dtype in (F32, F64) else x.T.astype(F64)
        if self.loss.family != "softmax":
            g, h = self.loss._run(
                GRAD | HESS, xt, t.T, None if w is None else np.broadcast_to(w, (k, n)),
                "sum", self.n_threads, None, hess_scale=self.hess_scale)
        else:
            if self._by_class is None:          # the same loss, classes on axis 0
                self._by_class = type(self.loss)(**{**self.loss.get_params(), "axis": 0})
            g, h = self._take_outputs((k, n), F32)
            self._by_class._run(GRAD | HESS, xt, t, w, "sum", self.n_threads, (g, h),
                                hess_scale=self.hess_scale, out_f32=True)
            self._outputs = (g, h)
        self._check_curvature(h)
        return g.T, h.T

    def _check_curvature(self, h):
        flat = h.reshape(-1) if h.flags.c_contiguous else h.T.reshape(-1)
        if flat.size and not flat[:64].any() and not flat.any():
            raise ValueError(
                f"the Hessian of {self.loss!r} is 0 for every sample, so {self.lib.name} "
                f"cannot take a Newton step (all sample weights 0, or e.g. Huber with every "
                f"residual beyond delta): start from fastloss.{self.lib.module}.init_score"
                f"(...), or use a loss with curvature everywhere (PseudoHuber, or Huber with "
                f"a larger delta)")


def _thread_count(n_threads) -> int:
    if n_threads is None:
        return max(1, cpu.max_threads())
    return cpu.num_procs() if n_threads == -1 else max(1, min(n_threads, cpu.num_procs()))


# ------------------------------------------------------------------ metric ----

class Metric:
    """A fastloss loss as an evaluation metric on raw margins: the weighted mean of the
    loss (its ``reduction="mean"``), lower is better."""

    lib: Library

    def __init__(self, loss, *, n_threads=None):
        check_loss(loss, self.lib, "metric")
        self.loss = loss
        self.n_threads = threads(n_threads)
        self.__name__ = loss.name

    def __repr__(self):
        extra = f", n_threads={self.n_threads!r}" if self.n_threads is not None else ""
        return f"fastloss.{self.lib.module}.metric({self.loss!r}{extra})"

    def _value(self, preds, labels, weights) -> float:
        x, t = prepare(self.loss, self.lib, preds, labels)
        return float(self.loss(x, t, sample_weight=weights_of(weights), reduction="mean",
                               n_threads=self.n_threads))


# ------------------------------------------------------------------ intercept ----

def _sample_weights(sample_weight, n):
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=F64).reshape(-1)
    if w.shape != (n,):
        raise ValueError(f"sample_weight has {w.size} values for {n} labels")
    if not np.all(np.isfinite(w) & (w >= 0)):
        raise ValueError("sample_weight must be finite and >= 0")
    return w


def optimal_constant(loss, lib: Library, y, sample_weight=None, n_classes=None,
                     n_threads=None):
    """The constant margin that minimises ``sum_i w_i l(c, y_i)``: a float64 of shape ()
    (one output), (k,) (k classes or k outputs)."""
    check_loss(loss, lib, "init_score")
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"labels must be numbers; got dtype {y.dtype}")
    if y.size == 0:
        raise ValueError("init_score needs at least one label")
    if loss.family == "softmax":
        y = y.reshape(-1)
        if n_classes is None:
            if not np.all(np.isfinite(y)):
                raise ValueError("class labels must be finite")
            k = int(np.max(y)) + 1
        else:
            k = int(n_classes)
        if k < 2:
            raise ValueError(f"{type(loss).__name__} needs at least 2 classes; got "
                             f"n_classes={n_classes if n_classes is not None else k}")
        yi = class_indices(y, k, lib)
        w = _sample_weights(sample_weight, yi.size)
        return _softmax_constant(loss, lib, yi, w, k, n_threads)
    if y.ndim > 2:
        raise ValueError(f"labels must be 1-D (one output) or 2-D (one column per "
                         f"output); got shape {y.shape}")
    y = y.astype(F64)
    if not np.all(np.isfinite(y)):
        raise ValueError("labels must be finite")
    _check_label_range(loss, y)
    w = _sample_weights(sample_weight, y.shape[0])
    if not w.sum() > 0:
        raise ValueError("the sample weights sum to 0: no constant minimises the loss")
    closed = _CLOSED_FORMS.get(type(loss))
    c = closed(loss, lib, y, w) if closed is not None else None
    if c is None:
        c = solve_constant(loss, y, w, n_threads)
    return np.float64(c) if y.ndim == 1 else np.asarray(c, F64)


def _wmean(y, w):
    return (w @ y) / w.sum()


def _weighted_median(y, w):
    """Per column: the midpoint of the set of weighted medians (np.median's choice when
    the weights are equal)."""
    def one(col):
        keep = w > 0
        order = np.argsort(col[keep], kind="stable")
        v, cw = col[keep][order], np.cumsum(w[keep][order])
        half = cw[-1] / 2
        i = int(np.searchsorted(cw, half, side="left"))
        if np.isclose(cw[i], half, rtol=1e-12, atol=0) and i + 1 < v.size:
            return (v[i] + v[i + 1]) / 2
        return v[i]
    return one(y) if y.ndim == 1 else np.array([one(y[:, j]) for j in range(y.shape[1])])


def _mse_constant(loss, lib, y, w):
    return _wmean(y, w)


def _mae_constant(loss, lib, y, w):
    return _weighted_median(y, w)


def _poisson_constant(loss, lib, y, w):
    return np.log(np.maximum(_wmean(y, w), lib.eps))


def _bce_constant(loss, lib, y, w):
    if loss.get_params().get("pos_weight") is not None:
        return None                         # the general solver
    p = np.clip(_wmean(y, w), lib.eps, 1 - lib.eps)
    return np.log(p) - np.log1p(-p)


def _closed_forms():
    from .losses import MAE, MSE, BinaryCrossEntropy, PoissonNLL
    return {MSE: _mse_constant, MAE: _mae_constant, PoissonNLL: _poisson_constant,
            BinaryCrossEntropy: _bce_constant}


_CLOSED_FORMS = _closed_forms()


def solve_constant(loss, y, w, n_threads=None, *, rtol=1e-13, max_iter=400):
    """The root of the summed gradient ``G(c) = sum_i w_i dl(c, y_i)/dc`` of a pointwise
    loss, per column of `y`: a bracket from the labels' range (widened until G changes
    sign), then Newton steps kept inside the bracket, with a bisection at least every
    third step.  For any convex loss (G non-decreasing), whatever the table adds."""
    y = np.ascontiguousarray(y, F64)
    wt = np.ascontiguousarray(w, F64)
    x = np.empty_like(y)

    def gh(c):
        x[...] = c
        g, h = loss.grad_hess(x, y, sample_weight=wt, n_threads=n_threads)
        return g.sum(axis=0), h.sum(axis=0)

    lo = np.atleast_1d(y.min(axis=0)).astype(F64)
    hi = np.atleast_1d(y.max(axis=0)).astype(F64)
    step = np.maximum(hi - lo, 1.0)

    def widen(end, sign):
        s = step.copy()
        for _ in range(80):
            g = np.atleast_1d(gh(end.reshape(y.shape[1:]))[0])
            if np.any(np.isnan(g)):
                raise ValueError(f"the gradient of {loss!r} is NaN at a constant margin")
            bad = sign * g < 0
            if not bad.any():
                return end
            end = np.where(bad, end + sign * s, end)
            s = np.where(bad, 2 * s, s)
        raise ValueError(f"no finite constant minimises {loss!r} on these labels (its "
                         f"summed gradient keeps one sign)")

    lo = widen(lo, -1.0)
    hi = widen(hi, 1.0)
    c = (lo + hi) / 2
    newton = loss.hessian == "exact"
    for it in range(max_iter):
        g, h = (np.atleast_1d(v) for v in gh(c.reshape(y.shape[1:])))
        lo = np.where(g < 0, c, lo)
        hi = np.where(g > 0, c, hi)
        mid = (lo + hi) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            nt = c - g / h
        use = newton & (it % 3 != 2) & (h > 0) & (nt > lo) & (nt < hi)
        nxt = np.where(use, nt, mid)
        tol = rtol * np.maximum(1.0, np.abs(c))
        done = (g == 0) | (hi - lo <= tol) | (use & (np.abs(nxt - c) <= tol))
        c = np.where(g == 0, c, nxt)
        if done.all():
            break
    return c[0] if y.ndim == 1 else c


def _softmax_constant(loss, lib, y, w, k, n_threads):
    """Softmax rows: the gradient of a row is ``A p - a`` and its Hessian diagonal
    ``A p (1 - p)`` (docs/contract.md), so at zero margins (p = 1/k) the sums give
    ``sum A = sum h k^2 / (k - 1)`` and ``sum a = sum A / k - sum g``.  The minimiser of
    ``sum_i w_i l_i`` over a constant c solves ``softmax(c) = sum a / sum A``: the log of
    that (floored at the library's eps), centred where the library centres."""
    n = y.size
    rows = max(1, min(n, BLOCK_VALUES_PER_THREAD * _thread_count(n_threads) // k))
    zeros = np.zeros((rows, k))
    gb, hb = np.empty((rows, k)), np.empty((rows, k))
    gsum, hsum = np.zeros(k), np.zeros(k)
    for i in range(0, n, rows):
        m = min(rows, n - i)
        loss.grad_hess(zeros[:m], y[i:i + m], sample_weight=w[i:i + m],
                       n_threads=n_threads, out=(gb[:m], hb[:m]))
        gsum += gb[:m].sum(axis=0)
        hsum += hb[:m].sum(axis=0)
    total = hsum.sum() * k / (k - 1)            # sum over rows of A (each class: A/k (1-1/k))
    if not total > 0:
        raise ValueError("the sample weights (and class weights) sum to 0: no constant "
                         "minimises the loss")
    a = np.maximum(total / k - gsum, 0.0)
    p = a / a.sum()
    c = np.log(np.maximum(p, lib.eps))
    if lib.centre:
        c -= c.mean()
    return c
