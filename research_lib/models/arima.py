"""A scikit-learn style ARIMA/SARIMAX forecaster with a bounded order search.

``ArimaForecaster.fit`` treats ``y`` as one time series (optionally with exogenous
regressors ``X``), fits statsmodels ``SARIMAX`` for every ``(p, d, q)`` in a bounded grid and
keeps the order with the lowest information criterion. Forecasts are out of sample:
``forecast(steps)`` returns the next ``steps`` values after the training series, and
``predict(X)`` returns the next ``len(X)`` values (taking exogenous values from ``X`` when the
model was fitted with them).

Comparing AIC across different ``d`` is approximate (the differenced likelihoods do not
share a sample); set ``max_d=0`` or difference the series yourself when that matters.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from statsmodels.tools.sm_exceptions import ConvergenceWarning, ValueWarning
from statsmodels.tsa.statespace.sarimax import SARIMAX
from threadpoolctl import threadpool_limits

_TRENDS = ("n", "c", "t", "ct")
_CRITERIA = ("aic", "bic", "hqic")


class ArimaForecaster(RegressorMixin, BaseEstimator):
    """ARIMA/SARIMAX with the ``(p, d, q)`` order chosen by an information criterion.

    Parameters
    ----------
    max_p, max_d, max_q
        Inclusive upper bounds of the searched AR order, differencing order and MA order.
    seasonal_order
        The fixed seasonal ``(P, D, Q, s)`` order; ``(0, 0, 0, 0)`` for none.
    trend
        The statsmodels trend: ``"n"`` (none), ``"c"`` (constant), ``"t"`` or ``"ct"``.
    criterion
        ``"aic"``, ``"bic"`` or ``"hqic"``; the lowest value wins.

    Attributes
    ----------
    order_ : tuple[int, int, int]
        The chosen ``(p, d, q)``.
    aic_ : float
        The AIC of the chosen fit (whatever ``criterion`` was).
    criterion_value_ : float
        The chosen fit's value of ``criterion``.
    results_ : statsmodels SARIMAXResults
        The chosen fit.
    search_ : polars.DataFrame
        One row per tried order: ``p, d, q, aic, bic, hqic, converged, error``. Orders
        whose fit raised have null criteria and the error message.
    n_exog_ : int
        Number of exogenous columns (0 when fitted without ``X``).
    n_obs_ : int
        Length of the training series.

    Notes
    -----
    Converged fits are preferred: a non-converged fit is chosen only when no fit converged.
    Convergence and start-parameter warnings are silenced during the search and recorded in
    ``search_`` instead.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> e = rng.normal(size=400)
    >>> y = np.zeros(400)
    >>> for t in range(1, 400):
    ...     y[t] = 0.7 * y[t - 1] + e[t]
    >>> model = ArimaForecaster(max_p=2, max_d=0, max_q=1).fit(None, y)
    >>> model.order_
    (1, 0, 0)
    >>> model.forecast(3).shape
    (3,)
    """

    def __init__(
        self,
        max_p: int = 3,
        max_d: int = 1,
        max_q: int = 3,
        seasonal_order: tuple[int, int, int, int] = (0, 0, 0, 0),
        trend: str = "c",
        criterion: str = "aic",
    ) -> None:
        self.max_p = max_p
        self.max_d = max_d
        self.max_q = max_q
        self.seasonal_order = seasonal_order
        self.trend = trend
        self.criterion = criterion

    def fit(self, X: Any, y: Any) -> ArimaForecaster:
        """Search the order grid on the series ``y`` (exogenous ``X`` may be None).

        Parameters
        ----------
        X
            None, or an array-like of shape ``(len(y), k)`` of exogenous regressors.
        y
            The time series, oldest first, of shape ``(n,)``; no NaN.

        Returns
        -------
        ArimaForecaster
            ``self``, fitted.
        """
        self._check_params()
        endog = np.asarray(y, dtype=np.float64)
        if endog.ndim != 1:
            raise ValueError(f"y must be one series of shape (n,), got shape {endog.shape}")
        if not np.all(np.isfinite(endog)):
            raise ValueError("y contains NaN or inf; drop or fill them before fitting")
        exog = self._exog(X, n_rows=len(endog), name="X")
        rows: list[dict[str, Any]] = []
        best: tuple[tuple[bool, float], tuple[int, int, int], Any] | None = None
        for p in range(self.max_p + 1):
            for d in range(self.max_d + 1):
                for q in range(self.max_q + 1):
                    order = (p, d, q)
                    row: dict[str, Any] = {"p": p, "d": d, "q": q}
                    try:
                        res = self._fit_one(endog, exog, order)
                    except (ValueError, np.linalg.LinAlgError) as exc:
                        rows.append(row | _EMPTY_SCORES | {"error": str(exc)})
                        continue
                    converged = bool(res.mle_retvals.get("converged", True))
                    scores = {k: float(getattr(res, k)) for k in _CRITERIA}
                    rows.append(row | scores | {"converged": converged, "error": None})
                    value = scores[self.criterion]
                    if not np.isfinite(value):
                        continue
                    key = (not converged, value)
                    if best is None or key < best[0]:
                        best = (key, order, res)
        self.search_ = pl.DataFrame(rows, schema=_SEARCH_SCHEMA)
        if best is None:
            raise ValueError(
                "no (p, d, q) order could be fitted; see the errors in search_ "
                f"(n_obs={len(endog)}, max_p={self.max_p}, max_d={self.max_d}, "
                f"max_q={self.max_q}); try a longer series or smaller bounds"
            )
        _, self.order_, self.results_ = best
        self.aic_ = float(self.results_.aic)
        self.criterion_value_ = float(getattr(self.results_, self.criterion))
        self.n_exog_ = 0 if exog is None else exog.shape[1]
        self.n_obs_ = len(endog)
        return self

    def forecast(self, steps: int, *, exog: Any = None) -> np.ndarray:
        """The next ``steps`` values after the training series.

        Parameters
        ----------
        steps
            Number of steps ahead, at least 1.
        exog
            Exogenous values for those steps, shape ``(steps, n_exog_)``; required exactly
            when the model was fitted with ``X``.

        Returns
        -------
        numpy.ndarray
            Shape ``(steps,)``, float64.

        Examples
        --------
        >>> y = np.sin(np.arange(120) / 5.0)
        >>> ArimaForecaster(max_p=2, max_d=0, max_q=0).fit(None, y).forecast(2).shape
        (2,)
        """
        check_is_fitted(self, "results_")
        if not isinstance(steps, int | np.integer) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        exog_arr = self._exog(exog, n_rows=int(steps), name="exog")
        if self.n_exog_ and exog_arr is None:
            raise ValueError(f"exog is required: the model was fitted with {self.n_exog_} columns")
        if not self.n_exog_ and exog_arr is not None:
            raise ValueError("exog must be None: the model was fitted without exogenous X")
        if exog_arr is not None and exog_arr.shape[1] != self.n_exog_:
            raise ValueError(
                f"exog has {exog_arr.shape[1]} columns, the model was fitted with {self.n_exog_}"
            )
        return np.asarray(self.results_.forecast(int(steps), exog=exog_arr), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The next ``len(X)`` forecasts after the training series.

        Without exogenous regressors only the row count of ``X`` is used; with them, ``X``
        holds their future values.

        Examples
        --------
        >>> y = np.sin(np.arange(120) / 5.0)
        >>> model = ArimaForecaster(max_p=2, max_d=0, max_q=0).fit(None, y)
        >>> bool(np.array_equal(model.predict(np.zeros((4, 1))), model.forecast(4)))
        True
        """
        check_is_fitted(self, "results_")
        n_rows = len(X)
        if n_rows < 1:
            raise ValueError("X must have at least one row (one per step to forecast)")
        return self.forecast(n_rows, exog=X if self.n_exog_ else None)

    def _fit_one(self, endog: np.ndarray, exog: np.ndarray | None, order: tuple[int, int, int]):
        model = SARIMAX(
            endog,
            exog=exog,
            order=order,
            seasonal_order=tuple(self.seasonal_order),
            trend=self.trend,
        )
        # The Kalman filter multiplies tiny matrices; threaded BLAS only adds overhead there
        # (about 30x slower on a busy 2-core machine).
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            # A grid search visits poor orders by design; their warnings are expected noise.
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", ValueWarning)
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            return model.fit(disp=False)

    @staticmethod
    def _exog(X: Any, *, n_rows: int, name: str) -> np.ndarray | None:
        if X is None:
            return None
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] != n_rows:
            raise ValueError(f"{name} must have shape ({n_rows}, k), got shape {arr.shape}")
        if arr.shape[1] == 0:
            return None
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")
        return arr

    def _check_params(self) -> None:
        for field in ("max_p", "max_d", "max_q"):
            value = getattr(self, field)
            if not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"{field} must be a non-negative integer, got {value!r}")
        seasonal = tuple(self.seasonal_order)
        if len(seasonal) != 4 or any(
            not isinstance(v, int | np.integer) or v < 0 for v in seasonal
        ):
            raise ValueError(
                "seasonal_order must be four non-negative integers (P, D, Q, s), "
                f"got {self.seasonal_order!r}"
            )
        if self.trend not in _TRENDS:
            raise ValueError(f"trend must be one of {_TRENDS}, got {self.trend!r}")
        if self.criterion not in _CRITERIA:
            raise ValueError(f"criterion must be one of {_CRITERIA}, got {self.criterion!r}")


_EMPTY_SCORES: dict[str, Any] = {"aic": None, "bic": None, "hqic": None, "converged": False}
_SEARCH_SCHEMA = {
    "p": pl.Int64,
    "d": pl.Int64,
    "q": pl.Int64,
    "aic": pl.Float64,
    "bic": pl.Float64,
    "hqic": pl.Float64,
    "converged": pl.Boolean,
    "error": pl.String,
}
