"""End-to-end ingest rate: local Binance server -> HTTP -> parse -> validate -> parquet lake.

Run by ``run.py`` (``make bench``) as a child process, so that its peak RSS is the collector's
own. It starts ``tests/servers/exchange_server.py`` as a separate process serving the real
Binance spot candles of ``../shared/data/real`` in Binance's wire format, then collects
``--symbols`` x ``--years`` of hourly candles into a fresh lake with ``collect_market``
(pages of 1,000 rows, as Binance serves them), ``--repeats`` times. Prints one JSON line:
rows, seconds (median), rows/s, requests, peak RSS of this process and of its baseline
(after imports and a one-day warm-up collection).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memory import peak_rss_mb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--start", default="2021-01-01")
    parser.add_argument("--end", default="2023-01-01")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    if not (REAL / "cex" / "binance_spot_1h").is_dir():
        print(json.dumps({"skipped": f"real Binance candles not found at {REAL}"}))
        return

    import polars as pl

    from research_lib.collect import collect_market
    from research_lib.config import MarketConfig
    from research_lib.lake import Lake

    symbols = SYMBOLS[: options.symbols]
    market = MarketConfig(
        source="binance", symbols=symbols, interval="1h", start=options.start, end=options.end
    )
    warm = MarketConfig(
        source="binance", symbols=symbols, interval="1h", start="2020-01-01", end="2020-01-02"
    )
    baseline_mb = 0.0
    seconds, rows, requests = [], 0, 0
    for repeat in range(options.repeats + 1):
        # A fresh server each time: Binance's request weight (1200 a minute) would otherwise
        # make later repeats wait for the next minute, and that is the venue, not the pipeline.
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "servers" / "exchange_server.py"),
             "--data", str(REAL), "--symbols", *symbols],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            os.environ["RESEARCH_BINANCE_SPOT_URL"] = server.stdout.readline().strip()
            with tempfile.TemporaryDirectory() as tmp:
                # Warm-up on a separate lake: the server renders each symbol's wire rows on
                # its first request, and this process makes its first connection and write.
                collect_market(warm, lake=Lake(Path(tmp) / "warm"), progress=False)
                if repeat == 0:
                    baseline_mb = peak_rss_mb()
                    continue
                lake = Lake(Path(tmp) / "lake")
                started = time.perf_counter()
                summary = collect_market(market, lake=lake, progress=False)
                seconds.append(time.perf_counter() - started)
                rows = int(summary["added"].sum())
                requests = int(summary["pages"].sum())
                stored = lake.read("bars").height
                assert stored == rows, (stored, rows)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    expected = sum(
        pl.scan_parquet(REAL / "cex" / "binance_spot_1h" / f"{s}.parquet")
        .filter(pl.col("ts").is_between(market.start_ms, market.end_ms - 1))
        .select(pl.len())
        .collect()
        .item()
        for s in symbols
    )
    assert rows == expected, (rows, expected)
    median = statistics.median(seconds)
    print(
        json.dumps(
            {
                "symbols": list(symbols),
                "start": options.start,
                "end": options.end,
                "rows": rows,
                "pages": requests,
                "page_rows": 1000,
                "seconds": seconds,
                "seconds_median": median,
                "rows_per_s": rows / median,
                "peak_rss_mb": peak_rss_mb(),
                "baseline_rss_mb": baseline_mb,
            }
        )
    )


if __name__ == "__main__":
    main()
