#!/usr/bin/env python3
"""Run the benchmark's torch group and check the speed-ups issue 12 asks of fastloss.torch.

    python bench/torch_bars.py [--threads 2] [--quick] [--all] [--json PATH]

Times the cases behind the bars (fastloss.bench.torch_cases.BARS: cross-entropy at
20000 x 1000, (32, 21, 128, 128) and 256 x 10, MSE and BCE with logits at 10^7, a training
step) in float32, fastloss.torch against torch.nn in the same run at the same thread
count, prints the suite's table, then one line per bar: the speed-up (torch.nn time /
fastloss.torch time, medians of interleaved repeats) and whether it meets the bar, with
the cores other processes kept busy meanwhile.  ``--all`` times every module of the
group.  The JSON results go to ``bench/results/<date>-<time>-torch-<N>t.json`` unless
``--json`` says otherwise.  Exit status 0 when every bar is met.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="the quick preset's smaller sizes (the bars are not checked)")
    parser.add_argument("--all", action="store_true", help="every module of the group")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    try:
        from fastloss.bench import suite, torch_cases
    except ImportError:             # not installed: the in-place build of this checkout
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from fastloss.bench import suite, torch_cases

    losses = None if args.all else ("cross_entropy", "mse", "binary_cross_entropy")
    config = suite.BenchConfig(preset="quick" if args.quick else "full", threads=args.threads,
                               dtypes=("float32",), losses=losses, groups=("torch",),
                               peers=("torch",), scaling=False)
    results = suite.run(config, out=sys.stdout, progress=sys.stderr)
    path = args.json or RESULTS / (f"{time.strftime('%Y%m%d-%H%M%S')}-torch-"
                                   f"{args.threads}t{'-quick' if args.quick else ''}.json")
    print(f"results written to {suite.write_json(results, path)}")

    print(f"\nBars (float32, {args.threads} threads; speed-up = torch.nn / fastloss.torch):")
    met = True
    for case in results["cases"]:
        module = case["loss"].removeprefix("torch.")
        for row in case["rows"]:
            bar = torch_cases.BARS.get((module, tuple(case["shape"]), row["mode"]))
            if bar is None:
                continue
            speedup = row["torch_speedup"]
            ok = speedup is not None and speedup >= bar
            met &= ok or args.quick
            busy = case["others_cores"]
            print(f"  {case['label']:24s} {'x'.join(map(str, case['shape'])):16s} "
                  f"{row['mode']:10s} {speedup or float('nan'):6.2f}x  (bar {bar:.1f}x) "
                  f"{'met' if ok else 'NOT MET'}"
                  f"{f'   busy {busy:.2f} cores' if busy is not None else ''}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
