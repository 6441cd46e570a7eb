"""kernels.volume against TA-Lib / pandas / brute force, causality, NaN policy, stability.

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

from kernels.rolling import REANCHOR_MIN_BARS, REANCHOR_WINDOWS, _block_bars
from kernels.volume import (
    _KIND_MONEY_FLOW,
    _KIND_VWAP,
    _rolling_ratio_range,
    ad_line,
    anchored_vwap,
    chaikin_money_flow,
    chaikin_oscillator,
    obv,
    rolling_vwap,
    volume_oscillator,
)

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float = 0.0):
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


def money_flow_volume(high, low, close, volume) -> np.ndarray:
    span = high - low
    with np.errstate(invalid="ignore", divide="ignore"):
        mfv = ((close - low) - (high - close)) / span * volume
    return np.where(span > 0, mfv, 0.0 * (close + volume + span))


def hourly_sessions(n: int, *, seed: int) -> np.ndarray:
    """New-UTC-day flags for hourly bars starting at a random hour."""
    ts_ms = int(np.random.default_rng(seed).integers(0, 24)) * HOUR_MS + np.arange(n) * HOUR_MS
    return np.r_[True, np.diff(ts_ms // DAY_MS) != 0]


# --- TA-Lib: OBV, AD, ADOSC ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rounded", [False, True])
def test_obv_and_ad_line_match_talib(seed: int, rounded: bool) -> None:
    _, high, low, close, volume = random_ohlcv(3000, seed=seed, flat_every=50)
    if rounded:  # ties in close (OBV unchanged) and flat bars (AD unchanged)
        high, low, close = np.round(high), np.round(low), np.round(close)
    assert_close(obv(close, volume), talib.OBV(close, volume), rtol=1e-12)
    assert_close(ad_line(high, low, close, volume), talib.AD(high, low, close, volume), 1e-9)


@pytest.mark.parametrize(
    ("fast", "slow"), [(3, 10), (2, 2), (2, 5), (10, 3), (5, 50), (12, 26), (100, 200)]
)
def test_chaikin_oscillator_matches_talib(fast: int, slow: int) -> None:
    _, high, low, close, volume = random_ohlcv(3000, seed=fast * slow, flat_every=70)
    expected = talib.ADOSC(high, low, close, volume, fast, slow)
    actual = chaikin_oscillator(high, low, close, volume, fast, slow)
    # The oscillator is a difference of two EMAs of the AD line, and crosses zero: the
    # absolute floor is relative to the line's magnitude.
    floor = 1e-12 * np.nanmax(np.abs(talib.AD(high, low, close, volume)))
    assert_close(actual, expected, rtol=1e-9, atol=floor)
    warm = max(fast, slow) - 1
    assert np.isnan(actual[:warm]).all() and not np.isnan(actual[warm:]).any()


def test_cumulative_nan_policy() -> None:
    _, high, low, close, volume = random_ohlcv(300, seed=5)
    close[:3] = np.nan  # leading NaNs in different inputs: start at the latest first value
    volume[:6] = np.nan
    cases = (
        (lambda: obv(close, volume), lambda: talib.OBV(close, volume)),
        (lambda: ad_line(high, low, close, volume), lambda: talib.AD(high, low, close, volume)),
        (
            lambda: chaikin_oscillator(high, low, close, volume, 3, 10),
            lambda: talib.ADOSC(high, low, close, volume, 3, 10),
        ),
    )
    for ours, theirs in cases:
        assert_close(ours(), theirs(), rtol=1e-9, atol=1e-9)
    assert np.isnan(obv(close, volume)[:6]).all() and obv(close, volume)[6] == volume[6]
    high[150] = np.nan  # interior NaN: that bar and every later bar are NaN
    close[200] = np.nan
    for ours, theirs in cases:
        result, reference = ours(), theirs()
        np.testing.assert_allclose(result[:150], reference[:150], rtol=1e-9, atol=1e-9)
    # OBV does not read high, so its line breaks at the NaN close; TA-Lib carries on.
    assert not np.isnan(obv(close, volume)[6:200]).any()
    assert np.isnan(obv(close, volume)[200:]).all() and not np.isnan(talib.OBV(close, volume)).all()
    assert np.isnan(ad_line(high, low, close, volume)[150:]).all()
    assert np.isnan(chaikin_oscillator(high, low, close, volume, 3, 10)[150:]).all()


# --- VWAP ----------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 2, 3, 5, 20, 200, 1000])
def test_rolling_vwap_matches_pandas_and_brute_force(window: int) -> None:
    _, high, low, close, volume = random_ohlcv(3000, seed=window)
    close = with_gaps(close, seed=window)
    volume = with_gaps(volume, seed=window + 1)
    volume[1200:1300] = 0.0  # no trading: 0 / 0 is NaN
    tp = (high + low + close) / 3
    pv = pd.Series(tp * volume)
    v = pd.Series(volume)
    with np.errstate(invalid="ignore"):
        expected = (pv.rolling(window).sum() / v.rolling(window).sum()).to_numpy()
        brute = np.full(close.size, np.nan)
        brute[window - 1 :] = sliding_window_view(tp * volume, window).sum(axis=1) / (
            sliding_window_view(volume, window).sum(axis=1)
        )
    actual = rolling_vwap(high, low, close, volume, window)
    assert_close(actual, expected, rtol=1e-9)
    assert_close(actual, brute, rtol=1e-9)
    assert np.isnan(actual[1200 + window - 1 : 1300]).all()


@pytest.mark.parametrize("seed", range(3))
def test_anchored_vwap_matches_pandas_groupby(seed: int) -> None:
    n = 3000
    _, high, low, close, volume = random_ohlcv(n, seed=seed)
    high = with_gaps(high, seed=seed)
    volume[1000:1010] = 0.0
    starts = hourly_sessions(n, seed=seed)
    session = np.cumsum(starts)
    pv = pd.Series((high + low + close) / 3 * volume)
    v = pd.Series(volume)
    poisoned = pd.Series(np.isnan(pv.to_numpy())).groupby(session).cummax().to_numpy()
    with np.errstate(invalid="ignore"):
        expected = (pv.groupby(session).cumsum() / v.groupby(session).cumsum()).to_numpy().copy()
    expected[poisoned] = np.nan  # a NaN makes the rest of its session NaN
    for flags in (starts, starts.astype(np.int64)):
        actual = anchored_vwap(high, low, close, volume, flags)
        assert_close(actual, expected, rtol=1e-12)
    first_bar = np.flatnonzero(starts)
    np.testing.assert_allclose(actual[first_bar], ((high + low + close) / 3)[first_bar])


def test_anchored_vwap_nan_resets_at_next_session() -> None:
    _, high, low, close, volume = random_ohlcv(100, seed=1)
    starts = np.zeros(100, dtype=bool)
    starts[[0, 40, 70]] = True
    close[50] = np.nan
    actual = anchored_vwap(high, low, close, volume, starts)
    assert not np.isnan(actual[:50]).any()
    assert np.isnan(actual[50:70]).all() and not np.isnan(actual[70:]).any()
    with pytest.raises(ValueError, match="session_start"):
        anchored_vwap(high, low, close, volume, starts[:-1])


# --- Chaikin money flow, volume oscillator -------------------------------------------------


@pytest.mark.parametrize("window", [1, 2, 3, 5, 20, 21, 200, 1000])
def test_chaikin_money_flow_matches_pandas(window: int) -> None:
    _, high, low, close, volume = random_ohlcv(3000, seed=window, flat_every=13)
    low = with_gaps(low, seed=window)
    mfv = pd.Series(money_flow_volume(high, low, close, volume))
    v = pd.Series(np.where(np.isnan(mfv), np.nan, volume))
    expected = (mfv.rolling(window).sum() / v.rolling(window).sum()).to_numpy()
    actual = chaikin_money_flow(high, low, close, volume, window)
    # CMF lies in [-1, 1] and crosses zero: absolute floor 1e-12.
    assert_close(actual, expected, rtol=1e-9, atol=1e-12)
    assert np.nanmax(np.abs(actual), initial=0.0) <= 1.0


def seeded_ema_pandas(x: pd.Series, span: int) -> pd.Series:
    """TA-Lib's EMA in pandas: SMA of the first `span` values, then ewm(adjust=False)."""
    seeded = x.copy()
    first = int(np.argmax(x.notna().to_numpy()))
    seeded.iloc[: first + span - 1] = np.nan
    seeded.iloc[first + span - 1] = x.iloc[first : first + span].mean()
    return seeded.ewm(span=span, adjust=False).mean()


@pytest.mark.parametrize(("fast", "slow"), [(5, 10), (12, 26), (10, 5), (1, 2), (14, 14)])
def test_volume_oscillator_matches_pandas(fast: int, slow: int) -> None:
    volume = random_ohlcv(3000, seed=fast + slow)[4]
    volume[:4] = np.nan  # leading NaNs are skipped, as in talib.EMA
    v = pd.Series(volume)
    fast_ema, slow_ema = seeded_ema_pandas(v, fast), seeded_ema_pandas(v, slow)
    expected = (100 * (fast_ema - slow_ema) / slow_ema).to_numpy()
    actual = volume_oscillator(volume, fast, slow)
    assert_close(actual, expected, rtol=1e-9, atol=1e-10)  # crosses zero: absolute floor
    t_fast, t_slow = talib.EMA(volume, fast), talib.EMA(volume, slow)
    assert_close(actual, 100 * (t_fast - t_slow) / t_slow, rtol=1e-9, atol=1e-10)
    assert np.isnan(actual[: 4 + max(fast, slow) - 1]).all()
    volume[2000] = np.nan  # a later NaN propagates, as in talib.EMA
    assert np.isnan(volume_oscillator(volume, fast, slow)[2000:]).all()


def test_input_checks_and_short_inputs() -> None:
    _, high, low, close, volume = random_ohlcv(5, seed=0)
    for result in (
        rolling_vwap(high, low, close, volume, 6),
        chaikin_money_flow(high, low, close, volume, 6),
        chaikin_oscillator(high, low, close, volume, 3, 6),
        volume_oscillator(volume, 3, 6),
    ):
        assert result.shape == (5,) and np.isnan(result).all()
    empty = np.empty(0)
    assert obv(empty, empty).shape == (0,)
    assert ad_line(empty, empty, empty, empty).shape == (0,)
    with pytest.raises(ValueError, match="window_bars"):
        rolling_vwap(high, low, close, volume, 0)
    with pytest.raises(ValueError, match="window_bars"):
        chaikin_money_flow(high, low, close, volume, 0)
    with pytest.raises(ValueError, match="fast_bars"):
        chaikin_oscillator(high, low, close, volume, 1, 10)
    with pytest.raises(ValueError, match="fast_bars"):
        volume_oscillator(volume, 0, 10)


# --- causality, out arguments, scale -------------------------------------------------------

Kernel = Callable[[Bars, np.ndarray, int, int], np.ndarray]

KERNELS: dict[str, Kernel] = {
    "obv": lambda b, s, w, w2: obv(b[3], b[4]),
    "ad_line": lambda b, s, w, w2: ad_line(*b[1:]),
    "chaikin_oscillator": lambda b, s, w, w2: chaikin_oscillator(*b[1:], max(w, 2), max(w2, 2)),
    "rolling_vwap": lambda b, s, w, w2: rolling_vwap(*b[1:], w),
    "anchored_vwap": lambda b, s, w, w2: anchored_vwap(*b[1:], s),
    "chaikin_money_flow": lambda b, s, w, w2: chaikin_money_flow(*b[1:], w),
    "volume_oscillator": lambda b, s, w, w2: volume_oscillator(b[4], w, w2),
}
PRICE_VALUED = {"rolling_vwap", "anchored_vwap"}


@st.composite
def bars_windows_cut(draw: st.DrawFn) -> tuple[Bars, np.ndarray, int, int, int]:
    n = draw(st.integers(1, 1500))
    seed = draw(st.integers(0, 2**32 - 1))
    bars = random_ohlcv(n, seed=seed, vol=draw(st.sampled_from([1e-4, 1e-2, 0.1])))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        bars = tuple(np.round(x, 0) for x in bars)  # ties, flat bars, zero volume
    if draw(st.booleans()) and n > 3:
        for x in bars:
            x[rng.integers(0, n, 2)] = np.nan
    starts = rng.random(n) < draw(st.sampled_from([0.0, 0.02, 0.3]))
    window = draw(st.integers(1, 300))
    window2 = draw(st.integers(1, 300))
    cut = draw(st.integers(1, n))
    return bars, starts, window, window2, cut


@pytest.mark.parametrize("name", sorted(KERNELS))
@settings(max_examples=40, deadline=None)
@given(case=bars_windows_cut())
def test_causal(name: str, case: tuple[Bars, np.ndarray, int, int, int]) -> None:
    bars, starts, window, window2, cut = case
    kernel = KERNELS[name]
    full = kernel(bars, starts, window, window2)
    prefix = kernel(tuple(x[:cut].copy() for x in bars), starts[:cut].copy(), window, window2)
    # f(x[:t])[-1] == f(x)[t-1], and in fact the whole prefix agrees bit for bit.
    np.testing.assert_array_equal(prefix, full[:cut])


def test_out_argument_is_filled_and_returned() -> None:
    _, high, low, close, volume = random_ohlcv(2500, seed=4)
    starts = hourly_sessions(2500, seed=4)
    hlcv = (high, low, close, volume)
    for kernel, args in (
        (obv, (close, volume)),
        (ad_line, hlcv),
        (chaikin_oscillator, (*hlcv, 3, 10)),
        (rolling_vwap, (*hlcv, 20)),
        (anchored_vwap, (*hlcv, starts)),
        (chaikin_money_flow, (*hlcv, 20)),
        (volume_oscillator, (volume, 12, 26)),
    ):
        out = np.full_like(close, 123.0)
        assert kernel(*args, out) is out
        np.testing.assert_array_equal(out, kernel(*args))


@pytest.mark.parametrize("scale", [1e-8, 1e8])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_scale(name: str, scale: float) -> None:
    """VWAPs scale with price; OBV, AD, ADOSC, CMF do not move; the volume oscillator does
    not move when volume is scaled."""
    bars = random_ohlcv(20_000, seed=6, flat_every=31)
    starts = hourly_sessions(20_000, seed=6)
    base = KERNELS[name](bars, starts, 20, 50)
    factor = scale if name in PRICE_VALUED else 1.0
    scaled = (*(x * scale for x in bars[:4]), bars[4])
    if name == "volume_oscillator":
        scaled = (*bars[:4], bars[4] * scale)
    floor = 1e-12 * np.nanmax(np.abs(base))
    result = KERNELS[name](scaled, starts, 20, 50)
    np.testing.assert_allclose(result / factor, base, rtol=1e-9, atol=floor, equal_nan=True)
    # Scaling prices by a power of two is exact in binary, so results scale bit for bit.
    exponent = int(np.log2(scale))
    binary = (*(np.ldexp(x, exponent) for x in bars[:4]), bars[4])
    if name == "volume_oscillator":
        binary = (*bars[:4], np.ldexp(bars[4], exponent))
    expected = np.ldexp(base, exponent) if name in PRICE_VALUED else base
    np.testing.assert_array_equal(KERNELS[name](binary, starts, 20, 50), expected)


# --- parallel blocks: rolling_vwap, chaikin_money_flow ---------------------------------------
#
# Blocks start on multiples of the recompute interval and assume a recompute there; a block
# whose first bar is not a recompute of the true state (a low-volume recompute moved the
# schedule) is redone from the previous block's end state. Bit for bit the serial pass.


@pytest.mark.parametrize("window", [1, 14, 300])
@pytest.mark.parametrize("kind", [_KIND_VWAP, _KIND_MONEY_FLOW])
def test_rolling_ratio_parallel_blocks_equal_the_serial_pass(window: int, kind: int) -> None:
    w = window
    interval = max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)
    block = _block_bars(interval, 2 * w)
    n = 3 * block + 99
    _, high, low, close, volume = random_ohlcv(n, seed=w)
    seams = list(range(block, n, block))
    s = seams[0]  # nearly no volume just before the first seam: a low-volume recompute there
    volume[s - 3 * w - 80 : s - 2] = 1e-9
    s = seams[1]  # a NaN and a jump straddling the second seam
    close[s - 1] = np.nan
    for a in (high, low, close):
        a[s + 1 :] *= 1e6
    high[seams[2] - w : seams[2] + w] = low[seams[2] - w : seams[2] + w] = close[seams[2]]
    serial = np.empty(n)
    _rolling_ratio_range(high, low, close, volume, w, kind, serial, 0, n, 0.0, 0.0, 0.0, 0, 1)
    kernel = rolling_vwap if kind == _KIND_VWAP else chaikin_money_flow
    full = kernel(high, low, close, volume, w)
    np.testing.assert_array_equal(full, serial)
    # The block after the first seam had to be redone: its speculative start differs.
    guess = serial.copy()
    _rolling_ratio_range(
        high, low, close, volume, w, kind, guess, seams[0], seams[1], 0.0, 0.0, 0.0, 0, 1
    )
    assert not np.array_equal(guess, serial, equal_nan=True)
    for seam in seams:
        for t in (seam - 1, seam, seam + 1):
            cut = kernel(high[:t].copy(), low[:t].copy(), close[:t].copy(), volume[:t].copy(), w)
            np.testing.assert_array_equal(cut[-1:], full[t - 1 : t])
