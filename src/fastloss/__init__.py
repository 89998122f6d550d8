"""fastloss: fused loss, gradient and Hessian kernels for NumPy arrays on the CPU.

Losses: :class:`MSE`, :class:`MAE`, :class:`PseudoHuber`, :class:`BinaryCrossEntropy`,
:class:`CrossEntropy`, :class:`KLDivergence`.  Each has ``loss(input, target)``,
``loss.value_and_grad(...)`` and ``loss.grad_hess(...)`` (see :class:`Loss`); the
lower-case functions (``fastloss.mse(...)`` etc.) compute the value in one line.
:func:`show_config` reports the build, the OpenMP runtime and the SIMD level in use.
"""
__version__ = "0.1.0"

from ._config import show_config
from .losses import (MAE, MSE, BinaryCrossEntropy, CrossEntropy, KLDivergence, Loss,
                     PseudoHuber, binary_cross_entropy, cross_entropy, kl_divergence, mae,
                     mse, pseudo_huber)

__all__ = ["Loss", "MSE", "MAE", "PseudoHuber", "BinaryCrossEntropy", "CrossEntropy",
           "KLDivergence", "mse", "mae", "pseudo_huber", "cross_entropy",
           "binary_cross_entropy", "kl_divergence", "show_config", "__version__"]
