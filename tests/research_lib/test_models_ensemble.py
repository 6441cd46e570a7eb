"""Out-of-fold ensembles: weights, a brute-force OOF reference, no leakage, stacking, cloning.

All data is synthetic and small (a few hundred rows drawn from a seeded generator).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from research_lib.models.ensemble import OutOfFoldEnsemble, OutOfFoldEnsembleClassifier
from research_lib.models.tabular import make_model
from research_lib.splits import PurgedKFold

# Train-row ids seen by each RecordingRegressor.fit, in call order. A module-level log,
# because clone() deep-copies parameters, so a list passed as a parameter would not be shared.
FITS: list[np.ndarray] = []


class RecordingRegressor(RegressorMixin, BaseEstimator):
    """Logs the row ids (column 0 of X) it is fitted on; predicts the training mean."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> RecordingRegressor:
        FITS.append(np.asarray(X)[:, 0].astype(np.int64))
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.mean_)


class ColumnPicker(RegressorMixin, BaseEstimator):
    """Predicts one column of X unchanged: a base model whose output we fully control."""

    def __init__(self, column: int = 0) -> None:
        self.column = column

    def fit(self, X: np.ndarray, y: np.ndarray) -> ColumnPicker:
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X)[:, self.column]


def _linear_data(n_rows: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 3))
    return X, X @ [1.0, -2.0, 0.5] + 0.2 * rng.normal(size=n_rows)


def test_weights_favour_the_planted_better_model() -> None:
    X, y = _linear_data()
    ens = OutOfFoldEnsemble([("mean", DummyRegressor()), ("ridge", make_model("ridge"))])
    ens.fit(X, y)
    assert ens.weights_.sum() == pytest.approx(1.0)
    assert ens.weights_[1] > 0.95
    assert ens.oof_scores_[1] < ens.oof_scores_[0]
    # Default walk-forward: the first n_rows // 6 rows are never tested and stay NaN.
    assert np.isnan(ens.oof_predictions_[: 200 // 6]).all()
    assert np.isfinite(ens.oof_predictions_[200 // 6 :]).all()
    expected = np.column_stack([e.predict(X) for e in ens.estimators_]) @ ens.weights_
    np.testing.assert_allclose(ens.predict(X), expected)


def test_oof_predictions_equal_clones_fitted_by_hand_on_each_fold() -> None:
    X, y = _linear_data(n_rows=90)
    cv = PurgedKFold(3, label_end=np.arange(90) + 2, embargo_rows=1)
    members = [
        ("ridge", make_model("ridge", alpha=3.0)),
        ("forest", make_model("random_forest", task="regression", n_estimators=5)),
    ]
    ens = OutOfFoldEnsemble(members, cv=cv).fit(X, y)
    expected = np.full((90, 2), np.nan)
    for train, test in cv.split(X):
        for j, (_, est) in enumerate(members):
            expected[test, j] = clone(est).fit(X[train], y[train]).predict(X[test])
    np.testing.assert_array_equal(ens.oof_predictions_, expected)
    sq_err = (expected - y[:, None]) ** 2
    np.testing.assert_array_equal(ens.oof_scores_, sq_err.mean(axis=0))


def test_no_fold_trains_on_purged_rows() -> None:
    n_rows, horizon = 60, 4
    ids = np.arange(n_rows)
    X = np.column_stack([ids, np.random.default_rng(1).normal(size=n_rows)])
    y = np.random.default_rng(2).normal(size=n_rows)
    start, end = ids, ids + horizon  # overlapping label windows
    cv = PurgedKFold(4, label_start=start, label_end=end, embargo_rows=2)
    FITS.clear()
    OutOfFoldEnsemble([("rec", RecordingRegressor())], cv=cv).fit(X, y)
    folds = list(cv.split(X))
    assert len(FITS) == len(folds) + 1  # one fit per fold, then the refit on all rows
    for seen, (train, test) in zip(FITS[:-1], folds, strict=True):
        np.testing.assert_array_equal(seen, train)
        span_start, span_end = start[test].min(), end[test].max()
        overlaps = (start[seen] <= span_end) & (end[seen] >= span_start)
        assert not overlaps.any(), "a training label overlaps the test fold's labels"
        after = seen[start[seen] > span_end]
        first_free = np.searchsorted(start, span_end, side="right")
        assert (after >= first_free + 2).all(), "an embargoed row was used for training"
    np.testing.assert_array_equal(FITS[-1], ids)


def test_stacking_recovers_the_generating_mix() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    y = 0.7 * X[:, 0] + 0.3 * X[:, 1] + 0.05 * rng.normal(size=400)
    members = [("a", ColumnPicker(column=0)), ("b", ColumnPicker(column=1))]
    ens = OutOfFoldEnsemble(members, method="stacked").fit(X, y)
    np.testing.assert_allclose(ens.meta_estimator_.coef_, [0.7, 0.3], atol=0.02)
    assert (ens.meta_estimator_.coef_ >= 0).all()
    np.testing.assert_allclose(ens.predict(X), 0.7 * X[:, 0] + 0.3 * X[:, 1], atol=0.05)


def test_fits_are_deterministic_with_seeded_members() -> None:
    X, y = _linear_data(n_rows=120)

    def fitted(method: str) -> OutOfFoldEnsemble:
        members = [
            ("forest", make_model("random_forest", task="regression", n_estimators=5)),
            (
                "forest7",
                make_model("random_forest", task="regression", n_estimators=5, random_state=7),
            ),
        ]
        return OutOfFoldEnsemble(members, method=method).fit(X, y)

    for method in ("weighted", "stacked"):
        a, b = fitted(method), fitted(method)
        np.testing.assert_array_equal(a.oof_predictions_, b.oof_predictions_)
        np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_clone_and_get_params_round_trip() -> None:
    cv = PurgedKFold(3)
    ens = OutOfFoldEnsemble([("ridge", Ridge(alpha=2.0))], method="stacked", cv=cv, metric="mae")
    params = ens.get_params(deep=False)
    assert params["method"] == "stacked" and params["metric"] == "mae" and params["cv"] is cv
    twin = clone(ens)
    assert twin.get_params(deep=False).keys() == params.keys()
    assert twin.estimators[0][1].get_params() == Ridge(alpha=2.0).get_params()
    rebuilt = OutOfFoldEnsemble(**params)
    assert rebuilt.get_params(deep=False) == params
    assert rebuilt.set_params(method="weighted").method == "weighted"
    X, y = _linear_data(n_rows=60)
    assert not hasattr(twin, "estimators_")
    twin.fit(X, y)
    assert not hasattr(ens, "estimators_")  # clone fitted, the original untouched


def test_classifier_weights_and_probabilities() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(240, 2))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=240) > 0, "up", "down")
    members = [("prior", DummyClassifier()), ("logit", LogisticRegression())]
    for metric in ("log_loss", "brier"):
        ens = OutOfFoldEnsembleClassifier(members, metric=metric).fit(X, y)
        assert ens.weights_[1] > ens.weights_[0]
        proba = ens.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert (ens.predict(X) == y).mean() > 0.8
    stacked = OutOfFoldEnsembleClassifier(members, method="stacked").fit(X, y)
    assert stacked.oof_predictions_.shape == (240, 2, 2)
    assert (stacked.predict(X) == y).mean() > 0.8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"estimators": []}, "estimators must be a non-empty list"),
        ({"estimators": [("a", Ridge()), ("a", Ridge())]}, "unique"),
        ({"estimators": [Ridge()]}, r"estimators\[0\]"),
        ({"estimators": [("a", Ridge())], "method": "vote"}, "method must be one of"),
        ({"estimators": [("a", Ridge())], "metric": "r2"}, "metric must be one of"),
        ({"estimators": [("a", Ridge())], "cv": 5}, "cv must be None or a splitter"),
    ],
)
def test_invalid_parameters_fail_in_fit(kwargs: dict[str, Any], message: str) -> None:
    X, y = _linear_data(n_rows=30)
    with pytest.raises(ValueError, match=message):
        OutOfFoldEnsemble(**kwargs).fit(X, y)


def test_rows_tested_twice_and_bad_shapes_are_rejected() -> None:
    X, y = _linear_data(n_rows=30)
    twice = [(np.arange(10, 30), np.arange(10)), (np.arange(20, 30), np.arange(5, 15))]

    class Twice:
        def split(self, X: Any, y: Any = None) -> Any:
            return iter(twice)

    with pytest.raises(ValueError, match="tests row 5 again in fold 1"):
        OutOfFoldEnsemble([("a", Ridge())], cv=Twice()).fit(X, y)
    with pytest.raises(ValueError, match="same number of rows"):
        OutOfFoldEnsemble([("a", Ridge())]).fit(X, y[:-1])
    with pytest.raises(ValueError, match="not fitted"):
        OutOfFoldEnsemble([("a", Ridge())]).predict(X)
