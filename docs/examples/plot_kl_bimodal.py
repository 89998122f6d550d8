"""
Fitting a bimodal distribution with KL divergence
=================================================

A target distribution over 80 bins with two modes of different weight and width, and two
models fitted to it by gradient descent on :class:`~fastloss.KLDivergence`
``KL(t || q)`` with ``q = softmax(z)``:

* a free softmax: one logit per bin, which can match any distribution;
* a discretised Gaussian, ``z_i = -(x_i - mu)^2 / (2 sigma^2)``, two parameters, one mode.

fastloss returns the divergence and its gradient with respect to the logits,
``dKL/dz = q - t``; the Gaussian's gradients follow by the chain rule.  The model's
distribution itself comes from the same call: ``q = t + dKL/dz``.
"""
import matplotlib.pyplot as plt
import numpy as np

import fastloss

x = np.linspace(-6.0, 6.0, 80)
density = 0.7 * np.exp(-0.5 * ((x + 2.2) / 0.7) ** 2) + 0.3 * np.exp(-0.5 * ((x - 2.5) / 1.3) ** 2)
target = (density / density.sum())[None, :]          # one row: a distribution over 80 bins

kl = fastloss.KLDivergence()


def kl_and_q(logits):
    """KL(t || softmax(logits)), its gradient, and the model's distribution q."""
    value, grad = kl.value_and_grad(logits[None, :], target)
    return value, grad[0], target[0] + grad[0]


# %%
# A free softmax over the bins
# ----------------------------
# Starting from the uniform distribution, plain gradient descent on the 80 logits.  The
# divergence is convex in the logits and its minimum, 0, is at ``q = t``.

z = np.zeros_like(x)
snapshots, free_curve = {}, []
for step in range(3001):
    value, grad, q = kl_and_q(z)
    free_curve.append(value)
    if step in (0, 30, 300, 3000):
        snapshots[step] = q
    z -= 20.0 * grad

fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
ax.bar(x, target[0], width=x[1] - x[0], color="0.8", label="target t")
for step, q in snapshots.items():
    ax.plot(x, q, lw=1.6, label=f"q after {step} steps (KL = {free_curve[step]:.4f})")
ax.set(xlabel="x", ylabel="probability", title="Free softmax fitted by KL gradient descent")
ax.legend(fontsize="small")

# %%
# A one-mode model
# ----------------
# A Gaussian cannot have two modes.  ``KL(t || q)`` punishes ``q`` heavily wherever ``t``
# has mass and ``q`` has none, so the best Gaussian spreads over both modes ("mass
# covering") instead of picking one.  The chain rule through
# ``z_i = -(x_i - mu)^2 / (2 sigma^2)`` gives ``dKL/dmu = sum_i g_i (x_i - mu) / sigma^2``
# and ``dKL/dlog(sigma) = sum_i g_i (x_i - mu)^2 / sigma^2``.

mu, log_sigma = 3.0, 0.0
gauss_curve = []
for step in range(1001):
    sigma2 = np.exp(2 * log_sigma)
    value, grad, q = kl_and_q(-(x - mu) ** 2 / (2 * sigma2))
    gauss_curve.append(value)
    mu -= 0.5 * float(grad @ ((x - mu) / sigma2))
    log_sigma -= 0.05 * float(grad @ ((x - mu) ** 2 / sigma2))
print(f"Gaussian fit: mu = {mu:.3f}, sigma = {np.exp(log_sigma):.3f}, "
      f"KL = {gauss_curve[-1]:.4f} (free softmax: {free_curve[-1]:.2e})")

fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
axes[0].bar(x, target[0], width=x[1] - x[0], color="0.8", label="target t")
axes[0].plot(x, q, "C3", lw=2, label=f"best Gaussian: mu = {mu:.2f}, sigma = {np.exp(log_sigma):.2f}")
axes[0].plot(x, snapshots[3000], "C0--", lw=1.2, label="free softmax")
axes[0].set(xlabel="x", ylabel="probability", title="Fitted distributions")
axes[0].legend(fontsize="small")
axes[1].semilogy(free_curve, label="free softmax (80 logits)")
axes[1].semilogy(gauss_curve, label="Gaussian (mu, sigma)")
axes[1].set(xlabel="gradient-descent step", ylabel="KL(t || q)", title="Divergence")
axes[1].legend(fontsize="small")
axes[1].grid(alpha=0.3)

plt.show()
