"""Performance statistics on return and equity arrays: Sharpe ratio, drawdown.

NaNs are skipped (a NaN bar neither adds to a mean nor sets a new peak).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def sharpe_ratio(returns: np.ndarray, periods_per_year: float) -> float:
    """Matches ``np.nanmean(r) / np.nanstd(r, ddof=1) * np.sqrt(periods_per_year)``.

    Annualised, zero risk-free rate; NaN with fewer than 2 finite returns or a zero std.
    """
    total = 0.0
    count = 0
    for i in range(returns.shape[0]):
        r = returns[i]
        if not np.isnan(r):
            total += r
            count += 1
    if count < 2:
        return np.nan
    mean = total / count
    sq = 0.0
    for i in range(returns.shape[0]):
        r = returns[i]
        if not np.isnan(r):
            sq += (r - mean) * (r - mean)
    std = np.sqrt(sq / (count - 1))
    if std == 0.0:
        return np.nan
    return mean / std * np.sqrt(periods_per_year)


@njit(cache=True)
def drawdown(equity: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Drawdown from the running peak; matches ``equity / np.fmax.accumulate(equity) - 1``.

    NaN where equity is NaN; <= 0 while equity is positive.
    """
    n = equity.shape[0]
    if out is None:
        res = np.empty(n)
    else:
        res = out
    peak = np.nan
    for i in range(n):
        e = equity[i]
        if np.isnan(e):
            res[i] = np.nan
            continue
        if np.isnan(peak) or e > peak:
            peak = e
        res[i] = e / peak - 1.0
    return res


@njit(cache=True)
def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a peak as a negative fraction; matches ``np.nanmin(drawdown(equity))``.

    E.g. -0.23 for a 23% fall; 0.0 if equity never falls; NaN if it has no finite value.
    """
    peak = np.nan
    worst = np.nan
    for i in range(equity.shape[0]):
        e = equity[i]
        if np.isnan(e):
            continue
        if np.isnan(peak) or e > peak:
            peak = e
        dd = e / peak - 1.0
        if np.isnan(worst) or dd < worst:
            worst = dd
    return worst
