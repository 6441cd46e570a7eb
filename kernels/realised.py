"""Rolling realised volatility, per bar: close-to-close, Parkinson and Garman–Klass.

Split out of ``kernels.volatility``, which re-exports the public kernels, so
``from kernels.volatility import parkinson_volatility`` keeps working. Conventions of
``kernels.volatility``: 1-d float64 inputs, a float64 output of the same length, NaN during
warm-up and while the window holds a NaN (pandas ``rolling(n)`` with ``min_periods=n``),
positional arguments, an optional numpy-allocated ``out`` that the kernel fills and returns,
and numpy's error model (a zero price gives inf or NaN, never an exception).

Volatility is returned **per bar** (the standard deviation of one bar's log return, not
annualised). Annualise with ``vol * np.sqrt(bars_per_year)``, e.g. ``np.sqrt(365 * 24)`` for
hourly crypto bars.

Each estimator is a rolling statistic of one log term per bar (``log(c_t / c_{t-1})``,
``log(h / l)**2``, or ``0.5 log(h / l)**2 - (2 ln 2 - 1) log(c / o)**2``): the std with
ddof=1 for close-to-close, the mean for the range estimators. The bars go in chunks of
``VOL_CHUNK_BARS``. Per chunk, one vectorised loop computes the log terms into a
cache-resident buffer (fdlibm's log, within 1 ulp of libm's); a serial loop keeps running
sums of the terms' deviations from an anchor, re-anchored at the two-pass window mean every
``max(64, 4 w)`` bars (every bar for w <= 4) and, for the std, as soon as the window mean
drifts more than ~32 standard deviations from the anchor (``kernels.rolling``'s rule); a
vectorised loop takes the square roots. The numerics are ``kernels.rolling``'s scheme with
``kernels.volatility``'s Bollinger re-anchor (the two-pass mean, from scratch).

A chunk whose terms (and the w before it) are all finite and hold no constant window (a
vectorised scan, ``kernels.rolling._is_clean``) takes a serial loop with no NaN or run
bookkeeping. Its scheduled re-anchors owe nothing to the running sums, so they are computed
first, in a loop whose iterations overlap, rather than stalling the loop-carried chain every
interval. Other chunks take the general loop. On the same bar both do the same operations,
so which loop ran a bar never changes its output: the kernels are exactly causal,
``f(x[:t])[-1] == f(x)[t-1]`` bit for bit, and their outputs are bit for bit those of the
single general loop used before (measured on 10M bars and on NaN / inf / tie / calm-after-
volatile fixtures).

Speed (10M bars, window 20, numpy-allocated ``out``, min of 15 interleaved runs, CPU time,
on the 2-vCPU machine of ``PERF_NOTES.md``): Parkinson ~55 ms (was ~68), Garman–Klass
~76 ms (was ~95), close-to-close ~74 ms (was ~95). About 21 ms of each is the vectorised log
(two logs for Garman–Klass), which is compute-bound.

Parallel blocks: the bars are cut into blocks of whole re-anchor intervals (about 65k bars,
``kernels.rolling._block_bars``) that run on every numba thread. A block starts on a
scheduled re-anchor, where the sums restart from the window, and rebuilds the w terms and the
run of equal terms before it, so the output is bit for bit one serial pass. On 2 threads
(median of 7, 10M bars, same script): close-to-close 77 -> 45 ms, Parkinson 66 -> 38 ms,
Garman–Klass 86 -> 49 ms.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir as llvm_ir
from numba import njit, prange, types
from numba.extending import intrinsic

from kernels._windows import _overlaps
from kernels.rolling import (
    DIRECT_MAX_WINDOW,
    DRIFT_FLOOR,
    DRIFT_RATIO,
    REANCHOR_MIN_BARS,
    REANCHOR_WINDOWS,
    _anchor_window,
    _block_bars,
    _is_clean,
)

_LN2 = np.log(2.0)
_PARKINSON_FACTOR = 1.0 / (4.0 * _LN2)
_GARMAN_KLASS_OC = 2.0 * _LN2 - 1.0


@njit(cache=True, error_model="numpy")
def _buffer(n: int, out: np.ndarray | None) -> np.ndarray:
    """`out` when given, else a new array of n float64 (as ``kernels.volatility._buffer``)."""
    if out is None:
        return np.empty(n)
    return out


# The estimators work through the bars in chunks of this many: the log terms of a chunk are
# computed in one vectorized loop into a cache-resident buffer, then the running sums go
# through it serially, then the square roots are taken in one vectorized loop.
VOL_CHUNK_BARS = 1024


_KIND_CLOSE_TO_CLOSE = 0
_KIND_PARKINSON = 1
_KIND_GARMAN_KLASS = 2

# fdlibm / musl log: x = 2**k * (1 + f), 1 + f in [sqrt(2)/2, sqrt(2)),
# log(1 + f) = f - f**2 / 2 + s * (f**2 / 2 + R(s**2)), s = f / (2 + f); error < 1 ulp.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_SQRT_HALF_BITS = 0x3FE6A09E00000000
_MIN_NORMAL_BITS = 0x0010000000000000
_INF_BITS = 0x7FF0000000000000


@intrinsic
def _float_bits(typingctx, x):
    """The IEEE-754 bits of a float64 as an int64 (a bitcast: free, and it vectorizes)."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_float(typingctx, x):
    """The float64 whose IEEE-754 bits are the int64 x."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(cache=True, error_model="numpy")
def _log_ratio(num: np.ndarray, den: np.ndarray, dst: np.ndarray) -> None:
    """dst[j] = log(num[j] / den[j]), vectorized (numba's np.log is a scalar libm call).

    Ratios that are not positive normal floats (0, negative, inf, NaN, subnormal) go through
    np.log afterwards; the others get fdlibm's log, within 1 ulp of libm's.
    """
    m = dst.shape[0]
    bad = 0
    for j in range(m):
        x = num[j] / den[j]
        ix = _float_bits(x)
        bad += (ix < _MIN_NORMAL_BITS) | (ix >= _INF_BITS)
        k = (ix - _SQRT_HALF_BITS) >> 52
        f = _bits_float(ix - (k << 52)) - 1.0
        s = f / (2.0 + f)
        z = s * s
        w = z * z
        t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
        t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
        hfsq = 0.5 * f * f
        dk = float(k)
        dst[j] = s * (hfsq + t1 + t2) + dk * _LN2_LO - hfsq + f + dk * _LN2_HI
    if bad > 0:
        for j in range(m):
            x = num[j] / den[j]
            ix = _float_bits(x)
            if ix < _MIN_NORMAL_BITS or ix >= _INF_BITS:
                dst[j] = np.log(x)


@njit(cache=True, error_model="numpy")
def _realised_vol_range(
    kind: int,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
    window_bars: int,
    res: np.ndarray,
    first: int,
    stop: int,
) -> None:
    """One estimator into res, chunk by chunk: (close) or (high, low) or (open, high, low, close).

    Running sums of the terms' deviations from an anchor (module docstring): the mean for the
    range estimators, the std with ddof=1 of the log returns for close-to-close, pandas'
    exact zero on a constant window. Either serial loop (clean or general) leaves in res the
    window mean (std: w times the variance), and a vectorised loop takes the square roots.
    """
    w = window_bars
    std_mode = kind == _KIND_CLOSE_TO_CLOSE
    ddof = 1
    interval = 1 if w <= DIRECT_MAX_WINDOW else max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)
    chunk = VOL_CHUNK_BARS
    terms = np.empty(chunk + w)  # terms[u] is the term of bar s - w + u
    scratch = np.empty(max(chunk, w))  # Garman-Klass's log(close / open) terms
    starts = np.empty((3, chunk + 1))  # the clean loop's re-anchors: anchor, s1, s2
    anchor = 0.0
    s1 = 0.0
    s2 = 0.0
    n_nan = 0
    run = 0
    prev = np.nan
    countdown = 1
    if first > 0:
        # A block after the first: the terms of the w bars before it, and the general loop's
        # run state there (capped at w, as at the end of a clean chunk).
        _fill_terms(kind, a, b, c, d, first - w, first, terms[:w], scratch)
        prev = terms[w - 1]
        run = 1
        while run < w and terms[w - 1 - run] == prev:
            run += 1
    for s in range(first, stop, chunk):
        e = min(s + chunk, stop)
        m = e - s
        if s > first:
            for u in range(w):  # the last w terms of the previous chunk (forward copy)
                terms[u] = terms[chunk + u]
        _fill_terms(kind, a, b, c, d, s, e, terms[w : w + m], scratch)
        off = w - s
        out = res[s:e]
        if s >= w and _is_clean(terms, w, w + m, w):
            # The terms of the chunk and of the window before it are finite and no window is
            # constant: no NaN count, no run, and the output needs no test. The scheduled
            # re-anchors of the chunk (bars where the countdown reaches 0) owe nothing to the
            # running sums, so they are computed first, in a loop whose iterations overlap,
            # instead of stalling the serial loop on their own latency chains.
            k = 0
            for i in range(s + countdown - 1, e, interval):
                start_anchor, start_s1, start_s2, _ = _anchor_window(
                    terms, i - w + 1 + off, i + 1 + off
                )
                starts[0, k] = start_anchor
                starts[1, k] = start_s1
                starts[2, k] = start_s2
                k += 1
            n_nan = 0
            k = 0
            if std_mode:
                for i in range(s, e):
                    countdown -= 1
                    if countdown == 0:
                        countdown = interval
                        anchor = starts[0, k]
                        s1 = starts[1, k]
                        s2 = starts[2, k]
                        k += 1
                    else:
                        d_new = terms[i + off] - anchor
                        d_old = terms[i - w + off] - anchor
                        step = d_new - d_old
                        s1 += step
                        s2 += step * (d_new + d_old)
                    mean_dev = s1 / w
                    centred = s2 - s1 * mean_dev
                    if s1 * mean_dev > DRIFT_RATIO * centred and abs(mean_dev) > DRIFT_FLOOR * abs(
                        anchor
                    ):
                        anchor, s1, s2, n_nan = _anchor_window(terms, i - w + 1 + off, i + 1 + off)
                        mean_dev = s1 / w
                        centred = s2 - s1 * mean_dev
                    res[i] = centred
                for u in range(m):
                    var = out[u] / (w - ddof)
                    if var < 0.0:
                        var = 0.0
                    out[u] = np.sqrt(var)
            else:
                for i in range(s, e):
                    countdown -= 1
                    if countdown == 0:
                        countdown = interval
                        anchor = starts[0, k]
                        s1 = starts[1, k]
                        k += 1
                    else:
                        s1 += (terms[i + off] - anchor) - (terms[i - w + off] - anchor)
                    # The division off the loop-carried chain costs less here than in the
                    # vectorised loop below (measured), which would need the anchor stored.
                    res[i] = anchor + s1 / w
                if kind == _KIND_PARKINSON:
                    for u in range(m):
                        mean = out[u]
                        out[u] = (
                            np.sqrt(max(mean, 0.0) * _PARKINSON_FACTOR)
                            if not np.isnan(mean)
                            else np.nan
                        )
                else:
                    for u in range(m):
                        mean = out[u]
                        out[u] = np.sqrt(max(mean, 0.0)) if not np.isnan(mean) else np.nan
            # The general loop's run state (capped at w: it only ever meets `run >= w`).
            prev = terms[e - 1 + off]
            run = 1
            while run < w and terms[e - 1 + off - run] == prev:
                run += 1
            continue
        for i in range(s, e):
            x = terms[i + off]
            if x == prev:
                run += 1
            else:
                run = 1
            prev = x
            countdown -= 1
            if countdown == 0:
                countdown = interval
                anchor, s1, s2, n_nan = _anchor_window(terms, max(0, i - w + 1) + off, i + 1 + off)
            else:
                old = terms[i - w + off] if i >= w else np.nan
                if not np.isnan(x) and not np.isnan(old):
                    # The usual bar: one add per sum on the loop-carried chain (adding and
                    # then removing would be two), and (x - old)(x + old - 2 anchor) has no
                    # cancellation, unlike d_new**2 - d_old**2.
                    d_new = x - anchor
                    d_old = old - anchor
                    step = d_new - d_old
                    s1 += step
                    if std_mode:
                        s2 += step * (d_new + d_old)
                else:
                    if np.isnan(x):
                        n_nan += 1
                    else:
                        dx = x - anchor
                        s1 += dx
                        s2 += dx * dx
                    if i >= w:
                        if np.isnan(old):
                            n_nan -= 1
                        else:
                            dx = old - anchor
                            s1 -= dx
                            s2 -= dx * dx
            if i < w - 1 or n_nan > 0:
                res[i] = np.nan
                continue
            mean_dev = s1 / w
            if not std_mode:
                res[i] = anchor + mean_dev
                continue
            centred = s2 - s1 * mean_dev
            if s1 * mean_dev > DRIFT_RATIO * centred and abs(mean_dev) > DRIFT_FLOOR * abs(anchor):
                anchor, s1, s2, n_nan = _anchor_window(terms, i - w + 1 + off, i + 1 + off)
                mean_dev = s1 / w
                centred = s2 - s1 * mean_dev
            res[i] = 0.0 if run >= w else centred  # var = centred / (w - ddof), below
        if kind == _KIND_CLOSE_TO_CLOSE:
            for u in range(m):
                var = out[u] / (w - ddof)
                if var < 0.0:
                    var = 0.0
                out[u] = np.sqrt(var)
        elif kind == _KIND_PARKINSON:
            for u in range(m):
                # The terms are >= 0, so a negative mean can only be rounding: clamp it to 0.
                mean = out[u]
                out[u] = (
                    np.sqrt(max(mean, 0.0) * _PARKINSON_FACTOR) if not np.isnan(mean) else np.nan
                )
        else:
            for u in range(m):
                mean = out[u]
                out[u] = np.sqrt(max(mean, 0.0)) if not np.isnan(mean) else np.nan


@njit(cache=True, error_model="numpy")
def _fill_terms(
    kind: int,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
    s: int,
    e: int,
    dst: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """dst[u] = the estimator's term of bar s + u, for s <= bar < e (bar 0 of close-to-close:
    NaN, it has no return)."""
    m = e - s
    if kind == _KIND_CLOSE_TO_CLOSE:
        # log of the ratio, not a difference of logs: full precision at any price scale.
        lo = max(s, 1)
        _log_ratio(a[lo:e], a[lo - 1 : e - 1], dst[lo - s : m])
        if s == 0:
            dst[0] = np.nan
    elif kind == _KIND_PARKINSON:
        _log_ratio(a[s:e], b[s:e], dst)
        for u in range(m):
            r = dst[u]
            dst[u] = r * r
    else:
        _log_ratio(b[s:e], c[s:e], dst)
        co_terms = scratch[:m]
        _log_ratio(d[s:e], a[s:e], co_terms)
        for u in range(m):
            hl = dst[u]
            co = co_terms[u]
            dst[u] = 0.5 * hl * hl - _GARMAN_KLASS_OC * co * co


@njit(cache=True, error_model="numpy", parallel=True)
def _realised_vol_pass(
    kind: int,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
    window_bars: int,
    res: np.ndarray,
) -> None:
    """_realised_vol_range over blocks of bars, in parallel. Each block starts on a scheduled
    re-anchor, where the state owes nothing to earlier bars, so the output is bit for bit that
    of one serial pass, whatever the thread count. A block (and a chunk) reads bars before it
    that an output overlapping an input would have overwritten: the inputs are copied then."""
    n = res.shape[0]
    w = window_bars
    if _overlaps(res, a) or _overlaps(res, b) or _overlaps(res, c) or _overlaps(res, d):
        a = a.copy()
        b = b.copy()
        c = c.copy()
        d = d.copy()
    interval = 1 if w <= DIRECT_MAX_WINDOW else max(REANCHOR_MIN_BARS, REANCHOR_WINDOWS * w)
    block = _block_bars(interval, 2 * w)
    for j in prange(-(-n // block)):
        _realised_vol_range(kind, a, b, c, d, w, res, j * block, min((j + 1) * block, n))


@njit(cache=True, error_model="numpy")
def close_to_close_volatility(
    close: np.ndarray, window_bars: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Per-bar vol; matches pandas ``np.log(c).diff().rolling(n).std(ddof=1)``."""
    # window_bars counts returns, so the first value sits at bar window_bars (n + 1 closes).
    if window_bars < 2:
        raise ValueError("close_to_close_volatility: window_bars must be >= 2")
    res = _buffer(close.shape[0], out)
    _realised_vol_pass(_KIND_CLOSE_TO_CLOSE, close, close, close, close, window_bars, res)
    return res


@njit(cache=True, error_model="numpy")
def parkinson_volatility(
    high: np.ndarray, low: np.ndarray, window_bars: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Per-bar vol; pandas ``np.sqrt((np.log(h / l) ** 2).rolling(n).mean() / (4 ln 2))``."""
    if window_bars < 1:
        raise ValueError("parkinson_volatility: window_bars must be >= 1")
    res = _buffer(high.shape[0], out)
    _realised_vol_pass(_KIND_PARKINSON, high, low, high, low, window_bars, res)
    return res


@njit(cache=True, error_model="numpy")
def garman_klass_volatility(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    window_bars: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Per-bar vol; pandas sqrt of rolling mean of 0.5 ln(h/l)^2 - (2 ln 2 - 1) ln(c/o)^2."""
    # With low <= open, close <= high each term is >= 0.11 ln(h/l)^2 >= 0, so a negative
    # window mean can only be rounding (a flat stretch after a volatile one): clamped to 0.
    # Bars breaking that ordering can make the mean truly negative; they also give 0, where
    # the pandas expression gives NaN.
    if window_bars < 1:
        raise ValueError("garman_klass_volatility: window_bars must be >= 1")
    res = _buffer(close.shape[0], out)
    _realised_vol_pass(_KIND_GARMAN_KLASS, open_, high, low, close, window_bars, res)
    return res
