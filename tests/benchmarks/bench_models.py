"""Walk-forward training time of each model family, with the out-of-sample score it buys.

Data: the last ``n_bars`` hourly BTCUSDT candles of ``<real data>/cex/binance_spot_1h/
BTCUSDT.parquet`` (``research_lib.paths.real_data_dir()``), or, when that file is absent, the
same number of hours of BTCUSDT from the seeded synthetic market
(``research_lib.sources.synthetic``); ``data`` in the result says which. Rows are the bars in
time order (the real file has a few missing hours; nothing is filled).

Design, all causal at bar t's close: the log returns of bars t, t-1, t-2 and t-3, the 24-bar
log return, the 24-bar rolling std of returns, RSI(14), the 48-bar z-score of the close and
the EMA(12)/EMA(48) gap. Label: the next bar's log return
(``research_lib.labels.forward_returns``, horizon 1) for regressors, ``1`` when it is positive
and ``0`` otherwise for classifiers. Rows with a missing feature or label are dropped.

Splits: ``research_lib.splits.purged_walk_forward_splits`` with label windows ``[i, i + 1]``,
``n_splits`` test blocks after the first ``n_rows // (n_splits + 1)`` rows, expanding
training windows; purging drops the row right before each test block. Every family sees the
same folds. Only ``fit`` is timed (``fit_seconds``); predicting the test block is timed
apart (``predict_seconds``). Every model runs on one thread (torch pins itself to one;
BLAS and OpenMP are limited with threadpoolctl), so families compare like for like on a
shared machine.

Per family: total fit seconds over the folds, seconds per fold, training rows per second
(training rows summed over folds / fit seconds) and the pooled out-of-sample score: the
Spearman IC (and hit rate) for regressors; log loss and accuracy for classifiers, next to
those of the training fold's class frequencies (the prior), which is what "no skill" scores.

Bounds that keep the full section near 5 minutes on 2 cores are in ``FULL`` (``QUICK`` for
``--quick``, ~2,000 bars in seconds) and are reported in each row's ``settings``.

``python tests/benchmarks/bench_models.py [--quick]`` prints the result as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

SYMBOL = "BTCUSDT"
HOUR_MS = 3_600_000
FEATURES = (
    "ret_lag0",
    "ret_lag1",
    "ret_lag2",
    "ret_lag3",
    "ret_24",
    "vol_24",
    "rsi_14",
    "zscore_48",
    "ema_gap",
)
FULL: dict[str, Any] = {
    "n_bars": 60_000,
    "n_splits": 5,
    "random_forest": {"n_estimators": 50, "min_samples_leaf": 100, "max_features": 0.5},
    "hist_gradient_boosting": {"max_iter": 100},
    "arima": {"max_p": 1, "max_d": 0, "max_q": 1},
    "mlp": {"hidden_sizes": (32,), "max_epochs": 20, "patience": 3, "batch_size": 256},
    "lstm": {
        "window_bars": 16,
        "hidden_size": 32,
        "max_epochs": 10,
        "patience": 3,
        "batch_size": 256,
    },
}
QUICK: dict[str, Any] = {
    "n_bars": 2_000,
    "n_splits": 5,
    "random_forest": {"n_estimators": 10, "min_samples_leaf": 20, "max_features": 0.5},
    "hist_gradient_boosting": {"max_iter": 20},
    "arima": {"max_p": 1, "max_d": 0, "max_q": 0},
    "mlp": {"hidden_sizes": (8,), "max_epochs": 3, "patience": 2, "batch_size": 128},
    "lstm": {
        "window_bars": 8,
        "hidden_size": 4,
        "max_epochs": 2,
        "patience": 1,
        "batch_size": 128,
    },
}
REGRESSION, CLASSIFICATION = "regression", "classification"


# ----------------------------------------------------------------------------- data


def load_bars(n_bars: int) -> tuple[Any, str]:
    """The last ``n_bars`` real BTCUSDT hourly bars, or as many synthetic ones; and a note."""
    import polars as pl

    from research_lib.paths import real_data_dir

    path = real_data_dir() / "cex" / "binance_spot_1h" / f"{SYMBOL}.parquet"
    if path.is_file():
        bars = pl.read_parquet(path, columns=["ts", "symbol", "close"]).sort("ts").tail(n_bars)
        bars = bars.with_columns(pl.col("symbol").cast(pl.String))
        gaps = int((bars["ts"].diff().drop_nulls() != HOUR_MS).sum())
        return bars, f"real: {path.name}, last {bars.height:,} hourly bars ({gaps} gaps kept)"
    from research_lib.sources.synthetic import SyntheticMarketConfig, SyntheticSource

    config = SyntheticMarketConfig(symbols=(SYMBOL,))
    start = config.origin_ms
    source = SyntheticSource(config)
    bars = source.fetch(
        dataset="bars",
        symbols=[SYMBOL],
        interval="1h",
        start_ms=start,
        end_ms=start + n_bars * HOUR_MS,
    ).select("ts", "symbol", "close")
    return bars, f"synthetic (seed {config.seed}): real file absent at {path}"


def design(bars: Any) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, len(FEATURES)) and next-bar log returns (n,), rows with gaps dropped."""
    import polars as pl

    from research_lib.features import ema, rolling_zscore, rsi
    from research_lib.labels import forward_returns

    close = bars["close"]
    ret = pl.col("close").log().diff()
    frame = bars.with_columns(
        *(ret.shift(k).alias(f"ret_lag{k}") for k in range(4)),
        (pl.col("close").log() - pl.col("close").log().shift(24)).alias("ret_24"),
        ret.rolling_std(24).alias("vol_24"),
        rsi(close, window_bars=14).alias("rsi_14"),
        rolling_zscore(close, window_bars=48).alias("zscore_48"),
        (ema(close, span_bars=12) / ema(close, span_bars=48) - 1.0).alias("ema_gap"),
        forward_returns(bars, horizons_bars=(1,), log=True)["forward_return_1"].alias("label"),
    ).drop_nulls([*FEATURES, "label"])
    return frame.select(FEATURES).to_numpy(), frame["label"].to_numpy()


def folds(n_rows: int, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from research_lib.splits import purged_walk_forward_splits

    start = np.arange(n_rows, dtype=np.int64)
    return list(
        purged_walk_forward_splits(
            label_start=start,
            label_end=start + 1,  # the label reads the next bar
            n_splits=n_splits,
            min_train_rows=n_rows // (n_splits + 1),
        )
    )


class WalkForwardCV:
    """``purged_walk_forward_splits`` with next-bar label windows, as an ensemble ``cv``."""

    def __init__(self, n_splits: int) -> None:
        self.n_splits = n_splits

    def split(self, X: Any, y: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield from folds(len(X), self.n_splits)


# ----------------------------------------------------------------------------- families


def _families(settings: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """One entry per (family, task): a factory, its settings, and how it predicts."""
    from research_lib.models.arima import ArimaForecaster
    from research_lib.models.ensemble import OutOfFoldEnsemble
    from research_lib.models.tabular import make_model
    from research_lib.models.torch_nets import (
        TorchLSTMClassifier,
        TorchLSTMRegressor,
        TorchMLPClassifier,
        TorchMLPRegressor,
    )

    rf, hgb = settings["random_forest"], settings["hist_gradient_boosting"]
    mlp, lstm, arima = settings["mlp"], settings["lstm"], settings["arima"]
    shown = {
        "random_forest": {**rf, "n_jobs": 1},
        "hist_gradient_boosting": {**hgb, "early_stopping": "auto (on above 10,000 rows)"},
        "torch": {"learning_rate": 1e-3, "validation_fraction": 0.1},  # the defaults
    }

    def ensemble() -> Any:
        members = [
            ("ridge", make_model("ridge")),
            (
                "hist_gradient_boosting",
                make_model("hist_gradient_boosting", task=REGRESSION, random_state=seed, **hgb),
            ),
            ("torch_mlp", TorchMLPRegressor(**mlp, random_state=seed)),
        ]
        return OutOfFoldEnsemble(members, cv=WalkForwardCV(settings["n_splits"]))

    rows: list[dict[str, Any]] = [
        {
            "family": "ridge",
            "task": REGRESSION,
            "settings": "make_model defaults: StandardScaler + Ridge(alpha=1.0)",
            "make": lambda: make_model("ridge"),
        },
        {
            "family": "logistic",
            "task": CLASSIFICATION,
            "settings": "make_model defaults: StandardScaler + LogisticRegression(C=1.0)",
            "make": lambda: make_model("logistic"),
        },
    ]
    for task in (REGRESSION, CLASSIFICATION):
        rows += [
            {
                "family": "random_forest",
                "task": task,
                "settings": shown["random_forest"],
                "make": lambda task=task: make_model(
                    "random_forest", task=task, random_state=seed, **rf
                ),
            },
            {
                "family": "hist_gradient_boosting",
                "task": task,
                "settings": shown["hist_gradient_boosting"],
                "make": lambda task=task: make_model(
                    "hist_gradient_boosting", task=task, random_state=seed, **hgb
                ),
            },
        ]
    rows += [
        {
            "family": "arima",
            "task": REGRESSION,
            "settings": {**arima, "trend": "c", "criterion": "aic", "exog": None},
            "make": lambda: ArimaForecaster(**arima),
            "kind": "arima",
        },
        {
            "family": "torch_mlp",
            "task": REGRESSION,
            "settings": {**mlp, **shown["torch"]},
            "make": lambda: TorchMLPRegressor(**mlp, random_state=seed),
        },
        {
            "family": "torch_mlp",
            "task": CLASSIFICATION,
            "settings": {**mlp, **shown["torch"]},
            "make": lambda: TorchMLPClassifier(**mlp, random_state=seed),
        },
        {
            "family": "torch_lstm",
            "task": REGRESSION,
            "settings": {**lstm, **shown["torch"]},
            "make": lambda: TorchLSTMRegressor(**lstm, random_state=seed),
            "kind": "sequence",
        },
        {
            "family": "torch_lstm",
            "task": CLASSIFICATION,
            "settings": {**lstm, **shown["torch"]},
            "make": lambda: TorchLSTMClassifier(**lstm, random_state=seed),
            "kind": "sequence",
        },
        {
            "family": "out_of_fold_ensemble",
            "task": REGRESSION,
            "settings": {
                "members": "ridge + hist_gradient_boosting + torch_mlp (settings above)",
                "method": "weighted",
                "cv": f"purged walk-forward, {settings['n_splits']} blocks, inside each fold",
            },
            "make": ensemble,
        },
    ]
    return rows


def _fit_predict(
    entry: dict[str, Any], X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray
) -> tuple[float, float, np.ndarray, dict[str, Any]]:
    """Fit on ``train`` and predict ``test``: fit seconds, predict seconds, predictions, and
    what the fit settled on (see ``_fitted``)."""
    model = entry["make"]()
    kind = entry.get("kind", "tabular")
    clf = entry["task"] == CLASSIFICATION
    started = time.perf_counter()
    if kind == "arima":
        model.fit(None, y[train])
    else:
        model.fit(X[train], y[train])
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    first, stop = int(test[0]), int(test[-1]) + 1
    if kind == "arima":
        # One-step-ahead forecasts with the fitted parameters: the forecast for row t reads
        # labels up to row t-1 (returns up to bar t), appended after the training series.
        # Expanding folds train on rows 0..last, so series positions are row numbers.
        last = int(train[-1])
        extended = model.results_.append(y[last + 1 : stop])
        pred = np.asarray(extended.predict(start=first, end=stop - 1))
    elif kind == "sequence":
        # Each test row's window needs the window_bars - 1 rows before it (features only).
        context = model.module_config_["window_bars"] - 1
        rows = X[max(0, first - context) : stop]
        out = model.predict_proba(rows) if clf else model.predict(rows)
        pred = out[len(out) - len(test) :]
    else:
        pred = model.predict_proba(X[test]) if clf else model.predict(X[test])
    predict_s = time.perf_counter() - started
    if clf:
        pred = pred[:, list(model.classes_).index(1)] if pred.ndim == 2 else pred
    return fit_s, predict_s, np.asarray(pred, dtype=np.float64), _fitted(model)


def _fitted(model: Any) -> dict[str, Any]:
    """Epochs (torch), boosting iterations, the ARIMA order or the ensemble weights."""
    if hasattr(model, "n_epochs_"):
        return {"epochs": int(model.n_epochs_), "best_epoch": int(model.best_epoch_)}
    if hasattr(model, "n_iter_") and np.ndim(model.n_iter_) == 0:
        return {"iterations": int(model.n_iter_)}
    if hasattr(model, "order_"):
        return {"order": [int(v) for v in model.order_]}
    if hasattr(model, "weights_"):
        names = [name for name, _ in model.estimators]
        return {"weights": dict(zip(names, np.round(model.weights_, 4).tolist(), strict=True))}
    return {}


def _score(task: str, y: np.ndarray, pred: np.ndarray, prior: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr
    from sklearn.metrics import log_loss

    if task == REGRESSION:
        return {
            "ic": float(spearmanr(pred, y).statistic),
            "hit_rate": float(np.mean(np.sign(pred) == np.sign(y))),
        }
    up = (y > 0).astype(int)
    p = np.clip(pred, 1e-15, 1 - 1e-15)
    return {
        "log_loss": float(log_loss(up, p, labels=[0, 1])),
        "accuracy": float(np.mean((p > 0.5) == up)),
        "log_loss_prior": float(log_loss(up, prior, labels=[0, 1])),
        "accuracy_prior": float(np.mean((prior > 0.5) == up)),
    }


def bench_family(
    entry: dict[str, Any], X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, ...]]
) -> dict[str, Any]:
    """Walk-forward fit/predict of one family; timings and the pooled OOS score."""
    target = y if entry["task"] == REGRESSION else (y > 0).astype(np.int64)
    fit_s, predict_s, preds, truths, priors, fitted = [], [], [], [], [], []
    for train, test in splits:
        f, p, pred, info = _fit_predict(entry, X, target, train, test)
        fitted.append(info)
        fit_s.append(f)
        predict_s.append(p)
        preds.append(pred)
        truths.append(y[test])
        priors.append(np.full(len(test), np.mean(y[train] > 0)))
    train_rows = sum(len(train) for train, _ in splits)
    total = float(sum(fit_s))
    return {
        "family": entry["family"],
        "task": entry["task"],
        "settings": entry["settings"],
        "fit_seconds": total,
        "fit_seconds_per_fold": [float(s) for s in fit_s],
        "seconds_per_fold": total / len(splits),
        "predict_seconds": float(sum(predict_s)),
        "fitted_per_fold": fitted,
        "train_rows": train_rows,
        "train_rows_per_s": train_rows / total if total > 0 else float("inf"),
        "test_rows": sum(len(test) for _, test in splits),
        "score": _score(
            entry["task"], np.concatenate(truths), np.concatenate(preds), np.concatenate(priors)
        ),
    }


def warm_up(entries: list[dict[str, Any]], X: np.ndarray, y: np.ndarray) -> float:
    """Fit each model once on a few hundred rows, untimed: the first torch fit in a process
    pays seconds of one-off set-up (imports, kernel registration) that no fold should carry."""
    started = time.perf_counter()
    rows = np.arange(min(len(y), 300))
    for entry in entries:
        target = y if entry["task"] == REGRESSION else (y > 0).astype(np.int64)
        _fit_predict(entry, X, target, rows[:-50], rows[-50:])
    return time.perf_counter() - started


def bench_models(
    *,
    quick: bool = False,
    seed: int = 0,
    only: tuple[str, ...] = (),
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every family through the same walk-forward folds; see the module docstring."""
    from threadpoolctl import threadpool_limits

    settings = QUICK if quick else FULL
    started = time.perf_counter()
    bars, data = load_bars(settings["n_bars"])
    X, y = design(bars)
    splits = folds(len(y), settings["n_splits"])
    entries = [e for e in _families(settings, seed) if not only or e["family"] in only]
    rows = []
    with threadpool_limits(limits=1):
        warmup_s = warm_up([e for e in entries if e["family"].startswith("torch_")], X, y)
        for entry in entries:
            row = bench_family(entry, X, y, splits)
            rows.append(row)
            if log is not None:
                log(f"  {row['family']} ({row['task']}): {row['fit_seconds']:.1f} s")
    return {
        "name": "walk_forward_training",
        "data": data,
        "quick": quick,
        "n_bars": bars.height,
        "n_rows": len(y),
        "features": list(FEATURES),
        "label": "next-bar log return (regression); 1 if positive else 0 (classification)",
        "n_splits": settings["n_splits"],
        "fold_train_rows": [len(train) for train, _ in splits],
        "fold_test_rows": [len(test) for _, test in splits],
        "threads_per_model": 1,
        "warmup_seconds": warmup_s,
        "families": rows,
        "seconds": time.perf_counter() - started,
    }


# ----------------------------------------------------------------------------- report


def _settings_text(settings: Any) -> str:
    if isinstance(settings, dict):
        return ", ".join(f"{k}={v}" for k, v in settings.items())
    return str(settings)


def _fitted_text(fitted: list[dict[str, Any]]) -> str:
    first = fitted[0]
    if "epochs" in first:
        return "epochs " + "/".join(str(f["epochs"]) for f in fitted)
    if "iterations" in first:
        return "iterations " + "/".join(str(f["iterations"]) for f in fitted)
    if "order" in first:
        return "orders " + "/".join("".join(map(str, f["order"])) for f in fitted)
    if "weights" in first:
        weights = fitted[-1]["weights"]
        return "last fold's weights " + ", ".join(f"{k} {v:.2f}" for k, v in weights.items())
    return ""


def models_markdown(result: dict[str, Any]) -> list[str]:
    """The markdown section ``run.py`` puts in ``kernels.md``."""
    lines = [
        "## Models: walk-forward training time",
        "",
        f"{result['data']}; {result['n_rows']:,} rows after warm-up, {len(result['features'])} "
        f"features, {result['n_splits']} purged walk-forward folds (training rows "
        f"{', '.join(f'{n:,}' for n in result['fold_train_rows'])}; test blocks of "
        f"~{result['fold_test_rows'][0]:,}). One thread per model. Whole section "
        f"{result['seconds']:.0f} s, including {result['warmup_seconds']:.0f} s of untimed "
        "torch warm-up (a first small fit of each torch model).",
        "",
        f"| family | task | fit s ({result['n_splits']} folds) | s / fold | train rows/s "
        "| predict s | OOS score | fitted, per fold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["families"]:
        score = row["score"]
        if row["task"] == REGRESSION:
            text = f"IC {score['ic']:+.4f}, hit rate {score['hit_rate']:.3f}"
        else:
            text = (
                f"log loss {score['log_loss']:.4f} (prior {score['log_loss_prior']:.4f}), "
                f"accuracy {score['accuracy']:.3f} (prior {score['accuracy_prior']:.3f})"
            )
        lines.append(
            f"| {row['family']} | {row['task']} | {row['fit_seconds']:.2f} | "
            f"{row['seconds_per_fold']:.2f} | {row['train_rows_per_s']:,.0f} | "
            f"{row['predict_seconds']:.2f} | {text} | {_fitted_text(row['fitted_per_fold'])} |"
        )
    lines += ["", "Settings (bounds that keep the section short):", ""]
    seen = set()
    for row in result["families"]:
        if row["family"] not in seen:
            seen.add(row["family"])
            lines.append(f"- {row['family']}: {_settings_text(row['settings'])}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~2,000 bars, tiny models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", default=[], help="run only this family")
    options = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = bench_models(quick=options.quick, seed=options.seed, only=tuple(options.only), log=log)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
