"""kernels.rolling against TA-Lib / pandas / a brute-force loop, causality, stability.

Fixtures are seeded geometric random walks built in this file (no external data).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from kernels.rolling import (
    DIRECT_MAX_WINDOW,
    REANCHOR_MIN_BARS,
    REANCHOR_WINDOWS,
    _block_bars,
    ema,
    rolling_mean,
    rolling_std,
    rolling_zscore,
)

WINDOWS = [1, 2, 3, 5, 10, 14, 20, 48, 200, 1000]
# pandas' own online variance drifts by up to ~2e-7 relative on small windows of these walks
# (measured against the two-pass brute force below), so it can only serve as a 1e-9
# reference on windows of 48 bars or more; smaller windows are held to the brute force.
PANDAS_STD_TIGHT_FROM = 48


def random_walk(n: int, *, seed: int, scale: float = 100.0, vol: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return scale * np.exp(np.cumsum(rng.normal(0.0, vol, n)))


def with_gaps_and_ties(x: np.ndarray, *, seed: int) -> np.ndarray:
    """Copy of x with a few NaNs and a constant stretch (exercises pandas' edge rules)."""
    rng = np.random.default_rng(seed)
    y = x.copy()
    y[rng.choice(np.arange(10, y.size), size=5, replace=False)] = np.nan
    y[500:560] = x[500]
    return y


def brute_rolling(x: np.ndarray, window: int, stat: str, ddof: int = 0) -> np.ndarray:
    """Two-pass statistic over every full window (NaN if the window holds a NaN)."""
    out = np.full(x.size, np.nan)
    if window > x.size:
        return out
    views = sliding_window_view(x, window)
    if stat == "mean":
        out[window - 1 :] = views.mean(axis=1)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[window - 1 :] = views.std(axis=1, ddof=ddof)
    return out


def constant_windows(n: int, window: int) -> np.ndarray:
    """Mask of the bars whose window lies inside the constant stretch of with_gaps_and_ties."""
    end = np.arange(n)
    return (end - window + 1 >= 500) & (end < 560)


def assert_same_nan(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))


# --- references ----------------------------------------------------------------------------


@pytest.mark.parametrize("span", [1, 2, 3, 5, 12, 20, 48, 200, 1000])
def test_ema_matches_talib(span: int) -> None:
    x = random_walk(3000, seed=span)
    expected = talib.EMA(x, span)
    actual = ema(x, span)
    assert_same_nan(actual, expected)
    np.testing.assert_allclose(actual, expected, rtol=1e-9, equal_nan=True)


def test_ema_missing_values_follow_talib() -> None:
    x = random_walk(200, seed=1)
    x[:7] = np.nan  # leading NaNs: warm-up starts at the first finite value
    x[150] = np.nan  # a later NaN propagates to the end
    expected = talib.EMA(x, 10)
    actual = ema(x, 10)
    assert_same_nan(actual, expected)
    assert np.isnan(actual[150:]).all()
    np.testing.assert_allclose(actual, expected, rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("window", WINDOWS)
def test_rolling_mean_matches_pandas(window: int) -> None:
    x = with_gaps_and_ties(random_walk(3000, seed=window), seed=window)
    expected = pd.Series(x).rolling(window).mean().to_numpy()
    actual = rolling_mean(x, window)
    assert_same_nan(actual, expected)
    np.testing.assert_allclose(actual, expected, rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("window", WINDOWS)
def test_rolling_std_matches_pandas_and_brute_force(window: int, ddof: int) -> None:
    x = with_gaps_and_ties(random_walk(3000, seed=window), seed=window)
    expected = pd.Series(x).rolling(window).std(ddof=ddof).to_numpy()
    actual = rolling_std(x, window, ddof)
    assert_same_nan(actual, expected)
    if window - ddof <= 0:
        return
    brute = brute_rolling(x, window, "std", ddof)
    # On a constant window the true spread is 0. pandas 3.1 reports its accumulated drift
    # there (about 2e-6 after a volatile stretch); the kernel returns exactly 0.
    constant = constant_windows(x.size, window)
    assert constant.any() == (window <= 60)
    assert (actual[constant] == 0.0).all()
    brute[constant] = 0.0  # numpy's mean of equal values can be off by an ulp
    np.testing.assert_allclose(actual, brute, rtol=1e-10, atol=1e-12, equal_nan=True)
    rtol = 1e-9 if window >= PANDAS_STD_TIGHT_FROM else 1e-6
    np.testing.assert_allclose(actual[~constant], expected[~constant], rtol=rtol, equal_nan=True)


@pytest.mark.parametrize("window", WINDOWS[1:])
def test_rolling_zscore_matches_pandas_formula(window: int) -> None:
    x = with_gaps_and_ties(random_walk(3000, seed=window), seed=window)
    s = pd.Series(x)
    expected = ((s - s.rolling(window).mean()) / s.rolling(window).std(ddof=0)).to_numpy()
    actual = rolling_zscore(x, window)
    std = brute_rolling(x, window, "std", 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        brute = (x - brute_rolling(x, window, "mean")) / std
    # Zero spread -> NaN (pandas divides 0 by its drifted std and reports 0 there).
    constant = constant_windows(x.size, window)
    assert np.isnan(actual[constant]).all()
    brute[constant] = np.nan
    np.testing.assert_allclose(actual, brute, rtol=1e-10, atol=1e-10, equal_nan=True)
    atol = 1e-9 if window >= PANDAS_STD_TIGHT_FROM else 1e-6
    assert_same_nan(actual[~constant], expected[~constant])
    np.testing.assert_allclose(
        actual[~constant], expected[~constant], rtol=0, atol=atol, equal_nan=True
    )


def test_short_input_is_all_nan_and_bad_window_raises() -> None:
    x = random_walk(5, seed=0)
    for result in (ema(x, 6), rolling_mean(x, 6), rolling_std(x, 6, 0), rolling_zscore(x, 6)):
        assert result.shape == (5,) and np.isnan(result).all()
    assert np.isnan(rolling_std(x, 1, 1)).all()  # pandas: ddof >= window gives NaN
    assert (rolling_std(x, 1, 0) == 0.0).all()
    with pytest.raises(ValueError, match="window_bars"):
        rolling_mean(x, 0)
    with pytest.raises(ValueError, match="span_bars"):
        ema(x, 0)


def test_out_argument_is_filled_and_returned() -> None:
    x = random_walk(2500, seed=4)
    for kernel, args in (
        (ema, (20,)),
        (rolling_mean, (20,)),
        (rolling_std, (20, 1)),
        (rolling_zscore, (20,)),
    ):
        out = np.full_like(x, 123.0)
        result = kernel(x, *args, out)
        assert result is out
        np.testing.assert_array_equal(out, kernel(x, *args))


# --- causality -----------------------------------------------------------------------------

KERNELS = {
    "ema": lambda x, w: ema(x, w),
    "rolling_mean": lambda x, w: rolling_mean(x, w),
    "rolling_std_0": lambda x, w: rolling_std(x, w, 0),
    "rolling_std_1": lambda x, w: rolling_std(x, w, 1),
    "rolling_zscore": lambda x, w: rolling_zscore(x, w),
}


@st.composite
def series_window_cut(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    n = draw(st.integers(1, 2500))
    seed = draw(st.integers(0, 2**32 - 1))
    x = random_walk(n, seed=seed, vol=draw(st.sampled_from([1e-4, 1e-2, 0.1])))
    if draw(st.booleans()):
        x = np.round(x, 0)  # ties and constant runs
    if draw(st.booleans()) and n > 3:
        x[np.random.default_rng(seed).integers(0, n, 3)] = np.nan
    window = draw(st.integers(1, 300))
    cut = draw(st.integers(1, n))
    return x, window, cut


@pytest.mark.parametrize("name", sorted(KERNELS))
@settings(max_examples=60, deadline=None)
@given(case=series_window_cut())
def test_causal(name: str, case: tuple[np.ndarray, int, int]) -> None:
    x, window, cut = case
    kernel = KERNELS[name]
    full = kernel(x, window)
    prefix = kernel(x[:cut].copy(), window)
    # f(x[:t])[-1] == f(x)[t-1], and in fact the whole prefix agrees bit for bit.
    np.testing.assert_array_equal(prefix, full[:cut])


# --- numerical stability -------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-8, 1e8])
@pytest.mark.parametrize("window", [2, 5, 20, 500])
def test_rolling_stable_on_1m_bars(scale: float, window: int) -> None:
    x = random_walk(1_000_000, seed=window, scale=scale, vol=0.001)
    idx = np.unique(np.random.default_rng(0).integers(window - 1, x.size, 3000))
    idx = np.concatenate((idx, [x.size - 1]))
    views = sliding_window_view(x, window)[idx - window + 1]
    mean_ref = views.mean(axis=1)
    std_ref = views.std(axis=1, ddof=1)
    np.testing.assert_allclose(rolling_mean(x, window)[idx], mean_ref, rtol=1e-12)
    np.testing.assert_allclose(rolling_std(x, window, 1)[idx], std_ref, rtol=1e-9)
    z_ref = (x[idx] - mean_ref) / views.std(axis=1, ddof=0)
    np.testing.assert_allclose(rolling_zscore(x, window)[idx], z_ref, rtol=0, atol=1e-8)


@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_ema_scale_invariant(scale: float) -> None:
    x = random_walk(20_000, seed=5)
    base = ema(x, 20)
    np.testing.assert_allclose(ema(x * scale, 20) / scale, base, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ema(x * scale, 20), talib.EMA(x * scale, 20), rtol=1e-9)
    # Scaling by a power of two is exact in binary, so the EMA must scale bit for bit.
    exponent = int(np.log2(scale))
    np.testing.assert_array_equal(ema(np.ldexp(x, exponent), 20), np.ldexp(base, exponent))


@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_rolling_std_scale_invariant(scale: float) -> None:
    x = random_walk(20_000, seed=6)
    base = rolling_std(x, 20, 1)
    scaled = rolling_std(x * scale, 20, 1) / scale
    np.testing.assert_allclose(scaled, base, rtol=1e-10, equal_nan=True)


def volatile_then_calm(*, seed: int, scale: float) -> np.ndarray:
    """A wild random walk, then a very calm one at a level far from the earlier window means."""
    rng = np.random.default_rng(seed)
    volatile = 1000.0 + np.cumsum(rng.normal(0.0, 10.0, 3000))
    calm = volatile[-1] + 500.0 + np.cumsum(rng.normal(0.0, 1e-3, 3000))
    return scale * np.concatenate((volatile, calm))


@pytest.mark.parametrize("scale", [1.0, 1e8, 1e-8])
@pytest.mark.parametrize("window", [5, 20, 48, 200, 1000])
def test_rolling_std_accurate_when_calm_follows_volatile(scale: float, window: int) -> None:
    # Right after the jump the anchor sits ~1e5 calm standard deviations from the window mean;
    # without the drift re-anchor the std lost up to 1e-4 relative here.
    x = volatile_then_calm(seed=window, scale=scale)
    for ddof in (0, 1):
        brute = brute_rolling(x, window, "std", ddof)
        np.testing.assert_allclose(rolling_std(x, window, ddof), brute, rtol=1e-9, equal_nan=True)
    # z = -mean(window - x_t) / std: x - (rounded mean) would itself be off by ~2e-9 here (the
    # level is ~1e6 calm standard deviations from zero), while x_j - x_t is exact.
    views = sliding_window_view(x, window)
    z_ref = np.full(x.size, np.nan)
    z_ref[window - 1 :] = -(views - x[window - 1 :, None]).mean(axis=1) / views.std(axis=1)
    np.testing.assert_allclose(rolling_zscore(x, window), z_ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("window", [5, 20, 300])
def test_rolling_std_loops_agree_across_chunks(window: int) -> None:
    # Past the first scan chunk (2048 bars), a NaN, an inf and a constant stretch send some
    # chunks to the general loop; every prefix must agree bit for bit with the full run, and
    # the output must recover once the bad values leave the window (after an inf, as before,
    # at the next scheduled re-anchor: inf - inf poisons the running sums until then).
    x = random_walk(9000, seed=window)
    x[3000] = np.nan
    x[5000] = np.inf
    x[6000 : 6000 + window + 5] = x[6000]
    for kernel in (lambda v: rolling_std(v, window, 1), lambda v: rolling_zscore(v, window)):
        full = kernel(x)
        for cut in (2047, 2048, 2049, 3000, 3001, 4100, 5001, 6000 + window, 8999):
            np.testing.assert_array_equal(kernel(x[:cut].copy()), full[:cut])
    brute = brute_rolling(x, window, "std", 1)
    actual = rolling_std(x, window, 1)
    interval = max(64, 4 * window)
    recovered = -(-(5000 + window) // interval) * interval
    ok = np.isfinite(brute)
    ok[5000:recovered] = False
    assert np.isfinite(actual[recovered:]).all()
    np.testing.assert_allclose(actual[ok], brute[ok], rtol=1e-9, atol=1e-12)


# --- parallel blocks -----------------------------------------------------------------------
# rolling_std / rolling_zscore run blocks of whole re-anchor intervals in parallel; a block
# starts from the two-pass anchor of its first window. Seams are placed on NaNs, flat runs and
# a x1e6 jump, and every bar is held to the brute force and to causality across the seams.


@pytest.mark.parametrize("w", [3, 20, 300])
def test_std_and_zscore_across_parallel_blocks(w: int) -> None:
    interval = 1 if w <= DIRECT_MAX_WINDOW else max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)
    block = _block_bars(interval, 2 * w)
    seams = [block, 2 * block, 3 * block]
    x = random_walk(seams[-1] + 3 * w + 5, seed=w)
    x[seams[0] - 1] = np.nan
    x[seams[1] - w // 2 : seams[1] + w + 1] = x[seams[1] - w // 2 - 1]
    x[seams[2] :] *= 1e6
    std = rolling_std(x, w, 1)
    expected = brute_rolling(x, w, "std", ddof=1)
    assert_same_nan(std, expected)
    np.testing.assert_allclose(std, expected, rtol=1e-9, atol=1e-12 * 100, equal_nan=True)
    zscore = rolling_zscore(x, w)
    mean = brute_rolling(x, w, "mean")
    with np.errstate(invalid="ignore", divide="ignore"):
        z_expected = (x - mean) / brute_rolling(x, w, "std")
    z_expected[~np.isfinite(z_expected)] = np.nan
    views = sliding_window_view(x, w)
    flat = np.zeros(x.size, dtype=bool)
    flat[w - 1 :] = views.max(axis=1) == views.min(axis=1)
    z_expected[flat] = np.nan  # a constant window: std exactly 0, z undefined (pandas)
    assert_same_nan(zscore, z_expected)
    np.testing.assert_allclose(zscore, z_expected, rtol=1e-7, atol=1e-9, equal_nan=True)
    for t in (seams[1] - 1, seams[1], seams[1] + 1, seams[2], seams[2] + 1):
        np.testing.assert_array_equal(rolling_std(x[:t].copy(), w, 1), std[:t])
        np.testing.assert_array_equal(rolling_zscore(x[:t].copy(), w), zscore[:t])
    aliased = x.copy()
    assert rolling_std(aliased, w, 1, aliased) is aliased
    np.testing.assert_array_equal(aliased, std)
