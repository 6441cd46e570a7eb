"""``source="evm"``: pool bars built from on-chain events, checked against the pools' state.

The reference for every close is the pool contract itself, read with ``eth_call`` at the
last block of the bar; volumes are checked against web3's own decoding of the Swap logs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import Workspace, run_cli
from pydantic import ValidationError

from research_lib.chain import contract
from research_lib.config import MarketConfig
from research_lib.lake import Lake
from research_lib.sources.base import SourceError
from research_lib.sources.evm_bars import EvmSource, _first_block_at
from research_lib.sources.synthetic import SyntheticMarketConfig, SyntheticSource

START_MS = 1_704_067_200_000  # 2024-01-01
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def one_day(tmp_path_factory: pytest.TempPathFactory):
    """Bars of two embedded pools over one day, and the source (its chain still running)."""
    lake = Lake(tmp_path_factory.mktemp("evm_bars"))
    source = EvmSource(
        "embedded",
        start_ms=START_MS,
        end_ms=START_MS + 24 * HOUR_MS,
        interval_ms=HOUR_MS,
        lake=lake,
    )
    pages = {
        symbol: pl.concat(
            list(
                source.pages(
                    dataset="bars",
                    symbol=symbol,
                    interval="1h",
                    start_ms=START_MS,
                    end_ms=START_MS + 24 * HOUR_MS,
                )
            )
        )
        for symbol in ("WETHUSDC-V3-500", "WETHUSDC-V2")
    }
    yield source, pages
    source.close()


def _pool_price_at(source: EvmSource, symbol: str, block: int) -> float:
    ref = source.resolve(symbol)
    w3 = source._chain.w3
    if ref.kind == "v3":
        slot0 = (
            contract(w3, "UniswapV3Pool", ref.address)
            .functions.slot0()
            .call(block_identifier=block)
        )
        return ref.price((slot0[0] / 2**96) ** 2)
    r0, r1, _ = (
        contract(w3, "UniswapV2Pair", ref.address)
        .functions.getReserves()
        .call(block_identifier=block)
    )
    return ref.price(r1 / r0)


@pytest.mark.parametrize("symbol", ["WETHUSDC-V3-500", "WETHUSDC-V2"])
def test_each_close_is_the_pools_price_at_the_bars_last_block(one_day, symbol: str) -> None:
    source, pages = one_day
    bars = pages[symbol]
    assert bars.height == 24 and bars["ts"].is_sorted()
    w3 = source._chain.w3
    for row in bars.iter_rows(named=True):
        last_block = _first_block_at(w3, row["ts"] + HOUR_MS) - 1
        expected = _pool_price_at(source, symbol, last_block)
        assert row["close"] == pytest.approx(expected, rel=1e-12)
        assert row["low"] <= min(row["open"], row["close"]) <= row["high"]
    # Each bar opens at the previous close (the pool's state carries over).
    assert bars["open"][1:].to_list() == bars["close"][:-1].to_list()


def test_volume_is_the_base_amount_swapped(one_day) -> None:
    source, pages = one_day
    w3 = source._chain.w3
    ref = source.resolve("WETHUSDC-V3-500")
    pool = contract(w3, "UniswapV3Pool", ref.address)
    first = _first_block_at(w3, START_MS)
    last = _first_block_at(w3, START_MS + 24 * HOUR_MS) - 1
    logs = pool.events.Swap().get_logs(from_block=first, to_block=last)
    base = "amount0" if ref.base_is_token0 else "amount1"
    swapped = sum(abs(log["args"][base]) for log in logs) / 1e18
    assert len(logs) > 24
    assert pages["WETHUSDC-V3-500"]["volume"].sum() == pytest.approx(swapped, rel=1e-12)


def test_pool_prices_follow_the_synthetic_market(one_day) -> None:
    _, pages = one_day
    cex = SyntheticSource(SyntheticMarketConfig(seed=7, symbols=["ETHUSDT"])).fetch(
        dataset="bars",
        symbols=["ETHUSDT"],
        interval="1h",
        start_ms=START_MS,
        end_ms=START_MS + 24 * HOUR_MS,
    )
    for bars in pages.values():
        deviation = np.abs(bars["close"].to_numpy() / cex["close"].to_numpy() - 1.0)
        assert np.median(deviation) < 0.005


def test_embedded_symbols_are_checked(one_day) -> None:
    source, _ = one_day
    with pytest.raises(SourceError, match="WETHUSDC-V3-500"):
        source.resolve("ETHUSDT")


def test_rpc_url_goes_with_source_evm() -> None:
    with pytest.raises(ValidationError, match="rpc_url"):
        MarketConfig(source="evm", symbols=("WETHUSDC-V2",))
    with pytest.raises(ValidationError, match="rpc_url"):
        MarketConfig(source="synthetic", rpc_url="embedded")


def test_a_pool_address_on_any_node(embedded_chain, tmp_path: Path) -> None:
    """The same code on a node it did not start (as a fork or a real network would be):
    pools by address, decimals read from the tokens, the base token0 or ':inverse'."""
    pool = next(p for p in embedded_chain.pools if p.kind == "v3" and p.fee_pips == 3000)
    w3 = embedded_chain.w3
    start = w3.eth.get_block(1)["timestamp"] * 1000 // 60_000 * 60_000 + 3_600_000
    end = start + 5 * 60_000
    source = EvmSource(
        embedded_chain.rpc_url,
        start_ms=start,
        end_ms=end,
        interval_ms=60_000,
        lake=Lake(tmp_path),
        confirmations=0,
    )
    direct = next(
        source.pages(dataset="bars", symbol=pool.address, interval="1m", start_ms=start, end_ms=end)
    )
    inverse = next(
        source.pages(
            dataset="bars",
            symbol=f"{pool.address}:inverse",
            interval="1m",
            start_ms=start,
            end_ms=end,
        )
    )
    assert direct.height == inverse.height == 5
    np.testing.assert_allclose(
        direct["close"].to_numpy() * inverse["close"].to_numpy(), 1.0, rtol=1e-12
    )
    with pytest.raises(SourceError, match="pool address"):
        source.resolve("not-an-address")


def test_00_collect_runs_on_the_embedded_chain(workspace: Workspace) -> None:
    done = run_cli(
        "run",
        "--profile",
        "demo",
        "--stages",
        "00_collect",
        "--set",
        "market.source=evm",
        "--set",
        "market.rpc_url=embedded",
        "--set",
        "market.symbols=[WETHUSDC-V3-500, WBTCUSDC-V2]",
        "--set",
        "market.start=2024-01-01",
        "--set",
        "market.end=2024-01-02",
        env=workspace.env(),
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lake = Lake(workspace.data)
    bars = lake.read("bars", filters={"source": "evm"})
    assert bars.group_by("symbol").len().sort("symbol").rows() == [
        ("WBTCUSDC-V2", 24),
        ("WETHUSDC-V3-500", 24),
    ]
    assert lake.read("evm_events").height > 0
