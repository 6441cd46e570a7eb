"""Coinbase Exchange candles over REST, page by page.

``GET /products/{product_id}/candles?granularity=<s>&start=<ISO 8601>&end=<ISO 8601>``
answers at most 300 candles, newest first, as ``[time_s, low, high, open, close, volume]``
with JSON numbers. The symbol is Coinbase's product id (``"BTC-USD"``). Granularities are
60, 300, 900, 3600, 21600 and 86400 s, so of our intervals 1m, 5m, 15m, 1h and 1d are
offered; 4h is not (ask for 1h and aggregate).

Every request is one fixed window of at most 299 candles. ``end`` is sent as the open time
just past the window (at most 300 candles even if the venue counts both ends) and a candle
at or past the window's end is cut: it belongs to the next window, which asks for it. So
no candle is lost whether the venue's ``end`` is inclusive or exclusive. The windows are
independent, so they are fetched concurrently up to the client's ``max_concurrency`` and
yielded in order. Coinbase leaves out intervals
without trades: a window's page is then shorter, never wrong.

Examples
--------
>>> source = CoinbaseSource(base_url="http://127.0.0.1:9")
>>> source.name, source.client.base_url
('coinbase', 'http://127.0.0.1:9')
>>> source.close()
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from research_lib.config import INTERVAL_MS
from research_lib.sources.base import BARS_SCHEMA, DataError, validate_page
from research_lib.sources.http import HttpClient, HttpSource, resolve_base_url

__all__ = ["COINBASE_GRANULARITY_S", "CoinbaseSource", "parse_candles"]

DEFAULT_URL = "https://api.exchange.coinbase.com"
ENV_VAR = "RESEARCH_COINBASE_URL"
MAX_CANDLES = 300
COINBASE_GRANULARITY_S = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
_FIELDS = ("time", "low", "high", "open", "close", "volume")


class CoinbaseSource(HttpSource):
    """Coinbase Exchange candles as validated ``BARS_SCHEMA`` pages.

    Parameters
    ----------
    base_url
        Overrides ``RESEARCH_COINBASE_URL`` and the public default; ignored with ``client``.
    client
        A shared ``HttpClient`` (the caller closes it).
    page_candles
        Candles per request, at most 299 (the request reaches one candle further).
    clock
        Epoch seconds, to leave out the candle still open (``time.time`` unless injected).
    """

    name = "coinbase"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        client: HttpClient | None = None,
        page_candles: int = MAX_CANDLES - 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= page_candles <= MAX_CANDLES - 1:
            raise ValueError(f"page_candles={page_candles} must be in 1..{MAX_CANDLES - 1}")
        self.page_candles = page_candles
        self._clock = clock
        self._owns_client = client is None
        url = resolve_base_url(override=base_url, env_var=ENV_VAR, default=DEFAULT_URL)
        # Public endpoints allow about 10 requests per second per IP.
        self.client = client or HttpClient(url, venue=self.name, max_concurrency=3)

    def pages(
        self, *, dataset: str, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[pl.DataFrame]:
        """Validated candle pages of ``symbol`` (a product id) over ``[start_ms, end_ms)``.

        Raises
        ------
        ValueError
            A dataset other than ``"bars"``, or an interval Coinbase does not offer.
        SourceError, DataError
            As ``BinanceSource.pages``.
        """
        if dataset != "bars":
            raise ValueError(f"dataset={dataset!r}: Coinbase candles are 'bars' only")
        if interval not in COINBASE_GRANULARITY_S:
            raise ValueError(
                f"interval={interval!r} is not offered by Coinbase candles; use one of "
                f"{list(COINBASE_GRANULARITY_S)} (for 4h, collect 1h and aggregate)"
            )
        if end_ms < start_ms:
            raise ValueError(f"end_ms={end_ms} is before start_ms={start_ms}; swap them")
        return self._pages(symbol, interval, start_ms, end_ms)

    def _pages(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[pl.DataFrame]:
        step = INTERVAL_MS[interval]
        first = -(-start_ms // step) * step  # the first open time on the grid
        now_ms = int(self._clock() * 1000)
        horizon = min(end_ms, now_ms - now_ms % step + step)
        span = self.page_candles * step
        windows = [(lo, min(lo + span, end_ms)) for lo in range(first, horizon, span)]
        yield from self._in_order(lambda lo, hi: self._page(symbol, interval, lo, hi), windows)

    def _page(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> tuple[pl.DataFrame, bool]:
        step = INTERVAL_MS[interval]
        path = f"/products/{symbol}/candles"
        past_end = end_ms - 1 - (end_ms - 1) % step + step  # the open time after the window
        params = {
            "granularity": COINBASE_GRANULARITY_S[interval],
            "start": _iso(start_ms),
            "end": _iso(past_end),
        }
        where = (
            f"{self.name} GET {path} granularity={params['granularity']} start={params['start']}"
        )
        frame = parse_candles(self.client.get_json(path, params), symbol=symbol, where=where)
        frame = frame.filter(pl.col("ts") < end_ms)  # the next window's first candle
        now_ms = int(self._clock() * 1000)
        still_open = bool((frame["ts"] + step > now_ms).any())
        if still_open:
            frame = frame.filter(pl.col("ts") + step <= now_ms)
        frame = validate_page(
            frame, dataset="bars", where=where, interval_ms=step, start_ms=start_ms, end_ms=end_ms
        )
        return frame, still_open


def parse_candles(body: Any, *, symbol: str, where: str) -> pl.DataFrame:
    """A candles body as a ``BARS_SCHEMA`` frame, oldest first (not yet validated).

    Examples
    --------
    >>> body = [[1704070800, 42100.5, 42300, 42200.25, 42250.0, 12.5],
    ...         [1704067200, 42000.0, 42250.5, 42010.0, 42200.25, 10.0]]
    >>> parse_candles(body, symbol="BTC-USD", where="example")["ts"].to_list()
    [1704067200000, 1704070800000]
    """
    if not isinstance(body, list):
        raise DataError(
            f"{where}: expected a JSON list of candles, got {type(body).__name__} {_short(body)}"
        )
    if not body:
        return pl.DataFrame(schema=BARS_SCHEMA)
    for index, row in enumerate(body):
        if type(row) is not list or len(row) != len(_FIELDS):
            raise DataError(
                f"{where}: candle row {index} is {_short(row)}; expected "
                f"{len(_FIELDS)} numbers {list(_FIELDS)}"
            )
    columns = list(zip(*body, strict=True))
    if any(type(t) is not int for t in columns[0]):
        bad = next(t for t in columns[0] if type(t) is not int)
        raise DataError(f"{where}: field 'time' = {bad!r} is not an integer epoch-second")
    out: dict[str, Any] = {"ts": pl.Series("ts", columns[0], dtype=pl.Int64) * 1000}
    for position, name in enumerate(_FIELDS[1:], start=1):
        values = columns[position]
        row = next((i for i, v in enumerate(values) if type(v) not in (int, float)), None)
        if row is not None:
            bad = values[row]
            raise DataError(
                f"{where}: field {name!r} = {bad!r} at ts {out['ts'][row]} is not a number"
            )
        out[name] = pl.Series(name, values, dtype=pl.Float64)
    frame = pl.DataFrame(
        {
            "ts": out["ts"],
            "symbol": pl.repeat(symbol, len(body), dtype=pl.String, eager=True),
            **{name: out[name] for name in ("open", "high", "low", "close", "volume")},
        }
    )
    return frame.sort("ts")


def _iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:120] + "..."
