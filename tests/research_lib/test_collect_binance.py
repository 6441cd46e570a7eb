"""The collector against a real local HTTP server speaking Binance's protocol, on real candles.

The server (``tests/servers/exchange_server.py``) serves the real Binance files of
``../shared/data/real`` in Binance's wire format; the collector must store exactly those rows.
One test kills a collector process with SIGKILL in the middle of a collection and checks that
the next run loses nothing and duplicates nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from servers.exchange_server import ExchangeServer, Fault
from servers.served_data import load_real

from research_lib.collect import collect_market
from research_lib.config import MarketConfig
from research_lib.lake import Lake

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests" / "servers" / "exchange_server.py"

pytestmark = pytest.mark.skipif(
    not (REAL / "cex").is_dir(), reason=f"real Binance data not found at {REAL}"
)


def _real(folder: str, symbol: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    lo = int(dt.datetime.combine(start, dt.time(), dt.UTC).timestamp() * 1000)
    hi = int(dt.datetime.combine(end, dt.time(), dt.UTC).timestamp() * 1000)
    frame = pl.read_parquet(REAL / "cex" / folder / f"{symbol}.parquet")
    return (
        frame.filter(pl.col("ts").is_between(lo, hi - 1))
        .drop("source")
        .with_columns(pl.col("symbol").cast(pl.String))
    )


def _stored(lake: Lake, dataset: str, columns: list[str]) -> pl.DataFrame:
    frame = lake.read(dataset).sort("symbol", "ts")
    return frame.select(columns)


BAR_COLUMNS = ["ts", "symbol", "open", "high", "low", "close", "volume"]


def test_two_years_of_real_spot_candles_round_trip_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = dt.date(2018, 1, 1), dt.date(2020, 1, 1)
    symbols = ("BTCUSDT", "ETHUSDT")
    with ExchangeServer(**load_real(REAL, symbols=symbols)) as server:
        monkeypatch.setenv("RESEARCH_BINANCE_SPOT_URL", server.url)
        market = MarketConfig(
            source="binance", symbols=symbols, interval="1h", start=start, end=end
        )
        lake = Lake(tmp_path)
        summary = collect_market(market, lake=lake, progress=False)
        requests = len(server.requests)
        again = collect_market(market, lake=lake, progress=False)
        assert len(server.requests) == requests  # the log covers it all, outages included
    expected = pl.concat([_real("binance_spot_1h", s, start, end) for s in symbols])
    assert_frame_equal(_stored(lake, "bars", BAR_COLUMNS), expected.sort("symbol", "ts"))
    assert summary["added"].sum() == expected.height
    assert again["fetched"].sum() == 0 and again["stored"].sum() == expected.height
    # 2 years of hours in pages of 1000: 18 requests per symbol, not more
    assert requests <= 2 * 18 + 2


def test_perpetual_klines_and_funding_round_trip_under_faults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = dt.date(2021, 6, 1), dt.date(2022, 6, 1)
    faults = [
        Fault("500", every=4),
        Fault("429", nth=(3,), retry_after_s=0.2),
        Fault("truncate", nth=(7,)),
    ]
    with ExchangeServer(**load_real(REAL, symbols=("BTCUSDT",)), faults=faults) as server:
        monkeypatch.setenv("RESEARCH_BINANCE_USDM_URL", server.url)
        market = MarketConfig(
            source="binance_usdm", symbols=("BTCUSDT",), interval="1h", start=start, end=end
        )
        lake = Lake(tmp_path)
        collect_market(market, lake=lake, progress=False)
        statuses = [r.status for r in server.requests]
    assert 500 in statuses and 429 in statuses  # the faults did fire
    bars = _real("binance_usdm_perp_1h", "BTCUSDT", start, end)
    assert_frame_equal(_stored(lake, "bars", BAR_COLUMNS), bars)
    funding = _real("binance_usdm_funding", "BTCUSDT", start, end)
    stored = _stored(lake, "funding", ["ts", "symbol", "funding_rate", "mark_price"])
    assert_frame_equal(stored, funding)


COLLECTOR = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from research_lib.collect import collect_market
    from research_lib.config import MarketConfig
    from research_lib.lake import Lake

    market = MarketConfig(source="binance", symbols=("BTCUSDT", "ETHUSDT"), interval="1h",
                          start="2019-01-01", end="2021-01-01")
    collect_market(market, lake=Lake(Path(sys.argv[1])), progress=False, flush_rows=2000)
    print("done")
    """
)


def test_a_killed_collector_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            str(SERVER),
            "--data",
            str(REAL),
            "--symbols",
            "BTCUSDT",
            "ETHUSDT",
            "--fault",
            "slow:every=1;delay_s=0.05",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        env = {**os.environ, "RESEARCH_BINANCE_SPOT_URL": url}
        lake = Lake(tmp_path)
        victim = subprocess.Popen(
            [sys.executable, "-c", COLLECTOR, str(tmp_path)], env=env, cwd=ROOT
        )
        deadline = time.monotonic() + 120
        while not lake.files("collect_log") and time.monotonic() < deadline:
            assert victim.poll() is None, "the collector finished before it could be killed"
            time.sleep(0.05)
        time.sleep(0.3)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        partial = lake.read("bars")
        expected = pl.concat(
            [
                _real("binance_spot_1h", s, dt.date(2019, 1, 1), dt.date(2021, 1, 1))
                for s in ("BTCUSDT", "ETHUSDT")
            ]
        ).sort("symbol", "ts")
        assert 0 < partial.height < expected.height, "the kill did not land mid-collection"
        done = subprocess.run(
            [sys.executable, "-c", COLLECTOR, str(tmp_path)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    assert_frame_equal(_stored(lake, "bars", BAR_COLUMNS), expected)


def test_00_collect_with_source_binance_collects_and_reports_the_2018_outage(
    tmp_path: Path,
) -> None:
    with ExchangeServer(**load_real(REAL, symbols=("BTCUSDT", "ETHUSDT"))) as server:
        env = {
            **os.environ,
            "RESEARCH_DATA_DIR": str(tmp_path / "data"),
            "RESEARCH_REPORTS_DIR": str(tmp_path / "reports"),
            "RESEARCH_BINANCE_SPOT_URL": server.url,
        }
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "research_lib.pipeline",
                "run",
                "--profile",
                "demo",
                "--stages",
                "00_collect",
                "--set",
                "market.source=binance",
                "--set",
                "market.symbols=[BTCUSDT, ETHUSDT]",
                "--set",
                "market.start=2018-01-01",
                "--set",
                "market.end=2018-03-01",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert any(r.path == "/api/v3/klines" for r in server.requests)
    lake = Lake(tmp_path / "data")
    bars = lake.read("bars", filters={"source": "binance"})
    expected = pl.concat(
        [
            _real("binance_spot_1h", s, dt.date(2018, 1, 1), dt.date(2018, 3, 1))
            for s in ("BTCUSDT", "ETHUSDT")
        ]
    )
    assert_frame_equal(bars.select(BAR_COLUMNS), expected.sort("symbol", "ts"))
    gaps = lake.read("quality").filter(pl.col("check") == "gap")
    outage = gaps.filter(pl.col("bars") == 33).sort("symbol")
    assert outage["symbol"].to_list() == ["BTCUSDT", "ETHUSDT"]
    assert outage["ts_first"].to_list() == [1518051600000] * 2  # 2018-02-08 01:00 UTC


def _run_00_collect(tmp_path: Path, env_extra: dict[str, str], *overrides: str) -> Lake:
    env = {
        **os.environ,
        "RESEARCH_DATA_DIR": str(tmp_path / "data"),
        "RESEARCH_REPORTS_DIR": str(tmp_path / "reports"),
        **env_extra,
    }
    args = [sys.executable, "-m", "research_lib.pipeline", "run", "--profile", "demo"]
    args += ["--stages", "00_collect"]
    for item in overrides:
        args += ["--set", item]
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return Lake(tmp_path / "data")


def test_00_collect_with_source_coinbase_and_coingecko(tmp_path: Path) -> None:
    start, end = dt.date(2023, 3, 1), dt.date(2023, 5, 1)
    real = _real("binance_spot_1h", "BTCUSDT", start, end)
    candles = real.with_columns(pl.lit("BTC-USD").alias("symbol"))
    prices = real.select(
        (pl.col("ts") + 4_321).alias("ts"),  # CoinGecko snapshots sit a little past the hour
        pl.lit("bitcoin").alias("symbol"),
        pl.col("close").alias("price"),
        (pl.col("close") * 19_300_000.0).alias("market_cap"),
        (pl.col("volume") * pl.col("close")).alias("total_volume"),
    )
    with ExchangeServer(coinbase_bars={"1h": candles}, coingecko_prices=prices) as server:
        urls = {"RESEARCH_COINBASE_URL": server.url, "RESEARCH_COINGECKO_URL": server.url}
        dates = ("market.start=2023-03-01", "market.end=2023-05-01")
        lake = _run_00_collect(
            tmp_path / "cb", urls, "market.source=coinbase", "market.symbols=[BTC-USD]", *dates
        )
        assert_frame_equal(_stored(lake, "bars", BAR_COLUMNS), candles)
        lake = _run_00_collect(
            tmp_path / "cg", urls, "market.source=coingecko", "market.symbols=[bitcoin]", *dates
        )
        stored = lake.read("prices").select(prices.columns)
        assert_frame_equal(stored, prices)
