"""EMA crossover: long while the fast EMA of the close is above the slow one.

The signal function is pure and causal: the target at bar t depends only on closes up to t,
so the backtest (whole history) and the executor (trailing window) get the same value.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kernels import rolling as rolling_nb
from research_lib.config import StrategyConfig
from research_lib.features import check_bars, price_array


def signals(frame: pl.DataFrame, config: StrategyConfig) -> pl.DataFrame:
    """Target positions for one symbol: +1 when EMA(fast) > EMA(slow), else -1 or 0.

    Parameters
    ----------
    frame
        One symbol's bars (``ts``, ``open``, ``high``, ``low``, ``close``, ``volume``),
        oldest first.
    config
        ``fast_bars`` and ``slow_bars`` (EMA spans, TA-Lib convention) and ``allow_short``.

    Returns
    -------
    pl.DataFrame
        ``frame`` with a float64 ``target`` column (fraction of equity, decided at the bar's
        close): 1.0 when the fast EMA is above the slow one, otherwise -1.0 if
        ``allow_short`` else 0.0; 0.0 until the slow EMA has warmed up
        (the first ``slow_bars - 1`` bars).

    Raises
    ------
    ValueError
        If ``close`` is missing, null, non-finite or not positive, ``ts`` does not increase,
        or the frame holds more than one symbol.

    Examples
    --------
    >>> frame = pl.DataFrame({"ts": [0, 1, 2, 3], "close": [4.0, 3.0, 5.0, 6.0]})
    >>> cfg = StrategyConfig(fast_bars=2, slow_bars=3)
    >>> signals(frame, cfg)["target"].to_list()
    [0.0, 0.0, 1.0, 1.0]
    """
    if not isinstance(config, StrategyConfig):
        raise TypeError(f"config must be a StrategyConfig, got {type(config).__name__}")
    check_bars(frame, required=("ts", "close"))
    if "symbol" in frame.columns and frame["symbol"].n_unique() > 1:
        raise ValueError(
            f"frame holds {frame['symbol'].n_unique()} symbols; signals() takes one symbol's "
            f"bars: split with frame.partition_by('symbol')"
        )
    close = price_array(frame, column="close")
    fast = rolling_nb.ema(close, config.fast_bars, np.empty_like(close))
    slow = rolling_nb.ema(close, config.slow_bars, np.empty_like(close))
    otherwise = -1.0 if config.allow_short else 0.0
    target = np.where(fast > slow, 1.0, otherwise)
    target[np.isnan(fast) | np.isnan(slow)] = 0.0
    return frame.with_columns(pl.Series("target", target, dtype=pl.Float64))
