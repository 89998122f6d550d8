"""Streaming evaluation: a loss's "mean" or "sum" over data that arrive in batches.

:class:`Accumulator` keeps two exact sums (``fastloss._kernels.exact``): the weighted
loss sum and the "mean" denominator, each exactly as one call of the loss forms them
(sample weights, class weights, ``ignore_index``, label smoothing, KL's batch mean).
Exact sums do not depend on the order in which they were added or merged, so the result
is the same, bit for bit, for any merge order, number of workers or threads, given the
same batches.  Every call's total is itself the exact sum of fixed-size block sums
(4096 elements, or a power-of-two number of softmax rows), so batches cut at multiples
of 4096 samples give exactly the bits of one call over all the data; other cuts change
only the rounding inside the blocks (about 1e-16 relative).

This module is part of fastloss's public face (``fastloss.Accumulator``) and imports no
optional library; ``fastloss.dask`` and ``python -m fastloss eval`` are built on it.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._kernels import exact as _exact
from ._loss import Loss

__all__ = ["Accumulator", "ROWS_PER_BLOCK"]

#: Batches cut at multiples of this many samples (leading-axis rows) give, accumulated,
#: the single call's bits: the kernels' fixed block of elements (pointwise losses), of
#: which a softmax block's row count is a power-of-two divisor.
ROWS_PER_BLOCK = 4096

_REDUCTIONS = ("mean", "sum")
_STATE_VERSION = 1


def _fingerprint(loss: Loss) -> str:
    """A digest of the loss's class and parameters, the same in every process (hash() of
    str and bytes is salted per process): what states carry to be merged safely."""
    h = hashlib.sha256(type(loss).__qualname__.encode())
    for name, value in loss.get_params().items():
        h.update(b"\0" + name.encode() + b"=")
        if isinstance(value, np.ndarray):
            h.update(f"{value.dtype.str}{value.shape}".encode())
            h.update(np.ascontiguousarray(value).tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()[:16]


def _check_state_array(value, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != np.int64 or arr.shape != (_exact.STATE_SIZE,):
        raise ValueError(f"state[{what!r}] must be an int64 array of shape "
                         f"({_exact.STATE_SIZE},); got {arr.dtype} {arr.shape}")
    return np.array(arr, dtype=np.int64, order="C")        # a private, writable copy


class Accumulator:
    """A loss's ``"mean"`` or ``"sum"`` over batches, exactly as one call over all of them.

    ``acc.update(input, target, sample_weight=None)`` adds a batch; ``acc.result()``
    is the value one call of the loss over the concatenated batches would give.  Two
    accumulators of the same loss and reduction merge (``acc.merge(other)``), in any
    order, with the same result, so that workers can each evaluate a part of the data.

    Parameters
    ----------
    loss : Loss
        A loss of the table (:data:`fastloss.LOSSES`), e.g. ``fastloss.CrossEntropy()``.
    reduction : {"mean", "sum"}
        What :meth:`result` returns: the weighted mean ``sum(w l) / sum(w)`` (with the
        loss's own denominator: class weights and ignored rows for cross-entropy, rows
        for KL) or the weighted sum.

    Notes
    -----
    *Exactness.*  The accumulator keeps the exact sums of the kernels' block sums (two
    states of ``STATE_SIZE`` int64 values each) and rounds once in :meth:`result`.
    Hence:

    - the result is bitwise identical for any merge order or tree, any number of
      workers or threads, given the same batches;
    - it equals one call over the concatenated data bit for bit when the batches are cut
      at multiples of ``ROWS_PER_BLOCK`` = 4096 samples (leading-axis rows; for a loss
      whose classes are on the leading axis, along the sample axis), and to about 1e-16
      relative otherwise (the blocks round differently).

    *Cost.*  An update is a value-only call of the loss (no gradient is allocated) that
    also adds its block sums to two exact states: a few microseconds more than the plain
    call, whatever the batch size.

    *Failures.*  An update validates its batch as a call of the loss does and raises
    ``ValueError`` or ``TypeError`` for a bad one, leaving the accumulator unchanged.

    *Threads.*  An accumulator is not locked: give each thread its own and merge them.

    *State.*  :meth:`state` is a small dict of NumPy arrays and strings (about 1.2 kB),
    picklable and mergeable; :meth:`from_state` rebuilds an accumulator from it.
    Accumulators pickle too.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> rng = np.random.default_rng(0)
    >>> x, t = rng.normal(size=(10_000, 3)), rng.normal(size=(10_000, 3))
    >>> acc = fastloss.Accumulator(fastloss.MSE())
    >>> for lo in range(0, 10_000, 4096):
    ...     acc = acc.update(x[lo:lo + 4096], t[lo:lo + 4096])
    >>> acc.result() == fastloss.MSE()(x, t)
    True

    Two workers, merged:

    >>> a = fastloss.Accumulator(fastloss.MSE()).update(x[:4096], t[:4096])
    >>> b = fastloss.Accumulator(fastloss.MSE()).update(x[4096:], t[4096:])
    >>> a.merge(b).result() == fastloss.MSE()(x, t)
    True
    """

    __slots__ = ("_loss", "_reduction", "_num", "_den", "_key")

    def __init__(self, loss: Loss, reduction: str = "mean"):
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a fastloss loss (e.g. fastloss.MSE()); got "
                            f"{type(loss).__name__}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be 'mean' or 'sum' for an accumulator; got "
                             f"{reduction!r}")
        self._loss = loss
        self._reduction = reduction
        self._key = _fingerprint(loss)
        self._num = _exact.zero()
        self._den = _exact.zero()

    # -------------------------------------------------------------- properties ----

    @property
    def loss(self) -> Loss:
        """The loss evaluated."""
        return self._loss

    @property
    def reduction(self) -> str:
        """``"mean"`` or ``"sum"``: what :meth:`result` returns."""
        return self._reduction

    # -------------------------------------------------------------- work ----

    def update(self, input: ArrayLike, target: ArrayLike,
               sample_weight: ArrayLike | None = None, *,
               n_threads: int | None = None) -> "Accumulator":
        """Add a batch, as the loss takes it (``loss(input, target, sample_weight=...)``).

        Parameters
        ----------
        input, target, sample_weight : array-like
            One batch, as for a call of the loss.
        n_threads : int, optional
            Threads of the kernel call (as for the loss); the result does not depend on
            it.

        Returns
        -------
        Accumulator
            ``self``, updated in place.

        Raises
        ------
        ValueError, TypeError
            As a call of the loss would, for a bad batch; the accumulator is unchanged.
        """
        num, den = self._loss._accumulate(input, target, sample_weight, n_threads)
        self._num = _exact.merge(self._num, num)
        self._den = _exact.merge(self._den, den)
        return self

    def merge(self, other: "Accumulator") -> "Accumulator":
        """Add another accumulator's batches to this one, **in place**.

        Parameters
        ----------
        other : Accumulator
            An accumulator of an equal loss (same class and parameters) and the same
            reduction; it is not changed.

        Returns
        -------
        Accumulator
            ``self``, which now holds both (use :meth:`copy` first to keep it).

        Raises
        ------
        TypeError
            ``other`` is not an accumulator.
        ValueError
            ``other`` evaluates a different loss or reduction.
        """
        if not isinstance(other, Accumulator):
            raise TypeError(f"can only merge another Accumulator; got {type(other).__name__}")
        self._check_compatible(other._key, other._loss, other._reduction)
        self._num = _exact.merge(self._num, other._num)
        self._den = _exact.merge(self._den, other._den)
        return self

    def result(self) -> float:
        """The loss's value over every batch added: a Python float.

        ``"sum"`` is the weighted loss sum; ``"mean"`` that sum divided by the loss's
        denominator, each rounded once from its exact sum (exactly what one call does);
        ``"mean"`` over nothing (no batch, or no valid sample) is 0.0, as in the losses.
        """
        total = _exact.round_to_float(self._num)
        if self._reduction == "sum":
            return total
        den = _exact.round_to_float(self._den)
        return total / den if den != 0 else 0.0

    def reset(self) -> "Accumulator":
        """Forget every batch (the loss and reduction stay); returns ``self``."""
        self._num = _exact.zero()
        self._den = _exact.zero()
        return self

    def copy(self) -> "Accumulator":
        """An independent accumulator with the same batches."""
        new = object.__new__(Accumulator)
        new._loss, new._reduction, new._key = self._loss, self._reduction, self._key
        new._num, new._den = self._num.copy(), self._den.copy()
        return new

    # -------------------------------------------------------------- state ----

    def state(self) -> dict[str, Any]:
        """The accumulator's state: a small picklable dict (two int64 arrays and three
        strings), from which :meth:`from_state` rebuilds it.

        Its keys: ``"num"`` and ``"den"`` (the exact sums), ``"reduction"``, ``"loss"``
        (the loss's name) and ``"fingerprint"`` (a digest of the loss's class and
        parameters, the same in every process).  The arrays are copies.
        """
        return {"version": _STATE_VERSION, "loss": self._loss.name,
                "fingerprint": self._key, "reduction": self._reduction,
                "num": self._num.copy(), "den": self._den.copy()}

    @classmethod
    def from_state(cls, loss: Loss, state: dict[str, Any]) -> "Accumulator":
        """An accumulator of `loss` holding `state` (from :meth:`state`).

        Raises
        ------
        ValueError
            The state is malformed or was made by a different loss.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from Accumulator.state(); got "
                            f"{type(state).__name__}")
        missing = {"loss", "fingerprint", "reduction", "num", "den"} - set(state)
        if missing:
            raise ValueError(f"state lacks {', '.join(sorted(missing))}: not from "
                             f"Accumulator.state()")
        acc = cls(loss, state["reduction"])
        acc._check_compatible(state["fingerprint"], None, state["reduction"],
                              state["loss"])
        acc._num = _check_state_array(state["num"], "num")
        acc._den = _check_state_array(state["den"], "den")
        return acc

    def _check_compatible(self, key, loss, reduction, name=None) -> None:
        if key != self._key:
            other = repr(loss) if loss is not None else f"a {name!r} loss of other parameters"
            if name is not None and name != self._loss.name:
                other = f"a {name!r} loss"
            raise ValueError(f"cannot merge accumulators of different losses: this one "
                             f"evaluates {self._loss!r}, the other {other}")
        if reduction != self._reduction:
            raise ValueError(f"cannot merge accumulators of different reductions: this one "
                             f"is {self._reduction!r}, the other {reduction!r}")

    # -------------------------------------------------------------- protocol ----

    def __reduce__(self):
        return (_rebuild, (self._loss, self.state()))

    def __repr__(self):
        return (f"Accumulator({self._loss!r}, reduction={self._reduction!r}) "
                f"-> {self.result()!r}")


def _rebuild(loss, state):
    return Accumulator.from_state(loss, state)
