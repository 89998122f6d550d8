#!/usr/bin/env bash
# Build fastloss in place and record its thread scaling on a many-core machine.
#
#     bash bench/scaling.sh [OUTDIR] [THREAD COUNTS...]
#
# STEPS (default "build bench") chooses what runs: build, test (the test suite, in
# parallel when pytest-xdist is installed), bench.
# OUTDIR (default bench/results) receives build.log, scaling.json/.txt (MSE and BCE at
# 1e7, CE and KL at 20000x1000, float32, value_and_grad(out=) against the parallel floor
# at each thread count) and table.json/.txt (the full float32 table at every core).
# NumPy, Cython >= 3.1, a C compiler with OpenMP and rich (the tables) are needed;
# PyTorch and scikit-learn are compared with when installed.  Used for the 16-core
# figures in the README.
set -u
cd "$(dirname "$0")/.."
out=${1:-bench/results}
shift || true
counts=${*:-"1 2 4 8 12 16"}
mkdir -p "$out"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}
steps=${STEPS:-build bench}

nproc
grep -m1 "model name" /proc/cpuinfo
grep -m1 -o -w "avx512f" /proc/cpuinfo || echo "no avx512f"
$py -c "import sys, numpy, Cython; print(sys.version.split()[0], numpy.__version__, Cython.__version__)"

if [[ " $steps " == *" build "* ]]; then
    ${CC:-cc} --version | head -1
    start=$(date +%s)
    if ! $py setup.py build_ext --inplace -j "$(nproc)" >"$out/build.log" 2>&1; then
        tail -40 "$out/build.log"
        exit 1
    fi
    echo "built in $(( $(date +%s) - start )) s"
    $py -m fastloss config
fi

if [[ " $steps " == *" test "* ]]; then
    xdist=$($py -c "import xdist" 2>/dev/null && echo "-n $(nproc)")
    $py -m pytest -q -p no:cacheprovider $xdist tests 2>&1 | tail -5
fi

if [[ " $steps " == *" bench "* ]]; then
    $py -m fastloss bench --scaling-only --scaling-threads $counts --dtype float32 \
        --losses mse binary_cross_entropy cross_entropy kl_divergence --no-progress \
        --json "$out/scaling.json" | tee "$out/scaling.txt"
    $py -m fastloss bench --dtype float32 --no-scaling --no-progress \
        --json "$out/table.json" | tee "$out/table.txt"
fi
