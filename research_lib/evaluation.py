"""Out-of-sample evaluation: IC and rank IC, hit rate, log loss, calibration, strategy returns.

- Inputs are equal-length 1-d numpy arrays, polars Series or lists. Null and NaN are
  missing: a row missing in either input is dropped (pairwise), and a scalar score comes
  back as ``Score(value, count)``, ``count`` being the rows used. Infinity is an error.
- A score undefined on the rows used (a constant input, too few rows) is NaN, not an
  exception, so a table of many groups still fills.
- Predictions are the out-of-sample frame of ``research_lib.models`` (``ts``, ``fold``,
  ``prediction``, ``target``, and ``symbol`` per symbol): ``target`` is the next bar's log
  return and ``prediction`` was made at bar ``ts``'s close.

Examples
--------
>>> information_coefficient([1.0, 2.0, 3.0, None], [1.0, 3.0, 2.0, 5.0])
Score(value=0.5, count=3)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import polars as pl

from research_lib.backtest import METRICS, BacktestResult, bar_volatility, run_backtest
from research_lib.config import BacktestConfig
from research_lib.features import check_bars, price_array

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "OosPerformance",
    "Score",
    "brier_score",
    "calibration_figure",
    "calibration_table",
    "classification_scores",
    "expected_calibration_error",
    "hit_rate",
    "ic_by_period",
    "ic_summary",
    "information_coefficient",
    "log_loss",
    "multiclass_log_loss",
    "oos_strategy_performance",
    "predictions_to_targets",
    "rank_information_coefficient",
    "regression_scores",
]

ArrayLike = np.ndarray | pl.Series | Sequence[float | int | bool | None]

# Bars after the last prediction that its position is still held in: a target decided at
# close T is filled at close T ("this_close") or open T + 1 and earns through close T + 1;
# "next_close" fills at close T + 1 and earns through close T + 2.
_HOLD_BARS = {"this_close": 1, "next_open": 1, "next_close": 2}
_RETURN_COLUMNS = ["symbol", "ts", "prediction", "target"]
_RETURN_COLUMNS += ["position_units", "equity", "returns", "drawdown"]


class Score(NamedTuple):
    """A score and the number of rows it was computed on (after dropping missing rows)."""

    value: float
    count: int


def _as_float(values: ArrayLike, *, name: str) -> np.ndarray:
    """A 1-d float64 copy with NaN for null; rejects text, 2-d input and infinities."""
    if isinstance(values, np.ndarray) and values.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {values.shape}")
    if not isinstance(values, pl.Series):
        if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
            kind = type(values).__name__
            raise TypeError(f"{name} must be a numpy array, polars Series or list, got {kind}")
        try:
            values = pl.Series(name, values, strict=False)
        except (TypeError, ValueError, pl.exceptions.PolarsError):
            raise ValueError(f"{name} must hold numbers (or None for missing)") from None
    if not (values.dtype.is_numeric() or values.dtype in (pl.Boolean, pl.Null)):
        raise ValueError(f"{name} has dtype {values.dtype}; expected numbers")
    array = np.ascontiguousarray(values.cast(pl.Float64).fill_null(np.nan).to_numpy())
    if np.isinf(array).any():
        row = int(np.flatnonzero(np.isinf(array))[0])
        raise ValueError(
            f"{name} has {float(array[row])} at row {row}: values must be finite "
            f"(null or NaN for missing)"
        )
    return array


def _pairwise(a: ArrayLike, b: ArrayLike, *, names: tuple[str, str]) -> tuple[np.ndarray, ...]:
    """Both inputs as float arrays with every row missing in either dropped."""
    x, y = _as_float(a, name=names[0]), _as_float(b, name=names[1])
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{names[0]} has {x.shape[0]} values but {names[1]} has {y.shape[0]}; "
            f"pass one {names[1]} per {names[0]}"
        )
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def _check_probability(probability: np.ndarray, *, name: str = "probability") -> None:
    bad = (probability < 0.0) | (probability > 1.0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} has {float(probability[row])!r} at row {row}: probabilities lie in "
            f"[0, 1] (predicted returns are not probabilities)"
        )


def _check_epsilon(epsilon: float) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not 0 < epsilon < 0.5:
        raise ValueError(f"epsilon must be a number in (0, 0.5), got {epsilon!r}; e.g. 1e-15")
    return float(epsilon)


def _columns(frame: pl.DataFrame, names: Sequence[str], *, role: str) -> None:
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"{role} must be a polars DataFrame, got {type(frame).__name__}")
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise ValueError(f"{role} has no column(s) {missing}; columns are {frame.columns}")


def _by_list(by: str | Sequence[str] | None) -> list[str]:
    return [by] if isinstance(by, str) else list(by or [])


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.shape[0] < 2 or np.ptp(x) == 0.0 or np.ptp(y) == 0.0:
        return math.nan  # a constant side: undefined (its mean may round off the values)
    dx, dy = x - x.mean(), y - y.mean()
    sx, sy = np.abs(dx).max(), np.abs(dy).max()
    if sx == 0.0 or sy == 0.0:
        return math.nan
    dx, dy = dx / sx, dy / sy  # rescaled so that squares of prices near 1e8 do not overflow
    return float(np.clip(dx @ dy / math.sqrt((dx @ dx) * (dy @ dy)), -1.0, 1.0))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank (``scipy.stats.rankdata(x, "average")``)."""
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], x.shape[0]]
    ranks = np.empty(x.shape[0])
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(first) - 1]
    return ranks


def information_coefficient(prediction: ArrayLike, target: ArrayLike) -> Score:
    """Pearson correlation of predictions with realised targets (the IC), in [-1, 1].

    NaN with fewer than 2 rows or a constant input; rows missing in either are dropped.

    Examples
    --------
    >>> information_coefficient(np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.5]))
    Score(value=0.9933992677987828, count=3)
    """
    x, y = _pairwise(prediction, target, names=("prediction", "target"))
    return Score(_pearson(x, y), int(x.shape[0]))


def rank_information_coefficient(prediction: ArrayLike, target: ArrayLike) -> Score:
    """Spearman rank correlation (average ranks for ties) of predictions with targets.

    Examples
    --------
    >>> rank_information_coefficient([1.0, 2.0, 2.0, 9.0], [0.1, 0.3, 0.2, 0.4])
    Score(value=0.9486832980505138, count=4)
    """
    x, y = _pairwise(prediction, target, names=("prediction", "target"))
    if x.shape[0] < 2:
        return Score(math.nan, int(x.shape[0]))
    return Score(_pearson(_average_ranks(x), _average_ranks(y)), int(x.shape[0]))


def ic_by_period(
    frame: pl.DataFrame,
    *,
    prediction: str = "prediction",
    target: str = "target",
    by: str | Sequence[str] = "ts",
    method: Literal["pearson", "spearman"] = "spearman",
    min_names: int = 3,
) -> pl.DataFrame:
    """The cross-sectional IC at each period: correlation across symbols at one ``ts``.

    The IC of a ranking model over many symbols. A single-symbol frame has no cross-section
    (one row per ``ts``): there the time-series IC, ``information_coefficient`` over time or
    ``regression_scores(frame, by="symbol")``, is the meaningful one, and this raises.
    ``method="spearman"`` uses average ranks within the period; ``min_names`` is the fewest
    non-missing pairs for a period's IC.

    Returns
    -------
    pl.DataFrame
        One row per period, sorted by ``by``: the ``by`` columns, ``ic`` (Float64, null when
        fewer than ``min_names`` rows or a constant cross-section) and ``count`` (Int64).

    Examples
    --------
    >>> frame = pl.DataFrame({"ts": [0, 0, 0, 1, 1, 1], "prediction": [1, 2, 3, 3, 2, 1],
    ...                       "target": [0.1, 0.2, 0.3, 0.1, 0.2, 0.3]})
    >>> ic_by_period(frame)["ic"].to_list()
    [1.0, -1.0]
    """
    keys = _by_list(by)
    _columns(frame, [*keys, prediction, target], role="frame")
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    if isinstance(min_names, bool) or not isinstance(min_names, int) or min_names < 2:
        raise ValueError(f"min_names must be an int >= 2, got {min_names!r}")
    for name in (prediction, target):
        _as_float(frame[name], name=name)  # type and finiteness checks
    if frame.height and frame.group_by(keys).len()["len"].max() == 1:
        raise ValueError(
            f"every period of {keys} has one row (a single-symbol frame?): a cross-sectional "
            f"IC needs several symbols per period; use information_coefficient over time"
        )
    x, y = pl.col(prediction).cast(pl.Float64), pl.col(target).cast(pl.Float64)
    valid = frame.select(*keys, x.alias("_x"), y.alias("_y")).fill_nan(None).drop_nulls()
    if method == "spearman":
        valid = valid.with_columns(
            pl.col(c).rank("average").over(keys).cast(pl.Float64) for c in ("_x", "_y")
        )
    dx, dy = pl.col("_x") - pl.col("_x").mean(), pl.col("_y") - pl.col("_y").mean()
    ic = (dx * dy).sum() / ((dx * dx).sum() * (dy * dy).sum()).sqrt()
    per_period = valid.group_by(keys).agg(ic.alias("ic"), pl.len().cast(pl.Int64).alias("count"))
    periods = frame.select(keys).unique()
    out = periods.join(per_period, on=keys, how="left", nulls_equal=True).sort(keys)
    enough = pl.col("count").fill_null(0) >= min_names
    return out.select(
        *keys,
        pl.when(enough).then(pl.col("ic").clip(-1.0, 1.0)).fill_nan(None).alias("ic"),
        pl.col("count").fill_null(0),
    )


def ic_summary(ic: pl.DataFrame, *, column: str = "ic") -> dict[str, float]:
    """Mean, spread and significance of a per-period IC series (e.g. ``ic_by_period``).

    Returns ``mean_ic``, ``std_ic`` (ddof=1), ``ic_ir`` (per-period ``mean / std``),
    ``t_stat`` (``ic_ir * sqrt(n_periods)``), ``share_positive`` (periods with IC > 0) and
    ``n_periods`` (non-null periods); NaN where undefined. The t-stat assumes independent
    periods, which overlapping forward returns (horizon > 1 bar) violate: an upper bound.

    Examples
    --------
    >>> summary = ic_summary(pl.DataFrame({"ic": [0.1, 0.3, None, -0.1]}))
    >>> round(summary["mean_ic"], 6), summary["n_periods"]
    (0.1, 3.0)
    """
    _columns(ic, [column], role="ic")
    values = _as_float(ic[column], name=column)
    values = values[~np.isnan(values)]
    n = int(values.shape[0])
    mean = float(values.mean()) if n else math.nan
    std = float(values.std(ddof=1)) if n > 1 else math.nan
    ir = mean / std if n > 1 and std > 0 else math.nan
    return {
        "mean_ic": mean,
        "std_ic": std,
        "ic_ir": ir,
        "t_stat": ir * math.sqrt(n) if n else math.nan,
        "share_positive": float((values > 0).mean()) if n else math.nan,
        "n_periods": float(n),
    }


def hit_rate(prediction: ArrayLike, target: ArrayLike) -> Score:
    """Share of rows where the prediction's sign matches the target's.

    Rows with a zero prediction (no call) or a zero target (no move, e.g. a stale price)
    are excluded along with missing rows, since neither sign is right; ``count`` is the
    number of rows left.

    Examples
    --------
    >>> hit_rate([0.5, -0.2, 0.1, 0.0], [1.0, 1.0, 2.0, -1.0])
    Score(value=0.6666666666666666, count=3)
    """
    x, y = _pairwise(prediction, target, names=("prediction", "target"))
    called = (x != 0.0) & (y != 0.0)
    n = int(called.sum())
    value = float((np.sign(x[called]) == np.sign(y[called])).mean()) if n else math.nan
    return Score(value, n)


def _binary(probability: ArrayLike, outcome: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, y = _pairwise(probability, outcome, names=("probability", "outcome"))
    _check_probability(p)
    bad = (y != 0.0) & (y != 1.0)
    if bad.any():
        raise ValueError(
            f"outcome has {float(y[np.flatnonzero(bad)[0]])!r}; binary outcomes must be 0 or 1 "
            f"(for triple-barrier labels use (label == 1), or multiclass_log_loss)"
        )
    return p, y


def log_loss(probability: ArrayLike, outcome: ArrayLike, *, epsilon: float = 1e-15) -> Score:
    """Mean binary cross-entropy ``-mean(y log p + (1 - y) log(1 - p))``, natural log.

    Probabilities are clipped to ``[epsilon, 1 - epsilon]`` first, so a confident miss
    costs at most ``-log(epsilon)`` (34.5 nats at the default) instead of infinity.
    scikit-learn clips at ``np.finfo(float).eps``; pass that to reproduce it exactly.

    ``probability`` is the predicted probability of outcome 1, in [0, 1]; ``outcome`` is 0
    or 1 (bool accepted); ``epsilon`` lies in (0, 0.5).

    Examples
    --------
    >>> log_loss([0.9, 0.2, None], [1, 0, 1])
    Score(value=0.164252033486018, count=2)
    """
    epsilon = _check_epsilon(epsilon)
    p, y = _binary(probability, outcome)
    if not p.shape[0]:
        return Score(math.nan, 0)
    p = np.clip(p, epsilon, 1.0 - epsilon)
    return Score(float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))), int(p.shape[0]))


def brier_score(probability: ArrayLike, outcome: ArrayLike) -> Score:
    """Mean squared error of a probability against a 0/1 outcome, in [0, 1].

    Examples
    --------
    >>> round(brier_score([0.9, 0.2], [1, 0]).value, 6)
    0.025
    """
    p, y = _binary(probability, outcome)
    value = float(np.mean((p - y) ** 2)) if p.shape[0] else math.nan
    return Score(value, int(p.shape[0]))


def multiclass_log_loss(
    probability: np.ndarray | pl.DataFrame,
    outcome: ArrayLike,
    *,
    classes: Sequence[int] = (-1, 0, 1),
    epsilon: float = 1e-15,
) -> Score:
    """Cross-entropy ``-mean(log p[i, class of outcome i])`` for several classes.

    ``probability`` is a (rows, classes) matrix, or a frame whose columns are taken in
    order: column ``k`` holds the probability of ``classes[k]`` and each row sums to 1
    (within 1e-6); a row with a NaN or null is dropped. ``outcome`` holds one class per row
    (triple-barrier labels are -1, 0, 1). The true class's probability is clipped to
    ``[epsilon, 1 - epsilon]``.

    Examples
    --------
    >>> p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    >>> round(multiclass_log_loss(p, [-1, 1]).value, 6)
    0.289909
    """
    epsilon = _check_epsilon(epsilon)
    frame = isinstance(probability, pl.DataFrame)
    matrix = probability.cast(pl.Float64).fill_null(np.nan) if frame else probability
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(classes):
        raise ValueError(
            f"probability must be a (rows, {len(classes)}) matrix for classes "
            f"{list(classes)}, got shape {matrix.shape}"
        )
    y = _as_float(outcome, name="outcome")
    if y.shape[0] != matrix.shape[0]:
        raise ValueError(f"probability has {matrix.shape[0]} rows but outcome has {y.shape[0]}")
    keep = ~(np.isnan(matrix).any(axis=1) | np.isnan(y))
    matrix, y = matrix[keep], y[keep]
    _check_probability(matrix.ravel())
    sums = matrix.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if off.size:
        raise ValueError(f"probability row {int(off[0])} sums to {float(sums[off[0]])!r}, not 1")
    lookup = {float(c): k for k, c in enumerate(classes)}
    unknown = [float(v) for v in np.unique(y) if v not in lookup]
    if unknown:
        raise ValueError(f"outcome has {unknown[0]!r}, which is not one of classes {classes}")
    if not y.shape[0]:
        return Score(math.nan, 0)
    column = np.array([lookup[v] for v in y.tolist()], dtype=np.int64)
    true_p = np.clip(matrix[np.arange(y.shape[0]), column], epsilon, 1.0 - epsilon)
    return Score(float(-np.mean(np.log(true_p))), int(y.shape[0]))


def calibration_table(
    probability: ArrayLike,
    outcome: ArrayLike,
    *,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
) -> pl.DataFrame:
    """Predicted probability against observed frequency, bin by bin (a reliability table).

    Bins follow ``sklearn.calibration.calibration_curve``: ``"uniform"`` splits [0, 1] into
    ``n_bins`` equal widths, ``"quantile"`` puts the edges at quantiles of the probabilities
    (tied probabilities can leave a bin empty). A bin holds ``lower < p <= upper``, and the
    first bin also holds its lower edge.

    Returns
    -------
    pl.DataFrame
        ``n_bins`` rows: ``bin`` (Int64, 0-based), ``lower``, ``upper``, ``count`` (Int64),
        ``mean_predicted`` and ``observed_rate`` (Float64, null in an empty bin).

    Examples
    --------
    >>> table = calibration_table([0.1, 0.2, 0.8, 0.9], [0, 1, 1, 1], n_bins=2)
    >>> table.select("count", "mean_predicted", "observed_rate").rows()
    [(2, 0.15000000000000002, 0.5), (2, 0.8500000000000001, 1.0)]
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1, got {n_bins!r}")
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    p, y = _binary(probability, outcome)
    if strategy == "quantile":
        if not p.shape[0]:
            raise ValueError("strategy='quantile' needs at least one probability")
        edges = np.percentile(p, np.linspace(0.0, 1.0, n_bins + 1) * 100)
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], p)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.bincount(bins, weights=p, minlength=n_bins) / count
        observed = np.bincount(bins, weights=y, minlength=n_bins) / count
    return pl.DataFrame(
        {
            "bin": np.arange(n_bins, dtype=np.int64),
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count.astype(np.int64),
            "mean_predicted": mean_predicted,
            "observed_rate": observed,
        }
    ).with_columns(pl.col("mean_predicted", "observed_rate").fill_nan(None))


def expected_calibration_error(
    probability: ArrayLike,
    outcome: ArrayLike,
    *,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
) -> Score:
    """Count-weighted mean gap ``|observed_rate - mean_predicted|`` over the calibration bins.

    Examples
    --------
    >>> ece = expected_calibration_error([0.1, 0.2, 0.8, 0.9], [0, 1, 1, 1], n_bins=2)
    >>> round(ece.value, 6), ece.count
    (0.25, 4)
    """
    table = calibration_table(probability, outcome, n_bins=n_bins, strategy=strategy)
    used = table.filter(pl.col("count") > 0)
    n = int(used["count"].sum())
    if not n:
        return Score(math.nan, 0)
    gap = (used["observed_rate"] - used["mean_predicted"]).abs()
    return Score(float((gap * used["count"]).sum() / n), n)


def calibration_figure(table: pl.DataFrame, *, title: str = "Calibration") -> go.Figure:
    """Reliability diagram of a ``calibration_table``: observed against predicted, with counts.

    Examples
    --------
    >>> fig = calibration_figure(calibration_table([0.1, 0.8], [0, 1], n_bins=2))
    >>> len(fig.data)
    3
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    _columns(table, ["mean_predicted", "observed_rate", "count", "lower", "upper"], role="table")
    used = table.filter(pl.col("count") > 0)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25])
    diagonal = go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dot"})
    hover = "predicted %{x:.3f}<br>observed %{y:.3f}<br>n=%{customdata}"
    x, y, n = used["mean_predicted"], used["observed_rate"], used["count"]
    model = go.Scatter(x=x, y=y, name="model", customdata=n, hovertemplate=hover)
    width = table["upper"] - table["lower"]
    counts = go.Bar(x=table["lower"] + width / 2, y=table["count"], width=width, name="count")
    for row, trace in ((1, diagonal), (1, model), (2, counts)):
        fig.add_trace(trace, row=row, col=1)
    fig.update_yaxes(title_text="observed rate", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="count", row=2, col=1)
    fig.update_xaxes(title_text="predicted probability", range=[0, 1], row=2, col=1)
    fig.update_layout(title=title, height=520)
    return fig


def _score_table(
    frame: pl.DataFrame, by: str | Sequence[str] | None, columns: tuple[str, str], score: Callable
) -> pl.DataFrame:
    """One row per group of ``by`` (in order of appearance): the keys, then ``score(a, b)``."""
    keys = _by_list(by)
    _columns(frame, [*keys, *columns], role="frame")
    groups = frame.group_by(keys, maintain_order=True) if keys else [((), frame)]
    rows = [
        {**dict(zip(keys, values, strict=True)), **score(part[columns[0]], part[columns[1]])}
        for values, part in groups
    ]
    schema = {k: frame.schema[k] for k in keys}
    schema |= {k: pl.Int64 if k.endswith("count") else pl.Float64 for k in score([], [])}
    return pl.DataFrame(rows, schema=schema).fill_nan(None)


def regression_scores(
    frame: pl.DataFrame,
    *,
    prediction: str = "prediction",
    target: str = "target",
    by: str | Sequence[str] | None = None,
) -> pl.DataFrame:
    """One row of out-of-sample regression scores per group (model, symbol, fold...).

    The IC here is pooled over the group's rows: over time for a per-symbol group. For the
    cross-sectional IC of a multi-symbol model use ``ic_by_period`` and ``ic_summary``.

    Returns
    -------
    pl.DataFrame
        The ``by`` columns, then ``count`` (rows with both values), ``ic``, ``rank_ic``,
        ``hit_rate``, ``hit_count`` (rows with a nonzero prediction and target), ``rmse``,
        ``mae`` and ``r2`` (``sklearn.metrics.r2_score``: against the group's own mean);
        null where undefined. Groups in order of first appearance.

    Examples
    --------
    >>> frame = pl.DataFrame({"model": ["a", "a", "a", "b", "b", "b"],
    ...     "prediction": [1.0, 2.0, 3.0, 3.0, 2.0, 1.0], "target": [1.0, 2.0, 3.0] * 2})
    >>> regression_scores(frame, by="model").select("model", "ic", "hit_rate").rows()
    [('a', 1.0, 1.0), ('b', -1.0, 1.0)]
    """

    def score(a: ArrayLike, b: ArrayLike) -> dict[str, float]:
        x, y = _pairwise(a, b, names=(prediction, target))
        n, hits, error = x.shape[0], hit_rate(x, y), x - y
        total = float(((y - y.mean()) ** 2).sum()) if n else 0.0
        return {
            "count": n,
            "ic": _pearson(x, y),
            "rank_ic": rank_information_coefficient(x, y).value,
            "hit_rate": hits.value,
            "hit_count": hits.count,
            "rmse": math.sqrt(float(np.mean(error**2))) if n else math.nan,
            "mae": float(np.mean(np.abs(error))) if n else math.nan,
            "r2": 1.0 - float((error**2).sum()) / total if total > 0 else math.nan,
        }

    return _score_table(frame, by, (prediction, target), score)


def classification_scores(
    frame: pl.DataFrame,
    *,
    probability: str = "probability",
    outcome: str = "outcome",
    by: str | Sequence[str] | None = None,
    n_bins: int = 10,
    epsilon: float = 1e-15,
) -> pl.DataFrame:
    """One row of out-of-sample binary classification scores per group.

    Returns
    -------
    pl.DataFrame
        The ``by`` columns, then ``count`` (Int64), ``log_loss`` (clipped at ``epsilon``),
        ``brier_score``, ``expected_calibration_error`` (``n_bins`` uniform bins),
        ``accuracy`` (``p > 0.5`` against the outcome), ``base_rate`` (share of 1s) and
        ``mean_probability``. For -1/0/1 labels with a probability per class, use
        ``multiclass_log_loss`` per group.

    Examples
    --------
    >>> frame = pl.DataFrame({"probability": [0.9, 0.2, 0.6], "outcome": [1, 0, 0]})
    >>> classification_scores(frame).select("count", "accuracy").rows()
    [(3, 0.6666666666666666)]
    """

    def score(a: ArrayLike, b: ArrayLike) -> dict[str, float]:
        p, y = _binary(a, b)
        n = p.shape[0]
        return {
            "count": n,
            "log_loss": log_loss(p, y, epsilon=epsilon).value,
            "brier_score": brier_score(p, y).value,
            "expected_calibration_error": expected_calibration_error(p, y, n_bins=n_bins).value,
            "accuracy": float(((p > 0.5) == (y == 1.0)).mean()) if n else math.nan,
            "base_rate": float(y.mean()) if n else math.nan,
            "mean_probability": float(p.mean()) if n else math.nan,
        }

    return _score_table(frame, by, (probability, outcome), score)


def predictions_to_targets(
    predictions: pl.DataFrame,
    *,
    threshold: float = 0.0,
    allow_short: bool = False,
    centre: float = 0.0,
    column: str = "prediction",
) -> pl.DataFrame:
    """``predictions`` with a ``target`` column: all-in long, flat, or all-in short.

    ``target`` is 1.0 where ``prediction - centre > threshold``, -1.0 where ``prediction -
    centre < -threshold`` and ``allow_short``, else 0.0; a null or NaN prediction is 0.0
    (flat). For predicted returns keep ``centre=0``; for a classifier's probability of an
    up move pass ``centre=0.5`` (``threshold=0.05`` then trades only above 0.55).

    Examples
    --------
    >>> frame = pl.DataFrame({"prediction": [0.02, -0.01, None, 0.001]})
    >>> predictions_to_targets(frame, threshold=0.005, allow_short=True)["target"].to_list()
    [1.0, -1.0, 0.0, 0.0]
    """
    _columns(predictions, [column], role="predictions")
    if column == "target":  # the realised return of a predictions frame: look-ahead
        raise ValueError("column='target' would trade on the realised return; pass the model's")
    _as_float(predictions[column], name=column)
    for name, value in (("threshold", threshold), ("centre", centre)):
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ValueError(f"{name} must be a number, got {value!r}")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}; it is a distance from centre")
    if not isinstance(allow_short, bool):
        raise ValueError(f"allow_short must be True or False, got {allow_short!r}")
    edge = pl.col(column).cast(pl.Float64).fill_nan(None) - centre
    short = -1.0 if allow_short else 0.0
    target = pl.when(edge > threshold).then(1.0).when(edge < -threshold).then(short).otherwise(0.0)
    return predictions.with_columns(target.cast(pl.Float64).alias("target"))


@dataclass(frozen=True, eq=False)
class OosPerformance:
    """The backtest of model-driven targets over the out-of-sample window of each symbol.

    ``metrics``: one row per symbol, ``symbol``, ``config_id``, ``oos_start_ts``,
    ``oos_end_ts``, ``oos_bars`` (bars backtested), ``predicted_bars`` (non-null
    predictions), then every name of ``research_lib.backtest.METRICS``. ``returns``: one row
    per symbol and OOS bar, ``symbol``, ``ts``, ``prediction`` (null where none), ``target``,
    ``position_units``, ``equity``, ``returns`` and ``drawdown``; the first bar's return is
    against the initial cash (0.0 unless ``fill="this_close"``) and ``metrics`` skip it, as
    ``run_backtest`` does. ``results``: each symbol's ``BacktestResult``.
    """

    metrics: pl.DataFrame
    returns: pl.DataFrame
    results: dict[str, BacktestResult]


def _prediction_keys(
    bars: pl.DataFrame, predictions: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both frames with a String ``symbol`` ("" when neither has one) and bars' ``ts`` dtype."""
    if ("symbol" in bars.columns) != ("symbol" in predictions.columns):
        raise ValueError(
            "bars and predictions must both have a 'symbol' column or neither; got "
            f"bars {bars.columns} and predictions {predictions.columns}"
        )
    if "symbol" not in bars.columns:
        bars = bars.with_columns(pl.lit("").alias("symbol"))
        predictions = predictions.with_columns(pl.lit("").alias("symbol"))
    bars = bars.with_columns(pl.col("symbol").cast(pl.String))
    predictions = predictions.with_columns(
        pl.col("symbol").cast(pl.String), pl.col("ts").cast(bars["ts"].dtype)
    )
    duplicated = predictions.filter(pl.struct("symbol", "ts").is_duplicated())
    if duplicated.height:
        row = duplicated.row(0, named=True)
        raise ValueError(
            f"predictions repeat (symbol, ts) = ({row['symbol']!r}, {row['ts']}) "
            f"{duplicated.height} rows in all: keep one out-of-sample prediction per bar"
        )
    orphans = predictions.join(bars, on=["symbol", "ts"], how="anti")
    if orphans.height:
        row = orphans.row(0, named=True)
        raise ValueError(
            f"{orphans.height} predictions fall on no bar, e.g. symbol={row['symbol']!r}, "
            f"ts={row['ts']}: predictions must be made at the close of a bar in bars"
        )
    return bars, predictions


def oos_strategy_performance(
    bars: pl.DataFrame,
    predictions: pl.DataFrame,
    *,
    backtest_config: BacktestConfig,
    periods_per_year: float,
    threshold: float = 0.0,
    allow_short: bool = False,
    centre: float = 0.0,
    column: str = "prediction",
) -> OosPerformance:
    """Backtest the targets a model's predictions imply, over its out-of-sample bars only.

    Per symbol, the OOS window runs from the first prediction row's bar to the bar where the
    last prediction's position earns its return: one bar later (two with
    ``fill="next_close"``), capped at the data. Earlier bars (the first training window) are
    not backtested, so they do not dilute the Sharpe ratio. In the window a bar with no
    prediction row or a null prediction (purge and embargo gaps) is flat (target 0.0).

    A prediction at bar t's close is a target decided at close t, filled as
    ``backtest_config.fill`` says (``next_open``: bar t + 1's open; ``this_close`` assumes a
    fill at the close the prediction was made on), so no return before that fill depends on
    it. Impact's σ_bar, when needed and not given, is computed causally on the full history
    before trimming, so the window has no warm-up.

    Parameters
    ----------
    bars
        Bars for ``run_backtest`` (``ts``, ``open``, ``close``...), one or many symbols;
        symbols with no prediction row are left out.
    predictions
        ``ts`` and ``column`` (and ``symbol`` when bars have one), e.g. the predictions of
        ``walk_forward_by_symbol``; at most one row per symbol and bar.
    backtest_config, periods_per_year
        As ``run_backtest`` (``periods_per_year=8760`` for 1h bars).
    threshold, allow_short, centre, column
        As ``predictions_to_targets``.

    Examples
    --------
    >>> bars = pl.DataFrame({"ts": [0, 1, 2, 3], "open": [1.0, 1.0, 1.0, 2.0],
    ...                      "close": [1.0, 1.0, 2.0, 2.0]})
    >>> predictions = pl.DataFrame({"ts": [1], "prediction": [0.5]})
    >>> out = oos_strategy_performance(bars, predictions, periods_per_year=365,
    ...     backtest_config=BacktestConfig(fee_bps=0, fill="this_close"))
    >>> out.returns.select("ts", "target", "returns").rows()  # bought at close 1
    [(1, 1.0, 0.0), (2, 0.0, 1.0)]
    """
    if not isinstance(backtest_config, BacktestConfig):
        raise TypeError(
            f"backtest_config must be a BacktestConfig, got {type(backtest_config).__name__}"
        )
    check_bars(bars, required=("ts", "open", "close"))
    _columns(predictions, ["ts", column], role="predictions")
    if predictions.height == 0:
        raise ValueError("predictions is empty: there is no out-of-sample window to backtest")
    bars, predictions = _prediction_keys(bars, predictions)
    targets = predictions_to_targets(
        predictions.select("symbol", "ts", column),
        threshold=threshold,
        allow_short=allow_short,
        centre=centre,
        column=column,
    ).rename({column: "_prediction"})
    needs_sigma = backtest_config.impact_coefficient > 0 and "volatility" not in bars.columns
    hold = _HOLD_BARS[backtest_config.fill]
    results: dict[str, BacktestResult] = {}
    returns: list[pl.DataFrame] = []
    rows_out: list[tuple] = []
    for symbol in targets["symbol"].unique(maintain_order=True).to_list():
        history = bars.filter(pl.col("symbol") == symbol)
        if needs_sigma:  # causal, on the full history: the OOS window gets no warm-up
            close = price_array(history, column="close")
            sigma = bar_volatility(close, window_bars=backtest_config.volatility_window_bars)
            history = history.with_columns(pl.Series("volatility", sigma))
        mine = targets.filter(pl.col("symbol") == symbol).drop("symbol")
        rows = np.flatnonzero(history["ts"].is_in(mine["ts"].implode()).to_numpy())
        start, stop = int(rows[0]), min(int(rows[-1]) + hold, history.height - 1) + 1
        trimmed = history.slice(start, stop - start)
        window = trimmed.select("ts").join(mine, on="ts", how="left", maintain_order="left")
        target = window["target"].fill_null(0.0)
        prediction = window["_prediction"].cast(pl.Float64).fill_nan(None)
        result = run_backtest(trimmed, target, backtest_config, periods_per_year=periods_per_year)
        results[symbol] = result
        returns.append(
            result.equity.with_columns(
                pl.lit(symbol).alias("symbol"), prediction.alias("prediction"), target
            ).select(_RETURN_COLUMNS)
        )
        span = (window["ts"][0], window["ts"][-1], window.height)
        counts = (window.height - prediction.null_count(), *(result.metrics[m] for m in METRICS))
        rows_out.append((symbol, result.config_id, *span, *counts))
    ts_type = bars.schema["ts"]
    schema = {"symbol": pl.String, "config_id": pl.String, "oos_start_ts": ts_type}
    schema |= {"oos_end_ts": ts_type, "oos_bars": pl.Int64, "predicted_bars": pl.Int64}
    schema |= {name: pl.Float64 for name in METRICS}
    metrics = pl.DataFrame(rows_out, schema=schema, orient="row")
    return OosPerformance(metrics=metrics, returns=pl.concat(returns), results=results)
