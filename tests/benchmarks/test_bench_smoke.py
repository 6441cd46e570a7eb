"""`make bench` must keep working: a quick run writes a complete report with every target."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from research_lib.indicators import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_writes_json_and_markdown(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "tests/benchmarks/run.py", "--quick", "--skip-vectorbt",
         "--out-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "kernels.json").read_text())
    assert {row["name"].split("(")[0] for row in report["indicators"]} == set(REGISTRY)
    assert report["memory_bound"]["median_ms"] > 0
    for row in report["indicators"]:
        assert row["ours_median_ms"] > 0 and row["ratio_to_bound"] > 0
    assert set(report["targets"]) >= {
        "every_talib_indicator_within_1x",
        "median_ratio_to_bound",
        "median_ratio_to_bytes_bound",
        "sweep_peak_memory_mb",
        "ingest_rows_per_s",
        "ingest_peak_memory_mb",
    }
    ingest = report["ingest"]
    assert "skipped" in ingest or (ingest["rows"] > 80_000 and ingest["rows_per_s"] > 0)
    assert report["sweep"]["ours"]["peak_rss_mb"] > 0
    markdown = (tmp_path / "kernels.md").read_text()
    assert "| rsi(14) |" in markdown and "MA-crossover sweep" in markdown
    assert "## Ingest" in markdown
    defi = report["defi"]
    assert defi["indexer"]["logs"] == defi["indexer"]["web3_logs"] > 0
    assert defi["lp_sweep"]["n_ranges"] == 100 and defi["lp_sweep"]["api_seconds_median"] > 0
    assert "## DeFi" in markdown
