"""research_lib.strategies: EMA-cross targets vs TA-Lib EMAs, causality, registry, errors.

Fixtures are seeded random-walk bars built in this file.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from research_lib.config import StrategyConfig
from research_lib.strategies import STRATEGIES, ema_cross, signals_for


def make_bars(n: int, *, seed: int, symbol: str = "BTCUSDT") -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    return pl.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 3_600_000,
            "symbol": [symbol] * n,
            "open": np.concatenate(([100.0], close[:-1])),
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": np.ones(n),
        }
    )


@pytest.mark.parametrize("allow_short", [False, True])
def test_targets_match_talib_ema_cross(allow_short: bool) -> None:
    config = StrategyConfig(fast_bars=8, slow_bars=30, allow_short=allow_short)
    bars = make_bars(1000, seed=1)
    out = ema_cross.signals(bars, config)
    assert out.columns == [*bars.columns, "target"]
    assert out.drop("target").equals(bars)
    assert out["target"].dtype == pl.Float64
    x = bars["close"].to_numpy()
    fast, slow = talib.EMA(x, 8), talib.EMA(x, 30)
    expected = np.where(fast > slow, 1.0, -1.0 if allow_short else 0.0)
    expected[:29] = 0.0  # warm-up of the slow EMA
    np.testing.assert_array_equal(out["target"].to_numpy(), expected)
    levels = {-1.0, 1.0} if allow_short else {0.0, 1.0}
    assert set(np.unique(expected[29:])) == levels  # both regimes occur in this fixture


def test_registry_dispatches_on_name() -> None:
    bars = make_bars(200, seed=2)
    config = StrategyConfig(fast_bars=5, slow_bars=20)
    assert STRATEGIES["ema_cross"] is ema_cross.signals
    assert signals_for(bars, config).equals(ema_cross.signals(bars, config))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    fast=st.integers(2, 20),
    extra=st.integers(1, 60),
    allow_short=st.booleans(),
    cuts=st.lists(st.integers(0, 399), min_size=1, max_size=8),
)
def test_target_is_causal(
    seed: int, fast: int, extra: int, allow_short: bool, cuts: list[int]
) -> None:
    config = StrategyConfig(fast_bars=fast, slow_bars=fast + extra, allow_short=allow_short)
    bars = make_bars(400, seed=seed)
    full = signals_for(bars, config)["target"]
    for t in cuts:
        # The target at t from the whole history equals the one from bars[: t + 1].
        assert signals_for(bars.head(t + 1), config)["target"][t] == full[t]


def test_bad_input_errors_name_the_problem() -> None:
    config = StrategyConfig()
    bars = make_bars(100, seed=3)
    broken = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == 42).then(None).otherwise(pl.col("close")).alias("close")
    )
    with pytest.raises(ValueError, match="column 'close' has null at row 42"):
        signals_for(broken, config)
    with pytest.raises(ValueError, match="no column 'close'"):
        signals_for(bars.drop("close"), config)
    two = pl.concat([bars, make_bars(100, seed=4, symbol="ETHUSDT")])
    with pytest.raises(ValueError, match="2 symbols"):
        signals_for(two, config)
    with pytest.raises(TypeError, match="StrategyConfig"):
        ema_cross.signals(bars, {"fast_bars": 2})  # type: ignore[arg-type]
