"""What a run shows: the tables (rendered with rich) and the progress bar.

rich is imported only here, and only when something is shown: ``run(out=None,
progress=None)`` and the JSON need NumPy alone.  Written to a terminal, the tables use
rich's box lines and colour and the progress bar is rich.progress; written to a file or a
pipe, the tables are plain ASCII (diff-friendly results files) and progress is one line
per case.
"""
from __future__ import annotations

import io
import math
import textwrap
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from .measure import BUSY_CORES

INSTALL_HINT = 'pip install "fastloss[bench]"'


class MissingDependency(ImportError):
    """An optional dependency the benchmark's output needs is not installed."""


def require_rich():
    """The rich package, or MissingDependency saying how to install it."""
    try:
        import rich
        import rich.console
        import rich.progress
        import rich.table
    except ImportError as exc:
        raise MissingDependency(f"the benchmark's tables and progress bar need rich ({exc}); "
                                f"install it with: {INSTALL_HINT}") from None
    return rich


def is_terminal(stream: TextIO | None) -> bool:
    return bool(stream is not None and getattr(stream, "isatty", lambda: False)())


# ------------------------------------------------------------------ numbers ----

def fmt_clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_percent(r: float | None) -> str:
    return "-" if r is None else f"{r:.0%}" if r < 10 else ">999%"


def fmt_busy(cores: float | None) -> str:
    return f"{cores:.1f}" if cores is not None and cores >= BUSY_CORES else ""


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}"


def fmt_speedup(r: float | None, mark: str = "") -> str:
    return "-" if r is None else f"{r:.1f}x{mark}"


def fmt_dim(d: int) -> str:
    """10000000 -> 1e7 (round powers of ten from 1e4), other sizes as they are."""
    k = round(math.log10(d)) if d > 0 else 0
    return f"1e{k}" if d >= 10_000 and 10**k == d else str(d)


def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(fmt_dim(d) for d in shape)


def case_id(label: str, dtype: str, shape: Sequence[int]) -> str:
    return f"{label} {dtype} {fmt_shape(shape)}"


# ------------------------------------------------------------------ tables ----

LEGEND = """\
fastloss: median time per call, with n_threads = the thread count above.  Modes: value =
  loss(x, t); vg out= = value_and_grad(x, t, out=g); vg = value_and_grad allocating g.
+-: interquartile range of fastloss's samples / median (the noise of the measurement).
/np floor, /par floor: fastloss time / time to move the same bytes (read x and t -- only x
  for class labels -- and write g): np.add or np.multiply with out=, single-threaded, and
  fastloss's trivial parallel kernel (bandwidth_floor) at the same thread count.  1.00 = as
  fast as streaming the data; value rows read but write nothing, so they can go below 1.
torch, sklearn, numpy: peer time / fastloss time (> 1: fastloss is faster), same threads.
  value rows: torch forward under no_grad, sklearn loss() (per-sample losses);
  vg rows: torch autograd forward+backward, sklearn loss_gradient(), and numpy: the NumPy
  reference (loss, gradient and Hessian in one call, written for accuracy, not speed);
  peers allocate their outputs, so compare them with the vg row for like with like.
  The table below says what each peer ran (reference: fastloss.bench.reference); * marks
  a torch column timing the reference's per-sample PyTorch form and its mean.
torch group (nn.<Module> rows): fwd+bwd = module(x, t).backward() on a leaf x, forward =
  module(x, t) under no_grad, train step = zero_grad, MLP forward, loss, backward, SGD step;
  fastloss = fastloss.torch's module, torch = torch.nn's time / fastloss.torch's.
busy: cores that other processes kept busy while the case ran, when >= 0.1 (Linux): such
  rows, multi-threaded ones above all, are slowed by the competition, not by the code."""

#: Marks the torch column of a loss timed through the reference's PyTorch form.
REFERENCE_MARK = "*"


def _console(file: TextIO, color: bool):
    from rich.console import Console
    return Console(file=file, width=1000, force_terminal=color, no_color=not color,
                   highlight=False, emoji=False, soft_wrap=True)


def _box(color: bool):
    from rich import box
    if color:
        return box.SIMPLE_HEAD
    return box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int, color: bool,
           title: str | None = None):
    """A rich table: the first ``left`` columns left-aligned, the rest right-aligned."""
    from rich.table import Table
    table = Table(box=_box(color), show_edge=False, pad_edge=False, title=title,
                  title_justify="left", header_style="bold" if color else None,
                  title_style="bold" if color else None)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i < left else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _forms(results: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, str]]]:
    """What each peer ran, per loss (first case of each loss)."""
    forms: dict[str, tuple[str, dict[str, str]]] = {}
    for case in results["cases"]:
        forms.setdefault(case["loss"], (case["label"], case.get("forms", {})))
    return forms


def _marked(forms: Mapping[str, str]) -> bool:
    return forms.get("torch", "").startswith("reference.")


def format_report(results: Mapping[str, Any], color: bool = False) -> str:
    """The printed report: header, the table of cases, the peers, notes, thread scaling.

    ``color``: rich's terminal rendering (box lines, bold, colour); else plain ASCII."""
    require_rich()
    buffer = io.StringIO()
    console = _console(buffer, color)

    def say(text: str = "") -> None:
        console.print(text, markup=False, highlight=False)

    cfg, mach, ver = results["config"], results["machine"], results["versions"]
    peers = ", ".join(f"{name} {ver[name]}" for name in ("torch", "sklearn") if ver.get(name))
    say(f"fastloss {ver['fastloss']} benchmark ({cfg['preset']}): {cfg['threads']} threads, "
        f"{mach['usable_cores']} cores, {mach['cpu_model']}, "
        f"kernels {mach['fastloss_config'].get('simd')}")
    say(f"numpy {ver['numpy']}{', ' + peers if peers else ''}; BLAS "
        f"{results['blas_threads']}; finished in {fmt_clock(results['elapsed_s'])}")
    others, load = results.get("others_cores"), results.get("load_average_start")
    if others is not None:
        busy = others >= BUSY_CORES
        at_start = "" if load is None else f" (load average {load:.2f} at the start)"
        say(f"{'WARNING: ' if busy else ''}other processes kept {others:.2f} cores "
            f"busy on average during the run{at_start}"
            f"{': expect noisy numbers' if busy else ''}")
    say()
    forms = _forms(results)
    rows = []
    for case in results["cases"]:
        mark = REFERENCE_MARK if _marked(case.get("forms", {})) else ""
        for row in case["rows"]:
            rows.append([case["label"], case["dtype"], fmt_shape(case["shape"]), row["mode"],
                         fmt_time(row["fastloss_s"]), fmt_percent(row["spread"]),
                         fmt_ratio(row["np_floor_ratio"]), fmt_ratio(row["par_floor_ratio"]),
                         fmt_speedup(row["torch_speedup"], mark),
                         fmt_speedup(row["sklearn_speedup"]),
                         fmt_speedup(row["numpy_speedup"]), fmt_busy(case["others_cores"])])
    if rows:
        console.print(_table(["loss", "dtype", "shape", "mode", "fastloss", "+-", "/np floor",
                              "/par floor", "torch", "sklearn", "numpy", "busy"], rows,
                             left=4, color=color))
        say()
        say(LEGEND)
        peer_rows = [[label, *(f.get(p, "-") for p in ("torch", "sklearn", "numpy"))]
                     for label, f in forms.values()]
        say()
        console.print(_table(["loss", "torch", "sklearn", "numpy"], peer_rows, left=4,
                             color=color, title="What the peers ran"))
    for note in results["notes"]:
        say(textwrap.fill(note, 92, initial_indent="* ", subsequent_indent="  "))
    problems = [f"  {case_id(c['label'], c['dtype'], c['shape'])}: {note}"
                for c in [*results["cases"], *results["scaling"]] for note in c["notes"]]
    if problems:
        say()
        say("Problems:")
        for line in problems:
            say(line)
    if results["scaling"]:
        rows = [[s["label"], s["dtype"], fmt_shape(s["shape"]), str(r["threads"]),
                 fmt_time(r["fastloss_s"]), fmt_time(r["floor_s"]),
                 fmt_ratio(r["floor_ratio"]), fmt_speedup(r["speedup"]),
                 fmt_speedup(r["floor_speedup"]), fmt_busy(s["others_cores"])]
                for s in results["scaling"] for r in s["rows"]]
        say()
        say("Thread scaling: value_and_grad(out=) and the parallel floor")
        console.print(_table(["loss", "dtype", "shape", "threads", "fastloss", "par floor",
                              "/par floor", "speed-up", "floor speed-up", "busy"], rows,
                             left=3, color=color))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


# ------------------------------------------------------------------ progress ----

class Progress:
    """Progress over weighted items (weights: rough cost, so that the bar and the time-left
    estimate move with the work done): rich.progress on a terminal, else one plain line
    per item.  Redrawn only when an item starts, never from a background thread, so that
    nothing runs between the timed calls."""

    def __init__(self, weights: Sequence[float], stream: TextIO | None):
        self.weights, self.stream = list(weights), stream
        self.index, self.done = -1, 0.0
        self.total = sum(self.weights) or 1.0
        self.start = time.perf_counter()
        self._rich = self._task = None
        if is_terminal(stream):
            require_rich()
            from rich.progress import (BarColumn, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            from rich.progress import Progress as RichProgress
            self._rich = RichProgress(
                BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[item]}/{task.fields[items]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.description}"),
                console=_console(stream, True), auto_refresh=False, transient=False)
            self._rich.start()
            self._task = self._rich.add_task("", total=self.total, item=0,
                                             items=len(self.weights))

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def step(self, label: str) -> None:
        """Mark the previous item done and show ``label`` as the one running."""
        if self.index >= 0:
            self.done += self.weights[self.index]
        self.index += 1
        self._show(label)

    def close(self) -> None:
        if self.index > len(self.weights):
            return
        self.done, self.index = self.total, len(self.weights)
        self._show("done")
        self.index += 1
        if self._rich is not None:
            self._rich.stop()

    def _show(self, label: str) -> None:
        item = min(self.index + 1, len(self.weights))
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done, description=label, item=item)
            self._rich.refresh()
            return
        if self.stream is None:
            return
        frac = min(self.done / self.total, 1.0)
        elapsed = time.perf_counter() - self.start
        left = f", ~{fmt_clock(elapsed * (1 - frac) / frac)} left" if 0 < frac < 1 else ""
        self.stream.write(f"[{frac:4.0%}] {item}/{len(self.weights)} {label} "
                          f"({fmt_clock(elapsed)}{left})\n")
        self.stream.flush()

