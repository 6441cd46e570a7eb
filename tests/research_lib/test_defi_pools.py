"""Pool analytics from indexed events, the LP data chooser and the health-factor monitor.

References: the pool contracts' own state (``eth_call``), ``lp.range_sweep`` called
directly, and the health-factor formula written out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from research_lib import plots
from research_lib.chain_market import pool_state
from research_lib.defi.lending import health_factor_frame
from research_lib.defi.lp import range_sweep
from research_lib.defi.pools import (
    lp_minutes,
    pool_summary,
    pool_swaps,
    range_width_sweep,
    v3_minutes,
)
from research_lib.lake import Lake
from research_lib.sources.evm import EvmIndexer


@pytest.fixture(scope="module")
def indexed(embedded_chain, tmp_path_factory: pytest.TempPathFactory):
    lake = Lake(tmp_path_factory.mktemp("pools"))
    with EvmIndexer(
        embedded_chain.rpc_url,
        addresses=[p.address for p in embedded_chain.pools],
        confirmations=0,
        lake=lake,
        progress=False,
    ) as indexer:
        indexer.run()
    return lake, embedded_chain


def test_the_last_swap_prices_each_pool_as_its_state_does(indexed) -> None:
    lake, chain = indexed
    for pool in chain.pools:
        swaps = pool_swaps(lake, 31337, pool)
        assert swaps.height > 0 and swaps["block"].is_sorted()
        state = pool_state(chain.w3, pool)
        now = (
            state["reserve1"] / state["reserve0"]
            if pool.kind == "v2"
            else (state["sqrt_price_x96"] / 2**96) ** 2
        )
        assert swaps["price"][-1] == pytest.approx(now, rel=1e-12), pool.name
    summary = pool_summary(lake, 31337, chain.pools)
    sim = chain.simulation
    assert summary["swaps"].sum() == sim.n_arbitrage_swaps + sim.n_noise_swaps


def test_v3_minutes_are_oriented_as_the_polygon_data(indexed) -> None:
    lake, chain = indexed
    pool = next(p for p in chain.pools if p.kind == "v3" and "WETH/USDC 0.05" in p.name)
    lp = lp_minutes("embedded", days=1, lake=lake, chain_id=31337, pool=pool)
    raw = v3_minutes(lake, 31337, pool, quote="USDC")
    assert lp.minutes.height == raw.height > 0
    # USDC per WETH, like the Polygon pool's price column, whichever token is token0.
    swaps = pool_swaps(lake, 31337, pool)
    last = swaps["price"][-1]
    usdc_per_weth = last if pool.token0 == "WETH" else 1.0 / last
    # The minute frame prices by the close tick (as the Polygon data does): within a tick.
    assert lp.minutes["price"][-1] == pytest.approx(usdc_per_weth, rel=1.0001e-4)
    assert 1500 < lp.minutes["price"].median() < 3500
    with pytest.raises(ValueError, match="quote"):
        v3_minutes(lake, 31337, pool, quote="WBTC")


def test_width_sweep_is_range_sweep_around_the_entry(indexed) -> None:
    lake, chain = indexed
    pool = next(p for p in chain.pools if p.kind == "v3" and "WETH/USDC 0.05" in p.name)
    lp = lp_minutes("embedded", days=1, lake=lake, chain_id=31337, pool=pool)
    widths = [0.001, 0.01, 0.1]
    kwargs = dict(
        capital_usd=5_000.0,
        fee_tier_bps=lp.fee_tier_bps,
        tick_spacing=10,
        decimals0=18,
        decimals1=18,
    )
    table = range_width_sweep(lp.minutes, widths=widths, **kwargs)
    entry = lp.minutes["price"][0]
    direct = range_sweep(
        lp.minutes, ranges=[(entry * (1 - w), entry * (1 + w)) for w in widths], **kwargs
    )
    assert table.select(direct.columns).equals(direct)
    assert table["fees_pct"].to_list() == pytest.approx(
        (direct["fees_usd"] / 5_000.0 * 100).to_list()
    )
    with pytest.raises(ValueError, match="widths"):
        range_width_sweep(lp.minutes, widths=[1.5], **kwargs)
    fig = plots.lp_sweep(table)
    assert [t.name for t in fig.data] == [
        "fees",
        "impermanent loss",
        "net vs hold",
        "time in range",
    ]


def test_real_lp_data_is_asked_for_by_name(indexed, monkeypatch, tmp_path: Path) -> None:
    lake, chain = indexed
    pool = next(p for p in chain.pools if p.kind == "v3")
    monkeypatch.setenv("RESEARCH_REAL_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="lp_data='real'"):
        lp_minutes("real", days=1, lake=lake, chain_id=31337, pool=pool)
    # auto falls back to the chain when the real file is absent.
    assert lp_minutes("auto", days=1, lake=lake, chain_id=31337, pool=pool).label.startswith(
        "embedded"
    )


def test_health_factor_frame_is_the_formula() -> None:
    rng = np.random.default_rng(0)
    prices = 2000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 50)))
    index = np.cumprod(1 + rng.uniform(0, 1e-4, 50))
    frame = health_factor_frame(
        list(range(50)),
        prices.tolist(),
        collateral_amount=3.0,
        debt_amount=4_000.0,
        liquidation_threshold_bps=8_000,
        debt_index=index.tolist(),
    )
    debt = 4_000.0 * index / index[0]
    np.testing.assert_allclose(frame["health_factor"], 3.0 * prices * 0.8 / debt, rtol=1e-14)
    np.testing.assert_allclose(frame["liquidation_price"], debt / (3.0 * 0.8), rtol=1e-14)
    # At the liquidation price the health factor is 1.
    at_liq = health_factor_frame(
        [0],
        [frame["liquidation_price"][0]],
        collateral_amount=3.0,
        debt_amount=4_000.0,
        liquidation_threshold_bps=8_000,
    )
    assert at_liq["health_factor"][0] == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(ValueError, match="debt_index"):
        health_factor_frame(
            [0, 1],
            [1.0, 1.0],
            collateral_amount=1.0,
            debt_amount=1.0,
            liquidation_threshold_bps=8_000,
            debt_index=[1.0, -1.0],
        )
    fig = plots.health_factor(frame)
    assert fig.data[0].name == "health factor"


def test_pool_prices_plot_draws_every_series(indexed) -> None:
    _, chain = indexed
    blocks = chain.simulation.blocks
    columns = [c for c in blocks.columns if "WETH/USDC" in c]
    fig = plots.pool_prices(blocks.select("block", *columns))
    assert sorted(t.name for t in fig.data) == sorted(columns)
    assert isinstance(blocks, pl.DataFrame)
