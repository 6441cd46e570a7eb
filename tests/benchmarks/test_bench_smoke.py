"""`make bench` must keep working: a quick run writes a complete report with every target."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from bench_models import models_markdown

from research_lib.indicators import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
MODEL_ROWS = {
    ("ridge", "regression"),
    ("logistic", "classification"),
    ("random_forest", "regression"),
    ("random_forest", "classification"),
    ("hist_gradient_boosting", "regression"),
    ("hist_gradient_boosting", "classification"),
    ("arima", "regression"),
    ("torch_mlp", "regression"),
    ("torch_mlp", "classification"),
    ("torch_lstm", "regression"),
    ("torch_lstm", "classification"),
    ("out_of_fold_ensemble", "regression"),
}


def _models_bench(*args: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "tests/benchmarks/bench_models.py", "--quick", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_model_rows(result: dict) -> None:
    for row in result["families"]:
        assert len(row["fit_seconds_per_fold"]) == result["n_splits"] == 5
        assert row["fit_seconds"] > 0 and row["train_rows_per_s"] > 0
        assert row["train_rows"] == sum(result["fold_train_rows"])
        assert all(math.isfinite(value) for value in row["score"].values())


def test_quick_models_bench_times_every_family(tmp_path: Path) -> None:
    result = _models_bench()
    assert result["quick"] and result["n_bars"] == 2_000
    assert result["data"].startswith(("real:", "synthetic"))
    assert {(row["family"], row["task"]) for row in result["families"]} == MODEL_ROWS
    _check_model_rows(result)
    assert result["fold_train_rows"] == sorted(result["fold_train_rows"])  # expanding
    markdown = "\n".join(models_markdown(result))
    assert "| torch_lstm | classification |" in markdown and "log loss" in markdown
    assert "| arima | regression |" in markdown and "IC " in markdown


def test_models_bench_falls_back_to_synthetic_bars_and_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "RESEARCH_REAL_DATA_DIR": str(tmp_path)}  # no real file there
    result = _models_bench("--only", "ridge", "--only", "logistic", env=env)
    assert result["data"].startswith("synthetic") and str(tmp_path) in result["data"]
    assert [row["family"] for row in result["families"]] == ["ridge", "logistic"]
    _check_model_rows(result)


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
        assert row["ours_1thread_median_ms"] > 0
    assert report["parallel_memory_bound"]["threads"] >= 1
    assert report["median_ratio_to_bound_1thread"] > 0
    assert set(report["targets"]) >= {
        "every_talib_indicator_within_1x",
        "median_ratio_to_bound",
        "median_ratio_to_bytes_bound",
        "sweep_peak_memory_mb",
        "ingest_rows_per_s",
        "ingest_peak_memory_mb",
        "models_section_seconds",
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
    models = report["models"]
    assert models["quick"] and {(r["family"], r["task"]) for r in models["families"]} == MODEL_ROWS
    assert "## Models: walk-forward training time" in markdown
