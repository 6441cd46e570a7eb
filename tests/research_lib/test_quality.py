"""Candle quality report: each check against a brute-force loop, real-data anchors, the lake.

The reference below re-implements every rule of ``research_lib.quality`` as plain Python
loops over the rows; the injected-fault tests compare the two on random bars (Hypothesis
picks the data and where the fault goes) and check that the fault itself is found.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from research_lib import plots
from research_lib.lake import Lake
from research_lib.quality import CHECKS, ISSUES_SCHEMA, quality_report

HOUR = 3_600_000
PRICES = ("open", "high", "low", "close")
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
SPOT_1H = REAL / "cex" / "binance_spot_1h"
HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def clean_bars(seed: int, n: int = 200, symbols: tuple[str, ...] = ("BTCUSDT",)) -> pl.DataFrame:
    """Random-walk hourly bars with consistent OHLC, positive volume and no faults."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, symbol in enumerate(symbols):
        close = (100.0 + 50 * k) * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
        open_ = np.concatenate([[close[0] * 0.999], close[:-1]])
        wick = np.abs(rng.normal(0.0, 0.004, (2, n)))
        frames.append(
            pl.DataFrame(
                {
                    "ts": np.arange(n, dtype=np.int64) * HOUR + 1_700_000_000_000 // HOUR * HOUR,
                    "symbol": symbol,
                    "open": open_,
                    "high": np.maximum(open_, close) * (1 + wick[0]),
                    "low": np.minimum(open_, close) * (1 - wick[1]),
                    "close": close,
                    "volume": rng.uniform(1.0, 10.0, n),
                }
            )
        )
    return pl.concat(frames)


# -- the brute-force reference ----------------------------------------------------------------
def _valid(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def _same(x: float | None) -> object:
    return "nan" if x is not None and x != x else x


def reference_findings(
    bars: pl.DataFrame,
    *,
    step: int = HOUR,
    start: int | None = None,
    end: int | None = None,
    mad_threshold: float = 10.0,
    stale_bars: int = 3,
    window: int = 720,
) -> set[tuple]:
    """Every finding as (symbol, check, ts_first, ts_last, bars), by plain loops."""
    found: set[tuple] = set()
    per_row: Counter = Counter()
    by_symbol: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for i, row in enumerate(bars.rows(named=True)):
        by_symbol[row["symbol"]].append((i, row))
    for sym, items in by_symbol.items():
        prev = None
        for _, row in items:
            ts, vol = row["ts"], row["volume"]
            flags = []
            if ts % step:
                flags.append("off_grid")
            if prev is not None and ts < prev:
                flags.append("out_of_order")
            prev = ts
            valid = all(_valid(row[c]) for c in PRICES)
            if not valid:
                flags.append("bad_price")
            if vol is None or not math.isfinite(vol) or vol < 0:
                flags.append("bad_volume")
            if valid:
                o, h, lo, c = (row[p] for p in PRICES)
                if h < lo:
                    flags.append("high_below_low")
                if h < max(o, c):
                    flags.append("high_below_open_close")
                if lo > min(o, c):
                    flags.append("low_above_open_close")
            if vol == 0:
                flags.append("zero_volume")
            for check in flags:
                per_row[(sym, check, ts)] += 1
        by_ts: dict[int, list[dict]] = defaultdict(list)
        for _, row in items:
            by_ts[row["ts"]].append(row)
        for ts, group in by_ts.items():
            if len(group) > 1:
                distinct = {tuple(_same(r[c]) for c in (*PRICES, "volume")) for r in group}
                check = "duplicate_identical" if len(distinct) == 1 else "duplicate_conflicting"
                found.add((sym, check, ts, ts, len(group)))

        # the grid: gaps, coverage and rows outside the range
        def in_range(ts: int) -> bool:
            return (start is None or ts >= start) and (end is None or ts < end)

        present = sorted(ts for ts in by_ts if ts % step == 0 and in_range(ts))
        first = -(-start // step) * step if start is not None else (present or [None])[0]
        last = (end - 1) // step * step if end is not None else (present or [None])[-1]
        all_ts = [row["ts"] for _, row in items]
        found.add(
            (
                sym,
                "coverage",
                first if first is not None else min(all_ts),
                last if last is not None else max(all_ts),
                len(present),
            )
        )
        if first is not None and last is not None:
            have = set(present)
            run: list[int] = []
            for slot in [*range(first, last + 1, step), None]:
                if slot is not None and slot not in have:
                    run.append(slot)
                elif run:
                    found.add((sym, "gap", run[0], run[-1], len(run)))
                    run = []
        for side in (
            [ts for ts in all_ts if start is not None and ts < start],
            [ts for ts in all_ts if end is not None and ts >= end],
        ):
            if side:
                found.add((sym, "outside_range", min(side), max(side), len(side)))
        # the series of returns: valid prices, first row per ts, sorted by ts
        series, seen = [], set()
        for _, row in sorted(items, key=lambda item: (item[1]["ts"], item[0])):
            if all(_valid(row[c]) for c in PRICES) and row["ts"] not in seen:
                seen.add(row["ts"])
                series.append(row)
        rets = [(b["ts"], math.log(b["close"] / a["close"])) for a, b in itertools.pairwise(series)]
        n = len(rets)
        blocks: dict[int, list[int]] = defaultdict(list)
        for i in range(n):
            blocks[min(i // window, max(n // window - 1, 0))].append(i)
        for idx in blocks.values():
            if len(idx) < 30:  # too few returns for a usable MAD: nothing flagged
                continue
            centre = statistics.median(rets[i][1] for i in idx)
            scale = statistics.median(abs(rets[i][1] - centre) for i in idx)
            for i in idx:
                ts, r = rets[i]
                if scale > 0 and abs(r - centre) / (1.4826 * scale) > mad_threshold:
                    found.add((sym, "outlier_return", ts, ts, 1))
        run = []
        for a, b in [*itertools.pairwise(series), (None, None)]:
            flat = b is not None and b["open"] == b["high"] == b["low"] == b["close"] == a["close"]
            if flat:
                run.append(b["ts"])
            else:
                if len(run) >= stale_bars:
                    found.add((sym, "stale_price", run[0], run[-1], len(run)))
                run = []
    found |= {(sym, check, ts, ts, count) for (sym, check, ts), count in per_row.items()}
    return found


def findings(report) -> set[tuple]:
    return set(report.issues.select("symbol", "check", "ts_first", "ts_last", "bars").rows())


def check_against_reference(bars: pl.DataFrame, **options) -> set[tuple]:
    """Run the report and the reference on ``bars``; assert they agree and ``bars`` is intact."""
    before = bars.clone()
    ref_options = {
        "start": options.get("start_ms"),
        "end": options.get("end_ms"),
        "mad_threshold": options.get("mad_threshold", 10.0),
        "stale_bars": options.get("stale_bars", 3),
        "window": options.get("outlier_window_bars", 720),
    }
    report = quality_report(bars, interval="1h", source="test", **options)
    assert_frame_equal(bars, before)
    got = findings(report)
    assert got == reference_findings(bars, **ref_options)
    assert report.issues.schema == pl.Schema(ISSUES_SCHEMA)
    return got


def only(got: set[tuple], check: str) -> set[tuple]:
    return {f for f in got if f[1] == check}


def problems(got: set[tuple]) -> set[tuple]:
    return {f for f in got if CHECKS[f[1]] != "info"}


# -- clean data -------------------------------------------------------------------------------
@HYPOTHESIS
@given(seed=st.integers(0, 10_000), n=st.integers(2, 400))
@example(seed=17, n=6)  # 5 returns: one was 10 "robust sd" out before short blocks were skipped
def test_clean_bars_give_only_the_coverage_row(seed: int, n: int) -> None:
    bars = clean_bars(seed, n, ("BTCUSDT", "ETHUSDT"))
    got = check_against_reference(bars, outlier_window_bars=50)
    assert problems(got) == set()
    t0 = bars["ts"][0]
    assert got == {(s, "coverage", t0, t0 + (n - 1) * HOUR, n) for s in ("BTCUSDT", "ETHUSDT")}


# -- injected faults --------------------------------------------------------------------------
@HYPOTHESIS
@given(seed=st.integers(0, 10_000), at=st.integers(1, 150), length=st.integers(1, 40))
def test_a_missing_run_is_one_gap(seed: int, at: int, length: int) -> None:
    bars = clean_bars(seed)
    ts = bars["ts"]
    holed = bars.filter((pl.int_range(pl.len()) < at) | (pl.int_range(pl.len()) >= at + length))
    got = check_against_reference(holed)
    last = at + length - 1
    assert only(got, "gap") == {("BTCUSDT", "gap", ts[at], ts[last], length)}
    # the return across the gap may be large (it spans length + 1 bars); nothing else is
    assert problems(got) - only(got, "outlier_return") == only(got, "gap")


@HYPOTHESIS
@given(seed=st.integers(0, 10_000), head=st.integers(0, 20), tail=st.integers(0, 20))
def test_missing_bars_at_the_ends_of_the_range_are_gaps(seed: int, head: int, tail: int) -> None:
    bars = clean_bars(seed, 100)
    t0 = bars["ts"][0]
    start, end = t0 - head * HOUR, t0 + (100 + tail) * HOUR
    got = check_against_reference(bars, start_ms=start, end_ms=end)
    expected = set()
    if head:
        expected.add(("BTCUSDT", "gap", start, t0 - HOUR, head))
    if tail:
        expected.add(("BTCUSDT", "gap", t0 + 100 * HOUR, end - HOUR, tail))
    assert only(got, "gap") == expected
    assert ("BTCUSDT", "coverage", start, end - HOUR, 100) in got
    # a narrower range reports the rows outside it and does not count them
    got = check_against_reference(bars, start_ms=t0 + 10 * HOUR, end_ms=t0 + 90 * HOUR)
    assert only(got, "outside_range") == {
        ("BTCUSDT", "outside_range", t0, t0 + 9 * HOUR, 10),
        ("BTCUSDT", "outside_range", t0 + 90 * HOUR, t0 + 99 * HOUR, 10),
    }
    assert only(got, "gap") == set()


def test_a_symbol_with_no_bar_in_the_range_misses_all_of_it() -> None:
    bars = clean_bars(1, 10)
    t0 = bars["ts"][0]
    got = check_against_reference(bars, start_ms=t0 + 20 * HOUR, end_ms=t0 + 30 * HOUR)
    assert only(got, "gap") == {("BTCUSDT", "gap", t0 + 20 * HOUR, t0 + 29 * HOUR, 10)}
    assert ("BTCUSDT", "coverage", t0 + 20 * HOUR, t0 + 29 * HOUR, 0) in got


@HYPOTHESIS
@given(seed=st.integers(0, 10_000), at=st.integers(0, 199), conflicting=st.booleans())
def test_duplicates_identical_and_conflicting(seed: int, at: int, conflicting: bool) -> None:
    bars = clean_bars(seed)
    extra = bars.slice(at, 1)
    if conflicting:
        extra = extra.with_columns(((pl.col("high") + pl.col("low")) / 2).alias("close"))
    got = check_against_reference(pl.concat([bars, extra]))
    ts = bars["ts"][at]
    check = "duplicate_conflicting" if conflicting else "duplicate_identical"
    assert only(got, "duplicate_identical") | only(got, "duplicate_conflicting") == {
        ("BTCUSDT", check, ts, ts, 2)
    }


@HYPOTHESIS
@given(seed=st.integers(0, 10_000), at=st.integers(1, 199))
def test_swapped_rows_are_out_of_order(seed: int, at: int) -> None:
    bars = clean_bars(seed)
    order = list(range(200))
    order[at - 1], order[at] = order[at], order[at - 1]
    got = check_against_reference(bars[order])
    ts = bars["ts"][at - 1]
    assert only(got, "out_of_order") == {("BTCUSDT", "out_of_order", ts, ts, 1)}
    # sorting fixes it: nothing else is wrong
    assert problems(got) == only(got, "out_of_order")


VIOLATIONS = {
    "high_below_open_close": {
        "high": pl.max_horizontal("open", "close") - 0.25 * (pl.col("open") - pl.col("close")).abs()
    },
    "low_above_open_close": {
        "low": pl.min_horizontal("open", "close") + 0.25 * (pl.col("open") - pl.col("close")).abs()
    },
    "high_below_low": {"high": pl.col("low") * 0.99},
    "bad_price": {"open": pl.lit(float("nan"))},
    "bad_volume": {"volume": pl.lit(-1.0)},
    "zero_volume": {"volume": pl.lit(0.0)},
}
BAD_PRICES = [float("nan"), float("inf"), -float("inf"), 0.0, -5.0, None]


@pytest.mark.parametrize("check", list(VIOLATIONS))
@HYPOTHESIS
@given(seed=st.integers(0, 10_000), at=st.integers(0, 199))
def test_each_bar_violation_is_found(check: str, seed: int, at: int) -> None:
    bars = clean_bars(seed)
    hit = pl.int_range(pl.len()) == at
    faulty = bars.with_columns(
        pl.when(hit).then(value).otherwise(pl.col(col)).alias(col)
        for col, value in VIOLATIONS[check].items()
    )
    got = check_against_reference(faulty)
    ts = bars["ts"][at]
    assert ("BTCUSDT", check, ts, ts, 1) in got
    assert {f[2] for f in problems(got)} == {ts}


@HYPOTHESIS
@given(
    seed=st.integers(0, 10_000),
    at=st.integers(0, 199),
    field=st.sampled_from(PRICES),
    bad=st.sampled_from(BAD_PRICES),
)
def test_every_kind_of_bad_price_is_found(seed: int, at: int, field: str, bad: float) -> None:
    bars = clean_bars(seed)
    faulty = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == at)
        .then(pl.lit(bad, pl.Float64))
        .otherwise(pl.col(field))
        .alias(field)
    )
    got = check_against_reference(faulty)
    ts = bars["ts"][at]
    # the envelope checks skip a bar without valid prices
    assert problems(got) == {("BTCUSDT", "bad_price", ts, ts, 1)}


@HYPOTHESIS
@given(seed=st.integers(0, 10_000), at=st.integers(1, 198), factor=st.sampled_from([1.3, 0.7]))
def test_a_spike_is_an_outlier_return(seed: int, at: int, factor: float) -> None:
    bars = clean_bars(seed)
    hit = pl.int_range(pl.len()) == at
    spiked = bars.with_columns(
        pl.when(hit).then(pl.col("close") * factor).otherwise(pl.col("close")).alias("close")
    ).with_columns(
        pl.max_horizontal("high", "close").alias("high"),
        pl.min_horizontal("low", "close").alias("low"),
    )
    got = check_against_reference(spiked, outlier_window_bars=60)
    ts = bars["ts"]
    # the jump and the way back, each about 35 robust sd
    assert {f[2] for f in only(got, "outlier_return")} == {ts[at], ts[at + 1]}


@HYPOTHESIS
@given(seed=st.integers(0, 10_000), window=st.integers(30, 80), threshold=st.floats(2.0, 8.0))
def test_outlier_blocks_match_the_loop_on_fat_tails(
    seed: int, window: int, threshold: float
) -> None:
    rng = np.random.default_rng(seed)
    bars = clean_bars(seed, 300).with_columns(
        pl.Series("close", 100 * np.exp(np.cumsum(0.01 * rng.standard_t(2, 300))))
    )
    bars = bars.with_columns(
        pl.max_horizontal("high", "close", "open").alias("high"),
        pl.min_horizontal("low", "close", "open").alias("low"),
    )
    # a hole, so that some return spans a gap
    bars = bars.filter((pl.int_range(pl.len()) < 100) | (pl.int_range(pl.len()) > 104))
    check_against_reference(bars, outlier_window_bars=window, mad_threshold=threshold)


def test_a_return_across_a_gap_says_so() -> None:
    bars = clean_bars(3)
    bars = bars.filter((pl.int_range(pl.len()) < 100) | (pl.int_range(pl.len()) > 104))
    bars = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == 100)
        .then(pl.col("close") * 1.5)
        .otherwise(pl.col("close"))
        .alias("close")
    ).with_columns(pl.max_horizontal("high", "close").alias("high"))
    report = quality_report(bars, interval="1h", source="test")
    spike = report.issues.filter(
        (pl.col("check") == "outlier_return") & (pl.col("ts_first") == bars["ts"][100])
    )
    assert "spans a gap of 5 missing bars" in spike["detail"].item()
    assert spike["value"].item() == pytest.approx(
        math.log(bars["close"][100] / bars["close"][99]), rel=1e-12
    )


@HYPOTHESIS
@given(seed=st.integers(0, 10_000), at=st.integers(1, 150), length=st.integers(1, 12))
def test_a_flat_run_is_stale(seed: int, at: int, length: int) -> None:
    bars = clean_bars(seed)
    previous = bars["close"][at - 1]
    run = (pl.int_range(pl.len()) >= at) & (pl.int_range(pl.len()) < at + length)
    stale = bars.with_columns(
        pl.when(run).then(pl.lit(previous)).otherwise(pl.col(c)).alias(c) for c in PRICES
    )
    got = check_against_reference(stale, stale_bars=3)
    ts = bars["ts"]
    expected = {("BTCUSDT", "stale_price", ts[at], ts[at + length - 1], length)}
    assert only(got, "stale_price") == (expected if length >= 3 else set())


@HYPOTHESIS
@given(seed=st.integers(0, 10_000), at=st.integers(1, 198), offset=st.integers(1, HOUR - 1))
def test_an_off_grid_ts_is_found_and_leaves_its_slot_empty(seed: int, at: int, offset: int) -> None:
    bars = clean_bars(seed)
    shifted = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == at)
        .then(pl.col("ts") + offset)
        .otherwise(pl.col("ts"))
        .alias("ts")
    )
    got = check_against_reference(shifted)
    ts = bars["ts"][at]
    assert only(got, "off_grid") == {("BTCUSDT", "off_grid", ts + offset, ts + offset, 1)}
    assert only(got, "gap") == {("BTCUSDT", "gap", ts, ts, 1)}


@HYPOTHESIS
@given(
    seed=st.integers(0, 10_000),
    faults=st.lists(
        st.tuples(
            st.sampled_from(["drop", "dup", "swap", "nan", "flat", "spike"]), st.integers(1, 118)
        ),
        max_size=8,
    ),
)
def test_mixed_faults_on_two_symbols_match_the_loop(seed: int, faults: list) -> None:
    bars = clean_bars(seed, 120, ("AAA", "BBB")).to_dicts()
    for kind, at in faults:
        row = bars[at]
        if kind == "drop":
            bars.pop(at)
        elif kind == "dup":
            bars.append(dict(row, close=row["close"] * 1.001))
        elif kind == "swap":
            bars[at - 1], bars[at] = bars[at], bars[at - 1]
        elif kind == "nan":
            row["low"] = float("nan")
        elif kind == "flat":
            price = bars[at - 1]["close"]
            row.update(open=price, high=price, low=price, close=price)
        else:
            row.update(close=row["close"] * 2, high=row["close"] * 2)
    frame = pl.DataFrame(bars, schema=clean_bars(0, 1).schema)
    check_against_reference(frame, stale_bars=1, outlier_window_bars=40)


# -- the report object, validation, speed -----------------------------------------------------
def test_summary_counts_and_text() -> None:
    bars = clean_bars(5, 100, ("AAA", "BBB"))
    first_missing = bars["ts"][10]
    bars = bars.filter(~pl.int_range(pl.len()).is_in([10, 11, 12, 50]))
    bars = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == 30).then(0.0).otherwise(pl.col("volume")).alias("volume")
    )
    report = quality_report(bars, interval="1h", source="test")
    aaa = report.summary.filter(pl.col("symbol") == "AAA").row(0, named=True)
    assert (aaa["rows"], aaa["expected_rows"], aaa["missing_bars"]) == (96, 100, 4)
    assert (aaa["n_gap"], aaa["largest_gap_bars"], aaa["n_zero_volume"]) == (2, 3, 1)
    assert aaa["largest_gap_ts"] == first_missing
    assert aaa["coverage_pct"] == pytest.approx(96.0)
    assert (aaa["errors"], aaa["warnings"]) == (0, 3)
    bbb = report.summary.filter(pl.col("symbol") == "BBB").row(0, named=True)
    assert (bbb["missing_bars"], bbb["coverage_pct"]) == (0, 100.0)
    text = str(report)
    assert "AAA: 96 rows, coverage 96.00%, 2 gaps (4 bars, largest 3 at" in text
    assert "1 zero_volume" in text
    assert "| AAA | 96 | 100 |" in report._repr_markdown_()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"interval": "7m"}, "interval"),
        ({"mad_threshold": 0.0}, "mad_threshold"),
        ({"stale_bars": 0}, "stale_bars"),
        ({"outlier_window_bars": 29}, "outlier_window_bars"),
        ({"start_ms": 10, "end_ms": 10}, "end_ms"),
    ],
)
def test_bad_options_name_the_field(options: dict, field: str) -> None:
    kwargs = {"interval": "1h", "source": "test", **options}
    with pytest.raises(ValueError, match=field):
        quality_report(clean_bars(0, 5), **kwargs)


def test_bad_input_names_the_column() -> None:
    with pytest.raises(ValueError, match="volume"):
        quality_report(clean_bars(0, 5).drop("volume"), interval="1h", source="test")
    as_datetime = clean_bars(0, 5).with_columns(pl.from_epoch("ts", time_unit="ms"))
    with pytest.raises(ValueError, match="'ts' must be integer epoch ms"):
        quality_report(as_datetime, interval="1h", source="test")


def test_five_symbols_of_65k_hourly_bars_in_well_under_a_second() -> None:
    symbols = ("AAA", "BBB", "CCC", "DDD", "EEE")
    bars = clean_bars(0, 65_000, symbols)
    quality_report(bars, interval="1h", source="test")  # warm-up
    best = min(_timed(lambda: quality_report(bars, interval="1h", source="test")) for _ in range(3))
    assert best < 1.0, f"quality_report took {best:.2f} s for {bars.height} rows"


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# -- real data --------------------------------------------------------------------------------
# (symbol, gaps, missing bars, largest gap in missing bars, zero-volume bars): PROVENANCE.md
PROVENANCE_QC = [
    ("BTCUSDT", 28, 128, 33, 4),
    ("ETHUSDT", 28, 128, 33, 6),
    ("SOLUSDT", 10, 20, 4, 2),
    ("BNBUSDT", 27, 122, 33, 4),
    ("XRPUSDT", 25, 88, 10, 3),
]


def _real(symbol: str) -> pl.DataFrame:
    path = SPOT_1H / f"{symbol}.parquet"
    if not path.is_file():
        pytest.skip(f"real data not found at {path} (shared/data/real is not mounted)")
    return pl.read_parquet(path)


@pytest.mark.real_data
def test_real_btc_finds_the_known_outages() -> None:
    bars = _real("BTCUSDT")
    before = bars.clone()
    report = quality_report(bars, interval="1h", source="binance_spot")
    assert_frame_equal(bars, before)
    gaps = report.issues.filter(pl.col("check") == "gap")
    assert gaps.height == 28
    assert gaps["bars"].sum() == 128
    assert report.summary.select("n_gap", "missing_bars", "n_zero_volume").row(0) == (28, 128, 4)

    def utc(text: str) -> int:
        return int(pl.Series([text]).str.to_datetime(time_zone="UTC").dt.epoch("ms")[0])

    # the 2018-02-08/09 outage: last bar 2018-02-08 00:00, next 2018-02-09 10:00 (a 34-bar step)
    outage = gaps.filter(pl.col("bars") == 33)
    assert outage.select("ts_first", "ts_last").row(0) == (
        utc("2018-02-08 01:00"),
        utc("2018-02-09 09:00"),
    )
    assert outage.height == 1
    for day, hours in (("2018-06-26", 10), ("2019-05-15", 10), ("2019-08-15", 8)):
        on_day = gaps.filter(
            pl.from_epoch("ts_first", time_unit="ms").dt.strftime("%Y-%m-%d") == day
        )
        assert on_day["bars"].to_list() == [hours], day
    summary = report.summary.row(0, named=True)
    assert (summary["largest_gap_bars"], summary["largest_gap_ts"]) == (33, utc("2018-02-08 01:00"))
    # Binance's published bars are consistent: no duplicate, no bad or inconsistent bar
    assert summary["errors"] == 0
    assert summary["n_duplicate_identical"] == summary["n_out_of_order"] == 0


@pytest.mark.real_data
@pytest.mark.parametrize(("symbol", "gaps", "missing", "largest", "zero_volume"), PROVENANCE_QC)
def test_real_spot_1h_matches_provenance_qc(
    symbol: str, gaps: int, missing: int, largest: int, zero_volume: int
) -> None:
    summary = quality_report(_real(symbol), interval="1h", source="binance_spot").summary
    row = summary.row(0, named=True)
    assert (row["n_gap"], row["missing_bars"], row["largest_gap_bars"]) == (gaps, missing, largest)
    assert row["n_zero_volume"] == zero_volume
    assert row["rows"] + missing == row["expected_rows"]


# -- the lake ---------------------------------------------------------------------------------
def test_lake_round_trip_replaces_a_symbols_rows(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    bars = clean_bars(2, 100, ("AAA", "BBB"))
    faulty = bars.filter(~pl.int_range(pl.len()).is_in([5, 6, 40, 150])).with_columns(
        pl.when(pl.int_range(pl.len()) == 20).then(0.0).otherwise(pl.col("volume")).alias("volume")
    )
    report = quality_report(faulty, interval="1h", source="test")
    result = report.write(lake)
    assert result.rows_added == report.issues.height and len(result.files_written) == 2
    stored = lake.read("quality", filters={"source": "test", "interval": "1h"})
    back = stored.drop("ts").select(report.issues.columns)
    key = ["symbol", "check", "ts_first"]
    assert_frame_equal(back.sort(key), report.issues.sort(key))
    assert (stored["ts"] == stored["ts_first"]).all()

    # a re-run on repaired AAA data: AAA's old findings are gone, BBB's are untouched
    repaired = pl.concat(
        [bars.filter(pl.col("symbol") == "AAA"), faulty.filter(pl.col("symbol") == "BBB")]
    )
    quality_report(repaired, interval="1h", source="test").write(lake)
    again = lake.read("quality", filters={"symbol": "AAA"})
    assert again["check"].to_list() == ["coverage"]
    bbb = lake.read("quality", filters={"symbol": "BBB"}).drop("ts")
    assert_frame_equal(
        bbb.select(report.issues.columns).sort(key),
        report.issues.filter(pl.col("symbol") == "BBB").sort(key),
    )
    everything = lake.read("quality")
    assert (
        not everything.select("source", "interval", "symbol", "check", "ts_first")
        .is_duplicated()
        .any()
    )
    assert lake.sql("SELECT count(*) AS n FROM quality")["n"][0] == everything.height
    assert "quality" in lake.coverage()["dataset"].to_list()


# -- the figure -------------------------------------------------------------------------------
def test_quality_timeline_draws_gaps_and_flagged_bars() -> None:
    bars = clean_bars(4, 100, ("AAA", "BBB"))
    bars = bars.filter(~pl.int_range(pl.len()).is_in([10, 11, 12])).with_columns(
        pl.when(pl.int_range(pl.len()) == 60).then(0.0).otherwise(pl.col("volume")).alias("volume")
    )
    report = quality_report(bars, interval="1h", source="test")
    fig = plots.quality_timeline(report)
    by_name: dict[tuple[str, str], object] = {(t.name, t.type): t for t in fig.data}
    gap_bar = by_name[("gap", "bar")]
    assert list(gap_bar.y) == ["AAA"] and list(gap_bar.x) == [3 * HOUR]
    zero = by_name[("zero_volume", "scatter")]
    ts = bars["ts"][60]
    assert list(zero.y) == ["AAA"]
    assert zero.x[0] == pl.from_epoch(pl.Series([ts]), time_unit="ms")[0]
    covered = by_name[("covered", "bar")]
    assert sorted(covered.y) == ["AAA", "BBB"]


def test_a_block_too_short_for_a_robust_scale_flags_nothing() -> None:
    """20 returns with one 25 % jump: no outlier; with 40 returns, the same jump is one."""
    for n, flagged in ((21, False), (41, True)):
        bars = clean_bars(3, n)
        jump = pl.int_range(pl.len()) >= n // 2
        bars = bars.with_columns(
            pl.when(jump).then(pl.col(c) * 1.25).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        )
        got = check_against_reference(bars, outlier_window_bars=720)
        assert bool(only(got, "outlier_return")) is flagged
