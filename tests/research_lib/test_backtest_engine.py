"""research_lib.backtest as an engine: config, portfolio API, trades, costs, metrics, causality.

The vectorbt cross-checks live in test_backtest_vs_vectorbt.py and the kernel properties in
tests/kernels/test_backtest.py. Fixtures are seeded random walks built in this file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from research_lib.backtest import (
    METRICS,
    TRADE_COLUMNS,
    backtest_by_symbol,
    bar_volatility,
    equity_frame,
    metrics_table,
    run_backtest,
    run_portfolio_backtest,
)
from research_lib.config import BacktestConfig, StrategyConfig
from research_lib.strategies import signals_for

HOURS = 8760.0


def bars_for(n: int, *, seed: int, symbol: str | None = None) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, 0.002, n))
    frame = pl.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 3_600_000,
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.004, n))),
            "low": np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.004, n))),
            "close": close,
            "volume": rng.uniform(50.0, 500.0, n),
        }
    )
    if symbol is not None:
        frame = frame.select(pl.lit(symbol).alias("symbol"), pl.all())
    return frame


def legacy_backtest(
    open_: np.ndarray, close: np.ndarray, target: np.ndarray, fee_bps: float, cash: float
) -> tuple[np.ndarray, int]:
    """The engine's original next-open, fees-only loop, in plain Python (the reference)."""
    f = fee_bps * 1e-4
    units, held, fills = 0.0, 0.0, 0
    equity = np.empty(len(close))
    for i in range(len(close)):
        if i > 0 and target[i - 1] != held:
            held = target[i - 1]
            p = open_[i]
            v = units * p
            e = cash + v
            w = held if e > 0 else 0.0
            if w * e > v:
                new_v = w * (e + f * v) / (1 + w * f)
            elif w * e < v:
                new_v = w * (e - f * v) / (1 - w * f)
            else:
                new_v = v
            if new_v != v:
                traded = new_v / p - units
                cash -= traded * p + f * abs(traded) * p
                units = new_v / p
                fills += 1
        equity[i] = cash + units * close[i]
    return equity, fills


# --- config ------------------------------------------------------------------------------


def test_default_config_keeps_todays_behaviour_and_validates_stops() -> None:
    config = BacktestConfig()
    assert {k: v for k, v in config.model_dump().items() if k in ("fee_bps", "fill")} == {
        "fee_bps": 10.0,
        "fill": "next_open",
    }
    assert config.stop_loss_fraction == 0.0, "stops are off by default"
    stopped = BacktestConfig(stop_loss_fraction=0.02, fill="this_close")
    assert stopped.model_dump()["stop_loss_fraction"] == 0.02
    assert stopped.id != BacktestConfig(fill="this_close").id
    with pytest.raises(ValueError, match="stop_loss_fraction"):
        BacktestConfig(stop_loss_fraction=1.5)
    with pytest.raises(ValueError, match="fill"):
        BacktestConfig(fill="next_week")  # type: ignore[arg-type]


def test_default_results_equal_the_original_engine() -> None:
    bars = bars_for(3000, seed=1)
    target = signals_for(bars, StrategyConfig(fast_bars=5, slow_bars=20, allow_short=True))
    w = target["target"].to_numpy()
    ours = run_backtest(bars, w, BacktestConfig(), periods_per_year=HOURS)
    equity, fills = legacy_backtest(bars["open"].to_numpy(), bars["close"].to_numpy(), w, 10, 1e4)
    np.testing.assert_allclose(ours.equity["equity"], equity, rtol=1e-12)
    assert ours.metrics["trades"] == fills


def test_by_symbol_frames_keep_their_shape() -> None:
    bars = pl.concat([bars_for(400, seed=2, symbol="AAA"), bars_for(400, seed=3, symbol="BBB")])
    results = backtest_by_symbol(
        bars, strategy=StrategyConfig(), config=BacktestConfig(), periods_per_year=HOURS
    )
    assert list(results) == ["AAA", "BBB"]
    frame = equity_frame(results)
    assert frame.columns == [
        "symbol",
        "ts",
        "equity",
        "cash",
        "position_units",
        "returns",
        "drawdown",
    ]
    table = metrics_table(results)
    assert table.columns == ["symbol", "config_id", *METRICS]
    assert results["AAA"].trades.columns == list(TRADE_COLUMNS)
    assert set(results["AAA"].trades["symbol"]) <= {"AAA"}


# --- trades, costs and metrics -----------------------------------------------------------


def test_trades_costs_and_metrics_agree_with_pandas() -> None:
    bars = bars_for(4000, seed=4)
    config = BacktestConfig(
        fee_bps=5.0,
        slippage_bps=2.0,
        gas_per_fill_quote=1.5,
        stop_loss_fraction=0.015,
        take_profit_fraction=0.03,
        fill="this_close",
    )
    target = signals_for(bars, StrategyConfig(fast_bars=5, slow_bars=20, allow_short=True))
    bars = bars.with_columns(
        funding_rate=pl.when(pl.int_range(pl.len()) % 8 == 0).then(0.0001).otherwise(0.0)
    )
    result = run_backtest(bars, target["target"], config, periods_per_year=HOURS)
    m, trades = result.metrics, result.trades
    equity = result.equity["equity"].to_numpy()
    assert set(trades["exit_reason"]) >= {"signal", "stop_loss", "take_profit"}
    closed = trades.filter(pl.col("exit_reason") != "open")
    pnl = closed["pnl"].to_pandas()
    assert trades["pnl"].sum() == pytest.approx(equity[-1] - config.initial_cash, rel=1e-9)
    assert m["round_trips"] == closed.height
    assert m["win_rate"] == pytest.approx((pnl > 0).mean())
    assert m["profit_factor"] == pytest.approx(pnl[pnl > 0].sum() / -pnl[pnl < 0].sum())
    assert m["fees_paid"] == pytest.approx(trades["fees"].sum())
    assert m["slippage_paid"] == pytest.approx(trades["slippage"].sum())
    assert m["gas_paid"] == pytest.approx(1.5 * m["trades"])
    assert m["funding_paid"] == pytest.approx(trades["funding"].sum())
    assert m["funding_paid"] != 0.0
    r = pd.Series(result.equity["returns"].to_numpy()[1:])
    sortino = r.mean() / np.sqrt((r.clip(upper=0.0) ** 2).mean()) * np.sqrt(HOURS)
    assert m["sortino"] == pytest.approx(sortino, rel=1e-9)
    assert m["calmar"] == pytest.approx(m["cagr"] / abs(m["max_drawdown"]))
    units = result.equity["position_units"].to_numpy()
    traded = np.abs(np.diff(np.concatenate(([0.0], units))))
    # Turnover uses the reference price of each fill: the close here, or a stop's level.
    assert m["turnover"] == pytest.approx(
        (traded * bars["close"].to_numpy()).sum() / equity.mean(), rel=0.05
    )


def test_funding_sign_and_zero_funding() -> None:
    bars = bars_for(500, seed=5)
    rate = pl.when(pl.int_range(pl.len()) % 8 == 0).then(0.001).otherwise(0.0)
    config = BacktestConfig(fee_bps=0.0)
    for side in (1.0, -1.0):
        target = np.full(500, side)
        plain = run_backtest(bars, target, config, periods_per_year=HOURS)
        funded = run_backtest(
            bars.with_columns(rate.alias("funding_rate")), target, config, periods_per_year=HOURS
        )
        zero = run_backtest(
            bars.with_columns(funding_rate=pl.lit(0.0)), target, config, periods_per_year=HOURS
        )
        assert zero.equity.equals(plain.equity)
        # Positive funding: a long pays, a short receives.
        assert np.sign(funded.metrics["funding_paid"]) == side
        diff = plain.metrics["final_equity"] - funded.metrics["final_equity"]
        assert diff == pytest.approx(funded.metrics["funding_paid"], rel=1e-9)


def test_impact_slippage_uses_volume_and_volatility() -> None:
    bars = bars_for(600, seed=6)
    target = signals_for(bars, StrategyConfig(fast_bars=5, slow_bars=20))["target"]
    small = run_backtest(
        bars, target, BacktestConfig(impact_coefficient=0.1), periods_per_year=HOURS
    )
    large = run_backtest(
        bars, target, BacktestConfig(impact_coefficient=1.0), periods_per_year=HOURS
    )
    assert 0.0 < small.metrics["slippage_paid"] < large.metrics["slippage_paid"]
    assert large.metrics["final_equity"] < small.metrics["final_equity"]
    # 100 times thinner volume: sqrt(100) = 10 times the impact (to first order, as the
    # equity path, hence the order sizes, moves a little).
    tiny = BacktestConfig(impact_coefficient=0.005)
    thick = run_backtest(bars, target, tiny, periods_per_year=HOURS)
    thin = run_backtest(
        bars.with_columns(pl.col("volume") / 100.0), target, tiny, periods_per_year=HOURS
    )
    assert thin.metrics["slippage_paid"] == pytest.approx(
        10.0 * thick.metrics["slippage_paid"], rel=0.01
    )
    with pytest.raises(ValueError, match="needs a 'volume' column"):
        run_backtest(
            bars.drop("volume"),
            target,
            BacktestConfig(impact_coefficient=0.1),
            periods_per_year=HOURS,
        )
    with pytest.raises(ValueError, match="no column 'high'"):
        run_backtest(
            bars.drop("high"),
            target,
            BacktestConfig(stop_loss_fraction=0.1),
            periods_per_year=HOURS,
        )


def test_bar_volatility_is_lagged_rolling_std_of_log_returns() -> None:
    close = bars_for(300, seed=7)["close"].to_numpy()
    expected = np.log(pd.Series(close)).diff().rolling(24).std().shift(1).to_numpy()
    np.testing.assert_allclose(bar_volatility(close, window_bars=24), expected, rtol=1e-9)


# --- several assets ----------------------------------------------------------------------


def test_portfolio_outputs_identity_and_errors() -> None:
    frames = [bars_for(800, seed=10 + k, symbol=s) for k, s in enumerate(["AAA", "BBB", "CCC"])]
    bars = pl.concat(frames)
    targets = pl.concat(
        [
            signals_for(
                f.drop("symbol"), StrategyConfig(fast_bars=5, slow_bars=20, allow_short=True)
            ).select("ts", pl.lit(f["symbol"][0]).alias("symbol"), pl.col("target") * 0.5)
            for f in frames
        ]
    )
    config = BacktestConfig(fee_bps=10.0, slippage_bps=1.0, trailing_stop_fraction=0.02)
    result = run_portfolio_backtest(bars, targets, config, periods_per_year=HOURS)
    assert result.positions.columns == ["ts", "AAA", "BBB", "CCC"]
    assert result.equity.columns == [
        "ts",
        "equity",
        "cash",
        "returns",
        "drawdown",
        "fees",
        "slippage",
        "funding",
        "gas",
    ]
    units = result.positions.select("AAA", "BBB", "CCC").to_numpy()
    closes = np.column_stack([f["close"].to_numpy() for f in frames])
    equity = result.equity["equity"].to_numpy()
    np.testing.assert_allclose(
        result.equity["cash"] + (units * closes).sum(axis=1), equity, rtol=1e-12
    )
    assert result.trades["pnl"].sum() == pytest.approx(equity[-1] - config.initial_cash, rel=1e-9)
    assert set(result.trades["symbol"]) == {"AAA", "BBB", "CCC"}
    assert "trailing_stop" in set(result.trades["exit_reason"])
    assert result.metrics["fees_paid"] == pytest.approx(result.equity["fees"].sum())
    with pytest.raises(ValueError, match="target has null at row 0 for AAA"):
        run_portfolio_backtest(
            bars, targets.filter(pl.col("ts") > 0), config, periods_per_year=HOURS
        )
    with pytest.raises(ValueError, match="align the symbols on one ts grid"):
        run_portfolio_backtest(
            bars.filter(~((pl.col("symbol") == "BBB") & (pl.col("ts") == 0))),
            targets,
            config,
            periods_per_year=HOURS,
        )


# --- causality: cutting the data after bar t never changes anything up to t ---------------


@pytest.mark.parametrize("fill", ["next_open", "next_close", "this_close"])
def test_truncated_history_gives_the_same_past(fill: str) -> None:
    bars = bars_for(700, seed=8)
    strategy = StrategyConfig(fast_bars=5, slow_bars=20, allow_short=True)
    config = BacktestConfig(
        fill=fill, impact_coefficient=0.5, stop_loss_fraction=0.02, trailing_stop_fraction=0.03
    )
    full = run_backtest(bars, signals_for(bars, strategy)["target"], config, periods_per_year=HOURS)
    for t in (50, 333, 699):
        cut = bars.head(t)
        part = run_backtest(
            cut, signals_for(cut, strategy)["target"], config, periods_per_year=HOURS
        )
        assert part.equity.equals(full.equity.head(t))
