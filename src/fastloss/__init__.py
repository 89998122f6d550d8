"""fastloss: fused loss, gradient and Hessian kernels for NumPy arrays on the CPU.

Losses: :class:`MSE`, :class:`MAE`, :class:`PseudoHuber`, :class:`BinaryCrossEntropy`,
:class:`CrossEntropy`, :class:`KLDivergence`.
Each has ``loss(input, target)``, ``loss.value_and_grad(...)`` and ``loss.grad_hess(...)``;
see :class:`Loss` for the arguments.  :func:`show_config` reports the build.
"""
from ._config import show_config
from .losses import (MAE, MSE, BinaryCrossEntropy, CrossEntropy, KLDivergence, Loss,
                     PseudoHuber)

__version__ = "0.1.0"
__all__ = ["Loss", "MSE", "MAE", "PseudoHuber", "BinaryCrossEntropy", "CrossEntropy",
           "KLDivergence", "show_config", "__version__"]
