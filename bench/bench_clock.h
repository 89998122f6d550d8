/* The C benchmarks' clock (the .c files of bench/): seconds, monotonic.  No kernel
 * header here, so that the two-tree benchmarks' main parts, built without the kernels'
 * include path, can use it too. */
#ifndef FL_BENCH_CLOCK_H
#define FL_BENCH_CLOCK_H

#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

#endif
