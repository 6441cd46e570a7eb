"""kernels.lending against the exact integer (ray) path and brute-force loops; properties;
numerical stability; NaN policy.

The references are ``research_lib.defi.lending``'s Python-int mirrors of Aave V3's Solidity
(``MathUtils``, ``WadRayMath``, ``PercentageMath``, ``GenericLogic``) and exact rationals
(``fractions.Fraction``). Fixtures are seeded random draws made here (no external data).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import lending as nb
from research_lib.defi.lending import (
    RAY,
    SECONDS_PER_YEAR,
    UINT256_MAX,
    WAD,
    calculate_compounded_interest,
    calculate_linear_interest,
    health_factor_wad,
    next_indexes_ray,
)

EPS = float(np.finfo(np.float64).eps)
YEAR = float(SECONDS_PER_YEAR)
RAY_FACTOR = {"linear": calculate_linear_interest, "compounded": calculate_compounded_interest}
FLOAT_FACTOR = {"linear": nb.linear_interest_factor, "compounded": nb.compounded_interest_factor}
ACCRUE = {"linear": nb.normalized_income, "compounded": nb.normalized_debt}

# Seconds from one block to ten years untouched; rates from 0 to 300 % APR in ray.
SECONDS_GRID = [0, 1, 2, 3, 12, 60, 3600, 86_400, 30 * 86_400, SECONDS_PER_YEAR, 10 * 31_536_000]


def ray_rates(seed: int, n: int) -> list[int]:
    rng = np.random.default_rng(seed)
    draws = [int(v) for v in rng.integers(0, 3 * 10**9, size=n)]
    # ray rates carry 27 digits; random low digits exercise every truncation in the contract
    return [d * 10**18 + int(rng.integers(0, 10**18)) for d in draws]


# --- interest factors vs MathUtils (ray) ----------------------------------------------------


@pytest.mark.parametrize("kind", ["linear", "compounded"])
@pytest.mark.parametrize("seed", range(3))
def test_interest_factor_matches_ray_mathutils(kind: str, seed: int) -> None:
    rates = [0, 1, 10**25, 5 * 10**25, RAY, *ray_rates(seed, 40)]
    for seconds in SECONDS_GRID:
        exact = np.array([RAY_FACTOR[kind](r, seconds=seconds) / RAY for r in rates])
        got = FLOAT_FACTOR[kind](
            np.array([r / RAY for r in rates]), np.full(len(rates), float(seconds))
        )
        # float: the rate's rounding to float64 plus a handful of roundings in the sum
        np.testing.assert_allclose(got, exact, rtol=8 * EPS, atol=0, err_msg=f"{seconds} s")


def test_compounded_factor_keeps_the_contracts_truncation() -> None:
    # At 10 % for a year untouched the contract's truncated cube term is 2.8 % short of the
    # exact one: 4.6e-6 of the factor, which the float path must reproduce, not "fix".
    rate = 10**26
    exact = calculate_compounded_interest(rate, seconds=SECONDS_PER_YEAR) / RAY
    untruncated = 1 + 0.1 + 0.1**2 / 2 * (1 - 1 / YEAR) + 0.1**3 / 6 * (1 - 1 / YEAR) ** 2
    got = nb.compounded_interest_factor(np.array([0.1]), np.array([YEAR]))[0]
    assert got == pytest.approx(exact, rel=4 * EPS)
    assert untruncated - got == pytest.approx(4.62e-6, rel=0.01)


def test_compounded_factor_is_below_continuous_and_above_linear() -> None:
    rates = np.linspace(0.0, 3.0, 31)
    for seconds in SECONDS_GRID[1:]:
        n = np.full(rates.shape, float(seconds))
        compounded = nb.compounded_interest_factor(rates, n)
        assert np.all(compounded <= np.exp(rates * seconds / YEAR) * (1 + 2 * EPS))
        assert np.all(compounded >= nb.linear_interest_factor(rates, n) * (1 - 2 * EPS))


# --- index accrual vs brute force and vs ReserveLogic in ray --------------------------------


def random_reserve(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts_s = np.cumsum(rng.integers(0, 4000, size=n)).astype(np.float64)
    rates = rng.uniform(0.0, 0.4, size=n)
    is_update = rng.random(n) < 0.4
    # the rate only changes at updates, as in a forward-filled reserve history
    fill = np.maximum.accumulate(np.where(is_update | (np.arange(n) == 0), np.arange(n), 0))
    return ts_s, rates[fill], is_update


def brute_force_accrue(
    ts_s: np.ndarray,
    rates: np.ndarray,
    is_update: np.ndarray,
    start: float,
    factor: Callable[[float, float], float],
) -> np.ndarray:
    """Recompute each row from scratch: find its last update, then grow that stored index."""
    updates = [0] + [i for i in range(1, len(ts_s)) if is_update[i]]
    stored = {0: start}
    for prev, cur in itertools.pairwise(updates):
        stored[cur] = stored[prev] * factor(rates[prev], ts_s[cur] - ts_s[prev])
    out = []
    for i in range(len(ts_s)):
        last = max(u for u in updates if u < i) if i else 0
        out.append(start if i == 0 else stored[last] * factor(rates[last], ts_s[i] - ts_s[last]))
    return np.array(out)


def scalar_factor(kind: str) -> Callable[[float, float], float]:
    def factor(rate: float, seconds: float) -> float:
        return float(FLOAT_FACTOR[kind](np.array([rate]), np.array([seconds]))[0])

    return factor


@pytest.mark.parametrize("kind", ["linear", "compounded"])
@pytest.mark.parametrize("seed", range(4))
def test_accrual_matches_brute_force_loop(kind: str, seed: int) -> None:
    ts_s, rates, is_update = random_reserve(seed, 300)
    got = ACCRUE[kind](ts_s, rates, is_update, 1.02)
    want = brute_force_accrue(ts_s, rates, is_update, 1.02, scalar_factor(kind))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(4))
def test_accrual_matches_reserve_logic_in_ray(seed: int) -> None:
    ts_s, rates, is_update = random_reserve(seed, 300)
    rates_ray = [round(r * 1e18) * 10**9 for r in rates]  # ray with 18 digits set
    rates = np.array([r / RAY for r in rates_ray])
    income = nb.normalized_income(ts_s, rates, is_update, 1.0)
    debt = nb.normalized_debt(ts_s, rates, is_update, 1.0)
    liquidity, borrow, last = RAY, RAY, 0
    for i in range(1, len(ts_s)):
        seconds = int(ts_s[i] - ts_s[last])
        # getNormalizedIncome / getNormalizedDebt between updates; _updateIndexes at one
        want_income = calculate_linear_interest(rates_ray[last], seconds=seconds) * liquidity
        want_debt = calculate_compounded_interest(rates_ray[last], seconds=seconds) * borrow
        # each row's float error is a few eps per update so far; 120 updates at most here
        assert income[i] == pytest.approx(want_income / RAY**2, rel=500 * EPS)
        assert debt[i] == pytest.approx(want_debt / RAY**2, rel=500 * EPS)
        if is_update[i]:
            liquidity, borrow = next_indexes_ray(
                liquidity_index_ray=liquidity,
                variable_borrow_index_ray=borrow,
                liquidity_rate_ray=rates_ray[last],
                variable_borrow_rate_ray=rates_ray[last],
                seconds=seconds,
            )
            last = i


def test_accrual_uses_the_rate_in_force_before_an_update() -> None:
    ts_s = np.array([0.0, YEAR, 2 * YEAR])
    rates = np.array([0.10, 0.50, 0.50])
    is_update = np.array([True, True, False])
    income = nb.normalized_income(ts_s, rates, is_update, 1.0)
    assert income[1] == pytest.approx(1.10, rel=2 * EPS)  # the year ran at 10 %
    assert income[2] == pytest.approx(1.10 * 1.50, rel=4 * EPS)


# --- health factor and liquidation price vs GenericLogic ------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_health_factor_single_collateral_matches_generic_logic_wad(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(200):
        collateral = int(rng.integers(10**6, 10**15))  # base currency units (USD, 8 decimals)
        debt = int(rng.integers(1, 10**15))
        bps = int(rng.integers(1, 10_001))
        wad = health_factor_wad(
            collateral_base=[collateral], liquidation_thresholds_bps=[bps], debt_base=[debt]
        )
        got = nb.health_factor(
            np.array([float(collateral)]),
            np.array([bps / 1e4]),
            np.ones((1, 1)),
            np.array([float(debt)]),
            np.ones((1, 1)),
        )[0]
        # the contract rounds twice: percentMul to half a base unit, wadDiv to half a wei
        adjusted = collateral * bps / 1e4
        bound = 0.5 / adjusted + 0.5 / (wad or 1) + 8 * EPS
        assert got == pytest.approx(wad / WAD, rel=bound)


@pytest.mark.parametrize("seed", range(5))
def test_health_factor_multi_collateral_matches_exact_and_bounds_the_contract(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(100):
        k = int(rng.integers(2, 6))
        collateral = [int(v) for v in rng.integers(10**8, 10**14, size=k)]
        bps = [int(v) for v in rng.integers(0, 10_001, size=k)]
        debt = [int(v) for v in rng.integers(10**8, 10**14, size=3)]
        exact = sum(Fraction(c * b, 10_000) for c, b in zip(collateral, bps, strict=True)) / sum(
            debt
        )
        got = nb.health_factor(
            np.array(collateral, dtype=np.float64),
            np.array(bps) / 1e4,
            np.ones((1, k)),
            np.array(debt, dtype=np.float64),
            np.ones((1, 3)),
        )[0]
        assert got == pytest.approx(float(exact), rel=16 * EPS)
        # Aave truncates the weighted threshold to whole bps: lower by < 1 bps of it
        wad = health_factor_wad(
            collateral_base=collateral, liquidation_thresholds_bps=bps, debt_base=debt
        )
        held = sum(c for c, b in zip(collateral, bps, strict=True) if b)
        average_bps = sum(c * b for c, b in zip(collateral, bps, strict=True)) / held
        assert wad / WAD <= float(exact) * (1 + 1e-12)
        assert wad / WAD >= float(exact) * (1 - 1 / average_bps) - 1e-12


def test_health_factor_without_debt_is_infinite_like_uint_max() -> None:
    hf = nb.health_factor(
        np.array([1.0]), np.array([0.8]), np.ones((2, 1)), np.array([0.0]), np.ones((2, 1))
    )
    assert np.all(np.isinf(hf))
    assert (
        health_factor_wad(collateral_base=[1], liquidation_thresholds_bps=[8000], debt_base=[0])
        == UINT256_MAX
    )


def test_liquidation_price_gives_health_factor_one() -> None:
    debt = np.array([100.0, 1000.0, 12_000.0])
    other = np.array([0.0, 200.0, 11_999.0])
    price = nb.liquidation_price(10.0, 0.825, debt, other)
    np.testing.assert_allclose(price, (debt - other) / 8.25, rtol=2 * EPS)
    for p, d, o in zip(price, debt, other, strict=True):
        hf = (10.0 * p * 0.825 + o) / d
        assert hf == pytest.approx(1.0, rel=4 * EPS)


def test_liquidation_price_is_nan_when_there_is_none() -> None:
    debt = np.array([100.0, 100.0, 0.0, np.nan])
    other = np.array([100.0, 150.0, 0.0, 0.0])
    assert np.all(np.isnan(nb.liquidation_price(10.0, 0.8, debt, other)))
    assert np.all(np.isnan(nb.liquidation_price(0.0, 0.8, np.array([5.0]), np.array([0.0]))))
    assert np.all(np.isnan(nb.liquidation_price(1.0, 0.0, np.array([5.0]), np.array([0.0]))))


# --- properties -----------------------------------------------------------------------------

prices = st.floats(1e-3, 1e6, allow_nan=False)
amounts = st.floats(1e-3, 1e6, allow_nan=False)
thresholds = st.floats(0.01, 1.0)


@settings(max_examples=200, deadline=None)
@given(amount=amounts, lt=thresholds, debt=amounts, p1=prices, p2=prices, extra=amounts)
def test_health_factor_monotone_in_price_and_collateral(
    amount: float, lt: float, debt: float, p1: float, p2: float, extra: float
) -> None:
    lo, hi = sorted((p1, p2))
    hf = nb.health_factor(
        np.array([amount]),
        np.array([lt]),
        np.array([[lo], [hi]]),
        np.array([debt]),
        np.ones((2, 1)),
    )
    assert hf[0] <= hf[1]  # rounding is monotone, so this holds exactly in float
    if hi > lo * (1 + 1e-9):
        assert hf[0] < hf[1]
    more = nb.health_factor(
        np.array([amount + extra]),
        np.array([lt]),
        np.array([[lo]]),
        np.array([debt]),
        np.ones((1, 1)),
    )
    assert more[0] >= hf[0]


@settings(max_examples=200, deadline=None)
@given(amount=amounts, lt=thresholds, debt=amounts, other_share=st.floats(0.0, 0.99))
def test_health_factor_is_one_at_the_liquidation_price(
    amount: float, lt: float, debt: float, other_share: float
) -> None:
    other = np.array([debt * other_share])
    price = nb.liquidation_price(amount, lt, np.array([debt]), other)[0]
    hf = nb.health_factor(
        np.array([amount, 1.0]),
        np.array([lt, 1.0]),
        np.array([[price, other[0]]]),
        np.array([debt]),
        np.ones((1, 1)),
    )[0]
    assert hf == pytest.approx(1.0, rel=8 * EPS)


reserve_rows = st.lists(
    st.tuples(st.integers(0, 10**7), st.floats(0.0, 5.0), st.booleans()), min_size=1, max_size=60
)


@settings(max_examples=200, deadline=None)
@given(rows=reserve_rows, start=st.floats(0.5, 5.0))
def test_indices_never_decrease_for_non_negative_rates(
    rows: list[tuple[int, float, bool]], start: float
) -> None:
    ts_s = np.cumsum([r[0] for r in rows]).astype(np.float64) / 1000.0  # ms steps, fractional s
    rates = np.array([r[1] for r in rows])
    is_update = np.array([r[2] for r in rows])
    for accrue in ACCRUE.values():
        out = accrue(ts_s, rates, is_update, start)
        assert out[0] == start
        assert np.all(np.diff(out) >= 0.0)


@settings(max_examples=300, deadline=None)
@given(rate=st.floats(0.0, 3.0), a=st.integers(0, 10**8), b=st.integers(0, 10**8))
def test_linear_interest_adds_up_and_an_update_compounds_it(rate: float, a: int, b: int) -> None:
    # Untouched, supply interest over [0, a + b) is the sum of the interest over the parts;
    # an update at a compounds it by exactly x a * x b (x the per-second rate). That is what
    # Aave guarantees: interest is linear between updates only.
    x = rate / YEAR
    whole = nb.linear_interest_factor(np.array([rate]), np.array([float(a + b)]))[0] - 1.0
    parts = nb.linear_interest_factor(np.array([rate, rate]), np.array([float(a), float(b)]))
    assert whole == pytest.approx((parts[0] - 1.0) + (parts[1] - 1.0), rel=8 * EPS, abs=4 * EPS)
    ts_s = np.array([0.0, a, a + b], dtype=np.float64)
    rates = np.full(3, rate)
    touched = nb.normalized_income(ts_s, rates, np.array([True, True, False]), 1.0)[2]
    untouched = nb.normalized_income(ts_s, rates, np.array([True, False, False]), 1.0)[2]
    assert untouched == pytest.approx(1.0 + whole, rel=4 * EPS)
    assert touched - untouched == pytest.approx(x * a * x * b, rel=1e-6, abs=8 * EPS * touched)


def exp_remainder_after_cubic(y: float) -> float:
    """e**y - (1 + y + y**2/2 + y**3/6) as its series: the difference cancels for small y."""
    return math.fsum(y**k / math.factorial(k) for k in range(4, 160))


@settings(max_examples=300, deadline=None)
@given(rate=st.floats(0.0, 3.0), a=st.integers(0, 10**8), b=st.integers(0, 10**8))
def test_compounded_interest_splits_up_to_its_fourth_order_remainder(
    rate: float, a: int, b: int
) -> None:
    # f(a) f(b) - f(a + b) is the product's binomial terms of order >= 4 (Vandermonde: the
    # lower orders cancel), so it is >= 0 and at most the exponential's remainder after the
    # cubic. The contract's floors (square term b2 <= x^2, cube term b3 <= b2 x, each short by
    # < 1 ray unit) only add ab (x^2 - b2) + ab (a + b - 2) / 2 (b2 x - b3) >= 0 to it.
    f = nb.compounded_interest_factor(
        np.full(3, rate), np.array([float(a), float(b), float(a + b)])
    )
    y = rate * (a + b) / YEAR
    remainder = exp_remainder_after_cubic(y)
    truncation = (a * b + a * b * (a + b) / 2) * 1e-27
    gap = f[0] * f[1] - f[2]
    assert gap >= -8 * EPS * f[2]
    assert gap <= remainder + truncation + 8 * EPS * f[2]


# --- numerical stability and NaN policy -----------------------------------------------------


@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e8])
def test_health_factor_and_liquidation_price_are_scale_free(scale: float) -> None:
    rng = np.random.default_rng(7)
    amount, lt, debt = 3.7, 0.825, 4321.0
    base = rng.uniform(500.0, 3000.0, size=1000)
    hf = nb.health_factor(
        np.array([amount / scale]),
        np.array([lt]),
        (base * scale)[:, None],
        np.array([debt]),
        np.ones((1000, 1)),
    )
    np.testing.assert_allclose(hf, amount * base * lt / debt, rtol=4 * EPS)
    price = nb.liquidation_price(amount / scale, lt, np.array([debt]), np.zeros(1))[0]
    assert price == pytest.approx(debt / (amount * lt) * scale, rel=4 * EPS)
    at_price = nb.health_factor(
        np.array([amount / scale]),
        np.array([lt]),
        np.array([[price]]),
        np.array([debt]),
        np.ones((1, 1)),
    )[0]
    assert at_price == pytest.approx(1.0, rel=4 * EPS)
    # debt priced at 1e-8 or 1e8 per token: the ratio does not care either
    scaled_debt = nb.health_factor(
        np.array([amount]),
        np.array([lt]),
        base[:, None],
        np.array([debt / scale]),
        np.full((1000, 1), scale),
    )
    np.testing.assert_allclose(scaled_debt, amount * base * lt / debt, rtol=4 * EPS)


def test_index_accrual_is_stable_over_many_tiny_steps() -> None:
    # a year of 12-second blocks, each an update: float error grows ~eps per step, far below
    # the 1e-9 the per-block compounding itself adds over the year
    n = SECONDS_PER_YEAR // 12 + 1
    ts_s = np.arange(n, dtype=np.float64) * 12.0
    rates = np.full(n, 0.05)
    every = np.ones(n, dtype=np.bool_)
    income = nb.normalized_income(ts_s, rates, every, 1.0)[-1]
    assert income == pytest.approx((1 + 0.05 * 12 / YEAR) ** (n - 1), rel=1e-10)
    assert income == pytest.approx(math.exp(0.05), rel=1e-8)


def test_nan_policy() -> None:
    # index: a NaN rate poisons the index from the first row that uses it, never before
    ts_s = np.arange(5, dtype=np.float64) * 60.0
    rates = np.array([0.05, 0.05, np.nan, np.nan, np.nan])
    is_update = np.array([True, False, True, False, False])
    for accrue in ACCRUE.values():
        out = accrue(ts_s, rates, is_update, 1.0)
        assert np.all(np.isfinite(out[:3])) and np.all(np.isnan(out[3:]))
    # health factor: NaN at that bar only; an asset not held is never read
    prices = np.array([[2000.0, np.nan], [np.nan, 1.0], [1500.0, 1.0]])
    hf = nb.health_factor(
        np.array([1.0, 0.0]), np.array([0.8, 0.8]), prices, np.array([1000.0]), np.ones((3, 1))
    )
    np.testing.assert_array_equal(np.isnan(hf), [False, True, False])
    assert hf[0] == pytest.approx(1.6) and hf[2] == pytest.approx(1.2)
    debt_nan = nb.health_factor(
        np.array([1.0]), np.array([0.8]), np.ones((1, 1)), np.array([1.0]), np.array([[np.nan]])
    )
    assert np.isnan(debt_nan[0])
