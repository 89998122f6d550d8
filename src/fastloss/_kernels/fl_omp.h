/* OpenMP queries that also compile without OpenMP (then everything runs on one thread). */
#ifndef FASTLOSS_OMP_H
#define FASTLOSS_OMP_H
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
#endif
