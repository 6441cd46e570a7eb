"""What every market-data source shares: frame schemas, errors, the paged protocol, checks.

A source turns a venue's wire format into tidy polars frames with the schemas below. Network
sources yield one page at a time (``PagedSource.pages``) so that a collector can write each
batch to the lake as it arrives and never holds a whole history; ``fetch_all`` joins the
pages for callers that want one frame.

Every page goes through ``validate_page`` before anyone writes it: a non-finite or
non-positive price, a negative volume, a timestamp off the interval's grid or outside the
requested range, or a duplicate timestamp raises ``DataError`` naming the source, the
request, the field, the row's timestamp and the value. Softer problems of real data (a high
below the close, a zero-volume bar, a gap) are not errors: ``research_lib.quality`` reports
them.

Examples
--------
>>> page = pl.DataFrame({"ts": [0, 3_600_000], "symbol": ["BTCUSDT"] * 2,
...     "open": [1.0, 2.0], "high": [1.0, 2.0], "low": [1.0, -2.0], "close": [1.0, 2.0],
...     "volume": [5.0, 6.0]})
>>> try:
...     validate_page(page, dataset="bars", where="binance klines", interval_ms=3_600_000)
... except DataError as exc:
...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
binance klines: field 'low' = -2.0 at ts 3600000 (1970-01-01 01:00 UTC, BTCUSDT)
is not a positive finite price
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import polars as pl

__all__ = [
    "BARS_SCHEMA",
    "FUNDING_SCHEMA",
    "SCHEMAS",
    "DataError",
    "PagedSource",
    "SourceError",
    "fetch_all",
    "validate_page",
]

BARS_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Int64(),  # bar open time, epoch ms UTC
    "symbol": pl.String(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),  # in the base asset
}
FUNDING_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Int64(),  # funding time, epoch ms UTC (Binance's can be a few ms late)
    "symbol": pl.String(),
    "funding_rate": pl.Float64(),  # per funding interval, as a fraction
    "mark_price": pl.Float64(),  # NaN where the venue did not report it
}
SCHEMAS: dict[str, dict[str, pl.DataType]] = {"bars": BARS_SCHEMA, "funding": FUNDING_SCHEMA}
_PRICES = {"bars": ("open", "high", "low", "close"), "funding": ()}


class DataError(ValueError):
    """A source returned data that cannot be stored as it is (named: request, field, value)."""


class SourceError(RuntimeError):
    """A source could not be read: retries exhausted, or the venue refused the request."""


@runtime_checkable
class PagedSource(Protocol):
    """A network or file source that yields a dataset page by page, oldest first.

    Each page is a validated frame with the dataset's schema (``SCHEMAS``), sorted by ts,
    inside [start_ms, end_ms), and pages do not overlap. An empty range yields nothing.
    """

    name: str

    def pages(
        self, *, dataset: str, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[pl.DataFrame]: ...


def fetch_all(
    source: PagedSource, *, dataset: str, symbol: str, interval: str, start_ms: int, end_ms: int
) -> pl.DataFrame:
    """All pages of one symbol's range as one frame (empty, with the schema, if none)."""
    pages = list(
        source.pages(
            dataset=dataset, symbol=symbol, interval=interval, start_ms=start_ms, end_ms=end_ms
        )
    )
    if not pages:
        return pl.DataFrame(schema=SCHEMAS[dataset])
    return pl.concat(pages, how="vertical")


def _when(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fail(frame: pl.DataFrame, mask: pl.Series, *, where: str, field: str, problem: str) -> None:
    row = int(mask.arg_max())
    ts = int(frame["ts"][row])
    symbol = frame["symbol"][row] if "symbol" in frame.columns else "?"
    value = frame[field][row]
    raise DataError(
        f"{where}: field {field!r} = {value!r} at ts {ts} ({_when(ts)}, {symbol}) {problem}"
    )


def validate_page(
    frame: pl.DataFrame,
    *,
    dataset: str,
    where: str,
    interval_ms: int | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> pl.DataFrame:
    """Check one page against its dataset's schema and hard rules; return it cast and sorted.

    Parameters
    ----------
    frame
        The parsed page.
    dataset
        ``"bars"`` or ``"funding"``.
    where
        What produced it, for the error message: source, method, path and the page's range.
    interval_ms
        The bar grid: every ts must be a multiple of it (bars only).
    start_ms, end_ms
        The requested range: every ts must lie in [start_ms, end_ms).

    Raises
    ------
    DataError
        On a missing column, a null, a non-positive or non-finite price, a negative or
        non-finite volume or funding rate, a ts off the grid or outside the range, or a
        duplicate ts; the message names the field, the value and the row's ts.
    """
    if dataset not in SCHEMAS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(SCHEMAS)}")
    schema = SCHEMAS[dataset]
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: page has no column(s) {missing}; columns are {frame.columns}")
    try:
        frame = frame.select(pl.col(c).cast(t, strict=True) for c, t in schema.items())
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise DataError(f"{where}: a column has the wrong type: {exc}") from None
    if frame.height == 0:
        return frame
    nulls = [c for c in schema if c != "mark_price"]
    null_hits = frame.select(pl.col(c).is_null().any() for c in nulls).row(0)
    for column, hit in zip(nulls, null_hits, strict=True):
        if hit:
            row = int(frame[column].is_null().arg_max())
            raise DataError(f"{where}: field {column!r} is missing (null) at row {row}")
    frame = frame.sort("ts")
    rules = _rules(dataset, interval_ms, start_ms, end_ms)
    # One pass evaluates every rule; only a page that breaks one is looked at again.
    hits = frame.select(bad.any().alias(str(i)) for i, (_, _, bad) in enumerate(rules)).row(0)
    for (field, problem, bad), hit in zip(rules, hits, strict=True):
        if hit:
            _fail(frame, frame.select(bad).to_series(), where=where, field=field, problem=problem)
    return frame


def _rules(
    dataset: str, interval_ms: int | None, start_ms: int | None, end_ms: int | None
) -> list[tuple[str, str, pl.Expr]]:
    """(field, problem, expression true on a bad row) for a page, in the order they are told."""
    ts = pl.col("ts")
    rules = [
        (c, "is not a positive finite price", ~(pl.col(c).is_finite() & (pl.col(c) > 0)))
        for c in _PRICES[dataset]
    ]
    if dataset == "bars":
        volume = pl.col("volume")
        rules.append(
            ("volume", "is not a finite volume >= 0", ~(volume.is_finite() & (volume >= 0)))
        )
        if interval_ms is not None:
            rules.append(("ts", f"is off the {interval_ms} ms grid", ts % interval_ms != 0))
    else:
        rules.append(("funding_rate", "is not finite", ~pl.col("funding_rate").is_finite()))
    if start_ms is not None:
        rules.append(("ts", f"is before the requested start {start_ms}", ts < start_ms))
    if end_ms is not None:
        rules.append(("ts", f"is at or after the requested end {end_ms}", ts >= end_ms))
    rules.append(("ts", "appears more than once in the page", ts.is_duplicated()))
    return rules


def _check(frame: pl.DataFrame, bad: pl.Series, where: str, field: str, problem: str) -> None:
    if bad.any():
        _fail(frame, bad, where=where, field=field, problem=problem)
