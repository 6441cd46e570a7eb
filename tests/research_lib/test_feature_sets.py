"""research_lib.feature_sets: each feature set against pandas / TA-Lib / brute force, causality
(detect_lookahead, a multi-symbol truncation check, a Hypothesis property) with planted
look-ahead variants that the same checks must catch, real data, and input errors.

Fixtures are seeded random-walk bars built in this file (with gaps cut into them); the real
data is ``../shared/data/real/cex`` (Binance spot 1h/1d, USDⓈ-M funding) and the Polygon
Uniswap V3 minutes in ``../shared/data/real/dex``, skipped when absent.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import polars as pl
import pytest
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from research_lib import feature_sets as fs
from research_lib.paths import real_data_dir
from research_lib.validation import detect_lookahead

HOUR = 3_600_000
MINUTE = 60_000
DAY = 86_400_000
START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
SMALL = {"rsi_bars": 3, "ema_bars": 3, "volatility_bars": 3, "atr_bars": 3}
RTOL, ATOL = 1e-9, 1e-12
PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_bars(
    symbol: str,
    n: int,
    *,
    seed: int,
    start: int = START,
    interval: int = HOUR,
    drop: tuple[int, ...] = (),
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    frame = pl.DataFrame(
        {
            "ts": start + np.arange(n, dtype=np.int64) * interval,
            "symbol": [symbol] * n,
            "open": open_,
            "high": np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.005, n)),
            "low": np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.005, n)),
            "close": close,
            "volume": rng.uniform(1.0, 10.0, n),
        }
    )
    keep = np.ones(n, dtype=bool)
    keep[list(drop)] = False
    return frame.filter(pl.Series(keep))


@functools.cache
def market() -> pl.DataFrame:
    """Three symbols, interleaved by ts; ETH starts a day late, BTC (the reference) has gaps."""
    btc = make_bars("BTCUSDT", 24 * 12, seed=1, start=START + 5 * HOUR, drop=(30, 31, 100, 200))
    eth = make_bars("ETHUSDT", 24 * 11, seed=2, start=START + DAY, drop=(50,))
    sol = make_bars("SOLUSDT", 24 * 12, seed=3, drop=(7, 150, 151, 152))
    return pl.concat([btc, eth, sol]).sort("ts", "symbol")


def as_array(series: pl.Series) -> np.ndarray:
    return series.cast(pl.Float64).fill_null(np.nan).to_numpy()


def assert_matches(actual: pl.Series, expected: np.ndarray, *, name: str = "") -> None:
    """Same nulls (never NaN), values within RTOL relative (ATOL absolute near zero)."""
    assert actual.dtype == pl.Float64, name
    assert not actual.is_nan().any(), f"{name}: NaN leaked out"
    got = as_array(actual)
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
    assert np.isfinite(got).sum() > 0, f"{name}: all null, nothing compared"
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=name)


def assert_frames_equal(a: pl.DataFrame, b: pl.DataFrame, columns: list[str]) -> None:
    for column in columns:
        x, y = as_array(a[column]), as_array(b[column])
        np.testing.assert_array_equal(x, y, err_msg=column)


def truncation_mismatches(run, bars: pl.DataFrame, cuts: list[int]) -> list[tuple[int, str]]:
    """Multi-symbol look-ahead check: recompute on every bar with ts <= t, compare rows at t."""
    full = run(bars)
    columns = fs.feature_columns(full)
    bad = []
    for t in cuts:
        part = run(bars.filter(pl.col("ts") <= t))
        a = full.filter(pl.col("ts") == t).sort("symbol")
        b = part.filter(pl.col("ts") == t).sort("symbol")
        for column in columns:
            x, y = as_array(a[column]), as_array(b[column])
            if not np.array_equal(x, y, equal_nan=True):
                bad.append((t, column))
    return bad


# --- multi-timeframe ------------------------------------------------------------------------


def mtf_reference(bars: pl.DataFrame, *, tf: str, tf_ms: int, interval: int) -> dict:
    """pandas resample (epoch origin) + TA-Lib on complete HTF bars + merge_asof on close."""
    df = bars.to_pandas()
    df.index = pd.to_datetime(df["ts"], unit="ms")
    htf = df.resample(f"{tf_ms // MINUTE}min", origin="epoch", label="left", closed="left").agg(
        {"high": "max", "low": "min", "close": "last", "ts": "size"}
    )
    htf = htf[htf["ts"] == tf_ms // interval]
    h, lo, c = (htf[k].to_numpy(dtype=float) for k in ("high", "low", "close"))
    logc = pd.Series(np.log(c))
    values = pd.DataFrame(
        {
            f"ret_1_{tf}": logc.diff().to_numpy(),
            f"rsi_3_{tf}": talib.RSI(c, 3),
            f"close_ema_3_{tf}": c / talib.EMA(c, 3) - 1.0,
            f"rv_3_{tf}": logc.diff().rolling(3).std(ddof=1).to_numpy(),
            f"natr_3_{tf}": talib.NATR(h, lo, c, 3),
            "close_time": htf.index.as_unit("ms").asi8 + tf_ms,
        }
    )
    left = pd.DataFrame({"close_time": df["ts"].to_numpy() + interval})
    merged = pd.merge_asof(left, values, on="close_time", direction="backward")
    return {k: merged[k].to_numpy() for k in values.columns if k != "close_time"}


def test_multi_timeframe_matches_pandas_resample_and_talib() -> None:
    bars = market()
    out = fs.multi_timeframe_features(bars, interval_ms=HOUR, timeframes=("4h", "1d"), **SMALL)
    assert out.select(bars.columns).equals(bars)
    for (symbol,), rows in out.group_by("symbol"):
        for tf, tf_ms in (("4h", 4 * HOUR), ("1d", DAY)):
            expected = mtf_reference(
                bars.filter(pl.col("symbol") == symbol), tf=tf, tf_ms=tf_ms, interval=HOUR
            )
            for name, values in expected.items():
                assert_matches(rows[name], values, name=f"{symbol} {name}")


def test_incomplete_htf_bar_is_never_used() -> None:
    # Day 1 misses its 10:00 bar, day 0 starts at 05:00: neither becomes a 1d bar.
    bars = make_bars("X", 24 * 4, seed=4, start=5 * HOUR, drop=(24 + 5,))
    out = fs.multi_timeframe_features(bars, interval_ms=HOUR, timeframes=("1d",), **SMALL)
    close_day = (out["ts"] + HOUR) // DAY  # the day a bar closes in
    ret = out["ret_1_1d"]
    # No complete day has closed before the 23:00 bar of day 2 (the first complete day).
    assert ret.filter(close_day < 3).null_count() == ret.filter(close_day < 3).len()
    # Day 3's value joins from its last bar; only two complete days, so ret is their return.
    last = out.filter(pl.col("ts") == 3 * DAY + 23 * HOUR)
    day2_close = bars.filter(pl.col("ts") == 2 * DAY + 23 * HOUR)["close"][0]
    day3_close = bars.filter(pl.col("ts") == 3 * DAY + 23 * HOUR)["close"][0]
    assert last["ret_1_1d"][0] == pytest.approx(np.log(day3_close / day2_close), rel=1e-12)
    # The bars of the incomplete day 4 keep day 3's value.
    after = out.filter(pl.col("ts") > 3 * DAY + 23 * HOUR)["ret_1_1d"]
    assert after.len() == 5 and after.to_list() == [last["ret_1_1d"][0]] * 5


def test_multi_timeframe_is_scale_invariant() -> None:
    bars = make_bars("X", 24 * 10, seed=5)
    base = fs.multi_timeframe_features(bars, interval_ms=HOUR, **SMALL)
    for scale in (1e8, 1e-8):
        scaled = bars.with_columns(pl.col("open", "high", "low", "close") * scale)
        out = fs.multi_timeframe_features(scaled, interval_ms=HOUR, **SMALL)
        for name in fs.feature_columns(out):
            assert_matches(out[name], as_array(base[name]), name=f"{name} x{scale}")


def leaky_mtf(frame: pl.DataFrame) -> pl.DataFrame:
    """Planted look-ahead: the 4h bar joined by its OPEN time (from its first base bar)."""
    ts = frame["ts"].to_numpy()
    close = frame["close"].to_numpy()
    htf = fs._htf_bars(
        ts,
        frame["high"].to_numpy(),
        frame["low"].to_numpy(),
        close,
        tf_ms=4 * HOUR,
        interval_ms=HOUR,
    )
    idx = fs._asof(htf["open_ts"], ts)
    values = fs._take(fs._log_ratio(htf["close"], 1), idx)
    return frame.with_columns(pl.Series("ret_1_4h", values).fill_nan(None))


def mtf(frame: pl.DataFrame) -> pl.DataFrame:
    return fs.multi_timeframe_features(frame, interval_ms=HOUR, **SMALL)


def test_multi_timeframe_passes_detect_lookahead_and_leak_is_caught() -> None:
    bars = market()
    columns = fs.feature_columns(mtf(bars))
    report = detect_lookahead(bars, mtf, n_checks=25, min_history_bars=48, columns=columns)
    assert report.clean, report.mismatches[:3]
    leak = detect_lookahead(
        bars, leaky_mtf, n_checks=25, min_history_bars=48, columns=("ret_1_4h",)
    )
    assert not leak.clean and leak.n_mismatches >= 10


@st.composite
def short_history(draw: st.DrawFn) -> tuple[pl.DataFrame, int]:
    n = draw(st.integers(30, 120))
    drop = draw(st.lists(st.integers(1, n - 2), max_size=5, unique=True))
    bars = make_bars(
        "X",
        n,
        seed=draw(st.integers(0, 10_000)),
        start=draw(st.integers(0, 23)) * HOUR,
        drop=tuple(drop),
    )
    return bars, draw(st.integers(1, bars.height))


def assert_prefix_causal(run, bars: pl.DataFrame, t: int) -> None:
    full, part = run(bars), run(bars.head(t))
    columns = fs.feature_columns(full)
    assert columns
    assert_frames_equal(full.slice(t - 1, 1), part.tail(1), columns)


@PROPERTY
@given(short_history())
def test_multi_timeframe_prefix_property(case: tuple[pl.DataFrame, int]) -> None:
    bars, t = case
    run = functools.partial(
        fs.multi_timeframe_features, interval_ms=HOUR, timeframes=("2h", "4h"), **SMALL
    )
    assert_prefix_causal(run, bars, t)


# --- funding --------------------------------------------------------------------------------


def make_funding(symbol: str, start: int, n: int, *, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    jitter = rng.integers(-3, 4, n)  # real settlements land a few ms off the 8h grid
    return pl.DataFrame(
        {
            "ts": start + np.arange(n, dtype=np.int64) * 8 * HOUR + jitter,
            "symbol": symbol,
            "funding_rate": rng.normal(1e-4, 2e-4, n),
        }
    )


def funding_reference(bars: pl.DataFrame, funding: pl.DataFrame, windows, interval) -> dict:
    f = funding.to_pandas().sort_values(["symbol", "ts"])
    grouped = f.groupby("symbol")["funding_rate"]
    for n in windows:
        mean = grouped.transform(lambda s, n=n: s.rolling(n).mean())
        std = grouped.transform(lambda s, n=n: s.rolling(n).std(ddof=0))
        const = grouped.transform(lambda s, n=n: s.rolling(n).max() - s.rolling(n).min()) == 0
        f[f"funding_mean_{n}"] = mean
        f[f"funding_zscore_{n}"] = ((f["funding_rate"] - mean) / std).where(~const)
    f = f.rename(columns={"ts": "close_ts"}).sort_values("close_ts")
    f["settled"] = f["close_ts"]
    b = bars.to_pandas().reset_index(names="row")
    b["close_ts"] = b["ts"] + interval
    merged = pd.merge_asof(
        b.sort_values("close_ts"), f, on="close_ts", by="symbol", direction="backward"
    ).sort_values("row")
    out = {k: merged[k].to_numpy() for k in f.columns if k.startswith("funding_")}
    out["funding_last"] = merged["funding_rate"].to_numpy()
    out["funding_annualised"] = out["funding_last"] * 1095.0
    out["funding_age_hours"] = ((merged["close_ts"] - merged["settled"]) / HOUR).to_numpy()
    out.pop("funding_rate")
    return out


def test_funding_matches_pandas_merge_asof_and_missing_symbol_is_null() -> None:
    bars = market()
    funding = pl.concat(
        [
            make_funding("BTCUSDT", START - DAY, 40, seed=6),
            make_funding("SOLUSDT", START + 3 * HOUR, 30, seed=7),
        ]
    )
    out = fs.funding_features(bars, funding, interval_ms=HOUR, windows=(3, 5))
    expected = funding_reference(bars, funding, (3, 5), HOUR)
    assert sorted(expected) == sorted(fs.feature_columns(out))
    for name, values in expected.items():
        assert_matches(out[name], values, name=name)
    eth = out.filter(pl.col("symbol") == "ETHUSDT")
    assert all(eth[c].null_count() == eth.height for c in expected)


def funding_run(funding: pl.DataFrame, *, leak: bool = False):
    """The executor's view: only the settlements made by the last bar's close."""

    def run(frame: pl.DataFrame) -> pl.DataFrame:
        known = funding.filter(pl.col("ts") <= frame["ts"].max() + HOUR)
        out = fs.funding_features(frame, known, interval_ms=HOUR, windows=(3,))
        if leak:  # planted: the settlement made 8h after the bar's close
            shifted = frame.with_columns(pl.col("ts") + 8 * HOUR)
            ahead = fs.funding_features(shifted, known, interval_ms=HOUR, windows=(3,))
            out = out.with_columns(ahead["funding_last"])
        return out

    return run


def test_funding_passes_detect_lookahead_and_leak_is_caught() -> None:
    bars = market().filter(pl.col("symbol") == "BTCUSDT")
    funding = make_funding("BTCUSDT", START - DAY, 40, seed=6)
    columns = fs.feature_columns(funding_run(funding)(bars))
    report = detect_lookahead(
        bars, funding_run(funding), n_checks=25, min_history_bars=48, columns=columns
    )
    assert report.clean, report.mismatches[:3]
    leak = detect_lookahead(
        bars,
        funding_run(funding, leak=True),
        n_checks=25,
        min_history_bars=48,
        columns=("funding_last",),
    )
    assert not leak.clean


@PROPERTY
@given(short_history())
def test_funding_prefix_property(case: tuple[pl.DataFrame, int]) -> None:
    bars, t = case
    funding = make_funding("X", -2 * DAY, 20, seed=t)
    assert_prefix_causal(funding_run(funding), bars, t)


# --- pools ----------------------------------------------------------------------------------


def make_pool(n: int, *, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    gross_in = rng.uniform(0.0, 5.0, n)
    gross_in[::17] = 0.0  # minutes without a swap
    out = rng.uniform(0.0, 5.0, n) * (gross_in > 0)
    frame = pl.DataFrame(
        {
            "ts": START + np.arange(n, dtype=np.int64) * MINUTE,
            "symbol": "WETHUSDC-V3-500",
            "close": 2000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n))),
            "volume": rng.uniform(0.0, 3.0, n),
            "swap_count": rng.integers(0, 20, n).astype(float),
            "net_amount1": gross_in - out,
            "in_amount1": gross_in,
            "liquidity": rng.uniform(1e17, 2e17, n),
        }
    )
    return frame.filter(pl.Series(np.arange(n) % 23 != 5))  # gaps in the minute grid


def pool_reference(pool: pl.DataFrame, ref: pl.DataFrame, ref_ms: int, w: int) -> dict:
    p = pool.to_pandas()
    ref_close_ts, ref_close = ref["ts"].to_numpy() + ref_ms, ref["close"].to_numpy()
    basis = np.full(len(p), np.nan)
    for i, (ts, price) in enumerate(zip(p["ts"] + MINUTE, p["close"], strict=True)):
        known = np.flatnonzero((ref_close_ts <= ts) & (ts - ref_close_ts < ref_ms))
        if known.size:
            basis[i] = np.log(price / ref_close[known[-1]])
    basis = pd.Series(basis)
    gross = 2 * p["in_amount1"] - p["net_amount1"]
    liq = p["liquidity"].to_numpy()

    def zscore(s: pd.Series) -> np.ndarray:
        return ((s - s.rolling(w).mean()) / s.rolling(w).std(ddof=0)).to_numpy()

    def nan_if_zero(a, b):
        return np.where(b != 0, a / np.where(b != 0, b, 1.0), np.nan)

    return {
        f"pool_volume_zscore_{w}": zscore(p["volume"]),
        f"pool_swaps_zscore_{w}": zscore(p["swap_count"]),
        "pool_flow_imbalance": nan_if_zero(p["net_amount1"].to_numpy(), gross.to_numpy()),
        f"pool_flow_imbalance_{w}": nan_if_zero(
            p["net_amount1"].rolling(w).sum().to_numpy(), gross.rolling(w).sum().to_numpy()
        ),
        "pool_liquidity_change": np.r_[np.nan, np.log(liq[1:] / liq[:-1])],
        f"pool_liquidity_change_{w}": np.r_[[np.nan] * w, np.log(liq[w:] / liq[:-w])],
        "pool_basis": basis.to_numpy(),
        f"pool_basis_zscore_{w}": zscore(basis),
    }


def test_pool_features_match_brute_force() -> None:
    pool = make_pool(400, seed=8)
    ref = make_bars("ETHUSDT", 80, seed=9, interval=5 * MINUTE, drop=(20, 21, 22, 23, 24, 25))
    ref = ref.with_columns(pl.col("close") * 20.0)
    out = fs.pool_features(
        pool, interval_ms=MINUTE, reference=ref, reference_interval_ms=5 * MINUTE, windows=(10,)
    )
    expected = pool_reference(pool, ref, 5 * MINUTE, 10)
    assert fs.feature_columns(out) == list(expected)
    for name, values in expected.items():
        assert_matches(out[name], values, name=name)


def test_pool_features_skip_columns_the_frame_lacks() -> None:
    pool = make_pool(100, seed=10).select("ts", "symbol", "close", "volume")
    assert fs.feature_columns(fs.pool_features(pool, interval_ms=MINUTE, windows=(5,))) == [
        "pool_volume_zscore_5"
    ]
    bare = pool.select("ts", "close")
    assert fs.feature_columns(fs.pool_features(bare, interval_ms=MINUTE)) == []


def pool_run(ref: pl.DataFrame, *, leak: bool = False):
    def run(frame: pl.DataFrame) -> pl.DataFrame:
        end = frame["ts"].max() + MINUTE  # the last pool bar's close
        known = ref.filter(pl.col("ts") + 5 * MINUTE <= end)  # the 5m bars closed by then
        ref_ms = MINUTE if leak else 5 * MINUTE  # planted: a 5m bar taken as closed 1m in
        return fs.pool_features(
            frame, interval_ms=MINUTE, reference=known, reference_interval_ms=ref_ms, windows=(10,)
        )

    return run


def test_pool_passes_detect_lookahead_and_leak_is_caught() -> None:
    pool = make_pool(300, seed=11)
    ref = make_bars("ETHUSDT", 70, seed=12, interval=5 * MINUTE).with_columns(
        pl.col("close") * 20.0
    )
    columns = fs.feature_columns(pool_run(ref)(pool))
    report = detect_lookahead(
        pool, pool_run(ref), n_checks=25, min_history_bars=30, columns=columns
    )
    assert report.clean, report.mismatches[:3]
    leak = detect_lookahead(
        pool, pool_run(ref, leak=True), n_checks=25, min_history_bars=30, columns=("pool_basis",)
    )
    assert not leak.clean


@PROPERTY
@given(st.integers(0, 1000), st.integers(1, 150))
def test_pool_prefix_property(seed: int, t: int) -> None:
    pool = make_pool(160, seed=seed)
    ref = make_bars("ETHUSDT", 40, seed=seed + 1, interval=5 * MINUTE)
    assert_prefix_causal(pool_run(ref), pool, min(t, pool.height))


# --- cross-asset ----------------------------------------------------------------------------


def cross_reference(bars: pl.DataFrame, ref: str, windows, lags) -> dict:
    df = bars.to_pandas().reset_index(names="row").sort_values(["symbol", "ts"])
    by = df.groupby("symbol")["close"]
    df["ret"] = np.log(df["close"] / by.shift(1))
    r = df[df["symbol"] == ref].set_index("ts")["ret"]
    df["ref_ret_1"] = df["ts"].map(r)
    for k in lags:
        df[f"ref_ret_1_lag_{k}"] = df["ts"].map(r.shift(k))
    df["mkt_ret_1"] = df.groupby("ts")["ret"].transform("mean")
    for w in windows:
        pair = df.groupby("symbol")[["ret", "ref_ret_1"]]
        cov = pair.apply(lambda g, w=w: g["ret"].rolling(w).cov(g["ref_ret_1"]))
        var = pair.apply(lambda g, w=w: g["ref_ret_1"].rolling(w).var())
        corr = pair.apply(lambda g, w=w: g["ret"].rolling(w).corr(g["ref_ret_1"]))
        df[f"beta_{w}"] = (cov / var).droplevel(0)
        df[f"corr_{w}"] = corr.droplevel(0)
        df[f"mom_{w}"] = np.log(df["close"] / by.shift(w))
        rank, z = np.full(len(df), np.nan), np.full(len(df), np.nan)
        for _, idx in df.groupby("ts").groups.items():  # brute force per timestamp
            m = df.loc[idx, f"mom_{w}"]
            m = m[m.notna()]
            if len(m) < 2:
                continue
            v = m.to_numpy()
            for label, x in zip(m.index, v, strict=True):
                avg_rank = (v < x).sum() + ((v == x).sum() + 1) / 2  # 1-based, ties averaged
                pos = df.index.get_loc(label)
                rank[pos] = (avg_rank - 1) / (len(v) - 1)
                if v.std() > 0:
                    z[pos] = (x - v.mean()) / v.std()
        df[f"mom_{w}_rank"], df[f"mom_{w}_zscore"] = rank, z
    df = df.sort_values("row")
    return {c: df[c].to_numpy() for c in df.columns if c not in (*bars.columns, "row", "ret")}


def test_cross_asset_matches_pandas_and_brute_force() -> None:
    bars = market()
    out = fs.cross_asset_features(bars, reference="BTCUSDT", windows=(5, 24), lags_bars=(1, 3))
    assert out.select(bars.columns).equals(bars)
    expected = cross_reference(bars, "BTCUSDT", (5, 24), (1, 3))
    assert sorted(expected) == sorted(fs.feature_columns(out))
    for name, values in expected.items():
        assert_matches(out[name], values, name=name)
    # Where the reference has no bar (its gaps, the hours before it starts): null.
    no_ref = out.join(bars.filter(pl.col("symbol") == "BTCUSDT").select("ts"), on="ts", how="anti")
    assert no_ref.height > 0 and no_ref["ref_ret_1"].null_count() == no_ref.height


def cross_run(*, leak: bool = False):
    def run(bars: pl.DataFrame) -> pl.DataFrame:
        out = fs.cross_asset_features(bars, reference="BTCUSDT", windows=(5, 24))
        if leak:  # planted: the reference's NEXT bar's return joined at this ts
            nxt = out.filter(pl.col("symbol") == "BTCUSDT").select(
                (pl.col("ts") - HOUR).alias("ts"), pl.col("ref_ret_1").alias("_next")
            )
            out = (
                out.join(nxt, on="ts", how="left", maintain_order="left")
                .with_columns(pl.col("_next").alias("ref_ret_1"))
                .drop("_next")
            )
        return out

    return run


def test_cross_asset_truncation_check_and_leak_is_caught() -> None:
    bars = market()
    cuts = sorted(set(bars["ts"].sample(30, seed=0).to_list()))
    assert truncation_mismatches(cross_run(), bars, cuts) == []
    assert truncation_mismatches(cross_run(leak=True), bars, cuts)


def test_cross_asset_passes_detect_lookahead_per_symbol() -> None:
    bars = market()

    def with_others(frame: pl.DataFrame) -> pl.DataFrame:
        # One symbol's history up to t, plus the other symbols' bars up to the same t.
        symbol, end = frame["symbol"][0], frame["ts"].max()
        others = bars.filter((pl.col("symbol") != symbol) & (pl.col("ts") <= end))
        out = fs.cross_asset_features(pl.concat([others, frame]), windows=(5, 24))
        return out.filter(pl.col("symbol") == symbol)

    columns = fs.feature_columns(with_others(bars.filter(pl.col("symbol") == "ETHUSDT")))
    report = detect_lookahead(bars, with_others, n_checks=15, min_history_bars=48, columns=columns)
    assert report.clean, report.mismatches[:3]


@PROPERTY
@given(st.integers(0, 1000), st.integers(2, 60))
def test_cross_asset_prefix_property(seed: int, t: int) -> None:
    bars = pl.concat(
        [make_bars("BTCUSDT", 60, seed=seed), make_bars("ETHUSDT", 60, seed=seed + 1)]
    ).sort("ts", "symbol")
    run = functools.partial(fs.cross_asset_features, windows=(3, 6))
    full, part = run(bars), run(bars.head(2 * t))  # t bars of each symbol
    assert_frames_equal(full.slice(2 * t - 2, 2), part.tail(2), fs.feature_columns(full))


# --- add_extended_features ------------------------------------------------------------------


def test_add_extended_features_composes_and_keeps_order() -> None:
    bars = market()
    funding = make_funding("BTCUSDT", START - DAY, 40, seed=6)
    pool = make_pool(24 * 60 * 3, seed=13).with_columns(pl.col("close") / 20.0)
    kwargs = {
        "interval_ms": HOUR,
        "funding": funding,
        "pools": {"ETHUSDT": pool},
        "pool_interval_ms": MINUTE,
        "windows": (5, 24),
        "pool_windows": (30,),
    }
    out = fs.add_extended_features(bars, **kwargs)
    assert out.height == bars.height and out.select(bars.columns).equals(bars)
    columns = fs.feature_columns(out)
    assert {"rsi_14_1d", "funding_zscore_21", "pool_basis", "beta_24", "mom_5_rank"} <= set(columns)
    assert not any(out[c].is_nan().any() for c in columns)
    pooled = out.filter(pl.col("symbol") != "ETHUSDT")["pool_basis"]
    assert pooled.null_count() == pooled.len()
    # Same as each function alone.
    mtf_only = fs.multi_timeframe_features(bars, interval_ms=HOUR)
    assert_frames_equal(out, mtf_only, fs.feature_columns(mtf_only))
    # Pool features on the bar at ts come from the pool minute closing with it.
    eth = out.filter(pl.col("symbol") == "ETHUSDT").drop_nulls("pool_basis")
    pf = fs.pool_features(
        pool,
        interval_ms=MINUTE,
        windows=(30,),
        reference=bars.filter(pl.col("symbol") == "ETHUSDT"),
        reference_interval_ms=HOUR,
    )
    joined = eth.select("ts", "pool_basis").join(
        pf.select((pl.col("ts") + MINUTE - HOUR).alias("ts"), pl.col("pool_basis").alias("pb")),
        on="ts",
    )
    assert joined.height > 0
    np.testing.assert_array_equal(joined["pool_basis"].to_numpy(), joined["pb"].to_numpy())
    # And the whole set is causal across symbols.
    cuts = sorted(set(bars["ts"].sample(12, seed=1).to_list()))

    def run(frame: pl.DataFrame) -> pl.DataFrame:
        end = frame["ts"].max() + HOUR
        return fs.add_extended_features(
            frame,
            **{
                **kwargs,
                "funding": funding.filter(pl.col("ts") <= end),
                "pools": {"ETHUSDT": pool.filter(pl.col("ts") + MINUTE <= end)},
            },
        )

    assert truncation_mismatches(run, bars, cuts) == []


# --- real data ------------------------------------------------------------------------------


def real_file(relative: str) -> str:
    path = real_data_dir() / relative
    if not path.is_file():
        pytest.skip(f"real data not found: {path}")
    return str(path)


@functools.cache
def real_bars() -> pl.DataFrame:
    frames = [
        pl.read_parquet(real_file(f"cex/binance_spot_1h/{s}USDT.parquet"))
        .select("ts", pl.col("symbol").cast(pl.String), "open", "high", "low", "close", "volume")
        .filter(pl.col("ts") >= 1_640_995_200_000)  # 2022 on: three years, fast
        for s in ("BTC", "ETH")
    ]
    return pl.concat(frames)


def test_real_1d_features_equal_the_daily_file() -> None:
    bars = real_bars()
    out = fs.multi_timeframe_features(bars, interval_ms=HOUR, timeframes=("1d",))
    for symbol in ("BTCUSDT", "ETHUSDT"):
        hourly = bars.filter(pl.col("symbol") == symbol)
        complete = hourly.group_by(pl.col("ts") // DAY * DAY).len().filter(pl.col("len") == 24)
        daily = (
            pl.read_parquet(real_file(f"cex/binance_spot_1d/{symbol}.parquet"))
            .join(complete.select("ts"), on="ts", how="semi")
            .sort("ts")
        )
        h, lo, c = (daily[k].to_numpy() for k in ("high", "low", "close"))
        ref = pd.DataFrame(
            {
                "close_ts": daily["ts"].to_numpy() + DAY,
                "ret_1_1d": np.r_[np.nan, np.log(c[1:] / c[:-1])],
                "rsi_14_1d": talib.RSI(c, 14),
                "close_ema_20_1d": c / talib.EMA(c, 20) - 1.0,
                "rv_20_1d": pd.Series(np.log(c)).diff().rolling(20).std().to_numpy(),
                "natr_14_1d": talib.NATR(h, lo, c, 14),
            }
        )
        left = pd.DataFrame({"close_ts": hourly["ts"].to_numpy() + HOUR})
        merged = pd.merge_asof(left, ref, on="close_ts", direction="backward")
        got = out.filter(pl.col("symbol") == symbol)
        for name in ref.columns[1:]:
            assert_matches(got[name], merged[name].to_numpy(), name=f"{symbol} {name}")


def test_real_funding_and_cross_asset() -> None:
    bars = real_bars()
    funding = pl.read_parquet(real_file("cex/binance_usdm_funding/BTCUSDT.parquet")).select(
        "ts", pl.col("symbol").cast(pl.String), "funding_rate"
    )
    out = fs.funding_features(bars, funding, interval_ms=HOUR, windows=(3, 21))
    expected = funding_reference(bars, funding, (3, 21), HOUR)
    for name, values in expected.items():
        assert_matches(out[name], values, name=name)
    assert out.filter(pl.col("symbol") == "ETHUSDT")["funding_last"].null_count() == (
        bars.filter(pl.col("symbol") == "ETHUSDT").height
    )
    cross = fs.cross_asset_features(bars, windows=(24, 168), lags_bars=(1,))
    ref = cross_reference(bars, "BTCUSDT", (), (1,))
    for name in ("ref_ret_1", "ref_ret_1_lag_1", "mkt_ret_1"):
        assert_matches(cross[name], ref[name], name=name)
    for (symbol,), rows in cross.group_by("symbol"):
        x = np.log(rows["close"] / rows["close"].shift(1)).to_pandas()
        y = rows["ref_ret_1"].to_pandas()
        for w in (24, 168):
            assert_matches(
                rows[f"beta_{w}"],
                (x.rolling(w).cov(y) / y.rolling(w).var()),
                name=f"{symbol} beta_{w}",
            )
            assert_matches(
                rows[f"corr_{w}"], x.rolling(w).corr(y).clip(-1, 1), name=f"{symbol} corr_{w}"
            )
    eth_corr = cross.filter(pl.col("symbol") == "ETHUSDT")["corr_168"].median()
    assert 0.5 < eth_corr < 1.0  # ETH moves with BTC


def test_real_polygon_pool_basis_against_eth() -> None:
    pool = pl.read_parquet(real_file("dex/uniswap_v3_polygon_usdc_weth_005_1m.parquet"))
    eth = real_bars().filter(pl.col("symbol") == "ETHUSDT")
    out = fs.pool_features(
        pool, interval_ms=MINUTE, reference=eth, reference_interval_ms=HOUR, windows=(60,)
    )
    assert fs.feature_columns(out) == [
        "pool_flow_imbalance",
        "pool_flow_imbalance_60",
        "pool_liquidity_change",
        "pool_liquidity_change_60",
        "pool_basis",
        "pool_basis_zscore_60",
    ]
    # Basis at the minutes closing on the hour equals the log ratio of the two closes.
    on_hour = out.filter((pl.col("ts") + MINUTE) % HOUR == 0).join(
        eth.select((pl.col("ts") + HOUR - MINUTE).alias("ts"), pl.col("close").alias("cex")),
        on="ts",
    )
    assert on_hour.height > 500
    assert_matches(on_hour["pool_basis"], np.log(on_hour["price_close"] / on_hour["cex"]))
    assert abs(out["pool_basis"].median()) < 0.005  # USDC.e/WETH tracks ETH/USDT
    imbalance = out["pool_flow_imbalance"].drop_nulls()
    assert imbalance.min() >= -1.0 and imbalance.max() <= 1.0


# --- bad input ------------------------------------------------------------------------------

BARS = make_bars("BTCUSDT", 48, seed=20)
FUNDING = make_funding("BTCUSDT", START, 3, seed=0)
POOL = make_pool(30, seed=0)
MTF = functools.partial(fs.multi_timeframe_features, interval_ms=HOUR)
FUND = functools.partial(fs.funding_features, interval_ms=HOUR)
POOLF = functools.partial(fs.pool_features, interval_ms=MINUTE)
BAD_INPUTS = [
    (lambda: fs.multi_timeframe_features(BARS, interval_ms=0), r"interval_ms must be >= 1, got 0"),
    (lambda: MTF(BARS, timeframes=("4x",)), r"timeframes holds '4x'"),
    (
        lambda: MTF(BARS, timeframes=("90m",)),
        r"'90m' \(5400000 ms\).*multiple of interval_ms=3600000",
    ),
    (lambda: MTF(BARS, timeframes="4h"), r"timeframes must be a non-empty sequence"),
    (lambda: MTF(BARS, rsi_bars=1), r"rsi_bars must be >= 2, got 1"),
    (lambda: MTF(BARS.drop("high")), r"no column\(s\) \['high'\]"),
    (
        lambda: MTF(BARS.with_columns(pl.col("ts") + 5)),
        r"ts=1704067200005 at row 0 is not a multiple of interval_ms=3600000",
    ),
    (lambda: MTF(BARS.reverse()), r"'ts' does not increase at row 1"),
    (lambda: MTF(BARS.with_columns(close=pl.lit(-1.0))), r"column 'close' has -1.0 at row 0"),
    (lambda: MTF(BARS.to_pandas()), r"bars must be a polars DataFrame, got DataFrame"),
    (
        lambda: FUND(BARS, FUNDING.with_columns(funding_rate=pl.lit(float("nan")))),
        r"'funding_rate' has nan at row 0",
    ),
    (
        lambda: FUND(BARS, FUNDING.drop("funding_rate")),
        r"funding have no column\(s\) \['funding_rate'\]",
    ),
    (lambda: FUND(BARS, FUNDING, windows=(1,)), r"windows must be >= 2, got 1"),
    (lambda: FUND(BARS, FUNDING, windows=(3, 3)), r"windows must hold distinct values"),
    (lambda: POOLF(POOL, flow_token=2), r"flow_token must be 0 or 1, got 2"),
    (
        lambda: POOLF(POOL, reference=market()),
        r"reference holds symbols \['BTCUSDT', 'ETHUSDT', 'SOLUSDT'\]",
    ),
    (
        lambda: fs.cross_asset_features(BARS, reference="ETHUSDT"),
        r"reference='ETHUSDT' is not a symbol of bars; symbols are \['BTCUSDT'\]",
    ),
    (lambda: fs.cross_asset_features(BARS, lags_bars=(0,)), r"lags_bars must be >= 1, got 0"),
    (
        lambda: fs.cross_asset_features(fs.cross_asset_features(BARS)),
        r"bars already have column\(s\) \['ref_ret_1'",
    ),
    (
        lambda: fs.add_extended_features(BARS, interval_ms=HOUR, pools={"ETHUSDT": POOL}),
        r"pools has key 'ETHUSDT', not a symbol of bars \['BTCUSDT'\]",
    ),
    (lambda: fs.feature_columns({"ts": [0]}), r"frame must be a polars DataFrame, got dict"),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_input_names_field_and_value(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_null_policy_no_nan_and_warmup_is_null() -> None:
    bars = market()
    out = fs.add_extended_features(bars, interval_ms=HOUR, windows=(5, 24))
    for column in fs.feature_columns(out):
        assert not out[column].is_nan().any(), column
    first = out.group_by("symbol").head(1)
    assert first["rsi_14_4h"].null_count() == first.height
    assert first["beta_24"].null_count() == first.height
