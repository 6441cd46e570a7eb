"""Parameter sweeps over the numba kernels of ``kernels.sweep``: check inputs, run, wrap.

A sweep evaluates every combination of a parameter grid on one price series, in parallel,
and keeps one row of metrics per combination; memory does not grow with the number of bars
beyond the prices themselves. Each row equals what ``research_lib.backtest.run_backtest``
reports for the same combination's targets (same fills, fees and metric definitions).

Every combination evaluated is a trial: ``SweepResult.n_trials`` is the number to pass to a
multiple-testing correction such as the deflated Sharpe ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
import polars as pl
from tqdm.auto import tqdm

from kernels import backtest as backtest_nb
from kernels import sweep as sweep_nb
from research_lib.backtest import _check_config_and_period
from research_lib.config import BacktestConfig

__all__ = ["MAX_RETURNS_BYTES", "SweepResult", "ma_crossover_returns", "ma_crossover_sweep"]

_FILL_MODES = {"next_open": backtest_nb.FILL_NEXT_OPEN, "next_close": backtest_nb.FILL_NEXT_CLOSE}
# About this many bar x combination steps per chunk: a second or so, so the bar moves.
_CHUNK_BAR_COMBOS = 200_000_000
MAX_RETURNS_BYTES = 2 * 1024**3
"""Largest return matrix ``ma_crossover_returns`` builds unless told otherwise (2 GiB)."""


@dataclass(frozen=True, eq=False)
class SweepResult:
    """The metrics of every combination of a sweep.

    Attributes
    ----------
    table
        One row per combination, in grid order (``fast_bars`` outer, ``slow_bars`` inner):
        the parameters, then ``total_return``, ``final_equity``, ``trades`` (number of
        fills), ``sharpe`` (annualised, zero risk-free rate; null when the returns have no
        variance) and ``max_drawdown`` (negative fraction), defined as in
        ``research_lib.backtest.METRICS``.
    n_trials
        Number of combinations evaluated (``table.height``), for the deflated Sharpe ratio.
    n_bars
        Length of the price series.
    config
        Fees, fill and initial cash of every run, as a ``BacktestConfig`` (its ``.id`` names
        the cost model in reports).
    periods_per_year
        Bars per year used to annualise ``sharpe``.
    """

    table: pl.DataFrame
    n_trials: int
    n_bars: int
    config: BacktestConfig
    periods_per_year: float


def _prices(values: object, *, name: str) -> np.ndarray:
    """A 1-d float64 copy of ``values``, after checking every price is finite and positive."""
    if isinstance(values, pl.Series):
        if not values.dtype.is_numeric():
            raise ValueError(f"{name} has dtype {values.dtype}; expected float64 prices")
        array = values.cast(pl.Float64).fill_null(np.nan).to_numpy()
    elif isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{name} must be 1-d, got shape {values.shape}")
        array = values
    else:
        raise TypeError(f"{name} must be a polars Series or numpy array, got {type(values)}")
    array = np.ascontiguousarray(array, dtype=np.float64)
    bad = ~(np.isfinite(array) & (array > 0.0))
    if bad.any():
        row = int(np.argmax(bad))
        value = "null" if np.isnan(array[row]) else repr(float(array[row]))
        raise ValueError(
            f"{name} has {value} at row {row}; prices must be finite and positive "
            f"(drop or fill missing bars first)"
        )
    return array


def _windows(values: object, *, name: str, minimum: int, n_bars: int) -> list[int]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a sequence of ints, e.g. {name}=[5, 10, 20]")
    windows: list[int] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name} holds {value!r} ({type(value).__name__}); expected ints")
        if value < minimum:
            raise ValueError(f"{name} holds {value}; every window must be >= {minimum}")
        if value > n_bars:
            raise ValueError(
                f"{name} holds {value} but the series has {n_bars} bars; "
                f"every window must fit in the data"
            )
        windows.append(int(value))
    if not windows:
        raise ValueError(f"{name} is empty; pass at least one window, e.g. {name}=[20]")
    if len(set(windows)) != len(windows):
        raise ValueError(f"{name} has duplicates: {windows}")
    return windows


def _chunks(n_combos: int, chunk_combos: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + chunk_combos, n_combos)) for lo in range(0, n_combos, chunk_combos)]


@dataclass(frozen=True)
class _SweepInputs:
    config: BacktestConfig
    open: np.ndarray
    close: np.ndarray
    fast: np.ndarray
    slow: np.ndarray


def _sweep_inputs(
    close: pl.Series | np.ndarray,
    open_prices: pl.Series | np.ndarray | None,
    *,
    fast_bars: Sequence[int],
    slow_bars: Sequence[int],
    periods_per_year: float,
    fee_bps: float,
    fill: str,
    initial_cash: float,
) -> _SweepInputs:
    """Check a sweep's inputs; the (fast, slow) pairs with fast < slow, in grid order."""
    if fill not in _FILL_MODES:
        raise ValueError(
            f"fill must be 'next_close' or 'next_open' for a sweep, got {fill!r}; "
            f"use run_backtest for other fill modes"
        )
    config = BacktestConfig(fee_bps=fee_bps, fill=fill, initial_cash=initial_cash)
    _check_config_and_period(config, periods_per_year)
    close_array = _prices(close, name="close")
    n_bars = close_array.shape[0]
    if fill == "next_open":
        if open_prices is None:
            raise ValueError(
                "fill='next_open' needs open_prices (the bars' open column); "
                "or use fill='next_close'"
            )
        open_array = _prices(open_prices, name="open_prices")
        if open_array.shape[0] != n_bars:
            raise ValueError(
                f"open_prices has {open_array.shape[0]} values but close has {n_bars}; "
                f"pass the same bars' open and close"
            )
    else:
        open_array = close_array
    fast = _windows(fast_bars, name="fast_bars", minimum=1, n_bars=n_bars)
    slow = _windows(slow_bars, name="slow_bars", minimum=2, n_bars=n_bars)
    pairs = [(f, s) for f in fast for s in slow if f < s]
    if not pairs:
        raise ValueError(
            f"no pair has fast_bars < slow_bars (fast_bars={fast}, slow_bars={slow}); "
            f"make some fast windows shorter than some slow ones"
        )
    fast_array = np.array([f for f, _ in pairs], dtype=np.int64)
    slow_array = np.array([s for _, s in pairs], dtype=np.int64)
    return _SweepInputs(config, open_array, close_array, fast_array, slow_array)


def ma_crossover_sweep(
    close: pl.Series | np.ndarray,
    *,
    fast_bars: Sequence[int],
    slow_bars: Sequence[int],
    periods_per_year: float,
    fee_bps: float = 10.0,
    fill: Literal["next_open", "next_close"] = "next_close",
    initial_cash: float = 10_000.0,
    open_prices: pl.Series | np.ndarray | None = None,
    chunk_combos: int | None = None,
    progress: bool | None = None,
) -> SweepResult:
    """Long-only SMA crossover for every (fast, slow) pair with fast < slow, in parallel.

    The target is 1 (all in) while the fast SMA of the close is strictly above the slow one
    at bar t's close, else 0 (also while the slow SMA warms up); it is filled at bar t + 1
    with ``fee_bps`` of the traded notional, as in ``research_lib.backtest.run_backtest``.
    The SMAs equal ``talib.SMA`` bit for bit. Each combination streams over the bars once;
    no per-combination series is stored.

    Parameters
    ----------
    close
        Close prices, oldest first, finite and positive.
    fast_bars, slow_bars
        Window lengths in bars; every pair with ``fast < slow`` is evaluated.
    periods_per_year
        Bars per year, to annualise ``sharpe`` (8760 for hourly crypto bars).
    fee_bps
        Fee in basis points of the traded notional.
    fill
        ``"next_close"`` (the default) or ``"next_open"`` (needs ``open_prices``).
    initial_cash
        Starting cash of every run.
    open_prices
        Open prices, same length as ``close``; only used with ``fill="next_open"``.
    chunk_combos
        Combinations per kernel call; by default about 2e8 bar steps per call. Results do not
        depend on it.
    progress
        Show a progress bar over the chunks; by default only when there is more than one.

    Returns
    -------
    SweepResult
        One row per pair in ``table`` and ``n_trials``, the number of pairs evaluated.

    Raises
    ------
    ValueError
        On a non-positive or missing price, a window below 1 (fast) or 2 (slow) or longer
        than the series, duplicate windows, no pair with fast < slow, ``fill="next_open"``
        without ``open_prices``, or an invalid fee, cash or ``periods_per_year``.

    Examples
    --------
    >>> close = np.array([10.0, 11.0, 12.0, 11.0, 10.0, 11.0, 13.0, 14.0])
    >>> result = ma_crossover_sweep(
    ...     close, fast_bars=[1, 2], slow_bars=[2, 3], fee_bps=0.0, periods_per_year=8760
    ... )
    >>> result.n_trials
    3
    >>> result.table.select("fast_bars", "slow_bars", "trades").rows()
    [(1, 2, 3), (1, 3, 3), (2, 3, 3)]
    """
    inputs = _sweep_inputs(
        close,
        open_prices,
        fast_bars=fast_bars,
        slow_bars=slow_bars,
        periods_per_year=periods_per_year,
        fee_bps=fee_bps,
        fill=fill,
        initial_cash=initial_cash,
    )
    config, open_array, close_array = inputs.config, inputs.open, inputs.close
    fast_array, slow_array = inputs.fast, inputs.slow
    n_bars = close_array.shape[0]
    n_combos = fast_array.shape[0]

    if chunk_combos is None:
        # At least two pairs per thread, so that every thread has work in each call.
        chunk_combos = max(4 * numba.get_num_threads(), _CHUNK_BAR_COMBOS // max(n_bars, 1))
    elif isinstance(chunk_combos, bool) or not isinstance(chunk_combos, int) or chunk_combos < 1:
        raise ValueError(f"chunk_combos must be an int >= 1, got {chunk_combos!r}")
    chunks = _chunks(n_combos, chunk_combos)
    show = len(chunks) > 1 if progress is None else bool(progress)

    out = np.empty((n_combos, sweep_nb.N_FIELDS))
    with tqdm(total=n_combos, desc="ma_crossover_sweep", unit="combo", disable=not show) as bar:
        for lo, hi in chunks:
            sweep_nb.ma_crossover_sweep(
                open_array,
                close_array,
                fast_array[lo:hi],
                slow_array[lo:hi],
                float(config.fee_bps),
                _FILL_MODES[fill],
                float(config.initial_cash),
                float(periods_per_year),
                out[lo:hi],
            )
            bar.update(hi - lo)

    columns: dict[str, pl.Series] = {
        "fast_bars": pl.Series("fast_bars", fast_array, dtype=pl.Int64),
        "slow_bars": pl.Series("slow_bars", slow_array, dtype=pl.Int64),
    }
    for j, name in enumerate(sweep_nb.FIELDS):
        values = out[:, j]
        if name == "trades":
            columns[name] = pl.Series(name, values.astype(np.int64), dtype=pl.Int64)
        else:
            columns[name] = pl.Series(name, values, dtype=pl.Float64).fill_nan(None)
    table = pl.DataFrame(list(columns.values()))
    return SweepResult(
        table=table,
        n_trials=n_combos,
        n_bars=n_bars,
        config=config,
        periods_per_year=float(periods_per_year),
    )


def ma_crossover_returns(
    close: pl.Series | np.ndarray,
    *,
    fast_bars: Sequence[int],
    slow_bars: Sequence[int],
    fee_bps: float = 10.0,
    fill: Literal["next_open", "next_close"] = "next_close",
    initial_cash: float = 10_000.0,
    open_prices: pl.Series | np.ndarray | None = None,
    max_bytes: int = MAX_RETURNS_BYTES,
) -> tuple[pl.DataFrame, np.ndarray]:
    """The bar returns of every pair of :func:`ma_crossover_sweep`, one column per pair.

    The sweep keeps one row of metrics per pair; the probability of backtest overfitting
    (CSCV) needs each pair's whole return series. Same pairs, order, fills and fees as the
    sweep: each column's equity is ``run_backtest``'s for that pair's targets.

    Parameters
    ----------
    close, fast_bars, slow_bars, fee_bps, fill, initial_cash, open_prices
        As in :func:`ma_crossover_sweep`.
    max_bytes
        Refuse a result larger than this (``n_bars * n_pairs * 8`` bytes), with the sizes in
        the message, rather than exhaust memory; default 2 GiB.

    Returns
    -------
    (pl.DataFrame, np.ndarray)
        The pairs (``fast_bars``, ``slow_bars``), and a ``(n_bars, n_pairs)`` float64 array
        of bar returns ``equity[t] / equity[t - 1] - 1`` (0 at the first bar).

    Examples
    --------
    >>> close = np.array([10.0, 11.0, 12.0, 11.0, 10.0, 11.0, 13.0, 14.0])
    >>> pairs, returns = ma_crossover_returns(close, fast_bars=[1], slow_bars=[2], fee_bps=0.0)
    >>> pairs.rows(), returns.shape
    ([(1, 2)], (8, 1))
    >>> np.round(returns[:, 0], 4).tolist()
    [0.0, 0.0, 0.0, -0.0833, -0.0909, 0.0, 0.0, 0.0769]
    """
    inputs = _sweep_inputs(
        close,
        open_prices,
        fast_bars=fast_bars,
        slow_bars=slow_bars,
        periods_per_year=1.0,
        fee_bps=fee_bps,
        fill=fill,
        initial_cash=initial_cash,
    )
    n_bars, n_pairs = inputs.close.shape[0], inputs.fast.shape[0]
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be an int >= 1, got {max_bytes!r}")
    if n_bars * n_pairs * 8 > max_bytes:
        raise ValueError(
            f"{n_bars} bars x {n_pairs} pairs of returns need {n_bars * n_pairs * 8:,} bytes, "
            f"over max_bytes={max_bytes:,}; use fewer bars or pairs, or raise max_bytes"
        )
    out = np.empty((n_pairs, n_bars))
    sweep_nb.ma_crossover_returns(
        inputs.open,
        inputs.close,
        inputs.fast,
        inputs.slow,
        float(inputs.config.fee_bps),
        _FILL_MODES[fill],
        float(inputs.config.initial_cash),
        out,
    )
    pairs = pl.DataFrame(
        {"fast_bars": inputs.fast, "slow_bars": inputs.slow},
        schema={"fast_bars": pl.Int64, "slow_bars": pl.Int64},
    )
    return pairs, out.T
