"""
A line through outliers: MSE, MAE and Pseudo-Huber
==================================================

A straight line ``y = a u + b`` fitted by plain gradient descent to data with a cluster of
gross outliers, once per loss.  fastloss gives the loss and its gradient with respect to
the predictions in one call (``value_and_grad``); the chain rule turns that into the
gradient with respect to ``a`` and ``b``: ``dL/da = sum_i g_i u_i`` and
``dL/db = sum_i g_i``.
"""
import matplotlib.pyplot as plt
import numpy as np

import fastloss

rng = np.random.default_rng(0)
n = 200
u = rng.uniform(0.0, 10.0, n)
y = 0.8 * u + 1.0 + rng.normal(0.0, 0.5, n)
outlier = np.zeros(n, dtype=bool)
outlier[rng.choice(np.flatnonzero(u > 6.0), 20, replace=False)] = True   # 10 % of the data
y[outlier] -= rng.uniform(8.0, 12.0, outlier.sum())


def fit(loss, steps=3000, lr=0.08):
    """Gradient descent on (a, b); the input is centred so that one step size suits both."""
    uc = u - u.mean()
    a = b = 0.0
    history = []
    for k in range(steps):
        value, g = loss.value_and_grad(a * uc + b, y)     # g = dL / d prediction
        history.append(value)
        step = lr / np.sqrt(1.0 + k / 100)                 # a decaying step: MAE needs one
        a -= step * float(g @ uc)                         # dL/da
        b -= step * float(g.sum())                        # dL/db
    return a, b - a * u.mean(), np.array(history)


losses = {"MSE": fastloss.MSE(), "MAE": fastloss.MAE(),
          "Pseudo-Huber, delta = 1": fastloss.PseudoHuber(delta=1.0)}
fits = {label: fit(loss) for label, loss in losses.items()}

# %%
# The fitted lines
# ----------------
# MSE squares the outliers' large residuals and tilts the line towards them.  MAE fits the
# conditional median and ignores them; Pseudo-Huber, quadratic for small residuals and
# linear for large ones, does nearly the same while staying smooth.

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
ax.plot(u[~outlier], y[~outlier], ".", color="0.55", label="data")
ax.plot(u[outlier], y[outlier], "x", color="C3", label="outliers")
grid = np.array([0.0, 10.0])
ax.plot(grid, 0.8 * grid + 1.0, "k--", lw=1, label="line the clean data follow")
for label, (a, b, _) in fits.items():
    ax.plot(grid, a * grid + b, lw=2, label=f"{label}: y = {a:.2f} u + {b:.2f}")
ax.set(xlabel="u", ylabel="y", title="Fitted by gradient descent on fastloss's gradients")
ax.legend(fontsize="small")
ax.grid(alpha=0.3)

for label, (a, b, history) in fits.items():
    print(f"{label:24s} a = {a:.3f}, b = {b:.3f}, final loss {history[-1]:.4f}")

# %%
# How hard each point pulls
# -------------------------
# The gradient of each point's own loss (``reduction="none"``) at each fit is the force
# with which it pulls the line.  Under MSE it grows with the residual, so the outliers
# dominate; under MAE every point pulls with the same force, and under Pseudo-Huber no
# point pulls harder than ``delta``.

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained", sharey=False)
for ax, (label, loss) in zip(axes, losses.items()):
    a, b, _ = fits[label]
    pred = a * u + b
    _, g = loss.value_and_grad(pred, y, reduction="none")
    ax.plot((pred - y)[~outlier], g[~outlier], ".", color="0.55")
    ax.plot((pred - y)[outlier], g[outlier], "x", color="C3")
    ax.set(title=label, xlabel="residual at the fit", ylabel="dl/dx")
    ax.grid(alpha=0.3)

# %%
# Convergence
# -----------
# The loss at each step, as returned by ``value_and_grad`` (each on its own scale).  MSE
# and Pseudo-Huber settle; MAE keeps jittering, because its gradient does not shrink near
# the optimum: each step overshoots by about the step size, which only the decaying
# schedule brings down.

fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
for label, (_, _, history) in fits.items():
    ax.semilogy(history - history.min() + 1e-6, label=label)
ax.set(xlabel="gradient-descent step", ylabel="loss - smallest loss", title="Convergence")
ax.legend(fontsize="small")
ax.grid(alpha=0.3)

plt.show()
