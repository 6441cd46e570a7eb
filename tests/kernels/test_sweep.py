"""kernels.sweep against the single-run kernels it must equal, plus its own properties.

Reference: ``talib.SMA`` targets run through ``kernels.backtest.target_position_backtest``
and ``kernels.stats`` (the metrics ``run_backtest`` reports). Fixtures are seeded random
walks built here; the real-data and vectorbt comparisons live in
tests/research_lib/test_sweep_vs_vectorbt.py.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.backtest import FILL_NEXT_CLOSE, FILL_NEXT_OPEN, target_position_backtest
from kernels.stats import max_drawdown, sharpe_ratio
from kernels.sweep import (
    FIELDS,
    FINAL_EQUITY,
    MAX_DRAWDOWN,
    N_FIELDS,
    SHARPE,
    TOTAL_RETURN,
    TRADES,
    ma_crossover_sweep,
)

CASH = 10_000.0
HOURS = 8760.0


def random_walk(n: int, *, seed: int, scale: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = scale * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([scale], close[:-1])) * np.exp(rng.normal(0.0, 0.002, n))
    return open_, close


def grid(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.array([f for f, _ in pairs], dtype=np.int64),
        np.array([s for _, s in pairs], dtype=np.int64),
    )


def sweep(open_, close, pairs, *, fee_bps=10.0, mode=FILL_NEXT_CLOSE) -> np.ndarray:
    fast, slow = grid(pairs)
    out = np.full((len(pairs), N_FIELDS), -999.0)
    return ma_crossover_sweep(open_, close, fast, slow, fee_bps, mode, CASH, HOURS, out)


def reference(open_, close, fast, slow, *, fee_bps, mode) -> np.ndarray:
    """One pair the slow way: TA-Lib SMAs, the backtest kernel, then run_backtest's metrics."""
    target = (talib.SMA(close, fast) > talib.SMA(close, slow)).astype(np.float64)
    equity, _, _, n_fills, _ = target_position_backtest(open_, close, target, fee_bps, mode, CASH)
    previous = np.concatenate(([CASH], equity[:-1]))
    returns = equity / previous - 1.0
    row = np.empty(N_FIELDS)
    row[TOTAL_RETURN] = equity[-1] / CASH - 1.0
    row[FINAL_EQUITY] = equity[-1]
    row[TRADES] = n_fills
    row[SHARPE] = sharpe_ratio(returns[1:], HOURS)
    row[MAX_DRAWDOWN] = max_drawdown(equity)
    return row


def assert_rows_match(got: np.ndarray, want: np.ndarray) -> None:
    # Everything but the Sharpe ratio is the same arithmetic: equal bit for bit. The Sharpe
    # ratio comes from one-pass sums here, two passes in kernels.stats.
    for j, name in enumerate(FIELDS):
        if j == SHARPE:
            np.testing.assert_allclose(got[j], want[j], rtol=1e-12, err_msg=name)
        else:
            assert got[j] == want[j], (name, got[j], want[j])


PAIRS = [(f, s) for f in (1, 2, 3, 5, 8, 13) for s in (2, 4, 10, 21, 50, 120) if f < s]


@pytest.mark.parametrize("mode", [FILL_NEXT_CLOSE, FILL_NEXT_OPEN])
@pytest.mark.parametrize("fee_bps", [0.0, 10.0, 75.0])
def test_matches_talib_sma_targets_through_backtest_kernel(mode: int, fee_bps: float) -> None:
    open_, close = random_walk(3000, seed=21)
    out = sweep(open_, close, PAIRS, fee_bps=fee_bps, mode=mode)
    assert out[:, TRADES].min() > 10  # every pair trades: the fills are exercised
    for k, (fast, slow) in enumerate(PAIRS):
        want = reference(open_, close, fast, slow, fee_bps=fee_bps, mode=mode)
        assert_rows_match(out[k], want)


@pytest.mark.parametrize("scale", [1e8, 1e-8])
def test_extreme_price_levels(scale: float) -> None:
    open_, close = random_walk(4000, seed=22, scale=scale)
    pairs = [(2, 7), (5, 40), (20, 300)]
    out = sweep(open_, close, pairs, mode=FILL_NEXT_OPEN)
    for k, (fast, slow) in enumerate(pairs):
        assert_rows_match(
            out[k], reference(open_, close, fast, slow, fee_bps=10.0, mode=FILL_NEXT_OPEN)
        )


def test_windows_longer_than_series_and_tiny_series() -> None:
    open_, close = random_walk(30, seed=23)
    out = sweep(open_, close, [(5, 30), (10, 31), (1, 2)])
    for k, (fast, slow) in enumerate([(5, 30), (10, 31), (1, 2)]):
        assert_rows_match(out[k], reference(open_, close, fast, slow, fee_bps=10.0, mode=1))
    assert out[1, TRADES] == 0 and out[1, TOTAL_RETURN] == 0.0
    assert np.isnan(out[1, SHARPE]) and out[1, MAX_DRAWDOWN] == 0.0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 400),
    n_pairs=st.integers(1, 9),
    split=st.integers(1, 8),
    mode=st.sampled_from([FILL_NEXT_OPEN, FILL_NEXT_CLOSE]),
)
def test_independent_of_chunking_order_and_threads(
    seed: int, n: int, n_pairs: int, split: int, mode: int
) -> None:
    rng = np.random.default_rng(seed)
    open_, close = random_walk(n, seed=seed)
    fast = rng.integers(1, 30, n_pairs)
    pairs = [(int(f), int(f + rng.integers(1, 60))) for f in fast]
    whole = sweep(open_, close, pairs, mode=mode)
    # In pieces of `split` pairs (each kernel call pairs its combinations differently).
    pieces = np.vstack(
        [sweep(open_, close, pairs[i : i + split], mode=mode) for i in range(0, n_pairs, split)]
    )
    np.testing.assert_array_equal(pieces, whole)
    # Reversed order.
    np.testing.assert_array_equal(sweep(open_, close, pairs[::-1], mode=mode)[::-1], whole)
    # One thread instead of all of them.
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = sweep(open_, close, pairs, mode=mode)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(single, whole)
    for k, (f, s) in enumerate(pairs):
        assert_rows_match(whole[k], reference(open_, close, f, s, fee_bps=10.0, mode=mode))


def test_memory_is_bounded_whatever_the_length_or_grid() -> None:
    """The output is n_combos x N_FIELDS, and the kernel makes the same few allocations
    (the parallel scheduler's) per call, whatever the number of bars or combinations."""
    from numba.core.runtime import _nrt_python, rtsys

    if not hasattr(_nrt_python, "memsys_enable_stats"):
        pytest.skip("this numba cannot count NRT allocations")
    was_enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        counts = {}
        for n in (500, 50_000):
            open_, close = random_walk(n, seed=24)
            for n_pairs in (2, 40):
                pairs = [(1 + k % 7, 20 + k) for k in range(n_pairs)]
                sweep(open_, close, pairs)  # compile / warm up
                before = rtsys.get_allocation_stats()
                out = sweep(open_, close, pairs)
                after = rtsys.get_allocation_stats()
                assert out.shape == (n_pairs, N_FIELDS)
                counts[n, n_pairs] = after.alloc - before.alloc
        assert len(set(counts.values())) == 1, counts
        assert max(counts.values()) <= 16, counts
    finally:
        if not was_enabled:
            _nrt_python.memsys_disable_stats()


def test_rejects_bad_arguments() -> None:
    open_, close = random_walk(50, seed=25)
    fast, slow = grid([(5, 10)])
    out = np.empty((1, N_FIELDS))
    with pytest.raises(ValueError, match="fast_bars < slow_bars"):
        ma_crossover_sweep(open_, close, slow, fast, 10.0, 1, CASH, HOURS, out)
    with pytest.raises(ValueError, match="fill_mode"):
        ma_crossover_sweep(open_, close, fast, slow, 10.0, 7, CASH, HOURS, out)
    with pytest.raises(ValueError, match="out must have shape"):
        ma_crossover_sweep(open_, close, fast, slow, 10.0, 1, CASH, HOURS, np.empty((2, 5)))
    with pytest.raises(ValueError, match="lengths differ"):
        ma_crossover_sweep(open_[:-1], close, fast, slow, 10.0, 1, CASH, HOURS, out)
