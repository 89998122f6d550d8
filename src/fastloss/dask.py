"""Losses over Dask arrays: per-chunk accumulators merged in a tree, and gradients.

:func:`evaluate` builds one :class:`fastloss.Accumulator` per chunk (a value-only call
of the loss on that chunk), merges them in a tree (``dask.array.reduction``,
``split_every`` at a time) and rounds once, into a lazy 0-d array whose ``.compute()``
gives the value.  The merges are exact, so the value is the same, bit for bit, for any
``split_every``, scheduler, number of workers or threads; it is the value of one
in-memory call over the whole arrays (bit for bit when the chunks hold whole rows and
every row chunk but the last is a multiple of 4096 rows, to about 1e-16 relative
otherwise).

:func:`value_and_grad` adds the gradient: a second pass over the chunks that scales
each chunk's gradient by the global ``1 / sum(w)`` of the "mean" (the kernel applies it,
so a chunk's gradient equals the in-memory call's for those elements).

Chunks: the arrays are cut along any axes but the classes' (losses over classes, such as
:class:`~fastloss.CrossEntropy`, need each row's classes in one chunk).  The target and
the weights are rechunked to the input's chunks (the input itself is never rechunked).
Works with every Dask scheduler (threads, processes, ``dask.distributed``): the tasks'
payloads (losses, accumulators) pickle.

Dask is imported only when this module is; install it with ``pip install
"fastloss[dask]"``.

Examples
--------
>>> import dask.array as da, numpy as np, fastloss, fastloss.dask
>>> rng = np.random.default_rng(0)
>>> x, t = rng.normal(size=(10_000, 3)), rng.normal(size=(10_000, 3))
>>> value = fastloss.dask.evaluate(fastloss.MSE(), da.from_array(x, chunks=(4096, 3)),
...                                da.from_array(t, chunks=(4096, 3)))
>>> value.compute() == fastloss.MSE()(x, t)
True
"""
from __future__ import annotations

import math
import string
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from ._loss import Loss
from .accumulate import Accumulator

__all__ = ["evaluate", "value_and_grad"]


# ------------------------------------------------------------------ tasks ----
# Module-level functions (not lambdas): workers import them, and keys tokenize the same
# in every run.

def _chunk_state(x, t, w, *, loss, reduction, ndim):
    """One chunk's accumulator, in an object array of `ndim` axes of length 1."""
    out = np.empty((1,) * ndim, dtype=object)
    out[(0,) * ndim] = Accumulator(loss, reduction).update(x, t, w)
    return out


def _flatten(parts, into):
    if isinstance(parts, Accumulator):
        into.append(parts)
    elif isinstance(parts, np.ndarray):
        for p in parts.ravel().tolist():
            _flatten(p, into)
    elif isinstance(parts, (list, tuple)):
        for p in parts:
            _flatten(p, into)
    else:
        raise TypeError(f"unexpected part of a reduction: {type(parts).__name__}")
    return into


def _identity(block, axis=None, keepdims=None):
    return block


def _merge(parts, axis=None, keepdims=None):
    """A new accumulator holding every accumulator in `parts` (nested lists and object
    arrays of them); the parts are not changed."""
    accs = _flatten(parts, [])
    total = accs[0].copy()
    for acc in accs[1:]:
        total.merge(acc)
    return total


def _merge_to_array(parts, axis=None, keepdims=None):
    out = np.empty((), dtype=object)
    out[()] = _merge(parts)
    return out


def _finalize(total):
    acc = total[()] if isinstance(total, np.ndarray) else total
    return acc.result()


def _scale_of(total):
    """What a chunk's gradient is multiplied by: 1 / the global denominator for "mean"
    (None: no valid sample at all, the gradient is 0), 1 for "sum"."""
    acc = total[()] if isinstance(total, np.ndarray) else total
    if acc.reduction == "sum":
        return 1.0
    from ._kernels import exact

    den = exact.round_to_float(acc._den)
    return 1.0 / den if den != 0 else None


def _grad_block(x, t, w, total, *, loss):
    scale = _scale_of(total)
    if scale is None:                   # no valid sample anywhere: 0, as in the losses
        return np.zeros(x.shape, np.float32 if x.dtype == np.float32 else np.float64)
    _, grad = loss._value_and_grad_scaled(x, t, w, scale)
    return grad


# ------------------------------------------------------------------ graph ----

def _as_dask(a, name):
    if a is None:
        return None
    if isinstance(a, da.Array):
        arr = a
    else:
        arr = da.asarray(np.asarray(a))
    if any(math.isnan(c) for cs in arr.chunks for c in cs):
        raise ValueError(f"{name} has unknown chunk sizes (NaN), e.g. after boolean "
                         f"indexing; call {name}.compute_chunk_sizes() first")
    return arr


def _layout(loss: Loss, input, target, sample_weight):
    """(input, its index, target, its index, weight or None, its index or None, the
    class axis or None), with target and weights rechunked to the input's chunks."""
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a fastloss loss (e.g. fastloss.MSE()); got "
                        f"{type(loss).__name__}")
    x = _as_dask(input, "input")
    t = _as_dask(target, "target")
    w = _as_dask(sample_weight, "sample_weight")
    if x.ndim == 0:
        raise ValueError("input must have at least one axis")
    if x.ndim > len(string.ascii_lowercase):
        raise ValueError(f"input has too many axes ({x.ndim})")
    idx = string.ascii_lowercase[:x.ndim]
    cls_axis = None
    if loss.family == "softmax":
        axis = loss.axis
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"input must have an axis {axis} of at least one class; "
                             f"got shape {x.shape}")
        cls_axis = axis % x.ndim
        if len(x.chunks[cls_axis]) != 1:
            raise ValueError(
                f"the classes (axis {cls_axis} of the input, {x.shape[cls_axis]} of them) "
                f"must sit in one chunk, but the input's chunks split them into "
                f"{x.chunks[cls_axis]}; rechunk with input.rechunk({{{cls_axis}: -1}})")
    sample_idx = idx if cls_axis is None else idx.replace(idx[cls_axis], "")
    sample_chunks = x.chunks if cls_axis is None else \
        x.chunks[:cls_axis] + x.chunks[cls_axis + 1:]
    sample_shape = x.shape if cls_axis is None else x.shape[:cls_axis] + x.shape[cls_axis + 1:]
    if t.shape == x.shape:
        t_idx, t = idx, t.rechunk(x.chunks)
    elif cls_axis is not None and t.shape == sample_shape:
        t_idx, t = sample_idx, t.rechunk(sample_chunks)
    else:
        want = f"{x.shape}" + (f" or {sample_shape}" if cls_axis is not None else "")
        raise ValueError(f"target shape {t.shape} does not match the input shape {x.shape} "
                         f"(expected {want})")
    w_idx = None
    if w is not None:
        if w.ndim == 1 and w.shape[0] == x.shape[0] and (cls_axis != 0):
            w_idx, w = idx[0], w.rechunk((x.chunks[0],))
        elif w.shape == sample_shape:
            w_idx, w = sample_idx, w.rechunk(sample_chunks)
        else:
            raise ValueError(f"sample_weight has shape {w.shape}; expected "
                             f"({x.shape[0]},) or {sample_shape}")
    return x, idx, t, t_idx, w, w_idx, cls_axis


def _args(x, idx, t, t_idx, w, w_idx):
    args = [x, idx, t, t_idx]
    args += [w, w_idx] if w is not None else [None, None]
    return args


def _total(loss, reduction, split_every, x, idx, t, t_idx, w, w_idx, cls_axis):
    """A lazy 0-d object array: the merged accumulator of every chunk."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum'; got {reduction!r}")
    out_idx = idx if cls_axis is None else idx.replace(idx[cls_axis], "")
    states = da.blockwise(
        _chunk_state, out_idx, *_args(x, idx, t, t_idx, w, w_idx),
        dtype=object, meta=np.empty((0,) * len(out_idx), dtype=object),
        adjust_chunks={i: 1 for i in out_idx}, concatenate=True,
        loss=loss, reduction=reduction, ndim=len(out_idx),
        name="fastloss-chunk-state-" + tokenize(loss, reduction, x, t, w))
    return da.reduction(
        states, chunk=_identity, combine=_merge, aggregate=_merge_to_array,
        axis=tuple(range(states.ndim)), keepdims=False, concatenate=False,
        split_every=split_every, dtype=object, meta=np.empty((), dtype=object),
        name="fastloss-merge")


def evaluate(loss: Loss, input, target, sample_weight=None, reduction: str = "mean",
             split_every: Any = None):
    """The loss's ``"mean"`` or ``"sum"`` over Dask arrays, as a lazy 0-d array.

    Parameters
    ----------
    loss : Loss
        A loss of the table, e.g. ``fastloss.CrossEntropy(label_smoothing=0.1)``.
    input, target : dask.array.Array or array-like
        As for the loss.  The target is rechunked to the input's chunks; a loss over
        classes needs the classes' axis in one chunk (``ValueError`` otherwise).
    sample_weight : dask.array.Array or array-like, optional
        One weight per leading-axis sample, or one per per-sample loss.
    reduction : {"mean", "sum"}
    split_every : int or dict, optional
        How many accumulators a merge task takes (``dask.array.reduction``'s
        ``split_every``); the value does not depend on it.

    Returns
    -------
    dask.array.Array
        A 0-d float64 array: ``.compute()`` gives the value (a Python float), equal to
        one in-memory call (``loss(input, target, ...)``), bitwise when the chunks hold
        whole rows and row chunks are multiples of 4096 rows, and bitwise the same for
        every ``split_every``, scheduler and worker count.
    """
    parts = _layout(loss, input, target, sample_weight)
    total = _total(loss, reduction, split_every, *parts)
    return da.map_blocks(_finalize, total, dtype=np.float64, meta=np.empty((), np.float64),
                         token="fastloss-value")


def value_and_grad(loss: Loss, input, target, sample_weight=None, reduction: str = "mean",
                   split_every: Any = None):
    """The lazy value (as :func:`evaluate`) and the lazy gradient of the loss.

    Parameters
    ----------
    loss, input, target, sample_weight, reduction, split_every
        As for :func:`evaluate`.

    Returns
    -------
    value : dask.array.Array
        A 0-d float64 array, as :func:`evaluate` returns.
    grad : dask.array.Array
        The gradient of the value with respect to the input, with the input's shape and
        chunks, in its compute dtype.  For ``"mean"`` each chunk is scaled by the global
        ``1 / sum(w)``; it equals the in-memory ``loss.value_and_grad`` bit for bit
        whenever that denominator does (always without weights).

    Notes
    -----
    The gradient needs the global denominator, which needs every chunk: computing both
    together (``dask.compute(value, grad)``) reads each input chunk in both passes, so
    either persist the input first or let Dask read it twice.
    """
    x, idx, t, t_idx, w, w_idx, cls_axis = _layout(loss, input, target, sample_weight)
    total = _total(loss, reduction, split_every, x, idx, t, t_idx, w, w_idx, cls_axis)
    value = da.map_blocks(_finalize, total, dtype=np.float64,
                          meta=np.empty((), np.float64), token="fastloss-value")
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    grad = da.blockwise(_grad_block, idx, *_args(x, idx, t, t_idx, w, w_idx), total, "",
                        dtype=dtype, meta=np.empty((0,) * x.ndim, dtype), concatenate=True,
                        loss=loss,
                        name="fastloss-grad-" + tokenize(loss, reduction, x, t, w,
                                                                 split_every))
    return value, grad
