"""Feature sets beyond one symbol's bars: higher timeframes, funding, DEX pools, cross-asset.

Every function takes lake bars (``ts`` Int64 epoch ms of the bar's **open**, ``symbol``,
OHLCV; one or many symbols, ``ts`` strictly increasing within a symbol) and returns them
with float64 feature columns added: one row per input bar, in the input's order.

Causality. A bar opened at ``ts`` closes at ``ts + interval_ms``; every feature on that row
uses only what was known at that close:

- a higher-timeframe (HTF) value comes from the last HTF bar whose close is at or before the
  base bar's close (an as-of join, backward, on close times), so the 1d RSI on the 23:00
  hourly bar is today's, and on the 22:00 bar yesterday's;
- a funding value comes from the last settlement with ``settlement ts <= bar close``;
- a pool feature from the last pool bar closed by the bar's close;
- cross-asset values come from the other symbols' bars at the **same** ``ts`` (which close
  together with this one) and earlier.

So ``f(bars[ts <= t])`` gives the same row at ``t`` as ``f(bars)``; the tests check it with
``research_lib.validation.detect_lookahead`` and a truncation property.

Incomplete HTF bars. An HTF bar is **complete** when all ``timeframe / interval_ms`` base bars
of its UTC-aligned span are present. Only complete HTF bars enter the HTF series; an
incomplete one (a gap in the data, or the first partial day) is dropped, and the indicators
run over the complete bars as if it had not happened. Base bars inside a dropped span keep
the values of the last complete HTF bar. The HTF bar in progress is never used early: it is
complete only once its last base bar has arrived, and then its close is that bar's close.

Null policy (as ``research_lib.features``): null, never NaN, during warm-up, where an input
is missing (no funding yet, no reference bar at that ``ts``) and where a value is undefined
(a constant window's z-score). A pool column a frame lacks is skipped: no column is added.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from kernels import rolling as rolling_nb
from research_lib import indicators
from research_lib.features import check_bars, price_array

__all__ = [
    "add_extended_features",
    "cross_asset_features",
    "feature_columns",
    "funding_features",
    "multi_timeframe_features",
    "pool_features",
]

YEAR_MS = 365 * 86_400_000
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
_TIMEFRAME = re.compile(r"^([1-9][0-9]*)([mhd])$")
_FEATURE_PATTERNS = (
    re.compile(r"^(ret_1|rsi_\d+|close_ema_\d+|rv_\d+|natr_\d+)_\d+[mhd]$"),
    re.compile(r"^funding_(last|age_hours|annualised|mean_\d+|zscore_\d+)$"),
    re.compile(r"^pool_[a-z_]+(_\d+)?$"),
    re.compile(r"^(ref_ret_1(_lag_\d+)?|mkt_ret_1|beta_\d+|corr_\d+|mom_\d+(_rank|_zscore)?)$"),
)

# --------------------------------------------------------------------------------------------
# Checks and array helpers


def _check_int(value: object, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _check_windows(values: object, *, name: str, minimum: int) -> tuple[int, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of ints, got {values!r}")
    windows = tuple(_check_int(v, name=name, minimum=minimum) for v in values)
    if len(set(windows)) != len(windows):
        raise ValueError(f"{name} must hold distinct values, got {values!r}")
    return windows


def _parse_timeframe(timeframe: object, *, interval_ms: int) -> int:
    """``"4h"`` -> 14_400_000, after checking it is a multiple of ``interval_ms``."""
    match = _TIMEFRAME.match(timeframe) if isinstance(timeframe, str) else None
    if match is None:
        raise ValueError(
            f"timeframes holds {timeframe!r}: use a count and a unit m, h or d, e.g. '4h' or '1d'"
        )
    tf_ms = int(match.group(1)) * _UNIT_MS[match.group(2)]
    if tf_ms <= interval_ms or tf_ms % interval_ms:
        raise ValueError(
            f"timeframes holds {timeframe!r} ({tf_ms} ms): it must be a multiple of "
            f"interval_ms={interval_ms} and longer than it"
        )
    return tf_ms


def _check_frame(frame: object, *, name: str, required: tuple[str, ...]) -> pl.DataFrame:
    if not isinstance(frame, pl.DataFrame):
        raise ValueError(f"{name} must be a polars DataFrame, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} have no column(s) {missing}; columns are {frame.columns}")
    if not frame["ts"].dtype.is_integer():
        raise ValueError(f"{name} column 'ts' has dtype {frame['ts'].dtype}; expected Int64 ms")
    if "symbol" in frame.columns and frame["symbol"].null_count():
        row = int(frame["symbol"].is_null().arg_max())
        raise ValueError(f"{name} column 'symbol' is null at row {row}: every row needs one")
    try:
        check_bars(frame, required=required)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return frame


def _no_clash(frame: pl.DataFrame, names: Sequence[str]) -> None:
    clash = [n for n in names if n in frame.columns]
    if clash:
        raise ValueError(f"bars already have column(s) {clash}: drop them before adding features")


def _groups(frame: pl.DataFrame) -> list[tuple[str, np.ndarray]]:
    """(symbol, row indices) per symbol in order of first appearance; one group without one."""
    if "symbol" not in frame.columns:
        return [("", np.arange(frame.height, dtype=np.int64))]
    grouped = (
        frame.select(pl.col("symbol").cast(pl.String))
        .with_row_index("_row")
        .group_by("symbol", maintain_order=True)
        .agg(pl.col("_row"))
    )
    return [
        (str(s), np.asarray(r, dtype=np.int64))
        for s, r in zip(grouped["symbol"], grouped["_row"].to_list(), strict=True)
    ]


def _floats(frame: pl.DataFrame, column: str) -> np.ndarray:
    """A numeric (or decimal) column as float64, null -> NaN."""
    series = frame[column]
    if not (series.dtype.is_numeric() or isinstance(series.dtype, pl.Decimal)):
        raise ValueError(f"column {column!r} has dtype {series.dtype}; expected numbers")
    values = series.cast(pl.Float64).fill_null(np.nan).to_numpy()
    return np.ascontiguousarray(values, dtype=np.float64)


def _log_ratio(values: np.ndarray, lag: int) -> np.ndarray:
    """``log(x[t] / x[t - lag])``, NaN for the first ``lag`` values or a non-positive input."""
    out = np.full(values.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[lag:] = np.log(values[lag:] / values[: max(values.size - lag, 0)])
    out[np.isinf(out)] = np.nan
    return out


def _asof(keys: np.ndarray, queries: np.ndarray, *, tolerance: int | None = None) -> np.ndarray:
    """Index of the last key <= each query (keys sorted), -1 where none (or older than tol)."""
    idx = np.searchsorted(keys, queries, side="right") - 1
    if tolerance is not None and keys.size:
        idx[(idx >= 0) & (queries - keys[np.maximum(idx, 0)] > tolerance)] = -1
    return idx


def _take(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    out = np.full(idx.shape, np.nan)
    found = idx >= 0
    out[found] = values[idx[found]]
    return out


def _with_columns(frame: pl.DataFrame, columns: Mapping[str, np.ndarray]) -> pl.DataFrame:
    return frame.with_columns(
        pl.Series(name, values, dtype=pl.Float64).fill_nan(None) for name, values in columns.items()
    )


def _indicator(name: str, arrays: Mapping[str, np.ndarray], **params: int) -> np.ndarray:
    (out,) = indicators.compute(name, arrays, **params).values()
    return out


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    return rolling_nb.rolling_mean(values, window, np.empty_like(values))


def _rolling_zscore(values: np.ndarray, window: int) -> np.ndarray:
    return rolling_nb.rolling_zscore(values, window, np.empty_like(values))


# --------------------------------------------------------------------------------------------
# Multi-timeframe


def _htf_bars(
    ts: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    *,
    tf_ms: int,
    interval_ms: int,
) -> dict[str, np.ndarray]:
    """Complete HTF bars of one symbol: open_ts, close_ts, high, low, close."""
    bucket = ts // tf_ms * tf_ms  # a symbol's group is never empty
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], ts.size]
    complete = (ends - starts) == tf_ms // interval_ms
    return {
        "open_ts": bucket[starts][complete],
        "close_ts": bucket[starts][complete] + tf_ms,
        "high": np.maximum.reduceat(high, starts)[complete],
        "low": np.minimum.reduceat(low, starts)[complete],
        "close": close[ends - 1][complete],
    }


def multi_timeframe_features(
    bars: pl.DataFrame,
    *,
    interval_ms: int,
    timeframes: Sequence[str] = ("4h", "1d"),
    rsi_bars: int = 14,
    ema_bars: int = 20,
    volatility_bars: int = 20,
    atr_bars: int = 14,
) -> pl.DataFrame:
    """Indicators of higher-timeframe bars, joined causally onto the base bars.

    Per symbol, the base bars are aggregated into UTC-aligned HTF bars (open time a multiple
    of the timeframe; high = max, low = min, close = last). Only complete HTF bars are kept
    (see the module docstring). Each HTF indicator is joined onto the base bars from the
    first base bar whose close (``ts + interval_ms``) equals or follows the HTF bar's close.

    Parameters
    ----------
    bars
        Lake bars with ``ts``, ``symbol``, ``high``, ``low``, ``close``; ``ts`` on the
        ``interval_ms`` grid, strictly increasing per symbol.
    interval_ms
        The base bars' interval in ms, e.g. 3_600_000.
    timeframes
        Higher timeframes as ``"<count><m|h|d>"``; each a multiple of ``interval_ms``.
    rsi_bars, ema_bars, volatility_bars, atr_bars
        Indicator windows, in HTF bars.

    Returns
    -------
    pl.DataFrame
        ``bars`` plus, per timeframe ``tf``: ``ret_1_{tf}`` (log return of the HTF close over
        the previous complete HTF bar), ``rsi_{n}_{tf}`` (``talib.RSI``), ``close_ema_{n}_{tf}``
        (HTF close / EMA - 1), ``rv_{n}_{tf}`` (per-bar std of HTF log returns, ddof=1) and
        ``natr_{n}_{tf}`` (``talib.NATR``, percent).

    Raises
    ------
    ValueError
        Naming the field and value: a missing column, a bad timeframe or window, ``ts`` off
        the interval grid or not increasing, a non-positive price.

    Examples
    --------
    >>> bars = pl.DataFrame({"ts": [i * 3_600_000 for i in range(12)], "symbol": "X",
    ...     "high": [float(i + 2) for i in range(12)], "low": [float(i + 1) for i in range(12)],
    ...     "close": [float(i + 1.5) for i in range(12)]})
    >>> out = multi_timeframe_features(bars, interval_ms=3_600_000, timeframes=("4h",))
    >>> [None if v is None else round(v, 4) for v in out["ret_1_4h"].to_list()]
    [None, None, None, None, None, None, None, 0.636, 0.636, 0.636, 0.636, 0.3857]
    """
    interval_ms = _check_int(interval_ms, name="interval_ms", minimum=1)
    if isinstance(timeframes, str) or not isinstance(timeframes, Sequence) or not timeframes:
        raise ValueError(
            f"timeframes must be a non-empty sequence like ('4h', '1d'), got {timeframes!r}"
        )
    if len(set(timeframes)) != len(timeframes):
        raise ValueError(f"timeframes must be distinct, got {timeframes!r}")
    tf_ms = {tf: _parse_timeframe(tf, interval_ms=interval_ms) for tf in timeframes}
    rsi_n = _check_int(rsi_bars, name="rsi_bars", minimum=2)
    ema_n = _check_int(ema_bars, name="ema_bars", minimum=1)
    vol_n = _check_int(volatility_bars, name="volatility_bars", minimum=2)
    atr_n = _check_int(atr_bars, name="atr_bars", minimum=1)
    bars = _check_frame(bars, name="bars", required=("ts", "symbol", "high", "low", "close"))
    off = (bars["ts"] % interval_ms) != 0
    if off.any():
        row = int(off.arg_max())
        raise ValueError(
            f"bars ts={bars['ts'][row]} at row {row} is not a multiple of "
            f"interval_ms={interval_ms}: bars must open on the UTC grid of their interval"
        )
    high, low, close = (price_array(bars, column=c) for c in ("high", "low", "close"))
    ts_all = bars["ts"].cast(pl.Int64).to_numpy()
    prefixes = {"ret": "ret_1", "rsi": f"rsi_{rsi_n}", "ema": f"close_ema_{ema_n}",
                "rv": f"rv_{vol_n}", "natr": f"natr_{atr_n}"}  # fmt: skip
    names = {tf: {k: f"{p}_{tf}" for k, p in prefixes.items()} for tf in timeframes}
    _no_clash(bars, [n for cols in names.values() for n in cols.values()])
    out = {n: np.full(bars.height, np.nan) for cols in names.values() for n in cols.values()}
    for _, rows in _groups(bars):
        ts = ts_all[rows]
        for tf, ms in tf_ms.items():
            htf = _htf_bars(
                ts, high[rows], low[rows], close[rows], tf_ms=ms, interval_ms=interval_ms
            )
            hlc = {"high": htf["high"], "low": htf["low"], "close": htf["close"]}
            with np.errstate(divide="ignore", invalid="ignore"):
                ema_gap = htf["close"] / _indicator("ema", hlc, span_bars=ema_n) - 1.0
            values = {
                "ret": _log_ratio(htf["close"], 1),
                "rsi": _indicator("rsi", hlc, window_bars=rsi_n),
                "ema": ema_gap,
                "rv": _indicator("cc_volatility", hlc, window_bars=vol_n),
                "natr": _indicator("natr", hlc, window_bars=atr_n),
            }
            idx = _asof(htf["close_ts"], ts + interval_ms)
            for key, column in names[tf].items():
                out[column][rows] = _take(values[key], idx)
    return _with_columns(bars, out)


# --------------------------------------------------------------------------------------------
# Funding


def funding_features(
    bars: pl.DataFrame,
    funding: pl.DataFrame,
    *,
    interval_ms: int,
    windows: Sequence[int] = (3, 21),
    funding_interval_ms: int = 28_800_000,
) -> pl.DataFrame:
    """The last funding settlement known at each bar's close, and its recent statistics.

    Per symbol, the settlement used on a bar is the last one with ``settlement ts <= ts +
    interval_ms``. Symbols with no funding rows, and bars before a symbol's first settlement,
    get nulls.

    Parameters
    ----------
    bars
        Lake bars with ``ts`` and ``symbol``.
    funding
        ``ts`` (settlement time, ms), ``symbol``, ``funding_rate`` (per settlement, e.g.
        0.0001); ``ts`` strictly increasing per symbol.
    interval_ms
        The bars' interval in ms.
    windows
        Settlement counts (>= 2) for the rolling mean and z-score.
    funding_interval_ms
        Time between settlements, for annualising (Binance: 8 h).

    Returns
    -------
    pl.DataFrame
        ``bars`` plus ``funding_last``, ``funding_age_hours`` (bar close - settlement),
        ``funding_annualised`` (``funding_last * YEAR_MS / funding_interval_ms``) and per
        window n ``funding_mean_{n}`` and ``funding_zscore_{n}`` (ddof=0; null when the
        last n settlements are all equal).

    Raises
    ------
    ValueError
        Naming the field and value: a missing column, ``ts`` not increasing, a null or
        non-finite ``funding_rate``, a bad window.

    Examples
    --------
    >>> bars = pl.DataFrame({"ts": [0, 3_600_000, 7_200_000], "symbol": "X"})
    >>> funding = pl.DataFrame({"ts": [3_600_000, 7_200_000], "symbol": "X",
    ...                         "funding_rate": [0.0001, 0.0003]})
    >>> out = funding_features(bars, funding, interval_ms=3_600_000, windows=(2,))
    >>> out["funding_last"].to_list(), out["funding_mean_2"].round(6).to_list()
    ([0.0001, 0.0003, 0.0003], [None, 0.0002, 0.0002])
    """
    interval_ms = _check_int(interval_ms, name="interval_ms", minimum=1)
    windows = _check_windows(windows, name="windows", minimum=2)
    period_ms = _check_int(funding_interval_ms, name="funding_interval_ms", minimum=1)
    bars = _check_frame(bars, name="bars", required=("ts", "symbol"))
    funding = _check_frame(funding, name="funding", required=("ts", "symbol", "funding_rate"))
    rates_all = _floats(funding, "funding_rate")
    bad = ~np.isfinite(rates_all)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"funding column 'funding_rate' has {funding['funding_rate'][row]!r} at row {row} "
            f"(symbol={funding['symbol'][row]!r}, ts={funding['ts'][row]}): drop or repair it"
        )
    names = ["funding_last", "funding_age_hours", "funding_annualised"]
    names += [f"funding_{k}_{n}" for n in windows for k in ("mean", "zscore")]
    _no_clash(bars, names)
    out = {n: np.full(bars.height, np.nan) for n in names}
    settle_ts = funding["ts"].cast(pl.Int64).to_numpy()
    settlements = dict(_groups(funding))
    ts_all = bars["ts"].cast(pl.Int64).to_numpy()
    for symbol, rows in _groups(bars):
        if symbol not in settlements:
            continue
        f_rows = settlements[symbol]
        f_ts, rate = settle_ts[f_rows], rates_all[f_rows]
        close_ts = ts_all[rows] + interval_ms
        idx = _asof(f_ts, close_ts)
        last = _take(rate, idx)
        out["funding_last"][rows] = last
        out["funding_age_hours"][rows] = (close_ts - _take(f_ts, idx)) / 3_600_000
        out["funding_annualised"][rows] = last * (YEAR_MS / period_ms)
        for n in windows:
            out[f"funding_mean_{n}"][rows] = _take(_rolling_mean(rate, n), idx)
            out[f"funding_zscore_{n}"][rows] = _take(_rolling_zscore(rate, n), idx)
    return _with_columns(bars, out)


# --------------------------------------------------------------------------------------------
# DEX pools


def _reference_close(reference: object) -> tuple[np.ndarray, np.ndarray]:
    ref = _check_frame(reference, name="reference", required=("ts", "close"))
    if "symbol" in ref.columns and ref["symbol"].n_unique() > 1:
        raise ValueError(
            f"reference holds symbols {sorted(ref['symbol'].cast(pl.String).unique())}: "
            f"pass one CEX symbol's bars"
        )
    return ref["ts"].cast(pl.Int64).to_numpy(), price_array(ref, column="close")


def pool_features(
    bars: pl.DataFrame,
    *,
    interval_ms: int,
    reference: pl.DataFrame | None = None,
    reference_interval_ms: int | None = None,
    windows: Sequence[int] = (60,),
    flow_token: int = 1,
) -> pl.DataFrame:
    """Features of DEX pool bars, from whichever pool columns the frame has.

    Works on ``research_lib.sources.evm_bars`` pool bars (``close``, ``volume``) and on the
    per-minute Uniswap V3 frames of ``../shared/data/real/dex`` (``price_close``,
    ``net_amount{0,1}``, ``in_amount{0,1}``, ``liquidity``; decimals are read as float64).
    A feature whose input columns the frame lacks is skipped (its column is not added).
    Windows count pool bars (rows), so a quiet stretch missing from the data is skipped.

    Parameters
    ----------
    bars
        Pool bars with ``ts`` (open time, ms); ``symbol`` optional (one pool if absent).
    interval_ms
        The pool bars' interval in ms (60_000 for the minute files).
    reference
        Optional CEX bars of one symbol (``ts``, ``close``) for the basis.
    reference_interval_ms
        The reference bars' interval (default ``interval_ms``).
    windows
        Rolling windows in pool bars (>= 2).
    flow_token
        Which token's flows give the imbalance: 0 or 1 (``net_amount{k}``, ``in_amount{k}``).

    Returns
    -------
    pl.DataFrame
        ``bars`` plus, as their inputs allow:

        - ``volume`` -> ``pool_volume_zscore_{w}``; ``swap_count`` -> ``pool_swaps_zscore_{w}``;
        - ``net_amount{k}`` and ``in_amount{k}`` -> ``pool_flow_imbalance`` (``(in - out) /
          (in + out)`` of token k, out = in - net; in [-1, 1], positive = token k flowed
          into the pool) and ``pool_flow_imbalance_{w}`` (the same over w bars' sums);
        - ``liquidity`` -> ``pool_liquidity_change`` and ``pool_liquidity_change_{w}``
          (``log(L[t] / L[t - lag])``);
        - a price (``close``, else ``price_close``) and ``reference`` -> ``pool_basis``
          (``log(pool close / reference close)``, the reference bar being the last one closed
          by the pool bar's close and closed less than ``reference_interval_ms`` before it)
          and ``pool_basis_zscore_{w}``.

    Raises
    ------
    ValueError
        Naming the field and value: a missing ``ts``, ``ts`` not increasing, a bad window or
        ``flow_token``, a non-positive price, a multi-symbol reference.

    Examples
    --------
    >>> pool = pl.DataFrame({"ts": [0, 60_000, 120_000], "close": [100.0, 101.0, 102.0],
    ...     "net_amount1": [1.0, -2.0, 0.0], "in_amount1": [1.0, 1.0, 0.0]})
    >>> pool_features(pool, interval_ms=60_000, windows=(2,))["pool_flow_imbalance"].to_list()
    [1.0, -0.5, None]
    """
    interval_ms = _check_int(interval_ms, name="interval_ms", minimum=1)
    windows = _check_windows(windows, name="windows", minimum=2)
    if flow_token not in (0, 1) or isinstance(flow_token, bool):
        raise ValueError(f"flow_token must be 0 or 1, got {flow_token!r}")
    bars = _check_frame(bars, name="pool bars", required=("ts",))
    ref_interval = interval_ms if reference_interval_ms is None else reference_interval_ms
    ref_interval = _check_int(ref_interval, name="reference_interval_ms", minimum=1)
    inputs = {c: _floats(bars, c) for c in ("volume", "swap_count", "liquidity") if c in bars}
    net, gross_in = f"net_amount{flow_token}", f"in_amount{flow_token}"
    if net in bars.columns and gross_in in bars.columns:
        inputs["net"] = _floats(bars, net)
        inputs["gross"] = 2.0 * _floats(bars, gross_in) - inputs["net"]
    price = next((c for c in ("close", "price_close") if c in bars.columns), None)
    if price is not None and reference is not None:
        ref_ts, ref_close = _reference_close(reference)
        close_ts = bars["ts"].cast(pl.Int64).to_numpy() + interval_ms
        idx = _asof(ref_ts + ref_interval, close_ts, tolerance=ref_interval - 1)
        inputs["basis"] = np.log(price_array(bars, column=price) / _take(ref_close, idx))
    out: dict[str, np.ndarray] = {}

    def column(name: str) -> np.ndarray:
        return out.setdefault(name, np.full(bars.height, np.nan))

    for _, rows in _groups(bars):
        got = {k: v[rows] for k, v in inputs.items()}
        for key, label in (("volume", "volume"), ("swap_count", "swaps")):
            if key in got:
                for w in windows:
                    column(f"pool_{label}_zscore_{w}")[rows] = _rolling_zscore(got[key], w)
        if "net" in got:
            with np.errstate(divide="ignore", invalid="ignore"):
                column("pool_flow_imbalance")[rows] = got["net"] / got["gross"]
                for w in windows:
                    column(f"pool_flow_imbalance_{w}")[rows] = _rolling_mean(
                        got["net"], w
                    ) / _rolling_mean(got["gross"], w)
        if "liquidity" in got:
            column("pool_liquidity_change")[rows] = _log_ratio(got["liquidity"], 1)
            for w in windows:
                column(f"pool_liquidity_change_{w}")[rows] = _log_ratio(got["liquidity"], w)
        if "basis" in got:
            column("pool_basis")[rows] = got["basis"]
            for w in windows:
                column(f"pool_basis_zscore_{w}")[rows] = _rolling_zscore(got["basis"], w)
    _no_clash(bars, list(out))
    for values in out.values():
        values[~np.isfinite(values)] = np.nan  # 0/0 on a bar without trades -> null
    return _with_columns(bars, out)


# --------------------------------------------------------------------------------------------
# Cross-asset


def _rolling_beta_corr(x: np.ndarray, y: np.ndarray, window: int) -> tuple[np.ndarray, ...]:
    """Rolling beta of x on y and their correlation, from the stable rolling-std kernel:
    cov = (var(x + y) - var(x - y)) / 4, so no cancellation-prone E[xy] - E[x]E[y]."""

    def var(values: np.ndarray) -> np.ndarray:
        std = rolling_nb.rolling_std(values, window, 0, np.empty_like(values))
        return std * std

    cov = (var(x + y) - var(x - y)) / 4.0
    var_x, var_y = var(x), var(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(var_y > 0.0, cov / var_y, np.nan)
        corr = np.where((var_x > 0.0) & (var_y > 0.0), cov / np.sqrt(var_x * var_y), np.nan)
    return beta, np.clip(corr, -1.0, 1.0)


def cross_asset_features(
    bars: pl.DataFrame,
    *,
    reference: str = "BTCUSDT",
    windows: Sequence[int] = (24, 168),
    lags_bars: Sequence[int] = (1, 2),
) -> pl.DataFrame:
    """The reference asset's returns, betas and correlations to it, and cross-sectional ranks.

    Returns are ``log(close / previous close)`` within a symbol (the previous row, across a
    gap if there is one). Values at ``ts`` read other symbols' bars at the same ``ts`` (they
    close together) and earlier, never later.

    Parameters
    ----------
    bars
        Lake bars with ``ts``, ``symbol``, ``close``; ``reference`` must be one of the symbols.
    reference
        The reference symbol, e.g. ``"BTCUSDT"``.
    windows
        Windows in bars (>= 2) for beta, correlation and momentum.
    lags_bars
        Lags (>= 1), in the reference's bars, of its lagged returns.

    Returns
    -------
    pl.DataFrame
        ``bars`` plus ``ref_ret_1`` (the reference's return at this ``ts``; null if it has no
        bar then), ``ref_ret_1_lag_{k}`` (its return k of its bars earlier, on the row at this
        ``ts``), ``mkt_ret_1`` (equal-weight mean of the returns of the symbols with one at
        this ``ts``), and per window w: ``beta_{w}`` and ``corr_{w}`` of the symbol's returns
        on the reference's over the symbol's last w rows (null if any is missing; the
        reference's own are 1), ``mom_{w}`` (``log(close / close w rows earlier)``),
        ``mom_{w}_rank`` (its rank among the symbols at this ``ts``, 0 = lowest, 1 = highest,
        ties averaged) and ``mom_{w}_zscore`` (``(mom - mean) / std(ddof=0)`` across them);
        rank and z-score need two symbols with a value at this ``ts``.

    Raises
    ------
    ValueError
        Naming the field and value: a missing column, ``reference`` not among the symbols,
        ``ts`` not increasing, a non-positive close, a bad window or lag.

    Examples
    --------
    >>> bars = pl.DataFrame({"ts": [0, 0, 1, 1], "symbol": ["BTC", "ETH", "BTC", "ETH"],
    ...                      "close": [1.0, 1.0, 2.0, 4.0]})
    >>> out = cross_asset_features(bars, reference="BTC", windows=(2,), lags_bars=(1,))
    >>> out["ref_ret_1"].round(4).to_list(), out["mkt_ret_1"].round(4).to_list()
    ([None, None, 0.6931, 0.6931], [None, None, 1.0397, 1.0397])
    """
    windows = _check_windows(windows, name="windows", minimum=2)
    lags = _check_windows(lags_bars, name="lags_bars", minimum=1)
    bars = _check_frame(bars, name="bars", required=("ts", "symbol", "close"))
    close = price_array(bars, column="close")
    groups = _groups(bars)
    symbols = [s for s, _ in groups]
    if not isinstance(reference, str) or reference not in symbols:
        raise ValueError(
            f"reference={reference!r} is not a symbol of bars; symbols are {sorted(symbols)}"
        )
    names = ["ref_ret_1", *(f"ref_ret_1_lag_{k}" for k in lags), "mkt_ret_1"]
    names += [f"{p}_{w}" for w in windows for p in ("beta", "corr", "mom")]
    names += [f"mom_{w}_{s}" for w in windows for s in ("rank", "zscore")]
    _no_clash(bars, names)
    n = bars.height
    ret = np.full(n, np.nan)
    mom = {w: np.full(n, np.nan) for w in windows}
    for _, rows in groups:
        ret[rows] = _log_ratio(close[rows], 1)
        for w in windows:
            mom[w][rows] = _log_ratio(close[rows], w)
    ts = bars["ts"].cast(pl.Int64).to_numpy()
    ref_rows = dict(groups)[reference]
    ref_ts, ref_ret = ts[ref_rows], ret[ref_rows]
    hit = _asof(ref_ts, ts, tolerance=0)  # the reference row at exactly this ts, else none
    out = {"ref_ret_1": _take(ref_ret, hit)}
    for k in lags:
        lagged = np.concatenate([np.full(min(k, ref_ret.size), np.nan), ref_ret[:-k]])
        out[f"ref_ret_1_lag_{k}"] = _take(lagged, hit)
    for w in windows:
        out[f"beta_{w}"], out[f"corr_{w}"] = np.full(n, np.nan), np.full(n, np.nan)
        out[f"mom_{w}"] = mom[w]
        for _, rows in groups:
            beta, corr = _rolling_beta_corr(ret[rows], out["ref_ret_1"][rows], w)
            out[f"beta_{w}"][rows], out[f"corr_{w}"][rows] = beta, corr
    frame = pl.DataFrame(
        {"ts": ts, "ret": ret, **{f"mom_{w}": mom[w] for w in windows}}
    ).with_columns(pl.exclude("ts").fill_nan(None))
    section = [pl.col("ret").mean().over("ts").alias("mkt_ret_1")]
    for w in windows:
        m = pl.col(f"mom_{w}")
        count = m.count().over("ts")
        std = m.std(ddof=0).over("ts")
        section += [
            pl.when(count >= 2)
            .then((m.rank("average").over("ts") - 1.0) / (count - 1))
            .alias(f"mom_{w}_rank"),
            pl.when((count >= 2) & (std > 0.0))
            .then((m - m.mean().over("ts")) / std)
            .alias(f"mom_{w}_zscore"),
        ]
    sections = frame.select(section)
    for name in sections.columns:
        out[name] = sections[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
    return _with_columns(bars, {name: out[name] for name in names})


# --------------------------------------------------------------------------------------------
# Everything at once


def add_extended_features(
    bars: pl.DataFrame,
    *,
    interval_ms: int,
    funding: pl.DataFrame | None = None,
    pools: Mapping[str, pl.DataFrame] | None = None,
    pool_interval_ms: int | None = None,
    timeframes: Sequence[str] = ("4h", "1d"),
    reference: str | None = "BTCUSDT",
    windows: Sequence[int] = (24, 168),
    funding_windows: Sequence[int] = (3, 21),
    pool_windows: Sequence[int] = (60,),
) -> pl.DataFrame:
    """Bars plus every feature set that applies, one row per input bar, in the input's order.

    - ``multi_timeframe_features`` when ``timeframes`` is non-empty;
    - ``funding_features`` when ``funding`` is given;
    - pool features when ``pools`` maps a bar symbol to its pool's bars: ``pool_features`` of
      that pool with the symbol's bars as the basis reference, joined onto the symbol's bars
      from the last pool bar closed by the bar's close, if that pool bar closed less than
      ``max(interval_ms, pool_interval_ms)`` before it (else null; other symbols get null);
    - ``cross_asset_features`` when ``reference`` is not None (it must be a symbol of bars).

    Parameters
    ----------
    bars
        Lake bars (``ts``, ``symbol``, OHLCV) on the ``interval_ms`` grid.
    interval_ms
        The bars' interval in ms.
    funding
        Funding settlements (``ts``, ``symbol``, ``funding_rate``), or None.
    pools
        ``{bar symbol: pool bars}``, e.g. ``{"ETHUSDT": polygon_minutes}``, or None.
    pool_interval_ms
        The pool bars' interval (default ``interval_ms``).
    timeframes, reference, windows, funding_windows, pool_windows
        Passed to the feature functions above (``windows`` to the cross-asset features).

    Returns
    -------
    pl.DataFrame
        ``bars`` plus the columns that ``feature_columns`` lists.

    Raises
    ------
    ValueError
        As the feature functions, naming the field and value; also a ``pools`` key that is not
        a symbol of bars.

    Examples
    --------
    >>> bars = pl.DataFrame({"ts": [i * 3_600_000 for i in range(8)], "symbol": "X",
    ...     "high": 2.0, "low": 1.0, "close": 1.5})
    >>> out = add_extended_features(bars, interval_ms=3_600_000, timeframes=("4h",),
    ...                             reference=None)
    >>> feature_columns(out)
    ['ret_1_4h', 'rsi_14_4h', 'close_ema_20_4h', 'rv_20_4h', 'natr_14_4h']
    """
    interval_ms = _check_int(interval_ms, name="interval_ms", minimum=1)
    out = bars
    if timeframes:
        out = multi_timeframe_features(out, interval_ms=interval_ms, timeframes=timeframes)
    if funding is not None:
        out = funding_features(out, funding, interval_ms=interval_ms, windows=funding_windows)
    if pools:
        pool_ms = interval_ms if pool_interval_ms is None else pool_interval_ms
        pool_ms = _check_int(pool_ms, name="pool_interval_ms", minimum=1)
        out = _join_pools(
            out, pools, interval_ms=interval_ms, pool_ms=pool_ms, windows=pool_windows
        )
    if reference is not None:
        out = cross_asset_features(out, reference=reference, windows=windows)
    return out


def _join_pools(bars: pl.DataFrame, pools: Mapping[str, pl.DataFrame], *, interval_ms: int,
                pool_ms: int, windows: Sequence[int]) -> pl.DataFrame:  # fmt: skip
    """Each pool's features on its symbol's bars, from the last pool bar closed by then."""
    if not isinstance(pools, Mapping):
        raise ValueError(f"pools must map a bar symbol to pool bars, got {type(pools).__name__}")
    bars = _check_frame(bars, name="bars", required=("ts", "symbol", "close"))
    groups = dict(_groups(bars))
    ts_all = bars["ts"].cast(pl.Int64).to_numpy()
    out: dict[str, np.ndarray] = {}
    for symbol, pool in pools.items():
        if symbol not in groups:
            raise ValueError(f"pools has key {symbol!r}, not a symbol of bars {sorted(groups)}")
        if isinstance(pool, pl.DataFrame) and "symbol" in pool and pool["symbol"].n_unique() > 1:
            raise ValueError(f"pools[{symbol!r}] holds several pools: pass one pool per symbol")
        rows = groups[symbol]
        reference = bars[rows].select("ts", "close")
        features = pool_features(pool, interval_ms=pool_ms, reference=reference,
                                 reference_interval_ms=interval_ms, windows=windows)  # fmt: skip
        pool_close = features["ts"].cast(pl.Int64).to_numpy() + pool_ms
        idx = _asof(pool_close, ts_all[rows] + interval_ms, tolerance=max(interval_ms, pool_ms) - 1)
        for name in feature_columns(features):
            column = out.setdefault(name, np.full(bars.height, np.nan))
            column[rows] = _take(_floats(features, name), idx)
    _no_clash(bars, list(out))
    return _with_columns(bars, out)


def feature_columns(frame: pl.DataFrame) -> list[str]:
    """The columns of ``frame`` that the functions of this module add, in frame order.

    Parameters
    ----------
    frame
        A frame returned by any function of this module.

    Returns
    -------
    list[str]
        Names such as ``rsi_14_4h``, ``funding_zscore_21``, ``pool_basis``, ``beta_24``.

    Examples
    --------
    >>> feature_columns(pl.DataFrame({"ts": [0], "close": [1.0], "rsi_14_1d": [50.0]}))
    ['rsi_14_1d']
    """
    if not isinstance(frame, pl.DataFrame):
        raise ValueError(f"frame must be a polars DataFrame, got {type(frame).__name__}")
    return [c for c in frame.columns if any(p.match(c) for p in _FEATURE_PATTERNS)]
