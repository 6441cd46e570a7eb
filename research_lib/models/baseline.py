"""The baseline model: ridge regression of the next bar's log return on lagged features.

The design matrix for bar t uses only information known at bar t's close (features at t,
t-1, ..., t-lags+1); the target is the log return from t's close to t+1's close. Predictions
come from walk-forward folds, so every prediction is out of sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from research_lib.config import ModelConfig
from research_lib.validation import walk_forward_splits

FEATURE_COLUMNS: tuple[str, ...] = ("ret_1", "rsi", "zscore", "ema_gap")


def make_baseline(config: ModelConfig) -> Pipeline:
    """A fresh, unfitted scaler + ridge pipeline."""
    return make_pipeline(StandardScaler(), Ridge(alpha=config.ridge_alpha))


def lagged_design(features: pl.DataFrame, *, lags: int) -> pl.DataFrame:
    """One symbol's features as a lagged design matrix with the next-bar target.

    Returns columns ``ts``, ``<feature>_lag<k>`` for k in 0..lags-1, and ``target`` (the
    next bar's log return, null on the last bar). Rows with a null feature are dropped.
    """
    frame = features.sort("ts").with_columns(
        ((pl.col("ema_fast") / pl.col("ema_slow")) - 1.0).alias("ema_gap"),
        pl.col("ret_1").shift(-1).alias("target"),
    )
    lagged = [
        pl.col(name).shift(k).alias(f"{name}_lag{k}")
        for name in FEATURE_COLUMNS
        for k in range(lags)
    ]
    design = frame.select("ts", *lagged, "target")
    feature_cols = [c for c in design.columns if c not in ("ts", "target")]
    return design.drop_nulls(feature_cols).fill_nan(None).drop_nulls(feature_cols)


@dataclass(frozen=True)
class WalkForwardResult:
    """Out-of-sample predictions and per-fold scores of one symbol."""

    predictions: pl.DataFrame
    """Columns ts, fold, prediction, target (target null on the last bar)."""
    folds: pl.DataFrame
    """Per fold: fold, train_rows, test_rows, r2, hit_rate, ic (Spearman rank correlation)."""


def walk_forward_predict(features: pl.DataFrame, config: ModelConfig) -> WalkForwardResult:
    """Fit the baseline on expanding windows and predict each following block.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 800)))
    >>> feats = pl.DataFrame({"ts": np.arange(800) * 3_600_000, "ret_1": np.r_[np.nan,
    ...     np.diff(np.log(close))], "rsi": rng.uniform(0, 100, 800), "zscore":
    ...     rng.normal(size=800), "ema_fast": close, "ema_slow": close})
    >>> out = walk_forward_predict(feats, ModelConfig(min_train_bars=200, n_splits=3))
    >>> out.folds.height
    3
    """
    design = lagged_design(features, lags=config.lags)
    labelled = design.drop_nulls("target")
    feature_cols = [c for c in design.columns if c not in ("ts", "target")]
    x = labelled.select(feature_cols).to_numpy()
    y = labelled["target"].to_numpy()
    preds: list[pl.DataFrame] = []
    scores: list[dict[str, float]] = []
    splits = walk_forward_splits(
        n_rows=len(y), n_splits=config.n_splits, min_train_rows=config.min_train_bars
    )
    for fold, (train, test) in enumerate(splits):
        model = make_baseline(config).fit(x[train], y[train])
        yhat = model.predict(x[test])
        preds.append(
            pl.DataFrame(
                {
                    "ts": labelled["ts"].to_numpy()[test],
                    "fold": np.full(len(test), fold, dtype=np.int64),
                    "prediction": yhat,
                    "target": y[test],
                }
            )
        )
        scores.append(_score(fold, len(train), y[test], yhat))
    return WalkForwardResult(predictions=pl.concat(preds), folds=pl.DataFrame(scores))


def _score(fold: int, train_rows: int, y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    resid = float(np.sum((y - yhat) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    ranks_y = np.argsort(np.argsort(y))
    ranks_p = np.argsort(np.argsort(yhat))
    ic = float(np.corrcoef(ranks_y, ranks_p)[0, 1]) if np.std(yhat) > 0 else float("nan")
    return {
        "fold": fold,
        "train_rows": train_rows,
        "test_rows": len(y),
        "r2": 1.0 - resid / total if total > 0 else float("nan"),
        "hit_rate": float(np.mean(np.sign(yhat) == np.sign(y))),
        "ic": ic,
    }


def walk_forward_by_symbol(features: pl.DataFrame, config: ModelConfig) -> WalkForwardResult:
    """``walk_forward_predict`` for each symbol; both frames gain a ``symbol`` column."""
    preds, folds = [], []
    for (symbol,), frame in features.sort("symbol", "ts").group_by("symbol", maintain_order=True):
        result = walk_forward_predict(frame, config)
        preds.append(result.predictions.select(pl.lit(symbol).alias("symbol"), pl.all()))
        folds.append(result.folds.select(pl.lit(symbol).alias("symbol"), pl.all()))
    return WalkForwardResult(predictions=pl.concat(preds), folds=pl.concat(folds))
