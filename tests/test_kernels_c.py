"""tests/c/kernels_check.c natively, at every instruction-set level this CPU runs.

The same program runs for aarch64 under qemu-user in tools/aarch64_check.sh (.ci/run); here
it checks the x86-64 paths (SSE2, and the AVX2 / AVX-512 layers of simd.h under lanes.h, maxat.h, vecmath.h
and kl_tile.h): exp, log and log1p and their tile loops against long double libm to 1.5 ulp,
the lane sums bit for bit against their documented order, maxima, the KL divergence
tile, and half.h's widening of every float16 and bfloat16 value (F16C on the avx2 and
avx512 levels).  Needs the source tree and GCC or Clang; skipped otherwise.
"""
import platform
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
SOURCE = ROOT / "tests" / "c" / "kernels_check.c"
BUILD_PY = KERNELS.parent / "_build.py"
BUILD = SimpleNamespace(**runpy.run_path(str(BUILD_PY))) if BUILD_PY.is_file() else None
COMPILERS = [p for p in (shutil.which("gcc"), shutil.which("clang")) if p]


@pytest.mark.skipif(BUILD is None or not COMPILERS or not SOURCE.is_file()
                    or sys.platform == "win32", reason="needs the source tree and GCC or Clang")
@pytest.mark.parametrize("level", BUILD.LEVEL_NAMES if BUILD else ["baseline"])
def test_kernel_helpers_against_references(level, tmp_path):
    lv = next(x for x in BUILD.LEVELS if x.name == level)
    if lv not in BUILD.levels_for(platform.machine()):
        pytest.skip(f"{level} is not built for {platform.machine()}")
    if not all(cpu.has(feature) for feature in lv.cpu):
        pytest.skip(f"this CPU cannot run {level} code")
    for cc in COMPILERS:
        exe = tmp_path / "kernels_check"
        subprocess.run([cc, *BUILD.GCC_FLAGS, "-fopenmp-simd", *lv.gcc, f"-I{KERNELS}",
                        str(SOURCE), "-o", str(exe), "-lm"],
                       check=True, capture_output=True, timeout=300)
        proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and "failures: 0" in proc.stdout, (cc, level, proc.stdout)
