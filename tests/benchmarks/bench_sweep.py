"""One side of the MA-crossover sweep benchmark, in its own process (for its peak memory).

``python tests/benchmarks/bench_sweep.py --side ours|vectorbt --returns PATH`` sweeps the
same ~1,000 (fast, slow) pairs over the same seeded 100k-bar random walk, saves the total
returns to PATH (``.npy``) and prints one JSON line: seconds, bar·combos/s and peak RSS.

Both sides: long-only, fast SMA > slow SMA at close t, filled at close t + 1 (vectorbt gets
the signals shifted one bar), 10 bps fees, ``min_size=0`` (PERF_NOTES), total return only
(vectorbt computes it from its order records, its cheapest metric). vectorbt's time covers
its MAs (``vbt.MA.run`` over the unique windows, each computed once), the signal arrays,
``Portfolio.from_signals`` and ``total_return``. To bound memory (its order records take
~100 bytes per bar and column) vectorbt runs ``--vbt-columns`` columns per Portfolio;
its simulation is column by column, so this does not slow it down.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from memory import current_rss_mb, peak_rss_mb

N_BARS = 100_000
FEE_BPS = 10.0
INITIAL_CASH = 10_000.0
FAST_BARS = list(range(5, 101, 5))
SLOW_BARS = list(range(10, 551, 10))


def pairs() -> list[tuple[int, int]]:
    return [(f, s) for f in FAST_BARS for s in SLOW_BARS if f < s]


def close_prices() -> np.ndarray:
    rng = np.random.default_rng(42)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, N_BARS)))


def run_ours(close: np.ndarray, repeats: int) -> tuple[np.ndarray, list[float]]:
    from research_lib.sweep import ma_crossover_sweep

    def call():
        return ma_crossover_sweep(
            close,
            fast_bars=FAST_BARS,
            slow_bars=SLOW_BARS,
            fee_bps=FEE_BPS,
            fill="next_close",
            initial_cash=INITIAL_CASH,
            periods_per_year=8760.0,
            progress=False,
        )

    call()  # warm-up (numba cache)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return result.table["total_return"].to_numpy(), times


def run_vectorbt(close: np.ndarray, columns_per_portfolio: int) -> tuple[np.ndarray, list[float]]:
    import pandas as pd
    import vectorbt as vbt

    grid = pairs()
    series = pd.Series(close)

    def sweep(close_series, grid_pairs, chunk):
        windows = sorted({w for pair in grid_pairs for w in pair})
        ma = vbt.MA.run(close_series, window=windows).ma.to_numpy()
        column = {w: j for j, w in enumerate(windows)}
        fast = np.array([column[f] for f, _ in grid_pairs])
        slow = np.array([column[s] for _, s in grid_pairs])
        returns = []
        for lo in range(0, len(grid_pairs), chunk):
            long = ma[:, fast[lo : lo + chunk]] > ma[:, slow[lo : lo + chunk]]
            entries = np.zeros_like(long)
            exits = np.zeros_like(long)
            entries[1:] = long[:-1]
            exits[1:] = ~long[:-1]
            portfolio = vbt.Portfolio.from_signals(
                close_series,
                entries,
                exits,
                fees=FEE_BPS * 1e-4,
                init_cash=INITIAL_CASH,
                min_size=0.0,
                direction="longonly",
            )
            returns.append(portfolio.total_return().to_numpy())
            del portfolio, long, entries, exits
        return np.concatenate(returns)

    sweep(series.iloc[:2000], grid[:4], chunk=2)  # warm-up: compile vectorbt's kernels
    start = time.perf_counter()
    total = sweep(series, grid, columns_per_portfolio)
    return total, [time.perf_counter() - start]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=["ours", "vectorbt"], required=True)
    parser.add_argument("--returns", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vbt-columns", type=int, default=250)
    options = parser.parse_args()
    close = close_prices()
    rss_before = current_rss_mb()
    if options.side == "ours":
        total, times = run_ours(close, options.repeats)
    else:
        total, times = run_vectorbt(close, options.vbt_columns)
    np.save(options.returns, total)
    seconds = statistics.median(times)
    n_combos = len(pairs())
    report = {
        "side": options.side,
        "n_bars": N_BARS,
        "n_combos": n_combos,
        "grid": "fast 5..100 step 5 x slow 10..550 step 10, fast < slow; 10 bps; next close",
        "seconds_median": seconds,
        "seconds_best": min(times),
        "runs": len(times),
        "bar_combos_per_s": N_BARS * n_combos / seconds,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }
    if options.side == "vectorbt":
        report["columns_per_portfolio"] = options.vbt_columns
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
