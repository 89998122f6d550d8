"""The functional forms, named and called as in torch.nn.functional.

Each function checks what PyTorch's own would do with its arguments, in Python, before
any kernel runs: tensors on the CPU, dense, of a dtype the kernels compute in, shapes that
need no broadcasting, no gradient wanted for the target or the weights, options fastloss
has.  Anything else goes to PyTorch's function of the same name, which then computes (or
raises) exactly as it would have.  These checks read only metadata, so torch.compile
decides them once, at trace time.
"""
from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import _reduction as _Reduction
from torch.overrides import has_torch_function_variadic

from . import _ops

__all__ = ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "pseudo_huber_loss",
           "cross_entropy", "binary_cross_entropy_with_logits", "binary_cross_entropy",
           "kl_div", "poisson_nll_loss", "linear_cross_entropy"]

_REDUCTIONS = ("mean", "sum", "none")
_DTYPES = _ops.FAST + _ops.HALF

#: Inputs of fewer elements than this go to PyTorch's own function: a call into fastloss
#: costs about 30 us more than one of PyTorch's fused losses (an autograd.Function and a
#: Python backward against C++ nodes), more than fastloss's kernels save on small inputs.
#: Where fastloss and PyTorch take equal time, forward + backward, one thread, CPU time
#: (torch 2.13, a shared 2-core Xeon; fastloss/torch/__init__.py has the table): MSE
#: ~65k elements, L1 and BCE with logits ~10k, Poisson and KL ~16k; Pseudo-Huber, which
#: PyTorch computes as its formula, never.  Cross-entropy: see `_small_ce`.  Set an
#: entry to 0 to have fastloss compute every size.
SMALL = {"mse": 65_536, "mae": 16_384, "huber": 16_384, "pseudo_huber": 0,
         "poisson_nll": 16_384, "bce_logits": 16_384, "bce_probs": 32_768,
         "kl_div": 16_384, "kl_div_log": 16_384, "cross_entropy": 32_768,
         "cross_entropy_few_classes": 24_576}

#: Cross-entropy with fewer classes than this (PyTorch's log_softmax is slow per row for
#: few classes: 0.4 us per row at C = 10, against 4 ns per element at C = 1000) has its
#: own threshold.  On a shared 2-core AMD EPYC VM (torch 2.13) where one autograd
#: backward alone costs ~100 us, fastloss.torch forward+backward at C = 10 ran 0.68x
#: PyTorch's speed at 256 rows, 0.91x at 2048 and 1.35x at 4096: the crossover is near
#: 25,000 elements (a Xeon with less per-call overhead had it near 2,000).
FEW_CLASSES = 32


def _legacy(size_average, reduce, reduction: str) -> str:
    if size_average is not None or reduce is not None:
        return _Reduction.legacy_get_string(size_average, reduce)
    return reduction


_STRIDED = torch.strided


def _is_cpu_dense(t: Tensor) -> bool:
    return t.is_cpu and t.layout is _STRIDED


def _takes(x: Tensor, *others: Optional[Tensor]) -> bool:
    """True when fastloss computes what PyTorch would: x and every other tensor dense on
    the CPU, x of float32/float64/float16/bfloat16 and the others of x's dtype, nothing
    but x needing a gradient, no __torch_function__ override, no functorch transform."""
    if not (isinstance(x, Tensor) and x.is_cpu and x.dtype in _DTYPES
            and x.layout is _STRIDED):
        return False
    grad = torch.is_grad_enabled()
    dtype = x.dtype
    for o in others:
        if o is not None and (o.dtype is not dtype or not o.is_cpu or o.layout is not _STRIDED
                              or (grad and o.requires_grad)):
            return False
    if torch.compiler.is_compiling():
        return True
    return (not has_torch_function_variadic(x, *others)
            and not torch._C._functorch.is_functorch_wrapped_tensor(x))


def _pointwise(x: Tensor, t: Tensor, w: Optional[Tensor], pw: Optional[Tensor], loss: str,
               param: float, reduction: str, scale: float = 1.0) -> Tensor:
    """A pointwise row (fastloss's reductions).  float16 and bfloat16 are read in place,
    computed in float32, and value and gradient returned in their dtype, the gradient
    rounded by the kernel as it stores it (no float32 copy of input or gradient)."""
    return _ops.pointwise(x, t, w, pw, loss, param, reduction, scale)


def _small(x: Tensor, loss: str) -> bool:
    """An input too small for fastloss to pay off (:data:`SMALL`)."""
    return x.numel() < SMALL[loss]


def _small_ce(x: Tensor) -> bool:
    n = x.numel()
    if n >= SMALL["cross_entropy"]:
        return False
    classes = x.shape[1] if x.dim() > 1 else x.shape[0] if x.dim() else 0
    return classes >= FEW_CLASSES or n < SMALL["cross_entropy_few_classes"]


def _mean_scale(x: Tensor) -> float:
    return 1.0 / max(x.numel(), 1)


def _same_shape(x: Tensor, t: Tensor) -> bool:
    return isinstance(t, Tensor) and t.shape == x.shape


# ------------------------------------------------------------------ regression ----

def _elementwise(loss: str, torch_fn, input: Tensor, target: Tensor, reduction: str,
                 weight: Optional[Tensor]) -> Tensor:
    """A parameterless pointwise loss with an elementwise weight (MSE, MAE): fastloss's
    kernel when it takes the call, else PyTorch's `torch_fn`."""
    if (reduction in _REDUCTIONS and _same_shape(input, target)
            and (weight is None or weight.shape == input.shape)
            and _takes(input, target, weight) and not _small(input, loss)):
        return _pointwise(input, target, weight, None, loss, 0.0, reduction)
    return torch_fn(input, target, reduction=reduction, weight=weight)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Optional[Tensor] = None) -> Tensor:
    """``torch.nn.functional.mse_loss`` computed by fastloss (:class:`fastloss.MSE`)."""
    return _elementwise("mse", F.mse_loss, input, target,
                        _legacy(size_average, reduce, reduction), weight)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Optional[Tensor] = None) -> Tensor:
    """``torch.nn.functional.l1_loss`` computed by fastloss (:class:`fastloss.MAE`)."""
    return _elementwise("mae", F.l1_loss, input, target,
                        _legacy(size_average, reduce, reduction), weight)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Optional[Tensor] = None) -> Tensor:
    """``torch.nn.functional.huber_loss`` computed by fastloss (:class:`fastloss.Huber`).
    With ``weight``, "mean" is the mean of the weighted losses over the elements, as in
    PyTorch."""
    if (reduction in _REDUCTIONS and _same_shape(input, target)
            and (weight is None or weight.shape == input.shape)
            and _positive(delta) and _takes(input, target, weight)
            and not _small(input, "huber")):
        if weight is not None and reduction == "mean":
            return _pointwise(input, target, weight, None, "huber", float(delta), "sum",
                              _mean_scale(input))
        return _pointwise(input, target, weight, None, "huber", float(delta), reduction)
    return F.huber_loss(input, target, reduction=reduction, delta=delta, weight=weight)


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
        and v > 0


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """``torch.nn.functional.smooth_l1_loss``: ``Huber(delta=beta) / beta`` computed by
    fastloss (the ``1 / beta`` rides on the kernels' weights), and :class:`fastloss.MAE`
    for ``beta == 0``."""
    reduction = _legacy(size_average, reduce, reduction)
    if (reduction in _REDUCTIONS and _same_shape(input, target)
            and isinstance(beta, (int, float)) and (beta == 0 or _positive(beta))
            and _takes(input, target) and not _small(input, "huber")):
        if beta == 0:
            return _pointwise(input, target, None, None, "mae", 0.0, reduction)
        scale = 1.0 / beta * (_mean_scale(input) if reduction == "mean" else 1.0)
        return _pointwise(input, target, None, None, "huber", float(beta),
                          "sum" if reduction == "mean" else reduction, scale)
    return F.smooth_l1_loss(input, target, reduction=reduction, beta=beta)


def pseudo_huber_loss(input: Tensor, target: Tensor, delta: float = 1.0,
                      reduction: str = "mean") -> Tensor:
    """Pseudo-Huber loss (PyTorch has none): ``delta^2 (sqrt(1 + (r / delta)^2) - 1)``
    with ``r = input - target``, reduced by ``reduction`` ("mean", "sum" or "none");
    :class:`fastloss.PseudoHuber`.  ``delta`` must be finite and > 0 (``ValueError``).
    Where fastloss cannot run (another device, a target that needs a gradient, shapes
    that broadcast) the same formula runs in PyTorch."""
    if not _positive(delta):
        raise ValueError(f"delta must be a finite number > 0; got {delta!r}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if (_same_shape(input, target) and _takes(input, target)
            and not _small(input, "pseudo_huber")):
        return _pointwise(input, target, None, None, "pseudo_huber", float(delta), reduction)
    per = _ops.pseudo_huber_elementwise(input, target, delta)
    if reduction == "none":
        return per
    return per.sum() if reduction == "sum" else per.mean()


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True,
                     full: bool = False, size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """``torch.nn.functional.poisson_nll_loss``: ``log_input=True, full=False`` (the
    defaults) computed by fastloss (:class:`fastloss.PoissonNLL`); ``log_input=False``,
    ``full=True`` and negative targets by PyTorch."""
    reduction = _legacy(size_average, reduce, reduction)
    if (log_input and not full and reduction in _REDUCTIONS and _same_shape(input, target)
            and _takes(input, target) and not _small(input, "poisson_nll")):
        return _pointwise(input, target, None, None, "poisson_nll", 0.0, reduction)
    return F.poisson_nll_loss(input, target, log_input=log_input, full=full, eps=eps,
                              reduction=reduction)


# ------------------------------------------------------------------ probabilities ----

def _sample_weights(w: Tensor, x: Tensor) -> Optional[Tensor]:
    """PyTorch's broadcast weight in a form the kernels take: x's shape, or one weight per
    leading-axis sample (an (N, 1, ..., 1) weight); any other shape that broadcasts to x's
    is expanded (the kernels copy it once).  None if it does not broadcast to x's shape."""
    if w.shape == x.shape:
        return w
    if w.dim() > x.dim():
        return None
    try:
        shape = torch.broadcast_shapes(w.shape, x.shape)
    except RuntimeError:
        return None
    if shape != x.shape:
        return None
    if x.dim() >= 1 and w.dim() == x.dim() and all(s == 1 for s in w.shape[1:]):
        return w.reshape(w.shape[:1]).expand(x.shape[:1])
    return w.expand(x.shape)


def _pos_weight_ok(pw: Tensor, x: Tensor) -> bool:
    """fastloss broadcasts pos_weight over the last axis: a scalar or (C,)."""
    return pw.dim() == 0 or (pw.dim() == 1 and x.dim() >= 1
                             and pw.shape[0] in (1, x.shape[-1]))


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Optional[Tensor] = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Optional[Tensor] = None) -> Tensor:
    """``torch.nn.functional.binary_cross_entropy_with_logits`` computed by fastloss
    (:class:`fastloss.BinaryCrossEntropy`): ``weight`` broadcasts against the input and,
    as in PyTorch, "mean" divides by the number of elements (weights do not normalize);
    ``pos_weight`` of shape ``()``, ``(1,)`` or ``(C,)`` (the last axis)."""
    reduction = _legacy(size_average, reduce, reduction)
    if (reduction in _REDUCTIONS and _same_shape(input, target)
            and _takes(input, target, weight, pos_weight)
            and (pos_weight is None or _pos_weight_ok(pos_weight, input))
            and not _small(input, "bce_logits")):
        w = None if weight is None else _sample_weights(weight, input)
        if weight is None or w is not None:
            return _bce(input, target, w, pos_weight, "bce_logits", reduction)
    return F.binary_cross_entropy_with_logits(input, target, weight=weight,
                                              reduction=reduction, pos_weight=pos_weight)


def _bce(x, t, w, pw, loss, reduction):
    if w is not None and reduction == "mean":        # PyTorch: sum(w l) / numel
        return _pointwise(x, t, w, pw, loss, 0.0, "sum", _mean_scale(x))
    return _pointwise(x, t, w, pw, loss, 0.0, reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``torch.nn.functional.binary_cross_entropy`` (input: probabilities) computed by
    fastloss (:class:`fastloss.BinaryCrossEntropy` with ``from_logits=False``): logs
    clamped at -100 as in PyTorch, input and target checked to lie in [0, 1] (PyTorch's
    error otherwise)."""
    reduction = _legacy(size_average, reduce, reduction)
    if (reduction in _REDUCTIONS and _same_shape(input, target)
            and _takes(input, target, weight) and not _small(input, "bce_probs")):
        w = None if weight is None else _sample_weights(weight, input)
        if weight is None or w is not None:
            return _bce(input, target, w, None, "bce_probs", reduction)
    return F.binary_cross_entropy(input, target, weight=weight, reduction=reduction)


_KL_MEAN_WARNING = (
    "reduction: 'mean' divides the total loss by both the batch size and the support size."
    "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
    "'mean' will be changed to behave the same as 'batchmean' in the next major release.")


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """``torch.nn.functional.kl_div`` computed by fastloss (:class:`fastloss.KLDiv`):
    elementwise, ``input`` holds log-probabilities; ``"batchmean"`` divides the sum by
    ``input.size(0)`` and ``"mean"`` by the number of elements (with PyTorch's warning).
    A zero target gives a 0 term even where PyTorch gives NaN (an input of ``-inf``, or
    ``log_target=True`` with a target of ``-inf``)."""
    legacy = size_average is not None or reduce is not None
    reduction = _legacy(size_average, reduce, reduction)
    if (reduction in _REDUCTIONS + ("batchmean",) and _same_shape(input, target)
            and _takes(input, target)
            and not _small(input, loss := "kl_div_log" if log_target else "kl_div")):
        if reduction == "mean" and not legacy and not torch.compiler.is_compiling():
            warnings.warn(_KL_MEAN_WARNING, stacklevel=2)       # (dynamo cannot trace it)
        if reduction != "batchmean":
            return _pointwise(input, target, None, None, loss, 0.0, reduction)
        n = input.shape[0] if input.dim() else 1
        return _pointwise(input, target, None, None, loss, 0.0, "sum", 1.0 / max(n, 1))
    return F.kl_div(input, target, reduction=reduction, log_target=log_target)


# ------------------------------------------------------------------ classes ----

def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """``torch.nn.functional.cross_entropy`` computed by fastloss
    (:class:`fastloss.CrossEntropy`): input ``(N, C)``, ``(C,)`` or ``(N, C, d1, ..., dk)``
    with the classes on dim 1, read in place; targets of class indices (int64) or of
    class probabilities (input's shape and dtype); ``weight``, ``ignore_index`` and
    ``label_smoothing`` as in PyTorch.  "mean" over rows that are all ignored (or over
    an empty batch) gives 0 and a zero gradient, where PyTorch gives NaN."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    if isinstance(input, Tensor) and _small_ce(input):      # first: small calls are PyTorch's
        return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                               reduction=reduction, label_smoothing=label_smoothing)
    # Shapes are not checked here: cross-entropy never broadcasts, so a shape PyTorch
    # would take is one fastloss takes, and fastloss's ValueError for any other makes the
    # call PyTorch's (with its error).
    labels = isinstance(target, Tensor) and target.dtype is torch.int64
    if (reduction in _REDUCTIONS and type(ignore_index) is int
            and type(label_smoothing) in (float, int)
            and _takes(input, weight, None if labels else target)
            and (not labels or target.is_cpu) and input.dim() >= 1):
        return _ops.cross_entropy(input, target, weight, ignore_index,
                                  float(label_smoothing), reduction)
    return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)


# ------------------------------------------------------------------ linear + classes ----

def linear_cross_entropy(input: Tensor, weight: Tensor, target: Tensor,
                         bias: Optional[Tensor] = None, class_weight: Optional[Tensor] = None,
                         ignore_index: int = -100, reduction: str = "mean",
                         label_smoothing: float = 0.0) -> Tensor:
    """``F.cross_entropy(F.linear(input, weight, bias), target, weight=class_weight, ...)``
    without the logits (:class:`fastloss.LinearCrossEntropy`): only a block of rows of
    logits exists at a time, forward and backward.

    ``input`` ``(N, H)`` (or ``(..., H)`` with ``target`` ``(...)``), ``weight``
    ``(V, H)`` and ``bias`` ``(V,)`` as in ``torch.nn.Linear``, ``target`` int64 class
    indices; ``class_weight``, ``ignore_index``, ``reduction`` and ``label_smoothing`` as
    ``weight``, ... of ``torch.nn.functional.cross_entropy``.  Gradients flow to
    ``input``, ``weight`` and ``bias``.  With ``"mean"`` and ``"sum"`` the forward pass
    computes the gradients too (backward only scales them); with ``"none"`` backward
    computes them (one more product).  Tensors fastloss cannot take (another device or
    dtype, float16/bfloat16, a class weight or target that needs a gradient) go to
    PyTorch's ``cross_entropy(linear(...))``, which then builds the logits.  "mean" over
    rows that are all ignored gives 0 (PyTorch: NaN)."""
    if (reduction in _REDUCTIONS and type(ignore_index) is int
            and type(label_smoothing) in (float, int)
            and isinstance(input, Tensor) and isinstance(weight, Tensor)
            and input.dtype in _ops.FAST and input.dim() >= 1 and weight.dim() == 2
            and isinstance(target, Tensor) and target.dtype is torch.int64 and target.is_cpu
            and target.shape == input.shape[:-1]
            and _takes(input, class_weight) and _takes(weight, class_weight)
            and weight.dtype is input.dtype
            and (bias is None or (_takes(bias, class_weight) and bias.dtype is input.dtype))):
        x = input if input.dim() == 2 else input.reshape(-1, input.shape[-1])
        y = target.reshape(-1)
        try:
            value = _ops.linear_cross_entropy(x, weight, y, bias, class_weight, ignore_index,
                                              float(label_smoothing), reduction)
        except ValueError:          # shapes PyTorch rejects too: PyTorch's error
            pass
        else:
            return value.reshape(target.shape) if reduction == "none" else value
    return F.cross_entropy(F.linear(input, weight, bias), target, weight=class_weight,
                           ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing)
