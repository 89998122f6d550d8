#!/usr/bin/env bash
# Build fastloss with AddressSanitizer and UndefinedBehaviorSanitizer and run tests and the
# odd-shape stress (tools/stress.py) under them, for every SIMD level this CPU has.  Any
# read or write outside an array, misaligned access, overflow or other undefined behaviour
# stops the run with a report and a non-zero exit status.
#
#   tools/sanitize.sh [quick|full]
#
# quick (.ci/run): the safety, fuzz, API, C API and half-precision tests once, and 1500
# stress calls per level.
# full (the wheels workflow): the whole test suite once per level, and 20000 stress calls
# per level.  Needs GCC (or Clang, with CC=clang) with the sanitizer runtimes, and pip with
# network access for the isolated build (setuptools, Cython, NumPy).  The build goes to
# build/sanitize; nothing else in the checkout changes.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-quick}
py=${PYTHON:-python}
cc=${CC:-gcc}
site=build/sanitize/site
tree=build/sanitize/tree

echo "== sanitize ($mode): building with -fsanitize=address,undefined"
rm -rf "$site" "$tree"
# Build from a copy of the checkout's files (tracked, and untracked ones git does not
# ignore): pip builds in the source tree, and its instrumented objects and modules in the
# checkout's build/ would be what the next in-place build copies into src/ (it finds them
# up to date), leaving modules that need the ASan runtime preloaded.
mkdir -p "$tree"
git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done |
    xargs -0 cp --parents -t "$tree"
FASTLOSS_SANITIZE=address,undefined FASTLOSS_OPENMP=required \
    "$py" -m pip install --quiet --no-deps --no-cache-dir --target "$site" "$tree"

libasan=$("$cc" -print-file-name=libasan.so)
[ -f "$libasan" ] || { echo "no libasan.so for $cc" >&2; exit 2; }
# libstdc++ is preloaded with it: a C++ library that Python loads later (XGBoost, in
# tests/test_boosting.py) otherwise makes ASan's __cxa_throw interceptor abort on the
# first exception ("real___cxa_throw != 0"), as its real function was not there at start-up.
libstdcxx=$("$cc" -print-file-name=libstdc++.so)
[ -f "$libstdcxx" ] || libstdcxx=
# The interpreter itself is not instrumented and leaks at exit by design: leak checking
# is off (LeakSanitizer over 100k calls was clean when checked by hand).  Everything
# else stops the run on the first report.
export LD_PRELOAD="$libasan${libstdcxx:+:$libstdcxx}"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONPATH="$PWD/$site"
export OMP_NUM_THREADS=2

levels=$("$py" -c "from fastloss import _dispatch; print(' '.join(_dispatch.available()))")
echo "== sanitize: levels $levels"
if [ "$mode" = full ]; then
    tests=(tests)
    calls=20000
else
    tests=(tests/test_safety.py tests/test_fuzz.py tests/test_api.py tests/test_capi.py
           tests/test_half.py)
    calls=1500
fi
first=1
for level in $levels; do
    # the suite runs every level itself where a test takes the `level` fixture; the
    # rest run on the level that FASTLOSS_SIMD selects
    if [ "$mode" = full ] || [ $first = 1 ]; then
        echo "== sanitize [$level]: pytest ${tests[*]}"
        FASTLOSS_SIMD=$level "$py" -m pytest -q -x -p no:cacheprovider "${tests[@]}"
    fi
    echo "== sanitize [$level]: stress"
    FASTLOSS_SIMD=$level "$py" tools/stress.py --calls $calls
    first=0
done
echo "== sanitize: clean"
