"""Aave V3 lending: positions, health factor, liquidation price, index accrual, exact ray maths.

Two paths:

- **Float** (``health_factor``, ``health_factor_series``, ``liquidation_price``,
  ``accrue_indices``): check inputs, then call ``kernels.lending``. Use these for research
  and sweeps.
- **Exact integer** (``ray_mul`` ... ``health_factor_wad``): Python ints mirroring Aave V3's
  Solidity (``WadRayMath``, ``PercentageMath``, ``MathUtils``, ``ReserveLogic``,
  ``GenericLogic``) bit for bit, for where the contract's own answer is asked for.

Units: rates are APR fractions on the float path (0.05 = 5 %) and rays (1e27 = 100 %) on the
integer path; liquidation thresholds are basis points (8250 = 82.5 %); prices are in one
base currency (e.g. USD) per whole token; a year is 365 days, as in ``MathUtils``.

Where the float health factor and the contract differ: for several collateral assets Aave
truncates the value-weighted liquidation threshold to whole basis points before using it, so
the contract's health factor can be lower than the real-valued one by up to 1 / (average
threshold in bps), about 1.3e-4 relative at 75 %; ``health_factor_wad`` reproduces it.

NaN policy (see ``kernels.lending``): a snapshot position must be all finite; a price series
may hold NaN (the health factor is NaN at that bar only, unless the asset is not held); a
NaN (or null) rate in ``accrue_indices`` makes that index NaN from the first row that uses it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import polars as pl

from kernels import lending as lending_nb

__all__ = [
    "HALF_RAY",
    "HALF_WAD",
    "PERCENTAGE_FACTOR",
    "RAY",
    "SECONDS_PER_YEAR",
    "UINT256_MAX",
    "WAD",
    "LendingPosition",
    "accrue_indices",
    "calculate_compounded_interest",
    "calculate_linear_interest",
    "health_factor",
    "health_factor_series",
    "health_factor_wad",
    "liquidation_price",
    "next_indexes_ray",
    "percent_mul",
    "ray_div",
    "ray_mul",
    "to_ray",
    "wad_div",
    "wad_mul",
]

RAY = 10**27
HALF_RAY = RAY // 2
WAD = 10**18
HALF_WAD = WAD // 2
PERCENTAGE_FACTOR = 10_000
HALF_PERCENTAGE_FACTOR = PERCENTAGE_FACTOR // 2
SECONDS_PER_YEAR = 365 * 24 * 3600
UINT256_MAX = 2**256 - 1
MAX_THRESHOLD_BPS = PERCENTAGE_FACTOR


# --- input checks ---------------------------------------------------------------------------


def _amounts(values: Sequence[float], *, name: str) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    for i, v in enumerate(out):
        if not math.isfinite(v) or v < 0.0:
            raise ValueError(
                f"{name}[{i}] must be a finite number >= 0, got {v!r}; amounts are token units "
                "held (a debt goes in debt_amounts, not as a negative collateral)"
            )
    return out


def _thresholds_bps(values: Sequence[float], *, name: str) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    for i, v in enumerate(out):
        if not math.isfinite(v) or not 0.0 <= v <= MAX_THRESHOLD_BPS:
            raise ValueError(
                f"{name}[{i}] must be in [0, {MAX_THRESHOLD_BPS}] basis points, got {v!r}; "
                "e.g. 8250 for an 82.5 % liquidation threshold"
            )
    return out


def _uint(value: object, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int (uint256), got {value!r} ({type(value).__name__})")
    value = int(value)
    if not 0 <= value <= UINT256_MAX:
        raise ValueError(f"{name} must be a uint256 in [0, 2**256 - 1], got {value}")
    return value


def _checked(value: int, *, what: str) -> int:
    # Solidity >= 0.8 reverts on overflow in checked arithmetic; surface it instead of wrapping.
    if value > UINT256_MAX:
        raise ValueError(f"{what} overflows uint256 ({value}); the contract would revert")
    return value


def _price_matrix(values: object, *, name: str, n_bars: int | None, n_assets: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1 and n_assets == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != n_assets or (n_bars is not None and len(arr) != n_bars):
        want = f"({n_bars if n_bars is not None else 'bars'}, {n_assets})"
        raise ValueError(f"{name} must have shape {want} (bars x assets), got {arr.shape}")
    bad = np.flatnonzero(np.isinf(arr).ravel() | (arr.ravel() < 0.0))
    if bad.size:
        row, col = divmod(int(bad[0]), n_assets)
        raise ValueError(
            f"{name}[{row}, {col}] must be >= 0 and finite (NaN allowed: unknown price), "
            f"got {arr[row, col]!r}"
        )
    return np.ascontiguousarray(arr)


# --- positions and the float path -----------------------------------------------------------


@dataclass(frozen=True)
class LendingPosition:
    """A snapshot Aave position: collateral and debt amounts with their prices.

    Parameters
    ----------
    collateral_amounts : tuple of float
        Tokens supplied as collateral, one per collateral asset (whole tokens, >= 0).
    collateral_prices : tuple of float
        Price of each collateral asset in the base currency per whole token (> 0).
    liquidation_thresholds_bps : tuple of float
        Each collateral's liquidation threshold in basis points, in [0, 10000].
    debt_amounts : tuple of float
        Tokens owed, one per debt asset (>= 0).
    debt_prices : tuple of float
        Price of each debt asset in the base currency per whole token (> 0).

    Examples
    --------
    >>> position = LendingPosition.single(
    ...     collateral_amount=10.0, collateral_price=2000.0,
    ...     liquidation_threshold_bps=8250, debt_amount=12_000.0,
    ... )
    >>> position.liquidation_thresholds_bps
    (8250.0,)
    """

    collateral_amounts: tuple[float, ...]
    collateral_prices: tuple[float, ...]
    liquidation_thresholds_bps: tuple[float, ...]
    debt_amounts: tuple[float, ...]
    debt_prices: tuple[float, ...]

    def __post_init__(self) -> None:
        fields = {
            "collateral_amounts": _amounts(self.collateral_amounts, name="collateral_amounts"),
            "collateral_prices": _amounts(self.collateral_prices, name="collateral_prices"),
            "liquidation_thresholds_bps": _thresholds_bps(
                self.liquidation_thresholds_bps, name="liquidation_thresholds_bps"
            ),
            "debt_amounts": _amounts(self.debt_amounts, name="debt_amounts"),
            "debt_prices": _amounts(self.debt_prices, name="debt_prices"),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)  # frozen: store the normalised tuples
        n_c = len(self.collateral_amounts)
        for name in ("collateral_prices", "liquidation_thresholds_bps"):
            if len(fields[name]) != n_c:
                raise ValueError(
                    f"{name} has {len(fields[name])} entries but collateral_amounts has {n_c}; "
                    "give one per collateral asset"
                )
        if len(self.debt_prices) != len(self.debt_amounts):
            raise ValueError(
                f"debt_prices has {len(self.debt_prices)} entries but debt_amounts has "
                f"{len(self.debt_amounts)}; give one per debt asset"
            )
        for name in ("collateral_prices", "debt_prices"):
            for i, price in enumerate(fields[name]):
                if price == 0.0:
                    raise ValueError(f"{name}[{i}] must be > 0, got {price!r}")

    @classmethod
    def single(
        cls,
        *,
        collateral_amount: float,
        collateral_price: float,
        liquidation_threshold_bps: float,
        debt_amount: float,
        debt_price: float = 1.0,
    ) -> LendingPosition:
        """One collateral asset against one debt asset (``debt_price`` 1.0: a stablecoin)."""
        return cls(
            collateral_amounts=(collateral_amount,),
            collateral_prices=(collateral_price,),
            liquidation_thresholds_bps=(liquidation_threshold_bps,),
            debt_amounts=(debt_amount,),
            debt_prices=(debt_price,),
        )

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        amounts = np.array(self.collateral_amounts, dtype=np.float64)
        thresholds = np.array(self.liquidation_thresholds_bps, dtype=np.float64) / 1e4
        debts = np.array(self.debt_amounts, dtype=np.float64)
        return amounts, thresholds, debts


def health_factor(position: LendingPosition) -> float:
    """Aave's health factor of a position: threshold-weighted collateral over debt.

    ``sum(amount * price * threshold) / sum(debt * debt_price)``, ``inf`` without debt;
    below 1 the position can be liquidated. Real-valued: see the module note on Aave's
    truncated average threshold.

    Examples
    --------
    >>> position = LendingPosition.single(
    ...     collateral_amount=10.0, collateral_price=2000.0,
    ...     liquidation_threshold_bps=8250, debt_amount=12_000.0,
    ... )
    >>> round(health_factor(position), 6)
    1.375
    """
    return float(health_factor_series(position, collateral_prices=[position.collateral_prices])[0])


def health_factor_series(
    position: LendingPosition,
    *,
    collateral_prices: object,
    debt_prices: object | None = None,
) -> np.ndarray:
    """Health factor per bar of a fixed position under price paths.

    Parameters
    ----------
    position : LendingPosition
        Amounts and thresholds (its own prices are not used, except ``debt_prices`` when
        the ``debt_prices`` argument is None).
    collateral_prices : array-like, shape (bars, n_collateral) or (bars,) for one asset
        Base-currency price per whole token at each bar; >= 0, NaN allowed.
    debt_prices : array-like, shape (bars, n_debt) or (bars,), optional
        Debt asset prices per bar; defaults to the position's debt prices at every bar.

    Returns
    -------
    numpy.ndarray
        float64, one value per bar; NaN where a held asset's price is NaN.

    Examples
    --------
    >>> position = LendingPosition.single(
    ...     collateral_amount=10.0, collateral_price=2000.0,
    ...     liquidation_threshold_bps=8000, debt_amount=8_000.0,
    ... )
    >>> health_factor_series(position, collateral_prices=[2000.0, 1000.0, float("nan")])
    array([ 2.,  1., nan])
    """
    amounts, thresholds, debts = position._arrays()
    prices = _price_matrix(
        collateral_prices, name="collateral_prices", n_bars=None, n_assets=len(amounts)
    )
    if debt_prices is None:
        debt_matrix = np.tile(np.array(position.debt_prices, dtype=np.float64), (len(prices), 1))
    else:
        debt_matrix = _price_matrix(
            debt_prices, name="debt_prices", n_bars=len(prices), n_assets=len(debts)
        )
    return lending_nb.health_factor(amounts, thresholds, prices, debts, debt_matrix)


def liquidation_price(position: LendingPosition, *, collateral_index: int = 0) -> float:
    """The price of one collateral asset at which the health factor is exactly 1.

    Other prices and all amounts are held fixed: ``(debt - other adjusted collateral) /
    (amount * threshold)``. At or below it the position is liquidatable.

    Parameters
    ----------
    position : LendingPosition
        The position.
    collateral_index : int, default 0
        Which collateral asset's price moves.

    Raises
    ------
    ValueError
        When no positive price gives a health factor of 1: no debt, the asset is not held
        or has a zero threshold, or the other collateral alone covers the debt.

    Examples
    --------
    >>> position = LendingPosition.single(
    ...     collateral_amount=10.0, collateral_price=2000.0,
    ...     liquidation_threshold_bps=8000, debt_amount=12_000.0,
    ... )
    >>> liquidation_price(position)
    1500.0
    """
    n_c = len(position.collateral_amounts)
    if isinstance(collateral_index, bool) or not 0 <= collateral_index < n_c:
        raise ValueError(
            f"collateral_index must be in [0, {n_c - 1}] (one per collateral asset), "
            f"got {collateral_index!r}"
        )
    amounts, thresholds, debts = position._arrays()
    prices = np.array(position.collateral_prices, dtype=np.float64)
    debt_value = float(np.dot(debts, np.array(position.debt_prices, dtype=np.float64)))
    others = np.arange(n_c) != collateral_index
    other_adjusted = float(np.sum(amounts[others] * prices[others] * thresholds[others]))
    if debt_value == 0.0:
        raise ValueError(
            "position has no debt (debt value 0): the health factor is infinite at every "
            "price, so there is no liquidation price"
        )
    scale = amounts[collateral_index] * thresholds[collateral_index]
    if scale == 0.0:
        raise ValueError(
            f"collateral {collateral_index} counts for nothing (amount "
            f"{amounts[collateral_index]!r}, threshold "
            f"{position.liquidation_thresholds_bps[collateral_index]!r} bps): its price "
            "cannot move the health factor"
        )
    out = lending_nb.liquidation_price(
        float(amounts[collateral_index]),
        float(thresholds[collateral_index]),
        np.array([debt_value]),
        np.array([other_adjusted]),
    )[0]
    if math.isnan(out):
        raise ValueError(
            f"the other collateral covers the debt on its own (threshold-weighted "
            f"{other_adjusted!r} >= debt {debt_value!r}): no price of collateral "
            f"{collateral_index} brings the health factor down to 1"
        )
    return float(out)


def accrue_indices(
    frame: pl.DataFrame,
    *,
    liquidity_index_start: float = 1.0,
    variable_borrow_index_start: float = 1.0,
    every_row_is_update: bool = False,
) -> pl.DataFrame:
    """Model Aave's liquidity and variable borrow indices from a rate series.

    A row is a reserve update when either rate differs from the previous row (Aave writes
    both rates at every update, and they move with utilisation); ``every_row_is_update``
    treats every row as one. At an update the stored index grows with the rate in force
    before it (linear for supply, Aave's binomial compounding for variable debt) and the
    row's rates then take effect. Each row reports ``getNormalizedIncome`` /
    ``getNormalizedDebt``: the index a balance would be valued at then. Elapsed time is
    ``ts`` difference / 1000 (block timestamps are whole seconds; sub-second ms are kept).

    Parameters
    ----------
    frame : polars.DataFrame
        Columns ``ts`` (integer ms, non-decreasing), ``liquidity_rate`` and
        ``variable_borrow_rate`` (APR fractions >= 0; null or NaN: unknown rate).
    liquidity_index_start, variable_borrow_index_start : float, default 1.0
        The indices at the first row (e.g. the observed stored indices there).
    every_row_is_update : bool, default False
        Treat every row as a reserve update (the rows are known touches).

    Returns
    -------
    polars.DataFrame
        ``ts``, ``is_update`` (bool), ``normalized_income`` and ``normalized_debt``.

    Examples
    --------
    >>> frame = pl.DataFrame({
    ...     "ts": [0, 31_536_000_000],
    ...     "liquidity_rate": [0.05, 0.05],
    ...     "variable_borrow_rate": [0.10, 0.10],
    ... })
    >>> out = accrue_indices(frame)
    >>> out["normalized_income"].to_list()
    [1.0, 1.05]
    """
    for index_name, start in (
        ("liquidity_index_start", liquidity_index_start),
        ("variable_borrow_index_start", variable_borrow_index_start),
    ):
        if not math.isfinite(start) or start <= 0.0:
            raise ValueError(f"{index_name} must be finite and > 0, got {start!r}")
    missing = {"ts", "liquidity_rate", "variable_borrow_rate"} - set(frame.columns)
    if missing:
        raise ValueError(
            f"frame lacks column(s) {sorted(missing)}; need ts (ms), liquidity_rate and "
            "variable_borrow_rate (APR fractions)"
        )
    if not frame["ts"].dtype.is_integer() or frame["ts"].null_count():
        raise ValueError(
            f"ts must be integer epoch milliseconds without nulls, got dtype "
            f"{frame['ts'].dtype} with {frame['ts'].null_count()} null(s)"
        )
    ts_ms = frame["ts"].to_numpy().astype(np.int64)
    back = np.flatnonzero(np.diff(ts_ms) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise ValueError(
            f"ts must be sorted ascending: ts[{i}] = {ts_ms[i]} comes after "
            f"ts[{i - 1}] = {ts_ms[i - 1]}; sort the frame by ts first"
        )
    rates = {}
    for name in ("liquidity_rate", "variable_borrow_rate"):
        arr = frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy().astype(np.float64)
        bad = np.flatnonzero(np.isinf(arr) | (arr < 0.0))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{name}[{i}] must be an APR fraction >= 0 (0.05 = 5 %), got {arr[i]!r}"
            )
        rates[name] = np.ascontiguousarray(arr)
    if every_row_is_update:
        is_update = np.ones(len(ts_ms), dtype=np.bool_)
    else:
        is_update = np.zeros(len(ts_ms), dtype=np.bool_)
        for arr in rates.values():
            is_update[1:] |= arr[1:] != arr[:-1]
    # Seconds relative to the first row keep full float64 precision on the differences.
    ts_s = (ts_ms - (ts_ms[0] if len(ts_ms) else 0)).astype(np.float64) / 1000.0
    income = lending_nb.normalized_income(
        ts_s, rates["liquidity_rate"], is_update, float(liquidity_index_start)
    )
    debt = lending_nb.normalized_debt(
        ts_s, rates["variable_borrow_rate"], is_update, float(variable_borrow_index_start)
    )
    return pl.DataFrame(
        {
            "ts": frame["ts"],
            "is_update": is_update,
            "normalized_income": income,
            "normalized_debt": debt,
        }
    )


# --- the exact integer path (Aave V3 Solidity in Python ints) -------------------------------


def to_ray(value: float | str | Decimal) -> int:
    """A fraction as a ray (x 1e27), rounded half-even from its exact decimal value.

    Examples
    --------
    >>> to_ray("0.05")
    50000000000000000000000000
    """
    exact = Decimal(value) if not isinstance(value, float) else Decimal.from_float(value)
    if not exact.is_finite() or exact < 0:
        raise ValueError(f"value must be finite and >= 0 to be a ray, got {value!r}")
    return int((exact * RAY).to_integral_value())


def ray_mul(a: int, b: int) -> int:
    """``WadRayMath.rayMul``: ``(a * b + HALF_RAY) // RAY``, half up.

    Examples
    --------
    >>> ray_mul(3 * RAY // 2, 2 * RAY) == 3 * RAY
    True
    """
    a, b = _uint(a, name="a"), _uint(b, name="b")
    if b != 0 and a > (UINT256_MAX - HALF_RAY) // b:
        raise ValueError(f"ray_mul({a}, {b}) overflows uint256; the contract would revert")
    return (a * b + HALF_RAY) // RAY


def ray_div(a: int, b: int) -> int:
    """``WadRayMath.rayDiv``: ``(a * RAY + b // 2) // b``, half up (b = 0 raises).

    Examples
    --------
    >>> ray_div(RAY, 3 * RAY)
    333333333333333333333333333
    """
    a, b = _uint(a, name="a"), _uint(b, name="b")
    if b == 0:
        # The EVM's div returns 0 here; a silent 0 is never the answer wanted off-chain.
        raise ValueError("b must be > 0 for ray_div, got 0")
    if a > (UINT256_MAX - b // 2) // RAY:
        raise ValueError(f"ray_div({a}, {b}) overflows uint256; the contract would revert")
    return (a * RAY + b // 2) // b


def wad_mul(a: int, b: int) -> int:
    """``WadRayMath.wadMul``: ``(a * b + HALF_WAD) // WAD``, half up.

    Examples
    --------
    >>> wad_mul(WAD // 2, 3 * WAD) == 3 * WAD // 2
    True
    """
    a, b = _uint(a, name="a"), _uint(b, name="b")
    if b != 0 and a > (UINT256_MAX - HALF_WAD) // b:
        raise ValueError(f"wad_mul({a}, {b}) overflows uint256; the contract would revert")
    return (a * b + HALF_WAD) // WAD


def wad_div(a: int, b: int) -> int:
    """``WadRayMath.wadDiv``: ``(a * WAD + b // 2) // b``, half up (b = 0 raises).

    Examples
    --------
    >>> wad_div(2, 3)
    666666666666666667
    """
    a, b = _uint(a, name="a"), _uint(b, name="b")
    if b == 0:
        raise ValueError("b must be > 0 for wad_div, got 0")
    if a > (UINT256_MAX - b // 2) // WAD:
        raise ValueError(f"wad_div({a}, {b}) overflows uint256; the contract would revert")
    return (a * WAD + b // 2) // b


def percent_mul(value: int, percentage_bps: int) -> int:
    """``PercentageMath.percentMul``: ``(value * bps + 5000) // 10000``, half up.

    Examples
    --------
    >>> percent_mul(1000, 8250)
    825
    """
    value, percentage_bps = _uint(value, name="value"), _uint(percentage_bps, name="percentage_bps")
    if percentage_bps != 0 and value > (UINT256_MAX - HALF_PERCENTAGE_FACTOR) // percentage_bps:
        raise ValueError(f"percent_mul({value}, {percentage_bps}) overflows uint256")
    return (value * percentage_bps + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR


def calculate_linear_interest(rate_ray: int, *, seconds: int) -> int:
    """``MathUtils.calculateLinearInterest``: ``RAY + rate * seconds // SECONDS_PER_YEAR``.

    Examples
    --------
    >>> calculate_linear_interest(to_ray("0.05"), seconds=SECONDS_PER_YEAR) == to_ray("1.05")
    True
    """
    rate_ray, seconds = _uint(rate_ray, name="rate_ray"), _uint(seconds, name="seconds")
    return RAY + _checked(rate_ray * seconds, what="rate_ray * seconds") // SECONDS_PER_YEAR


def calculate_compounded_interest(rate_ray: int, *, seconds: int) -> int:
    """``MathUtils.calculateCompoundedInterest``: the three-term binomial, ray arithmetic.

    Examples
    --------
    >>> calculate_compounded_interest(to_ray("0.10"), seconds=SECONDS_PER_YEAR)
    1105162042821782412575504000
    """
    rate_ray, exp = _uint(rate_ray, name="rate_ray"), _uint(seconds, name="seconds")
    if exp == 0:
        return RAY
    exp_minus_one = exp - 1
    exp_minus_two = exp - 2 if exp > 2 else 0
    # Solidity truncates each power of the per-second rate before the multiplications.
    base_power_two = ray_mul(rate_ray, rate_ray) // (SECONDS_PER_YEAR * SECONDS_PER_YEAR)
    base_power_three = ray_mul(base_power_two, rate_ray) // SECONDS_PER_YEAR
    second_term = _checked(exp * exp_minus_one * base_power_two, what="second term") // 2
    third_term = (
        _checked(exp * exp_minus_one * exp_minus_two * base_power_three, what="third term") // 6
    )
    first_term = _checked(rate_ray * exp, what="rate_ray * seconds") // SECONDS_PER_YEAR
    return _checked(RAY + first_term + second_term + third_term, what="compounded interest")


def next_indexes_ray(
    *,
    liquidity_index_ray: int,
    variable_borrow_index_ray: int,
    liquidity_rate_ray: int,
    variable_borrow_rate_ray: int,
    seconds: int,
) -> tuple[int, int]:
    """``ReserveLogic._updateIndexes``: the stored indices after ``seconds`` at these rates.

    The rates are those in force before the update. Aave skips the borrow index when the
    reserve has no variable debt and the liquidity index when its rate is 0; a zero rate
    leaves the index unchanged here too, and the no-debt case is the caller's to skip.

    Examples
    --------
    >>> next_indexes_ray(
    ...     liquidity_index_ray=RAY, variable_borrow_index_ray=RAY,
    ...     liquidity_rate_ray=to_ray("0.05"), variable_borrow_rate_ray=0,
    ...     seconds=SECONDS_PER_YEAR,
    ... ) == (to_ray("1.05"), RAY)
    True
    """
    liquidity_index_ray = _uint(liquidity_index_ray, name="liquidity_index_ray")
    variable_borrow_index_ray = _uint(variable_borrow_index_ray, name="variable_borrow_index_ray")
    liquidity = ray_mul(
        calculate_linear_interest(liquidity_rate_ray, seconds=seconds), liquidity_index_ray
    )
    borrow = ray_mul(
        calculate_compounded_interest(variable_borrow_rate_ray, seconds=seconds),
        variable_borrow_index_ray,
    )
    return liquidity, borrow


def health_factor_wad(
    *,
    collateral_base: Sequence[int],
    liquidation_thresholds_bps: Sequence[int],
    debt_base: Sequence[int],
) -> int:
    """``GenericLogic.calculateUserAccountData``'s health factor, in wad (1e18 = 1.0).

    Parameters
    ----------
    collateral_base : sequence of int
        Each collateral balance in the oracle's base currency units (Aave:
        ``balance * price // 10**decimals``, e.g. USD with 8 decimals).
    liquidation_thresholds_bps : sequence of int
        Each collateral's threshold in basis points, in [0, 10000]; 0 = not collateral.
    debt_base : sequence of int
        Each debt balance in base currency units.

    Returns
    -------
    int
        ``percentMul(total collateral, average threshold).wadDiv(total debt)``, where the
        average threshold is the value-weighted mean truncated to whole bps;
        ``2**256 - 1`` without debt, as the contract returns.

    Examples
    --------
    >>> health_factor_wad(
    ...     collateral_base=[2_000_000_000_000], liquidation_thresholds_bps=[8250],
    ...     debt_base=[1_200_000_000_000],
    ... )
    1375000000000000000
    """
    if len(collateral_base) != len(liquidation_thresholds_bps):
        raise ValueError(
            f"liquidation_thresholds_bps has {len(liquidation_thresholds_bps)} entries but "
            f"collateral_base has {len(collateral_base)}; give one per collateral asset"
        )
    total_collateral = 0
    weighted_threshold = 0
    for i, (value, bps) in enumerate(zip(collateral_base, liquidation_thresholds_bps, strict=True)):
        value = _uint(value, name=f"collateral_base[{i}]")
        bps = _uint(bps, name=f"liquidation_thresholds_bps[{i}]")
        if bps > MAX_THRESHOLD_BPS:
            raise ValueError(
                f"liquidation_thresholds_bps[{i}] must be in [0, {MAX_THRESHOLD_BPS}], got {bps}"
            )
        if bps != 0:  # Aave counts a reserve as collateral only with a non-zero threshold.
            total_collateral += value
            weighted_threshold += value * bps
    total_debt = sum(_uint(v, name=f"debt_base[{i}]") for i, v in enumerate(debt_base))
    if total_debt == 0:
        return UINT256_MAX
    average_threshold = weighted_threshold // total_collateral if total_collateral else 0
    return wad_div(percent_mul(total_collateral, average_threshold), total_debt)


def health_factor_frame(
    ts_ms: Sequence[int],
    collateral_prices: Sequence[float],
    *,
    collateral_amount: float,
    debt_amount: float,
    liquidation_threshold_bps: float,
    debt_index: Sequence[float] | None = None,
) -> pl.DataFrame:
    """A one-collateral, one-debt position monitored over time, as a frame.

    The debt accrues with ``debt_index`` (Aave's variable borrow index, or any index; the
    debt at a bar is ``debt_amount * index / index[0]``), priced at 1 in the base currency.
    Columns: ``ts``, ``collateral_price``, ``debt``, ``health_factor`` and
    ``liquidation_price`` (the collateral price at which the health factor is 1).

    Examples
    --------
    >>> frame = health_factor_frame([0, 1], [2000.0, 1000.0], collateral_amount=10.0,
    ...     debt_amount=8_000.0, liquidation_threshold_bps=8_000)
    >>> frame["health_factor"].to_list(), frame["liquidation_price"].to_list()
    ([2.0, 1.0], [1000.0, 1000.0])
    """
    prices = np.asarray(collateral_prices, dtype=np.float64)
    n = prices.shape[0]
    if len(ts_ms) != n:
        raise ValueError(f"ts_ms has {len(ts_ms)} values, collateral_prices {n}")
    growth = np.ones(n)
    if debt_index is not None:
        index = np.asarray(debt_index, dtype=np.float64)
        if index.shape[0] != n or not np.all(index > 0):
            raise ValueError(
                f"debt_index must hold {n} positive values, got {index.shape[0]} "
                f"(min {np.nanmin(index) if index.size else 'n/a'})"
            )
        growth = index / index[0]
    position = LendingPosition.single(
        collateral_amount=collateral_amount,
        collateral_price=float(prices[0]),
        liquidation_threshold_bps=liquidation_threshold_bps,
        debt_amount=debt_amount,
    )
    hf = health_factor_series(position, collateral_prices=prices, debt_prices=growth)
    debt = debt_amount * growth
    threshold = liquidation_threshold_bps / 10_000
    return pl.DataFrame(
        {
            "ts": np.asarray(ts_ms, dtype=np.int64),
            "collateral_price": prices,
            "debt": debt,
            "health_factor": hf,
            "liquidation_price": debt / (collateral_amount * threshold),
        }
    )
