#!/usr/bin/env python3
"""Two source trees of fastloss against each other on one machine: the same cases, each
tree in its own processes, the processes alternating, so that a machine whose speed
drifts (a VM's host) moves both alike.  This is how a "no regression" claim is checked,
e.g. issue 16's "no AVX-512 figure gets worse" on an AVX-512 machine.

    python bench/trees_ab.py BASE [NEW] [--pairs 6] [--repeats 11] [--threads 2]
        [--only SUBSTRING] [--value] [--time] [--scale 1.0] [--json PATH]
        [--base-simd LEVEL] [--new-simd LEVEL]

BASE and NEW (default: this checkout) are checkouts built in place (``python setup.py
build_ext --inplace``; e.g. ``git worktree add /tmp/base <rev>`` and build it there), or
folders that hold an installed ``fastloss`` package (a site-packages).  The level is the
one fastloss picks, or FASTLOSS_SIMD's, for both, unless --base-simd / --new-simd set
FASTLOSS_SIMD for one side: with the same tree on both sides, ``trees_ab.py . .
--base-simd avx512 --new-simd avx2`` measures issue 16's "AVX2 as good as AVX-512" in the
same alternating processes (the table's title names the level each side ran at).  Only
the public API is used, so old trees run too.  --scale shrinks every case (a smoke run).

Each case times value_and_grad(out=) (--value: the value alone) at --threads and,
interleaved with it in the same repeats, the memory floor on the same bytes (np.add of
input and target into out, or np.multiply(x, 1, out) where the target is labels; for
bfloat16 input, on its bytes read as uint16); a process reports each case's median time
over the floor's median (--time: the median time in ms instead).  A case that a tree
rejects (bfloat16 input before issue 16) is left out of the table.  The table shows
both trees' medians over the pairs and the median of the per-pair NEW / BASE ratios,
with every pair's ratio: below 1, NEW is faster.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def cases(np, fastloss, scale=1.0):
    """(name, loss, x, target) of every case: float32 unless named; scale multiplies the
    number of values (of rows, for the softmax cases)."""
    rng = np.random.default_rng(0)

    def probs(shape):
        z = rng.standard_normal(shape).astype(np.float32)
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    n = max(2, int(10_000_000 * scale))
    x = rng.standard_normal(n).astype(np.float32)
    t = rng.standard_normal(n).astype(np.float32)
    yield "MSE 1e7", fastloss.MSE(), x, t
    yield "MAE 1e7", fastloss.MAE(), x, t
    yield "PseudoHuber 1e7", fastloss.PseudoHuber(), x, t
    yield ("BCE logits 1e7", fastloss.BinaryCrossEntropy(from_logits=True), x,
           (rng.random(n) < 0.5).astype(np.float32))
    yield ("MSE float64 5e6", fastloss.MSE(), x[:n // 2].astype(np.float64),
           t[:n // 2].astype(np.float64))
    for full, cls in ((20_000, 1_000), (2_000, 32_000), (1_000_000, 10)):
        rows = max(1, int(full * scale))     # the name keeps the unscaled shape
        z = rng.standard_normal((rows, cls)).astype(np.float32) * 2
        yield f"CE {full}x{cls}", fastloss.CrossEntropy(), z, rng.integers(0, cls, rows)
        yield f"KL {full}x{cls}", fastloss.KLDivergence(), z, probs((rows, cls))
    rows = max(1, int(20_000 * scale))
    yield ("CE float64 20000x1000", fastloss.CrossEntropy(),
           rng.standard_normal((rows, 1_000)) * 2, rng.integers(0, 1_000, rows))
    try:
        import ml_dtypes
    except ImportError:
        return
    rows = max(1, int(2_000 * scale))
    yield ("CE bfloat16 2000x32000", fastloss.CrossEntropy(),
           (rng.standard_normal((rows, 32_000)) * 2).astype(ml_dtypes.bfloat16),
           rng.integers(0, 32_000, rows))


def child(args) -> None:
    import numpy as np

    import fastloss
    res = {}
    for name, loss, x, t in cases(np, fastloss, args.scale):
        if args.only and args.only not in name:
            continue
        half = x.dtype.itemsize == 2
        out = np.empty(x.shape, np.float32 if half else x.dtype)
        if args.value:
            run = lambda: loss(x, t, n_threads=args.threads)  # noqa: E731
        else:
            run = lambda: loss.value_and_grad(x, t, n_threads=args.threads, out=out)  # noqa: E731
        if half:
            bits = x.view(np.uint16)
            bits_out = np.empty_like(bits)
            floor = lambda: np.multiply(bits, 1, out=bits_out)  # noqa: E731
        elif t.shape == x.shape and t.dtype == x.dtype:
            floor = lambda: np.add(x, t, out=out)  # noqa: E731
        else:
            floor = lambda: np.multiply(x, 1, out=out)  # noqa: E731
        try:
            run()
        except (TypeError, ValueError):         # an older tree: no such input
            continue
        run(), floor()
        ts, fs = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run()
            t1 = time.perf_counter()
            floor()
            t2 = time.perf_counter()
            ts.append(t1 - t0)
            fs.append(t2 - t1)
        res[name] = (float(np.median(ts)) * 1e3 if args.time else
                     float(np.median(ts) / np.median(fs)))
    try:                            # the level this process ran at (an old tree: unknown)
        level = fastloss.show_config(file=io.StringIO())["simd"]
    except (AttributeError, TypeError, KeyError):
        level = None
    print(json.dumps({"level": level, "cases": res}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("new", type=Path, nargs="?", default=Path(__file__).parents[1])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", help="only the cases whose name holds this")
    parser.add_argument("--value", action="store_true",
                        help="time the value alone, not value_and_grad(out=)")
    parser.add_argument("--time", action="store_true", help="report ms, not / floor")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every case's size by this (a smoke run: 0.001)")
    parser.add_argument("--json", metavar="PATH", help="every process's figures, by tree")
    parser.add_argument("--base-simd", metavar="LEVEL",
                        help="FASTLOSS_SIMD for BASE's processes (default: as this process)")
    parser.add_argument("--new-simd", metavar="LEVEL",
                        help="FASTLOSS_SIMD for NEW's processes (default: as this process)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    trees = {"base": args.base.resolve(), "new": args.new.resolve()}
    paths = {}
    for which, tree in trees.items():
        found = [p for p in (tree / "src", tree) if (p / "fastloss" / "__init__.py").is_file()]
        if not found:
            parser.error(f"{tree} is neither a fastloss checkout nor holds a fastloss package")
        paths[which] = found[0]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(args.base),
           "--repeats", str(args.repeats), "--threads", str(args.threads),
           "--scale", str(args.scale)]
    cmd += (["--only", args.only] if args.only else []) + (["--time"] if args.time else [])
    cmd += ["--value"] if args.value else []
    runs: dict[str, list[dict]] = {"base": [], "new": []}
    levels: dict[str, list] = {"base": [], "new": []}
    simd = {"base": args.base_simd, "new": args.new_simd}
    for _ in range(args.pairs):
        for which in trees:
            env = dict(os.environ, PYTHONPATH=str(paths[which]))
            if simd[which]:
                env["FASTLOSS_SIMD"] = simd[which]
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            child_out = json.loads(out.stdout.strip().splitlines()[-1])
            runs[which].append(child_out["cases"])
            levels[which].append(child_out["level"])
    unit = "ms" if args.time else "/ floor"
    what = "value" if args.value else "value_and_grad(out=)"
    sides = {k: f"{v} ({', '.join(sorted({str(lv) for lv in levels[k]}))})"
             for k, v in trees.items()}
    table = Table(title=f"new {sides['new']} vs base {sides['base']}: {what}, {args.threads}"
                  f" threads, {args.pairs} alternating pairs, medians of {args.repeats}")
    for col in ("case", f"base {unit}", f"new {unit}", "new / base", "per pair"):
        table.add_column(col, justify="left" if col in ("case", "per pair") else "right")
    for name in runs["base"][0]:
        if name not in runs["new"][0]:
            continue
        b = np.array([r[name] for r in runs["base"]])
        n = np.array([r[name] for r in runs["new"]])
        table.add_row(name, f"{np.median(b):.3f}", f"{np.median(n):.3f}",
                      f"{np.median(n / b):.3f}", " ".join(f"{v:.2f}" for v in n / b))
    Console(width=160).print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"trees": {k: str(v) for k, v in trees.items()},
                                               "levels": levels,
                                               "threads": args.threads, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
