# cython: language_level=3, boundscheck=False, wraparound=False
"""Calling fastloss's kernels from Cython, without Python in the loop (docs/capi.rst).

Three uses of fastloss's C API (fastloss/api.pxd):

* mse_value_and_grad: one call, an error status turned into a Python exception;
* multiclass_objective: a gradient-boosting objective for K classes (cross-entropy
  with labels), its gradient and Hessian computed in batches of rows from the threads
  of a prange, each call on its calling thread (n_threads=1);
* weighted_pseudo_huber: float32 data with one sample weight per row of an (N, K) array,
  and a loss parameter.
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t

from fastloss.api cimport (FL_OK, FL_VALUE_GRAD, FL_GRAD_HESS, FL_MEAN, FL_SUM, FL_MSE,
                           FL_PSEUDO_HUBER, fl_pointwise_f32, fl_pointwise_f64,
                           fl_cross_entropy_f64, fl_strerror)


cdef int check(int status) except -1:
    """Turn a fastloss status code into a Python exception."""
    if status != FL_OK:
        raise ValueError(f"fastloss: {fl_strerror(status).decode()}")
    return 0


def mse_value_and_grad(const double[::1] x, const double[::1] t, double[::1] grad):
    """Mean squared error of x against t; its gradient goes to grad."""
    cdef double value
    cdef int status
    if t.shape[0] != x.shape[0] or grad.shape[0] != x.shape[0]:
        raise ValueError("x, t and grad must have the same length")
    with nogil:
        status = fl_pointwise_f64(FL_MSE, FL_VALUE_GRAD, FL_MEAN, x.shape[0],
                                  &x[0], 1,             # input, stride in elements
                                  &t[0], 1,             # target
                                  NULL, 1,              # no sample weights
                                  NULL, 0,              # no pos_weight (a BCE parameter)
                                  0.0,                  # no loss parameter
                                  &value, NULL,         # the mean; no per-sample losses
                                  &grad[0], NULL,       # gradient; no Hessian
                                  0)                    # threads: OpenMP's default
    check(status)
    return value


def multiclass_objective(const double[:, ::1] logits, const int64_t[::1] labels,
                         double[:, ::1] grad, double[:, ::1] hess, Py_ssize_t batch=4096,
                         int n_threads=4):
    """Gradient and Hessian diagonal of the summed cross-entropy (a boosting objective),
    batch rows per call, the batches spread over the threads of a prange."""
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1]
    cdef Py_ssize_t n_batches = (n + batch - 1) // batch
    cdef Py_ssize_t b, lo, rows
    cdef int status = FL_OK, s
    if labels.shape[0] != n or grad.shape[0] != n or hess.shape[0] != n \
            or grad.shape[1] != k or hess.shape[1] != k:
        raise ValueError("labels, grad and hess must match the logits' rows and classes")
    if n == 0:
        return
    for b in prange(n_batches, nogil=True, num_threads=n_threads):
        lo = b * batch
        rows = n - lo if n - lo < batch else batch
        s = fl_cross_entropy_f64(FL_GRAD_HESS, FL_SUM, rows, k,
                                 &logits[lo, 0], k,     # rows of k logits, k apart
                                 &labels[lo],
                                 1,                     # from logits
                                 NULL, -100, 0.0,       # no class weights, ignore_index,
                                                        # no label smoothing
                                 NULL, 1,               # no sample weights
                                 NULL, NULL,            # no value (grad_hess computes none)
                                 &grad[lo, 0], &hess[lo, 0],
                                 1)                     # on this prange thread
        if s != FL_OK:
            status = s                                  # any one failure is reported
    check(status)


def weighted_pseudo_huber(const float[:, ::1] x, const float[:, ::1] t,
                          const float[::1] row_weight, double delta, float[:, ::1] grad):
    """Pseudo-Huber loss of float32 data, one weight per row, "mean" reduction."""
    cdef Py_ssize_t n = x.shape[0], k = x.shape[1]
    cdef double value
    cdef int status
    if t.shape[0] != n or t.shape[1] != k or row_weight.shape[0] != n \
            or grad.shape[0] != n or grad.shape[1] != k:
        raise ValueError("shapes do not match")
    if n * k == 0:
        return 0.0
    with nogil:
        status = fl_pointwise_f32(FL_PSEUDO_HUBER, FL_VALUE_GRAD, FL_MEAN, n * k,
                                  &x[0, 0], 1, &t[0, 0], 1,
                                  &row_weight[0], k,    # one weight per k elements
                                  NULL, 0, delta, &value, NULL, &grad[0, 0], NULL, 1)
    check(status)
    return value
