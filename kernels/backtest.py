"""Single-asset target-position backtest.

Timing
------
``target[t]`` is decided with information up to the close of bar ``t``. It is filled at bar
``t + 1``: at ``open[t + 1]`` (``FILL_NEXT_OPEN``) or at ``close[t + 1]``
(``FILL_NEXT_CLOSE``). It never changes the position at bar ``t`` or before, and the last
bar's target is never filled. Equity, units and cash are reported after that bar's fill,
marked at ``close[t]``, so ``equity[t] == cash[t] + units[t] * close[t]`` at every bar.

Sizing
------
``target`` is the fraction of equity to hold, in [-1, 1] (negative is short). An order is
sent only when the target differs from the previous bar's target; between changes the
position is held (units constant) and its weight drifts with the price. When the target
changes to ``w`` at fill price ``p``, with equity before the fill ``E = cash + units * p``
and current notional ``V = units * p``, the new notional ``V'`` is chosen so that, after the
fee, it is exactly ``w`` times the remaining equity:

    V' = w * (E - fee),   fee = f * |V' - V|,   f = fee_bps / 10_000

which solves to ``V' = w (E + f V) / (1 + w f)`` for a buy and ``V' = w (E - f V) / (1 - w f)``
for a sell. From flat with ``w = 1`` this buys ``cash / (p (1 + f))`` units and leaves zero
cash: exactly what vectorbt's ``Portfolio.from_signals`` does with ``size=inf`` (all in), and
``w = 0`` sells every unit like vectorbt's exit. A long-only 0/1 target therefore matches
vectorbt with its signals shifted one bar (``price=open`` or ``price=close``) and
``min_size=0``. Fees are charged on the traded notional ``|Δunits| * p`` and paid from cash.

If the equity at a fill is not positive the account is bankrupt: the position is closed
(the target is treated as 0) and nothing new is opened.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FILL_NEXT_OPEN = 0
FILL_NEXT_CLOSE = 1


@njit(cache=True)
def target_position_backtest(
    open_prices: np.ndarray,
    close_prices: np.ndarray,
    target: np.ndarray,
    fee_bps: float,
    fill_mode: int,
    initial_cash: float,
    equity_out: np.ndarray | None = None,
    units_out: np.ndarray | None = None,
    cash_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float]:
    """Target-fraction backtest; a 0/1 target equals vectorbt ``from_signals`` shifted one bar.

    Returns ``(equity, units, cash, n_fills, fees_paid)``; see the module docstring for the
    timing and sizing conventions. ``fill_mode`` is ``FILL_NEXT_OPEN`` or ``FILL_NEXT_CLOSE``.
    """
    n = close_prices.shape[0]
    if open_prices.shape[0] != n or target.shape[0] != n:
        raise ValueError("target_position_backtest: open, close and target lengths differ")
    if fill_mode != FILL_NEXT_OPEN and fill_mode != FILL_NEXT_CLOSE:
        raise ValueError("target_position_backtest: fill_mode must be 0 (open) or 1 (close)")
    if equity_out is None:
        equity = np.empty(n)
    else:
        equity = equity_out
    if units_out is None:
        units_arr = np.empty(n)
    else:
        units_arr = units_out
    if cash_out is None:
        cash_arr = np.empty(n)
    else:
        cash_arr = cash_out
    fee_rate = fee_bps * 1e-4
    cash = initial_cash
    units = 0.0
    held_target = 0.0
    n_fills = 0
    fees_paid = 0.0
    for i in range(n):
        if i > 0 and target[i - 1] != held_target:
            held_target = target[i - 1]
            price = open_prices[i] if fill_mode == FILL_NEXT_OPEN else close_prices[i]
            notional = units * price
            equity_before = cash + notional
            weight = held_target if equity_before > 0.0 else 0.0
            wanted = weight * equity_before
            if wanted > notional:
                new_notional = (
                    weight * (equity_before + fee_rate * notional) / (1.0 + weight * fee_rate)
                )
            elif wanted < notional:
                new_notional = (
                    weight * (equity_before - fee_rate * notional) / (1.0 - weight * fee_rate)
                )
            else:
                new_notional = notional
            if new_notional != notional:
                new_units = new_notional / price
                traded = new_units - units
                fee = fee_rate * abs(traded) * price
                cash = cash - traded * price - fee
                units = new_units
                n_fills += 1
                fees_paid += fee
        equity[i] = cash + units * close_prices[i]
        units_arr[i] = units
        cash_arr[i] = cash
    return equity, units_arr, cash_arr, n_fills, fees_paid
