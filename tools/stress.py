"""Odd-shape stress: many calls whose sizes sit on and beside the kernels' boundaries.

Every loss and option, both float dtypes, every method, C-contiguous, strided, reversed,
Fortran-ordered and misaligned arguments, weights of both forms and `out=`, at sizes just
below, on and above the tile, lane, narrow-row, block and threading boundaries.  Each
call runs with 1 and 2 threads and must give the same bits; values of finite input must
be finite.  Meant to run under tools/sanitize.sh, where a read or write outside an array
stops the run; on its own it checks determinism.

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

# Sizes around the kernels' boundaries: FL_LANES (16), NARROW_MAX classes (32), NARROW_ROWS
# rows (64), TILE (256), BLOCK_MIN elements (4096) and PARALLEL_MIN (32768).
EDGES = (1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257)
ROWS = EDGES + (4095, 4097)
ELEMENTS = EDGES + (4095, 4096, 4097, 32767, 32768, 32769, 70001)


def misaligned(a):
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, a.dtype, a.size, 1).reshape(a.shape)
    out[...] = a
    return out


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
        return misaligned(a)
    return a


def one_call(rng, dtype):
    """A random (loss, input, target, kwargs, method) at a boundary size."""
    family = rng.choice(["pointwise", "softmax"])
    if family == "pointwise":
        n = int(rng.choice(ELEMENTS))
        shape = (n,) if rng.random() < 0.5 or n < 4 else (n // 3, 3)
        loss = rng.choice([fastloss.MSE(), fastloss.MAE(), fastloss.PseudoHuber(0.7),
                           fastloss.BinaryCrossEntropy(), fastloss.BinaryCrossEntropy(
                               pos_weight=rng.uniform(0, 3, shape[-1])),
                           fastloss.BinaryCrossEntropy(from_logits=False)])
        from_probs = isinstance(loss, fastloss.BinaryCrossEntropy) and not loss.from_logits
        x = rng.uniform(0, 1, shape) if from_probs else rng.normal(size=shape) * 4
        t = rng.uniform(0, 1, shape)
        sample_shape = shape
    else:
        C = int(rng.choice(EDGES + (1000,)))
        N = int(rng.choice(ROWS)) if C < 256 else int(rng.integers(1, 70))
        shape = (N, C)
        kind = rng.integers(5)
        from_logits = rng.random() < 0.8
        cw = rng.uniform(0, 2, C) if rng.random() < 0.3 else None
        eps = float(rng.choice([0.0, 0.1]))
        if kind == 0:
            loss = fastloss.CrossEntropy(from_logits, cw, -100, eps)
            t = rng.integers(0, C, N)
            t[rng.random(N) < 0.1] = -100
        elif kind == 1:
            loss = fastloss.CrossEntropy(from_logits, cw, -100, eps)
            t = rng.dirichlet(np.ones(C), N)
        else:
            log_t = kind == 3
            loss = fastloss.KLDivergence(from_logits, log_t)
            t = rng.dirichlet(np.ones(C), N)
            if log_t:
                t = np.log(t)
        x = rng.normal(size=shape) * 4 if from_logits else rng.dirichlet(np.ones(C), N)
        sample_shape = shape[:-1]
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
    shape, dtype = x.shape, (np.float32 if x.dtype == np.float32 else np.float64)
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
        dtype = np.float32 if rng.random() < 0.5 else np.float64
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
