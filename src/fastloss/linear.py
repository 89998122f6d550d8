"""Cross-entropy of a linear layer's output without its logits: fused linear +
cross-entropy (:class:`LinearCrossEntropy`).

A language model ends in ``logits = hidden @ weight.T (+ bias)`` over a vocabulary of
32k-256k tokens; computing the loss from the logits needs all ``N x V`` of them (and
PyTorch's backward a few more arrays of that size).  Here only a block of rows of logits
exists at a time:

1. ``block = hidden[rows] @ weight.T (+ bias)``: BLAS (NumPy's ``matmul``, into the block
   buffer), one product per chunk of the vocabulary;
2. fastloss's cross-entropy kernel (``softmax.pyx``, labels from logits) turns the block
   into the loss's gradient with respect to the logits, in place, and adds the block's
   loss to an exact sum (the same exact sum one CrossEntropy call over all the logits
   would make);
3. ``grad_hidden[rows] = block @ weight`` and ``grad_weight += block.T @ hidden[rows]``
   (and ``grad_bias += block.sum(0)``): BLAS again, by chunks of the hidden axis and of
   the vocabulary.

Determinism
-----------
BLAS libraries split a product among their threads in ways that change its rounding
(OpenBLAS 0.3.31 gives other bits with 1 and 2 threads, even for a 37 x 100 x 513
product).  So BLAS runs single-threaded here (threadpoolctl, for the duration of the call)
and the parallelism is fastloss's own: every product is cut into chunks whose sizes depend
on the shapes and the dtype only, never on the thread count; each chunk is one BLAS call,
computed by whichever thread takes it and written by it alone; the sums across row blocks
(``grad_weight``, ``grad_bias``) and the loss's exact sum run in a fixed order.  The
result is the same bits for every ``n_threads``, on a given machine and BLAS library
(the guarantee rests on a single-threaded BLAS call giving the same bits when repeated,
which holds for OpenBLAS and MKL on one CPU).  While a call runs, other threads of the
process that use the same BLAS get one BLAS thread too.
"""
from __future__ import annotations

import inspect
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Union

import numpy as np
from numpy.typing import ArrayLike

from . import _dispatch
from ._kernels import cpu
from ._kernels import exact as _exact
from ._kernels import checks
from ._loss import GRAD, VALUE, Reduction, _scale, class_labels
from .losses import CrossEntropy
from ._validation import (F32, REDUCTIONS, as_array, as_float, check_reduction,
                          checked_weights, compute_dtype, resolve_threads)

__all__ = ["LinearCrossEntropy"]

Value = Union[float, np.ndarray]

#: The parameters, CrossEntropy's own (the same names, defaults, checks and docs).
_PARAMS = tuple(p for p in CrossEntropy.params
                if p.name in ("class_weight", "ignore_index", "label_smoothing"))

#: Bytes of logits a block may hold (its rows: this over ``V * itemsize``, rounded down
#: to a multiple of ROW_MULTIPLE, between MIN_ROWS and MAX_ROWS).  Each row block reads
#: ``weight`` twice and reads and writes ``grad_weight`` once, so fewer, taller blocks
#: cost less memory traffic; 128 MiB keeps that traffic under ~5% of the products' time
#: at V = 128000, H = 2048 (256 rows a block in float32), and is ~1/16 of what PyTorch
#: holds for ``cross_entropy(linear(...))`` at N = 2048 there.
BLOCK_BYTES = 128 << 20
MIN_ROWS, MAX_ROWS, ROW_MULTIPLE = 16, 1024, 16
#: Bytes of one chunk of a product's output: ``grad_weight``'s chunk is computed into a
#: private buffer of this size and added while it is in cache (L2 or L3).
CHUNK_BYTES = 2 << 20
#: Columns of a forward product's chunk (vocabulary entries): wide enough that the
#: packing of the block's rows, repeated per chunk, costs little.
FORWARD_CHUNK = 2048
#: Columns (hidden units) of a chunk of ``grad_hidden``'s product.
HIDDEN_CHUNK = 256


def block_rows(n_rows: int, n_classes: int, dtype: np.dtype) -> int:
    """Rows of logits per block: a function of the shapes and dtype (never of the thread
    count: the row blocks fix the order of ``grad_weight``'s sums)."""
    rows = BLOCK_BYTES // max(1, n_classes * dtype.itemsize)
    rows = max(MIN_ROWS, min(MAX_ROWS, rows // ROW_MULTIPLE * ROW_MULTIPLE))
    return max(1, min(rows, n_rows))


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


# ------------------------------------------------------------------ threads ----

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=cpu.num_procs(),
                                       thread_name_prefix="fastloss-linear")
        return _pool


class _SingleThreadedBlas:
    """A context in which NumPy's BLAS uses one thread (threadpoolctl).  Calls may overlap
    (several Python threads): the first to enter sets one thread, the last to leave puts
    back what was there, so that no call runs its products on more threads than one."""

    def __init__(self):
        self._lock = threading.Lock()
        self._controller = None
        self._inside = 0
        self._limiter = None

    def __enter__(self):
        with self._lock:
            if self._inside == 0:
                if self._controller is None:
                    from threadpoolctl import ThreadpoolController
                    self._controller = ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._inside += 1

    def __exit__(self, *exc):
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                self._limiter.restore_original_limits()
                self._limiter = None


_single_threaded_blas = _SingleThreadedBlas()


def _run_all(tasks: list, n_threads: int) -> None:
    """Run every task (a callable of no argument) on up to n_threads threads, each task
    by one thread, taken in order as threads free up; re-raise the first error."""
    if n_threads <= 1 or len(tasks) <= 1:
        for task in tasks:
            task()
        return
    it = iter(tasks)
    lock = threading.Lock()
    failed = []

    def worker():
        while not failed:
            with lock:
                task = next(it, None)
            if task is None:
                return
            try:
                task()
            except BaseException as e:          # pragma: no cover - MemoryError etc.
                failed.append(e)
                return

    n = min(n_threads, len(tasks))
    futures = [_executor().submit(worker) for _ in range(n - 1)]
    worker()
    for f in futures:
        f.result()
    if failed:
        raise failed[0]


# ------------------------------------------------------------------ the loss ----

class LinearCrossEntropy:
    """Cross-entropy of ``hidden @ weight.T + bias`` without the logits (fused linear +
    cross-entropy), for language models' large vocabularies.

    ``loss(hidden, weight, target)`` is ``CrossEntropy(...)(hidden @ weight.T + bias,
    target)``, with ``hidden`` ``(N, H)``, ``weight`` ``(V, H)`` as in
    ``torch.nn.Linear``, ``bias`` ``(V,)`` and ``target`` ``(N,)`` class indices, computed
    a block of rows at a time so that only a block of logits (at most 128 MiB,
    ``fastloss.linear.BLOCK_BYTES``) ever exists; ``loss.value_and_grad(...)`` also
    gives the gradients with respect to ``hidden``, ``weight`` and ``bias``.  The options are
    :class:`CrossEntropy`'s, with its semantics (PyTorch's): ``"mean"`` divides by the
    sum of ``class_weight[y]`` times the sample weights over the rows that are not
    ignored.

    Each block is one BLAS product (NumPy's), then fastloss's cross-entropy kernel on the
    block, in place, then the two products that add the block's share of the gradients.
    float32 is computed in float32 (the products accumulate as BLAS does, the loss's sum
    is exact), float64 in float64.  Results are the same bits for every ``n_threads``:
    BLAS runs single-threaded and fastloss's threads take fixed chunks of the products
    (the contract, ``docs/contract.md``, says what is guaranteed).

    {parameters}

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> rng = np.random.default_rng(0)
    >>> hidden = rng.standard_normal((4, 3))
    >>> weight = rng.standard_normal((5, 3))             # 5 classes, 3 features
    >>> target = np.array([0, 4, 2, 2])
    >>> loss = fastloss.LinearCrossEntropy()
    >>> value = loss(hidden, weight, target)
    >>> bool(np.isclose(value, fastloss.CrossEntropy()(hidden @ weight.T, target)))
    True
    >>> value, (grad_hidden, grad_weight) = loss.value_and_grad(hidden, weight, target)
    >>> grad_hidden.shape, grad_weight.shape
    ((4, 3), (5, 3))
    """

    params = _PARAMS
    __slots__ = ("_ce",)

    def __init__(self, class_weight=None, ignore_index=-100, label_smoothing=0.0):
        # CrossEntropy checks the parameters (its Param rows) and keeps them
        self._ce = CrossEntropy(class_weight=class_weight, ignore_index=ignore_index,
                                label_smoothing=label_smoothing)

    @property
    def class_weight(self):
        """Weight of each class (vocabulary entry), shape (V,); finite and >= 0."""
        return self._ce.class_weight

    @property
    def ignore_index(self) -> int:
        """A label value whose rows contribute nothing."""
        return self._ce.ignore_index

    @property
    def label_smoothing(self) -> float:
        """Weight in [0, 1] of the uniform distribution mixed into the target."""
        return self._ce.label_smoothing

    def get_params(self) -> dict:
        """The loss's parameters, as given to the constructor (arrays as float64)."""
        return {p.name: self._ce._values[p.name] for p in _PARAMS}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._ce == other._ce

    def __hash__(self):
        return hash((type(self).__name__, hash(self._ce)))

    def __reduce__(self):
        return (_rebuild, (self.get_params(),))

    # -------------------------------------------------------------- the two methods ----

    def __call__(self, hidden: ArrayLike, weight: ArrayLike, target: ArrayLike, *,
                 bias: ArrayLike | None = None, sample_weight: ArrayLike | None = None,
                 reduction: Reduction = "mean", n_threads: int | None = None,
                 block_rows: int | None = None) -> Value:
        """The loss value: a float for ``"mean"`` and ``"sum"``, the ``(N,)`` weighted
        per-row losses for ``"none"``.

        Parameters
        ----------
        hidden : array-like, shape (N, H)
            The rows the linear layer maps to logits.  float32 is computed in float32,
            float64 in float64, other real dtypes in float64.
        weight : array-like, shape (V, H)
            The layer's weight, as in ``torch.nn.Linear`` (one row per class); converted
            to ``hidden``'s dtype (a copy: give both in one dtype).  Any strides.
        target : array-like of int, shape (N,)
            Class indices in ``[0, V)``, or ``ignore_index``.
        bias : array-like, shape (V,), optional
            The layer's bias.
        sample_weight : array-like, shape (N,), optional
            Non-negative finite weights, one per row.
        reduction : {"mean", "sum", "none"}
            As for :class:`CrossEntropy`.
        n_threads : int, optional
            ``None``: OpenMP's default; ``-1``: every core; ``k``: ``k`` threads.  The
            same bits for every thread count.
        block_rows : int, optional
            Rows of logits per block (default: ``fastloss.linear.block_rows(N, V,
            dtype)``, from the shapes and the dtype).  Another block size rounds the
            gradients' sums differently.

        Returns
        -------
        float or ndarray
        """
        return self._run(False, hidden, weight, target, bias, sample_weight, reduction,
                         n_threads, block_rows)

    def value_and_grad(self, hidden: ArrayLike, weight: ArrayLike, target: ArrayLike, *,
                       bias: ArrayLike | None = None, sample_weight: ArrayLike | None = None,
                       reduction: Reduction = "mean", n_threads: int | None = None,
                       block_rows: int | None = None) -> tuple[Value, tuple]:
        """``(value, (grad_hidden, grad_weight))``, with ``grad_bias`` third when
        ``bias`` is given.

        Parameters
        ----------
        hidden, weight, target, bias, sample_weight, reduction, n_threads, block_rows
            As for ``loss(...)``.

        Returns
        -------
        value : float or ndarray
            As for ``loss(...)``.
        grads : tuple of ndarray
            ``grad_hidden`` ``(N, H)``, ``grad_weight`` ``(V, H)`` and, with a bias,
            ``grad_bias`` ``(V,)``, in the compute dtype: the gradient of ``value`` (of
            the sum of the per-row losses for ``"none"``).
        """
        return self._run(True, hidden, weight, target, bias, sample_weight, reduction,
                         n_threads, block_rows)

    # -------------------------------------------------------------- the call ----

    def _run(self, grad, hidden, weight, target, bias, sample_weight, reduction, n_threads,
             rows, signed_weights=False):
        """One call.  signed_weights: sample_weight is an (N,) array of the compute
        dtype used as it is, of any sign (fastloss.torch's backward of "none", whose
        incoming gradient weighs the rows)."""
        x = as_float(hidden, "hidden")
        if x.ndim != 2:
            raise ValueError(f"hidden must be 2-D, (N, H); got shape {x.shape}")
        dtype = x.dtype
        n, h = x.shape
        wt = as_array(weight, "weight")
        compute_dtype(wt.dtype, "weight")                   # TypeError for complex, str
        if wt.ndim != 2:
            raise ValueError(f"weight must be 2-D, (V, H) as in torch.nn.Linear; got shape "
                             f"{wt.shape}")
        if wt.shape[1] != h:
            raise ValueError(f"weight has shape {wt.shape}: {wt.shape[1]} features, but "
                             f"hidden has {h} (shape {x.shape}); expected (V, {h})")
        v = wt.shape[0]
        if v == 0:
            raise ValueError(f"weight must have at least one row (class); got shape "
                             f"{wt.shape}")
        tgt = as_array(target, "target")
        if tgt.shape != (n,):
            raise ValueError(f"target has shape {tgt.shape}; expected ({n},), one class "
                             f"index per row of hidden (shape {x.shape})")
        if tgt.dtype.kind not in "iu":
            compute_dtype(tgt.dtype, "target")
            raise ValueError(f"target must hold integer class indices; got dtype "
                             f"{tgt.dtype}")
        y = class_labels(tgt, v)
        b = None
        if bias is not None:
            b = as_float(bias, "bias", dtype)
            if b.shape != (v,):
                raise ValueError(f"bias has shape {b.shape}; expected ({v},), one per row "
                                 f"of weight (shape {wt.shape})")
        if reduction not in REDUCTIONS:
            check_reduction(reduction)
        if rows is not None:
            if isinstance(rows, bool) or not hasattr(rows, "__index__") or rows < 1:
                raise ValueError(f"block_rows must be a positive integer; got {rows!r}")
            rows = int(rows)
        nt = resolve_threads(n_threads)
        ce = self._ce
        cw = ce._array("class_weight", dtype)
        if cw is not None and cw.shape != (v,):
            raise ValueError(f"class_weight has shape {cw.shape} but weight has {v} rows "
                             f"(classes): expected shape ({v},)")
        cw_sum = float(ce.class_weight.sum()) if cw is not None else float(v)
        if sample_weight is None:
            sw = None
        elif signed_weights:
            sw = sample_weight
        else:
            sw, _, _ = checked_weights(sample_weight, dtype, (n,), nt)
        ignore = ce.ignore_index
        total_w, bad = checks.labels(y, v, ignore, cw, sw, 1, dtype is F32, nt, None)
        if bad >= 0:
            raise ValueError(f"target[{bad}] = {y[bad]} is not a class index in [0, {v}) "
                             f"nor ignore_index={ignore}")
        wt = as_float(wt, "weight", dtype)                  # a copy only for another dtype
        per_row = np.empty(n, dtype) if reduction == "none" else None
        grads = None
        if grad:
            gh = np.empty((n, h), dtype)
            gw = np.empty((v, h), dtype)
            gb = None if b is None else np.zeros(v, np.float64)
            grads = (gh, gw, gb)
        if reduction == "mean" and total_w == 0:            # nothing to average: 0, not NaN
            if not grad:
                return 0.0
            gh.fill(0)
            gw.fill(0)
            return 0.0, _grad_tuple(gh, gw, gb, dtype)
        scale = _scale(reduction, total_w) if grad else 1.0
        num = _exact.zero()
        with _single_threaded_blas:
            _blocks(x, wt, b, y, cw, cw_sum, sw, per_row, grads, scale,
                    ce.label_smoothing, ignore, nt, num,
                    rows or block_rows(n, v, dtype))
        total = _exact.round_to_float(num)
        if per_row is not None:
            value = per_row
        else:
            value = total / total_w if reduction == "mean" else total
        if not grad:
            return value
        return value, _grad_tuple(gh, gw, gb, dtype)


def _rebuild(params):
    return LinearCrossEntropy(**params)


def _grad_tuple(gh, gw, gb, dtype):
    if gb is None:
        return gh, gw
    return gh, gw, gb.astype(dtype)


LinearCrossEntropy.__signature__ = inspect.Signature(
    [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default)
     for p in _PARAMS])
LinearCrossEntropy.__doc__ = LinearCrossEntropy.__doc__.replace(
    "{parameters}", "\n    ".join(
        ["Parameters", "----------"]
        + [f"{p.name} : default {p.default!r}\n        {p.doc}" for p in _PARAMS]))


def _blocks(x, w, b, y, cw, cw_sum, sw, per_row, grads, scale, smoothing, ignore, nt, num,
            rows):
    """The block loop (see the module's docstring); adds the weighted loss to the exact
    sum `num`, writes per-row losses (reduction "none") and the gradients."""
    n, h = x.shape
    v = w.shape[0]
    dtype = x.dtype
    item = dtype.itemsize
    softmax = _dispatch.kernels.softmax
    kind = softmax.KINDS["ce_index"]
    mode = VALUE | GRAD if grads is not None else VALUE
    logits = np.empty((min(rows, n), v), dtype)
    forward = _chunks(v, FORWARD_CHUNK)
    wchunk = max(16, CHUNK_BYTES // max(1, h * item) // 16 * 16)
    back_v = _chunks(v, wchunk)
    back_h = _chunks(h, HIDDEN_CHUNK)
    wT = w.T
    local = threading.local()
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        block = logits[:r1 - r0]
        xb = x[r0:r1]

        def fwd(c, block=block, xb=xb):
            np.matmul(xb, wT[:, c], out=block[:, c])
            if b is not None:
                block[:, c] += b[c]

        _run_all([lambda c=c: fwd(c) for c in forward], nt)
        view = block.reshape(block.shape[0], v, 1)
        softmax.softmax(kind, mode, True, view, y[r0:r1], None, cw, cw_sum,
                        None if sw is None else sw[r0:r1], 1,
                        None if per_row is None else per_row[r0:r1],
                        view if grads is not None else None, None, scale, smoothing,
                        ignore, nt, num)
        if grads is None:
            continue
        gh, gw, gb = grads
        first = r0 == 0

        def back_weight(c, block=block, xb=xb, first=first):
            gt = block[:, c].T
            if first:
                np.matmul(gt, xb, out=gw[c])
            else:
                tmp = getattr(local, "tmp", None)
                if tmp is None or tmp.shape[0] < c.stop - c.start:
                    tmp = local.tmp = np.empty((wchunk, h), dtype)
                part = tmp[:c.stop - c.start]
                np.matmul(gt, xb, out=part)
                gw[c] += part
            if gb is not None:
                gb[c] += block[:, c].sum(axis=0, dtype=np.float64)

        def back_hidden(c, block=block, r0=r0, r1=r1):
            np.matmul(block, w[:, c], out=gh[r0:r1, c])

        _run_all([lambda c=c: back_hidden(c) for c in back_h]
                 + [lambda c=c: back_weight(c) for c in back_v], nt)
    if grads is not None and n == 0:
        grads[1].fill(0)
