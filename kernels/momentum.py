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

The window kernels (stochastics, ``stochastic_rsi``'s stochastic part, ``williams_r``,
``cci``, ``mfi``) cut long series into blocks of at least
``kernels.rolling.PARALLEL_BLOCK_BARS`` bars and run them in parallel (``prange``). A block
rebuilds the serial loop's state at its first bar: one parallel NaN scan gives the start of
its NaN-free stretch, which fixes the ring slots and the re-summation schedule, and the bars
since the last re-summation (plus the windows it sums) are replayed without writing
(``kernels._momentum_blocks``); Williams %R needs only the NaNs of the last window. The
output is bit for bit that of one serial pass, for any thread count, and exactly causal.
Outputs that overlap an input run serially. RSI (recursive) stays serial.

Agreement with TA-Lib is within 1e-9 except where the indicator itself is ill-conditioned:
a CCI whose deviations are a tiny fraction of the price level (CCI(2) across a move of 1e-8
of the typical price differs from TA-Lib by 1e-8 relative: both round the typical price,
differently).

"TA-Lib" here is the installed TA-Lib 0.8 (python wrapper 0.8.2, C library 0.8.1).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels._momentum_blocks import (
    MFI_CHUNK_BARS,
    RULE_ANY,
    RULE_SUM,
    ZERO_RANGE_REL,
    _cci_range,
    _mfi_range,
    _smooth_interval,
    _stoch_range,
    _stoch_replay_start,
    _stretch_starts,
)
from kernels._windows import _overlaps, _run_extremes
from kernels.rolling import _block_bars, _first_finite

__all__ = [
    "MFI_CHUNK_BARS",
    "ZERO_RANGE_REL",
    "cci",
    "fast_stochastic",
    "mfi",
    "momentum",
    "roc",
    "rsi",
    "stochastic",
    "stochastic_rsi",
    "williams_r",
]


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


# The window kernels below run long series in parallel blocks (``prange``) of at least
# ``kernels.rolling.PARALLEL_BLOCK_BARS`` bars. A block rebuilds the serial state at its first
# bar from the NaN-free stretch start (``_stretch_starts``) and a short replay, so the output
# is bit for bit that of one serial pass (``kernels._momentum_blocks``).


@njit(cache=True, parallel=True)
def _stoch_blocks(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    fastk_bars: int,
    k_bars: int,
    d_bars: int,
    res_k: np.ndarray,
    res_d: np.ndarray,
    own: bool,
) -> None:
    """_stoch_range over blocks of bars, in parallel. Outputs that overlap an input or each
    other run serially (a block replays bars the block before may have overwritten), except
    ``own``: high, low and close are res_k itself (``stochastic_rsi``), and the bars each
    block replays are copied before any block writes."""
    n = close.shape[0]
    w = fastk_bars
    if _overlaps(res_k, res_d) or (
        not own
        and (
            _overlaps(res_k, high)
            or _overlaps(res_k, low)
            or _overlaps(res_k, close)
            or _overlaps(res_d, high)
            or _overlaps(res_d, low)
            or _overlaps(res_d, close)
        )
    ):
        _stoch_range(
            high, low, close, 0, high, low, close, w, k_bars, d_bars, res_k, res_d, 0, n, 0
        )
        return
    span = w + k_bars + d_bars + _smooth_interval(k_bars) + _smooth_interval(d_bars)
    block = _block_bars(1, 16 * span)
    nb = -(-n // block)
    stretch = _stretch_starts(RULE_ANY, high, low, close, close, block, nb)
    # Where each block replays its bars before the first from: the inputs themselves, or
    # (own) a copy of those bars saved before any block writes; offs[j] maps bar i to i - offs.
    offs = np.zeros(nb, np.int64)
    src_h, src_l, src_c = high, low, close
    if own:
        starts = np.empty(nb + 1, np.int64)
        starts[0] = 0
        for j in range(nb):
            first = j * block
            starts[j + 1] = (
                starts[j] + first - _stoch_replay_start(first, stretch[j], w, k_bars, d_bars)
            )
        hist = np.empty(starts[nb])
        for j in range(nb):
            m = starts[j + 1] - starts[j]
            for u in range(m):  # a plain loop: a slice copy here became a parallel region
                hist[starts[j] + u] = high[j * block - m + u]
            offs[j] = j * block - m - starts[j]
        src_h = src_l = src_c = hist
    for j in prange(nb):
        first = j * block
        _stoch_range(
            src_h,
            src_l,
            src_c,
            offs[j],
            high,
            low,
            close,
            w,
            k_bars,
            d_bars,
            res_k,
            res_d,
            first,
            min(first + block, n),
            stretch[j],
        )


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
    _stoch_blocks(high, low, close, fastk_bars, slowk_bars, slowd_bars, res_k, res_d, False)
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
    _stoch_blocks(high, low, close, fastk_bars, 1, fastd_bars, res_k, res_d, False)
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
    # RSI goes into res_k first (serially: it is recursive); the stochastic reads each bar
    # before overwriting it, its blocks in parallel.
    rsi(values, rsi_bars, res_k)
    _stoch_blocks(res_k, res_k, res_k, fastk_bars, 1, fastd_bars, res_k, res_d, True)
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
    (``kernels._windows``): exact, like the van Herk / Gil-Werman blocks of ``_stoch_range``,
    and about 2.5x faster here (no serial running extrema).
    """
    run_hi, run_lo, d, nan_hi, nan_lo = _run_extremes(high, low, w, s, e, bufs)
    return nan_hi + nan_lo + _willr_write(run_hi, run_lo, close, w, d, s, e, res)


@njit(cache=True)
def _willr_range(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    w: int,
    res: np.ndarray,
    first: int,
    stop: int,
) -> None:
    """Williams %R of bars first..stop-1 into res (which must not overlap the inputs), chunk
    by chunk from bar first.

    NaN checks are counted inside the vectorized passes: a chunk whose inputs hold no NaN
    keeps its fast result; otherwise it is redone bar range by bar range between the NaNs.
    Each bar's value depends only on its window, so the chunking does not change a bit.
    """
    chunk = WILLR_CHUNK_BARS
    bufs = np.empty((4, chunk + w))
    stretch = 0  # first bar of the current NaN-free stretch (only its last w - 1 bars matter)
    for k in range(max(0, first - w + 1), first):
        if np.isnan(high[k]) or np.isnan(low[k]) or np.isnan(close[k]):
            stretch = k + 1
    for s in range(first, stop, chunk):
        e = min(s + chunk, stop)
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


@njit(cache=True, parallel=True)
def _willr_pass(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, w: int, res: np.ndarray
) -> None:
    """_willr_range over blocks of chunks, in parallel (res must not overlap the inputs)."""
    n = close.shape[0]
    block = _block_bars(WILLR_CHUNK_BARS, 2 * w)
    for j in prange(-(-n // block)):
        _willr_range(high, low, close, w, res, j * block, min((j + 1) * block, n))


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


@njit(cache=True, parallel=True)
def _cci_blocks(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, w: int, res: np.ndarray
) -> None:
    """_cci_range over blocks of bars, in parallel; serially when res overlaps an input."""
    n = close.shape[0]
    if _overlaps(res, high) or _overlaps(res, low) or _overlaps(res, close):
        _cci_range(high, low, close, w, res, 0, n, 0)
        return
    block = _block_bars(1, 16 * (w + _smooth_interval(w)))
    nb = -(-n // block)
    stretch = _stretch_starts(RULE_SUM, high, low, close, high, block, nb)
    for j in prange(nb):
        _cci_range(high, low, close, w, res, j * block, min((j + 1) * block, n), stretch[j])


@njit(cache=True)
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
    _cci_blocks(high, low, close, window_bars, res)
    return res


@njit(cache=True, parallel=True)
def _mfi_blocks(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    w: int,
    res: np.ndarray,
) -> None:
    """_mfi_range over blocks of bars, in parallel; serially when res overlaps an input."""
    n = close.shape[0]
    if (
        _overlaps(res, high)
        or _overlaps(res, low)
        or _overlaps(res, close)
        or _overlaps(res, volume)
    ):
        _mfi_range(high, low, close, volume, w, res, 0, n, 0)
        return
    block = _block_bars(MFI_CHUNK_BARS, 16 * (w + _smooth_interval(w)))
    nb = -(-n // block)
    stretch = _stretch_starts(RULE_SUM, high, low, close, volume, block, nb)
    for j in prange(nb):
        _mfi_range(high, low, close, volume, w, res, j * block, min((j + 1) * block, n), stretch[j])


@njit(cache=True)
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
    _mfi_blocks(high, low, close, volume, window_bars, res)
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
