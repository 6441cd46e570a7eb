"""The Voila overview dashboard, served for real and fetched over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import PROJECT_ROOT, DemoRun

DASHBOARD = PROJECT_ROOT / "notebooks" / "dashboards" / "overview.ipynb"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch_page(url: str, *, deadline_s: float) -> str:
    """GET a Voila page; fail after ``deadline_s`` even while Voila streams heartbeats."""
    chunks: list[str] = []
    stop = time.monotonic() + deadline_s
    with httpx.stream("GET", url, timeout=30) as response:
        response.raise_for_status()
        for chunk in response.iter_text():
            chunks.append(chunk)
            if time.monotonic() > stop:
                pytest.fail(
                    f"voila did not finish rendering in {deadline_s}s: {''.join(chunks)[-500:]}"
                )
    return "".join(chunks)


@pytest.fixture
def voila_url(demo_run: DemoRun):
    port = free_port()
    voila = Path(sys.executable).parent / "voila"
    proc = subprocess.Popen(
        [str(voila), str(DASHBOARD), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"],
        cwd=PROJECT_ROOT,
        env=demo_run.workspace.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "api/status", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"voila did not start: {proc.stderr.read().decode()[-2000:]}"
                    ) from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_dashboard_renders_runs_coverage_and_the_latest_equity_curve(
    voila_url: str, demo_run: DemoRun
) -> None:
    page = fetch_page(voila_url, deadline_s=180)
    assert "Research overview" in page
    assert demo_run.run_dir.name in page, "the runs table lists the run"
    assert "source=synthetic/interval=1h/symbol=BTCUSDT" in page, "the coverage table"
    assert "application/vnd.plotly.v1+json" in page, "plotly figures were rendered"
    assert "Backtest equity" in page
    assert "Promotion gate" in page and "deflated_sharpe" in page, "the gate's scorecards"
    assert "Traceback" not in page, "a cell raised"
