# What the Python-facing entry points of every kernel module share: raw pointers of the
# arrays the Python layer has checked (fastloss._validation).
cimport numpy as cnp


cdef inline const void* data_or_null(object arr):
    """The data pointer of an ndarray, or NULL for None."""
    if arr is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>arr)
