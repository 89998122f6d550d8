# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Argument pre-passes that must finish before a kernel writes anything.

Weights are checked (finite, >= 0) and summed here, class labels checked (in range or
ignored) and counted, and targets that must not be negative checked, so that a bad
argument raises before any output is touched and the "mean" factor 1 / sum(w) is known
when the kernel writes the gradient in its single pass.
The sums use the same fixed blocking as the kernels (blocks.pxd), so they too are bitwise
identical for every thread count.  Compiled once, for the baseline instruction set: these
loops are bound by memory, not arithmetic.
"""
from cython cimport floating
from libc.float cimport FLT_MAX, DBL_MAX
cimport numpy as cnp

from .blocks cimport (BLOCK_MIN, FLAG_NO_MEMORY, blocked_sum, vsum, fl_exact, fl_exact_zero,
                      fl_exact_scale, fl_exact_round, fl_exact_merge)

from .arrays cimport data_or_null, exact_in, exact_out
from .entries cimport (LabelArgs, FL_ENTRY_WEIGHTS, FL_ENTRY_LABELS, FL_ENTRY_NEGATIVE)
from cpython.pycapsule cimport PyCapsule_New

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
                          Py_ssize_t* bad, void* scratch) noexcept nogil:
    cdef const WeightArgs* a = <const WeightArgs*>args
    if a.float32:
        return sum_weights(<const float*>a.w, lo, hi, bad)
    return sum_weights(<const double*>a.w, lo, hi, bad)


cdef double weights_total(const void* w, bint float32, Py_ssize_t n, long long group,
                          int n_threads, fl_exact* exact, Py_ssize_t* bad) noexcept nogil:
    """group * the sum of n weights, exactly, rounded once (also added to exact if not
    NULL); *bad = the first bad weight, -1, or FLAG_NO_MEMORY.  0 <= group < 2^31."""
    cdef WeightArgs a
    cdef fl_exact acc
    a.w = w
    a.float32 = float32
    fl_exact_zero(&acc)
    blocked_sum(weights_block, &a, n, BLOCK_MIN, n, n_threads, 0, &acc, bad)
    if group != 1:
        fl_exact_scale(&acc, group)
    if exact != NULL:
        fl_exact_merge(exact, &acc)
    return fl_exact_round(&acc)


def weights(cnp.ndarray w, int n_threads, long long group=1, object exact=None):
    """(group * sum of w, index of the first bad weight or -1) for a C-contiguous float
    array: every weight counted `group` times (0 <= group < 2^31), the product taken
    exactly and rounded once.  The exact value is also added to `exact` (an exact-sum
    state) if given."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(w)
    cdef Py_ssize_t bad = -1
    cdef double total
    cdef const void* data = cnp.PyArray_DATA(w)
    cdef bint float32 = cnp.PyArray_TYPE(w) == cnp.NPY_FLOAT32
    cdef fl_exact state
    cdef fl_exact* statep = exact_in(exact, &state)
    if not 0 <= group < 2**31:
        raise ValueError(f"a weight may stand for at most 2^31 - 1 values; got {group}")
    with nogil:
        total = weights_total(data, float32, n, group, n_threads, statep, &bad)
    exact_out(exact, statep)
    if bad == FLAG_NO_MEMORY:
        raise MemoryError("fastloss: no memory for the block sums")
    return total, bad


# LabelArgs: declared in entries.pxd (fastloss.api fills it too).

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
                         Py_ssize_t* bad, void* scratch) noexcept nogil:
    cdef const LabelArgs* a = <const LabelArgs*>args
    if a.float32:
        return count_labels(a, <const float*>a.cw, <const float*>a.sw, lo, hi, bad)
    return count_labels(a, <const double*>a.cw, <const double*>a.sw, lo, hi, bad)


cdef double labels_total(const LabelArgs* a, Py_ssize_t n, int n_threads, fl_exact* exact,
                         Py_ssize_t* bad) noexcept nogil:
    """The class-weighted count of the n rows that are not ignored (also added to exact if
    not NULL); *bad = the first bad label, -1, or FLAG_NO_MEMORY."""
    return blocked_sum(labels_block, a, n, BLOCK_MIN, n, n_threads, 0, exact, bad)


def labels(cnp.ndarray y, long long n_cls, long long ignore_index, object cw, object sw,
           Py_ssize_t group, bint is_float32, int n_threads, object exact=None):
    """(class-weighted count of the non-ignored rows, index of the first bad label or -1).

    y is C-contiguous int64; cw (class weights) and sw (sample weights, one per `group`
    rows) are None or C-contiguous of the compute dtype.
    """
    cdef Py_ssize_t n = cnp.PyArray_SIZE(y)
    cdef Py_ssize_t bad = -1
    cdef double total
    cdef LabelArgs a
    cdef fl_exact acc
    cdef fl_exact* accp = exact_in(exact, &acc)
    a.y = <const long long*>cnp.PyArray_DATA(y)
    a.n_cls = n_cls
    a.ignore = ignore_index
    a.cw = data_or_null(cw)
    a.sw = data_or_null(sw)
    a.group = group
    a.float32 = is_float32
    with nogil:
        total = labels_total(&a, n, n_threads, accp, &bad)
    exact_out(exact, accp)
    if bad == FLAG_NO_MEMORY:
        raise MemoryError("fastloss: no memory for the block sums")
    return total, bad


# ------------------------------------------------------------------ targets ----

cdef struct SignArgs:
    const void* v
    Py_ssize_t stride           # in elements (any sign)
    bint float32


cdef inline Py_ssize_t first_negative_in(const floating* v, Py_ssize_t stride, Py_ssize_t lo,
                                         Py_ssize_t hi) noexcept nogil:
    """Index of the first v[i * stride] < 0 in lo .. hi (NaN is not negative), or -1.
    Contiguous data take a loop of their own, which vectorizes."""
    cdef Py_ssize_t i
    cdef int neg = 0
    cdef floating zero = 0
    if stride == 1:
        for i in range(lo, hi):
            neg |= v[i] < zero
    else:
        for i in range(lo, hi):
            neg |= v[i * stride] < zero
    if not neg:
        return -1
    for i in range(lo, hi):
        if v[i * stride] < zero:
            return i
    return -1


cdef double sign_block(const void* args, Py_ssize_t lo, Py_ssize_t hi,
                       Py_ssize_t* bad, void* scratch) noexcept nogil:
    cdef const SignArgs* a = <const SignArgs*>args
    if a.float32:
        bad[0] = first_negative_in(<const float*>a.v, a.stride, lo, hi)
    else:
        bad[0] = first_negative_in(<const double*>a.v, a.stride, lo, hi)
    return 0


cdef Py_ssize_t first_negative_at(const void* v, Py_ssize_t stride, bint float32,
                                  Py_ssize_t n, int n_threads) noexcept nogil:
    """The first of n values (stride elements apart) that is < 0, -1, or FLAG_NO_MEMORY."""
    cdef Py_ssize_t bad = -1
    cdef SignArgs a
    a.v = v
    a.stride = stride
    a.float32 = float32
    blocked_sum(sign_block, &a, n, BLOCK_MIN, n, n_threads, 0, NULL, &bad)
    return bad


def first_negative(cnp.ndarray v, int n_threads):
    """Flat index of the first negative value of a float array, or -1.  v is C-contiguous
    (read flat) or 1-D with any stride that is a multiple of the item size."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(v)
    cdef Py_ssize_t bad = -1
    cdef const void* data = cnp.PyArray_DATA(v)
    cdef Py_ssize_t stride = 1 if cnp.PyArray_IS_C_CONTIGUOUS(v) or cnp.PyArray_NDIM(v) == 0 \
        else cnp.PyArray_STRIDE(v, 0) // cnp.PyArray_ITEMSIZE(v)
    cdef bint float32 = cnp.PyArray_TYPE(v) == cnp.NPY_FLOAT32
    with nogil:
        bad = first_negative_at(data, stride, float32, n, n_threads)
    if bad == FLAG_NO_MEMORY:
        raise MemoryError("fastloss: no memory for the block sums")
    return bad


#: The C entry points that fastloss.api calls (entries.pxd): {name: PyCapsule}.
ENTRIES = {
    "weights": PyCapsule_New(<void*>weights_total, FL_ENTRY_WEIGHTS, NULL),
    "labels": PyCapsule_New(<void*>labels_total, FL_ENTRY_LABELS, NULL),
    "first_negative": PyCapsule_New(<void*>first_negative_at, FL_ENTRY_NEGATIVE, NULL),
}
