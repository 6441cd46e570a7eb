"""ArimaForecaster: equal to statsmodels for a given order, and the AIC search finds the order.

Series are simulated here with statsmodels' ``ArmaProcess`` and fixed seeds; grids are kept
small (each SARIMAX fit costs ~0.1 s).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks as checks
from statsmodels.tsa.arima_process import ArmaProcess
from statsmodels.tsa.statespace.sarimax import SARIMAX
from threadpoolctl import threadpool_limits

from research_lib.models.arima import ArimaForecaster


def simulate(ar: list[float], ma: list[float], *, n: int, seed: int) -> np.ndarray:
    process = ArmaProcess(np.r_[1.0, -np.asarray(ar)], np.r_[1.0, np.asarray(ma)])
    rng = np.random.default_rng(seed)
    return process.generate_sample(n, distrvs=rng.standard_normal, burnin=200)


def statsmodels_fit(y: np.ndarray, order: tuple[int, int, int], exog: np.ndarray | None = None):
    # Same call and the same single BLAS thread as the forecaster, so results are identical.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        return SARIMAX(y, exog=exog, order=order, trend="c").fit(disp=False)


def test_same_order_gives_identical_forecasts_to_statsmodels() -> None:
    y = simulate([0.6], [0.3], n=300, seed=1)
    model = ArimaForecaster(max_p=1, max_d=0, max_q=1).fit(None, y)
    reference = statsmodels_fit(y, model.order_)
    assert np.array_equal(model.forecast(5), reference.forecast(5))
    assert np.array_equal(model.predict(np.empty((5, 0))), reference.forecast(5))
    assert model.aic_ == reference.aic
    assert np.array_equal(model.results_.params, reference.params)


def test_search_table_covers_the_grid_and_the_choice_is_its_minimum() -> None:
    y = simulate([0.6], [], n=300, seed=2)
    model = ArimaForecaster(max_p=2, max_d=0, max_q=1).fit(None, y)
    table = model.search_
    assert table.height == 3 * 1 * 2
    assert set(zip(table["p"], table["d"], table["q"], strict=True)) == {
        (p, 0, q) for p in range(3) for q in range(2)
    }
    best = table.filter(table["converged"]).sort("aic").row(0, named=True)
    assert model.order_ == (best["p"], best["d"], best["q"])
    assert model.aic_ == best["aic"]


def test_aic_picks_ar2_on_a_strong_long_series() -> None:
    y = simulate([0.6, -0.3], [], n=600, seed=0)
    model = ArimaForecaster(max_p=3, max_d=0, max_q=1).fit(None, y)
    assert model.order_ == (2, 0, 0)


def test_aic_picks_arma11_for_most_seeds() -> None:
    hits = sum(
        ArimaForecaster(max_p=2, max_d=0, max_q=2)
        .fit(None, simulate([0.7], [0.5], n=400, seed=s))
        .order_
        == (1, 0, 1)
        for s in range(5)
    )
    assert hits >= 3, f"true order chosen for only {hits} of 5 seeds"


def test_search_chooses_differencing_for_a_random_walk() -> None:
    steps = simulate([0.5], [], n=400, seed=3)
    y = np.cumsum(steps)
    model = ArimaForecaster(max_p=1, max_d=1, max_q=0).fit(None, y)
    assert model.order_[1] == 1


def test_exogenous_regressors_flow_to_statsmodels_and_predict() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(260, 1))
    y = 2.0 * x[:, 0] + simulate([0.5], [], n=260, seed=4)
    model = ArimaForecaster(max_p=1, max_d=0, max_q=0).fit(x[:250], y[:250])
    assert model.n_exog_ == 1
    reference = statsmodels_fit(y[:250], model.order_, exog=x[:250])
    assert np.array_equal(model.predict(x[250:]), reference.forecast(10, exog=x[250:]))
    assert abs(model.results_.params[1] - 2.0) < 0.2, "the exog coefficient is recovered"
    with pytest.raises(ValueError, match="exog is required"):
        model.forecast(3)
    with pytest.raises(ValueError, match=r"exog must have shape \(3, k\)"):
        model.forecast(3, exog=x[:2])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"max_p": -1}, "max_p must be a non-negative integer, got -1"),
        ({"max_q": 1.5}, "max_q must be a non-negative integer"),
        ({"seasonal_order": (1, 0, 0)}, "seasonal_order must be four"),
        ({"trend": "linear"}, "trend must be one of"),
        ({"criterion": "mse"}, "criterion must be one of"),
    ],
)
def test_bad_parameters_are_rejected_in_fit(params: dict, match: str) -> None:
    model = ArimaForecaster(**params)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        model.fit(None, np.zeros(50))


def test_bad_inputs_and_unfitted_use() -> None:
    with pytest.raises(ValueError, match="one series"):
        ArimaForecaster().fit(None, np.zeros((10, 2)))
    with pytest.raises(ValueError, match="NaN"):
        ArimaForecaster().fit(None, np.array([1.0, np.nan, 2.0]))
    with pytest.raises(NotFittedError):
        ArimaForecaster().forecast(1)
    model = ArimaForecaster(max_p=1, max_d=0, max_q=0).fit(None, simulate([0.5], [], n=100, seed=5))
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        model.forecast(0)


@pytest.mark.parametrize(
    "check",
    [
        checks.check_parameters_default_constructible,
        checks.check_get_params_invariance,
        checks.check_set_params,
        checks.check_no_attributes_set_in_init,
        checks.check_estimator_repr,
        checks.check_estimator_cloneable,
        checks.check_mixin_order,
        checks.check_do_not_raise_errors_in_init_or_set_params,
        checks.check_estimators_unfitted,
    ],
    ids=lambda c: c.__name__,
)
def test_sklearn_contract_checks_that_apply_to_a_forecaster(check) -> None:
    # The data-driven checks (random X, shuffled rows, 1-sample fits) assume rows are
    # exchangeable samples; a forecaster's rows are time steps, so only these apply.
    check("ArimaForecaster", ArimaForecaster())
