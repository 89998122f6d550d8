"""The benchmark run: choose the cases, measure them, collect the results, show them.

``run(BenchConfig(...))`` returns one JSON-serialisable dict (:func:`write_json` writes it)
and prints the report; ``python -m fastloss bench`` is its command line.
"""
from __future__ import annotations

import datetime
import gc
import io
import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import fastloss

from . import cases as _cases
from . import report
from .measure import Measured, cpu_snapshot, measure, others_cores, ratio, single_threaded_blas
from .peers import PEERS, Peers

#: JSON layout version; bumped when keys change meaning.  2: ``loss`` is the table's name
#: (``cross_entropy``, not ``ce``), cases carry ``group``, ``params`` and ``forms``, the
#: NumPy peer is the reference (``numpy.vg`` only; value rows have no NumPy ratio), and
#: ``config`` has ``groups``.
SCHEMA = 2

DTYPES = _cases.DTYPES
PRESETS = _cases.PRESETS


def _all_losses() -> tuple[str, ...]:
    return _cases.loss_names()


@dataclass
class BenchConfig:
    """What to run.  The defaults run the full suite on every core."""

    preset: str = "full"                                #: a key of :data:`PRESETS`
    threads: int | None = None                          #: None: every usable core
    dtypes: Sequence[str] = DTYPES
    losses: Sequence[str] | None = None                 #: table names; None: every loss
    peers: Sequence[str] = PEERS
    scaling: bool = True                                #: include the thread-scaling section
    scaling_threads: Sequence[int] | None = None        #: None: 1, 2, ... every usable core
    cases: bool = True                                  #: False: the thread-scaling section only
    seed: int = 0
    groups: Sequence[str] = field(default_factory=lambda: _cases.DEFAULT_GROUPS)

    def validate(self) -> None:
        """Raise ValueError for unknown names or a thread count below 1."""
        for kind, given, known in (("preset", [self.preset], tuple(PRESETS)),
                                   ("dtype", self.dtypes, DTYPES),
                                   ("loss", self.losses or (), _all_losses()),
                                   ("peer", self.peers, PEERS),
                                   ("case group", self.groups, tuple(_cases.GROUPS))):
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


# ------------------------------------------------------------------ machine and versions ----

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


# ------------------------------------------------------------------ results ----

def _rows(modes: Sequence[_cases.Mode], stats: Mapping[str, Mapping[str, Any]]
          ) -> list[dict[str, Any]]:
    """One row per mode: fastloss's median, its ratio to each floor, each peer's speed-up."""
    med = {name: s["median_s"] for name, s in stats.items()}
    rows = []
    for mode in modes:
        t = med.get(mode.candidate)
        spread = None
        if mode.candidate in stats:
            s = stats[mode.candidate]
            spread = ratio(s["q3_s"] - s["q1_s"], t)
        row: dict[str, Any] = {"mode": mode.label, "fastloss_s": t, "spread": spread,
                               "np_floor_ratio": ratio(t, med.get("floor.numpy")),
                               "par_floor_ratio": ratio(t, med.get("floor.parallel"))}
        for peer in PEERS:
            row[f"{peer}_speedup"] = ratio(med.get(f"{peer}.{mode.peer_suffix}"), t)
        rows.append(row)
    return rows


def _value_notes(dtype: str, values: Mapping[str, float]) -> list[str]:
    """Check that the candidates computed the same loss (catches benchmarking the wrong
    thing).  sklearn's half losses return per-sample arrays and are not compared."""
    ref = values.get("fastloss.value")
    if ref is None:
        return []
    tol = 1e-3 if dtype == "float32" else 1e-7
    return [f"{name} gave {v:.9g}, fastloss.value {ref:.9g}" for name, v in values.items()
            if not abs(v - ref) <= tol * max(abs(ref), 1e-300)]


def _errors(m: Measured) -> list[str]:
    return [f"{name} failed: {err}" for name, err in m.errors.items()]


def _run_case(case: _cases.Case, threads: int, peers: Peers, timing, rng, seed: int) -> dict:
    setup = case.setup(seed, threads, peers)
    m = measure(setup.candidates, timing, rng)
    return {"group": case.group, "loss": case.loss, "label": case.label, "dtype": case.dtype,
            "shape": list(case.shape), "params": case.params, **setup.info,
            "small_call": case.small_call, "threads": threads, "repeats": m.repeats,
            "others_cores": m.others_cores, "forms": setup.forms, "candidates": m.stats,
            "values": m.values, "rows": _rows(case.modes, m.stats),
            "notes": _errors(m) + _value_notes(case.dtype, m.values)}


def _run_scaling(case: _cases.ScalingCase, counts: Sequence[int], timing, rng,
                 seed: int) -> dict:
    """fastloss value_and_grad(out=) and the parallel floor at each thread count."""
    m = measure(case.candidates(seed, counts), timing, rng)
    med = {name: s["median_s"] for name, s in m.stats.items()}
    one, one_floor = (med.get(f"fastloss.vg_out@{counts[0]}"),
                      med.get(f"floor.parallel@{counts[0]}"))
    rows = []
    for k in counts:
        t, f = med.get(f"fastloss.vg_out@{k}"), med.get(f"floor.parallel@{k}")
        rows.append({"threads": k, "fastloss_s": t, "floor_s": f, "floor_ratio": ratio(t, f),
                     "speedup": ratio(one, t), "floor_speedup": ratio(one_floor, f)})
    return {"loss": case.loss, "label": case.label, "dtype": case.dtype,
            "shape": list(case.shape), "repeats": m.repeats, "others_cores": m.others_cores,
            "candidates": m.stats, "rows": rows, "notes": _errors(m)}


def _reference_notes(results_cases: Sequence[Mapping[str, Any]]) -> list[str]:
    """A note for each loss whose torch column times the reference's PyTorch form."""
    notes = {}
    for case in results_cases:
        form = case.get("forms", {}).get("torch", "")
        if form.startswith("reference."):
            notes[case["loss"]] = (
                f"{case['label']}: the benchmark knows no fused torch.nn.functional form of "
                f"this loss, so the torch column times fastloss.bench.{form}: the "
                f"reference's per-sample PyTorch form and its mean, under autograd")
    return list(notes.values())


def run(config: BenchConfig | None = None, *, out: TextIO | None = sys.stdout,
        progress: TextIO | None = sys.stderr) -> dict[str, Any]:
    """Run the suite, print its report to ``out`` and return the results as a dict.

    The dict is JSON-serialisable (:func:`write_json`): ``schema``, ``config``,
    ``machine``, ``versions``, ``cases`` (per case: every candidate's samples and median in
    seconds per call, the table's ``rows``, what each peer ran), ``scaling``, ``notes``,
    and ``others_cores``: how many cores other processes kept busy meanwhile (per case
    too; Linux only).  ``out=None`` prints nothing; ``progress=None`` shows no progress.
    Showing either needs rich (``pip install "fastloss[bench]"``), checked before anything
    is measured.
    """
    config = config or BenchConfig()
    config.validate()
    if out is not None or report.is_terminal(progress):
        report.require_rich()
    preset = PRESETS[config.preset]
    cores = usable_cores()
    threads = config.threads or cores
    peers = Peers.load(config.peers)
    dtypes = [d for d in DTYPES if d in config.dtypes]
    losses = [n for n in _all_losses() if config.losses is None or n in config.losses]
    cases = [case for group in config.groups
             for case in _cases.GROUPS[group](preset, losses, dtypes)] if config.cases else []
    counts = sorted(set(config.scaling_threads or range(1, cores + 1)))
    scaling = (list(_cases.scaling_cases(preset, losses, dtypes[0]))
               if config.scaling and dtypes else [])
    weights = [c.weight for c in cases] + [s.weight(counts) for s in scaling]
    rng = np.random.default_rng(config.seed)
    started, clock = datetime.datetime.now(datetime.timezone.utc), time.perf_counter()
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cpu_start = cpu_snapshot()
    case_results, scaling_results = [], []
    with single_threaded_blas(peers.threadpoolctl) as blas, peers.threads(threads), \
            report.Progress(weights, progress) as bar:
        for i, case in enumerate(cases):
            bar.step(report.case_id(case.label, case.dtype, case.shape))
            case_results.append(_run_case(case, threads, peers, preset.timing, rng,
                                          config.seed + i))
            gc.collect()
        for case in scaling:
            bar.step(f"thread scaling: {report.case_id(case.label, case.dtype, case.shape)}")
            scaling_results.append(_run_scaling(case, counts, preset.timing, rng, config.seed))
            gc.collect()
    results = {
        "schema": SCHEMA,
        "timestamp": started.isoformat(timespec="seconds"),
        "elapsed_s": time.perf_counter() - clock,
        "config": {"preset": config.preset, "threads": threads, "dtypes": dtypes,
                   "losses": losses, "peers": list(config.peers),
                   "groups": list(config.groups), "scaling": config.scaling,
                   "scaling_threads": counts, "seed": config.seed,
                   "timing": vars(preset.timing).copy()},
        "machine": machine_info(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "fastloss": fastloss.__version__, **peers.versions()},
        "blas_threads": blas,
        "load_average_start": load_average,
        "others_cores": others_cores(cpu_start, cpu_snapshot()),
        "notes": _reference_notes(case_results),
        "cases": case_results,
        "scaling": scaling_results,
    }
    if out is not None:
        out.write(report.format_report(results, color=report.is_terminal(out)))
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
