"""Rolling window extremes: the exact max / min machinery shared by the momentum, trend and
volatility kernels.

Doubling runs (Williams %R, the Donchian channels). A chunk of bars s..e-1 reads its inputs
from bar s - w + 1 (the first bar of its first window). ``_run_extremes`` takes the max and
min over runs of 2, 4, 8, ... bars ending at each bar, each step one vectorized pass over
the chunk; with d the largest power of 2 <= w, the window of w bars ending at t is the union
of the run of d bars ending at t and the one ending at t - (w - d). Exact (max and min do
not round), so a result does not depend on the chunking and the kernels stay causal bit for
bit. Chunks of about 1024 bars keep the buffers in the L1/L2 cache. The NaN counts that come
back are those of the inputs; a caller whose chunk holds a NaN redoes or patches it (a NaN
reaches only the windows that hold it).

van Herk / Gil-Werman blocks (Aroon, Ichimoku): the bars are cut into blocks, and a window
is a suffix of the previous block plus a prefix of its own, O(1) per bar. The Aroon pass
also carries the index of each extreme. Long series run in parallel blocks of about 65k bars
(``kernels.rolling.PARALLEL_BLOCK_BARS``): a range function rebuilds the serial loop's state
at its first bar from the bars before it (the previous van Herk block's suffix extremes, the
prefix extremes so far, the last NaN within a window), so the output is bit for bit that of
one serial pass, whatever the thread count, and stays exactly causal. Ichimoku runs its three
midpoints chunk by chunk (``ICHIMOKU_CHUNK_BARS``) so that each chunk's inputs stay in cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.rolling import _block_bars, _overlaps

# --- doubling runs: Williams %R and Donchian ------------------------------------------------


@njit(cache=True, error_model="numpy")
def _max_first(src: np.ndarray, dst: np.ndarray) -> int:
    """dst[t] = max(src[t], src[t - 1]) for t >= 1; returns the number of NaNs in src."""
    m = src.shape[0]
    cur = src[1:]
    back = src[: m - 1]
    res = dst[1:m]
    bad = 0
    for t in range(m - 1):
        v = cur[t]
        res[t] = max(v, back[t])
        bad += v != v
    return bad + (src[0] != src[0])


@njit(cache=True, error_model="numpy")
def _min_first(src: np.ndarray, dst: np.ndarray) -> int:
    """dst[t] = min(src[t], src[t - 1]) for t >= 1; returns the number of NaNs in src."""
    m = src.shape[0]
    cur = src[1:]
    back = src[: m - 1]
    res = dst[1:m]
    bad = 0
    for t in range(m - 1):
        v = cur[t]
        res[t] = min(v, back[t])
        bad += v != v
    return bad + (src[0] != src[0])


# The doubling steps take one array each: a loop over a high and a low array together failed
# LLVM's runtime alias checks and ran scalar (about 7x slower).
@njit(cache=True, error_model="numpy")
def _max_step(src: np.ndarray, dst: np.ndarray, d: int, m: int) -> None:
    """dst[t] = max(src[t], src[t - d]) for d <= t < m."""
    cur = src[d:m]
    back = src[: m - d]
    res = dst[d:m]
    for t in range(m - d):
        res[t] = max(cur[t], back[t])


@njit(cache=True, error_model="numpy")
def _min_step(src: np.ndarray, dst: np.ndarray, d: int, m: int) -> None:
    """dst[t] = min(src[t], src[t - d]) for d <= t < m."""
    cur = src[d:m]
    back = src[: m - d]
    res = dst[d:m]
    for t in range(m - d):
        res[t] = min(cur[t], back[t])


@njit(cache=True, error_model="numpy", inline="always")
def _run_extremes(
    high: np.ndarray, low: np.ndarray, w: int, s: int, e: int, bufs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Max of high and min of low over runs of d bars, for the windows of w >= 2 bars ending
    at bars s..e-1 (inputs from bar s - w + 1, at most ``bufs.shape[1]`` bars).

    Returns (run_hi, run_lo, d, nan_hi, nan_lo): run_hi[j] is the max of the d bars ending at
    bar s - w + 1 + j (valid for j >= d - 1), d the largest power of 2 <= w, and nan_hi /
    nan_lo the NaN counts of high and low over those bars. run_hi and run_lo are rows of
    ``bufs`` (shape (4, >= e - s + w - 1)), valid until its next use.
    """
    base = s - w + 1
    m = e - base
    a_hi = bufs[0]
    a_lo = bufs[1]
    b_hi = bufs[2]
    b_lo = bufs[3]
    nan_hi = _max_first(high[base:e], a_hi)
    nan_lo = _min_first(low[base:e], a_lo)
    d = 2
    in_a = True
    while 2 * d <= w:
        if in_a:
            _max_step(a_hi, b_hi, d, m)
            _min_step(a_lo, b_lo, d, m)
        else:
            _max_step(b_hi, a_hi, d, m)
            _min_step(b_lo, a_lo, d, m)
        in_a = not in_a
        d *= 2
    if in_a:
        return a_hi, a_lo, d, nan_hi, nan_lo
    return b_hi, b_lo, d, nan_hi, nan_lo


@njit(cache=True, error_model="numpy")
def _max_into(runs: np.ndarray, w: int, k: int, dst: np.ndarray) -> None:
    """dst[u] = max(runs[w - 1 + u], runs[w - 1 - k + u]): two runs cover each window."""
    m = dst.shape[0]
    cur = runs[w - 1 : w - 1 + m]
    back = runs[w - 1 - k : w - 1 - k + m]
    for u in range(m):
        dst[u] = max(cur[u], back[u])


@njit(cache=True, error_model="numpy")
def _min_into(runs: np.ndarray, w: int, k: int, dst: np.ndarray) -> None:
    """dst[u] = min(runs[w - 1 + u], runs[w - 1 - k + u]): two runs cover each window."""
    m = dst.shape[0]
    cur = runs[w - 1 : w - 1 + m]
    back = runs[w - 1 - k : w - 1 - k + m]
    for u in range(m):
        dst[u] = min(cur[u], back[u])


@njit(cache=True, error_model="numpy")
def _nan_windows(values: np.ndarray, w: int, s: int, e: int, dst: np.ndarray) -> None:
    """dst[i] = NaN for s <= i < e where values[i - w + 1 : i + 1] holds a NaN."""
    last = -1  # the last NaN bar seen
    for j in range(s - w + 1, e):
        if np.isnan(values[j]):
            last = j
        if j >= s and last > j - w and last >= 0:
            dst[j] = np.nan


# --- van Herk / Gil-Werman blocks: Aroon and Ichimoku ---------------------------------------

ICHIMOKU_CHUNK_BARS = 4096  # bars per cache-resident chunk of the Ichimoku passes


@njit(cache=True)
def _aroon_range(
    high: np.ndarray,
    low: np.ndarray,
    w: int,
    oscillator: bool,
    res_down: np.ndarray,
    res_up: np.ndarray,
    res_osc: np.ndarray,
    first: int,
    stop: int,
) -> None:
    """Shared loop of aroon / aroon_oscillator for bars first <= t < stop: latest argmax /
    argmin over w + 1 bars. Any first: the state there is rebuilt from the bars before it."""
    # van Herk / Gil-Werman: cut the series into blocks of b = w + 1 bars. A window ending at
    # bar t of a block is a suffix of the previous block plus a prefix of this one, so a
    # running prefix extreme and a stored suffix extreme give it in O(1) (TA-Lib rescans the
    # window whenever its extreme expires). Ties go to the latest bar, as in TA-Lib.
    # Indices are carried as floats and updated as idx += flag * (t - idx), flag in {0, 1}
    # (exact below 2**53): LLVM turns the equivalent selects into branches, and those
    # mispredict on every new extreme (measured 2x slower).
    b = w + 1
    factor = 100.0 / w
    # Suffix extremes of the previous block by offset; offset b is the empty suffix.
    suf_hi = np.full(b + 1, -np.inf)
    suf_hi_idx = np.zeros(b + 1)
    suf_lo = np.full(b + 1, np.inf)
    suf_lo_idx = np.zeros(b + 1)
    s0 = first - first % b  # the block holding bar first (blocks sit at multiples of b)
    if s0 > 0:
        _aroon_suffixes(high, low, s0 - b, s0, suf_hi, suf_hi_idx, suf_lo, suf_lo_idx)
    last_nan = -1  # only a NaN among the w bars before first can still void a window
    for j in range(max(first - w, 0), first):
        if np.isnan(high[j]) or np.isnan(low[j]):
            last_nan = j
    for s in range(s0, stop, b):
        e = min(s + b, stop)
        pre_hi = -np.inf
        pre_hi_idx = 0.0
        pre_lo = np.inf
        pre_lo_idx = 0.0
        for t in range(s, min(first, e)):  # the prefix before first (first block only)
            hv = high[t]
            lv = low[t]
            tf = float(t)
            pre_hi_idx += np.float64(hv >= pre_hi) * (tf - pre_hi_idx)
            pre_lo_idx += np.float64(lv <= pre_lo) * (tf - pre_lo_idx)
            pre_hi = max(pre_hi, hv)
            pre_lo = min(pre_lo, lv)
        for t in range(max(s, first), e):
            hv = high[t]
            lv = low[t]
            if np.isnan(hv) or np.isnan(lv):
                last_nan = t
            tf = float(t)
            pre_hi_idx += np.float64(hv >= pre_hi) * (tf - pre_hi_idx)
            pre_lo_idx += np.float64(lv <= pre_lo) * (tf - pre_lo_idx)
            pre_hi = max(pre_hi, hv)
            pre_lo = min(pre_lo, lv)
            k = t - s + 1  # offset in the previous block of this window's first bar
            hi_idx = suf_hi_idx[k] + np.float64(pre_hi >= suf_hi[k]) * (pre_hi_idx - suf_hi_idx[k])
            lo_idx = suf_lo_idx[k] + np.float64(pre_lo <= suf_lo[k]) * (pre_lo_idx - suf_lo_idx[k])
            valid = t - last_nan > w
            if oscillator:
                res_osc[t] = factor * (hi_idx - lo_idx) if valid else np.nan
            else:
                res_up[t] = factor * (w - (tf - hi_idx)) if valid else np.nan
                res_down[t] = factor * (w - (tf - lo_idx)) if valid else np.nan
        if e < stop:
            _aroon_suffixes(high, low, s, e, suf_hi, suf_hi_idx, suf_lo, suf_lo_idx)


@njit(cache=True, inline="always")
def _aroon_suffixes(
    high: np.ndarray,
    low: np.ndarray,
    s: int,
    e: int,
    suf_hi: np.ndarray,
    suf_hi_idx: np.ndarray,
    suf_lo: np.ndarray,
    suf_lo_idx: np.ndarray,
) -> None:
    """Suffix extremes of the block s..e-1 and their bars, for the next block (strict: ties
    keep the later bar)."""
    best_hi = -np.inf
    best_hi_idx = 0.0
    best_lo = np.inf
    best_lo_idx = 0.0
    for j in range(e - 1, s - 1, -1):
        hv = high[j]
        lv = low[j]
        jf = float(j)
        best_hi_idx += np.float64(hv > best_hi) * (jf - best_hi_idx)
        best_lo_idx += np.float64(lv < best_lo) * (jf - best_lo_idx)
        best_hi = max(best_hi, hv)
        best_lo = min(best_lo, lv)
        suf_hi[j - s] = best_hi
        suf_hi_idx[j - s] = best_hi_idx
        suf_lo[j - s] = best_lo
        suf_lo_idx[j - s] = best_lo_idx


@njit(cache=True, parallel=True)
def _aroon_pass(
    high: np.ndarray,
    low: np.ndarray,
    w: int,
    oscillator: bool,
    res_down: np.ndarray,
    res_up: np.ndarray,
    res_osc: np.ndarray,
) -> None:
    """_aroon_range over blocks of bars, in parallel. Blocks start at multiples of the van
    Herk / Gil-Werman block (w + 1 bars), with the previous one's suffix extremes rebuilt from
    the inputs, so the output is bit for bit that of one serial pass, whatever the thread
    count. Outputs that overlap an input or each other run serially."""
    n = high.shape[0]
    if oscillator:
        aliased = _overlaps(res_osc, high) or _overlaps(res_osc, low)
    else:
        aliased = (
            _overlaps(res_down, high)
            or _overlaps(res_down, low)
            or _overlaps(res_up, high)
            or _overlaps(res_up, low)
            or _overlaps(res_down, res_up)
        )
    if aliased:
        _aroon_range(high, low, w, oscillator, res_down, res_up, res_osc, 0, n)
        return
    block = _block_bars(w + 1, 2 * (w + 1))
    for j in prange(-(-n // block)):
        lo = j * block
        hi = min(lo + block, n)
        _aroon_range(high, low, w, oscillator, res_down, res_up, res_osc, lo, hi)


@njit(cache=True)
def _midpoint_range(
    high: np.ndarray, low: np.ndarray, w: int, res: np.ndarray, first: int, stop: int
) -> None:
    """res[t] = (max(high[t-w+1..t]) + min(low[t-w+1..t])) / 2 for first <= t < stop; NaN if
    the window holds one. Any first: the state there is rebuilt from the bars before it."""
    # Same van Herk / Gil-Werman blocks as _aroon_range (of w bars), on values only. A NaN can
    # only reach the extremes of windows that contain it, and those are NaN'd anyway.
    suf_hi = np.full(w + 1, -np.inf)
    suf_lo = np.full(w + 1, np.inf)
    s0 = first - first % w  # the block holding bar first (blocks sit at multiples of w)
    if s0 > 0:
        _midpoint_suffixes(high, low, s0 - w, s0, suf_hi, suf_lo)
    last_nan = -1  # only a NaN among the w - 1 bars before first can still void a window
    for j in range(max(first - w + 1, 0), first):
        if np.isnan(high[j]) or np.isnan(low[j]):
            last_nan = j
    for s in range(s0, stop, w):
        e = min(s + w, stop)
        pre_hi = -np.inf
        pre_lo = np.inf
        for t in range(s, min(first, e)):  # the prefix before first (first block only)
            pre_hi = max(pre_hi, high[t])
            pre_lo = min(pre_lo, low[t])
        for t in range(max(s, first), e):
            hv = high[t]
            lv = low[t]
            if np.isnan(hv) or np.isnan(lv):
                last_nan = t
            pre_hi = max(pre_hi, hv)
            pre_lo = min(pre_lo, lv)
            k = t - s + 1
            mid = (max(pre_hi, suf_hi[k]) + min(pre_lo, suf_lo[k])) / 2.0
            res[t] = mid if t - last_nan >= w else np.nan
        if e < stop:
            _midpoint_suffixes(high, low, s, e, suf_hi, suf_lo)


@njit(cache=True, inline="always")
def _midpoint_suffixes(
    high: np.ndarray, low: np.ndarray, s: int, e: int, suf_hi: np.ndarray, suf_lo: np.ndarray
) -> None:
    """Suffix max of high and min of low of the block s..e-1, for the next block."""
    best_hi = -np.inf
    best_lo = np.inf
    for j in range(e - 1, s - 1, -1):
        best_hi = max(best_hi, high[j])
        best_lo = min(best_lo, low[j])
        suf_hi[j - s] = best_hi
        suf_lo[j - s] = best_lo


@njit(cache=True)
def _ichimoku_range(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    ws: tuple[int, int, int],
    outs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    first: int,
    stop: int,
) -> None:
    """Ichimoku's outputs (conversion, base, span_a, span_b, lagging) for bars first..stop-1."""
    conv, base, span_a, span_b, lagging = outs
    _midpoint_range(high, low, ws[0], conv, first, stop)
    _midpoint_range(high, low, ws[1], base, first, stop)
    _midpoint_range(high, low, ws[2], span_b, first, stop)
    for t in range(first, stop):
        span_a[t] = (conv[t] + base[t]) / 2.0
        lagging[t] = close[t]


@njit(cache=True, parallel=True)
def _ichimoku_pass(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    ws: tuple[int, int, int],
    conv: np.ndarray,
    base: np.ndarray,
    span_a: np.ndarray,
    span_b: np.ndarray,
    lagging: np.ndarray,
) -> None:
    """_ichimoku_range over blocks of bars, in parallel, each block in chunks that stay in
    cache. A midpoint range rebuilds its state at any first bar from the bars before it, so
    the output is bit for bit that of whole-series passes, whatever the thread count. Outputs
    that overlap an input or each other run the whole-series passes in order, serially."""
    n = high.shape[0]
    outs = (conv, base, span_a, span_b, lagging)
    if _ichimoku_aliased(high, low, close, outs):
        _ichimoku_range(high, low, close, ws, outs, 0, n)
        return
    block = _block_bars(ICHIMOKU_CHUNK_BARS, 2 * max(ws[0], ws[1], ws[2]))
    for j in prange(-(-n // block)):
        stop = min((j + 1) * block, n)
        for s in range(j * block, stop, ICHIMOKU_CHUNK_BARS):
            _ichimoku_range(high, low, close, ws, outs, s, min(s + ICHIMOKU_CHUNK_BARS, stop))


@njit(cache=True)
def _ichimoku_aliased(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    outs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> bool:
    """Whether an output overlaps an input or another output."""
    conv, base, span_a, span_b, lagging = outs
    return (
        _overlaps_any(conv, high, low, close, base, span_a, span_b, lagging)
        or _overlaps_any(base, high, low, close, span_a, span_b, lagging, lagging)
        or _overlaps_any(span_a, high, low, close, span_b, lagging, lagging, lagging)
        or _overlaps_any(span_b, high, low, close, lagging, lagging, lagging, lagging)
        or _overlaps_any(lagging, high, low, close, close, close, close, close)
    )


@njit(cache=True)
def _overlaps_any(
    x: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
    e: np.ndarray,
    f: np.ndarray,
    g: np.ndarray,
) -> bool:
    """Whether x overlaps any of a..g."""
    return (
        _overlaps(x, a)
        or _overlaps(x, b)
        or _overlaps(x, c)
        or _overlaps(x, d)
        or _overlaps(x, e)
        or _overlaps(x, f)
        or _overlaps(x, g)
    )
