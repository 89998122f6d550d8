# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Argument pre-passes that must finish before a kernel writes anything.

Weights are checked (finite, >= 0) and summed here, and class labels checked (in range or
ignored) and counted, so that a bad argument raises before any output is touched and the
"mean" factor 1 / sum(w) is known when the kernel writes the gradient in its single pass.
The sums use the same fixed blocking as the kernels (blocks.pxd), so they too are bitwise
identical for every thread count.  Compiled once, for the baseline instruction set: these
loops are bound by memory, not arithmetic.
"""
from cython cimport floating
from libc.float cimport FLT_MAX, DBL_MAX
cimport numpy as cnp

from .blocks cimport BLOCK_MIN, FLAG_NO_MEMORY, blocked_sum, vsum

cnp.import_array()


cdef Py_ssize_t first_bad_weight(const floating* w, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """Index of the first negative, NaN or infinite weight in lo .. hi, or -1."""
    cdef Py_ssize_t i
    cdef int bad = 0
    cdef floating big = FLT_MAX if floating is float else DBL_MAX
    for i in range(lo, hi):
        bad |= (not (w[i] >= 0)) | (w[i] > big)
    if not bad:
        return -1
    for i in range(lo, hi):
        if not (w[i] >= 0) or w[i] > big:
            return i
    return -1


cdef struct WeightArgs:
    const void* w
    bint float32


cdef inline double sum_weights(const floating* w, Py_ssize_t lo, Py_ssize_t hi,
                               Py_ssize_t* bad) noexcept nogil:
    bad[0] = first_bad_weight(w, lo, hi)
    return vsum(w + lo, hi - lo)


cdef double weights_block(const void* args, Py_ssize_t lo, Py_ssize_t hi,
                          Py_ssize_t* bad) noexcept nogil:
    cdef const WeightArgs* a = <const WeightArgs*>args
    if a.float32:
        return sum_weights(<const float*>a.w, lo, hi, bad)
    return sum_weights(<const double*>a.w, lo, hi, bad)


def weights(cnp.ndarray w, int n_threads):
    """(sum of w, index of the first bad weight or -1) for a C-contiguous float array."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(w)
    cdef Py_ssize_t bad = -1
    cdef double total
    cdef WeightArgs a
    a.w = cnp.PyArray_DATA(w)
    a.float32 = cnp.PyArray_TYPE(w) == cnp.NPY_FLOAT32
    with nogil:
        total = blocked_sum(weights_block, &a, n, BLOCK_MIN, n, n_threads, &bad)
    if bad == FLAG_NO_MEMORY:
        raise MemoryError("fastloss: no memory for the block sums")
    return total, bad


cdef struct LabelArgs:
    const long long* y
    long long n_cls
    long long ignore
    const void* cw              # class weights or NULL
    const void* sw              # sample weights or NULL; row r uses sw[r // group]
    Py_ssize_t group
    bint float32


cdef inline double count_labels(const LabelArgs* a, const floating* cw, const floating* sw,
                                Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t* bad) noexcept nogil:
    """Sum over rows lo .. hi that are not ignored of sw[r // group] * cw[y[r]] (1 for a
    missing weight); *bad = the first label neither in [0, n_cls) nor ignored, or -1."""
    cdef Py_ssize_t i
    cdef long long v, n_valid = 0, n_ignored = 0, n_bad
    cdef double acc = 0, wi
    bad[0] = -1
    if cw == NULL and sw == NULL:
        # unweighted: integer counts instead of a float64 add chain (3x faster)
        for i in range(lo, hi):
            v = a.y[i]
            n_valid += <unsigned long long>v < <unsigned long long>a.n_cls   # 0 <= v < n_cls
            n_ignored += v == a.ignore
        if <unsigned long long>a.ignore < <unsigned long long>a.n_cls:
            n_bad = (hi - lo) - n_valid                 # ignored rows are among the valid
            n_valid -= n_ignored
        else:
            n_bad = (hi - lo) - n_valid - n_ignored
        if n_bad == 0:
            return <double>n_valid
    for i in range(lo, hi):
        v = a.y[i]
        if v == a.ignore:
            continue
        if v < 0 or v >= a.n_cls:
            if bad[0] < 0:
                bad[0] = i
            continue
        wi = 1 if cw == NULL else cw[v]
        if sw != NULL:
            wi = wi * sw[i // a.group]
        acc += wi
    return acc


cdef double labels_block(const void* args, Py_ssize_t lo, Py_ssize_t hi,
                         Py_ssize_t* bad) noexcept nogil:
    cdef const LabelArgs* a = <const LabelArgs*>args
    if a.float32:
        return count_labels(a, <const float*>a.cw, <const float*>a.sw, lo, hi, bad)
    return count_labels(a, <const double*>a.cw, <const double*>a.sw, lo, hi, bad)


cdef inline const void* data_or_null(object arr):
    if arr is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


def labels(cnp.ndarray y, long long n_cls, long long ignore_index, object cw, object sw,
           Py_ssize_t group, bint is_float32, int n_threads):
    """(class-weighted count of the non-ignored rows, index of the first bad label or -1).

    y is C-contiguous int64; cw (class weights) and sw (sample weights, one per `group`
    rows) are None or C-contiguous of the compute dtype.
    """
    cdef Py_ssize_t n = cnp.PyArray_SIZE(y)
    cdef Py_ssize_t bad = -1
    cdef double total
    cdef LabelArgs a
    a.y = <const long long*>cnp.PyArray_DATA(y)
    a.n_cls = n_cls
    a.ignore = ignore_index
    a.cw = data_or_null(cw)
    a.sw = data_or_null(sw)
    a.group = group
    a.float32 = is_float32
    with nogil:
        total = blocked_sum(labels_block, &a, n, BLOCK_MIN, n, n_threads, &bad)
    if bad == FLAG_NO_MEMORY:
        raise MemoryError("fastloss: no memory for the block sums")
    return total, bad


# ------------------------------------------------------------------ fast argument checks ----
# The common call passes NumPy arrays that need no conversion; these two tests recognise it
# in tens of nanoseconds, so that small calls stay cheap.  Anything they reject goes through
# the general path in fastloss._validation, which converts or explains.

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
