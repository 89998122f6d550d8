# The blocked, deterministic reduction that every kernel family shares (blocked_sum).
#
# A call splits its work units (elements for pointwise losses, rows for softmax losses,
# weights or labels for the argument checks) into contiguous blocks of a fixed number of
# units (the last one shorter), which depends only on the kind of unit, never on the size
# of the call or the number of threads.  Threads take whole blocks; each block sums its
# tiles in a fixed order into one double, and the call's total is the exact sum of its
# block sums, rounded once (fl_exact.h).  The result is therefore bitwise identical for any
# thread count and any run; and since a block's sum depends only on its units, the same
# data cut into batches at block boundaries (multiples of BLOCK_MIN rows) and summed
# exactly in any order gives the same bits as one call (fastloss.Accumulator).  Threads
# take the blocks as they get to them, in short runs (fl_omp.h's block pool, or an OpenMP
# loop with dynamic scheduling), so a thread that lost its core to another process holds
# up no more than the blocks it has started.  Within a block, work proceeds in tiles of at
# most TILE elements, so that every scratch buffer a kernel needs (gathered strided input,
# expanded weights, per-element losses) is a small stack array that stays in L1; a family
# that needs more (the softmax row tiles) gets heap scratch per thread from blocked_sum.
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stddef cimport ptrdiff_t
from libc.stdlib cimport malloc, free
from libc.stdint cimport int64_t, uint16_t

cdef extern from "fl_omp.h" nogil:
    int fl_omp_max_threads()
    int fl_omp_num_procs()
    int FL_OPENMP
    int FL_POOL
    ctypedef void (*fl_pool_fn)(void* ctx, ptrdiff_t b, int tid) noexcept nogil
    int fl_pool_run(fl_pool_fn fn, void* ctx, ptrdiff_t n_blocks, int nt)


cdef enum:
    TILE = 256              # elements per tile; scratch arrays have this length
    STACK_BLOCKS = 64       # block sums of calls with at most this many blocks stay on the
                            # stack; larger calls take them from the heap, so that a
                            # 64 KiB thread stack is enough (musl's default is 128)
    BLOCK_MIN = 4096        # elements per block (softmax rows: the largest power of two of
                            # rows with at most this many elements, see block_rows)
    PARALLEL_MIN = 32768    # below this many elements a call runs on the calling thread

# Softmax rows of few classes are done NARROW_ROWS at a time, transposed (softmax.pyx);
# wide rows a chunk of WIDE_CHUNK_BYTES per array at a time (2 TILE float32 classes, TILE
# float64 ones), with four such arrays of scratch on the stack (wide_row's 4 TILE
# doubles): 8 KiB, as with chunks of TILE float64 values before, which is what a 64 KiB
# thread stack under AddressSanitizer allows (test_safety.py; 16 KiB overflowed it).  Each
# chunk runs up to four loops over its values (exp, the sum of e, log t, the KL sums),
# each with its own set-up: with float32 chunks of 2 TILE instead of TILE, rows of 1000
# classes took 6% less time (KL) and 3.5% (CE) on one thread with AVX2, rows of 4000 the
# same; 4 TILE gained no more.
cdef enum:
    WIDE_CHUNK_BYTES = 8 * TILE     # bytes per scratch array of a wide row's chunk
    # Wide rows larger than this are asked for ahead into L2 (prefetcht1), not L1, by
    # value-only and KL calls: see wide_sums
    WIDE_AHEAD_L1_BYTES = 16384
    NARROW_MAX = 32         # classes at most for the row-parallel (transposed) traversal
    NARROW_ROWS = 64        # rows per narrow tile
    NARROW_TILE = NARROW_MAX * NARROW_ROWS      # values per narrow tile
    NARROW_TILES = 4        # tiles a narrow block needs (z, target, weights, output)

# What a call computes, as the Python layer passes it: VALUE, VALUE | GRAD or GRAD | HESS.
cdef enum:
    VALUE = 1
    GRAD = 2
    HESS = 4

# The same three modes as types.  Kernels take a dummy `Mode` argument, so Cython generates
# each kernel once per mode and `if Mode is value_only:` is decided at compile time: every
# loop is branch-free, and a value-only call neither computes nor writes a gradient.
cdef struct value_only:
    char unused

cdef struct value_and_grad:
    char unused

cdef struct grad_and_hess:
    char unused

ctypedef fused Mode:
    value_only
    value_and_grad
    grad_and_hess


cdef struct Blocking:
    Py_ssize_t n_blocks     # number of blocks (0 for no units)
    Py_ssize_t size         # units per block; the last block may be shorter


cdef inline Blocking make_blocking(Py_ssize_t n_units, Py_ssize_t block_units) noexcept nogil:
    """Split n_units into blocks of block_units (the last one shorter)."""
    cdef Blocking b
    b.size = block_units if block_units >= 1 else 1
    b.n_blocks = (n_units + b.size - 1) // b.size if n_units > 0 else 0
    return b


cdef inline Py_ssize_t block_rows(Py_ssize_t n_cls) noexcept nogil:
    """Rows per block for rows of n_cls values: the largest power of two with at most
    BLOCK_MIN elements (at least 1), so that BLOCK_MIN rows are a whole number of blocks
    for every row length."""
    cdef Py_ssize_t rows = 1
    while rows * 2 * n_cls <= BLOCK_MIN:
        rows *= 2
    return rows


cdef inline Py_ssize_t block_end(Blocking blk, Py_ssize_t b, Py_ssize_t n_units) noexcept nogil:
    """End of block b (it starts at b * blk.size)."""
    cdef Py_ssize_t hi = (b + 1) * blk.size
    return n_units if hi > n_units else hi


cdef inline int team_size(int n_threads, Py_ssize_t n_elements, Py_ssize_t n_blocks) noexcept nogil:
    """Threads to use: 1 for small calls (no OpenMP start-up), never more than blocks."""
    if n_elements < PARALLEL_MIN or n_threads < 1:
        return 1
    if n_threads > n_blocks:
        return <int>n_blocks
    return n_threads


cdef extern from "fl_exact.h" nogil:
    enum: FL_EXACT_STATE
    ctypedef struct fl_exact:
        pass
    void fl_exact_zero(fl_exact* acc)
    void fl_exact_add(fl_exact* acc, double x)
    void fl_exact_merge(fl_exact* acc, const fl_exact* other)
    void fl_exact_scale(fl_exact* acc, int64_t k)
    double fl_exact_round(const fl_exact* acc)
    void fl_exact_store(const fl_exact* acc, int64_t* out)
    void fl_exact_load(fl_exact* acc, const int64_t* state)


# What a block reports besides its sum (*flag): FLAG_NONE, the index (>= 0) of the first
# unit it rejected (a bad label, say), or FLAG_NO_MEMORY if it could not get its scratch.
cdef enum:
    FLAG_NONE = -1
    FLAG_NO_MEMORY = -2


cdef inline Py_ssize_t first_flagged(const Py_ssize_t* flags, Py_ssize_t n_blocks) noexcept nogil:
    """What the first block (in block order) that flagged anything flagged, or FLAG_NONE."""
    cdef Py_ssize_t b
    for b in range(n_blocks):
        if flags[b] != FLAG_NONE:
            return flags[b]
    return FLAG_NONE


# What each kernel runs per block: the sum of its results over units lo .. hi; it sets
# *flag as above.  scratch: the calling thread's heap scratch (blocked_sum's
# scratch_bytes), or NULL.
ctypedef double (*BlockFn)(const void* args, Py_ssize_t lo, Py_ssize_t hi,
                           Py_ssize_t* flag, void* scratch) noexcept nogil


cdef struct BlockCall:
    # one blocked_sum call, as the threads of the block pool see it
    BlockFn block
    const void* args
    Blocking blk
    Py_ssize_t n_units
    double* sums
    Py_ssize_t* flags
    char* scratch
    size_t stride


cdef inline void pool_block(void* ctx, ptrdiff_t b, int tid) noexcept nogil:
    """Block b of a blocked_sum call, on pool thread tid (fl_pool_run's callback)."""
    cdef BlockCall* c = <BlockCall*>ctx
    c.sums[b] = c.block(c.args, b * c.blk.size, block_end(c.blk, b, c.n_units), &c.flags[b],
                        NULL if c.scratch == NULL else c.scratch + tid * c.stride)


cdef inline double blocked_sum(BlockFn block, const void* args, Py_ssize_t n_units,
                               Py_ssize_t block_units, Py_ssize_t n_elements, int n_threads,
                               size_t scratch_bytes, fl_exact* exact,
                               Py_ssize_t* first_flag) noexcept nogil:
    """The reduction scheme, written once: `block` over fixed blocks of block_units units,
    threads taking whole blocks as they get to them (fl_omp.h), the block sums added
    exactly and rounded once.

    n_elements sizes the thread team (no OpenMP region at all below PARALLEL_MIN).  Each
    thread gets scratch_bytes of heap scratch (none for 0).  If exact is not NULL, the
    exact sum of the block sums is added to it too (for the accumulators).  Sets
    *first_flag to what the first block that flagged anything flagged, or FLAG_NONE; to
    FLAG_NO_MEMORY if the block sums or the scratch found no memory (the callers raise
    MemoryError then).
    """
    cdef double small_sums[STACK_BLOCKS]
    cdef Py_ssize_t small_flags[STACK_BLOCKS]
    cdef double* sums = small_sums
    cdef Py_ssize_t* flags = small_flags
    cdef Blocking blk = make_blocking(n_units, block_units)
    cdef int nt = team_size(n_threads, n_elements, blk.n_blocks)
    cdef size_t stride = (scratch_bytes + 63) // 64 * 64       # no false sharing
    cdef char* scratch = NULL
    cdef Py_ssize_t b
    cdef double total
    cdef fl_exact acc
    cdef BlockCall call
    first_flag[0] = FLAG_NONE
    if blk.n_blocks > STACK_BLOCKS:
        sums = <double*>malloc(blk.n_blocks * (sizeof(double) + sizeof(Py_ssize_t)))
        if sums == NULL:
            first_flag[0] = FLAG_NO_MEMORY
            return 0.0
        flags = <Py_ssize_t*>(sums + blk.n_blocks)
    if scratch_bytes and blk.n_blocks:
        scratch = <char*>malloc(nt * stride)
        if scratch == NULL:
            first_flag[0] = FLAG_NO_MEMORY
            if sums != small_sums:
                free(sums)
            return 0.0
    if nt == 1:
        for b in range(blk.n_blocks):
            sums[b] = block(args, b * blk.size, block_end(blk, b, n_units), &flags[b],
                            scratch)
    else:
        call.block = block
        call.args = args
        call.blk = blk
        call.n_units = n_units
        call.sums = sums
        call.flags = flags
        call.scratch = scratch
        call.stride = stride
        if fl_pool_run(pool_block, &call, blk.n_blocks, nt) != 0:
            # no pool here (MSVC), or another thread's call has it: an OpenMP team, the
            # blocks handed out one at a time
            for b in prange(blk.n_blocks, schedule='dynamic', num_threads=nt):
                pool_block(&call, b, threadid())
    free(scratch)
    first_flag[0] = first_flagged(flags, blk.n_blocks)
    if blk.n_blocks == 1 and exact == NULL:
        total = sums[0]                     # one block: its sum is already exact
    else:
        fl_exact_zero(&acc)
        for b in range(blk.n_blocks):
            fl_exact_add(&acc, sums[b])
        total = fl_exact_round(&acc)
        if exact != NULL:
            fl_exact_merge(exact, &acc)
    if blk.n_blocks == 0:
        total = 0.0
    if sums != small_sums:
        free(sums)
    return total


cdef extern from "lanes.h" nogil:
    enum: FL_LANES
    void fl_lanes_zero(double* acc)
    double fl_lanes_total(const double* acc)
    void fl_lanes_add_f32(double* acc, const float* v, Py_ssize_t n)
    void fl_lanes_add_quads_f32(double* acc, const float* v, Py_ssize_t n)
    void fl_lanes_add_f64(double* acc, const double* v, Py_ssize_t n)
    double fl_sum_f32(const float* v, Py_ssize_t n)
    double fl_sum_f64(const double* v, Py_ssize_t n)

cdef extern from "simd.h" nogil:
    void fl_prefetch(const void* p, Py_ssize_t bytes)
    void fl_prefetch_l2(const void* p, Py_ssize_t bytes)

cdef extern from "maxat.h" nogil:
    Py_ssize_t fl_max_at_f32(const float* v, Py_ssize_t n, float* m)
    Py_ssize_t fl_max_at_f64(const double* v, Py_ssize_t n, double* m)

cdef extern from "transpose.h" nogil:
    void fl_transpose_in_f32(const float* src, Py_ssize_t stride, Py_ssize_t R, Py_ssize_t C,
                             float* dst)
    void fl_transpose_in_f64(const double* src, Py_ssize_t stride, Py_ssize_t R, Py_ssize_t C,
                             double* dst)
    void fl_transpose_in_max_f32(const float* src, Py_ssize_t stride, Py_ssize_t R,
                                 Py_ssize_t C, float* dst, float* m)
    void fl_transpose_in_max_f64(const double* src, Py_ssize_t stride, Py_ssize_t R,
                                 Py_ssize_t C, double* dst, double* m)
    void fl_transpose_out_f32(const float* srcT, Py_ssize_t R, Py_ssize_t C, float* dst)
    void fl_transpose_out_f64(const double* srcT, Py_ssize_t R, Py_ssize_t C, double* dst)

cdef extern from "narrow.h" nogil:
    enum: FL_NEXT_RANGES
    ctypedef struct fl_next_tile:
        const void* p[FL_NEXT_RANGES]
        Py_ssize_t bytes[FL_NEXT_RANGES]
    void fl_next_tile_share(const fl_next_tile* nt, Py_ssize_t k, Py_ssize_t n)
    void fl_tile_exp_sums_f32(float* t, const float* m, Py_ssize_t R, Py_ssize_t C,
                              double* T, float* k, const fl_next_tile* nt)
    void fl_tile_exp_dense_f32(float* t, const float* w, const float* lam, const float* m,
                               Py_ssize_t R, Py_ssize_t C, double* T, float* k, double* A,
                               double* B, const fl_next_tile* nt)

cdef extern from "kl_tile.h" nogil:
    void fl_kl_tile_f32(const float* z, const float* t, float m, Py_ssize_t n, Py_ssize_t top,
                        float* e, double* T, double* A, double* B, float* scratch)
    void fl_kl_tile_f64(const double* z, const double* t, double m, Py_ssize_t n,
                        Py_ssize_t top, double* e, double* T, double* A, double* B,
                        double* scratch)
    void fl_kl_tile_loops_f32(const float* z, const float* t, float m, Py_ssize_t n,
                              Py_ssize_t top, float* e, double* T, double* A, double* B,
                              float* scratch)
    void fl_kl_tile_loops_f64(const double* z, const double* t, double m, Py_ssize_t n,
                              Py_ssize_t top, double* e, double* T, double* A, double* B,
                              double* scratch)

cdef extern from "half.h" nogil:
    # float16 / bfloat16 (kind: FL_HALF_F16 or FL_HALF_BF16) widened to float32 as a tile
    # is read, and float32 results rounded back (to nearest even) as they are stored
    void fl_half_tile(const uint16_t* src, Py_ssize_t stride, Py_ssize_t n, int kind,
                      float* out)
    void fl_half_widen(const uint16_t* src, Py_ssize_t stride, Py_ssize_t n, int kind,
                       float* out)
    void fl_half_store(const float* src, Py_ssize_t n, int kind, uint16_t* dst,
                       Py_ssize_t stride)
    # long rows read without a float32 copy (rows of FL_HALF_WIDE_MIN classes or more; 0:
    # never): fl_max_at_f32 and fl_exp_shift_n_f32 of the widened row, bit for bit
    Py_ssize_t FL_HALF_WIDE_MIN
    Py_ssize_t fl_half_max_at(const uint16_t* v, Py_ssize_t n, int kind, float* m)
    void fl_half_exp_shift_n(const uint16_t* z, int kind, float m, Py_ssize_t n, float* out)


cdef inline double vsum(const floating* v, Py_ssize_t n) noexcept nogil:
    """Sum of n values in float64, vectorized in a fixed lane order (lanes.h)."""
    if floating is float:
        return fl_sum_f32(v, n)
    else:
        return fl_sum_f64(v, n)


cdef inline void lanes_add(double* acc, const floating* v, Py_ssize_t n) noexcept nogil:
    """acc[j % FL_LANES] += v[j]: a running float64 sum over many tiles, kept in lanes
    (zeroed by fl_lanes_zero, read by fl_lanes_total; see lanes.h).  Every call but the
    last of a sum must add a multiple of FL_LANES values (TILE is one)."""
    if floating is float:
        fl_lanes_add_f32(acc, v, n)
    else:
        fl_lanes_add_f64(acc, v, n)


cdef inline void lanes_add_quads(double* acc, const floating* v, Py_ssize_t n) noexcept nogil:
    """lanes_add for a sum of positive terms, float data fed to the float64 lanes four
    values at a time (fl_lanes_add_quads_f32: a quarter of the conversions, and at most
    2^-23 more relative error whatever the length); double data as lanes_add.  Every call
    but the last of a sum must add a multiple of FL_QUAD values (2 TILE is one)."""
    if floating is float:
        fl_lanes_add_quads_f32(acc, v, n)
    else:
        fl_lanes_add_f64(acc, v, n)


cdef inline void kl_tile(const floating* z, const floating* t, floating m, Py_ssize_t n,
                        Py_ssize_t top, floating* e, double* T, double* A, double* B,
                        floating* scratch) noexcept nogil:
    """One tile of a KL divergence row from logits in one pass (kl_tile.h): e = exp(z - m)
    (unless e is NULL), and to the lanes T the e's less 1 at `top`, A the t's and B the
    t (log t - (z - m)).  scratch: 2 n values."""
    if floating is float:
        fl_kl_tile_f32(z, t, m, n, top, e, T, A, B, scratch)
    else:
        fl_kl_tile_f64(z, t, m, n, top, e, T, A, B, scratch)


cdef inline Py_ssize_t vmax_at(const floating* v, Py_ssize_t n, floating* m) noexcept nogil:
    """*m = the maximum of n values (vectorized; NaN may be skipped, callers let it
    propagate), and an index where v[i] == *m, or -1 if none (maxat.h)."""
    if floating is float:
        return fl_max_at_f32(v, n, m)
    else:
        return fl_max_at_f64(v, n, m)


cdef inline void transpose_in(const floating* src, Py_ssize_t stride, Py_ssize_t R,
                              Py_ssize_t C, floating* dst) noexcept nogil:
    """dst[c * R + r] = src[r * stride + c]: R short rows into a (C, R) tile (transpose.h)."""
    if floating is float:
        fl_transpose_in_f32(src, stride, R, C, dst)
    else:
        fl_transpose_in_f64(src, stride, R, C, dst)


cdef inline void transpose_in_max(const floating* src, Py_ssize_t stride, Py_ssize_t R,
                                  Py_ssize_t C, floating* dst, floating* m) noexcept nogil:
    """transpose_in, and m[r] = the maximum of row r (transpose.h)."""
    if floating is float:
        fl_transpose_in_max_f32(src, stride, R, C, dst, m)
    else:
        fl_transpose_in_max_f64(src, stride, R, C, dst, m)


cdef inline void transpose_out(const floating* srcT, Py_ssize_t R, Py_ssize_t C,
                               floating* dst) noexcept nogil:
    """dst[r * C + c] = srcT[c * R + r]: a (C, R) tile back to R contiguous rows (transpose.h)."""
    if floating is float:
        fl_transpose_out_f32(srcT, R, C, dst)
    else:
        fl_transpose_out_f64(srcT, R, C, dst)


cdef inline const floating* tile_of(const floating* base, Py_ssize_t stride, Py_ssize_t i0,
                                    Py_ssize_t n, floating* buf) noexcept nogil:
    """Elements i0 .. i0+n of a strided 1-D array, as a contiguous pointer.

    Contiguous data is used in place; any other stride (0 and negative included) is
    gathered into `buf`, so kernels read each input once whatever its layout.
    """
    cdef Py_ssize_t k
    cdef const floating* p
    if stride == 1:
        return base + i0
    p = base + i0 * stride
    for k in range(n):
        buf[k] = p[k * stride]
    return buf


cdef inline const floating* grouped_tile(const floating* w, Py_ssize_t group, Py_ssize_t i0,
                                         Py_ssize_t n, floating* buf) noexcept nogil:
    """Elements i0 .. i0+n of w repeated `group` times each (w[i // group]).

    This is how one weight per leading-axis sample reaches every element (or row) of
    that sample without an array the size of the input.
    """
    cdef Py_ssize_t k, j, r
    if group == 1:
        return w + i0
    j = i0 // group
    r = i0 - j * group
    for k in range(n):
        buf[k] = w[j]
        r += 1
        if r == group:
            r = 0
            j += 1
    return buf


cdef inline const floating* cyclic_tile(const floating* v, Py_ssize_t period, Py_ssize_t i0,
                                        Py_ssize_t n, floating* buf) noexcept nogil:
    """Elements i0 .. i0+n of v tiled end to end (v[i % period]): broadcasting over the
    last axis."""
    cdef Py_ssize_t k
    cdef Py_ssize_t c = i0 % period
    for k in range(n):
        buf[k] = v[c]
        c += 1
        if c == period:
            c = 0
    return buf


cdef inline void fill(floating* buf, Py_ssize_t n, floating value) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        buf[k] = value
