"""Candle quality report: finds gaps, duplicates and bad bars, and never changes the bars.

``quality_report`` checks each symbol of a bars frame (``research_lib.sources.base.
BARS_SCHEMA``: ts as epoch-ms bar open, symbol, OHLC, volume) and returns a
``QualityReport`` whose ``.issues`` has one row per finding and whose ``.summary`` has one
row per symbol. Repairing data is a decision for the reader of the report; nothing here
drops, fills or sorts the caller's frame.

The checks and their rules (``CHECKS`` gives each one's severity):

``coverage`` (info)
    One row per symbol, always: the grid slots it spans (ts_first, ts_last; its own first
    and last row when nothing is on the grid), bars present on them, coverage in percent.
``outside_range`` (info)
    Rows before ``start_ms`` or at/after ``end_ms`` (one row per side); they are still
    checked bar by bar, but they do not count toward the coverage.
``gap`` (warning)
    A run of missing grid slots, one row per run: first and last missing ts, bars missing.
    The grid is every multiple of the interval in [``start_ms``, ``end_ms``) when they are
    given, otherwise from the symbol's first to its last on-grid bar.
``off_grid`` (error)
    ``ts % interval != 0``. Such rows fill no grid slot.
``duplicate_identical`` (warning) / ``duplicate_conflicting`` (error)
    A ts that occurs more than once, with one or with several distinct OHLCV values.
``out_of_order`` (warning)
    A row whose ts is below the ts of the previous row of its symbol, in the given order.
``bad_price`` (error)
    A null, non-finite or non-positive open, high, low or close. The envelope checks below,
    the returns and the stale check skip these rows.
``bad_volume`` (error)
    A negative, null or non-finite volume.
``high_below_low``, ``high_below_open_close``, ``low_above_open_close`` (error)
    ``high < low``, ``high < max(open, close)``, ``low > min(open, close)``.
``zero_volume`` (warning)
    ``volume == 0``: nothing traded, often an exchange halt; volume-scaled costs divide by it.
``outlier_return`` (warning)
    A close-to-close log return ``r`` with ``|r - m| > mad_threshold * 1.4826 * MAD``,
    where ``m`` and ``MAD`` (the median of ``|r_j - m|``) are those of the return's block:
    each symbol's returns are cut into blocks of ``outlier_window_bars`` consecutive returns,
    the remainder joining the last block. The scale is local rather than global because
    crypto volatility moves by a factor of five or more between regimes (BTC 2018 against
    2023): one global scale flags the ordinary moves of every volatile year (330 bars of
    the real BTC 1h file at 10 robust sd) and misses a bad print in a quiet one; 30-day
    blocks flag 158. Blocks rather than a sliding window: each block's MAD is exact, and
    it costs two group medians instead of two rolling medians (about 0.4 s each per 260k
    rows here). A spike cannot hide itself: it moves neither median of its block. Returns
    are taken on the bars sorted by ts, with the first row of each duplicated ts and
    without bad prices, so a return after a gap is against the previous available bar; its
    detail says how many bars the gap spans. A block with ``MAD == 0`` (flat prices) flags
    nothing, and neither does a block of fewer than ``OUTLIER_MIN_RETURNS`` (30) returns:
    the MAD of a few returns is too noisy a scale (a clean normal block of 5 returns has a
    point beyond 10 robust sd 3 % of the time, of 10 returns 0.2 %, of 30 returns 1e-5).
``stale_price`` (warning)
    A run of at least ``stale_bars`` consecutive bars (same series as the returns) where
    ``open == high == low == close == the previous bar's close``: the price did not move at
    all, inside or across bars, so nothing traded or the feed repeated its last value.
    Volume is not part of the rule: some venues report volume on such bars.

Examples
--------
>>> bars = pl.DataFrame({"ts": [0, 3_600_000, 10_800_000], "symbol": ["BTCUSDT"] * 3,
...     "open": [1.0, 1.0, 1.1], "high": [1.1, 1.2, 1.2], "low": [0.9, 0.9, 1.0],
...     "close": [1.0, 1.1, 1.1], "volume": [5.0, 0.0, 7.0]})
>>> report = quality_report(bars, interval="1h", source="synthetic")
>>> report.issues.select("check", "ts_first", "bars", "severity").rows()
[('coverage', 0, 3, 'info'), ('zero_volume', 3600000, 1, 'warning'), ('gap', 7200000, 1, 'warning')]
>>> report.summary.select("rows", "expected_rows", "missing_bars").row(0)
(3, 4, 1)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from research_lib.atomic import atomic_path
from research_lib.config import INTERVAL_MS
from research_lib.lake import DATASETS, Lake, WriteResult

__all__ = ["CHECKS", "ISSUES_SCHEMA", "QualityReport", "quality_report"]

CHECKS: dict[str, str] = {
    "coverage": "info",
    "outside_range": "info",
    "gap": "warning",
    "off_grid": "error",
    "duplicate_identical": "warning",
    "duplicate_conflicting": "error",
    "out_of_order": "warning",
    "bad_price": "error",
    "bad_volume": "error",
    "high_below_low": "error",
    "high_below_open_close": "error",
    "low_above_open_close": "error",
    "zero_volume": "warning",
    "outlier_return": "warning",
    "stale_price": "warning",
}
"""Every check, in report order, with its severity: error (the bar cannot be used as it
is), warning (suspicious or incomplete, common in real data), info (context)."""

ISSUES_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "interval": pl.String(),
    "symbol": pl.String(),
    "check": pl.String(),
    "severity": pl.String(),
    "ts_first": pl.Int64(),  # first affected (or missing) bar open, epoch ms
    "ts_last": pl.Int64(),  # last affected (or missing) bar open, epoch ms
    "bars": pl.Int64(),  # bars affected or missing (rows, for per-row checks)
    "value": pl.Float64(),  # the measured quantity, e.g. the log return or missing bars
    "detail": pl.String(),
}
_FINDING = {k: v for k, v in ISSUES_SCHEMA.items() if k not in ("source", "interval", "severity")}
_PRICES = ("open", "high", "low", "close")
_MAD_TO_SD = 1.4826  # MAD of a normal distribution times this is its standard deviation


def _fmt_ts(expr: pl.Expr) -> pl.Expr:
    return pl.from_epoch(expr, time_unit="ms").dt.strftime("%Y-%m-%d %H:%M")


def _finding(
    check: str,
    *,
    ts_first: pl.Expr,
    ts_last: pl.Expr,
    bars: pl.Expr,
    value: pl.Expr,
    detail: pl.Expr,
) -> list[pl.Expr]:
    return [
        pl.col("symbol"),
        pl.lit(check).alias("check"),
        ts_first.cast(pl.Int64).alias("ts_first"),
        ts_last.cast(pl.Int64).alias("ts_last"),
        bars.cast(pl.Int64).alias("bars"),
        value.cast(pl.Float64).alias("value"),
        detail.cast(pl.String).alias("detail"),
    ]


def _valid_price(col: str) -> pl.Expr:
    return (pl.col(col).is_finite() & (pl.col(col) > 0)).fill_null(False)


_VALID = pl.all_horizontal(_valid_price(c) for c in _PRICES)
_SAME_SYMBOL = (pl.col("symbol") == pl.col("symbol").shift(1)).fill_null(False)


def _ordered(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows sorted by symbol, ts and given position; ``repeat`` marks a ts seen before."""
    return (
        frame.sort("symbol", "ts", "row")
        .with_columns((_SAME_SYMBOL & (pl.col("ts") == pl.col("ts").shift(1))).alias("repeat"))
        .with_columns(
            (pl.col("repeat") | pl.col("repeat").shift(-1).fill_null(False)).alias("duplicated")
        )
    )


# -- the checks: each returns findings with the columns of _FINDING ---------------------------
def _row_findings(frame: pl.DataFrame, *, step_ms: int, interval: str) -> pl.DataFrame:
    """Checks of single rows; several rows at one ts become one finding (bars = rows)."""
    body_max = pl.max_horizontal("open", "close")
    body_min = pl.min_horizontal("open", "close")
    conditions = {
        "off_grid": pl.col("ts") % step_ms != 0,
        "out_of_order": pl.col("ts") < pl.col("prev_ts"),
        "bad_price": ~_VALID,
        "bad_volume": ~(pl.col("volume").is_finite() & (pl.col("volume") >= 0)).fill_null(False),
        "high_below_low": _VALID & (pl.col("high") < pl.col("low")),
        "high_below_open_close": _VALID & (pl.col("high") < body_max),
        "low_above_open_close": _VALID & (pl.col("low") > body_min),
        "zero_volume": pl.col("volume") == 0,
    }
    bad_fields = pl.concat_str(
        [
            pl.when(~_valid_price(c)).then(
                pl.lit(f"{c}=") + pl.col(c).cast(pl.String).fill_null("null")
            )
            for c in _PRICES
        ],
        separator=", ",
        ignore_nulls=True,
    )
    measures = {  # (value, detail), computed on the flagged rows only
        "off_grid": (
            pl.col("ts") % step_ms,
            pl.format(f"ts {{}} is {{}} ms past the {interval} grid", "ts", pl.col("ts") % step_ms),
        ),
        "out_of_order": (
            (pl.col("prev_ts") - pl.col("ts")) / step_ms,
            pl.format("row {} comes after a row at {}", "row", _fmt_ts(pl.col("prev_ts"))),
        ),
        "bad_price": (pl.lit(None), bad_fields),
        "bad_volume": (pl.col("volume"), pl.format("volume={}", pl.col("volume"))),
        "high_below_low": (
            pl.col("high") - pl.col("low"),
            pl.format("high {} < low {}", "high", "low"),
        ),
        "high_below_open_close": (
            pl.col("high") - body_max,
            pl.format("high {} < max(open, close) {}", "high", body_max),
        ),
        "low_above_open_close": (
            pl.col("low") - body_min,
            pl.format("low {} > min(open, close) {}", "low", body_min),
        ),
        "zero_volume": (pl.col("volume"), pl.lit("volume 0")),
    }
    flagged = (
        frame.with_columns(pl.col("ts").shift(1).over("symbol").alias("prev_ts"))
        .with_columns(
            cond.fill_null(False).alias(f"_is_{name}") for name, cond in conditions.items()
        )
        .filter(pl.any_horizontal(f"_is_{name}" for name in conditions))
    )
    parts = [
        flagged.filter(pl.col(f"_is_{name}")).select(
            _finding(
                name,
                ts_first=pl.col("ts"),
                ts_last=pl.col("ts"),
                bars=pl.lit(1),
                value=value,
                detail=detail,
            )
        )
        for name, (value, detail) in measures.items()
    ]
    return (
        pl.concat(parts)
        .group_by("symbol", "check", "ts_first", maintain_order=True)
        .agg(
            pl.col("ts_last").first(),
            pl.len().cast(pl.Int64).alias("bars"),
            pl.col("value").first(),
            pl.col("detail").first(),
        )
        .select(list(_FINDING))
    )


def _duplicate_findings(ordered: pl.DataFrame) -> pl.DataFrame:
    groups = (
        ordered.filter("duplicated")
        .group_by("symbol", "ts", maintain_order=True)
        .agg(
            pl.len().alias("n"),
            pl.struct(*_PRICES, "volume").n_unique().alias("distinct"),
            pl.col("close").cast(pl.String).str.join(" / ").alias("closes"),
        )
    )
    return groups.select(
        _finding(
            "",
            ts_first=pl.col("ts"),
            ts_last=pl.col("ts"),
            bars=pl.col("n"),
            value=pl.col("distinct"),
            detail=pl.format("{} rows, {} distinct OHLCV; close {}", "n", "distinct", "closes"),
        )
    ).with_columns(
        pl.when(pl.col("value") == 1)
        .then(pl.lit("duplicate_identical"))
        .otherwise(pl.lit("duplicate_conflicting"))
        .alias("check")
    )


def _grid_findings(
    ordered: pl.DataFrame,
    *,
    step_ms: int,
    start_ms: int | None,
    end_ms: int | None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Gaps and outside-range rows, and per symbol: present, expected, first/last slot."""
    in_range = pl.lit(True)
    if start_ms is not None:
        in_range = in_range & (pl.col("ts") >= start_ms)
    if end_ms is not None:
        in_range = in_range & (pl.col("ts") < end_ms)
    # distinct on-grid ts in range, still sorted by symbol and ts
    grid = ordered.filter(in_range & (pl.col("ts") % step_ms == 0) & ~pl.col("repeat")).select(
        "symbol", "ts"
    )
    same_next = (pl.col("symbol") == pl.col("symbol").shift(-1)).fill_null(False)
    interior = grid.with_columns(
        pl.when(same_next).then(pl.col("ts").shift(-1)).alias("next")
    ).filter(pl.col("next") - pl.col("ts") > step_ms)
    missing = (pl.col("next") - pl.col("ts")) // step_ms - 1
    parts = [
        interior.select(
            _finding(
                "gap",
                ts_first=pl.col("ts") + step_ms,
                ts_last=pl.col("next") - step_ms,
                bars=missing,
                value=missing,
                detail=pl.format(
                    "{} missing bars, {} to {}",
                    missing,
                    _fmt_ts(pl.col("ts") + step_ms),
                    _fmt_ts(pl.col("next") - step_ms),
                ),
            )
        )
    ]
    # The expected grid: [start_ms, end_ms) when given, else the symbol's own first/last slot.
    first_slot = -(-start_ms // step_ms) * step_ms if start_ms is not None else None
    last_slot = ((end_ms - 1) // step_ms) * step_ms if end_ms is not None else None
    per_symbol = (
        ordered.group_by("symbol", maintain_order=True)
        .agg(pl.col("ts").min().alias("row_first"), pl.col("ts").max().alias("row_last"))
        .join(
            grid.group_by("symbol").agg(
                pl.col("ts").min().alias("first"),
                pl.col("ts").max().alias("last"),
                pl.len().cast(pl.Int64).alias("present"),
            ),
            on="symbol",
            how="left",
        )
        .with_columns(
            pl.col("present").fill_null(0),
            (pl.lit(first_slot, pl.Int64) if first_slot is not None else pl.col("first")).alias(
                "slot_first"
            ),
            (pl.lit(last_slot, pl.Int64) if last_slot is not None else pl.col("last")).alias(
                "slot_last"
            ),
        )
        .with_columns(
            ((pl.col("slot_last") - pl.col("slot_first")) // step_ms + 1)
            .clip(lower_bound=0)
            .fill_null(0)
            .alias("expected")
        )
    )
    edges = []
    if first_slot is not None:
        # missing bars before the first bar; a symbol with no bar in range misses all of it
        stop = pl.coalesce(pl.col("first") - step_ms, pl.col("slot_last"))
        edges.append((pl.lit(first_slot, pl.Int64), stop, "at the start of the range"))
    if last_slot is not None:
        edges.append((pl.col("last") + step_ms, pl.lit(last_slot, pl.Int64), "at the end"))
    for lo, hi, where in edges:
        bars = (hi - lo) // step_ms + 1
        parts.append(
            per_symbol.filter((hi >= lo).fill_null(False)).select(
                _finding(
                    "gap",
                    ts_first=lo,
                    ts_last=hi,
                    bars=bars,
                    value=bars,
                    detail=pl.format(
                        f"{{}} missing bars {where}, {{}} to {{}}", bars, _fmt_ts(lo), _fmt_ts(hi)
                    ),
                )
            )
        )
    outside = []
    if start_ms is not None:
        outside.append(("before start_ms", pl.col("ts") < start_ms))
    if end_ms is not None:
        outside.append(("at or after end_ms", pl.col("ts") >= end_ms))
    for side, cond in outside:
        parts.append(
            ordered.filter(cond)
            .group_by("symbol", maintain_order=True)
            .agg(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi"), pl.len())
            .select(
                _finding(
                    "outside_range",
                    ts_first=pl.col("lo"),
                    ts_last=pl.col("hi"),
                    bars=pl.col("len"),
                    value=pl.col("len"),
                    detail=pl.format(f"{{}} rows {side}", "len"),
                )
            )
        )
    return pl.concat(parts), per_symbol


def _series(ordered: pl.DataFrame) -> pl.DataFrame:
    """Bars with valid prices, one per ts (the first row given), sorted by ts per symbol."""
    series = ordered.filter(_VALID)
    first = ~(_SAME_SYMBOL & (pl.col("ts") == pl.col("ts").shift(1)))
    return series.filter(first).with_columns(
        pl.when(_SAME_SYMBOL).then(pl.col("close").shift(1)).alias("prev_close"),
        pl.when(_SAME_SYMBOL).then(pl.col("ts").shift(1)).alias("prev_ts"),
    )


OUTLIER_MIN_RETURNS = 30  # the fewest returns whose MAD is a usable scale (module docstring)


def _return_findings(
    series: pl.DataFrame,
    *,
    step_ms: int,
    mad_threshold: float,
    window_bars: int,
) -> pl.DataFrame:
    # Blocks of window_bars consecutive returns; the remainder joins the last full block.
    index = pl.int_range(pl.len()).over("symbol")
    last_block = (pl.len().over("symbol") // window_bars - 1).clip(lower_bound=0)
    block = pl.min_horizontal(index // window_bars, last_block)
    returns = (
        series.filter(pl.col("prev_close").is_not_null())
        .with_columns((pl.col("close") / pl.col("prev_close")).log().alias("ret"))
        .with_columns(block.alias("block"))
        .with_columns(pl.col("ret").median().over("symbol", "block").alias("centre"))
        .with_columns(
            (pl.col("ret") - pl.col("centre")).abs().median().over("symbol", "block").alias("scale")
        )
        .with_columns(
            ((pl.col("ret") - pl.col("centre")).abs() / (_MAD_TO_SD * pl.col("scale"))).alias(
                "multiple"
            )
        )
        .filter(
            (pl.col("scale") > 0)
            & (pl.col("multiple") > mad_threshold)
            & (pl.len().over("symbol", "block") >= OUTLIER_MIN_RETURNS)
        )
    )
    across = (pl.col("ts") - pl.col("prev_ts") - step_ms) // step_ms
    return returns.select(
        _finding(
            "outlier_return",
            ts_first=pl.col("ts"),
            ts_last=pl.col("ts"),
            bars=pl.lit(1),
            value=pl.col("ret"),
            detail=pl.concat_str(
                pl.lit("log return "),
                pl.col("ret").round(5).cast(pl.String),
                pl.lit(" is "),
                pl.col("multiple").round(1).cast(pl.String),
                pl.lit(" robust sd from the block median"),
                pl.when(pl.col("ts") - pl.col("prev_ts") > step_ms)
                .then(pl.lit("; spans a gap of ") + across.cast(pl.String) + " missing bars")
                .otherwise(pl.lit("")),
            ),
        )
    )


def _stale_findings(series: pl.DataFrame, *, stale_bars: int) -> pl.DataFrame:
    flat = (
        (pl.col("open") == pl.col("high"))
        & (pl.col("high") == pl.col("low"))
        & (pl.col("low") == pl.col("close"))
        & (pl.col("open") == pl.col("prev_close"))
    ).fill_null(False)
    starts = ~(_SAME_SYMBOL & (pl.col("flat") == pl.col("flat").shift(1)).fill_null(False))
    runs = (
        series.with_columns(flat.alias("flat"))
        .with_columns(starts.cum_sum().alias("run"))
        .filter("flat")
        .group_by("run", maintain_order=True)
        .agg(
            pl.col("symbol").first(),
            pl.col("ts").min().alias("lo"),
            pl.col("ts").max().alias("hi"),
            pl.len().alias("n"),
            pl.col("close").first().alias("price"),
        )
        .filter(pl.col("n") >= stale_bars)
    )
    return runs.select(
        _finding(
            "stale_price",
            ts_first=pl.col("lo"),
            ts_last=pl.col("hi"),
            bars=pl.col("n"),
            value=pl.col("price"),
            detail=pl.format("{} flat bars at the previous close {}", "n", "price"),
        )
    )


# -- the report -----------------------------------------------------------------------------
@dataclass(frozen=True)
class QualityReport:
    """Findings of ``quality_report``: ``issues`` (one row per finding) and ``summary``.

    ``summary`` has per symbol: ``rows`` (as given), ``expected_rows`` (grid slots),
    ``present_bars`` (distinct on-grid ts in range), ``coverage_pct``, ``missing_bars``,
    ``largest_gap_bars`` and ``largest_gap_ts`` (its first missing bar), ``errors``,
    ``warnings`` and one ``n_<check>`` column per check (findings, not bars).
    """

    source: str
    interval: str
    issues: pl.DataFrame
    summary: pl.DataFrame

    def problems(self) -> pl.DataFrame:
        """The issues without the info rows."""
        return self.issues.filter(pl.col("severity") != "info")

    def write(self, lake: Lake) -> WriteResult:
        """Store the issues as dataset ``quality``, replacing each reported symbol's rows.

        Each symbol's leaf file is replaced whole (written beside, then renamed), so a
        finding that a re-run no longer makes is gone; ``Lake.write`` would merge on the key
        and keep it. Stored rows carry ``ts`` (= ``ts_first``) for the lake's time filters.
        A symbol always has its ``coverage`` row, so a clean symbol still reads back.
        """
        spec = DATASETS["quality"]
        stored = self.issues.with_columns(pl.col("ts_first").alias("ts"))
        result = WriteResult("quality")
        for symbol in self.summary["symbol"].to_list():
            values = {"source": self.source, "interval": self.interval, "symbol": symbol}
            leaf = lake.lake_dir / spec.name
            for col in spec.partition_by:
                leaf = leaf / f"{col}={values[col]}"
            rows = (
                stored.filter(pl.col("symbol") == symbol)
                .drop(*spec.partition_by)
                .sort(list(spec.key))
            )
            path = Path(leaf) / "part-0.parquet"
            with atomic_path(path) as tmp:
                rows.write_parquet(tmp, compression="zstd", statistics=True)
            result.rows_added += rows.height
            result.rows_total += rows.height
            result.files_written.append(path)
        if result.files_written:
            lake.refresh_catalog()
        return result

    def __str__(self) -> str:
        lines = [
            f"Quality of {self.source} {self.interval} bars: {self.summary.height} symbol(s), "
            f"{self.summary['errors'].sum()} errors, {self.summary['warnings'].sum()} warnings"
        ]
        checks = [c for c in CHECKS if CHECKS[c] != "info"]
        for row in self.summary.iter_rows(named=True):
            found = ", ".join(
                f"{row[f'n_{c}']} {c}" for c in checks if row[f"n_{c}"] and c != "gap"
            )
            gap = ""
            if row["largest_gap_bars"]:
                gap = f", largest {row['largest_gap_bars']} at {_fmt_ms(row['largest_gap_ts'])}"
            coverage = row["coverage_pct"]
            lines.append(
                f"  {row['symbol']}: {row['rows']} rows, coverage "
                f"{'-' if coverage is None else f'{coverage:.2f}%'}, {row['n_gap']} gaps "
                f"({row['missing_bars']} bars{gap})" + (f"; {found}" if found else "")
            )
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        cols = [
            "symbol",
            "rows",
            "expected_rows",
            "coverage_pct",
            "n_gap",
            "missing_bars",
            "largest_gap_bars",
            "errors",
            "warnings",
        ]
        head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
        body = "".join(
            "| " + " | ".join(_cell(row[c]) for c in cols) + " |\n"
            for row in self.summary.iter_rows(named=True)
        )
        counts = (
            self.problems()
            .group_by("check", "severity")
            .agg(pl.len().alias("findings"), pl.col("bars").sum())
            .sort("severity", "findings", descending=[False, True])
        )
        found = "; ".join(f"{c} ({s}): {n} findings, {b} bars" for c, s, n, b in counts.iter_rows())
        return (
            f"**Quality of {self.source} {self.interval} bars**\n\n{head}{body}\n"
            + (found or "no problems found")
            + "\n"
        )


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value)


def _fmt_ms(ts_ms: int | None) -> str:
    if ts_ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def _prepare(bars: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in ("ts", "symbol", *_PRICES, "volume") if c not in bars.columns]
    if missing:
        raise ValueError(
            f"bars lacks column(s) {missing}; quality_report needs ts (epoch ms), symbol, "
            f"open, high, low, close, volume (research_lib.sources.base.BARS_SCHEMA)"
        )
    if not bars.schema["ts"].is_integer():
        raise ValueError(
            f"bars column 'ts' must be integer epoch ms, got {bars.schema['ts']}; "
            f"convert a datetime with pl.col('ts').dt.epoch('ms')"
        )
    nulls = bars["ts"].null_count() + bars["symbol"].null_count()
    if nulls:
        raise ValueError(
            f"bars has {nulls} null value(s) in 'ts' or 'symbol'; a bar without a time or a "
            f"symbol cannot be placed on the grid: drop those rows first"
        )
    return bars.select(
        pl.col("ts").cast(pl.Int64),
        pl.col("symbol").cast(pl.String),
        *(pl.col(c).cast(pl.Float64) for c in (*_PRICES, "volume")),
    ).with_row_index("row")


def quality_report(
    bars: pl.DataFrame,
    *,
    interval: str,
    source: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    mad_threshold: float = 10.0,
    stale_bars: int = 3,
    outlier_window_bars: int = 720,
) -> QualityReport:
    """Check candles for gaps, duplicates, bad bars, outlier returns and stale prices.

    The rules of each check are in the module docstring; ``bars`` is never changed.

    Parameters
    ----------
    bars
        Columns ts (epoch-ms bar open), symbol, open, high, low, close, volume; any row
        order, one or many symbols.
    interval
        Bar interval, a key of ``research_lib.config.INTERVAL_MS`` (``"1h"``).
    source
        Where the bars came from; stored with each finding.
    start_ms, end_ms
        The requested range [start_ms, end_ms): missing bars at either end are gaps and rows
        outside it are reported. Without them, each symbol's grid runs from its first to its
        last on-grid bar.
    mad_threshold
        Flag a log return this many robust standard deviations (1.4826 * MAD) from the
        median of its block.
    stale_bars
        Shortest run of flat bars (open = high = low = close = previous close) reported.
    outlier_window_bars
        Returns per block of the outlier check's median and MAD (720: 30 days of 1h bars).

    Returns
    -------
    QualityReport

    Examples
    --------
    >>> bars = pl.DataFrame({"ts": [0, 0, 7_200_000], "symbol": ["ETHUSDT"] * 3,
    ...     "open": [1.0, 1.0, 1.0], "high": [1.0, 1.0, 0.9], "low": [1.0, 1.0, 0.8],
    ...     "close": [1.0, 1.0, 1.0], "volume": [1.0, 1.0, 2.0]})
    >>> report = quality_report(bars, interval="1h", source="test", end_ms=10_800_000)
    >>> report.problems().select("check", "ts_first", "bars").rows()
    [('duplicate_identical', 0, 2), ('gap', 3600000, 1), ('high_below_open_close', 7200000, 1)]
    """
    if interval not in INTERVAL_MS:
        raise ValueError(f"interval {interval!r} is unknown; use one of {list(INTERVAL_MS)}")
    if not mad_threshold > 0:
        raise ValueError(f"mad_threshold = {mad_threshold} must be positive, e.g. 10.0")
    if stale_bars < 1:
        raise ValueError(f"stale_bars = {stale_bars} must be at least 1, e.g. 3")
    if outlier_window_bars < OUTLIER_MIN_RETURNS:
        raise ValueError(
            f"outlier_window_bars = {outlier_window_bars} must be at least "
            f"{OUTLIER_MIN_RETURNS}: the MAD of fewer returns is too noisy a scale"
        )
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise ValueError(f"end_ms ({end_ms}) must be after start_ms ({start_ms})")
    step_ms = INTERVAL_MS[interval]
    frame = _prepare(bars)
    ordered = _ordered(frame)
    grid, per_symbol = _grid_findings(ordered, step_ms=step_ms, start_ms=start_ms, end_ms=end_ms)
    series = _series(ordered)
    findings = pl.concat(
        [
            grid,
            _row_findings(frame, step_ms=step_ms, interval=interval),
            _duplicate_findings(ordered),
            _return_findings(
                series,
                step_ms=step_ms,
                mad_threshold=mad_threshold,
                window_bars=outlier_window_bars,
            ),
            _stale_findings(series, stale_bars=stale_bars),
        ]
    )
    gaps = findings.filter(pl.col("check") == "gap")
    largest = (
        gaps.sort("bars", "ts_first", descending=[True, False])
        .group_by("symbol", maintain_order=True)
        .first()
        .select(
            "symbol",
            pl.col("bars").alias("largest_gap_bars"),
            pl.col("ts_first").alias("largest_gap_ts"),
        )
    )
    counts = (
        findings.group_by("symbol", "check").len().pivot(on="check", index="symbol", values="len")
    )
    checks = [c for c in CHECKS if c != "coverage"]
    for check in checks:
        if check not in counts.columns:
            counts = counts.with_columns(pl.lit(0, pl.UInt32).alias(check))
    summary = (
        per_symbol.join(frame.group_by("symbol").len("rows"), on="symbol", how="left")
        .join(
            gaps.group_by("symbol").agg(pl.col("bars").sum().alias("missing_bars")),
            on="symbol",
            how="left",
        )
        .join(largest, on="symbol", how="left")
        .join(counts.select("symbol", *checks), on="symbol", how="left")
        .with_columns(
            pl.col("rows").cast(pl.Int64),
            pl.col("expected").alias("expected_rows"),
            pl.col("present").alias("present_bars"),
            (100.0 * pl.col("present") / pl.col("expected")).alias("coverage_pct"),
            pl.col("missing_bars").fill_null(0),
            pl.col("largest_gap_bars").fill_null(0),
            *(pl.col(c).fill_null(0).cast(pl.Int64).alias(f"n_{c}") for c in checks),
        )
        .with_columns(
            pl.sum_horizontal(f"n_{c}" for c in checks if CHECKS[c] == "error").alias("errors"),
            pl.sum_horizontal(f"n_{c}" for c in checks if CHECKS[c] == "warning").alias("warnings"),
        )
    )
    coverage = summary.select(
        _finding(
            "coverage",
            ts_first=pl.coalesce("slot_first", "row_first"),
            ts_last=pl.coalesce("slot_last", "row_last"),
            bars=pl.col("present"),
            value=pl.col("coverage_pct"),
            detail=pl.format(
                "{} of {} expected bars ({}%), {} gaps, {} missing",
                "present",
                "expected",
                pl.col("coverage_pct").round(2),
                "n_gap",
                "missing_bars",
            ),
        )
    )
    order = pl.DataFrame(
        {"check": list(CHECKS), "severity": list(CHECKS.values()), "_order": range(len(CHECKS))}
    )
    issues = (
        pl.concat([coverage, findings])
        .join(order, on="check", how="left")
        .sort("symbol", "ts_first", "_order")
        .select(
            pl.lit(source).alias("source"),
            pl.lit(interval).alias("interval"),
            *(c for c in ISSUES_SCHEMA if c not in ("source", "interval")),
        )
        .cast(ISSUES_SCHEMA)  # type: ignore[arg-type]
    )
    summary = summary.select(
        pl.lit(source).alias("source"),
        pl.lit(interval).alias("interval"),
        "symbol",
        "rows",
        "expected_rows",
        "present_bars",
        "coverage_pct",
        "missing_bars",
        "largest_gap_bars",
        "largest_gap_ts",
        "errors",
        "warnings",
        *(f"n_{c}" for c in checks),
    ).sort("symbol")
    return QualityReport(source=source, interval=interval, issues=issues, summary=summary)
