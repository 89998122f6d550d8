# cython: language_level=3, boundscheck=False, wraparound=False
"""A downstream extension of fastloss's C API, as another compiled library writes one:
tests/test_capi.py builds it against the installed fastloss (Cython + setuptools, no
build isolation) and compares what it computes with the Python API, bit for bit.

It cimports fastloss.api and nothing else of fastloss, and links nothing: the functions
come from fastloss.api's capsules when this module is imported.  Arrays are passed as
addresses (``ndarray.ctypes.data``, 0 for NULL) so that the tests can give every argument,
NULL and odd strides included; ``prange_*`` make the calls from the threads of a
``prange``, one call per batch, each with n_threads=1 (on its calling thread).
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uintptr_t

from fastloss.api cimport (
    FL_API_VERSION, FL_OK, FL_EBADARG, FL_ELABEL, FL_EDATA, FL_ENOMEM,
    FL_VALUE, FL_VALUE_GRAD, FL_GRAD_HESS, FL_MEAN, FL_SUM, FL_NONE,
    FL_MSE, FL_MAE, FL_PSEUDO_HUBER, FL_BCE_LOGITS, FL_BCE_PROBS, FL_HUBER, FL_POISSON_NLL,
    FL_KL_DIV, FL_KL_DIV_LOG_TARGET,
    FL_CROSS_ENTROPY_PROBS, FL_KL_DIVERGENCE, FL_KL_DIVERGENCE_LOG_TARGET,
    fl_pointwise_f32, fl_pointwise_f64, fl_cross_entropy_f32, fl_cross_entropy_f64,
    fl_softmax_f32, fl_softmax_f64, fl_strerror)

#: The constants as this module was compiled with them (the test compares them with
#: fastloss.api's Python dicts).
CONSTANTS = dict(
    FL_API_VERSION=FL_API_VERSION, FL_OK=FL_OK, FL_EBADARG=FL_EBADARG, FL_ELABEL=FL_ELABEL,
    FL_EDATA=FL_EDATA, FL_ENOMEM=FL_ENOMEM, FL_VALUE=FL_VALUE, FL_VALUE_GRAD=FL_VALUE_GRAD,
    FL_GRAD_HESS=FL_GRAD_HESS, FL_MEAN=FL_MEAN, FL_SUM=FL_SUM, FL_NONE=FL_NONE,
    FL_MSE=FL_MSE, FL_MAE=FL_MAE, FL_PSEUDO_HUBER=FL_PSEUDO_HUBER,
    FL_BCE_LOGITS=FL_BCE_LOGITS, FL_BCE_PROBS=FL_BCE_PROBS, FL_HUBER=FL_HUBER,
    FL_POISSON_NLL=FL_POISSON_NLL, FL_KL_DIV=FL_KL_DIV,
    FL_KL_DIV_LOG_TARGET=FL_KL_DIV_LOG_TARGET,
    FL_CROSS_ENTROPY_PROBS=FL_CROSS_ENTROPY_PROBS, FL_KL_DIVERGENCE=FL_KL_DIVERGENCE,
    FL_KL_DIVERGENCE_LOG_TARGET=FL_KL_DIVERGENCE_LOG_TARGET)


def strerror(int status):
    return fl_strerror(status).decode()


# ------------------------------------------------------------------ one call each ----

def pointwise(bint f32, int loss, int mode, int reduction, Py_ssize_t n, uintptr_t x,
              Py_ssize_t xs, uintptr_t t, Py_ssize_t ts, uintptr_t w, Py_ssize_t group,
              uintptr_t pw, Py_ssize_t pw_len, double param, uintptr_t value,
              uintptr_t per_sample, uintptr_t grad, uintptr_t hess, int n_threads):
    cdef int status
    with nogil:
        if f32:
            status = fl_pointwise_f32(loss, mode, reduction, n, <const float*>x, xs,
                                      <const float*>t, ts, <const float*>w, group,
                                      <const float*>pw, pw_len, param, <double*>value,
                                      <float*>per_sample, <float*>grad, <float*>hess,
                                      n_threads)
        else:
            status = fl_pointwise_f64(loss, mode, reduction, n, <const double*>x, xs,
                                      <const double*>t, ts, <const double*>w, group,
                                      <const double*>pw, pw_len, param, <double*>value,
                                      <double*>per_sample, <double*>grad, <double*>hess,
                                      n_threads)
    return status


def cross_entropy(bint f32, int mode, int reduction, Py_ssize_t n_rows, Py_ssize_t n_cls,
                  uintptr_t x, Py_ssize_t x_row, uintptr_t labels, int from_logits,
                  uintptr_t cw, int64_t ignore_index, double smoothing, uintptr_t w,
                  Py_ssize_t group, uintptr_t value, uintptr_t per_sample, uintptr_t grad,
                  uintptr_t hess, int n_threads):
    cdef int status
    with nogil:
        if f32:
            status = fl_cross_entropy_f32(mode, reduction, n_rows, n_cls, <const float*>x,
                                          x_row, <const int64_t*>labels, from_logits,
                                          <const float*>cw, ignore_index, smoothing,
                                          <const float*>w, group, <double*>value,
                                          <float*>per_sample, <float*>grad, <float*>hess,
                                          n_threads)
        else:
            status = fl_cross_entropy_f64(mode, reduction, n_rows, n_cls, <const double*>x,
                                          x_row, <const int64_t*>labels, from_logits,
                                          <const double*>cw, ignore_index, smoothing,
                                          <const double*>w, group, <double*>value,
                                          <double*>per_sample, <double*>grad,
                                          <double*>hess, n_threads)
    return status


def softmax(bint f32, int loss, int mode, int reduction, Py_ssize_t n_rows, Py_ssize_t n_cls,
            uintptr_t x, Py_ssize_t x_row, uintptr_t t, Py_ssize_t t_row, int from_logits,
            uintptr_t cw, double smoothing, uintptr_t w, Py_ssize_t group, uintptr_t value,
            uintptr_t per_sample, uintptr_t grad, uintptr_t hess, int n_threads):
    cdef int status
    with nogil:
        if f32:
            status = fl_softmax_f32(loss, mode, reduction, n_rows, n_cls, <const float*>x,
                                    x_row, <const float*>t, t_row, from_logits,
                                    <const float*>cw, smoothing, <const float*>w, group,
                                    <double*>value, <float*>per_sample, <float*>grad,
                                    <float*>hess, n_threads)
        else:
            status = fl_softmax_f64(loss, mode, reduction, n_rows, n_cls, <const double*>x,
                                    x_row, <const double*>t, t_row, from_logits,
                                    <const double*>cw, smoothing, <const double*>w, group,
                                    <double*>value, <double*>per_sample, <double*>grad,
                                    <double*>hess, n_threads)
    return status


# ------------------------------------------------------------------ from a prange ----
# n_batches calls over consecutive batches of `batch` elements (rows), one per prange
# iteration: batch b reads elements b * batch ..., writes its gradient there and its
# reduced value to values[b] and its status to status[b].  Inputs are contiguous.

def prange_pointwise(bint f32, int loss, int mode, int reduction, Py_ssize_t n_batches,
                     Py_ssize_t batch, uintptr_t x, uintptr_t t, double param,
                     uintptr_t values, uintptr_t grad, uintptr_t hess, uintptr_t status,
                     int n_threads):
    cdef Py_ssize_t b
    cdef double* v = <double*>values
    cdef int* st = <int*>status
    for b in prange(n_batches, nogil=True, num_threads=n_threads, schedule="dynamic"):
        if f32:
            st[b] = fl_pointwise_f32(loss, mode, reduction, batch,
                                     <const float*>x + b * batch, 1,
                                     <const float*>t + b * batch, 1, NULL, 1, NULL, 0,
                                     param, v + b, NULL, <float*>grad + b * batch,
                                     <float*>hess + b * batch, 1)
        else:
            st[b] = fl_pointwise_f64(loss, mode, reduction, batch,
                                     <const double*>x + b * batch, 1,
                                     <const double*>t + b * batch, 1, NULL, 1, NULL, 0,
                                     param, v + b, NULL, <double*>grad + b * batch,
                                     <double*>hess + b * batch, 1)


def prange_cross_entropy(bint f32, int mode, int reduction, Py_ssize_t n_batches,
                         Py_ssize_t batch, Py_ssize_t n_cls, uintptr_t x, uintptr_t labels,
                         double smoothing, uintptr_t values, uintptr_t grad, uintptr_t hess,
                         uintptr_t status, int n_threads):
    cdef Py_ssize_t b
    cdef Py_ssize_t k = batch * n_cls
    cdef double* v = <double*>values
    cdef int* st = <int*>status
    for b in prange(n_batches, nogil=True, num_threads=n_threads, schedule="dynamic"):
        if f32:
            st[b] = fl_cross_entropy_f32(mode, reduction, batch, n_cls,
                                         <const float*>x + b * k, n_cls,
                                         <const int64_t*>labels + b * batch, 1, NULL, -100,
                                         smoothing, NULL, 1, v + b, NULL,
                                         <float*>grad + b * k, <float*>hess + b * k, 1)
        else:
            st[b] = fl_cross_entropy_f64(mode, reduction, batch, n_cls,
                                         <const double*>x + b * k, n_cls,
                                         <const int64_t*>labels + b * batch, 1, NULL, -100,
                                         smoothing, NULL, 1, v + b, NULL,
                                         <double*>grad + b * k, <double*>hess + b * k, 1)


def prange_softmax(bint f32, int loss, int mode, int reduction, Py_ssize_t n_batches,
                   Py_ssize_t batch, Py_ssize_t n_cls, uintptr_t x, uintptr_t t,
                   uintptr_t values, uintptr_t grad, uintptr_t hess, uintptr_t status,
                   int n_threads):
    cdef Py_ssize_t b
    cdef Py_ssize_t k = batch * n_cls
    cdef double* v = <double*>values
    cdef int* st = <int*>status
    for b in prange(n_batches, nogil=True, num_threads=n_threads, schedule="dynamic"):
        if f32:
            st[b] = fl_softmax_f32(loss, mode, reduction, batch, n_cls,
                                   <const float*>x + b * k, n_cls, <const float*>t + b * k,
                                   n_cls, 1, NULL, 0, NULL, 1, v + b, NULL,
                                   <float*>grad + b * k, <float*>hess + b * k, 1)
        else:
            st[b] = fl_softmax_f64(loss, mode, reduction, batch, n_cls,
                                   <const double*>x + b * k, n_cls, <const double*>t + b * k,
                                   n_cls, 1, NULL, 0, NULL, 1, v + b, NULL,
                                   <double*>grad + b * k, <double*>hess + b * k, 1)
