/* fastloss's threads: OpenMP queries that also compile without OpenMP, and the block pool
 * that runs a call's blocks on several threads.
 *
 * Why a pool of its own rather than an OpenMP parallel loop
 * ---------------------------------------------------------
 * An OpenMP region is fork-join: the calling thread cannot return before every thread of
 * the team has entered the region and reached its closing barrier, whether it did any work
 * or not, and GNU libgomp's idle threads spin for about 3 ms (GOMP_SPINCOUNT) before they
 * sleep.  On a machine whose cores other processes keep busy (a second evaluation worker,
 * a PyTorch job: short OpenMP calls in a loop), one thread of the team is often waiting
 * for a core while the other spins at the barrier, and a 2-thread call took 3-70 times as
 * long as a 1-thread one (issue 16; bench/busy_machine.py).  OMP_WAIT_POLICY=passive
 * helps only if every process sets it before its OpenMP runtime loads, which a library
 * cannot do for its users.
 *
 * fl_pool_run gives each thread, the calling one included, a contiguous share of the
 * blocks, and a thread that has finished its share takes over half of the largest share
 * left (fl_pool_work).  A helper that is not running when a call starts joins late or not
 * at all, and the others take over its share: the caller never waits for a thread that
 * has not started, only for the block a helper is in (a few microseconds of work, unless
 * the helper lost its core: then the next calls run on the caller alone for a while,
 * fl_pool_judge).  Helpers spin for FL_POOL_SPIN_NS after a call, offering their core to
 * other threads as they do, so that back-to-back calls find them awake, then sleep on a
 * condition variable; a caller waiting for a helper's last block does the same for
 * FL_POOL_WAIT_SPIN_NS, then sleeps in short naps.  Which thread runs which block changes
 * nothing in the result: every block's sum lands in its own slot and the slots are added
 * in block order (blocks.pxd), so results are bitwise identical for every thread count
 * and every schedule.
 *
 * One pool per extension module (this header is static), created on first use with as
 * many helpers as calls have asked for (at most FL_POOL_MAX - 1).  It serves one call at a
 * time: a call that finds it busy (another Python thread's call, GIL released) runs its
 * blocks in an OpenMP region instead (blocks.pxd), as before.  After fork() the child
 * starts with an empty pool (pthread_atfork), so a forked child never waits for threads it
 * does not have.  Threads of the pool block every signal (Python handles them on the main
 * thread) and get the stack size that OMP_STACKSIZE asks for (2 MiB without it).  Built
 * with OpenMP on POSIX systems with GCC or Clang; elsewhere (MSVC) FL_POOL is 0 and every
 * parallel call is an OpenMP region with dynamic scheduling.
 */
#ifndef FASTLOSS_OMP_H
#define FASTLOSS_OMP_H
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#define FL_OPENMP _OPENMP
static inline int fl_omp_max_threads(void) { return omp_get_max_threads(); }
static inline int fl_omp_num_procs(void) { return omp_get_num_procs(); }
#else
#define FL_OPENMP 0
static inline int fl_omp_max_threads(void) { return 1; }
static inline int fl_omp_num_procs(void) { return 1; }
#endif

/* Runs block b of a call on thread `tid` (0 = the calling thread, 1 .. nt-1 helpers). */
typedef void (*fl_pool_fn)(void* ctx, ptrdiff_t b, int tid);

#if defined(_OPENMP) && !defined(_WIN32) && !defined(FL_NO_POOL) \
    && (defined(__GNUC__) || defined(__clang__))
#define FL_POOL 1
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define FL_POOL_MAX 1024            /* threads per call at most (the caller included) */
#define FL_POOL_SPIN_NS 200000      /* helpers stay awake this long after their last block */
#define FL_POOL_WAIT_SPIN_NS 20000  /* the caller spins this long for a helper's last block */
#define FL_POOL_STALL_NS 100000     /* a wait this much longer than 4 blocks is a stall */
#define FL_POOL_BACKOFF_MIN_NS 2000000          /* 2 ms on one thread after a stall, */
#define FL_POOL_BACKOFF_MAX_NS 500000000        /* up to 0.5 s after many in a row */

/* The pool's state word: generation (32 bits) | open (1) | wanted helpers (10) | helpers
 * that joined this call (10) | helpers still in it (10).  A helper joins with one
 * compare-and-swap, only while the call is open and short of helpers; the caller closes
 * the call when every block is handed out and then waits until no helper is in it. */
#define FL_S_ACTIVE(s) ((unsigned)((s) & 0x3FFu))
#define FL_S_TOTAL(s) ((unsigned)(((s) >> 10) & 0x3FFu))
#define FL_S_WANT(s) ((unsigned)(((s) >> 20) & 0x3FFu))
#define FL_S_OPEN ((uint64_t)1 << 30)
#define FL_S_GEN(s) ((uint32_t)((s) >> 32))
#define FL_S_JOIN (((uint64_t)1 << 10) | 1u)        /* total + 1, active + 1 */

static struct {
    uint64_t state;                 /* atomic: see above */
    int busy;                       /* atomic: a call owns the pool */
    int sleepers;                   /* atomic: helpers waiting on `wake` */
    int n_helpers;                  /* helpers started (only the owner changes it) */
    int forked;                     /* pthread_atfork handler installed */
    /* the owner's: run alone until serial_until after a stall (fl_pool_judge) */
    int64_t serial_until;
    int64_t backoff_ns;
    int64_t stalls;                 /* calls that a helper stalled (for debugging) */
    /* the current call, written by its caller before it opens the call */
    fl_pool_fn fn;
    void* ctx;
    ptrdiff_t n_blocks;
    pthread_mutex_t lock;
    pthread_cond_t wake;
} fl_pool = {0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, 0, PTHREAD_MUTEX_INITIALIZER,
             PTHREAD_COND_INITIALIZER};

static inline uint64_t fl_pool_load(void)
{
    return __atomic_load_n(&fl_pool.state, __ATOMIC_SEQ_CST);
}

static inline void fl_pool_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* One step of a wait that keeps its core: mostly pause, but every 16th step offers the
 * core to any other thread that wants it (sched_yield returns at once when none does).  On
 * a busy machine that other thread is often the one being waited for: the caller that the
 * helper's wake-up displaced, or the helper that the caller is waiting for. */
static inline void fl_pool_relax(int k)
{
    if (k % 16 == 0)
        sched_yield();
    else
        fl_pool_pause();
}

static inline int64_t fl_pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Blocks are split into nt contiguous parts, part t for thread t, each a range lo .. hi
 * packed into one word (hi << 32 | lo).  A thread takes the blocks of its own part from
 * the front, one at a time; when it has none left it steals the back half of the largest
 * part left and makes that its own.  So each thread streams through a long contiguous
 * stretch (the hardware prefetchers' favourite, as with a static split: handing out
 * single or short runs of interleaved blocks measured 10-40% slower at 10^6 elements), a
 * helper that never comes has its part taken by the others, and one that comes late or
 * loses its core keeps only the block it is in. */
typedef struct {
    uint64_t range;                 /* atomic: hi << 32 | lo */
    char pad[64 - sizeof(uint64_t)];
} fl_pool_part;

static fl_pool_part fl_pool_parts[FL_POOL_MAX];

#define FL_R_LO(r) ((ptrdiff_t)((r) & 0xFFFFFFFFu))
#define FL_R_HI(r) ((ptrdiff_t)((r) >> 32))
#define FL_RANGE(lo, hi) (((uint64_t)(hi) << 32) | (uint64_t)(lo))

/* Steal the back half of the part with the most blocks left into part `me`; 0 if none. */
static inline int fl_pool_steal(int me, int nt)
{
    for (;;) {
        int victim = -1;
        ptrdiff_t most = 0;
        uint64_t r = 0;
        for (int q = 0; q < nt; q++) {
            uint64_t rq = __atomic_load_n(&fl_pool_parts[q].range, __ATOMIC_RELAXED);
            if (q != me && FL_R_HI(rq) - FL_R_LO(rq) > most) {
                most = FL_R_HI(rq) - FL_R_LO(rq);
                victim = q;
                r = rq;
            }
        }
        if (victim < 0)
            return 0;
        ptrdiff_t lo = FL_R_LO(r), hi = FL_R_HI(r), mid = hi - (hi - lo + 1) / 2;
        if (__atomic_compare_exchange_n(&fl_pool_parts[victim].range, &r, FL_RANGE(lo, mid), 0,
                                         __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            __atomic_store_n(&fl_pool_parts[me].range, FL_RANGE(mid, hi), __ATOMIC_RELAXED);
            return 1;
        }
    }
}

/* Blocks of part `tid` and then stolen ones until none is left; how many this thread ran. */
static inline ptrdiff_t fl_pool_work(fl_pool_fn fn, void* ctx, int nt, int tid)
{
    ptrdiff_t done = 0;
    do {
        uint64_t r = __atomic_load_n(&fl_pool_parts[tid].range, __ATOMIC_RELAXED);
        while (FL_R_LO(r) < FL_R_HI(r)) {
            if (__atomic_compare_exchange_n(&fl_pool_parts[tid].range, &r, r + 1, 0,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
                fn(ctx, FL_R_LO(r), tid);
                done++;
                r = __atomic_load_n(&fl_pool_parts[tid].range, __ATOMIC_RELAXED);
            }
        }
    } while (fl_pool_steal(tid, nt));
    return done;
}

/* A call this helper can join: open, not one it has seen, short of helpers. */
static inline int fl_pool_joinable(uint64_t s, uint32_t seen)
{
    return (s & FL_S_OPEN) && FL_S_GEN(s) != seen && FL_S_TOTAL(s) < FL_S_WANT(s);
}

static void* fl_pool_helper(void* unused)
{
    uint32_t seen = 0;             /* generations start at 1 */
    (void)unused;
    for (;;) {
        uint64_t s = fl_pool_load();
        if (!fl_pool_joinable(s, seen)) {
            /* spin a while (back-to-back calls), then sleep until a call wakes us */
            int64_t until = fl_pool_now_ns() + FL_POOL_SPIN_NS;
            int k = 0;
            while (!fl_pool_joinable(s = fl_pool_load(), seen)) {
                if (FL_S_GEN(s) != seen && !(s & FL_S_OPEN))
                    seen = FL_S_GEN(s);             /* missed that one: it is over */
                fl_pool_relax(++k);
                if (k % 64 == 0 && fl_pool_now_ns() > until) {
                    pthread_mutex_lock(&fl_pool.lock);
                    __atomic_add_fetch(&fl_pool.sleepers, 1, __ATOMIC_SEQ_CST);
                    while (!fl_pool_joinable(s = fl_pool_load(), seen))
                        pthread_cond_wait(&fl_pool.wake, &fl_pool.lock);
                    __atomic_sub_fetch(&fl_pool.sleepers, 1, __ATOMIC_SEQ_CST);
                    pthread_mutex_unlock(&fl_pool.lock);
                    break;
                }
            }
        }
        if (!__atomic_compare_exchange_n(&fl_pool.state, &s, s + FL_S_JOIN, 0,
                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            continue;                           /* the state moved on: look again */
        seen = FL_S_GEN(s);
        /* joined: the call's fields stay valid until this helper leaves it */
        fl_pool_work(fl_pool.fn, fl_pool.ctx, (int)FL_S_WANT(s) + 1, (int)FL_S_TOTAL(s) + 1);
        __atomic_sub_fetch(&fl_pool.state, 1, __ATOMIC_SEQ_CST);    /* active - 1 */
    }
    return NULL;
}

static void fl_pool_after_fork(void)
{
    /* the child has none of the helpers: start again with an empty pool */
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
    fl_pool.state = (uint64_t)FL_S_GEN(fl_pool.state) << 32;
    fl_pool.busy = 0;
    fl_pool.sleepers = 0;
    fl_pool.n_helpers = 0;
    fl_pool.lock = lock;
    fl_pool.wake = wake;
}

/* The helpers' stack size: OMP_STACKSIZE as OpenMP reads it (a number, then B, K, M or G;
 * K without one), so that the pool's threads get what OpenMP's would; else 2 MiB. */
static size_t fl_pool_stack_size(void)
{
    const char* s = getenv("OMP_STACKSIZE");
    char* end;
    unsigned long long v;
    size_t unit = 1024;
    if (s == NULL)
        return (size_t)2 << 20;
    v = strtoull(s, &end, 10);
    while (*end == ' ')
        end++;
    switch (*end) {
        case 'b': case 'B': unit = 1; end++; break;
        case 'k': case 'K': unit = 1024; end++; break;
        case 'm': case 'M': unit = (size_t)1 << 20; end++; break;
        case 'g': case 'G': unit = (size_t)1 << 30; end++; break;
        default: break;
    }
    if (end == s || v == 0 || v > ((size_t)1 << 40) / unit)
        return (size_t)2 << 20;
    v *= unit;
    return v < 16384 ? 16384 : (size_t)v;
}

/* Start helpers until there are `want` (or as many as the system gives). */
static void fl_pool_grow(int want)
{
    pthread_attr_t attr;
    sigset_t all, old;
    if (!fl_pool.forked) {
        pthread_atfork(NULL, NULL, fl_pool_after_fork);
        fl_pool.forked = 1;
    }
    if (pthread_attr_init(&attr) != 0)
        return;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, fl_pool_stack_size());    /* blocks need 64 KiB */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (fl_pool.n_helpers < want) {
        pthread_t t;
        if (pthread_create(&t, &attr, fl_pool_helper, NULL) != 0)
            break;
        fl_pool.n_helpers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}

/* After a call's wait for its helpers' last blocks (t0: start, t1: the caller's blocks
 * done, t2: the helpers' too; the caller ran `mine` blocks): a wait much longer than a
 * block means that a helper lost its core in the middle of one, to another process.  The
 * next calls then run on the calling thread alone, for backoff_ns (doubled at each such
 * stall, up to FL_POOL_BACKOFF_MAX_NS; 1/64 less after every call without one, so that
 * on a machine where helpers stall every few dozen calls they soon sit out for long).  So
 * on a machine that other processes keep busy a multi-threaded call costs about what a
 * 1-thread call does, and on an idle one every call uses every thread. */
static inline void fl_pool_clean_call(void)
{
    fl_pool.backoff_ns -= fl_pool.backoff_ns / 64;
}

static void fl_pool_judge(int64_t t0, int64_t t1, int64_t t2, ptrdiff_t mine)
{
    int64_t per_block, waited = t2 - t1;
    if (mine < 1)
        return;                         /* the caller itself was away: nothing to say */
    per_block = (t1 - t0) / mine;
    if (waited > 4 * per_block + FL_POOL_STALL_NS) {
        fl_pool.backoff_ns = fl_pool.backoff_ns < FL_POOL_BACKOFF_MIN_NS
            ? FL_POOL_BACKOFF_MIN_NS : fl_pool.backoff_ns * 2;
        if (fl_pool.backoff_ns > FL_POOL_BACKOFF_MAX_NS)
            fl_pool.backoff_ns = FL_POOL_BACKOFF_MAX_NS;
        fl_pool.serial_until = t2 + fl_pool.backoff_ns;
        fl_pool.stalls++;
    } else {
        fl_pool_clean_call();
    }
}

/* Run fn on blocks 0 .. n_blocks-1 with up to nt threads, the calling thread included.
 * Returns 0 when done, -1 (nothing run) when another call owns the pool. */
static int fl_pool_run(fl_pool_fn fn, void* ctx, ptrdiff_t n_blocks, int nt)
{
    int free_ = 0;
    uint64_t s;
    int64_t t0, t1;
    ptrdiff_t mine;
    if (n_blocks >= ((ptrdiff_t)1 << 31))
        return -1;                      /* parts hold 32-bit block indices */
    if (!__atomic_compare_exchange_n(&fl_pool.busy, &free_, 1, 0, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return -1;
    if (nt > FL_POOL_MAX)
        nt = FL_POOL_MAX;
    t0 = fl_pool_now_ns();
    if (t0 < fl_pool.serial_until) {
        /* a helper stalled a call a moment ago: the machine's cores are taken */
        for (ptrdiff_t b = 0; b < n_blocks; b++)
            fn(ctx, b, 0);
        __atomic_store_n(&fl_pool.busy, 0, __ATOMIC_RELEASE);
        return 0;
    }
    if (fl_pool.n_helpers < nt - 1)
        fl_pool_grow(nt - 1);
    if (nt - 1 > fl_pool.n_helpers)
        nt = fl_pool.n_helpers + 1;
    fl_pool.fn = fn;
    fl_pool.ctx = ctx;
    fl_pool.n_blocks = n_blocks;
    for (int p = 0; p < nt; p++)
        __atomic_store_n(&fl_pool_parts[p].range, FL_RANGE(n_blocks * p / nt,
                         n_blocks * (p + 1) / nt), __ATOMIC_RELAXED);
    s = fl_pool_load();
    /* open the call: new generation, nt - 1 helpers wanted, none joined yet */
    __atomic_store_n(&fl_pool.state, ((uint64_t)(FL_S_GEN(s) + 1) << 32) | FL_S_OPEN
                     | ((uint64_t)(nt - 1) << 20), __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&fl_pool.sleepers, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&fl_pool.lock);
        pthread_cond_broadcast(&fl_pool.wake);
        pthread_mutex_unlock(&fl_pool.lock);
    }
    mine = fl_pool_work(fn, ctx, nt, 0);
    /* every block is handed out: close the call, wait for the helpers still in it */
    s = __atomic_and_fetch(&fl_pool.state, ~FL_S_OPEN, __ATOMIC_SEQ_CST);
    t1 = fl_pool_now_ns();
    if (FL_S_ACTIVE(s)) {
        /* a helper is finishing a block (microseconds) unless it lost its core: wait
         * politely a little, then sleep, so that the helper can have this core */
        int64_t spin_until = fl_pool_now_ns() + FL_POOL_WAIT_SPIN_NS;
        int k = 0;
        while (FL_S_ACTIVE(fl_pool_load())) {
            if (fl_pool_now_ns() < spin_until) {
                fl_pool_relax(++k);
            } else {
                struct timespec ts = {0, 20000};
                nanosleep(&ts, NULL);
            }
        }
        fl_pool_judge(t0, t1, fl_pool_now_ns(), mine);
    } else {
        fl_pool_clean_call();
    }
    __atomic_store_n(&fl_pool.busy, 0, __ATOMIC_RELEASE);
    return 0;
}
#else
#define FL_POOL 0
static inline int fl_pool_run(fl_pool_fn fn, void* ctx, ptrdiff_t n_blocks, int nt)
{
    (void)fn; (void)ctx; (void)n_blocks; (void)nt;
    return -1;
}
#endif
#endif
