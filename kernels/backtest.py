"""Target-position portfolio backtest: one cash account, any number of assets.

Inputs are 2-d arrays, bars × assets. ``target[t, j]`` is the fraction of total portfolio
equity to hold in asset ``j`` (negative is short), decided with information up to the close
of bar ``t``.

Timing (``params[P_FILL_MODE]``)
--------------------------------
- ``FILL_NEXT_OPEN``: ``target[t]`` is filled at ``open[t + 1]``.
- ``FILL_NEXT_CLOSE``: ``target[t]`` is filled at ``close[t + 1]``.
- ``FILL_THIS_CLOSE``: ``target[t]`` is filled at ``close[t]`` (vectorbt's convention with
  unshifted signals: the decision and the fill share the close).

In the ``next_*`` modes the last bar's target is never filled. Within bar ``t`` the order is:
funding on the units held at the open; then, for ``next_open``, the signal fills at the open
followed by the stop checks on the bar's high/low; for the close modes, the stop checks
followed by the signal fills at the close. Equity, units and cash are reported after the
bar's last fill, marked at ``close[t]``: ``equity[t] == cash[t] + Σ_j units[t, j] * close[t, j]``.

Sizing
------
An order is sent for asset ``j`` only when its target differs from the last target acted on;
between changes the units are held and the weight drifts. When the target changes to ``w``
at reference price ``p`` (the open or the close), with portfolio equity ``E`` (every asset
marked at its fill-time price) and current notional ``V = units * p``, the signed notional
change ``X`` (at ``p``) makes the position exactly ``w`` of the equity left after all costs
of the order: ``V + X = w * (E - cost)``. With the execution price ``p (1 + s)`` for a buy and
``p (1 - s)`` for a sell (``s`` the slippage fraction), a fee ``f`` on the executed notional
and a fixed ``gas`` per fill, this solves to

    X = (w (E - gas) - V) / (1 + w (c - 1)),   c = (1 + s)(1 + f) buy,  (1 - s)(1 - f) sell.

From flat with ``w = 1`` it buys ``(cash - gas) / (p (1 + s)(1 + f))`` units: exactly
vectorbt's all-in ``size=inf`` with ``fees``, ``slippage`` and ``fixed_fees``; ``w = 0`` sells
every unit. Assets are processed in column order; each order sees the equity left by the
orders before it. If the equity (less gas) is not positive, the target is treated as 0 and
nothing new is opened.

Costs (each paid from cash and reported separately, per bar and asset)
----------------------------------------------------------------------
- fee: ``fee_rate * |Δunits| * execution_price``.
- slippage: the execution price is ``p (1 ± s)``; its cost is ``|Δunits| * p * s``. The
  fraction is ``s = slippage_rate + k * σ * sqrt(|X| / bar_notional_volume)`` (square-root
  impact, ``k = P_IMPACT_COEFFICIENT``, ``σ`` the bar volatility as a fraction and
  ``bar_notional_volume`` in quote currency, both passed in per bar and asset). The impact
  term is skipped where ``σ`` is NaN or the volume is not positive; ``s`` is capped at 0.5.
  When ``s`` depends on the order size, ``X`` is solved by fixed-point iteration.
- funding: at each bar, ``rate[t, j] * units * open[t, j]`` on the units held at the open
  (the funding timestamp is the bar's open time): a long pays a positive rate, a short
  receives it.
- gas: ``P_GAS_PER_FILL`` in quote currency on every fill (signal or stop).

Exits
-----
Stop-loss ``sl``, take-profit ``tp`` and trailing stop ``ts`` are fractions (NaN disables).
A long's levels are ``entry * (1 - sl)``, ``entry * (1 + tp)`` and ``extreme * (1 - ts)``,
where ``entry`` is the execution price of the fill that opened, flipped or increased the
position and ``extreme`` is the highest high since then (mirrored for shorts). The trailing
level in bar ``t`` uses the extreme up to bar ``t - 1`` (the order of a bar's high and low is
unknown), then the extreme is updated with bar ``t``. The stricter of the stop-loss and
trailing levels is "the stop". Checks, in order: the open gaps through the stop (fill at the
open), the open gaps through the take-profit (fill at the open), the low/high touches the
stop (fill at the stop level), the high/low touches the take-profit (fill at its level). So
the stop wins when both are touched inside one bar. A stop exit is a market order (slippage,
fee and gas apply). After a stop exit the asset stays flat until its target changes again.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FILL_NEXT_OPEN = 0
FILL_NEXT_CLOSE = 1
FILL_THIS_CLOSE = 2

# params: one float64 array, indexed by these constants (see ``backtest_params``).
P_INITIAL_CASH = 0
P_FILL_MODE = 1
P_FEE_RATE = 2
P_SLIPPAGE_RATE = 3
P_IMPACT_COEFFICIENT = 4
P_GAS_PER_FILL = 5
P_STOP_LOSS = 6
P_TAKE_PROFIT = 7
P_TRAILING_STOP = 8
N_PARAMS = 9

# costs[t, j, :]
C_FEES = 0
C_SLIPPAGE = 1
C_FUNDING = 2
C_GAS = 3
N_COSTS = 4

# fills[k, :]: one row per fill, in time order.
F_BAR = 0
F_ASSET = 1
F_UNITS = 2  # signed units traded
F_POSITION = 3  # units held after the fill
F_PRICE = 4  # execution price, slippage included
F_REFERENCE_PRICE = 5  # open, close, stop level or gapped open
F_FEE = 6
F_SLIPPAGE = 7
F_GAS = 8
F_REASON = 9
N_FILL_FIELDS = 10

REASON_OPEN = -1  # a trade still open at the last bar
REASON_SIGNAL = 0
REASON_STOP_LOSS = 1
REASON_TAKE_PROFIT = 2
REASON_TRAILING_STOP = 3

# trades[k, :]: one row per round trip (flat or flip to flat or flip), in closing order.
T_ASSET = 0
T_ENTRY_BAR = 1
T_EXIT_BAR = 2
T_DIRECTION = 3  # +1 long, -1 short
T_SIZE = 4  # units entered (all fills that opened or increased the trade)
T_ENTRY_PRICE = 5  # unit-weighted execution price of those fills
T_EXIT_PRICE = 6  # unit-weighted execution price of the reducing fills (last close if open)
T_PNL = 7  # net of fees, slippage (in the prices), gas and funding
T_RETURN = 8  # pnl / (size * entry_price)
T_FEES = 9
T_SLIPPAGE = 10
T_GAS = 11
T_FUNDING = 12
T_EXIT_REASON = 13
N_TRADE_FIELDS = 14

MAX_SLIPPAGE = 0.5
_MAX_ITERATIONS = 100


def backtest_params(
    *,
    initial_cash: float,
    fill_mode: int,
    fee_bps: float = 0.0,
    slippage_bps: float = 0.0,
    impact_coefficient: float = 0.0,
    gas_per_fill: float = 0.0,
    stop_loss: float = np.nan,
    take_profit: float = np.nan,
    trailing_stop: float = np.nan,
) -> np.ndarray:
    """Pack the options of ``portfolio_backtest`` into its ``params`` array (NaN = no stop)."""
    params = np.full(N_PARAMS, np.nan)
    params[P_INITIAL_CASH] = initial_cash
    params[P_FILL_MODE] = fill_mode
    params[P_FEE_RATE] = fee_bps * 1e-4
    params[P_SLIPPAGE_RATE] = slippage_bps * 1e-4
    params[P_IMPACT_COEFFICIENT] = impact_coefficient
    params[P_GAS_PER_FILL] = gas_per_fill
    params[P_STOP_LOSS] = stop_loss
    params[P_TAKE_PROFIT] = take_profit
    params[P_TRAILING_STOP] = trailing_stop
    return params


def max_fills(n_bars: int, n_assets: int) -> int:
    """Rows ``fills`` needs: at most a signal fill and a stop fill per bar and asset."""
    return 2 * n_bars * n_assets


@njit(cache=True)
def _slippage_fraction(params: np.ndarray, notional: float, sigma: float, volume: float) -> float:
    """Fixed slippage plus square-root impact k * σ * sqrt(notional / volume), capped."""
    s = params[P_SLIPPAGE_RATE]
    k = params[P_IMPACT_COEFFICIENT]
    if k > 0.0 and notional > 0.0 and volume > 0.0 and not np.isnan(sigma):
        s += k * sigma * np.sqrt(notional / volume)
    return min(s, MAX_SLIPPAGE)


@njit(cache=True)
def _order_notional(
    weight: float,
    equity: float,
    notional: float,
    params: np.ndarray,
    sigma: float,
    volume: float,
) -> tuple[float, float]:
    """Signed notional change X (at the reference price) and its slippage fraction."""
    fee = params[P_FEE_RATE]
    numerator = weight * (equity - params[P_GAS_PER_FILL]) - notional
    if numerator == 0.0:
        return 0.0, 0.0
    slip = _slippage_fraction(params, 0.0, sigma, volume)
    x = 0.0
    for _ in range(_MAX_ITERATIONS):
        if numerator > 0.0:
            x = numerator / (1.0 + weight * ((1.0 + slip) * (1.0 + fee) - 1.0))
        else:
            x = numerator / (1.0 - weight * (1.0 - (1.0 - slip) * (1.0 - fee)))
        new_slip = _slippage_fraction(params, abs(x), sigma, volume)
        if abs(new_slip - slip) <= 1e-15:
            break
        slip = new_slip
    return x, slip


@njit(cache=True)
def _stop_exit(
    units: float,
    entry: float,
    extreme: float,
    open_: float,
    high: float,
    low: float,
    params: np.ndarray,
) -> tuple[float, int]:
    """(reference exit price, reason) if a stop or take-profit triggers in this bar, else NaN."""
    sl = params[P_STOP_LOSS]
    tp = params[P_TAKE_PROFIT]
    ts = params[P_TRAILING_STOP]
    reason = -1
    if units > 0.0:
        level = -np.inf
        if not np.isnan(sl):
            level = entry * (1.0 - sl)
            reason = REASON_STOP_LOSS
        if not np.isnan(ts) and extreme * (1.0 - ts) > level:
            level = extreme * (1.0 - ts)
            reason = REASON_TRAILING_STOP
        target = entry * (1.0 + tp) if not np.isnan(tp) else np.inf
        if reason >= 0 and open_ <= level:
            return open_, reason
        if open_ >= target:
            return open_, REASON_TAKE_PROFIT
        if reason >= 0 and low <= level:
            return level, reason
        if high >= target:
            return target, REASON_TAKE_PROFIT
    elif units < 0.0:
        level = np.inf
        if not np.isnan(sl):
            level = entry * (1.0 + sl)
            reason = REASON_STOP_LOSS
        if not np.isnan(ts) and extreme * (1.0 + ts) < level:
            level = extreme * (1.0 + ts)
            reason = REASON_TRAILING_STOP
        target = entry * (1.0 - tp) if not np.isnan(tp) else -np.inf
        if reason >= 0 and open_ >= level:
            return open_, reason
        if open_ <= target:
            return open_, REASON_TAKE_PROFIT
        if reason >= 0 and high >= level:
            return level, reason
        if low <= target:
            return target, REASON_TAKE_PROFIT
    return np.nan, -1


@njit(cache=True)
def _fill(
    t: int,
    j: int,
    new_units: float,
    price: float,
    slip: float,
    reason: int,
    book: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    params: np.ndarray,
    n_fills: int,
) -> int:
    """Trade asset j to new_units at reference price * (1 ± slip); returns the fill count.

    ``book`` = (cash as a 1-element array, units per asset, costs, fills), updated in place.
    """
    state, units, costs, fills = book
    traded = new_units - units[j]
    if traded == 0.0:
        return n_fills
    executed = price * (1.0 + slip) if traded > 0.0 else price * (1.0 - slip)
    fee = params[P_FEE_RATE] * abs(traded) * executed
    slippage = abs(traded) * price * slip
    gas = params[P_GAS_PER_FILL]
    state[0] -= traded * executed + fee + gas
    costs[t, j, C_FEES] += fee
    costs[t, j, C_SLIPPAGE] += slippage
    costs[t, j, C_GAS] += gas
    row = fills[n_fills]
    row[F_BAR] = t
    row[F_ASSET] = j
    row[F_UNITS] = traded
    row[F_POSITION] = new_units
    row[F_PRICE] = executed
    row[F_REFERENCE_PRICE] = price
    row[F_FEE] = fee
    row[F_SLIPPAGE] = slippage
    row[F_GAS] = gas
    row[F_REASON] = reason
    units[j] = new_units
    return n_fills + 1


@njit(cache=True)
def _shape_is(values: np.ndarray, n: int, m: int) -> bool:
    return values.shape[0] == n and values.shape[1] == m


@njit(cache=True)
def portfolio_backtest(
    ohlc: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    market: tuple[np.ndarray, np.ndarray, np.ndarray],
    target: np.ndarray,
    params: np.ndarray,
    out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> int:
    """Multi-asset target-weight simulation; see the module docstring for every convention.

    ``ohlc`` = (open, high, low, close) and ``market`` = (funding_rate, volatility,
    bar_notional_volume), each (n_bars, n_assets); ``target`` (n_bars, n_assets);
    ``params`` from ``backtest_params``; ``out`` = (equity (n,), cash (n,), units (n, m),
    costs (n, m, N_COSTS), fills (max_fills(n, m), N_FILL_FIELDS)), filled in place.
    Returns the number of fills written. A 0/1 single-asset target equals vectorbt
    ``Portfolio.from_signals`` (signals shifted one bar for the ``next_*`` modes).
    """
    open_, high, low, close = ohlc
    funding_rate, volatility, volume = market
    equity_out, cash_out, units_out, costs, fills = out
    n, m = close.shape
    if not (
        _shape_is(open_, n, m)
        and _shape_is(high, n, m)
        and _shape_is(low, n, m)
        and _shape_is(funding_rate, n, m)
        and _shape_is(volatility, n, m)
        and _shape_is(volume, n, m)
        and _shape_is(target, n, m)
    ):
        raise ValueError("portfolio_backtest: input shapes differ from close's")
    if units_out.shape[0] != n or units_out.shape[1] != m or costs.shape[0] != n:
        raise ValueError("portfolio_backtest: output shapes differ from close's")
    if fills.shape[0] < max_fills_nb(n, m) or fills.shape[1] != N_FILL_FIELDS:
        raise ValueError("portfolio_backtest: fills needs max_fills(n, m) x N_FILL_FIELDS")
    mode = int(params[P_FILL_MODE])
    if mode != FILL_NEXT_OPEN and mode != FILL_NEXT_CLOSE and mode != FILL_THIS_CLOSE:
        raise ValueError("portfolio_backtest: fill mode must be 0, 1 or 2")
    use_stops = not (
        np.isnan(params[P_STOP_LOSS])
        and np.isnan(params[P_TAKE_PROFIT])
        and np.isnan(params[P_TRAILING_STOP])
    )
    costs[:] = 0.0
    state = np.empty(1)  # cash, mutable across helpers
    state[0] = params[P_INITIAL_CASH]
    units = np.zeros(m)
    held = np.zeros(m)  # the last target acted on
    entry = np.full(m, np.nan)
    extreme = np.full(m, np.nan)
    prices = np.empty(m)
    book = (state, units, costs, fills)
    n_fills = 0
    for t in range(n):
        for j in range(m):
            rate = funding_rate[t, j]
            if units[j] != 0.0 and rate != 0.0:
                paid = rate * units[j] * open_[t, j]
                state[0] -= paid
                costs[t, j, C_FUNDING] += paid
        for phase in range(2):
            # phase 0: open-time signal fills (next_open) ; phase 1: close-time signal fills.
            signal_now = (mode == FILL_NEXT_OPEN) == (phase == 0)
            if phase == 1 and use_stops:
                # Stops for the open-time modes run after the open fills; else before closes.
                for j in range(m):
                    if units[j] == 0.0:
                        continue
                    price, reason = _stop_exit(
                        units[j], entry[j], extreme[j], open_[t, j], high[t, j], low[t, j], params
                    )
                    if reason >= 0:
                        slip = _slippage_fraction(
                            params, abs(units[j]) * price, volatility[t, j], volume[t, j]
                        )
                        n_fills = _fill(t, j, 0.0, price, slip, reason, book, params, n_fills)
                        entry[j] = np.nan
                        extreme[j] = np.nan
                    elif units[j] > 0.0:
                        extreme[j] = max(extreme[j], high[t, j])
                    else:
                        extreme[j] = min(extreme[j], low[t, j])
            if not signal_now:
                continue
            row = t if mode == FILL_THIS_CLOSE else t - 1
            if row < 0:
                continue
            at_open = mode == FILL_NEXT_OPEN
            for j in range(m):
                prices[j] = open_[t, j] if at_open else close[t, j]
            for j in range(m):
                w = target[row, j]
                if w == held[j]:
                    continue
                held[j] = w
                equity = state[0]
                for k in range(m):
                    equity += units[k] * prices[k]
                notional = units[j] * prices[j]
                if equity - params[P_GAS_PER_FILL] <= 0.0:
                    w = 0.0
                if w == 0.0:
                    new_units = 0.0
                    slip = _slippage_fraction(params, abs(notional), volatility[t, j], volume[t, j])
                else:
                    x, slip = _order_notional(
                        w, equity, notional, params, volatility[t, j], volume[t, j]
                    )
                    # x == 0 keeps the units bit for bit (no dust order).
                    new_units = (notional + x) / prices[j] if x != 0.0 else units[j]
                before = units[j]
                n_fills = _fill(
                    t, j, new_units, prices[j], slip, REASON_SIGNAL, book, params, n_fills
                )
                after = units[j]
                if after == 0.0:
                    entry[j] = np.nan
                    extreme[j] = np.nan
                elif before == 0.0 or (after > 0.0) != (before > 0.0) or abs(after) > abs(before):
                    entry[j] = fills[n_fills - 1, F_PRICE]
                    extreme[j] = entry[j]
        value = state[0]
        for j in range(m):
            value += units[j] * close[t, j]
            units_out[t, j] = units[j]
        equity_out[t] = value
        cash_out[t] = state[0]
    return n_fills


@njit(cache=True)
def max_fills_nb(n_bars: int, n_assets: int) -> int:
    """``max_fills`` for use inside kernels."""
    return 2 * n_bars * n_assets


@njit(cache=True)
def round_trip_trades(
    fills: np.ndarray,
    n_fills: int,
    costs: np.ndarray,
    last_close: np.ndarray,
    out: np.ndarray,
) -> int:
    """One row per round trip from the fills log (open trades marked at ``last_close``).

    A trade opens when an asset leaves flat (or flips) and closes when it returns to flat
    (or flips). A flip fill is split between the two trades in proportion to units, costs
    included. Funding charged at bars ``entry_bar + 1 .. exit_bar`` belongs to the trade.
    The sum of all trades' ``T_PNL`` equals final equity minus initial cash.
    Returns the number of rows written to ``out`` (at least ``n_fills + n_assets`` rows).
    """
    n_bars, m = costs.shape[0], costs.shape[1]
    if out.shape[0] < n_fills + m or out.shape[1] != N_TRADE_FIELDS:
        raise ValueError("round_trip_trades: out needs n_fills + n_assets rows")
    # per asset: position, entry bar, entry units, entry value, exit units, exit value,
    # cash flow, fees, slippage, gas
    acc = np.zeros((m, 10))
    n_trades = 0
    for k in range(n_fills):
        row = fills[k]
        j = int(row[F_ASSET])
        t = int(row[F_BAR])
        before = acc[j, 0]
        after = row[F_POSITION]
        traded = abs(row[F_UNITS])
        closing = 0.0  # units of this fill that reduce the current trade
        if before != 0.0:
            if after == 0.0 or (after > 0.0) != (before > 0.0):
                closing = abs(before)
            elif abs(after) < abs(before):
                closing = traded
        share = closing / traded if traded > 0.0 else 0.0
        if closing > 0.0:
            acc[j, 4] += closing
            acc[j, 5] += closing * row[F_PRICE]
            acc[j, 6] += (closing if before > 0.0 else -closing) * row[F_PRICE]
            acc[j, 7] += share * row[F_FEE]
            acc[j, 8] += share * row[F_SLIPPAGE]
            acc[j, 9] += share * row[F_GAS]
        if before != 0.0 and (after == 0.0 or (after > 0.0) != (before > 0.0)):
            n_trades = _close_trade(acc, j, before, t, int(row[F_REASON]), costs, out, n_trades)
        opening = traded - closing
        if opening > 0.0:
            if before == 0.0 or closing > 0.0:  # a new trade: from flat, or a flip
                acc[j, 1] = t
            sign = 1.0 if after > 0.0 else -1.0
            acc[j, 2] += opening
            acc[j, 3] += opening * row[F_PRICE]
            acc[j, 6] -= sign * opening * row[F_PRICE]
            acc[j, 7] += (1.0 - share) * row[F_FEE]
            acc[j, 8] += (1.0 - share) * row[F_SLIPPAGE]
            acc[j, 9] += (1.0 - share) * row[F_GAS]
        acc[j, 0] = after
    for j in range(m):
        if acc[j, 0] != 0.0:
            before = acc[j, 0]
            acc[j, 4] += abs(before)
            acc[j, 5] += abs(before) * last_close[j]
            acc[j, 6] += before * last_close[j]
            n_trades = _close_trade(acc, j, before, n_bars - 1, REASON_OPEN, costs, out, n_trades)
    return n_trades


@njit(cache=True)
def _close_trade(
    acc: np.ndarray,
    j: int,
    position: float,
    exit_bar: int,
    reason: int,
    costs: np.ndarray,
    out: np.ndarray,
    n_trades: int,
) -> int:
    entry_bar = int(acc[j, 1])
    funding = 0.0
    for t in range(entry_bar + 1, exit_bar + 1):
        funding += costs[t, j, C_FUNDING]
    row = out[n_trades]
    row[T_ASSET] = j
    row[T_ENTRY_BAR] = entry_bar
    row[T_EXIT_BAR] = exit_bar
    row[T_DIRECTION] = 1.0 if position > 0.0 else -1.0
    row[T_SIZE] = acc[j, 2]
    row[T_ENTRY_PRICE] = acc[j, 3] / acc[j, 2]
    row[T_EXIT_PRICE] = acc[j, 5] / acc[j, 4]
    row[T_FEES] = acc[j, 7]
    row[T_SLIPPAGE] = acc[j, 8]
    row[T_GAS] = acc[j, 9]
    row[T_FUNDING] = funding
    row[T_PNL] = acc[j, 6] - acc[j, 7] - acc[j, 9] - funding
    row[T_RETURN] = row[T_PNL] / acc[j, 3]
    row[T_EXIT_REASON] = reason
    acc[j, 1:] = 0.0
    return n_trades + 1


def target_position_backtest(
    open_prices: np.ndarray,
    close_prices: np.ndarray,
    target: np.ndarray,
    fee_bps: float,
    fill_mode: int,
    initial_cash: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float]:
    """One asset, fees only: ``(equity, units, cash, n_fills, fees_paid)``.

    A convenience over ``portfolio_backtest`` (high/low are unused without stops); a 0/1
    target equals vectorbt ``from_signals`` with signals shifted one bar in the next modes.
    """
    n = close_prices.shape[0]
    if open_prices.shape[0] != n or target.shape[0] != n:
        raise ValueError("target_position_backtest: open, close and target lengths differ")
    if fill_mode not in (FILL_NEXT_OPEN, FILL_NEXT_CLOSE, FILL_THIS_CLOSE):
        raise ValueError("target_position_backtest: fill_mode must be 0, 1 or 2")
    o = np.ascontiguousarray(open_prices, dtype=np.float64).reshape(n, 1)
    c = np.ascontiguousarray(close_prices, dtype=np.float64).reshape(n, 1)
    zeros = np.zeros((n, 1))
    equity, cash, units = np.empty(n), np.empty(n), np.empty((n, 1))
    costs = np.empty((n, 1, N_COSTS))
    fills = np.empty((max_fills(n, 1), N_FILL_FIELDS))
    params = backtest_params(initial_cash=initial_cash, fill_mode=fill_mode, fee_bps=fee_bps)
    n_fills = portfolio_backtest(
        (o, o, o, c),
        (zeros, zeros, zeros),
        np.ascontiguousarray(target, dtype=np.float64).reshape(n, 1),
        params,
        (equity, cash, units, costs, fills),
    )
    return equity, units[:, 0], cash, n_fills, float(costs[:, 0, C_FEES].sum())
