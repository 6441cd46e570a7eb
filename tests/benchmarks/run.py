"""``make bench``: kernel timings against TA-Lib, the memory bound and vectorbt.

Writes ``reports/bench/kernels.json`` and ``reports/bench/kernels.md`` (each atomically:
temporary file, then rename) and prints the markdown. Every figure sits next to its target
and a pass/fail:

- each indicator TA-Lib also computes: our median time <= 1.0x TA-Lib's median;
- the median over indicators of (our median / the memory-bound copy of 10M float64) <= 4x.
  A copy moves two arrays; an indicator that reads and writes k arrays cannot beat k/2
  copies, so the report also gives the ratio to that bytes-matched bound, with the same 4x
  target; the plain ratio stays the headline figure;
- the MA-crossover sweep: >= 50x vectorbt's bar·combos/s, peak RSS < 2 GB, same total
  returns (asserted, max relative difference reported);
- compile time: the demo kernels' first-call cost in a fresh process, warm and cold cache;
- DeFi (``bench_indexer.py``, ``bench_lp.py``): the EVM log indexer against anvil, in logs/s
  and as a ratio to web3.py reading the same logs; the V3 LP range sweep (50k minutes x 100
  ranges of the real Polygon pool) in seconds.
- ingest (``bench_ingest.py``): 5 symbols x 2 years of real hourly candles from a local server
  speaking Binance's protocol into the lake, >= 100k rows/s with peak RSS < 500 MB.
- models (``bench_models.py``): walk-forward training time of each model family (ridge,
  logistic, random forest, gradient boosting, ARIMA, torch MLP/LSTM, the out-of-fold ensemble)
  on 60,000 real BTCUSDT hourly bars, 5 purged folds, with each family's out-of-sample score;
  the whole section in < 8 minutes.

The machine is shared and noisy; ratios from the same run are the figures to compare.
Options: ``--quick`` (1M bars, fewer repeats, ~2,000 bars and tiny models for the models
section: a smoke run), ``--skip-vectorbt``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from bench_indicators import (  # noqa: E402
    N_BARS,
    bench_indicators,
    memory_bound,
    parallel_memory_bound,
    synthetic_bars,
)
from bench_models import models_markdown  # noqa: E402

from research_lib.atomic import atomic_write_text  # noqa: E402

TARGET_RATIO_TO_TALIB = 1.0
TARGET_MEDIAN_RATIO_TO_BOUND = 4.0
TARGET_SWEEP_SPEEDUP = 50.0
TARGET_SWEEP_PEAK_MB = 2048.0
TARGET_INGEST_ROWS_PER_S = 100_000.0
TARGET_INGEST_PEAK_MB = 500.0
TARGET_MODELS_SECONDS = 480.0
RETURNS_RTOL = 1e-9
STEPS = ("features", "strategy", "backtest", "sweep")  # bench_compile.py's first calls


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def log(message: str) -> None:
    print(message, flush=True)


def child(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_sweep(skip_vectorbt: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        ours_path = Path(tmp) / "ours.npy"
        # A first run fills the numba cache, so that the measured process's peak RSS is the
        # sweep's and not the compiler's.
        child("bench_sweep.py", "--side", "ours", "--returns", str(ours_path), "--repeats", "1")
        ours = child("bench_sweep.py", "--side", "ours", "--returns", str(ours_path))
        log(
            f"  ours: {ours['seconds_median']:.3f} s, {ours['bar_combos_per_s'] / 1e6:.0f}M "
            f"bar·combos/s, peak RSS {ours['peak_rss_mb']:.0f} MB"
        )
        result: dict[str, Any] = {"ours": ours}
        if skip_vectorbt:
            return result
        vbt_path = Path(tmp) / "vectorbt.npy"
        theirs = child("bench_sweep.py", "--side", "vectorbt", "--returns", str(vbt_path))
        log(
            f"  vectorbt: {theirs['seconds_median']:.1f} s, "
            f"{theirs['bar_combos_per_s'] / 1e6:.1f}M bar·combos/s, "
            f"peak RSS {theirs['peak_rss_mb']:.0f} MB"
        )
        a, b = np.load(ours_path), np.load(vbt_path)
    relative = np.abs(a - b) / np.maximum(np.abs(b), 1e-300)
    equity_relative = np.abs(a - b) / (1.0 + b)  # relative difference of final equity
    result.update(
        vectorbt=theirs,
        speedup=ours["bar_combos_per_s"] / theirs["bar_combos_per_s"],
        total_return_max_relative_diff=float(relative.max()),
        final_equity_max_relative_diff=float(equity_relative.max()),
    )
    # Same total returns: the final equities agree to RETURNS_RTOL (a total return near 0
    # makes its own relative difference meaningless).
    assert equity_relative.max() <= RETURNS_RTOL, equity_relative.max()
    return result


def bench_compile() -> dict[str, Any]:
    child("bench_compile.py")  # prime the project cache
    warm = child("bench_compile.py")
    with tempfile.TemporaryDirectory() as cache:
        cold = child("bench_compile.py", env={**os.environ, "NUMBA_CACHE_DIR": cache})
    return {"warm_cache": warm, "cold_cache": cold}


def check(value: float | None, target: float, *, at_most: bool = True) -> dict[str, Any]:
    if value is None:
        return {"value": None, "target": target, "pass": None}
    ok = value <= target if at_most else value >= target
    return {"value": value, "target": target, "pass": bool(ok)}


def mark(passed: bool | None) -> str:
    return "–" if passed is None else ("pass" if passed else "**FAIL**")


def markdown(report: dict[str, Any]) -> str:
    bound = report["memory_bound"]
    pbound = report["parallel_memory_bound"]
    lines = [
        f"# Kernel benchmarks ({report['created_utc']})",
        "",
        f"{report['machine']}. Shared, noisy machine: compare ratios from the same run.",
        "",
        f"Memory bound: `np.copyto` of {bound['n']:,} float64: best {bound['best_ms']:.1f} ms, "
        f"median {bound['median_ms']:.1f} ms ({bound['gb_per_s']:.1f} GB/s read+write).",
        "",
        f"## Indicators on {report['n_bars']:,} bars (median of {report['repeats']} runs)",
        "",
        "| indicator | arrays | ours ms | ours, 1 thread ms | TA-Lib ms | ours / TA-Lib (≤ 1.0) "
        "| ours / bound | ours / bound for its bytes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["indicators"]:
        talib_ms = "–" if row["talib_median_ms"] is None else f"{row['talib_median_ms']:.1f}"
        ratio = (
            "–"
            if row["ratio_to_talib"] is None
            else f"{row['ratio_to_talib']:.2f} {mark(row['talib_target']['pass'])}"
        )
        lines.append(
            f"| {row['name']} | {row['arrays']} | {row['ours_median_ms']:.1f} | "
            f"{row['ours_1thread_median_ms']:.1f} | {talib_ms} | "
            f"{ratio} | {row['ratio_to_bound']:.1f}× | {row['ratio_to_bytes_bound']:.1f}× |"
        )
    targets = report["targets"]
    covered = targets["every_talib_indicator_within_1x"]
    lines += [
        "",
        f"- TA-Lib-covered indicators at or under 1.0× TA-Lib: {covered['passed']} of "
        f"{covered['count']} — {mark(covered['pass'])}",
        f"- Median ratio to the memory bound: {targets['median_ratio_to_bound']['value']:.2f}× "
        f"(target ≤ 4×) — {mark(targets['median_ratio_to_bound']['pass'])}",
        f"- Median ratio to the bytes-matched bound: "
        f"{targets['median_ratio_to_bytes_bound']['value']:.2f}× (target ≤ 4×) — "
        f"{mark(targets['median_ratio_to_bytes_bound']['pass'])}",
        f"- With one numba thread (the windowed kernels otherwise run blocks on both cores): "
        f"median ratio to the memory bound {report['median_ratio_to_bound_1thread']:.2f}×. "
        f"The same copy on {pbound['threads']} threads: median {pbound['median_ms']:.1f} ms "
        f"({pbound['gb_per_s']:.1f} GB/s); the median ratio to it is "
        f"{report['median_ratio_to_parallel_bound']:.2f}×.",
    ]
    if report["missing_kernels"]:
        lines.append(f"- Not in the tree (skipped): {', '.join(report['missing_kernels'])}")
    sweep = report["sweep"]
    ours = sweep["ours"]
    lines += [
        "",
        f"## MA-crossover sweep: {ours['n_combos']} pairs × {ours['n_bars']:,} bars",
        "",
        "| | seconds | M bar·combos/s | peak RSS MB |",
        "|---|---|---|---|",
        f"| ours (numba, prange) | {ours['seconds_median']:.3f} | "
        f"{ours['bar_combos_per_s'] / 1e6:.0f} | {ours['peak_rss_mb']:.0f} |",
    ]
    if "vectorbt" in sweep:
        vbt = sweep["vectorbt"]
        lines += [
            f"| vectorbt (from_signals, {vbt['columns_per_portfolio']} columns per Portfolio) | "
            f"{vbt['seconds_median']:.1f} | {vbt['bar_combos_per_s'] / 1e6:.1f} | "
            f"{vbt['peak_rss_mb']:.0f} |",
            "",
            f"- Speed-up: {sweep['speedup']:.0f}× (target ≥ 50×) — "
            f"{mark(targets['sweep_speedup']['pass'])}",
            f"- Total returns equal: max relative difference "
            f"{sweep['total_return_max_relative_diff']:.1e} (final equity "
            f"{sweep['final_equity_max_relative_diff']:.1e}; asserted ≤ 1e-9)",
        ]
    lines.append(
        f"- Peak memory of our sweep: {ours['peak_rss_mb']:.0f} MB (target < 2048 MB) — "
        f"{mark(targets['sweep_peak_memory_mb']['pass'])}"
    )
    compile_ = report["compile"]
    lines += [
        "",
        "## Compile time (demo kernels, fresh process)",
        "",
        "| numba cache | import s | first call s | features | strategy | backtest | sweep |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in ("warm", "cold"):
        run = compile_[f"{label}_cache"]
        steps = " | ".join(f"{run['step_s'][k]:.2f}" for k in STEPS)
        lines.append(f"| {label} | {run['import_s']:.2f} | {run['first_call_s']:.2f} | {steps} |")
    lines += ["", *ingest_markdown(report)]
    lines += ["", *defi_markdown(report)]
    models = report["models"]
    lines += [
        "",
        *models_markdown(models),
        "",
        f"- Section time: {models['seconds']:.0f} s (target < 480 s) — "
        f"{mark(targets['models_section_seconds']['pass'])}",
    ]
    lines.append("")
    return "\n".join(lines)


def defi_markdown(report: dict[str, Any]) -> list[str]:
    indexer, lp = report["defi"]["indexer"], report["defi"]["lp_sweep"]
    example = lp["example"]
    return [
        "## DeFi: the EVM indexer and the V3 LP range sweep",
        "",
        f"Indexer: {indexer['n_blocks']:,} blocks of the embedded anvil chain (real Uniswap "
        f"V2/V3 bytecode, seeded market), every pool's logs; median of {indexer['repeats']} "
        "runs into a fresh lake. Peer: web3.py fetching the same logs in one `eth_getLogs` and "
        "decoding each with the contract ABI (nothing stored).",
        "",
        "| | logs | seconds | logs/s |",
        "|---|---|---|---|",
        f"| ours (chunks, headers, hash checks, decode, parquet, checkpoints) | "
        f"{indexer['logs']:,} | {indexer['ours_seconds_median']:.2f} | "
        f"{indexer['ours_logs_per_s']:,.0f} |",
        f"| web3.py get_logs + process_log | {indexer['web3_logs']:,} | "
        f"{indexer['web3_seconds_median']:.2f} | {indexer['web3_logs_per_s']:,.0f} |",
        "",
        f"- Ratio: {indexer['ratio_to_web3']:.1f}x web3.py's throughput",
        "",
        f"V3 range sweep: {lp['n_minutes']:,} minutes × {lp['n_ranges']} ranges ({lp['data']}; "
        f"{lp['ranges']}), {lp['threads']} numba threads, median of {lp['repeats']}.",
        "",
        "| | seconds (median) | seconds (min) | minute·ranges/s |",
        "|---|---|---|---|",
        f"| range_sweep (API) | {lp['api_seconds_median']:.3f} | {lp['api_seconds_min']:.3f} | "
        f"{lp['minute_ranges_per_s']:,.0f} |",
        f"| kernel alone | {lp['kernel_seconds_median']:.3f} | {lp['kernel_seconds_min']:.3f} | |",
        "",
        f"- Middle range: ${example['fees_usd']:,.2f} fees, IL {example['il']:.2%}, "
        f"{example['time_in_range']:.1%} of the time in range, "
        f"${example['net_pnl_vs_hold_usd']:,.2f} net against holding.",
    ]


def ingest_markdown(report: dict[str, Any]) -> list[str]:
    ingest, targets = report["ingest"], report["targets"]
    lines = ["## Ingest: local Binance server → HTTP → parse → validate → parquet lake", ""]
    if "skipped" in ingest:
        return [*lines, f"Skipped: {ingest['skipped']}"]
    lines += [
        f"{len(ingest['symbols'])} symbols × hourly candles {ingest['start']} to "
        f"{ingest['end']} (real Binance spot values), pages of {ingest['page_rows']:,} rows, "
        f"{ingest['pages']} requests; median of {len(ingest['seconds'])} runs, each against a "
        f"fresh server and lake.",
        "",
        "| rows | seconds | rows/s | peak RSS MB | RSS after imports MB |",
        "|---|---|---|---|---|",
        f"| {ingest['rows']:,} | {ingest['seconds_median']:.2f} | "
        f"{ingest['rows_per_s']:,.0f} | {ingest['peak_rss_mb']:.0f} | "
        f"{ingest['baseline_rss_mb']:.0f} |",
        "",
        f"- Rate: {ingest['rows_per_s']:,.0f} rows/s (target ≥ 100,000) — "
        f"{mark(targets['ingest_rows_per_s']['pass'])}",
        f"- Peak memory: {ingest['peak_rss_mb']:.0f} MB (target < 500 MB) — "
        f"{mark(targets['ingest_peak_memory_mb']['pass'])}",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M bars, 3 repeats")
    parser.add_argument("--skip-vectorbt", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "reports" / "bench")
    options = parser.parse_args()
    n_bars = N_BARS // 10 if options.quick else N_BARS
    repeats = 3 if options.quick else 7
    started = time.perf_counter()

    log(f"memory bound: np.copyto on {n_bars:,} float64")
    bound = memory_bound(n_bars, repeats=repeats * 2)
    log(f"  best {bound['best_ms']:.1f} ms, median {bound['median_ms']:.1f} ms")
    parallel_bound = parallel_memory_bound(n_bars, repeats=repeats * 2)
    log(f"  on {parallel_bound['threads']} threads: median {parallel_bound['median_ms']:.1f} ms")
    log(f"indicators on {n_bars:,} bars")
    bars = synthetic_bars(n_bars)
    rows, missing = bench_indicators(bars, bound_ms=bound["median_ms"], repeats=repeats, log=log)
    del bars
    for row in rows:
        row["talib_target"] = check(row["ratio_to_talib"], TARGET_RATIO_TO_TALIB)
    covered = [row for row in rows if row["ratio_to_talib"] is not None]
    n_pass = sum(bool(row["talib_target"]["pass"]) for row in covered)
    median_bound = statistics.median(row["ratio_to_bound"] for row in rows)
    for row in rows:
        row["ratio_to_bytes_bound"] = row["ratio_to_bound"] / (row["arrays"] / 2)
    median_bytes_bound = statistics.median(row["ratio_to_bytes_bound"] for row in rows)
    median_bound_1thread = statistics.median(row["ratio_to_bound_1thread"] for row in rows)
    median_parallel_bound = statistics.median(
        row["ours_median_ms"] / parallel_bound["median_ms"] for row in rows
    )

    log("MA-crossover sweep (a subprocess per side)")
    sweep = bench_sweep(options.skip_vectorbt)
    log("compile time (fresh processes)")
    compile_ = bench_compile()
    log("DeFi: EVM indexer against anvil, V3 LP range sweep (subprocesses)")
    indexer = child(
        "bench_indexer.py",
        "--blocks",
        "200" if options.quick else "600",
        "--repeats",
        "2" if options.quick else "3",
    )
    log(
        f"  indexer: {indexer['logs']:,} logs, {indexer['ours_logs_per_s']:,.0f} logs/s "
        f"({indexer['ratio_to_web3']:.1f}x web3.py)"
    )
    lp_sweep = child("bench_lp.py", "--repeats", "3" if options.quick else "7")
    log(
        f"  LP sweep: {lp_sweep['n_minutes']:,} minutes x {lp_sweep['n_ranges']} ranges in "
        f"{lp_sweep['api_seconds_median']:.3f} s"
    )
    log("ingest: local Binance server -> lake (a subprocess)")
    ingest = child("bench_ingest.py", "--repeats", "1" if options.quick else "3")
    if "skipped" in ingest:
        log(f"  skipped: {ingest['skipped']}")
    else:
        log(
            f"  {ingest['rows']:,} rows in {ingest['seconds_median']:.2f} s: "
            f"{ingest['rows_per_s']:,.0f} rows/s, peak RSS {ingest['peak_rss_mb']:.0f} MB"
        )

    log("models: walk-forward training time per family (a subprocess)")
    models = child("bench_models.py", *(["--quick"] if options.quick else []))
    log(f"  {models['data']}; {len(models['families'])} families in {models['seconds']:.0f} s")
    for row in models["families"]:
        log(f"  {row['family']} ({row['task']}): {row['fit_seconds']:.1f} s fit")

    targets = {
        "every_talib_indicator_within_1x": {
            "count": len(covered),
            "passed": n_pass,
            "failed": [row["name"] for row in covered if not row["talib_target"]["pass"]],
            "target": TARGET_RATIO_TO_TALIB,
            "pass": n_pass == len(covered),
        },
        "median_ratio_to_bound": check(median_bound, TARGET_MEDIAN_RATIO_TO_BOUND),
        "median_ratio_to_bytes_bound": check(median_bytes_bound, TARGET_MEDIAN_RATIO_TO_BOUND),
        "sweep_speedup": check(sweep.get("speedup"), TARGET_SWEEP_SPEEDUP, at_most=False),
        "sweep_peak_memory_mb": check(sweep["ours"]["peak_rss_mb"], TARGET_SWEEP_PEAK_MB),
        "ingest_rows_per_s": check(
            ingest.get("rows_per_s"), TARGET_INGEST_ROWS_PER_S, at_most=False
        ),
        "ingest_peak_memory_mb": check(ingest.get("peak_rss_mb"), TARGET_INGEST_PEAK_MB),
        "models_section_seconds": check(models["seconds"], TARGET_MODELS_SECONDS),
    }
    report = {
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "n_bars": n_bars,
        "repeats": repeats,
        "memory_bound": bound,
        "parallel_memory_bound": parallel_bound,
        "median_ratio_to_bound_1thread": median_bound_1thread,
        "median_ratio_to_parallel_bound": median_parallel_bound,
        "indicators": rows,
        "missing_kernels": missing,
        "sweep": sweep,
        "compile": compile_,
        "ingest": ingest,
        "defi": {"indexer": indexer, "lp_sweep": lp_sweep},
        "models": models,
        "targets": targets,
        "seconds": time.perf_counter() - started,
    }
    text = markdown(report)
    out_dir = options.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "kernels.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out_dir / "kernels.md", text)
    log("")
    log(text)
    log(f"wrote {out_dir / 'kernels.json'} and {out_dir / 'kernels.md'}")


if __name__ == "__main__":
    main()
