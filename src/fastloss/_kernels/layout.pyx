# cython: language_level=3
"""Fast recognition of arguments that need no conversion, and memory overlap.

The common call passes NumPy arrays that need no conversion; these tests recognise it in
tens of nanoseconds, so that small calls stay cheap.  Anything they reject goes through the
general path in fastloss._validation, which converts or explains.  Compiled once, for the
baseline instruction set.
"""
cimport numpy as cnp

cnp.import_array()


cdef inline bint plain_float_array(object a):
    """An exact ndarray of native float32/float64, C-contiguous and aligned."""
    cdef int typ
    if type(a) is not cnp.ndarray:
        return False
    typ = cnp.PyArray_TYPE(<cnp.ndarray>a)
    return ((typ == cnp.NPY_FLOAT32 or typ == cnp.NPY_FLOAT64)
            and cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>a)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>a))


cdef inline bint same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int nd = cnp.PyArray_NDIM(a)
    cdef int i
    if cnp.PyArray_NDIM(b) != nd:
        return False
    for i in range(nd):
        if cnp.PyArray_DIM(a, i) != cnp.PyArray_DIM(b, i):
            return False
    return True


cdef inline bint same_leading_shape(cnp.ndarray y, cnp.ndarray x):
    cdef int i
    for i in range(cnp.PyArray_NDIM(y)):
        if cnp.PyArray_DIM(y, i) != cnp.PyArray_DIM(x, i):
            return False
    return True


def plain_float(object a):
    """True if a is a C-contiguous float32/float64 array (no conversion needed)."""
    return plain_float_array(a)


def plain_labels(object y, object x):
    """True if y is a C-contiguous int64 array of x's leading shape (class labels for the
    rows of x, usable as they are; their values are checked by `labels`)."""
    return (type(y) is cnp.ndarray
            and cnp.PyArray_TYPE(<cnp.ndarray>y) == cnp.NPY_INT64
            and cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>y)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>y)
            and type(x) is cnp.ndarray
            and cnp.PyArray_NDIM(<cnp.ndarray>y) + 1 == cnp.PyArray_NDIM(<cnp.ndarray>x)
            and same_leading_shape(<cnp.ndarray>y, <cnp.ndarray>x))


def plain_pair(object x, object t):
    """True if x and t are C-contiguous float arrays of one dtype and one shape."""
    return (plain_float_array(x) and plain_float_array(t)
            and cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.PyArray_TYPE(<cnp.ndarray>t)
            and same_shape(<cnp.ndarray>x, <cnp.ndarray>t))


def plain_rows(object x, object t):
    """True if x, and t unless it is None, are 2-D plain float arrays (C-contiguous,
    aligned): rows of classes the softmax kernels read as they are."""
    return (plain_float_array(x) and cnp.PyArray_NDIM(<cnp.ndarray>x) == 2
            and (t is None or plain_float_array(t)))


cdef inline void extent(cnp.ndarray a, Py_ssize_t* lo, Py_ssize_t* hi):
    """[lo, hi): the bytes an array's elements occupy (any strides)."""
    cdef Py_ssize_t start = <Py_ssize_t>cnp.PyArray_DATA(a)
    cdef Py_ssize_t end = start
    cdef int i
    cdef Py_ssize_t step
    if cnp.PyArray_SIZE(a) == 0:
        lo[0] = hi[0] = start
        return
    for i in range(cnp.PyArray_NDIM(a)):
        step = cnp.PyArray_STRIDE(a, i) * (cnp.PyArray_DIM(a, i) - 1)
        if step < 0:
            start += step
        else:
            end += step
    lo[0] = start
    hi[0] = end + cnp.PyArray_ITEMSIZE(a)


def overlap(object a, object b):
    """True if arrays a and b may share memory (their byte ranges intersect)."""
    cdef Py_ssize_t alo, ahi, blo, bhi
    if not isinstance(a, cnp.ndarray) or not isinstance(b, cnp.ndarray):
        return False
    extent(<cnp.ndarray>a, &alo, &ahi)
    extent(<cnp.ndarray>b, &blo, &bhi)
    return alo < bhi and blo < ahi and ahi > alo and bhi > blo


def plain_out(object out, cnp.ndarray x):
    """True if out can take a result like x in place: an exact ndarray of x's dtype and
    shape, C-contiguous, aligned and writeable."""
    return (type(out) is cnp.ndarray
            and cnp.PyArray_TYPE(<cnp.ndarray>out) == cnp.PyArray_TYPE(x)
            and cnp.PyArray_ISCARRAY(<cnp.ndarray>out)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>out)
            and same_shape(<cnp.ndarray>out, x))
