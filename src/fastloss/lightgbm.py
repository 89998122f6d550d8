"""fastloss losses as LightGBM objectives and metrics (tested with LightGBM 4.7).

``import fastloss`` never imports this module, and this module imports LightGBM only when
an objective or metric is made (``pip install 'fastloss[lightgbm]'``).

::

    import numpy as np, fastloss, fastloss.lightgbm as flgb, lightgbm as lgb

    loss = fastloss.PseudoHuber(delta=2.0)
    b = flgb.init_score(loss, y, w)                     # shape () here; (k,) for classes
    train = lgb.Dataset(X, y, weight=w, init_score=np.full(len(y), b))
    bst = lgb.train({"objective": flgb.objective(loss), "verbose": -1}, train, 100,
                    valid_sets=[train], feval=flgb.metric(loss))
    margins = bst.predict(X, raw_score=True) + b        # LightGBM does not store b

The same objects work in the scikit-learn estimators:
``LGBMRegressor(objective=flgb.objective(loss)).fit(X, y, init_score=..., eval_metric=flgb.metric(loss))``,
``LGBMClassifier(objective=flgb.objective(fastloss.CrossEntropy()))`` (whose ``predict``
then returns raw scores, without the init score).

What LightGBM does with a custom objective
------------------------------------------
* It hands the objective raw scores, float64, shape ``(n,)``, or ``(n, k)`` ordered
  column by column (a Fortran-ordered view of its class-major buffer), and takes float32
  gradients in that same class-major order.  fastloss copies each block of rows into a
  row-ordered buffer (its softmax kernels read a row's classes together), computes there
  in float64 as LightGBM does, and writes class-major float32 results, which LightGBM then
  uses without a copy.
* It does **not** apply the training set's weights: the objective does.
* It ignores ``boost_from_average``: the scores start at 0.  Give the start as
  ``Dataset(init_score=...)`` (``np.full(n, b)``, or ``np.tile(b, (n, 1))`` for classes),
  also to every validation set, and add ``b`` to ``predict(..., raw_score=True)``: the
  model does not store it.
* Metrics (``feval``, the estimators' ``eval_metric``) receive raw scores when the
  objective is custom; a fastloss metric is computed on them.  Leave ``metric`` unset
  (or ``"None"``): LightGBM's own metrics would read the raw scores as probabilities.

Hessians, and reproducing a built-in objective
----------------------------------------------
The objective returns ``loss_scale * w * grad`` and ``hess_scale * loss_scale * w * hess``
with fastloss's exact gradient and Hessian diagonal (MAE: the surrogate 1).  With the
settings below a model trained with the fastloss objective predicts the built-in's raw
scores (``predict(raw_score=True) + b``; tests/test_boosting.py checks it to 1e-3):

==========  ======================================================  ===================
built-in    fastloss objective                                      also set
==========  ======================================================  ===================
regression  ``objective(MSE(), loss_scale=0.5)`` (LightGBM's L2 is   init score
            half the squared error: g = x - y, h = 1)
binary      ``objective(BinaryCrossEntropy())`` (``sigmoid=1``)      init score
multiclass  ``objective(CrossEntropy(), hess_scale=k / (k - 1))``    ``num_class``, init
            (LightGBM's Hessian is k/(k-1) p (1 - p))                score
poisson     ``objective(PoissonNLL(), hess_scale=math.exp(0.7))``    init score
            (Hessian exp(x + poisson_max_delta_step))
==========  ======================================================  ===================

The init score is ``init_score(loss, y, w)``, which for these losses equals LightGBM's
``boost_from_average`` start (class log-frequencies are not centred; probabilities are
floored at 1e-15, as LightGBM does).
"""
from __future__ import annotations

from . import _boosting

__all__ = ["objective", "metric", "init_score", "LightGBMObjective", "LightGBMMetric"]

LIBRARY = _boosting.Library(
    name="LightGBM", module="lightgbm",
    classes_hint="set num_class in the parameters (LGBMClassifier sets it from the labels)",
    eps=1e-15, centre=False)


class LightGBMObjective(_boosting.Objective):
    """A fastloss loss as a LightGBM objective; make one with :func:`objective`.

    Called as ``obj(preds, train_data)`` by ``lightgbm.train`` (labels and weights read
    from the Dataset) or as ``obj(y_true, y_pred, weight)`` by the scikit-learn estimators.
    Returns ``(grad, hess)``: shape ``(n,)``, or ``(n, k)`` Fortran-ordered float32 for
    LightGBM's column-ordered multi-class scores.
    """
    lib = LIBRARY

    def __call__(self, preds_or_y_true, train_data_or_y_pred, weight=None):
        if hasattr(train_data_or_y_pred, "get_label"):       # lightgbm.train
            ds = train_data_or_y_pred
            return self._grad_hess(preds_or_y_true, ds.get_label(), ds.get_weight())
        return self._grad_hess(train_data_or_y_pred, preds_or_y_true, weight)


class LightGBMMetric(_boosting.Metric):
    """A fastloss loss as a LightGBM metric; make one with :func:`metric`.

    ``m(preds, eval_data)`` (``lightgbm.train(feval=m)``) and ``m(y_true, y_pred, weight)``
    (the estimators' ``eval_metric=m``) return ``(loss.name, value, False)``: the weighted
    mean loss of the raw scores, lower is better.
    """
    lib = LIBRARY

    def __call__(self, preds_or_y_true, eval_data_or_y_pred, weight=None):
        if hasattr(eval_data_or_y_pred, "get_label"):        # lightgbm.train(feval=...)
            ds = eval_data_or_y_pred
            value = self._value(preds_or_y_true, ds.get_label(), ds.get_weight())
        else:
            value = self._value(eval_data_or_y_pred, preds_or_y_true, weight)
        return self.__name__, value, False


# objective() and metric() deliberately mirror fastloss.xgboost's: the same machinery
# (_boosting.py), each documented in its library's own terms and conventions.
def objective(loss, hess_scale: float = 1.0, *, loss_scale: float = 1.0,
              n_threads: int | None = None) -> LightGBMObjective:
    """`loss` as a LightGBM objective, for ``lightgbm.train({"objective": ...})`` and for
    ``LGBMRegressor(objective=...)`` / ``LGBMClassifier(objective=...)``.

    Parameters
    ----------
    loss : a fastloss loss
        Pointwise losses (MSE, MAE, PseudoHuber, Huber, PoissonNLL, BinaryCrossEntropy):
        one label per row.  CrossEntropy: integer labels ``0..k-1`` and ``num_class=k``.
        Refused with ``ValueError``: ``from_logits=False``, losses whose target is a
        distribution per row (KLDivergence) and losses without a usable Hessian.
    hess_scale : float, default 1.0
        Multiplies the Hessian only, to reproduce a built-in convention (``k / (k - 1)``
        for ``multiclass``, ``exp(0.7)`` for ``poisson``; see the module docstring).
    loss_scale : float, default 1.0
        Multiplies the loss, i.e. gradient and Hessian (0.5 turns MSE into LightGBM's
        half squared error).
    n_threads : int, optional
        fastloss's threads per call (None: OpenMP's default).

    The training set's sample weights multiply gradient and Hessian (LightGBM does not
    apply them to a custom objective).  A call whose Hessian is 0 for every sample raises
    ``ValueError``.
    """
    _boosting.require(LIBRARY)
    return LightGBMObjective(loss, hess_scale, loss_scale=loss_scale, n_threads=n_threads)


def metric(loss, *, n_threads: int | None = None) -> LightGBMMetric:
    """`loss` as a LightGBM metric on raw scores: ``lightgbm.train(feval=...)`` or the
    estimators' ``eval_metric=...``; returns ``(loss.name, value, False)`` with
    ``value = loss(scores, labels, sample_weight=w)``, the weighted mean.  Use it with a
    custom objective (LightGBM then hands metrics raw scores) and give every evaluated
    Dataset its init score."""
    _boosting.require(LIBRARY)
    return LightGBMMetric(loss, n_threads=n_threads)


def init_score(loss, y, sample_weight=None, *, n_classes: int | None = None):
    """The constant score that minimises the weighted loss on labels `y`: the start
    LightGBM does not compute for a custom objective (``boost_from_average`` is ignored).

    A float64 of shape ``()`` or ``(k,)`` for CrossEntropy (``k = n_classes``, default
    ``max(y) + 1``).  MSE: the weighted mean; MAE: the weighted median;
    BinaryCrossEntropy: the log-odds of the weighted mean; PoissonNLL: the log of the
    weighted mean; CrossEntropy: the log class priors (with its class weights and label
    smoothing), not centred; probabilities floored at 1e-15, as LightGBM does.  Any other
    pointwise loss (Huber, PseudoHuber, BCE with ``pos_weight``, new rows): the root of
    the summed gradient, by safeguarded Newton steps.

    Pass it as ``Dataset(init_score=np.full(n, b))`` (``np.tile(b, (n, 1))`` for classes)
    and add it to ``predict(..., raw_score=True)``.  Does not need LightGBM.
    """
    return _boosting.optimal_constant(loss, LIBRARY, y, sample_weight, n_classes)
