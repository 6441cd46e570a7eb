"""The synthetic market: stylised facts, exact aggregation, range independence, determinism.

Statistics use the default config (seed 7). Facts about one draw of a random process are
checked on the demo range (2024-01-01..2024-04-01) where that is informative; autocorrelations
use a year of hourly bars, because with ~2,200 heavy-tailed observations their standard error
(~0.03-0.05) is as large as the lag-20 effect being tested.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from scipy.stats import kurtosis

from kernels.simulate import garch_unit_variance, markov_two_state_path
from research_lib.config import INTERVAL_MS, MarketConfig
from research_lib.sources import Source, get_source
from research_lib.sources.synthetic import (
    FUNDING_INTERVAL_MS,
    SyntheticMarketConfig,
    SyntheticSource,
    _simulate_minutes,
)

DAY_MS = 86_400_000
DEMO = MarketConfig()
DEMO_START_MS, DEMO_END_MS = DEMO.start_ms, DEMO.end_ms
YEAR_END_MS = DEMO_START_MS + 366 * DAY_MS
SYMBOLS = SyntheticMarketConfig().symbols


def _fetch(
    config: SyntheticMarketConfig, interval: str, start_ms: int, end_ms: int
) -> pl.DataFrame:
    return SyntheticSource(config).fetch(
        dataset="bars", symbols=config.symbols, interval=interval, start_ms=start_ms, end_ms=end_ms
    )


def _log_returns(bars: pl.DataFrame) -> np.ndarray:
    """Hourly log returns as a (time, symbol) array, symbols in sorted order."""
    wide = bars.pivot(on="symbol", index="ts", values="close").sort("ts")
    return np.diff(np.log(wide.select(sorted(set(bars["symbol"]))).to_numpy()), axis=0)


def _acf(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float((x[lag:] * x[:-lag]).sum() / (x * x).sum())


def _mean_pairwise_correlation(returns: np.ndarray) -> float:
    corr = np.corrcoef(returns.T)
    return float(corr[np.triu_indices_from(corr, k=1)].mean())


@pytest.fixture(scope="module")
def demo_hourly() -> pl.DataFrame:
    return _fetch(SyntheticMarketConfig(), "1h", DEMO_START_MS, DEMO_END_MS)


@pytest.fixture(scope="module")
def year_returns() -> np.ndarray:
    return _log_returns(_fetch(SyntheticMarketConfig(), "1h", DEMO_START_MS, YEAR_END_MS))


# --- stylised facts -----------------------------------------------------------------------


def test_hourly_returns_have_fat_tails(demo_hourly: pl.DataFrame) -> None:
    excess = kurtosis(_log_returns(demo_hourly), axis=0, fisher=True)
    assert (excess > 0).all(), excess


def test_absolute_returns_cluster_and_the_dependence_decays(year_returns: np.ndarray) -> None:
    for j in range(year_returns.shape[1]):
        absolute = np.abs(year_returns[:, j])
        acf = {lag: _acf(absolute, lag) for lag in (1, 5, 20)}
        assert min(acf.values()) > 0, (j, acf)
        assert acf[1] > acf[20], (j, acf)


def test_returns_are_nearly_uncorrelated(year_returns: np.ndarray) -> None:
    # Under "no linear dependence" acf(1) / SE is about N(0, 1), where SE must be the
    # heteroskedasticity-robust one: volatility clustering inflates it from the iid 0.011
    # (n = 8,783) to about 0.016. A 3-SE band (about +-0.05) leaves ~1% false alarms over
    # five assets for an arbitrary seed, while an AR(1) coefficient of 0.1 would fail it.
    for j in range(year_returns.shape[1]):
        r = year_returns[:, j] - year_returns[:, j].mean()
        robust_se = np.sqrt((r[1:] ** 2 * r[:-1] ** 2).sum()) / (r * r).sum()
        assert robust_se < 0.02, robust_se
        assert abs(_acf(r, 1)) < 3 * robust_se


@pytest.mark.parametrize("correlation", [0.3, 0.6, 0.85])
def test_average_pairwise_correlation_is_the_asked_one(correlation: float) -> None:
    config = SyntheticMarketConfig(correlation=correlation)
    returns = _log_returns(_fetch(config, "1h", DEMO_START_MS, DEMO_END_MS))
    assert abs(_mean_pairwise_correlation(returns) - correlation) < 0.1


def test_volume_rises_with_absolute_return_and_has_an_hour_of_day_cycle(
    demo_hourly: pl.DataFrame,
) -> None:
    frame = demo_hourly.with_columns(
        absolute_return=pl.col("close").log().diff().abs().over("symbol"),
        hour=(pl.col("ts") // INTERVAL_MS["1h"]) % 24,
    )
    by_symbol = frame.group_by("symbol").agg(pl.corr("volume", "absolute_return"))
    assert (by_symbol["volume"] > 0.1).all(), by_symbol
    by_hour = frame.group_by("symbol", "hour").agg(pl.col("volume").mean())
    ratio = by_hour.group_by("symbol").agg(pl.col("volume").max() / pl.col("volume").min())
    assert (ratio["volume"] > 1.2).all(), ratio


def test_demo_range_contains_a_regime_switch() -> None:
    source = SyntheticSource(SyntheticMarketConfig())
    regime = source.regimes(interval="1m", start_ms=DEMO_START_MS, end_ms=DEMO_END_MS)
    assert regime.schema == pl.Schema({"ts": pl.Int64, "regime": pl.Int8})
    assert regime["regime"].n_unique() == 2
    assert (regime["regime"].diff().drop_nulls() != 0).sum() >= 1


def test_funding_settles_every_8_hours_within_bounds_and_follows_the_trend() -> None:
    config = SyntheticMarketConfig()
    source = SyntheticSource(config)
    funding = source.fetch(
        dataset="funding",
        symbols=config.symbols,
        interval="8h",
        start_ms=DEMO_START_MS,
        end_ms=DEMO_END_MS,
    )
    assert funding.schema == pl.Schema(
        {"ts": pl.Int64, "symbol": pl.String, "funding_rate": pl.Float64, "mark_price": pl.Float64}
    )
    assert (funding["ts"] % FUNDING_INTERVAL_MS == 0).all()
    assert funding.height == len(config.symbols) * 3 * 91
    assert funding["funding_rate"].abs().max() <= 0.0075
    assert abs(funding["funding_rate"].mean() - 0.0001) < 0.0001
    # The mark price is the price at settlement: the open of the minute bar stamped ts.
    minutes = _fetch(config, "1m", DEMO_START_MS, DEMO_END_MS).select("ts", "symbol", "open")
    joined = funding.join(minutes, on=["ts", "symbol"], how="left")
    assert (joined["mark_price"] == joined["open"]).all()
    trend = funding.with_columns(
        trend=pl.col("mark_price").log().diff(3).over("symbol")
    ).drop_nulls()
    assert trend.select(pl.corr("funding_rate", "trend")).item() > 0.3


# --- OHLC, aggregation, range independence ------------------------------------------------


def _assert_ohlc_consistent(bars: pl.DataFrame) -> None:
    checks = bars.select(
        positive=(pl.col("low") > 0).all(),
        low=(pl.col("low") <= pl.min_horizontal("open", "close")).all(),
        high=(pl.max_horizontal("open", "close") <= pl.col("high")).all(),
    )
    assert checks.row(0) == (True, True, True), checks


def test_demo_minute_bars_are_ohlc_consistent_and_schema_exact() -> None:
    bars = _fetch(SyntheticMarketConfig(), "1m", DEMO_START_MS, DEMO_END_MS)
    assert bars.schema == pl.Schema(
        {
            "ts": pl.Int64,
            "symbol": pl.String,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        }
    )
    assert bars.equals(bars.sort("symbol", "ts"))
    assert bars.height == 5 * 91 * 1440
    _assert_ohlc_consistent(bars)
    assert (bars["volume"] > 0).all()


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    start_hour=st.integers(0, 24 * 20),
    hours=st.integers(1, 72),
    interval=st.sampled_from(["1m", "5m", "1h"]),
)
def test_ohlc_is_consistent_for_any_seed_and_range(
    seed: int, start_hour: int, hours: int, interval: str
) -> None:
    start_ms = DEMO_START_MS + start_hour * INTERVAL_MS["1h"]
    bars = _fetch(
        SyntheticMarketConfig(seed=seed), interval, start_ms, start_ms + hours * INTERVAL_MS["1h"]
    )
    _assert_ohlc_consistent(bars)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    interval=st.sampled_from(["1m", "15m", "1h", "4h", "1d"]),
    first=st.integers(0, 10),
    split=st.integers(1, 10),
    rest=st.integers(1, 10),
    dataset=st.sampled_from(["bars", "funding"]),
)
def test_fetch_is_range_independent(
    seed: int, interval: str, first: int, split: int, rest: int, dataset: str
) -> None:
    # Steps are scaled so that a, b and c usually fall on different days, which forces
    # three simulations of different lengths rather than one cached path.
    step_ms = max(INTERVAL_MS[interval], INTERVAL_MS["1h"]) * 7
    if dataset == "funding":
        interval, step_ms = "8h", FUNDING_INTERVAL_MS
    config = SyntheticMarketConfig(seed=seed)
    a = config.origin_ms + first * step_ms
    b, c = a + split * step_ms, a + (split + rest) * step_ms

    def fetch(start_ms: int, end_ms: int) -> pl.DataFrame:
        source = SyntheticSource(config)
        return source.fetch(
            dataset=dataset,
            symbols=["SOLUSDT", "BTCUSDT"],
            interval=interval,
            start_ms=start_ms,
            end_ms=end_ms,
        )

    joined = pl.concat([fetch(a, b), fetch(b, c)]).sort("symbol", "ts", maintain_order=True)
    assert_frame_equal(fetch(a, c), joined, check_exact=True)


@pytest.mark.parametrize(("fine", "coarse"), [("1m", "1h"), ("1m", "5m"), ("1h", "1d")])
def test_coarse_bars_are_the_exact_aggregation_of_fine_bars(fine: str, coarse: str) -> None:
    config = SyntheticMarketConfig()
    end_ms = DEMO_START_MS + 10 * DAY_MS
    aggregated = (
        _fetch(config, fine, DEMO_START_MS, end_ms)
        .group_by(pl.col("ts") // INTERVAL_MS[coarse] * INTERVAL_MS[coarse], "symbol")
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .sort("symbol", "ts")
    )
    direct = _fetch(config, coarse, DEMO_START_MS, end_ms)
    # Prices are selected, not computed, so they match bit for bit; volume is a float sum
    # whose rounding depends on summation order.
    assert_frame_equal(direct.drop("volume"), aggregated.drop("volume"), check_exact=True)
    np.testing.assert_allclose(direct["volume"], aggregated["volume"], rtol=1e-12)


def test_a_symbol_path_does_not_depend_on_the_other_symbols() -> None:
    alone = _fetch(SyntheticMarketConfig(symbols=("ETHUSDT",)), "1h", DEMO_START_MS, DEMO_END_MS)
    together = _fetch(SyntheticMarketConfig(), "1h", DEMO_START_MS, DEMO_END_MS)
    assert_frame_equal(alone, together.filter(pl.col("symbol") == "ETHUSDT"), check_exact=True)


def test_a_second_interval_over_the_same_range_reuses_the_simulation() -> None:
    source = SyntheticSource(SyntheticMarketConfig(seed=123))
    _simulate_minutes.cache_clear()
    for interval in ("1h", "1m", "4h"):
        source.fetch(
            dataset="bars",
            symbols=["BTCUSDT"],
            interval=interval,
            start_ms=DEMO_START_MS,
            end_ms=DEMO_START_MS + 5 * DAY_MS,
        )
    assert _simulate_minutes.cache_info().misses == 1


# --- determinism --------------------------------------------------------------------------


def _parquet_sha256(seed: int) -> str:
    _simulate_minutes.cache_clear()  # so each call really simulates
    bars = _fetch(SyntheticMarketConfig(seed=seed), "1h", DEMO_START_MS, DEMO_END_MS)
    buffer = io.BytesIO()
    bars.write_parquet(buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_same_seed_gives_identical_parquet_bytes_and_another_seed_does_not() -> None:
    assert _parquet_sha256(7) == _parquet_sha256(7)
    assert _parquet_sha256(7) != _parquet_sha256(8)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dataset": "trades"}, r"dataset='trades'.*'bars', 'funding'"),
        ({"symbols": ["DOTUSDT"]}, r"symbol 'DOTUSDT'.*'BTCUSDT'"),
        ({"symbols": []}, r"symbols is empty"),
        ({"interval": "2h"}, r"interval='2h'.*'1m'.*'1d'"),
        ({"dataset": "funding"}, r"interval='1h'.*interval='8h'"),
        ({"start_ms": DEMO_START_MS - DAY_MS}, r"start_ms=.*before origin \(2024-01-01\)"),
        ({"start_ms": DEMO_START_MS + 1}, r"start_ms=.*not on the 3600000 ms bar grid"),
        ({"end_ms": DEMO_START_MS - 1}, r"end_ms=.*before start_ms"),
    ],
)
def test_bad_requests_name_the_field_and_the_fix(overrides: dict, message: str) -> None:
    request = {
        "dataset": "bars",
        "symbols": ["BTCUSDT"],
        "interval": "1h",
        "start_ms": DEMO_START_MS,
        "end_ms": DEMO_START_MS + DAY_MS,
    } | overrides
    with pytest.raises(ValueError, match=message):
        SyntheticSource(SyntheticMarketConfig()).fetch(**request)


def test_config_is_frozen_validated_and_hashed() -> None:
    config = SyntheticMarketConfig(origin=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    assert config.origin == dt.date(2024, 1, 1)
    assert config.id == SyntheticMarketConfig().id
    assert config.id != SyntheticMarketConfig(seed=8).id
    with pytest.raises(ValueError, match="garch_alpha"):
        SyntheticMarketConfig(garch_alpha=0.2, garch_beta=0.85)
    with pytest.raises(ValueError, match="duplicates"):
        SyntheticMarketConfig(symbols=("BTCUSDT", "BTCUSDT"))


def test_get_source_builds_the_synthetic_source_and_rejects_others() -> None:
    market = MarketConfig(seed=3, symbols=("BTCUSDT", "ETHUSDT"))
    source = get_source(market)
    assert isinstance(source, Source)
    assert isinstance(source, SyntheticSource)
    assert source.config.seed == 3
    assert source.config.symbols == ("BTCUSDT", "ETHUSDT")
    with pytest.raises(ValueError, match=r"source='kraken'.*'synthetic'"):
        get_source(MarketConfig.model_construct(source="kraken"))


# --- kernels against brute-force loops ----------------------------------------------------


def test_garch_unit_variance_matches_a_python_loop() -> None:
    shocks = np.random.default_rng(0).standard_normal((240, 2))
    expected = np.empty_like(shocks)
    for j in range(2):
        h = 1.0
        for block in range(0, 240, 60):
            expected[block : block + 60, j] = h
            news = shocks[block : block + 60, j].sum() ** 2 / 60
            h = (1 - 0.08 - 0.88) + (0.08 * news + 0.88) * h
    np.testing.assert_allclose(garch_unit_variance(shocks, 0.08, 0.88, 60), expected, rtol=1e-13)


def test_markov_two_state_path_matches_a_python_loop() -> None:
    uniforms = np.random.default_rng(1).random(500)
    expected, state = [0], 0
    for u in uniforms[1:]:
        if u < (0.05 if state == 0 else 0.2):
            state = 1 - state
        expected.append(state)
    np.testing.assert_array_equal(markov_two_state_path(uniforms, 0.05, 0.2, 0), expected)


def test_planted_lead_lag_makes_the_leader_predict_the_others_an_hour_ahead() -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    start = 1_704_067_200_000

    def hourly_returns(beta: float) -> dict[str, np.ndarray]:
        config = SyntheticMarketConfig(seed=3, symbols=symbols, lead_lag_beta=beta)
        bars = SyntheticSource(config).fetch(
            dataset="bars", symbols=list(symbols), interval="1h",
            start_ms=start, end_ms=start + 120 * 86_400_000,
        )  # fmt: skip
        return {
            s: np.diff(np.log(bars.filter(pl.col("symbol") == s).sort("ts")["close"].to_numpy()))
            for s in symbols
        }

    plain, planted = hourly_returns(0.0), hourly_returns(0.2)
    np.testing.assert_array_equal(plain["BTCUSDT"], planted["BTCUSDT"])  # the leader unchanged
    for follower in ("ETHUSDT", "SOLUSDT"):
        lagged = np.corrcoef(planted["BTCUSDT"][:-1], planted[follower][1:])[0, 1]
        before = np.corrcoef(plain["BTCUSDT"][:-1], plain[follower][1:])[0, 1]
        assert lagged > 0.08 > abs(before)
        # Exactly beta times the leader's previous hour was added to each hour.
        added = planted[follower][1:] - plain[follower][1:]
        np.testing.assert_allclose(added, 0.2 * plain["BTCUSDT"][:-1], atol=1e-12)
    with pytest.raises(ValueError, match="lead_lag_leader='BTCUSDT' is not among symbols"):
        SyntheticMarketConfig(symbols=("ETHUSDT",), lead_lag_beta=0.1)
