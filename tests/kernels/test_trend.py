"""kernels.trend against TA-Lib / pandas / brute force, causality, NaN policy, stability.

Fixtures are seeded random-walk OHLC bars built in this file (no external data).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import config, get_num_threads, set_num_threads

from kernels._windows import ICHIMOKU_CHUNK_BARS, _aroon_range, _ichimoku_range
from kernels.rolling import _block_bars, ema, rolling_mean
from kernels.trend import (
    ICHIMOKU_DISPLACEMENT_BARS,
    RECOMPUTE_MIN_BARS,
    RECOMPUTE_WINDOWS,
    _sliding_range,
    adx,
    aroon,
    aroon_oscillator,
    dema,
    ichimoku,
    kama,
    macd,
    macd_ema_seed,
    parabolic_sar,
    sma,
    tema,
    trix,
    wma,
)

N = 3000
RTOL = 1e-9
# Absolute floor for oscillators that cross zero: TA-Lib's TRIX is (e3 / e3_prev - 1) * 100,
# which carries ~1e-14 of cancellation error; price-valued outputs need no floor.
ATOL_OSCILLATOR = 1e-11


def ohlc(
    n: int, *, seed: int, scale: float = 100.0, vol: float = 0.01
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, close) of a geometric random walk; open is the previous close."""
    rng = np.random.default_rng(seed)
    close = scale * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    opened = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(opened, close) * np.exp(np.abs(rng.normal(0.0, vol / 2, n)))
    low = np.minimum(opened, close) * np.exp(-np.abs(rng.normal(0.0, vol / 2, n)))
    return high, low, close


def assert_matches(
    actual: np.ndarray, expected: np.ndarray, *, rtol: float = RTOL, atol: float = 0.0
) -> None:
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def assert_nan_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_array_equal(actual, expected)  # NaN == NaN in assert_array_equal


# --- against TA-Lib ------------------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 2, 3, 5, 14, 20, 50, 200])
def test_sma_wma_match_talib(window: int) -> None:
    _, _, close = ohlc(N, seed=window)
    assert_matches(sma(close, window), talib.SMA(close, window))
    assert_matches(wma(close, window), talib.WMA(close, window))
    assert_matches(sma(close, window), rolling_mean(close, window), rtol=1e-12)


@pytest.mark.parametrize("span", [1, 2, 3, 5, 14, 30, 100])
def test_ema_chains_match_talib(span: int) -> None:
    _, _, close = ohlc(N, seed=span)
    assert_matches(dema(close, span), talib.DEMA(close, span))
    assert_matches(tema(close, span), talib.TEMA(close, span))
    assert_matches(trix(close, span), talib.TRIX(close, span), atol=ATOL_OSCILLATOR)


@pytest.mark.parametrize("window", [2, 3, 5, 10, 14, 30, 100])
def test_kama_matches_talib(window: int) -> None:
    _, _, close = ohlc(N, seed=window)
    assert_matches(kama(close, window), talib.KAMA(close, window))


MACD_GRID = [(12, 26, 9), (2, 3, 1), (5, 5, 5), (3, 50, 20), (8, 17, 9)]


@pytest.mark.parametrize(("fast", "slow", "signal"), MACD_GRID)
def test_macd_matches_talib_from_first_output(fast: int, slow: int, signal: int) -> None:
    _, _, close = ohlc(N, seed=fast * slow)
    expected = talib.MACD(close, fast, slow, signal)
    for actual, reference in zip(macd(close, fast, slow, signal), expected, strict=True):
        assert_matches(actual, reference, atol=1e-12)


@pytest.mark.parametrize(("fast", "slow", "signal"), [*MACD_GRID, (1, 10, 3)])
def test_macd_ema_seed_is_difference_of_emas(fast: int, slow: int, signal: int) -> None:
    _, _, close = ohlc(N, seed=fast * slow)
    line, sig, hist = macd_ema_seed(close, fast, slow, signal)
    full_line = ema(close, fast) - ema(close, slow)
    first = slow + signal - 2  # TA-Lib's output positions, kept for both conventions
    expected_line = full_line.copy()
    expected_line[:first] = np.nan
    expected_signal = ema(full_line, signal)
    assert_matches(line, expected_line, atol=1e-12)
    assert_matches(sig, expected_signal, atol=1e-12)
    assert_matches(hist, expected_line - expected_signal, atol=1e-12)
    # The two conventions differ only by the fast EMA's seed, whose effect decays
    # geometrically: they agree to 1e-12 (of price) once a few hundred bars have passed.
    talib_line = macd(close, fast, slow, signal)[0]
    settled = slice(first + 40 * (fast + 1), None)
    np.testing.assert_allclose(line[settled], talib_line[settled], rtol=0, atol=1e-12)


@pytest.mark.parametrize("window", [2, 3, 5, 14, 30, 100])
def test_adx_matches_talib(window: int) -> None:
    high, low, close = ohlc(N, seed=window)
    adx_, plus_di, minus_di = adx(high, low, close, window)
    assert_matches(adx_, talib.ADX(high, low, close, window))
    assert_matches(plus_di, talib.PLUS_DI(high, low, close, window))
    assert_matches(minus_di, talib.MINUS_DI(high, low, close, window))


@pytest.mark.parametrize("window", [1, 2, 3, 5, 14, 25, 100])
def test_aroon_matches_talib(window: int) -> None:
    high, low, _ = ohlc(N, seed=window)
    # Rounded prices create ties, where TA-Lib picks the latest extreme.
    high = np.round(high, 0)
    low = np.round(low, 0)
    down, up = aroon(high, low, window)
    osc = aroon_oscillator(high, low, window)
    if window < 2:  # TA-Lib rejects a 1-bar Aroon; check against a brute force instead
        for t in range(1, N):
            assert up[t] == (100.0 if high[t] >= high[t - 1] else 0.0)
            assert down[t] == (100.0 if low[t] <= low[t - 1] else 0.0)
        return
    expected_down, expected_up = talib.AROON(high, low, window)
    assert_matches(down, expected_down)
    assert_matches(up, expected_up)
    assert_matches(osc, talib.AROONOSC(high, low, window), atol=1e-12)


@pytest.mark.parametrize(
    ("acceleration", "maximum"), [(0.02, 0.2), (0.01, 0.1), (0.1, 0.05), (0.05, 0.5), (0.2, 0.2)]
)
def test_parabolic_sar_matches_talib(acceleration: float, maximum: float) -> None:
    high, low, _ = ohlc(N, seed=int(acceleration * 100))
    assert_matches(
        parabolic_sar(high, low, acceleration, maximum), talib.SAR(high, low, acceleration, maximum)
    )


def test_leading_nans_are_skipped_like_talib() -> None:
    high, low, close = ohlc(800, seed=11)
    close[:5] = np.nan
    high[:7] = np.nan  # multi-input kernels start where every input is finite
    low[:3] = np.nan
    cases = [
        (sma(close, 10), talib.SMA(close, 10)),
        (wma(close, 10), talib.WMA(close, 10)),
        (dema(close, 10), talib.DEMA(close, 10)),
        (tema(close, 10), talib.TEMA(close, 10)),
        (trix(close, 10), talib.TRIX(close, 10)),
        (kama(close, 10), talib.KAMA(close, 10)),
        (parabolic_sar(high, low, 0.02, 0.2), talib.SAR(high, low, 0.02, 0.2)),
        (aroon_oscillator(high, low, 10), talib.AROONOSC(high, low, 10)),
    ]
    cases += list(zip(macd(close, 12, 26, 9), talib.MACD(close, 12, 26, 9), strict=True))
    cases += list(zip(aroon(high, low, 10), talib.AROON(high, low, 10), strict=True))
    references = (talib.ADX, talib.PLUS_DI, talib.MINUS_DI)
    cases += [
        (a, ref(high, low, close, 10))
        for a, ref in zip(adx(high, low, close, 10), references, strict=True)
    ]
    for actual, expected in cases:
        assert_matches(actual, expected, atol=ATOL_OSCILLATOR)


# --- Ichimoku against pandas ---------------------------------------------------------------


def pandas_ichimoku(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, k1: int, k2: int, k3: int
) -> list[np.ndarray]:
    h = pd.Series(high)
    lo = pd.Series(low)

    def midpoint(k: int) -> pd.Series:
        return (h.rolling(k).max() + lo.rolling(k).min()) / 2

    conversion = midpoint(k1)
    base = midpoint(k2)
    span_a = (conversion + base) / 2
    return [x.to_numpy() for x in (conversion, base, span_a, midpoint(k3))] + [close]


@pytest.mark.parametrize(("k1", "k2", "k3"), [(9, 26, 52), (7, 22, 44), (1, 2, 3), (20, 60, 120)])
def test_ichimoku_matches_pandas(k1: int, k2: int, k3: int) -> None:
    high, low, close = ohlc(N, seed=k1)
    high[[40, 41, 900]] = np.nan  # NaN windows give NaN and recover, as in pandas
    low[[1500, 2990]] = np.nan
    close[7] = np.nan
    actual = ichimoku(high, low, close, k1, k2, k3)
    for got, expected in zip(actual, pandas_ichimoku(high, low, close, k1, k2, k3), strict=True):
        assert_nan_equal(got, expected)  # same operations, so bit for bit
    clean_high, clean_low, _ = ohlc(N, seed=k1)
    if k1 > 1:
        conversion = ichimoku(clean_high, clean_low, close, k1, k2, k3)[0]
        assert_matches(conversion, talib.MIDPRICE(clean_high, clean_low, k1))


def test_ichimoku_displacement_convention() -> None:
    high, low, close = ohlc(500, seed=3)
    conversion, base, span_a, span_b, lagging = ichimoku(high, low, close, 9, 26, 52)
    d = ICHIMOKU_DISPLACEMENT_BARS
    # Spans are stored at the bar that computed them; a chart draws them d bars ahead, so the
    # cloud in force at bar t is span_a[t - d] -- pandas' usual span_a.shift(26).
    chart_span_a = pd.Series((conversion + base) / 2).shift(d).to_numpy()
    assert_nan_equal(np.concatenate((np.full(d, np.nan), span_a[:-d])), chart_span_a)
    assert np.isnan(span_b[:51]).all() and not np.isnan(span_b[51:]).any()
    # The chart's lagging span is close.shift(-26) (it reads 26 bars of future). The kernel
    # stores each point at the bar where it becomes known: lagging[t] = close[t], to be
    # compared with prices at t - d.
    chart_lagging = pd.Series(close).shift(-d).to_numpy()
    assert_nan_equal(lagging, close)
    assert_nan_equal(lagging[d:], chart_lagging[:-d])


# --- NaN policy ----------------------------------------------------------------------------

RECURSIVE = {
    "dema": lambda h, lo, c: (dema(c, 10),),
    "tema": lambda h, lo, c: (tema(c, 10),),
    "trix": lambda h, lo, c: (trix(c, 10),),
    "kama": lambda h, lo, c: (kama(c, 10),),
    "macd": lambda h, lo, c: macd(c, 12, 26, 9),
    "macd_ema_seed": lambda h, lo, c: macd_ema_seed(c, 12, 26, 9),
    "adx": lambda h, lo, c: adx(h, lo, c, 10),
    "parabolic_sar": lambda h, lo, c: (parabolic_sar(h, lo, 0.02, 0.2),),
}


@pytest.mark.parametrize("name", sorted(RECURSIVE))
@pytest.mark.parametrize("column", [0, 1, 2])
def test_recursive_kernels_go_nan_after_a_missing_value(name: str, column: int) -> None:
    bars = list(ohlc(400, seed=5))
    clean = RECURSIVE[name](*bars)
    bars[column] = bars[column].copy()
    bars[column][200] = np.nan
    uses_close = name not in ("parabolic_sar",)
    uses_high_low = name in ("adx", "parabolic_sar")
    affected = (column == 2 and uses_close) or (column < 2 and uses_high_low)
    for before, after in zip(clean, RECURSIVE[name](*bars), strict=True):
        assert_nan_equal(after[:200], before[:200])
        if affected:
            assert np.isnan(after[200:]).all()
        else:
            assert_nan_equal(after, before)


def test_window_kernels_recover_after_a_missing_value() -> None:
    high, low, close = ohlc(600, seed=6)
    close[100] = np.nan
    high[300] = np.nan
    s = pd.Series(close)
    assert_matches(sma(close, 10), s.rolling(10).mean().to_numpy(), rtol=1e-12)
    weights = np.arange(1.0, 11.0)
    brute_wma = s.rolling(10).apply(lambda v: v @ weights / weights.sum(), raw=True)
    assert_matches(wma(close, 10), brute_wma.to_numpy(), rtol=1e-12)
    down, up = aroon(high, low, 10)
    osc = aroon_oscillator(high, low, 10)
    nan_bars = np.arange(300, 311)  # windows of 11 bars that hold bar 300
    for out in (down, up, osc):
        assert np.isnan(out[nan_bars]).all()
        assert not np.isnan(out[10:300]).any() and not np.isnan(out[311:]).any()
    # After recovery the values equal those of a series that never had the NaN window.
    fresh_down, fresh_up = aroon(high[301:], low[301:], 10)
    assert_nan_equal(up[311:], fresh_up[10:])
    assert_nan_equal(down[311:], fresh_down[10:])


# --- causality -----------------------------------------------------------------------------

Kernel = Callable[[np.ndarray, np.ndarray, np.ndarray, int], tuple[np.ndarray, ...]]
KERNELS: dict[str, Kernel] = {
    "sma": lambda h, lo, c, k: (sma(c, k),),
    "wma": lambda h, lo, c, k: (wma(c, k),),
    "dema": lambda h, lo, c, k: (dema(c, k),),
    "tema": lambda h, lo, c, k: (tema(c, k),),
    "trix": lambda h, lo, c, k: (trix(c, k),),
    "kama": lambda h, lo, c, k: (kama(c, k + 1),),
    "macd": lambda h, lo, c, k: macd(c, k, 2 * k + 1, k // 2 + 1),
    "macd_ema_seed": lambda h, lo, c, k: macd_ema_seed(c, k, 2 * k + 1, k // 2 + 1),
    "adx": lambda h, lo, c, k: adx(h, lo, c, k + 1),
    "aroon": lambda h, lo, c, k: aroon(h, lo, k),
    "aroon_oscillator": lambda h, lo, c, k: (aroon_oscillator(h, lo, k),),
    "ichimoku": lambda h, lo, c, k: ichimoku(h, lo, c, k, 2 * k + 1, 3 * k),
    "parabolic_sar": lambda h, lo, c, k: (parabolic_sar(h, lo, 0.01 * k, 0.2),),
}


@st.composite
def bars_param_cut(draw: st.DrawFn) -> tuple[list[np.ndarray], int, int]:
    n = draw(st.integers(1, 700))
    seed = draw(st.integers(0, 2**32 - 1))
    bars = list(ohlc(n, seed=seed, vol=draw(st.sampled_from([1e-4, 1e-2, 0.1]))))
    if draw(st.booleans()):
        bars = [np.round(x, 0) for x in bars]  # ties, flat stretches, zero ranges
    if draw(st.booleans()) and n > 3:
        rng = np.random.default_rng(seed)
        for x in bars:
            x[rng.integers(0, n, 2)] = np.nan
    k = draw(st.integers(1, 60))
    cut = draw(st.integers(1, n))
    return bars, k, cut


@pytest.mark.parametrize("name", sorted(KERNELS))
@settings(max_examples=40, deadline=None)
@given(case=bars_param_cut())
def test_causal(name: str, case: tuple[list[np.ndarray], int, int]) -> None:
    bars, k, cut = case
    full = KERNELS[name](*bars, k)
    prefix = KERNELS[name](*[x[:cut].copy() for x in bars], k)
    # f(x[:t])[-1] == f(x)[t-1]; in fact the whole prefix agrees bit for bit.
    for p, f in zip(prefix, full, strict=True):
        assert_nan_equal(p, f[:cut])


# --- numerical stability -------------------------------------------------------------------

# Outputs that are prices scale with the input; the rest (percentages, bar counts) do not.
PRICE_VALUED: dict[str, Kernel] = {
    "sma": lambda h, lo, c, k: (sma(c, k),),
    "wma": lambda h, lo, c, k: (wma(c, k),),
    "dema": lambda h, lo, c, k: (dema(c, k),),
    "tema": lambda h, lo, c, k: (tema(c, k),),
    "kama": lambda h, lo, c, k: (kama(c, k),),
    "macd": lambda h, lo, c, k: macd(c, 12, 26, 9),
    "macd_ema_seed": lambda h, lo, c, k: macd_ema_seed(c, 12, 26, 9),
    "ichimoku": lambda h, lo, c, k: ichimoku(h, lo, c, 9, 26, 52),
    "parabolic_sar": lambda h, lo, c, k: (parabolic_sar(h, lo, 0.02, 0.2),),
}
SCALE_FREE: dict[str, Kernel] = {
    "trix": lambda h, lo, c, k: (trix(c, k),),
    "adx": lambda h, lo, c, k: adx(h, lo, c, k),
    "aroon": lambda h, lo, c, k: aroon(h, lo, k),
    "aroon_oscillator": lambda h, lo, c, k: (aroon_oscillator(h, lo, k),),
}


@pytest.mark.parametrize("scale", [1e-8, 1e8])
@pytest.mark.parametrize("name", sorted(PRICE_VALUED) + sorted(SCALE_FREE))
def test_scale_stability(name: str, scale: float) -> None:
    bars = ohlc(20_000, seed=8)
    kernel = PRICE_VALUED.get(name) or SCALE_FREE[name]
    factor = scale if name in PRICE_VALUED else 1.0
    base = kernel(*bars, 14)
    scaled = kernel(*[x * scale for x in bars], 14)
    # MACD is a difference of prices and crosses zero: floor its error at 1e-9 of the price
    # level. The other price-valued outputs need no floor; scale-free ones get the usual one.
    if name in PRICE_VALUED:
        atol = 1e-9 * 100.0 * scale if name.startswith("macd") else 0.0
    else:
        atol = ATOL_OSCILLATOR
    for b, s in zip(base, scaled, strict=True):
        assert_matches(s, b * factor, rtol=1e-9, atol=atol)
    # A power of two scales every intermediate exactly, so results scale bit for bit.
    exponent = int(np.round(np.log2(scale)))
    exact = kernel(*[np.ldexp(x, exponent) for x in bars], 14)
    for b, s in zip(base, exact, strict=True):
        assert_nan_equal(s, np.ldexp(b, exponent) if name in PRICE_VALUED else b)


@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_matches_talib_at_extreme_price_scales(scale: float) -> None:
    # Zero tests are exact, so nothing degenerates on tiny prices (TA-Lib 0.4's fixed 1e-8
    # zero band made its DIs 0 there; the TA-Lib installed here agrees with us).
    high, low, close = (x * scale for x in ohlc(2000, seed=9))
    cases = [
        (sma(close, 14), talib.SMA(close, 14)),
        (wma(close, 14), talib.WMA(close, 14)),
        (dema(close, 14), talib.DEMA(close, 14)),
        (tema(close, 14), talib.TEMA(close, 14)),
        (trix(close, 14), talib.TRIX(close, 14)),
        (kama(close, 14), talib.KAMA(close, 14)),
        (parabolic_sar(high, low, 0.02, 0.2), talib.SAR(high, low, 0.02, 0.2)),
        (aroon_oscillator(high, low, 14), talib.AROONOSC(high, low, 14)),
    ]
    cases += list(
        zip(
            adx(high, low, close, 14),
            (
                talib.ADX(high, low, close, 14),
                talib.PLUS_DI(high, low, close, 14),
                talib.MINUS_DI(high, low, close, 14),
            ),
            strict=True,
        )
    )
    for actual, expected in cases:
        assert_matches(actual, expected, atol=ATOL_OSCILLATOR)
    for actual, expected in zip(macd(close, 12, 26, 9), talib.MACD(close, 12, 26, 9), strict=True):
        assert_matches(actual, expected, atol=1e-12 * scale)


@pytest.mark.parametrize("scale", [1e-8, 1e8])
@pytest.mark.parametrize("window", [2, 20, 300])
def test_running_sums_hold_on_long_series(scale: float, window: int) -> None:
    _, _, close = ohlc(300_000, seed=window, scale=scale, vol=0.002)
    idx = np.unique(np.random.default_rng(0).integers(window - 1, close.size, 500))
    idx = np.concatenate((idx, [close.size - 1]))
    views = np.lib.stride_tricks.sliding_window_view(close, window)[idx - window + 1]
    weights = np.arange(1.0, window + 1.0)
    np.testing.assert_allclose(sma(close, window)[idx], views.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(wma(close, window)[idx], views @ weights / weights.sum(), rtol=1e-12)


# --- parallel blocks -----------------------------------------------------------------------


def seam_bars(n: int, seams: np.ndarray, windows: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """(high, low, close) rounded to ties, with a flat run and a spike across every block seam,
    and a NaN (in every column) at one offset per seam: before, at or after the bar where a
    window starts to hold it or where a scheduled restart owes something to the bar before."""
    bars = [np.round(x, 1) for x in ohlc(n, seed=seed)]
    offsets: list[int | None] = [None, -1, 0]
    for w in windows:
        offsets += [-w - 1, -w, -w + 1]
    for i, s in enumerate(seams):
        for x in bars:
            x[s - 4 : s + 3] = x[s - 4]  # ties across the seam
        bars[0][s - 2 - i % 3] *= 1.05  # extremes in the block before the seam
        bars[1][s - 1 - i % 2] *= 0.95
        off = offsets[i % len(offsets)]
        if off is not None:
            for x in bars:
                x[s + off] = np.nan
    return bars


def _serial_aroon(h: np.ndarray, lo: np.ndarray, c: np.ndarray, w: int) -> tuple[np.ndarray, ...]:
    down, up = np.empty_like(h), np.empty_like(h)
    _aroon_range(h, lo, w, False, down, up, down, 0, h.shape[0])
    return down, up


def _serial_aroon_oscillator(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray, w: int
) -> tuple[np.ndarray, ...]:
    res = np.empty_like(h)
    _aroon_range(h, lo, w, True, res, res, res, 0, h.shape[0])
    return (res,)


def _serial_ichimoku(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray, w: int
) -> tuple[np.ndarray, ...]:
    outs = tuple(np.empty_like(h) for _ in range(5))
    _ichimoku_range(h, lo, c, (w, 2 * w + 1, 3 * w), outs, 0, h.shape[0])
    return outs


def _serial_average(weighted: bool) -> Kernel:
    def run(h: np.ndarray, lo: np.ndarray, c: np.ndarray, w: int) -> tuple[np.ndarray, ...]:
        res = np.empty_like(c)
        _sliding_range(c, w, weighted, res, 0, c.shape[0])
        return (res,)

    return run


def _recompute_block(w: int) -> int:
    return _block_bars(max(RECOMPUTE_MIN_BARS, RECOMPUTE_WINDOWS * w), 2 * w)


# name: (parallel kernel, its serial range function over (0, n), block bars, windows of k)
BLOCKED: dict[str, tuple[Kernel, Kernel, Callable[[int], int], Callable[[int], tuple[int, ...]]]]
BLOCKED = {
    "aroon": (
        KERNELS["aroon"],
        _serial_aroon,
        lambda k: _block_bars(k + 1, 2 * (k + 1)),
        lambda k: (k,),
    ),
    "aroon_oscillator": (
        KERNELS["aroon_oscillator"],
        _serial_aroon_oscillator,
        lambda k: _block_bars(k + 1, 2 * (k + 1)),
        lambda k: (k,),
    ),
    "ichimoku": (
        KERNELS["ichimoku"],
        _serial_ichimoku,
        lambda k: _block_bars(ICHIMOKU_CHUNK_BARS, 6 * k),
        lambda k: (k, 2 * k + 1, 3 * k),
    ),
    "sma": (KERNELS["sma"], _serial_average(False), _recompute_block, lambda k: (k,)),
    "wma": (KERNELS["wma"], _serial_average(True), _recompute_block, lambda k: (k,)),
}


@pytest.mark.parametrize("k", [1, 9])
@pytest.mark.parametrize("name", sorted(BLOCKED))
def test_parallel_blocks_match_the_serial_pass(name: str, k: int) -> None:
    # Blocks run in parallel, each rebuilding the serial loop's state at its first bar: the
    # output must be bit for bit the serial pass's, at any thread count, and stay causal at
    # the seams (a prefix ending at, before or after a seam agrees with the serial pass).
    kernel, serial, block_of, windows = BLOCKED[name]
    block = block_of(k)
    count = 3 * len(windows(k)) + 3
    n = (count + 1) * block + block // 3
    seams = np.arange(1, count + 1) * block
    bars = seam_bars(n, seams, windows(k), seed=k)
    expected = serial(*bars, k)
    threads = get_num_threads()
    try:
        for t in range(1, config.NUMBA_NUM_THREADS + 1):
            set_num_threads(t)
            for got, want in zip(kernel(*bars, k), expected, strict=True):
                assert_nan_equal(got, want)
    finally:
        set_num_threads(threads)
    for s in seams:
        for cut in (s - 1, s, s + 1):
            prefix = kernel(*[x[:cut].copy() for x in bars], k)
            for p, want in zip(prefix, expected, strict=True):
                assert_nan_equal(p[-1:], want[cut - 1 : cut])


def test_aliased_outputs_run_the_serial_pass() -> None:
    # An output overlapping an input runs serially over the whole series (a block would read
    # bars the block before it may have overwritten).
    n = 3 * _recompute_block(5)
    high, low, close = seam_bars(n, np.array([n // 3, 2 * n // 3]), (), seed=3)
    for weighted, kernel in ((False, sma), (True, wma)):
        x = close.copy()
        expected = x.copy()
        _sliding_range(expected, 5, weighted, expected, 0, n)
        assert_nan_equal(kernel(x, 5, x), expected)
    h = high.copy()
    expected = high.copy()
    _aroon_range(expected, low, 5, True, expected, expected, expected, 0, n)
    assert_nan_equal(aroon_oscillator(h, low, 5, h), expected)


# --- API -----------------------------------------------------------------------------------


def test_out_arguments_are_filled_and_returned() -> None:
    high, low, close = ohlc(1500, seed=4)
    single = [
        (sma, (close, 20)),
        (wma, (close, 20)),
        (dema, (close, 20)),
        (tema, (close, 20)),
        (trix, (close, 20)),
        (kama, (close, 20)),
        (aroon_oscillator, (high, low, 20)),
        (parabolic_sar, (high, low, 0.02, 0.2)),
    ]
    for kernel, args in single:
        out = np.full_like(close, 123.0)
        assert kernel(*args, out) is out
        assert_nan_equal(out, kernel(*args))
    multi = [
        (macd, (close, 12, 26, 9), 3),
        (macd_ema_seed, (close, 12, 26, 9), 3),
        (adx, (high, low, close, 14), 3),
        (aroon, (high, low, 14), 2),
        (ichimoku, (high, low, close, 9, 26, 52), 5),
    ]
    for kernel, args, count in multi:
        outs = [np.full_like(close, 123.0) for _ in range(count)]
        result = kernel(*args, *outs)
        for got, out, fresh in zip(result, outs, kernel(*args), strict=True):
            assert got is out
            assert_nan_equal(out, fresh)


def test_short_input_is_all_nan_and_bad_parameters_raise() -> None:
    high, low, close = ohlc(5, seed=0)
    outputs = [sma(close, 6), wma(close, 6), dema(close, 4), tema(close, 3), trix(close, 3)]
    outputs += [kama(close, 5), *macd(close, 3, 4, 3), *adx(high, low, close, 5)]
    outputs += [*aroon(high, low, 5), aroon_oscillator(high, low, 5)]
    outputs += [parabolic_sar(high[:1], low[:1], 0.02, 0.2)]
    for result in outputs:
        assert np.isnan(result).all()
    with pytest.raises(ValueError, match="window_bars"):
        kama(close, 1)
    with pytest.raises(ValueError, match="window_bars"):
        adx(high, low, close, 1)
    with pytest.raises(ValueError, match="slow_bars"):
        macd(close, 5, 3, 2)
    with pytest.raises(ValueError, match="span_bars"):
        trix(close, 0)
    with pytest.raises(ValueError, match="acceleration"):
        parabolic_sar(high, low, -0.1, 0.2)
