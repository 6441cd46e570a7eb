"""Shared fixtures: isolated data/report folders and one real pipeline run per session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = PROJECT_ROOT.parent / "shared" / "data" / "real"


@dataclass(frozen=True)
class Workspace:
    data: Path
    reports: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RESEARCH_DATA_DIR": str(self.data),
            "RESEARCH_REPORTS_DIR": str(self.reports),
        }


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """Empty data and reports folders, set as this process's defaults."""
    ws = Workspace(tmp_path / "data", tmp_path / "reports")
    monkeypatch.setenv("RESEARCH_DATA_DIR", str(ws.data))
    monkeypatch.setenv("RESEARCH_REPORTS_DIR", str(ws.reports))
    return ws


def run_cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m research_lib.pipeline ARGS`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "research_lib.pipeline", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass(frozen=True)
class DemoRun:
    workspace: Workspace
    run_dir: Path
    stdout: str


# A shorter range than the demo profile keeps the session fast; it is the same code path.
DEMO_OVERRIDES = ("--set", "market.end=2024-02-15")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """One real `pipeline run --profile demo` (papermill, four notebooks) in a temp workspace."""
    root = tmp_path_factory.mktemp("demo")
    ws = Workspace(root / "data", root / "reports")
    done = run_cli("run", "--profile", "demo", *DEMO_OVERRIDES, env=ws.env())
    assert done.returncode == 0, f"pipeline failed:\n{done.stdout}\n{done.stderr}"
    (run_dir,) = [p for p in ws.reports.iterdir() if p.is_dir()]
    yield DemoRun(ws, run_dir, done.stdout)


@pytest.fixture(scope="session")
def embedded_chain() -> Iterator[Any]:
    """One embedded anvil chain (Uniswap deployed, pools open, 40 simulated blocks) per
    session. Tests that change its state take an ``evm_snapshot`` and revert it."""
    from research_lib.chain_market import start_embedded_chain

    chain = start_embedded_chain(seed=11, n_blocks=40, progress=False)
    try:
        yield chain
    finally:
        chain.stop()
