"""How candidates are timed: warm-up, calibration, interleaved repeats, medians.

Also what can disturb a measurement and is recorded with it: the CPU time other processes
took meanwhile (Linux, /proc/stat) and the BLAS thread pools, which are limited to one
thread while measuring so that idle BLAS threads do not compete with the kernels.
"""
from __future__ import annotations

import contextlib
import gc
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Thunk = Callable[[], object]

#: Cases measured while other processes kept at least this many cores busy are flagged.
BUSY_CORES = 0.1


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


@dataclass
class Measured:
    """Medians (seconds per call), raw samples and the loss value seen at warm-up."""

    stats: dict[str, dict[str, Any]]
    values: dict[str, float]
    errors: dict[str, str]
    repeats: int
    others_cores: float | None      #: CPU use of other processes meanwhile, in cores


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
    cpu_start = cpu_snapshot()
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
    return Measured(stats, values, errors, repeats, others_cores(cpu_start, cpu_snapshot()))


# ------------------------------------------------------------------ the machine meanwhile ----

def cpu_snapshot() -> tuple[float, float, float] | None:
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


def others_cores(start: tuple | None, end: tuple | None) -> float | None:
    """Average number of cores that *other* processes kept busy between two snapshots."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    other = (end[1] - start[1]) - (end[2] - start[2])
    cores = max(other, 0.0) / (end[0] - start[0])
    return min(cores, float(os.cpu_count() or 1))      # jiffies are coarse on short spans


@contextlib.contextmanager
def single_threaded_blas(threadpoolctl) -> Iterator[str]:
    """Limit the BLAS pools to one thread while measuring; yields what was done."""
    if threadpoolctl is None:
        env = os.environ.get("OPENBLAS_NUM_THREADS")
        yield (f"OPENBLAS_NUM_THREADS={env}" if env else
               "not limited (install threadpoolctl, or set OPENBLAS_NUM_THREADS=1)")
        return
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield "limited to 1 thread (threadpoolctl)"


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing (or b is not positive)."""
    return None if a is None or b is None or b <= 0 else a / b
