"""Labels for supervised models: forward returns, triple-barrier labels and meta-labels.

Frames follow the lake's bars schema: ``ts`` (Int64 ms), ``symbol``, ``open``, ``high``,
``low``, ``close``, ``volume``; any number of symbols, each with strictly increasing ``ts``.
Every computation runs within one symbol, so no label ever reads another symbol's bars. The
rules of the triple barrier (the stop-first tie rule, exits at the barrier price, when a
label is undefined) are those of ``kernels.labels``; read its module docstring.

Missing-value policy: prices must be finite and positive (a ``ValueError`` names the row;
repair gaps with ``research_lib.quality`` first). Outputs hold **null** where a value is
undefined (the last ``h`` bars of a forward return; a label whose volatility is still warming
up, is zero, or whose vertical barrier lies beyond the data with no barrier touched); NaN never
leaks out.

``label_end_ts`` / ``label_end_index`` (the touch or vertical bar, as ``ts`` and as the row
index into the input frame) close each label's window ``[ts, label_end_ts]``: purged splits
drop training rows whose window overlaps the test period.

Examples
--------
>>> import polars as pl
>>> bars = pl.DataFrame({"ts": [0, 1, 2], "symbol": ["X"] * 3, "close": [1.0, 2.0, 4.0]})
>>> forward_returns(bars, horizons_bars=(1,), log=False)["forward_return_1"].to_list()
[1.0, 1.0, None]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from kernels import labels as labels_nb
from research_lib.features import check_bars, price_array

__all__ = ["forward_returns", "meta_labels", "triple_barrier_labels"]

_BARRIER_NAMES = {
    labels_nb.BARRIER_PROFIT_TAKING: "profit_taking",
    labels_nb.BARRIER_STOP_LOSS: "stop_loss",
    labels_nb.BARRIER_VERTICAL: "vertical",
}
_VERTICAL_LABELS = ("sign", "zero")


def _check_int(value: object, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}; pass e.g. {name}=24")
    return int(value)


def _check_multiplier(value: object, *, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if math.isnan(number) or number <= 0.0:
        raise ValueError(
            f"{name} must be > 0 (a multiple of the target volatility; math.inf disables "
            f"the barrier), got {value!r}"
        )
    return number


def _prices(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, close) arrays; high and low fall back to the close when absent."""
    check_bars(frame, required=("ts", "symbol", "close"))
    close = price_array(frame, column="close")
    high = price_array(frame, column="high") if "high" in frame.columns else close
    low = price_array(frame, column="low") if "low" in frame.columns else close
    return high, low, close


def _symbol_rows(frame: pl.DataFrame) -> list[np.ndarray]:
    """Row indices of each symbol, in frame order (symbols may be interleaved)."""
    groups = (
        frame.select("symbol")
        .with_row_index("_row")
        .group_by("symbol", maintain_order=True)
        .agg(pl.col("_row"))
    )
    return [np.asarray(rows, dtype=np.int64) for rows in groups["_row"].to_list()]


def _event_mask(frame: pl.DataFrame, events: pl.DataFrame | None) -> np.ndarray:
    """Boolean mask of the rows named by ``events`` (every row when None)."""
    if events is None:
        return np.ones(frame.height, dtype=bool)
    if not isinstance(events, pl.DataFrame):
        raise ValueError(
            f"events must be a polars DataFrame with columns 'ts' and 'symbol' (or None for "
            f"every bar), got {type(events).__name__}"
        )
    missing = [c for c in ("ts", "symbol") if c not in events.columns]
    if missing:
        raise ValueError(f"events have no column(s) {missing}; columns are {events.columns}")
    keys = events.select(
        pl.col("ts").cast(frame["ts"].dtype), pl.col("symbol").cast(frame["symbol"].dtype)
    ).unique()
    unmatched = keys.join(frame.select("ts", "symbol"), on=["ts", "symbol"], how="anti")
    if unmatched.height:
        first = unmatched.sort("symbol", "ts").row(0, named=True)
        raise ValueError(
            f"events hold {unmatched.height} (ts, symbol) pair(s) with no bar, e.g. "
            f"ts={first['ts']!r}, symbol={first['symbol']!r}: events must be bars of the frame"
        )
    rows = (
        frame.select("ts", "symbol")
        .with_row_index("_row")
        .join(keys, on=["ts", "symbol"], how="semi")["_row"]
        .to_numpy()
    )
    mask = np.zeros(frame.height, dtype=bool)
    mask[rows] = True
    return mask


def _side_array(frame: pl.DataFrame, side: str | pl.Series) -> np.ndarray:
    """Side per row as float64 in {-1, 0, 1} (null -> 0, no trade)."""
    if isinstance(side, str):
        if side not in frame.columns:
            raise ValueError(f"side={side!r} names no column; columns are {frame.columns}")
        series = frame[side]
    elif isinstance(side, pl.Series):
        if side.len() != frame.height:
            raise ValueError(
                f"side has {side.len()} values but the frame has {frame.height} rows: "
                f"pass one side per bar (0 or null for no trade)"
            )
        series = side
    else:
        raise ValueError(
            f"side must be a column name or a polars Series, got {type(side).__name__}"
        )
    if not series.dtype.is_numeric():
        raise ValueError(f"side has dtype {series.dtype}; expected -1, 0 or 1 per bar")
    values = series.cast(pl.Float64).fill_null(0.0).to_numpy().copy()
    bad = ~np.isin(values, (-1.0, 0.0, 1.0))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"side has {float(values[row])!r} at row {row}: sides must be -1 (short), 1 (long) or "
            f"0 / null (no trade)"
        )
    return values


def _nullable_int(name: str, values: np.ndarray, defined: np.ndarray) -> pl.Series:
    """Int64 series with null where ``defined`` is False."""
    return pl.Series(name, values, dtype=pl.Int64).scatter(np.flatnonzero(~defined), None)


def forward_returns(
    frame: pl.DataFrame, *, horizons_bars: Sequence[int] = (1, 4, 24), log: bool = True
) -> pl.DataFrame:
    """Return from each bar's close to the close ``h`` bars later, per symbol.

    Parameters
    ----------
    frame
        Bars with ``ts``, ``symbol`` and ``close`` (strictly increasing ``ts`` per symbol).
    horizons_bars
        Horizons in bars (each >= 1, distinct).
    log
        Log returns ``log(c[t+h] / c[t])`` when True, simple returns ``c[t+h] / c[t] - 1``
        when False.

    Returns
    -------
    pl.DataFrame
        ``ts``, ``symbol`` and one Float64 column ``forward_return_{h}`` per horizon, in the
        frame's row order; null for the last ``h`` bars of each symbol.

    Raises
    ------
    ValueError
        If a column is missing, ``ts`` does not increase within a symbol, a close is not
        finite and positive, or a horizon is not an int >= 1.

    Examples
    --------
    >>> bars = pl.DataFrame({"ts": [0, 1, 0, 1], "symbol": ["A", "A", "B", "B"],
    ...                      "close": [1.0, 2.0, 4.0, 2.0]})
    >>> forward_returns(bars, horizons_bars=(1,), log=False)["forward_return_1"].to_list()
    [1.0, None, -0.5, None]
    """
    if isinstance(horizons_bars, int | str) or not isinstance(horizons_bars, Sequence):
        raise ValueError(f"horizons_bars must be a sequence of ints, got {horizons_bars!r}")
    horizons = [_check_int(h, name="horizons_bars", minimum=1) for h in horizons_bars]
    if not horizons or len(set(horizons)) != len(horizons):
        raise ValueError(f"horizons_bars must be non-empty and distinct, got {horizons_bars!r}")
    if not isinstance(log, bool):
        raise ValueError(f"log must be True or False, got {log!r}")
    _, _, close = _prices(frame)
    groups = _symbol_rows(frame)
    columns = []
    for h in horizons:
        out = np.empty(frame.height)
        for rows in groups:
            out[rows] = labels_nb.forward_returns(np.ascontiguousarray(close[rows]), h, log)
        columns.append(pl.Series(f"forward_return_{h}", out).fill_nan(None))
    return frame.select("ts", "symbol").with_columns(columns)


def _barrier_frame(
    frame: pl.DataFrame,
    prices: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    sides: np.ndarray,
    events: np.ndarray,
    profit_taking: float,
    stop_loss: float,
    max_holding_bars: int,
    volatility_span_bars: int,
    meta: bool,
    vertical_sign: bool,
) -> pl.DataFrame:
    """Run the barrier kernel per symbol and wrap the per-event outputs in frame order."""
    high, low, close = prices
    empty = np.empty(0)
    parts: list[tuple[np.ndarray, ...]] = [
        (empty.astype(np.int64), empty, empty.astype(np.int64), empty, empty, empty)
    ]
    for rows in _symbol_rows(frame):
        c = np.ascontiguousarray(close[rows])
        returns = np.empty_like(c)
        returns[0] = np.nan
        returns[1:] = c[1:] / c[:-1] - 1.0
        # The target is known at the event's close: the EWM std of returns up to that bar.
        sigma = labels_nb.ewm_std(returns, volatility_span_bars, volatility_span_bars)
        local = np.flatnonzero(events[rows]).astype(np.int64)
        args = (
            np.ascontiguousarray(high[rows]),
            np.ascontiguousarray(low[rows]),
            c,
            local,
            np.ascontiguousarray(sigma[local]),
        )
        if meta:
            side = np.ascontiguousarray(sides[rows][local])
            label, end, ret, barrier = labels_nb.meta_labels(
                *args, side, profit_taking, stop_loss, max_holding_bars
            )
        else:
            label, end, ret, barrier = labels_nb.triple_barrier(
                *args, profit_taking, stop_loss, max_holding_bars, vertical_sign
            )
        end_row = np.where(end >= 0, rows[np.maximum(end, 0)], -1)
        parts.append((rows[local], label, end_row, ret, barrier, sigma[local]))
    event_row, label, end_row, ret, barrier, sigma = (
        np.concatenate(p) for p in zip(*parts, strict=True)
    )
    order = np.argsort(event_row, kind="stable")
    event_row, label, end_row = event_row[order], label[order], end_row[order]
    ret, barrier, sigma = ret[order], barrier[order], sigma[order]
    defined = end_row >= 0
    ts = frame["ts"].cast(pl.Int64).to_numpy()
    end_ts = np.where(defined, ts[np.maximum(end_row, 0)], 0)
    names = [_BARRIER_NAMES.get(b) for b in barrier.tolist()]
    label_name = "meta_label" if meta else "label"
    out = frame.select("ts", "symbol")[event_row]
    if meta:
        out = out.with_columns(pl.Series("side", sides[event_row]).cast(pl.Int8))
    return out.with_columns(
        pl.Series(label_name, label).fill_nan(None).cast(pl.Int8),
        _nullable_int("label_end_ts", end_ts, defined),
        _nullable_int("label_end_index", end_row, defined),
        pl.Series("return", ret).fill_nan(None),
        pl.Series("barrier", names, dtype=pl.String),
        pl.Series("target", sigma).fill_nan(None),
    )


def triple_barrier_labels(
    frame: pl.DataFrame,
    *,
    profit_taking: float = 2.0,
    stop_loss: float = 1.0,
    max_holding_bars: int = 24,
    volatility_span_bars: int = 100,
    events: pl.DataFrame | None = None,
    vertical_label: str = "sign",
) -> pl.DataFrame:
    """Triple-barrier labels (López de Prado, AFML ch. 3) with volatility-scaled barriers.

    For each event bar ``i`` the target ``sigma`` is the EWM std of simple close-to-close
    returns up to bar ``i`` (span and warm-up ``volatility_span_bars``). The upper barrier is
    ``close * (1 + profit_taking * sigma)``, the lower ``close * (1 - stop_loss * sigma)``, the
    vertical one ``max_holding_bars`` bars later. Touches are read on the ``high``/``low`` of
    bars ``i + 1 ..`` (on the close when the frame has no high/low); a bar touching both
    barriers counts as the stop (conservative). The first touch sets the label.

    Parameters
    ----------
    frame
        Bars with ``ts``, ``symbol``, ``close`` and optionally ``high``/``low``.
    profit_taking, stop_loss
        Barrier widths in multiples of ``sigma`` (> 0; ``math.inf`` disables a barrier).
    max_holding_bars
        Bars from the event to the vertical barrier (>= 1).
    volatility_span_bars
        EWM span of the target volatility in bars (>= 2); labels are null while it warms up.
    events
        Frame of ``ts``/``symbol`` pairs to label (e.g. from a CUSUM filter), each a bar of
        ``frame``; None labels every bar.
    vertical_label
        Label at the vertical barrier: ``"sign"`` (sign of the return, AFML) or ``"zero"``.

    Returns
    -------
    pl.DataFrame
        One row per event in frame order: ``ts``, ``symbol``, ``label`` (Int8: 1, -1, or the
        vertical label), ``label_end_ts`` and ``label_end_index`` (Int64: the touch or vertical
        bar, as ts and as the row index into ``frame``), ``return`` (Float64: simple return to
        the exit, at the barrier price for a touch or the close at the vertical barrier),
        ``barrier`` (``"profit_taking"``, ``"stop_loss"`` or ``"vertical"``) and ``target``
        (``sigma``). All but ``ts``/``symbol``/``target`` are null where the label is
        undefined: ``sigma`` missing or zero, or no touch before the data ends.

    Raises
    ------
    ValueError
        If a column is missing, ``ts`` does not increase within a symbol, a price is not finite
        and positive, an event is not a bar of ``frame``, or an option is out of range.

    Examples
    --------
    >>> bars = pl.DataFrame({"ts": [0, 1, 2, 3, 4, 5], "symbol": ["X"] * 6,
    ...                      "close": [100.0, 101.0, 100.0, 101.0, 103.0, 99.0]})
    >>> out = triple_barrier_labels(bars, profit_taking=1.0, stop_loss=1.0,
    ...                             max_holding_bars=2, volatility_span_bars=2)
    >>> out.select("label", "label_end_index", "barrier").row(2)
    (1, 4, 'profit_taking')
    """
    profit = _check_multiplier(profit_taking, name="profit_taking")
    stop = _check_multiplier(stop_loss, name="stop_loss")
    holding = _check_int(max_holding_bars, name="max_holding_bars", minimum=1)
    span = _check_int(volatility_span_bars, name="volatility_span_bars", minimum=2)
    if vertical_label not in _VERTICAL_LABELS:
        raise ValueError(
            f"vertical_label must be one of {_VERTICAL_LABELS}, got {vertical_label!r}"
        )
    prices = _prices(frame)
    return _barrier_frame(
        frame,
        prices,
        sides=np.ones(frame.height),
        events=_event_mask(frame, events),
        profit_taking=profit,
        stop_loss=stop,
        max_holding_bars=holding,
        volatility_span_bars=span,
        meta=False,
        vertical_sign=vertical_label == "sign",
    )


def meta_labels(
    frame: pl.DataFrame,
    *,
    side: str | pl.Series,
    profit_taking: float = 2.0,
    stop_loss: float = 1.0,
    max_holding_bars: int = 24,
    volatility_span_bars: int = 100,
    events: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Meta-labels (AFML ch. 3.6): did the primary model's trade on each event pay off?

    The barriers are those of ``triple_barrier_labels`` turned to the side: for a short the
    profit-taking barrier is ``close * (1 - profit_taking * sigma)`` (touched by a low) and the
    stop ``close * (1 + stop_loss * sigma)`` (touched by a high). The meta-label is 1 when the
    trade hit profit-taking or reached the vertical barrier with a positive return, else 0.

    Parameters
    ----------
    frame
        Bars with ``ts``, ``symbol``, ``close`` and optionally ``high``/``low``.
    side
        The primary model's side per bar: a column name of ``frame`` or a Series of its
        height, with 1 (long), -1 (short), 0 or null (no trade). Bars with no trade are not
        events.
    profit_taking, stop_loss, max_holding_bars, volatility_span_bars
        As in ``triple_barrier_labels``.
    events
        ``ts``/``symbol`` pairs to restrict the events to (None: every bar with a side).

    Returns
    -------
    pl.DataFrame
        One row per event in frame order: ``ts``, ``symbol``, ``side`` (Int8), ``meta_label``
        (Int8: 1 or 0), ``label_end_ts``, ``label_end_index``, ``return`` (the side's simple
        return), ``barrier`` and ``target``; null where undefined, as in
        ``triple_barrier_labels``.

    Raises
    ------
    ValueError
        As ``triple_barrier_labels``, or if ``side`` is missing, of the wrong length or holds
        a value other than -1, 0, 1 or null.

    Examples
    --------
    >>> bars = pl.DataFrame({"ts": [0, 1, 2, 3, 4, 5], "symbol": ["X"] * 6,
    ...                      "close": [100.0, 101.0, 100.0, 101.0, 103.0, 99.0],
    ...                      "side": [0, 0, -1, 1, -1, 0]})
    >>> out = meta_labels(bars, side="side", profit_taking=1.0, stop_loss=1.0,
    ...                   max_holding_bars=2, volatility_span_bars=2)
    >>> out.select("side", "meta_label", "barrier").rows()
    [(-1, 0, 'stop_loss'), (1, 1, 'profit_taking'), (-1, 1, 'profit_taking')]
    """
    profit = _check_multiplier(profit_taking, name="profit_taking")
    stop = _check_multiplier(stop_loss, name="stop_loss")
    holding = _check_int(max_holding_bars, name="max_holding_bars", minimum=1)
    span = _check_int(volatility_span_bars, name="volatility_span_bars", minimum=2)
    prices = _prices(frame)
    sides = _side_array(frame, side)
    return _barrier_frame(
        frame,
        prices,
        sides=sides,
        events=_event_mask(frame, events) & (sides != 0.0),
        profit_taking=profit,
        stop_loss=stop,
        max_holding_bars=holding,
        volatility_span_bars=span,
        meta=True,
        vertical_sign=True,
    )
