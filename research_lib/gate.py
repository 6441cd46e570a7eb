"""The promotion gate: a strategy's validation record, which the executor requires.

``evaluate_gate`` turns the evidence about one candidate (a strategy config, or a strategy a
model drives) into seven criteria, each with its value, its threshold (from the profile's
``ValidationConfig``) and pass or fail:

- ``oos_sharpe``: annualised Sharpe of the candidate's returns over the held-out last
  ``oos_fraction`` of the bars (equal-weight across symbols, rebalanced each bar);
- ``deflated_sharpe``: the deflated Sharpe ratio (Bailey & López de Prado, 2014) of the
  candidate's returns over the history the sweep saw, deflated by the number of trials the
  sweep recorded and the variance of their Sharpe ratios;
- ``pbo``: the probability of backtest overfitting, by CSCV over the trials' bar returns;
- ``max_drawdown``: the deepest out-of-sample drawdown, as a positive fraction;
- ``trades``: fills out of sample;
- ``lookahead_clean`` and ``warmup_clean``: what ``research_lib.validation``'s detectors found.

The gate fails closed: a criterion that cannot be computed (too few trials, too few bars, a
detector not run) fails and says why. ``ValidationRecord`` holds the criteria with the
candidate's config id, the market and validation config ids and the run's lineage (run id,
git commit, data hashes); ``write_record`` stores it as JSON under
``<data>/validations/`` and as rows of the ``validations`` lake table, atomically.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> trials = rng.normal(0.0, 0.01, size=(2_000, 50))  # 50 parameter sets of pure noise
>>> best = int(np.argmax(trials[:1_400].mean(axis=0) / trials[:1_400].std(axis=0)))
>>> evidence = GateEvidence(
...     oos_returns=trials[1_400:, best], selection_returns=trials[:, best],
...     periods_per_year=8760.0, n_trials=50, trial_returns=trials, oos_trades=300,
...     lookahead=None, warmup=None,
... )
>>> verdict = {c.name: c.passed for c in evaluate_gate(evidence, ValidationConfig())}
>>> verdict["deflated_sharpe"], verdict["pbo"], verdict["lookahead_clean"]
(False, False, False)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from kernels import stats as stats_nb
from research_lib.atomic import atomic_write_text
from research_lib.backtest import backtest_by_symbol, run_backtest
from research_lib.config import (
    BacktestConfig,
    FrozenConfig,
    MarketConfig,
    StrategyConfig,
    SweepConfig,
    ValidationConfig,
)
from research_lib.features import check_bars
from research_lib.lake import Lake
from research_lib.overfitting import deflated_sharpe_ratio, probability_of_backtest_overfitting
from research_lib.sweep import ma_crossover_returns
from research_lib.validation import (
    FrameSignals,
    LookaheadReport,
    WarmupReport,
    detect_lookahead,
    detect_warmup_dependence,
)

__all__ = [
    "CRITERIA",
    "Criterion",
    "GateEvidence",
    "ValidationRecord",
    "evaluate_gate",
    "load_records",
    "make_record",
    "oos_start_ts",
    "panel_returns",
    "rule_strategy_evidence",
    "target_trials_evidence",
    "write_record",
]

CRITERIA: tuple[str, ...] = (
    "oos_sharpe",
    "deflated_sharpe",
    "pbo",
    "max_drawdown",
    "trades",
    "lookahead_clean",
    "warmup_clean",
)
RECORDS_DIR = "validations"
"""Folder under the lake root (``data/``) holding one JSON file per validation record."""


@dataclasses.dataclass(frozen=True, eq=False)
class GateEvidence:
    """What the gate judges, gathered by ``rule_strategy_evidence`` or by hand.

    Attributes
    ----------
    oos_returns
        The candidate's per-bar returns over the out-of-sample period, oldest first.
    selection_returns
        Its per-bar returns over the period its parameters were selected on (for the
        deflated Sharpe ratio).
    periods_per_year
        Bars per year, to annualise the Sharpe ratios.
    n_trials
        Trials the sweep recorded (at least 1).
    trial_returns
        ``(T, N)`` per-bar returns of the trials over the selection period (for the PBO and
        the variance of the trials' Sharpe ratios), or None when not available.
    oos_trades
        Fills in the out-of-sample period.
    lookahead, warmup
        The detectors' reports; None when not run (the criterion then fails).
    """

    oos_returns: np.ndarray
    selection_returns: np.ndarray
    periods_per_year: float
    n_trials: int
    trial_returns: np.ndarray | None
    oos_trades: int
    lookahead: LookaheadReport | None
    warmup: WarmupReport | None


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One line of the gate: ``value`` compared with ``threshold`` by ``comparison``."""

    name: str
    value: float | None
    threshold: float
    comparison: Literal[">=", "<="]
    passed: bool
    detail: str


def _criterion(name: str, value: float | None, threshold: float, comparison: str, detail: str):
    if value is None or not math.isfinite(value):
        return Criterion(name, None, float(threshold), comparison, False, detail)  # type: ignore[arg-type]
    ok = value >= threshold if comparison == ">=" else value <= threshold
    return Criterion(name, float(value), float(threshold), comparison, bool(ok), detail)  # type: ignore[arg-type]


def _sharpe(returns: np.ndarray, periods_per_year: float) -> float:
    values = np.asarray(returns, dtype=np.float64)
    values = values[np.isfinite(values)]
    return (
        float(stats_nb.sharpe_ratio(values, float(periods_per_year))) if values.size else math.nan
    )


def _max_drawdown(returns: np.ndarray) -> float:
    equity = np.cumprod(1.0 + np.asarray(returns, dtype=np.float64))
    if equity.size == 0:
        return math.nan
    return float(-stats_nb.max_drawdown(np.concatenate(([1.0], equity))))


def evaluate_gate(evidence: GateEvidence, config: ValidationConfig) -> tuple[Criterion, ...]:
    """Judge ``evidence`` against ``config``'s thresholds: one ``Criterion`` per ``CRITERIA``.

    Examples
    --------
    A strong, steady edge over 2,000 hourly bars, with nine weaker variants as the trials:

    >>> rng = np.random.default_rng(1)
    >>> edge = rng.normal(0.0004, 0.004, size=(2_000, 1)) + rng.normal(0, 0.002, (2_000, 10))
    >>> edge[:, 1:] -= 0.0002
    >>> evidence = GateEvidence(
    ...     oos_returns=edge[1_400:, 0], selection_returns=edge[:, 0], periods_per_year=8760.0,
    ...     n_trials=10, trial_returns=edge, oos_trades=120, lookahead=None, warmup=None,
    ... )
    >>> {c.name: c.passed for c in evaluate_gate(evidence, ValidationConfig())}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'oos_sharpe': True, 'deflated_sharpe': True, 'pbo': True, 'max_drawdown': True,
     'trades': True, 'lookahead_clean': False, 'warmup_clean': False}
    """
    ppy = float(evidence.periods_per_year)
    oos = np.asarray(evidence.oos_returns, dtype=np.float64)
    selection = np.asarray(evidence.selection_returns, dtype=np.float64)
    selection = selection[np.isfinite(selection)]
    criteria = [
        _criterion(
            "oos_sharpe",
            _sharpe(oos, ppy),
            config.min_oos_sharpe,
            ">=",
            f"annualised Sharpe over {oos.size} out-of-sample bars",
        )
    ]

    trial_sharpes = None
    trials = evidence.trial_returns
    if trials is not None and trials.ndim == 2 and trials.shape[1] >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = trials.std(axis=0, ddof=1)
            trial_sharpes = np.where(sd > 0, trials.mean(axis=0) / sd, 0.0)
    try:
        if trial_sharpes is not None:
            dsr = deflated_sharpe_ratio(
                n_trials=int(evidence.n_trials), returns=selection, trial_sharpes=trial_sharpes
            )
            why = f"{evidence.n_trials} trials, {selection.size} bars"
        else:
            dsr = deflated_sharpe_ratio(
                n_trials=max(int(evidence.n_trials), 1), returns=selection, sharpe_variance=0.0
            )
            why = f"{evidence.n_trials} trials without their returns: Sharpe variance taken as 0"
    except ValueError as exc:
        dsr, why = None, f"not computable: {exc}"
    criteria.append(_criterion("deflated_sharpe", dsr, config.min_deflated_sharpe, ">=", why))

    try:
        if trials is None:
            raise ValueError("the trials' returns were not given")
        pbo = probability_of_backtest_overfitting(trials, n_blocks=config.pbo_blocks)
        pbo_value: float | None = pbo.pbo
        why = (
            f"CSCV over {pbo.n_blocks} blocks ({pbo.n_combinations} splits) of "
            f"{trials.shape[1]} trials"
        )
    except ValueError as exc:
        pbo_value, why = None, f"not computable: {exc}"
    criteria.append(_criterion("pbo", pbo_value, config.max_pbo, "<=", why))

    criteria.append(
        _criterion(
            "max_drawdown",
            _max_drawdown(oos),
            config.max_drawdown,
            "<=",
            "deepest out-of-sample drawdown, fraction of the peak",
        )
    )
    criteria.append(
        _criterion(
            "trades",
            float(evidence.oos_trades),
            float(config.min_trades),
            ">=",
            "fills in the out-of-sample period",
        )
    )
    for name, report in (
        ("lookahead_clean", evidence.lookahead),
        ("warmup_clean", evidence.warmup),
    ):
        if report is None:
            criteria.append(
                Criterion(name, None, 0.0, "<=", False, "not checked: the gate fails closed")
            )
            continue
        if isinstance(report, LookaheadReport):
            bad = float(report.n_mismatches)
            why = f"{report.n_mismatches} of {report.n_checks} cut points differ"
        else:
            bad = float(report.convergence["n_mismatches"].sum())
            why = f"{int(bad)} rows differ after a {report.warmup_bars}-bar warm-up"
            settled = report.convergence["converged_after_bars"]
            if bad and settled.null_count() == 0:
                why += f" (all agree after {int(settled.max())} bars: use a longer window)"
        if report.first_mismatch is not None:
            first = report.first_mismatch
            why += f"; first at {first.symbol} ts={first.ts} column {first.column!r}"
        criteria.append(_criterion(name, bad, 0.0, "<=", why))
    return tuple(criteria)


# --------------------------------------------------------------------------------------------
# Evidence for a rule strategy


def oos_start_ts(ts: np.ndarray | pl.Series, oos_fraction: float) -> int:
    """The first ts of the out-of-sample period: the last ``oos_fraction`` of the distinct ts.

    Examples
    --------
    >>> oos_start_ts(np.arange(10) * 3_600_000, 0.3)
    25200000
    """
    unique = np.unique(np.asarray(ts, dtype=np.int64))
    if unique.size < 2:
        raise ValueError(f"need at least 2 bars to hold some out, got {unique.size}")
    first_oos = min(max(math.floor(unique.size * (1.0 - oos_fraction)), 1), unique.size - 1)
    return int(unique[first_oos])


def panel_returns(
    frames: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-weight returns across symbols, rebalanced each bar, on the union of their ts.

    ``frames`` maps a symbol to ``(ts, returns)`` where ``returns`` is ``(T,)`` or ``(T, N)``;
    at each ts the result is the mean over the symbols that have a bar there.

    Examples
    --------
    >>> ts, r = panel_returns({"A": (np.array([0, 1]), np.array([0.1, 0.2])),
    ...                        "B": (np.array([1, 2]), np.array([0.0, -0.1]))})
    >>> ts.tolist(), np.round(r, 3).tolist()
    ([0, 1, 2], [0.1, 0.1, -0.1])
    """
    if not frames:
        raise ValueError("no symbols: panel_returns needs at least one (ts, returns) pair")
    all_ts = np.unique(np.concatenate([np.asarray(t, dtype=np.int64) for t, _ in frames.values()]))
    shape = np.asarray(next(iter(frames.values()))[1]).shape[1:]
    total = np.zeros((all_ts.size, *shape))
    count = np.zeros(all_ts.size)
    for symbol, (ts, returns) in frames.items():
        values = np.asarray(returns, dtype=np.float64)
        if values.shape[0] != len(ts) or values.shape[1:] != shape:
            raise ValueError(
                f"{symbol}: returns shape {values.shape} does not fit {len(ts)} ts and "
                f"trailing shape {shape}"
            )
        rows = np.searchsorted(all_ts, np.asarray(ts, dtype=np.int64))
        total[rows] += values
        count[rows] += 1
    return all_ts, total / count.reshape(-1, *([1] * len(shape)))


def _run_detectors(
    bars: pl.DataFrame, signals: FrameSignals | StrategyConfig, validation: ValidationConfig
) -> tuple[LookaheadReport, WarmupReport | None]:
    """The look-ahead check, and the warm-up check when every symbol has the bars for it."""
    lookahead = detect_lookahead(
        bars, signals, n_checks=validation.lookahead_checks, seed=validation.seed
    )
    shortest = bars.group_by("symbol").len()["len"].min()
    if shortest <= 2 * validation.warmup_bars:
        return lookahead, None
    warmup = detect_warmup_dependence(
        bars,
        signals,
        start_offsets_bars=(0, validation.warmup_bars),
        warmup_bars=validation.warmup_bars,
    )
    return lookahead, warmup


def rule_strategy_evidence(
    bars: pl.DataFrame,
    *,
    strategy: StrategyConfig,
    backtest: BacktestConfig,
    sweep: SweepConfig,
    validation: ValidationConfig,
    periods_per_year: float,
    n_trials: int | None = None,
) -> GateEvidence:
    """Gather the gate's evidence for a rule strategy and the sweep it was chosen from.

    The strategy is backtested on each symbol's whole history (it is causal, so this equals
    the executor's bar-by-bar view); the equal-weight portfolio of the symbols' bar returns
    gives the out-of-sample returns (from ``oos_start_ts``) and the selection returns (the
    whole history, as the sweep saw it). The sweep's SMA-crossover grid is re-run with the
    backtest's fees and fill (``this_close`` runs as ``next_close``) to get every trial's bar
    returns, averaged across symbols the same way, for the PBO and the Sharpe variance.

    Parameters
    ----------
    bars
        Lake bars of one or more symbols.
    strategy, backtest, sweep, validation
        The candidate, its costs, the grid it was selected from, and the gate's settings.
    periods_per_year
        Bars per year.
    n_trials
        The trial count the sweep recorded (``sweep_trials.json`` of ``30_backtest``);
        default: the grid's pairs times the symbols, as ``30_backtest`` counts them.
    """
    check_bars(bars, required=("ts", "symbol", "open", "close"))
    results = backtest_by_symbol(
        bars, strategy=strategy, config=backtest, periods_per_year=periods_per_year
    )
    start = oos_start_ts(bars["ts"], validation.oos_fraction)
    strategy_returns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    trial_returns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    oos_trades = 0
    fill = "next_close" if backtest.fill == "this_close" else backtest.fill
    n_pairs = 0
    for symbol, result in results.items():
        equity = result.equity
        ts = equity["ts"].to_numpy()
        values = equity["equity"].to_numpy()
        returns = np.concatenate(([0.0], values[1:] / values[:-1] - 1.0))
        strategy_returns[symbol] = (ts, returns)
        units = equity["position_units"].to_numpy()
        changed = np.concatenate(([units[0] != 0.0], units[1:] != units[:-1]))
        oos_trades += int(np.sum(changed & (ts >= start)))
        frame = bars.filter(pl.col("symbol") == symbol).sort("ts")
        pairs, matrix = ma_crossover_returns(
            frame["close"],
            open_prices=frame["open"],
            fast_bars=[f for f in sweep.fast_bars if f < frame.height],
            slow_bars=[s for s in sweep.slow_bars if s <= frame.height],
            fee_bps=backtest.fee_bps,
            fill=fill,
            initial_cash=backtest.initial_cash,
        )
        n_pairs = max(n_pairs, pairs.height)
        trial_returns[symbol] = (frame["ts"].to_numpy(), matrix)
    ts_all, portfolio = panel_returns(strategy_returns)
    _, trials = panel_returns(trial_returns)
    lookahead, warmup = _run_detectors(bars, strategy, validation)
    return GateEvidence(
        oos_returns=portfolio[ts_all >= start],
        selection_returns=portfolio[1:],
        periods_per_year=float(periods_per_year),
        n_trials=int(n_trials) if n_trials is not None else n_pairs * len(results),
        trial_returns=trials[1:],
        oos_trades=oos_trades,
        lookahead=lookahead,
        warmup=warmup,
    )


def target_trials_evidence(
    bars: pl.DataFrame,
    trial_targets: dict[str, pl.DataFrame],
    *,
    candidate: str,
    backtest: BacktestConfig,
    validation: ValidationConfig,
    periods_per_year: float,
    signal_fn: FrameSignals | None = None,
) -> GateEvidence:
    """Gather the gate's evidence for trials given as target positions (e.g. model-driven).

    Each trial's targets (``symbol``, ``ts``, ``target``; a bar without one is flat) are
    backtested per symbol with ``backtest`` and averaged across symbols each bar. The
    selection period starts at the first bar any trial holds a target (for walk-forward
    predictions, the first test fold); the out-of-sample period is its last
    ``oos_fraction``. Choose ``candidate`` on the bars before ``oos_start_ts`` of that
    period, or the out-of-sample Sharpe is not out of sample. ``signal_fn`` (the candidate as
    a function of one symbol's bars, as the executor would call it) is run through the
    look-ahead and warm-up detectors; without it those criteria fail.
    """
    if candidate not in trial_targets:
        raise ValueError(f"candidate {candidate!r} is not a trial; trials: {sorted(trial_targets)}")
    panel = trial_panel(
        bars, trial_targets, backtest=backtest, validation=validation,
        periods_per_year=periods_per_year,
    )  # fmt: skip
    return panel.evidence(candidate, bars=bars, validation=validation, signal_fn=signal_fn)


@dataclasses.dataclass(frozen=True)
class TrialPanel:
    """Every trial's bar returns over the selection period, backtested once.

    ``returns[:, k]`` is trial ``names[k]``'s return at ``ts``; bars from ``oos_start`` on
    are out of sample. ``changes[name][symbol]`` marks the bars where that trial's position
    changed (its fills), on that symbol's bars ``symbol_ts[symbol]``.
    """

    names: tuple[str, ...]
    ts: np.ndarray
    returns: np.ndarray
    oos_start: int
    periods_per_year: float
    symbol_ts: dict[str, np.ndarray]
    changes: dict[str, dict[str, np.ndarray]]

    def in_sample_sharpe(self) -> np.ndarray:
        """Each trial's annualised Sharpe on the bars before ``oos_start`` (-inf if undefined)."""
        in_sample = self.returns[self.ts < self.oos_start]
        with np.errstate(invalid="ignore", divide="ignore"):
            sharpe = in_sample.mean(axis=0) / in_sample.std(axis=0, ddof=1)
        sharpe = sharpe * np.sqrt(self.periods_per_year)
        return np.where(np.isfinite(sharpe), sharpe, -np.inf)

    def evidence(
        self,
        candidate: str,
        *,
        bars: pl.DataFrame,
        validation: ValidationConfig,
        signal_fn: FrameSignals | None = None,
    ) -> GateEvidence:
        """The gate's evidence for one trial (see ``target_trials_evidence``)."""
        column = self.names.index(candidate)
        oos_trades = sum(
            int(np.sum(changed & (self.symbol_ts[symbol] >= self.oos_start)))
            for symbol, changed in self.changes[candidate].items()
        )
        lookahead = warmup = None
        if signal_fn is not None:
            lookahead, warmup = _run_detectors(bars.sort("symbol", "ts"), signal_fn, validation)
        return GateEvidence(
            oos_returns=self.returns[self.ts >= self.oos_start, column],
            selection_returns=self.returns[:, column],
            periods_per_year=self.periods_per_year,
            n_trials=len(self.names),
            trial_returns=self.returns,
            oos_trades=oos_trades,
            lookahead=lookahead,
            warmup=warmup,
        )


def trial_panel(
    bars: pl.DataFrame,
    trial_targets: dict[str, pl.DataFrame],
    *,
    backtest: BacktestConfig,
    validation: ValidationConfig,
    periods_per_year: float,
) -> TrialPanel:
    """Backtest every trial's targets once (see ``target_trials_evidence``)."""
    check_bars(bars, required=("ts", "symbol", "open", "close"))
    bars = bars.sort("symbol", "ts")
    names = tuple(trial_targets)
    per_symbol: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    changes: dict[str, dict[str, np.ndarray]] = {name: {} for name in names}
    first_ts = None
    for (symbol,), frame in bars.group_by("symbol", maintain_order=True):
        columns = []
        for name in names:
            wanted = trial_targets[name].filter(pl.col("symbol") == symbol).select("ts", "target")
            if wanted.height and (first_ts is None or wanted["ts"].min() < first_ts):
                first_ts = int(wanted["ts"].min())
            joined = frame.join(wanted, on="ts", how="left").sort("ts")
            target = joined["target"].fill_null(0.0).to_numpy()
            result = run_backtest(frame, target, backtest, periods_per_year=periods_per_year)
            equity = result.equity["equity"].to_numpy()
            columns.append(np.concatenate(([0.0], equity[1:] / equity[:-1] - 1.0)))
            units = result.equity["position_units"].to_numpy()
            changes[name][str(symbol)] = np.concatenate(
                ([units[0] != 0.0], units[1:] != units[:-1])
            )
        per_symbol[str(symbol)] = (frame["ts"].to_numpy(), np.column_stack(columns))
    if first_ts is None:
        raise ValueError("no trial holds a target on these bars; nothing to validate")
    ts_all, matrix = panel_returns(per_symbol)
    keep = ts_all > first_ts  # returns from the first bar after the first target
    ts_sel = ts_all[keep]
    return TrialPanel(
        names=names,
        ts=ts_sel,
        returns=matrix[keep],
        oos_start=oos_start_ts(ts_sel, validation.oos_fraction),
        periods_per_year=float(periods_per_year),
        symbol_ts={symbol: ts for symbol, (ts, _) in per_symbol.items()},
        changes=changes,
    )


# --------------------------------------------------------------------------------------------
# The record


@dataclasses.dataclass(frozen=True)
class ValidationRecord:
    """The gate's verdict on one candidate, with its lineage; what the executor checks.

    ``record_id`` is the sha256 of the record's canonical JSON without ``record_id`` and
    ``created_at``: the same evidence, configs and lineage give the same id.
    """

    record_id: str
    candidate_kind: str
    candidate_id: str
    candidate: dict[str, Any]
    market_id: str
    validation_config_id: str
    criteria: tuple[Criterion, ...]
    passed: bool
    n_trials: int
    lineage: dict[str, Any]
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["criteria"] = [dataclasses.asdict(c) for c in self.criteria]
        return out

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> ValidationRecord:
        fields = dict(payload)
        fields["criteria"] = tuple(Criterion(**c) for c in payload["criteria"])
        return cls(**fields)

    def frame(self) -> pl.DataFrame:
        """One row per criterion, with the record's ids: the ``validations`` lake rows.

        ``ts`` is ``created_at`` in epoch milliseconds.
        """
        created = dt.datetime.strptime(self.created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        return pl.DataFrame(
            [
                {
                    "ts": int(created.timestamp()) * 1000,
                    "record_id": self.record_id,
                    "candidate_kind": self.candidate_kind,
                    "candidate_id": self.candidate_id,
                    "market_id": self.market_id,
                    "criterion": c.name,
                    "value": c.value,
                    "threshold": c.threshold,
                    "comparison": c.comparison,
                    "passed": c.passed,
                    "detail": c.detail,
                    "record_passed": self.passed,
                    "created_at": self.created_at,
                }
                for c in self.criteria
            ],
            schema_overrides={"ts": pl.Int64, "value": pl.Float64, "threshold": pl.Float64},
        )

    def summary(self) -> str:
        """One line: PASS or FAIL, and the failing criteria."""
        failed = [c.name for c in self.criteria if not c.passed]
        verdict = "PASS" if self.passed else f"FAIL ({', '.join(failed)})"
        return f"{self.candidate_kind} {self.candidate_id[:10]}: {verdict}"


def _canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def make_record(
    *,
    candidate_kind: Literal["strategy", "model"],
    candidate: FrozenConfig | dict[str, Any],
    market: MarketConfig,
    validation: ValidationConfig,
    criteria: Sequence[Criterion],
    n_trials: int,
    lineage: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> ValidationRecord:
    """Assemble a ``ValidationRecord``; it passes when every criterion passes.

    ``candidate`` is the strategy's config (its ``.id`` is the candidate id) or, for a
    model-driven strategy, a JSON-able dict describing it (hashed canonically).
    """
    if isinstance(candidate, FrozenConfig):
        body = {"type": type(candidate).__name__, **candidate.model_dump(mode="json")}
        candidate_id = candidate.id
    else:
        body = dict(candidate)
        candidate_id = hashlib.sha256(_canonical(body).encode()).hexdigest()
    names = [c.name for c in criteria]
    if sorted(names) != sorted(CRITERIA):
        raise ValueError(f"criteria must be exactly {list(CRITERIA)}, got {names}")
    content = {
        "candidate_kind": candidate_kind,
        "candidate_id": candidate_id,
        "candidate": body,
        "market_id": market.id,
        "validation_config_id": validation.id,
        "criteria": [dataclasses.asdict(c) for c in criteria],
        "passed": all(c.passed for c in criteria),
        "n_trials": int(n_trials),
        "lineage": dict(lineage or {}),
    }
    record_id = hashlib.sha256(_canonical(content).encode()).hexdigest()
    created = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ValidationRecord(
        record_id=record_id,
        candidate_kind=candidate_kind,
        candidate_id=candidate_id,
        candidate=body,
        market_id=market.id,
        validation_config_id=validation.id,
        criteria=tuple(criteria),
        passed=content["passed"],
        n_trials=int(n_trials),
        lineage=content["lineage"],
        created_at=created,
    )


def write_record(record: ValidationRecord, *, lake: Lake, run_dir: str | Path = "") -> Path:
    """Store ``record``: ``<lake root>/validations/<record_id>.json``, the ``validations``
    lake table and, when ``run_dir`` is set, ``<run_dir>/validation_<kind>.json``.

    Every file is written to a temporary name and renamed; writing the same record again
    changes nothing. Returns the JSON path under the lake root.
    """
    text = json.dumps(record.to_dict(), indent=2, sort_keys=True, default=str)
    path = Path(lake.root) / RECORDS_DIR / f"{record.record_id}.json"
    if not path.exists():
        atomic_write_text(path, text)
    lake.write("validations", record.frame(), partition={"candidate_kind": record.candidate_kind})
    if run_dir:
        atomic_write_text(Path(run_dir) / f"validation_{record.candidate_kind}.json", text)
    return path


def load_records(lake: Lake, *, candidate_id: str | None = None) -> list[ValidationRecord]:
    """Every stored record (optionally of one candidate), oldest first by ``created_at``."""
    folder = Path(lake.root) / RECORDS_DIR
    records = [
        ValidationRecord.from_dict(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))
    ]
    if candidate_id is not None:
        records = [r for r in records if r.candidate_id == candidate_id]
    return sorted(records, key=lambda r: (r.created_at, r.record_id))
