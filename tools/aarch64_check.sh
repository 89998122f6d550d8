#!/usr/bin/env bash
# The arm64 (aarch64) code of the wheels, checked on an x86-64 machine: the kernels' C
# helpers cross-compiled with the build's flags and run under qemu-user, and the compiler's
# vectorization report for them and for the Cython kernels.
#
#   tools/aarch64_check.sh      (.ci/run runs it; about 1.5 CPU-minutes plus the apt-get)
#
# 1. Tools: aarch64-linux-gnu-gcc and qemu-aarch64 (Debian: gcc-aarch64-linux-gnu,
#    libc6-dev-arm64-cross, qemu-user), installed with apt-get when missing and running as
#    root, else the script stops and names them.  AARCH64_CC, QEMU and AARCH64_SYSROOT
#    override the defaults.
# 2. Correctness: tests/c/kernels_check.c (exp, log, log1p and their tile loops against
#    long double libm to the documented 1.5 ulp; the lane sums bit for bit against their
#    documented order; maxima; the KL divergence tile), tests/c/transpose_check.c and
#    tests/c/narrow_check.c (narrow.h: with no register layer for NEON, the plain loops
#    on both sides, and the next-tile prefetch, which compiles to prfm),
#    compiled with src/fastloss/_build.py's GCC_FLAGS at the levels built for aarch64 (the
#    baseline: NEON), run under qemu-aarch64.
# 3. Vectorization: every loop of kernels_check.c marked "must vectorize" must be reported
#    vectorized (NEON, 16-byte vectors); and the Cython kernels (pointwise, softmax: the C
#    that Cython made for the baseline level, build/cython/baseline, cythonized here first
#    if the build left none) compiled for aarch64 must vectorize every loop that the same
#    file vectorizes for x86-64 at the baseline level (SSE2), the loops of the C headers
#    inlined into them included.  The reports go to
#    build/aarch64/*.vec.  The Cython C is compiled against this machine's Python and NumPy
#    headers (x86-64 and aarch64 Linux have the same type sizes), only for the report:
#    nothing is linked or run.
# Exit status 0 when everything holds.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python}
cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU:-qemu-aarch64}
sysroot=${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}
host_cc=${CC:-gcc}
out=build/aarch64
kernels=src/fastloss/_kernels
mkdir -p "$out"

# ---- 1. tools ----
if ! command -v "$cc" >/dev/null || ! command -v "$qemu" >/dev/null \
        || [ ! -d "$sysroot/lib" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== aarch64: installing the cross compiler and qemu-user (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
    else
        echo "tools/aarch64_check.sh needs $cc and $qemu with an aarch64 sysroot in $sysroot" >&2
        echo "(Debian/Ubuntu: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)" >&2
        exit 2
    fi
fi
echo "== aarch64: $("$cc" --version | head -1); $("$qemu" --version | head -1)"

# the build's flags (src/fastloss/_build.py): GCC_FLAGS, and the levels built for aarch64
read -r -a flags <<<"$("$py" - <<'EOF'
import runpy
b = runpy.run_path("src/fastloss/_build.py")
levels = b["levels_for"]("aarch64")
assert [lv.name for lv in levels] == ["baseline"], levels
print(" ".join([*b["GCC_FLAGS"], *(f for lv in levels for f in lv.gcc)]))
EOF
)"
echo "== aarch64: flags ${flags[*]} -fopenmp-simd"

# ---- 2. correctness under qemu ----
status=0
"$cc" "${flags[@]}" -fopenmp-simd -I"$kernels" tests/c/kernels_check.c -o "$out/kernels_check" \
    -lm -fopt-info-vec-optimized 2>"$out/kernels_check.vec"
"$cc" "${flags[@]}" -fopenmp-simd -I"$kernels" tests/c/transpose_check.c \
    -o "$out/transpose_check" -lm
"$cc" "${flags[@]}" -fopenmp-simd -I"$kernels" tests/c/narrow_check.c \
    -o "$out/narrow_check" -lm
echo "== aarch64: tests/c/kernels_check.c under $qemu"
"$qemu" -L "$sysroot" "$out/kernels_check" || status=1
echo "== aarch64: tests/c/transpose_check.c under $qemu"
"$qemu" -L "$sysroot" "$out/transpose_check" || status=1
echo "== aarch64: tests/c/narrow_check.c under $qemu"
"$qemu" -L "$sysroot" "$out/narrow_check" || status=1

# ---- 3. vectorization ----
echo "== aarch64: vectorization report"
c_dir=build/cython/baseline/src/fastloss/_kernels
if [ ! -f "$c_dir/pointwise.c" ] || [ ! -f "$c_dir/softmax.c" ]; then
    # no in-place build here: cythonize as setup.py does (it generates the .pxi too)
    if ! "$py" -c "import Cython" 2>/dev/null; then
        "$py" -m pip install --quiet --target "$out/cython" "Cython>=3.1"
        export PYTHONPATH="$PWD/$out/cython${PYTHONPATH:+:$PYTHONPATH}"
    fi
    "$py" setup.py --name >/dev/null
fi
inc=$("$py" -c "import sysconfig, numpy; print(sysconfig.get_paths()['include'], numpy.get_include())")
read -r py_inc np_inc <<<"$inc"
force_inline=$("$py" -c "import runpy; print(runpy.run_path('src/fastloss/_build.py')['FORCE_INLINE_GCC'])")
common=(-fopenmp -fPIC "$force_inline" -Wno-unused-function -Wno-discarded-qualifiers
        -DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION -I"$kernels" -I"$np_inc" -I"$py_inc"
        -fopt-info-vec-optimized -c -o /dev/null)
pids=()
for family in pointwise softmax; do
    "$cc" "${flags[@]}" "${common[@]}" "$c_dir/$family.c" 2>"$out/$family.aarch64.vec" &
    pids+=($!)
    "$host_cc" "${flags[@]}" "${common[@]}" "$c_dir/$family.c" 2>"$out/$family.x86_64.vec" &
    pids+=($!)
done
for pid in "${pids[@]}"; do
    wait "$pid" || { echo "compiling a kernel for the report failed (see $out/*.vec)" >&2; status=1; }
done
"$py" - "$out" "$c_dir" <<'EOF' || status=1
import re
import sys
from collections import defaultdict

out, c_dir = sys.argv[1], sys.argv[2]
ok = True

def vectorized(report, c_file):
    pat = re.compile(re.escape(c_file) + r":(\d+):\d+: optimized: loop vectorized")
    return {int(m.group(1)) for m in pat.finditer(open(report).read())}

# the harness: every line marked "must vectorize"
src = "tests/c/kernels_check.c"
marked = {i for i, line in enumerate(open(src), 1) if "/* must vectorize */" in line}
done = vectorized(f"{out}/kernels_check.vec", src)
missing = sorted(marked - done)
print(f"  kernels_check.c: {len(marked & done)} of {len(marked)} math loops vectorized")
if not marked or missing:
    ok = False
    print(f"  NOT vectorized for aarch64: kernels_check.c lines {missing}")

# the Cython kernels: what x86-64 baseline vectorizes, aarch64 must too
marker = re.compile(r'/\* "([\w/.]+\.p[xy][dix])":(\d+)')
for family in ("pointwise", "softmax"):
    c_file = f"{c_dir}/{family}.c"
    where, current = {}, None
    for i, line in enumerate(open(c_file), 1):
        m = marker.search(line)
        if m:
            current = f"{m.group(1).rsplit('/', 1)[-1]}:{m.group(2)}"
        where[i] = current
    arm = vectorized(f"{out}/{family}.aarch64.vec", c_file)
    x86 = vectorized(f"{out}/{family}.x86_64.vec", c_file)
    by_source = defaultdict(int)
    for line in arm:
        by_source[where[line]] += 1
    print(f"  {family}: {len(arm)} loops vectorized for aarch64 (x86-64 baseline: "
          f"{len(x86)}), at {len(by_source)} source lines:")
    for source in sorted(by_source, key=lambda s: (s or "").split(":")[0] + f"{int((s or ':0').split(':')[1]):06d}"):
        print(f"    {source}: {by_source[source]}")
    lost = sorted(x86 - arm)
    if lost:
        ok = False
        print(f"  {family}: vectorized for x86-64 baseline but NOT for aarch64: "
              + ", ".join(f"{where[n]} (C line {n})" for n in lost))
    # loops of the C headers, inlined into the kernels: every line x86-64 vectorizes
    # somewhere (how often differs: epilogues, versioned copies), aarch64 must too
    counts = {}
    for arch in ("aarch64", "x86_64"):
        text = open(f"{out}/{family}.{arch}.vec").read()
        found = re.findall(r"([\w./-]+\.h):(\d+):\d+: optimized: loop vectorized", text)
        counts[arch] = defaultdict(int)
        for path, line in found:
            counts[arch][f"{path.rsplit('/', 1)[-1]}:{line}"] += 1
    headers = counts["aarch64"]
    print(f"    C headers: {sum(headers.values())} inlined loops vectorized at "
          f"{len(headers)} lines (x86-64 baseline: {sum(counts['x86_64'].values())} at "
          f"{len(counts['x86_64'])}): " + ", ".join(
              f"{k} {headers[k]}/{counts['x86_64'].get(k, 0)}" for k in sorted(headers)))
    missing = sorted(set(counts["x86_64"]) - set(headers))
    if missing:
        ok = False
        print(f"  {family}: header loops vectorized for x86-64 baseline but NOT for "
              f"aarch64: {', '.join(missing)}")
sys.exit(0 if ok else 1)
EOF
if [ $status = 0 ]; then
    echo "== aarch64: all checks passed"
else
    echo "== aarch64: FAILED" >&2
fi
exit $status
