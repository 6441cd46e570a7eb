"""BinanceSource through HttpClient against a real local server speaking Binance's wire format.

Every test compares the collected rows with the frame the server serves for the range, so a
fault either heals exactly (same rows, counted retries) or raises; nothing is silently lost
or added. The real-data round trip reads ``../shared/data/real`` (skipped when absent).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from servers.exchange_server import ExchangeServer, Fault
from servers.served_data import load_real, random_bars, random_funding

from research_lib.sources.base import (
    BARS_SCHEMA,
    FUNDING_SCHEMA,
    DataError,
    PagedSource,
    SourceError,
    fetch_all,
)
from research_lib.sources.binance import BinanceSource, parse_funding, parse_klines
from research_lib.sources.http import HttpClient

REAL_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
HOUR_MS = 3_600_000
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
BARS = 2_500
END_MS = START_MS + BARS * HOUR_MS
FUNDING_ROWS = 1_200


def _bars_frame() -> pl.DataFrame:
    return random_bars(["BTCUSDT", "ETHUSDT"], start_ms=START_MS, bars=BARS, seed=5)


def _with_gaps(bars: pl.DataFrame) -> pl.DataFrame:
    """Outages as in real data: a 30-hour hole, a 1,200-hour hole, and single missing bars."""
    hour = (pl.col("ts") - START_MS) // HOUR_MS
    hole = hour.is_between(100, 129) | hour.is_between(900, 2099) | (hour % 97 == 13)
    return bars.filter(~hole)


@pytest.fixture(scope="module")
def server() -> ExchangeServer:
    bars = _bars_frame()
    with ExchangeServer(
        spot_bars={
            "1h": bars,
            "4h": random_bars(["BTCUSDT"], start_ms=START_MS, bars=60, interval="4h"),
        },
        usdm_bars={"1h": _with_gaps(bars)},
        funding=random_funding("BTCUSDT", start_ms=START_MS, rows=FUNDING_ROWS, seed=5),
    ) as srv:
        yield srv


@pytest.fixture
def fresh(server: ExchangeServer) -> ExchangeServer:
    server.set_faults()
    return server


class _NoWait:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _source(
    server: ExchangeServer, market: str = "spot", *, page_limit: int = 1000, **client_options
) -> BinanceSource:
    client = HttpClient(
        server.url,
        venue=f"binance_{market}",
        seed=0,
        sleep=_NoWait(),
        weight_header="X-MBX-USED-WEIGHT-1M",
        weight_limit=1200 if market == "spot" else 2400,
        **{"timeout_s": 2.0, **client_options},
    )
    return BinanceSource(market, client=client, page_limit=page_limit)


def _served(server: ExchangeServer, market: str, symbol: str, start: int, end: int, **kw):
    interval = kw.get("interval", "1h")
    frame = server.frame(market, interval if market != "funding" else "", symbol)
    schema = FUNDING_SCHEMA if market == "funding" else BARS_SCHEMA
    frame = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    return frame.select(pl.col(c).cast(t) for c, t in schema.items())


def _collect(source: BinanceSource, *, dataset: str = "bars", symbol: str = "BTCUSDT", **kw):
    options = {"interval": "1h", "start_ms": START_MS, "end_ms": END_MS, **kw}
    return fetch_all(source, dataset=dataset, symbol=symbol, **options)


# -- parsing ----------------------------------------------------------------------------------


def test_parse_klines_reads_binances_own_body_exactly() -> None:
    # Verbatim shape of a Binance /api/v3/klines answer (8-decimal strings).
    body = [
        [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100",
         "148976.11427815", 1499644799999, "2434.19055334", 308, "1756.87402397",
         "28.46694368", "0"],
    ]  # fmt: skip
    frame, close_ms = parse_klines(body, symbol="LTCBTC", where="t")
    assert frame.schema == pl.Schema(BARS_SCHEMA)
    assert frame.row(0) == (1499040000000, "LTCBTC", 0.0163479, 0.8, 0.015758, 0.015771,
                            148976.11427815)  # fmt: skip
    assert close_ms.to_list() == [1499644799999]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"code": 0}, "expected a JSON list of klines, got dict"),
        ([[1, "1", "1", "1", "1", "1", 2]], "kline row 0 is"),
        ([[1, "x", "1", "1", "1", "1", 2, "0", 1, "0", "0", "0"]], "field 'open' = 'x' at ts 1"),
        ([["1", "1", "1", "1", "1", "1", 2, "0", 1, "0", "0", "0"]], "field 'openTime' = '1'"),
        ([[1, "1", "1", "1", "1", [], 2, "0", 1, "0", "0", "0"]], "field 'volume' = []"),
    ],
)
def test_parse_klines_rejects_bodies_of_the_wrong_shape(body: object, message: str) -> None:
    with pytest.raises(DataError, match=r"^where: .*" + message.replace("[", r"\[")):
        parse_klines(body, symbol="BTCUSDT", where="where")


def test_parse_funding_maps_missing_and_empty_mark_prices_to_nan() -> None:
    body = [
        {"symbol": "BTCUSDT", "fundingTime": 1, "fundingRate": "-0.0001"},
        {"symbol": "BTCUSDT", "fundingTime": 2, "fundingRate": "0.0001", "markPrice": ""},
        {"symbol": "BTCUSDT", "fundingTime": 3, "fundingRate": "0.0002", "markPrice": "5.5"},
    ]
    frame = parse_funding(body, symbol="BTCUSDT", where="w")
    assert frame["mark_price"].is_nan().to_list() == [True, True, False]
    assert frame["funding_rate"].to_list() == [-0.0001, 0.0001, 0.0002]
    with pytest.raises(DataError, match="'markPrice' = 'abc' at ts 3"):
        parse_funding([{**body[2], "markPrice": "abc"}], symbol="BTCUSDT", where="w")
    with pytest.raises(DataError, match="for symbol 'ETHUSDT'"):
        parse_funding([{**body[2], "symbol": "ETHUSDT"}], symbol="BTCUSDT", where="w")


# -- paging -----------------------------------------------------------------------------------


def test_bars_are_collected_page_by_page_exactly(fresh: ExchangeServer) -> None:
    with _source(fresh) as source:
        assert isinstance(source, PagedSource)
        pages = list(
            source.pages(
                dataset="bars", symbol="ETHUSDT", interval="1h", start_ms=START_MS, end_ms=END_MS
            )
        )
        assert source.client.stats["requests"] == 3
    assert [p.height for p in pages] == [1000, 1000, 500]
    assert_frame_equal(pl.concat(pages), _served(fresh, "spot", "ETHUSDT", START_MS, END_MS))
    first = fresh.requests[0].params
    assert first == {
        "symbol": "ETHUSDT",
        "interval": "1h",
        "startTime": str(START_MS),
        "endTime": str(END_MS - 1),
        "limit": "1000",
    }
    # After the first page, each request is one window of 1000 h (sent concurrently).
    assert sorted(int(r.params["startTime"]) for r in fresh.requests) == [
        START_MS,
        START_MS + 1000 * HOUR_MS,
        START_MS + 2000 * HOUR_MS,
    ]


def test_usdm_pages_use_fapi_and_its_1500_row_limit(fresh: ExchangeServer) -> None:
    with _source(fresh, "usdm", page_limit=5000) as source:
        got = _collect(source)
    assert_frame_equal(got, _served(fresh, "usdm", "BTCUSDT", START_MS, END_MS))
    assert {r.path for r in fresh.requests} == {"/fapi/v1/klines"}
    assert {r.params["limit"] for r in fresh.requests} == {"1500"}


def test_a_4h_interval_pages_on_its_own_grid(fresh: ExchangeServer) -> None:
    with _source(fresh, page_limit=7) as source:
        got = _collect(source, interval="4h", end_ms=START_MS + 60 * 4 * HOUR_MS)
    assert got.height == 60 and got["ts"].diff().drop_nulls().unique().to_list() == [4 * HOUR_MS]


def test_an_empty_or_dataless_range_yields_nothing(fresh: ExchangeServer) -> None:
    with _source(fresh) as source:
        assert list(source.pages(dataset="bars", symbol="BTCUSDT", interval="1h",
                                 start_ms=START_MS, end_ms=START_MS)) == []  # fmt: skip
        before = _collect(source, start_ms=START_MS - 10 * HOUR_MS, end_ms=START_MS)
    assert before.height == 0 and before.schema == pl.Schema(BARS_SCHEMA)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    page_limit=st.integers(min_value=1, max_value=1500),
    start=st.integers(min_value=-20, max_value=BARS),
    length=st.integers(min_value=0, max_value=BARS),
    offset_ms=st.integers(min_value=0, max_value=HOUR_MS - 1),
    split=st.floats(min_value=0.0, max_value=1.0),
)
def test_any_page_limit_and_range_split_give_the_served_rows(
    server: ExchangeServer,
    page_limit: int,
    start: int,
    length: int,
    offset_ms: int,
    split: float,
) -> None:
    server.set_faults()
    length = min(length, 30 * page_limit)  # at most ~60 requests per example
    lo = START_MS + start * HOUR_MS - offset_ms  # ranges need not sit on the grid
    hi = lo + length * HOUR_MS
    mid = lo + int((hi - lo) * split)
    with _source(server, "usdm", page_limit=page_limit) as source:
        whole = _collect(source, start_ms=lo, end_ms=hi)
        halves = pl.concat([_collect(source, start_ms=lo, end_ms=mid),
                            _collect(source, start_ms=mid, end_ms=hi)])  # fmt: skip
    expected = _served(server, "usdm", "BTCUSDT", lo, hi)
    assert_frame_equal(whole, expected)
    assert_frame_equal(halves, expected)


def test_a_candle_still_open_is_not_yielded(fresh: ExchangeServer) -> None:
    now_hour = int(time.time() * 1000) // HOUR_MS * HOUR_MS
    bars = random_bars(["BTCUSDT"], start_ms=now_hour - 5 * HOUR_MS, bars=6)
    with ExchangeServer(spot_bars={"1h": bars}) as live, _source(live) as source:
        got = _collect(source, start_ms=now_hour - 5 * HOUR_MS, end_ms=now_hour + 10 * HOUR_MS)
        requests = len(live.requests)
    assert got["ts"].to_list() == [now_hour - k * HOUR_MS for k in range(5, 0, -1)]
    assert requests == 1


# -- faults through the whole path -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (Fault("429", nth=(2,), retry_after_s=0.0), "429"),
        (Fault("418", nth=(2,), retry_after_s=1.0), "418"),
        (Fault("500", nth=(1, 3)), "5xx"),
        (Fault("502", nth=(2,)), "5xx"),
        (Fault("503", every=2), "5xx"),
        (Fault("truncate", nth=(2, 3)), "bad_json"),
        (Fault("not_json", nth=(1,)), "bad_json"),
        (Fault("drop", nth=(2,)), "dropped"),
        (Fault("drop_mid_body", nth=(3,)), "dropped"),
        (Fault("slow", nth=(2,), delay_s=4.0), "timeout"),
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
    assert_frame_equal(got, _served(fresh, "spot", "BTCUSDT", START_MS, END_MS))
    faulty = sum(r.fault is not None for r in fresh.requests)
    assert faulty >= 1
    assert stats["retries"] == {cause: faulty}
    assert stats["requests"] == 3 + faulty == len(fresh.requests)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("wrong_shape", "expected a JSON list of klines, got dict"),
        ("short_row", "kline row 0 is"),
        ("bad_number", "field 'open' = 'n/a'"),
        ("negative_price", "field 'low' = -"),
        ("off_grid", "field 'ts' = 1704157200001 .* is off the 3600000 ms grid"),
    ],
)
def test_a_bad_page_raises_data_error_and_no_row_of_it_is_yielded(
    fresh: ExchangeServer, kind: str, message: str
) -> None:
    fresh.set_faults(Fault(kind, nth=(2,)))
    # Page 2 of 25-row pages starts at START_MS + 25 h.
    yielded = []
    one_at_a_time = _source(fresh, page_limit=25, max_concurrency=1)  # request 2 is page 2
    with one_at_a_time as source, pytest.raises(DataError) as caught:
        for page in source.pages(
            dataset="bars", symbol="BTCUSDT", interval="1h", start_ms=START_MS, end_ms=END_MS
        ):
            yielded.append(page)
    text = str(caught.value)
    second = START_MS + 25 * HOUR_MS
    where = f"binance_spot GET /api/v3/klines symbol=BTCUSDT interval=1h startTime={second}"
    assert text.startswith(where)
    assert re.search(message, text), text
    assert len(yielded) == 1
    assert_frame_equal(yielded[0], _served(fresh, "spot", "BTCUSDT", START_MS, second))
    # A bad body is not retried: it would come back the same.
    assert [r.params["startTime"] for r in fresh.requests].count(str(second)) == 1


def test_persistent_5xx_raises_source_error_naming_venue_path_and_attempts(
    fresh: ExchangeServer,
) -> None:
    fresh.set_faults(Fault("502", every=1))
    with _source(fresh, max_retries=2) as source, pytest.raises(SourceError) as caught:
        _collect(source)
    text = str(caught.value)
    assert "binance_spot GET /api/v3/klines" in text and "after 3 attempt(s)" in text
    assert "'startTime': 1704067200000" in text


def test_an_invalid_symbol_raises_binances_message_at_once(fresh: ExchangeServer) -> None:
    with (
        _source(fresh) as source,
        pytest.raises(SourceError, match=r"Invalid symbol\. \(code -1121\)"),
    ):
        _collect(source, symbol="NOPEUSDT")
    assert len(fresh.requests) == 1


def test_funding_pages_by_funding_time_and_keeps_jitter_and_nan(fresh: ExchangeServer) -> None:
    end = START_MS + FUNDING_ROWS * 8 * HOUR_MS
    with _source(fresh, "usdm", page_limit=500) as source:
        got = _collect(source, dataset="funding", interval="8h", end_ms=end)
    expected = _served(fresh, "funding", "BTCUSDT", START_MS, end)
    assert_frame_equal(got, expected)
    assert got.height == FUNDING_ROWS and got["mark_price"].is_nan().sum() == FUNDING_ROWS // 3
    assert (got["ts"] % (8 * HOUR_MS)).max() > 0  # the ms jitter is kept
    starts = [int(r.params["startTime"]) for r in fresh.requests]
    assert starts[1] == int(got["ts"][499]) + 1
    assert {r.path for r in fresh.requests} == {"/fapi/v1/fundingRate"}


@pytest.mark.parametrize("missing", ["empty", "absent"])
def test_funding_mark_price_empty_or_absent_is_nan(missing: str) -> None:
    funding = random_funding("BTCUSDT", start_ms=START_MS, rows=30, seed=1)
    with (
        ExchangeServer(funding=funding, mark_price_missing=missing) as srv,
        _source(srv, "usdm") as source,
    ):
        got = _collect(source, dataset="funding", interval="8h", end_ms=START_MS + 10**12)
    assert_frame_equal(got, funding)


@pytest.mark.parametrize(
    ("kind", "message"),
    [("bad_number", "'fundingRate' = 'n/a'"), ("short_row", "funding row 0 is")],
)
def test_a_bad_funding_page_raises_data_error(
    fresh: ExchangeServer, kind: str, message: str
) -> None:
    fresh.set_faults(Fault(kind, nth=(1,)))
    with _source(fresh, "usdm") as source, pytest.raises(DataError, match=message):
        _collect(source, dataset="funding", interval="8h")


def test_funding_and_unknown_options_are_refused_clearly(fresh: ExchangeServer) -> None:
    with _source(fresh) as source:
        with pytest.raises(ValueError, match="needs market='usdm'"):
            _collect(source, dataset="funding")
        with pytest.raises(ValueError, match="interval='2h' is unknown"):
            _collect(source, interval="2h")
    with pytest.raises(ValueError, match="market='coin' is unknown"):
        BinanceSource("coin")


def test_the_base_url_comes_from_the_environment(
    fresh: ExchangeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESEARCH_BINANCE_USDM_URL", fresh.url)
    with BinanceSource("usdm") as source:
        assert source.client.base_url == fresh.url
        got = _collect(source, end_ms=START_MS + 10 * HOUR_MS)
    assert got.height == 10


# -- real values ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_server() -> ExchangeServer:
    if not (REAL_DATA / "cex" / "binance_spot_1h" / "BTCUSDT.parquet").exists():
        pytest.skip(f"real data not found at {REAL_DATA}")
    with ExchangeServer(**load_real(REAL_DATA, symbols=["BTCUSDT", "ETHUSDT"])) as srv:
        yield srv


def _real(market: str, symbol: str) -> pl.DataFrame:
    folder = {"spot": "binance_spot_1h", "usdm": "binance_usdm_perp_1h",
              "funding": "binance_usdm_funding"}[market]  # fmt: skip
    return pl.read_parquet(REAL_DATA / "cex" / folder / f"{symbol}.parquet")


@pytest.mark.real_data
@pytest.mark.parametrize(
    ("market", "symbol"), [("spot", "BTCUSDT"), ("spot", "ETHUSDT"), ("usdm", "BTCUSDT")]
)
def test_two_years_of_real_bars_round_trip_bit_for_bit(
    real_server: ExchangeServer, market: str, symbol: str
) -> None:
    start, end = 1_672_531_200_000, 1_735_689_600_000  # 2023-01-01 .. 2025-01-01
    with _source(real_server, market) as source:
        got = _collect(source, symbol=symbol, start_ms=start, end_ms=end)
    source_rows = _real(market, symbol).filter(pl.col("ts").is_between(start, end - 1))
    expected = source_rows.select(pl.col(c).cast(t) for c, t in BARS_SCHEMA.items())
    assert got.height == expected.height >= 17_000
    assert_frame_equal(got, expected, check_exact=True)
    for column in ("open", "high", "low", "close", "volume"):
        bits = got[column].to_numpy().view("int64")
        assert (bits == expected[column].to_numpy().view("int64")).all()


@pytest.mark.real_data
def test_real_funding_round_trips_with_its_jitter_and_nan_mark_prices(
    real_server: ExchangeServer,
) -> None:
    with _source(real_server, "usdm") as source:
        got = _collect(source, dataset="funding", interval="8h", start_ms=0, end_ms=2 * 10**12)
    expected = _real("funding", "BTCUSDT").select(
        pl.col(c).cast(t) for c, t in FUNDING_SCHEMA.items()
    )
    assert got.height == expected.height
    assert got["mark_price"].is_nan().sum() == expected["mark_price"].is_nan().sum() > 0
    assert_frame_equal(got, expected, check_exact=True)


def test_pages_after_the_first_are_fetched_concurrently_and_yielded_in_order(
    fresh: ExchangeServer,
) -> None:
    fresh.set_faults(Fault("slow", every=1, delay_s=0.05))
    with _source(fresh, "usdm", page_limit=100, max_concurrency=3) as source:
        got = _collect(source)
    assert_frame_equal(got, _served(fresh, "usdm", "BTCUSDT", START_MS, END_MS))
    assert fresh.max_in_flight == 3


def test_closing_the_page_iterator_early_stops_fetching(fresh: ExchangeServer) -> None:
    with _source(fresh, "usdm", page_limit=100, max_concurrency=2) as source:
        pages = source.pages(
            dataset="bars", symbol="BTCUSDT", interval="1h", start_ms=START_MS, end_ms=END_MS
        )
        first, second = next(pages), next(pages)
        pages.close()
        sent = len(fresh.requests)
        time.sleep(0.2)
    assert first["ts"][-1] < second["ts"][0]
    assert len(fresh.requests) == sent <= 2 + 2 * 2 + 2  # first, then a bounded prefetch


# --- the CSV fast path of kline bodies ----------------------------------------------------

_PRICE = st.floats(min_value=1e-12, max_value=1e12, allow_nan=False, allow_infinity=False)


def _kline_body(rows: list[tuple[float, ...]], fmt) -> bytes:
    parts = []
    for k, (o, h, lo, c, v) in enumerate(rows):
        ts = 1_600_000_000_000 + k * 3_600_000
        fields = [str(ts), *(f'"{fmt(x)}"' for x in (o, h, lo, c, v)), str(ts + 3_599_999)]
        fields += ['"1.5"', "7", '"0.5"', '"0.75"', '"0"']
        parts.append("[" + ",".join(fields) + "]")
    return ("[" + ",".join(parts) + "]").encode()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(_PRICE, _PRICE, _PRICE, _PRICE, _PRICE), min_size=1, max_size=40),
    fmt=st.sampled_from([repr, lambda x: f"{x:.8f}", lambda x: f"{x:.2e}"]),
)
def test_the_csv_fast_path_reads_exactly_what_json_and_float_read(rows, fmt) -> None:
    from research_lib.sources.binance import _decode_klines

    body = _kline_body(rows, fmt)
    fast = _decode_klines(body)
    assert isinstance(fast, pl.DataFrame)  # a well-formed body takes the fast path
    slow, close_ms = parse_klines(__import__("json").loads(body), symbol="X", where="t")
    assert_frame_equal(fast.select(slow.drop("symbol").columns), slow.drop("symbol"))
    assert fast["closeTime"].to_list() == close_ms.to_list()


@pytest.mark.parametrize(
    "body",
    [
        b'[[1600000000000,"1","2","0.5","1.5","3",1600003599999,"1",7,"1","1"]]',  # 11 fields
        b'[[1600000000000,"n/a","2","0.5","1.5","3",1600003599999,"1",7,"1","1","0"]]',
        b'[[1600000000000,"1,5","2","0.5","1.5","3",1600003599999,"1",7,"1","1","0"]]',
        b'[ [1600000000000,"1","2","0.5","1.5","3",1600003599999,"1",7,"1","1","0"] ]',
        b'{"code":-1,"msg":"x"}',
    ],
    ids=["short-row", "word", "comma", "spaces", "object"],
)
def test_anything_unusual_leaves_the_fast_path_for_json(body: bytes) -> None:
    from research_lib.sources.binance import _decode_klines

    assert not isinstance(_decode_klines(body), pl.DataFrame)


def test_a_truncated_body_is_not_json_so_the_client_retries_it() -> None:
    from research_lib.sources.binance import _decode_klines

    body = _kline_body([(1.0, 2.0, 0.5, 1.5, 3.0)] * 3, repr)
    with pytest.raises(ValueError):
        _decode_klines(body[: len(body) // 2])
