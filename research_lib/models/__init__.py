"""Models that follow the scikit-learn estimator contract.

- ``baseline``: the ridge walk-forward baseline of ``20_model``;
- ``arima``: ``ArimaForecaster``, SARIMAX with a bounded order search by AIC;
- ``tabular``: ``make_model`` for ridge, logistic, random forest and histogram gradient
  boosting, seeded;
- ``torch_nets``: ``TorchMLPRegressor``, ``TorchMLPClassifier`` and the causal
  ``TorchLSTMRegressor`` and ``TorchLSTMClassifier`` (CPU, seeded, deterministic, early
  stopping);
- ``ensemble``: ``OutOfFoldEnsemble`` (regressor) and ``OutOfFoldEnsembleClassifier``,
  weighted by out-of-fold loss or stacked, over any (purged) splitter;
- ``registry``: ``ModelRegistry``, fitted models keyed by the sha256 of their bytes, with
  config id, data hashes and metrics, reloaded bit for bit.

Only ``baseline`` is imported here: statsmodels and torch load when their module is imported.
"""

from research_lib.models.baseline import (
    WalkForwardResult,
    lagged_design,
    make_baseline,
    walk_forward_by_symbol,
    walk_forward_predict,
)

__all__ = [
    "WalkForwardResult",
    "lagged_design",
    "make_baseline",
    "walk_forward_by_symbol",
    "walk_forward_predict",
]
