"""
Pseudo-Huber at several deltas
==============================

:class:`~fastloss.PseudoHuber` ``delta^2 (sqrt(1 + (r / delta)^2) - 1)`` behaves like
``r^2 / 2`` for residuals well inside ``delta`` and like ``delta |r|`` far outside it.
``delta`` sets where one regime hands over to the other, and it bounds the gradient:
``|dl/dx| < delta``.
"""
import matplotlib.pyplot as plt
import numpy as np

import fastloss

residual = np.linspace(-15.0, 15.0, 1501)
target = np.zeros_like(residual)
deltas = (0.5, 1.0, 2.0, 5.0)

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for delta in deltas:
    value, grad = fastloss.PseudoHuber(delta=delta).value_and_grad(
        residual, target, reduction="none")
    width = 2.5 if delta == 5.0 else 1.2
    axes[0].plot(residual, value, lw=width, label=f"delta = {delta:g}")
    axes[1].plot(residual, grad, lw=width, label=f"delta = {delta:g}")
half_mse, half_mse_grad = fastloss.MSE().value_and_grad(residual, target, reduction="none")
axes[0].plot(residual, half_mse / 2, "k:", label="r² / 2 (MSE / 2)")
axes[1].plot(residual, half_mse_grad / 2, "k:", label="r (MSE / 2)")
axes[1].axhline(5.0, color="C3", ls="--", lw=0.8)
axes[1].axhline(-5.0, color="C3", ls="--", lw=0.8)
axes[1].annotate("±delta = ±5: the bound\nof the gradient at delta = 5", (10.0, -5.0),
                 xytext=(2.0, -9.5), arrowprops={"arrowstyle": "->"}, fontsize="small")
axes[0].set(title="Pseudo-Huber loss", xlabel="residual r", ylim=(-2, 60))
axes[1].set(title="its derivative  r / sqrt(1 + (r / delta)²)", xlabel="residual r",
            ylim=(-11, 11))
axes[0].legend(fontsize="small")
for ax in axes:
    ax.grid(alpha=0.3)

# %%
# delta = 5 and its derivative
# ----------------------------
# At ``delta = 5`` the loss follows ``r^2 / 2`` up to residuals of about 2 (the gradient is
# within 10 % of ``r`` there) and approaches a slope of 5 only slowly.  Huber's loss with the
# same ``delta`` is exactly ``r^2 / 2`` up to 5 and exactly linear beyond, so its second
# derivative jumps from 1 to 0; Pseudo-Huber's changes smoothly, which suits Newton steps
# and gradient boosting.

delta = 5.0
pseudo, huber = fastloss.PseudoHuber(delta), fastloss.Huber(delta)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
for label, loss in (("Pseudo-Huber", pseudo), ("Huber", huber)):
    value, grad = loss.value_and_grad(residual, target, reduction="none")
    _, hess = loss.grad_hess(residual, target, reduction="none")
    axes[0].plot(residual, value, label=f"{label}, delta = 5")
    axes[1].plot(residual, grad, label=label)
    axes[2].plot(residual, hess, label=label)
axes[0].set(title="loss", xlabel="residual r")
axes[1].set(title="derivative", xlabel="residual r")
axes[2].set(title="second derivative", xlabel="residual r", ylim=(-0.05, 1.1))
axes[0].legend(fontsize="small")
for ax in axes:
    ax.grid(alpha=0.3)

for r in (1.0, 2.0, 5.0, 10.0, 15.0):
    _, g = pseudo.value_and_grad(np.array([r]), np.array([0.0]), reduction="none")
    print(f"r = {r:4g}: Pseudo-Huber's derivative {g[0]:.3f} "
          f"({g[0] / r:.0%} of r, {g[0] / delta:.0%} of delta)")

plt.show()
