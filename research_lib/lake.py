"""The data lake: parquet datasets in a hive layout, catalogued as DuckDB views.

Layout::

    data/lake/<dataset>/<col>=<value>/.../part-0.parquet
    data/lake.duckdb            one view per dataset over its parquet files

Each leaf partition holds one file. A write merges the new rows into that file on the
dataset's key and replaces it atomically (temp file, then rename), so re-collecting a range
adds nothing and a crash leaves either the old file or the new one. Raw datasets are
append-only: a row already stored is never changed. Derived datasets (features, predictions)
replace rows with the same key.

Examples
--------
>>> import tempfile
>>> import polars as pl
>>> lake = Lake(Path(tempfile.mkdtemp()))
>>> bars = pl.DataFrame({"ts": [0, 3_600_000], "symbol": ["BTCUSDT"] * 2,
...                      "open": [1.0, 2.0], "high": [1.0, 2.0], "low": [1.0, 2.0],
...                      "close": [1.0, 2.0], "volume": [5.0, 6.0]})
>>> lake.write("bars", bars, partition={"source": "synthetic", "interval": "1h"}).rows_added
2
>>> lake.write("bars", bars, partition={"source": "synthetic", "interval": "1h"}).rows_added
0
>>> lake.read("bars", filters={"symbol": "BTCUSDT"}).height
2
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from research_lib.atomic import atomic_path
from research_lib.paths import data_dir


class MissingInputError(RuntimeError):
    """A stage asked for lake data that no earlier stage has written."""


@dataclass(frozen=True)
class DatasetSpec:
    """How a dataset is laid out and who produces it."""

    name: str
    partition_by: tuple[str, ...]
    key: tuple[str, ...]
    produced_by: str
    append_only: bool
    monthly: bool = False
    """Add a ``month=YYYY-MM`` partition from ``ts``, so files stay small as history grows."""


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("bars", ("source", "interval", "symbol"), ("ts",), "00_collect", True, True),
        DatasetSpec("funding", ("source", "symbol"), ("ts",), "00_collect", True, True),
        # Aggregated price, market cap and volume (CoinGecko): snapshots, not OHLC bars.
        DatasetSpec("prices", ("source", "interval", "symbol"), ("ts",), "00_collect", True, True),
        DatasetSpec("features", ("source", "interval", "symbol"), ("ts",), "10_features", False),
        DatasetSpec("predictions", ("source", "interval", "symbol"), ("ts",), "20_model", False),
        # The promotion gate's records (research_lib.gate), one row per criterion.
        DatasetSpec(
            "validations", ("candidate_kind",), ("record_id", "criterion"), "40_validate", False
        ),
        DatasetSpec(
            "quality", ("source", "interval", "symbol"), ("check", "ts_first"), "00_collect", False
        ),
        # Decoded EVM logs (research_lib.sources.evm) and the block headers read with them.
        DatasetSpec(
            "evm_events", ("chain", "event"), ("block", "log_index"), "50_defi", True, True
        ),
        DatasetSpec("evm_blocks", ("chain",), ("block",), "50_defi", True, True),
        # Ranges a collector fetched in full and stored: re-collecting skips them (gaps too).
        DatasetSpec(
            "collect_log", ("source", "dataset"), ("symbol", "interval", "ts"), "00_collect", False
        ),
    )
}


@dataclass
class WriteResult:
    """What one write did: rows added, rows now stored, files replaced, conflicting rows kept."""

    dataset: str
    rows_added: int = 0
    rows_total: int = 0
    files_written: list[Path] = field(default_factory=list)
    conflicts: int = 0
    """Rows whose key was already stored with different values (raw data keeps the old row)."""


def _spec(dataset: str) -> DatasetSpec:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known datasets: {sorted(DATASETS)}")
    return DATASETS[dataset]


def _partition_constants(spec: DatasetSpec, partition: Mapping[str, str] | None) -> dict[str, str]:
    constants = dict(partition or {})
    unknown = sorted(set(constants) - set(spec.partition_by))
    if unknown:
        raise ValueError(
            f"partition key(s) {unknown} are not partitions of {spec.name!r}; "
            f"its partitions are {list(spec.partition_by)}"
        )
    return constants


def _month_of(ts_ms: pl.Expr) -> pl.Expr:
    return pl.from_epoch(ts_ms, time_unit="ms").dt.strftime("%Y-%m")


class Lake:
    """A parquet lake rooted at ``root`` (default: ``research_lib.paths.data_dir()``)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else data_dir()
        self.lake_dir = self.root / "lake"
        self.catalog_path = self.root / "lake.duckdb"

    # -- writing ------------------------------------------------------------------------
    def write(
        self,
        dataset: str,
        frame: pl.DataFrame,
        *,
        partition: Mapping[str, str] | None = None,
        refresh: bool = True,
    ) -> WriteResult:
        """Merge ``frame`` into ``dataset`` and refresh the catalog.

        Parameters
        ----------
        dataset
            A name from ``DATASETS``.
        frame
            Rows to store. Partition columns may be columns of the frame or constants given in
            ``partition``; every other column is stored.
        partition
            Constant partition values, e.g. ``{"source": "synthetic", "interval": "1h"}``.
        refresh
            Refresh the DuckDB catalog after writing. A collector writing many batches passes
            False and calls ``refresh_catalog`` once at the end.
        """
        spec = _spec(dataset)
        constants = _partition_constants(spec, partition)
        frame = frame.with_columns(
            pl.lit(v, dtype=pl.String).alias(k) for k, v in constants.items()
        )
        missing = [c for c in (*spec.partition_by, *spec.key) if c not in frame.columns]
        if missing:
            raise ValueError(f"{dataset!r} frame lacks column(s) {missing}; it has {frame.columns}")
        if frame.schema["ts"] != pl.Int64:
            raise ValueError(
                f"{dataset!r} column 'ts' must be Int64 epoch-ms, got {frame.schema['ts']}"
            )
        partition_cols = list(spec.partition_by)
        if spec.monthly:
            frame = frame.with_columns(_month_of(pl.col("ts")).alias("month"))
            partition_cols.append("month")
        self._reject_duplicates(spec, frame, partition_cols)

        result = WriteResult(dataset)
        # One pass splits the rows by leaf; sorting first keeps every leaf's rows sorted.
        leaves = frame.sort(list(spec.key)).partition_by(
            partition_cols, as_dict=True, maintain_order=True, include_key=False
        )
        for values, group in leaves.items():
            leaf = self.lake_dir / dataset
            for col, value in zip(partition_cols, values, strict=True):
                leaf = leaf / f"{col}={value}"
            self._merge_leaf(spec, leaf / "part-0.parquet", group, result)
        if result.files_written and refresh:
            self.refresh_catalog()
        return result

    @staticmethod
    def _reject_duplicates(
        spec: DatasetSpec, frame: pl.DataFrame, partition_cols: list[str]
    ) -> None:
        keys = [*partition_cols, *spec.key]
        dupes = frame.filter(pl.struct(keys).is_duplicated())
        if dupes.height:
            first = dupes.row(0, named=True)
            where = ", ".join(f"{k}={first[k]!r}" for k in keys)
            raise ValueError(
                f"{spec.name!r} frame has {dupes.height} rows with a duplicated key "
                f"{list(spec.key)} (first: {where}); nothing was written"
            )

    def _merge_leaf(
        self, spec: DatasetSpec, path: Path, rows: pl.DataFrame, result: WriteResult
    ) -> None:
        key = list(spec.key)
        if not path.exists():
            merged, added = rows, rows.height
        else:
            stored = pl.read_parquet(path)
            if stored.columns != rows.columns or stored.schema != rows.schema:
                rows = rows.select(stored.columns).cast(stored.schema)
            fresh = rows.join(stored, on=key, how="anti")
            overlap = rows.join(stored, on=key, how="semi")
            if overlap.height:
                same = overlap.join(stored, on=rows.columns, how="semi", nulls_equal=True)
                changed = overlap.height - same.height
            else:
                changed = 0
            if spec.append_only:
                result.conflicts += changed
                if fresh.height == 0:
                    result.rows_total += stored.height
                    return
                merged = pl.concat([stored, fresh]).sort(key)
            else:
                if fresh.height == 0 and changed == 0:
                    result.rows_total += stored.height
                    return
                merged = pl.concat([stored.join(rows, on=key, how="anti"), rows]).sort(key)
            added = fresh.height
        with atomic_path(path) as tmp:
            merged.write_parquet(tmp, compression="zstd", statistics=True)
        result.rows_added += added
        result.rows_total += merged.height
        result.files_written.append(path)

    def delete_rows(
        self,
        dataset: str,
        where: pl.Expr,
        *,
        partition: Mapping[str, str] | None = None,
        refresh: bool = True,
    ) -> int:
        """Delete the rows matching ``where`` from the leaves under ``partition``.

        For the one case where stored rows stop being true: an indexer rolling back rows
        from blocks that a chain reorganisation orphaned. Each affected leaf is rewritten
        atomically (or removed when emptied); returns the number of rows deleted.
        """
        spec = _spec(dataset)
        constants = _partition_constants(spec, partition)
        base = self.lake_dir / dataset
        pattern = "/".join(
            f"{c}={constants[c]}" if c in constants else f"{c}=*" for c in spec.partition_by
        )
        deleted = 0
        changed = False
        for path in sorted(base.glob(f"{pattern}/**/*.parquet")):
            stored = pl.read_parquet(path)
            kept = stored.filter(~where)
            if kept.height == stored.height:
                continue
            deleted += stored.height - kept.height
            changed = True
            if kept.height == 0:
                path.unlink()
            else:
                with atomic_path(path) as tmp:
                    kept.write_parquet(tmp, compression="zstd", statistics=True)
        if changed and refresh:
            self.refresh_catalog()
        return deleted

    # -- reading ------------------------------------------------------------------------
    def files(self, dataset: str) -> list[Path]:
        """Every parquet file of ``dataset``, sorted."""
        _spec(dataset)
        return sorted((self.lake_dir / dataset).glob("**/*.parquet"))

    def read(
        self,
        dataset: str,
        *,
        filters: Mapping[str, str | Sequence[str]] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Read ``dataset`` as a polars frame, sorted by partition columns and key.

        ``filters`` selects partition values (one value or a list). ``start_ms``/``end_ms``
        keep rows with ``start_ms <= ts < end_ms``. ``columns`` reads only those data
        columns (with the partition columns and the key). Raises ``MissingInputError`` naming
        the stage to run first when nothing matches.
        """
        spec = _spec(dataset)
        filters = dict(filters or {})
        unknown = sorted(set(filters) - set(spec.partition_by))
        if unknown:
            raise ValueError(
                f"filter key(s) {unknown} are not partitions of {dataset!r}; "
                f"use one of {list(spec.partition_by)}"
            )
        if not self.files(dataset):
            raise self._missing(spec, filters)
        hive_schema = {c: pl.String for c in spec.partition_by}
        if spec.monthly:
            hive_schema["month"] = pl.String
        scan = pl.scan_parquet(
            self.lake_dir / dataset / "**" / "*.parquet",
            hive_partitioning=True,
            hive_schema=hive_schema,
        )
        for col, wanted in filters.items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            scan = scan.filter(pl.col(col).is_in(values))
        if start_ms is not None:
            scan = scan.filter(pl.col("ts") >= start_ms)
        if end_ms is not None:
            scan = scan.filter(pl.col("ts") < end_ms)
        if columns is not None:
            keep = dict.fromkeys([*spec.partition_by, *spec.key, *columns])
            if spec.monthly:
                keep["month"] = None
            scan = scan.select(list(keep))
        frame = scan.collect()
        if spec.monthly:
            frame = frame.drop("month")
        if frame.height == 0:
            raise self._missing(spec, filters, start_ms, end_ms)
        data_cols = [c for c in frame.columns if c not in spec.partition_by]
        return frame.select(*spec.partition_by, *data_cols).sort([*spec.partition_by, *spec.key])

    def _missing(
        self,
        spec: DatasetSpec,
        filters: Mapping[str, object],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> MissingInputError:
        window = ""
        if start_ms is not None or end_ms is not None:
            window = f" in [{_fmt_ms(start_ms)}, {_fmt_ms(end_ms)})"
        return MissingInputError(
            f"no {spec.name!r} data in the lake at {self.lake_dir} for {dict(filters)}{window}. "
            f"Run stage {spec.produced_by} first: open notebooks/{spec.produced_by}.ipynb, or "
            f"run `python -m research_lib.pipeline run --profile demo`."
        )

    def file_hashes(self, datasets: Sequence[str] | None = None) -> dict[str, str]:
        """sha256 of every parquet file, keyed by its path relative to the lake folder."""
        hashes: dict[str, str] = {}
        for name in datasets or sorted(DATASETS):
            for path in self.files(name):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                hashes[str(path.relative_to(self.lake_dir))] = digest
        return hashes

    def coverage(self) -> pl.DataFrame:
        """Rows and time span per dataset and leaf partition (without the month split)."""
        parts = []
        for name, spec in DATASETS.items():
            if not self.files(name):
                continue
            frame = (
                self.read(name)
                .group_by(list(spec.partition_by))
                .agg(
                    pl.len().alias("rows"),
                    pl.col("ts").min().alias("first_ts"),
                    pl.col("ts").max().alias("last_ts"),
                )
            )
            key = pl.concat_str(
                [pl.lit(f"{c}=") + pl.col(c) for c in spec.partition_by], separator="/"
            )
            parts.append(
                frame.select(
                    pl.lit(name).alias("dataset"),
                    key.alias("partition"),
                    "rows",
                    "first_ts",
                    "last_ts",
                )
            )
        if not parts:
            return pl.DataFrame(
                schema={
                    "dataset": pl.String,
                    "partition": pl.String,
                    "rows": pl.UInt32,
                    "first_ts": pl.Int64,
                    "last_ts": pl.Int64,
                }
            )
        return (
            pl.concat(parts)
            .with_columns(
                pl.from_epoch("first_ts", time_unit="ms").alias("first"),
                pl.from_epoch("last_ts", time_unit="ms").alias("last"),
            )
            .sort("dataset", "partition")
        )

    # -- the DuckDB catalog -------------------------------------------------------------
    def refresh_catalog(self) -> None:
        """(Re)create one DuckDB view per dataset that has files."""
        statements = []
        for name, spec in DATASETS.items():
            if not self.files(name):
                continue
            glob = (self.lake_dir / name / "**" / "*.parquet").as_posix().replace("'", "''")
            hive_types = {c: "VARCHAR" for c in spec.partition_by}
            if spec.monthly:
                hive_types["month"] = "VARCHAR"
            types_sql = "{" + ", ".join(f"'{c}': {t}" for c, t in hive_types.items()) + "}"
            statements.append(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{glob}', "
                f"hive_partitioning = true, hive_types = {types_sql}, union_by_name = true)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        with self._connect(read_only=False) as con:
            for sql in statements:
                con.execute(sql)

    def sql(self, query: str) -> pl.DataFrame:
        """Run a read-only SQL query against the catalog and return a polars frame."""
        if not self.catalog_path.exists():
            raise MissingInputError(
                f"no lake catalog at {self.catalog_path}; run stage 00_collect first"
            )
        with self._connect(read_only=True) as con:
            return con.sql(query).pl()

    def _connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        # DuckDB allows one writing process per file; another process may hold it briefly.
        deadline = time.monotonic() + 30.0
        while True:
            try:
                return duckdb.connect(str(self.catalog_path), read_only=read_only)
            except duckdb.IOException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _fmt_ms(ts_ms: int | None) -> str:
    if ts_ms is None:
        return "…"
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")
