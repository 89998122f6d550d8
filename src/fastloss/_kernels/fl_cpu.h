/* Which CPU features this CPU and its operating system support, by name.
 *
 * fl_cpu_has(name): 1 if the feature is usable (the CPU has it and the operating system
 * saves the registers it needs), 0 if not, -1 for a name this file does not know.  Which
 * features each kernel level needs is decided in Python (fastloss/_build.py); this file
 * only answers for single features.  x86-64 reads CPUID and XCR0 directly, the same way
 * with every compiler; other targets have no optional features here (0). */
#ifndef FASTLOSS_CPU_H
#define FASTLOSS_CPU_H

#include <string.h>

#if defined(__x86_64__) || defined(_M_X64) || defined(_M_AMD64)
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static void fl_cpuid(int leaf, int sub, unsigned r[4])
{
    int v[4];
    __cpuidex(v, leaf, sub);
    r[0] = (unsigned)v[0]; r[1] = (unsigned)v[1]; r[2] = (unsigned)v[2]; r[3] = (unsigned)v[3];
}
static unsigned long long fl_xcr0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static void fl_cpuid(int leaf, int sub, unsigned r[4])
{
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}
static unsigned long long fl_xcr0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

/* name, CPUID leaf, subleaf, register (0 eax .. 3 edx), bit, register state it needs */
enum { FL_XMM_YMM = 1, FL_ZMM = 2 };
static const struct { const char* name; int leaf, sub, reg, bit, state; } fl_cpu_features[] = {
    {"fma",        1, 0, 2, 12, FL_XMM_YMM},
    {"f16c",       1, 0, 2, 29, FL_XMM_YMM},
    {"avx2",       7, 0, 1,  5, FL_XMM_YMM},
    {"avx512f",    7, 0, 1, 16, FL_ZMM},
    {"avx512dq",   7, 0, 1, 17, FL_ZMM},
    {"avx512bw",   7, 0, 1, 30, FL_ZMM},
    {"avx512vl",   7, 0, 1, 31, FL_ZMM},
    {"avx512fp16", 7, 0, 3, 23, FL_ZMM},
    {"avx512bf16", 7, 1, 0,  5, FL_ZMM},
};

static int fl_cpu_has(const char* name)
{
    unsigned r[4], max_leaf[4];
    unsigned long long xcr0 = 0, need;
    size_t i;
    for (i = 0; i < sizeof fl_cpu_features / sizeof fl_cpu_features[0]; i++) {
        if (strcmp(name, fl_cpu_features[i].name) != 0)
            continue;
        fl_cpuid(0, 0, max_leaf);
        if ((unsigned)fl_cpu_features[i].leaf > max_leaf[0])
            return 0;
        fl_cpuid(1, 0, r);
        if (!(r[2] & (1u << 27)))                       /* OSXSAVE: XCR0 is readable */
            return 0;
        xcr0 = fl_xcr0();
        need = fl_cpu_features[i].state == FL_ZMM ? 0xe6 : 0x6;   /* XMM|YMM (|opmask|ZMM) */
        if ((xcr0 & need) != need)
            return 0;
        fl_cpuid(fl_cpu_features[i].leaf, fl_cpu_features[i].sub, r);
        return (r[fl_cpu_features[i].reg] >> fl_cpu_features[i].bit) & 1;
    }
    return -1;
}
#else
static int fl_cpu_has(const char* name) { (void)name; return 0; }
#endif

#endif
