"""Binance spot and USDⓈ-M futures over REST: klines and funding rates, page by page.

``BinanceSource(market="spot")`` reads ``GET /api/v3/klines``; ``market="usdm"`` reads
``GET /fapi/v1/klines`` and ``GET /fapi/v1/fundingRate``. Each page is one request: the
client (``HttpClient``) retries, backs off and keeps under the request-weight limit; this
module turns the body into a frame with ``base.BARS_SCHEMA`` or ``base.FUNDING_SCHEMA`` and
runs ``validate_page`` on it, so a bad value raises ``DataError`` before anyone stores it.

Why klines are parsed column-wise: a 1000-row page is one ``json.loads`` (in the client), one
``zip(*rows)`` transpose in C and one polars construction whose string-to-float cast is
correctly rounded, so a price comes back bit for bit as Binance wrote it. No per-row Python
loop touches a float.

Why the pages after the first are fetched concurrently: the first request finds where the
symbol's data begins (it may list years after ``start_ms``); after that, a window of
``limit * interval`` ms can hold at most ``limit`` bars, so the windows are independent
requests. Up to the client's ``max_concurrency`` are in flight while earlier pages are parsed
and yielded, in order. Against a remote venue this hides the round trip; a gap (an outage)
just makes a window's page shorter.

The candle that is still open (its close time not yet passed) is never yielded: Binance
returns it, but its values are not final; no window after the current bar is requested.

Examples
--------
>>> source = BinanceSource(market="usdm", base_url="http://127.0.0.1:9")
>>> source.name, source.client.base_url
('binance_usdm', 'http://127.0.0.1:9')
>>> source.close()
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from research_lib.config import INTERVAL_MS
from research_lib.sources.base import (
    BARS_SCHEMA,
    FUNDING_SCHEMA,
    DataError,
    validate_page,
)
from research_lib.sources.http import HttpClient, HttpSource, resolve_base_url

__all__ = ["BINANCE_MARKETS", "BinanceSource", "parse_funding", "parse_klines"]


BINANCE_MARKETS: dict[str, dict[str, Any]] = {
    "spot": {
        "env_var": "RESEARCH_BINANCE_SPOT_URL",
        "default_url": "https://api.binance.com",
        "klines_path": "/api/v3/klines",
        "max_klines": 1000,
        "weight_limit": 1200,
    },
    "usdm": {
        "env_var": "RESEARCH_BINANCE_USDM_URL",
        "default_url": "https://fapi.binance.com",
        "klines_path": "/fapi/v1/klines",
        "max_klines": 1500,
        "weight_limit": 2400,
        "funding_path": "/fapi/v1/fundingRate",
        "max_funding": 1000,
    },
}
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
_KLINE_FIELDS = (
    "openTime",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "closeTime",
    "quoteAssetVolume",
    "trades",
    "takerBuyBase",
    "takerBuyQuote",
    "ignore",
)
_PRICE_FIELDS = {"open": 1, "high": 2, "low": 3, "close": 4, "volume": 5}


class BinanceSource(HttpSource):
    """Binance klines (spot or USDⓈ-M) and funding rates (USDⓈ-M) as validated pages.

    Parameters
    ----------
    market
        ``"spot"`` or ``"usdm"`` (USDⓈ-M perpetual futures).
    base_url
        Overrides ``RESEARCH_BINANCE_SPOT_URL`` / ``RESEARCH_BINANCE_USDM_URL`` and the
        public default; ignored when ``client`` is given.
    client
        A shared ``HttpClient`` (the caller closes it); by default the source makes one with
        Binance's weight header and limit and closes it in ``close``.
    page_limit
        Rows asked per request, capped at the endpoint's maximum (1000 spot klines, 1500
        USDⓈ-M klines, 1000 funding rates).
    clock
        Epoch seconds, to tell a still-open candle (``time.time`` unless injected).

    Examples
    --------
    >>> BinanceSource(market="spot", page_limit=5000).page_limit
    5000
    """

    def __init__(
        self,
        market: str = "spot",
        *,
        base_url: str | None = None,
        client: HttpClient | None = None,
        page_limit: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if market not in BINANCE_MARKETS:
            raise ValueError(f"market={market!r} is unknown; use one of {list(BINANCE_MARKETS)}")
        if page_limit < 1:
            raise ValueError(f"page_limit={page_limit} must be >= 1 (Binance's maximum is 1000)")
        spec = BINANCE_MARKETS[market]
        self.market = market
        self.name = f"binance_{market}"
        self.page_limit = page_limit
        self._clock = clock
        self._owns_client = client is None
        url = resolve_base_url(
            override=base_url, env_var=spec["env_var"], default=spec["default_url"]
        )
        self.client = client or HttpClient(
            url,
            venue=self.name,
            weight_header=WEIGHT_HEADER,
            weight_limit=spec["weight_limit"],
        )

    def pages(
        self, *, dataset: str, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[pl.DataFrame]:
        """Validated pages of ``dataset`` for ``symbol`` over ``[start_ms, end_ms)``, oldest first.

        Parameters
        ----------
        dataset
            ``"bars"`` (ts is the open time; ``interval`` one of ``INTERVAL_MS``) or
            ``"funding"`` (USDⓈ-M only; ts is Binance's funding time, which can be a few ms
            past the settlement; ``interval`` is not sent, the venue's schedule applies).
        symbol
            Binance's symbol, e.g. ``"BTCUSDT"``.
        start_ms, end_ms
            Epoch milliseconds, half-open.

        Raises
        ------
        SourceError
            Binance refused the request (e.g. ``Invalid symbol.``) or retries ran out.
        DataError
            A body of the wrong shape or a value that fails ``validate_page``.
        """
        if end_ms < start_ms:
            raise ValueError(f"end_ms={end_ms} is before start_ms={start_ms}; swap them")
        if dataset == "bars":
            if interval not in INTERVAL_MS:
                raise ValueError(
                    f"interval={interval!r} is unknown; use one of {list(INTERVAL_MS)}"
                )
            return self._bars(symbol, interval, start_ms, end_ms)
        if dataset == "funding":
            if self.market != "usdm":
                raise ValueError(
                    f"dataset='funding' needs market='usdm' (spot has no funding); this "
                    f"source is market={self.market!r}"
                )
            return self._funding(symbol, start_ms, end_ms)
        raise ValueError(f"dataset={dataset!r} is unknown; use 'bars' or 'funding'")

    def _bars(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[pl.DataFrame]:
        spec = BINANCE_MARKETS[self.market]
        step = INTERVAL_MS[interval]
        limit = min(self.page_limit, spec["max_klines"])
        # The first page finds where the data starts (a symbol may list years after
        # start_ms). After it, a window of limit * step ms holds at most `limit` open times,
        # so the remaining windows are independent requests: fetch them concurrently (the
        # client's semaphore bounds them) and yield them in order.
        if start_ms >= end_ms:
            return
        first, still_open = self._klines_page(symbol, interval, start_ms, end_ms, limit)
        if first.height:
            yield first
        if still_open or first.height < limit:
            return
        span = limit * step
        # No bar opens after the current one: do not ask for windows in the future.
        now_ms = int(self._clock() * 1000)
        horizon = min(end_ms, now_ms - now_ms % step + step)
        windows = [
            (lo, min(lo + span, end_ms)) for lo in range(int(first["ts"][-1]) + step, horizon, span)
        ]
        yield from self._in_order(
            lambda lo, hi: self._klines_page(symbol, interval, lo, hi, limit), windows
        )

    def _klines_page(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, limit: int
    ) -> tuple[pl.DataFrame, bool]:
        """One validated page of [start_ms, end_ms), and whether it held the open candle."""
        path = BINANCE_MARKETS[self.market]["klines_path"]
        params = {
            "symbol": symbol,
            "interval": interval,
            "startTime": start_ms,
            "endTime": end_ms - 1,
            "limit": limit,
        }
        where = f"{self.name} GET {path} symbol={symbol} interval={interval} startTime={start_ms}"
        body = self.client.get_json(path, params, decode=_decode_klines)
        if isinstance(body, pl.DataFrame):  # the fast path read the rows already
            frame = body.select("ts", pl.lit(symbol, dtype=pl.String).alias("symbol"), *_PRICES)
            close_ms = body["closeTime"]
        else:
            frame, close_ms = parse_klines(body, symbol=symbol, where=where)
        # A candle whose close time has not passed is still moving; so is every later one.
        now_ms = int(self._clock() * 1000)
        still_open = bool((close_ms >= now_ms).any())
        if still_open:
            frame = frame.filter(close_ms < now_ms)
        frame = validate_page(
            frame,
            dataset="bars",
            where=where,
            interval_ms=INTERVAL_MS[interval],
            start_ms=start_ms,
            end_ms=end_ms,
        )
        return frame, still_open

    def _funding(self, symbol: str, start_ms: int, end_ms: int) -> Iterator[pl.DataFrame]:
        spec = BINANCE_MARKETS[self.market]
        path = spec["funding_path"]
        limit = min(self.page_limit, spec["max_funding"])
        cursor = start_ms
        while cursor < end_ms:
            params = {"symbol": symbol, "startTime": cursor, "endTime": end_ms - 1, "limit": limit}
            where = f"{self.name} GET {path} symbol={symbol} startTime={cursor}"
            body = self.client.get_json(path, params)
            frame = parse_funding(body, symbol=symbol, where=where)
            received = frame.height
            frame = validate_page(
                frame, dataset="funding", where=where, start_ms=cursor, end_ms=end_ms
            )
            if frame.height:
                yield frame
            if received < limit or frame.height == 0:
                return
            cursor = int(frame["ts"][-1]) + 1


_PRICES = tuple(_PRICE_FIELDS)
# The 12 kline fields as CSV columns: the fast path reads a body as CSV.
_KLINE_CSV_SCHEMA = {
    "ts": pl.Int64,
    **dict.fromkeys(_PRICES, pl.Float64),
    "closeTime": pl.Int64,
    "quoteAssetVolume": pl.Float64,
    "trades": pl.Int64,
    "takerBuyBase": pl.Float64,
    "takerBuyQuote": pl.Float64,
    "ignore": pl.Float64,
}


def _decode_klines(raw: bytes) -> pl.DataFrame | Any:
    """A klines body read as CSV in one pass (all 12 fields, none missing), else ``json.loads``.

    Binance's compact ``[[openTime,"open",...],...]`` becomes CSV once the brackets and quotes
    are stripped, and polars' reader parses each decimal to the nearest float64, as
    ``float(text)`` does. Anything else (whitespace, a short row, a word where a number
    belongs, a truncated body) goes to ``json.loads`` and ``parse_klines``, which name the
    bad field, or raise ``ValueError`` for a body that is not JSON (the client retries it).
    """
    if raw.startswith(b"[[") and raw.endswith(b"]]") and b"{" not in raw:
        text = raw[2:-2].replace(b"],[", b"\n")
        try:
            frame = pl.read_csv(
                io.BytesIO(text.translate(None, b'"')),
                has_header=False,
                schema=_KLINE_CSV_SCHEMA,
            )
        except pl.exceptions.PolarsError:
            frame = None
        rows = text.count(b"\n") + 1
        if (
            frame is not None
            and frame.height == rows
            and frame.null_count().sum_horizontal()[0] == 0
        ):
            return frame
    return json.loads(raw)


def parse_klines(body: Any, *, symbol: str, where: str) -> tuple[pl.DataFrame, pl.Series]:
    """A klines body as a ``BARS_SCHEMA`` frame (not yet validated) and its close times.

    Raises ``DataError`` naming ``where``, the field and the value when the body is not a list
    of 12-element rows, a time is not an integer, or a price is not a number.

    Examples
    --------
    >>> body = [[1700000000000, "37000.01000000", "37100.00", "36900.5", "37050", "12.5",
    ...          1700003599999, "463125.0", 100, "6.2", "229710.0", "0"]]
    >>> frame, close_ms = parse_klines(body, symbol="BTCUSDT", where="example")
    >>> frame.row(0), close_ms.to_list()
    ((1700000000000, 'BTCUSDT', 37000.01, 37100.0, 36900.5, 37050.0, 12.5), [1700003599999])
    """
    if not isinstance(body, list):
        raise DataError(
            f"{where}: expected a JSON list of klines, got {type(body).__name__} "
            f"{_short(body)}; is the base URL a Binance API?"
        )
    if not body:
        return pl.DataFrame(schema=BARS_SCHEMA), pl.Series("closeTime", [], pl.Int64)
    for index, row in enumerate(body):
        if type(row) is not list or len(row) != len(_KLINE_FIELDS):
            raise DataError(
                f"{where}: kline row {index} is {_short(row)}; expected a list of "
                f"{len(_KLINE_FIELDS)} fields {list(_KLINE_FIELDS)}"
            )
    columns = list(zip(*body, strict=True))
    out: dict[str, pl.Series] = {}
    for name, position in (("ts", 0), ("closeTime", 6)):
        out[name] = _integers(columns[position], name=_KLINE_FIELDS[position], where=where)
    for name, position in _PRICE_FIELDS.items():
        out[name] = _numbers(columns[position], name=name, where=where, ts=out["ts"])
    frame = pl.DataFrame(
        {
            "ts": out["ts"],
            "symbol": pl.repeat(symbol, len(body), dtype=pl.String, eager=True),
            **{name: out[name] for name in _PRICE_FIELDS},
        }
    )
    return frame, out["closeTime"]


def parse_funding(body: Any, *, symbol: str, where: str) -> pl.DataFrame:
    """A fundingRate body as a ``FUNDING_SCHEMA`` frame (not yet validated).

    ``markPrice`` ``""`` or absent (older records) becomes NaN; any other non-number, a
    missing ``fundingTime``/``fundingRate``, or another symbol raises ``DataError``.

    Examples
    --------
    >>> body = [{"symbol": "BTCUSDT", "fundingTime": 1619827200002, "fundingRate": "0.00011200",
    ...          "markPrice": ""}]
    >>> parse_funding(body, symbol="BTCUSDT", where="example").row(0)
    (1619827200002, 'BTCUSDT', 0.000112, nan)
    """
    if not isinstance(body, list):
        raise DataError(
            f"{where}: expected a JSON list of funding rates, got {type(body).__name__} "
            f"{_short(body)}"
        )
    if not body:
        return pl.DataFrame(schema=FUNDING_SCHEMA)
    for index, row in enumerate(body):
        if type(row) is not dict or "fundingTime" not in row or "fundingRate" not in row:
            raise DataError(
                f"{where}: funding row {index} is {_short(row)}; expected an object with "
                "symbol, fundingTime, fundingRate and markPrice"
            )
        if row.get("symbol", symbol) != symbol:
            raise DataError(
                f"{where}: funding row {index} is for symbol {row.get('symbol')!r}, "
                f"not the requested {symbol!r}"
            )
    ts = _integers([r["fundingTime"] for r in body], name="fundingTime", where=where)
    rate = _numbers([r["fundingRate"] for r in body], name="fundingRate", where=where, ts=ts)
    marks = pl.Series([r.get("markPrice") for r in body], dtype=pl.String, strict=False)
    unreported = marks.is_null() | (marks == "")
    mark = _numbers(marks, name="markPrice", where=where, ts=ts, allow=unreported)
    return pl.DataFrame(
        {
            "ts": ts,
            "symbol": pl.repeat(symbol, len(body), dtype=pl.String, eager=True),
            "funding_rate": rate,
            "mark_price": mark.fill_null(float("nan")),
        }
    )


def _integers(values: Any, *, name: str, where: str) -> pl.Series:
    try:
        return pl.Series(name, values, dtype=pl.Int64, strict=True)
    except (TypeError, OverflowError, pl.exceptions.PolarsError):
        bad = next(v for v in values if type(v) is not int)
        raise DataError(f"{where}: field {name!r} = {bad!r} is not an integer epoch-ms") from None


def _numbers(
    values: Any,
    *,
    name: str,
    where: str,
    ts: pl.Series,
    allow: pl.Series | None = None,
) -> pl.Series:
    """Decimal strings as float64 (correctly rounded); raise on anything but a number."""
    try:
        text = pl.Series(name, values, dtype=pl.String, strict=True)
    except (TypeError, pl.exceptions.PolarsError):
        # Binance sends strings; a JSON number is fine too, but not a bool, list or object.
        text = pl.Series(
            name,
            [v if isinstance(v, str) or v is None else _number_text(v) for v in values],
            dtype=pl.String,
        )
    parsed = text.cast(pl.Float64, strict=False)
    bad = parsed.is_null()
    if allow is not None:
        bad = bad & ~allow
    if bad.any():
        row = int(bad.arg_max())
        raise DataError(
            f"{where}: field {name!r} = {values[row]!r} at ts {ts[row]} is not a number (row {row})"
        )
    return parsed


def _number_text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return repr(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:120] + "..."
