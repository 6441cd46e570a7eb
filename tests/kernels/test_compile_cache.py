"""Kernels are compiled once: a second process loads them from numba's on-disk cache."""

from __future__ import annotations

import json
import os
import shutil
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


# --- a cache never outlives a callee's source ------------------------------------------------
# numba keys a cached function on its own file; kernels/__init__.py drops the cache of every
# module whose (transitive) kernels imports changed.


def _digests(package_root: Path) -> dict[str, str]:
    code = "import json, kernels; print(json.dumps(kernels.module_digests()))"
    env = {**os.environ, "PYTHONPATH": str(package_root), "NUMBA_CACHE_DIR": str(package_root)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=package_root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_change_to_rolling_reaches_every_module_that_imports_it(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "kernels", tmp_path / "kernels", ignore=shutil.ignore_patterns("__py*"))
    before = _digests(tmp_path)
    with (tmp_path / "kernels" / "rolling.py").open("a") as handle:
        handle.write("\n# an edit\n")
    after = _digests(tmp_path)
    changed = {name for name in before if before[name] != after[name]}
    # rolling itself, the modules importing it, and those importing them (volatility imports
    # realised and _windows, which import rolling).
    assert {"rolling", "_windows", "realised", "volatility", "trend", "momentum"} <= changed
    assert {"amm", "lending", "stats", "__init__"}.isdisjoint(changed)


def test_a_stale_module_cache_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    run_with_cache_debug(tmp_path)  # compiles and caches the demo kernels
    stamps = list(tmp_path.rglob("kernels-sources.json"))
    assert len(stamps) == 1
    folder = stamps[0].parent
    cached = {p.name.split(".")[0] for p in folder.glob("*.nbi")}
    assert {"rolling", "backtest"} <= cached
    digests = json.loads(stamps[0].read_text())
    digests["rolling"] = "0" * 64  # as if rolling.py (or a module it imports) had changed
    stamps[0].write_text(json.dumps(digests))
    second = run_with_cache_debug(tmp_path)
    assert not list(folder.glob("rolling.*.nbi")) or "[cache] data saved" in second
    assert "[cache] data loaded" in second  # the other modules still load from the cache
    saved = [line for line in second.splitlines() if "[cache] data saved" in line]
    assert saved and all("rolling" in line for line in saved), saved
    assert json.loads(stamps[0].read_text())["rolling"] != "0" * 64
