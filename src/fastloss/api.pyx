# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""fastloss's C-level API: the kernels for Cython and C extensions, without Python.

The functions are declared, with their conventions, in ``fastloss/api.pxd`` (shipped in
the wheel) and documented in docs/capi.rst; a downstream module cimports them::

    from fastloss.api cimport fl_pointwise_f64, FL_MSE, FL_VALUE_GRAD, FL_MEAN, FL_OK

Design
------
This module is compiled once (baseline instruction set): it only checks arguments and
fills the kernels' argument structs.  The work runs in the kernel modules of the level
fastloss._dispatch chose at import (AVX2, AVX-512, ...), whose C entry points this module
takes from their ``ENTRIES`` capsules (fastloss/_kernels/entries.pxd) when it is imported.
The argument checks, the weight sums and label counts (fastloss._kernels.checks) and the
kernels are the ones the Python API runs, with the same arguments, so the results are the
Python API's bit for bit; only Python's object handling is left out.

The float and double entry points below are deliberate per-dtype twins (a C ABI has no
fused types), each one line over the fused implementation; api.pxd repeats their
signatures because Cython needs the declarations there.

Every public function is ``noexcept nogil`` and returns a status code; the public
functions are exported through Cython's ``__pyx_capi__`` capsules (their names are the C
signatures, which tests/test_capi.py freezes: they are an ABI).

From Python, this module offers the numbers of the constants (``POINTWISE``, ``SOFTMAX``,
``MODES``, ``REDUCTIONS``, ``STATUS``), the instruction-set ``level`` its kernels run at,
and ``pointwise_table()``, the pointwise kernels with the parameters each reads.

Examples
--------
>>> import fastloss.api
>>> fastloss.api.POINTWISE["mse"], fastloss.api.MODES["value_and_grad"]
(0, 3)
>>> fastloss.api.strerror(fastloss.api.STATUS["FL_ELABEL"])
'a class label is neither in [0, n_classes) nor ignore_index'
"""
from cython cimport floating
from libc.math cimport isfinite
from libc.stdint cimport int64_t
from libc.string cimport memset
from cpython.pycapsule cimport PyCapsule_GetPointer

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

from fastloss._kernels.blocks cimport (VALUE, GRAD, HESS, FLAG_NONE, FLAG_NO_MEMORY,
                                       PARALLEL_MIN, fl_omp_max_threads, fl_omp_num_procs)
from fastloss._kernels.entries cimport (
    PointwiseArgs, SoftmaxArgs, LabelArgs, Rows, PointwiseEntry, SoftmaxEntry,
    WeightsEntry, LabelsEntry, NegativeEntry, FL_ENTRY_POINTWISE, FL_ENTRY_SOFTMAX,
    FL_ENTRY_WEIGHTS, FL_ENTRY_LABELS, FL_ENTRY_NEGATIVE)

from fastloss import _dispatch
from fastloss._kernels import checks as _checks

# The kernel numbers of the modes are the public ones (checked at import, below).

cdef enum:
    N_POINTWISE = 9             # public pointwise losses (FL_MSE .. FL_KL_DIV_LOG_TARGET)
    N_SOFTMAX = 3               # public dense softmax losses
    TAKES_DELTA = 1             # what a pointwise kernel reads besides input and target
    TAKES_POS_WEIGHT = 2
    COUNT_TARGET = 4            # targets must be >= 0 (checked; FL_EDATA)

# The pointwise losses in the order of the public numbers (api.pxd): the kernel's name
# (its helper closs_<name> in _kernels/pointwise_losses.pxi) and what it reads.  The table
# is checked against fastloss's loss table by tests/test_capi.py.
_POINTWISE = (
    ("mse", 0), ("mae", 0), ("pseudo_huber", TAKES_DELTA), ("bce_logits", TAKES_POS_WEIGHT),
    ("bce_probs", TAKES_POS_WEIGHT), ("huber", TAKES_DELTA), ("poisson_nll", COUNT_TARGET),
    ("kl_div", 0), ("kl_div_log", 0),
)
# The dense softmax losses in the order of the public numbers: the kernel kind's name (the
# softmax module's KINDS) and whether it is cross-entropy (class weights, smoothing).
_SOFTMAX = (("ce_probs", True), ("kl", False), ("kl_log", False))

cdef int pointwise_kernel[N_POINTWISE]      # public number -> the kernel module's number
cdef int pointwise_flags[N_POINTWISE]
cdef int softmax_kind[N_SOFTMAX]
cdef int softmax_is_ce[N_SOFTMAX]
cdef int ce_index_kind
cdef PointwiseEntry run_pointwise = NULL
cdef SoftmaxEntry run_softmax = NULL
cdef WeightsEntry weights_total = NULL
cdef LabelsEntry labels_total = NULL
cdef NegativeEntry first_negative = NULL


# ------------------------------------------------------------------ shared checks ----

cdef inline int resolve_threads(int n_threads, Py_ssize_t n_elements) noexcept nogil:
    """The Python API's rule (fastloss._validation.resolve_threads; 0 is its None) for a
    call over n_elements.  Below PARALLEL_MIN elements a call runs on the calling thread
    whatever the count (blocks.pxd, team_size), so the OpenMP queries, which cost a system
    call each (most of a small call's time), are left out there."""
    cdef int procs
    if n_threads == 1 or n_elements < PARALLEL_MIN:
        return 1
    if n_threads == 0:
        return fl_omp_max_threads()
    procs = fl_omp_num_procs()
    if n_threads == -1:
        return procs
    return n_threads if n_threads < procs else procs


cdef inline bint bad_mode(int mode, int reduction) noexcept nogil:
    return ((mode != FL_VALUE and mode != FL_VALUE_GRAD and mode != FL_GRAD_HESS)
            or (reduction != FL_MEAN and reduction != FL_SUM and reduction != FL_NONE))


cdef inline bint missing_outputs(int mode, int reduction, const void* per_sample,
                                 const void* grad, const void* hess) noexcept nogil:
    """An output the mode and reduction write is NULL."""
    return ((mode & VALUE and reduction == FL_NONE and per_sample == NULL)
            or (mode & GRAD and grad == NULL) or (mode & HESS and hess == NULL))


cdef inline bint bad_weights(const floating* w, Py_ssize_t n) noexcept nogil:
    """A parameter's weights (class weights, pos_weight) are not all finite and >= 0."""
    cdef Py_ssize_t i
    for i in range(n):
        if not (w[i] >= 0 and isfinite(w[i])):
            return True
    return False


cdef inline int sample_weights(const floating* w, Py_ssize_t n_losses, Py_ssize_t group,
                               int nt, double* total) noexcept nogil:
    """Check the sample weights (fastloss._validation.checked_weights) and set *total to
    the sum of the weights of the n_losses per-sample losses (group each), as it does."""
    cdef Py_ssize_t bad
    if group < 1 or group > <Py_ssize_t>2147483647 or n_losses % group != 0:
        return FL_EBADARG
    total[0] = weights_total(w, floating is float, n_losses // group, group, nt, NULL, &bad)
    if bad == FLAG_NO_MEMORY:
        return FL_ENOMEM
    return FL_EDATA if bad >= 0 else FL_OK


cdef double numpy_sum(const floating* v, Py_ssize_t n) noexcept nogil:
    """sum(v) in float64, in the order of NumPy's pairwise summation (numpy.sum of a
    contiguous float64 array): what the Python API's class-weight sum is."""
    cdef double r[8]
    cdef double res = 0
    cdef Py_ssize_t i, j, n2
    if n < 8:
        for i in range(n):
            res += <double>v[i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = v[j]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += <double>v[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += <double>v[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return numpy_sum(v, n2) + numpy_sum(v + n2, n - n2)


cdef inline int no_average(int mode, double* value, floating* grad, floating* hess,
                           Py_ssize_t n) noexcept nogil:
    """FL_MEAN over no valid samples: 0 and a zero gradient and Hessian, never NaN."""
    if value != NULL and mode & VALUE:
        value[0] = 0.0
    if mode & GRAD:
        memset(grad, 0, n * sizeof(floating))
    if mode & HESS:
        memset(hess, 0, n * sizeof(floating))
    return FL_OK


cdef inline int finish(int mode, int reduction, double total, double total_w,
                       Py_ssize_t flag, double* value) noexcept nogil:
    if flag == FLAG_NO_MEMORY:
        return FL_ENOMEM
    if flag != FLAG_NONE:
        return FL_ELABEL            # a label changed during the call (another thread)
    if value != NULL and mode & VALUE:
        value[0] = total / total_w if reduction == FL_MEAN else total
    return FL_OK


# ------------------------------------------------------------------ pointwise ----

cdef int pointwise(int loss, int mode, int reduction, Py_ssize_t n, const floating* input,
                   Py_ssize_t input_stride, const floating* target, Py_ssize_t target_stride,
                   const floating* sample_weight, Py_ssize_t weight_group,
                   const floating* pos_weight, Py_ssize_t pos_weight_len, double param,
                   double* value, floating* per_sample, floating* grad, floating* hess,
                   int n_threads) noexcept nogil:
    """fl_pointwise_*: the steps of fastloss._loss.Pointwise._run, in its order."""
    cdef PointwiseArgs a
    cdef int flags, status, nt
    cdef double total_w, total
    cdef Py_ssize_t flag = FLAG_NONE, bad
    if loss < 0 or loss >= N_POINTWISE or bad_mode(mode, reduction) or n < 0 or n_threads < -1:
        return FL_EBADARG
    if n > 0 and (input == NULL or target == NULL):
        return FL_EBADARG
    if missing_outputs(mode, reduction, per_sample, grad, hess):
        return FL_EBADARG
    flags = pointwise_flags[loss]
    if flags & TAKES_DELTA and not (param > 0 and isfinite(param)):
        return FL_EBADARG
    if pos_weight != NULL and (not flags & TAKES_POS_WEIGHT or pos_weight_len < 1
                               or bad_weights(pos_weight, pos_weight_len)):
        return FL_EBADARG
    nt = resolve_threads(n_threads, n)
    if sample_weight == NULL:
        total_w = n
    else:
        status = sample_weights(sample_weight, n, weight_group, nt, &total_w)
        if status != FL_OK:
            return status
    if flags & COUNT_TARGET:
        bad = first_negative(target, target_stride, floating is float, n, nt)
        if bad == FLAG_NO_MEMORY:
            return FL_ENOMEM
        if bad >= 0:
            return FL_EDATA
    if reduction == FL_MEAN and total_w == 0:
        return no_average(mode, value, grad, hess, n)
    a.kernel = pointwise_kernel[loss]
    a.mode = mode
    a.float32 = floating is float
    a.x = input
    a.x_stride = input_stride
    a.t = target
    a.t_stride = target_stride
    a.w = sample_weight
    a.w_group = weight_group if sample_weight != NULL else 1
    a.pw = pos_weight
    a.pw_period = pos_weight_len if pos_weight != NULL else 1
    a.value = per_sample if (reduction == FL_NONE and mode & VALUE) else NULL
    a.grad = grad if mode & GRAD else NULL
    a.hess = hess if mode & HESS else NULL
    a.scale = 1.0 / total_w if reduction == FL_MEAN else 1.0
    a.hess_scale = 1.0
    a.param = param if flags & TAKES_DELTA else 0.0
    a.x_half = a.t_half = a.out_half = 0
    total = run_pointwise(&a, n, nt, &flag)
    return finish(mode, reduction, total, total_w, flag, value)


cdef int fl_pointwise_f32(int loss, int mode, int reduction, Py_ssize_t n,
                          const float* input, Py_ssize_t input_stride,
                          const float* target, Py_ssize_t target_stride,
                          const float* sample_weight, Py_ssize_t weight_group,
                          const float* pos_weight, Py_ssize_t pos_weight_len, double param,
                          double* value, float* per_sample, float* grad, float* hess,
                          int n_threads) noexcept nogil:
    return pointwise(loss, mode, reduction, n, input, input_stride, target, target_stride,
                     sample_weight, weight_group, pos_weight, pos_weight_len, param, value,
                     per_sample, grad, hess, n_threads)


cdef int fl_pointwise_f64(int loss, int mode, int reduction, Py_ssize_t n,
                          const double* input, Py_ssize_t input_stride,
                          const double* target, Py_ssize_t target_stride,
                          const double* sample_weight, Py_ssize_t weight_group,
                          const double* pos_weight, Py_ssize_t pos_weight_len, double param,
                          double* value, double* per_sample, double* grad, double* hess,
                          int n_threads) noexcept nogil:
    return pointwise(loss, mode, reduction, n, input, input_stride, target, target_stride,
                     sample_weight, weight_group, pos_weight, pos_weight_len, param, value,
                     per_sample, grad, hess, n_threads)


# ------------------------------------------------------------------ softmax ----

cdef inline Rows rows(const void* data, Py_ssize_t row_stride) noexcept nogil:
    """Rows of contiguous classes, row_stride elements apart (softmax.pyx's layout)."""
    cdef Rows r
    r.data = <void*>data
    r.outer = row_stride
    r.inner = 1
    r.cls = 1
    return r


cdef int softmax(int kind, bint is_ce, bint with_labels, int mode, int reduction,
                 Py_ssize_t n_rows, Py_ssize_t n_classes, const floating* input,
                 Py_ssize_t input_row_stride, const int64_t* labels, int64_t ignore_index, const floating* target,
                 Py_ssize_t target_row_stride, int from_logits, const floating* class_weight,
                 double label_smoothing, const floating* sample_weight,
                 Py_ssize_t weight_group, double* value, floating* per_sample,
                 floating* grad, floating* hess, int n_threads) noexcept nogil:
    """fl_cross_entropy_* (with_labels) and fl_softmax_*: the steps of
    fastloss._loss.Softmax._run, in its order."""
    cdef SoftmaxArgs a
    cdef LabelArgs la
    cdef int status, nt
    cdef double total_w, total, cw_sum
    cdef Py_ssize_t flag = FLAG_NONE, bad
    if bad_mode(mode, reduction) or n_rows < 0 or n_classes < 1 or n_threads < -1:
        return FL_EBADARG
    if n_rows > 0 and (input == NULL or (labels == NULL if with_labels else target == NULL)):
        return FL_EBADARG
    if missing_outputs(mode, reduction, per_sample, grad, hess):
        return FL_EBADARG
    if n_rows > PY_SSIZE_T_MAX // n_classes:
        return FL_EBADARG
    if not is_ce and (class_weight != NULL or label_smoothing != 0):
        return FL_EBADARG
    if not (0 <= label_smoothing <= 1):
        return FL_EBADARG
    if class_weight != NULL and bad_weights(class_weight, n_classes):
        return FL_EBADARG
    cw_sum = numpy_sum(class_weight, n_classes) if class_weight != NULL else <double>n_classes
    nt = resolve_threads(n_threads, n_rows * n_classes)
    if sample_weight == NULL:
        total_w = n_rows
    else:
        status = sample_weights(sample_weight, n_rows, weight_group, nt, &total_w)
        if status != FL_OK:
            return status
    if with_labels:
        la.y = <const long long*>labels
        la.n_cls = n_classes
        la.ignore = ignore_index
        la.cw = class_weight
        la.sw = sample_weight
        la.group = weight_group if sample_weight != NULL else 1
        la.float32 = floating is float
        total_w = labels_total(&la, n_rows, nt, NULL, &bad)
        if bad == FLAG_NO_MEMORY:
            return FL_ENOMEM
        if bad >= 0:
            return FL_ELABEL
    if reduction == FL_MEAN and total_w == 0:
        return no_average(mode, value, grad, hess, n_rows * n_classes)
    a.kind = kind
    a.mode = mode
    a.float32 = floating is float
    a.from_logits = from_logits != 0
    a.n_cls = n_classes
    a.x = rows(input, input_row_stride)
    a.t = rows(target if not with_labels else NULL, target_row_stride)
    a.g = rows(grad if mode & GRAD else NULL, n_classes)
    a.hess = hess if mode & HESS else NULL
    a.y = <const long long*>labels
    a.ignore_index = ignore_index
    a.cw = class_weight
    a.cw_sum = cw_sum
    a.sw = sample_weight
    a.sw_group = weight_group if sample_weight != NULL else 1
    a.value = per_sample if (reduction == FL_NONE and mode & VALUE) else NULL
    a.scale = 1.0 / total_w if reduction == FL_MEAN else 1.0
    a.smoothing = label_smoothing
    a.hess_scale = 1.0
    a.out_f32 = False
    a.x_half = a.out_half = 0
    total = run_softmax(&a, n_rows, nt, &flag)
    return finish(mode, reduction, total, total_w, flag, value)


cdef int fl_cross_entropy_f32(int mode, int reduction, Py_ssize_t n_rows,
                              Py_ssize_t n_classes, const float* input,
                              Py_ssize_t input_row_stride, const int64_t* labels,
                              int from_logits, const float* class_weight,
                              int64_t ignore_index, double label_smoothing,
                              const float* sample_weight, Py_ssize_t weight_group,
                              double* value, float* per_sample, float* grad, float* hess,
                              int n_threads) noexcept nogil:
    return softmax(ce_index_kind, True, True, mode, reduction, n_rows, n_classes, input,
                   input_row_stride, labels, ignore_index, NULL, 0, from_logits, class_weight,
                   label_smoothing, sample_weight, weight_group, value, per_sample, grad, hess,
                   n_threads)


cdef int fl_cross_entropy_f64(int mode, int reduction, Py_ssize_t n_rows,
                              Py_ssize_t n_classes, const double* input,
                              Py_ssize_t input_row_stride, const int64_t* labels,
                              int from_logits, const double* class_weight,
                              int64_t ignore_index, double label_smoothing,
                              const double* sample_weight, Py_ssize_t weight_group,
                              double* value, double* per_sample, double* grad, double* hess,
                              int n_threads) noexcept nogil:
    return softmax(ce_index_kind, True, True, mode, reduction, n_rows, n_classes, input,
                   input_row_stride, labels, ignore_index, NULL, 0, from_logits, class_weight,
                   label_smoothing, sample_weight, weight_group, value, per_sample, grad, hess,
                   n_threads)


cdef int fl_softmax_f32(int loss, int mode, int reduction, Py_ssize_t n_rows,
                        Py_ssize_t n_classes, const float* input, Py_ssize_t input_row_stride,
                        const float* target, Py_ssize_t target_row_stride, int from_logits,
                        const float* class_weight, double label_smoothing,
                        const float* sample_weight, Py_ssize_t weight_group,
                        double* value, float* per_sample, float* grad, float* hess,
                        int n_threads) noexcept nogil:
    if loss < 0 or loss >= N_SOFTMAX:
        return FL_EBADARG
    return softmax(softmax_kind[loss], softmax_is_ce[loss], False, mode, reduction, n_rows,
                   n_classes, input, input_row_stride, NULL, 0, target, target_row_stride,
                   from_logits, class_weight, label_smoothing, sample_weight, weight_group,
                   value, per_sample, grad, hess, n_threads)


cdef int fl_softmax_f64(int loss, int mode, int reduction, Py_ssize_t n_rows,
                        Py_ssize_t n_classes, const double* input, Py_ssize_t input_row_stride,
                        const double* target, Py_ssize_t target_row_stride, int from_logits,
                        const double* class_weight, double label_smoothing,
                        const double* sample_weight, Py_ssize_t weight_group,
                        double* value, double* per_sample, double* grad, double* hess,
                        int n_threads) noexcept nogil:
    if loss < 0 or loss >= N_SOFTMAX:
        return FL_EBADARG
    return softmax(softmax_kind[loss], softmax_is_ce[loss], False, mode, reduction, n_rows,
                   n_classes, input, input_row_stride, NULL, 0, target, target_row_stride,
                   from_logits, class_weight, label_smoothing, sample_weight, weight_group,
                   value, per_sample, grad, hess, n_threads)


cdef const char* fl_strerror(int status) noexcept nogil:
    if status == FL_OK:
        return "success"
    if status == FL_EBADARG:
        return "bad argument (unknown loss, mode or reduction, n < 0, a NULL array that " \
               "is needed, or a parameter out of range)"
    if status == FL_ELABEL:
        return "a class label is neither in [0, n_classes) nor ignore_index"
    if status == FL_EDATA:
        return "data outside the loss's domain (a sample weight negative or not finite, " \
               "or a negative count target)"
    if status == FL_ENOMEM:
        return "out of memory"
    return "unknown status"


# ------------------------------------------------------------------ binding ----

cdef void* entry(dict entries, str name, const char* capsule_name) except NULL:
    """The C function pointer in a kernel module's ENTRIES capsule; ValueError if the
    capsule's name (its version, entries.pxd) is not the one this module was built for."""
    return PyCapsule_GetPointer(entries[name], capsule_name)


def _bind(kernels):
    """Take the kernels' entry points from `kernels` (a fastloss._dispatch level's
    namespace) and check that every public loss has its kernel there."""
    global run_pointwise, run_softmax, weights_total, labels_total, first_negative
    global ce_index_kind
    numbers = kernels.pointwise.KERNELS
    kinds = kernels.softmax.KINDS
    if len(_POINTWISE) != N_POINTWISE or len(_SOFTMAX) != N_SOFTMAX:
        raise ImportError("fastloss.api: N_POINTWISE / N_SOFTMAX do not match the tables")
    for i, (name, flags) in enumerate(_POINTWISE):
        if name not in numbers:
            raise ImportError(f"fastloss.api: kernel {name!r} is missing from "
                              f"{kernels.pointwise.__name__}")
        pointwise_kernel[i] = numbers[name]
        pointwise_flags[i] = flags
    for i, (name, is_ce) in enumerate(_SOFTMAX):
        softmax_kind[i] = kinds[name]
        softmax_is_ce[i] = is_ce
    ce_index_kind = kinds["ce_index"]
    run_pointwise = <PointwiseEntry>entry(kernels.pointwise.ENTRIES, "pointwise",
                                          FL_ENTRY_POINTWISE)
    run_softmax = <SoftmaxEntry>entry(kernels.softmax.ENTRIES, "softmax", FL_ENTRY_SOFTMAX)
    weights_total = <WeightsEntry>entry(_checks.ENTRIES, "weights", FL_ENTRY_WEIGHTS)
    labels_total = <LabelsEntry>entry(_checks.ENTRIES, "labels", FL_ENTRY_LABELS)
    first_negative = <NegativeEntry>entry(_checks.ENTRIES, "first_negative", FL_ENTRY_NEGATIVE)


__all__ = ["API_VERSION", "level", "POINTWISE", "SOFTMAX", "MODES", "REDUCTIONS", "STATUS",
           "pointwise_table", "strerror"]

if (VALUE, VALUE | GRAD, GRAD | HESS) != (FL_VALUE, FL_VALUE_GRAD, FL_GRAD_HESS):
    raise ImportError("fastloss.api: the kernels' mode numbers are not the public ones")
_bind(_dispatch.kernels)

#: The instruction-set level whose kernels the C API runs (fastloss._dispatch's choice at
#: import; FASTLOSS_SIMD selects a lower one).
level = _dispatch.kernels.level

#: API version of the declarations in fastloss/api.pxd.
API_VERSION = FL_API_VERSION
#: Pointwise kernels (their helpers' names, as the Python loss classes name them) -> the
#: public number of fl_pointwise_* (FL_MSE, ...).
POINTWISE = {name: i for i, (name, _) in enumerate(_POINTWISE)}
#: Dense-target softmax kernels (their kinds' names) -> the public number of fl_softmax_*.
SOFTMAX = {name: i for i, (name, _) in enumerate(_SOFTMAX)}
#: Modes (what a call computes) -> FL_VALUE, FL_VALUE_GRAD, FL_GRAD_HESS.
MODES = {"value": FL_VALUE, "value_and_grad": FL_VALUE_GRAD, "grad_hess": FL_GRAD_HESS}
#: Reductions -> FL_MEAN, FL_SUM, FL_NONE.
REDUCTIONS = {"mean": FL_MEAN, "sum": FL_SUM, "none": FL_NONE}
#: Status codes, by their names in fastloss/api.pxd.
STATUS = {"FL_OK": FL_OK, "FL_EBADARG": FL_EBADARG, "FL_ELABEL": FL_ELABEL,
          "FL_EDATA": FL_EDATA, "FL_ENOMEM": FL_ENOMEM}


def pointwise_table():
    """The pointwise kernels of the C API: a list of dicts with the kernel's ``name``, its
    public number ``id``, and whether it reads ``delta`` (param), ``pos_weight``, and
    requires ``count`` targets (>= 0).

    Examples
    --------
    >>> import fastloss.api
    >>> fastloss.api.pointwise_table()[2]
    {'name': 'pseudo_huber', 'id': 2, 'delta': True, 'pos_weight': False, 'count': False}
    """
    return [{"name": name, "id": i, "delta": bool(flags & TAKES_DELTA),
             "pos_weight": bool(flags & TAKES_POS_WEIGHT), "count": bool(flags & COUNT_TARGET)}
            for i, (name, flags) in enumerate(_POINTWISE)]


def strerror(int status):
    """``fl_strerror(status)``: what a status code means, as a Python string."""
    return fl_strerror(status).decode()
