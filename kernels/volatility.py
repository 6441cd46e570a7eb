"""Volatility kernels: Bollinger bands, ATR / NATR, Keltner and Donchian channels, and
rolling realised volatility (close-to-close, Parkinson, Garman–Klass).

Same conventions as ``kernels.rolling``: 1-d float64 inputs, float64 outputs of the same
length, NaN during warm-up, positional arguments, and optional numpy-allocated output arrays
that the kernel fills completely and returns (pass ``np.empty_like(close)`` on large inputs;
see ``PERF_NOTES.md``). Multi-output kernels return a tuple; the Bollinger and Donchian
kernels fill all their outputs in one pass (Keltner reuses ``ema`` and the ATR pass).
Kernels compile with numpy's error model: a division by zero (a zero price or volume)
gives inf or NaN, never an exception.

The Bollinger, Donchian and realised-volatility kernels run blocks of about 65k bars in
parallel (``kernels.rolling.PARALLEL_BLOCK_BARS``): Bollinger blocks start on a scheduled
re-anchor (the sums restart from the window) and rebuild the run of equal closes before them,
Donchian blocks are whole chunks (each reads only its own windows). Either way the output is
bit for bit one serial pass, whatever the thread count. An output that overlaps an input
gets a copy of the input to read.

Missing values (NaN) follow one rule per family:

- Rolling-window kernels (``bollinger_bands``, ``bollinger_percent_b_bandwidth``,
  ``donchian_channels`` and the realised-volatility estimators) follow pandas
  ``rolling(n)`` with ``min_periods=n``: an output is NaN while its window holds a NaN and
  recovers once the NaN has left the window. Leading NaNs therefore delay the first output
  exactly as TA-Lib's skipping of leading NaNs does. TA-Lib's BBANDS differs after an
  interior NaN: its running sums are poisoned and every later bar is NaN.
- Recursive kernels (``atr``, ``natr``, ``keltner_channels``) follow TA-Lib for leading NaNs
  (the warm-up starts at the first bar from which every input has started) and then
  propagate: a NaN in any input makes that bar and every later bar NaN. TA-Lib instead
  ignores a NaN previous close inside its true range and carries on.

Realised volatility is returned **per bar** (the standard deviation of one bar's log
return, not annualised). Annualise with ``vol * np.sqrt(bars_per_year)``, e.g.
``np.sqrt(365 * 24)`` for hourly crypto bars. Its kernels live in ``kernels.realised`` and
are re-exported here.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels._windows import _max_into, _min_into, _nan_windows, _overlaps, _run_extremes
from kernels.realised import (  # noqa: F401  (re-exported: realised volatility lives there)
    close_to_close_volatility,
    garman_klass_volatility,
    parkinson_volatility,
)
from kernels.rolling import (
    DIRECT_MAX_WINDOW,
    REANCHOR_MIN_BARS,
    REANCHOR_WINDOWS,
    _anchor_window,
    _block_bars,
    _first_finite,
    ema,
)

_MODE_BANDS = 0
_MODE_PERCENT_B = 1
_DRIFT_RATIO = 1e3
_DRIFT_FLOOR = 1e-13


@njit(cache=True, error_model="numpy")
def _buffer(n: int, out: np.ndarray | None) -> np.ndarray:
    """`out` when given, else a new array of n float64 (numba prunes the dead branch)."""
    if out is None:
        return np.empty(n)
    return out


# --- Bollinger bands -----------------------------------------------------------------------


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _bollinger_range(
    close: np.ndarray,
    window_bars: int,
    deviations_up: float,
    deviations_down: float,
    mode: int,
    out_a: np.ndarray,
    out_b: np.ndarray,
    out_c: np.ndarray,
    first: int,
    stop: int,
) -> None:
    """Rolling mean and population std of bars first..stop-1 (mode picks bands or %b /
    bandwidth); ``first`` is 0 or a multiple of the re-anchor interval."""
    # Numerics of kernels.rolling: running sums of deviations from an anchor, re-anchored at the
    # window mean every `interval` bars (a countdown: `i % interval` costs an integer division
    # a bar). One addition: the sums are also re-anchored at once when the window mean has
    # drifted more than ~32 standard deviations from the anchor (s1 * mean_dev > 1e3 * the
    # centred sum of squares). Without it a calm window after a volatile one (a flat stretch
    # after a crash) loses digits to cancellation: measured 2.4e-9 relative on the std at
    # window 48, against 1e-13 with it. The decision uses only bars up to i, so the kernel
    # stays exactly causal.
    w = window_bars
    interval = 1 if w <= DIRECT_MAX_WINDOW else max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)
    inv_w = 1.0 / w
    anchor = 0.0
    s1 = 0.0
    s2 = 0.0
    n_nan = 0
    run = 0  # run of identical values ending at i: a constant window has std exactly 0
    prev = np.nan
    countdown = 1  # first is a multiple of interval: its bar re-anchors from scratch
    if first > 0:  # the run of identical values ending at the bar before (capped at w)
        prev = close[first - 1]
        run = 1
        while run < w and close[first - 1 - run] == prev:
            run += 1
    for i in range(first, stop):
        x = close[i]
        if x == prev:
            run += 1
        else:
            run = 1
        prev = x
        countdown -= 1
        if countdown == 0:
            countdown = interval
            anchor, s1, s2, n_nan = _anchor_window(close, max(0, i - w + 1), i + 1)
        else:
            old = close[i - w] if i >= w else np.nan
            if not np.isnan(x) and not np.isnan(old):
                # The usual bar: one add per sum on the loop-carried chain (adding and then
                # removing would be two), and (x - old)(x + old - 2 anchor) has no
                # cancellation, unlike d_new**2 - d_old**2.
                d_new = x - anchor
                d_old = old - anchor
                step = d_new - d_old
                s1 += step
                s2 += step * (d_new + d_old)
            else:
                if np.isnan(x):
                    n_nan += 1
                else:
                    d = x - anchor
                    s1 += d
                    s2 += d * d
                if i >= w:
                    if np.isnan(old):
                        n_nan -= 1
                    else:
                        d = old - anchor
                        s1 -= d
                        s2 -= d * d
        if i < w - 1 or n_nan > 0:
            out_a[i] = np.nan
            out_b[i] = np.nan
            if mode == _MODE_BANDS:
                out_c[i] = np.nan
            continue
        mean_dev = s1 * inv_w
        centred = s2 - s1 * mean_dev
        if s1 * mean_dev > _DRIFT_RATIO * centred and abs(mean_dev) > _DRIFT_FLOOR * abs(anchor):
            # The floor skips offsets of a few ulps (a constant window's mean need not equal
            # its value exactly): re-anchoring cannot remove those.
            anchor, s1, s2, n_nan = _anchor_window(close, i - w + 1, i + 1)
            mean_dev = s1 * inv_w
            centred = s2 - s1 * mean_dev
        mean = anchor + mean_dev
        var = centred * inv_w
        if run >= w or var < 0.0:
            var = 0.0
        std = np.sqrt(var)
        upper = mean + deviations_up * std
        lower = mean - deviations_down * std
        if mode == _MODE_BANDS:
            out_a[i] = upper
            out_b[i] = mean
            out_c[i] = lower
        else:
            width = upper - lower
            # (x - lower) / width; 0 / 0 = NaN on a constant window, as in pandas.
            out_a[i] = (x - lower) / width if width != 0.0 else np.nan
            out_b[i] = width / mean


@njit(cache=True, error_model="numpy", parallel=True)
def _bollinger_pass(
    close: np.ndarray,
    window_bars: int,
    deviations_up: float,
    deviations_down: float,
    mode: int,
    out_a: np.ndarray,
    out_b: np.ndarray,
    out_c: np.ndarray,
) -> None:
    """_bollinger_range over blocks in parallel, each starting on a scheduled re-anchor (the
    sums restart from the window there), so the output is bit for bit the serial pass's. The
    loop reads close[i - w] after writing bar i - w, so an output that overlaps the input
    gets a copy of the input to read."""
    n = close.shape[0]
    w = window_bars
    if _overlaps(out_a, close) or _overlaps(out_b, close) or _overlaps(out_c, close):
        close = close.copy()
    interval = 1 if w <= DIRECT_MAX_WINDOW else max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)
    block = _block_bars(interval, 2 * w)
    for j in prange(-(-n // block)):
        _bollinger_range(
            close,
            w,
            deviations_up,
            deviations_down,
            mode,
            out_a,
            out_b,
            out_c,
            j * block,
            min((j + 1) * block, n),
        )


@njit(cache=True, error_model="numpy")
def bollinger_bands(
    close: np.ndarray,
    window_bars: int,
    deviations_up: float,
    deviations_down: float,
    out_upper: np.ndarray | None = None,
    out_middle: np.ndarray | None = None,
    out_lower: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(upper, middle, lower); matches ``talib.BBANDS(close, n, up, down, matype=0)``."""
    # Population std (ddof=0), SMA middle, as TA-Lib. NaN policy: pandas rolling (module doc).
    if window_bars < 2:
        raise ValueError("bollinger_bands: window_bars must be >= 2 (TA-Lib's minimum)")
    n = close.shape[0]
    upper = _buffer(n, out_upper)
    middle = _buffer(n, out_middle)
    lower = _buffer(n, out_lower)
    _bollinger_pass(
        close, window_bars, deviations_up, deviations_down, _MODE_BANDS, upper, middle, lower
    )
    return upper, middle, lower


@njit(cache=True, error_model="numpy")
def bollinger_percent_b_bandwidth(
    close: np.ndarray,
    window_bars: int,
    deviations_up: float,
    deviations_down: float,
    out_percent_b: np.ndarray | None = None,
    out_bandwidth: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(%b, bandwidth) = ((c - lower) / (upper - lower), (upper - lower) / middle), pandas."""
    # Bands as in bollinger_bands (pandas: mean ± k * rolling(n).std(ddof=0)). %b is NaN when
    # the bands coincide (a constant window); bandwidth is a fraction (0.05 = 5 %), not x100.
    if window_bars < 2:
        raise ValueError("bollinger_percent_b_bandwidth: window_bars must be >= 2")
    n = close.shape[0]
    percent_b = _buffer(n, out_percent_b)
    bandwidth = _buffer(n, out_bandwidth)
    _bollinger_pass(
        close,
        window_bars,
        deviations_up,
        deviations_down,
        _MODE_PERCENT_B,
        percent_b,
        bandwidth,
        bandwidth,
    )
    return percent_b, bandwidth


# --- ATR, NATR, Keltner --------------------------------------------------------------------


@njit(cache=True, error_model="numpy", inline="always")
def _true_range(h: float, lo: float, prev_close: float, c: float) -> float:
    """max(h - lo, |h - prev_close|, |lo - prev_close|), TA-Lib's order; NaN if c is NaN."""
    tr = h - lo
    a = abs(h - prev_close)
    if a > tr:
        tr = a
    b = abs(lo - prev_close)
    if b > tr:
        tr = b
    # 0 * c is 0 for finite c and NaN otherwise: a NaN close breaks the line at its own bar
    # (TA-Lib's comparisons would drop it). A NaN high or low reaches tr through h - lo.
    return tr + 0.0 * c


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _atr_pass(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    window_bars: int,
    normalise: bool,
    res: np.ndarray,
) -> np.ndarray:
    """Wilder ATR with TA-Lib's seeding; NATR (ATR / close * 100) when normalise is set."""
    # TA-Lib: true range from the second bar on, first output at bar `window_bars` = plain
    # mean of the first `window_bars` true ranges, then atr = (atr * (n - 1) + tr) / n.
    # The kernel multiplies by precomputed (n - 1) / n and 1 / n instead: the recursion
    # has one FMA on its dependency chain instead of a division (latency ~4 vs ~13 cycles), at
    # the cost of one extra rounding per step, which the contracting recursion does not
    # accumulate.
    n = close.shape[0]
    start = max(_first_finite(high), _first_finite(low), _first_finite(close))
    first = start + window_bars
    if first >= n:
        res[:] = np.nan
        return res
    res[:first] = np.nan
    total = 0.0 * (high[start] + low[start] + close[start])  # NaN if the first bar has one
    prev_close = close[start]
    for i in range(start + 1, first + 1):
        c = close[i]
        total += _true_range(high[i], low[i], prev_close, c)
        prev_close = c
    atr_value = total / window_bars
    if normalise:
        res[first] = atr_value / prev_close * 100.0 if prev_close != 0.0 else np.nan
    else:
        res[first] = atr_value
    keep = (window_bars - 1.0) / window_bars
    inv = 1.0 / window_bars
    # Two copies of the loop so that neither carries a per-bar branch on `normalise`.
    if normalise:
        for i in range(first + 1, n):
            c = close[i]
            atr_value = atr_value * keep + _true_range(high[i], low[i], prev_close, c) * inv
            prev_close = c
            res[i] = atr_value / c * 100.0 if c != 0.0 else np.nan
    else:
        for i in range(first + 1, n):
            c = close[i]
            atr_value = atr_value * keep + _true_range(high[i], low[i], prev_close, c) * inv
            prev_close = c
            res[i] = atr_value
    return res


@njit(cache=True, error_model="numpy")
def atr(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    window_bars: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Wilder average true range; matches ``talib.ATR(high, low, close, window_bars)``."""
    if window_bars < 1:
        raise ValueError("atr: window_bars must be >= 1")
    return _atr_pass(high, low, close, window_bars, False, _buffer(close.shape[0], out))


@njit(cache=True, error_model="numpy")
def natr(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    window_bars: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """ATR / close * 100; matches ``talib.NATR(high, low, close, window_bars)``."""
    # Differences: at a close of exactly 0 TA-Lib reports 0.0, the kernel NaN; for
    # window_bars == 1 TA-Lib 0.8 returns the raw true range, the kernel TR / close * 100.
    if window_bars < 1:
        raise ValueError("natr: window_bars must be >= 1")
    return _atr_pass(high, low, close, window_bars, True, _buffer(close.shape[0], out))


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def keltner_channels(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    ema_window_bars: int,
    atr_window_bars: int,
    atr_multiplier: float,
    out_upper: np.ndarray | None = None,
    out_middle: np.ndarray | None = None,
    out_lower: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(upper, middle, lower) = EMA(close) ± k * ATR; pandas ``ewm``/Wilder reference."""
    # Convention (Raschke's modern Keltner channel, e.g. EMA 20 ± 2 * ATR 10): the middle is
    # exactly talib.EMA(close, ema_window_bars) (SMA seed, alpha = 2 / (n + 1)) and the width
    # uses talib.ATR(high, low, close, atr_window_bars) (Wilder). Each component has its own
    # warm-up; the bands are NaN until both exist, i.e. for
    # max(ema_window_bars - 1, atr_window_bars) bars after the inputs start.
    if ema_window_bars < 1:
        raise ValueError("keltner_channels: ema_window_bars must be >= 1")
    if atr_window_bars < 1:
        raise ValueError("keltner_channels: atr_window_bars must be >= 1")
    n = close.shape[0]
    upper = _buffer(n, out_upper)
    middle = _buffer(n, out_middle)
    lower = _buffer(n, out_lower)
    ema(close, ema_window_bars, middle)
    _atr_pass(high, low, close, atr_window_bars, False, upper)  # ATR parked in `upper`
    for i in range(n):
        width = atr_multiplier * upper[i]
        m = middle[i]
        upper[i] = m + width
        lower[i] = m - width
        if np.isnan(width):
            middle[i] = np.nan
    return upper, middle, lower


# --- Donchian channels ---------------------------------------------------------------------

# Donchian works through the bars in chunks of this many (buffers stay in the L1/L2 cache), as
# kernels.momentum's Williams %R does.
DONCHIAN_CHUNK_BARS = 1024


@njit(cache=True, error_model="numpy", parallel=True)
def _donchian_pass(
    high: np.ndarray,
    low: np.ndarray,
    w: int,
    upper: np.ndarray,
    middle: np.ndarray,
    lower: np.ndarray,
) -> None:
    """Rolling max / min by doubling in cache-sized chunks (outputs must not overlap inputs)."""
    # Williams %R's scheme (kernels.momentum): runs of 2, 4, 8, ... bars, each step one
    # vectorized max or min over the chunk, then each window is the union of the run of the
    # largest power of 2 d <= w ending at t and the same run ending at t - (w - d). Exact, so
    # the result does not depend on the chunking (causal bit for bit). A window's value comes
    # only from its own bars, so a NaN spoils only the windows that hold it; those are set to
    # NaN afterwards (pandas min_periods=n), in the chunks whose inputs hold a NaN.
    n = high.shape[0]
    first = min(w - 1, n)
    upper[:first] = np.nan
    middle[:first] = np.nan
    lower[:first] = np.nan
    if w == 1:
        for i in range(n):
            up = high[i]
            dn = low[i]
            upper[i] = up
            lower[i] = dn
            middle[i] = (up + dn) / 2.0
        return
    chunk = DONCHIAN_CHUNK_BARS
    # Each chunk reads its own windows only, so blocks of chunks run in parallel, bit for bit.
    block = _block_bars(chunk, 2 * w)
    for j in prange(-(-(n - first) // block)):
        _donchian_range(high, low, w, upper, middle, lower, first + j * block, block)


@njit(cache=True, error_model="numpy")
def _donchian_range(
    high: np.ndarray,
    low: np.ndarray,
    w: int,
    upper: np.ndarray,
    middle: np.ndarray,
    lower: np.ndarray,
    start: int,
    bars: int,
) -> None:
    """_donchian_pass's chunks for bars start..start+bars-1 (w >= 2)."""
    n = high.shape[0]
    stop = min(start + bars, n)
    chunk = DONCHIAN_CHUNK_BARS
    bufs = np.empty((4, chunk + w))
    for s in range(start, stop, chunk):
        e = min(s + chunk, stop)
        run_hi, run_lo, d, nan_hi, nan_lo = _run_extremes(high, low, w, s, e, bufs)
        _max_into(run_hi, w, w - d, upper[s:e])
        _min_into(run_lo, w, w - d, lower[s:e])
        if nan_hi > 0:
            _nan_windows(high, w, s, e, upper)
        if nan_lo > 0:
            _nan_windows(low, w, s, e, lower)
        up = upper[s:e]
        dn = lower[s:e]
        mid = middle[s:e]
        for u in range(e - s):
            mid[u] = (up[u] + dn[u]) / 2.0


@njit(cache=True, error_model="numpy")
def donchian_channels(
    high: np.ndarray,
    low: np.ndarray,
    window_bars: int,
    out_upper: np.ndarray | None = None,
    out_middle: np.ndarray | None = None,
    out_lower: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matches pandas ``hi.rolling(n).max()``, ``(upper + lower) / 2``, ``lo.rolling(n).min()``."""
    if window_bars < 1:
        raise ValueError("donchian_channels: window_bars must be >= 1")
    n = high.shape[0]
    upper = _buffer(n, out_upper)
    middle = _buffer(n, out_middle)
    lower = _buffer(n, out_lower)
    if (
        _overlaps(upper, high)
        or _overlaps(upper, low)
        or _overlaps(middle, high)
        or _overlaps(middle, low)
        or _overlaps(lower, high)
        or _overlaps(lower, low)
    ):
        # The chunks read back w - 1 input bars that an aliased output would have overwritten.
        tmp = np.empty((3, n))
        _donchian_pass(high, low, window_bars, tmp[0], tmp[1], tmp[2])
        upper[:] = tmp[0]
        middle[:] = tmp[1]
        lower[:] = tmp[2]
    else:
        _donchian_pass(high, low, window_bars, upper, middle, lower)
    return upper, middle, lower
