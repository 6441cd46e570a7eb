"""Run the stage notebooks with papermill from a profile, and record what happened.

``python -m research_lib.pipeline run --profile demo`` executes
``00_collect → 10_features → 20_model → 30_backtest → 40_validate → 50_defi`` and writes
``reports/<run_id>/``: each executed notebook, its HTML, and ``manifest.json`` (run id,
profile, config ids, parameters, data file hashes, git commit, timings).

Examples
--------
>>> [stage.name for stage in STAGES]
['00_collect', '10_features', '20_model', '30_backtest', '40_validate', '50_defi']
>>> params = stage_parameters(STAGES[3], load_profile("demo"))
>>> params["fee_bps"], params["symbols"][0]
(10.0, 'BTCUSDT')
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from research_lib.atomic import atomic_write_text
from research_lib.config import (
    SECTIONS,
    ConfigError,
    RunConfig,
    available_profiles,
    load_profile,
    section_params,
)
from research_lib.lake import Lake
from research_lib.paths import PROJECT_ROOT, notebooks_dir, reports_dir
from research_lib.runs import MANIFEST


@dataclass(frozen=True)
class Stage:
    """A stage notebook and the config sections it takes as parameters."""

    name: str
    sections: tuple[str, ...]
    reads: tuple[str, ...]
    """Lake datasets the stage reads; their files are hashed into the manifest."""

    @property
    def notebook(self) -> Path:
        return notebooks_dir() / f"{self.name}.ipynb"


STAGES: tuple[Stage, ...] = (
    Stage("00_collect", ("market",), ()),
    Stage("10_features", ("market", "features"), ("bars",)),
    Stage("20_model", ("market", "model"), ("features",)),
    Stage("30_backtest", ("market", "strategy", "backtest", "sweep"), ("bars",)),
    Stage(
        "40_validate",
        ("market", "features", "model", "strategy", "backtest", "sweep", "validation"),
        ("bars", "features"),
    ),
    Stage("50_defi", ("defi",), ()),
)
PACKAGES = ("numpy", "polars", "numba", "duckdb", "scikit-learn", "papermill", "torch")


def stage_parameters(stage: Stage, run: RunConfig) -> dict[str, Any]:
    """The papermill parameters of ``stage`` for ``run`` (without ``run_dir``)."""
    params: dict[str, Any] = {}
    for section in stage.sections:
        params.update(section_params(getattr(run, section), section))
    return params


def make_run_id(run: RunConfig, *, now: dt.datetime | None = None) -> str:
    """``<UTC time>-<profile>-<config id>``: sortable, and unique per config and second."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{run.name}-{run.short_id}"


def git_state() -> dict[str, Any]:
    """The checkout's commit and whether it has uncommitted changes (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _to_html(notebook_path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nbformat.read(notebook_path, as_version=4)
    )
    html_path = notebook_path.with_suffix(".html")
    atomic_write_text(html_path, body)
    return html_path


def _data_hashes(run: RunConfig, lake: Lake) -> dict[str, str]:
    market = run.market
    wanted = {f"source={market.source}"}
    hashes = lake.file_hashes()
    return {
        path: digest
        for path, digest in hashes.items()
        if wanted <= set(Path(path).parts)
        and any(f"symbol={s}" in Path(path).parts for s in market.symbols)
        and (f"interval={market.interval}" in path or "interval=" not in path)
    }


def check_stage_parameters(stage: Stage, params: dict[str, Any]) -> None:
    """Fail if the notebook does not declare every parameter the pipeline would pass."""
    import papermill as pm

    declared = set(pm.inspect_notebook(str(stage.notebook)))
    unknown = sorted(set(params) - declared)
    if unknown:
        raise ConfigError(
            f"stage {stage.name}: parameter(s) {unknown} are not in the parameters cell of "
            f"{stage.notebook.name}; it declares {sorted(declared)}"
        )


def run_pipeline(
    run: RunConfig,
    *,
    stages: tuple[Stage, ...] = STAGES,
    reports_root: Path | None = None,
    progress: bool = True,
) -> Path:
    """Execute ``stages`` for ``run`` and return the run folder.

    The manifest is written before the first stage and rewritten after each one, so a
    crashed run still says how far it got. A failed stage stops the run and re-raises.
    """
    import papermill as pm

    root = Path(reports_root) if reports_root is not None else reports_dir()
    run_id = make_run_id(run)
    run_dir = root / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    all_params = {s.name: {**stage_parameters(s, run), "run_dir": str(run_dir)} for s in stages}
    for stage in stages:
        check_stage_parameters(stage, all_params[stage.name])

    started = time.perf_counter()
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "profile": run.name,
        "description": run.description,
        "status": "running",
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_state(),
        "config_ids": {"run": run.id, **{s: getattr(run, s).id for s in SECTIONS}},
        "configs": run.model_dump(mode="json"),
        "parameters": all_params,
        "stages": [s.name for s in stages],
        "timings_s": {},
        "artifacts": {},
        "environment": _versions(),
    }
    _write_manifest(run_dir, manifest)
    lake = Lake()
    for index, stage in enumerate(stages, start=1):
        output = run_dir / stage.notebook.name
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(stage.notebook),
                str(output),
                parameters=all_params[stage.name],
                cwd=str(notebooks_dir()),
                kernel_name="python3",
                progress_bar={"desc": f"[{index}/{len(stages)}] {stage.name}", "leave": True}
                if progress
                else False,
                log_output=False,
                # The kernel listens on loopback only; its TCP notice is noise in a CLI run.
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except Exception as exc:
            manifest.update(
                status="failed",
                failed_stage=stage.name,
                error=_one_line(exc),
                duration_s=round(time.perf_counter() - started, 3),
            )
            manifest["timings_s"][stage.name] = round(time.perf_counter() - t0, 3)
            _write_manifest(run_dir, manifest)
            raise
        html = _to_html(output)
        manifest["timings_s"][stage.name] = round(time.perf_counter() - t0, 3)
        manifest["artifacts"][stage.name] = {"notebook": output.name, "html": html.name}
        _write_manifest(run_dir, manifest)

    manifest["data"] = {"lake_root": str(lake.lake_dir), "files": _data_hashes(run, lake)}
    manifest.update(status="ok", duration_s=round(time.perf_counter() - started, 3))
    manifest["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    _write_manifest(run_dir, manifest)
    return run_dir


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]


def _write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(run_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))


def summarise(run_dir: Path) -> str:
    """A short, human summary of a finished run and where to look."""
    manifest = json.loads((run_dir / MANIFEST).read_text())
    lines = [
        f"run {manifest['run_id']}  profile={manifest['profile']}  status={manifest['status']}"
        f"  in {manifest.get('duration_s', 0):.1f}s",
        "stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in manifest["timings_s"].items()),
    ]
    metrics_path = run_dir / "backtest_metrics.json"
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        for symbol, row in sorted(metrics.items()):
            lines.append(
                f"  {symbol:<10} total return {row['total_return']:+.2%}  "
                f"sharpe {row['sharpe']:+.2f}  max drawdown {row['max_drawdown']:.2%}  "
                f"trades {int(row['trades'])}"
            )
    lines.append(f"reports:   {run_dir}")
    if manifest["artifacts"]:
        last_html = list(manifest["artifacts"].values())[-1]["html"]
        lines.append(f"open:      {run_dir / last_html}")
    lines.append("dashboard: make dashboard")
    return "\n".join(lines)


def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set {pair!r} must look like section.key=value")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m research_lib.pipeline", description="Run the research stage notebooks."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="execute the stage notebooks for a profile")
    run_p.add_argument("--profile", default="demo", help="a name from profiles/*.yaml")
    run_p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one profile value, e.g. --set backtest.fee_bps=5 (repeatable)",
    )
    run_p.add_argument(
        "--stages", default=None, help="comma-separated subset, e.g. 00_collect,10_features"
    )
    sub.add_parser("profiles", help="list the profiles")
    args = parser.parse_args(argv)

    if args.command == "profiles":
        print("\n".join(available_profiles()))
        return 0
    try:
        run = load_profile(args.profile, overrides=_parse_overrides(args.overrides))
        stages = STAGES
        if args.stages:
            names = [s.strip() for s in args.stages.split(",") if s.strip()]
            known = {s.name: s for s in STAGES}
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ConfigError(f"unknown stage(s) {unknown}; stages: {list(known)}")
            stages = tuple(known[n] for n in names)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    try:
        run_dir = run_pipeline(run, stages=stages)
    except Exception as exc:
        print(f"error: pipeline failed: {_one_line(exc)}", file=sys.stderr)
        return 1
    print(summarise(run_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
