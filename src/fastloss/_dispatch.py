"""Run-time choice of the kernel build: the best instruction set this CPU supports.

setup.py compiles every kernel family once per instruction-set level (fastloss/_build.py
lists the levels, their flags and the CPU features each needs).  At import, the best level
that both the CPU supports and the build contains is loaded.  The environment variable
``FASTLOSS_SIMD`` (``baseline``, ``avx2`` or ``avx512``) forces a lower level, e.g. to
test each path on one machine; asking for a level the CPU or build lacks warns and falls
back to the best available one.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import os
import warnings
from types import ModuleType, SimpleNamespace

from . import _build
from ._kernels import cpu


def _load(level: str) -> SimpleNamespace | None:
    try:
        mods = {f: importlib.import_module(f"fastloss._kernels.{f}_{level}")
                for f in _build.FAMILIES}
    except ImportError:
        return None
    return SimpleNamespace(level=level, **mods)


def _cpu_runs(level: _build.Level) -> bool:
    return all(cpu.has(feature) for feature in level.cpu)


@functools.lru_cache(maxsize=None)
def available() -> tuple[str, ...]:
    """Levels that this build contains and this CPU can run, lowest first."""
    return tuple(lv.name for lv in _build.LEVELS if _cpu_runs(lv) and _load(lv.name))


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


def probes(level: str | None = None) -> ModuleType:
    """The test and benchmark hooks built for ``level`` (default: the level in use)."""
    level = level or kernels.level
    if level not in available():
        raise ValueError(f"kernel level {level!r} is not available (have {available()})")
    return importlib.import_module(f"fastloss._kernels.{_build.PROBES}_{level}")


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
