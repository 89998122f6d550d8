/*
 * FL_INLINE: a C helper that must be inlined, so that the loop calling it vectorizes.
 *
 * Only fastloss's own C helpers use it.  Cython's `cdef inline` functions are left to the
 * compiler (CYTHON_INLINE is not overridden): forcing CYTHON_INLINE would also force
 * Cython's own utility functions, some of which are recursive, which newer GCCs reject.
 */
#ifndef FASTLOSS_FL_INLINE_H
#define FASTLOSS_FL_INLINE_H

#if defined(_MSC_VER)
#define FL_INLINE static __forceinline
#else
#define FL_INLINE static inline __attribute__((always_inline))
#endif

#endif /* FASTLOSS_FL_INLINE_H */
