"""kernels.labels against pandas and brute-force loops, Hypothesis properties, stability.

Fixtures are seeded random OHLC walks (tests/kernels/ohlcv_fixtures.py) and small integer
paths drawn by Hypothesis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ohlcv_fixtures import random_ohlcv

from kernels.labels import ewm_std, forward_returns, meta_labels, triple_barrier

PT, SL, VERT = 1.0, -1.0, 0.0


def brute_barrier(high, low, close, i, target, side, pt, sl, holding):
    """AFML ch. 3 written out on barrier prices: (end, barrier, return) of one event."""
    c = close[i]
    if np.isnan(c) or not target > 0 or side not in (1.0, -1.0):
        return -1, np.nan, np.nan
    if side > 0:
        take, stop = c * (1 + pt * target), c * (1 - sl * target)
    else:
        take, stop = c * (1 - pt * target), c * (1 + sl * target)
    for j in range(i + 1, min(i + holding, len(close) - 1) + 1):
        if np.isnan(high[j]) or np.isnan(low[j]):
            return -1, np.nan, np.nan
        hit_stop = low[j] <= stop if side > 0 else high[j] >= stop
        hit_take = high[j] >= take if side > 0 else low[j] <= take
        if hit_stop:  # stop first when both are touched inside one bar
            exit_ = min(max(stop, low[j]), high[j])
            return j, SL, side * (exit_ / c - 1)
        if hit_take:
            exit_ = min(max(take, low[j]), high[j])
            return j, PT, side * (exit_ / c - 1)
    v = i + holding
    if v >= len(close) or np.isnan(close[v]):
        return -1, np.nan, np.nan
    return v, VERT, side * (close[v] / c - 1)


def brute_labels(high, low, close, events, target, side, pt, sl, holding, *, meta, sign):
    rows = [
        brute_barrier(high, low, close, int(i), t, s, pt, sl, holding)
        for i, t, s in zip(events, target, side, strict=True)
    ]
    end = np.array([r[0] for r in rows], dtype=np.int64)
    barrier = np.array([r[1] for r in rows])
    ret = np.array([r[2] for r in rows])
    if meta:
        label = np.where(np.isnan(barrier), np.nan, (barrier == PT) | ((barrier == 0) & (ret > 0)))
    else:
        label = np.where(barrier == VERT, np.sign(ret) if sign else 0.0, barrier)
    return label.astype(float), end, ret, barrier


def volatility(close: np.ndarray, span: int = 20) -> np.ndarray:
    return pd.Series(close).pct_change().ewm(span=span, min_periods=span).std().to_numpy().copy()


def assert_outputs_equal(actual, expected, *, rtol=0.0, atol=1e-12) -> None:
    label, end, ret, barrier = actual
    e_label, e_end, e_ret, e_barrier = expected
    np.testing.assert_array_equal(label, e_label)
    np.testing.assert_array_equal(end, e_end)
    np.testing.assert_array_equal(barrier, e_barrier)
    np.testing.assert_allclose(ret, e_ret, rtol=rtol, atol=atol)


# --- references --------------------------------------------------------------------------


@pytest.mark.parametrize("log", [True, False])
@pytest.mark.parametrize("horizon", [1, 4, 24, 500])
def test_forward_returns_match_pandas(horizon: int, log: bool) -> None:
    close = random_ohlcv(300, seed=horizon)[3]
    c = pd.Series(close)
    expected = (np.log(c).shift(-horizon) - np.log(c)) if log else c.shift(-horizon) / c - 1
    actual = forward_returns(close, horizon, log)
    assert np.isnan(actual[-horizon:]).all() and not np.isnan(actual[:-horizon]).any()
    np.testing.assert_allclose(actual, expected.to_numpy(), rtol=0, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("min_periods", [0, 1, 20, 100])
@pytest.mark.parametrize("span", [2, 5, 20, 100])
def test_ewm_std_matches_pandas_including_nans(span: int, min_periods: int) -> None:
    returns = pd.Series(random_ohlcv(1000, seed=span)[3]).pct_change().to_numpy().copy()
    returns[[200, 201, 202, 650]] = np.nan  # interior gaps: pandas decays the weights
    expected = pd.Series(returns).ewm(span=span, min_periods=min_periods).std().to_numpy()
    actual = ewm_std(returns, span, min_periods)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("sign", [True, False])
@pytest.mark.parametrize(
    ("pt", "sl", "holding"), [(2.0, 1.0, 24), (1.0, 1.0, 5), (0.5, 3, 60), (4.0, 6.0, 3)]
)
def test_triple_barrier_matches_brute_force(pt: float, sl: float, holding: int, sign: bool) -> None:
    _, high, low, close, _ = random_ohlcv(800, seed=holding, flat_every=7)
    target = volatility(close)
    target[300] = 0.0  # a flat history gives no scale: undefined
    events = np.arange(close.size, dtype=np.int64)
    actual = triple_barrier(high, low, close, events, target, pt, sl, holding, sign)
    expected = brute_labels(
        high, low, close, events, target, np.ones(close.size), pt, sl, holding,
        meta=False, sign=sign,
    )  # fmt: skip
    assert_outputs_equal(actual, expected)
    barriers = set(actual[3][~np.isnan(actual[3])].tolist())
    assert {PT, SL} <= barriers and (VERT in barriers) == (holding <= 5)
    if not sign:
        assert set(actual[0][actual[3] == VERT].tolist()) <= {0.0}


def test_triple_barrier_on_closes_only_is_afml() -> None:
    close = random_ohlcv(600, seed=3)[3]
    target = volatility(close)
    events = np.arange(0, close.size, 3, dtype=np.int64)
    actual = triple_barrier(close, close, close, events, target[events], 1.5, 1.5, 12, True)
    expected = brute_labels(
        close, close, close, events, target[events], np.ones(events.size), 1.5, 1.5, 12,
        meta=False, sign=True,
    )  # fmt: skip
    assert_outputs_equal(actual, expected)
    # Exits on closes only are the touch bar's close, as in AFML's getBins.
    end, ret = actual[1], actual[2]
    ok = end >= 0
    np.testing.assert_allclose(ret[ok], close[end[ok]] / close[events[ok]] - 1, atol=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_meta_labels_match_brute_force(seed: int) -> None:
    _, high, low, close, _ = random_ohlcv(700, seed=seed)
    rng = np.random.default_rng(seed)
    events = np.sort(rng.choice(close.size, 300, replace=False)).astype(np.int64)
    side = rng.choice([-1.0, 0.0, 1.0], events.size)
    target = volatility(close)[events]
    actual = meta_labels(high, low, close, events, target, side, 2.0, 1.0, 24)
    expected = brute_labels(
        high, low, close, events, target, side, 2.0, 1.0, 24, meta=True, sign=True
    )
    assert_outputs_equal(actual, expected)
    label, _, ret, _ = actual
    assert np.isnan(label[side == 0]).all()
    ok = ~np.isnan(label)
    assert set(label[ok].tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(label[ok] == 1.0, ret[ok] > 0)


# --- properties ----------------------------------------------------------------------------

integer_paths = st.integers(min_value=2, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(1000, 1100), min_size=n, max_size=n),
        st.lists(st.integers(0, 12), min_size=n, max_size=n),
        st.lists(st.integers(0, 12), min_size=n, max_size=n),
    )
)


def to_bars(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    close, up, down = (np.array(x, dtype=np.float64) for x in path)
    return close + up, close - down, close


@settings(max_examples=200, deadline=None)
@given(
    path=integer_paths,
    target=st.floats(0.001, 0.05),
    pt=st.floats(0.2, 4.0),
    sl=st.floats(0.2, 4.0),
    holding=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
)
def test_label_window_and_label_causality(path, target, pt, sl, holding, seed) -> None:
    high, low, close = to_bars(path)
    n = close.size
    events = np.arange(n, dtype=np.int64)
    targets = np.full(n, target)
    label, end, ret, barrier = triple_barrier(
        high, low, close, events, targets, pt, sl, holding, True
    )
    ok = end >= 0
    assert (end[ok] > events[ok]).all() and (end[ok] <= events[ok] + holding).all()
    assert np.isnan(label[~ok]).all() and np.isnan(ret[~ok]).all()
    rng = np.random.default_rng(seed)
    for i in np.flatnonzero(ok):
        # Rewrite every bar after the label's end: the label must not move.
        h2, l2, c2 = high.copy(), low.copy(), close.copy()
        tail = slice(end[i] + 1, n)
        c2[tail] = rng.uniform(900, 1200, n - end[i] - 1)
        h2[tail], l2[tail] = c2[tail] + 50, c2[tail] - 50
        again = triple_barrier(h2, l2, c2, events[i : i + 1], targets[:1], pt, sl, holding, True)
        assert (again[0][0], again[1][0], again[2][0], again[3][0]) == (
            label[i], end[i], ret[i], barrier[i],
        )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    target=st.floats(0.001, 0.2),
    pt=st.floats(0.1, 5.0),
    sl=st.floats(0.1, 4.0),
    beyond=st.floats(0.0, 0.5),
    side=st.sampled_from([-1.0, 1.0]),
)
def test_bar_touching_both_barriers_is_a_stop(target, pt, sl, beyond, side) -> None:
    c = 100.0
    span = max(pt, sl) * target * c * (1 + beyond)
    high = np.array([c, c + span + 1e-9])
    low = np.array([c, c - span - 1e-9])
    close = np.array([c, c])
    events = np.array([0], dtype=np.int64)
    args = (high, low, close, events, np.array([target]))
    label, end, ret, barrier = meta_labels(*args, np.array([side]), pt, sl, 5)
    assert (label[0], end[0], barrier[0]) == (0.0, 1, SL)
    assert ret[0] == pytest.approx(-sl * target, rel=1e-12)
    if side > 0:
        assert triple_barrier(*args, pt, sl, 5, True)[0][0] == -1.0


@settings(max_examples=200, deadline=None)
@given(
    path=integer_paths,
    target=st.floats(0.001, 0.05),
    pt=st.floats(0.2, 4.0),
    sl=st.floats(0.2, 4.0),
    holding=st.integers(1, 30),
)
def test_short_equals_long_on_the_mirrored_path(path, target, pt, sl, holding) -> None:
    high, low, close = to_bars(path)
    for i in range(close.size):
        c = close[i]
        event, t = np.array([i], dtype=np.int64), np.array([target])
        short = meta_labels(high, low, close, event, t, np.array([-1.0]), pt, sl, holding)
        # Reflect the path about the entry price: highs become lows.
        mirrored = (2 * c - low, 2 * c - high, 2 * c - close)
        long = meta_labels(*mirrored, event, t, np.array([1.0]), pt, sl, holding)
        for a, b in zip(short, long, strict=True):
            np.testing.assert_array_equal(a, b)


# --- stability and missing values ---------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-8, 1e8])
def test_labels_do_not_depend_on_the_price_scale(scale: float) -> None:
    reference = random_ohlcv(800, seed=11)
    scaled = random_ohlcv(800, seed=11, scale=scale)
    events = np.arange(800, dtype=np.int64)
    side = np.where(np.arange(800) % 2 == 0, 1.0, -1.0)
    outputs = []
    for _, high, low, close, _ in (reference, scaled):
        target = volatility(close)
        outputs.append(meta_labels(high, low, close, events, target, side, 2.0, 1.0, 24))
        fwd = forward_returns(close, 24, True)
        outputs.append((fwd,))
    np.testing.assert_allclose(outputs[3][0], outputs[1][0], atol=1e-12, equal_nan=True)
    assert_outputs_equal(outputs[2], outputs[0])
    _, high, low, close, _ = scaled
    expected = brute_labels(
        high, low, close, events, volatility(close), side, 2.0, 1.0, 24, meta=True, sign=True
    )
    assert_outputs_equal(outputs[2], expected)


def test_nan_policy() -> None:
    c = 100.0
    close = np.full(8, c)
    high, low = close + 0.5, close - 0.5
    events = np.array([0, 1, 6], dtype=np.int64)
    target = np.array([0.01, 0.01, 0.01])  # barriers at +-2 (pt=2) and -1 (sl=1)
    high[3] = c + 3.0  # event 0 and 1 hit profit-taking at bar 3
    low[5] = np.nan  # after their touch: no effect
    label, end, _, _ = triple_barrier(high, low, close, events, target, 2.0, 1.0, 4, True)
    assert label.tolist()[:2] == [1.0, 1.0] and end.tolist()[:2] == [3, 3]
    # Event 6: vertical barrier at bar 10 lies beyond the data, no touch: undefined.
    assert np.isnan(label[2]) and end[2] == -1
    # A NaN bar before any touch hides a possible touch: undefined.
    high[2] = np.nan
    label, end, ret, barrier = triple_barrier(high, low, close, events, target, 2.0, 1.0, 4, True)
    assert np.isnan(label[:2]).all() and (end[:2] == -1).all() and np.isnan(ret[:2]).all()
    assert np.isnan(barrier[:2]).all()
    # Missing, zero or negative target, and NaN entry close: undefined.
    close2 = close.copy()
    close2[1] = np.nan
    bad = np.array([np.nan, 0.01, -0.01])
    label = triple_barrier(close2, close2, close2, np.array([0, 1, 2]), bad, 2.0, 1.0, 2, True)[0]
    assert np.isnan(label).all()
    # math.inf disables a barrier: only the vertical one is left.
    label, end, _, barrier = triple_barrier(
        close + 5, close - 5, close, events[:1], target[:1], np.inf, np.inf, 3, False
    )
    assert (label[0], end[0], barrier[0]) == (0.0, 3, VERT)


def test_bad_arguments_raise() -> None:
    close = np.full(5, 100.0)
    events = np.array([5], dtype=np.int64)
    with pytest.raises(ValueError, match="event index"):
        triple_barrier(close, close, close, events, np.ones(1), 1.0, 1.0, 2, True)
    with pytest.raises(ValueError, match="max_holding_bars"):
        triple_barrier(close, close, close, events - 1, np.ones(1), 1.0, 1.0, 0, True)
    with pytest.raises(ValueError, match="horizon_bars"):
        forward_returns(close, 0, True)
    with pytest.raises(ValueError, match="span_bars"):
        ewm_std(close, 0, 0)
