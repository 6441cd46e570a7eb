"""Backtest one symbol's target positions: checks inputs, runs the numba kernel, wraps results.

Timing and sizing follow ``kernels.backtest`` (its module docstring is the reference):

- ``target[t]`` is decided at the close of bar t and filled at bar t + 1, at the open
  (``fill="next_open"``) or the close (``fill="next_close"``); never at bar t.
- ``target`` is a fraction of equity in [-1, 1]. An order is sent only when the target
  changes; the new notional is ``target`` times the equity left after the fee, so a
  long-only 0/1 target reproduces vectorbt's ``Portfolio.from_signals`` (all-in entries,
  full exits, signals shifted one bar, ``min_size=0``).
- Fees are ``fee_bps`` of the traded notional, paid from cash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from kernels import backtest as backtest_nb
from kernels import stats as stats_nb
from research_lib.config import BacktestConfig, StrategyConfig
from research_lib.features import check_bars, price_array
from research_lib.strategies import signals_for

__all__ = [
    "METRICS",
    "BacktestResult",
    "backtest_by_symbol",
    "equity_frame",
    "metrics_table",
    "run_backtest",
]

METRICS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "sharpe",
    "max_drawdown",
    "exposure",
    "trades",
    "fees_paid",
    "final_equity",
)

_FILL_MODES = {"next_open": backtest_nb.FILL_NEXT_OPEN, "next_close": backtest_nb.FILL_NEXT_CLOSE}


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """One symbol's backtest.

    Attributes
    ----------
    equity
        One row per bar: ``ts``, ``equity`` (marked at the close), ``cash``,
        ``position_units``, ``returns`` (simple, bar over bar; the first bar against the
        initial cash) and ``drawdown`` (from the running peak, <= 0).
    metrics
        ``total_return``, ``cagr``, ``sharpe`` (annualised, zero risk-free rate),
        ``max_drawdown`` (negative fraction), ``exposure`` (fraction of bars holding a
        position), ``trades`` (number of fills), ``fees_paid`` and ``final_equity``.
    config_id
        ``BacktestConfig.id`` of the run.
    """

    equity: pl.DataFrame
    metrics: dict[str, float]
    config_id: str


def _target_array(target: pl.Series | np.ndarray, *, n_bars: int) -> np.ndarray:
    nulls: np.ndarray | None = None
    if isinstance(target, pl.Series):
        if not target.dtype.is_numeric():
            raise ValueError(f"target has dtype {target.dtype}; expected float64 fractions")
        nulls = target.is_null().to_numpy()
        values = target.cast(pl.Float64).fill_null(np.nan).to_numpy()
    elif isinstance(target, np.ndarray):
        if target.ndim != 1:
            raise ValueError(f"target must be 1-d, got shape {target.shape}")
        values = target
    else:
        raise TypeError(f"target must be a polars Series or numpy array, got {type(target)}")
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.shape[0] != n_bars:
        raise ValueError(
            f"target has {values.shape[0]} values but bars have {n_bars} rows; "
            f"pass one target per bar"
        )
    bad = ~(np.isfinite(values) & (np.abs(values) <= 1.0))
    if bad.any():
        row = int(np.argmax(bad))
        shown = "null" if nulls is not None and nulls[row] else repr(float(values[row]))
        raise ValueError(
            f"target has {shown} at row {row}: targets must be finite fractions of "
            f"equity in [-1, 1] (use 0.0 for flat, not null)"
        )
    return values


def run_backtest(
    bars: pl.DataFrame,
    target: pl.Series | np.ndarray,
    config: BacktestConfig,
    *,
    periods_per_year: float,
) -> BacktestResult:
    """Simulate holding ``target`` (fraction of equity, decided at each close) on one symbol.

    Parameters
    ----------
    bars
        One symbol's bars with ``ts`` (int64 ms, increasing), ``open`` and ``close``.
    target
        One value per bar in [-1, 1]; ``target[t]`` is filled at bar t + 1.
    config
        ``fee_bps``, ``fill`` (``"next_open"`` or ``"next_close"``) and ``initial_cash``.
    periods_per_year
        Bars per year, to annualise ``cagr`` and ``sharpe`` (8760 for hourly crypto bars).

    Returns
    -------
    BacktestResult
        Per-bar equity frame, metrics and the config id.

    Raises
    ------
    ValueError
        On a missing column, non-increasing ``ts``, more than one symbol, a bad price, a
        target outside [-1, 1] or of the wrong length, or a non-positive
        ``periods_per_year``.

    Examples
    --------
    >>> bars = pl.DataFrame(
    ...     {"ts": [0, 1, 2], "open": [100.0, 100.0, 110.0], "close": [100.0, 110.0, 121.0]}
    ... )
    >>> result = run_backtest(
    ...     bars, np.array([1.0, 1.0, 1.0]), BacktestConfig(fee_bps=0), periods_per_year=8760
    ... )
    >>> round(result.metrics["total_return"], 6)  # bought at 100 (bar 1's open), now 121
    0.21
    """
    if not isinstance(config, BacktestConfig):
        raise TypeError(f"config must be a BacktestConfig, got {type(config).__name__}")
    if isinstance(periods_per_year, bool) or not (
        isinstance(periods_per_year, int | float) and math.isfinite(periods_per_year)
    ):
        raise ValueError(f"periods_per_year must be a finite number, got {periods_per_year!r}")
    if periods_per_year <= 0:
        raise ValueError(
            f"periods_per_year must be > 0, got {periods_per_year}; e.g. 8760 for 1h bars"
        )
    check_bars(bars, required=("ts", "open", "close"))
    if bars.height == 0:
        raise ValueError("bars is empty: nothing to backtest")
    if "symbol" in bars.columns and bars["symbol"].n_unique() > 1:
        raise ValueError(
            f"bars hold {bars['symbol'].n_unique()} symbols; run_backtest takes one symbol: "
            f"loop over bars.partition_by('symbol')"
        )
    open_prices = price_array(bars, column="open")
    close_prices = price_array(bars, column="close")
    targets = _target_array(target, n_bars=bars.height)

    equity = np.empty_like(close_prices)
    units = np.empty_like(close_prices)
    cash = np.empty_like(close_prices)
    _, _, _, n_fills, fees_paid = backtest_nb.target_position_backtest(
        open_prices,
        close_prices,
        targets,
        float(config.fee_bps),
        _FILL_MODES[config.fill],
        float(config.initial_cash),
        equity,
        units,
        cash,
    )
    previous = np.concatenate(([config.initial_cash], equity[:-1]))
    returns = equity / previous - 1.0
    drawdown = stats_nb.drawdown(equity, np.empty_like(equity))

    frame = pl.DataFrame(
        {
            "ts": bars["ts"],
            "equity": equity,
            "cash": cash,
            "position_units": units,
            "returns": returns,
            "drawdown": drawdown,
        }
    )
    final = float(equity[-1])
    years = (bars.height - 1) / periods_per_year
    if final <= 0.0:
        cagr = -1.0
    elif years > 0:
        # expm1 of the log growth; a tiny span can make the annualised figure overflow.
        growth = math.log(final / config.initial_cash) / years
        cagr = math.expm1(growth) if growth < 700.0 else math.inf
    else:
        cagr = math.nan
    metrics = {
        "total_return": final / config.initial_cash - 1.0,
        "cagr": float(cagr),
        "sharpe": float(stats_nb.sharpe_ratio(returns[1:], float(periods_per_year))),
        "max_drawdown": float(stats_nb.max_drawdown(equity)),
        "exposure": float(np.mean(units != 0.0)),
        "trades": float(n_fills),
        "fees_paid": float(fees_paid),
        "final_equity": final,
    }
    return BacktestResult(equity=frame, metrics=metrics, config_id=config.id)


def metrics_table(results: dict[str, BacktestResult]) -> pl.DataFrame:
    """One row per symbol: ``symbol``, ``config_id`` and every metric of ``METRICS``.

    Parameters
    ----------
    results
        Backtest results keyed by symbol.

    Returns
    -------
    pl.DataFrame
        Rows in the order of ``results``.

    Examples
    --------
    >>> bars = pl.DataFrame({"ts": [0, 1], "open": [1.0, 1.0], "close": [1.0, 2.0]})
    >>> cfg = BacktestConfig()
    >>> res = run_backtest(bars, np.zeros(2), cfg, periods_per_year=365)
    >>> metrics_table({"BTCUSDT": res}).select("symbol", "total_return").rows()
    [('BTCUSDT', 0.0)]
    """
    schema: dict[str, pl.DataType] = {"symbol": pl.String(), "config_id": pl.String()}
    schema.update({name: pl.Float64() for name in METRICS})
    rows = [
        {"symbol": symbol, "config_id": result.config_id, **result.metrics}
        for symbol, result in results.items()
    ]
    return pl.DataFrame(rows, schema=schema)


def backtest_by_symbol(
    bars: pl.DataFrame,
    *,
    strategy: StrategyConfig,
    config: BacktestConfig,
    periods_per_year: float,
) -> dict[str, BacktestResult]:
    """Run ``strategy`` on each symbol's bars and backtest its targets, symbol by symbol.

    The strategy sees the whole history once, as in research; it is causal, so the executor
    calling it on a trailing window gets the same targets.
    """
    results: dict[str, BacktestResult] = {}
    for (symbol,), frame in bars.sort("symbol", "ts").group_by("symbol", maintain_order=True):
        signalled = signals_for(frame.drop("symbol"), strategy)
        results[str(symbol)] = run_backtest(
            frame, signalled["target"], config, periods_per_year=periods_per_year
        )
    return results


def equity_frame(results: dict[str, BacktestResult]) -> pl.DataFrame:
    """Every symbol's equity rows in one frame, with a leading ``symbol`` column."""
    return pl.concat(
        [r.equity.select(pl.lit(s).alias("symbol"), pl.all()) for s, r in results.items()]
    )
