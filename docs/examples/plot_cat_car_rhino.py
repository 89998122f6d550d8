"""
Cat, car or rhino: categorical cross-entropy
============================================

A three-class softmax classifier trained by gradient descent on
:class:`~fastloss.CrossEntropy`.  Each object is described by two features, its weight
(log10 of kilograms) and how much of it is metal; a linear model maps them to three logits,
one per class.  fastloss returns the loss and its gradient with respect to the logits,
``G = dL/dlogits``; the model's gradients follow by the chain rule (``X^T G`` for the
weights, the column sums of ``G`` for the biases).
"""
import matplotlib.pyplot as plt
import numpy as np

import fastloss

CLASSES = ["cat", "car", "rhino"]
rng = np.random.default_rng(1)


def sample(n, log_kg, metal):
    return np.column_stack([rng.normal(log_kg[0], log_kg[1], n),
                            np.clip(rng.normal(metal[0], metal[1], n), 0.0, 1.0)])


X = np.vstack([sample(150, (0.6, 0.25), (0.05, 0.05)),      # cats: about 4 kg, no metal
               sample(150, (3.1, 0.15), (0.70, 0.12)),      # cars: about 1.3 t, mostly metal
               sample(150, (3.3, 0.15), (0.08, 0.08))])     # rhinos: about 2 t, no metal
y = np.repeat(np.arange(3), 150)
mean, scale = X.mean(axis=0), X.std(axis=0)
Xs = (X - mean) / scale

ce = fastloss.CrossEntropy()
W, b = np.zeros((2, 3)), np.zeros(3)
history = []
for step in range(400):
    value, G = ce.value_and_grad(Xs @ W + b, y)      # G: gradient of the mean loss
    history.append(value)
    W -= 1.0 * (Xs.T @ G)
    b -= 1.0 * G.sum(axis=0)
print(f"cross-entropy: {history[0]:.4f} at the start, {history[-1]:.4f} after "
      f"{len(history)} steps")


def probabilities(logits):
    """The model's probability of each class, from fastloss: the cross-entropy of a row
    with label c is -log p_c, so p_c = exp(-cross-entropy)."""
    rows = len(logits)
    return np.column_stack([np.exp(-ce(logits, np.full(rows, c), reduction="none"))
                            for c in range(logits.shape[1])])


# %%
# Decision regions and training
# -----------------------------
# The colour of each point of the plane is the class of highest probability, its
# brightness that probability.  Weight alone cannot tell a car from a rhino; metal can.

w_grid, m_grid = np.meshgrid(np.linspace(-0.5, 4.0, 300), np.linspace(-0.05, 1.05, 200))
plane = np.column_stack([w_grid.ravel(), m_grid.ravel()])
P = probabilities(((plane - mean) / scale) @ W + b)
colours = np.array([[0.95, 0.55, 0.15], [0.25, 0.45, 0.85], [0.45, 0.45, 0.45]])
image = (P.max(axis=1)[:, None] * colours[P.argmax(axis=1)]
         + (1 - P.max(axis=1))[:, None]).reshape(w_grid.shape + (3,))

fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained",
                         gridspec_kw={"width_ratios": [1.4, 1]})
axes[0].imshow(image, origin="lower", aspect="auto", extent=(-0.5, 4.0, -0.05, 1.05))
for c, (name, marker) in enumerate(zip(CLASSES, "os^")):
    axes[0].scatter(*X[y == c].T, s=16, marker=marker, color=colours[c], edgecolor="white",
                    lw=0.6, label=name)
axes[0].set(xlabel="weight: log10(kg)", ylabel="metal fraction", title="Decision regions")
axes[0].legend(loc="upper left")
axes[1].plot(history)
axes[1].set(xlabel="gradient-descent step", ylabel="cross-entropy (mean)",
            title="Training loss", yscale="log")
axes[1].grid(alpha=0.3)

# %%
# A few new objects
# -----------------
# The predicted probabilities of four objects the model has not seen, and each one's own
# cross-entropy against its true class (``reduction="none"``).  A rusty car with little
# metal left lies between cars and rhinos: the model is unsure there, and wrong, and its
# cross-entropy says so.

new = {"house cat (4.5 kg)": ([np.log10(4.5), 0.02], 0),
       "small car (900 kg)": ([np.log10(900), 0.65], 1),
       "young rhino (700 kg)": ([np.log10(700), 0.03], 2),
       "rusty car (1.2 t, 30 % metal)": ([np.log10(1200), 0.30], 1)}
features = np.array([f for f, _ in new.values()])
truth = np.array([c for _, c in new.values()])
logits = ((features - mean) / scale) @ W + b
P = probabilities(logits)
own = ce(logits, truth, reduction="none")

fig, ax = plt.subplots(figsize=(9, 3.8), layout="constrained")
left = np.zeros(len(new))
for c, name in enumerate(CLASSES):
    ax.barh(list(new), P[:, c], left=left, color=colours[c], label=name)
    left += P[:, c]
for i, loss in enumerate(own):
    ax.text(1.02, i, f"CE = {loss:.3f}", va="center")
ax.set(xlim=(0, 1.25), xlabel="predicted probability", title="Predictions")
ax.invert_yaxis()
fig.legend(loc="outside lower center", ncols=3, fontsize="small")
for name, p, loss in zip(new, P, own):
    print(f"{name:30s} " + "  ".join(f"{c} {pc:.3f}" for c, pc in zip(CLASSES, p))
          + f"   cross-entropy {loss:.3f}")

plt.show()
