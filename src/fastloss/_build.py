"""What fastloss builds, written once: the kernel families, the modules built once, and the
instruction-set levels with their compiler flags and the CPU features each one needs.

setup.py reads this file without importing fastloss (it runs before anything is built);
fastloss._dispatch reads it at run time to pick the best level this CPU can run, and the
tools and tests that compile C with the build's flags read it too.  Only the standard
library may be imported here.
"""
from __future__ import annotations

from typing import NamedTuple


class Level(NamedTuple):
    """An instruction-set level: every kernel family is compiled once per level."""
    name: str
    gcc: tuple[str, ...]        # GCC / Clang flags
    msvc: tuple[str, ...]       # MSVC flags
    cpu: tuple[str, ...]        # CPU features it needs (names of fastloss._kernels.cpu.has)


#: Lowest first.  Every target builds "baseline" (SSE2 on x86-64, NEON on arm64); x86-64
#: targets build the others too, and the best one the CPU has is loaded at import.
LEVELS = (
    Level("baseline", (), (), ()),
    # F16C (float16 conversions, half.h) comes with every AVX2 CPU (Intel Haswell and AMD
    # Piledriver on); MSVC's /arch:AVX2 assumes it.
    Level("avx2", ("-mavx2", "-mfma", "-mf16c"), ("/arch:AVX2",), ("avx2", "fma", "f16c")),
    Level("avx512", ("-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512dq", "-mavx512bw",
                     "-mavx512vl"),
          ("/arch:AVX512",), ("avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw",
                              "avx512vl")),
)
LEVEL_NAMES = tuple(level.name for level in LEVELS)
X86_64 = ("x86_64", "amd64")            # targets (lower case) that build every level

#: Kernel families: one extension module per family and level, fastloss._kernels.<f>_<level>.
FAMILIES = ("pointwise", "softmax")
#: Hooks for tests and benchmarks (vector math, bandwidth floor, row helpers): compiled per
#: level like a family, but loaded only when a test or benchmark asks for them.
PROBES = "probes"
#: Modules compiled once, for the baseline level: CPU and build queries (cpu), argument
#: pre-passes over the data (checks), fast recognition of plain arrays (layout), exact
#: sums for the accumulators (exact).
SINGLE = ("cpu", "checks", "layout", "exact")
#: Public modules of the package itself, compiled once (baseline): fastloss.<name> from
#: src/fastloss/<name>.pyx.  api: the C-level API (its declarations, fastloss/api.pxd, ship
#: in the wheel; its kernels are the dispatched level's, see api.pyx).
PUBLIC = ("api",)

#: GCC / Clang flags of every module.  -fno-math-errno lets sqrt be one instruction and
#: -fno-trapping-math lets selects become vector blends; neither changes a computed value
#: (NaN, infinities and signed zeros keep their IEEE meaning).  Fast-math and
#: native-architecture flags are never used: they change results or make wheels unportable.
GCC_FLAGS = ("-O3", "-fno-math-errno", "-fno-trapping-math")
MSVC_FLAGS = ("/O2",)

#: fastloss's own `cdef inline` helpers must be inlined for their loops to vectorize;
#: setup.py switches their C declarations to FL_CYTHON_INLINE, defined as this.
FORCE_INLINE_GCC = "-DFL_CYTHON_INLINE=__inline__ __attribute__((__always_inline__, __unused__))"
FORCE_INLINE_MSVC = "/DFL_CYTHON_INLINE=__forceinline"


def levels_for(arch: str) -> tuple[Level, ...]:
    """The levels built for a target architecture (as platform.machine() spells it)."""
    return LEVELS if arch.lower() in X86_64 else LEVELS[:1]
