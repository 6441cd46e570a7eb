"""The gate's evidence for a model-driven strategy: every model family is a trial.

A model-driven strategy holds the sign of a model's predicted next-bar return (long only, or
long and short). ``model_trials_evidence`` backtests that strategy for every family's
walk-forward out-of-sample predictions (``research_lib.models.walk_forward``), picks the
family with the best Sharpe *before* the out-of-sample start, and gathers the gate's evidence
with the families as the trials. Its look-ahead and warm-up checks run the strategy the way
the executor would: features from the bars (``research_lib.features.add_features``), the
lagged design, a model of the chosen family fitted on that symbol's rows before the
out-of-sample start, and the sign of its prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from research_lib.config import BacktestConfig, FeatureConfig, ModelConfig, ValidationConfig
from research_lib.features import add_features
from research_lib.gate import GateEvidence, trial_panel
from research_lib.models.baseline import lagged_design
from research_lib.models.walk_forward import _fit_predict, make_family

__all__ = ["ModelCandidate", "family_table", "model_trials_evidence", "sign_targets"]


def sign_targets(predictions: pl.DataFrame, *, allow_short: bool) -> pl.DataFrame:
    """``symbol``, ``ts``, ``target``: +1 on a positive prediction, -1 (or 0) on a negative
    one, 0 on a zero or missing one.

    Examples
    --------
    >>> frame = pl.DataFrame({"symbol": ["A"] * 3, "ts": [0, 1, 2], "prediction": [0.2, -0.1, 0.0]})
    >>> sign_targets(frame, allow_short=True)["target"].to_list()
    [1.0, -1.0, 0.0]
    """
    down = -1.0 if allow_short else 0.0
    return predictions.select(
        "symbol",
        "ts",
        target=pl.when(pl.col("prediction") > 0)
        .then(1.0)
        .when(pl.col("prediction") < 0)
        .then(down)
        .otherwise(0.0),
    )


@dataclass(frozen=True, eq=False)
class ModelCandidate:
    """The chosen family and the evidence about it.

    Attributes
    ----------
    family
        The family with the best in-sample (pre out-of-sample) Sharpe.
    evidence
        The gate's evidence, the families as the trials.
    in_sample_sharpe
        Per family, the per-bar Sharpe before the out-of-sample start (annualised).
    description
        A JSON-able description of the strategy, hashed into the record's candidate id.
    """

    family: str
    evidence: GateEvidence
    in_sample_sharpe: dict[str, float]
    description: dict[str, Any]


def model_trials_evidence(
    bars: pl.DataFrame,
    predictions: pl.DataFrame,
    *,
    feature_config: FeatureConfig,
    model_config: ModelConfig,
    backtest: BacktestConfig,
    validation: ValidationConfig,
    periods_per_year: float,
    allow_short: bool = True,
) -> ModelCandidate:
    """Choose a family on pre-out-of-sample returns and gather the gate's evidence for it.

    Parameters
    ----------
    bars
        The lake bars the predictions were made on.
    predictions
        ``walk_forward_models(...).predictions`` (regression): ``model``, ``symbol``, ``ts``,
        ``prediction``.
    feature_config, model_config
        How the features and the models were made, to re-run the chosen family in the
        look-ahead and warm-up checks.
    backtest, validation, periods_per_year
        Costs, the gate's settings, bars per year.
    allow_short
        Short on a negative prediction (else flat).
    """
    trials = {
        str(name): sign_targets(part, allow_short=allow_short)
        for (name,), part in predictions.group_by("model", maintain_order=True)
    }
    panel = trial_panel(
        bars, trials, backtest=backtest, validation=validation,
        periods_per_year=periods_per_year,
    )  # fmt: skip
    sharpe = panel.in_sample_sharpe()
    names = list(panel.names)
    family = names[int(np.argmax(sharpe))]
    start = panel.oos_start
    models = _fit_before(bars, family, start, feature_config, model_config)

    def signal_fn(frame: pl.DataFrame) -> pl.DataFrame:
        symbol = str(frame["symbol"][0])
        features = add_features(frame, feature_config)
        design = lagged_design(features, lags=model_config.lags)
        columns = [c for c in design.columns if c not in ("ts", "target")]
        target = np.zeros(frame.height)
        if design.height:
            model = models[symbol]
            if family == "arima":
                prediction = _arima_one_step(model, design["target"].to_numpy())
            else:
                prediction = model.predict(design.select(columns).to_numpy())
            down = -1.0 if allow_short else 0.0
            side = np.where(prediction > 0, 1.0, np.where(prediction < 0, down, 0.0))
            rows = np.searchsorted(frame["ts"].to_numpy(), design["ts"].to_numpy())
            target[rows] = side
        return frame.with_columns(target=pl.Series(target))

    evidence = panel.evidence(family, bars=bars, validation=validation, signal_fn=signal_fn)
    description = {
        "strategy": "model_sign",
        "family": family,
        "allow_short": allow_short,
        "features": feature_config.model_dump(mode="json"),
        "model": model_config.model_dump(mode="json"),
    }
    return ModelCandidate(
        family=family,
        evidence=evidence,
        in_sample_sharpe={n: float(s) for n, s in zip(names, sharpe, strict=True)},
        description=description,
    )


def _fit_before(
    bars: pl.DataFrame,
    family: str,
    start: int,
    feature_config: FeatureConfig,
    model_config: ModelConfig,
) -> dict[str, Any]:
    """Per symbol, ``family`` fitted on the labelled rows whose label ends before ``start``."""
    models = {}
    for (symbol,), frame in bars.sort("symbol", "ts").group_by("symbol", maintain_order=True):
        design = lagged_design(add_features(frame, feature_config), lags=model_config.lags)
        design = design.drop_nulls("target")
        ts = design["ts"].to_numpy()
        train = np.flatnonzero(ts < start)[:-1]  # the last one's label reaches the start bar
        x = design.drop("ts", "target").to_numpy()
        y = design["target"].to_numpy()
        model = make_family(family, model_config)
        if family == "arima":
            model.fit(None, y[train])
        else:
            _fit_predict(family, model, x, y, train, train[-1:], "regression")
        models[str(symbol)] = model
    return models


def _arima_one_step(model: Any, targets: np.ndarray) -> np.ndarray:
    """One-step predictions of each row's target from the targets before it (fitted params).

    ``targets`` is the design's next-bar return, null (NaN) on the last row: at the last bar
    every earlier target is known, so rows ``0..n-2`` come from the filter's one-step
    predictions and row ``n-1`` from its forecast.
    """
    known = np.asarray(targets[:-1], dtype=np.float64)
    if known.size == 0:
        return np.asarray(model.results_.forecast(1), dtype=np.float64)
    applied = model.results_.apply(known)
    return np.concatenate((np.asarray(applied.predict()), np.asarray(applied.forecast(1))))


def family_table(candidate: ModelCandidate, *, periods_per_year: float) -> pl.DataFrame:
    """Per family: the Sharpe the choice was made on, and its strategy's out-of-sample record.

    Columns ``model``, ``chosen``, ``in_sample_sharpe``, ``oos_sharpe``, ``oos_return``
    (compounded) and ``oos_max_drawdown`` (positive fraction), from the evidence's trial
    returns (equal-weight across symbols, after costs).
    """
    evidence = candidate.evidence
    n_oos = evidence.oos_returns.size
    oos = evidence.trial_returns[-n_oos:]
    rows = []
    for j, name in enumerate(candidate.in_sample_sharpe):
        column = oos[:, j]
        sd = column.std(ddof=1)
        equity = np.cumprod(1.0 + column)
        peak = np.maximum.accumulate(np.concatenate(([1.0], equity)))
        drawdown = 1.0 - np.concatenate(([1.0], equity)) / peak
        rows.append(
            {
                "model": name,
                "chosen": name == candidate.family,
                "in_sample_sharpe": candidate.in_sample_sharpe[name],
                "oos_sharpe": column.mean() / sd * np.sqrt(periods_per_year) if sd > 0 else None,
                "oos_return": float(equity[-1] - 1.0),
                "oos_max_drawdown": float(drawdown.max()),
            }
        )
    return pl.DataFrame(rows).sort("in_sample_sharpe", descending=True)
