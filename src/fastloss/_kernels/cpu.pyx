# cython: language_level=3
"""What the machine and this build offer: CPU features, OpenMP, the kernels' call modes.

Compiled once, for the baseline instruction set, so that it runs on every CPU and can tell
fastloss._dispatch which kernel build to load (the levels and the features each needs are
in fastloss/_build.py).
"""
from .blocks cimport fl_omp_max_threads, fl_omp_num_procs, FL_OPENMP, VALUE, GRAD, HESS

cdef extern from "fl_cpu.h" nogil:
    int fl_cpu_has(const char* name)

cdef extern from "fl_build_info.h":
    const char* FL_BUILD_INFO       # JSON written by setup.py: compiler, flags, OpenMP


cdef extern from "half.h":
    enum: FL_HALF_F16, FL_HALF_BF16


#: What a kernel call computes, as the kernels number it (blocks.pxd): a call passes
#: VALUE, VALUE | GRAD or GRAD | HESS.
MODES = {"value": VALUE, "grad": GRAD, "hess": HESS}

#: The half-precision dtypes the pointwise kernels read themselves, as they number them
#: (half.h).
HALVES = {"float16": FL_HALF_F16, "bfloat16": FL_HALF_BF16}


def has(str feature):
    """True if this CPU and its operating system support `feature` ("avx2", "fma",
    "avx512f", "f16c", ...); ValueError for a feature name fastloss does not know."""
    cdef bytes name = feature.encode()
    cdef int answer = fl_cpu_has(name)
    if answer < 0:
        raise ValueError(f"unknown CPU feature {feature!r}")
    return bool(answer)


def openmp_version():
    """The _OPENMP date macro the kernels were compiled with (e.g. 201511), or 0."""
    return FL_OPENMP


def max_threads():
    """omp_get_max_threads(): follows OMP_NUM_THREADS and threadpoolctl limits."""
    return fl_omp_max_threads()


def num_procs():
    """omp_get_num_procs(): the cores this process may run on."""
    return fl_omp_num_procs()


def build_info():
    """How this module was built (a JSON string written by setup.py)."""
    return FL_BUILD_INFO.decode()
