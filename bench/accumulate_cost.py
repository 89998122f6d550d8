"""What exactness costs: ``Accumulator.update`` against a plain value call on the same batch.

For every loss of the table, a batch of 10^6 elements (pointwise: (10^6,) elements;
losses over classes: 10^5 rows of 10 classes), in float32 and float64, times the plain
``loss(x, t)`` and ``acc.update(x, t)`` alternately (interleaved, so that the machine's
noise hits both alike), and prints the median of each and their ratio.  The bar (issue
14): update at most 1.1x the plain call.

Usage::

    python bench/accumulate_cost.py [--repeat 41] [--threads N] [--elements 1000000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import fastloss
from fastloss.bench import reference as ref


def batch(loss, elements, dtype, rng):
    shape = (elements // 10, 10) if loss.family == "softmax" else (elements,)
    x = ref.example_input(loss, shape, rng, dtype)
    t = ref.example_target(loss, x.astype(np.float64), rng)
    if getattr(t, "dtype", None) is not None and t.dtype.kind == "f":
        t = t.astype(dtype)
    return x, t


def time_pair(f, g, repeat, inner):
    """Samples of f and g: `repeat` interleaved samples of `inner` calls each."""
    tf, tg = [], []
    for i in range(repeat):
        for fn, out in ((f, tf), (g, tg)) if i % 2 == 0 else ((g, tg), (f, tf)):
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            out.append((time.perf_counter() - start) / inner)
    return tf, tg


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=41)
    parser.add_argument("--inner", type=int, default=5, help="calls per timed sample")
    parser.add_argument("--threads", type=int, help="n_threads (default: OpenMP's)")
    parser.add_argument("--elements", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"batch of {args.elements:,} elements, n_threads={args.threads}, "
          f"median of {args.repeat} interleaved samples of {args.inner} calls")
    print(f"{'loss':22s} {'dtype':8s} {'plain: min':>11s} {'median':>9s} "
          f"{'update: min':>12s} {'median':>9s} {'ratio: min':>10s} {'median':>7s}")
    ratios = {"min": [], "median": []}
    for cls in fastloss.LOSSES:
        loss = cls()
        for dtype in (np.float32, np.float64):
            x, t = batch(loss, args.elements, dtype, rng)
            acc = fastloss.Accumulator(loss)
            plain = lambda: loss(x, t, n_threads=args.threads)            # noqa: E731
            update = lambda: acc.update(x, t, n_threads=args.threads)     # noqa: E731
            plain(), update()
            tp, tu = time_pair(plain, update, args.repeat, args.inner)
            row = {}
            for stat, fn in (("min", min), ("median", statistics.median)):
                row[stat] = (fn(tp), fn(tu))
                ratios[stat].append(row[stat][1] / row[stat][0])
            print(f"{loss.name:22s} {np.dtype(dtype).name:8s} "
                  f"{row['min'][0] * 1e6:9.1f}us {row['median'][0] * 1e6:7.1f}us "
                  f"{row['min'][1] * 1e6:10.1f}us {row['median'][1] * 1e6:7.1f}us "
                  f"{ratios['min'][-1]:10.3f} {ratios['median'][-1]:7.3f}", flush=True)
    for stat in ("min", "median"):
        r = ratios[stat]
        print(f"ratio update / plain ({stat} times): median over cases "
              f"{statistics.median(r):.3f}, max {max(r):.3f} (bar: <= 1.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
