"""
The softmax cross-entropy surface
=================================

Three classes with logits ``(z_0, z_1, 0)`` and the true class 0: the cross-entropy
``-log softmax(z)_0`` as a surface over ``(z_0, z_1)``, and its gradient.  One call of
``value_and_grad`` with ``reduction="none"`` computes the loss and gradient of every point
of the grid at once (each row of the input is one point).
"""
import matplotlib.pyplot as plt
import numpy as np

import fastloss

z = np.linspace(-6.0, 6.0, 121)
z0, z1 = np.meshgrid(z, z)
logits = np.stack([z0.ravel(), z1.ravel(), np.zeros(z0.size)], axis=1)    # (121*121, 3)
labels = np.zeros(len(logits), dtype=np.int64)                             # true class: 0

ce = fastloss.CrossEntropy()
loss, grad = ce.value_and_grad(logits, labels, reduction="none")
loss = loss.reshape(z0.shape)

# %%
# The surface
# -----------
# The loss falls towards 0 as ``z_0`` rises above the other logits, and grows linearly (like
# the margin ``max(z_1, 0) - z_0``) when another class wins: cross-entropy never saturates
# on a wrong answer.

fig = plt.figure(figsize=(7, 5), layout="constrained")
ax = fig.add_subplot(projection="3d")
ax.plot_surface(z0, z1, loss, cmap="viridis", linewidth=0, antialiased=True)
ax.set(xlabel="$z_0$ (true class)", ylabel="$z_1$", zlabel="cross-entropy",
       title=r"$-\log\,\mathrm{softmax}(z_0, z_1, 0)_0$")
ax.view_init(elev=28, azim=-130)

# %%
# Contours and the gradient
# -------------------------
# The arrows are the negative gradient ``-(dl/dz_0, dl/dz_1)`` that gradient descent
# follows: ``p - onehot``, so it pushes ``z_0`` up and ``z_1`` down, and fades where the
# model is already confident and right.

g = grad.reshape(z0.shape + (3,))
fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
cs = ax.contourf(z0, z1, loss, levels=20, cmap="viridis")
fig.colorbar(cs, ax=ax, label="cross-entropy")
s = slice(None, None, 10)
ax.quiver(z0[s, s], z1[s, s], -g[s, s, 0], -g[s, s, 1], color="white", alpha=0.85)
ax.set(xlabel="$z_0$ (true class)", ylabel="$z_1$", title="Loss and negative gradient")

# %%
# Label smoothing
# ---------------
# Along the line ``z = (m, 0, 0)``: without smoothing the loss keeps falling as the margin
# ``m`` grows, so a model is rewarded for ever larger logits.  With ``label_smoothing`` the
# target keeps some weight on every class and the loss has a minimum at a finite margin,
# where its gradient crosses zero.

m = np.linspace(-4.0, 12.0, 321)
line = np.stack([m, np.zeros_like(m), np.zeros_like(m)], axis=1)
zero = np.zeros(len(m), dtype=np.int64)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
for eps in (0.0, 0.05, 0.2):
    value, gm = fastloss.CrossEntropy(label_smoothing=eps).value_and_grad(
        line, zero, reduction="none")
    (l,) = axes[0].plot(m, value, label=f"label_smoothing = {eps:g}")
    axes[1].plot(m, gm[:, 0], color=l.get_color())
    if eps > 0:
        best = np.argmin(value)
        axes[0].plot(m[best], value[best], "o", color=l.get_color())
        print(f"label_smoothing = {eps:g}: smallest loss {value[best]:.4f} at margin "
              f"{m[best]:.2f}")
axes[0].set(xlabel="margin m", ylabel="cross-entropy", title="loss along z = (m, 0, 0)")
axes[1].set(xlabel="margin m", ylabel=r"$\partial l / \partial z_0$", title="its derivative")
axes[0].legend(fontsize="small")
for ax in axes:
    ax.grid(alpha=0.3)

plt.show()
