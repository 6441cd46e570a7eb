"""First-call cost of the demo's kernels in a fresh process; prints one JSON line.

``run.py`` starts this twice: with the project's numba cache (warm, after a priming run) and
with ``NUMBA_CACHE_DIR`` pointed at an empty folder (cold: everything compiles). The calls
go through the library, as the demo does: features (EMA, RSI, rolling std / z-score), the
EMA-cross strategy, the backtest with its metrics, and the MA-crossover sweep.
"""

from __future__ import annotations

import json
import sys
import time

start = time.perf_counter()
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from research_lib.backtest import run_backtest  # noqa: E402
from research_lib.config import BacktestConfig, FeatureConfig, StrategyConfig  # noqa: E402
from research_lib.features import add_features  # noqa: E402
from research_lib.strategies import signals_for  # noqa: E402
from research_lib.sweep import ma_crossover_sweep  # noqa: E402

imported = time.perf_counter()


def main() -> None:
    n = 500
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    bars = pl.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 3_600_000,
            "symbol": ["BTCUSDT"] * n,
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": np.ones(n),
        }
    )
    single = bars.drop("symbol")
    steps = {
        "features": lambda: add_features(bars, FeatureConfig()),
        "strategy": lambda: signals_for(single, StrategyConfig()),
        "backtest": lambda: run_backtest(
            single, np.ones(n), BacktestConfig(), periods_per_year=8760
        ),
        "sweep": lambda: ma_crossover_sweep(
            close, fast_bars=[5, 10], slow_bars=[20, 50], periods_per_year=8760
        ),
    }
    first = time.perf_counter()
    step_s = {}
    for name, call in steps.items():
        begin = time.perf_counter()
        call()
        step_s[name] = time.perf_counter() - begin
    done = time.perf_counter()
    json.dump(
        {
            "import_s": imported - start,
            "first_call_s": done - first,
            "step_s": step_s,
            "total_s": done - start,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
