"""fastloss: fused loss, gradient and Hessian kernels for NumPy arrays on the CPU.

Every loss of the table (:data:`LOSSES`: :class:`MSE`, :class:`CrossEntropy`, ...) has
``loss(input, target)``, ``loss.value_and_grad(...)`` and ``loss.grad_hess(...)`` (see
:class:`Loss`), and a lower-case function that computes its value in one line
(``fastloss.mse(...)``).  :class:`Accumulator` evaluates a loss over batches (streams,
workers) with the single call's result.  :func:`show_config` reports the build, the OpenMP runtime and the
SIMD level in use.  Integrations live in their own modules, imported only when asked for.
Compiled code calls the kernels through the C-level API, ``fastloss.api`` (declared in
``fastloss/api.pxd``; :func:`get_include`).
"""
__version__ = "0.1.0"

from ._config import show_config
from .accumulate import Accumulator
from .linear import LinearCrossEntropy
from .losses import *  # noqa: F401,F403  (the table's classes and functions)
from .losses import __all__ as _losses_all

__all__ = [*_losses_all, "Accumulator", "LinearCrossEntropy", "show_config", "get_include",
           "__version__"]


def get_include() -> str:
    """The folder to put on Cython's include path to ``cimport fastloss.api``.

    The C-level API's declarations, ``fastloss/api.pxd``, ship in the package: a build that
    runs Cython with the installed packages on ``sys.path`` (setuptools' ``cythonize``)
    finds them by itself, and needs no header and no library to link.  Build tools that
    pass Cython its include folders explicitly (meson: ``cython_args: ['-I', ...]``) take
    this one, the folder that holds the ``fastloss`` package.

    Returns
    -------
    str
        An absolute path; ``os.path.join(get_include(), "fastloss", "api.pxd")`` exists.

    Examples
    --------
    >>> import os, fastloss
    >>> os.path.isfile(os.path.join(fastloss.get_include(), "fastloss", "api.pxd"))
    True
    """
    import os
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
