"""fastloss for PyTorch: drop-in loss modules and functions with fused forward + backward.

``import fastloss.torch`` (PyTorch >= 2.4 must be installed; ``import fastloss`` alone never
imports it).  The modules and functions have PyTorch's names, signatures and semantics::

    import fastloss.torch as flt
    criterion = flt.CrossEntropyLoss(label_smoothing=0.1)     # a torch.nn.CrossEntropyLoss
    loss = criterion(model(x), y)
    loss.backward()

Modules (subclasses of their torch.nn counterparts, so constructors, buffers, state dicts
and ``isinstance`` checks are PyTorch's): :class:`MSELoss`, :class:`L1Loss`,
:class:`HuberLoss`, :class:`SmoothL1Loss`, :class:`CrossEntropyLoss`,
:class:`BCEWithLogitsLoss`, :class:`BCELoss`, :class:`KLDivLoss`, :class:`PoissonNLLLoss`,
and, which PyTorch lacks, :class:`PseudoHuberLoss` and :class:`LinearCrossEntropyLoss`
(cross-entropy of a linear layer's output without its logits).  Functions, named and
called as in torch.nn.functional: :func:`mse_loss`, :func:`l1_loss`, :func:`huber_loss`,
:func:`smooth_l1_loss`, :func:`cross_entropy`, :func:`binary_cross_entropy_with_logits`,
:func:`binary_cross_entropy`, :func:`kl_div`, :func:`poisson_nll_loss`,
:func:`pseudo_huber_loss`, :func:`linear_cross_entropy`.

How it works
------------
When the input needs a gradient, the forward pass computes the loss and its gradient in
one pass over the data (fastloss's ``value_and_grad``, written straight into a
``torch.empty`` buffer) and saves the gradient; backward multiplies it by the incoming
gradient, or hands the buffer on as it is when that gradient is 1 (``loss.backward()``).
Without a gradient (``torch.no_grad()``, or an input that does not require one) the
value-only kernels run.  Inputs are read in place through their memory: PyTorch's
``(N, C, d1, ..., dk)`` cross-entropy layout included, with no transposing copy.
``torch.set_num_threads`` sets fastloss's threads too.

* Eager mode runs a ``torch.autograd.Function``; anything traced (``torch.compile``,
  also with ``fullgraph=True``, ``torch.export``, fake tensors) runs the custom operators
  ``torch.ops.fastloss.*`` (``torch.library.custom_op`` with ``register_autograd`` and
  ``register_fake``; they pass ``torch.library.opcheck``).  Both compute the same bits.
* float32 and float64 are computed natively; float16 and bfloat16 are read in place,
  computed in float32, with the value and the gradient returned in the input's dtype, as
  PyTorch does: the kernel rounds each gradient value once as it stores it, so neither a
  float32 copy of the input nor a float32 gradient is made (bfloat16 cross-entropy
  8192 x 1000, forward + backward, 2 threads: 20 ms before, 8.5 ms; PyTorch 20 ms).
* Double backward (``create_graph=True``) raises ``RuntimeError``: the saved gradient is
  not differentiable.  Use torch.nn's losses for higher-order derivatives.

What PyTorch computes instead
-----------------------------
Never an error for input PyTorch accepts: whatever fastloss cannot compute goes to
PyTorch's own function, with identical results (and identical errors for bad input):

* tensors on another device (CUDA, MPS, ...), sparse tensors, other dtypes, tensor
  subclasses with ``__torch_function__``, functorch transforms (``torch.func``);
* a target or weight that requires a gradient (PyTorch differentiates with respect to
  it), a target or weight of another dtype than the input, shapes that broadcast;
* options fastloss lacks: ``PoissonNLLLoss(log_input=False)`` or ``full=True``, a
  ``pos_weight`` that is not a scalar or one per last-axis class, probability targets for
  cross-entropy that need a gradient, integer class targets other than int64;
* values fastloss rejects and PyTorch accepts: negative weights, negative Poisson counts
  (PyTorch computes), labels out of range and BCE probabilities outside [0, 1] (PyTorch
  raises its own error).

Differences from PyTorch
------------------------
* A "mean" over nothing (every cross-entropy target equal to ``ignore_index``, an empty
  batch, weights that sum to 0) gives 0 and a zero gradient; PyTorch gives NaN.
* ``kl_div`` gives a 0 term where the target is 0, also where PyTorch gives NaN (an input
  of ``-inf``, or ``log_target=True`` with a target of ``-inf``).
* The gradient is computed in the forward pass, so one buffer of the input's size lives
  from forward to backward (PyTorch's cross-entropy also keeps one: its log-softmax).
  Gradient buffers of 1 MiB or more are NumPy arrays (with transparent huge pages, where
  fresh memory costs far fewer page faults) and the last few are kept for reuse once no
  tensor holds them, as PyTorch's CUDA caching allocator does: :func:`empty_cache` frees
  them.
* Values agree with PyTorch to rounding (float64 to 1e-12 relative, float32 to 1e-5), not
  bit for bit.

Measurements behind the design
------------------------------
CPU time per call, 1 thread, float32, torch 2.13 (a shared 2-core Xeon; medians of 9
interleaved rounds of ``time.thread_time``, which other processes do not inflate as much
as the wall clock):

================================  ==================  ===================
256 x 10 cross-entropy            forward + backward  no_grad forward
================================  ==================  ===================
autograd.Function (eager path)    86 us               20 us (direct call)
custom operator                   174 us              42 us
torch.nn.functional               134 us              -
================================  ==================  ===================

MSE at 256 x 10: autograd.Function 65 us, custom operator 159 us, PyTorch 46 us.  So
eager mode uses the autograd.Function, and the custom operators only where they are
needed (tracing).  Where fastloss and PyTorch take equal time (forward + backward):
MSE ~65k elements, L1 and BCE with logits ~10k, Poisson and KL ~16k, cross-entropy
~32k, or ~25k with fewer than 32 classes (measured on a 2-core EPYC VM, where an autograd
backward alone costs ~100 us; machines with less per-call overhead break even sooner);
below those sizes (``fastloss.torch.functional.SMALL``) the call
goes to PyTorch.  The benchmark group ``torch`` (``python -m fastloss bench --groups
torch``; ``bench/torch_bars.py``) times the modules at training sizes.
"""
try:
    import torch as _torch
except ImportError as _e:       # pragma: no cover - depends on the environment
    raise ImportError("fastloss.torch needs PyTorch >= 2.4: pip install \"fastloss[torch]\" "
                      "(or PyTorch's own instructions for your platform)") from _e
if not hasattr(_torch.library, "register_autograd"):        # pragma: no cover
    raise ImportError(f"fastloss.torch needs PyTorch >= 2.4 (torch.library.custom_op); "
                      f"found {_torch.__version__}")

from .functional import (binary_cross_entropy, binary_cross_entropy_with_logits,
                         cross_entropy, huber_loss, kl_div, l1_loss, linear_cross_entropy,
                         mse_loss,
                         poisson_nll_loss, pseudo_huber_loss, smooth_l1_loss)
from ._ops import empty_cache
from .modules import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss,
                      L1Loss, LinearCrossEntropyLoss, MSELoss, PoissonNLLLoss,
                      PseudoHuberLoss, SmoothL1Loss)

__all__ = ["MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "PseudoHuberLoss",
           "CrossEntropyLoss", "BCEWithLogitsLoss", "BCELoss", "KLDivLoss",
           "PoissonNLLLoss", "LinearCrossEntropyLoss",
           "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "pseudo_huber_loss",
           "cross_entropy", "binary_cross_entropy_with_logits", "binary_cross_entropy",
           "kl_div", "poisson_nll_loss", "linear_cross_entropy", "empty_cache"]
