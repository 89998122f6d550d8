# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Hooks for tests and benchmarks, kept out of the kernel modules that the losses load.

Compiled once per instruction-set level like a kernel family (fastloss._dispatch.probes()
loads it on demand), so that tests can check each level's vector math and row helpers,
and benchmarks can time the memory-bandwidth floor with the kernels' own blocking.
"""
from cython cimport floating
cimport numpy as cnp

from .blocks cimport (TILE, FL_LANES, BLOCK_MIN, PARALLEL_MIN, NARROW_MAX,
                      NARROW_ROWS, FLAG_NONE, FLAG_NO_MEMORY, blocked_sum, vmax_at, kl_tile,
                      fl_kl_tile_loops_f32, fl_kl_tile_loops_f64, FL_HALF_WIDE_MIN)
from .vecmath cimport (vexp, vexp_nonpos, vexp_tile, vexp_shift_n, vlog, vlog_n,
                       vlog_n_where_nonzero, vlog1p, vlog1p_unit, vlogistic_parts)
from .arrays cimport data_or_null

cdef extern from *:
    """
    #include "vecmath.h"
    #if defined(FL_VECTOR_OPERATORS)
    #define FL_PROBE_VECTOR_OPERATORS 1
    #else
    #define FL_PROBE_VECTOR_OPERATORS 0
    #endif
    """
    int FL_EXP_TABLE_N
    int FL_PROBE_VECTOR_OPERATORS

cnp.import_array()

#: The kernels' blocking and tiling constants (blocks.pxd), for tests and tools that
#: need sizes on and around the kernels' boundaries.  HALF_WIDE_MIN: classes from which a
#: row of float16/bfloat16 logits is read as it is, without a float32 copy (half.h; 0 at a
#: level that always copies).
LAYOUT = {"TILE": TILE, "LANES": FL_LANES, "BLOCK_MIN": BLOCK_MIN,
          "PARALLEL_MIN": PARALLEL_MIN, "NARROW_MAX": NARROW_MAX, "NARROW_ROWS": NARROW_ROWS,
          "HALF_WIDE_MIN": FL_HALF_WIDE_MIN}


# ------------------------------------------------------------- vector math, for tests ----

#: Entries of the table of the softmax's float exp at this level (vecmath.h's tile exp: 8
#: with AVX2, 16 with AVX-512), 0 where it is fl_exp_nonpos's polynomial; and whether the
#: build has C operators on vector types (GCC, Clang; not MSVC, whose builds run the plain
#: loops and so have no table).
EXP_TABLE = FL_EXP_TABLE_N
VECTOR_OPERATORS = bool(FL_PROBE_VECTOR_OPERATORS)

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
    elif fn == 7:
        vlog_n_where_nonzero(x, n, out)
    elif fn == 8:
        for i in range(n):
            out[i] = vexp_tile(x[i])
    else:
        for i in range(n):
            out[i] = vlog1p_unit(x[i], one / (one + x[i]))


MATH = {"exp": 0, "log": 1, "log1p": 2, "log1p_unit": 3, "exp_nonpos": 4, "log_n": 5,
        "exp_n": 6, "log_nonzero": 7, "exp_tile": 8}


def vector_math(str name, cnp.ndarray x, cnp.ndarray out):
    """out = name(x) elementwise with this build's vectorized math (tests use it to check
    the error bounds of every instruction-set level).  x, out: C-contiguous, same float
    dtype and size.  "log1p_unit" is log1p on [0, 1], "exp_nonpos" exp for x <= 0, and
    "log_n" and "exp_n" (x <= 0) work a tile at a time (vecmath.h), as does "log_nonzero",
    the log of the KL targets (any value where x is 0); "exp_tile" is exp_n one value at a
    time (x <= 0), the softmax's single exps."""
    cdef int fn = MATH[name]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            apply_math(fn, <const float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), n)
    else:
        with nogil:
            apply_math(fn, <const double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out), n)


def logistic_parts(cnp.ndarray x, cnp.ndarray e, cnp.ndarray d, cnp.ndarray L):
    """e = exp(-|x|), d = 1 / (1 + e) and L = log1p(e) with this build's vecmath.h
    (fl_logistic_parts: the stage of BCE with logits).  All C-contiguous, one float dtype
    and size."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            vlogistic_parts(<const float*>cnp.PyArray_DATA(x), n, <float*>cnp.PyArray_DATA(e),
                            <float*>cnp.PyArray_DATA(d), <float*>cnp.PyArray_DATA(L))
    else:
        with nogil:
            vlogistic_parts(<const double*>cnp.PyArray_DATA(x), n,
                            <double*>cnp.PyArray_DATA(e), <double*>cnp.PyArray_DATA(d),
                            <double*>cnp.PyArray_DATA(L))


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
                        Py_ssize_t* flag, void* scratch) noexcept nogil:
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
        blocked_sum(floor_block, &f, n, BLOCK_MIN, n, n_threads, 0, NULL, &flag)
    if flag == FLAG_NO_MEMORY:
        raise MemoryError("fastloss: no memory for the block sums")


# ----------------------------------------------------------------- row helpers ----

def max_at(cnp.ndarray x):
    """(m, i) of this build's vmax_at over a C-contiguous float array: the maximum
    (NaN may be skipped) and an index where x equals it, or -1 (tests)."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef Py_ssize_t i
    cdef float m32
    cdef double m64
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        i = vmax_at(<const float*>cnp.PyArray_DATA(x), n, &m32)
        return float(m32), i
    i = vmax_at(<const double*>cnp.PyArray_DATA(x), n, &m64)
    return m64, i


cdef void kl_tiles_both(const floating* z, const floating* t, floating m, Py_ssize_t n,
                        Py_ssize_t top, floating* e1, floating* e2, double* sums) noexcept nogil:
    cdef floating scratch[2 * TILE]
    cdef Py_ssize_t j
    for j in range(6 * FL_LANES):
        sums[j] = 0
    kl_tile(z, t, m, n, top, e1, sums, sums + FL_LANES, sums + 2 * FL_LANES, &scratch[0])
    if floating is float:
        fl_kl_tile_loops_f32(z, t, m, n, top, e2, sums + 3 * FL_LANES, sums + 4 * FL_LANES,
                             sums + 5 * FL_LANES, &scratch[0])
    else:
        fl_kl_tile_loops_f64(z, t, m, n, top, e2, sums + 3 * FL_LANES, sums + 4 * FL_LANES,
                             sums + 5 * FL_LANES, &scratch[0])


def kl_tile_check(cnp.ndarray z, cnp.ndarray t, double m, Py_ssize_t top, object e1,
                  object e2, cnp.ndarray sums):
    """This build's one-pass KL tile (kl_tile.h) and its tile loops on the same tile (z, t:
    C-contiguous, same float dtype, at most TILE values), for tests that the two agree bit
    for bit: e1 and e2 get their e (None: value only), sums (float64, 6 FL_LANES) their
    lanes T, A, B, one after the other."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(z)
    if n > TILE or cnp.PyArray_SIZE(sums) != 6 * FL_LANES:
        raise ValueError("at most TILE values, and 6 FL_LANES sums")
    if cnp.PyArray_TYPE(z) == cnp.NPY_FLOAT32:
        kl_tiles_both(<const float*>cnp.PyArray_DATA(z), <const float*>cnp.PyArray_DATA(t),
                      <float>m, n, top, <float*>data_or_null(e1), <float*>data_or_null(e2),
                      <double*>cnp.PyArray_DATA(sums))
    else:
        kl_tiles_both(<const double*>cnp.PyArray_DATA(z), <const double*>cnp.PyArray_DATA(t),
                      m, n, top, <double*>data_or_null(e1), <double*>data_or_null(e2),
                      <double*>cnp.PyArray_DATA(sums))
