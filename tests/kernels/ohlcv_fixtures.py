"""Seeded OHLCV bars shared by the kernel tests (a helper module; pytest does not collect it)."""

from __future__ import annotations

import numpy as np

Bars = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def random_ohlcv(
    n: int, *, seed: int, scale: float = 100.0, vol: float = 0.01, flat_every: int = 0
) -> Bars:
    """Seeded bars with low <= min(open, close) <= max(open, close) <= high and volume > 0."""
    rng = np.random.default_rng(seed)
    close = scale * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.empty(n)
    open_[0] = scale
    open_[1:] = close[:-1] * np.exp(rng.normal(0.0, vol / 10, n - 1))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, vol / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, vol / 2, n)))
    volume = np.exp(rng.normal(5.0, 1.0, n))
    if flat_every:
        flat = np.arange(0, n, flat_every)
        open_[flat] = high[flat] = low[flat] = close[flat]
    return open_, high, low, close, volume


def with_gaps(x: np.ndarray, *, seed: int, count: int = 5) -> np.ndarray:
    """A copy of x with `count` NaNs at seeded positions after the first ten bars."""
    rng = np.random.default_rng(seed)
    y = x.copy()
    y[rng.choice(np.arange(10, y.size), size=count, replace=False)] = np.nan
    return y
