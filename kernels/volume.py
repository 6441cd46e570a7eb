"""Volume kernels: OBV, rolling and anchored VWAP, accumulation/distribution line, Chaikin
money flow, Chaikin oscillator and the volume oscillator.

Same conventions as ``kernels.rolling``: 1-d float64 inputs, float64 outputs of the same
length, NaN during warm-up, positional arguments, and an optional numpy-allocated ``out``
array that the kernel fills completely and returns (pass ``np.empty_like(close)`` on large
inputs; see ``PERF_NOTES.md``).
Kernels compile with numpy's error model: a division by zero (a zero price or volume)
gives inf or NaN, never an exception.

VWAP uses the typical price ``(high + low + close) / 3`` of each bar.

The money-flow multiplier of a bar, ``((close - low) - (high - close)) / (high - low)``, is
taken as 0 when ``high - low <= 0`` (a flat bar), as TA-Lib's AD does; the bar's volume still
counts in Chaikin money flow's denominator.

Missing values (NaN): an output is NaN when the bars it summarises hold a NaN in any input.

- Cumulative kernels (``obv``, ``ad_line``, ``chaikin_oscillator``) follow TA-Lib for leading
  NaNs (the line starts at the first bar from which every input has started), then a NaN
  makes that bar and every later bar NaN. TA-Lib instead skips a bar with a NaN high or
  low (AD) or compares against a NaN close (OBV) and carries on as if nothing had happened.
- ``anchored_vwap``: a NaN makes the rest of its session NaN; the next session starts clean.
- Rolling kernels (``rolling_vwap``, ``chaikin_money_flow``) follow pandas ``rolling(n)``
  with ``min_periods=n``: NaN while the window holds a NaN, recovering once it has left.
- ``volume_oscillator`` inherits ``kernels.rolling.ema``'s TA-Lib rule (leading NaNs skipped,
  a later NaN propagates).

The rolling kernels run long series in parallel blocks (``prange``) that start on multiples
of the recompute interval, assuming a scheduled recompute there; a block whose start is not
one in the serial pass (a low-volume recompute shifted the schedule) is redone serially
from the previous block's end state, so the output is bit for bit the serial pass's, for any
thread count. The cumulative kernels are recursive and run serially.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels._windows import _overlaps
from kernels.rolling import REANCHOR_MIN_BARS, REANCHOR_WINDOWS, _block_bars, _first_finite
from kernels.volatility import _buffer

_KIND_VWAP = 0
_KIND_MONEY_FLOW = 1
_RECOMPUTE_FRACTION = 1e-4


@njit(cache=True, error_model="numpy", inline="always")
def _money_flow_volume(h: float, lo: float, c: float, v: float) -> float:
    """Chaikin money-flow volume of one bar (0 on a flat bar; NaN if any input is NaN)."""
    span = h - lo
    if span > 0.0:
        return (((c - lo) - (h - c)) / span) * v
    # 0 * x is 0 for finite x and NaN otherwise: a NaN input still reaches the output.
    return 0.0 * (c + v + span)


@njit(cache=True, error_model="numpy")
def _first_common(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> int:
    """First bar from which all four inputs have started (TA-Lib's skipping of leading NaNs)."""
    return max(max(_first_finite(a), _first_finite(b)), max(_first_finite(c), _first_finite(d)))


# --- OBV -----------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def obv(close: np.ndarray, volume: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """On-balance volume; matches ``talib.OBV(close, volume)`` (starts at volume[first])."""
    n = close.shape[0]
    res = _buffer(n, out)
    start = max(_first_finite(close), _first_finite(volume))
    if start >= n:
        res[:] = np.nan
        return res
    res[:start] = np.nan
    prev = close[start]
    total = volume[start] + 0.0 * prev
    res[start] = total
    for i in range(start + 1, n):
        c = close[i]
        v = volume[i]
        # Branch-free sign: up and down moves alternate at random, so a branch mispredicts.
        sign = (c > prev) * 1.0 - (c < prev) * 1.0
        total = total + sign * v + 0.0 * (c + v)
        prev = c
        res[i] = total
    return res


# --- VWAP ----------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy", inline="always")
def _flow(kind: int, h: float, lo: float, c: float, v: float) -> float:
    """Numerator term of one bar: typical price * volume, or money-flow volume."""
    if kind == _KIND_VWAP:
        return (h + lo + c) / 3.0 * v
    return _money_flow_volume(h, lo, c, v)


@njit(cache=True, error_model="numpy")
def _rolling_ratio_range(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    window_bars: int,
    kind: int,
    res: np.ndarray,
    first: int,
    stop: int,
    sum_f: float,
    sum_v: float,
    peak_v: float,
    n_nan: int,
    countdown: int,
) -> tuple[float, float, float, int, int]:
    """sum(flow) / sum(volume) over the last window_bars bars (pandas rolling NaN rule), for
    bars first..stop-1 from the given state (countdown 1: recompute at bar first).

    Returns the state after bar stop - 1: (sum_f, sum_v, peak_v, n_nan, countdown).
    """
    # Running sums, recomputed from scratch every max(64, 4 n) bars, and at once when the
    # volume sum has fallen below 1e-4 of its peak since the last recompute: subtraction
    # leaves an error near eps * that peak, which would swamp a window of much lighter
    # trading (a zero-volume stretch would show a VWAP made of rounding residue). Both
    # rules look only at bars up to i, so the kernel is exactly causal. A window whose
    # volume sums to 0 gives NaN (0 / 0).
    w = window_bars
    interval = max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)
    for i in range(first, stop):
        iu = np.uint64(i)  # unsigned indices: no negative-index checks (measured ~15%)
        countdown -= 1
        if countdown != 0:
            v = volume[iu]
            f = _flow(kind, high[iu], low[iu], close[iu], v)
            if np.isnan(f):
                n_nan += 1
            else:
                sum_f += f
                sum_v += v
            if i >= w:
                j = np.uint64(i - w)
                v = volume[j]
                f = _flow(kind, high[j], low[j], close[j], v)
                if np.isnan(f):
                    n_nan -= 1
                else:
                    sum_f -= f
                    sum_v -= v
            peak_v = max(peak_v, sum_v)
        if countdown == 0 or sum_v < _RECOMPUTE_FRACTION * peak_v:
            countdown = interval
            sum_f = 0.0
            sum_v = 0.0
            n_nan = 0
            for j in range(max(0, i - w + 1), i + 1):
                v = volume[j]
                f = _flow(kind, high[j], low[j], close[j], v)
                if np.isnan(f):
                    n_nan += 1
                else:
                    sum_f += f
                    sum_v += v
            peak_v = sum_v
        if i < w - 1 or n_nan > 0:
            res[iu] = np.nan
        else:
            res[iu] = sum_f / sum_v if sum_v != 0.0 else np.nan
    return sum_f, sum_v, peak_v, n_nan, countdown


@njit(cache=True, error_model="numpy", parallel=True)
def _rolling_ratio_pass(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    window_bars: int,
    kind: int,
    res: np.ndarray,
) -> np.ndarray:
    """_rolling_ratio_range over blocks of bars, in parallel, bit for bit the serial pass.

    Each block starts on a multiple of the recompute interval and assumes a recompute there,
    as the countdown from bar 0 has it unless a low-volume recompute moved the schedule.
    Then the blocks are checked in order: a block whose first bar is not a recompute of the
    true state (the previous block's end state, checked already) is redone serially from
    that state. Outputs that overlap an input run serially.
    """
    n = close.shape[0]
    w = window_bars
    if (
        _overlaps(res, high)
        or _overlaps(res, low)
        or _overlaps(res, close)
        or _overlaps(res, volume)
    ):
        _rolling_ratio_range(high, low, close, volume, w, kind, res, 0, n, 0.0, 0.0, 0.0, 0, 1)
        return res
    interval = max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)
    block = _block_bars(interval, 2 * w)
    nb = -(-n // block)
    sums = np.empty((nb, 3))
    counts = np.empty((nb, 2), np.int64)
    for j in prange(nb):
        sf, sv, pv, nn, cd = _rolling_ratio_range(
            high, low, close, volume, w, kind, res, j * block, min((j + 1) * block, n),
            0.0, 0.0, 0.0, 0, 1,
        )  # fmt: skip
        sums[j, 0] = sf
        sums[j, 1] = sv
        sums[j, 2] = pv
        counts[j, 0] = nn
        counts[j, 1] = cd
    for j in range(1, nb):
        first = j * block
        stop = min(first + block, n)
        state = (sums[j - 1, 0], sums[j - 1, 1], sums[j - 1, 2], counts[j - 1, 0])
        # The true state runs bar `first` (rewriting it). A recompute there (and only a
        # recompute leaves the countdown at the full interval) means the speculative block
        # was the serial pass.
        out = _rolling_ratio_range(
            high, low, close, volume, w, kind, res, first, first + 1,
            state[0], state[1], state[2], state[3], counts[j - 1, 1],
        )  # fmt: skip
        if out[4] == interval:
            continue
        sf, sv, pv, nn, cd = _rolling_ratio_range(
            high, low, close, volume, w, kind, res, first + 1, stop,
            out[0], out[1], out[2], out[3], out[4],
        )  # fmt: skip
        sums[j, 0] = sf
        sums[j, 1] = sv
        sums[j, 2] = pv
        counts[j, 0] = nn
        counts[j, 1] = cd
    return res


@njit(cache=True, error_model="numpy")
def rolling_vwap(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    window_bars: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """pandas ``(tp * v).rolling(n).sum() / v.rolling(n).sum()``, tp = (h + l + c) / 3."""
    if window_bars < 1:
        raise ValueError("rolling_vwap: window_bars must be >= 1")
    res = _buffer(close.shape[0], out)
    return _rolling_ratio_pass(high, low, close, volume, window_bars, _KIND_VWAP, res)


@njit(cache=True, error_model="numpy")
def anchored_vwap(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    session_start: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """VWAP since the last session start; pandas ``groupby(session).cumsum()`` of tp * v and v.

    ``session_start`` (bool or int array, same length) is nonzero where a new session starts,
    e.g. at each UTC day: ``np.r_[True, np.diff(ts_ms // 86_400_000) != 0]``. Bar 0 always
    starts a session.
    """
    n = close.shape[0]
    if session_start.shape[0] != n:
        raise ValueError("anchored_vwap: session_start must have the same length as close")
    res = _buffer(n, out)
    sum_pv = 0.0
    sum_v = 0.0
    for i in range(n):
        if session_start[i]:
            sum_pv = 0.0
            sum_v = 0.0
        v = volume[i]
        # A NaN lands in the sums and keeps them NaN until the next session start.
        sum_pv += (high[i] + low[i] + close[i]) / 3.0 * v
        sum_v += v
        res[i] = sum_pv / sum_v if sum_v != 0.0 else np.nan
    return res


# --- accumulation / distribution -----------------------------------------------------------


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def ad_line(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Chaikin accumulation/distribution line; matches ``talib.AD(high, low, close, volume)``."""
    n = close.shape[0]
    res = _buffer(n, out)
    start = _first_common(high, low, close, volume)
    if start >= n:
        res[:] = np.nan
        return res
    res[:start] = np.nan
    total = 0.0
    for i in range(start, n):
        total += _money_flow_volume(high[i], low[i], close[i], volume[i])
        res[i] = total
    return res


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def chaikin_oscillator(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    fast_bars: int,
    slow_bars: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """EMA_fast(AD) - EMA_slow(AD); matches ``talib.ADOSC(h, l, c, v, fast_bars, slow_bars)``."""
    # TA-Lib's seeding, not talib.EMA's: both EMAs start at the first AD value (no SMA seed)
    # and the first output sits max(fast, slow) - 1 bars after the inputs start.
    if fast_bars < 2 or slow_bars < 2:
        raise ValueError("chaikin_oscillator: fast_bars and slow_bars must be >= 2 (TA-Lib)")
    n = close.shape[0]
    res = _buffer(n, out)
    start = _first_common(high, low, close, volume)
    first = start + max(fast_bars, slow_bars) - 1
    if first >= n:
        res[:] = np.nan
        return res
    res[:first] = np.nan
    fast_k = 2.0 / (fast_bars + 1.0)
    slow_k = 2.0 / (slow_bars + 1.0)
    fast_keep = 1.0 - fast_k
    slow_keep = 1.0 - slow_k
    total = _money_flow_volume(high[start], low[start], close[start], volume[start])
    fast = total
    slow = total
    for i in range(start + 1, first):
        total += _money_flow_volume(high[i], low[i], close[i], volume[i])
        fast = fast_k * total + fast_keep * fast
        slow = slow_k * total + slow_keep * slow
    for i in range(first, n):  # first > start: fast_bars, slow_bars >= 2
        total += _money_flow_volume(high[i], low[i], close[i], volume[i])
        fast = fast_k * total + fast_keep * fast
        slow = slow_k * total + slow_keep * slow
        res[i] = fast - slow
    return res


@njit(cache=True, error_model="numpy")
def chaikin_money_flow(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    window_bars: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """pandas ``mfv.rolling(n).sum() / v.rolling(n).sum()`` (mfv: money-flow volume)."""
    if window_bars < 1:
        raise ValueError("chaikin_money_flow: window_bars must be >= 1")
    res = _buffer(close.shape[0], out)
    return _rolling_ratio_pass(high, low, close, volume, window_bars, _KIND_MONEY_FLOW, res)


# --- volume oscillator ---------------------------------------------------------------------


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def volume_oscillator(
    volume: np.ndarray, fast_bars: int, slow_bars: int, out: np.ndarray | None = None
) -> np.ndarray:
    """100 * (EMA_fast(v) - EMA_slow(v)) / EMA_slow(v), EMAs as ``talib.EMA``; pandas ref."""
    # EMA, not SMA: the SMA-seeded EMA of kernels.rolling.ema (alpha = 2 / (n + 1)). NaN until
    # both EMAs exist (max(fast, slow) - 1 bars after the first valid volume) and where the
    # slow EMA is 0. One pass with both EMA chains, each exactly kernels.rolling.ema's
    # arithmetic (SMA seed, then one FMA per bar), so the two chains overlap in the CPU.
    if fast_bars < 1 or slow_bars < 1:
        raise ValueError("volume_oscillator: fast_bars and slow_bars must be >= 1")
    n = volume.shape[0]
    res = _buffer(n, out)
    start = _first_finite(volume)
    fast_seed = start + fast_bars - 1
    slow_seed = start + slow_bars - 1
    first = max(fast_seed, slow_seed)
    if first >= n:
        res[:] = np.nan
        return res
    res[:first] = np.nan
    total = 0.0
    for i in range(start, fast_seed + 1):
        total += volume[i]
    fast = total / fast_bars
    total = 0.0
    for i in range(start, slow_seed + 1):
        total += volume[i]
    slow = total / slow_bars
    fast_alpha = 2.0 / (fast_bars + 1.0)
    slow_alpha = 2.0 / (slow_bars + 1.0)
    for i in range(fast_seed + 1, first + 1):
        fast = (volume[i] - fast) * fast_alpha + fast
    for i in range(slow_seed + 1, first + 1):
        slow = (volume[i] - slow) * slow_alpha + slow
    res[first] = (fast - slow) / slow * 100.0 if slow != 0.0 else np.nan
    for i in range(first + 1, n):
        v = volume[i]
        fast = (v - fast) * fast_alpha + fast
        slow = (v - slow) * slow_alpha + slow
        res[i] = (fast - slow) / slow * 100.0 if slow != 0.0 else np.nan
    return res
