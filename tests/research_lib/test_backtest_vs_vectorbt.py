"""research_lib.backtest against vectorbt ``Portfolio.from_signals`` / ``from_orders``.

Same timing on both sides: for ``next_open``/``next_close`` the target decided at bar t's
close is filled at bar t + 1, so vectorbt gets the signals shifted one bar and ``price`` =
the fill bar's open or close; for ``this_close`` vectorbt gets them unshifted with
``price=close``. Signals are the target's *changes* (our engine acts on changes, and after a
stop it stays flat until the target changes), and ``min_size=0`` so that vectorbt never
rejects an order (PERF_NOTES). Checked: the same number of fills, and the same total return
and equity path within 1e-9 relative (1e-12 of the initial cash absolute near zero).

What matches: long-only and long-short (``direction="both"``) with fees and gas
(``fixed_fees``); fixed slippage on long-only runs; stop-loss, take-profit and trailing stop
for the close fills (``stop_entry_price="fillprice"``, ``stop_exit_price="stopmarket"``); a
multi-asset ``cash_sharing=True`` book through ``from_orders(size_type="targetpercent")``
without fees.

Known differences (by design, documented in ``kernels.backtest``):

- Stops with ``next_open``: we also check the entry bar's high/low after the open fill;
  vectorbt checks stops only from the bar after the entry, and lets a stop replace that
  bar's signal.
- A stop and an opposite target change in the same bar: we exit at the stop, then fill the
  new target at the close; vectorbt drops the signal.
- Shorts with slippage: vectorbt sizes an all-in short as ``cash / (p (1 - s)(1 + f))``; we
  size it so that the post-cost weight is exactly -1.
- Both the gap to a take-profit and a touch of the stop in one bar: we take profit at the
  open (the open comes first); vectorbt takes the stop.
- ``from_orders`` target percents size before fees (fees on top); ours size the post-cost
  weight. They agree without fees, and for all-in single-asset entries with fees.

Data: seeded random walks built here, and real Binance BTCUSDT/ETHUSDT hourly bars from
``../shared/data/real`` when present (skipped otherwise, naming the path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import vectorbt as vbt

from research_lib.backtest import (
    METRICS,
    BacktestResult,
    metrics_table,
    run_backtest,
    run_portfolio_backtest,
)
from research_lib.config import BacktestConfig, StrategyConfig
from research_lib.strategies import signals_for

REAL_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
SPOT_1H = REAL_DIR / "cex" / "binance_spot_1h"
HOURS_PER_YEAR = 24 * 365.0
STRATEGY = StrategyConfig(fast_bars=12, slow_bars=48)
LONG_SHORT = StrategyConfig(fast_bars=12, slow_bars=48, allow_short=True)
REAL_BARS = 20_000
# Gross exposure at most 0.8 of the book: vectorbt cannot borrow cash (it partially fills a
# buy it cannot pay for), ours can; below 1 the free cash covers every order here.
SHARE_OF_BOOK = 0.8


def random_walk_bars(n: int, *, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.004, n)))
    return pl.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 3_600_000,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
        }
    )


def real_bars(symbol: str) -> pl.DataFrame:
    path = SPOT_1H / f"{symbol}.parquet"
    if not path.is_file():
        pytest.skip(f"real data not found: {path}")
    columns = ["ts", "open", "high", "low", "close"]
    return pl.read_parquet(path, columns=columns).head(REAL_BARS)


def change_signals(target: np.ndarray, *, shift: bool) -> dict[str, np.ndarray]:
    """Entries/exits at the bars where the target changes (shifted one bar if asked)."""
    prev = np.concatenate(([0.0], target[:-1]))
    signals = {
        "long_entries": (target > 0) & (prev <= 0),
        "long_exits": (target <= 0) & (prev > 0),
        "short_entries": (target < 0) & (prev >= 0),
    }
    if shift:
        signals = {k: np.concatenate(([False], v[:-1])) for k, v in signals.items()}
    return signals


def vectorbt_from_signals(
    bars: pl.DataFrame, target: np.ndarray, config: BacktestConfig, *, direction: str
):
    """The same run in vectorbt: change signals, the config's costs and stops."""
    signals = change_signals(target, shift=config.fill != "this_close")
    price = bars["open" if config.fill == "next_open" else "close"].to_numpy()
    # Always the same argument types, so vectorbt compiles its simulator once (NaN = no stop).
    stops: dict[str, object] = {
        "sl_stop": np.nan,
        "sl_trail": False,
        "tp_stop": np.nan,
        "open": bars["open"].to_numpy(),
        "high": bars["high"].to_numpy(),
        "low": bars["low"].to_numpy(),
        "stop_entry_price": "fillprice",
        "stop_exit_price": "stopmarket",
    }
    if config.stop_loss_fraction > 0:
        stops["sl_stop"] = config.stop_loss_fraction
    if config.trailing_stop_fraction > 0:
        assert config.stop_loss_fraction == 0, "vectorbt has one stop-loss: fixed or trailing"
        stops.update(sl_stop=config.trailing_stop_fraction, sl_trail=True)
    if config.take_profit_fraction > 0:
        stops["tp_stop"] = config.take_profit_fraction
    exits = signals["long_exits"] if direction == "longonly" else signals["short_entries"]
    return vbt.Portfolio.from_signals(
        pd.Series(bars["close"].to_numpy()),
        signals["long_entries"],
        exits,
        price=price,
        fees=config.fee_bps * 1e-4,
        slippage=config.slippage_bps * 1e-4,
        fixed_fees=config.gas_per_fill_quote,
        init_cash=config.initial_cash,
        min_size=0.0,
        direction=direction,
        **stops,
    )


def assert_same_run(
    equity: np.ndarray, n_fills: float, portfolio, initial_cash: float, *, min_fills: int = 20
) -> None:
    fills = int(portfolio.orders.count())
    assert fills > min_fills  # the comparison must exercise many round trips
    assert n_fills == fills
    theirs = portfolio.value().to_numpy()
    atol = 1e-12 * initial_cash
    assert equity[-1] == pytest.approx(theirs[-1], rel=1e-9, abs=atol)
    ours_return = equity[-1] / initial_cash - 1.0
    assert ours_return == pytest.approx(portfolio.total_return(), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(equity, theirs, rtol=1e-9, atol=atol)


def assert_matches_vectorbt(
    bars: pl.DataFrame,
    config: BacktestConfig,
    *,
    strategy: StrategyConfig = STRATEGY,
) -> BacktestResult:
    target = signals_for(bars.select("ts", "close"), strategy)["target"]
    ours = run_backtest(bars, target, config, periods_per_year=HOURS_PER_YEAR)
    direction = "both" if strategy.allow_short else "longonly"
    portfolio = vectorbt_from_signals(bars, target.to_numpy(), config, direction=direction)
    equity = ours.equity["equity"].to_numpy()
    assert_same_run(equity, ours.metrics["trades"], portfolio, config.initial_cash)
    assert ours.metrics["total_return"] == pytest.approx(portfolio.total_return(), rel=1e-9)
    assert ours.metrics["fees_paid"] == pytest.approx(
        portfolio.orders.records["fees"].sum() - config.gas_per_fill_quote * ours.metrics["trades"],
        rel=1e-9,
        abs=1e-9,
    )
    return ours


FILLS = ["next_open", "next_close", "this_close"]


@pytest.mark.parametrize("fill", FILLS)
@pytest.mark.parametrize("fee_bps", [0.0, 10.0, 75.0])
def test_random_walk_long_only_matches_vectorbt(fill: str, fee_bps: float) -> None:
    bars = random_walk_bars(5000, seed=11)
    assert_matches_vectorbt(bars, BacktestConfig(fee_bps=fee_bps, fill=fill))


@pytest.mark.parametrize("fill", FILLS)
def test_random_walk_long_short_with_gas_matches_vectorbt(fill: str) -> None:
    bars = random_walk_bars(5000, seed=12)
    config = BacktestConfig(fee_bps=10.0, fill=fill, gas_per_fill_quote=2.0)
    ours = assert_matches_vectorbt(bars, config, strategy=LONG_SHORT)
    assert ours.metrics["gas_paid"] == pytest.approx(2.0 * ours.metrics["trades"])


def test_random_walk_slippage_and_gas_match_vectorbt() -> None:
    bars = random_walk_bars(5000, seed=13)
    config = BacktestConfig(fee_bps=10.0, slippage_bps=5.0, gas_per_fill_quote=3.0)
    ours = assert_matches_vectorbt(bars, config)
    assert ours.metrics["slippage_paid"] > 0.0


STOPS = [
    {"fill": "next_close", "stop_loss_fraction": 0.01, "take_profit_fraction": 0.02},
    {"fill": "this_close", "stop_loss_fraction": 0.01, "take_profit_fraction": 0.02},
    {"fill": "this_close", "trailing_stop_fraction": 0.015},
    {"fill": "next_close", "trailing_stop_fraction": 0.01, "slippage_bps": 3.0},
]


@pytest.mark.parametrize("stops", STOPS, ids=lambda s: "-".join(map(str, s.values())))
def test_random_walk_stops_match_vectorbt(stops: dict) -> None:
    bars = random_walk_bars(5000, seed=14)
    ours = assert_matches_vectorbt(bars, BacktestConfig(fee_bps=10.0, **stops))
    reasons = set(ours.trades["exit_reason"])
    assert reasons & {"stop_loss", "trailing_stop"}  # the stops really fire
    if "take_profit_fraction" in stops:
        assert "take_profit" in reasons


def portfolio_targets(frames: dict[str, pl.DataFrame], strategy: StrategyConfig) -> pl.DataFrame:
    """Each symbol's EMA-cross target, scaled to an equal share of the book."""
    share = SHARE_OF_BOOK / len(frames)
    return pl.concat(
        [
            signals_for(frame.select("ts", "close"), strategy).select(
                "ts", pl.lit(symbol).alias("symbol"), pl.col("target") * share
            )
            for symbol, frame in frames.items()
        ]
    )


def assert_portfolio_matches_vectorbt(
    frames: dict[str, pl.DataFrame], config: BacktestConfig, strategy: StrategyConfig
) -> None:
    bars = pl.concat([f.select(pl.lit(s).alias("symbol"), pl.all()) for s, f in frames.items()])
    targets = portfolio_targets(frames, strategy)
    ours = run_portfolio_backtest(bars, targets, config, periods_per_year=HOURS_PER_YEAR)
    symbols = list(frames)
    wide = targets.pivot(on="symbol", index="ts", values="target").sort("ts")
    weights = wide.select(symbols).to_numpy()
    prev = np.vstack([np.zeros((1, len(symbols))), weights[:-1]])
    size = np.where(weights != prev, weights, np.nan)  # an order only where a target changes
    column = "open" if config.fill == "next_open" else "close"
    price = np.column_stack([frames[s][column].to_numpy() for s in symbols])
    if config.fill != "this_close":
        size = np.vstack([np.full((1, len(symbols)), np.nan), size[:-1]])
    close = pd.DataFrame({s: frames[s]["close"].to_numpy() for s in symbols})
    portfolio = vbt.Portfolio.from_orders(
        close,
        size=pd.DataFrame(size, columns=symbols),
        size_type="targetpercent",
        price=price,
        fees=config.fee_bps * 1e-4,
        init_cash=config.initial_cash,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        min_size=0.0,
        direction="both",
    )
    equity = ours.equity["equity"].to_numpy()
    assert_same_run(equity, ours.metrics["trades"], portfolio, config.initial_cash)
    units = ours.positions.select(symbols).to_numpy()
    np.testing.assert_allclose(
        ours.equity["cash"].to_numpy() + (units * close.to_numpy()).sum(axis=1),
        equity,
        rtol=1e-12,
    )


@pytest.mark.parametrize("fill", ["next_open", "this_close"])
@pytest.mark.parametrize("strategy", [STRATEGY, LONG_SHORT], ids=["long", "long_short"])
def test_random_walk_portfolio_matches_vectorbt_cash_sharing(
    fill: str, strategy: StrategyConfig
) -> None:
    frames = {s: random_walk_bars(3000, seed=20 + k) for k, s in enumerate(["AAA", "BBB", "CCC"])}
    assert_portfolio_matches_vectorbt(frames, BacktestConfig(fee_bps=0.0, fill=fill), strategy)


def synthetic_market_bars(symbol: str) -> pl.DataFrame:
    """Six months of hourly bars of the embedded synthetic market (GARCH, jumps, regimes)."""
    from research_lib.sources.synthetic import SyntheticMarketConfig, SyntheticSource

    source = SyntheticSource(SyntheticMarketConfig(seed=7))
    start = SyntheticMarketConfig().origin_ms
    frame = source.fetch(
        dataset="bars", symbols=[symbol], interval="1h",
        start_ms=start, end_ms=start + 182 * 86_400_000,
    )  # fmt: skip
    return frame.drop("symbol")


@pytest.mark.parametrize("symbol", ["BTCUSDT", "SOLUSDT"])
@pytest.mark.parametrize(
    ("fill", "strategy", "extra"),
    [
        ("next_open", STRATEGY, {}),
        ("this_close", LONG_SHORT, {"gas_per_fill_quote": 1.0}),
        ("next_close", STRATEGY, {"stop_loss_fraction": 0.02, "take_profit_fraction": 0.04}),
    ],
    ids=["long-next_open", "long_short-this_close", "sl_tp"],
)
def test_synthetic_market_matches_vectorbt(
    symbol: str, fill: str, strategy: StrategyConfig, extra: dict
) -> None:
    bars = synthetic_market_bars(symbol)
    config = BacktestConfig(fee_bps=10.0, fill=fill, **extra)
    assert_matches_vectorbt(bars, config, strategy=strategy)


@pytest.mark.real_data
@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
@pytest.mark.parametrize(
    ("fill", "strategy", "extra"),
    [
        ("next_open", STRATEGY, {}),
        ("next_close", STRATEGY, {}),
        ("this_close", LONG_SHORT, {"gas_per_fill_quote": 1.0}),
        ("next_close", STRATEGY, {"stop_loss_fraction": 0.02, "take_profit_fraction": 0.04}),
        ("this_close", STRATEGY, {"trailing_stop_fraction": 0.03, "slippage_bps": 2.0}),
    ],
    ids=["long-next_open", "long-next_close", "long_short-this_close", "sl_tp", "trailing"],
)
def test_real_hourly_bars_match_vectorbt(
    symbol: str, fill: str, strategy: StrategyConfig, extra: dict
) -> None:
    bars = real_bars(symbol)
    config = BacktestConfig(fee_bps=10.0, fill=fill, **extra)
    assert_matches_vectorbt(bars, config, strategy=strategy)


@pytest.mark.real_data
@pytest.mark.parametrize("fill", ["next_open", "this_close"])
def test_real_btc_eth_portfolio_matches_vectorbt_cash_sharing(fill: str) -> None:
    btc, eth = real_bars("BTCUSDT"), real_bars("ETHUSDT")
    common = btc.select("ts").join(eth.select("ts"), on="ts", how="inner")
    frames = {
        s: f.join(common, on="ts", how="semi").sort("ts")
        for s, f in (("BTCUSDT", btc), ("ETHUSDT", eth))
    }
    config = BacktestConfig(fee_bps=0.0, fill=fill)
    assert_portfolio_matches_vectorbt(frames, config, LONG_SHORT)


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
