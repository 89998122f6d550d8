"""
Pseudo-Huber regression in LightGBM
===================================

LightGBM has squared error (``regression``) and a Huber loss whose Hessian it takes as 1,
but no Pseudo-Huber loss: smooth like the squared error near the target, linear (robust)
far from it, with an exact Hessian.  ``fastloss.lightgbm.objective`` makes
``fastloss.PseudoHuber`` a LightGBM objective.

The data: a smooth function of the features, plus noise, and 10 % of the training labels
shifted by a large amount (gross outliers).  The test labels are clean.
"""
import numpy as np
import lightgbm as lgb

import fastloss
import fastloss.lightgbm as flgb

rng = np.random.default_rng(0)
n, d = 6000, 8
X = rng.normal(size=(n, d))
f = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.5 * X[:, 3]
y = f + 0.3 * rng.normal(size=n)
train, test = slice(0, 4000), slice(4000, None)
y_train = y[train].copy()
bad = rng.random(y_train.size) < 0.1
y_train[bad] += rng.choice([-1, 1], bad.sum()) * rng.uniform(5, 20, bad.sum())

# %%
# The start, and the model
# ------------------------
# LightGBM ignores ``boost_from_average`` for a custom objective and starts at 0.
# ``init_score`` gives the best constant for this loss (here a robust location, not the
# mean the outliers drag away); it goes into the Dataset, and is added to the raw
# predictions, since the model does not store it.
loss = fastloss.PseudoHuber(delta=1.0)
b = flgb.init_score(loss, y_train)
print(f"start: mean {y_train.mean():.3f}, Pseudo-Huber minimiser {b:.3f}")

# Far from the target the Pseudo-Huber Hessian vanishes (as ``|r|^-3``), so a leaf that
# holds mostly outliers has a tiny Hessian sum, and LightGBM's Newton step
# ``-G / (H + lambda_l2)`` with its default ``lambda_l2=0`` would be huge (test RMSE 1.8
# instead of 0.51 here).  ``lambda_l2=1``, XGBoost's default, bounds it.
params = {"learning_rate": 0.07, "num_leaves": 15, "lambda_l2": 1.0, "verbose": -1,
          "seed": 0, "num_threads": 1}  # small data: one thread is as fast as several
dtrain = lgb.Dataset(X[train], y_train, init_score=np.full(y_train.size, b))
dtest = lgb.Dataset(X[test], y[test], init_score=np.full(n - 4000, b), reference=dtrain)
history = {}
model = lgb.train({**params, "objective": flgb.objective(loss)}, dtrain, 150,
                  valid_sets=[dtrain, dtest], valid_names=["train", "test"],
                  feval=flgb.metric(loss), callbacks=[lgb.record_evaluation(history)])
pred = model.predict(X[test], raw_score=True) + b

# %%
# Compared with LightGBM's own objectives
# ---------------------------------------
results = {"fastloss PseudoHuber(delta=1)": pred}
for name in ("regression", "huber"):
    other = lgb.train({**params, "objective": name}, lgb.Dataset(X[train], y_train), 150)
    results[f"lightgbm {name}"] = other.predict(X[test])
print(f"{'':32}{'test MAE':>10}{'test RMSE':>11}")
for name, p in results.items():
    err = p - y[test]
    print(f"{name:32}{np.abs(err).mean():10.3f}{np.sqrt((err ** 2).mean()):11.3f}")

# %%
# The scikit-learn estimator
# --------------------------
# The same objective in ``LGBMRegressor``; ``init_score`` goes to ``fit`` and is added to
# ``predict``.
est = lgb.LGBMRegressor(objective=flgb.objective(loss), n_estimators=150, learning_rate=0.07,
                        num_leaves=15, reg_lambda=1.0, verbose=-1, random_state=0, n_jobs=1)
est.fit(X[train], y_train, init_score=np.full(y_train.size, b))
print("LGBMRegressor, largest difference from lgb.train:",
      np.abs(est.predict(X[test]) + b - pred).max())

# %%
# Learning curves of the fastloss metric
# --------------------------------------
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.5))
    for split in ("train", "test"):
        ax0.plot(history[split][loss.name], label=split)
    ax0.set(xlabel="round", ylabel=loss.name, title="fastloss metric (weighted mean)")
    ax0.legend()
    for name, p in results.items():
        ax1.scatter(y[test], p, s=3, alpha=0.4, label=name)
    lim = [y[test].min(), y[test].max()]
    ax1.plot(lim, lim, color="k", lw=0.8)
    ax1.set(xlabel="clean test label", ylabel="prediction")
    ax1.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    plt.show()
