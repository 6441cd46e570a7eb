"""research_lib.defi.lp: decimals, ticks, USD values, input checks, and the real Polygon pool.

References: a plain per-minute Python loop over the raw parquet rows (Python ints converted
to float, the contract's amount formulas, USD prices as 10**12 / 1.0001**tick, as
PROVENANCE.md defines them); range_backtest's summary for range_sweep; closed forms for
impermanent loss. The real file is ../shared/data/real/dex/
uniswap_v3_polygon_usdc_weth_005_1m.parquet (Polygon USDC.e/WETH 0.05 %, per minute,
2022-07-19 .. 2022-08-22); tests that need it skip when it is absent. Synthetic frames are
seeded tick walks built here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from research_lib.defi.lp import (
    MINUTE_COLUMNS,
    SUMMARY_COLUMNS,
    impermanent_loss_v2,
    impermanent_loss_v3_range,
    load_v3_minutes,
    prepare_v3_minutes,
    range_backtest,
    range_sweep,
)

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
POOL_FILE = REAL / "dex" / "uniswap_v3_polygon_usdc_weth_005_1m.parquet"
needs_real = pytest.mark.skipif(
    not POOL_FILE.is_file(), reason=f"real pool data not found at {POOL_FILE}"
)


def synthetic_raw(n: int, *, seed: int, tick0: int = 202_000) -> pl.DataFrame:
    """The provenance schema's integer columns for a seeded tick walk."""
    rng = np.random.default_rng(seed)
    ticks = tick0 + np.round(np.cumsum(rng.normal(0.0, 8.0, n))).astype(np.int64)
    return pl.DataFrame(
        {
            "ts": 1_658_188_800_000 + 60_000 * np.arange(n, dtype=np.int64),
            "close_tick": ticks.astype(np.int32),
            "in_amount0": (rng.lognormal(20.0, 1.5, n) * (rng.random(n) < 0.9)).astype(np.int64),
            "in_amount1": [int(x) * 10**6 for x in rng.lognormal(24.0, 1.5, n).astype(np.int64)],
            "liquidity": [int(x) * 10**6 for x in rng.lognormal(28.0, 0.3, n).astype(np.int64)],
        }
    )


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return prepare_v3_minutes(synthetic_raw(2000, seed=11))


@pytest.fixture(scope="module")
def real() -> pl.DataFrame:
    if not POOL_FILE.is_file():
        pytest.skip(f"real pool data not found at {POOL_FILE}")
    return load_v3_minutes(POOL_FILE)


# --- the reference: a plain loop over raw rows ------------------------------------------------


def reference_minutes(raw: pl.DataFrame, price_lower: float, price_upper: float, capital: float):
    """range_backtest's rules from scratch: raw ints, contract amounts, USDC per WETH."""
    log_base = math.log(1.0001)
    tick_lower = math.floor(math.log(1e12 / price_upper) / log_base / 10) * 10
    tick_upper = math.ceil(math.log(1e12 / price_lower) / log_base / 10) * 10
    sa, sb = 1.0001 ** (tick_lower / 2), 1.0001 ** (tick_upper / 2)

    def amounts(s: float, liq: float) -> tuple[float, float]:  # raw USDC, raw WETH
        if s <= sa:
            return liq * (sb - sa) / sb / sa, 0.0
        if s < sb:
            return liq * (sb - s) / sb / s, liq * (s - sa)
        return 0.0, liq * (sb - sa)

    rows = raw.select("close_tick", "in_amount0", "in_amount1", "liquidity").rows()
    s0 = 1.0001 ** (rows[0][0] / 2)
    per_l = amounts(s0, 1.0)
    liq = capital * 1e6 / (per_l[0] + per_l[1] / (s0 * s0))  # USD -> raw USDC per unit L
    h0, h1 = amounts(s0, liq)
    fees0 = fees1 = 0.0
    out = []
    for t, (tick, in0, in1, pool) in enumerate(rows):
        s = 1.0001 ** (tick / 2)
        price = 1e12 / 1.0001**tick  # USDC per WETH, as PROVENANCE.md
        in_range = tick_lower <= tick < tick_upper
        f0 = f1 = 0.0
        if t > 0 and in_range:
            share = liq / (float(pool) + liq)
            f0, f1 = float(in0) * 0.0005 * share, float(in1) * 0.0005 * share
        fees0, fees1 = fees0 + f0, fees1 + f1
        a0, a1 = amounts(s, liq)
        value = a0 / 1e6 + a1 / 1e18 * price
        hold = h0 / 1e6 + h1 / 1e18 * price
        fees_usd = fees0 / 1e6 + fees1 / 1e18 * price
        amounts_h = (a0 / 1e6, a1 / 1e18, value, hold, f0 / 1e6, f1 / 1e18, fees_usd)
        out.append((price, in_range, *amounts_h, value / hold - 1.0, value + fees_usd - hold))
    names = [c for c in MINUTE_COLUMNS if c != "ts"]
    return pl.DataFrame(out, schema=names, orient="row"), (tick_lower, tick_upper, liq)


def assert_matches_reference(raw: pl.DataFrame, lower: float, upper: float) -> None:
    result = range_backtest(
        prepare_v3_minutes(raw), price_lower=lower, price_upper=upper, capital_usd=10_000.0
    )
    want, (tick_lower, tick_upper, liq) = reference_minutes(raw, lower, upper, 10_000.0)
    summary = result.summary.row(0, named=True)
    assert (summary["tick_lower"], summary["tick_upper"]) == (tick_lower, tick_upper)
    np.testing.assert_allclose(summary["liquidity"], liq, rtol=1e-9)
    got = result.minutes
    assert got.columns == list(MINUTE_COLUMNS)
    assert got["in_range"].to_list() == want["in_range"].to_list()
    for name in want.columns:
        if name != "in_range":
            atol = 1e-12 if name == "il" else 1e-9 if name == "pnl_vs_hold_usd" else 0.0
            np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=atol, err_msg=name)
    assert got["in_range"].any() and not got["in_range"].all()


@pytest.mark.real_data
@needs_real
@pytest.mark.parametrize(("lower_frac", "upper_frac"), [(0.97, 1.03), (0.995, 1.004), (1.01, 1.2)])
def test_real_slice_matches_python_loop(lower_frac: float, upper_frac: float):
    raw = pl.read_parquet(POOL_FILE).slice(20_000, 3000)
    entry = 1e12 / 1.0001 ** raw["close_tick"][0]
    assert_matches_reference(raw, entry * lower_frac, entry * upper_frac)


def test_synthetic_matches_python_loop():
    raw = synthetic_raw(1500, seed=12)
    entry = 1e12 / 1.0001 ** raw["close_tick"][0]
    assert_matches_reference(raw, entry * 0.99, entry * 1.02)


# --- sweep == single backtests ----------------------------------------------------------------


def around(price: float, half_widths: list[float]) -> list[tuple[float, float]]:
    return [(price / (1 + w), price * (1 + w)) for w in half_widths]


@pytest.mark.real_data
@needs_real
def test_real_sweep_rows_equal_single_backtests(real: pl.DataFrame):
    part = real.slice(5_000, 10_000)
    ranges = [*around(part["price"][0], [0.002, 0.01, 0.03, 0.1, 0.5]), (1500.0, 1550.0)]
    table = range_sweep(part, ranges=ranges, capital_usd=25_000.0)
    assert table.columns == list(SUMMARY_COLUMNS) and table.height == len(ranges)
    for k, (lower, upper) in enumerate(ranges):
        single = range_backtest(part, price_lower=lower, price_upper=upper, capital_usd=25_000.0)
        assert_frame_equal(table.slice(k, 1), single.summary)


@given(st.floats(0.5, 0.999), st.floats(1.001, 2.0), st.integers(0, 1000))
@settings(max_examples=25, deadline=None)
def test_sweep_row_equals_backtest_on_random_ranges(lower_frac, upper_frac, seed):
    part = prepare_v3_minutes(synthetic_raw(300, seed=seed))
    entry = part["price"][0]
    ranges = [(entry * lower_frac, entry * upper_frac), (entry * 0.5, entry * 0.9)]
    table = range_sweep(
        part,
        ranges=pl.DataFrame(ranges, schema=["price_lower", "price_upper"], orient="row"),
        capital_usd=1000.0,
    )
    for k, (lower, upper) in enumerate(ranges):
        single = range_backtest(part, price_lower=lower, price_upper=upper, capital_usd=1000.0)
        assert_frame_equal(table.slice(k, 1), single.summary)


# --- per-minute properties --------------------------------------------------------------------


def test_conservation_and_one_token_out_of_range(frame: pl.DataFrame):
    entry = frame["price"][0]
    result = range_backtest(
        frame, price_lower=entry * 0.995, price_upper=entry * 1.01, capital_usd=5_000.0
    )
    m, s = result.minutes, result.summary.row(0, named=True)
    np.testing.assert_allclose(m["value_usd"], m["amount0"] + m["amount1"] * m["price"], 1e-12)
    assert m["value_usd"][0] == pytest.approx(5_000.0, rel=1e-12)
    assert m["hold_value_usd"][0] == pytest.approx(5_000.0, rel=1e-12)
    # ETH above the range: all USDC; below it: all WETH (the pool's orientation is inverted).
    above = m.filter(pl.col("price") > s["range_price_upper"])
    below = m.filter(pl.col("price") < s["range_price_lower"])
    assert above.height > 0 and below.height > 0
    assert (above["amount1"] == 0).all() and (below["amount0"] == 0).all()
    assert not above["in_range"].any() and (above["fees0"] == 0).all()
    assert (m["il"] <= 0).all() and (m["fees0"] >= 0).all() and (m["fees1"] >= 0).all()
    np.testing.assert_allclose(s["time_in_range"], m["in_range"].mean(), rtol=1e-15)


def test_causality_of_minutes(frame: pl.DataFrame):
    options = {"price_lower": 1600.0, "price_upper": 1750.0, "capital_usd": 1_000.0}
    full = range_backtest(frame, **options).minutes
    head = range_backtest(frame.head(700), **options).minutes
    assert_frame_equal(head, full.head(700))


def test_ticks_widen_outward_to_the_spacing(frame: pl.DataFrame):
    s = range_backtest(frame, price_lower=1600.0, price_upper=1750.0, capital_usd=1.0).summary
    row = s.row(0, named=True)
    assert row["tick_lower"] % 10 == 0 and row["tick_upper"] % 10 == 0
    assert row["range_price_lower"] <= 1600.0 < row["range_price_lower"] * 1.0001**10
    assert row["range_price_upper"] >= 1750.0 > row["range_price_upper"] / 1.0001**10
    np.testing.assert_allclose(row["range_price_lower"], 1e12 / 1.0001 ** row["tick_upper"], 1e-11)


def test_prepare_decimals_and_price():
    raw = synthetic_raw(50, seed=13)
    prepared = prepare_v3_minutes(raw)
    want = 1e12 / 1.0001 ** raw["close_tick"].cast(pl.Float64).to_numpy()
    np.testing.assert_allclose(prepared["price"], want, rtol=1e-10)
    assert prepared.schema["in_amount1_raw"] == pl.Float64
    assert prepared["pool_liquidity_raw"].to_list() == [float(x) for x in raw["liquidity"]]


# --- real data --------------------------------------------------------------------------------


@pytest.mark.real_data
@needs_real
def test_real_file_loads_with_the_provenance_prices(real: pl.DataFrame):
    assert real.height == 50_390
    file_price = pl.read_parquet(POOL_FILE, columns=["price_close"])["price_close"]
    np.testing.assert_allclose(real["price"], file_price, rtol=1e-10)
    assert real["in_amount1_raw"].max() > 1e20  # decimal128 kept its magnitude


@pytest.mark.real_data
@needs_real
def test_real_narrower_range_earns_more_in_each_shared_minute(real: pl.DataFrame):
    entry = real["price"][0]
    runs = [
        range_backtest(real, price_lower=lo, price_upper=hi, capital_usd=10_000.0).minutes
        for lo, hi in around(entry, [0.02, 0.1])
    ]
    both = runs[0]["in_range"] & runs[1]["in_range"]
    fees = [r["fees0"] + r["fees1"] * r["price"] for r in runs]
    earning = both & (fees[1] > 0)
    assert earning.sum() > 1000
    assert (fees[0].filter(earning) > fees[1].filter(earning)).all()


@pytest.mark.real_data
@needs_real
def test_real_realistic_range_summary(real: pl.DataFrame):
    entry = real["price"][0]
    s = range_backtest(
        real, price_lower=entry * 0.9, price_upper=entry * 1.1, capital_usd=10_000.0
    ).summary.row(0, named=True)
    assert 0.0 < s["time_in_range"] < 1.0
    assert s["fees_usd"] > 0 and -0.05 < s["il"] <= 0
    # Fees are a few percent a week of the capital in a 0.05% pool: sane, not absurd.
    assert 100.0 < s["fees_usd"] < 5_000.0
    np.testing.assert_allclose(
        s["net_pnl_vs_hold_usd"], s["final_value_usd"] + s["fees_usd"] - s["hold_value_usd"]
    )
    wide = range_sweep(real, ranges=[(100.0, 100_000.0)], capital_usd=10_000.0)
    assert wide["time_in_range"][0] == 1.0


# --- impermanent loss wrappers ----------------------------------------------------------------


def test_impermanent_loss_kinds_and_values():
    assert impermanent_loss_v2(4.0) == pytest.approx(-0.2, rel=1e-15)
    arr = impermanent_loss_v2([1.0, 4.0, 0.25])
    assert isinstance(arr, np.ndarray)
    np.testing.assert_allclose(arr, [0.0, -0.2, -0.2], atol=1e-16)
    series = impermanent_loss_v2(pl.Series("r", [1.0, 4.0]))
    assert isinstance(series, pl.Series) and series.name == "r"
    v3 = impermanent_loss_v3_range(1.05, price_entry=1.0, price_lower=0.9, price_upper=1.1)
    r = 1.05
    closed = (2 * math.sqrt(r) - 1 - r) / (1 + r - math.sqrt(0.9) - r / math.sqrt(1.1))
    assert v3 == pytest.approx(closed, rel=1e-12)


@given(st.floats(100.0, 5000.0), st.floats(100.0, 5000.0), st.floats(0.5, 0.99), st.floats(1.01, 2))
@settings(max_examples=200, deadline=None)
def test_v3_range_loss_is_orientation_free_and_full_range_is_v2(price, entry, lo, hi):
    usd = impermanent_loss_v3_range(
        price, price_entry=entry, price_lower=entry * lo, price_upper=entry * hi
    )
    inverted = impermanent_loss_v3_range(
        1 / price, price_entry=1 / entry, price_lower=1 / (entry * hi), price_upper=1 / (entry * lo)
    )
    assert usd <= 0
    np.testing.assert_allclose(usd, inverted, rtol=1e-9, atol=1e-14)
    full = impermanent_loss_v3_range(
        price, price_entry=entry, price_lower=entry * 1e-30, price_upper=entry * 1e30
    )
    np.testing.assert_allclose(full, impermanent_loss_v2(price / entry), rtol=1e-9, atol=1e-15)


# --- input checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"price_lower": -1.0}, r"price_lower must be finite and > 0, got -1\.0"),
        ({"price_lower": math.nan}, r"price_lower must be finite and > 0, got nan"),
        ({"price_upper": 1500.0}, r"price_upper \(1500\.0\) must be > price_lower \(1600\.0\)"),
        ({"capital_usd": 0.0}, r"capital_usd must be finite and > 0, got 0\.0"),
        ({"capital_usd": "10"}, r"capital_usd must be a number, got '10'"),
        ({"fee_tier_bps": 10_000.0}, r"fee_tier_bps must be < 10000"),
        ({"fee_tier_bps": -5.0}, r"fee_tier_bps must be finite and > 0, got -5\.0"),
        ({"tick_spacing": 0}, r"tick_spacing must be in \[1, 16384\], got 0"),
        ({"decimals0": 18, "decimals1": 6}, r"decimals0=18, decimals1=6 give price"),
        ({"price_lower": 1e-40}, r"outside the usable"),
    ],
)
def test_bad_options_name_field_and_value(frame: pl.DataFrame, options: dict, message: str):
    base = {"price_lower": 1600.0, "price_upper": 1750.0, "capital_usd": 1_000.0}
    with pytest.raises(ValueError, match=message):
        range_backtest(frame, **(base | options))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("in_amount0_raw", None, r"column 'in_amount0_raw' has null/NaN at row 7"),
        ("in_amount1_raw", math.nan, r"column 'in_amount1_raw' has null/NaN at row 7"),
        ("pool_liquidity_raw", -1.0, r"column 'pool_liquidity_raw' has -1\.0 at row 7"),
        ("close_tick", None, r"column 'close_tick' is null at row 7"),
        ("ts", 0, r"column 'ts' must be strictly increasing .* row 7"),
    ],
)
def test_bad_rows_name_column_and_row(frame: pl.DataFrame, column, value, message):
    dtype = frame.schema[column]
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit(value, dtype=dtype))
        .otherwise(pl.col(column))
        .alias(column)
    )
    with pytest.raises(ValueError, match=message):
        range_backtest(bad, price_lower=1600.0, price_upper=1750.0, capital_usd=1.0)
    with pytest.raises(ValueError, match=message):
        range_sweep(bad, ranges=[(1600.0, 1750.0)], capital_usd=1.0)


def test_bad_frames_and_ranges(frame: pl.DataFrame):
    with pytest.raises(ValueError, match=r"frame lacks columns \['in_amount0_raw'"):
        range_backtest(
            frame.drop("in_amount0_raw"), price_lower=1.0, price_upper=2.0, capital_usd=1.0
        )
    with pytest.raises(ValueError, match="frame has 0 rows"):
        range_backtest(frame.head(0), price_lower=1.0, price_upper=2.0, capital_usd=1.0)
    with pytest.raises(ValueError, match="ranges is empty"):
        range_sweep(frame, ranges=[], capital_usd=1.0)
    with pytest.raises(ValueError, match=r"price_upper\[1\] \(1\.0\) must be > price_lower"):
        range_sweep(frame, ranges=[(1.0, 2.0), (2.0, 1.0)], capital_usd=1.0)
    with pytest.raises(ValueError, match=r"ranges\[0\] is \(1\.0,\)"):
        range_sweep(frame, ranges=[(1.0,)], capital_usd=1.0)
    with pytest.raises(ValueError, match=r"price_ratio has -1\.0 at index 1"):
        impermanent_loss_v2([1.0, -1.0])
    with pytest.raises(ValueError, match=r"price has nan at index 0"):
        impermanent_loss_v3_range(math.nan, price_entry=1.0, price_lower=0.5, price_upper=2.0)
    with pytest.raises(ValueError, match=r"raw frame lacks columns \['liquidity'\]"):
        prepare_v3_minutes(synthetic_raw(5, seed=1).drop("liquidity"))
    with pytest.raises(ValueError, match="is not a file"):
        load_v3_minutes("/nonexistent/pool.parquet")
