"""kernels.volatility against TA-Lib / pandas / brute force, causality, NaN policy, stability.

Fixtures are seeded geometric random-walk OHLCV bars built in this file (no external data).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view
from ohlcv_fixtures import Bars, random_ohlcv, with_gaps

from kernels.realised import (
    _KIND_CLOSE_TO_CLOSE,
    _KIND_GARMAN_KLASS,
    _KIND_PARKINSON,
    _realised_vol_range,
)
from kernels.rolling import (
    DIRECT_MAX_WINDOW,
    PARALLEL_BLOCK_BARS,
    REANCHOR_MIN_BARS,
    REANCHOR_WINDOWS,
    _block_bars,
)
from kernels.volatility import (
    _MODE_BANDS,
    _MODE_PERCENT_B,
    DONCHIAN_CHUNK_BARS,
    _bollinger_range,
    _donchian_range,
    atr,
    bollinger_bands,
    bollinger_percent_b_bandwidth,
    close_to_close_volatility,
    donchian_channels,
    garman_klass_volatility,
    keltner_channels,
    natr,
    parkinson_volatility,
)

# pandas' online rolling variance drifts by up to ~2e-7 relative on small windows (see
# test_rolling.py), so std-based outputs meet pandas at 1e-9 only from this window on; every
# window is held to the two-pass brute force at 1e-9.
PANDAS_STD_TIGHT_FROM = 48


def assert_same_nan(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float = 0.0):
    assert_same_nan(actual, expected)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def brute_mean_std(x: np.ndarray, window: int, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two-pass mean and std of every full window (NaN if the window holds a NaN)."""
    mean = np.full(x.size, np.nan)
    std = np.full(x.size, np.nan)
    if window <= x.size:
        views = sliding_window_view(x, window)
        mean[window - 1 :] = views.mean(axis=1)
        std[window - 1 :] = views.std(axis=1, ddof=ddof)
    return mean, std


def seeded_ema_pandas(x: pd.Series, span: int) -> pd.Series:
    """TA-Lib's EMA in pandas: SMA of the first `span` values, then ewm(adjust=False)."""
    seeded = x.copy()
    first = int(np.argmax(x.notna().to_numpy()))
    seeded.iloc[: first + span - 1] = np.nan
    seeded.iloc[first + span - 1] = x.iloc[first : first + span].mean()
    return seeded.ewm(span=span, adjust=False).mean()


def wilder_atr_pandas(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> pd.Series:
    """Wilder ATR in pandas: mean of the first n true ranges, then ewm(alpha=1/n)."""
    h, lo, c = pd.Series(high), pd.Series(low), pd.Series(close)
    pc = c.shift(1)
    tr = pd.concat([h - lo, (h - pc).abs(), (lo - pc).abs()], axis=1).max(axis=1)
    tr.iloc[0] = np.nan
    seeded = tr.copy()
    seeded.iloc[: n + 1] = np.nan
    seeded.iloc[n] = tr.iloc[1 : n + 1].mean()
    return seeded.ewm(alpha=1.0 / n, adjust=False).mean()


# --- Bollinger bands -----------------------------------------------------------------------

BB_WINDOWS = [2, 3, 5, 10, 20, 48, 200, 1000]
BB_DEVIATIONS = [(2.0, 2.0), (1.0, 3.0), (0.5, 0.0)]


@pytest.mark.parametrize(("up", "down"), BB_DEVIATIONS)
@pytest.mark.parametrize("window", BB_WINDOWS)
def test_bollinger_bands_match_talib(window: int, up: float, down: float) -> None:
    close = random_ohlcv(3000, seed=window)[3]
    expected = talib.BBANDS(close, window, up, down, 0)
    actual = bollinger_bands(close, window, up, down)
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e, rtol=1e-9)
    assert np.isnan(actual[1][: window - 1]).all() and not np.isnan(actual[1][window - 1 :]).any()


@pytest.mark.parametrize("window", BB_WINDOWS)
def test_bollinger_percent_b_bandwidth_match_pandas_and_brute_force(window: int) -> None:
    close = with_gaps(random_ohlcv(3000, seed=window)[3], seed=window)
    close[500:560] = close[499]  # constant stretch 499..559: bands coincide, %b undefined
    up, down = 2.0, 1.5
    s = pd.Series(close)
    mid, sd = s.rolling(window).mean(), s.rolling(window).std(ddof=0)
    upper, lower = mid + up * sd, mid - down * sd
    pandas_b = ((s - lower) / (upper - lower)).to_numpy()
    pandas_bw = ((upper - lower) / mid).to_numpy()
    mean, std = brute_mean_std(close, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        brute_b = (close - (mean - down * std)) / ((up + down) * std)
    brute_bw = (up + down) * std / mean
    percent_b, bandwidth = bollinger_percent_b_bandwidth(close, window, up, down)

    end = np.arange(close.size)
    constant = (end - window + 1 >= 499) & (end < 560)
    assert np.isnan(percent_b[constant]).all() and (bandwidth[constant] == 0.0).all()
    brute_b[constant] = np.nan
    brute_bw[constant] = 0.0
    assert_close(percent_b, brute_b, rtol=1e-9, atol=1e-9)  # %b is O(1) and crosses 0
    assert_close(bandwidth, brute_bw, rtol=1e-9)
    # pandas loses digits on small windows and on windows that mix the constant stretch
    # with one or two other bars (tiny std after a volatile run): 7e-9 measured at window 48.
    overlap = (end >= 499) & (end - window + 1 < 560)
    for mask, tight in ((~overlap, window >= PANDAS_STD_TIGHT_FROM), (overlap & ~constant, False)):
        assert_close(percent_b[mask], pandas_b[mask], rtol=0, atol=1e-9 if tight else 1e-5)
        assert_close(bandwidth[mask], pandas_bw[mask], rtol=1e-9 if tight else 1e-6)


def test_bollinger_nan_policy_is_pandas_rolling() -> None:
    close = random_ohlcv(400, seed=3)[3]
    close[:6] = np.nan  # leading NaNs: same warm-up as TA-Lib
    close[200] = np.nan  # interior NaN: NaN while in the window, then recovery
    upper, middle, lower = bollinger_bands(close, 20, 2.0, 2.0)
    t_upper, t_middle, t_lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    np.testing.assert_allclose(middle[:200], t_middle[:200], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(upper[:200], t_upper[:200], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(lower[:200], t_lower[:200], rtol=1e-9, equal_nan=True)
    assert np.isnan(middle[: 6 + 19]).all() and not np.isnan(middle[6 + 19 : 200]).any()
    assert np.isnan(middle[200:220]).all() and np.isnan(lower[200:220]).all()
    assert not np.isnan(middle[220:]).any()
    assert np.isnan(t_middle[220:]).all()  # TA-Lib never recovers
    mean, std = brute_mean_std(close, 20)
    np.testing.assert_allclose(upper[220:], (mean + 2 * std)[220:], rtol=1e-12)


# --- ATR, NATR -----------------------------------------------------------------------------

ATR_WINDOWS = [1, 2, 3, 5, 14, 20, 50, 200, 1000]


@pytest.mark.parametrize("window", ATR_WINDOWS)
def test_atr_and_natr_match_talib(window: int) -> None:
    _, high, low, close, _ = random_ohlcv(3000, seed=window)
    assert_close(atr(high, low, close, window), talib.ATR(high, low, close, window), rtol=1e-9)
    expected_natr = talib.NATR(high, low, close, window)
    if window == 1:
        # TA-Lib 0.8 returns the raw TRANGE for NATR(1), not normalised; the kernel does
        # normalise: TRANGE / close * 100.
        np.testing.assert_array_equal(expected_natr, talib.TRANGE(high, low, close))
        expected_natr = talib.TRANGE(high, low, close) / close * 100.0
    assert_close(natr(high, low, close, window), expected_natr, rtol=1e-9)
    assert np.isnan(atr(high, low, close, window)[:window]).all()


def test_atr_nan_policy() -> None:
    _, high, low, close, _ = random_ohlcv(300, seed=7)
    high[:3] = np.nan  # leading NaNs in different inputs: start at the latest first value
    close[:5] = np.nan
    for ours, theirs in ((atr, talib.ATR), (natr, talib.NATR)):
        assert_close(ours(high, low, close, 14), theirs(high, low, close, 14), rtol=1e-9)
    assert np.isnan(atr(high, low, close, 14)[: 5 + 14]).all()
    close[150] = np.nan  # interior NaN: that bar and every later bar are NaN
    result = atr(high, low, close, 14)
    np.testing.assert_allclose(result[:150], talib.ATR(high, low, close, 14)[:150], rtol=1e-9)
    assert not np.isnan(result[19:150]).any() and np.isnan(result[150:]).all()
    low[100] = np.nan
    assert np.isnan(natr(high, low, close, 14)[100:]).all()


def test_natr_zero_close_is_nan() -> None:
    _, high, low, close, _ = random_ohlcv(100, seed=8)
    close[50] = 0.0
    ours = natr(high, low, close, 10)
    theirs = talib.NATR(high, low, close, 10)
    assert np.isnan(ours[50]) and theirs[50] == 0.0  # deliberate difference: no made-up 0
    mask = np.arange(100) != 50
    np.testing.assert_allclose(ours[mask], theirs[mask], rtol=1e-9, equal_nan=True)


# --- Keltner -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ema_window", "atr_window"), [(20, 10), (10, 20), (1, 1), (2, 3), (50, 14)]
)
@pytest.mark.parametrize("multiplier", [2.0, 1.5])
def test_keltner_matches_pandas(ema_window: int, atr_window: int, multiplier: float) -> None:
    _, high, low, close, _ = random_ohlcv(3000, seed=ema_window * 7 + atr_window)
    mid = seeded_ema_pandas(pd.Series(close), ema_window)
    width = multiplier * wilder_atr_pandas(high, low, close, atr_window)
    upper, middle, lower = keltner_channels(high, low, close, ema_window, atr_window, multiplier)
    warm = max(ema_window - 1, atr_window)
    ref_mid = mid.to_numpy().copy()
    ref_mid[:warm] = np.nan
    assert_close(middle, ref_mid, rtol=1e-9)
    assert_close(upper, (mid + width).to_numpy(), rtol=1e-9)
    assert_close(lower, (mid - width).to_numpy(), rtol=1e-9)
    # The same bands from TA-Lib's EMA and ATR.
    t_width = multiplier * talib.ATR(high, low, close, atr_window)
    np.testing.assert_allclose(upper, talib.EMA(close, ema_window) + t_width, rtol=1e-9)


def test_keltner_nan_policy() -> None:
    _, high, low, close, _ = random_ohlcv(300, seed=9)
    close[:4] = np.nan
    close[200] = np.nan
    upper, middle, lower = keltner_channels(high, low, close, 20, 10, 2.0)
    first = 4 + 19  # EMA warm-up (19 bars) is longer than ATR's (10 bars)
    for band in (upper, middle, lower):
        assert np.isnan(band[:first]).all() and not np.isnan(band[first:200]).any()
        assert np.isnan(band[200:]).all()


# --- Donchian ------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 2, 3, 5, 20, 55, 200, 1000])
def test_donchian_matches_pandas(window: int) -> None:
    _, high, low, _, _ = random_ohlcv(3000, seed=window)
    high = with_gaps(high, seed=window)  # NaNs in high and low at different bars
    low = with_gaps(low, seed=window + 1)
    high[700:760] = high[699]  # ties
    upper_ref = pd.Series(high).rolling(window).max().to_numpy()
    lower_ref = pd.Series(low).rolling(window).min().to_numpy()
    upper, middle, lower = donchian_channels(high, low, window)
    np.testing.assert_array_equal(upper, upper_ref)
    np.testing.assert_array_equal(lower, lower_ref)
    np.testing.assert_array_equal(middle, (upper_ref + lower_ref) / 2)


# --- realised volatility -------------------------------------------------------------------

VOL_WINDOWS = [2, 3, 5, 20, 48, 200, 1000]


@pytest.mark.parametrize("window", VOL_WINDOWS)
def test_close_to_close_volatility_matches_pandas_and_brute_force(window: int) -> None:
    close = with_gaps(random_ohlcv(3000, seed=window)[3], seed=window)
    ref = pd.Series(np.log(close)).diff().rolling(window).std(ddof=1).to_numpy()
    returns = np.r_[np.nan, np.log(close[1:] / close[:-1])]
    _, brute = brute_mean_std(returns, window, ddof=1)
    actual = close_to_close_volatility(close, window)
    assert_close(actual, brute, rtol=1e-9)
    assert_close(actual, ref, rtol=1e-9 if window >= PANDAS_STD_TIGHT_FROM else 1e-6)
    assert np.isnan(actual[:window]).all()


@pytest.mark.parametrize("window", [1, *VOL_WINDOWS])
def test_range_volatility_matches_pandas_and_brute_force(window: int) -> None:
    open_, high, low, close, _ = random_ohlcv(3000, seed=window, flat_every=97)
    high = with_gaps(high, seed=window)
    hl = np.log(high / low)
    co = np.log(close / open_)
    parkinson_terms = hl**2 / (4 * np.log(2))
    gk_terms = 0.5 * hl**2 - (2 * np.log(2) - 1) * co**2
    for terms, actual in (
        (parkinson_terms, parkinson_volatility(high, low, window)),
        (gk_terms, garman_klass_volatility(open_, high, low, close, window)),
    ):
        ref = np.sqrt(pd.Series(terms).rolling(window).mean().to_numpy())
        brute = np.sqrt(brute_mean_std(terms, window)[0])
        assert_close(actual, ref, rtol=1e-9)
        assert_close(actual, brute, rtol=1e-9)


@pytest.mark.parametrize("window", [5, 20, 300])
def test_realised_volatility_loops_agree_across_chunks(window: int) -> None:
    # Past the first chunks (1024 bars), a NaN and a flat stretch send some chunks to the
    # general loop and the rest to the clean one; every prefix must agree bit for bit with the
    # full run, and both loops must match the brute force.
    open_, high, low, close, _ = random_ohlcv(6000, seed=window)
    for x in (open_, high, low, close):
        x[3000] = np.nan
    flat = slice(5000, 5000 + window + 5)
    open_[flat] = high[flat] = low[flat] = close[flat] = close[5000]
    kernels = (
        lambda o, h, lo, c: close_to_close_volatility(c, window),
        lambda o, h, lo, c: parkinson_volatility(h, lo, window),
        lambda o, h, lo, c: garman_klass_volatility(o, h, lo, c, window),
    )
    for kernel in kernels:
        full = kernel(open_, high, low, close)
        for cut in (1023, 1024, 1025, 2049, 3000, 3001, 3100, 5001, 5000 + window + 1, 5999):
            prefix = kernel(*(x[:cut].copy() for x in (open_, high, low, close)))
            np.testing.assert_array_equal(prefix, full[:cut])
    returns = np.r_[np.nan, np.log(close[1:] / close[:-1])]
    hl = np.log(high / low)
    co = np.log(close / open_)
    expected = (
        brute_mean_std(returns, window, ddof=1)[1],
        np.sqrt(brute_mean_std(hl**2 / (4 * np.log(2)), window)[0]),
        np.sqrt(
            np.maximum(brute_mean_std(0.5 * hl**2 - (2 * np.log(2) - 1) * co**2, window)[0], 0)
        ),
    )
    for k, (kernel, brute) in enumerate(zip(kernels, expected, strict=True)):
        actual = kernel(open_, high, low, close)
        assert_same_nan(actual, brute)
        if k == 0:  # the std's exact zero on a constant window (pandas' rule)
            assert (actual[5000 + window : 5000 + window + 5] == 0.0).all()
        # The range estimators take the square root of a rolling mean: on the flat windows
        # that mean is a rounding residue (~1e-20 after bars of ~1e-5), so the vol is ~1e-10.
        atol = 1e-12 if k == 0 else 1e-9
        np.testing.assert_allclose(actual, brute, rtol=1e-9, atol=atol, equal_nan=True)


def test_volatility_is_per_bar() -> None:
    """A lognormal walk with per-bar sigma 0.01 gives estimates near 0.01, not annualised."""
    close = random_ohlcv(200_000, seed=11, vol=0.01)[3]
    assert abs(np.nanmean(close_to_close_volatility(close, 500)) / 0.01 - 1) < 0.02


def test_kernel_input_checks_and_short_inputs() -> None:
    open_, high, low, close, _ = random_ohlcv(5, seed=0)
    for result in (
        *bollinger_bands(close, 6, 2.0, 2.0),
        atr(high, low, close, 5),
        natr(high, low, close, 5),
        *keltner_channels(high, low, close, 6, 2, 2.0),
        *donchian_channels(high, low, 6),
        close_to_close_volatility(close, 5),
        parkinson_volatility(high, low, 6),
        garman_klass_volatility(open_, high, low, close, 6),
    ):
        assert result.shape == (5,) and np.isnan(result).all()
    with pytest.raises(ValueError, match="window_bars"):
        bollinger_bands(close, 1, 2.0, 2.0)
    with pytest.raises(ValueError, match="window_bars"):
        atr(high, low, close, 0)
    with pytest.raises(ValueError, match="window_bars"):
        close_to_close_volatility(close, 1)
    with pytest.raises(ValueError, match="atr_window_bars"):
        keltner_channels(high, low, close, 5, 0, 2.0)


def test_out_arguments_are_filled_and_returned() -> None:
    open_, high, low, close, _ = random_ohlcv(2500, seed=4)
    outs = [np.full_like(close, 123.0) for _ in range(3)]
    result = bollinger_bands(close, 20, 2.0, 2.0, *outs)
    assert all(r is o for r, o in zip(result, outs, strict=True))
    for r, e in zip(result, bollinger_bands(close, 20, 2.0, 2.0), strict=True):
        np.testing.assert_array_equal(r, e)
    for kernel, args in (
        (atr, (high, low, close, 14)),
        (natr, (high, low, close, 14)),
        (close_to_close_volatility, (close, 20)),
        (parkinson_volatility, (high, low, 20)),
        (garman_klass_volatility, (open_, high, low, close, 20)),
    ):
        out = np.full_like(close, 123.0)
        assert kernel(*args, out) is out
        np.testing.assert_array_equal(out, kernel(*args))
    for kernel, args in (
        (bollinger_percent_b_bandwidth, (close, 20, 2.0, 2.0)),
        (keltner_channels, (high, low, close, 20, 10, 2.0)),
        (donchian_channels, (high, low, 20)),
    ):
        k = len(kernel(*args))
        outs = [np.full_like(close, 123.0) for _ in range(k)]
        result = kernel(*args, *outs)
        assert all(r is o for r, o in zip(result, outs, strict=True))
        for r, e in zip(result, kernel(*args), strict=True):
            np.testing.assert_array_equal(r, e)


# --- causality -----------------------------------------------------------------------------

Kernel = Callable[[Bars, int, int], tuple[np.ndarray, ...]]

KERNELS: dict[str, Kernel] = {
    "bollinger_bands": lambda b, w, _: bollinger_bands(b[3], max(w, 2), 2.0, 1.0),
    "bollinger_percent_b_bandwidth": lambda b, w, _: bollinger_percent_b_bandwidth(
        b[3], max(w, 2), 2.0, 1.0
    ),
    "atr": lambda b, w, _: (atr(b[1], b[2], b[3], w),),
    "natr": lambda b, w, _: (natr(b[1], b[2], b[3], w),),
    "keltner_channels": lambda b, w, w2: keltner_channels(b[1], b[2], b[3], w, w2, 2.0),
    "donchian_channels": lambda b, w, _: donchian_channels(b[1], b[2], w),
    "close_to_close_volatility": lambda b, w, _: (close_to_close_volatility(b[3], max(w, 2)),),
    "parkinson_volatility": lambda b, w, _: (parkinson_volatility(b[1], b[2], w),),
    "garman_klass_volatility": lambda b, w, _: (garman_klass_volatility(*b[:4], w),),
}


@st.composite
def bars_windows_cut(draw: st.DrawFn) -> tuple[Bars, int, int, int]:
    n = draw(st.integers(1, 1500))
    seed = draw(st.integers(0, 2**32 - 1))
    bars = random_ohlcv(n, seed=seed, vol=draw(st.sampled_from([1e-4, 1e-2, 0.1])))
    if draw(st.booleans()):
        bars = tuple(np.round(x, 0) for x in bars)  # ties, flat bars, constant runs
    if draw(st.booleans()) and n > 3:
        rng = np.random.default_rng(seed)
        for x in bars:
            x[rng.integers(0, n, 2)] = np.nan
    window = draw(st.integers(1, 300))
    window2 = draw(st.integers(1, 300))
    cut = draw(st.integers(1, n))
    return bars, window, window2, cut


@pytest.mark.parametrize("name", sorted(KERNELS))
@settings(max_examples=40, deadline=None)
@given(case=bars_windows_cut())
def test_causal(name: str, case: tuple[Bars, int, int, int]) -> None:
    bars, window, window2, cut = case
    kernel = KERNELS[name]
    full = kernel(bars, window, window2)
    prefix = kernel(tuple(x[:cut].copy() for x in bars), window, window2)
    # f(x[:t])[-1] == f(x)[t-1], and in fact the whole prefix agrees bit for bit.
    for p, f in zip(prefix, full, strict=True):
        np.testing.assert_array_equal(p, f[:cut])


# --- numerical stability -------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-8, 1e8])
@pytest.mark.parametrize("window", [2, 20, 500])
def test_bollinger_stable_on_200k_bars(scale: float, window: int) -> None:
    close = random_ohlcv(200_000, seed=window, scale=scale, vol=0.001)[3]
    idx = np.unique(np.random.default_rng(0).integers(window - 1, close.size, 2000))
    idx = np.concatenate((idx, [close.size - 1]))
    views = sliding_window_view(close, window)[idx - window + 1]
    mean, std = views.mean(axis=1), views.std(axis=1)
    upper, middle, lower = bollinger_bands(close, window, 2.0, 1.0)
    np.testing.assert_allclose(middle[idx], mean, rtol=1e-12)
    np.testing.assert_allclose((upper - middle)[idx] / 2.0, std, rtol=1e-8)
    np.testing.assert_allclose((middle - lower)[idx], std, rtol=1e-8)
    percent_b, bandwidth = bollinger_percent_b_bandwidth(close, window, 2.0, 1.0)
    np.testing.assert_allclose(percent_b[idx], (close[idx] - mean + std) / (3 * std), atol=1e-8)
    np.testing.assert_allclose(bandwidth[idx], 3 * std / mean, rtol=1e-8)


PRICE_VALUED: dict[str, Kernel] = {
    "bollinger_bands": KERNELS["bollinger_bands"],
    "atr": KERNELS["atr"],
    "keltner_channels": KERNELS["keltner_channels"],
    "donchian_channels": KERNELS["donchian_channels"],
}


@pytest.mark.parametrize("scale", [1e-8, 1e8])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_scale(name: str, scale: float) -> None:
    """Price-valued outputs scale linearly; %b, NATR and vol estimates do not move."""
    bars = random_ohlcv(20_000, seed=5)
    scaled = (*(x * scale for x in bars[:4]), bars[4])
    base = KERNELS[name](bars, 20, 10)
    factor = scale if name in PRICE_VALUED else 1.0
    for s, b in zip(KERNELS[name](scaled, 20, 10), base, strict=True):
        np.testing.assert_allclose(s / factor, b, rtol=1e-9, atol=1e-12, equal_nan=True)
    # Scaling by a power of two is exact in binary, so results scale bit for bit.
    exponent = int(np.log2(scale))
    binary = (*(np.ldexp(x, exponent) for x in bars[:4]), bars[4])
    factor_exponent = exponent if name in PRICE_VALUED else 0
    for s, b in zip(KERNELS[name](binary, 20, 10), base, strict=True):
        np.testing.assert_array_equal(s, np.ldexp(b, factor_exponent))


# --- parallel blocks ---------------------------------------------------------------------
# The windowed kernels run blocks of ~65k bars in parallel; each block rebuilds the serial
# loop's state from the bars before it. These compare them with one serial pass over all bars,
# bit for bit, on series whose NaNs, flat runs and jumps straddle the block seams.


def _interval(w: int) -> int:
    return 1 if w <= DIRECT_MAX_WINDOW else max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)


def _seamed_bars(w: int, block: int, offset: int, seed: int) -> tuple[Bars, list[int]]:
    """OHLCV over 3 blocks and a bit, with NaNs, flat runs and x1e6 jumps at the seams."""
    seams = [offset + k * block for k in (1, 2, 3)]
    bars = random_ohlcv(seams[-1] + 3 * w + 5, seed=seed)
    for x in bars:
        x[seams[0] - 1] = np.nan  # the bar before the first seam
        x[seams[1] - w // 2 : seams[1] + w + 1] = x[seams[1] - w // 2 - 1]  # flat over seam 2
        x[seams[2] :] *= 1e6  # a jump at seam 3
    return bars, seams


def _serial_reference(name: str, bars: Bars, w: int) -> tuple[np.ndarray, ...]:
    """One serial pass of the kernel's range function over every bar."""
    close = bars[3]
    n = close.shape[0]
    outs = tuple(np.empty(n) for _ in range(3))
    if name in ("bollinger_bands", "bollinger_percent_b_bandwidth"):
        mode = _MODE_BANDS if name == "bollinger_bands" else _MODE_PERCENT_B
        b_out = outs[1] if mode == _MODE_PERCENT_B else outs[2]
        _bollinger_range(close, w, 2.0, 1.0, mode, outs[0], outs[1], b_out, 0, n)
        return outs if mode == _MODE_BANDS else outs[:2]
    if name == "donchian_channels":
        for out in outs:
            out[: w - 1] = np.nan
        _donchian_range(bars[1], bars[2], w, *outs, w - 1, n)
        return outs
    kind, args = {
        "close_to_close_volatility": (_KIND_CLOSE_TO_CLOSE, (close,) * 4),
        "parkinson_volatility": (_KIND_PARKINSON, (bars[1], bars[2], bars[1], bars[2])),
        "garman_klass_volatility": (_KIND_GARMAN_KLASS, bars[:4]),
    }[name]
    _realised_vol_range(kind, *args, w, outs[0], 0, n)
    return outs[:1]


BLOCK_KERNELS = (
    "bollinger_bands",
    "bollinger_percent_b_bandwidth",
    "donchian_channels",
    "close_to_close_volatility",
    "parkinson_volatility",
    "garman_klass_volatility",
)


@pytest.mark.parametrize("w", [3, 20, 300])
@pytest.mark.parametrize("name", BLOCK_KERNELS)
def test_parallel_blocks_equal_one_serial_pass(name: str, w: int) -> None:
    if name == "donchian_channels":
        block, offset = _block_bars(DONCHIAN_CHUNK_BARS, 2 * w), w - 1
    else:
        block, offset = _block_bars(_interval(w), 2 * w), 0
    bars, seams = _seamed_bars(w, block, offset, seed=w)
    parallel = KERNELS[name](bars, w, w)
    serial = _serial_reference(name, bars, w)
    for p, s in zip(parallel, serial, strict=True):
        np.testing.assert_array_equal(p, s)
        assert np.isfinite(p[seams[0] + w : seams[1] - w]).all()  # the seam NaN has left
    for t in (seams[1] - 1, seams[1], seams[1] + 1, seams[2], seams[2] + 1):
        prefix = KERNELS[name](tuple(x[:t].copy() for x in bars), w, w)
        for p, f in zip(prefix, parallel, strict=True):
            np.testing.assert_array_equal(p, f[:t])


@pytest.mark.parametrize("name", BLOCK_KERNELS)
def test_aliased_output_runs_serially(name: str) -> None:
    """An output written over its input gives what a separate output gives."""
    bars = random_ohlcv(3 * PARALLEL_BLOCK_BARS, seed=11)
    expected = KERNELS[name](bars, 20, 20)[0]
    col = {"donchian_channels": 1, "parkinson_volatility": 1}.get(name, 3)
    aliased = tuple(x.copy() for x in bars)
    if name == "bollinger_bands":
        got = bollinger_bands(aliased[3], 20, 2.0, 1.0, aliased[3])[0]
    elif name == "bollinger_percent_b_bandwidth":
        got = bollinger_percent_b_bandwidth(aliased[3], 20, 2.0, 1.0, aliased[3])[0]
    elif name == "donchian_channels":
        got = donchian_channels(aliased[1], aliased[2], 20, aliased[1])[0]
    elif name == "close_to_close_volatility":
        got = close_to_close_volatility(aliased[3], 20, aliased[3])
    elif name == "parkinson_volatility":
        got = parkinson_volatility(aliased[1], aliased[2], 20, aliased[1])
    else:
        got = garman_klass_volatility(*aliased[:4], 20, aliased[3])
    assert got is aliased[col]
    np.testing.assert_array_equal(got, expected)
