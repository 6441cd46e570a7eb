"""Collect a market's bars and funding from its source into the lake."""

from __future__ import annotations

import polars as pl
from tqdm.auto import tqdm

from research_lib.config import MarketConfig
from research_lib.lake import DATASETS, Lake, MissingInputError, WriteResult
from research_lib.sources import get_source

FUNDING_INTERVAL = "8h"  # perpetual funding settles every eight hours


def collect_market(market: MarketConfig, *, lake: Lake, progress: bool = True) -> pl.DataFrame:
    """Fetch ``market``'s bars and funding, one symbol at a time, and merge them into ``lake``.

    Re-collecting a range that is already stored adds no rows. Returns one row per dataset
    and symbol with the rows fetched, added and now stored, and conflicting rows (rows
    already stored with different values, which raw data keeps unchanged).
    """
    source = get_source(market)
    rows = []
    for symbol in tqdm(market.symbols, desc="collect", unit="symbol", disable=not progress):
        for dataset, interval, partition in (
            ("bars", market.interval, market.lake_partition),
            ("funding", FUNDING_INTERVAL, {"source": market.source}),
        ):
            frame = source.fetch(
                dataset=dataset,
                symbols=[symbol],
                interval=interval,
                start_ms=market.start_ms,
                end_ms=market.end_ms,
            )
            result: WriteResult = lake.write(dataset, frame, partition=partition)
            rows.append(
                {
                    "dataset": dataset,
                    "symbol": symbol,
                    "fetched": frame.height,
                    "added": result.rows_added,
                    "stored": result.rows_total,
                    "conflicts": result.conflicts,
                }
            )
    return pl.DataFrame(rows)


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
