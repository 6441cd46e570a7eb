"""Rolling-window and exponential kernels: EMA, rolling mean, std and z-score.

Conventions shared by every kernel here:

- Inputs are 1-d float64 arrays; outputs are float64 arrays of the same length, NaN during
  the warm-up (the first ``window - 1`` bars of valid data).
- Each kernel takes an optional ``out`` array. Pass one allocated by numpy
  (``np.empty_like(values)``) on large inputs: arrays allocated inside numba miss transparent
  huge pages (see ``PERF_NOTES.md``). The kernel writes every element of ``out`` and returns it.
- ``ema`` follows TA-Lib for missing values: leading NaNs are skipped (the warm-up starts at
  the first finite value) and a later NaN propagates to every following bar.
- The rolling kernels follow pandas ``rolling(n)`` with ``min_periods=n``: a window holding a
  NaN gives NaN, and the output recovers once the NaN leaves the window.

The rolling kernels keep running sums of deviations from an anchor, and re-anchor (anchor =
the window mean, sums recomputed from scratch) every
``max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * window)`` bars, and at every bar for windows of
at most ``DIRECT_MAX_WINDOW`` bars. Rounding error then stays proportional to
(distance of the anchor from the window mean)² / variance. The schedule alone does not bound
that ratio: a calm window right after a volatile one (a flat stretch after a crash) can sit
1e5 of its own standard deviations from an anchor set while the window was volatile, and the
std lost up to 1e-4 relative. So ``rolling_std`` and ``rolling_zscore`` also re-anchor at
once, at any bar, when the window mean is more than ~32 standard deviations from the anchor
(``s1**2 / w > DRIFT_RATIO * (s2 - s1**2 / w)`` for window w, squared quantities: no sqrt or
division per bar; as ``kernels.volatility`` does for Bollinger bands), unless that distance
is below ``DRIFT_FLOOR`` of the anchor (a few ulps, which re-anchoring cannot remove). The
test runs at every bar: checking every k bars would not keep the bound, because the variance
can collapse in one bar (the last volatile value leaving the window) and the k - 1 bars
before the next check would be written with the ratio unbounded. It costs a multiply, a
compare and a well-predicted branch per bar.

``rolling_std`` / ``rolling_zscore`` run in chunks of ``_CHUNK_BARS`` bars. A vectorised
scan of the chunk (and the window before it) checks that it is all finite and holds no
constant window; such a chunk runs a loop with no NaN or tie bookkeeping, one add per
running sum on the loop-carried chain and no division (1/w and 1/(w - ddof) are hoisted);
other chunks run the general loop, whose arithmetic on finite bars is bit for bit the same,
so which loop ran a bar never changes its output. After a clean chunk the next one runs the
clean loop first and is scanned afterwards, from cache (scanned first, the chunk came from
memory through the scan rather than through the slower loop, which hides the latency: ~6 ms
of ~37 at 10M); if that scan fails, the chunk runs again in the general loop from the state
saved before it. In a clean chunk ``rolling_zscore`` leaves x - mean and the std per bar and
divides in one vectorised loop at the end of the chunk (a scalar division per bar bounded
the serial loop). The loop stops where the drift test fires and the caller re-anchors there.
A re-anchor takes as the new anchor the running mean of the current window (anchor + s1 /
count: its error is about k * eps * max|deviation| / w after k bars, far below the spread,
so the ratio above stays ~0) and recomputes the sums about it in one pass; the first window
(and any window whose running mean is not finite, e.g. after an inf) uses a two-pass mean.
The variance is w * var = s2 - s1**2 / w, clipped at 0; the square root is taken in the
loop, where it overlaps the loop-carried adds (a separate vectorised pass over the output
measured slower).

Measured on 1M-bar random walks at 1e8 and 1e-8, within 2e-12 of a two-pass brute force for
windows 2 to 500 (pandas drifts to 1e-7 at window 3, a running sum re-anchored every 1024
bars to 1e-3 at window 2), and within 1.1e-12 on the volatile-then-calm series of the tests
(windows 5 to 1000, scales 1e-8 to 1e8). The drift re-anchor fires rarely on ordinary data
(per 1M random-walk bars, ~5000 times at window 5, where a window's std is sometimes tiny,
and under 30 from window 20 up), so it changes results only at rounding level there.
``rolling_mean`` skips the drift test: the mean's error is relative to the anchor's
magnitude, not to the spread; its loop (two-pass re-anchors, a countdown for the schedule)
is bit for bit the earlier one. The scheduled re-anchors depend only on the absolute bar
index, the drift test and the anchor only on bars up to the current one, and the chunk scan
only picks between two loops that agree bit for bit, so the kernels are exactly causal:
``f(x[:t])[-1] == f(x)[t-1]`` bit for bit.

``rolling_std`` / ``rolling_zscore`` cut the bars into blocks of whole re-anchor intervals
(``PARALLEL_BLOCK_BARS``, about 65k bars; their absolute positions depend only on the
window) and run the blocks in parallel (``prange``). A block's first bar takes the two-pass
anchor of its window instead of the running mean, so outputs moved by rounding only (at most
1.2e-13 relative for the std on 10M bars, window 20) and stay exactly causal, whatever the
thread count. The other windowed kernels (``kernels.realised``, ``kernels.volatility`` and
others) start their blocks where the serial loop restarts anyway, so theirs are bit for bit
the serial pass.

Speed (10M bars, window 20, numpy-allocated ``out``, interleaved runs on the 2-vCPU machine
of ``PERF_NOTES.md``, min CPU time): ``rolling_std`` ~31 ms (~0.65x ``talib.STDDEV(x, 20,
1)``; 37 ms with the scan before the loop, 1.4x STDDEV before the clean loop),
``rolling_zscore`` ~44 ms (49 ms with the scan first, 52 ms with the division in the serial
loop, 1.7x STDDEV before the clean loop).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

REANCHOR_MIN_BARS = 64
REANCHOR_WINDOWS = 4
DIRECT_MAX_WINDOW = 4
DRIFT_RATIO = 1e3  # re-anchor when (mean - anchor)**2 > DRIFT_RATIO * variance
DRIFT_FLOOR = 1e-13  # ... and |mean - anchor| > DRIFT_FLOOR * |anchor|

_CHUNK_BARS = 2048  # bars per scan choosing the loop of rolling_std / rolling_zscore

# Windowed kernels cut long series into blocks of about this many bars and run the blocks in
# parallel (``prange``). A block starts where the serial loop's state owes nothing to earlier
# bars (a scheduled re-anchor, a chunk start), so the output is bit for bit the serial one,
# whatever the thread count, and stays exactly causal.
PARALLEL_BLOCK_BARS = 1 << 16


@njit(cache=True)
def _block_bars(period: int, min_bars: int) -> int:
    """Bars per parallel block: a multiple of ``period`` (the serial loop's restart period,
    e.g. the re-anchor interval) of at least ``max(PARALLEL_BLOCK_BARS, min_bars)``."""
    want = max(PARALLEL_BLOCK_BARS, min_bars)
    return period * max(1, -(-want // period))


@njit(cache=True)
def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the memory of a and b overlaps."""
    a0 = a.ctypes.data
    b0 = b.ctypes.data
    return a0 < b0 + b.nbytes and b0 < a0 + a.nbytes


@njit(cache=True)
def _first_finite(values: np.ndarray) -> int:
    """Index of the first non-NaN value, or len(values) if there is none."""
    for i in range(values.shape[0]):
        if not np.isnan(values[i]):
            return i
    return values.shape[0]


@njit(cache=True, inline="always")
def _anchor_window(values: np.ndarray, lo: int, hi: int) -> tuple[float, float, float, int]:
    """(anchor, s1, s2, NaN count) of values[lo:hi], anchored at the mean of its finite values.

    Two passes: the mean of the finite values, then the sums of their deviations from it.
    """
    n_nan = 0
    total = 0.0
    count = 0
    for j in range(lo, hi):
        v = values[j]
        if np.isnan(v):
            n_nan += 1
        else:
            total += v
            count += 1
    anchor = total / count if count > 0 else 0.0
    s1 = 0.0
    s2 = 0.0
    for j in range(lo, hi):
        v = values[j]
        if not np.isnan(v):
            d = v - anchor
            s1 += d
            s2 += d * d
    return anchor, s1, s2, n_nan


@njit(cache=True, fastmath={"contract"})
def ema(values: np.ndarray, span_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """EMA (SMA seed, alpha = 2 / (n + 1)); matches ``talib.EMA(values, span_bars)``."""
    if span_bars < 1:
        raise ValueError("ema: span_bars must be >= 1")
    n = values.shape[0]
    if out is None:
        res = np.empty(n)
    else:
        res = out
    start = _first_finite(values)
    seed_end = start + span_bars - 1
    if seed_end >= n:
        res[:] = np.nan
        return res
    res[:seed_end] = np.nan
    # TA-Lib seeds with the plain mean of the first span_bars values.
    total = 0.0
    for i in range(start, seed_end + 1):
        total += values[i]
    prev = total / span_bars
    res[seed_end] = prev
    alpha = 2.0 / (span_bars + 1.0)
    for i in range(seed_end + 1, n):
        prev = (values[i] - prev) * alpha + prev
        res[i] = prev
    return res


@njit(cache=True, inline="always", error_model="numpy")
def _anchor_window_fast(values: np.ndarray, lo: int, hi: int) -> tuple[float, float, float, int]:
    """As ``_anchor_window``, with two accumulators per sum (a shorter latency chain)."""
    t0 = 0.0
    t1 = 0.0
    c0 = 0
    c1 = 0
    j = lo
    while j + 2 <= hi:
        v0 = values[j]
        v1 = values[j + 1]
        ok0 = v0 == v0
        ok1 = v1 == v1
        t0 += v0 if ok0 else 0.0
        t1 += v1 if ok1 else 0.0
        c0 += 1 if ok0 else 0
        c1 += 1 if ok1 else 0
        j += 2
    if j < hi:
        v0 = values[j]
        ok0 = v0 == v0
        t0 += v0 if ok0 else 0.0
        c0 += 1 if ok0 else 0
    count = c0 + c1
    anchor = (t0 + t1) / count if count > 0 else 0.0
    a0 = 0.0
    a1 = 0.0
    q0 = 0.0
    q1 = 0.0
    j = lo
    while j + 2 <= hi:
        v0 = values[j]
        v1 = values[j + 1]
        d0 = v0 - anchor if v0 == v0 else 0.0
        d1 = v1 - anchor if v1 == v1 else 0.0
        a0 += d0
        a1 += d1
        q0 += d0 * d0
        q1 += d1 * d1
        j += 2
    if j < hi:
        v0 = values[j]
        d0 = v0 - anchor if v0 == v0 else 0.0
        a0 += d0
        q0 += d0 * d0
    return anchor, a0 + a1, q0 + q1, (hi - lo) - count


@njit(cache=True, error_model="numpy")
def _rolling_mean_pass(values: np.ndarray, window_bars: int, res: np.ndarray) -> np.ndarray:
    """Loop of rolling_mean: the running sum of deviations from the anchor, and its mean."""
    n = values.shape[0]
    w = window_bars
    interval = 1 if w <= DIRECT_MAX_WINDOW else max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)
    anchor = 0.0
    s1 = 0.0  # sum of (x - anchor) over the finite values of the window
    n_nan = 0  # NaNs inside the window
    countdown = 1  # bars to the next scheduled re-anchor (i % interval == 0)
    for i in range(n):
        countdown -= 1
        if countdown == 0:
            countdown = interval
            anchor, s1, _, n_nan = _anchor_window(values, max(0, i - w + 1), i + 1)
        else:
            x = values[i]
            if np.isnan(x):
                n_nan += 1
            else:
                s1 += x - anchor
            if i >= w:
                old = values[i - w]
                if np.isnan(old):
                    n_nan -= 1
                else:
                    s1 -= old - anchor
        if i < w - 1 or n_nan > 0:
            res[i] = np.nan
        else:
            res[i] = anchor + s1 / w
    return res


@njit(cache=True, inline="always", error_model="numpy")
def _run_length(values: np.ndarray, i: int, w: int) -> int:
    """Length, capped at w, of the run of identical values ending at bar i."""
    run = 1
    x = values[i]
    while run < w and i - run >= 0 and values[i - run] == x:
        run += 1
    return run


@njit(cache=True, inline="always", error_model="numpy")
def _is_clean(values: np.ndarray, lo: int, hi: int, w: int) -> bool:
    """True if values[lo - w:hi] are all finite and no window ending in lo..hi-1 is constant.

    Such bars need neither NaN bookkeeping nor pandas' exact-zero rule, so they take the
    branch-free loop. The scans are vectorised; the run count only runs if a tie exists.
    """
    a = values[max(0, lo - w) : hi]
    flag = 0
    for j in range(1, a.shape[0]):
        v = a[j]
        flag |= ((v - v) != 0.0) | (v == a[j - 1])  # NaN / inf, or a tie
    if (a[0] - a[0]) != 0.0:
        return False
    if flag == 0:
        return True
    run = 1
    for j in range(1, a.shape[0]):
        v = a[j]
        if (v - v) != 0.0:
            return False
        run = run + 1 if v == a[j - 1] else 1
        if run >= w:
            return False
    return True


@njit(cache=True, inline="always", error_model="numpy")
def _sums_about(window: np.ndarray, anchor: float) -> tuple[float, float, int]:
    """(s1, s2, NaN count): sums of (x - anchor) and its square over the finite values."""
    a0 = 0.0
    a1 = 0.0
    q0 = 0.0
    q1 = 0.0
    n_nan = 0
    m = window.shape[0]
    for j in range(0, m - 1, 2):
        v0 = window[j]
        v1 = window[j + 1]
        ok0 = not np.isnan(v0)
        ok1 = not np.isnan(v1)
        d0 = v0 - anchor if ok0 else 0.0
        d1 = v1 - anchor if ok1 else 0.0
        a0 += d0
        a1 += d1
        q0 += d0 * d0
        q1 += d1 * d1
        n_nan += (0 if ok0 else 1) + (0 if ok1 else 1)
    if m % 2 == 1:
        v0 = window[m - 1]
        if np.isnan(v0):
            n_nan += 1
        else:
            d0 = v0 - anchor
            a0 += d0
            q0 += d0 * d0
    return a0 + a1, q0 + q1, n_nan


@njit(cache=True, inline="always", error_model="numpy")
def _span_clean(
    new: np.ndarray,
    gone: np.ndarray,
    out: np.ndarray,
    tmp: np.ndarray,
    anchor: float,
    s1: float,
    s2: float,
    inv_w: float,
    inv_dof: float,
    floor: float,
    zscore: bool,
) -> tuple[float, float, int]:
    """Bars new[j] (leaving the window: gone[j]) about a fixed anchor, in a clean stretch.

    Writes the std to out (zscore: x - mean to out and the std to tmp; the caller's
    vectorised ``_finish_clean`` divides, for the whole chunk). Stops at the first bar
    whose window mean has drifted from the anchor, before writing it, and returns its index
    (len(new) if none): the caller re-anchors there. On the same bars the arithmetic is bit
    for bit that of ``_span_general``, so no output depends on which loop ran it (causality).
    """
    for j in range(new.shape[0]):
        x = new[j]
        d_new = x - anchor
        d_old = gone[j] - anchor
        # One add per sum on the loop-carried chain, and (x - old)(x + old - 2 anchor) has no
        # cancellation, unlike d_new**2 - d_old**2.
        step = d_new - d_old
        s1 += step
        s2 += step * (d_new + d_old)
        offset = s1 * s1 * inv_w  # w * (mean - anchor)**2
        centred = s2 - offset  # w * (population variance)
        if offset > DRIFT_RATIO * centred and offset > floor:
            return s1, s2, j
        var = centred * inv_dof
        if var < 0.0:
            var = 0.0
        std = np.sqrt(var)
        if zscore:
            out[j] = (x - anchor) - s1 * inv_w
            tmp[j] = std
        else:
            out[j] = std
    return s1, s2, new.shape[0]


@njit(cache=True, error_model="numpy")
def _finish_clean(out: np.ndarray, tmp: np.ndarray) -> None:
    """z = (x - mean) / std from what ``_span_clean`` left (out: x - mean, tmp: std).

    A scalar division per bar in the serial loop is bound by the divider's throughput (~1.4 ns
    a bar here, measured); vectorised here it costs about half. The operations are the same,
    so the outputs are bit for bit those of ``_span_general``. (The square root stays in the
    serial loop: moved here too it measured slower, as it overlaps the loop-carried chain.)
    """
    for j in range(out.shape[0]):
        std = tmp[j]
        out[j] = out[j] / std if std > 0.0 else np.nan


@njit(cache=True, inline="always", error_model="numpy")
def _span_general(
    new: np.ndarray,
    gone: np.ndarray,
    out: np.ndarray,
    anchor: float,
    s1: float,
    s2: float,
    n_nan: int,
    run: int,
    prev: float,
    w: int,
    inv_w: float,
    inv_dof: float,
    floor: float,
    zscore: bool,
) -> tuple[float, float, int, int]:
    """``_span_clean`` with NaNs in the window and pandas' exact-zero rule.

    ``run`` is the length of the run of identical values ending at the bar before new[0] and
    ``prev`` that bar's value.
    """
    for j in range(new.shape[0]):
        x = new[j]
        old = gone[j]
        x_ok = not np.isnan(x)
        old_ok = not np.isnan(old)
        # A NaN contributes 0 to the sums: on finite values the arithmetic of _span_clean.
        d_new = x - anchor if x_ok else 0.0
        d_old = old - anchor if old_ok else 0.0
        step = d_new - d_old
        s1 += step
        s2 += step * (d_new + d_old)
        n_nan += (0 if x_ok else 1) - (0 if old_ok else 1)
        run = run + 1 if x == prev else 1
        prev = x
        offset = s1 * s1 * inv_w
        centred = s2 - offset
        if offset > DRIFT_RATIO * centred and n_nan == 0 and offset > floor:
            return s1, s2, n_nan, j
        var = centred * inv_dof
        if var < 0.0 or run >= w:
            var = 0.0
        std = np.sqrt(var)
        if n_nan > 0:
            out[j] = np.nan
        elif zscore:
            out[j] = ((x - anchor) - s1 * inv_w) / std if std > 0.0 else np.nan
        else:
            out[j] = std
    return s1, s2, n_nan, new.shape[0]


@njit(cache=True, error_model="numpy")
def _chunk_clean(
    values: np.ndarray,
    res: np.ndarray,
    tmp: np.ndarray,
    c0: int,
    c1: int,
    anchor: float,
    s1: float,
    s2: float,
    n_nan: int,
    reanchor: int,
    stepped: bool,
    fresh: int,
    w: int,
    interval: int,
    inv_w: float,
    inv_dof: float,
    floor_w: float,
    zscore: bool,
) -> tuple[float, float, float, int, int, bool]:
    """Bars c0..c1-1 of ``_rolling_var_pass`` in a chunk that ``_is_clean`` passed.

    The loop of the general chunks minus the NaN and run bookkeeping. It returns the state
    (anchor, s1, s2, NaN count, next re-anchor, stepped) rather than updating the caller's,
    so the caller can drop it when the chunk turns out not to be clean. Same operations on
    every bar, so the outputs are bit for bit those of the general loop.
    """
    i = c0
    while i < c1:
        if i == reanchor:
            if i != fresh:
                # The new anchor: the running mean of this bar's window (see the module
                # docstring), then the sums about it in one exact pass; the two-pass mean if
                # it is not finite.
                if not stepped:
                    s1 += (values[i] - anchor) - (values[i - w] - anchor)
                anchor += s1 / (w - n_nan)
                if np.isfinite(anchor):
                    s1, s2, n_nan = _sums_about(values[i - w + 1 : i + 1], anchor)
                else:
                    anchor, s1, s2, n_nan = _anchor_window_fast(values, i - w + 1, i + 1)
            var = (s2 - s1 * s1 * inv_w) * inv_dof
            if var < 0.0:
                var = 0.0
            std = np.sqrt(var)
            if zscore:  # as _span_clean: _finish_clean below divides
                res[i] = (values[i] - anchor) - s1 * inv_w
                tmp[i - c0] = std
            else:
                res[i] = std
            i += 1
            reanchor = (i + interval - 1) // interval * interval  # next multiple
            stepped = False
            continue
        hi = min(c1, reanchor)
        s1, s2, stop = _span_clean(
            values[i:hi],
            values[i - w : hi - w],
            res[i:hi],
            tmp[i - c0 : hi - c0],
            anchor,
            s1,
            s2,
            inv_w,
            inv_dof,
            floor_w * (anchor * anchor),
            zscore,
        )
        i += stop
        if i < hi:
            reanchor = i  # the window mean drifted from the anchor: re-anchor now
            stepped = True  # ... and the sums already include bar i
    if zscore:
        _finish_clean(res[c0:c1], tmp[: c1 - c0])
    return anchor, s1, s2, n_nan, reanchor, stepped


@njit(cache=True, error_model="numpy", parallel=True)
def _rolling_var_pass(
    values: np.ndarray, window_bars: int, ddof: int, zscore: bool, res: np.ndarray
) -> np.ndarray:
    """Loop of rolling_std (zscore False) and rolling_zscore (True, ddof 0), in parallel
    blocks of whole re-anchor intervals. Each block starts with a two-pass anchor of its first
    window, so a bar's output depends only on its block (absolute bar indices), not on the
    thread count or the series length: exactly causal. An output overlapping the input gets a
    copy of the input to read (the loop reads bar i - w after writing it)."""
    n = values.shape[0]
    w = window_bars
    if w - ddof <= 0 or n < w:
        res[:] = np.nan
        return res
    if _overlaps(res, values):
        values = values.copy()
    res[: w - 1] = np.nan
    interval = 1 if w <= DIRECT_MAX_WINDOW else max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)
    block = _block_bars(interval, 2 * w)
    for j in prange(-(-n // block)):
        _rolling_var_range(
            values, w, ddof, zscore, res, max(j * block, w - 1), min((j + 1) * block, n)
        )
    return res


@njit(cache=True, error_model="numpy")
def _rolling_var_range(
    values: np.ndarray, w: int, ddof: int, zscore: bool, res: np.ndarray, first: int, n: int
) -> None:
    """Bars first..n-1 of rolling_std / rolling_zscore (first >= w - 1).

    Chunks of _CHUNK_BARS bars: a vectorised scan (``_is_clean``; after a clean chunk, run
    after the clean loop rather than before it) picks the loop for the chunk, which then runs
    between re-anchors: scheduled (bar ``first``, then every multiple of interval), or where
    the span loop stops on drift. Bar ``first`` takes the two-pass anchor of its window.
    """
    interval = 1 if w <= DIRECT_MAX_WINDOW else max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)
    inv_w = 1.0 / w
    inv_dof = 1.0 / (w - ddof)
    floor_w = DRIFT_FLOOR * DRIFT_FLOOR * w  # |mean - anchor| > DRIFT_FLOOR |anchor|, squared
    tmp = np.empty(_CHUNK_BARS)  # zscore: the clean loop's std per bar of the chunk
    anchor, s1, s2, n_nan = _anchor_window_fast(values, first - w + 1, first + 1)
    i = first  # next bar
    reanchor = first  # next bar to re-anchor at
    stepped = False  # whether the sums include bar `reanchor` already
    verified = False  # whether the previous chunk was clean
    while i < n:
        c0 = i
        c1 = min(n, i + _CHUNK_BARS)
        # After a clean chunk, run the clean loop first and scan the chunk after it, while it
        # is still in cache: scanned first, it was read from memory by the scan and not by
        # the (slower) loop, which hides the memory latency (~15% of the kernel, measured).
        # If the scan fails, the state from before the chunk is still here: the general loop
        # runs the chunk again and overwrites its outputs.
        if verified or _is_clean(values, i, c1, w):
            state = _chunk_clean(
                values,
                res,
                tmp,
                c0,
                c1,
                anchor,
                s1,
                s2,
                n_nan,
                reanchor,
                stepped,
                first,
                w,
                interval,
                inv_w,
                inv_dof,
                floor_w,
                zscore,
            )
            if not verified or _is_clean(values, c0, c1, w):
                anchor, s1, s2, n_nan, reanchor, stepped = state
                i = c1
                verified = True
                continue
        verified = False
        while i < c1:
            if i == reanchor:
                if i != first:
                    # The new anchor: the running mean of this bar's window (off from the true
                    # mean by far less than the spread: see the module docstring), then the
                    # sums about it in one exact pass; the two-pass mean if it is not finite.
                    if not stepped:
                        x = values[i]
                        old = values[i - w]
                        x_ok = not np.isnan(x)
                        old_ok = not np.isnan(old)
                        s1 += (x - anchor if x_ok else 0.0) - (old - anchor if old_ok else 0.0)
                        n_nan += (0 if x_ok else 1) - (0 if old_ok else 1)
                    if n_nan < w:
                        anchor += s1 / (w - n_nan)
                    if np.isfinite(anchor):
                        s1, s2, n_nan = _sums_about(values[i - w + 1 : i + 1], anchor)
                    else:
                        anchor, s1, s2, n_nan = _anchor_window_fast(values, i - w + 1, i + 1)
                var = (s2 - s1 * s1 * inv_w) * inv_dof
                if var < 0.0 or _run_length(values, i, w) >= w:
                    var = 0.0
                std = np.sqrt(var)
                if n_nan > 0:
                    res[i] = np.nan
                elif zscore:
                    res[i] = ((values[i] - anchor) - s1 * inv_w) / std if std > 0.0 else np.nan
                else:
                    res[i] = std
                i += 1
                reanchor = (i + interval - 1) // interval * interval  # next multiple
                stepped = False
                continue
            hi = min(c1, reanchor)
            s1, s2, n_nan, stop = _span_general(
                values[i:hi],
                values[i - w : hi - w],
                res[i:hi],
                anchor,
                s1,
                s2,
                n_nan,
                _run_length(values, i - 1, w),
                values[i - 1],
                w,
                inv_w,
                inv_dof,
                floor_w * (anchor * anchor),
                zscore,
            )
            i += stop
            if i < hi:
                reanchor = i  # the window mean drifted from the anchor: re-anchor now
                stepped = True  # ... and the sums already include bar i


@njit(cache=True)
def rolling_mean(values: np.ndarray, window_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """Rolling mean; matches pandas ``Series(values).rolling(window_bars).mean()``."""
    if window_bars < 1:
        raise ValueError("rolling_mean: window_bars must be >= 1")
    if out is None:
        res = np.empty(values.shape[0])
    else:
        res = out
    return _rolling_mean_pass(values, window_bars, res)


@njit(cache=True)
def rolling_std(
    values: np.ndarray, window_bars: int, ddof: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Rolling std; matches pandas ``Series(values).rolling(window_bars).std(ddof=ddof)``."""
    if window_bars < 1:
        raise ValueError("rolling_std: window_bars must be >= 1")
    if ddof < 0:
        raise ValueError("rolling_std: ddof must be >= 0")
    if out is None:
        res = np.empty(values.shape[0])
    else:
        res = out
    return _rolling_var_pass(values, window_bars, ddof, False, res)


@njit(cache=True)
def rolling_zscore(
    values: np.ndarray, window_bars: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Matches pandas ``(s - s.rolling(n).mean()) / s.rolling(n).std(ddof=0)``; NaN if std is 0."""
    if window_bars < 1:
        raise ValueError("rolling_zscore: window_bars must be >= 1")
    if out is None:
        res = np.empty(values.shape[0])
    else:
        res = out
    return _rolling_var_pass(values, window_bars, 0, True, res)
