"""research_lib.features: wrappers vs TA-Lib/pandas, the .ta namespace, add_features per symbol.

Fixtures are seeded random-walk bars built in this file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
import talib

from research_lib import features
from research_lib.config import FeatureConfig

CONFIG = FeatureConfig(ema_fast_bars=5, ema_slow_bars=20, rsi_bars=14, zscore_bars=30)


def make_bars(symbol: str, n: int, *, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    return pl.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 3_600_000,
            "symbol": [symbol] * n,
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.uniform(1.0, 10.0, n),
        }
    )


def as_array(series: pl.Series) -> np.ndarray:
    """Null -> NaN, for comparison with TA-Lib / pandas."""
    return series.cast(pl.Float64).fill_null(np.nan).to_numpy()


def test_series_functions_match_references_with_null_warm_up() -> None:
    close = make_bars("X", 800, seed=1)["close"]
    x = close.to_numpy()
    s = pd.Series(x)
    zscore_ref = ((s - s.rolling(30).mean()) / s.rolling(30).std(ddof=0)).to_numpy()
    cases = [
        (features.ema(close, span_bars=12), talib.EMA(x, 12), 11),
        (features.rsi(close, window_bars=14), talib.RSI(x, 14), 14),
        (features.rolling_zscore(close, window_bars=30), zscore_ref, 29),
    ]
    for result, reference, warm_up in cases:
        assert result.dtype == pl.Float64 and result.name == "close" and result.len() == 800
        assert result.null_count() == warm_up and result[:warm_up].is_null().all()
        assert not result.is_nan().any()  # NaN never leaks out: missing is null
        np.testing.assert_allclose(as_array(result), reference, rtol=1e-9, atol=1e-9)


def test_ta_namespace_equals_functions() -> None:
    bars = make_bars("X", 300, seed=2)
    out = bars.select(
        pl.col("close").ta.ema(20).alias("ema"),
        pl.col("close").ta.rsi(14).alias("rsi"),
        pl.col("close").ta.zscore(48).alias("z"),
    )
    close = bars["close"]
    assert out["ema"].equals(features.ema(close, span_bars=20).alias("ema"))
    assert out["rsi"].equals(features.rsi(close, window_bars=14).alias("rsi"))
    assert out["z"].equals(features.rolling_zscore(close, window_bars=48).alias("z"))


def test_missing_input_gives_null_output() -> None:
    series = pl.Series("x", [None, 1.0, 2.0, 3.0, float("nan"), 5.0, 6.0, 7.0])
    z = features.rolling_zscore(series, window_bars=2)
    # Windows touching the null or the NaN are null, like pandas rolling(2).
    assert z.is_null().to_list() == [True, True, False, False, True, True, False, False]
    assert features.ema(series, span_bars=2).to_list()[:4] == [None, None, 1.5, 2.5]


def test_add_features_two_symbols_equals_per_symbol() -> None:
    a = make_bars("AAA", 400, seed=3)
    b = make_bars("BBB", 250, seed=4)
    both = features.add_features(pl.concat([a, b]), CONFIG)
    assert both.columns == [*a.columns, "ret_1", "ema_fast", "ema_slow", "rsi", "zscore"]
    for single in (a, b):
        symbol = single["symbol"][0]
        expected = features.add_features(single, CONFIG)
        actual = both.filter(pl.col("symbol") == symbol)
        assert actual.equals(expected), symbol
        close = single["close"]
        # Each column is the plain per-symbol computation (nothing leaks across symbols).
        assert actual["ema_fast"].equals(features.ema(close, span_bars=5).alias("ema_fast"))
        assert actual["ema_slow"].equals(features.ema(close, span_bars=20).alias("ema_slow"))
        assert actual["rsi"].equals(features.rsi(close, window_bars=14).alias("rsi"))
        zscore = features.rolling_zscore(close, window_bars=30).alias("zscore")
        assert actual["zscore"].equals(zscore)
        x = close.to_numpy()
        ret = as_array(actual["ret_1"])
        assert np.isnan(ret[0])
        np.testing.assert_allclose(ret[1:], np.log(x[1:] / x[:-1]), rtol=1e-12)


def test_add_features_is_causal() -> None:
    bars = make_bars("X", 300, seed=5)
    full = features.add_features(bars, CONFIG)
    for t in (1, 19, 20, 150, 299):
        head = features.add_features(bars.head(t + 1), CONFIG)
        assert head.row(t) == full.row(t)


@pytest.mark.parametrize(
    ("value", "shown"), [(None, "null"), (float("nan"), "nan"), (-1.0, "-1.0"), (0.0, "0.0")]
)
def test_bad_close_error_names_column_and_row(value: float | None, shown: str) -> None:
    a = make_bars("AAA", 50, seed=6)
    b = make_bars("BBB", 50, seed=7)
    b = b.with_columns(
        pl.when(pl.int_range(pl.len()) == 17).then(value).otherwise(pl.col("close")).alias("close")
    )
    with pytest.raises(ValueError, match=rf"'close' has {shown} at row 67 \(symbol='BBB'"):
        features.add_features(pl.concat([a, b]), CONFIG)


def test_bad_frame_and_window_errors() -> None:
    bars = make_bars("X", 30, seed=8)
    with pytest.raises(ValueError, match="'close'"):
        features.add_features(bars.drop("close"), CONFIG)
    shuffled = pl.concat([bars.slice(10), bars.head(10)])
    with pytest.raises(ValueError, match="'ts' does not increase at row 20"):
        features.add_features(shuffled, CONFIG)
    with pytest.raises(ValueError, match="window_bars must be >= 2, got 1"):
        features.rsi(bars["close"], window_bars=1)
    with pytest.raises(TypeError, match="span_bars must be an int"):
        features.ema(bars["close"], span_bars=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window_bars"):
        pl.col("close").ta.zscore(0)
    with pytest.raises(TypeError, match="numeric"):
        features.ema(bars["symbol"], span_bars=3)
