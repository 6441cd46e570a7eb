"""CoinGeckoSource through HttpClient against the local server's market_chart/range endpoint.

The server applies CoinGecko's automatic granularity (daily beyond 90 days), so collecting
hourly points in 89-day windows, and widening a short last window, are checked by the rows
that come back, not by trusting the request log.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from servers.exchange_server import ExchangeServer, Fault
from servers.served_data import random_coingecko

from research_lib.sources.base import DataError, SourceError
from research_lib.sources.coingecko import (
    COINGECKO_SCHEMA,
    CoinGeckoSource,
    parse_market_chart,
)
from research_lib.sources.http import HttpClient

REAL_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HOURS = 24 * 200
END_MS = START_MS + HOURS * HOUR_MS


@pytest.fixture(scope="module")
def server() -> ExchangeServer:
    prices = random_coingecko("bitcoin", start_ms=START_MS, hours=HOURS, seed=4)
    with ExchangeServer(coingecko_prices=prices) as srv:
        yield srv


@pytest.fixture
def fresh(server: ExchangeServer) -> ExchangeServer:
    server.set_faults()
    return server


def _source(server: ExchangeServer, **options) -> CoinGeckoSource:
    client = HttpClient(
        server.url, venue="coingecko", seed=0, sleep=lambda _: None,
        **{"timeout_s": 2.0, **options},
    )  # fmt: skip
    return CoinGeckoSource(client=client)


def _served(server: ExchangeServer, start: int, end: int) -> pl.DataFrame:
    frame = server.frame("coingecko", "", "bitcoin")
    frame = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    return frame.select(pl.col(c).cast(t) for c, t in COINGECKO_SCHEMA.items())


def _collect(source: CoinGeckoSource, *, interval: str = "1h", **kw) -> pl.DataFrame:
    options = {"start_ms": START_MS, "end_ms": END_MS, **kw}
    pages = list(source.pages(dataset="prices", symbol="bitcoin", interval=interval, **options))
    return pl.concat(pages) if pages else pl.DataFrame(schema=COINGECKO_SCHEMA)


def test_200_days_of_hourly_points_come_back_exactly_in_89_day_windows(
    fresh: ExchangeServer,
) -> None:
    with _source(fresh) as source:
        got = _collect(source)
    assert_frame_equal(got, _served(fresh, START_MS, END_MS))
    assert got.height == HOURS
    spans = [int(r.params["to"]) - int(r.params["from"]) for r in fresh.requests]
    assert len(spans) == 3 and all(DAY_MS // 1000 < s <= 90 * 86_400 for s in spans)


def test_a_short_range_is_widened_to_a_day_and_cut_back(fresh: ExchangeServer) -> None:
    start = START_MS + 10 * DAY_MS + 123
    with _source(fresh) as source:
        got = _collect(source, start_ms=start, end_ms=start + 5 * HOUR_MS)
    assert_frame_equal(got, _served(fresh, start, start + 5 * HOUR_MS))
    (request,) = fresh.requests
    assert int(request.params["to"]) - int(request.params["from"]) >= 86_400


def test_daily_points_come_from_requests_over_90_days(fresh: ExchangeServer) -> None:
    with _source(fresh) as source:
        got = _collect(source, interval="1d", end_ms=START_MS + 30 * DAY_MS)
    assert got.height == 30
    assert (got["ts"] // DAY_MS).diff().drop_nulls().unique().to_list() == [1]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(min_value=-5 * DAY_MS, max_value=HOURS * HOUR_MS),
    length=st.integers(min_value=0, max_value=HOURS * HOUR_MS),
)
def test_any_range_gives_the_served_points(server: ExchangeServer, start: int, length: int) -> None:
    server.set_faults()
    lo = START_MS + start
    with _source(server) as source:
        got = _collect(source, start_ms=lo, end_ms=lo + length)
    assert_frame_equal(got, _served(server, lo, lo + length))


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (Fault("429", nth=(1,), retry_after_s=0.0), "429"),
        (Fault("500", nth=(2,)), "5xx"),
        (Fault("truncate", nth=(3,)), "bad_json"),
        (Fault("drop", nth=(1,)), "dropped"),
        (Fault("slow", nth=(2,), delay_s=4.0), "timeout"),
    ],
    ids=lambda value: value.kind if isinstance(value, Fault) else value,
)
def test_a_transient_fault_heals_to_exactly_the_served_points(
    fresh: ExchangeServer, fault: Fault, cause: str
) -> None:
    fresh.set_faults(fault)
    with _source(fresh, timeout_s=2.0) as source:
        got = _collect(source)
        assert source.client.stats["retries"] == {cause: 1}
    assert_frame_equal(got, _served(fresh, START_MS, END_MS))


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("wrong_shape", "expected an object with lists"),
        ("short_row", "prices[0] is"),
        ("bad_number", "field 'price' = 'n/a'"),
        ("negative_price", "field 'price' = -"),
        ("off_grid", "total_volumes and prices disagree on timestamps at point 0"),
    ],
)
def test_a_bad_page_raises_data_error(fresh: ExchangeServer, kind: str, message: str) -> None:
    fresh.set_faults(Fault(kind, nth=(1,)))
    with _source(fresh) as source, pytest.raises(DataError) as caught:
        _collect(source)
    text = str(caught.value)
    assert text.startswith("coingecko GET /api/v3/coins/bitcoin/market_chart/range from=")
    assert message in text


def test_an_unknown_coin_raises_coingeckos_message_at_once(fresh: ExchangeServer) -> None:
    with _source(fresh) as source, pytest.raises(SourceError, match="HTTP 404 coin not found"):
        list(source.pages(dataset="prices", symbol="nope", interval="1h",
                          start_ms=START_MS, end_ms=START_MS + DAY_MS))  # fmt: skip
    assert len(fresh.requests) == 1


def test_null_values_become_nan_and_options_are_checked() -> None:
    body = {"prices": [[5, 1.5]], "market_caps": [[5, None]], "total_volumes": [[5, 0]]}
    frame = parse_market_chart(body, symbol="x", where="w")
    assert frame["market_cap"].is_nan().to_list() == [True]
    with pytest.raises(ValueError, match="use \\['1h', '1d'\\]"):
        CoinGeckoSource(base_url="http://x").pages(
            dataset="prices", symbol="x", interval="5m", start_ms=0, end_ms=1
        )


@pytest.mark.real_data
def test_real_closes_as_prices_round_trip_bit_for_bit() -> None:
    path = REAL_DATA / "cex" / "binance_spot_1h" / "ETHUSDT.parquet"
    if not path.exists():
        pytest.skip(f"real data not found at {REAL_DATA}")
    start, end = 1_672_531_200_000, 1_704_067_200_000  # 2023
    real = pl.read_parquet(path).filter(pl.col("ts").is_between(start, end - 1))
    prices = real.select(
        (pl.col("ts") + 4_321).alias("ts"),
        pl.lit("ethereum").alias("symbol"),
        pl.col("close").alias("price"),
        (pl.col("close") * 120_000_000.0).alias("market_cap"),
        (pl.col("volume") * pl.col("close")).alias("total_volume"),
    )
    with ExchangeServer(coingecko_prices=prices) as srv, _source(srv) as source:
        got = list(source.pages(dataset="prices", symbol="ethereum", interval="1h",
                                start_ms=start, end_ms=end))  # fmt: skip
    assert_frame_equal(pl.concat(got), prices, check_exact=True)
