"""Run-time choice of the kernel build: the best instruction set this CPU supports.

setup.py compiles every kernel family once per instruction-set level ("baseline", plus
"avx2" and "avx512" on x86-64).  At import, the best level that both the CPU supports and
the build contains is loaded.  The environment variable ``FASTLOSS_SIMD`` (``baseline``,
``avx2`` or ``avx512``) forces a lower level, e.g. to test each path on one machine; asking
for a level the CPU or build lacks warns and falls back to the best available one.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from types import SimpleNamespace

from ._kernels import cpu

LEVELS = ("baseline", "avx2", "avx512")
FAMILIES = ("pointwise", "softmax")


def _load(level: str) -> SimpleNamespace | None:
    try:
        mods = {f: importlib.import_module(f"fastloss._kernels.{f}_{level}") for f in FAMILIES}
    except ImportError:
        return None
    return SimpleNamespace(level=level, **mods)


def available() -> tuple[str, ...]:
    """Levels that this build contains and this CPU can run, lowest first."""
    best = LEVELS.index(cpu.cpu_level())
    return tuple(lv for lv in LEVELS[: best + 1] if _load(lv) is not None)


def _initial() -> SimpleNamespace:
    levels = available()
    wanted = os.environ.get("FASTLOSS_SIMD", "").strip().lower()
    if wanted and wanted not in levels:
        warnings.warn(f"FASTLOSS_SIMD={wanted!r} is not available here (available: "
                      f"{', '.join(levels)}); using {levels[-1]!r}", RuntimeWarning, stacklevel=3)
        wanted = ""
    return _load(wanted or levels[-1])


#: The kernels in use; the loss classes read ``kernels.<family>`` on every call.
kernels: SimpleNamespace = _initial()


@contextlib.contextmanager
def use(level: str):
    """Temporarily run every loss on the kernels built for ``level`` (for tests)."""
    global kernels
    if level not in available():
        raise ValueError(f"kernel level {level!r} is not available (have {available()})")
    saved, kernels = kernels, _load(level)
    try:
        yield kernels
    finally:
        kernels = saved
