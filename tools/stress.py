"""Odd-shape stress: many calls whose sizes sit on and beside the kernels' boundaries.

Every loss of the table with each of its parameter examples, float32, float64, float16 and
bfloat16 (read natively; bfloat16 where ml_dtypes is installed), every method,
C-contiguous, strided, reversed, Fortran-ordered and misaligned arguments, weights of both
forms and `out=`, at sizes just below, on and above the tile, lane, narrow-row, block and
threading boundaries, and for half-precision logits the class count from which a row is
read as it is, without a float32 copy (LAYOUT's HALF_WIDE_MIN).  Each call runs with 1
and 2 threads and must give the same bits; values of finite input must be finite.  Meant
to run under tools/sanitize.sh, where a read or write outside an array stops the run; on
its own it checks determinism.

    python tools/stress.py [--calls N] [--seed S]

Exit status 0 when every call passed; the first failure is printed and exits 1.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastloss
from fastloss import _dispatch
from fastloss.bench import reference as ref

try:
    import ml_dtypes        # NumPy's bfloat16 (the test extras install it)
except ImportError:
    ml_dtypes = None

LAYOUT = _dispatch.probes().LAYOUT


def edges(*sizes):
    """Each size, one less and one more."""
    return tuple(sorted({max(1, s + d) for s in sizes for d in (-1, 0, 1)}))


# Sizes on and around the kernels' boundaries: lanes, narrow-row classes and rows, tiles,
# blocks and the threading threshold.
CLASSES = edges(2, LAYOUT["LANES"], LAYOUT["NARROW_MAX"], LAYOUT["TILE"]) + (1000,)
ROWS = edges(1, LAYOUT["LANES"], LAYOUT["NARROW_ROWS"], LAYOUT["TILE"], LAYOUT["BLOCK_MIN"])
ELEMENTS = edges(1, LAYOUT["LANES"], LAYOUT["TILE"], LAYOUT["BLOCK_MIN"],
                 LAYOUT["PARALLEL_MIN"]) + (70001,)
# Long rows of half-precision logits (none at a level that always widens them first)
LONG_HALF = (edges(LAYOUT["HALF_WIDE_MIN"]) + (2 * LAYOUT["HALF_WIDE_MIN"] + 13,)
             if LAYOUT["HALF_WIDE_MIN"] else ())
DTYPES = (np.float32, np.float64, np.float16) + ((ml_dtypes.bfloat16,) if ml_dtypes else ())
HALF = DTYPES[2:]
ODDS = np.array((0.4, 0.4, 0.2, 0.2)[:len(DTYPES)]) / (0.8 + 0.2 * len(HALF))


def layout(rng, a):
    kind = rng.integers(6)
    if kind == 1 and a.ndim:
        big = np.zeros(a.shape[:-1] + (a.shape[-1] * 3,), a.dtype)
        big[..., ::3] = a
        return big[..., ::3]
    if kind == 2 and a.ndim:
        return np.ascontiguousarray(a[::-1])[::-1]
    if kind == 3 and a.ndim > 1:
        return np.asfortranarray(a)
    if kind == 4:
        return ref.misaligned(a)
    return a


def one_call(rng, dtype):
    """A random (loss, input, target, kwargs, method) at a boundary size, in dtype.  A
    fifth of the half-precision calls are cross-entropy over long rows (LONG_HALF)."""
    long_half = dtype in HALF and bool(LONG_HALF) and rng.random() < 0.2
    cls = (fastloss.CrossEntropy if long_half
           else fastloss.LOSSES[rng.integers(len(fastloss.LOSSES))])
    params = {}
    for p in cls.params:
        choices = (p.default,) + tuple(p.examples)
        params[p.name] = choices[rng.integers(len(choices))]
    if cls.family == "softmax":
        C = int(rng.choice(CLASSES))
        N = int(rng.choice(ROWS)) if C < 256 else int(rng.integers(1, 70))
        if long_half:
            C, N = int(rng.choice(LONG_HALF)), int(rng.integers(1, 6))
        shape = (N, C) if params.get("axis", -1) == -1 else (C, N)      # classes on `axis`
        if "class_weight" in params and rng.random() < 0.3:
            params["class_weight"] = rng.uniform(0, 2, C)
    else:
        n = int(rng.choice(ELEMENTS))
        shape = (n,) if rng.random() < 0.5 or n < 4 else (n // 3, 3)
    loss = cls(**params)
    x = ref.example_input(loss, shape, rng, scale=4.0)
    t = ref.example_target(loss, x, rng, labels=rng.random() < 0.7)
    if t.dtype.kind in "iu" and t.size:
        t[rng.random(t.shape) < 0.1] = loss.ignore_index
    if cls.family == "softmax":
        axis = loss.axis % len(shape)
        sample_shape = shape[:axis] + shape[axis + 1:]
    else:
        sample_shape = shape
    x = layout(rng, x.astype(dtype))
    if t.dtype.kind == "f":
        t = layout(rng, t.astype(dtype))
    kwargs = {"reduction": str(rng.choice(["mean", "sum", "none"]))}
    if rng.random() < 0.4:
        wshape = sample_shape if rng.random() < 0.5 else sample_shape[:1]
        kwargs["sample_weight"] = layout(rng, rng.uniform(0, 2, wshape).astype(dtype))
    method = str(rng.choice(["__call__", "value_and_grad", "grad_hess"]))
    return loss, x, t, kwargs, method


def run(loss, x, t, kwargs, method, n_threads):
    fn = getattr(loss, method)
    if method == "__call__":
        return [np.asarray(fn(x, t, n_threads=n_threads, **kwargs))]
    shape, dtype = x.shape, (np.float64 if x.dtype == np.float64 else np.float32)
    out = None
    if method == "value_and_grad":
        out = np.empty(shape, dtype)
    elif method == "grad_hess":
        out = (np.empty(shape, dtype), np.empty(shape, dtype))
    return [np.asarray(r) for r in fn(x, t, n_threads=n_threads, out=out, **kwargs)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per kernel level")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start = time.monotonic()
    level = _dispatch.kernels.level
    for i in range(args.calls):
        dtype = DTYPES[rng.choice(len(DTYPES), p=ODDS)]
        loss, x, t, kwargs, method = one_call(rng, dtype)
        with np.errstate(all="ignore"):
            one = run(loss, x, t, kwargs, method, 1)
            two = run(loss, x, t, kwargs, method, 2)
        for a, b in zip(one, two):
            if not np.array_equal(a, b, equal_nan=True):
                print(f"call {i}: {loss!r}.{method} on {x.shape} {x.dtype} {kwargs}: "
                      f"1 and 2 threads differ", file=sys.stderr)
                return 1
        from_logits = getattr(loss, "from_logits", True)
        if from_logits and not all(np.all(np.isfinite(a)) for a in one):
            print(f"call {i}: {loss!r}.{method} on {x.shape} {x.dtype}: non-finite output "
                  f"from finite input", file=sys.stderr)
            return 1
    print(f"stress [{level}]: {args.calls} calls passed in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
