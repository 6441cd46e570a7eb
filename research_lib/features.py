"""Polars features over the numba kernels, and the ``pl.col(...).ta`` expression namespace.

Missing-value policy: every function returns a float64 ``pl.Series`` with **null** where the
kernel has no value (the warm-up, or a window touching a missing input); NaN never leaks out.
Nulls and NaNs in the input are treated as missing: the EMA and RSI skip leading missing values
and stay missing after a later one (as TA-Lib's EMA does; TA-Lib's RSI reports 0 there), and a
rolling window containing a missing value is missing (as pandas ``rolling(n)`` does).
``add_features`` is stricter: it rejects a close that is missing or not positive, naming the
row.

Importing this module registers the ``ta`` namespace on polars expressions:

>>> import polars as pl
>>> import research_lib.features  # noqa: F401  (registers .ta)
>>> frame = pl.DataFrame({"close": [1.0, 2.0, 3.0, 4.0]})
>>> frame.select(pl.col("close").ta.ema(2))["close"].to_list()
[None, 1.5, 2.5, 3.5]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from kernels import momentum as momentum_nb
from kernels import rolling as rolling_nb
from research_lib import indicators
from research_lib.config import FeatureConfig

__all__ = [
    "TaExprNamespace",
    "TaFrameNamespace",
    "add_features",
    "check_bars",
    "ema",
    "price_array",
    "rolling_zscore",
    "rsi",
]


def _check_window(value: object, *, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}; pass e.g. {name}=14")
    return int(value)


def _series_array(series: pl.Series) -> np.ndarray:
    """The series as a contiguous float64 array, null -> NaN."""
    if not isinstance(series, pl.Series):
        raise TypeError(f"expected a polars Series, got {type(series).__name__}")
    if not series.dtype.is_numeric():
        raise TypeError(
            f"series {series.name!r} has dtype {series.dtype}; features need a numeric series"
        )
    floats = series.cast(pl.Float64).fill_null(np.nan)
    return np.ascontiguousarray(floats.to_numpy(), dtype=np.float64)


def _wrap(name: str, values: np.ndarray) -> pl.Series:
    return pl.Series(name, values, dtype=pl.Float64).fill_nan(None)


def ema(series: pl.Series, *, span_bars: int) -> pl.Series:
    """Exponential moving average, equal to ``talib.EMA`` (SMA seed, alpha = 2 / (span + 1)).

    Parameters
    ----------
    series
        Numeric values, oldest first.
    span_bars
        Span in bars (>= 1). The first value appears at bar ``span_bars - 1``.

    Returns
    -------
    pl.Series
        Float64, same name and length, null during the warm-up.

    Examples
    --------
    >>> ema(pl.Series("close", [1.0, 2.0, 3.0, 4.0]), span_bars=2).to_list()
    [None, 1.5, 2.5, 3.5]
    """
    span = _check_window(span_bars, name="span_bars", minimum=1)
    values = _series_array(series)
    return _wrap(series.name, rolling_nb.ema(values, span, np.empty_like(values)))


def rsi(series: pl.Series, *, window_bars: int) -> pl.Series:
    """Relative strength index in [0, 100], equal to ``talib.RSI`` (Wilder smoothing).

    Parameters
    ----------
    series
        Numeric values, oldest first.
    window_bars
        Wilder window in bars (>= 2). The first value appears at bar ``window_bars``.

    Returns
    -------
    pl.Series
        Float64, same name and length, null during the warm-up.

    Examples
    --------
    >>> rsi(pl.Series("close", [1.0, 2.0, 1.0, 2.0]), window_bars=2).to_list()
    [None, None, 50.0, 75.0]
    """
    window = _check_window(window_bars, name="window_bars", minimum=2)
    values = _series_array(series)
    return _wrap(series.name, momentum_nb.rsi(values, window, np.empty_like(values)))


def rolling_zscore(series: pl.Series, *, window_bars: int) -> pl.Series:
    """Rolling z-score ``(x - mean) / std(ddof=0)`` over the trailing ``window_bars`` bars.

    Null during the warm-up and where the window is constant (zero std).

    Parameters
    ----------
    series
        Numeric values, oldest first.
    window_bars
        Window length in bars (>= 2), including the current bar.

    Returns
    -------
    pl.Series
        Float64, same name and length.

    Examples
    --------
    >>> rolling_zscore(pl.Series("close", [1.0, 2.0, 3.0, 3.0]), window_bars=2).to_list()
    [None, 1.0, 1.0, None]
    """
    window = _check_window(window_bars, name="window_bars", minimum=2)
    values = _series_array(series)
    return _wrap(series.name, rolling_nb.rolling_zscore(values, window, np.empty_like(values)))


@pl.api.register_expr_namespace("ta")
class TaExprNamespace:
    """``pl.col(...).ta``: every registered indicator as a polars expression.

    Each method applies to the whole column, or per group under ``.over(...)``. Indicators
    that read several columns take a struct: ``pl.struct("high", "low", "close").ta.atr(14)``;
    those with several outputs return a struct. See ``research_lib.indicators.REGISTRY``.

    Examples
    --------
    >>> frame = pl.DataFrame({"close": [1.0, 2.0, 3.0, 4.0]})
    >>> frame.select(pl.col("close").ta.zscore(2))["close"].to_list()
    [None, 1.0, 1.0, 1.0]
    """

    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def __getattr__(self, name: str) -> Callable[..., pl.Expr]:
        # Every other indicator comes from the registry: one input column, or a struct of
        # the columns it reads, e.g. pl.struct("high", "low", "close").ta.atr(14).
        if name.startswith("_") or name not in indicators.REGISTRY:
            raise AttributeError(f"no indicator {name!r}; known: {sorted(indicators.REGISTRY)}")
        spec = indicators.REGISTRY[name]

        def build(*args: object, **kwargs: object) -> pl.Expr:
            params = spec.resolve(args, kwargs)
            return self._expr.map_batches(
                lambda s: _run_indicator(spec, s, params), return_dtype=_dtype(spec)
            )

        build.__doc__ = f"{spec.name} ({spec.reference}); parameters: " + ", ".join(
            f"{p.name}={p.default}" for p in spec.params
        )
        return build

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *indicators.REGISTRY})


def _dtype(spec: indicators.Indicator) -> pl.DataType:
    if len(spec.outputs) == 1:
        return pl.Float64()
    return pl.Struct({name: pl.Float64 for name in spec.outputs})


def _run_indicator(spec: indicators.Indicator, series: pl.Series, params: tuple) -> pl.Series:
    if len(spec.inputs) == 1 and series.dtype != pl.Struct:
        arrays = {spec.inputs[0]: _series_array(series)}
    elif series.dtype == pl.Struct:
        fields = {f.name for f in series.dtype.fields}  # type: ignore[union-attr]
        missing = [c for c in spec.inputs if c not in fields]
        if missing:
            raise ValueError(
                f"{spec.name} reads columns {list(spec.inputs)}; the struct lacks {missing}: "
                f"use pl.struct({', '.join(repr(c) for c in spec.inputs)})"
            )
        arrays = {c: _series_array(series.struct.field(c)) for c in spec.inputs}
    else:
        raise ValueError(
            f"{spec.name} reads columns {list(spec.inputs)}: call it on "
            f"pl.struct({', '.join(repr(c) for c in spec.inputs)}), not on one column"
        )
    outs = indicators.compute(spec.name, arrays, *params)
    if len(spec.outputs) == 1:
        return _wrap(series.name, outs[spec.outputs[0]])
    return pl.DataFrame([_wrap(k, v) for k, v in outs.items()]).to_struct(series.name)


@pl.api.register_dataframe_namespace("ta")
class TaFrameNamespace:
    """``bars.ta.<indicator>(...)``: add an indicator's outputs as columns, per symbol.

    Examples
    --------
    >>> bars = pl.DataFrame({"symbol": ["X"] * 4, "high": [2.0, 3.0, 4.0, 5.0],
    ...                      "low": [1.0, 2.0, 3.0, 4.0], "close": [1.5, 2.5, 3.5, 4.5]})
    >>> bars.ta.sma(window_bars=2)["sma"].to_list()
    [None, 2.0, 3.0, 4.0]
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame = frame

    def __getattr__(self, name: str) -> Callable[..., pl.DataFrame]:
        if name.startswith("_") or name not in indicators.REGISTRY:
            raise AttributeError(f"no indicator {name!r}; known: {sorted(indicators.REGISTRY)}")
        spec = indicators.REGISTRY[name]

        def add(*args: object, suffix: str = "", **kwargs: object) -> pl.DataFrame:
            missing = [c for c in spec.inputs if c not in self._frame.columns]
            if missing:
                raise ValueError(
                    f"{name} reads columns {list(spec.inputs)}; the frame lacks {missing}"
                )
            source = pl.col(spec.inputs[0]) if len(spec.inputs) == 1 else pl.struct(spec.inputs)
            expr = getattr(source.ta, name)(*args, **kwargs)
            if "symbol" in self._frame.columns:
                expr = expr.over("symbol")
            if len(spec.outputs) == 1:
                return self._frame.with_columns(expr.alias(spec.outputs[0] + suffix))
            return (
                self._frame.with_columns(expr.alias("_ta"))
                .unnest("_ta")
                .rename({o: o + suffix for o in spec.outputs})
            )

        add.__doc__ = f"Add {list(spec.outputs)}: {spec.reference}"
        return add

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *indicators.REGISTRY})


def _describe_row(frame: pl.DataFrame, row: int) -> str:
    """`` (symbol='X', ts=123)`` for the row, from whichever of those columns exist."""
    where = [f"{key}={frame[key][row]!r}" for key in ("symbol", "ts") if key in frame.columns]
    return f" ({', '.join(where)})" if where else ""


def price_array(frame: pl.DataFrame, *, column: str) -> np.ndarray:
    """A price column as a float64 array, after checking it is present, finite and positive.

    Parameters
    ----------
    frame
        Bars holding ``column``.
    column
        Name of the price column, e.g. ``"close"``.

    Returns
    -------
    np.ndarray
        Contiguous float64 copy of the column.

    Raises
    ------
    ValueError
        If the column is missing or holds a null, NaN, infinite or non-positive value; the
        message names the column and the first bad row.

    Examples
    --------
    >>> price_array(pl.DataFrame({"close": [1.0, 2.0]}), column="close")
    array([1., 2.])
    """
    if column not in frame.columns:
        raise ValueError(f"bars have no column {column!r}; columns are {frame.columns}")
    series = frame[column]
    if not series.dtype.is_numeric():
        raise ValueError(f"column {column!r} has dtype {series.dtype}; expected float64 prices")
    values = np.ascontiguousarray(
        series.cast(pl.Float64).fill_null(np.nan).to_numpy(), dtype=np.float64
    )
    bad = ~(np.isfinite(values) & (values > 0.0))
    if bad.any():
        row = int(np.argmax(bad))
        shown = "null" if series[row] is None else repr(float(values[row]))
        raise ValueError(
            f"column {column!r} has {shown} at row {row}{_describe_row(frame, row)}: prices "
            f"must be finite and positive; drop or repair the row (see research_lib.quality)"
        )
    return values


def check_bars(bars: pl.DataFrame, *, required: tuple[str, ...] = ("ts", "close")) -> None:
    """Check that ``bars`` has ``required`` columns and strictly increasing ``ts`` per symbol.

    Parameters
    ----------
    bars
        OHLCV bars, one or many symbols.
    required
        Columns that must be present.

    Raises
    ------
    ValueError
        Naming the missing column, or the row where ``ts`` does not increase.

    Examples
    --------
    >>> check_bars(pl.DataFrame({"ts": [0, 3_600_000], "close": [1.0, 2.0]}))
    """
    if not isinstance(bars, pl.DataFrame):
        raise TypeError(f"bars must be a polars DataFrame, got {type(bars).__name__}")
    missing = [c for c in required if c not in bars.columns]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise ValueError(f"bars have no {noun} {names}; columns are {bars.columns}")
    if "ts" not in bars.columns or bars.height < 2:
        return
    step = pl.col("ts").diff()
    if "symbol" in bars.columns:
        step = step.over("symbol")
    steps = bars.select(step.alias("step"))["step"]
    bad = (steps <= 0).fill_null(False)
    if bad.any():
        row = int(bad.arg_max())
        raise ValueError(
            f"column 'ts' does not increase at row {row}{_describe_row(bars, row)}: "
            f"sort bars by symbol, then ts, and drop duplicates"
        )


def add_features(bars: pl.DataFrame, config: FeatureConfig) -> pl.DataFrame:
    """Add ``ret_1``, ``ema_fast``, ``ema_slow``, ``rsi`` and ``zscore`` per symbol.

    Parameters
    ----------
    bars
        Columns ``ts`` (int64 ms), ``symbol``, ``open``, ``high``, ``low``, ``close``,
        ``volume``; any number of symbols, sorted by symbol then ts.
    config
        Windows: ``ema_fast_bars``, ``ema_slow_bars``, ``rsi_bars``, ``zscore_bars``.

    Returns
    -------
    pl.DataFrame
        ``bars`` with five float64 columns added (row order unchanged): ``ret_1`` is
        ``log(close / previous close)``; ``ema_fast``/``ema_slow`` are EMAs of the close;
        ``rsi`` is the RSI of the close; ``zscore`` is the rolling z-score of the close. Each is
        computed within its symbol and is null during its warm-up.

    Raises
    ------
    ValueError
        If a column is missing, ``ts`` does not increase within a symbol, or ``close`` holds
        a null, NaN or non-positive value (the message names the column and row).

    Examples
    --------
    >>> bars = pl.DataFrame(
    ...     {"ts": [0, 1, 2], "symbol": ["X"] * 3, "close": [1.0, 2.0, 4.0]}
    ... )
    >>> cfg = FeatureConfig(ema_fast_bars=2, ema_slow_bars=3, rsi_bars=2, zscore_bars=2)
    >>> add_features(bars, cfg)["ema_slow"].to_list()
    [None, None, 2.3333333333333335]
    """
    if not isinstance(config, FeatureConfig):
        raise TypeError(f"config must be a FeatureConfig, got {type(config).__name__}")
    check_bars(bars, required=("ts", "symbol", "close"))
    price_array(bars, column="close")
    close = pl.col("close").cast(pl.Float64)
    return bars.with_columns(
        (close / close.shift(1)).log().over("symbol").alias("ret_1"),
        close.ta.ema(config.ema_fast_bars).over("symbol").alias("ema_fast"),
        close.ta.ema(config.ema_slow_bars).over("symbol").alias("ema_slow"),
        close.ta.rsi(config.rsi_bars).over("symbol").alias("rsi"),
        close.ta.zscore(config.zscore_bars).over("symbol").alias("zscore"),
    )
