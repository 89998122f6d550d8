"""Which cases run: read from the table of losses (fastloss.LOSSES), sized by a preset.

A *case* is one loss, one dtype and one input shape, with the candidates timed on it
(fastloss.bench.peers).  Nothing here names a loss: the cases of a row follow from what
the row declares.

* ``family`` and ``target`` choose the shapes: pointwise losses run at
  ``Sizes.pointwise`` elements; softmax losses whose target may hold class labels
  (cross-entropy) run with int64 labels at ``Sizes.labels`` (rows x classes); other
  softmax losses (dense targets: KL) at ``Sizes.dense``.  Every loss also gets a small
  call: ``Sizes.small`` elements, or ``small // 10`` rows of 10 classes.
* The instance is the row's default one; a row with ``from_logits`` is timed from logits.
* Inputs and targets come from the reference (``reference.example_input`` and
  ``example_target``), which makes valid data for any row.

Cases are made by *case groups*: functions ``group(preset, losses, dtypes)`` that yield
:class:`Case` objects, each able to set up its arrays and candidates.  :data:`GROUPS` lists
them: ``"losses"`` (every loss's value and gradient calls; the default) and ``"torch"``
(fastloss.torch's modules against torch.nn's: forward + backward, forward, a training
step; fastloss/bench/torch_cases.py).  Another suite (gradient-boosting objective calls,
streaming evaluation) is another such function, with its own table rows (:class:`Mode`).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

import fastloss

from . import peers as _peers
from . import reference
from .measure import Timing

Shape = tuple[int, ...]
Thunk = Callable[[], object]

DTYPES: tuple[str, ...] = ("float32", "float64")


# ------------------------------------------------------------------ presets ----

@dataclass(frozen=True)
class Sizes:
    """Input shapes per kind of loss, and the element count of the small-call cases."""

    pointwise: tuple[int, ...]      #: elements of a pointwise loss's input
    labels: tuple[Shape, ...]       #: rows x classes, softmax with int64 class labels
    dense: tuple[Shape, ...]        #: rows x classes, softmax with a target of x's shape
    small: int = 1000               #: small calls: (small,) or (small // 10, 10)


@dataclass(frozen=True)
class Preset:
    sizes: Sizes
    timing: Timing
    #: (loss name, shape) of the thread-scaling cases; names not in the table are skipped
    scaling: tuple[tuple[str, Shape], ...]


PRESETS: dict[str, Preset] = {
    "full": Preset(
        Sizes(pointwise=(10**5, 10**6, 10**7),
              labels=((20_000, 1_000), (2_000, 32_000), (1_000_000, 10), (100_000, 100)),
              dense=((20_000, 1_000),)),
        Timing(min_repeats=7, max_repeats=60, case_budget_s=6.0, min_sample_s=5e-3),
        scaling=(("mse", (10**7,)), ("binary_cross_entropy", (10**7,)),
                 ("cross_entropy", (20_000, 1_000)), ("kl_divergence", (20_000, 1_000)))),
    "quick": Preset(
        Sizes(pointwise=(10**6,), labels=((2_000, 1_000), (100_000, 10)),
              dense=((2_000, 1_000),)),
        Timing(min_repeats=7, max_repeats=30, case_budget_s=1.5, min_sample_s=2e-3),
        scaling=(("mse", (10**6,)), ("cross_entropy", (2_000, 1_000)))),
    # Seconds, not minutes: checks that the suite runs (tests, CI); the numbers mean little.
    "smoke": Preset(
        Sizes(pointwise=(10**4,), labels=((100, 100),), dense=((100, 100),)),
        Timing(min_repeats=3, max_repeats=3, case_budget_s=0.0, min_sample_s=2e-4),
        scaling=(("mse", (10**4,)),)),
}


# ------------------------------------------------------------------ the table ----

def table() -> list[type]:
    """The loss classes, as the table holds them now."""
    return list(fastloss.LOSSES)


def loss_names() -> tuple[str, ...]:
    return tuple(cls.name for cls in table())


#: Short names the command line accepted before it used the table's names.
ALIASES = {"bce": "binary_cross_entropy", "ce": "cross_entropy", "kl": "kl_divergence"}


def resolve(name: str) -> str | None:
    """The table name for ``name``: a row's name, its class name (any case) or an old
    short alias; None if there is no such loss."""
    rows = table()
    for cls in rows:
        if name == cls.name or name.lower() == cls.__name__.lower():
            return cls.name
    alias = ALIASES.get(name)
    return alias if alias in {cls.name for cls in rows} else None


def takes_labels(cls) -> bool:
    """True for a softmax row whose target may hold class labels (the cases use labels)."""
    return cls.family == "softmax" and "labels" in cls.target


def instance(cls):
    """The loss the cases time: the row's defaults, from logits where it has the choice."""
    names = {p.name for p in cls.params}
    return cls(from_logits=True) if "from_logits" in names else cls()


def label(cls) -> str:
    """The table's name of a row's cases: the class, and what it reads when that matters:
    ``CrossEntropy(labels)``, ``KLDivergence(logits)``, ``MSE``."""
    if takes_labels(cls):
        return f"{cls.__name__}(labels)"
    if any(p.name == "from_logits" for p in cls.params):
        return f"{cls.__name__}(logits)"
    return cls.__name__


def shapes(sizes: Sizes, cls) -> list[tuple[Shape, bool]]:
    """(shape, is_small_call) for every case of row ``cls``, smallest first."""
    if cls.family == "pointwise":
        return [((sizes.small,), True)] + [((n,), False) for n in sizes.pointwise]
    large = sizes.labels if takes_labels(cls) else sizes.dense
    return [((sizes.small // 10, 10), True)] + [(tuple(s), False) for s in large]


def make_data(loss, shape: Shape, dtype: str, seed: int) -> _peers.CaseData:
    """Input and target for ``loss`` from the reference's example data (labels where the
    loss takes them), and a gradient buffer."""
    rng = np.random.default_rng(seed)
    x = reference.example_input(loss, shape, rng, np.dtype(dtype))
    t = reference.example_target(loss, x, rng, labels=True)
    return _peers.CaseData(x, t, np.empty_like(x))


# ------------------------------------------------------------------ cases ----

class Mode(NamedTuple):
    """A row of the table: fastloss's candidate and the peers' candidates it is compared
    with (``<peer>.<suffix>``)."""

    label: str
    candidate: str
    peer_suffix: str


LOSS_MODES: tuple[Mode, ...] = (
    Mode("value", "fastloss.value", "value"),
    Mode("vg out=", "fastloss.vg_out", "vg"),
    Mode("vg", "fastloss.vg", "vg"),
)


@dataclass
class Setup:
    """A case made ready to measure: its candidates, facts for the results (``info``) and
    what each peer runs (``forms``)."""

    candidates: dict[str, Thunk]
    info: dict[str, Any] = field(default_factory=dict)
    forms: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    group: str                      #: the case group that made it
    loss: str                       #: the row's name
    label: str
    dtype: str
    shape: Shape
    small_call: bool
    params: dict[str, Any]
    modes: tuple[Mode, ...]
    #: (seed, threads, peers) -> Setup; makes the arrays, so call it just before measuring
    setup: Callable[[int, int, _peers.Peers], Setup]

    @property
    def weight(self) -> float:
        """Roughly how long the case takes, for the progress bar."""
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize / 4 + 2e5


def _loss_setup(loss, shape: Shape, dtype: str):
    def setup(seed: int, threads: int, peers: _peers.Peers) -> Setup:
        d = make_data(loss, shape, dtype, seed)
        cands, forms = _peers.loss_candidates(loss, d, threads, peers)
        info = {"elements": int(d.x.size), "floor_bytes": d.floor_bytes,
                "floor_reads": 1 if d.floor_b is None else 2}
        return Setup(cands, info, forms)
    return setup


def json_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in params.items()}


def loss_cases(preset: Preset, losses: Sequence[str], dtypes: Sequence[str]) -> Iterator[Case]:
    """Every selected loss of the table, in the table's order, at each dtype and shape."""
    for cls in table():
        if cls.name not in losses:
            continue
        loss = instance(cls)
        for dtype in dtypes:
            for shape, small in shapes(preset.sizes, cls):
                yield Case("losses", cls.name, label(cls), dtype, shape, small,
                           json_params(loss.get_params()), LOSS_MODES,
                           _loss_setup(loss, shape, dtype))


def torch_cases(preset: Preset, losses: Sequence[str], dtypes: Sequence[str]
                ) -> Iterator[Case]:
    """fastloss.torch's modules against torch.nn's (fastloss/bench/torch_cases.py; loaded
    only when this group runs)."""
    from . import torch_cases as _torch
    return _torch.torch_cases(preset, losses, dtypes)


#: Case groups by name: group(preset, loss names, dtypes) -> cases.
GROUPS: dict[str, Callable[[Preset, Sequence[str], Sequence[str]], Iterator[Case]]] = {
    "losses": loss_cases,
    "torch": torch_cases,
}

#: The groups a run has unless it names others (``--groups``).
DEFAULT_GROUPS: tuple[str, ...] = ("losses",)


# ------------------------------------------------------------------ thread scaling ----

@dataclass(frozen=True)
class ScalingCase:
    """One case timed at several thread counts: value_and_grad(out=) and the parallel
    floor."""

    loss: str
    label: str
    dtype: str
    shape: Shape
    instance: Any

    def candidates(self, seed: int, counts: Sequence[int]) -> dict[str, Thunk]:
        d = make_data(self.instance, self.shape, self.dtype, seed)
        cands: dict[str, Thunk] = {}
        for k in counts:
            cands[f"fastloss.vg_out@{k}"] = _peers.fastloss_candidates(
                self.instance, d, k)["fastloss.vg_out"]
            cands[f"floor.parallel@{k}"] = _peers.floor_candidates(d, k)["floor.parallel"]
        return cands

    def weight(self, counts: Sequence[int]) -> float:
        return math.prod(self.shape) * len(counts) + 2e5


def scaling_cases(preset: Preset, losses: Sequence[str], dtype: str) -> Iterator[ScalingCase]:
    rows = {cls.name: cls for cls in table()}
    for name, shape in preset.scaling:
        if name in rows and name in losses:
            cls = rows[name]
            yield ScalingCase(name, label(cls), dtype, tuple(shape), instance(cls))
