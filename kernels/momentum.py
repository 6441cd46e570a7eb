"""Momentum kernels: RSI, stochastics, Williams %R, CCI, MFI, ROC and momentum.

Same conventions as ``kernels.rolling``: float64 in and out, NaN during warm-up, optional
numpy-allocated ``out`` arrays (multi-output kernels take one per output and return a tuple),
leading NaNs skipped as TA-Lib does (the warm-up starts at the first bar where every input is
finite). Each kernel matches its TA-Lib function on finite data; warm-up lengths are TA-Lib's.

Missing values inside the data (TA-Lib has no consistent rule: its WILLR ignores a NaN high,
its STOCH and MFI turn NaN for good, its CCI recovers, its RSI reports 0.0):

- ``rsi`` and ``stochastic_rsi``: a NaN propagates to every later bar (RSI is recursive).
- The window kernels (stochastics, ``williams_r``, ``cci``, ``mfi``): a NaN in any input at
  bar k restarts the warm-up at k + 1. Bars k .. k + lookback are NaN (the bars whose inputs
  include bar k) and from then on the output equals a fresh call on the data after bar k,
  bit for bit.
- ``roc`` and ``momentum`` read only bars i and i - window_bars, so a NaN at k gives NaN at
  k and k + window_bars only, as in TA-Lib.

Zero denominators follow TA-Lib 0.8, which counts a difference within ``ZERO_RANGE_REL``
(1e-14) of the price level as zero: such a high-low range gives %K = %R = 0 (%R is also
clipped to [-100, 0]), such a CCI deviation or mean deviation gives 0, such an MFI price
move carries no money flow, a window without money flow gives MFI 0, and a zero reference
price gives a ROC of 0. These readings are TA-Lib's, kept for compatibility: a flat market
reads as "at the low" (%K 0), not as missing.

The smoothing SMAs, the CCI mean and the MFI flow sums are running sums re-summed exactly
on the ``kernels.rolling`` schedule (every bar for windows of at most ``DIRECT_MAX_WINDOW``
bars, else every ``max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * window)`` bars, counted from
the start of the NaN-free stretch), so rounding does not accumulate over long series (the
CCI sum is anchored near the window mean, as in ``kernels.rolling``). Rolling highs and lows
are exact: van Herk / Gil-Werman blocks in the stochastics (O(1) per bar), doubling runs
(``kernels._windows``, shared with the Donchian channels) in Williams %R.

Agreement with TA-Lib is within 1e-9 except where the indicator itself is ill-conditioned:
a CCI whose deviations are a tiny fraction of the price level (CCI(2) across a move of 1e-8
of the typical price differs from TA-Lib by 1e-8 relative: both round the typical price,
differently).

"TA-Lib" here is the installed TA-Lib 0.8 (python wrapper 0.8.2, C library 0.8.1).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels._windows import _overlaps, _run_extremes
from kernels.rolling import (
    DIRECT_MAX_WINDOW,
    REANCHOR_MIN_BARS,
    REANCHOR_WINDOWS,
    _first_finite,
)

# TA-Lib 0.8 treats a high-low range, a CCI deviation or an MFI price move smaller than this
# fraction of the price level as zero, so rounding noise does not read as a full-scale swing.
ZERO_RANGE_REL = 1e-14


@njit(cache=True, fastmath={"contract"})
def rsi(values: np.ndarray, window_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """Wilder RSI with TA-Lib's seeding; matches ``talib.RSI(values, window_bars)``."""
    # Seeding, as in TA-Lib: the first output sits at bar `window_bars` (after the first valid
    # one) and uses the plain means of the first `window_bars` gains and losses; every later
    # bar applies avg = (avg * (n - 1) + move) / n. When both averages are exactly zero (a flat
    # window) the value is 0.0, as in TA-Lib. One deliberate difference: after a NaN input
    # TA-Lib 0.8 reports 0.0 for every later bar (a "fully oversold" reading made up from a
    # missing price); this kernel reports NaN.
    if window_bars < 2:
        raise ValueError("rsi: window_bars must be >= 2")
    n = values.shape[0]
    if out is None:
        res = np.empty(n)
    else:
        res = out
    start = _first_finite(values)
    first = start + window_bars
    if first >= n:
        res[:] = np.nan
        return res
    res[:first] = np.nan
    gain = 0.0
    loss = 0.0
    prev = values[start]
    for i in range(start + 1, first + 1):
        move = values[i] - prev
        prev = values[i]
        if move < 0.0:
            loss -= move
        else:
            gain += move
    loss /= window_bars
    gain /= window_bars
    total = gain + loss
    res[first] = 100.0 * (gain / total) if total != 0.0 else 0.0
    # Wilder's avg = (avg * (n - 1) + move) / n as one FMA per bar: avg * decay + move / n.
    # The split of a move into gain and loss, (|m| + m) / 2 and (|m| - m) / 2, is exact and
    # branch-free (a random walk's signs defeat branch prediction), and keeps a NaN move NaN.
    # The recursion is contractive, so the reordered rounding stays within 1e-15 of TA-Lib.
    decay = (window_bars - 1.0) / window_bars
    inv = 1.0 / window_bars
    for i in range(first + 1, n):
        value = values[i]
        move = value - prev
        prev = value
        size = abs(move)
        gain = gain * decay + (0.5 * (size + move)) * inv
        loss = loss * decay + (0.5 * (size - move)) * inv
        total = gain + loss
        res[i] = 100.0 * (gain / total) if total != 0.0 else 0.0
    return res


# --- shared helpers ------------------------------------------------------------------------


@njit(cache=True)
def _output(out: np.ndarray | None, n: int) -> np.ndarray:
    """``out`` if given (checked to hold n bars), else a new array of n float64."""
    if out is None:
        return np.empty(n)
    if out.shape[0] != n:
        raise ValueError("out: output arrays must have the same length as the inputs")
    return out


@njit(cache=True)
def _smooth_interval(window_bars: int) -> int:
    """Bars between exact re-summations of a running window sum (as in ``kernels.rolling``)."""
    if window_bars <= DIRECT_MAX_WINDOW:
        return 1
    return max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * window_bars)


@njit(cache=True, fastmath={"contract"}, error_model="numpy", inline="always")
def _ring_push(
    ring: np.ndarray,
    x: float,
    bars: int,
    every: int,
    count: int,
    slot: int,
    since: int,
    total: float,
) -> tuple[int, int, int, float]:
    """Push x into a ring of the last ``bars`` values and their running sum, re-summed exactly
    at every ``every``-th bar with a full window (``_smooth_interval``).

    Returns (count, slot, since, total); the window is full once count >= bars.
    """
    if count >= bars:
        total -= ring[slot]
    ring[slot] = x
    total += x
    slot = slot + 1 if slot + 1 < bars else 0
    count += 1
    if count >= bars:
        since += 1
        if since == every:
            since = 0
            total = 0.0
            for j in range(bars):
                total += ring[j]
    return count, slot, since, total


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _stoch_pass(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    fastk_bars: int,
    k_bars: int,
    d_bars: int,
    res_k: np.ndarray,
    res_d: np.ndarray,
) -> None:
    """Raw %K over fastk_bars, then k = SMA(k_bars) of it and d = SMA(d_bars) of k.

    Writes k to res_k and d to res_d, both NaN until d exists. Past highs and lows are read
    from the block buffers, never from the inputs, so res_k may be the input array itself
    (``stochastic_rsi``).
    """
    n = close.shape[0]
    w = fastk_bars
    # Rolling high and low by van Herk / Gil-Werman: the bars are cut into blocks of w (from
    # the start of the NaN-free stretch). A window ending at offset r of a block is the tail
    # of the previous block from r + 1 (suffix extrema, computed once per block) plus the head
    # of the current block up to r (running extrema): about three comparisons per bar and
    # exact. A monotonic deque measured about 8x slower on random walks (branch misses).
    block_hi = np.empty(w)
    block_lo = np.empty(w)
    tail_hi = np.empty(w)
    tail_lo = np.empty(w)
    ring_k = np.empty(k_bars)
    ring_d = np.empty(d_bars)
    every_k = _smooth_interval(k_bars)
    every_d = _smooth_interval(d_bars)
    r = 0  # offset of bar i in its block
    have_tail = False  # a full block has been seen in this stretch
    head_hi = head_lo = 0.0
    count_k = slot_k = since_k = 0
    count_d = slot_d = since_d = 0
    sum_k = sum_d = 0.0
    for i in range(n):
        h = high[i]
        lo = low[i]
        c = close[i]
        if np.isnan(h) or np.isnan(lo) or np.isnan(c):
            # Restart the warm-up after the NaN: the state becomes that of a fresh call.
            r = 0
            have_tail = False
            count_k = slot_k = since_k = 0
            count_d = slot_d = since_d = 0
            sum_k = sum_d = 0.0
            res_k[i] = np.nan
            res_d[i] = np.nan
            continue
        block_hi[r] = h
        block_lo[r] = lo
        if r == 0:
            head_hi = h
            head_lo = lo
        else:
            head_hi = max(head_hi, h)
            head_lo = min(head_lo, lo)
        if r == w - 1:
            highest = head_hi
            lowest = head_lo
            m_hi = h
            m_lo = lo
            for j in range(w - 1, -1, -1):
                m_hi = max(m_hi, block_hi[j])
                m_lo = min(m_lo, block_lo[j])
                tail_hi[j] = m_hi
                tail_lo[j] = m_lo
            r = 0
            have_tail = True
        elif have_tail:
            highest = max(tail_hi[r + 1], head_hi)
            lowest = min(tail_lo[r + 1], head_lo)
            r += 1
        else:
            r += 1
            res_k[i] = np.nan
            res_d[i] = np.nan
            continue
        # TA-Lib 0.8's expression: a range within ZERO_RANGE_REL of the price level is a zero
        # range (raw 0.0).
        diff = highest - lowest
        if abs(diff) <= ZERO_RANGE_REL * (abs(highest) + abs(lowest)):
            raw = 0.0
        else:
            raw = (c - lowest) / diff * 100.0
        # k is the SMA of raw over k_bars and d the SMA of k over d_bars (a 1-bar SMA is the
        # value itself); both are NaN until d's window is full.
        ready = True
        k = raw
        if k_bars > 1:
            count_k, slot_k, since_k, sum_k = _ring_push(
                ring_k, raw, k_bars, every_k, count_k, slot_k, since_k, sum_k
            )
            ready = count_k >= k_bars
            k = sum_k / k_bars
        d = k
        if ready and d_bars > 1:
            count_d, slot_d, since_d, sum_d = _ring_push(
                ring_d, k, d_bars, every_d, count_d, slot_d, since_d, sum_d
            )
            ready = count_d >= d_bars
            d = sum_d / d_bars
        res_k[i] = k if ready else np.nan
        res_d[i] = d if ready else np.nan


@njit(cache=True)
def _check_hlc(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> int:
    n = close.shape[0]
    if high.shape[0] != n or low.shape[0] != n:
        raise ValueError("high, low and close must have the same length; pass aligned bars")
    return n


# --- stochastics ---------------------------------------------------------------------------


@njit(cache=True)
def stochastic(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    fastk_bars: int,
    slowk_bars: int,
    slowd_bars: int,
    out_k: np.ndarray | None = None,
    out_d: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Slow %K, %D; matches ``talib.STOCH(high, low, close, fastk, slowk, 0, slowd, 0)``."""
    if fastk_bars < 1 or slowk_bars < 1 or slowd_bars < 1:
        raise ValueError("stochastic: fastk_bars, slowk_bars and slowd_bars must be >= 1")
    n = _check_hlc(high, low, close)
    res_k = _output(out_k, n)
    res_d = _output(out_d, n)
    _stoch_pass(high, low, close, fastk_bars, slowk_bars, slowd_bars, res_k, res_d)
    return res_k, res_d


@njit(cache=True)
def fast_stochastic(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    fastk_bars: int,
    fastd_bars: int,
    out_k: np.ndarray | None = None,
    out_d: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fast %K, %D; matches ``talib.STOCHF(high, low, close, fastk_bars, fastd_bars, 0)``."""
    if fastk_bars < 1 or fastd_bars < 1:
        raise ValueError("fast_stochastic: fastk_bars and fastd_bars must be >= 1")
    n = _check_hlc(high, low, close)
    res_k = _output(out_k, n)
    res_d = _output(out_d, n)
    _stoch_pass(high, low, close, fastk_bars, 1, fastd_bars, res_k, res_d)
    return res_k, res_d


@njit(cache=True)
def stochastic_rsi(
    values: np.ndarray,
    rsi_bars: int,
    fastk_bars: int,
    fastd_bars: int,
    out_k: np.ndarray | None = None,
    out_d: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fast stochastic of RSI; matches ``talib.STOCHRSI(values, rsi_bars, fastk, fastd, 0)``."""
    if rsi_bars < 2:
        raise ValueError("stochastic_rsi: rsi_bars must be >= 2")
    if fastk_bars < 1 or fastd_bars < 1:
        raise ValueError("stochastic_rsi: fastk_bars and fastd_bars must be >= 1")
    n = values.shape[0]
    res_k = _output(out_k, n)
    res_d = _output(out_d, n)
    # RSI goes into res_k first; _stoch_pass reads each bar before overwriting it.
    rsi(values, rsi_bars, res_k)
    _stoch_pass(res_k, res_k, res_k, fastk_bars, 1, fastd_bars, res_k, res_d)
    return res_k, res_d


# --- Williams %R ---------------------------------------------------------------------------

# Williams %R works through the bars in chunks of this many, small enough that its buffers
# stay in the L1/L2 cache (1024 measured faster than 2048 or more).
WILLR_CHUNK_BARS = 1024


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _willr_write(
    run_hi: np.ndarray,
    run_lo: np.ndarray,
    close: np.ndarray,
    w: int,
    d: int,
    s: int,
    e: int,
    res: np.ndarray,
) -> int:
    """%R of bars s..e-1 from the extrema of runs of d bars; returns the NaNs in close[s:e]."""
    k = w - d  # the window ending at t is the run ending at t and the run ending at t - k
    m = e - s + w - 1
    cur_hi = run_hi[w - 1 : m]
    back_hi = run_hi[w - 1 - k : m - k]
    cur_lo = run_lo[w - 1 : m]
    back_lo = run_lo[w - 1 - k : m - k]
    cls = close[s:e]
    dst = res[s:e]
    bad = 0
    for u in range(e - s):
        c = cls[u]
        bad += c != c
        highest = max(cur_hi[u], back_hi[u])
        lowest = min(cur_lo[u], back_lo[u])
        # TA-Lib 0.8's expressions: a range within ZERO_RANGE_REL of the price level is a zero
        # range (%R 0.0), and %R is clipped to [-100, 0]. Both sides are computed and one is
        # selected, so the loop has no branch and vectorizes.
        diff = highest - lowest
        raw = min(0.0, max(-100.0, (highest - c) / diff * -100.0))
        flat = abs(diff) <= ZERO_RANGE_REL * (abs(highest) + abs(lowest))
        dst[u] = 0.0 if flat else raw
    return bad


@njit(cache=True, error_model="numpy")
def _willr_span(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    w: int,
    s: int,
    e: int,
    bufs: np.ndarray,
    res: np.ndarray,
) -> int:
    """%R of bars s..e-1 (at most WILLR_CHUNK_BARS) from bars s-w+1..e-1; returns their NaNs.

    The result is only valid when that count is 0. Window extrema by doubling
    (``kernels._windows``): exact, like the van Herk / Gil-Werman blocks of ``_stoch_pass``,
    and about 2.5x faster here (no serial running extrema).
    """
    run_hi, run_lo, d, nan_hi, nan_lo = _run_extremes(high, low, w, s, e, bufs)
    return nan_hi + nan_lo + _willr_write(run_hi, run_lo, close, w, d, s, e, res)


@njit(cache=True)
def _willr_pass(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, w: int, res: np.ndarray
) -> None:
    """Williams %R into res (which must not overlap the inputs), chunk by chunk.

    NaN checks are counted inside the vectorized passes: a chunk whose inputs hold no NaN
    keeps its fast result; otherwise it is redone bar range by bar range between the NaNs.
    """
    n = close.shape[0]
    chunk = WILLR_CHUNK_BARS
    bufs = np.empty((4, chunk + w))
    stretch = 0  # first bar of the current NaN-free stretch
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        if stretch + w - 1 <= s and _willr_span(high, low, close, w, s, e, bufs, res) == 0:
            continue
        j = s
        while j < e:
            k = j  # the next NaN bar (or e)
            while k < e and not (np.isnan(high[k]) or np.isnan(low[k]) or np.isnan(close[k])):
                k += 1
            ready = max(j, stretch + w - 1)  # first bar with a full window
            res[j : min(ready, k)] = np.nan
            if ready < k:
                _willr_span(high, low, close, w, ready, k, bufs, res)
            if k < e:
                # Restart the warm-up after the NaN: bars k .. k + w - 1 are NaN.
                res[k] = np.nan
                stretch = k + 1
            j = k + 1


@njit(cache=True)
def williams_r(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    window_bars: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Williams %R in [-100, 0]; matches ``talib.WILLR(high, low, close, window_bars)``."""
    if window_bars < 2:
        raise ValueError("williams_r: window_bars must be >= 2")
    n = _check_hlc(high, low, close)
    res = _output(out, n)
    if _overlaps(res, high) or _overlaps(res, low) or _overlaps(res, close):
        # The chunks read back w - 1 input bars that an aliased output would have overwritten.
        tmp = np.empty(n)
        _willr_pass(high, low, close, window_bars, tmp)
        res[:] = tmp
        return res
    _willr_pass(high, low, close, window_bars, res)
    return res


# --- CCI, MFI ------------------------------------------------------------------------------


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def cci(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    window_bars: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Commodity Channel Index; matches ``talib.CCI(high, low, close, window_bars)``."""
    if window_bars < 2:
        raise ValueError("cci: window_bars must be >= 2")
    n = _check_hlc(high, low, close)
    res = _output(out, n)
    w = window_bars
    ring = np.empty(w)  # 3x the typical prices of the window, in slot order
    every = _smooth_interval(w)
    count = slot = since = 0
    anchor = 0.0
    s1 = 0.0  # sum of (tp - anchor) over the window
    for i in range(n):
        # tp is 3x the typical price: CCI is scale-free, and this saves a division per bar.
        tp = high[i] + low[i] + close[i]
        if np.isnan(tp):
            count = slot = since = 0
            s1 = 0.0
            res[i] = np.nan
            continue
        if count == 0:
            anchor = tp
        if count >= w:
            s1 -= ring[slot] - anchor
        ring[slot] = tp
        s1 += tp - anchor
        slot = slot + 1 if slot + 1 < w else 0
        count += 1
        if count < w:
            res[i] = np.nan
            continue
        since += 1
        if since == every:
            # Re-anchor at the window mean (see kernels.rolling): s1 stays small and exact.
            since = 0
            total = 0.0
            for j in range(w):
                total += ring[j]
            anchor = total / w
            s1 = 0.0
            for j in range(w):
                s1 += ring[j] - anchor
        mean = anchor + s1 / w
        # Four partial sums: independent add chains instead of one latency-bound chain.
        a0 = a1 = a2 = a3 = 0.0
        j = 0
        while j + 4 <= w:
            a0 += abs(ring[j] - mean)
            a1 += abs(ring[j + 1] - mean)
            a2 += abs(ring[j + 2] - mean)
            a3 += abs(ring[j + 3] - mean)
            j += 4
        while j < w:
            a0 += abs(ring[j] - mean)
            j += 1
        mad = ((a0 + a1) + (a2 + a3)) / w
        dev = tp - mean
        # TA-Lib 0.8: a deviation or a mean deviation within ZERO_RANGE_REL of the mean is 0.
        level = ZERO_RANGE_REL * abs(mean)
        res[i] = dev / (0.015 * mad) if abs(dev) > level and mad > level else 0.0
    return res


# MFI works through the bars in chunks of this many: a vectorized NaN scan of a chunk lets
# its bars skip the per-bar NaN tests (the chunk is still in cache for the main loop).
MFI_CHUNK_BARS = 1024


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def mfi(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    window_bars: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Money Flow Index; matches ``talib.MFI(high, low, close, volume, window_bars)``."""
    if window_bars < 2:
        raise ValueError("mfi: window_bars must be >= 2")
    n = _check_hlc(high, low, close)
    if volume.shape[0] != n:
        raise ValueError("mfi: volume must have the same length as close; pass aligned bars")
    res = _output(out, n)
    w = window_bars
    ring_up = np.empty(w)  # money flow of the bars whose typical price rose, else 0
    ring_down = np.empty(w)  # money flow of the bars whose typical price fell, else 0
    every = _smooth_interval(w)
    count = slot = since = 0
    last_up = last_down = -w  # count at the latest up / down flow
    up = down = 0.0
    prev = np.nan
    for s in range(0, n, MFI_CHUNK_BARS):
        e = min(s + MFI_CHUNK_BARS, n)
        bad = 0
        for i in range(s, e):
            tp = high[i] + low[i] + close[i]
            vol = volume[i]
            bad += (tp != tp) | (vol != vol)
        # Only a chunk holding a NaN, or starting a stretch, needs the per-bar tests below.
        checked = bad > 0 or np.isnan(prev)
        for i in range(s, e):
            # tp is 3x the typical price: the MFI ratio is scale-free (saves a division per bar).
            tp = high[i] + low[i] + close[i]
            vol = volume[i]
            if checked:
                if np.isnan(tp) or np.isnan(vol):
                    count = slot = since = 0
                    last_up = last_down = -w
                    up = down = 0.0
                    prev = np.nan
                    res[i] = np.nan
                    continue
                if np.isnan(prev):
                    prev = tp  # first bar of a stretch: no move yet
                    res[i] = np.nan
                    continue
            # The per-bar choices below are selects, not branches: the direction of a random
            # walk's moves cannot be predicted (branches measured about 1.6x slower).
            flow = tp * vol
            move = tp - prev
            if count >= w:
                up -= ring_up[slot]
                down -= ring_down[slot]
            # TA-Lib 0.8: a move within ZERO_RANGE_REL of the price is no move.
            flat = abs(move) <= ZERO_RANGE_REL * (abs(tp) + abs(prev))
            prev = tp
            f_up = flow if move > 0.0 and not flat else 0.0
            f_down = flow if move < 0.0 and not flat else 0.0
            ring_up[slot] = f_up
            ring_down[slot] = f_down
            up += f_up
            down += f_down
            last_up = count if f_up > 0.0 else last_up
            last_down = count if f_down > 0.0 else last_down
            slot = slot + 1 if slot + 1 < w else 0
            count += 1
            if count < w:
                res[i] = np.nan
                continue
            since += 1
            if since == every:
                since = 0
                up = 0.0
                down = 0.0
                for j in range(w):
                    up += ring_up[j]
                    down += ring_down[j]
            # A side with no flow left in the window is exactly 0, not a subtraction residue.
            up = 0.0 if count - last_up > w else up
            down = 0.0 if count - last_down > w else down
            total = up + down
            ratio = up / total
            res[i] = 100.0 * ratio if total > 0.0 else 0.0
    return res


# --- differences over window_bars ----------------------------------------------------------


# Inlined: the loops over an array returned by a call ran about 10% slower (roc, momentum).
@njit(cache=True, inline="always")
def _lagged_output(
    values: np.ndarray, window_bars: int, out: np.ndarray | None
) -> tuple[np.ndarray, int]:
    """The output array, NaN up to the first bar window_bars after the first finite value;
    returns it and that bar (at least len(values) when there is none)."""
    n = values.shape[0]
    res = _output(out, n)
    first = _first_finite(values) + window_bars
    res[: min(first, n)] = np.nan
    return res, first


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def roc(values: np.ndarray, window_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """Rate of change in percent; matches ``talib.ROC(values, window_bars)``."""
    if window_bars < 1:
        raise ValueError("roc: window_bars must be >= 1")
    res, first = _lagged_output(values, window_bars, out)
    for i in range(first, values.shape[0]):
        prev = values[i - window_bars]
        res[i] = (values[i] / prev - 1.0) * 100.0 if prev != 0.0 else 0.0
    return res


@njit(cache=True, fastmath={"contract"})
def momentum(values: np.ndarray, window_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """Difference over window_bars; matches ``talib.MOM(values, window_bars)``."""
    if window_bars < 1:
        raise ValueError("momentum: window_bars must be >= 1")
    res, first = _lagged_output(values, window_bars, out)
    for i in range(first, values.shape[0]):
        res[i] = values[i] - values[i - window_bars]
    return res
