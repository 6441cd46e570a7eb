"""Run artifacts under ``reports/<run_id>/``: what stages write and dashboards read.

A stage notebook gets ``run_dir`` as a parameter from the pipeline. When it is empty (a
researcher running the notebook by hand), nothing is written here; the lake still is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from research_lib.atomic import atomic_path, atomic_write_text
from research_lib.paths import reports_dir

MANIFEST = "manifest.json"


def write_json(run_dir: str | Path, name: str, payload: Any) -> Path | None:
    """Write ``payload`` as ``<run_dir>/<name>.json``; a no-op when ``run_dir`` is empty."""
    if not run_dir:
        return None
    path = Path(run_dir) / f"{name}.json"
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str))
    return path


def write_frame(run_dir: str | Path, name: str, frame: pl.DataFrame) -> Path | None:
    """Write ``frame`` as ``<run_dir>/<name>.parquet``; a no-op when ``run_dir`` is empty."""
    if not run_dir:
        return None
    path = Path(run_dir) / f"{name}.parquet"
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp)
    return path


def load_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of one run."""
    return json.loads((Path(run_dir) / MANIFEST).read_text())


def list_runs(root: Path | None = None) -> pl.DataFrame:
    """One row per run folder with a manifest, newest first.

    Columns: run_id, profile, status, started_at, duration_s, git_commit, run_config_id, path.
    """
    root = Path(root) if root is not None else reports_dir()
    rows = []
    for manifest_path in sorted(root.glob(f"*/{MANIFEST}")):
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a run still being written, or a foreign folder
        rows.append(
            {
                "run_id": manifest.get("run_id", manifest_path.parent.name),
                "profile": manifest.get("profile"),
                "status": manifest.get("status"),
                "started_at": manifest.get("started_at"),
                "duration_s": manifest.get("duration_s"),
                "git_commit": (manifest.get("git") or {}).get("commit"),
                "run_config_id": (manifest.get("config_ids") or {}).get("run"),
                "path": str(manifest_path.parent),
            }
        )
    schema = {
        "run_id": pl.String,
        "profile": pl.String,
        "status": pl.String,
        "started_at": pl.String,
        "duration_s": pl.Float64,
        "git_commit": pl.String,
        "run_config_id": pl.String,
        "path": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).sort("started_at", descending=True, nulls_last=True)


def latest_run_with(artifact: str, root: Path | None = None) -> Path | None:
    """The newest successful run folder that holds ``artifact`` (a relative path), if any."""
    for row in list_runs(root).iter_rows(named=True):
        if row["status"] == "ok" and (Path(row["path"]) / artifact).exists():
            return Path(row["path"])
    return None


def load_json(run_dir: Path, name: str) -> Any:
    """A JSON artifact ``<run_dir>/<name>.json``."""
    return json.loads((Path(run_dir) / f"{name}.json").read_text())


def backtest_metrics(run_dir: Path) -> pl.DataFrame:
    """The backtest metrics a run wrote, one row per symbol."""
    metrics = load_json(run_dir, "backtest_metrics")
    return pl.DataFrame([{"symbol": symbol, **row} for symbol, row in sorted(metrics.items())])
