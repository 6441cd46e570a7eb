"""Momentum kernels: RSI.

Same conventions as ``kernels.rolling``: float64 in and out, NaN during warm-up, an optional
numpy-allocated ``out`` array, TA-Lib's handling of missing values (leading NaNs skipped, a
later NaN propagates to every following bar).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.rolling import _first_finite


@njit(cache=True, fastmath={"contract"})
def rsi(values: np.ndarray, window_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """Wilder RSI with TA-Lib's seeding; matches ``talib.RSI(values, window_bars)``."""
    # Seeding, as in TA-Lib: the first output sits at bar `window_bars` (after the first valid
    # one) and uses the plain means of the first `window_bars` gains and losses; every later
    # bar applies avg = (avg * (n - 1) + move) / n. When both averages are exactly zero (a flat
    # window) the value is 0.0, as in TA-Lib. One deliberate difference: after a NaN input
    # TA-Lib 0.8 reports 0.0 for every later bar (a "fully oversold" reading made up from a
    # missing price); this kernel reports NaN.
    if window_bars < 2:
        raise ValueError("rsi: window_bars must be >= 2")
    n = values.shape[0]
    if out is None:
        res = np.empty(n)
    else:
        res = out
    start = _first_finite(values)
    first = start + window_bars
    if first >= n:
        res[:] = np.nan
        return res
    res[:first] = np.nan
    gain = 0.0
    loss = 0.0
    prev = values[start]
    for i in range(start + 1, first + 1):
        move = values[i] - prev
        prev = values[i]
        if move < 0.0:
            loss -= move
        else:
            gain += move
    loss /= window_bars
    gain /= window_bars
    total = gain + loss
    res[first] = 100.0 * (gain / total) if total != 0.0 else 0.0
    keep = window_bars - 1.0
    for i in range(first + 1, n):
        move = values[i] - prev
        prev = values[i]
        loss *= keep
        gain *= keep
        if move < 0.0:
            loss -= move
        else:
            gain += move
        loss /= window_bars
        gain /= window_bars
        total = gain + loss
        res[i] = 100.0 * (gain / total) if total != 0.0 else 0.0
    return res
