"""What a case is timed against: the candidates, each a no-argument call on shared arrays.

================  ======================================================================
fastloss.value    ``loss(x, t, n_threads=N)``: value only
fastloss.vg_out   ``loss.value_and_grad(x, t, n_threads=N, out=g)``: preallocated gradient
fastloss.vg       ``loss.value_and_grad(x, t, n_threads=N)``: allocates the gradient
torch.value       PyTorch's mean loss under ``torch.no_grad()`` (``torch.set_num_threads(N)``)
torch.vg          autograd forward + backward on a leaf tensor (``.grad = None`` first)
sklearn.value     ``sklearn._loss``: ``loss(y_true, raw_prediction, n_threads=N)``
sklearn.vg        ``loss_gradient(y_true, raw_prediction, n_threads=N)``
numpy.vg          the NumPy reference (fastloss.bench.reference) and the mean's gradient
floor.numpy       the same bytes through ``np.add(x, t, out=g)`` (two reads, one write) or
                  ``np.multiply(x, 1, out=g)`` (one read, one write): single-threaded
floor.parallel    the same bytes through fastloss's own trivial parallel kernel,
                  ``bandwidth_floor(x, t or None, g, N)``, with the losses' blocking
================  ======================================================================

Every peer is derived from the loss's row of the table and its references, so a new row
is compared with as soon as it has a reference:

* PyTorch: a fused ``torch.nn.functional`` call where :data:`TORCH_FUSED` names one for the
  loss (at its default parameters), else the reference's PyTorch form
  (``reference.torch_by_name``: per-sample losses, then their mean); none if neither.
* scikit-learn: the ``sklearn._loss`` class :data:`SKLEARN` names, if any.
* NumPy: ``reference.by_name``, which computes loss, gradient and Hessian in one call
  (written for accuracy, not speed), so it has no value-only candidate.

PyTorch, scikit-learn and threadpoolctl are optional: :meth:`Peers.load` imports them and
leaves out what is missing or not asked for.
"""
from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .. import _dispatch
from . import reference

Thunk = Callable[[], object]

#: The peers a run can compare with (``--peers``).
PEERS: tuple[str, ...] = ("torch", "sklearn", "numpy")


def _optional(name: str):
    """Import an optional dependency, or return None when it is missing or broken."""
    try:
        return importlib.import_module(name)
    except Exception:           # ImportError, or a broken install failing in its own way
        return None


@dataclass
class Peers:
    """The optional libraries found at run time (None: absent or not requested)."""

    torch: Any = None
    sklearn_loss: Any = None        #: the module sklearn._loss.loss
    threadpoolctl: Any = None
    use_numpy: bool = True

    @classmethod
    def load(cls, wanted: Sequence[str]) -> Peers:
        return cls(torch=_optional("torch") if "torch" in wanted else None,
                   sklearn_loss=_optional("sklearn._loss.loss") if "sklearn" in wanted else None,
                   threadpoolctl=_optional("threadpoolctl"),
                   use_numpy="numpy" in wanted)

    def versions(self) -> dict[str, str | None]:
        sklearn = sys.modules.get("sklearn") if self.sklearn_loss is not None else None
        return {"torch": getattr(self.torch, "__version__", None),
                "sklearn": getattr(sklearn, "__version__", None),
                "threadpoolctl": getattr(self.threadpoolctl, "__version__", None)}

    @contextlib.contextmanager
    def threads(self, n: int) -> Iterator[None]:
        """PyTorch's intra-op pool at ``n`` threads while measuring (restored after)."""
        if self.torch is None:
            yield
            return
        saved = self.torch.get_num_threads()
        self.torch.set_num_threads(n)
        try:
            yield
        finally:
            self.torch.set_num_threads(saved)


# ------------------------------------------------------------------ the arrays ----

@dataclass
class CaseData:
    """The arrays of one case, made once and shared by every candidate."""

    x: np.ndarray                   #: input (logits, predictions or probabilities)
    target: np.ndarray              #: target as fastloss and PyTorch take it
    out: np.ndarray                 #: preallocated gradient, also the floors' output

    @property
    def labels(self) -> bool:
        """True when the target holds integer class labels (one per row)."""
        return self.target.dtype.kind in "iu"

    @property
    def floor_b(self) -> np.ndarray | None:
        """The second array the floors read: the target, or None for labels (N values,
        not N*C: the floors then read x only)."""
        return None if self.labels else self.target

    @property
    def floor_bytes(self) -> int:
        """Bytes the floors move: x and floor_b read, out written."""
        b = 0 if self.floor_b is None else self.floor_b.nbytes
        return self.x.nbytes + b + self.out.nbytes


def at_defaults(loss) -> bool:
    """True when every parameter of ``loss`` has its row's default value."""
    values = loss.get_params()
    for p in type(loss).params:
        v = values[p.name]
        if p.default is None or isinstance(v, np.ndarray):
            if v is not p.default:
                return False
        elif v != p.default:
            return False
    return True


# ------------------------------------------------------------------ fastloss and floors ----

def fastloss_candidates(loss, d: CaseData, threads: int) -> dict[str, Thunk]:
    x, t, out = d.x, d.target, d.out
    return {
        "fastloss.value": lambda: loss(x, t, n_threads=threads),
        "fastloss.vg_out": lambda: loss.value_and_grad(x, t, n_threads=threads, out=out),
        "fastloss.vg": lambda: loss.value_and_grad(x, t, n_threads=threads),
    }


def floor_candidates(d: CaseData, threads: int) -> dict[str, Thunk]:
    """np.add / np.multiply(out=) single-threaded, and the parallel kernel at `threads`."""
    bandwidth_floor = _dispatch.probes().bandwidth_floor
    x, b, out = d.x, d.floor_b, d.out
    numpy_floor = (partial(np.multiply, x, 1, out=out) if b is None else
                   partial(np.add, x, b, out=out))
    return {"floor.numpy": numpy_floor,
            "floor.parallel": partial(bandwidth_floor, x, b, out, threads)}


# ------------------------------------------------------------------ PyTorch ----

def _kl_batchmean(F, x, t):
    return F.kl_div(F.log_softmax(x, dim=-1), t, reduction="batchmean")


def _kl_div_mean(F, x, t):
    return F.kl_div(x, t, reduction="sum") / x.numel()     # "mean" without its warning


#: Fused ``torch.nn.functional`` forms of the mean loss, by row name, used when the loss
#: has its default parameters: fn(F) -> fn(x, t) -> 0-d tensor.  A row not named here is
#: timed through the reference's per-sample PyTorch form and its mean.
TORCH_FUSED: dict[str, tuple[str, Callable[[Any], Callable]]] = {
    "mse": ("F.mse_loss", lambda F: F.mse_loss),
    "mae": ("F.l1_loss", lambda F: F.l1_loss),
    "huber": ("F.huber_loss", lambda F: F.huber_loss),
    "poisson_nll": ("F.poisson_nll_loss", lambda F: F.poisson_nll_loss),
    "binary_cross_entropy": ("F.binary_cross_entropy_with_logits",
                             lambda F: F.binary_cross_entropy_with_logits),
    "cross_entropy": ("F.cross_entropy", lambda F: F.cross_entropy),
    "kl_div": ('F.kl_div(x, t, reduction="sum") / x.numel()', lambda F: partial(_kl_div_mean, F)),
    "kl_divergence": ('F.kl_div(F.log_softmax(x, -1), t, reduction="batchmean")',
                      lambda F: partial(_kl_batchmean, F)),
}


def torch_form(torch, loss) -> tuple[str, Callable] | None:
    """(what it is, fn(x, t) -> the mean loss as a 0-d tensor), or None without a form."""
    fused = TORCH_FUSED.get(loss.name)
    if fused is not None and at_defaults(loss):
        return fused[0], fused[1](torch.nn.functional)
    per_sample = reference.torch_by_name(loss.name)
    if per_sample is None:
        return None
    params = loss.get_params()
    return (f"reference.torch_{loss.name}(x, t).mean()",
            lambda x, t: per_sample(x, t, **params).mean())


def torch_candidates(torch, form: Callable, d: CaseData) -> dict[str, Thunk]:
    x, t = torch.from_numpy(d.x), torch.from_numpy(d.target)       # zero-copy views
    leaf = torch.from_numpy(d.x).requires_grad_()

    def value():
        with torch.no_grad():
            return form(x, t).item()

    def value_and_grad():
        leaf.grad = None
        loss = form(leaf, t)
        loss.backward()
        return loss.item(), leaf.grad

    return {"torch.value": value, "torch.vg": value_and_grad}


# ------------------------------------------------------------------ scikit-learn ----

#: ``sklearn._loss.loss`` counterparts by row name (at the default parameters; from logits,
#: which sklearn calls raw predictions).  sklearn's "half" losses differ from fastloss's by
#: a constant factor, which does not change the work.
SKLEARN: dict[str, str] = {
    "mse": "HalfSquaredError",
    "mae": "AbsoluteError",
    "poisson_nll": "HalfPoissonLoss",
    "binary_cross_entropy": "HalfBinomialLoss",
    "cross_entropy": "HalfMultinomialLoss",         # class labels only
}


def sklearn_candidates(sk_loss, loss, d: CaseData, threads: int
                       ) -> tuple[str, dict[str, Thunk]] | None:
    """(class name, candidates), or None where sklearn has no counterpart."""
    name = SKLEARN.get(loss.name)
    if name is None or not at_defaults(loss) or not hasattr(sk_loss, name):
        return None
    cls = getattr(sk_loss, name)
    if loss.family == "softmax":    # raw_prediction (n, C); y_true: class indices as floats
        if not d.labels or d.x.ndim != 2:
            return None
        sk, y = cls(n_classes=d.x.shape[-1]), d.target.astype(d.x.dtype)
    else:
        sk, y = cls(), d.target
    raw = d.x
    return name, {"sklearn.value": lambda: sk.loss(y, raw, n_threads=threads),
                  "sklearn.vg": lambda: sk.loss_gradient(y, raw, n_threads=threads)}


# ------------------------------------------------------------------ NumPy ----

def numpy_candidates(loss, d: CaseData) -> dict[str, Thunk]:
    """The reference's loss and gradient reduced to the mean and its gradient."""
    fn, params, x, t = reference.by_name(loss.name), loss.get_params(), d.x, d.target

    def value_and_grad():
        per, grad, _, denom = fn(x, t, **params)
        total = per.size if denom is None else float(np.sum(denom))
        value = float(np.sum(per)) / total
        if np.may_share_memory(grad, x) or np.may_share_memory(grad, t):
            return value, grad * (1.0 / total)
        grad *= 1.0 / total
        return value, grad

    return {"numpy.vg": value_and_grad}


def has_numpy_reference(loss) -> bool:
    try:
        reference.by_name(loss.name)
    except KeyError:
        return False
    return True


# ------------------------------------------------------------------ all of them ----

def loss_candidates(loss, d: CaseData, threads: int, peers: Peers
                    ) -> tuple[dict[str, Thunk], dict[str, str]]:
    """Every candidate of a loss case, and what each peer runs (``forms``)."""
    cands = {**fastloss_candidates(loss, d, threads), **floor_candidates(d, threads)}
    forms: dict[str, str] = {}
    if peers.torch is not None:
        form = torch_form(peers.torch, loss)
        if form is not None:
            forms["torch"] = form[0]
            cands.update(torch_candidates(peers.torch, form[1], d))
    if peers.sklearn_loss is not None:
        found = sklearn_candidates(peers.sklearn_loss, loss, d, threads)
        if found is not None:
            forms["sklearn"] = found[0]
            cands.update(found[1])
    if peers.use_numpy and has_numpy_reference(loss):
        forms["numpy"] = f"reference.{loss.name}"
        cands.update(numpy_candidates(loss, d))
    return cands, forms
