"""Backtest target positions: checks inputs, runs the numba kernel, wraps the results.

Conventions follow ``kernels.backtest`` (its module docstring is the reference):

- ``target[t]`` is decided at the close of bar t. ``fill="next_open"`` fills it at bar t + 1's
  open, ``"next_close"`` at bar t + 1's close and ``"this_close"`` at bar t's close.
- ``target`` is a fraction of equity in [-1, 1] (of total portfolio equity for
  ``run_portfolio_backtest``). An order is sent only when the target changes; the new
  position is ``target`` times the equity left after the order's costs, so a long-only 0/1
  target reproduces vectorbt's all-in ``Portfolio.from_signals`` (``min_size=0``).
- Costs come out of cash and are reported separately: fees and fixed slippage in bps of the
  traded notional, square-root impact ``impact_coefficient * σ_bar * sqrt(order notional /
  bar notional volume)``, funding (a ``funding_rate`` column: a long pays ``rate * notional``
  at the bar's open, a short receives it) and gas per fill in quote currency.
- Stop-loss, take-profit and trailing stop (config fractions) are checked inside each bar
  from high/low, the stop first; a gap through a level fills at the open. After a stop exit
  the asset stays flat until its target changes.

Optional bar columns: ``high``/``low`` (required with stops), ``volume`` in base units
(required with impact), ``funding_rate`` (per bar, nonzero at funding times) and
``volatility`` (σ_bar as a fraction; computed by ``bar_volatility`` when absent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from kernels import backtest as backtest_nb
from kernels import rolling as rolling_nb
from kernels import stats as stats_nb
from research_lib.config import BacktestConfig, StrategyConfig
from research_lib.features import check_bars, price_array
from research_lib.strategies import signals_for

__all__ = [
    "METRICS",
    "TRADE_COLUMNS",
    "BacktestResult",
    "PortfolioResult",
    "align_funding",
    "backtest_by_symbol",
    "bar_volatility",
    "equity_frame",
    "metrics_table",
    "run_backtest",
    "run_portfolio_backtest",
    "trades_frame",
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
    "sortino",
    "calmar",
    "win_rate",
    "profit_factor",
    "turnover",
    "round_trips",
    "slippage_paid",
    "funding_paid",
    "gas_paid",
)

TRADE_COLUMNS: tuple[str, ...] = (
    "symbol",
    "entry_ts",
    "exit_ts",
    "side",
    "size",
    "entry_price",
    "exit_price",
    "pnl",
    "return",
    "fees",
    "slippage",
    "gas",
    "funding",
    "exit_reason",
)

_FILL_MODES = {
    "next_open": backtest_nb.FILL_NEXT_OPEN,
    "next_close": backtest_nb.FILL_NEXT_CLOSE,
    "this_close": backtest_nb.FILL_THIS_CLOSE,
}
_REASONS = {
    backtest_nb.REASON_OPEN: "open",
    backtest_nb.REASON_SIGNAL: "signal",
    backtest_nb.REASON_STOP_LOSS: "stop_loss",
    backtest_nb.REASON_TAKE_PROFIT: "take_profit",
    backtest_nb.REASON_TRAILING_STOP: "trailing_stop",
}
_COST_NAMES = ("fees", "slippage", "funding", "gas")


def _empty_trades() -> pl.DataFrame:
    return _trades_frame(np.empty((0, backtest_nb.N_TRADE_FIELDS)), np.empty(0, np.int64), [""])


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
        Every name in ``METRICS``: ``total_return``, ``cagr``, ``sharpe`` and ``sortino``
        (annualised, zero risk-free rate), ``max_drawdown`` (negative fraction), ``calmar``,
        ``exposure`` (fraction of bars holding a position), ``trades`` (number of fills),
        ``round_trips``, ``win_rate`` and ``profit_factor`` (over closed round trips),
        ``turnover`` (traded notional / mean equity), ``fees_paid``, ``slippage_paid``,
        ``funding_paid``, ``gas_paid`` and ``final_equity``.
    config_id
        ``BacktestConfig.id`` of the run.
    trades
        One row per round trip, columns ``TRADE_COLUMNS``; a trade still open at the end
        is marked at the last close with ``exit_reason == "open"``.
    """

    equity: pl.DataFrame
    metrics: dict[str, float]
    config_id: str
    trades: pl.DataFrame = field(default_factory=_empty_trades)


@dataclass(frozen=True, eq=False)
class PortfolioResult:
    """A multi-asset backtest with one cash account.

    Attributes
    ----------
    equity
        One row per bar: ``ts``, ``equity``, ``cash``, ``returns``, ``drawdown`` and the
        bar's costs summed over assets: ``fees``, ``slippage``, ``funding``, ``gas``.
    positions
        ``ts`` and one column of units held per symbol, after the bar's fills.
    trades
        One row per round trip, columns ``TRADE_COLUMNS``.
    metrics
        As ``BacktestResult.metrics``, for the whole portfolio.
    config_id
        ``BacktestConfig.id`` of the run.
    """

    equity: pl.DataFrame
    positions: pl.DataFrame
    trades: pl.DataFrame
    metrics: dict[str, float]
    config_id: str


def bar_volatility(close: np.ndarray, *, window_bars: int) -> np.ndarray:
    """Causal σ_bar: std of log returns over the ``window_bars`` bars ending at close t - 1.

    Lagged one bar so that a fill at bar t's open never sees bar t. NaN during the warm-up
    (the impact term is then skipped).

    Examples
    --------
    >>> bar_volatility(np.array([1.0, 2.0, 4.0, 8.0, 4.0, 8.0]), window_bars=2).round(3)
    array([ nan,  nan,  nan, 0.  , 0.  , 0.98])
    """
    log_returns = np.full(close.shape[0], np.nan)
    log_returns[1:] = np.diff(np.log(close))
    sigma = rolling_nb.rolling_std(log_returns, window_bars, 1, np.empty_like(log_returns))
    return np.concatenate(([np.nan], sigma[:-1]))


def _check_config_and_period(config: BacktestConfig, periods_per_year: float) -> None:
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


def _uses_stops(config: BacktestConfig) -> bool:
    return any(
        v > 0
        for v in (
            config.stop_loss_fraction,
            config.take_profit_fraction,
            config.trailing_stop_fraction,
        )
    )


def _bar_inputs(bars: pl.DataFrame, config: BacktestConfig) -> dict[str, np.ndarray]:
    """The kernel's per-bar arrays for one symbol, checked."""
    open_prices = price_array(bars, column="open")
    close = price_array(bars, column="close")
    if _uses_stops(config):
        high = price_array(bars, column="high")
        low = price_array(bars, column="low")
    else:  # unused without stops
        high, low = np.maximum(open_prices, close), np.minimum(open_prices, close)
    n = close.shape[0]
    funding = np.zeros(n)
    if "funding_rate" in bars.columns:
        funding = _finite_column(bars, "funding_rate", fill_null=0.0)
    volatility = np.full(n, np.nan)
    volume = np.zeros(n)
    if config.impact_coefficient > 0:
        if "volume" not in bars.columns:
            raise ValueError(
                f"impact_coefficient = {config.impact_coefficient} needs a 'volume' column "
                f"(base units per bar); columns are {bars.columns}"
            )
        volume = _finite_column(bars, "volume", fill_null=None) * close
        if "volatility" in bars.columns:
            volatility = bars["volatility"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        else:
            volatility = bar_volatility(close, window_bars=config.volatility_window_bars)
    return {
        "open": open_prices,
        "high": high,
        "low": low,
        "close": close,
        "funding": funding,
        "volatility": np.ascontiguousarray(volatility, dtype=np.float64),
        "volume": volume,
    }


def _finite_column(bars: pl.DataFrame, name: str, *, fill_null: float | None) -> np.ndarray:
    series = bars[name].cast(pl.Float64)
    if fill_null is not None:
        series = series.fill_null(fill_null)
    values = np.ascontiguousarray(series.fill_null(np.nan).to_numpy(), dtype=np.float64)
    bad = ~np.isfinite(values) | ((values < 0) if name == "volume" else False)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"column {name!r} has {values[row]!r} at row {row}: it must be finite"
            + (" and >= 0" if name == "volume" else "; use 0.0 where there is no funding")
        )
    return values


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
    _check_targets(values, nulls)
    return values


def _check_targets(values: np.ndarray, nulls: np.ndarray | None, symbol: str = "") -> None:
    bad = ~(np.isfinite(values) & (np.abs(values) <= 1.0))
    if bad.any():
        row = int(np.argmax(bad))
        shown = "null" if nulls is not None and nulls[row] else repr(float(values[row]))
        where = f" for {symbol}" if symbol else ""
        raise ValueError(
            f"target has {shown} at row {row}{where}: targets must be finite fractions of "
            f"equity in [-1, 1] (use 0.0 for flat, not null)"
        )


def _nan_if_off(value: float) -> float:
    """The kernel's "no stop" is NaN; the config's is 0."""
    return float(value) if value > 0 else np.nan


def _simulate(
    arrays: dict[str, np.ndarray], target: np.ndarray, config: BacktestConfig
) -> dict[str, np.ndarray]:
    """Run the kernel on (bars, assets) arrays; numpy allocates every output."""
    n, m = target.shape
    params = backtest_nb.backtest_params(
        initial_cash=float(config.initial_cash),
        fill_mode=_FILL_MODES[config.fill],
        fee_bps=float(config.fee_bps),
        slippage_bps=float(config.slippage_bps),
        impact_coefficient=float(config.impact_coefficient),
        gas_per_fill=float(config.gas_per_fill_quote),
        stop_loss=_nan_if_off(config.stop_loss_fraction),
        take_profit=_nan_if_off(config.take_profit_fraction),
        trailing_stop=_nan_if_off(config.trailing_stop_fraction),
    )
    equity, cash = np.empty(n), np.empty(n)
    units = np.empty((n, m))
    costs = np.empty((n, m, backtest_nb.N_COSTS))
    fills = np.empty((backtest_nb.max_fills(n, m), backtest_nb.N_FILL_FIELDS))
    a = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}
    n_fills = backtest_nb.portfolio_backtest(
        (a["open"], a["high"], a["low"], a["close"]),
        (a["funding"], a["volatility"], a["volume"]),
        np.ascontiguousarray(target, dtype=np.float64),
        params,
        (equity, cash, units, costs, fills),
    )
    fills = fills[:n_fills]
    trades = np.empty((n_fills + m, backtest_nb.N_TRADE_FIELDS))
    n_trades = backtest_nb.round_trip_trades(
        fills, n_fills, costs, np.ascontiguousarray(arrays["close"][-1]), trades
    )
    return {
        "equity": equity,
        "cash": cash,
        "units": units,
        "costs": costs,
        "fills": fills,
        "trades": trades[:n_trades],
    }


def _metrics(
    raw: dict[str, np.ndarray], returns: np.ndarray, config: BacktestConfig, ppy: float
) -> dict[str, float]:
    equity = raw["equity"]
    final = float(equity[-1])
    years = (equity.shape[0] - 1) / ppy
    cagr = float(stats_nb.compound_annual_growth_rate(float(config.initial_cash), final, years))
    max_dd = float(stats_nb.max_drawdown(equity))
    trades = raw["trades"]
    closed = trades[trades[:, backtest_nb.T_EXIT_REASON] != backtest_nb.REASON_OPEN]
    pnl = np.ascontiguousarray(closed[:, backtest_nb.T_PNL])
    fills = raw["fills"]
    traded = np.abs(fills[:, backtest_nb.F_UNITS]) * fills[:, backtest_nb.F_REFERENCE_PRICE]
    totals = raw["costs"].sum(axis=(0, 1))
    return {
        "total_return": final / config.initial_cash - 1.0,
        "cagr": cagr,
        "sharpe": float(stats_nb.sharpe_ratio(returns[1:], float(ppy))),
        "max_drawdown": max_dd,
        "exposure": float(stats_nb.exposure(raw["units"])),
        "trades": float(fills.shape[0]),
        "fees_paid": float(totals[backtest_nb.C_FEES]),
        "final_equity": final,
        "sortino": float(stats_nb.sortino_ratio(returns[1:], float(ppy))),
        "calmar": float(stats_nb.calmar_ratio(cagr, max_dd)),
        "win_rate": float(stats_nb.win_rate(pnl)),
        "profit_factor": float(stats_nb.profit_factor(pnl)),
        "turnover": float(stats_nb.turnover(np.ascontiguousarray(traded), equity)),
        "round_trips": float(closed.shape[0]),
        "slippage_paid": float(totals[backtest_nb.C_SLIPPAGE]),
        "funding_paid": float(totals[backtest_nb.C_FUNDING]),
        "gas_paid": float(totals[backtest_nb.C_GAS]),
    }


def _returns(equity: np.ndarray, initial_cash: float) -> np.ndarray:
    previous = np.concatenate(([initial_cash], equity[:-1]))
    return equity / previous - 1.0


def _trades_frame(trades: np.ndarray, ts: np.ndarray, symbols: list[str]) -> pl.DataFrame:
    bn = backtest_nb
    asset = trades[:, bn.T_ASSET].astype(np.int64)
    reasons = trades[:, bn.T_EXIT_REASON].astype(np.int64)
    return pl.DataFrame(
        {
            "symbol": pl.Series([symbols[a] for a in asset], dtype=pl.String),
            "entry_ts": pl.Series(ts[trades[:, bn.T_ENTRY_BAR].astype(np.int64)], dtype=pl.Int64),
            "exit_ts": pl.Series(ts[trades[:, bn.T_EXIT_BAR].astype(np.int64)], dtype=pl.Int64),
            "side": pl.Series(
                ["long" if d > 0 else "short" for d in trades[:, bn.T_DIRECTION]], dtype=pl.String
            ),
            "size": trades[:, bn.T_SIZE],
            "entry_price": trades[:, bn.T_ENTRY_PRICE],
            "exit_price": trades[:, bn.T_EXIT_PRICE],
            "pnl": trades[:, bn.T_PNL],
            "return": trades[:, bn.T_RETURN],
            "fees": trades[:, bn.T_FEES],
            "slippage": trades[:, bn.T_SLIPPAGE],
            "gas": trades[:, bn.T_GAS],
            "funding": trades[:, bn.T_FUNDING],
            "exit_reason": pl.Series([_REASONS[int(r)] for r in reasons], dtype=pl.String),
        },
        schema_overrides={c: pl.Float64 for c in TRADE_COLUMNS[4:13]},
    )


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
        One symbol's bars with ``ts`` (int64 ms, increasing), ``open`` and ``close``; plus
        ``high``/``low`` with stops, ``volume`` with impact, optional ``funding_rate`` and
        ``volatility`` (see the module docstring).
    target
        One value per bar in [-1, 1]; filled at bar t + 1 or at bar t's close (``fill``).
    config
        Fill timing, costs, stops and ``initial_cash``.
    periods_per_year
        Bars per year, to annualise ``cagr``, ``sharpe`` and ``sortino`` (8760 for 1h bars).

    Returns
    -------
    BacktestResult
        Per-bar equity frame, metrics, round-trip trades and the config id.

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
    _check_config_and_period(config, periods_per_year)
    check_bars(bars, required=("ts", "open", "close"))
    if bars.height == 0:
        raise ValueError("bars is empty: nothing to backtest")
    if "symbol" in bars.columns and bars["symbol"].n_unique() > 1:
        raise ValueError(
            f"bars hold {bars['symbol'].n_unique()} symbols; run_backtest takes one symbol: "
            f"loop over bars.partition_by('symbol') or use run_portfolio_backtest"
        )
    arrays = {k: v.reshape(-1, 1) for k, v in _bar_inputs(bars, config).items()}
    targets = _target_array(target, n_bars=bars.height).reshape(-1, 1)
    raw = _simulate(arrays, targets, config)
    equity = raw["equity"]
    returns = _returns(equity, config.initial_cash)
    frame = pl.DataFrame(
        {
            "ts": bars["ts"],
            "equity": equity,
            "cash": raw["cash"],
            "position_units": raw["units"][:, 0],
            "returns": returns,
            "drawdown": stats_nb.drawdown(equity, np.empty_like(equity)),
        }
    )
    symbol = str(bars["symbol"][0]) if "symbol" in bars.columns else ""
    trades = _trades_frame(raw["trades"], bars["ts"].to_numpy(), [symbol])
    metrics = _metrics(raw, returns, config, periods_per_year)
    return BacktestResult(equity=frame, metrics=metrics, config_id=config.id, trades=trades)


def run_portfolio_backtest(
    bars: pl.DataFrame,
    targets: pl.DataFrame,
    config: BacktestConfig,
    *,
    periods_per_year: float,
) -> PortfolioResult:
    """Simulate several symbols' target weights against one cash account.

    Parameters
    ----------
    bars
        Long bars with ``symbol``, ``ts``, ``open``, ``close`` (and the optional columns of
        ``run_backtest``); every symbol must have the same ``ts`` values.
    targets
        ``ts``, ``symbol`` and ``target``: one row per bar and symbol, each a fraction of
        total portfolio equity in [-1, 1]. A gross exposure above 1 is financed by negative
        cash.
    config
        Fill timing, costs, stops and ``initial_cash`` (for the whole portfolio).
    periods_per_year
        Bars per year (8760 for 1h bars).

    Returns
    -------
    PortfolioResult
        Equity and cost series, positions per symbol, trades, metrics and the config id.

    Examples
    --------
    >>> bars = pl.DataFrame({
    ...     "symbol": ["A", "A", "B", "B"], "ts": [0, 1, 0, 1],
    ...     "open": [10.0, 10.0, 5.0, 5.0], "close": [10.0, 11.0, 5.0, 4.0]})
    >>> w = bars.select("ts", "symbol", pl.lit(0.5).alias("target"))
    >>> cfg = BacktestConfig(fee_bps=0, fill="this_close", initial_cash=100.0)
    >>> res = run_portfolio_backtest(bars, w, cfg, periods_per_year=8760)
    >>> res.equity["equity"].to_list()  # 5 units of A (+5), 10 units of B (-10)
    [100.0, 95.0]
    """
    _check_config_and_period(config, periods_per_year)
    check_bars(bars, required=("symbol", "ts", "open", "close"))
    if bars.height == 0:
        raise ValueError("bars is empty: nothing to backtest")
    for column in ("ts", "symbol", "target"):
        if column not in targets.columns:
            raise ValueError(f"targets have no column {column!r}; columns are {targets.columns}")
    bars = bars.with_columns(pl.col("symbol").cast(pl.String)).sort("symbol", "ts")
    symbols = bars["symbol"].unique(maintain_order=True).to_list()
    frames = bars.partition_by("symbol", maintain_order=True)
    ts = frames[0]["ts"]
    for symbol, frame in zip(symbols, frames, strict=True):
        if not frame["ts"].equals(ts):
            raise ValueError(
                f"symbol {symbol!r} has {frame.height} bars but {symbols[0]!r} has {len(ts)} "
                f"or their ts differ: align the symbols on one ts grid (drop or fill bars)"
            )
    per_symbol = [_bar_inputs(frame, config) for frame in frames]
    arrays = {
        key: np.ascontiguousarray(np.column_stack([a[key] for a in per_symbol]))
        for key in per_symbol[0]
    }
    grid = bars.select("symbol", "ts").join(
        targets.select(pl.col("symbol").cast(pl.String), "ts", "target"),
        on=["symbol", "ts"],
        how="left",
    )
    weights = np.empty((ts.len(), len(symbols)))
    for j, part in enumerate(grid.partition_by("symbol", maintain_order=True)):
        column = part["target"]
        values = column.cast(pl.Float64).fill_null(np.nan).to_numpy()
        _check_targets(values, column.is_null().to_numpy(), symbols[j])
        weights[:, j] = values
    raw = _simulate(arrays, weights, config)
    equity = raw["equity"]
    returns = _returns(equity, config.initial_cash)
    per_bar_costs = raw["costs"].sum(axis=1)
    frame = pl.DataFrame(
        {
            "ts": ts,
            "equity": equity,
            "cash": raw["cash"],
            "returns": returns,
            "drawdown": stats_nb.drawdown(equity, np.empty_like(equity)),
            **{name: per_bar_costs[:, k] for k, name in enumerate(_COST_NAMES)},
        }
    )
    positions = pl.DataFrame({"ts": ts, **{s: raw["units"][:, j] for j, s in enumerate(symbols)}})
    return PortfolioResult(
        equity=frame,
        positions=positions,
        trades=_trades_frame(raw["trades"], ts.to_numpy(), symbols),
        metrics=_metrics(raw, returns, config, periods_per_year),
        config_id=config.id,
    )


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


def align_funding(bars: pl.DataFrame, funding: pl.DataFrame) -> pl.DataFrame:
    """``bars`` with a ``funding_rate`` column: the rate at bars that open at a funding time.

    Funding settles at an instant; the backtest charges it on the units held at the open of
    the bar that starts then. Bars at no funding time get 0. A funding time that falls on no
    bar (a gap in the bars) is an error, because silently dropping it would flatter a perp.

    Examples
    --------
    >>> bars = pl.DataFrame({"ts": [0, 1, 2], "symbol": ["X"] * 3, "close": [1.0] * 3})
    >>> funding = pl.DataFrame({"ts": [2], "symbol": ["X"], "funding_rate": [1e-4]})
    >>> align_funding(bars, funding)["funding_rate"].to_list()
    [0.0, 0.0, 0.0001]
    """
    rates = funding.select("symbol", "ts", "funding_rate")
    lost = rates.join(bars.select("symbol", "ts"), on=["symbol", "ts"], how="anti").filter(
        pl.col("ts").is_between(bars["ts"].min(), bars["ts"].max())
    )
    if lost.height:
        first = lost.row(0, named=True)
        raise ValueError(
            f"{lost.height} funding times fall on no bar (first: symbol={first['symbol']!r}, "
            f"ts={first['ts']}); collect the missing bars or check the bar interval"
        )
    joined = bars.drop("funding_rate", strict=False).join(rates, on=["symbol", "ts"], how="left")
    return joined.with_columns(pl.col("funding_rate").fill_null(0.0))


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


def trades_frame(results: dict[str, BacktestResult]) -> pl.DataFrame:
    """Every symbol's round trips in one frame, in symbol then entry order."""
    return pl.concat([r.trades for r in results.values()]).sort("symbol", "entry_ts")
