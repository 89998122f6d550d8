# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Softmax losses over one axis (the classes): cross-entropy and KL divergence.

Design
------
Input is a stack of rows of C classes.  A row's classes are either contiguous (classes on
the last axis, any row stride) or a fixed stride apart (classes on an inner axis, as in
PyTorch's (N, C, d1, ..., dk) layout: the classes of one pixel are d1 * ... * dk apart).
From logits, every loss here is a function of the row's softmax p = exp(z - m) / S,
m = max(z), S = sum exp(z - m), and of effective target weights a_c:

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

Two traversals share the per-row formulas (``finish_*``):

* wide rows (contiguous classes, C > NARROW_MAX): row by row, in chunks of classes
  (2 TILE float32, TILE float64): max; exp(z - m) written straight into the gradient row
  (a stack chunk for value-only calls) and summed; then one scaling pass over the row
  while it is still in cache.  KL from probability targets does a chunk's exp, log and
  sums in one pass (kl_tile).
* row tiles (C <= NARROW_MAX, e.g. 2-16 classes, or classes a stride apart): up to
  NARROW_ROWS rows at once, as a (C, rows) tile, so that every step is a vector operation
  across rows instead of a short scalar loop per row.  Contiguous classes are transposed
  in and out through registers (AVX2, AVX-512); classes a stride apart are already
  stored that way, and are copied in and out class by class.  While a tile computes, the
  next tile's rows are asked for, a share per step (narrow.h fl_next_tile), as wide rows
  ask for the next row.

From probabilities (from_logits=False) the loss is elementwise within a row,
-a_c clamp(log p_c, -100) (KL: a_c (log a_c - clamp(log q_c, -100))), with the gradient
-a_c / max(p_c, 1e-12) and its derivative as Hessian (PyTorch's clamps).

Cross-entropy with labels from logits may write its gradient over its input (the fused
linear cross-entropy does): every traversal reads what it needs of a row before it writes
that row's gradient.

The blocked deterministic reduction, threads and modes work as in pointwise.pyx.
"""
from cython cimport floating
cimport numpy as cnp

from libc.string cimport memcpy

from .blocks cimport (TILE, WIDE_CHUNK_BYTES, WIDE_AHEAD_L1_BYTES, NARROW_MAX, NARROW_ROWS,
                      NARROW_TILE, NARROW_TILES, VALUE, GRAD, HESS, Mode, value_only,
                      value_and_grad, grad_and_hess,
                      FLAG_NONE, FLAG_NO_MEMORY, blocked_sum, block_rows, fl_exact, vsum,
                      vmax_at, FL_LANES,
                      fl_lanes_zero, fl_lanes_total, lanes_add, lanes_add_quads, kl_tile,
                      fl_prefetch, fl_prefetch_l2,
                      transpose_in, transpose_in_max, transpose_out, tile_of, grouped_tile,
                      fill, fl_half_tile, fl_half_widen, fl_half_store, FL_HALF_WIDE_MIN,
                      fl_half_max_at, fl_half_exp_shift_n, fl_tile_exp_sums_f32,
                      fl_tile_exp_dense_f32, fl_next_tile, fl_next_tile_share)
from .vecmath cimport (vexp, vexp_nonpos, vexp_tile, vexp_shift_n, vlog, vlog_n,
                      vlog_n_where_nonzero, vlog1p)

from .arrays cimport data_or_null, exact_in, exact_out
from .entries cimport Rows, SoftmaxArgs as Args, FL_ENTRY_SOFTMAX
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint16_t

cnp.import_array()

cdef enum:
    CE_INDEX = 0        # cross-entropy, integer class labels
    CE_PROBS = 1        # cross-entropy, probability targets
    KL = 2              # KL divergence, probability targets
    KL_LOG = 3          # KL divergence, log-probability targets


KINDS = {"ce_index": CE_INDEX, "ce_probs": CE_PROBS, "kl": KL, "kl_log": KL_LOG}


# A call's arguments (Args) and the layout of its rows (Rows) are declared in entries.pxd,
# which fastloss.api shares.

cdef inline Py_ssize_t row_at(const Rows* rows, Py_ssize_t r) noexcept nogil:
    """Offset of row r's first class."""
    if rows.inner == 1:
        return r * rows.outer
    return (r // rows.inner) * rows.outer + r % rows.inner


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


cdef inline floating finish_dense(double T, floating k, double A, double B, double log_s,
                                  floating s, floating* f, floating* As) noexcept nogil:
    """Loss of a dense-target row; gradient g_c = f e_c - s a_c, Hessian As p (1 - p).
    The loss A log S + B is formed in float64 from the float64 sums and log_s, log S in
    float64 (log_sum(T, <double>k)): its two terms nearly cancel when the target is close
    to the softmax (a small KL divergence), and log S in the input's dtype would leave a
    float32 loss only a few correct digits there."""
    f[0] = s * <floating>A / (k + <floating>T)
    As[0] = s * <floating>A
    return <floating>(A * log_s + B)


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
# again where it is used as an index (the row tiles never use it as one: tile_labels), and
# a label out of range makes its row count as ignored (zero loss and gradient) and is
# flagged; fastloss.losses then raises.  No input can make a kernel index outside the
# arrays.

cdef inline bint bad_label(long long y, Py_ssize_t n_cls, long long ignore) noexcept nogil:
    """y is neither a class in [0, n_cls) nor ignore."""
    return (<unsigned long long>y >= <unsigned long long>n_cls) & (y != ignore)


cdef inline bint label_of(const Args* a, Py_ssize_t r, long long* y,
                          Py_ssize_t* flag) noexcept nogil:
    """Row r's label into *y, read once; False if the row is ignored or its label is out
    of range (then flagged)."""
    memcpy(y, a.y + r, sizeof(long long))
    if y[0] == a.ignore_index:
        return False
    if bad_label(y[0], a.n_cls, a.ignore_index):
        if flag[0] == FLAG_NONE:
            flag[0] = r
        return False
    return True


cdef inline void zero_row(floating* row, Py_ssize_t n, Py_ssize_t stride) noexcept nogil:
    cdef Py_ssize_t c
    cdef floating zero = 0
    if stride == 1:
        fill(row, n, zero)
    else:
        for c in range(n):
            row[c * stride] = zero


cdef inline bint open_row(const Args* a, Py_ssize_t r, floating** grow, floating** hrow,
                          long long* y, Py_ssize_t* flag, Mode mode) noexcept nogil:
    """Point at row r's gradient and Hessian rows (as the mode needs) and, with labels,
    read its label.  A row that is ignored or whose label is out of range gets zero
    outputs, and False is returned."""
    if Mode is not value_only:
        grow[0] = <floating*>a.g.data + row_at(&a.g, r)
    if Mode is grad_and_hess:
        hrow[0] = <floating*>a.hess + row_at(&a.g, r)
    if a.kind != CE_INDEX or label_of(a, r, y, flag):
        return True
    if Mode is not value_only:
        zero_row(grow[0], a.n_cls, a.g.cls)
    if Mode is grad_and_hess:
        zero_row(hrow[0], a.n_cls, a.g.cls)
    return False


# ------------------------------------------------------------------ wide rows ----
# Classes contiguous, C > NARROW_MAX: row by row.  wide_sums makes pass 2 (exp and the row
# sums), wide_grad pass 3 (gradient and Hessian from e).

cdef struct WideSums:
    double T                    # sum of e = exp(z - m) over every class but `top`
    double A                    # dense targets: sum of a_c
    double B                    # dense targets: sum of a_c (lambda_c + m - z_c)
    double D                    # labels with smoothing: sum of w_c (m - z_c)


cdef inline void wide_sums(const Args* a, const floating* z, const uint16_t* hz,
                           const floating* trow, floating m, Py_ssize_t top,
                           floating* e_row, const char* ahead, Py_ssize_t ahead_size,
                           WideSums* sums, floating* scratch, Mode mode) noexcept nogil:
    """Pass 2 over a row, a chunk of `chunk` classes (WIDE_CHUNK_BYTES) at a time:
    e = exp(z - m) into e_row (NULL: value only) and the row sums.  e_row may be z itself
    (labels only): each chunk reads all it needs of z before e overwrites it.  hz: the row
    in half precision (a.x_half), read in place of z, or NULL: only for long rows with
    labels and no smoothing (softmax_block's half_rows_as_they_are), where the exp is all
    this pass reads of the row.  scratch: 4 chunks of values.  ahead: a row of the input
    to ask memory for, ahead_size bytes per class (wide_row), or NULL."""
    cdef Py_ssize_t C = a.n_cls
    cdef Py_ssize_t chunk = WIDE_CHUNK_BYTES // sizeof(floating)
    cdef const floating* cw = <const floating*>a.cw
    cdef floating* ebuf = scratch                  # e of a value-only call
    cdef floating* weights = scratch + 2 * chunk   # dense: a_c of the chunk
    cdef floating* terms = scratch + 3 * chunk     # dense: b_c; labels: w_c (m - z_c)
    cdef floating* e
    cdef const floating* av
    cdef Py_ssize_t c0, n, c
    cdef floating one = 1
    cdef floating eps_c = <floating>(a.smoothing / C)
    cdef double Tl[FL_LANES]                       # the row sums, in lanes (lanes.h)
    cdef double Al[FL_LANES]
    cdef double Bl[FL_LANES]
    cdef double Dl[FL_LANES]
    fl_lanes_zero(Tl)
    if a.kind == CE_INDEX:
        if eps_c > 0:
            fl_lanes_zero(Dl)
    else:
        fl_lanes_zero(Al)
        fl_lanes_zero(Bl)
    c0 = 0
    while c0 < C:
        n = C - c0 if C - c0 < chunk else chunk
        if ahead != NULL:
            # ask for a later row's logits now, so that its max pass (or its widening from
            # half precision) does not wait for memory: the row's passes after the max are
            # compute-bound, and the hardware prefetcher alone stays too few lines ahead to
            # cover the next max pass.  Rows over WIDE_AHEAD_L1_BYTES are asked into L2
            # (prefetcht1): into L1, a row that cannot stay there probably only evicts this
            # row's chunks and holds the L1 miss buffers that this row's loads need.  CE
            # values of 2000 x 32000 float32 took a quarter less time, KL's 15%, KL with
            # its gradient 5-13% less (bench/results/2026-12-03g-wide-ahead-l2.txt); CE
            # with a gradient took 2-9% more, so it asks into L1
            if ((Mode is value_only or a.kind == KL)
                    and C * ahead_size > WIDE_AHEAD_L1_BYTES):
                fl_prefetch_l2(ahead + c0 * ahead_size, n * ahead_size)
            else:
                fl_prefetch(ahead + c0 * ahead_size, n * ahead_size)
        if a.kind == KL:            # all of the chunk's work in one pass (kl_tile)
            kl_tile(z + c0, trow + c0, m, n, top - c0, NULL if Mode is value_only
                    else e_row + c0, Tl, Al, Bl, scratch)
            c0 += n
            continue
        if a.kind == CE_INDEX:
            if eps_c > 0:           # before e can overwrite z
                for c in range(n):
                    terms[c] = m - z[c0 + c]
                if cw != NULL:
                    for c in range(n):
                        terms[c] = cw[c0 + c] * terms[c]
                lanes_add(Dl, terms, n)
        else:
            av = dense_weights(a, trow + c0, NULL if cw == NULL else cw + c0, n, weights)
            dense_terms(a.kind, av, trow + c0, z + c0, m, n, terms)
            lanes_add(Al, av, n)
            lanes_add(Bl, terms, n)
        e = ebuf if Mode is value_only else e_row + c0
        if floating is float:
            if hz != NULL:
                fl_half_exp_shift_n(hz + c0, a.x_half, m, n, e)
            else:
                vexp_shift_n(z + c0, m, n, e)
        else:
            vexp_shift_n(z + c0, m, n, e)
        if c0 <= top < c0 + n:      # T = S - 1 exactly: e - 1 is 0 (or NaN, and stays NaN)
            e[top - c0] -= one
            lanes_add_quads(Tl, e, n)
            e[top - c0] += one
        else:
            lanes_add_quads(Tl, e, n)
        c0 += n
    sums.T = fl_lanes_total(Tl)
    sums.A = sums.B = sums.D = 0
    if a.kind == CE_INDEX:
        if eps_c > 0:
            sums.D = fl_lanes_total(Dl)
    else:
        sums.A = fl_lanes_total(Al)
        sums.B = fl_lanes_total(Bl)


cdef inline void wide_grad(const Args* a, const floating* trow, double T, floating grad_factor,
                           floating hess_factor, floating row_scale, floating* grow,
                           floating* hrow, floating* weights, Mode mode) noexcept nogil:
    """Pass 3 over a row: grow holds e; turn it into the gradient
    g_c = grad_factor e_c - row_scale a_c and write the Hessian hess_factor p_c (1 - p_c)
    (the label's own entries are set by the caller).  weights: TILE values."""
    cdef Py_ssize_t C = a.n_cls
    cdef const floating* cw = <const floating*>a.cw
    cdef const floating* av
    cdef floating* e
    cdef Py_ssize_t c0, n, c
    cdef floating p, one = 1
    cdef floating smooth = row_scale * <floating>(a.smoothing / C)
    cdef floating inv_sum = <floating>(1 / (1 + T))
    # 1 - p where e == 1 (the maximum, ties included): (S - 1) / S = T / S exactly;
    # elsewhere p <= 1/2 and 1 - p has no cancellation
    cdef floating q_max = <floating>(T / (1 + T))
    c0 = 0
    while c0 < C:
        n = C - c0 if C - c0 < TILE else TILE
        e = grow + c0
        if Mode is grad_and_hess:
            for c in range(n):
                p = e[c] * inv_sum
                hrow[c0 + c] = hess_factor * p * (q_max if e[c] == one else one - p)
        if a.kind != CE_INDEX:
            av = dense_weights(a, trow + c0, NULL if cw == NULL else cw + c0, n, weights)
            for c in range(n):
                e[c] = grad_factor * e[c] - row_scale * av[c]
        elif cw == NULL:
            for c in range(n):
                e[c] = grad_factor * e[c] - smooth
        else:
            for c in range(n):
                e[c] = grad_factor * e[c] - smooth * cw[c0 + c]
        c0 += n


cdef double wide_row(const Args* a, Py_ssize_t r, floating sw_r, Py_ssize_t* flag,
                     const Args* src, Py_ssize_t lead, Mode mode) noexcept nogil:
    """Weighted loss of row r from logits; writes its gradient (and Hessian) row.  Row
    r + lead of the call's own input (src: a itself, or the call whose half-precision rows
    a's block holds widened, see softmax_block), if there is one, is prefetched while this
    row computes: usually a row this thread reads next, as each thread streams through a
    contiguous part of the blocks (fl_omp.h)."""
    cdef Py_ssize_t C = a.n_cls
    cdef const floating* z = <const floating*>a.x.data + row_at(&a.x, r)
    cdef const floating* cw = <const floating*>a.cw
    cdef const floating* trow = NULL
    cdef floating* grow = NULL
    cdef floating* hrow = NULL
    cdef double scratch_mem[4 * TILE]   # 8 KiB: 4 chunks of WIDE_CHUNK_BYTES (wide_sums)
    cdef floating* scratch = <floating*>scratch_mem
    cdef WideSums sums
    cdef Py_ssize_t top, c
    cdef floating m, z_y = 0, gap_y = 0, e_y = 0, w_y = 1, one = 1
    cdef floating row_scale = <floating>(sw_r * a.scale)
    cdef floating eps_c = <floating>(a.smoothing / C)
    cdef floating l, grad_factor = 0, hess_factor = 0, grad_y = 0, hess_y = 0
    cdef long long y = 0
    cdef const char* ahead = NULL
    cdef Py_ssize_t ahead_size = 2 if src.x_half else sizeof(floating)
    cdef const uint16_t* hz = NULL  # the row in half precision, read as it is
    if r + lead < src.n_rows:
        ahead = <const char*>src.x.data + row_at(&src.x, r + lead) * ahead_size
    if not open_row(a, r, &grow, &hrow, &y, flag, mode):
        return 0
    if a.kind != CE_INDEX:
        trow = <const floating*>a.t.data + row_at(&a.t, r)
    # m and a class there (its e is 1, left out of T); z_y before e can overwrite z
    if floating is float:
        if a.x_half:                # softmax_block's long rows: no float32 copy
            hz = <const uint16_t*>a.x.data + row_at(&a.x, r)
            top = fl_half_max_at(hz, C, a.x_half, &m)
            fl_half_widen(hz + y, 1, 1, a.x_half, &z_y)
    if hz == NULL:
        top = vmax_at(z, C, &m)
        if a.kind == CE_INDEX:
            z_y = z[y]
    if a.kind == CE_INDEX:
        gap_y = m - z_y
        e_y = vexp_tile(-gap_y)     # as wide_sums's exp has it
        if cw != NULL:
            w_y = cw[y]
    wide_sums(a, z, hz, trow, m, top, grow, ahead, ahead_size, &sums, scratch, mode)
    if a.kind == CE_INDEX:
        l = finish_index(<floating>sums.T, one, <floating>sums.D, gap_y, e_y, w_y, row_scale,
                         <floating>a.smoothing, eps_c, <floating>a.cw_sum, &grad_factor,
                         &hess_factor, &grad_y, &hess_y)
    else:
        l = finish_dense(sums.T, one, sums.A, sums.B, log_sum(sums.T, <double>one),
                         row_scale, &grad_factor, &hess_factor)
    if Mode is value_only:
        return sw_r * l
    wide_grad(a, trow, sums.T, grad_factor, hess_factor, row_scale, grow, hrow, scratch, mode)
    if a.kind == CE_INDEX:
        grow[y] = grad_y
        if Mode is grad_and_hess:
            hrow[y] = hess_y
    if Mode is grad_and_hess:
        if a.hess_scale != 1:       # the row is still in cache
            for c in range(C):
                hrow[c] = hrow[c] * <floating>a.hess_scale
    return sw_r * l


# ------------------------------------------------------------------ row tiles ----
# Up to NARROW_ROWS rows at once as a (C, R) tile, tile[c * R + r], so that every step is a
# loop over rows for each class and vectorizes across rows.  The steps are the helpers
# below, in the order row_tile calls them; per-row results live in arrays of R values.

cdef inline void tile_load(const Rows* src, Py_ssize_t r0, Py_ssize_t R, Py_ssize_t C,
                           floating* tile, floating* row_max) noexcept nogil:
    """tile[c * R + r] = row r0 + r's class c, and row_max[r] its maximum (unless NULL).
    Rows r0 .. r0+R of a class-strided layout must lie in one N (adjacent rows)."""
    cdef const floating* base = <const floating*>src.data + row_at(src, r0)
    cdef const floating* col
    cdef Py_ssize_t r, c
    cdef floating v
    if src.cls == 1:                # classes contiguous: transposes through registers
        if row_max == NULL:
            transpose_in(base, src.outer, R, C, tile)
        else:
            transpose_in_max(base, src.outer, R, C, tile, row_max)
        return
    if row_max != NULL:             # classes a stride apart: already (C, R) in memory
        for r in range(R):
            row_max[r] = base[r]
    for c in range(C):
        col = base + c * src.cls
        for r in range(R):
            tile[c * R + r] = col[r]
        if row_max != NULL:
            for r in range(R):
                v = col[r]
                row_max[r] = v if v > row_max[r] else row_max[r]


cdef inline void tile_store(const floating* tile, Py_ssize_t R, Py_ssize_t C, const Rows* dst,
                            void* data, Py_ssize_t r0) noexcept nogil:
    """Row r0 + r's class c of `data` (laid out as dst) = tile[c * R + r]."""
    cdef floating* base = <floating*>data + row_at(dst, r0)
    cdef floating* col
    cdef Py_ssize_t r, c
    if dst.cls == 1:
        transpose_out(tile, R, C, base)         # rows of C contiguous values
        return
    for c in range(C):
        col = base + c * dst.cls
        for r in range(R):
            col[r] = tile[c * R + r]


cdef inline void tile_store_f32(const double* tile, Py_ssize_t R, Py_ssize_t C,
                                const Rows* dst, void* data, Py_ssize_t r0) noexcept nogil:
    """tile_store of a float64 tile into float32 outputs (Args.out_f32), each value
    rounded once."""
    cdef float* base = <float*>data + row_at(dst, r0)
    cdef Py_ssize_t step = dst.outer if dst.cls == 1 else 1    # from one row to the next
    cdef Py_ssize_t r, c
    for c in range(C):
        for r in range(R):
            base[c * dst.cls + r * step] = <float>tile[c * R + r]


cdef inline void store(const Args* a, floating* tile, Py_ssize_t R, Py_ssize_t C, void* data,
                       Py_ssize_t r0, floating factor) noexcept nogil:
    """Rows r0 .. r0+R of the gradient or Hessian (`data`) = factor * tile (factor 1:
    the tile as it is), in the outputs' dtype."""
    cdef Py_ssize_t i
    if factor != 1:
        for i in range(R * C):
            tile[i] = tile[i] * factor
    if floating is double:
        if a.out_f32:
            tile_store_f32(tile, R, C, &a.g, data, r0)
            return
    tile_store(tile, R, C, &a.g, data, r0)


cdef inline int tile_labels(const Args* a, Py_ssize_t r0, Py_ssize_t R, const floating* z_t,
                            const floating* row_max, const floating* class_w,
                            int* labels, bint* skip, floating* gap_label,
                            floating* w_label, double* smooth_sum,
                            Py_ssize_t* flag) noexcept nogil:
    """Cross-entropy with labels, what needs z itself (before it becomes e): the labels,
    read once and checked (skip[r]: ignored or out of range, then labels[r] = -1),
    gap_label = m - z_y, w_label = w_y and, with smoothing only, smooth_sum = sum_c w_c
    (m - z_c).  Returns how many rows are skipped.

    A label is never an index here: z_y and w_y are picked by comparing it with each class
    in turn (compares and blends across rows), as the gradient and Hessian loops put g_y and
    h_y in place, so that no input can make a tile step reach outside its arrays, and the
    steps stay vector code (as scalar gathers and scatters by label they took 15% of a
    1000000 x 10 call).  A skipped row's -1 matches no class: its gap is 0 and its w_y 1."""
    cdef Py_ssize_t C = a.n_cls
    cdef const long long* y_in = a.y + r0
    cdef Py_ssize_t r, c
    cdef int n_skipped = 0, n_bad = 0
    cdef bint bad[NARROW_ROWS]
    cdef floating z_label[NARROW_ROWS]
    cdef floating z, zy, w, wy, one = 1
    cdef long long y
    for r in range(R):              # (separate loops, so that each one vectorizes)
        y = y_in[r]                 # read once (see bad_label)
        bad[r] = bad_label(y, C, a.ignore_index)
        n_bad += bad[r]
        skip[r] = (y == a.ignore_index) | bad[r]
        n_skipped += skip[r]
        labels[r] = -1 if skip[r] else <int>y
    if n_bad and flag[0] == FLAG_NONE:
        for r in range(R):
            if bad[r]:
                flag[0] = r0 + r
                break
    for r in range(R):
        z_label[r] = row_max[r]
        w_label[r] = one
    # (each select of values read unconditionally, so that the compiler vectorizes it)
    for c in range(C):
        w = class_w[c]
        for r in range(R):
            z = z_t[c * R + r]
            zy = z_label[r]
            wy = w_label[r]
            z_label[r] = z if labels[r] == <int>c else zy
            w_label[r] = w if labels[r] == <int>c else wy
    for r in range(R):
        gap_label[r] = row_max[r] - z_label[r]
    if a.smoothing > 0:
        for r in range(R):
            smooth_sum[r] = 0
        for c in range(C):
            for r in range(R):
                smooth_sum[r] += class_w[c] * (row_max[r] - z_t[c * R + r])
    return n_skipped


cdef inline const floating* tile_dense(const Args* a, Py_ssize_t r0, Py_ssize_t R,
                                       floating* z_t, const floating* row_max,
                                       const floating* class_w, floating* target_t,
                                       floating* weight_t, floating* work_t,
                                       double* weight_sum, double* term_sum,
                                       double* tail_sum, floating* n_at_max,
                                       const fl_next_tile* nt) noexcept nogil:
    """Dense targets: the targets (target_t), their weights a_c, the row sums of a_c and of
    a_c L_c, L_c = lambda_c + m - z_c, each product taken in float64 (and 0 where a_c = 0:
    0 log 0 = 0), and then tile_exp's e and sums.  Returns the weights: weight_t, or the
    targets themselves (KL).  work_t: a tile."""
    cdef Py_ssize_t C = a.n_cls
    cdef Py_ssize_t r, c, i
    cdef floating L, zero = 0
    cdef floating keep = <floating>(1 - a.smoothing)
    cdef floating eps_c = <floating>(a.smoothing / C)
    cdef const floating* weights = weight_t
    cdef const floating* lam = work_t
    tile_load(&a.t, r0, R, C, target_t, <floating*>NULL)
    if a.kind == CE_PROBS:
        for c in range(C):
            for r in range(R):
                weight_t[c * R + r] = class_w[c] * (keep * target_t[c * R + r] + eps_c)
        for i in range(C * R):          # cross-entropy: lambda_c = 0
            work_t[i] = zero
    elif a.kind == KL_LOG:              # a_c = exp(lambda_c), lambda_c the log-target
        for i in range(C * R):
            weight_t[i] = vexp(target_t[i])
        lam = target_t
    else:                               # KL: a_c = t_c, lambda_c = log t_c (unused where 0)
        weights = target_t
        vlog_n_where_nonzero(target_t, C * R, work_t)
    if floating is float:           # the sums and the exp in one pass (narrow.h)
        fl_tile_exp_dense_f32(z_t, weights, lam, row_max, R, C, tail_sum, n_at_max,
                              weight_sum, term_sum, nt)
        return weights
    for r in range(R):
        weight_sum[r] = 0
        term_sum[r] = 0
    for c in range(C):
        for r in range(R):
            i = c * R + r
            L = lam[i] + (row_max[r] - z_t[i])
            weight_sum[r] += weights[i]
            term_sum[r] += (<double>weights[i] * <double>L) if weights[i] != zero else 0.0
    tile_exp(z_t, row_max, R, C, tail_sum, n_at_max, nt)
    return weights


cdef inline void tile_exp(floating* z_t, const floating* row_max, Py_ssize_t R, Py_ssize_t C,
                          double* tail_sum, floating* n_at_max,
                          const fl_next_tile* nt) noexcept nogil:
    """z_t becomes e = exp(z - m); tail_sum = the sum of e below 1 (in float64; a float
    tile adds each four classes' e in float first, narrow.h), n_at_max the count of classes
    at the maximum (e == 1).  Meanwhile asks for the next tile's memory (nt, see
    next_tile)."""
    cdef Py_ssize_t r, c, i
    cdef floating v, zero = 0, one = 1
    if floating is float:           # the same sums, kept in registers (narrow.h)
        fl_tile_exp_sums_f32(z_t, row_max, R, C, tail_sum, n_at_max, nt)
        return
    for r in range(R):
        tail_sum[r] = 0
        n_at_max[r] = zero
    for c in range(C):
        fl_next_tile_share(nt, c, C)
        for r in range(R):
            i = c * R + r
            v = vexp_tile(z_t[i] - row_max[r])
            z_t[i] = v
            tail_sum[r] += zero if v == one else v
            n_at_max[r] += one if v == one else zero


cdef inline void tile_hess(const floating* e_t, Py_ssize_t R, Py_ssize_t C,
                           const floating* hess_factor, const double* tail_sum,
                           const floating* n_at_max, floating* out_t) noexcept nogil:
    """out_t = hess_factor p (1 - p), with p = e / S and 1 - p at the maximum exactly
    (S - 1) / S when the maximum is alone."""
    cdef Py_ssize_t r, c
    cdef floating inv_sum[NARROW_ROWS]              # 1 / S
    cdef floating q_max[NARROW_ROWS]                # 1 - p at the maximum
    cdef floating p, one = 1
    for r in range(R):
        inv_sum[r] = one / (n_at_max[r] + <floating>tail_sum[r])
        q_max[r] = <floating>tail_sum[r] * inv_sum[r] if n_at_max[r] == one else one - inv_sum[r]
    for c in range(C):
        for r in range(R):
            p = e_t[c * R + r] * inv_sum[r]
            out_t[c * R + r] = hess_factor[r] * p * (q_max[r] if e_t[c * R + r] == one
                                                     else one - p)


cdef inline void next_range(const Rows* rows, void* data, Py_ssize_t n0, Py_ssize_t n,
                            Py_ssize_t C, Py_ssize_t size, fl_next_tile* nt,
                            int i) noexcept nogil:
    """Range i of nt: rows n0 .. n0+n of `data` (laid out as rows), when they are one
    contiguous span (dense rows of contiguous classes); else none."""
    nt.p[i] = NULL
    nt.bytes[i] = 0
    if data != NULL and n > 0 and rows.cls == 1 and rows.inner == 1 and rows.outer == C:
        nt.p[i] = <const char*>data + row_at(rows, n0) * size
        nt.bytes[i] = n * C * size


cdef inline void next_tile(const Args* a, Py_ssize_t n0, Py_ssize_t R, Py_ssize_t size,
                           fl_next_tile* nt, Mode mode) noexcept nogil:
    """The memory of the tile after this one (rows n0 .. n0+R, those that exist): its
    input, targets or labels, and the gradient (and Hessian) rows it writes, for tile_exp
    to ask for while this tile computes (narrow.h, fl_next_tile).  size: bytes per value
    of the input (and of the outputs, but for Args.out_f32)."""
    cdef Py_ssize_t C = a.n_cls
    cdef Py_ssize_t n = a.n_rows - n0 if a.n_rows - n0 < R else R
    cdef Py_ssize_t out_size = sizeof(float) if a.out_f32 else size
    cdef void* grad = NULL
    cdef void* hess = NULL
    if Mode is not value_only:
        grad = a.g.data
    if Mode is grad_and_hess:
        hess = a.hess
    n = n if n > 0 else 0
    next_range(&a.x, a.x.data, n0, n, C, size, nt, 0)
    if a.kind == CE_INDEX:
        nt.p[1] = <const void*>(a.y + n0) if n > 0 else NULL
        nt.bytes[1] = n * sizeof(long long)
    else:
        next_range(&a.t, a.t.data, n0, n, C, size, nt, 1)
    next_range(&a.g, grad, n0, n, C, out_size, nt, 2)
    next_range(&a.g, hess, n0, n, C, out_size, nt, 3)


cdef inline double row_tile(const Args* a, Py_ssize_t r0, Py_ssize_t R, const floating* sw,
                            floating* scratch, Py_ssize_t* flag, Mode mode) noexcept nogil:
    """Weighted loss of rows r0 .. r0+R from logits (R <= NARROW_ROWS, R * C at most a
    tile; class-strided rows in one N); writes their gradient (and Hessian) rows.

    scratch (heap memory of the thread: too much for its stack in float64) holds
    NARROW_TILES tiles of max(NARROW_TILE, C) values, then C class weights.
    """
    cdef Py_ssize_t C = a.n_cls
    cdef Py_ssize_t tile = NARROW_TILE if C <= NARROW_TILE else C
    cdef floating* z_t = scratch                    # z, then e = exp(z - m)
    cdef floating* target_t = scratch + tile        # dense targets
    cdef floating* weight_t = scratch + 2 * tile    # their weights a_c
    cdef const floating* weights = weight_t         # (or the targets themselves: KL)
    cdef floating* out_t = scratch + 3 * tile       # terms, then Hessian, then gradient
    cdef floating* class_w = scratch + 4 * tile     # class weights (ones without them)
    # per row, float64 sums over the classes
    cdef double tail_sum[NARROW_ROWS]               # sum of e below 1 (T)
    cdef double weight_sum[NARROW_ROWS]             # dense: sum of a_c (A)
    cdef double term_sum[NARROW_ROWS]               # dense: sum of a_c (lambda_c + m - z_c)
    cdef double smooth_sum[NARROW_ROWS]             # labels: sum of w_c (m - z_c) (D)
    cdef double log_s[NARROW_ROWS]                  # dense: log S in float64
    # per row, in the input's dtype
    cdef floating row_max[NARROW_ROWS]              # m
    cdef floating n_at_max[NARROW_ROWS]             # classes at the maximum (k)
    cdef floating row_scale[NARROW_ROWS]            # sample weight * scale, 0 if skipped
    cdef floating row_loss[NARROW_ROWS]             # weighted loss
    cdef floating grad_factor[NARROW_ROWS]          # g_c = grad_factor e_c - ...
    cdef floating hess_factor[NARROW_ROWS]          # h_c = hess_factor p_c (1 - p_c)
    cdef floating gap_label[NARROW_ROWS]            # labels: m - z_y
    cdef floating e_label[NARROW_ROWS]              # labels: e_y = exp(z_y - m)
    cdef floating w_label[NARROW_ROWS]              # labels: w_y
    cdef floating grad_label[NARROW_ROWS]           # labels: g_y and h_y, exactly
    cdef floating hess_label[NARROW_ROWS]
    cdef floating smooth_w[NARROW_ROWS]             # labels: row_scale eps / C
    cdef int labels[NARROW_ROWS]                    # labels: y, -1 where skipped
    cdef bint skip[NARROW_ROWS]                     # labels: ignored or out of range
    cdef const floating* cw = <const floating*>a.cw
    cdef floating f, hf, gy, hy, gc, hc, zero = 0, one = 1
    cdef floating eps_c = <floating>(a.smoothing / C)
    cdef floating scale = <floating>a.scale
    cdef int n_skipped = 0
    cdef Py_ssize_t r, c
    cdef fl_next_tile nt
    for c in range(C):
        class_w[c] = one if cw == NULL else cw[c]
    next_tile(a, r0 + R, R, sizeof(floating), &nt, mode)
    tile_load(&a.x, r0, R, C, z_t, row_max)
    if a.kind == CE_INDEX:
        n_skipped = tile_labels(a, r0, R, z_t, row_max, class_w, labels, skip, gap_label,
                                w_label, smooth_sum, flag)
        tile_exp(z_t, row_max, R, C, tail_sum, n_at_max, &nt)
    else:                           # (also tile_exp's part)
        weights = tile_dense(a, r0, R, z_t, row_max, class_w, target_t, weight_t, out_t,
                             weight_sum, term_sum, tail_sum, n_at_max, &nt)
    # per-row losses and factors: one branch-free loop over rows
    if a.kind == CE_INDEX:
        # e_y with the tile's bits (tile_exp's), from the gap rather than gathered; float:
        # the tile exp in vectors (a loop of single table exps would turn into gathers)
        for r in range(R):
            e_label[r] = -gap_label[r]
        if floating is float:
            vexp_shift_n(&e_label[0], zero, R, &e_label[0])
        else:
            for r in range(R):
                e_label[r] = vexp_tile(e_label[r])
        for r in range(R):
            row_scale[r] = zero if skip[r] else sw[r] * scale
        for r in range(R):
            row_loss[r] = sw[r] * finish_index(
                <floating>tail_sum[r], n_at_max[r],
                <floating>smooth_sum[r] if a.smoothing > 0 else zero, gap_label[r],
                e_label[r],
                w_label[r], row_scale[r], <floating>a.smoothing, eps_c, <floating>a.cw_sum,
                &f, &hf, &gy, &hy)
            row_loss[r] = zero if skip[r] else row_loss[r]
            grad_factor[r] = f
            hess_factor[r] = hf
            grad_label[r] = gy
            hess_label[r] = hy
    else:
        for r in range(R):          # a loop of its own vectorizes (the one below does not)
            log_s[r] = log_sum(tail_sum[r], <double>n_at_max[r])
        for r in range(R):
            row_scale[r] = sw[r] * scale
            row_loss[r] = sw[r] * finish_dense(tail_sum[r], n_at_max[r], weight_sum[r],
                                               term_sum[r], log_s[r], row_scale[r], &f, &hf)
            grad_factor[r] = f
            hess_factor[r] = hf
    if a.value != NULL:
        for r in range(R):
            (<floating*>a.value)[r0 + r] = row_loss[r]
    if Mode is value_only:
        return vsum(row_loss, R)
    # Hessian, then gradient, formed in the tile and stored as rows
    if Mode is grad_and_hess:
        tile_hess(z_t, R, C, hess_factor, tail_sum, n_at_max, out_t)
        if a.kind == CE_INDEX:      # h_y in place (see tile_labels)
            for c in range(C):
                for r in range(R):
                    hc = out_t[c * R + r]
                    hy = hess_label[r]
                    out_t[c * R + r] = hy if labels[r] == <int>c else hc
        store(a, out_t, R, C, a.hess, r0, <floating>a.hess_scale)
    if a.kind == CE_INDEX:
        for r in range(R):
            smooth_w[r] = row_scale[r] * eps_c
        for c in range(C):          # g_y in place (see tile_labels)
            for r in range(R):
                gc = grad_factor[r] * z_t[c * R + r] - smooth_w[r] * class_w[c]
                gy = grad_label[r]
                out_t[c * R + r] = gy if labels[r] == <int>c else gc
    else:
        for c in range(C):
            for r in range(R):
                out_t[c * R + r] = (grad_factor[r] * z_t[c * R + r]
                                    - row_scale[r] * weights[c * R + r])
    store(a, out_t, R, C, a.g.data, r0, one)
    if n_skipped:                   # skipped rows: zero gradient, whatever their logits
        for r in range(R):
            if not skip[r]:
                continue
            if floating is double:
                if a.out_f32:
                    zero_row(<float*>a.g.data + row_at(&a.g, r0 + r), C, a.g.cls)
                    if Mode is grad_and_hess:
                        zero_row(<float*>a.hess + row_at(&a.g, r0 + r), C, a.g.cls)
                    continue
            zero_row(<floating*>a.g.data + row_at(&a.g, r0 + r), C, a.g.cls)
            if Mode is grad_and_hess:
                zero_row(<floating*>a.hess + row_at(&a.g, r0 + r), C, a.g.cls)
    return vsum(row_loss, R)


# ------------------------------------------------------------------ from probabilities ----

cdef double prob_row(const Args* a, Py_ssize_t r, floating sw_r, Py_ssize_t* flag,
                     Mode mode) noexcept nogil:
    """Weighted loss of one row whose input holds probabilities (from_logits=False)."""
    cdef Py_ssize_t C = a.n_cls
    cdef const floating* prow = <const floating*>a.x.data + row_at(&a.x, r)
    cdef const floating* trow = NULL
    cdef const floating* cw = <const floating*>a.cw
    cdef floating* grow = NULL
    cdef floating* hrow = NULL
    cdef floating pbuf[TILE]
    cdef floating tbuf[TILE]
    cdef floating weights[TILE]
    cdef floating terms[TILE]
    cdef Py_ssize_t gs = a.g.cls
    cdef floating s = <floating>(sw_r * a.scale)
    cdef floating eps = 1e-12
    cdef floating lo = -100
    cdef floating zero = 0, one = 1
    cdef floating eps_c = <floating>(a.smoothing / C)
    cdef floating keep_y = 0
    cdef floating lp, lam, pc
    cdef const floating* p
    cdef const floating* t = NULL
    cdef const floating* av
    cdef Py_ssize_t c0, n, c
    cdef long long y = -1
    cdef double total = 0
    if not open_row(a, r, &grow, &hrow, &y, flag, mode):
        return 0
    if a.kind == CE_INDEX:
        keep_y = <floating>((1 - a.smoothing) * (1 if cw == NULL else cw[y]))
    else:
        trow = <const floating*>a.t.data + row_at(&a.t, r)
    c0 = 0
    while c0 < C:
        n = C - c0 if C - c0 < TILE else TILE
        p = tile_of(prow, a.x.cls, c0, n, pbuf)
        if a.kind == CE_INDEX:
            for c in range(n):
                weights[c] = eps_c * (one if cw == NULL else cw[c0 + c])
            if c0 <= y < c0 + n:
                weights[y - c0] += keep_y
            av = weights
        else:
            t = tile_of(trow, a.t.cls, c0, n, tbuf)
            av = dense_weights(a, t, NULL if cw == NULL else cw + c0, n, weights)
        for c in range(n):
            pc = p[c]
            lp = vlog(pc)
            lp = lp if lp > lo else lo
            lam = zero
            if a.kind == KL:
                lam = vlog(t[c])
            elif a.kind == KL_LOG:
                lam = t[c]
            terms[c] = av[c] * (lam - lp) if av[c] != 0 else zero
            if Mode is not value_only:
                grow[(c0 + c) * gs] = s * (-av[c] / (pc if pc > eps else eps))
            if Mode is grad_and_hess:
                hrow[(c0 + c) * gs] = s * (av[c] / (pc * pc) if pc > eps else zero)
                if a.hess_scale != 1:
                    hrow[(c0 + c) * gs] = hrow[(c0 + c) * gs] * <floating>a.hess_scale
        total += vsum(terms, n)
        c0 += n
    return sw_r * total


# ------------------------------------------------------------------ blocks and driver ----

cdef inline bint use_tiles(const Args* a) noexcept nogil:
    """Row tiles (else row by row): few classes, or classes a stride apart (inner > 1;
    with inner == 1 the classes are contiguous, see softmax())."""
    return a.from_logits and (a.n_cls <= NARROW_MAX or a.x.inner > 1)


cdef inline Py_ssize_t tile_rows(const Args* a) noexcept nogil:
    """Rows per tile: NARROW_ROWS, fewer when a tile's values would pass NARROW_TILE."""
    cdef Py_ssize_t R = NARROW_TILE // a.n_cls
    if R > NARROW_ROWS:
        return NARROW_ROWS
    return R if R >= 1 else 1


cdef double run_block(const Args* a, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t* flag,
                      floating* scratch, const Args* src, Py_ssize_t lead,
                      Mode mode) noexcept nogil:
    """Weighted loss sum of rows lo .. hi, writing the requested outputs; *flag as
    blocked_sum's blocks set it (the first row with a bad label, say).  scratch: the
    thread's row-tile scratch (scratch_values), when the rows go in tiles.  src, lead:
    what wide rows prefetch (wide_row)."""
    cdef floating swbuf[NARROW_ROWS]
    cdef floating ones[NARROW_ROWS]
    cdef const floating* sw
    cdef Py_ssize_t r0, R, r, most, left
    cdef double acc = 0, l
    cdef bint tiles = use_tiles(a)
    flag[0] = FLAG_NONE
    most = tile_rows(a) if tiles else NARROW_ROWS
    fill(&ones[0], NARROW_ROWS, <floating>1)
    r0 = lo
    while r0 < hi:
        R = hi - r0 if hi - r0 < most else most
        if tiles and a.x.inner > 1:             # a tile's rows lie in one N
            left = a.x.inner - r0 % a.x.inner
            R = left if left < R else R
        if a.sw == NULL:
            sw = &ones[0]
        else:
            sw = grouped_tile(<const floating*>a.sw, a.sw_group, r0, R, &swbuf[0])
        if tiles and R == NARROW_ROWS:
            # a whole tile: a copy of row_tile where the compiler knows R, so that its
            # loops over rows have no remainder or alias checks (5% of a narrow call)
            acc += row_tile(a, r0, NARROW_ROWS, sw, scratch, flag, mode)
        elif tiles:
            acc += row_tile(a, r0, R, sw, scratch, flag, mode)
        else:
            for r in range(R):
                if a.from_logits:
                    l = wide_row(a, r0 + r, sw[r], flag, src, lead, mode)
                else:
                    l = prob_row(a, r0 + r, sw[r], flag, mode)
                if a.value != NULL:
                    (<floating*>a.value)[r0 + r] = <floating>l
                acc += l
        r0 += R
    return acc


cdef inline double run_mode(const Args* a, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t* flag,
                           floating* scratch, const Args* src, Py_ssize_t lead) noexcept nogil:
    # one call per mode, each with a compile-time mode: one specialized loop each (the
    # same dispatch as pointwise.pyx's run_mode, over this family's run_block)
    cdef value_only v = value_only(0)          # type tags: only their type matters
    cdef value_and_grad vg = value_and_grad(0)
    cdef grad_and_hess gh = grad_and_hess(0)
    if a.mode == VALUE:
        return run_block(a, lo, hi, flag, scratch, src, lead, v)
    elif a.mode == VALUE | GRAD:
        return run_block(a, lo, hi, flag, scratch, src, lead, vg)
    return run_block(a, lo, hi, flag, scratch, src, lead, gh)


cdef double softmax_block(const void* args, Py_ssize_t lo, Py_ssize_t hi,
                          Py_ssize_t* flag, void* scratch) noexcept nogil:
    """The BlockFn of this family (blocks.pxd): rows lo .. hi of one call.  Half-precision
    rows are first widened to float32 into the thread's scratch (after its row-tile part),
    and the block runs on those, read as the rows lo .. hi of x.  Half-precision outputs:
    the block writes its gradient (and Hessian) rows as float32 into the scratch after
    that, as contiguous rows lo .. hi, then rounds them into the outputs' layout."""
    cdef const Args* a = <const Args*>args
    cdef Args widened
    cdef float* rows
    cdef float* grads
    cdef Py_ssize_t r, C = a.n_cls, block = block_rows(C) * C
    cdef double total
    cdef bint tiles
    cdef bint widen = widens_rows(a)
    if a.x_half or a.out_half:
        widened = a[0]              # x_half stays set where rows are read as they are
        rows = <float*>scratch + tile_values(a)
        if widen:
            widened.x_half = 0      # the rows it reads are float32
            # wide rows ask memory for the half-precision rows of the next block as they
            # compute (wide_row's src and lead); narrow ones a row at a time here
            tiles = use_tiles(a)
            for r in range(lo, hi):
                if tiles:
                    fl_half_tile(<const uint16_t*>a.x.data + r * a.x.outer, 1, C,
                                 a.x_half, rows + (r - lo) * C)
                else:
                    fl_half_widen(<const uint16_t*>a.x.data + r * a.x.outer, 1, C,
                                  a.x_half, rows + (r - lo) * C)
            widened.x.data = <void*>(rows - lo * C)     # row r at rows + (r - lo) * C
            widened.x.outer = C
            widened.n_rows = hi     # narrow tiles ask for no row past the block (wide
                                    # rows ask for the call's own, src in run_mode)
            rows += block
        if a.out_half and a.g.data != NULL:
            grads = rows
            widened.g.data = <void*>(grads - lo * C)
            widened.g.outer = C
            widened.g.inner = widened.g.cls = 1
            if a.hess != NULL:
                widened.hess = <void*>(grads + block - lo * C)
        total = run_mode(&widened, lo, hi, flag, <float*>scratch, a,
                         hi - lo if widen else 1)
        if a.out_half and a.g.data != NULL:
            for r in range(lo, hi):
                fl_half_store(grads + (r - lo) * C, C, a.out_half,
                              <uint16_t*>a.g.data + row_at(&a.g, r), a.g.cls)
                if a.hess != NULL:
                    fl_half_store(grads + block + (r - lo) * C, C, a.out_half,
                                  <uint16_t*>a.hess + row_at(&a.g, r), a.g.cls)
        return total
    if a.float32:
        return run_mode(a, lo, hi, flag, <float*>scratch, a, 1)
    return run_mode(a, lo, hi, flag, <double*>scratch, a, 1)


cdef inline bint half_rows_as_they_are(const Args* a) noexcept nogil:
    """Whether the rows of a half-precision call are read as they are (wide_row's hz), not
    widened into scratch first: long rows (FL_HALF_WIDE_MIN classes or more; half.h says
    when that is faster) with class labels and no smoothing, so that their max, z_y and
    the exp of z are all that wide_row reads of them (the gradient and Hessian are formed
    from e in their own rows)."""
    return (a.x_half != 0 and FL_HALF_WIDE_MIN > 0 and a.n_cls >= FL_HALF_WIDE_MIN
            and a.kind == CE_INDEX and a.smoothing == 0 and not use_tiles(a))


cdef inline bint widens_rows(const Args* a) noexcept nogil:
    """Whether softmax_block widens the call's rows into scratch: half-precision input,
    except rows read as they are."""
    return a.x_half != 0 and not half_rows_as_they_are(a)


cdef inline size_t tile_values(const Args* a) noexcept nogil:
    """Values of row-tile scratch a thread needs (row_tile's layout), 0 without tiles."""
    cdef Py_ssize_t tile = NARROW_TILE if a.n_cls <= NARROW_TILE else a.n_cls
    return NARROW_TILES * tile + a.n_cls if use_tiles(a) else 0


cdef inline size_t scratch_values(const Args* a) noexcept nogil:
    """Values of scratch a thread needs: row tiles, then a block of rows widened from half
    precision (none for rows read as they are), then a block of gradient and one of
    Hessian rows for half outputs."""
    cdef size_t block = block_rows(a.n_cls) * a.n_cls
    cdef size_t outs = 0
    if a.out_half and a.g.data != NULL:
        outs = 2 if a.hess != NULL else 1
    return tile_values(a) + block * ((1 if widens_rows(a) else 0) + outs)


cdef inline Rows rows_of(object arr):
    """The Rows of a 3-D (outer, classes, inner) array (inner == 1, or inner stride 1), or
    of a 2-D (rows, classes) one, read as (rows, classes, 1)."""
    cdef Rows rows
    cdef cnp.ndarray a
    cdef Py_ssize_t itemsize
    rows.data = NULL
    rows.outer = rows.cls = 0
    rows.inner = 1
    if arr is None:
        return rows
    a = <cnp.ndarray>arr
    itemsize = cnp.PyArray_ITEMSIZE(a)
    rows.data = <void*>cnp.PyArray_DATA(a)
    rows.outer = cnp.PyArray_STRIDE(a, 0) // itemsize
    rows.cls = cnp.PyArray_STRIDE(a, 1) // itemsize
    rows.inner = cnp.PyArray_DIM(a, 2) if cnp.PyArray_NDIM(a) == 3 else 1
    return rows


cdef double run_softmax(const Args* a, Py_ssize_t n_rows, int n_threads,
                        Py_ssize_t* flag) noexcept nogil:
    """A call over n_rows rows as fastloss.api makes it (entries.pxd, SoftmaxEntry): the
    same blocks, scratch, reduction and threads as `softmax` below."""
    cdef size_t scratch_bytes = scratch_values(a) * (sizeof(float) if a.float32
                                                     else sizeof(double))
    cdef Args call = a[0]
    call.n_rows = n_rows
    return blocked_sum(softmax_block, &call, n_rows, block_rows(a.n_cls), n_rows * a.n_cls,
                       n_threads, scratch_bytes, NULL, flag)


#: The C entry points that fastloss.api calls (entries.pxd): {name: PyCapsule}.
ENTRIES = {"softmax": PyCapsule_New(<void*>run_softmax, FL_ENTRY_SOFTMAX, NULL)}


def softmax(int kind, int mode, bint from_logits, cnp.ndarray x, object y, object t,
            object cw, double cw_sum, object sw, Py_ssize_t sw_group, object value,
            object grad, object hess, double scale, double smoothing,
            long long ignore_index, int n_threads, object exact=None,
            double hess_scale=1.0, bint out_f32=False, int x_half=0, int out_half=0):
    """Run one softmax loss over the rows of x; return (sum of sample weight * loss, flag)
    (the sum also added exactly to `exact`, an exact-sum state, if given).

    x is 3-D (outer, classes, inner): row r is (r // inner, :, r % inner); or 2-D
    (rows, classes), read as (rows, classes, 1).  Its strides are multiples of the item
    size; with inner == 1 the class stride is one item, else the inner stride is.  t
    (dense targets), grad and hess (or None) have x's shape and obey the same rule (grad
    and hess share their strides); with labels, grad may be x itself (the gradient
    written over the logits).  The caller (fastloss._loss) has validated everything: y
    (CE_INDEX) is C-contiguous int64 with one label per row, each in range or
    ignore_index; cw, sw and value are None or C-contiguous of x's dtype.
    flag is -1, or the first row whose label was out of range when the kernel read it
    (the caller's labels changed after they were checked; such rows count as ignored).
    MemoryError if a block found no memory for its scratch.

    For the boosting objectives (fastloss._boosting): the Hessian is multiplied by
    hess_scale; out_f32 (float64 x, rows in tiles: from logits, classes a stride apart or
    at most NARROW_MAX) writes grad and hess as float32.

    x_half (half.h's FL_HALF_F16, FL_HALF_BF16): x holds 2-byte float16 / bfloat16 values
    (any 2-byte dtype), from logits, classes contiguous (inner == 1 and a class stride of
    one item); everything else is float32.  out_half (likewise; float32 data): grad and
    hess hold 2-byte values, each rounded to nearest even from the float32 result (any
    layout; not written over x).
    """
    cdef Args a
    cdef Py_ssize_t n_rows = cnp.PyArray_DIM(x, 0) * (cnp.PyArray_DIM(x, 2)
                                                      if cnp.PyArray_NDIM(x) == 3 else 1)
    cdef double total
    cdef Py_ssize_t flag = FLAG_NONE
    cdef size_t scratch_bytes
    cdef fl_exact acc
    cdef fl_exact* accp = exact_in(exact, &acc)
    a.kind = kind
    a.mode = mode
    a.float32 = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32 or x_half != 0
    a.x_half = x_half
    a.from_logits = from_logits
    a.n_cls = cnp.PyArray_DIM(x, 1)
    a.x = rows_of(x)
    a.t = rows_of(t)
    a.g = rows_of(grad)
    a.hess = <void*>data_or_null(hess)
    a.y = <const long long*>data_or_null(y)
    a.ignore_index = ignore_index
    a.cw = data_or_null(cw)
    a.cw_sum = cw_sum
    a.sw = data_or_null(sw)
    a.sw_group = sw_group
    a.value = <void*>data_or_null(value)
    a.scale = scale
    a.smoothing = smoothing
    a.hess_scale = hess_scale
    if x_half and not (from_logits and a.x.cls == 1 and a.x.inner == 1):
        raise ValueError("fastloss: half-precision input needs logits in rows of contiguous "
                         "classes")
    a.out_f32 = out_f32 and not a.float32
    if out_half and not a.float32:
        raise ValueError("fastloss: half-precision outputs need float32 data")
    a.out_half = out_half
    if a.out_f32 and not use_tiles(&a):
        raise ValueError("fastloss: float32 outputs of float64 input need rows in tiles "
                         "(from logits, classes a stride apart or at most NARROW_MAX)")
    a.n_rows = n_rows
    scratch_bytes = scratch_values(&a) * (sizeof(float) if a.float32 else sizeof(double))
    with nogil:
        total = blocked_sum(softmax_block, &a, n_rows, block_rows(a.n_cls), n_rows * a.n_cls,
                            n_threads, scratch_bytes, accp, &flag)
    exact_out(exact, accp)
    if flag == FLAG_NO_MEMORY:
        raise MemoryError("fastloss: no memory for the kernel's scratch")
    return total, flag
