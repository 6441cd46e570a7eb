"""LP analytics: impermanent loss for V2 and V3 ranges, and Uniswap V3 range backtests.

Polars in, polars out; the arithmetic is ``kernels.amm`` (its module docstring states the
fee, valuation and NaN rules). This layer reads the per-minute pool file, converts token
decimals, turns USD price bounds into ticks, checks inputs and names the columns.

Orientation and units. A pool's raw price is token1 per token0 in smallest units,
``1.0001 ** tick``. For the Polygon USDC.e (token0, 6 decimals) / WETH (token1, 18 decimals)
pool, the human price in USDC per WETH is ``10 ** (18 - 6) / 1.0001 ** tick``, so a *higher*
USD price is a *lower* tick. Values here are in token0 (USDC.e), reported as ``*_usd``;
token amounts are in human units (``amount0`` in USDC, ``amount1`` in WETH).

The pool liquidity in the data does not include us: the backtest adds a hypothetical
position to the observed pool and earns ``L / (pool_liquidity + L)`` of each in-range
minute's fees (``kernels.amm``). Missing minutes in the data (seven gaps of 2-3 minutes in
the Polygon file) are not filled; they earn nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from kernels import amm

__all__ = [
    "MINUTE_COLUMNS",
    "SUMMARY_COLUMNS",
    "RangeBacktest",
    "impermanent_loss_v2",
    "impermanent_loss_v3_range",
    "load_v3_minutes",
    "prepare_v3_minutes",
    "range_backtest",
    "range_sweep",
]

# The columns range_backtest and range_sweep read from a prepared frame.
_PREPARED = ("ts", "close_tick", "price", "in_amount0_raw", "in_amount1_raw", "pool_liquidity_raw")
_RAW = ("ts", "close_tick", "in_amount0", "in_amount1", "liquidity")

MINUTE_COLUMNS: tuple[str, ...] = (
    "ts",
    "price",
    "in_range",
    "amount0",
    "amount1",
    "value_usd",
    "hold_value_usd",
    "fees0",
    "fees1",
    "fees_usd",
    "il",
    "pnl_vs_hold_usd",
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "price_lower",
    "price_upper",
    "tick_lower",
    "tick_upper",
    "range_price_lower",
    "range_price_upper",
    "liquidity",
    "capital_usd",
    "entry_price",
    "final_price",
    "amount0_entry",
    "amount1_entry",
    "fees0",
    "fees1",
    "fees_usd",
    "final_value_usd",
    "hold_value_usd",
    "il",
    "time_in_range",
    "net_pnl_vs_hold_usd",
    "lp_return",
    "hold_return",
)


@dataclass(frozen=True, eq=False)
class RangeBacktest:
    """One V3 range backtest.

    Attributes
    ----------
    minutes
        One row per input minute (``MINUTE_COLUMNS``): ``price`` (token0 per token1, USDC per
        WETH), ``in_range``, the position's ``amount0`` / ``amount1`` (human units),
        ``value_usd``, ``hold_value_usd`` (the entry amounts held), ``fees0`` / ``fees1``
        earned in the minute, ``fees_usd`` (all fees so far, valued at this minute's price),
        ``il`` (position vs hold, fees excluded) and ``pnl_vs_hold_usd``
        (``value_usd + fees_usd - hold_value_usd``).
    summary
        One row (``SUMMARY_COLUMNS``), the same row ``range_sweep`` gives for this range.
    """

    minutes: pl.DataFrame
    summary: pl.DataFrame


# --- input checks ---------------------------------------------------------------------------


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and number > 0.0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return number


def _integer(name: str, value: object, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return int(value)


def _fee_rate(fee_tier_bps: object) -> float:
    # V3 fees are below 100% (the contract's fee is in pips, < 1e6).
    bps = _positive("fee_tier_bps", fee_tier_bps)
    if bps >= 10_000.0:
        raise ValueError(f"fee_tier_bps must be < 10000 (100%), got {fee_tier_bps!r}; 5 is 0.05%")
    return bps * 1e-4


def _column(frame: pl.DataFrame, name: str, *, allow_zero: bool = True) -> np.ndarray:
    """A float64 copy of a prepared column, after checking it is finite and non-negative."""
    array = frame.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy()
    array = np.ascontiguousarray(array, dtype=np.float64)
    bad = ~np.isfinite(array) | (array < 0.0) | (~allow_zero & (array == 0.0))
    if bad.any():
        row = int(np.argmax(bad))
        value = "null/NaN" if np.isnan(array[row]) else repr(float(array[row]))
        raise ValueError(
            f"column {name!r} has {value} at row {row}; it must be finite and "
            f"{'>= 0' if allow_zero else '> 0'} (drop or repair the row first)"
        )
    return array


@dataclass(frozen=True)
class _Minutes:
    """The checked arrays of a prepared frame, in kernel units."""

    ts: np.ndarray
    sqrt_price: np.ndarray
    in_amount0: np.ndarray
    in_amount1: np.ndarray
    pool_liquidity: np.ndarray


def _minutes(frame: pl.DataFrame, *, decimals0: int, decimals1: int) -> _Minutes:
    if not isinstance(frame, pl.DataFrame):
        raise ValueError(f"frame must be a polars DataFrame, got {type(frame).__name__}")
    missing = [c for c in _PREPARED if c not in frame.columns]
    if missing:
        raise ValueError(
            f"frame lacks columns {missing}; pass the output of prepare_v3_minutes "
            f"(or load_v3_minutes), which has {list(_PREPARED)}"
        )
    if frame.height == 0:
        raise ValueError("frame has 0 rows; a backtest needs at least the entry minute")
    ts = frame.get_column("ts").to_numpy()
    if frame.get_column("ts").null_count() or (ts.shape[0] > 1 and not (np.diff(ts) > 0).all()):
        row = int(np.argmax(~(np.diff(ts) > 0))) + 1 if ts.shape[0] > 1 else 0
        raise ValueError(f"column 'ts' must be strictly increasing without nulls; see row {row}")
    ticks = frame.get_column("close_tick")
    if ticks.null_count():
        row = int(ticks.is_null().arg_max())
        raise ValueError(f"column 'close_tick' is null at row {row}")
    tick_array = np.ascontiguousarray(ticks.to_numpy(), dtype=np.float64)
    outside = (tick_array < amm.MIN_TICK) | (tick_array > amm.MAX_TICK)
    if outside.any():
        row = int(np.argmax(outside))
        raise ValueError(f"column 'close_tick' has {tick_array[row]:.0f} at row {row}; not a tick")
    sqrt_price = np.empty_like(tick_array)
    amm.tick_to_sqrt_price_1d(tick_array, sqrt_price)
    # Decimals that do not match the frame would shift every USD figure by powers of ten:
    # check them against the frame's own human price once.
    first = frame.get_column("price")[0]
    price0 = math.nan if first is None else float(first)
    expected = 10.0 ** (decimals1 - decimals0) / (sqrt_price[0] * sqrt_price[0])
    if not (math.isfinite(price0) and abs(price0 / expected - 1.0) < 1e-6):
        raise ValueError(
            f"decimals0={decimals0}, decimals1={decimals1} give price {expected:.6g} at row 0 "
            f"but the frame's 'price' is {price0!r}; pass the pool's token decimals"
        )
    return _Minutes(
        ts=ts,
        sqrt_price=sqrt_price,
        in_amount0=_column(frame, "in_amount0_raw"),
        in_amount1=_column(frame, "in_amount1_raw"),
        pool_liquidity=_column(frame, "pool_liquidity_raw"),
    )


def _range_ticks(
    price_lower: object, price_upper: object, *, shift: int, tick_spacing: int, where: str = ""
) -> tuple[int, int]:
    """Usable ticks holding [price_lower, price_upper] (token0 per token1, human units).

    The bounds are widened outward to multiples of ``tick_spacing``, as a position must sit on
    initialised ticks. Price and tick run in opposite directions here, so ``price_upper``
    gives ``tick_lower``.
    """
    lower = _positive(f"price_lower{where}", price_lower)
    upper = _positive(f"price_upper{where}", price_upper)
    if not upper > lower:
        raise ValueError(f"price_upper{where} ({upper!r}) must be > price_lower ({lower!r})")
    log_base = math.log(1.0001)
    tick_of_upper = (shift * math.log(10.0) - math.log(upper)) / log_base
    tick_of_lower = (shift * math.log(10.0) - math.log(lower)) / log_base
    # A 1e-9 tick tolerance keeps a bound that is exactly a usable tick's price on that tick.
    tick_lower = math.floor(tick_of_upper / tick_spacing + 1e-9) * tick_spacing
    tick_upper = math.ceil(tick_of_lower / tick_spacing - 1e-9) * tick_spacing
    low_usable = math.ceil(amm.MIN_TICK / tick_spacing) * tick_spacing
    high_usable = math.floor(amm.MAX_TICK / tick_spacing) * tick_spacing
    if tick_lower < low_usable or tick_upper > high_usable:
        raise ValueError(
            f"price range [{lower!r}, {upper!r}]{where} maps to ticks [{tick_lower}, "
            f"{tick_upper}], outside the usable [{low_usable}, {high_usable}]"
        )
    return tick_lower, tick_upper


def _tick_price(tick: int, shift: int) -> float:
    sqrt_price = amm.tick_to_sqrt_price(tick)
    return 10.0**shift / (sqrt_price * sqrt_price)


# --- loading --------------------------------------------------------------------------------


def prepare_v3_minutes(
    raw: pl.DataFrame, *, decimals0: int = 6, decimals1: int = 18
) -> pl.DataFrame:
    """The per-minute pool frame the backtests read, from the provenance schema.

    Parameters
    ----------
    raw
        Uniswap V3 per-minute rows with ``ts``, ``close_tick``, ``in_amount0``,
        ``in_amount1`` and ``liquidity`` (integers, e.g. decimal128, in raw token units).
    decimals0, decimals1
        Token decimals (USDC.e 6, WETH 18 for the Polygon pool).

    Returns
    -------
    pl.DataFrame
        ``ts``, ``close_tick``, ``price`` (token0 per token1 in human units:
        ``10 ** (decimals1 - decimals0) / 1.0001 ** close_tick``), ``in_amount0_raw``,
        ``in_amount1_raw`` and ``pool_liquidity_raw`` as float64, sorted by ``ts``.
        ``close_tick`` is used rather than the minute's high/low ticks (the provenance notes
        those are approximate).

    Examples
    --------
    >>> raw = pl.DataFrame({"ts": [0, 60_000], "close_tick": [202_000, 202_010],
    ...     "in_amount0": [0, 10**9], "in_amount1": [0, 0], "liquidity": [10**18, 10**18]})
    >>> prepare_v3_minutes(raw)["price"].round(2).to_list()
    [1689.24, 1687.55]
    """
    decimals0 = _integer("decimals0", decimals0, low=0, high=36)
    decimals1 = _integer("decimals1", decimals1, low=0, high=36)
    missing = [c for c in _RAW if c not in raw.columns]
    if missing:
        raise ValueError(f"raw frame lacks columns {missing}; expected {list(_RAW)}")
    frame = raw.select(
        pl.col("ts").cast(pl.Int64),
        pl.col("close_tick").cast(pl.Int32),
        pl.col("in_amount0").cast(pl.Float64).alias("in_amount0_raw"),
        pl.col("in_amount1").cast(pl.Float64).alias("in_amount1_raw"),
        pl.col("liquidity").cast(pl.Float64).alias("pool_liquidity_raw"),
    ).sort("ts")
    ticks = frame.get_column("close_tick").cast(pl.Float64).fill_null(np.nan).to_numpy()
    sqrt_price = np.empty_like(ticks)
    amm.tick_to_sqrt_price_1d(np.ascontiguousarray(ticks), sqrt_price)
    price = 10.0 ** (decimals1 - decimals0) / (sqrt_price * sqrt_price)
    return frame.insert_column(2, pl.Series("price", price, dtype=pl.Float64))


def load_v3_minutes(path: str | Path, *, decimals0: int = 6, decimals1: int = 18) -> pl.DataFrame:
    """Read a per-minute Uniswap V3 pool parquet file and ``prepare_v3_minutes`` it.

    Parameters
    ----------
    path
        The file, e.g. ``../shared/data/real/dex/uniswap_v3_polygon_usdc_weth_005_1m.parquet``
        (its schema is in that folder's PROVENANCE.md). It is read, never copied.
    decimals0, decimals1
        Token decimals (USDC.e 6, WETH 18 for the Polygon pool).

    Returns
    -------
    pl.DataFrame
        As ``prepare_v3_minutes``.

    Examples
    --------
    >>> frame = load_v3_minutes(REAL / "dex/uniswap_v3_polygon_usdc_weth_005_1m.parquet")
    ... # doctest: +SKIP
    >>> frame.height  # doctest: +SKIP
    50390
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file; pass the pool's minute parquet")
    raw = pl.read_parquet(path, columns=list(_RAW))
    return prepare_v3_minutes(raw, decimals0=decimals0, decimals1=decimals1)


# --- impermanent loss -----------------------------------------------------------------------


def _as_array(name: str, values: object) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))
    bad = ~(array > 0.0)  # NaN compares False, so it is caught here too
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name} has {float(array[row])!r} at index {row}; prices must be > 0")
    return array


def impermanent_loss_v2(
    price_ratio: float | Sequence[float] | np.ndarray | pl.Series,
) -> float | np.ndarray | pl.Series:
    """Impermanent loss of a constant-product (V2) position: ``2 sqrt(r) / (1 + r) - 1``.

    Parameters
    ----------
    price_ratio
        ``r`` = current price / entry price (either orientation gives the same loss), > 0.

    Returns
    -------
    float, np.ndarray or pl.Series
        The loss as a fraction of the hold value (<= 0), of the same kind as the input.

    Raises
    ------
    ValueError
        When a ratio is not > 0 (NaN included), naming its index.

    Examples
    --------
    >>> round(impermanent_loss_v2(4.0), 12)
    -0.2
    """
    ratios = _as_array("price_ratio", price_ratio)
    out = np.empty_like(ratios)
    amm.impermanent_loss_v2_1d(ratios, out)
    return _like(price_ratio, out, "il")


def impermanent_loss_v3_range(
    price: float | Sequence[float] | np.ndarray | pl.Series,
    *,
    price_entry: float,
    price_lower: float,
    price_upper: float,
) -> float | np.ndarray | pl.Series:
    """Impermanent loss of a V3 position on ``[price_lower, price_upper]`` against holding.

    The position's value over the value of its entry amounts held, minus one (fees
    excluded). Inside the range this is the closed form
    ``(2 sqrt(r) - 1 - r) / (1 + r - sqrt(Pa / P0) - r sqrt(P0 / Pb))`` with
    ``r = price / price_entry``; outside it the position is all one token and the loss
    follows from that. Prices may be in either orientation, as long as all four agree.

    Parameters
    ----------
    price
        Current price(s), > 0.
    price_entry
        Price when the position was opened, > 0 (may lie outside the range).
    price_lower, price_upper
        The range, ``0 < price_lower < price_upper``.

    Returns
    -------
    float, np.ndarray or pl.Series
        The loss (<= 0), of the same kind as ``price``.

    Raises
    ------
    ValueError
        On a price that is not > 0 or ``price_upper <= price_lower``.

    Examples
    --------
    >>> round(impermanent_loss_v3_range(
    ...     1.05, price_entry=1.0, price_lower=0.9, price_upper=1.1), 6)
    -0.006087
    """
    prices = _as_array("price", price)
    entry = _positive("price_entry", price_entry)
    lower = _positive("price_lower", price_lower)
    upper = _positive("price_upper", price_upper)
    if not upper > lower:
        raise ValueError(f"price_upper ({upper!r}) must be > price_lower ({lower!r})")
    out = np.empty_like(prices)
    amm.impermanent_loss_v3_range_1d(
        math.sqrt(entry), np.sqrt(prices), math.sqrt(lower), math.sqrt(upper), out
    )
    return _like(price, out, "il")


def _like(template: object, values: np.ndarray, name: str) -> float | np.ndarray | pl.Series:
    if isinstance(template, pl.Series):
        return pl.Series(template.name or name, values)
    if np.ndim(template) == 0:
        return float(values[0])
    return values


# --- range backtests ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Setup:
    fee_rate: float
    shift: int
    scale0: float
    scale1: float


def _setup(
    fee_tier_bps: object, tick_spacing: object, decimals0: object, decimals1: object
) -> _Setup:
    fee_rate = _fee_rate(fee_tier_bps)
    _integer("tick_spacing", tick_spacing, low=1, high=16_384)
    d0 = _integer("decimals0", decimals0, low=0, high=36)
    d1 = _integer("decimals1", decimals1, low=0, high=36)
    return _Setup(fee_rate=fee_rate, shift=d1 - d0, scale0=10.0**d0, scale1=10.0**d1)


def _liquidity(
    minutes: _Minutes, tick_lower: int, tick_upper: int, capital_usd: float, setup: _Setup
) -> float:
    """The L that ``capital_usd`` of token0 buys at the entry minute's close."""
    entry = minutes.sqrt_price[0]
    # USD -> raw token0 -> token1 at the entry price (the kernels' numeraire).
    value_token1 = capital_usd * setup.scale0 * (entry * entry)
    return amm.liquidity_for_value(
        entry, amm.tick_to_sqrt_price(tick_lower), amm.tick_to_sqrt_price(tick_upper), value_token1
    )


def _summary_rows(
    bounds: list[tuple[float, float, int, int]],
    liquidity: np.ndarray,
    stats: np.ndarray,
    minutes: _Minutes,
    capital_usd: float,
    setup: _Setup,
) -> pl.DataFrame:
    """SUMMARY_COLUMNS from the kernel's per-range stats (token1 raw units) and inputs."""
    entry, final = minutes.sqrt_price[0], minutes.sqrt_price[-1]
    # Token1 raw -> USD at the final price: every summary value is marked at that price.
    to_usd = 1.0 / ((final * final) * setup.scale0)
    rows = []
    for k, (lower, upper, tick_lower, tick_upper) in enumerate(bounds):
        sqrt_lower = amm.tick_to_sqrt_price(tick_lower)
        sqrt_upper = amm.tick_to_sqrt_price(tick_upper)
        amount0, amount1 = amm.amounts_for_liquidity(entry, sqrt_lower, sqrt_upper, liquidity[k])
        value_usd = stats[k, amm.S_FINAL_VALUE] * to_usd
        fees_usd = stats[k, amm.S_FEES_VALUE] * to_usd
        hold_usd = stats[k, amm.S_HOLD_VALUE] * to_usd
        rows.append(
            (
                lower,
                upper,
                tick_lower,
                tick_upper,
                _tick_price(tick_upper, setup.shift),
                _tick_price(tick_lower, setup.shift),
                float(liquidity[k]),
                capital_usd,
                10.0**setup.shift / (entry * entry),
                10.0**setup.shift / (final * final),
                amount0 / setup.scale0,
                amount1 / setup.scale1,
                stats[k, amm.S_FEES0] / setup.scale0,
                stats[k, amm.S_FEES1] / setup.scale1,
                fees_usd,
                value_usd,
                hold_usd,
                stats[k, amm.S_IL],
                stats[k, amm.S_TIME_IN_RANGE],
                stats[k, amm.S_NET_PNL] * to_usd,
                (value_usd + fees_usd) / capital_usd - 1.0,
                hold_usd / capital_usd - 1.0,
            )
        )
    schema = {name: pl.Float64 for name in SUMMARY_COLUMNS} | {
        "tick_lower": pl.Int64,
        "tick_upper": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def range_backtest(
    frame: pl.DataFrame,
    *,
    price_lower: float,
    price_upper: float,
    capital_usd: float,
    fee_tier_bps: float = 5.0,
    tick_spacing: int = 10,
    decimals0: int = 6,
    decimals1: int = 18,
) -> RangeBacktest:
    """Backtest one Uniswap V3 LP range against holding, minute by minute.

    ``capital_usd`` goes into the range at the close of the frame's first minute (split
    between the tokens as the range needs). From the second minute on, every minute whose
    close is in range earns ``L / (pool_liquidity + L)`` of ``in_amount * fee`` in each
    token; the pool's liquidity in the data does not include us. Fees are held, not
    reinvested. Rules in full: ``kernels.amm``.

    Parameters
    ----------
    frame
        From ``prepare_v3_minutes`` / ``load_v3_minutes``, one row per minute, oldest first;
        slice it to the period wanted (the first row is the entry).
    price_lower, price_upper
        The range in token0 per token1 (USDC per WETH), widened outward to usable ticks.
    capital_usd
        Value put in at entry, in token0 (USDC.e) units, > 0.
    fee_tier_bps
        The pool's fee in basis points (5 = 0.05%, the Polygon USDC.e/WETH pool's tier).
    tick_spacing
        The pool's tick spacing (10 for the 0.05% tier).
    decimals0, decimals1
        Token decimals (6 and 18); checked against the frame's ``price`` column.

    Returns
    -------
    RangeBacktest
        ``minutes`` (``MINUTE_COLUMNS``) and a one-row ``summary`` (``SUMMARY_COLUMNS``).

    Raises
    ------
    ValueError
        Naming the field and value: a missing column, a null/NaN or negative amount or
        liquidity, non-increasing ``ts``, a bound or capital not > 0, ``price_upper <=
        price_lower``, a fee tier outside (0, 10000) bps, or decimals that do not match.

    Examples
    --------
    >>> raw = pl.DataFrame({"ts": [0, 60_000, 120_000], "close_tick": [202_000, 202_010, 203_000],
    ...     "in_amount0": [0, 10**10, 10**10], "in_amount1": [0, 10**18, 10**18],
    ...     "liquidity": [10**18] * 3})
    >>> result = range_backtest(prepare_v3_minutes(raw), price_lower=1600.0,
    ...     price_upper=1750.0, capital_usd=10_000.0)
    >>> result.minutes["in_range"].to_list()
    [True, True, False]
    >>> round(result.summary["time_in_range"][0], 4)
    0.6667
    """
    setup = _setup(fee_tier_bps, tick_spacing, decimals0, decimals1)
    capital = _positive("capital_usd", capital_usd)
    minutes = _minutes(frame, decimals0=int(decimals0), decimals1=int(decimals1))
    tick_lower, tick_upper = _range_ticks(
        price_lower, price_upper, shift=setup.shift, tick_spacing=int(tick_spacing)
    )
    big_l = _liquidity(minutes, tick_lower, tick_upper, capital, setup)
    n = minutes.sqrt_price.shape[0]
    out = np.empty((amm.N_MINUTE_FIELDS, n))
    amm.range_backtest(
        minutes.sqrt_price,
        minutes.in_amount0,
        minutes.in_amount1,
        minutes.pool_liquidity,
        setup.fee_rate,
        tick_lower,
        tick_upper,
        big_l,
        out,
    )
    price_raw = minutes.sqrt_price * minutes.sqrt_price
    to_usd = 1.0 / (price_raw * setup.scale0)
    value = out[amm.VALUE] * to_usd
    hold = out[amm.HOLD_VALUE] * to_usd
    fees = out[amm.FEES_VALUE] * to_usd
    table = pl.DataFrame(
        {
            "ts": minutes.ts,
            "price": 10.0**setup.shift / price_raw,
            "in_range": out[amm.IN_RANGE] == 1.0,
            "amount0": out[amm.AMOUNT0] / setup.scale0,
            "amount1": out[amm.AMOUNT1] / setup.scale1,
            "value_usd": value,
            "hold_value_usd": hold,
            "fees0": out[amm.FEES0] / setup.scale0,
            "fees1": out[amm.FEES1] / setup.scale1,
            "fees_usd": fees,
            "il": out[amm.IL],
            "pnl_vs_hold_usd": (out[amm.VALUE] + out[amm.FEES_VALUE] - out[amm.HOLD_VALUE])
            * to_usd,
        }
    )
    # The summary is the sweep kernel's last minute, rebuilt from the per-minute rows with
    # the same arithmetic, so that range_sweep's row for this range is the same numbers.
    last = n - 1
    stats = np.empty((1, amm.N_SUMMARY_FIELDS))
    stats[0, amm.S_FEES0] = _running_sum(out[amm.FEES0])
    stats[0, amm.S_FEES1] = _running_sum(out[amm.FEES1])
    stats[0, amm.S_FEES_VALUE] = out[amm.FEES_VALUE, last]
    stats[0, amm.S_FINAL_VALUE] = out[amm.VALUE, last]
    stats[0, amm.S_HOLD_VALUE] = out[amm.HOLD_VALUE, last]
    stats[0, amm.S_IL] = out[amm.IL, last]
    stats[0, amm.S_TIME_IN_RANGE] = _running_sum(out[amm.IN_RANGE]) / n
    stats[0, amm.S_NET_PNL] = (
        out[amm.VALUE, last] + out[amm.FEES_VALUE, last] - out[amm.HOLD_VALUE, last]
    )
    bounds = [(float(price_lower), float(price_upper), tick_lower, tick_upper)]
    summary = _summary_rows(bounds, np.array([big_l]), stats, minutes, capital, setup)
    return RangeBacktest(minutes=table, summary=summary)


def _running_sum(values: np.ndarray) -> float:
    # Left to right, as the kernels accumulate: np.cumsum is sequential, while np.sum adds
    # pairwise and can round differently.
    return float(np.cumsum(values)[-1])


def range_sweep(
    frame: pl.DataFrame,
    *,
    ranges: Sequence[tuple[float, float]] | pl.DataFrame,
    capital_usd: float,
    fee_tier_bps: float = 5.0,
    tick_spacing: int = 10,
    decimals0: int = 6,
    decimals1: int = 18,
) -> pl.DataFrame:
    """``range_backtest``'s summary for many ranges, in parallel, without per-minute frames.

    Each range streams over the minutes once (``kernels.amm.range_sweep``); memory is the
    inputs plus one row per range. Row ``k`` equals ``range_backtest(...).summary`` for
    range ``k``.

    Parameters
    ----------
    frame
        From ``prepare_v3_minutes`` / ``load_v3_minutes``; the first row is the entry.
    ranges
        ``(price_lower, price_upper)`` pairs in token0 per token1 (USDC per WETH), or a frame
        with ``price_lower`` and ``price_upper`` columns.
    capital_usd, fee_tier_bps, tick_spacing, decimals0, decimals1
        As in ``range_backtest``, the same for every range.

    Returns
    -------
    pl.DataFrame
        One row per range, in input order, with ``SUMMARY_COLUMNS``.

    Raises
    ------
    ValueError
        As ``range_backtest``, naming the range's index for a bad bound; on no ranges.

    Examples
    --------
    >>> raw = pl.DataFrame({"ts": [0, 60_000, 120_000], "close_tick": [202_000, 202_010, 203_000],
    ...     "in_amount0": [0, 10**10, 10**10], "in_amount1": [0, 10**18, 10**18],
    ...     "liquidity": [10**18] * 3})
    >>> table = range_sweep(prepare_v3_minutes(raw), ranges=[(1600.0, 1750.0), (1500.0, 1900.0)],
    ...     capital_usd=10_000.0)
    >>> [round(x, 4) for x in table["time_in_range"]]
    [0.6667, 1.0]
    """
    setup = _setup(fee_tier_bps, tick_spacing, decimals0, decimals1)
    capital = _positive("capital_usd", capital_usd)
    minutes = _minutes(frame, decimals0=int(decimals0), decimals1=int(decimals1))
    if isinstance(ranges, pl.DataFrame):
        missing = [c for c in ("price_lower", "price_upper") if c not in ranges.columns]
        if missing:
            raise ValueError(f"ranges lacks columns {missing}; it needs price_lower, price_upper")
        pairs = list(
            zip(ranges["price_lower"].to_list(), ranges["price_upper"].to_list(), strict=True)
        )
    elif isinstance(ranges, str | bytes) or not isinstance(ranges, Sequence | np.ndarray):
        raise ValueError(f"ranges must be (price_lower, price_upper) pairs, got {ranges!r}")
    else:
        pairs = [tuple(pair) for pair in ranges]
    if not pairs:
        raise ValueError("ranges is empty; pass at least one (price_lower, price_upper) pair")
    bounds = []
    for k, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"ranges[{k}] is {pair!r}; expected (price_lower, price_upper)")
        tick_lower, tick_upper = _range_ticks(
            pair[0], pair[1], shift=setup.shift, tick_spacing=int(tick_spacing), where=f"[{k}]"
        )
        bounds.append((float(pair[0]), float(pair[1]), tick_lower, tick_upper))
    ticks_lower = np.array([b[2] for b in bounds], dtype=np.int64)
    ticks_upper = np.array([b[3] for b in bounds], dtype=np.int64)
    liquidity = np.array(
        [_liquidity(minutes, b[2], b[3], capital, setup) for b in bounds], dtype=np.float64
    )
    stats = np.empty((len(bounds), amm.N_SUMMARY_FIELDS))
    amm.range_sweep(
        minutes.sqrt_price,
        minutes.in_amount0,
        minutes.in_amount1,
        minutes.pool_liquidity,
        setup.fee_rate,
        ticks_lower,
        ticks_upper,
        liquidity,
        stats,
    )
    return _summary_rows(bounds, liquidity, stats, minutes, capital, setup)
