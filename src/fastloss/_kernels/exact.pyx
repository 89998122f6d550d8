# cython: language_level=3, boundscheck=False, wraparound=False
"""Exact sums as Python-visible states (fl_exact.h), for the accumulators.

A state is a C-contiguous int64 array of STATE_SIZE values: the exact sum of the doubles
added to it, as 32-bit limbs of a fixed-point number, and the sum of any infinities and
NaNs.  The kernels add their block sums to a state when given one (``exact=``); states
merge exactly, in any order, and round once to the nearest double.  Compiled once.
"""
cimport numpy as cnp
from libc.stdint cimport int64_t

from .blocks cimport (FL_EXACT_STATE, fl_exact, fl_exact_zero, fl_exact_add, fl_exact_merge,
                      fl_exact_round, fl_exact_store, fl_exact_load)

import numpy as np

cnp.import_array()

#: int64 values in a state
STATE_SIZE = FL_EXACT_STATE


def zero():
    """A new state holding the exact sum 0."""
    return np.zeros(FL_EXACT_STATE, np.int64)


cdef inline const int64_t* data(cnp.ndarray state) except NULL:
    if (cnp.PyArray_TYPE(state) != cnp.NPY_INT64 or cnp.PyArray_SIZE(state) != FL_EXACT_STATE
            or not cnp.PyArray_ISCARRAY(state)):
        raise ValueError(f"an exact-sum state is a C-contiguous int64 array of "
                         f"{FL_EXACT_STATE} values")
    return <const int64_t*>cnp.PyArray_DATA(state)


def add(cnp.ndarray state, values):
    """Add every value of a float64 array to the state, exactly (in place)."""
    cdef fl_exact acc
    cdef cnp.ndarray v = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    cdef const double* p = <const double*>cnp.PyArray_DATA(v)
    cdef Py_ssize_t i, n = cnp.PyArray_SIZE(v)
    fl_exact_load(&acc, data(state))
    for i in range(n):
        fl_exact_add(&acc, p[i])
    fl_exact_store(&acc, <int64_t*>data(state))
    return state


def merge(cnp.ndarray a, cnp.ndarray b):
    """A new state holding the exact sum of a's and b's."""
    cdef fl_exact x, y
    out = zero()
    fl_exact_load(&x, data(a))
    fl_exact_load(&y, data(b))
    fl_exact_merge(&x, &y)
    fl_exact_store(&x, <int64_t*>data(out))
    return out


def round_to_float(cnp.ndarray state):
    """The state's exact sum rounded once to the nearest float (ties to even); inf or NaN
    if any infinity or NaN was added."""
    cdef fl_exact acc
    fl_exact_load(&acc, data(state))
    return fl_exact_round(&acc)
