"""kernels.backtest (accounting, sizing, timing, costs, stops, trades) and kernels.stats.

The vectorbt reference comparison lives in tests/research_lib/test_backtest_vs_vectorbt.py.
Fixtures are small hand-made or seeded random paths built in this file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kernels import backtest as bn
from kernels.backtest import (
    FILL_NEXT_CLOSE,
    FILL_NEXT_OPEN,
    FILL_THIS_CLOSE,
    target_position_backtest,
)
from kernels.stats import (
    calmar_ratio,
    compound_annual_growth_rate,
    drawdown,
    exposure,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    turnover,
    win_rate,
)

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
        "mode": draw(st.sampled_from([FILL_NEXT_OPEN, FILL_NEXT_CLOSE, FILL_THIS_CLOSE])),
    }


def fill_prices(m: dict) -> np.ndarray:
    return m["open"] if m["mode"] == FILL_NEXT_OPEN else m["close"]


def acted_target(m: dict, t: int) -> float:
    """The target that bar t's fill acts on (0.0 before the first one)."""
    row = t if m["mode"] == FILL_THIS_CLOSE else t - 1
    return float(m["target"][row]) if row >= 0 else 0.0


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
    if m["mode"] != FILL_THIS_CLOSE:
        assert units[0] == 0.0 and cash[0] == CASH


@settings(max_examples=200, deadline=None)
@given(m=market())
def test_fill_sizes_position_to_target_fraction(m: dict) -> None:
    _, units, cash, _, _ = run(
        m["open"], m["close"], m["target"], fee_bps=m["fee_bps"], mode=m["mode"]
    )
    price = fill_prices(m)
    for t in range(len(units)):
        post_fill_equity = cash[t] + units[t] * price[t]  # after the fee, at the fill price
        if post_fill_equity <= 0:
            break
        if acted_target(m, t) != acted_target(m, t - 1):
            # After the fill the notional is exactly the target fraction of post-fee equity.
            weight = units[t] * price[t] / post_fill_equity
            assert weight == pytest.approx(acted_target(m, t), abs=1e-9)
        else:
            before = units[t - 1] if t > 0 else 0.0
            assert units[t] == before  # unchanged target: hold, no rebalancing


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
    # The next modes fill target[t] at bar t + 1; this_close fills it at bar t itself.
    last_unchanged = t + 1 if m["mode"] != FILL_THIS_CLOSE else t
    for a, b in zip(base[:3], alt[:3], strict=True):  # equity, units, cash
        np.testing.assert_array_equal(a[:last_unchanged], b[:last_unchanged])


@pytest.mark.parametrize(
    ("mode", "lag", "price"),
    [(FILL_NEXT_OPEN, 1, "open"), (FILL_NEXT_CLOSE, 1, "close"), (FILL_THIS_CLOSE, 0, "close")],
)
def test_each_fill_timing_fills_at_its_bar_and_price(mode: int, lag: int, price: str) -> None:
    n = 10
    close = np.linspace(100.0, 109.0, n)
    open_ = close - 0.5
    prices = {"open": open_, "close": close}[price]
    for t in range(n - lag):
        target = np.zeros(n)
        target[t:] = 1.0
        equity, units, _, n_fills, _ = run(open_, close, target, fee_bps=0.0, mode=mode)
        assert (units[: t + lag] == 0.0).all()
        assert (units[t + lag :] > 0.0).all()
        assert units[t + lag] == pytest.approx(CASH / prices[t + lag], rel=1e-15)
        assert n_fills == 1 and equity[t + lag] == pytest.approx(units[-1] * close[t + lag])
    # In the next modes the last bar's target is never filled.
    target = np.zeros(n)
    target[-1] = 1.0
    assert run(open_, close, target, mode=mode)[3] == (1 if lag == 0 else 0)


# --- the portfolio kernel: stops, costs, trades, several assets -------------------------------


def simulate(
    ohlc: tuple[np.ndarray, ...],
    target: np.ndarray,
    *,
    mode: int = FILL_THIS_CLOSE,
    funding: np.ndarray | None = None,
    volatility: np.ndarray | None = None,
    volume: np.ndarray | None = None,
    **options: float,
) -> dict[str, np.ndarray]:
    """Run ``portfolio_backtest`` on 1-d (one asset) or 2-d inputs; outputs as a dict."""
    o, h, lo, c = (np.ascontiguousarray(np.atleast_2d(x.T).T, dtype=np.float64) for x in ohlc)
    n, m = c.shape
    shaped = [
        np.zeros((n, m)) if x is None else np.ascontiguousarray(np.atleast_2d(x.T).T)
        for x in (funding, volatility, volume)
    ]
    w = np.ascontiguousarray(np.atleast_2d(target.T).T, dtype=np.float64)
    params = bn.backtest_params(initial_cash=CASH, fill_mode=mode, **options)
    equity, cash, units = np.empty(n), np.empty(n), np.empty((n, m))
    costs = np.empty((n, m, bn.N_COSTS))
    fills = np.empty((bn.max_fills(n, m), bn.N_FILL_FIELDS))
    k = bn.portfolio_backtest(
        (o, h, lo, c), tuple(shaped), w, params, (equity, cash, units, costs, fills)
    )
    trades = np.empty((k + m, bn.N_TRADE_FIELDS))
    n_trades = bn.round_trip_trades(fills[:k], k, costs, np.ascontiguousarray(c[-1]), trades)
    return {
        "equity": equity,
        "cash": cash,
        "units": units,
        "costs": costs,
        "fills": fills[:k],
        "trades": trades[:n_trades],
    }


def flat_bars(closes: list[float]) -> tuple[np.ndarray, ...]:
    c = np.array(closes)
    return c, c, c, c


def test_stop_loss_intrabar_and_flat_until_target_changes() -> None:
    o = np.array([100.0, 100.0, 99.0, 99.0, 99.0, 99.0])
    h = np.array([100.0, 101.0, 99.5, 99.5, 99.5, 99.5])
    lo = np.array([100.0, 97.0, 98.5, 98.5, 98.5, 98.5])
    c = np.array([100.0, 99.0, 99.0, 99.0, 99.0, 99.0])
    target = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    r = simulate((o, h, lo, c), target, stop_loss=0.02)
    units = r["units"][:, 0]
    # Bought at close 0 (100); bar 1's low 97 crosses the 98 stop: sold at 98.
    assert units[1] == 0.0 and r["cash"][1] == pytest.approx(CASH * 0.98)
    # The target stays 1: still flat at bars 2-3; it changes 0 -> 1 at bar 4: bought again.
    assert (units[2:4] == 0.0).all() and units[4] == pytest.approx(CASH * 0.98 / 99.0)
    reasons = r["fills"][:, bn.F_REASON].tolist()
    assert reasons == [bn.REASON_SIGNAL, bn.REASON_STOP_LOSS, bn.REASON_SIGNAL]


def test_gap_through_stop_fills_at_open_and_stop_beats_take_profit() -> None:
    # Bar 1 opens at 95, below the 98 stop: filled at the open, not at 98.
    bars = (
        np.array([100.0, 95.0, 95.0]),
        np.array([100.0, 96.0, 96.0]),
        np.array([100.0, 94.0, 94.0]),
        np.array([100.0, 95.0, 95.0]),
    )
    r = simulate(bars, np.ones(3), stop_loss=0.02)
    assert r["fills"][1, bn.F_PRICE] == 95.0 and r["equity"][2] == pytest.approx(CASH * 0.95)
    # Bar 1 touches both the 98 stop and the 105 take-profit: the stop wins.
    both = (
        np.array([100.0, 100.0, 100.0]),
        np.array([100.0, 106.0, 100.0]),
        np.array([100.0, 97.0, 100.0]),
        np.array([100.0, 100.0, 100.0]),
    )
    r = simulate(both, np.ones(3), stop_loss=0.02, take_profit=0.05)
    assert r["fills"][1, bn.F_REASON] == bn.REASON_STOP_LOSS
    assert r["fills"][1, bn.F_PRICE] == pytest.approx(98.0)
    r = simulate(both, np.ones(3), take_profit=0.05)
    assert r["fills"][1, bn.F_REASON] == bn.REASON_TAKE_PROFIT
    assert r["fills"][1, bn.F_PRICE] == pytest.approx(105.0)


def test_short_stops_are_mirrored() -> None:
    bars = (
        np.array([100.0, 100.0, 100.0]),
        np.array([100.0, 103.0, 100.0]),
        np.array([100.0, 99.0, 100.0]),
        np.array([100.0, 100.0, 100.0]),
    )
    r = simulate(bars, -np.ones(3), stop_loss=0.02)
    assert r["fills"][1, bn.F_PRICE] == pytest.approx(102.0)  # short stop above the entry
    assert r["equity"][-1] == pytest.approx(CASH - CASH / 100.0 * 2.0)
    r = simulate(bars, -np.ones(3), take_profit=0.01)
    assert r["fills"][1, bn.F_PRICE] == pytest.approx(99.0)
    assert r["fills"][1, bn.F_REASON] == bn.REASON_TAKE_PROFIT


def test_trailing_stop_uses_the_extreme_up_to_the_previous_bar() -> None:
    o = np.array([100.0, 100.0, 109.0, 108.0])
    h = np.array([100.0, 110.0, 109.0, 108.0])
    lo = np.array([100.0, 100.0, 104.0, 100.0])
    c = np.array([100.0, 109.0, 108.0, 107.0])
    r = simulate((o, h, lo, c), np.ones(4), trailing_stop=0.05)
    # Bar 1: level 95 (extreme = entry 100); the extreme becomes 110 after the bar.
    # Bar 2: level 104.5; the low 104 crosses it.
    assert r["fills"].shape[0] == 2
    assert r["fills"][1, bn.F_BAR] == 2 and r["fills"][1, bn.F_PRICE] == pytest.approx(104.5)
    assert r["fills"][1, bn.F_REASON] == bn.REASON_TRAILING_STOP


def test_next_open_checks_stops_in_the_entry_bar() -> None:
    o = np.array([100.0, 100.0, 100.0])
    h = np.array([100.0, 100.0, 100.0])
    lo = np.array([100.0, 97.0, 100.0])
    c = np.array([100.0, 100.0, 100.0])
    r = simulate((o, h, lo, c), np.ones(3), mode=FILL_NEXT_OPEN, stop_loss=0.02)
    assert r["fills"][:, bn.F_BAR].tolist() == [1, 1]  # in at the open, out at 98 in bar 1
    assert r["units"][-1, 0] == 0.0


def test_funding_long_pays_short_receives_at_the_open() -> None:
    o, _, _, c = flat_bars([100.0, 100.0, 100.0, 100.0])
    o = np.array([100.0, 100.0, 120.0, 100.0])
    funding = np.array([0.0, 0.0, 0.001, 0.0])
    for side in (1.0, -1.0):
        r = simulate((o, o, o, c), side * np.ones(4), funding=funding)
        units = CASH / 100.0 * side
        paid = 0.001 * units * 120.0  # on the units held at bar 2's open, at its open
        assert r["costs"][2, 0, bn.C_FUNDING] == pytest.approx(paid)
        assert r["equity"][-1] == pytest.approx(CASH - paid)
        assert r["trades"][0, bn.T_FUNDING] == pytest.approx(paid)
        assert r["trades"][0, bn.T_PNL] == pytest.approx(-paid)


def test_fixed_slippage_gas_and_impact_by_hand() -> None:
    bars = flat_bars([100.0, 100.0, 100.0])
    target = np.array([1.0, 0.0, 0.0])
    r = simulate(bars, target, fee_bps=10.0, slippage_bps=20.0, gas_per_fill=5.0)
    units = (CASH - 5.0) / (100.0 * 1.002 * 1.001)  # vectorbt's all-in size with fixed_fees
    assert r["units"][0, 0] == pytest.approx(units, rel=1e-15)
    assert r["fills"][0, bn.F_PRICE] == pytest.approx(100.2)
    sold = units * 99.8 * (1 - 0.001) - 5.0
    assert r["equity"][-1] == pytest.approx(sold, rel=1e-13)
    totals = r["costs"].sum(axis=(0, 1))
    assert totals[bn.C_SLIPPAGE] == pytest.approx(2 * units * 100.0 * 0.002)
    assert totals[bn.C_GAS] == 10.0
    assert r["trades"][0, bn.T_PNL] == pytest.approx(sold - CASH, rel=1e-12)
    # Square-root impact: s = k * sigma * sqrt(order notional / bar notional volume).
    sigma, volume, k = np.full(3, 0.01), np.full(3, 1e6), 0.5
    r = simulate(bars, target, impact_coefficient=k, volatility=sigma, volume=volume)
    fill = r["fills"][0]
    notional = fill[bn.F_UNITS] * 100.0
    s = k * 0.01 * np.sqrt(notional / 1e6)
    assert fill[bn.F_PRICE] == pytest.approx(100.0 * (1 + s), rel=1e-13)
    # The converged order spends exactly the cash: post-cost weight 1.
    assert r["cash"][0] == pytest.approx(0.0, abs=1e-8)
    # NaN volatility (warm-up) skips the impact term.
    r = simulate(bars, target, impact_coefficient=k, volatility=np.full(3, np.nan), volume=volume)
    assert r["fills"][0, bn.F_PRICE] == 100.0


def test_flip_splits_the_fill_between_two_trades() -> None:
    c = np.array([100.0, 110.0, 100.0, 90.0])
    r = simulate((c, c, c, c), np.array([1.0, -1.0, -1.0, 0.0]), fee_bps=10.0)
    trades = r["trades"]
    assert trades.shape[0] == 2
    assert trades[:, bn.T_DIRECTION].tolist() == [1.0, -1.0]
    assert trades[0, bn.T_EXIT_BAR] == 1 and trades[1, bn.T_ENTRY_BAR] == 1
    assert trades[:, bn.T_FEES].sum() == pytest.approx(r["costs"][:, 0, bn.C_FEES].sum())
    assert trades[:, bn.T_PNL].sum() == pytest.approx(r["equity"][-1] - CASH, rel=1e-12)


@st.composite
def portfolio(draw: st.DrawFn) -> dict:
    """Random OHLC for 1-3 assets, target paths, costs, stops and funding."""
    n = draw(st.integers(2, 80))
    m = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 100.0 * np.exp(np.cumsum(rng.uniform(-0.08, 0.08, (n, m)), axis=0))
    prev = np.vstack([np.full((1, m), 100.0), close[:-1]])
    open_ = prev * np.exp(rng.uniform(-0.02, 0.02, (n, m)))
    high = np.maximum(open_, close) * np.exp(rng.uniform(0, 0.04, (n, m)))
    low = np.minimum(open_, close) * np.exp(-rng.uniform(0, 0.04, (n, m)))
    levels = np.array([-0.5, -0.2, 0.0, 0.0, 0.3, 0.5]) / m * 2
    target = np.round(rng.choice(levels, (n, m)), 6)
    stops = draw(
        st.sampled_from([{}, {"stop_loss": 0.03, "take_profit": 0.05}, {"trailing_stop": 0.04}])
    )
    funding = np.where(rng.random((n, m)) < 0.2, rng.normal(0, 0.001, (n, m)), 0.0)
    return {
        "ohlc": (open_, high, low, close),
        "target": target,
        "mode": draw(st.sampled_from([FILL_NEXT_OPEN, FILL_NEXT_CLOSE, FILL_THIS_CLOSE])),
        "funding": funding,
        "volatility": rng.uniform(0.005, 0.03, (n, m)),
        "volume": rng.uniform(1e4, 1e6, (n, m)),
        "costs": {
            "fee_bps": draw(st.sampled_from([0.0, 10.0])),
            "slippage_bps": draw(st.sampled_from([0.0, 5.0])),
            "impact_coefficient": draw(st.sampled_from([0.0, 1.0])),
            "gas_per_fill": draw(st.sampled_from([0.0, 2.0])),
        },
        "stops": stops,
    }


def run_portfolio(p: dict, **overrides: object) -> dict[str, np.ndarray]:
    kwargs: dict = {
        "mode": p["mode"],
        "funding": p["funding"],
        "volatility": p["volatility"],
        "volume": p["volume"],
        **p["costs"],
        **p["stops"],
    }
    kwargs.update(overrides)
    return simulate(p["ohlc"], kwargs.pop("target", p["target"]), **kwargs)


@settings(max_examples=150, deadline=None)
@given(p=portfolio())
def test_portfolio_identity_ledger_and_trades(p: dict) -> None:
    r = run_portfolio(p)
    close = p["ohlc"][3]
    # cash + Σ units * close == equity at every bar.
    np.testing.assert_allclose(
        r["cash"] + (r["units"] * close).sum(axis=1), r["equity"], rtol=1e-12, atol=1e-8
    )
    # Independent ledger: each bar's cash change is -Σ traded * executed - every cost.
    f = r["fills"]
    flows = np.zeros(len(close))
    np.add.at(flows, f[:, bn.F_BAR].astype(int), -f[:, bn.F_UNITS] * f[:, bn.F_PRICE])
    paid = r["costs"].sum(axis=1)
    flows -= paid[:, bn.C_FEES] + paid[:, bn.C_GAS] + paid[:, bn.C_FUNDING]
    np.testing.assert_allclose(r["cash"], CASH + np.cumsum(flows), rtol=1e-9, atol=1e-6)
    # Slippage is the gap between execution and reference prices.
    gap = np.abs(f[:, bn.F_UNITS] * (f[:, bn.F_PRICE] - f[:, bn.F_REFERENCE_PRICE]))
    np.testing.assert_allclose(gap.sum(), paid[:, bn.C_SLIPPAGE].sum(), rtol=1e-9, atol=1e-9)
    # Round trips account for every unit of PnL.
    total = r["trades"][:, bn.T_PNL].sum()
    assert total == pytest.approx(r["equity"][-1] - CASH, rel=1e-9, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(p=portfolio(), data=st.data())
def test_portfolio_is_causal(p: dict, data: st.DataObject) -> None:
    n = p["target"].shape[0]
    t = data.draw(st.integers(0, n - 1))
    rng = np.random.default_rng(t)
    changed = dict(p)
    changed["ohlc"] = tuple(x.copy() for x in p["ohlc"])
    for x in changed["ohlc"]:
        x[t + 1 :] *= rng.uniform(0.5, 1.5)
    changed["target"] = p["target"].copy()
    changed["target"][t + 1 :] = -changed["target"][t + 1 :] + 0.1
    for key in ("funding", "volatility", "volume"):
        changed[key] = p[key].copy()
        changed[key][t + 1 :] *= 3.0
    base, alt = run_portfolio(p), run_portfolio(changed)
    for key in ("equity", "cash", "units", "costs"):
        np.testing.assert_array_equal(base[key][: t + 1], alt[key][: t + 1])


@settings(max_examples=100, deadline=None)
@given(p=portfolio())
def test_no_signal_is_flat_and_zero_funding_changes_nothing(p: dict) -> None:
    flat = run_portfolio(p, target=np.zeros_like(p["target"]))
    assert (flat["equity"] == CASH).all() and flat["fills"].shape[0] == 0
    zero = run_portfolio(p, funding=np.zeros_like(p["funding"]))
    # Funding only where the book is flat changes nothing either.
    held = zero["units"]
    held_at_open = np.vstack([np.zeros((1, held.shape[1])), held[:-1]])
    only_flat = np.where(held_at_open == 0.0, p["funding"], 0.0)
    quiet = run_portfolio(p, funding=only_flat)
    for key in ("equity", "cash", "units"):
        np.testing.assert_array_equal(zero[key], quiet[key])


@settings(max_examples=150, deadline=None)
@given(p=portfolio(), which=st.sampled_from(["fee_bps", "slippage_bps", "gas_per_fill"]))
def test_more_costs_never_mean_more_profit(p: dict, which: str) -> None:
    # One asset: every fill maps post-cost equity monotonically (see the module docstring).
    p = dict(p)
    p["ohlc"] = tuple(np.ascontiguousarray(x[:, :1]) for x in p["ohlc"])
    p["target"] = np.ascontiguousarray(p["target"][:, :1])
    for key in ("funding", "volatility", "volume"):
        p[key] = np.ascontiguousarray(p[key][:, :1])
    if which == "slippage_bps":
        p["stops"] = {}  # slippage moves the entry price the stops are anchored to
    extra = {"fee_bps": 25.0, "slippage_bps": 15.0, "gas_per_fill": 20.0}[which]
    low = run_portfolio(p)
    high = run_portfolio(p, **{which: p["costs"][which] + extra})
    assume(low["equity"].min() > 100.0 and high["equity"].min() > 100.0)
    assert high["equity"][-1] <= low["equity"][-1] * (1 + 1e-12)


@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_prices_near_1e8_and_1e_8_scale_exactly(scale: float) -> None:
    rng = np.random.default_rng(5)
    n = 400
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high, low = np.maximum(open_, close) * 1.01, np.minimum(open_, close) * 0.99
    target = np.where(rng.random(n) < 0.5, 1.0, -0.5)
    opts = {"fee_bps": 10.0, "slippage_bps": 3.0, "stop_loss": 0.03, "take_profit": 0.05}
    base = simulate((open_, high, low, close), target, **opts)
    scaled = simulate(tuple(x * scale for x in (open_, high, low, close)), target, **opts)
    np.testing.assert_allclose(scaled["equity"], base["equity"], rtol=1e-9)
    np.testing.assert_allclose(scaled["units"] * scale, base["units"], rtol=1e-9)


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


def test_sortino_matches_numpy_formula() -> None:
    r = np.random.default_rng(1).normal(0.0005, 0.01, 500)
    r[[4, 9]] = np.nan
    finite = r[~np.isnan(r)]
    downside = np.sqrt(np.mean(np.minimum(finite, 0.0) ** 2))
    expected = finite.mean() / downside * np.sqrt(8760.0)
    assert sortino_ratio(r, 8760.0) == pytest.approx(expected, rel=1e-12)
    assert sortino_ratio(np.array([0.01, 0.02]), 252.0) == np.inf
    assert np.isnan(sortino_ratio(np.array([0.01]), 252.0))


@settings(max_examples=100, deadline=None)
@given(
    start=st.floats(1.0, 1e6),
    growth=st.floats(0.01, 100.0),
    years=st.floats(0.01, 50.0),
)
def test_cagr_and_calmar_match_closed_forms(start: float, growth: float, years: float) -> None:
    cagr = compound_annual_growth_rate(start, start * growth, years)
    assert cagr == pytest.approx(growth ** (1.0 / years) - 1.0, rel=1e-9, abs=1e-12)
    assert compound_annual_growth_rate(start, 0.0, years) == -1.0
    assert np.isnan(compound_annual_growth_rate(start, start, 0.0))
    assert calmar_ratio(cagr, -0.2) == pytest.approx(cagr / 0.2)
    assert np.isnan(calmar_ratio(cagr, 0.0))


@settings(max_examples=100, deadline=None)
@given(pnl=st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=60))
def test_trade_stats_match_pandas(pnl: list[float]) -> None:
    s = pd.Series(pnl, dtype=float)
    values = s.to_numpy()
    if len(s) == 0:
        assert np.isnan(win_rate(values)) and np.isnan(profit_factor(values))
        return
    assert win_rate(values) == pytest.approx((s > 0).mean())
    gains, losses = s[s > 0].sum(), -s[s < 0].sum()
    if losses > 0:
        assert profit_factor(values) == pytest.approx(gains / losses, rel=1e-12)
    elif gains > 0:
        assert profit_factor(values) == np.inf


def test_exposure_and_turnover_match_pandas() -> None:
    rng = np.random.default_rng(2)
    units = np.where(rng.random((300, 3)) < 0.3, rng.normal(size=(300, 3)), 0.0)
    assert exposure(units) == pytest.approx(pd.DataFrame(units).ne(0).any(axis=1).mean())
    traded = np.abs(rng.normal(size=300))
    equity = 100.0 + rng.random(300)
    expected = pd.Series(traded).sum() / pd.Series(equity).mean()
    assert turnover(traded, equity) == pytest.approx(expected, rel=1e-12)
