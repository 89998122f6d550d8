# cython: language_level=3
"""What the machine and this build offer: vector instruction sets and OpenMP.

Compiled once, for the baseline instruction set, so that it can run on every CPU and tell
fastloss._dispatch which kernel build to load.
"""
from .blocks cimport fl_omp_max_threads, fl_omp_num_procs, FL_OPENMP

cdef extern from "fl_cpu.h" nogil:
    int fl_cpu_level()

cdef extern from "fl_build_info.h":
    const char* FL_BUILD_INFO       # JSON written by setup.py: compiler, flags, OpenMP

_LEVELS = ("baseline", "avx2", "avx512")


def cpu_level():
    """Best kernel build this CPU can run: "baseline", "avx2" or "avx512"."""
    return _LEVELS[fl_cpu_level()]


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
