"""The main job, end to end: real papermill runs of the stage notebooks from a profile."""

from __future__ import annotations

import hashlib
import json

import nbformat
import papermill as pm
import polars as pl
import pytest
from conftest import DEMO_OVERRIDES, DemoRun, Workspace, run_cli
from polars.testing import assert_frame_equal

from research_lib.collect import read_market
from research_lib.config import load_profile
from research_lib.lake import Lake
from research_lib.pipeline import STAGES, stage_parameters
from research_lib.sweep import ma_crossover_sweep


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_notebook_parameters_match_the_config_sections(stage) -> None:
    declared = set(pm.inspect_notebook(str(stage.notebook)))
    expected = set(stage_parameters(stage, load_profile("demo"))) | {"run_dir"}
    assert declared == expected


def test_run_writes_notebooks_html_and_a_manifest(demo_run: DemoRun) -> None:
    run_dir = demo_run.run_dir
    for stage in STAGES:
        assert (run_dir / f"{stage.name}.ipynb").is_file()
        html = (run_dir / f"{stage.name}.html").read_text()
        assert "<html" in html and stage.name.split("_")[1] in html.lower()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    assert manifest["run_id"] == run_dir.name
    assert manifest["profile"] == "demo"
    run = load_profile("demo", overrides={"market.end": "2024-02-15"})
    assert manifest["config_ids"]["run"] == run.id
    assert manifest["config_ids"]["backtest"] == run.backtest.id
    assert manifest["parameters"]["30_backtest"]["fee_bps"] == run.backtest.fee_bps
    assert set(manifest["timings_s"]) == {s.name for s in STAGES}
    assert all(t > 0 for t in manifest["timings_s"].values())
    assert "commit" in manifest["git"]
    files = manifest["data"]["files"]
    assert any(p.startswith("bars/") for p in files) and any(
        p.startswith("features/") for p in files
    )
    lake_root = demo_run.workspace.data / "lake"
    for rel, digest in files.items():
        assert hashlib.sha256((lake_root / rel).read_bytes()).hexdigest() == digest


def test_executed_notebooks_have_the_injected_parameters_and_no_errors(demo_run: DemoRun) -> None:
    for stage in STAGES:
        nb = nbformat.read(demo_run.run_dir / f"{stage.name}.ipynb", as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1
        assert str(demo_run.run_dir) in injected[0].source
        errors = [
            o
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.outputs
            if o.output_type == "error"
        ]
        assert errors == []


def test_backtest_artifacts_and_summary(demo_run: DemoRun) -> None:
    metrics = json.loads((demo_run.run_dir / "backtest_metrics.json").read_text())
    assert set(metrics) == set(load_profile("demo").market.symbols)
    assert (demo_run.run_dir / "backtest_equity.parquet").is_file()
    assert f"reports:   {demo_run.run_dir}" in demo_run.stdout
    assert "total return" in demo_run.stdout


def test_sweep_records_every_trial_and_matches_the_library(demo_run: DemoRun) -> None:
    grid = load_profile("demo").sweep
    pairs = sum(1 for f in grid.fast_bars for s in grid.slow_bars if f < s)
    trials = json.loads((demo_run.run_dir / "sweep_trials.json").read_text())
    symbols = load_profile("demo").market.symbols
    assert trials["per_symbol"] == dict.fromkeys(sorted(symbols), pairs)
    assert trials["n_trials"] == pairs * len(symbols)
    assert trials["sweep_config_id"] == grid.id
    table = pl.read_parquet(demo_run.run_dir / "sweep.parquet")
    assert table.height == trials["n_trials"]
    # One symbol recomputed from the lake's bars through the library gives the same rows.
    manifest = json.loads((demo_run.run_dir / "manifest.json").read_text())
    params = manifest["parameters"]["30_backtest"]
    market = load_profile("demo", overrides={"market.end": params["end"]}).market
    bars = read_market(market, "bars", lake=Lake(demo_run.workspace.data))
    btc = bars.filter(pl.col("symbol") == "BTCUSDT").sort("ts")
    direct = ma_crossover_sweep(
        btc["close"],
        open_prices=btc["open"],
        fast_bars=params["sweep_fast_bars"],
        slow_bars=params["sweep_slow_bars"],
        periods_per_year=market.periods_per_year,
        fee_bps=params["fee_bps"],
        fill=params["fill"],
        initial_cash=params["initial_cash"],
    ).table
    assert_frame_equal(table.filter(pl.col("symbol") == "BTCUSDT").drop("symbol"), direct)


def test_a_second_run_reuses_the_data(demo_run: DemoRun) -> None:
    done = run_cli(
        "run",
        "--profile",
        "demo",
        *DEMO_OVERRIDES,
        "--stages",
        "00_collect",
        env=demo_run.workspace.env(),
    )
    assert done.returncode == 0, done.stderr
    newest = sorted(p for p in demo_run.workspace.reports.iterdir() if p.is_dir())[-1]
    summary = json.loads((newest / "collect_summary.json").read_text())
    assert summary and all(row["added"] == 0 for row in summary)
    # the collect log says the range is complete: nothing is even fetched again
    assert summary and all(row["fetched"] == 0 and row["stored"] > 0 for row in summary)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--profile", "nope"), "unknown profile 'nope'"),
        (
            ("--profile", "demo", "--set", "backtest.fee_bsp=1"),
            "unknown parameter 'backtest.fee_bsp'",
        ),
        (("--profile", "demo", "--stages", "99_magic"), "unknown stage(s) ['99_magic']"),
    ],
)
def test_bad_profile_or_parameter_fails_at_once(
    workspace: Workspace, args: tuple, message: str
) -> None:
    done = run_cli("run", *args, env=workspace.env(), timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert not workspace.reports.exists(), "nothing is run or written for a bad request"


def test_a_stage_whose_input_is_missing_names_the_stage_to_run_first(workspace: Workspace) -> None:
    done = run_cli("run", "--profile", "demo", "--stages", "10_features", env=workspace.env())
    assert done.returncode == 1
    assert "00_collect" in done.stderr
    (run_dir,) = list(workspace.reports.iterdir())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["failed_stage"] == "10_features"
    assert "00_collect" in manifest["error"]


def test_validate_stage_writes_gate_records_with_lineage(demo_run: DemoRun) -> None:
    from research_lib.gate import CRITERIA, load_records

    trials = json.loads((demo_run.run_dir / "sweep_trials.json").read_text())
    summary = json.loads((demo_run.run_dir / "validation_summary.json").read_text())
    assert set(summary) == {"strategy", "model"}
    lake = Lake(demo_run.workspace.data)
    records = {r.record_id: r for r in load_records(lake)}
    rule = records[summary["strategy"]["record_id"]]
    model = records[summary["model"]["record_id"]]
    profile = load_profile("demo", overrides={"market.end": "2024-02-15"})
    assert rule.candidate_id == profile.strategy.id
    assert rule.market_id == profile.market.id
    assert rule.validation_config_id == profile.validation.id
    # The deflated Sharpe used the trial count the sweep recorded in 30_backtest.
    assert rule.n_trials == trials["n_trials"]
    assert rule.lineage["run_id"] == demo_run.run_dir.name
    assert rule.lineage["git"]["commit"]
    assert model.candidate["family"] in profile.model.families
    assert model.n_trials == len(profile.model.families)
    for record in (rule, model):
        assert [c.name for c in record.criteria] == list(CRITERIA)
        assert record.passed == all(c.passed for c in record.criteria)
        assert summary[record.candidate_kind]["passed"] == record.passed
    # The synthetic demo market has no edge: neither candidate may pass.
    assert not rule.passed and not model.passed
    rows = lake.read("validations")
    assert set(rows["record_id"]) == {rule.record_id, model.record_id}
    assert rows.height == 2 * len(CRITERIA)


def test_real_btc_eth_profile_runs_end_to_end(tmp_path) -> None:
    """The real-data profile through collect, features, models, backtest and the gate.

    Six months and two families keep it to a couple of minutes; the full profile runs the
    same code on two years and seven families.
    """
    from research_lib.paths import real_data_dir

    if not (real_data_dir() / "cex" / "binance_spot_1h" / "BTCUSDT.parquet").is_file():
        pytest.skip(f"real data not found under {real_data_dir()} (set RESEARCH_REAL_DATA_DIR)")
    ws = Workspace(tmp_path / "data", tmp_path / "reports")
    overrides = {
        "market.start": "2024-07-01",
        "model.families": "[ridge,hist_gradient_boosting]",
        "model.min_train_bars": "1000",
        "validation.warmup_bars": "800",
    }
    args = [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
    stages = "00_collect,10_features,20_model,30_backtest,40_validate"
    done = run_cli(
        "run", "--profile", "real_btc_eth", "--stages", stages, *args, env=ws.env(), timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = ws.reports.iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    hashed = manifest["data"]["files"]
    assert hashed and all("source=files" in path for path in hashed)
    # Bars come from the real files: BTC's first close of July 2024 is Binance's.
    profile = load_profile("real_btc_eth", overrides={"market.start": "2024-07-01"})
    bars = read_market(profile.market, "bars", lake=Lake(ws.data))
    real = pl.read_parquet(real_data_dir() / "cex" / "binance_spot_1h" / "BTCUSDT.parquet")
    first = bars.filter(pl.col("symbol") == "BTCUSDT").sort("ts").row(0, named=True)
    assert first["close"] == real.filter(pl.col("ts") == first["ts"])["close"].item()
    # Out-of-sample metrics for every model family, and a record for each candidate.
    scores = pl.read_parquet(run_dir / "model_scores.parquet")
    assert sorted(scores["model"]) == ["hist_gradient_boosting", "ridge"]
    assert scores["count"].min() > 1_000 and scores["ic"].is_finite().all()
    summary = json.loads((run_dir / "validation_summary.json").read_text())
    rule = json.loads((run_dir / "validation_strategy.json").read_text())
    assert rule["record_id"] == summary["strategy"]["record_id"]
    assert rule["candidate_id"] == profile.strategy.id
    assert {c["name"] for c in rule["criteria"]} >= {"deflated_sharpe", "pbo", "oos_sharpe"}
