"""research_lib.evaluation against scipy, sklearn, pandas and brute-force loops.

Fixtures are seeded random draws and random-walk bars built in this file.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from research_lib.backtest import METRICS, run_backtest
from research_lib.config import BacktestConfig
from research_lib.evaluation import (
    Score,
    brier_score,
    calibration_figure,
    calibration_table,
    classification_scores,
    expected_calibration_error,
    hit_rate,
    ic_by_period,
    ic_summary,
    information_coefficient,
    log_loss,
    multiclass_log_loss,
    oos_strategy_performance,
    predictions_to_targets,
    rank_information_coefficient,
    regression_scores,
)

FAST = settings(max_examples=40, deadline=None)
finite = st.integers(-100_000, 100_000).map(lambda i: i / 100)  # no subnormal spreads


def with_gaps(values: np.ndarray, rows: list[int]) -> list[float | None]:
    out: list[float | None] = values.tolist()
    for r in rows:
        out[r] = None
    return out


# ----------------------------------------------------------------- IC, rank IC, hit rate


def test_ic_matches_scipy_pearsonr_with_pairwise_drops() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=200), rng.normal(size=200) + 0.3 * np.arange(200) / 200
    x_gaps, y_gaps = with_gaps(x, [3, 50]), y.copy()
    y_gaps[[7, 50, 90]] = np.nan
    keep = np.ones(200, bool)
    keep[[3, 7, 50, 90]] = False
    score = information_coefficient(x_gaps, pl.Series(y_gaps))
    assert score.count == 196
    assert abs(score.value - stats.pearsonr(x[keep], y[keep]).statistic) < 1e-12


@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e8])
def test_ic_is_stable_at_extreme_scales(scale: float) -> None:
    rng = np.random.default_rng(1)
    x = scale * (1.0 + 1e-3 * rng.normal(size=300))
    y = 1e-3 * rng.normal(size=300) + 1e-3 * (x / scale - 1.0)
    assert abs(information_coefficient(x, y).value - stats.pearsonr(x, y).statistic) < 1e-9


def test_rank_ic_matches_scipy_spearmanr_with_ties() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 8, 150).astype(float)  # many ties
    y = np.round(x + rng.normal(size=150), 1)
    y[[4, 9]] = np.nan
    keep = ~np.isnan(y)
    score = rank_information_coefficient(x, y)
    assert score.count == 148
    assert abs(score.value - stats.spearmanr(x[keep], y[keep]).statistic) < 1e-12


def test_undefined_correlations_are_nan_not_errors() -> None:
    assert math.isnan(information_coefficient([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]).value)
    assert information_coefficient([1.0, None], [1.0, 2.0]) == (
        pytest.approx(math.nan, nan_ok=True),
        1,
    )
    assert rank_information_coefficient([], []).count == 0


@FAST
@given(
    st.lists(st.tuples(finite, finite), min_size=3, max_size=40),
    st.floats(0.01, 100),
    st.floats(-100, 100),
)
# A constant prediction whose mean rounds off its value: undefined, not -1e-16 (found by CI).
@example(pairs=[(1.81, 0.0), (1.81, 0.0), (1.81, 0.01)], scale=1.0, shift=1.0)
def test_ic_is_invariant_to_positive_affine_maps(pairs, scale: float, shift: float) -> None:
    x, y = np.array(pairs).T
    base = information_coefficient(x, y).value
    mapped = information_coefficient(scale * x + shift, y).value
    if math.isnan(base):
        return
    assert mapped == pytest.approx(base, abs=1e-6)


@FAST
@given(st.lists(st.tuples(st.integers(-20, 20), finite), min_size=3, max_size=40))
def test_rank_ic_is_invariant_to_monotone_maps(pairs) -> None:
    x, y = np.array(pairs, dtype=float).T
    base = rank_information_coefficient(x, y).value
    mapped = rank_information_coefficient(np.exp(x / 4) + x**3, y).value
    assert mapped == pytest.approx(base, abs=1e-12, nan_ok=True)


def test_hit_rate_matches_a_loop_and_skips_zeros() -> None:
    rng = np.random.default_rng(3)
    x, y = np.round(rng.normal(size=300), 1), np.round(rng.normal(size=300), 1)
    used = [(a, b) for a, b in zip(x, y, strict=True) if a != 0 and b != 0]
    expected = sum((a > 0) == (b > 0) for a, b in used) / len(used)
    assert hit_rate(x, y) == Score(pytest.approx(expected, abs=1e-15), len(used))
    assert hit_rate([0.0, 1.0], [1.0, 0.0]).count == 0


@FAST
@given(st.lists(finite, min_size=1, max_size=50))
def test_hit_rate_of_a_target_against_itself_is_one(values: list[float]) -> None:
    score = hit_rate(values, values)
    assert score.value == 1.0 or (score.count == 0 and not any(values))


# ----------------------------------------------------------------- ic_by_period


def panel(n_ts: int = 60, n_symbols: int = 6, *, seed: int = 4) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ts = np.repeat(np.arange(n_ts, dtype=np.int64) * 3_600_000, n_symbols)
    symbol = np.tile([f"S{k}" for k in range(n_symbols)], n_ts)
    prediction = np.round(rng.normal(size=ts.size), 1)  # ties within periods
    target = 0.5 * prediction + rng.normal(size=ts.size)
    prediction[rng.choice(ts.size, 25, replace=False)] = np.nan
    frame = pl.DataFrame({"ts": ts, "symbol": symbol, "prediction": prediction, "target": target})
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 37 == 5)
        .then(None)
        .otherwise(pl.col("target"))
        .alias("target")
    )


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_ic_by_period_matches_a_loop_and_pandas_groupby(method: str) -> None:
    frame = panel()
    out = ic_by_period(frame, method=method, min_names=4)
    assert out.columns == ["ts", "ic", "count"] and out.height == 60
    scipy_loop: list[tuple] = []
    for ts, part in frame.group_by("ts", maintain_order=True):
        x, y = part["prediction"].to_numpy(), part["target"].fill_null(np.nan).to_numpy()
        keep = ~(np.isnan(x) | np.isnan(y))
        func = stats.pearsonr if method == "pearson" else stats.spearmanr
        value = func(x[keep], y[keep]).statistic if keep.sum() >= 4 else np.nan
        scipy_loop.append((ts[0], value, int(keep.sum())))
    reference = pd.DataFrame(scipy_loop, columns=["ts", "ic", "count"]).sort_values("ts")
    pandas = (
        frame.to_pandas()
        .dropna()
        .groupby("ts")[["prediction", "target"]]
        .corr(method=method)
        .xs("prediction", level=1)["target"]
    )
    got = out["ic"].fill_null(np.nan).to_numpy()
    np.testing.assert_allclose(got, reference["ic"].to_numpy(), atol=1e-12, equal_nan=True)
    assert out["count"].to_list() == reference["count"].tolist()
    defined = out["count"].to_numpy() >= 4
    np.testing.assert_allclose(got[defined], pandas.to_numpy()[defined], atol=1e-12)


def test_ic_by_period_rejects_a_single_symbol_frame() -> None:
    frame = panel().filter(pl.col("symbol") == "S0")
    with pytest.raises(ValueError, match="single-symbol"):
        ic_by_period(frame)


def test_ic_summary_matches_numpy() -> None:
    ic = ic_by_period(panel(), method="pearson")
    values = ic["ic"].drop_nulls().to_numpy()
    summary = ic_summary(ic)
    mean, std = values.mean(), values.std(ddof=1)
    assert summary["n_periods"] == values.size
    assert summary["mean_ic"] == pytest.approx(mean, abs=1e-12)
    assert summary["std_ic"] == pytest.approx(std, abs=1e-12)
    assert summary["t_stat"] == pytest.approx(mean / std * math.sqrt(values.size), abs=1e-9)
    assert summary["share_positive"] == pytest.approx((values > 0).mean())
    assert math.isnan(ic_summary(pl.DataFrame({"ic": [0.2]}))["ic_ir"])


# ----------------------------------------------------------------- probabilities


def binary_draw(n: int = 400, *, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n)
    return p, (rng.uniform(0, 1, n) < p).astype(float)


def test_log_loss_and_brier_match_sklearn() -> None:
    p, y = binary_draw()
    p[:3] = [0.0, 1.0, 1.0]  # clipped
    y[:3] = [1.0, 0.0, 1.0]
    eps = float(np.finfo(float).eps)
    assert abs(log_loss(p, y, epsilon=eps).value - skm.log_loss(y, y_proba=p)) < 1e-12
    assert abs(brier_score(p, y).value - skm.brier_score_loss(y, p)) < 1e-12
    gaps = with_gaps(p, [10, 11])
    expected = skm.log_loss(np.delete(y, [10, 11]), y_proba=np.delete(p, [10, 11]))
    assert log_loss(gaps, y == 1, epsilon=eps) == (pytest.approx(expected, abs=1e-12), 398)
    assert log_loss([0.0], [1]).value == pytest.approx(-math.log(1e-15))


def test_multiclass_log_loss_matches_sklearn() -> None:
    rng = np.random.default_rng(6)
    raw = rng.uniform(0.05, 1, (300, 3))
    p = raw / raw.sum(axis=1, keepdims=True)
    y = rng.choice([-1, 0, 1], 300)
    expected = skm.log_loss(y, y_proba=p, labels=[-1, 0, 1])
    assert abs(multiclass_log_loss(p, y).value - expected) < 1e-12
    frame = pl.DataFrame(p, schema=["down", "flat", "up"])
    assert abs(multiclass_log_loss(frame, pl.Series(y, dtype=pl.Int8)).value - expected) < 1e-12


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [5, 10])
def test_calibration_table_matches_sklearn(strategy: str, n_bins: int) -> None:
    p, y = binary_draw(seed=7)
    p[:4] = [0.0, 0.2, 0.6, 1.0]  # values on the edges
    table = calibration_table(p, y, n_bins=n_bins, strategy=strategy)
    assert table.columns == ["bin", "lower", "upper", "count", "mean_predicted", "observed_rate"]
    assert table.height == n_bins and table["count"].sum() == p.size
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    used = table.filter(pl.col("count") > 0)
    np.testing.assert_allclose(used["observed_rate"].to_numpy(), prob_true, atol=1e-12)
    np.testing.assert_allclose(used["mean_predicted"].to_numpy(), prob_pred, atol=1e-12)
    ece = expected_calibration_error(p, y, n_bins=n_bins, strategy=strategy)
    weights = used["count"].to_numpy() / p.size
    assert ece.value == pytest.approx(np.sum(weights * np.abs(prob_true - prob_pred)), abs=1e-12)


@FAST
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(1, 6)), min_size=1, max_size=8))
def test_ece_is_zero_for_perfectly_calibrated_bins(groups) -> None:
    # each group: m rows predicting k/m with exactly k positives (one group per bin)
    # (distinct k/m with m <= 6 are >= 1/30 apart, so 1000 bins never mix two of them)
    p: list[float] = []
    y: list[int] = []
    for k, m in groups:
        k %= m + 1
        p += [k / m] * m
        y += [1] * k + [0] * (m - k)
    assert expected_calibration_error(p, y, n_bins=1000).value == pytest.approx(0, abs=1e-12)


def test_calibration_figure_builds() -> None:
    p, y = binary_draw(100)
    fig = calibration_figure(calibration_table(p, y))
    assert [trace.name for trace in fig.data] == ["perfect", "model", "count"]


# ----------------------------------------------------------------- score tables


def test_regression_scores_per_group_match_the_scalar_functions() -> None:
    frame = panel(40, 4)
    table = regression_scores(frame, by="symbol")
    assert table.columns == [
        "symbol",
        "count",
        "ic",
        "rank_ic",
        "hit_rate",
        "hit_count",
        "rmse",
        "mae",
        "r2",
    ]
    assert table["symbol"].to_list() == ["S0", "S1", "S2", "S3"]
    for row in table.iter_rows(named=True):
        part = frame.filter(pl.col("symbol") == row["symbol"]).drop_nulls().fill_nan(None)
        part = part.drop_nulls()
        x, y = part["prediction"].to_numpy(), part["target"].to_numpy()
        assert row["count"] == x.size
        assert row["ic"] == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
        assert row["rank_ic"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        assert row["hit_rate"] == hit_rate(x, y).value
        assert row["rmse"] == pytest.approx(skm.root_mean_squared_error(y, x), abs=1e-12)
        assert row["mae"] == pytest.approx(skm.mean_absolute_error(y, x), abs=1e-12)
        assert row["r2"] == pytest.approx(skm.r2_score(y, x), abs=1e-12)
    assert regression_scores(frame).height == 1


def test_classification_scores_per_group() -> None:
    p, y = binary_draw(300, seed=8)
    frame = pl.DataFrame({"model": ["a", "b", "c"] * 100, "probability": p, "outcome": y})
    table = classification_scores(frame, by=["model"], n_bins=5)
    assert table.columns == [
        "model",
        "count",
        "log_loss",
        "brier_score",
        "expected_calibration_error",
        "accuracy",
        "base_rate",
        "mean_probability",
    ]
    part = frame.filter(pl.col("model") == "b")
    row = table.row(1, named=True)
    assert row["count"] == 100
    assert row["log_loss"] == pytest.approx(
        skm.log_loss(part["outcome"], y_proba=part["probability"]), abs=1e-12
    )
    assert row["brier_score"] == pytest.approx(
        skm.brier_score_loss(part["outcome"], part["probability"]), abs=1e-12
    )
    assert row["accuracy"] == pytest.approx(
        skm.accuracy_score(part["outcome"], part["probability"] > 0.5)
    )
    assert row["expected_calibration_error"] == pytest.approx(
        expected_calibration_error(part["probability"], part["outcome"], n_bins=5).value
    )


# ----------------------------------------------------------------- strategy


def make_bars(n: int = 300, *, symbol: str = "A", seed: int = 9) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pl.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 3_600_000,
            "symbol": [symbol] * n,
            "open": np.r_[100.0, close[:-1]],  # open = previous close
            "close": close,
            "volume": rng.uniform(1, 10, n),
        }
    )


def foresight(bars: pl.DataFrame, first: int, last: int) -> pl.DataFrame:
    """The next bar's log return, known at each close from row ``first`` to ``last``."""
    nxt = (pl.col("close").shift(-1) / pl.col("close")).log()
    return bars.select("symbol", "ts", nxt.alias("prediction"))[first : last + 1]


CFG = BacktestConfig(fee_bps=10.0)


def test_perfect_foresight_wins_and_its_mirror_loses() -> None:
    bars = make_bars()
    preds = foresight(bars, 100, 289)
    good = oos_strategy_performance(
        bars, preds, backtest_config=CFG, periods_per_year=8760, allow_short=True
    )
    bad = oos_strategy_performance(
        bars,
        preds.with_columns(-pl.col("prediction")),
        backtest_config=CFG,
        periods_per_year=8760,
        allow_short=True,
    )
    assert good.metrics["sharpe"][0] > 20 and good.metrics["total_return"][0] > 1
    assert bad.metrics["sharpe"][0] < -20
    row = good.metrics.row(0, named=True)
    assert (row["oos_start_ts"], row["oos_end_ts"]) == (100 * 3_600_000, 290 * 3_600_000)
    assert row["oos_bars"] == 191 and row["predicted_bars"] == 190
    assert good.metrics.columns[:6] == [
        "symbol",
        "config_id",
        "oos_start_ts",
        "oos_end_ts",
        "oos_bars",
        "predicted_bars",
    ]
    assert good.metrics.columns[6:] == list(METRICS)
    assert good.returns.columns == [
        "symbol",
        "ts",
        "prediction",
        "target",
        "position_units",
        "equity",
        "returns",
        "drawdown",
    ]


def test_null_predictions_give_flat_equity() -> None:
    bars = make_bars()
    preds = foresight(bars, 50, 120).with_columns(pl.lit(None, pl.Float64).alias("prediction"))
    out = oos_strategy_performance(bars, preds, backtest_config=CFG, periods_per_year=8760)
    assert out.returns.height == 72
    assert out.returns["equity"].unique().to_list() == [CFG.initial_cash]
    assert out.returns["returns"].abs().max() == 0.0
    assert out.metrics["trades"][0] == 0 and out.metrics["predicted_bars"][0] == 0


@pytest.mark.parametrize("fill", ["next_open", "next_close", "this_close"])
def test_oos_returns_equal_a_direct_run_backtest(fill: str) -> None:
    bars = make_bars()
    preds = foresight(bars, 80, 250)
    preds = preds.filter(~pl.col("ts").is_between(150 * 3_600_000, 160 * 3_600_000))  # a gap
    cfg = BacktestConfig(fee_bps=5, fill=fill)
    out = oos_strategy_performance(
        bars, preds, backtest_config=cfg, periods_per_year=8760, threshold=0.002
    )
    stop = 250 + (2 if fill == "next_close" else 1)
    window = bars[80 : stop + 1]
    prediction = window.join(preds, on=["symbol", "ts"], how="left")["prediction"].to_numpy()
    target = np.where(prediction > 0.002, 1.0, 0.0)  # NaN (no prediction) compares False
    direct = run_backtest(window, target, cfg, periods_per_year=8760)
    assert out.returns["ts"].to_list() == window["ts"].to_list()
    np.testing.assert_array_equal(out.returns["target"].to_numpy(), target)
    np.testing.assert_array_equal(
        out.returns["returns"].to_numpy(), direct.equity["returns"].to_numpy()
    )
    assert out.results["A"].metrics == direct.metrics


@pytest.mark.parametrize("fill", ["next_open", "next_close", "this_close"])
@pytest.mark.parametrize("t", [101, 170, 240])
def test_changing_a_prediction_changes_no_return_before_its_fill(fill: str, t: int) -> None:
    bars = make_bars()
    preds = foresight(bars, 100, 250)
    cfg = BacktestConfig(fee_bps=10, fill=fill)
    base = oos_strategy_performance(
        bars, preds, backtest_config=cfg, periods_per_year=8760, allow_short=True
    )
    flipped_value = -2 * preds["prediction"][t - 100]
    changed = preds.with_columns(
        pl.when(pl.col("ts") == t * 3_600_000)
        .then(pl.lit(flipped_value))
        .otherwise(pl.col("prediction"))
        .alias("prediction")
    )
    moved = oos_strategy_performance(
        bars, changed, backtest_config=cfg, periods_per_year=8760, allow_short=True
    )
    fill_row = (t if fill == "this_close" else t + 1) - 100  # row of the fill in the window
    a, b = base.returns["returns"].to_numpy(), moved.returns["returns"].to_numpy()
    np.testing.assert_array_equal(a[:fill_row], b[:fill_row])
    assert a[fill_row] != b[fill_row]


def test_several_symbols_and_frames_without_symbol() -> None:
    a, b = make_bars(symbol="A"), make_bars(200, symbol="B", seed=10)
    bars = pl.concat([a, b]).sort("ts", "symbol")
    preds = pl.concat([foresight(b, 30, 100), foresight(a, 120, 200)])
    out = oos_strategy_performance(bars, preds, backtest_config=CFG, periods_per_year=8760)
    assert out.metrics["symbol"].to_list() == ["B", "A"]
    assert out.metrics["oos_bars"].to_list() == [72, 82]
    single = oos_strategy_performance(
        a.drop("symbol"),
        foresight(a, 120, 200).drop("symbol"),
        backtest_config=CFG,
        periods_per_year=8760,
    )
    np.testing.assert_array_equal(
        single.returns["returns"].to_numpy(),
        out.returns.filter(pl.col("symbol") == "A")["returns"].to_numpy(),
    )


def test_impact_volatility_is_computed_on_the_full_history() -> None:
    bars = make_bars()
    cfg = BacktestConfig(fee_bps=0, impact_coefficient=1.0)
    preds = foresight(bars, 100, 200)
    out = oos_strategy_performance(
        bars, preds, backtest_config=cfg, periods_per_year=8760, allow_short=True
    )
    assert out.metrics["slippage_paid"][0] > 0  # not skipped as a warm-up
    first_trades = oos_strategy_performance(
        bars, preds.head(3), backtest_config=cfg, periods_per_year=8760, allow_short=True
    )
    assert first_trades.metrics["slippage_paid"][0] > 0


def test_predictions_to_targets() -> None:
    frame = pl.DataFrame({"p": [0.7, 0.52, 0.3, None, float("nan")]})
    out = predictions_to_targets(frame, centre=0.5, threshold=0.05, allow_short=True, column="p")
    assert out["target"].to_list() == [1.0, 0.0, -1.0, 0.0, 0.0]
    assert predictions_to_targets(frame, centre=0.5, column="p")["target"].to_list() == [
        1.0,
        1.0,
        0.0,
        0.0,
        0.0,
    ]


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: information_coefficient([1.0, 2.0], [1.0]),
            "prediction has 2 values but target has 1",
        ),
        (
            lambda: information_coefficient([1.0, math.inf], [1.0, 2.0]),
            "prediction has inf at row 1",
        ),
        (lambda: information_coefficient(np.ones((2, 2)), [1.0]), "must be 1-d"),
        (lambda: information_coefficient(["a", 1.0], [1.0, 2.0]), "prediction has dtype String"),
        (lambda: information_coefficient(["a", "b"], [1.0, 2.0]), "prediction has dtype String"),
        (lambda: hit_rate(5, [1.0]), "prediction must be a numpy array, polars Series or list"),
        (lambda: rank_information_coefficient(pl.Series(["a"]), [1.0]), "dtype String"),
        (lambda: log_loss([1.2], [1]), "probability has 1.2 at row 0"),
        (lambda: log_loss([0.2], [-1]), "outcome has -1.0"),
        (lambda: log_loss([0.2], [1], epsilon=0), "epsilon must be"),
        (lambda: brier_score([0.2, 0.3], [1]), "probability has 2 values"),
        (lambda: multiclass_log_loss(np.ones((2, 2)) / 2, [0, 1]), r"\(rows, 3\) matrix"),
        (lambda: multiclass_log_loss(np.ones((1, 3)) / 2, [0]), "sums to 1.5"),
        (lambda: multiclass_log_loss(np.ones((1, 3)) / 3, [2]), "not one of classes"),
        (lambda: calibration_table([0.5], [1], n_bins=0), "n_bins must be an int >= 1"),
        (lambda: calibration_table([0.5], [1], strategy="equal"), "strategy must be"),
        (lambda: ic_by_period(panel(), method="kendall"), "method must be"),
        (lambda: ic_by_period(panel(), min_names=1), "min_names must be"),
        (lambda: ic_by_period(panel(), by="date"), r"no column\(s\) \['date'\]"),
        (lambda: ic_summary(pl.DataFrame({"x": [1.0]})), r"no column\(s\) \['ic'\]"),
        (lambda: regression_scores(panel(), target="y"), r"no column\(s\) \['y'\]"),
        (
            lambda: predictions_to_targets(pl.DataFrame({"prediction": [1.0]}), threshold=-1),
            "threshold must be >= 0",
        ),
        (lambda: predictions_to_targets(pl.DataFrame({"prediction": ["x"]})), "dtype String"),
        (
            lambda: predictions_to_targets(pl.DataFrame({"target": [0.1]}), column="target"),
            "realised return",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_oos_strategy_performance_rejects_bad_predictions() -> None:
    bars = make_bars(50)
    kw = {"backtest_config": CFG, "periods_per_year": 8760}
    preds = foresight(bars, 10, 20)
    with pytest.raises(ValueError, match="fall on no bar"):
        oos_strategy_performance(bars, preds.with_columns(pl.col("ts") + 1), **kw)
    with pytest.raises(ValueError, match="repeat"):
        oos_strategy_performance(bars, pl.concat([preds, preds.head(1)]), **kw)
    with pytest.raises(ValueError, match="both have a 'symbol' column or neither"):
        oos_strategy_performance(bars, preds.drop("symbol"), **kw)
    with pytest.raises(ValueError, match="predictions is empty"):
        oos_strategy_performance(bars, preds.head(0), **kw)
    with pytest.raises(TypeError, match="backtest_config must be a BacktestConfig"):
        oos_strategy_performance(bars, preds, backtest_config={}, periods_per_year=8760)
    with pytest.raises(ValueError, match="periods_per_year must be > 0"):
        oos_strategy_performance(bars, preds, backtest_config=CFG, periods_per_year=0)


def test_lists_mixing_ints_and_floats_are_numbers() -> None:
    assert information_coefficient([1, 2, 3.5], [0, 1, 2]).count == 3
    assert math.isnan(information_coefficient([1.81, 1.81, 1.81], [0, 0, 0.01]).value)
    with pytest.raises(ValueError, match="prediction has dtype String"):
        information_coefficient(["a", 1, 2], [1, 2, 3])
