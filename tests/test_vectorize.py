"""C-level checks of the kernels' helpers, with the compiler that builds fastloss.

1. Every loop that calls vecmath.h must vectorize.
2. The SIMD layer's helpers must match their plain loops bit for bit: transpose.h's
   register transposes, lanes.h's lane sums and narrow.h's tile exp and sums
   (tests/c/transpose_check.c, lanes_check.c and narrow_check.c, run at each level this
   CPU has).

About 1: a loop calling exp or log that stays scalar still gives the right numbers, so no value test
notices; it runs 5-10x slower.  This happened once: GCC 13 turned two of log's final
selects into a branch and left every log loop scalar (KL 5x slower), while GCC 12 was
fine.  So each math function is compiled here in a plain loop, with the build's flags at
every instruction-set level, and the compiler's own report must say "vectorized".

Needs the source tree (src/fastloss/_kernels) and GCC or Clang; skipped otherwise (for
example when the tests run against an installed wheel).
"""
import platform
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from fastloss._kernels import cpu

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "src" / "fastloss" / "_kernels"


def _build_facts():
    """src/fastloss/_build.py of the source tree (levels, flags), or None without it."""
    path = KERNELS.parent / "_build.py"
    return SimpleNamespace(**runpy.run_path(str(path))) if path.is_file() else None


BUILD = _build_facts()
CALLS = {                                    # function -> loop body
    "fl_exp_f32": "float", "fl_exp_f64": "double",
    "fl_exp_nonpos_f32": "float", "fl_exp_nonpos_f64": "double",
    "fl_log_f32": "float", "fl_log_f64": "double",
    "fl_log1p_f32": "float", "fl_log1p_f64": "double",
}
FLAGS = [*(BUILD.GCC_FLAGS if BUILD else ()), "-fopenmp-simd", "-c"]


def _source():
    lines = ['#include "vecmath.h"']
    for fn, t in CALLS.items():
        lines.append(f"void loop_{fn}(const {t}* x, {t}* y, int n)\n"
                     f"{{ for (int i = 0; i < n; i++) y[i] = {fn}(x[i]); }}")
    return "\n".join(lines) + "\n"


def _compilers():
    found = []
    for cc in ("gcc", "clang"):
        path = shutil.which(cc)
        if path:
            found.append(path)
    return found


def _vectorized_lines(cc, flags, src, tmp_path, file=r"loops\.c"):
    """Lines of `file` (a regex of its name) whose loop the compiler reports as vectorized
    when it compiles src."""
    is_clang = "clang" in subprocess.run([cc, "--version"], capture_output=True,
                                         text=True).stdout.lower()
    report = (["-Rpass=loop-vectorize"] if is_clang else ["-fopt-info-vec-optimized"])
    proc = subprocess.run([cc, *FLAGS, *flags, *report, f"-I{KERNELS}", str(src),
                           "-o", str(tmp_path / "loops.o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pattern = file + r":(\d+):\d+: (?:optimized: loop vectorized|remark: vectorized loop)"
    return {int(n) for n in re.findall(pattern, proc.stderr)}


#: Both tests need the source tree and GCC or Clang (their reports and flags).
needs_toolchain = pytest.mark.skipif(
    BUILD is None or not _compilers() or sys.platform == "win32",
    reason="needs the source tree and GCC or Clang")
each_level = pytest.mark.parametrize("level", BUILD.LEVEL_NAMES if BUILD else ["baseline"])


def _level(name):
    return next(lv for lv in BUILD.LEVELS if lv.name == name)


def _skip_other_architectures(level):
    if _level(level) not in BUILD.levels_for(platform.machine()):
        pytest.skip(f"{level} is not built for {platform.machine()}")


@needs_toolchain
@each_level
def test_every_math_function_vectorizes(level, tmp_path):
    _skip_other_architectures(level)
    src = tmp_path / "loops.c"
    src.write_text(_source())
    expected = {i + 1: fn for i, line in enumerate(_source().splitlines())
                for fn in CALLS if f"= {fn}(" in line}
    for cc in _compilers():
        done = _vectorized_lines(cc, _level(level).gcc, src, tmp_path)
        missing = sorted(fn for line, fn in expected.items() if line not in done)
        assert not missing, f"{cc} at {level} left these loops scalar: {missing}"


STAGE_SOURCE = """#include "vecmath.h"
void f32(const float* x, ptrdiff_t n, float* e, float* d, float* L)
{ fl_logistic_parts_f32(x, n, e, d, L); }
void f64(const double* x, ptrdiff_t n, double* e, double* d, double* L)
{ fl_logistic_parts_f64(x, n, e, d, L); }
"""


def _loop_lines(name):
    """{definition of `name` in vecmath.h (0, 1, ...): the line numbers of its `for`s}."""
    lines = (KERNELS / "vecmath.h").read_text().splitlines()
    found = {}
    starts = [i for i, line in enumerate(lines) if line.startswith(f"FL_INLINE void {name}(")]
    for k, start in enumerate(starts):
        end = next(i for i in range(start, len(lines)) if lines[i] == "}")
        found[k] = {i + 1 for i in range(start, end) if lines[i].lstrip().startswith("for (")}
    return found


@needs_toolchain
@each_level
def test_the_logistic_stage_vectorizes(level, tmp_path):
    """BCE's stage (vecmath.h's fl_logistic_parts): where it is plain loops (double at
    every level; float where the layer has no table log, the second definition), each loop
    must vectorize, as the math functions' loops above: a scalar stage gives the right
    values, several times slower."""
    _skip_other_architectures(level)
    src = tmp_path / "loops.c"
    src.write_text(STAGE_SOURCE)
    f32, f64 = _loop_lines("fl_logistic_parts_f32"), _loop_lines("fl_logistic_parts_f64")
    assert len(f32) == 2 and len(f64) == 1 and all(len(v) == 2 for v in (*f32.values(), f64[0]))
    for cc in _compilers():
        macros = subprocess.run([cc, *FLAGS[:-1], *_level(level).gcc, f"-I{KERNELS}", "-dM",
                                 "-E", str(src)], capture_output=True, text=True,
                                timeout=120, check=True).stdout
        vector_f32 = re.search(r"#define FL_VECTOR_(LOG_POS_NORMAL|EXPLOG) ", macros)
        want = f64[0] | (set() if vector_f32 else f32[1])
        done = _vectorized_lines(cc, _level(level).gcc, src, tmp_path, r"vecmath\.h")
        assert want <= done, f"{cc} at {level} left vecmath.h lines {sorted(want - done)} scalar"


def _cpu_has(level):
    return all(cpu.has(feature) for feature in _level(level).cpu)


@needs_toolchain
@each_level
@pytest.mark.parametrize("check", ["transpose_check", "lanes_check", "narrow_check"])
def test_simd_helpers_match_the_plain_loops(level, check, tmp_path):
    """The SIMD layer's register transposes of the narrow softmax path (transpose.h), lane
    sums (lanes.h) and the narrow tile's exp and sums (narrow.h) against their plain
    definitions, in C (tests/c/<check>.c)."""
    _skip_other_architectures(level)
    if not _cpu_has(level):
        pytest.skip(f"this CPU cannot run {level} code")
    for cc in _compilers():
        exe = tmp_path / check
        subprocess.run([cc, "-O2", "-fopenmp-simd", *_level(level).gcc, f"-I{KERNELS}",
                        str(ROOT / "tests" / "c" / f"{check}.c"), "-o", str(exe), "-lm"],
                       check=True, capture_output=True, timeout=120)
        proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "mismatches: 0" in proc.stdout, (cc, proc.stdout)
