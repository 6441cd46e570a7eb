"""Path-simulation loops for the synthetic market: arrays in, arrays out.

Every random number is drawn by the caller (numpy ``Generator``) and passed in, so these
kernels are deterministic functions of their inputs. That keeps the synthetic data
byte-identical across runs and independent of numba's own RNG.

The loops are sequential in time (a regime chain, a GARCH recursion, an AR funding rate);
the vectorised parts of the model live in ``research_lib.sources.synthetic``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def markov_two_state_path(
    uniforms: np.ndarray,
    leave_probability_0: float,
    leave_probability_1: float,
    initial_state: int,
) -> np.ndarray:
    """s[0] = initial_state; s[t] = 1 - s[t-1] if uniforms[t] < p_leave[s[t-1]] (a Python loop)."""
    n = uniforms.shape[0]
    states = np.empty(n, dtype=np.int8)
    if n == 0:
        return states
    state = initial_state
    states[0] = state
    for t in range(1, n):
        leave = leave_probability_0 if state == 0 else leave_probability_1
        if uniforms[t] < leave:
            state = 1 - state
        states[t] = state
    return states


@njit(cache=True)
def garch_unit_variance(
    shocks: np.ndarray, alpha: float, beta: float, block_rows: int
) -> np.ndarray:
    """Per column h = 1, then after each block h <- (1 - a - b) + (a * news + b) * h (Python loop).

    ``h`` is constant within each block of ``block_rows`` rows, and ``news`` is the block's
    squared standardised return ``sum(shocks[block]) ** 2 / block_rows``. With unit-variance
    ``shocks`` the news has mean 1, so the unconditional mean of ``h`` is 1 and the caller
    scales it by the asset's volatility; ``block_rows=1`` is the textbook GARCH(1,1).
    """
    n, k = shocks.shape
    variance = np.empty((n, k), dtype=np.float64)
    omega = 1.0 - alpha - beta
    for j in range(k):
        h = 1.0
        total = 0.0
        for t in range(n):
            variance[t, j] = h
            total += shocks[t, j]
            if (t + 1) % block_rows == 0:
                h = omega + (alpha * total * total / block_rows + beta) * h
                total = 0.0
    return variance


@njit(cache=True)
def ohlc_from_log_prices(
    log_prices: np.ndarray,
    sigma: np.ndarray,
    exponential_high: np.ndarray,
    exponential_low: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bars from log prices: open = exp(lp[t]), close = exp(lp[t+1]), Brownian-bridge high/low.

    For a bridge from 0 to ``b`` with variance ``s**2`` the maximum is
    ``(b + sqrt(b**2 + 2 s**2 E)) / 2`` with ``E ~ Exp(1)`` (and the minimum mirrors it), which
    is always at or beyond both ends. The final clamp only guards against rounding, so
    ``0 < low <= min(open, close) <= max(open, close) <= high`` holds exactly.
    """
    n, k = sigma.shape
    open_ = np.empty((n, k), dtype=np.float64)
    high = np.empty((n, k), dtype=np.float64)
    low = np.empty((n, k), dtype=np.float64)
    close = np.empty((n, k), dtype=np.float64)
    for j in range(k):
        for t in range(n):
            start = log_prices[t, j]
            move = log_prices[t + 1, j] - start
            two_variance = 2.0 * sigma[t, j] * sigma[t, j]
            up = 0.5 * (move + np.sqrt(move * move + two_variance * exponential_high[t, j]))
            down = 0.5 * (move - np.sqrt(move * move + two_variance * exponential_low[t, j]))
            o = np.exp(start)
            c = np.exp(log_prices[t + 1, j])
            open_[t, j] = o
            close[t, j] = c
            high[t, j] = max(np.exp(start + up), o, c)
            low[t, j] = min(np.exp(start + down), o, c)
    return open_, high, low, close


@njit(cache=True)
def aggregate_ohlcv(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    bars_per_group: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Consecutive groups of rows: first open, max high, min low, last close, summed volume.

    Equals polars ``group_by_dynamic(...).agg(first, max, min, last, sum)`` on a grid that
    starts at row 0; a trailing partial group is dropped.
    """
    n, k = open_.shape
    groups = n // bars_per_group
    out_open = np.empty((groups, k), dtype=np.float64)
    out_high = np.empty((groups, k), dtype=np.float64)
    out_low = np.empty((groups, k), dtype=np.float64)
    out_close = np.empty((groups, k), dtype=np.float64)
    out_volume = np.empty((groups, k), dtype=np.float64)
    for j in range(k):
        for g in range(groups):
            first = g * bars_per_group
            last = first + bars_per_group - 1
            h = high[first, j]
            lo = low[first, j]
            v = 0.0
            for t in range(first, last + 1):
                h = max(h, high[t, j])
                lo = min(lo, low[t, j])
                v += volume[t, j]
            out_open[g, j] = open_[first, j]
            out_high[g, j] = h
            out_low[g, j] = lo
            out_close[g, j] = close[last, j]
            out_volume[g, j] = v
    return out_open, out_high, out_low, out_close, out_volume


@njit(cache=True)
def funding_rate_path(
    trend: np.ndarray,
    noise: np.ndarray,
    mean_rate: float,
    persistence: float,
    trend_sensitivity: float,
    bound: float,
) -> np.ndarray:
    """x[k] = persistence * x[k-1] + noise[k], x[-1] = 0; rate = clip(mean + x + g * trend)."""
    n, k = trend.shape
    rates = np.empty((n, k), dtype=np.float64)
    for j in range(k):
        x = 0.0
        for i in range(n):
            x = persistence * x + noise[i, j]
            rate = mean_rate + x + trend_sensitivity * trend[i, j]
            rates[i, j] = min(max(rate, -bound), bound)
    return rates
