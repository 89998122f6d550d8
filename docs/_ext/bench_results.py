"""The performance page: figures and tables from a benchmark results file of the repo.

``fastloss_bench_results`` (in conf.py) names a JSON file written by the benchmark suite
(``python -m fastloss bench --json PATH``; bench/README.md documents its layout).
When the docs are built, the figures are drawn into ``docs/_generated/performance/`` and
two directives fill in the text:

``.. bench-info::``
    what was measured on what: machine, thread count, versions, date, load;
``.. bench-table::``
    fastloss's time per element and how it compares with the floors and each peer.

Only :func:`load_results` knows the JSON's layout; everything else reads the
:class:`Results` it returns.  When the suite's layout changes, adapt that one function.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.util import logging

logger = logging.getLogger(__name__)
OUTPUT = "_generated/performance"           # relative to the docs folder


# ---------------------------------------------------------------- the data ----

@dataclass
class Case:
    """One loss, dtype and shape: median seconds per call of every candidate."""
    label: str                      #: the loss's name in the suite ("MSE", "CE(labels)")
    dtype: str
    shape: tuple[int, ...]
    elements: int
    small: bool                     #: a small call (latency), not a large array (throughput)
    seconds: dict[str, float]       #: candidate ("fastloss.vg_out", "torch.vg", ...) -> s

    @property
    def name(self) -> str:
        return f"{self.label} {'x'.join(_dim(d) for d in self.shape)}"


@dataclass
class Scaling:
    """fastloss value_and_grad(out=) and the parallel floor at each thread count."""
    label: str
    dtype: str
    shape: tuple[int, ...]
    elements: int
    threads: list[int]
    fastloss_s: list[float | None]
    floor_s: list[float | None]


@dataclass
class Results:
    source: str                     #: the file, relative to the repository
    timestamp: str
    preset: str
    threads: int
    machine: dict[str, str]         #: what to print about the machine, in order
    versions: dict[str, str]        #: package -> version (missing peers left out)
    busy_cores: float | None        #: cores other processes kept busy during the run
    cases: list[Case] = field(default_factory=list)
    scaling: list[Scaling] = field(default_factory=list)


def load_results(path: Path, source: str) -> Results:
    """Read a results file of the benchmark suite (fastloss.bench, ``SCHEMA`` 1 or 2: 2
    names losses by the table's names and adds keys this page does not need).

    The only function that knows the file's layout."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("schema") not in (1, 2):
        raise ValueError(f"{source}: benchmark results schema {raw.get('schema')!r}; "
                         f"docs/_ext/bench_results.py reads schemas 1 and 2 (adapt "
                         f"load_results)")
    m, cfg = raw["machine"], raw["machine"].get("fastloss_config", {})
    machine = {
        "CPU": m.get("cpu_model", "?"),
        "cores": f"{m.get('usable_cores', m.get('cores'))} usable of {m.get('cores')}",
        "platform": m.get("platform", "?"),
        "SIMD level": f"{cfg.get('simd')} (available: {', '.join(cfg.get('simd_available', []))})",
        "compiler": cfg.get("compiler") or "?",
        "OpenMP": f"yes ({cfg.get('openmp_version')})" if cfg.get("openmp") else "no",
    }
    cases = [Case(c["label"], c["dtype"], tuple(c["shape"]), c["elements"], c["small_call"],
                  {k: v["median_s"] for k, v in c["candidates"].items()
                   if v.get("median_s") is not None})
             for c in raw.get("cases", [])]
    scaling = [Scaling(s["label"], s["dtype"], tuple(s["shape"]), _prod(s["shape"]),
                       [r["threads"] for r in s["rows"]], [r["fastloss_s"] for r in s["rows"]],
                       [r["floor_s"] for r in s["rows"]])
               for s in raw.get("scaling", [])]
    return Results(source=source, timestamp=raw.get("timestamp", "?"),
                   preset=raw["config"]["preset"], threads=raw["config"]["threads"],
                   machine=machine,
                   versions={k: v for k, v in raw.get("versions", {}).items() if v},
                   busy_cores=raw.get("others_cores"), cases=cases, scaling=scaling)


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _dim(d: int) -> str:
    if d >= 10_000 and str(d).rstrip("0") == "1":
        return f"1e{len(str(d)) - 1}"
    return str(d)


# ---------------------------------------------------------------- the figures ----

#: what the bars show, in order: (candidate, legend label, colour)
BARS = (("fastloss.vg_out", "fastloss value_and_grad(out=)", "C0"),
        ("floor.parallel", "memory floor, same threads", "0.35"),
        ("floor.numpy", "memory floor, NumPy, 1 thread", "0.7"),
        ("torch.vg", "PyTorch autograd forward + backward", "C3"),
        ("sklearn.vg", "scikit-learn loss_gradient", "C2"),
        ("numpy.vg", "NumPy, value + gradient", "C1"))


def plot_time_per_element(results: Results, dtype: str):
    import matplotlib.pyplot as plt
    import numpy as np

    cases = [c for c in results.cases if c.dtype == dtype and not c.small]
    bars = [b for b in BARS if any(b[0] in c.seconds for c in cases)]
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.4 * len(cases) * len(bars) / 3),
                           layout="constrained")
    height = 0.8 / len(bars)
    for k, (cand, label, colour) in enumerate(bars):
        ns = [c.seconds.get(cand, np.nan) / c.elements * 1e9 for c in cases]
        ax.barh(np.arange(len(cases)) + (k - (len(bars) - 1) / 2) * height, ns,
                height=height, color=colour, label=label)
    ax.set_yticks(np.arange(len(cases)), [c.name for c in cases])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("nanoseconds per element (log scale; shorter is faster)")
    ax.set_title(f"value and gradient, {dtype}, {results.threads} threads")
    ax.grid(axis="x", which="both", alpha=0.3)
    _legend_above(fig, ax)
    return fig


def _legend_above(fig, ax):
    """The legend in two columns above the axes, outside the bars."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=2, fontsize="small")


def plot_scaling(results: Results):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for k, s in enumerate(results.scaling):
        colour = f"C{k}"
        name = f"{s.label} {'x'.join(_dim(d) for d in s.shape)} {s.dtype}"
        t_ns = [None if t is None else t / s.elements * 1e9 for t in s.fastloss_s]
        f_ns = [None if f is None else f / s.elements * 1e9 for f in s.floor_s]
        axes[0].plot(s.threads, t_ns, "o-", color=colour, label=f"{name}: fastloss")
        axes[0].plot(s.threads, f_ns, "s--", color=colour, alpha=0.6, label=f"{name}: floor")
        base = s.fastloss_s[0]
        axes[1].plot(s.threads, [None if t is None else base / t for t in s.fastloss_s],
                     "o-", color=colour, label=name)
    if results.scaling:
        most = max(max(s.threads) for s in results.scaling)
        axes[1].plot([1, most], [1, most], "k:", lw=1, label="ideal")
    axes[0].set(xlabel="threads", ylabel="ns per element", yscale="log",
                title="time per element (value_and_grad, out=)")
    axes[1].set(xlabel="threads", ylabel="speed-up over 1 thread", title="speed-up")
    for ax in axes:
        ax.grid(alpha=0.3)
        if results.scaling:
            ax.legend(fontsize="x-small")
            ax.set_xticks(sorted({t for s in results.scaling for t in s.threads}))
        else:       # a run with --no-scaling: say so rather than draw empty axes
            ax.text(0.5, 0.5, "no thread-scaling section\nin this results file",
                    ha="center", va="center", transform=ax.transAxes)
    return fig


def plot_small_calls(results: Results):
    import matplotlib.pyplot as plt
    import numpy as np

    cases = [c for c in results.cases if c.small]
    bars = [b for b in BARS if not b[0].startswith("floor")
            and any(b[0] in c.seconds for c in cases)]
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.4 * len(cases) * len(bars) / 3),
                           layout="constrained")
    height = 0.8 / len(bars)
    for k, (cand, label, colour) in enumerate(bars):
        us = [c.seconds.get(cand, np.nan) * 1e6 for c in cases]
        ax.barh(np.arange(len(cases)) + (k - (len(bars) - 1) / 2) * height, us,
                height=height, color=colour, label=label)
    ax.set_yticks(np.arange(len(cases)), [f"{c.name} {c.dtype}" for c in cases])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("microseconds per call (log scale)")
    ax.set_title("small calls: value and gradient")
    ax.grid(axis="x", which="both", alpha=0.3)
    _legend_above(fig, ax)
    return fig


FIGURES = {
    "time_per_element_float32": lambda r: plot_time_per_element(r, "float32"),
    "time_per_element_float64": lambda r: plot_time_per_element(r, "float64"),
    "thread_scaling": plot_scaling,
    "small_calls": plot_small_calls,
}


# ---------------------------------------------------------------- Sphinx ----

def _results(app) -> Results:
    cached = getattr(app, "_fastloss_bench", None)
    if cached is None:
        rel = app.config.fastloss_bench_results
        path = (Path(app.confdir) / rel).resolve()
        repo = Path(app.confdir).resolve().parent
        source = path.relative_to(repo).as_posix() if path.is_relative_to(repo) else path.name
        cached = app._fastloss_bench = load_results(path, source)
        app._fastloss_bench_path = path
    return cached


def write_figures(app) -> None:
    import matplotlib
    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    results = _results(app)
    out = Path(app.srcdir) / OUTPUT
    out.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.hashsalt": "fastloss-docs"}):
        for name, draw in FIGURES.items():
            fig = draw(results)
            fig.savefig(out / f"{name}.png", dpi=110, metadata={"Software": None})
            plt.close(fig)


def _fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}"


class BenchInfo(Directive):
    """A field list: where and with what the results were measured."""

    def run(self):
        app = self.state.document.settings.env.app
        r = _results(app)
        self.state.document.settings.env.note_dependency(str(app._fastloss_bench_path))
        busy = ("" if r.busy_cores is None else
                f"{r.busy_cores:.2f} cores on average (measurements are noisier the higher "
                f"this is)")
        fields = [("results file", f"``{r.source}``"), ("measured", r.timestamp),
                  ("preset", f"``{r.preset}``"), ("threads", str(r.threads))]
        fields += list(r.machine.items())
        fields += [("versions", ", ".join(f"{k} {v}" for k, v in r.versions.items()))]
        if busy:
            fields.append(("other processes", busy))
        lines = []
        for name, value in fields:
            lines += [f":{name}: {value}"]
        node = nodes.container()
        self.state.nested_parse(StringList(lines, r.source), self.content_offset, node)
        return node.children


class BenchTable(Directive):
    """fastloss's value_and_grad(out=) per large case: ns per element, ratio to the floors,
    and each peer's time divided by fastloss's (above 1: fastloss is faster)."""

    def run(self):
        r = _results(self.state.document.settings.env.app)
        peers = [p for p in ("torch", "sklearn", "numpy")
                 if any(f"{p}.vg" in c.seconds for c in r.cases)]
        header = ["case", "dtype", "ns / element", "/ parallel floor", "/ NumPy floor"] + \
                 [f"{p} vg / fastloss" for p in peers]
        rows = []
        for c in r.cases:
            t = c.seconds.get("fastloss.vg_out")
            if c.small or t is None:
                continue

            def ratio(a, b):
                return None if a is None or b is None or b <= 0 else a / b
            rows.append([c.name, c.dtype, f"{t / c.elements * 1e9:.2f}",
                         _fmt_ratio(ratio(t, c.seconds.get("floor.parallel"))),
                         _fmt_ratio(ratio(t, c.seconds.get("floor.numpy")))]
                        + [_fmt_ratio(ratio(c.seconds.get(f"{p}.vg"), t)) for p in peers])
        lines = [".. list-table::", "   :header-rows: 1", ""]
        for row in [header] + rows:
            for k, cell in enumerate(row):
                lines.append(f"   {'* -' if k == 0 else '  -'} {cell}")
        node = nodes.container()
        self.state.nested_parse(StringList(lines, r.source), self.content_offset, node)
        return node.children


def setup(app):
    app.add_config_value("fastloss_bench_results", "", "env")
    app.connect("builder-inited", write_figures)
    app.add_directive("bench-info", BenchInfo)
    app.add_directive("bench-table", BenchTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
