"""kernels.momentum.rsi against TA-Lib, causality and scale invariance.

Fixtures are seeded geometric random walks built in this file (no external data).
"""

from __future__ import annotations

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.momentum import rsi


def random_walk(n: int, *, seed: int, scale: float = 100.0, vol: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return scale * np.exp(np.cumsum(rng.normal(0.0, vol, n)))


@pytest.mark.parametrize("window", [2, 3, 5, 9, 14, 21, 50, 100, 1000])
def test_rsi_matches_talib(window: int) -> None:
    x = random_walk(5000, seed=window)
    expected = talib.RSI(x, window)
    actual = rsi(x, window)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    assert np.isnan(actual[:window]).all() and not np.isnan(actual[window:]).any()
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_rsi_flat_and_missing_values_follow_talib() -> None:
    x = np.concatenate((np.full(30, 5.0), random_walk(200, seed=2)))
    x[:4] = np.nan  # leading NaNs are skipped
    x[180] = np.nan  # a later NaN propagates
    expected = talib.RSI(x, 14)
    actual = rsi(x, 14)
    assert actual[4 + 14] == 0.0  # flat seed window: TA-Lib reports 0, not NaN
    np.testing.assert_allclose(actual[:180], expected[:180], rtol=1e-9, atol=1e-9, equal_nan=True)
    # Deliberate difference: TA-Lib 0.8 reports 0.0 after a NaN input; the kernel says NaN.
    assert np.isnan(actual[180:]).all()


def test_rsi_monotone_series_hits_the_bounds() -> None:
    up = np.arange(1.0, 40.0)
    assert (rsi(up, 14)[14:] == 100.0).all()
    assert (rsi(up[::-1].copy(), 14)[14:] == 0.0).all()


def test_rsi_short_input_and_bad_window() -> None:
    assert np.isnan(rsi(random_walk(14, seed=0), 14)).all()
    with pytest.raises(ValueError, match="window_bars"):
        rsi(random_walk(50, seed=0), 1)


def test_rsi_out_argument() -> None:
    x = random_walk(500, seed=3)
    out = np.full_like(x, 7.0)
    assert rsi(x, 14, out) is out
    np.testing.assert_array_equal(out, rsi(x, 14))


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 2000),
    seed=st.integers(0, 2**32 - 1),
    window=st.integers(2, 200),
    cut_fraction=st.floats(0.0, 1.0),
    rounded=st.booleans(),
)
def test_rsi_causal(n: int, seed: int, window: int, cut_fraction: float, rounded: bool) -> None:
    x = random_walk(n, seed=seed)
    if rounded:
        x = np.round(x)  # zero moves and flat stretches
    cut = max(1, round(cut_fraction * n))
    full = rsi(x, window)
    # f(x[:t])[-1] == f(x)[t-1], and the whole prefix agrees bit for bit.
    np.testing.assert_array_equal(rsi(x[:cut].copy(), window), full[:cut])


@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_rsi_scale_invariant(scale: float) -> None:
    x = random_walk(20_000, seed=8)
    base = rsi(x, 14)
    np.testing.assert_allclose(rsi(x * scale, 14), base, rtol=1e-12, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(
        rsi(x * scale, 14), talib.RSI(x * scale, 14), rtol=1e-9, atol=1e-9, equal_nan=True
    )
    # A power-of-two scale is exact in binary: RSI must not change by a single bit.
    exponent = int(np.log2(scale))
    np.testing.assert_array_equal(rsi(np.ldexp(x, exponent), 14), base)
