"""
Streaming evaluation: one number, however the data arrive
=========================================================

A validation set too large for memory, or spread over workers, arrives in batches.
:class:`~fastloss.Accumulator` evaluates a loss over the batches and gives the value one
call over all the data would give: it keeps the *exact* sums of the kernels' fixed-size
block sums and rounds once at the end.  So the result does not depend on the merge order,
the number of workers or threads; and when the batches are cut at multiples of 4096 rows
(the kernels' block), it is the single call's value bit for bit.
"""
import contextlib
import io
import json
import random
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import fastloss
from fastloss.__main__ import main as fastloss_cli

rng = np.random.default_rng(0)
n, n_classes = 100_000, 10
labels = rng.integers(0, n_classes, n)
logits = rng.normal(size=(n, n_classes)).astype(np.float32)
logits[np.arange(n), labels] += 1.5            # a model that is right more often than not
class_weight = np.linspace(0.5, 3.0, n_classes)   # rare classes count more
loss = fastloss.CrossEntropy(class_weight=class_weight, label_smoothing=0.1)
single_call = loss(logits, labels)
print(f"one call over all {n:,} rows: {single_call!r}")

# %%
# Batch by batch
# --------------
# The running mean after each batch of 8192 rows settles on the single call's value; the
# last one *is* that value, to the last bit.  Averaging the batches' own means would not
# give it: the batches differ in size (the last one is short) and, with class weights,
# the mean divides by each batch's sum of class weights, not by its number of rows.

batch = 8192
acc = fastloss.Accumulator(loss)
running, batch_means = [], []
for lo in range(0, n, batch):
    x, y = logits[lo:lo + batch], labels[lo:lo + batch]
    acc.update(x, y)
    running.append(acc.result())
    batch_means.append(loss(x, y))
mean_of_means = float(np.mean(batch_means))
print(f"accumulated over {len(running)} batches:  {acc.result()!r} "
      f"(bitwise equal: {acc.result() == single_call})")
print(f"mean of the batch means: {mean_of_means!r} "
      f"(off by {abs(mean_of_means - single_call) / single_call:.1e} relative)")

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
rows = np.minimum(np.arange(1, len(running) + 1) * batch, n)
axes[0].plot(rows, running, "o-", label="Accumulator: running mean")
axes[0].axhline(single_call, color="k", ls="--", lw=1, label="one call over all rows")
axes[0].set(title="weighted cross-entropy, batches of 8192 rows", xlabel="rows seen",
            ylabel="mean loss")
axes[0].legend()
axes[1].bar(np.arange(len(batch_means)), batch_means, color="C1", alpha=0.6,
            label="each batch's own mean")
axes[1].axhline(single_call, color="k", ls="--", lw=1, label="one call = accumulated")
axes[1].axhline(mean_of_means, color="C3", lw=1.5, label="mean of the batch means")
lo_y = min(batch_means) - 0.01
axes[1].set(title="batch means scatter; their average is not the mean", xlabel="batch",
            ylabel="mean loss", ylim=(lo_y, max(batch_means) + 0.01))
axes[1].legend(fontsize="small", loc="lower left")
for ax in axes:
    ax.grid(alpha=0.3)

# %%
# Batches of other sizes are cut inside the kernels' 4096-row blocks, whose sums then
# round differently: the result may move in its last bits (1e-16 relative), never more.
# Multiples of 4096 rows give the single call's bits exactly.

for size in (1000, 3333, 4096, 5000, 12288, 30000):
    a = fastloss.Accumulator(loss)
    for lo in range(0, n, size):
        a.update(logits[lo:lo + size], labels[lo:lo + size])
    rel = abs(a.result() - single_call) / single_call
    print(f"batches of {size:6d} rows: {a.result()!r}, relative difference {rel:.1e}")

# %%
# Workers, in any order
# ---------------------
# Eight workers each accumulate a share of the batches; their accumulators merge in any
# order (or tree) into the same bits.  An accumulator's state is a small dict of NumPy
# arrays that pickles (``acc.state()``, ``Accumulator.from_state(loss, state)``).

parts = [fastloss.Accumulator(loss) for _ in range(8)]
for k, lo in enumerate(range(0, n, 5000)):
    parts[k % 8].update(logits[lo:lo + 5000], labels[lo:lo + 5000])
results = set()
for seed in range(20):
    order = random.Random(seed).sample(parts, len(parts))
    total = order[0].copy()
    for p in order[1:]:
        total.merge(p)
    results.add(total.result())
print(f"20 merge orders give {len(results)} distinct value(s): {sorted(results)}")
print(f"state of one accumulator: {sorted(parts[0].state())}")

# %%
# Files, from the command line
# ----------------------------
# ``python -m fastloss eval`` streams arrays from files (.npy memory-mapped, .npz,
# Parquet or Arrow columns) through an accumulator, in batches of 64 MiB of data
# (a multiple of 4096 rows) by default, so memory stays at a few batches whatever the
# size of the files.  Here it is called in-process on two .npy files.

with tempfile.TemporaryDirectory() as tmp:
    np.save(Path(tmp) / "logits.npy", logits)
    np.save(Path(tmp) / "labels.npy", labels)
    np.save(Path(tmp) / "class_weight.npy", class_weight)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fastloss_cli(["eval", "cross_entropy", str(Path(tmp) / "logits.npy"),
                      str(Path(tmp) / "labels.npy"), "--param", "label_smoothing=0.1",
                      "--param", f"class_weight={Path(tmp) / 'class_weight.npy'}",
                      "--json", "--no-progress"])
report = json.loads(out.getvalue())
print({k: report[k] for k in ("loss", "value", "rows", "batches")})
print(f"equal to the single call: {report['value'] == single_call}")
