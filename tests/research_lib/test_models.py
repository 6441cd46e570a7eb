"""The walk-forward split and the ridge baseline: out of sample, causal, and correct."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from research_lib.config import ModelConfig
from research_lib.models import lagged_design, walk_forward_by_symbol, walk_forward_predict
from research_lib.validation import walk_forward_splits


@given(
    n_rows=st.integers(20, 2_000),
    n_splits=st.integers(1, 8),
    train_frac=st.floats(0.1, 0.8),
    gap_rows=st.integers(0, 5),
)
def test_splits_train_strictly_before_test_and_cover_the_rest(
    n_rows: int, n_splits: int, train_frac: float, gap_rows: int
) -> None:
    min_train = max(1, int(n_rows * train_frac))
    if n_rows - min_train < n_splits:
        with pytest.raises(ValueError, match="too short"):
            list(walk_forward_splits(n_rows=n_rows, n_splits=n_splits, min_train_rows=min_train))
        return
    folds = list(
        walk_forward_splits(
            n_rows=n_rows, n_splits=n_splits, min_train_rows=min_train, gap_rows=gap_rows
        )
    )
    assert len(folds) == n_splits
    tested = np.concatenate([test for _, test in folds])
    assert np.array_equal(tested, np.arange(min_train, n_rows)), "test blocks tile the rest"
    for train, test in folds:
        assert len(test) > 0
        if len(train):
            assert train.max() < test.min() - gap_rows, "training never sees the test block"


def features_frame(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pl.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 3_600_000,
            "ret_1": np.r_[np.nan, np.diff(np.log(close))],
            "rsi": rng.uniform(0, 100, n),
            "zscore": rng.normal(size=n),
            "ema_fast": close * (1 + rng.normal(0, 0.001, n)),
            "ema_slow": close,
        }
    )


def test_lagged_design_uses_only_the_past_and_targets_the_next_return() -> None:
    feats = features_frame(50)
    design = lagged_design(feats, lags=3)
    row = design.filter(pl.col("ts") == 10 * 3_600_000).row(0, named=True)
    ret = feats["ret_1"].to_numpy()
    assert row["ret_1_lag0"] == ret[10] and row["ret_1_lag2"] == ret[8]
    assert row["target"] == ret[11]
    # changing the future never changes a row's features
    future = feats.with_columns(
        pl.when(pl.col("ts") > 10 * 3_600_000).then(0.0).otherwise(pl.col("rsi")).alias("rsi")
    )
    row2 = lagged_design(future, lags=3).filter(pl.col("ts") == 10 * 3_600_000).row(0, named=True)
    assert {k: v for k, v in row2.items() if k != "target"} == {
        k: v for k, v in row.items() if k != "target"
    }


def test_walk_forward_predictions_equal_a_by_hand_refit() -> None:
    feats = features_frame(900)
    config = ModelConfig(lags=2, n_splits=3, min_train_bars=300, ridge_alpha=0.5)
    result = walk_forward_predict(feats, config)
    labelled = lagged_design(feats, lags=2).drop_nulls("target")
    cols = [c for c in labelled.columns if c not in ("ts", "target")]
    x, y = labelled.select(cols).to_numpy(), labelled["target"].to_numpy()
    for fold, (train, test) in enumerate(
        walk_forward_splits(n_rows=len(y), n_splits=3, min_train_rows=300)
    ):
        model = make_pipeline(StandardScaler(), Ridge(alpha=0.5)).fit(x[train], y[train])
        got = result.predictions.filter(pl.col("fold") == fold)["prediction"].to_numpy()
        np.testing.assert_allclose(got, model.predict(x[test]), rtol=1e-12)
    assert result.folds["test_rows"].sum() == len(y) - 300
    assert result.predictions["ts"].is_sorted()


def test_a_learnable_signal_is_found_out_of_sample() -> None:
    feats = features_frame(3_000, seed=1)
    # next return = 0.5 * today's z-score (scaled) + noise: the baseline must pick it up
    rng = np.random.default_rng(2)
    nxt = 0.004 * feats["zscore"].to_numpy() + rng.normal(0, 0.002, feats.height)
    feats = feats.with_columns(pl.Series("ret_1", np.r_[np.nan, nxt[:-1]]))
    result = walk_forward_predict(feats, ModelConfig(lags=1, n_splits=4, min_train_bars=500))
    assert result.folds["ic"].min() > 0.5
    assert result.folds["hit_rate"].min() > 0.7


def test_by_symbol_runs_each_symbol_on_its_own() -> None:
    one = features_frame(700, seed=3)
    two = features_frame(700, seed=4)
    both = pl.concat(
        [one.with_columns(symbol=pl.lit("AAA")), two.with_columns(symbol=pl.lit("BBB"))]
    )
    config = ModelConfig(n_splits=2, min_train_bars=300)
    combined = walk_forward_by_symbol(both, config)
    alone = walk_forward_predict(two, config)
    np.testing.assert_array_equal(
        combined.predictions.filter(pl.col("symbol") == "BBB")["prediction"].to_numpy(),
        alone.predictions["prediction"].to_numpy(),
    )
    assert combined.folds["symbol"].unique().sort().to_list() == ["AAA", "BBB"]
