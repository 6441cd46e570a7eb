"""Out-of-sample validation: walk-forward splits and the causality checks of a strategy.

``walk_forward_splits`` cuts a history into expanding train / test folds (purged walk-forward,
DSR and PBO come later). ``detect_lookahead`` recomputes a strategy's signals on history cut
at sampled bars and compares the last row with the full-history signal at that bar, the way
the executor sees it (in the manner of freqtrade's ``optimize/analysis/lookahead.py``).
``detect_warmup_dependence`` recomputes them on history that starts later and checks that the
signals agree again once a stated warm-up has passed.

Examples
--------
>>> [(int(tr[-1]), int(te[0]), int(te[-1])) for tr, te in walk_forward_splits(
...     n_rows=100, n_splits=3, min_train_rows=40)]
[(39, 40, 59), (59, 60, 79), (79, 80, 99)]
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl

from research_lib.config import StrategyConfig
from research_lib.features import check_bars
from research_lib.strategies import signals_for

FrameSignals = Callable[[pl.DataFrame], pl.DataFrame]
"""A signal function on one symbol's bars: returns the bars with signal columns added."""

__all__ = [
    "FrameSignals",
    "LookaheadReport",
    "SignalMismatch",
    "WarmupReport",
    "detect_lookahead",
    "detect_warmup_dependence",
    "walk_forward_splits",
]

_MISMATCH_SCHEMA = {
    "symbol": pl.String,
    "ts": pl.Int64,
    "column": pl.String,
    "offset_bars": pl.Int64,
    "full_value": pl.String,
    "truncated_value": pl.String,
}


def walk_forward_splits(
    *, n_rows: int, n_splits: int, min_train_rows: int, gap_rows: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window walk-forward splits: train on all rows before each test block.

    The rows after ``min_train_rows`` are cut into ``n_splits`` contiguous test blocks of
    (nearly) equal size. Each fold trains on every row before its test block, less a
    ``gap_rows`` embargo between them, so no training row sees the test period.

    Yields
    ------
    (train_index, test_index) pairs of int64 arrays, in time order.
    """
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    if gap_rows < 0:
        raise ValueError(f"gap_rows must be non-negative, got {gap_rows}")
    test_rows = n_rows - min_train_rows
    if min_train_rows < 1 or test_rows < n_splits:
        raise ValueError(
            f"n_rows={n_rows} is too short for min_train_rows={min_train_rows} and "
            f"n_splits={n_splits}: lower min_train_rows or collect a longer range"
        )
    bounds = np.linspace(min_train_rows, n_rows, n_splits + 1).round().astype(np.int64)
    for start, stop in itertools.pairwise(bounds):
        train_stop = max(0, int(start) - gap_rows)
        yield np.arange(train_stop, dtype=np.int64), np.arange(start, stop, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Reports


@dataclasses.dataclass(frozen=True)
class SignalMismatch:
    """One signal value that differs between the full history and a recomputation.

    ``ts`` is the bar (epoch ms) where they differ; ``offset_bars`` is how many bars were
    dropped from the start of the history (0 for a look-ahead check, where the end is cut).
    Values are as the signal function returned them (``None`` for a null).
    """

    symbol: str
    ts: int
    column: str
    full_value: Any
    truncated_value: Any
    offset_bars: int = 0


def _mismatch_frame(mismatches: Sequence[SignalMismatch]) -> pl.DataFrame:
    rows = [
        {
            "symbol": m.symbol,
            "ts": m.ts,
            "column": m.column,
            "offset_bars": m.offset_bars,
            "full_value": None if m.full_value is None else str(m.full_value),
            "truncated_value": None if m.truncated_value is None else str(m.truncated_value),
        }
        for m in mismatches
    ]
    return pl.DataFrame(rows, schema=_MISMATCH_SCHEMA)


@dataclasses.dataclass(frozen=True)
class LookaheadReport:
    """What ``detect_lookahead`` found.

    Attributes
    ----------
    clean
        True when every checked signal matched its full-history value.
    n_checks
        Cut points checked, over all symbols.
    n_mismatches
        Cut points where at least one column differed.
    mismatches
        The earliest differing values (by ts, then symbol), at most ``max_reported``.
    cut_points
        One row per check: ``symbol``, ``ts`` and ``row`` (position in the symbol's bars) of
        the last bar kept, and ``match``.
    """

    clean: bool
    n_checks: int
    n_mismatches: int
    mismatches: tuple[SignalMismatch, ...]
    cut_points: pl.DataFrame

    @property
    def first_mismatch(self) -> SignalMismatch | None:
        """The earliest differing value, or None when the strategy is clean."""
        return self.mismatches[0] if self.mismatches else None

    def frame(self) -> pl.DataFrame:
        """The reported mismatches, one row each (values rendered as strings)."""
        return _mismatch_frame(self.mismatches)


@dataclasses.dataclass(frozen=True)
class WarmupReport:
    """What ``detect_warmup_dependence`` found.

    Attributes
    ----------
    clean
        True when, for every offset and symbol, the signals match the reference after
        ``warmup_bars``.
    warmup_bars
        The stated warm-up: bars after a later start that are not compared.
    reference_offset_bars
        The smallest offset; the other offsets are compared with its signals.
    convergence
        One row per (offset, symbol): ``offset_bars``, ``symbol``, ``n_compared`` (rows after
        the warm-up), ``n_mismatches`` (of those, rows where a column differs) and
        ``converged_after_bars`` (bars after the later start from which every row matches;
        null when the last row still differs).
    mismatches
        The earliest differing values after the warm-up, at most ``max_reported``.
    """

    clean: bool
    warmup_bars: int
    reference_offset_bars: int
    convergence: pl.DataFrame
    mismatches: tuple[SignalMismatch, ...]

    @property
    def first_mismatch(self) -> SignalMismatch | None:
        """The earliest differing value after the warm-up, or None when clean."""
        return self.mismatches[0] if self.mismatches else None

    @property
    def converged_after_bars(self) -> dict[int, int | None]:
        """Per offset, the bars after which every symbol's signals match (None: never)."""
        out: dict[int, int | None] = {}
        for (offset,), part in self.convergence.group_by("offset_bars", maintain_order=True):
            values = part["converged_after_bars"]
            out[int(offset)] = None if values.null_count() else int(values.max())
        return out

    def frame(self) -> pl.DataFrame:
        """The convergence table: one row per (offset, symbol)."""
        return self.convergence


# --------------------------------------------------------------------------------------------
# Detectors


def detect_lookahead(
    bars: pl.DataFrame,
    signal_fn: FrameSignals | StrategyConfig,
    *,
    n_checks: int = 50,
    seed: int = 0,
    min_history_bars: int = 100,
    columns: Sequence[str] = ("target",),
    tolerance: float = 0.0,
    max_reported: int = 20,
) -> LookaheadReport:
    """Check that a strategy's signal at bar t does not change when later bars are removed.

    For each symbol, ``n_checks`` cut points t are drawn (seeded, without replacement) among
    the bars from ``min_history_bars - 1`` to the second-to-last one. The signals are
    recomputed on that symbol's ``bars[:t + 1]`` and the last row is compared with the
    full-history signals at t. This is the executor's view: it calls the same function on the
    history up to the newest bar. A causal strategy matches at every cut; one that reads
    later bars (a negative shift, a centred window, a full-sample statistic) does not.

    Parameters
    ----------
    bars
        Lake bars (``ts`` epoch ms, ``symbol``, OHLCV), one or many symbols; ``ts`` strictly
        increasing within each symbol.
    signal_fn
        A function of one symbol's bars (with its ``symbol`` column) returning a frame of the
        same rows with the signal ``columns``; or a ``StrategyConfig``, run through the
        strategy registry (``research_lib.strategies.signals_for``) as the backtest runs it.
    n_checks
        Cut points per symbol (fewer if the symbol has fewer eligible bars).
    seed
        Seed of the cut-point draw.
    min_history_bars
        The shortest history a cut keeps.
    columns
        The signal columns to compare.
    tolerance
        Absolute tolerance for float columns; other dtypes compare exactly. Nulls and NaNs
        equal each other.
    max_reported
        How many mismatches the report keeps.

    Returns
    -------
    LookaheadReport
        ``clean`` is True when no checked signal changed.

    Raises
    ------
    ValueError
        Naming the option or column that is invalid, or a symbol with too few bars.
    TypeError
        If ``signal_fn`` is neither callable nor a ``StrategyConfig``.

    Examples
    --------
    >>> bars = pl.DataFrame({
    ...     "ts": [i * 3_600_000 for i in range(200)], "symbol": "BTCUSDT",
    ...     "close": [100.0 + (i * 7 % 11) for i in range(200)],
    ... })
    >>> causal = lambda f: f.with_columns(target=(f["close"] > f["close"].shift(1)) * 1.0)
    >>> detect_lookahead(bars, causal, n_checks=10, min_history_bars=20).clean
    True
    >>> peeking = lambda f: f.with_columns(target=(f["close"].shift(-1) > f["close"]) * 1.0)
    >>> report = detect_lookahead(bars, peeking, n_checks=10, min_history_bars=20)
    >>> report.clean, report.n_mismatches, report.first_mismatch.truncated_value
    (False, 10, None)
    """
    run = _resolve_signal_fn(signal_fn)
    _check_int("n_checks", n_checks, minimum=1)
    _check_int("seed", seed, minimum=0)
    _check_int("min_history_bars", min_history_bars, minimum=1)
    _check_int("max_reported", max_reported, minimum=0)
    columns = _check_columns(columns)
    _check_tolerance(tolerance)
    parts = _split_symbols(bars, minimum_rows=min_history_bars + 1, field="min_history_bars")
    rng = np.random.default_rng(seed)
    checks: list[dict[str, Any]] = []
    mismatches: list[SignalMismatch] = []
    for symbol, frame in parts:
        full = _run_checked(run, frame, columns)
        eligible = np.arange(min_history_bars - 1, frame.height - 1)
        cuts = np.sort(rng.choice(eligible, size=min(n_checks, eligible.size), replace=False))
        ts = frame["ts"]
        for row in cuts.tolist():
            truncated = _run_checked(run, frame.slice(0, row + 1), columns)
            match = True
            for column in columns:
                full_value = full[column].slice(row, 1)
                last_value = truncated[column].slice(row, 1)
                if not _equal_mask(full_value, last_value, tolerance)[0]:
                    match = False
                    mismatches.append(
                        SignalMismatch(
                            symbol=symbol,
                            ts=int(ts[row]),
                            column=column,
                            full_value=full_value[0],
                            truncated_value=last_value[0],
                        )
                    )
            checks.append({"symbol": symbol, "ts": int(ts[row]), "row": row, "match": match})
    cut_points = pl.DataFrame(
        checks, schema={"symbol": pl.String, "ts": pl.Int64, "row": pl.Int64, "match": pl.Boolean}
    )
    n_mismatches = int((~cut_points["match"]).sum())
    mismatches.sort(key=lambda m: (m.ts, m.symbol, columns.index(m.column)))
    return LookaheadReport(
        clean=n_mismatches == 0,
        n_checks=cut_points.height,
        n_mismatches=n_mismatches,
        mismatches=tuple(mismatches[:max_reported]),
        cut_points=cut_points,
    )


def detect_warmup_dependence(
    bars: pl.DataFrame,
    signal_fn: FrameSignals | StrategyConfig,
    *,
    start_offsets_bars: Sequence[int] = (0, 50, 200),
    warmup_bars: int = 200,
    columns: Sequence[str] = ("target",),
    tolerance: float = 0.0,
    max_reported: int = 20,
) -> WarmupReport:
    """Check that a strategy's signals stop depending on where history starts.

    For each symbol and each offset o, the signals are recomputed on that symbol's
    ``bars[o:]`` and compared, bar for bar, with the signals computed from the smallest
    offset (the reference, usually 0 = the full history). The first ``warmup_bars`` bars
    after each later start are skipped: indicators legitimately differ while they warm up.
    Signals that still differ after that mean the strategy carries state from the first bar
    it saw (an unseeded cumulative sum, an EMA seeded from a full-history mean, a warm-up
    longer than stated), so the executor's trailing window would not reproduce the backtest.

    Parameters
    ----------
    bars
        Lake bars (``ts`` epoch ms, ``symbol``, OHLCV), one or many symbols; ``ts`` strictly
        increasing within each symbol.
    signal_fn
        A function of one symbol's bars (with its ``symbol`` column) returning a frame of the
        same rows with the signal ``columns``; or a ``StrategyConfig``, run through the
        strategy registry (``research_lib.strategies.signals_for``).
    start_offsets_bars
        At least two distinct non-negative offsets, in bars from the start of each symbol.
    warmup_bars
        Bars after a later start that are not compared.
    columns
        The signal columns to compare.
    tolerance
        Absolute tolerance for float columns; other dtypes compare exactly. Nulls and NaNs
        equal each other.
    max_reported
        How many mismatches the report keeps.

    Returns
    -------
    WarmupReport
        ``clean`` is True when every offset matches the reference after the warm-up;
        ``converged_after_bars`` says, per offset, after how many bars the signals agree.

    Raises
    ------
    ValueError
        Naming the option or column that is invalid, or a symbol with too few bars.
    TypeError
        If ``signal_fn`` is neither callable nor a ``StrategyConfig``.

    Examples
    --------
    >>> bars = pl.DataFrame({
    ...     "ts": [i * 3_600_000 for i in range(300)], "symbol": "BTCUSDT",
    ...     "close": [100.0 + (i * 7 % 11) for i in range(300)],
    ... })
    >>> def above_ema(f):
    ...     ema = f["close"].ewm_mean(span=5, adjust=False)
    ...     return f.with_columns(target=(f["close"] > ema) * 1.0)
    >>> report = detect_warmup_dependence(bars, above_ema, start_offsets_bars=(0, 50),
    ...                                   warmup_bars=60)
    >>> report.clean, report.converged_after_bars[50] <= 60
    (True, True)
    >>> def from_running_mean(f):
    ...     mean = f["close"].cum_sum() / pl.int_range(1, f.height + 1, eager=True)
    ...     return f.with_columns(target=f["close"] - mean)
    >>> report = detect_warmup_dependence(bars, from_running_mean, start_offsets_bars=(0, 50),
    ...                                   warmup_bars=60)
    >>> report.clean, report.converged_after_bars[50]
    (False, None)
    """
    run = _resolve_signal_fn(signal_fn)
    offsets = _check_offsets(start_offsets_bars)
    _check_int("warmup_bars", warmup_bars, minimum=0)
    _check_int("max_reported", max_reported, minimum=0)
    columns = _check_columns(columns)
    _check_tolerance(tolerance)
    reference_offset = offsets[0]
    parts = _split_symbols(
        bars, minimum_rows=offsets[-1] + warmup_bars + 1, field="start_offsets_bars"
    )
    rows: list[dict[str, Any]] = []
    mismatches: list[SignalMismatch] = []
    for symbol, frame in parts:
        reference = _run_checked(run, frame.slice(reference_offset), columns)
        for offset in offsets[1:]:
            later = _run_checked(run, frame.slice(offset), columns)
            aligned = reference.slice(offset - reference_offset)
            differs = np.zeros(later.height, dtype=bool)
            for column in columns:
                column_differs = ~_equal_mask(aligned[column], later[column], tolerance)
                differs |= column_differs
                for i in np.flatnonzero(column_differs[warmup_bars:])[:max_reported]:
                    row = int(i) + warmup_bars
                    mismatches.append(
                        SignalMismatch(
                            symbol=symbol,
                            ts=int(later["ts"][row]),
                            column=column,
                            full_value=aligned[column][row],
                            truncated_value=later[column][row],
                            offset_bars=offset,
                        )
                    )
            bad = np.flatnonzero(differs)
            converged: int | None = 0 if bad.size == 0 else int(bad[-1]) + 1
            if converged == later.height:
                converged = None
            rows.append(
                {
                    "offset_bars": offset,
                    "symbol": symbol,
                    "n_compared": later.height - warmup_bars,
                    "n_mismatches": int(differs[warmup_bars:].sum()),
                    "converged_after_bars": converged,
                }
            )
    convergence = pl.DataFrame(
        rows,
        schema={
            "offset_bars": pl.Int64,
            "symbol": pl.String,
            "n_compared": pl.Int64,
            "n_mismatches": pl.Int64,
            "converged_after_bars": pl.Int64,
        },
    ).sort("offset_bars", "symbol", maintain_order=True)
    mismatches.sort(key=lambda m: (m.ts, m.symbol, m.offset_bars, columns.index(m.column)))
    return WarmupReport(
        clean=int(convergence["n_mismatches"].sum()) == 0,
        warmup_bars=warmup_bars,
        reference_offset_bars=reference_offset,
        convergence=convergence,
        mismatches=tuple(mismatches[:max_reported]),
    )


# --------------------------------------------------------------------------------------------
# Helpers


def _resolve_signal_fn(signal_fn: FrameSignals | StrategyConfig) -> FrameSignals:
    """A frame -> frame function; a StrategyConfig goes through the registry like the backtest."""
    if isinstance(signal_fn, StrategyConfig):
        config = signal_fn

        def run_strategy(frame: pl.DataFrame) -> pl.DataFrame:
            # The backtest hands the strategy one symbol's bars without the symbol column.
            return signals_for(frame.drop("symbol"), config)

        return run_strategy
    if not callable(signal_fn):
        raise TypeError(
            f"signal_fn must be a callable frame -> frame or a StrategyConfig, "
            f"got {type(signal_fn).__name__}"
        )
    return signal_fn


def _run_checked(run: FrameSignals, frame: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    out = run(frame)
    if not isinstance(out, pl.DataFrame):
        raise ValueError(
            f"signal_fn returned {type(out).__name__}, not a polars DataFrame: return the bars "
            f"with the signal columns {list(columns)} added"
        )
    if out.height != frame.height:
        raise ValueError(
            f"signal_fn returned {out.height} rows for {frame.height} bars: it must return "
            f"one row per bar, in order"
        )
    missing = [c for c in columns if c not in out.columns]
    if missing:
        raise ValueError(
            f"columns={list(columns)}: signal_fn output has no {missing}; its columns are "
            f"{out.columns}"
        )
    if "ts" in out.columns and not out["ts"].equals(frame["ts"], check_names=False):
        raise ValueError("signal_fn output 'ts' differs from the bars' 'ts': keep rows in order")
    return out


def _split_symbols(
    bars: pl.DataFrame, *, minimum_rows: int, field: str
) -> list[tuple[str, pl.DataFrame]]:
    check_bars(bars, required=("ts", "symbol"))
    if bars.height == 0:
        raise ValueError("bars is empty: pass at least one symbol's bars")
    if bars["symbol"].null_count():
        raise ValueError("bars column 'symbol' has nulls: every bar needs its symbol")
    parts = []
    for (symbol,), frame in bars.group_by("symbol", maintain_order=True):
        if frame.height < minimum_rows:
            raise ValueError(
                f"symbol {symbol!r} has {frame.height} bars, fewer than the {minimum_rows} "
                f"that {field} needs: lower {field} or pass a longer history"
            )
        parts.append((str(symbol), frame))
    return sorted(parts, key=lambda part: part[0])


def _equal_mask(full: pl.Series, other: pl.Series, tolerance: float) -> np.ndarray:
    """Element-wise equality; floats within ``tolerance``; null and NaN equal each other."""
    if full.dtype.is_float() or other.dtype.is_float():
        if full.dtype.is_numeric() and other.dtype.is_numeric():
            a = full.cast(pl.Float64).fill_null(np.nan).to_numpy()
            b = other.cast(pl.Float64).fill_null(np.nan).to_numpy()
            with np.errstate(invalid="ignore"):
                return (a == b) | (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= tolerance)
    if full.dtype == other.dtype:
        return full.eq_missing(other).to_numpy()
    return np.array([x == y for x, y in zip(full.to_list(), other.to_list(), strict=True)])


def _check_int(field: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{field} must be an integer of at least {minimum}, got {value!r}")


def _check_columns(columns: Sequence[str]) -> tuple[str, ...]:
    if isinstance(columns, str):
        raise ValueError(f"columns must be a sequence of names, got the string {columns!r}")
    columns = tuple(columns)
    if not columns or not all(isinstance(c, str) for c in columns):
        raise ValueError(f"columns must name at least one signal column, got {columns!r}")
    return columns


def _check_tolerance(tolerance: float) -> None:
    if not isinstance(tolerance, int | float) or not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")


def _check_offsets(offsets: Sequence[int]) -> tuple[int, ...]:
    values = tuple(offsets)
    for value in values:
        _check_int("start_offsets_bars", value, minimum=0)
    if len(values) < 2 or len(set(values)) != len(values):
        raise ValueError(
            f"start_offsets_bars must hold at least two distinct offsets, got {values!r}: "
            f"e.g. (0, 50, 200)"
        )
    return tuple(sorted(int(v) for v in values))
