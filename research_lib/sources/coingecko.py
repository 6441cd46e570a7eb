"""CoinGecko aggregated USD price, market cap and volume over REST, page by page.

``GET /api/v3/coins/{id}/market_chart/range?vs_currency=usd&from=<s>&to=<s>`` answers
``{"prices": [[ms, v], ...], "market_caps": [...], "total_volumes": [...]}``. The venue picks
the granularity from the span: 5-minutely under a day, hourly from 1 to 90 days, daily
beyond. So ``interval="1h"`` is read in windows of 89 days, each asked for at least a day
and an hour (a short last window is widened backwards, then cut), and ``interval="1d"`` in
windows asked for at least 91 days. ``from`` and ``to`` are inclusive whole seconds: each
request covers its window's edges and the rows are cut to the window, so no point is lost
or doubled where windows meet.

CoinGecko's timestamps are its snapshot times (seconds past the hour, and the last point
is "now"), so ts is kept as sent and not checked against a grid; a point younger than one
interval is not yielded, because the venue replaces it later.

The frame has ``COINGECKO_SCHEMA``: ts, symbol (the coin id, e.g. ``"bitcoin"``), price,
market_cap, total_volume (NaN where the venue sent null).

Examples
--------
>>> source = CoinGeckoSource(base_url="http://127.0.0.1:9")
>>> source.name, source.client.base_url
('coingecko', 'http://127.0.0.1:9')
>>> source.close()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from research_lib.config import INTERVAL_MS
from research_lib.sources.base import DataError, _check
from research_lib.sources.http import HttpClient, HttpSource, resolve_base_url

__all__ = ["COINGECKO_SCHEMA", "CoinGeckoSource", "parse_market_chart", "validate_prices"]

DEFAULT_URL = "https://api.coingecko.com"
ENV_VAR = "RESEARCH_COINGECKO_URL"
DAY_MS = 86_400_000
COINGECKO_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Int64(),  # CoinGecko's snapshot time, epoch ms UTC (not on a grid)
    "symbol": pl.String(),  # the coin id, e.g. "bitcoin"
    "price": pl.Float64(),  # USD
    "market_cap": pl.Float64(),  # USD; NaN where not reported
    "total_volume": pl.Float64(),  # USD over the trailing 24 h; NaN where not reported
}
# interval -> (window length, the least span to ask for so the venue keeps that granularity)
_WINDOWS = {"1h": (89 * DAY_MS, DAY_MS + 3_600_000), "1d": (365 * DAY_MS, 91 * DAY_MS)}
_SERIES = {"prices": "price", "market_caps": "market_cap", "total_volumes": "total_volume"}


class CoinGeckoSource(HttpSource):
    """CoinGecko market charts (price, market cap, volume) as validated pages.

    Parameters
    ----------
    base_url
        Overrides ``RESEARCH_COINGECKO_URL`` and the public default; ignored with ``client``.
    client
        A shared ``HttpClient`` (the caller closes it).
    clock
        Epoch seconds, to hold back the newest, still-changing point.
    """

    name = "coingecko"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        client: HttpClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._owns_client = client is None
        url = resolve_base_url(override=base_url, env_var=ENV_VAR, default=DEFAULT_URL)
        # The public API allows a handful of calls a minute: one at a time, patient backoff.
        self.client = client or HttpClient(url, venue=self.name, max_concurrency=1, backoff_s=2.0)

    def pages(
        self, *, dataset: str, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[pl.DataFrame]:
        """Validated ``COINGECKO_SCHEMA`` pages of coin ``symbol`` over ``[start_ms, end_ms)``.

        ``dataset`` is ``"prices"``; ``interval`` is ``"1h"`` or ``"1d"`` (the venue's own
        granularities for long ranges).
        """
        if dataset != "prices":
            raise ValueError(f"dataset={dataset!r}: CoinGecko market charts are 'prices'")
        if interval not in _WINDOWS:
            raise ValueError(
                f"interval={interval!r} is not a CoinGecko granularity for ranges; use "
                f"{list(_WINDOWS)}"
            )
        if end_ms < start_ms:
            raise ValueError(f"end_ms={end_ms} is before start_ms={start_ms}; swap them")
        return self._pages(symbol, interval, start_ms, end_ms)

    def _pages(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[pl.DataFrame]:
        window, _ = _WINDOWS[interval]
        settled_ms = int(self._clock() * 1000) - INTERVAL_MS[interval]
        horizon = min(end_ms, settled_ms)
        windows = [(lo, min(lo + window, horizon)) for lo in range(start_ms, horizon, window)]
        # CoinGecko's settled horizon already excludes the open interval.
        yield from self._in_order(
            lambda lo, hi: (self._page(symbol, interval, lo, hi), False), windows
        )

    def _page(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> pl.DataFrame:
        _, least_span = _WINDOWS[interval]
        ask_from_ms = min(start_ms, end_ms - least_span)
        path = f"/api/v3/coins/{symbol}/market_chart/range"
        params = {
            "vs_currency": "usd",
            "from": ask_from_ms // 1000,
            "to": -(-end_ms // 1000),
        }
        where = f"{self.name} GET {path} from={params['from']} to={params['to']}"
        frame = parse_market_chart(self.client.get_json(path, params), symbol=symbol, where=where)
        # The request reaches past the window on both sides (whole seconds, widened spans).
        frame = frame.filter((pl.col("ts") >= start_ms) & (pl.col("ts") < end_ms))
        return validate_prices(frame, where=where, start_ms=start_ms, end_ms=end_ms)


def parse_market_chart(body: Any, *, symbol: str, where: str) -> pl.DataFrame:
    """A market_chart body as a ``COINGECKO_SCHEMA`` frame (not yet validated).

    The three series must share their timestamps; a null value becomes NaN.

    Examples
    --------
    >>> body = {"prices": [[1704067205000, 42000.5]], "market_caps": [[1704067205000, 8.2e11]],
    ...         "total_volumes": [[1704067205000, None]]}
    >>> parse_market_chart(body, symbol="bitcoin", where="example").row(0)
    (1704067205000, 'bitcoin', 42000.5, 820000000000.0, nan)
    """
    if not isinstance(body, dict) or any(not isinstance(body.get(k), list) for k in _SERIES):
        raise DataError(
            f"{where}: expected an object with lists {list(_SERIES)}, got "
            f"{type(body).__name__} {_short(body)}"
        )
    columns: dict[str, pl.Series] = {}
    ts: pl.Series | None = None
    for key, name in _SERIES.items():
        points = body[key]
        for index, point in enumerate(points):
            if type(point) is not list or len(point) != 2:
                raise DataError(f"{where}: {key}[{index}] is {_short(point)}; expected [ms, value]")
        times, values = (list(part) for part in zip(*points, strict=True)) if points else ([], [])
        if any(type(t) is not int for t in times):
            bad = next(t for t in times if type(t) is not int)
            raise DataError(f"{where}: {key} time {bad!r} is not an integer epoch-ms")
        row = next(
            (i for i, v in enumerate(values) if type(v) not in (int, float, type(None))), None
        )
        if row is not None:
            raise DataError(
                f"{where}: field {name!r} = {values[row]!r} at ts {times[row]} is not a number"
            )
        series_ts = pl.Series("ts", times, dtype=pl.Int64)
        if ts is None:
            ts = series_ts
        elif not series_ts.equals(ts):
            row = next(
                (i for i, (a, b) in enumerate(zip(ts, series_ts, strict=False)) if a != b),
                min(len(ts), len(series_ts)),
            )
            raise DataError(
                f"{where}: {key} and prices disagree on timestamps at point {row} "
                f"({len(series_ts)} vs {len(ts)} points); the series must align"
            )
        columns[name] = pl.Series(name, values, dtype=pl.Float64).fill_null(float("nan"))
    assert ts is not None
    return pl.DataFrame(
        {
            "ts": ts,
            "symbol": pl.repeat(symbol, len(ts), dtype=pl.String, eager=True),
            **columns,
        }
    )


def validate_prices(
    frame: pl.DataFrame, *, where: str, start_ms: int | None = None, end_ms: int | None = None
) -> pl.DataFrame:
    """``base.validate_page``'s rules for ``COINGECKO_SCHEMA``: cast, sort, then check.

    Price must be positive and finite; market cap and volume finite and >= 0, or NaN; ts
    inside the range and unique.
    """
    missing = [c for c in COINGECKO_SCHEMA if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: page has no column(s) {missing}; columns are {frame.columns}")
    frame = frame.select(pl.col(c).cast(t) for c, t in COINGECKO_SCHEMA.items()).sort("ts")
    if frame.height == 0:
        return frame
    price = frame["price"]
    _check(frame, ~(price.is_finite() & (price > 0)), where, "price", "is not a positive price")
    for column in ("market_cap", "total_volume"):
        values = frame[column]
        bad = ~values.is_nan() & ~(values.is_finite() & (values >= 0))
        _check(frame, bad, where, column, "is not a finite amount >= 0")
    if start_ms is not None:
        _check(frame, frame["ts"] < start_ms, where, "ts", f"is before the start {start_ms}")
    if end_ms is not None:
        _check(frame, frame["ts"] >= end_ms, where, "ts", f"is at or after the end {end_ms}")
    _check(frame, frame["ts"].is_duplicated(), where, "ts", "appears more than once")
    return frame


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:120] + "..."
