"""fastloss losses as XGBoost objectives and metrics (tested with XGBoost 3.2).

``import fastloss`` never imports this module, and this module imports XGBoost only when
an objective or metric is made (``pip install 'fastloss[xgboost]'``).

::

    import fastloss, fastloss.xgboost as fxgb, xgboost as xgb

    loss = fastloss.CrossEntropy(label_smoothing=0.1)
    b = fxgb.init_score(loss, y, w)                     # log class priors, shape (k,)
    params = {"num_class": k, "base_score": b.tolist(), "disable_default_eval_metric": True}
    bst = xgb.train(params, xgb.DMatrix(X, y, weight=w), 100,
                    obj=fxgb.objective(loss), custom_metric=fxgb.metric(loss))
    margins = bst.predict(xgb.DMatrix(X), output_margin=True)   # (n, k), b included

The same objects work in the scikit-learn estimators:
``XGBRegressor(objective=fxgb.objective(fastloss.PseudoHuber()), eval_metric=fxgb.metric(...))``,
``XGBClassifier(objective=fxgb.objective(fastloss.CrossEntropy()))``.

What XGBoost does with a custom objective
-----------------------------------------
* It hands the objective raw margins, float32, shape ``(n,)`` or ``(n, k)`` in C order,
  and uses the returned ``(grad, hess)`` as they are.  It does **not** apply the training
  set's weights: the objective does (fastloss multiplies gradient and Hessian by them).
* It estimates no intercept.  Give one as ``params["base_score"] = b.tolist()`` with
  ``b = init_score(loss, y, w)`` and leave ``params["objective"]`` unset: XGBoost then uses
  ``reg:squarederror`` internally (``multi:softmax`` when ``num_class > 1``), whose link is
  the identity, so ``base_score`` is a margin and is stored in the model.  Predict with
  ``output_margin=True`` (``multi:softmax`` would return class ids).  ``XGBClassifier``
  sets ``binary:logistic`` internally, whose ``base_score`` is a probability: pass
  ``base_score=scipy.special.expit(b)`` there (for several classes, ``b.tolist()``).
  A per-row ``DMatrix(base_margin=...)`` works too, but must then be given at prediction.
* Set ``disable_default_eval_metric=True``: the default metric would read the margins as
  if they were the internal objective's output.  Metrics (``custom_metric`` and the
  estimators' ``eval_metric``) receive raw margins when the objective is custom; a
  fastloss metric is computed on margins, so use it with a custom objective.

Hessians, and reproducing a built-in objective
----------------------------------------------
The objective returns ``loss_scale * w * grad`` and ``hess_scale * loss_scale * w * hess``
with fastloss's exact gradient and Hessian diagonal (MAE: the surrogate 1).  With the
settings below a model trained with the fastloss objective predicts the built-in's margins
to float32 rounding (tests/test_boosting.py checks it to 1e-3):

=====================  =====================================================  ========================
built-in               fastloss objective                                     also set
=====================  =====================================================  ========================
reg:squarederror       ``objective(MSE(), loss_scale=0.5)`` (XGBoost's is      ``base_score`` = mean
                       half the squared error: g = x - y, h = 1)
reg:pseudohubererror   ``objective(PseudoHuber(delta=huber_slope))``           ``base_score``
binary:logistic        ``objective(BinaryCrossEntropy())``                     ``base_score``
multi:softprob         ``objective(CrossEntropy(), hess_scale=2.0)``          ``num_class``, ``base_score``
                       (XGBoost's Hessian is 2 p (1 - p))
count:poisson          ``objective(PoissonNLL(), hess_scale=math.exp(0.7))``  ``max_delta_step=0.7``
                       (XGBoost's Hessian is exp(x + max_delta_step))
=====================  =====================================================  ========================

``base_score`` is the built-in's own intercept: ``init_score`` gives it for MSE, BCE, CE
(log class frequencies, centred, floored at 1e-6 as XGBoost does) and Poisson.  For
Pseudo-Huber, XGBoost takes one Newton step from 0 rather than the minimiser
``init_score`` returns.  ``count:poisson`` also limits every leaf with the tree parameter
``max_delta_step=0.7``, which a custom objective must set itself.
XGBoost floors the softmax Hessian at 1e-16 (fastloss does not), which changes nothing
unless a probability rounds to 0 or 1.
"""
from __future__ import annotations

from . import _boosting

__all__ = ["objective", "metric", "init_score", "XGBoostObjective", "XGBoostMetric"]

LIBRARY = _boosting.Library(
    name="XGBoost", module="xgboost",
    classes_hint="set params['num_class'] (XGBClassifier sets it from the labels)",
    eps=1e-6, centre=True)


class XGBoostObjective(_boosting.Objective):
    """A fastloss loss as an XGBoost objective; make one with :func:`objective`.

    Called as ``obj(preds, dtrain)`` by ``xgboost.train`` (labels and weights read from
    the DMatrix) or as ``obj(y_true, y_pred, sample_weight=None)`` by the scikit-learn
    estimators.  Returns ``(grad, hess)`` of the margins' shape.
    """
    lib = LIBRARY

    def __call__(self, preds_or_y_true, dtrain_or_y_pred, sample_weight=None):
        if hasattr(dtrain_or_y_pred, "get_label"):           # xgboost.train(obj=...)
            dtrain = dtrain_or_y_pred
            return self._grad_hess(preds_or_y_true, dtrain.get_label(), dtrain.get_weight())
        return self._grad_hess(dtrain_or_y_pred, preds_or_y_true, sample_weight)


class XGBoostMetric(_boosting.Metric):
    """A fastloss loss as an XGBoost metric; make one with :func:`metric`.

    ``m(preds, dtrain)`` returns ``(name, value)`` (``xgboost.train(custom_metric=m)``);
    ``m(y_true, y_score, sample_weight=None)`` returns the value, named ``m.__name__``
    (the estimators' ``eval_metric=m``).  The value is the weighted mean loss of the raw
    margins; lower is better (``maximize=False``, the default).
    """
    lib = LIBRARY

    def __call__(self, preds_or_y_true, dtrain_or_y_score, sample_weight=None):
        if hasattr(dtrain_or_y_score, "get_label"):           # xgboost.train(custom_metric=)
            dtrain = dtrain_or_y_score
            return self.__name__, self._value(preds_or_y_true, dtrain.get_label(),
                                              dtrain.get_weight())
        return self._value(dtrain_or_y_score, preds_or_y_true, sample_weight)


# objective() and metric() deliberately mirror fastloss.lightgbm's: the same machinery
# (_boosting.py), each documented in its library's own terms and conventions.
def objective(loss, hess_scale: float = 1.0, *, loss_scale: float = 1.0,
              n_threads: int | None = None) -> XGBoostObjective:
    """`loss` as an XGBoost objective, for ``xgboost.train(obj=...)`` and for
    ``XGBRegressor(objective=...)`` / ``XGBClassifier(objective=...)``.

    Parameters
    ----------
    loss : a fastloss loss
        Pointwise losses (MSE, MAE, PseudoHuber, Huber, PoissonNLL, BinaryCrossEntropy):
        one label per output.  CrossEntropy: integer labels ``0..k-1`` and ``num_class=k``.
        Refused with ``ValueError``: ``from_logits=False``, losses whose target is a
        distribution per row (KLDivergence) and losses without a usable Hessian.
    hess_scale : float, default 1.0
        Multiplies the Hessian only, to reproduce a built-in convention (2 for
        ``multi:softprob``, ``exp(0.7)`` for ``count:poisson``; see the module docstring).
    loss_scale : float, default 1.0
        Multiplies the loss, i.e. gradient and Hessian (0.5 turns MSE into XGBoost's
        half squared error).
    n_threads : int, optional
        fastloss's threads per call (None: OpenMP's default).

    The training set's sample weights multiply gradient and Hessian (XGBoost does not
    apply them to a custom objective).  A call whose Hessian is 0 for every sample raises
    ``ValueError``.
    """
    _boosting.require(LIBRARY)
    return XGBoostObjective(loss, hess_scale, loss_scale=loss_scale, n_threads=n_threads)


def metric(loss, *, n_threads: int | None = None) -> XGBoostMetric:
    """`loss` as an XGBoost metric on raw margins: ``xgboost.train(custom_metric=...)``
    (returns ``(loss.name, value)``) or the estimators' ``eval_metric=...`` (returns the
    value; named ``loss.name``).  The value is ``loss(margins, labels, sample_weight=w)``,
    the weighted mean.  Use it with a custom objective (XGBoost then hands metrics raw
    margins) and ``disable_default_eval_metric=True``."""
    _boosting.require(LIBRARY)
    return XGBoostMetric(loss, n_threads=n_threads)


def init_score(loss, y, sample_weight=None, *, n_classes: int | None = None):
    """The constant margin that minimises the weighted loss on labels `y`: the start
    XGBoost does not estimate for a custom objective.

    A float64 of shape ``()`` (one output; ``(k,)`` for 2-D labels, one per column) or
    ``(k,)`` for CrossEntropy (``k = n_classes``, default ``max(y) + 1``).  MSE: the
    weighted mean; MAE: the weighted median; BinaryCrossEntropy: the log-odds of the
    weighted mean; PoissonNLL: the log of the weighted mean; CrossEntropy: the log class
    priors (with its class weights and label smoothing), centred as XGBoost centres them;
    probabilities are floored at 1e-6 as XGBoost does.  Any other pointwise loss (Huber,
    PseudoHuber, BCE with ``pos_weight``, new rows): the root of the summed gradient, by
    safeguarded Newton steps.

    Pass it as ``params["base_score"] = b.tolist()`` (see the module docstring for
    ``XGBClassifier``).  Does not need XGBoost.
    """
    return _boosting.optimal_constant(loss, LIBRARY, y, sample_weight, n_classes)
