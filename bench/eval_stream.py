"""Streaming throughput and memory of ``python -m fastloss eval`` against NumPy alone.

Creates a pair of .npy files (2 GiB together by default) in a temporary folder, then runs,
each in a child process of its own:

* **numpy**: ``np.load(mmap_mode="r")`` on both files, summed chunk by chunk (the same
  rows per chunk as fastloss's batches): the rate at which NumPy alone reads the files;
* **fastloss**: ``python -m fastloss eval LOSS INPUT TARGET --json`` (default batch size:
  64 MiB of data per batch).

Each child reports the seconds of its reading loop (imports excluded); the rate is the
files' bytes over those seconds.  The peak resident size (ru_maxrss) of each child comes
from ``os.wait4``.  The page cache cannot be dropped without root, so the two run
alternately, in both orders, ``--repeat`` times (the files are written just before, so
they are usually in the page cache for every run).

Usage::

    python bench/eval_stream.py                  # MSE on float32 (N, 1) pairs, 2 GiB
    python bench/eval_stream.py --kind ce        # cross-entropy: (N, 16) float32 + labels
    python bench/eval_stream.py --gib 0.5 --repeat 3 --dir /scratch

The bar (issue 14): fastloss at >= 70 % of NumPy's rate, peak RSS under 4x the batch
budget (256 MiB).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BUDGET = 64 * 2**20

NUMPY_CHILD = r"""
import json, sys, time
import numpy as np
x = np.load(sys.argv[1], mmap_mode="r")
t = np.load(sys.argv[2], mmap_mode="r")
rows = int(sys.argv[3])
start = time.perf_counter()
s = 0.0
for lo in range(0, x.shape[0], rows):
    s += float(x[lo:lo + rows].sum(dtype=np.float64)) + float(t[lo:lo + rows].sum(dtype=np.float64))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "value": s}))
"""


def write_files(folder: Path, kind: str, gib: float, seed: int = 0):
    """(input path, target path, loss name, total bytes): written in pieces of 64 MiB,
    so that writing needs little memory."""
    rng = np.random.default_rng(seed)
    total = int(gib * 2**30)
    if kind == "mse":
        row_bytes, loss = 8, "mse"                              # float32 x, float32 t
        shapes = lambda n: ((n, 1), (n, 1))                      # noqa: E731
        make = lambda n: (rng.standard_normal((n, 1), np.float32),   # noqa: E731
                          rng.standard_normal((n, 1), np.float32))
        dtypes = (np.float32, np.float32)
    else:
        c = 16
        row_bytes, loss = 4 * c + 8, "cross_entropy"            # float32 logits, int64 labels
        shapes = lambda n: ((n, c), (n,))                        # noqa: E731
        make = lambda n: (rng.standard_normal((n, c), np.float32) * 3,   # noqa: E731
                          rng.integers(0, c, n))
        dtypes = (np.float32, np.int64)
    n = total // row_bytes
    n -= n % 4096
    paths = folder / "input.npy", folder / "target.npy"
    outs = [np.lib.format.open_memmap(p, mode="w+", dtype=d, shape=s)
            for p, d, s in zip(paths, dtypes, shapes(n))]
    step = max(4096, BUDGET // row_bytes)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        for out, part in zip(outs, make(hi - lo)):
            out[lo:hi] = part
    for out in outs:
        out.flush()
    del outs
    return paths[0], paths[1], loss, n * row_bytes, n, row_bytes


def run_child(argv, env=None):
    """(parsed JSON of the child's stdout, peak RSS in bytes, wall seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}):\n{err.decode()}")
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return json.loads(out.decode().strip().splitlines()[-1]), rss, wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("mse", "ce"), default="mse")
    parser.add_argument("--gib", type=float, default=2.0, help="size of the pair (GiB)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of both orders")
    parser.add_argument("--dir", help="folder for the files (default: a temporary one)")
    parser.add_argument("--threads", type=int, help="--threads of fastloss eval")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    parser.add_argument("--write-to", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.write_to:                  # the child that writes the files
        x, t, loss, nbytes, n, row_bytes = write_files(Path(args.write_to), args.kind,
                                                       args.gib)
        print(json.dumps([str(x), str(t), loss, nbytes, n, row_bytes]))
        return 0

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="fastloss-eval-") as tmp:
        t0 = time.perf_counter()
        # Written by a child: this process stays small, and a child's ru_maxrss starts
        # from the resident size of the process that started it (fork/vfork + exec).
        meta = subprocess.run([sys.executable, __file__, "--kind", args.kind, "--gib",
                               str(args.gib), "--write-to", tmp], check=True,
                              capture_output=True, text=True).stdout
        x, t, loss, nbytes, n, row_bytes = json.loads(meta.strip().splitlines()[-1])
        floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(f"files: {loss} pair, {n:,} rows, {nbytes / 2**30:.2f} GiB "
              f"(written in {time.perf_counter() - t0:.1f} s) in {tmp}")
        batch_rows = max(4096, (BUDGET // row_bytes) // 4096 * 4096)
        numpy_cmd = [sys.executable, "-c", NUMPY_CHILD, str(x), str(t), str(batch_rows)]
        fl_cmd = [sys.executable, "-m", "fastloss", "eval", loss, str(x), str(t), "--json",
                  "--no-progress"] + (["--threads", str(args.threads)] if args.threads else [])
        runs = {"numpy": [], "fastloss": []}
        order_log = []
        for r in range(args.repeat):
            for order in (("numpy", "fastloss"), ("fastloss", "numpy")):
                for who in order:
                    res, rss, wall = run_child(numpy_cmd if who == "numpy" else fl_cmd)
                    rate = nbytes / res["seconds"]
                    runs[who].append({"rate": rate, "seconds": res["seconds"], "rss": rss,
                                      "wall": wall})
                    order_log.append((r, "-".join(o[0] for o in order), who, rate, rss))
                    print(f"  round {r + 1}, order {order[0]} first: {who:8s} "
                          f"{rate / 1e9:6.2f} GB/s  ({res['seconds']:.2f} s, "
                          f"peak RSS {rss / 2**20:6.1f} MiB)", flush=True)
        med = {k: statistics.median(v["rate"] for v in runs[k]) for k in runs}
        peak = max(v["rss"] for v in runs["fastloss"])
        ratio = med["fastloss"] / med["numpy"]
        print(f"median rate: numpy {med['numpy'] / 1e9:.2f} GB/s, fastloss "
              f"{med['fastloss'] / 1e9:.2f} GB/s: {100 * ratio:.0f} % of NumPy "
              f"(bar: >= 70 %)")
        print(f"fastloss peak RSS {peak / 2**20:.1f} MiB = {peak / BUDGET:.2f} x the "
              f"{BUDGET // 2**20} MiB batch budget (bar: < 4x); NumPy's "
              f"{max(v['rss'] for v in runs['numpy']) / 2**20:.1f} MiB (the children's "
              f"ru_maxrss; this launcher's own peak, a floor for them: "
              f"{floor / 2**20:.1f} MiB)")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "kind": args.kind, "rows": n, "bytes": nbytes, "runs": runs,
                "median_rate": med, "ratio": ratio, "fastloss_peak_rss": peak,
                "budget": BUDGET}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
