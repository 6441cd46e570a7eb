"""kernels.momentum against TA-Lib, NaN policy, causality and scale invariance.

Fixtures are seeded geometric random walks built in this file (no external data).
"""

from __future__ import annotations

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from kernels._momentum_blocks import _cci_range, _mfi_range, _smooth_interval, _stoch_range
from kernels.momentum import (
    MFI_CHUNK_BARS,
    _willr_range,
    cci,
    fast_stochastic,
    mfi,
    momentum,
    roc,
    rsi,
    stochastic,
    stochastic_rsi,
    williams_r,
)
from kernels.rolling import _block_bars


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


# --- stochastics, Williams %R, CCI, MFI, ROC, momentum -------------------------------------
#
# OSC_ATOL is the absolute floor for oscillators bounded by +-100 (1e-9 of their range).
OSC_ATOL = 1e-7


def ohlcv(
    n: int, *, seed: int, scale: float = 100.0, rounded: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random-walk bars: high >= max(open, close), low <= min(open, close), volume > 0.

    ``rounded`` rounds prices to whole units (of ``scale / 100``): flat stretches, ties and
    zero ranges.
    """
    rng = np.random.default_rng([seed, 1])  # a stream apart from the walk's own
    close = random_walk(n, seed=seed, scale=scale)
    open_ = np.concatenate((close[:1], close[:-1]))
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.004, n)))
    volume = rng.lognormal(8.0, 1.0, n)
    if rounded:
        unit = scale / 100.0
        high, low, close = (np.round(a / unit) * unit for a in (high, low, close))
    return high, low, close, volume


def check_against(actual: np.ndarray, expected: np.ndarray, *, atol: float = OSC_ATOL) -> None:
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=atol, equal_nan=True)


# Each kernel as f(high, low, close, volume, params) -> tuple of outputs, with its TA-Lib twin
# and its lookback (bars of NaN after the first valid bar). These drive the shared tests.
KERNELS = {
    "stochastic": (
        lambda h, lo, c, v, p: stochastic(h, lo, c, *p),
        lambda h, lo, c, v, p: talib.STOCH(h, lo, c, p[0], p[1], 0, p[2], 0),
        lambda p: p[0] + p[1] + p[2] - 3,
    ),
    "fast_stochastic": (
        lambda h, lo, c, v, p: fast_stochastic(h, lo, c, *p),
        lambda h, lo, c, v, p: talib.STOCHF(h, lo, c, p[0], p[1], 0),
        lambda p: p[0] + p[1] - 2,
    ),
    "stochastic_rsi": (
        lambda h, lo, c, v, p: stochastic_rsi(c, *p),
        lambda h, lo, c, v, p: talib.STOCHRSI(c, p[0], p[1], p[2], 0),
        lambda p: p[0] + p[1] + p[2] - 2,
    ),
    "williams_r": (
        lambda h, lo, c, v, p: (williams_r(h, lo, c, *p),),
        lambda h, lo, c, v, p: (talib.WILLR(h, lo, c, *p),),
        lambda p: p[0] - 1,
    ),
    "cci": (
        lambda h, lo, c, v, p: (cci(h, lo, c, *p),),
        lambda h, lo, c, v, p: (talib.CCI(h, lo, c, *p),),
        lambda p: p[0] - 1,
    ),
    "mfi": (
        lambda h, lo, c, v, p: (mfi(h, lo, c, v, *p),),
        lambda h, lo, c, v, p: (talib.MFI(h, lo, c, v, *p),),
        lambda p: p[0],
    ),
    "roc": (
        lambda h, lo, c, v, p: (roc(c, *p),),
        lambda h, lo, c, v, p: (talib.ROC(c, *p),),
        lambda p: p[0],
    ),
    "momentum": (
        lambda h, lo, c, v, p: (momentum(c, *p),),
        lambda h, lo, c, v, p: (talib.MOM(c, *p),),
        lambda p: p[0],
    ),
}

GRID = {
    "stochastic": [
        (fk, sk, sd) for fk in (1, 2, 5, 14, 50) for sk in (1, 3, 10) for sd in (1, 3, 7)
    ],
    "fast_stochastic": [(fk, fd) for fk in (1, 2, 5, 14, 50) for fd in (1, 2, 3, 10)],
    "stochastic_rsi": [
        (t, fk, fd) for t in (2, 14, 30) for fk in (1, 3, 5, 14) for fd in (1, 3, 6)
    ],
    "williams_r": [(w,) for w in (2, 3, 5, 14, 50, 200)],
    "cci": [(w,) for w in (2, 3, 4, 5, 14, 20, 50, 200)],
    "mfi": [(w,) for w in (2, 3, 5, 14, 50, 200)],
    "roc": [(w,) for w in (1, 2, 10, 100)],
    "momentum": [(w,) for w in (1, 2, 10, 100)],
}

# Kernels whose a NaN input restarts the warm-up (see the module docstring).
RESTARTING = ["stochastic", "fast_stochastic", "williams_r", "cci", "mfi"]
OSCILLATORS = [name for name in KERNELS if name != "momentum"]


def run(name: str, bars: tuple[np.ndarray, ...], params: tuple[int, ...]) -> tuple:
    return KERNELS[name][0](*bars, params)


def run_talib(name: str, bars: tuple[np.ndarray, ...], params: tuple[int, ...]) -> tuple:
    return tuple(KERNELS[name][1](*bars, params))


def atol_for(name: str, bars: tuple[np.ndarray, ...]) -> float:
    if name == "momentum":
        return 1e-9 * float(np.nanmax(bars[2]))  # a price difference: 1e-9 of the price
    return 1e-9 if name == "roc" else OSC_ATOL


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("rounded", [False, True])
def test_matches_talib_over_grid(name: str, rounded: bool) -> None:
    bars = ohlcv(3000, seed=len(name), rounded=rounded)
    for params in GRID[name]:
        expected = run_talib(name, bars, params)
        actual = run(name, bars, params)
        lookback = KERNELS[name][2](params)
        for a, e in zip(actual, expected, strict=True):
            assert np.isnan(a[:lookback]).all() and not np.isnan(a[lookback:]).any(), params
            check_against(a, e, atol=atol_for(name, bars))


@pytest.mark.parametrize("name", list(KERNELS))
def test_leading_nans_are_skipped_like_talib(name: str) -> None:
    high, low, close, volume = ohlcv(400, seed=5)
    high[:3] = np.nan  # TA-Lib starts at the first bar where every input is finite
    close[:6] = np.nan
    bars = (high, low, close, volume)
    params = GRID[name][len(GRID[name]) // 2]
    for a, e in zip(run(name, bars, params), run_talib(name, bars, params), strict=True):
        check_against(a, e, atol=atol_for(name, bars))


@pytest.mark.parametrize("name", RESTARTING)
@pytest.mark.parametrize("column", [0, 1, 2, 3])
def test_nan_restarts_the_warm_up(name: str, column: int) -> None:
    bars = ohlcv(600, seed=11)
    params = GRID[name][len(GRID[name]) // 2]
    lookback = KERNELS[name][2](params)
    k = 250
    holed = tuple(a.copy() for a in bars)
    holed[column][k] = np.nan
    actual = run(name, holed, params)
    after = tuple(a[k + 1 :].copy() for a in bars)
    uses_column = column in (0, 1, 2) or name == "mfi"
    for out, clean, fresh, ta_fresh in zip(
        actual,
        run(name, bars, params),
        run(name, after, params),
        run_talib(name, after, params),
        strict=True,
    ):
        np.testing.assert_array_equal(out[:k], clean[:k])  # causal: the past is untouched
        if not uses_column:
            np.testing.assert_array_equal(out, clean)
            continue
        # Bars k .. k + lookback see the NaN; from k + 1 on the output is a fresh call on the
        # bars after the NaN, bit for bit, and so TA-Lib's output on those bars.
        assert np.isnan(out[k : k + lookback + 1]).all()
        assert not np.isnan(out[k + lookback + 1 :]).any()
        np.testing.assert_array_equal(out[k + 1 :], fresh)
        check_against(out[k + 1 :], ta_fresh)


def test_talib_nan_handling_differs() -> None:
    """What TA-Lib 0.8 does with the same hole, for the record (the kernels restart instead)."""
    high, low, close, volume = ohlcv(300, seed=12)
    k = 150
    holed_high = high.copy()
    holed_high[k] = np.nan
    # WILLR and STOCH skip a NaN high silently: the window high is made up without it.
    assert not np.isnan(talib.WILLR(holed_high, low, close, 14)[k:]).any()
    assert np.isnan(williams_r(holed_high, low, close, 14)[k : k + 14]).all()
    holed_close = close.copy()
    holed_close[k] = np.nan
    # STOCH and MFI turn NaN for good; the kernels recover after the lookback.
    assert np.isnan(talib.STOCH(high, low, holed_close, 14, 3, 0, 3, 0)[0][k:]).all()
    assert not np.isnan(stochastic(high, low, holed_close, 14, 3, 3)[0][k + 20 :]).any()
    assert np.isnan(talib.MFI(high, low, holed_close, volume, 14)[k:]).all()
    assert not np.isnan(mfi(high, low, holed_close, volume, 14)[k + 15 :]).any()


def test_stochastic_rsi_nan_propagates_like_rsi() -> None:
    close = random_walk(300, seed=13)
    close[:3] = np.nan
    close[200] = np.nan
    r = rsi(close, 14)
    k, d = stochastic_rsi(close, 14, 5, 3)
    assert np.isnan(k[200:]).all() and np.isnan(d[200:]).all()
    assert not np.isnan(k[3 + 14 + 4 + 2 : 200]).any()
    # It is exactly the fast stochastic of the RSI, NaN rule included.
    fk, fd = fast_stochastic(r, r, r, 5, 3)
    np.testing.assert_array_equal(k, fk)
    np.testing.assert_array_equal(d, fd)
    # TA-Lib's RSI reads 0.0 after the NaN, so its STOCHRSI carries on with made-up values.
    assert not np.isnan(talib.STOCHRSI(close, 14, 5, 3, 0)[0][200:]).any()


@pytest.mark.parametrize("name", ["roc", "momentum"])
def test_roc_and_momentum_nan_touches_two_bars(name: str) -> None:
    close = random_walk(300, seed=14)
    close[:2] = np.nan
    close[150] = np.nan
    bars = (close, close, close, close)
    (actual,) = run(name, bars, (10,))
    assert np.isnan(actual).nonzero()[0].tolist() == [*range(12), 150, 160]
    check_against(actual, run_talib(name, bars, (10,))[0], atol=1e-9)


def test_zero_denominators_follow_talib() -> None:
    flat = np.full(60, 3.7)
    flat_bars = (flat, flat, flat, np.full(60, 5.0))
    for name in OSCILLATORS:
        params = GRID[name][1]
        lookback = KERNELS[name][2](params)
        actual = run(name, flat_bars, params)
        for a, e in zip(actual, run_talib(name, flat_bars, params), strict=True):
            assert (a[lookback:] == 0.0).all(), name
            np.testing.assert_array_equal(a, e)
    # A zero reference price: ROC 0, as TA-Lib.
    x = np.array([0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(roc(x, 1), talib.ROC(x, 1))
    assert roc(x, 1)[1] == 0.0


@pytest.mark.parametrize("base", [1.0, 55.0, 1e-8, 1e8])
def test_rounding_noise_range_reads_as_zero_like_talib(base: float) -> None:
    # TA-Lib 0.8 counts a range within 1e-14 of the price level as zero; so do the kernels.
    for ulps, expected in ((2, 0.0), (64, 0.0), (256, 100.0)):
        top = base + ulps * np.spacing(base)
        x = np.array([base, top, top])
        assert fast_stochastic(x, x, x, 3, 1)[0][-1] == expected
        assert talib.STOCHF(x, x, x, 3, 1, 0)[0][-1] == expected
        y = x[::-1].copy()  # close at the low
        assert williams_r(y, y, y, 3)[-1] == -expected
        assert talib.WILLR(y, y, y, 3)[-1] == -expected


def test_cci_flat_window_is_exactly_zero() -> None:
    # A walk that goes flat after a move: the running mean must land exactly on the price.
    x = np.concatenate((random_walk(97, seed=15), np.full(40, 101.37)))
    out = cci(x, x, x, 14)
    assert (out[97 + 13 :] == 0.0).all()
    assert (out[97 : 97 + 13] != 0.0).all()


def test_mfi_one_sided_window_is_exactly_0_or_100() -> None:
    up = np.exp(np.linspace(0.0, 1.0, 80))
    down = up[::-1].copy()
    volume = np.random.default_rng(16).lognormal(8.0, 1.0, 160)
    x = np.concatenate((up, down))
    out = mfi(x, x, x, volume, 14)
    assert (out[14:80] == 100.0).all()
    assert (out[80 + 14 :] == 0.0).all()
    check_against(out, talib.MFI(x, x, x, volume, 14))


@pytest.mark.parametrize("name", ["stochastic", "cci", "mfi"])
def test_long_series_stay_exact(name: str) -> None:
    """Running sums re-summed on schedule: 200k bars against a brute-force window loop."""
    high, low, close, volume = ohlcv(200_000, seed=17, scale=1e4)
    w = 20
    if name == "stochastic":
        raw = talib.STOCHF(high, low, close, 14, 1, 0)[0]  # %K itself has no running sum
        slow_k = np.full(raw.size, np.nan)
        slow_k[13 + w - 1 :] = sliding_window_view(raw[13:], w).mean(axis=1)
        actual = stochastic(high, low, close, 14, w, 1)[0]
        expected = slow_k
    elif name == "cci":
        tp = (high + low + close) / 3.0
        win = sliding_window_view(tp, w)
        mean = win.mean(axis=1)
        mad = np.abs(win - mean[:, None]).mean(axis=1)
        expected = np.full(tp.size, np.nan)
        expected[w - 1 :] = (tp[w - 1 :] - mean) / (0.015 * mad)
        actual = cci(high, low, close, w)
    else:
        tp = (high + low + close) / 3.0
        flow = tp[1:] * volume[1:]
        move = np.diff(tp)
        up = sliding_window_view(np.where(move > 0, flow, 0.0), w).sum(axis=1)
        down = sliding_window_view(np.where(move < 0, flow, 0.0), w).sum(axis=1)
        expected = np.full(tp.size, np.nan)
        expected[w:] = 100.0 * up / (up + down)
        actual = mfi(high, low, close, volume, w)
    np.testing.assert_allclose(actual, expected, rtol=1e-11, atol=1e-9, equal_nan=True)


def test_out_arguments_and_errors() -> None:
    high, low, close, volume = ohlcv(300, seed=18)
    a, b = np.full(300, 7.0), np.full(300, 7.0)
    k, d = stochastic(high, low, close, 14, 3, 3, a, b)
    assert k is a and d is b
    np.testing.assert_array_equal(k, stochastic(high, low, close, 14, 3, 3)[0])
    assert fast_stochastic(high, low, close, 14, 3, a, b)[1] is b
    assert stochastic_rsi(close, 14, 5, 3, a, b)[0] is a
    assert williams_r(high, low, close, 14, a) is a
    assert cci(high, low, close, 14, a) is a
    assert mfi(high, low, close, volume, 14, a) is a
    assert roc(close, 10, a) is a
    assert momentum(close, 10, a) is a
    np.testing.assert_array_equal(a, talib.MOM(close, 10))
    with pytest.raises(ValueError, match="same length"):
        cci(high, low, close, 14, np.empty(299))
    with pytest.raises(ValueError, match="same length"):
        williams_r(high[:-1], low, close, 14)
    with pytest.raises(ValueError, match="volume"):
        mfi(high, low, close, volume[:-1], 14)
    with pytest.raises(ValueError, match="fastk_bars"):
        stochastic(high, low, close, 0, 3, 3)
    with pytest.raises(ValueError, match="rsi_bars"):
        stochastic_rsi(close, 1, 5, 3)
    for f in (williams_r, cci):
        with pytest.raises(ValueError, match="window_bars"):
            f(high, low, close, 1)
    with pytest.raises(ValueError, match="window_bars"):
        roc(close, 0)
    # Shorter than the warm-up: all NaN.
    assert np.isnan(stochastic(high[:8], low[:8], close[:8], 5, 3, 3)[1]).all()
    assert np.isnan(momentum(close[:10], 10)).all()


@pytest.mark.parametrize("name", list(KERNELS))
@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 1500),
    seed=st.integers(0, 2**32 - 1),
    param_index=st.integers(0, 10_000),
    cut_fraction=st.floats(0.0, 1.0),
    rounded=st.booleans(),
    holes=st.lists(st.tuples(st.integers(0, 3), st.floats(0.0, 1.0)), max_size=3),
)
def test_causal(
    name: str,
    n: int,
    seed: int,
    param_index: int,
    cut_fraction: float,
    rounded: bool,
    holes: list[tuple[int, float]],
) -> None:
    bars = ohlcv(n, seed=seed, rounded=rounded)
    for column, where in holes:
        bars[column][min(n - 1, int(where * n))] = np.nan
    params = GRID[name][param_index % len(GRID[name])]
    cut = max(1, round(cut_fraction * n))
    full = run(name, bars, params)
    prefix = run(name, tuple(a[:cut].copy() for a in bars), params)
    # f(x[:t])[-1] == f(x)[t-1], and the whole prefix agrees bit for bit.
    for p, f in zip(prefix, full, strict=True):
        np.testing.assert_array_equal(p, f[:cut])


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_scale(name: str, scale: float) -> None:
    high, low, close, volume = ohlcv(20_000, seed=19)
    params = GRID[name][len(GRID[name]) // 2]
    base = run(name, (high, low, close, volume), params)
    scaled_bars = (high * scale, low * scale, close * scale, volume)
    scaled = run(name, scaled_bars, params)
    # Oscillators are scale-free; momentum scales with the price.
    factor = scale if name == "momentum" else 1.0
    atol = atol_for(name, (high, low, close * factor))
    for s, b, t in zip(scaled, base, run_talib(name, scaled_bars, params), strict=True):
        np.testing.assert_array_equal(np.isnan(s), np.isnan(b))
        np.testing.assert_allclose(s, b * factor, rtol=1e-9, atol=atol, equal_nan=True)
        check_against(s, t, atol=atol)
    # A power-of-two scale is exact in binary: the output must not change by a single bit.
    exponent = int(np.log2(scale))
    exact = run(name, (*(np.ldexp(a, exponent) for a in (high, low, close)), volume), params)
    for e, b in zip(exact, base, strict=True):
        np.testing.assert_array_equal(e, np.ldexp(b, exponent) if name == "momentum" else b)


# --- parallel blocks -----------------------------------------------------------------------
#
# Long series run in parallel blocks, each rebuilding the serial state at its first bar from
# the NaN-free stretch start and a short replay. The kernels must equal their serial range
# pass over (0, n) bit for bit, and stay causal at the block seams.


def seam_bars(n: int, block: int, w: int, *, seed: int) -> tuple[np.ndarray, ...]:
    """Bars over several blocks with NaNs, flat runs and jumps straddling the block seams."""
    high, low, close, volume = ohlcv(n, seed=seed)
    close[1000] = np.nan  # every later block's stretch starts at 1001: the phases matter
    seams = list(range(block, n, block))
    s = seams[0]  # a jump and a flat run across the first seam
    for a in (high, low, close):
        a[s:] *= 1e6
    high[s - 150 : s + 150] = low[s - 150 : s + 150] = close[s - 150 : s + 150] = close[s - 150]
    s = seams[1]  # a NaN inside the replay window of the second seam, a spike after it
    high[s - max(1, w // 2)] = np.nan
    high[s + w] *= 1e8
    low[s - w - 1] /= 1e8
    if len(seams) > 2:
        s = seams[2]  # a NaN a few thousand bars back, a jump just before the seam
        volume[s - 3000] = np.nan
        for a in (high, low, close):
            a[s - 1 :] *= 1e-6
    return high, low, close, volume


def check_seams(call, bars: tuple[np.ndarray, ...], block: int, serial: tuple) -> None:
    full = call(*bars)
    full = full if isinstance(full, tuple) else (full,)
    for f, s in zip(full, serial, strict=True):
        np.testing.assert_array_equal(f, s)  # NaNs at the same places, values bit for bit
    n = bars[0].shape[0]
    for seam in range(block, n, block):
        for t in (seam - 1, seam, seam + 1):
            prefix = call(*(a[:t].copy() for a in bars))
            prefix = prefix if isinstance(prefix, tuple) else (prefix,)
            for p, f in zip(prefix, full, strict=True):
                np.testing.assert_array_equal(p[-1:], f[t - 1 : t])


@pytest.mark.parametrize(("fastk", "slowk", "slowd"), [(14, 3, 3), (9, 1, 1), (100, 7, 9)])
def test_stochastics_parallel_blocks_equal_the_serial_pass(
    fastk: int, slowk: int, slowd: int
) -> None:
    span = fastk + slowk + slowd + _smooth_interval(slowk) + _smooth_interval(slowd)
    block = _block_bars(1, 16 * span)
    n = 3 * block + 777
    high, low, close, _ = seam_bars(n, block, fastk, seed=fastk)
    k = np.empty(n)
    d = np.empty(n)
    _stoch_range(high, low, close, 0, high, low, close, fastk, slowk, slowd, k, d, 0, n, 0)
    check_seams(
        lambda h, lo, c: stochastic(h, lo, c, fastk, slowk, slowd),
        (high, low, close),
        block,
        (k, d),
    )
    _stoch_range(high, low, close, 0, high, low, close, fastk, 1, slowd, k, d, 0, n, 0)
    check_seams(
        lambda h, lo, c: fast_stochastic(h, lo, c, fastk, slowd), (high, low, close), block, (k, d)
    )
    if slowd == 1:
        return  # no ring: the stretch start only aligns the (exact) van Herk blocks
    # The seam state matters: a wrong stretch start (one that ignores the NaN at bar 1000)
    # changes the block after the first seam.
    k2 = k.copy()
    d2 = d.copy()
    _stoch_range(
        high, low, close, 0, high, low, close, fastk, 1, slowd, k2, d2, block, 2 * block, 0
    )
    assert not np.array_equal(d2[block : 2 * block], d[block : 2 * block], equal_nan=True)


def test_stochastic_rsi_parallel_blocks_equal_the_serial_pass() -> None:
    block = _block_bars(1, 16 * (14 + 1 + 3 + 1 + 1))
    n = 3 * block + 5
    close = seam_bars(n, block, 14, seed=3)[2]
    close[1000] = 100.0  # RSI turns NaN for good after a NaN: keep the series alive
    close[np.isnan(close)] = 100.0
    r = rsi(close, 14)
    k = np.empty(n)
    d = np.empty(n)
    _stoch_range(r, r, r, 0, r, r, r, 14, 1, 3, k, d, 0, n, 0)
    check_seams(lambda c: stochastic_rsi(c, 14, 14, 3), (close,), block, (k, d))


@pytest.mark.parametrize("window", [3, 14, 300])
def test_cci_mfi_williams_parallel_blocks_equal_the_serial_pass(window: int) -> None:
    w = window
    block = _block_bars(1, 16 * (w + _smooth_interval(w)))
    n = 3 * block + 321
    high, low, close, _ = seam_bars(n, block, w, seed=w)
    res = np.empty(n)
    _cci_range(high, low, close, w, res, 0, n, 0)
    check_seams(lambda h, lo, c: cci(h, lo, c, w), (high, low, close), block, (res,))
    res = np.empty(n)
    _willr_range(high, low, close, w, res, 0, n)
    check_seams(lambda h, lo, c: williams_r(h, lo, c, w), (high, low, close), block, (res,))
    block = _block_bars(MFI_CHUNK_BARS, 16 * (w + _smooth_interval(w)))
    n = 3 * block + 321
    bars = seam_bars(n, block, w, seed=w + 1)
    res = np.empty(n)
    _mfi_range(*bars, w, res, 0, n, 0)
    check_seams(lambda h, lo, c, v: mfi(h, lo, c, v, w), bars, block, (res,))
