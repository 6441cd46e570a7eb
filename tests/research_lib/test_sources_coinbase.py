"""CoinbaseSource through HttpClient against the local server's Coinbase candles endpoint.

Served candles are a seeded random walk with trade-less gaps (Coinbase leaves them out) and
the real BTCUSDT spot hours relabelled as ``BTC-USD`` for a bit-exact round trip.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from servers.exchange_server import ExchangeServer, Fault
from servers.served_data import random_bars

from research_lib.sources.base import BARS_SCHEMA, DataError, SourceError, fetch_all
from research_lib.sources.coinbase import CoinbaseSource, parse_candles
from research_lib.sources.http import HttpClient

REAL_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
HOUR_MS = 3_600_000
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
BARS = 1_500
END_MS = START_MS + BARS * HOUR_MS


def _candles() -> pl.DataFrame:
    bars = random_bars(["BTC-USD"], start_ms=START_MS, bars=BARS, seed=9)
    hour = (pl.col("ts") - START_MS) // HOUR_MS
    return bars.filter(~(hour.is_between(400, 420) | (hour % 89 == 5)))


@pytest.fixture(scope="module")
def server() -> ExchangeServer:
    day = random_bars(["BTC-USD"], start_ms=START_MS, bars=400, interval="1d", seed=2)
    with ExchangeServer(coinbase_bars={"1h": _candles(), "1d": day}) as srv:
        yield srv


@pytest.fixture
def fresh(server: ExchangeServer) -> ExchangeServer:
    server.set_faults()
    return server


def _source(server: ExchangeServer, *, page_candles: int = 299, **options) -> CoinbaseSource:
    client = HttpClient(
        server.url,
        venue="coinbase",
        seed=0,
        sleep=lambda _: None,
        **{"timeout_s": 2.0, "max_concurrency": 3, **options},
    )
    return CoinbaseSource(client=client, page_candles=page_candles)


def _served(server: ExchangeServer, start: int, end: int, interval: str = "1h"):
    frame = server.frame("coinbase", interval, "BTC-USD")
    frame = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    return frame.select(pl.col(c).cast(t) for c, t in BARS_SCHEMA.items())


def _collect(source: CoinbaseSource, **kw) -> pl.DataFrame:
    options = {"interval": "1h", "start_ms": START_MS, "end_ms": END_MS, **kw}
    return fetch_all(source, dataset="bars", symbol="BTC-USD", **options)


def test_candles_newest_first_come_back_oldest_first_exactly(fresh: ExchangeServer) -> None:
    with _source(fresh) as source:
        got = _collect(source)
        assert source.client.stats["requests"] == 6  # ceil(1500 / 299)
    assert_frame_equal(got, _served(fresh, START_MS, END_MS))
    first = min(fresh.requests, key=lambda r: r.params["start"]).params
    assert first == {
        "granularity": "3600",
        "start": "2024-01-01T00:00:00Z",
        "end": "2024-01-13T11:00:00Z",  # the next window's first open: 300 candles at most
    }


def test_daily_granularity(fresh: ExchangeServer) -> None:
    end = START_MS + 400 * 24 * HOUR_MS
    with _source(fresh) as source:
        got = _collect(source, interval="1d", end_ms=end)
    assert_frame_equal(got, _served(fresh, START_MS, end, "1d"))


def test_4h_is_not_offered_and_says_what_to_do(fresh: ExchangeServer) -> None:
    with _source(fresh) as source, pytest.raises(ValueError, match="collect 1h and aggregate"):
        _collect(source, interval="4h")


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    page_candles=st.integers(min_value=1, max_value=299),
    start=st.integers(min_value=-10, max_value=BARS),
    length=st.integers(min_value=0, max_value=BARS),
    offset_ms=st.integers(min_value=0, max_value=HOUR_MS - 1),
)
def test_any_page_size_and_range_give_the_served_rows(
    server: ExchangeServer, page_candles: int, start: int, length: int, offset_ms: int
) -> None:
    server.set_faults()
    length = min(length, 20 * page_candles)
    lo = START_MS + start * HOUR_MS - offset_ms
    with _source(server, page_candles=page_candles) as source:
        got = _collect(source, start_ms=lo, end_ms=lo + length * HOUR_MS)
    assert_frame_equal(got, _served(server, lo, lo + length * HOUR_MS))


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (Fault("429", nth=(2,), retry_after_s=0.0), "429"),
        (Fault("503", nth=(1, 4)), "5xx"),
        (Fault("truncate", nth=(3,)), "bad_json"),
        (Fault("drop", nth=(2,)), "dropped"),
        (Fault("slow", nth=(1,), delay_s=4.0), "timeout"),
    ],
    ids=lambda value: value.kind if isinstance(value, Fault) else value,
)
def test_a_transient_fault_heals_to_exactly_the_served_rows(
    fresh: ExchangeServer, fault: Fault, cause: str
) -> None:
    fresh.set_faults(fault)
    with _source(fresh, timeout_s=2.0) as source:
        got = _collect(source)
        stats = source.client.stats
    assert_frame_equal(got, _served(fresh, START_MS, END_MS))
    assert stats["retries"] == {cause: sum(r.fault is not None for r in fresh.requests)}


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("wrong_shape", "expected a JSON list of candles, got dict"),
        ("short_row", "candle row 295 is [1704067200, "),  # the oldest, after 4 gaps
        ("bad_number", "field 'open' = 'n/a'"),
        ("negative_price", "field 'low' = -"),
        ("off_grid", "is off the 3600000 ms grid"),
    ],
)
def test_a_bad_page_raises_data_error(fresh: ExchangeServer, kind: str, message: str) -> None:
    fresh.set_faults(Fault(kind, nth=(1,)))
    with _source(fresh, max_concurrency=1) as source, pytest.raises(DataError) as caught:
        _collect(source)
    text = str(caught.value)
    assert text.startswith("coinbase GET /products/BTC-USD/candles granularity=3600 start=")
    assert message in text


def test_an_unknown_product_raises_coinbases_message_at_once(fresh: ExchangeServer) -> None:
    with _source(fresh) as source, pytest.raises(SourceError, match="HTTP 404 NotFound"):
        fetch_all(source, dataset="bars", symbol="NOPE-USD", interval="1h",
                  start_ms=START_MS, end_ms=END_MS)  # fmt: skip
    starts = [r.params["start"] for r in fresh.requests]
    assert len(starts) == len(set(starts))  # the windows in flight, each refused once


def test_parse_candles_takes_integers_and_floats_but_not_strings() -> None:
    frame = parse_candles([[3600, 1, 2.5, 1.5, 2, 10]], symbol="X-USD", where="w")
    assert frame.row(0) == (3_600_000, "X-USD", 1.5, 2.5, 1.0, 2.0, 10.0)
    with pytest.raises(DataError, match="'volume' = '10' at ts 3600000"):
        parse_candles([[3600, 1, 2.5, 1.5, 2, "10"]], symbol="X-USD", where="w")


@pytest.mark.real_data
def test_real_hours_round_trip_bit_for_bit() -> None:
    path = REAL_DATA / "cex" / "binance_spot_1h" / "BTCUSDT.parquet"
    if not path.exists():
        pytest.skip(f"real data not found at {REAL_DATA}")
    start, end = 1_672_531_200_000, 1_704_067_200_000  # 2023
    real = pl.read_parquet(path).filter(pl.col("ts").is_between(start, end - 1))
    real = real.with_columns(pl.lit("BTC-USD").alias("symbol"))
    with ExchangeServer(coinbase_bars={"1h": real}) as srv, _source(srv) as source:
        got = _collect(source, start_ms=start, end_ms=end)
    expected = real.select(pl.col(c).cast(t) for c, t in BARS_SCHEMA.items())
    assert got.height == expected.height > 8_000
    assert_frame_equal(got, expected, check_exact=True)
