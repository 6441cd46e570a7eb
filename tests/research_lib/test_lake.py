"""The lake: hive layout, atomic and idempotent writes, polars reads, the DuckDB catalog."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from research_lib.lake import Lake, MissingInputError

HOUR = 3_600_000
PARTITION = {"source": "synthetic", "interval": "1h"}


def make_bars(
    start_bar: int, stop_bar: int, symbols: tuple[str, ...] = ("BTCUSDT",)
) -> pl.DataFrame:
    """Deterministic bars whose values depend only on (symbol, bar index)."""
    frames = []
    for k, symbol in enumerate(symbols):
        idx = np.arange(start_bar, stop_bar, dtype=np.int64)
        close = 100.0 + k + np.sin(idx / 7.0)
        frames.append(
            pl.DataFrame(
                {
                    "ts": idx * HOUR,
                    "symbol": symbol,
                    "open": close - 0.1,
                    "high": close + 0.5,
                    "low": close - 0.5,
                    "close": close,
                    "volume": 10.0 + idx % 5,
                }
            )
        )
    return pl.concat(frames)


def test_write_uses_hive_layout_and_reads_back_as_polars(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    bars = make_bars(0, 48, ("BTCUSDT", "ETHUSDT"))
    result = lake.write("bars", bars, partition=PARTITION)
    assert result.rows_added == 96
    leaf = tmp_path / "lake/bars/source=synthetic/interval=1h/symbol=ETHUSDT/month=1970-01"
    assert (leaf / "part-0.parquet").is_file()
    back = lake.read("bars", filters={"symbol": "ETHUSDT"})
    assert isinstance(back, pl.DataFrame)
    expected = bars.filter(pl.col("symbol") == "ETHUSDT")
    assert_frame_equal(
        back.drop("source", "interval"), expected.select(back.drop("source", "interval").columns)
    )
    assert back["source"].unique().to_list() == ["synthetic"]


def test_recollecting_the_same_range_adds_no_rows_and_leaves_files_untouched(
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path)
    bars = make_bars(0, 100)
    lake.write("bars", bars, partition=PARTITION)
    files = lake.files("bars")
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    again = lake.write("bars", bars, partition=PARTITION)
    assert again.rows_added == 0
    assert again.files_written == []
    assert again.rows_total == 100
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in lake.files("bars")} == before
    assert lake.read("bars").height == 100


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    a=st.integers(0, 900),
    lengths=st.tuples(st.integers(1, 900), st.integers(1, 900)),
    overlap=st.integers(0, 50),
)
def test_split_collection_equals_one_collection(
    tmp_path_factory: pytest.TempPathFactory, a: int, lengths: tuple[int, int], overlap: int
) -> None:
    b = a + lengths[0]
    c = b + lengths[1]
    whole = Lake(tmp_path_factory.mktemp("whole"))
    whole.write("bars", make_bars(a, c), partition=PARTITION)
    parts = Lake(tmp_path_factory.mktemp("parts"))
    parts.write("bars", make_bars(a, b), partition=PARTITION)
    # the second request may overlap the first: the overlap must not add rows
    parts.write("bars", make_bars(max(a, b - overlap), c), partition=PARTITION)
    assert_frame_equal(parts.read("bars"), whole.read("bars"))
    assert parts.read("bars").height == c - a


def test_raw_data_is_append_only_and_conflicts_are_counted(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    bars = make_bars(0, 10)
    lake.write("bars", bars, partition=PARTITION)
    revised = bars.with_columns(
        pl.when(pl.col("ts") == 3 * HOUR).then(999.0).otherwise(pl.col("close")).alias("close")
    )
    result = lake.write("bars", revised, partition=PARTITION)
    assert result.conflicts == 1
    assert result.rows_added == 0
    assert 999.0 not in lake.read("bars")["close"].to_list()


def test_derived_data_replaces_rows_with_the_same_key(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    feats = make_bars(0, 10).select("ts", "symbol", pl.col("close").alias("ema_fast"))
    lake.write("features", feats, partition=PARTITION)
    lake.write("features", feats.with_columns(pl.col("ema_fast") * 2), partition=PARTITION)
    stored = lake.read("features")
    assert stored.height == 10
    assert np.allclose(stored["ema_fast"].to_numpy(), feats["ema_fast"].to_numpy() * 2)


def test_duplicated_keys_are_rejected_and_nothing_is_written(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    bars = make_bars(0, 5)
    with pytest.raises(ValueError, match=r"duplicated key \['ts'\].*ts=7200000"):
        lake.write("bars", pl.concat([bars, bars.slice(2, 1)]), partition=PARTITION)
    assert lake.files("bars") == []


def test_a_crash_mid_write_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(tmp_path)
    lake.write("bars", make_bars(0, 10), partition=PARTITION)
    (path,) = lake.files("bars")
    before = path.read_bytes()
    real_write = pl.DataFrame.write_parquet

    def crash(self: pl.DataFrame, file: Path, **kwargs: object) -> None:
        real_write(self.head(1), file)  # a partial file on disk, then the process "dies"
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", crash)
    with pytest.raises(OSError, match="disk full"):
        lake.write("bars", make_bars(0, 20), partition=PARTITION)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]


def test_missing_input_names_the_stage_to_run_first(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    with pytest.raises(MissingInputError, match=r"[Rr]un stage 10_features first"):
        lake.read("features")
    lake.write("bars", make_bars(0, 5), partition=PARTITION)
    with pytest.raises(MissingInputError, match="00_collect"):
        lake.read("bars", filters={"symbol": "DOGEUSDT"})


def test_bad_arguments_name_the_field(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'candles'"):
        lake.read("candles")
    with pytest.raises(ValueError, match=r"\['venue'\] are not partitions of 'bars'"):
        lake.write("bars", make_bars(0, 2), partition={"venue": "x"})
    with pytest.raises(ValueError, match="column 'ts' must be Int64"):
        lake.write(
            "bars", make_bars(0, 2).with_columns(pl.col("ts").cast(pl.Float64)), partition=PARTITION
        )


def test_duckdb_catalog_has_a_view_per_dataset_readable_read_only(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.write("bars", make_bars(0, 30, ("BTCUSDT", "ETHUSDT")), partition=PARTITION)
    with duckdb.connect(str(tmp_path / "lake.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT symbol, count(*) AS n, sum(close) AS s FROM bars GROUP BY 1 ORDER BY 1"
        ).fetchall()
    expected = (
        make_bars(0, 30, ("BTCUSDT", "ETHUSDT"))
        .group_by("symbol")
        .agg(pl.col("close").sum())
        .sort("symbol")
    )
    assert [r[0] for r in rows] == ["BTCUSDT", "ETHUSDT"]
    assert [r[1] for r in rows] == [30, 30]
    assert np.allclose([r[2] for r in rows], expected["close"].to_numpy())
    assert lake.sql("SELECT count(*) AS n FROM bars")["n"][0] == 60


def test_coverage_and_hashes_describe_the_stored_files(tmp_path: Path) -> None:
    import hashlib

    lake = Lake(tmp_path)
    lake.write("bars", make_bars(0, 800), partition=PARTITION)  # spans two months
    coverage = lake.coverage()
    assert coverage.select("dataset", "partition", "rows").row(0) == (
        "bars",
        "source=synthetic/interval=1h/symbol=BTCUSDT",
        800,
    )
    hashes = lake.file_hashes(["bars"])
    assert len(hashes) == 2
    for rel, digest in hashes.items():
        assert hashlib.sha256((lake.lake_dir / rel).read_bytes()).hexdigest() == digest
