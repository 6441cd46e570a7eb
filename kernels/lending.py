"""Aave V3 lending maths in float64: interest, index accrual, health factor, liquidation price.

Float mirrors of Aave V3's Solidity (``MathUtils``, ``ReserveLogic``, ``GenericLogic``) for
sweeps over time; ``research_lib.defi.lending`` checks inputs and holds the exact integer
(ray) path for when the contract's own answer is needed.

Conventions:

- Rates are annual fractions (0.05 = 5 % APR, the ray value / 1e27); times are seconds; a
  year is ``SECONDS_PER_YEAR`` = 365 days, as in ``MathUtils`` (leap years ignored).
- Liquidity (supply) interest is linear between reserve updates
  (``calculateLinearInterest``); variable-borrow interest is Aave's three-term binomial
  expansion of ``(1 + r / SECONDS_PER_YEAR) ** seconds`` (``calculateCompoundedInterest``),
  which slightly undercharges against continuous compounding; like the contract, it truncates
  the per-second rate's square and cube to whole ray units (1e-27). On a ray rate that
  truncation lands on the contract's integer except when the exact value sits within about
  1e-15 of one (then one ray unit differs, ``seconds**3 / 6`` ray units of the factor).
- Index accrual follows ``ReserveLogic._updateIndexes``: at a row flagged as an update, the
  stored index grows with the rate in force *before* it (the rate written at the previous
  update) and that row's rate takes effect afterwards; between updates the value reported is
  Aave's ``getNormalizedIncome`` / ``getNormalizedDebt`` (stored index times the interest
  since the last update). Rates on rows that are not updates are ignored.
- Health factor follows ``GenericLogic.calculateUserAccountData``:
  ``sum(collateral value * liquidation threshold) / debt value``; ``inf`` without debt.

NaN policy: a NaN rate makes the index NaN from the first row that uses it onward (an index
cannot recover from an unknown rate). The health factor is pointwise: a NaN price of an asset
held (amount > 0) gives NaN at that bar only; prices of assets with a zero amount are never
read, so a missing price of an asset the position does not hold cannot poison the series. A
NaN debt value gives a NaN liquidation price at that bar.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SECONDS_PER_YEAR = 365.0 * 24.0 * 3600.0
SECONDS_PER_YEAR_SQUARED = SECONDS_PER_YEAR * SECONDS_PER_YEAR
RAY_UNITS = 1e27


@njit(cache=True)
def _linear_factor(rate: float, seconds: float) -> float:
    return 1.0 + rate * seconds / SECONDS_PER_YEAR


@njit(cache=True)
def _compounded_factor(rate: float, seconds: float) -> float:
    # Solidity truncates the per-second rate's square and cube to whole ray units (1e-27)
    # before multiplying by the seconds; over long gaps that is visible (about 5e-6 of the
    # factor after a year untouched at 10 %), so the float path truncates them too.
    x = rate / SECONDS_PER_YEAR
    base_power_two = np.floor(rate * rate * RAY_UNITS / SECONDS_PER_YEAR_SQUARED)
    base_power_three = np.floor(base_power_two * rate / SECONDS_PER_YEAR)
    # Generalised binomial terms: for whole seconds n they are Solidity's n(n-1)/2 and
    # n(n-1)(n-2)/6 (its clamp of n - 2 at 0 only matters where n(n-1) is already 0).
    n = seconds
    second = n * (n - 1.0) * base_power_two / 2.0 / RAY_UNITS
    third = n * (n - 1.0) * (n - 2.0) * base_power_three / 6.0 / RAY_UNITS
    return 1.0 + (x * n + (second + third))


@njit(cache=True)
def linear_interest_factor(rates: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Elementwise ``MathUtils.calculateLinearInterest(rate, seconds) / 1e27`` (Aave V3)."""
    out = np.empty(rates.shape[0], dtype=np.float64)
    for i in range(rates.shape[0]):
        out[i] = _linear_factor(rates[i], seconds[i])
    return out


@njit(cache=True)
def compounded_interest_factor(rates: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Elementwise ``MathUtils.calculateCompoundedInterest(rate, seconds) / 1e27`` (Aave V3)."""
    out = np.empty(rates.shape[0], dtype=np.float64)
    for i in range(rates.shape[0]):
        out[i] = _compounded_factor(rates[i], seconds[i])
    return out


@njit(cache=True)
def _accrue(
    ts_s: np.ndarray,
    rates: np.ndarray,
    is_update: np.ndarray,
    index_start: float,
    compounded: bool,
) -> np.ndarray:
    n = ts_s.shape[0]
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    stored = index_start
    last_ts = ts_s[0]
    rate = rates[0]
    out[0] = stored
    for i in range(1, n):
        elapsed = ts_s[i] - last_ts
        if compounded:
            factor = _compounded_factor(rate, elapsed)
        else:
            factor = _linear_factor(rate, elapsed)
        out[i] = stored * factor
        if is_update[i]:
            stored = out[i]
            last_ts = ts_s[i]
            rate = rates[i]
    return out


@njit(cache=True)
def normalized_income(
    ts_s: np.ndarray, rates: np.ndarray, is_update: np.ndarray, index_start: float
) -> np.ndarray:
    """Liquidity index per row: ``ReserveLogic.getNormalizedIncome`` over updates (Aave V3)."""
    return _accrue(ts_s, rates, is_update, index_start, False)


@njit(cache=True)
def normalized_debt(
    ts_s: np.ndarray, rates: np.ndarray, is_update: np.ndarray, index_start: float
) -> np.ndarray:
    """Variable borrow index per row: ``ReserveLogic.getNormalizedDebt`` over updates (Aave V3)."""
    return _accrue(ts_s, rates, is_update, index_start, True)


@njit(cache=True)
def health_factor(
    collateral_amounts: np.ndarray,
    liquidation_thresholds: np.ndarray,
    collateral_prices: np.ndarray,
    debt_amounts: np.ndarray,
    debt_prices: np.ndarray,
) -> np.ndarray:
    """Per-bar health factor of ``GenericLogic.calculateUserAccountData`` (Aave V3), in reals."""
    n_bars = collateral_prices.shape[0]
    out = np.empty(n_bars, dtype=np.float64)
    for t in range(n_bars):
        adjusted = 0.0
        for i in range(collateral_amounts.shape[0]):
            # An asset not held is skipped, as Aave skips reserves the user does not use.
            if collateral_amounts[i] != 0.0 and liquidation_thresholds[i] != 0.0:
                value = collateral_amounts[i] * collateral_prices[t, i]
                adjusted += value * liquidation_thresholds[i]
        debt = 0.0
        for j in range(debt_amounts.shape[0]):
            if debt_amounts[j] != 0.0:
                debt += debt_amounts[j] * debt_prices[t, j]
        if debt == 0.0 and not np.isnan(adjusted):
            out[t] = np.inf
        else:
            out[t] = adjusted / debt
    return out


@njit(cache=True)
def liquidation_price(
    collateral_amount: float,
    liquidation_threshold: float,
    debt_values: np.ndarray,
    other_adjusted_collateral: np.ndarray,
) -> np.ndarray:
    """Collateral price where ``GenericLogic`` health factor hits 1: ``(D - O) / (a * lt)``."""
    n = debt_values.shape[0]
    out = np.empty(n, dtype=np.float64)
    scale = collateral_amount * liquidation_threshold
    for t in range(n):
        shortfall = debt_values[t] - other_adjusted_collateral[t]
        # No positive price brings HF to 1 when the other collateral covers the debt alone, or
        # when this collateral counts for nothing.
        if scale > 0.0 and shortfall > 0.0:
            out[t] = shortfall / scale
        else:
            out[t] = np.nan
    return out
