"""Walk-forward predictions of every model family: same folds, out of sample, reproducible."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from statsmodels.tsa.statespace.sarimax import SARIMAX

from research_lib.config import ModelConfig
from research_lib.models.baseline import lagged_design
from research_lib.models.walk_forward import FAMILIES, make_family, walk_forward_models
from research_lib.splits import purged_walk_forward_splits

CONFIG = ModelConfig(min_train_bars=300, n_splits=3, lags=2)


def features(n: int = 700, *, seed: int = 0, symbol: str = "X") -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ret = np.zeros(n)
    for t in range(1, n):  # an AR(1) return series: something to find
        ret[t] = 0.3 * ret[t - 1] + rng.normal(0, 0.01)
    close = 100 * np.exp(np.cumsum(ret))
    return pl.DataFrame(
        {
            "symbol": symbol,
            "ts": np.arange(n, dtype=np.int64) * 3_600_000,
            "ret_1": np.r_[np.nan, np.diff(np.log(close))],
            "rsi": rng.uniform(0, 100, n),
            "zscore": rng.normal(size=n),
            "ema_fast": close * (1 + rng.normal(0, 0.001, n)),
            "ema_slow": close,
        }
    )


def folds(frame: pl.DataFrame):
    design = lagged_design(frame, lags=CONFIG.lags).drop_nulls("target")
    cols = [c for c in design.columns if c not in ("ts", "target")]
    rows = np.arange(design.height)
    splits = purged_walk_forward_splits(
        label_start=rows, label_end=rows + 1, n_splits=CONFIG.n_splits,
        min_train_rows=CONFIG.min_train_bars,
    )  # fmt: skip
    return design, design.select(cols).to_numpy(), design["target"].to_numpy(), list(splits)


def test_ridge_equals_a_hand_fitted_ridge_on_the_same_purged_folds() -> None:
    frame = features()
    run = walk_forward_models(frame, CONFIG, families=["ridge"], progress=False)
    design, x, y, splits = folds(frame)
    expected = np.concatenate(
        [make_family("ridge", CONFIG).fit(x[tr], y[tr]).predict(x[te]) for tr, te in splits]
    )
    np.testing.assert_array_equal(run.predictions["prediction"].to_numpy(), expected)
    test_rows = np.concatenate([te for _, te in splits])
    np.testing.assert_array_equal(run.predictions["ts"], design["ts"].to_numpy()[test_rows])
    for train, test in splits:  # purged: no training label reaches the test block
        assert train.max() + 1 < test.min()
    assert run.fits["train_rows"].to_list() == [len(tr) for tr, _ in splits]


def test_arima_predicts_one_step_ahead_with_the_training_parameters() -> None:
    frame = features()
    run = walk_forward_models(frame, CONFIG, families=["arima"], progress=False)
    _, _, y, splits = folds(frame)
    train, test = splits[1]
    model = make_family("arima", CONFIG).fit(None, y[train])
    full = SARIMAX(y[: test[-1] + 1], order=model.order_, trend="c").filter(model.results_.params)
    expected = full.predict(start=test[0], end=test[-1])
    got = run.predictions.filter(pl.col("fold") == 1)["prediction"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    # The AR(1) is found: one-step predictions correlate with the realised returns.
    assert np.corrcoef(got, y[test])[0, 1] > 0.15


def test_lstm_test_windows_reach_back_into_known_rows_only() -> None:
    frame = features(520)
    config = ModelConfig(min_train_bars=400, n_splits=2, lags=1)
    run = walk_forward_models(frame, config, families=["lstm"], progress=False)
    preds = run.predictions["prediction"].to_numpy()
    assert np.isfinite(preds).all()  # the first test rows have full windows
    design = lagged_design(frame, lags=1).drop_nulls("target")
    x = design.drop("ts", "target").to_numpy()
    y = design["target"].to_numpy()
    rows = np.arange(len(y))
    train, test = next(
        purged_walk_forward_splits(
            label_start=rows, label_end=rows + 1, n_splits=2, min_train_rows=400
        )
    )
    model = make_family("lstm", config).fit(x[train], y[train])
    # Predicting over all rows and keeping the test rows gives the same values: causal windows.
    np.testing.assert_allclose(model.predict(x)[test], preds[: len(test)], rtol=1e-6)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "lstm"])
def test_each_family_is_reproducible_and_out_of_sample(family: str) -> None:
    frame = pl.concat([features(seed=1, symbol="A"), features(seed=2, symbol="B")])
    first = walk_forward_models(frame, CONFIG, families=[family], progress=False)
    second = walk_forward_models(frame, CONFIG, families=[family], progress=False)
    assert first.predictions.equals(second.predictions)
    assert first.predictions["symbol"].unique().sort().to_list() == ["A", "B"]
    assert first.predictions["prediction"].null_count() == 0
    assert first.fits.height == 2 * CONFIG.n_splits


def test_bad_families_and_short_histories_are_named() -> None:
    with pytest.raises(ValueError, match="families=\\['ridge', 'xgboost'\\]"):
        ModelConfig(families=("ridge", "xgboost"))
    with pytest.raises(ValueError, match="X: 97 labelled rows leave no test rows"):
        walk_forward_models(features(100), CONFIG, families=["ridge"], progress=False)


@pytest.mark.parametrize("family", ["logistic", "hist_gradient_boosting", "mlp", "ensemble"])
def test_classifiers_give_the_probability_of_an_up_move(family: str) -> None:
    frame = features()
    run = walk_forward_models(
        frame, CONFIG, families=[family], task="classification", progress=False
    )
    preds = run.predictions
    probability = preds["prediction"].to_numpy()
    assert ((probability > 0) & (probability < 1)).all()
    np.testing.assert_array_equal(preds["outcome"], (preds["target"] > 0).cast(pl.Int64))
    if family == "logistic":
        _, x, y, splits = folds(frame)
        expected = np.concatenate(
            [
                make_family("logistic", CONFIG, task="classification")
                .fit(x[tr], (y[tr] > 0).astype(int))
                .predict_proba(x[te])[:, 1]
                for tr, te in splits
            ]
        )
        np.testing.assert_allclose(probability, expected, rtol=1e-12)
    # The AR(1) makes the direction predictable: up moves get the higher probabilities.
    up = preds["outcome"].to_numpy() == 1
    assert probability[up].mean() > probability[~up].mean()


def test_arima_is_not_a_classifier() -> None:
    with pytest.raises(ValueError, match="for classification use one or more of"):
        walk_forward_models(
            features(), CONFIG, families=["arima"], task="classification", progress=False
        )
