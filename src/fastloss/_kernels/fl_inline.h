/*
 * FL_INLINE: a C helper that must be inlined, so that the loop calling it vectorizes.
 *
 * Used by fastloss's C helpers (vecmath.h, lanes.h, ...).  Its `cdef inline` functions get the
 * same as FL_CYTHON_INLINE, which setup.py defines and substitutes into Cython's output
 * for them alone (see force_inline_own_helpers there): forcing CYTHON_INLINE itself would
 * also force Cython's recursive utility functions, which GCC >= 13 rejects.
 */
#ifndef FASTLOSS_FL_INLINE_H
#define FASTLOSS_FL_INLINE_H

#if defined(_MSC_VER)
#define FL_INLINE static __forceinline
#else
#define FL_INLINE static inline __attribute__((always_inline))
#endif

#endif /* FASTLOSS_FL_INLINE_H */
