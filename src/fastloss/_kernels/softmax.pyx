# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Softmax losses over the last axis: cross-entropy and KL divergence.

Design
------
Input is a stack of rows (N, C): contiguous classes, any row stride.  From logits, every
loss here is a function of the row's softmax p = exp(z - m) / S, m = max(z), S = sum exp(z - m),
and of effective target weights a_c:

    loss  l = sum_c a_c (log S + m - z_c) + sum_c a_c lambda_c   (terms with a_c = 0 are 0)
    grad  g_c = A p_c - a_c,  A = sum_c a_c        hess  h_c = A p_c (1 - p_c)

cross-entropy with class indices:  a_c = w_c ((1 - eps) [c == y] + eps / C), lambda = 0
cross-entropy with probabilities:  a_c = w_c ((1 - eps) t_c + eps / C),       lambda = 0
KL divergence:                     a_c = t_c,                                 lambda_c = log t_c

log S is computed as log1p(S - 1) with S - 1 = (k - 1) + T, where k counts the classes at
the maximum and T sums the others (wide rows: k = 1 and T sums all but one class at the
maximum, ties included): a confident correct prediction gets its tiny loss to full
relative precision instead of log(1 + tiny) = 0.  Sums over classes accumulate in
float64 in both dtypes; everything elementwise stays in the input's dtype.

Two traversals, chosen by C, share the per-row formulas (``finish_*``):

* wide rows (C > NARROW_MAX): row by row, in chunks of TILE classes: max; exp(z - m)
  written straight into the gradient row (a stack chunk for value-only calls) and summed;
  then one scaling pass over the row while it is still in cache.  KL from probability
  targets does a chunk's exp, log and sums in one pass (fused.h).
* narrow rows (C <= NARROW_MAX, e.g. 2-16 classes): NARROW_ROWS rows at once, transposed
  into (C, rows) stack tiles so that every step is a vector operation across rows instead
  of a short scalar loop per row.  The transposes in and out (reduce.h) go through
  registers with AVX2 and AVX-512 (blocks of 4 to 16 rows and classes).

From probabilities (from_logits=False) the loss is elementwise within a row,
-a_c clamp(log p_c, -100) (KL: a_c (log a_c - clamp(log q_c, -100))), with the gradient
-a_c / max(p_c, 1e-12) and its derivative as Hessian (PyTorch's clamps).

The blocked deterministic reduction, threads and modes work as in pointwise.pyx.
"""
from cython cimport floating
cimport numpy as cnp

from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from .blocks cimport (TILE, NARROW_MAX, NARROW_ROWS, NARROW_TILE, NARROW_TILES, BLOCK_MIN,
                      VALUE, GRAD, HESS, Mode, value_only, value_and_grad, grad_and_hess,
                      FLAG_NONE, FLAG_NO_MEMORY, blocked_sum, vsum, vmax_at, FL_LANES,
                      fl_lanes_zero, fl_lanes_total, lanes_add, kl_tile, fl_prefetch,
                      transpose_in, transpose_in_max, transpose_out, grouped_tile, fill)
from .vecmath cimport vexp, vexp_nonpos, vexp_shift_n, vlog, vlog_n, vlog1p

from .arrays cimport data_or_null

cnp.import_array()

cdef enum:
    CE_INDEX = 0        # cross-entropy, integer class labels
    CE_PROBS = 1        # cross-entropy, probability targets
    KL = 2              # KL divergence, probability targets
    KL_LOG = 3          # KL divergence, log-probability targets


KINDS = {"ce_index": CE_INDEX, "ce_probs": CE_PROBS, "kl": KL, "kl_log": KL_LOG}


cdef struct Args:
    int kind
    int mode                    # VALUE, VALUE | GRAD or GRAD | HESS
    bint float32                # the data are float32 (else float64)
    bint from_logits
    Py_ssize_t n_cls
    const void* x               # input rows, classes contiguous
    Py_ssize_t x_row            # row stride in elements
    const long long* y          # CE_INDEX: class labels (validated)
    long long ignore_index
    const void* t               # CE_PROBS, KL, KL_LOG: target rows
    Py_ssize_t t_row
    const void* cw              # class weights or NULL
    double cw_sum               # sum of class weights (C without them)
    const void* sw              # sample weight per row or NULL; row r uses sw[r // sw_group]
    Py_ssize_t sw_group
    void* value                 # per-row weighted losses ("none") or NULL
    void* grad                  # (rows, C) C-contiguous, or NULL
    void* hess
    double scale                # factor of grad and hess: 1 / denominator for "mean"
    double smoothing            # label smoothing eps (cross-entropy)


# ------------------------------------------------------------------ per-row formulas ----
# Shared by both traversals; in the input's dtype (float32 stays float32), from sums over
# the row that were accumulated in float64.

cdef inline floating log_sum(floating T, floating k) noexcept nogil:
    # log S = log1p(S - 1) with S - 1 = (k - 1) + T: 1 + T is never rounded
    cdef floating one = 1
    return vlog1p((k - one) + T)


cdef inline floating finish_index(floating T, floating k, floating D, floating gap_y,
                                  floating e_y, floating wy, floating s, floating eps,
                                  floating eps_c, floating cw_sum, floating* f, floating* As,
                                  floating* gy, floating* hy) noexcept nogil:
    """Loss of a CE_INDEX row (before its sample weight) and its gradient factors.

    gap_y = m - z_y, e_y = exp(z_y - m), wy = class weight of y, s = sample weight * scale.
    Gradient g_c = f e_c - s eps_c w_c except g_y = gy; Hessian h_c = As p_c (1 - p_c)
    except h_y = hy.  If y is the only class at the maximum, 1 - p_y = T / S exactly, so a
    confident correct prediction keeps its tiny g_y and h_y (p_y - 1 would round to 0).
    """
    cdef floating zero = 0, one = 1
    cdef floating S = k + T
    cdef floating rS = one / S
    cdef floating L = log_sum(T, k)
    cdef floating keep = one - eps
    cdef floating A = keep * wy + eps_c * cw_sum
    cdef floating py = e_y * rS
    cdef floating qy = T * rS if (gap_y == zero and k == one) else one - py     # 1 - p_y
    f[0] = s * A * rS
    As[0] = s * A
    gy[0] = s * (eps_c * (cw_sum * py - wy) - keep * wy * qy)
    hy[0] = s * A * py * qy
    return keep * wy * (L + gap_y) + eps_c * (cw_sum * L + D)


cdef inline floating finish_dense(floating T, floating k, floating A, floating B, floating s,
                                  floating* f, floating* As) noexcept nogil:
    """Loss of a dense-target row; gradient g_c = f e_c - s a_c, Hessian As p (1 - p)."""
    f[0] = s * A / (k + T)
    As[0] = s * A
    return A * log_sum(T, k) + B


cdef inline void dense_terms(int kind, const floating* av, const floating* t,
                             const floating* z, floating m, Py_ssize_t n,
                             floating* b) noexcept nogil:
    """b_c = a_c (lambda_c + m - z_c), and 0 where a_c = 0 (0 log 0 = 0; a masked -inf
    logit with a zero target stays finite).  b may be z.  One loop per kind: vectorizes."""
    cdef Py_ssize_t c, c0, k
    cdef floating zero = 0
    cdef floating lt[TILE]
    if kind == KL:                          # lambda_c = log t_c  (a_c = t_c)
        c0 = 0
        while c0 < n:                       # log t to lt, a tile at a time
            k = n - c0 if n - c0 < TILE else TILE
            vlog_n(t + c0, k, &lt[0])
            for c in range(k):
                b[c0 + c] = (av[c0 + c] * (lt[c] + (m - z[c0 + c])) if av[c0 + c] != zero
                             else zero)
            c0 += k
    elif kind == KL_LOG:                    # lambda_c = t_c, the log-target itself
        for c in range(n):
            b[c] = av[c] * (t[c] + (m - z[c])) if av[c] != zero else zero
    else:                                   # cross-entropy: lambda_c = 0
        for c in range(n):
            b[c] = av[c] * (m - z[c]) if av[c] != zero else zero


cdef inline const floating* dense_weights(const Args* a, const floating* t, const floating* cw,
                                         Py_ssize_t n, floating* out) noexcept nogil:
    """a_c of n classes of dense targets: CE_PROBS w ((1 - eps) t + eps / C); KL t;
    KL_LOG exp(t).  Written to out, except for KL where the target itself is returned."""
    cdef Py_ssize_t c
    cdef floating one = 1
    cdef floating keep = <floating>(1 - a.smoothing)
    cdef floating eps_c = <floating>(a.smoothing / a.n_cls)
    if a.kind == CE_PROBS:
        if cw == NULL:
            for c in range(n):
                out[c] = keep * t[c] + eps_c
        else:
            for c in range(n):
                out[c] = cw[c] * (keep * t[c] + eps_c)
    elif a.kind == KL_LOG:
        for c in range(n):
            out[c] = vexp(t[c])
    else:
        return t
    return out


# ------------------------------------------------------------------ labels ----
# The labels were checked before the call (fastloss._kernels.checks.labels), but the
# caller's memory can change after that: another Python thread may write to it while the
# kernels run without the GIL.  So every label is read once into private memory, checked
# again where it is used as an index, and a label out of range makes its row count as
# ignored (zero loss and gradient) and is flagged; fastloss.losses then raises.  No input
# can make a kernel index outside the arrays.

cdef inline bint bad_label(long long y, Py_ssize_t n_cls, long long ignore) noexcept nogil:
    """y is neither a class in [0, n_cls) nor ignore."""
    return (<unsigned long long>y >= <unsigned long long>n_cls) & (y != ignore)


# ------------------------------------------------------------------ wide rows ----

cdef inline bint open_row(const Args* a, Py_ssize_t r, floating** grow, floating** hrow,
                          const floating** trow, long long* y, Py_ssize_t* flag,
                          Mode mode) noexcept nogil:
    """Point at row r's gradient and Hessian rows (as the mode needs) and its target (a
    label or a target row).  An ignored row gets zero outputs, and False is returned; so
    does a row whose label is out of range, which is flagged (see bad_label)."""
    cdef floating zero = 0
    if Mode is not value_only:
        grow[0] = <floating*>a.grad + r * a.n_cls
    if Mode is grad_and_hess:
        hrow[0] = <floating*>a.hess + r * a.n_cls
    if a.kind != CE_INDEX:
        trow[0] = <const floating*>a.t + r * a.t_row
        return True
    memcpy(y, a.y + r, sizeof(long long))      # read once: y is what gets checked and used
    if y[0] != a.ignore_index:
        if not bad_label(y[0], a.n_cls, a.ignore_index):
            return True
        if flag[0] == FLAG_NONE:
            flag[0] = r
    if Mode is not value_only:
        fill(grow[0], a.n_cls, zero)
    if Mode is grad_and_hess:
        fill(hrow[0], a.n_cls, zero)
    return False


cdef double wide_row(const Args* a, Py_ssize_t r, Py_ssize_t last, floating sw_r,
                     Py_ssize_t* flag, Mode mode) noexcept nogil:
    """Weighted loss of row r from logits; writes its gradient (and Hessian) row.  Rows up
    to `last` belong to the same block (and may be prefetched)."""
    cdef Py_ssize_t C = a.n_cls
    cdef const floating* z = <const floating*>a.x + r * a.x_row
    cdef const floating* cw = <const floating*>a.cw
    cdef const floating* trow = NULL
    cdef floating* grow = NULL
    cdef floating* hrow = NULL
    cdef floating scratch[2 * TILE]
    cdef floating abuf[TILE]
    cdef floating bbuf[TILE]
    cdef floating gbuf[TILE]
    cdef floating* e
    cdef const floating* av
    cdef Py_ssize_t c0, n, c, top
    cdef floating m, p, k0, ps, top_q, zero = 0, one = 1
    cdef double T = 0, A = 0, B = 0, D = 0
    cdef double Tl[FL_LANES]                   # the row sums, in lanes (reduce.h)
    cdef double Al[FL_LANES]
    cdef double Bl[FL_LANES]
    cdef double Dl[FL_LANES]
    cdef floating s = <floating>(sw_r * a.scale)
    cdef floating eps = <floating>a.smoothing
    cdef floating eps_c = <floating>(a.smoothing / C)
    cdef floating l, f = 0, As = 0, gy = 0, hy = 0, wy = 1
    cdef long long y = 0
    if not open_row(a, r, &grow, &hrow, &trow, &y, flag, mode):
        return 0
    top = vmax_at(z, C, &m)         # m and a class there: its e is 1, left out of T
    fl_lanes_zero(Tl)
    if a.kind == CE_INDEX:
        if eps_c > 0:
            fl_lanes_zero(Dl)
    else:
        fl_lanes_zero(Al)
        fl_lanes_zero(Bl)
    # pass 2, chunk by chunk: e = exp(z - m) into the gradient row (or scratch), and sums
    c0 = 0
    while c0 < C:
        n = C - c0 if C - c0 < TILE else TILE
        if Mode is not value_only and a.kind != CE_INDEX and last > r:
            # Dense targets with a gradient are compute-bound: ask for the next row's
            # logits now, so that its max pass does not wait for memory (KL: -4%).  With
            # labels, or without a gradient, the rows stream and hardware prefetch does
            # better alone (CE 20000 x 1000: +7% with this).
            fl_prefetch(z + a.x_row + c0, n * sizeof(floating))
        if a.kind == KL:            # all of the tile's work in one pass (fused.h)
            kl_tile(z + c0, trow + c0, m, n, top - c0, NULL if Mode is value_only else grow + c0,
                    Tl, Al, Bl, &scratch[0])
            c0 += n
            continue
        e = &scratch[0] if Mode is value_only else grow + c0
        vexp_shift_n(z + c0, m, n, e)
        if c0 <= top < c0 + n:      # T = S - 1 exactly: e - 1 is 0 (or NaN, and stays NaN)
            e[top - c0] -= one
            lanes_add(Tl, e, n)
            e[top - c0] += one
        else:
            lanes_add(Tl, e, n)
        if a.kind == CE_INDEX:
            if eps_c > 0:
                for c in range(n):
                    gbuf[c] = m - z[c0 + c]
                if cw != NULL:
                    for c in range(n):
                        gbuf[c] = cw[c0 + c] * gbuf[c]
                lanes_add(Dl, &gbuf[0], n)
        else:
            av = dense_weights(a, trow + c0, NULL if cw == NULL else cw + c0, n, &abuf[0])
            dense_terms(a.kind, av, trow + c0, z + c0, m, n, &bbuf[0])
            lanes_add(Al, av, n)
            lanes_add(Bl, &bbuf[0], n)
        c0 += n
    T = fl_lanes_total(Tl)
    if a.kind == CE_INDEX:
        if eps_c > 0:
            D = fl_lanes_total(Dl)
    else:
        A = fl_lanes_total(Al)
        B = fl_lanes_total(Bl)
    if a.kind == CE_INDEX:
        if cw != NULL:
            wy = cw[y]
        l = finish_index(<floating>T, one, <floating>D, m - z[y], vexp_nonpos(z[y] - m), wy,
                         s, eps, eps_c, <floating>a.cw_sum, &f, &As, &gy, &hy)
    else:
        l = finish_dense(<floating>T, one, <floating>A, <floating>B, s, &f, &As)
    if Mode is value_only:
        return sw_r * l
    # pass 3: gradient (and Hessian) from e, still in cache
    k0 = s * eps_c
    ps = <floating>(1 / (1 + T))
    # 1 - p where e == 1 (the maximum, ties included): (S - 1) / S = T / S exactly;
    # elsewhere p <= 1/2 and 1 - p has no cancellation
    top_q = <floating>(T / (1 + T))
    c0 = 0
    while c0 < C:
        n = C - c0 if C - c0 < TILE else TILE
        e = grow + c0
        if Mode is grad_and_hess:
            for c in range(n):
                p = e[c] * ps
                hrow[c0 + c] = As * p * (top_q if e[c] == one else one - p)
        if a.kind != CE_INDEX:
            av = dense_weights(a, trow + c0, NULL if cw == NULL else cw + c0, n, &abuf[0])
            for c in range(n):
                e[c] = f * e[c] - s * av[c]
        elif cw == NULL:
            for c in range(n):
                e[c] = f * e[c] - k0
        else:
            for c in range(n):
                e[c] = f * e[c] - k0 * cw[c0 + c]
        c0 += n
    if a.kind == CE_INDEX:
        grow[y] = gy
        if Mode is grad_and_hess:
            hrow[y] = hy
    return sw_r * l


# ------------------------------------------------------------------ narrow rows ----

cdef double narrow_rows(const Args* a, Py_ssize_t r0, Py_ssize_t R, const floating* sw,
                        floating* tiles, Py_ssize_t* flag, Mode mode) noexcept nogil:
    """Weighted loss of rows r0 .. r0+R (R <= NARROW_ROWS, C <= NARROW_MAX) from logits.

    The rows are transposed into zT[c * R + r], so that every step is a loop over rows
    for each class: vector instructions work across rows instead of along a short row.
    Per-row results live in arrays of R values; the per-row formulas run as one loop over
    rows, vectorized too.  Gradient and Hessian are formed in the transposed tile and
    copied back to rows.  `tiles` holds NARROW_TILES tiles of NARROW_MAX * NARROW_ROWS
    values (heap memory of the block: 64 KiB in float64, too much for a thread's stack).
    """
    cdef Py_ssize_t C = a.n_cls
    cdef const floating* cw = <const floating*>a.cw
    cdef floating* zT = tiles                       # z, then e = exp(z - m)
    cdef floating* tT = tiles + NARROW_TILE         # dense targets
    cdef floating* aT = tiles + 2 * NARROW_TILE     # their weights a_c
    cdef floating* oT = tiles + 3 * NARROW_TILE     # gradient or Hessian, transposed
    cdef floating wv[NARROW_MAX]                   # class weights (ones without them)
    cdef double sums[4][NARROW_ROWS]               # per-row sums over classes, float64:
    cdef double* T = &sums[0][0]                   #   e below 1
    cdef double* A = &sums[1][0]                   #   dense: a_c
    cdef double* B = &sums[2][0]                   #   dense: a_c (lambda_c + m - z_c)
    cdef double* D = &sums[3][0]                   #   CE_INDEX with smoothing: w_c (m - z_c)
    cdef floating K[NARROW_ROWS]                   # classes at the maximum (a count)
    cdef floating m[NARROW_ROWS]                   # row maximum
    cdef floating gap[NARROW_ROWS]                 # CE_INDEX: m - z_y
    cdef floating ey[NARROW_ROWS]                  # CE_INDEX: e_y
    cdef floating wy[NARROW_ROWS]                  # CE_INDEX: w_y
    cdef floating sr[NARROW_ROWS]                  # sample weight * scale (0 if ignored)
    cdef floating lr[NARROW_ROWS]                  # weighted loss per row
    cdef floating fr[NARROW_ROWS]                  # g_c = fr e_c - kr w_c (or - sr a_c)
    cdef floating kr[NARROW_ROWS]
    cdef floating pr[NARROW_ROWS]                  # 1 / S
    cdef floating qr[NARROW_ROWS]                  # 1 - p at the maximum, exactly
    cdef floating hr[NARROW_ROWS]                  # h_c = hr p_c (1 - p_c)
    cdef floating gyr[NARROW_ROWS]                 # CE_INDEX: exact g_y and h_y
    cdef floating hyr[NARROW_ROWS]
    cdef long long yr[NARROW_ROWS]
    cdef bint ignored[NARROW_ROWS]                 # CE_INDEX: ignored, or a bad label
    cdef bint bad[NARROW_ROWS]                     # CE_INDEX: a bad label (see bad_label)
    cdef int n_ignored = 0
    cdef int n_bad = 0
    cdef const floating* src
    cdef floating v, p, f, As, gy, hy, zero = 0, one = 1
    cdef floating eps = <floating>a.smoothing
    cdef floating keep = one - eps
    cdef floating eps_c = <floating>(a.smoothing / C)
    cdef floating cw_sum = <floating>a.cw_sum
    cdef floating scale = <floating>a.scale
    cdef Py_ssize_t r, c, i
    cdef long long y
    for c in range(C):
        wv[c] = one if cw == NULL else cw[c]
    for r in range(R):
        T[r] = 0
        D[r] = 0                    # read by finish_index, smoothing or not
    if a.kind != CE_INDEX:
        for r in range(R):
            A[r] = 0
            B[r] = 0
    # transpose in, row maxima
    transpose_in_max(<const floating*>a.x + r0 * a.x_row, a.x_row, R, C, &zT[0], &m[0])
    for r in range(R):
        K[r] = zero
    # what needs z itself, before it becomes e
    if a.kind == CE_INDEX:
        memcpy(&yr[0], a.y + r0, R * sizeof(long long))  # read once (see bad_label)
        for r in range(R):          # (separate loops, so that each one vectorizes)
            y = yr[r]
            bad[r] = bad_label(y, C, a.ignore_index)
            n_bad += bad[r]
            ignored[r] = (y == a.ignore_index) | bad[r]
            n_ignored += ignored[r]
            yr[r] = 0 if ignored[r] else y
        if n_bad and flag[0] == FLAG_NONE:
            for r in range(R):
                if bad[r]:
                    flag[0] = r0 + r
                    break
        for r in range(R):
            gap[r] = m[r] - zT[yr[r] * R + r]
            wy[r] = wv[yr[r]]
        if eps_c > 0:
            for c in range(C):
                for r in range(R):
                    D[r] += wv[c] * (m[r] - zT[c * R + r])
    else:
        # targets tT, weights aT, terms oT (the output tile is free until the end)
        transpose_in(<const floating*>a.t + r0 * a.t_row, a.t_row, R, C, &tT[0])
        if a.kind == CE_PROBS:
            for c in range(C):
                for r in range(R):
                    aT[c * R + r] = wv[c] * (keep * tT[c * R + r] + eps_c)
        elif a.kind == KL_LOG:
            for i in range(C * R):
                aT[i] = vexp(tT[i])
        else:
            for i in range(C * R):          # KL: a_c = t_c
                aT[i] = tT[i]
        for c in range(C):
            for r in range(R):
                oT[c * R + r] = zT[c * R + r] - m[r]       # z - m: the terms' m is 0
        dense_terms(a.kind, &aT[0], &tT[0], &oT[0], <floating>0, C * R, &oT[0])
        for c in range(C):
            for r in range(R):
                A[r] += aT[c * R + r]
                B[r] += oT[c * R + r]
    # e = exp(z - m) in place, and its sums
    for c in range(C):
        for r in range(R):
            i = c * R + r
            v = vexp_nonpos(zT[i] - m[r])
            zT[i] = v
            T[r] += zero if v == one else v
            K[r] += one if v == one else zero
    # per-row losses and factors: one branch-free loop over rows
    for r in range(R):
        sr[r] = zero if (a.kind == CE_INDEX and ignored[r]) else sw[r] * scale
    if a.kind == CE_INDEX:
        for r in range(R):          # = zT[yr[r] * R + r] below, bit for bit, without a gather
            ey[r] = vexp_nonpos(-gap[r])
        for r in range(R):
            lr[r] = sw[r] * finish_index(<floating>T[r], K[r], <floating>D[r], gap[r], ey[r],
                                         wy[r], sr[r], eps, eps_c, cw_sum, &f, &As, &gy, &hy)
            lr[r] = zero if ignored[r] else lr[r]
            fr[r] = f
            hr[r] = As
            gyr[r] = gy
            hyr[r] = hy
    else:
        for r in range(R):
            lr[r] = sw[r] * finish_dense(<floating>T[r], K[r], <floating>A[r], <floating>B[r],
                                         sr[r], &f, &As)
            fr[r] = f
            hr[r] = As
    if a.value != NULL:
        for r in range(R):
            (<floating*>a.value)[r0 + r] = lr[r]
    if Mode is value_only:
        return vsum(&lr[0], R)
    for r in range(R):
        kr[r] = sr[r] * eps_c
        pr[r] = one / (K[r] + <floating>T[r])
        qr[r] = <floating>T[r] * pr[r] if K[r] == one else one - pr[r]     # 1 - p at the max
    # Hessian, then gradient, formed transposed and copied back to rows
    if Mode is grad_and_hess:
        for c in range(C):
            for r in range(R):
                p = zT[c * R + r] * pr[r]
                oT[c * R + r] = hr[r] * p * (qr[r] if zT[c * R + r] == one else one - p)
        if a.kind == CE_INDEX:
            for r in range(R):
                oT[yr[r] * R + r] = hyr[r]
        transpose_out(&oT[0], R, C, <floating*>a.hess + r0 * C)
    if a.kind == CE_INDEX:
        for c in range(C):
            for r in range(R):
                oT[c * R + r] = fr[r] * zT[c * R + r] - kr[r] * wv[c]
        for r in range(R):
            oT[yr[r] * R + r] = gyr[r]
    else:
        for c in range(C):
            for r in range(R):
                oT[c * R + r] = fr[r] * zT[c * R + r] - sr[r] * aT[c * R + r]
    transpose_out(&oT[0], R, C, <floating*>a.grad + r0 * C)
    if n_ignored:                   # ignored rows: zero gradient, whatever their logits
        for r in range(R):
            if ignored[r]:
                fill(<floating*>a.grad + (r0 + r) * C, C, zero)
                if Mode is grad_and_hess:
                    fill(<floating*>a.hess + (r0 + r) * C, C, zero)
    return vsum(&lr[0], R)


# ------------------------------------------------------------------ from probabilities ----

cdef double prob_row(const Args* a, Py_ssize_t r, floating sw_r, Py_ssize_t* flag,
                     Mode mode) noexcept nogil:
    """Weighted loss of one row whose input holds probabilities (from_logits=False)."""
    cdef Py_ssize_t C = a.n_cls
    cdef const floating* p = <const floating*>a.x + r * a.x_row
    cdef const floating* cw = <const floating*>a.cw
    cdef const floating* trow = NULL
    cdef floating* grow = NULL
    cdef floating* hrow = NULL
    cdef floating abuf[TILE]
    cdef floating lbuf[TILE]
    cdef floating s = <floating>(sw_r * a.scale)
    cdef floating eps = 1e-12
    cdef floating lo = -100
    cdef floating zero = 0, one = 1
    cdef floating eps_c = <floating>(a.smoothing / C)
    cdef floating keep_y = 0
    cdef floating lp, lam, pc
    cdef const floating* av
    cdef Py_ssize_t c0, n, c
    cdef long long y = -1
    cdef double total = 0
    if not open_row(a, r, &grow, &hrow, &trow, &y, flag, mode):
        return 0
    if a.kind == CE_INDEX:
        keep_y = <floating>((1 - a.smoothing) * (1 if cw == NULL else cw[y]))
    c0 = 0
    while c0 < C:
        n = C - c0 if C - c0 < TILE else TILE
        if a.kind == CE_INDEX:
            for c in range(n):
                abuf[c] = eps_c * (one if cw == NULL else cw[c0 + c])
            if c0 <= y < c0 + n:
                abuf[y - c0] += keep_y
        else:
            av = dense_weights(a, trow + c0, NULL if cw == NULL else cw + c0, n, &abuf[0])
            if av != &abuf[0]:
                for c in range(n):
                    abuf[c] = av[c]
        for c in range(n):
            pc = p[c0 + c]
            lp = vlog(pc)
            lp = lp if lp > lo else lo
            lam = zero
            if a.kind == KL:
                lam = vlog(trow[c0 + c])
            elif a.kind == KL_LOG:
                lam = trow[c0 + c]
            lbuf[c] = abuf[c] * (lam - lp) if abuf[c] != 0 else zero
            if Mode is not value_only:
                grow[c0 + c] = s * (-abuf[c] / (pc if pc > eps else eps))
            if Mode is grad_and_hess:
                hrow[c0 + c] = s * (abuf[c] / (pc * pc) if pc > eps else zero)
        total += vsum(&lbuf[0], n)
        c0 += n
    return sw_r * total


# ------------------------------------------------------------------ blocks and driver ----

cdef double run_block(const Args* a, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t* flag,
                      floating dtype_tag, Mode mode) noexcept nogil:
    """Weighted loss sum of rows lo .. hi, writing the requested outputs; *flag as
    blocked_sum's blocks set it (the first row with a bad label, say)."""
    cdef floating swbuf[NARROW_ROWS]
    cdef floating ones[NARROW_ROWS]
    cdef const floating* sw
    cdef floating* tiles = NULL
    cdef Py_ssize_t r0, R, r
    cdef double acc = 0, l
    cdef bint narrow = a.from_logits and a.n_cls <= NARROW_MAX
    flag[0] = FLAG_NONE
    if narrow:
        tiles = <floating*>malloc(NARROW_TILES * NARROW_TILE * sizeof(floating))
        if tiles == NULL:
            flag[0] = FLAG_NO_MEMORY
            return 0
    fill(&ones[0], NARROW_ROWS, <floating>1)
    r0 = lo
    while r0 < hi:
        R = hi - r0 if hi - r0 < NARROW_ROWS else NARROW_ROWS
        if a.sw == NULL:
            sw = &ones[0]
        else:
            sw = grouped_tile(<const floating*>a.sw, a.sw_group, r0, R, &swbuf[0])
        if narrow:
            acc += narrow_rows(a, r0, R, sw, tiles, flag, mode)
        else:
            for r in range(R):
                if a.from_logits:
                    l = wide_row(a, r0 + r, hi - 1, sw[r], flag, mode)
                else:
                    l = prob_row(a, r0 + r, sw[r], flag, mode)
                if a.value != NULL:
                    (<floating*>a.value)[r0 + r] = <floating>l
                acc += l
        r0 += R
    free(tiles)
    return acc


cdef inline double run_mode(const Args* a, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t* flag,
                           floating dtype_tag) noexcept nogil:
    # one call per mode, each with a compile-time mode: one specialized loop each
    cdef value_only v = value_only(0)          # type tags: only their type matters
    cdef value_and_grad vg = value_and_grad(0)
    cdef grad_and_hess gh = grad_and_hess(0)
    if a.mode == VALUE:
        return run_block(a, lo, hi, flag, dtype_tag, v)
    elif a.mode == VALUE | GRAD:
        return run_block(a, lo, hi, flag, dtype_tag, vg)
    return run_block(a, lo, hi, flag, dtype_tag, gh)


cdef double softmax_block(const void* args, Py_ssize_t lo, Py_ssize_t hi,
                          Py_ssize_t* flag) noexcept nogil:
    """The BlockFn of this family (blocks.pxd): rows lo .. hi of one call."""
    cdef const Args* a = <const Args*>args
    if a.float32:
        return run_mode(a, lo, hi, flag, <float>0)
    return run_mode(a, lo, hi, flag, <double>0)


def softmax(int kind, int mode, bint from_logits, cnp.ndarray x, object y, object t,
            object cw, double cw_sum, object sw, Py_ssize_t sw_group, object value,
            object grad, object hess, double scale, double smoothing,
            long long ignore_index, int n_threads):
    """Run one softmax loss over the rows of 2-D x (classes contiguous, any row stride).

    The caller (fastloss.losses) has validated everything: y (CE_INDEX) is C-contiguous
    int64 with every label in range or equal to ignore_index; t is 2-D like x (classes
    contiguous); cw, sw, value, grad and hess are None or C-contiguous of x's dtype.
    Returns (the sum over rows of sample weight * loss, flag): flag is -1, or the first
    row whose label was out of range when the kernel read it (the caller's labels changed
    after they were checked; such rows count as ignored).  MemoryError if a block found no
    memory for its scratch.
    """
    cdef Args a
    cdef Py_ssize_t n_rows = cnp.PyArray_DIM(x, 0)
    cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(x)
    cdef Py_ssize_t min_rows
    cdef double total
    cdef Py_ssize_t flag = FLAG_NONE
    a.kind = kind
    a.mode = mode
    a.float32 = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32
    a.from_logits = from_logits
    a.n_cls = cnp.PyArray_DIM(x, 1)
    a.x = cnp.PyArray_DATA(x)
    a.x_row = cnp.PyArray_STRIDE(x, 0) // itemsize
    a.y = <const long long*>data_or_null(y)
    a.ignore_index = ignore_index
    a.t = data_or_null(t)
    a.t_row = 0 if t is None else cnp.PyArray_STRIDE(<cnp.ndarray>t, 0) // itemsize
    a.cw = data_or_null(cw)
    a.cw_sum = cw_sum
    a.sw = data_or_null(sw)
    a.sw_group = sw_group
    a.value = <void*>data_or_null(value)
    a.grad = <void*>data_or_null(grad)
    a.hess = <void*>data_or_null(hess)
    a.scale = scale
    a.smoothing = smoothing
    min_rows = BLOCK_MIN // a.n_cls if a.n_cls < BLOCK_MIN else 1     # ~BLOCK_MIN elements
    with nogil:
        total = blocked_sum(softmax_block, &a, n_rows, min_rows, n_rows * a.n_cls, n_threads,
                            &flag)
    if flag == FLAG_NO_MEMORY:
        raise MemoryError("fastloss: no memory for the kernel's scratch")
    return total, flag
