"""PSR, MinTRL, DSR and PBO against the papers' worked values, properties and a brute force.

Sources of the worked values:
- DSR: Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", numerical example
  (annualised SR 2.5, T = 1,250 daily returns, N = 100 trials, annualised V[SR] = 0.5,
  skewness -3, kurtosis 10): SR0 = 0.1132 per day and DSR = 0.9004, printed to 4 decimals.
- MinTRL and PSR: derived by hand below (normal returns, so the factor is 1 + SR^2 / 2).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import stats as stats_nb
from research_lib.overfitting import (
    block_bounds,
    cscv_combinations,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    minimum_track_record_length,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    return_moments,
)

# --- worked values ---------------------------------------------------------------------------


def test_dsr_paper_numerical_example() -> None:
    # The paper works in per-day units: sqrt(0.5 / 250) * 2.5306 = 0.1132 and DSR = 0.9004.
    sr0 = expected_maximum_sharpe(n_trials=100, sharpe_variance=0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(
        sharpe=2.5,
        n_observations=1250,
        skewness=-3.0,
        kurtosis=10.0,
        n_trials=100,
        sharpe_variance=0.5,
        periods_per_year=250,
    )
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    # The same inputs already in per-period units give the same answer.
    per_period = deflated_sharpe_ratio(
        sharpe=2.5 / math.sqrt(250),
        n_observations=1250,
        skewness=-3.0,
        kurtosis=10.0,
        n_trials=100,
        sharpe_variance=0.5 / 250,
    )
    assert per_period == pytest.approx(dsr, rel=1e-12)


def test_expected_maximum_quantile_factor_by_hand() -> None:
    # (1 - γ) Φ⁻¹(0.99) + γ Φ⁻¹(1 - 1/(100 e)) = 0.42278 * 2.32635 + 0.57722 * 2.68021 = 2.5306
    assert expected_maximum_sharpe(n_trials=100, sharpe_variance=1.0) == pytest.approx(
        0.4227843351 * 2.3263478740 + 0.5772156649 * 2.6802104450, abs=1e-8
    )
    assert expected_maximum_sharpe(n_trials=1, sharpe_variance=1.0) == 0.0


def test_min_trl_by_hand() -> None:
    # Normal returns, SR = 0.1 per period vs 0 at 95%: 1 + (1 + 0.01 / 2) * (1.644854 / 0.1)^2.
    expected = 1.0 + 1.005 * (1.6448536270 / 0.1) ** 2
    assert expected == pytest.approx(272.91, abs=0.005)
    got = minimum_track_record_length(sharpe=0.1, benchmark_sharpe=0.0, skewness=0.0, kurtosis=3.0)
    assert got == pytest.approx(expected, rel=1e-9)

    # MinTRL is where the PSR reaches the confidence: 273 observations pass, 272 do not.
    def psr(n: int) -> float:
        return probabilistic_sharpe_ratio(
            sharpe=0.1, benchmark_sharpe=0.0, n_observations=n, skewness=0.0, kurtosis=3.0
        )

    assert psr(math.floor(got)) < 0.95 <= psr(math.ceil(got))


def test_min_trl_non_normal_needs_longer_record() -> None:
    # Negative skew and fat tails raise the variance factor, so more observations are needed.
    normal = minimum_track_record_length(
        sharpe=0.1, benchmark_sharpe=0.0, skewness=0.0, kurtosis=3.0
    )
    fat = minimum_track_record_length(
        sharpe=0.1, benchmark_sharpe=0.0, skewness=-3.0, kurtosis=10.0
    )
    # by hand: 1 - (-3)(0.1) + (10 - 1) / 4 * 0.01 = 1.3225
    assert (fat - 1.0) / (normal - 1.0) == pytest.approx(1.3225 / 1.005, rel=1e-12)
    assert math.isinf(
        minimum_track_record_length(sharpe=0.1, benchmark_sharpe=0.1, skewness=0.0, kurtosis=3.0)
    )


def test_psr_by_hand() -> None:
    # z = 0.1 * sqrt(249) / sqrt(1.005) = 1.574036; Φ(z) = 0.94226
    got = probabilistic_sharpe_ratio(
        sharpe=0.1, benchmark_sharpe=0.0, n_observations=250, skewness=0.0, kurtosis=3.0
    )
    assert got == pytest.approx(0.94226, abs=5e-6)


def test_return_moments_match_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(7)
    returns = rng.standard_t(df=5, size=500) * 0.01 + 0.0005
    sr, skew, kurt, n = return_moments(returns)
    assert sr == pytest.approx(returns.mean() / returns.std(ddof=1), rel=1e-12)
    assert skew == pytest.approx(scipy_stats.skew(returns), rel=1e-10)
    assert kurt == pytest.approx(scipy_stats.kurtosis(returns, fisher=False), rel=1e-10)
    assert n == 500
    from_returns = deflated_sharpe_ratio(returns=returns, n_trials=10, sharpe_variance=0.001)
    from_moments = deflated_sharpe_ratio(
        sharpe=sr,
        n_observations=n,
        skewness=skew,
        kurtosis=kurt,
        n_trials=10,
        sharpe_variance=0.001,
    )
    assert from_returns == from_moments


# --- properties ------------------------------------------------------------------------------

sharpes = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False)
skews = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False)
excess = st.floats(min_value=0.0, max_value=20.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(sr=sharpes, skew=skews, extra=excess, n=st.integers(min_value=2, max_value=10_000))
def test_psr_at_its_own_sharpe_is_one_half(sr: float, skew: float, extra: float, n: int) -> None:
    kurt = 1.0 + skew * skew + extra
    try:
        psr = probabilistic_sharpe_ratio(
            sharpe=sr, benchmark_sharpe=sr, n_observations=n, skewness=skew, kurtosis=kurt
        )
    except ValueError:
        return  # the variance factor can only vanish on Pearson's boundary (extra == 0)
    assert psr == 0.5


@settings(max_examples=200, deadline=None)
@given(
    sr=st.floats(min_value=0.01, max_value=0.5),
    bump=st.floats(min_value=1e-3, max_value=0.5),
    skew=st.floats(min_value=-1.0, max_value=1.0),
    extra=st.floats(min_value=0.1, max_value=10.0),
)
def test_min_trl_decreases_as_sharpe_rises(sr: float, bump: float, skew: float, extra: float):
    # d/dSR of factor / SR^2 is (skew SR - 2) / SR^3 < 0 whenever skew SR < 2, as here.
    kurt = 1.0 + skew * skew + extra
    low = minimum_track_record_length(sharpe=sr, benchmark_sharpe=0.0, skewness=skew, kurtosis=kurt)
    high = minimum_track_record_length(
        sharpe=sr + bump, benchmark_sharpe=0.0, skewness=skew, kurtosis=kurt
    )
    assert high < low


@settings(max_examples=100, deadline=None)
@given(
    sr=st.floats(min_value=0.0, max_value=0.3),
    variance=st.floats(min_value=1e-6, max_value=0.05),
    n=st.integers(min_value=2, max_value=100_000),
    t=st.integers(min_value=10, max_value=5_000),
)
def test_dsr_decreases_as_trials_grow(sr: float, variance: float, n: int, t: int) -> None:
    def dsr(trials: int) -> float:
        return deflated_sharpe_ratio(
            sharpe=sr,
            n_observations=t,
            skewness=0.0,
            kurtosis=3.0,
            n_trials=trials,
            sharpe_variance=variance,
        )

    assert 0.0 <= dsr(2 * n) <= dsr(n) <= dsr(1) <= 1.0
    assert expected_maximum_sharpe(n_trials=2 * n, sharpe_variance=variance) > (
        expected_maximum_sharpe(n_trials=n, sharpe_variance=variance)
    )


def test_random_strategy_swept_over_1000_parameter_sets_fails_dsr() -> None:
    # 1,000 "parameter sets" of a skill-less strategy: five years of daily N(0, 1%) returns.
    rng = np.random.default_rng(20140501)
    returns = rng.normal(0.0, 0.01, size=(1250, 1000))
    trial_sharpes = returns.mean(axis=0) / returns.std(axis=0, ddof=1)
    best = int(np.argmax(trial_sharpes))
    assert trial_sharpes[best] * math.sqrt(250) > 1.0  # the winner looks good annualised...
    dsr = deflated_sharpe_ratio(
        returns=returns[:, best], n_trials=1000, trial_sharpes=trial_sharpes
    )
    assert dsr < 0.95  # ...and is rejected once the 1,000 trials are counted
    naive = probabilistic_sharpe_ratio(
        sharpe=trial_sharpes[best],
        benchmark_sharpe=0.0,
        n_observations=1250,
        skewness=0.0,
        kurtosis=3.0,
    )
    assert naive > 0.95  # whereas the unadjusted PSR(0) would pass it


# --- CSCV / PBO ------------------------------------------------------------------------------


def _sharpe(x: np.ndarray) -> float:
    std = float(np.std(x, ddof=1))
    mean = float(np.mean(x))
    if std > 0.0:
        return mean / std
    return math.copysign(math.inf, mean) if mean != 0.0 else 0.0


def brute_force_cscv(values: np.ndarray, n_blocks: int, metric: str) -> np.ndarray:
    """The paper's section 2 steps, literally: concatenate blocks, rank, take the logit."""
    blocks = np.array_split(values, n_blocks, axis=0)
    rows = []
    for combo in itertools.combinations(range(n_blocks), n_blocks // 2):
        train = np.concatenate([blocks[b] for b in combo])
        test = np.concatenate([blocks[b] for b in range(n_blocks) if b not in combo])
        score = _sharpe if metric == "sharpe" else (lambda x: float(np.mean(x)))
        is_perf = [score(train[:, j]) for j in range(values.shape[1])]
        oos_perf = [score(test[:, j]) for j in range(values.shape[1])]
        best = int(np.argmax(is_perf))
        below = sum(p < oos_perf[best] for p in oos_perf)
        equal = sum(p == oos_perf[best] for p in oos_perf)
        omega = (below + (equal + 1) / 2) / (values.shape[1] + 1)
        rows.append((math.log(omega / (1 - omega)), is_perf[best], oos_perf[best]))
    return np.array(rows)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    n_rows=st.integers(min_value=8, max_value=60),
    n_strategies=st.integers(min_value=2, max_value=7),
    half_blocks=st.integers(min_value=1, max_value=4),
    metric=st.sampled_from(["sharpe", "mean"]),
)
def test_numba_cscv_equals_brute_force(
    seed: int, n_rows: int, n_strategies: int, half_blocks: int, metric: str
) -> None:
    n_blocks = 2 * half_blocks
    if n_rows < 2 * n_blocks:
        return
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 0.01, size=(n_rows, n_strategies))
    expected = brute_force_cscv(values, n_blocks, metric)
    got = stats_nb.cscv_selection(
        values, block_bounds(n_rows, n_blocks), cscv_combinations(n_blocks), metric == "sharpe"
    )
    # The rank, hence the logit, is exact; the metrics differ only by summation order.
    np.testing.assert_array_equal(got[:, 0], expected[:, 0])
    np.testing.assert_allclose(got[:, 1:], expected[:, 1:], rtol=1e-9, atol=1e-15)
    result = probability_of_backtest_overfitting(values, n_blocks=n_blocks, metric=metric)
    assert result.pbo == float(np.mean(expected[:, 0] <= 0.0))


def test_numba_cscv_handles_flat_blocks_like_brute_force() -> None:
    values = np.zeros((12, 3))
    values[:, 1] = 0.01  # constant positive: +inf Sharpe in every half
    values[::2, 2] = 0.02
    got = stats_nb.cscv_selection(values, block_bounds(12, 4), cscv_combinations(4), True)
    np.testing.assert_array_equal(got, brute_force_cscv(values, 4, "sharpe"))


def test_pbo_of_identical_noise_strategies_is_about_one_half() -> None:
    # Under the null the in-sample winner's OOS rank is uniform, so E[PBO] = 0.5 (for odd N the
    # median rank counts as λ = 0, adding 1/N; N = 20 here, so no such mass). One matrix's PBO
    # has a standard deviation of about 0.14 (its combinations are strongly dependent), so we
    # average 20 seeded matrices: sd ≈ 0.14 / sqrt(20) ≈ 0.03, and ±0.1 is over 3 sd.
    pbos = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        noise = rng.normal(0.0, 0.01, size=(400, 20))
        pbos.append(probability_of_backtest_overfitting(noise, n_blocks=8).pbo)
    assert abs(np.mean(pbos) - 0.5) < 0.1


def test_pbo_of_a_planted_best_strategy_is_near_zero() -> None:
    rng = np.random.default_rng(42)
    values = rng.normal(0.0, 0.01, size=(1000, 30))
    values[:, 17] += 0.003  # per-period Sharpe 0.3, about 4.8 annualised on daily bars
    result = probability_of_backtest_overfitting(values, n_blocks=16)
    assert result.n_combinations == math.comb(16, 8) == 12870
    assert result.logits.shape == (12870,)
    assert result.pbo < 0.01
    assert result.probability_of_loss < 0.01
    assert np.all(result.oos_performance > 0.1)


def test_pbo_of_overfit_noise_shows_degradation() -> None:
    rng = np.random.default_rng(3)
    result = probability_of_backtest_overfitting(rng.normal(size=(600, 50)), n_blocks=10)
    # Selection on noise: the higher the in-sample winner, the lower its out-of-sample half.
    assert result.degradation_slope < 0.0
    assert 0.2 < result.probability_of_loss < 0.8


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_blocks": 5}, "n_blocks"),
        ({"n_blocks": 26}, "n_blocks"),
        ({"n_blocks": 40}, "n_blocks"),
        ({"metric": "sortino"}, "metric"),
    ],
)
def test_pbo_rejects_bad_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        probability_of_backtest_overfitting(np.ones((60, 3)), **kwargs)


def test_pbo_rejects_bad_matrices() -> None:
    with pytest.raises(ValueError, match="at least 2 strategy"):
        probability_of_backtest_overfitting(np.ones((60, 1)))
    with pytest.raises(ValueError, match="NaN"):
        probability_of_backtest_overfitting(np.full((60, 3), np.nan))
    with pytest.raises(ValueError, match="rows"):
        probability_of_backtest_overfitting(np.ones((20, 3)), n_blocks=16)
    with pytest.raises(ValueError, match="shape"):
        probability_of_backtest_overfitting(np.ones(60))


def test_scalar_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="kurtosis"):
        probabilistic_sharpe_ratio(
            sharpe=0.1, benchmark_sharpe=0.0, n_observations=100, skewness=0.0, kurtosis=0.0
        )
    with pytest.raises(ValueError, match="n_observations"):
        probabilistic_sharpe_ratio(
            sharpe=0.1, benchmark_sharpe=0.0, n_observations=1, skewness=0.0, kurtosis=3.0
        )
    with pytest.raises(ValueError, match="confidence"):
        minimum_track_record_length(
            sharpe=0.1, benchmark_sharpe=0.0, skewness=0.0, kurtosis=3.0, confidence=1.0
        )
    with pytest.raises(ValueError, match="n_trials"):
        expected_maximum_sharpe(n_trials=0, sharpe_variance=1.0)
    with pytest.raises(ValueError, match="sharpe_variance"):
        expected_maximum_sharpe(n_trials=10, sharpe_variance=-1.0)
    with pytest.raises(ValueError, match="exactly one"):
        deflated_sharpe_ratio(
            sharpe=0.1, n_observations=100, skewness=0.0, kurtosis=3.0, n_trials=10
        )
    with pytest.raises(ValueError, match="not both"):
        deflated_sharpe_ratio(returns=np.ones(10), sharpe=0.1, n_trials=10, sharpe_variance=0.1)
    with pytest.raises(ValueError, match="n_observations"):
        deflated_sharpe_ratio(sharpe=0.1, n_trials=10, sharpe_variance=0.1)
    with pytest.raises(ValueError, match="periods_per_year"):
        deflated_sharpe_ratio(
            sharpe=1.0,
            n_observations=100,
            skewness=0.0,
            kurtosis=3.0,
            n_trials=10,
            sharpe_variance=0.1,
            periods_per_year=0,
        )
