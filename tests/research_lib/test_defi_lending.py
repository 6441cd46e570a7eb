"""research_lib.defi.lending: input checks, the exact ray path, and real Aave V3 indices.

The real-data tests read ``../shared/data/real/lending/aave_v3_polygon_usdc_reserve_1m.parquet``
(Aave V3 Polygon USDC.e, per minute, 2023-08-14..17; see PROVENANCE.md there). What the data
are: the rows where either index changes are exactly the rows where the rates change, so each
minute carries the reserve's *stored* state as of its last update in that minute (forward
filled), not the normalised income. The stored index is written at an update with the rate in
force before it. So between consecutive observed updates, with n the true whole seconds
elapsed, ``B1 = B0 * calculateCompoundedInterest(V0, n)`` and ``L1 = L0 *
calculateLinearInterest(R0, n)``, except when the interval hides further updates inside the
minute (only the minute's last state is kept) or, for the liquidity index, what looks like a
flash-loan premium (``cumulateToLiquidityIndex`` adds to the liquidity index alone).

Tolerance: each stored value is a ray / 1e27 rounded to float64 (0.5 ulp, ~1.1e-16 relative
near 1.03), and the model adds about two roundings, so a correct model agrees within
2 eps = 4.4e-16 relative. The minute timestamps cannot give n (the update lies somewhere in
its minute: 60 s at 6 % APR is 1.1e-7 of the index), so n is the whole second nearest the
growth; the evidence is that about half the intervals then agree to 2 eps, while a wrong model
(the rate after the update, a 365.25-day year, linear borrow interest) lands there ~0-3 % of
the time, and that the liquidity index, not used to pick n, agrees on those intervals too.
"""

from __future__ import annotations

import doctest
import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import lending as nb
from research_lib.defi import lending
from research_lib.defi.lending import (
    RAY,
    SECONDS_PER_YEAR,
    WAD,
    LendingPosition,
    accrue_indices,
    calculate_compounded_interest,
    calculate_linear_interest,
    health_factor,
    health_factor_series,
    health_factor_wad,
    liquidation_price,
    next_indexes_ray,
    percent_mul,
    ray_div,
    ray_mul,
    to_ray,
    wad_div,
    wad_mul,
)

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
AAVE = REAL / "lending" / "aave_v3_polygon_usdc_reserve_1m.parquet"
EPS = float(np.finfo(np.float64).eps)
YEAR = float(SECONDS_PER_YEAR)


def eth_position(**changes: float) -> LendingPosition:
    args = {
        "collateral_amount": 10.0,
        "collateral_price": 2000.0,
        "liquidation_threshold_bps": 8000,
        "debt_amount": 12_000.0,
    }
    return LendingPosition.single(**{**args, **changes})


def test_docstring_examples_run() -> None:
    result = doctest.testmod(lending, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10 and result.failed == 0


# --- positions: checks, health factor, liquidation price ------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"collateral_amount": -1.0}, r"collateral_amounts\[0\].*-1\.0"),
        ({"debt_amount": -5.0}, r"debt_amounts\[0\].*-5\.0"),
        ({"collateral_amount": math.nan}, r"collateral_amounts\[0\].*nan"),
        ({"liquidation_threshold_bps": 10_001}, r"liquidation_thresholds_bps\[0\].*10001"),
        ({"liquidation_threshold_bps": -1}, r"liquidation_thresholds_bps\[0\].*-1"),
        ({"collateral_price": 0.0}, r"collateral_prices\[0\].*0\.0"),
        ({"debt_price": math.inf}, r"debt_prices\[0\].*inf"),
    ],
)
def test_position_rejects_bad_input_naming_field_and_value(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        eth_position(**changes)


def test_position_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="liquidation_thresholds_bps has 1 entries"):
        LendingPosition((1.0, 2.0), (1.0, 1.0), (8000,), (1.0,), (1.0,))
    with pytest.raises(ValueError, match="debt_prices has 2 entries"):
        LendingPosition((1.0,), (1.0,), (8000,), (1.0,), (1.0, 1.0))


def test_health_factor_and_liquidation_price_single_collateral() -> None:
    position = eth_position()
    assert health_factor(position) == pytest.approx(10 * 2000 * 0.8 / 12_000, rel=2 * EPS)
    price = liquidation_price(position)
    assert price == 1500.0
    at_price = eth_position(collateral_price=price)
    assert health_factor(at_price) == pytest.approx(1.0, rel=2 * EPS)
    assert health_factor(eth_position(debt_amount=0.0)) == math.inf


def test_health_factor_matches_the_contract_in_wad() -> None:
    # 10 WETH at $2000 (8-decimal oracle), 82.5 %, 12,000 USDC debt at $1
    position = eth_position(liquidation_threshold_bps=8250)
    wad = health_factor_wad(
        collateral_base=[10 * 2000 * 10**8],
        liquidation_thresholds_bps=[8250],
        debt_base=[12_000 * 10**8],
    )
    assert wad == 1_375_000_000_000_000_000
    assert health_factor(position) == pytest.approx(wad / WAD, rel=2 * EPS)


def test_liquidation_price_with_other_collateral_and_its_errors() -> None:
    position = LendingPosition(
        collateral_amounts=(10.0, 5000.0),
        collateral_prices=(2000.0, 1.0),
        liquidation_thresholds_bps=(8000, 9000),
        debt_amounts=(12_000.0,),
        debt_prices=(1.0,),
    )
    price = liquidation_price(position, collateral_index=0)
    assert price == pytest.approx((12_000 - 4500) / 8.0, rel=2 * EPS)
    moved = LendingPosition((10.0, 5000.0), (price, 1.0), (8000, 9000), (12_000.0,), (1.0,))
    assert health_factor(moved) == pytest.approx(1.0, rel=4 * EPS)
    with pytest.raises(ValueError, match="no debt"):
        liquidation_price(eth_position(debt_amount=0.0))
    with pytest.raises(ValueError, match="other collateral covers the debt"):
        liquidation_price(position, collateral_index=1)  # 16,000 * 0.8 > 12,000
    with pytest.raises(ValueError, match="counts for nothing"):
        liquidation_price(eth_position(liquidation_threshold_bps=0))
    with pytest.raises(ValueError, match=r"collateral_index must be in \[0, 1\].*2"):
        liquidation_price(position, collateral_index=2)


def test_health_factor_series_shapes_and_nan_policy() -> None:
    position = LendingPosition((1.0, 0.0), (2000.0, 1.0), (8000, 8000), (1000.0,), (1.0,))
    prices = np.array([[2000.0, np.nan], [np.nan, 1.0], [1500.0, 1.0]])
    hf = health_factor_series(position, collateral_prices=prices)
    np.testing.assert_allclose(hf, [1.6, np.nan, 1.2], rtol=2 * EPS)  # 2nd asset is not held
    debt_up = health_factor_series(position, collateral_prices=prices, debt_prices=[1.0, 1.0, 2.0])
    assert debt_up[2] == pytest.approx(0.6)
    with pytest.raises(ValueError, match=r"collateral_prices\[1, 0\].*-3\.0"):
        health_factor_series(position, collateral_prices=[[1.0, 1.0], [-3.0, 1.0]])
    with pytest.raises(ValueError, match=r"collateral_prices must have shape"):
        health_factor_series(position, collateral_prices=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"debt_prices\[0, 0\].*inf"):
        health_factor_series(position, collateral_prices=prices, debt_prices=[np.inf, 1, 1])


@settings(max_examples=200, deadline=None)
@given(
    amount=st.floats(1e-6, 1e9),
    price=st.floats(1e-6, 1e9),
    bps=st.integers(1, 10_000),
    debt=st.floats(1e-6, 1e9),
    drop=st.floats(0.0, 0.999),
)
def test_health_factor_falls_with_price_and_is_one_at_liquidation_price(
    amount: float, price: float, bps: int, debt: float, drop: float
) -> None:
    position = eth_position(
        collateral_amount=amount,
        collateral_price=price,
        liquidation_threshold_bps=bps,
        debt_amount=debt,
    )
    lower = eth_position(
        collateral_amount=amount,
        collateral_price=price * (1 - drop),
        liquidation_threshold_bps=bps,
        debt_amount=debt,
    )
    assert health_factor(lower) <= health_factor(position)
    at = eth_position(
        collateral_amount=amount,
        collateral_price=liquidation_price(position),
        liquidation_threshold_bps=bps,
        debt_amount=debt,
    )
    assert health_factor(at) == pytest.approx(1.0, rel=8 * EPS)


# --- accrue_indices -------------------------------------------------------------------------


def rates_frame(ts: list[int], supply: list[float], borrow: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"ts": ts, "liquidity_rate": supply, "variable_borrow_rate": borrow})


def test_accrue_indices_updates_on_rate_change_or_every_row() -> None:
    year_ms = SECONDS_PER_YEAR * 1000
    frame = rates_frame([0, year_ms // 2, year_ms, 2 * year_ms], [0.1] * 4, [0.2, 0.2, 0.4, 0.4])
    out = accrue_indices(frame, liquidity_index_start=2.0)
    assert out.columns == ["ts", "is_update", "normalized_income", "normalized_debt"]
    assert out["is_update"].to_list() == [False, False, True, False]
    # no update mid-year: linear from the start, not compounded at the half
    assert out["normalized_income"][2] == pytest.approx(2.0 * 1.1, rel=2 * EPS)
    want = calculate_compounded_interest(to_ray("0.2"), seconds=SECONDS_PER_YEAR) / RAY
    assert out["normalized_debt"][2] == pytest.approx(want, rel=4 * EPS)
    every = accrue_indices(frame, liquidity_index_start=2.0, every_row_is_update=True)
    assert every["normalized_income"][2] == pytest.approx(2.0 * 1.05**2, rel=4 * EPS)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            rates_frame([0, 120, 60], [0.1] * 3, [0.2] * 3),
            r"ts\[2\] = 60 comes after ts\[1\] = 120",
        ),
        (rates_frame([0, 60], [0.1, -0.01], [0.2, 0.2]), r"liquidity_rate\[1\].*-0\.01"),
        (rates_frame([0, 60], [0.1, 0.1], [0.2, math.inf]), r"variable_borrow_rate\[1\].*inf"),
        (pl.DataFrame({"ts": [0], "liquidity_rate": [0.1]}), r"variable_borrow_rate"),
        (rates_frame([0.0, 60.0], [0.1] * 2, [0.2] * 2), r"ts must be integer"),
    ],
)
def test_accrue_indices_rejects_bad_input(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        accrue_indices(frame)


def test_accrue_indices_rejects_bad_start_and_keeps_null_rates_as_nan() -> None:
    with pytest.raises(ValueError, match=r"liquidity_index_start.*-1\.0"):
        accrue_indices(rates_frame([0], [0.1], [0.1]), liquidity_index_start=-1.0)
    frame = rates_frame([0, 60_000, 120_000, 180_000], [0.1, None, None, None], [0.1] * 4)
    out = accrue_indices(frame)
    income = out["normalized_income"].to_numpy()
    assert np.all(np.isfinite(income[:2])) and np.all(np.isnan(income[2:]))
    assert np.all(np.isfinite(out["normalized_debt"].to_numpy()))


# --- the exact ray path ---------------------------------------------------------------------


def test_ray_math_rounds_half_up_like_wadraymath() -> None:
    assert ray_mul(RAY // 2, 1) == 1 and ray_mul(RAY // 2 - 1, 1) == 0  # half rounds up
    assert ray_mul(RAY // 2, 2) == 1 and ray_mul(RAY, RAY) == RAY
    assert ray_div(1, 2 * RAY) == 1 and ray_div(1, 2 * RAY + 2) == 0
    assert wad_mul(WAD // 2, 1) == 1 and wad_mul(WAD // 2 - 1, 1) == 0
    assert wad_div(1, 3) == 333_333_333_333_333_333 and wad_div(2, 3) == 666_666_666_666_666_667
    assert percent_mul(1, 5000) == 1 and percent_mul(1, 4999) == 0
    assert to_ray("0.05") == 5 * 10**25 and to_ray(0.5) == RAY // 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ray_mul(-1, RAY), r"a must be a uint256.*-1"),
        (lambda: ray_mul(2**255, 2**255), "overflows uint256"),
        (lambda: ray_div(RAY, 0), "b must be > 0"),
        (lambda: wad_div(2**250, 1), "overflows uint256"),
        (lambda: calculate_linear_interest(RAY, seconds=-5), r"seconds must be a uint256.*-5"),
        (lambda: to_ray(-0.1), r"finite and >= 0.*-0\.1"),
        (
            lambda: health_factor_wad(
                collateral_base=[1], liquidation_thresholds_bps=[10_001], debt_base=[1]
            ),
            r"liquidation_thresholds_bps\[0\].*10001",
        ),
    ],
)
def test_ray_path_rejects_bad_input(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_ray_path_rejects_non_integers() -> None:
    with pytest.raises(TypeError, match="rate_ray must be an int"):
        calculate_compounded_interest(0.05, seconds=60)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a must be an int"):
        ray_mul(True, RAY)


rates_ray = st.integers(0, 3 * RAY)
seconds = st.integers(0, 10 * SECONDS_PER_YEAR)


@settings(max_examples=300, deadline=None)
@given(rate=rates_ray, a=seconds, b=seconds)
def test_ray_linear_interest_is_additive_and_an_update_compounds_it(
    rate: int, a: int, b: int
) -> None:
    # Interest (factor - RAY) over [0, a + b) is the sum over the parts, up to the floor in
    # each: 0 or 1 ray unit. Touching the reserve at a compounds it: the stored index then
    # exceeds the untouched one by rate^2 a b / year^2, up to rayMul's rounding.
    whole = calculate_linear_interest(rate, seconds=a + b) - RAY
    parts = [calculate_linear_interest(rate, seconds=s) - RAY for s in (a, b)]
    assert 0 <= whole - sum(parts) <= 1
    touched, _ = next_indexes_ray(
        liquidity_index_ray=calculate_linear_interest(rate, seconds=a),
        variable_borrow_index_ray=RAY,
        liquidity_rate_ray=rate,
        variable_borrow_rate_ray=0,
        seconds=b,
    )
    # rayMul: within half a unit of the exact product (RAY + pa)(RAY + pb) / RAY
    exact = Fraction((RAY + parts[0]) * (RAY + parts[1]), RAY)
    assert abs(touched - exact) <= Fraction(1, 2)
    # so it exceeds the untouched index by the cross term, up to the parts' floors
    cross = Fraction(rate * a, SECONDS_PER_YEAR) * Fraction(rate * b, SECONDS_PER_YEAR) / RAY
    slack = 2 + Fraction(parts[0] + parts[1], RAY)
    assert abs((touched - (RAY + whole)) - cross) <= slack


@settings(max_examples=300, deadline=None)
@given(rate=rates_ray, a=seconds, b=seconds)
def test_ray_compounded_interest_splits_up_to_its_dropped_terms(rate: int, a: int, b: int) -> None:
    # As in the float kernel's test: f(a) f(b) - f(a + b) >= 0, bounded by the exponential's
    # remainder after the cubic plus the contract's floors. rayMul and the floors of each
    # factor's terms add a few ray units, and the floored linear terms' product falls short
    # of the exact one by up to (their sum) / RAY units.
    fa, fb, fab = (calculate_compounded_interest(rate, seconds=s) for s in (a, b, a + b))
    gap = ray_mul(fa, fb) - fab
    y = rate / RAY * (a + b) / YEAR
    remainder = math.fsum(y**k / math.factorial(k) for k in range(4, 160)) * (1 + 1e-9) * RAY
    truncation = a * b + a * b * (a + b) // 2
    linear_floors = (rate * a // SECONDS_PER_YEAR + rate * b // SECONDS_PER_YEAR) // RAY + 1
    assert -4 - linear_floors <= gap <= remainder + truncation + 4


def test_ray_path_agrees_with_the_float_kernel_on_aave_like_rates() -> None:
    rate = 60_159_494_125_793_770_000_000_000  # 6.016 % APR, from the real reserve
    for s in (1, 12, 60, 3600, 86_400, SECONDS_PER_YEAR):
        ray = calculate_compounded_interest(rate, seconds=s) / RAY
        flt = nb.compounded_interest_factor(np.array([rate / RAY]), np.array([float(s)]))[0]
        assert flt == pytest.approx(ray, rel=4 * EPS)


# --- real Aave V3 data ----------------------------------------------------------------------


def real_reserve() -> pl.DataFrame:
    if not AAVE.exists():
        pytest.skip(f"real Aave data not found at {AAVE} (../shared/data/real is not mounted)")
    return pl.read_parquet(AAVE)


def update_rows(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Row 0 and each row where the stored state changed, as float arrays."""
    changed = np.zeros(frame.height, dtype=np.bool_)
    for name in ("liquidity_index", "variable_borrow_index"):
        arr = frame[name].to_numpy()
        changed[1:] |= arr[1:] != arr[:-1]
    rows = np.flatnonzero(changed | (np.arange(frame.height) == 0))
    names = ("liquidity_rate", "variable_borrow_rate", "liquidity_index", "variable_borrow_index")
    out = {name: frame[name].to_numpy()[rows] for name in names}
    out["ts_s"] = frame["ts"].to_numpy()[rows] / 1000.0
    return out


def nearest_seconds(index: np.ndarray, rate: np.ndarray, year: float = YEAR) -> np.ndarray:
    """The whole seconds whose growth at ``rate`` best explains each index step."""
    return np.round(np.log(index[1:] / index[:-1]) / (rate / year))


@pytest.mark.real_data
def test_real_indices_are_the_stored_index_forward_filled() -> None:
    frame = real_reserve()
    li, rate = frame["liquidity_index"].to_numpy(), frame["liquidity_rate"].to_numpy()
    index_moves = np.diff(li) != 0
    np.testing.assert_array_equal(index_moves, np.diff(rate) != 0)
    np.testing.assert_array_equal(
        index_moves, np.diff(frame["variable_borrow_index"].to_numpy()) != 0
    )
    # normalised income would grow every minute; here 43 % of minutes see no update
    assert 0.4 < 1 - index_moves.mean() < 0.5
    assert np.all(np.diff(li) >= 0)


@pytest.mark.real_data
def test_real_borrow_index_grows_by_the_compounded_rate_before_each_update() -> None:
    u = update_rows(real_reserve())
    b, rate = u["variable_borrow_index"], u["variable_borrow_rate"]
    n = nearest_seconds(b, rate[:-1])
    model = b[:-1] * nb.compounded_interest_factor(rate[:-1], n)
    exact = np.abs(model / b[1:] - 1) <= 2 * EPS
    exact[0] = False  # row 0 is the first minute, not an update: its time is unknown
    assert exact.mean() > 0.45  # measured 1679 of 3285 = 51.1 %
    # the whole seconds fit the minute stamps: each update lies within its minute
    minutes = np.diff(u["ts_s"])
    assert np.all(np.abs(n - minutes)[exact] < 60)
    # the ray path gives the same answer on those intervals
    for i in np.flatnonzero(exact)[::50]:
        _, ray = next_indexes_ray(
            liquidity_index_ray=RAY,
            variable_borrow_index_ray=to_ray(b[i]),
            liquidity_rate_ray=0,
            variable_borrow_rate_ray=to_ray(rate[i]),
            seconds=int(n[i]),
        )
        assert ray / RAY == pytest.approx(b[i + 1], rel=2 * EPS)
    # controls: a wrong model almost never reaches 2 eps at a whole second
    wrong = {
        "rate after the update": (rate[1:], YEAR, nb.compounded_interest_factor),
        "365.25-day year": (rate[:-1], 365.25 * 86_400, nb.compounded_interest_factor),
        "linear borrow interest": (rate[:-1], YEAR, nb.linear_interest_factor),
    }
    for name, (r, year, factor) in wrong.items():
        m = nearest_seconds(b, r, year)
        hits = np.abs(b[:-1] * factor(r * YEAR / year, m) / b[1:] - 1) <= 2 * EPS
        assert hits[1:].mean() < 0.05, name  # measured 0.06 %, 0 %, 3.2 %


@pytest.mark.real_data
def test_real_liquidity_index_grows_linearly_over_the_same_seconds() -> None:
    u = update_rows(real_reserve())
    b, li = u["variable_borrow_index"], u["liquidity_index"]
    n = nearest_seconds(b, u["variable_borrow_rate"][:-1])  # seconds from the *other* index
    borrow_ok = np.abs(
        b[:-1] * nb.compounded_interest_factor(u["variable_borrow_rate"][:-1], n) / b[1:] - 1
    )
    clean = borrow_ok <= 2 * EPS
    clean[0] = False
    err = li[:-1] * nb.linear_interest_factor(u["liquidity_rate"][:-1], n) / li[1:] - 1
    agree = clean & (np.abs(err) <= 2 * EPS)
    assert agree.sum() / clean.sum() > 0.95  # measured 1636 of 1679 = 97.4 %, max 1 eps
    # the rest grew *more* than linear interest, consistent with flash-loan premiums (added to
    # this index only);
    # one interval in 1679 is 1.7e-13 lower (unexplained; an update hidden in the minute?)
    below = clean & (err > 2 * EPS)
    assert below.sum() <= 1 and np.all(err[below] < 1e-12)


@pytest.mark.real_data
def test_real_accrue_indices_tracks_the_minute_frame() -> None:
    frame = real_reserve()
    out = accrue_indices(
        frame,
        liquidity_index_start=frame["liquidity_index"][0],
        variable_borrow_index_start=frame["variable_borrow_index"][0],
    )
    is_update = out["is_update"].to_numpy()
    assert is_update.sum() == 3285
    # On the minute grid each update is placed up to 60 s off; the error does not compound
    # (the stamps telescope), it stays under (max rate + the rate's total variation) x 60 s.
    for index, model, rate in (
        ("variable_borrow_index", "normalized_debt", "variable_borrow_rate"),
        ("liquidity_index", "normalized_income", "liquidity_rate"),
    ):
        r = frame[rate].to_numpy()
        bound = (r.max() + np.abs(np.diff(r)).sum()) * 60 / YEAR
        err = (out[model].to_numpy() / frame[index].to_numpy() - 1)[is_update]
        if index == "variable_borrow_index":
            assert np.abs(err).max() < bound  # measured 2.1e-7 vs bound 7.7e-6
        else:  # flash-loan premiums lift the observed index above interest alone
            assert err.max() < bound and err.min() > -2e-5  # measured -1.2e-5
