"""research_lib.backtest against vectorbt ``Portfolio.from_signals``, plus its input contract.

Same timing on both sides: the EMA-cross target decided at bar t's close is filled at bar
t + 1, so vectorbt gets the entry/exit signals shifted one bar and ``price`` = open or close
of the fill bar; ``min_size=0`` so that vectorbt never rejects an order (PERF_NOTES).
Data: a seeded random walk built here, and real Binance BTCUSDT/ETHUSDT hourly bars from
``../shared/data/real`` when present (skipped otherwise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import vectorbt as vbt

from research_lib.backtest import METRICS, BacktestResult, metrics_table, run_backtest
from research_lib.config import BacktestConfig, StrategyConfig
from research_lib.strategies import signals_for

REAL_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
SPOT_1H = REAL_DIR / "cex" / "binance_spot_1h"
HOURS_PER_YEAR = 24 * 365.0
STRATEGY = StrategyConfig(fast_bars=12, slow_bars=48)


def random_walk_bars(n: int, *, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, 0.002, n))
    return pl.DataFrame(
        {"ts": np.arange(n, dtype=np.int64) * 3_600_000, "open": open_, "close": close}
    )


def vectorbt_portfolio(bars: pl.DataFrame, target: np.ndarray, config: BacktestConfig):
    """The same long-only run in vectorbt: signals shifted one bar, fills at open or close."""
    close = pd.Series(bars["close"].to_numpy())
    long = target > 0.0
    entries = np.concatenate(([False], long[:-1]))
    exits = np.concatenate(([False], ~long[:-1]))
    price = bars["open" if config.fill == "next_open" else "close"].to_numpy()
    return vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        price=price,
        fees=config.fee_bps * 1e-4,
        init_cash=config.initial_cash,
        min_size=0.0,
        direction="longonly",
    )


def assert_matches_vectorbt(bars: pl.DataFrame, config: BacktestConfig) -> BacktestResult:
    target = signals_for(bars, STRATEGY)["target"]
    ours = run_backtest(bars, target, config, periods_per_year=HOURS_PER_YEAR)
    portfolio = vectorbt_portfolio(bars, target.to_numpy(), config)
    trades = int(portfolio.orders.count())
    assert trades > 20  # the comparison must exercise many round trips
    assert ours.metrics["trades"] == trades
    assert ours.metrics["total_return"] == pytest.approx(portfolio.total_return(), rel=1e-9)
    np.testing.assert_allclose(ours.equity["equity"], portfolio.value().to_numpy(), rtol=1e-9)
    assert ours.metrics["fees_paid"] == pytest.approx(
        portfolio.orders.records["fees"].sum(), rel=1e-9
    )
    return ours


@pytest.mark.parametrize("fill", ["next_open", "next_close"])
@pytest.mark.parametrize("fee_bps", [0.0, 10.0, 75.0])
def test_random_walk_matches_vectorbt(fill: str, fee_bps: float) -> None:
    bars = random_walk_bars(5000, seed=11)
    assert_matches_vectorbt(bars, BacktestConfig(fee_bps=fee_bps, fill=fill))


@pytest.mark.real_data
@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
@pytest.mark.parametrize("fill", ["next_open", "next_close"])
def test_real_hourly_bars_match_vectorbt(symbol: str, fill: str) -> None:
    path = SPOT_1H / f"{symbol}.parquet"
    if not path.is_file():
        pytest.skip(f"real data not found: {path}")
    bars = pl.read_parquet(path, columns=["ts", "open", "close"]).head(20_000)
    assert_matches_vectorbt(bars, BacktestConfig(fee_bps=10.0, fill=fill))


# --- run_backtest's own contract ------------------------------------------------------------


def test_result_frame_metrics_and_table() -> None:
    bars = random_walk_bars(3000, seed=12)
    config = BacktestConfig(fee_bps=5.0)
    target = signals_for(bars, StrategyConfig(fast_bars=5, slow_bars=20, allow_short=True))
    result = run_backtest(bars, target["target"], config, periods_per_year=HOURS_PER_YEAR)
    frame = result.equity
    assert frame.columns == ["ts", "equity", "cash", "position_units", "returns", "drawdown"]
    assert frame["ts"].equals(bars["ts"])
    equity = frame["equity"].to_numpy()
    np.testing.assert_allclose(
        frame["cash"] + frame["position_units"] * bars["close"], equity, rtol=1e-12
    )
    np.testing.assert_allclose(
        frame["returns"].to_numpy()[1:], equity[1:] / equity[:-1] - 1.0, rtol=1e-12
    )
    assert frame["returns"][0] == 0.0 and equity[0] == config.initial_cash
    peak = np.maximum.accumulate(equity)
    np.testing.assert_allclose(frame["drawdown"], equity / peak - 1.0, rtol=1e-12)
    m = result.metrics
    assert list(m) == list(METRICS)
    assert m["final_equity"] == equity[-1]
    assert m["max_drawdown"] == pytest.approx((equity / peak - 1.0).min())
    assert m["exposure"] == pytest.approx(np.mean(frame["position_units"].to_numpy() != 0))
    years = (len(equity) - 1) / HOURS_PER_YEAR
    assert m["cagr"] == pytest.approx((equity[-1] / equity[0]) ** (1 / years) - 1, rel=1e-9)
    r = frame["returns"].to_numpy()[1:]
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(HOURS_PER_YEAR))
    assert result.config_id == config.id

    table = metrics_table({"AAA": result, "BBB": result})
    assert table["symbol"].to_list() == ["AAA", "BBB"]
    assert table.columns == ["symbol", "config_id", *METRICS]
    assert table.row(0, named=True)["total_return"] == m["total_return"]


def test_numpy_and_polars_targets_agree() -> None:
    bars = random_walk_bars(500, seed=13)
    target = signals_for(bars, STRATEGY)["target"]
    config = BacktestConfig()
    a = run_backtest(bars, target, config, periods_per_year=HOURS_PER_YEAR)
    b = run_backtest(bars, target.to_numpy(), config, periods_per_year=HOURS_PER_YEAR)
    assert a.equity.equals(b.equity) and a.metrics == b.metrics


def test_input_errors_name_field_and_value() -> None:
    bars = random_walk_bars(50, seed=14)
    config = BacktestConfig()
    ok = np.zeros(50)
    bad = ok.copy()
    bad[7] = 1.5
    with pytest.raises(ValueError, match=r"target has 1\.5 at row 7"):
        run_backtest(bars, bad, config, periods_per_year=8760)
    with pytest.raises(ValueError, match="target has null at row 0"):
        run_backtest(bars, pl.Series([None] + [0.0] * 49), config, periods_per_year=8760)
    bad[7] = np.nan
    with pytest.raises(ValueError, match="target has nan at row 7"):
        run_backtest(bars, bad, config, periods_per_year=8760)
    with pytest.raises(ValueError, match="49 values but bars have 50 rows"):
        run_backtest(bars, ok[:49], config, periods_per_year=8760)
    with pytest.raises(ValueError, match="periods_per_year must be > 0, got 0"):
        run_backtest(bars, ok, config, periods_per_year=0)
    with pytest.raises(ValueError, match="no column 'open'"):
        run_backtest(bars.drop("open"), ok, config, periods_per_year=8760)
    negative = bars.with_columns(pl.col("open") * -1)
    with pytest.raises(ValueError, match=r"column 'open' has -\d+\.\d+ at row 0"):
        run_backtest(negative, ok, config, periods_per_year=8760)
    with pytest.raises(TypeError, match="BacktestConfig"):
        run_backtest(bars, ok, StrategyConfig(), periods_per_year=8760)  # type: ignore[arg-type]
