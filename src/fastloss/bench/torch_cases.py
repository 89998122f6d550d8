"""The ``torch`` case group: fastloss.torch's modules against torch.nn's, in training use.

Each case is one module at one shape, with two rows:

* ``fwd+bwd``: ``x.grad = None; module(x, t).backward()`` on a leaf ``x``, fastloss.torch's
  module (``fastloss.fwd_bwd``) against torch.nn's (``torch.fwd_bwd``);
* ``forward``: the value under ``torch.no_grad()`` (``fastloss.value``, ``torch.value``;
  both return ``.item()``, so that the suite checks that they agree);

and one case is a whole training step of an MLP (``train step``: ``zero_grad``, forward,
loss, backward, SGD step) with either loss, on two copies of one model.  Both libraries
run at the suite's thread count (``torch.set_num_threads``, which fastloss.torch follows).
The group needs PyTorch; without it, it has no cases.

:data:`BARS` lists the speed-ups the issue that introduced fastloss.torch asked for;
``bench/torch_bars.py`` runs this group and checks them.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import peers as _peers
from .cases import PRESETS, Case, Mode, Preset, Setup, Shape

GROUP = "torch"

MODES = (Mode("fwd+bwd", "fastloss.fwd_bwd", "fwd_bwd"),
         Mode("forward", "fastloss.value", "value"))
TRAIN_MODES = (Mode("train step", "fastloss.train", "train"),)


@dataclass(frozen=True)
class TorchCase:
    """A module, its options, the table row it runs on (for ``--losses``), its data."""

    module: str                     #: the class name in torch.nn and fastloss.torch
    loss: str                       #: the row of fastloss's table it runs
    shape: Shape
    data: str                       #: "labels", "real", "probability", "logprob", "count"
    options: tuple = ()             #: (name, value) pairs for the constructor

    @property
    def label(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options)
        return f"nn.{self.module}({opts})"


def _cases_for(pointwise: int, ce: Sequence[Shape], small: Shape) -> list[TorchCase]:
    n = (pointwise,)
    rows = (pointwise // 100, 100)
    return ([TorchCase("CrossEntropyLoss", "cross_entropy", s, "labels") for s in ce]
            + [TorchCase("CrossEntropyLoss", "cross_entropy", small, "labels"),
               TorchCase("MSELoss", "mse", n, "real"),
               TorchCase("L1Loss", "mae", n, "real"),
               TorchCase("HuberLoss", "huber", n, "real"),
               TorchCase("SmoothL1Loss", "huber", n, "real", (("beta", 0.5),)),
               TorchCase("PseudoHuberLoss", "pseudo_huber", n, "real"),
               TorchCase("BCEWithLogitsLoss", "binary_cross_entropy", n, "probability"),
               TorchCase("BCELoss", "binary_cross_entropy", n, "probability"),
               TorchCase("KLDivLoss", "kl_div", rows, "logprob",
                         (("reduction", "batchmean"),)),
               TorchCase("PoissonNLLLoss", "poisson_nll", n, "count")])


#: Shapes by preset: the issue's bars in "full", smaller ones for "quick" and "smoke";
#: "mlp" is (inputs, hidden, classes, batch) of the training step.
SIZES: dict[str, dict[str, Any]] = {
    "full": {"cases": _cases_for(10**7, [(20_000, 1_000), (32, 21, 128, 128)], (256, 10)),
             "mlp": (1024, 512, 1000, 4096)},
    "quick": {"cases": _cases_for(10**6, [(2_000, 1_000), (4, 21, 64, 64)], (256, 10)),
              "mlp": (256, 128, 100, 512)},
    "smoke": {"cases": _cases_for(10**3, [(16, 10), (2, 5, 4, 4)], (8, 10)),
              "mlp": (16, 8, 5, 32)},
}

#: The issue's bars, float32 at 2 threads: (module, shape, mode) -> least speed-up over
#: torch.nn (torch time / fastloss time).  1.0 for the small batch: no slower.
BARS: dict[tuple[str, Shape, str], float] = {
    ("CrossEntropyLoss", (20_000, 1_000), "fwd+bwd"): 6.0,
    ("CrossEntropyLoss", (32, 21, 128, 128), "fwd+bwd"): 4.0,
    ("MSELoss", (10**7,), "fwd+bwd"): 4.0,
    ("BCEWithLogitsLoss", (10**7,), "fwd+bwd"): 4.0,
    ("CrossEntropyLoss", (256, 10), "fwd+bwd"): 1.0,
    ("MLP", (4096, 1000), "train step"): 1.0,
}


def _data(torch, case: TorchCase, dtype, seed: int):
    g = torch.Generator().manual_seed(seed)
    shape = case.shape
    x = torch.randn(shape, generator=g, dtype=dtype) * 2
    if case.data == "labels":
        C = shape[1] if len(shape) > 1 else shape[0]
        t = torch.randint(0, C, shape[:1] + shape[2:], generator=g)
    elif case.data == "probability":
        t = torch.rand(shape, generator=g, dtype=dtype)
        if case.module == "BCELoss":
            x = torch.sigmoid(x)
    elif case.data == "logprob":
        x = torch.log_softmax(x, -1)
        t = torch.softmax(torch.randn(shape, generator=g, dtype=dtype), -1)
    elif case.data == "count":
        t = torch.poisson(torch.full(shape, 2.0, dtype=dtype), generator=g)
    else:
        t = torch.randn(shape, generator=g, dtype=dtype)
    return x, t


def _module_setup(case: TorchCase, dtype: str):
    def setup(seed: int, threads: int, peers: _peers.Peers) -> Setup:
        import torch

        import fastloss.torch as flt
        tdtype = getattr(torch, dtype)
        x, t = _data(torch, case, tdtype, seed)
        leaf = x.clone().requires_grad_()
        opts = dict(case.options)
        ours = getattr(flt, case.module)(**opts)
        cands = _candidates("fastloss", torch, ours, x, leaf, t)
        forms = {}
        theirs = getattr(torch.nn, case.module, None)
        if peers.torch is not None:
            if theirs is not None:
                theirs = theirs(**opts)
                forms["torch"] = f"torch.nn.{case.module}"
            else:                   # PyTorch has no Pseudo-Huber: its formula
                theirs = _pseudo_huber_formula(torch)
                forms["torch"] = "reference.torch_pseudo_huber(x, t).mean()"
            cands.update(_candidates("torch", torch, theirs, x, leaf, t))
        return Setup(cands, {"elements": int(x.numel())}, forms)
    return setup


def _pseudo_huber_formula(torch):
    from . import reference

    def loss(x, t):
        return reference.torch_pseudo_huber(x, t).mean()
    return loss


def _candidates(who: str, torch, module, x, leaf, t) -> dict[str, Callable]:
    def fwd_bwd():
        leaf.grad = None
        module(leaf, t).backward()

    def value():
        with torch.no_grad():
            return module(x, t).item()

    return {f"{who}.fwd_bwd": fwd_bwd, f"{who}.value": value}


def _train_setup(sizes: tuple, dtype: str):
    d_in, hidden, classes, batch = sizes

    def setup(seed: int, threads: int, peers: _peers.Peers) -> Setup:
        import torch

        import fastloss.torch as flt
        tdtype = getattr(torch, dtype)
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, d_in, generator=g, dtype=tdtype)
        y = torch.randint(0, classes, (batch,), generator=g)
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.ReLU(),
                                    torch.nn.Linear(hidden, classes)).to(tdtype)

        def step_of(criterion):             # its own copy of the model and optimizer
            m = copy.deepcopy(model)
            opt = torch.optim.SGD(m.parameters(), lr=1e-3)

            def step():
                opt.zero_grad()
                criterion(m(x), y).backward()
                opt.step()
            return step
        cands = {"fastloss.train": step_of(flt.CrossEntropyLoss())}
        forms = {}
        if peers.torch is not None:
            cands["torch.train"] = step_of(torch.nn.CrossEntropyLoss())
            forms["torch"] = "torch.nn.CrossEntropyLoss"
        return Setup(cands, {"elements": batch * classes}, forms)
    return setup


def _torch_available() -> bool:
    return _peers._optional("torch") is not None


def torch_cases(preset: Preset, losses: Sequence[str], dtypes: Sequence[str]
                ) -> Iterator[Case]:
    """The group's cases for a preset (its sizes above), the selected rows of the table
    and dtypes; none without PyTorch."""
    if not _torch_available():
        return
    name = next((k for k, v in PRESETS.items() if v is preset), "full")
    sizes = SIZES.get(name, SIZES["full"])
    for dtype in dtypes:
        for c in sizes["cases"]:
            if c.loss not in losses:
                continue
            small = math.prod(c.shape) < 10_000
            yield Case(GROUP, f"torch.{c.module}", c.label, dtype, c.shape, small,
                       dict(c.options), MODES, _module_setup(c, dtype))
        if "cross_entropy" in losses:
            d_in, hidden, classes, batch = sizes["mlp"]
            yield Case(GROUP, "torch.MLP", f"MLP {d_in}-{hidden}-{classes} + SGD", dtype,
                       (batch, classes), False, {"layers": [d_in, hidden, classes]},
                       TRAIN_MODES, _train_setup(sizes["mlp"], dtype))
