# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Pointwise losses: MSE, MAE, Pseudo-Huber and binary cross-entropy.

Design
------
Every loss here is a function of one element: l(x, t), its derivative g and its second
derivative h with respect to the input x.  Each loss is written twice, small:

* scalar helpers (``closs_*``) hold the maths, one formula per line, with the numerically
  careful form and a note on why; each returns the loss and sets the gradient and Hessian;
* ``tile`` applies one of them to a tile of at most TILE contiguous elements, one plain
  loop per loss, and ``put`` stores what the call asked for.

What a call computes (value only, value and gradient, or gradient and Hessian) is the fused
type ``Mode`` (blocks.pxd): Cython generates every tile loop once per mode, so each loop is
branch-free and vectorized, and a value-only call neither computes nor writes a gradient
(the compiler drops what ``put`` does not store).  Everything else, strided
input, weights per element or per leading-axis sample, ``pos_weight`` broadcast over the
last axis, the blocked deterministic reduction and the threads, is shared and lives in
``run_block``, ``pointwise`` and blocks.pxd.  The loops call functions directly rather than
through pointers so that the compiler can inline and vectorize them.

The module is compiled once per instruction-set level (setup.py); fastloss._dispatch picks
the best one the CPU supports.
"""
from cython cimport floating
cimport numpy as cnp

from .blocks cimport (TILE, BLOCK_MIN, VALUE, GRAD, HESS, Mode, value_only, value_and_grad,
                      grad_and_hess, FLAG_NONE, FLAG_NO_MEMORY, blocked_sum, vsum, tile_of, grouped_tile, cyclic_tile,
                      fill)
from .vecmath cimport (vexp, vexp_nonpos, vexp_shift_n, vlog, vlog_n, vlog1p, vlog1p_unit,
                       vsqrt, vabs)

cnp.import_array()

cdef enum:
    MSE = 0
    MAE = 1
    PSEUDO_HUBER = 2
    BCE_LOGITS = 3
    BCE_PROBS = 4

LOSSES = {"mse": MSE, "mae": MAE, "pseudo_huber": PSEUDO_HUBER,
          "bce_logits": BCE_LOGITS, "bce_probs": BCE_PROBS}
MODES = {"value": VALUE, "grad": GRAD, "hess": HESS}


# ------------------------------------------------------------------ scalar helpers ----
# Literals are typed (`cdef floating one = 1`): a bare `1.0` would make C compute a float32
# expression in double, which is both slower and not "float32 end to end".

cdef inline floating closs_mse(floating r, floating* g, floating* h) noexcept nogil:
    # l = r^2, g = 2 r, h = 2
    cdef floating two = 2
    g[0] = two * r
    h[0] = two
    return r * r


cdef inline floating closs_mae(floating r, floating* g, floating* h) noexcept nogil:
    # l = |r|, g = sign(r) with sign(0) = 0 (the subgradient at the kink) and sign(NaN) = NaN
    # (r - r is +0 for +-0 and NaN for NaN), h = 1 (the usual gradient-boosting surrogate)
    cdef floating one = 1
    g[0] = one if r > 0 else (-one if r < 0 else r - r)
    h[0] = one
    return vabs(r)


cdef inline floating closs_pseudo_huber(floating r, floating delta, floating inv_delta,
                                        floating* g, floating* h) noexcept nogil:
    # a = |r| / delta, S = sqrt(1 + a^2):  l = delta^2 (S - 1),  g = r / S,  h = S^-3.
    # - S - 1 cancels for small a: there l = r^2 / (S + 1) (the same value, no cancellation).
    # - 1 + a^2 overflows for huge a: beyond `big` (2^32 in float32, 2^500 in float64)
    #   S = a to within 2^-64 relative, so S = a is used there.
    # One square root and two divisions (one for "value" alone); finite for finite r.
    cdef floating one = 1
    cdef floating big = 4294967296.0 if floating is float else 3.273390607896142e+150
    cdef floating a = vabs(r) * inv_delta
    cdef floating S = a if a > big else vsqrt(one + a * a)
    cdef floating p = one / S
    g[0] = r * p
    h[0] = p * p * p
    if a > one:
        return delta * delta * (S - one)
    return r * r / (S + one)


cdef inline floating closs_bce_logits(floating x, floating t, floating pw,
                                      floating* g, floating* h) noexcept nogil:
    # s = sigmoid(x) and sc = 1 - s = sigmoid(-x), both from e = exp(-|x|) in (0, 1] and
    # d = 1 / (1 + e): no overflow for any finite x, no cancellation in 1 - s.
    # softplus(+-x) = max(+-x, 0) + log1p(e), and
    # l = pw t softplus(-x) + (1 - t) softplus(x) = (pw t + 1 - t) log1p(e) + (x >= 0 ? (1 - t) x : -pw t x):
    # both terms >= 0 for t in [0, 1], so no cancellation; finite for |x| up to 1e30 and beyond.
    # g = (1 - t) s - pw t sc  (= (pw t + 1 - t) s - pw t),  h = (pw t + 1 - t) s sc.
    cdef floating one = 1
    cdef floating e = vexp_nonpos(-vabs(x))
    cdef floating d = one / (one + e)
    cdef bint pos = x >= 0
    cdef floating ed = e * d
    cdef floating s = d if pos else ed
    cdef floating sc = ed if pos else d
    cdef floating a = pw * t
    cdef floating b = one - t
    g[0] = b * s - a * sc
    h[0] = (a + b) * s * sc
    return (a + b) * vlog1p_unit(e, d) + (b * x if pos else -a * x)


cdef inline floating closs_bce_probs(floating p, floating t, floating pw,
                                     floating* g, floating* h) noexcept nogil:
    # Input p is a probability.  As torch.nn.functional.binary_cross_entropy: each log is
    # clamped at -100 and the gradient divides by max(p (1 - p), 1e-12), so p = 0 or 1 give
    # finite values.  log(1 - p) is computed as log1p(-p) (exact for small p).
    # l = -(pw t log p + (1 - t) log(1 - p)),
    # g = ((pw t + 1 - t) p - pw t) / max(p (1 - p), eps),
    # h = d g / d p = (pw t (1 - p)^2 + (1 - t) p^2) / (p (1 - p))^2 where p (1 - p) > eps,
    #     else (pw t + 1 - t) / eps (the clamped gradient is linear in p there).
    cdef floating one = 1
    cdef floating eps = 1e-12
    cdef floating lo = -100
    cdef floating lp = vlog(p)
    cdef floating lq = vlog1p(-p)
    cdef floating q = one - p
    cdef floating a = pw * t
    cdef floating b = one - t
    cdef floating d = p * q
    cdef bint clamped = d <= eps
    cdef floating rd = one / (eps if clamped else d)
    lp = lp if lp > lo else lo
    lq = lq if lq > lo else lo
    g[0] = ((a + b) * p - a) * rd
    h[0] = (a + b) * rd if clamped else (a * q * q + b * p * p) * (rd * rd)
    return -(a * lp + b * lq)


# -------------------------------------------------------------------- tile loop ----

cdef inline void put(floating* l, floating* g, floating* h, Py_ssize_t i, floating w,
                     floating s, floating li, floating gi, floating hi, Mode m) noexcept nogil:
    """Store element i's outputs for this mode: weighted loss w l, and the gradient and
    Hessian of the reduced loss, s w g and s w h (s = 1 / sum(w) for "mean", else 1)."""
    if Mode is not grad_and_hess:
        l[i] = w * li
    if Mode is not value_only:
        g[i] = (s * w) * gi
    if Mode is grad_and_hess:
        h[i] = (s * w) * hi


cdef inline void tile(int loss, const floating* x, const floating* t, const floating* w,
                      const floating* pw, Py_ssize_t n, floating* l, floating* g, floating* h,
                      floating s, floating param, Mode m) noexcept nogil:
    """One loss over a tile of n contiguous elements: one branch-free loop per loss."""
    cdef Py_ssize_t i
    cdef floating li, gi, hi
    cdef floating one = 1
    cdef floating inv_param = one / param if loss == PSEUDO_HUBER else one
    if loss == MSE:
        for i in range(n):
            li = closs_mse(x[i] - t[i], &gi, &hi)
            put(l, g, h, i, w[i], s, li, gi, hi, m)
    elif loss == MAE:
        for i in range(n):
            li = closs_mae(x[i] - t[i], &gi, &hi)
            put(l, g, h, i, w[i], s, li, gi, hi, m)
    elif loss == PSEUDO_HUBER:
        for i in range(n):
            li = closs_pseudo_huber(x[i] - t[i], param, inv_param, &gi, &hi)
            put(l, g, h, i, w[i], s, li, gi, hi, m)
    elif loss == BCE_LOGITS:
        for i in range(n):
            li = closs_bce_logits(x[i], t[i], pw[i], &gi, &hi)
            put(l, g, h, i, w[i], s, li, gi, hi, m)
    else:
        for i in range(n):
            li = closs_bce_probs(x[i], t[i], pw[i], &gi, &hi)
            put(l, g, h, i, w[i], s, li, gi, hi, m)


# ------------------------------------------------------------- block and driver ----

cdef struct Args:
    int loss
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
    double param                # Pseudo-Huber delta


cdef double run_block(const Args* a, const floating* x, Py_ssize_t lo, Py_ssize_t hi,
                      Mode m) noexcept nogil:
    """Weighted loss sum of elements lo .. hi, writing the requested outputs."""
    cdef floating xbuf[TILE]
    cdef floating tbuf[TILE]
    cdef floating wbuf[TILE]
    cdef floating pwbuf[TILE]
    cdef floating lbuf[TILE]
    cdef floating ones[TILE]
    cdef const floating* t = <const floating*>a.t
    cdef const floating* w = <const floating*>a.w
    cdef const floating* pw = <const floating*>a.pw
    cdef floating* value = <floating*>a.value
    cdef floating* grad = <floating*>a.grad
    cdef floating* hess = <floating*>a.hess
    cdef const floating* xp
    cdef const floating* tp
    cdef const floating* wp
    cdef const floating* pwp
    cdef floating* lp
    cdef floating* gp = NULL
    cdef floating* hp = NULL
    cdef floating s = <floating>a.scale
    cdef floating param = <floating>a.param
    cdef Py_ssize_t i0, n
    cdef double acc = 0.0
    fill(ones, TILE, <floating>1)
    i0 = lo
    while i0 < hi:
        n = hi - i0
        if n > TILE:
            n = TILE
        xp = tile_of(x, a.x_stride, i0, n, xbuf)
        tp = tile_of(t, a.t_stride, i0, n, tbuf)
        wp = &ones[0] if w == NULL else grouped_tile(w, a.w_group, i0, n, wbuf)
        pwp = &ones[0] if pw == NULL else cyclic_tile(pw, a.pw_period, i0, n, pwbuf)
        lp = &lbuf[0] if value == NULL else value + i0
        if Mode is not value_only:
            gp = grad + i0
        if Mode is grad_and_hess:
            hp = hess + i0
        tile(a.loss, xp, tp, wp, pwp, n, lp, gp, hp, s, param, m)
        if Mode is not grad_and_hess:
            acc += vsum(lp, n)
        i0 += n
    return acc


cdef inline double run_mode(const Args* a, const floating* x, Py_ssize_t lo,
                           Py_ssize_t hi) noexcept nogil:
    # one call per mode, each with a compile-time mode: one specialized loop each
    cdef value_only v = value_only(0)          # type tags: only their type matters
    cdef value_and_grad vg = value_and_grad(0)
    cdef grad_and_hess gh = grad_and_hess(0)
    if a.mode == VALUE:
        return run_block(a, x, lo, hi, v)
    elif a.mode == VALUE | GRAD:
        return run_block(a, x, lo, hi, vg)
    return run_block(a, x, lo, hi, gh)


cdef double pointwise_block(const void* args, Py_ssize_t lo, Py_ssize_t hi,
                            Py_ssize_t* flag) noexcept nogil:
    """The BlockFn of this family (blocks.pxd): elements lo .. hi of one call."""
    cdef const Args* a = <const Args*>args
    flag[0] = FLAG_NONE
    if a.float32:
        return run_mode(a, <const float*>a.x, lo, hi)
    return run_mode(a, <const double*>a.x, lo, hi)


cdef inline Py_ssize_t flat_stride(cnp.ndarray arr):
    """Element stride of an array read flat: 1 when C-contiguous, else its 1-D stride."""
    if cnp.PyArray_IS_C_CONTIGUOUS(arr) or cnp.PyArray_NDIM(arr) == 0:
        return 1
    return cnp.PyArray_STRIDE(arr, 0) // cnp.PyArray_ITEMSIZE(arr)


cdef inline const void* data_or_null(object arr):
    if arr is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


def pointwise(int loss, int mode, cnp.ndarray x, cnp.ndarray t, object w,
              Py_ssize_t w_group, object pw, Py_ssize_t pw_period, object value,
              object grad, object hess, double scale, double param, int n_threads):
    """Run one pointwise loss over x and t elementwise; return the sum of w * l.

    The caller (fastloss.losses) has validated everything: x and t have the same size and
    float dtype, each either C-contiguous (any shape, read flat) or 1-D with a stride that
    is a multiple of the item size; w, pw, value, grad and hess are None or C-contiguous of
    that dtype and the right size.
    """
    cdef Args a
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef double total
    cdef Py_ssize_t flag = FLAG_NONE
    a.loss = loss
    a.mode = mode
    a.float32 = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32
    a.x = cnp.PyArray_DATA(x)
    a.x_stride = flat_stride(x)
    a.t = cnp.PyArray_DATA(t)
    a.t_stride = flat_stride(t)
    a.w = data_or_null(w)
    a.w_group = w_group
    a.pw = data_or_null(pw)
    a.pw_period = pw_period
    a.value = <void*>data_or_null(value)
    a.grad = <void*>data_or_null(grad)
    a.hess = <void*>data_or_null(hess)
    a.scale = scale
    a.param = param
    with nogil:
        total = blocked_sum(pointwise_block, &a, n, BLOCK_MIN, n, n_threads, &flag)
    if flag == FLAG_NO_MEMORY:
        raise MemoryError("fastloss: no memory for the block sums")
    return total


# ------------------------------------------------------------- vector math, for tests ----

cdef void apply_math(int fn, const floating* x, floating* out, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating one = 1
    if fn == 0:
        for i in range(n):
            out[i] = vexp(x[i])
    elif fn == 1:
        for i in range(n):
            out[i] = vlog(x[i])
    elif fn == 2:
        for i in range(n):
            out[i] = vlog1p(x[i])
    elif fn == 4:
        for i in range(n):
            out[i] = vexp_nonpos(x[i])
    elif fn == 5:
        vlog_n(x, n, out)
    elif fn == 6:
        vexp_shift_n(x, 0, n, out)
    else:
        for i in range(n):
            out[i] = vlog1p_unit(x[i], one / (one + x[i]))


MATH = {"exp": 0, "log": 1, "log1p": 2, "log1p_unit": 3, "exp_nonpos": 4, "log_n": 5,
        "exp_n": 6}


def vector_math(str name, cnp.ndarray x, cnp.ndarray out):
    """out = name(x) elementwise with this build's vectorized math (tests use it to check
    the error bounds of every instruction-set level).  x, out: C-contiguous, same float
    dtype and size.  "log1p_unit" is log1p on [0, 1], "exp_nonpos" exp for x <= 0, and
    "log_n" and "exp_n" (x <= 0) work a tile at a time (vecmath.h)."""
    cdef int fn = MATH[name]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            apply_math(fn, <const float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), n)
    else:
        with nogil:
            apply_math(fn, <const double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out), n)


# ------------------------------------------------------- bandwidth floor, for benchmarks ----

cdef struct FloorArgs:
    const void* a
    const void* b               # NULL: out = a
    void* out
    bint float32


cdef void copy_or_add(const floating* a, const floating* b, floating* out, Py_ssize_t lo,
                      Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t i
    if b == NULL:
        for i in range(lo, hi):
            out[i] = a[i]
    else:
        for i in range(lo, hi):
            out[i] = a[i] + b[i]


cdef double floor_block(const void* args, Py_ssize_t lo, Py_ssize_t hi,
                        Py_ssize_t* flag) noexcept nogil:
    cdef const FloorArgs* f = <const FloorArgs*>args
    flag[0] = FLAG_NONE
    if f.float32:
        copy_or_add(<const float*>f.a, <const float*>f.b, <float*>f.out, lo, hi)
    else:
        copy_or_add(<const double*>f.a, <const double*>f.b, <double*>f.out, lo, hi)
    return 0


def bandwidth_floor(cnp.ndarray a, object b, cnp.ndarray out, int n_threads):
    """out = a + b (or out = a when b is None), with the losses' blocking and threads.

    The least any fused kernel over the same bytes must do: benchmarks report the losses
    as multiples of it.  a, b, out: C-contiguous, same float dtype and size.
    """
    cdef Py_ssize_t n = cnp.PyArray_SIZE(a)
    cdef FloorArgs f
    cdef Py_ssize_t flag = FLAG_NONE
    f.a = cnp.PyArray_DATA(a)
    f.b = NULL if b is None else cnp.PyArray_DATA(<cnp.ndarray>b)
    f.out = cnp.PyArray_DATA(out)
    f.float32 = cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32
    with nogil:
        blocked_sum(floor_block, &f, n, BLOCK_MIN, n, n_threads, &flag)
    if flag == FLAG_NO_MEMORY:
        raise MemoryError("fastloss: no memory for the block sums")
