"""Kernels are compiled once: a second process loads them from numba's on-disk cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The demo path: features, the strategy and the backtest.
SCRIPT = """
import numpy as np
from research_lib.backtest import run_backtest
from research_lib.config import BacktestConfig, FeatureConfig, StrategyConfig
from research_lib.features import add_features
from research_lib.strategies import signals_for
import polars as pl

n = 300
close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, n)))
bars = pl.DataFrame({"ts": np.arange(n, dtype=np.int64) * 3_600_000, "symbol": "X",
    "open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1.0})
add_features(bars, FeatureConfig())
target = signals_for(bars.drop("symbol"), StrategyConfig())["target"]
run_backtest(bars, target, BacktestConfig(), periods_per_year=8760)
"""


def run_with_cache_debug(cache_dir: Path) -> str:
    env = {**os.environ, "NUMBA_DEBUG_CACHE": "1", "NUMBA_CACHE_DIR": str(cache_dir)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_second_process_loads_every_kernel_from_the_cache(tmp_path: Path) -> None:
    first = run_with_cache_debug(tmp_path)
    assert "[cache] data saved" in first, "a cold cache compiles and saves"
    second = run_with_cache_debug(tmp_path)
    assert "[cache] data loaded" in second
    assert "[cache] data saved" not in second, "nothing is recompiled on the second run"
