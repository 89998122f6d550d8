"""
Cross-entropy over a large vocabulary, without the logits
=========================================================

A language model's loss is ``cross_entropy(hidden @ weight.T, target)`` over a vocabulary
of ``V`` tokens: the logits are an ``N x V`` array, the largest of the training step.
:class:`fastloss.LinearCrossEntropy` computes the loss and its gradients with respect to
``hidden`` and ``weight`` a block of rows at a time, so that only one block of logits
exists.  This page shows the memory that saves: measured on the two shapes of the
benchmark (``bench/linear_ce.py``, results committed with the code), and measured here,
on a small model, as the batch grows.
"""
import json
import tracemalloc
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import fastloss
from fastloss import linear

# %%
# Two language-model shapes
# -------------------------
# The benchmark runs each side in its own process and reads its peak resident memory;
# "extra" is that peak less the inputs and the gradients both sides return.  PyTorch's
# ``cross_entropy(linear(...))`` keeps the logits, their log-softmax and, in backward,
# gradients of that size; fastloss keeps one block of logits, whose rows
# ``fastloss.linear.block_rows`` chooses from the shapes (at most 128 MiB of logits).
# Where the results file is missing, the fastloss bars are that block's size.

#: the benchmark's run these bars show (bench/linear_ce.py --json ...)
RESULTS = Path("bench") / "results" / "linear-ce-2026-12-01.json"
results = None
here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
for folder in (here.parent.parent, Path.cwd(), Path.cwd().parent, Path.cwd().parent.parent):
    if (folder / RESULTS).is_file():
        results = json.loads((folder / RESULTS).read_text())
        break

shapes = [(4096, 1024, 32000), (2048, 2048, 128000)]
labels, torch_mib, fused_mib, block_mib = [], [], [], []
for n, h, v in shapes:
    rows = linear.block_rows(n, v, np.dtype(np.float32))
    block_mib.append(rows * v * 4 / 2**20)
    labels.append(f"N={n}, H={h}\nV={v}\n({rows} rows a block)")
    case = None if results is None else next(
        (c for c in results["cases"] if c["shape"] == [n, h, v]), None)
    if case is not None:
        torch_mib.append(case["sides"]["torch"]["extra_bytes"] / 2**20)
        fused_mib.append(case["sides"]["fastloss"]["extra_bytes"] / 2**20)
    else:
        torch_mib.append(np.nan)
        fused_mib.append(block_mib[-1])

fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
pos = np.arange(len(shapes))
ax.bar(pos - 0.2, torch_mib, 0.4, label="PyTorch: cross_entropy(linear(...))",
       color="#c44e52")
ax.bar(pos + 0.2, fused_mib, 0.4, label="fastloss.LinearCrossEntropy", color="#4c72b0")
for p, t, f in zip(pos, torch_mib, fused_mib):
    if np.isfinite(t):
        ax.annotate(f"{t:.0f} MiB", (p - 0.2, t), ha="center", va="bottom")
        ax.annotate(f"{f:.0f} MiB\n({t / f:.0f}x less)", (p + 0.2, f), ha="center",
                    va="bottom")
    else:
        ax.annotate(f"{f:.0f} MiB", (p + 0.2, f), ha="center", va="bottom")
ax.set_xticks(pos, labels)
ax.set_ylabel("peak memory beyond inputs and gradients (MiB)")
ax.set_title("Forward + backward, float32" + (
    f", {results['threads']} threads" if results else ""))
ax.margins(y=0.2)
ax.legend(loc="upper left")

# %%
# As the batch grows
# ------------------
# A small model here (``H = 32``, ``V = 8000``), with ``block_rows=256`` so that a batch
# spans several blocks: the peak of NumPy's allocations (``tracemalloc``) during one
# ``value_and_grad``, less the returned gradients, against the same loss from the full
# logits (``x @ W.T`` then :class:`fastloss.CrossEntropy` and the two products).  The
# logits grow with the batch; the block does not.  Both give the same loss.

rng = np.random.default_rng(0)
H, V = 32, 8000
weight = rng.standard_normal((V, H), dtype=np.float32) * np.float32(0.2)
batches = [256, 512, 1024, 2048, 4096]
fused, full = [], []
for n in batches:
    hidden = rng.standard_normal((n, H), dtype=np.float32)
    target = rng.integers(0, V, n)
    tracemalloc.start()
    value, grads = fastloss.LinearCrossEntropy().value_and_grad(hidden, weight, target,
                                                                block_rows=256)
    fused.append((tracemalloc.get_traced_memory()[1] - sum(g.nbytes for g in grads)) / 2**20)
    tracemalloc.stop()
    tracemalloc.start()
    logits = hidden @ weight.T
    value_full, grad_logits = fastloss.CrossEntropy().value_and_grad(logits, target)
    gx, gw = grad_logits @ weight, grad_logits.T @ hidden
    full.append((tracemalloc.get_traced_memory()[1] - gx.nbytes - gw.nbytes) / 2**20)
    tracemalloc.stop()
    del logits, grad_logits
    assert abs(value - value_full) <= 1e-5 * abs(value_full)

fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
ax.plot(batches, full, "o-", color="#c44e52", label="from the full logits")
ax.plot(batches, fused, "o-", color="#4c72b0", label="LinearCrossEntropy, 256 rows a block")
ax.set(xscale="log", yscale="log", xlabel="batch rows N",
       ylabel="peak extra memory (MiB)", title=f"H = {H}, V = {V}, float32")
ax.minorticks_off()
ax.set_xticks(batches, [str(b) for b in batches])
ax.legend()
plt.show()
