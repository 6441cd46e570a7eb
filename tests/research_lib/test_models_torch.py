"""Tests for research_lib.models.torch_nets: determinism, learning, early stopping, causality,
pickling, scikit-learn's estimator checks and parameter validation.

All data are tiny synthetic arrays drawn here from seeded NumPy generators.
"""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
from sklearn.metrics import r2_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from research_lib.models.torch_nets import (
    TorchLSTMRegressor,
    TorchMLPClassifier,
    TorchMLPRegressor,
)


def _planted_regression(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 3))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] - 0.3 * X[:, 2] + 0.05 * rng.normal(size=n)
    return X, y


def _lagged(n: int, lag: int = 3, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1))
    y = np.zeros(n)
    y[lag:] = x[:-lag, 0]  # y_t = x_{t-lag}
    return x, y


def _mlp(**kwargs: object) -> TorchMLPRegressor:
    params = {"hidden_sizes": (16,), "learning_rate": 1e-2, "max_epochs": 60, "batch_size": 32}
    params.update(kwargs)
    return TorchMLPRegressor(**params)  # type: ignore[arg-type]


def _lstm(**kwargs: object) -> TorchLSTMRegressor:
    params = {
        "window_bars": 6,
        "hidden_size": 8,
        "learning_rate": 2e-2,
        "max_epochs": 40,
        "batch_size": 32,
        "patience": 8,
    }
    params.update(kwargs)
    return TorchLSTMRegressor(**params)  # type: ignore[arg-type]


# (1) determinism ----------------------------------------------------------------------------


def test_mlp_same_seed_is_bit_identical_and_other_seed_differs() -> None:
    X, y = _planted_regression(200)
    a = _mlp(random_state=3, max_epochs=10).fit(X, y).predict(X)
    b = _mlp(random_state=3, max_epochs=10).fit(X, y).predict(X)
    c = _mlp(random_state=4, max_epochs=10).fit(X, y).predict(X)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_lstm_same_seed_is_bit_identical_and_other_seed_differs() -> None:
    x, y = _lagged(150)
    a = _lstm(random_state=3, max_epochs=5).fit(x, y).predict(x)
    b = _lstm(random_state=3, max_epochs=5).fit(x, y).predict(x)
    c = _lstm(random_state=4, max_epochs=5).fit(x, y).predict(x)
    assert np.array_equal(a, b, equal_nan=True)
    assert not np.array_equal(a, c, equal_nan=True)


def test_fit_restores_torch_global_state() -> None:
    import torch

    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    rng_state = torch.random.get_rng_state()
    _mlp(max_epochs=2).fit(*_planted_regression(50))
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == det
    assert torch.equal(torch.random.get_rng_state(), rng_state)


# (2) learning -------------------------------------------------------------------------------


def test_mlp_learns_planted_signal_out_of_sample() -> None:
    X, y = _planted_regression(600)
    model = _mlp(hidden_sizes=(32,), max_epochs=150, patience=15).fit(X[:400], y[:400])
    assert r2_score(y[400:], model.predict(X[400:])) > 0.9


def test_mlp_classifier_learns_and_gives_probabilities() -> None:
    X, y = _planted_regression(400)
    labels = np.where(y > 0, "up", "down")
    model = TorchMLPClassifier(hidden_sizes=(16,), learning_rate=1e-2, max_epochs=60)
    model.fit(X[:300], labels[:300])
    assert model.score(X[300:], labels[300:]) > 0.85
    proba = model.predict_proba(X[300:])
    assert proba.shape == (100, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(model.classes_) == ["down", "up"]


def test_lstm_learns_lagged_dependence_better_than_mean() -> None:
    x, y = _lagged(500)
    model = _lstm().fit(x[:350], y[:350])
    pred = model.predict(x)[350:]
    mse_model = float(np.mean((pred - y[350:]) ** 2))
    mse_mean = float(np.mean((y[:350].mean() - y[350:]) ** 2))
    assert mse_model < 0.3 * mse_mean


def test_lstm_prediction_length_and_warmup_nan() -> None:
    x, y = _lagged(60)
    pred = _lstm(max_epochs=2).fit(x, y).predict(x)
    assert pred.shape == (60,)
    assert np.isnan(pred[:5]).all() and np.isfinite(pred[5:]).all()
    assert np.isnan(_lstm(max_epochs=2).fit(x, y).predict(x[:4])).all()


# (3) early stopping -------------------------------------------------------------------------


def test_early_stopping_triggers_on_noise_and_keeps_best_epoch() -> None:
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(200, 3)), rng.normal(size=200)
    model = _mlp(hidden_sizes=(64,), max_epochs=200, patience=5, validation_fraction=0.25)
    model.fit(X, y)
    assert model.n_epochs_ < 200
    assert model.n_epochs_ == model.best_epoch_ + 5
    assert len(model.loss_curve_) == len(model.validation_scores_) == model.n_epochs_
    assert model.validation_scores_[model.best_epoch_ - 1] == min(model.validation_scores_)


# (4) LSTM causality -------------------------------------------------------------------------


def test_lstm_predictions_do_not_depend_on_future_rows() -> None:
    x, y = _lagged(120)
    model = _lstm(max_epochs=5).fit(x, y)
    base = model.predict(x)
    rng = np.random.default_rng(9)
    for t in (10, 50, 100):
        altered = x.copy()
        altered[t + 1 :] = rng.normal(size=altered[t + 1 :].shape) * 10
        np.testing.assert_array_equal(model.predict(altered)[: t + 1], base[: t + 1])


# (5) pickling -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [_mlp, _lstm])
def test_pickle_and_joblib_round_trip_is_bit_identical(make, tmp_path) -> None:
    x, y = _lagged(100)
    model = make(max_epochs=3).fit(x, y)
    expected = model.predict(x)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(x), expected)
    joblib.dump(model, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict(x), expected)
    assert "_module" not in model.__getstate__()


# (6) scikit-learn's estimator checks --------------------------------------------------------

# Small nets and few epochs keep the whole suite fast. No check is expected to fail; the
# sample_weight checks are skipped by scikit-learn because fit takes no sample_weight.
_CHECKED = [
    TorchMLPRegressor(hidden_sizes=(16,), learning_rate=1e-2, max_epochs=30),
    TorchMLPClassifier(hidden_sizes=(16,), learning_rate=1e-2, max_epochs=30),
]


@parametrize_with_checks(_CHECKED)
def test_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


# (7) parameter validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field", "value"),
    [
        (TorchMLPRegressor, "hidden_sizes", ()),
        (TorchMLPRegressor, "hidden_sizes", (8, 0)),
        (TorchMLPClassifier, "learning_rate", 0.0),
        (TorchMLPRegressor, "weight_decay", -1.0),
        (TorchMLPRegressor, "batch_size", 0),
        (TorchMLPRegressor, "max_epochs", 2.5),
        (TorchMLPRegressor, "patience", 0),
        (TorchMLPRegressor, "validation_fraction", 1.0),
        (TorchMLPRegressor, "random_state", -1),
        (TorchMLPRegressor, "device", "cuda"),
        (TorchLSTMRegressor, "window_bars", 0),
        (TorchLSTMRegressor, "hidden_size", 0),
        (TorchLSTMRegressor, "num_layers", True),
        (TorchLSTMRegressor, "window_bars", 500),
    ],
)
def test_bad_params_raise_value_error_naming_field(make, field, value) -> None:
    x, y = _lagged(40)
    model = make().set_params(**{field: value})  # __init__ never validates
    with pytest.raises(ValueError, match=field):
        model.fit(x, (y > 0).astype(int) if make is TorchMLPClassifier else y)
