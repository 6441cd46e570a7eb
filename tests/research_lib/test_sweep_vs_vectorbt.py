"""research_lib.sweep against run_backtest and vectorbt, plus its input contract.

For each (fast, slow) pair the reference target is ``talib.SMA(close, fast) >
talib.SMA(close, slow)`` (0/1). ``run_backtest`` on that target must give the sweep's row to
1e-12; vectorbt ``Portfolio.from_signals`` with the target's signals shifted one bar and
``min_size=0`` (PERF_NOTES) to 1e-9. Data: a seeded random walk built here, and the real
Binance BTCUSDT hourly bars from ``../shared/data/real`` when present (skipped otherwise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import talib
import vectorbt as vbt

from research_lib.backtest import run_backtest
from research_lib.config import BacktestConfig
from research_lib.sweep import SweepResult, ma_crossover_returns, ma_crossover_sweep

BTC_1H = (
    Path(__file__).resolve().parents[2].parent
    / "shared/data/real/cex/binance_spot_1h/BTCUSDT.parquet"
)
HOURS = 8760.0
FAST = [2, 5, 12, 24]
SLOW = [5, 26, 48, 100]
METRIC_COLUMNS = ["total_return", "final_equity", "trades", "sharpe", "max_drawdown"]


def random_walk_bars(n: int, *, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, 0.002, n))
    return pl.DataFrame(
        {"ts": np.arange(n, dtype=np.int64) * 3_600_000, "open": open_, "close": close}
    )


def real_bars() -> pl.DataFrame:
    if not BTC_1H.is_file():
        pytest.skip(f"real data not found: {BTC_1H}")
    return pl.read_parquet(BTC_1H, columns=["ts", "open", "close"])


def target(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    return (talib.SMA(close, fast) > talib.SMA(close, slow)).astype(np.float64)


def run_sweep(bars: pl.DataFrame, *, fill: str, fee_bps: float, **kwargs) -> SweepResult:
    return ma_crossover_sweep(
        bars["close"],
        open_prices=bars["open"],
        fast_bars=FAST,
        slow_bars=SLOW,
        fee_bps=fee_bps,
        fill=fill,
        initial_cash=10_000.0,
        periods_per_year=HOURS,
        **kwargs,
    )


def assert_matches_run_backtest(bars: pl.DataFrame, *, fill: str, fee_bps: float) -> None:
    result = run_sweep(bars, fill=fill, fee_bps=fee_bps)
    config = BacktestConfig(fee_bps=fee_bps, fill=fill, initial_cash=10_000.0)
    assert result.config == config
    close = bars["close"].to_numpy()
    for row in result.table.iter_rows(named=True):
        single = run_backtest(
            bars, target(close, row["fast_bars"], row["slow_bars"]), config, periods_per_year=HOURS
        )
        for name in METRIC_COLUMNS:
            assert row[name] == pytest.approx(single.metrics[name], rel=1e-12, abs=0.0), (
                row["fast_bars"],
                row["slow_bars"],
                name,
            )


def assert_matches_vectorbt(bars: pl.DataFrame, *, fill: str, fee_bps: float) -> None:
    result = run_sweep(bars, fill=fill, fee_bps=fee_bps)
    close = bars["close"].to_numpy()
    table = result.table
    pairs = table.select("fast_bars", "slow_bars").rows()
    long = np.column_stack([target(close, f, s) > 0.0 for f, s in pairs])
    entries = np.zeros_like(long)
    exits = np.zeros_like(long)
    entries[1:] = long[:-1]
    exits[1:] = ~long[:-1]
    portfolio = vbt.Portfolio.from_signals(
        pd.Series(close),
        entries,
        exits,
        price=bars["open" if fill == "next_open" else "close"].to_numpy()[:, None],
        fees=fee_bps * 1e-4,
        init_cash=10_000.0,
        min_size=0.0,
        direction="longonly",
    )
    assert table["trades"].min() > 20  # many round trips in every column
    np.testing.assert_array_equal(table["trades"], portfolio.orders.count().to_numpy())
    np.testing.assert_allclose(table["total_return"], portfolio.total_return(), rtol=1e-9)
    np.testing.assert_allclose(table["final_equity"], portfolio.final_value(), rtol=1e-9)
    np.testing.assert_allclose(table["max_drawdown"], portfolio.max_drawdown(), rtol=1e-9)


@pytest.mark.parametrize("fill", ["next_close", "next_open"])
@pytest.mark.parametrize("fee_bps", [0.0, 10.0])
def test_random_walk_matches_run_backtest(fill: str, fee_bps: float) -> None:
    assert_matches_run_backtest(random_walk_bars(4000, seed=31), fill=fill, fee_bps=fee_bps)


@pytest.mark.parametrize("fill", ["next_close", "next_open"])
def test_random_walk_matches_vectorbt(fill: str) -> None:
    assert_matches_vectorbt(random_walk_bars(4000, seed=32), fill=fill, fee_bps=10.0)


@pytest.mark.real_data
@pytest.mark.parametrize("fill", ["next_close", "next_open"])
def test_real_btcusdt_hourly_matches_run_backtest(fill: str) -> None:
    assert_matches_run_backtest(real_bars(), fill=fill, fee_bps=10.0)


@pytest.mark.real_data
@pytest.mark.parametrize("fill", ["next_close", "next_open"])
def test_real_btcusdt_hourly_matches_vectorbt(fill: str) -> None:
    # The first 20,000 bars, as in test_backtest_vs_vectorbt: over the whole history the
    # 2/5 pair makes ~15,000 fills and keeps about 1e-7 of its cash; the two sides' per-fill
    # rounding then compounds to a 1e-8 relative gap in its final equity.
    assert_matches_vectorbt(real_bars().head(20_000), fill=fill, fee_bps=10.0)


def test_table_shape_trials_and_chunking() -> None:
    bars = random_walk_bars(1500, seed=33)
    result = run_sweep(bars, fill="next_close", fee_bps=5.0)
    pairs = [(f, s) for f in FAST for s in SLOW if f < s]
    assert result.n_trials == len(pairs) == result.table.height
    assert result.n_bars == 1500 and result.periods_per_year == HOURS
    assert result.table.columns == ["fast_bars", "slow_bars", *METRIC_COLUMNS]
    assert result.table.select("fast_bars", "slow_bars").rows() == pairs
    assert result.table["trades"].dtype == pl.Int64
    for chunk_combos in (1, 3, 100):
        chunked = run_sweep(
            bars, fill="next_close", fee_bps=5.0, chunk_combos=chunk_combos, progress=False
        )
        assert chunked.table.equals(result.table)
    # numpy input, no open needed for next_close
    plain = ma_crossover_sweep(
        bars["close"].to_numpy(),
        fast_bars=FAST,
        slow_bars=SLOW,
        fee_bps=5.0,
        periods_per_year=HOURS,
    )
    assert plain.table.equals(result.table)


def test_progress_bar_over_chunks(capsys: pytest.CaptureFixture[str]) -> None:
    bars = random_walk_bars(300, seed=34)
    run_sweep(bars, fill="next_close", fee_bps=5.0, chunk_combos=2, progress=True)
    assert "ma_crossover_sweep" in capsys.readouterr().err


def test_sharpe_is_null_without_variance() -> None:
    # Flat prices: the SMAs are equal, the target stays 0, the returns are all 0.
    result = ma_crossover_sweep(
        np.full(50, 3.0), fast_bars=[2], slow_bars=[5], periods_per_year=HOURS
    )
    row = result.table.row(0, named=True)
    assert row["sharpe"] is None and row["trades"] == 0 and row["total_return"] == 0.0


def test_input_errors_name_field_and_value() -> None:
    close = random_walk_bars(50, seed=35)["close"]
    ok = {"fast_bars": [2], "slow_bars": [5], "periods_per_year": HOURS}
    with pytest.raises(ValueError, match="needs open_prices"):
        ma_crossover_sweep(close, fill="next_open", **ok)
    with pytest.raises(ValueError, match="fill must be 'next_close' or 'next_open'"):
        ma_crossover_sweep(close, fill="this_close", **ok)  # type: ignore[arg-type]
    bad = close.to_numpy().copy()
    bad[7] = -1.0
    with pytest.raises(ValueError, match=r"close has -1\.0 at row 7"):
        ma_crossover_sweep(bad, **ok)
    bad[7] = np.nan
    with pytest.raises(ValueError, match="close has null at row 7"):
        ma_crossover_sweep(bad, **ok)
    with pytest.raises(ValueError, match="slow_bars holds 60 but the series has 50 bars"):
        ma_crossover_sweep(close, fast_bars=[2], slow_bars=[60], periods_per_year=HOURS)
    with pytest.raises(ValueError, match=r"fast_bars has duplicates: \[2, 2\]"):
        ma_crossover_sweep(close, fast_bars=[2, 2], slow_bars=[5], periods_per_year=HOURS)
    with pytest.raises(ValueError, match="no pair has fast_bars < slow_bars"):
        ma_crossover_sweep(close, fast_bars=[10], slow_bars=[5], periods_per_year=HOURS)
    with pytest.raises(TypeError, match="expected ints"):
        ma_crossover_sweep(close, fast_bars=[2.5], slow_bars=[5], periods_per_year=HOURS)
    with pytest.raises(ValueError, match="periods_per_year must be > 0, got 0"):
        ma_crossover_sweep(close, fast_bars=[2], slow_bars=[5], periods_per_year=0)
    with pytest.raises(ValueError, match="open_prices has 49 values but close has 50"):
        ma_crossover_sweep(close, open_prices=close[:49], fill="next_open", **ok)
    with pytest.raises(ValueError, match="fee_bps"):
        ma_crossover_sweep(close, fee_bps=-1.0, **ok)


@pytest.mark.parametrize("fill", ["next_close", "next_open"])
def test_returns_matrix_equals_run_backtest_equity(fill: str) -> None:
    bars = random_walk_bars(700, seed=5)
    pairs, returns = ma_crossover_returns(
        bars["close"], open_prices=bars["open"], fast_bars=FAST, slow_bars=SLOW, fill=fill
    )
    result = run_sweep(bars, fill=fill, fee_bps=10.0)
    assert pairs.rows() == result.table.select("fast_bars", "slow_bars").rows()
    assert returns.shape == (bars.height, result.n_trials)
    config = BacktestConfig(fee_bps=10.0, fill=fill, initial_cash=10_000.0)
    close = bars["close"].to_numpy()
    for k, (fast, slow) in enumerate(pairs.rows()):
        equity = (
            run_backtest(bars, target(close, fast, slow), config, periods_per_year=HOURS)
            .equity["equity"]
            .to_numpy()
        )
        expected = np.concatenate(([0.0], equity[1:] / equity[:-1] - 1.0))
        np.testing.assert_array_equal(returns[:, k], expected)
    # Compounding the columns gives the sweep's total returns.
    np.testing.assert_allclose(
        np.prod(1.0 + returns, axis=0) - 1.0, result.table["total_return"], rtol=1e-12, atol=1e-13
    )


def test_returns_matrix_matches_vectorbt_on_real_hours() -> None:
    bars = real_bars().tail(5_000)
    pairs, returns = ma_crossover_returns(
        bars["close"], open_prices=bars["open"], fast_bars=FAST, slow_bars=SLOW, fee_bps=10.0
    )
    close = bars["close"].to_numpy()
    long = np.column_stack([target(close, f, s) > 0.0 for f, s in pairs.rows()])
    entries = np.zeros_like(long)
    exits = np.zeros_like(long)
    entries[1:] = long[:-1]
    exits[1:] = ~long[:-1]
    portfolio = vbt.Portfolio.from_signals(
        pd.Series(close), entries, exits, fees=1e-3, init_cash=10_000.0, min_size=0.0,
        direction="longonly",
    )  # fmt: skip
    np.testing.assert_allclose(returns, portfolio.returns().to_numpy(), rtol=1e-9, atol=1e-15)


def test_returns_matrix_refuses_an_oversized_result() -> None:
    close = np.linspace(100.0, 110.0, 1_000)
    with pytest.raises(ValueError, match=r"1000 bars x 2 pairs .* over max_bytes=8,000"):
        ma_crossover_returns(close, fast_bars=[2, 3], slow_bars=[10], max_bytes=8_000)
