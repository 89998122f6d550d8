"""Benchmark suite: fastloss against PyTorch, scikit-learn, NumPy and memory-bandwidth floors.

Run it with ``python -m fastloss bench`` (``--quick`` for a one-minute run), or with
``python bench/run.py`` in a source checkout.  From Python::

    from fastloss import benchmarks
    results = benchmarks.run(benchmarks.BenchConfig(preset="quick"))

What is measured
----------------
A *case* is one loss, one dtype and one input shape.  For every case the candidates below
run interleaved -- each repeat calls every candidate once, in a freshly shuffled order -- on
the same arrays and with the same thread count ``N``; the suite reports the median of the
repeats, after a warm-up call and a calibration that batches very short calls.

==================  =====================================================================
fastloss.value      ``loss(x, t, n_threads=N)``: value only
fastloss.vg_out     ``loss.value_and_grad(x, t, n_threads=N, out=g)``: preallocated gradient
fastloss.vg         ``loss.value_and_grad(x, t, n_threads=N)``: allocates the gradient
torch.value         the PyTorch loss under ``torch.no_grad()`` (``torch.set_num_threads(N)``)
torch.vg            autograd forward + backward on a leaf tensor (``.grad = None`` first)
sklearn.value       ``sklearn._loss`` ``loss(y_true, raw_prediction, n_threads=N)``
sklearn.vg          ``loss_gradient(y_true, raw_prediction, n_threads=N)``
numpy.value / .vg   plain vectorised NumPy (value, and value + gradient)
floor.numpy         the same bytes through ``np.add(x, t, out=g)`` (two reads, one write) or
                    ``np.multiply(x, 1, out=g)`` (one read, one write): single-threaded
floor.parallel      the same bytes through fastloss's own trivial parallel kernel,
                    ``bandwidth_floor(x, t or None, g, N)``, with the losses' blocking
==================  =====================================================================

PyTorch, scikit-learn and threadpoolctl are optional: they are imported when the suite runs
and their columns are left empty when they are missing.  While measuring, the BLAS thread
pools (OpenBLAS under NumPy/SciPy) are limited to one thread with threadpoolctl, so idle BLAS
threads do not compete with the kernels.

The suite also measures thread scaling (fastloss and the parallel floor at 1 .. all cores)
for a few key cases, and returns everything -- every sample, machine and version info -- as
one JSON-serialisable dict (see :func:`run`).
"""
from __future__ import annotations

import contextlib
import datetime
import gc
import importlib
import io
import json
import math
import os
import platform
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import fastloss
from fastloss import _dispatch

__all__ = ["LOSSES", "PRESETS", "BenchConfig", "Preset", "Sizes", "Timing", "format_report",
           "machine_info", "run", "write_json"]

Shape = tuple[int, ...]
Thunk = Callable[[], object]

#: JSON layout version; bump it when keys change meaning.
SCHEMA = 1


# ----------------------------------------------------------------- NumPy references ----
# Plain vectorised NumPy, written as a NumPy user would: the "numpy" peer of every loss.
# Each returns the mean loss, or (mean loss, gradient of the mean) when grad is true.

PSEUDO_HUBER_DELTA = 1.0


def _np_mse(x: np.ndarray, t: np.ndarray, grad: bool):
    r = x - t
    value = float(np.mean(r * r))
    if not grad:
        return value
    r *= 2.0 / r.size
    return value, r


def _np_mae(x: np.ndarray, t: np.ndarray, grad: bool):
    r = x - t
    value = float(np.mean(np.abs(r)))
    if not grad:
        return value
    g = np.sign(r)
    g *= 1.0 / r.size
    return value, g


def _np_pseudo_huber(x: np.ndarray, t: np.ndarray, grad: bool):
    d = PSEUDO_HUBER_DELTA
    r = x - t
    s = np.sqrt(1.0 + (r / d) ** 2)
    value = float(d * d * np.mean(s - 1.0))
    if not grad:
        return value
    r /= s
    r *= 1.0 / r.size
    return value, r


def _np_bce(x: np.ndarray, t: np.ndarray, grad: bool):
    value = float(np.mean(np.logaddexp(0, x) - t * x))
    if not grad:
        return value
    g = 0.5 * (1.0 + np.tanh(0.5 * x)) - t          # sigmoid(x) - t, without overflow
    g *= 1.0 / x.size
    return value, g


def _np_log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z


def _np_ce(x: np.ndarray, y: np.ndarray, grad: bool):
    n = x.shape[0]
    rows = np.arange(n)
    logp = _np_log_softmax(x)
    value = float(-np.mean(logp[rows, y]))
    if not grad:
        return value
    g = np.exp(logp, out=logp)
    g[rows, y] -= 1.0
    g *= 1.0 / n
    return value, g


def _np_kl(x: np.ndarray, t: np.ndarray, grad: bool):
    # The benchmark's targets are strictly positive, so t log t needs no 0 log 0 guard.
    n = x.shape[0]
    logq = _np_log_softmax(x)
    value = float(np.sum(t * (np.log(t) - logq)) / n)
    if not grad:
        return value
    g = np.exp(logq, out=logq)
    g *= t.sum(axis=-1, keepdims=True)
    g -= t
    g *= 1.0 / n
    return value, g


# ------------------------------------------------------------------------ test data ----

def _regression_data(rng: np.random.Generator, shape: Shape, dtype: np.dtype):
    return rng.standard_normal(shape, dtype=dtype), rng.standard_normal(shape, dtype=dtype)


def _binary_data(rng: np.random.Generator, shape: Shape, dtype: np.dtype):
    x = rng.standard_normal(shape, dtype=dtype)
    x *= 2
    return x, (rng.random(shape, dtype=dtype) < 0.5).astype(dtype)


def _label_data(rng: np.random.Generator, shape: Shape, dtype: np.dtype):
    x = rng.standard_normal(shape, dtype=dtype)
    x *= 2
    return x, rng.integers(0, shape[-1], shape[:-1], dtype=np.int64)


def _distribution_data(rng: np.random.Generator, shape: Shape, dtype: np.dtype):
    x = rng.standard_normal(shape, dtype=dtype)
    x *= 2
    t = rng.standard_normal(shape, dtype=dtype)     # target: softmax of random logits
    t -= t.max(axis=-1, keepdims=True)
    np.exp(t, out=t)
    t /= t.sum(axis=-1, keepdims=True)
    return x, t


# ------------------------------------------------------------------------ the losses ----

@dataclass(frozen=True)
class LossSpec:
    """How to benchmark one loss: its fastloss object, data and every peer's version."""

    key: str                        #: name on the command line
    label: str                      #: name in the table
    family: str                     #: "pointwise", "ce" or "kl": which sizes apply
    make: Callable[[], fastloss.Loss]
    data: Callable[[np.random.Generator, Shape, np.dtype], tuple[np.ndarray, np.ndarray]]
    numpy: Callable[[np.ndarray, np.ndarray, bool], object]
    torch: Callable[[Any, Any, Any], Any]       #: (torch.nn.functional, x, t) -> 0-d tensor
    sklearn: str | None = None      #: class name in sklearn._loss.loss, if it has the loss
    torch_note: str = ""            #: set when PyTorch computes a different (similar) loss

    @property
    def one_read(self) -> bool:
        """True when the floor reads only x: the target is integer labels (N values, not N*C)."""
        return self.family == "ce"


LOSSES: tuple[LossSpec, ...] = (
    LossSpec("mse", "MSE", "pointwise", fastloss.MSE, _regression_data, _np_mse,
             lambda F, x, t: F.mse_loss(x, t), sklearn="HalfSquaredError"),
    LossSpec("mae", "MAE", "pointwise", fastloss.MAE, _regression_data, _np_mae,
             lambda F, x, t: F.l1_loss(x, t), sklearn="AbsoluteError"),
    LossSpec("pseudo_huber", "PseudoHuber", "pointwise",
             lambda: fastloss.PseudoHuber(delta=PSEUDO_HUBER_DELTA), _regression_data,
             _np_pseudo_huber,
             lambda F, x, t: ((x - t).div(PSEUDO_HUBER_DELTA).square().add(1).sqrt().sub(1)
                              .mul(PSEUDO_HUBER_DELTA**2).mean()),
             torch_note="PseudoHuber: PyTorch has no Pseudo-Huber op; the torch column "
                        "times its formula written with tensor operations, as a PyTorch "
                        "user would (autograd differentiates it)"),
    LossSpec("bce", "BCE(logits)", "pointwise", fastloss.BinaryCrossEntropy, _binary_data,
             _np_bce, lambda F, x, t: F.binary_cross_entropy_with_logits(x, t),
             sklearn="HalfBinomialLoss"),
    LossSpec("ce", "CE(labels)", "ce", fastloss.CrossEntropy, _label_data, _np_ce,
             lambda F, x, t: F.cross_entropy(x, t), sklearn="HalfMultinomialLoss"),
    LossSpec("kl", "KL(logits)", "kl", fastloss.KLDivergence, _distribution_data, _np_kl,
             lambda F, x, t: F.kl_div(F.log_softmax(x, dim=-1), t, reduction="batchmean")),
)
LOSS_KEYS: tuple[str, ...] = tuple(spec.key for spec in LOSSES)
_SPECS: dict[str, LossSpec] = {spec.key: spec for spec in LOSSES}
DTYPES: tuple[str, ...] = ("float32", "float64")
PEERS: tuple[str, ...] = ("torch", "sklearn", "numpy")


# ---------------------------------------------------------------- sizes and presets ----

@dataclass(frozen=True)
class Sizes:
    """Input shapes per loss family, and the element count of the small-call cases."""

    pointwise: tuple[int, ...]
    ce: tuple[Shape, ...]
    kl: tuple[Shape, ...]
    small: int = 1000       #: small calls: (small,) pointwise, (small // 10, 10) CE and KL

    def shapes(self, spec: LossSpec) -> list[tuple[Shape, bool]]:
        """(shape, is_small_call) for every case of ``spec``, smallest first."""
        small = (self.small,) if spec.family == "pointwise" else (self.small // 10, 10)
        large = {"pointwise": [(n,) for n in self.pointwise],
                 "ce": list(self.ce), "kl": list(self.kl)}[spec.family]
        return [(small, True)] + [(tuple(s), False) for s in large]


@dataclass(frozen=True)
class Timing:
    """How long to measure: repeats are sized to ``case_budget_s`` within the bounds."""

    min_repeats: int
    max_repeats: int
    case_budget_s: float    #: target time of all timed repeats of one case
    min_sample_s: float     #: short calls are batched so that one sample takes this long
    warmup: int = 1         #: untimed calls per candidate before calibration
    max_number: int = 100_000
    lead_in_below_s: float = 0.05   #: calls shorter than this get an untimed call per sample


@dataclass(frozen=True)
class Preset:
    sizes: Sizes
    timing: Timing
    scaling: tuple[tuple[str, Shape], ...]      #: (loss key, shape) of the scaling cases


PRESETS: dict[str, Preset] = {
    "full": Preset(
        Sizes(pointwise=(10**5, 10**6, 10**7),
              ce=((20_000, 1_000), (2_000, 32_000), (1_000_000, 10), (100_000, 100)),
              kl=((20_000, 1_000),)),
        Timing(min_repeats=7, max_repeats=60, case_budget_s=6.0, min_sample_s=5e-3),
        scaling=(("mse", (10**7,)), ("bce", (10**7,)), ("ce", (20_000, 1_000)),
                 ("kl", (20_000, 1_000)))),
    "quick": Preset(
        Sizes(pointwise=(10**6,), ce=((2_000, 1_000), (100_000, 10)), kl=((2_000, 1_000),)),
        Timing(min_repeats=7, max_repeats=30, case_budget_s=1.5, min_sample_s=2e-3),
        scaling=(("mse", (10**6,)), ("ce", (2_000, 1_000)))),
    # Seconds, not minutes: checks that the suite runs (tests, CI); the numbers mean little.
    "smoke": Preset(
        Sizes(pointwise=(10**4,), ce=((100, 100),), kl=((100, 100),)),
        Timing(min_repeats=3, max_repeats=3, case_budget_s=0.0, min_sample_s=2e-4),
        scaling=(("mse", (10**4,)),)),
}


@dataclass
class BenchConfig:
    """What to run.  The defaults run the full suite on every core."""

    preset: str = "full"                                #: a key of :data:`PRESETS`
    threads: int | None = None                          #: None: every usable core
    dtypes: Sequence[str] = DTYPES
    losses: Sequence[str] = LOSS_KEYS
    peers: Sequence[str] = PEERS
    scaling: bool = True                                #: include the thread-scaling section
    scaling_threads: Sequence[int] | None = None        #: None: 1, 2, ... every usable core
    cases: bool = True                                  #: False: the thread-scaling section only
    seed: int = 0

    def validate(self) -> None:
        """Raise ValueError for unknown names or a thread count below 1."""
        for kind, given, known in (("preset", [self.preset], tuple(PRESETS)),
                                   ("dtype", self.dtypes, DTYPES), ("loss", self.losses, LOSS_KEYS),
                                   ("peer", self.peers, PEERS)):
            bad = [g for g in given if g not in known]
            if bad:
                raise ValueError(f"unknown {kind} {', '.join(map(repr, bad))}; "
                                 f"choose from {', '.join(known)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1; got {self.threads}")
        if self.scaling_threads is not None and (not self.scaling_threads
                                                 or min(self.scaling_threads) < 1):
            raise ValueError("scaling_threads must be thread counts >= 1; "
                             f"got {list(self.scaling_threads)}")


# ------------------------------------------------------------------ optional peers ----

def _optional(name: str):
    """Import an optional dependency, or return None when it is missing or broken."""
    try:
        return importlib.import_module(name)
    except Exception:           # ImportError, or a broken install failing in its own way
        return None


@dataclass
class Peers:
    """The optional libraries found at run time (None: absent or not requested)."""

    torch: Any = None
    sklearn_loss: Any = None        #: the module sklearn._loss.loss
    threadpoolctl: Any = None
    use_numpy: bool = True

    @classmethod
    def load(cls, wanted: Sequence[str]) -> Peers:
        return cls(torch=_optional("torch") if "torch" in wanted else None,
                   sklearn_loss=_optional("sklearn._loss.loss") if "sklearn" in wanted else None,
                   threadpoolctl=_optional("threadpoolctl"),
                   use_numpy="numpy" in wanted)


@contextlib.contextmanager
def _single_threaded_blas(threadpoolctl) -> Iterator[str]:
    """Limit the BLAS pools to one thread while measuring; yields what was done."""
    if threadpoolctl is None:
        env = os.environ.get("OPENBLAS_NUM_THREADS")
        yield (f"OPENBLAS_NUM_THREADS={env}" if env else
               "not limited (install threadpoolctl, or set OPENBLAS_NUM_THREADS=1)")
        return
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield "limited to 1 thread (threadpoolctl)"


@contextlib.contextmanager
def _torch_threads(torch, n: int) -> Iterator[None]:
    if torch is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


# --------------------------------------------------------------------- candidates ----

@dataclass
class CaseData:
    """The arrays of one case, made once and shared by every candidate."""

    x: np.ndarray                   #: input (predictions or logits)
    target: np.ndarray              #: target as fastloss and PyTorch take it
    floor_b: np.ndarray | None      #: the second array the floors read (None: one read)
    out: np.ndarray                 #: preallocated gradient, also the floors' output

    @property
    def floor_bytes(self) -> int:
        """Bytes the floors move: x and floor_b read, out written."""
        b = 0 if self.floor_b is None else self.floor_b.nbytes
        return self.x.nbytes + b + self.out.nbytes


def _make_data(spec: LossSpec, shape: Shape, dtype: np.dtype, seed: int) -> CaseData:
    x, target = spec.data(np.random.default_rng(seed), shape, dtype)
    return CaseData(x, target, None if spec.one_read else target, np.empty_like(x))


def _fastloss_candidates(spec: LossSpec, d: CaseData, threads: int) -> dict[str, Thunk]:
    loss, x, t, out = spec.make(), d.x, d.target, d.out
    return {
        "fastloss.value": lambda: loss(x, t, n_threads=threads),
        "fastloss.vg_out": lambda: loss.value_and_grad(x, t, n_threads=threads, out=out),
        "fastloss.vg": lambda: loss.value_and_grad(x, t, n_threads=threads),
    }


def _floor_candidates(d: CaseData, threads: int) -> dict[str, Thunk]:
    """np.add / np.multiply(out=) single-threaded, and the parallel kernel at `threads`."""
    bandwidth_floor = _dispatch.probes().bandwidth_floor
    x, b, out = d.x, d.floor_b, d.out
    numpy_floor = (partial(np.multiply, x, 1, out=out) if b is None else
                   partial(np.add, x, b, out=out))
    return {"floor.numpy": numpy_floor,
            "floor.parallel": partial(bandwidth_floor, x, b, out, threads)}


def _torch_candidates(torch, spec: LossSpec, d: CaseData) -> dict[str, Thunk]:
    F = torch.nn.functional
    x, t = torch.from_numpy(d.x), torch.from_numpy(d.target)       # zero-copy views
    leaf = torch.from_numpy(d.x).requires_grad_()
    fn = spec.torch

    def value():
        with torch.no_grad():
            return fn(F, x, t).item()

    def value_and_grad():
        leaf.grad = None
        loss = fn(F, leaf, t)
        loss.backward()
        return loss.item(), leaf.grad

    return {"torch.value": value, "torch.vg": value_and_grad}


def _sklearn_candidates(sk_loss, spec: LossSpec, d: CaseData, threads: int) -> dict[str, Thunk]:
    if spec.sklearn is None:
        return {}
    cls = getattr(sk_loss, spec.sklearn)
    if spec.family == "ce":     # raw_prediction (n, C); y_true: class indices as floats
        loss, y = cls(n_classes=d.x.shape[-1]), d.target.astype(d.x.dtype)
    else:
        loss, y = cls(), d.target
    raw = d.x
    return {"sklearn.value": lambda: loss.loss(y, raw, n_threads=threads),
            "sklearn.vg": lambda: loss.loss_gradient(y, raw, n_threads=threads)}


def _numpy_candidates(spec: LossSpec, d: CaseData) -> dict[str, Thunk]:
    fn, x, t = spec.numpy, d.x, d.target
    return {"numpy.value": lambda: fn(x, t, False), "numpy.vg": lambda: fn(x, t, True)}


def _candidates(spec: LossSpec, d: CaseData, threads: int, peers: Peers) -> dict[str, Thunk]:
    cands = {**_fastloss_candidates(spec, d, threads), **_floor_candidates(d, threads)}
    if peers.torch is not None:
        cands.update(_torch_candidates(peers.torch, spec, d))
    if peers.sklearn_loss is not None:
        cands.update(_sklearn_candidates(peers.sklearn_loss, spec, d, threads))
    if peers.use_numpy:
        cands.update(_numpy_candidates(spec, d))
    return cands


# -------------------------------------------------------------------- measurement ----

def _clock(fn: Thunk, number: int) -> float:
    """Seconds for `number` consecutive calls of fn (results are dropped at once)."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - start


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _scalar(result: object) -> float | None:
    """The loss value in a candidate's result (a float, or the first item of a tuple)."""
    if isinstance(result, tuple) and result:
        result = result[0]
    if isinstance(result, (float, np.floating)):
        return float(result)
    return None


def _cpu_snapshot() -> tuple[float, float, float] | None:
    """(wall clock, CPU seconds busy on the whole machine, CPU seconds of this process).

    From /proc/stat, so Linux only (None elsewhere); "busy" includes time stolen by the
    hypervisor.
    """
    try:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    own = os.times()
    idle = ticks[3] + ticks[4]                      # idle + iowait
    return time.perf_counter(), (sum(ticks) - idle) / hz, own.user + own.system


def _others_cores(start: tuple | None, end: tuple | None) -> float | None:
    """Average number of cores that *other* processes kept busy between two snapshots."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    other = (end[1] - start[1]) - (end[2] - start[2])
    cores = max(other, 0.0) / (end[0] - start[0])
    return min(cores, float(os.cpu_count() or 1))      # jiffies are coarse on short spans


@dataclass
class Measured:
    """Medians (seconds per call), raw samples and the loss value seen at warm-up."""

    stats: dict[str, dict[str, Any]]
    values: dict[str, float]
    errors: dict[str, str]
    repeats: int
    others_cores: float | None      #: CPU use of other processes meanwhile, in cores


def measure(cands: Mapping[str, Thunk], timing: Timing, rng: np.random.Generator) -> Measured:
    """Time every candidate: warm-up, calibration, then interleaved repeats.

    Each repeat times every candidate once (``number`` calls in a row for calls shorter than
    ``timing.min_sample_s``) in a new random order, so slow drifts of a shared machine
    spread over all candidates instead of biasing one.  A sample of a call shorter than
    ``timing.lead_in_below_s`` follows one untimed call of the same candidate: the sample
    then sees the candidate's steady state (its own thread pool awake, the thread pools of
    the library timed before it idle again, the CPU out of its idle state), as a loop of
    calls would, rather than the switch from another library.  A candidate that raises is
    dropped and its error reported.
    """
    cpu_start = _cpu_snapshot()
    live: dict[str, Thunk] = {}
    values: dict[str, float] = {}
    errors: dict[str, str] = {}
    number: dict[str, int] = {}
    lead_in: dict[str, bool] = {}
    round_s = 0.0                                   # estimated time of one repeat
    for name, fn in cands.items():
        try:
            for _ in range(max(timing.warmup, 1)):
                result = fn()
            value = _scalar(result)
            del result
            per_call = max(_clock(fn, 1), 1e-9)
            if per_call < timing.min_sample_s:      # refine on a batch before sizing it
                batch = min(timing.max_number, math.ceil(timing.min_sample_s / per_call))
                per_call = max(_clock(fn, batch) / batch, 1e-9)
        except Exception as exc:                    # a peer that cannot run this case
            errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        live[name] = fn
        if value is not None:
            values[name] = value
        number[name] = max(1, min(timing.max_number, math.ceil(timing.min_sample_s / per_call)))
        lead_in[name] = per_call < timing.lead_in_below_s
        round_s += (number[name] + lead_in[name]) * per_call
    repeats = timing.min_repeats
    if round_s > 0:
        repeats = min(timing.max_repeats,
                      max(timing.min_repeats, math.ceil(timing.case_budget_s / round_s)))
    names = list(live)
    samples: dict[str, list[float]] = {n: [] for n in names}
    with _gc_paused():
        for _ in range(repeats):
            for i in rng.permutation(len(names)):
                name, fn = names[i], live[names[i]]
                if lead_in[name]:
                    fn()
                samples[name].append(_clock(fn, number[name]) / number[name])
    stats = {}
    for name, s in samples.items():
        q1, median, q3 = (float(q) for q in np.percentile(s, [25, 50, 75]))
        stats[name] = {"median_s": median, "q1_s": q1, "q3_s": q3, "min_s": min(s),
                       "max_s": max(s), "number": number[name], "lead_in": lead_in[name],
                       "samples_s": s}
    return Measured(stats, values, errors, repeats, _others_cores(cpu_start, _cpu_snapshot()))


# ------------------------------------------------------------------ cases and rows ----

#: Table rows of a case: (mode, fastloss candidate, the peers' candidate suffix).
MODES: tuple[tuple[str, str, str], ...] = (
    ("value", "fastloss.value", "value"),
    ("vg out=", "fastloss.vg_out", "vg"),
    ("vg", "fastloss.vg", "vg"),
)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def _rows(stats: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per mode: fastloss's median, its ratio to each floor, each peer's speed-up."""
    med = {name: s["median_s"] for name, s in stats.items()}
    rows = []
    for mode, fl_name, peer_mode in MODES:
        t = med.get(fl_name)
        spread = None
        if fl_name in stats:
            spread = _ratio(stats[fl_name]["q3_s"] - stats[fl_name]["q1_s"], t)
        row: dict[str, Any] = {"mode": mode, "fastloss_s": t, "spread": spread,
                               "np_floor_ratio": _ratio(t, med.get("floor.numpy")),
                               "par_floor_ratio": _ratio(t, med.get("floor.parallel"))}
        for peer in PEERS:
            row[f"{peer}_speedup"] = _ratio(med.get(f"{peer}.{peer_mode}"), t)
        rows.append(row)
    return rows


def _value_notes(spec: LossSpec, dtype: str, values: Mapping[str, float]) -> list[str]:
    """Check that the candidates computed the same loss (catches benchmarking the wrong
    thing).  sklearn's half losses return per-sample arrays and are not compared."""
    ref = values.get("fastloss.value")
    if ref is None:
        return []
    tol = 1e-3 if dtype == "float32" else 1e-7
    notes = []
    for name, v in values.items():
        if name.startswith("torch.") and spec.torch_note:
            continue
        if not abs(v - ref) <= tol * max(abs(ref), 1e-300):
            notes.append(f"{name} gave {v:.9g}, fastloss.value {ref:.9g}")
    return notes


def _case_id(label: str, dtype: str, shape: Shape) -> str:
    return f"{label} {dtype} {_fmt_shape(shape)}"


def _run_case(spec: LossSpec, dtype: str, shape: Shape, small: bool, threads: int,
              peers: Peers, timing: Timing, rng: np.random.Generator, seed: int) -> dict:
    data = _make_data(spec, shape, np.dtype(dtype), seed)
    m = measure(_candidates(spec, data, threads, peers), timing, rng)
    notes = [f"{name} failed: {err}" for name, err in m.errors.items()]
    notes += _value_notes(spec, dtype, m.values)
    return {"loss": spec.key, "label": spec.label, "dtype": dtype, "shape": list(shape),
            "elements": int(data.x.size), "small_call": small, "threads": threads,
            "repeats": m.repeats, "floor_bytes": data.floor_bytes,
            "floor_reads": 1 if data.floor_b is None else 2,
            "others_cores": m.others_cores, "candidates": m.stats, "values": m.values,
            "rows": _rows(m.stats), "notes": notes}


def _run_scaling(spec: LossSpec, dtype: str, shape: Shape, counts: Sequence[int],
                 timing: Timing, rng: np.random.Generator, seed: int) -> dict:
    """fastloss value_and_grad(out=) and the parallel floor at each thread count."""
    data = _make_data(spec, shape, np.dtype(dtype), seed)
    cands: dict[str, Thunk] = {}
    for k in counts:
        cands[f"fastloss.vg_out@{k}"] = _fastloss_candidates(spec, data, k)["fastloss.vg_out"]
        cands[f"floor.parallel@{k}"] = _floor_candidates(data, k)["floor.parallel"]
    m = measure(cands, timing, rng)
    med = {name: s["median_s"] for name, s in m.stats.items()}
    one, one_floor = (med.get(f"fastloss.vg_out@{counts[0]}"),
                      med.get(f"floor.parallel@{counts[0]}"))
    rows = []
    for k in counts:
        t, f = med.get(f"fastloss.vg_out@{k}"), med.get(f"floor.parallel@{k}")
        rows.append({"threads": k, "fastloss_s": t, "floor_s": f, "floor_ratio": _ratio(t, f),
                     "speedup": _ratio(one, t), "floor_speedup": _ratio(one_floor, f)})
    return {"loss": spec.key, "label": spec.label, "dtype": dtype, "shape": list(shape),
            "repeats": m.repeats, "others_cores": m.others_cores, "candidates": m.stats,
            "rows": rows,
            "notes": [f"{name} failed: {err}" for name, err in m.errors.items()]}


# ------------------------------------------------------------------- progress bar ----

class Progress:
    """A one-line text progress bar (plain lines when the stream is not a terminal).

    Items are weighted (by their size) so that the bar and the time-left estimate move
    roughly with the work done.
    """

    def __init__(self, weights: Sequence[float], stream: TextIO | None, width: int = 24):
        self.weights, self.stream, self.width = list(weights), stream, width
        self.index, self.done = -1, 0.0
        self.total = sum(self.weights) or 1.0
        self.start = time.perf_counter()
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self._last = 0

    def step(self, label: str) -> None:
        """Mark the previous item done and show ``label`` as the one running."""
        if self.index >= 0:
            self.done += self.weights[self.index]
        self.index += 1
        self._show(label)

    def close(self) -> None:
        self.done, self.index = self.total, len(self.weights)
        self._show("done")
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _show(self, label: str) -> None:
        if self.stream is None:
            return
        frac = min(self.done / self.total, 1.0)
        elapsed = time.perf_counter() - self.start
        left = f", ~{_fmt_clock(elapsed * (1 - frac) / frac)} left" if 0 < frac < 1 else ""
        filled = round(frac * self.width)
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {frac:4.0%} "
                f"{min(self.index + 1, len(self.weights))}/{len(self.weights)} {label} "
                f"({_fmt_clock(elapsed)}{left})")
        if self.tty:
            self.stream.write("\r" + line.ljust(self._last))
            self._last = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


# ------------------------------------------------------------- machine and versions ----

def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        import subprocess
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                  capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, OS and fastloss's build configuration (show_config's dict)."""
    return {"cores": os.cpu_count(), "usable_cores": usable_cores(), "cpu_model": _cpu_model(),
            "platform": platform.platform(), "machine": platform.machine(),
            "fastloss_config": fastloss.show_config(file=io.StringIO())}


def _versions(peers: Peers) -> dict[str, str | None]:
    sklearn = sys.modules.get("sklearn") if peers.sklearn_loss is not None else None
    return {"python": platform.python_version(), "numpy": np.__version__,
            "fastloss": fastloss.__version__,
            "torch": getattr(peers.torch, "__version__", None),
            "sklearn": getattr(sklearn, "__version__", None),
            "threadpoolctl": getattr(peers.threadpoolctl, "__version__", None)}


# ---------------------------------------------------------------------------- run ----

def run(config: BenchConfig | None = None, *, out: TextIO | None = sys.stdout,
        progress: TextIO | None = sys.stderr) -> dict[str, Any]:
    """Run the suite, print its report to ``out`` and return the results as a dict.

    The dict is JSON-serialisable (:func:`write_json`): ``config``, ``machine``,
    ``versions``, ``cases`` (per case: every candidate's samples and median in seconds per
    call, and the table's ``rows``), ``scaling``, ``notes``, and ``others_cores``: how
    many cores other processes kept busy meanwhile (per case too; Linux only).
    ``out=None`` prints nothing; ``progress=None`` shows no progress bar.
    """
    config = config or BenchConfig()
    config.validate()
    preset = PRESETS[config.preset]
    cores = usable_cores()
    threads = config.threads or cores
    peers = Peers.load(config.peers)
    dtypes = [d for d in DTYPES if d in config.dtypes]
    specs = [spec for spec in LOSSES if spec.key in config.losses]
    cases = [(spec, dtype, shape, small) for spec in specs for dtype in dtypes
             for shape, small in preset.sizes.shapes(spec)] if config.cases else []
    counts = sorted(set(config.scaling_threads or range(1, cores + 1)))
    scaling = [(_SPECS[key], dtypes[0], shape) for key, shape in preset.scaling
               if key in config.losses] if config.scaling else []
    overhead = 2e5          # progress weight of a case beyond its element count
    weights = ([math.prod(c[2]) * (2 if c[1] == "float64" else 1) + overhead for c in cases]
               + [math.prod(s[2]) * len(counts) + overhead for s in scaling])
    bar = Progress(weights, progress)
    rng = np.random.default_rng(config.seed)
    started, clock = datetime.datetime.now(datetime.timezone.utc), time.perf_counter()
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cpu_start = _cpu_snapshot()
    case_results, scaling_results = [], []
    with _single_threaded_blas(peers.threadpoolctl) as blas, _torch_threads(peers.torch, threads):
        for i, (spec, dtype, shape, small) in enumerate(cases):
            bar.step(_case_id(spec.label, dtype, shape))
            case_results.append(_run_case(spec, dtype, shape, small, threads, peers,
                                          preset.timing, rng, config.seed + i))
            gc.collect()
        for spec, dtype, shape in scaling:
            bar.step(f"thread scaling: {_case_id(spec.label, dtype, shape)}")
            scaling_results.append(_run_scaling(spec, dtype, shape, counts, preset.timing,
                                                rng, config.seed))
            gc.collect()
    bar.close()
    others = _others_cores(cpu_start, _cpu_snapshot())
    notes = [spec.torch_note for spec in specs if spec.torch_note and peers.torch is not None]
    results = {
        "schema": SCHEMA,
        "timestamp": started.isoformat(timespec="seconds"),
        "elapsed_s": time.perf_counter() - clock,
        "config": {"preset": config.preset, "threads": threads, "dtypes": dtypes,
                   "losses": [s.key for s in specs], "peers": list(config.peers),
                   "scaling": config.scaling, "scaling_threads": counts,
                   "seed": config.seed,
                   "timing": vars(preset.timing).copy()},
        "machine": machine_info(),
        "versions": _versions(peers),
        "blas_threads": blas,
        "load_average_start": load_average,
        "others_cores": others,
        "notes": notes,
        "cases": case_results,
        "scaling": scaling_results,
    }
    if out is not None:
        out.write(format_report(results))
        out.flush()
    return results


def write_json(results: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write :func:`run`'s results to ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, default=str)
        f.write("\n")
    return path


# ----------------------------------------------------------------------- report ----

def _fmt_clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _fmt_percent(r: float | None) -> str:
    return "-" if r is None else f"{r:.0%}" if r < 10 else ">999%"


def _fmt_busy(cores: float | None) -> str:
    return f"{cores:.1f}" if cores is not None and cores >= BUSY_CORES else ""


def _fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}"


def _fmt_speedup(r: float | None, mark: str = "") -> str:
    return "-" if r is None else f"{r:.1f}x{mark}"


def _fmt_dim(d: int) -> str:
    """10000000 -> 1e7 (round powers of ten from 1e4), other sizes as they are."""
    k = round(math.log10(d)) if d > 0 else 0
    return f"1e{k}" if d >= 10_000 and 10**k == d else str(d)


def _fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(_fmt_dim(d) for d in shape)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> list[str]:
    """Aligned text table: the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), "-" * len(line(header)), *map(line, rows)]


#: Cases measured while other processes kept at least this many cores busy are flagged.
BUSY_CORES = 0.1

LEGEND = """\
fastloss: median time per call, with n_threads = the thread count above.  Modes: value =
  loss(x, t); vg out= = value_and_grad(x, t, out=g); vg = value_and_grad allocating g.
+-: interquartile range of fastloss's samples / median (the noise of the measurement).
/np floor, /par floor: fastloss time / time to move the same bytes (read x and t -- only x
  for CE with labels -- and write g): np.add or np.multiply with out=, single-threaded, and
  fastloss's trivial parallel kernel (bandwidth_floor) at the same thread count.  1.00 = as
  fast as streaming the data; value rows read but write nothing, so they can go below 1.
torch, sklearn, numpy: peer time / fastloss time (> 1: fastloss is faster), same threads.
  value rows: torch forward under no_grad, sklearn loss() (per-sample losses), NumPy value;
  vg rows: torch autograd forward+backward, sklearn loss_gradient(), NumPy value+gradient;
  peers allocate their outputs, so compare them with the vg row for like with like.
  sklearn: HalfSquaredError (MSE/2), AbsoluteError, HalfBinomialLoss, HalfMultinomialLoss.
busy: cores that other processes kept busy while the case ran, when >= 0.1 (Linux): such
  rows, multi-threaded ones above all, are slowed by the competition, not by the code."""


def format_report(results: Mapping[str, Any]) -> str:
    """The printed report: header, the table of cases, notes and thread scaling."""
    cfg, mach, ver = results["config"], results["machine"], results["versions"]
    peers = ", ".join(f"{name} {ver[name]}" for name in ("torch", "sklearn") if ver.get(name))
    lines = [
        f"fastloss {ver['fastloss']} benchmark ({cfg['preset']}): {cfg['threads']} threads, "
        f"{mach['usable_cores']} cores, {mach['cpu_model']}, "
        f"kernels {mach['fastloss_config'].get('simd')}",
        f"numpy {ver['numpy']}{', ' + peers if peers else ''}; BLAS "
        f"{results['blas_threads']}; finished in {_fmt_clock(results['elapsed_s'])}",
    ]
    others, load = results.get("others_cores"), results.get("load_average_start")
    if others is not None:
        busy = others >= BUSY_CORES
        at_start = "" if load is None else f" (load average {load:.2f} at the start)"
        lines.append(f"{'WARNING: ' if busy else ''}other processes kept {others:.2f} cores "
                     f"busy on average during the run{at_start}"
                     f"{': expect noisy numbers' if busy else ''}")
    lines.append("")
    marks = {spec.key: "*" for spec in LOSSES if spec.torch_note}
    rows = []
    for case in results["cases"]:
        for row in case["rows"]:
            rows.append([case["label"], case["dtype"], _fmt_shape(case["shape"]), row["mode"],
                         _fmt_time(row["fastloss_s"]), _fmt_percent(row["spread"]),
                         _fmt_ratio(row["np_floor_ratio"]),
                         _fmt_ratio(row["par_floor_ratio"]),
                         _fmt_speedup(row["torch_speedup"], marks.get(case["loss"], "")),
                         _fmt_speedup(row["sklearn_speedup"]),
                         _fmt_speedup(row["numpy_speedup"]), _fmt_busy(case["others_cores"])])
    if rows:
        lines += _table(["loss", "dtype", "shape", "mode", "fastloss", "+-", "/np floor",
                         "/par floor", "torch", "sklearn", "numpy", "busy"], rows, left=4)
        lines += ["", LEGEND]
    lines += [textwrap.fill(note, 92, initial_indent="* ", subsequent_indent="  ")
              for note in results["notes"]]
    problems = [f"  {_case_id(c['label'], c['dtype'], c['shape'])}: {note}"
                for c in [*results["cases"], *results["scaling"]] for note in c["notes"]]
    if problems:
        lines += ["", "Problems:", *problems]
    if results["scaling"]:
        rows = [[s["label"], s["dtype"], _fmt_shape(s["shape"]), str(r["threads"]),
                 _fmt_time(r["fastloss_s"]), _fmt_time(r["floor_s"]),
                 _fmt_ratio(r["floor_ratio"]), _fmt_speedup(r["speedup"]),
                 _fmt_speedup(r["floor_speedup"]), _fmt_busy(s["others_cores"])]
                for s in results["scaling"] for r in s["rows"]]
        lines += ["", "Thread scaling: value_and_grad(out=) and the parallel floor"]
        lines += _table(["loss", "dtype", "shape", "threads", "fastloss", "par floor",
                         "/par floor", "speed-up", "floor speed-up", "busy"], rows, left=3)
    return "\n".join(lines) + "\n"
