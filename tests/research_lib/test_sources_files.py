"""File imports: real Binance candles written in each real file format, read back bit for bit.

The rows come from ``../shared/data/real/cex`` (Binance spot BTCUSDT 1h klines and USDⓈ-M
funding); each test writes them the way data.binance.vision or freqtrade lays them out, in
tmp_path, and checks that ``FileSource`` / ``read_candle_file`` give back the same floats.
"""

from __future__ import annotations

import doctest
import io
import itertools
import json
import tempfile
import zipfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from research_lib.sources import files
from research_lib.sources.base import (
    BARS_SCHEMA,
    FUNDING_SCHEMA,
    DataError,
    PagedSource,
    fetch_all,
)
from research_lib.sources.files import FileSource, interval_to_ms, read_candle_file

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
SPOT_1H = REAL / "cex" / "binance_spot_1h" / "BTCUSDT.parquet"
FUNDING = REAL / "cex" / "binance_usdm_funding" / "BTCUSDT.parquet"
HOUR = 3_600_000
JAN_2024 = 1_704_067_200_000
FEB_2024 = 1_706_745_600_000
APR_2024 = 1_711_929_600_000
FAR = 2**62
HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)


def _real(path: Path, schema: dict) -> pl.DataFrame:
    if not path.exists():
        pytest.skip(f"real data not found at {path}; fetch ../shared/data/real first")
    frame = pl.read_parquet(path).with_columns(pl.col("symbol").cast(pl.String))
    return frame.select(list(schema)).filter(pl.col("ts").is_between(JAN_2024, APR_2024, "left"))


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    """Binance spot BTCUSDT 1h, 2024-01 to 2024-03 (2,184 real bars)."""
    return _real(SPOT_1H, BARS_SCHEMA)


@pytest.fixture(scope="module")
def funding() -> pl.DataFrame:
    """Binance USDⓈ-M BTCUSDT funding, 2024-01 to 2024-03; dumps carry no mark price."""
    return _real(FUNDING, FUNDING_SCHEMA).with_columns(mark_price=float("nan"))


def month_of(frame: pl.DataFrame, month: int) -> pl.DataFrame:
    date = pl.from_epoch("ts", time_unit="ms")
    return frame.filter((date.dt.year() == 2024) & (date.dt.month() == month))


def kline_csv(frame: pl.DataFrame, *, micro: bool = False, header: bool = False, fmt=repr) -> str:
    """Rows as Binance writes them: 12 columns, times in ms (or µs, spot from 2025)."""
    scale = 1000 if micro else 1
    lines = [HEADER] if header else []
    for ts, _, o, h, lo, c, v in frame.iter_rows():
        close_time = (ts + HOUR) * scale - 1
        quote = fmt(c * v)
        fields = [ts * scale, fmt(o), fmt(h), fmt(lo), fmt(c), fmt(v), close_time, quote]
        lines.append(",".join(map(str, [*fields, 1234, fmt(v / 2), quote, 0])))
    return "\n".join(lines) + "\n"


def write_dump(path: Path, text: str) -> Path:
    """A ``.zip`` holding ``<stem>.csv`` as data.binance.vision ships it, or a bare ``.csv``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(path.with_suffix(".csv").name, text)
    else:
        path.write_text(text)
    return path


def write_months(folder: Path, bars: pl.DataFrame, **options) -> None:
    for month in (1, 2, 3):
        text = kline_csv(month_of(bars, month), **options)
        write_dump(folder / f"BTCUSDT-1h-2024-{month:02d}.zip", text)


def read_all(source, *, dataset="bars", symbol="BTCUSDT", interval="1h", start=0, end=FAR):
    return fetch_all(
        source, dataset=dataset, symbol=symbol, interval=interval, start_ms=start, end_ms=end
    )


@pytest.mark.real_data
@pytest.mark.parametrize(
    "options",
    [{}, {"micro": True}, {"header": True}, {"micro": True, "header": True}],
    ids=["ms", "µs", "ms-header", "µs-header"],
)
def test_binance_monthly_zips_give_the_source_rows_exactly(tmp_path, bars, options):
    write_months(tmp_path, bars, **options)
    source = FileSource(tmp_path)
    pages = list(
        source.pages(dataset="bars", symbol="BTCUSDT", interval="1h", start_ms=0, end_ms=FAR)
    )
    assert [p.height for p in pages] == [month_of(bars, m).height for m in (1, 2, 3)]
    assert_frame_equal(pl.concat(pages), bars)


@pytest.mark.real_data
def test_plain_csv_and_eight_decimal_numbers_read_like_the_zip(tmp_path, bars):
    """Binance prints ``42283.58000000``; that text is the same float as ``42283.58``."""
    january = month_of(bars, 1)
    path = write_dump(tmp_path / "BTCUSDT-1h-2024-01.csv", kline_csv(january, fmt="{:.8f}".format))
    assert_frame_equal(read_candle_file(path), january)


@pytest.mark.real_data
def test_range_symbol_and_interval_select_the_rows(tmp_path, bars):
    write_months(tmp_path, bars)
    other = kline_csv(month_of(bars, 1).with_columns(close=pl.col("close") * 2))
    write_dump(tmp_path / "ETHUSDT-1h-2024-01.zip", other)
    write_dump(tmp_path / "BTCUSDT-4h-2024-01.zip", other)
    (tmp_path / "BTCUSDT-1h-2024-01.zip.CHECKSUM").write_text("abc  BTCUSDT-1h-2024-01.zip\n")
    start, end = JAN_2024 + 500 * HOUR, FEB_2024 + 100 * HOUR
    got = read_all(FileSource(tmp_path), start=start, end=end)
    assert_frame_equal(got, bars.filter(pl.col("ts").is_between(start, end, "left")))
    eth = read_all(FileSource(tmp_path), symbol="ETHUSDT")
    assert eth["close"].to_list() == (month_of(bars, 1)["close"] * 2).to_list()
    assert read_all(FileSource(tmp_path), start=0, end=JAN_2024).height == 0


@pytest.mark.real_data
def test_daily_dumps_inside_a_monthly_one_are_read_once(tmp_path, bars):
    write_months(tmp_path, bars)
    january = month_of(bars, 1)
    for day in (1, 2, 31):
        rows = january.filter(pl.from_epoch("ts", time_unit="ms").dt.day() == day)
        write_dump(tmp_path / f"BTCUSDT-1h-2024-01-{day:02d}.zip", kline_csv(rows, micro=True))
    assert_frame_equal(read_all(FileSource(tmp_path)), bars)


@pytest.mark.real_data
def test_binance_funding_dump(tmp_path, funding):
    lines = ["calc_time,funding_interval_hours,last_funding_rate"]
    lines += [f"{ts},8,{rate!r}" for ts, _, rate, _ in month_of(funding, 2).iter_rows()]
    write_dump(tmp_path / "BTCUSDT-fundingRate-2024-02.zip", "\n".join(lines) + "\n")
    got = read_all(FileSource(tmp_path), dataset="funding", interval="8h")
    assert_frame_equal(got, month_of(funding, 2))
    assert read_all(FileSource(tmp_path)).height == 0  # a funding dump holds no bars


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["BTC_USDT-1h.json", "BTC_USDT_USDT-1h-futures.json.gz"])
def test_freqtrade_json(tmp_path, bars, name):
    candles = [[ts, o, h, lo, c, v] for ts, _, o, h, lo, c, v in bars.iter_rows()]
    text = json.dumps(candles)
    if name.endswith(".gz"):
        import gzip

        (tmp_path / name).write_bytes(gzip.compress(text.encode()))
    else:
        (tmp_path / name).write_text(text)
    assert_frame_equal(read_all(FileSource(tmp_path)), bars)
    assert_frame_equal(read_candle_file(tmp_path / name), bars)


@pytest.mark.real_data
@pytest.mark.parametrize("writer", ["pandas-ns-lz4", "polars-ms"])
def test_freqtrade_feather(tmp_path, bars, writer):
    path = tmp_path / "BTC_USDT-1h.feather"
    frame = bars.select(
        pl.from_epoch("ts", time_unit="ms").dt.replace_time_zone("UTC").alias("date"),
        "open", "high", "low", "close", "volume",
    )  # fmt: skip
    if writer == "pandas-ns-lz4":  # as freqtrade's FeatherDataHandler writes it
        pandas = frame.to_pandas()
        pandas["date"] = pandas["date"].astype("datetime64[ns, UTC]")
        pandas.to_feather(path, compression="lz4", compression_level=9)
    else:
        frame.write_ipc(path)
    assert_frame_equal(read_all(FileSource([path])), bars)
    start = FEB_2024 + 7 * HOUR
    got = read_all(FileSource(tmp_path), start=start, end=APR_2024)
    assert_frame_equal(got, bars.filter(pl.col("ts") >= start))


@pytest.mark.real_data
def test_freqtrade_json_and_feather_of_one_pair_agree(tmp_path, bars):
    candles = [[ts, o, h, lo, c, v] for ts, _, o, h, lo, c, v in bars.iter_rows()]
    (tmp_path / "BTC_USDT-1h.json").write_text(json.dumps(candles))
    bars.select(
        pl.from_epoch("ts", time_unit="ms").dt.replace_time_zone("UTC").alias("date"),
        "open", "high", "low", "close", "volume",
    ).write_ipc(tmp_path / "BTC_USDT-1h.feather")  # fmt: skip
    assert_frame_equal(read_all(FileSource(tmp_path)), bars)


def test_names_give_symbol_and_interval_arguments_fill_the_rest(tmp_path):
    rows = "0,1.0,2.0,0.5,1.5,10.0,3599999,15.0,3,5.0,7.5,0\n"
    path = write_dump(tmp_path / "export.csv", rows)
    assert read_candle_file(path, symbol="SOLUSDT", interval="1h")["symbol"].to_list() == [
        "SOLUSDT"
    ]
    with pytest.raises(ValueError, match="pass symbol="):
        read_candle_file(path)
    named = write_dump(tmp_path / "BTCUSDT-1h-1970-01.csv", rows)
    with pytest.raises(ValueError, match="file name says 'BTCUSDT'"):
        read_candle_file(named, symbol="ETHUSDT")
    for source in (FileSource([path]), FileSource(path)):
        assert read_all(source, symbol="XRPUSDT")["symbol"].to_list() == ["XRPUSDT"]
    assert isinstance(FileSource(path), PagedSource)


def test_interval_to_ms():
    assert interval_to_ms("1s") == 1_000
    assert interval_to_ms("15m") == 900_000
    assert interval_to_ms("12h") == 43_200_000
    for bad in ("1w", "1M", "h", "0m"):
        with pytest.raises(ValueError, match="whole number"):
            interval_to_ms(bad)


# --- errors: every one names the file, the field and the value --------------------------------

GOOD = "1704067200000,42283.58,42554.57,42261.02,42475.23,1271.68108,1704070799999,1,1,1,1,0"
NEXT = "1704070800000,42475.23,42775.0,42431.65,42613.56,1196.37856,1704074399999,1,1,1,1,0"


@pytest.mark.parametrize(
    ("second_row", "match"),
    [
        ("1704070800000,42475.23,42775.0", "line 2 has 3 fields, a Binance bars dump has 12"),
        (NEXT + ",7", "line 2 has 13 fields"),
        (NEXT.replace("42613.56", "4261x.56"), "field 'close' = '4261x.56' at line 2 is not a"),
        (NEXT.replace("42431.65", "-42431.65"), "field 'low' = -42431.65 at ts 1704070800000"),
        (NEXT.replace("1704070800000", "1704070800001", 1), "'ts' = 1704070800001 .* off the"),
        (GOOD, "'ts' = 1704067200000 .* more than once"),
        (NEXT.replace("1704070800000", "1704070800000000", 1), "ms but others in µs"),
    ],
    ids=["short", "long", "text-price", "negative", "off-grid", "duplicate", "mixed"],
)
def test_bad_rows_raise_naming_file_field_and_value(tmp_path, second_row, match):
    write_dump(tmp_path / "BTCUSDT-1h-2024-01.zip", f"{GOOD}\n{second_row}\n")
    with pytest.raises(DataError, match=match) as caught:
        read_all(FileSource(tmp_path))
    assert "BTCUSDT-1h-2024-01.zip" in str(caught.value)


def test_an_unknown_header_is_refused(tmp_path):
    path = write_dump(tmp_path / "BTCUSDT-1h-2024-01.csv", f"time,open\n{GOOD}\n")
    with pytest.raises(DataError, match="line 1 'time,open' is neither data nor the open_time"):
        read_candle_file(path)


def test_microseconds_must_be_whole_milliseconds(tmp_path):
    micro = GOOD.replace("1704067200000", "1704067200000123", 1)
    path = write_dump(tmp_path / "BTCUSDT-1h-2024-01.csv", micro + "\n")
    with pytest.raises(DataError, match="'open_time' = 1704067200000123 at line 1 is in µs but"):
        read_candle_file(path)


def test_a_row_outside_the_named_month_is_refused(tmp_path):
    path = write_dump(tmp_path / "BTCUSDT-1h-2024-02.csv", GOOD + "\n")
    with pytest.raises(DataError, match=r"BTCUSDT-1h-2024-02.csv: field 'ts' = 1704067200000 lies"):
        read_candle_file(path)


def test_conflicting_overlap_names_both_files(tmp_path):
    write_dump(tmp_path / "BTCUSDT-1h-2024-01.zip", f"{GOOD}\n{NEXT}\n")
    changed = NEXT.replace("42613.56", "42613.57")
    write_dump(tmp_path / "BTCUSDT-1h-2024-01-01.zip", changed + "\n")
    with pytest.raises(DataError) as caught:
        read_all(FileSource(tmp_path))
    message = str(caught.value)
    assert "BTCUSDT-1h-2024-01.zip" in message and "BTCUSDT-1h-2024-01-01.zip" in message
    assert "ts 1704070800000: field 'close' = 42613.57 in " in message
    assert message.endswith(
        "but 42613.56 in " + str(tmp_path / "BTCUSDT-1h-2024-01.zip") + "; remove the wrong file"
    )


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ([[0, 1.0, 2.0, 0.5, 1.5]], r"candle 0 = \[0, 1.0, 2.0, 0.5, 1.5\] is not"),
        ([[0, 1.0, 2.0, "x", 1.5, 1.0]], "field 'low' = 'x' at candle 0 is not a number"),
        ([[0.5, 1.0, 2.0, 0.5, 1.5, 1.0]], "field 'ts' = 0.5 at candle 0 is not a whole"),
        ([[0, 1.0, 2.0, 0.5, 0.0, 1.0]], "field 'close' = 0.0 at ts 0"),
        ({"data": []}, "a list of candles"),
    ],
)
def test_bad_freqtrade_json(tmp_path, payload, match):
    path = tmp_path / "BTC_USDT-1h.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=match) as caught:
        read_candle_file(path)
    assert "BTC_USDT-1h.json" in str(caught.value)


def test_feather_date_below_a_millisecond_is_refused(tmp_path):
    path = tmp_path / "BTC_USDT-1h.feather"
    date = pl.Series([1_500], dtype=pl.Datetime("us", "UTC"))
    pl.DataFrame(
        {"date": date, **{key: [1.0] for key in ("open", "high", "low", "close")}}
    ).with_columns(volume=pl.lit(1.0)).write_ipc(path)
    with pytest.raises(DataError, match=r"BTC_USDT-1h\.feather: field 'date' .* not a whole milli"):
        read_candle_file(path)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_all(FileSource(tmp_path / "nope"))
    (tmp_path / "README.txt").write_text("not data")
    with pytest.raises(FileNotFoundError, match="holds no auto candle files"):
        read_all(FileSource(tmp_path))


# --- properties ----------------------------------------------------------------------------------


@pytest.mark.real_data
@settings(max_examples=20, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 2_184), max_size=5),
    overlap=st.integers(0, 30),
    micro=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_any_split_into_overlapping_files_gives_the_same_rows(bars, cuts, overlap, micro):
    """Cut the rows anywhere, let neighbours share ``overlap`` bars, mix ms and µs files."""
    edges = sorted({0, bars.height, *cuts})
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for k, (lo, hi) in enumerate(itertools.pairwise(edges)):
            chunk = bars.slice(max(lo - overlap, 0), hi - max(lo - overlap, 0))
            text = kline_csv(chunk, micro=micro[k], header=k % 2 == 1)
            paths.append(write_dump(Path(folder) / f"part-{k}.zip", text))
        assert_frame_equal(read_all(FileSource(paths[::-1])), bars)


@pytest.mark.real_data
@settings(max_examples=15, deadline=None)
@given(days=st.sets(st.integers(1, 31)), with_month=st.booleans())
def test_any_mix_of_daily_and_monthly_dumps_gives_each_bar_once(bars, days, with_month):
    january = month_of(bars, 1)
    day = pl.from_epoch("ts", time_unit="ms").dt.day()
    with tempfile.TemporaryDirectory() as folder:
        if with_month:
            write_dump(Path(folder) / "BTCUSDT-1h-2024-01.zip", kline_csv(january))
        for d in days:
            rows = january.filter(day == d)
            write_dump(Path(folder) / f"BTCUSDT-1h-2024-01-{d:02d}.csv", kline_csv(rows))
        if not (days or with_month):
            return
        expected = january if with_month else january.filter(day.is_in(sorted(days)))
        assert_frame_equal(read_all(FileSource(folder)), expected)


def test_docstring_examples():
    assert doctest.testmod(files, raise_on_error=False).failed == 0


def test_a_zip_must_hold_one_csv(tmp_path):
    path = tmp_path / "BTCUSDT-1h-2024-01.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", GOOD)
        archive.writestr("b.csv", GOOD)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match=r"BTCUSDT-1h-2024-01.zip: a Binance dump holds one \.csv"):
        read_candle_file(path)


@pytest.mark.real_data
def test_source_files_collects_a_folder_of_dumps_into_the_lake(tmp_path, bars):
    from research_lib.collect import collect_market
    from research_lib.config import MarketConfig
    from research_lib.lake import Lake

    folder = tmp_path / "dumps"
    write_months(folder, bars, micro=True)
    market = MarketConfig(
        source="files",
        files_path=str(folder),
        symbols=("BTCUSDT",),
        start="2024-01-01",
        end="2024-04-01",
    )
    lake = Lake(tmp_path / "data")
    summary = collect_market(market, lake=lake, progress=False)
    assert summary["added"].to_list() == [bars.height]
    stored = lake.read("bars", filters={"source": "files"}).select(list(BARS_SCHEMA))
    assert_frame_equal(stored, bars)
    again = collect_market(market, lake=lake, progress=False)
    assert again["fetched"].to_list() == [0]


def test_source_files_needs_a_folder_and_only_with_it() -> None:
    from pydantic import ValidationError

    from research_lib.config import MarketConfig

    with pytest.raises(ValidationError, match="files_path='' goes with source='files'"):
        MarketConfig(source="files")
    with pytest.raises(ValidationError, match="files_path='/x' goes with source='files'"):
        MarketConfig(files_path="/x")
