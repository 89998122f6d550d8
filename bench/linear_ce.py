#!/usr/bin/env python3
"""Fused linear + cross-entropy against PyTorch's ``cross_entropy(linear(...))``: wall
time, peak memory and accuracy (issue 17's bars).

    python bench/linear_ce.py [--threads 2] [--repeats 3] [--shapes 4096x1024x32000 ...]
                              [--sides fastloss fastloss.torch torch] [--json PATH]
                              [--no-reference] [--from-json PATH ...]

For each shape ``N x H x V`` (default: 4096 x 1024 x 32000 and 2048 x 2048 x 128000),
float32, forward + backward, one timed call per process:

* ``fastloss``: ``LinearCrossEntropy().value_and_grad(hidden, weight, target)`` (NumPy);
* ``fastloss.torch``: ``fastloss.torch.linear_cross_entropy(...)`` then ``backward()``;
* ``torch``: ``F.cross_entropy(F.linear(hidden, weight), target)`` then ``backward()``.

Every run is its own subprocess (``--worker``), so that its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``) is its own: the extra memory is that peak minus
the RSS once the inputs exist, minus the returned gradients (``grad_hidden``,
``grad_weight``), which both sides hold.  The sides' runs are interleaved, ``--repeats``
rounds in alternating order.  The table shows each side's medians and its ratios to
``torch``: for time, the median over the rounds of each round's own ratio (a round's runs
are back to back, under about the same load from other processes; the medians of the
times themselves follow that load), and the ratio of the best times; the process's CPU
time (user + system) too, which other load disturbs less.  ``--from-json`` summarizes
earlier results files (merged: one per shape, say) without running anything.  A first
subprocess computes the reference, PyTorch in float64 from the same float32 inputs; each
run then reports its errors against it: the value's relative error and, per gradient,
``max |g - ref| / max |ref|``.

Bars (float32, 2 threads): gradients within 1e-4 (relative, as above) of the float64
reference, extra memory at most 1/8 of PyTorch's, wall time at most 1.1 x PyTorch's.
Prints a rich table and writes the JSON to ``bench/results/<date>-<time>-linear-ce.json``
unless ``--json`` says otherwise; exit status 0 when every bar is met.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHAPES = ("4096x1024x32000", "2048x2048x128000")
SIDES = ("fastloss", "fastloss.torch", "torch")
BARS = {"grad_rel": 1e-4, "memory_ratio": 1 / 8, "time_ratio": 1.1}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _inputs(n, h, v, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((n, h), dtype=np.float32)
    weight = rng.standard_normal((v, h), dtype=np.float32) * np.float32(h ** -0.5)
    target = rng.integers(0, v, n)
    return hidden, weight, target


def worker(side: str, n: int, h: int, v: int, threads: int, ref_dir: str | None) -> dict:
    """One run in this process: time, peak extra memory, errors against the reference."""
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    import torch.nn.functional as F
    if side != "torch":
        import fastloss
        import fastloss.torch as flt
    hidden, weight, target = _inputs(n, h, v)
    dtype = torch.float64 if side == "reference" else torch.float32
    x = torch.from_numpy(hidden).to(dtype).requires_grad_()
    w = torch.from_numpy(weight).to(dtype).requires_grad_()
    y = torch.from_numpy(target)
    base = _rss()
    u0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if side == "fastloss":
        value, (gx, gw) = fastloss.LinearCrossEntropy().value_and_grad(
            hidden, weight, target, n_threads=threads)
    else:
        fn = flt.linear_cross_entropy if side == "fastloss.torch" else (
            lambda a, b, c: F.cross_entropy(F.linear(a, b), c))
        loss = fn(x, w, y)
        loss.backward()
        value, gx, gw = loss.item(), x.grad.numpy(), w.grad.numpy()
    wall = time.perf_counter() - t0
    u1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    extra = peak - base - gx.nbytes - gw.nbytes
    out = {"side": side, "wall_s": wall, "cpu_s": cpu_s, "peak_rss": peak, "base_rss": base,
           "extra_bytes": extra, "value": float(value)}
    if side == "reference":
        np.save(Path(ref_dir) / "gx.npy", gx)
        np.save(Path(ref_dir) / "gw.npy", gw)
    elif ref_dir:
        ref = json.loads((Path(ref_dir) / "value.json").read_text())
        out["value_rel"] = abs(value - ref) / abs(ref)
        for name, g in (("grad_hidden_rel", gx), ("grad_weight_rel", gw)):
            r = np.load(Path(ref_dir) / ("gx.npy" if "hidden" in name else "gw.npy"),
                        mmap_mode="r")
            err = 0.0
            scale = 0.0
            for i in range(0, g.shape[0], 4096):      # in slices: no array of g's size
                d = np.abs(g[i:i + 4096].astype(np.float64) - r[i:i + 4096])
                err = max(err, float(d.max()))
                scale = max(scale, float(np.abs(r[i:i + 4096]).max()))
            out[name] = err / scale
    return out


def _spawn(side, shape, threads, ref_dir) -> dict:
    n, h, v = shape
    cmd = [sys.executable, __file__, "--worker", side, f"{n}x{h}x{v}", "--threads",
           str(threads), "--ref-dir", ref_dir]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} {shape} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES))
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--no-reference", action="store_true",
                        help="time and memory only: no float64 reference, no errors")
    parser.add_argument("--from-json", nargs="+", metavar="PATH",
                        help="summarize earlier results files (merged) instead of running")
    parser.add_argument("--worker", metavar="SIDE", help=argparse.SUPPRESS)
    parser.add_argument("--ref-dir", help=argparse.SUPPRESS)
    parser.add_argument("shape", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        n, h, v = map(int, args.shape.split("x"))
        print(json.dumps(worker(args.worker, n, h, v, args.threads, args.ref_dir)))
        return 0

    from rich.console import Console
    console = Console(width=150)
    results = {"threads": args.threads, "repeats": args.repeats, "bars": BARS,
               "date": time.strftime("%Y-%m-%d %H:%M:%S"), "cases": []}
    if args.from_json:
        results = merge([json.loads(Path(p).read_text()) for p in args.from_json])
    for spec in args.shapes if not args.from_json else ():
        shape = tuple(map(int, spec.split("x")))
        with tempfile.TemporaryDirectory(prefix="fastloss-lce-") as ref_dir:
            ref = {"value": None}
            if not args.no_reference:
                console.print(f"[bold]{spec}[/]: float64 reference ...")
                ref = _spawn("reference", shape, args.threads, ref_dir)
                (Path(ref_dir) / "value.json").write_text(json.dumps(ref["value"]))
            runs = {s: [] for s in ("torch", *[s for s in args.sides if s != "torch"])}
            for r in range(args.repeats):
                order = list(runs) if r % 2 == 0 else list(reversed(runs))
                for side in order:
                    run = _spawn(side, shape, args.threads,
                                 "" if args.no_reference else ref_dir)
                    runs[side].append(run)
                    console.print(f"  round {r + 1} {side:15s} {run['wall_s']:7.2f} s  "
                                  f"(CPU {run['cpu_s']:7.2f} s)  "
                                  f"extra {run['extra_bytes'] / 2**20:8.1f} MiB")
        case = {"shape": list(shape), "reference_value": ref["value"], "sides": {}}
        for side, rs in runs.items():
            case["sides"][side] = {
                "walls_s": [x["wall_s"] for x in rs], "cpus_s": [x["cpu_s"] for x in rs],
                "extras_bytes": [x["extra_bytes"] for x in rs],
                **{k: max(x.get(k, math.nan) for x in rs) for k in
                   ("value_rel", "grad_hidden_rel", "grad_weight_rel")}}
        results["cases"].append(case)
    met = summarize(results)
    show(console, results)
    path = Path(args.json) if args.json else RESULTS / (
        f"{time.strftime('%Y%m%d-%H%M%S')}-linear-ce.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    console.print(f"results written to {path}")
    return 0 if met else 1


def merge(runs: list[dict]) -> dict:
    """Several results files (e.g. one per shape) as one."""
    out = dict(runs[0])
    out["cases"] = [c for r in runs for c in r["cases"]]
    out["repeats"] = sorted({r["repeats"] for r in runs})
    return out


def summarize(results: dict) -> bool:
    """Each side's medians and ratios to torch from its runs (in round order), and the
    bars; True if every bar is met.  Time and CPU ratios are medians of the rounds' own
    ratios (each round's runs ran back to back, under about the same load from other
    processes); the best (smallest) time of each side is compared too."""
    met = True
    for case in results["cases"]:
        torch_row = case["sides"]["torch"]
        for side, row in case["sides"].items():
            walls, cpus, extras = row["walls_s"], row["cpus_s"], row["extras_bytes"]
            row["wall_s"] = statistics.median(walls)
            row["cpu_s"] = statistics.median(cpus)
            row["extra_bytes"] = statistics.median(extras)
            row["time_ratio"] = statistics.median(
                a / b for a, b in zip(walls, torch_row["walls_s"]))
            row["best_time_ratio"] = min(walls) / min(torch_row["walls_s"])
            row["cpu_ratio"] = statistics.median(
                a / b for a, b in zip(cpus, torch_row["cpus_s"]))
            row["memory_ratio"] = row["extra_bytes"] / statistics.median(
                torch_row["extras_bytes"])
            if side != "torch":
                row["bars_met"] = {
                    **({} if math.isnan(row["grad_weight_rel"]) else {
                        "accuracy": row["grad_weight_rel"] <= BARS["grad_rel"]
                        and row["grad_hidden_rel"] <= BARS["grad_rel"]}),
                    "memory": row["memory_ratio"] <= BARS["memory_ratio"],
                    "time": row["time_ratio"] <= BARS["time_ratio"]}
                met &= all(row["bars_met"].values())
    return met


def _repeats(results: dict) -> str:
    r = results["repeats"]
    return " and ".join(map(str, r)) if isinstance(r, list) else str(r)


def show(console, results: dict) -> None:
    from rich.table import Table
    table = Table(title=f"linear + cross-entropy, float32, {results['threads']} threads, "
                        f"forward + backward ({_repeats(results)} interleaved rounds; "
                        f"/ torch: median of the rounds' ratios)")
    for col in ("N x H x V", "side", "wall s", "/ torch", "best / best", "CPU s", "/ torch",
                "extra MiB", "/ torch", "value rel", "grad_hidden", "grad_weight", "bars"):
        table.add_column(col, justify="left" if col in ("N x H x V", "side", "bars")
                         else "right")
    for case in results["cases"]:
        for side, row in case["sides"].items():
            bars = row.get("bars_met")
            table.add_row("x".join(map(str, case["shape"])), side, f"{row['wall_s']:.2f}",
                          f"{row['time_ratio']:.3f}", f"{row['best_time_ratio']:.3f}",
                          f"{row['cpu_s']:.2f}", f"{row['cpu_ratio']:.3f}",
                          f"{row['extra_bytes'] / 2**20:.0f}", f"{row['memory_ratio']:.3f}",
                          f"{row['value_rel']:.1e}", f"{row['grad_hidden_rel']:.1e}",
                          f"{row['grad_weight_rel']:.1e}",
                          "-" if bars is None else
                          ("met" if all(bars.values()) else
                           "NOT MET: " + ", ".join(k for k, ok in bars.items() if not ok)))
    console.print(table)
    console.print(f"bars: gradients within {BARS['grad_rel']:g} of float64 (max |g - ref| / "
                  f"max |ref|), extra memory <= {BARS['memory_ratio']:.3f} x torch's, wall "
                  f"<= {BARS['time_ratio']} x torch's (median of the rounds' ratios)")


if __name__ == "__main__":
    sys.exit(main())
