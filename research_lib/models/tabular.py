"""Seeded tabular models from one factory: linear, random forest and gradient boosting.

``make_model(kind, task=..., random_state=..., **params)`` returns a fresh, unfitted
scikit-learn estimator. Linear models come as a ``StandardScaler`` + model pipeline (their
penalty assumes comparable feature scales); tree models are returned bare (they are scale
invariant). Extra keyword arguments go to the final estimator and are checked against its
parameters, so a typo fails here rather than deep inside scikit-learn.

=========================  ==========================================  ===================
kind                       regression                                  classification
=========================  ==========================================  ===================
``ridge``                  scaler + ``Ridge``                          (not offered)
``logistic``               (not offered)                               scaler + ``LogisticRegression``
``random_forest``          ``RandomForestRegressor``                   ``RandomForestClassifier``
``hist_gradient_boosting`` ``HistGradientBoostingRegressor``           ``HistGradientBoostingClassifier``
=========================  ==========================================  ===================
"""  # noqa: E501 - a table

from __future__ import annotations

from typing import Any, Literal

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

Task = Literal["regression", "classification"]
KINDS: tuple[str, ...] = ("ridge", "logistic", "random_forest", "hist_gradient_boosting")
TASKS: tuple[str, ...] = ("regression", "classification")

_ESTIMATORS: dict[tuple[str, str], type[BaseEstimator]] = {
    ("ridge", "regression"): Ridge,
    ("logistic", "classification"): LogisticRegression,
    ("random_forest", "regression"): RandomForestRegressor,
    ("random_forest", "classification"): RandomForestClassifier,
    ("hist_gradient_boosting", "regression"): HistGradientBoostingRegressor,
    ("hist_gradient_boosting", "classification"): HistGradientBoostingClassifier,
}
_LINEAR = ("ridge", "logistic")
_NATURAL_TASK = {"ridge": "regression", "logistic": "classification"}


def make_model(
    kind: str,
    *,
    task: Task | None = None,
    random_state: int = 0,
    **params: Any,
) -> BaseEstimator:
    """A fresh, seeded, unfitted estimator of the given kind.

    Parameters
    ----------
    kind
        One of ``"ridge"``, ``"logistic"``, ``"random_forest"``,
        ``"hist_gradient_boosting"``.
    task
        ``"regression"`` or ``"classification"``. ``None`` is allowed for ``ridge``
        (regression) and ``logistic`` (classification); tree kinds need it explicitly.
    random_state
        The seed, passed to every estimator that has a ``random_state`` parameter, so two
        fits on the same data give identical predictions.
    **params
        Parameters of the final estimator (e.g. ``alpha=10.0``, ``n_estimators=200``).

    Returns
    -------
    sklearn.base.BaseEstimator
        A ``Pipeline`` (scaler + model) for linear kinds, the bare estimator otherwise.

    Raises
    ------
    ValueError
        For an unknown ``kind`` or ``task``, a kind/task pair that is not offered, a missing
        ``task`` for a tree kind, or a parameter the estimator does not take.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> y = X @ [1.0, -2.0, 0.5]
    >>> model = make_model("ridge", alpha=1e-6).fit(X, y)
    >>> bool(np.allclose(model.predict(X), y, atol=1e-4))
    True
    >>> make_model("random_forest", task="classification", n_estimators=10)
    RandomForestClassifier(n_estimators=10, random_state=0)
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if task is None:
        if kind not in _NATURAL_TASK:
            raise ValueError(
                f"task=None is ambiguous for kind={kind!r}; pass task='regression' or "
                "task='classification'"
            )
        task = _NATURAL_TASK[kind]  # type: ignore[assignment]
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    estimator_cls = _ESTIMATORS.get((kind, task))
    if estimator_cls is None:
        offered = [t for (k, t) in _ESTIMATORS if k == kind]
        linear = "logistic" if task == "classification" else "ridge"
        raise ValueError(
            f"kind={kind!r} is not offered for task={task!r}; it supports {offered} "
            f"(the linear model for {task} is kind={linear!r})"
        )
    accepted = set(estimator_cls().get_params(deep=False))
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(
            f"{estimator_cls.__name__} has no parameter(s) {unknown}; accepted: {sorted(accepted)}"
        )
    if "random_state" in accepted:
        params["random_state"] = random_state
    estimator = estimator_cls(**params)
    if kind in _LINEAR:
        return make_pipeline(StandardScaler(), estimator)
    return estimator
