"""Candle and funding files on disk behind the paged-source protocol.

Formats read (``kind``, and how ``"auto"`` tells them apart by the file's extension):

- ``"binance_dump"`` (``.zip`` holding one ``.csv``, or the bare ``.csv``): the public dumps
  of data.binance.vision. Klines ``BTCUSDT-1h-2024-01.zip`` (or ``-2024-01-15`` for a daily
  file) have 12 columns, open_time first; funding ``BTCUSDT-fundingRate-2024-01.zip`` has
  calc_time, funding_interval_hours, last_funding_rate. A header row is optional. Spot dumps
  from 2025 on count time in microseconds, older ones and futures in milliseconds: each file's
  unit is told by magnitude (a value >= 1e15 is microseconds) and converted exactly.
- ``"freqtrade_json"`` (``.json``, ``.json.gz``): ``[[open_ms, o, h, l, c, v], ...]``.
- ``"freqtrade_feather"`` (``.feather``): columns date (tz-aware datetime), open, high, low,
  close, volume.
- ``"parquet"`` (``.parquet``): a file in the lake's own schema, as in ``../shared/data/real``:
  ts (integer epoch ms), an optional symbol column, and either open, high, low, close, volume
  (bars) or funding_rate with an optional mark_price (funding); other columns (``source``)
  are ignored. The columns tell bars from funding. Funding times are kept as recorded, like
  every other funding source here: Binance stamps a settlement up to ~50 ms after the hour
  (``1619827200002``), and flooring it in one reader would give the same settlement two keys
  in the lake. A funding ts must still lie less than a second after a whole hour.

Symbol and interval come from the file name (freqtrade's ``BTC_USDT`` and ``BTC_USDT_USDT``
both mean ``BTCUSDT``; a parquet file's name is the symbol, ``BTCUSDT.parquet``, unless its
symbol column says it) or, where the name says nothing, from the caller. Every frame passes
``validate_page`` with the file's path as ``where``, so a bad row is reported by file, field,
ts and value.

A path may begin with ``{real}``, the real data set (``research_lib.paths.real_data_dir()``),
expanded when the files are read, so a profile's ``files_path`` (and its config id) does not
name a machine's folders: ``files_path: "{real}/cex/binance_spot_1h"``.
"""

from __future__ import annotations

import calendar
import dataclasses
import gzip
import json
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl

from research_lib.paths import real_data_dir
from research_lib.sources.base import SCHEMAS, DataError, validate_page

__all__ = ["KINDS", "REAL", "FileSource", "expand_path", "interval_to_ms", "read_candle_file"]

KINDS = ("auto", "binance_dump", "freqtrade_json", "freqtrade_feather", "parquet")
REAL = "{real}"
"""Placeholder for ``research_lib.paths.real_data_dir()`` at the start of a path."""
_SUFFIXES = {
    "binance_dump": (".zip", ".csv"),
    "freqtrade_json": (".json", ".json.gz"),
    "freqtrade_feather": (".feather",),
    "parquet": (".parquet",),
}
_KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
_FUNDING_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")
_OHLCV = ("open", "high", "low", "close", "volume")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_MICROSECONDS_FROM = 10**15  # ms timestamps reach 1e15 only in the year 33658
_BINANCE_NAME = re.compile(
    r"(?P<symbol>[A-Z0-9]+)-(?P<interval>\d+[smhdwM]|fundingRate)"
    r"-(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?\.(?:zip|csv)"
)
_FREQTRADE_NAME = re.compile(
    r"(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)(?:_[A-Za-z0-9]+)?-(?P<interval>\d+[smhdwM])"
    r"(?:-(?P<candle>[A-Za-z_]+))?\.(?:json|json\.gz|feather)"
)
_PARQUET_NAME = re.compile(r"(?P<symbol>[A-Z0-9]+)\.parquet")
_FUNDING_JITTER_MS = 1_000  # a settlement is stamped up to ~50 ms after its hour


def expand_path(path: str | Path) -> Path:
    """``path`` with a leading ``{real}`` replaced by ``research_lib.paths.real_data_dir()``.

    Raises
    ------
    FileNotFoundError
        When ``path`` starts with ``{real}`` and the real data set, or the part of it named,
        is not there; the message gives the folder looked in and ``RESEARCH_REAL_DATA_DIR``.

    Examples
    --------
    >>> import os, tempfile, unittest.mock
    >>> folder = tempfile.mkdtemp()
    >>> with unittest.mock.patch.dict(os.environ, {"RESEARCH_REAL_DATA_DIR": folder}):
    ...     expand_path("{real}") == Path(folder).resolve()
    True
    >>> expand_path("/data/BTCUSDT-1h-2024-01.zip")
    PosixPath('/data/BTCUSDT-1h-2024-01.zip')
    """
    text = str(path)
    if not text.startswith(REAL):
        return Path(text)
    root = real_data_dir()
    expanded = Path(str(root) + text[len(REAL) :])
    if not root.is_dir():
        told = "the default, ../shared/data/real beside the checkout"
        if os.environ.get("RESEARCH_REAL_DATA_DIR"):
            told = "from RESEARCH_REAL_DATA_DIR"
        raise FileNotFoundError(
            f"{text}: the real data set was not found: looked for it in {root} ({told}); "
            f"fetch it there or set RESEARCH_REAL_DATA_DIR to where it is"
        )
    if not expanded.exists():
        raise FileNotFoundError(
            f"{text}: {expanded} is not in the real data set at {root} "
            f"(research_lib.paths.real_data_dir()); check the path after {REAL}"
        )
    return expanded


def interval_to_ms(interval: str) -> int:
    """Milliseconds of a Binance-style interval (``"1s"``, ``"15m"``, ``"4h"``, ``"1d"``).

    Weeks and months are refused: their bars do not sit on a grid counted from the epoch.
    """
    match = re.fullmatch(r"(\d+)([smhd])", interval)
    if match is None or int(match[1]) == 0:
        raise ValueError(f"interval={interval!r} is not a whole number of s, m, h or d (e.g. '1h')")
    return int(match[1]) * _UNIT_MS[match[2]]


@dataclasses.dataclass(frozen=True)
class _FileInfo:
    """What a file's name says; None where it says nothing."""

    path: Path
    kind: str
    dataset: str | None = None
    symbol: str | None = None
    interval: str | None = None
    period: tuple[int, int] | None = None  # [start_ms, end_ms) the dump covers, by its name
    symbols: tuple[str, ...] = ()  # a parquet file's symbol column, where the name says none


def _kind_of(path: Path, kind: str) -> str | None:
    name = path.name.lower()
    kinds = _SUFFIXES if kind == "auto" else {kind: _SUFFIXES[kind]}
    return next((k for k, suffixes in kinds.items() if name.endswith(suffixes)), None)


def _describe(path: Path, kind: str) -> _FileInfo:
    if kind == "binance_dump" and (m := _BINANCE_NAME.fullmatch(path.name)):
        year, month, day = int(m["year"]), int(m["month"]), m["day"]
        first = calendar.timegm((year, month, int(day or 1), 0, 0, 0)) * 1000
        days = 1 if day else calendar.monthrange(year, month)[1]
        funding = m["interval"] == "fundingRate"
        dataset, interval = ("funding", None) if funding else ("bars", m["interval"])
        period = (first, first + days * 86_400_000)
        return _FileInfo(path, kind, dataset, m["symbol"], interval, period)
    if kind.startswith("freqtrade") and (m := _FREQTRADE_NAME.fullmatch(path.name)):
        # Mark, index and funding-rate candles are not traded bars; their dataset matches none.
        candle = m["candle"] or "spot"
        dataset = "bars" if candle in ("spot", "futures") else f"freqtrade {candle}"
        return _FileInfo(path, kind, dataset, m["base"] + m["quote"], m["interval"])
    if kind == "parquet":
        return _describe_parquet(path)
    return _FileInfo(path, kind)


def _describe_parquet(path: Path) -> _FileInfo:
    """Dataset from the columns; symbol from the name, else from the symbol column."""
    try:
        columns = pl.read_parquet_schema(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"file {path}: not a readable parquet file ({exc})") from None
    dataset = None  # neither set of columns: read as asked, and refused naming what is missing
    if "funding_rate" in columns:
        dataset = "funding"
    elif all(c in columns for c in _OHLCV):
        dataset = "bars"
    if m := _PARQUET_NAME.fullmatch(path.name):
        return _FileInfo(path, "parquet", dataset, m["symbol"])
    if "symbol" not in columns:
        return _FileInfo(path, "parquet", dataset)
    found = pl.scan_parquet(path).select(pl.col("symbol").cast(pl.String).unique().sort())
    symbols = tuple(s for s in found.collect()["symbol"].to_list() if s is not None)
    single = symbols[0] if len(symbols) == 1 else None
    return _FileInfo(path, "parquet", dataset, single, symbols=symbols)


def _fail(where: str, field: str, value: object, at: str, problem: str) -> DataError:
    return DataError(f"{where}: field {field!r} = {value!r} at {at} {problem}")


def _numbers(
    text: pl.Series, lines: pl.Series, *, where: str, field: str, dtype: pl.DataType
) -> pl.Series:
    values = text.str.strip_chars().cast(dtype, strict=False)
    bad = values.is_null()
    if bad.any():
        row = int(bad.arg_max())
        problem = f"is not a number ({dtype}); fix or drop the row"
        raise _fail(where, field, text[row], f"line {lines[row]}", problem)
    return values


def _to_ms(ts: pl.Series, lines: pl.Series, *, where: str, field: str) -> pl.Series:
    """Epoch ms from a file's timestamps, in ms or (spot dumps from 2025) in microseconds."""
    micro = ts >= _MICROSECONDS_FROM
    if not micro.any():
        return ts
    if not micro.all():
        row = int((~micro).arg_max())
        raise _fail(where, field, ts[row], f"line {lines[row]}", "is in ms but others in µs")
    partial = ts % 1000 != 0
    if partial.any():
        row = int(partial.arg_max())
        problem = "is in µs but not a whole millisecond"
        raise _fail(where, field, ts[row], f"line {lines[row]}", problem)
    return ts // 1000


def _binance_text(path: Path, where: str) -> str:
    if path.name.lower().endswith(".csv"):
        return path.read_text(encoding="utf-8-sig")
    with zipfile.ZipFile(path) as archive:
        members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        if len(members) != 1:
            raise DataError(f"{where}: a Binance dump holds one .csv; this holds {members}")
        return archive.read(members[0]).decode("utf-8-sig")


def _read_binance(path: Path, *, dataset: str, symbol: str, where: str) -> pl.DataFrame:
    names = _KLINE_COLUMNS if dataset == "bars" else _FUNDING_COLUMNS
    rows = pl.DataFrame({"text": _binance_text(path, where).splitlines()})
    rows = rows.with_row_index("line", offset=1).filter(pl.col("text").str.strip_chars() != "")
    if rows.height and re.match(r"[A-Za-z_]", rows["text"][0]):
        if rows["text"][0].split(",")[0].strip() != names[0]:
            raise DataError(
                f"{where}: line {rows['line'][0]} {rows['text'][0][:120]!r} is neither data nor "
                f"the {names[0]},... header of a Binance {dataset} dump; is it the right file?"
            )
        rows = rows.slice(1)
    fields = rows["text"].str.split(",")
    lines = rows["line"]
    wrong = fields.list.len() != len(names)
    if wrong.any():
        row = int(wrong.arg_max())
        raise DataError(
            f"{where}: line {lines[row]} has {fields[row].len()} fields, a Binance {dataset} "
            f"dump has {len(names)} ({','.join(names)}): {rows['text'][row][:120]!r}"
        )

    def column(name: str, dtype: pl.DataType) -> pl.Series:
        text = fields.list.get(names.index(name))
        return _numbers(text, lines, where=where, field=name, dtype=dtype)

    ts = _to_ms(column(names[0], pl.Int64()), lines, where=where, field=names[0])
    if dataset == "bars":
        values = {name: column(name, pl.Float64()) for name in _OHLCV}
    else:
        nan = pl.Series([float("nan")] * rows.height, dtype=pl.Float64)
        values = {"funding_rate": column("last_funding_rate", pl.Float64()), "mark_price": nan}
    return pl.DataFrame({"ts": ts, "symbol": [symbol] * rows.height, **values})


def _read_freqtrade_json(path: Path, *, symbol: str, where: str) -> pl.DataFrame:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        try:
            candles = json.load(handle)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc}); is it a freqtrade file?") from None
    if not isinstance(candles, list):
        raise DataError(f"{where}: freqtrade JSON is a list of candles, not {type(candles)}")
    for row, candle in enumerate(candles):
        if not isinstance(candle, list) or len(candle) != 6:
            raise DataError(
                f"{where}: candle {row} = {candle!r} is not [open_ms, open, high, low, close, "
                f"volume]"
            )
    columns = list(zip(*candles, strict=True)) if candles else [()] * 6
    values = {}
    for name, raw in zip(("ts", *_OHLCV), columns, strict=True):
        parsed = pl.Series(raw, dtype=pl.Float64, strict=False)
        bad = parsed.is_null()
        if bad.any():
            k = int(bad.arg_max())
            raise _fail(where, name, raw[k], f"candle {k}", "is not a number")
        values[name] = parsed
    ts = values.pop("ts")
    fraction = ~ts.is_finite() | (ts != ts.floor())
    if fraction.any():
        k = int(fraction.arg_max())
        raise _fail(where, "ts", ts[k], f"candle {k}", "is not a whole number of ms")
    return pl.DataFrame({"ts": ts.cast(pl.Int64), "symbol": [symbol] * ts.len(), **values})


def _read_freqtrade_feather(path: Path, *, symbol: str, where: str) -> pl.DataFrame:
    frame = pl.read_ipc(path)
    missing = [c for c in ("date", *_OHLCV) if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: freqtrade feather has no column(s) {missing}: {frame.columns}")
    if not isinstance(frame.schema["date"], pl.Datetime):
        raise DataError(f"{where}: column 'date' is {frame.schema['date']}, not a datetime")
    ns = frame["date"].dt.epoch("ns")  # a naive datetime is read as UTC, as freqtrade writes
    partial = ns % 1_000_000 != 0
    if partial.any():
        k = int(partial.arg_max())
        raise _fail(where, "date", frame["date"][k], f"row {k}", "is not a whole millisecond")
    return frame.select(
        (ns // 1_000_000).alias("ts"), pl.lit(symbol).alias("symbol"), *_OHLCV
    ).with_columns(pl.col(_OHLCV).cast(pl.Float64))


def _read_parquet(
    info: _FileInfo,
    *,
    dataset: str,
    symbol: str,
    where: str,
    start_ms: int | None,
    end_ms: int | None,
) -> pl.DataFrame:
    scan = pl.scan_parquet(info.path)
    columns = scan.collect_schema()
    needed = [c for c in SCHEMAS[dataset] if c not in ("symbol", "mark_price")]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(
            f"{where}: a {dataset} parquet file needs column(s) {missing}; its columns are "
            f"{list(columns)}; is it the right file?"
        )
    if not columns["ts"].is_integer():
        raise DataError(
            f"{where}: column 'ts' is {columns['ts']}, not integer epoch ms; write "
            f"pl.col('ts').dt.epoch('ms')"
        )
    if start_ms is not None and end_ms is not None:
        scan = scan.filter(pl.col("ts").is_between(start_ms, end_ms, closed="left"))
    if "symbol" in columns:
        scan = scan.with_columns(pl.col("symbol").cast(pl.String))
        if info.symbol is None:  # several symbols in one file: keep the one asked for
            scan = scan.filter(pl.col("symbol") == symbol)
    else:
        scan = scan.with_columns(symbol=pl.lit(symbol))
    if dataset == "funding" and "mark_price" not in columns:
        scan = scan.with_columns(mark_price=pl.lit(float("nan")))
    frame = scan.select(list(SCHEMAS[dataset])).collect()
    other = frame["symbol"].is_not_null() & (frame["symbol"] != symbol)
    if other.any():
        row = int(other.arg_max())
        raise _fail(
            where, "symbol", frame["symbol"][row], f"ts {frame['ts'][row]}",
            f"but the file is read as {symbol} (its name or the request); split the file",
        )  # fmt: skip
    if dataset == "funding":
        late = frame["ts"] % 3_600_000 >= _FUNDING_JITTER_MS
        if late.any():
            row = int(late.arg_max())
            raise _fail(
                where, "ts", frame["ts"][row], f"row {row} ({symbol})",
                f"is not within {_FUNDING_JITTER_MS} ms after a whole hour, when funding settles",
            )  # fmt: skip
    return frame


def _load(
    info: _FileInfo,
    *,
    dataset: str,
    symbol: str,
    interval: str | None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> pl.DataFrame:
    """One file's rows in [start_ms, end_ms), validated, with ``where`` naming the file."""
    where = f"file {info.path}"
    if info.kind == "binance_dump":
        frame = _read_binance(info.path, dataset=dataset, symbol=symbol, where=where)
    elif info.kind == "freqtrade_json":
        frame = _read_freqtrade_json(info.path, symbol=symbol, where=where)
    elif info.kind == "parquet":
        frame = _read_parquet(
            info, dataset=dataset, symbol=symbol, where=where, start_ms=start_ms, end_ms=end_ms
        )
    else:
        frame = _read_freqtrade_feather(info.path, symbol=symbol, where=where)
    if info.period is not None:
        # A dump's rows must lie in the period its name gives, which is how overlapping
        # files are found without reading them.
        first, end = info.period
        outside = (frame["ts"] < first) | (frame["ts"] >= end)
        if outside.any():
            ts = frame["ts"][int(outside.arg_max())]
            raise DataError(
                f"{where}: field 'ts' = {ts} lies outside the period [{first}, {end}) named by "
                f"the file; rename the file or fix its rows"
            )
    if start_ms is not None and end_ms is not None:
        frame = frame.filter(pl.col("ts").is_between(start_ms, end_ms, closed="left"))
    grid = interval_to_ms(interval) if dataset == "bars" and interval else None
    return validate_page(
        frame, dataset=dataset, where=where, interval_ms=grid, start_ms=start_ms, end_ms=end_ms
    )


def read_candle_file(
    path: str | Path,
    *,
    kind: str = "auto",
    dataset: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
) -> pl.DataFrame:
    """Read one Binance dump or freqtrade file into a validated, ts-sorted frame.

    Parameters
    ----------
    path
        The file: ``.zip`` / ``.csv`` (Binance dump), ``.json`` / ``.json.gz`` / ``.feather``
        (freqtrade), ``.parquet`` (lake schema); it may begin with ``{real}``.
    kind
        ``"auto"`` (by extension) or one of ``"binance_dump"``, ``"freqtrade_json"``,
        ``"freqtrade_feather"``, ``"parquet"``.
    dataset, symbol, interval
        Needed only where the file name does not say them (``dataset`` defaults to
        ``"bars"``); given and contradicting the name, they raise ``ValueError``.

    Returns
    -------
    pl.DataFrame
        ``BARS_SCHEMA`` or ``FUNDING_SCHEMA`` columns (funding mark_price is NaN where the
        file has none).

    Raises
    ------
    DataError
        On a malformed row or a value ``validate_page`` refuses; names file, field and value.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ETHUSDT-1h-2024-01.csv"
    >>> _ = path.write_text("1704067200000,2281.87,2297.18,2281.27,2295.51,10771.98,"
    ...     "1704070799999,24655982.73,22453,5908.47,13521911.29,0\\n")
    >>> read_candle_file(path).select("ts", "symbol", "close").rows()
    [(1704067200000, 'ETHUSDT', 2295.51)]
    """
    path = expand_path(path)
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is unknown; use one of {list(KINDS)}")
    found = _kind_of(path, kind)
    if found is None:
        raise ValueError(f"{path}: not a {kind} file by its extension; pass kind= explicitly")
    info = _describe(path, found)
    given = {"dataset": dataset, "symbol": symbol, "interval": interval}
    for field, value in given.items():
        named = getattr(info, field)
        if value is not None and named is not None and value != named:
            raise ValueError(f"{path}: {field}={value!r} but the file name says {named!r}")
    dataset = dataset or info.dataset or "bars"
    if dataset not in SCHEMAS:
        raise ValueError(f"{path}: dataset {dataset!r} is not read; known: {sorted(SCHEMAS)}")
    symbol = symbol or info.symbol
    if symbol is None:
        raise ValueError(f"{path}: the file name gives no symbol; pass symbol=")
    return _load(info, dataset=dataset, symbol=symbol, interval=interval or info.interval)


class FileSource:
    """Binance dumps, freqtrade candles or parquet files, one page per file, oldest first.

    Parameters
    ----------
    paths_or_dir
        A directory (its files, not its subdirectories, are read) or a list of files; a
        leading ``{real}`` is the real data set (``expand_path``), looked up at read time.
        In a directory only files whose names (or, for parquet, symbol columns) give the
        symbol are used; a listed file whose name says nothing is taken to hold what
        ``pages`` asks for, as is the interval of a file whose name gives none (parquet).
    kind
        ``"auto"`` (by extension) or one format for all files.

    Notes
    -----
    Files are read one at a time, except that files whose periods overlap (a daily dump
    inside a monthly one, or freqtrade files, whose names give no period) are merged into one
    page: identical rows are kept once, rows that disagree raise ``DataError`` naming both
    files.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "BTCUSDT-fundingRate-2024-01.csv").write_text(
    ...     "calc_time,funding_interval_hours,last_funding_rate\\n1704067200000,8,0.00037409\\n")
    >>> page, = FileSource(folder).pages(dataset="funding", symbol="BTCUSDT", interval="8h",
    ...     start_ms=0, end_ms=2**62)
    >>> page.rows()
    [(1704067200000, 'BTCUSDT', 0.00037409, nan)]
    """

    name = "files"

    def __init__(self, paths_or_dir: str | Path | Sequence[str | Path], *, kind: str = "auto"):
        self.paths_or_dir = paths_or_dir
        self.kind = kind

    def _files(self) -> list[_FileInfo]:
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} is unknown; use one of {list(KINDS)}")
        if isinstance(self.paths_or_dir, str | Path):
            root = expand_path(self.paths_or_dir)
            listed = not root.is_dir()
            paths = [root] if listed else sorted(p for p in root.iterdir() if p.is_file())
        else:
            listed, paths = True, [expand_path(p) for p in self.paths_or_dir]
        infos = []
        for path in paths:
            if not path.exists():
                raise FileNotFoundError(f"{path}: no such file or directory")
            kind = _kind_of(path, self.kind)
            if kind is None and listed:
                raise ValueError(f"{path}: not a {self.kind} file by its extension")
            info = None if kind is None else _describe(path, kind)
            if info is not None and (listed or info.symbol is not None or info.symbols):
                infos.append(info)
        if not infos:
            raise FileNotFoundError(f"{self.paths_or_dir}: holds no {self.kind} candle files")
        return infos

    def pages(
        self, *, dataset: str, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[pl.DataFrame]:
        """Validated pages of ``symbol``'s files in [start_ms, end_ms), one per file."""
        if dataset not in SCHEMAS:
            raise ValueError(f"dataset={dataset!r} is unknown; known: {sorted(SCHEMAS)}")
        wanted = []
        for info in self._files():
            if (info.dataset or dataset) != dataset or (info.symbol or symbol) != symbol:
                continue
            if info.symbols and symbol not in info.symbols:
                continue
            if dataset == "bars" and (info.interval or interval) != interval:
                continue
            first, end = info.period or (start_ms, end_ms)
            if first < end_ms and end > start_ms:
                wanted.append(info)
        request = {"dataset": dataset, "symbol": symbol, "interval": interval}
        for group in _overlapping(wanted):
            frames = [_load(i, **request, start_ms=start_ms, end_ms=end_ms) for i in group]
            page = frames[0] if len(frames) == 1 else _merge(frames, group, dataset)
            if page.height:
                yield page


def _overlapping(infos: list[_FileInfo]) -> list[list[_FileInfo]]:
    """Files grouped so that no two groups overlap in time, the groups in time order."""
    unbounded = [i for i in infos if i.period is None]
    bounded = sorted((i for i in infos if i.period is not None), key=lambda i: i.period)
    if unbounded:
        return [unbounded + bounded]
    groups: list[list[_FileInfo]] = []
    group_end = None
    for info in bounded:
        first, end = info.period
        if group_end is not None and first < group_end:
            groups[-1].append(info)
            group_end = max(group_end, end)
        else:
            groups.append([info])
            group_end = end
    return groups


def _merge(frames: list[pl.DataFrame], infos: list[_FileInfo], dataset: str) -> pl.DataFrame:
    """One page from overlapping files: identical rows once, disagreeing rows an error."""
    columns = list(SCHEMAS[dataset])
    both = pl.concat(
        [f.with_columns(pl.lit(k).alias("_file")) for k, f in enumerate(frames)], how="vertical"
    )
    distinct = both.unique(subset=columns, keep="first", maintain_order=True)
    clash = distinct.filter(pl.col("ts").is_duplicated()).sort("ts", "_file")
    if clash.height:
        a, b = clash.row(0, named=True), clash.row(1, named=True)
        field = next(c for c in columns if not _same(a[c], b[c]))
        raise DataError(
            f"overlapping files disagree at ts {a['ts']}: field {field!r} = {a[field]!r} in "
            f"{infos[a['_file']].path} but {b[field]!r} in {infos[b['_file']].path}; "
            f"remove the wrong file"
        )
    names = ", ".join(str(i.path) for i in infos)
    return validate_page(distinct.drop("_file"), dataset=dataset, where=f"files {names}")


def _same(a: object, b: object) -> bool:
    return a == b or (a != a and b != b)  # NaN mark prices agree with each other
