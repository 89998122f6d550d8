# The kernels' C entry points, as fastloss.api (the public C API, src/fastloss/api.pyx)
# calls them: what each kernel module hands over as a PyCapsule (its module attribute
# ENTRIES, {name: capsule}), and the argument structs they read.
#
# The kernel families are compiled once per instruction-set level under other module names
# (pointwise_avx2, ...), so their C functions cannot be cimported by name; fastloss.api
# takes the pointers from the capsules of the level fastloss._dispatch chose, at import.
# Every Python-facing entry of the same module fills the same structs and runs the same
# blocks, so the C API computes what the Python API computes, bit for bit.
#
# Internal: this file is not shipped (the public declarations are fastloss/api.pxd).  A
# change here changes ENTRY_VERSION below, which names the capsules, so that a mismatch
# between fastloss.api and a kernel module fails at import instead of at a call.
from .blocks cimport fl_exact

cdef extern from *:
    """
    #define FL_ENTRY_POINTWISE "fastloss._kernels.entries.pointwise/3"
    #define FL_ENTRY_SOFTMAX "fastloss._kernels.entries.softmax/2"
    #define FL_ENTRY_WEIGHTS "fastloss._kernels.entries.weights/1"
    #define FL_ENTRY_LABELS "fastloss._kernels.entries.labels/1"
    #define FL_ENTRY_NEGATIVE "fastloss._kernels.entries.first_negative/1"
    """
    const char* FL_ENTRY_POINTWISE      # capsule names (and so the entries' versions)
    const char* FL_ENTRY_SOFTMAX
    const char* FL_ENTRY_WEIGHTS
    const char* FL_ENTRY_LABELS
    const char* FL_ENTRY_NEGATIVE


# ------------------------------------------------------------------ pointwise.pyx ----

cdef struct PointwiseArgs:
    int kernel                  # a value of the module's KERNELS
    int mode                    # VALUE, VALUE | GRAD or GRAD | HESS
    bint float32                # the data are float32 (else float64)
    const void* x               # input, 1-D with stride x_stride (elements)
    Py_ssize_t x_stride
    const void* t               # target, likewise
    Py_ssize_t t_stride
    const void* w               # sample weights or NULL; element i uses w[i // w_group]
    Py_ssize_t w_group
    const void* pw              # BCE pos_weight or NULL; element i uses pw[i % pw_period]
    Py_ssize_t pw_period
    void* value                 # per-element weighted losses ("none") or NULL
    void* grad                  # gradient or NULL
    void* hess                  # Hessian diagonal or NULL
    double scale                # factor of grad and hess: 1 / sum(w) for "mean", else 1
    double hess_scale           # factor of the Hessian alone (boosting conventions), 1
    double param                # the loss's parameter (Pseudo-Huber's delta), or 0
    int x_half                  # x holds float16 / bfloat16 bits (half.h's FL_HALF_*),
    int t_half                  # t likewise, widened to float32 (float32 is then set); or 0
    int out_half                # grad and hess hold float16 / bfloat16 (half.h's FL_HALF_*),
                                # rounded from the float32 results as stored; or 0

# sum of w l over n elements, on at most n_threads threads; *flag as blocked_sum sets it
ctypedef double (*PointwiseEntry)(const PointwiseArgs* a, Py_ssize_t n, int n_threads,
                                  Py_ssize_t* flag) noexcept nogil


# ------------------------------------------------------------------ softmax.pyx ----

# Where row r's class c is, in elements from `data`: (r // inner) * outer + r % inner +
# c * cls.  Classes on the last axis: inner = 1, cls = 1, outer = the row stride.  Classes
# on the middle axis of an (N, C, S) layout: inner = S, cls = the class axis's stride
# (S when contiguous), outer = the stride of N; the S rows of one N are adjacent.
cdef struct Rows:
    void* data                  # const for the input and targets
    Py_ssize_t outer
    Py_ssize_t inner
    Py_ssize_t cls


cdef struct SoftmaxArgs:
    int kind
    int mode                    # VALUE, VALUE | GRAD or GRAD | HESS
    bint float32                # the data are float32 (else float64)
    bint from_logits
    Py_ssize_t n_cls
    Rows x                      # input
    Rows t                      # CE_PROBS, KL, KL_LOG: targets, laid out like the input
    Rows g                      # gradient and Hessian (same offsets for both), or NULL
    void* hess                  # the Hessian's data (g.data is the gradient's)
    const long long* y          # CE_INDEX: class labels, one per row (validated)
    long long ignore_index
    const void* cw              # class weights or NULL
    double cw_sum               # sum of class weights (C without them)
    const void* sw              # sample weight per row or NULL; row r uses sw[r // sw_group]
    Py_ssize_t sw_group
    void* value                 # per-row weighted losses ("none") or NULL
    double scale                # factor of grad and hess: 1 / denominator for "mean"
    double smoothing            # label smoothing eps (cross-entropy)
    double hess_scale           # factor of the Hessian alone (boosting conventions), 1
    bint out_f32                # float64 input, float32 gradient and Hessian (LightGBM's
                                # layout); row tiles only (fastloss._boosting sees to it)
    int x_half                  # x holds float16 / bfloat16 bits (half.h's FL_HALF_*),
                                # rows of contiguous classes, widened to float32 a block at
                                # a time (float32 is then set); or 0
    Py_ssize_t n_rows           # rows of the call, for prefetching the next row: set by
                                # softmax.pyx's entry points (their callers need not)
    int out_half                # float32 data; grad and hess hold float16 / bfloat16
                                # (half.h's FL_HALF_*), each block's rows formed in the
                                # thread's scratch and rounded as stored; or 0

# sum of sample weight * loss over n_rows rows; *flag: FLAG_NONE, FLAG_NO_MEMORY or the
# first row whose label was out of range when read
ctypedef double (*SoftmaxEntry)(const SoftmaxArgs* a, Py_ssize_t n_rows, int n_threads,
                                Py_ssize_t* flag) noexcept nogil


# ------------------------------------------------------------------ checks.pyx ----

cdef struct LabelArgs:
    const long long* y
    long long n_cls
    long long ignore
    const void* cw              # class weights or NULL
    const void* sw              # sample weights or NULL; row r uses sw[r // group]
    Py_ssize_t group
    bint float32

# group * sum of n weights, exactly, rounded once (added to exact too if not NULL);
# *bad: the first negative or non-finite weight, -1, or FLAG_NO_MEMORY
ctypedef double (*WeightsEntry)(const void* w, bint float32, Py_ssize_t n, long long group,
                                int n_threads, fl_exact* exact, Py_ssize_t* bad) noexcept nogil
# class-weighted count of the n rows that are not ignored; *bad: the first bad label, -1,
# or FLAG_NO_MEMORY
ctypedef double (*LabelsEntry)(const LabelArgs* a, Py_ssize_t n, int n_threads,
                               fl_exact* exact, Py_ssize_t* bad) noexcept nogil
# the first of n values (a stride apart) that is < 0, -1, or FLAG_NO_MEMORY
ctypedef Py_ssize_t (*NegativeEntry)(const void* v, Py_ssize_t stride, bint float32,
                                     Py_ssize_t n, int n_threads) noexcept nogil
