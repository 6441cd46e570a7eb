"""Walk-forward out-of-sample predictions of every model family, on the same folds.

``walk_forward_models`` builds each symbol's lagged design (``baseline.lagged_design``: the
features known at bar t's close, the target the next bar's log return), cuts it into purged
walk-forward folds (``research_lib.splits.purged_walk_forward_splits``: a row's label spans
bars t..t+1, so the training row just before each test block is purged), fits a fresh,
seeded model of each family on each fold's training rows and predicts its test rows. Every
prediction is out of sample, and every family sees the same rows, so their scores compare.

Families (``FAMILIES``):

- ``ridge``, ``random_forest``, ``hist_gradient_boosting``: ``tabular.make_model``;
- ``mlp``: ``TorchMLPRegressor`` (one hidden layer, early stopping);
- ``lstm``: ``TorchLSTMRegressor`` over the last ``LSTM_WINDOW_BARS`` rows (the test block's
  first windows reach back into the training rows, which are known by then);
- ``arima``: ``ArimaForecaster`` on the target series alone, order chosen by AIC on the
  training rows; test predictions are one step ahead, each from the fitted parameters and
  every target known at the time (statsmodels ``append`` without refitting);
- ``ensemble``: ``OutOfFoldEnsemble`` of ridge and gradient boosting, weighted by their
  out-of-fold loss inside the training rows.

With ``task="classification"`` the label is the direction (next log return > 0) and the
prediction is its probability: ``logistic`` replaces ``ridge``, the tree, torch and ensemble
families use their classifiers, and ``arima`` is not offered.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from research_lib.config import ModelConfig
from research_lib.models.baseline import lagged_design
from research_lib.splits import purged_walk_forward_splits

__all__ = [
    "CLASSIFIERS",
    "FAMILIES",
    "LSTM_WINDOW_BARS",
    "ModelRun",
    "make_family",
    "walk_forward_models",
]

FAMILIES: tuple[str, ...] = (
    "ridge",
    "random_forest",
    "hist_gradient_boosting",
    "mlp",
    "lstm",
    "arima",
    "ensemble",
)
CLASSIFIERS: tuple[str, ...] = (
    "logistic",
    "random_forest",
    "hist_gradient_boosting",
    "mlp",
    "lstm",
    "ensemble",
)
LSTM_WINDOW_BARS = 16
SEED = 0


@dataclass(frozen=True)
class ModelRun:
    """What ``walk_forward_models`` produced.

    Attributes
    ----------
    predictions
        ``model``, ``symbol``, ``ts``, ``fold``, ``prediction`` (the next bar's log return;
        for classification the probability that it is positive), ``target`` (the realised
        log return) and, for classification, ``outcome`` (1 if it was positive, else 0); one
        row per (model, symbol, test row).
    fits
        ``model``, ``symbol``, ``fold``, ``train_rows``, ``test_rows``, ``fit_seconds``.
    """

    predictions: pl.DataFrame
    fits: pl.DataFrame


def make_family(family: str, config: ModelConfig, *, task: str = "regression") -> Any:
    """A fresh, seeded, unfitted model of ``family`` for ``task``."""
    from research_lib.models.tabular import make_model

    classify = task == "classification"
    if family == "ridge" and not classify:
        return make_model("ridge", alpha=config.ridge_alpha, random_state=SEED)
    if family == "logistic" and classify:
        return make_model("logistic", C=1.0 / config.ridge_alpha, random_state=SEED)
    if family == "random_forest":
        return make_model(
            "random_forest", task=task, random_state=SEED,
            n_estimators=100, max_depth=6, min_samples_leaf=20, n_jobs=1,
        )  # fmt: skip
    if family == "hist_gradient_boosting":
        return make_model(
            "hist_gradient_boosting", task=task, random_state=SEED,
            max_iter=100, learning_rate=0.05, min_samples_leaf=50,
        )  # fmt: skip
    if family == "mlp":
        from research_lib.models import torch_nets

        cls = torch_nets.TorchMLPClassifier if classify else torch_nets.TorchMLPRegressor
        return cls(hidden_sizes=(32,), max_epochs=40, patience=5, random_state=SEED)
    if family == "lstm":
        from research_lib.models import torch_nets

        cls = torch_nets.TorchLSTMClassifier if classify else torch_nets.TorchLSTMRegressor
        return cls(
            window_bars=LSTM_WINDOW_BARS, hidden_size=16, max_epochs=15, patience=3,
            batch_size=128, random_state=SEED,
        )  # fmt: skip
    if family == "arima" and not classify:
        from research_lib.models.arima import ArimaForecaster

        return ArimaForecaster(max_p=2, max_d=0, max_q=1)
    if family == "ensemble":
        from research_lib.models import ensemble

        linear = "logistic" if classify else "ridge"
        members = [
            (linear, make_family(linear, config, task=task)),
            ("hgb", make_family("hist_gradient_boosting", config, task=task)),
        ]
        if classify:
            return ensemble.OutOfFoldEnsembleClassifier(members)
        return ensemble.OutOfFoldEnsemble(members)
    known = CLASSIFIERS if classify else FAMILIES
    raise ValueError(f"unknown {task} model family {family!r}; use one of {list(known)}")


def _fit_predict(
    family: str,
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    task: str,
) -> np.ndarray:
    # One OpenMP thread: with torch's OpenMP runtime loaded in the same process, scikit-learn's
    # gradient boosting can spin for minutes on 2 cores (measured: 244 s instead of 2 s).
    with threadpool_limits(limits=1, user_api="openmp"):
        if family == "arima":
            if np.any(np.diff(train) != 1):
                raise ValueError(
                    "arima needs contiguous training rows (an expanding or rolling fold)"
                )
            model.fit(None, y[train])
            # One step ahead over the test block with the same parameters: the purged rows between
            # the training rows and the test block are appended too (their targets are known by
            # the time the test block starts), then each test row is forecast from all before it.
            history = model.results_.append(y[train[-1] + 1 : test[-1] + 1], refit=False)
            first = len(train) + int(test[0] - train[-1] - 1)
            return np.asarray(history.predict(start=first, end=first + len(test) - 1))
        classify = task == "classification"
        labels = (y > 0.0).astype(np.int64) if classify else y
        model.fit(x[train], labels[train])
        rows = test
        if family == "lstm":
            lo = max(int(test[0]) - LSTM_WINDOW_BARS + 1, 0)
            rows = np.arange(lo, int(test[-1]) + 1)
        if classify:
            proba = np.asarray(model.predict_proba(x[rows]))
            up = list(model.classes_).index(1) if 1 in model.classes_ else None
            out = proba[:, up] if up is not None else np.zeros(len(rows))
        else:
            out = np.asarray(model.predict(x[rows]))
        return out[-len(test) :]


def walk_forward_models(
    features: pl.DataFrame,
    config: ModelConfig,
    *,
    families: Sequence[str] | None = None,
    task: Literal["regression", "classification"] = "regression",
    progress: bool | None = None,
) -> ModelRun:
    """Out-of-sample predictions of each model family, per symbol, on shared purged folds.

    Parameters
    ----------
    features
        The ``features`` lake dataset (``symbol``, ``ts``, ``ret_1``, ``rsi``, ``zscore``,
        ``ema_fast``, ``ema_slow``), one or many symbols.
    config
        ``lags``, ``ridge_alpha``, ``n_splits`` (test blocks) and ``min_train_bars``.
    families
        Which of ``FAMILIES`` (``CLASSIFIERS`` for classification) to run; default
        ``config.families`` (regression) or ``("logistic", "hist_gradient_boosting")``.
    task
        ``"regression"`` of the next log return, or ``"classification"`` of its sign.
    progress
        Show a progress bar over (symbol, family); default on when there is more than one.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    >>> feats = pl.DataFrame({"symbol": "X", "ts": np.arange(400) * 3_600_000,
    ...     "ret_1": np.r_[np.nan, np.diff(np.log(close))], "rsi": rng.uniform(0, 100, 400),
    ...     "zscore": rng.normal(size=400), "ema_fast": close, "ema_slow": close})
    >>> run = walk_forward_models(feats, ModelConfig(min_train_bars=100, n_splits=2),
    ...     families=["ridge", "arima"], progress=False)
    >>> run.predictions.group_by("model").len().sort("model").rows()
    [('arima', 296), ('ridge', 296)]
    """
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    known = FAMILIES if task == "regression" else CLASSIFIERS
    default = config.families if task == "regression" else ("logistic", "hist_gradient_boosting")
    chosen = tuple(families if families is not None else default)
    unknown = [f for f in chosen if f not in known]
    if unknown or not chosen:
        raise ValueError(f"families={list(chosen)}: for {task} use one or more of {list(known)}")
    groups = list(features.sort("symbol", "ts").group_by("symbol", maintain_order=True))
    show = len(groups) * len(chosen) > 1 if progress is None else bool(progress)
    predictions: list[pl.DataFrame] = []
    fits: list[dict[str, Any]] = []
    with tqdm(
        total=len(groups) * len(chosen), desc="walk-forward", unit="model", disable=not show
    ) as bar:
        for (symbol,), frame in groups:
            design = lagged_design(frame, lags=config.lags).drop_nulls("target")
            columns = [c for c in design.columns if c not in ("ts", "target")]
            x = design.select(columns).to_numpy()
            y = design["target"].to_numpy()
            rows = np.arange(len(y))
            if len(y) <= config.min_train_bars + config.n_splits:
                raise ValueError(
                    f"{symbol}: {len(y)} labelled rows leave no test rows after "
                    f"min_train_bars={config.min_train_bars}; lower it or load more bars"
                )
            splits = list(
                purged_walk_forward_splits(
                    label_start=rows, label_end=rows + 1, n_splits=config.n_splits,
                    min_train_rows=config.min_train_bars,
                )
            )  # fmt: skip
            ts = design["ts"].to_numpy()
            for family in chosen:
                bar.set_postfix_str(f"{symbol} {family}")
                for fold, (train, test) in enumerate(splits):
                    started = time.perf_counter()
                    model = make_family(family, config, task=task)
                    yhat = _fit_predict(family, model, x, y, train, test, task)
                    fits.append(
                        {
                            "model": family,
                            "symbol": str(symbol),
                            "fold": fold,
                            "train_rows": len(train),
                            "test_rows": len(test),
                            "fit_seconds": time.perf_counter() - started,
                        }
                    )
                    predictions.append(
                        pl.DataFrame(
                            {
                                "model": family,
                                "symbol": str(symbol),
                                "ts": ts[test],
                                "fold": np.full(len(test), fold, dtype=np.int64),
                                "prediction": np.asarray(yhat, dtype=np.float64),
                                "target": y[test],
                            }
                        )
                    )
                bar.update(1)
    out = pl.concat(predictions).with_columns(pl.col("prediction").fill_nan(None))
    if task == "classification":
        out = out.with_columns(outcome=(pl.col("target") > 0).cast(pl.Int64))
    return ModelRun(predictions=out, fits=pl.DataFrame(fits))
