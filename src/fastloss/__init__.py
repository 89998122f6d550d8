"""fastloss: fused loss, gradient and Hessian kernels for NumPy arrays on the CPU.

Every loss of the table (:data:`LOSSES`: :class:`MSE`, :class:`CrossEntropy`, ...) has
``loss(input, target)``, ``loss.value_and_grad(...)`` and ``loss.grad_hess(...)`` (see
:class:`Loss`), and a lower-case function that computes its value in one line
(``fastloss.mse(...)``).  :class:`Accumulator` evaluates a loss over batches (streams,
workers) with the single call's result.  :func:`show_config` reports the build, the OpenMP runtime and the
SIMD level in use.  Integrations live in their own modules, imported only when asked for.
"""
__version__ = "0.1.0"

from ._config import show_config
from .accumulate import Accumulator
from .linear import LinearCrossEntropy
from .losses import *  # noqa: F401,F403  (the table's classes and functions)
from .losses import __all__ as _losses_all

__all__ = [*_losses_all, "Accumulator", "LinearCrossEntropy", "show_config", "__version__"]
