"""Ensembles weighted or stacked by out-of-fold performance under time-ordered, purged CV.

Each base estimator is cloned and fitted on every fold's training rows and predicts that
fold's test rows; these *out-of-fold* (OOF) predictions score the estimators and, for
stacking, train the meta-estimator. Every base estimator is then refitted on all rows.

* ``method="weighted"``: weight ``j`` is proportional to ``1 / loss_j`` (the OOF loss),
  normalised to sum to 1; an estimator with zero loss takes all the weight (shared equally
  among ties). Inverse loss rather than a softmax of scores: it needs no temperature and
  is invariant to the scale of ``y``.
* ``method="stacked"``: a meta-estimator (default a non-negative ``Ridge`` for regression,
  ``LogisticRegression`` on the stacked probabilities for classification) is fitted on the
  OOF predictions of the rows that every estimator predicted.

The default ``cv`` is :func:`~research_lib.splits.purged_walk_forward_splits` with 5 test
blocks after the first ``n_rows // 6`` rows and zero-length label windows, so each fold
trains only on earlier rows. Pass a splitter such as
:class:`~research_lib.splits.PurgedKFold` with the real label windows to purge overlapping
labels. Rows no fold tests (the first walk-forward block) stay NaN in ``oof_predictions_``
and are left out of scoring and stacking; a splitter that tests a row twice (CPCV) is
rejected, since a row would then have two OOF predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.linear_model import LogisticRegression, Ridge

from research_lib.splits import Split, purged_walk_forward_splits

__all__ = ["OutOfFoldEnsemble", "OutOfFoldEnsembleClassifier"]

Method = Literal["weighted", "stacked"]
METHODS: tuple[str, ...] = ("weighted", "stacked")
REGRESSION_METRICS: tuple[str, ...] = ("mse", "mae")
CLASSIFICATION_METRICS: tuple[str, ...] = ("log_loss", "brier")
_DEFAULT_SPLITS = 5
_PROBA_FLOOR = 1e-15  # keeps log-loss finite when a model puts zero mass on the true class

FloatArray = npt.NDArray[np.float64]


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_estimators(estimators: Any, needs: str) -> None:
    """Named, uniquely named, non-empty list of estimators that have ``fit`` and ``needs``."""
    if not isinstance(estimators, list | tuple) or len(estimators) == 0:
        raise ValueError(
            f"estimators must be a non-empty list of (name, estimator) pairs, got {estimators!r}"
        )
    names: list[str] = []
    for i, pair in enumerate(estimators):
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise ValueError(f"estimators[{i}] must be a (name, estimator) pair, got {pair!r}")
        name, est = pair
        if not (hasattr(est, "fit") and hasattr(est, needs)):
            raise ValueError(
                f"estimators[{i}] ({name!r}) must have fit and {needs} methods, got {est!r}"
            )
        names.append(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"estimator names must be unique, got duplicates {duplicates}")


def _rows(X: Any, index: npt.NDArray[np.int64]) -> Any:
    return X.iloc[index] if hasattr(X, "iloc") else X[index]


def _splits(cv: Any, X: Any, y: npt.NDArray[Any]) -> Iterable[Split]:
    if cv is None:
        n_rows = len(y)
        start = np.arange(n_rows)
        return purged_walk_forward_splits(
            label_start=start,
            label_end=start,
            n_splits=_DEFAULT_SPLITS,
            min_train_rows=max(1, n_rows // (_DEFAULT_SPLITS + 1)),
        )
    if not hasattr(cv, "split"):
        raise ValueError(
            f"cv must be None or a splitter with a split(X, y) method (e.g. PurgedKFold), "
            f"got {cv!r}"
        )
    return cv.split(X, y)


def _prepare(X: Any, y: Any) -> tuple[Any, npt.NDArray[Any]]:
    X = X if hasattr(X, "iloc") else np.asarray(X)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of rows, got {len(X)} and {len(y)}")
    return X, y


def _out_of_fold(
    estimators: list[tuple[str, Any]],
    X: Any,
    y: npt.NDArray[Any],
    splits: Iterable[Split],
    predict_block: Callable[[Any, Any], FloatArray],
    width: int,
) -> FloatArray:
    """OOF predictions ``(n_rows, n_estimators, width)``; rows never tested stay NaN."""
    oof = np.full((len(y), len(estimators), width), np.nan)
    tested = np.zeros(len(y), dtype=bool)
    for fold, (train, test) in enumerate(splits):
        if tested[test].any():
            row = int(test[tested[test]][0])
            raise ValueError(
                f"cv tests row {row} again in fold {fold}: an out-of-fold ensemble needs each "
                "row tested at most once, use PurgedKFold or a walk-forward splitter"
            )
        tested[test] = True
        for j, (_, est) in enumerate(estimators):
            fitted = clone(est).fit(_rows(X, train), y[train])
            oof[test, j] = predict_block(fitted, _rows(X, test))
    if not tested.any():
        raise ValueError(f"cv yielded no test rows for {len(y)} rows: check the splitter")
    return oof


def _inverse_loss_weights(losses: FloatArray) -> FloatArray:
    """Weights proportional to ``1 / loss``; zero-loss estimators share all the weight."""
    zero = losses <= 0.0
    raw = zero.astype(np.float64) if zero.any() else 1.0 / losses
    return raw / raw.sum()


class OutOfFoldEnsemble(RegressorMixin, BaseEstimator):
    """Regression ensemble weighted (or stacked) by out-of-fold performance.

    Parameters
    ----------
    estimators
        ``(name, estimator)`` pairs; each is cloned per fold and refitted on all rows.
    method
        ``"weighted"``: average weighted by inverse OOF loss; ``"stacked"``: a
        meta-estimator fitted on the OOF predictions.
    cv
        Splitter with ``split(X, y)`` yielding ``(train, test)`` row indices, each row
        tested at most once (e.g. ``PurgedKFold``). None: time-ordered purged walk-forward
        (5 test blocks after the first ``n_rows // 6`` rows, see the module docstring).
    metric
        OOF loss for the weights: ``"mse"`` or ``"mae"`` (lower is better).
    meta_estimator
        Stacking model on the OOF prediction columns; None means
        ``Ridge(alpha=1.0, positive=True)`` (non-negative weights plus an intercept).

    Attributes
    ----------
    estimators_ : list
        Base estimators refitted on all rows, in the order of ``estimators``.
    oof_predictions_ : numpy.ndarray
        ``(n_rows, n_estimators)`` OOF predictions; NaN for rows no fold tested.
    oof_scores_ : numpy.ndarray
        OOF loss (``metric``) of each estimator over the rows it predicted.
    weights_ : numpy.ndarray
        Inverse-loss weights summing to 1 (``method="weighted"`` only).
    meta_estimator_ : estimator
        Fitted meta-estimator (``method="stacked"`` only).

    Examples
    --------
    >>> from sklearn.dummy import DummyRegressor
    >>> from sklearn.linear_model import Ridge
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 2))
    >>> y = X @ [1.0, -0.5] + 0.1 * rng.normal(size=120)
    >>> ens = OutOfFoldEnsemble([("ridge", Ridge()), ("mean", DummyRegressor())]).fit(X, y)
    >>> ens.oof_predictions_.shape, bool(ens.weights_[0] > 0.95)
    ((120, 2), True)
    >>> ens.predict(X[:2]).shape
    (2,)
    """

    def __init__(
        self,
        estimators: list[tuple[str, Any]],
        *,
        method: Method = "weighted",
        cv: Any = None,
        metric: Literal["mse", "mae"] = "mse",
        meta_estimator: Any = None,
    ) -> None:
        self.estimators = estimators
        self.method = method
        self.cv = cv
        self.metric = metric
        self.meta_estimator = meta_estimator

    def fit(self, X: Any, y: Any) -> OutOfFoldEnsemble:
        """Compute OOF predictions, weights or the meta-model, then refit on all rows."""
        _check_estimators(self.estimators, "predict")
        _check_choice("method", self.method, METHODS)
        _check_choice("metric", self.metric, REGRESSION_METRICS)
        X, y = _prepare(X, y)
        y = y.astype(np.float64)

        def predict_block(est: Any, X_test: Any) -> FloatArray:
            return np.asarray(est.predict(X_test), dtype=np.float64).reshape(-1, 1)

        splits = _splits(self.cv, X, y)
        oof = _out_of_fold(list(self.estimators), X, y, splits, predict_block, 1)[:, :, 0]
        self.oof_predictions_ = oof
        err = oof - y[:, None]
        err = err**2 if self.metric == "mse" else np.abs(err)
        self.oof_scores_ = np.nanmean(err, axis=0)
        if self.method == "weighted":
            self.weights_ = _inverse_loss_weights(self.oof_scores_)
        else:
            complete = np.isfinite(oof).all(axis=1)
            self.meta_estimator_ = (
                Ridge(alpha=1.0, positive=True)
                if self.meta_estimator is None
                else clone(self.meta_estimator)
            )
            self.meta_estimator_.fit(oof[complete], y[complete])
        self.estimators_ = [clone(est).fit(X, y) for _, est in self.estimators]
        self.n_features_in_ = X.shape[1] if X.ndim == 2 else 1
        return self

    def predict(self, X: Any) -> FloatArray:
        """Weighted average (or meta-model output) of the refitted base predictions."""
        if not hasattr(self, "estimators_"):
            raise ValueError("this OutOfFoldEnsemble is not fitted yet: call fit(X, y) first")
        X = X if hasattr(X, "iloc") else np.asarray(X)
        base = np.column_stack([np.asarray(e.predict(X), np.float64) for e in self.estimators_])
        if self.method == "weighted":
            return base @ self.weights_
        return np.asarray(self.meta_estimator_.predict(base), dtype=np.float64)


def _place_proba(
    proba: FloatArray, seen: npt.NDArray[Any], classes: npt.NDArray[Any]
) -> FloatArray:
    """Spread the columns of ``proba`` (classes ``seen``) over all ``classes``; others get 0.

    A walk-forward fold may train on rows that miss a class, so its model has fewer columns.
    """
    out = np.zeros((proba.shape[0], classes.size))
    out[:, np.searchsorted(classes, seen)] = proba
    return out


def _aligned_proba(est: Any, X_test: Any, classes: npt.NDArray[Any]) -> FloatArray:
    return _place_proba(est.predict_proba(X_test), est.classes_, classes)


class OutOfFoldEnsembleClassifier(ClassifierMixin, BaseEstimator):
    """Classification ensemble averaging ``predict_proba``, weighted or stacked by OOF loss.

    Parameters are as in :class:`OutOfFoldEnsemble`, except:

    Parameters
    ----------
    metric
        OOF loss for the weights: ``"log_loss"`` or ``"brier"`` (multi-class Brier score).
    meta_estimator
        Stacking classifier on the OOF probabilities of all estimators side by side
        (``n_estimators * n_classes`` columns); None means ``LogisticRegression()``.

    Attributes
    ----------
    classes_ : numpy.ndarray
        Sorted class labels seen in ``fit``.
    oof_predictions_ : numpy.ndarray
        ``(n_rows, n_estimators, n_classes)`` OOF probabilities; NaN for rows never tested.
    oof_scores_, weights_, meta_estimator_, estimators_
        As in :class:`OutOfFoldEnsemble`.

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = (X[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int)
    >>> ens = OutOfFoldEnsembleClassifier(
    ...     [("logit", LogisticRegression()), ("prior", DummyClassifier())]).fit(X, y)
    >>> bool(ens.weights_[0] > ens.weights_[1]), ens.predict_proba(X[:3]).shape
    (True, (3, 2))
    """

    def __init__(
        self,
        estimators: list[tuple[str, Any]],
        *,
        method: Method = "weighted",
        cv: Any = None,
        metric: Literal["log_loss", "brier"] = "log_loss",
        meta_estimator: Any = None,
    ) -> None:
        self.estimators = estimators
        self.method = method
        self.cv = cv
        self.metric = metric
        self.meta_estimator = meta_estimator

    def fit(self, X: Any, y: Any) -> OutOfFoldEnsembleClassifier:
        """Compute OOF probabilities, weights or the meta-model, then refit on all rows."""
        _check_estimators(self.estimators, "predict_proba")
        _check_choice("method", self.method, METHODS)
        _check_choice("metric", self.metric, CLASSIFICATION_METRICS)
        X, y = _prepare(X, y)
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise ValueError(f"y must hold at least 2 classes, got {self.classes_.tolist()}")
        classes = self.classes_

        def predict_block(est: Any, X_test: Any) -> FloatArray:
            return _aligned_proba(est, X_test, classes)

        splits = _splits(self.cv, X, y)
        oof = _out_of_fold(list(self.estimators), X, y, splits, predict_block, classes.size)
        self.oof_predictions_ = oof
        onehot = (y[:, None] == classes[None, :]).astype(np.float64)
        if self.metric == "log_loss":
            p_true = np.einsum("nmk,nk->nm", oof, onehot)
            loss = -np.log(np.clip(p_true, _PROBA_FLOOR, 1.0))
        else:
            loss = ((oof - onehot[:, None, :]) ** 2).sum(axis=2)
        self.oof_scores_ = np.nanmean(loss, axis=0)
        if self.method == "weighted":
            self.weights_ = _inverse_loss_weights(self.oof_scores_)
        else:
            flat = oof.reshape(len(y), -1)
            complete = np.isfinite(flat).all(axis=1)
            self.meta_estimator_ = (
                LogisticRegression() if self.meta_estimator is None else clone(self.meta_estimator)
            )
            self.meta_estimator_.fit(flat[complete], y[complete])
        self.estimators_ = [clone(est).fit(X, y) for _, est in self.estimators]
        self.n_features_in_ = X.shape[1] if X.ndim == 2 else 1
        return self

    def predict_proba(self, X: Any) -> FloatArray:
        """Weighted average (or meta-model output) of the refitted base probabilities."""
        if not hasattr(self, "estimators_"):
            raise ValueError(
                "this OutOfFoldEnsembleClassifier is not fitted yet: call fit(X, y) first"
            )
        X = X if hasattr(X, "iloc") else np.asarray(X)
        base = np.stack([_aligned_proba(e, X, self.classes_) for e in self.estimators_], axis=1)
        if self.method == "weighted":
            return np.einsum("nmk,m->nk", base, self.weights_)
        meta_proba = self.meta_estimator_.predict_proba(base.reshape(len(base), -1))
        return _place_proba(meta_proba, self.meta_estimator_.classes_, self.classes_)

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """The class with the highest ensemble probability."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
