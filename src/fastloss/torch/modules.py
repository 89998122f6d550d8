"""The loss modules: PyTorch's classes with fastloss's forward.

Each class derives from its torch.nn counterpart, so its constructor, attributes,
buffers (``weight``, ``pos_weight``), ``state_dict``, ``repr`` and ``isinstance`` checks
are PyTorch's own; only ``forward`` differs: it calls the functional form of
fastloss.torch.functional with the module's options.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from . import functional as _F

__all__ = ["MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "PseudoHuberLoss",
           "CrossEntropyLoss", "BCEWithLogitsLoss", "BCELoss", "KLDivLoss",
           "PoissonNLLLoss", "LinearCrossEntropyLoss"]


def _doc(name: str, fn: str, extra: str = "") -> str:
    return (f"``torch.nn.{name}`` with fastloss's forward and backward "
            f"(:func:`fastloss.torch.{fn}`); same constructor, options and semantics."
            + (f"\n\n{extra}" if extra else ""))


class MSELoss(torch.nn.MSELoss):
    __doc__ = _doc("MSELoss", "mse_loss")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(torch.nn.L1Loss):
    __doc__ = _doc("L1Loss", "l1_loss")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.l1_loss(input, target, reduction=self.reduction)


class HuberLoss(torch.nn.HuberLoss):
    __doc__ = _doc("HuberLoss", "huber_loss")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(torch.nn.SmoothL1Loss):
    __doc__ = _doc("SmoothL1Loss", "smooth_l1_loss",
                   "``Huber(delta=beta) / beta``; ``beta=0`` is the L1 loss.")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class PseudoHuberLoss(torch.nn.modules.loss._Loss):
    """Pseudo-Huber loss, which PyTorch lacks: ``delta^2 (sqrt(1 + (r / delta)^2) - 1)``
    with ``r = input - target``; quadratic for ``|r| << delta``, linear with slope
    ``delta`` beyond, smooth everywhere (:func:`fastloss.torch.pseudo_huber_loss`,
    :class:`fastloss.PseudoHuber`).

    Parameters: ``delta`` (finite, > 0; default 1.0) and ``reduction`` ("mean", "sum" or
    "none").
    """

    __constants__ = ["reduction", "delta"]

    def __init__(self, delta: float = 1.0, reduction: str = "mean") -> None:
        if not (isinstance(delta, (int, float)) and not isinstance(delta, bool)
                and math.isfinite(delta) and delta > 0):
            raise ValueError(f"delta must be a finite number > 0; got {delta!r}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{reduction} is not a valid value for reduction")
        super().__init__(reduction=reduction)
        self.delta = float(delta)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.pseudo_huber_loss(input, target, delta=self.delta, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"delta={self.delta}, reduction={self.reduction!r}"


class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    __doc__ = _doc("CrossEntropyLoss", "cross_entropy",
                   "Input ``(N, C)``, ``(C,)`` or ``(N, C, d1, ..., dk)``, read in place; "
                   "\"mean\" over no valid target gives 0 (PyTorch: NaN).")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.cross_entropy(input, target, weight=self.weight,
                                ignore_index=self.ignore_index, reduction=self.reduction,
                                label_smoothing=self.label_smoothing)


class BCEWithLogitsLoss(torch.nn.BCEWithLogitsLoss):
    __doc__ = _doc("BCEWithLogitsLoss", "binary_cross_entropy_with_logits")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                   reduction=self.reduction,
                                                   pos_weight=self.pos_weight)


class BCELoss(torch.nn.BCELoss):
    __doc__ = _doc("BCELoss", "binary_cross_entropy")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.binary_cross_entropy(input, target, weight=self.weight,
                                       reduction=self.reduction)


class KLDivLoss(torch.nn.KLDivLoss):
    __doc__ = _doc("KLDivLoss", "kl_div",
                   "Elementwise: the input holds log-probabilities (no softmax), as in "
                   "PyTorch; ``reduction=\"batchmean\"`` is the KL divergence per sample.")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return _F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class PoissonNLLLoss(torch.nn.PoissonNLLLoss):
    __doc__ = _doc("PoissonNLLLoss", "poisson_nll_loss",
                   "``log_input=False`` and ``full=True`` are computed by PyTorch.")

    def forward(self, log_input: Tensor, target: Tensor) -> Tensor:
        return _F.poisson_nll_loss(log_input, target, log_input=self.log_input,
                                   full=self.full, eps=self.eps, reduction=self.reduction)


class LinearCrossEntropyLoss(torch.nn.Module):
    """``torch.nn.CrossEntropyLoss`` of a linear layer's output, without the logits:
    ``loss(input, weight, target, bias=None)`` is
    :func:`fastloss.torch.linear_cross_entropy` (:class:`fastloss.LinearCrossEntropy`),
    i.e. ``cross_entropy(linear(input, weight, bias), target)`` with only a block of
    logits at a time.  Typically ``loss(hidden, model.lm_head.weight, target)``.

    Parameters: ``weight`` (class weights, a buffer as in ``CrossEntropyLoss``),
    ``ignore_index`` (default -100), ``reduction`` ("mean", "sum" or "none") and
    ``label_smoothing`` (in [0, 1]).
    """

    __constants__ = ["ignore_index", "reduction", "label_smoothing"]

    def __init__(self, weight: Optional[Tensor] = None, ignore_index: int = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{reduction} is not a valid value for reduction")
        if not (isinstance(label_smoothing, (int, float)) and 0.0 <= label_smoothing <= 1.0):
            raise ValueError(f"label_smoothing must be in [0, 1]; got {label_smoothing!r}")
        super().__init__()
        self.register_buffer("weight", weight)
        self.weight: Optional[Tensor]
        self.ignore_index = int(ignore_index)
        self.reduction = reduction
        self.label_smoothing = float(label_smoothing)

    def forward(self, input: Tensor, weight: Tensor, target: Tensor,
                bias: Optional[Tensor] = None) -> Tensor:
        return _F.linear_cross_entropy(input, weight, target, bias, class_weight=self.weight,
                                       ignore_index=self.ignore_index,
                                       reduction=self.reduction,
                                       label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return (f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, "
                f"label_smoothing={self.label_smoothing}")
