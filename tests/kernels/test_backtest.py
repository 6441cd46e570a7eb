"""kernels.backtest (accounting, sizing, timing, fees) and kernels.stats.

The vectorbt reference comparison lives in tests/research_lib/test_backtest_vs_vectorbt.py.
Fixtures are small hand-made or seeded random paths built in this file.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kernels.backtest import FILL_NEXT_CLOSE, FILL_NEXT_OPEN, target_position_backtest
from kernels.stats import drawdown, max_drawdown, sharpe_ratio

CASH = 10_000.0


def run(
    open_: np.ndarray,
    close: np.ndarray,
    target: np.ndarray,
    *,
    fee_bps: float = 10.0,
    mode: int = FILL_NEXT_OPEN,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float]:
    return target_position_backtest(open_, close, target, fee_bps, mode, CASH)


@st.composite
def market(draw: st.DrawFn, *, targets: str = "any") -> dict:
    """A random OHLC path (moves within +-15% a bar) and a target path."""
    n = draw(st.integers(2, 120))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.uniform(-0.15, 0.15, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.uniform(-0.02, 0.02, n))
    if targets == "any":
        levels = draw(st.sampled_from([(0.0, 1.0), (-1.0, 1.0), (-1.0, -0.5, 0.0, 0.3, 1.0)]))
        target = rng.choice(np.array(levels), n)
        if draw(st.booleans()):
            target = np.round(rng.uniform(-1.0, 1.0, n), 3)
    else:
        target = np.zeros(n)
    return {
        "open": open_,
        "close": close,
        "target": target,
        "fee_bps": draw(st.sampled_from([0.0, 1.0, 10.0, 50.0])),
        "mode": draw(st.sampled_from([FILL_NEXT_OPEN, FILL_NEXT_CLOSE])),
    }


def fill_prices(m: dict) -> np.ndarray:
    return m["open"] if m["mode"] == FILL_NEXT_OPEN else m["close"]


# --- hand-checked examples -------------------------------------------------------------------


def test_all_in_long_by_hand() -> None:
    open_ = np.array([100.0, 100.0, 120.0, 90.0])
    close = np.array([100.0, 110.0, 100.0, 95.0])
    target = np.array([1.0, 0.0, 0.0, 0.0])  # buy at bar 1, sell at bar 2
    equity, units, cash, n_fills, fees = run(open_, close, target, fee_bps=100.0)
    f = 0.01
    bought = CASH / (100.0 * (1 + f))  # vectorbt's all-in size: cash / (price * (1 + fee))
    assert units[0] == 0.0 and units[1] == pytest.approx(bought, rel=1e-15)
    assert cash[1] == pytest.approx(0.0, abs=1e-9)
    sold_for = bought * 120.0 * (1 - f)  # exit at bar 2's open
    assert units[2] == 0.0 and cash[2] == pytest.approx(sold_for, rel=1e-14)
    assert equity[1] == pytest.approx(bought * 110.0, rel=1e-14)
    assert equity[3] == pytest.approx(sold_for, rel=1e-14)
    assert n_fills == 2
    assert fees == pytest.approx(CASH - bought * 100.0 + bought * 120.0 * f, rel=1e-12)


def test_next_close_fill_and_short() -> None:
    open_ = np.array([10.0, 11.0, 12.0])
    close = np.array([10.0, 8.0, 6.0])
    target = np.array([-1.0, -1.0, -1.0])
    equity, units, cash, n_fills, _ = run(open_, close, target, fee_bps=0.0, mode=FILL_NEXT_CLOSE)
    assert units[1] == pytest.approx(-CASH / 8.0)  # short at bar 1's close
    assert cash[1] == pytest.approx(2 * CASH)
    assert equity[2] == pytest.approx(CASH + CASH / 8.0 * 2.0)
    assert n_fills == 1


def test_bankrupt_account_is_closed_out() -> None:
    open_ = np.array([100.0, 100.0, 300.0, 300.0, 300.0])
    close = np.array([100.0, 100.0, 300.0, 300.0, 300.0])
    target = np.array([-1.0, -1.0, 1.0, 1.0, 1.0])
    equity, units, _, n_fills, _ = run(open_, close, target, fee_bps=0.0)
    assert equity[2] < 0.0
    # The target changes to +1 at bar 2; with negative equity the short is closed instead.
    assert units[3] == 0.0 and units[4] == 0.0
    assert n_fills == 2


def test_bad_lengths_and_fill_mode_raise() -> None:
    x = np.ones(3)
    with pytest.raises(ValueError, match="lengths"):
        target_position_backtest(x, x, np.ones(2), 0.0, FILL_NEXT_OPEN, CASH)
    with pytest.raises(ValueError, match="fill_mode"):
        target_position_backtest(x, x, x, 0.0, 7, CASH)


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(m=market())
def test_cash_ledger_and_equity_identity(m: dict) -> None:
    equity, units, cash, n_fills, fees = run(
        m["open"], m["close"], m["target"], fee_bps=m["fee_bps"], mode=m["mode"]
    )
    # Marked at the close: cash + units * close == equity at every bar.
    np.testing.assert_allclose(cash + units * m["close"], equity, rtol=1e-12, atol=1e-9)
    # Independent ledger: every change in cash is -traded * price - fee at that bar's fill.
    price = fill_prices(m)
    traded = np.diff(np.concatenate(([0.0], units)))
    bar_fees = m["fee_bps"] * 1e-4 * np.abs(traded) * price
    expected_cash = CASH - np.cumsum(traded * price + bar_fees)
    np.testing.assert_allclose(cash, expected_cash, rtol=1e-9, atol=1e-6)
    assert n_fills == np.count_nonzero(traded)
    assert fees == pytest.approx(bar_fees.sum(), rel=1e-9, abs=1e-9)
    assert units[0] == 0.0 and cash[0] == CASH


@settings(max_examples=200, deadline=None)
@given(m=market())
def test_fill_sizes_position_to_target_fraction(m: dict) -> None:
    _, units, cash, _, _ = run(
        m["open"], m["close"], m["target"], fee_bps=m["fee_bps"], mode=m["mode"]
    )
    price = fill_prices(m)
    for t in range(1, len(units)):
        post_fill_equity = cash[t] + units[t] * price[t]  # after the fee, at the fill price
        if post_fill_equity <= 0:
            break
        held = m["target"][t - 2] if t >= 2 else 0.0  # the account starts flat
        if m["target"][t - 1] != held:
            # After the fill the notional is exactly the target fraction of post-fee equity.
            weight = units[t] * price[t] / post_fill_equity
            assert weight == pytest.approx(m["target"][t - 1], abs=1e-9)
        else:
            assert units[t] == units[t - 1]  # unchanged target: hold, no rebalancing


@settings(max_examples=100, deadline=None)
@given(m=market(targets="zero"))
def test_zero_target_keeps_flat_equity(m: dict) -> None:
    equity, units, cash, n_fills, fees = run(
        m["open"], m["close"], m["target"], fee_bps=m["fee_bps"], mode=m["mode"]
    )
    assert (equity == CASH).all() and (cash == CASH).all() and (units == 0.0).all()
    assert n_fills == 0 and fees == 0.0


@settings(max_examples=200, deadline=None)
@given(m=market(), extra_bps=st.floats(0.5, 100.0))
def test_higher_fee_never_gives_higher_final_equity(m: dict, extra_bps: float) -> None:
    low = run(m["open"], m["close"], m["target"], fee_bps=m["fee_bps"], mode=m["mode"])
    high = run(m["open"], m["close"], m["target"], fee_bps=m["fee_bps"] + extra_bps, mode=m["mode"])
    # Each fill multiplies equity by a factor that decreases with the fee; that ordering
    # needs equity to stay positive (a blown-up short makes the product's sign flip).
    assume(low[0].min() > 0 and high[0].min() > 0)
    assert high[0][-1] <= low[0][-1] * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(m=market(), data=st.data())
def test_target_at_t_cannot_move_anything_before_t_plus_1(m: dict, data: st.DataObject) -> None:
    n = len(m["target"])
    t = data.draw(st.integers(0, n - 1))
    changed = m["target"].copy()
    changed[t:] = data.draw(st.sampled_from([-1.0, 0.0, 0.5, 1.0]))
    base = run(m["open"], m["close"], m["target"], fee_bps=m["fee_bps"], mode=m["mode"])
    alt = run(m["open"], m["close"], changed, fee_bps=m["fee_bps"], mode=m["mode"])
    for a, b in zip(base[:3], alt[:3], strict=True):  # equity, units, cash
        np.testing.assert_array_equal(a[: t + 1], b[: t + 1])


def test_target_change_fills_exactly_one_bar_later() -> None:
    n = 10
    close = np.linspace(100.0, 109.0, n)
    open_ = close - 0.5
    for t in range(n - 1):
        target = np.zeros(n)
        target[t:] = 1.0
        for mode in (FILL_NEXT_OPEN, FILL_NEXT_CLOSE):
            _, units, _, _, _ = run(open_, close, target, mode=mode)
            assert (units[: t + 1] == 0.0).all()
            assert (units[t + 1 :] > 0.0).all()


# --- stats -----------------------------------------------------------------------------------


def test_sharpe_matches_numpy_formula() -> None:
    r = np.random.default_rng(0).normal(0.001, 0.01, 500)
    r[[3, 77]] = np.nan
    expected = np.nanmean(r) / np.nanstd(r, ddof=1) * np.sqrt(8760.0)
    assert sharpe_ratio(r, 8760.0) == pytest.approx(expected, rel=1e-12)
    assert np.isnan(sharpe_ratio(np.array([0.01]), 252.0))
    assert np.isnan(sharpe_ratio(np.zeros(10), 252.0))


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(1.0, 1e6), min_size=1, max_size=200),
)
def test_drawdown_matches_brute_force(values: list[float]) -> None:
    equity = np.array(values)
    peak = np.maximum.accumulate(equity)
    expected = equity / peak - 1.0
    np.testing.assert_allclose(drawdown(equity), expected, rtol=1e-15, atol=0)
    assert max_drawdown(equity) == pytest.approx(expected.min(), rel=1e-15, abs=0)
    assert max_drawdown(equity) <= 0.0


def test_max_drawdown_example_and_nan() -> None:
    equity = np.array([100.0, 120.0, np.nan, 90.0, 130.0, 117.0])
    assert max_drawdown(equity) == pytest.approx(-0.25)
    assert np.isnan(drawdown(equity)[2])
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0
    assert np.isnan(max_drawdown(np.array([np.nan])))
