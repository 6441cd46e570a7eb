"""Indicator kernels against TA-Lib and the memory-bandwidth bound, on 10M bars.

Every entry of ``research_lib.indicators.REGISTRY`` is timed with its default parameters:
the same kernel, inputs and TA-Lib call that ``tests/research_lib/test_indicators.py`` checks
for equality. Our kernels write into ``out`` arrays allocated by numpy before the timed region
(as PERF_NOTES advises); TA-Lib allocates its outputs itself, which is part of its cost. After
a warm-up call each, ours and TA-Lib's calls alternate, so load on this 2-core machine hits
both sides alike; the median (and best) of ``repeats`` calls is reported.

The windowed kernels run blocks of bars on every numba thread (both cores here); each is
also timed with one thread (``numba.set_num_threads(1)``), and the bound is also measured as
a two-thread copy, so the report shows what the second core buys.

Run via ``tests/benchmarks/run.py`` (``make bench``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import talib
from numba import njit, prange

from research_lib.indicators import REGISTRY

N_BARS = 10_000_000


def synthetic_bars(n: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """A seeded OHLCV random walk (hourly-like moves), every column a contiguous float64."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.empty(n)
    open_[0] = 100.0
    open_[1:] = close[:-1]
    spread = np.abs(rng.normal(0.0, 0.004, n))
    high = np.maximum(open_, close) * (1.0 + spread)
    low = np.minimum(open_, close) * (1.0 - spread)
    volume = rng.lognormal(3.0, 1.0, n)
    ts = 1.7e12 + np.arange(n, dtype=np.float64) * 3_600_000.0
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume, "ts": ts}


def _times(call: Callable[[], Any], repeats: int) -> list[float]:
    call()  # warm-up: compile or load from cache, fault in the out arrays
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def memory_bound(n: int, *, repeats: int) -> dict[str, float]:
    """``np.copyto(out, x)`` on n float64: one read and one write pass, the "1x" bound."""
    x = np.random.default_rng(1).random(n)
    out = np.empty_like(x)
    times = _times(lambda: np.copyto(out, x), repeats)
    median = statistics.median(times)
    return {
        "n": n,
        "best_ms": min(times) * 1e3,
        "median_ms": median * 1e3,
        "gb_per_s": 2 * 8 * n / median / 1e9,
    }


@njit(parallel=True)
def _parallel_copy(out: np.ndarray, x: np.ndarray) -> None:
    for i in prange(x.shape[0]):
        out[i] = x[i]


def parallel_memory_bound(n: int, *, repeats: int) -> dict[str, float]:
    """The same copy split over every numba thread: what both cores' bandwidth allows."""
    x = np.random.default_rng(1).random(n)
    out = np.empty_like(x)
    times = _times(lambda: _parallel_copy(out, x), repeats)
    median = statistics.median(times)
    return {
        "n": n,
        "threads": numba.get_num_threads(),
        "best_ms": min(times) * 1e3,
        "median_ms": median * 1e3,
        "gb_per_s": 2 * 8 * n / median / 1e9,
    }


def _one_thread_times(call: Callable[[], Any], repeats: int) -> list[float]:
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return _times(call, repeats)
    finally:
        numba.set_num_threads(threads)


def _paired_times(
    ours: Callable[[], Any], theirs: Callable[[], Any] | None, repeats: int
) -> tuple[list[float], list[float]]:
    ours()
    if theirs is not None:
        theirs()
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        ours()
        a.append(time.perf_counter() - start)
        if theirs is not None:
            start = time.perf_counter()
            theirs()
            b.append(time.perf_counter() - start)
    return a, b


def bench_indicators(
    bars: dict[str, np.ndarray], *, bound_ms: float, repeats: int, log: Callable[[str], None]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Time every registered indicator; returns (rows, names that could not run)."""
    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    n = bars["close"].shape[0]
    for spec in REGISTRY.values():
        params = spec.resolve((), {})
        name = f"{spec.name}({','.join(f'{p:g}' for p in params)})"
        inputs = [np.ascontiguousarray(bars[c]) for c in spec.inputs]
        outs = [np.empty(n) for _ in spec.outputs]
        theirs = None
        if spec.talib is not None:
            theirs = lambda s=spec, p=params: s.talib(talib, bars, *p)  # noqa: E731
        ours = lambda s=spec, i=inputs, p=params, o=outs: s.kernel(*i, *p, *o)  # noqa: E731
        ours_t, theirs_t = _paired_times(ours, theirs, repeats)
        one_thread_t = _one_thread_times(ours, repeats)
        row: dict[str, Any] = {
            "name": name,
            "family": spec.family,
            "kernel": f"{spec.kernel.__module__}.{spec.kernel.__name__}",
            "arrays": len(spec.inputs) + len(spec.outputs),
            "ours_best_ms": min(ours_t) * 1e3,
            "ours_median_ms": statistics.median(ours_t) * 1e3,
            "ours_1thread_median_ms": statistics.median(one_thread_t) * 1e3,
            "talib_best_ms": None,
            "talib_median_ms": None,
            "ratio_to_talib": None,
        }
        row["ratio_to_bound"] = row["ours_median_ms"] / bound_ms
        row["ratio_to_bound_1thread"] = row["ours_1thread_median_ms"] / bound_ms
        if theirs_t:
            row["talib_best_ms"] = min(theirs_t) * 1e3
            row["talib_median_ms"] = statistics.median(theirs_t) * 1e3
            row["ratio_to_talib"] = row["ours_median_ms"] / row["talib_median_ms"]
        rows.append(row)
        talib_text = (
            f"talib {row['talib_median_ms']:7.1f} ms  x{row['ratio_to_talib']:.2f}"
            if theirs_t
            else "talib       -"
        )
        log(
            f"  {name:28s} ours {row['ours_median_ms']:7.1f} ms  {talib_text}  "
            f"bound x{row['ratio_to_bound']:.1f} (1 thread x{row['ratio_to_bound_1thread']:.1f})"
        )
        del outs
    return rows, missing
