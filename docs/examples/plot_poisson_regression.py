"""
Counts: Poisson regression with PoissonNLL
==========================================

Counts -- arrivals per hour, clicks per page, mutations per gene -- are not Gaussian: their
spread grows with their mean, and they are never negative.  A Poisson model predicts the
log of the rate, ``log lambda = a u + b``, and :class:`~fastloss.PoissonNLL` is its negative
log-likelihood, ``exp(x) - t x`` with ``x`` the predicted log-rate.

The same data are fitted twice: with PoissonNLL on the log-rate, by Newton's method on the
gradient and Hessian that ``grad_hess`` returns, and with MSE on the rate itself,
``exp(a u + b)``, by gradient descent.
"""
import matplotlib.pyplot as plt
import numpy as np

import fastloss

rng = np.random.default_rng(3)
TRUE_A, TRUE_B = 0.7, -0.5
u = rng.uniform(0.0, 4.0, 300)
U = np.column_stack([u, np.ones_like(u)])            # the log-rate is U @ (a, b)
poisson, mse = fastloss.PoissonNLL(), fastloss.MSE()


def fit_poisson(counts, steps=12):
    """Newton's method: for a linear model the gradient is U^T g and the Hessian
    U^T diag(h) U, with g and h from grad_hess (per point, summed)."""
    theta = np.zeros(2)
    for _ in range(steps):
        g, h = poisson.grad_hess(U @ theta, counts)
        theta -= np.linalg.solve(U.T @ (h[:, None] * U), U.T @ g)
    return theta


def fit_mse_on_rate(counts, steps=3000, lr=0.002):
    """Gradient descent; the loss compares exp(U theta) with the counts, so the chain
    rule multiplies MSE's gradient by exp(U theta)."""
    theta = np.zeros(2)
    for _ in range(steps):
        rate = np.exp(U @ theta)
        _, g = mse.value_and_grad(rate, counts)
        theta -= lr * (U.T @ (g * rate))
    return theta


counts = rng.poisson(np.exp(TRUE_A * u + TRUE_B)).astype(float)
a_p, b_p = fit_poisson(counts)
a_m, b_m = fit_mse_on_rate(counts)
print(f"PoissonNLL: log rate = {a_p:.3f} u {b_p:+.3f}")
print(f"MSE:        log rate = {a_m:.3f} u {b_m:+.3f}")
print(f"(the data were drawn with log rate = {TRUE_A:.3f} u {TRUE_B:+.3f})")

# %%
# The fitted rates
# ----------------
# On one data set both fits find the trend.  The right panel shows each point's gradient
# under PoissonNLL at its fit, ``exp(x) - t``: its spread grows with the rate, as the
# Poisson model expects.

grid = np.linspace(0.0, 4.0, 200)
fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
axes[0].plot(u, counts, ".", color="0.55", label="counts")
axes[0].plot(grid, np.exp(TRUE_A * grid + TRUE_B), "k--", lw=1, label="true rate")
axes[0].plot(grid, np.exp(a_p * grid + b_p), lw=2, label="PoissonNLL fit")
axes[0].plot(grid, np.exp(a_m * grid + b_m), lw=2, label="MSE fit on the rate")
axes[0].set(xlabel="u", ylabel="count", title="Poisson regression")
axes[0].legend(fontsize="small")
_, g = poisson.value_and_grad(a_p * u + b_p, counts, reduction="none")
axes[1].plot(u, g, ".", color="C0")
axes[1].axhline(0.0, color="k", lw=0.8)
axes[1].set(xlabel="u", ylabel="exp(x) - t", title="Per-point gradient at the Poisson fit")
for ax in axes:
    ax.grid(alpha=0.3)

# %%
# Over many data sets
# -------------------
# The difference shows when the experiment is repeated: 40 data sets drawn from the same
# model, each fitted both ways.  MSE weighs every squared error alike, so the large counts
# on the right, whose spread is widest, move its estimate most; the Poisson likelihood
# expects that spread and weighs those points less.  Its slopes scatter less around the
# true value.

slopes = {"PoissonNLL": [], "MSE on the rate": []}
for _ in range(40):
    redrawn = rng.poisson(np.exp(TRUE_A * u + TRUE_B)).astype(float)
    slopes["PoissonNLL"].append(fit_poisson(redrawn)[0])
    slopes["MSE on the rate"].append(fit_mse_on_rate(redrawn, steps=1500)[0])

fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
bins = np.linspace(0.5, 0.9, 33)
for label, values in slopes.items():
    ax.hist(values, bins=bins, alpha=0.6, label=f"{label}: spread (std) {np.std(values):.4f}")
    print(f"{label:16s} slope: mean {np.mean(values):.4f}, std {np.std(values):.4f}")
ax.axvline(TRUE_A, color="k", ls="--", lw=1, label="true slope")
ax.set(xlabel="fitted slope a", ylabel="data sets", title="Slopes fitted to 40 data sets")
ax.legend(fontsize="small")

plt.show()
