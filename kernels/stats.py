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


@njit(cache=True)
def cscv_selection(
    returns: np.ndarray, block_bounds: np.ndarray, combinations: np.ndarray, use_sharpe: bool
) -> np.ndarray:
    """Matches the CSCV of Bailey et al. (2017), "The Probability of Backtest Overfitting", sec. 2.

    ``returns`` is (T, N), ``block_bounds`` the S + 1 row offsets of the blocks, ``combinations``
    (C, S/2) the in-sample block indices. The metric is the per-period Sharpe
    ``mean / std(ddof=1)`` (``use_sharpe``) or the mean; a zero std gives 0 or ±inf by the mean's
    sign. Returns (C, 3): the logit ``ln(w / (1 - w))`` of the in-sample best's (first argmax)
    out-of-sample relative rank ``w = rank / (N + 1)`` (ties share their average rank), its
    in-sample and its out-of-sample metric.
    """
    n_strategies = returns.shape[1]
    n_blocks = block_bounds.shape[0] - 1
    # Per-block count, mean and M2, merged per combination with Chan et al.'s pairwise update
    # so a combination costs O(S N) rather than O(T N), without a sum-of-squares cancellation.
    counts = np.zeros(n_blocks)
    means = np.zeros((n_blocks, n_strategies))
    m2s = np.zeros((n_blocks, n_strategies))
    for b in range(n_blocks):
        start = block_bounds[b]
        stop = block_bounds[b + 1]
        counts[b] = stop - start
        for j in range(n_strategies):
            mean = 0.0
            m2 = 0.0
            k = 0
            for t in range(start, stop):
                k += 1
                delta = returns[t, j] - mean
                mean += delta / k
                m2 += delta * (returns[t, j] - mean)
            means[b, j] = mean
            m2s[b, j] = m2
    n_comb = combinations.shape[0]
    half = combinations.shape[1]
    out = np.empty((n_comb, 3))
    in_sample = np.zeros(n_blocks, dtype=np.bool_)
    perf_is = np.empty(n_strategies)
    perf_oos = np.empty(n_strategies)
    for c in range(n_comb):
        in_sample[:] = False
        for k in range(half):
            in_sample[combinations[c, k]] = True
        for j in range(n_strategies):
            for side in range(2):
                n_acc = 0.0
                mean_acc = 0.0
                m2_acc = 0.0
                for b in range(n_blocks):
                    if in_sample[b] != (side == 0):
                        continue
                    n_b = counts[b]
                    n_new = n_acc + n_b
                    delta = means[b, j] - mean_acc
                    mean_acc += delta * n_b / n_new
                    m2_acc += m2s[b, j] + delta * delta * n_acc * n_b / n_new
                    n_acc = n_new
                value = mean_acc
                if use_sharpe:
                    std = np.sqrt(m2_acc / (n_acc - 1.0))
                    if std > 0.0:
                        value = mean_acc / std
                    elif mean_acc > 0.0:
                        value = np.inf
                    elif mean_acc < 0.0:
                        value = -np.inf
                    else:
                        value = 0.0
                if side == 0:
                    perf_is[j] = value
                else:
                    perf_oos[j] = value
        best = 0
        for j in range(1, n_strategies):
            if perf_is[j] > perf_is[best]:
                best = j
        below = 0
        equal = 0
        for j in range(n_strategies):
            if perf_oos[j] < perf_oos[best]:
                below += 1
            elif perf_oos[j] == perf_oos[best]:
                equal += 1
        rank = below + (equal + 1) / 2.0
        omega = rank / (n_strategies + 1.0)
        out[c, 0] = np.log(omega / (1.0 - omega))
        out[c, 1] = perf_is[best]
        out[c, 2] = perf_oos[best]
    return out
