# fastloss's C-level API, for Cython and C extensions (docs/capi.rst):
#
#     from fastloss.api cimport fl_pointwise_f64, FL_MSE, FL_VALUE_GRAD, FL_MEAN, FL_OK
#
# Every function is `noexcept nogil`: it runs the same dispatched (SIMD-level) kernels as
# the Python API, with the same validation and the same arithmetic, so its results equal
# the Python API's bit for bit; it never raises and returns a status code (FL_OK or one
# of the errors below) instead.  Nothing is written to an output unless the status is
# FL_OK (one exception: labels that another thread changes during the call give
# FL_ELABEL after the outputs were written).  The functions are exported through Cython's
# C-API capsules (fastloss.api.__pyx_capi__): a downstream module cimports them and needs
# no linking and no header, only fastloss installed when it is compiled and when it runs.
#
# This file is an ABI: the functions' signatures (their capsule names) and the constants
# below never change within API version 1 (tests/test_capi.py freezes them).  New
# functions and new constants may be added; nothing is renumbered.
#
# Conventions shared by every function
# ------------------------------------
# * Lengths and strides are counted in elements (not bytes).  A stride may be 0 or
#   negative (then the pointer is the first element read).  Every other array is
#   contiguous: sample weights, pos_weight, class weights, labels and every output.
# * mode: FL_VALUE (the loss), FL_VALUE_GRAD (the loss and its gradient) or
#   FL_GRAD_HESS (gradient and Hessian diagonal; no loss).
# * reduction: FL_MEAN (sum(w l) / sum(w)), FL_SUM (sum(w l)) or FL_NONE (per-sample
#   losses w l).  The gradient and Hessian are those of the reduced loss (FL_MEAN includes
#   the 1 / sum(w) factor).  FL_MEAN over no valid samples gives 0 and a zero gradient.
# * value (may be NULL): receives the reduced loss (FL_MEAN, FL_SUM), or with FL_NONE the
#   sum of the per-sample losses.  per_sample: with FL_NONE and a mode that computes the
#   loss, receives the per-sample losses (required then, else unused).  grad, hess: the
#   mode's outputs, of the input's size (required when the mode computes them, else
#   unused).  Outputs must not overlap the inputs or each other.
# * sample_weight (or NULL): finite weights >= 0, one per weight_group consecutive
#   per-sample losses (weight_group = 1: one per loss; an (N, K) array with one weight per
#   row: K); the number of per-sample losses must be a multiple of weight_group.
# * n_threads: 1 runs on the calling thread (for callers that parallelize themselves,
#   e.g. inside a prange); k > 1 uses up to k threads (at most the number of cores); 0
#   follows OpenMP's default (OMP_NUM_THREADS); -1 uses every core.  Small calls (below
#   32768 elements) always run on the calling thread.  Results are bitwise identical for
#   every thread count.
# * float32 functions (_f32) compute in float32 with float64 sums, as the Python API does
#   for float32 arrays; the reduced value is a double in both.
from libc.stdint cimport int64_t

cdef enum:
    FL_API_VERSION = 1

# Status codes
cdef enum:
    FL_OK = 0
    FL_EBADARG = 1      # a bad argument: an unknown loss, mode or reduction; n < 0; a NULL
                        # array that is needed; a parameter out of its range (delta,
                        # label_smoothing, class weights or pos_weight negative or not
                        # finite, ...); a size that is not a multiple of weight_group
    FL_ELABEL = 2       # a class label neither in [0, n_classes) nor ignore_index
    FL_EDATA = 3        # data outside the loss's domain: a sample weight negative, NaN or
                        # infinite; a negative count target (FL_POISSON_NLL)
    FL_ENOMEM = 4       # no memory for the kernel's block sums or scratch

# mode
cdef enum:
    FL_VALUE = 1
    FL_VALUE_GRAD = 3
    FL_GRAD_HESS = 6

# reduction
cdef enum:
    FL_MEAN = 0
    FL_SUM = 1
    FL_NONE = 2

# Pointwise losses (fl_pointwise_*): one per kernel of fastloss's loss table; the Python
# class and its parameters that select each are given.  fastloss.api.POINTWISE maps the
# kernels' names to these numbers.
cdef enum:
    FL_MSE = 0                      # MSE
    FL_MAE = 1                      # MAE
    FL_PSEUDO_HUBER = 2             # PseudoHuber(delta=param)
    FL_BCE_LOGITS = 3               # BinaryCrossEntropy(from_logits=True, pos_weight)
    FL_BCE_PROBS = 4                # BinaryCrossEntropy(from_logits=False, pos_weight)
    FL_HUBER = 5                    # Huber(delta=param)
    FL_POISSON_NLL = 6              # PoissonNLL(); targets are counts >= 0
    FL_KL_DIV = 7                   # KLDiv(log_target=False)
    FL_KL_DIV_LOG_TARGET = 8        # KLDiv(log_target=True)

# Losses over the classes of a row with dense targets (fl_softmax_*).  fastloss.api.SOFTMAX
# maps their names to these numbers.
cdef enum:
    FL_CROSS_ENTROPY_PROBS = 0      # CrossEntropy with probability targets
    FL_KL_DIVERGENCE = 1            # KLDivergence(log_target=False)
    FL_KL_DIVERGENCE_LOG_TARGET = 2 # KLDivergence(log_target=True)


# Pointwise loss of n elements: l(input[i], target[i]) (element i of input is
# input[i * input_stride]).  param: delta of FL_PSEUDO_HUBER and FL_HUBER (finite, > 0;
# ignored by the others).  pos_weight (FL_BCE_*; must be NULL for the others): NULL, or
# pos_weight_len finite weights >= 0 broadcast over the last axis (element i uses
# pos_weight[i % pos_weight_len]: length 1, or the last axis's length).
cdef int fl_pointwise_f32(int loss, int mode, int reduction, Py_ssize_t n,
                          const float* input, Py_ssize_t input_stride,
                          const float* target, Py_ssize_t target_stride,
                          const float* sample_weight, Py_ssize_t weight_group,
                          const float* pos_weight, Py_ssize_t pos_weight_len, double param,
                          double* value, float* per_sample, float* grad, float* hess,
                          int n_threads) noexcept nogil
cdef int fl_pointwise_f64(int loss, int mode, int reduction, Py_ssize_t n,
                          const double* input, Py_ssize_t input_stride,
                          const double* target, Py_ssize_t target_stride,
                          const double* sample_weight, Py_ssize_t weight_group,
                          const double* pos_weight, Py_ssize_t pos_weight_len, double param,
                          double* value, double* per_sample, double* grad, double* hess,
                          int n_threads) noexcept nogil

# CrossEntropy with integer class labels over n_rows rows of n_classes (>= 1) values: row r
# is input[r * input_row_stride + c], c < n_classes (logits, or probabilities when
# from_logits is 0); labels[r] in [0, n_classes) or ignore_index (the row then counts
# for nothing).  class_weight: NULL or n_classes finite weights >= 0.  label_smoothing in
# [0, 1].  Per-sample losses are per row; grad and hess are n_rows * n_classes values,
# row by row.  FL_MEAN divides by the class-weighted count of the rows not ignored.
cdef int fl_cross_entropy_f32(int mode, int reduction, Py_ssize_t n_rows,
                              Py_ssize_t n_classes, const float* input,
                              Py_ssize_t input_row_stride, const int64_t* labels,
                              int from_logits, const float* class_weight,
                              int64_t ignore_index, double label_smoothing,
                              const float* sample_weight, Py_ssize_t weight_group,
                              double* value, float* per_sample, float* grad, float* hess,
                              int n_threads) noexcept nogil
cdef int fl_cross_entropy_f64(int mode, int reduction, Py_ssize_t n_rows,
                              Py_ssize_t n_classes, const double* input,
                              Py_ssize_t input_row_stride, const int64_t* labels,
                              int from_logits, const double* class_weight,
                              int64_t ignore_index, double label_smoothing,
                              const double* sample_weight, Py_ssize_t weight_group,
                              double* value, double* per_sample, double* grad, double* hess,
                              int n_threads) noexcept nogil

# A loss over the classes of each row with dense targets (FL_CROSS_ENTROPY_PROBS,
# FL_KL_DIVERGENCE, FL_KL_DIVERGENCE_LOG_TARGET): rows as for fl_cross_entropy_*, the
# target laid out like the input with its own row stride.  class_weight and
# label_smoothing are cross-entropy's (NULL and 0 for the KL divergences).  FL_MEAN
# divides by the number of rows (or the sum of the sample weights).
cdef int fl_softmax_f32(int loss, int mode, int reduction, Py_ssize_t n_rows,
                        Py_ssize_t n_classes, const float* input, Py_ssize_t input_row_stride,
                        const float* target, Py_ssize_t target_row_stride, int from_logits,
                        const float* class_weight, double label_smoothing,
                        const float* sample_weight, Py_ssize_t weight_group,
                        double* value, float* per_sample, float* grad, float* hess,
                        int n_threads) noexcept nogil
cdef int fl_softmax_f64(int loss, int mode, int reduction, Py_ssize_t n_rows,
                        Py_ssize_t n_classes, const double* input, Py_ssize_t input_row_stride,
                        const double* target, Py_ssize_t target_row_stride, int from_logits,
                        const double* class_weight, double label_smoothing,
                        const double* sample_weight, Py_ssize_t weight_group,
                        double* value, double* per_sample, double* grad, double* hess,
                        int n_threads) noexcept nogil

# A static, NUL-terminated description of a status code ("unknown status" for others).
cdef const char* fl_strerror(int status) noexcept nogil
