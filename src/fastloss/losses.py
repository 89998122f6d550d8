"""The table of losses: one row per loss, and nothing about a loss anywhere else.

A row is a class: its docstring (formula, gradient, Hessian, an example), its kernel, its
parameters with their checks, and what its target holds.  The call protocol, validation
and kernel calls are shared (fastloss/_loss.py); the row's functional form
(``fastloss.mse(...)``), its place in ``fastloss.__all__``, the tests run over every loss,
the benchmark's cases and the integrations (fastloss.torch, fastloss.xgboost, ...) are all
derived from this table (`LOSSES`).  CONTRIBUTING.md says how to add a row.
"""
from __future__ import annotations

from ._loss import (LOSSES, Loss, Param, Pointwise, Softmax, class_labels, flag, functional,
                    int64_index, integer, positive_finite, unit_interval, weight_vector)
from ._validation import as_array, as_float, check_same_shape, compute_dtype

# ------------------------------------------------------------------ pointwise rows ----

#: Pseudo-Huber's and Huber's one parameter
DELTA = Param("delta", 1.0, positive_finite,
              "Where the loss turns from quadratic to linear: finite and > 0.",
              examples=(0.3, 4.0))


class MSE(Pointwise):
    """Mean squared error: ``l = (x - t)^2``, ``grad = 2 (x - t)``, ``hess = 2``.

    {parameters}

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.MSE()(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    2.5
    >>> value, grad = fastloss.MSE().value_and_grad(np.array([1.0, 2.0]), np.zeros(2))
    >>> grad
    array([1., 2.])
    """
    name = "mse"
    kernel = "mse"


class MAE(Pointwise):
    """Mean absolute error: ``l = |x - t|``, ``grad = sign(x - t)`` (0 at ``x == t``).

    The Hessian is taken as 1, the usual surrogate in gradient boosting (the true second
    derivative is 0 almost everywhere).

    {parameters}

    Examples
    --------
    >>> import fastloss
    >>> fastloss.MAE()([1.0, -3.0], [0.0, 0.0])
    2.0
    """
    name = "mae"
    kernel = "mae"
    hessian = "surrogate"


class PseudoHuber(Pointwise):
    """Pseudo-Huber loss: ``l = delta^2 (sqrt(1 + (r / delta)^2) - 1)``, ``r = x - t``.

    ``grad = r / sqrt(1 + (r / delta)^2)``, ``hess = (1 + (r / delta)^2)^(-3/2)``.  Quadratic
    for ``|r| << delta``, linear with slope ``delta`` for ``|r| >> delta``; computed without
    cancellation or overflow for every finite ``r``.

    {parameters}

    Examples
    --------
    >>> import fastloss
    >>> round(fastloss.PseudoHuber(delta=2.0)([3.0], [0.0]), 6)
    3.211103
    """
    name = "pseudo_huber"
    kernel = "pseudo_huber"
    params = (DELTA,)
    kernel_param = "delta"


class Huber(Pointwise):
    """Huber loss (PyTorch's ``HuberLoss``): quadratic near the target, linear beyond ``delta``.

    With ``r = x - t``: ``l = r^2 / 2`` for ``|r| <= delta``, else ``delta (|r| - delta / 2)``;
    ``grad = clip(r, -delta, delta)``; ``hess = 1`` inside and ``0`` outside.  Values and
    gradients equal PyTorch's bit for bit.  ``Huber(delta) / delta`` is PyTorch's
    ``SmoothL1Loss(beta=delta)``.

    {parameters}

    Examples
    --------
    >>> import fastloss
    >>> fastloss.Huber(delta=1.0)([0.5, 3.0], [0.0, 0.0], reduction="none")
    array([0.125, 2.5  ])
    """
    name = "huber"
    kernel = "huber"
    params = (DELTA,)
    kernel_param = "delta"


def _log_input(value) -> bool:
    if value is not True and value != 1:
        raise ValueError(f"must be True (the input is the log of the rate, as in PyTorch's "
                         f"default); got {value!r}")
    return True


class PoissonNLL(Pointwise):
    """Poisson negative log-likelihood (PyTorch's ``PoissonNLLLoss(log_input=True,
    full=False)``), for counts: the input is the log of the rate.

    ``l = exp(x) - t x``, ``grad = exp(x) - t``, ``hess = exp(x)``.  Targets are counts and
    must be ``>= 0`` (``ValueError`` otherwise).  As in PyTorch, the constant
    ``log(t!)`` is left out, and ``exp(x)`` overflows to ``inf`` for ``x`` beyond 88.7
    (float32) or 709.8 (float64).

    {parameters}

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> round(fastloss.PoissonNLL()(np.log([2.0, 0.5]), [3.0, 0.0]), 6)
    0.210279
    """
    name = "poisson_nll"
    kernel = "poisson_nll"
    target = "count"
    params = (Param("log_input", True, _log_input,
                    "The input is the log of the Poisson rate; only True is supported."),)


class BinaryCrossEntropy(Pointwise):
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

    {parameters}

    Examples
    --------
    Multi-label: three independent labels per sample.

    >>> import numpy as np, fastloss
    >>> logits = np.array([[2.0, -1.0, 0.5], [-0.5, 1.5, -2.0]])
    >>> labels = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    >>> round(fastloss.BinaryCrossEntropy()(logits, labels), 6)
    0.286114
    """
    name = "binary_cross_entropy"
    target = "probability"
    params = (Param("from_logits", True, flag,
                    "True: the input holds logits; False: probabilities.", examples=(False,)),
              Param("pos_weight", None, weight_vector(
                  1, "must be a scalar or 1-D (broadcast over the last axis)"),
                    "Weight of the positive term, broadcast over the last axis: a scalar "
                    "or shape (C,) with C = input.shape[-1]; finite and >= 0.",
                    examples=(2.0,)))
    broadcast_param = "pos_weight"

    def _kernel_name(self):
        return "bce_logits" if self.from_logits else "bce_probs"



class KLDiv(Pointwise):
    """Elementwise Kullback-Leibler term, PyTorch's ``KLDivLoss`` / ``kl_div``: the input
    holds log-probabilities ``x = log q`` (no softmax is applied), the target probabilities.

    ``l = t (log t - x)``, ``grad = -t``, ``hess = 0`` (the loss is linear in ``x``), and
    ``l = 0`` where ``t = 0``.  With ``log_target=True`` the target holds ``log t``:
    ``l = exp(t) (t - x)``, ``grad = -exp(t)``.  Summed over the classes of a row this is
    ``KL(t || q)``; PyTorch's ``reduction="batchmean"`` is ``"sum"`` divided by
    ``input.shape[0]``, and its ``"mean"`` (this loss's ``"mean"``) divides by the number of
    elements.  :class:`KLDivergence` is the other form: a softmax over logits (or
    probabilities) per row, in one pass.

    Where ``t = 0`` (``log_target``: ``t = -inf``) the term is 0 even for ``x = -inf``;
    PyTorch gives NaN there (``0 * -inf``).  NaN in ``x`` or ``t``, and ``t < 0``, give NaN
    as in PyTorch.  Targets are not range-checked.  ``log t - x`` cancels where ``q`` is
    close to ``t``, so float32 input is evaluated in float64 and each term rounded once
    (as for :class:`PoissonNLL`): every term keeps full float32 precision.

    {parameters}

    Examples
    --------
    A row's KL divergence is the sum of its terms:

    >>> import numpy as np, fastloss
    >>> t = np.array([[0.5, 0.5, 0.0]])
    >>> round(fastloss.KLDiv()(np.log([[0.25, 0.25, 0.5]]), t, reduction="sum"), 6)
    0.693147
    """
    name = "kl_div"
    target = "probability"
    params = (Param("log_target", False, flag,
                    "True: the target holds log-probabilities.", examples=(True,)),)

    def _kernel_name(self):
        return "kl_div_log" if self.log_target else "kl_div"


# ------------------------------------------------------------------ softmax rows ----

class CrossEntropy(Softmax):
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

    {parameters}

    Examples
    --------
    Three classes: cat, car, rhino.

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
    name = "cross_entropy"
    target = "labels or probabilities"
    takes_labels = True
    params = (Param("from_logits", True, flag,
                    "True: the input holds logits; False: probabilities.", examples=(False,)),
              Param("class_weight", None, weight_vector(1, "must have shape (C,)"),
                    "Weight of each class, shape (C,); finite and >= 0."),
              Param("ignore_index", -100, int64_index,
                    "A label value whose rows contribute nothing (an integer).",
                    examples=(0,)),
              Param("label_smoothing", 0.0, unit_interval,
                    "Weight e in [0, 1] of the uniform distribution mixed into the target.",
                    examples=(0.1,)),
              Param("axis", -1, integer,
                    "The input's axis that holds the classes (PyTorch's layout (N, C, ...) "
                    "is axis=1); labels have the input's shape without it.",
                    examples=(0,)))

    def _class_weight(self, dtype, n_cls):
        cw = self._array("class_weight", dtype)
        if cw is None:
            return None, float(n_cls)
        if cw.shape != (n_cls,):
            raise ValueError(f"class_weight has shape {cw.shape} but the input has {n_cls} "
                             f"classes (expected shape ({n_cls},))")
        return cw, float(self.class_weight.sum())

    def _targets(self, target, x, axis, dtype):
        tgt = as_array(target, "target")
        sample_shape = x.shape[:axis] + x.shape[axis + 1:]
        if tgt.shape == sample_shape:
            if tgt.dtype.kind in "iu":
                return "ce_index", class_labels(tgt, x.shape[axis]), None
            if tgt.dtype.kind in "fbc":
                raise ValueError(f"class indices must be integers; got a target of dtype "
                                 f"{tgt.dtype} and shape {tgt.shape} (for probabilities, "
                                 f"give the input's shape {x.shape})")
            compute_dtype(tgt.dtype, "target")         # raises TypeError
        if tgt.shape == x.shape:
            return "ce_probs", None, as_float(tgt, "target", dtype)
        raise ValueError(f"target shape {tgt.shape} matches neither class indices "
                         f"{sample_shape} nor probabilities {x.shape} for input shape "
                         f"{x.shape}")

    def _smoothing(self):
        return self.label_smoothing

    def _ignore(self):
        return self.ignore_index


class KLDivergence(Softmax):
    """Kullback-Leibler divergence ``KL(t || q)`` per row over the last axis.

    ``l = sum_c t_c (log t_c - log q_c)`` with ``q = softmax(x)`` (``from_logits=True``, the
    default) or ``q = x`` (probabilities), and ``0 log 0 = 0``.  ``log_target=True`` means the
    target holds ``log t``.  Gradient with respect to the logits ``sum(t) q - t``, Hessian
    diagonal ``sum(t) q (1 - q)``.  ``"mean"`` averages over rows (PyTorch's
    ``reduction="batchmean"``, the mathematically correct KL mean; PyTorch's ``"mean"``
    would divide by the number of elements).  A target of 0 (``-inf`` with ``log_target``)
    contributes exactly 0, where PyTorch's ``log_target`` form gives NaN.

    {parameters}

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> t = np.array([[0.5, 0.5, 0.0]])
    >>> round(fastloss.KLDivergence()(np.log([[0.25, 0.25, 0.5]]), t), 6)
    0.693147
    """
    name = "kl_divergence"
    target = "distribution"
    params = (Param("from_logits", True, flag,
                    "True: the input holds logits; False: probabilities.", examples=(False,)),
              Param("log_target", False, flag,
                    "True: the target holds log-probabilities.", examples=(True,)),
              Param("axis", -1, integer,
                    "The input's axis that holds the classes (distributions); PyTorch's "
                    "layout (N, C, ...) is axis=1.",
                    examples=(0,)))

    def _targets(self, target, x, axis, dtype):
        t = as_float(target, "target", dtype)
        check_same_shape(x, t)
        return ("kl_log" if self.log_target else "kl"), None, t


# ------------------------------------------------------------------ derived ----
# The functional forms, one per row, in the style of torch.nn.functional.
for _cls in LOSSES:
    globals()[_cls.name] = functional(_cls)
del _cls

__all__ = ["Loss", "LOSSES"] + [c.__name__ for c in LOSSES] + [c.name for c in LOSSES]
