"""
Training a PyTorch model with fastloss.torch
============================================

``fastloss.torch`` has PyTorch's loss modules under their own names, with the same
constructors, options and results, but with a forward pass that computes the loss and its
gradient together, in one pass over the data, on fastloss's kernels.  Swapping the loss of
a training loop is a one-line change::

    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)          # before
    criterion = fastloss.torch.CrossEntropyLoss(label_smoothing=0.1)    # after

This example trains the same small classifier twice, once with each loss, from the same
initial weights and on the same batches, and plots both loss curves: they lie on top of
each other.  (Inputs below a few thousand values go to PyTorch's own loss, which is
faster there: ``fastloss.torch.functional.SMALL``.  This example's batches, 1024 x 10,
are fastloss's.)
"""

# %%
# Data: ten interleaved spirals, 10 classes
# -----------------------------------------
import matplotlib.pyplot as plt
import torch

import fastloss.torch

torch.manual_seed(0)
n_per_class, classes = 500, 10
t = torch.linspace(0.0, 1.0, n_per_class)
points, labels = [], []
for c in range(classes):
    angle = 3.0 * t + 2.0 * torch.pi * c / classes + 0.1 * torch.randn(n_per_class)
    points.append(torch.stack([t * torch.cos(angle), t * torch.sin(angle)], dim=1))
    labels.append(torch.full((n_per_class,), c))
x, y = torch.cat(points), torch.cat(labels)

# %%
# The model and the training loop
# -------------------------------
# The loop is ordinary PyTorch; only ``criterion`` changes between the two runs.


def make_model():
    torch.manual_seed(1)                    # the same initial weights for both runs
    return torch.nn.Sequential(torch.nn.Linear(2, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, classes))


def train(criterion, steps=150, batch=1024):
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    batches = torch.Generator().manual_seed(2)      # the same batches for both runs
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=batches)
        optimizer.zero_grad()
        loss = criterion(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():                           # evaluation: the value-only kernels
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    return losses, accuracy


torch_losses, torch_acc = train(torch.nn.CrossEntropyLoss(label_smoothing=0.05))
fl_losses, fl_acc = train(fastloss.torch.CrossEntropyLoss(label_smoothing=0.05))
print(f"accuracy: torch.nn {torch_acc:.3f}, fastloss.torch {fl_acc:.3f}")
print(f"largest difference between the loss curves: "
      f"{max(abs(a - b) for a, b in zip(torch_losses, fl_losses, strict=True)):.2e}")

# %%
# The loss curves
# ---------------
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(torch_losses, label="torch.nn.CrossEntropyLoss", linewidth=3, alpha=0.5)
ax.plot(fl_losses, label="fastloss.torch.CrossEntropyLoss", linewidth=1, linestyle="--")
ax.set_xlabel("SGD step")
ax.set_ylabel("training loss (batch of 1024)")
ax.set_yscale("log")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# What changed, and what did not
# ------------------------------
# * The module is a ``torch.nn.CrossEntropyLoss`` (a subclass): ``state_dict``,
#   ``repr`` and ``isinstance`` checks are PyTorch's.
# * ``loss.backward()`` hands on the gradient computed in the forward pass; the gradient
#   that reaches the model is the same, to rounding, so training follows the same path.
# * Under ``torch.no_grad()`` only the loss value is computed.
# * The speed-up grows with the size of the loss's input (at 1024 x 10 per-call costs
#   still weigh): see the benchmark group ``torch``
#   (``python -m fastloss bench --groups torch``).
