"""The machinery under fastloss.torch: tensors to arrays and back, the custom operators,
the eager autograd.Function, and the choice among them.

Two kernel families, two operators each (namespace ``fastloss``):

``pointwise_vg(x, t, w, pw, loss, param, reduction, scale) -> (value, grad)``
``pointwise(x, t, w, pw, loss, param, reduction, scale) -> value``
    A pointwise row of fastloss's table (``loss`` names it, see :data:`POINTWISE`) with
    fastloss's reductions: ``"mean"`` is ``sum(w l) / sum(w)``.  ``w`` are sample weights
    (``x``'s shape, or one per leading-axis sample), ``pw`` BCE's ``pos_weight`` over the
    last axis, ``param`` the row's number (a delta) and ``scale`` a factor applied to the
    weights (so to value and gradient): PyTorch's reductions that fastloss's lack (a mean
    over the elements with weights, ``batchmean``, SmoothL1's ``1 / beta``) are a
    ``"sum"`` with such a factor, at no cost (the kernels multiply by weights anyway).
``cross_entropy_vg(x, y, weight, ignore_index, label_smoothing, reduction) -> (value, grad)``
``cross_entropy(x, y, weight, ignore_index, label_smoothing, reduction) -> value``
    fastloss.CrossEntropy with the classes on axis 1 (axis 0 for an unbatched ``(C,)``
    input): PyTorch's layout, read in place.

The ``_vg`` operators compute value and gradient in one pass and return the gradient as
a second, non-differentiable output, saved for backward; backward multiplies it by the
incoming gradient and nothing else.  The value-only operators run the kernels' value-only
mode, which writes no gradient.

Eager calls do not go through the operators' dispatcher: a custom operator costs about
50 us more per forward + backward than an autograd.Function (measured, see
fastloss/torch/__init__.py), which is most of a small batch's time.  So eager mode uses
:class:`_Fused` (an autograd.Function around the same implementation) and calls the
value-only implementation directly; the operators serve torch.compile (dynamo traces
them as opaque nodes with fake implementations), torch.export, fake tensors and
torch.library.opcheck.  Both paths run the same code and give the same bits.

If fastloss rejects the data (a negative weight or count, a label out of range: things
only the values show), the implementation computes PyTorch's own result instead, with
PyTorch's autograd inside, or raises PyTorch's own error: valid PyTorch input never fails
here.
"""
from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import linear as _linear
from .. import losses as _fl

FAST = (torch.float32, torch.float64)
HALF = (torch.float16, torch.bfloat16)
PLAIN = (torch.Tensor, torch.nn.Parameter)

DOUBLE_BACKWARD = ("fastloss.torch: double backward (create_graph=True, or a gradient of a "
                   "gradient) is not supported: the forward pass saves the gradient, which "
                   "is not differentiable.  Use the torch.nn / torch.nn.functional loss "
                   "for higher-order derivatives.")


# ------------------------------------------------------------------ tensors and arrays ----

def array(t: Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor's memory (any strides; no copy)."""
    return t.detach().numpy()


def data(t: Tensor):
    """What fastloss's API reads in place: a NumPy view of the tensor, or for float16 and
    bfloat16 the tensor itself (fastloss reads its 16 bits through DLPack: NumPy has no
    bfloat16)."""
    return t.detach() if t.dtype in HALF else array(t)


def floats(t: Tensor) -> np.ndarray:
    """A parameter tensor (class weights, pos_weight, sample weights) as NumPy: its memory,
    or a float32 copy of float16 / bfloat16 values."""
    return array(t.float() if t.dtype in HALF else t)


def value_tensor(v, dtype) -> Tensor:
    """fastloss's value as a tensor: a float becomes a 0-dim tensor of `dtype`, an array
    (reduction "none", fresh memory) is wrapped without a copy.  A torch `dtype`
    (float16 / bfloat16 input, computed in float32): rounded to it."""
    if isinstance(dtype, torch.dtype):
        return torch.tensor(v, dtype=dtype) if type(v) is float else torch.from_numpy(v).to(dtype)
    if type(v) is float:
        return torch.from_numpy(np.array(v, dtype))
    return torch.from_numpy(v)


# ------------------------------------------------------------------ gradient buffers ----
# A gradient the size of the input is written on every call.  Fresh memory of that size
# costs its page faults (an mmap per call, for buffers beyond glibc's 32 MiB threshold),
# as much as the kernel's work itself at 10^7 elements; PyTorch's CPU allocator caches
# nothing.  So large gradient buffers are NumPy arrays (which ask for transparent huge
# pages) kept here and handed out again once no tensor uses them any more: the tensor
# made from one holds a reference to it, so an array only this pool references is free.
# The pool holds at most POOL_SIZE buffers (the most recently used shapes);
# empty_cache() releases them.

POOL_MIN_BYTES = 1 << 20
POOL_SIZE = 4
_pool: dict = {}
_pool_lock = threading.Lock()


def _take(key):
    """Pop the pooled buffer of `key`: (buffer or None, its reference count here)."""
    buf = _pool.pop(key, None)
    return buf, (0 if buf is None else sys.getrefcount(buf))


def _free_refs():
    """The count _take sees for a buffer nothing else holds, measured (interpreters
    differ: 3.14 counts fewer references on the stack), or None when a tensor's reference
    would not show (then nothing is pooled)."""
    key = ("calibration",)
    _pool[key] = np.empty(1)
    free = _take(key)[1]
    _pool[key] = np.empty(1)
    held = torch.from_numpy(_pool[key])
    used = _take(key)[1]
    del held
    return free if used > free else None


_FREE_REFS = _free_refs() if getattr(sys, "_is_gil_enabled", lambda: True)() else None


def grad_buffer(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """An uninitialized C-contiguous array for a gradient: a free pooled one of this
    shape and dtype, or a new one (pooled if large)."""
    if _FREE_REFS is None or math.prod(shape) * dtype.itemsize < POOL_MIN_BYTES:
        return np.empty(shape, dtype)
    key = (shape, dtype)
    with _pool_lock:
        buf, refs = _take(key)              # taken and put back: most recent last
        if refs != _FREE_REFS:
            buf = np.empty(shape, dtype)
        _pool[key] = buf
        while len(_pool) > POOL_SIZE:
            del _pool[next(iter(_pool))]
        return buf


def gradient_buffer(x) -> Tensor | np.ndarray:
    """grad_buffer for the gradient of `x` (data(x)): for float16 / bfloat16 a tensor of
    that dtype over a pooled 2-byte array, which fastloss fills in that dtype (the kernel
    rounds its float32 results as it stores them)."""
    if isinstance(x, Tensor):
        return torch.from_numpy(grad_buffer(tuple(x.shape), _U16)).view(x.dtype)
    return grad_buffer(x.shape, x.dtype)


def grad_tensor(g) -> Tensor:
    return g if isinstance(g, Tensor) else torch.from_numpy(g)


_U16 = np.dtype(np.uint16)


def empty_cache() -> None:
    """Release the gradient buffers fastloss.torch keeps for reuse (those still in use
    are freed with their last tensor)."""
    with _pool_lock:
        _pool.clear()


class _Cache:
    """Loss instances by their parameters.  A parameter tensor (class weights, pos_weight)
    is keyed by identity and version, and held, so that an id cannot be reused while its
    entry lives and an in-place change makes a new entry."""

    def __init__(self, size: int = 64):
        self.size = size
        self.entries: dict = {}

    def get(self, key, make: Callable, held=None):
        hit = self.entries.get(key)
        if hit is None:
            if len(self.entries) >= self.size:
                self.entries.clear()
            hit = self.entries[key] = (make(), held)
        return hit[0]


_losses = _Cache()


def _tensor_key(t: Optional[Tensor]):
    return None if t is None else (id(t), t._version)


# ------------------------------------------------------------------ pointwise family ----

#: The pointwise rows the operators run, by the name the operator takes:
#: name -> (make(param, pos_weight array or None) -> loss, PyTorch's elementwise form).
POINTWISE: dict[str, tuple[Callable, Callable]] = {
    "mse": (lambda p, pw: _fl.MSE(),
            lambda x, t, pw, p: F.mse_loss(x, t, reduction="none")),
    "mae": (lambda p, pw: _fl.MAE(),
            lambda x, t, pw, p: F.l1_loss(x, t, reduction="none")),
    "huber": (lambda p, pw: _fl.Huber(p),
              lambda x, t, pw, p: F.huber_loss(x, t, reduction="none", delta=p)),
    "pseudo_huber": (lambda p, pw: _fl.PseudoHuber(p),
                     lambda x, t, pw, p: pseudo_huber_elementwise(x, t, p)),
    "poisson_nll": (lambda p, pw: _fl.PoissonNLL(),
                    lambda x, t, pw, p: F.poisson_nll_loss(x, t, reduction="none")),
    "bce_logits": (lambda p, pw: _fl.BinaryCrossEntropy(True, pw),
                   lambda x, t, pw, p: F.binary_cross_entropy_with_logits(
                       x, t, pos_weight=pw, reduction="none")),
    "bce_probs": (lambda p, pw: _fl.BinaryCrossEntropy(False, pw),
                  lambda x, t, pw, p: F.binary_cross_entropy(x, t, reduction="none")),
    "kl_div": (lambda p, pw: _fl.KLDiv(False),
               lambda x, t, pw, p: F.kl_div(x, t, reduction="none")),
    "kl_div_log": (lambda p, pw: _fl.KLDiv(True),
                   lambda x, t, pw, p: F.kl_div(x, t, reduction="none", log_target=True)),
}


def pseudo_huber_elementwise(x: Tensor, t: Tensor, delta: float) -> Tensor:
    """``delta^2 (sqrt(1 + (r / delta)^2) - 1)`` with ``r = x - t``, written as
    ``r^2 / (sqrt(1 + (r / delta)^2) + 1)`` (the same value without cancellation)."""
    r = x - t
    return r * r / (torch.sqrt(1 + (r / delta) ** 2) + 1)


def _pointwise_loss(loss: str, param: float, pw: Optional[Tensor]):
    key = (loss, param, _tensor_key(pw))
    return _losses.get(key, lambda: POINTWISE[loss][0](
        param, None if pw is None else floats(pw)), held=pw)


def _scaled_weights(w: Optional[np.ndarray], x: Tensor, scale: float):
    if scale == 1.0:
        return w
    if w is None:                       # one weight per leading-axis sample: N values
        return np.full(tuple(x.shape[:1]), scale,      # the compute dtype
                       np.float64 if x.dtype is torch.float64 else np.float32)
    return w * np.asarray(scale, w.dtype)


def pointwise_run(x: Tensor, t: Tensor, w: Optional[Tensor], pw: Optional[Tensor],
                  loss: str, param: float, reduction: str, scale: float, grad: bool):
    """(value, gradient) or the value of a pointwise row; see the module's docstring."""
    xa, ta = data(x), data(t)
    wa = _scaled_weights(None if w is None else floats(w), x, scale)
    n_threads = torch.get_num_threads()
    try:
        if loss == "bce_probs" and not (_in_unit_interval(x) and _in_unit_interval(t)):
            raise ValueError("PyTorch raises for probabilities outside [0, 1]")
        fl = _pointwise_loss(loss, param, pw)
        if not grad:
            return value_tensor(fl(xa, ta, sample_weight=wa, reduction=reduction,
                                   n_threads=n_threads), xa.dtype)
        v, g = fl.value_and_grad(xa, ta, sample_weight=wa, reduction=reduction,
                                 n_threads=n_threads, out=gradient_buffer(xa))
        return value_tensor(v, xa.dtype), grad_tensor(g)
    except ValueError:          # what only the values show: PyTorch computes, or raises
        fn = POINTWISE[loss][1]
        return _by_torch(lambda z: _reduce(fn(z, t, pw, param), wa, reduction, z), x, grad)


def _in_unit_interval(t: Tensor) -> bool:
    if t.numel() == 0:
        return True
    lo, hi = torch.aminmax(t.detach())
    return bool(lo >= 0) and bool(hi <= 1)


def _reduce(per: Tensor, w: Optional[np.ndarray], reduction: str, x: Tensor) -> Tensor:
    """fastloss's weights and reductions, in PyTorch (for the fallback)."""
    if w is not None:
        wt = torch.from_numpy(np.asarray(w)).to(per.dtype)
        wt = wt.reshape(wt.shape + (1,) * (per.dim() - wt.dim()))
        per = per * wt
        if reduction == "mean":
            return per.sum() / wt.expand(per.shape).sum()
    if reduction == "none":
        return per
    return per.sum() if reduction == "sum" else per.mean()


def _by_torch(fn: Callable[[Tensor], Tensor], x: Tensor, grad: bool):
    """PyTorch's value of fn at x, and its gradient (of the sum, for "none") if asked."""
    if not grad:
        with torch.no_grad():
            return fn(x).detach().clone()
    with torch.enable_grad():
        z = x.detach().requires_grad_()
        v = fn(z)
        (g,) = torch.autograd.grad(v.sum(), z)
    return v.detach().clone(), g.contiguous()


def _pointwise_fake(x, t, w, pw, loss, param, reduction, scale):
    return x.new_empty(x.shape) if reduction == "none" else x.new_empty(())


@torch.library.custom_op("fastloss::pointwise_vg", mutates_args=(), device_types="cpu")
def pointwise_vg_op(x: Tensor, t: Tensor, w: Optional[Tensor], pw: Optional[Tensor],
                    loss: str, param: float, reduction: str, scale: float
                    ) -> tuple[Tensor, Tensor]:
    return pointwise_run(x, t, w, pw, loss, param, reduction, scale, True)


@pointwise_vg_op.register_fake
def _(x, t, w, pw, loss, param, reduction, scale):
    return _pointwise_fake(x, t, w, pw, loss, param, reduction, scale), x.new_empty(x.shape)


@torch.library.custom_op("fastloss::pointwise", mutates_args=(), device_types="cpu")
def pointwise_op(x: Tensor, t: Tensor, w: Optional[Tensor], pw: Optional[Tensor],
                 loss: str, param: float, reduction: str, scale: float) -> Tensor:
    return pointwise_run(x, t, w, pw, loss, param, reduction, scale, False)


pointwise_op.register_fake(_pointwise_fake)


# ------------------------------------------------------------------ cross-entropy ----

def _ce_loss(weight: Optional[Tensor], ignore_index: int, label_smoothing: float, axis: int):
    key = (ignore_index, label_smoothing, axis, None if weight is None else _tensor_key(weight))
    return _losses.get(key, lambda: _fl.CrossEntropy(
        class_weight=None if weight is None else floats(weight), ignore_index=ignore_index,
        label_smoothing=label_smoothing, axis=axis), held=weight)


def cross_entropy_run(x: Tensor, y: Tensor, weight: Optional[Tensor], ignore_index: int,
                      label_smoothing: float, reduction: str, grad: bool):
    """(value, gradient) or the value of fastloss.CrossEntropy with the classes on axis 1
    (axis 0 for a 1-D input)."""
    xa, ya = data(x), data(y)
    n_threads = torch.get_num_threads()
    try:
        fl = _ce_loss(weight, ignore_index, label_smoothing, 1 if x.dim() > 1 else 0)
        if not grad:
            return value_tensor(fl(xa, ya, reduction=reduction, n_threads=n_threads),
                                xa.dtype)
        v, g = fl.value_and_grad(xa, ya, reduction=reduction, n_threads=n_threads,
                                 out=gradient_buffer(xa))
        return value_tensor(v, xa.dtype), grad_tensor(g)
    except ValueError:          # a label out of range, a negative weight: PyTorch's turn
        return _by_torch(lambda z: F.cross_entropy(
            z, y, weight=weight, ignore_index=ignore_index, reduction=reduction,
            label_smoothing=label_smoothing), x, grad)


def _ce_fake(x, y, weight, ignore_index, label_smoothing, reduction):
    if reduction != "none":
        return x.new_empty(())
    return x.new_empty(x.shape[:1] + x.shape[2:] if x.dim() > 1 else ())


@torch.library.custom_op("fastloss::cross_entropy_vg", mutates_args=(), device_types="cpu")
def cross_entropy_vg_op(x: Tensor, y: Tensor, weight: Optional[Tensor], ignore_index: int,
                        label_smoothing: float, reduction: str) -> tuple[Tensor, Tensor]:
    return cross_entropy_run(x, y, weight, ignore_index, label_smoothing, reduction, True)


@cross_entropy_vg_op.register_fake
def _(x, y, weight, ignore_index, label_smoothing, reduction):
    return (_ce_fake(x, y, weight, ignore_index, label_smoothing, reduction),
            x.new_empty(x.shape))


@torch.library.custom_op("fastloss::cross_entropy", mutates_args=(), device_types="cpu")
def cross_entropy_op(x: Tensor, y: Tensor, weight: Optional[Tensor], ignore_index: int,
                     label_smoothing: float, reduction: str) -> Tensor:
    return cross_entropy_run(x, y, weight, ignore_index, label_smoothing, reduction, False)


cross_entropy_op.register_fake(_ce_fake)


# ------------------------------------------------------------------ autograd ----

def _scaled(grad: Tensor, g: Tensor, class_axis: bool) -> Tensor:
    """The saved gradient times the incoming one (per sample for "none": along the
    classes' axis for cross-entropy)."""
    if class_axis and g.dim() > 0:
        g = g.unsqueeze(1)
    return grad * g


def _setup_context(ctx, inputs, output):
    _, grad = output
    ctx.set_materialize_grads(False)        # else backward gets zeros_like(grad) for it
    ctx.mark_non_differentiable(grad)
    ctx.save_for_backward(grad)


def _op_backward(class_axis: bool, n_inputs: int):
    def backward(ctx, g_value, _g_grad):
        if torch.is_grad_enabled():
            raise RuntimeError(DOUBLE_BACKWARD)
        (grad,) = ctx.saved_tensors
        return (_scaled(grad, g_value, class_axis),) + (None,) * (n_inputs - 1)
    return backward


pointwise_vg_op.register_autograd(_op_backward(False, 8), setup_context=_setup_context)
cross_entropy_vg_op.register_autograd(_op_backward(True, 6), setup_context=_setup_context)


class _Fused(torch.autograd.Function):
    """Eager mode's node: forward runs `run(x, *args, True)` (value and gradient in one
    pass) and saves the gradient; backward hands it on, multiplied by the incoming
    gradient unless that is exactly 1 (``loss.backward()``), in which case the saved
    buffer itself becomes the gradient (autograd then keeps it as ``x.grad``, no copy)."""

    @staticmethod
    def forward(ctx, x, run, args, class_axis):
        value, grad = run(x, *args, True)
        ctx.save_for_backward(grad)
        ctx.class_axis = class_axis
        return value

    @staticmethod
    def backward(ctx, g):
        if torch.is_grad_enabled():
            raise RuntimeError(DOUBLE_BACKWARD)
        (grad,) = ctx.saved_tensors
        if g.dim() == 0 and g.item() == 1.0:
            return grad, None, None, None
        return _scaled(grad, g, ctx.class_axis), None, None, None


# ------------------------------------------------------------------ the choice ----

def pointwise(x: Tensor, t: Tensor, w: Optional[Tensor], pw: Optional[Tensor], loss: str,
              param: float, reduction: str, scale: float) -> Tensor:
    """A pointwise row on tensors the kernels take (checked by the caller): eager mode
    through :class:`_Fused` or the value-only implementation, anything traced through
    the operators."""
    if type(x) in PLAIN and not torch.compiler.is_compiling():
        if x.requires_grad and torch.is_grad_enabled():
            return _Fused.apply(x, pointwise_run,
                                (t, w, pw, loss, param, reduction, scale), False)
        return pointwise_run(x, t, w, pw, loss, param, reduction, scale, False)
    if x.requires_grad and torch.is_grad_enabled():
        return pointwise_vg_op(x, t, w, pw, loss, param, reduction, scale)[0]
    return pointwise_op(x, t, w, pw, loss, param, reduction, scale)


def cross_entropy(x: Tensor, y: Tensor, weight: Optional[Tensor], ignore_index: int,
                  label_smoothing: float, reduction: str) -> Tensor:
    """fastloss.CrossEntropy on tensors the kernels take (checked by the caller)."""
    if type(x) in PLAIN and not torch.compiler.is_compiling():
        if x.requires_grad and torch.is_grad_enabled():
            return _Fused.apply(x, cross_entropy_run,
                                (y, weight, ignore_index, label_smoothing, reduction), True)
        return cross_entropy_run(x, y, weight, ignore_index, label_smoothing, reduction,
                                 False)
    if x.requires_grad and torch.is_grad_enabled():
        return cross_entropy_vg_op(x, y, weight, ignore_index, label_smoothing, reduction)[0]
    return cross_entropy_op(x, y, weight, ignore_index, label_smoothing, reduction)


# -------------------------------------------------------------- linear + cross-entropy ----
# fastloss.LinearCrossEntropy on the tensors' memory: (N, H) rows, a (V, H) weight, an
# optional (V,) bias, (N,) int64 labels.  "mean" and "sum" compute the value and the three
# gradients in the forward pass (the logits' gradient exists one block at a time only, so
# nothing is left to do in backward but a scaling); "none" computes the values in forward
# and, in backward, the gradients of sum(g * values) for the incoming g (one more product:
# the per-row weights g are known only then).

def _linear_loss(weight: Optional[Tensor], ignore_index: int, label_smoothing: float):
    key = ("linear", ignore_index, label_smoothing,
           None if weight is None else _tensor_key(weight))
    return _losses.get(key, lambda: _linear.LinearCrossEntropy(
        class_weight=None if weight is None else array(weight), ignore_index=ignore_index,
        label_smoothing=label_smoothing), held=weight)


def _torch_linear_ce(x, w, y, b, cw, ignore_index, label_smoothing, reduction):
    return F.cross_entropy(F.linear(x, w, b), y, weight=cw, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)


def linear_ce_run(x: Tensor, w: Tensor, y: Tensor, b: Optional[Tensor],
                  cw: Optional[Tensor], ignore_index: int, label_smoothing: float,
                  reduction: str, grad: bool, row_weight: Optional[Tensor] = None):
    """The value, or (value, grad_x, grad_w, grad_b) (grad_b empty without a bias).
    row_weight: "none"'s backward, the incoming gradient as per-row weights (any sign);
    then reduction is "sum".  Data fastloss rejects (a label out of range, a negative
    class weight) is computed, or rejected, by PyTorch."""
    xa, wa, ya = array(x), array(w), array(y)
    ba = None if b is None else array(b)
    n_threads = torch.get_num_threads()
    try:
        fl = _linear_loss(cw, ignore_index, label_smoothing)
        if not grad:
            return value_tensor(fl(xa, wa, ya, bias=ba, reduction=reduction,
                                   n_threads=n_threads), xa.dtype)
        sw = None if row_weight is None else np.ascontiguousarray(array(row_weight))
        v, grads = fl._run(True, xa, wa, ya, ba, sw, reduction, n_threads, None,
                           signed_weights=sw is not None)
        gb = torch.from_numpy(grads[2]) if b is not None else x.new_empty(0)
        return (value_tensor(v, xa.dtype), torch.from_numpy(grads[0]),
                torch.from_numpy(grads[1]), gb)
    except ValueError:
        def fn(xx, ww, bb):
            per = _torch_linear_ce(xx, ww, y, bb, cw, ignore_index, label_smoothing,
                                   "none" if row_weight is not None else reduction)
            return per if row_weight is None else (per * row_weight).sum()
        if not grad:
            with torch.no_grad():
                return fn(x, w, b).detach().clone()
        with torch.enable_grad():
            zs = [t.detach().requires_grad_() if t is not None else None for t in (x, w, b)]
            v = fn(*zs)
            gs = torch.autograd.grad(v.sum(), [z for z in zs if z is not None])
        gb = gs[2] if b is not None else x.new_empty(0)
        return v.detach().clone(), gs[0], gs[1], gb


def _linear_fake(x, w, y, b, cw, ignore_index, label_smoothing, reduction):
    return x.new_empty(x.shape[:1]) if reduction == "none" else x.new_empty(())


@torch.library.custom_op("fastloss::linear_cross_entropy_vg", mutates_args=(),
                         device_types="cpu")
def linear_ce_vg_op(x: Tensor, w: Tensor, y: Tensor, b: Optional[Tensor],
                    cw: Optional[Tensor], ignore_index: int, label_smoothing: float,
                    reduction: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return linear_ce_run(x, w, y, b, cw, ignore_index, label_smoothing, reduction, True)


@linear_ce_vg_op.register_fake
def _(x, w, y, b, cw, ignore_index, label_smoothing, reduction):
    return (_linear_fake(x, w, y, b, cw, ignore_index, label_smoothing, reduction),
            x.new_empty(x.shape), w.new_empty(w.shape),
            w.new_empty(w.shape[:1] if b is not None else (0,)))


@torch.library.custom_op("fastloss::linear_cross_entropy", mutates_args=(),
                         device_types="cpu")
def linear_ce_op(x: Tensor, w: Tensor, y: Tensor, b: Optional[Tensor], cw: Optional[Tensor],
                 ignore_index: int, label_smoothing: float, reduction: str) -> Tensor:
    return linear_ce_run(x, w, y, b, cw, ignore_index, label_smoothing, reduction, False)


linear_ce_op.register_fake(_linear_fake)


def _linear_setup_context(ctx, inputs, output):
    _, gx, gw, gb = output
    ctx.set_materialize_grads(False)
    ctx.mark_non_differentiable(gx, gw, gb)
    ctx.save_for_backward(gx, gw, gb)
    ctx.has_bias = inputs[3] is not None


def _linear_op_backward(ctx, g_value, _gx, _gw, _gb):
    if torch.is_grad_enabled():
        raise RuntimeError(DOUBLE_BACKWARD)
    gx, gw, gb = ctx.saved_tensors
    return (gx * g_value, gw * g_value, None, gb * g_value if ctx.has_bias else None,
            None, None, None, None)


linear_ce_vg_op.register_autograd(_linear_op_backward, setup_context=_linear_setup_context)


class _LinearFused(torch.autograd.Function):
    """Eager mode's node for fused linear + cross-entropy (see linear_ce_run)."""

    @staticmethod
    def forward(ctx, x, w, b, y, cw, ignore_index, label_smoothing, reduction):
        ctx.reduction = reduction
        ctx.args = (y, cw, ignore_index, label_smoothing)
        ctx.has_bias = b is not None
        if reduction == "none":
            ctx.save_for_backward(x, w, b)
            return linear_ce_run(x, w, y, b, cw, ignore_index, label_smoothing, reduction,
                                 False)
        value, gx, gw, gb = linear_ce_run(x, w, y, b, cw, ignore_index, label_smoothing,
                                          reduction, True)
        ctx.save_for_backward(gx, gw, gb)
        return value

    @staticmethod
    def backward(ctx, g):
        if torch.is_grad_enabled():
            raise RuntimeError(DOUBLE_BACKWARD)
        if ctx.reduction == "none":
            x, w, b = ctx.saved_tensors
            y, cw, ignore_index, label_smoothing = ctx.args
            _, gx, gw, gb = linear_ce_run(x, w, y, b, cw, ignore_index, label_smoothing,
                                          "sum", True, row_weight=g.to(x.dtype).contiguous())
        else:
            gx, gw, gb = ctx.saved_tensors
            if not (g.dim() == 0 and g.item() == 1.0):
                gx, gw, gb = gx * g, gw * g, gb * g
        return gx, gw, gb if ctx.has_bias else None, None, None, None, None, None


def linear_cross_entropy(x: Tensor, w: Tensor, y: Tensor, b: Optional[Tensor],
                         cw: Optional[Tensor], ignore_index: int, label_smoothing: float,
                         reduction: str) -> Tensor:
    """fastloss.LinearCrossEntropy on tensors the kernels take (checked by the caller)."""
    needs = torch.is_grad_enabled() and (x.requires_grad or w.requires_grad
                                         or (b is not None and b.requires_grad))
    args = (ignore_index, label_smoothing, reduction)
    if (all(type(t) in PLAIN for t in (x, w) + ((b,) if b is not None else ()))
            and not torch.compiler.is_compiling()):
        if needs:
            return _LinearFused.apply(x, w, b, y, cw, *args)
        return linear_ce_run(x, w, y, b, cw, *args, False)
    if needs:
        if reduction == "none":     # traced: PyTorch's own graph (per-row weights)
            return _torch_linear_ce(x, w, y, b, cw, *args)
        return linear_ce_vg_op(x, w, y, b, cw, *args)[0]
    return linear_ce_op(x, w, y, b, cw, *args)
