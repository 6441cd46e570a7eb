"""Collect a market's bars and funding from its source into the lake: incremental, resumable.

For each symbol and dataset the collector works out which parts of [start, end) are not yet
collected, fetches only those, page by page, and writes every ``flush_rows`` rows to the lake
(merge on the key, write-then-rename), so memory stays bounded however long the history.

What has been collected is recorded in the lake's ``collect_log`` dataset: one row per range
fetched in full and stored, written *after* its rows. Re-collecting skips logged ranges,
including the exchange's own gaps (a known outage is asked for once, not on every run).
A collector killed at any point loses nothing and duplicates nothing: rows already written
stay, their range is either logged or fetched again, and the lake's merge never stores a key
twice. Bars of the current, still open interval are never collected from a live venue.

Examples
--------
>>> covered = [(0, 10), (20, 30)]
>>> missing_ranges(5, 40, covered)
[(10, 20), (30, 40)]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl
from tqdm.auto import tqdm

from research_lib.config import INTERVAL_MS, MarketConfig
from research_lib.lake import DATASETS, Lake, MissingInputError
from research_lib.sources import get_source
from research_lib.sources.base import DataError, SourceError, validate_page

__all__ = [
    "FLUSH_ROWS",
    "FUNDING_INTERVAL",
    "CollectError",
    "collect_market",
    "missing_ranges",
    "read_market",
]

FUNDING_INTERVAL = "8h"  # perpetual funding settles every eight hours
FUNDING_INTERVAL_MS = 8 * 3_600_000
FLUSH_ROWS = 50_000  # rows buffered before a lake write: bounds memory, keeps files few


class CollectError(RuntimeError):
    """Some symbols could not be collected; what the others fetched is stored and logged."""


@dataclass
class _Task:
    dataset: str
    symbol: str
    interval: str
    step_ms: int
    partition: dict[str, str]
    ranges: list[tuple[int, int]]
    fetched: int = 0
    added: int = 0
    conflicts: int = 0
    pages: int = 0
    seconds: float = 0.0
    error: str = ""


def missing_ranges(
    start_ms: int, end_ms: int, covered: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The parts of [start_ms, end_ms) not inside any of the ``covered`` [a, b) ranges."""
    gaps = []
    cursor = start_ms
    for a, b in sorted(covered):
        if b <= cursor:
            continue
        if a >= end_ms:
            break
        if a > cursor:
            gaps.append((cursor, min(a, end_ms)))
        cursor = max(cursor, b)
        if cursor >= end_ms:
            break
    if cursor < end_ms:
        gaps.append((cursor, end_ms))
    return gaps


def _covered(lake: Lake, *, source: str, dataset: str, symbol: str, interval: str) -> list:
    if not lake.files("collect_log"):
        return []
    try:
        log = lake.read("collect_log", filters={"source": source, "dataset": dataset})
    except MissingInputError:
        return []
    log = log.filter((pl.col("symbol") == symbol) & (pl.col("interval") == interval))
    return list(zip(log["ts"].to_list(), log["end_ts"].to_list(), strict=True))


def _datasets(market: MarketConfig) -> list[tuple[str, str, int, dict[str, str]]]:
    """(dataset, interval, grid step in ms, partition) that ``market`` collects."""
    main = "bars" if market.has_bars else "prices"
    out = [(main, market.interval, market.interval_ms, market.lake_partition)]
    if market.has_funding:
        out.append(("funding", FUNDING_INTERVAL, FUNDING_INTERVAL_MS, {"source": market.source}))
    return out


def _pages(
    source: object, *, dataset: str, symbol: str, interval: str, start_ms: int, end_ms: int
) -> Iterator[pl.DataFrame]:
    """The source's pages; a source with only ``fetch`` gives one page."""
    if hasattr(source, "pages"):
        yield from source.pages(
            dataset=dataset, symbol=symbol, interval=interval, start_ms=start_ms, end_ms=end_ms
        )
        return
    frame = source.fetch(
        dataset=dataset, symbols=[symbol], interval=interval, start_ms=start_ms, end_ms=end_ms
    )
    yield validate_page(
        frame,
        dataset=dataset,
        where=f"{getattr(source, 'name', source)} {dataset} {symbol}",
        interval_ms=INTERVAL_MS.get(interval) if dataset == "bars" else None,
        start_ms=start_ms,
        end_ms=end_ms,
    )


class _Collector:
    def __init__(self, market: MarketConfig, lake: Lake, source: object, flush_rows: int) -> None:
        self.market = market
        self.lake = lake
        self.source = source
        self.flush_rows = flush_rows
        self.log_lock = threading.Lock()

    def run(self, task: _Task, bar: tqdm) -> None:
        started = time.perf_counter()
        try:
            for start_ms, end_ms in task.ranges:
                self._range(task, start_ms, end_ms, bar)
        except (SourceError, DataError, OSError) as exc:
            task.error = f"{type(exc).__name__}: {exc}"
        finally:
            task.seconds = time.perf_counter() - started

    def _range(self, task: _Task, start_ms: int, end_ms: int, bar: tqdm) -> None:
        buffer: list[pl.DataFrame] = []
        buffered = 0
        logged_to = start_ms  # [start_ms, logged_to) is stored and logged
        progress_to = start_ms
        for page in _pages(
            self.source,
            dataset=task.dataset,
            symbol=task.symbol,
            interval=task.interval,
            start_ms=start_ms,
            end_ms=end_ms,
        ):
            task.pages += 1
            if page.height == 0:
                continue
            task.fetched += page.height
            buffer.append(page)
            buffered += page.height
            reached = min(end_ms, int(page["ts"][-1]) + self._after_last(task))
            bar.update((reached - progress_to) / task.step_ms)
            progress_to = reached
            if buffered >= self.flush_rows:
                self._flush(task, buffer, logged_to, reached)
                logged_to = reached
                buffer, buffered = [], 0
        self._flush(task, buffer, logged_to, end_ms)
        bar.update((end_ms - progress_to) / task.step_ms)

    @staticmethod
    def _after_last(task: _Task) -> int:
        # Bars sit on a grid: the next one starts a step later. Funding times carry a few ms
        # of jitter, so the next settlement is only known to start after this one.
        return task.step_ms if task.dataset == "bars" else 1

    def _flush(self, task: _Task, buffer: list[pl.DataFrame], lo: int, hi: int) -> None:
        if buffer:
            frame = pl.concat(buffer, how="vertical").unique(
                "ts", keep="first", maintain_order=True
            )
            result = self.lake.write(task.dataset, frame, partition=task.partition, refresh=False)
            task.added += result.rows_added
            task.conflicts += result.conflicts
        if hi <= lo:
            return
        entry = pl.DataFrame(
            {
                "symbol": [task.symbol],
                "interval": [task.interval],
                "ts": [lo],
                "end_ts": [hi],
                "rows": [sum(f.height for f in buffer)],
                "logged_at_ms": [int(time.time() * 1000)],
            },
            schema_overrides={"ts": pl.Int64, "end_ts": pl.Int64, "rows": pl.Int64},
        )
        with self.log_lock:  # one log file per (source, dataset): writes must not interleave
            self.lake.write(
                "collect_log",
                entry,
                partition={"source": self.market.source, "dataset": task.dataset},
                refresh=False,
            )


def collect_market(
    market: MarketConfig,
    *,
    lake: Lake,
    progress: bool = True,
    source: object | None = None,
    now_ms: int | None = None,
    flush_rows: int = FLUSH_ROWS,
    workers: int | None = None,
) -> pl.DataFrame:
    """Fetch what the lake lacks of ``market``'s bars (funding too for perpetuals) and store it.

    A source without bars (CoinGecko) fills the ``prices`` dataset instead.

    Parameters
    ----------
    market
        Source, symbols, interval and the [start, end) range.
    lake
        Where rows and the collect log go.
    progress
        Show one progress bar (in bars of time, with an ETA) over all symbols.
    source
        The source to read; by default ``research_lib.sources.get_source(market)``.
    now_ms
        The current time, for live venues: bars from the interval that is still open are
        left for a later run. Defaults to the clock.
    flush_rows
        Rows buffered before each lake write.
    workers
        Symbols collected at once (HTTP concurrency is bounded by the source's client too);
        by default up to 4 for network sources and 1 for the synthetic market.

    Returns
    -------
    pl.DataFrame
        One row per dataset and symbol: rows fetched, added and now stored in the range,
        conflicting rows (already stored with other values; raw data keeps the stored row),
        pages read, ranges fetched, seconds.

    Raises
    ------
    CollectError
        Naming each symbol that failed and why, after the others have been collected.
    """
    owned = source is None
    source = get_source(market) if owned else source
    try:
        return _collect(market, lake, source, progress, now_ms, flush_rows, workers)
    finally:
        if owned and hasattr(source, "close"):
            source.close()


def _collect(
    market: MarketConfig,
    lake: Lake,
    source: object,
    progress: bool,
    now_ms: int | None,
    flush_rows: int,
    workers: int | None,
) -> pl.DataFrame:
    live = market.source != "synthetic"
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    tasks: list[_Task] = []
    for dataset, interval, step_ms, partition in _datasets(market):
        end_ms = market.end_ms
        if live:  # the open interval is not final yet
            settled = {
                "bars": now_ms // step_ms * step_ms,  # the open bar starts here
                "prices": now_ms - step_ms,  # the venue rewrites its newest snapshot
            }
            end_ms = min(end_ms, settled.get(dataset, now_ms))
        for symbol in market.symbols:
            covered = _covered(
                lake, source=market.source, dataset=dataset, symbol=symbol, interval=interval
            )
            ranges = missing_ranges(market.start_ms, end_ms, covered)
            tasks.append(_Task(dataset, symbol, interval, step_ms, partition, ranges))
    first_files = [d for d in {t.dataset for t in tasks} | {"collect_log"} if not lake.files(d)]
    total = sum((b - a) / t.step_ms for t in tasks for a, b in t.ranges)
    collector = _Collector(market, lake, source, flush_rows)
    by_symbol: dict[str, list[_Task]] = {}
    for task in tasks:
        by_symbol.setdefault(task.symbol, []).append(task)
    n_workers = workers or (min(4, len(by_symbol)) if live else 1)

    def run_symbol(symbol_tasks: list[_Task]) -> None:
        for task in symbol_tasks:
            collector.run(task, bar)

    with tqdm(
        total=round(total),
        desc=f"collect {market.source}",
        unit="bar",
        disable=not progress or total == 0,
        bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} bars [{elapsed}<{remaining}]",
    ) as bar:
        if n_workers == 1:
            for symbol_tasks in by_symbol.values():
                run_symbol(symbol_tasks)
        else:
            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                list(pool.map(run_symbol, by_symbol.values()))
    # The catalog's views glob their dataset's files, so new files need no refresh; only a
    # dataset's first files (its view does not exist yet) or a missing catalog do.
    if not lake.catalog_path.exists() or any(lake.files(d) for d in first_files):
        lake.refresh_catalog()
    summary = _summary(market, lake, tasks)
    failed = [t for t in tasks if t.error]
    if failed:
        lines = "\n".join(f"  {t.dataset} {t.symbol}: {t.error}" for t in failed)
        raise CollectError(
            f"{len(failed)} of {len(tasks)} collections failed; the rows fetched before the "
            f"failure are stored, and a re-run resumes from there:\n{lines}"
        )
    return summary


def _summary(market: MarketConfig, lake: Lake, tasks: list[_Task]) -> pl.DataFrame:
    stored: dict[tuple[str, str], int] = {}
    for dataset in {t.dataset for t in tasks}:
        filters = {
            k: v for k, v in market.lake_partition.items() if k in DATASETS[dataset].partition_by
        }
        try:
            frame = lake.read(
                dataset,
                filters=filters,
                start_ms=market.start_ms,
                end_ms=market.end_ms,
                columns=(),
            )
        except MissingInputError:
            continue
        for symbol, n in frame.group_by("symbol").len().iter_rows():
            stored[(dataset, symbol)] = n
    return pl.DataFrame(
        [
            {
                "dataset": t.dataset,
                "symbol": t.symbol,
                "fetched": t.fetched,
                "added": t.added,
                "stored": stored.get((t.dataset, t.symbol), 0),
                "conflicts": t.conflicts,
                "pages": t.pages,
                "ranges": len(t.ranges),
                "seconds": round(t.seconds, 3),
            }
            for t in tasks
        ],
        schema_overrides={"seconds": pl.Float64},
    )


def read_market(market: MarketConfig, dataset: str, *, lake: Lake) -> pl.DataFrame:
    """``market``'s rows of a bar-aligned dataset in [start, end), partition columns dropped.

    Raises ``MissingInputError`` naming the stage to run first when any symbol is absent.
    """
    partition = {
        k: v for k, v in market.lake_partition.items() if k in DATASETS[dataset].partition_by
    }
    frame = lake.read(
        dataset,
        filters={**partition, "symbol": list(market.symbols)},
        start_ms=market.start_ms,
        end_ms=market.end_ms,
    )
    absent = sorted(set(market.symbols) - set(frame["symbol"].unique().to_list()))
    if absent:
        spec = DATASETS[dataset]
        raise MissingInputError(
            f"no {dataset!r} rows for symbol(s) {absent} ({market.source}, {market.interval}, "
            f"{market.start} to {market.end}); run stage {spec.produced_by} for them first"
        )
    return frame.drop(*partition)
