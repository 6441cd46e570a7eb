"""Strategies: a frozen config plus a pure, causal ``signals(frame, config) -> frame``.

``STRATEGIES`` maps a config's ``name`` to its signal function; ``signals_for`` dispatches.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from research_lib.config import StrategyConfig
from research_lib.strategies import ema_cross

SignalFunction = Callable[[pl.DataFrame, StrategyConfig], pl.DataFrame]

STRATEGIES: dict[str, SignalFunction] = {"ema_cross": ema_cross.signals}

__all__ = ["STRATEGIES", "SignalFunction", "signals_for"]


def signals_for(frame: pl.DataFrame, config: StrategyConfig) -> pl.DataFrame:
    """Run the strategy named by ``config.name`` on one symbol's bars.

    Parameters
    ----------
    frame
        One symbol's bars, oldest first.
    config
        The strategy config; ``config.name`` selects the entry of ``STRATEGIES``.

    Returns
    -------
    pl.DataFrame
        ``frame`` with a float64 ``target`` column.

    Examples
    --------
    >>> frame = pl.DataFrame({"ts": [0, 1, 2, 3], "close": [4.0, 3.0, 5.0, 6.0]})
    >>> signals_for(frame, StrategyConfig(fast_bars=2, slow_bars=3))["target"].to_list()
    [0.0, 0.0, 1.0, 1.0]
    """
    try:
        function = STRATEGIES[config.name]
    except KeyError:
        raise ValueError(
            f"unknown strategy name {config.name!r}; registered: {sorted(STRATEGIES)}"
        ) from None
    return function(frame, config)
