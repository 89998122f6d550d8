# What the Python-facing entry points of every kernel module share: raw pointers of the
# arrays the Python layer has checked (fastloss._validation).
cimport numpy as cnp


cdef inline const void* data_or_null(object arr):
    """The data pointer of an ndarray, or NULL for None."""
    if arr is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


from libc.stdint cimport int64_t

from .blocks cimport fl_exact, fl_exact_load, fl_exact_store


cdef inline fl_exact* exact_in(object state, fl_exact* acc):
    """acc loaded from an exact-sum state (a C-contiguous int64 array of FL_EXACT_STATE
    values, fastloss._kernels.exact), or NULL for None: what blocked_sum adds to."""
    if state is None:
        return NULL
    fl_exact_load(acc, <const int64_t*>cnp.PyArray_DATA(<cnp.ndarray>state))
    return acc


cdef inline void exact_out(object state, const fl_exact* acc):
    """Store acc back into the state it was loaded from (nothing for None)."""
    if state is not None:
        fl_exact_store(acc, <int64_t*>cnp.PyArray_DATA(<cnp.ndarray>state))
