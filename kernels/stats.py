"""Performance statistics: Sharpe, Sortino, drawdown, CAGR, Calmar, trade and exposure stats.

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


@njit(cache=True)
def sortino_ratio(returns: np.ndarray, periods_per_year: float) -> float:
    """Matches ``np.nanmean(r) / np.sqrt(np.nanmean(np.minimum(r, 0) ** 2)) * sqrt(ppy)``.

    Annualised, zero target; the downside deviation averages over every finite return.
    NaN with fewer than 2 finite returns; +inf for a positive mean with no losing return.
    """
    total = 0.0
    downside = 0.0
    count = 0
    for i in range(returns.shape[0]):
        r = returns[i]
        if not np.isnan(r):
            total += r
            count += 1
            if r < 0.0:
                downside += r * r
    if count < 2:
        return np.nan
    mean = total / count
    if downside == 0.0:
        return np.inf if mean > 0.0 else np.nan
    return mean / np.sqrt(downside / count) * np.sqrt(periods_per_year)


@njit(cache=True)
def compound_annual_growth_rate(initial_value: float, final_value: float, years: float) -> float:
    """Matches ``(final / initial) ** (1 / years) - 1``; -1 once the value is gone.

    Computed as ``expm1(log(final / initial) / years)`` (+inf when that overflows); NaN for a
    zero-length span.
    """
    if final_value <= 0.0:
        return -1.0
    if not years > 0.0:
        return np.nan
    growth = np.log(final_value / initial_value) / years
    if growth >= 700.0:
        return np.inf
    return np.expm1(growth)


@njit(cache=True)
def calmar_ratio(cagr: float, max_drawdown: float) -> float:
    """Matches ``cagr / abs(max_drawdown)``; NaN when there was no drawdown."""
    if np.isnan(cagr) or np.isnan(max_drawdown) or max_drawdown == 0.0:
        return np.nan
    return cagr / abs(max_drawdown)


@njit(cache=True)
def win_rate(pnl: np.ndarray) -> float:
    """Matches ``(pnl > 0).mean()`` over finite values; NaN with no trade."""
    wins = 0
    count = 0
    for i in range(pnl.shape[0]):
        p = pnl[i]
        if not np.isnan(p):
            count += 1
            if p > 0.0:
                wins += 1
    if count == 0:
        return np.nan
    return wins / count


@njit(cache=True)
def profit_factor(pnl: np.ndarray) -> float:
    """Matches ``pnl[pnl > 0].sum() / -pnl[pnl < 0].sum()``; +inf with no loss, NaN if neither."""
    gains = 0.0
    losses = 0.0
    for i in range(pnl.shape[0]):
        p = pnl[i]
        if p > 0.0:
            gains += p
        elif p < 0.0:
            losses -= p
    if losses == 0.0:
        return np.inf if gains > 0.0 else np.nan
    return gains / losses


@njit(cache=True)
def exposure(units: np.ndarray) -> float:
    """Matches ``(units != 0).any(axis=1).mean()`` for a (bars, assets) array."""
    n = units.shape[0]
    if n == 0:
        return np.nan
    held = 0
    for t in range(n):
        for j in range(units.shape[1]):
            if units[t, j] != 0.0:
                held += 1
                break
    return held / n


@njit(cache=True)
def turnover(traded_notional: np.ndarray, equity: np.ndarray) -> float:
    """Matches ``np.nansum(traded_notional) / np.nanmean(equity)``: equity traded, in multiples.

    E.g. 2.0 for buying and later selling the whole account once.
    """
    traded = 0.0
    for i in range(traded_notional.shape[0]):
        if not np.isnan(traded_notional[i]):
            traded += traded_notional[i]
    total = 0.0
    count = 0
    for i in range(equity.shape[0]):
        if not np.isnan(equity[i]):
            total += equity[i]
            count += 1
    if count == 0 or total == 0.0:
        return np.nan
    return traded / (total / count)
