"""What every loss shares: the call protocol, parameters, the two kernel families' calls.

A loss is a row of the table in fastloss/losses.py: a class that names its kernel, its
parameters (`Param`) and what its target is, with a docstring.  Everything else is here,
written once for all rows:

* `Loss`: the three methods (`__call__`, `value_and_grad`, `grad_hess`), construction from
  the parameters (validated once, then read-only), repr, equality and pickling;
* `Pointwise` and `Softmax`: one call path per kernel family, each validating its
  arguments once (fastloss._validation), allocating the outputs and making one kernel call
  that reads the data once and writes each output once;
* `LOSSES`, the registry the rows fill as they are defined, and `functional`, which makes
  a row's one-line function (``fastloss.mse(...)``).
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable, ClassVar, Literal, NamedTuple, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _dispatch
from ._kernels import checks, cpu, layout
from ._kernels import exact as _exact
from ._validation import (F32, F64, REDUCTIONS, aligned_c, as_array, as_float,
                          check_no_overlap, check_out, check_reduction, check_same_shape,
                          checked_weights, half_array, readable, resolve_threads,
                          HALF_BF16, HALF_F16)

VALUE, GRAD, HESS = cpu.MODES["value"], cpu.MODES["grad"], cpu.MODES["hess"]

Reduction = Literal["mean", "sum", "none"]
Value = Union[float, np.ndarray]

_HALF_NAMES = {HALF_F16: "float16", HALF_BF16: "bfloat16"}

#: The loss classes in the order the table defines them (fastloss/losses.py).
LOSSES: list[type["Loss"]] = []


class Param(NamedTuple):
    """One parameter of a loss: its name, default, check and documentation.

    `check(value)` returns the value to keep (e.g. a float, or a read-only float64 array)
    or raises ValueError/TypeError saying what is wrong.  A parameter that holds an array
    is kept as float64 and handed to the kernels in the input's dtype (`Loss._array`).
    `examples` are other valid values, which the tests and the documentation use.
    """
    name: str
    default: Any
    check: Callable[[Any], Any]
    doc: str
    examples: tuple = ()


# ------------------------------------------------------------------ parameter checks ----

def positive_finite(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a finite number > 0; got {value!r}") from None
    if isinstance(value, (bool, np.bool_)) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"must be a finite number > 0; got {value!r}")
    return v


def unit_interval(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number in [0, 1]; got {value!r}") from None
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"must be in [0, 1]; got {value!r}")
    return v


def flag(value) -> bool:
    return bool(value)


_INT64 = np.iinfo(np.int64)


def integer(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not hasattr(value, "__index__"):
        raise ValueError(f"must be an integer; got {value!r}")
    return int(value.__index__())


def int64_index(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not hasattr(value, "__index__"):
        raise ValueError(f"must be an integer; got {value!r}")
    v = value.__index__()
    if not _INT64.min <= v <= _INT64.max:
        raise ValueError(f"must fit in int64 (labels are int64); got {value!r}")
    return int(v)


def weight_vector(max_ndim: int, shape_rule: str):
    """A check for an optional array of finite weights >= 0 of at most `max_ndim` axes;
    `shape_rule` says what shape it must have ("must have shape (C,)")."""
    def check(value):
        if value is None:
            return None
        arr = np.array(as_float(value, "weights", F64), dtype=F64, order="C")
        if arr.ndim > max_ndim:
            raise ValueError(f"{shape_rule}; got shape {arr.shape}")
        if not np.all(np.isfinite(arr) & (arr >= 0)):
            raise ValueError("must be finite and >= 0")
        arr.flags.writeable = False
        return arr
    return check


# ------------------------------------------------------------------ the loss ----

#: The arguments the three methods of every loss share, documented once.
_ARGUMENTS = """input : array-like
    Predictions, logits or log-rates (see the loss).  Losses over classes take them on
    the last axis.  Any array-like; float32 is computed in float32, float64 in float64,
    other real dtypes in float64.
target : array-like
    What the input is compared with (see the loss), converted to the input's dtype.
sample_weight : array-like, optional
    Non-negative finite weights, one per leading-axis sample (shape ``(N,)``) or one per
    per-sample loss.  ``"mean"`` is ``sum(w l) / sum(w)``; ``"none"`` gives ``w l``.
reduction : {"mean", "sum", "none"}
    The weighted mean or sum of the per-sample losses, or the per-sample losses
    themselves.  No valid samples give 0.0 for ``"mean"`` (and a zero gradient), never
    NaN.
n_threads : int, optional
    ``None`` follows OpenMP's default (``OMP_NUM_THREADS``, threadpoolctl limits),
    ``-1`` uses every core, ``k >= 1`` uses ``k`` (at most the number of cores).
    Results are bitwise identical for every thread count."""

#: What an `out` array must be.
_OUT = ("C-contiguous, aligned and writeable, of the input's shape and compute dtype, "
        "sharing no memory with any argument; for float16 / bfloat16 input it may instead "
        "have the input's dtype (a PyTorch CPU tensor of it too): the results are then "
        "rounded to it, to nearest even, as they are stored")


def _shared_arguments(method):
    """Fill in a method docstring's {arguments} and {out} (written once, above), indented
    as the placeholder is (Python 3.13 strips docstrings' common indentation, earlier
    versions keep it)."""
    line = next(x for x in method.__doc__.splitlines() if "{arguments}" in x)
    indent = line[:len(line) - len(line.lstrip())]
    args = _ARGUMENTS.replace("\n", "\n" + indent)
    method.__doc__ = method.__doc__.replace("{arguments}", args).replace("{out}", _OUT)
    return method



class Loss:
    """Common interface of every fastloss loss.

    A loss is built from its parameters, which are checked once (the object is then
    read-only, equal to any loss of the same class and parameters, and picklable), and has
    three methods, the same on every loss:

    ``loss(input, target, *, sample_weight=None, reduction="mean", n_threads=None)``
        The loss value: a Python float for ``"mean"`` and ``"sum"``, an array of per-sample
        losses for ``"none"``.  Allocates nothing proportional to the input otherwise.
    ``loss.value_and_grad(input, target, *, ..., reduction="mean", out=None)``
        ``(value, grad)`` in one pass; ``grad`` has the input's shape and is the gradient
        of the returned value (for ``"mean"`` it includes the 1 / sum(w) factor).
    ``loss.grad_hess(input, target, *, ..., reduction="sum", out=None)``
        ``(grad, hess)``: gradient and Hessian diagonal of the reduced loss, for
        gradient-boosting backends.

    Notes
    -----
    Dtypes: float32 input is computed in float32, float64 in float64, other real dtypes
    are converted to float64; the target follows the input.  Sums accumulate in float64.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> loss = fastloss.MSE()
    >>> x, t = np.array([1.0, 2.0, 4.0]), np.array([1.0, 1.0, 1.0])
    >>> loss(x, t, reduction="none")
    array([0., 1., 9.])
    >>> value, grad = loss.value_and_grad(x, t, reduction="sum")
    >>> value, grad
    (10.0, array([0., 2., 6.]))
    >>> grad, hess = loss.grad_hess(x, t)
    >>> hess
    array([2., 2., 2.])
    """

    # What a row of the table (fastloss/losses.py) declares:
    params: ClassVar[tuple[Param, ...]] = ()
    #: the functional form's name, e.g. "mse" (fastloss.mse); also the loss's short name
    name: ClassVar[str]
    #: kernel family: "pointwise" (one value per element) or "softmax" (one per row)
    family: ClassVar[str]
    #: what the target holds: "real", "probability" (in [0, 1]), "count" (>= 0),
    #: "labels or probabilities" (cross-entropy) or "distribution" (KL)
    target: ClassVar[str]
    #: "exact", or "surrogate" where the Hessian is a stand-in (MAE's 1); anything else
    #: (e.g. "zero", identically 0) cannot drive Newton boosting: fastloss.xgboost and
    #: fastloss.lightgbm refuse it as an objective
    hessian: ClassVar[str] = "exact"

    __slots__ = ("_values", "_arrays")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        names = [p.name for p in cls.params]
        cls.__signature__ = inspect.Signature(
            [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default)
             for p in cls.params])
        for p in cls.params:
            if not hasattr(cls, p.name):
                setattr(cls, p.name, property(lambda self, n=p.name: self._values[n],
                                              doc=p.doc))
        if cls.__doc__ and "{parameters}" in cls.__doc__:
            cls.__doc__ = cls.__doc__.replace("{parameters}", _parameters_doc(cls.params))
        if "name" in cls.__dict__:          # a row of the table, not a family's base class
            assert len(set(names)) == len(names)
            LOSSES.append(cls)

    def __init__(self, *args, **kwargs):
        params = type(self).params
        if len(args) > len(params):
            raise TypeError(f"{type(self).__name__}() takes at most {len(params)} positional "
                            f"arguments ({len(args)} given)")
        values = {}
        for i, p in enumerate(params):
            if i < len(args):
                if p.name in kwargs:
                    raise TypeError(f"{type(self).__name__}() got multiple values for "
                                    f"argument {p.name!r}")
                value = args[i]
            else:
                value = kwargs.pop(p.name, p.default)
            try:
                values[p.name] = p.check(value)
            except ValueError as e:
                raise ValueError(f"{p.name} {e}") from None
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument "
                            f"{next(iter(kwargs))!r}")
        self._values = values
        self._arrays = {}
        self._setup()

    def _setup(self) -> None:
        """Per-instance preparation the family needs (e.g. the kernel's number)."""

    def _array(self, name: str, dtype: np.dtype):
        """Parameter `name` (an array or None) in `dtype`, converted once and cached."""
        key = (name, dtype)
        arr = self._arrays.get(key)
        if arr is None:
            arr = self._values[name]
            if arr is not None and arr.dtype != dtype:
                arr = arr.astype(dtype)
                arr.flags.writeable = False
            self._arrays[key] = arr
        return arr

    def get_params(self) -> dict:
        """The loss's parameters, as given to the constructor (arrays as float64)."""
        return dict(self._values)

    # -------------------------------------------------------------- the three methods ----

    @_shared_arguments
    def __call__(self, input: ArrayLike, target: ArrayLike, *,
                 sample_weight: ArrayLike | None = None, reduction: Reduction = "mean",
                 n_threads: int | None = None) -> Value:
        """The loss value (a float, or per-sample losses for ``reduction="none"``).

        Parameters
        ----------
        {arguments}

        Returns
        -------
        float or ndarray
            A Python float for ``"mean"`` and ``"sum"``; for ``"none"``, the weighted
            per-sample losses: the input's shape for pointwise losses, ``input.shape[:-1]``
            for losses over the last axis.
        """
        return self._run(VALUE, input, target, sample_weight, reduction, n_threads, None)

    @_shared_arguments
    def value_and_grad(self, input: ArrayLike, target: ArrayLike, *,
                       sample_weight: ArrayLike | None = None, reduction: Reduction = "mean",
                       n_threads: int | None = None,
                       out: np.ndarray | None = None) -> tuple[Value, np.ndarray]:
        """``(value, grad)`` in one pass; ``grad`` is the gradient of ``value``.

        Parameters
        ----------
        {arguments}
        out : ndarray, optional
            A preallocated gradient ({out}); filled and returned as ``grad``.

        Returns
        -------
        value : float or ndarray
            As for ``loss(...)``.
        grad : ndarray
            The gradient of ``value`` with respect to the input, of the input's shape and
            compute dtype: for ``"mean"`` it includes the 1 / sum(w) factor, for ``"none"``
            it holds each element's own derivative.
        """
        return self._run(VALUE | GRAD, input, target, sample_weight, reduction, n_threads, out)

    @_shared_arguments
    def grad_hess(self, input: ArrayLike, target: ArrayLike, *,
                  sample_weight: ArrayLike | None = None, reduction: Reduction = "sum",
                  n_threads: int | None = None,
                  out: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``(grad, hess)``: gradient and Hessian diagonal of the reduced loss.

        Parameters
        ----------
        {arguments}
        out : (ndarray, ndarray), optional
            A preallocated gradient and Hessian (each {out}, and not overlapping each
            other); filled and returned.

        Returns
        -------
        grad, hess : ndarray
            Gradient and Hessian diagonal of the reduced value with respect to the input,
            of the input's shape and compute dtype (what gradient-boosting libraries ask
            of a custom objective, with ``reduction="sum"``).
        """
        return self._run(GRAD | HESS, input, target, sample_weight, reduction, n_threads, out)

    def _run(self, mode, input, target, sample_weight, reduction, n_threads, out,
             exact=None, scale=None):
        """One call.  exact: None, or (num, den), two exact-sum states
        (fastloss._kernels.exact) to which the call adds its weighted loss sum and its
        "mean" denominator, exactly (for the accumulators; then mode is VALUE and
        reduction "sum").  scale: None, or what the kernel multiplies gradient and
        Hessian by in place of the reduction's own factor (fastloss.dask: a part of a
        "mean" whose denominator is global)."""
        raise NotImplementedError

    def _accumulate(self, input, target, sample_weight=None, n_threads=None):
        """(num, den): new exact-sum states holding this batch's weighted loss sum and its
        "mean" denominator, as one call of the loss computes them (fastloss.Accumulator
        merges them; the call's value is round(num) / round(den))."""
        num, den = _exact.zero(), _exact.zero()
        self._run(VALUE, input, target, sample_weight, "sum", n_threads, None, (num, den))
        return num, den

    def _value_and_grad_scaled(self, input, target, sample_weight, scale, n_threads=None):
        """(weighted loss sum, gradient times `scale`) of one part of the data: the
        gradient a "mean" call over all of it gives for these elements when `scale` is
        1 / its denominator (bit for bit: the kernel applies the scale as that call
        does)."""
        return self._run(VALUE | GRAD, input, target, sample_weight, "sum", n_threads, None,
                         None, scale)

    # -------------------------------------------------------------- object protocol ----

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(self._values[k], other._values[k]) for k in self._values)

    def __hash__(self):
        return hash((type(self).__name__,) + tuple(
            v.tobytes() if isinstance(v, np.ndarray) else v for v in self._values.values()))

    def __reduce__(self):
        return (_rebuild, (type(self), self._values))


def _rebuild(cls, values):
    return cls(**values)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.shape == b.shape and bool(np.array_equal(a, b)))
    return a == b


def _parameters_doc(params) -> str:
    if not params:
        return "This loss has no parameters."
    lines = ["Parameters", "----------"]
    for p in params:
        lines.append(f"{p.name} : default {p.default!r}")
        lines.append(f"    {p.doc}")
    return "\n    ".join(lines)


# ------------------------------------------------------------------ shared steps ----

def _outputs(mode, out, x, inputs, dtype=None):
    """(grad, hess) arrays for this call: checked `out` or freshly allocated (or None), of
    x's shape and dtype (or `dtype`, where the caller's kernel writes another)."""
    if not mode & GRAD:
        return None, None
    if dtype is None:
        dtype = x.dtype
    if out is None:
        grad = np.empty(x.shape, dtype)
        return grad, (np.empty(x.shape, dtype) if mode & HESS else None)
    return _given_outputs(mode, out, x, inputs, dtype)


def _half_outputs(mode, out, x, inputs, half):
    """The gradient (and Hessian) in the input's half-precision dtype, on request: when
    the input is float16 / bfloat16 (`half`, its kind, else 0) and `out` holds arrays
    (or PyTorch CPU tensors) of that dtype, (grad, hess, the 2-byte arrays the kernel
    writes, hess's or None); else None (the float32 outputs of _outputs).
    Shapes, layout, writability and overlap are checked as for float32 outputs."""
    if not (half and mode & GRAD) or out is None:
        return None
    pair = mode & HESS
    if pair and not (isinstance(out, (tuple, list)) and len(out) == 2):
        return None                     # _outputs explains
    given = tuple(out) if pair else (out,)
    halves = [half_array(o) for o in given]
    if all(h is None and (not isinstance(o, np.ndarray) or o.dtype == F32)
           for h, o in zip(halves, given)):
        return None                     # float32 outputs (or not arrays: _outputs explains)
    names = ("out[0]", "out[1]") if pair else ("out",)
    what = ("gradient", "Hessian")
    arrays = []
    for h, o, name, w in zip(halves, given, names, what):
        if h is None or h[1] != half:
            got = getattr(o, "dtype", type(o).__name__)
            both = " for both" if pair else ""
            raise ValueError(f"{name} cannot hold the {w}: it has dtype {got} (expected "
                             f"float32, or {_HALF_NAMES[half]}, the input's dtype{both})")
        arrays.append(check_out(h[0], x.shape, h[0].dtype, name, w))
    if pair:
        check_no_overlap(arrays[:1], arrays[1:])
    check_no_overlap(arrays, inputs)
    return given[0], (given[1] if pair else None), arrays[0], (arrays[1] if pair else None)


def _given_outputs(mode, out, x, inputs, dtype):
    """_outputs for a given `out`: checked, or ValueError."""
    own = dtype is x.dtype          # plain_out compares with x's dtype
    if mode & HESS:
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ValueError("out for grad_hess must be a pair (grad, hess) of arrays")
        grad, hess = out
        if not (own and layout.plain_out(grad, x)):
            check_out(grad, x.shape, dtype, "out[0]", "gradient")
        if not (own and layout.plain_out(hess, x)):
            check_out(hess, x.shape, dtype, "out[1]", "Hessian")
        check_no_overlap([grad], [hess])
        check_no_overlap([grad, hess], inputs)
        return grad, hess
    if not (own and layout.plain_out(out, x)):
        check_out(out, x.shape, dtype, "out", "gradient")
    check_no_overlap([out], inputs)
    return out, None


def _nothing_to_average(mode, grad, hess, arrays=None):
    """"mean" over no valid samples (empty, all ignored, all weights 0): 0.0 and a zero
    gradient, never NaN.  arrays: the ndarrays behind grad and hess, if they differ."""
    for arr in (grad, hess) if arrays is None else arrays:
        if arr is not None:
            arr.fill(0)
    return _result(mode, 0.0, grad, hess)


def _scale(reduction, total_w, scale=None):
    """What the kernels multiply gradient and Hessian by: 1 / sum(w) for "mean" (or
    `scale` where the caller gives one)."""
    if scale is not None:
        return float(scale)
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


# ------------------------------------------------------------------ pointwise family ----

class Pointwise(Loss):
    """A loss of one element: per-sample losses, gradient and Hessian have the input's
    shape.  A row names its scalar helper (`kernel`, the <name> of ``closs_<name>`` in
    _kernels/pointwise_losses.pxi) and, if it has one, the parameter passed to it."""

    family = "pointwise"
    target = "real"
    kernel: ClassVar[str]
    #: the parameter the helper receives as `param` (at most one), or None
    kernel_param: ClassVar[str | None] = None
    #: a parameter broadcast over the last axis and given to the helper as `pw`, or None
    broadcast_param: ClassVar[str | None] = None

    __slots__ = ("_kernel_id", "_param")

    def _kernel_name(self) -> str:
        return self.kernel

    def _setup(self):
        self._kernel_id = _dispatch.kernels.pointwise.KERNELS[self._kernel_name()]
        self._param = self._values[self.kernel_param] if self.kernel_param else 0.0

    def _broadcast(self, dtype, shape):
        """(array over the last axis or None, its period) for the helper's `pw`."""
        if self.broadcast_param is None:
            return None, 1
        arr = self._array(self.broadcast_param, dtype)
        if arr is None:
            return None, 1
        arr = arr.reshape(-1)
        last = shape[-1] if shape else 1
        if arr.size != 1 and arr.size != last:
            raise ValueError(f"{self.broadcast_param} of shape "
                             f"{self._values[self.broadcast_param].shape} does not broadcast "
                             f"over the last axis of input shape {shape}")
        return arr, arr.size

    def _run(self, mode, input, target, sample_weight, reduction, n_threads, out,
             exact=None, scale=None, hess_scale=1.0):
        """As Loss._run; and for fastloss._boosting: hess_scale multiplies the Hessian
        alone, as the kernel stores it (no second pass over it)."""
        x_half = t_half = 0                         # float16 / bfloat16 read natively
        if layout.plain_pair(input, target):        # the common case, checked in ~50 ns
            x, t = input, target
        else:
            half = half_array(input)
            if half is None:
                x = as_float(input, "input")
                t = as_float(target, "target", x.dtype)
            else:
                x, x_half = half
                half = half_array(target) if self.target != "count" else None
                if half is None:
                    t = as_float(target, "target", F32)
                else:
                    t, t_half = half
            if t.shape != x.shape:
                check_same_shape(x, t)
        if reduction not in REDUCTIONS:
            check_reduction(reduction)
        nt = resolve_threads(n_threads)
        dtype, shape = F32 if x_half else x.dtype, x.shape
        num, den = (None, None) if exact is None else exact
        if sample_weight is None:
            w, group, total_w = None, 1, x.size
            if den is not None:
                _exact.add(den, [total_w])
        else:
            w, group, total_w = checked_weights(sample_weight, dtype, shape, nt, den)
        pw, period = self._broadcast(dtype, shape)
        x, t = readable(x), readable(t)
        if self.target == "count":
            bad = checks.first_negative(t, nt)
            if bad >= 0:
                pos = np.unravel_index(bad, shape) if shape else ()
                raise ValueError(f"target must be >= 0 (counts) for {type(self).__name__}; "
                                 f"target[{', '.join(map(str, pos))}] = "
                                 f"{t.reshape(-1)[bad] if t.ndim <= 1 else t[pos]}")
        halves = _half_outputs(mode, out, x, (x, t, w), x_half)
        if halves is None:
            grad, hess = gk, hk = _outputs(mode, out, x, (x, t, w), F32 if x_half else None)
            out_half = 0
        else:
            grad, hess, gk, hk = halves
            out_half = x_half
        if reduction == "mean" and total_w == 0:
            return _nothing_to_average(mode, grad, hess, (gk, hk))
        value = np.empty(shape, dtype) if reduction == "none" and mode & VALUE else None
        total = _dispatch.kernels.pointwise.pointwise(
            self._kernel_id, mode, x, t, w, group, pw, period, value, gk, hk,
            _scale(reduction, total_w, scale), self._param, nt, num, x_half, t_half,
            out_half, hess_scale)
        return _result(mode, _value(reduction, total, total_w, value), grad, hess)


# ------------------------------------------------------------------ softmax family ----

class Softmax(Loss):
    """A loss over one axis, the classes (`axis`, the last by default): one value per row,
    of the input's shape without that axis.

    A row says which kernel kind a target selects (`_targets`) and may weight classes
    (`class_weight` parameter), smooth labels or ignore a label value."""

    family = "softmax"
    #: True: targets may be integer class labels (cross-entropy)
    takes_labels: ClassVar[bool] = False

    #: per instance, from its parameters (_setup): what every call passes the kernel
    __slots__ = ("_axis", "_from_logits", "_smooth", "_ignore_label", "_weights_of")

    def _setup(self):
        self._axis = self._values["axis"]
        self._from_logits = self._values.get("from_logits", True)
        self._smooth = self._smoothing()
        self._ignore_label = self._ignore()
        #: ((dtype, classes), (class weights or None, their sum)) of the last call
        self._weights_of = (None, None)

    def _targets(self, target, x, axis, dtype):
        """(kernel kind name, int64 labels or None, float targets or None) for input x
        whose classes are on `axis`; labels have x's shape without that axis, float
        targets x's shape and the compute dtype `dtype`."""
        raise NotImplementedError

    def _class_weight(self, dtype, n_cls):
        return None, float(n_cls)

    def _smoothing(self) -> float:
        return 0.0

    def _ignore(self) -> int:
        return 0

    def _run(self, mode, input, target, sample_weight, reduction, n_threads, out,
             exact=None, scale=None, hess_scale=1.0, out_f32=False):
        """As Loss._run; and for fastloss._boosting: hess_scale multiplies the Hessian
        alone, and out_f32 (float64 input, from logits, classes on a strided axis or at
        most 32 of them) computes in float64 and stores gradient and Hessian as float32,
        each value rounded once."""
        x_half = in_half = 0        # float16 / bfloat16 logits: read natively, or not
        if layout.plain_float(input):
            x = input
        else:
            half = half_array(input)
            in_half = 0 if half is None else half[1]
            if in_half and self._from_logits and _native_half_rows(half[0], self._axis):
                x, x_half = half
            else:
                x = as_float(input, "input")
        axis, nd = self._axis, x.ndim
        if nd == 0 or not -nd <= axis < nd or x.shape[axis] == 0:
            raise ValueError(f"input must have an axis {axis} of at least one class; "
                             f"got shape {x.shape}")
        axis %= nd
        dtype = F32 if x_half else x.dtype
        n_cls = x.shape[axis]
        last = axis == nd - 1
        sample_shape = x.shape[:-1] if last else x.shape[:axis] + x.shape[axis + 1:]
        if self.takes_labels and layout.plain_labels(
                target, x if last else np.moveaxis(x, axis, -1)):   # common: ~50 ns
            kind, y, t = "ce_index", target, None
        else:
            kind, y, t = self._targets(target, x, axis, dtype)
        if reduction not in REDUCTIONS:
            check_reduction(reduction)
        nt = resolve_threads(n_threads)
        num, den = (None, None) if exact is None else exact
        if sample_weight is None:
            w, group = None, 1
            total_w = float(x.size // n_cls)
            if den is not None and y is None:
                _exact.add(den, [total_w])
        else:
            w, group, total_w = checked_weights(sample_weight, dtype, sample_shape, nt,
                                                None if y is not None else den)
        if self._weights_of[0] != (dtype, n_cls):       # raises for a wrong class count
            self._weights_of = ((dtype, n_cls), self._class_weight(dtype, n_cls))
        cw, cw_sum = self._weights_of[1]
        ignore = self._ignore_label
        if y is not None:
            total_w, bad = checks.labels(y, n_cls, ignore, cw, w, group, dtype is F32, nt,
                                         den)   # labels: den is the class-weighted count
            if bad >= 0:
                pos = np.unravel_index(bad, y.shape) if y.ndim else ()
                raise ValueError(f"target[{', '.join(map(str, pos))}] = "
                                 f"{y.reshape(-1)[bad]} is not a class index in [0, {n_cls}) "
                                 f"nor ignore_index={ignore}")
        out_f32 = out_f32 and dtype is F64
        halves = _half_outputs(mode, out, x, (x, y, t, w), in_half)
        if halves is None:
            grad, hess = gk, hk = _outputs(mode, out, x, (x, y, t, w),
                                           F32 if out_f32 or x_half else None)
            out_half = 0
        else:
            grad, hess, gk, hk = halves
            out_half = in_half
        if reduction == "mean" and total_w == 0:
            return _nothing_to_average(mode, grad, hess, (gk, hk))
        value = np.empty(sample_shape, dtype) if reduction == "none" and mode & VALUE else None
        if last and layout.plain_rows(x, t):    # the kernel reads (rows, classes) as is
            gv, hv = gk, hk
        else:
            x, t = class_view(x, axis), None if t is None else class_view(t, axis)
            gv = None if gk is None else class_view(gk, axis)
            hv = None if hk is None else class_view(hk, axis)
        softmax = _dispatch.kernels.softmax
        total, bad = softmax.softmax(
            softmax.KINDS[kind], mode, self._from_logits, x, y, t, cw, cw_sum, w, group,
            value, gv, hv, _scale(reduction, total_w, scale), self._smooth, ignore, nt, num,
            hess_scale, out_f32, x_half, out_half)
        if bad >= 0:
            _labels_changed(y, bad, n_cls, ignore)
        return _result(mode, _value(reduction, total, total_w, value), grad, hess)


def _native_half_rows(x: np.ndarray, axis: int) -> bool:
    """True if the softmax kernels can read half-precision x themselves: rows of
    contiguous classes (classes on the last axis, C-contiguous, aligned)."""
    return (x.ndim > 0 and axis in (-1, x.ndim - 1) and x.flags.c_contiguous
            and x.flags.aligned)


def class_view(arr: np.ndarray, axis: int) -> np.ndarray:
    """`arr` as a 3-D (outer, classes, inner) array the softmax kernels read in place: its
    strides multiples of the item size, aligned, and either inner == 1 with contiguous
    classes or an inner stride of one item.  A view where the layout allows (PyTorch's
    (N, C, d1, ..., dk) tensors included), else a C-contiguous copy."""
    shape = arr.shape
    dims = (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))
    flags = arr.flags
    if flags.c_contiguous and flags.aligned:            # the common case: a reshape (~0.3 us)
        return arr.reshape(dims)
    view = None
    if flags.aligned:
        view = arr.view()
        try:
            view.shape = dims                           # no copy, or AttributeError
        except AttributeError:
            view = None
    if view is not None:
        item = arr.itemsize
        s0, s1, s2 = view.strides
        ok = s0 % item == 0 and s1 % item == 0 and (s1 == item if dims[2] == 1 else s2 == item)
        if ok:
            return view
    return aligned_c(np.ascontiguousarray(arr)).reshape(dims)


def _labels_changed(y, bad, n_cls, ignore_index):
    """The kernel read a label that had been in range when checked and was not any more:
    the caller's labels were written during the call (by another thread)."""
    pos = np.unravel_index(bad, y.shape) if y.ndim else ()
    raise ValueError(f"target[{', '.join(map(str, pos))}] changed during the call (another "
                     f"thread wrote to the labels) to a value that is not a class index in "
                     f"[0, {n_cls}) nor ignore_index={ignore_index}; that row was counted "
                     f"as ignored and the outputs of this call are not valid")


def class_labels(target, n_cls) -> np.ndarray:
    """Integer class labels as aligned C-contiguous int64 (values are checked by the
    kernels' pre-pass)."""
    y = as_array(target, "target")
    if y.dtype.kind == "u" and y.size and y.max() > _INT64.max:
        pos = np.unravel_index(int(np.argmax(y)), y.shape)
        raise ValueError(f"target[{', '.join(map(str, pos))}] = {y[pos]} is not a class "
                         f"index in [0, {n_cls})")
    return aligned_c(y, np.int64)


# ------------------------------------------------------------------ functional forms ----

def functional(cls: type[Loss]) -> Callable:
    """The one-line form of a loss, in the style of torch.nn.functional:
    ``name(input, target, <parameters>, *, sample_weight=None, reduction="mean",
    n_threads=None)`` returns ``cls(<parameters>)(input, target, ...)``."""
    names = [p.name for p in cls.params]

    def fn(input, target, *args, sample_weight=None, reduction="mean", n_threads=None,
           **params):
        return cls(*args, **params)(input, target, sample_weight=sample_weight,
                                    reduction=reduction, n_threads=n_threads)

    P = inspect.Parameter
    fn.__signature__ = inspect.Signature(
        [P("input", P.POSITIONAL_OR_KEYWORD), P("target", P.POSITIONAL_OR_KEYWORD)]
        + [P(p.name, P.POSITIONAL_OR_KEYWORD, default=p.default) for p in cls.params]
        + [P("sample_weight", P.KEYWORD_ONLY, default=None),
           P("reduction", P.KEYWORD_ONLY, default="mean"),
           P("n_threads", P.KEYWORD_ONLY, default=None)])
    fn.__name__ = fn.__qualname__ = cls.name
    fn.__module__ = cls.__module__
    args = ", ".join(names)
    fn.__doc__ = (f"``{cls.__name__}({args})(input, target, ...)``: the value of "
                  f":class:`~fastloss.{cls.__name__}` in one line (see there).")
    return fn
