"""research_lib.labels: pandas references per symbol, no crossing of symbols, validation.

Fixtures are seeded random-walk bars built in this file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kernels import labels as labels_nb
from research_lib.labels import forward_returns, meta_labels, triple_barrier_labels


def make_bars(symbol: str, n: int, *, seed: int, scale: float = 100.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = scale * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([scale], close[:-1]))
    return pl.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 3_600_000,
            "symbol": [symbol] * n,
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.004, n))),
            "low": np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.004, n))),
            "close": close,
            "volume": rng.uniform(1.0, 10.0, n),
        }
    )


def two_symbols_interleaved() -> pl.DataFrame:
    a, b = make_bars("A", 400, seed=1), make_bars("B", 400, seed=2, scale=1e-4)
    return pl.concat([a, b]).sort("ts", "symbol")


@pytest.mark.parametrize("log", [True, False])
def test_forward_returns_match_pandas_per_symbol(log: bool) -> None:
    bars = two_symbols_interleaved()
    out = forward_returns(bars, horizons_bars=(1, 4, 24), log=log)
    assert out.columns == ["ts", "symbol", "forward_return_1", "forward_return_4",
                           "forward_return_24"]  # fmt: skip
    assert out.select("ts", "symbol").equals(bars.select("ts", "symbol"))
    frame = bars.to_pandas()
    for h in (1, 4, 24):
        c = frame.groupby("symbol")["close"]
        if log:
            expected = np.log(c.shift(-h)) - np.log(frame["close"])
        else:
            expected = c.shift(-h) / frame["close"] - 1
        actual = out[f"forward_return_{h}"]
        assert actual.null_count() == 2 * h and not actual.is_nan().any()
        np.testing.assert_allclose(
            actual.fill_null(np.nan).to_numpy(), expected.to_numpy(), atol=1e-12, equal_nan=True
        )


def test_triple_barrier_labels_per_symbol_match_the_kernel() -> None:
    bars = two_symbols_interleaved()
    out = triple_barrier_labels(bars, max_holding_bars=12, volatility_span_bars=30)
    assert out.height == bars.height
    assert out.select("ts", "symbol").equals(bars.select("ts", "symbol"))
    for symbol in ("A", "B"):
        alone = bars.filter(pl.col("symbol") == symbol)
        c = alone["close"].to_numpy()
        sigma = pd.Series(c).pct_change().ewm(span=30, min_periods=30).std().to_numpy()
        events = np.arange(c.size, dtype=np.int64)
        label, end, ret, _ = labels_nb.triple_barrier(
            alone["high"].to_numpy(), alone["low"].to_numpy(), c, events, sigma, 2.0, 1.0, 12,
            True,
        )  # fmt: skip
        mine = out.filter(pl.col("symbol") == symbol)
        as_nan = mine.select(pl.all().exclude("symbol", "barrier").cast(pl.Float64)).fill_null(
            np.nan
        )
        np.testing.assert_allclose(as_nan["target"].to_numpy(), sigma, rtol=1e-12)
        np.testing.assert_array_equal(as_nan["label"].to_numpy(), label)
        np.testing.assert_array_equal(as_nan["return"].to_numpy(), ret)
        # The end index points into the full frame, at a bar of the same symbol.
        rows = mine["label_end_index"]
        ok = end >= 0
        assert rows.null_count() == int((~ok).sum())
        ends = bars[rows.drop_nulls().to_numpy()]
        assert (ends["symbol"] == symbol).all()
        assert ends["ts"].to_list() == mine["label_end_ts"].drop_nulls().to_list()
        np.testing.assert_array_equal(ends["ts"].to_numpy(), alone["ts"].to_numpy()[end[ok]])
    defined = out.filter(pl.col("label").is_not_null())
    assert {"profit_taking", "stop_loss"} <= set(defined["barrier"].unique())
    assert (defined["label_end_ts"] > defined["ts"]).all()


def test_events_vertical_label_and_missing_high_low() -> None:
    bars = make_bars("A", 300, seed=3)
    events = bars.select("ts", "symbol").gather_every(5)
    out = triple_barrier_labels(
        bars, events=events, max_holding_bars=3, volatility_span_bars=10, vertical_label="zero"
    )
    assert out["ts"].to_list() == events["ts"].to_list()
    assert set(out.filter(pl.col("barrier") == "vertical")["label"].to_list()) == {0}
    closes_only = triple_barrier_labels(
        bars.drop("high", "low"), max_holding_bars=3, volatility_span_bars=10
    )
    flat = bars.with_columns(pl.col("close").alias("high"), pl.col("close").alias("low"))
    assert closes_only.equals(
        triple_barrier_labels(flat, max_holding_bars=3, volatility_span_bars=10)
    )
    with pytest.raises(ValueError, match="no bar"):
        triple_barrier_labels(bars, events=pl.DataFrame({"ts": [1], "symbol": ["A"]}))


def test_meta_labels_follow_the_side() -> None:
    bars = two_symbols_interleaved()
    rng = np.random.default_rng(0)
    side = pl.Series("side", rng.choice([-1, 0, 1], bars.height)).cast(pl.Int64)
    side = side.scatter([3, 7], None)  # null = no trade
    by_series = meta_labels(bars, side=side, volatility_span_bars=20)
    by_column = meta_labels(bars.with_columns(side), side="side", volatility_span_bars=20)
    assert by_series.equals(by_column)
    assert by_series.height == int((side.fill_null(0) != 0).sum())
    assert set(by_series["side"].unique()) == {-1, 1}
    defined = by_series.drop_nulls("meta_label")
    assert set(defined["meta_label"].unique()) == {0, 1}
    assert (defined["meta_label"] == 1).to_list() == (defined["return"] > 0).to_list()
    # A long's meta label is 1 exactly when its triple-barrier trade paid off.
    longs = defined.filter(pl.col("side") == 1)
    plain = triple_barrier_labels(bars, volatility_span_bars=20).join(
        longs.select("ts", "symbol", "meta_label"), on=["ts", "symbol"]
    )
    assert ((plain["label"] == 1) & (plain["return"] > 0)).to_list() == (
        plain["meta_label"] == 1
    ).to_list()


def test_scale_does_not_change_labels() -> None:
    for scale in (1e-8, 1e8):
        base = triple_barrier_labels(make_bars("A", 500, seed=5), volatility_span_bars=20)
        scaled = triple_barrier_labels(
            make_bars("A", 500, seed=5, scale=scale), volatility_span_bars=20
        )
        assert scaled["label"].to_list() == base["label"].to_list()
        np.testing.assert_allclose(
            scaled["return"].fill_null(np.nan), base["return"].fill_null(np.nan), atol=1e-12
        )


def test_empty_frame_gives_empty_labels() -> None:
    empty = make_bars("A", 5, seed=0).head(0)
    assert triple_barrier_labels(empty).height == 0
    assert meta_labels(empty.with_columns(side=pl.lit(1)), side="side").height == 0
    assert forward_returns(empty).height == 0


def test_outputs_hold_null_never_nan() -> None:
    out = triple_barrier_labels(make_bars("A", 100, seed=6), volatility_span_bars=20)
    assert out["label"][:20].is_null().all() and out["label"][20:].null_count() < 24
    for column in ("return", "target"):
        assert not out[column].is_nan().any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"profit_taking": 0.0}, "profit_taking"),
        ({"stop_loss": float("nan")}, "stop_loss"),
        ({"max_holding_bars": 0}, "max_holding_bars"),
        ({"volatility_span_bars": 1}, "volatility_span_bars"),
        ({"vertical_label": "up"}, "vertical_label"),
        ({"events": "all"}, "events"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        triple_barrier_labels(make_bars("A", 50, seed=0), **kwargs)


def test_bad_inputs_name_the_field() -> None:
    bars = make_bars("A", 50, seed=0)
    with pytest.raises(ValueError, match="'close'"):
        forward_returns(bars.drop("close"))
    with pytest.raises(ValueError, match=r"'close' has -1\.0 at row 2"):
        triple_barrier_labels(bars.with_columns(bars["close"].scatter(2, -1.0)))
    with pytest.raises(ValueError, match="'high' has null"):
        triple_barrier_labels(bars.with_columns(bars["high"].scatter(4, None)))
    with pytest.raises(ValueError, match="'ts' does not increase"):
        triple_barrier_labels(bars.reverse())
    with pytest.raises(ValueError, match="horizons_bars"):
        forward_returns(bars, horizons_bars=(1, 1))
    with pytest.raises(ValueError, match="horizons_bars"):
        forward_returns(bars, horizons_bars=(0,))
    with pytest.raises(ValueError, match=r"side has 2\.0 at row 0"):
        meta_labels(bars, side=pl.Series([2] * 50))
    with pytest.raises(ValueError, match="side='nope'"):
        meta_labels(bars, side="nope")
    with pytest.raises(ValueError, match="side has 3 values"):
        meta_labels(bars, side=pl.Series([1, 1, 1]))
