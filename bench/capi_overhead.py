"""What a call of the C API costs over the kernel's own work (issue 18's bar: under 0.3 us
for a 1,000-element MSE).

Builds a small downstream module (Cython + setuptools, in a temporary folder, against
fastloss on ``sys.path``; run it from a source checkout: the floor needs the kernels'
internal declarations, src/fastloss/_kernels/entries.pxd) whose functions make N calls in a
C loop without the GIL, and times, per call, for MSE value and gradient ("mean") of n
float64 elements on the calling thread:

* ``capi``: ``fl_pointwise_f64`` (fastloss/api.pxd), as a downstream library calls it;
* ``floor``: the kernel's entry point itself (what fl_pointwise_f64 calls after its
  checks: the dispatched level's blocked pass over the same elements), with its argument
  struct filled once, outside the loop: the kernel work that any call must do;
* ``python``: ``fastloss.MSE().value_and_grad(x, t, n_threads=1, out=grad)``, for
  comparison (its validation and object handling on top of the same kernel).

The C API's overhead is ``capi - floor``.  Each figure is the median of ``--repeat``
interleaved samples of ``--calls`` calls.

Usage::

    PYTHONPATH=src python bench/capi_overhead.py [--n 1000] [--calls 100000] [--repeat 21]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

PYX = textwrap.dedent(r"""
    # cython: language_level=3, boundscheck=False, wraparound=False
    from cpython.pycapsule cimport PyCapsule_GetPointer
    from libc.stdint cimport uintptr_t
    from fastloss.api cimport fl_pointwise_f64, FL_MSE, FL_VALUE_GRAD, FL_MEAN, FL_OK
    from fastloss._kernels.entries cimport (PointwiseArgs, PointwiseEntry,
                                            FL_ENTRY_POINTWISE)

    def capi(Py_ssize_t calls, Py_ssize_t n, uintptr_t x, uintptr_t t, uintptr_t grad):
        cdef Py_ssize_t i
        cdef double value, acc = 0
        cdef int status = FL_OK
        with nogil:
            for i in range(calls):
                status |= fl_pointwise_f64(FL_MSE, FL_VALUE_GRAD, FL_MEAN, n,
                                           <const double*>x, 1, <const double*>t, 1, NULL, 1,
                                           NULL, 0, 0.0, &value, NULL, <double*>grad, NULL, 1)
                acc += value
        assert status == FL_OK
        return acc

    def floor(Py_ssize_t calls, Py_ssize_t n, uintptr_t x, uintptr_t t, uintptr_t grad,
              object entries, int kernel):
        cdef PointwiseEntry run = <PointwiseEntry>PyCapsule_GetPointer(
            entries["pointwise"], FL_ENTRY_POINTWISE)
        cdef PointwiseArgs a
        cdef Py_ssize_t i, flag
        cdef double acc = 0
        a.kernel = kernel
        a.mode = FL_VALUE_GRAD
        a.float32 = False
        a.x = <const double*>x
        a.x_stride = 1
        a.t = <const double*>t
        a.t_stride = 1
        a.w = NULL
        a.w_group = 1
        a.pw = NULL
        a.pw_period = 1
        a.value = NULL
        a.grad = <double*>grad
        a.hess = NULL
        a.scale = 1.0 / n
        a.param = 0.0
        with nogil:
            for i in range(calls):
                acc += run(&a, n, 1, &flag) / n
        return acc
""")

SETUP = textwrap.dedent("""
    from Cython.Build import cythonize
    from setuptools import Extension, setup
    ext = Extension("fl_capi_bench", ["fl_capi_bench.pyx"],
                    include_dirs=[{kernels!r}], extra_compile_args=["-O2"])
    setup(ext_modules=cythonize([ext], include_path=[{src!r}], quiet=True))
""")


def build(folder: Path):
    import fastloss
    src = str(Path(fastloss.__file__).resolve().parent.parent)
    kernels = os.path.join(src, "fastloss", "_kernels")
    if not os.path.exists(os.path.join(kernels, "entries.pxd")):
        raise SystemExit("bench/capi_overhead.py needs fastloss from a source checkout "
                         "(PYTHONPATH=src): the floor uses src/fastloss/_kernels/entries.pxd")
    (folder / "fl_capi_bench.pyx").write_text(PYX)
    (folder / "setup.py").write_text(SETUP.format(kernels=kernels, src=src))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=folder,
                          env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"build failed:\n{proc.stdout}\n{proc.stderr}")
    sys.path.insert(0, str(folder))
    import fl_capi_bench
    return fl_capi_bench


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="elements per call")
    parser.add_argument("--calls", type=int, default=100_000, help="calls per sample")
    parser.add_argument("--repeat", type=int, default=21, help="samples per candidate")
    args = parser.parse_args()

    import fastloss
    import fastloss.api
    from fastloss import _dispatch

    with tempfile.TemporaryDirectory() as tmp:
        mod = build(Path(tmp))
        rng = np.random.default_rng(0)
        x, t = rng.normal(size=args.n), rng.normal(size=args.n)
        grad = np.empty_like(x)
        a = lambda arr: arr.__array_interface__["data"][0]          # noqa: E731
        kernels = _dispatch.kernels.pointwise
        loss = fastloss.MSE()
        py_calls = max(args.calls // 20, 1)
        candidates = {
            "capi": (lambda: mod.capi(args.calls, args.n, a(x), a(t), a(grad)), args.calls),
            "floor": (lambda: mod.floor(args.calls, args.n, a(x), a(t), a(grad),
                                        kernels.ENTRIES, kernels.KERNELS["mse"]), args.calls),
            "python": (lambda: [loss.value_and_grad(x, t, n_threads=1, out=grad)
                                for _ in range(py_calls)], py_calls),
        }
        # same results: the C API's value equals the Python API's
        v, g = loss.value_and_grad(x, t, n_threads=1)
        assert mod.capi(1, args.n, a(x), a(t), a(grad)) == v and grad.tobytes() == g.tobytes()
        samples = {name: [] for name in candidates}
        for _ in range(2):                                      # warm up
            for fn, _calls in candidates.values():
                fn()
        for i in range(args.repeat):
            order = list(candidates) if i % 2 == 0 else list(reversed(candidates))
            for name in order:
                fn, calls = candidates[name]
                start = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - start) / calls * 1e9)
        med = {name: statistics.median(s) for name, s in samples.items()}
        print(f"MSE value_and_grad, mean, float64, n={args.n}, one thread, level "
              f"{fastloss.api.level}; median ns per call over {args.repeat} samples")
        for name in candidates:
            print(f"  {name:8s} {med[name]:9.1f} ns")
        overhead = med["capi"] - med["floor"]
        print(f"  C API overhead (capi - floor): {overhead:.1f} ns "
              f"({'under' if overhead < 300 else 'OVER'} the 300 ns bar)")
        print(f"  Python API overhead (python - floor): {med['python'] - med['floor']:.1f} ns")
        return 0 if overhead < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
