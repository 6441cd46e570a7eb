"""The Uniswap V3 LP range sweep: 50k minutes x 100 ranges, in seconds.

``bench_lp_sweep()`` times ``research_lib.defi.lp.range_sweep`` (input checks, tick
rounding, the parallel kernel and the result table) and, separately, the kernel alone
(``kernels.amm.range_sweep``) on the first ``n_minutes`` rows of the real Polygon
USDC.e/WETH 0.05 % minute file in ``../shared/data/real``. Without that file it falls back
to a seeded synthetic frame of the same shape and says so in ``data``. The ranges are
``n_ranges`` geometric half-widths from 0.1 % to 100 % around the entry price, $10,000
each. Each timing is taken after a warm-up call (the numba cache); min and median of
``repeats`` runs are reported, with minute-ranges per second, the numba thread count, the
peak of Python-visible allocations during one sweep (tracemalloc: numpy and Python objects,
not polars' Rust buffers) and this process's peak RSS.

``python tests/benchmarks/bench_lp.py`` prints the result as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REAL_POOL = (
    ROOT.parent / "shared" / "data" / "real" / "dex" / "uniswap_v3_polygon_usdc_weth_005_1m.parquet"
)
CAPITAL_USD = 10_000.0
EXAMPLE_COLUMNS = (
    "range_price_lower",
    "range_price_upper",
    "fees_usd",
    "il",
    "time_in_range",
    "net_pnl_vs_hold_usd",
)


def _times(call: Callable[[], Any], repeats: int) -> list[float]:
    call()  # warm-up: load the compiled kernels from numba's cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def synthetic_minutes(n_minutes: int, *, seed: int = 0) -> Any:
    """A seeded stand-in for the real file: a tick walk near 1,600 USDC/WETH, lognormal flows."""
    import polars as pl

    from research_lib.defi.lp import prepare_v3_minutes

    rng = np.random.default_rng(seed)
    ticks = 202_000 + np.round(np.cumsum(rng.normal(0.0, 8.0, n_minutes))).astype(np.int64)
    raw = pl.DataFrame(
        {
            "ts": 1_658_188_800_000 + 60_000 * np.arange(n_minutes, dtype=np.int64),
            "close_tick": ticks.astype(np.int32),
            "in_amount0": rng.lognormal(21.0, 2.0, n_minutes),
            "in_amount1": rng.lognormal(42.0, 2.0, n_minutes),
            "liquidity": rng.lognormal(41.8, 0.4, n_minutes),
        }
    )
    return prepare_v3_minutes(raw)


def bench_lp_sweep(
    *,
    n_minutes: int = 50_000,
    n_ranges: int = 100,
    repeats: int = 5,
    pool_file: Path | None = None,
) -> dict[str, Any]:
    """Time the V3 range sweep; see the module docstring for what is measured."""
    import numba

    from kernels import amm
    from research_lib.defi.lp import load_v3_minutes, range_sweep

    path = REAL_POOL if pool_file is None else Path(pool_file)
    if path.is_file():
        frame = load_v3_minutes(path).head(n_minutes)
        data = f"real: {path.name}, first {frame.height} rows"
    else:
        frame = synthetic_minutes(n_minutes)
        data = f"synthetic (seeded, same shape): real file absent at {path}"
    entry = float(frame["price"][0])
    ranges = [(entry / (1 + w), entry * (1 + w)) for w in np.geomspace(0.001, 1.0, n_ranges)]

    def api() -> Any:
        return range_sweep(frame, ranges=ranges, capital_usd=CAPITAL_USD)

    table = api()
    # The kernel alone, on the inputs the API passes it.
    sqrt_price = np.empty(frame.height)
    amm.tick_to_sqrt_price_1d(frame["close_tick"].cast(float).to_numpy(), sqrt_price)
    flows = [
        np.ascontiguousarray(frame[c].to_numpy()) for c in ("in_amount0_raw", "in_amount1_raw")
    ]
    pool = np.ascontiguousarray(frame["pool_liquidity_raw"].to_numpy())
    lows = table["tick_lower"].to_numpy().astype(np.int64)
    highs = table["tick_upper"].to_numpy().astype(np.int64)
    liquidity = table["liquidity"].to_numpy()
    out = np.empty((n_ranges, amm.N_SUMMARY_FIELDS))

    def kernel() -> None:
        amm.range_sweep(sqrt_price, *flows, pool, 5e-4, lows, highs, liquidity, out)

    api_times = _times(api, repeats)
    kernel_times = _times(kernel, repeats)
    tracemalloc.start()
    api()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    steps = frame.height * n_ranges
    result: dict[str, Any] = {
        "name": "uniswap_v3_range_sweep",
        "data": data,
        "n_minutes": frame.height,
        "n_ranges": n_ranges,
        "ranges": "half-widths 0.1%..100% geometric around the entry price, $10k each",
        "repeats": repeats,
        "threads": numba.get_num_threads(),
        "api_seconds_min": min(api_times),
        "api_seconds_median": statistics.median(api_times),
        "kernel_seconds_min": min(kernel_times),
        "kernel_seconds_median": statistics.median(kernel_times),
        "minute_ranges_per_s": steps / statistics.median(api_times),
        "traced_peak_mb": traced_peak / 2**20,
        "example": {name: float(table[name][n_ranges // 2]) for name in EXAMPLE_COLUMNS},
    }
    try:
        sys.path.insert(0, str(HERE))
        from memory import peak_rss_mb

        result["peak_rss_mb"] = peak_rss_mb()
    except ImportError:  # pragma: no cover - memory.py sits beside this file
        pass
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=50_000)
    parser.add_argument("--ranges", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pool-file", type=Path, default=None)
    options = parser.parse_args()
    result = bench_lp_sweep(
        n_minutes=options.minutes,
        n_ranges=options.ranges,
        repeats=options.repeats,
        pool_file=options.pool_file,
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
