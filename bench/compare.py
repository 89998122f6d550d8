"""Compare benchmark runs: each case's fastloss time over the parallel memory floor of
its own run, side by side, and the change.

    python bench/compare.py before.json after.json [more.json ...] [--labels A B ...]

Each JSON is what ``python -m fastloss bench --json`` wrote (any schema; the loss names of
older runs, ``bce``/``ce``/``kl``, are mapped to the table's).  A ratio to the floor of the
same run cancels most of the machine's drift in memory bandwidth between runs, which a
time does not; runs made alternately (before, after, before, after) and medians of the
ratios are the fair comparison on a shared machine.  Several files with the same label
are pooled by the median of their ratios.
"""
from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict

from rich.console import Console
from rich.table import Table

OLD_NAMES = {"bce": "binary_cross_entropy", "ce": "cross_entropy", "kl": "kl_divergence"}


def ratios(path: str) -> dict[tuple, float]:
    """(loss, dtype, shape, mode) -> fastloss time / parallel floor time."""
    with open(path) as f:
        results = json.load(f)
    out = {}
    for case in results["cases"]:
        if case.get("group", "losses") != "losses":
            continue
        loss = OLD_NAMES.get(case["loss"], case["loss"])
        for row in case["rows"]:
            if row.get("par_floor_ratio") is not None:
                key = (loss, case["dtype"], tuple(case["shape"]), row["mode"])
                out[key] = row["par_floor_ratio"]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", help="benchmark JSON files")
    p.add_argument("--labels", nargs="+", help="a label per file (default: the file names); "
                                               "files with the same label are pooled")
    args = p.parse_args(argv)
    labels = args.labels or args.files
    if len(labels) != len(args.files):
        p.error("give one label per file")
    pooled: dict[str, dict[tuple, list[float]]] = defaultdict(lambda: defaultdict(list))
    for label, path in zip(labels, args.files):
        for key, r in ratios(path).items():
            pooled[label][key].append(r)
    names = list(dict.fromkeys(labels))
    keys = sorted(set().union(*(pooled[n].keys() for n in names)))
    table = Table(title="fastloss time / parallel memory floor (lower is better)")
    for col in ("loss", "dtype", "shape", "mode", *names):
        table.add_column(col, justify="left" if col in ("loss", "dtype", "mode") else "right")
    if len(names) >= 2:
        table.add_column(f"{names[-1]} / {names[0]}", justify="right")
    for key in keys:
        med = [statistics.median(pooled[n][key]) if pooled[n].get(key) else None for n in names]
        cells = [f"{m:.2f}" if m is not None else "-" for m in med]
        if len(names) >= 2:
            cells.append(f"{med[-1] / med[0]:.2f}" if None not in (med[0], med[-1]) else "-")
        loss, dtype, shape, mode = key
        table.add_row(loss, dtype, "x".join(map(str, shape)), mode, *cells)
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
