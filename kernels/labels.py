"""Label kernels: forward returns, the EWM volatility target, triple-barrier and meta labels.

The triple barrier follows López de Prado, *Advances in Financial Machine Learning*, ch. 3
(``getEvents`` / ``getBins``). For an event at bar ``i`` with entry price ``c = close[i]``,
target volatility ``sigma`` (a per-bar simple-return std, e.g. ``ewm_std`` of
``close.pct_change()``) and side ``s`` (+1 long, -1 short):

- the profit-taking barrier sits ``d_pt = c * profit_taking * sigma`` in the side's favour
  (``c * (1 + pt * sigma)`` for a long, ``c * (1 - pt * sigma)`` for a short), the stop-loss
  barrier ``d_sl = c * stop_loss * sigma`` against it, and the vertical barrier at bar
  ``i + max_holding_bars``;
- bars ``i + 1 .. i + max_holding_bars`` are scanned in order (bar ``i`` itself is not: the
  entry is at its close). A bar touches profit-taking when its most favourable price (the
  high for a long, the low for a short) reaches that barrier, and the stop when its most
  adverse price does. Pass ``high = low = close`` to evaluate touches on closes only (AFML's
  own rule);
- **a bar that touches both barriers counts as a stop** (the order inside the bar is unknown,
  so the conservative outcome is taken);
- the exit price of a touch is the barrier price clamped into the bar's ``[low, high]``
  range, i.e. the barrier itself, or the bar's nearest price when the bar gapped through it
  (on closes only this is the close of the touch bar, as in AFML). At the vertical barrier the
  exit is that bar's close;
- the realised return is ``s * (exit - c) / c``; tests are written on the moves
  ``s * (price - c)``, so mirroring a path about ``c`` swaps long and short exactly.

Missing values (NaN). An event is undefined (label and return NaN, end index -1, barrier
NaN) when its close or target is NaN, its target is not > 0 (a flat history gives no scale),
its side is not +1 or -1 (0 means no trade), its vertical barrier lies beyond the data and no
barrier was touched before the data ends (more data could change the label), or a bar with a
NaN high or low (or the vertical bar's NaN close) is reached before a touch (a missing bar may
hide a touch). Hence the label depends only on bars ``[i, end]``.

Outputs per event: label (float64), end index (int64, the touch or vertical bar; -1 when
undefined, since an index has no NaN), realised return (float64) and barrier (float64:
``BARRIER_PROFIT_TAKING`` = 1, ``BARRIER_STOP_LOSS`` = -1, ``BARRIER_VERTICAL`` = 0, NaN).
"""

from __future__ import annotations

import numpy as np
from numba import njit

BARRIER_PROFIT_TAKING = 1.0
BARRIER_STOP_LOSS = -1.0
BARRIER_VERTICAL = 0.0


@njit(cache=True)
def forward_returns(close: np.ndarray, horizon_bars: int, log: bool) -> np.ndarray:
    """Return over the next h bars; equals ``np.log(c).shift(-h) - np.log(c)`` (or
    ``c.shift(-h) / c - 1``), NaN for the last h bars."""
    if horizon_bars < 1:
        raise ValueError("forward_returns: horizon_bars must be >= 1")
    n = close.shape[0]
    out = np.empty(n)
    for i in range(n):
        j = i + horizon_bars
        if j >= n:
            out[i] = np.nan
        elif log:
            # log of the ratio, not a difference of logs: exact to an ulp at any price scale.
            out[i] = np.log(close[j] / close[i])
        else:
            out[i] = close[j] / close[i] - 1.0
    return out


@njit(cache=True)
def ewm_std(values: np.ndarray, span_bars: int, min_periods: int) -> np.ndarray:
    """Exponentially weighted std; equals ``pd.Series(v).ewm(span=span_bars,
    min_periods=min_periods).std()`` (adjust=True, bias-corrected, NaN handled as pandas)."""
    if span_bars < 1:
        raise ValueError("ewm_std: span_bars must be >= 1")
    n = values.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    decay = 1.0 - 2.0 / (span_bars + 1.0)
    minp = max(min_periods, 1)
    # West's weighted update (pandas' ewmcov): the variance is carried about the running
    # mean, so no large sums cancel and the result is stable at any price scale.
    mean = values[0]
    nobs = 0 if np.isnan(mean) else 1
    var = 0.0
    sum_wt = 1.0
    sum_wt2 = 1.0
    old_wt = 1.0
    out[0] = np.nan
    for i in range(1, n):
        x = values[i]
        observed = not np.isnan(x)
        nobs += 1 if observed else 0
        if not np.isnan(mean):
            sum_wt *= decay
            sum_wt2 *= decay * decay
            old_wt *= decay
            if observed:
                old_mean = mean
                if mean != x:
                    mean = (old_wt * old_mean + x) / (old_wt + 1.0)
                var = (
                    old_wt * (var + (old_mean - mean) * (old_mean - mean)) + (x - mean) * (x - mean)
                ) / (old_wt + 1.0)
                sum_wt += 1.0
                sum_wt2 += 1.0
                old_wt += 1.0
        elif observed:
            mean = x
        if nobs >= minp:
            numerator = sum_wt * sum_wt
            denominator = numerator - sum_wt2
            if denominator > 0.0:
                v = numerator / denominator * var
                out[i] = np.sqrt(v) if v > 0.0 else 0.0
            else:
                out[i] = np.nan
        else:
            out[i] = np.nan
    return out


@njit(cache=True)
def _scan(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    i: int,
    target: float,
    side: float,
    profit_taking: float,
    stop_loss: float,
    max_holding_bars: int,
) -> tuple[int, float, float]:
    """(end index, barrier, realised return) of one event; (-1, NaN, NaN) when undefined."""
    n = close.shape[0]
    c = close[i]
    if np.isnan(c) or not target > 0.0 or not (side == 1.0 or side == -1.0):
        return -1, np.nan, np.nan
    d_pt = c * profit_taking * target
    d_sl = c * stop_loss * target
    last = i + max_holding_bars
    stop = min(last, n - 1)
    for j in range(i + 1, stop + 1):
        hi = high[j]
        lo = low[j]
        if np.isnan(hi) or np.isnan(lo):
            return -1, np.nan, np.nan
        # Signed moves in the side's favour: best and worst price of the bar.
        if side > 0.0:
            best = hi - c
            worst = lo - c
        else:
            best = c - lo
            worst = c - hi
        if worst <= -d_sl:  # checked first: a bar touching both barriers is a stop
            return j, BARRIER_STOP_LOSS, min(-d_sl, best) / c
        if best >= d_pt:
            return j, BARRIER_PROFIT_TAKING, max(d_pt, worst) / c
    if last >= n or np.isnan(close[last]):
        return -1, np.nan, np.nan
    return last, BARRIER_VERTICAL, side * (close[last] - c) / c


@njit(cache=True)
def _check_events(n: int, events: np.ndarray, max_holding_bars: int) -> None:
    if max_holding_bars < 1:
        raise ValueError("triple_barrier: max_holding_bars must be >= 1")
    for k in range(events.shape[0]):
        if events[k] < 0 or events[k] >= n:
            raise ValueError("triple_barrier: event index outside [0, len(close))")


@njit(cache=True)
def triple_barrier(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    events: np.ndarray,
    target: np.ndarray,
    profit_taking: float,
    stop_loss: float,
    max_holding_bars: int,
    vertical_sign: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(label, end index, return, barrier) per event; equals AFML ch. 3 getEvents/getBins
    (long side) as the brute-force loop of the tests; vertical label sign(return) or 0."""
    _check_events(close.shape[0], events, max_holding_bars)
    m = events.shape[0]
    label = np.empty(m)
    end = np.empty(m, dtype=np.int64)
    ret = np.empty(m)
    barrier = np.empty(m)
    for k in range(m):
        e, b, r = _scan(
            high, low, close, events[k], target[k], 1.0, profit_taking, stop_loss,
            max_holding_bars,
        )  # fmt: skip
        end[k] = e
        barrier[k] = b
        ret[k] = r
        if b == BARRIER_VERTICAL:
            label[k] = np.sign(r) if vertical_sign else 0.0
        else:
            label[k] = b  # +1, -1 or NaN
    return label, end, ret, barrier


@njit(cache=True)
def meta_labels(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    events: np.ndarray,
    target: np.ndarray,
    side: np.ndarray,
    profit_taking: float,
    stop_loss: float,
    max_holding_bars: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(meta label, end index, side's return, barrier) per event; equals AFML ch. 3 getBins
    with a side: 1 if the trade hit profit-taking or ended with a positive return, else 0."""
    _check_events(close.shape[0], events, max_holding_bars)
    m = events.shape[0]
    label = np.empty(m)
    end = np.empty(m, dtype=np.int64)
    ret = np.empty(m)
    barrier = np.empty(m)
    for k in range(m):
        e, b, r = _scan(
            high, low, close, events[k], target[k], side[k], profit_taking, stop_loss,
            max_holding_bars,
        )  # fmt: skip
        end[k] = e
        barrier[k] = b
        ret[k] = r
        if np.isnan(b):
            label[k] = np.nan
        elif b == BARRIER_PROFIT_TAKING or (b == BARRIER_VERTICAL and r > 0.0):
            label[k] = 1.0
        else:
            label[k] = 0.0
    return label, end, ret, barrier
