"""
Regression losses, gradients and Hessians
=========================================

The regression losses of fastloss over a range of residuals ``r = x - t``, as fastloss
computes them: ``reduction="none"`` returns each element's own loss, and the gradient and
Hessian diagonal that come with it are each element's own derivatives.
"""
import matplotlib.pyplot as plt
import numpy as np

import fastloss

residual = np.linspace(-4.0, 4.0, 801)
target = np.zeros_like(residual)          # x - t = residual

losses = {
    "MSE": fastloss.MSE(),
    "MAE": fastloss.MAE(),
    "Huber, delta = 1": fastloss.Huber(delta=1.0),
    "Pseudo-Huber, delta = 1": fastloss.PseudoHuber(delta=1.0),
}

# %%
# Loss, gradient and Hessian
# --------------------------
# ``value_and_grad`` gives the loss and its first derivative in one pass; ``grad_hess``
# gives the first and second derivatives (what a gradient-boosting library asks for).
# MAE's Hessian is the constant 1 that gradient boosting uses as a stand-in for its true
# second derivative, which is 0 almost everywhere.

fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
for label, loss in losses.items():
    value, grad = loss.value_and_grad(residual, target, reduction="none")
    _, hess = loss.grad_hess(residual, target, reduction="none")
    axes[0].plot(residual, value, label=label)
    axes[1].plot(residual, grad, label=label)
    axes[2].plot(residual, hess, label=label)
axes[0].set(title="loss  l(r)", xlabel="residual r = x - t", ylim=(-0.2, 6))
axes[1].set(title="gradient  dl/dx", xlabel="residual r = x - t", ylim=(-4.5, 4.5))
axes[2].set(title="Hessian  d²l/dx²", xlabel="residual r = x - t", ylim=(-0.2, 2.4))
axes[0].legend(fontsize="small")
for ax in axes:
    ax.grid(alpha=0.3)

# %%
# The same numbers at a few residuals.  MSE's gradient grows with the residual; MAE's,
# Huber's and Pseudo-Huber's stay bounded, which is why they resist outliers.

for r in (0.1, 1.0, 3.0):
    row = []
    for label, loss in losses.items():
        value, grad = loss.value_and_grad(np.array([r]), np.array([0.0]), reduction="none")
        row.append(f"{label}: l = {value[0]:.3f}, dl/dx = {grad[0]:.3f}")
    print(f"r = {r}:\n    " + "\n    ".join(row))

# %%
# Poisson negative log-likelihood
# -------------------------------
# :class:`~fastloss.PoissonNLL` is not a function of the residual: its input is the log of
# a Poisson rate and its target a count.  For a count ``t`` the loss is smallest at
# ``x = log t``, where its gradient ``exp(x) - t`` crosses zero; a count of 0 pulls the
# log-rate down without bound.

log_rate = np.linspace(-3.0, 3.5, 651)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
poisson = fastloss.PoissonNLL()
for count in (0, 1, 3, 10):
    counts = np.full_like(log_rate, count)
    value, grad = poisson.value_and_grad(log_rate, counts, reduction="none")
    (line,) = axes[0].plot(log_rate, value, label=f"count t = {count}")
    axes[1].plot(log_rate, grad, color=line.get_color())
    if count > 0:
        best = np.log([float(count)])
        v, g = poisson.value_and_grad(best, np.array([float(count)]), reduction="none")
        axes[0].plot(best, v, "o", color=line.get_color())
        axes[1].plot(best, g, "o", color=line.get_color())
axes[0].set(title="PoissonNLL  exp(x) - t x", xlabel="log-rate x", ylim=(-25, 30))
axes[1].set(title="gradient  exp(x) - t", xlabel="log-rate x", ylim=(-12, 25))
axes[0].legend(fontsize="small")
for ax in axes:
    ax.grid(alpha=0.3)

plt.show()
