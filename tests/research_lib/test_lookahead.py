"""research_lib.validation: the look-ahead and warm-up detectors on clean and planted strategies.

Fixture: 30 days of hourly bars for two symbols from the seeded synthetic source
(``SyntheticMarketConfig(seed=7)``), 720 bars each.
"""

from __future__ import annotations

import functools

import numpy as np
import polars as pl
import pytest

from research_lib.config import StrategyConfig
from research_lib.sources.synthetic import SyntheticMarketConfig, SyntheticSource
from research_lib.strategies import ema_cross
from research_lib.validation import (
    LookaheadReport,
    WarmupReport,
    detect_lookahead,
    detect_warmup_dependence,
)

START_MS = 1_704_067_200_000  # 2024-01-01, the synthetic origin
HOUR_MS = 3_600_000
N_BARS = 720
EMA_CROSS = StrategyConfig(fast_bars=5, slow_bars=20)


@functools.cache
def synthetic_bars() -> pl.DataFrame:
    source = SyntheticSource(SyntheticMarketConfig(seed=7, symbols=("BTCUSDT", "ETHUSDT")))
    return source.fetch(
        dataset="bars",
        symbols=["BTCUSDT", "ETHUSDT"],
        interval="1h",
        start_ms=START_MS,
        end_ms=START_MS + N_BARS * HOUR_MS,
    )


@pytest.fixture
def bars() -> pl.DataFrame:
    return synthetic_bars()


def _with_target(frame: pl.DataFrame, target: pl.Series | np.ndarray) -> pl.DataFrame:
    return frame.with_columns(pl.Series("target", target, dtype=pl.Float64))


# Planted look-ahead --------------------------------------------------------------------------


def peeks_next_close(frame: pl.DataFrame) -> pl.DataFrame:
    close = frame["close"]
    return _with_target(frame, (close.shift(-1) > close).cast(pl.Float64))


def normalises_by_full_max(frame: pl.DataFrame) -> pl.DataFrame:
    return _with_target(frame, frame["close"] / frame["close"].max())


def centred_rolling_mean(frame: pl.DataFrame) -> pl.DataFrame:
    close = frame["close"]
    mean = close.rolling_mean(window_size=11, center=True)
    return _with_target(frame, (close > mean).cast(pl.Float64))


def peeks_only_eth(frame: pl.DataFrame) -> pl.DataFrame:
    if frame["symbol"][0] == "ETHUSDT":
        return peeks_next_close(frame)
    return _with_target(frame, (frame["close"] > frame["close"].shift(1)).cast(pl.Float64))


# Start dependence ------------------------------------------------------------------------------


def cumulative_zscore(frame: pl.DataFrame) -> pl.DataFrame:
    """Causal, but its mean and std accumulate from the first bar it is given."""
    close = frame["close"].to_numpy()
    count = np.arange(1, close.size + 1)
    mean = np.cumsum(close) / count
    var = np.cumsum(close**2) / count - mean**2
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (close - mean) / np.sqrt(var)
    return _with_target(frame, np.where(z > 0.5, 1.0, 0.0))


def ema_seeded_from_full_mean(frame: pl.DataFrame) -> pl.DataFrame:
    close = frame["close"].to_numpy()
    alpha = 2.0 / 21.0
    ema = np.empty_like(close)
    ema[0] = close.mean()  # the planted bug: a full-history statistic seeds the recursion
    for i in range(1, close.size):
        ema[i] = alpha * close[i] + (1 - alpha) * ema[i - 1]
    return _with_target(frame, close - ema)


def proper_ema_gap(frame: pl.DataFrame) -> pl.DataFrame:
    close = frame["close"]
    return _with_target(frame, close - close.ewm_mean(span=20, adjust=False))


# Clean strategies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signal_fn",
    [EMA_CROSS, functools.partial(ema_cross.signals, config=EMA_CROSS)],
    ids=["config", "callable"],
)
def test_ema_cross_passes_both_detectors(bars: pl.DataFrame, signal_fn: object) -> None:
    lookahead = detect_lookahead(bars, signal_fn, n_checks=30, seed=3)
    assert isinstance(lookahead, LookaheadReport)
    assert lookahead.clean
    assert lookahead.n_checks == 60 and lookahead.n_mismatches == 0
    assert lookahead.first_mismatch is None and lookahead.frame().height == 0
    assert set(lookahead.cut_points["symbol"]) == {"BTCUSDT", "ETHUSDT"}
    assert lookahead.cut_points["row"].min() >= 99  # min_history_bars=100 by default
    warmup = detect_warmup_dependence(bars, signal_fn, warmup_bars=200)
    assert isinstance(warmup, WarmupReport)
    assert warmup.clean, warmup.frame()
    assert set(warmup.converged_after_bars) == {50, 200}
    assert all(v is not None and v <= 200 for v in warmup.converged_after_bars.values())


def test_cut_points_are_seeded(bars: pl.DataFrame) -> None:
    first = detect_lookahead(bars, EMA_CROSS, n_checks=10, seed=11).cut_points
    assert first.equals(detect_lookahead(bars, EMA_CROSS, n_checks=10, seed=11).cut_points)
    assert not first.equals(detect_lookahead(bars, EMA_CROSS, n_checks=10, seed=12).cut_points)


# Planted look-ahead is flagged ----------------------------------------------------------------


def test_next_close_lookahead_is_flagged_at_every_cut(bars: pl.DataFrame) -> None:
    report = detect_lookahead(bars, peeks_next_close, n_checks=20, seed=1)
    assert not report.clean
    assert report.n_checks == report.n_mismatches == 40
    first = report.first_mismatch
    earliest = report.cut_points.sort("ts", "symbol").row(0, named=True)
    assert (first.ts, first.symbol, first.column) == (earliest["ts"], earliest["symbol"], "target")
    assert first.full_value in (0.0, 1.0) and first.truncated_value is None
    frame = report.frame()
    assert frame.columns[:3] == ["symbol", "ts", "column"]
    assert frame.row(0, named=True)["ts"] == first.ts


@pytest.mark.parametrize("signal_fn", [normalises_by_full_max, centred_rolling_mean])
def test_full_sample_and_centred_lookahead_are_flagged(bars: pl.DataFrame, signal_fn) -> None:
    report = detect_lookahead(bars, signal_fn, n_checks=20, seed=1)
    assert not report.clean and report.n_mismatches > 0
    first = report.first_mismatch
    # The reported values are the real ones: recompute them by hand.
    symbol_bars = bars.filter(pl.col("symbol") == first.symbol)
    row = int(np.flatnonzero(symbol_bars["ts"].to_numpy() == first.ts)[0])
    full = signal_fn(symbol_bars)["target"][row]
    truncated = signal_fn(symbol_bars.slice(0, row + 1))["target"][row]
    assert (first.full_value, first.truncated_value) == (full, truncated)
    assert full != truncated


def test_report_names_the_symbol_that_peeks(bars: pl.DataFrame) -> None:
    report = detect_lookahead(bars, peeks_only_eth, n_checks=15, seed=2)
    assert not report.clean
    assert report.n_mismatches == 15
    assert {m.symbol for m in report.mismatches} == {"ETHUSDT"}
    matched = report.cut_points.filter(pl.col("match"))
    assert set(matched["symbol"]) == {"BTCUSDT"}


# Warm-up dependence ----------------------------------------------------------------------------


def test_cumulative_state_is_causal_but_start_dependent(bars: pl.DataFrame) -> None:
    assert detect_lookahead(bars, cumulative_zscore, n_checks=20).clean
    report = detect_warmup_dependence(bars, cumulative_zscore, warmup_bars=200)
    assert not report.clean
    assert report.converged_after_bars[200] is None or report.converged_after_bars[200] > 200
    first = report.first_mismatch
    assert first.offset_bars in (50, 200) and first.column == "target"
    start_ts = bars.filter(pl.col("symbol") == first.symbol)["ts"][first.offset_bars]
    assert first.ts >= start_ts + 200 * HOUR_MS  # only rows after the warm-up are reported


def test_ema_seeded_from_full_mean_is_flagged_by_both(bars: pl.DataFrame) -> None:
    assert not detect_lookahead(bars, ema_seeded_from_full_mean, n_checks=10).clean
    report = detect_warmup_dependence(bars, ema_seeded_from_full_mean, warmup_bars=20)
    assert not report.clean
    assert report.frame()["n_mismatches"].min() > 0


def test_proper_ema_converges_after_its_warmup(bars: pl.DataFrame) -> None:
    without = detect_warmup_dependence(bars, proper_ema_gap, warmup_bars=0, tolerance=1e-9)
    assert not without.clean  # the EMA is seeded at the first close it sees
    converged = without.converged_after_bars
    assert all(0 < v <= 300 for v in converged.values())
    with_warmup = detect_warmup_dependence(bars, proper_ema_gap, warmup_bars=300, tolerance=1e-9)
    assert with_warmup.clean
    assert with_warmup.converged_after_bars == converged
    table = with_warmup.frame()
    assert table.columns == [
        "offset_bars",
        "symbol",
        "n_compared",
        "n_mismatches",
        "converged_after_bars",
    ]
    assert table.height == 4 and table["n_compared"].to_list() == [370, 370, 220, 220]


# Equality rules --------------------------------------------------------------------------------


def test_float_tolerance_and_nan_equality(bars: pl.DataFrame) -> None:
    def length_drift(frame: pl.DataFrame) -> pl.DataFrame:
        return _with_target(frame, frame["close"] + 1e-9 * frame.height)

    assert not detect_lookahead(bars, length_drift, n_checks=5).clean
    assert detect_lookahead(bars, length_drift, n_checks=5, tolerance=1e-3).clean

    def all_nan(frame: pl.DataFrame) -> pl.DataFrame:
        return _with_target(frame, np.full(frame.height, np.nan))

    assert detect_lookahead(bars, all_nan, n_checks=5).clean
    assert detect_warmup_dependence(bars, all_nan, warmup_bars=10).clean


def test_discrete_columns_compare_exactly(bars: pl.DataFrame) -> None:
    def side(frame: pl.DataFrame) -> pl.DataFrame:
        up = frame["close"] > frame["close"].shift(-1)
        return frame.with_columns(target=pl.lit(0.0), side=up.cast(pl.Int8))

    assert detect_lookahead(bars, side, n_checks=5).clean  # only "target" by default
    report = detect_lookahead(bars, side, n_checks=5, columns=("target", "side"), tolerance=5.0)
    assert not report.clean and {m.column for m in report.mismatches} == {"side"}


# Input validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"n_checks": 0}, "n_checks"),
        ({"seed": -1}, "seed"),
        ({"min_history_bars": 0}, "min_history_bars"),
        ({"min_history_bars": 720}, "min_history_bars"),
        ({"columns": ()}, "columns"),
        ({"columns": "target"}, "columns"),
        ({"columns": ("signal",)}, "columns"),
        ({"tolerance": -1.0}, "tolerance"),
        ({"tolerance": float("nan")}, "tolerance"),
    ],
)
def test_lookahead_rejects_bad_options(bars: pl.DataFrame, options: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        detect_lookahead(bars, EMA_CROSS, **options)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"start_offsets_bars": (0,)}, "start_offsets_bars"),
        ({"start_offsets_bars": (0, 50, 50)}, "start_offsets_bars"),
        ({"start_offsets_bars": (0, -5)}, "start_offsets_bars"),
        ({"start_offsets_bars": (0, 600), "warmup_bars": 200}, "start_offsets_bars"),
        ({"warmup_bars": -1}, "warmup_bars"),
    ],
)
def test_warmup_rejects_bad_options(bars: pl.DataFrame, options: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        detect_warmup_dependence(bars, EMA_CROSS, **options)


def test_rejects_bad_bars_and_signal_functions(bars: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="symbol"):
        detect_lookahead(bars.drop("symbol"), EMA_CROSS)
    with pytest.raises(TypeError, match="signal_fn"):
        detect_lookahead(bars, "ema_cross")
    with pytest.raises(ValueError, match="rows"):
        detect_lookahead(bars, lambda f: _with_target(f.head(5), np.zeros(5)))
    with pytest.raises(ValueError, match="DataFrame"):
        detect_warmup_dependence(bars, lambda f: f["close"])
