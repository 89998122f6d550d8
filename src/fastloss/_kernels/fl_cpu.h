/* Which vector instruction sets this CPU and its operating system support.
 * Level 0: the compiler's baseline (SSE2 on x86-64, NEON on arm64);
 * level 1: AVX2 + FMA;  level 2: AVX-512 F/DQ/BW/VL (with AVX2 + FMA). */
#ifndef FASTLOSS_CPU_H
#define FASTLOSS_CPU_H

#if defined(_MSC_VER) && !defined(__clang__) && (defined(_M_X64) || defined(_M_AMD64))
#include <intrin.h>
#include <immintrin.h>
static int fl_cpu_level(void)
{
    int r[4], r7[4];
    unsigned long long xcr0;
    int avx2, avx512;
    __cpuid(r, 0);
    if (r[0] < 7) return 0;
    __cpuid(r, 1);
    if (!(r[2] & (1 << 27)) || !(r[2] & (1 << 12))) return 0;      /* OSXSAVE, FMA */
    xcr0 = _xgetbv(0);
    if ((xcr0 & 0x6) != 0x6) return 0;                               /* XMM and YMM state */
    __cpuidex(r7, 7, 0);
    avx2 = (r7[1] >> 5) & 1;
    if (!avx2) return 0;
    avx512 = ((r7[1] >> 16) & 1) && ((r7[1] >> 17) & 1) && ((r7[1] >> 30) & 1)
             && ((r7[1] >> 31) & 1) && ((xcr0 & 0xe6) == 0xe6);      /* F DQ BW VL, ZMM state */
    return avx512 ? 2 : 1;
}
#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
static int fl_cpu_level(void)
{
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
        return 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return 2;
    return 1;
}
#else
static int fl_cpu_level(void) { return 0; }
#endif

#endif
