"""AMM float kernels: V2 swaps, V3 ticks and liquidity, impermanent loss, LP range backtests.

These are the float64 paths that run inside sweeps. The exact answers a contract gives
(integer rounding, ``sqrtPriceX96`` in Q64.96) live in Python ints in
``research_lib.defi.uniswap``; the kernels here drop the rounding and keep the formulas.

Units and conventions (those of the V3 contracts)
--------------------------------------------------
- A **price** is token1 per token0 in raw units (smallest units of each token), and a
  **sqrt price** is its square root: ``sqrtPriceX96 / 2**96`` in float. Tick ``t`` has the
  sqrt price ``1.0001 ** (t / 2)``.
- A position holds liquidity ``L`` on ``[sqrt_lower, sqrt_upper)`` (from ``tick_lower`` and
  ``tick_upper``). It is **in range** when ``sqrt_lower <= sqrt_price < sqrt_upper``, as the
  pool's ``tick_lower <= tick < tick_upper``; at or below the lower bound it is all token0,
  at or above the upper bound all token1.
- **Values** are in token1 (raw units): ``value = amount0 * price + amount1``. Impermanent
  loss is a ratio of two values at the same price, so it is the same in either numeraire,
  and it is the same if every price is inverted (token0 and token1 swapped).
- **Impermanent loss** is ``value of the LP position / value of holding the entry amounts - 1``
  (fees excluded), which is never positive.

Range backtest (``range_backtest``, ``range_sweep``)
----------------------------------------------------
Inputs are per-minute aggregates of a pool's swaps: the close sqrt price, the gross amounts
swappers paid in (``in_amount0``, ``in_amount1``, fee included) and the pool's active
liquidity at the end of the minute. The position is opened at the close of minute 0 with
liquidity ``L``; its entry amounts are what "hold" keeps.

- **Fees**: in minute ``t >= 1``, if the close of minute ``t`` is in range, the position earns
  ``in_amount * fee_rate * L / (pool_liquidity + L)`` of each token. ``pool_liquidity`` is
  taken **not** to include us (we are a hypothetical LP added to the observed pool), so the
  denominator adds ``L``. A minute counts wholly in or out of range by its close (per-minute
  data cannot say when within the minute a bound was crossed), the price impact of our own
  liquidity on the swaps is ignored, and there is no protocol fee. Fees are collected as
  tokens and held; their value at minute ``t`` is ``fees0 * price_t + fees1``.
- **Outputs per minute** (rows of ``out``, indices in ``MINUTE_FIELDS``): the in-range flag
  (1.0 / 0.0), the position's token amounts, its value, the value of holding the entry
  amounts, the fees earned in the minute (token0, token1), the value of all fees so far,
  and the impermanent loss. Each depends only on minutes ``<= t`` (causal).
- **Summary per range** (``range_sweep``, indices in ``SUMMARY_FIELDS``): total fees (tokens
  and value at the final price), final position value, final hold value, final impermanent
  loss, the fraction of minutes (all rows, entry included) whose close was in range, and the
  net PnL against holding, ``final_value + fees_value - hold_value``. Row ``k`` equals the
  last minute of ``range_backtest`` for range ``k`` (the same inline arithmetic), whatever
  the thread count.

NaN policy
----------
NaN propagates and is never read as zero. A NaN sqrt price at minute ``t`` makes every
output at ``t`` NaN (in-range flag included) and the running fee totals NaN from ``t`` on.
A NaN inflow or pool liquidity matters only in a minute that is in range, where it makes the
minute's fees, and the totals from then on, NaN. Scalar kernels return NaN for NaN inputs,
except ``sqrt_price_to_tick``, which has an integer result and raises ``ValueError``.
Checking inputs (bounds ordered, liquidity positive, fee rate in [0, 1)) is the caller's job.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

MIN_TICK = -887272  # TickMath.MIN_TICK
MAX_TICK = 887272  # TickMath.MAX_TICK
# ln(1.0001) / 2. 1.0001 ** x carries the rounding of the float 1.0001 (~1e-17) times x, up
# to 4e-12 relative at MAX_TICK; exp(x * ln(1.0001) / 2) with log1p keeps ~1e-14.
_HALF_LOG_BASE = 0.5 * math.log1p(1e-4)

MINUTE_FIELDS: tuple[str, ...] = (
    "in_range",
    "amount0",
    "amount1",
    "value",
    "hold_value",
    "fees0",
    "fees1",
    "fees_value",
    "il",
)
N_MINUTE_FIELDS = len(MINUTE_FIELDS)
IN_RANGE, AMOUNT0, AMOUNT1, VALUE, HOLD_VALUE, FEES0, FEES1, FEES_VALUE, IL = range(N_MINUTE_FIELDS)

SUMMARY_FIELDS: tuple[str, ...] = (
    "fees0",
    "fees1",
    "fees_value",
    "final_value",
    "hold_value",
    "il",
    "time_in_range",
    "net_pnl",
)
N_SUMMARY_FIELDS = len(SUMMARY_FIELDS)
(
    S_FEES0,
    S_FEES1,
    S_FEES_VALUE,
    S_FINAL_VALUE,
    S_HOLD_VALUE,
    S_IL,
    S_TIME_IN_RANGE,
    S_NET_PNL,
) = range(N_SUMMARY_FIELDS)


# --- Uniswap V2 -----------------------------------------------------------------------------


@njit(cache=True)
def v2_amount_out(
    amount_in: float, reserve_in: float, reserve_out: float, fee_rate: float
) -> float:
    """UniswapV2Library.getAmountOut without integer rounding (fee_rate 0.003 is 997/1000)."""
    with_fee = amount_in * (1.0 - fee_rate)
    return with_fee * reserve_out / (reserve_in + with_fee)


@njit(cache=True)
def v2_amount_in(
    amount_out: float, reserve_in: float, reserve_out: float, fee_rate: float
) -> float:
    """UniswapV2Library.getAmountIn without rounding or its +1; inf when out >= reserve_out."""
    if amount_out >= reserve_out:
        # The contract reverts: no finite input buys the whole reserve.
        return np.inf
    return reserve_in * amount_out / ((reserve_out - amount_out) * (1.0 - fee_rate))


# --- Uniswap V3: ticks, liquidity and amounts -----------------------------------------------


@njit(cache=True)
def tick_to_sqrt_price(tick: float) -> float:
    """TickMath.getSqrtRatioAtTick / 2**96 in float: 1.0001 ** (tick / 2)."""
    return math.exp(tick * _HALF_LOG_BASE)


@njit(cache=True)
def tick_to_sqrt_price_1d(ticks: np.ndarray, out: np.ndarray) -> None:
    """``tick_to_sqrt_price`` element-wise: out[i] = 1.0001 ** (ticks[i] / 2)."""
    for i in range(ticks.shape[0]):
        out[i] = tick_to_sqrt_price(ticks[i])


@njit(cache=True)
def sqrt_price_to_tick(sqrt_price: float) -> int:
    """TickMath.getTickAtSqrtRatio in float: the greatest tick whose sqrt price is <= the input."""
    if not (sqrt_price > 0.0 and sqrt_price < np.inf):
        raise ValueError("sqrt_price must be finite and > 0")
    tick = math.floor(math.log(sqrt_price) / _HALF_LOG_BASE)
    # The logarithm can land one tick off next to a tick's exact sqrt price; step to the
    # tick that tick_to_sqrt_price itself puts on the right side.
    while tick_to_sqrt_price(tick + 1) <= sqrt_price:
        tick += 1
    while tick_to_sqrt_price(tick) > sqrt_price:
        tick -= 1
    return tick


@njit(cache=True)
def liquidity_for_amounts(
    sqrt_price: float, sqrt_lower: float, sqrt_upper: float, amount0: float, amount1: float
) -> float:
    """LiquidityAmounts.getLiquidityForAmounts in float: the most L the two amounts fund."""
    if sqrt_price != sqrt_price:
        return np.nan
    if sqrt_price <= sqrt_lower:
        return amount0 * sqrt_lower * sqrt_upper / (sqrt_upper - sqrt_lower)
    if sqrt_price < sqrt_upper:
        from0 = amount0 * sqrt_price * sqrt_upper / (sqrt_upper - sqrt_price)
        from1 = amount1 / (sqrt_price - sqrt_lower)
        return min(from0, from1)
    return amount1 / (sqrt_upper - sqrt_lower)


@njit(cache=True, inline="always")
def amounts_for_liquidity(
    sqrt_price: float, sqrt_lower: float, sqrt_upper: float, liquidity: float
) -> tuple[float, float]:
    """LiquidityAmounts.getAmountsForLiquidity in float: (amount0, amount1) held by L."""
    if sqrt_price != sqrt_price:
        return np.nan, np.nan
    if sqrt_price <= sqrt_lower:
        return liquidity * (sqrt_upper - sqrt_lower) / (sqrt_lower * sqrt_upper), 0.0
    if sqrt_price < sqrt_upper:
        amount0 = liquidity * (sqrt_upper - sqrt_price) / (sqrt_price * sqrt_upper)
        return amount0, liquidity * (sqrt_price - sqrt_lower)
    return 0.0, liquidity * (sqrt_upper - sqrt_lower)


@njit(cache=True, inline="always")
def position_value(
    sqrt_price: float, sqrt_lower: float, sqrt_upper: float, liquidity: float
) -> float:
    """getAmountsForLiquidity valued in token1: amount0 * sqrt_price**2 + amount1."""
    amount0, amount1 = amounts_for_liquidity(sqrt_price, sqrt_lower, sqrt_upper, liquidity)
    return amount0 * (sqrt_price * sqrt_price) + amount1


@njit(cache=True)
def liquidity_for_value(
    sqrt_price: float, sqrt_lower: float, sqrt_upper: float, value: float
) -> float:
    """The L whose position_value is ``value`` (token1): value / position_value(L = 1)."""
    return value / position_value(sqrt_price, sqrt_lower, sqrt_upper, 1.0)


# --- Impermanent loss -----------------------------------------------------------------------


@njit(cache=True, inline="always")
def impermanent_loss_v2(price_ratio: float) -> float:
    """Closed form 2 sqrt(r) / (1 + r) - 1 for r = price / entry price (constant product)."""
    if price_ratio == np.inf:
        return -1.0
    # 2 sqrt(r) - (1 + r) = -(sqrt(r) - 1)**2: the squared form keeps full relative accuracy
    # near r = 1, where the plain closed form cancels to nothing.
    root = np.sqrt(price_ratio)
    return -((root - 1.0) * (root - 1.0)) / (1.0 + price_ratio)


@njit(cache=True)
def impermanent_loss_v2_1d(price_ratio: np.ndarray, out: np.ndarray) -> None:
    """``impermanent_loss_v2`` element-wise: out[i] = 2 sqrt(r_i) / (1 + r_i) - 1."""
    for i in range(price_ratio.shape[0]):
        out[i] = impermanent_loss_v2(price_ratio[i])


@njit(cache=True, inline="always")
def impermanent_loss_v3_range(
    sqrt_price_entry: float, sqrt_price: float, sqrt_lower: float, sqrt_upper: float
) -> float:
    """V3 range IL, position vs hold from getAmountsForLiquidity; in range the closed form
    (2 sqrt(r) - 1 - r) / (1 + r - sqrt(Pa / P0) - r sqrt(P0 / Pb)), r = P / P0."""
    # Work in units of the entry sqrt price, so that the result is scale-free. With c and c0
    # the current and entry sqrt prices clamped to the range (where the position's
    # composition stops changing), per unit of L:
    #   value = (1/c - 1/ub) u**2 + c - ua,  hold = (1/c0 - 1/ub) u**2 + c0 - ua,
    #   value - hold = (c - c0) (c c0 - u**2) / (c c0),
    # a product that keeps full relative accuracy where the difference is tiny.
    u = sqrt_price / sqrt_price_entry
    ua = sqrt_lower / sqrt_price_entry
    ub = sqrt_upper / sqrt_price_entry
    if u != u or ua != ua or ub != ub:
        return np.nan
    c = min(max(u, ua), ub)
    c0 = min(max(1.0, ua), ub)
    u2 = u * u
    hold = (1.0 / c0 - 1.0 / ub) * u2 + (c0 - ua)
    return (c - c0) * (c * c0 - u2) / (c * c0 * hold)


@njit(cache=True)
def impermanent_loss_v3_range_1d(
    sqrt_price_entry: float,
    sqrt_price: np.ndarray,
    sqrt_lower: float,
    sqrt_upper: float,
    out: np.ndarray,
) -> None:
    """``impermanent_loss_v3_range`` element-wise over a path of sqrt prices."""
    for i in range(sqrt_price.shape[0]):
        out[i] = impermanent_loss_v3_range(sqrt_price_entry, sqrt_price[i], sqrt_lower, sqrt_upper)


# --- LP range backtest ----------------------------------------------------------------------


@njit(cache=True, inline="always")
def _minute(
    sqrt_price: float,
    sqrt_lower: float,
    sqrt_upper: float,
    liquidity: float,
    in_amount0: float,
    in_amount1: float,
    pool_liquidity: float,
    fee_rate: float,
) -> tuple[float, float, float]:
    """(in-range flag, fees0, fees1) of one minute; shared so the sweep equals the backtest."""
    if sqrt_price != sqrt_price:
        return np.nan, np.nan, np.nan
    if sqrt_lower <= sqrt_price and sqrt_price < sqrt_upper:
        total = pool_liquidity + liquidity
        share = liquidity / total if total != 0.0 else 0.0
        return 1.0, in_amount0 * fee_rate * share, in_amount1 * fee_rate * share
    return 0.0, 0.0, 0.0


@njit(cache=True)
def range_backtest(
    sqrt_price: np.ndarray,
    in_amount0: np.ndarray,
    in_amount1: np.ndarray,
    pool_liquidity: np.ndarray,
    fee_rate: float,
    tick_lower: int,
    tick_upper: int,
    liquidity: float,
    out: np.ndarray,
) -> None:
    """V3 LP on [tick_lower, tick_upper) vs hold, per minute into out[MINUTE_FIELDS, n]
    (reference: the module docstring's rules as a plain per-minute Python loop)."""
    n = sqrt_price.shape[0]
    sqrt_lower = tick_to_sqrt_price(tick_lower)
    sqrt_upper = tick_to_sqrt_price(tick_upper)
    entry = sqrt_price[0] if n > 0 else np.nan
    hold0, hold1 = amounts_for_liquidity(entry, sqrt_lower, sqrt_upper, liquidity)
    fees0 = 0.0
    fees1 = 0.0
    for t in range(n):
        s = sqrt_price[t]
        if t == 0:
            # Opened at minute 0's close: its swaps happened before we were in the pool.
            flag, f0, f1 = _minute(s, sqrt_lower, sqrt_upper, liquidity, 0.0, 0.0, 1.0, 0.0)
        else:
            flag, f0, f1 = _minute(
                s,
                sqrt_lower,
                sqrt_upper,
                liquidity,
                in_amount0[t],
                in_amount1[t],
                pool_liquidity[t],
                fee_rate,
            )
        fees0 += f0
        fees1 += f1
        price = s * s
        amount0, amount1 = amounts_for_liquidity(s, sqrt_lower, sqrt_upper, liquidity)
        out[IN_RANGE, t] = flag
        out[AMOUNT0, t] = amount0
        out[AMOUNT1, t] = amount1
        out[VALUE, t] = amount0 * price + amount1
        out[HOLD_VALUE, t] = hold0 * price + hold1
        out[FEES0, t] = f0
        out[FEES1, t] = f1
        out[FEES_VALUE, t] = fees0 * price + fees1
        out[IL, t] = impermanent_loss_v3_range(entry, s, sqrt_lower, sqrt_upper)


@njit(cache=True, parallel=True)
def range_sweep(
    sqrt_price: np.ndarray,
    in_amount0: np.ndarray,
    in_amount1: np.ndarray,
    pool_liquidity: np.ndarray,
    fee_rate: float,
    tick_lower: np.ndarray,
    tick_upper: np.ndarray,
    liquidity: np.ndarray,
    out: np.ndarray,
) -> None:
    """``range_backtest``'s last minute for every range k into out[k, SUMMARY_FIELDS],
    in parallel over ranges, streaming (no per-minute arrays)."""
    n = sqrt_price.shape[0]
    for k in prange(tick_lower.shape[0]):
        if n == 0:
            out[k, :] = np.nan
            continue
        sqrt_lower = tick_to_sqrt_price(tick_lower[k])
        sqrt_upper = tick_to_sqrt_price(tick_upper[k])
        big_l = liquidity[k]
        entry = sqrt_price[0]
        hold0, hold1 = amounts_for_liquidity(entry, sqrt_lower, sqrt_upper, big_l)
        fees0 = 0.0
        fees1 = 0.0
        minutes_in_range = 0.0
        for t in range(n):
            if t == 0:
                flag, f0, f1 = _minute(
                    sqrt_price[t], sqrt_lower, sqrt_upper, big_l, 0.0, 0.0, 1.0, 0.0
                )
            else:
                flag, f0, f1 = _minute(
                    sqrt_price[t],
                    sqrt_lower,
                    sqrt_upper,
                    big_l,
                    in_amount0[t],
                    in_amount1[t],
                    pool_liquidity[t],
                    fee_rate,
                )
            fees0 += f0
            fees1 += f1
            minutes_in_range += flag
        s = sqrt_price[n - 1]
        price = s * s
        amount0, amount1 = amounts_for_liquidity(s, sqrt_lower, sqrt_upper, big_l)
        value = amount0 * price + amount1
        hold = hold0 * price + hold1
        fees_value = fees0 * price + fees1
        out[k, S_FEES0] = fees0
        out[k, S_FEES1] = fees1
        out[k, S_FEES_VALUE] = fees_value
        out[k, S_FINAL_VALUE] = value
        out[k, S_HOLD_VALUE] = hold
        out[k, S_IL] = impermanent_loss_v3_range(entry, s, sqrt_lower, sqrt_upper)
        out[k, S_TIME_IN_RANGE] = minutes_in_range / n
        out[k, S_NET_PNL] = value + fees_value - hold
