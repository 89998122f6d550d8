"""Which loops of a Cython kernel did GCC vectorize?  (A developer tool, not shipped.)

    python tools/vecreport.py pointwise avx512

Compiles build/cython/<level>/src/fastloss/_kernels/<family>.c with the flags setup.py uses
and -fopt-info-vec, then maps every reported C line back to the .pyx line it came from.
Run `pip install -e .` (or `python setup.py build_ext`) first to generate the C file.
"""
import re
import runpy
import subprocess
import sys
import sysconfig
from collections import defaultdict

import numpy as np

BUILD = runpy.run_path("src/fastloss/_build.py")     # the build's own flags (setup.py's)
LEVEL_FLAGS = {level.name: level.gcc for level in BUILD["LEVELS"]}

family, level = sys.argv[1], sys.argv[2]
c_file = f"build/cython/{level}/src/fastloss/_kernels/{family}.c"
flags = [*BUILD["GCC_FLAGS"], BUILD["FORCE_INLINE_GCC"],
         "-fopenmp", "-fPIC", "-Isrc/fastloss/_kernels", f"-I{np.get_include()}",
         f"-I{sysconfig.get_paths()['include']}", "-Ibuild/fl_generated_dummy",
         *LEVEL_FLAGS[level], "-fopt-info-vec-optimized", "-fopt-info-vec-missed"]
with open("/tmp/fl_build_info_dummy.h", "w") as f:
    f.write('#define FL_BUILD_INFO "{}"\n')
res = subprocess.run(["gcc", *flags, "-include", "/tmp/fl_build_info_dummy.h", "-c", c_file,
                      "-o", "/dev/null"], capture_output=True, text=True)
src_of = {}
current = None
marker = re.compile(r'/\* "([\w/.]+\.p[xy][dix])":(\d+)')
with open(c_file) as f:
    for i, line in enumerate(f, 1):
        m = marker.search(line)
        if m:
            current = f"{m.group(1).split('/')[-1]}:{m.group(2)}"
        src_of[i] = current
seen = defaultdict(set)
for line in res.stderr.splitlines():
    m = re.match(re.escape(c_file) + r":(\d+):\d+: (optimized|missed): (.*)", line)
    if not m:
        continue
    where = src_of.get(int(m.group(1)))
    text = m.group(3)
    if "loop vectorized" in text:
        seen[where].add("vectorized " + text.split("using")[-1].strip())
    elif m.group(2) == "missed" and ("couldn't vectorize loop" in text or "not vectorized" in text):
        seen[where].add("MISSED: " + text)
for where in sorted(seen, key=lambda w: (w or "", )):
    print(f"{where}: {'; '.join(sorted(seen[where]))}")
