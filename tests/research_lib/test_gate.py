"""The promotion gate against planted truths: a real edge passes, noise and look-ahead fail."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from research_lib.backtest import backtest_by_symbol
from research_lib.config import (
    BacktestConfig,
    MarketConfig,
    StrategyConfig,
    SweepConfig,
    ValidationConfig,
)
from research_lib.gate import (
    CRITERIA,
    GateEvidence,
    ValidationRecord,
    evaluate_gate,
    load_records,
    make_record,
    oos_start_ts,
    panel_returns,
    rule_strategy_evidence,
    target_trials_evidence,
    write_record,
)
from research_lib.lake import Lake
from research_lib.models.tabular import make_model
from research_lib.overfitting import deflated_sharpe_ratio, probability_of_backtest_overfitting
from research_lib.sources.synthetic import SyntheticMarketConfig, SyntheticSource
from research_lib.splits import purged_walk_forward_splits
from research_lib.sweep import ma_crossover_returns

START_MS = 1_704_067_200_000  # 2024-01-01
HOUR_MS = 3_600_000
HOURS = 8760.0
LEADER = "BTCUSDT"
FOLLOWERS = ("ETHUSDT", "SOLUSDT", "BNBUSDT")


def synthetic_bars(*, days: int, seed: int, beta: float = 0.0) -> pl.DataFrame:
    symbols = (LEADER, *FOLLOWERS)
    config = SyntheticMarketConfig(seed=seed, symbols=symbols, lead_lag_beta=beta)
    return SyntheticSource(config).fetch(
        dataset="bars",
        symbols=list(symbols),
        interval="1h",
        start_ms=START_MS,
        end_ms=START_MS + days * 24 * HOUR_MS,
    )


def verdict(criteria) -> dict[str, bool]:
    return {c.name: c.passed for c in criteria}


# --------------------------------------------------------------------------------------------
# A planted edge: each follower's next hour leans on the leader's last hour.


def design(frame: pl.DataFrame, leader: pl.DataFrame) -> pl.DataFrame:
    """Causal features of one follower: its own and the leader's last log returns."""
    lead = leader.filter(pl.col("ts") <= frame["ts"].max()).select(
        "ts", lead_1=pl.col("close").log().diff(), lead_2=pl.col("close").log().diff().shift(1)
    )
    return (
        frame.sort("ts")
        .with_columns(own_1=pl.col("close").log().diff(), y=pl.col("close").log().diff().shift(-1))
        .with_columns(own_2=pl.col("own_1").shift(1), abs_1=pl.col("own_1").abs())
        .join(lead, on="ts", how="left")
    )


OWN = ["own_1", "own_2", "abs_1"]
LEAD = ["lead_1", "lead_2"]


def planted_trials(bars: pl.DataFrame):
    """Walk-forward OOS targets (sign of the prediction) of 9 model variants per follower.

    Three variants see the leader; six see only the follower's own returns (no edge).
    """
    leader = bars.filter(pl.col("symbol") == LEADER).sort("ts")
    trials: dict[str, list[pl.DataFrame]] = {}
    fitted: dict[str, object] = {}
    for symbol in FOLLOWERS:
        frame = design(bars.filter(pl.col("symbol") == symbol), leader).drop_nulls(
            [*OWN, *LEAD, "y"]
        )
        n = frame.height
        rows = np.arange(n)
        splits = list(
            purged_walk_forward_splits(
                label_start=rows, label_end=rows + 1, n_splits=5, min_train_rows=720
            )
        )
        hgb = {"task": "regression", "max_iter": 50}
        variants = {
            "ridge_own": (make_model("ridge", alpha=10.0), OWN[:1]),
            "ridge_own2": (make_model("ridge", alpha=10.0), OWN[:2]),
            "ridge_absret": (make_model("ridge", alpha=10.0), OWN[2:]),
            "ridge_own_strong": (make_model("ridge", alpha=1000.0), OWN[:1]),
            "ridge_own_all": (make_model("ridge", alpha=1000.0), OWN),
            "hgb_own": (make_model("hist_gradient_boosting", **hgb), OWN),
            "ridge_lead": (make_model("ridge", alpha=10.0), LEAD),
            "ridge_both": (make_model("ridge", alpha=10.0), [*OWN, *LEAD]),
            "hgb_both": (make_model("hist_gradient_boosting", **hgb), [*OWN, *LEAD]),
        }
        for name, (model, cols) in variants.items():
            prediction = np.full(n, np.nan)
            x, y = frame.select(cols).to_numpy(), frame["y"].to_numpy()
            for train, test in splits:
                model.fit(x[train], y[train])
                prediction[test] = model.predict(x[test])
            fitted[f"{name}/{symbol}"] = (model, cols)
            targets = frame.select(
                "ts", symbol=pl.lit(symbol), target=pl.Series(np.sign(prediction))
            )
            trials.setdefault(name, []).append(
                targets.drop_nulls().filter(pl.col("target").is_not_nan())
            )
    return {name: pl.concat(parts) for name, parts in trials.items()}, fitted


@pytest.fixture(scope="module")
def planted():
    bars = synthetic_bars(days=150, seed=21, beta=0.2)
    trials, fitted = planted_trials(bars)
    return bars, trials, fitted


def choose_in_sample(bars: pl.DataFrame, trials, backtest, validation) -> str:
    """The trial with the best Sharpe before the out-of-sample start (no peeking)."""
    evidence = target_trials_evidence(
        bars, trials, candidate=next(iter(trials)), backtest=backtest,
        validation=validation, periods_per_year=HOURS,
    )  # fmt: skip
    matrix = evidence.trial_returns
    in_sample = matrix[: matrix.shape[0] - evidence.oos_returns.size]
    sharpe = in_sample.mean(axis=0) / in_sample.std(axis=0, ddof=1)
    return list(trials)[int(np.argmax(sharpe))]


def test_planted_signal_is_found_and_passes_the_gate(planted) -> None:
    bars, trials, fitted = planted
    followers = bars.filter(pl.col("symbol") != LEADER)
    leader = bars.filter(pl.col("symbol") == LEADER).sort("ts")
    backtest = BacktestConfig(fee_bps=1.0, fill="next_open")
    validation = ValidationConfig(warmup_bars=300)
    best = choose_in_sample(followers, trials, backtest, validation)
    assert best in ("ridge_lead", "ridge_both", "hgb_both"), best  # the models found the leader

    def signal_fn(frame: pl.DataFrame) -> pl.DataFrame:
        symbol = frame["symbol"][0]
        model, cols = fitted[f"{best}/{symbol}"]
        x = design(frame, leader)
        ok = x.select(pl.all_horizontal(pl.col(cols).is_not_null())).to_series().to_numpy()
        target = np.zeros(x.height)
        if ok.any():
            target[ok] = np.sign(model.predict(x.filter(ok).select(cols).to_numpy()))
        return frame.with_columns(target=pl.Series(target))

    evidence = target_trials_evidence(
        followers, trials, candidate=best, backtest=backtest, validation=validation,
        periods_per_year=HOURS, signal_fn=signal_fn,
    )  # fmt: skip
    criteria = evaluate_gate(evidence, validation)
    assert all(verdict(criteria).values()), [c for c in criteria if not c.passed]
    values = {c.name: c.value for c in criteria}
    assert values["pbo"] < 0.1 and values["deflated_sharpe"] > 0.95
    # The trial count is what the evidence says, and the DSR equals the paper's formula.
    trials_sr = evidence.trial_returns.mean(0) / evidence.trial_returns.std(0, ddof=1)
    assert values["deflated_sharpe"] == pytest.approx(
        deflated_sharpe_ratio(
            n_trials=len(trials), returns=evidence.selection_returns, trial_sharpes=trials_sr
        )
    )
    # Out of sample, every variant that sees the leader beats every one that does not.
    own = [i for i, name in enumerate(trials) if "_own" in name or "absret" in name]
    oos = evidence.trial_returns[-evidence.oos_returns.size :]
    oos_sharpe = oos.mean(0) / oos.std(0)
    assert oos_sharpe[[i for i in range(len(trials)) if i not in own]].min() > oos_sharpe[own].max()


# --------------------------------------------------------------------------------------------
# Noise swept over 1,000 parameter sets


@pytest.mark.parametrize("seed", [3, 4])
def test_random_strategy_swept_over_1000_parameter_sets_fails(seed: int) -> None:
    bars = synthetic_bars(days=150, seed=seed).filter(pl.col("symbol") == "ETHUSDT")
    pairs, trials = ma_crossover_returns(
        bars["close"], open_prices=bars["open"], fast_bars=list(range(2, 42)),
        slow_bars=list(range(20, 500, 15)), fee_bps=1.0, fill="next_open",
    )  # fmt: skip
    assert pairs.height >= 1_000
    trials = trials[1:]
    validation = ValidationConfig()
    n_oos = trials.shape[0] - int(np.floor(trials.shape[0] * (1 - validation.oos_fraction)))
    in_sample = trials[:-n_oos]
    best = int(np.nanargmax(in_sample.mean(0) / in_sample.std(0, ddof=1)))
    evidence = GateEvidence(
        oos_returns=trials[-n_oos:, best], selection_returns=trials[:, best],
        periods_per_year=HOURS, n_trials=pairs.height, trial_returns=trials, oos_trades=100,
        lookahead=None, warmup=None,
    )  # fmt: skip
    criteria = {c.name: c for c in evaluate_gate(evidence, validation)}
    assert not criteria["deflated_sharpe"].passed
    assert not criteria["pbo"].passed
    assert criteria["pbo"].value == probability_of_backtest_overfitting(trials, n_blocks=16).pbo


# --------------------------------------------------------------------------------------------
# Look-ahead


def peek(frame: pl.DataFrame) -> pl.DataFrame:
    """Long when the next bar closes higher: a strategy that reads the future."""
    up = (pl.col("close").shift(-1) > pl.col("close")).fill_null(False)
    return frame.with_columns(target=pl.when(up).then(1.0).otherwise(-1.0))


def test_a_strategy_with_look_ahead_fails_though_it_looks_brilliant() -> None:
    bars = synthetic_bars(days=60, seed=5).filter(pl.col("symbol").is_in(FOLLOWERS))
    frames = [peek(f) for _, f in bars.sort("ts").group_by("symbol", maintain_order=True)]
    targets = pl.concat(frames).select("symbol", "ts", "target")
    rng = np.random.default_rng(0)
    trials = {"peek": targets}
    for k in range(5):
        noise = rng.choice([-1.0, 1.0], size=targets.height)
        trials[f"coin{k}"] = targets.with_columns(target=pl.Series(noise))
    validation = ValidationConfig(warmup_bars=300)
    evidence = target_trials_evidence(
        bars, trials, candidate="peek", backtest=BacktestConfig(fee_bps=1.0, fill="this_close"),
        validation=validation, periods_per_year=HOURS, signal_fn=peek,
    )  # fmt: skip
    criteria = {c.name: c for c in evaluate_gate(evidence, validation)}
    assert criteria["oos_sharpe"].value > 20  # perfect foresight
    assert not criteria["lookahead_clean"].passed
    assert criteria["lookahead_clean"].value == evidence.lookahead.n_mismatches > 0
    assert "first at" in criteria["lookahead_clean"].detail


# --------------------------------------------------------------------------------------------
# The rule strategy's evidence, checked against the backtest it summarises


def test_rule_strategy_evidence_matches_its_backtest() -> None:
    bars = synthetic_bars(days=90, seed=7)
    strategy = StrategyConfig(fast_bars=12, slow_bars=48)
    backtest = BacktestConfig(fee_bps=10.0, slippage_bps=2.0)
    sweep = SweepConfig(fast_bars=(4, 8, 12), slow_bars=(24, 48, 96))
    validation = ValidationConfig(warmup_bars=400)
    evidence = rule_strategy_evidence(
        bars, strategy=strategy, backtest=backtest, sweep=sweep, validation=validation,
        periods_per_year=HOURS,
    )  # fmt: skip
    results = backtest_by_symbol(bars, strategy=strategy, config=backtest, periods_per_year=HOURS)
    start = oos_start_ts(bars["ts"], validation.oos_fraction)
    equity = pl.concat(
        [r.equity.select("ts", "equity", symbol=pl.lit(s)) for s, r in results.items()]
    ).with_columns(r=(pl.col("equity") / pl.col("equity").shift(1) - 1).over("symbol"))
    expected = (
        equity.filter(pl.col("ts") >= start).group_by("ts").agg(pl.col("r").mean()).sort("ts")
    )
    np.testing.assert_allclose(evidence.oos_returns, expected["r"].to_numpy(), rtol=1e-12)
    assert evidence.n_trials == 9 * 4  # the grid's fast < slow pairs, times the symbols
    assert evidence.trial_returns.shape == (bars["ts"].n_unique() - 1, 9)
    assert evidence.lookahead.clean and evidence.warmup.clean
    fills = sum(
        int((r.equity.filter(pl.col("ts") >= start)["position_units"].diff() != 0).sum())
        for r in results.values()
    )
    assert evidence.oos_trades == fills


def test_panel_returns_average_the_symbols_present() -> None:
    ts, returns = panel_returns(
        {
            "A": (np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3])),
            "B": (np.array([1]), np.array([0.0])),
        }
    )
    assert ts.tolist() == [0, 1, 2]
    np.testing.assert_allclose(returns, [0.1, 0.1, 0.3])


def test_criteria_fail_closed_when_evidence_is_missing() -> None:
    evidence = GateEvidence(
        oos_returns=np.full(50, 0.001), selection_returns=np.full(50, 0.001),
        periods_per_year=HOURS, n_trials=3, trial_returns=None, oos_trades=0,
        lookahead=None, warmup=None,
    )  # fmt: skip
    criteria = {c.name: c for c in evaluate_gate(evidence, ValidationConfig())}
    assert tuple(criteria) == CRITERIA
    assert not criteria["pbo"].passed and "not computable" in criteria["pbo"].detail
    lookahead = criteria["lookahead_clean"]
    assert not lookahead.passed and "not checked" in lookahead.detail
    assert not criteria["trades"].passed


# --------------------------------------------------------------------------------------------
# The record


def test_record_is_written_atomically_reloaded_and_idempotent(tmp_path) -> None:
    lake = Lake(tmp_path / "data")
    validation = ValidationConfig()
    evidence = GateEvidence(
        oos_returns=np.full(60, 0.001) + np.sin(np.arange(60)) * 1e-3,
        selection_returns=np.full(200, 0.001) + np.sin(np.arange(200)) * 1e-3,
        periods_per_year=HOURS, n_trials=2, trial_returns=None, oos_trades=25,
        lookahead=None, warmup=None,
    )  # fmt: skip
    criteria = evaluate_gate(evidence, validation)
    strategy = StrategyConfig()

    def record():
        return make_record(
            candidate_kind="strategy", candidate=strategy, market=MarketConfig(),
            validation=validation, criteria=criteria, n_trials=2, lineage={"run_id": "r1"},
        )  # fmt: skip

    first = record()
    assert first.candidate_id == strategy.id and not first.passed
    path = write_record(first, lake=lake, run_dir=tmp_path / "run")
    again = record()
    assert again.record_id == first.record_id
    write_record(again, lake=lake)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    assert load_records(lake, candidate_id=strategy.id) == [first]
    assert ValidationRecord.from_dict(json.loads(path.read_text())) == first
    rows = lake.read("validations")
    assert rows.height == len(CRITERIA)
    assert set(rows["criterion"]) == set(CRITERIA)
    run_json = json.loads((tmp_path / "run" / "validation_strategy.json").read_text())
    assert run_json["passed"] is False and run_json["record_id"] == first.record_id
    with pytest.raises(ValueError, match="criteria must be exactly"):
        make_record(
            candidate_kind="strategy", candidate=strategy, market=MarketConfig(),
            validation=validation, criteria=criteria[:3], n_trials=2,
        )  # fmt: skip


def test_validation_config_rejects_odd_blocks() -> None:
    with pytest.raises(ValueError, match="pbo_blocks must be even"):
        ValidationConfig(pbo_blocks=7)
