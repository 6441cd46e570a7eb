"""The collector: only missing ranges are fetched, batches are logged, crashes resume cleanly.

These tests drive ``collect_market`` with an in-process paged source over a fixed frame (fast,
and it can fail on cue). The same collector against a real HTTP server speaking Binance's
protocol, and killed for real, is tested in ``test_collect_binance.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from research_lib.collect import CollectError, collect_market, missing_ranges
from research_lib.config import MarketConfig
from research_lib.lake import Lake
from research_lib.sources.base import SourceError, validate_page

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_704_067_200_000  # 2024-01-01


def _bars(
    symbols: tuple[str, ...], days: int, *, gap: tuple[int, int] | None = None
) -> pl.DataFrame:
    rng = np.random.default_rng(5)
    frames = []
    for symbol in symbols:
        ts = T0 + np.arange(days * 24, dtype=np.int64) * HOUR
        if gap is not None:
            ts = ts[(ts < T0 + gap[0] * HOUR) | (ts >= T0 + gap[1] * HOUR)]
        close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, ts.size)))
        frames.append(
            pl.DataFrame(
                {
                    "ts": ts,
                    "symbol": symbol,
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "volume": rng.uniform(1, 10, ts.size),
                }
            )
        )
    return pl.concat(frames)


class FrameSource:
    """Pages of ``limit`` rows from a frame; counts requests; can fail after N pages."""

    name = "binance"

    def __init__(self, bars: pl.DataFrame, *, limit: int = 50, fail_after: int | None = None):
        self.bars = bars
        self.limit = limit
        self.fail_after = fail_after
        self.requests: list[tuple[str, int, int]] = []

    def pages(
        self, *, dataset: str, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[pl.DataFrame]:
        assert dataset == "bars" and interval == "1h"
        cursor = start_ms
        while cursor < end_ms:
            if self.fail_after is not None and len(self.requests) >= self.fail_after:
                raise SourceError(f"connection lost at {cursor}")
            self.requests.append((symbol, cursor, end_ms))
            page = (
                self.bars.filter(
                    (pl.col("symbol") == symbol) & pl.col("ts").is_between(cursor, end_ms - 1)
                )
                .sort("ts")
                .head(self.limit)
            )
            if page.height == 0:
                return
            yield validate_page(page, dataset="bars", where="frame", interval_ms=HOUR)
            cursor = int(page["ts"][-1]) + HOUR


def _market(symbols: tuple[str, ...], start_day: int, end_day: int) -> MarketConfig:
    start = pl.Series([T0 + start_day * DAY]).cast(pl.Datetime("ms")).dt.date()[0]
    end = pl.Series([T0 + end_day * DAY]).cast(pl.Datetime("ms")).dt.date()[0]
    return MarketConfig(source="binance", symbols=symbols, interval="1h", start=start, end=end)


def _stored(lake: Lake) -> pl.DataFrame:
    frame = lake.read("bars").drop("source", "interval").sort("symbol", "ts")
    return frame.select("ts", "symbol", "open", "high", "low", "close", "volume")


def _expected(bars: pl.DataFrame, start_day: int, end_day: int) -> pl.DataFrame:
    lo, hi = T0 + start_day * DAY, T0 + end_day * DAY
    return bars.filter(pl.col("ts").is_between(lo, hi - 1)).sort("symbol", "ts")


NOW = T0 + 400 * DAY


def test_missing_ranges_matches_a_brute_force_grid() -> None:
    @given(
        st.integers(0, 40),
        st.integers(0, 40),
        st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=6),
    )
    def check(start: int, end: int, covered: list[tuple[int, int]]) -> None:
        covered = [(a, b) for a, b in covered if a < b]
        got = missing_ranges(start, end, covered)
        points = {t for a, b in got for t in range(a, b)}
        expected = {t for t in range(start, end) if not any(a <= t < b for a, b in covered)}
        assert points == expected
        assert all(a < b for a, b in got)  # no empty ranges
        assert all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(got))  # merged

    check()


def test_collects_exactly_the_source_rows_and_refetches_nothing(tmp_path: Path) -> None:
    bars = _bars(("BTCUSDT", "ETHUSDT"), 20, gap=(100, 133))
    source = FrameSource(bars, limit=100)
    lake = Lake(tmp_path)
    summary = collect_market(
        _market(("BTCUSDT", "ETHUSDT"), 0, 20), lake=lake, source=source, now_ms=NOW, progress=False
    )
    assert_frame_equal(_stored(lake), _expected(bars, 0, 20))
    assert summary["added"].to_list() == [447, 447] and summary["fetched"].to_list() == [447, 447]
    first = len(source.requests)
    again = collect_market(
        _market(("BTCUSDT", "ETHUSDT"), 0, 20), lake=lake, source=source, now_ms=NOW, progress=False
    )
    assert len(source.requests) == first  # the log covers the range, the outage gap included
    assert again["fetched"].to_list() == [0, 0] and again["stored"].to_list() == [447, 447]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cuts=st.lists(st.integers(1, 29), min_size=1, max_size=3, unique=True),
    limit=st.integers(7, 200),
)
def test_collecting_in_pieces_gives_the_lake_of_one_collection(
    tmp_path_factory: pytest.TempPathFactory, cuts: list[int], limit: int
) -> None:
    bars = _bars(("BTCUSDT",), 30, gap=(50, 60))
    whole = Lake(tmp_path_factory.mktemp("whole"))
    collect_market(
        _market(("BTCUSDT",), 0, 30),
        lake=whole,
        source=FrameSource(bars, limit=limit),
        now_ms=NOW,
        progress=False,
    )
    pieces = Lake(tmp_path_factory.mktemp("pieces"))
    bounds = [0, *sorted(cuts), 30]
    source = FrameSource(bars, limit=limit)
    for lo, hi in itertools.pairwise(bounds):
        collect_market(
            _market(("BTCUSDT",), lo, hi), lake=pieces, source=source, now_ms=NOW, progress=False
        )
    assert_frame_equal(_stored(pieces), _stored(whole))
    # and the whole range, asked for again, fetches nothing
    before = len(source.requests)
    collect_market(
        _market(("BTCUSDT",), 0, 30), lake=pieces, source=source, now_ms=NOW, progress=False
    )
    assert len(source.requests) == before


def test_a_crash_mid_collection_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    bars = _bars(("BTCUSDT",), 30)
    lake = Lake(tmp_path)
    market = _market(("BTCUSDT",), 0, 30)
    crashing = FrameSource(bars, limit=24, fail_after=17)
    with pytest.raises(CollectError, match=r"bars BTCUSDT: SourceError: connection lost"):
        collect_market(
            market, lake=lake, source=crashing, now_ms=NOW, progress=False, flush_rows=100
        )
    partial = _stored(lake)
    # the flushed batches are stored (3 x 5 pages of 24 rows); the 2 buffered pages are not
    assert partial.height == 360
    assert_frame_equal(partial, _expected(bars, 0, 30).head(partial.height))
    resumed = FrameSource(bars, limit=24)
    collect_market(market, lake=lake, source=resumed, now_ms=NOW, progress=False, flush_rows=100)
    assert_frame_equal(_stored(lake), _expected(bars, 0, 30))
    # the resumed run starts where the last logged batch ended, not at the start
    assert resumed.requests[0][1] == T0 + 360 * HOUR


def test_a_failing_symbol_is_named_and_the_others_are_stored(tmp_path: Path) -> None:
    bars = _bars(("BTCUSDT",), 3)  # ETHUSDT is unknown to the source
    lake = Lake(tmp_path)

    class Picky(FrameSource):
        def pages(self, *, symbol: str, **kwargs: object) -> Iterator[pl.DataFrame]:
            if symbol == "ETHUSDT":
                raise SourceError("binance GET /api/v3/klines: 400 Invalid symbol.")
            yield from super().pages(symbol=symbol, **kwargs)

    with pytest.raises(CollectError, match=r"(?s)1 of 2 .*bars ETHUSDT: .*Invalid symbol"):
        collect_market(
            _market(("BTCUSDT", "ETHUSDT"), 0, 3),
            lake=lake,
            source=Picky(bars),
            now_ms=NOW,
            progress=False,
        )
    assert_frame_equal(_stored(lake), _expected(bars, 0, 3))


def test_the_open_interval_of_a_live_venue_is_left_for_later(tmp_path: Path) -> None:
    bars = _bars(("BTCUSDT",), 3)
    lake = Lake(tmp_path)
    now = T0 + 30 * HOUR + 5 * 60_000  # 06:05 on day 2: the 06:00 bar is still open
    collect_market(
        _market(("BTCUSDT",), 0, 3), lake=lake, source=FrameSource(bars), now_ms=now, progress=False
    )
    assert _stored(lake)["ts"].max() == T0 + 29 * HOUR
    later = FrameSource(bars)
    collect_market(_market(("BTCUSDT",), 0, 3), lake=lake, source=later, now_ms=NOW, progress=False)
    assert later.requests[0][1] == T0 + 30 * HOUR
    assert_frame_equal(_stored(lake), _expected(bars, 0, 3))
