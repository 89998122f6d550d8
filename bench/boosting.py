#!/usr/bin/env python3
"""Benchmark of fastloss.xgboost and fastloss.lightgbm (issue 13), from a source checkout.

    python bench/boosting.py [--rows 1000000] [--classes 10] [--threads N] [--repeats 7]
                             [--train-rows 100000] [--rounds 100] [--train-repeats 3]
                             [--no-demo] [--skip-train] [--json PATH]

Two measurements, for each library that is installed:

1. **One objective call** on ``rows x classes`` multi-class margins, with sample weights,
   in the layout the library hands over (XGBoost: float32, C order; LightGBM: float64,
   column-ordered), labels and weights read from the DMatrix / Dataset as in training:

   * ``fastloss``: ``fastloss.<library>.objective(CrossEntropy())`` at 1 thread, and
     with the built-in's Hessian convention (``hess_scale=2`` for XGBoost, ``k/(k-1)``
     for LightGBM, as the NumPy baseline computes it) at 1 thread and at ``--threads``;
   * ``numpy``: the vectorised NumPy softmax objective a user would write (max-shifted
     softmax, in-place updates), the honest baseline;
   * ``demo loop`` (XGBoost only): a per-row Python loop in the style of XGBoost's demo
     ``demo/guide-python/custom_softmax.py`` (softmax per row, a loop over the classes),
     timed once.

   ``cpu time`` is the process's CPU time for the call (all threads): on a busy machine
   the one-thread rows' CPU time says what the call costs when it is not waiting.

   For LightGBM, ``+ convert`` adds what LightGBM does with the returned arrays before
   its C call (``ravel(order="F")`` and a float32 cast): nothing for fastloss's
   class-major float32 output, two copies for NumPy's.  The bar: fastloss >= 4x faster
   than NumPy.

2. **Training**: ``--rounds`` rounds of multi-class boosting on ``train-rows x 20``
   features, the built-in objective against the fastloss objective set up as the built-in
   (``hess_scale``, the same intercept: both build the same trees), alternated,
   ``--train-repeats`` times.  ``ratio``: fastloss / built-in, medians of the wall
   times (``min``: of the fastest runs; ``cpu ratio``: of the process CPU times, which a
   shared machine inflates less at one thread); ``in obj.``: the share of the fastloss
   training's wall time spent in the objective, and ``per call`` its mean.  The bar:
   fastloss / built-in <= 1.15.

Every time is a median over repeats (the machine may be shared).  Run it on an idle
machine, with the BLAS pools at one thread (this script sets OPENBLAS_NUM_THREADS=1
before NumPy loads) and without OpenBLAS core-type overrides.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

try:
    import fastloss
except ImportError:         # not installed: the in-place build of this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import fastloss


# ------------------------------------------------------------------ the NumPy baselines ----

def numpy_softmax_objective(hess_factor):
    """The vectorised NumPy objective: gradient (p - onehot) w, Hessian factor p (1 - p) w."""
    def obj(preds, data):
        y = data.get_label().astype(np.intp)
        w = data.get_weight()
        w = None if w is None or w.size == 0 else w[:, None]
        p = np.exp(preds - preds.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        hess = p * (1 - p)
        hess *= hess_factor if w is None else hess_factor * w
        p[np.arange(len(y)), y] -= 1
        if w is not None:
            p *= w
        return p, hess
    return obj


def demo_loop_objective(preds, data):
    """Per row: a softmax of the row (no max shift), then a Python loop over the classes
    (the style of XGBoost's demo custom_softmax.py; its Hessian floor is 1e-6)."""
    labels = data.get_label()
    weights = data.get_weight()
    if weights.size == 0:
        weights = np.ones(preds.shape[0])
    rows, classes = preds.shape
    grad = np.zeros((rows, classes))
    hess = np.zeros((rows, classes))
    for r in range(rows):
        e = np.exp(preds[r, :])
        p = e / np.sum(e)
        target = int(labels[r])
        weight = float(weights[r])
        for c in range(classes):
            pc = float(p[c])
            grad[r, c] = (pc - 1.0 if c == target else pc) * weight
            hess[r, c] = max(2.0 * pc * (1.0 - pc) * weight, 1e-6)
    return grad, hess


def lightgbm_convert(grad, hess):
    """What LightGBM's Booster.__boost does to a multi-class objective's output."""
    out = []
    for a in (grad, hess):
        a = a.ravel(order="F")
        out.append(a if a.dtype == np.float32 else a.astype(np.float32))
    return out


# ------------------------------------------------------------------ timing ----

def median_time(fn, repeats):
    """(median wall seconds, wall samples, median CPU seconds of this process)."""
    fn()                                    # warm-up (allocations, thread pools)
    samples, cpu = [], []
    for _ in range(repeats):
        c = time.process_time()
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(samples), samples, statistics.median(cpu)


def interleaved(cands, repeats):
    """({name: [wall seconds, ...]}, {name: [CPU seconds, ...]}, {name: last result}):
    each repeat runs every candidate once, in rotating order."""
    wall = {name: [] for name in cands}
    cpu = {name: [] for name in cands}
    last = {}
    names = list(cands)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            c, t = time.process_time(), time.perf_counter()
            last[name] = cands[name]()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    return wall, cpu, last


def fmt(s):
    return f"{s * 1e3:9.1f} ms" if s < 10 else f"{s:9.2f} s "


# ------------------------------------------------------------------ 1. objective call ----

def bench_calls(lib, args, rng):
    n, k = args.rows, args.classes
    margins = rng.normal(size=(n, k)) * 2
    labels = rng.integers(0, k, n)
    weights = rng.uniform(0.2, 3.0, n)
    loss = fastloss.CrossEntropy()
    rows = []
    if lib == "xgboost":
        import xgboost as xgb

        import fastloss.xgboost as mod
        preds = np.ascontiguousarray(margins, np.float32)
        data = xgb.DMatrix(np.zeros((n, 1), np.float32), labels, weight=weights,
                           nthread=args.threads)
        factor, convert = 2.0, None
    else:
        import lightgbm as lgb

        import fastloss.lightgbm as mod
        preds = np.asfortranarray(margins)
        data = lgb.Dataset(np.zeros((n, 1)), labels, weight=weights,
                           params={"verbose": -1}).construct()
        factor, convert = k / (k - 1), lightgbm_convert

    def timed(name, fn, repeats):
        med, samples, cpu = median_time(fn, repeats)
        row = {"library": lib, "candidate": name, "median_s": med, "samples_s": samples,
               "cpu_s": cpu}
        if convert is not None:
            g, h = fn()
            row["convert_s"] = median_time(lambda: convert(g, h), repeats)[0]
        rows.append(row)
        return row

    plain = mod.objective(loss, n_threads=1)
    timed("fastloss (1 thread)", lambda: plain(preds, data), args.repeats)
    check = None
    for nt in sorted({1, args.threads}):
        obj = mod.objective(loss, hess_scale=factor, n_threads=nt)
        timed(f"  hess_scale, {nt} thr.", lambda: obj(preds, data), args.repeats)
        check = obj(preds, data)
    base = numpy_softmax_objective(factor)
    timed("numpy (vectorised)", lambda: base(preds, data), max(3, args.repeats // 2))
    ref = base(preds, data)
    err = max(float(np.abs(np.asarray(a, np.float64) - b).max()) for a, b in zip(check, ref))
    assert err < 1e-5, f"fastloss and NumPy disagree by {err}"
    if lib == "xgboost" and not args.no_demo:
        c, t = time.process_time(), time.perf_counter()
        demo_loop_objective(preds, data)
        rows.append({"library": lib, "candidate": "demo loop (1 run)",
                     "median_s": time.perf_counter() - t, "samples_s": [],
                     "cpu_s": time.process_time() - c})
    return rows


# ------------------------------------------------------------------ 2. training ----

class Timed:
    """The objective, adding up the wall time spent in its calls."""

    def __init__(self, obj):
        self.obj, self.seconds, self.calls = obj, 0.0, 0

    def __deepcopy__(self, memo):       # lightgbm.train deep-copies its parameters
        return self

    def __call__(self, preds, data):
        t = time.perf_counter()
        try:
            return self.obj(preds, data)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1


def bench_training(lib, args, rng):
    n, k, d = args.train_rows, args.classes, 20
    X = rng.normal(size=(n, d))
    logits = X[:, :k] if d >= k else X @ rng.normal(size=(d, k))
    y = (logits + rng.gumbel(size=(n, k))).argmax(1).astype(np.float64)
    loss = fastloss.CrossEntropy()
    if lib == "xgboost":
        import xgboost as xgb

        import fastloss.xgboost as mod
        dtrain = xgb.DMatrix(X, y, nthread=args.threads)
        common = {"tree_method": "hist", "nthread": args.threads, "seed": 0,
                  "max_bin": 256, "num_class": k}
        b = mod.init_score(loss, y)
        obj = Timed(mod.objective(loss, hess_scale=2.0, n_threads=args.threads))

        def builtin(rounds=args.rounds):
            return xgb.train({**common, "objective": "multi:softprob"}, dtrain, rounds)

        def custom(rounds=args.rounds):
            return xgb.train({**common, "base_score": b.tolist(),
                              "disable_default_eval_metric": True}, dtrain, rounds, obj=obj)

        def margins(model):
            return model.predict(xgb.DMatrix(X[:2000]), output_margin=True)
    else:
        import lightgbm as lgb

        import fastloss.lightgbm as mod
        common = {"verbose": -1, "num_threads": args.threads, "deterministic": True,
                  "force_row_wise": True, "seed": 0, "num_class": k}
        b = mod.init_score(loss, y)
        obj = Timed(mod.objective(loss, hess_scale=k / (k - 1), n_threads=args.threads))
        d_builtin = lgb.Dataset(X, y, params={"verbose": -1}).construct()
        d_custom = lgb.Dataset(X, y, init_score=np.tile(b, (n, 1)),
                               params={"verbose": -1}).construct()

        def builtin(rounds=args.rounds):
            return lgb.train({**common, "objective": "multiclass"}, d_builtin, rounds)

        def custom(rounds=args.rounds):
            return lgb.train({**common, "objective": obj}, d_custom, rounds)

        def margins(model):
            return model.predict(X[:2000], raw_score=True)

    builtin(2), custom(2)                                             # warm-up
    obj.seconds, obj.calls = 0.0, 0
    times, cpu, last = interleaved({"builtin": builtin, "fastloss": custom},
                                   args.train_repeats)
    in_objective = obj.seconds / sum(times["fastloss"])
    mb, mc = last["builtin"], last["fastloss"]
    if lib == "xgboost":
        diff = float(np.abs(margins(mb) - margins(mc)).max())
    else:
        diff = float(np.abs(margins(mb) - (margins(mc) + b)).max())
    tb, tf = statistics.median(times["builtin"]), statistics.median(times["fastloss"])
    cb, cf = statistics.median(cpu["builtin"]), statistics.median(cpu["fastloss"])
    return {"library": lib, "rows": n, "features": d, "classes": k, "rounds": args.rounds,
            "threads": args.threads, "builtin_s": tb, "fastloss_s": tf, "ratio": tf / tb,
            "builtin_cpu_s": cb, "fastloss_cpu_s": cf, "cpu_ratio": cf / cb,
            "min_ratio": min(times["fastloss"]) / min(times["builtin"]),
            "objective_share": in_objective,
            "objective_call_s": obj.seconds / max(1, obj.calls),
            "samples_s": times, "cpu_samples_s": cpu, "max_margin_diff": diff}


# ------------------------------------------------------------------ main ----

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--train-rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--train-repeats", type=int, default=3)
    ap.add_argument("--libraries", default="xgboost,lightgbm")
    ap.add_argument("--no-demo", action="store_true", help="skip the per-row demo loop")
    ap.add_argument("--skip-calls", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    libs = []
    for lib in args.libraries.split(","):
        try:
            __import__(lib)
            libs.append(lib)
        except ImportError:
            print(f"({lib} is not installed: skipped)")
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "fastloss": fastloss.__version__}
    for lib in libs:
        versions[lib] = sys.modules[lib].__version__
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"fastloss boosting benchmark: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load average {load}, threads {args.threads}")
    print("  " + ", ".join(f"{k} {v}" for k, v in versions.items()))

    rng = np.random.default_rng(0)
    calls, trainings = [], []
    if not args.skip_calls:
        print(f"\n1. One objective call: {args.rows} rows x {args.classes} classes, "
              f"weighted (median of {args.repeats})")
        print(f"{'library':10} {'candidate':22} {'time':>12} {'+ convert':>12} "
              f"{'vs numpy':>9} {'cpu time':>12}")
    for lib in ([] if args.skip_calls else libs):
        rows = bench_calls(lib, args, rng)
        base = next(r for r in rows if r["candidate"].startswith("numpy"))
        for r in rows:
            total = r["median_s"] + r.get("convert_s", 0.0)
            base_total = base["median_s"] + base.get("convert_s", 0.0)
            r["speedup_vs_numpy"] = base_total / total
            conv = fmt(total) if "convert_s" in r else " " * 12
            print(f"{lib:10} {r['candidate']:22} {fmt(r['median_s'])} {conv} "
                  f"{r['speedup_vs_numpy']:8.2f}x {fmt(r['cpu_s'])}")
        calls += rows

    if not args.skip_train:
        print(f"\n2. Training: {args.train_rows} rows x 20 features, {args.classes} classes, "
              f"{args.rounds} rounds, {args.threads} threads (median of "
              f"{args.train_repeats}, alternated)")
        print(f"{'library':10} {'built-in':>12} {'fastloss':>12} {'ratio':>7} {'min':>6} "
              f"{'cpu ratio':>9} {'in obj.':>8} {'per call':>12} {'max |margin diff|':>18}")
        for lib in libs:
            r = bench_training(lib, args, rng)
            trainings.append(r)
            print(f"{lib:10} {fmt(r['builtin_s'])} {fmt(r['fastloss_s'])} {r['ratio']:7.3f} "
                  f"{r['min_ratio']:6.3f} {r['cpu_ratio']:9.3f} "
                  f"{100 * r['objective_share']:7.1f}% {fmt(r['objective_call_s'])} "
                  f"{r['max_margin_diff']:18.2e}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"versions": versions, "load_average": load,
                                         "args": {k: (str(v) if isinstance(v, Path) else v)
                                                  for k, v in vars(args).items()},
                                         "calls": calls, "training": trainings}, indent=1))
        print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
