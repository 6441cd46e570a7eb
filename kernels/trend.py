"""Trend kernels: SMA, WMA, DEMA, TEMA, TRIX, KAMA, MACD, ADX/DI, Aroon, Ichimoku, Parabolic SAR.

Same conventions as ``kernels.rolling``: 1-d float64 inputs, float64 outputs of the same
length, NaN during the warm-up, and optional ``out`` arrays (one per output) that the kernel
fills completely and returns. Pass numpy-allocated ``out`` arrays on large inputs (see
``PERF_NOTES.md``). Multi-output kernels compute every output in one pass and return a tuple.

Warm-up positions equal TA-Lib's lookbacks, counted from the first bar where every input is
finite (TA-Lib's Python wrapper skips leading NaNs the same way).

NaN policy (a NaN after the first valid bar):

- Window kernels without state -- ``sma``, ``wma``, ``aroon``, ``aroon_oscillator``,
  ``ichimoku`` -- give NaN while their window holds a NaN in any input and recover once it
  has left the window (pandas ``rolling(n)`` with ``min_periods=n``).
- Recursive kernels -- ``dema``, ``tema``, ``trix``, ``kama``, ``macd``, ``macd_ema_seed``,
  ``adx``, ``parabolic_sar`` -- carry state, so every output from that bar on is NaN (as
  ``kernels.rolling.ema``). TA-Lib lets the NaN fall through its comparisons instead and keeps
  printing numbers made from the missing price (for example ADX holds its last value).

Differences from TA-Lib (none of them shows on the data the tests compare on):

- Zero tests are exact (a flat window in KAMA, a zero true range or +DI + -DI in ADX).
  TA-Lib 0.4 treated ``|v| < 1e-8`` as zero, which is not scale-free (on prices near 1e-8 its
  DIs collapsed to 0); the TA-Lib installed here agrees with these kernels at 1e-8 and 1e8.
- KAMA rebuilds its running sum of moves exactly whenever the net move is exactly 0, so the
  sum's rounding residue cannot turn a flat window's efficiency ratio of 1 into 0.
- ``macd`` raises when ``fast_bars > slow_bars`` (TA-Lib silently swaps them).
- Windows of 1 bar are accepted where TA-Lib does (SMA, WMA, DEMA, TEMA, TRIX) and also by
  the Aroon kernels (TA-Lib needs 2); KAMA and ADX need at least 2 bars.

Running sums (SMA, WMA) are recomputed from scratch every
``max(RECOMPUTE_MIN_BARS, RECOMPUTE_WINDOWS * window)`` bars on a schedule fixed by the
absolute bar index, so rounding error cannot build up over long series and the kernels stay
exactly causal: ``f(x[:t])[-1] == f(x)[t-1]`` bit for bit, for every kernel in this module.

``sma``, ``wma``, ``aroon``, ``aroon_oscillator`` and ``ichimoku`` run long series in blocks
of about 65k bars in parallel (``prange``). SMA / WMA blocks start on scheduled recomputes,
with the one case where the serial loop slides through a recompute (the first full window
after a NaN ends just before it) replayed; the Aroon and Ichimoku blocks rebuild their state
from the bars before them (see ``kernels._windows``). The output is bit for bit that of one
serial pass, whatever the thread count; an output that overlaps an input runs serially. The
recursive kernels stay serial: a block could not start without the state carried from the
bars before it.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels._windows import _aroon_pass, _ichimoku_pass, _overlaps
from kernels.rolling import _block_bars, _first_finite

RECOMPUTE_MIN_BARS = 64
RECOMPUTE_WINDOWS = 16

# KAMA's efficiency-ratio smoothing runs between an EMA(2) and an EMA(30), as in TA-Lib.
KAMA_FAST_BARS = 2
KAMA_SLOW_BARS = 30

# Ichimoku defaults. Spans A and B are conventionally drawn ICHIMOKU_DISPLACEMENT_BARS ahead of
# the bar that computed them, and the lagging span the same distance behind (see ichimoku).
ICHIMOKU_CONVERSION_BARS = 9
ICHIMOKU_BASE_BARS = 26
ICHIMOKU_SPAN_B_BARS = 52
ICHIMOKU_DISPLACEMENT_BARS = 26

_DEMA = 0
_TEMA = 1
_TRIX = 2


@njit(cache=True)
def _first_finite_pair(a: np.ndarray, b: np.ndarray) -> int:
    """Index of the first bar where both a and b are finite-or-inf (not NaN), else len(a)."""
    for i in range(a.shape[0]):
        if not (np.isnan(a[i]) or np.isnan(b[i])):
            return i
    return a.shape[0]


@njit(cache=True)
def _first_finite_triple(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> int:
    """Index of the first bar where none of a, b, c is NaN, else len(a)."""
    for i in range(a.shape[0]):
        if not (np.isnan(a[i]) or np.isnan(b[i]) or np.isnan(c[i])):
            return i
    return a.shape[0]


# --- moving averages -----------------------------------------------------------------------


@njit(cache=True, fastmath={"contract"}, inline="always")
def _window_sums(values: np.ndarray, lo: int, i: int) -> tuple[float, float]:
    """(sum, sum weighted 1 (oldest) .. w (newest)) of values[lo..i], from scratch."""
    total = 0.0
    wtotal = 0.0
    for j in range(lo, i + 1):
        v = values[j]
        total += v
        wtotal += (j - lo + 1) * v
    return total, wtotal


@njit(cache=True, fastmath={"contract"})
def _sliding_range(
    values: np.ndarray, w: int, weighted: bool, res: np.ndarray, first: int, stop: int
) -> None:
    """Shared loop of sma / wma for bars first..stop-1 (first: 0 or a multiple of the
    recompute interval): running (weighted) window sums, recomputed on a schedule."""
    interval = max(RECOMPUTE_MIN_BARS, RECOMPUTE_WINDOWS * w)
    scale = 1.0 / (w * (w + 1) / 2.0) if weighted else 1.0 / w
    weight = float(w)
    last_nan = -1  # a virtual NaN before the series makes the first w - 1 bars warm-up
    for j in range(max(first - w - 1, 0), first):
        if np.isnan(values[j]):
            last_nan = j
    # At a scheduled recompute the serial loop slides on only if it has just recomputed the
    # sums at bar first - 1, the first full window after a NaN: do the same, without output.
    resume = first - 1 - last_nan == w
    total = 0.0  # sum of the window
    wtotal = 0.0  # sum of the window weighted 1 (oldest) .. w (newest)
    if resume:
        total, wtotal = _window_sums(values, first - w, first - 1)
    i = first
    while i < stop:
        if resume:
            resume = False
        else:
            # Slow path: a bar whose window holds a NaN, or the first bar of a segment.
            if np.isnan(values[i]):
                last_nan = i
            if i - last_nan < w:
                res[i] = np.nan
                i += 1
                continue
            total, wtotal = _window_sums(values, i - w + 1, i)
            res[i] = (wtotal if weighted else total) * scale
            i += 1
        # Fast path: slide the sums until the next scheduled recompute or a NaN.
        end = min(stop, (i // interval + 1) * interval)
        if weighted:
            while i < end:
                x = values[i]
                if np.isnan(x):
                    break
                # Every weight drops by one (minus the old total) and x enters at weight w.
                wtotal += weight * x - total
                total += x - values[i - w]
                res[i] = wtotal * scale
                i += 1
        else:
            while i < end:
                x = values[i]
                if np.isnan(x):
                    break
                total += x - values[i - w]
                res[i] = total * scale
                i += 1


@njit(cache=True, fastmath={"contract"}, parallel=True)
def _sliding_average(
    values: np.ndarray, w: int, weighted: bool, out: np.ndarray | None
) -> np.ndarray:
    """_sliding_range over blocks of bars, in parallel. Blocks start on scheduled recomputes
    (absolute multiples of the interval), so the output is bit for bit that of one serial
    pass, whatever the thread count. An output that overlaps the input runs serially."""
    n = values.shape[0]
    res = np.empty(n) if out is None else out
    if _overlaps(res, values):
        _sliding_range(values, w, weighted, res, 0, n)
        return res
    block = _block_bars(max(RECOMPUTE_MIN_BARS, RECOMPUTE_WINDOWS * w), 2 * w)
    for j in prange(-(-n // block)):
        _sliding_range(values, w, weighted, res, j * block, min((j + 1) * block, n))
    return res


@njit(cache=True)
def sma(values: np.ndarray, window_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """Simple moving average; matches ``talib.SMA(values, window_bars)`` and pandas rolling."""
    # Not an alias of kernels.rolling.rolling_mean: that loop also carries the std machinery
    # and runs at about twice TA-Lib's time; this one is a plain running sum.
    if window_bars < 1:
        raise ValueError("sma: window_bars must be >= 1")
    return _sliding_average(values, window_bars, False, out)


@njit(cache=True)
def wma(values: np.ndarray, window_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """Linearly weighted moving average (weights 1..n); matches ``talib.WMA(values, n)``."""
    if window_bars < 1:
        raise ValueError("wma: window_bars must be >= 1")
    return _sliding_average(values, window_bars, True, out)


@njit(cache=True, fastmath={"contract"})
def _ema_chain(values: np.ndarray, span: int, mode: int, out: np.ndarray | None) -> np.ndarray:
    """Shared loop of dema / tema / trix: EMA of EMA (of EMA), each stage seeded like TA-Lib."""
    n = values.shape[0]
    res = np.empty(n) if out is None else out
    depth = 2 if mode == _DEMA else 3
    m = span - 1
    start = _first_finite(values)
    first = start + depth * m + (1 if mode == _TRIX else 0)
    if first >= n:
        res[:] = np.nan
        return res
    res[:first] = np.nan
    alpha = 2.0 / (span + 1.0)
    # Each stage starts on the first output of the one before and is seeded, as in TA-Lib's
    # EMA, with the plain mean of its first `span` inputs.
    total = 0.0
    for i in range(start, start + span):
        total += values[i]
    e1 = total / span
    total = e1
    for i in range(start + span, start + 2 * m + 1):
        e1 = (values[i] - e1) * alpha + e1
        total += e1
    e2 = total / span
    e3 = 0.0
    if depth == 3:
        total = e2
        for i in range(start + 2 * m + 1, start + 3 * m + 1):
            e1 = (values[i] - e1) * alpha + e1
            e2 = (e1 - e2) * alpha + e2
            total += e2
        e3 = total / span
    seeded = start + depth * m
    if mode == _DEMA:
        res[seeded] = 2.0 * e1 - e2
        for i in range(seeded + 1, n):
            e1 = (values[i] - e1) * alpha + e1
            e2 = (e1 - e2) * alpha + e2
            res[i] = 2.0 * e1 - e2
    elif mode == _TEMA:
        res[seeded] = 3.0 * (e1 - e2) + e3
        for i in range(seeded + 1, n):
            e1 = (values[i] - e1) * alpha + e1
            e2 = (e1 - e2) * alpha + e2
            e3 = (e2 - e3) * alpha + e3
            res[i] = 3.0 * (e1 - e2) + e3
    else:
        prev = e3
        for i in range(seeded + 1, n):
            e1 = (values[i] - e1) * alpha + e1
            e2 = (e1 - e2) * alpha + e2
            e3 = (e2 - e3) * alpha + e3
            # TA-Lib's ROC reports 0 (not inf) after an exactly-zero triple EMA.
            res[i] = ((e3 - prev) / prev) * 100.0 if prev != 0.0 else 0.0
            prev = e3
    return res


@njit(cache=True)
def dema(values: np.ndarray, span_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """Double EMA, 2*e1 - e2; matches ``talib.DEMA(values, span_bars)``."""
    if span_bars < 1:
        raise ValueError("dema: span_bars must be >= 1")
    return _ema_chain(values, span_bars, _DEMA, out)


@njit(cache=True)
def tema(values: np.ndarray, span_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """Triple EMA, 3*(e1 - e2) + e3; matches ``talib.TEMA(values, span_bars)``."""
    if span_bars < 1:
        raise ValueError("tema: span_bars must be >= 1")
    return _ema_chain(values, span_bars, _TEMA, out)


@njit(cache=True)
def trix(values: np.ndarray, span_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """1-bar percent change of the triple EMA; matches ``talib.TRIX(values, span_bars)``."""
    if span_bars < 1:
        raise ValueError("trix: span_bars must be >= 1")
    return _ema_chain(values, span_bars, _TRIX, out)


@njit(cache=True)
def _sum_abs_moves(values: np.ndarray, lo: int, hi: int) -> float:
    """Sum of |values[j] - values[j - 1]| for j in (lo, hi]."""
    total = 0.0
    for j in range(lo + 1, hi + 1):
        total += abs(values[j] - values[j - 1])
    return total


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def kama(values: np.ndarray, window_bars: int, out: np.ndarray | None = None) -> np.ndarray:
    """Kaufman adaptive moving average (fast 2, slow 30); matches ``talib.KAMA(values, n)``."""
    # TA-Lib's recipe: the first value sits at bar n after the first valid one and smooths
    # from the previous close; the efficiency ratio is |x[t] - x[t-n]| / sum of the n
    # absolute 1-bar moves, and is 1 when that sum is zero or (by rounding) <= the net move.
    if window_bars < 2:
        raise ValueError("kama: window_bars must be >= 2")
    n = values.shape[0]
    w = window_bars
    res = np.empty(n) if out is None else out
    start = _first_finite(values)
    first = start + w
    if first >= n:
        res[:] = np.nan
        return res
    res[:first] = np.nan
    fastest = 2.0 / (KAMA_FAST_BARS + 1.0)
    slowest = 2.0 / (KAMA_SLOW_BARS + 1.0)
    spread = fastest - slowest
    moves = _sum_abs_moves(values, start, first)  # sum of |1-bar moves| over the window
    # The loop indexes slices from 0 (no negative-index wraparound code), keeps the two
    # previous inputs in registers and rebuilds the sum inline (a call inside the loop spills
    # every constant to the stack): about 1.5x faster than the plain loop, same arithmetic.
    # NaNs need no test: they fall through every comparison and propagate through the sums.
    head = values[first - 1 :]  # head[j + 1] is bar first + j, head[j] the bar before
    tail = values[start:]  # tail[j] is bar first + j - w, the start of its net move
    dst = res[first:]
    level = head[0]
    prev = head[0]
    old = tail[0]
    for j in range(n - first):
        x = head[j + 1]
        back = tail[j]
        # A running sum, as in TA-Lib; it is rebuilt exactly whenever the net move is 0. A
        # periodic rebuild (as in sma) measured 30-50% slower here, with or without segments.
        if j > 0:
            moves += abs(x - prev) - abs(back - old)
        prev = x
        old = back
        net = x - back
        if net == 0.0:
            # Rebuild exactly to tell a flat window (ratio 1) from rounding residue.
            moves = 0.0
            for q in range(j, j + w):
                moves += abs(tail[q + 1] - tail[q])
            ratio = 1.0 if moves == 0.0 else 0.0
        else:
            ratio = abs(net / moves)
            ratio = 1.0 if moves <= net else ratio
        smooth = ratio * spread + slowest
        smooth *= smooth
        level = (x - level) * smooth + level
        dst[j] = level
    return res


# --- MACD ----------------------------------------------------------------------------------


@njit(cache=True, fastmath={"contract"})
def _macd_pass(
    values: np.ndarray,
    fast_bars: int,
    slow_bars: int,
    signal_bars: int,
    talib_seed: bool,
    out_macd: np.ndarray | None,
    out_signal: np.ndarray | None,
    out_hist: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared loop of macd / macd_ema_seed; only the fast EMA's seed differs."""
    if fast_bars < 1 or signal_bars < 1:
        raise ValueError("macd: fast_bars and signal_bars must be >= 1")
    if slow_bars < fast_bars:
        raise ValueError("macd: slow_bars must be >= fast_bars (TA-Lib would swap them)")
    n = values.shape[0]
    res_macd = np.empty(n) if out_macd is None else out_macd
    res_signal = np.empty(n) if out_signal is None else out_signal
    res_hist = np.empty(n) if out_hist is None else out_hist
    start = _first_finite(values)
    line_start = start + slow_bars - 1
    first = line_start + signal_bars - 1
    if first >= n:
        res_macd[:] = np.nan
        res_signal[:] = np.nan
        res_hist[:] = np.nan
        return res_macd, res_signal, res_hist
    res_macd[:first] = np.nan
    res_signal[:first] = np.nan
    res_hist[:first] = np.nan
    k_fast = 2.0 / (fast_bars + 1.0)
    k_slow = 2.0 / (slow_bars + 1.0)
    k_signal = 2.0 / (signal_bars + 1.0)
    total = 0.0
    for i in range(start, line_start + 1):
        total += values[i]
    slow = total / slow_bars
    if talib_seed:
        # TA-Lib starts both EMAs at the slow one's first bar: the fast seed is the mean of the
        # fast_bars values ending there.
        total = 0.0
        for i in range(line_start - fast_bars + 1, line_start + 1):
            total += values[i]
        fast = total / fast_bars
    else:
        total = 0.0
        for i in range(start, start + fast_bars):
            total += values[i]
        fast = total / fast_bars
        for i in range(start + fast_bars, line_start + 1):
            fast = (values[i] - fast) * k_fast + fast
    line = fast - slow
    total = line
    for i in range(line_start + 1, first + 1):
        x = values[i]
        fast = (x - fast) * k_fast + fast
        slow = (x - slow) * k_slow + slow
        line = fast - slow
        total += line
    signal = total / signal_bars
    res_macd[first] = line
    res_signal[first] = signal
    res_hist[first] = line - signal
    for i in range(first + 1, n):
        x = values[i]
        fast = (x - fast) * k_fast + fast
        slow = (x - slow) * k_slow + slow
        line = fast - slow
        signal = (line - signal) * k_signal + signal
        res_macd[i] = line
        res_signal[i] = signal
        res_hist[i] = line - signal
    return res_macd, res_signal, res_hist


@njit(cache=True)
def macd(
    values: np.ndarray,
    fast_bars: int,
    slow_bars: int,
    signal_bars: int,
    out_macd: np.ndarray | None = None,
    out_signal: np.ndarray | None = None,
    out_hist: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(macd, signal, hist) with TA-Lib's seeding; matches ``talib.MACD(values, f, s, g)``."""
    return _macd_pass(
        values, fast_bars, slow_bars, signal_bars, True, out_macd, out_signal, out_hist
    )


@njit(cache=True)
def macd_ema_seed(
    values: np.ndarray,
    fast_bars: int,
    slow_bars: int,
    signal_bars: int,
    out_macd: np.ndarray | None = None,
    out_signal: np.ndarray | None = None,
    out_hist: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD whose line is ``ema(values, fast) - ema(values, slow)`` (kernels.rolling.ema)."""
    # The fast EMA starts at its own warm-up (bar fast - 1) instead of TA-Lib's bar slow - 1;
    # the gap decays like (1 - 2 / (fast + 1)) ** t. Output positions are TA-Lib's.
    return _macd_pass(
        values, fast_bars, slow_bars, signal_bars, False, out_macd, out_signal, out_hist
    )


# --- ADX -----------------------------------------------------------------------------------


@njit(cache=True, fastmath={"contract"})
def _directional_move(
    high: float, low: float, prev_high: float, prev_low: float, prev_close: float
) -> tuple[float, float, float]:
    """(+DM, -DM, true range) of one bar, with TA-Lib's tie rules."""
    up = high - prev_high
    down = prev_low - low
    plus_dm = 0.0
    minus_dm = 0.0
    if down > 0.0 and up < down:
        minus_dm = down
    elif up > 0.0 and up > down:
        plus_dm = up
    tr = high - low
    t2 = abs(high - prev_close)
    if t2 > tr:
        tr = t2
    t3 = abs(low - prev_close)
    if t3 > tr:
        tr = t3
    return plus_dm, minus_dm, tr


@njit(cache=True, fastmath={"contract"})
def adx(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    window_bars: int,
    out_adx: np.ndarray | None = None,
    out_plus_di: np.ndarray | None = None,
    out_minus_di: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(adx, +DI, -DI); matches ``talib.ADX`` / ``PLUS_DI`` / ``MINUS_DI(high, low, close, n)``."""
    # Wilder smoothing as in TA-Lib: n - 1 raw moves are summed, then every bar applies
    # s = s - s / n + move. DIs start at bar n, ADX at bar 2n - 1 (the mean of the first n DX
    # values, then Wilder-smoothed). A bar with zero true range gives DIs of 0 and leaves ADX
    # unchanged, as in TA-Lib.
    if window_bars < 2:
        raise ValueError("adx: window_bars must be >= 2")
    n = high.shape[0]
    w = window_bars
    res_adx = np.empty(n) if out_adx is None else out_adx
    res_plus = np.empty(n) if out_plus_di is None else out_plus_di
    res_minus = np.empty(n) if out_minus_di is None else out_minus_di
    start = _first_finite_triple(high, low, close)
    di_first = start + w
    adx_first = start + 2 * w - 1
    res_adx[: min(adx_first, n)] = np.nan
    res_plus[: min(di_first, n)] = np.nan
    res_minus[: min(di_first, n)] = np.nan
    if di_first >= n:
        return res_adx, res_plus, res_minus
    keep = 1.0 - 1.0 / w
    adx_keep = (w - 1.0) / w
    inv_w = 1.0 / w
    plus_sm = 0.0
    minus_sm = 0.0
    tr_sm = 0.0
    prev_high = high[start]
    prev_low = low[start]
    prev_close = close[start]
    dx_total = 0.0
    level = 0.0
    for i in range(start + 1, n):
        h = high[i]
        lo = low[i]
        c = close[i]
        if np.isnan(h + lo + c):
            res_adx[max(i, adx_first) :] = np.nan
            res_plus[max(i, di_first) :] = np.nan
            res_minus[max(i, di_first) :] = np.nan
            break
        plus_dm, minus_dm, tr = _directional_move(h, lo, prev_high, prev_low, prev_close)
        prev_high = h
        prev_low = lo
        prev_close = c
        if i < di_first:
            plus_sm += plus_dm
            minus_sm += minus_dm
            tr_sm += tr
            continue
        plus_sm = plus_sm * keep + plus_dm
        minus_sm = minus_sm * keep + minus_dm
        tr_sm = tr_sm * keep + tr
        dx_valid = False
        dx = 0.0
        if tr_sm > 0.0:
            scale = 100.0 / tr_sm
            plus_di = plus_sm * scale
            minus_di = minus_sm * scale
            di_sum = plus_di + minus_di
            if di_sum > 0.0:
                dx = 100.0 * abs(minus_di - plus_di) / di_sum
                dx_valid = True
        else:
            plus_di = 0.0
            minus_di = 0.0
        res_plus[i] = plus_di
        res_minus[i] = minus_di
        if i < adx_first:
            dx_total += dx
        elif i == adx_first:
            level = (dx_total + dx) * inv_w
            res_adx[i] = level
        else:
            if dx_valid:
                level = level * adx_keep + dx * inv_w
            res_adx[i] = level
    return res_adx, res_plus, res_minus


# --- rolling extremes: Aroon and Ichimoku --------------------------------------------------


@njit(cache=True)
def aroon(
    high: np.ndarray,
    low: np.ndarray,
    window_bars: int,
    out_down: np.ndarray | None = None,
    out_up: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(down, up); matches ``talib.AROON(high, low, window_bars)`` (latest extreme on ties)."""
    if window_bars < 1:
        raise ValueError("aroon: window_bars must be >= 1")
    n = high.shape[0]
    res_down = np.empty(n) if out_down is None else out_down
    res_up = np.empty(n) if out_up is None else out_up
    _aroon_pass(high, low, window_bars, False, res_down, res_up, res_down)
    return res_down, res_up


@njit(cache=True)
def aroon_oscillator(
    high: np.ndarray, low: np.ndarray, window_bars: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Aroon up - down; matches ``talib.AROONOSC(high, low, window_bars)``."""
    if window_bars < 1:
        raise ValueError("aroon_oscillator: window_bars must be >= 1")
    res = np.empty(high.shape[0]) if out is None else out
    _aroon_pass(high, low, window_bars, True, res, res, res)
    return res


@njit(cache=True)
def ichimoku(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    conversion_bars: int,
    base_bars: int,
    span_b_bars: int,
    out_conversion: np.ndarray | None = None,
    out_base: np.ndarray | None = None,
    out_span_a: np.ndarray | None = None,
    out_span_b: np.ndarray | None = None,
    out_lagging: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Causal Ichimoku; matches pandas ``(h.rolling(k).max() + l.rolling(k).min()) / 2``."""
    # Outputs, every one using data up to bar t only:
    #   conversion[t] = midpoint over conversion_bars (tenkan), base[t] over base_bars (kijun),
    #   span_a[t] = (conversion[t] + base[t]) / 2, span_b[t] = midpoint over span_b_bars,
    #   lagging[t] = close[t].
    # Displacement is left to the caller (ICHIMOKU_DISPLACEMENT_BARS = 26): a chart draws
    # span_a[t] and span_b[t] 26 bars ahead, so the cloud shown at bar t is span_a[t - 26]
    # (pandas: span_a.shift(26)). It draws the lagging span 26 bars behind: the chart's chikou
    # at bar t is close[t + 26], which reads the future; here each chikou point is stored at
    # the bar where it becomes known, lagging[t] = close[t], to be compared with price at
    # t - 26. Each midpoint is NaN while its window holds a NaN (pandas min_periods rule).
    if conversion_bars < 1 or base_bars < 1 or span_b_bars < 1:
        raise ValueError("ichimoku: conversion_bars, base_bars and span_b_bars must be >= 1")
    n = high.shape[0]
    conv = np.empty(n) if out_conversion is None else out_conversion
    base = np.empty(n) if out_base is None else out_base
    span_a = np.empty(n) if out_span_a is None else out_span_a
    span_b = np.empty(n) if out_span_b is None else out_span_b
    lagging = np.empty(n) if out_lagging is None else out_lagging
    ws = (conversion_bars, base_bars, span_b_bars)
    _ichimoku_pass(high, low, close, ws, conv, base, span_a, span_b, lagging)
    return conv, base, span_a, span_b, lagging


# --- Parabolic SAR -------------------------------------------------------------------------


@njit(cache=True, fastmath={"contract"})
def parabolic_sar(
    high: np.ndarray,
    low: np.ndarray,
    acceleration: float,
    max_acceleration: float,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Wilder's Parabolic SAR; matches ``talib.SAR(high, low, acceleration, maximum)``."""
    # TA-Lib's bootstrap: the first value sits at bar 1 (after the first valid one); the
    # trend starts short if bar 1's -DM is positive, else long, with the previous bar's
    # low (long) or high (short) as the first SAR. acceleration > max_acceleration is
    # clamped to max_acceleration, as in TA-Lib.
    if not (acceleration >= 0.0 and max_acceleration >= 0.0):
        raise ValueError("parabolic_sar: acceleration and max_acceleration must be >= 0")
    n = high.shape[0]
    res = np.empty(n) if out is None else out
    start = _first_finite_pair(high, low)
    if start + 1 >= n:
        res[:] = np.nan
        return res
    res[: start + 1] = np.nan
    step = min(acceleration, max_acceleration)
    af = step
    down = low[start] - low[start + 1]
    up = high[start + 1] - high[start]
    is_long = not (down > 0.0 and up < down)
    if is_long:
        ep = high[start + 1]
        sar = low[start]
    else:
        ep = low[start + 1]
        sar = high[start]
    new_low = low[start + 1]
    new_high = high[start + 1]
    for t in range(start + 1, n):
        prev_low = new_low
        prev_high = new_high
        new_low = low[t]
        new_high = high[t]
        if np.isnan(new_low + new_high):
            res[t:] = np.nan
            break
        if is_long:
            if new_low <= sar:
                # Reverse to short: the SAR jumps to the extreme point, kept above both highs.
                is_long = False
                sar = max(ep, prev_high, new_high)
                res[t] = sar
                af = step
                ep = new_low
                sar = sar + af * (ep - sar)
                sar = max(sar, prev_high, new_high)
            else:
                res[t] = sar
                # A new extreme point raises the acceleration (written as selects, no branch).
                extend = new_high > ep
                af = min(af + step, max_acceleration) if extend else af
                ep = new_high if extend else ep
                sar = sar + af * (ep - sar)
                sar = min(sar, prev_low, new_low)
        else:
            if new_high >= sar:
                is_long = True
                sar = min(ep, prev_low, new_low)
                res[t] = sar
                af = step
                ep = new_high
                sar = sar + af * (ep - sar)
                sar = min(sar, prev_low, new_low)
            else:
                res[t] = sar
                extend = new_low < ep
                af = min(af + step, max_acceleration) if extend else af
                ep = new_low if extend else ep
                sar = sar + af * (ep - sar)
                sar = max(sar, prev_high, new_high)
    return res
