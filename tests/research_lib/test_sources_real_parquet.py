"""Parquet files in the lake schema through ``FileSource``, and the ``real_btc_eth`` profile.

The real files are ``../shared/data/real/cex/binance_spot_1h/{BTC,ETH}USDT.parquet`` and
``cex/binance_usdm_funding/BTCUSDT.parquet`` (see that folder's PROVENANCE.md); tests that
read them skip when the folder is absent. The small tmp files use real values: the first
two BTCUSDT spot hours of 2024-01-01 from that data set.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from research_lib.collect import CollectError, collect_market
from research_lib.config import load_profile
from research_lib.lake import Lake
from research_lib.paths import real_data_dir
from research_lib.sources import get_source
from research_lib.sources.base import BARS_SCHEMA, FUNDING_SCHEMA, DataError, fetch_all
from research_lib.sources.files import FileSource, expand_path, read_candle_file

REAL = real_data_dir()
SPOT_1H = "cex/binance_spot_1h"
HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
FAR = 2**62
# BTCUSDT spot 1h, 2024-01-01 00:00 and 01:00, from the real data set.
ROWS = {
    "ts": [T0, T0 + HOUR],
    "symbol": ["BTCUSDT", "BTCUSDT"],
    "open": [42283.58, 42475.23],
    "high": [42554.57, 42775.0],
    "low": [42261.02, 42431.65],
    "close": [42475.23, 42613.56],
    "volume": [1271.68108, 1196.37856],
    "source": ["ElvisTV/backtestingbots_s1"] * 2,
}

needs_real = pytest.mark.skipif(
    not REAL.is_dir(), reason=f"real data set not found at {REAL} (RESEARCH_REAL_DATA_DIR)"
)


def read_all(source, *, dataset="bars", symbol="BTCUSDT", interval="1h", start=0, end=FAR):
    return fetch_all(
        source, dataset=dataset, symbol=symbol, interval=interval, start_ms=start, end_ms=end
    )


def real_rows(relative: str, schema: dict) -> pl.DataFrame:
    """A real file's rows as stored, in the source schema (categoricals as strings)."""
    frame = pl.read_parquet(REAL / relative).with_columns(pl.col("symbol").cast(pl.String))
    return frame.select(list(schema))


def write_parquet(path: Path, **changes) -> Path:
    """``ROWS`` with ``changes`` (column -> values), as a categorical-symbol parquet file."""
    frame = pl.DataFrame({**ROWS, **changes}).with_columns(
        pl.col("symbol", "source").cast(pl.Categorical)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return path


# --- the real files ------------------------------------------------------------------------------


@pytest.mark.real_data
@needs_real
@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_real_spot_parquet_reads_back_exactly(symbol):
    expected = real_rows(f"{SPOT_1H}/{symbol}.parquet", BARS_SCHEMA)
    got = read_all(FileSource("{real}/" + SPOT_1H), symbol=symbol)
    assert_frame_equal(got, expected)
    assert_frame_equal(read_candle_file(REAL / SPOT_1H / f"{symbol}.parquet"), expected)


@pytest.mark.real_data
@needs_real
def test_real_spot_parquet_range_is_cut_exactly():
    start, end = T0, T0 + 91 * 24 * HOUR  # 2024-01-01 to 2024-04-01
    expected = real_rows(f"{SPOT_1H}/ETHUSDT.parquet", BARS_SCHEMA).filter(
        pl.col("ts").is_between(start, end, "left")
    )
    got = read_all(FileSource("{real}/" + SPOT_1H), symbol="ETHUSDT", start=start, end=end)
    assert_frame_equal(got, expected)
    assert got.height == 2_184


@pytest.mark.real_data
@needs_real
def test_real_funding_keeps_binance_times_and_mark_prices():
    """Settlement times stay as recorded (``...200002``), so they match the Binance source."""
    expected = real_rows("cex/binance_usdm_funding/BTCUSDT.parquet", FUNDING_SCHEMA)
    got = read_all(FileSource("{real}/cex/binance_usdm_funding"), dataset="funding", interval="8h")
    assert_frame_equal(got, expected)
    assert got["ts"][0] == 1_619_827_200_002
    assert read_all(FileSource("{real}/cex/binance_usdm_funding")).height == 0  # holds no bars


# --- {real} --------------------------------------------------------------------------------------


def test_real_placeholder_expands_at_read_time(tmp_path, monkeypatch):
    write_parquet(tmp_path / "real" / "cex" / "BTCUSDT.parquet")
    source = FileSource("{real}/cex")  # nothing is looked up yet
    monkeypatch.setenv("RESEARCH_REAL_DATA_DIR", str(tmp_path / "real"))
    assert expand_path("{real}/cex") == (tmp_path / "real" / "cex").resolve()
    assert read_all(source)["close"].to_list() == ROWS["close"]
    assert read_all(FileSource(["{real}/cex/BTCUSDT.parquet"])).height == 2
    assert expand_path("data/{real}") == Path("data/{real}")  # only a leading {real}


def test_the_profile_id_does_not_name_the_machine(tmp_path, monkeypatch):
    first = load_profile("real_btc_eth")
    monkeypatch.setenv("RESEARCH_REAL_DATA_DIR", str(tmp_path))
    assert load_profile("real_btc_eth").id == first.id
    assert first.market.files_path == "{real}/cex/binance_spot_1h"
    assert first.backtest.apply_funding is False
    assert (first.backtest.fee_bps, first.backtest.slippage_bps) == (10.0, 2.0)


def test_a_missing_real_data_set_says_where_it_was_looked_for(tmp_path, monkeypatch):
    absent = tmp_path / "no-real-data"
    monkeypatch.setenv("RESEARCH_REAL_DATA_DIR", str(absent))
    with pytest.raises(FileNotFoundError) as caught:
        read_all(FileSource("{real}/" + SPOT_1H))
    message = str(caught.value)
    assert "the real data set was not found" in message
    assert str(absent) in message and "RESEARCH_REAL_DATA_DIR" in message
    market = load_profile("real_btc_eth").market
    with pytest.raises(CollectError, match="the real data set was not found: looked for it in"):
        collect_market(market, lake=Lake(tmp_path / "data"), progress=False)


def test_a_missing_folder_inside_the_real_data_set_is_named(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    monkeypatch.setenv("RESEARCH_REAL_DATA_DIR", str(tmp_path / "real"))
    with pytest.raises(FileNotFoundError, match="cex/nope is not in the real data set at"):
        read_all(FileSource("{real}/cex/nope"))


# --- tmp parquet files: names, symbols, bad rows -------------------------------------------------


def test_symbol_column_or_name_selects_the_file(tmp_path):
    write_parquet(tmp_path / "BTCUSDT.parquet")
    write_parquet(tmp_path / "eth.parquet", symbol=["ETHUSDT"] * 2, close=[1.0, 2.0])
    (tmp_path / "notes.txt").write_text("not data")
    assert read_all(FileSource(tmp_path))["close"].to_list() == ROWS["close"]
    assert read_all(FileSource(tmp_path), symbol="ETHUSDT")["close"].to_list() == [1.0, 2.0]
    assert read_all(FileSource(tmp_path), symbol="SOLUSDT").height == 0


def test_a_file_of_several_symbols_gives_each_its_rows(tmp_path):
    both = pl.concat(
        [pl.DataFrame(ROWS), pl.DataFrame(ROWS).with_columns(symbol=pl.lit("ETHUSDT"))]
    )
    both.write_parquet(tmp_path / "spot.parquet")
    for source in (FileSource(tmp_path), FileSource([tmp_path / "spot.parquet"])):
        assert read_all(source, symbol="ETHUSDT")["symbol"].to_list() == ["ETHUSDT"] * 2
    with pytest.raises(ValueError, match="pass symbol="):
        read_candle_file(tmp_path / "spot.parquet")


def test_no_symbol_column_takes_the_name_or_the_caller(tmp_path):
    pl.DataFrame(ROWS).drop("symbol", "source").write_parquet(tmp_path / "SOLUSDT.parquet")
    assert read_all(FileSource(tmp_path), symbol="SOLUSDT")["symbol"].to_list() == ["SOLUSDT"] * 2
    pl.DataFrame(ROWS).drop("symbol").write_parquet(tmp_path / "export.parquet")
    got = read_candle_file(tmp_path / "export.parquet", symbol="XRPUSDT")
    assert got["symbol"].to_list() == ["XRPUSDT"] * 2


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"low": [42261.02, -42431.65]}, r"field 'low' = -42431.65 at ts 1704070800000 .*price"),
        ({"close": [0.0, 42613.56]}, r"field 'close' = 0.0 at ts 1704067200000 .*price"),
        ({"ts": [T0, T0 + HOUR + 1]}, r"field 'ts' = 1704070800001 at ts 1704070800001 .*off the"),
        ({"ts": [T0, T0]}, r"field 'ts' = 1704067200000 at ts 1704067200000 .*more than once"),
        ({"volume": [1.0, -1.0]}, r"field 'volume' = -1.0 at ts 1704070800000"),
        ({"symbol": ["BTCUSDT", "ETHUSDT"]}, r"field 'symbol' = 'ETHUSDT' at ts 1704070800000"),
        ({"close": [42475.23, None]}, r"field 'close' is missing \(null\)"),
    ],
    ids=["negative", "zero", "off-grid", "duplicate", "volume", "symbol", "null"],
)
def test_bad_rows_name_file_field_ts_and_value(tmp_path, changes, match):
    path = write_parquet(tmp_path / "BTCUSDT.parquet", **changes)
    with pytest.raises(DataError, match=match) as caught:
        read_all(FileSource(tmp_path))
    assert str(caught.value).startswith(f"file {path}: ")


def test_columns_that_are_not_candles_are_refused(tmp_path):
    path = tmp_path / "BTCUSDT.parquet"
    pl.DataFrame(ROWS).drop("volume").write_parquet(path)
    with pytest.raises(DataError, match=r"BTCUSDT.parquet: a bars parquet file needs .*'volume'"):
        read_all(FileSource(tmp_path))
    pl.DataFrame(ROWS).with_columns(pl.from_epoch("ts", time_unit="ms")).write_parquet(path)
    with pytest.raises(DataError, match=r"column 'ts' is Datetime.*not integer epoch ms"):
        read_all(FileSource(tmp_path))
    path.write_text("not parquet")
    with pytest.raises(DataError, match=r"BTCUSDT.parquet: not a readable parquet file"):
        read_all(FileSource(tmp_path))


def test_funding_times_are_kept_but_must_sit_within_a_second_of_the_hour(tmp_path):
    funding = {"ts": [T0 + 2, T0 + 8 * HOUR + 47], "funding_rate": [1e-4, -2e-5]}
    pl.DataFrame(funding).write_parquet(tmp_path / "BTCUSDT.parquet")
    got = read_all(FileSource(tmp_path), dataset="funding", interval="8h")
    assert got["ts"].to_list() == funding["ts"]
    assert got["mark_price"].is_nan().all()  # no mark_price column: NaN, as the schema says
    pl.DataFrame({**funding, "ts": [T0, T0 + 8 * HOUR + 1_500]}).write_parquet(
        tmp_path / "BTCUSDT.parquet"
    )
    with pytest.raises(DataError, match=r"field 'ts' = 1704096001500 .* after a whole hour"):
        read_all(FileSource(tmp_path), dataset="funding", interval="8h")


# --- the profile's market, collected -------------------------------------------------------------


@pytest.mark.real_data
@needs_real
def test_collecting_the_profile_market_stores_every_real_bar(workspace):
    market = load_profile("real_btc_eth").market
    lake = Lake()  # the workspace's tmp data folder
    assert lake.root == workspace.data.resolve()
    summary = collect_market(market, lake=lake, progress=False)
    # 2 years = 17,544 hours; Binance spot was halted at 2023-03-24 13:00 UTC.
    assert summary.select("dataset", "symbol", "fetched", "added", "stored").rows() == [
        ("bars", "BTCUSDT", 17_543, 17_543, 17_543),
        ("bars", "ETHUSDT", 17_543, 17_543, 17_543),
    ]
    stored = lake.read("bars", filters={"source": "files", "symbol": "ETHUSDT"})
    expected = real_rows(f"{SPOT_1H}/ETHUSDT.parquet", BARS_SCHEMA).filter(
        pl.col("ts").is_between(market.start_ms, market.end_ms, "left")
    )
    assert_frame_equal(stored.select(list(BARS_SCHEMA)), expected)
    assert collect_market(market, lake=lake, progress=False)["fetched"].to_list() == [0, 0]
    assert isinstance(get_source(market), FileSource)
