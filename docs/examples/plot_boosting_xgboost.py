"""
Cross-entropy with label smoothing and class weights in XGBoost
===============================================================

XGBoost's ``multi:softprob`` objective has neither label smoothing nor class weights.
``fastloss.CrossEntropy`` has both (with PyTorch's semantics), and
``fastloss.xgboost.objective`` turns it into an XGBoost objective: gradient and Hessian
in one pass over the ``(n, k)`` margins, sample weights applied.

The data: three imbalanced classes (about 70 / 25 / 5 %), and 10 % of the training labels
replaced by a random class.  Class weights inversely proportional to the class
frequencies make the rare class count; label smoothing keeps the model from chasing the
flipped labels.
"""
import numpy as np
import xgboost as xgb

import fastloss
import fastloss.xgboost as fxgb

rng = np.random.default_rng(0)
n, d, k = 6000, 10, 3
X = rng.normal(size=(n, d))
logits = np.stack([X[:, 0] + 2.0, X[:, 1] + X[:, 2] + 1.0, 2 * X[:, 3] - 1.0], axis=1)
y = (logits + rng.gumbel(size=(n, k))).argmax(axis=1)
train, test = slice(0, 4000), slice(4000, None)
y_train = y[train].copy()
flip = rng.random(y_train.size) < 0.1
y_train[flip] = rng.integers(0, k, flip.sum())
print("class frequencies (train):", np.round(np.bincount(y_train) / y_train.size, 3))

# %%
# The loss, and the model
# -----------------------
# ``init_score`` is the best constant margin for this loss (the log class priors, with
# the class weights and the smoothing): XGBoost estimates no intercept for a custom
# objective, so it goes in as ``base_score``.  With no ``objective`` in the parameters,
# XGBoost treats ``base_score`` as a margin and stores it in the model.
class_weight = y_train.size / (k * np.bincount(y_train, minlength=k))
loss = fastloss.CrossEntropy(label_smoothing=0.1, class_weight=class_weight)

dtrain = xgb.DMatrix(X[train], y_train)
dtest = xgb.DMatrix(X[test], y[test])
params = {"tree_method": "hist", "max_depth": 4, "eta": 0.15, "seed": 0,
          "nthread": 1}                 # small data: one thread is as fast as several
history = {}
model = xgb.train({**params, "num_class": k, "disable_default_eval_metric": True,
                   "base_score": fxgb.init_score(loss, y_train).tolist()},
                  dtrain, 60, obj=fxgb.objective(loss), custom_metric=fxgb.metric(loss),
                  evals=[(dtrain, "train"), (dtest, "test")], evals_result=history,
                  verbose_eval=False)
builtin = xgb.train({**params, "num_class": k, "objective": "multi:softprob"}, dtrain, 60)

# %%
# Held-out recall per class
# -------------------------
# Margins: ``output_margin=True`` (the base score is included).  The weighted, smoothed
# loss trades a little accuracy on the frequent class for the rare one.


def recall(margins, labels):
    pred = margins.argmax(axis=1)
    return np.array([(pred[labels == c] == c).mean() for c in range(k)])


r_fast = recall(model.predict(dtest, output_margin=True), y[test])
r_builtin = recall(builtin.predict(dtest, output_margin=True), y[test])
print(f"{'':28}{'class 0':>9}{'class 1':>9}{'class 2':>9}{'balanced':>10}")
for name, r in (("multi:softprob", r_builtin), ("fastloss CrossEntropy", r_fast)):
    print(f"{name:28}" + "".join(f"{v:9.3f}" for v in r) + f"{r.mean():10.3f}")

# %%
# Learning curves of the fastloss metric
# --------------------------------------
# ``fastloss.xgboost.metric(loss)`` reports the same weighted, smoothed cross-entropy
# on the raw margins at every round.
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.5))
    for split in ("train", "test"):
        ax0.plot(history[split][loss.name], label=split)
    ax0.set(xlabel="round", ylabel=loss.name, title="fastloss metric")
    ax0.legend()
    pos = np.arange(k)
    ax1.bar(pos - 0.2, r_builtin, 0.4, label="multi:softprob")
    ax1.bar(pos + 0.2, r_fast, 0.4, label="CrossEntropy(smoothing, class weights)")
    ax1.set(xticks=pos, xlabel="class", ylabel="held-out recall", ylim=(0, 1))
    ax1.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    plt.show()
